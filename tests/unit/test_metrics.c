/* Unit tests for the Prometheus renderer: exact sample lines, one HELP/TYPE per
 * family, a histogram Prometheus accepts, escaped labels, SQLSTATE counting. */
#include "optsnap/ops/metrics.h"
#include "test.h"

#include <stdbool.h>

static struct metrics_underlying test_underlyings[3];

static void fill_snapshot(struct metrics_snapshot *m)
{
    memset(m, 0, sizeof *m);
    memset(test_underlyings, 0, sizeof test_underlyings);
    m->now_us = INT64_C(1795000000000000);
    m->started_us = INT64_C(1794999000500000);
    m->version = "0.1.0";
    m->http_requests_2xx = 1000;
    m->http_requests_4xx = 7;
    m->http_requests_429 = 3;
    m->http_requests_5xx = 2;
    m->http_transport_errors = 1;
    m->http_retries = 6;
    m->http_retry_budget_exhausted = 1;
    m->http_bytes = 123456789;
    uint64_t cum[METRICS_LATENCY_BUCKETS] = {1, 5, 20, 100, 400, 800, 950, 990, 1000, 1005, 1008, 1012};
    memcpy(m->http_latency_buckets, cum, sizeof cum);
    m->http_latency_sum_s = 180.5;
    m->http_latency_count = 1012;
    m->http_in_flight = 17;
    m->http_waiting = 4;
    m->rows_fetched = 500;
    m->rows_written = 123;
    m->rows_unchanged = 370;
    m->rows_rejected = 7;
    m->rows_skipped = 300;
    m->skip_cache_forgets = 2;
    m->batches_committed = 11;
    m->batches_retried = 2;
    m->batches_bisected = 1;
    m->batches_dropped = 0;
    m->db_busy = 3;
    m->db_idle = 1;
    m->db_connecting = 0;
    m->db_down = 0;
    m->db_size = 4;
    m->db_reconnects = 2;
    metrics_count_sqlstate(m->db_errors, &m->n_db_errors, "40P01");
    metrics_count_sqlstate(m->db_errors, &m->n_db_errors, "XX000");
    metrics_count_sqlstate(m->db_errors, &m->n_db_errors, "XX000");
    m->queue_rows = 4200;
    m->queue_max_rows = 50000;
    m->batches_waiting = 2;
    m->sweeps_started = 30;
    m->sweeps_covered = 28;
    m->sweeps_incomplete = 1;
    m->sweeps_overrun = 1;
    m->last_sweep_seconds = 1.25;
    m->uncovered_windows = 5;
    m->db_reachable = 1;

    snprintf(test_underlyings[0].name, sizeof test_underlyings[0].name, "SPY");
    test_underlyings[0].freshness_s = 12.5;
    test_underlyings[0].rows_written = 100;
    test_underlyings[0].errors = 1;
    test_underlyings[0].rows_fetched = 250;
    test_underlyings[0].rows_rejected = 200;
    test_underlyings[0].rows_partial = 7;
    test_underlyings[0].last_sweep_rows = 250;
    test_underlyings[0].last_sweep_rejected = 200;
    test_underlyings[0].timeframe = 1; /* DELAYED */
    test_underlyings[2].timeframe = 2;
    snprintf(test_underlyings[1].name, sizeof test_underlyings[1].name, "QQQ");
    test_underlyings[1].freshness_s = -1; /* nothing committed yet */
    test_underlyings[1].rows_written = 0;
    /* a ticker is input: quote, backslash and newline must be escaped */
    snprintf(test_underlyings[2].name, sizeof test_underlyings[2].name, "A\"B\\C\nD");
    test_underlyings[2].freshness_s = 3;
    test_underlyings[2].rows_written = 23;
    m->underlyings = test_underlyings;
    m->n_underlyings = 3;
}

/* Renders into a NUL-terminated malloc'd string; caller frees. */
static char *render(const struct metrics_snapshot *m)
{
    struct bytebuf b = {0};
    metrics_render_prometheus(m, &b);
    bytebuf_append(&b, "", 1);
    CHECK(!b.failed);
    return b.data;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int count = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            count++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return count;
}

