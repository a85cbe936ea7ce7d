/* timeutil.c - durations, timestamps and civil dates (UTC only). */
#include "optsnap/util/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int duration_parse(const char *text, int64_t *out_us)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (errno || v < 0)
        return -1;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1e6;
    else if (strcmp(end, "ms") == 0)
        mult = 1e3;
    else if (strcmp(end, "us") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60e6;
    else if (strcmp(end, "h") == 0)
        mult = 3600e6;
    else if (strcmp(end, "d") == 0)
        mult = 86400e6;
    else
        return -1;
    double us = v * mult;
    if (us > 9.0e18)
        return -1;
    *out_us = (int64_t)(us + 0.5);
    return 0;
}

/* Howard Hinnant's days_from_civil. */
int32_t days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int32_t)doe - 719468;
}

void civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int32_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int yy = (int)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int parse_digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int date_parse(const char *text, int32_t *out_days)
{
    int y, m, d;
    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return -1;
    if (parse_digits(text, 4, &y) || parse_digits(text + 5, 2, &m) || parse_digits(text + 8, 2, &d))
        return -1;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    *out_days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

const char *date_format(char *buf, size_t size, int32_t days)
{
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02u", y, m, d);
    return buf;
}

int timestamp_parse(const char *text, int64_t *out_us)
{
    if (text == NULL)
        return -1;
    if (strcmp(text, "now") == 0) {
        *out_us = time_now_us();
        return 0;
    }
    char date[11];
    if (strlen(text) < 10)
        return -1;
    memcpy(date, text, 10);
    date[10] = '\0';
    int32_t days;
    if (date_parse(date, &days))
        return -1;
    const char *p = text + 10;
    int64_t us = (int64_t)days * USEC_PER_DAY;
    if (*p == '\0') {
        *out_us = us;
        return 0;
    }
    if (*p != 'T' && *p != ' ')
        return -1;
    p++;
    int hh, mm, ss;
    if (strlen(p) < 8 || p[2] != ':' || p[5] != ':' || parse_digits(p, 2, &hh) ||
        parse_digits(p + 3, 2, &mm) || parse_digits(p + 6, 2, &ss) || hh > 23 || mm > 59 || ss > 60)
        return -1;
    p += 8;
    us += ((int64_t)hh * 3600 + mm * 60 + ss) * USEC_PER_SEC;
    if (*p == '.') {
        p++;
        int64_t frac = 0, scale = 100000;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 6)
                frac += (*p - '0') * scale;
            scale /= 10;
            nd++;
            p++;
        }
        if (nd == 0)
            return -1;
        us += frac;
    }
    if (*p == '\0' || strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
        *out_us = us;
        return 0;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (parse_digits(p + 1, 2, &oh) || parse_digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        int64_t off = ((int64_t)oh * 3600 + om * 60) * USEC_PER_SEC;
        *out_us = *p == '+' ? us - off : us + off;
        return 0;
    }
    return -1;
}

const char *timestamp_format(char *buf, size_t size, int64_t us)
{
    int64_t secs = us / USEC_PER_SEC, frac = us % USEC_PER_SEC;
    if (frac < 0) {
        frac += USEC_PER_SEC;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int y;
    unsigned m, d;
    civil_from_days((int32_t)days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
    return buf;
}

int64_t time_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

const char *timestamp_format_brief(char *buf, size_t size, int64_t us)
{
    timestamp_format(buf, size, us);
    char *frac = strstr(buf, ".000000Z");
    if (frac != NULL)
        memcpy(frac, "Z", 2);
    return buf;
}

int time_or_ago_parse(const char *text, int64_t now_us, int64_t *out_us)
{
    if (timestamp_parse(text, out_us) == 0)
        return 0;
    int64_t d;
    if (duration_parse(text, &d) == 0) {
        *out_us = now_us - d;
        return 0;
    }
    return -1;
}
