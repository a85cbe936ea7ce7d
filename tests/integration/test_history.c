/* test_history.c - sql/009_history.sql against a real PostgreSQL:
 * optsnap_chain_at on a realistic table (its answer equals a plain
 * DISTINCT ON over the same rows; its plan probes each contract's primary
 * key backward and scans no day partition), optsnap_series, one day's
 * partition with a short lock_timeout (busy -> -1, nothing changed), and
 * retention with a fake clock (exactly the expected partitions dropped,
 * DEFAULT untouched, gaps silent about the dropped days). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/db/retention.h"
#include "optsnap/history/backfill.h"
#include "optsnap/util/timeutil.h"
#include "pgtest.h"
#include "test.h"

static char conninfo[1024];
static PGconn *db;

#define CONTRACTS 400 /* per underlying, two underlyings */

/* Three days of snapshots, every contract every 5 minutes of the session
 * (14:30-21:00 UTC), some contracts quiet (every 65 minutes): ~190k rows. */
static void test_realistic_table(void)
{
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_partitions('2025-06-02', '2025-06-04')") >= 0, 1);
    char sql[2048];
    snprintf(sql, sizeof sql,
             "INSERT INTO options (ticker, underlying, contract_type, expiration_date, strike_price, first_seen, last_seen)"
             " SELECT format('O:%%s250620%%s%%08s', u, CASE WHEN i %% 2 = 0 THEN 'C' ELSE 'P' END, i * 1000),"
             "        u, CASE WHEN i %% 2 = 0 THEN 'call' ELSE 'put' END,"
             "        CASE WHEN i %% 10 = 0 THEN date '2025-06-02' ELSE date '2025-06-20' END,"
             "        i, '2025-06-01', '2025-06-04'"
             "   FROM unnest(ARRAY['SPY','QQQ']) u, generate_series(1, %d) i",
             CONTRACTS);
    CHECK_INT(pgtest_exec(db, sql), 0);
    CHECK_INT(pgtest_exec(db,
                          "INSERT INTO option_snapshots (ticker, last_updated, day_volume, bid, ask, underlying, source)"
                          " SELECT o.ticker, t + (abs(hashtext(o.ticker)) % 60) * interval '1 second',"
                          "        (extract(epoch FROM t)::bigint / 300) % 1000, o.strike_price, o.strike_price + 1,"
                          "        o.underlying, 'live'"
                          "   FROM options o, generate_series(date '2025-06-02', date '2025-06-04', interval '1 day') d,"
                          "        generate_series(d + interval '14 hours 30 minutes', d + interval '20 hours 55 minutes',"
                          "                        interval '5 minutes') t"
                          "  WHERE o.strike_price::int % 7 <> 0 OR extract(minute FROM t)::int % 65 = 0"),
              0);
    CHECK_INT(pgtest_exec(db, "ANALYZE options; ANALYZE option_snapshots"), 0);
    long long rows = pgtest_scalar(db, "SELECT count(*) FROM option_snapshots");
    printf("  realistic table: %lld snapshot rows\n", rows);
    CHECK(rows > 100000);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots_default"), 0);
}

/* EXPLAIN (ANALYZE) of sql with its parameters, as the caller sends them, into
 * plan. Returns 0, or -1 (plan holds the error). */
static int explain(const char *sql, int nparams, const char *const *params, char *plan, size_t size)
{
    char q[8192];
    snprintf(q, sizeof q, "EXPLAIN (ANALYZE, COSTS OFF, FORMAT TEXT) %s", sql);
    PGresult *res = PQexecParams(db, q, nparams, NULL, params, NULL, NULL, 0);
    size_t used = 0;
    plan[0] = '\0';
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(plan, size, "%s", PQresultErrorMessage(res));
    for (int i = 0; ok && i < PQntuples(res); i++) {
        int k = snprintf(plan + used, size - used, "%s\n", PQgetvalue(res, i, 0));
        if (k > 0 && (size_t)k < size - used)
            used += (size_t)k;
    }
    PQclear(res);
    return ok ? 0 : -1;
}

