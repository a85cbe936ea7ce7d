/* schedule.c - market clock, window alignment and session membership. */
#include "optsnap/pipeline/schedule.h"

#include "optsnap/util/array.h"

#include <stdlib.h>
#include <string.h>

#include "optsnap/util/timeutil.h"

int market_clock_parse(struct market_clock *c, const char *spec, double speed, int64_t real_now_us)
{
    if (speed <= 0)
        return -1;
    c->speed = speed;
    c->origin_real_us = real_now_us;
    if (spec == NULL || spec[0] == '\0' || strcmp(spec, "wall") == 0) {
        c->origin_market_us = real_now_us;
        return 0;
    }
    char buf[64];
    const char *at = strchr(spec, '@');
    size_t n = at ? (size_t)(at - spec) : strlen(spec);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, spec, n);
    buf[n] = '\0';
    if (timestamp_parse(buf, &c->origin_market_us))
        return -1;
    if (at) {
        char *end;
        double anchor = strtod(at + 1, &end);
        if (end == at + 1 || *end != '\0' || anchor <= 0)
            return -1;
        c->origin_real_us = (int64_t)(anchor * 1e6);
    }
    return 0;
}

int64_t market_clock_now(const struct market_clock *c, int64_t real_now_us)
{
    return c->origin_market_us + (int64_t)((double)(real_now_us - c->origin_real_us) * c->speed);
}

int64_t market_clock_real_until(const struct market_clock *c, int64_t market_us, int64_t real_now_us)
{
    int64_t market_now = market_clock_now(c, real_now_us);
    return (int64_t)((double)(market_us - market_now) / c->speed);
}

int64_t window_start_of(int64_t t_us, int64_t cadence_us)
{
    int64_t q = t_us / cadence_us;
    if (t_us % cadence_us < 0)
        q--;
    return q * cadence_us;
}

void session_set_init(struct session_set *s, bool always_open)
{
    memset(s, 0, sizeof *s);
    s->always_open = always_open;
}

int session_set_add(struct session_set *s, int64_t open_us, int64_t close_us)
{
    if (close_us <= open_us)
        return -1;
    if (array_reserve((void **)&s->sessions, &s->cap, s->n + 1, sizeof *s->sessions))
        return -1;
    size_t i = s->n;
    while (i > 0 && s->sessions[i - 1].open_us > open_us) {
        s->sessions[i] = s->sessions[i - 1];
        i--;
    }
    s->sessions[i].open_us = open_us;
    s->sessions[i].close_us = close_us;
    s->n++;
    return 0;
}

void session_set_clear(struct session_set *s)
{
    s->n = 0;
    s->loaded_from_us = s->loaded_to_us = 0;
}

void session_set_free(struct session_set *s)
{
    free(s->sessions);
    memset(s, 0, sizeof *s);
}

int session_set_expects(const struct session_set *s, int64_t ws, int64_t cadence_us)
{
    if (s->always_open)
        return 1;
    if (ws < s->loaded_from_us || ws + cadence_us > s->loaded_to_us)
        return -1;
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* last session with open <= ws */
        size_t mid = (lo + hi) / 2;
        if (s->sessions[mid].open_us <= ws)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    const struct session *x = &s->sessions[lo - 1];
    return ws >= x->open_us && ws + cadence_us <= x->close_us;
}
