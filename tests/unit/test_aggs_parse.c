/* Unit tests for the aggregate bars parser: the fixture bar by bar, and every way a bar or page can be bad. */
#include <math.h>

#include "optsnap/api/aggs_parse.h"
#include "optsnap/api/snapshot_parse.h" /* enum parse_result */
#include "test.h"

#define AGGS_FIXTURE                                                                               \
    "massive-com__client-python/test_rest/mocks/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/"      \
    "2005-04-04.json"

static char *aggs_body;
static size_t aggs_len;

static void test_aggs_fixture(void)
{
    struct aggs_page p = {0};
    char err[256] = "";
    CHECK_INT(aggs_page_parse(&p, aggs_body, aggs_len, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nbars, 2);
    CHECK_STR(p.ticker, "AAPL");
    CHECK_STR(p.request_id, "12afda77aab3b1936c5fb6ef4241ae42");
    CHECK(p.next_url == NULL);
    if (p.nbars == 2) {
        const struct agg_bar *b = &p.bars[0];
        CHECK_DBL(b->volume, 642646396.0);
        CHECK_DBL(b->vwap, 1.469);
        CHECK_DBL(b->open, 1.5032);
        CHECK_DBL(b->close, 1.4604);
        CHECK_DBL(b->high, 1.5064);
        CHECK_DBL(b->low, 1.4489);
        CHECK_INT(b->start_ms, INT64_C(1112331600000));
        CHECK_INT(b->trades, 82132);
        b = &p.bars[1];
        CHECK_DBL(b->volume, 578172308.0);
        CHECK_DBL(b->vwap, 1.4589);
        CHECK_DBL(b->open, 1.4639);
        CHECK_DBL(b->close, 1.4675);
        CHECK_DBL(b->high, 1.4754);
        CHECK_DBL(b->low, 1.4343);
        CHECK_INT(b->start_ms, INT64_C(1112587200000));
        CHECK_INT(b->trades, 65543);
    }
    /* pages append; reset empties and keeps capacity */
    CHECK_INT(aggs_page_parse(&p, aggs_body, aggs_len, err, sizeof err), PARSE_OK);
    CHECK_INT(p.nbars, 4);
    size_t cap = p.bars_cap;
    aggs_page_reset(&p);
    CHECK_INT(p.nbars, 0);
    CHECK_INT(p.bars_cap, cap);
    aggs_page_free(&p);
}

static void test_aggs_optional_fields(void)
{
    char *b1 = test_text_replace(aggs_body, "\"vw\": 1.469,", "");
    char *b2 = test_text_replace(b1, "\"n\": 65543", "\"n\": null");
    struct aggs_page p = {0};
    char err[256];
    CHECK_INT(aggs_page_parse(&p, b2, strlen(b2), err, sizeof err), PARSE_OK);
    CHECK_INT(p.nbars, 2);
    if (p.nbars == 2) {
        CHECK(isnan(p.bars[0].vwap));
        CHECK_INT(p.bars[0].trades, 82132);
        CHECK_DBL(p.bars[1].vwap, 1.4589);
        CHECK_INT(p.bars[1].trades, -1);
    }
    aggs_page_free(&p);
    free(b1);
    free(b2);
}

static void test_aggs_no_results(void)
{
    /* No bars: the API leaves "results" out. That is 0 bars, not an error. */
    const char *body = "{\"ticker\":\"O:SPY251121C00600000\",\"queryCount\":0,\"resultsCount\":0,"
                       "\"adjusted\":true,\"status\":\"OK\",\"request_id\":\"abc\",\"count\":0}";
    struct aggs_page p = {0};
    char err[256];
    CHECK_INT(aggs_page_parse(&p, body, strlen(body), err, sizeof err), PARSE_OK);
    CHECK_INT(p.nbars, 0);
    CHECK_STR(p.ticker, "O:SPY251121C00600000");
    const char *empty = "{\"status\":\"OK\",\"results\":[]}";
    CHECK_INT(aggs_page_parse(&p, empty, strlen(empty), err, sizeof err), PARSE_OK);
    CHECK_INT(p.nbars, 0);
    aggs_page_free(&p);
}

struct bad_bar {
    const char *from, *to, *msg;
};

static void test_aggs_bad_bars(void)
{
    static const struct bad_bar cases[] = {
        {"\"o\": 1.4639,", "", "results[1].o: missing"},
        {"\"h\": 1.5064,", "", "results[0].h: missing"},
        {"\"l\": 1.4343,", "", "results[1].l: missing"},
        {"\"c\": 1.4604,", "\"c\": null,", "results[0].c: missing"},
        {"\"t\": 1112587200000,", "", "results[1].t: missing"},
        {"\"v\": 642646396.0,", "", "results[0].v: missing"},
        {"\"o\": 1.5032,", "\"o\": 1e999,", "results[0].o: not finite"},
        {"\"v\": 578172308.0,", "\"v\": -1e999,", "results[1].v: not finite"},
        {"\"v\": 642646396.0,", "\"v\": -5,", "results[0].v: negative"},
        {"\"l\": 1.4489,", "\"l\": -1.4489,", "results[0].l: negative"},
        {"\"o\": 1.5032,", "\"o\": \"1.5\",", "results[0].o: not a number"},
        {"\"h\": 1.4754,", "\"h\": 1.4000,", "results[1].h: high < low"},
        {"\"o\": 1.5032,", "\"o\": 1.6,", "results[0].o: outside [low, high]"},
        {"\"c\": 1.4675,", "\"c\": 1.4,", "results[1].c: outside [low, high]"},
        {"\"t\": 1112331600000,", "\"t\": 1112331600.5,", "results[0].t: not an integer"},
        /* no unit puts these in 2000..2100 */
        {"\"t\": 1112331600000,", "\"t\": 86400000,", "results[0].t: timestamp out of range"},
        {"\"t\": 1112331600000,", "\"t\": 5000000000000000000,", "results[0].t: timestamp out of range"},
        {"\"vw\": 1.469,", "\"vw\": \"x\",", "results[0].vw: not a number"},
        {"\"vw\": 1.469,", "\"vw\": -1.469,", "results[0].vw: negative"},
        {"\"n\": 82132", "\"n\": 821.5", "results[0].n: not an integer"},
        {"\"n\": 82132", "\"n\": -1", "results[0].n: negative"},
        {"{\n            \"v\": 578172308.0,", "7, {\"v\": 578172308.0,", "results[1].bar: not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b = test_text_replace(aggs_body, cases[i].from, cases[i].to);
        struct aggs_page p = {0};
        char err[256] = "";
        int rc = aggs_page_parse(&p, b, strlen(b), err, sizeof err);
        if (rc != PARSE_ERR_SHAPE || p.nbars != 0 || strstr(err, cases[i].msg) == NULL ||
            strstr(err, "request_id=12afda77aab3b1936c5fb6ef4241ae42") == NULL) {
            fprintf(stderr, "  case %zu: rc=%d nbars=%zu err=\"%s\", want \"%s\"\n", i, rc, p.nbars,
                    err, cases[i].msg);
            test_current_failed = 1;
        }
        aggs_page_free(&p);
        free(b);
    }
}

/* "t" is ms by the spec; s, us and ns are read by magnitude to the same bar start */
static void test_aggs_timestamp_units(void)
{
    static const char *const forms[] = {"\"t\": 1112331600,", "\"t\": 1112331600000000,",
                                        "\"t\": 1112331600000000000,"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *b = test_text_replace(aggs_body, "\"t\": 1112331600000,", forms[i]);
        struct aggs_page p = {0};
        char err[256] = "";
        CHECK_INT(aggs_page_parse(&p, b, strlen(b), err, sizeof err), PARSE_OK);
        CHECK_INT(p.nbars, 2);
        if (p.nbars == 2)
            CHECK_INT(p.bars[0].start_ms, INT64_C(1112331600000));
        aggs_page_free(&p);
        free(b);
    }
}

static void test_aggs_page_errors(void)
{
    struct aggs_page p = {0};
    char err[256];
    /* one good page in, then bad pages must leave it as it was */
    CHECK_INT(aggs_page_parse(&p, aggs_body, aggs_len, err, sizeof err), PARSE_OK);
    const char *e1 = "{\"status\":\"ERROR\",\"request_id\":\"r2\",\"error\":\"Unknown API Key\"}";
    CHECK_INT(aggs_page_parse(&p, e1, strlen(e1), err, sizeof err), PARSE_ERR_API);
    CHECK_STR(err, "API error status=ERROR request_id=r2: Unknown API Key");
    const char *e2 = "{\"status\":\"NOT_AUTHORIZED\",\"request_id\":\"r3\",\"message\":\"You are not "
                     "entitled to this data.\"}";
    CHECK_INT(aggs_page_parse(&p, e2, strlen(e2), err, sizeof err), PARSE_ERR_API);
    CHECK_STR(err, "API error status=NOT_AUTHORIZED request_id=r3: You are not entitled to this data.");
    const char *e3 = "{\"status\":\"OK\",\"results\":{}}";
    CHECK_INT(aggs_page_parse(&p, e3, strlen(e3), err, sizeof err), PARSE_ERR_SHAPE);
    const char *e4 = "{\"status\":\"OK\",\"results\":[],\"next_url\":[]}";
    CHECK_INT(aggs_page_parse(&p, e4, strlen(e4), err, sizeof err), PARSE_ERR_SHAPE);
    CHECK(strstr(err, "next_url") != NULL);
    char *bad = test_text_replace(aggs_body, "\"AAPL\"", "\"AA\xC3PL\"");
    CHECK_INT(aggs_page_parse(&p, bad, strlen(bad), err, sizeof err), PARSE_ERR_JSON);
    CHECK(strstr(err, "invalid UTF-8 at byte") != NULL);
    free(bad);
    for (size_t cut = 0; cut + 1 < aggs_len; cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, aggs_body, cut);
        int rc = aggs_page_parse(&p, copy, cut, err, sizeof err);
        free(copy);
        if (rc != PARSE_ERR_JSON) {
            fprintf(stderr, "  cut at %zu: rc=%d\n", cut, rc);
            test_current_failed = 1;
            break;
        }
    }
    CHECK_INT(p.nbars, 2);
    CHECK(p.next_url == NULL);

    /* next_url is taken from the page */
    char *withnext = test_text_replace(aggs_body, "\"count\": 2",
                                  "\"count\": 2, \"next_url\": \"https://api.polygon.io/v2/aggs/"
                                  "ticker/AAPL/range/1/day/1112587200001/2005-04-04?cursor=bGltaXQ9Mg\"");
    CHECK_INT(aggs_page_parse(&p, withnext, strlen(withnext), err, sizeof err), PARSE_OK);
    CHECK_STR(p.next_url, "https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/day/1112587200001/"
                          "2005-04-04?cursor=bGltaXQ9Mg");
    CHECK_INT(p.nbars, 4);
    free(withnext);
    aggs_page_free(&p);
}

static void test_aggs_fuzz(void)
{
    static const unsigned char vals[] = {0x00, '"', '{', '}', '9', '-', 0xFF, 'e', ','};
    char *copy = malloc(aggs_len);
    struct aggs_page p = {0};
    char err[256];
    size_t oks = 0;
    for (size_t i = 0; i < aggs_len; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(copy, aggs_body, aggs_len);
            copy[i] = (char)vals[v];
            int rc = aggs_page_parse(&p, copy, aggs_len, err, sizeof err);
            if (rc == PARSE_OK) {
                oks++;
                for (size_t k = 0; k < p.nbars; k++)
                    CHECK(p.bars[k].low <= p.bars[k].high && p.bars[k].volume >= 0);
            } else {
                CHECK(p.nbars == 0);
            }
            aggs_page_reset(&p);
        }
    CHECK(oks > 0);
    aggs_page_free(&p);
    free(copy);
}

int main(void)
{
    aggs_body = test_fixture_read(AGGS_FIXTURE, &aggs_len);
    RUN(test_aggs_fixture);
    RUN(test_aggs_optional_fields);
    RUN(test_aggs_no_results);
    RUN(test_aggs_bad_bars);
    RUN(test_aggs_timestamp_units);
    RUN(test_aggs_page_errors);
    RUN(test_aggs_fuzz);
    free(aggs_body);
    TEST_EXIT();
}