static void test_chain_at_answer_and_plan(void)
{
    /* the reference: the same question as a plain DISTINCT ON */
    const char *ref = "SELECT md5(string_agg(ticker || last_updated::text || day_volume, ',' ORDER BY ticker)),"
                      "       count(*)"
                      "  FROM (SELECT DISTINCT ON (s.ticker) s.* FROM option_snapshots s JOIN options o USING (ticker)"
                      "         WHERE o.underlying = 'SPY' AND o.expiration_date >= date '2025-06-03'"
                      "           AND s.last_updated <= '2025-06-03T15:30:00Z'"
                      "           AND s.last_updated >= '2025-06-03T04:00:00Z'"
                      "         ORDER BY s.ticker, s.last_updated DESC) x";
    const char *got = "SELECT md5(string_agg(ticker || last_updated::text || day_volume, ',' ORDER BY ticker)),"
                      "       count(*) FROM optsnap_chain_at('SPY', '2025-06-03T15:30:00Z')";
    char a[128], b[128];
    CHECK_INT(pgtest_text(db, ref, a, sizeof a), 0);
    CHECK_INT(pgtest_text(db, got, b, sizeof b), 0);
    CHECK_STR(b, a);
    long long n = pgtest_scalar(db, "SELECT count(*) FROM optsnap_chain_at('SPY', '2025-06-03T15:30:00Z')");
    /* contracts expiring 2025-06-02 (every tenth) are not listed on 2025-06-03 */
    CHECK_INT(n, CONTRACTS - CONTRACTS / 10);
    /* before the session: nothing printed yet that day */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_chain_at('SPY', '2025-06-03T13:00:00Z')"), 0);
    /* an explicit older bound reaches yesterday's last state */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_chain_at('SPY', '2025-06-03T13:00:00Z',"
                                " '2025-06-02T00:00:00Z')"),
              CONTRACTS - CONTRACTS / 10);

    /* the plan the command gets: parameters, as history/chain.c sends them */
    const char *params[3] = {"SPY", "2025-06-03T15:30:00Z", NULL};
    static char plan[65536];
    CHECK_INT(explain("SELECT * FROM optsnap_chain_at($1, $2::timestamptz, $3::timestamptz)", 3, params, plan,
                      sizeof plan),
              0);
    int backward = strstr(plan, "Index Scan Backward using option_snapshots_p20250603_pkey") != NULL ||
                   strstr(plan, "Index Only Scan Backward using option_snapshots_p20250603_pkey") != NULL;
    int seq_day = strstr(plan, "Seq Scan on option_snapshots_p") != NULL;
    int other_days = strstr(plan, "option_snapshots_p20250604") != NULL || strstr(plan, "option_snapshots_p20250602") != NULL;
    int limit = strstr(plan, "Limit") != NULL;
    CHECK(backward);
    CHECK(!seq_day);
    CHECK(!other_days); /* pruned to the one day in [since, at] */
    CHECK(limit);       /* one probe per contract, not a range of it */
    CHECK(strstr(plan, "Function Scan on optsnap_chain_at") == NULL); /* inlined */
    printf("  chain_at plan: backward_pkey=%d seq_scan_of_a_day=%d other_days=%d limit=%d\n", backward, seq_day,
           other_days, limit);
    if (!backward || seq_day || other_days || !limit)
        fprintf(stderr, "%s", plan);
}

