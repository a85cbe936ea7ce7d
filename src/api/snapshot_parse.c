/* snapshot_parse.c - option chain snapshot pages (cJSON) into snapshot rows, partial rows and rejects. */
#include "optsnap/api/snapshot_parse.h"

#include "optsnap/util/array.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/api_envelope.h"
#include "optsnap/api/occ.h"
#include "optsnap/api/roots.h"
#include "optsnap/util/timeutil.h"

#define SNAPSHOT_RESULTS_MAX 50000
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
    case SNAP_UNDERLYING_VALUE:
    case SNAP_FMV:
        return true;
    default:
        return false;
    }
}

/* Per block, its columns by JSON key: an open-addressed table of column
 * numbers, so one walk over a block's members finds each column's item
 * (cJSON_GetObjectItemCaseSensitive per column walks the members once per
 * column: 221 lookups a row, 8% of a sweep's instructions under callgrind). */
#define KEY_SLOTS 64 /* a power of two; a block has at most 12 columns */

struct col_plan {
    enum block block[SNAP_NCOLS];
    bool price[SNAP_NCOLS];
    signed char slot[BLK_N][KEY_SLOTS]; /* column, or -1 */
};

_Static_assert(SNAP_NCOLS < 127, "column numbers fit a signed char");

static unsigned key_hash(const char *k)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *k != '\0'; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

static void col_plan_init(struct col_plan *plan)
{
    memset(plan->slot, -1, sizeof plan->slot);
    for (int c = 0; c < SNAP_NCOLS; c++) {
        plan->block[c] = BLK_TOP;
        for (int b = 1; b < BLK_N && snap_cols[c].json_obj != NULL; b++)
            if (strcmp(snap_cols[c].json_obj, block_names[b]) == 0)
                plan->block[c] = (enum block)b;
        plan->price[c] = col_is_price((enum snap_col)c);
        signed char *t = plan->slot[plan->block[c]];
        unsigned h = key_hash(snap_cols[c].json_key);
        while (t[h & (KEY_SLOTS - 1)] >= 0)
            h++;
        t[h & (KEY_SLOTS - 1)] = (signed char)c;
    }
}

/* The column block b reads from member `key`, or -1. */
static int col_plan_find(const struct col_plan *plan, enum block b, const char *key)
{
    const signed char *t = plan->slot[b];
    for (unsigned h = key_hash(key);; h++) {
        int c = t[h & (KEY_SLOTS - 1)];
        if (c < 0 || strcmp(snap_cols[c].json_key, key) == 0)
            return c;
    }
}

static bool present(const cJSON *it)
{
    return it != NULL && !cJSON_IsNull(it);
}

#define REASON_SIZE sizeof((struct row_reject *)0)->reason

static void reason_write(char *reason, const char *obj, const char *key, const char *what)
{
    snprintf(reason, REASON_SIZE, "%s%s%s: %s", obj ? obj : "", obj ? "." : "", key, what);
}

/* A whole-row reject: the reason, and 1 for the caller to return. */
static int reject_row(char *reason, const char *obj, const char *key, const char *what)
{
    reason_write(reason, obj, key, what);
    return 1;
}

/* Fields of one result that were dropped: the first reason and how many. */
struct dropped {
    char first[REASON_SIZE];
    int n;
};

