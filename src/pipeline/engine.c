/* engine.c - loop, HTTP client, pool, write queue, backpressure, signals, drain
 * and teardown, shared by every driver (run, backfill, repair). */
#include "optsnap/pipeline/engine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/db/batch.h"
#include "optsnap/ops/sd_notify.h"
#include "optsnap/pipeline/pager.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

#define ENGINE_MAX_OWNED 32

enum engine_state { ENGINE_RUNNING, ENGINE_DRAINING, ENGINE_CLOSING };

struct engine {
    uv_loop_t loop;
    bool loop_ready;
    struct settings *s;
    struct engine_config cfg;
    struct engine_driver d;
    struct api_origin origin;
    struct http_client *http;
    struct pg_pool *pool;
    struct write_queue *wq;
    enum engine_state state;
    bool forced, started, in_event, event_again;

    uv_timer_t shutdown_timer, age_timer;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_handle_t *owned[ENGINE_MAX_OWNED];
    int nowned;
    int holds;

    struct list_node waiting;     /* pagers waiting for room to fetch, FIFO */
    int nwaiting, fetches_in_flight;
    long rows_reserved;           /* by fetches in flight */
    struct list_node open_groups; /* groups with rows yet to come */
    long rows_open;               /* in open batches */
    struct list_node queries;     /* the drivers' statements waiting for a connection */
    int queries_in_flight;

    struct engine_counters c;
    struct metrics_sqlstate sqlstates[METRICS_MAX_SQLSTATES];
    size_t nsqlstates;
};

static void close_all(struct engine *e);

static int64_t mono_us(void) { return (int64_t)(uv_hrtime() / 1000); }

uv_loop_t *engine_loop(struct engine *e) { return &e->loop; }
struct settings *engine_settings(struct engine *e) { return e->s; }
const struct api_origin *engine_origin(const struct engine *e) { return &e->origin; }
struct http_client *engine_http(struct engine *e) { return e->http; }
struct pg_pool *engine_pool(struct engine *e) { return e->pool; }
struct write_queue *engine_write_queue(struct engine *e) { return e->wq; }
const struct engine_counters *engine_counters(const struct engine *e) { return &e->c; }
struct engine_counters *engine_counters_mut(struct engine *e) { return &e->c; }
bool engine_running(const struct engine *e) { return e->state == ENGINE_RUNNING; }
bool engine_closing(const struct engine *e) { return e->state == ENGINE_CLOSING; }
int engine_fetches_in_flight(const struct engine *e) { return e->fetches_in_flight; }
int engine_fetches_waiting(const struct engine *e) { return e->nwaiting; }

long engine_rows_pending(const struct engine *e)
{
    return e->rows_open + e->rows_reserved + (e->wq ? write_queue_rows(e->wq) : 0);
}

const struct metrics_sqlstate *engine_sqlstates(const struct engine *e, size_t *n)
{
    *n = e->nsqlstates;
    return e->sqlstates;
}

int engine_own_handle(struct engine *e, uv_handle_t *h)
{
    if (e->nowned >= ENGINE_MAX_OWNED)
        return -ENOSPC;
    e->owned[e->nowned++] = h;
    return 0;
}

void engine_hold(struct engine *e) { e->holds++; }
void engine_release(struct engine *e) { e->holds--; }

/* ---- the fetch queue ---- */

void engine_fetch_enqueue(struct engine *e, struct pager *p)
{
    list_push_back(&e->waiting, &p->link);
    p->queued = true;
    e->nwaiting++;
}

void engine_fetch_remove(struct engine *e, struct pager *p)
{
    if (!p->queued)
        return;
    list_remove(&p->link);
    p->queued = false;
    e->nwaiting--;
}

static struct pager *first_waiting(const struct engine *e)
{
    struct list_node *n = list_first(&e->waiting);
    return n ? list_entry(n, struct pager, link) : NULL;
}

static struct pager *fetch_pop(struct engine *e)
{
    struct pager *p = first_waiting(e);
    if (p)
        engine_fetch_remove(e, p);
    return p;
}

/* The pager's word that a request started or finished: what backpressure counts. */
void engine_fetch_started(struct engine *e, long reserve_rows);
void engine_fetch_finished(struct engine *e, long reserve_rows);

