/* test_gaps.c - sql/003_gaps.sql and `optsnap gaps` against a real
 * PostgreSQL: expected windows of the us-options calendar (normal, early
 * close, holiday, weekend, DST), the gap ranges, the command's exit codes and
 * JSON, the gap query's plan and time on a year of coverage for 50
 * underlyings, and the per-underlying lease (also raced). */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "optsnap/history/gaps.h"
#include "optsnap/util/timeutil.h"
#include "pgtest.h"
#include "test.h"

static char conninfo[1024];
static PGconn *db;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Full coverage of `underlying` for the calendar's windows in [from, to). */
static int cover(const char *underlying, const char *cal, const char *from, const char *to,
                 const char *source)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO ingest_coverage (underlying, window_start, window_end, source)"
             " SELECT '%s', window_start, window_end, '%s'"
             "   FROM optsnap_expected_windows('%s', '60s', '%s', '%s')",
             underlying, source, cal, from, to);
    return pgtest_exec(db, sql);
}

/* The gap ranges as "U start end n;..." (UTC, the session's TimeZone). */
static void gaps_text(const char *call, char *buf, size_t size)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(format('%%s %%s %%s %%s', underlying,"
             " to_char(gap_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),"
             " to_char(gap_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), windows), ';'"
             " ORDER BY underlying, gap_start), '') FROM %s",
             call);
    if (pgtest_text(db, sql, buf, size) != 0)
        snprintf(buf, size, "(query failed)");
}

/* --- expected windows -------------------------------------------------------- */

static long long windows_of(const char *cal, const char *cadence, const char *from, const char *to)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM optsnap_expected_windows('%s', '%s', '%s', '%s')",
             cal, cadence, from, to);
    return pgtest_scalar(db, sql);
}

static void first_last(const char *from, const char *to, char *buf, size_t size)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT to_char(min(window_start) AT TIME ZONE 'UTC', 'HH24:MI') || '-' ||"
             "       to_char(max(window_end) AT TIME ZONE 'UTC', 'HH24:MI')"
             "  FROM optsnap_expected_windows('us-options', '60s', '%s', '%s')",
             from, to);
    if (pgtest_text(db, sql, buf, size) != 0)
        snprintf(buf, size, "(query failed)");
}

static void test_expected_windows_us_options(void)
{
    char fl[64];
    /* A normal Wednesday: 09:30-16:00 EST = 14:30-21:00Z. */
    CHECK_INT(windows_of("us-options", "60s", "2025-11-26", "2025-11-27"), 390);
    first_last("2025-11-26", "2025-11-27", fl, sizeof fl);
    CHECK_STR(fl, "14:30-21:00");
    /* Day after Thanksgiving closes at 13:00. */
    CHECK_INT(windows_of("us-options", "60s", "2025-11-28", "2025-11-29"), 210);
    first_last("2025-11-28", "2025-11-29", fl, sizeof fl);
    CHECK_STR(fl, "14:30-18:00");
    /* Thanksgiving, Christmas, a Saturday, a Sunday. */
    CHECK_INT(windows_of("us-options", "60s", "2025-11-27", "2025-11-28"), 0);
    CHECK_INT(windows_of("us-options", "60s", "2025-12-25", "2025-12-26"), 0);
    CHECK_INT(windows_of("us-options", "60s", "2025-11-29", "2025-12-01"), 0);
    /* The week of Thanksgiving: Mon-Wed 390, Thu 0, Fri 210. */
    CHECK_INT(windows_of("us-options", "60s", "2025-11-24", "2025-12-01"), 3 * 390 + 210);

    /* DST began 2025-03-09 and ended 2025-11-02: the open moves in UTC. */
    first_last("2025-03-07", "2025-03-08", fl, sizeof fl);
    CHECK_STR(fl, "14:30-21:00");
    first_last("2025-03-10", "2025-03-11", fl, sizeof fl);
    CHECK_STR(fl, "13:30-20:00");
    CHECK_INT(windows_of("us-options", "60s", "2025-03-10", "2025-03-11"), 390);
    first_last("2025-10-31", "2025-11-01", fl, sizeof fl);
    CHECK_STR(fl, "13:30-20:00");
    first_last("2025-11-03", "2025-11-04", fl, sizeof fl);
    CHECK_STR(fl, "14:30-21:00");
    /* The session's TimeZone changes nothing. */
    CHECK_INT(pgtest_exec(db, "SET TimeZone = 'Asia/Tokyo'"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_expected_windows('us-options', '60s',"
                                " '2025-03-10 00:00Z', '2025-03-11 00:00Z')"
                                " WHERE window_start >= '2025-03-10 13:30Z' AND window_end <= '2025-03-10 20:00Z'"),
              390);
    CHECK_INT(pgtest_exec(db, "SET TimeZone = 'UTC'"), 0);

    /* Windows cut by a range bound are not expected: 14:45:30-15:00 holds 14:46..14:59. */
    CHECK_INT(windows_of("us-options", "60s", "2025-03-10 14:45:30Z", "2025-03-10 15:00Z"), 14);
    CHECK_INT(windows_of("us-options", "60s", "2025-03-10 14:45:30Z", "2025-03-10 14:46:59Z"), 0);
    /* Aligned to the epoch, not to the open: 7-minute windows of 13:30-20:00Z
     * start at 13:33 (a multiple of 420 s) and the last ends at 19:58. */
    CHECK_INT(windows_of("us-options", "7 minutes", "2025-03-10", "2025-03-11"), 55);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_expected_windows('us-options', '7 minutes',"
                                " '2025-03-10', '2025-03-11')"
                                " WHERE (extract(epoch FROM window_start))::bigint % 420 <> 0"
                                "    OR window_end - window_start <> interval '7 minutes'"),
              0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_expected_windows('us-options', '60s',"
                                " '2025-01-01', '2026-01-01')"),
              250 * 390 - 3 * 180);
    /* 'always': every minute of every UTC day. */
    CHECK_INT(windows_of("always", "60s", "2025-03-09", "2025-03-11"), 2 * 1440);
    CHECK_INT(windows_of("always", "90s", "2025-03-09", "2025-03-10"), 960);
    /* A cadence that is not a fixed positive length is refused, not empty. */
    CHECK_INT(pgtest_exec_fails(db, "SELECT * FROM optsnap_expected_windows('us-options', '0', '2025-03-10',"
                                    " '2025-03-11')",
                                "22023"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "SELECT * FROM optsnap_expected_windows('us-options', '1 month',"
                                    " '2025-03-10', '2025-03-11')",
                                "22023"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "SELECT * FROM optsnap_gaps('us-options', '60s', '2023-03-10',"
                                    " '2023-03-11', '{SPY}')",
                                "22023"),
              0);
}