static void drop(struct dropped *d, const char *obj, const char *key, const char *what)
{
    if (d->n++ == 0)
        reason_write(d->first, obj, key, what);
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

/* details.<key> when it is sent as a finite number >= 0 (*v); false when it
 * is absent or null, or dropped for not being one. */
static bool details_number(const cJSON *details, const char *key, struct dropped *d, double *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(details, key);
    if (!present(it))
        return false;
    if (!cJSON_IsNumber(it))
        drop(d, "details", key, "not a number");
    else if (!isfinite(it->valuedouble))
        drop(d, "details", key, "not finite");
    else if (it->valuedouble < 0)
        drop(d, "details", key, "negative");
    else {
        *v = it->valuedouble;
        return true;
    }
    return false;
}

/* details{} must agree with the OCC symbol (a disagreement rejects the row:
 * which of the two is right cannot be told); missing fields come from the
 * symbol; a field that cannot be read is dropped. */
static int details_check(const cJSON *details, const struct occ_symbol *occ,
                         struct option_contract *ct, char *reason, struct dropped *d)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(details, "contract_type");
    if (present(it)) {
        if (!cJSON_IsString(it))
            drop(d, "details", "contract_type", "not a string");
        else if (contract_type_code(it->valuestring) != occ->contract_type)
            return reject_row(reason, "details", "contract_type", "disagrees with ticker");
    }
    it = cJSON_GetObjectItemCaseSensitive(details, "exercise_style");
    if (present(it)) {
        if (!cJSON_IsString(it))
            drop(d, "details", "exercise_style", "not a string");
        else if ((ct->exercise_style = exercise_style_code(it->valuestring)) == '?')
            drop(d, "details", "exercise_style", "unknown value");
    }
    it = cJSON_GetObjectItemCaseSensitive(details, "expiration_date");
    if (present(it)) {
        int32_t days;
        if (!cJSON_IsString(it))
            drop(d, "details", "expiration_date", "not a string");
        else if (date_parse(it->valuestring, &days))
            drop(d, "details", "expiration_date", "not a date");
        else if (days != occ->expiration_days)
            return reject_row(reason, "details", "expiration_date", "disagrees with ticker");
    }
    double v;
    if (details_number(details, "strike_price", d, &v) && (v >= 1e6 || llround(v * 1000.0) != occ->strike_milli))
        return reject_row(reason, "details", "strike_price", "disagrees with ticker");
    if (details_number(details, "shares_per_contract", d, &v)) {
        if (v != floor(v) || v > 2147483647.0)
            drop(d, "details", "shares_per_contract", "not an integer");
        else
            ct->shares_per_contract = (int32_t)v;
    }
    return 0;
}

struct parse_ctx {
    const struct api_envelope *env;
    const struct json_exact_ints *exact;
    const struct col_plan *plan;
    const char *underlying; /* "" = take it from the data */
    int64_t fallback_us;
};

/* Reads one value column from its JSON item into row, or drops it. */
static void column_read(const struct parse_ctx *cx, const cJSON *it, int c, struct snapshot_row *row,
                        struct dropped *d)
{
    const struct snap_col_desc *cd = &snap_cols[c];
    switch (cd->type) {
    case SNAP_TIMEFRAME:
        if (!cJSON_IsString(it))
            drop(d, cd->json_obj, cd->json_key, "not a string");
        else if (strcmp(it->valuestring, "DELAYED") == 0)
            snapshot_row_set_i64(row, (enum snap_col)c, SNAP_TIMEFRAME_DELAYED);
        else if (strcmp(it->valuestring, "REAL-TIME") == 0)
            snapshot_row_set_i64(row, (enum snap_col)c, SNAP_TIMEFRAME_REAL_TIME);
        else
            drop(d, cd->json_obj, cd->json_key, "unknown value");
        return;
    case SNAP_CONDITIONS: {
        if (!cJSON_IsArray(it)) {
            drop(d, cd->json_obj, cd->json_key, "not an array");
            return;
        }
        uint8_t n = 0;
        for (const cJSON *e = it->child; e != NULL; e = e->next) {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble != floor(e->valuedouble) ||
                e->valuedouble < 0 || e->valuedouble > 2147483647.0) {
                drop(d, cd->json_obj, cd->json_key, "not a list of condition codes");
                return;
            }
            if (n == SNAP_CONDITIONS_MAX) {
                drop(d, cd->json_obj, cd->json_key, "more than 16 codes");
                return;
            }
            row->conditions[n++] = (int32_t)e->valuedouble;
        }
        row->nconditions = n;
        row->present |= UINT64_C(1) << c;
        return;
    }
    case SNAP_TS: {
        int64_t us;
        int rc = api_timestamp_us(cx->env, cx->exact, it, &us);
        if (rc == API_TS_OK)
            snapshot_row_set_i64(row, (enum snap_col)c, us);
        else if (rc == API_TS_NOT_NUMBER)
            drop(d, cd->json_obj, cd->json_key, cJSON_IsNumber(it) ? "not finite" : "not a number");
        else if (rc == API_TS_OUT_OF_RANGE)
            drop(d, cd->json_obj, cd->json_key, "timestamp out of range");
        return; /* API_TS_NONE: 0 is how the API says "no such event" */
    }
    case SNAP_F64:
    case SNAP_I64:
        break;
    }
    if (!cJSON_IsNumber(it)) {
        drop(d, cd->json_obj, cd->json_key, "not a number");
        return;
    }
    double v = it->valuedouble;
    if (!isfinite(v))
        drop(d, cd->json_obj, cd->json_key, "not finite");
    else if (cd->type == SNAP_F64 && cx->plan->price[c] && v < 0)
        drop(d, cd->json_obj, cd->json_key, "negative");
    else if (cd->type == SNAP_F64)
        snapshot_row_set_f64(row, (enum snap_col)c, v);
    else if (v < 0)
        drop(d, cd->json_obj, cd->json_key, "negative");
    else if (v != floor(v) || v > COUNT_MAX)
        drop(d, cd->json_obj, cd->json_key, "not an integer");
    else
        snapshot_row_set_i64(row, (enum snap_col)c, (int64_t)v);
}

