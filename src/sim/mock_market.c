/* mock_market.c - the deterministic simulated options market: universe, tape, snapshots, pages. */
#include "optsnap/sim/mock_market.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/occ.h"
#include "optsnap/api/roots.h"
#include "optsnap/util/ny_calendar.h"
#include "optsnap/util/timeutil.h"

#define MM_MAX_TRADES_PER_SESSION 20000
#define MM_MAX_QUOTES_PER_SESSION 50000
#define MM_RATE 0.04           /* risk-free rate of the pricing model */
#define MM_YEAR_US (365.0 * 86400e6)
#define MM_MINUTE_US INT64_C(60000000)
#define MM_HOUR_US (60 * MM_MINUTE_US)

struct bar_acc {
    int64_t start_ms;
    double o, h, l, c, v, pv;
    int64_t n;
};

#define MM_MEMO_SLOTS 65536 /* ~7 MiB */
#define MM_MEMO_MIN_TRADES 48

/* The finished minute bars of a day so far, folded into its day block. */
struct day_fold {
    double open, high, low, close, vsum, vwv;
    int nbars;
};

struct mm_day_memo {
    uint64_t key;
    int32_t date;
    int k; /* trades consumed */
    struct bar_acc a; /* the open bar */
    struct day_fold fold;
};


/* ================= buffer ================= */

void mm_buf_free(struct mm_buf *b) { bytebuf_free(&b->bytes); }

void mm_buf_add(struct mm_buf *b, const char *s, size_t n)
{
    bytebuf_append(&b->bytes, s, n);
    if (!b->bytes.failed) /* bytebuf_reserve keeps a spare byte for the NUL */
        b->bytes.data[b->bytes.len] = '\0';
}

void mm_buf_puts(struct mm_buf *b, const char *s) { mm_buf_add(b, s, strlen(s)); }

static size_t u64_digits(uint64_t v, char *out)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void mm_buf_int(struct mm_buf *b, int64_t v)
{
    char s[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        s[n++] = '-';
        u = -u;
    }
    n += u64_digits(u, s + n);
    mm_buf_add(b, s, n);
}

static const double pow10_table[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};

static double round_dec(double v, int decimals)
{
    double p = pow10_table[decimals];
    return round(v * p) / p;
}

void mm_buf_fixed(struct mm_buf *b, double v, int decimals)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > 10)
        decimals = 10;
    double scaled = round(v * pow10_table[decimals]);
    if (!isfinite(scaled) || fabs(scaled) >= 9.0e15) {
        mm_buf_double(b, v);
        return;
    }
    int64_t k = (int64_t)scaled;
    char s[48];
    size_t n = 0;
    uint64_t u = (uint64_t)(k < 0 ? -k : k);
    if (k < 0)
        s[n++] = '-';
    uint64_t div = (uint64_t)pow10_table[decimals];
    uint64_t ip = u / div, fp = u % div;
    n += u64_digits(ip, s + n);
    if (fp) {
        int d = decimals;
        while (fp % 10 == 0) {
            fp /= 10;
            d--;
        }
        s[n++] = '.';
        char digits[16];
        for (int i = d - 1; i >= 0; i--) {
            digits[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        memcpy(s + n, digits, (size_t)d);
        n += (size_t)d;
    }
    mm_buf_add(b, s, n);
}

void mm_buf_double(struct mm_buf *b, double v)
{
    char s[40];
    if (!isfinite(v))
        v = 0;
    if (v == floor(v) && fabs(v) < 9.0e15) {
        mm_buf_int(b, (int64_t)v);
        return;
    }
    int n = snprintf(s, sizeof s, "%.15g", v);
    if (strtod(s, NULL) != v)
        n = snprintf(s, sizeof s, "%.17g", v);
    mm_buf_add(b, s, (size_t)n);
}

void mm_buf_str(struct mm_buf *b, const char *s)
{
    mm_buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            mm_buf_add(b, e, 2);
        } else if (ch < 0x20) {
            char e[8];
            int n = snprintf(e, sizeof e, "\\u%04x", ch);
            mm_buf_add(b, e, (size_t)n);
        } else {
            mm_buf_add(b, (const char *)p, 1);
        }
    }
    mm_buf_add(b, "\"", 1);
}

char *mm_buf_take(struct mm_buf *b, size_t *len) { return bytebuf_take(&b->bytes, len); }

/* ================= randomness ================= */

static inline uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t mm_hash2(uint64_t a, uint64_t b) { return mix64(a ^ mix64(b ^ 0x632be59bd9b4e019ULL)); }

/* ================= universe ================= */

static const char *const known_underlyings[] = {
    "SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "META", "GOOGL", "TSLA",
    "AMD", "NFLX", "DIA", "XLF", "GLD", "TLT", "SMH", "BAC", "JPM", "INTC",
};
#define NKNOWN (sizeof known_underlyings / sizeof known_underlyings[0])

static int cmp_underlying(const void *a, const void *b)
{
    return strcmp(((const struct mm_underlying *)a)->name, ((const struct mm_underlying *)b)->name);
}

static bool root_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 6)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static void synthetic_name(size_t i, char out[8])
{
    /* 3 letters, "AAA".."ZZZ", then 4 letters. */
    size_t base = 26 * 26 * 26;
    if (i < base) {
        out[0] = (char)('A' + i / 676);
        out[1] = (char)('A' + i / 26 % 26);
        out[2] = (char)('A' + i % 26);
        out[3] = '\0';
    } else {
        i -= base;
        out[0] = (char)('A' + i / 17576 % 26);
        out[1] = (char)('A' + i / 676 % 26);
        out[2] = (char)('A' + i / 26 % 26);
        out[3] = (char)('A' + i % 26);
        out[4] = '\0';
    }
}

