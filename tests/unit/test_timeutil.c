/* Unit tests for timeutil: durations, timestamps, civil dates. */
#include "optsnap/util/timeutil.h"
#include "test.h"

static void test_duration(void)
{
    int64_t us;
    CHECK(duration_parse("60s", &us) == 0 && us == 60 * USEC_PER_SEC);
    CHECK(duration_parse("250ms", &us) == 0 && us == 250000);
    CHECK(duration_parse("5m", &us) == 0 && us == 5 * USEC_PER_MIN);
    CHECK(duration_parse("7d", &us) == 0 && us == 7 * USEC_PER_DAY);
    CHECK(duration_parse("2h", &us) == 0 && us == 7200 * USEC_PER_SEC);
    CHECK(duration_parse("15", &us) == 0 && us == 15 * USEC_PER_SEC);
    CHECK(duration_parse("1.5s", &us) == 0 && us == 1500000);
    CHECK(duration_parse("", &us) == -1);
    CHECK(duration_parse("-1s", &us) == -1);
    CHECK(duration_parse("10x", &us) == -1);
    CHECK(duration_parse("s", &us) == -1);
}

static void test_timestamp(void)
{
    int64_t us;
    char buf[40];
    CHECK(timestamp_parse("1970-01-01", &us) == 0 && us == 0);
    CHECK(timestamp_parse("2022-04-29T04:00:00Z", &us) == 0);
    CHECK_INT(us, INT64_C(1651204800000000));
    CHECK_STR(timestamp_format(buf, sizeof buf, us), "2022-04-29T04:00:00.000000Z");
    CHECK(timestamp_parse("2022-04-29T00:00:00-04:00", &us) == 0 && us == INT64_C(1651204800000000));
    CHECK(timestamp_parse("2022-04-29 04:00:00.5", &us) == 0 && us == INT64_C(1651204800500000));
    CHECK(timestamp_parse("2022-02-30", &us) == -1);
    CHECK(timestamp_parse("2022-04-29T25:00:00Z", &us) == -1);
    CHECK(timestamp_parse("2022-04-29T04:00:00Zjunk", &us) == -1);
    CHECK(timestamp_parse("yesterday", &us) == -1);
    CHECK_STR(timestamp_format(buf, sizeof buf, -1), "1969-12-31T23:59:59.999999Z");
}

static void test_civil(void)
{
    int32_t d;
    char buf[16];
    CHECK(date_parse("2023-06-16", &d) == 0);
    CHECK_INT(d, 19524);
    CHECK_STR(date_format(buf, sizeof buf, d), "2023-06-16");
    CHECK(date_parse("2024-02-29", &d) == 0);
    CHECK(date_parse("2023-02-29", &d) == -1);
    CHECK(date_parse("2023-6-16", &d) == -1);
    for (int32_t z = -1000; z < 30000; z += 7) {
        int y;
        unsigned m, dd;
        civil_from_days(z, &y, &m, &dd);
        CHECK_INT(days_from_civil(y, m, dd), z);
    }
}

int main(void)
{
    RUN(test_duration);
    RUN(test_timestamp);
    RUN(test_civil);
    TEST_EXIT();
}
