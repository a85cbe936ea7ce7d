/* snapshot_parse.c - option chain snapshot pages (cJSON) into snapshot rows and rejects. */
#include "optsnap/api/snapshot_parse.h"

#include "optsnap/util/array.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/api_envelope.h"
#include "optsnap/api/occ.h"
#include "optsnap/util/timeutil.h"

#define SNAPSHOT_RESULTS_MAX 50000
#define REJECT_RAW_MAX (1024 * 1024)
/* Event timestamps outside [2000-01-01, 2100-01-01) are unit mistakes
 * (ms or s sent as ns) or garbage, never market data. */
#define TS_MIN_NS INT64_C(946684800000000000)
#define TS_MAX_NS INT64_C(4102444800000000000)
/* Sizes and counts above 2^53 cannot have come through a double intact. */
#define COUNT_MAX 9007199254740992.0

enum block { BLK_TOP, BLK_DAY, BLK_GREEKS, BLK_QUOTE, BLK_TRADE, BLK_UNDERLYING, BLK_N };

static const char *const block_names[BLK_N] = {
    [BLK_TOP] = NULL,
    [BLK_DAY] = "day",
    [BLK_GREEKS] = "greeks",
    [BLK_QUOTE] = "last_quote",
    [BLK_TRADE] = "last_trade",
    [BLK_UNDERLYING] = "underlying_asset",
};

/* Prices may not be negative. Changes, greeks and the derived break-even
 * figures may, and are left alone. */
static bool col_is_price(enum snap_col c)
{
    switch (c) {
    case SNAP_DAY_OPEN:
    case SNAP_DAY_HIGH:
    case SNAP_DAY_LOW:
    case SNAP_DAY_CLOSE:
    case SNAP_DAY_VWAP:
    case SNAP_DAY_PREVIOUS_CLOSE:
    case SNAP_BID:
    case SNAP_ASK:
    case SNAP_MIDPOINT:
    case SNAP_TRADE_PRICE:
    case SNAP_UNDERLYING_PRICE:
    case SNAP_FMV:
        return true;
    default:
        return false;
    }
}

struct col_plan {
    enum block block[SNAP_NCOLS];
    bool price[SNAP_NCOLS];
};

static void col_plan_init(struct col_plan *plan)
{
    for (int c = 0; c < SNAP_NCOLS; c++) {
        plan->block[c] = BLK_TOP;
        for (int b = 1; b < BLK_N && snap_cols[c].json_obj != NULL; b++)
            if (strcmp(snap_cols[c].json_obj, block_names[b]) == 0)
                plan->block[c] = (enum block)b;
        plan->price[c] = col_is_price((enum snap_col)c);
    }
}

static bool present(const cJSON *it)
{
    return it != NULL && !cJSON_IsNull(it);
}

static int reason_set(char *reason, const char *obj, const char *key, const char *what)
{
    snprintf(reason, sizeof ((struct row_reject *)0)->reason, "%s%s%s: %s", obj ? obj : "",
             obj ? "." : "", key, what);
    return 1;
}

static char contract_type_code(const char *s)
{
    if (strcmp(s, "call") == 0)
        return 'C';
    if (strcmp(s, "put") == 0)
        return 'P';
    return 'O';
}

static char exercise_style_code(const char *s)
{
    if (strcmp(s, "american") == 0)
        return 'A';
    if (strcmp(s, "european") == 0)
        return 'E';
    if (strcmp(s, "bermudan") == 0)
        return 'B';
    return '?';
}

