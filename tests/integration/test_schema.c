/* test_schema.c - the migrated schema against a real PostgreSQL: column
 * order versus row.h, the default partition and optsnap_ensure_partitions
 * (also concurrently, with writers), the trading calendar, constraints, and
 * an index-driven gap query. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/db/migrate.h"
#include "optsnap/api/row.h"
#include "optsnap/db/writer.h"
#include "pgtest.h"
#include "test.h"

static char conninfo[1024];
static PGconn *db;

static const char *type_name(enum snap_col_type t)
{
    switch (t) {
    case SNAP_F64: return "double precision";
    case SNAP_I64: return "bigint";
    case SNAP_TS: return "timestamp with time zone";
    case SNAP_TIMEFRAME: return "text";
    case SNAP_CONDITIONS: return "jsonb";
    }
    return "?";
}

/* 001_schema.sql: ticker, last_updated, SNAP_DAY_OPEN..SNAP_FMV, underlying,
 * source, ingested_at; 006_fields.sql appends SNAP_QUOTE_TIMEFRAME.. and
 * last_updated_fallback. */
static void test_snapshot_columns_follow_row_h(void)
{
    PGresult *res = PQexec(db, "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                               " WHERE table_schema = 'public' AND table_name = 'option_snapshots'"
                               " ORDER BY ordinal_position");
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    CHECK_INT(PQntuples(res), SNAP_NCOLS + 6);
    if (PQntuples(res) == SNAP_NCOLS + 6) {
        CHECK_STR(PQgetvalue(res, 0, 0), "ticker");
        CHECK_STR(PQgetvalue(res, 1, 0), "last_updated");
        CHECK_STR(PQgetvalue(res, 1, 2), "NO");
        for (int c = 0; c < SNAP_NCOLS; c++) {
            int at = c < SNAP_NCOLS_001 ? c + 2 : c + 5;
            CHECK_STR(PQgetvalue(res, at, 0), snap_cols[c].name);
            CHECK_STR(PQgetvalue(res, at, 1), type_name(snap_cols[c].type));
            CHECK_STR(PQgetvalue(res, at, 2), "YES");
        }
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS_001 + 2, 0), "underlying");
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS_001 + 3, 0), "source");
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS_001 + 4, 0), "ingested_at");
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS_001 + 4, 2), "NO");
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS + 5, 0), "last_updated_fallback");
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS + 5, 1), "boolean");
        CHECK_STR(PQgetvalue(res, SNAP_NCOLS + 5, 2), "NO");
    }
    PQclear(res);
    /* the writer's INSERT names its columns in the same order */
    char list[4096] = "ticker, last_updated, ";
    for (int c = 0; c < SNAP_NCOLS; c++) {
        strcat(list, snap_cols[c].name);
        strcat(list, ", ");
    }
    strcat(list, "last_updated_fallback, underlying, source)");
    CHECK(strstr(writer_sql_snapshots, list) != NULL);
}

static void test_reference_and_reject_columns(void)
{
    char buf[256];
    CHECK(pgtest_text(db, "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position)"
                          " FROM information_schema.columns WHERE table_name = 'options'"
                          " AND column_name IN ('primary_exchange', 'cfi', 'additional_underlyings')",
                      buf, sizeof buf) == 0);
    CHECK_STR(buf, "primary_exchange:text,cfi:text,additional_underlyings:jsonb");
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO ingest_rejects (reason, raw, kind) VALUES ('x', '{}', 'other')",
                                "23514"),
              0);
    CHECK_INT(pgtest_exec(db, "INSERT INTO ingest_rejects (reason, raw) VALUES ('kind defaults', '{}')"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE reason = 'kind defaults'"
                                " AND kind = 'reject' AND replayed_at IS NULL"),
              1);
}

