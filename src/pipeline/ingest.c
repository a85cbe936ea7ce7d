/* ingest.c - `optsnap run`: sweeps every underlying each cadence window through
 * the wide HTTP pool into the narrow PostgreSQL pool, with backpressure. */
#include "optsnap/pipeline/ingest.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "optsnap/api/api_origin.h"
#include "optsnap/util/array.h"
#include "optsnap/util/backoff.h"
#include "optsnap/db/batch.h"
#include "optsnap/commands.h"
#include "optsnap/http/http_client.h"
#include "optsnap/http/http_server.h"
#include "optsnap/ops/metrics.h"
#include "optsnap/util/log.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/pipeline/schedule.h"
#include "optsnap/ops/sd_notify.h"
#include "optsnap/api/snapshot_parse.h"
#include "optsnap/util/timeutil.h"
#include "optsnap/db/write_queue.h"
#include "optsnap/db/writer.h"

extern char **environ;

#define MAX_PARSE_RETRIES 3
#define SESSION_LOOKBACK_US (2 * USEC_PER_DAY)
#define SESSION_LOOKAHEAD_US (14 * USEC_PER_DAY)

struct ingest;

struct underlying_state {
    char name[16];
    struct sweep *active;
    int64_t last_window_us; /* last window a sweep was started for */
    bool retired;           /* dropped from the universe by a reload: no new sweeps */
    /* for /metrics and the status page */
    int64_t newest_us;      /* newest committed last_updated, 0 = none */
    int64_t last_covered_us, last_covered_real_us;
    double last_sweep_seconds;
    uint64_t rows_written, rows_rejected, sweeps_covered, sweeps_incomplete, errors;
    struct coverage_span *timeline; /* malloc'd, refreshed from ingest_coverage */
    size_t ntimeline, timeline_cap;
};

struct sweep {
    struct ingest *ing;
    struct underlying_state *u;
    int64_t window_start_us, window_end_us;
    char *url;               /* next page to fetch, malloc'd */
    bool fetch_in_flight, fetch_done;
    struct write_group g;    /* its batches and its coverage mark, in the write queue */
    int parse_retries;
    long rows_fetched;
    int pages;
    struct batch *cur;       /* the open batch */
    int64_t cur_opened_real_us;
    uint64_t *cursors;       /* hashes of next_urls seen: a repeat means a loop */
    size_t ncursors, cursors_cap;
    struct sweep *next_ready;
    int64_t started_real_us;
};

struct db_work {
    struct writer_job job;
    struct batch *batch;
    struct ingest *ing;
};

enum ingest_state { ING_RUNNING, ING_DRAINING, ING_CLOSING };

struct ingest {
    uv_loop_t *loop;
    struct settings *s;
    struct market_clock clock;
    struct session_set sessions;
    bool sessions_refreshing;
    struct http_client *http;
    struct pg_pool *pool;
    struct underlying_state **us; /* each malloc'd: sweeps point at them across reloads */
    int nus, us_cap;

    struct sweep *ready_head, *ready_tail; /* sweeps waiting to fetch their next page */
    struct write_queue *wq;                /* sealed batches -> the pool */
    long rows_open;                        /* rows in open batches and reserved by requests in flight */
    int fetches_in_flight;
    int db_in_flight;                      /* maintenance and timeline transactions */
    int live_sweeps;

    uv_timer_t tick_timer, stats_timer, shutdown_timer, run_for_timer, age_timer;
    uv_signal_t sig_term, sig_int, sig_hup;
    int open_handles;
    enum ingest_state state;
    bool forced;
    int windows_scheduled;
    bool last_window_scheduled; /* max_sweeps reached: finish, then drain */
    int32_t maintained_day;   /* market day partitions were last ensured for */
    bool maintenance_pending;
    int64_t sessions_from_us, sessions_to_us; /* range asked for by the refresh in flight */
    struct pg_txn maint_txn;
    char maint_params[3][40];
    const char *maint_values[3];

    struct snapshot_page page;
    struct ingest_counters c;
    /* observability */
    struct http_server *listener;
    uv_timer_t watchdog_timer, timeline_timer;
    bool ready_sent, timeline_refreshing;
    struct metrics_sqlstate sqlstates[METRICS_MAX_SQLSTATES];
    size_t nsqlstates;
    double last_sweep_seconds;
    long uncovered_windows;
    int64_t timeline_from_us, timeline_to_us, started_us;
    struct pg_txn timeline_txn;
    char timeline_params[4][40];
    const char *timeline_values[4];
    char *universe_array; /* "{SPY,QQQ}" for = ANY($n) */
    int argc;             /* the command line, for SIGHUP's re-read */
    char **argv;
    char last_stats[256];
    struct api_origin origin;
};

static void pump(struct ingest *ing);
static void dispatch(struct ingest *ing);
static void check_drained(struct ingest *ing);
static void begin_drain(struct ingest *ing, const char *why);

static int64_t real_now(void) { return time_now_us(); }

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- the ready queue: sweeps that want their next page fetched ---- */

static void ready_push(struct ingest *ing, struct sweep *sw)
{
    sw->next_ready = NULL;
    if (ing->ready_tail)
        ing->ready_tail->next_ready = sw;
    else
        ing->ready_head = sw;
    ing->ready_tail = sw;
}

static struct sweep *ready_pop(struct ingest *ing)
{
    struct sweep *sw = ing->ready_head;
    if (sw) {
        ing->ready_head = sw->next_ready;
        if (ing->ready_head == NULL)
            ing->ready_tail = NULL;
        sw->next_ready = NULL;
    }
    return sw;
}

/* Rows parsed and not yet committed: what queue_max_rows bounds. */
static long rows_pending(const struct ingest *ing) { return ing->rows_open + write_queue_rows(ing->wq); }

/* ---- sweeps ---- */

static void sweep_free(struct sweep *sw)
{
    batch_free(sw->cur);
    free(sw->cursors);
    free(sw->url);
    free(sw);
}

/* Seals the open batch into the write queue. A final seal always enqueues
 * (an empty final batch carries only the coverage mark). */
/* Hands the open batch to the write queue; the final seal closes the sweep's
 * group, so its coverage mark follows once every batch has committed. */
static void sweep_seal(struct sweep *sw, bool final)
{
    struct ingest *ing = sw->ing;
    struct batch *b = sw->cur;
    sw->cur = NULL;
    if (b != NULL) {
        ing->rows_open -= (long)b->nrows;
        if (b->nrows == 0 && b->nrejects == 0)
            batch_free(b);
        else
            ing->c.rows_deduped += (uint64_t)write_queue_add(ing->wq, &sw->g, b);
    }
    if (final) {
        sw->g.cov.rows = sw->rows_fetched;
        write_queue_close_group(ing->wq, &sw->g); /* may settle and free the sweep */
    }
}

static void sweep_fail(struct sweep *sw, const char *why)
{
    if (!sw->g.failed) {
        char q[200], ws[40];
        log_warn("sweep incomplete: window stays uncovered", "underlying=%s window=%s reason=%s",
                 sw->u->name, timestamp_format(ws, sizeof ws, sw->window_start_us),
                 log_quote(q, sizeof q, why));
    }
    sw->g.failed = true;
}

/* No more pages: the sweep is settled by the write queue (on_group_settled). */
static void sweep_fetch_over(struct sweep *sw)
{
    sw->fetch_done = true;
    free(sw->url);
    sw->url = NULL;
    sweep_seal(sw, true);
}

