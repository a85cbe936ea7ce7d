/* Unit tests for the option chain snapshot parser: fixture pages field by field, every bad-input case, truncation and a byte-flip fuzz loop. */
#include <cjson/cJSON.h>

#include "optsnap/api/api_envelope.h"
#include "optsnap/api/snapshot_parse.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

#define CHAIN_FIXTURE "massive-com__client-python/test_rest/mocks/v3/snapshot/options/AAPL.json"
#define SINGLE_FIXTURE                                                                             \
    "massive-com__client-python/test_rest/mocks/v3/snapshot/options/AAPL/O;AAPL230616C00150000.json"

static char *chain_body;
static size_t chain_len;
static char *single_body;
static size_t single_len;

/* The chain fixture with results[0] edited by fn, printed back. Caller frees. */
static char *chain_mutate(void (*fn)(cJSON *result))
{
    cJSON *root = cJSON_ParseWithLength(chain_body, chain_len);
    CHECK(root != NULL);
    fn(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "results"), 0));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static int parse_str(struct snapshot_page *p, const char *body, const char *underlying, char *err,
                     size_t err_size)
{
    return snapshot_page_parse(p, body, strlen(body), underlying, err, err_size);
}

/* Parses body expecting exactly one reject with `reason` and no row. */
static void expect_reject(const char *body, const char *underlying, const char *reason)
{
    struct snapshot_page p = {0};
    char err[256] = "";
    int rc = parse_str(&p, body, underlying, err, sizeof err);
    CHECK_INT(rc, PARSE_OK);
    CHECK_INT(p.nrows, 0);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1) {
        CHECK_STR(p.rejects[0].reason, reason);
        CHECK(p.rejects[0].raw != NULL);
        CHECK_INT(p.rejects[0].raw_len, strlen(p.rejects[0].raw));
        CHECK_INT(api_utf8_first_invalid(p.rejects[0].raw, p.rejects[0].raw_len),
                  p.rejects[0].raw_len);
        cJSON *again = cJSON_Parse(p.rejects[0].raw); /* raw can be replayed */
        CHECK(again != NULL);
        cJSON_Delete(again);
    }
    snapshot_page_free(&p);
}

/* Parses body expecting one row stored with `col` dropped (-1: no column to
 * check) and one partial reject with `reason` whose raw is the exact text
 * of the result in body; returns the row. */
static struct snapshot_row expect_partial(const char *body, const char *underlying, const char *reason, int col)
{
    struct snapshot_page p = {0};
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    char err[256] = "";
    CHECK_INT(parse_str(&p, body, underlying, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 1);
    CHECK_INT(p.npartial, 1);
    if (p.nrows == 1)
        r = p.rows[0];
    if (p.nrejects == 1) {
        const struct row_reject *rj = &p.rejects[0];
        CHECK_INT(rj->kind, REJECT_PARTIAL);
        CHECK_STR(rj->reason, reason);
        CHECK_INT(rj->key_us, r.last_updated_us);
        CHECK_STR(rj->ticker, r.contract.ticker);
        CHECK(rj->raw != NULL && rj->raw[0] == '{' && strstr(body, rj->raw) != NULL);
        CHECK_INT(rj->raw_len, strlen(rj->raw));
    }
    if (col >= 0)
        CHECK(!snapshot_row_has(&r, (enum snap_col)col));
    snapshot_page_free(&p);
    return r;
}

/* Parses body expecting one row; returns it by value. */
static struct snapshot_row expect_row(const char *body, const char *underlying)
{
    struct snapshot_page p = {0};
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    char err[256] = "";
    int rc = parse_str(&p, body, underlying, err, sizeof err);
    CHECK_INT(rc, PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 0);
    if (p.nrejects > 0)
        fprintf(stderr, "  unexpected reject: %s\n", p.rejects[0].reason);
    if (p.nrows == 1)
        r = p.rows[0];
    snapshot_page_free(&p);
    return r;
}

static void expect_page_error(const char *body, size_t len, int want_rc, const char *want_in_err)
{
    struct snapshot_page p = {0};
    char err[256] = "";
    int rc = snapshot_page_parse(&p, body, len, "AAPL", err, sizeof err);
    CHECK_INT(rc, want_rc);
    CHECK_INT(p.nrows, 0);
    CHECK_INT(p.nrejects, 0);
    CHECK(p.next_url == NULL);
    if (want_in_err != NULL && strstr(err, want_in_err) == NULL) {
        fprintf(stderr, "  err \"%s\" lacks \"%s\"\n", err, want_in_err);
        test_current_failed = 1;
    }
    snapshot_page_free(&p);
}

/* The shared fixture values (both snapshot files carry the same contract). */
static void check_fixture_row(const struct snapshot_row *r, double fmv)
{
    CHECK_STR(r->contract.ticker, "O:AAPL230616C00150000");
    CHECK_STR(r->contract.underlying, "AAPL");
    CHECK_INT(r->contract.contract_type, 'C');
    CHECK_INT(r->contract.exercise_style, 'A');
    CHECK_INT(r->contract.expiration_days, days_from_civil(2023, 6, 16));
    CHECK_DBL(r->contract.strike_price, 150.0);
    CHECK_INT(r->contract.shares_per_contract, 100);
    CHECK_INT(r->source, ROW_SOURCE_LIVE);
    /* last_trade.sip_timestamp 1678718527714665700 ns is the newest event. */
    CHECK_INT(r->last_updated_us, INT64_C(1678718527714665));

    for (int c = 0; c < SNAP_NCOLS_001; c++)
        if (!snapshot_row_has(r, (enum snap_col)c)) {
            fprintf(stderr, "  column %s missing\n", snap_cols[c].name);
            test_current_failed = 1;
        }
    /* what the fixture carries of 006_fields.sql's columns */
    CHECK_INT(r->v[SNAP_QUOTE_TIMEFRAME].i, SNAP_TIMEFRAME_REAL_TIME);
    CHECK_INT(r->v[SNAP_TRADE_TIMEFRAME].i, SNAP_TIMEFRAME_REAL_TIME);
    CHECK_INT(r->v[SNAP_UNDERLYING_TIMEFRAME].i, SNAP_TIMEFRAME_REAL_TIME);
    CHECK(snapshot_row_has(r, SNAP_TRADE_CONDITIONS));
    CHECK_INT(r->nconditions, 1);
    CHECK_INT(r->conditions[0], 209);
    CHECK(!snapshot_row_has(r, SNAP_BID_EXCHANGE) && !snapshot_row_has(r, SNAP_ASK_EXCHANGE));
    CHECK(!snapshot_row_has(r, SNAP_UNDERLYING_VALUE) && !snapshot_row_has(r, SNAP_FMV_TIME));
    CHECK(!r->last_updated_fallback);
    CHECK_DBL(r->v[SNAP_DAY_OPEN].f, 29.99);
    CHECK_DBL(r->v[SNAP_DAY_HIGH].f, 32.25);
    CHECK_DBL(r->v[SNAP_DAY_LOW].f, 29);
    CHECK_DBL(r->v[SNAP_DAY_CLOSE].f, 29);
    CHECK_INT(r->v[SNAP_DAY_VOLUME].i, 8);
    CHECK_DBL(r->v[SNAP_DAY_VWAP].f, 30.7738);
    CHECK_DBL(r->v[SNAP_DAY_CHANGE].f, -2.3999999999999986);
    CHECK_DBL(r->v[SNAP_DAY_CHANGE_PERCENT].f, -7.643312101910824);
    CHECK_DBL(r->v[SNAP_DAY_PREVIOUS_CLOSE].f, 31.4);
    CHECK_INT(r->v[SNAP_DAY_TIME].i, INT64_C(1651204800000000));
    CHECK_DBL(r->v[SNAP_IMPLIED_VOLATILITY].f, 0.3570277203465058);
    CHECK_INT(r->v[SNAP_OPEN_INTEREST].i, 8133);
    CHECK_DBL(r->v[SNAP_DELTA].f, 0.6436614934293701);
    CHECK_DBL(r->v[SNAP_GAMMA].f, 0.0061735291012820675);
    CHECK_DBL(r->v[SNAP_THETA].f, -0.028227189324641973);
    CHECK_DBL(r->v[SNAP_VEGA].f, 0.6381159723175714);
    CHECK_DBL(r->v[SNAP_BID].f, 28.9);
    CHECK_DBL(r->v[SNAP_ASK].f, 29.25);
    CHECK_INT(r->v[SNAP_BID_SIZE].i, 294);
    CHECK_INT(r->v[SNAP_ASK_SIZE].i, 209);
    CHECK_DBL(r->v[SNAP_MIDPOINT].f, 29.075);
    CHECK_INT(r->v[SNAP_QUOTE_TIME].i, INT64_C(1651254260800059)); /* ...059648 ns */
    CHECK_DBL(r->v[SNAP_TRADE_PRICE].f, 29.25);
    CHECK_INT(r->v[SNAP_TRADE_SIZE].i, 1);
    CHECK_INT(r->v[SNAP_TRADE_EXCHANGE].i, 309);
    CHECK_INT(r->v[SNAP_TRADE_TIME].i, INT64_C(1678718527714665));
    CHECK_DBL(r->v[SNAP_UNDERLYING_PRICE].f, 159.9606);
    CHECK_INT(r->v[SNAP_UNDERLYING_TIME].i, INT64_C(1651254263172073)); /* ...073152 ns */
    CHECK_DBL(r->v[SNAP_CHANGE_TO_BREAK_EVEN].f, 19.11439999999999);
    CHECK_DBL(r->v[SNAP_BREAK_EVEN_PRICE].f, 179.075);
    CHECK_DBL(r->v[SNAP_FMV].f, fmv);
}

static void test_chain_fixture(void)
{
    struct snapshot_page p = {0};
    char err[256] = "";
    CHECK_INT(snapshot_page_parse(&p, chain_body, chain_len, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 0);
    CHECK(p.next_url == NULL);
    CHECK_STR(p.request_id, "104d9b901d0c9e81d284cb8b41c5cdd3");
    CHECK_STR(p.status, "OK");
    if (p.nrows == 1)
        check_fixture_row(&p.rows[0], 20.5);
    snapshot_page_free(&p);
}

static void test_chain_fixture_underlying_from_data(void)
{
    struct snapshot_page p = {0};
    char err[256] = "";
    CHECK_INT(snapshot_page_parse(&p, chain_body, chain_len, "", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    if (p.nrows == 1)
        check_fixture_row(&p.rows[0], 20.5);
    snapshot_page_free(&p);
    CHECK_INT(snapshot_page_parse(&p, chain_body, chain_len, NULL, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    snapshot_page_free(&p);
}

static void test_single_contract_fixture(void)
{
    struct snapshot_page p = {0};
    char err[256] = "";
    CHECK_INT(snapshot_page_parse(&p, single_body, single_len, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 0);
    CHECK(p.next_url == NULL);
    CHECK_STR(p.request_id, "104d9b901d0c9e81d284cb8b41c5cdd3");
    if (p.nrows == 1)
        check_fixture_row(&p.rows[0], 29.2);
    snapshot_page_free(&p);
}

static void del_greeks(cJSON *r) { cJSON_DeleteItemFromObject(r, "greeks"); }
static void empty_greeks(cJSON *r) { cJSON_ReplaceItemInObject(r, "greeks", cJSON_CreateObject()); }
static void del_iv(cJSON *r) { cJSON_DeleteItemFromObject(r, "implied_volatility"); }
static void del_fmv(cJSON *r) { cJSON_DeleteItemFromObject(r, "fmv"); }

static void test_missing_greeks(void)
{
    char *b = chain_mutate(del_greeks);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_DELTA) && !snapshot_row_has(&r, SNAP_GAMMA));
    CHECK(!snapshot_row_has(&r, SNAP_THETA) && !snapshot_row_has(&r, SNAP_VEGA));
    CHECK(snapshot_row_has(&r, SNAP_IMPLIED_VOLATILITY));
    CHECK_INT(r.last_updated_us, INT64_C(1678718527714665));
    free(b);
}

static void test_empty_greeks(void)
{
    char *b = chain_mutate(empty_greeks);
    CHECK(strstr(b, "\"greeks\":{}") != NULL);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_DELTA) && !snapshot_row_has(&r, SNAP_VEGA));
    CHECK(snapshot_row_has(&r, SNAP_BID));
    free(b);
}

static void test_missing_iv_and_fmv(void)
{
    char *b = chain_mutate(del_iv);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_IMPLIED_VOLATILITY));
    CHECK(snapshot_row_has(&r, SNAP_DELTA));
    free(b);
    b = chain_mutate(del_fmv);
    r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_FMV));
    CHECK(snapshot_row_has(&r, SNAP_BREAK_EVEN_PRICE));
    free(b);
}