static void test_constraints(void)
{
    CHECK_INT(pgtest_exec(db, "INSERT INTO options VALUES ('O:TST250117C00100000', 'TST', 'call', 'american',"
                              " '2025-01-17', 100, 100, now(), now()) ON CONFLICT DO NOTHING"),
              0);
    /* The FK rejects a snapshot of a contract that `options` lacks. */
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                                    " VALUES ('O:NOPE250117C00100000', now(), 'NOPE', 'live')",
                                "23503"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                                    " VALUES ('O:TST250117C00100000', now(), 'TST', 'other')",
                                "23514"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO options VALUES ('O:X', 'X', 'straddle', NULL, '2025-01-17',"
                                    " 1, NULL, now(), now())",
                                "23514"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO ingest_coverage (underlying, window_start, window_end, source)"
                                    " VALUES ('TST', '2025-01-02 15:00Z', '2025-01-02 15:00Z', 'live')",
                                "23514"),
              0);
    CHECK_INT(pgtest_exec(db, "INSERT INTO ingest_rejects (reason, raw) VALUES ('test', '{}')"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE source = 'live'"), 1);
}

static void test_row_without_partition_is_moved(void)
{
    CHECK_INT(pgtest_exec(db, "INSERT INTO options VALUES ('O:MOV310321P00050000', 'MOV', 'put', NULL,"
                              " '2031-03-21', 50, NULL, now(), now())"),
              0);
    CHECK_INT(pgtest_scalar(db, "SELECT (to_regclass('option_snapshots_p20310304') IS NULL)::int"), 1);
    CHECK_INT(pgtest_exec(db, "INSERT INTO option_snapshots (ticker, last_updated, bid, underlying, source)"
                              " VALUES ('O:MOV310321P00050000', '2031-03-04 14:30:00.123456Z', 1.25, 'MOV', 'live'),"
                              "        ('O:MOV310321P00050000', '2031-03-04 23:59:59.999999Z', 1.5, 'MOV', 'live'),"
                              "        ('O:MOV310321P00050000', '2031-03-06 00:00:00Z', 1.75, 'MOV', 'live')"),
              0);
    char where[128];
    CHECK_INT(pgtest_text(db, "SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM option_snapshots"
                              " WHERE ticker = 'O:MOV310321P00050000'",
                          where, sizeof where),
              0);
    CHECK_STR(where, "option_snapshots_default");

    /* Two days: the 4th must move its two rows, the 5th is created empty.
     * The session's time zone must not shift the UTC day bounds. */
    CHECK_INT(pgtest_exec(db, "SET TimeZone = 'America/Chicago'"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_partitions('2031-03-04', '2031-03-05')"), 2);
    CHECK_INT(pgtest_exec(db, "SET TimeZone = 'UTC'"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots"
                                " WHERE tableoid = 'option_snapshots_p20310304'::regclass"),
              2);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots_default"
                                " WHERE last_updated < '2031-03-05'"),
              0);
    /* The 6th has no partition yet: its row stays in the default. */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots_default"), 1);
    /* Values survived the move; the bound is exactly the UTC day. */
    CHECK_INT(pgtest_scalar(db, "SELECT (sum(bid) * 100)::bigint FROM option_snapshots_p20310304"), 275);
    char bound[256];
    CHECK_INT(pgtest_text(db, "SELECT pg_get_expr(relpartbound, oid) FROM pg_class"
                              " WHERE relname = 'option_snapshots_p20310304'",
                          bound, sizeof bound),
              0);
    CHECK(strstr(bound, "2031-03-04 00:00:00+00") != NULL);
    CHECK(strstr(bound, "2031-03-05 00:00:00+00") != NULL);
    /* The moved-into partition has the parent's key and FK like any other. */
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                                    " VALUES ('O:MOV310321P00050000', '2031-03-04 14:30:00.123456Z', 'MOV', 'live')",
                                "23505"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                                    " VALUES ('O:NOPE', '2031-03-04 15:00Z', 'NOPE', 'live')",
                                "23503"),
              0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM pg_constraint"
                                " WHERE conname = 'option_snapshots_p20310304_range'"),
              0);
    /* ON CONFLICT works through the parent for a moved-into partition. */
    CHECK_INT(pgtest_exec(db, "INSERT INTO option_snapshots (ticker, last_updated, bid, underlying, source)"
                              " VALUES ('O:MOV310321P00050000', '2031-03-04 14:30:00.123456Z', 9, 'MOV', 'live')"
                              " ON CONFLICT (ticker, last_updated) DO UPDATE SET bid = excluded.bid"),
              0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE bid = 9"), 1);
    /* Idempotent; new rows of the day go straight to its partition. */
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_partitions('2031-03-01', '2031-03-05')"), 3);
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_partitions('2031-03-01', '2031-03-05')"), 0);
    CHECK_INT(pgtest_exec(db, "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                              " VALUES ('O:MOV310321P00050000', '2031-03-05 10:00Z', 'MOV', 'backfill')"),
              0);
    CHECK_INT(pgtest_text(db, "SELECT tableoid::regclass::text FROM option_snapshots"
                              " WHERE last_updated = '2031-03-05 10:00Z'",
                          where, sizeof where),
              0);
    CHECK_STR(where, "option_snapshots_p20310305");
    /* Bad ranges are refused. */
    CHECK_INT(pgtest_exec_fails(db, "SELECT optsnap_ensure_partitions('2031-03-05', '2031-03-04')", "22023"), 0);
    CHECK_INT(pgtest_exec_fails(db, "SELECT optsnap_ensure_partitions('2031-01-01', '2033-01-01')", "22023"), 0);
}

/* Concurrent callers of ensure_partitions, and writers into the same days
 * (some rows hit the default partition first): nobody fails or deadlocks,
 * every row ends in its day partition. */
#define CONC_DAYS 12
#define CONC_ROWS_PER_WRITER 120

struct worker {
    pthread_t thread;
    int id;
    int failures;
};

static void *ensure_worker(void *arg)
{
    struct worker *w = arg;
    PGconn *c = pgtest_connect(conninfo);
    if (c == NULL) {
        w->failures++;
        return NULL;
    }
    /* Staggered, overlapping ranges so callers race on the same days. */
    for (int round = 0; round < 3; round++) {
        char sql[160];
        int from = (w->id + round) % 4;
        snprintf(sql, sizeof sql,
                 "SELECT optsnap_ensure_partitions(date '2032-01-01' + %d, date '2032-01-01' + %d)", from,
                 from + CONC_DAYS - 4);
        if (pgtest_scalar(c, sql) == LLONG_MIN)
            w->failures++;
    }
    PQfinish(c);
    return NULL;
}

static void *write_worker(void *arg)
{
    struct worker *w = arg;
    PGconn *c = pgtest_connect(conninfo);
    if (c == NULL) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < CONC_ROWS_PER_WRITER; i++) {
        char sql[320];
        snprintf(sql, sizeof sql,
                 "INSERT INTO option_snapshots (ticker, last_updated, underlying, source)"
                 " VALUES ('O:CON320331C00010000', timestamptz '2032-01-01 00:00Z' + interval '%d day'"
                 " + interval '%d second', 'CON', 'live')",
                 i % CONC_DAYS, w->id * 10000 + i);
        if (pgtest_exec(c, sql) < 0)
            w->failures++;
    }
    PQfinish(c);
    return NULL;
}

