/* engine.h - the one machinery under `run`, `backfill` and `repair`: the libuv
 * loop, the HTTP client (the WIDE pool), the PostgreSQL pool (the NARROW
 * one), the write queue, backpressure, signals, drain and the closers. A
 * driver says what to fetch (pagers, pager.h) and how a page becomes rows
 * (engine groups); the engine does everything else the same way for all.
 *
 * Lifecycle: engine_create (blocking set-up is over by then) -> engine_run
 * (driver.start, the loop, teardown, uv_loop_close() == 0) -> engine_free.
 * States: running -> draining (SIGTERM/SIGINT, run_for, or the driver's
 * engine_drain: no new fetch starts, fetches in flight finish, queued rows
 * commit, within shutdown_timeout) -> closing (everything closed; a second
 * signal or the timeout gets here at once, and the run counts as forced).
 * No blocking call after engine_create: every statement goes through the
 * pool (engine_query_submit, or the write queue for rows). */
#ifndef OPTSNAP_ENGINE_H
#define OPTSNAP_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/api/api_origin.h"
#include "optsnap/config/settings.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/db/write_queue.h"
#include "optsnap/http/http_client.h"
#include "optsnap/ops/metrics.h"
#include "optsnap/util/list.h"

struct engine;

/* Rows of one write group (a live sweep's window, a backfill unit): the open
 * batch being filled and its coverage mark. Embedded in its driver's object,
 * which must outlive it until driver.group_settled. Set wg.underlying,
 * wg.source, wg.cov and wg.owner before engine_group_open. */
struct engine_group {
    struct write_group wg;
    /* the engine's */
    struct batch *cur;               /* open batch, NULL when none */
    int64_t cur_opened_us;           /* real time the open batch got its first row */
    struct list_node link;           /* open groups: sealed on batch_max_age and when the queue is full */
};

/* A statement (or a few) of the driver's own, through the pool: leases,
 * calendar, partitions, coverage checks. Embedded in the driver; fill
 * txn.stmts/txn.nstmts (their arrays must live until done), set done/user. */
struct engine_query {
    struct pg_txn txn; /* first; its statements' on_tuples get `user` */
    void (*done)(struct engine_query *q, const struct pg_txn_result *r);
    void *user;
    /* the engine's */
    struct engine *e;
    struct list_node link;
    bool pending; /* queued or in the database */
};

struct engine_driver {
    void *self;
    /* The loop runs: start working. */
    void (*start)(void *self);
    /* Capacity may have freed (a commit, a finished fetch): start what waits. Optional. */
    void (*pump)(void *self);
    /* Stop starting new work; what is in progress finishes. Optional. */
    void (*drain)(void *self, const char *why);
    /* True while the driver has work of its own in progress that the engine
     * cannot see (units being prepared, queries it will follow up). Optional. */
    bool (*busy)(void *self);
    /* SIGHUP. Optional (NULL: ignored). */
    void (*reload)(void *self);
    /* A group's batches and mark are all done with: covered or not. */
    void (*group_settled)(void *self, struct engine_group *g);
    /* Every write outcome, after the engine has counted and logged it. Optional. */
    void (*write_report)(void *self, struct engine_group *g, const struct write_report *r);
    /* The engine is closing: stop timers of the driver's own that were not
     * given to engine_own_handle, forget pagers and groups (they are failed
     * and cancelled by the engine). Optional. */
    void (*closing)(void *self);
};

struct engine_config {
    const char *name;            /* "run", "backfill", "repair": logs */
    const char *application_name;/* PostgreSQL application_name */
    const char *user_agent;      /* HTTP User-Agent */
    int http_concurrency;
    int db_connections;
    long queue_max_rows;         /* rows fetched and not yet committed; no fetch starts beyond it */
    int batch_rows;
    int64_t batch_max_age_us;    /* a partly filled batch is written after this long (0 = never) */
    int write_max_attempts;      /* per batch for transient database errors; 0 = until it commits */
    long skip_cache_entries;     /* the write queue's skip cache (run re-polls); 0 = none */
};

/* Counters every driver shares (metrics and the final log line). */
struct engine_counters {
    uint64_t pages, parse_errors, pages_capped, requests_failed;
    uint64_t rows_fetched, rows_written, rows_unchanged, rows_rejected, rows_deduped;
    uint64_t batches_committed, batches_retried, batches_bisected, batches_dropped;
    uint64_t db_errors;
};

