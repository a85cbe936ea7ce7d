/* backfill.c - the backfill driver: units (underlying x session) leased,
 * checked, listed and filled from minute bars through the engine. */
#include "optsnap/history/backfill.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optsnap/api/aggs_parse.h"
#include "optsnap/api/reference_parse.h"
#include "optsnap/api/roots.h"
#include "optsnap/api/snapshot_parse.h" /* enum parse_result */
#include "optsnap/db/pg_connect.h"
#include "optsnap/db/writer.h"
#include "optsnap/api/occ.h"
#include "optsnap/history/dayblock.h"
#include "optsnap/history/flatfiles.h"
#include "optsnap/pipeline/calendar.h"
#include "optsnap/pipeline/engine.h"
#include "optsnap/pipeline/pager.h"
#include "optsnap/util/names.h"
#include "optsnap/util/array.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"
#include "optsnap_version.h"

#define LEASE_TTL_US (120 * USEC_PER_SEC)
#define LEASE_RENEW_MS 30000
#define MAX_SEGMENTS 8        /* local days one unit touches (a session spans <= 2) */
#define UNIT_MAX_SEALED 4     /* batches of one unit queued or in the database */
#define MAX_TXN_ATTEMPTS 8
#define MAX_CONTRACTS 200000  /* per unit: beyond it the unit fails, never silently cut */
#define MAX_BARS 200000       /* per contract and day */
#define REF_LIMIT 1000
#define AGGS_LIMIT 50000
#define BARS_RESERVE_ROWS 400 /* a session's minute bars: what one bars fetch may bring */
#define REPORT_LINES 50
#define PART_MAX_ATTEMPTS 12         /* a day partition busy this often fails the unit */
#define PART_RETRY_US (100 * 1000LL) /* first back-off; doubles up to 32x */

struct backfill;
struct bf_underlying;

/* One local (America/New_York) date the unit touches: the aggregates
 * endpoint's day, whose bars build the day block. */
struct bf_segment {
    int32_t date;
    int64_t day_start_us, day_end_us; /* the local day */
    int64_t from_us, to_us;           /* the day intersected with the unit */
};

enum unit_state { UNIT_PENDING, UNIT_LEASING, UNIT_PREPARING, UNIT_LISTING, UNIT_FETCHING, UNIT_CLOSED, UNIT_FINISHED };
enum unit_outcome { OUTCOME_NONE, OUTCOME_DONE, OUTCOME_COVERED, OUTCOME_FAILED, OUTCOME_SKIPPED };

/* Tickers the unit's preparation read from the database, sorted, each with
 * a value: the contracts pruned as quiet (value unused), and the previous
 * session closes the day's live rows carry (day.previous_close), whose bars
 * then need no request for it. */
struct ticker_value {
    char *ticker; /* malloc'd */
    double value;
};
struct ticker_set {
    struct ticker_value *v; /* malloc'd */
    size_t n;
};

struct bf_unit {
    struct engine_group g; /* first: the engine hands it back */
    struct backfill *bf;
    struct bf_underlying *u;
    int64_t from_us, to_us;
    bool to_is_close; /* to is the session's close: a bar ending there is the session's last state */
    bool prune;       /* skip contracts the live rows around the unit show did not trade in it */
    bool flat;        /* bars from the day's flat file (ff) instead of the aggregates endpoint */
    bool flat_always; /* the stored ETag decides (backfill --from-flatfiles), not the ledger */
    struct bf_flat *ff; /* malloc'd while the unit works from a flat file */
    struct ticker_set quiet;  /* contracts to skip */
    struct ticker_set closes; /* previous closes the day's live rows carry */
    enum unit_state state;
    enum unit_outcome outcome;
    char reason[160];
    struct bf_segment seg[MAX_SEGMENTS];
    int nseg;
    struct option_contract *contracts; /* malloc'd, sorted by ticker once listed */
    size_t ncontracts, contracts_cap;
    int list_step;       /* listing request: segment * 2 + expired */
    size_t next_work;    /* next (contract, segment) pair: ci * nseg + si */
    int fetches;         /* bar fetches not ended */
    bool has_gap;
    int64_t started_real_us;
    /* the unit's preparation: gap check, local days, contracts seen live */
    struct engine_query prep;
    char prep_params[7][48];
    const char *prep_values[7];
    const char *quiet_values[3];
    /* the day partitions its rows go to, ensured one UTC day at a time */
    struct engine_query part_q;
    int32_t part_day, part_last_day;
    int part_created, part_attempts;
    bool part_waiting;     /* busy: part_timer tries again at part_due_us */
    int64_t part_due_us;
    char part_param[16];
    const char *part_values[1];
};

struct bf_underlying {
    struct backfill *bf;
    char name[16];
    int units_left;  /* units not finished */
    bool leased, skipped, lost;
    int64_t epoch; /* of our history lease: the unit's marks are fenced by it */
    char holder_info[160];
    struct engine_query lease_q;
    const char *lease_values[4];
    char stale_holder[200];
    enum { LEASE_NONE, LEASE_ASKING, LEASE_TAKING_OVER, LEASE_DECIDED } lease_state;
};

enum fetch_kind { FETCH_LIST, FETCH_BARS, FETCH_PREV };

struct bf_fetch {
    struct pager pager;
    struct bf_unit *unit;
    enum fetch_kind kind;
    size_t ci;
    int si;
    struct agg_bar *bars; /* malloc'd */
    size_t nbars, bars_cap;
    double prev_close;    /* NAN: no earlier session */
    char label[48];
};

struct backfill {
    struct engine *e;
    struct settings *s;
    int64_t resolution_us, clip_us;
    struct bf_underlying *us;
    size_t nus;
    struct bf_unit *units;
    size_t nunits, units_cap, next_unit;
    int units_active, units_max;
    uv_timer_t progress_timer, renew_timer, part_timer;
    bool tty, interrupted, released;
    struct engine_query renew_q;
    char *leased_array;
    const char *lease_values[3];
    char ttl_text[24];
    struct aggs_page apage;
    struct contracts_page cpage;
    char holder[200];
    int64_t started_real_us, last_progress_log_us;
    int finished, done, covered, failed, skipped;
    long rows_written, rows_built;
    long contracts_asked, contracts_skipped;
    long closes_known; /* previous closes taken from live rows, not asked */
    long flat_applied, flat_unchanged, flat_rejects;
};

static void schedule(struct backfill *bf);
static void pump_unit(struct bf_unit *un);
static void list_next(struct bf_unit *un);
static void flat_begin(struct bf_unit *un);
static void flat_rows_start(struct bf_unit *un);
static void flat_record(struct bf_unit *un);
static void flat_free(struct bf_unit *un);
static void flat_resume_paused(struct backfill *bf);

static int64_t real_now(void) { return time_now_us(); }

/* ---- planning (blocking, before the loop): requests x sessions -> units ---- */

static struct bf_underlying *underlying_get(struct backfill *bf, const char *name)
{
    for (size_t i = 0; i < bf->nus; i++)
        if (strcmp(bf->us[i].name, name) == 0)
            return &bf->us[i];
    return NULL;
}

static int units_add(struct backfill *bf, struct bf_underlying *u, int64_t from, int64_t to, bool to_is_close,
                     bool prune, int flat)
{
    if (array_reserve((void **)&bf->units, &bf->units_cap, bf->nunits + 1, sizeof *bf->units) != 0)
        return -1;
    struct bf_unit *un = &bf->units[bf->nunits++];
    memset(un, 0, sizeof *un);
    un->u = u;
    un->from_us = from;
    un->to_us = to;
    un->to_is_close = to_is_close;
    un->prune = prune; /* a flat unit that spans two local days goes the REST way, pruned */
    /* flat files hold whole local days that have been published */
    un->flat = flat == FLAT_ALWAYS ||
               (flat == FLAT_AUTO && flatfiles_configured(bf->s) && to_is_close && to + bf->s->flatfiles_delay_us <= bf->clip_us);
    un->flat_always = flat == FLAT_ALWAYS;
    u->units_left++;
    return 0;
}

/* Units never reach past clip_us: no window is marked before it has ended. */
static int plan_request(struct backfill *bf, PGconn *c, const struct backfill_request *q, struct session_set *ss)
{
    int64_t to = q->to_us < bf->clip_us ? q->to_us : bf->clip_us;
    if (to <= q->from_us)
        return 0;
    struct bf_underlying *u = underlying_get(bf, q->underlying);
    if (u == NULL) {
        u = &bf->us[bf->nus++];
        snprintf(u->name, sizeof u->name, "%s", q->underlying);
    }
    if (calendar_load_blocking(c, bf->s->calendar, q->from_us, to, ss) != 0)
        return -1;
    for (size_t i = 0; i < ss->n; i++) {
        int64_t open = ss->sessions[i].open_us, close = ss->sessions[i].close_us;
        int64_t f = open > q->from_us ? open : q->from_us;
        int64_t t = close < to ? close : to;
        if (t > f && units_add(bf, u, f, t, t == close, !q->no_prune, q->flat) != 0)
            return -1;
    }
    return 0;
}

struct plan_try {
    struct backfill *bf;
    const struct backfill_request *reqs;
    size_t nreqs;
};

/* One try of the plan (blocking): the units of every request, from the
 * calendar; a try after a lost connection starts over. */
static int plan_once(void *user, bool *connected, bool *lost)
{
    struct plan_try *p = user;
    struct backfill *bf = p->bf;
    *connected = *lost = false;
    bf->nunits = 0;
    bf->nus = 0;
    memset(bf->us, 0, (p->nreqs ? p->nreqs : 1) * sizeof *bf->us);
    PGconn *c = pg_connect_blocking(bf->s->database_url, "optsnap-backfill");
    if (c == NULL)
        return -1;
    *connected = true;
    int rc = pg_check_schema(c);
    struct session_set ss;
    session_set_init(&ss, false);
    for (size_t r = 0; r < p->nreqs && rc == 0; r++)
        rc = plan_request(bf, c, &p->reqs[r], &ss);
    session_set_free(&ss);
    *lost = rc != 0 && PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    return rc;
}