static int64_t nice_step_milli(double raw)
{
    static const int64_t steps[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if ((double)steps[i] >= raw * 1000.0)
            return steps[i];
    return 1000000;
}

static void underlying_setup(struct mock_market *m, struct mm_underlying *u)
{
    uint64_t h = 0;
    for (const char *p = u->name; *p; p++)
        h = mm_hash2(h, (uint64_t)(unsigned char)*p);
    h = mm_hash2(h, m->seed);
    u->base_price = round_dec(20.0 * exp(mm_unit(mm_hash2(h, 1)) * log(30.0)), 2);
    u->base_vol = 0.15 + 0.45 * mm_unit(mm_hash2(h, 2));
    u->strike_step_milli = nice_step_milli(u->base_price / m->nstrikes);
    int64_t centre = (int64_t)llround(u->base_price * 1000.0);
    int64_t k0 = (centre - u->strike_step_milli * m->nstrikes / 2) / u->strike_step_milli;
    if (k0 < 1)
        k0 = 1;
    u->strike0_milli = k0 * u->strike_step_milli;
}

/* The expiries x strikes grid (two types each) that holds at most `contracts` per underlying. */
static void grid_size(struct mock_market *m, int contracts)
{
    m->nexpiries = contracts <= 40 ? 1 : contracts / 400;
    if (m->nexpiries < 2 && contracts > 40)
        m->nexpiries = 2;
    if (m->nexpiries > MM_MAX_EXPIRIES)
        m->nexpiries = MM_MAX_EXPIRIES;
    m->nstrikes = contracts / (2 * m->nexpiries);
    if (m->nstrikes < 1)
        m->nstrikes = 1;
}

/* --underlyings N: the known names first, then synthetic ones that are not among them. */
static int underlyings_from_count(struct mock_market *m, const char *spec, char *err, size_t err_size)
{
    long n = strtol(spec, NULL, 10);
    if (n < 1 || n > MM_MAX_UNDERLYINGS) {
        snprintf(err, err_size, "--underlyings count must be 1..%d", MM_MAX_UNDERLYINGS);
        return -1;
    }
    m->underlyings = calloc((size_t)n, sizeof *m->underlyings);
    if (!m->underlyings) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    size_t got = 0, syn = 0;
    for (; got < (size_t)n && got < NKNOWN; got++)
        snprintf(m->underlyings[got].name, OPTSNAP_UNDERLYING_MAX, "%s", known_underlyings[got]);
    while (got < (size_t)n) {
        char name[8];
        synthetic_name(syn++, name);
        bool clash = false;
        for (size_t k = 0; k < NKNOWN; k++)
            if (strcmp(name, known_underlyings[k]) == 0)
                clash = true;
        if (!clash)
            snprintf(m->underlyings[got++].name, OPTSNAP_UNDERLYING_MAX, "%s", name);
    }
    m->nunderlyings = (size_t)n;
    return 0;
}

/* One name of a --underlyings list (len bytes at p) into name: 0, or -1 with err said. */
static int underlying_name_take(const char *p, size_t len, char name[OPTSNAP_UNDERLYING_MAX], char *err,
                                size_t err_size)
{
    if (len == 0 || len >= OPTSNAP_UNDERLYING_MAX) {
        snprintf(err, err_size, "bad underlying in list");
        return -1;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    /* an index ("I:SPX") lists its options under its roots (SPX, SPXW) */
    bool index_ok = strncmp(name, "I:", 2) == 0 && root_ok(name + 2) && strlen(name + 2) <= 5;
    if (!root_ok(name) && !index_ok) {
        snprintf(err, err_size, "bad underlying '%s' (1-6 of A-Z 0-9, or I: and 1-5)", name);
        return -1;
    }
    return 0;
}

/* --underlyings A,B,...: each name once, in the order given (sorted later). */
static int underlyings_from_list(struct mock_market *m, const char *spec, char *err, size_t err_size)
{
    size_t n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == ',';
    if (n > MM_MAX_UNDERLYINGS) {
        snprintf(err, err_size, "too many underlyings");
        return -1;
    }
    m->underlyings = calloc(n, sizeof *m->underlyings);
    if (!m->underlyings) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    const char *p = spec;
    size_t got = 0;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[OPTSNAP_UNDERLYING_MAX];
        if (underlying_name_take(p, len, name, err, err_size) != 0) {
            mock_market_free(m);
            return -1;
        }
        bool dup = false;
        for (size_t k = 0; k < got; k++)
            dup |= strcmp(m->underlyings[k].name, name) == 0;
        if (!dup)
            memcpy(m->underlyings[got++].name, name, len + 1);
        p += len;
        if (*p == ',')
            p++;
    }
    m->nunderlyings = got;
    if (got == 0) {
        snprintf(err, err_size, "empty underlying list");
        mock_market_free(m);
        return -1;
    }
    return 0;
}

int mock_market_init(struct mock_market *m, uint64_t seed, const char *spec, int contracts,
                     bool always_open, char *err, size_t err_size)
{
    memset(m, 0, sizeof *m);
    m->seed = seed;
    m->always_open = always_open;
    if (spec == NULL || spec[0] == '\0')
        spec = "20";
    if (contracts < 2 || contracts > MM_MAX_CONTRACTS) {
        snprintf(err, err_size, "--contracts must be 2..%d", MM_MAX_CONTRACTS);
        return -1;
    }
    grid_size(m, contracts);
    bool is_count = true;
    for (const char *p = spec; *p; p++)
        if (*p < '0' || *p > '9')
            is_count = false;
    int rc = is_count ? underlyings_from_count(m, spec, err, err_size)
                      : underlyings_from_list(m, spec, err, err_size);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < m->nunderlyings; i++)
        underlying_setup(m, &m->underlyings[i]);
    m->memo = calloc(MM_MEMO_SLOTS, sizeof *m->memo);
    m->memo_mask = m->memo ? MM_MEMO_SLOTS - 1 : 0;
    qsort(m->underlyings, m->nunderlyings, sizeof *m->underlyings, cmp_underlying);
    if (m->underlyings[m->nunderlyings - 1].strike0_milli +
            m->underlyings[m->nunderlyings - 1].strike_step_milli * m->nstrikes >= INT64_C(99999999)) {
        snprintf(err, err_size, "strike grid too wide");
        mock_market_free(m);
        return -1;
    }
    return 0;
}

void mock_market_free(struct mock_market *m)
{
    free(m->memo);
    m->memo = NULL;
    free(m->underlyings);
    m->underlyings = NULL;
    m->nunderlyings = 0;
}

int mm_underlying_find(const struct mock_market *m, const char *name)
{
    size_t lo = 0, hi = m->nunderlyings;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->underlyings[mid].name, name);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ================= calendar ================= */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int weekday(int32_t date) /* 0 Sunday .. 6 Saturday */
{
    int w = (int)((date + 4) % 7);
    return w < 0 ? w + 7 : w;
}

int32_t mm_local_date(const struct mock_market *m, int64_t t_us)
{
    if (m->ny_calendar)
        return ny_local_date(t_us);
    return (int32_t)floor_div(t_us + MM_UTC_OFFSET_US, USEC_PER_DAY);
}

int64_t mm_midnight_us(const struct mock_market *m, int32_t date)
{
    if (m->ny_calendar)
        return ny_local_midnight_us(date);
    return (int64_t)date * USEC_PER_DAY - MM_UTC_OFFSET_US;
}

bool mm_is_trading_date(const struct mock_market *m, int32_t date)
{
    if (m->always_open)
        return true;
    if (m->ny_calendar)
        return ny_is_trading_date(date);
    int w = weekday(date);
    return w >= 1 && w <= 5;
}

int32_t mm_session_date(const struct mock_market *m, int64_t t_us)
{
    int32_t d = mm_local_date(m, t_us);
    while (!mm_is_trading_date(m, d))
        d--;
    return d;
}

int32_t mm_prev_trading_date(const struct mock_market *m, int32_t date)
{
    int32_t d = date - 1;
    while (!mm_is_trading_date(m, d))
        d--;
    return d;
}

void mm_session_bounds(const struct mock_market *m, int32_t date, int64_t *open_us, int64_t *close_us)
{
    int64_t mid = mm_midnight_us(m, date);
    if (m->always_open) {
        *open_us = mid;
        *close_us = mm_midnight_us(m, date + 1); /* 23 or 25 hours across a DST change */
    } else if (m->ny_calendar) {
        if (!ny_session_bounds(date, open_us, close_us)) { /* not a trading date: an empty session */
            *open_us = mid;
            *close_us = mid;
        }
    } else {
        *open_us = mid + 9 * MM_HOUR_US + 30 * MM_MINUTE_US;
        *close_us = mid + 16 * MM_HOUR_US;
    }
}

/* ================= contracts ================= */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int mm_expiries_at(const struct mock_market *m, int32_t date, int32_t out[MM_MAX_EXPIRIES])
{
    int32_t cand[5 + 13];
    int n = 0;
    int32_t fri = date + (5 - weekday(date) + 7) % 7;
    for (int j = 0; j < 5; j++)
        cand[n++] = fri + 7 * j;
    int y;
    unsigned mo, d;
    civil_from_days(date, &y, &mo, &d);
    for (int j = 0; j < 13; j++) {
        int32_t first = days_from_civil(y, mo, 1);
        int32_t third = first + (5 - weekday(first) + 7) % 7 + 14;
        if (third >= date)
            cand[n++] = third;
        if (++mo > 12) {
            mo = 1;
            y++;
        }
    }
    qsort(cand, (size_t)n, sizeof cand[0], cmp_i32);
    int k = 0;
    for (int i = 0; i < n && k < m->nexpiries; i++)
        if (k == 0 || cand[i] != out[k - 1])
            out[k++] = cand[i];
    return k;
}

int mm_expired_at(int32_t date, int32_t out[8])
{
    int n = 0;
    for (int32_t d = date - MM_EXPIRED_LOOKBACK_DAYS; d < date; d++)
        if (weekday(d) == 5 && n < 8)
            out[n++] = d;
    return n;
}

bool mm_contract_adjusted(const struct mock_market *m, int uidx, int32_t exp_days, char type, int64_t strike_milli)
{
    const char *name = m->underlyings[uidx].name;
    if (!m->realism || underlying_is_index(name) || strlen(name) > 5)
        return false;
    uint64_t h = mm_hash2(m->seed ^ UINT64_C(0xad105ed), (uint64_t)uidx);
    h = mm_hash2(h, (uint64_t)(uint32_t)exp_days);
    h = mm_hash2(h, ((uint64_t)(type == 'P') << 40) ^ (uint64_t)strike_milli);
    return h % 40 == 3;
}

