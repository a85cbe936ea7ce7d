/* http_client.c - placeholder until its module lands. */
