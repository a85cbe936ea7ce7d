/* metrics.c - renders a metrics_snapshot as Prometheus text exposition 0.0.4; pure (libc only). */
#include "optsnap/ops/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_latency_bounds[METRICS_LATENCY_BUCKETS - 1] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static void put_str(struct bytebuf *out, const char *s)
{
    bytebuf_append(out, s, strlen(s));
}

static void put_u64(struct bytebuf *out, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
    bytebuf_append(out, buf, (size_t)n);
}

static void put_i64(struct bytebuf *out, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    bytebuf_append(out, buf, (size_t)n);
}

void metrics_format_double(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Shortest of %.15g / %.17g that reads back exactly: 0.005 stays 0.005
     * instead of 0.0050000000000000001, and nothing is lost. */
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, size, "%.17g", v);
}

static void put_double(struct bytebuf *out, double v)
{
    char buf[40];
    metrics_format_double(v, buf, sizeof buf);
    put_str(out, buf);
}

/* Label values may hold anything an API sent us (an underlying's name): the
 * format only allows \\, \" and \n escapes, everything else is literal. */
void metrics_escape_label_append(struct bytebuf *out, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '\\': put_str(out, "\\\\"); break;
        case '"': put_str(out, "\\\""); break;
        case '\n': put_str(out, "\\n"); break;
        default: bytebuf_append(out, p, 1); break;
        }
    }
}

void html_escape_append(struct bytebuf *out, const char *s)
{
    if (!s)
        return;
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            bytebuf_append(out, run, (size_t)(p - run));
            put_str(out, rep);
            run = p + 1;
        }
    }
    put_str(out, run);
}

void metrics_count_sqlstate(struct metrics_sqlstate *table, size_t *n, const char *sqlstate)
{
    /* libpq gives no SQLSTATE for connection-level failures; they still count. */
    char code[sizeof table[0].sqlstate];
    if (!sqlstate || !*sqlstate)
        sqlstate = "?????";
    snprintf(code, sizeof code, "%s", sqlstate);
    for (size_t i = 0; i < *n && i < METRICS_MAX_SQLSTATES; i++) {
        if (strcmp(table[i].sqlstate, code) == 0) {
            table[i].count++;
            return;
        }
    }
    if (*n >= METRICS_MAX_SQLSTATES)
        return;
    memcpy(table[*n].sqlstate, code, sizeof code);
    table[*n].count = 1;
    (*n)++;
}

static void family(struct bytebuf *out, const char *name, const char *type, const char *help)
{
    put_str(out, "# HELP ");
    put_str(out, name);
    bytebuf_append(out, " ", 1);
    put_str(out, help);
    put_str(out, "\n# TYPE ");
    put_str(out, name);
    bytebuf_append(out, " ", 1);
    put_str(out, type);
    bytebuf_append(out, "\n", 1);
}

/* name{label="value"} (label may be NULL for a bare sample), then a space. */
static void sample_start(struct bytebuf *out, const char *name, const char *label, const char *value)
{
    put_str(out, name);
    if (label) {
        bytebuf_append(out, "{", 1);
        put_str(out, label);
        put_str(out, "=\"");
        metrics_escape_label_append(out, value);
        put_str(out, "\"}");
    }
    bytebuf_append(out, " ", 1);
}

static void sample_u64(struct bytebuf *out, const char *name, const char *label, const char *value,
                       uint64_t v)
{
    sample_start(out, name, label, value);
    put_u64(out, v);
    bytebuf_append(out, "\n", 1);
}

static void sample_i64(struct bytebuf *out, const char *name, const char *label, const char *value,
                       int64_t v)
{
    sample_start(out, name, label, value);
    put_i64(out, v);
    bytebuf_append(out, "\n", 1);
}

static void sample_double(struct bytebuf *out, const char *name, const char *label,
                          const char *value, double v)
{
    sample_start(out, name, label, value);
    put_double(out, v);
    bytebuf_append(out, "\n", 1);
}

static void counter(struct bytebuf *out, const char *name, const char *help, uint64_t v)
{
    family(out, name, "counter", help);
    sample_u64(out, name, NULL, NULL, v);
}

static void gauge(struct bytebuf *out, const char *name, const char *help, int64_t v)
{
    family(out, name, "gauge", help);
    sample_i64(out, name, NULL, NULL, v);
}

/* A family with one label: a sample per {label value, value}, up to {NULL}. */
struct labeled_sample {
    const char *label_value;
    uint64_t v;
};

static void labeled_u64(struct bytebuf *out, const char *name, const char *type, const char *help,
                        const char *label, const struct labeled_sample *samples)
{
    family(out, name, type, help);
    for (; samples->label_value != NULL; samples++)
        sample_u64(out, name, label, samples->label_value, samples->v);
}

