/* run.c - `optsnap run`: the live driver. Each cadence window inside a session,
 * one sweep per underlying (a pager over the chain snapshot, one write group
 * whose mark covers the window); partitions and the calendar kept ahead
 * through the pool; SIGHUP reloads. The engine does fetching, writing, drain. */
#include "optsnap/pipeline/run.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/db/retention.h"
#include "optsnap/ops/check.h"
#include "optsnap/ops/sd_notify.h"
#include "optsnap/pipeline/calendar.h"
#include "optsnap/util/array.h"
#include "optsnap/util/backoff.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"
#include "optsnap_version.h"
#include "run_internal.h"

#include "optsnap/util/names.h"

extern char **environ;

#define SESSION_LOOKBACK_US (2 * USEC_PER_DAY)
#define SESSION_LOOKAHEAD_US (14 * USEC_PER_DAY)
#define MAINT_LOCK_TIMEOUT "2s"

int64_t run_real_now(void) { return time_now_us(); }
int64_t run_market_now(const struct run *r) { return market_clock_now(&r->clock, run_real_now()); }

/* ---- sweeps ---- */

static void sweep_free(struct sweep *sw)
{
    pager_release(&sw->pager);
    free(sw);
}

static enum page_verdict on_snapshot_page(struct pager *p, const struct http_response *resp, const char **next_url,
                                          char *why, size_t why_size)
{
    struct sweep *sw = p->user;
    struct run *r = sw->r;
    struct engine *e = r->e;
    snapshot_page_reset(&r->page);
    /* a row with no event time at all is keyed on the window it was fetched in */
    struct snapshot_parse_opts opts = {.underlying = sw->u->name, .fallback_us = sw->window_start_us};
    int rc = snapshot_page_parse_opts(&r->page, resp->body, resp->body_len, &opts, why, why_size);
    if (rc != PARSE_OK)
        return pager_verdict_of_parse(rc);
    if (resp->date_us > 0) {
        /* the server stamped Date somewhere between the submit and now */
        int64_t half = (int64_t)(resp->elapsed_s * 1e6) / 2;
        run_clock_check(r, &r->api_clock, resp->date_us, run_real_now() - half, half);
        if (r->api_clock.bad)
            sw->skewed = true;
    }
    for (size_t i = 0; i < r->page.nrows; i++) {
        if (engine_group_add_row(e, &sw->g, &r->page.rows[i]) != 0)
            return PAGE_FAILED;
        sw->rows_fetched++;
        const struct snapshot_row *row = &r->page.rows[i];
        if (snapshot_row_has(row, SNAP_QUOTE_TIMEFRAME))
            sw->u->timeframe = (int)row->v[SNAP_QUOTE_TIMEFRAME].i;
        else if (snapshot_row_has(row, SNAP_TRADE_TIMEFRAME))
            sw->u->timeframe = (int)row->v[SNAP_TRADE_TIMEFRAME].i;
    }
    sw->pages++;
    size_t whole = r->page.nrejects - r->page.npartial; /* a partial row is stored, so fetched, not rejected */
    sw->rows_rejected += (long)whole;
    sw->u->rows_fetched += r->page.nrows + whole;
    sw->u->rows_partial += r->page.npartial;
    for (size_t i = 0; i < r->page.nrejects; i++) {
        struct row_reject *rj = &r->page.rejects[i];
        char t[80], q[200], id[120];
        sw->u->rows_rejected += rj->kind != REJECT_PARTIAL;
        log_info(rj->kind == REJECT_PARTIAL ? "row stored with fields dropped" : "row rejected", "underlying=%s ticker=%s reason=%s request_id=%s", sw->u->name,
                 log_quote(t, sizeof t, rj->ticker), log_quote(q, sizeof q, rj->reason),
                 log_quote(id, sizeof id, r->page.request_id));
        snprintf(rj->request_id, sizeof rj->request_id, "%s", r->page.request_id);
        if (engine_group_add_reject(e, &sw->g, rj) != 0)
            return PAGE_FAILED;
    }
    *next_url = r->page.next_url;
    return PAGE_OK;
}