static int plan_units(struct backfill *bf, const struct backfill_request *reqs, size_t nreqs)
{
    bf->us = calloc(nreqs ? nreqs : 1, sizeof *bf->us);
    if (bf->us == NULL)
        return -1;
    struct plan_try p = {.bf = bf, .reqs = reqs, .nreqs = nreqs};
    int rc = pg_startup_retry("backfill plan", plan_once, &p, bf->s->retry_max_backoff_us);
    /* the arrays are final: point each at its driver */
    for (size_t i = 0; i < bf->nunits; i++)
        bf->units[i].bf = bf;
    for (size_t i = 0; i < bf->nus; i++)
        bf->us[i].bf = bf;
    return rc;
}

/* ---- leases: rows in ingest_leases, through the pool ---- */

static const char sql_lease_acquire[] =
    "SELECT optsnap_lease_acquire($1, $2, $3::bigint * interval '1 microsecond')";
static const char sql_lease_take_over[] =
    "SELECT optsnap_lease_release($1, $4) AND optsnap_lease_acquire($1, $2, $3::bigint * interval '1 microsecond')";
/* a statement of its own: it sees what the acquire did */
static const char sql_lease_state[] =
    "SELECT holder || ' until ' || to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "holder, epoch FROM ingest_leases WHERE kind = 'history' AND underlying = $1";
static const char sql_lease_renew[] =
    "UPDATE ingest_leases SET expires_at = clock_timestamp() + $3::bigint * interval '1 microsecond' "
    "WHERE kind = 'history' AND underlying = ANY($1::text[]) AND holder = $2 RETURNING underlying";

static void unit_finish(struct bf_unit *un, enum unit_outcome outcome);
static void unit_prepare(struct bf_unit *un);
static void ensure_next_partition(struct bf_unit *un);
static void tickers_free(struct ticker_set *set);
static void unit_open_group(struct bf_unit *un);

/* A holder "backfill:HOST:PID" of this host whose process is gone (kill -9,
 * OOM) would block a re-run for the whole ttl: it may be taken over. Leases of
 * other hosts are left to expire. */
static bool holder_is_dead_here(const char *holder)
{
    char host[128], me[128];
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
    return *end == '\0' && pid > 0 && strcmp(host, me) == 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}


static void on_lease_won(void *user, const void *pgresult)
{
    struct bf_underlying *u = user;
    u->leased = PQntuples(pgresult) == 1 && strcmp(PQgetvalue(pgresult, 0, 0), "t") == 0;
}

static void on_lease_state(void *user, const void *pgresult)
{
    struct bf_underlying *u = user;
    const PGresult *res = pgresult;
    if (PQntuples(res) != 1)
        return;
    if (u->leased)
        u->epoch = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    else {
        snprintf(u->holder_info, sizeof u->holder_info, "lease held by %.140s", PQgetvalue(res, 0, 0));
        snprintf(u->stale_holder, sizeof u->stale_holder, "%s", PQgetvalue(res, 0, 1));
    }
}

static void lease_submit(struct bf_underlying *u, bool take_over);

/* Its underlying's lease is decided: prepare the unit, or end it. */
static void unit_after_lease(struct bf_unit *un)
{
    struct bf_underlying *u = un->u;
    if (u->leased && !u->lost) {
        unit_prepare(un);
        return;
    }
    snprintf(un->reason, sizeof un->reason, "%s", u->lost ? "lease lost" : u->holder_info);
    unit_finish(un, u->skipped ? OUTCOME_SKIPPED : OUTCOME_FAILED);
}

/* The underlying's lease is decided: its units waiting for it go on. */
static void lease_decided(struct bf_underlying *u, const char *failure)
{
    struct backfill *bf = u->bf;
    u->lease_state = LEASE_DECIDED;
    if (failure == NULL && !u->leased) {
        char h[200];
        u->skipped = true;
        log_warn("underlying skipped: another process works it", "underlying=%s reason=%s", u->name,
                 log_quote(h, sizeof h, u->holder_info));
    }
    if (failure != NULL)
        snprintf(u->holder_info, sizeof u->holder_info, "%s", failure);
    for (size_t i = 0; i < bf->nunits; i++)
        if (bf->units[i].u == u && bf->units[i].state == UNIT_LEASING)
            unit_after_lease(&bf->units[i]);
}

static void on_lease_done(struct engine_query *q, const struct pg_txn_result *r)
{
    struct bf_underlying *u = q->user;
    if (r->status != PG_TXN_OK) {
        u->leased = false;
        lease_decided(u, r->status == PG_TXN_CANCELLED ? "interrupted" : "cannot take the lease (database error)");
        return;
    }
    if (!u->leased && u->lease_state == LEASE_ASKING && holder_is_dead_here(u->stale_holder)) {
        lease_submit(u, true);
        return;
    }
    if (u->leased && u->lease_state == LEASE_TAKING_OVER) {
        char h[240];
        log_warn("took over the lease of a process that died on this host", "underlying=%s stale_holder=%s",
                 u->name, log_quote(h, sizeof h, u->stale_holder));
    }
    lease_decided(u, NULL);
}

static void lease_submit(struct bf_underlying *u, bool take_over)
{
    struct backfill *bf = u->bf;
    u->lease_state = take_over ? LEASE_TAKING_OVER : LEASE_ASKING;
    u->lease_values[0] = u->name;
    u->lease_values[1] = bf->holder;
    u->lease_values[2] = bf->ttl_text;
    u->lease_values[3] = u->stale_holder;
    memset(&u->lease_q.txn, 0, sizeof u->lease_q.txn);
    if (take_over)
        u->lease_q.txn.stmts[0] = (struct pg_stmt){.name = "lease_take_over", .sql = sql_lease_take_over,
                                                   .nparams = 4, .values = u->lease_values, .on_tuples = on_lease_won};
    else
        u->lease_q.txn.stmts[0] = (struct pg_stmt){.name = "lease_acquire", .sql = sql_lease_acquire, .nparams = 3,
                                                   .values = u->lease_values, .on_tuples = on_lease_won};
    u->lease_q.txn.stmts[1] = (struct pg_stmt){.name = "lease_state", .sql = sql_lease_state, .nparams = 1,
                                               .values = u->lease_values, .on_tuples = on_lease_state};
    u->lease_q.txn.nstmts = 2;
    u->lease_q.done = on_lease_done;
    u->lease_q.user = u;
    if (engine_query_submit(bf->e, &u->lease_q) != 0)
        lease_decided(u, "cannot take the lease (shutting down)");
}

/* One statement for every lease held: renewed, or found lost. */
static const char *leased_name(const void *items, size_t i)
{
    const struct backfill *bf = items;
    return bf->us[i].leased ? bf->us[i].name : NULL;
}

static int leased_literal(struct backfill *bf) { return names_array_replace(&bf->leased_array, bf, bf->nus, leased_name); }

static void on_renewed(void *user, const void *pgresult)
{
    struct backfill *bf = user;
    const PGresult *res = pgresult;
    for (size_t i = 0; i < bf->nus; i++) {
        struct bf_underlying *u = &bf->us[i];
        if (!u->leased || u->lost)
            continue;
        bool kept = false;
        for (int k = 0; k < PQntuples(res) && !kept; k++)
            kept = strcmp(PQgetvalue(res, k, 0), u->name) == 0;
        if (!kept) {
            u->lost = true;
            log_error("lease lost: the underlying's units in progress stay uncovered", "underlying=%s", u->name);
        }
    }
}

static void on_renew_done(struct engine_query *q, const struct pg_txn_result *r)
{
    (void)q;
    if (r->status != PG_TXN_OK && r->status != PG_TXN_CANCELLED)
        log_warn("lease renewal failed: retried at the next tick", "sqlstate=%s", r->sqlstate);
}

static bool any_leased(const struct backfill *bf)
{
    for (size_t i = 0; i < bf->nus; i++)
        if (bf->us[i].leased)
            return true;
    return false;
}

static void renew_tick(uv_timer_t *t)
{
    struct backfill *bf = t->data;
    struct engine_query *q = &bf->renew_q;
    if (engine_closing(bf->e) || q->pending || !any_leased(bf) || leased_literal(bf) != 0)
        return;
    bf->lease_values[0] = bf->leased_array;
    bf->lease_values[1] = bf->holder;
    bf->lease_values[2] = bf->ttl_text;
    if (engine_query_one(bf->e, q, (struct pg_stmt){.name = "lease_renew", .sql = sql_lease_renew, .nparams = 3,
                                       .values = bf->lease_values, .on_tuples = on_renewed}, on_renew_done, bf) != 0)
        log_debug("lease renewal not queued", "%s", "");
}

/* ---- units ---- */

static void unit_fail(struct bf_unit *un, const char *why)
{
    if (!un->g.wg.failed && !un->reason[0])
        snprintf(un->reason, sizeof un->reason, "%.159s", why);
    engine_group_fail(un->bf->e, &un->g, why);
    un->next_work = un->ncontracts * (size_t)un->nseg; /* no new fetches */
}

static void unit_finish(struct bf_unit *un, enum unit_outcome outcome)
{
    struct backfill *bf = un->bf;
    if (un->state >= UNIT_LEASING && un->state <= UNIT_CLOSED)
        bf->units_active--;
    un->state = UNIT_FINISHED;
    un->outcome = outcome;
    free(un->contracts);
    tickers_free(&un->quiet);
    tickers_free(&un->closes);
    flat_free(un);
    un->contracts = NULL;
    un->ncontracts = un->contracts_cap = 0;
    bf->finished++;
    char a[40], b[40];
    switch (outcome) {
    case OUTCOME_DONE:
        bf->done++;
        log_info("unit filled", "underlying=%s from=%s to=%s rows=%ld seconds=%.2f", un->u->name,
                 timestamp_format_brief(a, sizeof a, un->from_us), timestamp_format_brief(b, sizeof b, un->to_us), un->g.wg.rows_written,
                 (double)(real_now() - un->started_real_us) / 1e6);
        break;
    case OUTCOME_COVERED: bf->covered++; break;
    case OUTCOME_SKIPPED: bf->skipped++; break;
    default: bf->failed++; break;
    }
    un->u->units_left--;
}

