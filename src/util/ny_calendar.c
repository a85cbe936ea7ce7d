/* ny_calendar.c - America/New_York time and the NYSE sessions for the
 * simulator; the holidays come from sql/002_calendar.sql (generated). */
#include "optsnap/util/ny_calendar.h"

#include "optsnap/util/timeutil.h"

#define HOUR_US INT64_C(3600000000)
#define DAY_US (24 * HOUR_US)

static int weekday(int32_t date) /* 0 Sunday .. 6 Saturday */
{
    int w = (int)((date + 4) % 7);
    return w < 0 ? w + 7 : w;
}

/* The n-th Sunday (1-based) of month in year. */
static int32_t nth_sunday(int year, unsigned month, int n)
{
    int32_t first = days_from_civil(year, month, 1);
    return first + (7 - weekday(first)) % 7 + 7 * (n - 1);
}

/* Daylight saving in force at local time `minutes` of date (US rules since 2007). */
static bool dst_at_local(int32_t date, int minutes)
{
    int y;
    unsigned m, d;
    civil_from_days(date, &y, &m, &d);
    int32_t start = nth_sunday(y, 3, 2), end = nth_sunday(y, 11, 1);
    if (date > start && date < end)
        return true;
    if (date == start)
        return minutes >= 2 * 60;
    if (date == end)
        return minutes < 1 * 60; /* 01:00-02:00 happens twice; the first is taken */
    return false;
}

int64_t ny_utc_offset_us(int64_t t_us)
{
    int y;
    unsigned m, d;
    int32_t utc_date = (int32_t)((t_us >= 0 ? t_us : t_us - DAY_US + 1) / DAY_US);
    civil_from_days(utc_date, &y, &m, &d);
    /* DST starts at 07:00 UTC (02:00 EST) and ends at 06:00 UTC (02:00 EDT) */
    int64_t start = (int64_t)nth_sunday(y, 3, 2) * DAY_US + 7 * HOUR_US;
    int64_t end = (int64_t)nth_sunday(y, 11, 1) * DAY_US + 6 * HOUR_US;
    return t_us >= start && t_us < end ? -4 * HOUR_US : -5 * HOUR_US;
}

int32_t ny_local_date(int64_t t_us)
{
    int64_t local = t_us + ny_utc_offset_us(t_us);
    return (int32_t)((local >= 0 ? local : local - DAY_US + 1) / DAY_US);
}

int64_t ny_local_time_us(int32_t date, int minutes)
{
    int64_t offset = dst_at_local(date, minutes) ? -4 * HOUR_US : -5 * HOUR_US;
    return (int64_t)date * DAY_US + (int64_t)minutes * 60000000 - offset;
}

int64_t ny_local_midnight_us(int32_t date) { return ny_local_time_us(date, 0); }

static const struct ny_holiday *holiday_of(int32_t date)
{
    int y;
    unsigned m, d;
    civil_from_days(date, &y, &m, &d);
    for (size_t i = 0; i < ny_nholidays; i++) {
        const struct ny_holiday *h = &ny_holidays[i];
        if (h->year == y && h->month == (int)m && h->day == (int)d)
            return h;
    }
    return NULL;
}

bool ny_is_trading_date(int32_t date)
{
    int w = weekday(date);
    if (w == 0 || w == 6)
        return false;
    const struct ny_holiday *h = holiday_of(date);
    return h == NULL || !h->closed;
}

bool ny_session_bounds(int32_t date, int64_t *open_us, int64_t *close_us)
{
    if (!ny_is_trading_date(date))
        return false;
    const struct ny_holiday *h = holiday_of(date);
    *open_us = ny_local_time_us(date, 9 * 60 + 30);
    *close_us = ny_local_time_us(date, h != NULL ? h->close_minutes : 16 * 60);
    return true;
}
