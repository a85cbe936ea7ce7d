/* Unit tests for the HTML status page: outside text is escaped, one SVG
 * timeline per underlying, a missing span is drawn red exactly where it is.
 * With OPTSNAP_STATUS_PAGE_OUT set, a realistic page is written there for a
 * browser screenshot. */
#include "optsnap/ops/metrics.h"
#include "test.h"

#include <stdbool.h>

#define T0 INT64_C(1795000000000000) /* 2026-11-18 06:26:40 UTC */
#define SEC INT64_C(1000000)

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static char *render(const struct metrics_snapshot *m)
{
    struct bytebuf b = {0};
    metrics_render_status_page(m, &b);
    bytebuf_append(&b, "", 1);
    CHECK(!b.failed);
    return b.data;
}

/* Three underlyings over [T0, T0+1000 s), one pixel per second at the 1000-wide viewBox. */
static struct metrics_underlying small_u[3];
static const struct coverage_span spy_spans[] = {
    {T0, T0 + 250 * SEC, COVERAGE_LIVE},
    {T0 + 250 * SEC, T0 + 500 * SEC, COVERAGE_MISSING},
    {T0 + 500 * SEC, T0 + 700 * SEC, COVERAGE_BACKFILL},
    {T0 + 700 * SEC, T0 + 1000 * SEC, COVERAGE_CLOSED},
};
static const struct coverage_span qqq_spans[] = {
    {T0, T0 + 1000 * SEC, COVERAGE_LIVE},
};
static const struct coverage_span *small_timelines[3];
static size_t small_lengths[3];

static void fill_small(struct metrics_snapshot *m)
{
    memset(m, 0, sizeof *m);
    memset(small_u, 0, sizeof small_u);
    m->now_us = T0 + 1000 * SEC;
    m->started_us = T0 - 3600 * SEC;
    m->version = "0.1.0";
    m->db_reachable = 1;
    m->db_size = 4;
    m->db_busy = 2;
    m->db_idle = 2;
    m->queue_max_rows = 50000;
    m->queue_rows = 1000;
    m->rows_written = 1234567;
    m->uncovered_windows = 3;
    snprintf(small_u[0].name, sizeof small_u[0].name, "SPY");
    small_u[0].freshness_s = 30;
    small_u[0].last_sweep_start_us = T0 + 940 * SEC;
    small_u[0].last_sweep_seconds = 1.5;
    snprintf(small_u[1].name, sizeof small_u[1].name, "QQQ");
    small_u[1].freshness_s = 900;
    /* exactly 16 bytes: the name array may arrive without a NUL */
    memcpy(small_u[2].name, "<script>alert(1)", 16);
    small_u[2].freshness_s = -1;
    small_timelines[0] = spy_spans;
    small_lengths[0] = sizeof spy_spans / sizeof spy_spans[0];
    small_timelines[1] = qqq_spans;
    small_lengths[1] = 1;
    small_timelines[2] = NULL;
    small_lengths[2] = 0;
    m->underlyings = small_u;
    m->n_underlyings = 3;
    m->timelines = small_timelines;
    m->timeline_lengths = small_lengths;
    m->timeline_from_us = T0;
    m->timeline_to_us = T0 + 1000 * SEC;
}

static void test_structure(void)
{
    struct metrics_snapshot m;
    fill_small(&m);
    char *t = render(&m);
    CHECK(strncmp(t, "<!DOCTYPE html>", 15) == 0);
    CHECK_INT(count_of(t, "<html"), 1);
    CHECK_INT(count_of(t, "</html>"), 1);
    CHECK_INT(count_of(t, "<svg"), 3);
    CHECK_INT(count_of(t, "</svg>"), 3);
    CHECK_INT(count_of(t, "<table"), count_of(t, "</table>"));
    CHECK_INT(count_of(t, "<div"), count_of(t, "</div>"));
    CHECK_INT(count_of(t, "<tr"), count_of(t, "</tr>"));
    CHECK_INT(count_of(t, "<td"), count_of(t, "</td>"));
    CHECK(strstr(t, "<meta http-equiv=\"refresh\" content=\"10\">") != NULL);
    /* self-contained: nothing is loaded from elsewhere */
    CHECK(strstr(t, "<link") == NULL);
    CHECK(strstr(t, "src=") == NULL);
    CHECK(strstr(t, "@import") == NULL);
    CHECK(strstr(t, "url(") == NULL);
    CHECK(strstr(t, "1,234,567") != NULL);
    CHECK(strstr(t, "database up") != NULL);
    free(t);
}