static void test_ensure_partitions_concurrently(void)
{
    CHECK_INT(pgtest_exec(db, "INSERT INTO options VALUES ('O:CON320331C00010000', 'CON', 'call', NULL,"
                              " '2032-03-31', 10, NULL, now(), now())"),
              0);
    struct worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){.id = i};
        CHECK_INT(pthread_create(&w[i].thread, NULL, i < 4 ? ensure_worker : write_worker, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(w[i].thread, NULL);
        CHECK_INT(w[i].failures, 0);
    }
    /* Callers covered 2032-01-01 .. 2032-01-12 between them. */
    CHECK_INT(pgtest_scalar(db, "SELECT optsnap_ensure_partitions('2032-01-01', '2032-01-12')"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM pg_class WHERE relkind = 'r'"
                                " AND relname LIKE 'option_snapshots_p203201%'"),
              CONC_DAYS);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE underlying = 'CON'"),
              2 * CONC_ROWS_PER_WRITER);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots_default WHERE underlying = 'CON'"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE underlying = 'CON'"
                                " AND tableoid::regclass::text <> 'option_snapshots_p'"
                                "     || to_char(last_updated AT TIME ZONE 'UTC', 'YYYYMMDD')"),
              0);
}

static void test_calendar_sessions_per_year(void)
{
    /* NYSE: 2024 has 252 sessions, 2025 has 250 (incl. the 2025-01-09 day of
     * mourning), 2026 and 2027 have 251. */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE calendar = 'us-options'"
                                " AND day BETWEEN '2024-01-01' AND '2024-12-31'"),
              252);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE calendar = 'us-options'"
                                " AND day BETWEEN '2025-01-01' AND '2025-12-31'"),
              250);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE calendar = 'us-options'"
                                " AND day BETWEEN '2026-01-01' AND '2026-12-31'"),
              251);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE calendar = 'us-options'"
                                " AND day BETWEEN '2027-01-01' AND '2027-12-31'"),
              251);
    /* 2024: Jul 3, Nov 29, Dec 24; 2025: Jul 3, Nov 28, Dec 24; 2026: Nov 27,
     * Dec 24 (Jul 3 is the observed holiday); 2027: Nov 26 only. */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE early_close"), 9);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE extract(isodow FROM day) > 5"), 0);
}

