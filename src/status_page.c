/* status_page.c - placeholder until its module lands. */