/* The write queue's word that a sweep's rows and mark are all done with. */
static void on_group_settled(void *user, struct write_group *g)
{
    struct ingest *ing = user;
    struct sweep *sw = g->owner;
    char ws[40];
    double secs = (double)(real_now() - sw->started_real_us) / 1e6;
    if (g->coverage_written) {
        ing->c.sweeps_covered++;
        sw->u->sweeps_covered++;
        sw->u->last_covered_us = sw->window_start_us;
        sw->u->last_covered_real_us = real_now();
        sw->u->last_sweep_seconds = secs;
        ing->last_sweep_seconds = secs;
        log_debug("sweep covered", "underlying=%s window=%s rows=%ld pages=%d seconds=%.3f",
                  sw->u->name, timestamp_format(ws, sizeof ws, sw->window_start_us),
                  sw->rows_fetched, sw->pages, secs);
    } else {
        ing->c.sweeps_incomplete++;
        sw->u->sweeps_incomplete++;
    }
    sw->u->active = NULL;
    ing->live_sweeps--;
    sweep_free(sw);
    check_drained(ing);
}

static void on_page(void *user, const struct http_response *resp)
{
    struct sweep *sw = user;
    struct ingest *ing = sw->ing;
    sw->fetch_in_flight = false;
    ing->fetches_in_flight--;
    ing->rows_open -= ing->s->page_limit; /* the reservation made in pump() */

    if (ing->state == ING_CLOSING) {
        /* close_all() leaves this sweep for its request's cancellation to free */
        if (sw->u->active == sw)
            sw->u->active = NULL;
        sweep_free(sw);
        return;
    }
    if (resp->outcome == HTTP_CANCELLED) {
        sweep_fail(sw, "cancelled");
        sweep_fetch_over(sw);
        return;
    }
    if (resp->outcome != HTTP_OK) {
        char q[200];
        log_error("snapshot request failed", "underlying=%s status=%ld attempts=%d error=%s",
                  sw->u->name, resp->status, resp->attempts,
                  log_quote(q, sizeof q, resp->error ? resp->error : ""));
        sweep_fail(sw, "request failed");
        sweep_fetch_over(sw);
        goto out;
    }

    char err[512];
    snapshot_page_reset(&ing->page);
    int rc = snapshot_page_parse(&ing->page, resp->body, resp->body_len, sw->u->name, err, sizeof err);
    if (rc != PARSE_OK) {
        char q[600];
        ing->c.parse_errors++;
        if (rc == PARSE_ERR_JSON && sw->parse_retries < MAX_PARSE_RETRIES && ing->state == ING_RUNNING) {
            sw->parse_retries++;
            log_warn("bad snapshot page, fetching it again", "underlying=%s try=%d error=%s",
                     sw->u->name, sw->parse_retries, log_quote(q, sizeof q, err));
            ready_push(ing, sw);
            goto out;
        }
        log_error("bad snapshot page", "underlying=%s error=%s", sw->u->name,
                  log_quote(q, sizeof q, err));
        sweep_fail(sw, "bad page");
        sweep_fetch_over(sw);
        goto out;
    }
    sw->parse_retries = 0;
    sw->pages++;
    ing->c.pages++;

    for (size_t i = 0; i < ing->page.nrows || i < ing->page.nrejects; i++) {
        if (sw->cur == NULL) {
            sw->cur = batch_new();
            if (sw->cur == NULL) {
                log_error("out of memory", "where=batch underlying=%s", sw->u->name);
                sweep_fail(sw, "out of memory");
                break;
            }
            sw->cur->owner = sw;
            sw->cur_opened_real_us = real_now();
        }
        if (i < ing->page.nrows) {
            if (batch_add_row(sw->cur, &ing->page.rows[i])) {
                sweep_fail(sw, "out of memory");
                break;
            }
            sw->rows_fetched++;
            ing->rows_open++;
            ing->c.rows_fetched++;
        }
        if (i < ing->page.nrejects) {
            ing->c.rows_rejected++;
            sw->u->rows_rejected++;
            char q[160];
            log_info("row rejected", "underlying=%s ticker=%s reason=%s request_id=%s",
                     sw->u->name, ing->page.rejects[i].ticker,
                     log_quote(q, sizeof q, ing->page.rejects[i].reason), ing->page.request_id);
            if (batch_add_reject(sw->cur, &ing->page.rejects[i])) {
                sweep_fail(sw, "out of memory");
                break;
            }
        }
        if (sw->cur->nrows >= (size_t)ing->s->batch_rows)
            sweep_seal(sw, false);
    }
    if (sw->cur)
        snprintf(sw->cur->request_id, sizeof sw->cur->request_id, "%s", ing->page.request_id);

    const char *next = ing->page.next_url;
    if (next == NULL || sw->g.failed) {
        sweep_fetch_over(sw);
        goto out;
    }
    if (!api_origin_owns(&ing->origin, next)) {
        char q[200];
        log_error("next_url points away from api_url: not followed (the key would go with it)",
                  "underlying=%s next_url=%s", sw->u->name, log_quote(q, sizeof q, next));
        sweep_fail(sw, "next_url off origin");
        sweep_fetch_over(sw);
        goto out;
    }
    uint64_t h = hash_str(next);
    for (size_t k = 0; k < sw->ncursors; k++) {
        if (sw->cursors[k] == h) {
            log_error("next_url cursor repeats: pagination loop", "underlying=%s page=%d",
                      sw->u->name, sw->pages);
            sweep_fail(sw, "cursor loop");
            sweep_fetch_over(sw);
            goto out;
        }
    }
    if (array_reserve((void **)&sw->cursors, &sw->cursors_cap, sw->ncursors + 1, sizeof *sw->cursors)) {
        sweep_fail(sw, "out of memory");
        sweep_fetch_over(sw);
        goto out;
    }
    sw->cursors[sw->ncursors++] = h;
    if (ing->state != ING_RUNNING) {
        sweep_fail(sw, "shutting down");
        sweep_fetch_over(sw);
        goto out;
    }
    char *nu = strdup(next);
    if (nu == NULL) {
        sweep_fail(sw, "out of memory");
        sweep_fetch_over(sw);
        goto out;
    }
    free(sw->url);
    sw->url = nu;
    ready_push(ing, sw);
out:
    pump(ing);
    dispatch(ing);
    check_drained(ing);
}

/* Starts fetches while the wide pool has room and the queue has room for a
 * full page per request in flight: a full queue starts nothing new. */
static void seal_open_batches(struct ingest *ing, int64_t older_than_real_us)
{
    bool sealed = false;
    for (int i = 0; i < ing->nus; i++) {
        struct sweep *sw = ing->us[i]->active;
        if (sw && sw->cur && sw->cur_opened_real_us <= older_than_real_us) {
            sweep_seal(sw, false);
            sealed = true;
        }
    }
    if (sealed)
        dispatch(ing);
}

static void pump(struct ingest *ing)
{
    if (ing->state != ING_RUNNING)
        return;
    if (ing->ready_head && rows_pending(ing) + ing->s->page_limit > ing->s->queue_max_rows) {
        /* The queue is full. Rows waiting in partly filled batches would wait
         * for pages that cannot start: write them now, so the queue drains. */
        seal_open_batches(ing, INT64_MAX);
    }
    while (ing->ready_head && ing->fetches_in_flight < ing->s->http_concurrency &&
           rows_pending(ing) + ing->s->page_limit <= ing->s->queue_max_rows) {
        struct sweep *sw = ready_pop(ing);
        if (http_client_get(ing->http, sw->url, on_page, sw)) {
            sweep_fail(sw, "cannot start request");
            sweep_fetch_over(sw);
            continue;
        }
        sw->fetch_in_flight = true;
        ing->fetches_in_flight++;
        ing->rows_open += ing->s->page_limit;
    }
}

static void sweep_start(struct ingest *ing, struct underlying_state *u, int64_t ws)
{
    struct sweep *sw = calloc(1, sizeof *sw);
    char url[1024];
    snprintf(url, sizeof url, "%s/v3/snapshot/options/%s?limit=%d", ing->origin.base, u->name,
             ing->s->page_limit);
    if (sw == NULL || (sw->url = strdup(url)) == NULL) {
        free(sw);
        log_error("out of memory", "where=sweep underlying=%s", u->name);
        return;
    }
    sw->ing = ing;
    sw->u = u;
    sw->window_start_us = ws;
    sw->window_end_us = ws + ing->s->cadence_us;
    sw->started_real_us = real_now();
    snprintf(sw->g.underlying, sizeof sw->g.underlying, "%s", u->name);
    sw->g.source = ROW_SOURCE_LIVE;
    sw->g.owner = sw;
    sw->g.cov.window_start_us = sw->window_start_us;
    sw->g.cov.window_end_us = sw->window_end_us;
    u->active = sw;
    u->last_window_us = ws;
    ing->live_sweeps++;
    ing->c.sweeps_started++;
    ready_push(ing, sw);
}