/* details{} must agree with the OCC symbol; missing fields come from it. */
static int details_check(const cJSON *details, const struct occ_symbol *occ,
                         struct option_contract *ct, char *reason)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(details, "contract_type");
    if (present(it)) {
        if (!cJSON_IsString(it))
            return reason_set(reason, "details", "contract_type", "not a string");
        if (contract_type_code(it->valuestring) != occ->contract_type)
            return reason_set(reason, "details", "contract_type", "disagrees with ticker");
    }
    it = cJSON_GetObjectItemCaseSensitive(details, "exercise_style");
    if (present(it)) {
        if (!cJSON_IsString(it))
            return reason_set(reason, "details", "exercise_style", "not a string");
        ct->exercise_style = exercise_style_code(it->valuestring);
    }
    it = cJSON_GetObjectItemCaseSensitive(details, "expiration_date");
    if (present(it)) {
        int32_t days;
        if (!cJSON_IsString(it))
            return reason_set(reason, "details", "expiration_date", "not a string");
        if (date_parse(it->valuestring, &days))
            return reason_set(reason, "details", "expiration_date", "not a date");
        if (days != occ->expiration_days)
            return reason_set(reason, "details", "expiration_date", "disagrees with ticker");
    }
    it = cJSON_GetObjectItemCaseSensitive(details, "strike_price");
    if (present(it)) {
        if (!cJSON_IsNumber(it))
            return reason_set(reason, "details", "strike_price", "not a number");
        double d = it->valuedouble;
        if (!isfinite(d))
            return reason_set(reason, "details", "strike_price", "not finite");
        if (d < 0)
            return reason_set(reason, "details", "strike_price", "negative");
        if (d >= 1e6 || llround(d * 1000.0) != occ->strike_milli)
            return reason_set(reason, "details", "strike_price", "disagrees with ticker");
    }
    it = cJSON_GetObjectItemCaseSensitive(details, "shares_per_contract");
    if (present(it)) {
        if (!cJSON_IsNumber(it))
            return reason_set(reason, "details", "shares_per_contract", "not a number");
        double d = it->valuedouble;
        if (!isfinite(d))
            return reason_set(reason, "details", "shares_per_contract", "not finite");
        if (d < 0)
            return reason_set(reason, "details", "shares_per_contract", "negative");
        if (d != floor(d) || d > 2147483647.0)
            return reason_set(reason, "details", "shares_per_contract", "not an integer");
        ct->shares_per_contract = (int32_t)d;
    }
    return 0;
}

struct parse_ctx {
    const struct api_envelope *env;
    const struct json_exact_ints *exact;
    const struct col_plan *plan;
    const char *underlying; /* "" = take it from the data */
};

/* Fills *row from one result. Returns 0, or 1 with a reason (a reject);
 * ticker gets the symbol as far as it could be read. */