/* The OCC root of a contract: the underlying itself; an adjusted contract
 * (realism) the underlying and a digit (SPY1); for an index with alternate
 * roots (roots.h) the first (SPX) on the monthly third-Friday expiry and the
 * second (SPXW) on the weeklies. out holds at least 8 bytes. */
static const char *contract_root(const struct mock_market *m, int uidx, int32_t exp_days, char type,
                                 int64_t strike_milli, char out[8])
{
    const char *name = m->underlyings[uidx].name;
    if (!underlying_is_index(name)) {
        if (mm_contract_adjusted(m, uidx, exp_days, type, strike_milli)) {
            snprintf(out, 8, "%.5s1", name); /* name is at most 5 long here */
            return out;
        }
        return name;
    }
    size_t n;
    const char *const *roots = option_roots_of(name, &n);
    if (roots == NULL || n < 2)
        return underlying_base(name);
    int y;
    unsigned mo, d;
    civil_from_days(exp_days, &y, &mo, &d);
    return d >= 15 && d <= 21 ? roots[0] : roots[1];
}

void mm_contract_make(const struct mock_market *m, int uidx, int32_t exp_days, char type,
                      int64_t strike_milli, struct mm_contract *out)
{
    out->uidx = uidx;
    out->exp_days = exp_days;
    out->type = type;
    out->strike_milli = strike_milli;
    uint64_t h = mm_hash2(m->seed, (uint64_t)uidx + 0x1000);
    h = mm_hash2(h, (uint64_t)(uint32_t)exp_days);
    h = mm_hash2(h, ((uint64_t)(type == 'P') << 40) ^ (uint64_t)strike_milli);
    out->key = h;
    double u = mm_unit(mm_hash2(h, 0x7731));
    out->tier = u < 0.40 ? 0 : u < 0.80 ? 1 : u < 0.97 ? 2 : 3;
    char root[8];
    if (occ_format(out->ticker, sizeof out->ticker, contract_root(m, uidx, exp_days, type, strike_milli, root),
                   exp_days, type, strike_milli) != 0)
        out->ticker[0] = '\0';
}

int mm_contract_parse(const struct mock_market *m, const char *ticker, struct mm_contract *out)
{
    struct occ_symbol sym;
    if (occ_parse(ticker, &sym) != 0)
        return -1;
    int u = mm_underlying_find(m, sym.root);
    for (size_t i = 0; u < 0 && i < m->nunderlyings; i++)
        if (underlying_is_index(m->underlyings[i].name) &&
            option_root_of_underlying(m->underlyings[i].name, sym.root))
            u = (int)i;
    size_t rl = strlen(sym.root);
    if (u < 0 && rl >= 2 && sym.root[rl - 1] == '1') { /* an adjusted contract's root */
        char base[8];
        snprintf(base, sizeof base, "%.*s", (int)(rl - 1), sym.root);
        u = mm_underlying_find(m, base);
    }
    char root[8];
    if (u < 0 || weekday(sym.expiration_days) != 5 ||
        strcmp(contract_root(m, u, sym.expiration_days, sym.contract_type, sym.strike_milli, root), sym.root) != 0)
        return -1;
    const struct mm_underlying *ud = &m->underlyings[u];
    int64_t off = sym.strike_milli - ud->strike0_milli;
    if (off < 0 || off % ud->strike_step_milli != 0 || off / ud->strike_step_milli >= m->nstrikes)
        return -1;
    if (weekday(sym.expiration_days) != 5)
        return -1;
    mm_contract_make(m, u, sym.expiration_days, sym.contract_type, sym.strike_milli, out);
    return 0;
}

bool mm_is_listed(const struct mock_market *m, const struct mm_contract *c, int64_t t_us)
{
    int32_t ex[MM_MAX_EXPIRIES];
    int n = mm_expiries_at(m, mm_local_date(m, t_us), ex);
    for (int i = 0; i < n; i++)
        if (ex[i] == c->exp_days)
            return true;
    return false;
}

/* ================= prices ================= */

double mm_underlying_price(const struct mock_market *m, int uidx, int64_t t_us)
{
    const struct mm_underlying *u = &m->underlyings[uidx];
    uint64_t h = mm_hash2(m->seed ^ 0x5eed, (uint64_t)uidx);
    double ts = (double)t_us / 1e6;
    double p1 = 6.283185307179586 * mm_unit(mm_hash2(h, 11));
    double p2 = 6.283185307179586 * mm_unit(mm_hash2(h, 12));
    double p3 = 6.283185307179586 * mm_unit(mm_hash2(h, 13));
    int64_t minute = floor_div(t_us, MM_MINUTE_US);
    double frac = (double)(t_us - minute * MM_MINUTE_US) / (double)MM_MINUTE_US;
    double n0 = 2 * mm_unit(mm_hash2(h, (uint64_t)minute)) - 1;
    double n1 = 2 * mm_unit(mm_hash2(h, (uint64_t)minute + 1)) - 1;
    double x = 0.04 * sin(ts * (6.283185307179586 / (5.3 * 86400)) + p1) +
               0.012 * sin(ts * (6.283185307179586 / (0.77 * 86400)) + p2) +
               0.004 * sin(ts * (6.283185307179586 / (97 * 60)) + p3) +
               0.0015 * (n0 + (n1 - n0) * frac);
    return round_dec(u->base_price * exp(x), 4);
}

struct bs_out {
    double price, delta, gamma, theta, vega;
};

static double norm_cdf(double x) { return 0.5 * erfc(-x * 0.7071067811865476); }

static void black_scholes(double s, double k, double tau, double sigma, bool call, struct bs_out *o)
{
    double sq = sqrt(tau);
    double d1 = (log(s / k) + (MM_RATE + 0.5 * sigma * sigma) * tau) / (sigma * sq);
    double d2 = d1 - sigma * sq;
    double disc = exp(-MM_RATE * tau);
    double pdf = 0.3989422804014327 * exp(-0.5 * d1 * d1);
    if (call) {
        o->price = s * norm_cdf(d1) - k * disc * norm_cdf(d2);
        o->delta = norm_cdf(d1);
        o->theta = (-s * pdf * sigma / (2 * sq) - MM_RATE * k * disc * norm_cdf(d2)) / 365.0;
    } else {
        o->price = k * disc * norm_cdf(-d2) - s * norm_cdf(-d1);
        o->delta = norm_cdf(d1) - 1;
        o->theta = (-s * pdf * sigma / (2 * sq) + MM_RATE * k * disc * norm_cdf(-d2)) / 365.0;
    }
    if (o->price < 0)
        o->price = 0;
    o->gamma = pdf / (s * sigma * sq);
    o->vega = s * pdf * sq / 100.0;
}

static double smile_vol(const struct mm_underlying *u, double s, double k)
{
    double mny = log(k / s);
    double v = u->base_vol * (1 + 0.6 * mny * mny - 0.15 * mny);
    return v < 0.05 ? 0.05 : v > 3 ? 3 : v;
}

static double tau_years(const struct mm_contract *c, int64_t t_us)
{
    /* pricing keeps the fixed UTC-5 whatever the calendar: an hour of DST is noise in tau */
    int64_t expiry = (int64_t)c->exp_days * USEC_PER_DAY - MM_UTC_OFFSET_US + 16 * MM_HOUR_US;
    double tau = (double)(expiry - t_us) / MM_YEAR_US;
    return tau < 1.0 / (365.0 * 24 * 60) ? 1.0 / (365.0 * 24 * 60) : tau;
}

static void price_contract(const struct mock_market *m, const struct mm_contract *c, double s,
                           int64_t t_us, double *sigma, struct bs_out *o)
{
    const struct mm_underlying *u = &m->underlyings[c->uidx];
    double k = (double)c->strike_milli / 1000.0;
    *sigma = smile_vol(u, s, k);
    black_scholes(s, k, tau_years(c, t_us), *sigma, c->type == 'C', o);
}

