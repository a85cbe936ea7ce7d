/* test_flat_csv.c - the flat file's CSV as it streams: the same bars and
 * rejects whatever the chunking (every split point of a small file, and one
 * byte at a time), bad lines handed over and not lost, a huge line bounded,
 * a header without the columns refused. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optsnap/api/flat_csv.h"
#include "test.h"

struct got {
    char text[4096];
    size_t len;
    int bars, rejects;
    long reject_lines[8];
};

static int on_bar(void *user, const char *ticker, const struct agg_bar *b)
{
    struct got *g = user;
    g->bars++;
    g->len += (size_t)snprintf(g->text + g->len, sizeof g->text - g->len, "B %s %.17g %.17g %.17g %.17g %.17g %lld %lld %d\n",
                               ticker, b->volume, b->open, b->close, b->high, b->low, (long long)b->start_ms,
                               (long long)b->trades, isnan(b->vwap) ? 1 : 0);
    return 0;
}

static int on_reject(void *user, long line_no, const char *reason, const char *text, size_t len)
{
    struct got *g = user;
    if (g->rejects < 8)
        g->reject_lines[g->rejects] = line_no;
    g->rejects++;
    g->len += (size_t)snprintf(g->text + g->len, sizeof g->text - g->len, "R %ld %s [%.*s]\n", line_no, reason,
                               (int)(len > 60 ? 60 : len), text);
    return 0;
}

static const char file[] =
    "ticker,volume,open,close,high,low,window_start,transactions\n"
    "O:SPY261120C00500000,12,1.5,1.75,1.8,1.45,1793631600000000000,3\n"
    "\"O:SPY261120C00500000\",1,1,1,1,1,1793631660000000000,1\n"      /* quoted: reject */
    "O:SPY261120C00500000,1,1,1,1\n"                                  /* short: reject */
    "O:SPY261120C00500000,x,1,1,1,1,1793631720000000000,1\n"          /* bad number: reject */
    "O:SPY261120C00500000,3,2.01,2.02,2.05,2,1793631780000000000,2\r\n" /* CRLF is fine */
    "\n"
    "O:QQQ261120P00400000,7,0.05,0.05,0.05,0.05,1793631840000000000,1"; /* no final newline */

static int parse_chunked(const char *data, size_t n, size_t chunk, struct got *g)
{
    struct flat_csv p;
    flat_csv_init(&p, on_bar, on_reject, g);
    for (size_t o = 0; o < n; o += chunk) {
        size_t k = n - o < chunk ? n - o : chunk;
        if (flat_csv_feed(&p, data + o, k) != 0)
            return -1;
    }
    return flat_csv_finish(&p);
}

static void test_every_split_point(void)
{
    size_t n = sizeof file - 1;
    struct got whole = {0};
    CHECK_INT(parse_chunked(file, n, n, &whole), 0);
    CHECK_INT(whole.bars, 3);
    CHECK_INT(whole.rejects, 3);
    CHECK_INT(whole.reject_lines[0], 3);
    CHECK_INT(whole.reject_lines[1], 4);
    CHECK_INT(whole.reject_lines[2], 5);
    CHECK(strstr(whole.text, "B O:SPY261120C00500000 12 1.5 1.75 1.8 1.45 1793631600000 3 1\n") != NULL);
    CHECK(strstr(whole.text, "B O:QQQ261120P00400000 7 0.050000000000000003") != NULL);
    CHECK(strstr(whole.text, "R 3 flat file: quoted field [\"O:SPY261120C00500000\",1,1,1,1,1,") != NULL);
    /* split in two at every byte */
    for (size_t cut = 1; cut < n; cut++) {
        struct got g = {0};
        struct flat_csv p;
        flat_csv_init(&p, on_bar, on_reject, &g);
        CHECK_INT(flat_csv_feed(&p, file, cut), 0);
        CHECK_INT(flat_csv_feed(&p, file + cut, n - cut), 0);
        CHECK_INT(flat_csv_finish(&p), 0);
        CHECK_STR(g.text, whole.text);
    }
    struct got g = {0};
    CHECK_INT(parse_chunked(file, n, 1, &g), 0);
    CHECK_STR(g.text, whole.text);
}