static void on_sweep_fetched(struct pager *p, bool complete, const char *why)
{
    struct sweep *sw = p->user;
    struct run *r = sw->r;
    if (engine_closing(r->e))
        return; /* freed with the driver after the loop */
    if (!complete && api_error_is_permanent(&p->error)) {
        struct underlying_state *u = sw->u;
        api_error_format(&p->error, u->refusal, sizeof u->refusal);
        u->refused_real_us = run_real_now();
        if (p->error.kind == API_ERROR_KEY)
            r->api_refused_key++;
        else
            r->api_refused_plan++;
    } else if (complete) {
        sw->u->refusal[0] = '\0';
    }
    if (!complete)
        engine_group_fail(r->e, &sw->g, why);
    else if (sw->skewed || !run_clocks_agree(r))
        engine_group_fail(r->e, &sw->g, "clock skew: our clock disagrees with the API's or the database's");
    else if (run_market_now(r) > sw->window_end_us + r->s->cadence_us)
        /* its last pages hold states from after the next window: the window's
         * own may have been overwritten, so it is not marked; gaps, repair and
         * the self-healing fill it from bars */
        engine_group_fail(r->e, &sw->g, "sweep overran its window by more than a cadence");
    sw->g.wg.cov.rows = sw->rows_fetched;
    engine_group_close(r->e, &sw->g); /* may settle the sweep at once */
}

static void sweep_start(struct run *r, struct underlying_state *u, int64_t ws)
{
    struct sweep *sw = calloc(1, sizeof *sw);
    char url[1024];
    if (sw == NULL) {
        log_error("out of memory", "where=sweep underlying=%s", u->name);
        return;
    }
    snprintf(url, sizeof url, "%s/v3/snapshot/options/%s?limit=%d", engine_origin(r->e)->base, u->name,
             r->s->page_limit);
    sw->r = r;
    sw->u = u;
    sw->window_start_us = ws;
    sw->window_end_us = ws + r->s->cadence_us;
    sw->started_real_us = run_real_now();
    snprintf(sw->g.wg.underlying, sizeof sw->g.wg.underlying, "%s", u->name);
    sw->g.wg.source = ROW_SOURCE_LIVE;
    sw->g.wg.owner = sw;
    sw->g.wg.cov.window_start_us = ws;
    sw->g.wg.cov.window_end_us = sw->window_end_us;
    sw->g.wg.cov.max_ahead_us = r->s->max_clock_skew_us;
    sw->g.wg.cov.lease_holder = run_lease_holder(r);
    sw->g.wg.cov.lease_epoch = u->epoch;
    sw->pager = (struct pager){.on_page = on_snapshot_page, .on_end = on_sweep_fetched, .user = sw,
                               .reserve_rows = r->s->page_limit, .what = "snapshot", .label = u->name};
    u->active = sw;
    u->last_window_us = ws;
    r->live_sweeps++;
    r->sweeps_started++;
    engine_group_open(r->e, &sw->g);
    if (pager_start(r->e, &sw->pager, url) != 0) {
        engine_group_fail(r->e, &sw->g, "cannot start the sweep");
        engine_group_close(r->e, &sw->g);
    }
}

static void on_group_settled(void *self, struct engine_group *g)
{
    struct run *r = self;
    struct sweep *sw = g->wg.owner;
    struct underlying_state *u = sw->u;
    double secs = (double)(run_real_now() - sw->started_real_us) / 1e6;
    u->last_sweep_rows = (uint64_t)(sw->rows_fetched + sw->rows_rejected);
    u->last_sweep_rejected = (uint64_t)sw->rows_rejected;
    if (g->wg.coverage_written) {
        char ws[40];
        r->sweeps_covered++;
        u->sweeps_covered++;
        u->last_covered_us = sw->window_start_us;
        if (u->first_window_us == 0 || sw->window_start_us < u->first_window_us)
            u->first_window_us = sw->window_start_us;
        u->last_covered_real_us = run_real_now();
        u->last_sweep_seconds = secs;
        r->last_sweep_seconds = secs;
        log_debug("sweep covered", "underlying=%s window=%s rows=%ld pages=%d seconds=%.3f", u->name,
                  timestamp_format(ws, sizeof ws, sw->window_start_us), sw->rows_fetched, sw->pages,
                  secs);
    } else {
        r->sweeps_incomplete++;
        u->sweeps_incomplete++;
    }
    u->active = NULL;
    r->live_sweeps--;
    sweep_free(sw);
    if (r->last_window_scheduled && r->live_sweeps == 0)
        engine_drain(r->e, "max_sweeps reached");
}