/* The option's mark within a session: linearised around the open so a busy
 * contract's thousands of trades cost no pricing-model call each. */
struct session_model {
    int32_t date;
    int64_t open_us, close_us;
    double s_open, p_open, d_open;
    int64_t cache_minute;
    double cache_s;
};

static void session_model_init(const struct mock_market *m, const struct mm_contract *c, int32_t date,
                               struct session_model *sm)
{
    sm->date = date;
    mm_session_bounds(m, date, &sm->open_us, &sm->close_us);
    sm->s_open = mm_underlying_price(m, c->uidx, sm->open_us);
    double sigma;
    struct bs_out o;
    price_contract(m, c, sm->s_open, sm->open_us, &sigma, &o);
    sm->p_open = o.price;
    sm->d_open = o.delta;
    sm->cache_minute = INT64_MIN;
    sm->cache_s = 0;
}

static double session_mark(const struct mock_market *m, const struct mm_contract *c,
                           struct session_model *sm, int64_t t_us)
{
    int64_t minute = floor_div(t_us, MM_MINUTE_US);
    if (minute != sm->cache_minute) {
        sm->cache_minute = minute;
        sm->cache_s = mm_underlying_price(m, c->uidx, minute * MM_MINUTE_US);
    }
    double mark = sm->p_open + sm->d_open * (sm->cache_s - sm->s_open);
    return mark < 0.05 ? 0.05 : mark;
}

/* ================= the tape ================= */

static uint64_t day_key(const struct mm_contract *c, int32_t date, uint64_t what)
{
    return mm_hash2(c->key ^ ((uint64_t)(uint32_t)date << 20), what);
}

static double session_minutes(const struct mock_market *m) { return m->always_open ? 1440.0 : 390.0; }

int mm_trade_count(const struct mock_market *m, const struct mm_contract *c, int32_t date)
{
    static const double per_min[4] = {0.5 / 390, 4.0 / 390, 40.0 / 390, 4.0};
    if (date > c->exp_days || !mm_is_trading_date(m, date))
        return 0;
    double lambda = per_min[c->tier] * session_minutes(m);
    uint64_t h = day_key(c, date, 0x7472);
    double x = lambda * (0.25 + 1.5 * mm_unit(h)) + mm_unit(mix64(h));
    int n = (int)x;
    return n > MM_MAX_TRADES_PER_SESSION ? MM_MAX_TRADES_PER_SESSION : n;
}

static int quote_count(const struct mock_market *m, const struct mm_contract *c, int32_t date)
{
    static const double per_session[4] = {6, 25, 200, 4000};
    if (date > c->exp_days || !mm_is_trading_date(m, date))
        return 0;
    double x = per_session[c->tier] * session_minutes(m) / 390.0 *
               (0.5 + mm_unit(day_key(c, date, 0x7175)));
    int n = (int)x + 1;
    return n > MM_MAX_QUOTES_PER_SESSION ? MM_MAX_QUOTES_PER_SESSION : n;
}

/* Event i of n stratified over the session: one per slot, so times are sorted
 * and the last event before t is found in O(1). */
static int64_t slot_time(int64_t open, int64_t len, int i, int n, uint64_t h, bool avoid_minute)
{
    double slot = (double)len / n;
    int64_t t = open + (int64_t)((i + mm_unit(h)) * slot);
    if (avoid_minute && t % MM_MINUTE_US == 0)
        t += 1;
    if (t >= open + len)
        t = open + len - 1;
    return t;
}

static int64_t trade_time_us(const struct mm_contract *c, const struct session_model *sm, int i, int n)
{
    return slot_time(sm->open_us, sm->close_us - sm->open_us, i, n, day_key(c, sm->date, 0x10000u + (uint64_t)i),
                     true);
}

static void trade_fill(const struct mock_market *m, const struct mm_contract *c,
                       struct session_model *sm, int i, int n, struct mm_trade *out)
{
    int64_t t = trade_time_us(c, sm, i, n);
    uint64_t h = day_key(c, sm->date, 0x20000000u + (uint64_t)i);
    double mark = session_mark(m, c, sm, t);
    double px = round_dec(mark * (1 + 0.04 * ((double)(h & 0xfffff) / 1048576.0 - 0.5)), 2);
    out->price = px < 0.01 ? 0.01 : px;
    int32_t size = 1 + (int32_t)((h >> 20) % 8);
    if (((h >> 24) & 15) == 0)
        size += 10 + (int32_t)((h >> 28) % 90);
    out->size = size;
    out->exchange = 300 + (int32_t)((h >> 36) % 23);
    out->t_ns = t * 1000 + (int64_t)((h >> 44) % 1000);
}

void mm_trade_get(const struct mock_market *m, const struct mm_contract *c, int32_t date, int i,
                  struct mm_trade *out)
{
    struct session_model sm;
    session_model_init(m, c, date, &sm);
    trade_fill(m, c, &sm, i, mm_trade_count(m, c, date), out);
}

/* Index of the last of n slot events with time <= t, or -1. */
static int last_slot_before(int64_t t, int64_t open, int64_t len, int n,
                            int64_t (*time_of)(const void *, int), const void *ctx)
{
    if (n <= 0 || t < open)
        return -1;
    int64_t j = (int64_t)((double)(t - open) * n / (double)len);
    if (j >= n)
        j = n - 1;
    while (j + 1 < n && time_of(ctx, (int)j + 1) <= t)
        j++;
    while (j >= 0 && time_of(ctx, (int)j) > t)
        j--;
    return (int)j;
}

struct slot_ctx {
    const struct mm_contract *c;
    const struct session_model *sm;
    int n;
    uint64_t salt;
    bool avoid_minute;
};

static int64_t slot_ctx_time(const void *p, int i)
{
    const struct slot_ctx *x = p;
    return slot_time(x->sm->open_us, x->sm->close_us - x->sm->open_us, i, x->n,
                     day_key(x->c, x->sm->date, x->salt + (uint64_t)i), x->avoid_minute);
}

/* The slots of a session's trades (quotes = false) or quotes. */
static struct slot_ctx events_of(const struct mm_contract *c, const struct session_model *sm, int n, bool quotes)
{
    return quotes ? (struct slot_ctx){c, sm, n, 0x30000000u, false} : (struct slot_ctx){c, sm, n, 0x10000u, true};
}

static int trades_upto(const struct mock_market *m, const struct mm_contract *c,
                       const struct session_model *sm, int64_t t_us)
{
    struct slot_ctx x = events_of(c, sm, mm_trade_count(m, c, sm->date), false);
    return last_slot_before(t_us, sm->open_us, sm->close_us - sm->open_us, x.n, slot_ctx_time, &x) + 1;
}

/* The last trade or quote at or before t_us: its session (t's, not after
 * expiry, at most MM_LOOKBACK_SESSIONS back) in *sm, its slots in *x, and
 * its index, or -1 when there is none. */
static int last_event(const struct mock_market *m, const struct mm_contract *c, int64_t t_us, bool quotes,
                      struct session_model *sm, struct slot_ctx *x)
{
    int32_t d = mm_session_date(m, t_us);
    if (d > c->exp_days)
        d = c->exp_days;
    for (int back = 0; back < MM_LOOKBACK_SESSIONS; back++, d = mm_prev_trading_date(m, d)) {
        int n = quotes ? quote_count(m, c, d) : mm_trade_count(m, c, d);
        if (n == 0)
            continue;
        session_model_init(m, c, d, sm);
        *x = events_of(c, sm, n, quotes);
        int j = last_slot_before(t_us, sm->open_us, sm->close_us - sm->open_us, n, slot_ctx_time, x);
        if (j >= 0)
            return j;
    }
    return -1;
}

bool mm_last_trade(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                   struct mm_trade *out)
{
    struct session_model sm;
    struct slot_ctx x;
    int j = last_event(m, c, t_us, false, &sm, &x);
    if (j < 0)
        return false;
    trade_fill(m, c, &sm, j, x.n, out);
    return true;
}