static void test_huge_line_bounded(void)
{
    static char big[200000];
    size_t o = (size_t)snprintf(big, sizeof big, "ticker,volume,open,close,high,low,window_start,transactions\n");
    memset(big + o, 'A', 150000);
    o += 150000;
    o += (size_t)snprintf(big + o, sizeof big - o, "\nO:SPY261120C00500000,1,1,1,1,1,1793631600000000000,1\n");
    struct got g = {0};
    CHECK_INT(parse_chunked(big, o, 4096, &g), 0);
    CHECK_INT(g.rejects, 1);
    CHECK_INT(g.reject_lines[0], 2);
    CHECK(strstr(g.text, "R 2 flat file: line too long [AAAA") != NULL);
    CHECK_INT(g.bars, 1); /* the line after it is read */
    CHECK(sizeof(struct flat_csv) < 2 * FLAT_CSV_LINE_MAX); /* memory: one line */
}

static void test_header(void)
{
    struct got g = {0};
    static const char no_close[] = "ticker,volume,open,high,low,window_start,transactions\nO:X,1,1,1,1,0,1\n";
    CHECK_INT(parse_chunked(no_close, sizeof no_close - 1, 7, &g), -1);
    CHECK_INT(g.bars, 0);
    struct got e = {0};
    CHECK_INT(parse_chunked("", 0, 1, &e), -1);
    /* columns in another order are read by name */
    static const char reordered[] = "window_start,ticker,transactions,open,high,low,close,volume\n"
                                    "1793631600000000000,O:SPY261120C00500000,3,1.5,1.8,1.45,1.75,12\n";
    struct got r = {0};
    CHECK_INT(parse_chunked(reordered, sizeof reordered - 1, 5, &r), 0);
    CHECK(strstr(r.text, "B O:SPY261120C00500000 12 1.5 1.75 1.8 1.45 1793631600000 3 1\n") != NULL);
}

static bool not_qqq(void *user, const char *first, size_t len)
{
    (void)user;
    return !(len >= 5 && memcmp(first, "O:QQQ", 5) == 0);
}

/* Another underlying's lines are skipped unparsed; bad lines still reach the rejects. */
static void test_want_filter(void)
{
    struct got g = {0};
    struct flat_csv p;
    flat_csv_init(&p, on_bar, on_reject, &g);
    p.want = not_qqq;
    CHECK_INT(flat_csv_feed(&p, file, sizeof file - 1), 0);
    CHECK_INT(flat_csv_finish(&p), 0);
    CHECK_INT(g.bars, 2);
    CHECK_INT(g.rejects, 3);
    CHECK_INT(p.skipped, 1);
    CHECK(strstr(g.text, "O:QQQ") == NULL);
}

static void test_inconsistent_bar(void)
{
    static const char f[] = "ticker,volume,open,close,high,low,window_start,transactions\n"
                            "O:SPY261120C00500000,1,1,1,0.5,2,1793631600000000000,1\n" /* high < low */
                            "O:SPY261120C00500000,-1,1,1,1,1,1793631600000000000,1\n"  /* negative volume */
                            "O:SPY261120C00500000,1,1,1,1,1,1793631600000000001,1\n"   /* not a whole ms */
                            "O:SPY261120C00500000,1,nan,1,1,1,1793631600000000000,1\n";
    struct got g = {0};
    CHECK_INT(parse_chunked(f, sizeof f - 1, 3, &g), 0);
    CHECK_INT(g.rejects, 4);
    CHECK_INT(g.bars, 0);
}

int main(void)
{
    RUN(test_every_split_point);
    RUN(test_huge_line_bounded);
    RUN(test_header);
    RUN(test_inconsistent_bar);
    RUN(test_want_filter);
    TEST_EXIT();
}