/* ---- writing: the write queue does it; this reports and counts ---- */

static void on_write_report(void *user, struct write_group *g, const struct write_report *r)
{
    struct ingest *ing = user;
    struct sweep *sw = g->owner;
    char q[300];
    switch (r->event) {
    case WRITE_COMMITTED:
        ing->c.rows_written += (uint64_t)r->written;
        ing->c.rows_unchanged += (uint64_t)(r->rows - r->written);
        ing->c.batches_committed++;
        sw->u->rows_written += (uint64_t)r->written;
        for (size_t i = 0; i < r->batch->nrows; i++)
            if (r->batch->rows[i].last_updated_us > sw->u->newest_us)
                sw->u->newest_us = r->batch->rows[i].last_updated_us;
        return;
    case WRITE_CANCELLED:
        return;
    default:
        break;
    }
    metrics_count_sqlstate(ing->sqlstates, &ing->nsqlstates, r->sqlstate);
    sw->u->errors++;
    log_quote(q, sizeof q, r->message);
    switch (r->event) {
    case WRITE_RETRYING:
        ing->c.batches_retried++;
        log_warn("batch will be retried", "underlying=%s statement=%s sqlstate=%s attempt=%d wait_ms=%lld error=%s",
                 g->underlying, r->statement, r->sqlstate, r->attempt, (long long)(r->wait_us / 1000), q);
        break;
    case WRITE_BISECTED:
        ing->c.db_errors++;
        ing->c.batches_bisected++;
        log_info("data error: bisecting the batch", "underlying=%s statement=%s sqlstate=%s rows=%ld",
                 g->underlying, r->statement, r->sqlstate, r->rows);
        break;
    case WRITE_ROW_REFUSED:
        ing->c.db_errors++;
        ing->c.rows_rejected++;
        log_warn("row refused by the database: kept as a reject", "underlying=%s ticker=%s sqlstate=%s error=%s",
                 g->underlying, r->batch->nrows ? r->batch->rows[0].contract.ticker : "", r->sqlstate, q);
        break;
    case WRITE_REJECTS_DROPPED:
        ing->c.db_errors++;
        log_error("rejects refused by the database: dropped, window stays uncovered",
                  "underlying=%s sqlstate=%s error=%s", g->underlying, r->sqlstate, q);
        break;
    case WRITE_DROPPED:
        ing->c.db_errors++;
        ing->c.batches_dropped++;
        log_error("batch failed: window stays uncovered", "underlying=%s statement=%s sqlstate=%s rows=%ld error=%s",
                  g->underlying, r->statement, r->sqlstate, r->rows, q);
        break;
    default:
        break;
    }
}

static void maintenance_submit(struct ingest *ing);

static void dispatch(struct ingest *ing)
{
    if (ing->state == ING_CLOSING)
        return;
    if (ing->maintenance_pending)
        maintenance_submit(ing);
    write_queue_dispatch(ing->wq);
}

static void notify_ready_once(struct ingest *ing);

/* A connection became idle: after a commit the queue has room again, so
 * fetching resumes; after the last one a drain may be complete. */
static void on_pool_notify(void *user)
{
    struct ingest *ing = user;
    notify_ready_once(ing);
    dispatch(ing);
    pump(ing);
    check_drained(ing);
}

/* ---- sessions and partitions: refreshed through the pool, never blocking ---- */

static void on_sessions(void *user, const void *pgresult)
{
    struct ingest *ing = user;
    const PGresult *res = pgresult;
    session_set_clear(&ing->sessions);
    ing->sessions.loaded_from_us = ing->sessions_from_us;
    ing->sessions.loaded_to_us = ing->sessions_to_us;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t o = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        int64_t c = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (session_set_add(&ing->sessions, o, c))
            log_error("out of memory", "where=sessions");
    }
}

static const char sql_sessions[] =
    "SELECT (extract(epoch FROM open_at) * 1000000)::int8, (extract(epoch FROM close_at) * 1000000)::int8 "
    "FROM optsnap_sessions($1::text, $2::timestamptz, $3::timestamptz) ORDER BY open_at";
static const char sql_partitions[] =
    "SELECT optsnap_ensure_partitions(($1::timestamptz)::date - 1, ($1::timestamptz)::date + 7)";

static void on_maintenance_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct ingest *ing = txn->user;
    ing->db_in_flight--;
    ing->sessions_refreshing = false;
    if (r->status != PG_TXN_OK) {
        char q[300];
        log_warn("maintenance failed, will retry", "sqlstate=%s error=%s", r->sqlstate,
                 log_quote(q, sizeof q, r->message));
        ing->maintained_day = 0;
    }
    check_drained(ing);
}

static void maintenance_submit(struct ingest *ing)
{
    if (ing->sessions_refreshing || !pg_pool_has_idle(ing->pool))
        return;
    int64_t now = market_clock_now(&ing->clock, real_now());
    char from[40], to[40], nowtxt[40];
    timestamp_format(nowtxt, sizeof nowtxt, now);
    timestamp_format(from, sizeof from, now - SESSION_LOOKBACK_US);
    timestamp_format(to, sizeof to, now + SESSION_LOOKAHEAD_US);
    memcpy(ing->maint_params[0], nowtxt, sizeof nowtxt);
    memcpy(ing->maint_params[1], from, sizeof from);
    memcpy(ing->maint_params[2], to, sizeof to);
    memset(&ing->maint_txn, 0, sizeof ing->maint_txn);
    ing->maint_values[0] = ing->maint_params[0];
    ing->maint_txn.stmts[0] = (struct pg_stmt){.name = "ensure_partitions", .sql = sql_partitions,
                                               .nparams = 1, .values = ing->maint_values};
    int n = 1;
    static const char *sess_values[3];
    if (!ing->sessions.always_open) {
        sess_values[0] = ing->s->calendar;
        sess_values[1] = ing->maint_params[1];
        sess_values[2] = ing->maint_params[2];
        ing->maint_txn.stmts[n++] = (struct pg_stmt){.name = "load_sessions", .sql = sql_sessions,
                                                     .nparams = 3, .values = sess_values,
                                                     .on_tuples = on_sessions};
        ing->sessions_from_us = now - SESSION_LOOKBACK_US;
        ing->sessions_to_us = now + SESSION_LOOKAHEAD_US;
    }
    ing->maint_txn.nstmts = n;
    ing->maint_txn.done = on_maintenance_done;
    ing->maint_txn.user = ing;
    if (pg_pool_submit(ing->pool, &ing->maint_txn) == 0) {
        ing->maintenance_pending = false;
        ing->sessions_refreshing = true;
        ing->db_in_flight++;
    }
}

/* Blocking, once at start-up: the schema must be there and the calendar known
 * before the first window is judged. */
