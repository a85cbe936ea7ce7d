/* occ.c - placeholder until its module lands. */
