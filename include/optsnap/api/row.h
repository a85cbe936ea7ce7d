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

/* SNAP_TIMEFRAME holds enum snap_timeframe in v[].i; SNAP_CONDITIONS keeps
 * its values in snapshot_row.conditions (v[] unused). */
enum snap_col_type { SNAP_F64, SNAP_I64, SNAP_TS, SNAP_TIMEFRAME, SNAP_CONDITIONS };

/* The API's "timeframe": how fresh the plan lets the data be. */
enum snap_timeframe { SNAP_TIMEFRAME_DELAYED = 1, SNAP_TIMEFRAME_REAL_TIME = 2 };

/* Trade condition codes kept per row; the API sends one to three. */
#define SNAP_CONDITIONS_MAX 16

/* Nullable value columns of `option_snapshots`, in table order. The writer
 * and the migrations follow this order; tests/integration/test_schema.c
 * checks it. 001_schema.sql has SNAP_DAY_OPEN..SNAP_FMV before `underlying,
 * source, ingested_at`; 006_fields.sql appends SNAP_QUOTE_TIMEFRAME.. after
 * them, then `last_updated_fallback`. */
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
    /* 006_fields.sql */
    SNAP_QUOTE_TIMEFRAME,
    SNAP_BID_EXCHANGE,
    SNAP_ASK_EXCHANGE,
    SNAP_TRADE_TIMEFRAME,
    SNAP_TRADE_CONDITIONS,
    SNAP_UNDERLYING_VALUE,
    SNAP_UNDERLYING_TIMEFRAME,
    SNAP_FMV_TIME,
    SNAP_NCOLS
};

/* Columns of 001_schema.sql, which sit before underlying/source/ingested_at. */
#define SNAP_NCOLS_001 (SNAP_FMV + 1)

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
    /* The API sent no event time: last_updated_us is the fallback the
     * caller gave (the sweep's window start). Column last_updated_fallback. */
    bool last_updated_fallback;
    uint8_t nconditions;     /* SNAP_TRADE_CONDITIONS, when present */
    int32_t conditions[SNAP_CONDITIONS_MAX];
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

/* What an ingest_rejects row is (column `kind`). */
enum reject_kind {
    REJECT_ROW = 0,     /* "reject": the input did not become a row */
    REJECT_PARTIAL = 1, /* "partial": it became a row with fields dropped (NULL) */
    REJECT_REFUSED = 2, /* "refused": the database refused the row (raw rebuilt from the row) */
};

/* A piece of input that could not become a row, or not all of it. `raw` is
 * malloc'd and owned by the struct: free it with row_reject_clear(). */
struct row_reject {
    char ticker[OPTSNAP_TICKER_MAX]; /* best effort, may be "" */
    char reason[128];                /* short, stable, e.g. "ticker: not an OCC symbol" */
    char *raw;                       /* the API's JSON text of the result (capped) */
    size_t raw_len;
    enum reject_kind kind;
    /* Column key_time: for a partial or refused row the key its row has;
     * for a reject the fallback key time the parse had (0 = none). A replay
     * parses raw with this as its fallback, so it keys the row alike. */
    int64_t key_us;
    char request_id[96]; /* the request_id of the page it came in ("" none): set by the driver */
};

void row_reject_clear(struct row_reject *rj);

/* Text for the database enum-ish columns. */
const char *option_contract_type_name(char contract_type);     /* "call", "put", "other" */
const char *option_exercise_style_name(char exercise_style);   /* "american", ... or NULL */
const char *row_source_name(enum row_source source);           /* "live", "backfill" */
const char *reject_kind_name(enum reject_kind kind);           /* "reject", "partial", "refused" */
const char *snap_timeframe_name(int64_t timeframe);            /* "DELAYED", "REAL-TIME" or NULL */

/* Writes the API-shaped JSON of a row (the chain snapshot result it came
 * from, as far as the row holds it: timestamps in ns, blocks by snap_cols)
 * into buf[size]; a replay through the snapshot parser gives the row back.
 * Returns the length, or -1 when it does not fit. */
long snapshot_row_to_api_json(const struct snapshot_row *row, char *buf, size_t size);

#endif