/* --- gaps ----------------------------------------------------------------------- */

static void test_gaps_two_holes(void)
{
    char got[2048];
    /* BBB is covered half live, half by backfill: any source counts. */
    CHECK_INT(cover("AAA", "us-options", "2025-11-26", "2025-11-27", "live"), 0);
    CHECK_INT(cover("BBB", "us-options", "2025-11-26", "2025-11-26 17:00Z", "live"), 0);
    CHECK_INT(cover("BBB", "us-options", "2025-11-26 17:00Z", "2025-11-27", "backfill"), 0);
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-11-27', '{AAA,BBB}')", got,
              sizeof got);
    CHECK_STR(got, "");
    CHECK_INT(pgtest_exec(db, "DELETE FROM ingest_coverage WHERE underlying = 'AAA' AND"
                              " ((window_start >= '2025-11-26 15:00Z' AND window_start < '2025-11-26 15:05Z')"
                              "  OR window_start = '2025-11-26 18:10Z')"),
              0);
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-11-27', '{AAA,BBB}')", got,
              sizeof got);
    CHECK_STR(got, "AAA 2025-11-26 15:00 2025-11-26 15:05 5;AAA 2025-11-26 18:10 2025-11-26 18:11 1");
    /* Duplicates in the list are one underlying; an unknown one misses everything. */
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-11-27', '{BBB,AAA,BBB,ZZZ}')",
              got, sizeof got);
    CHECK_STR(got, "AAA 2025-11-26 15:00 2025-11-26 15:05 5;AAA 2025-11-26 18:10 2025-11-26 18:11 1;"
                   "ZZZ 2025-11-26 14:30 2025-11-26 21:00 390");
    /* A range that starts inside a hole reports only its part of it. */
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26 15:02Z', '2025-11-26 18:00Z', '{AAA}')",
              got, sizeof got);
    CHECK_STR(got, "AAA 2025-11-26 15:02 2025-11-26 15:05 3");
}

