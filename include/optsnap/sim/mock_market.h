/* mock_market.h - the simulated options market behind `optsnap mock-api`: a
 * universe of contracts and, per contract, a trade and quote tape that is a
 * pure function of (seed, contract, time), plus the JSON the API would serve
 * for it. Pure: libc and libm only, no I/O, no stored history.
 *
 * Model conventions (documented in `optsnap mock-api --help` too):
 * - Time zone: America/New_York is modelled as a fixed UTC-5. A session date's
 *   midnight is 05:00Z; the regular session is 09:30-16:00 local =
 *   14:30-21:00Z, Monday to Friday, no holidays (the DB calendar has those).
 *   With always_open every local day is a session from 00:00 to 24:00.
 * - The session date at t is the latest trading date whose local midnight is
 *   <= t (a weekend shows Friday). day.last_updated is that midnight in ns.
 * - A snapshot at t is a function of (contract, E), E = max(last trade time,
 *   last quote time, day.last_updated) over events <= t. Everything in it
 *   (greeks, IV, fmv, underlying price and time) is taken at E, so polling an
 *   unchanged contract twice gives byte-identical JSON.
 * - The day block is the aggregate of the session's bars built from trades
 *   <= E: open of the first bar, max high, min low, close of the last,
 *   volume = sum v, vwap = sum(vw*v)/sum(v) with each bar's vw rounded to 4
 *   decimals exactly as /v2/aggs serves it. Before the session's first trade
 *   the day block carries only last_updated and (when known) previous_close.
 * - previous_close = close of the latest earlier session that had trades
 *   (looking back at most MM_LOOKBACK_SESSIONS sessions), else absent.
 * - Trade times never fall on a whole minute; every event time is a whole
 *   microsecond plus a sub-microsecond part in its ns form. */
#ifndef OPTSNAP_MOCK_MARKET_H
#define OPTSNAP_MOCK_MARKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/api/row.h"
#include "optsnap/util/buf.h"

#define MM_MAX_UNDERLYINGS 5000
#define MM_MAX_CONTRACTS 20000    /* per underlying */
#define MM_MAX_EXPIRIES 12
#define MM_LOOKBACK_SESSIONS 30
#define MM_EXPIRED_LOOKBACK_DAYS 35 /* reference expired=true covers this far back */
#define MM_UTC_OFFSET_US (-5 * INT64_C(3600000000))

/* ---------- output buffer ---------- */

/* The simulator's JSON output: the one capped byte buffer (bytes.limit, 0 =
 * BYTEBUF_DEFAULT_LIMIT; bytes.failed set past it or out of memory), its
 * data kept NUL-terminated after every append. Free with mm_buf_free. */
struct mm_buf {
    struct bytebuf bytes;
};

void mm_buf_free(struct mm_buf *b);
void mm_buf_add(struct mm_buf *b, const char *s, size_t n);
void mm_buf_puts(struct mm_buf *b, const char *s);
void mm_buf_int(struct mm_buf *b, int64_t v);
/* value rounded to `decimals` (0..10) and written exactly (no exponent),
 * trailing zeros trimmed: reads back as round(v*10^d)/10^d. */
void mm_buf_fixed(struct mm_buf *b, double v, int decimals);
/* shortest text that reads back as the same double (no NaN/inf: writes 0). */
void mm_buf_double(struct mm_buf *b, double v);
/* JSON string with quotes and escapes. */
void mm_buf_str(struct mm_buf *b, const char *s);
/* Takes the bytes: returns data (caller frees) and empties the buffer. */
char *mm_buf_take(struct mm_buf *b, size_t *len);

/* ---------- the universe ---------- */

struct mm_underlying {
    char name[OPTSNAP_UNDERLYING_MAX];
    double base_price; /* centre of the strike grid and of the price path */
    double base_vol;   /* at-the-money volatility */
    int64_t strike0_milli, strike_step_milli; /* grid: strike0 + k*step, k < nstrikes */
};

struct mm_day_memo;

