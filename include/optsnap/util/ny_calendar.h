/* ny_calendar.h - the New York market calendar in C, for the simulator
 * (which has no database): America/New_York's UTC offset with US daylight
 * saving (second Sunday of March to first Sunday of November, 02:00 local),
 * and the NYSE sessions, 09:30-16:00 local, closed on holidays, 13:00 on
 * early closes. The holidays are sql/002_calendar.sql's trading_holidays
 * rows, embedded at build time (scripts/embed_holidays.py): the database's
 * calendar and this one read one list. Outside that list's years every
 * weekday is a session. Pure. */
#ifndef OPTSNAP_NY_CALENDAR_H
#define OPTSNAP_NY_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ny_holiday {
    int year, month, day;
    int closed;        /* 1: no session; 0: an early close */
    int close_minutes; /* early close, minutes after local midnight (13:00 = 780) */
};
extern const struct ny_holiday ny_holidays[];
extern const size_t ny_nholidays;
extern const int ny_calendar_valid_from[3], ny_calendar_valid_to[3];

/* America/New_York's offset from UTC at instant t_us (unix us): -5 h or -4 h. */
int64_t ny_utc_offset_us(int64_t t_us);

/* The local calendar date (days since 1970-01-01) of instant t_us. */
int32_t ny_local_date(int64_t t_us);

/* The instant of local midnight starting date (DST never changes at midnight). */
int64_t ny_local_midnight_us(int32_t date);

/* The instant of hh:mm local on date (a time that exists on that date). */
int64_t ny_local_time_us(int32_t date, int minutes);

/* True when date has an NYSE session (a weekday, not a full holiday). */
bool ny_is_trading_date(int32_t date);

/* The session of a trading date: 09:30 to 16:00 local, or to the early
 * close. Returns false (outputs untouched) when date has no session. */
bool ny_session_bounds(int32_t date, int64_t *open_us, int64_t *close_us);

#endif
