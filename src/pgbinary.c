/* pgbinary.c - placeholder until its module lands. */