static int startup_checks(struct ingest *ing)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {ing->s->database_url, "optsnap-startup", "10", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        char q[300], msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        char *nl = strchr(msg, '\n');
        if (nl)
            *nl = '\0';
        log_error("cannot connect to the database", "error=%s", log_quote(q, sizeof q, msg));
        PQfinish(pg);
        return -1;
    }
    PGresult *res = PQexec(pg, "SELECT max(version) FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("the schema is missing: run `optsnap migrate` first", "db=%s", PQdb(pg));
        PQclear(res);
        PQfinish(pg);
        return -1;
    }
    PQclear(res);
    int64_t now = market_clock_now(&ing->clock, real_now());
    char nowtxt[40], from[40], to[40];
    const char *pv[1] = {timestamp_format(nowtxt, sizeof nowtxt, now)};
    res = PQexecParams(pg, sql_partitions, 1, NULL, pv, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("cannot create partitions ahead (rows go to the default partition)", "error=%s",
                 PQresultErrorField(res, PG_DIAG_SQLSTATE));
    }
    PQclear(res);
    if (!ing->sessions.always_open) {
        const char *sv[3] = {ing->s->calendar, timestamp_format(from, sizeof from, now - SESSION_LOOKBACK_US),
                             timestamp_format(to, sizeof to, now + SESSION_LOOKAHEAD_US)};
        res = PQexecParams(pg, sql_sessions, 3, NULL, sv, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            log_error("cannot load the trading calendar", "calendar=%s sqlstate=%s", ing->s->calendar,
                      PQresultErrorField(res, PG_DIAG_SQLSTATE));
            PQclear(res);
            PQfinish(pg);
            return -1;
        }
        ing->sessions_from_us = now - SESSION_LOOKBACK_US;
        ing->sessions_to_us = now + SESSION_LOOKAHEAD_US;
        on_sessions(ing, res);
        PQclear(res);
        log_info("trading calendar loaded", "calendar=%s sessions=%zu", ing->s->calendar, ing->sessions.n);
    }
    PQfinish(pg);
    ing->maintained_day = (int32_t)(now / USEC_PER_DAY);
    return 0;
}


/* ---- the universe: sorted by name (the timeline walk relies on it), changed by SIGHUP ---- */

static int cmp_underlying(const void *a, const void *b)
{
    const struct underlying_state *x = *(const struct underlying_state *const *)a;
    const struct underlying_state *y = *(const struct underlying_state *const *)b;
    return strcmp(x->name, y->name);
}

/* Makes the universe `u[0..n)`: new names are added, names no longer listed are
 * retired (their running sweep finishes; no new one starts). Returns 0 or -1. */
static int universe_apply(struct ingest *ing, const struct universe_entry *u, int n)
{
    for (int i = 0; i < ing->nus; i++)
        ing->us[i]->retired = true;
    for (int k = 0; k < n; k++) {
        struct underlying_state *found = NULL;
        for (int i = 0; i < ing->nus && !found; i++)
            if (strcmp(ing->us[i]->name, u[k].underlying) == 0)
                found = ing->us[i];
        if (found) {
            found->retired = false;
            continue;
        }
        if (ing->nus == ing->us_cap) {
            int nc = ing->us_cap ? ing->us_cap * 2 : 16;
            struct underlying_state **na = realloc(ing->us, (size_t)nc * sizeof *na);
            if (na == NULL)
                return -1;
            ing->us = na;
            ing->us_cap = nc;
        }
        struct underlying_state *x = calloc(1, sizeof *x);
        if (x == NULL)
            return -1;
        memcpy(x->name, u[k].underlying, sizeof x->name);
        x->last_window_us = INT64_MIN;
        ing->us[ing->nus++] = x;
    }
    qsort(ing->us, (size_t)ing->nus, sizeof *ing->us, cmp_underlying);
    /* "{SPY,QQQ}" for = ANY($n): names are [A-Z0-9.] (settings_load_universe
     * checks), so the literal needs no quoting; it is bound, never spliced */
    char *arr = malloc((size_t)ing->nus * 17 + 3);
    if (arr == NULL)
        return -1;
    size_t o = 0;
    arr[o++] = '{';
    for (int i = 0, first = 1; i < ing->nus; i++) {
        if (ing->us[i]->retired)
            continue;
        if (!first)
            arr[o++] = ',';
        first = 0;
        size_t l = strlen(ing->us[i]->name);
        memcpy(arr + o, ing->us[i]->name, l);
        o += l;
    }
    arr[o++] = '}';
    arr[o] = '\0';
    free(ing->universe_array);
    ing->universe_array = arr;
    return 0;
}

/* SIGHUP: re-read the configuration the way start-up did; apply the reloadable
 * settings and the universe; keep everything as it was when the new one is bad. */
static void reload(struct ingest *ing)
{
    struct settings *fresh = malloc(sizeof *fresh);
    char err[512];
    int rest[64], nrest;
    if (fresh == NULL)
        return;
    if (settings_load_all(fresh, ing->argc, ing->argv, environ, rest, 64, &nrest, err, sizeof err)) {
        log_error("configuration reload rejected: keeping the running configuration", "error=%s", err);
        enum log_level lvl;
        if (log_level_parse(ing->s->log_level, &lvl) == 0)
            log_set_level(lvl);
        free(fresh);
        return;
    }
    struct universe_entry *u = NULL;
    int n = settings_load_universe(fresh, &u, err, sizeof err);
    if (n < 0) {
        log_error("configuration reload rejected: keeping the running configuration", "error=%s", err);
        free(fresh);
        return;
    }
    int changed = 0;
    for (size_t i = 0; i < settings_count; i++) {
        const struct setting_desc *d = &settings_table[i];
        char before[SETTING_STR_MAX], after[SETTING_STR_MAX];
        settings_format_value(ing->s, i, before, sizeof before);
        settings_format_value(fresh, i, after, sizeof after);
        if (strcmp(before, after) == 0)
            continue;
        if (!d->reloadable) {
            log_warn("setting changed but needs a restart to take effect", "setting=%s", d->name);
            continue;
        }
        size_t size = d->type == SETTING_STRING || d->type == SETTING_ENUM ? d->size
                      : d->type == SETTING_INT                          ? sizeof(int)
                      : d->type == SETTING_DOUBLE                       ? sizeof(double)
                                                                        : sizeof(int64_t);
        memcpy((char *)ing->s + d->offset, (char *)fresh + d->offset, size);
        ing->s->source[i] = fresh->source[i];
        changed++;
        log_info("setting reloaded", "setting=%s", d->name);
    }
    if (universe_apply(ing, u, n))
        log_error("out of memory", "where=reload");
    free(u);
    pg_pool_set_statement_timeout(ing->pool, ing->s->statement_timeout_us);
    bool always = strcmp(ing->s->calendar, "always") == 0;
    if (always != ing->sessions.always_open) {
        ing->sessions.always_open = always;
        session_set_clear(&ing->sessions);
        ing->maintenance_pending = true;
    }
    int active = 0;
    for (int i = 0; i < ing->nus; i++)
        active += !ing->us[i]->retired;
    log_info("configuration reloaded", "settings_changed=%d universe=%d", changed, active);
    sd_notify_statusf("configuration reloaded: %d underlyings", active);
    free(fresh);
    dispatch(ing);
}

/* ---- the scheduler ---- */

static void tick(uv_timer_t *t)
{
    struct ingest *ing = t->data;
    if (ing->state != ING_RUNNING)
        return;
    int64_t cadence = ing->s->cadence_us;
    int64_t now = market_clock_now(&ing->clock, real_now());
    int64_t ws = window_start_of(now, cadence);

    int32_t day = (int32_t)(now / USEC_PER_DAY);
    if (day != ing->maintained_day ||
        (!ing->sessions.always_open && now + 3 * USEC_PER_DAY > ing->sessions.loaded_to_us)) {
        ing->maintained_day = day;
        ing->maintenance_pending = true;
        dispatch(ing);
    }

    int expects = session_set_expects(&ing->sessions, ws, cadence);
    if (expects == 1) {
        ing->windows_scheduled++;
        for (int i = 0; i < ing->nus; i++) {
            struct underlying_state *u = ing->us[i];
            if (u->last_window_us == ws || u->retired)
                continue;
            if (u->active) {
                char a[40], b[40];
                ing->c.sweeps_overrun++;
                log_warn("sweep overran its window: this window is skipped", "underlying=%s running=%s skipped=%s",
                         u->name, timestamp_format(a, sizeof a, u->active->window_start_us),
                         timestamp_format(b, sizeof b, ws));
                u->last_window_us = ws;
                continue;
            }
            sweep_start(ing, u, ws);
        }
        pump(ing);
    } else if (expects < 0) {
        log_warn("calendar not loaded for this window", "window_start_us=%lld", (long long)ws);
    }
    if (ing->s->max_sweeps > 0 && ing->windows_scheduled >= ing->s->max_sweeps) {
        /* no new windows; the sweeps of this one run to completion, then drain */
        ing->last_window_scheduled = true;
        check_drained(ing);
        return;
    }
    int64_t wait = market_clock_real_until(&ing->clock, ws + cadence, real_now());
    uv_timer_start(&ing->tick_timer, tick, wait > 0 ? (uint64_t)(wait / 1000) + 1 : 1, 0);
}