static void test_calendar_days(void)
{
    /* Holidays, including observed ones, have no session. */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE day IN"
                                " ('2025-01-09', '2025-04-18', '2026-07-03', '2027-06-18', '2027-07-05',"
                                "  '2027-12-24', '2024-11-28')"),
              0);
    /* Dec 31 2027 trades: New Year 2028 (a Saturday) is not observed on it. */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM trading_sessions WHERE day = '2027-12-31'"), 1);
    char t[64];
    CHECK_INT(pgtest_text(db, "SELECT to_char(close_at AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || early_close"
                              " FROM trading_sessions WHERE day = '2025-11-28'",
                          t, sizeof t),
              0);
    CHECK_STR(t, "18:00 true");
    /* July 2 2026 (before the observed holiday) is a full session. */
    CHECK_INT(pgtest_text(db, "SELECT to_char(close_at AT TIME ZONE 'UTC', 'HH24:MI')"
                              " FROM trading_sessions WHERE day = '2026-07-02'",
                          t, sizeof t),
              0);
    CHECK_STR(t, "20:00");
    /* DST: 2025 began March 9 and ended November 2. */
    const char *dst_sql = "SELECT string_agg(to_char(open_at AT TIME ZONE 'UTC', 'HH24:MI'), ' ' ORDER BY day)"
                          " FROM trading_sessions"
                          " WHERE day IN ('2025-03-07', '2025-03-10', '2025-10-31', '2025-11-03')";
    CHECK_INT(pgtest_text(db, dst_sql, t, sizeof t), 0);
    CHECK_STR(t, "14:30 13:30 13:30 14:30");
}

static void test_calendar_function(void)
{
    /* Thanksgiving week 2025: Thursday closed, Friday early. */
    char t[256];
    CHECK_INT(pgtest_text(db, "SELECT string_agg(day || ' ' || to_char(close_at AT TIME ZONE 'UTC', 'HH24:MI'),"
                              " ', ' ORDER BY day)"
                              " FROM optsnap_sessions('us-options', '2025-11-24 00:00Z', '2025-12-01 00:00Z')",
                          t, sizeof t),
              0);
    CHECK_STR(t, "2025-11-24 21:00, 2025-11-25 21:00, 2025-11-26 21:00, 2025-11-28 18:00");
    /* Overlap, not containment: a range inside one session returns it. */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_sessions('us-options',"
                                " '2025-11-24 15:00Z', '2025-11-24 15:01Z')"),
              1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_sessions('us-options',"
                                " '2025-11-24 21:00Z', '2025-11-25 14:30Z')"),
              0);
    /* 'always': whole UTC days touching the range. */
    CHECK_INT(pgtest_text(db, "SELECT string_agg(day || ' ' || to_char(open_at AT TIME ZONE 'UTC', 'HH24:MI')"
                              " || ' ' || (close_at - open_at), ', ' ORDER BY day)"
                              " FROM optsnap_sessions('always', '2025-01-01 10:00Z', '2025-01-03 00:00Z')",
                          t, sizeof t),
              0);
    CHECK_STR(t, "2025-01-01 00:00 1 day, 2025-01-02 00:00 1 day");
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_sessions('always', '2025-01-01', '2025-01-01')"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM optsnap_sessions('always', '2025-01-04', '2025-01-06')"), 2);
    /* Unknown calendars and days a stored calendar does not define raise. */
    CHECK_INT(pgtest_exec_fails(db, "SELECT * FROM optsnap_sessions('nyse-ish', now(), now() + interval '1 day')",
                                "22023"),
              0);
    CHECK_INT(pgtest_exec_fails(db, "SELECT * FROM optsnap_sessions('us-options', '2027-12-30', '2028-01-05')",
                                "22023"),
              0);
}