static void test_exact_lines(void)
{
    struct metrics_snapshot m;
    fill_snapshot(&m);
    char *t = render(&m);
    CHECK(has_line(t, "optsnap_rows_total{outcome=\"written\"} 123"));
    CHECK(has_line(t, "optsnap_rows_total{outcome=\"fetched\"} 500"));
    CHECK(has_line(t, "optsnap_rows_total{outcome=\"unchanged\"} 370"));
    CHECK(has_line(t, "optsnap_rows_total{outcome=\"rejected\"} 7"));
    CHECK(has_line(t, "optsnap_rows_skipped_total 300"));
    CHECK(has_line(t, "optsnap_skip_cache_forgets_total 2"));
    CHECK(has_line(t, "optsnap_http_requests_total{status=\"2xx\"} 1000"));
    CHECK(has_line(t, "optsnap_http_requests_total{status=\"429\"} 3"));
    CHECK(has_line(t, "optsnap_http_requests_total{status=\"5xx\"} 2"));
    CHECK(has_line(t, "optsnap_http_transport_errors_total 1"));
    CHECK(has_line(t, "optsnap_http_retries_total 6"));
    CHECK(has_line(t, "optsnap_http_retry_budget_exhausted_total 1"));
    CHECK(has_line(t, "optsnap_http_response_bytes_total 123456789"));
    CHECK(has_line(t, "optsnap_http_requests_in_flight 17"));
    CHECK(has_line(t, "optsnap_http_requests_waiting 4"));
    CHECK(has_line(t, "optsnap_batches_total{outcome=\"bisected\"} 1"));
    CHECK(has_line(t, "optsnap_batches_total{outcome=\"dropped\"} 0"));
    CHECK(has_line(t, "optsnap_db_errors_total{sqlstate=\"XX000\"} 2"));
    CHECK(has_line(t, "optsnap_db_errors_total{sqlstate=\"40P01\"} 1"));
    CHECK(has_line(t, "optsnap_db_connections{state=\"busy\"} 3"));
    CHECK(has_line(t, "optsnap_db_connections{state=\"idle\"} 1"));
    CHECK(has_line(t, "optsnap_db_connections{state=\"down\"} 0"));
    CHECK(has_line(t, "optsnap_db_pool_size 4"));
    CHECK(has_line(t, "optsnap_db_reconnects_total 2"));
    CHECK(has_line(t, "optsnap_queue_rows 4200"));
    CHECK(has_line(t, "optsnap_queue_max_rows 50000"));
    CHECK(has_line(t, "optsnap_batches_waiting 2"));
    CHECK(has_line(t, "optsnap_sweeps_total{outcome=\"overrun\"} 1"));
    CHECK(has_line(t, "optsnap_last_sweep_duration_seconds 1.25"));
    CHECK(has_line(t, "optsnap_freshness_seconds{underlying=\"SPY\"} 12.5"));
    CHECK(has_line(t, "optsnap_underlying_rows_written_total{underlying=\"SPY\"} 100"));
    CHECK(has_line(t, "optsnap_underlying_errors_total{underlying=\"SPY\"} 1"));
    /* rejects per underlying and per sweep, for the "mostly rejected" alert */
    CHECK(has_line(t, "optsnap_underlying_rows_fetched_total{underlying=\"SPY\"} 250"));
    CHECK(has_line(t, "optsnap_underlying_rows_rejected_total{underlying=\"SPY\"} 200"));
    CHECK(has_line(t, "optsnap_underlying_rows_partial_total{underlying=\"SPY\"} 7"));
    CHECK(has_line(t, "optsnap_underlying_last_sweep_rows{underlying=\"SPY\"} 250"));
    CHECK(has_line(t, "optsnap_underlying_last_sweep_rejected{underlying=\"SPY\"} 200"));
    CHECK(has_line(t, "optsnap_underlying_last_sweep_rejected{underlying=\"QQQ\"} 0"));
    CHECK(has_line(t, "# TYPE optsnap_underlying_last_sweep_rejected gauge"));
    CHECK(has_line(t, "optsnap_underlying_delayed{underlying=\"SPY\"} 1"));
    CHECK(has_line(t, "optsnap_underlying_delayed{underlying=\"A\\\"B\\\\C\\nD\"} 0"));
    CHECK(strstr(t, "optsnap_underlying_delayed{underlying=\"QQQ\"}") == NULL); /* unknown: absent */
    CHECK(has_line(t, "optsnap_uncovered_windows 5"));
    CHECK(has_line(t, "optsnap_db_up 1"));
    CHECK(has_line(t, "optsnap_start_time_seconds 1794999000.5"));
    CHECK(has_line(t, "optsnap_build_info{version=\"0.1.0\"} 1"));
    /* freshness is absent, not 0 or -1, for an underlying with nothing committed */
    CHECK(strstr(t, "optsnap_freshness_seconds{underlying=\"QQQ\"}") == NULL);
    CHECK(has_line(t, "optsnap_underlying_rows_written_total{underlying=\"QQQ\"} 0"));
    CHECK(t[strlen(t) - 1] == '\n');
    free(t);
}