void engine_fetch_started(struct engine *e, long reserve_rows)
{
    e->fetches_in_flight++;
    e->rows_reserved += reserve_rows;
}

void engine_fetch_finished(struct engine *e, long reserve_rows)
{
    e->fetches_in_flight--;
    e->rows_reserved -= reserve_rows;
}

static void seal_open_groups(struct engine *e, int64_t opened_before_us)
{
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &e->open_groups) {
        struct engine_group *g = list_entry(n, struct engine_group, link);
        if (g->cur && g->cur_opened_us <= opened_before_us)
            engine_group_seal(e, g);
    }
}

/* Starts fetches while the wide pool has room and the queue has room for what
 * each may bring. A full queue starts nothing: then the rows waiting in partly
 * filled batches are written at once, or they would wait for pages that
 * cannot start. */
static void pump_fetches(struct engine *e)
{
    long max = e->cfg.queue_max_rows;
    struct pager *p = first_waiting(e);
    if (p && engine_rows_pending(e) + p->reserve_rows > max)
        seal_open_groups(e, INT64_MAX);
    while (e->state == ENGINE_RUNNING && (p = first_waiting(e)) != NULL &&
           e->fetches_in_flight < e->cfg.http_concurrency) {
        long need = p->reserve_rows;
        long pending = engine_rows_pending(e);
        if (pending > 0 && pending + need > max)
            break;
        pager_fetch_now(fetch_pop(e));
    }
}

/* ---- the driver's statements ---- */

static void query_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct engine_query *q = (struct engine_query *)txn; /* txn is its first member */
    struct engine *e = q->e;
    q->pending = false;
    e->queries_in_flight--;
    if (r->status == PG_TXN_SQL_ERROR)
        metrics_count_sqlstate(e->sqlstates, &e->nsqlstates, r->sqlstate);
    q->done(q, r);
    engine_after_event(e);
}

static void dispatch_queries(struct engine *e)
{
    struct list_node *n;
    while ((n = list_first(&e->queries)) != NULL && e->state != ENGINE_CLOSING && pg_pool_has_idle(e->pool)) {
        struct engine_query *q = list_entry(n, struct engine_query, link);
        q->txn.done = query_done;
        q->txn.user = q->user; /* what the statements' on_tuples get */
        if (pg_pool_submit(e->pool, &q->txn) != 0)
            break;
        list_remove(&q->link);
        e->queries_in_flight++;
    }
}

static void before_dispatch(void *user) { dispatch_queries(user); }

int engine_query_submit(struct engine *e, struct engine_query *q)
{
    if (e->state == ENGINE_CLOSING)
        return -ESHUTDOWN;
    if (q->pending)
        return -EBUSY;
    q->e = e;
    q->pending = true;
    list_push_back(&e->queries, &q->link);
    dispatch_queries(e);
    return 0;
}

int engine_query_one(struct engine *e, struct engine_query *q, struct pg_stmt stmt,
                     void (*done)(struct engine_query *q, const struct pg_txn_result *r), void *user)
{
    if (q->pending)
        return -EBUSY;
    memset(&q->txn, 0, sizeof q->txn);
    q->txn.stmts[0] = stmt;
    q->txn.nstmts = 1;
    q->done = done;
    q->user = user;
    return engine_query_submit(e, q);
}

static void cancel_queued_queries(struct engine *e)
{
    struct pg_txn_result r;
    memset(&r, 0, sizeof r);
    r.status = PG_TXN_CANCELLED;
    r.failed_stmt = -1;
    struct list_node *n;
    while ((n = list_pop_front(&e->queries)) != NULL) {
        struct engine_query *q = list_entry(n, struct engine_query, link);
        q->pending = false;
        q->done(q, &r);
    }
}

/* ---- rows ---- */

void engine_group_open(struct engine *e, struct engine_group *g)
{
    g->cur = NULL;
    list_push_back(&e->open_groups, &g->link);
}

static void group_unlink(struct engine_group *g)
{
    if (list_linked(&g->link))
        list_remove(&g->link);
}