/* Fills *row from one result. Returns 0 (a row; d says what was dropped),
 * or 1 with a reason (a reject); ticker gets the symbol as far as it could
 * be read. */
static int row_parse(const struct parse_ctx *cx, const cJSON *res, struct snapshot_row *row,
                     char *reason, char *ticker, struct dropped *d)
{
    ticker[0] = '\0';
    memset(d, 0, sizeof *d);
    if (!cJSON_IsObject(res))
        return reject_row(reason, NULL, "result", "not an object");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(res, "details");
    if (present(details) && !cJSON_IsObject(details))
        return reject_row(reason, NULL, "details", "not an object");
    const cJSON *tk = present(details) ? cJSON_GetObjectItemCaseSensitive(details, "ticker") : NULL;
    if (!present(tk))
        return reject_row(reason, "details", "ticker", "missing");
    if (!cJSON_IsString(tk))
        return reject_row(reason, "details", "ticker", "not a string");
    api_copy_ascii(ticker, OPTSNAP_TICKER_MAX, tk->valuestring);
    struct occ_symbol occ;
    if (occ_parse(tk->valuestring, &occ))
        return reject_row(reason, "details", "ticker", "not an OCC symbol");

    memset(row, 0, sizeof *row);
    struct option_contract *ct = &row->contract;
    memcpy(ct->ticker, tk->valuestring, strlen(tk->valuestring) + 1); /* occ_parse bounds it */
    ct->contract_type = occ.contract_type;
    ct->exercise_style = '?';
    ct->expiration_days = occ.expiration_days;
    ct->strike_price = (double)occ.strike_milli / 1000.0;
    if (details_check(details, &occ, ct, reason, d))
        return 1;

    const cJSON *blk[BLK_N];
    blk[BLK_TOP] = res;
    for (int b = 1; b < BLK_N; b++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(res, block_names[b]);
        blk[b] = NULL;
        if (!present(it))
            continue;
        if (!cJSON_IsObject(it))
            drop(d, NULL, block_names[b], "not an object");
        else
            blk[b] = it;
    }

    const char *ua = NULL;
    if (blk[BLK_UNDERLYING] != NULL) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(blk[BLK_UNDERLYING], "ticker");
        if (present(it) && !cJSON_IsString(it))
            drop(d, "underlying_asset", "ticker", "not a string");
        else if (present(it) && it->valuestring[0] != '\0')
            ua = it->valuestring;
    }
    if (!option_row_matches_underlying(cx->underlying, ua, occ.root))
        return reject_row(reason, "underlying_asset", "ticker", "not the requested underlying");
    if (cx->underlying[0] != '\0') {
        api_copy_ascii(ct->underlying, sizeof ct->underlying, cx->underlying);
    } else if (ua != NULL) {
        if (strlen(ua) >= sizeof ct->underlying)
            return reject_row(reason, "underlying_asset", "ticker", "too long");
        api_copy_ascii(ct->underlying, sizeof ct->underlying, ua);
    } else {
        memcpy(ct->underlying, occ.root, strlen(occ.root) + 1);
    }

    /* each block's members once; a key's first member counts, as with
     * cJSON_GetObjectItemCaseSensitive; columns are then read in their order */
    const cJSON *item[SNAP_NCOLS] = {0};
    for (int b = 0; b < BLK_N; b++) {
        for (const cJSON *it = blk[b] != NULL ? blk[b]->child : NULL; it != NULL; it = it->next) {
            int c = it->string != NULL ? col_plan_find(cx->plan, (enum block)b, it->string) : -1;
            if (c >= 0 && item[c] == NULL)
                item[c] = it;
        }
    }
    for (int c = 0; c < SNAP_NCOLS; c++)
        if (present(item[c]))
            column_read(cx, item[c], c, row, d);

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
    if (!have) {
        if (cx->fallback_us <= 0)
            return reject_row(reason, NULL, "last_updated", "no event timestamp");
        row->last_updated_us = cx->fallback_us;
        row->last_updated_fallback = true;
    }
    row->source = ROW_SOURCE_LIVE;
    return 0;
}

