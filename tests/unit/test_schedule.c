/* Unit tests for the scheduler's pure parts: clock, windows, sessions. */
#include "optsnap/pipeline/schedule.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

static void test_clock(void)
{
    struct market_clock c;
    CHECK(market_clock_parse(&c, "wall", 1, 1000) == 0);
    CHECK_INT(market_clock_now(&c, 5000), 5000);
    int64_t t0;
    CHECK(timestamp_parse("2026-11-02T14:30:00Z", &t0) == 0);
    CHECK(market_clock_parse(&c, "2026-11-02T14:30:00Z", 60, 1000000) == 0);
    CHECK_INT(market_clock_now(&c, 2000000), t0 + 60 * USEC_PER_SEC);
    CHECK_INT(market_clock_real_until(&c, t0 + 120 * USEC_PER_SEC, 1000000), 2 * USEC_PER_SEC);
    CHECK(market_clock_parse(&c, "2026-11-02T14:30:00Z@1700000000", 10, 1700000005000000) == 0);
    CHECK_INT(market_clock_now(&c, 1700000005000000), t0 + 50 * USEC_PER_SEC);
    CHECK(market_clock_parse(&c, "2026-11-02T14:30:00Z@x", 10, 0) == -1);
    CHECK(market_clock_parse(&c, "soon", 1, 0) == -1);
    CHECK(market_clock_parse(&c, "wall", 0, 0) == -1);
}

static void test_windows(void)
{
    CHECK_INT(window_start_of(125 * USEC_PER_SEC, 60 * USEC_PER_SEC), 120 * USEC_PER_SEC);
    CHECK_INT(window_start_of(120 * USEC_PER_SEC, 60 * USEC_PER_SEC), 120 * USEC_PER_SEC);
    CHECK_INT(window_start_of(-1, 60 * USEC_PER_SEC), -60 * USEC_PER_SEC);
}

static void test_sessions(void)
{
    struct session_set s;
    session_set_init(&s, false);
    int64_t d1o, d1c, d2o, d2c;
    CHECK(timestamp_parse("2026-11-02T14:30:00Z", &d1o) == 0);
    CHECK(timestamp_parse("2026-11-02T21:00:00Z", &d1c) == 0);
    CHECK(timestamp_parse("2026-11-27T14:30:00Z", &d2o) == 0);
    CHECK(timestamp_parse("2026-11-27T18:00:00Z", &d2c) == 0); /* early close */
    CHECK(session_set_add(&s, d2o, d2c) == 0);
    CHECK(session_set_add(&s, d1o, d1c) == 0); /* out of order: kept sorted */
    s.loaded_from_us = d1o - USEC_PER_DAY;
    s.loaded_to_us = d2c + USEC_PER_DAY;
    int64_t m = 60 * USEC_PER_SEC;
    CHECK_INT(session_set_expects(&s, d1o, m), 1);
    CHECK_INT(session_set_expects(&s, d1o - m, m), 0);
    CHECK_INT(session_set_expects(&s, d1c - m, m), 1);
    CHECK_INT(session_set_expects(&s, d1c, m), 0);
    CHECK_INT(session_set_expects(&s, d2c - m, m), 1);
    CHECK_INT(session_set_expects(&s, d2c, m), 0);                 /* after the early close */
    CHECK_INT(session_set_expects(&s, d1o + USEC_PER_DAY, m), 0);  /* a day with no session */
    CHECK_INT(session_set_expects(&s, d2c + 2 * USEC_PER_DAY, m), -1); /* not loaded */
    CHECK(session_set_add(&s, 5, 5) == -1);
    session_set_free(&s);
    session_set_init(&s, true);
    CHECK_INT(session_set_expects(&s, 12345, m), 1);
    session_set_free(&s);
}

int main(void)
{
    RUN(test_clock);
    RUN(test_windows);
    RUN(test_sessions);
    TEST_EXIT();
}