/* Creates the loop and its subsystems from settings s (kept by reference;
 * the driver may change reloadable fields). The driver is copied. Returns
 * 0, or -1 (logged). On failure nothing is left to free. */
int engine_create(struct engine **out, struct settings *s, const struct engine_config *cfg,
                  const struct engine_driver *driver) __attribute__((warn_unused_result));

/* Runs the loop until everything is closed. Returns 0 after a drain that
 * finished, 1 when stopped at once (second signal, shutdown_timeout, a
 * failure of the engine's own). */
int engine_run(struct engine *e);

/* Frees the engine after engine_run (or instead of it). */
void engine_free(struct engine *e);

uv_loop_t *engine_loop(struct engine *e);
struct settings *engine_settings(struct engine *e);
const struct api_origin *engine_origin(const struct engine *e);
struct http_client *engine_http(struct engine *e);
struct pg_pool *engine_pool(struct engine *e);
struct write_queue *engine_write_queue(struct engine *e); /* NULL before start */
const struct engine_counters *engine_counters(const struct engine *e);
struct engine_counters *engine_counters_mut(struct engine *e);
bool engine_running(const struct engine *e);   /* not draining or closing */
bool engine_closing(const struct engine *e);
/* Rows fetched and not yet committed (open batches, queue, requests' reservations). */
long engine_rows_pending(const struct engine *e);
int engine_fetches_in_flight(const struct engine *e);
int engine_fetches_waiting(const struct engine *e);
/* SQLSTATE counts of database errors seen, for metrics. */
const struct metrics_sqlstate *engine_sqlstates(const struct engine *e, size_t *n);

/* The driver's own handle (a timer, a signal), initialised on engine_loop:
 * the engine closes it at teardown. Returns 0, or -ENOSPC (too many). */
int engine_own_handle(struct engine *e, uv_handle_t *h) __attribute__((warn_unused_result));
/* An asynchronous close of the driver's own (a server): the loop is closed
 * only after as many engine_release as engine_hold. */
void engine_hold(struct engine *e);
void engine_release(struct engine *e);

/* Stops starting new work and drains, as SIGTERM does (e.g. max_sweeps
 * reached, or the driver has nothing left to do). */
void engine_drain(struct engine *e, const char *why);
/* Stops at once: what is queued is dropped (its windows stay uncovered). */
void engine_stop_now(struct engine *e, const char *why);

/* ---- rows ---- */
void engine_group_open(struct engine *e, struct engine_group *g);
/* Copies the row into the open batch (a batch of batch_rows is sealed). 0 or -1 (out of memory: the group fails). */
int engine_group_add_row(struct engine *e, struct engine_group *g, const struct snapshot_row *row)
    __attribute__((warn_unused_result));
/* Moves the reject in (see batch_add_reject). 0 or -1 (out of memory: the group fails). */
int engine_group_add_reject(struct engine *e, struct engine_group *g, struct row_reject *rj)
    __attribute__((warn_unused_result));
/* Hands the open batch to the write queue now. */
void engine_group_seal(struct engine *e, struct engine_group *g);
/* The group gets no more rows: its mark is written after its batches commit
 * (unless it failed); driver.group_settled follows, maybe from inside this call. */
void engine_group_close(struct engine *e, struct engine_group *g);
/* The group's window is not complete: no mark. Logged once with why. */
void engine_group_fail(struct engine *e, struct engine_group *g, const char *why);

/* ---- the driver's statements ---- */
/* Queues q for the next idle connection (ahead of row batches). q->done runs
 * exactly once, from the loop, with PG_TXN_CANCELLED when the engine closes
 * first. A query already pending is left as it is (returns -EBUSY). */
int engine_query_submit(struct engine *e, struct engine_query *q) __attribute__((warn_unused_result));

/* One statement as q: fills q's transaction with stmt alone, sets done and
 * user, and submits it. What engine_query_submit returns. */
int engine_query_one(struct engine *e, struct engine_query *q, struct pg_stmt stmt,
                     void (*done)(struct engine_query *q, const struct pg_txn_result *r), void *user);

/* ---- internal to pipeline/: the pager's side of the fetch queue ---- */
struct pager;
void engine_fetch_enqueue(struct engine *e, struct pager *p);
void engine_fetch_remove(struct engine *e, struct pager *p);
void engine_after_event(struct engine *e); /* pump, dispatch, check the drain */

#endif