static void test_outside_text_is_escaped(void)
{
    struct metrics_snapshot m;
    fill_small(&m);
    metrics_count_sqlstate(m.db_errors, &m.n_db_errors, "<b>\"");
    char *t = render(&m);
    CHECK(strstr(t, "&lt;script&gt;alert(1)") != NULL);
    CHECK(strstr(t, "<script") == NULL);
    CHECK(strstr(t, "<b>") == NULL);
    CHECK(strstr(t, "&lt;b&gt;&quot;") != NULL);
    free(t);
}

/* The n-th <svg>...</svg> of the page, copied; caller frees. */
static char *nth_svg(const char *t, int n)
{
    const char *p = t;
    for (int i = 0; i <= n; i++) {
        p = strstr(p, "<svg");
        if (!p)
            return NULL;
        if (i < n)
            p++;
    }
    const char *e = strstr(p, "</svg>");
    if (!e)
        return NULL;
    return strndup(p, (size_t)(e - p));
}

static void test_missing_span_drawn_where_given(void)
{
    struct metrics_snapshot m;
    fill_small(&m);
    char *t = render(&m);
    char *spy = nth_svg(t, 0), *qqq = nth_svg(t, 1), *script = nth_svg(t, 2);
    CHECK(spy && qqq && script);
    if (spy && qqq && script) {
        CHECK_INT(count_of(spy, "class=\"missing\""), 1);
        /* [250 s, 500 s) of a 1000 s range on a 1000-unit-wide box */
        CHECK(strstr(spy, "<rect class=\"missing\" x=\"250.00\" y=\"0\" width=\"250.00\" height=\"22\" "
                          "fill=\"#d93025\">") != NULL);
        CHECK(strstr(spy, "<rect class=\"live\" x=\"0.00\" y=\"0\" width=\"250.00\"") != NULL);
        CHECK(strstr(spy, "<rect class=\"backfill\" x=\"500.00\" y=\"0\" width=\"200.00\"") != NULL);
        CHECK(strstr(spy, "<rect class=\"closed\" x=\"700.00\" y=\"0\" width=\"300.00\"") != NULL);
        CHECK_INT(count_of(qqq, "class=\"missing\""), 0);
        CHECK_INT(count_of(qqq, "class=\"live\""), 1);
        CHECK_INT(count_of(script, "<rect class="), 0);
    }
    free(spy);
    free(qqq);
    free(script);
    free(t);
}

static void test_tiny_gap_stays_visible_and_spans_merge(void)
{
    /* a day of one-minute live windows with one missing minute in the middle */
    enum { N = 1440 };
    static struct coverage_span spans[N];
    for (int i = 0; i < N; i++) {
        spans[i].start_us = T0 + (int64_t)i * 60 * SEC;
        spans[i].end_us = spans[i].start_us + 60 * SEC;
        spans[i].state = i == 720 ? COVERAGE_MISSING : COVERAGE_LIVE;
    }
    struct metrics_snapshot m;
    fill_small(&m);
    const struct coverage_span *tl[1] = {spans};
    size_t len[1] = {N};
    m.n_underlyings = 1;
    m.timelines = tl;
    m.timeline_lengths = len;
    m.timeline_to_us = T0 + (int64_t)N * 60 * SEC;
    char *t = render(&m);
    char *svg = nth_svg(t, 0);
    CHECK(svg != NULL);
    if (svg) {
        CHECK_INT(count_of(svg, "class=\"live\""), 2); /* before and after the gap */
        CHECK_INT(count_of(svg, "class=\"missing\""), 1);
        const char *r = strstr(svg, "class=\"missing\"");
        double x = -1, w = -1;
        CHECK(r && sscanf(r, "class=\"missing\" x=\"%lf\" y=\"0\" width=\"%lf\"", &x, &w) == 2);
        CHECK(w >= 1.0);                          /* 0.69 units widened to be seen */
        CHECK(x <= 500.0 && x + w >= 500.69);     /* and still covering where it is */
    }
    free(svg);
    free(t);
}