/* The raw text of result `index`: the exact bytes the API sent when the
 * spans are known, else cJSON's printing of it (numbers may then differ in
 * form); valid UTF-8 without NUL, capped. malloc'd; NULL when out of memory. */
static char *result_raw(const char *body, const struct json_span *span, const cJSON *res, size_t *out_len)
{
    const char *text;
    size_t n;
    char *printed = NULL;
    if (span != NULL) {
        text = body + span->start;
        n = span->end - span->start;
    } else {
        printed = cJSON_PrintUnformatted(res);
        if (printed == NULL)
            return NULL;
        text = printed;
        n = strlen(printed);
    }
    char *raw;
    if (n > SNAPSHOT_REJECT_RAW_MAX || api_utf8_first_invalid(text, n) != n) {
        raw = api_text_sanitize(text, n, SNAPSHOT_REJECT_RAW_MAX, &n);
    } else {
        raw = malloc(n + 1);
        if (raw != NULL) {
            memcpy(raw, text, n);
            raw[n] = '\0';
        }
    }
    cJSON_free(printed); /* cJSON's allocation: never free() */
    *out_len = n;
    return raw;
}

static int reject_add(struct snapshot_page *page, char *raw, size_t raw_len, const char *reason,
                      const char *ticker, enum reject_kind kind, int64_t key_us)
{
    if (array_reserve((void **)&page->rejects, &page->rejects_cap, page->nrejects + 1, sizeof *page->rejects)) {
        free(raw);
        return PARSE_ERR_NOMEM;
    }
    struct row_reject *rj = &page->rejects[page->nrejects++];
    memset(rj, 0, sizeof *rj);
    api_copy_ascii(rj->ticker, sizeof rj->ticker, ticker);
    api_copy_ascii(rj->reason, sizeof rj->reason, reason);
    rj->raw = raw;
    rj->raw_len = raw_len;
    rj->kind = kind;
    rj->key_us = key_us;
    if (kind == REJECT_PARTIAL)
        page->npartial++;
    return PARSE_OK;
}

static int rows_reserve(struct snapshot_page *page, size_t more)
{
    return array_reserve((void **)&page->rows, &page->rows_cap, page->nrows + more, sizeof *page->rows);
}

int snapshot_page_parse(struct snapshot_page *page, const char *body, size_t len,
                        const char *underlying, char *err, size_t err_size)
{
    struct snapshot_parse_opts opts = {.underlying = underlying, .fallback_us = 0};
    return snapshot_page_parse_opts(page, body, len, &opts, err, err_size);
}