static void test_gaps_merge_adjacent(void)
{
    char got[2048];
    /* Two holes that touch are one range. */
    CHECK_INT(cover("CCC", "us-options", "2025-11-26", "2025-11-27", "live"), 0);
    CHECK_INT(pgtest_exec(db, "DELETE FROM ingest_coverage WHERE underlying = 'CCC' AND"
                              " window_start >= '2025-11-26 16:00Z' AND window_start < '2025-11-26 16:10Z';"
                              " DELETE FROM ingest_coverage WHERE underlying = 'CCC' AND"
                              " window_start >= '2025-11-26 16:10Z' AND window_start < '2025-11-26 16:20Z';"
                              " DELETE FROM ingest_coverage WHERE underlying = 'CCC' AND"
                              " window_start = '2025-11-26 16:21Z'"),
              0);
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-11-27', '{CCC}')", got, sizeof got);
    CHECK_STR(got, "CCC 2025-11-26 16:00 2025-11-26 16:20 20;CCC 2025-11-26 16:21 2025-11-26 16:22 1");
    /* Under 'always', a hole across midnight is one range. */
    CHECK_INT(cover("DDD", "always", "2025-11-26", "2025-11-28", "live"), 0);
    CHECK_INT(pgtest_exec(db, "DELETE FROM ingest_coverage WHERE underlying = 'DDD' AND"
                              " window_start >= '2025-11-26 23:50Z' AND window_start < '2025-11-27 00:10Z'"),
              0);
    gaps_text("optsnap_gaps('always', '60s', '2025-11-26', '2025-11-28', '{DDD}')", got, sizeof got);
    CHECK_STR(got, "DDD 2025-11-26 23:50 2025-11-27 00:10 20");
}

static void test_gaps_skip_holiday_and_weekend(void)
{
    char got[2048];
    /* Wed full, Thanksgiving nothing, Fri (early close) 14:30-18:00Z, the
     * weekend nothing, Mon full: no gap at all. */
    CHECK_INT(cover("EEE", "us-options", "2025-11-26", "2025-12-02", "live"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'EEE'"),
              390 + 210 + 390);
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-12-02', '{EEE}')", got, sizeof got);
    CHECK_STR(got, "");
    /* The last window before the holiday and the first after it are two
     * ranges, not one spanning Thanksgiving; likewise around the weekend. */
    CHECK_INT(pgtest_exec(db, "DELETE FROM ingest_coverage WHERE underlying = 'EEE' AND window_start IN"
                              " ('2025-11-26 20:59Z', '2025-11-28 14:30Z', '2025-11-28 17:59Z',"
                              "  '2025-12-01 14:30Z')"),
              0);
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-12-02', '{EEE}')", got, sizeof got);
    CHECK_STR(got, "EEE 2025-11-26 20:59 2025-11-26 21:00 1;EEE 2025-11-28 14:30 2025-11-28 14:31 1;"
                   "EEE 2025-11-28 17:59 2025-11-28 18:00 1;EEE 2025-12-01 14:30 2025-12-01 14:31 1");
}

static void test_gaps_future_and_grid(void)
{
    char got[2048];
    /* Windows that have not ended are not gaps: the default horizon is now(). */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_gaps('always', '60s', now() - interval '10 minutes',"
                                " now() + interval '2 days', '{FFF}') WHERE gap_end > now()"),
              0);
    long long w = pgtest_scalar(db, "SELECT sum(windows) FROM optsnap_gaps('always', '60s',"
                                    " now() - interval '10 minutes', now() + interval '2 days', '{FFF}')");
    CHECK(w == 9 || w == 10);
    gaps_text("optsnap_gaps('always', '60s', '2025-11-26', '2025-11-27', '{FFF}', '2025-11-26 01:00:30Z')",
              got, sizeof got);
    CHECK_STR(got, "FFF 2025-11-26 00:00 2025-11-26 01:00 60");
    /* Coverage written under another cadence (off this grid) covers nothing:
     * 390 rows at hh:mm:30 leave all 390 one-minute windows missing. */
    CHECK_INT(pgtest_exec(db, "INSERT INTO ingest_coverage (underlying, window_start, window_end, source)"
                              " SELECT 'GGG', window_start + interval '30 seconds',"
                              "        window_end + interval '30 seconds', 'live'"
                              "   FROM optsnap_expected_windows('us-options', '60s', '2025-11-26', '2025-11-27')"),
              0);
    gaps_text("optsnap_gaps('us-options', '60s', '2025-11-26', '2025-11-27', '{GGG}')", got, sizeof got);
    CHECK_STR(got, "GGG 2025-11-26 14:30 2025-11-26 21:00 390");
    /* ... but the same rows are the grid of a 30-second cadence, half of it. */
    CHECK_INT(pgtest_scalar(db, "SELECT sum(windows) FROM optsnap_gaps('us-options', '30s', '2025-11-26',"
                                " '2025-11-27', '{GGG}')"),
              390);
}

