/* pg_pool.h - a pool of non-blocking libpq connections on the libuv loop.
 * The pool size IS the database concurrency (LESSONS §2): there is no other
 * semaphore. Each submitted transaction is sent as one pipeline ending in a
 * Sync, so it runs as one implicit transaction (all or nothing) in one round
 * trip, with unnamed statements only: safe behind a transaction-mode pooler.
 * Every transaction starts with set_config('statement_timeout', ..., true)
 * (the SET LOCAL equivalent). After a failed transaction the connection is
 * kept or replaced as pg_error_classify() says (pg_txn.h): a statement
 * timeout keeps it, a lost session or a read-only standby replaces it.
 * Wraps libpq and libuv. */
#ifndef OPTSNAP_PG_POOL_H
#define OPTSNAP_PG_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/db/pg_txn.h"

struct pg_pool;

struct pg_pool_settings {
    const char *conninfo;        /* copied; "" = libpq defaults (PG* variables, .pgpass) */
    int size;                    /* connections, >= 1 */
    int64_t statement_timeout_us;
    const char *application_name;
    /* cap on the wait between reconnect attempts (retry_max_backoff);
     * 0 = PG_POOL_DEFAULT_MAX_BACKOFF_US */
    int64_t max_backoff_us;
};

#define PG_POOL_DEFAULT_MAX_BACKOFF_US 10000000

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

/* Applies to reconnects scheduled from now on (configuration reload of
 * retry_max_backoff); <= 0 restores the default, floor 100 ms. */
void pg_pool_set_max_backoff(struct pg_pool *p, int64_t max_backoff_us);

bool pg_pool_has_idle(const struct pg_pool *p);
void pg_pool_get_stats(const struct pg_pool *p, struct pg_pool_stats *out);
/* True once at least one connection has ever been established. */
bool pg_pool_ever_connected(const struct pg_pool *p);


/* Fails running transactions with PG_TXN_CANCELLED, closes every handle and
 * connection; closed_cb runs after the last close, then the pool is freed. */
void pg_pool_close(struct pg_pool *p, void (*closed_cb)(void *user), void *user);

#endif