static void nulls(cJSON *r)
{
    cJSON_ReplaceItemInObject(r, "fmv", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(r, "greeks", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(r, "day", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(r, "implied_volatility", cJSON_CreateNull());
    cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "last_quote");
    cJSON_ReplaceItemInObject(q, "bid", cJSON_CreateNull());
    cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "last_trade");
    cJSON_ReplaceItemInObject(t, "sip_timestamp", cJSON_CreateNull());
    cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "details");
    cJSON_ReplaceItemInObject(d, "exercise_style", cJSON_CreateNull());
}

static void test_explicit_nulls(void)
{
    char *b = chain_mutate(nulls);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_FMV));
    CHECK(!snapshot_row_has(&r, SNAP_DELTA));
    CHECK(!snapshot_row_has(&r, SNAP_DAY_OPEN) && !snapshot_row_has(&r, SNAP_DAY_TIME));
    CHECK(!snapshot_row_has(&r, SNAP_IMPLIED_VOLATILITY));
    CHECK(!snapshot_row_has(&r, SNAP_BID));
    CHECK(snapshot_row_has(&r, SNAP_ASK));
    CHECK(!snapshot_row_has(&r, SNAP_TRADE_TIME));
    CHECK(snapshot_row_has(&r, SNAP_TRADE_PRICE));
    CHECK_INT(r.contract.exercise_style, '?');
    /* with the trade time gone, the quote is the newest event */
    CHECK_INT(r.last_updated_us, INT64_C(1651254260800059));
    free(b);
}

/* A member named twice: the first counts (cJSON_GetObjectItemCaseSensitive's
 * rule, kept by the parser's one walk over each block), whether it holds a
 * value or null; a column's key in another block is not that column. */
static void dup_and_misplaced(cJSON *r)
{
    cJSON *day = cJSON_GetObjectItemCaseSensitive(r, "day");
    cJSON *close = cJSON_GetObjectItemCaseSensitive(day, "close");
    double first = close->valuedouble;
    cJSON_AddNumberToObject(day, "close", first + 100); /* a second "close", behind the first */
    cJSON *g = cJSON_GetObjectItemCaseSensitive(r, "greeks");
    cJSON_ReplaceItemInObject(g, "delta", cJSON_CreateNull());
    cJSON_AddNumberToObject(g, "delta", 0.5); /* behind a null "delta" */
    cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "last_quote");
    cJSON_DeleteItemFromObject(q, "ask");
    cJSON_AddNumberToObject(r, "ask", 7.0);      /* a quote key at the top */
    cJSON_AddNumberToObject(q, "fmv", 9.0);      /* a top key in a block */
}

static void test_duplicate_and_misplaced_keys(void)
{
    struct snapshot_row plain = expect_row(chain_body, "AAPL");
    char *b = chain_mutate(dup_and_misplaced);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK(snapshot_row_has(&r, SNAP_DAY_CLOSE));
    CHECK_DBL(r.v[SNAP_DAY_CLOSE].f, plain.v[SNAP_DAY_CLOSE].f);
    CHECK(!snapshot_row_has(&r, SNAP_DELTA));
    CHECK(!snapshot_row_has(&r, SNAP_ASK));
    CHECK_INT(snapshot_row_has(&r, SNAP_FMV), snapshot_row_has(&plain, SNAP_FMV));
    if (snapshot_row_has(&plain, SNAP_FMV))
        CHECK_DBL(r.v[SNAP_FMV].f, plain.v[SNAP_FMV].f);
    CHECK(snapshot_row_has(&r, SNAP_BID) && snapshot_row_has(&r, SNAP_GAMMA));
    free(b);
}