/* batch_max_age: a partial batch of a slow sweep is written after this long. */
static void age_tick(uv_timer_t *t)
{
    struct ingest *ing = t->data;
    if (ing->state == ING_CLOSING)
        return;
    seal_open_batches(ing, real_now() - ing->s->batch_max_age_us);
}

static void stats_tick(uv_timer_t *t)
{
    struct ingest *ing = t->data;
    if (ing->pool == NULL || ing->state == ING_CLOSING)
        return;
    struct pg_pool_stats ps;
    pg_pool_get_stats(ing->pool, &ps);
    long queued = write_queue_waiting(ing->wq);
    char line[256];
    snprintf(line, sizeof line,
             "db_busy=%d db_idle=%d db_connecting=%d db_down=%d batches_waiting=%ld queue_rows=%ld "
             "http_in_flight=%d sweeps=%d",
             ps.busy, ps.idle, ps.connecting, ps.down, queued, rows_pending(ing),
             ing->fetches_in_flight, ing->live_sweeps);
    if (strcmp(line, ing->last_stats) != 0) {
        sd_notify_statusf("db busy %d/%d, queue %ld rows, %d requests in flight, %llu rows written",
                          ps.busy, ing->s->db_connections, rows_pending(ing), ing->fetches_in_flight,
                          (unsigned long long)ing->c.rows_written);
        log_info("pool", "%s rows_written=%llu rows_unchanged=%llu rejected=%llu", line,
                 (unsigned long long)ing->c.rows_written, (unsigned long long)ing->c.rows_unchanged,
                 (unsigned long long)ing->c.rows_rejected);
        memcpy(ing->last_stats, line, sizeof line);
    }
}


/* ---- observability: /metrics, /healthz, /readyz, the status page, systemd notify ---- */

#define TIMELINE_SPAN_US (24 * 3600 * USEC_PER_SEC)

static void fill_metrics(struct ingest *ing, struct metrics_snapshot *m, struct metrics_underlying *mu,
                         const struct coverage_span **tl, size_t *tln)
{
    memset(m, 0, sizeof *m);
    int64_t now = market_clock_now(&ing->clock, real_now());
    m->now_us = now;
    m->started_us = market_clock_now(&ing->clock, ing->started_us); /* same clock as now_us */
    m->version = "0.1.0";
    struct http_client_stats hs;
    http_client_get_stats(ing->http, &hs);
    m->http_requests_2xx = hs.status_2xx;
    m->http_requests_4xx = hs.status_4xx;
    m->http_requests_429 = hs.status_429;
    m->http_requests_5xx = hs.status_5xx;
    m->http_transport_errors = hs.transport_errors;
    m->http_retries = hs.retries;
    m->http_retry_budget_exhausted = hs.retry_budget_exhausted;
    m->http_bytes = hs.bytes;
    for (int i = 0; i < HTTP_LATENCY_BUCKETS && i < METRICS_LATENCY_BUCKETS - 1; i++)
        m->http_latency_buckets[i] = hs.latency_buckets[i];
    m->http_latency_buckets[METRICS_LATENCY_BUCKETS - 1] = hs.latency_count;
    m->http_latency_sum_s = hs.latency_sum_s;
    m->http_latency_count = hs.latency_count;
    m->http_in_flight = (int)http_client_in_flight(ing->http);
    m->http_waiting = (int)http_client_waiting(ing->http);
    m->rows_fetched = ing->c.rows_fetched;
    m->rows_written = ing->c.rows_written;
    m->rows_unchanged = ing->c.rows_unchanged;
    m->rows_rejected = ing->c.rows_rejected;
    m->batches_committed = ing->c.batches_committed;
    m->batches_retried = ing->c.batches_retried;
    m->batches_bisected = ing->c.batches_bisected;
    m->batches_dropped = ing->c.batches_dropped;
    struct pg_pool_stats ps;
    pg_pool_get_stats(ing->pool, &ps);
    m->db_busy = ps.busy;
    m->db_idle = ps.idle;
    m->db_connecting = ps.connecting;
    m->db_down = ps.down;
    m->db_size = ing->s->db_connections;
    m->db_reconnects = ps.reconnects;
    memcpy(m->db_errors, ing->sqlstates, sizeof m->db_errors);
    m->n_db_errors = ing->nsqlstates;
    m->queue_rows = rows_pending(ing);
    m->queue_max_rows = ing->s->queue_max_rows;
    m->batches_waiting = write_queue_waiting(ing->wq);
    m->sweeps_started = ing->c.sweeps_started;
    m->sweeps_covered = ing->c.sweeps_covered;
    m->sweeps_incomplete = ing->c.sweeps_incomplete;
    m->sweeps_overrun = ing->c.sweeps_overrun;
    m->last_sweep_seconds = ing->last_sweep_seconds;
    m->uncovered_windows = ing->uncovered_windows;
    m->db_reachable = ps.busy + ps.idle > 0;
    for (int i = 0; i < ing->nus; i++) {
        const struct underlying_state *u = ing->us[i];
        struct metrics_underlying *x = &mu[i];
        memset(x, 0, sizeof *x);
        memcpy(x->name, u->name, sizeof x->name);
        x->freshness_s = u->newest_us ? (double)(now - u->newest_us) / 1e6 : -1;
        x->last_sweep_start_us = u->last_covered_us;
        x->last_sweep_seconds = u->last_sweep_seconds;
        x->rows_written = u->rows_written;
        x->rows_rejected = u->rows_rejected;
        x->sweeps_covered = u->sweeps_covered;
        x->sweeps_incomplete = u->sweeps_incomplete;
        x->errors = u->errors;
        tl[i] = u->timeline;
        tln[i] = u->ntimeline;
    }
    m->underlyings = mu;
    m->n_underlyings = (size_t)ing->nus;
    m->timelines = tl;
    m->timeline_lengths = tln;
    m->timeline_from_us = ing->timeline_from_us;
    m->timeline_to_us = ing->timeline_to_us;
}

/* Ready: a database connection is up, and the last covered sweep is younger
 * than three windows (or no window was expected lately: market closed). */
static bool is_ready(struct ingest *ing, char *why, size_t size)
{
    struct pg_pool_stats ps;
    pg_pool_get_stats(ing->pool, &ps);
    if (ps.busy + ps.idle == 0) {
        snprintf(why, size, "database unreachable\n");
        return false;
    }
    int64_t now = market_clock_now(&ing->clock, real_now());
    int64_t cadence = ing->s->cadence_us;
    int64_t bound_real = 3 * (int64_t)((double)cadence / ing->clock.speed) + 10 * USEC_PER_SEC;
    bool expected = session_set_expects(&ing->sessions, window_start_of(now, cadence) - 2 * cadence, cadence) == 1;
    if (!expected || real_now() - ing->started_us < bound_real)
        return true;
    for (int i = 0; i < ing->nus; i++) {
        if (real_now() - ing->us[i]->last_covered_real_us > bound_real) {
            snprintf(why, size, "underlying %s: no covered sweep in the last %lld s\n", ing->us[i]->name,
                     (long long)(bound_real / USEC_PER_SEC));
            return false;
        }
    }
    return true;
}