/* Local days of [from, to): the time-zone math stays in SQL. */
static const char sql_segments[] =
    "SELECT (g.t::date - date '1970-01-01'),"
    "       (extract(epoch FROM (g.t AT TIME ZONE 'America/New_York')) * 1000000)::int8,"
    "       (extract(epoch FROM ((g.t + interval '1 day') AT TIME ZONE 'America/New_York')) * 1000000)::int8"
    "  FROM generate_series((($1::timestamptz) AT TIME ZONE 'America/New_York')::date::timestamp,"
    "                       (($2::timestamptz - interval '1 microsecond') AT TIME ZONE 'America/New_York')::date::timestamp,"
    "                       interval '1 day') AS g(t) ORDER BY 1";
static const char sql_has_gap[] =
    "SELECT EXISTS (SELECT 1 FROM optsnap_gaps($3::text, $4::bigint * interval '1 microsecond', $1::timestamptz, "
    "$2::timestamptz, ARRAY[$5::text], now()))";
static const char sql_live_contracts[] =
    "SELECT ticker, contract_type, coalesce(exercise_style, ''), expiration_date - date '1970-01-01',"
    "       strike_price, coalesce(shares_per_contract, 0)"
    "  FROM options WHERE underlying = $1"
    "   AND expiration_date >= (($2::timestamptz) AT TIME ZONE 'America/New_York')::date";


static void tickers_free(struct ticker_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->v[i].ticker);
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

static int ticker_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ticker_value *)a)->ticker, ((const struct ticker_value *)b)->ticker);
}

/* The set from a result's column 0 (tickers) and, when value_col >= 0, that
 * column's numbers (a row whose number does not parse is left out). Out of
 * memory leaves it smaller or empty: the caller then asks more, never less. */
static void tickers_load(struct ticker_set *set, const PGresult *res, int value_col)
{
    tickers_free(set);
    int n = PQntuples(res);
    if (n <= 0 || (set->v = calloc((size_t)n, sizeof *set->v)) == NULL)
        return;
    for (int i = 0; i < n; i++) {
        double v = 0;
        if (value_col >= 0) {
            char *end;
            v = strtod(PQgetvalue(res, i, value_col), &end);
            if (*end != '\0' || !isfinite(v))
                continue;
        }
        if ((set->v[set->n].ticker = strdup(PQgetvalue(res, i, 0))) == NULL)
            continue;
        set->v[set->n++].value = v;
    }
    if (set->n > 1)
        qsort(set->v, set->n, sizeof *set->v, ticker_cmp);
}

static const struct ticker_value *tickers_find(const struct ticker_set *set, const char *ticker)
{
    struct ticker_value key = {.ticker = (char *)ticker};
    return set->n ? bsearch(&key, set->v, set->n, sizeof *set->v, ticker_cmp) : NULL;
}

static void on_known_closes(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    tickers_load(&un->closes, pgresult, 1); /* out of memory: each previous close is asked */
}

static void on_quiet(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    tickers_load(&un->quiet, pgresult, -1); /* out of memory: no pruning, every contract is asked */
}

static int unit_add_contract(struct bf_unit *un, const struct option_contract *c)
{
    if (c->expiration_days < un->seg[0].date)
        return 0; /* expired before the unit: it cannot have traded in it */
    if (un->ncontracts >= MAX_CONTRACTS ||
        array_reserve((void **)&un->contracts, &un->contracts_cap, un->ncontracts + 1, sizeof *un->contracts) != 0)
        return -1;
    struct option_contract *d = &un->contracts[un->ncontracts++];
    *d = *c;
    snprintf(d->underlying, sizeof d->underlying, "%s", un->u->name);
    return 0;
}

static void on_segments(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    const PGresult *res = pgresult;
    un->nseg = PQntuples(res) <= MAX_SEGMENTS ? PQntuples(res) : -1;
    for (int i = 0; i < un->nseg; i++) {
        struct bf_segment *sg = &un->seg[i];
        sg->date = (int32_t)atol(PQgetvalue(res, i, 0));
        sg->day_start_us = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        sg->day_end_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        sg->from_us = sg->day_start_us > un->from_us ? sg->day_start_us : un->from_us;
        sg->to_us = sg->day_end_us < un->to_us ? sg->day_end_us : un->to_us;
    }
}

static void on_has_gap(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    un->has_gap = PQntuples(pgresult) == 1 && strcmp(PQgetvalue(pgresult, 0, 0), "t") == 0;
}

static char contract_type_code(const char *t)
{
    return strcmp(t, "call") == 0 ? 'C' : strcmp(t, "put") == 0 ? 'P' : 'O';
}

static char exercise_style_code(const char *ex)
{
    return strcmp(ex, "american") == 0 ? 'A' : strcmp(ex, "european") == 0 ? 'E' : strcmp(ex, "bermudan") == 0 ? 'B' : '?';
}

static void on_live_contracts(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    const PGresult *res = pgresult;
    for (int i = 0; i < PQntuples(res) && un->nseg > 0; i++) {
        struct option_contract c;
        memset(&c, 0, sizeof c);
        const char *t = PQgetvalue(res, i, 0);
        if (strlen(t) >= sizeof c.ticker)
            continue;
        memcpy(c.ticker, t, strlen(t) + 1);
        c.contract_type = contract_type_code(PQgetvalue(res, i, 1));
        c.exercise_style = exercise_style_code(PQgetvalue(res, i, 2));
        c.expiration_days = (int32_t)atol(PQgetvalue(res, i, 3));
        c.strike_price = strtod(PQgetvalue(res, i, 4), NULL);
        c.shares_per_contract = (int32_t)atol(PQgetvalue(res, i, 5));
        if (unit_add_contract(un, &c) != 0) {
            un->nseg = -1;
            return;
        }
    }
}

static void on_prepared(struct engine_query *q, const struct pg_txn_result *r)
{
    struct bf_unit *un = q->user;
    if (r->status != PG_TXN_OK || un->nseg < 1) {
        snprintf(un->reason, sizeof un->reason, "%s",
                 r->status == PG_TXN_CANCELLED ? "interrupted" : "database error while preparing the unit");
        unit_finish(un, OUTCOME_FAILED);
        return;
    }
    if (!un->has_gap && !un->flat_always) {
        unit_finish(un, OUTCOME_COVERED);
        return;
    }
    if (un->flat) {
        flat_begin(un); /* its partitions once the file has been read */
        return;
    }
    /* rows carry last_updated in (from, to]: their UTC days */
    un->part_day = (int32_t)(un->from_us / USEC_PER_DAY);
    un->part_last_day = (int32_t)(un->to_us / USEC_PER_DAY);
    ensure_next_partition(un);
}

/* Before a unit writes, the partition of each UTC day it writes exists, so
 * no row lands in the DEFAULT partition (moving rows out of it later takes an
 * ACCESS EXCLUSIVE lock for as long as the move). One day per transaction,
 * each waiting at most a short lock_timeout: a busy day fails the unit (it
 * stays uncovered; a re-run fills it) rather than queueing behind a lock. */
static const char sql_ensure_day[] = "SELECT optsnap_ensure_day_partition($1::date, interval '200 milliseconds')";

/* Units whose day partition was busy try again when due. */
static void part_tick(uv_timer_t *t)
{
    struct backfill *bf = t->data;
    int64_t now = real_now();
    for (size_t i = 0; i < bf->nunits; i++) {
        struct bf_unit *un = &bf->units[i];
        if (!un->part_waiting || (now < un->part_due_us && engine_running(bf->e)))
            continue;
        un->part_waiting = false;
        if (!engine_running(bf->e)) {
            snprintf(un->reason, sizeof un->reason, "interrupted");
            unit_finish(un, OUTCOME_FAILED);
            continue;
        }
        ensure_next_partition(un);
    }
    flat_resume_paused(bf);
    schedule(bf);
}

static void on_day_partition(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    un->part_created = PQntuples(pgresult) == 1 ? atoi(PQgetvalue(pgresult, 0, 0)) : -2;
}

static void on_day_partition_done(struct engine_query *q, const struct pg_txn_result *r)
{
    struct bf_unit *un = q->user;
    char day[16];
    date_format(day, sizeof day, un->part_day);
    if (r->status == PG_TXN_OK && un->part_created == -1 && ++un->part_attempts < PART_MAX_ATTEMPTS &&
        engine_running(un->bf->e)) {
        /* writers hold the parent: try again after them, backing off */
        int shift = un->part_attempts < 5 ? un->part_attempts : 5;
        un->part_waiting = true;
        un->part_due_us = real_now() + (PART_RETRY_US << shift) + (int64_t)(rand() % 100000);
        log_debug("day partition busy: trying again", "underlying=%s day=%s attempt=%d", un->u->name, day,
                  un->part_attempts);
        return;
    }
    if (r->status != PG_TXN_OK || un->part_created < 0) {
        if (r->status == PG_TXN_OK)
            log_warn("day partition busy: the unit stays uncovered (a re-run fills it)", "underlying=%s day=%s "
                     "attempts=%d", un->u->name, day, un->part_attempts);
        else if (r->status != PG_TXN_CANCELLED)
            log_error("cannot ensure the day partition", "underlying=%s day=%s sqlstate=%s", un->u->name, day,
                      r->sqlstate);
        snprintf(un->reason, sizeof un->reason, "%s",
                 r->status == PG_TXN_CANCELLED ? "interrupted"
                 : r->status == PG_TXN_OK      ? "day partition busy (lock_timeout)"
                                               : "database error while creating the day partition");
        unit_finish(un, OUTCOME_FAILED);
        return;
    }
    if (un->part_created > 0)
        log_info("day partition created", "underlying=%s day=%s", un->u->name, day);
    un->part_day++;
    un->part_attempts = 0;
    ensure_next_partition(un);
}

static void ensure_next_partition(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    if (un->part_day > un->part_last_day) {
        unit_open_group(un);
        return;
    }
    date_format(un->part_param, sizeof un->part_param, un->part_day);
    un->part_values[0] = un->part_param;
    un->part_created = -2;
    if (engine_query_one(bf->e, &un->part_q, (struct pg_stmt){.name = "ensure_day_partition", .sql = sql_ensure_day, .nparams = 1,
                                               .values = un->part_values, .on_tuples = on_day_partition}, on_day_partition_done, un) != 0) {
        snprintf(un->reason, sizeof un->reason, "interrupted");
        unit_finish(un, OUTCOME_FAILED);
    }
}

