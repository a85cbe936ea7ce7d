/* status_page.c - renders a metrics_snapshot as the self-contained HTML status page at /; pure (libc only). */
#include "optsnap/ops/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMELINE_WIDTH 1000.0
#define TIMELINE_BAR_HEIGHT 22
#define TIMELINE_HEIGHT 40
/* A one-minute gap in a week is a tenth of a pixel: missing spans are drawn at
 * least this wide so a gap is never invisible. */
#define TIMELINE_MIN_MISSING_WIDTH 1.5

#define COLOR_LIVE "#2e9d5b"
#define COLOR_BACKFILL "#3b7dd8"
#define COLOR_MISSING "#d93025"
#define COLOR_CLOSED "#dde1e6"

/* Only for text this file controls: anything from outside goes through
 * html_escape_append. */
__attribute__((format(printf, 2, 3))) static void put_fmt(struct bytebuf *out, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        bytebuf_append(out, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        out->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bytebuf_append(out, big, (size_t)n);
    free(big);
}

static void put_str(struct bytebuf *out, const char *s)
{
    bytebuf_append(out, s, strlen(s));
}

/* 1234567 -> "1,234,567": counts people read at a glance. */
static void fmt_count(uint64_t v, char *buf, size_t size)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < size)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static void put_count(struct bytebuf *out, uint64_t v)
{
    char buf[32];
    fmt_count(v, buf, sizeof buf);
    put_str(out, buf);
}

/* An age or an uptime, two units at most: "42 s", "12 min", "5 h 3 min", "3 d 4 h". */
static void fmt_age(double s, char *buf, size_t size)
{
    if (s != s || s < 0) {
        snprintf(buf, size, "—");
        return;
    }
    if (s < 1) {
        snprintf(buf, size, "<1 s");
    } else if (s < 120) {
        snprintf(buf, size, "%.0f s", s);
    } else if (s < 7200) {
        snprintf(buf, size, "%.0f min", s / 60);
    } else if (s < 172800) {
        long m = (long)(s / 60);
        snprintf(buf, size, "%ld h %ld min", m / 60, m % 60);
    } else {
        long h = (long)(s / 3600);
        snprintf(buf, size, "%ld d %ld h", h / 24, h % 24);
    }
}

static void fmt_seconds(double s, char *buf, size_t size)
{
    if (s != s || s < 0)
        snprintf(buf, size, "—");
    else if (s < 10)
        snprintf(buf, size, "%.2f s", s);
    else if (s < 120)
        snprintf(buf, size, "%.1f s", s);
    else
        fmt_age(s, buf, size);
}

static void fmt_utc(int64_t us, const char *fmt, char *buf, size_t size)
{
    time_t t = (time_t)(us / 1000000);
    if (us < 0 && us % 1000000)
        t--;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, size, fmt, &tm) == 0)
        snprintf(buf, size, "?");
}

