/* Unit test: pg_startup_retry's policy, on scripted tries (no database): a
 * try that lost the database is tried again, and so is one that cannot reach
 * it after an earlier one did; one that never reached it, or failed with it
 * there, ends the retry at once. */
#include "optsnap/db/pg_connect.h"
#include "optsnap/util/log.h"
#include "test.h"

/* One scripted try: its result and what it reports. */
struct step {
    int rc;
    bool connected, lost;
};

struct script {
    const struct step *steps;
    int n, calls;
};

static int scripted(void *user, bool *connected, bool *lost)
{
    struct script *s = user;
    const struct step *st = &s->steps[s->calls < s->n ? s->calls : s->n - 1];
    s->calls++;
    *connected = st->connected;
    *lost = st->lost;
    return st->rc;
}

static void run_case(const char *name, const struct step *steps, int n, int want_rc, int want_calls)
{
    struct script s = {.steps = steps, .n = n};
    int rc = pg_startup_retry(name, scripted, &s, 2000); /* waits of at most 2 ms */
    CHECK_INT(rc, want_rc);
    CHECK_INT(s.calls, want_calls);
    if (rc != want_rc || s.calls != want_calls)
        fprintf(stderr, "  case: %s\n", name);
}

static void test_policy(void)
{
    const struct step ok[] = {{0, true, false}};
    run_case("first try", ok, 1, 0, 1);
    const struct step unreachable[] = {{-1, false, false}, {0, true, false}};
    run_case("never reached", unreachable, 2, -1, 1);
    const struct step no_schema[] = {{-1, true, false}, {0, true, false}};
    run_case("reached, failed there", no_schema, 2, -1, 1);
    const struct step lost_twice[] = {{-1, true, true}, {-1, true, true}, {0, true, false}};
    run_case("lost twice", lost_twice, 3, 0, 3);
    const struct step lost_then_gone[] = {{-1, true, true}, {-1, false, false}, {-1, false, false}, {0, true, false}};
    run_case("lost, then unreachable for a while", lost_then_gone, 4, 0, 4);
    const struct step lost_then_refused[] = {{-1, true, true}, {-1, true, false}, {0, true, false}};
    run_case("lost, then failed with it there", lost_then_refused, 3, -1, 2);
}

int main(void)
{
    log_set_level(LOG_LEVEL_OFF);
    RUN(test_policy);
    TEST_EXIT();
}
