/* Unit tests for the options contracts reference parser: both fixture pages with next_url, the single-contract page, skipped entries. */
#include "optsnap/api/reference_parse.h"
#include "optsnap/api/snapshot_parse.h" /* enum parse_result */
#include "optsnap/util/timeutil.h"
#include "test.h"

#define REF_DIR "massive-com__client-python/test_rest/mocks/v3/reference/options/"

static void check_a_call(const struct option_contract *c, const char *ticker, double strike)
{
    CHECK_STR(c->ticker, ticker);
    CHECK_STR(c->underlying, "A");
    CHECK_INT(c->contract_type, 'C');
    CHECK_INT(c->exercise_style, 'A');
    CHECK_INT(c->expiration_days, days_from_civil(2022, 5, 20));
    CHECK_DBL(c->strike_price, strike);
    CHECK_INT(c->shares_per_contract, 100);
}

static void test_reference_pages(void)
{
    size_t n1, n2;
    char *p1 = test_fixture_read(REF_DIR "contracts.json", &n1);
    char *p2 = test_fixture_read(REF_DIR "contracts&cursor=YXA9JTdCJTIySUQlMjIlM0ElMjIy.json", &n2);
    struct contracts_page p = {0};
    char err[256] = "";
    CHECK_INT(contracts_page_parse(&p, p1, n1, err, sizeof err), PARSE_OK);
    CHECK_INT(p.ncontracts, 10);
    CHECK_INT(p.nskipped, 0);
    CHECK_STR(p.request_id, "30ece14c74dcfc5ad4785b08fd21456d");
    CHECK_STR(p.next_url,
              "https://api.massive.com/v3/reference/options/contracts?cursor=YXA9JTdCJTIySUQlMjIlM0ElMjIy");
    if (p.ncontracts == 10) {
        check_a_call(&p.contracts[0], "O:A220520C00065000", 65);
        check_a_call(&p.contracts[1], "O:A220520C00070000", 70);
        check_a_call(&p.contracts[9], "O:A220520C00110000", 110);
        CHECK(p.refs[0].has_reference);
        CHECK_STR(p.refs[0].primary_exchange, "BATO");
        CHECK_STR(p.refs[0].cfi, "OCASPS");
        CHECK(p.refs[0].additional_underlyings == NULL);
    }
    /* the second page: appended, and it is the last one */
    CHECK_INT(contracts_page_parse(&p, p2, n2, err, sizeof err), PARSE_OK);
    CHECK_INT(p.ncontracts, 20);
    CHECK(p.next_url == NULL);
    CHECK_STR(p.request_id, "7ab36c77b9412ecc95275a94461be18f");
    if (p.ncontracts == 20) {
        check_a_call(&p.contracts[10], "O:A220520C00115000", 115);
        check_a_call(&p.contracts[19], "O:A220520C00160000", 160);
        for (size_t i = 0; i < 20; i++)
            CHECK_DBL(p.contracts[i].strike_price, 65.0 + 5.0 * (double)i);
    }
    contracts_page_reset(&p);
    CHECK_INT(p.ncontracts, 0);
    contracts_page_free(&p);
    free(p1);
    free(p2);
}

static void test_reference_single(void)
{
    size_t n;
    char *b = test_fixture_read(REF_DIR "contracts/OEVRI240119C00002500.json", &n);
    struct contracts_page p = {0};
    char err[256];
    CHECK_INT(contracts_page_parse(&p, b, n, err, sizeof err), PARSE_OK);
    CHECK_INT(p.ncontracts, 1);
    if (p.ncontracts == 1) {
        const struct option_contract *c = &p.contracts[0];
        CHECK_STR(c->ticker, "O:EVRI240119C00002500");
        CHECK_STR(c->underlying, "EVRI");
        CHECK_INT(c->contract_type, 'C');
        CHECK_INT(c->expiration_days, days_from_civil(2024, 1, 19));
        CHECK_DBL(c->strike_price, 2.5);
        CHECK_INT(c->shares_per_contract, 100);
    }
    contracts_page_free(&p);
    free(b);
}

static void test_reference_skipped(void)
{
    const char *body =
        "{\"status\":\"OK\",\"request_id\":\"x1\",\"results\":["
        "{\"ticker\":\"O:SPY251121P00600000\",\"underlying_ticker\":\"SPY\",\"contract_type\":\"put\","
        "\"exercise_style\":\"european\",\"expiration_date\":\"2025-11-21\",\"strike_price\":600,"
        "\"shares_per_contract\":100},"
        "{\"ticker\":\"SPY\"},"                                                 /* not OCC */
        "{\"ticker\":\"O:SPY251121P00600000\",\"contract_type\":\"call\"},"    /* disagrees */
        "{\"ticker\":\"O:SPY251121P00600000\",\"strike_price\":\"600\"},"      /* wrong type */
        "{\"ticker\":\"O:SPY251121P00600000\",\"expiration_date\":\"2025-11-22\"},"
        "{\"ticker\":\"O:SPY251121P00600000\",\"shares_per_contract\":-100},"
        "{\"underlying_ticker\":\"SPY\"},"                                      /* no ticker */
        "7,"
        "{\"ticker\":\"O:QQQ251121C00500000\"}"                                /* minimal: ok */
        "]}";
    struct contracts_page p = {0};
    char err[256];
    CHECK_INT(contracts_page_parse(&p, body, strlen(body), err, sizeof err), PARSE_OK);
    CHECK_INT(p.ncontracts, 2);
    CHECK_INT(p.nskipped, 7);
    if (p.ncontracts == 2) {
        CHECK_STR(p.contracts[0].underlying, "SPY");
        CHECK_INT(p.contracts[0].contract_type, 'P');
        CHECK_INT(p.contracts[0].exercise_style, 'E');
        CHECK_DBL(p.contracts[0].strike_price, 600);
        CHECK_STR(p.contracts[1].ticker, "O:QQQ251121C00500000");
        CHECK_STR(p.contracts[1].underlying, "QQQ"); /* from the OCC root */
        CHECK_INT(p.contracts[1].exercise_style, '?');
        CHECK_INT(p.contracts[1].shares_per_contract, 0);
    }
    contracts_page_free(&p);
}

