/* flat_csv.c - the minute-aggregates CSV, one line at a time as bytes arrive. */
#include "optsnap/api/flat_csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_TICKER, C_VOLUME, C_OPEN, C_CLOSE, C_HIGH, C_LOW, C_WINDOW, C_TRANSACTIONS, C_COUNT };
static const char *const col_names[C_COUNT] = {"ticker", "volume", "open", "close",
                                               "high", "low", "window_start", "transactions"};
#define MAX_FIELDS 16

void flat_csv_init(struct flat_csv *p, flat_csv_bar_fn on_bar, flat_csv_reject_fn on_reject, void *user)
{
    memset(p, 0, sizeof *p);
    p->on_bar = on_bar;
    p->on_reject = on_reject;
    p->user = user;
}

/* Splits line (NUL-terminated, modified) at commas. Returns the field count, or -1 past MAX_FIELDS. */
static int split(char *line, char *f[MAX_FIELDS])
{
    int n = 0;
    for (char *s = line;;) {
        if (n == MAX_FIELDS)
            return -1;
        f[n++] = s;
        char *c = strchr(s, ',');
        if (c == NULL)
            return n;
        *c = '\0';
        s = c + 1;
    }
}

static int header(struct flat_csv *p, char *line)
{
    char *f[MAX_FIELDS];
    int n = split(line, f);
    for (int k = 0; k < C_COUNT; k++) {
        p->col[k] = -1;
        for (int i = 0; i < n; i++)
            if (strcmp(f[i], col_names[k]) == 0)
                p->col[k] = i;
        if (p->col[k] < 0) {
            snprintf(p->error, sizeof p->error, "flat file header lacks column %s", col_names[k]);
            return -1;
        }
    }
    p->ncols = n;
    p->header_done = true;
    return 0;
}

static bool num(const char *s, double *out)
{
    if (*s == '\0')
        return false;
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return *end == '\0' && errno == 0 && isfinite(*out);
}

static bool integer(const char *s, long long *out)
{
    if (*s == '\0')
        return false;
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return *end == '\0' && errno == 0;
}

/* Why the fields are not a good bar (NULL when they are); fills *b. */
static const char *bar_of(const struct flat_csv *p, char **f, struct agg_bar *b)
{
    long long ns, n;
    if (f[p->col[C_TICKER]][0] == '\0' || strlen(f[p->col[C_TICKER]]) >= 40)
        return "flat file: bad ticker";
    if (!num(f[p->col[C_VOLUME]], &b->volume) || !num(f[p->col[C_OPEN]], &b->open) ||
        !num(f[p->col[C_CLOSE]], &b->close) || !num(f[p->col[C_HIGH]], &b->high) ||
        !num(f[p->col[C_LOW]], &b->low) || !integer(f[p->col[C_TRANSACTIONS]], &n))
        return "flat file: bad number";
    if (!integer(f[p->col[C_WINDOW]], &ns) || ns < 0 || ns % 1000000 != 0)
        return "flat file: bad window_start";
    if (b->volume < 0 || n < 0 || b->high < b->low || b->open < b->low || b->open > b->high ||
        b->close < b->low || b->close > b->high)
        return "flat file: inconsistent bar";
    b->start_ms = ns / 1000000;
    b->trades = n;
    b->vwap = NAN;
    return NULL;
}

static int reject(struct flat_csv *p, const char *why, const char *text, size_t len)
{
    p->rejects++;
    return p->on_reject ? p->on_reject(p->user, p->line_no, why, text, len) : 0;
}

/* The want callback on the line's first field, remembered while it repeats. */
static bool wanted(struct flat_csv *p, size_t len)
{
    const char *c = memchr(p->line, ',', len);
    size_t n = c ? (size_t)(c - p->line) : len;
    if (n == p->last_first_len && p->last_first_len > 0 && memcmp(p->line, p->last_first, n) == 0)
        return p->last_wanted;
    p->last_wanted = p->want(p->user, p->line, n);
    p->last_first_len = n < sizeof p->last_first ? n : 0;
    memcpy(p->last_first, p->line, p->last_first_len);
    return p->last_wanted;
}

/* One whole line in p->line[0..len). */
static int line_done(struct flat_csv *p)
{
    p->line_no++;
    size_t len = p->len;
    p->len = 0;
    if (len > 0 && p->line[len - 1] == '\r')
        len--;
    p->line[len] = '\0';
    if (p->overlong) {
        p->overlong = false;
        return reject(p, "flat file: line too long", p->line, len);
    }
    if (len == 0)
        return 0; /* an empty line carries nothing */
    if (!p->header_done)
        return header(p, p->line);
    if (p->want != NULL && !wanted(p, len)) {
        p->skipped++;
        return 0;
    }
    if (memchr(p->line, '"', len) != NULL)
        return reject(p, "flat file: quoted field", p->line, len);
    char copy[FLAT_CSV_LINE_MAX + 1], *f[MAX_FIELDS];
    memcpy(copy, p->line, len + 1);
    if (split(copy, f) != p->ncols)
        return reject(p, "flat file: wrong number of columns", p->line, len);
    struct agg_bar b;
    const char *why = bar_of(p, f, &b);
    if (why != NULL)
        return reject(p, why, p->line, len);
    p->bars++;
    return p->on_bar(p->user, f[p->col[C_TICKER]], &b);
}

int flat_csv_feed(struct flat_csv *p, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        size_t room = FLAT_CSV_LINE_MAX - p->len;
        if (take > room) {
            p->overlong = true; /* keep the first bytes for the reject */
        }
        size_t keep = take < room ? take : room;
        memcpy(p->line + p->len, data, keep);
        p->len += keep;
        if (nl == NULL)
            return 0;
        int rc = line_done(p);
        if (rc != 0)
            return rc;
        data = nl + 1;
        n -= take + 1;
    }
    return 0;
}

int flat_csv_finish(struct flat_csv *p)
{
    if (p->len > 0 || p->overlong) {
        int rc = line_done(p);
        if (rc != 0)
            return rc;
    }
    if (!p->header_done) {
        snprintf(p->error, sizeof p->error, "flat file has no header");
        return -1;
    }
    return 0;
}