static void unit_open_group(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    snprintf(un->g.wg.underlying, sizeof un->g.wg.underlying, "%s", un->u->name);
    un->g.wg.source = ROW_SOURCE_BACKFILL;
    un->g.wg.owner = un;
    un->g.wg.cov = (struct coverage_mark){.window_start_us = un->from_us, .window_end_us = un->to_us,
                                          .calendar = bf->s->calendar, .cadence_us = bf->s->cadence_us,
                                          .lease_holder = bf->holder, .lease_epoch = un->u->epoch};
    engine_group_open(bf->e, &un->g);
    if (un->flat) {
        flat_rows_start(un);
        return;
    }
    un->state = UNIT_LISTING;
    un->list_step = 0;
    list_next(un);
}

/* Gap check, local days and the contracts seen live, in one round trip. */
static void unit_prepare(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    un->state = UNIT_PREPARING;
    timestamp_format(un->prep_params[0], sizeof un->prep_params[0], un->from_us);
    timestamp_format(un->prep_params[1], sizeof un->prep_params[1], un->to_us);
    snprintf(un->prep_params[2], sizeof un->prep_params[2], "%s", bf->s->calendar);
    snprintf(un->prep_params[3], sizeof un->prep_params[3], "%lld", (long long)bf->s->cadence_us);
    snprintf(un->prep_params[4], sizeof un->prep_params[4], "%s", un->u->name);
    for (int i = 0; i < 5; i++)
        un->prep_values[i] = un->prep_params[i];
    un->prep_values[5] = un->prep_params[0]; /* live contracts: $1 underlying, $2 from (quiet: $3 to) */
    /* trades from one bar before the unit: a bar ending at its start is its first row */
    timestamp_format(un->prep_params[6], sizeof un->prep_params[6], un->from_us - bf->resolution_us);
    un->quiet_values[0] = un->prep_params[4];
    un->quiet_values[1] = un->prep_params[6];
    un->quiet_values[2] = un->prep_params[1];
    struct pg_txn *t = &un->prep.txn;
    memset(t, 0, sizeof *t);
    t->stmts[t->nstmts++] = (struct pg_stmt){.name = "unit_has_gap", .sql = sql_has_gap, .nparams = 5,
                                             .values = un->prep_values, .on_tuples = on_has_gap};
    t->stmts[t->nstmts++] = (struct pg_stmt){.name = "unit_days", .sql = sql_segments, .nparams = 2,
                                             .values = un->prep_values, .on_tuples = on_segments};
    if (un->prune)
        /* sql-lint: ok BACKFILL_SQL_QUIET_CONTRACTS is a macro of string literals (backfill.h) */
        t->stmts[t->nstmts++] = (struct pg_stmt){.name = "quiet_contracts", .sql = BACKFILL_SQL_QUIET_CONTRACTS,
                                                 .nparams = 3, .values = un->quiet_values, .on_tuples = on_quiet};
    t->stmts[t->nstmts++] = (struct pg_stmt){.name = "live_contracts", .sql = sql_live_contracts, .nparams = 2,
                                             .values = un->prep_values + 4, .on_tuples = on_live_contracts};
    /* sql-lint: ok BACKFILL_SQL_KNOWN_CLOSES is a macro of string literals (backfill.h) */
    t->stmts[t->nstmts++] = (struct pg_stmt){.name = "known_closes", .sql = BACKFILL_SQL_KNOWN_CLOSES,
                                             .nparams = 2, .values = un->prep_values + 4,
                                             .on_tuples = on_known_closes};
    un->prep.done = on_prepared;
    un->prep.user = un;
    if (engine_query_submit(bf->e, &un->prep) != 0) {
        snprintf(un->reason, sizeof un->reason, "interrupted");
        unit_finish(un, OUTCOME_FAILED);
    }
}

static void unit_start(struct bf_unit *un)
{
    struct bf_underlying *u = un->u;
    un->started_real_us = real_now();
    un->state = UNIT_LEASING;
    un->bf->units_active++;
    if (u->lease_state == LEASE_NONE)
        lease_submit(u, false); /* the underlying's first unit asks for its lease */
    else if (u->lease_state == LEASE_DECIDED)
        unit_after_lease(un);
}

/* ---- the contracts listing: one pager per (local day, expired or not) ---- */

static void fetch_free(struct bf_fetch *f)
{
    free(f->bars);
    pager_release(&f->pager);
    free(f);
}

/* A contracts page's reference data (primary exchange, CFI, deliverables)
 * onto `options`, as a statement of its own through the pool. */
struct reference_write {
    struct engine_query q;
    struct writer_job job;
};

static void on_reference_written(struct engine_query *q, const struct pg_txn_result *r)
{
    struct reference_write *w = (struct reference_write *)q;
    if (r->status == PG_TXN_SQL_ERROR || r->status == PG_TXN_CONN_LOST)
        log_warn("contract reference data not written (the next listing writes it)", "sqlstate=%s", r->sqlstate);
    writer_job_free(&w->job);
    free(w);
}

static void contracts_reference_write(struct backfill *bf, const struct contracts_page *page)
{
    struct reference_write *w = calloc(1, sizeof *w);
    if (w == NULL || writer_contracts_job_build(&w->job, page) != 0 || w->job.txn.nstmts == 0) {
        if (w)
            writer_job_free(&w->job);
        free(w);
        return;
    }
    memcpy(w->q.txn.stmts, w->job.txn.stmts, sizeof w->q.txn.stmts);
    w->q.txn.nstmts = w->job.txn.nstmts;
    w->q.done = on_reference_written;
    w->q.user = w;
    if (engine_query_submit(bf->e, &w->q) != 0) {
        writer_job_free(&w->job);
        free(w);
    }
}

static enum page_verdict on_contracts_page(struct pager *p, const struct http_response *resp, const char **next_url,
                                           char *why, size_t why_size)
{
    struct bf_fetch *f = p->user;
    struct bf_unit *un = f->unit;
    struct backfill *bf = un->bf;
    contracts_page_reset(&bf->cpage);
    int rc = contracts_page_parse(&bf->cpage, resp->body, resp->body_len, why, why_size);
    if (rc != PARSE_OK)
        return pager_verdict_of_parse(rc);
    contracts_reference_write(bf, &bf->cpage);
    for (size_t i = 0; i < bf->cpage.ncontracts; i++) {
        if (!option_contract_matches_underlying(&bf->cpage.contracts[i], un->u->name))
            continue; /* SPXW is SPX's, I:SPX's */
        if (unit_add_contract(un, &bf->cpage.contracts[i]) != 0) {
            snprintf(why, why_size, "too many contracts or out of memory");
            return PAGE_FAILED;
        }
    }
    *next_url = bf->cpage.next_url;
    return PAGE_OK;
}

static int bar_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct agg_bar *)a)->start_ms, y = ((const struct agg_bar *)b)->start_ms;
    return x < y ? -1 : x > y;
}

static int contract_cmp(const void *a, const void *b)
{
    return strcmp(((const struct option_contract *)a)->ticker, ((const struct option_contract *)b)->ticker);
}

static void on_listed(struct pager *p, bool complete, const char *why)
{
    struct bf_fetch *f = p->user;
    struct bf_unit *un = f->unit;
    fetch_free(f);
    if (engine_closing(un->bf->e))
        return;
    if (!complete)
        unit_fail(un, why);
    un->list_step++;
    list_next(un);
}

static struct bf_fetch *fetch_new(struct bf_unit *un, enum fetch_kind kind, pager_page_cb on_page,
                                  pager_end_cb on_end, long reserve)
{
    struct bf_fetch *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->unit = un;
    f->kind = kind;
    snprintf(f->label, sizeof f->label, "%s", un->u->name);
    f->pager = (struct pager){.on_page = on_page, .on_end = on_end, .user = f, .reserve_rows = reserve,
                              .what = kind == FETCH_LIST ? "contracts" : "aggregates", .label = f->label};
    return f;
}

/* Issues the listing request of list_step, or moves on to fetching bars once all are done. */
static void list_next(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    if (un->g.wg.failed || un->list_step >= un->nseg * 2) {
        if (!un->g.wg.failed) {
            if (un->ncontracts > 1)
                qsort(un->contracts, un->ncontracts, sizeof *un->contracts, contract_cmp);
            size_t m = 0;
            for (size_t i = 0; i < un->ncontracts; i++)
                if (m == 0 || strcmp(un->contracts[m - 1].ticker, un->contracts[i].ticker) != 0)
                    un->contracts[m++] = un->contracts[i];
            un->ncontracts = m;
            if (un->quiet.n > 0 && un->nseg == 1) { /* the rule holds within one local day */
                m = 0;
                for (size_t i = 0; i < un->ncontracts; i++) {
                    if (tickers_find(&un->quiet, un->contracts[i].ticker) == NULL)
                        un->contracts[m++] = un->contracts[i];
                }
                bf->contracts_skipped += (long)(un->ncontracts - m);
                un->ncontracts = m;
            }
            bf->contracts_asked += (long)un->ncontracts;
            tickers_free(&un->quiet);
            log_debug("unit listed", "underlying=%s contracts=%zu", un->u->name, m);
        }
        un->state = UNIT_FETCHING;
        un->next_work = un->g.wg.failed ? un->ncontracts * (size_t)un->nseg : 0;
        pump_unit(un); /* a unit with nothing to fetch is closed there */
        return;
    }
    char url[1024], day[16];
    snprintf(url, sizeof url, "%s/v3/reference/options/contracts?underlying_ticker=%s&as_of=%s%s&limit=%d",
             engine_origin(bf->e)->base, un->u->name, date_format(day, sizeof day, un->seg[un->list_step / 2].date),
             un->list_step % 2 ? "&expired=true" : "", REF_LIMIT);
    struct bf_fetch *f = fetch_new(un, FETCH_LIST, on_contracts_page, on_listed, 0);
    if (f == NULL || pager_start(bf->e, &f->pager, url) != 0) {
        if (f)
            fetch_free(f);
        unit_fail(un, engine_running(bf->e) ? "cannot start a request" : "interrupted");
        un->list_step = un->nseg * 2;
        list_next(un);
    }
}