bool mm_last_quote(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                   struct mm_quote *out)
{
    struct session_model sm;
    struct slot_ctx x;
    int j = last_event(m, c, t_us, true, &sm, &x);
    if (j < 0)
        return false;
    int64_t t = slot_ctx_time(&x, j);
    uint64_t h = day_key(c, sm.date, 0x40000000u + (uint64_t)j);
    double mark = session_mark(m, c, &sm, t);
    double spread = round_dec(mark * (0.03 + 0.07 * mm_unit(h)), 2);
    if (spread < 0.01)
        spread = 0.01;
    double bid = round_dec(mark - spread / 2, 2);
    if (bid < 0)
        bid = 0;
    out->bid = bid;
    out->ask = round_dec(bid + spread, 2);
    out->bid_size = 1 + (int32_t)((h >> 8) % 500);
    out->ask_size = 1 + (int32_t)((h >> 20) % 500);
    out->t_ns = t * 1000 + (int64_t)((h >> 40) % 1000);
    return true;
}

/* ================= bars and the day block ================= */


static void acc_add(struct bar_acc *a, int64_t start_ms, const struct mm_trade *t)
{
    double s = (double)t->size;
    if (a->n == 0) {
        a->start_ms = start_ms;
        a->o = a->h = a->l = t->price;
        a->v = a->pv = 0;
    }
    if (t->price > a->h)
        a->h = t->price;
    if (t->price < a->l)
        a->l = t->price;
    a->c = t->price;
    a->v += s;
    a->pv += t->price * s;
    a->n++;
}

static void acc_finish(const struct bar_acc *a, struct mm_bar *b)
{
    b->start_ms = a->start_ms;
    b->o = a->o;
    b->h = a->h;
    b->l = a->l;
    b->c = a->c;
    b->v = a->v;
    b->vw = round_dec(a->pv / a->v, 4);
    b->n = a->n;
}

static double prev_close(const struct mock_market *m, const struct mm_contract *c, int32_t date,
                         bool *has)
{
    int32_t d = mm_prev_trading_date(m, date);
    for (int back = 0; back < MM_LOOKBACK_SESSIONS; back++, d = mm_prev_trading_date(m, d)) {
        int n = mm_trade_count(m, c, d);
        if (n > 0) {
            struct session_model sm;
            session_model_init(m, c, d, &sm);
            struct mm_trade t;
            trade_fill(m, c, &sm, n - 1, n, &t);
            *has = true;
            return t.price;
        }
    }
    *has = false;
    return 0;
}

/* Folds the finished bar of a into the day so far. */
static void day_fold_bar(struct day_fold *f, const struct bar_acc *a)
{
    struct mm_bar b;
    acc_finish(a, &b);
    if (f->nbars == 0) {
        f->open = b.o;
        f->high = b.h;
        f->low = b.l;
    }
    f->high = b.h > f->high ? b.h : f->high;
    f->low = b.l < f->low ? b.l : f->low;
    f->close = b.c;
    f->vsum += b.v;
    f->vwv += b.vw * b.v;
    f->nbars++;
}

void mm_day_block(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                  struct mm_day *out)
{
    memset(out, 0, sizeof *out);
    int32_t d = mm_session_date(m, t_us);
    out->date = d;
    out->last_updated_ns = mm_midnight_us(m, d) * 1000;
    out->previous_close = prev_close(m, c, d, &out->has_prev);
    int n = mm_trade_count(m, c, d);
    if (n == 0)
        return;
    struct session_model sm;
    session_model_init(m, c, d, &sm);
    int k = trades_upto(m, c, &sm, t_us);
    if (k == 0)
        return;
    struct bar_acc a = {0};
    struct day_fold fold = {0};
    int i0 = 0;
    struct mm_day_memo *memo = NULL;
    if (m->memo && n >= MM_MEMO_MIN_TRADES) {
        memo = &m->memo[c->key & m->memo_mask];
        if (memo->key == c->key && memo->date == d && memo->k > 0 && memo->k <= k) {
            i0 = memo->k;
            a = memo->a;
            fold = memo->fold;
        }
    }
    for (int i = i0; i < k; i++) {
        struct mm_trade t;
        trade_fill(m, c, &sm, i, n, &t);
        int64_t start_ms = floor_div(t.t_ns / 1000, MM_MINUTE_US) * 60000;
        if (a.n > 0 && start_ms != a.start_ms) {
            day_fold_bar(&fold, &a);
            a.n = 0;
        }
        acc_add(&a, start_ms, &t);
    }
    if (memo && k > i0) {
        memo->key = c->key;
        memo->date = d;
        memo->k = k;
        memo->a = a;
        memo->fold = fold;
    }
    day_fold_bar(&fold, &a);
    out->open = fold.open;
    out->high = fold.high;
    out->low = fold.low;
    out->close = fold.close;
    out->nbars = fold.nbars;
    out->has_trades = true;
    out->volume = fold.vsum;
    out->vwap = fold.vwv / fold.vsum;
    if (out->has_prev) {
        out->change = round_dec(out->close - out->previous_close, 2);
        out->change_percent = (out->close - out->previous_close) / out->previous_close * 100.0;
    }
}

static int64_t span_unit_ms(enum mm_timespan span)
{
    switch (span) {
    case MM_SPAN_SECOND: return 1000;
    case MM_SPAN_MINUTE: return 60000;
    case MM_SPAN_HOUR: return 3600000;
    default: return 86400000;
    }
}

struct bars_emit {
    int (*cb)(void *user, const struct mm_bar *bar);
    void *user;
    int64_t from_ms, to_ms;
    bool have;
    struct bar_acc pending;
    size_t delivered;
    bool stop;
};

static void emit_flush(struct bars_emit *e)
{
    if (!e->have || e->stop)
        return;
    e->have = false;
    if (e->pending.start_ms < e->from_ms || e->pending.start_ms > e->to_ms)
        return;
    struct mm_bar b;
    acc_finish(&e->pending, &b);
    e->delivered++;
    if (e->cb(e->user, &b))
        e->stop = true;
}

/* Merges bars with the same start (a wide bar spanning two sessions); in
 * descending order the incoming piece is the earlier one. */
static void emit_piece(struct bars_emit *e, const struct bar_acc *p, bool desc)
{
    if (e->have && e->pending.start_ms == p->start_ms) {
        struct bar_acc *q = &e->pending;
        if (desc)
            q->o = p->o;
        else {
            q->c = p->c;
        }
        q->h = p->h > q->h ? p->h : q->h;
        q->l = p->l < q->l ? p->l : q->l;
        q->v += p->v;
        q->pv += p->pv;
        q->n += p->n;
        return;
    }
    emit_flush(e);
    e->pending = *p;
    e->have = true;
}

size_t mm_bars_foreach(const struct mock_market *m, const struct mm_contract *c,
                       enum mm_timespan span, int multiplier, int64_t from_ms, int64_t to_ms,
                       bool desc, int64_t until_us,
                       int (*cb)(void *user, const struct mm_bar *bar), void *user)
{
    if (multiplier < 1 || from_ms > to_ms)
        return 0;
    int64_t width_ms = span_unit_ms(span) * multiplier;
    struct bars_emit e = {cb, user, from_ms, to_ms, false, {0}, 0, false};
    int32_t d0 = mm_local_date(m, from_ms * 1000);
    int32_t d1 = mm_local_date(m, (to_ms + width_ms) * 1000);
    if (d1 > c->exp_days)
        d1 = c->exp_days;
    if (d1 - d0 > MM_LOOKBACK_DAYS_MAX)
        d0 = d1 - MM_LOOKBACK_DAYS_MAX;
    struct bar_acc *pieces = NULL;
    size_t pieces_cap = 0;
    for (int32_t step = 0; d0 + step <= d1 && !e.stop; step++) {
        int32_t d = desc ? d1 - step : d0 + step;
        int n = mm_trade_count(m, c, d);
        if (n == 0)
            continue;
        if (pieces_cap < (size_t)n) {
            struct bar_acc *np = realloc(pieces, (size_t)n * sizeof *np);
            if (!np)
                break;
            pieces = np;
            pieces_cap = (size_t)n;
        }
        struct session_model sm;
        session_model_init(m, c, d, &sm);
        size_t np = 0;
        for (int i = 0; i < n; i++) {
            struct mm_trade t;
            trade_fill(m, c, &sm, i, n, &t);
            int64_t tus = t.t_ns / 1000;
            if (tus > until_us)
                break;
            int64_t tms = floor_div(tus, 1000);
            int64_t start;
            if (span == MM_SPAN_DAY) {
                int32_t g = (int32_t)floor_div(d, multiplier) * multiplier;
                start = mm_midnight_us(m, g) / 1000;
            } else {
                start = floor_div(tms, width_ms) * width_ms;
            }
            if (start > to_ms)
                break;
            if (start < from_ms)
                continue;
            if (np == 0 || pieces[np - 1].start_ms != start) {
                pieces[np].n = 0;
                np++;
            }
            acc_add(&pieces[np - 1], start, &t);
        }
        for (size_t i = 0; i < np && !e.stop; i++)
            emit_piece(&e, &pieces[desc ? np - 1 - i : i], desc);
    }
    emit_flush(&e);
    free(pieces);
    return e.delivered;
}

