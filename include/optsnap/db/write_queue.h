/* write_queue.h - the one write path of run, backfill and repair: sealed
 * batches wait in a queue for an idle connection of the pool (the narrow DB
 * semaphore), each becomes one transaction (writer.h), and:
 *   - a group's coverage mark (a live sweep's window, a backfill unit's range)
 *     commits only after every other batch of the group has committed;
 *   - transient failures (lost connection, 40P01, 40001, 57014, 53300, 57P0x)
 *     are retried with capped, jittered backoff: nothing queued is dropped
 *     while the database is away;
 *   - data errors (22xxx, 23xxx) bisect the batch; a single refused row is
 *     kept in ingest_rejects (kind refused) with the server's reason; but
 *     once most rows examined are refused (at least min(16, half the
 *     rows), and more refused than committed: a trigger or constraint that
 *     refuses everything, not bad rows) bisection stops and the group fails
 *     (WRITE_DROPPED), so good rows are not turned into rejects and the
 *     window stays uncovered;
 *   - anything else (XX000 included) drops the batch and fails its group, so
 *     the mark is never written and repair fetches the window again;
 *   - the skip cache (fingerprint.h): a row whose fingerprint a confirmed
 *     commit set is taken out of its batch when it is added (never sent),
 *     and contracts known to be in `options` skip the options statements;
 *     a lost connection (a commit's outcome unknown) forgets everything, a
 *     data error forgets the batch's contracts' `options` knowledge.
 * Wraps libuv (a retry timer) and drives the pool. */
#ifndef OPTSNAP_WRITE_QUEUE_H
#define OPTSNAP_WRITE_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/db/batch.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/db/writer.h"

struct write_queue;

/* Batches whose coverage is marked together. Embedded in its owner (a sweep,
 * a backfill unit); must outlive every batch added to it. */
struct write_group {
    /* set by the owner before the first batch */
    char underlying[16];
    enum row_source source;
    struct coverage_mark cov; /* the mark written once every batch committed */
    void *owner;
    /* kept by the queue */
    int outstanding;          /* batches queued or in the database */
    bool closed;              /* the owner adds no more batches (write_queue_close_group) */
    bool failed;              /* a batch was dropped or the owner gave up: no mark */
    bool coverage_written;
    bool settled;             /* group_settled was called */
    long rows_written, rows_unchanged;
    long rows_skipped, skipped_unreported; /* by the skip cache */
    /* Bisection: rows of the batches that entered it, rows of their parts
     * that committed, rows refused one by one; stopped once most failed. */
    long bisect_rows, bisect_committed, bisect_refused;
    bool bisect_stopped;
};

enum write_event {
    WRITE_COMMITTED,  /* rows = rows in the batch, written = rows the upsert changed */
    WRITE_RETRYING,   /* transient failure; the batch waits `wait_us` and goes again */
    WRITE_BISECTED,   /* data error; the batch was split in two */
    WRITE_ROW_REFUSED,/* data error on one row; it goes to ingest_rejects */
    WRITE_REJECTS_DROPPED, /* the database refused the rejects themselves; rows kept */
    WRITE_DROPPED,    /* non-transient error or retries exhausted; the group fails */
    WRITE_CANCELLED,  /* the queue or pool was shut down */
    WRITE_MARK_REFUSED, /* committed, but the database refused the window's mark: not covered */
};

struct write_report {
    enum write_event event;
    const char *statement;    /* writer statement name, for logs */
    const char *sqlstate;     /* "" when none */
    const char *message;
    /* COMMITTED: rows = the batch's rows plus `skipped`, the group's rows the
     * skip cache kept out of PostgreSQL since its last commit (stored,
     * unchanged: counted with the next commit of the group, a mark-only
     * one if none else). Otherwise skipped = 0. */
    long rows, written, skipped;
    int attempt;
    int64_t wait_us;
    const struct batch *batch;
};

struct write_queue_hooks {
    /* Every outcome of every transaction, for logs and metrics. Optional. */
    void (*report)(void *user, struct write_group *g, const struct write_report *r);
    /* The group is closed and nothing of it is left in the queue or the
     * database: covered (coverage_written) or not (failed). Called once. */
    void (*group_settled)(void *user, struct write_group *g);
    /* Called before batches take idle connections, so the owner's own
     * statements (leases, calendar) go first and never starve behind rows. Optional. */
    void (*before_dispatch)(void *user);
};

struct write_queue_settings {
    int64_t retry_cap_us;  /* no retry waits longer */
    int max_attempts;      /* per batch for transient failures; 0 = until it commits */
    /* Slots of the skip cache (fingerprint.h, 16 bytes each): 0 = the default
     * FINGERPRINT_DEFAULT_ENTRIES, < 0 = no cache (every row is sent). */
    long skip_cache_entries;
};

struct write_queue_stats {
    uint64_t rows_skipped;        /* rows the skip cache kept out of PostgreSQL */
    uint64_t contracts_skipped;   /* contracts whose options statements were left out */
    uint64_t cache_forgets;       /* forget_all/forget_underlying calls, ours and the caller's */
    uint64_t cache_evictions;
    size_t cache_bytes;           /* 0 = no cache */
};

/* Returns 0 or a negative errno. The queue does not own the pool. */
int write_queue_create(struct write_queue **out, uv_loop_t *loop, struct pg_pool *pool,
                       const struct write_queue_settings *s, const struct write_queue_hooks *hooks,
                       void *user) __attribute__((warn_unused_result));

/* Sorts and deduplicates b (returns how many duplicates were dropped), and
 * queues it; the queue owns b from here. */
long write_queue_add(struct write_queue *q, struct write_group *g, struct batch *b);

/* The owner adds no more batches to g: its mark is written once the queued
 * ones commit (at once, as a mark-only transaction, when none are left). */
void write_queue_close_group(struct write_queue *q, struct write_group *g);

/* Starts what can start; call when a connection became idle. */
void write_queue_dispatch(struct write_queue *q);

/* The skip cache forgets the underlying's rows: call when its lease changes
 * hands (another process may have written them meanwhile). */
void write_queue_forget_underlying(struct write_queue *q, const char *underlying);
/* The skip cache forgets everything: rows may have gone from the database
 * behind our back (retention dropped partitions, a failover lost commits). */
void write_queue_forget_all(struct write_queue *q);
void write_queue_get_stats(const struct write_queue *q, struct write_queue_stats *out);

long write_queue_rows(const struct write_queue *q);       /* rows queued or in the database */
int write_queue_waiting(const struct write_queue *q);     /* batches queued */
int write_queue_in_flight(const struct write_queue *q);   /* transactions in the database */
bool write_queue_idle(const struct write_queue *q);       /* nothing queued, nothing in flight */

/* Frees every queued batch (their groups fail, and settle once nothing of them
 * is in flight), stops the retry timer, and frees the queue when the last
 * transaction in flight has returned; closed_cb then runs. */
void write_queue_close(struct write_queue *q, void (*closed_cb)(void *user), void *user);

#endif