static void test_gaps_query_c_api(void)
{
    struct universe_entry u[2] = {{"AAA"}, {"BBB"}};
    struct gap_request req = {
        .calendar = "us-options",
        .cadence_us = 60 * USEC_PER_SEC,
        .underlyings = u,
        .underlying_count = 2,
        .statement_timeout_us = 10 * USEC_PER_SEC,
    };
    CHECK_INT(timestamp_parse("2025-11-26", &req.from_us), 0);
    CHECK_INT(timestamp_parse("2025-11-27", &req.to_us), 0);
    struct gap_list gaps;
    char err[256];
    CHECK_INT(gaps_query(db, &req, &gaps, err, sizeof err), 0);
    CHECK_INT(gaps.count, 2);
    CHECK_INT(gaps.total_windows, 6);
    if (gaps.count == 2) {
        char a[40];
        CHECK_STR(gaps.ranges[0].underlying, "AAA");
        CHECK_STR(timestamp_format(a, sizeof a, gaps.ranges[0].start_us), "2025-11-26T15:00:00.000000Z");
        CHECK_STR(timestamp_format(a, sizeof a, gaps.ranges[0].end_us), "2025-11-26T15:05:00.000000Z");
        CHECK_INT(gaps.ranges[0].windows, 5);
        CHECK_INT(gaps.ranges[1].windows, 1);
    }
    gap_list_free(&gaps);
    /* An explicit horizon cuts the answer. */
    CHECK_INT(timestamp_parse("2025-11-26T16:00:00Z", &req.horizon_us), 0);
    CHECK_INT(gaps_query(db, &req, &gaps, err, sizeof err), 0);
    CHECK_INT(gaps.count, 1);
    gap_list_free(&gaps);
    /* Before the calendar's first day: a request error, not a database one;
     * the connection stays usable. (Days after now are never gaps, so a
     * future range is simply empty.) */
    req.horizon_us = 0;
    CHECK_INT(timestamp_parse("2023-01-05", &req.from_us), 0);
    CHECK_INT(timestamp_parse("2023-01-06", &req.to_us), 0);
    CHECK_INT(gaps_query(db, &req, &gaps, err, sizeof err), GAPS_ERR_REQUEST);
    CHECK(strstr(err, "us-options") != NULL);
    CHECK_INT(gaps.count, 0);
    CHECK_INT(pgtest_scalar(db, "SELECT 1"), 1);
}

/* --- the command ------------------------------------------------------------------ */

/* Runs `optsnap gaps ARGS`, stdout (and stderr when `with_stderr`) into
 * out[size]; returns the exit code, or -1 when it did not exit normally. */