/* ================= snapshots ================= */

void mm_snapshot_at(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                    struct mm_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->c = *c;
    mm_day_block(m, c, t_us, &out->day);
    out->has_trade = mm_last_trade(m, c, t_us, &out->trade);
    out->has_quote = mm_last_quote(m, c, t_us, &out->quote);
    int64_t e = out->day.last_updated_ns;
    if (out->has_trade && out->trade.t_ns > e)
        e = out->trade.t_ns;
    if (out->has_quote && out->quote.t_ns > e)
        e = out->quote.t_ns;
    out->event_ns = e;
    /* Everything below depends on E only: an idle contract re-polls identically. */
    int64_t ums = e / 1000000;
    out->underlying_ns = ums * 1000000;
    int64_t u_us = ums * 1000;
    out->underlying_price = mm_underlying_price(m, c->uidx, u_us);
    double sigma;
    struct bs_out o;
    price_contract(m, c, out->underlying_price, u_us, &sigma, &o);
    out->iv = round_dec(sigma, 10);
    out->delta = round_dec(o.delta, 10);
    out->gamma = round_dec(o.gamma, 10);
    out->theta = round_dec(o.theta, 10);
    out->vega = round_dec(o.vega, 10);
    out->fmv = round_dec(o.price, 4);
    static const double oi_base[4] = {20, 300, 3000, 30000};
    out->open_interest =
        (int64_t)(oi_base[c->tier] * (0.2 + 1.6 * mm_unit(day_key(c, out->day.date, 0x6f69))));
    if (out->has_quote) {
        double mid = (out->quote.bid + out->quote.ask) / 2;
        double k = (double)c->strike_milli / 1000.0;
        out->has_break_even = true;
        out->break_even = round_dec(c->type == 'C' ? k + mid : k - mid, 4);
        out->change_to_break_even = round_dec(out->break_even - out->underlying_price, 4);
    }
}

const char *mm_bad_kind_name(enum mm_bad_kind k)
{
    switch (k) {
    case MM_BAD_TICKER: return "ticker-not-occ";
    case MM_BAD_TICKER_TYPE: return "ticker-wrong-type";
    case MM_BAD_NO_DETAILS: return "details-missing";
    case MM_BAD_NEG_SIZE: return "trade-size-negative";
    case MM_BAD_INFINITE: return "open-interest-not-finite";
    case MM_BAD_STRING_NUM: return "fmv-wrong-type";
    default: return "none";
    }
}

void mm_bad_ticker(const struct mock_market *m, const struct mm_contract *c, enum mm_bad_kind k,
                   char *out, size_t size)
{
    if (k == MM_BAD_TICKER)
        snprintf(out, size, "O:%s-BAD", m->underlyings[c->uidx].name);
    else if (k == MM_BAD_TICKER_TYPE || k == MM_BAD_NO_DETAILS)
        snprintf(out, size, "%s", "");
    else
        snprintf(out, size, "%s", c->ticker);
}

static void buf_date(struct mm_buf *b, int32_t days)
{
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char s[12];
    s[0] = '"';
    s[1] = (char)('0' + y / 1000 % 10);
    s[2] = (char)('0' + y / 100 % 10);
    s[3] = (char)('0' + y / 10 % 10);
    s[4] = (char)('0' + y % 10);
    s[5] = '-';
    s[6] = (char)('0' + mo / 10);
    s[7] = (char)('0' + mo % 10);
    s[8] = '-';
    s[9] = (char)('0' + d / 10);
    s[10] = (char)('0' + d % 10);
    s[11] = '"';
    mm_buf_add(b, s, 12);
}

#define PUTS(lit) mm_buf_add(b, lit, sizeof(lit) - 1)

/* A stable draw per contract (FNV-1a of the ticker), so each sweep sends a
 * contract in the same shape. */
static uint64_t realism_hash(const char *ticker)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const char *p = ticker; *p; p++)
        h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    return h ^ (h >> 29);
}

bool mm_realism_no_event_time(const struct mock_market *m, const char *ticker)
{
    return m->realism && realism_hash(ticker) % 9 == 4;
}

bool mm_realism_no_greeks(const struct mock_market *m, const char *ticker)
{
    return m->realism && realism_hash(ticker) % 4 == 1;
}

bool mm_realism_no_iv(const struct mock_market *m, const char *ticker)
{
    return m->realism && realism_hash(ticker) % 6 == 2;
}

void mm_day_members(struct mm_buf *b, const struct mm_day *d, const char *sep, int64_t time_divisor)
{
    /* keys in the API's (alphabetical) order; `sep` puts the commas */
#define DAY_KEY(lit)                                                                               \
    do {                                                                                           \
        mm_buf_puts(b, sep);                                                                       \
        PUTS(lit);                                                                                 \
        sep = ",";                                                                                 \
    } while (0)
    if (d->has_trades) {
        if (d->has_prev) {
            DAY_KEY("\"change\":");
            mm_buf_fixed(b, d->change, 2);
            DAY_KEY("\"change_percent\":");
            mm_buf_double(b, d->change_percent);
        }
        DAY_KEY("\"close\":");
        mm_buf_fixed(b, d->close, 2);
        DAY_KEY("\"high\":");
        mm_buf_fixed(b, d->high, 2);
    }
    if (time_divisor > 0) {
        DAY_KEY("\"last_updated\":");
        mm_buf_int(b, d->last_updated_ns / time_divisor);
    }
    if (d->has_trades) {
        DAY_KEY("\"low\":");
        mm_buf_fixed(b, d->low, 2);
        DAY_KEY("\"open\":");
        mm_buf_fixed(b, d->open, 2);
    }
    if (d->has_prev) {
        DAY_KEY("\"previous_close\":");
        mm_buf_fixed(b, d->previous_close, 2);
    }
    if (d->has_trades) {
        DAY_KEY("\"volume\":");
        mm_buf_fixed(b, d->volume, 0);
        DAY_KEY("\"vwap\":");
        mm_buf_double(b, d->vwap);
    }
#undef DAY_KEY
}

/* ,"timeframe":..., as the real API (delayed) or the simulator's own plan (real time) says it */
static void snapshot_timeframe(struct mm_buf *b, bool real)
{
    if (real)
        PUTS(",\"timeframe\":\"DELAYED\"");
    else
        PUTS(",\"timeframe\":\"REAL-TIME\"");
}

static void snapshot_day(struct mm_buf *b, const struct mm_day *d, bool real, bool no_event)
{
    PUTS("\"day\":{");
    /* the real API sends the day's time in ms beside ns quote/trade times */
    mm_day_members(b, d, "", no_event ? 0 : real ? 1000000 : 1);
    PUTS("},");
}

