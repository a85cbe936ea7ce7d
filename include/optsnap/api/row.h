/* row.h - the row types that flow from the parser through the batcher to the
 * writer: one option contract, one snapshot of it, and one rejected input.
 * Pure: includes no I/O library. */
#ifndef OPTSNAP_ROW_H
#define OPTSNAP_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "O:" + root (<= 6) + YYMMDD + C/P + 8 digits = 23; room for odd roots. */
#define OPTSNAP_TICKER_MAX 32
#define OPTSNAP_UNDERLYING_MAX 16

enum row_source { ROW_SOURCE_LIVE = 0, ROW_SOURCE_BACKFILL = 1 };

/* Static facts about a contract; the `options` table. */
struct option_contract {
    char ticker[OPTSNAP_TICKER_MAX];         /* "O:AAPL230616C00150000" */
    char underlying[OPTSNAP_UNDERLYING_MAX]; /* "AAPL" */
    char contract_type;                      /* 'C' call, 'P' put, 'O' other */
    char exercise_style;                     /* 'A' american, 'E' european, 'B' bermudan, '?' unknown */
    int32_t expiration_days;                 /* days since 1970-01-01 */
    double strike_price;
    int32_t shares_per_contract;             /* 0 = unknown (NULL) */
};

enum snap_col_type { SNAP_F64, SNAP_I64, SNAP_TS };

/* Nullable value columns of `option_snapshots`, in table order. The writer
 * and the migrations follow this order; tests/unit/test_row.c checks it. */
enum snap_col {
    SNAP_DAY_OPEN,
    SNAP_DAY_HIGH,
    SNAP_DAY_LOW,
    SNAP_DAY_CLOSE,
    SNAP_DAY_VOLUME,
    SNAP_DAY_VWAP,
    SNAP_DAY_CHANGE,
    SNAP_DAY_CHANGE_PERCENT,
    SNAP_DAY_PREVIOUS_CLOSE,
    SNAP_DAY_TIME,
    SNAP_IMPLIED_VOLATILITY,
    SNAP_OPEN_INTEREST,
    SNAP_DELTA,
    SNAP_GAMMA,
    SNAP_THETA,
    SNAP_VEGA,
    SNAP_BID,
    SNAP_ASK,
    SNAP_BID_SIZE,
    SNAP_ASK_SIZE,
    SNAP_MIDPOINT,
    SNAP_QUOTE_TIME,
    SNAP_TRADE_PRICE,
    SNAP_TRADE_SIZE,
    SNAP_TRADE_EXCHANGE,
    SNAP_TRADE_TIME,
    SNAP_UNDERLYING_PRICE,
    SNAP_UNDERLYING_TIME,
    SNAP_CHANGE_TO_BREAK_EVEN,
    SNAP_BREAK_EVEN_PRICE,
    SNAP_FMV,
    SNAP_NCOLS
};

struct snap_col_desc {
    const char *name;     /* column in option_snapshots */
    const char *json_obj; /* object in the API result, NULL = top level */
    const char *json_key; /* key inside it */
    enum snap_col_type type;
};

/* Indexed by enum snap_col. */
extern const struct snap_col_desc snap_cols[SNAP_NCOLS];

union snap_value {
    double f;  /* SNAP_F64 */
    int64_t i; /* SNAP_I64, and SNAP_TS as unix epoch microseconds */
};

/* One snapshot of one contract; a row of `option_snapshots`. Plain data,
 * no pointers: rows are copied by value through the queue. */
struct snapshot_row {
    struct option_contract contract;
    int64_t last_updated_us; /* unix epoch microseconds; the key with ticker */
    uint64_t present;        /* bit (1 << col) set when v[col] holds a value */
    union snap_value v[SNAP_NCOLS];
    enum row_source source;
};

static inline bool snapshot_row_has(const struct snapshot_row *r, enum snap_col c)
{
    return (r->present >> c) & 1u;
}

static inline void snapshot_row_set_f64(struct snapshot_row *r, enum snap_col c, double v)
{
    r->v[c].f = v;
    r->present |= UINT64_C(1) << c;
}

static inline void snapshot_row_set_i64(struct snapshot_row *r, enum snap_col c, int64_t v)
{
    r->v[c].i = v;
    r->present |= UINT64_C(1) << c;
}

/* A piece of input that could not become a row. `raw` is malloc'd and owned
 * by the struct: free it with row_reject_clear(). */
struct row_reject {
    char ticker[OPTSNAP_TICKER_MAX]; /* best effort, may be "" */
    char reason[128];                /* short, stable, e.g. "ticker: not an OCC symbol" */
    char *raw;                       /* the JSON text of the offending result */
    size_t raw_len;
};

void row_reject_clear(struct row_reject *rj);

/* Text for the database enum-ish columns. */
const char *option_contract_type_name(char contract_type);     /* "call", "put", "other" */
const char *option_exercise_style_name(char exercise_style);   /* "american", ... or NULL */
const char *row_source_name(enum row_source source);           /* "live", "backfill" */

#endif
