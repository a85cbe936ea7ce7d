/* http_server.c - placeholder until its module lands. */
