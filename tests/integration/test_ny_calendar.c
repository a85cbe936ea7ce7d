/* test_ny_calendar.c - util/ny_calendar.c (the simulator's calendar) agrees
 * with the database's: every us-options session of 2024-2027 in
 * trading_sessions (holidays, early closes, DST) has the same open and close
 * instants in C, C has no session the database lacks, and the local date of
 * every hour of those years equals PostgreSQL's America/New_York date. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/ny_calendar.h"
#include "optsnap/util/timeutil.h"
#include "pgtest.h"
#include "test.h"

static PGconn *db;

static void test_sessions_equal_the_database(void)
{
    PGresult *res = PQexec(db, "SELECT (day - date '1970-01-01')::int,"
                               " (extract(epoch FROM open_at) * 1000000)::bigint,"
                               " (extract(epoch FROM close_at) * 1000000)::bigint, early_close"
                               " FROM trading_sessions WHERE calendar = 'us-options' ORDER BY day");
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    int n = PQntuples(res);
    CHECK(n > 1000);
    int mismatches = 0, early = 0, dst_sessions = 0;
    int32_t first = days_from_civil(2024, 1, 1), last = days_from_civil(2027, 12, 31);
    int row = 0;
    for (int32_t d = first; d <= last; d++) {
        int64_t open_us = 0, close_us = 0;
        bool c_has = ny_session_bounds(d, &open_us, &close_us);
        bool db_has = row < n && atoi(PQgetvalue(res, row, 0)) == d;
        if (c_has != db_has) {
            if (mismatches++ < 5)
                fprintf(stderr, "  day %" PRId32 ": C session %d, database session %d\n", d, c_has, db_has);
        } else if (db_has) {
            int64_t o = strtoll(PQgetvalue(res, row, 1), NULL, 10), c = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            if (o != open_us || c != close_us) {
                if (mismatches++ < 5)
                    fprintf(stderr, "  day %" PRId32 ": C %" PRId64 "..%" PRId64 ", database %" PRId64 "..%" PRId64 "\n",
                            d, open_us, close_us, o, c);
            }
            early += PQgetvalue(res, row, 3)[0] == 't';
            dst_sessions += ny_utc_offset_us(open_us) == -4 * INT64_C(3600000000);
        }
        if (db_has)
            row++;
    }
    CHECK_INT(mismatches, 0);
    CHECK_INT(row, n);
    CHECK_INT(early, 9);         /* every early close of the four years was compared */
    CHECK(dst_sessions > 500);   /* and the summer (EDT) sessions */
    PQclear(res);
}

static void test_local_dates_equal_postgres(void)
{
    /* every 30 minutes of 2024-2027, plus the seconds around each DST change */
    PGresult *res = PQexec(db, "SELECT (extract(epoch FROM t) * 1000000)::bigint,"
                               " ((t AT TIME ZONE 'America/New_York')::date - date '1970-01-01')::int,"
                               " (extract(epoch FROM (t AT TIME ZONE 'America/New_York') - (t AT TIME ZONE 'UTC')) * 1000000)::bigint"
                               " FROM generate_series(timestamptz '2024-01-01 00:00Z', timestamptz '2028-01-01 00:00Z',"
                               " interval '30 minutes') t");
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    int n = PQntuples(res), bad = 0;
    CHECK(n > 70000);
    for (int i = 0; i < n; i++) {
        int64_t t = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        int32_t want = atoi(PQgetvalue(res, i, 1));
        int64_t off = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        if (ny_local_date(t) != want || ny_utc_offset_us(t) != off) {
            if (bad++ < 5)
                fprintf(stderr, "  t=%" PRId64 ": C date %" PRId32 " offset %" PRId64 ", postgres %" PRId32 " %" PRId64 "\n",
                        t, ny_local_date(t), ny_utc_offset_us(t), want, off);
        }
    }
    CHECK_INT(bad, 0);
    PQclear(res);
    /* local midnight is the start of the local date */
    for (int32_t d = days_from_civil(2024, 1, 1); d <= days_from_civil(2027, 12, 31); d++) {
        int64_t mid = ny_local_midnight_us(d);
        if (ny_local_date(mid) != d || ny_local_date(mid - 1) != d - 1) {
            if (bad++ < 5)
                fprintf(stderr, "  midnight of day %" PRId32 " is wrong\n", d);
        }
    }
    CHECK_INT(bad, 0);
}

static void test_known_days(void)
{
    int64_t o, c;
    /* 2026-11-27, the day after Thanksgiving: 09:30-13:00 EST */
    CHECK(ny_session_bounds(days_from_civil(2026, 11, 27), &o, &c));
    CHECK_INT(o, days_from_civil(2026, 11, 27) * INT64_C(86400000000) + INT64_C(14) * 3600000000 + INT64_C(30) * 60000000);
    CHECK_INT(c - o, INT64_C(210) * 60000000);
    /* Thanksgiving and a Saturday: no session */
    CHECK(!ny_session_bounds(days_from_civil(2026, 11, 26), &o, &c));
    CHECK(!ny_is_trading_date(days_from_civil(2026, 11, 28)));
    /* 2026-03-09, the Monday after DST began: 13:30Z open */
    CHECK(ny_session_bounds(days_from_civil(2026, 3, 9), &o, &c));
    CHECK_INT(o, days_from_civil(2026, 3, 9) * INT64_C(86400000000) + INT64_C(13) * 3600000000 + INT64_C(30) * 60000000);
    /* outside the embedded years every weekday trades */
    CHECK(ny_is_trading_date(days_from_civil(2030, 12, 25)));
}

int main(void)
{
    char conninfo[1024];
    int rc = pgtest_open_migrated("h12_itest_ny_calendar", conninfo, sizeof conninfo, &db);
    if (rc != 0)
        return rc;
    RUN(test_sessions_equal_the_database);
    RUN(test_local_dates_equal_postgres);
    RUN(test_known_days);
    PQfinish(db);
    return test_failures ? 1 : 0;
}