/* ---- bars: each contract's minute bars of each local day, then its previous close ---- */

static void bars_url(struct backfill *bf, const struct bf_unit *un, size_t ci, int si, bool prev, char *url,
                     size_t size)
{
    char d1[16], d2[16];
    const struct bf_segment *sg = &un->seg[si];
    const char *base = engine_origin(bf->e)->base;
    if (!prev) {
        date_format(d1, sizeof d1, sg->date);
        snprintf(url, size, "%s/v2/aggs/ticker/%s/range/%d/minute/%s/%s?sort=asc&limit=%d", base,
                 un->contracts[ci].ticker, (int)(bf->resolution_us / USEC_PER_MIN), d1, d1, AGGS_LIMIT);
        return;
    }
    /* the simulator, like the market, looks back 30 sessions for the previous
     * close: 30 days on an always-open calendar, 6 weeks of weekdays otherwise */
    int back = strcmp(bf->s->calendar, "always") == 0 ? 30 : 42;
    date_format(d1, sizeof d1, sg->date - back);
    date_format(d2, sizeof d2, sg->date - 1);
    snprintf(url, size, "%s/v2/aggs/ticker/%s/range/1/day/%s/%s?sort=desc&limit=1", base, un->contracts[ci].ticker,
             d1, d2);
}

static struct dayblock_window unit_window(const struct bf_unit *un, int si)
{
    const struct bf_segment *sg = &un->seg[si];
    return (struct dayblock_window){.day_start_us = sg->day_start_us, .day_end_us = sg->day_end_us,
                                    .from_us = sg->from_us, .to_us = sg->to_us,
                                    .to_inclusive = sg->to_us == un->to_us && un->to_is_close,
                                    .resolution_us = un->bf->resolution_us, .not_after_us = un->bf->clip_us,
                                    .no_vwap = un->flat};
}

static enum page_verdict on_aggs_page(struct pager *p, const struct http_response *resp, const char **next_url,
                                      char *why, size_t why_size)
{
    struct bf_fetch *f = p->user;
    struct backfill *bf = f->unit->bf;
    aggs_page_reset(&bf->apage);
    int rc = aggs_page_parse(&bf->apage, resp->body, resp->body_len, why, why_size);
    if (rc != PARSE_OK)
        return pager_verdict_of_parse(rc);
    if (f->kind == FETCH_PREV) { /* sort=desc&limit=1: the one bar is the previous session's */
        f->prev_close = bf->apage.nbars > 0 ? bf->apage.bars[0].close : NAN;
        *next_url = NULL;
        return PAGE_OK;
    }
    if (f->nbars + bf->apage.nbars > MAX_BARS) {
        snprintf(why, why_size, "too many bars for one contract and day");
        return PAGE_FAILED;
    }
    if (array_reserve((void **)&f->bars, &f->bars_cap, f->nbars + bf->apage.nbars, sizeof *f->bars) != 0) {
        snprintf(why, why_size, "out of memory");
        return PAGE_FAILED;
    }
    if (bf->apage.nbars > 0)
        memcpy(f->bars + f->nbars, bf->apage.bars, bf->apage.nbars * sizeof *f->bars);
    f->nbars += bf->apage.nbars;
    *next_url = bf->apage.next_url;
    return PAGE_OK;
}

static int emit_row(void *user, const struct snapshot_row *row)
{
    struct bf_unit *un = user;
    if (engine_group_add_row(un->bf->e, &un->g, row) != 0)
        return -1;
    un->bf->rows_built++;
    return 0;
}

static bool fetch_has_rows(const struct bf_unit *un, const struct bf_fetch *f)
{
    struct dayblock_window w = unit_window(un, f->si);
    for (size_t i = 0; i < f->nbars; i++)
        if (dayblock_bar_inside(&w, &f->bars[i]))
            return true;
    return false;
}

/* A bars fetch ended: with bars inside the unit, fetch the previous close
 * next; with the previous close, build the rows. */
static void on_bars_end(struct pager *p, bool complete, const char *why)
{
    struct bf_fetch *f = p->user;
    struct bf_unit *un = f->unit;
    struct backfill *bf = un->bf;
    if (engine_closing(bf->e) || un->state == UNIT_FINISHED || un->contracts == NULL) {
        /* closing, or the unit already ended (it failed while this fetch
         * was in flight and freed its contracts): nothing more to do here */
        un->fetches--;
        fetch_free(f);
        return;
    }
    if (complete && !un->g.wg.failed && f->kind == FETCH_BARS && fetch_has_rows(un, f)) {
        f->kind = FETCH_PREV;
        const struct ticker_value *kc = un->nseg == 1 ? tickers_find(&un->closes, un->contracts[f->ci].ticker) : NULL;
        if (kc != NULL) {
            f->prev_close = kc->value;
            bf->closes_known++; /* the day's live rows carry it: no request */
        } else {
            char url[1024];
            bars_url(bf, un, f->ci, f->si, true, url, sizeof url);
            if (pager_start(bf->e, &f->pager, url) == 0)
                return;
            why = engine_running(bf->e) ? "cannot start a request" : "interrupted";
            complete = false;
        }
    }
    if (!complete) {
        unit_fail(un, why);
    } else if (f->kind == FETCH_PREV && !un->g.wg.failed) {
        struct dayblock_window w = unit_window(un, f->si);
        int rc = dayblock_build(&un->contracts[f->ci], f->bars, f->nbars, f->prev_close, &w, emit_row, un);
        if (rc != 0)
            unit_fail(un, rc == -1 ? "bars out of order" : "out of memory");
    }
    un->fetches--;
    fetch_free(f);
    pump_unit(un);
}

/* Starts bar fetches while the unit's budget and the write queue have room;
 * closes the unit's group once every fetch has ended. */
static void pump_unit(struct bf_unit *un)
{
    struct backfill *bf = un->bf;
    if (un->state != UNIT_FETCHING)
        return;
    size_t total = un->ncontracts * (size_t)un->nseg;
    while (!un->g.wg.failed && un->next_work < total && un->fetches < bf->s->backfill_http_concurrency &&
           un->g.wg.outstanding < UNIT_MAX_SEALED && engine_running(bf->e)) {
        struct bf_fetch *f = fetch_new(un, FETCH_BARS, on_aggs_page, on_bars_end, BARS_RESERVE_ROWS);
        if (f == NULL) {
            unit_fail(un, "out of memory");
            break;
        }
        f->ci = un->next_work / (size_t)un->nseg;
        f->si = (int)(un->next_work % (size_t)un->nseg);
        f->prev_close = NAN;
        snprintf(f->label, sizeof f->label, "%s", un->contracts[f->ci].ticker);
        un->next_work++;
        char url[1024];
        bars_url(bf, un, f->ci, f->si, false, url, sizeof url);
        /* counted before it starts: pager_start runs the engine's event step,
         * which pumps this unit again (on_pump); seeing no fetch there, it
         * would close the group while this one is queued, and the rows it
         * brings would go to a closed group, never written, the window marked */
        un->fetches++;
        if (pager_start(bf->e, &f->pager, url) != 0) {
            un->fetches--;
            fetch_free(f);
            unit_fail(un, "cannot start a request");
            break;
        }
    }
    if (!engine_running(bf->e) && un->next_work < total && !un->g.wg.failed)
        unit_fail(un, "interrupted");
    if (un->fetches == 0 && (un->next_work >= total || un->g.wg.failed)) {
        un->state = UNIT_CLOSED;
        if (un->u->lost)
            unit_fail(un, "lease lost"); /* no mark without the lease */
        un->g.wg.cov.rows = un->g.wg.rows_written;
        engine_group_close(bf->e, &un->g); /* the unit finishes in on_group_settled */
    }
}

/* ---- flat files: per unit, the previous session's file gives previous
 * closes, then the day's file streams: each contract's bars, once its
 * lines end (the file is sorted by ticker), become its rows at once, so
 * memory is one contract's bars, not the day's; the transfer pauses while
 * the unit's batches or previous-close requests are at their budget ---- */

#define FLAT_MAX_REJECTS 10000 /* bad lines per unit; more fail it (nothing lost silently) */
#define FLAT_PREV_DAYS 7       /* days back looked at for the previous session's file */

struct bf_flat_c {        /* per contract of the unit, parallel to its contracts */
    int64_t prev_start_ms; /* its last bar in the previous session's file; 0 = none */
    double prev_close;
    bool flushed;          /* its lines in the day's file have ended */
};

struct bf_flat {
    struct flatfile_fetch fetch;
    bool fetching, streaming;
    struct engine_query q; /* the stored ETag, then the new one */
    char params[5][112];
    const char *values[5];
    char old_etag[100], etag[100];
    struct bf_flat_c *c;
    size_t c_cap, nsorted, last;
    long cur;              /* the contract whose lines are being read, -1 none */
    struct agg_bar *bars;  /* its bars */
    size_t nbars, bars_cap;
    long rejects;
    int prev_back;
};

static void flat_free(struct bf_unit *un)
{
    struct bf_flat *ff = un->ff;
    if (ff == NULL || ff->fetching || ff->q.pending)
        return; /* its callback frees it */
    free(ff->c);
    free(ff->bars);
    flatfile_fetch_free(&ff->fetch);
    free(ff);
    un->ff = NULL;
}

/* A file transfer of the unit ended: not running any more. True when the
 * engine is closing (it fails and forgets the groups: leave the unit). The
 * fetch's counters and etag stay readable; flatfile_fetch_free frees only
 * the transfer. */
/* A fetch of the unit's ended: freed; true when the engine is closing (the
 * callback then does nothing more). day (may be NULL) gets the unit's day. */
static bool flat_fetch_ended(struct bf_unit *un, struct flatfile_fetch *f, char *day, size_t day_size)
{
    un->ff->fetching = un->ff->streaming = false;
    flatfile_fetch_free(f);
    if (day != NULL)
        date_format(day, day_size, un->seg[0].date);
    return engine_closing(un->bf->e);
}

