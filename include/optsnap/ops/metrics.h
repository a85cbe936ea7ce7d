/* metrics.h - what `optsnap run` exposes: a plain snapshot of its counters and
 * gauges, rendered as Prometheus text (/metrics) and as the HTML status page
 * (/). The ingester fills the snapshot; these renderers are pure (no I/O). */
#ifndef OPTSNAP_METRICS_H
#define OPTSNAP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "optsnap/util/buf.h" /* struct bytebuf */

#define METRICS_LATENCY_BUCKETS 12 /* 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf */
#define METRICS_MAX_SQLSTATES 32

extern const double metrics_latency_bounds[METRICS_LATENCY_BUCKETS - 1];

struct metrics_underlying {
    char name[16];
    double freshness_s;        /* now - newest committed snapshot's last_updated; <0 = none yet */
    int64_t last_sweep_start_us;  /* window start of the last covered sweep, 0 = none */
    double last_sweep_seconds; /* its duration */
    uint64_t rows_written, rows_rejected, sweeps_covered, sweeps_incomplete, errors;
    /* Data quality, filled by the daemon from each parsed page:
     *   rows_fetched:  results the API returned (stored rows + whole-row rejects)
     *   rows_rejected: whole-row rejects only (REJECT_ROW and REJECT_REFUSED);
     *                  a partial row is not one
     *   rows_partial:  rows stored with fields dropped (REJECT_PARTIAL)
     *   last_sweep_*:  the same two counts for the last finished sweep
     *   timeframe:     the API's label of the last page's data: 0 unknown,
     *                  1 DELAYED, 2 REAL-TIME (enum snap_timeframe) */
    uint64_t rows_fetched, rows_partial;
    uint64_t last_sweep_rows, last_sweep_rejected;
    int timeframe;
    /* the live lease: held by this daemon (1/0), its epoch and since (0 = not held) */
    int lease_held;
    int64_t lease_epoch, lease_since_us;
};

struct metrics_sqlstate {
    char sqlstate[6];
    uint64_t count;
};

/* One cell of the coverage timeline: [start, end) and what holds it. */
enum coverage_state { COVERAGE_MISSING = 0, COVERAGE_LIVE = 1, COVERAGE_BACKFILL = 2, COVERAGE_CLOSED = 3 };
struct coverage_span {
    int64_t start_us, end_us;
    enum coverage_state state;
};

struct metrics_snapshot {
    int64_t now_us;
    int64_t started_us;
    const char *version;
    /* HTTP (requests by status class and by endpoint kind) */
    uint64_t http_requests_2xx, http_requests_4xx, http_requests_429, http_requests_5xx,
        http_transport_errors, http_retries, http_retry_budget_exhausted, http_bytes;
    uint64_t http_latency_buckets[METRICS_LATENCY_BUCKETS]; /* cumulative counts, last = +Inf */
    double http_latency_sum_s;
    uint64_t http_latency_count;
    int http_in_flight, http_waiting;
    /* rows and batches */
    uint64_t rows_fetched, rows_written, rows_unchanged, rows_rejected;
    /* the skip cache (write_queue_get_stats): rows kept from PostgreSQL, part of rows_unchanged */
    uint64_t rows_skipped, skip_cache_forgets;
    uint64_t batches_committed, batches_retried, batches_bisected, batches_dropped;
    /* database */
    int db_busy, db_idle, db_connecting, db_down, db_size;
    uint64_t db_reconnects;
    struct metrics_sqlstate db_errors[METRICS_MAX_SQLSTATES];
    size_t n_db_errors;
    long queue_rows, queue_max_rows;
    int batches_waiting;
    /* sweeps */
    uint64_t sweeps_started, sweeps_covered, sweeps_incomplete, sweeps_overrun, sweeps_mark_refused;
    uint64_t pages_capped;
    double last_sweep_seconds;
    /* clocks: theirs - ours */
    double clock_skew_api_s, clock_skew_db_s;
    int clock_skew_exceeded; /* 1/0 */
    /* sweeps the API refused for good: a bad key (401), a plan without this data (403) */
    uint64_t api_refused_key, api_refused_plan;
    /* live leases (many daemons); lease_holder NULL = leases off */
    const char *lease_holder;
    uint64_t leases_held, lease_claims, lease_losses, lease_handbacks, lease_rebalances, lease_heartbeat_failures;
    int live_daemons, lease_target;
    /* self-healing: child repair passes, failed ones, windows they filled */
    uint64_t heal_runs, heal_failures, heal_windows;
    uint64_t retention_days_dropped; /* day partitions dropped by `retention` */
    long uncovered_windows; /* -1 = unknown */
    int db_reachable;       /* 1/0 */
    /* per underlying */
    const struct metrics_underlying *underlyings;
    size_t n_underlyings;
    /* coverage timeline for the status page: per underlying, spans oldest first */
    const struct coverage_span *const *timelines; /* [n_underlyings], may be NULL */
    const size_t *timeline_lengths;
    int64_t timeline_from_us, timeline_to_us;
};

/* Appends the Prometheus text exposition (format 0.0.4) to out. Metric names
 * are prefixed optsnap_; labels are escaped. out belongs to the caller (it
 * frees it with bytebuf_free); an allocation failure sets out->failed. */
void metrics_render_prometheus(const struct metrics_snapshot *m, struct bytebuf *out);

/* Appends a complete HTML5 status page (no external resources, inline CSS and
 * SVG) to out. Every string that came from outside is HTML-escaped. Ownership
 * and failure as for metrics_render_prometheus. Coverage spans are expected
 * oldest first; adjacent spans of one state are drawn as one rect. */
void metrics_render_status_page(const struct metrics_snapshot *m, struct bytebuf *out);

/* HTML-escapes s (& < > " ') into out. */
void html_escape_append(struct bytebuf *out, const char *s);

/* Escapes a Prometheus label value (backslash, double quote, newline) into out. */
void metrics_escape_label_append(struct bytebuf *out, const char *s);

/* Formats v the way Prometheus parses it: NaN, +Inf, -Inf, else the shortest
 * of %.15g / %.17g that reads back exactly. buf is always NUL-terminated. */
void metrics_format_double(double v, char *buf, size_t size);

/* Status page colours: freshness below FRESH is green, below STALE amber, else red. */
#define STATUS_FRESH_SECONDS 120.0
#define STATUS_STALE_SECONDS 600.0
/* Cap on rects drawn per coverage timeline (after merging adjacent spans of the
 * same state); the rest is summarised in a note so the page stays bounded. */
#define STATUS_MAX_RECTS_PER_TIMELINE 2000
/* Timelines drawn at most (the first ones in the snapshot's order); the table
 * still lists every underlying. */
#define STATUS_MAX_TIMELINES 200

/* Bumps the count of sqlstate in m->db_errors (adds the entry if new, drops
 * it when the table is full). NULL or "" (libpq gives no SQLSTATE for a lost
 * connection) counts as "?????"; longer codes are cut to five characters. */
void metrics_count_sqlstate(struct metrics_sqlstate *table, size_t *n, const char *sqlstate);

#endif