static void del_trade(cJSON *r) { cJSON_DeleteItemFromObject(r, "last_trade"); }
static void del_blocks(cJSON *r)
{
    cJSON_DeleteItemFromObject(r, "last_trade");
    cJSON_DeleteItemFromObject(r, "last_quote");
    cJSON_DeleteItemFromObject(r, "underlying_asset");
}
static void del_all_events(cJSON *r)
{
    del_blocks(r);
    cJSON_DeleteItemFromObject(r, "day");
}
static void del_details(cJSON *r) { cJSON_DeleteItemFromObject(r, "details"); }
static void details_ticker_only(cJSON *r)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "ticker", "O:AAPL230616P00152500");
    cJSON_ReplaceItemInObject(r, "details", d);
}

static void test_missing_blocks(void)
{
    char *b = chain_mutate(del_trade);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_TRADE_PRICE) && !snapshot_row_has(&r, SNAP_TRADE_TIME));
    CHECK_INT(r.last_updated_us, INT64_C(1651254260800059));
    free(b);

    b = chain_mutate(del_blocks);
    r = expect_row(b, "");
    CHECK_STR(r.contract.underlying, "AAPL"); /* from the OCC root */
    CHECK(!snapshot_row_has(&r, SNAP_UNDERLYING_PRICE) && !snapshot_row_has(&r, SNAP_BID));
    CHECK_INT(r.last_updated_us, INT64_C(1651204800000000)); /* day.last_updated */
    free(b);

    b = chain_mutate(del_all_events);
    expect_reject(b, "AAPL", "last_updated: no event timestamp");
    free(b);
}

static void test_details_missing_or_partial(void)
{
    char *b = chain_mutate(del_details);
    expect_reject(b, "AAPL", "details.ticker: missing");
    free(b);

    b = chain_mutate(details_ticker_only);
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK_STR(r.contract.ticker, "O:AAPL230616P00152500");
    CHECK_INT(r.contract.contract_type, 'P');
    CHECK_INT(r.contract.exercise_style, '?');
    CHECK_INT(r.contract.expiration_days, days_from_civil(2023, 6, 16));
    CHECK_DBL(r.contract.strike_price, 152.5);
    CHECK_INT(r.contract.shares_per_contract, 0);
    free(b);

    b = test_text_replace(chain_body, "\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": null");
    expect_reject(b, "AAPL", "details.ticker: missing");
    free(b);
}

struct edit {
    const char *from, *to, *reason;
    int col; /* the column dropped (REJECT_PARTIAL), -1 none; ignored for whole-row rejects */
    bool whole_row;
};

#define PARTIAL(from, to, reason, col) {from, to, reason, col, false}
#define WHOLE(from, to, reason) {from, to, reason, -1, true}

static void run_edits(const struct edit *e, size_t n, const char *underlying)
{
    for (size_t i = 0; i < n; i++) {
        char *b = test_text_replace(chain_body, e[i].from, e[i].to);
        int before = test_current_failed;
        test_current_failed = 0;
        if (e[i].whole_row)
            expect_reject(b, underlying, e[i].reason);
        else
            (void)expect_partial(b, underlying, e[i].reason, e[i].col);
        if (test_current_failed)
            fprintf(stderr, "  ^ edit %s -> %s\n", e[i].from, e[i].to);
        test_current_failed |= before;
        free(b);
    }
}

static void test_wrong_types(void)
{
    /* a field the parser cannot read costs that field (and a partial reject), never the row */
    static const struct edit e[] = {
        PARTIAL("\"delta\": 0.6436614934293701", "\"delta\": \"0.64\"", "greeks.delta: not a number", SNAP_DELTA),
        PARTIAL("\"open_interest\": 8133", "\"open_interest\": true", "open_interest: not a number",
                SNAP_OPEN_INTEREST),
        PARTIAL("\"volume\": 8,", "\"volume\": [8],", "day.volume: not a number", SNAP_DAY_VOLUME),
        PARTIAL("\"fmv\": 20.5", "\"fmv\": {}", "fmv: not a number", SNAP_FMV),
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": \"1678718527714665700\"",
                "last_trade.sip_timestamp: not a number", SNAP_TRADE_TIME),
        PARTIAL("\"greeks\": {", "\"greeks\": 5, \"x\": {", "greeks: not an object", SNAP_VEGA),
        PARTIAL("\"day\": {", "\"day\": [], \"x\": {", "day: not an object", SNAP_DAY_TIME),
        PARTIAL("\"strike_price\": 150", "\"strike_price\": \"150\"", "details.strike_price: not a number", -1),
        PARTIAL("\"contract_type\": \"call\"", "\"contract_type\": 1", "details.contract_type: not a string", -1),
        PARTIAL("\"expiration_date\": \"2023-06-16\"", "\"expiration_date\": 20230616",
                "details.expiration_date: not a string", -1),
        PARTIAL("\"ticker\": \"AAPL\"", "\"ticker\": false", "underlying_asset.ticker: not a string", -1),
        PARTIAL("\"timeframe\": \"REAL-TIME\"", "\"timeframe\": 1", "last_quote.timeframe: not a string",
                SNAP_QUOTE_TIMEFRAME),
        PARTIAL("\"timeframe\": \"REAL-TIME\"", "\"timeframe\": \"REALTIME\"", "last_quote.timeframe: unknown value",
                SNAP_QUOTE_TIMEFRAME),
        PARTIAL("\"conditions\": [209]", "\"conditions\": 209", "last_trade.conditions: not an array",
                SNAP_TRADE_CONDITIONS),
        PARTIAL("\"conditions\": [209]", "\"conditions\": [209, \"x\"]",
                "last_trade.conditions: not a list of condition codes", SNAP_TRADE_CONDITIONS),
        PARTIAL("\"conditions\": [209]", "\"conditions\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]",
                "last_trade.conditions: more than 16 codes", SNAP_TRADE_CONDITIONS),
        /* no identity: the row is lost, whole */
        WHOLE("\"details\": {", "\"details\": \"x\", \"y\": {", "details: not an object"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": 123", "details.ticker: not a string"),
    };
    run_edits(e, sizeof e / sizeof e[0], "AAPL");

    /* several dropped fields: one partial reject naming the first and the count */
    char *b = test_text_replace(chain_body, "\"fmv\": 20.5", "\"fmv\": \"x\"");
    char *b2 = test_text_replace(b, "\"vega\": 0.6381159723175714", "\"vega\": null, \"x\": 1");
    char *b3 = test_text_replace(b2, "\"open_interest\": 8133", "\"open_interest\": -1");
    struct snapshot_row r = expect_partial(b3, "AAPL", "open_interest: negative (and 1 more)", SNAP_FMV);
    CHECK(!snapshot_row_has(&r, SNAP_OPEN_INTEREST));
    CHECK(snapshot_row_has(&r, SNAP_DELTA));
    CHECK_INT(r.last_updated_us, INT64_C(1678718527714665));
    free(b);
    free(b2);
    free(b3);
}

static void test_nan_inf(void)
{
    static const struct edit e[] = {
        PARTIAL("\"delta\": 0.6436614934293701", "\"delta\": 1e999", "greeks.delta: not finite", SNAP_DELTA),
        PARTIAL("\"ask\": 29.25", "\"ask\": -1e999", "last_quote.ask: not finite", SNAP_ASK),
        PARTIAL("\"implied_volatility\": 0.3570277203465058", "\"implied_volatility\": 1E400",
                "implied_volatility: not finite", SNAP_IMPLIED_VOLATILITY),
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 1e999",
                "last_trade.sip_timestamp: not finite", SNAP_TRADE_TIME),
        PARTIAL("\"strike_price\": 150", "\"strike_price\": 1e999", "details.strike_price: not finite", -1),
    };
    run_edits(e, sizeof e / sizeof e[0], "AAPL");
}