static int run_gaps(const char *args, bool with_stderr, char *out, size_t size)
{
    const char *bin = getenv("OPTSNAP_BIN");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' gaps %s %s", bin, args, with_stderr ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_command(void)
{
    if (getenv("OPTSNAP_BIN") == NULL) {
        fprintf(stderr, "  OPTSNAP_BIN unset; command not tested\n");
        test_current_failed = 1;
        return;
    }
    static char out[65536];
    setenv("DATABASE_URL", conninfo, 1);
    unsetenv("OPTSNAP_CONFIG");
    const char *day = "--calendar us-options --cadence 60s --since 2025-11-26 --until 2025-11-27";
    char args[512];

    snprintf(args, sizeof args, "%s --underlying AAA,BBB --format json", day);
    CHECK_INT(run_gaps(args, false, out, sizeof out), 3);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL);
    if (j != NULL) {
        cJSON *gaps = cJSON_GetObjectItem(j, "gaps");
        CHECK_INT(cJSON_GetArraySize(gaps), 2);
        cJSON *g0 = cJSON_GetArrayItem(gaps, 0);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(g0, "underlying")), "AAA");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(g0, "start")), "2025-11-26T15:00:00Z");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(g0, "end")), "2025-11-26T15:05:00Z");
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(g0, "windows")), 5);
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "total_windows")), 6);
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "total_ranges")), 2);
        cJSON *totals = cJSON_GetObjectItem(j, "totals");
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(totals, "AAA"), "windows")), 6);
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(totals, "AAA"), "ranges")), 2);
        CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(totals, "BBB"), "windows")), 0);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "since")), "2025-11-26T00:00:00Z");
        cJSON_Delete(j);
    } else {
        fprintf(stderr, "  output: %s\n", out);
    }

    /* No gaps: exit 0, JSON still complete. */
    snprintf(args, sizeof args, "%s --underlying BBB --format=json", day);
    CHECK_INT(run_gaps(args, false, out, sizeof out), 0);
    j = cJSON_Parse(out);
    CHECK(j != NULL);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "gaps")), 0);
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "total_windows")), 0);
    cJSON_Delete(j);

    /* Table: a line per range, totals, exit 3; the universe setting is the default list. */
    snprintf(args, sizeof args, "%s --universe AAA,BBB", day);
    CHECK_INT(run_gaps(args, false, out, sizeof out), 3);
    CHECK(strstr(out, "AAA          2025-11-26T18:10:00Z") != NULL);
    CHECK(strstr(out, "total: 6 missing windows in 2 ranges, 1 of 2 underlyings") != NULL);
    snprintf(args, sizeof args, "%s --underlying BBB", day);
    CHECK_INT(run_gaps(args, false, out, sizeof out), 0);
    CHECK(strncmp(out, "no gaps: 1 underlying", 21) == 0);

    /* Relative --since under 'always': nothing is covered in the last 3 days. */
    CHECK_INT(run_gaps("--calendar always --since 3d --underlying BBB --format json", false, out,
                       sizeof out),
              3);

    /* Usage errors: 2. */
    CHECK_INT(run_gaps("--format xml", false, out, sizeof out), 2);
    CHECK_INT(run_gaps("--bogus", false, out, sizeof out), 2);
    CHECK_INT(run_gaps("--since", false, out, sizeof out), 2);
    CHECK_INT(run_gaps("--since 2025-11-27 --until 2025-11-26", false, out, sizeof out), 2);
    CHECK_INT(run_gaps("--since yesterday", false, out, sizeof out), 2);
    CHECK_INT(run_gaps("--underlying 'spy;drop'", false, out, sizeof out), 2);
    CHECK_INT(run_gaps("--calendar us-options --since 2023-01-05 --until 2023-01-06", true, out, sizeof out), 2);
    CHECK(strstr(out, "us-options") != NULL);
    CHECK_INT(run_gaps("--help", false, out, sizeof out), 0);
    CHECK(strstr(out, "--since") != NULL && strstr(out, "--format") != NULL && strstr(out, "exit codes") != NULL);

    /* Database unreachable: 1, and the password is never printed. */
    setenv("DATABASE_URL", "postgresql://optsnap:s3cr3tpw@127.0.0.1:1/nodb", 1);
    CHECK_INT(run_gaps("--underlying BBB", true, out, sizeof out), 1);
    CHECK(strstr(out, "s3cr3tpw") == NULL);
    CHECK(strstr(out, "***") != NULL);
    setenv("DATABASE_URL", conninfo, 1);
}

/* --- realistic size ------------------------------------------------------------- */

#define BIG_UNDERLYINGS 50

/* EXPLAIN ANALYZE `sql` (3 parameters) in a transaction, with gaps_query's
 * settings when `as_gaps_query`; the plan into buf, returns "Execution Time"
 * in ms (-1 when missing). */
static double explain_ms(const char *sql, const char *const *params, bool as_gaps_query, char *buf,
                         size_t size)
{
    double ms = -1;
    size_t used = 0;
    buf[0] = '\0';
    if (pgtest_exec(db, "BEGIN") != 0)
        return -1;
    if (as_gaps_query && pgtest_exec(db, "SET LOCAL jit = off; SET LOCAL statement_timeout = '30s'") != 0) {
        pgtest_exec(db, "ROLLBACK");
        return -1;
    }
    PGresult *res = PQexecParams(db, sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "  explain failed: %s", PQresultErrorMessage(res));
    for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
        const char *line = PQgetvalue(res, i, 0);
        int n = snprintf(buf + used, size - used, "%s\n", line);
        if (n > 0 && (size_t)n < size - used)
            used += (size_t)n;
        const char *et = strstr(line, "Execution Time:");
        if (et != NULL)
            ms = strtod(et + 15, NULL);
    }
    PQclear(res);
    pgtest_exec(db, "COMMIT");
    return ms;
}

