/* test_dayblock.c - minute bars -> day-so-far rows: running values, the
 * window's edges, the session's close, and never a bar that has not closed. */
#include <math.h>

#include "optsnap/history/dayblock.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

#define T0 INT64_C(1793631600000000) /* 2026-11-02T14:20:00Z */
#define MIN USEC_PER_MIN

struct sink {
    struct snapshot_row rows[16];
    int n;
};

static int collect(void *user, const struct snapshot_row *r)
{
    struct sink *s = user;
    if (s->n >= 16)
        return -2;
    s->rows[s->n++] = *r;
    return 0;
}

static struct agg_bar bar(int minute, double o, double h, double l, double c, double v, double vw)
{
    return (struct agg_bar){.start_ms = (T0 + minute * MIN) / 1000, .open = o, .high = h, .low = l, .close = c,
                            .volume = v, .vwap = vw, .trades = -1};
}

static struct dayblock_window window(int from_min, int to_min, bool inclusive, int64_t not_after)
{
    return (struct dayblock_window){.day_start_us = T0 - 600 * MIN, .day_end_us = T0 + 840 * MIN,
                                    .from_us = T0 + from_min * MIN, .to_us = T0 + to_min * MIN,
                                    .to_inclusive = inclusive, .resolution_us = MIN, .not_after_us = not_after};
}

static const struct option_contract contract = {.ticker = "O:SPY261120C00500000", .underlying = "SPY",
                                                .contract_type = 'C', .exercise_style = 'A'};

static void test_running_values(void)
{
    struct agg_bar b[3] = {bar(0, 10, 11, 9, 10.5, 100, 10.2), bar(1, 10.5, 12, 10, 11.5, 50, NAN),
                           bar(3, 11.5, 11.6, 8, 9, 50, 9.5)};
    struct dayblock_window w = window(0, 100, false, INT64_MAX);
    struct sink s = {0};
    CHECK_INT(dayblock_build(&contract, b, 3, 9.0, &w, collect, &s), 0);
    CHECK_INT(s.n, 3);
    CHECK_INT(s.rows[0].last_updated_us, T0 + MIN); /* the bar's end */
    CHECK_INT(s.rows[2].last_updated_us, T0 + 4 * MIN);
    CHECK_DBL(s.rows[2].v[SNAP_DAY_OPEN].f, 10);
    CHECK_DBL(s.rows[2].v[SNAP_DAY_HIGH].f, 12);
    CHECK_DBL(s.rows[2].v[SNAP_DAY_LOW].f, 8);
    CHECK_DBL(s.rows[2].v[SNAP_DAY_CLOSE].f, 9);
    CHECK_INT(s.rows[2].v[SNAP_DAY_VOLUME].i, 200);
    /* a bar without vwap counts at its close */
    CHECK_DBL(s.rows[1].v[SNAP_DAY_VWAP].f, (10.2 * 100 + 11.5 * 50) / 150);
    CHECK_DBL(s.rows[2].v[SNAP_DAY_PREVIOUS_CLOSE].f, 9.0);
    CHECK_DBL(s.rows[2].v[SNAP_DAY_CHANGE].f, 0);
    CHECK_DBL(s.rows[1].v[SNAP_DAY_CHANGE].f, 2.5);
    CHECK(s.rows[0].source == ROW_SOURCE_BACKFILL);
    CHECK_INT(s.rows[0].v[SNAP_DAY_TIME].i, T0 - 600 * MIN);
}

/* Bars before the window still count in the running values; rows only inside it. */
static void test_window_edges(void)
{
    struct agg_bar b[4] = {bar(0, 10, 10, 10, 10, 1, 10), bar(1, 10, 20, 10, 15, 1, 15), bar(2, 15, 15, 5, 6, 1, 6),
                           bar(3, 6, 6, 6, 6, 1, 6)};
    struct dayblock_window w = window(2, 3, false, INT64_MAX); /* rows keyed in [T0+2m, T0+3m) */
    struct sink s = {0};
    CHECK_INT(dayblock_build(&contract, b, 4, NAN, &w, collect, &s), 0);
    CHECK_INT(s.n, 1);
    CHECK_INT(s.rows[0].last_updated_us, T0 + 2 * MIN);
    CHECK_DBL(s.rows[0].v[SNAP_DAY_HIGH].f, 20);
    CHECK(!snapshot_row_has(&s.rows[0], SNAP_DAY_PREVIOUS_CLOSE));
    CHECK(!snapshot_row_has(&s.rows[0], SNAP_DAY_CHANGE));
    /* the session's close: a bar ending exactly at to is its last state */
    struct dayblock_window wc = window(2, 3, true, INT64_MAX);
    struct sink sc = {0};
    CHECK_INT(dayblock_build(&contract, b, 4, NAN, &wc, collect, &sc), 0);
    CHECK_INT(sc.n, 2);
}

/* Issue 11: a bar still in progress (ending after the API's now) is never stored. */
static void test_open_bar_not_stored(void)
{
    struct agg_bar b[3] = {bar(0, 1, 1, 1, 1, 1, 1), bar(1, 1, 1, 1, 1, 1, 1), bar(2, 1, 1, 1, 1, 1, 1)};
    struct dayblock_window w = window(0, 100, false, T0 + 2 * MIN);
    struct sink s = {0};
    CHECK_INT(dayblock_build(&contract, b, 3, NAN, &w, collect, &s), 0);
    CHECK_INT(s.n, 2);
    CHECK(s.rows[s.n - 1].last_updated_us <= T0 + 2 * MIN);
}

static void test_bars_out_of_order(void)
{
    struct agg_bar b[2] = {bar(1, 1, 1, 1, 1, 1, 1), bar(0, 1, 1, 1, 1, 1, 1)};
    struct dayblock_window w = window(0, 100, false, INT64_MAX);
    struct sink s = {0};
    CHECK_INT(dayblock_build(&contract, b, 2, NAN, &w, collect, &s), -1);
}

int main(void)
{
    RUN(test_running_values);
    RUN(test_window_edges);
    RUN(test_open_bar_not_stored);
    RUN(test_bars_out_of_order);
    TEST_EXIT();
}