static void test_series(void)
{
    const char *t = "SELECT min(ticker) FROM options WHERE underlying = 'QQQ' AND strike_price = 3";
    char ticker[64], sql[512];
    CHECK_INT(pgtest_text(db, t, ticker, sizeof ticker), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM optsnap_series('%s', '2025-06-02T00:00:00Z', '2025-06-03T00:00:00Z')", ticker);
    CHECK_INT(pgtest_scalar(db, sql), 78); /* 14:30 .. 20:55 every 5 minutes */
    snprintf(sql, sizeof sql,
             "SELECT bool_and(a < b)::int FROM (SELECT last_updated a, lead(last_updated) OVER () b"
             " FROM optsnap_series('%s', '2025-06-02', '2025-06-05')) x WHERE b IS NOT NULL",
             ticker);
    CHECK_INT(pgtest_scalar(db, sql), 1); /* oldest first */
}

/* Migration 013 dropped option_snapshots (underlying, last_updated): the day
 * partitions carry their primary key alone, and each statement of optsnap
 * that reads option_snapshots still reaches it by that key, never by a scan
 * of a day partition (optsnap_chain_at: above; repair's plan asks
 * ingest_coverage). */
static void test_snapshot_reads_need_only_the_pkey(void)
{
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
                                " WHERE c.relname LIKE 'option_snapshots%' AND NOT i.indisprimary"),
              0);
    char ticker[64];
    CHECK_INT(pgtest_text(db, "SELECT min(ticker) FROM options WHERE underlying = 'SPY'", ticker, sizeof ticker), 0);
    struct {
        const char *name, *sql;
        int nparams;
        const char *params[3];
    } q[] = {
        {"backfill quiet contracts", BACKFILL_SQL_QUIET_CONTRACTS, 3,
         {"SPY", "2025-06-03T15:00:00Z", "2025-06-03T16:00:00Z"}},
        {"backfill previous closes", BACKFILL_SQL_KNOWN_CLOSES, 2, {"SPY", "2025-06-03T15:00:00Z", NULL}},
        {"optsnap_series", "SELECT * FROM optsnap_series($1, $2::timestamptz, $3::timestamptz)", 3,
         {ticker, "2025-06-02T00:00:00Z", "2025-06-04T00:00:00Z"}},
    };
    static char plan[65536];
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        CHECK_INT(explain(q[i].sql, q[i].nparams, q[i].params, plan, sizeof plan), 0);
        int seq = strstr(plan, "Seq Scan on option_snapshots") != NULL;
        int pkey = strstr(plan, "option_snapshots_p2025060") != NULL && strstr(plan, "_pkey") != NULL;
        CHECK(!seq);
        CHECK(pkey);
        printf("  %s: seq_scan_of_a_day=%d pkey=%d\n", q[i].name, seq, pkey);
        if (seq || !pkey)
            fprintf(stderr, "%s", plan);
    }
}

/* A day whose partition is missing while another session holds the parent:
 * -1 after the short lock_timeout, nothing created; then 1, then 0. */
static void test_day_partition_busy(void)
{
    PGconn *holder = pgtest_connect(conninfo);
    CHECK(holder != NULL);
    if (holder == NULL)
        return;
    CHECK_INT(pgtest_exec(holder, "BEGIN; LOCK TABLE option_snapshots IN ACCESS SHARE MODE"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_day_partition('2025-05-20', interval '100 milliseconds')"), -1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM pg_class WHERE relname = 'option_snapshots_p20250520'"), 0);
    CHECK_INT(pgtest_exec(holder, "COMMIT"), 0);
    PQfinish(holder);
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_day_partition('2025-05-20')"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_day_partition('2025-05-20')"), 0);
    CHECK_INT(pgtest_exec_fails(db, "SELECT optsnap_ensure_day_partition(NULL)", "22023"), 0);
}

static long long partitions_like(const char *prefix)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
             " WHERE i.inhparent = 'option_snapshots'::regclass AND c.relname LIKE '%s%%'",
             prefix);
    return pgtest_scalar(db, sql);
}

/* retention 5d with the clock at 2025-01-10T12:00Z: cutoff 2025-01-05, so
 * the partitions of 01-01 .. 01-04 go and 01-05 .. 01-10 stay. */