/* The gap query's anti-join against ingest_coverage must be driven by the
 * primary key on a table of realistic size (LESSONS.md 3), and find exactly
 * the windows that are missing. */
static void test_gap_query_uses_coverage_index(void)
{
    /* 20 underlyings x 19 sessions x 390 one-minute windows = 148k rows. */
    CHECK_INT(pgtest_exec(db, "INSERT INTO ingest_coverage (underlying, window_start, window_end, source, rows)"
                              " SELECT 'U' || lpad(u::text, 3, '0'), w, w + interval '1 minute', 'live', 10"
                              "   FROM generate_series(1, 20) AS u,"
                              "        optsnap_sessions('us-options', '2025-02-10', '2025-03-10') AS s,"
                              "        generate_series(s.open_at, s.close_at - interval '1 minute',"
                              "                        interval '1 minute') AS w;"
                              " DELETE FROM ingest_coverage WHERE underlying = 'U007' AND window_start IN"
                              " ('2025-03-04 14:30Z', '2025-03-04 17:00Z', '2025-03-07 20:59Z');"
                              " ANALYZE ingest_coverage"),
              0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage"), 20 * 19 * 390 - 3);
    const char *gap_sql =
        "WITH expected AS ("
        "  SELECT u.underlying, w AS window_start"
        "    FROM unnest('{U007,U008}'::text[]) AS u(underlying),"
        "         optsnap_sessions('us-options', '2025-03-03 00:00Z', '2025-03-08 00:00Z') AS s,"
        "         generate_series(s.open_at, s.close_at - interval '1 minute', interval '1 minute') AS w)"
        " SELECT e.underlying, e.window_start FROM expected e"
        "  WHERE NOT EXISTS (SELECT 1 FROM ingest_coverage c"
        "                     WHERE c.underlying = e.underlying AND c.window_start = e.window_start"
        "                       AND c.underlying = ANY('{U007,U008}'::text[])"
        "                       AND c.window_start >= '2025-03-03 00:00Z'"
        "                       AND c.window_start < '2025-03-08 00:00Z')";
    char plan[8192];
    char explain[2048];
    snprintf(explain, sizeof explain, "EXPLAIN %s", gap_sql);
    CHECK_INT(pgtest_lines(db, explain, plan, sizeof plan), 0);
    CHECK(strstr(plan, "ingest_coverage_pkey") != NULL);
    CHECK(strstr(plan, "Seq Scan on ingest_coverage") == NULL);
    if (strstr(plan, "ingest_coverage_pkey") == NULL)
        fprintf(stderr, "%s", plan);
    char count_sql[2048];
    snprintf(count_sql, sizeof count_sql, "SELECT count(*) FROM (%s) g", gap_sql);
    CHECK_INT(pgtest_scalar(db, count_sql), 3);
}

int main(void)
{
    int rc = pgtest_open_migrated("optsnap_it_schema", conninfo, sizeof conninfo, &db);
    if (rc != 0)
        return rc;
    RUN(test_snapshot_columns_follow_row_h);
    RUN(test_constraints);
    RUN(test_reference_and_reject_columns);
    RUN(test_row_without_partition_is_moved);
    RUN(test_ensure_partitions_concurrently);
    RUN(test_calendar_sessions_per_year);
    RUN(test_calendar_days);
    RUN(test_calendar_function);
    RUN(test_gap_query_uses_coverage_index);
    PQfinish(db);
    TEST_EXIT();
}