/* Names are fixed arrays filled by other modules: never trust their NUL. */
static void copy_name(char *dst, size_t size, const char *src, size_t src_size)
{
    size_t n = strnlen(src, src_size);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *freshness_class(double s)
{
    if (s < 0 || s != s)
        return "none";
    if (s < STATUS_FRESH_SECONDS)
        return "ok";
    if (s < STATUS_STALE_SECONDS)
        return "warn";
    return "bad";
}

static const char STYLE[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "sans-serif;color:#1f2328;background:#f5f6f8}"
    "header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:8px;"
    "padding:14px 28px;background:#fff;border-bottom:1px solid #e3e6ea}"
    "header h1{margin:0;font-size:20px;font-weight:650;letter-spacing:-.01em}"
    "header .ver{margin-left:8px;color:#6a737d;font-size:13px}"
    ".meta{display:flex;flex-wrap:wrap;align-items:center;gap:10px;color:#57606a;font-size:13px}"
    "main{max-width:1240px;margin:0 auto;padding:20px 28px 32px}"
    "h2{font-size:15px;font-weight:650;margin:26px 0 10px;color:#24292f}"
    ".pill{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600}"
    ".pill.ok{background:#e6f4ea;color:#137333}.pill.warn{background:#fef3e0;color:#a35200}"
    ".pill.bad{background:#fce8e6;color:#b3261e}.pill.none{background:#eef0f2;color:#57606a}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}"
    ".card{background:#fff;border:1px solid #e3e6ea;border-radius:10px;padding:12px 14px}"
    ".card .k{color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.04em}"
    ".card .v{font-size:22px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}"
    ".card .s{color:#6a737d;font-size:12px;margin-top:2px}"
    ".card .small{color:#8b949e;font-size:14px;font-weight:500}"
    ".card.warn{border-color:#f4c27a}.card.warn .v{color:#a35200}"
    ".card.bad{border-color:#f1a7a0}.card.bad .v{color:#b3261e}"
    ".meter{height:6px;background:#eef0f2;border-radius:3px;margin-top:8px;overflow:hidden}"
    ".meter span{display:block;height:100%;background:#3b7dd8}"
    ".meter.warn span{background:#e37400}.meter.bad span{background:#d93025}"
    "table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e3e6ea;"
    "border-radius:10px;overflow:hidden}"
    "th,td{padding:8px 12px;text-align:left;border-bottom:1px solid #eef0f2;white-space:nowrap}"
    "th{background:#fafbfc;color:#57606a;font-weight:600;font-size:12px;text-transform:uppercase;"
    "letter-spacing:.03em}"
    "tr:last-child td{border-bottom:0}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "td.name{font-weight:600}"
    ".dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:7px;"
    "vertical-align:baseline}"
    ".dot.ok{background:#1e8e3e}.dot.warn{background:#e37400}.dot.bad{background:#d93025}"
    ".dot.none{background:#c4c9d0}"
    "td.warn{color:#a35200;font-weight:600}td.bad{color:#b3261e;font-weight:600}"
    ".muted{color:#8b949e}"
    ".panel{background:#fff;border:1px solid #e3e6ea;border-radius:10px;padding:14px 16px}"
    ".legend{display:flex;flex-wrap:wrap;gap:16px;color:#57606a;font-size:12px;margin-bottom:10px}"
    ".legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;"
    "vertical-align:-2px}"
    ".tl{display:grid;grid-template-columns:110px 1fr;align-items:start;gap:12px;padding:4px 0}"
    ".tl .name{font-weight:600;padding-top:3px;overflow:hidden;text-overflow:ellipsis;"
    "white-space:nowrap}"
    ".tl svg{width:100%;height:auto;display:block}"
    ".tl svg text{font-size:11px;fill:#6a737d}"
    ".note{color:#a35200;font-size:12px}"
    "footer{color:#8b949e;font-size:12px;text-align:center;padding:0 0 24px}"
    "footer a{color:#57606a}"
    "code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}";

static void card_begin(struct bytebuf *out, const char *cls, const char *key)
{
    put_fmt(out, "<div class=\"card%s%s\"><div class=\"k\">%s</div><div class=\"v\">",
            cls && *cls ? " " : "", cls ? cls : "", key);
}

static void render_header(const struct metrics_snapshot *m, struct bytebuf *out)
{
    char up[48], now[48];
    fmt_age((double)(m->now_us - m->started_us) / 1e6, up, sizeof up);
    fmt_utc(m->now_us, "%Y-%m-%d %H:%M:%S UTC", now, sizeof now);

    size_t stale = 0, known = 0;
    for (size_t i = 0; m->underlyings && i < m->n_underlyings; i++) {
        double f = m->underlyings[i].freshness_s;
        if (f >= 0)
            known++;
        if (f >= STATUS_FRESH_SECONDS)
            stale++;
    }

    put_str(out, "<header><div><h1 style=\"display:inline\">optsnap</h1><span class=\"ver\">");
    html_escape_append(out, m->version ? m->version : "unknown");
    put_str(out, "</span></div><div class=\"meta\">");
    put_fmt(out, "<span>up %s</span><span>%s</span>", up, now);
    put_fmt(out, "<span class=\"pill %s\">database %s</span>", m->db_reachable ? "ok" : "bad",
            m->db_reachable ? "up" : "down");
    if (m->n_underlyings == 0)
        put_str(out, "<span class=\"pill none\">no underlyings</span>");
    else if (known == 0)
        put_str(out, "<span class=\"pill none\">nothing committed yet</span>");
    else if (stale == 0)
        put_fmt(out, "<span class=\"pill ok\">%zu of %zu fresh</span>", known, m->n_underlyings);
    else
        put_fmt(out, "<span class=\"pill %s\">%zu of %zu stale</span>",
                stale * 2 >= m->n_underlyings ? "bad" : "warn", stale, m->n_underlyings);
    put_str(out, "</div></header>\n");
}

static void render_cards(const struct metrics_snapshot *m, struct bytebuf *out)
{
    char a[48], b[48];
    put_str(out, "<section class=\"cards\">\n");

    card_begin(out, "", "Rows written");
    put_count(out, m->rows_written);
    put_str(out, "</div><div class=\"s\">");
    fmt_count(m->rows_fetched, a, sizeof a);
    put_fmt(out, "%s fetched</div></div>\n", a);

    card_begin(out, "", "Unchanged");
    put_count(out, m->rows_unchanged);
    put_str(out, "</div><div class=\"s\">skipped by the upsert, no write</div></div>\n");

    card_begin(out, m->rows_rejected ? "warn" : "", "Rejected");
    put_count(out, m->rows_rejected);
    put_str(out, "</div><div class=\"s\">rows in <code>ingest_rejects</code></div></div>\n");

    double fill = m->queue_max_rows > 0 ? (double)m->queue_rows / (double)m->queue_max_rows : 0;
    if (fill < 0)
        fill = 0;
    if (fill > 1)
        fill = 1;
    const char *qcls = fill >= 0.9 ? "bad" : fill >= 0.6 ? "warn" : "";
    card_begin(out, qcls, "Queue");
    fmt_count(m->queue_rows > 0 ? (uint64_t)m->queue_rows : 0, a, sizeof a);
    fmt_count(m->queue_max_rows > 0 ? (uint64_t)m->queue_max_rows : 0, b, sizeof b);
    put_fmt(out, "%s<span class=\"small\"> / %s</span></div>", a, b);
    put_fmt(out, "<div class=\"meter %s\"><span style=\"width:%.1f%%\"></span></div>", qcls,
            fill * 100);
    put_fmt(out, "<div class=\"s\">rows queued · %d batch%s waiting</div></div>\n",
            m->batches_waiting, m->batches_waiting == 1 ? "" : "es");

    card_begin(out, "", "HTTP in flight");
    put_fmt(out, "%d</div><div class=\"s\">%d waiting</div></div>\n", m->http_in_flight,
            m->http_waiting);

    const char *pcls = m->db_size > 0 && m->db_busy >= m->db_size ? "warn" : "";
    if (m->db_down > 0 || !m->db_reachable)
        pcls = "bad";
    card_begin(out, pcls, "DB pool");
    put_fmt(out, "%d<span class=\"small\"> / %d busy</span></div>",
            m->db_busy, m->db_size);
    put_fmt(out, "<div class=\"s\">%d idle · %d connecting · %d down</div></div>\n", m->db_idle,
            m->db_connecting, m->db_down);

    card_begin(out, m->sweeps_overrun ? "warn" : "", "Last sweep");
    fmt_seconds(m->last_sweep_seconds, a, sizeof a);
    put_str(out, m->sweeps_started ? a : "—");
    put_str(out, "</div><div class=\"s\">");
    fmt_count(m->sweeps_covered, a, sizeof a);
    fmt_count(m->sweeps_incomplete, b, sizeof b);
    put_fmt(out, "%s covered · %s incomplete · %" PRIu64 " overrun</div></div>\n", a, b,
            m->sweeps_overrun);

    card_begin(out, m->uncovered_windows > 0 ? "bad" : "", "Uncovered windows");
    if (m->uncovered_windows < 0) {
        put_str(out, "—</div><div class=\"s\">not checked yet</div></div>\n");
    } else {
        put_count(out, (uint64_t)m->uncovered_windows);
        put_fmt(out, "</div><div class=\"s\">%s</div></div>\n",
                m->uncovered_windows > 0 ? "<code>optsnap repair</code> fills them"
                                         : "every window in session is covered");
    }

    uint64_t http_err = m->http_requests_4xx + m->http_requests_5xx + m->http_transport_errors;
    card_begin(out, m->http_requests_5xx || m->http_transport_errors ? "warn" : "", "HTTP OK (2xx)");
    put_count(out, m->http_requests_2xx);
    fmt_count(m->http_requests_429, a, sizeof a);
    fmt_count(http_err, b, sizeof b);
    put_fmt(out, "</div><div class=\"s\">%s throttled (429) · %s failed</div></div>\n", a, b);

    put_str(out, "</section>\n");
}

static void render_table(const struct metrics_snapshot *m, struct bytebuf *out)
{
    put_str(out, "<h2>Underlyings</h2>\n");
    if (!m->underlyings || m->n_underlyings == 0) {
        put_str(out, "<div class=\"panel muted\">No underlyings in the universe.</div>\n");
        return;
    }
    put_fmt(out, "<table><thead><tr><th>Underlying</th><th>Freshness</th>"
                 "<th>Last covered window</th><th class=\"n\">Sweep time</th>"
                 "<th class=\"n\">Sweeps</th><th class=\"n\">Rows written</th>"
                 "<th class=\"n\">Rejects</th><th class=\"n\">Errors</th>%s</tr></thead><tbody>\n",
            m->lease_holder ? "<th>Lease</th>" : "");
    for (size_t i = 0; i < m->n_underlyings; i++) {
        const struct metrics_underlying *u = &m->underlyings[i];
        char name[sizeof u->name + 1], a[64], b[32];
        copy_name(name, sizeof name, u->name, sizeof u->name);
        put_str(out, "<tr><td class=\"name\">");
        html_escape_append(out, name);
        const char *fc = freshness_class(u->freshness_s);
        fmt_age(u->freshness_s, a, sizeof a);
        put_fmt(out, "</td><td><span class=\"dot %s\"></span>%s</td>", fc, a);
        if (u->last_sweep_start_us > 0) {
            fmt_utc(u->last_sweep_start_us, "%Y-%m-%d %H:%M:%S", a, sizeof a);
            put_fmt(out, "<td>%s <span class=\"muted\">UTC</span></td>", a);
        } else {
            put_str(out, "<td class=\"muted\">—</td>");
        }
        fmt_seconds(u->last_sweep_start_us > 0 ? u->last_sweep_seconds : -1, a, sizeof a);
        put_fmt(out, "<td class=\"n\">%s</td>", a);
        fmt_count(u->sweeps_covered, a, sizeof a);
        fmt_count(u->sweeps_incomplete, b, sizeof b);
        put_fmt(out, "<td class=\"n\">%s%s%s%s</td>", a, u->sweeps_incomplete ? " <span class=\"note\">+" : "",
                u->sweeps_incomplete ? b : "", u->sweeps_incomplete ? " incomplete</span>" : "");
        fmt_count(u->rows_written, a, sizeof a);
        put_fmt(out, "<td class=\"n\">%s</td>", a);
        fmt_count(u->rows_rejected, a, sizeof a);
        put_fmt(out, "<td class=\"n%s\">%s</td>", u->rows_rejected ? " warn" : "", a);
        fmt_count(u->errors, a, sizeof a);
        put_fmt(out, "<td class=\"n%s\">%s</td>", u->errors ? " bad" : "", a);
        if (m->lease_holder && u->lease_held) {
            fmt_utc(u->lease_since_us, "%Y-%m-%d %H:%M:%S", a, sizeof a);
            put_str(out, "<td>");
            html_escape_append(out, m->lease_holder);
            put_fmt(out, " <span class=\"muted\">since %s UTC · epoch %lld</span></td>", a,
                    (long long)u->lease_epoch);
        } else if (m->lease_holder) {
            put_str(out, "<td class=\"muted\">another daemon</td>");
        }
        put_str(out, "</tr>\n");
    }
    put_str(out, "</tbody></table>\n");
}

static const char *state_name(enum coverage_state s)
{
    switch (s) {
    case COVERAGE_LIVE: return "live";
    case COVERAGE_BACKFILL: return "backfill";
    case COVERAGE_CLOSED: return "closed";
    case COVERAGE_MISSING: return "missing";
    }
    return "missing";
}

static const char *state_color(enum coverage_state s)
{
    switch (s) {
    case COVERAGE_LIVE: return COLOR_LIVE;
    case COVERAGE_BACKFILL: return COLOR_BACKFILL;
    case COVERAGE_CLOSED: return COLOR_CLOSED;
    case COVERAGE_MISSING: return COLOR_MISSING;
    }
    return COLOR_MISSING;
}

/* The step between axis labels: the smallest "round" one that gives at most 8. */
static int64_t axis_step_us(int64_t range_us)
{
    static const int64_t steps_s[] = {60,    300,    900,    1800,   3600,    3 * 3600,
                                      6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 28 * 86400};
    for (size_t i = 0; i < sizeof steps_s / sizeof steps_s[0]; i++)
        if (range_us / (steps_s[i] * 1000000) <= 8)
            return steps_s[i] * 1000000;
    return range_us / 8 > 0 ? range_us / 8 : 1;
}

static double x_of(int64_t t, int64_t from, int64_t to)
{
    if (t <= from)
        return 0;
    if (t >= to)
        return TIMELINE_WIDTH;
    return (double)(t - from) * TIMELINE_WIDTH / (double)(to - from);
}

static void render_axis(struct bytebuf *out, int64_t from, int64_t to)
{
    int64_t step = axis_step_us(to - from);
    int64_t t = from / step * step;
    if (t < from)
        t += step;
    for (int guard = 0; t < to && guard < 64; t += step, guard++) {
        double x = x_of(t, from, to);
        char label[32];
        if (t % (86400LL * 1000000) == 0)
            fmt_utc(t, step >= 86400LL * 1000000 ? "%b %d" : "%b %d 00:00", label, sizeof label);
        else
            fmt_utc(t, "%H:%M", label, sizeof label);
        const char *anchor = x < 40 ? "start" : x > TIMELINE_WIDTH - 40 ? "end" : "middle";
        put_fmt(out,
                "<line x1=\"%.2f\" y1=\"0\" x2=\"%.2f\" y2=\"%d\" stroke=\"#1f2328\" "
                "stroke-opacity=\"0.18\"/><text x=\"%.2f\" y=\"%d\" text-anchor=\"%s\">%s</text>",
                x, x, TIMELINE_BAR_HEIGHT + 4, x, TIMELINE_HEIGHT - 3, anchor, label);
    }
}

static void put_rect(struct bytebuf *out, int64_t start, int64_t end, enum coverage_state st,
                     int64_t from, int64_t to)
{
    double x = x_of(start, from, to);
    double w = x_of(end, from, to) - x;
    if (st == COVERAGE_MISSING && w < TIMELINE_MIN_MISSING_WIDTH) {
        double mid = x + w / 2;
        w = TIMELINE_MIN_MISSING_WIDTH;
        x = mid - w / 2;
        if (x < 0)
            x = 0;
        if (x + w > TIMELINE_WIDTH)
            x = TIMELINE_WIDTH - w;
    }
    char a[40], b[40];
    fmt_utc(start, "%Y-%m-%d %H:%M", a, sizeof a);
    fmt_utc(end, "%Y-%m-%d %H:%M", b, sizeof b);
    put_fmt(out,
            "<rect class=\"%s\" x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"%d\" fill=\"%s\">"
            "<title>%s %s – %s UTC</title></rect>",
            state_name(st), x, w, TIMELINE_BAR_HEIGHT, state_color(st), state_name(st), a, b);
}

/* Draws one pass over the spans: adjacent spans of one state become one rect.
 * Missing spans are drawn in a second pass, with their own budget, so a widened
 * gap stays on top and a busy timeline cannot crowd the gaps out. */
static void render_spans(struct bytebuf *out, const struct coverage_span *spans, size_t n,
                           int64_t from, int64_t to, bool missing_pass, size_t budget,
                           size_t *dropped)
{
    size_t drawn = 0;
    size_t i = 0;
    while (i < n) {
        enum coverage_state st = spans[i].state;
        int64_t s = spans[i].start_us, e = spans[i].end_us;
        size_t j = i + 1;
        while (j < n && spans[j].state == st && spans[j].start_us <= e && spans[j].start_us >= s) {
            if (spans[j].end_us > e)
                e = spans[j].end_us;
            j++;
        }
        i = j;
        if ((st == COVERAGE_MISSING) != missing_pass)
            continue;
        if (e <= s || e <= from || s >= to)
            continue; /* empty, backwards, or outside the drawn range */
        if (st != COVERAGE_MISSING && x_of(e, from, to) - x_of(s, from, to) < 0.05)
            continue; /* below anything a screen shows; its neighbours cover it */
        if (drawn >= budget) {
            (*dropped)++;
            continue;
        }
        put_rect(out, s < from ? from : s, e > to ? to : e, st, from, to);
        drawn++;
    }
}

static void render_timelines(const struct metrics_snapshot *m, struct bytebuf *out)
{
    int64_t from = m->timeline_from_us, to = m->timeline_to_us;
    put_str(out, "<h2>Coverage</h2>\n<div class=\"panel\">\n");
    /* to - from must not overflow: every x position divides by it */
    bool sane = to > from && (from >= 0 || to <= INT64_MAX + from);
    if (!m->timelines || !m->underlyings || m->n_underlyings == 0 || !sane) {
        put_str(out, "<div class=\"muted\">No coverage timeline yet.</div></div>\n");
        return;
    }
    char a[48], b[48];
    fmt_utc(from, "%Y-%m-%d %H:%M", a, sizeof a);
    fmt_utc(to, "%Y-%m-%d %H:%M", b, sizeof b);
    put_fmt(out,
            "<div class=\"legend\"><span><i style=\"background:" COLOR_LIVE "\"></i>live</span>"
            "<span><i style=\"background:" COLOR_BACKFILL "\"></i>backfilled</span>"
            "<span><i style=\"background:" COLOR_MISSING "\"></i>missing</span>"
            "<span><i style=\"background:" COLOR_CLOSED "\"></i>closed (outside sessions)</span>"
            "<span><i style=\"background:#fff;border:1px solid #c9ced6\"></i>no data</span>"
            "<span style=\"margin-left:auto\">%s → %s UTC</span></div>\n",
            a, b);
    size_t shown = m->n_underlyings < STATUS_MAX_TIMELINES ? m->n_underlyings : STATUS_MAX_TIMELINES;
    for (size_t i = 0; i < shown; i++) {
        char name[sizeof m->underlyings[i].name + 1];
        copy_name(name, sizeof name, m->underlyings[i].name, sizeof m->underlyings[i].name);
        const struct coverage_span *spans = m->timelines[i];
        size_t n = spans && m->timeline_lengths ? m->timeline_lengths[i] : 0;

        put_str(out, "<div class=\"tl\"><div class=\"name\" title=\"");
        html_escape_append(out, name);
        put_str(out, "\">");
        html_escape_append(out, name);
        put_fmt(out, "</div><div><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %d\" "
                     "role=\"img\" aria-label=\"coverage of ",
                TIMELINE_WIDTH, TIMELINE_HEIGHT);
        html_escape_append(out, name);
        put_fmt(out, "\"><rect x=\"0.5\" y=\"0.5\" width=\"%.0f\" height=\"%d\" fill=\"#fff\" "
                     "stroke=\"#c9ced6\"/>",
                TIMELINE_WIDTH - 1, TIMELINE_BAR_HEIGHT - 1);
        size_t dropped = 0;
        render_spans(out, spans, n, from, to, false, STATUS_MAX_RECTS_PER_TIMELINE / 2, &dropped);
        render_spans(out, spans, n, from, to, true, STATUS_MAX_RECTS_PER_TIMELINE / 2, &dropped);
        render_axis(out, from, to);
        if (m->now_us > from && m->now_us < to)
            put_fmt(out, "<line class=\"now\" x1=\"%.2f\" y1=\"-1\" x2=\"%.2f\" y2=\"%d\" "
                         "stroke=\"#1f2328\" stroke-width=\"1.5\"><title>now</title></line>",
                    x_of(m->now_us, from, to), x_of(m->now_us, from, to), TIMELINE_BAR_HEIGHT + 1);
        put_str(out, "</svg>");
        if (dropped)
            put_fmt(out, "<div class=\"note\">%zu more spans not drawn; see <code>optsnap gaps</code></div>",
                    dropped);
        put_str(out, "</div></div>\n");
    }
    if (shown < m->n_underlyings)
        put_fmt(out, "<div class=\"note\">%zu more underlyings not drawn; see <code>optsnap gaps</code></div>\n",
                m->n_underlyings - shown);
    put_str(out, "</div>\n");
}

static const char *sqlstate_hint(const char *code)
{
    static const struct {
        const char *code, *hint;
    } hints[] = {
        {"XX000", "internal error: see notes/runbook-ingestion-stalled.md"},
        {"53300", "too many connections: the server's max_connections is reached"},
        {"57014", "statement timeout: a statement ran past statement_timeout"},
        {"40P01", "deadlock detected: the batch is retried"},
        {"40001", "serialization failure: the batch is retried"},
        {"08006", "connection failure"},
        {"?????", "no SQLSTATE: connection lost"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
        if (strcmp(hints[i].code, code) == 0)
            return hints[i].hint;
    return "";
}

static void render_db_errors(const struct metrics_snapshot *m, struct bytebuf *out)
{
    put_str(out, "<h2>Database errors</h2>\n");
    size_t n = m->n_db_errors < METRICS_MAX_SQLSTATES ? m->n_db_errors : METRICS_MAX_SQLSTATES;
    if (n == 0) {
        put_fmt(out, "<div class=\"panel muted\">None since start. %" PRIu64 " reconnects.</div>\n",
                m->db_reconnects);
        return;
    }
    put_str(out, "<table><thead><tr><th>SQLSTATE</th><th class=\"n\">Count</th><th>Meaning</th>"
                 "</tr></thead><tbody>\n");
    for (size_t i = 0; i < n; i++) {
        char code[sizeof m->db_errors[i].sqlstate + 1];
        copy_name(code, sizeof code, m->db_errors[i].sqlstate, sizeof m->db_errors[i].sqlstate);
        put_str(out, "<tr><td><code>");
        html_escape_append(out, code);
        put_str(out, "</code></td><td class=\"n\">");
        put_count(out, m->db_errors[i].count);
        put_str(out, "</td><td class=\"muted\">");
        html_escape_append(out, sqlstate_hint(code));
        put_str(out, "</td></tr>\n");
    }
    put_str(out, "</tbody></table>\n");
}

void metrics_render_status_page(const struct metrics_snapshot *m, struct bytebuf *out)
{
    put_str(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta http-equiv=\"refresh\" content=\"10\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
                 "<title>optsnap status</title>\n<style>");
    put_str(out, STYLE);
    put_str(out, "</style>\n</head>\n<body>\n");
    render_header(m, out);
    put_str(out, "<main>\n");
    render_cards(m, out);
    render_table(m, out);
    render_timelines(m, out);
    render_db_errors(m, out);
    put_str(out, "</main>\n<footer>Refreshes every 10 s · <a href=\"/metrics\">/metrics</a> · "
                 "<a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a></footer>\n"
                 "</body>\n</html>\n");
}