static int run_retention(bool dry_run, struct retention_job *j)
{
    struct settings s;
    memset(&s, 0, sizeof s);
    s.retention_us = 5 * USEC_PER_DAY;
    int64_t now;
    if (timestamp_parse("2025-01-10T12:00:00Z", &now) != 0 || retention_job_build(j, &s, now, dry_run) != 0)
        return -1;
    PGresult *res = PQexecParams(db, j->stmt.sql, j->stmt.nparams, NULL, j->stmt.values, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc == 0)
        j->stmt.on_tuples(j, res);
    else
        fprintf(stderr, "  retention failed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

static void test_retention_fake_clock(void)
{
    struct settings off;
    memset(&off, 0, sizeof off);
    struct retention_job j;
    CHECK_INT(retention_job_build(&j, &off, 0, false), 1); /* off by default */
    off.retention_us = USEC_PER_DAY;
    CHECK_INT(retention_job_build(&j, &off, 0, false), -1); /* too short */
    CHECK_INT(retention_cutoff_day(5 * USEC_PER_DAY + 1, 5 * USEC_PER_DAY), 0);
    CHECK_INT(retention_cutoff_day(0, 1), -1);

    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_partitions('2025-01-01', '2025-01-10')") >= 0, 1);
    CHECK_INT(pgtest_exec(db, "INSERT INTO options (ticker, underlying, expiration_date, strike_price, first_seen,"
                              " last_seen) VALUES ('O:RET250131C00001000', 'RET', '2025-01-31', 1, now(), now())"),
              0);
    CHECK_INT(pgtest_exec(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                              " SELECT 'O:RET250131C00001000', d + interval '15 hours', 'RET', 'backfill'"
                              "   FROM generate_series(date '2025-01-01', date '2025-01-10', interval '1 day') d"),
              0);
    /* a row with no partition of its own sits in DEFAULT: retention must leave it */
    CHECK_INT(pgtest_exec(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                              " VALUES ('O:RET250131C00001000', '2024-12-01T15:00:00Z', 'RET', 'backfill')"),
              0);
    /* coverage of every minute of 01-01 .. 01-08 (always calendar); 01-09 and 01-10 missing */
    CHECK_INT(pgtest_exec(db, "INSERT INTO ingest_coverage (underlying, window_start, window_end, source)"
                              " SELECT 'RET', g, g + interval '1 minute', 'backfill'"
                              "   FROM generate_series(timestamptz '2025-01-01', timestamptz '2025-01-09'"
                              "                        - interval '1 minute', interval '1 minute') g"),
              0);
    /* and a hole on 01-02, a day retention will drop */
    CHECK_INT(pgtest_exec(db, "DELETE FROM ingest_coverage WHERE underlying = 'RET'"
                              " AND window_start >= '2025-01-02T10:00:00Z' AND window_start < '2025-01-02T11:00:00Z'"),
              0);
    const char *gaps = "SELECT coalesce(string_agg(to_char(gap_start AT TIME ZONE 'UTC', 'MM-DD HH24:MI') || '+' ||"
                       " windows, ' ' ORDER BY gap_start), '')"
                       " FROM optsnap_gaps('always', '60s', '2025-01-01', '2025-01-11', ARRAY['RET'], '2025-01-11')";
    char before[256], after[256];
    CHECK_INT(pgtest_text(db, gaps, before, sizeof before), 0);
    CHECK_STR(before, "01-02 10:00+60 01-09 00:00+2880");

    CHECK_INT(run_retention(true, &j), 0);
    CHECK_INT(j.days_listed, 4);
    CHECK_INT(j.days_dropped, 0);
    CHECK_STR(j.first_day, "2025-01-01");
    CHECK_STR(j.last_day, "2025-01-04");
    CHECK_INT(partitions_like("option_snapshots_p202501"), 10); /* dry run: nothing dropped */

    CHECK_INT(run_retention(false, &j), 0);
    CHECK_INT(j.days_listed, 4);
    CHECK_INT(j.days_dropped, 4);
    CHECK_INT(partitions_like("option_snapshots_p2025010"), 5);  /* 01-05 .. 01-09 ... */
    CHECK_INT(partitions_like("option_snapshots_p20250110"), 1); /* ... and 01-10 */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM pg_class WHERE relname IN ('option_snapshots_p20250101',"
                                " 'option_snapshots_p20250102', 'option_snapshots_p20250103',"
                                " 'option_snapshots_p20250104')"),
              0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots_default"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE underlying = 'RET'"), 7);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_expired_days"), 4);
    /* the hole of 01-02 is expired, not missing; 01-09 still is */
    CHECK_INT(pgtest_text(db, gaps, after, sizeof after), 0);
    CHECK_STR(after, "01-09 00:00+2880");
    /* again: nothing more to drop; the horizon never moves back */
    CHECK_INT(run_retention(false, &j), 0);
    CHECK_INT(j.days_listed, 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_retention WHERE expired_before = '2025-01-05T00:00:00Z'"),
              1);
    /* never yesterday or today, whatever the caller's clock says */
    CHECK_INT(pgtest_exec_fails(db, "SELECT * FROM optsnap_retention_apply((now() AT TIME ZONE 'UTC')::date)",
                                "22023"),
              0);
}

int main(void)
{
    int rc = pgtest_open_migrated("optsnap_itest_history", conninfo, sizeof conninfo, &db);
    if (rc != 0)
        return rc;
    RUN(test_realistic_table);
    RUN(test_chain_at_answer_and_plan);
    RUN(test_series);
    RUN(test_snapshot_reads_need_only_the_pkey);
    RUN(test_day_partition_busy);
    RUN(test_retention_fake_clock);
    PQfinish(db);
    TEST_EXIT();
}
