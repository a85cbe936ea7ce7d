/* row.c - column table and small helpers for the shared row types. */
#include "optsnap/api/row.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/timeutil.h"

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
    [SNAP_QUOTE_TIMEFRAME] = {"quote_timeframe", "last_quote", "timeframe", SNAP_TIMEFRAME},
    [SNAP_BID_EXCHANGE] = {"bid_exchange", "last_quote", "bid_exchange", SNAP_I64},
    [SNAP_ASK_EXCHANGE] = {"ask_exchange", "last_quote", "ask_exchange", SNAP_I64},
    [SNAP_TRADE_TIMEFRAME] = {"trade_timeframe", "last_trade", "timeframe", SNAP_TIMEFRAME},
    [SNAP_TRADE_CONDITIONS] = {"trade_conditions", "last_trade", "conditions", SNAP_CONDITIONS},
    [SNAP_UNDERLYING_VALUE] = {"underlying_value", "underlying_asset", "value", SNAP_F64},
    [SNAP_UNDERLYING_TIMEFRAME] = {"underlying_timeframe", "underlying_asset", "timeframe", SNAP_TIMEFRAME},
    [SNAP_FMV_TIME] = {"fmv_time", NULL, "fmv_last_updated", SNAP_TS},
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

const char *reject_kind_name(enum reject_kind kind)
{
    switch (kind) {
    case REJECT_PARTIAL: return "partial";
    case REJECT_REFUSED: return "refused";
    case REJECT_ROW: break;
    }
    return "reject";
}

const char *snap_timeframe_name(int64_t timeframe)
{
    switch (timeframe) {
    case SNAP_TIMEFRAME_DELAYED: return "DELAYED";
    case SNAP_TIMEFRAME_REAL_TIME: return "REAL-TIME";
    default: return NULL;
    }
}

struct json_out {
    char *buf;
    size_t size, len;
    bool overflow;
};

static void out_printf(struct json_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct json_out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

/* A JSON string of printable ASCII (what rows hold), quotes and backslashes escaped. */
static void out_string(struct json_out *o, const char *str)
{
    out_printf(o, "\"");
    for (const char *p = str; *p; p++) {
        if (*p == '"' || *p == '\\')
            out_printf(o, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            out_printf(o, "\\u%04x", (unsigned char)*p);
        else
            out_printf(o, "%c", *p);
    }
    out_printf(o, "\"");
}

static void out_value(struct json_out *o, const struct snapshot_row *r, int c)
{
    switch (snap_cols[c].type) {
    case SNAP_F64: out_printf(o, "%.17g", r->v[c].f); break;
    case SNAP_I64: out_printf(o, "%lld", (long long)r->v[c].i); break;
    case SNAP_TS: out_printf(o, "%lld", (long long)r->v[c].i * 1000); break; /* the API's ns */
    case SNAP_TIMEFRAME: {
        const char *n = snap_timeframe_name(r->v[c].i);
        out_printf(o, n ? "\"%s\"" : "null", n ? n : "");
        break;
    }
    case SNAP_CONDITIONS:
        out_printf(o, "[");
        for (unsigned i = 0; i < r->nconditions && i < SNAP_CONDITIONS_MAX; i++)
            out_printf(o, "%s%d", i ? "," : "", (int)r->conditions[i]);
        out_printf(o, "]");
        break;
    }
}

long snapshot_row_to_api_json(const struct snapshot_row *row, char *buf, size_t size)
{
    struct json_out o = {.buf = buf, .size = size};
    if (size == 0)
        return -1;
    buf[0] = '\0';
    const struct option_contract *ct = &row->contract;
    char day[16];
    out_printf(&o, "{\"details\":{\"ticker\":");
    out_string(&o, ct->ticker);
    out_printf(&o, ",\"contract_type\":\"%s\"", option_contract_type_name(ct->contract_type));
    if (option_exercise_style_name(ct->exercise_style))
        out_printf(&o, ",\"exercise_style\":\"%s\"", option_exercise_style_name(ct->exercise_style));
    out_printf(&o, ",\"expiration_date\":\"%s\",\"strike_price\":%.17g",
               date_format(day, sizeof day, ct->expiration_days), ct->strike_price);
    if (ct->shares_per_contract > 0)
        out_printf(&o, ",\"shares_per_contract\":%d", (int)ct->shares_per_contract);
    out_printf(&o, "}");
    /* top-level values, then each block in the order snap_cols first names it */
    for (int c = 0; c < SNAP_NCOLS; c++) {
        if (snap_cols[c].json_obj != NULL || !snapshot_row_has(row, (enum snap_col)c))
            continue;
        out_printf(&o, ",\"%s\":", snap_cols[c].json_key);
        out_value(&o, row, c);
    }
    for (int c = 0; c < SNAP_NCOLS; c++) {
        const char *obj = snap_cols[c].json_obj;
        if (obj == NULL)
            continue;
        bool first_use = true;
        for (int d = 0; d < c && first_use; d++)
            if (snap_cols[d].json_obj != NULL && strcmp(snap_cols[d].json_obj, obj) == 0)
                first_use = false;
        if (!first_use)
            continue;
        bool underlying = strcmp(obj, "underlying_asset") == 0;
        int n = 0;
        for (int d = c; d < SNAP_NCOLS; d++) {
            if (snap_cols[d].json_obj == NULL || strcmp(snap_cols[d].json_obj, obj) != 0 ||
                !snapshot_row_has(row, (enum snap_col)d))
                continue;
            if (n++ == 0)
                out_printf(&o, ",\"%s\":{", obj);
            else
                out_printf(&o, ",");
            out_printf(&o, "\"%s\":", snap_cols[d].json_key);
            out_value(&o, row, d);
        }
        if (underlying && ct->underlying[0]) {
            if (n++ == 0)
                out_printf(&o, ",\"%s\":{", obj);
            else
                out_printf(&o, ",");
            out_printf(&o, "\"ticker\":");
            out_string(&o, ct->underlying);
        }
        if (n > 0)
            out_printf(&o, "}");
    }
    out_printf(&o, "}");
    if (o.overflow) {
        buf[0] = '\0';
        return -1;
    }
    return (long)o.len;
}