static void test_reference_page_errors(void)
{
    struct contracts_page p = {0};
    char err[256];
    const char *e1 = "{\"status\":\"NOT_AUTHORIZED\",\"request_id\":\"r9\",\"message\":\"nope\"}";
    CHECK_INT(contracts_page_parse(&p, e1, strlen(e1), err, sizeof err), PARSE_ERR_API);
    CHECK_STR(err, "API error status=NOT_AUTHORIZED request_id=r9: nope");
    const char *e2 = "{\"status\":\"OK\",\"results\":\"x\"}";
    CHECK_INT(contracts_page_parse(&p, e2, strlen(e2), err, sizeof err), PARSE_ERR_SHAPE);
    const char *e3 = "{\"status\":\"OK\",\"results\":[{\"ticker\":\"O:SPY251121P00600000\"}],\"next_url\":1}";
    CHECK_INT(contracts_page_parse(&p, e3, strlen(e3), err, sizeof err), PARSE_ERR_SHAPE);
    CHECK_INT(p.ncontracts, 0);
    const char *e4 = "{\"status\":\"OK\",\"results\":[{\"ticker\":\"O:SPY251121P00600000\"}";
    CHECK_INT(contracts_page_parse(&p, e4, strlen(e4), err, sizeof err), PARSE_ERR_JSON);
    const char *ok = "{\"status\":\"OK\"}"; /* no contracts at all */
    CHECK_INT(contracts_page_parse(&p, ok, strlen(ok), err, sizeof err), PARSE_OK);
    CHECK_INT(p.ncontracts, 0);
    contracts_page_free(&p);
}

/* An adjusted contract: deliverables beyond 100 shares of one stock
 * (additional_underlyings), an index listing as underlying_ticker I:SPX. */
static void test_reference_fields(void)
{
    const char *body =
        "{\"status\":\"OK\",\"request_id\":\"r1\",\"results\":["
        "{\"ticker\":\"O:XYZ1240119C00010000\",\"underlying_ticker\":\"XYZ\",\"cfi\":\"OCASPS\","
        "\"primary_exchange\":\"XCBO\",\"correction\":1,\"additional_underlyings\":["
        "{\"type\":\"equity\",\"underlying\":\"XYZ\",\"amount\":50},"
        "{\"type\":\"currency\",\"underlying\":\"USD\",\"amount\":12.5}]},"
        "{\"ticker\":\"O:SPXW240119P04000000\",\"underlying_ticker\":\"I:SPX\",\"exercise_style\":\"european\"},"
        "{\"ticker\":\"O:ABC240119C00010000\",\"additional_underlyings\":[{\"type\":1}]},"
        "{\"ticker\":\"O:ABC240119C00011000\",\"cfi\":7}]}";
    struct contracts_page p = {0};
    char err[256];
    CHECK_INT(contracts_page_parse(&p, body, strlen(body), err, sizeof err), PARSE_OK);
    CHECK_INT(p.ncontracts, 4);
    CHECK_INT(p.nskipped, 0);
    CHECK_INT(p.nfields_dropped, 2); /* a field that cannot be read costs the field */
    if (p.ncontracts == 4) {
        CHECK_STR(p.refs[0].cfi, "OCASPS");
        CHECK_STR(p.refs[0].primary_exchange, "XCBO");
        CHECK_STR(p.refs[0].additional_underlyings,
                  "[{\"type\":\"equity\",\"underlying\":\"XYZ\",\"amount\":50},"
                  "{\"type\":\"currency\",\"underlying\":\"USD\",\"amount\":12.5}]");
        CHECK_STR(p.contracts[1].underlying, "I:SPX");
        CHECK_INT(p.contracts[1].exercise_style, 'E');
        CHECK(!p.refs[1].has_reference);
        CHECK(p.refs[2].has_reference);
        CHECK(p.refs[2].additional_underlyings == NULL); /* unreadable: NULL, counted */
        CHECK_STR(p.refs[3].cfi, "");
    }
    contracts_page_free(&p);
}

int main(void)
{
    RUN(test_reference_pages);
    RUN(test_reference_single);
    RUN(test_reference_fields);
    RUN(test_reference_skipped);
    RUN(test_reference_page_errors);
    TEST_EXIT();
}
