/* run_observe.c - what the live driver shows: /metrics, /readyz and the
 * status page (through ops/listener), the coverage timeline, the clocks we
 * compare ours with, systemd notify, the pool line and the final log line. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "optsnap/ops/sd_notify.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"
#include "optsnap_version.h"
#include "optsnap/db/write_queue.h"
#include "run_internal.h"

#define TIMELINE_SPAN_US (24 * 3600 * USEC_PER_SEC)

/* ---- clocks ---- */

void run_clock_check(struct run *r, struct clock_peer *peer, int64_t theirs_us, int64_t ours_us, int64_t unc_us)
{
    int64_t skew = theirs_us - ours_us;
    int64_t bound = r->s->max_clock_skew_us;
    /* a Date header has whole seconds: allow the second it rounds away */
    if (peer == &r->api_clock)
        bound += USEC_PER_SEC;
    /* the skew lies in [skew - unc, skew + unc]: bad when all of it is
     * beyond the bound, good when all of it is within; a sample that
     * straddles the bound (a slow round trip: the statement waited for a
     * connection after an outage) says neither and keeps the verdict */
    int64_t mag = skew < 0 ? -skew : skew;
    bool bad = peer->bad;
    if (mag - unc_us > bound)
        bad = true;
    else if (mag + unc_us <= bound)
        bad = false;
    peer->skew_us = skew;
    peer->known = true;
    if (bad != peer->bad) {
        if (bad)
            log_error("clock skew: windows are not marked covered until the clocks agree again",
                      "peer=%s skew_ms=%lld uncertainty_ms=%lld max_clock_skew_ms=%lld", peer->name,
                      (long long)(skew / 1000), (long long)(unc_us / 1000), (long long)(r->s->max_clock_skew_us / 1000));
        else
            log_info("clocks agree again", "peer=%s skew_ms=%lld", peer->name, (long long)(skew / 1000));
    }
    peer->bad = bad;
}

bool run_clocks_agree(const struct run *r) { return !r->api_clock.bad && !r->db_clock.bad; }

static void on_db_clock(void *user, const void *pgresult)
{
    struct run *r = user;
    const PGresult *res = pgresult;
    if (PQntuples(res) != 1)
        return;
    int64_t back = run_real_now();
    /* the server read its clock somewhere in the round trip (queueing for a
     * connection included): compare with its middle, give or take half */
    int64_t half = (back - r->clock_sent_us) / 2;
    run_clock_check(r, &r->db_clock, strtoll(PQgetvalue(res, 0, 0), NULL, 10), r->clock_sent_us + half, half);
}

static void on_clock_done(struct engine_query *q, const struct pg_txn_result *res)
{
    (void)q;
    if (res->status != PG_TXN_OK && res->status != PG_TXN_CANCELLED)
        log_debug("database clock check failed", "sqlstate=%s", res->sqlstate);
}

static void clock_submit(struct run *r)
{
    static const char sql[] = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8";
    if (r->clock_q.pending)
        return;
    r->clock_sent_us = run_real_now();
    if (engine_query_one(r->e, &r->clock_q, (struct pg_stmt){.name = "clock", .sql = sql, .on_tuples = on_db_clock}, on_clock_done, r) != 0)
        log_debug("database clock check not queued", "%s", "");
}

/* ---- metrics and readiness ---- */

static void fill_http(struct run *r, struct metrics_snapshot *m)
{
    struct http_client_stats hs;
    struct http_client *h = engine_http(r->e);
    http_client_get_stats(h, &hs);
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
    m->http_in_flight = (int)http_client_in_flight(h);
    m->http_waiting = (int)http_client_waiting(h) + engine_fetches_waiting(r->e);
}

static void fill_engine(struct run *r, struct metrics_snapshot *m)
{
    const struct engine_counters *c = engine_counters(r->e);
    m->rows_fetched = c->rows_fetched;
    m->rows_written = c->rows_written;
    m->rows_unchanged = c->rows_unchanged;
    m->rows_rejected = c->rows_rejected;
    m->batches_committed = c->batches_committed;
    m->batches_retried = c->batches_retried;
    m->batches_bisected = c->batches_bisected;
    m->batches_dropped = c->batches_dropped;
    m->pages_capped = c->pages_capped;
    struct write_queue_stats ws;
    write_queue_get_stats(engine_write_queue(r->e), &ws);
    m->rows_skipped = ws.rows_skipped;
    m->skip_cache_forgets = ws.cache_forgets;
    struct pg_pool_stats ps;
    pg_pool_get_stats(engine_pool(r->e), &ps);
    m->db_busy = ps.busy;
    m->db_idle = ps.idle;
    m->db_connecting = ps.connecting;
    m->db_down = ps.down;
    m->db_size = r->s->db_connections;
    m->db_reconnects = ps.reconnects;
    m->db_reachable = ps.busy + ps.idle > 0;
    size_t n;
    const struct metrics_sqlstate *st = engine_sqlstates(r->e, &n);
    memcpy(m->db_errors, st, n * sizeof *st);
    m->n_db_errors = n;
    m->queue_rows = engine_rows_pending(r->e);
    m->queue_max_rows = r->s->queue_max_rows;
}

