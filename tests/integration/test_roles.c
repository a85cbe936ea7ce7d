/* Integration test of sql/roles.sql: the writer can ingest (the real writer's
 * transaction, leases, partitions) but cannot drop, alter or truncate; the
 * reader can only read. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "integration/pgtest.h"
#include "optsnap/db/batch.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/util/timeutil.h"
#include "optsnap/db/writer.h"
#include "test.h"

static char owner[512], writer_ci[600], reader_ci[600];

#define TODAY_UTC "(now() AT TIME ZONE 'UTC')::date"

static void done_cb(struct pg_txn *txn, const struct pg_txn_result *r)
{
    *(struct pg_txn_result *)txn->user = *r;
}

static void test_writer_can_ingest(void)
{
    /* the writer module's own transaction, on the writer role's connection */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct pg_pool *pool;
    struct pg_pool_settings ps = {.conninfo = writer_ci, .size = 1, .statement_timeout_us = 10000000};
    CHECK(pg_pool_create(&pool, &loop, &ps, NULL, NULL) == 0);
    for (int i = 0; i < 200 && !pg_pool_has_idle(pool); i++)
        uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(10);
    CHECK(pg_pool_has_idle(pool));
    struct batch *b = batch_new();
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.contract.ticker, sizeof r.contract.ticker, "O:SPY261218C00500000");
    snprintf(r.contract.underlying, sizeof r.contract.underlying, "SPY");
    r.contract.contract_type = 'C';
    CHECK(date_parse("2026-12-18", &r.contract.expiration_days) == 0);
    r.contract.strike_price = 500;
    CHECK(timestamp_parse("2026-11-02T15:00:00Z", &r.last_updated_us) == 0);
    snapshot_row_set_f64(&r, SNAP_BID, 1.25);
    CHECK(batch_add_row(b, &r) == 0);
    struct row_reject rj;
    memset(&rj, 0, sizeof rj);
    snprintf(rj.reason, sizeof rj.reason, "test");
    rj.raw = strdup("{}");
    rj.raw_len = 2;
    CHECK(batch_add_reject(b, &rj) == 0);
    struct coverage_mark cov = {.window_start_us = r.last_updated_us, .window_end_us = r.last_updated_us + 60000000};
    struct writer_job j;
    struct pg_txn_result res = {.status = PG_TXN_CANCELLED};
    CHECK(writer_job_build(&j, b, "SPY", ROW_SOURCE_LIVE, &cov) == 0);
    j.txn.done = done_cb;
    j.txn.user = &res;
    CHECK(pg_pool_submit(pool, &j.txn) == 0);
    for (int i = 0; i < 2000 && res.status == PG_TXN_CANCELLED; i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(res.status, PG_TXN_OK);
    if (res.status != PG_TXN_OK)
        fprintf(stderr, "  writer txn: %s %s\n", res.sqlstate, res.message);
    /* and again: the unchanged re-poll path (ON CONFLICT ... DO UPDATE needs SELECT) */
    res.status = PG_TXN_CANCELLED;
    writer_job_free(&j);
    CHECK(writer_job_build(&j, b, "SPY", ROW_SOURCE_LIVE, &cov) == 0);
    j.txn.done = done_cb;
    j.txn.user = &res;
    for (int i = 0; i < 2000 && !pg_pool_has_idle(pool); i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(pg_pool_submit(pool, &j.txn) == 0);
    for (int i = 0; i < 2000 && res.status == PG_TXN_CANCELLED; i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(res.status, PG_TXN_OK);
    writer_job_free(&j);
    batch_free(b);
    pg_pool_close(pool, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);

    PGconn *w = pgtest_connect(writer_ci);
    CHECK(w != NULL);
    if (w == NULL)
        return;
    /* what run asks (sql/012_partition_bounds.sql); a far future range is the owner's */
    CHECK(pgtest_scalar(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 1, " TODAY_UTC " + 7)") >= 0);
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions('2031-01-01', '2031-01-03')", "42501") == 0);
    /* backfill's one-day partition and retention (a partition the writer does not own) */
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_day_partition('2031-01-05')", "42501") == 0);
    CHECK_INT(pgtest_scalar(w, "SELECT optsnap_ensure_day_partition('2020-01-05')"), 1);
    CHECK_INT(pgtest_scalar(w, "SELECT count(*) FROM optsnap_retention_apply('2020-01-06', true)"), 1);
    CHECK_INT(pgtest_scalar(w, "SELECT count(*) FROM optsnap_retention_apply('2020-01-06') WHERE dropped"), 1);
    CHECK_INT(pgtest_scalar(w, "SELECT count(*) FROM pg_class WHERE relname = 'option_snapshots_p20200105'"), 0);
    CHECK_INT(pgtest_scalar(w, "SELECT optsnap_lease_acquire('SPY', 'test', interval '1 minute')::int"), 1);
    CHECK_INT(pgtest_scalar(w, "SELECT optsnap_lease_release('SPY', 'test')::int"), 1);
    CHECK_INT(pgtest_scalar(w, "SELECT count(*) FROM optsnap_gaps('always', interval '1 minute', "
                               "'2026-11-02T15:00:00Z', '2026-11-02T15:03:00Z', ARRAY['SPY'])"), 1);
    /* a replay marks the dead letter, and changes nothing else of it */
    CHECK_INT(pgtest_exec(w, "INSERT INTO ingest_rejects (reason, raw) VALUES ('r', '{}')"), 0);
    CHECK_INT(pgtest_exec(w, "UPDATE ingest_rejects SET replayed_at = now(), replay_result = 'written'"), 0);
    CHECK(pgtest_exec_fails(w, "UPDATE ingest_rejects SET raw = 'x'", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "DELETE FROM ingest_rejects", "42501") == 0);
    /* backfill keeps the flat files' ETags: insert, then update on a republished object */
    CHECK_INT(pgtest_exec(w, "INSERT INTO ingest_flatfiles (day, underlying, etag) VALUES ('2026-11-02', 'SPY', '\"a\"') "
                             "ON CONFLICT (day, underlying) DO UPDATE SET etag = EXCLUDED.etag"), 0);
    CHECK_INT(pgtest_exec(w, "INSERT INTO ingest_flatfiles (day, underlying, etag) VALUES ('2026-11-02', 'SPY', '\"b\"') "
                             "ON CONFLICT (day, underlying) DO UPDATE SET etag = EXCLUDED.etag"), 0);
    CHECK_INT(pgtest_scalar(w, "SELECT count(*) FROM ingest_flatfiles WHERE etag = '\"b\"'"), 1);
    CHECK(pgtest_exec_fails(w, "DELETE FROM ingest_flatfiles", "42501") == 0);
    /* and nothing more */
    CHECK(pgtest_exec_fails(w, "DROP TABLE option_snapshots", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "ALTER TABLE options ADD COLUMN x int", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "TRUNCATE ingest_coverage", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "DELETE FROM option_snapshots", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "CREATE TABLE evil (x int)", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "UPDATE schema_migrations SET checksum = 'x'", "42501") == 0);
    PQfinish(w);
}

/* sql/012_partition_bounds.sql: the writer may ask today-7 .. today+14, or one
 * earlier day a call, rate-limited (10 per 10 s); wider is the owner's. A storm
 * of 800 one-day calls creates at most the limit, and a refused call takes no
 * table lock (it does not wait behind an insert's lock). */
static void test_partition_bounds(void)
{
    PGconn *w = pgtest_connect(writer_ci), *o = pgtest_connect(owner);
    CHECK(w != NULL && o != NULL);
    if (w == NULL || o == NULL)
        return;
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 800, " TODAY_UTC ")", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 400, " TODAY_UTC ")", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 8, " TODAY_UTC ")", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC ", " TODAY_UTC " + 15)", "42501") == 0);
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " + 15, " TODAY_UTC " + 15)", "42501") == 0);
    CHECK(pgtest_scalar(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 7, " TODAY_UTC " + 14)") >= 0);
    /* the owner keeps any range up to 400 days */
    CHECK_INT(pgtest_scalar(o, "SELECT optsnap_ensure_partitions(" TODAY_UTC " + 30, " TODAY_UTC " + 60)"), 31);
    /* the storm: 800 calls, one past day each, as backfill makes them */
    uint64_t t0 = uv_hrtime();
    int created = 0, busy = 0, other = 0;
    char sql[200];
    for (int k = 0; k < 800; k++) {
        snprintf(sql, sizeof sql, "SELECT optsnap_ensure_day_partition(" TODAY_UTC " - %d)", 30 + k);
        long long v = pgtest_scalar(w, sql);
        created += v == 1;
        busy += v == -1;
        other += v != 1 && v != -1;
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    /* at most 10 per 10 s, however slow the machine (the window may also
     * hold the writer's 2020-01-05 of the test before) */
    int allowed = 10 * ((int)(secs / 10.0) + 1);
    CHECK(created >= 1 && created <= allowed);
    CHECK_INT(busy, 800 - created);
    CHECK_INT(other, 0);
    CHECK_INT(pgtest_scalar(o, "SELECT count(*) FROM ingest_partition_requests WHERE day BETWEEN " TODAY_UTC " - 829 AND " TODAY_UTC " - 30"), created);
    fprintf(stderr, "  storm: %d of 800 created, %d refused as busy, in %.2f s\n", created, busy, secs);
    /* a refused call takes no table lock: behind an insert's lock it fails
     * with the rate limit at once, not after lock_timeout (both are 55P03:
     * the message tells). The limit is
     * filled again first (the storm's window may have passed). */
    for (int k = 0; k < 100; k++) {
        snprintf(sql, sizeof sql, "SELECT optsnap_ensure_day_partition(" TODAY_UTC " - %d)", 1000 + k);
        if (pgtest_scalar(w, sql) == -1)
            break;
    }
    CHECK_INT(pgtest_exec(o, "BEGIN; LOCK TABLE option_snapshots IN ROW EXCLUSIVE MODE"), 0);
    CHECK_INT(pgtest_exec(w, "SET lock_timeout = '2s'"), 0);
    snprintf(sql, sizeof sql, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 900, " TODAY_UTC " - 900)");
    PGresult *res = PQexec(w, sql);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    CHECK(state != NULL && strcmp(state, "55P03") == 0);
    CHECK(msg != NULL && strstr(msg, "rate limit") != NULL); /* not "canceling statement due to lock timeout" */
    if (msg)
        fprintf(stderr, "  refused behind an insert's lock: %s\n", msg);
    PQclear(res);
    CHECK(pgtest_exec_fails(w, "SELECT optsnap_ensure_partitions(" TODAY_UTC " - 400, " TODAY_UTC ")", "42501") == 0);
    CHECK_INT(pgtest_exec(o, "ROLLBACK"), 0);
    PQfinish(w);
    PQfinish(o);
}

static void test_reader_only_reads(void)
{
    PGconn *r = pgtest_connect(reader_ci);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK_INT(pgtest_scalar(r, "SELECT count(*) FROM option_snapshots"), 1);
    CHECK_INT(pgtest_scalar(r, "SELECT count(*) FROM ingest_coverage"), 1);
    CHECK(pgtest_exec_fails(r, "INSERT INTO ingest_rejects (reason, raw) VALUES ('x', 'y')", "42501") == 0);
    CHECK(pgtest_exec_fails(r, "INSERT INTO ingest_flatfiles (day, underlying, etag) VALUES ('2026-11-03', 'SPY', 'x')",
                            "42501") == 0);
    CHECK_INT(pgtest_scalar(r, "SELECT count(*) FROM ingest_flatfiles") >= 0, 1);
    CHECK(pgtest_exec_fails(r, "UPDATE options SET strike_price = 1", "42501") == 0);
    CHECK(pgtest_exec_fails(r, "SELECT optsnap_ensure_partitions('2031-02-01', '2031-02-02')", "42501") == 0);
    CHECK(pgtest_exec_fails(r, "SELECT optsnap_ensure_day_partition('2031-02-03')", "42501") == 0);
    CHECK(pgtest_exec_fails(r, "SELECT * FROM optsnap_retention_apply('2020-01-01', true)", "42501") == 0);
    /* history reads: the chain as of a time and one contract's series */
    CHECK_INT(pgtest_scalar(r, "SELECT count(*) FROM optsnap_chain_at('SPY', now(), '-infinity')") >= 0, 1);
    CHECK_INT(pgtest_scalar(r, "SELECT count(*) FROM optsnap_series('x', '-infinity', 'infinity')"), 0);
    PQfinish(r);
}

int main(void)
{
    int rc = pgtest_fresh_db("optsnap_itest_roles", owner, sizeof owner);
    if (rc == PGTEST_SKIP)
        return 77;
    const char *root = getenv("OPTSNAP_SOURCE_ROOT");
    if (rc || root == NULL || pgtest_migrate(owner))
        return 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/sql/roles.sql", root);
    char *sql = test_read_file(path, NULL);
    PGconn *c = pgtest_connect(owner);
    if (c == NULL || pgtest_exec(c, sql))
        return 1;
    free(sql);
    /* login roles, cluster-wide: idempotent so parallel configurations can share them */
    if (pgtest_exec(c, "DO $$ BEGIN "
                       "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optsnap_test_w') THEN "
                       "CREATE ROLE optsnap_test_w LOGIN IN ROLE optsnap_writer; END IF; "
                       "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optsnap_test_r') THEN "
                       "CREATE ROLE optsnap_test_r LOGIN IN ROLE optsnap_reader; END IF; END $$"))
        return 1;
    PQfinish(c);
    /* pgtest gives a key=value conninfo; a later keyword wins */
    snprintf(writer_ci, sizeof writer_ci, "%s user=optsnap_test_w", owner);
    snprintf(reader_ci, sizeof reader_ci, "%s user=optsnap_test_r", owner);
    RUN(test_writer_can_ingest);
    RUN(test_reader_only_reads);
    RUN(test_partition_bounds);
    TEST_EXIT();
}