/* "details":{...}, (none for the details-missing bad row), its ticker what a bad row sends */
static void snapshot_details(struct mm_buf *b, const struct mock_market *m, const struct mm_contract *c,
                             enum mm_bad_kind bad)
{
    if (bad == MM_BAD_NO_DETAILS)
        return;
    PUTS("\"details\":{\"contract_type\":");
    if (c->type == 'C')
        PUTS("\"call\"");
    else
        PUTS("\"put\"");
    PUTS(",\"exercise_style\":\"american\",\"expiration_date\":");
    buf_date(b, c->exp_days);
    PUTS(",\"shares_per_contract\":100,\"strike_price\":");
    mm_buf_fixed(b, (double)c->strike_milli / 1000.0, 3);
    PUTS(",\"ticker\":");
    if (bad == MM_BAD_TICKER) {
        PUTS("\"O:");
        mm_buf_puts(b, m->underlyings[c->uidx].name);
        PUTS("-BAD\"");
    } else if (bad == MM_BAD_TICKER_TYPE) {
        mm_buf_int(b, c->strike_milli);
    } else {
        mm_buf_str(b, c->ticker);
    }
    PUTS("},");
}

/* "fmv":X, (a string for the fmv-wrong-type bad row) */
static void snapshot_fmv(struct mm_buf *b, const struct mm_snapshot *s, enum mm_bad_kind bad)
{
    PUTS("\"fmv\":");
    if (bad == MM_BAD_STRING_NUM)
        PUTS("\"");
    mm_buf_fixed(b, s->fmv, 4);
    if (bad == MM_BAD_STRING_NUM)
        PUTS("\"");
    PUTS(",");
}

/* "greeks":{...}, empty where the real API sends it so for this contract */
static void snapshot_greeks(struct mm_buf *b, const struct mm_snapshot *s, bool empty)
{
    if (empty) {
        PUTS("\"greeks\":{}");
        return;
    }
    PUTS("\"greeks\":{\"delta\":");
    mm_buf_fixed(b, s->delta, 10);
    PUTS(",\"gamma\":");
    mm_buf_fixed(b, s->gamma, 10);
    PUTS(",\"theta\":");
    mm_buf_fixed(b, s->theta, 10);
    PUTS(",\"vega\":");
    mm_buf_fixed(b, s->vega, 10);
    PUTS("}");
}

static void snapshot_last_quote(struct mm_buf *b, const struct mm_snapshot *s, bool real)
{
    PUTS(",\"last_quote\":{\"ask\":");
    mm_buf_fixed(b, s->quote.ask, 2);
    PUTS(",\"ask_size\":");
    mm_buf_int(b, s->quote.ask_size);
    PUTS(",\"bid\":");
    mm_buf_fixed(b, s->quote.bid, 2);
    PUTS(",\"bid_size\":");
    mm_buf_int(b, s->quote.bid_size);
    PUTS(",\"last_updated\":");
    mm_buf_int(b, s->quote.t_ns);
    PUTS(",\"midpoint\":");
    mm_buf_fixed(b, (s->quote.bid + s->quote.ask) / 2, 3);
    snapshot_timeframe(b, real);
    PUTS("}");
}

/* ,"last_trade":{...}, its size negative for the trade-size-negative bad row */
static void snapshot_last_trade(struct mm_buf *b, const struct mm_snapshot *s, bool real, enum mm_bad_kind bad)
{
    PUTS(",\"last_trade\":{\"price\":");
    mm_buf_fixed(b, s->trade.price, 2);
    PUTS(",\"sip_timestamp\":");
    mm_buf_int(b, s->trade.t_ns);
    PUTS(",\"size\":");
    mm_buf_int(b, bad == MM_BAD_NEG_SIZE ? -s->trade.size : s->trade.size);
    PUTS(",\"conditions\":[209],\"exchange\":");
    mm_buf_int(b, s->trade.exchange);
    snapshot_timeframe(b, real);
    PUTS("}");
}

static void snapshot_underlying(struct mm_buf *b, const struct mock_market *m, const struct mm_snapshot *s,
                                bool real)
{
    const char *name = m->underlyings[s->c.uidx].name;
    PUTS(",\"underlying_asset\":{");
    if (s->has_break_even) {
        PUTS("\"change_to_break_even\":");
        mm_buf_fixed(b, s->change_to_break_even, 4);
        PUTS(",");
    }
    PUTS("\"last_updated\":");
    mm_buf_int(b, s->underlying_ns);
    if (underlying_is_index(name))
        PUTS(",\"value\":"); /* an index has a level, not a price */
    else
        PUTS(",\"price\":");
    mm_buf_fixed(b, s->underlying_price, 4);
    PUTS(",\"ticker\":");
    mm_buf_str(b, name);
    snapshot_timeframe(b, real);
    PUTS("}");
}

void mm_snapshot_write(struct mm_buf *b, const struct mock_market *m, const struct mm_snapshot *s,
                       enum mm_bad_kind bad)
{
    const bool real = m->realism && bad == MM_BAD_NONE;
    const bool no_event = real && mm_realism_no_event_time(m, s->c.ticker);
    PUTS("{");
    if (s->has_break_even) {
        PUTS("\"break_even_price\":");
        mm_buf_fixed(b, s->break_even, 4);
        PUTS(",");
    }
    snapshot_day(b, &s->day, real, no_event);
    snapshot_details(b, m, &s->c, bad);
    if (!real) /* a plan without fmv sends none */
        snapshot_fmv(b, s, bad);
    snapshot_greeks(b, s, real && mm_realism_no_greeks(m, s->c.ticker));
    if (!(real && mm_realism_no_iv(m, s->c.ticker))) {
        PUTS(",\"implied_volatility\":");
        mm_buf_fixed(b, s->iv, 10);
    }
    if (s->has_quote && !no_event)
        snapshot_last_quote(b, s, real);
    if (s->has_trade && !no_event)
        snapshot_last_trade(b, s, real, bad);
    PUTS(",\"open_interest\":");
    if (bad == MM_BAD_INFINITE)
        PUTS("1e999");
    else
        mm_buf_int(b, s->open_interest);
    snapshot_underlying(b, m, s, real);
    PUTS("}");
}

/* ================= chain pages ================= */

void mm_chain_query_init(struct mm_chain_query *q, int uidx)
{
    memset(q, 0, sizeof *q);
    q->uidx = uidx;
    q->sort = MM_SORT_TICKER;
    q->limit = 10;
    q->strike_lo = INT64_MIN;
    q->strike_hi = INT64_MAX;
    q->exp_lo = INT32_MIN;
    q->exp_hi = INT32_MAX;
}

/* One dimension of the filtered chain: a sorted list of values. */
struct dim {
    int n;
    int64_t base, step; /* when vals == NULL: base + i*step */
    const int64_t *vals;
};

static int64_t dim_val(const struct dim *d, int i) { return d->vals ? d->vals[i] : d->base + d->step * i; }