static void render_latency(const struct metrics_snapshot *m, struct bytebuf *out)
{
    const char *name = "optsnap_http_request_duration_seconds";
    family(out, name, "histogram", "Time from sending an HTTP request to its complete response.");
    /* Prometheus rejects a histogram whose buckets go down or whose +Inf bucket
     * differs from _count; a racy snapshot must not make the whole scrape fail,
     * so the rendering enforces both. */
    uint64_t running = 0;
    char le[40];
    for (size_t i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        uint64_t v = m->http_latency_buckets[i];
        if (i == METRICS_LATENCY_BUCKETS - 1 && m->http_latency_count > v)
            v = m->http_latency_count;
        if (v > running)
            running = v;
        if (i < METRICS_LATENCY_BUCKETS - 1)
            metrics_format_double(metrics_latency_bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        put_str(out, name);
        put_str(out, "_bucket{le=\"");
        put_str(out, le);
        put_str(out, "\"} ");
        put_u64(out, running);
        bytebuf_append(out, "\n", 1);
    }
    put_str(out, name);
    put_str(out, "_sum ");
    put_double(out, m->http_latency_sum_s);
    bytebuf_append(out, "\n", 1);
    put_str(out, name);
    put_str(out, "_count ");
    put_u64(out, running);
    bytebuf_append(out, "\n", 1);
}

/* What a per-underlying family samples: a counter or gauge field, or one of
 * the three that only some underlyings have. */
enum underlying_value { UV_FIELD, UV_FRESHNESS, UV_DELAYED, UV_LEASE_EPOCH };

static const struct underlying_family {
    const char *name, *type, *help;
    enum underlying_value value;
    size_t field; /* UV_FIELD: offsetof a uint64_t in struct metrics_underlying */
} underlying_families[] = {
#define FIELD(f) UV_FIELD, offsetof(struct metrics_underlying, f)
    {"optsnap_freshness_seconds", "gauge",
     "Seconds since the newest committed snapshot of an underlying (absent until one is committed).", UV_FRESHNESS, 0},
    {"optsnap_underlying_rows_written_total", "counter", "Snapshot rows inserted or updated, per underlying.",
     FIELD(rows_written)},
    {"optsnap_underlying_rows_rejected_total", "counter", "Rows sent to ingest_rejects, per underlying.",
     FIELD(rows_rejected)},
    {"optsnap_underlying_rows_fetched_total", "counter",
     "Results the API returned, per underlying: stored rows plus whole-row rejects.", FIELD(rows_fetched)},
    {"optsnap_underlying_rows_partial_total", "counter",
     "Rows stored with fields dropped (NULL), their raw JSON kept in ingest_rejects as kind partial.",
     FIELD(rows_partial)},
    {"optsnap_underlying_last_sweep_rows", "gauge",
     "Results the API returned in the last finished sweep of an underlying.", FIELD(last_sweep_rows)},
    {"optsnap_underlying_last_sweep_rejected", "gauge",
     "Whole-row rejects in the last finished sweep of an underlying.", FIELD(last_sweep_rejected)},
    {"optsnap_underlying_delayed", "gauge",
     "1 when the API labels an underlying's data DELAYED, 0 when REAL-TIME (absent until known).", UV_DELAYED, 0},
    {"optsnap_underlying_lease_epoch", "gauge",
     "Epoch (fencing token) of the live lease this daemon holds on an underlying; absent when not held.",
     UV_LEASE_EPOCH, 0},
    {"optsnap_underlying_errors_total", "counter",
     "HTTP and database failures that left a window of this underlying uncovered.", FIELD(errors)},
#undef FIELD
};

/* One underlying's sample of family f, when it has one. */
static void underlying_sample(struct bytebuf *out, const struct underlying_family *f,
                              const struct metrics_underlying *u)
{
    uint64_t v;
    switch (f->value) {
    case UV_FRESHNESS:
        if (u->freshness_s >= 0)
            sample_double(out, f->name, "underlying", u->name, u->freshness_s);
        return;
    case UV_DELAYED:
        if (u->timeframe == 1 || u->timeframe == 2)
            sample_u64(out, f->name, "underlying", u->name, u->timeframe == 1);
        return;
    case UV_LEASE_EPOCH:
        if (u->lease_held)
            sample_u64(out, f->name, "underlying", u->name, (uint64_t)u->lease_epoch);
        return;
    case UV_FIELD:
        memcpy(&v, (const char *)u + f->field, sizeof v);
        sample_u64(out, f->name, "underlying", u->name, v);
        return;
    }
}

static void render_underlyings(const struct metrics_snapshot *m, struct bytebuf *out)
{
    const struct metrics_underlying *u = m->underlyings;
    size_t n = u ? m->n_underlyings : 0;
    for (size_t k = 0; k < sizeof underlying_families / sizeof underlying_families[0]; k++) {
        const struct underlying_family *f = &underlying_families[k];
        if (f->value == UV_LEASE_EPOCH && m->lease_holder == NULL)
            continue; /* leases off */
        family(out, f->name, f->type, f->help);
        for (size_t i = 0; i < n; i++)
            underlying_sample(out, f, &u[i]);
    }
}

/* HTTP: responses, retries, latency, in flight. */
static void render_http(const struct metrics_snapshot *m, struct bytebuf *out)
{
    labeled_u64(out, "optsnap_http_requests_total", "counter",
                "HTTP responses from the market-data API, by status class.", "status",
                (const struct labeled_sample[]){
                    {"2xx", m->http_requests_2xx}, {"4xx", m->http_requests_4xx},
                    {"429", m->http_requests_429}, {"5xx", m->http_requests_5xx}, {NULL, 0}});
    counter(out, "optsnap_http_transport_errors_total",
            "HTTP attempts that got no response (connect, TLS, timeout).", m->http_transport_errors);
    counter(out, "optsnap_http_retries_total", "HTTP attempts that were retries.", m->http_retries);
    counter(out, "optsnap_http_retry_budget_exhausted_total",
            "Requests given up after their last allowed attempt.", m->http_retry_budget_exhausted);
    counter(out, "optsnap_http_response_bytes_total", "Bytes of HTTP response bodies received.",
            m->http_bytes);
    render_latency(m, out);
    gauge(out, "optsnap_http_requests_in_flight", "HTTP requests currently in flight.",
          m->http_in_flight);
    gauge(out, "optsnap_http_requests_waiting",
          "HTTP requests waiting for a concurrency slot, the rate limiter or queue room.",
          m->http_waiting);
}

/* Rows, batches, database errors, the pool and the queue. */
static void render_db(const struct metrics_snapshot *m, struct bytebuf *out)
{
    const char *n;

    labeled_u64(out, "optsnap_rows_total", "counter", "Snapshot rows by outcome.", "outcome",
                (const struct labeled_sample[]){
                    {"fetched", m->rows_fetched}, {"written", m->rows_written},
                    {"unchanged", m->rows_unchanged}, {"rejected", m->rows_rejected}, {NULL, 0}});
    counter(out, "optsnap_rows_skipped_total",
            "Unchanged rows the fingerprint table kept from PostgreSQL (counted in outcome=unchanged too).",
            m->rows_skipped);
    counter(out, "optsnap_skip_cache_forgets_total",
            "Times the fingerprint table forgot rows (a lease changed hands, a commit's outcome was unknown).",
            m->skip_cache_forgets);

    labeled_u64(out, "optsnap_batches_total", "counter", "Upsert batches by outcome.", "outcome",
                (const struct labeled_sample[]){
                    {"committed", m->batches_committed}, {"retried", m->batches_retried},
                    {"bisected", m->batches_bisected}, {"dropped", m->batches_dropped}, {NULL, 0}});

    n = "optsnap_db_errors_total";
    family(out, n, "counter", "PostgreSQL errors by SQLSTATE.");
    for (size_t i = 0; i < m->n_db_errors && i < METRICS_MAX_SQLSTATES; i++) {
        char code[sizeof m->db_errors[i].sqlstate + 1];
        memcpy(code, m->db_errors[i].sqlstate, sizeof m->db_errors[i].sqlstate);
        code[sizeof code - 1] = '\0'; /* the table is a fixed array: never trust its NUL */
        sample_u64(out, n, "sqlstate", code, m->db_errors[i].count);
    }

    n = "optsnap_db_connections";
    family(out, n, "gauge", "PostgreSQL pool connections by state.");
    sample_i64(out, n, "state", "busy", m->db_busy);
    sample_i64(out, n, "state", "idle", m->db_idle);
    sample_i64(out, n, "state", "connecting", m->db_connecting);
    sample_i64(out, n, "state", "down", m->db_down);
    gauge(out, "optsnap_db_pool_size", "Configured pool size (db_connections).", m->db_size);
    counter(out, "optsnap_db_reconnects_total", "PostgreSQL reconnections after a lost connection.",
            m->db_reconnects);
    gauge(out, "optsnap_queue_rows", "Rows fetched and not yet committed.", m->queue_rows);
    gauge(out, "optsnap_queue_max_rows", "Cap on optsnap_queue_rows (queue_max_rows).",
          m->queue_max_rows);
    gauge(out, "optsnap_batches_waiting", "Batches waiting for a free connection.",
          m->batches_waiting);
}

/* Sweeps and the API's refusals. */
static void render_sweeps(const struct metrics_snapshot *m, struct bytebuf *out)
{
    labeled_u64(out, "optsnap_sweeps_total", "counter", "Sweep windows by outcome.", "outcome",
                (const struct labeled_sample[]){
                    {"started", m->sweeps_started}, {"covered", m->sweeps_covered},
                    {"incomplete", m->sweeps_incomplete}, {"overrun", m->sweeps_overrun},
                    {"mark_refused", m->sweeps_mark_refused}, {NULL, 0}});
    labeled_u64(out, "optsnap_api_refused_total", "counter",
                "Sweeps the API refused for good, by reason (key: 401, plan: 403).", "reason",
                (const struct labeled_sample[]){
                    {"key", m->api_refused_key}, {"plan", m->api_refused_plan}, {NULL, 0}});
}

/* Leases and self-healing (several daemons); nothing when leases are off. */
static void render_fleet(const struct metrics_snapshot *m, struct bytebuf *out)
{
    if (m->lease_holder == NULL)
        return; /* leases off */
    gauge(out, "optsnap_leases_held", "Live leases this daemon holds (underlyings it sweeps).",
          (int64_t)m->leases_held);
    gauge(out, "optsnap_live_daemons", "Daemons with a recent heartbeat, as the last heartbeat counted them.",
          m->live_daemons);
    gauge(out, "optsnap_lease_target", "This daemon's fair share: ceil(universe / live daemons).",
          m->lease_target);
    labeled_u64(out, "optsnap_lease_events_total", "counter",
                "Lease events: claimed (a new epoch), lost (expired or taken), handed_back (released), "
                "rebalanced (surplus given up for a joiner), heartbeat_failed.",
                "event",
                (const struct labeled_sample[]){
                    {"claimed", m->lease_claims}, {"lost", m->lease_losses},
                    {"handed_back", m->lease_handbacks}, {"rebalanced", m->lease_rebalances},
                    {"heartbeat_failed", m->lease_heartbeat_failures}, {NULL, 0}});
    labeled_u64(out, "optsnap_heal_runs_total", "counter",
                "Self-healing passes (a child `optsnap repair` over the underlyings held), by outcome.", "outcome",
                (const struct labeled_sample[]){
                    {"ok", m->heal_runs - m->heal_failures}, {"failed", m->heal_failures}, {NULL, 0}});
    counter(out, "optsnap_heal_windows_filled_total", "Windows the self-healing passes marked covered (backfill).",
            m->heal_windows);
}

void metrics_render_prometheus(const struct metrics_snapshot *m, struct bytebuf *out)
{
    const char *n;

    render_http(m, out);
    render_db(m, out);
    render_sweeps(m, out);
    render_fleet(m, out);
    counter(out, "optsnap_retention_days_dropped_total",
            "Day partitions dropped by the retention setting (their coverage marked expired).",
            m->retention_days_dropped);
    counter(out, "optsnap_pages_capped_total",
            "Paginated fetches stopped at max_pages (their window stays uncovered).", m->pages_capped);
    n = "optsnap_clock_skew_seconds";
    family(out, n, "gauge", "Their clock minus ours, last measured (api: Date headers, database: now()).");
    sample_double(out, n, "peer", "api", m->clock_skew_api_s);
    sample_double(out, n, "peer", "database", m->clock_skew_db_s);
    gauge(out, "optsnap_clock_skew_exceeded",
          "1 while a clock disagrees with ours by more than max_clock_skew: no window is marked covered.",
          m->clock_skew_exceeded ? 1 : 0);
    family(out, "optsnap_last_sweep_duration_seconds", "gauge",
           "Duration of the last finished sweep.");
    sample_double(out, "optsnap_last_sweep_duration_seconds", NULL, NULL, m->last_sweep_seconds);

    render_underlyings(m, out);

    if (m->uncovered_windows >= 0)
        gauge(out, "optsnap_uncovered_windows",
              "Windows inside sessions not marked covered (what optsnap repair would fetch).",
              m->uncovered_windows);
    gauge(out, "optsnap_db_up", "1 when the database answered the last check.",
          m->db_reachable ? 1 : 0);
    family(out, "optsnap_start_time_seconds", "gauge", "Start time of the process, Unix seconds.");
    sample_double(out, "optsnap_start_time_seconds", NULL, NULL, (double)m->started_us / 1e6);
    family(out, "optsnap_build_info", "gauge", "Always 1; the version is a label.");
    sample_u64(out, "optsnap_build_info", "version", m->version ? m->version : "unknown", 1);
}