static void fill_underlyings(struct run *r, struct metrics_snapshot *m, int64_t now)
{
    for (size_t i = 0; i < r->nus; i++) {
        const struct underlying_state *u = r->us[i];
        struct metrics_underlying *x = &r->mu[i];
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
        x->rows_fetched = u->rows_fetched;
        x->rows_partial = u->rows_partial;
        x->last_sweep_rows = u->last_sweep_rows;
        x->last_sweep_rejected = u->last_sweep_rejected;
        x->timeframe = u->timeframe;
        x->lease_held = u->held;
        x->lease_epoch = u->held ? u->epoch : 0;
        x->lease_since_us = u->held ? u->lease_since_us : 0;
        r->tl[i] = u->timeline.spans;
        r->tln[i] = u->timeline.n;
    }
    m->underlyings = r->mu;
    m->n_underlyings = r->nus;
    m->timelines = r->tl;
    m->timeline_lengths = r->tln;
    m->timeline_from_us = r->timeline_from_us;
    m->timeline_to_us = r->timeline_to_us;
}

static int size_arrays(struct run *r)
{
    /* sized to the universe each time (a reload may grow it) */
    struct metrics_underlying *mu = realloc(r->mu, (r->nus ? r->nus : 1) * sizeof *mu);
    if (mu == NULL)
        return -1;
    r->mu = mu;
    const struct coverage_span **tl = realloc((void *)r->tl, (r->nus ? r->nus : 1) * sizeof *tl);
    if (tl == NULL)
        return -1;
    r->tl = tl;
    size_t *tln = realloc(r->tln, (r->nus ? r->nus : 1) * sizeof *tln);
    if (tln == NULL)
        return -1;
    r->tln = tln;
    return 0;
}

static void on_snapshot(void *user, struct metrics_snapshot *m)
{
    struct run *r = user;
    int64_t now = run_market_now(r);
    m->now_us = now;
    m->started_us = market_clock_now(&r->clock, r->started_real_us); /* the same clock as now_us */
    m->version = OPTSNAP_VERSION;
    fill_http(r, m);
    fill_engine(r, m);
    m->batches_waiting = 0;
    m->sweeps_started = r->sweeps_started;
    m->sweeps_covered = r->sweeps_covered;
    m->sweeps_incomplete = r->sweeps_incomplete;
    m->sweeps_overrun = r->sweeps_overrun;
    m->sweeps_mark_refused = r->sweeps_refused;
    m->last_sweep_seconds = r->last_sweep_seconds;
    m->uncovered_windows = r->uncovered_windows;
    m->clock_skew_api_s = (double)r->api_clock.skew_us / 1e6;
    m->clock_skew_db_s = (double)r->db_clock.skew_us / 1e6;
    m->clock_skew_exceeded = !run_clocks_agree(r);
    m->api_refused_key = r->api_refused_key;
    m->api_refused_plan = r->api_refused_plan;
    m->retention_days_dropped = r->retention_days_dropped;
    if (r->s->lease_ttl_us > 0) {
        m->lease_holder = r->holder;
        m->leases_held = run_leases_held(r);
        m->live_daemons = r->live_daemons;
        m->lease_target = r->lease_target;
        m->lease_claims = r->lease_claims;
        m->lease_losses = r->lease_losses;
        m->lease_handbacks = r->lease_handbacks;
        m->lease_rebalances = r->lease_rebalances;
        m->lease_heartbeat_failures = r->lease_heartbeat_failures;
        m->heal_runs = r->heal_runs;
        m->heal_failures = r->heal_failures;
        m->heal_windows = r->heal_windows;
    }
    if (size_arrays(r) == 0)
        fill_underlyings(r, m, now);
}

/* Ready: a database connection is up, the clocks agree, and every underlying
 * had a covered sweep within three windows (or no window was expected lately). */
