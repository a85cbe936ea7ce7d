/* test_pager_rules.c - the pagination rules every paginated fetch lives by:
 * origin, cursor loop, page cap, parse retries. */
#include "optsnap/pipeline/pager_rules.h"
#include "test.h"

static struct api_origin origin;
static char fetch[1024];
#define next(r, o, u) pager_rules_next(r, o, u, fetch, sizeof fetch)

static void test_last_page_and_follow(void)
{
    struct pager_rules r;
    pager_rules_init(&r, 10, 3);
    CHECK_INT(next(&r, &origin, "https://api.massive.com/v3/x?cursor=a"), PAGER_STEP_FOLLOW);
    CHECK_INT(next(&r, &origin, "https://api.massive.com/v3/x?cursor=b"), PAGER_STEP_FOLLOW);
    CHECK_INT(next(&r, &origin, NULL), PAGER_STEP_LAST);
    CHECK_INT(r.pages, 3);
    pager_rules_reset(&r);
    CHECK_INT(next(&r, &origin, ""), PAGER_STEP_LAST);
    pager_rules_reset(&r);
}

static void test_repeated_cursor_is_a_loop(void)
{
    struct pager_rules r;
    pager_rules_init(&r, 100, 3);
    CHECK_INT(next(&r, &origin, "https://api.massive.com/v3/x?cursor=a"), PAGER_STEP_FOLLOW);
    CHECK_INT(next(&r, &origin, "https://api.massive.com/v3/x?cursor=b"), PAGER_STEP_FOLLOW);
    CHECK_INT(next(&r, &origin, "https://api.massive.com/v3/x?cursor=a"), PAGER_STEP_LOOP);
    pager_rules_reset(&r);
}

/* A cursor that changes forever (N+1) is stopped by the cap, not followed without end. */
static void test_page_cap(void)
{
    struct pager_rules r;
    pager_rules_init(&r, 5, 3);
    char url[128];
    enum pager_step st = PAGER_STEP_FOLLOW;
    int followed = 0;
    for (int i = 0; i < 100 && st == PAGER_STEP_FOLLOW; i++) {
        snprintf(url, sizeof url, "https://api.massive.com/v3/x?cursor=%d", i);
        st = next(&r, &origin, url);
        followed += st == PAGER_STEP_FOLLOW;
    }
    CHECK_INT(st, PAGER_STEP_CAP);
    CHECK_INT(followed, 4); /* 5 pages: the first and 4 followed */
    CHECK_INT(r.pages, 5);
    CHECK(r.nseen <= 5);
    pager_rules_reset(&r);
}

static void test_off_origin(void)
{
    struct pager_rules r;
    pager_rules_init(&r, 10, 3);
    CHECK_INT(next(&r, &origin, "https://api.massive.com.evil.example/v3/x"), PAGER_STEP_OFF_ORIGIN);
    CHECK_INT(next(&r, &origin, "http://api.massive.com/v3/x"), PAGER_STEP_OFF_ORIGIN);
    CHECK_INT(next(&r, &origin, "https://evil.example/v3/x?apiKey=x"), PAGER_STEP_OFF_ORIGIN);
    pager_rules_reset(&r);
}

/* The API's alias host (next_url on api.polygon.io for api.massive.com) is
 * followed, rebased onto api_url, so the key goes only where it was sent. */
static void test_alias_host_rebased(void)
{
    struct pager_rules r;
    pager_rules_init(&r, 10, 3);
    CHECK_INT(next(&r, &origin, "https://api.polygon.io/v3/snapshot/options/SPY?cursor=abc"), PAGER_STEP_FOLLOW);
    CHECK_STR(fetch, "https://api.massive.com/v3/snapshot/options/SPY?cursor=abc");
    pager_rules_reset(&r);
}

static void test_parse_retries_are_bounded_per_page(void)
{
    struct pager_rules r;
    pager_rules_init(&r, 10, 2);
    CHECK(pager_rules_retry_parse(&r));
    CHECK(pager_rules_retry_parse(&r));
    CHECK(!pager_rules_retry_parse(&r));
    /* a good page resets the count for the next one */
    CHECK_INT(next(&r, &origin, "https://api.massive.com/v3/x?cursor=a"), PAGER_STEP_FOLLOW);
    CHECK(pager_rules_retry_parse(&r));
    pager_rules_reset(&r);
    pager_rules_init(&r, 10, 0);
    CHECK(!pager_rules_retry_parse(&r));
}

int main(void)
{
    if (api_origin_init(&origin, "https://api.massive.com") != 0)
        return 1;
    RUN(test_last_page_and_follow);
    RUN(test_repeated_cursor_is_a_loop);
    RUN(test_page_cap);
    RUN(test_off_origin);
    RUN(test_alias_host_rebased);
    RUN(test_parse_retries_are_bounded_per_page);
    TEST_EXIT();
}
