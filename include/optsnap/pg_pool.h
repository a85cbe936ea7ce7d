/* pg_pool.h - a pool of non-blocking libpq connections on the libuv loop.
 * The pool size IS the database concurrency (LESSONS §2): there is no other
 * semaphore. Each submitted transaction is sent as one pipeline ending in a
 * Sync, so it runs as one implicit transaction (all or nothing) in one round
 * trip, with unnamed statements only: safe behind a transaction-mode pooler.
 * Every transaction starts with set_config('statement_timeout', ..., true)
 * (the SET LOCAL equivalent). Wraps libpq and libuv. */
#ifndef OPTSNAP_PG_POOL_H
#define OPTSNAP_PG_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct pg_pool;

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

struct pg_pool_settings {
    const char *conninfo;        /* copied; "" = libpq defaults (PG* variables, .pgpass) */
    int size;                    /* connections, >= 1 */
    int64_t statement_timeout_us;
    const char *application_name;
};

struct pg_pool_stats {
    int busy, idle, connecting, down; /* down = waiting to reconnect */
    uint64_t transactions, errors, reconnects, connect_failures;
};

/* Called when a connection becomes idle (work may be submitted) or the pool's
 * state changed. Must not free the pool. */
typedef void (*pg_pool_notify_cb)(void *user);

int pg_pool_create(struct pg_pool **out, uv_loop_t *loop, const struct pg_pool_settings *s,
                   pg_pool_notify_cb notify, void *user) __attribute__((warn_unused_result));

/* Starts txn on an idle connection. Returns 0, or -EBUSY when none is idle
 * (txn->done is then never called). */
int pg_pool_submit(struct pg_pool *p, struct pg_txn *txn) __attribute__((warn_unused_result));

/* Applies to transactions submitted from now on (configuration reload). */
void pg_pool_set_statement_timeout(struct pg_pool *p, int64_t statement_timeout_us);

bool pg_pool_has_idle(const struct pg_pool *p);
void pg_pool_get_stats(const struct pg_pool *p, struct pg_pool_stats *out);
/* True once at least one connection has ever been established. */
bool pg_pool_ever_connected(const struct pg_pool *p);

/* SQLSTATE classes the caller retries (with backoff, on a fresh connection):
 * connection exceptions (08), deadlock (40P01), serialization (40001),
 * statement timeout / cancel (57014), too many connections (53300), admin
 * shutdown and friends (57P0x). */
bool pg_sqlstate_is_transient(const char *sqlstate);
/* Data errors (22xxx) and integrity violations (23xxx): bisect the batch. */
bool pg_sqlstate_is_data_error(const char *sqlstate);

/* Fails running transactions with PG_TXN_CANCELLED, closes every handle and
 * connection; closed_cb runs after the last close, then the pool is freed. */
void pg_pool_close(struct pg_pool *p, void (*closed_cb)(void *user), void *user);

#endif
