/* Unit tests for the table of alternate OCC roots and the rule that matches a
 * row to the requested underlying (index chains, "I:" names, adjusted roots). */
#include "optsnap/api/roots.h"
#include "test.h"

static void test_table(void)
{
    size_t n;
    const char *const *r = option_roots_of("I:SPX", &n);
    CHECK(r != NULL);
    CHECK_INT(n, 3);
    CHECK_STR(r[0], "SPX");
    CHECK_STR(r[1], "SPXW");
    r = option_roots_of("NDX", &n);
    CHECK(r != NULL && n == 2 && strcmp(r[1], "NDXP") == 0);
    CHECK(option_roots_of("AAPL", &n) == NULL);
    CHECK_INT(n, 1);
    static const char *const pairs[][2] = {
        {"I:SPX", "SPXW"}, {"SPX", "SPXW"}, {"SPX", "SPX"}, {"I:NDX", "NDXP"}, {"I:RUT", "RUTW"},
        {"I:VIX", "VIXW"}, {"I:OEX", "XEO"}, {"AAPL", "AAPL"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        CHECK(option_root_of_underlying(pairs[i][0], pairs[i][1]));
    CHECK(!option_root_of_underlying("SPX", "SPY"));
    CHECK(!option_root_of_underlying("SPY", "SPXW"));
    CHECK(!option_root_of_underlying("I:NDX", "SPXW"));
    CHECK(!option_root_of_underlying("AAPL", "AAPL1")); /* adjusted roots go by the API's underlying */
    CHECK(!option_root_of_underlying("SPXW", "SPX"));   /* the table is keyed by the underlying */
}

static void test_names(void)
{
    CHECK_STR(underlying_base("I:SPX"), "SPX");
    CHECK_STR(underlying_base("SPX"), "SPX");
    CHECK_STR(underlying_base("I:"), "I:");
    CHECK(underlying_is_index("I:SPX"));
    CHECK(!underlying_is_index("IBM"));
    CHECK(!underlying_is_index("I:"));
}

static void test_row_matches(void)
{
    /* an I:SPX chain: both roots, the API's own name for the index */
    CHECK(option_row_matches_underlying("I:SPX", "I:SPX", "SPXW"));
    CHECK(option_row_matches_underlying("I:SPX", "I:SPX", "SPX"));
    CHECK(option_row_matches_underlying("SPX", "I:SPX", "SPXW"));   /* asked as SPX */
    CHECK(option_row_matches_underlying("I:SPX", "SPX", "SPX"));
    CHECK(option_row_matches_underlying("SPX", "SPXW", "SPXW"));    /* the root as underlying */
    CHECK(option_row_matches_underlying("SPX", NULL, "SPXW"));
    CHECK(option_row_matches_underlying("SPX", "", "SPXW"));
    /* an adjusted contract: the API names the underlying, the root differs */
    CHECK(option_row_matches_underlying("AAPL", "AAPL", "AAPL1"));
    CHECK(option_row_matches_underlying("", "MSFT", "MSFT"));
    CHECK(!option_row_matches_underlying("AAPL", "MSFT", "MSFT"));
    CHECK(!option_row_matches_underlying("SPX", "SPY", "SPY"));
    CHECK(!option_row_matches_underlying("I:SPX", "I:NDX", "NDXP"));
    CHECK(!option_row_matches_underlying("SPY", "I:SPX", "SPXW"));
}

int main(void)
{
    RUN(test_table);
    RUN(test_names);
    RUN(test_row_matches);
    TEST_EXIT();
}
