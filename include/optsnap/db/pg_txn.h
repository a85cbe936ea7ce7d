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

/* SQLSTATE classes the caller retries (with backoff, on a fresh connection):
 * connection exceptions (08), deadlock (40P01), serialization (40001),
 * statement timeout / cancel (57014), too many connections (53300), admin
 * shutdown and friends (57P0x). */
bool pg_sqlstate_is_transient(const char *sqlstate);
/* Data errors (22xxx) and integrity violations (23xxx): bisect the batch. */
bool pg_sqlstate_is_data_error(const char *sqlstate);

#endif