static void test_negative_and_fractional(void)
{
    static const struct edit e[] = {
        PARTIAL("\"bid_size\": 294", "\"bid_size\": -294", "last_quote.bid_size: negative", SNAP_BID_SIZE),
        PARTIAL("\"size\": 1,", "\"size\": -1,", "last_trade.size: negative", SNAP_TRADE_SIZE),
        PARTIAL("\"open_interest\": 8133", "\"open_interest\": -8133", "open_interest: negative",
                SNAP_OPEN_INTEREST),
        PARTIAL("\"volume\": 8,", "\"volume\": 8.5,", "day.volume: not an integer", SNAP_DAY_VOLUME),
        PARTIAL("\"ask_size\": 209", "\"ask_size\": 20.9", "last_quote.ask_size: not an integer", SNAP_ASK_SIZE),
        PARTIAL("\"ask\": 29.25", "\"ask\": -29.25", "last_quote.ask: negative", SNAP_ASK),
        PARTIAL("\"price\": 29.25", "\"price\": -0.01", "last_trade.price: negative", SNAP_TRADE_PRICE),
        PARTIAL("\"open\": 29.99", "\"open\": -29.99", "day.open: negative", SNAP_DAY_OPEN),
        PARTIAL("\"fmv\": 20.5", "\"fmv\": -20.5", "fmv: negative", SNAP_FMV),
        PARTIAL("\"shares_per_contract\": 100", "\"shares_per_contract\": -100",
                "details.shares_per_contract: negative", -1),
    };
    run_edits(e, sizeof e / sizeof e[0], "AAPL");

    /* Changes and greeks may be negative: the fixture's own change is. */
    char *b = test_text_replace(chain_body, "\"vega\": 0.6381159723175714", "\"vega\": -0.5");
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK_DBL(r.v[SNAP_VEGA].f, -0.5);
    CHECK(r.v[SNAP_DAY_CHANGE].f < 0);
    free(b);
    /* An integral count written as a float is still a count. */
    b = test_text_replace(chain_body, "\"volume\": 8,", "\"volume\": 8.0,");
    r = expect_row(b, "AAPL");
    CHECK_INT(r.v[SNAP_DAY_VOLUME].i, 8);
    free(b);
    b = test_text_replace(chain_body, "\"shares_per_contract\": 100", "\"shares_per_contract\": 1.5");
    r = expect_partial(b, "AAPL", "details.shares_per_contract: not an integer", -1);
    CHECK_INT(r.contract.shares_per_contract, 0);
    free(b);
}

static void test_absurd_timestamps(void)
{
    /* values no unit puts in [2000, 2100): the field is dropped, the key is the newest one left */
    static const struct edit e[] = {
        PARTIAL("\"last_updated\": 1651254260800059648", "\"last_updated\": -1651254260800059648",
                "last_quote.last_updated: timestamp out of range", SNAP_QUOTE_TIME),
        /* one nanosecond before 2000-01-01 (a double would round it up into range) */
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 946684799999999999",
                "last_trade.sip_timestamp: timestamp out of range", SNAP_TRADE_TIME),
        /* 2100-01-01 and later in every unit */
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 4102444800000000000",
                "last_trade.sip_timestamp: timestamp out of range", SNAP_TRADE_TIME),
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 4102444800000",
                "last_trade.sip_timestamp: timestamp out of range", SNAP_TRADE_TIME),
        /* between the units' ranges: 1970 in ms, far past 2100 in s */
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 86400000",
                "last_trade.sip_timestamp: timestamp out of range", SNAP_TRADE_TIME),
        PARTIAL("\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 99999999999999999",
                "last_trade.sip_timestamp: timestamp out of range", SNAP_TRADE_TIME),
        PARTIAL("\"last_updated\": 1651254263172073152", "\"last_updated\": 9223372036854775807",
                "underlying_asset.last_updated: timestamp out of range", SNAP_UNDERLYING_TIME),
        PARTIAL("\"last_updated\": 1651254263172073152", "\"last_updated\": 1e30",
                "underlying_asset.last_updated: timestamp out of range", SNAP_UNDERLYING_TIME),
    };
    run_edits(e, sizeof e / sizeof e[0], "AAPL");
    char *b = test_text_replace(chain_body, "\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": -5");
    struct snapshot_row r = expect_partial(b, "AAPL", "last_trade.sip_timestamp: timestamp out of range",
                                           SNAP_TRADE_TIME);
    CHECK_INT(r.last_updated_us, INT64_C(1651254260800059)); /* the quote is the newest event left */
    CHECK(snapshot_row_has(&r, SNAP_TRADE_PRICE));
    free(b);

    /* 0 is how the API says "no such event": absent, no reject */
    b = test_text_replace(chain_body, "\"last_updated\": 1651204800000000000", "\"last_updated\": 0");
    r = expect_row(b, "AAPL");
    CHECK(!snapshot_row_has(&r, SNAP_DAY_TIME));
    free(b);

    /* The bounds themselves: 2000-01-01T00:00:00 is in, the last ns before 2100 is in. */
    b = test_text_replace(chain_body, "\"sip_timestamp\": 1678718527714665700", "\"sip_timestamp\": 946684800000000000");
    r = expect_row(b, "AAPL");
    CHECK_INT(r.v[SNAP_TRADE_TIME].i, INT64_C(946684800000000));
    free(b);
    b = test_text_replace(chain_body, "\"sip_timestamp\": 1678718527714665700",
                     "\"sip_timestamp\": 4102444799999999999");
    r = expect_row(b, "AAPL");
    CHECK_INT(r.v[SNAP_TRADE_TIME].i, INT64_C(4102444799999999));
    CHECK_INT(r.last_updated_us, INT64_C(4102444799999999));
    free(b);
}

/* The spec says ns; the official clients' test data mixes units (day.last_updated
 * in ms beside a ns quote time). Every unit reads to the same microsecond. */
static void test_timestamp_units(void)
{
    static const struct {
        const char *value;
        int64_t us;
    } forms[] = {
        {"1678718527", INT64_C(1678718527000000)},            /* s */
        {"1678718527.714665", INT64_C(1678718527714665)},     /* s with a fraction */
        {"1678718527714", INT64_C(1678718527714000)},         /* ms */
        {"1678718527714.5", INT64_C(1678718527714500)},       /* ms with a fraction */
        {"1678718527714665", INT64_C(1678718527714665)},      /* us */
        {"1678718527714665700", INT64_C(1678718527714665)},   /* ns */
        {"946684800000", INT64_C(946684800000000)},           /* 2000-01-01 in ms */
        {"4102444799", INT64_C(4102444799000000)},            /* the last second before 2100 */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char to[64];
        snprintf(to, sizeof to, "\"sip_timestamp\": %s", forms[i].value);
        char *b = test_text_replace(chain_body, "\"sip_timestamp\": 1678718527714665700", to);
        struct snapshot_row r = expect_row(b, "AAPL");
        CHECK_INT(r.v[SNAP_TRADE_TIME].i, forms[i].us);
        CHECK_INT(r.last_updated_us, forms[i].us > INT64_C(1651254260800059) ? forms[i].us
                                                                             : INT64_C(1651254260800059));
        free(b);
    }
    /* day.last_updated in ms beside the ns quote time: the quote stays the newest */
    char *b = test_text_replace(chain_body, "\"last_updated\": 1651204800000000000", "\"last_updated\": 1651204800000");
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK_INT(r.v[SNAP_DAY_TIME].i, INT64_C(1651204800000000));
    free(b);
    /* fmv_last_updated is read too (a timestamp, by magnitude) */
    b = test_text_replace(chain_body, "\"fmv\": 20.5", "\"fmv\": 20.5, \"fmv_last_updated\": 1651254263172");
    r = expect_row(b, "AAPL");
    CHECK_INT(r.v[SNAP_FMV_TIME].i, INT64_C(1651254263172000));
    free(b);
}