static void test_rect_cap(void)
{
    enum { N = 20000 };
    struct coverage_span *spans = calloc(N, sizeof *spans);
    CHECK(spans != NULL);
    if (!spans)
        return;
    for (int i = 0; i < N; i++) {
        spans[i].start_us = T0 + (int64_t)i * 60 * SEC;
        spans[i].end_us = spans[i].start_us + 60 * SEC;
        spans[i].state = i % 2 ? COVERAGE_MISSING : COVERAGE_LIVE;
    }
    struct metrics_snapshot m;
    fill_small(&m);
    const struct coverage_span *tl[1] = {spans};
    size_t len[1] = {N};
    m.n_underlyings = 1;
    m.timelines = tl;
    m.timeline_lengths = len;
    m.timeline_to_us = T0 + (int64_t)N * 60 * SEC;
    char *t = render(&m);
    CHECK(count_of(t, "<rect class=") <= STATUS_MAX_RECTS_PER_TIMELINE);
    CHECK(strstr(t, "more spans not drawn") != NULL);
    CHECK(strlen(t) < 2000000);
    free(t);
    free(spans);
}

static void test_timeline_count_cap(void)
{
    enum { N = STATUS_MAX_TIMELINES + 50 };
    static struct metrics_underlying u[N];
    static const struct coverage_span *tl[N];
    static size_t len[N];
    for (int i = 0; i < N; i++) {
        snprintf(u[i].name, sizeof u[i].name, "U%d", i);
        u[i].freshness_s = 1;
        tl[i] = qqq_spans;
        len[i] = 1;
    }
    struct metrics_snapshot m;
    fill_small(&m);
    m.underlyings = u;
    m.n_underlyings = N;
    m.timelines = tl;
    m.timeline_lengths = len;
    char *t = render(&m);
    CHECK_INT(count_of(t, "<svg"), STATUS_MAX_TIMELINES);
    CHECK(strstr(t, "50 more underlyings not drawn") != NULL);
    CHECK(strstr(t, ">U249</td>") != NULL); /* the table still lists every one */
    free(t);
}

static void test_empty_and_hostile_snapshots(void)
{
    struct metrics_snapshot m;
    memset(&m, 0, sizeof m);
    char *t = render(&m);
    CHECK_INT(count_of(t, "</html>"), 1);
    CHECK_INT(count_of(t, "<svg"), 0);
    CHECK(strstr(t, "database down") != NULL);
    free(t);

    fill_small(&m);
    m.timeline_from_us = INT64_MIN; /* a range whose length overflows */
    m.timeline_to_us = INT64_MAX;
    t = render(&m);
    CHECK_INT(count_of(t, "<svg"), 0);
    free(t);
    m.timeline_from_us = T0;
    m.timeline_to_us = m.timeline_from_us; /* empty range: no division by zero */
    m.n_db_errors = 1000;                  /* more than the table holds */
    m.last_sweep_seconds = NAN;
    small_u[0].freshness_s = NAN;
    t = render(&m);
    CHECK_INT(count_of(t, "<svg"), 0);
    CHECK_INT(count_of(t, "</html>"), 1);
    free(t);
}