static void flat_fail_finish(struct bf_unit *un, const char *why)
{
    snprintf(un->reason, sizeof un->reason, "%s", why);
    unit_finish(un, OUTCOME_FAILED);
}

/* Room for need contracts' state; the new entries empty. */
static int flat_reserve(struct bf_flat *ff, size_t need)
{
    size_t old = ff->c_cap;
    if (array_reserve((void **)&ff->c, &ff->c_cap, need, sizeof *ff->c) != 0)
        return -1;
    memset(ff->c + old, 0, (ff->c_cap - old) * sizeof *ff->c);
    return 0;
}

static int flat_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct option_contract *)elem)->ticker);
}

/* The contract of ticker in the unit, added when it is one of the
 * underlying's (by its OCC root) and not expired; -1 when not ours, -2 when
 * out of room. */
static long flat_contract(struct bf_unit *un, const char *ticker)
{
    struct bf_flat *ff = un->ff;
    if (ff->last < un->ncontracts && strcmp(un->contracts[ff->last].ticker, ticker) == 0)
        return (long)ff->last;
    const struct option_contract *hit =
        ff->nsorted ? bsearch(ticker, un->contracts, ff->nsorted, sizeof *un->contracts, flat_cmp) : NULL;
    for (size_t i = ff->nsorted; hit == NULL && i < un->ncontracts; i++)
        if (strcmp(un->contracts[i].ticker, ticker) == 0)
            hit = &un->contracts[i];
    if (hit != NULL)
        return (long)(ff->last = (size_t)(hit - un->contracts));
    struct occ_symbol sym;
    if (strlen(ticker) >= OPTSNAP_TICKER_MAX || occ_parse(ticker, &sym) != 0 ||
        !option_root_of_underlying(un->u->name, sym.root))
        return -1;
    struct option_contract c;
    memset(&c, 0, sizeof c);
    snprintf(c.ticker, sizeof c.ticker, "%s", ticker);
    c.contract_type = sym.contract_type;
    c.exercise_style = '?'; /* the file does not say; the listing or a live row does */
    c.expiration_days = sym.expiration_days;
    c.strike_price = (double)sym.strike_milli / 1000.0;
    size_t before = un->ncontracts;
    if (unit_add_contract(un, &c) != 0)
        return -2;
    if (un->ncontracts == before)
        return -1; /* expired before the day */
    if (flat_reserve(ff, un->ncontracts) != 0)
        return -2;
    return (long)(ff->last = un->ncontracts - 1);
}

/* Lines of another underlying's contracts are skipped unparsed; whatever
 * is not plainly another's (a quoted or broken ticker) is read. */
static bool flat_want(void *user, const char *first, size_t len)
{
    struct bf_unit *un = user;
    char t[OPTSNAP_TICKER_MAX];
    struct occ_symbol sym;
    if (len >= sizeof t)
        return true;
    memcpy(t, first, len);
    t[len] = '\0';
    return occ_parse(t, &sym) != 0 || option_root_of_underlying(un->u->name, sym.root);
}

static int flat_stop(struct bf_unit *un, const char *why)
{
    snprintf(un->ff->fetch.why, sizeof un->ff->fetch.why, "%s", why);
    un->ff->fetch.stopped = true;
    return -1;
}

/* The current contract's lines have ended: its rows now when its previous
 * close is known, else its previous close is asked first (as REST backfill). */
static int flat_flush(struct bf_unit *un)
{
    struct bf_flat *ff = un->ff;
    long ci = ff->cur;
    if (ci < 0)
        return 0;
    ff->cur = -1;
    ff->c[ci].flushed = true;
    struct dayblock_window w = unit_window(un, 0);
    if (ff->nbars > 1)
        qsort(ff->bars, ff->nbars, sizeof *ff->bars, bar_cmp);
    bool inside = false;
    for (size_t i = 0; i < ff->nbars && !inside; i++)
        inside = dayblock_bar_inside(&w, &ff->bars[i]);
    size_t n = ff->nbars;
    ff->nbars = 0;
    if (!inside)
        return 0;
    un->bf->contracts_asked++;
    if (ff->c[ci].prev_start_ms != 0) {
        int rc = dayblock_build(&un->contracts[ci], ff->bars, n, ff->c[ci].prev_close, &w, emit_row, un);
        return rc == 0 ? 0 : flat_stop(un, rc == -1 ? "flat file: bars out of order" : "out of memory");
    }
    struct bf_fetch *f = fetch_new(un, FETCH_PREV, on_aggs_page, on_bars_end, BARS_RESERVE_ROWS);
    if (f == NULL)
        return flat_stop(un, "out of memory");
    f->ci = (size_t)ci;
    f->prev_close = NAN;
    f->bars = ff->bars; /* moved: the next contract gets a new buffer */
    f->nbars = n;
    f->bars_cap = ff->bars_cap;
    ff->bars = NULL;
    ff->bars_cap = 0;
    snprintf(f->label, sizeof f->label, "%s", un->contracts[ci].ticker);
    char url[1024];
    bars_url(un->bf, un, (size_t)ci, 0, true, url, sizeof url);
    if (pager_start(un->bf->e, &f->pager, url) != 0) {
        fetch_free(f);
        return flat_stop(un, "cannot start a request");
    }
    un->fetches++;
    return 0;
}

static int flat_on_bar(void *user, const char *ticker, const struct agg_bar *bar)
{
    struct bf_unit *un = user;
    struct bf_flat *ff = un->ff;
    if (un->g.wg.failed) /* a previous-close request failed: the unit cannot be whole */
        return flat_stop(un, un->reason[0] ? un->reason : "the unit failed");
    long ci = flat_contract(un, ticker);
    if (ci == -1)
        return 0;
    if (ci == -2)
        return flat_stop(un, "flat file: too many contracts, or out of memory");
    if (ci != ff->cur) {
        if (flat_flush(un) != 0)
            return -1;
        if (ff->c[ci].flushed)
            return flat_stop(un, "flat file not sorted by ticker (a contract's lines are not together)");
        ff->cur = ci;
    }
    if (ff->nbars >= MAX_BARS || array_reserve((void **)&ff->bars, &ff->bars_cap, ff->nbars + 1, sizeof *ff->bars) != 0)
        return flat_stop(un, "flat file: too many bars for one contract, or out of memory");
    ff->bars[ff->nbars++] = *bar;
    return 0;
}

/* A bad line is the unit's when its first field names one of the
 * underlying's contracts; one naming none is kept by the run's first
 * underlying's units. Stored as a reject with its line number and text. */
static int flat_on_reject(void *user, long line_no, const char *reason, const char *text, size_t len)
{
    struct bf_unit *un = user;
    char first[OPTSNAP_TICKER_MAX];
    size_t n = strcspn(text, ",");
    snprintf(first, sizeof first, "%.*s", (int)(n < sizeof first - 1 ? n : sizeof first - 1), text);
    struct occ_symbol sym;
    bool parsed = occ_parse(first, &sym) == 0;
    if (parsed ? !option_root_of_underlying(un->u->name, sym.root) : un->u != &un->bf->us[0])
        return 0;
    if (++un->ff->rejects > FLAT_MAX_REJECTS)
        return flat_stop(un, "flat file: too many bad lines");
    struct row_reject rj;
    memset(&rj, 0, sizeof rj);
    snprintf(rj.ticker, sizeof rj.ticker, "%s", parsed ? first : "");
    snprintf(rj.reason, sizeof rj.reason, "%s (line %ld)", reason, line_no);
    rj.kind = REJECT_ROW;
    if ((rj.raw = malloc(len + 1)) == NULL)
        return flat_stop(un, "out of memory");
    memcpy(rj.raw, text, len);
    rj.raw[len] = '\0';
    rj.raw_len = len;
    un->bf->flat_rejects++;
    return engine_group_add_reject(un->bf->e, &un->g, &rj) == 0 ? 0 : flat_stop(un, "out of memory");
}

/* Backpressure: the day's file is read while the unit's batches and requests have room. */
static bool flat_can_take(void *user)
{
    struct bf_unit *un = user;
    struct backfill *bf = un->bf;
    return un->g.wg.outstanding < UNIT_MAX_SEALED && un->fetches < bf->s->backfill_http_concurrency &&
           engine_rows_pending(bf->e) < bf->s->queue_max_rows;
}

/* Paused day files go on when their unit has room again (from a timer: curl may
 * hand the held chunk over inside the resume). */
static void flat_resume_paused(struct backfill *bf)
{
    for (size_t i = 0; i < bf->nunits; i++) {
        struct bf_unit *un = &bf->units[i];
        if (un->ff && un->ff->streaming && un->ff->fetch.paused && flat_can_take(un))
            flatfile_fetch_resume(&un->ff->fetch);
    }
}

/* The day's file has been read (or failed): the last contract's rows, then
 * the unit closes once its previous-close requests have ended. */