/* A double holds ns timestamps only to 256 ns; the key must come from the exact digits. */
static void test_timestamp_exact_digits(void)
{
    char *b = test_text_replace(chain_body, "\"sip_timestamp\": 1678718527714665700",
                           "\"sip_timestamp\": 1678718527714666000");
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK_INT(r.v[SNAP_TRADE_TIME].i, INT64_C(1678718527714666)); /* double: ...665984 */
    CHECK_INT(r.last_updated_us, INT64_C(1678718527714666));
    free(b);
    /* The same literal in a string elsewhere must not confuse the number count. */
    b = test_text_replace(chain_body, "\"timeframe\": \"REAL-TIME\"",
                     "\"timeframe\": \"REAL-TIME\", \"note\": \"12345678901234567890 -1 \\\" 2\"");
    char *b2 = test_text_replace(b, "\"sip_timestamp\": 1678718527714665700",
                            "\"sip_timestamp\": 1678718527714666000");
    r = expect_row(b2, "AAPL");
    CHECK_INT(r.last_updated_us, INT64_C(1678718527714666));
    free(b);
    free(b2);
}

static void test_non_occ_tickers(void)
{
    static const struct edit e[] = {
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": \"AAPL\"",
         "details.ticker: not an OCC symbol"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": \"O:AAPL231316C00150000\"",
         "details.ticker: not an OCC symbol"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": \"o:aapl230616c00150000\"",
         "details.ticker: not an OCC symbol"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": \"\"",
         "details.ticker: not an OCC symbol"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": \"O:\\u00c4APL230616C00150000\"",
         "details.ticker: not an OCC symbol"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"", "\"ticker\": \"O:AAPL\\u0000230616C00150000\"",
         "details.ticker: not an OCC symbol"),
        WHOLE("\"ticker\": \"O:AAPL230616C00150000\"",
         "\"ticker\": \"O:AAPL230616C00150000O:AAPL230616C00150000O:AAPL230616C00150000\"",
         "details.ticker: not an OCC symbol"),
    };
    run_edits(e, sizeof e / sizeof e[0], "AAPL");

    /* Best-effort ticker in the reject, printable ASCII only. */
    char *b = test_text_replace(chain_body, "\"ticker\": \"O:AAPL230616C00150000\"",
                           "\"ticker\": \"O:\\u00c4APL\"");
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1) {
        CHECK_STR(p.rejects[0].ticker, "O:??APL"); /* U+00C4 is two bytes */
        CHECK(strstr(p.rejects[0].raw, "O:\\u00c4APL") != NULL); /* the API's text, escape and all */
    }
    snapshot_page_free(&p);
    free(b);
}

static void test_details_disagree(void)
{
    static const struct edit e[] = {
        WHOLE("\"contract_type\": \"call\"", "\"contract_type\": \"put\"",
              "details.contract_type: disagrees with ticker"),
        WHOLE("\"contract_type\": \"call\"", "\"contract_type\": \"other\"",
              "details.contract_type: disagrees with ticker"),
        WHOLE("\"expiration_date\": \"2023-06-16\"", "\"expiration_date\": \"2023-06-17\"",
              "details.expiration_date: disagrees with ticker"),

        WHOLE("\"strike_price\": 150", "\"strike_price\": 155", "details.strike_price: disagrees with ticker"),
        WHOLE("\"strike_price\": 150", "\"strike_price\": 150.001", "details.strike_price: disagrees with ticker"),
        WHOLE("\"strike_price\": 150", "\"strike_price\": 1e300", "details.strike_price: disagrees with ticker"),
    };
    run_edits(e, sizeof e / sizeof e[0], "AAPL");
    /* Exercise style is not part of the symbol: an unknown word is kept as unknown. */
    char *b = test_text_replace(chain_body, "\"exercise_style\": \"american\"",
                           "\"exercise_style\": \"european\"");
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK_INT(r.contract.exercise_style, 'E');
    free(b);
    b = test_text_replace(chain_body, "\"exercise_style\": \"american\"", "\"exercise_style\": \"asian\"");
    r = expect_partial(b, "AAPL", "details.exercise_style: unknown value", -1);
    CHECK_INT(r.contract.exercise_style, '?');
    free(b);
    /* a date that is no date: dropped; the ticker's date stands */
    b = test_text_replace(chain_body, "\"expiration_date\": \"2023-06-16\"", "\"expiration_date\": \"2023-02-30\"");
    r = expect_partial(b, "AAPL", "details.expiration_date: not a date", -1);
    CHECK_INT(r.contract.expiration_days, days_from_civil(2023, 6, 16));
    free(b);
}

static void test_underlying_mismatch(void)
{
    expect_reject(chain_body, "MSFT", "underlying_asset.ticker: not the requested underlying");
    /* A requested underlying wins over the OCC root (adjusted contracts). */
    char *b = test_text_replace(chain_body, "\"ticker\": \"AAPL\"", "\"ticker\": \"AAPL\", \"z\": 1");
    struct snapshot_row r = expect_row(b, "AAPL");
    CHECK_STR(r.contract.underlying, "AAPL");
    free(b);
    b = test_text_replace(chain_body, "\"ticker\": \"AAPL\"", "\"ticker\": \"ABCDEFGHIJKLMNOPQ\"");
    expect_reject(b, "", "underlying_asset.ticker: too long");
    free(b);
}

