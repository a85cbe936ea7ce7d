/* backfill.c - `optsnap backfill` and `optsnap repair`: rebuild missing windows from minute bars (DESIGN §5) through the shared HTTP client, pool and writer. */
#include "optsnap/history/backfill.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "optsnap/api/aggs_parse.h"
#include "optsnap/api/api_origin.h"
#include "optsnap/util/array.h"
#include "optsnap/util/backoff.h"
#include "optsnap/db/batch.h"
#include "optsnap/commands.h"
#include "optsnap/history/gaps.h"
#include "optsnap/http/http_client.h"
#include "optsnap/util/log.h"
#include "optsnap/api/occ.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/api/reference_parse.h"
#include "optsnap/pipeline/schedule.h"
#include "optsnap/api/snapshot_parse.h" /* enum parse_result */
#include "optsnap/util/timeutil.h"
#include "optsnap/db/write_queue.h"
#include "optsnap/db/writer.h"

extern char **environ;

#define LEASE_TTL_US (120 * USEC_PER_SEC)
#define LEASE_RENEW_MS 30000
#define MAX_SEGMENTS 8            /* local days one unit touches (a session spans <= 2) */
#define UNIT_MAX_SEALED 4         /* batches of one unit queued or in the database */
#define MAX_TXN_ATTEMPTS 8
#define MAX_PARSE_RETRIES 3
#define MAX_CONTRACTS 200000      /* per unit: beyond it the unit fails, never silently cut */
#define MAX_BARS 200000           /* per contract and day */
#define MAX_PAGES 1000            /* per listing or bar fetch: a loop guard */
#define REF_LIMIT 1000
#define AGGS_LIMIT 50000
#define REPORT_LINES 50

struct backfill;
struct bf_underlying;

/* One local (America/New_York) date the unit touches: the aggregates
 * endpoint's day, whose bars build the day block. */
struct bf_segment {
    int32_t date;
    int64_t day_start_us, day_end_us; /* the local day */
    int64_t from_us, to_us;           /* the day intersected with the unit */
};

enum unit_state { UNIT_PENDING, UNIT_LISTING, UNIT_FETCHING, UNIT_FINISHED };
enum unit_outcome { OUTCOME_NONE, OUTCOME_DONE, OUTCOME_COVERED, OUTCOME_FAILED, OUTCOME_SKIPPED };

struct bf_unit {
    struct backfill *bf;
    struct bf_underlying *u;
    int64_t from_us, to_us;
    bool to_is_close; /* to is the session's close: a bar ending there is the session's last state */
    enum unit_state state;
    enum unit_outcome outcome;
    char reason[160];
    struct bf_segment seg[MAX_SEGMENTS];
    int nseg;
    struct option_contract *contracts; /* malloc'd, sorted by ticker once listed */
    size_t ncontracts, contracts_cap;
    int list_step;          /* listing request: segment * 2 + expired */
    size_t next_work;       /* next (contract, segment) pair: ci * nseg + si */
    int fetches_in_flight;
    struct batch *cur;
    struct write_group g;   /* its batches and its coverage mark, in the write queue */
    bool fetch_done;
    long rows_built, rows_written;
    int64_t started_real_us;
};

struct bf_underlying {
    char name[16];
    int units_left;  /* units not finished */
    bool leased, skipped, lost;
    char holder_info[160];
};

enum fetch_kind { FETCH_LIST, FETCH_BARS, FETCH_PREV };

struct bf_fetch {
    struct bf_unit *unit;
    char url[1024];          /* the request in flight, fetched again when its page is malformed */
    int parse_retries;
    enum fetch_kind kind;
    size_t ci;
    int si;
    int pages;
    struct agg_bar *bars; /* malloc'd */
    size_t nbars, bars_cap;
};


struct backfill {
    uv_loop_t *loop;
    struct settings *s;
    int64_t resolution_us;
    PGconn *ctl; /* blocking: leases, listing from `options`, unit checks */
    struct http_client *http;
    struct pg_pool *pool;
    struct bf_underlying *us;
    size_t nus;
    struct bf_unit *units;
    size_t nunits, units_cap, next_unit;
    int units_active, units_max, fetches_in_flight;
    struct write_queue *wq;
    uv_timer_t progress_timer, renew_timer;
    uv_signal_t sig_int, sig_term;
    int open_handles;
    bool closing, interrupted, tty;
    struct aggs_page apage;
    struct contracts_page cpage;
    char holder[200];
    struct api_origin origin;
    int64_t started_real_us, last_progress_log_us;
    int finished, done, covered, failed, skipped;
    long rows_written, rows_built;
};

static void pump(struct backfill *bf);
static void schedule(struct backfill *bf);
static void check_finished(struct backfill *bf);
static void pump_unit(struct bf_unit *un);

static int64_t real_now(void) { return time_now_us(); }


static const char *fmt_time(char *buf, size_t size, int64_t us)
{
    timestamp_format(buf, size, us);
    char *frac = strstr(buf, ".000000Z");
    if (frac != NULL)
        memcpy(frac, "Z", 2);
    return buf;
}

/* ---- the blocking control connection ---- */

static void log_pg(const char *msg, PGconn *c, PGresult *res)
{
    char q[300];
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    log_error(msg, "sqlstate=%s error=%s", st ? st : "none",
              log_quote(q, sizeof q, res ? PQresultErrorMessage(res) : PQerrorMessage(c)));
}