static void test_help_and_type_once_per_family(void)
{
    struct metrics_snapshot m;
    fill_snapshot(&m);
    char *t = render(&m);
    int families = 0;
    for (const char *p = t; (p = strstr(p, "# TYPE ")) != NULL; p++) {
        char name[128];
        CHECK(sscanf(p + 7, "%127s", name) == 1);
        char help[160], type[160];
        snprintf(help, sizeof help, "# HELP %s ", name);
        snprintf(type, sizeof type, "# TYPE %s ", name);
        CHECK_INT(count_lines_starting(t, help), 1);
        CHECK_INT(count_lines_starting(t, type), 1);
        families++;
    }
    CHECK(families >= 25);
    CHECK_INT(count_lines_starting(t, "# HELP "), families);
    /* every sample line belongs to a family declared above it */
    for (const char *p = t; *p;) {
        const char *e = strchr(p, '\n');
        CHECK(e != NULL);
        if (!e)
            break;
        if (*p != '#') {
            char name[128];
            size_t n = strcspn(p, "{ ");
            CHECK(n < sizeof name);
            memcpy(name, p, n);
            name[n] = '\0';
            char *suffix = strstr(name, "_bucket");
            if (!suffix)
                suffix = strstr(name, "_sum");
            if (!suffix)
                suffix = strstr(name, "_count");
            if (suffix && strncmp(name, "optsnap_http_request_duration_seconds", 37) == 0)
                *suffix = '\0';
            char type[160];
            snprintf(type, sizeof type, "# TYPE %s ", name);
            const char *decl = strstr(t, type);
            CHECK(decl != NULL && decl < p);
        }
        p = e + 1;
    }
    free(t);
}

static void test_uncovered_unknown_is_omitted(void)
{
    struct metrics_snapshot m;
    fill_snapshot(&m);
    m.uncovered_windows = -1;
    char *t = render(&m);
    CHECK(strstr(t, "optsnap_uncovered_windows") == NULL);
    free(t);
    m.uncovered_windows = 0;
    t = render(&m);
    CHECK(has_line(t, "optsnap_uncovered_windows 0"));
    free(t);
}

