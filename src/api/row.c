/* row.c - column table and small helpers for the shared row types. */
#include "optsnap/api/row.h"

#include <stdlib.h>
#include <string.h>

const struct snap_col_desc snap_cols[SNAP_NCOLS] = {
    [SNAP_DAY_OPEN] = {"day_open", "day", "open", SNAP_F64},
    [SNAP_DAY_HIGH] = {"day_high", "day", "high", SNAP_F64},
    [SNAP_DAY_LOW] = {"day_low", "day", "low", SNAP_F64},
    [SNAP_DAY_CLOSE] = {"day_close", "day", "close", SNAP_F64},
    [SNAP_DAY_VOLUME] = {"day_volume", "day", "volume", SNAP_I64},
    [SNAP_DAY_VWAP] = {"day_vwap", "day", "vwap", SNAP_F64},
    [SNAP_DAY_CHANGE] = {"day_change", "day", "change", SNAP_F64},
    [SNAP_DAY_CHANGE_PERCENT] = {"day_change_percent", "day", "change_percent", SNAP_F64},
    [SNAP_DAY_PREVIOUS_CLOSE] = {"day_previous_close", "day", "previous_close", SNAP_F64},
    [SNAP_DAY_TIME] = {"day_time", "day", "last_updated", SNAP_TS},
    [SNAP_IMPLIED_VOLATILITY] = {"implied_volatility", NULL, "implied_volatility", SNAP_F64},
    [SNAP_OPEN_INTEREST] = {"open_interest", NULL, "open_interest", SNAP_I64},
    [SNAP_DELTA] = {"delta", "greeks", "delta", SNAP_F64},
    [SNAP_GAMMA] = {"gamma", "greeks", "gamma", SNAP_F64},
    [SNAP_THETA] = {"theta", "greeks", "theta", SNAP_F64},
    [SNAP_VEGA] = {"vega", "greeks", "vega", SNAP_F64},
    [SNAP_BID] = {"bid", "last_quote", "bid", SNAP_F64},
    [SNAP_ASK] = {"ask", "last_quote", "ask", SNAP_F64},
    [SNAP_BID_SIZE] = {"bid_size", "last_quote", "bid_size", SNAP_I64},
    [SNAP_ASK_SIZE] = {"ask_size", "last_quote", "ask_size", SNAP_I64},
    [SNAP_MIDPOINT] = {"midpoint", "last_quote", "midpoint", SNAP_F64},
    [SNAP_QUOTE_TIME] = {"quote_time", "last_quote", "last_updated", SNAP_TS},
    [SNAP_TRADE_PRICE] = {"trade_price", "last_trade", "price", SNAP_F64},
    [SNAP_TRADE_SIZE] = {"trade_size", "last_trade", "size", SNAP_I64},
    [SNAP_TRADE_EXCHANGE] = {"trade_exchange", "last_trade", "exchange", SNAP_I64},
    [SNAP_TRADE_TIME] = {"trade_time", "last_trade", "sip_timestamp", SNAP_TS},
    [SNAP_UNDERLYING_PRICE] = {"underlying_price", "underlying_asset", "price", SNAP_F64},
    [SNAP_UNDERLYING_TIME] = {"underlying_time", "underlying_asset", "last_updated", SNAP_TS},
    [SNAP_CHANGE_TO_BREAK_EVEN] = {"change_to_break_even", "underlying_asset", "change_to_break_even", SNAP_F64},
    [SNAP_BREAK_EVEN_PRICE] = {"break_even_price", NULL, "break_even_price", SNAP_F64},
    [SNAP_FMV] = {"fmv", NULL, "fmv", SNAP_F64},
};

void row_reject_clear(struct row_reject *rj)
{
    free(rj->raw);
    memset(rj, 0, sizeof *rj);
}

const char *option_contract_type_name(char contract_type)
{
    switch (contract_type) {
    case 'C': return "call";
    case 'P': return "put";
    default: return "other";
    }
}

const char *option_exercise_style_name(char exercise_style)
{
    switch (exercise_style) {
    case 'A': return "american";
    case 'E': return "european";
    case 'B': return "bermudan";
    default: return NULL;
    }
}

const char *row_source_name(enum row_source source)
{
    return source == ROW_SOURCE_BACKFILL ? "backfill" : "live";
}
