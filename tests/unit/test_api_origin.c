/* Unit tests for the same-origin check of next_url and the shared backoff. */
#include "optsnap/api/api_origin.h"
#include "optsnap/util/backoff.h"
#include "test.h"

static void test_same_origin(void)
{
    struct api_origin o;
    CHECK(api_origin_init(&o, "https://api.polygon.io//") == 0);
    CHECK_STR(o.base, "https://api.polygon.io");
    CHECK(api_origin_owns(&o, "https://api.polygon.io/v3/snapshot/options/SPY?cursor=abc"));
    CHECK(api_origin_owns(&o, "https://api.polygon.io"));
    CHECK(!api_origin_owns(&o, "https://api.polygon.io.evil.example/v3/x")); /* the key would go there */
    CHECK(!api_origin_owns(&o, "https://api.polygon.i"));
    CHECK(!api_origin_owns(&o, "http://api.polygon.io/v3/x"));
    CHECK(!api_origin_owns(&o, "https://evil.example/?u=https://api.polygon.io/"));
    CHECK(api_origin_init(&o, "") == -1);
    CHECK(api_origin_init(&o, "///") == -1);
}

static void test_backoff(void)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        int64_t w = backoff_full_jitter_us(attempt, 200000, 6000000);
        CHECK(w >= 0 && w <= 6000000);
        if (attempt == 0)
            CHECK(w <= 200000);
    }
    /* full jitter: spread over the whole range, not clustered at the cap */
    int below_half = 0;
    for (int i = 0; i < 1000; i++)
        below_half += backoff_full_jitter_us(10, 200000, 6000000) < 3000000;
    CHECK(below_half > 350 && below_half < 650);
}

int main(void)
{
    RUN(test_same_origin);
    RUN(test_backoff);
    TEST_EXIT();
}