static void on_write_report(void *self, struct engine_group *g, const struct write_report *rep)
{
    (void)self;
    struct sweep *sw = g->wg.owner;
    struct underlying_state *u = sw->u;
    if (rep->event == WRITE_COMMITTED) {
        u->rows_written += (uint64_t)rep->written;
        for (size_t i = 0; i < rep->batch->nrows; i++)
            if (rep->batch->rows[i].last_updated_us > u->newest_us)
                u->newest_us = rep->batch->rows[i].last_updated_us;
    } else if (rep->event == WRITE_MARK_REFUSED) {
        sw->r->sweeps_refused++;
    } else if (rep->event != WRITE_CANCELLED) {
        u->errors++;
    }
}

/* ---- partitions and the calendar: through the pool, with lock_timeout, retried with backoff ---- */

static const char sql_lock_timeout[] = "SELECT set_config('lock_timeout', $1, true)";
static const char sql_partitions[] =
    "SELECT optsnap_ensure_partitions(($1::timestamptz)::date - 1, ($1::timestamptz)::date + 7)";

static void on_sessions(void *user, const void *pgresult)
{
    struct run *r = user;
    if (calendar_fill(&r->sessions, pgresult, r->sessions_from_us, r->sessions_to_us) != 0)
        r->maint_due = true;
}

static void on_maintenance_done(struct engine_query *q, const struct pg_txn_result *res)
{
    struct run *r = q->user;
    if (res->status == PG_TXN_OK) {
        r->maint_failures = 0;
        return;
    }
    if (res->status == PG_TXN_CANCELLED)
        return;
    char m[300];
    r->maint_failures++;
    int64_t wait = backoff_full_jitter_us(r->maint_failures, USEC_PER_SEC, 5 * 60 * USEC_PER_SEC);
    r->maint_not_before_us = run_real_now() + wait;
    r->maint_due = true;
    log_warn("maintenance failed (partitions, calendar): retried with backoff", "sqlstate=%s error=%s wait_ms=%lld",
             res->sqlstate, log_quote(m, sizeof m, res->message), (long long)(wait / 1000));
}

static void maintenance_submit(struct run *r)
{
    if (!r->maint_due || r->maint.pending || run_real_now() < r->maint_not_before_us)
        return;
    int64_t now = run_market_now(r);
    r->sessions_from_us = now - SESSION_LOOKBACK_US;
    r->sessions_to_us = now + SESSION_LOOKAHEAD_US;
    snprintf(r->maint_params[0], sizeof r->maint_params[0], "%s", MAINT_LOCK_TIMEOUT);
    timestamp_format(r->maint_params[1], sizeof r->maint_params[1], now);
    timestamp_format(r->maint_params[2], sizeof r->maint_params[2], r->sessions_from_us);
    timestamp_format(r->maint_params[3], sizeof r->maint_params[3], r->sessions_to_us);
    memset(&r->maint.txn, 0, sizeof r->maint.txn);
    r->maint_values[0] = r->maint_params[0];
    r->maint_values[1] = r->maint_params[1];
    struct pg_txn *t = &r->maint.txn;
    t->stmts[t->nstmts++] = (struct pg_stmt){.name = "lock_timeout", .sql = sql_lock_timeout, .nparams = 1,
                                             .values = r->maint_values};
    t->stmts[t->nstmts++] = (struct pg_stmt){.name = "ensure_partitions", .sql = sql_partitions, .nparams = 1,
                                             .values = r->maint_values + 1};
    static const char *sess_values[3];
    if (!r->sessions.always_open) {
        sess_values[0] = r->s->calendar;
        sess_values[1] = r->maint_params[2];
        sess_values[2] = r->maint_params[3];
        t->stmts[t->nstmts++] = (struct pg_stmt){.name = "load_sessions", .sql = calendar_sessions_sql,
                                                 .nparams = 3, .values = sess_values, .on_tuples = on_sessions};
    }
    r->maint.done = on_maintenance_done;
    r->maint.user = r;
    if (engine_query_submit(r->e, &r->maint) == 0)
        r->maint_due = false;
}