int snapshot_page_parse_opts(struct snapshot_page *page, const char *body, size_t len,
                             const struct snapshot_parse_opts *opts, char *err, size_t err_size)
{
    if (page->exact == NULL) {
        page->exact = calloc(1, sizeof *page->exact);
        if (page->exact == NULL) {
            api_err_set(err, err_size, NULL, "out of memory");
            return PARSE_ERR_NOMEM;
        }
    }
    /* the single-contract endpoint sends one object */
    static const struct api_results_rule rule = {.max = SNAPSHOT_RESULTS_MAX, .noun = "entries", .object_ok = true};
    struct api_page pg;
    int rc = api_page_open(&pg, body, len, page->exact, &rule, page->request_id, sizeof page->request_id, err,
                           err_size);
    memcpy(page->status, pg.env.status, sizeof page->status);
    if (rc != PARSE_OK)
        return rc;
    if (rows_reserve(page, pg.count)) {
        api_err_set(err, err_size, pg.env.request_id, "out of memory");
        return api_page_abandon(&pg, PARSE_ERR_NOMEM);
    }

    struct col_plan plan;
    col_plan_init(&plan);
    struct parse_ctx cx = {
        .env = &pg.env,
        .exact = page->exact,
        .plan = &plan,
        .underlying = opts != NULL && opts->underlying != NULL ? opts->underlying : "",
        .fallback_us = opts != NULL ? opts->fallback_us : 0,
    };
    size_t nrows0 = page->nrows, nrejects0 = page->nrejects, npartial0 = page->npartial;
    /* spans are found on the first reject only: most pages have none */
    long nspans = -2;
    size_t index = 0;
    for (const cJSON *res = api_page_first(&pg); res != NULL; res = api_page_next(&pg, res), index++) {
        char reason[REASON_SIZE];
        char ticker[OPTSNAP_TICKER_MAX];
        struct dropped d;
        struct snapshot_row *row = &page->rows[page->nrows];
        int bad = row_parse(&cx, res, row, reason, ticker, &d);
        if (bad == 0 && d.n == 0) {
            page->nrows++;
            continue;
        }
        if (nspans == -2) {
            nspans = api_results_spans(body, len, &page->spans, &page->spans_cap);
            if (nspans != (long)pg.count)
                nspans = -1;
        }
        size_t raw_len = 0;
        char *raw = result_raw(body, nspans >= 0 ? &page->spans[index] : NULL, res, &raw_len);
        int arc = PARSE_ERR_NOMEM;
        if (raw != NULL && bad == 0) {
            if (d.n > 1) {
                size_t k = strlen(d.first);
                snprintf(d.first + k, sizeof d.first - k, " (and %d more)", d.n - 1);
            }
            arc = reject_add(page, raw, raw_len, d.first, ticker, REJECT_PARTIAL, row->last_updated_us);
            if (arc == PARSE_OK)
                page->nrows++;
        } else if (raw != NULL) {
            arc = reject_add(page, raw, raw_len, reason, ticker, REJECT_ROW, cx.fallback_us);
        }
        if (arc != PARSE_OK) {
            while (page->nrejects > nrejects0)
                row_reject_clear(&page->rejects[--page->nrejects]);
            page->nrows = nrows0;
            page->npartial = npartial0;
            api_err_set(err, err_size, pg.env.request_id, "out of memory");
            return api_page_abandon(&pg, PARSE_ERR_NOMEM);
        }
    }
    api_page_finish(&pg, &page->next_url);
    return PARSE_OK;
}

void snapshot_page_reset(struct snapshot_page *page)
{
    for (size_t i = 0; i < page->nrejects; i++)
        row_reject_clear(&page->rejects[i]);
    page->nrejects = 0;
    page->npartial = 0;
    page->nrows = 0;
    api_page_forget(&page->next_url, page->request_id);
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
    free(page->spans);
    memset(page, 0, sizeof *page);
}