static void flat_on_day_end(struct flatfile_fetch *f, enum flatfile_outcome o, const char *why)
{
    struct bf_unit *un = f->user;
    struct bf_flat *ff = un->ff;
    char day[16], e1[120];
    if (flat_fetch_ended(un, f, day, sizeof day))
        return;
    if (o == FLATFILE_APPLIED && flat_flush(un) != 0) {
        o = FLATFILE_FAILED;
        why = f->why;
    }
    if (o == FLATFILE_APPLIED) {
        snprintf(ff->etag, sizeof ff->etag, "%s", f->etag);
        log_info("flat file read", "underlying=%s day=%s etag=%s bytes=%llu inflated=%llu lines=%ld skipped=%ld "
                 "bars=%ld rejects=%ld pauses=%ld", un->u->name, day, log_quote(e1, sizeof e1, f->etag),
                 (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out, f->csv.line_no, f->csv.skipped,
                 f->csv.bars, f->csv.rejects, f->pauses);
    } else {
        log_error("flat file not applied: the unit stays uncovered", "underlying=%s day=%s reason=%s", un->u->name,
                  day, log_quote(e1, sizeof e1, why));
        unit_fail(un, why);
    }
    un->state = UNIT_FETCHING;
    un->next_work = un->ncontracts * (size_t)un->nseg; /* nothing more to start */
    pump_unit(un); /* closes the group once the requests in flight have ended */
}

/* The unit's group is open: the day's file streams into it. */
static void flat_rows_start(struct bf_unit *un)
{
    struct bf_flat *ff = un->ff;
    ff->cur = -1;
    ff->fetch.on_end = flat_on_day_end;
    ff->fetch.user = un;
    if (flatfile_fetch_start(&ff->fetch, engine_http(un->bf->e), un->bf->s, un->seg[0].date, "", flat_want,
                             flat_on_bar, flat_on_reject, un) != 0) {
        unit_fail(un, "cannot start the flat-file fetch");
        un->state = UNIT_FETCHING;
        un->next_work = un->ncontracts * (size_t)un->nseg;
        pump_unit(un);
        return;
    }
    ff->fetch.can_take = flat_can_take;
    ff->fetching = ff->streaming = true;
}

/* Previous closes and the partitions are ready: the group, then the day's file. */
static void flat_prepared(struct bf_unit *un)
{
    un->part_day = (int32_t)(un->from_us / USEC_PER_DAY);
    un->part_last_day = (int32_t)(un->to_us / USEC_PER_DAY);
    ensure_next_partition(un); /* then unit_open_group -> flat_rows_start */
}

/* A bar of the previous session's file: the contract's last bar's close is
 * its previous close (the daily bar's close, as the aggregates endpoint gives). */
static int flat_prev_bar(void *user, const char *ticker, const struct agg_bar *bar)
{
    struct bf_unit *un = user;
    long ci = flat_contract(un, ticker);
    if (ci == -2)
        return flat_stop(un, "out of memory");
    if (ci >= 0 && bar->start_ms > un->ff->c[ci].prev_start_ms) {
        un->ff->c[ci].prev_start_ms = bar->start_ms;
        un->ff->c[ci].prev_close = bar->close;
    }
    return 0;
}

static int flat_prev_reject(void *user, long line_no, const char *reason, const char *text, size_t len)
{
    (void)user, (void)line_no, (void)reason, (void)text, (void)len;
    return 0; /* that day's own backfill keeps its bad lines; here they only cost a request */
}

static void flat_prev_next(struct bf_unit *un);

static void flat_on_prev_end(struct flatfile_fetch *f, enum flatfile_outcome o, const char *why)
{
    struct bf_unit *un = f->user;
    struct bf_flat *ff = un->ff;
    if (flat_fetch_ended(un, f, NULL, 0))
        return;
    if (!engine_running(un->bf->e)) {
        flat_fail_finish(un, "interrupted");
        return;
    }
    if (o == FLATFILE_MISSING && ff->prev_back < FLAT_PREV_DAYS) { /* a weekend or holiday: the day before */
        flat_prev_next(un);
        return;
    }
    if (o != FLATFILE_APPLIED) {
        for (size_t i = 0; i < un->ncontracts; i++)
            ff->c[i].prev_start_ms = 0;
        log_warn("previous session's flat file not read: previous closes from the API", "underlying=%s reason=%s",
                 un->u->name, why ? why : "not found");
    }
    flat_prepared(un);
}

/* Reads the file of the session before the unit's day (days without one skipped). */
static void flat_prev_next(struct bf_unit *un)
{
    struct bf_flat *ff = un->ff;
    ff->prev_back++;
    ff->fetch.on_end = flat_on_prev_end;
    ff->fetch.user = un;
    if (flatfile_fetch_start(&ff->fetch, engine_http(un->bf->e), un->bf->s, un->seg[0].date - ff->prev_back, "",
                             flat_want, flat_prev_bar, flat_prev_reject, un) != 0) {
        flat_prepared(un); /* previous closes from the API */
        return;
    }
    ff->fetching = true;
}

static void on_flat_head(struct flatfile_fetch *f, enum flatfile_outcome o, const char *why)
{
    struct bf_unit *un = f->user;
    struct bf_flat *ff = un->ff;
    char day[16], e1[120];
    if (flat_fetch_ended(un, f, day, sizeof day))
        return;
    if (o == FLATFILE_UNCHANGED) {
        un->bf->flat_unchanged++;
        log_info("flat file unchanged (same ETag as applied): unit skipped", "underlying=%s day=%s etag=%s",
                 un->u->name, day, log_quote(e1, sizeof e1, ff->old_etag));
        unit_finish(un, OUTCOME_COVERED);
        return;
    }
    if (o != FLATFILE_APPLIED || !engine_running(un->bf->e)) {
        if (o != FLATFILE_APPLIED)
            log_error("flat file not applied: the unit stays uncovered", "underlying=%s day=%s reason=%s",
                      un->u->name, day, log_quote(e1, sizeof e1, why));
        flat_fail_finish(un, o != FLATFILE_APPLIED ? why : "interrupted");
        return;
    }
    flat_prev_next(un);
}

/* The object's ETag against the one applied before: a HEAD with If-None-Match. */
static void flat_head(struct bf_unit *un)
{
    struct bf_flat *ff = un->ff;
    ff->fetch.on_end = on_flat_head;
    ff->fetch.user = un;
    if (flatfile_head_start(&ff->fetch, engine_http(un->bf->e), un->bf->s, un->seg[0].date, ff->old_etag) != 0) {
        flat_fail_finish(un, "cannot start the flat-file request");
        return;
    }
    ff->fetching = true;
}

static const char sql_flat_etag[] = "SELECT etag FROM ingest_flatfiles WHERE day = $1::date AND underlying = $2";
static const char sql_flat_record[] =
    "INSERT INTO ingest_flatfiles (day, underlying, etag, rows, rejects) VALUES ($1::date, $2, $3, $4, $5) "
    "ON CONFLICT (day, underlying) DO UPDATE SET etag = EXCLUDED.etag, rows = EXCLUDED.rows, "
    "rejects = EXCLUDED.rejects, applied_at = now()";

static void on_flat_etag(void *user, const void *pgresult)
{
    struct bf_unit *un = user;
    if (PQntuples(pgresult) == 1)
        snprintf(un->ff->old_etag, sizeof un->ff->old_etag, "%s", PQgetvalue(pgresult, 0, 0));
}

static void on_flat_etag_done(struct engine_query *q, const struct pg_txn_result *r)
{
    struct bf_unit *un = q->user;
    if (r->status != PG_TXN_OK) {
        flat_fail_finish(un, r->status == PG_TXN_CANCELLED ? "interrupted" : "database error reading the flat-file ETag");
        return;
    }
    flat_head(un);
}

/* The unit's contracts seen live are listed: sorted for the files' lookups.
 * A unit with no gap (backfill --from-flatfiles) first asks whether the
 * object changed since it was applied; one with a gap reads it whatever its
 * ETag (the ETag is per day and underlying, a unit may be part of a day). */
static void flat_begin(struct bf_unit *un)
{
    if (un->nseg != 1 && !un->flat_always) { /* repair: a unit across local days goes the REST way */
        un->flat = false;
        un->part_day = (int32_t)(un->from_us / USEC_PER_DAY);
        un->part_last_day = (int32_t)(un->to_us / USEC_PER_DAY);
        ensure_next_partition(un);
        return;
    }
    if (un->nseg != 1) {
        flat_fail_finish(un, "flat files: a unit must lie within one local day (use a calendar whose sessions do, "
                             "or --from/--to on local midnights)");
        return;
    }
    struct bf_flat *ff = calloc(1, sizeof *ff);
    un->ff = ff;
    if (ff == NULL || flat_reserve(ff, un->ncontracts + 1) != 0) {
        flat_fail_finish(un, "out of memory");
        return;
    }
    if (un->ncontracts > 1) /* none yet: the day's file lists them */
        qsort(un->contracts, un->ncontracts, sizeof *un->contracts, contract_cmp);
    ff->nsorted = un->ncontracts;
    ff->last = SIZE_MAX;
    ff->cur = -1;
    if (!un->flat_always || un->has_gap) {
        flat_prev_next(un);
        return;
    }
    date_format(ff->params[0], sizeof ff->params[0], un->seg[0].date);
    snprintf(ff->params[1], sizeof ff->params[1], "%s", un->u->name);
    ff->values[0] = ff->params[0];
    ff->values[1] = ff->params[1];
    if (engine_query_one(un->bf->e, &ff->q, (struct pg_stmt){.name = "flat_etag", .sql = sql_flat_etag, .nparams = 2,
                                         .values = ff->values, .on_tuples = on_flat_etag}, on_flat_etag_done, un) != 0)
        flat_fail_finish(un, "interrupted");
}

static void on_flat_recorded(struct engine_query *q, const struct pg_txn_result *r)
{
    struct bf_unit *un = q->user;
    if (r->status != PG_TXN_OK)
        log_warn("flat-file ETag not recorded: the next run applies the file again", "underlying=%s sqlstate=%s",
                 un->u->name, r->sqlstate);
    flat_free(un);
    unit_finish(un, OUTCOME_DONE);
}

/* The unit's rows and mark are committed: the object's ETag is recorded. */
static void flat_record(struct bf_unit *un)
{
    struct bf_flat *ff = un->ff;
    un->bf->flat_applied++;
    date_format(ff->params[0], sizeof ff->params[0], un->seg[0].date);
    snprintf(ff->params[1], sizeof ff->params[1], "%s", un->u->name);
    snprintf(ff->params[2], sizeof ff->params[2], "%s", ff->etag);
    snprintf(ff->params[3], sizeof ff->params[3], "%ld", un->g.wg.rows_written);
    snprintf(ff->params[4], sizeof ff->params[4], "%ld", ff->rejects);
    for (int i = 0; i < 5; i++)
        ff->values[i] = ff->params[i];
    if (engine_query_one(un->bf->e, &ff->q, (struct pg_stmt){.name = "flat_record", .sql = sql_flat_record,
                                         .nparams = 5, .values = ff->values}, on_flat_recorded, un) != 0) {
        log_warn("flat-file ETag not recorded (shutting down)", "underlying=%s", un->u->name);
        unit_finish(un, OUTCOME_DONE);
    }
}

/* ---- the driver ---- */

static void release_lease(struct bf_underlying *u)
{
    static const char sql[] = "SELECT optsnap_lease_release($1, $2)";
    if (!u->leased || u->lease_q.pending)
        return;
    u->leased = false;
    u->lease_values[0] = u->name;
    u->lease_values[1] = u->bf->holder;
    if (engine_query_one(u->bf->e, &u->lease_q, (struct pg_stmt){.name = "lease_release", .sql = sql, .nparams = 2,
                                               .values = u->lease_values}, on_renew_done, u->bf) != 0)
        log_debug("lease release not queued (it expires)", "underlying=%s", u->name);
}

static void on_group_settled(void *self, struct engine_group *g)
{
    struct backfill *bf = self;
    struct bf_unit *un = g->wg.owner;
    bf->rows_written += g->wg.rows_written;
    if (un->u->lost && !g->wg.failed)
        unit_fail(un, "lease lost");
    if (un->flat && g->wg.coverage_written && !g->wg.failed) {
        flat_record(un); /* the ETag, then the unit finishes */
        return;
    }
    unit_finish(un, g->wg.coverage_written && !g->wg.failed ? OUTCOME_DONE : OUTCOME_FAILED);
}

static void on_write_report(void *self, struct engine_group *g, const struct write_report *r)
{
    (void)self;
    struct bf_unit *un = g->wg.owner;
    if ((r->event == WRITE_DROPPED || r->event == WRITE_REJECTS_DROPPED || r->event == WRITE_MARK_REFUSED) &&
        !un->reason[0])
        snprintf(un->reason, sizeof un->reason, "database error %s in %s",
                 r->sqlstate[0] ? r->sqlstate : "(connection)", r->statement);
}

/* Starts units while the budget allows; units of finished underlyings give
 * their lease back; with nothing left, the engine drains and stops. */
static void schedule(struct backfill *bf)
{
    while (engine_running(bf->e) && bf->units_active < bf->units_max && bf->next_unit < bf->nunits) {
        struct bf_unit *un = &bf->units[bf->next_unit++];
        unit_start(un);
    }
    for (size_t i = 0; i < bf->nus; i++)
        if (bf->us[i].units_left == 0 || (!engine_running(bf->e) && bf->units_active == 0))
            release_lease(&bf->us[i]);
    if (engine_running(bf->e) && bf->next_unit >= bf->nunits && bf->units_active == 0 && !any_leased(bf))
        engine_drain(bf->e, "backfill finished");
}

static void on_pump(void *self)
{
    struct backfill *bf = self;
    for (size_t i = 0; i < bf->nunits; i++)
        if (bf->units[i].state == UNIT_FETCHING)
            pump_unit(&bf->units[i]);
    schedule(bf);
}

static bool on_busy(void *self)
{
    struct backfill *bf = self;
    if (bf->units_active > 0 || bf->renew_q.pending)
        return true;
    for (size_t i = 0; i < bf->nus; i++)
        if (bf->us[i].lease_q.pending || bf->us[i].leased)
            return true;
    return false;
}

static void on_drain(void *self, const char *why)
{
    struct backfill *bf = self;
    if (strcmp(why, "backfill finished") != 0) {
        bf->interrupted = true;
        log_warn("interrupted: draining; units in progress stay uncovered (a re-run resumes)", "reason=%s", why);
    }
}


/* ---- progress ---- */

static void progress_draw(struct backfill *bf, bool final)
{
    int64_t now = real_now();
    double el = (double)(now - bf->started_real_us) / 1e6;
    int total = (int)bf->nunits;
    double eta = bf->finished > 0 ? el / bf->finished * (total - bf->finished) : -1;
    const struct engine_counters *c = bf->e ? engine_counters(bf->e) : NULL;
    unsigned long long pages = c ? (unsigned long long)c->pages : 0;
    if (bf->tty) {
        int width = 30, fill = total > 0 ? bf->finished * width / total : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] units %d/%d  rows %ld  requests %llu  %.0f rows/s  ETA %s%.0fs   %s", bar,
                bf->finished, total, bf->rows_written, pages, el > 0 ? (double)bf->rows_written / el : 0.0,
                eta < 0 ? "?" : "", eta < 0 ? 0.0 : eta, final ? "\n" : "");
        fflush(stderr);
        return;
    }
    if (final || now - bf->last_progress_log_us >= 5 * USEC_PER_SEC) {
        bf->last_progress_log_us = now;
        log_info("backfill progress", "units_done=%d units_total=%d rows=%ld rows_built=%ld requests=%llu eta_s=%.0f",
                 bf->finished, total, bf->rows_written, bf->rows_built, pages, eta < 0 ? -1.0 : eta);
    }
}