struct mock_market {
    uint64_t seed;
    bool always_open;
    int nexpiries; /* expiries listed at any date */
    int nstrikes;  /* strikes per expiry and type */
    size_t nunderlyings;
    struct mm_underlying *underlyings; /* malloc'd, sorted by name */
    /* Memo of busy contracts' running day aggregates (a pure cache: results
     * never depend on it), so a re-poll costs only the trades since the last
     * one. Fixed size, owned; NULL disables it. */
    struct mm_day_memo *memo;
    size_t memo_mask;
    /* The real API's shapes (mock-api --realism): day.last_updated in ms
     * beside ns quote/trade times, timeframe DELAYED, no fmv, greeks `{}` or
     * no IV for some contracts, and some contracts with no event time at all
     * (mm_realism_no_event_time). Values are the same; only the shape differs. */
    bool realism;
    /* Sessions on the real New York calendar (DST, NYSE holidays, early
     * closes: util/ny_calendar.h) instead of a fixed UTC-5 Monday-Friday. */
    bool ny_calendar;
};

/* Under realism: the contract is sent with no day.last_updated, no quote
 * and no trade (an illiquid contract on a plan without quotes). */
bool mm_realism_no_event_time(const struct mock_market *m, const char *ticker);
/* Under realism: greeks sent as {} (deep in the money), IV omitted. */
bool mm_realism_no_greeks(const struct mock_market *m, const char *ticker);
bool mm_realism_no_iv(const struct mock_market *m, const char *ticker);
/* Under realism: an adjusted contract (root = underlying + "1", e.g. SPY1),
 * whose reference entry lists its deliverables (additional_underlyings). */
bool mm_contract_adjusted(const struct mock_market *m, int uidx, int32_t exp_days, char type, int64_t strike_milli);

/* spec is a count ("20") or a comma list ("SPY,QQQ"); contracts is the wanted
 * number per underlying (the real number is nexpiries*2*nstrikes <= it, at
 * least 2). Returns 0, or -1 with a message in err. Free with mock_market_free. */
int mock_market_init(struct mock_market *m, uint64_t seed, const char *spec, int contracts,
                     bool always_open, char *err, size_t err_size)
    __attribute__((warn_unused_result));
void mock_market_free(struct mock_market *m);

int mm_underlying_find(const struct mock_market *m, const char *name); /* index or -1 */
static inline size_t mm_contracts_per_underlying(const struct mock_market *m)
{
    return (size_t)m->nexpiries * 2u * (size_t)m->nstrikes;
}

/* ---------- calendar ---------- */

/* Local time: a fixed UTC-5 with weekday sessions 09:30-16:00 (the default),
 * or with ny_calendar America/New_York with DST and the NYSE holidays and
 * early closes of util/ny_calendar.h. */
int32_t mm_local_date(const struct mock_market *m, int64_t t_us);  /* local calendar date */
int64_t mm_midnight_us(const struct mock_market *m, int32_t date); /* local midnight of date, UTC us */
bool mm_is_trading_date(const struct mock_market *m, int32_t date);
int32_t mm_session_date(const struct mock_market *m, int64_t t_us); /* see top comment */
int32_t mm_prev_trading_date(const struct mock_market *m, int32_t date);
void mm_session_bounds(const struct mock_market *m, int32_t date, int64_t *open_us,
                       int64_t *close_us);

/* ---------- contracts ---------- */

struct mm_contract {
    int uidx;
    int32_t exp_days;
    char type;            /* 'C' or 'P' */
    int64_t strike_milli;
    uint64_t key;         /* hash identity */
    int tier;             /* 0 rare .. 3 busy */
    char ticker[OPTSNAP_TICKER_MAX];
};

/* The expiries listed on local date `date` (sorted asc). Returns the count. */
int mm_expiries_at(const struct mock_market *m, int32_t date, int32_t out[MM_MAX_EXPIRIES]);
/* Fridays in [date - MM_EXPIRED_LOOKBACK_DAYS, date): the expired ones. */
int mm_expired_at(int32_t date, int32_t out[8]);

void mm_contract_make(const struct mock_market *m, int uidx, int32_t exp_days, char type,
                      int64_t strike_milli, struct mm_contract *out);