static void test_result_not_object(void)
{
    const char *body = "{\"status\":\"OK\",\"request_id\":\"r1\",\"results\":[5,\"x\",null,[]]}";
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(parse_str(&p, body, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 0);
    CHECK_INT(p.nrejects, 4);
    for (size_t i = 0; i < p.nrejects; i++)
        CHECK_STR(p.rejects[i].reason, "result: not an object");
    if (p.nrejects == 4) {
        CHECK_STR(p.rejects[0].raw, "5");
        CHECK_STR(p.rejects[1].raw, "\"x\"");
        CHECK_STR(p.rejects[2].raw, "null");
        CHECK_STR(p.rejects[3].raw, "[]");
        CHECK_STR(p.rejects[0].ticker, "");
    }
    snapshot_page_free(&p);
}

static void test_invalid_utf8(void)
{
    /* in the contract ticker: byte 0xFF */
    char *b = test_text_replace(chain_body, "O:AAPL230616C00150000", "O:AAPL\xFF" "30616C00150000");
    size_t at = (size_t)(strchr(b, '\xFF') - b);
    char want[64];
    snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", at);
    expect_page_error(b, strlen(b), PARSE_ERR_JSON, want);
    free(b);
    /* elsewhere: overlong '/', a UTF-16 surrogate, a cut-short sequence, a stray continuation */
    static const char *const bad[] = {"\xC0\xAF", "\xED\xA0\x80", "\xE2\x82", "\x80", "\xF4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char to[32];
        snprintf(to, sizeof to, "\"timeframe\": \"REAL%sTIME\"", bad[i]);
        b = test_text_replace(chain_body, "\"timeframe\": \"REAL-TIME\"", to);
        at = (size_t)(strstr(b, "REAL") + 4 - b);
        snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", at);
        expect_page_error(b, strlen(b), PARSE_ERR_JSON, want);
        free(b);
    }
    /* a raw NUL byte in the body */
    size_t n = chain_len;
    char *nul = malloc(n);
    memcpy(nul, chain_body, n);
    char *tf = strstr(nul, "REAL-TIME");
    tf[4] = '\0';
    snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", (size_t)(tf + 4 - nul));
    expect_page_error(nul, n, PARSE_ERR_JSON, want);
    free(nul);
    /* valid multi-byte text is fine */
    b = test_text_replace(chain_body, "\"timeframe\": \"REAL-TIME\"",
                     "\"timeframe\": \"REAL-TIME\", \"note\": \"R\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
    (void)expect_row(b, "AAPL");
    free(b);
}

static void test_truncated_json(void)
{
    /* Every cut short of the closing brace must fail cleanly and leave the page as it was. */
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(snapshot_page_parse(&p, chain_body, chain_len, "AAPL", err, sizeof err), PARSE_OK);
    size_t end = chain_len;
    while (end > 0 && (chain_body[end - 1] == '\n' || chain_body[end - 1] == ' '))
        end--;
    int failures = 0;
    for (size_t cut = 0; cut < end; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, chain_body, cut);
        int rc = snapshot_page_parse(&p, copy, cut, "AAPL", err, sizeof err);
        free(copy);
        if (rc != PARSE_ERR_JSON || p.nrows != 1 || p.nrejects != 0) {
            if (failures++ < 5)
                fprintf(stderr, "  cut at %zu: rc=%d nrows=%zu\n", cut, rc, p.nrows);
        }
    }
    CHECK_INT(failures, 0);
    CHECK_INT(p.nrows, 1);
    snapshot_page_free(&p);
    /* and the single-contract file */
    struct snapshot_page q = {0};
    for (size_t cut = 0; cut + 1 < single_len; cut += 7) {
        int rc = snapshot_page_parse(&q, single_body, cut, "AAPL", err, sizeof err);
        CHECK_INT(rc, PARSE_ERR_JSON);
    }
    snapshot_page_free(&q);
}

static void test_trailing_data(void)
{
    size_t n = strlen(chain_body);
    char *b = malloc(n + 8);
    memcpy(b, chain_body, n);
    memcpy(b + n, " {}", 4);
    expect_page_error(b, n + 3, PARSE_ERR_JSON, "trailing data");
    memcpy(b + n, "[]", 3); /* right behind the value */
    expect_page_error(b, n + 2, PARSE_ERR_JSON, "trailing data at byte");
    free(b);
    expect_page_error("", 0, PARSE_ERR_JSON, "empty body");
    expect_page_error("nope", 4, PARSE_ERR_JSON, "invalid JSON");
}

static void test_error_envelopes(void)
{
    /* Shapes the API sends (status/request_id plus "error" or "message"). */
    const char *e1 = "{\"status\":\"ERROR\",\"request_id\":\"2f1d3a7c9e\",\"error\":\"Unknown API Key\"}";
    expect_page_error(e1, strlen(e1), PARSE_ERR_API,
                      "API error status=ERROR request_id=2f1d3a7c9e: Unknown API Key");
    const char *e2 = "{\"status\":\"NOT_AUTHORIZED\",\"request_id\":\"abc\",\"message\":\"You are not "
                     "entitled to this data.\"}";
    expect_page_error(e2, strlen(e2), PARSE_ERR_API,
                      "API error status=NOT_AUTHORIZED request_id=abc: You are not entitled to this data.");
    const char *e3 = "{\"status\":\"OK\",\"request_id\":\"q9\",\"error\":\"internal\",\"results\":[]}";
    expect_page_error(e3, strlen(e3), PARSE_ERR_API, "request_id=q9: internal");
    const char *e4 = "{\"status\":\"NOT_FOUND\",\"results\":[]}";
    expect_page_error(e4, strlen(e4), PARSE_ERR_API, "API error status=NOT_FOUND: (no message)");
    const char *e5 = "{\"status\":7,\"results\":[]}";
    expect_page_error(e5, strlen(e5), PARSE_ERR_SHAPE, "status: not a string");

    /* the page still learns the request_id, for the caller's log line */
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(parse_str(&p, e2, "AAPL", err, sizeof err), PARSE_ERR_API);
    CHECK_STR(p.request_id, "abc");
    CHECK_STR(p.status, "NOT_AUTHORIZED");
    snapshot_page_free(&p);

    /* DELAYED is a normal page */
    char *b = test_text_replace(chain_body, "\"status\": \"OK\"", "\"status\": \"DELAYED\"");
    (void)expect_row(b, "AAPL");
    free(b);
}

static void test_results_wrong_type(void)
{
    static const char *const bodies[] = {
        "{\"status\":\"OK\",\"request_id\":\"rq\"}",
        "{\"status\":\"OK\",\"request_id\":\"rq\",\"results\":null}",
        "{\"status\":\"OK\",\"request_id\":\"rq\",\"results\":\"x\"}",
        "{\"status\":\"OK\",\"request_id\":\"rq\",\"results\":42}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_page_error(bodies[i], strlen(bodies[i]), PARSE_ERR_SHAPE, "(request_id=rq)");
    expect_page_error("[1,2]", 5, PARSE_ERR_SHAPE, "not a JSON object");
    expect_page_error("\"x\"", 3, PARSE_ERR_SHAPE, "not a JSON object");

    /* an empty page is fine */
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(parse_str(&p, "{\"status\":\"OK\",\"results\":[]}", "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 0);
    CHECK_INT(p.nrejects, 0);
    snapshot_page_free(&p);
}

static void test_results_cap(void)
{
    size_t n = 50001;
    char *b = malloc(40 + n * 3);
    size_t o = (size_t)sprintf(b, "{\"status\":\"OK\",\"results\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(b + o, "%s{}", i ? "," : "");
    o += (size_t)sprintf(b + o, "]}");
    expect_page_error(b, o, PARSE_ERR_SHAPE, "more than 50000");
    free(b);
}

static void test_next_url(void)
{
    struct snapshot_page p = {0};
    char err[256];
    char *b = test_text_replace(chain_body, "\"status\": \"OK\"",
                           "\"status\": \"OK\", \"next_url\": \"https://api.polygon.io/v3/snapshot/"
                           "options/AAPL?cursor=YWN0aXZlPXRydWU\"");
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_STR(p.next_url, "https://api.polygon.io/v3/snapshot/options/AAPL?cursor=YWN0aXZlPXRydWU");
    free(b);

    /* a failing page leaves rows and next_url alone */
    b = test_text_replace(chain_body, "\"status\": \"OK\"", "\"status\": \"OK\", \"next_url\": 5");
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_ERR_SHAPE);
    CHECK(strstr(err, "next_url: not a string") != NULL);
    CHECK(strstr(err, "104d9b901d0c9e81d284cb8b41c5cdd3") != NULL);
    CHECK_INT(p.nrows, 1);
    CHECK(p.next_url != NULL);
    free(b);

    /* the last page: next_url absent, null or "" all mean no more pages; rows accumulate */
    CHECK_INT(snapshot_page_parse(&p, chain_body, chain_len, "AAPL", err, sizeof err), PARSE_OK);
    CHECK(p.next_url == NULL);
    CHECK_INT(p.nrows, 2);
    b = test_text_replace(chain_body, "\"status\": \"OK\"", "\"status\": \"OK\", \"next_url\": null");
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_OK);
    CHECK(p.next_url == NULL);
    free(b);
    b = test_text_replace(chain_body, "\"status\": \"OK\"", "\"status\": \"OK\", \"next_url\": \"\"");
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_OK);
    CHECK(p.next_url == NULL);
    CHECK_INT(p.nrows, 4);
    free(b);

    /* reset empties and keeps capacity */
    size_t cap = p.rows_cap;
    snapshot_page_reset(&p);
    CHECK_INT(p.nrows, 0);
    CHECK_INT(p.rows_cap, cap);
    CHECK_STR(p.request_id, "");
    snapshot_page_free(&p);
    CHECK(p.rows == NULL && p.rows_cap == 0);
}

static void test_mixed_page(void)
{
    /* Six results: three good, three bad, in this order. */
    char *good2 = test_text_replace(chain_body, "O:AAPL230616C00150000", "O:AAPL230616P00145000");
    char *good2b = test_text_replace(good2, "\"contract_type\": \"call\"", "\"contract_type\": \"put\"");
    char *good2c = test_text_replace(good2b, "\"strike_price\": 150", "\"strike_price\": 145");
    cJSON *root = cJSON_Parse(chain_body);
    cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    cJSON *base = cJSON_GetArrayItem(results, 0);
    cJSON *g2root = cJSON_Parse(good2c);
    cJSON *g2 = cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(g2root, "results"), 0), 1);

    cJSON *bad_delta = cJSON_Duplicate(base, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(bad_delta, "greeks"), "delta",
                              cJSON_CreateString("x"));
    cJSON *no_greeks = cJSON_Duplicate(g2, 1);
    cJSON_DeleteItemFromObject(no_greeks, "greeks");
    cJSON *non_occ = cJSON_Duplicate(base, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(non_occ, "details"), "ticker",
                              cJSON_CreateString("AAPL"));
    cJSON *neg = cJSON_Duplicate(base, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(neg, "last_quote"), "bid_size",
                              cJSON_CreateNumber(-3));
    cJSON_AddItemToArray(results, bad_delta); /* 1 */
    cJSON_AddItemToArray(results, g2);        /* 2 */
    cJSON_AddItemToArray(results, non_occ);   /* 3 */
    cJSON_AddItemToArray(results, no_greeks); /* 4 */
    cJSON_AddItemToArray(results, neg);       /* 5 */
    char *body = cJSON_PrintUnformatted(root);

    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(parse_str(&p, body, "AAPL", err, sizeof err), PARSE_OK);
    /* the bad delta and the negative size cost a field each; the non-OCC row is lost */
    CHECK_INT(p.nrows, 5);
    CHECK_INT(p.nrejects, 3);
    CHECK_INT(p.npartial, 2);
    if (p.nrows == 5) {
        CHECK_STR(p.rows[0].contract.ticker, "O:AAPL230616C00150000");
        CHECK_STR(p.rows[1].contract.ticker, "O:AAPL230616C00150000");
        CHECK(!snapshot_row_has(&p.rows[1], SNAP_DELTA));
        CHECK(snapshot_row_has(&p.rows[1], SNAP_GAMMA));
        CHECK_STR(p.rows[2].contract.ticker, "O:AAPL230616P00145000");
        CHECK_INT(p.rows[2].contract.contract_type, 'P');
        CHECK_DBL(p.rows[2].contract.strike_price, 145.0);
        CHECK(snapshot_row_has(&p.rows[2], SNAP_DELTA));
        CHECK_STR(p.rows[3].contract.ticker, "O:AAPL230616P00145000");
        CHECK(!snapshot_row_has(&p.rows[3], SNAP_DELTA));
        CHECK(!snapshot_row_has(&p.rows[4], SNAP_BID_SIZE));
        CHECK(snapshot_row_has(&p.rows[4], SNAP_ASK_SIZE));
    }
    if (p.nrejects == 3) {
        CHECK_STR(p.rejects[0].reason, "greeks.delta: not a number");
        CHECK_INT(p.rejects[0].kind, REJECT_PARTIAL);
        CHECK_STR(p.rejects[0].ticker, "O:AAPL230616C00150000");
        CHECK(strstr(p.rejects[0].raw, "\"delta\":\"x\"") != NULL);
        CHECK_STR(p.rejects[1].reason, "details.ticker: not an OCC symbol");
        CHECK_INT(p.rejects[1].kind, REJECT_ROW);
        CHECK_STR(p.rejects[1].ticker, "AAPL");
        CHECK_STR(p.rejects[2].reason, "last_quote.bid_size: negative");
        CHECK_INT(p.rejects[2].kind, REJECT_PARTIAL);
        CHECK(strstr(p.rejects[2].raw, "\"bid_size\":-3") != NULL);
        for (size_t i = 0; i < 3; i++) {
            CHECK(p.rejects[i].raw[0] == '{');
            CHECK(strstr(body, p.rejects[i].raw) != NULL); /* the API's bytes */
        }
    }
    snapshot_page_free(&p);
    cJSON_free(body);
    cJSON_Delete(root);
    cJSON_Delete(g2root);
    free(good2);
    free(good2b);
    free(good2c);
}