static bool on_ready(void *user, char *why, size_t size)
{
    struct run *r = user;
    struct pg_pool_stats ps;
    pg_pool_get_stats(engine_pool(r->e), &ps);
    if (ps.busy + ps.idle == 0) {
        snprintf(why, size, "database unreachable\n");
        return false;
    }
    if (!run_clocks_agree(r)) {
        snprintf(why, size, "clock skew over max_clock_skew: no window is marked covered\n");
        return false;
    }
    int64_t now = run_market_now(r), cadence = r->s->cadence_us;
    int64_t bound_real = 3 * (int64_t)((double)cadence / r->clock.speed) + 10 * USEC_PER_SEC;
    for (size_t i = 0; i < r->nus; i++) {
        const struct underlying_state *u = r->us[i];
        if (!u->retired && u->refusal[0] && run_real_now() - u->refused_real_us < bound_real) {
            snprintf(why, size, "underlying %s: the API refused it: %.180s\n", u->name, u->refusal);
            return false;
        }
    }
    bool expected = session_set_expects(&r->sessions, window_start_of(now, cadence) - 2 * cadence, cadence) == 1;
    if (!expected || run_real_now() - r->started_real_us < bound_real)
        return true;
    for (size_t i = 0; i < r->nus; i++) {
        if (!r->us[i]->retired && run_real_now() - r->us[i]->last_covered_real_us > bound_real) {
            snprintf(why, size, "underlying %s: no covered sweep in the last %lld s\n", r->us[i]->name,
                     (long long)(bound_real / USEC_PER_SEC));
            return false;
        }
    }
    return true;
}

/* ---- the coverage timeline: covered islands from the database, gaps from the calendar ---- */

static const char sql_timeline[] =
    "SELECT underlying, source, (extract(epoch FROM min(window_start)) * 1000000)::int8, "
    "(extract(epoch FROM max(window_end)) * 1000000)::int8 FROM ("
    "SELECT underlying, source, window_start, window_end, "
    "(extract(epoch FROM window_start) * 1000000)::int8 / $3::int8 "
    "- row_number() OVER (PARTITION BY underlying, source ORDER BY window_start) AS island "
    "FROM ingest_coverage WHERE underlying = ANY($4::text[]) "
    "AND window_start >= $1::timestamptz AND window_start < $2::timestamptz) AS w "
    "GROUP BY underlying, source, island ORDER BY underlying COLLATE \"C\", 3";

static void on_timeline_rows(void *user, const void *pgresult)
{
    struct run *r = user;
    const PGresult *res = pgresult;
    int64_t from = r->timeline_from_us, to = r->timeline_to_us, now = run_market_now(r), cad = r->s->cadence_us;
    int n = PQntuples(res), row = 0;
    long missing = 0;
    for (size_t i = 0; i < r->nus; i++) {
        struct underlying_state *u = r->us[i];
        timeline_clear(&u->timeline);
        int64_t at = from;
        while (row < n && strcmp(PQgetvalue(res, row, 0), u->name) < 0)
            row++;
        for (; row < n && strcmp(PQgetvalue(res, row, 0), u->name) == 0; row++) {
            bool live = strcmp(PQgetvalue(res, row, 1), "live") == 0;
            int64_t a = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            int64_t b = strtoll(PQgetvalue(res, row, 3), NULL, 10);
            if (a > at)
                missing += timeline_add_uncovered(&u->timeline, &r->sessions, cad, at, a, now);
            timeline_add(&u->timeline, a < at ? at : a, b, live ? COVERAGE_LIVE : COVERAGE_BACKFILL);
            if (b > at)
                at = b;
        }
        if (at < to)
            missing += timeline_add_uncovered(&u->timeline, &r->sessions, cad, at, to, now);
    }
    r->uncovered_windows = missing;
}

static void on_timeline_done(struct engine_query *q, const struct pg_txn_result *res)
{
    (void)q;
    if (res->status != PG_TXN_OK && res->status != PG_TXN_CANCELLED)
        log_warn("coverage timeline refresh failed", "sqlstate=%s", res->sqlstate);
}

static void timeline_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    if (!engine_running(r->e) || r->timeline_q.pending || r->universe_array == NULL)
        return;
    int64_t cadence = r->s->cadence_us;
    r->timeline_to_us = window_start_of(run_market_now(r), cadence) + cadence;
    r->timeline_from_us = r->timeline_to_us - TIMELINE_SPAN_US;
    timestamp_format(r->timeline_params[0], sizeof r->timeline_params[0], r->timeline_from_us);
    timestamp_format(r->timeline_params[1], sizeof r->timeline_params[1], r->timeline_to_us);
    snprintf(r->timeline_params[2], sizeof r->timeline_params[2], "%lld", (long long)cadence);
    for (int i = 0; i < 3; i++)
        r->timeline_values[i] = r->timeline_params[i];
    r->timeline_values[3] = r->universe_array;
    if (engine_query_one(r->e, &r->timeline_q, (struct pg_stmt){.name = "coverage_timeline", .sql = sql_timeline, .nparams = 4,
                                                  .values = r->timeline_values, .on_tuples = on_timeline_rows}, on_timeline_done, r) != 0)
        log_debug("timeline refresh not queued", "%s", "");
}

/* ---- systemd, the pool line ---- */