static void progress_tick(uv_timer_t *t) { progress_draw(t->data, false); }

static void on_start(void *self)
{
    struct backfill *bf = self;
    uint64_t every = bf->tty ? 250 : 1000;
    uv_timer_start(&bf->progress_timer, progress_tick, every, every);
    uv_timer_start(&bf->renew_timer, renew_tick, LEASE_RENEW_MS, LEASE_RENEW_MS);
    uv_timer_start(&bf->part_timer, part_tick, 50, 50);
    schedule(bf);
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
        printf("%-8s %s .. %s  %s: %s\n", un->u->name, timestamp_format_brief(a, sizeof a, un->from_us),
               timestamp_format_brief(b, sizeof b, un->to_us), o == OUTCOME_SKIPPED ? "skipped" : "failed",
               un->reason[0] ? un->reason : (bf->interrupted ? "interrupted" : "not finished"));
        printed++;
    }
    if (left)
        printf("... and %d more units not filled\n", left);
}

static int start_engine(struct backfill *bf)
{
    struct settings *s = bf->s;
    struct engine_config cfg = {.name = "backfill", .application_name = "optsnap-backfill",
                                .user_agent = "optsnap/" OPTSNAP_VERSION " backfill",
                                .http_concurrency = s->backfill_http_concurrency,
                                .db_connections = s->backfill_db_connections,
                                .queue_max_rows = s->queue_max_rows, .batch_rows = s->batch_rows,
                                .batch_max_age_us = s->batch_max_age_us, .write_max_attempts = MAX_TXN_ATTEMPTS};
    struct engine_driver d = {.self = bf, .start = on_start, .pump = on_pump, .drain = on_drain, .busy = on_busy,
                              .group_settled = on_group_settled, .write_report = on_write_report};
    if (engine_create(&bf->e, s, &cfg, &d) != 0)
        return -1;
    uv_timer_t *timers[] = {&bf->progress_timer, &bf->renew_timer, &bf->part_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(engine_loop(bf->e), timers[i]);
        timers[i]->data = bf;
        if (engine_own_handle(bf->e, (uv_handle_t *)timers[i]) != 0)
            return -1;
    }
    return 0;
}

static void backfill_free(struct backfill *bf)
{
    for (size_t i = 0; i < bf->nunits; i++) {
        free(bf->units[i].contracts);
        flat_free(&bf->units[i]);
    }
    aggs_page_free(&bf->apage);
    contracts_page_free(&bf->cpage);
    free(bf->leased_array);
    free(bf->units);
    free(bf->us);
    free(bf);
}

static void fill_result(const struct backfill *bf, struct backfill_result *out)
{
    out->units_total = (int)bf->nunits;
    out->units_done = bf->done;
    out->units_covered = bf->covered;
    out->units_skipped = bf->skipped;
    out->units_failed = (int)bf->nunits - bf->done - bf->covered - bf->skipped;
    out->rows_written = bf->rows_written;
    out->rows_built = bf->rows_built;
    out->contracts_asked = bf->contracts_asked;
    out->contracts_skipped = bf->contracts_skipped;
    out->closes_known = bf->closes_known;
    out->flat_applied = bf->flat_applied;
    out->flat_unchanged = bf->flat_unchanged;
    out->flat_rejects = bf->flat_rejects;
    out->interrupted = bf->interrupted;
    out->seconds = (double)(real_now() - bf->started_real_us) / 1e6;
}

int backfill_execute(struct settings *s, const struct backfill_request *reqs, size_t nreqs, int64_t resolution_us,
                     struct backfill_result *out)
{
    memset(out, 0, sizeof *out);
    struct backfill *bf = calloc(1, sizeof *bf);
    if (bf == NULL)
        return -1;
    bf->s = s;
    bf->resolution_us = resolution_us;
    bf->tty = isatty(2);
    bf->started_real_us = real_now();
    snprintf(bf->ttl_text, sizeof bf->ttl_text, "%lld", (long long)LEASE_TTL_US);
    char host[128] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(bf->holder, sizeof bf->holder, "backfill:%s:%ld", host, (long)getpid());
    struct market_clock clock;
    if (market_clock_parse(&clock, s->clock, s->clock_speed, real_now()) != 0) {
        log_error("bad clock", "%s", "");
        backfill_free(bf);
        return -1;
    }
    /* the API's now less one cadence: the last window that has surely ended */
    bf->clip_us = window_start_of(market_clock_now(&clock, real_now()), s->cadence_us) - s->cadence_us;
    int rc = -1;
    if (plan_units(bf, reqs, nreqs) != 0)
        goto out;
    bf->units_max = s->backfill_db_connections > 2 ? s->backfill_db_connections : 2;
    log_info("backfill started", "units=%zu underlyings=%zu calendar=%s cadence_ms=%lld http_concurrency=%d "
             "db_connections=%d holder=%s",
             bf->nunits, bf->nus, s->calendar, (long long)(s->cadence_us / 1000), s->backfill_http_concurrency,
             s->backfill_db_connections, bf->holder);
    if (bf->nunits == 0) {
        rc = 0;
        goto out;
    }
    if (start_engine(bf) != 0) {
        if (bf->e) {
            engine_stop_now(bf->e, "cannot start");
            (void)engine_run(bf->e);
        }
        goto out;
    }
    bf->last_progress_log_us = real_now();
    rc = engine_run(bf->e) == 0 ? 0 : -1; /* -1: stopped at once (a second signal, shutdown_timeout) */
    progress_draw(bf, true);
    report_units(bf);
out:
    fill_result(bf, out);
    engine_free(bf->e);
    backfill_free(bf);
    return rc;
}