static void test_reject_raw_sanitize(void)
{
    /* What goes to the text column is valid UTF-8 without NUL, whatever came in. */
    size_t n;
    char *s = api_text_sanitize("a\xFF" "b\0c\xE2\x82", 7, 1024, &n);
    CHECK_STR(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK_INT(n, strlen(s));
    CHECK_INT(api_utf8_first_invalid(s, n), n);
    free(s);
    s = api_text_sanitize("\xC3\xA9\xC3\xA9\xC3\xA9", 6, 5, &n); /* cap cuts at a boundary */
    CHECK_STR(s, "\xC3\xA9\xC3\xA9");
    free(s);
}

static void test_fuzz_byte_flips(void)
{
    /* Every byte of the fixture, a few replacement values each: no crash, no leak, a sane result. */
    static const unsigned char vals[] = {0x00, '"', '{', '}', '[', '9', '-', 0xFF, 0xC3, 'e', ',', '\\'};
    char *copy = malloc(chain_len);
    struct snapshot_page p = {0};
    char err[256];
    size_t oks = 0, errs = 0;
    for (size_t i = 0; i < chain_len; i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(copy, chain_body, chain_len);
            copy[i] = (char)vals[v];
            int rc = snapshot_page_parse(&p, copy, chain_len, "AAPL", err, sizeof err);
            if (rc == PARSE_OK) {
                oks++;
                CHECK(p.nrows + p.nrejects - p.npartial == 1); /* a partial is a row and a reject */
                for (size_t k = 0; k < p.nrejects; k++)
                    CHECK_INT(api_utf8_first_invalid(p.rejects[k].raw, p.rejects[k].raw_len),
                              p.rejects[k].raw_len);
            } else {
                errs++;
                CHECK(rc == PARSE_ERR_JSON || rc == PARSE_ERR_SHAPE || rc == PARSE_ERR_API);
                CHECK(p.nrows + p.nrejects == 0);
            }
            snapshot_page_reset(&p);
        }
    }
    CHECK(oks > 0 && errs > 0);
    snapshot_page_free(&p);
    free(copy);
}

/* The raw text of a reject is the API's bytes for that result: exact
 * nanoseconds (a reprint would give 1.6512542608000596e+18), layout kept. */
