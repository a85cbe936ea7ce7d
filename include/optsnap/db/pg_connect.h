/* pg_connect.h - blocking libpq for start-up and one-shot commands only (the
 * schema check, the calendar before the first window, gaps, migrate): one
 * connect helper and one way to log a libpq error, both scrubbed of secrets
 * (libpq repeats the connection string in its messages). Never on a running
 * loop: the engine's pool is the only database path there. */
#ifndef OPTSNAP_PG_CONNECT_H
#define OPTSNAP_PG_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Connects (connect_timeout 10 s). Returns the connection, or NULL after
 * logging why (scrubbed). The caller PQfinish()es it. */
PGconn *pg_connect_blocking(const char *conninfo, const char *application_name);

/* Logs msg with the result's (or else the connection's) SQLSTATE and error
 * text, scrubbed and quoted. res may be NULL. */
void pg_log_error(const char *msg, PGconn *conn, const PGresult *res);

/* Opens a transaction (BEGIN, or BEGIN READ ONLY) whose statement_timeout
 * is timeout_us (transaction-local: it holds through a transaction pooler),
 * then runs sql with its text parameters. Returns the result of sql, or of
 * the step that failed (PQresultStatus tells); the caller PQclear()s it and
 * ends the transaction (COMMIT or ROLLBACK). */
PGresult *pg_exec_in_txn(PGconn *conn, bool read_only, int64_t timeout_us, const char *sql, int nparams,
                         const char *const *values);

/* 0 when the schema is there and at least at the newest migration this
 * binary embeds; -1 (logged, naming `optsnap migrate`) otherwise. */
int pg_check_schema(PGconn *conn);

#endif
