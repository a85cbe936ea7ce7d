/* writer.c - placeholder until its module lands. */