/* A realistic page: three days, US sessions (14:30-21:00 UTC), one-minute windows. */
static void write_demo_page(const char *path)
{
    enum { NU = 6, DAYS = 3 };
    static const char *names[NU] = {"SPY", "QQQ", "AAPL", "TSLA", "IWM", "<script>alert(1)</script>"};
    static struct metrics_underlying u[NU];
    static struct coverage_span spans[NU][DAYS * 1440 / 10 * 10];
    const struct coverage_span *tl[NU];
    size_t len[NU];
    int64_t day0 = T0 / (86400 * SEC) * (86400 * SEC) - 2 * 86400 * SEC; /* midnight */
    int64_t now = day0 + 2 * 86400 * SEC + (20 * 3600 + 41 * 60) * SEC;  /* 20:41 UTC, day 3 */
    for (int k = 0; k < NU; k++) {
        memset(&u[k], 0, sizeof u[k]);
        snprintf(u[k].name, sizeof u[k].name, "%s", names[k]);
        u[k].freshness_s = k == 3 ? 260 : k == 4 ? 1900 : k == 5 ? -1 : 8 + 5 * k;
        u[k].last_sweep_start_us = now - (k == 4 ? 1920 : 60) * SEC;
        u[k].last_sweep_seconds = 0.8 + 0.31 * k;
        u[k].rows_written = 1500000 / (k + 1);
        u[k].rows_rejected = k == 2 ? 14 : 0;
        u[k].errors = k == 4 ? 3 : 0;
        u[k].sweeps_covered = 900 - k;
        u[k].sweeps_incomplete = k == 4 ? 2 : 0;
        size_t n = 0;
        for (int64_t t = day0; t < now && n < sizeof spans[k] / sizeof spans[k][0]; t += 60 * SEC) {
            int64_t sod = (t - day0) % (86400 * SEC) / SEC;
            int day = (int)((t - day0) / (86400 * SEC));
            enum coverage_state st = COVERAGE_CLOSED;
            if (sod >= 14 * 3600 + 30 * 60 && sod < 21 * 3600) {
                st = COVERAGE_LIVE;
                if (day == 0 && sod < 17 * 3600)
                    st = COVERAGE_BACKFILL; /* repaired after a morning outage */
                if (k == 0 && day == 1 && sod >= 18 * 3600 && sod < 18 * 3600 + 40 * 60)
                    st = COVERAGE_MISSING; /* the gap the screenshot must show */
                if (k == 2 && day == 2 && sod == 15 * 3600)
                    st = COVERAGE_MISSING; /* one missing minute */
                if (k == 4 && day == 2 && sod >= 20 * 3600 + 9 * 60)
                    st = COVERAGE_MISSING; /* stalled */
            }
            spans[k][n].start_us = t;
            spans[k][n].end_us = t + 60 * SEC;
            spans[k][n].state = st;
            n++;
        }
        tl[k] = spans[k];
        len[k] = k == 5 ? 0 : n;
    }
    struct metrics_snapshot m;
    memset(&m, 0, sizeof m);
    m.now_us = now;
    m.started_us = now - (2 * 86400 + 5 * 3600 + 12 * 60) * SEC;
    m.version = "0.1.0";
    m.http_requests_2xx = 431877;
    m.http_requests_4xx = 12;
    m.http_requests_429 = 240;
    m.http_requests_5xx = 31;
    m.http_transport_errors = 4;
    m.http_in_flight = 38;
    m.http_waiting = 3;
    m.rows_fetched = 12877021;
    m.rows_written = 3120455;
    m.rows_unchanged = 9756552;
    m.rows_rejected = 14;
    m.db_busy = 3;
    m.db_idle = 1;
    m.db_size = 4;
    m.db_reconnects = 1;
    metrics_count_sqlstate(m.db_errors, &m.n_db_errors, "57014");
    metrics_count_sqlstate(m.db_errors, &m.n_db_errors, "40P01");
    metrics_count_sqlstate(m.db_errors, &m.n_db_errors, "40P01");
    m.queue_rows = 18250;
    m.queue_max_rows = 50000;
    m.batches_waiting = 1;
    m.sweeps_started = 4510;
    m.sweeps_covered = 4490;
    m.sweeps_incomplete = 18;
    m.sweeps_overrun = 2;
    m.last_sweep_seconds = 2.37;
    m.uncovered_windows = 71;
    m.db_reachable = 1;
    m.underlyings = u;
    m.n_underlyings = NU;
    m.timelines = tl;
    m.timeline_lengths = len;
    m.timeline_from_us = day0;
    m.timeline_to_us = day0 + 3 * 86400 * SEC;
    char *t = render(&m);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(t, f);
        fclose(f);
        printf("status page written to %s (%zu bytes)\n", path, strlen(t));
    }
    CHECK(strlen(t) < 200000); /* per-minute spans merge into a few rects */
    free(t);
}

static void test_demo_page(void)
{
    const char *out = getenv("OPTSNAP_STATUS_PAGE_OUT");
    char path[512];
    snprintf(path, sizeof path, "%s", out && *out ? out : "/dev/null");
    write_demo_page(path);
}

int main(void)
{
    RUN(test_structure);
    RUN(test_outside_text_is_escaped);
    RUN(test_missing_span_drawn_where_given);
    RUN(test_tiny_gap_stays_visible_and_spans_merge);
    RUN(test_rect_cap);
    RUN(test_timeline_count_cap);
    RUN(test_empty_and_hostile_snapshots);
    RUN(test_demo_page);
    TEST_EXIT();
}