static PGconn *ctl_connect(const struct settings *s, const char *app)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {s->database_url, app, "10", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char masked[SETTING_STR_MAX], q[400], m[256];
        settings_mask_conninfo(s->database_url, masked, sizeof masked);
        snprintf(m, sizeof m, "%s", c ? PQerrorMessage(c) : "out of memory");
        char *nl = strchr(m, '\n');
        if (nl)
            *nl = '\0';
        log_error("cannot connect to the database", "database=%s error=%s",
                  masked[0] ? masked : "(libpq defaults)", log_quote(q, sizeof q, m));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* ---- planning: requests x sessions -> units ---- */

static const char sql_sessions[] =
    "SELECT (extract(epoch FROM open_at) * 1000000)::int8, (extract(epoch FROM close_at) * 1000000)::int8 "
    "FROM optsnap_sessions($1::text, $2::timestamptz, $3::timestamptz) ORDER BY open_at";

/* Local days of [from, to): the time-zone math stays in SQL. */
static const char sql_segments[] =
    "SELECT (g.t::date - date '1970-01-01'),"
    "       (extract(epoch FROM (g.t AT TIME ZONE 'America/New_York')) * 1000000)::int8,"
    "       (extract(epoch FROM ((g.t + interval '1 day') AT TIME ZONE 'America/New_York')) * 1000000)::int8"
    "  FROM generate_series((($1::timestamptz) AT TIME ZONE 'America/New_York')::date::timestamp,"
    "                       (($2::timestamptz - interval '1 microsecond') AT TIME ZONE 'America/New_York')::date::timestamp,"
    "                       interval '1 day') AS g(t) ORDER BY 1";

static struct bf_underlying *underlying_get(struct backfill *bf, const char *name)
{
    for (size_t i = 0; i < bf->nus; i++)
        if (strcmp(bf->us[i].name, name) == 0)
            return &bf->us[i];
    return NULL;
}

static int units_add(struct backfill *bf, struct bf_underlying *u, int64_t from, int64_t to, bool to_is_close)
{
    if (bf->nunits == bf->units_cap) {
        size_t nc = bf->units_cap ? bf->units_cap * 2 : 64;
        struct bf_unit *na = realloc(bf->units, nc * sizeof *na);
        if (na == NULL)
            return -1;
        bf->units = na;
        bf->units_cap = nc;
    }
    struct bf_unit *un = &bf->units[bf->nunits++];
    memset(un, 0, sizeof *un);
    un->bf = bf;
    un->u = u;
    un->from_us = from;
    un->to_us = to;
    un->to_is_close = to_is_close;
    u->units_left++;
    return 0;
}

static int plan_units(struct backfill *bf, const struct backfill_request *reqs, size_t nreqs)
{
    bf->us = calloc(nreqs ? nreqs : 1, sizeof *bf->us);
    if (bf->us == NULL)
        return -1;
    for (size_t r = 0; r < nreqs; r++) {
        const struct backfill_request *q = &reqs[r];
        if (q->to_us <= q->from_us)
            continue;
        struct bf_underlying *u = underlying_get(bf, q->underlying);
        if (u == NULL) {
            u = &bf->us[bf->nus++];
            snprintf(u->name, sizeof u->name, "%s", q->underlying);
        }
        char a[40], b[40];
        const char *p[3] = {bf->s->calendar, timestamp_format(a, sizeof a, q->from_us),
                            timestamp_format(b, sizeof b, q->to_us)};
        PGresult *res = PQexecParams(bf->ctl, sql_sessions, 3, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            log_pg("cannot read the trading calendar", bf->ctl, res);
            PQclear(res);
            return -1;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            int64_t open = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            int64_t close = strtoll(PQgetvalue(res, i, 1), NULL, 10);
            int64_t f = open > q->from_us ? open : q->from_us;
            int64_t t = close < q->to_us ? close : q->to_us;
            if (t > f && units_add(bf, u, f, t, t == close)) {
                PQclear(res);
                return -1;
            }
        }
        PQclear(res);
    }
    return 0;
}

/* ---- leases ---- */

/* The holder of the underlying's lease, "" when none or unknown. */
static void lease_holder(struct backfill *bf, const char *underlying, char *out, size_t size)
{
    const char *p[1] = {underlying};
    out[0] = '\0';
    PGresult *res = PQexecParams(bf->ctl, "SELECT holder FROM ingest_leases WHERE underlying = $1", 1, NULL, p,
                                 NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

/* A lease held by a backfill or repair of this host whose process is gone
 * (kill -9, OOM) would block a re-run for the whole ttl: take it over. Leases
 * of other hosts are left to expire. Returns true when the lease is now ours. */
static bool lease_take_over_dead(struct backfill *bf, struct bf_underlying *u)
{
    char holder[200], host[128], me[128];
    lease_holder(bf, u->name, holder, sizeof holder);
    const char *colon = strrchr(holder, ':');
    if (strncmp(holder, "backfill:", 9) != 0 || colon == NULL || colon - holder - 9 <= 0 ||
        (size_t)(colon - holder - 9) >= sizeof host)
        return false;
    memcpy(host, holder + 9, (size_t)(colon - holder - 9));
    host[colon - holder - 9] = '\0';
    char *end;
    long pid = strtol(colon + 1, &end, 10);
    if (gethostname(me, sizeof me) != 0)
        return false;
    me[sizeof me - 1] = '\0';
    if (*end != '\0' || pid <= 0 || strcmp(host, me) != 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return false;
    bool released = false, ok = false;
    if (gaps_lease_release(bf->ctl, u->name, holder, &released) != 0 ||
        gaps_lease_acquire(bf->ctl, u->name, bf->holder, LEASE_TTL_US, &ok) != 0 || !ok)
        return false;
    char q[300];
    log_warn("took over the lease of a process that died on this host", "underlying=%s stale_holder=%s",
             u->name, log_quote(q, sizeof q, holder));
    return true;
}

static void lease_describe(struct backfill *bf, struct bf_underlying *u)
{
    const char *p[1] = {u->name};
    PGresult *res = PQexecParams(bf->ctl,
                                 "SELECT holder, to_char(expires_at AT TIME ZONE 'UTC', "
                                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ingest_leases WHERE underlying = $1",
                                 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        snprintf(u->holder_info, sizeof u->holder_info, "lease held by %.100s until %s",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    else
        snprintf(u->holder_info, sizeof u->holder_info, "lease held by another process");
    PQclear(res);
}

static void lease_release(struct backfill *bf, struct bf_underlying *u)
{
    if (!u->leased)
        return;
    bool ok;
    if (gaps_lease_release(bf->ctl, u->name, bf->holder, &ok) != 0 || !ok)
        log_warn("lease was not ours to release any more", "underlying=%s", u->name);
    u->leased = false;
}

static void renew_tick(uv_timer_t *t)
{
    struct backfill *bf = t->data;
    for (size_t i = 0; i < bf->nus; i++) {
        struct bf_underlying *u = &bf->us[i];
        if (!u->leased || u->lost)
            continue;
        bool ok = false;
        if (gaps_lease_renew(bf->ctl, u->name, bf->holder, LEASE_TTL_US, &ok) != 0)
            continue; /* logged; the ttl leaves room for the next try */
        if (!ok) {
            u->lost = true;
            log_error("lease lost: the underlying's units in progress stay uncovered", "underlying=%s",
                      u->name);
        }
    }
}

/* ---- units ---- */

static void unit_fail(struct bf_unit *un, const char *why)
{
    if (!un->g.failed) {
        char q[200], a[40];
        snprintf(un->reason, sizeof un->reason, "%s", why);
        log_warn("unit failed: its windows stay uncovered", "underlying=%s from=%s reason=%s",
                 un->u->name, fmt_time(a, sizeof a, un->from_us), log_quote(q, sizeof q, why));
    }
    un->g.failed = true;
    un->next_work = un->ncontracts * (size_t)un->nseg; /* no new fetches */
}

/* Hands the open batch to the write queue; the final seal closes the unit's
 * group, so its coverage mark follows once every batch has committed. */
static void unit_seal(struct bf_unit *un, bool final)
{
    struct batch *b = un->cur;
    un->cur = NULL;
    if (b != NULL) {
        if (b->nrows == 0 && b->nrejects == 0)
            batch_free(b);
        else
            write_queue_add(un->bf->wq, &un->g, b);
    }
    if (final) {
        if (un->u->lost)
            un->g.failed = true; /* no mark without the lease */
        un->g.cov.rows = un->rows_built;
        write_queue_close_group(un->bf->wq, &un->g); /* may settle and finish the unit */
    }
}

static int contract_cmp(const void *a, const void *b)
{
    return strcmp(((const struct option_contract *)a)->ticker, ((const struct option_contract *)b)->ticker);
}

static int unit_add_contract(struct bf_unit *un, const struct option_contract *c)
{
    if (c->expiration_days < un->seg[0].date)
        return 0; /* expired before the unit: it cannot have traded in it */
    if (un->ncontracts >= MAX_CONTRACTS)
        return -1;
    if (un->ncontracts == un->contracts_cap) {
        size_t nc = un->contracts_cap ? un->contracts_cap * 2 : 256;
        struct option_contract *na = realloc(un->contracts, nc * sizeof *na);
        if (na == NULL)
            return -1;
        un->contracts = na;
        un->contracts_cap = nc;
    }
    struct option_contract *d = &un->contracts[un->ncontracts++];
    *d = *c;
    snprintf(d->underlying, sizeof d->underlying, "%s", un->u->name);
    return 0;
}

static const char sql_live_contracts[] =
    "SELECT ticker, contract_type, coalesce(exercise_style, ''), expiration_date - date '1970-01-01',"
    "       strike_price, coalesce(shares_per_contract, 0)"
    "  FROM options WHERE underlying = $1 AND expiration_date >= $2::date";

static int unit_load_live_contracts(struct bf_unit *un)
{
    char day[16];
    date_format(day, sizeof day, un->seg[0].date);
    const char *p[2] = {un->u->name, day};
    PGresult *res = PQexecParams(un->bf->ctl, sql_live_contracts, 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_pg("cannot list the contracts seen live", un->bf->ctl, res);
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct option_contract c;
        memset(&c, 0, sizeof c);
        const char *t = PQgetvalue(res, i, 0);
        if (strlen(t) >= sizeof c.ticker)
            continue;
        memcpy(c.ticker, t, strlen(t) + 1);
        const char *ty = PQgetvalue(res, i, 1);
        c.contract_type = strcmp(ty, "call") == 0 ? 'C' : strcmp(ty, "put") == 0 ? 'P' : 'O';
        const char *ex = PQgetvalue(res, i, 2);
        c.exercise_style = strcmp(ex, "american") == 0   ? 'A'
                           : strcmp(ex, "european") == 0 ? 'E'
                           : strcmp(ex, "bermudan") == 0 ? 'B'
                                                         : '?';
        c.expiration_days = (int32_t)atol(PQgetvalue(res, i, 3));
        c.strike_price = strtod(PQgetvalue(res, i, 4), NULL);
        c.shares_per_contract = (int32_t)atol(PQgetvalue(res, i, 5));
        if (unit_add_contract(un, &c)) {
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    return 0;
}

static int unit_load_segments(struct bf_unit *un)
{
    char a[40], b[40];
    const char *p[2] = {timestamp_format(a, sizeof a, un->from_us), timestamp_format(b, sizeof b, un->to_us)};
    PGresult *res = PQexecParams(un->bf->ctl, sql_segments, 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 || PQntuples(res) > MAX_SEGMENTS) {
        log_pg("cannot split the unit into local days", un->bf->ctl, res);
        PQclear(res);
        return -1;
    }
    un->nseg = PQntuples(res);
    for (int i = 0; i < un->nseg; i++) {
        struct bf_segment *sg = &un->seg[i];
        sg->date = (int32_t)atol(PQgetvalue(res, i, 0));
        sg->day_start_us = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        sg->day_end_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        sg->from_us = sg->day_start_us > un->from_us ? sg->day_start_us : un->from_us;
        sg->to_us = sg->day_end_us < un->to_us ? sg->day_end_us : un->to_us;
    }
    PQclear(res);
    return 0;
}

/* 1 when the unit still has a missing window, 0 when not, -1 on error. */
static int unit_has_gap(struct bf_unit *un)
{
    struct universe_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.underlying, sizeof e.underlying, "%s", un->u->name);
    struct gap_request req = {.calendar = un->bf->s->calendar, .cadence_us = un->bf->s->cadence_us,
                              .from_us = un->from_us, .to_us = un->to_us, .horizon_us = 0,
                              .underlyings = &e, .underlying_count = 1,
                              .statement_timeout_us = un->bf->s->statement_timeout_us};
    struct gap_list gl;
    char err[256];
    if (gaps_query(un->bf->ctl, &req, &gl, err, sizeof err) != 0) {
        char q[300];
        log_error("cannot check the unit's coverage", "underlying=%s error=%s", un->u->name,
                  log_quote(q, sizeof q, err));
        return -1;
    }
    int has = gl.count > 0;
    gap_list_free(&gl);
    return has;
}

static void unit_finish(struct bf_unit *un, enum unit_outcome outcome)
{
    struct backfill *bf = un->bf;
    if (un->state == UNIT_LISTING || un->state == UNIT_FETCHING)
        bf->units_active--;
    un->state = UNIT_FINISHED;
    un->outcome = outcome;
    free(un->contracts);
    un->contracts = NULL;
    un->ncontracts = un->contracts_cap = 0;
    bf->finished++;
    char a[40], b[40];
    switch (outcome) {
    case OUTCOME_DONE:
        bf->done++;
        log_info("unit filled", "underlying=%s from=%s to=%s rows=%ld seconds=%.2f", un->u->name,
                 fmt_time(a, sizeof a, un->from_us), fmt_time(b, sizeof b, un->to_us), un->rows_written,
                 (double)(real_now() - un->started_real_us) / 1e6);
        break;
    case OUTCOME_COVERED: bf->covered++; break;
    case OUTCOME_SKIPPED: bf->skipped++; break;
    default: bf->failed++; break;
    }
    if (--un->u->units_left == 0)
        lease_release(bf, un->u);
}

static void list_next(struct bf_unit *un);

/* Starts one pending unit: lease, coverage check, contracts seen live, then the listing. */
static void unit_start(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    struct bf_underlying *u = un->u;
    un->started_real_us = real_now();
    if (u->skipped) {
        snprintf(un->reason, sizeof un->reason, "%s", u->holder_info);
        unit_finish(un, OUTCOME_SKIPPED);
        return;
    }
    if (u->lost) {
        snprintf(un->reason, sizeof un->reason, "lease lost");
        unit_finish(un, OUTCOME_FAILED);
        return;
    }
    if (!u->leased) {
        bool ok = false;
        if (gaps_lease_acquire(bf->ctl, u->name, bf->holder, LEASE_TTL_US, &ok) != 0) {
            snprintf(un->reason, sizeof un->reason, "cannot take the lease (database error)");
            unit_finish(un, OUTCOME_FAILED);
            return;
        }
        if (!ok && lease_take_over_dead(bf, u))
            ok = true;
        if (!ok) {
            u->skipped = true;
            lease_describe(bf, u);
            char q[200];
            log_warn("underlying skipped: another process works it", "underlying=%s reason=%s", u->name,
                     log_quote(q, sizeof q, u->holder_info));
            snprintf(un->reason, sizeof un->reason, "%s", u->holder_info);
            unit_finish(un, OUTCOME_SKIPPED);
            return;
        }
        u->leased = true;
    }
    int gap = unit_has_gap(un);
    if (gap == 0) {
        unit_finish(un, OUTCOME_COVERED);
        return;
    }
    if (gap < 0 || unit_load_segments(un) != 0 || unit_load_live_contracts(un) != 0) {
        snprintf(un->reason, sizeof un->reason, "database error while preparing the unit");
        unit_finish(un, OUTCOME_FAILED);
        return;
    }
    snprintf(un->g.underlying, sizeof un->g.underlying, "%s", u->name);
    un->g.source = ROW_SOURCE_BACKFILL;
    un->g.owner = un;
    un->g.cov = (struct coverage_mark){.window_start_us = un->from_us, .window_end_us = un->to_us,
                                       .calendar = bf->s->calendar, .cadence_us = bf->s->cadence_us};
    bf->units_active++;
    un->state = UNIT_LISTING;
    un->list_step = 0;
    list_next(un);
}

static void on_http(void *user, const struct http_response *resp);

static int fetch_get(struct bf_fetch *f, const char *url)
{
    struct backfill *bf = f->unit->bf;
    if (url != f->url)
        snprintf(f->url, sizeof f->url, "%s", url);
    if (http_client_get(bf->http, f->url, on_http, f) != 0)
        return -1;
    f->unit->fetches_in_flight++;
    bf->fetches_in_flight++;
    return 0;
}

/* Issues the listing request of list_step, or moves on to fetching bars once all are done. */
static void list_next(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    if (un->g.failed || un->list_step >= un->nseg * 2) {
        if (!un->g.failed) {
            qsort(un->contracts, un->ncontracts, sizeof *un->contracts, contract_cmp);
            size_t m = 0;
            for (size_t i = 0; i < un->ncontracts; i++)
                if (m == 0 || strcmp(un->contracts[m - 1].ticker, un->contracts[i].ticker) != 0)
                    un->contracts[m++] = un->contracts[i];
            un->ncontracts = m;
            log_debug("unit listed", "underlying=%s contracts=%zu", un->u->name, m);
        }
        un->state = UNIT_FETCHING;
        un->next_work = un->g.failed ? un->ncontracts * (size_t)un->nseg : 0;
        pump(bf); /* a unit with nothing to fetch is sealed and closed there */
        return;
    }
    struct bf_fetch *f = calloc(1, sizeof *f);
    if (f == NULL) {
        unit_fail(un, "out of memory");
        list_next(un);
        return;
    }
    f->unit = un;
    f->kind = FETCH_LIST;
    char url[1024], day[16];
    snprintf(url, sizeof url, "%s/v3/reference/options/contracts?underlying_ticker=%s&as_of=%s%s&limit=%d",
             bf->origin.base, un->u->name, date_format(day, sizeof day, un->seg[un->list_step / 2].date),
             un->list_step % 2 ? "&expired=true" : "", REF_LIMIT);
    if (fetch_get(f, url) != 0) {
        free(f);
        unit_fail(un, "cannot start a request");
        list_next(un);
    }
}

static void bars_url(struct backfill *bf, const struct bf_unit *un, size_t ci, int si, bool prev, char *url,
                     size_t size)
{
    char d1[16], d2[16];
    const struct bf_segment *sg = &un->seg[si];
    if (!prev) {
        date_format(d1, sizeof d1, sg->date);
        snprintf(url, size, "%s/v2/aggs/ticker/%s/range/%d/minute/%s/%s?sort=asc&limit=%d", bf->origin.base,
                 un->contracts[ci].ticker, (int)(bf->resolution_us / USEC_PER_MIN), d1, d1, AGGS_LIMIT);
        return;
    }
    /* the simulator, like the market, looks back 30 sessions for the previous
     * close: 30 days on an always-open calendar, 6 weeks of weekdays otherwise */
    int back = strcmp(bf->s->calendar, "always") == 0 ? 30 : 42;
    date_format(d1, sizeof d1, sg->date - back);
    date_format(d2, sizeof d2, sg->date - 1);
    snprintf(url, size, "%s/v2/aggs/ticker/%s/range/1/day/%s/%s?sort=desc&limit=1", bf->origin.base,
             un->contracts[ci].ticker, d1, d2);
}

/* Starts bar fetches while the unit's budget and the write queue have room. */
static void pump_unit(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    size_t total = un->ncontracts * (size_t)un->nseg;
    while (un->state == UNIT_FETCHING && !un->g.failed && un->next_work < total &&
           un->fetches_in_flight < bf->s->backfill_http_concurrency && un->g.outstanding < UNIT_MAX_SEALED &&
           !bf->closing) {
        struct bf_fetch *f = calloc(1, sizeof *f);
        if (f == NULL) {
            unit_fail(un, "out of memory");
            break;
        }
        f->unit = un;
        f->kind = FETCH_BARS;
        f->ci = un->next_work / (size_t)un->nseg;
        f->si = (int)(un->next_work % (size_t)un->nseg);
        un->next_work++;
        char url[1024];
        bars_url(bf, un, f->ci, f->si, false, url, sizeof url);
        if (fetch_get(f, url) != 0) {
            free(f);
            unit_fail(un, "cannot start a request");
            break;
        }
    }
    if (un->state == UNIT_FETCHING && un->next_work >= total && un->fetches_in_flight == 0 && !un->fetch_done) {
        un->fetch_done = true;
        unit_seal(un, true);
    }
}

static void pump(struct backfill *bf)
{
    for (size_t i = 0; i < bf->nunits; i++)
        if (bf->units[i].state == UNIT_FETCHING)
            pump_unit(&bf->units[i]);
    write_queue_dispatch(bf->wq);
}

static void schedule(struct backfill *bf)
{
    while (!bf->closing && bf->units_active < bf->units_max && bf->next_unit < bf->nunits) {
        struct bf_unit *un = &bf->units[bf->next_unit++];
        unit_start(un);
    }
    check_finished(bf);
}

/* The write queue's word that a unit's rows and mark are all done with. */
static void on_group_settled(void *user, struct write_group *g)
{
    struct backfill *bf = user;
    struct bf_unit *un = g->owner;
    un->rows_written = g->rows_written;
    bf->rows_written += g->rows_written;
    if (un->u->lost && !un->g.failed)
        unit_fail(un, "lease lost");
    unit_finish(un, un->g.coverage_written && !un->g.failed ? OUTCOME_DONE : OUTCOME_FAILED);
    schedule(bf);
}

static void on_write_report(void *user, struct write_group *g, const struct write_report *r)
{
    (void)user;
    char q[300];
    switch (r->event) {
    case WRITE_RETRYING:
        log_warn("batch will be retried", "underlying=%s statement=%s sqlstate=%s attempt=%d wait_ms=%lld error=%s",
                 g->underlying, r->statement, r->sqlstate, r->attempt, (long long)(r->wait_us / 1000),
                 log_quote(q, sizeof q, r->message));
        break;
    case WRITE_BISECTED:
    case WRITE_ROW_REFUSED:
        log_warn("data error in a backfill batch", "underlying=%s statement=%s sqlstate=%s rows=%ld error=%s",
                 g->underlying, r->statement, r->sqlstate, r->rows, log_quote(q, sizeof q, r->message));
        break;
    case WRITE_REJECTS_DROPPED:
    case WRITE_DROPPED: {
        char why[160];
        snprintf(why, sizeof why, "database error %s in %s", r->sqlstate[0] ? r->sqlstate : "(connection)",
                 r->statement);
        log_error("backfill batch failed", "underlying=%s statement=%s sqlstate=%s rows=%ld error=%s",
                  g->underlying, r->statement, r->sqlstate, r->rows, log_quote(q, sizeof q, r->message));
        struct bf_unit *un = g->owner;
        if (!un->reason[0])
            snprintf(un->reason, sizeof un->reason, "%s", why);
        break;
    }
    default:
        break;
    }
}

/* ---- turning bars into rows ---- */

static double round2(double v) { return round(v * 100.0) / 100.0; }

/* The day block at each bar's end, from the session's first bar on (the
 * simulator's mm_day_block in the same order, so the floats agree exactly). */
static int build_rows(struct bf_unit *un, struct bf_fetch *f, bool has_prev, double prev)
{
    struct backfill *bf = un->bf;
    const struct bf_segment *sg = &un->seg[f->si];
    double open = 0, high = 0, low = 0, vsum = 0, vwv = 0;
    for (size_t i = 0; i < f->nbars; i++) {
        const struct agg_bar *b = &f->bars[i];
        if (i == 0) {
            open = b->open;
            high = b->high;
            low = b->low;
        }
        high = b->high > high ? b->high : high;
        low = b->low < low ? b->low : low;
        double vw = isnan(b->vwap) ? b->close : b->vwap;
        vsum += b->volume;
        vwv += vw * b->volume;
        int64_t lu = b->start_ms * 1000 + bf->resolution_us;
        bool inside = lu >= sg->from_us &&
                      (lu < sg->to_us || (lu == un->to_us && un->to_is_close)) && lu < sg->day_end_us;
        if (!inside)
            continue;
        struct snapshot_row r;
        memset(&r, 0, sizeof r);
        r.contract = un->contracts[f->ci];
        r.last_updated_us = lu;
        r.source = ROW_SOURCE_BACKFILL;
        snapshot_row_set_f64(&r, SNAP_DAY_OPEN, open);
        snapshot_row_set_f64(&r, SNAP_DAY_HIGH, high);
        snapshot_row_set_f64(&r, SNAP_DAY_LOW, low);
        snapshot_row_set_f64(&r, SNAP_DAY_CLOSE, b->close);
        snapshot_row_set_i64(&r, SNAP_DAY_VOLUME, (int64_t)llround(vsum));
        if (vsum > 0)
            snapshot_row_set_f64(&r, SNAP_DAY_VWAP, vwv / vsum);
        if (has_prev) {
            snapshot_row_set_f64(&r, SNAP_DAY_PREVIOUS_CLOSE, prev);
            snapshot_row_set_f64(&r, SNAP_DAY_CHANGE, round2(b->close - prev));
            if (prev != 0)
                snapshot_row_set_f64(&r, SNAP_DAY_CHANGE_PERCENT, (b->close - prev) / prev * 100.0);
        }
        snapshot_row_set_i64(&r, SNAP_DAY_TIME, sg->day_start_us);
        if (un->cur == NULL) {
            un->cur = batch_new();
            if (un->cur == NULL)
                return -1;
            un->cur->owner = un;
        }
        if (batch_add_row(un->cur, &r))
            return -1;
        un->rows_built++;
        bf->rows_built++;
        if (un->cur->nrows >= (size_t)bf->s->batch_rows)
            unit_seal(un, false);
    }
    return 0;
}

/* True when some bar of the fetch ends inside the unit (so rows need a previous close). */
static bool fetch_has_rows(const struct bf_unit *un, const struct bf_fetch *f)
{
    const struct bf_segment *sg = &un->seg[f->si];
    for (size_t i = 0; i < f->nbars; i++) {
        int64_t lu = f->bars[i].start_ms * 1000 + un->bf->resolution_us;
        if (lu >= sg->from_us && (lu < sg->to_us || (lu == un->to_us && un->to_is_close)) && lu < sg->day_end_us)
            return true;
    }
    return false;
}


/* Follows next_url when there is one. Returns 1 when a next page was
 * requested, 0 when there is none, -1 on failure (unit failed). */
static int follow_next(struct bf_fetch *f, const char *next)
{
    struct bf_unit *un = f->unit;
    if (next == NULL || next[0] == '\0')
        return 0;
    if (!api_origin_owns(&un->bf->origin, next)) {
        unit_fail(un, "next_url points away from api_url (not followed: the key would go with it)");
        return -1;
    }
    if (++f->pages >= MAX_PAGES) {
        unit_fail(un, "too many pages: pagination loop?");
        return -1;
    }
    if (fetch_get(f, next) != 0) {
        unit_fail(un, "cannot start a request");
        return -1;
    }
    return 1;
}

static void fetch_free(struct bf_fetch *f)
{
    free(f->bars);
    free(f);
}

static void on_http(void *user, const struct http_response *resp)
{
    struct bf_fetch *f = user;
    struct bf_unit *un = f->unit;
    struct backfill *bf = un->bf;
    un->fetches_in_flight--;
    bf->fetches_in_flight--;
    if (bf->closing || resp->outcome == HTTP_CANCELLED) {
        fetch_free(f);
        return;
    }
    char err[300], q[300], why[200];
    if (resp->outcome != HTTP_OK) {
        log_error("backfill request failed", "underlying=%s status=%ld attempts=%d error=%s", un->u->name,
                  resp->status, resp->attempts, log_quote(q, sizeof q, resp->error ? resp->error : ""));
        snprintf(why, sizeof why, "request failed (status %ld)", resp->status);
        unit_fail(un, why);
        goto done;
    }
    if (un->g.failed)
        goto done;
    if (f->kind == FETCH_LIST) {
        contracts_page_reset(&bf->cpage);
        int prc = contracts_page_parse(&bf->cpage, resp->body, resp->body_len, err, sizeof err);
        if (prc == PARSE_ERR_JSON && f->parse_retries < MAX_PARSE_RETRIES) {
            f->parse_retries++;
            log_warn("bad contracts page, fetching it again", "underlying=%s try=%d error=%s", un->u->name,
                     f->parse_retries, log_quote(q, sizeof q, err));
            if (fetch_get(f, f->url) == 0)
                return;
        }
        if (prc != PARSE_OK) {
            log_error("bad contracts page", "underlying=%s error=%s", un->u->name, log_quote(q, sizeof q, err));
            unit_fail(un, "bad contracts page");
            goto done;
        }
        for (size_t i = 0; i < bf->cpage.ncontracts; i++) {
            if (strcmp(bf->cpage.contracts[i].underlying, un->u->name) != 0)
                continue;
            if (unit_add_contract(un, &bf->cpage.contracts[i])) {
                unit_fail(un, "too many contracts or out of memory");
                goto done;
            }
        }
        int rc = follow_next(f, bf->cpage.next_url);
        if (rc == 1)
            return;
        if (rc == 0) {
            un->list_step++;
            fetch_free(f);
            list_next(un);
            return;
        }
        goto done;
    }
    aggs_page_reset(&bf->apage);
    int arc = aggs_page_parse(&bf->apage, resp->body, resp->body_len, err, sizeof err);
    if (arc == PARSE_ERR_JSON && f->parse_retries < MAX_PARSE_RETRIES) {
        f->parse_retries++;
        log_warn("bad aggregates page, fetching it again", "underlying=%s try=%d error=%s", un->u->name,
                 f->parse_retries, log_quote(q, sizeof q, err));
        if (fetch_get(f, f->url) == 0)
            return;
    }
    if (arc != PARSE_OK) {
        log_error("bad aggregates page", "underlying=%s error=%s", un->u->name, log_quote(q, sizeof q, err));
        unit_fail(un, "bad aggregates page");
        goto done;
    }
    if (f->kind == FETCH_PREV) {
        bool has_prev = bf->apage.nbars > 0;
        double prev = has_prev ? bf->apage.bars[0].close : 0;
        if (build_rows(un, f, has_prev, prev) != 0)
            unit_fail(un, "out of memory");
        goto done;
    }
    if (f->nbars + bf->apage.nbars > MAX_BARS) {
        unit_fail(un, "too many bars for one contract and day");
        goto done;
    }
    if (array_reserve((void **)&f->bars, &f->bars_cap, f->nbars + bf->apage.nbars, sizeof *f->bars)) {
        unit_fail(un, "out of memory");
        goto done;
    }
    if (bf->apage.nbars > 0)
        memcpy(f->bars + f->nbars, bf->apage.bars, bf->apage.nbars * sizeof *f->bars);
    f->nbars += bf->apage.nbars;
    int more = follow_next(f, bf->apage.next_url);
    if (more == 1)
        return;
    if (more < 0)
        goto done;
    for (size_t i = 1; i < f->nbars; i++) {
        if (f->bars[i].start_ms <= f->bars[i - 1].start_ms) {
            unit_fail(un, "bars out of order");
            goto done;
        }
    }
    if (fetch_has_rows(un, f)) {
        char url[1024];
        f->kind = FETCH_PREV;
        f->pages = 0;
        bars_url(bf, un, f->ci, f->si, true, url, sizeof url);
        if (fetch_get(f, url) != 0) {
            unit_fail(un, "cannot start a request");
            goto done;
        }
        return;
    }
done:
    if (f->kind == FETCH_LIST) {
        /* a failed listing ends the unit through list_next (it sees un->g.failed) */
        fetch_free(f);
        list_next(un);
        return;
    }
    fetch_free(f);
    pump_unit(un);
    write_queue_dispatch(bf->wq);
}

/* ---- writing: the write queue does it ---- */

static void on_pool_notify(void *user)
{
    struct backfill *bf = user;
    if (bf->closing)
        return;
    write_queue_dispatch(bf->wq);
    pump(bf); /* batches committed: units waiting on UNIT_MAX_SEALED go on */
    check_finished(bf);
}

/* ---- progress, shutdown ---- */

static void progress_draw(struct backfill *bf, bool final)
{
    int64_t now = real_now();
    double el = (double)(now - bf->started_real_us) / 1e6;
    int total = (int)bf->nunits;
    double eta = bf->finished > 0 ? el / bf->finished * (total - bf->finished) : -1;
    if (bf->tty) {
        int width = 30, fill = total > 0 ? bf->finished * width / total : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] units %d/%d  rows %ld  %.0f rows/s  ETA %s%.0fs   %s", bar, bf->finished, total,
                bf->rows_written, el > 0 ? (double)bf->rows_written / el : 0.0, eta < 0 ? "?" : "",
                eta < 0 ? 0.0 : eta, final ? "\n" : "");
        fflush(stderr);
        return;
    }
    if (final || now - bf->last_progress_log_us >= 5 * USEC_PER_SEC) {
        bf->last_progress_log_us = now;
        log_info("backfill progress", "units_done=%d units_total=%d rows=%ld rows_built=%ld eta_s=%.0f",
                 bf->finished, total, bf->rows_written, bf->rows_built, eta < 0 ? -1.0 : eta);
    }
}

static void progress_tick(uv_timer_t *t) { progress_draw(t->data, false); }

static void handle_closed(uv_handle_t *h)
{
    struct backfill *bf = h->data;
    bf->open_handles--;
}

static void http_closed(void *user)
{
    struct backfill *bf = user;
    bf->http = NULL;
    bf->open_handles--;
}

static void pool_closed(void *user)
{
    struct backfill *bf = user;
    bf->pool = NULL;
    bf->open_handles--;
}

static void wq_closed(void *user)
{
    struct backfill *bf = user;
    bf->wq = NULL;
    bf->open_handles--;
}

static void close_handle(struct backfill *bf, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = bf;
    bf->open_handles++;
    uv_close(h, handle_closed);
}

static void close_all(struct backfill *bf)
{
    if (bf->closing)
        return;
    bf->closing = true;
    close_handle(bf, (uv_handle_t *)&bf->progress_timer);
    close_handle(bf, (uv_handle_t *)&bf->renew_timer);
    close_handle(bf, (uv_handle_t *)&bf->sig_int);
    close_handle(bf, (uv_handle_t *)&bf->sig_term);
    bf->open_handles += 3;
    http_client_close(bf->http, http_closed, bf);
    /* queued batches are dropped (their units stay uncovered); the pool then
     * cancels what is in flight while the units still exist */
    write_queue_close(bf->wq, wq_closed, bf);
    pg_pool_close(bf->pool, pool_closed, bf);
}

static void check_finished(struct backfill *bf)
{
    if (bf->closing || bf->next_unit < bf->nunits || bf->units_active > 0)
        return;
    if (bf->fetches_in_flight > 0 || !write_queue_idle(bf->wq))
        return;
    close_all(bf);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct backfill *bf = h->data;
    log_warn("interrupted: units in progress stay uncovered (a re-run resumes)", "signal=%d", signum);
    bf->interrupted = true;
    close_all(bf);
}


static void report_units(struct backfill *bf)
{
    int printed = 0, left = 0;
    for (size_t i = 0; i < bf->nunits; i++) {
        struct bf_unit *un = &bf->units[i];
        enum unit_outcome o = un->state == UNIT_FINISHED ? un->outcome : OUTCOME_FAILED;
        if (o != OUTCOME_FAILED && o != OUTCOME_SKIPPED)
            continue;
        if (printed >= REPORT_LINES) {
            left++;
            continue;
        }
        char a[40], b[40];
        printf("%-8s %s .. %s  %s: %s\n", un->u->name, fmt_time(a, sizeof a, un->from_us),
               fmt_time(b, sizeof b, un->to_us), o == OUTCOME_SKIPPED ? "skipped" : "failed",
               un->reason[0] ? un->reason : (bf->interrupted ? "interrupted" : "not finished"));
        printed++;
    }
    if (left)
        printf("... and %d more units not filled\n", left);
}

int backfill_execute(struct settings *s, const struct backfill_request *reqs, size_t nreqs, int64_t resolution_us,
                     struct backfill_result *out)
{
    memset(out, 0, sizeof *out);
    struct backfill *bf = calloc(1, sizeof *bf);
    if (bf == NULL)
        return -1;
    int rc = -1;
    bf->s = s;
    bf->resolution_us = resolution_us;
    bf->tty = isatty(2);
    bf->started_real_us = real_now();
    srand((unsigned)(real_now() ^ (int64_t)getpid()));
    char host[128] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(bf->holder, sizeof bf->holder, "backfill:%s:%ld", host, (long)getpid());
    if (api_origin_init(&bf->origin, bf->s->api_url)) {
        log_error("bad api_url", "api_url=%s", s->api_url);
        free(bf);
        return -1;
    }
    bf->ctl = ctl_connect(s, "optsnap-backfill");
    if (bf->ctl == NULL) {
        free(bf);
        return -1;
    }
    if (plan_units(bf, reqs, nreqs) != 0)
        goto out_plan;
    out->units_total = (int)bf->nunits;
    bf->units_max = s->backfill_db_connections > 2 ? s->backfill_db_connections : 2;
    log_info("backfill started", "units=%zu underlyings=%zu calendar=%s cadence_ms=%lld http_concurrency=%d db_connections=%d holder=%s",
             bf->nunits, bf->nus, s->calendar, (long long)(s->cadence_us / 1000), s->backfill_http_concurrency,
             s->backfill_db_connections, bf->holder);
    if (bf->nunits == 0) {
        rc = 0;
        goto out_plan;
    }

    uv_loop_t loop;
    if (uv_loop_init(&loop))
        goto out_plan;
    bf->loop = &loop;
    struct http_settings hs;
    http_settings_default(&hs);
    hs.concurrency = s->backfill_http_concurrency;
    hs.rate = s->http_rate;
    hs.total_timeout_us = s->http_timeout_us;
    hs.connect_timeout_us = s->http_connect_timeout_us;
    hs.max_attempts = s->http_max_attempts;
    hs.backoff_cap_us = s->retry_max_backoff_us;
    hs.api_key = s->api_key;
    hs.ca_file = s->ca_file[0] ? s->ca_file : NULL;
    hs.user_agent = "optsnap/0.1 backfill";
    if (http_client_create(&bf->http, &loop, &hs)) {
        log_error("cannot start the HTTP client", "%s", "");
        goto out_loop;
    }
    struct pg_pool_settings ps = {.conninfo = s->database_url, .size = s->backfill_db_connections,
                                  .statement_timeout_us = s->statement_timeout_us,
                                  .application_name = "optsnap-backfill"};
    if (pg_pool_create(&bf->pool, &loop, &ps, on_pool_notify, bf)) {
        log_error("cannot start the database pool", "%s", "");
        bf->open_handles++;
        http_client_close(bf->http, http_closed, bf);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    struct write_queue_settings wqs = {.retry_cap_us = 6400000, .max_attempts = MAX_TXN_ATTEMPTS};
    struct write_queue_hooks wqh = {.report = on_write_report, .group_settled = on_group_settled};
    if (write_queue_create(&bf->wq, &loop, bf->pool, &wqs, &wqh, bf)) {
        log_error("out of memory", "where=write queue");
        bf->open_handles += 2;
        http_client_close(bf->http, http_closed, bf);
        pg_pool_close(bf->pool, pool_closed, bf);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    uv_timer_init(&loop, &bf->progress_timer);
    uv_timer_init(&loop, &bf->renew_timer);
    uv_signal_init(&loop, &bf->sig_int);
    uv_signal_init(&loop, &bf->sig_term);
    bf->progress_timer.data = bf->renew_timer.data = bf;
    bf->sig_int.data = bf->sig_term.data = bf;
    uv_timer_start(&bf->progress_timer, progress_tick, bf->tty ? 250 : 1000, bf->tty ? 250 : 1000);
    uv_timer_start(&bf->renew_timer, renew_tick, LEASE_RENEW_MS, LEASE_RENEW_MS);
    uv_signal_start(&bf->sig_int, on_signal, SIGINT);
    uv_signal_start(&bf->sig_term, on_signal, SIGTERM);
    bf->last_progress_log_us = real_now();
    schedule(bf);
    uv_run(&loop, UV_RUN_DEFAULT);
    progress_draw(bf, true);
    rc = 0;
out_loop:
    if (uv_loop_close(&loop) != 0) {
        log_error("event loop did not close cleanly: a handle leaked", "%s", "");
        rc = -1;
    }
out_plan:
    for (size_t i = 0; i < bf->nus; i++)
        lease_release(bf, &bf->us[i]);
    report_units(bf);
    for (size_t i = 0; i < bf->nunits; i++) {
        batch_free(bf->units[i].cur);
        free(bf->units[i].contracts);
    }
    out->units_done = bf->done;
    out->units_covered = bf->covered;
    out->units_skipped = bf->skipped;
    out->units_failed = (int)bf->nunits - bf->done - bf->covered - bf->skipped;
    out->rows_written = bf->rows_written;
    out->rows_built = bf->rows_built;
    out->interrupted = bf->interrupted;
    out->seconds = (double)(real_now() - bf->started_real_us) / 1e6;
    aggs_page_free(&bf->apage);
    contracts_page_free(&bf->cpage);
    PQfinish(bf->ctl);
    free(bf->units);
    free(bf->us);
    free(bf);
    return rc;
}

/* ---- the commands ---- */

struct cmd_options {
    const char *from, *to, *underlying, *resolution, *lookback, *until;
};

static int parse_options(const char *cmd, char **argv, const int *rest, int nrest, struct cmd_options *o,
                         bool repair)
{
    const char *names[6] = {"--from", "--to", "--underlying", "--resolution", "--lookback", "--until"};
    const char **slot[6] = {&o->from, &o->to, &o->underlying, &o->resolution, &o->lookback, &o->until};
    for (int k = 0; k < nrest; k++) {
        const char *a = argv[rest[k]];
        int which = -1;
        const char *value = NULL;
        for (int n = 0; n < 6 && which < 0; n++) {
            if ((n <= 1 || n == 3) == repair && n != 2)
                continue; /* backfill: from/to/resolution; repair: lookback/until */
            size_t len = strlen(names[n]);
            if (strncmp(a, names[n], len) != 0)
                continue;
            if (a[len] == '=') {
                value = a + len + 1;
                which = n;
            } else if (a[len] == '\0') {
                if (k + 1 >= nrest || rest[k + 1] != rest[k] + 1) {
                    fprintf(stderr, "optsnap %s: %s needs a value\n", cmd, a);
                    return -1;
                }
                value = argv[rest[++k]];
                which = n;
            }
        }
        if (which < 0) {
            fprintf(stderr, "optsnap %s: unknown argument '%s' (see optsnap %s --help)\n", cmd, a, cmd);
            return -1;
        }
        *slot[which] = value;
    }
    return 0;
}

static void common_settings_help(FILE *out)
{
    fprintf(out,
            "settings used (also OPTSNAP_<KEY> and `key = value` in the config file; see optsnap config --help):\n"
            "  --calendar C                    us-options or always: the sessions to fill (default us-options)\n"
            "  --cadence D                     window length of the coverage ledger (default 60s)\n"
            "  --universe LIST|@FILE           underlyings when --underlying is not given\n"
            "  --api-url URL                   the market-data API (next_url is followed on this origin only)\n"
            "  --api-key-file F                API key (or OPTSNAP_API_KEY, or $CREDENTIALS_DIRECTORY/api_key)\n"
            "  --database-url URL              libpq URL or conninfo (default libpq's PG* variables)\n"
            "  --backfill-http-concurrency N   requests in flight (default 8): smaller than run's budget\n"
            "  --backfill-db-connections N     pool size = database concurrency (default 2)\n"
            "  --batch-rows N                  rows per upsert transaction\n"
            "  --statement-timeout D           per transaction (SET LOCAL)\n"
            "  --http-rate R, --http-timeout D, --http-connect-timeout D, --http-max-attempts N,\n"
            "  --retry-max-backoff D, --ca-file F, --log-level L, --config FILE\n\n"
            "How: per underlying and trading session in the range (one unit), take the\n"
            "underlying's lease in PostgreSQL (another holder: the underlying is skipped and\n"
            "reported, never waited for), skip units that have no missing window, list the\n"
            "contracts (seen live in `options`, and /v3/reference/options/contracts with\n"
            "as_of and expired=true), fetch each contract's minute bars of the session and\n"
            "its previous close (latest earlier daily bar), and write one row per bar at the\n"
            "bar's end carrying the day-so-far block (open, running high/low, close,\n"
            "cumulative volume and vwap, previous_close, change, change_percent), source\n"
            "backfill, never overwriting a live row. The unit's windows are marked covered in\n"
            "the transaction that commits after all its rows. Killed half-way, a re-run does\n"
            "only the units still missing. Progress: a bar on a terminal, else a logfmt line\n"
            "every 5 s.\n\n"
            "exit codes: 0 all filled, 3 some units failed or were skipped (listed on stdout\n"
            "with the reason), 1 fatal error, 2 usage or configuration error\n");
}

static void backfill_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap backfill --from T --to T [--underlying A,B] [--resolution 1m] [--<setting> V ...]\n\n"
            "Fills [from, to) from the aggregates endpoint.\n\n"
            "  --from T          start, inclusive: 2026-11-02, 2026-11-02T14:30:00Z, \"2026-11-02 14:30:00\" (UTC)\n"
            "  --to T            end, exclusive (same forms)\n"
            "  --underlying L    comma list of underlyings (default: the universe setting)\n"
            "  --resolution D    bar length, whole minutes (default 1m; the simulator's truth is 1m)\n"
            "  --help            this text\n\n");
    common_settings_help(out);
}

static void repair_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap repair [--lookback 7d] [--until T] [--underlying A,B] [--<setting> V ...]\n\n"
            "For cron or a systemd timer: lists the gaps of [until - lookback, until) (as\n"
            "`optsnap gaps` does), backfills exactly those ranges, lists the gaps again and\n"
            "reports what is still missing and why. A second run right after does nothing.\n\n"
            "  --lookback D      how far back to look (default 7d)\n"
            "  --until T         end of the period (default: now on the `clock` setting's market clock)\n"
            "  --underlying L    comma list of underlyings (default: the universe setting)\n"
            "  --help            this text\n\n");
    common_settings_help(out);
}

static int load_command(const char *cmd, int argc, char **argv, struct settings *s, struct cmd_options *o,
                        bool repair)
{
    char err[512];
    int rest[64], nrest = 0;
    if (settings_load_all(s, argc, argv, environ, rest, 64, &nrest, err, sizeof err)) {
        fprintf(stderr, "optsnap %s: %s\n", cmd, err);
        return -1;
    }
    memset(o, 0, sizeof *o);
    if (parse_options(cmd, argv, rest, nrest, o, repair) != 0)
        return -1;
    if (o->underlying != NULL &&
        settings_set(s, "universe", o->underlying, SOURCE_FLAG, "--underlying", err, sizeof err)) {
        fprintf(stderr, "optsnap %s: --underlying: %s\n", cmd, err);
        return -1;
    }
    if (settings_load_api_key(s, err, sizeof err)) {
        fprintf(stderr, "optsnap %s: cannot load the API key: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

static int exit_for(const struct backfill_result *r)
{
    if (r->interrupted)
        return EXIT_RUNTIME;
    return r->units_failed > 0 || r->units_skipped > 0 ? EXIT_PARTIAL : EXIT_OK;
}

static void print_summary(const char *cmd, const struct backfill_result *r)
{
    printf("%s: %d unit%s: %d filled, %d already covered, %d failed, %d skipped (lease held elsewhere); "
           "%ld rows written (%ld built) in %.1fs, %.0f rows/s\n",
           cmd, r->units_total, r->units_total == 1 ? "" : "s", r->units_done, r->units_covered, r->units_failed,
           r->units_skipped, r->rows_written, r->rows_built, r->seconds,
           r->seconds > 0 ? (double)r->rows_written / r->seconds : 0.0);
}

static int help_asked(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

int cmd_backfill(int argc, char **argv)
{
    if (help_asked(argc, argv)) {
        backfill_usage(stdout);
        return EXIT_OK;
    }
    struct settings s;
    struct cmd_options o;
    if (load_command("backfill", argc, argv, &s, &o, false) != 0) {
        settings_free(&s);
        return EXIT_USAGE;
    }
    int64_t from, to, res = USEC_PER_MIN;
    int code = EXIT_USAGE;
    if (o.from == NULL || o.to == NULL || timestamp_parse(o.from, &from) != 0 || timestamp_parse(o.to, &to) != 0 ||
        to <= from) {
        fprintf(stderr, "optsnap backfill: --from and --to are required times with from < to\n");
        goto out;
    }
    if (o.resolution != NULL &&
        (duration_parse(o.resolution, &res) != 0 || res < USEC_PER_MIN || res % USEC_PER_MIN != 0)) {
        fprintf(stderr, "optsnap backfill: --resolution must be a whole number of minutes\n");
        goto out;
    }
    char err[512];
    struct universe_entry *u = NULL;
    int nu = settings_load_universe(&s, &u, err, sizeof err);
    if (nu <= 0) {
        fprintf(stderr, "optsnap backfill: %s\n", nu < 0 ? err : "no underlying");
        free(u);
        goto out;
    }
    struct backfill_request *reqs = calloc((size_t)nu, sizeof *reqs);
    if (reqs == NULL) {
        free(u);
        code = EXIT_RUNTIME;
        goto out;
    }
    for (int i = 0; i < nu; i++) {
        snprintf(reqs[i].underlying, sizeof reqs[i].underlying, "%s", u[i].underlying);
        reqs[i].from_us = from;
        reqs[i].to_us = to;
    }
    free(u);
    struct backfill_result r;
    int rc = backfill_execute(&s, reqs, (size_t)nu, res, &r);
    free(reqs);
    if (rc != 0) {
        code = EXIT_RUNTIME;
        goto out;
    }
    print_summary("backfill", &r);
    code = exit_for(&r);
out:
    settings_free(&s);
    return code;
}

static void print_gaps(const struct gap_list *g)
{
    char a[40], b[40];
    for (size_t i = 0; i < g->count && i < REPORT_LINES; i++)
        printf("  still missing: %-8s %s .. %s  %d window%s\n", g->ranges[i].underlying,
               fmt_time(a, sizeof a, g->ranges[i].start_us), fmt_time(b, sizeof b, g->ranges[i].end_us),
               g->ranges[i].windows, g->ranges[i].windows == 1 ? "" : "s");
    if (g->count > REPORT_LINES)
        printf("  ... and %zu more ranges\n", g->count - REPORT_LINES);
}

int cmd_repair(int argc, char **argv)
{
    if (help_asked(argc, argv)) {
        repair_usage(stdout);
        return EXIT_OK;
    }
    struct settings s;
    struct cmd_options o;
    if (load_command("repair", argc, argv, &s, &o, true) != 0) {
        settings_free(&s);
        return EXIT_USAGE;
    }
    int code = EXIT_USAGE;
    int64_t lookback = 7 * USEC_PER_DAY, until;
    struct market_clock clock;
    if (market_clock_parse(&clock, s.clock, s.clock_speed, real_now()) != 0) {
        fprintf(stderr, "optsnap repair: bad clock '%s'\n", s.clock);
        goto out;
    }
    until = market_clock_now(&clock, real_now());
    if (o.lookback != NULL && (duration_parse(o.lookback, &lookback) != 0 || lookback <= 0)) {
        fprintf(stderr, "optsnap repair: --lookback must be a positive duration (7d, 36h, 90m)\n");
        goto out;
    }
    if (o.until != NULL && timestamp_parse(o.until, &until) != 0) {
        fprintf(stderr, "optsnap repair: --until '%s' is not a time\n", o.until);
        goto out;
    }
    char err[512];
    struct universe_entry *u = NULL;
    int nu = settings_load_universe(&s, &u, err, sizeof err);
    if (nu <= 0) {
        fprintf(stderr, "optsnap repair: %s\n", nu < 0 ? err : "no underlying");
        free(u);
        goto out;
    }
    code = EXIT_RUNTIME;
    PGconn *conn = ctl_connect(&s, "optsnap-repair");
    if (conn == NULL) {
        free(u);
        goto out;
    }
    struct gap_request req = {.calendar = s.calendar, .cadence_us = s.cadence_us, .from_us = until - lookback,
                              .to_us = until, .horizon_us = 0, .underlyings = u, .underlying_count = (size_t)nu,
                              .statement_timeout_us = s.statement_timeout_us};
    struct gap_list before, after;
    int grc = gaps_query(conn, &req, &before, err, sizeof err);
    if (grc != 0) {
        fprintf(stderr, "optsnap repair: %s\n", err);
        if (grc == GAPS_ERR_REQUEST)
            code = EXIT_USAGE;
        PQfinish(conn);
        free(u);
        goto out;
    }
    char a[40], b[40];
    if (before.count == 0) {
        printf("repair: no gaps: %d underlying%s, %s .. %s\n", nu, nu == 1 ? "" : "s",
               fmt_time(a, sizeof a, req.from_us), fmt_time(b, sizeof b, req.to_us));
        gap_list_free(&before);
        PQfinish(conn);
        free(u);
        code = EXIT_OK;
        goto out;
    }
    printf("repair: %" PRId64 " missing window%s in %zu range%s, %s .. %s\n", before.total_windows,
           before.total_windows == 1 ? "" : "s", before.count, before.count == 1 ? "" : "s",
           fmt_time(a, sizeof a, req.from_us), fmt_time(b, sizeof b, req.to_us));
    struct backfill_request *reqs = calloc(before.count, sizeof *reqs);
    if (reqs == NULL) {
        gap_list_free(&before);
        PQfinish(conn);
        free(u);
        goto out;
    }
    for (size_t i = 0; i < before.count; i++) {
        snprintf(reqs[i].underlying, sizeof reqs[i].underlying, "%s", before.ranges[i].underlying);
        reqs[i].from_us = before.ranges[i].start_us;
        reqs[i].to_us = before.ranges[i].end_us;
    }
    size_t nreqs = before.count;
    gap_list_free(&before);
    struct backfill_result r;
    int rc = backfill_execute(&s, reqs, nreqs, USEC_PER_MIN, &r);
    free(reqs);
    if (rc != 0) {
        PQfinish(conn);
        free(u);
        goto out;
    }
    print_summary("repair", &r);
    grc = gaps_query(conn, &req, &after, err, sizeof err);
    PQfinish(conn);
    free(u);
    if (grc != 0) {
        fprintf(stderr, "optsnap repair: cannot list the gaps again: %s\n", err);
        goto out;
    }
    if (after.count == 0) {
        printf("repair: everything in the lookback is covered now\n");
        code = r.interrupted ? EXIT_RUNTIME : EXIT_OK;
    } else {
        printf("repair: %" PRId64 " window%s still missing (reasons above: failed or skipped units)\n",
               after.total_windows, after.total_windows == 1 ? "" : "s");
        print_gaps(&after);
        code = r.interrupted ? EXIT_RUNTIME : EXIT_PARTIAL;
    }
    gap_list_free(&after);
out:
    settings_free(&s);
    return code;
}