static int row_parse(const struct parse_ctx *cx, const cJSON *res, struct snapshot_row *row,
                     char *reason, char *ticker)
{
    ticker[0] = '\0';
    if (!cJSON_IsObject(res))
        return reason_set(reason, NULL, "result", "not an object");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(res, "details");
    if (present(details) && !cJSON_IsObject(details))
        return reason_set(reason, NULL, "details", "not an object");
    const cJSON *tk = present(details) ? cJSON_GetObjectItemCaseSensitive(details, "ticker") : NULL;
    if (!present(tk))
        return reason_set(reason, "details", "ticker", "missing");
    if (!cJSON_IsString(tk))
        return reason_set(reason, "details", "ticker", "not a string");
    api_copy_ascii(ticker, OPTSNAP_TICKER_MAX, tk->valuestring);
    struct occ_symbol occ;
    if (occ_parse(tk->valuestring, &occ))
        return reason_set(reason, "details", "ticker", "not an OCC symbol");

    memset(row, 0, sizeof *row);
    struct option_contract *ct = &row->contract;
    memcpy(ct->ticker, tk->valuestring, strlen(tk->valuestring) + 1); /* occ_parse bounds it */
    ct->contract_type = occ.contract_type;
    ct->exercise_style = '?';
    ct->expiration_days = occ.expiration_days;
    ct->strike_price = (double)occ.strike_milli / 1000.0;
    if (details_check(details, &occ, ct, reason))
        return 1;

    const cJSON *blk[BLK_N];
    blk[BLK_TOP] = res;
    for (int b = 1; b < BLK_N; b++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(res, block_names[b]);
        if (!present(it)) {
            blk[b] = NULL;
            continue;
        }
        if (!cJSON_IsObject(it))
            return reason_set(reason, NULL, block_names[b], "not an object");
        blk[b] = it;
    }

    const char *ua = NULL;
    if (blk[BLK_UNDERLYING] != NULL) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(blk[BLK_UNDERLYING], "ticker");
        if (present(it) && !cJSON_IsString(it))
            return reason_set(reason, "underlying_asset", "ticker", "not a string");
        if (present(it) && it->valuestring[0] != '\0')
            ua = it->valuestring;
    }
    if (cx->underlying[0] != '\0') {
        if (ua != NULL && strcmp(ua, cx->underlying) != 0)
            return reason_set(reason, "underlying_asset", "ticker", "not the requested underlying");
        api_copy_ascii(ct->underlying, sizeof ct->underlying, cx->underlying);
    } else if (ua != NULL) {
        if (strlen(ua) >= sizeof ct->underlying)
            return reason_set(reason, "underlying_asset", "ticker", "too long");
        api_copy_ascii(ct->underlying, sizeof ct->underlying, ua);
    } else {
        memcpy(ct->underlying, occ.root, strlen(occ.root) + 1);
    }

    for (int c = 0; c < SNAP_NCOLS; c++) {
        const cJSON *b = blk[cx->plan->block[c]];
        if (b == NULL)
            continue;
        const struct snap_col_desc *cd = &snap_cols[c];
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(b, cd->json_key);
        if (!present(it))
            continue;
        if (!cJSON_IsNumber(it))
            return reason_set(reason, cd->json_obj, cd->json_key, "not a number");
        double d = it->valuedouble;
        if (!isfinite(d))
            return reason_set(reason, cd->json_obj, cd->json_key, "not finite");
        switch (cd->type) {
        case SNAP_F64:
            if (cx->plan->price[c] && d < 0)
                return reason_set(reason, cd->json_obj, cd->json_key, "negative");
            snapshot_row_set_f64(row, (enum snap_col)c, d);
            break;
        case SNAP_I64:
            if (d < 0)
                return reason_set(reason, cd->json_obj, cd->json_key, "negative");
            if (d != floor(d) || d > COUNT_MAX)
                return reason_set(reason, cd->json_obj, cd->json_key, "not an integer");
            snapshot_row_set_i64(row, (enum snap_col)c, (int64_t)d);
            break;
        case SNAP_TS: {
            int64_t ns;
            if (api_number_exact_i64(cx->env, cx->exact, it, &ns))
                return reason_set(reason, cd->json_obj, cd->json_key, "not an integer");
            if (ns < TS_MIN_NS || ns >= TS_MAX_NS)
                return reason_set(reason, cd->json_obj, cd->json_key, "timestamp out of range");
            snapshot_row_set_i64(row, (enum snap_col)c, ns_to_us(ns));
            break;
        }
        }
    }

    /* The key is the contract's own latest event; the underlying's clock is not one. */
    static const enum snap_col event_cols[] = {SNAP_DAY_TIME, SNAP_QUOTE_TIME, SNAP_TRADE_TIME};
    bool have = false;
    for (size_t i = 0; i < sizeof event_cols / sizeof event_cols[0]; i++) {
        if (!snapshot_row_has(row, event_cols[i]))
            continue;
        int64_t t = row->v[event_cols[i]].i;
        if (!have || t > row->last_updated_us)
            row->last_updated_us = t;
        have = true;
    }
    if (!have)
        return reason_set(reason, NULL, "last_updated", "no event timestamp");
    row->source = ROW_SOURCE_LIVE;
    return 0;
}

static int reject_add(struct snapshot_page *page, const cJSON *res, const char *reason,
                      const char *ticker)
{
    if (array_reserve((void **)&page->rejects, &page->rejects_cap, page->nrejects + 1, sizeof *page->rejects))
        return PARSE_ERR_NOMEM;
    char *raw = cJSON_PrintUnformatted(res);
    if (raw == NULL)
        return PARSE_ERR_NOMEM;
    size_t n = strlen(raw);
    /* It goes to a text column: valid UTF-8, no NUL, bounded. */
    if (n > REJECT_RAW_MAX || api_utf8_first_invalid(raw, n) != n) {
        char *clean = api_text_sanitize(raw, n, REJECT_RAW_MAX, &n);
        free(raw);
        if (clean == NULL)
            return PARSE_ERR_NOMEM;
        raw = clean;
    }
    struct row_reject *rj = &page->rejects[page->nrejects++];
    memset(rj, 0, sizeof *rj);
    api_copy_ascii(rj->ticker, sizeof rj->ticker, ticker);
    api_copy_ascii(rj->reason, sizeof rj->reason, reason);
    rj->raw = raw;
    rj->raw_len = n;
    return PARSE_OK;
}

