/* reference_parse.c - placeholder until its module lands. */