void engine_group_fail(struct engine *e, struct engine_group *g, const char *why)
{
    (void)e;
    if (!g->wg.failed) {
        char q[200], ws[40];
        log_warn("window stays uncovered", "underlying=%s window=%s source=%s reason=%s",
                 log_quote(q, sizeof q, g->wg.underlying), timestamp_format(ws, sizeof ws, g->wg.cov.window_start_us),
                 row_source_name(g->wg.source), log_quote(q + 100, sizeof q - 100, why));
    }
    g->wg.failed = true;
}

static struct batch *open_batch(struct engine *e, struct engine_group *g)
{
    if (!list_linked(&g->link)) {
        /* a driver bug: the group was closed (its mark may be written), so a
         * row now would be neither written nor counted; say so, loudly */
        log_error("row for a closed group refused (a driver bug)", "underlying=%s", g->wg.underlying);
        engine_group_fail(e, g, "row after close");
        return NULL;
    }
    if (g->cur == NULL) {
        g->cur = batch_new();
        if (g->cur == NULL) {
            log_error("out of memory", "where=batch underlying=%s", g->wg.underlying);
            engine_group_fail(e, g, "out of memory");
            return NULL;
        }
        g->cur->owner = g;
        g->cur_opened_us = mono_us();
    }
    return g->cur;
}

int engine_group_add_row(struct engine *e, struct engine_group *g, const struct snapshot_row *row)
{
    struct batch *b = open_batch(e, g);
    if (b == NULL || batch_add_row(b, row) != 0) {
        engine_group_fail(e, g, "out of memory");
        return -1;
    }
    e->rows_open++;
    e->c.rows_fetched++;
    if (b->nrows >= (size_t)e->cfg.batch_rows)
        engine_group_seal(e, g);
    return 0;
}

int engine_group_add_reject(struct engine *e, struct engine_group *g, struct row_reject *rj)
{
    struct batch *b = open_batch(e, g);
    if (b == NULL || batch_add_reject(b, rj) != 0) {
        engine_group_fail(e, g, "out of memory");
        return -1;
    }
    e->c.rows_rejected++;
    return 0;
}

void engine_group_seal(struct engine *e, struct engine_group *g)
{
    struct batch *b = g->cur;
    g->cur = NULL;
    if (b == NULL)
        return;
    e->rows_open -= (long)b->nrows;
    if (e->state == ENGINE_CLOSING || (b->nrows == 0 && b->nrejects == 0)) {
        batch_free(b);
        return;
    }
    e->c.rows_deduped += (uint64_t)write_queue_add(e->wq, &g->wg, b);
}

void engine_group_close(struct engine *e, struct engine_group *g)
{
    engine_group_seal(e, g);
    group_unlink(g);
    if (e->state == ENGINE_CLOSING)
        return;
    write_queue_close_group(e->wq, &g->wg); /* may settle the group at once */
    engine_after_event(e);
}

static void on_group_settled(void *user, struct write_group *wg)
{
    struct engine *e = user;
    e->d.group_settled(e->d.self, (struct engine_group *)wg);
}