/* ---- retention: once a day, whole day partitions older than `retention` dropped ---- */

static void on_retention_rows(void *user, const void *pgresult)
{
    struct run *r = user;
    retention_on_tuples(&r->retention_job, pgresult);
}

static void on_retention_done(struct engine_query *q, const struct pg_txn_result *res)
{
    struct run *r = q->user;
    if (res->status == PG_TXN_OK) {
        if (r->retention_job.days_dropped > 0) {
            r->retention_days_dropped += (uint64_t)r->retention_job.days_dropped;
            write_queue_forget_all(engine_write_queue(r->e)); /* rows it knew may be gone */
        }
        return;
    }
    if (res->status == PG_TXN_CANCELLED)
        return;
    char m[300];
    r->retention_due = true; /* the next tick tries again */
    log_warn("retention failed: tried again", "sqlstate=%s error=%s", res->sqlstate,
             log_quote(m, sizeof m, res->message));
}

static void retention_submit(struct run *r)
{
    if (!r->retention_due || r->retention_q.pending)
        return;
    r->retention_due = false;
    int rc = retention_job_build(&r->retention_job, r->s, run_market_now(r), false);
    if (rc != 0) {
        if (rc < 0)
            log_warn("retention is shorter than 2 days: not applied", "%s", "");
        return;
    }
    struct pg_stmt stmt = r->retention_job.stmt;
    stmt.on_tuples = on_retention_rows; /* it gets the run; it hands the job on */
    if (engine_query_one(r->e, &r->retention_q, stmt, on_retention_done, r) != 0)
        r->retention_due = true;
}

/* ---- the scheduler ---- */

static void tick(uv_timer_t *t);

static void sweep_underlying(struct run *r, struct underlying_state *u, int64_t ws)
{
    if (u->retired || ws <= u->last_window_us || !run_lease_allows(r, u)) /* windows only move forward */
        return;
    if (u->active) {
        char a[40], b[40];
        r->sweeps_overrun++;
        log_warn("sweep overran its window: this window is skipped", "underlying=%s running=%s skipped=%s",
                 u->name, timestamp_format(a, sizeof a, u->active->window_start_us),
                 timestamp_format(b, sizeof b, ws));
        u->last_window_us = ws;
        return;
    }
    sweep_start(r, u, ws);
}

static void sweep_window(struct run *r, int64_t ws)
{
    r->windows_scheduled++;
    for (size_t i = 0; i < r->nus; i++)
        sweep_underlying(r, r->us[i], ws);
}

/* A heartbeat answered: the scheduler starts after the first; an underlying
 * claimed now is swept at once for the current window (a takeover or a
 * rebalance loses no window that is still open). */
void run_leases_after_heartbeat(struct run *r)
{
    if (!engine_running(r->e))
        return;
    if (!r->ticking) {
        r->ticking = true;
        uv_timer_start(&r->tick_timer, tick, 0, 0);
        return;
    }
    int64_t ws = window_start_of(run_market_now(r), r->s->cadence_us);
    bool open = !r->last_window_scheduled && session_set_expects(&r->sessions, ws, r->s->cadence_us) == 1;
    for (size_t i = 0; i < r->nus; i++) {
        struct underlying_state *u = r->us[i];
        if (u->claimed_now && open)
            sweep_underlying(r, u, ws);
        u->claimed_now = false;
    }
    engine_after_event(r->e);
}