static void on_listener_request(void *user, const struct http_request *req, const char *body,
                                struct http_reply *reply)
{
    (void)body;
    struct ingest *ing = user;
    struct bytebuf out = {0};
    reply->status = 200;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        reply->status = 405;
        reply->content_type = "text/plain; charset=utf-8";
        bytebuf_append(&out, "method not allowed\n", 19);
    } else if (strcmp(req->path, "/healthz") == 0) {
        reply->content_type = "text/plain; charset=utf-8";
        bytebuf_append(&out, "ok\n", 3);
    } else if (strcmp(req->path, "/readyz") == 0) {
        char why[200];
        reply->content_type = "text/plain; charset=utf-8";
        if (is_ready(ing, why, sizeof why)) {
            bytebuf_append(&out, "ready\n", 6);
        } else {
            reply->status = 503;
            bytebuf_append(&out, why, strlen(why));
        }
    } else if (strcmp(req->path, "/metrics") == 0 || strcmp(req->path, "/") == 0) {
        struct metrics_snapshot m;
        struct metrics_underlying *mu = calloc((size_t)ing->nus, sizeof *mu);
        const struct coverage_span **tl = calloc((size_t)ing->nus, sizeof *tl);
        size_t *tln = calloc((size_t)ing->nus, sizeof *tln);
        if (mu && tl && tln) {
            fill_metrics(ing, &m, mu, tl, tln);
            if (req->path[1] == '\0') {
                reply->content_type = "text/html; charset=utf-8";
                metrics_render_status_page(&m, &out);
            } else {
                reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
                metrics_render_prometheus(&m, &out);
            }
        } else {
            reply->status = 500;
        }
        free(mu);
        free((void *)tl);
        free(tln);
    } else {
        reply->status = 404;
        reply->content_type = "text/plain; charset=utf-8";
        bytebuf_append(&out, "not found\n", 10);
    }
    if (out.failed) {
        bytebuf_free(&out);
        reply->status = 500;
    }
    reply->body = out.data; /* the server frees it */
    reply->body_len = out.len;
}

/* Rebuilds each underlying's timeline from the covered islands the query
 * returned (sorted by underlying, then start): windows between islands are
 * missing inside sessions and closed outside them. */
static void timeline_add(struct underlying_state *u, int64_t a, int64_t b, enum coverage_state st)
{
    if (b <= a)
        return;
    if (u->ntimeline > 0 && u->timeline[u->ntimeline - 1].state == st &&
        u->timeline[u->ntimeline - 1].end_us == a) {
        u->timeline[u->ntimeline - 1].end_us = b;
        return;
    }
    if (u->ntimeline == u->timeline_cap) {
        size_t nc = u->timeline_cap ? u->timeline_cap * 2 : 64;
        if (nc > STATUS_MAX_RECTS_PER_TIMELINE * 2)
            return;
        struct coverage_span *na = realloc(u->timeline, nc * sizeof *na);
        if (na == NULL)
            return;
        u->timeline = na;
        u->timeline_cap = nc;
    }
    u->timeline[u->ntimeline++] = (struct coverage_span){a, b, st};
}

static long timeline_fill_gap(struct ingest *ing, struct underlying_state *u, int64_t a, int64_t b, int64_t now)
{
    int64_t cadence = ing->s->cadence_us;
    long missing = 0;
    for (int64_t w = window_start_of(a, cadence); w < b; w += cadence) {
        int64_t lo = w < a ? a : w, hi = w + cadence > b ? b : w + cadence;
        bool open = session_set_expects(&ing->sessions, w, cadence) == 1;
        bool past = w + cadence <= now - cadence; /* the window in progress is not missing yet */
        timeline_add(u, lo, hi, open && past ? COVERAGE_MISSING : COVERAGE_CLOSED);
        if (open && past && lo == w)
            missing++;
    }
    return missing;
}

static void on_timeline_rows(void *user, const void *pgresult)
{
    struct ingest *ing = user;
    const PGresult *res = pgresult;
    int64_t from = ing->timeline_from_us, to = ing->timeline_to_us;
    int64_t now = market_clock_now(&ing->clock, real_now());
    int n = PQntuples(res), row = 0;
    long missing = 0;
    for (int i = 0; i < ing->nus; i++) {
        struct underlying_state *u = ing->us[i];
        u->ntimeline = 0;
        int64_t at = from;
        while (row < n && strcmp(PQgetvalue(res, row, 0), u->name) < 0)
            row++;
        while (row < n && strcmp(PQgetvalue(res, row, 0), u->name) == 0) {
            bool live = strcmp(PQgetvalue(res, row, 1), "live") == 0;
            int64_t a = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            int64_t b = strtoll(PQgetvalue(res, row, 3), NULL, 10);
            if (a > at)
                missing += timeline_fill_gap(ing, u, at, a, now);
            timeline_add(u, a < at ? at : a, b, live ? COVERAGE_LIVE : COVERAGE_BACKFILL);
            if (b > at)
                at = b;
            row++;
        }
        if (at < to)
            missing += timeline_fill_gap(ing, u, at, to, now);
    }
    ing->uncovered_windows = missing;
}

static const char sql_timeline[] =
    "SELECT underlying, source, (extract(epoch FROM min(window_start)) * 1000000)::int8, "
    "(extract(epoch FROM max(window_end)) * 1000000)::int8 FROM ("
    "SELECT underlying, source, window_start, window_end, "
    "(extract(epoch FROM window_start) * 1000000)::int8 / $3::int8 "
    "- row_number() OVER (PARTITION BY underlying, source ORDER BY window_start) AS island "
    "FROM ingest_coverage WHERE underlying = ANY($4::text[]) "
    "AND window_start >= $1::timestamptz AND window_start < $2::timestamptz) AS w "
    "GROUP BY underlying, source, island ORDER BY underlying COLLATE \"C\", 3";

static void on_timeline_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct ingest *ing = txn->user;
    ing->db_in_flight--;
    ing->timeline_refreshing = false;
    if (r->status != PG_TXN_OK)
        log_warn("coverage timeline refresh failed", "sqlstate=%s", r->sqlstate);
    check_drained(ing);
}

static void timeline_tick(uv_timer_t *t)
{
    struct ingest *ing = t->data;
    if (ing->state != ING_RUNNING || ing->timeline_refreshing || ing->universe_array == NULL ||
        !pg_pool_has_idle(ing->pool))
        return;
    int64_t now = market_clock_now(&ing->clock, real_now());
    int64_t cadence = ing->s->cadence_us;
    ing->timeline_to_us = window_start_of(now, cadence) + cadence;
    ing->timeline_from_us = ing->timeline_to_us - TIMELINE_SPAN_US;
    timestamp_format(ing->timeline_params[0], sizeof ing->timeline_params[0], ing->timeline_from_us);
    timestamp_format(ing->timeline_params[1], sizeof ing->timeline_params[1], ing->timeline_to_us);
    snprintf(ing->timeline_params[2], sizeof ing->timeline_params[2], "%lld", (long long)cadence);
    for (int i = 0; i < 3; i++)
        ing->timeline_values[i] = ing->timeline_params[i];
    ing->timeline_values[3] = ing->universe_array;
    memset(&ing->timeline_txn, 0, sizeof ing->timeline_txn);
    ing->timeline_txn.stmts[0] = (struct pg_stmt){.name = "coverage_timeline", .sql = sql_timeline,
                                                  .nparams = 4, .values = ing->timeline_values,
                                                  .on_tuples = on_timeline_rows};
    ing->timeline_txn.nstmts = 1;
    ing->timeline_txn.done = on_timeline_done;
    ing->timeline_txn.user = ing;
    if (pg_pool_submit(ing->pool, &ing->timeline_txn) == 0) {
        ing->timeline_refreshing = true;
        ing->db_in_flight++;
    }
}

static void watchdog_tick(uv_timer_t *t)
{
    (void)t;
    /* from the loop itself: a stuck loop stops the pings and systemd restarts us */
    if (sd_notify_send("WATCHDOG=1") < 0)
        log_debug("watchdog notification failed", "%s", "");
}