static void on_write_report(void *user, struct write_group *wg, const struct write_report *r)
{
    struct engine *e = user;
    char q[300], u[64];
    log_quote(u, sizeof u, wg->underlying);
    switch (r->event) {
    case WRITE_COMMITTED:
        e->c.rows_written += (uint64_t)r->written;
        e->c.rows_unchanged += (uint64_t)(r->rows - r->written);
        e->c.batches_committed++;
        break;
    case WRITE_CANCELLED:
    case WRITE_MARK_REFUSED:
        break;
    default:
        metrics_count_sqlstate(e->sqlstates, &e->nsqlstates, r->sqlstate);
        log_quote(q, sizeof q, r->message);
        break;
    }
    switch (r->event) {
    case WRITE_RETRYING:
        e->c.batches_retried++;
        log_warn("batch will be retried", "underlying=%s statement=%s sqlstate=%s attempt=%d wait_ms=%lld error=%s",
                 u, r->statement, r->sqlstate, r->attempt, (long long)(r->wait_us / 1000), q);
        break;
    case WRITE_BISECTED:
        e->c.db_errors++;
        e->c.batches_bisected++;
        log_info("data error: bisecting the batch", "underlying=%s statement=%s sqlstate=%s rows=%ld", u,
                 r->statement, r->sqlstate, r->rows);
        break;
    case WRITE_ROW_REFUSED: {
        char t[80];
        e->c.db_errors++;
        e->c.rows_rejected++;
        log_warn("row refused by the database: kept as a reject", "underlying=%s ticker=%s sqlstate=%s error=%s", u,
                 log_quote(t, sizeof t, r->batch->nrows ? r->batch->rows[0].contract.ticker : ""), r->sqlstate, q);
        break;
    }
    case WRITE_REJECTS_DROPPED:
        e->c.db_errors++;
        log_error("rejects refused by the database: dropped, window stays uncovered",
                  "underlying=%s sqlstate=%s error=%s", u, r->sqlstate, q);
        break;
    case WRITE_MARK_REFUSED:
        log_warn("the database refused the window's mark: it stays uncovered (clock ahead, window already live, "
                 "or lease lost)", "underlying=%s", u);
        break;
    case WRITE_DROPPED:
        e->c.db_errors++;
        e->c.batches_dropped++;
        log_error("batch failed: window stays uncovered", "underlying=%s statement=%s sqlstate=%s rows=%ld error=%s",
                  u, r->statement, r->sqlstate, r->rows, q);
        break;
    default:
        break;
    }
    if (e->d.write_report)
        e->d.write_report(e->d.self, (struct engine_group *)wg, r);
}

/* ---- drain and teardown ---- */

static void check_drained(struct engine *e)
{
    if (e->state != ENGINE_DRAINING)
        return;
    if (e->fetches_in_flight > 0 || !list_empty(&e->waiting) || !list_empty(&e->open_groups) ||
        !list_empty(&e->queries) || e->queries_in_flight > 0 ||
        !write_queue_idle(e->wq) || (e->d.busy && e->d.busy(e->d.self)))
        return;
    log_info("drained: everything fetched is committed", "command=%s rows_written=%llu rows_unchanged=%llu",
             e->cfg.name, (unsigned long long)e->c.rows_written, (unsigned long long)e->c.rows_unchanged);
    close_all(e);
}

void engine_after_event(struct engine *e)
{
    if (e->state == ENGINE_CLOSING || !e->started)
        return;
    if (e->in_event) {
        e->event_again = true;
        return;
    }
    e->in_event = true;
    do {
        e->event_again = false;
        pump_fetches(e);
        if (e->d.pump && e->state != ENGINE_CLOSING)
            e->d.pump(e->d.self);
        if (e->state == ENGINE_CLOSING)
            break;
        dispatch_queries(e);
        write_queue_dispatch(e->wq);
        check_drained(e);
    } while (e->event_again && e->state != ENGINE_CLOSING);
    e->in_event = false;
}

static void on_pool_notify(void *user)
{
    struct engine *e = user;
    dispatch_queries(e);
    engine_after_event(e);
}

