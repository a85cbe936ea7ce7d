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

/* One try of a blocking start-up phase: 0 done, -1 failed; *connected when
 * it reached the database at all, *lost when the connection went away
 * before the end (cut off, a failover under it). */
typedef int (*pg_startup_fn)(void *user, bool *connected, bool *lost);

#define PG_STARTUP_RETRY_US (60 * INT64_C(1000000))

/* Runs attempt until it returns 0. A try that had the database and lost it
 * (or a later one that cannot reach it again after an earlier one did) is
 * tried again, backing off with full jitter up to max_backoff_us, for up to
 * PG_STARTUP_RETRY_US from the first failure; one that never reached the
 * database, or failed with it there (no schema, a refused statement), fails
 * at once: a wrong URL or a missing migration is not waited for. `what`
 * names the phase in the warning logged before each new try. 0 or -1. */
int pg_startup_retry(const char *what, pg_startup_fn attempt, void *user, int64_t max_backoff_us);

/* 0 when the schema is there and at least at the newest migration this
 * binary embeds; -1 (logged, naming `optsnap migrate`) otherwise. */
int pg_check_schema(PGconn *conn);

#endif
