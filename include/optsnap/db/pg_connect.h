/* pg_connect.h - blocking libpq for start-up and one-shot commands only (the
 * schema check, the calendar before the first window, gaps, migrate): one
 * connect helper and one way to log a libpq error, both scrubbed of secrets
 * (libpq repeats the connection string in its messages). Never on a running
 * loop: the engine's pool is the only database path there. */
#ifndef OPTSNAP_PG_CONNECT_H
#define OPTSNAP_PG_CONNECT_H

#include <libpq-fe.h>

/* Connects (connect_timeout 10 s). Returns the connection, or NULL after
 * logging why (scrubbed). The caller PQfinish()es it. */
PGconn *pg_connect_blocking(const char *conninfo, const char *application_name);

/* Logs msg with the result's (or else the connection's) SQLSTATE and error
 * text, scrubbed and quoted. res may be NULL. */
void pg_log_error(const char *msg, PGconn *conn, const PGresult *res);

/* 0 when the schema is there and at least at the newest migration this
 * binary embeds; -1 (logged, naming `optsnap migrate`) otherwise. */
int pg_check_schema(PGconn *conn);

#endif
