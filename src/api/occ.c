/* occ.c - parse and format OCC option symbols ("O:" + root + YYMMDD + C/P + strike*1000). */
#include "optsnap/api/occ.h"

#include <stdio.h>
#include <string.h>

#include "optsnap/util/timeutil.h"

#define OCC_PREFIX_LEN 2  /* "O:" */
#define OCC_SUFFIX_LEN 15 /* YYMMDD + C/P + 8 digits */
#define OCC_ROOT_MAX 6

static int is_root_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.';
}

static int digits_value(const char *s, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int root_valid(const char *root, size_t n)
{
    if (n < 1 || n > OCC_ROOT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_root_char(root[i]))
            return 0;
    return 1;
}

int occ_parse(const char *ticker, struct occ_symbol *out)
{
    if (ticker == NULL || ticker[0] != 'O' || ticker[1] != ':')
        return -1;
    const char *rest = ticker + OCC_PREFIX_LEN;
    size_t n = strnlen(rest, OCC_ROOT_MAX + OCC_SUFFIX_LEN + 1);
    if (n <= OCC_SUFFIX_LEN || n > OCC_ROOT_MAX + OCC_SUFFIX_LEN)
        return -1;
    /* The suffix has a fixed width, so the root is whatever precedes it
     * (roots may end in digits: "AAPL1" after a corporate action). */
    size_t root_len = n - OCC_SUFFIX_LEN;
    if (!root_valid(rest, root_len))
        return -1;
    const char *s = rest + root_len;
    int64_t yy, mm, dd, strike;
    if (digits_value(s, 2, &yy) || digits_value(s + 2, 2, &mm) || digits_value(s + 4, 2, &dd))
        return -1;
    char type = s[6];
    if (type != 'C' && type != 'P')
        return -1;
    if (digits_value(s + 7, 8, &strike))
        return -1;
    if (mm < 1 || mm > 12 || dd < 1 || dd > 31)
        return -1;
    int year = 2000 + (int)yy;
    int32_t days = days_from_civil(year, (unsigned)mm, (unsigned)dd);
    int y2;
    unsigned m2, d2;
    civil_from_days(days, &y2, &m2, &d2);
    if (y2 != year || m2 != (unsigned)mm || d2 != (unsigned)dd) /* Feb 30, Apr 31 ... */
        return -1;
    memcpy(out->root, rest, root_len);
    out->root[root_len] = '\0';
    out->expiration_days = days;
    out->contract_type = type;
    out->strike_milli = strike;
    return 0;
}

int occ_format(char *buf, unsigned long size, const char *root, int32_t expiration_days,
               char contract_type, int64_t strike_milli)
{
    if (buf == NULL || root == NULL || !root_valid(root, strnlen(root, OCC_ROOT_MAX + 1)))
        return -1;
    if ((contract_type != 'C' && contract_type != 'P') || strike_milli < 0 ||
        strike_milli > 99999999)
        return -1;
    int y;
    unsigned m, d;
    civil_from_days(expiration_days, &y, &m, &d);
    if (y < 2000 || y > 2099)
        return -1;
    int n = snprintf(buf, size, "O:%s%02d%02u%02u%c%08lld", root, y - 2000, m, d, contract_type,
                     (long long)strike_milli);
    if (n < 0 || (unsigned long)n >= size)
        return -1;
    return 0;
}