static int dim_lower(const struct dim *d, int64_t v) /* count of values < v */
{
    int lo = 0, hi = d->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (dim_val(d, mid) < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct box {
    struct dim dims[3]; /* in sort priority */
    int order[3];       /* which key field each dim holds: 0 exp, 1 type, 2 strike */
    int64_t exps[MM_MAX_EXPIRIES];
    int64_t types[2];
    int64_t total;
};

static int64_t key_field(const struct mm_key *k, int f)
{
    return f == 0 ? k->exp_days : f == 1 ? k->type : k->strike_milli;
}

static void box_build(const struct mock_market *m, const struct mm_chain_query *q, int64_t t_us,
                      struct box *bx)
{
    memset(bx, 0, sizeof *bx);
    const struct mm_underlying *u = &m->underlyings[q->uidx];
    int32_t ex[MM_MAX_EXPIRIES];
    int ne = mm_expiries_at(m, mm_local_date(m, t_us), ex);
    int nexp = 0;
    for (int i = 0; i < ne; i++)
        if (ex[i] >= q->exp_lo && ex[i] <= q->exp_hi)
            bx->exps[nexp++] = ex[i];
    int nt = 0;
    if (q->type_filter != 'P')
        bx->types[nt++] = 0;
    if (q->type_filter != 'C')
        bx->types[nt++] = 1;
    int64_t klo = 0, khi = m->nstrikes - 1;
    if (q->strike_lo > u->strike0_milli) {
        int64_t k = (q->strike_lo - u->strike0_milli + u->strike_step_milli - 1) / u->strike_step_milli;
        klo = k;
    }
    if (q->strike_hi < u->strike0_milli + u->strike_step_milli * (m->nstrikes - 1)) {
        if (q->strike_hi < u->strike0_milli)
            khi = -1;
        else
            khi = (q->strike_hi - u->strike0_milli) / u->strike_step_milli;
    }
    struct dim dexp = {nexp, 0, 0, bx->exps};
    struct dim dtype = {nt, 0, 0, bx->types};
    struct dim dstrike = {khi >= klo ? (int)(khi - klo + 1) : 0, u->strike0_milli + klo * u->strike_step_milli,
                          u->strike_step_milli, NULL};
    if (q->sort == MM_SORT_STRIKE) {
        bx->dims[0] = dstrike, bx->order[0] = 2;
        bx->dims[1] = dexp, bx->order[1] = 0;
        bx->dims[2] = dtype, bx->order[2] = 1;
    } else {
        bx->dims[0] = dexp, bx->order[0] = 0;
        bx->dims[1] = dtype, bx->order[1] = 1;
        bx->dims[2] = dstrike, bx->order[2] = 2;
    }
    bx->total = (int64_t)bx->dims[0].n * bx->dims[1].n * bx->dims[2].n;
}

/* Number of box elements ordered before key; *exact when key is in the box. */
static int64_t box_lower(const struct box *bx, const struct mm_key *k, bool *exact)
{
    int64_t idx = 0;
    *exact = false;
    for (int d = 0; d < 3; d++) {
        const struct dim *dm = &bx->dims[d];
        int64_t v = key_field(k, bx->order[d]);
        int lb = dim_lower(dm, v);
        int64_t rest = 1;
        for (int e = d + 1; e < 3; e++)
            rest *= bx->dims[e].n;
        idx += lb * rest;
        if (lb >= dm->n || dim_val(dm, lb) != v)
            return idx;
    }
    *exact = true;
    return idx;
}

static void box_key_at(const struct box *bx, int64_t i, struct mm_key *k)
{
    int64_t n1 = bx->dims[1].n, n2 = bx->dims[2].n;
    int64_t idx[3] = {i / (n1 * n2), i / n2 % n1, i % n2};
    for (int d = 0; d < 3; d++) {
        int64_t v = dim_val(&bx->dims[d], (int)idx[d]);
        switch (bx->order[d]) {
        case 0: k->exp_days = (int32_t)v; break;
        case 1: k->type = (int)v; break;
        default: k->strike_milli = v; break;
        }
    }
}

int mm_chain_page(const struct mock_market *m, const struct mm_chain_query *q, int64_t t_us,
                  struct mm_contract *out, bool *more, struct mm_chain_query *next)
{
    struct box bx;
    box_build(m, q, t_us, &bx);
    int64_t n = bx.total, start = 0;
    if (q->has_after) {
        bool exact;
        int64_t lower = box_lower(&bx, &q->after, &exact);
        start = q->desc ? n - lower : lower + (exact ? 1 : 0);
    }
    int count = 0;
    struct mm_key k = {0, 0, 0};
    for (int64_t p = start; p < n && count < q->limit; p++) {
        box_key_at(&bx, q->desc ? n - 1 - p : p, &k);
        mm_contract_make(m, q->uidx, k.exp_days, k.type ? 'P' : 'C', k.strike_milli, &out[count++]);
    }
    *more = start + count < n;
    *next = *q;
    if (count > 0) {
        next->has_after = true;
        next->after = k;
    }
    return count;
}

/* ================= cursors ================= */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int mm_base64_encode(const unsigned char *in, size_t n, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        size_t chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        if (o + chars + 1 > out_size)
            return -1;
        for (size_t c = 0; c < chars; c++)
            out[o++] = b64url[(v >> (18 - 6 * c)) & 63];
    }
    if (o + 1 > out_size)
        return -1;
    out[o] = '\0';
    return (int)o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

int mm_base64_decode(const char *in, unsigned char *out, size_t out_size)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        int v = b64_val(*p);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= out_size)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    out[o] = '\0';
    return (int)o;
}

int mm_cursor_encode(const struct mm_chain_query *q, const struct mock_market *m, char *out,
                     size_t out_size)
{
    char text[320];
    int n = snprintf(text, sizeof text, "c1|%s|%d|%d|%d|%d|%lld|%lld|%ld|%ld|%d|%ld|%d|%lld",
                     m->underlyings[q->uidx].name, (int)q->sort, q->desc ? 1 : 0, q->limit,
                     (int)(unsigned char)q->type_filter, (long long)q->strike_lo,
                     (long long)q->strike_hi, (long)q->exp_lo, (long)q->exp_hi, q->has_after ? 1 : 0,
                     (long)q->after.exp_days, q->after.type, (long long)q->after.strike_milli);
    if (n < 0 || (size_t)n >= sizeof text)
        return -1;
    return mm_base64_encode((const unsigned char *)text, (size_t)n, out, out_size) < 0 ? -1 : 0;
}

int mm_cursor_decode(const struct mock_market *m, const char *cursor, struct mm_chain_query *q)
{
    unsigned char text[400];
    if (strlen(cursor) > 500 || mm_base64_decode(cursor, text, sizeof text) < 0)
        return -1;
    char name[OPTSNAP_UNDERLYING_MAX + 1];
    int sort, desc, limit, type, has_after, atype;
    long long slo, shi, astrike;
    long elo, ehi, aexp;
    int used = 0;
    if (sscanf((const char *)text, "c1|%16[A-Z0-9.:]|%d|%d|%d|%d|%lld|%lld|%ld|%ld|%d|%ld|%d|%lld%n",
               name, &sort, &desc, &limit, &type, &slo, &shi, &elo, &ehi, &has_after, &aexp, &atype,
               &astrike, &used) != 13 ||
        text[used] != '\0')
        return -1;
    int u = mm_underlying_find(m, name);
    if (u < 0 || sort < 0 || sort > 2 || (desc != 0 && desc != 1) || limit < 1 || limit > 250 ||
        (type != 0 && type != 'C' && type != 'P') || (has_after != 0 && has_after != 1) ||
        (atype != 0 && atype != 1) || elo < INT32_MIN || ehi > INT32_MAX || aexp < INT32_MIN ||
        aexp > INT32_MAX)
        return -1;
    mm_chain_query_init(q, u);
    q->sort = (enum mm_sort)sort;
    q->desc = desc == 1;
    q->limit = limit;
    q->type_filter = (char)type;
    q->strike_lo = slo;
    q->strike_hi = shi;
    q->exp_lo = (int32_t)elo;
    q->exp_hi = (int32_t)ehi;
    q->has_after = has_after == 1;
    q->after.exp_days = (int32_t)aexp;
    q->after.type = atype;
    q->after.strike_milli = astrike;
    return 0;
}

/* ================= faults ================= */

const char *mm_fault_name(enum mm_fault f)
{
    static const char *const names[MM_FAULT_COUNT] = {
        "reset", "429", "5xx", "malformed", "truncate", "stall", "slow", "cursor_loop", "bad_row",
    };
    return (unsigned)f < MM_FAULT_COUNT ? names[f] : "none";
}

uint32_t mm_fault_draw(uint64_t seed, uint64_t request_no, const double rates[MM_FAULT_COUNT])
{
    uint32_t mask = 0;
    bool exclusive = false;
    for (int f = 0; f < MM_FAULT_COUNT; f++) {
        if (rates[f] <= 0)
            continue;
        double u = mm_unit(mm_hash2(mm_hash2(seed ^ 0xfa17, request_no), (uint64_t)f));
        if (u >= rates[f])
            continue;
        if (f <= MM_FAULT_STALL) {
            if (exclusive)
                continue;
            exclusive = true;
        }
        mask |= 1u << f;
    }
    return mask;
}

double mm_fault_param(uint64_t seed, uint64_t request_no, enum mm_fault f)
{
    return mm_unit(mm_hash2(mm_hash2(seed ^ 0xbad0, request_no), (uint64_t)f));
}