static void test_histogram(void)
{
    struct metrics_snapshot m;
    fill_snapshot(&m);
    char *t = render(&m);
    CHECK_INT(count_lines_starting(t, "# TYPE optsnap_http_request_duration_seconds histogram"), 1);
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_bucket{le=\"0.005\"} 1"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_bucket{le=\"0.025\"} 20"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_bucket{le=\"2.5\"} 1000"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_bucket{le=\"10\"} 1008"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_bucket{le=\"+Inf\"} 1012"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_sum 180.5"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_count 1012"));
    CHECK_INT(count_lines_starting(t, "optsnap_http_request_duration_seconds_bucket{"),
              METRICS_LATENCY_BUCKETS);
    free(t);

    /* A racy snapshot (a bucket read before its neighbour was bumped, count
     * ahead of +Inf) still renders as a histogram Prometheus accepts. */
    m.http_latency_buckets[3] = 2;
    m.http_latency_count = 1013;
    t = render(&m);
    unsigned long long prev = 0, v = 0, inf = 0, count = 0;
    int seen = 0;
    for (const char *p = t; (p = strstr(p, "_bucket{le=\"")) != NULL; p++) {
        const char *close = strstr(p, "\"} ");
        CHECK(close != NULL);
        v = strtoull(close + 3, NULL, 10);
        CHECK(v >= prev);
        prev = v;
        if (strncmp(p + 12, "+Inf", 4) == 0)
            inf = v;
        seen++;
    }
    CHECK_INT(seen, METRICS_LATENCY_BUCKETS);
    const char *c = strstr(t, "optsnap_http_request_duration_seconds_count ");
    CHECK(c != NULL);
    if (c)
        count = strtoull(c + 44, NULL, 10);
    CHECK_INT(inf, count);
    CHECK_INT(count, 1013);
    free(t);
}

static void test_label_escaping(void)
{
    struct metrics_snapshot m;
    fill_snapshot(&m);
    char *t = render(&m);
    CHECK(has_line(t, "optsnap_freshness_seconds{underlying=\"A\\\"B\\\\C\\nD\"} 3"));
    CHECK(has_line(t, "optsnap_underlying_rows_written_total{underlying=\"A\\\"B\\\\C\\nD\"} 23"));
    /* the raw newline never reaches the output: no line starts with "D\"" */
    CHECK(count_lines_starting(t, "D") == 0);
    free(t);
}

static void test_number_format(void)
{
    char buf[40];
    metrics_format_double(0.005, buf, sizeof buf);
    CHECK_STR(buf, "0.005");
    metrics_format_double(1.0 / 3.0, buf, sizeof buf);
    CHECK(strtod(buf, NULL) == 1.0 / 3.0);
    metrics_format_double(NAN, buf, sizeof buf);
    CHECK_STR(buf, "NaN");
    metrics_format_double(INFINITY, buf, sizeof buf);
    CHECK_STR(buf, "+Inf");
    metrics_format_double(-INFINITY, buf, sizeof buf);
    CHECK_STR(buf, "-Inf");
    metrics_format_double(1e21, buf, sizeof buf);
    CHECK_STR(buf, "1e+21");

    struct metrics_snapshot m;
    fill_snapshot(&m);
    m.last_sweep_seconds = NAN;
    char *t = render(&m);
    CHECK(has_line(t, "optsnap_last_sweep_duration_seconds NaN"));
    free(t);
}

static void test_sqlstate_counting(void)
{
    struct metrics_sqlstate table[METRICS_MAX_SQLSTATES];
    size_t n = 0;
    memset(table, 0, sizeof table);
    metrics_count_sqlstate(table, &n, "53300");
    CHECK_INT(n, 1);
    CHECK_STR(table[0].sqlstate, "53300");
    CHECK_INT(table[0].count, 1);
    metrics_count_sqlstate(table, &n, "53300");
    CHECK_INT(n, 1);
    CHECK_INT(table[0].count, 2);
    metrics_count_sqlstate(table, &n, NULL);
    CHECK_INT(n, 2);
    CHECK_STR(table[1].sqlstate, "?????");
    metrics_count_sqlstate(table, &n, "XX000-and-more");
    CHECK_INT(n, 3);
    CHECK_STR(table[2].sqlstate, "XX000");

    /* fill the table, then one more new code is dropped, existing ones still count */
    char code[16];
    for (int i = 0; n < METRICS_MAX_SQLSTATES; i++) {
        snprintf(code, sizeof code, "C%04d", i % 10000);
        metrics_count_sqlstate(table, &n, code);
    }
    CHECK_INT(n, METRICS_MAX_SQLSTATES);
    metrics_count_sqlstate(table, &n, "99999");
    CHECK_INT(n, METRICS_MAX_SQLSTATES);
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(table[i].sqlstate, "99999") != 0);
    metrics_count_sqlstate(table, &n, "53300");
    CHECK_INT(table[0].count, 3);
}

static void test_html_escape(void)
{
    struct bytebuf b = {0};
    html_escape_append(&b, "<a href=\"x\">Tom & Jerry's</a>");
    html_escape_append(&b, NULL);
    bytebuf_append(&b, "", 1);
    CHECK_STR(b.data, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    bytebuf_free(&b);
}

static void test_empty_snapshot(void)
{
    struct metrics_snapshot m;
    memset(&m, 0, sizeof m);
    m.uncovered_windows = -1;
    char *t = render(&m);
    CHECK(has_line(t, "optsnap_build_info{version=\"unknown\"} 1"));
    CHECK(has_line(t, "optsnap_http_request_duration_seconds_count 0"));
    CHECK(has_line(t, "optsnap_db_up 0"));
    free(t);
}

int main(void)
{
    RUN(test_exact_lines);
    RUN(test_help_and_type_once_per_family);
    RUN(test_uncovered_unknown_is_omitted);
    RUN(test_histogram);
    RUN(test_label_escaping);
    RUN(test_number_format);
    RUN(test_sqlstate_counting);
    RUN(test_html_escape);
    RUN(test_empty_snapshot);
    TEST_EXIT();
}