void run_notify_ready_once(struct run *r)
{
    if (r->ready_sent || !pg_pool_ever_connected(engine_pool(r->e)))
        return;
    r->ready_sent = true;
    if (sd_notify_send("READY=1\nSTATUS=connected to the database; sweeping") < 0)
        log_warn("systemd notification failed", "%s", "");
}

static void watchdog_tick(uv_timer_t *t)
{
    (void)t;
    /* from the loop itself: a stuck loop stops the pings and systemd restarts us */
    if (sd_notify_send("WATCHDOG=1") < 0)
        log_debug("watchdog notification failed", "%s", "");
}

static void stats_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    if (engine_closing(r->e))
        return;
    clock_submit(r);
    struct pg_pool_stats ps;
    pg_pool_get_stats(engine_pool(r->e), &ps);
    char line[256];
    const struct engine_counters *c = engine_counters(r->e);
    snprintf(line, sizeof line,
             "db_busy=%d db_idle=%d db_connecting=%d db_down=%d queue_rows=%ld http_in_flight=%d "
             "http_waiting=%d sweeps=%d",
             ps.busy, ps.idle, ps.connecting, ps.down, engine_rows_pending(r->e), engine_fetches_in_flight(r->e),
             engine_fetches_waiting(r->e), r->live_sweeps);
    if (strcmp(line, r->last_stats) != 0) {
        if (sd_notify_statusf("db busy %d/%d, queue %ld rows, %d requests in flight, %llu rows written", ps.busy,
                              r->s->db_connections, engine_rows_pending(r->e), engine_fetches_in_flight(r->e),
                              (unsigned long long)c->rows_written) < 0)
            log_debug("systemd notification failed", "%s", "");
        log_info("pool", "%s rows_written=%llu rows_unchanged=%llu rejected=%llu", line,
                 (unsigned long long)c->rows_written, (unsigned long long)c->rows_unchanged,
                 (unsigned long long)c->rows_rejected);
        memcpy(r->last_stats, line, sizeof line);
    }
    engine_after_event(r->e);
}

int run_observe_start(struct run *r)
{
    uint64_t stats_ms = (uint64_t)(r->s->stats_interval_us / 1000);
    uv_timer_start(&r->stats_timer, stats_tick, stats_ms < 1000 ? stats_ms : 1000, stats_ms);
    uint64_t tl_ms = 3 * stats_ms;
    uv_timer_start(&r->timeline_timer, timeline_tick, tl_ms < 2000 ? tl_ms : 2000, tl_ms);
    int64_t wd = sd_watchdog_interval_us();
    if (wd > 0) {
        uint64_t ms = (uint64_t)(wd / 2000);
        uv_timer_start(&r->watchdog_timer, watchdog_tick, 0, ms ? ms : 1);
    }
    struct listener_settings ls = {.listen = r->s->listen, .allowed_hosts = r->s->listen_hosts, .cache_ms = 1000};
    struct listener_source src = {.user = r, .ready = on_ready, .snapshot = on_snapshot};
    return listener_start(&r->listener, engine_loop(r->e), &ls, &src);
}

static void listener_closed(void *user)
{
    struct run *r = user;
    r->listener = NULL;
    engine_release(r->e);
}

void run_observe_closing(struct run *r)
{
    if (r->listener == NULL)
        return;
    engine_hold(r->e);
    listener_stop(r->listener, listener_closed, r);
}

void run_observe_free(struct run *r)
{
    free(r->mu);
    free((void *)r->tl);
    free(r->tln);
}

void run_stats_line(struct run *r)
{
    struct rusage ru;
    long max_rss_kb = -1;
    double cpu_s = -1;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        max_rss_kb = ru.ru_maxrss;
        cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                ru.ru_stime.tv_usec / 1e6;
    }
    const struct engine_counters *c = engine_counters(r->e);
    log_info("optsnap run stopped",
             "pages=%llu rows_fetched=%llu rows_written=%llu rows_unchanged=%llu rows_rejected=%llu "
             "batches=%llu retried=%llu bisected=%llu dropped=%llu sweeps_covered=%llu sweeps_incomplete=%llu "
             "overruns=%llu pages_capped=%llu max_rss_kb=%ld cpu_seconds=%.2f",
             (unsigned long long)c->pages, (unsigned long long)c->rows_fetched, (unsigned long long)c->rows_written,
             (unsigned long long)c->rows_unchanged, (unsigned long long)c->rows_rejected,
             (unsigned long long)c->batches_committed, (unsigned long long)c->batches_retried,
             (unsigned long long)c->batches_bisected, (unsigned long long)c->batches_dropped,
             (unsigned long long)r->sweeps_covered, (unsigned long long)r->sweeps_incomplete,
             (unsigned long long)r->sweeps_overrun, (unsigned long long)c->pages_capped, max_rss_kb, cpu_s);
}