static void tick(uv_timer_t *t)
{
    struct run *r = t->data;
    if (!engine_running(r->e))
        return;
    int64_t cadence = r->s->cadence_us;
    int64_t now = run_market_now(r);
    int64_t ws = window_start_of(now, cadence);
    int32_t day = (int32_t)(now / USEC_PER_DAY);
    if (day != r->maintained_day ||
        (!r->sessions.always_open && now + 3 * USEC_PER_DAY > r->sessions.loaded_to_us)) {
        r->maintained_day = day;
        r->maint_due = true;
        r->retention_due = true;
    }
    int expects = session_set_expects(&r->sessions, ws, cadence);
    if (expects == 1)
        sweep_window(r, ws);
    else if (expects < 0)
        log_warn("calendar not loaded for this window", "window_start_us=%lld", (long long)ws);
    if (r->s->max_sweeps > 0 && r->windows_scheduled >= r->s->max_sweeps) {
        /* no new windows; the sweeps of this one run to completion, then drain */
        r->last_window_scheduled = true;
        if (r->live_sweeps == 0)
            engine_drain(r->e, "max_sweeps reached");
        engine_after_event(r->e);
        return;
    }
    int64_t wait = market_clock_real_until(&r->clock, ws + cadence, run_real_now());
    uv_timer_start(&r->tick_timer, tick, wait > 0 ? (uint64_t)(wait / 1000) + 1 : 1, 0);
    engine_after_event(r->e);
}

static void run_for_cb(uv_timer_t *t)
{
    struct run *r = t->data;
    engine_drain(r->e, "run_for elapsed");
}

/* ---- the universe: sorted by name (the timeline walk and the merge rely on it) ---- */

static int cmp_state(const void *a, const void *b)
{
    return strcmp((*(struct underlying_state *const *)a)->name, (*(struct underlying_state *const *)b)->name);
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, (*(struct underlying_state *const *)elem)->name);
}

struct underlying_state *run_underlying_find(struct run *r, const char *name)
{
    struct underlying_state **u = bsearch(name, r->us, r->nus, sizeof *r->us, cmp_name);
    return u ? *u : NULL;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct universe_entry *)a)->underlying, ((const struct universe_entry *)b)->underlying);
}

/* The names of the underlyings `keep` selects: a text[] literal (array =
 * true) or "A,B" (a list for a setting); malloc'd, NULL when out of memory. */
struct kept_names {
    const struct run *r;
    bool (*keep)(const struct underlying_state *u);
};

static const char *kept_name(const void *items, size_t i)
{
    const struct kept_names *k = items;
    return k->keep(k->r->us[i]) ? k->r->us[i]->name : NULL;
}

char *run_names(const struct run *r, bool (*keep)(const struct underlying_state *u), bool array)
{
    struct kept_names k = {r, keep};
    return names_join(&k, r->nus, kept_name, array);
}

int run_names_replace(const struct run *r, bool (*keep)(const struct underlying_state *u), char **slot)
{
    struct kept_names k = {r, keep};
    return names_array_replace(slot, &k, r->nus, kept_name);
}

static bool is_listed(const struct underlying_state *u) { return !u->retired; }

static int universe_literal(struct run *r) { return run_names_replace(r, is_listed, &r->universe_array); }

/* Makes the universe u[0..n): new names are added, names no longer listed are
 * retired (a running sweep finishes; no new one starts). A sort and a merge:
 * linear after sorting, so a reload of 100k names stays cheap. 0 or -1. */
static int universe_apply(struct run *r, struct universe_entry *u, size_t n)
{
    qsort(u, n, sizeof *u, cmp_entry);
    size_t have = r->nus, i = 0;
    for (size_t k = 0; k < have; k++)
        r->us[k]->retired = true;
    for (size_t k = 0; k < n; k++) {
        while (i < have && strcmp(r->us[i]->name, u[k].underlying) < 0)
            i++;
        if (i < have && strcmp(r->us[i]->name, u[k].underlying) == 0) {
            r->us[i]->retired = false;
            continue;
        }
        if (array_reserve((void **)&r->us, &r->us_cap, r->nus + 1, sizeof *r->us) != 0)
            return -1;
        struct underlying_state *x = calloc(1, sizeof *x);
        if (x == NULL)
            return -1;
        memcpy(x->name, u[k].underlying, sizeof x->name);
        x->last_window_us = INT64_MIN;
        r->us[r->nus++] = x;
    }
    if (r->nus != have)
        qsort(r->us, r->nus, sizeof *r->us, cmp_state);
    return universe_literal(r);
}