static void test_plan_on_a_year_of_coverage(void)
{
    /* A year of one-minute windows for 50 underlyings (250 sessions, ~97k
     * windows each), inserted in key order. */
    double t0 = now_ms();
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO ingest_coverage (underlying, window_start, window_end, source, rows)"
             " SELECT 'U' || lpad(u::text, 2, '0'), e.window_start, e.window_end, 'live', 100"
             "   FROM generate_series(1, %d) AS u,"
             "        optsnap_expected_windows('us-options', '60s', '2025-01-01', '2026-01-01') AS e"
             "  ORDER BY 1, 2",
             BIG_UNDERLYINGS);
    CHECK_INT(pgtest_exec(db, sql), 0);
    double t1 = now_ms();
    CHECK_INT(pgtest_exec(db, "DELETE FROM ingest_coverage WHERE underlying = 'U07'"
                              "   AND window_start >= '2025-06-10 15:00Z' AND window_start < '2025-06-10 15:10Z';"
                              " DELETE FROM ingest_coverage WHERE underlying = 'U33'"
                              "   AND window_start = '2025-06-20 19:59Z';"
                              " DELETE FROM ingest_coverage WHERE underlying = 'U50'"
                              "   AND window_start >= '2025-06-02' AND window_start < '2025-06-03';"
                              " DELETE FROM ingest_coverage WHERE underlying = 'U01'"
                              "   AND window_start = '2025-07-01 13:30Z'"),
              0);
    /* As autovacuum would: statistics, and the visibility map that lets
     * the probes be index-only. */
    CHECK_INT(pgtest_exec(db, "VACUUM ANALYZE ingest_coverage"), 0);
    double t2 = now_ms();
    long long rows = pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying LIKE 'U__'");
    CHECK_INT(rows, (long long)BIG_UNDERLYINGS * (250 * 390 - 3 * 180) - 10 - 1 - 390 - 1);
    printf("  coverage rows=%lld insert_ms=%.0f vacuum_analyze_ms=%.0f\n", rows, t1 - t0, t2 - t1);

    char names[BIG_UNDERLYINGS * 4 + 3];
    size_t len = 0;
    names[len++] = '{';
    for (int i = 1; i <= BIG_UNDERLYINGS; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%sU%02d", i > 1 ? "," : "", i);
    names[len++] = '}';
    names[len] = '\0';

    /* The statement gaps.c sends, with parameters and its transaction
     * settings, EXPLAINed for one month. */
    const char *params[3] = {"2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z", names};
    const char *explain_sql = "EXPLAIN (ANALYZE, FORMAT TEXT)"
                              " SELECT * FROM optsnap_gaps('us-options', 60000000::bigint * interval"
                              " '1 microsecond', $1::timestamptz, $2::timestamptz, $3::text[])";
    static char plan[65536];
    double exec_ms = explain_ms(explain_sql, params, true, plan, sizeof plan);
    /* For the record: the server's default JIT settings, as a caller that
     * does not turn it off would see. Not asserted. */
    static char plan_jit[65536];
    double exec_jit_ms = explain_ms(explain_sql, params, false, plan_jit, sizeof plan_jit);
    printf("  same query with the server's default jit: execution_ms=%.1f jit=%s\n", exec_jit_ms,
           strstr(plan_jit, "JIT:") ? "used" : "not used");
    int uses_pkey = strstr(plan, "using ingest_coverage_pkey on ingest_coverage") != NULL;
    int seq_scan = strstr(plan, "Seq Scan on ingest_coverage") != NULL;
    CHECK(uses_pkey);
    CHECK(!seq_scan);
    /* Inlined: the plan shows the anti-join, not an opaque function scan. */
    CHECK(strstr(plan, "Function Scan on optsnap_gaps") == NULL);
    CHECK(exec_ms >= 0 && exec_ms < 1000);
    printf("  gap query, 1 month x %d underlyings: execution_ms=%.1f pkey=%d seq_scan=%d\n",
           BIG_UNDERLYINGS, exec_ms, uses_pkey, seq_scan);
    if (!uses_pkey || seq_scan || !(exec_ms >= 0 && exec_ms < 1000))
        fprintf(stderr, "%s", plan);

    /* The answer: the three June holes, nothing from July. */
    char got[2048];
    char call[1024];
    snprintf(call, sizeof call, "optsnap_gaps('us-options', '60s', '2025-06-01', '2025-07-01', '%s')",
             names);
    gaps_text(call, got, sizeof got);
    CHECK_STR(got, "U07 2025-06-10 15:00 2025-06-10 15:10 10;U33 2025-06-20 19:59 2025-06-20 20:00 1;"
                   "U50 2025-06-02 13:30 2025-06-02 20:00 390");

    /* The whole path through gaps_query, timed from the client. */
    struct universe_entry u[BIG_UNDERLYINGS];
    for (int i = 0; i < BIG_UNDERLYINGS; i++)
        snprintf(u[i].underlying, sizeof u[i].underlying, "U%02d", i + 1);
    struct gap_request req = {.calendar = "us-options", .cadence_us = 60 * USEC_PER_SEC,
                              .underlyings = u, .underlying_count = BIG_UNDERLYINGS,
                              .statement_timeout_us = 30 * USEC_PER_SEC};
    CHECK_INT(timestamp_parse("2025-06-01", &req.from_us), 0);
    CHECK_INT(timestamp_parse("2025-07-01", &req.to_us), 0);
    struct gap_list gaps;
    char err[256];
    double q0 = now_ms();
    CHECK_INT(gaps_query(db, &req, &gaps, err, sizeof err), 0);
    double q1 = now_ms();
    CHECK_INT(gaps.count, 3);
    CHECK_INT(gaps.total_windows, 401);
    gap_list_free(&gaps);
    printf("  gaps_query round trip, 1 month x %d underlyings: %.1f ms\n", BIG_UNDERLYINGS, q1 - q0);
    /* ~0.5 GB the shared test cluster need not keep. */
    CHECK_INT(pgtest_exec(db, "TRUNCATE ingest_coverage"), 0);
}

