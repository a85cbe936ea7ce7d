/* sd_notify.c - placeholder until its module lands. */