static int rows_reserve(struct snapshot_page *page, size_t more)
{
    return array_reserve((void **)&page->rows, &page->rows_cap, page->nrows + more, sizeof *page->rows);
}

int snapshot_page_parse(struct snapshot_page *page, const char *body, size_t len,
                        const char *underlying, char *err, size_t err_size)
{
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (page->exact == NULL) {
        page->exact = calloc(1, sizeof *page->exact);
        if (page->exact == NULL) {
            api_err_set(err, err_size, NULL, "out of memory");
            return PARSE_ERR_NOMEM;
        }
    }
    struct api_envelope env;
    int rc = api_envelope_open(&env, body, len, page->exact, err, err_size);
    memcpy(page->request_id, env.request_id, sizeof page->request_id);
    memcpy(page->status, env.status, sizeof page->status);
    if (rc != PARSE_OK)
        return rc;

    const cJSON *results = env.results;
    size_t count = 0;
    if (results == NULL) {
        api_err_set(err, err_size, env.request_id, "results: missing");
        rc = PARSE_ERR_SHAPE;
    } else if (cJSON_IsArray(results)) {
        count = (size_t)cJSON_GetArraySize(results);
        if (count > SNAPSHOT_RESULTS_MAX) {
            api_err_set(err, err_size, env.request_id, "results: %zu entries, more than %d",
                        count, SNAPSHOT_RESULTS_MAX);
            rc = PARSE_ERR_SHAPE;
        }
    } else if (cJSON_IsObject(results)) {
        count = 1; /* the single-contract endpoint */
    } else {
        api_err_set(err, err_size, env.request_id, "results: not an array or object");
        rc = PARSE_ERR_SHAPE;
    }
    char *next_url = NULL;
    if (rc == PARSE_OK)
        rc = api_next_url_take(&env, &next_url, err, err_size);
    if (rc == PARSE_OK && rows_reserve(page, count)) {
        api_err_set(err, err_size, env.request_id, "out of memory");
        rc = PARSE_ERR_NOMEM;
    }
    if (rc != PARSE_OK) {
        free(next_url);
        api_envelope_close(&env);
        return rc;
    }

    struct col_plan plan;
    col_plan_init(&plan);
    struct parse_ctx cx = {
        .env = &env,
        .exact = page->exact,
        .plan = &plan,
        .underlying = underlying != NULL ? underlying : "",
    };
    size_t nrows0 = page->nrows, nrejects0 = page->nrejects;
    const cJSON *res = cJSON_IsArray(results) ? results->child : results;
    for (; res != NULL; res = cJSON_IsArray(results) ? res->next : NULL) {
        char reason[sizeof ((struct row_reject *)0)->reason];
        char ticker[OPTSNAP_TICKER_MAX];
        struct snapshot_row *row = &page->rows[page->nrows];
        if (row_parse(&cx, res, row, reason, ticker) == 0) {
            page->nrows++;
            continue;
        }
        if (reject_add(page, res, reason, ticker) != PARSE_OK) {
            while (page->nrejects > nrejects0)
                row_reject_clear(&page->rejects[--page->nrejects]);
            page->nrows = nrows0;
            free(next_url);
            api_envelope_close(&env);
            api_err_set(err, err_size, env.request_id, "out of memory");
            return PARSE_ERR_NOMEM;
        }
    }
    free(page->next_url);
    page->next_url = next_url;
    api_envelope_close(&env);
    return PARSE_OK;
}

void snapshot_page_reset(struct snapshot_page *page)
{
    for (size_t i = 0; i < page->nrejects; i++)
        row_reject_clear(&page->rejects[i]);
    page->nrejects = 0;
    page->nrows = 0;
    free(page->next_url);
    page->next_url = NULL;
    page->request_id[0] = '\0';
    page->status[0] = '\0';
}

void snapshot_page_free(struct snapshot_page *page)
{
    snapshot_page_reset(page);
    free(page->rows);
    free(page->rejects);
    if (page->exact != NULL)
        free(page->exact->items);
    free(page->exact);
    memset(page, 0, sizeof *page);
}