/* --- leases --------------------------------------------------------------------- */

static int lease(const char *sql)
{
    char v[16];
    if (pgtest_text(db, sql, v, sizeof v) != 0)
        return -1;
    return strcmp(v, "t") == 0;
}

static void test_lease_basics(void)
{
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L1', 'a', '1 minute')"), 1);
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L1', 'b', '1 minute')"), 0);
    /* The holder may take it again (a renewal). */
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L1', 'a', '1 minute')"), 1);
    CHECK_INT(lease("SELECT optsnap_lease_renew('L1', 'b', '1 minute')"), 0);
    CHECK_INT(lease("SELECT optsnap_lease_renew('L1', 'a', '2 minutes')"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT (expires_at > now() + interval '90 seconds')::int"
                                " FROM ingest_leases WHERE underlying = 'L1'"),
              1);
    CHECK_INT(lease("SELECT optsnap_lease_release('L1', 'b')"), 0);
    char holder[16];
    CHECK_INT(pgtest_text(db, "SELECT holder FROM ingest_leases WHERE underlying = 'L1'", holder, sizeof holder), 0);
    CHECK_STR(holder, "a");
    CHECK_INT(lease("SELECT optsnap_lease_release('L1', 'a')"), 1);
    /* the row stays (its epoch never goes back), held by nobody */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_leases WHERE underlying = 'L1' AND holder = ''"), 1);
    CHECK_INT(lease("SELECT optsnap_lease_release('L1', 'a')"), 0);
    CHECK_INT(lease("SELECT optsnap_lease_renew('L1', 'a', '1 minute')"), 0);

    /* Expiry: a dead holder's lease passes to the next one, and the old
     * holder can neither renew nor release it. */
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L2', 'a', '200 milliseconds')"), 1);
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L2', 'b', '1 minute')"), 0);
    CHECK_INT(pgtest_exec(db, "SELECT pg_sleep(0.3)"), 0);
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L2', 'b', '1 minute')"), 1);
    /* a change of holder is a new epoch (the fencing token), logged */
    CHECK_INT(pgtest_scalar(db, "SELECT epoch FROM ingest_leases WHERE kind = 'history' AND underlying = 'L2'"), 2);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_lease_log WHERE underlying = 'L2'"), 2);
    CHECK_INT(lease("SELECT optsnap_lease_renew('L2', 'a', '1 minute')"), 0);
    CHECK_INT(lease("SELECT optsnap_lease_release('L2', 'a')"), 0);
    CHECK_INT(lease("SELECT optsnap_lease_release('L2', 'b')"), 1);
    /* Leases are per underlying. */
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L3', 'a', '1 minute')"), 1);
    CHECK_INT(lease("SELECT optsnap_lease_acquire('L4', 'b', '1 minute')"), 1);
    CHECK_INT(pgtest_exec_fails(db, "SELECT optsnap_lease_acquire('L5', 'a', '0')", "22023"), 0);
    CHECK_INT(pgtest_exec_fails(db, "SELECT optsnap_lease_acquire('L5', NULL, '1 minute')", "22023"), 0);
}

/* Waits for the result of a query sent with PQsendQuery; returns 1 for 't',
 * 0 for 'f', -1 on error. */
static int lease_result(PGconn *c)
{
    int v = -1;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            v = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
    }
    return v;
}

/* The loser of a race waits on the winner's row and then sees it taken; if
 * the winner rolls back instead, the waiter gets the lease. */