static void notify_ready_once(struct ingest *ing)
{
    if (ing->ready_sent || !pg_pool_ever_connected(ing->pool))
        return;
    ing->ready_sent = true;
    if (sd_notify_send("READY=1\nSTATUS=connected to the database; sweeping") < 0)
        log_warn("systemd notification failed", "%s", "");
}

static int listener_start(struct ingest *ing)
{
    const char *spec = ing->s->listen;
    if (spec[0] == '\0')
        return 0;
    char host[128];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
        log_error("bad listen address: expected host:port", "listen=%s", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') { /* [::1]:9187 */
        spec++;
        hl -= 2;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        log_error("bad listen port", "listen=%s", ing->s->listen);
        return -1;
    }
    struct http_server_settings hs = {.host = host, .port = (int)port,
                                      .max_connections = 64};
    int rc = http_server_start(&ing->listener, ing->loop, &hs, on_listener_request, ing);
    if (rc) {
        log_error("cannot listen", "listen=%s error=%s", ing->s->listen, uv_strerror(rc));
        ing->listener = NULL;
        return -1;
    }
    log_info("listening", "addr=%s:%d paths=\"/metrics /healthz /readyz /\"", host,
             http_server_port(ing->listener));
    return 0;
}

static void listener_closed(void *user)
{
    struct ingest *ing = user;
    ing->listener = NULL;
    ing->open_handles--;
}

/* ---- shutdown ---- */

static void handle_closed(uv_handle_t *h)
{
    struct ingest *ing = h->data;
    ing->open_handles--;
}

static void http_closed(void *user)
{
    struct ingest *ing = user;
    ing->http = NULL;
    ing->open_handles--;
}

static void pool_closed(void *user)
{
    struct ingest *ing = user;
    ing->pool = NULL;
    ing->open_handles--;
}

static void wq_closed(void *user)
{
    struct ingest *ing = user;
    ing->wq = NULL;
    ing->open_handles--;
}

static void close_handle(struct ingest *ing, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = ing;
    ing->open_handles++;
    uv_close(h, handle_closed);
}

static void close_all(struct ingest *ing)
{
    if (ing->state == ING_CLOSING)
        return;
    ing->state = ING_CLOSING;
    close_handle(ing, (uv_handle_t *)&ing->tick_timer);
    close_handle(ing, (uv_handle_t *)&ing->stats_timer);
    close_handle(ing, (uv_handle_t *)&ing->shutdown_timer);
    close_handle(ing, (uv_handle_t *)&ing->run_for_timer);
    close_handle(ing, (uv_handle_t *)&ing->age_timer);
    close_handle(ing, (uv_handle_t *)&ing->watchdog_timer);
    close_handle(ing, (uv_handle_t *)&ing->timeline_timer);
    if (ing->listener) {
        ing->open_handles++;
        http_server_stop(ing->listener, listener_closed, ing);
    }
    close_handle(ing, (uv_handle_t *)&ing->sig_term);
    close_handle(ing, (uv_handle_t *)&ing->sig_int);
    close_handle(ing, (uv_handle_t *)&ing->sig_hup);
    ing->open_handles += 3;
    http_client_close(ing->http, http_closed, ing);
    /* whatever is still queued is dropped: its windows were never marked covered;
     * the pool then cancels what is in flight, while the sweeps still exist */
    write_queue_close(ing->wq, wq_closed, ing);
    pg_pool_close(ing->pool, pool_closed, ing);
    while (ing->ready_head)
        ready_pop(ing);
    for (int i = 0; i < ing->nus; i++) {
        struct sweep *sw = ing->us[i]->active;
        if (sw) {
            ing->us[i]->active = NULL;
            if (!sw->fetch_in_flight) /* else freed by its cancelled request's callback */
                sweep_free(sw);
        }
    }
}

static void check_drained(struct ingest *ing)
{
    if (ing->state == ING_RUNNING && ing->last_window_scheduled && ing->live_sweeps == 0) {
        begin_drain(ing, "max_sweeps reached");
        return;
    }
    if (ing->state != ING_DRAINING)
        return;
    if (ing->fetches_in_flight > 0 || ing->db_in_flight > 0 || !write_queue_idle(ing->wq) ||
        ing->live_sweeps > 0)
        return;
    log_info("drained: everything fetched is committed", "rows_written=%llu rows_unchanged=%llu",
             (unsigned long long)ing->c.rows_written, (unsigned long long)ing->c.rows_unchanged);
    close_all(ing);
}

static void force_stop(struct ingest *ing, const char *why)
{
    log_warn("stopping at once: uncommitted windows stay uncovered", "reason=%s queued_rows=%ld", why,
             rows_pending(ing));
    ing->forced = true;
    close_all(ing);
}

static void shutdown_timeout_cb(uv_timer_t *t) { force_stop(t->data, "shutdown_timeout"); }