static void test_raw_is_the_api_text(void)
{
    char *b = test_text_replace(chain_body, "\"fmv\": 20.5", "\"fmv\": \"20.5\"");
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1) {
        const char *raw = p.rejects[0].raw;
        const char *start = strstr(b, "[{") + 1;
        const char *end = strstr(b, "}],") + 1;
        CHECK_INT(p.rejects[0].raw_len, (size_t)(end - start));
        CHECK(strncmp(raw, start, (size_t)(end - start)) == 0);
        CHECK(strstr(raw, "\"last_updated\": 1651254260800059648") != NULL);
        CHECK(strstr(raw, "\n    \"day\": {") != NULL);
    }
    snapshot_page_free(&p);
    free(b);
    /* the single-contract endpoint: results is the object itself */
    b = test_text_replace(single_body, "\"fmv\": 29.2", "\"fmv\": true");
    CHECK_INT(parse_str(&p, b, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1) {
        CHECK(p.rejects[0].raw[0] == '{');
        CHECK(strstr(b, p.rejects[0].raw) != NULL);
        CHECK(strstr(p.rejects[0].raw, "\"status\"") == NULL);
    }
    snapshot_page_free(&p);
    free(b);
    /* "results" written with an escape: cJSON finds it, the span scan does not;
     * the reject falls back to cJSON's printing rather than the wrong bytes */
    b = test_text_replace(chain_body, "\"results\"", "\"res\\u0075lts\"");
    char *b2 = test_text_replace(b, "\"fmv\": 20.5", "\"fmv\": \"x\"");
    CHECK_INT(parse_str(&p, b2, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1)
        CHECK(strstr(p.rejects[0].raw, "\"fmv\":\"x\"") != NULL);
    snapshot_page_free(&p);
    free(b);
    free(b2);
    /* a result over the cap is cut at a character boundary */
    size_t pad = SNAPSHOT_REJECT_RAW_MAX * 2;
    char *big = malloc(chain_len + pad + 64);
    const char *at = strstr(chain_body, "\"fmv\": 20.5");
    size_t head = (size_t)(at - chain_body);
    memcpy(big, chain_body, head);
    size_t o = head + (size_t)sprintf(big + head, "\"pad\": \"");
    memset(big + o, 'x', pad);
    o += pad;
    o += (size_t)sprintf(big + o, "\", \"fmv\": \"bad\"");
    memcpy(big + o, at + strlen("\"fmv\": 20.5"), chain_len - head - strlen("\"fmv\": 20.5"));
    o += chain_len - head - strlen("\"fmv\": 20.5");
    CHECK_INT(snapshot_page_parse(&p, big, o, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1)
        CHECK_INT(p.rejects[0].raw_len, SNAPSHOT_REJECT_RAW_MAX);
    snapshot_page_free(&p);
    free(big);
}

/* A contract with no event time (an illiquid contract on a plan without
 * quotes and trades) is keyed on the sweep's window and flagged. */
static void test_fallback_key(void)
{
    char *b = chain_mutate(del_all_events);
    struct snapshot_page p = {0};
    char err[256];
    struct snapshot_parse_opts opts = {.underlying = "AAPL", .fallback_us = INT64_C(1700000040000000)};
    CHECK_INT(snapshot_page_parse_opts(&p, b, strlen(b), &opts, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 0);
    if (p.nrows == 1) {
        CHECK_INT(p.rows[0].last_updated_us, INT64_C(1700000040000000));
        CHECK(p.rows[0].last_updated_fallback);
        CHECK(snapshot_row_has(&p.rows[0], SNAP_FMV));
    }
    snapshot_page_free(&p);
    /* its only time impossible: stored on the fallback, and a partial for it */
    char *b2 = test_text_replace(chain_body, "\"last_updated\": 1651204800000000000", "\"last_updated\": 77");
    cJSON *root = cJSON_Parse(b2);
    del_blocks(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "results"), 0));
    char *b3 = cJSON_PrintUnformatted(root);
    CHECK_INT(snapshot_page_parse_opts(&p, b3, strlen(b3), &opts, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.npartial, 1);
    if (p.nrows == 1 && p.nrejects == 1) {
        CHECK(p.rows[0].last_updated_fallback);
        CHECK_STR(p.rejects[0].reason, "day.last_updated: timestamp out of range");
        CHECK_INT(p.rejects[0].key_us, INT64_C(1700000040000000));
    }
    snapshot_page_free(&p);
    /* a whole-row reject carries the fallback it had, for a replay */
    char *b4 = test_text_replace(b, "O:AAPL230616C00150000", "AAPL");
    CHECK_INT(snapshot_page_parse_opts(&p, b4, strlen(b4), &opts, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrejects, 1);
    if (p.nrejects == 1) {
        CHECK_INT(p.rejects[0].kind, REJECT_ROW);
        CHECK_INT(p.rejects[0].key_us, INT64_C(1700000040000000));
    }
    snapshot_page_free(&p);
    /* without a fallback such a row stays a reject */
    expect_reject(b, "AAPL", "last_updated: no event timestamp");
    free(b);
    free(b2);
    cJSON_free(b3);
    cJSON_Delete(root);
    free(b4);
}

/* An I:SPX chain holds SPX and SPXW roots and names the index as I:SPX. */
static void test_index_underlying(void)
{
    char *b1 = test_text_replace(chain_body, "O:AAPL230616C00150000", "O:SPXW230616C04150000");
    char *b2 = test_text_replace(b1, "\"strike_price\": 150", "\"strike_price\": 4150");
    char *b3 = test_text_replace(b2, "\"ticker\": \"AAPL\"", "\"ticker\": \"I:SPX\", \"value\": 4153.25");
    struct snapshot_row r = expect_row(b3, "I:SPX");
    CHECK_STR(r.contract.underlying, "I:SPX");
    CHECK_DBL(r.v[SNAP_UNDERLYING_VALUE].f, 4153.25);
    r = expect_row(b3, "SPX"); /* asked without the prefix */
    CHECK_STR(r.contract.underlying, "SPX");
    r = expect_row(b3, "");
    CHECK_STR(r.contract.underlying, "I:SPX");
    expect_reject(b3, "I:NDX", "underlying_asset.ticker: not the requested underlying");
    expect_reject(b3, "SPY", "underlying_asset.ticker: not the requested underlying");
    /* no underlying_asset.ticker: the root decides nothing, the row is the chain's */
    char *b4 = test_text_replace(b2, "\"ticker\": \"AAPL\"", "\"ticker\": \"SPXW\"");
    r = expect_row(b4, "I:SPX");
    CHECK_STR(r.contract.underlying, "I:SPX");
    /* quote exchanges and the data's timeframe */
    char *b5 = test_text_replace(b3, "\"midpoint\": 29.075,\n      \"timeframe\": \"REAL-TIME\"",
                            "\"midpoint\": 29.075, \"bid_exchange\": 302, \"ask_exchange\": 323, "
                            "\"timeframe\": \"DELAYED\"");
    r = expect_row(b5, "I:SPX");
    CHECK_INT(r.v[SNAP_BID_EXCHANGE].i, 302);
    CHECK_INT(r.v[SNAP_ASK_EXCHANGE].i, 323);
    CHECK_INT(r.v[SNAP_QUOTE_TIMEFRAME].i, SNAP_TIMEFRAME_DELAYED);
    CHECK_INT(r.v[SNAP_TRADE_TIMEFRAME].i, SNAP_TIMEFRAME_REAL_TIME);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
    free(b5);
}

/* A row the database refused is kept as the API shape rebuilt from it: the
 * parser reads it back to the same row (what `rejects --replay` relies on). */
static void test_row_to_api_json_round_trip(void)
{
    struct snapshot_page p = {0};
    char err[256], json[8192];
    CHECK_INT(snapshot_page_parse(&p, chain_body, chain_len, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    struct snapshot_row want = p.rows[0];
    want.conditions[1] = 219;
    want.nconditions = 2;
    snapshot_row_set_i64(&want, SNAP_BID_EXCHANGE, 7);
    snapshot_row_set_i64(&want, SNAP_FMV_TIME, INT64_C(1651254263172000));
    snapshot_page_free(&p);
    long n = snapshot_row_to_api_json(&want, json, sizeof json);
    CHECK(n > 0);
    char body[9000];
    snprintf(body, sizeof body, "{\"status\":\"OK\",\"results\":[%s]}", json);
    CHECK_INT(parse_str(&p, body, "AAPL", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 0);
    if (p.nrows == 1) {
        const struct snapshot_row *got = &p.rows[0];
        CHECK_STR(got->contract.ticker, want.contract.ticker);
        CHECK_INT(got->contract.exercise_style, want.contract.exercise_style);
        CHECK_INT(got->contract.shares_per_contract, want.contract.shares_per_contract);
        CHECK_INT(got->last_updated_us, want.last_updated_us);
        CHECK_INT(got->present, want.present);
        for (int c = 0; c < SNAP_NCOLS; c++)
            if (snap_cols[c].type != SNAP_CONDITIONS && snapshot_row_has(&want, (enum snap_col)c) &&
                memcmp(&got->v[c], &want.v[c], sizeof got->v[c]) != 0) {
                fprintf(stderr, "  column %s differs\n", snap_cols[c].name);
                test_current_failed = 1;
            }
        CHECK_INT(got->nconditions, 2);
        CHECK_INT(got->conditions[1], 219);
    }
    snapshot_page_free(&p);
    CHECK_INT(snapshot_row_to_api_json(&want, json, 40), -1);
    CHECK_STR(json, "");
}

int main(void)
{
    chain_body = test_fixture_read(CHAIN_FIXTURE, &chain_len);
    single_body = test_fixture_read(SINGLE_FIXTURE, &single_len);
    RUN(test_chain_fixture);
    RUN(test_chain_fixture_underlying_from_data);
    RUN(test_single_contract_fixture);
    RUN(test_missing_greeks);
    RUN(test_empty_greeks);
    RUN(test_missing_iv_and_fmv);
    RUN(test_explicit_nulls);
    RUN(test_duplicate_and_misplaced_keys);
    RUN(test_missing_blocks);
    RUN(test_details_missing_or_partial);
    RUN(test_wrong_types);
    RUN(test_nan_inf);
    RUN(test_negative_and_fractional);
    RUN(test_absurd_timestamps);
    RUN(test_timestamp_units);
    RUN(test_timestamp_exact_digits);
    RUN(test_non_occ_tickers);
    RUN(test_details_disagree);
    RUN(test_underlying_mismatch);
    RUN(test_result_not_object);
    RUN(test_invalid_utf8);
    RUN(test_truncated_json);
    RUN(test_trailing_data);
    RUN(test_error_envelopes);
    RUN(test_results_wrong_type);
    RUN(test_results_cap);
    RUN(test_next_url);
    RUN(test_mixed_page);
    RUN(test_reject_raw_sanitize);
    RUN(test_raw_is_the_api_text);
    RUN(test_fallback_key);
    RUN(test_index_underlying);
    RUN(test_row_to_api_json_round_trip);
    RUN(test_fuzz_byte_flips);
    free(chain_body);
    free(single_body);
    TEST_EXIT();
}