static void test_lease_contention_is_serialised(void)
{
    PGconn *c1 = pgtest_connect(conninfo);
    PGconn *c2 = pgtest_connect(conninfo);
    CHECK(c1 != NULL && c2 != NULL);
    if (c1 == NULL || c2 == NULL) {
        PQfinish(c1);
        PQfinish(c2);
        return;
    }
    const char *outcome[2] = {"COMMIT", "ROLLBACK"};
    const char *name[2] = {"R1", "R2"};
    for (int k = 0; k < 2; k++) {
        char sql[256];
        CHECK_INT(pgtest_exec(c1, "BEGIN"), 0);
        snprintf(sql, sizeof sql, "SELECT optsnap_lease_acquire('%s', 'one', '1 minute')", name[k]);
        CHECK_INT(pgtest_scalar(c1, "SELECT 1"), 1);
        char v[8];
        CHECK_INT(pgtest_text(c1, sql, v, sizeof v), 0);
        CHECK_STR(v, "t");
        snprintf(sql, sizeof sql, "SELECT optsnap_lease_acquire('%s', 'two', '1 minute')", name[k]);
        CHECK_INT(PQsendQuery(c2, sql), 1);
        usleep(300 * 1000);
        CHECK_INT(PQconsumeInput(c2), 1);
        CHECK_INT(PQisBusy(c2), 1); /* blocked on c1's uncommitted row */
        CHECK_INT(pgtest_exec(c1, outcome[k]), 0);
        CHECK_INT(lease_result(c2), k == 0 ? 0 : 1);
        snprintf(sql, sizeof sql, "SELECT holder FROM ingest_leases WHERE underlying = '%s'", name[k]);
        CHECK_INT(pgtest_text(db, sql, v, sizeof v), 0);
        CHECK_STR(v, k == 0 ? "one" : "two");
    }
    PQfinish(c1);
    PQfinish(c2);
}

#define RACERS 6
#define RACE_ROUNDS 5

struct racer {
    int id;
    int round;
    pthread_barrier_t *start;
    PGconn *conn;
    int won; /* 1, 0, or -1 on error */
};

static void *race_worker(void *arg)
{
    struct racer *r = arg;
    char underlying[16], holder[32];
    snprintf(underlying, sizeof underlying, "RACE%d", r->round);
    snprintf(holder, sizeof holder, "racer-%d", r->id);
    pthread_barrier_wait(r->start);
    const char *p[2] = {underlying, holder};
    PGresult *res = PQexecParams(r->conn, "SELECT optsnap_lease_acquire($1, $2, interval '1 minute')", 2, NULL, p,
                                 NULL, NULL, 0);
    r->won = PQresultStatus(res) == PGRES_TUPLES_OK ? strcmp(PQgetvalue(res, 0, 0), "t") == 0 : -1;
    PQclear(res);
    return NULL;
}

static void test_lease_race_has_one_winner(void)
{
    struct racer r[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i].conn = pgtest_connect(conninfo);
        CHECK(r[i].conn != NULL);
        if (r[i].conn == NULL) {
            for (int k = 0; k < i; k++)
                PQfinish(r[k].conn);
            return;
        }
    }
    for (int round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++) {
            r[i].id = i;
            r[i].round = round;
            r[i].start = &start;
            r[i].won = -1;
            CHECK_INT(pthread_create(&t[i], NULL, race_worker, &r[i]), 0);
        }
        int winners = 0, errors = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(t[i], NULL);
            winners += r[i].won == 1;
            errors += r[i].won < 0;
        }
        pthread_barrier_destroy(&start);
        CHECK_INT(winners, 1);
        CHECK_INT(errors, 0);
    }
    for (int i = 0; i < RACERS; i++)
        PQfinish(r[i].conn);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_leases WHERE underlying LIKE 'RACE%'"),
              RACE_ROUNDS);
}

int main(void)
{
    int rc = pgtest_open_migrated("optsnap_itest_gaps", conninfo, sizeof conninfo, &db);
    if (rc != 0)
        return rc;
    RUN(test_expected_windows_us_options);
    RUN(test_gaps_two_holes);
    RUN(test_gaps_merge_adjacent);
    RUN(test_gaps_skip_holiday_and_weekend);
    RUN(test_gaps_future_and_grid);
    RUN(test_gaps_query_c_api);
    RUN(test_command);
    RUN(test_lease_basics);
    RUN(test_lease_contention_is_serialised);
    RUN(test_lease_race_has_one_winner);
    RUN(test_plan_on_a_year_of_coverage);
    PQfinish(db);
    TEST_EXIT();
}
