/* pg_txn.h - one transaction as the pool runs it: constant SQL texts with
 * bound parameters, sent as one pipeline, and its result; and the SQLSTATE
 * classes that decide what a failure means. Pure: no libpq, no uv, so the
 * writer that builds transactions stays a pure module. */
#ifndef OPTSNAP_PG_TXN_H
#define OPTSNAP_PG_TXN_H

#include <stdbool.h>

#define PG_TXN_MAX_STMTS 8

/* One statement: constant SQL text, parameters bound separately. The arrays
 * must stay valid until the transaction's done callback runs. */
struct pg_stmt {
    const char *name; /* for logs and metrics: "upsert_snapshots" */
    const char *sql;
    int nparams;
    const unsigned int *types;
    const char *const *values;
    const int *lengths;
    const int *formats;
    /* Optional: called with the statement's rows (PGresult *, as void * so this
     * header needs no libpq) when it returns tuples; user is txn->user. */
    void (*on_tuples)(void *user, const void *pgresult);
};

enum pg_txn_status {
    PG_TXN_OK = 0,
    PG_TXN_SQL_ERROR,  /* the server refused a statement; nothing of the txn committed */
    PG_TXN_CONN_LOST,  /* connection failed mid-transaction: outcome unknown unless retried idempotently */
    PG_TXN_CANCELLED,  /* pool closed before it ran */
};

struct pg_txn_result {
    enum pg_txn_status status;
    int failed_stmt;         /* index into stmts, -1 when none */
    char sqlstate[6];        /* "" when none */
    char message[256];       /* server's primary message, one line */
    long affected[PG_TXN_MAX_STMTS]; /* PQcmdTuples per statement, -1 when unknown */
    double elapsed_s;
};

struct pg_txn {
    struct pg_stmt stmts[PG_TXN_MAX_STMTS];
    int nstmts;
    /* Called exactly once, from the loop, unless pg_pool_submit fails. */
    void (*done)(struct pg_txn *txn, const struct pg_txn_result *result);
    void *user;
};

/* What a failed transaction means, decided from its SQLSTATE (and, for a
 * read-only refusal, its message). One table for the pool (keep or replace
 * the connection) and the write queue (retry, bisect or give up).
 *  PG_ERROR_RETRY      retry after backoff on the SAME connection: the
 *                      statement failed, the session is fine (57014 statement
 *                      timeout / cancel, 40P01 deadlock, 40001 serialization,
 *                      53300 too many connections, 53400 configuration limit).
 *  PG_ERROR_RECONNECT  the connection is gone or points at the wrong server:
 *                      close it, connect again (libpq walks a multi-host
 *                      database_url, target_session_attrs=read-write finds the
 *                      new primary), then retry: 08xxx connection exceptions,
 *                      57P01-57P05 (admin/crash shutdown, cannot connect now,
 *                      database dropped, idle session timeout), 25006
 *                      read-only transaction (a standby after a failover) and
 *                      "cannot execute ... in a read-only transaction".
 *  PG_ERROR_BISECT     22xxx data errors, 23xxx integrity violations: the
 *                      batch holds a bad row; split it.
 *  PG_ERROR_FAIL       anything else (XX000 included): logged, counted, the
 *                      window stays uncovered for repair. */
enum pg_error_action {
    PG_ERROR_FAIL = 0,
    PG_ERROR_RETRY,
    PG_ERROR_RECONNECT,
    PG_ERROR_BISECT,
};

/* sqlstate: five characters or "" / NULL; message: the server's primary
 * message or NULL. Pure. */
enum pg_error_action pg_error_classify(const char *sqlstate, const char *message);
const char *pg_error_action_name(enum pg_error_action a);

/* RETRY or RECONNECT: the caller retries with backoff. */
bool pg_sqlstate_is_transient(const char *sqlstate);
/* Data errors (22xxx) and integrity violations (23xxx): bisect the batch. */
bool pg_sqlstate_is_data_error(const char *sqlstate);

#endif