/* ---- SIGHUP ---- */

static void apply_reloadable(struct run *r, const struct settings *fresh)
{
    int changed = 0;
    for (size_t i = 0; i < settings_count; i++) {
        const struct setting_desc *d = &settings_table[i];
        char before[SETTING_STR_MAX], after[SETTING_STR_MAX];
        settings_format_value(r->s, i, before, sizeof before);
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
        memcpy((char *)r->s + d->offset, (const char *)fresh + d->offset, size);
        r->s->source[i] = fresh->source[i];
        changed++;
        log_info("setting reloaded", "setting=%s", d->name);
    }
    log_info("configuration reloaded", "settings_changed=%d", changed);
}

/* Re-reads the configuration the way start-up did; applies the reloadable
 * settings and the universe; keeps everything as it was when the new one is bad. */
static void on_reload(void *self)
{
    struct run *r = self;
    struct settings *fresh = malloc(sizeof *fresh);
    struct universe_entry *u = NULL;
    char err[512], q[600];
    int rest[64], nrest, n = -1;
    if (fresh == NULL)
        return;
    if (settings_load_all(fresh, r->argc, r->argv, environ, rest, 64, &nrest, err, sizeof err) != 0 ||
        (n = settings_load_universe(fresh, &u, err, sizeof err)) < 0) {
        log_error("configuration reload rejected: keeping the running configuration", "error=%s",
                  log_quote(q, sizeof q, err));
        enum log_level lvl;
        if (log_level_parse(r->s->log_level, &lvl) == 0)
            log_set_level(lvl);
        free(u);
        settings_free(fresh);
        free(fresh);
        return;
    }
    apply_reloadable(r, fresh);
    if (universe_apply(r, u, (size_t)n) != 0)
        log_error("out of memory", "where=reload");
    free(u);
    bool always = strcmp(r->s->calendar, "always") == 0;
    if (always != r->sessions.always_open) {
        r->sessions.always_open = always;
        session_set_clear(&r->sessions);
        r->maint_due = true;
    }
    size_t active = 0;
    for (size_t i = 0; i < r->nus; i++)
        active += !r->us[i]->retired;
    log_info("universe reloaded", "universe=%zu", active);
    if (sd_notify_statusf("configuration reloaded: %zu underlyings", active) < 0)
        log_debug("systemd notification failed", "%s", "");
    settings_free(fresh);
    free(fresh);
}

/* ---- the driver ---- */

static void on_start(void *self)
{
    struct run *r = self;
    if (r->s->lease_ttl_us > 0) {
        run_leases_start(r); /* the scheduler starts when the first heartbeat has answered */
        run_heal_start(r);
    } else {
        r->ticking = true;
        uv_timer_start(&r->tick_timer, tick, 0, 0);
    }
    if (r->s->run_for_us > 0)
        uv_timer_start(&r->run_for_timer, run_for_cb, (uint64_t)(r->s->run_for_us / 1000), 0);
    if (run_observe_start(r) != 0)
        engine_stop_now(r->e, "cannot start the listener");
}

static void on_pump(void *self)
{
    struct run *r = self;
    run_notify_ready_once(r);
    maintenance_submit(r);
    retention_submit(r);
}

static bool on_busy(void *self)
{
    struct run *r = self;
    return r->live_sweeps > 0 || r->maint.pending || r->retention_q.pending || r->clock_q.pending ||
           r->timeline_q.pending || run_leases_busy(r) || run_heal_busy(r);
}

static void on_drain(void *self, const char *why)
{
    (void)why;
    struct run *r = self;
    uv_timer_stop(&r->tick_timer);
    run_leases_stop(r);
    run_heal_drain(r);
}

static void on_closing(void *self)
{
    run_heal_closing(self);
    run_observe_closing(self);
}

/* ---- start-up (blocking, before the loop) ---- */

static const char sql_last_live[] =
    "SELECT u, (extract(epoch FROM max(c.window_start) FILTER (WHERE c.source = 'live')) * 1000000)::int8, "
    "       (extract(epoch FROM min(c.window_start)) * 1000000)::int8 "
    "FROM unnest($1::text[]) AS u LEFT JOIN ingest_coverage c ON c.underlying = u "
    "GROUP BY u";