static void begin_drain(struct ingest *ing, const char *why)
{
    if (ing->state != ING_RUNNING)
        return;
    ing->state = ING_DRAINING;
    sd_notify_send("STOPPING=1\nSTATUS=draining: no new requests, committing what is queued");
    log_info("stopping: no new requests, draining what is in flight and queued", "reason=%s", why);
    uv_timer_stop(&ing->tick_timer);
    /* sweeps waiting for their next page end here, uncovered */
    struct sweep *sw;
    while ((sw = ready_pop(ing)) != NULL) {
        sweep_fail(sw, "shutting down");
        sweep_fetch_over(sw);
    }
    if (ing->s->shutdown_timeout_us > 0)
        uv_timer_start(&ing->shutdown_timer, shutdown_timeout_cb,
                       (uint64_t)(ing->s->shutdown_timeout_us / 1000), 0);
    dispatch(ing);
    check_drained(ing);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct ingest *ing = h->data;
    if (signum == SIGHUP) {
        if (ing->state == ING_RUNNING)
            reload(ing);
        return;
    }
    if (ing->state == ING_RUNNING)
        begin_drain(ing, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    else if (ing->state == ING_DRAINING)
        force_stop(ing, "second signal");
}

static void run_for_cb(uv_timer_t *t) { begin_drain(t->data, "run_for elapsed"); }


int ingest_run(struct settings *s, int argc, char **argv)
{
    struct ingest *ing = calloc(1, sizeof *ing);
    if (ing == NULL)
        return EXIT_RUNTIME;
    int exit_code = EXIT_RUNTIME;
    bool listen_failed = false;
    uv_loop_t loop;
    if (uv_loop_init(&loop)) {
        free(ing);
        return EXIT_RUNTIME;
    }
    ing->loop = &loop;
    ing->s = s;
    ing->argc = argc;
    ing->argv = argv;
    srand((unsigned)(time_now_us() ^ (int64_t)getpid()));
    char err[512];
    struct universe_entry *u = NULL;
    int nu = settings_load_universe(s, &u, err, sizeof err);
    if (nu < 0) {
        log_error("bad universe", "error=%s", err);
        exit_code = EXIT_USAGE;
        goto out_loop;
    }
    if (universe_apply(ing, u, nu)) {
        free(u);
        goto out_loop;
    }
    free(u);
    ing->started_us = real_now();
    ing->uncovered_windows = -1;
    if (market_clock_parse(&ing->clock, s->clock, s->clock_speed, real_now())) {
        log_error("bad clock", "clock=%s", s->clock);
        exit_code = EXIT_USAGE;
        goto out_loop;
    }
    if (api_origin_init(&ing->origin, s->api_url)) {
        exit_code = EXIT_USAGE;
        goto out_loop;
    }
    if (settings_load_api_key(s, err, sizeof err)) {
        log_error("cannot load the API key", "error=%s", err);
        exit_code = EXIT_USAGE;
        goto out_loop;
    }
    session_set_init(&ing->sessions, strcmp(s->calendar, "always") == 0);
    if (startup_checks(ing))
        goto out_sessions;

    struct http_settings hs;
    http_settings_default(&hs);
    hs.concurrency = s->http_concurrency;
    hs.rate = s->http_rate;
    hs.total_timeout_us = s->http_timeout_us;
    hs.connect_timeout_us = s->http_connect_timeout_us;
    hs.max_attempts = s->http_max_attempts;
    hs.backoff_cap_us = s->retry_max_backoff_us;
    hs.api_key = s->api_key;
    hs.ca_file = s->ca_file[0] ? s->ca_file : NULL;
    hs.user_agent = "optsnap/0.1";
    if (http_client_create(&ing->http, &loop, &hs)) {
        log_error("cannot start the HTTP client", "%s", "");
        goto out_sessions;
    }
    struct pg_pool_settings ps = {.conninfo = s->database_url,
                                  .size = s->db_connections,
                                  .statement_timeout_us = s->statement_timeout_us,
                                  .application_name = "optsnap"};
    if (pg_pool_create(&ing->pool, &loop, &ps, on_pool_notify, ing)) {
        log_error("cannot start the database pool", "%s", "");
        ing->open_handles++;
        http_client_close(ing->http, http_closed, ing);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out_sessions;
    }
    struct write_queue_settings wqs = {.retry_cap_us = s->retry_max_backoff_us, .max_attempts = 0};
    struct write_queue_hooks wqh = {.report = on_write_report, .group_settled = on_group_settled};
    if (write_queue_create(&ing->wq, &loop, ing->pool, &wqs, &wqh, ing)) {
        log_error("out of memory", "where=write queue");
        ing->open_handles += 2;
        http_client_close(ing->http, http_closed, ing);
        pg_pool_close(ing->pool, pool_closed, ing);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out_sessions;
    }
    uv_timer_init(&loop, &ing->tick_timer);
    uv_timer_init(&loop, &ing->stats_timer);
    uv_timer_init(&loop, &ing->shutdown_timer);
    uv_timer_init(&loop, &ing->run_for_timer);
    uv_timer_init(&loop, &ing->age_timer);
    uv_timer_init(&loop, &ing->watchdog_timer);
    uv_timer_init(&loop, &ing->timeline_timer);
    ing->age_timer.data = ing->watchdog_timer.data = ing->timeline_timer.data = ing;
    ing->tick_timer.data = ing->stats_timer.data = ing;
    ing->shutdown_timer.data = ing->run_for_timer.data = ing;
    uv_signal_init(&loop, &ing->sig_term);
    uv_signal_init(&loop, &ing->sig_int);
    uv_signal_init(&loop, &ing->sig_hup);
    ing->sig_term.data = ing->sig_int.data = ing->sig_hup.data = ing;
    uv_signal_start(&ing->sig_term, on_signal, SIGTERM);
    uv_signal_start(&ing->sig_int, on_signal, SIGINT);
    uv_signal_start(&ing->sig_hup, on_signal, SIGHUP);
    uv_timer_start(&ing->stats_timer, stats_tick, (uint64_t)(s->stats_interval_us / 1000),
                   (uint64_t)(s->stats_interval_us / 1000));
    uint64_t age_ms = (uint64_t)(s->batch_max_age_us / 2000);
    uv_timer_start(&ing->age_timer, age_tick, age_ms ? age_ms : 1, age_ms ? age_ms : 1);
    if (s->run_for_us > 0)
        uv_timer_start(&ing->run_for_timer, run_for_cb, (uint64_t)(s->run_for_us / 1000), 0);
    uv_timer_start(&ing->tick_timer, tick, 0, 0);
    uint64_t tl_ms = (uint64_t)(3 * s->stats_interval_us / 1000);
    uv_timer_start(&ing->timeline_timer, timeline_tick, tl_ms < 2000 ? tl_ms : 2000, tl_ms);
    int64_t wd = sd_watchdog_interval_us();
    if (wd > 0)
        uv_timer_start(&ing->watchdog_timer, watchdog_tick, 0, (uint64_t)(wd / 2000) ? (uint64_t)(wd / 2000) : 1);
    if (listener_start(ing)) {
        listen_failed = true;
        ing->forced = true;
        close_all(ing);
    }
    log_info("optsnap run started", "universe=%d cadence_ms=%lld calendar=%s http_concurrency=%d db_connections=%d queue_max_rows=%d",
             ing->nus, (long long)(s->cadence_us / 1000), s->calendar, s->http_concurrency,
             s->db_connections, s->queue_max_rows);

    uv_run(&loop, UV_RUN_DEFAULT);
    exit_code = ing->forced ? EXIT_RUNTIME : EXIT_OK;
    if (listen_failed)
        exit_code = EXIT_RUNTIME;
    struct rusage ru;
    long max_rss_kb = -1;
    double cpu_s = -1;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        max_rss_kb = ru.ru_maxrss;
        cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                ru.ru_stime.tv_usec / 1e6;
    }
    log_info("optsnap run stopped", "pages=%llu rows_fetched=%llu rows_written=%llu rows_unchanged=%llu rows_rejected=%llu "
             "batches=%llu retried=%llu bisected=%llu dropped=%llu sweeps_covered=%llu sweeps_incomplete=%llu overruns=%llu "
             "max_rss_kb=%ld cpu_seconds=%.2f",
             (unsigned long long)ing->c.pages, (unsigned long long)ing->c.rows_fetched,
             (unsigned long long)ing->c.rows_written, (unsigned long long)ing->c.rows_unchanged,
             (unsigned long long)ing->c.rows_rejected, (unsigned long long)ing->c.batches_committed,
             (unsigned long long)ing->c.batches_retried, (unsigned long long)ing->c.batches_bisected,
             (unsigned long long)ing->c.batches_dropped, (unsigned long long)ing->c.sweeps_covered,
             (unsigned long long)ing->c.sweeps_incomplete, (unsigned long long)ing->c.sweeps_overrun,
             max_rss_kb, cpu_s);
out_sessions:
    session_set_free(&ing->sessions);
    for (int i = 0; i < ing->nus; i++)
        free(ing->us[i]->timeline);
    free(ing->universe_array);
    snapshot_page_free(&ing->page);
out_loop:
    for (int i = 0; i < ing->nus; i++)
        free(ing->us[i]);
    free(ing->us);
    if (uv_loop_close(&loop) != 0) {
        log_error("event loop did not close cleanly: a handle leaked", "%s", "");
        exit_code = EXIT_RUNTIME;
    }
    free(ing);
    return exit_code;
}

static void run_usage(FILE *out)
{
    fprintf(out, "usage: optsnap run [--config FILE] [--<setting> VALUE ...]\n\n"
                 "Live ingestion: every `cadence` window inside a trading session, sweep each\n"
                 "underlying's option chain snapshot into PostgreSQL and mark the window covered.\n"
                 "SIGTERM/SIGINT drain and exit 0; a second signal or shutdown_timeout stops at once (exit 1).\n\n"
                 "settings (also OPTSNAP_<KEY> variables and `key = value` lines in the config file):\n");
    for (size_t i = 0; i < settings_count; i++)
        fprintf(out, "  --%-26s %s (default: %s)\n", settings_table[i].name, settings_table[i].doc,
                settings_table[i].default_value[0] ? settings_table[i].default_value : "\"\"");
}

int cmd_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return EXIT_OK;
        }
    }
    struct settings s;
    char err[512];
    int rest[64], nrest = 0;
    if (settings_load_all(&s, argc, argv, environ, rest, 64, &nrest, err, sizeof err)) {
        fprintf(stderr, "optsnap run: %s\n", err);
        return EXIT_USAGE;
    }
    if (nrest > 0) {
        fprintf(stderr, "optsnap run: unknown option '%s' (see optsnap run --help)\n", argv[rest[0]]);
        return EXIT_USAGE;
    }
    int rc = ingest_run(&s, argc, argv);
    settings_free(&s);
    return rc;
}
