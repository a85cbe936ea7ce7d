/* timeutil.h - durations, timestamps and calendar-date arithmetic in UTC.
 * Pure: no I/O library. Time-zone (America/New_York) math lives in SQL. */
#ifndef OPTSNAP_TIMEUTIL_H
#define OPTSNAP_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_MIN (60 * USEC_PER_SEC)
#define USEC_PER_DAY (86400 * USEC_PER_SEC)

/* "250ms", "60s", "5m", "2h", "7d", or a bare number of seconds.
 * Returns 0 and *out_us, or -1 on a malformed or negative value. */
int duration_parse(const char *text, int64_t *out_us) __attribute__((warn_unused_result));

/* "2026-11-02T14:30:00Z", "2026-11-02T14:30:00.123456Z", "2026-11-02T14:30:00+00:00",
 * "2026-11-02 14:30:00" (UTC) or "2026-11-02" (UTC midnight), or "now".
 * Returns 0 and unix epoch microseconds, or -1. */
int timestamp_parse(const char *text, int64_t *out_us) __attribute__((warn_unused_result));

/* A time for --since/--until: a timestamp_parse() text, or a duration_parse()
 * text meaning that long before now_us ("90m", "7d"). Returns 0 or -1. */
int time_or_ago_parse(const char *text, int64_t now_us, int64_t *out_us) __attribute__((warn_unused_result));

/* Writes "2026-11-02T14:30:00.000000Z" (27 chars + NUL); returns buf. */
const char *timestamp_format(char *buf, size_t size, int64_t us);
/* The same without a zero fraction ("2026-11-02T14:30:00Z"), for reports. */
const char *timestamp_format_brief(char *buf, size_t size, int64_t us);

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int32_t days_from_civil(int y, unsigned m, unsigned d);
void civil_from_days(int32_t days, int *y, unsigned *m, unsigned *d);

/* "2023-06-16" -> days; returns 0 or -1. */
int date_parse(const char *text, int32_t *out_days) __attribute__((warn_unused_result));
/* Writes "2023-06-16"; returns buf. */
const char *date_format(char *buf, size_t size, int32_t days);

/* Wall clock, unix epoch microseconds. */
int64_t time_now_us(void);

#endif