/* The schema, the partitions ahead, the calendar, and each underlying's last
 * live window (a restarted daemon never sweeps one again). 0 or -1 (logged);
 * *connected when the database answered at all, *lost when the connection
 * went away before the end. */
static int startup_once(void *user, bool *connected, bool *lost)
{
    struct run *r = user;
    *connected = *lost = false;
    PGconn *c = pg_connect_blocking(r->s->database_url, "optsnap-startup");
    if (c == NULL)
        return -1;
    *connected = true;
    int rc = -1;
    int64_t now = run_market_now(r);
    char nowtxt[40];
    const char *lt[1] = {MAINT_LOCK_TIMEOUT};
    const char *pv[1] = {timestamp_format(nowtxt, sizeof nowtxt, now)};
    if (pg_check_schema(c) != 0)
        goto out;
    PGresult *res = PQexec(c, "BEGIN");
    PQclear(res);
    res = PQexecParams(c, sql_lock_timeout, 1, NULL, lt, NULL, NULL, 0);
    PQclear(res);
    res = PQexecParams(c, sql_partitions, 1, NULL, pv, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        pg_log_error("cannot create partitions ahead now (the daemon retries; rows wait in the default partition)",
                     c, res);
    PQclear(res);
    res = PQexec(c, "COMMIT");
    PQclear(res);
    if (!r->sessions.always_open) {
        if (calendar_load_blocking(c, r->s->calendar, now - SESSION_LOOKBACK_US, now + SESSION_LOOKAHEAD_US,
                                   &r->sessions) != 0)
            goto out;
        log_info("trading calendar loaded", "calendar=%s sessions=%zu", r->s->calendar, r->sessions.n);
    }
    const char *uv[1] = {r->universe_array};
    res = PQexecParams(c, sql_last_live, 1, NULL, uv, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_log_error("cannot read the last covered windows", c, res);
        PQclear(res);
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct underlying_state *u = run_underlying_find(r, PQgetvalue(res, i, 0));
        if (u != NULL && !PQgetisnull(res, i, 1))
            u->last_window_us = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (u != NULL && !PQgetisnull(res, i, 2))
            u->first_window_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
    }
    PQclear(res);
    r->maintained_day = (int32_t)(now / USEC_PER_DAY);
    rc = 0;
out:
    *lost = rc != 0 && PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    return rc;
}

/* A start-up that had the database and lost it (cut off, or failing over
 * under it) is tried again, backing off, for up to a minute; one that never
 * reached it, or found no schema, fails at once (exit 1, as `check` says). */
static int startup(struct run *r)
{
    return pg_startup_retry("start-up", startup_once, r, r->s->retry_max_backoff_us);
}

static int prepare(struct run *r)
{
    char err[512], q[600];
    struct universe_entry *u = NULL;
    int nu = settings_load_universe(r->s, &u, err, sizeof err);
    if (nu < 0) {
        log_error("bad universe", "error=%s", log_quote(q, sizeof q, err));
        return EXIT_USAGE;
    }
    int rc = universe_apply(r, u, (size_t)nu);
    free(u);
    if (rc != 0)
        return EXIT_RUNTIME;
    if (market_clock_parse(&r->clock, r->s->clock, r->s->clock_speed, run_real_now()) != 0) {
        log_error("bad clock", "clock=%s", log_quote(q, sizeof q, r->s->clock));
        return EXIT_USAGE;
    }
    if (settings_load_api_key(r->s, err, sizeof err) != 0) {
        log_error("cannot load the API key", "error=%s", log_quote(q, sizeof q, err));
        return EXIT_USAGE;
    }
    session_set_init(&r->sessions, strcmp(r->s->calendar, "always") == 0);
    r->api_clock.name = "api";
    r->db_clock.name = "database";
    r->uncovered_windows = -1;
    r->started_real_us = run_real_now();
    return startup(r) == 0 ? EXIT_OK : EXIT_RUNTIME;
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->nus; i++) {
        if (r->us[i]->active)
            sweep_free(r->us[i]->active);
        timeline_free(&r->us[i]->timeline);
        free(r->us[i]);
    }
    free(r->us);
    free(r->universe_array);
    free(r->release_array);
    free(r->lease_universe);
    session_set_free(&r->sessions);
    snapshot_page_free(&r->page);
    run_observe_free(r);
    free(r);
}

