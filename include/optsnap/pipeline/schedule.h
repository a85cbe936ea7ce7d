/* schedule.h - the scheduler's pure parts: the (possibly accelerated) market
 * clock, cadence windows aligned to it, and the trading sessions they must
 * fall in. Sessions come from SQL (time-zone math lives there). Pure. */
#ifndef OPTSNAP_SCHEDULE_H
#define OPTSNAP_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* market_now = origin_market + (real_now - origin_real) * speed */
struct market_clock {
    int64_t origin_market_us;
    int64_t origin_real_us;
    double speed;
};

/* "wall" (speed 1, market = real), "2026-11-02T14:30:00Z" (anchored at
 * real_now) or "2026-11-02T14:30:00Z@1700000000" (anchored at that real unix
 * second, so several processes share one accelerated clock). */
int market_clock_parse(struct market_clock *c, const char *spec, double speed, int64_t real_now_us)
    __attribute__((warn_unused_result));
int64_t market_clock_now(const struct market_clock *c, int64_t real_now_us);
/* Real microseconds until market time t (<= 0 when already past). */
int64_t market_clock_real_until(const struct market_clock *c, int64_t market_us, int64_t real_now_us);

/* Start of the window holding t: floor(t / cadence) * cadence. */
int64_t window_start_of(int64_t t_us, int64_t cadence_us);

struct session {
    int64_t open_us, close_us; /* [open, close) */
};

struct session_set {
    bool always_open;
    struct session *sessions; /* sorted by open_us, malloc'd */
    size_t n, cap;
    int64_t loaded_from_us, loaded_to_us; /* the range the set is known for */
};

void session_set_init(struct session_set *s, bool always_open);
int session_set_add(struct session_set *s, int64_t open_us, int64_t close_us)
    __attribute__((warn_unused_result));
void session_set_clear(struct session_set *s);
void session_set_free(struct session_set *s);

/* 1 when the window [start, start+cadence) lies inside a session, 0 when not,
 * -1 when the set does not know that time (not loaded). */
int session_set_expects(const struct session_set *s, int64_t window_start_us, int64_t cadence_us);

#endif