static void close_own(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_http_closed(void *user) { ((struct engine *)user)->http = NULL; }
static void on_pool_closed(void *user) { ((struct engine *)user)->pool = NULL; }
static void on_wq_closed(void *user) { ((struct engine *)user)->wq = NULL; }

static void close_all(struct engine *e)
{
    if (e->state == ENGINE_CLOSING)
        return;
    e->state = ENGINE_CLOSING;
    if (e->d.closing)
        e->d.closing(e->d.self);
    for (int i = 0; i < e->nowned; i++)
        close_own(e->owned[i]);
    close_own((uv_handle_t *)&e->shutdown_timer);
    close_own((uv_handle_t *)&e->age_timer);
    close_own((uv_handle_t *)&e->sig_term);
    close_own((uv_handle_t *)&e->sig_int);
    close_own((uv_handle_t *)&e->sig_hup);
    /* waiting pagers end now; those in flight end when their cancelled request returns */
    struct pager *p;
    while ((p = fetch_pop(e)) != NULL)
        pager_end_waiting(p, "shutting down");
    struct list_node *n;
    while ((n = list_first(&e->open_groups)) != NULL) {
        struct engine_group *g = list_entry(n, struct engine_group, link);
        if (g->cur) {
            e->rows_open -= (long)g->cur->nrows;
            batch_free(g->cur);
            g->cur = NULL;
        }
        g->wg.failed = true;
        group_unlink(g);
    }
    cancel_queued_queries(e);
    if (e->http)
        http_client_close(e->http, on_http_closed, e);
    /* queued batches are dropped (their windows were never marked); the pool
     * then cancels what is in flight */
    if (e->wq)
        write_queue_close(e->wq, on_wq_closed, e);
    if (e->pool)
        pg_pool_close(e->pool, on_pool_closed, e);
}

void engine_stop_now(struct engine *e, const char *why)
{
    if (e->state == ENGINE_CLOSING)
        return;
    log_warn("stopping at once: uncommitted windows stay uncovered", "command=%s reason=%s queued_rows=%ld",
             e->cfg.name, why, engine_rows_pending(e));
    e->forced = true;
    close_all(e);
}

static void shutdown_timeout_cb(uv_timer_t *t) { engine_stop_now(t->data, "shutdown_timeout"); }

void engine_drain(struct engine *e, const char *why)
{
    if (e->state != ENGINE_RUNNING)
        return;
    e->state = ENGINE_DRAINING;
    if (sd_notify_send("STOPPING=1\nSTATUS=draining: no new requests, committing what is queued") < 0)
        log_debug("systemd notification failed", "%s", "");
    log_info("stopping: no new requests, draining what is in flight and queued", "command=%s reason=%s",
             e->cfg.name, why);
    if (e->d.drain)
        e->d.drain(e->d.self, why);
    /* fetches waiting for room end here; their groups stay uncovered */
    struct pager *p;
    while ((p = fetch_pop(e)) != NULL)
        pager_end_waiting(p, "shutting down");
    if (e->s->shutdown_timeout_us > 0 && e->state == ENGINE_DRAINING)
        uv_timer_start(&e->shutdown_timer, shutdown_timeout_cb, (uint64_t)(e->s->shutdown_timeout_us / 1000), 0);
    engine_after_event(e);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct engine *e = h->data;
    if (signum == SIGHUP) {
        if (e->state == ENGINE_RUNNING && e->d.reload) {
            e->d.reload(e->d.self);
            pg_pool_set_max_backoff(e->pool, e->s->retry_max_backoff_us); /* a reload may change it */
            if (e->wq)
                pg_pool_set_statement_timeout(e->pool, e->s->statement_timeout_us);
            engine_after_event(e);
        }
        return;
    }
    if (e->state == ENGINE_RUNNING)
        engine_drain(e, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    else if (e->state == ENGINE_DRAINING)
        engine_stop_now(e, "second signal");
}

static void age_tick(uv_timer_t *t)
{
    struct engine *e = t->data;
    if (e->state == ENGINE_CLOSING)
        return;
    seal_open_groups(e, mono_us() - e->cfg.batch_max_age_us);
    engine_after_event(e);
}

/* ---- set-up ---- */

static int start_http(struct engine *e)
{
    struct http_settings hs;
    const struct settings *s = e->s;
    http_settings_default(&hs);
    hs.concurrency = e->cfg.http_concurrency;
    hs.rate = s->http_rate;
    hs.total_timeout_us = s->http_timeout_us;
    hs.connect_timeout_us = s->http_connect_timeout_us;
    hs.max_attempts = s->http_max_attempts;
    hs.backoff_cap_us = s->retry_max_backoff_us;
    hs.api_key = s->api_key;
    hs.ca_file = s->ca_file[0] ? s->ca_file : NULL;
    if (e->cfg.user_agent)
        hs.user_agent = e->cfg.user_agent;
    if (http_client_create(&e->http, &e->loop, &hs)) {
        log_error("cannot start the HTTP client", "command=%s", e->cfg.name);
        return -1;
    }
    return 0;
}

static int start_db(struct engine *e)
{
    struct pg_pool_settings ps = {.conninfo = e->s->database_url,
                                  .size = e->cfg.db_connections,
                                  .statement_timeout_us = e->s->statement_timeout_us,
                                  .max_backoff_us = e->s->retry_max_backoff_us,
                                  .application_name = e->cfg.application_name};
    if (pg_pool_create(&e->pool, &e->loop, &ps, on_pool_notify, e)) {
        log_error("cannot start the database pool", "command=%s", e->cfg.name);
        return -1;
    }
    struct write_queue_settings wqs = {.retry_cap_us = e->s->retry_max_backoff_us,
                                       .max_attempts = e->cfg.write_max_attempts,
                                       .skip_cache_entries = e->cfg.skip_cache_entries > 0 ? e->cfg.skip_cache_entries
                                                                                          : -1};
    struct write_queue_hooks wqh = {.report = on_write_report, .group_settled = on_group_settled,
                                    .before_dispatch = before_dispatch};
    if (write_queue_create(&e->wq, &e->loop, e->pool, &wqs, &wqh, e)) {
        log_error("out of memory", "where=write queue");
        return -1;
    }
    return 0;
}

static void init_handles(struct engine *e)
{
    uv_timer_init(&e->loop, &e->shutdown_timer);
    uv_timer_init(&e->loop, &e->age_timer);
    uv_signal_init(&e->loop, &e->sig_term);
    uv_signal_init(&e->loop, &e->sig_int);
    uv_signal_init(&e->loop, &e->sig_hup);
    e->shutdown_timer.data = e->age_timer.data = e;
    e->sig_term.data = e->sig_int.data = e->sig_hup.data = e;
}

int engine_create(struct engine **out, struct settings *s, const struct engine_config *cfg,
                  const struct engine_driver *driver)
{
    *out = NULL;
    struct engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return -1;
    e->s = s;
    e->cfg = *cfg;
    e->d = *driver;
    list_init(&e->waiting);
    list_init(&e->open_groups);
    list_init(&e->queries);
    if (e->cfg.batch_rows < 1)
        e->cfg.batch_rows = 1;
    char err[300], q[300];
    if (api_origin_init(&e->origin, s->api_url) != 0) {
        log_error("bad api_url", "api_url=%s", log_quote(q, sizeof q, s->api_url));
        free(e);
        return -1;
    }
    if (api_origin_allow_hosts(&e->origin, s->api_allowed_hosts, err, sizeof err) != 0) {
        log_error("bad api_allowed_hosts", "error=%s", log_quote(q, sizeof q, err));
        free(e);
        return -1;
    }
    if (uv_loop_init(&e->loop) != 0) {
        free(e);
        return -1;
    }
    e->loop_ready = true;
    init_handles(e);
    if (start_http(e) != 0 || start_db(e) != 0) {
        e->state = ENGINE_RUNNING;
        close_all(e);
        uv_run(&e->loop, UV_RUN_DEFAULT);
        engine_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

/* libuv's rule, kept: the loop closes with nothing left open (a leak is a
 * failed run, never a silent one). */
static int close_loop(struct engine *e)
{
    if (!e->loop_ready)
        return 0;
    int rc = uv_loop_close(&e->loop);
    if (rc != 0 || e->holds != 0) {
        log_error("event loop did not close cleanly: a handle leaked", "command=%s error=%s holds=%d",
                  e->cfg.name, rc ? uv_strerror(rc) : "none", e->holds);
        return -1;
    }
    e->loop_ready = false;
    return 0;
}

int engine_run(struct engine *e)
{
    uv_signal_start(&e->sig_term, on_signal, SIGTERM);
    uv_signal_start(&e->sig_int, on_signal, SIGINT);
    uv_signal_start(&e->sig_hup, on_signal, SIGHUP);
    if (e->cfg.batch_max_age_us > 0) {
        uint64_t ms = (uint64_t)(e->cfg.batch_max_age_us / 2000);
        uv_timer_start(&e->age_timer, age_tick, ms ? ms : 1, ms ? ms : 1);
    }
    e->started = true;
    e->d.start(e->d.self);
    engine_after_event(e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    if (e->state != ENGINE_CLOSING) { /* nothing left to wait for, yet never closed: a driver bug */
        log_error("event loop ran dry before the engine closed", "command=%s", e->cfg.name);
        e->forced = true;
        close_all(e);
        uv_run(&e->loop, UV_RUN_DEFAULT);
    }
    return close_loop(e) == 0 && !e->forced ? 0 : 1;
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    if (close_loop(e) != 0)
        abort(); /* never run, yet a handle is open: a bug */
    free(e);
}