/* Parses an OCC ticker of this market: root known, strike on the grid, expiry a
 * Friday. Returns 0 or -1. Listing at a given date is checked by mm_is_listed. */
int mm_contract_parse(const struct mock_market *m, const char *ticker, struct mm_contract *out)
    __attribute__((warn_unused_result));
bool mm_is_listed(const struct mock_market *m, const struct mm_contract *c, int64_t t_us);

/* ---------- the tape ---------- */

struct mm_trade {
    int64_t t_ns;
    double price;
    int32_t size;
    int32_t exchange;
};

struct mm_quote {
    int64_t t_ns;
    double bid, ask;
    int32_t bid_size, ask_size;
};

double mm_underlying_price(const struct mock_market *m, int uidx, int64_t t_us); /* 4 decimals */
int mm_trade_count(const struct mock_market *m, const struct mm_contract *c, int32_t date);
/* Trade i (0-based, time order) of the session; i < mm_trade_count. */
void mm_trade_get(const struct mock_market *m, const struct mm_contract *c, int32_t date, int i,
                  struct mm_trade *out);
/* Last trade / quote at or before t; false when none in the lookback. */
bool mm_last_trade(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                   struct mm_trade *out);
bool mm_last_quote(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                   struct mm_quote *out);

struct mm_bar {
    int64_t start_ms;
    double o, h, l, c, v, vw; /* vw rounded to 4 decimals */
    int64_t n;
};

struct mm_day {
    int32_t date;
    int64_t last_updated_ns; /* local midnight of the session date */
    bool has_trades;
    double open, high, low, close, volume, vwap;
    double change, change_percent;
    bool has_prev;
    double previous_close;
    int nbars; /* minute bars aggregated */
};

/* Day block of the session of t over trades <= t (see the top comment). */
void mm_day_block(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                  struct mm_day *out);

enum mm_timespan { MM_SPAN_SECOND, MM_SPAN_MINUTE, MM_SPAN_HOUR, MM_SPAN_DAY };

/* Calls cb for each bar whose start lies in [from_ms, to_ms], in ascending or
 * descending order, built from trades with time <= until_us (pass INT64_MAX for
 * all); stops when cb returns non-zero. Day bars start at local midnight.
 * At most MM_LOOKBACK_DAYS_MAX days are scanned. Returns the number of bars
 * delivered. */
#define MM_LOOKBACK_DAYS_MAX 3700
size_t mm_bars_foreach(const struct mock_market *m, const struct mm_contract *c,
                       enum mm_timespan span, int multiplier, int64_t from_ms, int64_t to_ms,
                       bool desc, int64_t until_us,
                       int (*cb)(void *user, const struct mm_bar *bar), void *user);

/* ---------- snapshots ---------- */

struct mm_snapshot {
    struct mm_contract c;
    int64_t event_ns; /* E */
    struct mm_day day;
    bool has_trade, has_quote;
    struct mm_trade trade;
    struct mm_quote quote;
    double underlying_price;
    int64_t underlying_ns;
    double iv, delta, gamma, theta, vega, fmv; /* rounded as served */
    int64_t open_interest;
    bool has_break_even;
    double break_even, change_to_break_even;
};

void mm_snapshot_at(const struct mock_market *m, const struct mm_contract *c, int64_t t_us,
                    struct mm_snapshot *out);

/* Kinds of bad row the fault injector can write in place of a good one. */
enum mm_bad_kind {
    MM_BAD_NONE = 0,
    MM_BAD_TICKER,      /* details.ticker is not an OCC symbol */
    MM_BAD_TICKER_TYPE, /* details.ticker is a number */
    MM_BAD_NO_DETAILS,  /* the details object is missing */
    MM_BAD_NEG_SIZE,    /* last_trade.size is negative */
    MM_BAD_INFINITE,    /* open_interest is 1e999 (not finite) */
    MM_BAD_STRING_NUM,  /* fmv is a string */
    MM_BAD_KIND_COUNT
};
const char *mm_bad_kind_name(enum mm_bad_kind k);
/* The ticker text a bad row carries ("" when none): what a reject can show. */
void mm_bad_ticker(const struct mock_market *m, const struct mm_contract *c, enum mm_bad_kind k,
                   char *out, size_t size);