static int init_timers(struct run *r)
{
    uv_loop_t *loop = engine_loop(r->e);
    uv_timer_t *timers[] = {&r->tick_timer, &r->stats_timer, &r->run_for_timer, &r->watchdog_timer,
                            &r->timeline_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = r;
        if (engine_own_handle(r->e, (uv_handle_t *)timers[i]) != 0)
            return -1;
    }
    return run_leases_init(r) == 0 && run_heal_init(r) == 0 ? 0 : -1;
}

int run_daemon(struct settings *s, int argc, char **argv)
{
    struct run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return EXIT_RUNTIME;
    r->s = s;
    r->argc = argc;
    r->argv = argv;
    srand((unsigned)(time_now_us() ^ (int64_t)getpid()));
    int code = prepare(r);
    if (code != EXIT_OK) {
        run_free(r);
        return code;
    }
    /* `optsnap check`'s checks, logged: a wrong key, an unentitled plan or
     * missing privileges are named once at start, before the loop runs
     * (they block: one request each, at most http_timeout) */
    (void)check_run(s, NULL);
    struct engine_config cfg = {.name = "run", .application_name = "optsnap",
                                .user_agent = "optsnap/" OPTSNAP_VERSION,
                                .http_concurrency = s->http_concurrency, .db_connections = s->db_connections,
                                .queue_max_rows = s->queue_max_rows, .batch_rows = s->batch_rows,
                                .batch_max_age_us = s->batch_max_age_us, .write_max_attempts = 0,
                                .skip_cache_entries = s->skip_cache_entries};
    struct engine_driver d = {.self = r, .start = on_start, .pump = on_pump, .drain = on_drain, .busy = on_busy,
                              .reload = on_reload, .group_settled = on_group_settled,
                              .write_report = on_write_report, .closing = on_closing};
    if (engine_create(&r->e, s, &cfg, &d) != 0 || init_timers(r) != 0) {
        if (r->e != NULL) {
            engine_stop_now(r->e, "cannot start");
            (void)engine_run(r->e);
            engine_free(r->e);
        }
        run_free(r);
        return EXIT_RUNTIME;
    }
    log_info("optsnap run started",
             "universe=%zu cadence_ms=%lld calendar=%s http_concurrency=%d db_connections=%d queue_max_rows=%d "
             "holder=%s lease_ttl_ms=%lld",
             r->nus, (long long)(s->cadence_us / 1000), s->calendar, s->http_concurrency, s->db_connections,
             s->queue_max_rows, s->lease_ttl_us > 0 ? r->holder : "none", (long long)(s->lease_ttl_us / 1000));
    code = engine_run(r->e) == 0 ? EXIT_OK : EXIT_RUNTIME;
    run_leases_release_all(r);
    run_stats_line(r);
    engine_free(r->e);
    run_free(r);
    return code;
}

static void run_usage(FILE *out)
{
    fprintf(out, "usage: optsnap run [--config FILE] [--<setting> VALUE ...]\n\n"
                 "Live ingestion: every `cadence` window inside a trading session, sweep each\n"
                 "underlying's option chain snapshot into PostgreSQL and mark the window covered.\n"
                 "SIGTERM/SIGINT drain and exit 0; a second signal or shutdown_timeout stops at once (exit 1).\n\n"
                 "settings (also OPTSNAP_<KEY> variables and `key = value` lines in the config file):\n");
    cli_print_settings(out);
}

struct run_args {
    int argc;
    char **argv;
};

static int run_command(struct settings *s, void *args)
{
    const struct run_args *a = args;
    return run_daemon(s, a->argc, a->argv);
}

int cmd_run(int argc, char **argv)
{
    struct run_args a = {argc, argv};
    const struct cli_command c = {"run", run_usage, NULL, 0, false};
    return cli_command_run(&c, argc, argv, run_command, &a);
}