/* The API's members of a day block (no braces), alphabetical, each after sep
 * and then ",": last_updated as last_updated_ns / time_divisor (1: ns,
 * 1000000: ms), left out when time_divisor is 0. */
void mm_day_members(struct mm_buf *b, const struct mm_day *d, const char *sep, int64_t time_divisor);

/* Appends the result object of one contract (the JSON the API sends). */
void mm_snapshot_write(struct mm_buf *b, const struct mock_market *m, const struct mm_snapshot *s,
                       enum mm_bad_kind bad);

/* ---------- chain pages ---------- */

enum mm_sort { MM_SORT_TICKER = 0, MM_SORT_EXPIRATION, MM_SORT_STRIKE };

struct mm_key {
    int32_t exp_days;
    int type; /* 0 call, 1 put */
    int64_t strike_milli;
};

/* A chain query; filters are inclusive bounds (INT64_MIN/MAX, INT32_MIN/MAX = none). */
struct mm_chain_query {
    int uidx;
    enum mm_sort sort;
    bool desc;
    int limit;        /* 1..250 */
    char type_filter; /* 0, 'C' or 'P' */
    int64_t strike_lo, strike_hi; /* milli */
    int32_t exp_lo, exp_hi;
    bool has_after;   /* continue after this key (from a cursor) */
    struct mm_key after;
};

void mm_chain_query_init(struct mm_chain_query *q, int uidx);
/* Cursor text (base64url, no padding) of q; returns 0 or -1 when out too small. */
int mm_cursor_encode(const struct mm_chain_query *q, const struct mock_market *m, char *out,
                     size_t out_size);
/* Decodes a cursor into q (all of q comes from the cursor). Returns 0 or -1. */
int mm_cursor_decode(const struct mock_market *m, const char *cursor, struct mm_chain_query *q)
    __attribute__((warn_unused_result));

/* One page: the contracts (in order) the query selects at time t. out has room
 * for q->limit entries; *more tells whether a next page exists, and *next the
 * query for it (has_after set). Returns the count. */
int mm_chain_page(const struct mock_market *m, const struct mm_chain_query *q, int64_t t_us,
                  struct mm_contract *out, bool *more, struct mm_chain_query *next);

/* Base64url without padding; returns output length or -1. */
int mm_base64_encode(const unsigned char *in, size_t n, char *out, size_t out_size);
int mm_base64_decode(const char *in, unsigned char *out, size_t out_size);

/* ---------- faults ---------- */

enum mm_fault {
    MM_FAULT_RESET = 0,   /* close the connection with RST, no answer */
    MM_FAULT_429,         /* 429 + Retry-After */
    MM_FAULT_5XX,         /* 500, 502 or 503 */
    MM_FAULT_MALFORMED,   /* syntactically broken JSON body */
    MM_FAULT_TRUNCATE,    /* body cut short, then close */
    MM_FAULT_STALL,       /* pause mid-body */
    MM_FAULT_SLOW,        /* delay before answering (combines with the others) */
    MM_FAULT_CURSOR_LOOP, /* next_url that loops back (chain pages only) */
    MM_FAULT_BAD_ROW,     /* one row replaced by a bad one (chain pages only) */
    MM_FAULT_COUNT
};

const char *mm_fault_name(enum mm_fault f); /* "reset", "429", ... */

/* Which faults fire for API request number request_no (counter-based: the
 * same seed, rates and number always give the same answer). At most one of
 * RESET..STALL fires (in that priority order); SLOW, CURSOR_LOOP and BAD_ROW
 * are drawn independently. Returns a bit mask (1u << enum mm_fault). */
uint32_t mm_fault_draw(uint64_t seed, uint64_t request_no, const double rates[MM_FAULT_COUNT]);
/* A uniform [0,1) parameter for a fired fault (which status, where to cut). */
double mm_fault_param(uint64_t seed, uint64_t request_no, enum mm_fault f);

/* ---------- deterministic randomness ---------- */

uint64_t mm_hash2(uint64_t a, uint64_t b);
static inline double mm_unit(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }

#endif
