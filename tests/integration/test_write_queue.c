/* Integration tests of the write queue's data-error path on a real
 * PostgreSQL: a trigger that refuses every row stops the bisection early and
 * fails the group (the window stays uncovered, good rows are not turned into
 * rejects); a few bad rows are still bisected out, kept as 'refused' rejects
 * in the API's shape, and the window is covered. */
#include <stdlib.h>
#include <uv.h>

#include "integration/pgtest.h"
#include "optsnap/api/snapshot_parse.h"
#include "optsnap/db/batch.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/db/write_queue.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

static char conninfo[512];
static PGconn *db;
static uv_loop_t loop;
static struct pg_pool *pool;
static struct write_queue *wq;

struct counts {
    int bisected, refused, dropped, committed, settled;
    char last_drop[256];
};
static struct counts seen;

static void on_report(void *user, struct write_group *g, const struct write_report *r)
{
    (void)user;
    (void)g;
    switch (r->event) {
    case WRITE_BISECTED: seen.bisected++; break;
    case WRITE_ROW_REFUSED: seen.refused++; break;
    case WRITE_COMMITTED: seen.committed++; break;
    case WRITE_DROPPED:
        seen.dropped++;
        snprintf(seen.last_drop, sizeof seen.last_drop, "%s", r->message);
        break;
    default: break;
    }
}

static void on_settled(void *user, struct write_group *g)
{
    (void)user;
    (void)g;
    seen.settled++;
}

static void on_pool(void *user)
{
    (void)user;
    if (wq != NULL)
        write_queue_dispatch(wq);
}

static struct snapshot_row mkrow(int i, int64_t at_us)
{
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.contract.ticker, sizeof r.contract.ticker, "O:TRG261218C%08d", 100000 + i * 1000);
    snprintf(r.contract.underlying, sizeof r.contract.underlying, "TRG");
    r.contract.contract_type = 'C';
    r.contract.exercise_style = 'A';
    if (date_parse("2026-12-18", &r.contract.expiration_days))
        exit(1);
    r.contract.strike_price = 100 + i;
    r.contract.shares_per_contract = 100;
    r.last_updated_us = at_us;
    snapshot_row_set_f64(&r, SNAP_TRADE_PRICE, (double)i);
    snapshot_row_set_i64(&r, SNAP_TRADE_TIME, at_us);
    snapshot_row_set_i64(&r, SNAP_QUOTE_TIMEFRAME, SNAP_TIMEFRAME_REAL_TIME);
    return r;
}

/* One sweep's group of `nrows` rows in batches of 100, marked covered once written. */
static void run_group(struct write_group *g, int nrows, int64_t window_us)
{
    memset(g, 0, sizeof *g);
    memset(&seen, 0, sizeof seen);
    snprintf(g->underlying, sizeof g->underlying, "TRG");
    g->source = ROW_SOURCE_LIVE;
    g->cov.window_start_us = window_us;
    g->cov.window_end_us = window_us + 60 * USEC_PER_SEC;
    g->cov.rows = nrows;
    for (int start = 0; start < nrows; start += 100) {
        struct batch *b = batch_new();
        for (int i = start; i < nrows && i < start + 100; i++) {
            struct snapshot_row r = mkrow(i, window_us + 1000 * i);
            if (batch_add_row(b, &r))
                exit(1);
        }
        write_queue_add(wq, g, b);
    }
    write_queue_close_group(wq, g);
    for (int i = 0; i < 200000 && !seen.settled; i++)
        uv_run(&loop, UV_RUN_ONCE);
}

static void test_trigger_refusing_everything(void)
{
    CHECK_INT(pgtest_exec(db, "CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$"
                              " BEGIN RAISE EXCEPTION 'refused by policy' USING ERRCODE = '22023'; END $$;"
                              " CREATE TRIGGER refuse_all BEFORE INSERT ON option_snapshots"
                              " FOR EACH ROW EXECUTE FUNCTION refuse_all()"),
              0);
    struct write_group g;
    int64_t window;
    CHECK(timestamp_parse("2026-11-09T15:00:00Z", &window) == 0);
    run_group(&g, 480, window);
    CHECK_INT(seen.settled, 1);
    CHECK(g.failed);
    CHECK(!g.coverage_written);
    CHECK(g.bisect_stopped);
    /* stopped after BISECT_STOP_REFUSED (16) rows, not 480: few rejects, few bisections */
    CHECK_INT(seen.refused, 16);
    CHECK(seen.bisected < 60);
    CHECK(strstr(seen.last_drop, "bisection stopped") != NULL || seen.dropped > 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'TRG'"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE underlying = 'TRG'"), 0);
    CHECK(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE underlying = 'TRG'") <= 16);
    CHECK_INT(pgtest_exec(db, "DROP TRIGGER refuse_all ON option_snapshots; DROP FUNCTION refuse_all();"
                              " DELETE FROM ingest_rejects"),
              0);
}

static void test_few_bad_rows_are_bisected_out(void)
{
    /* three rows the database refuses for what they hold */
    CHECK_INT(pgtest_exec(db, "CREATE FUNCTION refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$"
                              " BEGIN IF NEW.trade_price IN (13, 77, 150) THEN"
                              " RAISE EXCEPTION 'price % refused', NEW.trade_price USING ERRCODE = '22023';"
                              " END IF; RETURN NEW; END $$;"
                              " CREATE TRIGGER refuse_13 BEFORE INSERT ON option_snapshots"
                              " FOR EACH ROW EXECUTE FUNCTION refuse_13()"),
              0);
    struct write_group g;
    int64_t window;
    CHECK(timestamp_parse("2026-11-09T16:00:00Z", &window) == 0);
    run_group(&g, 200, window);
    CHECK_INT(seen.settled, 1);
    CHECK(!g.failed);
    CHECK(g.coverage_written);
    CHECK(!g.bisect_stopped);
    CHECK_INT(seen.refused, 3);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE underlying = 'TRG'"
                                " AND last_updated >= '2026-11-09T16:00:00Z'"),
              197);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'TRG'"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE underlying = 'TRG' AND kind = 'refused'"
                                " AND reason LIKE 'database 22023: price % refused' AND key_time IS NOT NULL"),
              3);
    /* the raw of a refused row is the API's shape: the snapshot parser gives the row back */
    char raw[8192];
    CHECK(pgtest_text(db, "SELECT raw FROM ingest_rejects WHERE reason LIKE '%price 77%'", raw, sizeof raw) == 0);
    char body[9000];
    snprintf(body, sizeof body, "{\"status\":\"OK\",\"results\":[%s]}", raw);
    struct snapshot_page p = {0};
    char err[256];
    CHECK_INT(snapshot_page_parse(&p, body, strlen(body), "TRG", err, sizeof err), PARSE_OK);
    CHECK_INT(p.nrows, 1);
    CHECK_INT(p.nrejects, 0);
    if (p.nrows == 1) {
        CHECK_STR(p.rows[0].contract.ticker, "O:TRG261218C00177000");
        CHECK_DBL(p.rows[0].v[SNAP_TRADE_PRICE].f, 77);
        CHECK_INT(p.rows[0].v[SNAP_QUOTE_TIMEFRAME].i, SNAP_TIMEFRAME_REAL_TIME);
        CHECK_INT(p.rows[0].last_updated_us, window + 77000);
    }
    snapshot_page_free(&p);
    CHECK_INT(pgtest_exec(db, "DROP TRIGGER refuse_13 ON option_snapshots; DROP FUNCTION refuse_13()"), 0);
}

int main(void)
{
    int rc = pgtest_fresh_db("optsnap_itest_write_queue", conninfo, sizeof conninfo);
    if (rc == PGTEST_SKIP)
        return 77;
    if (rc || pgtest_migrate(conninfo) || (db = pgtest_connect(conninfo)) == NULL)
        return 1;
    uv_loop_init(&loop);
    struct pg_pool_settings ps = {.conninfo = conninfo, .size = 2, .statement_timeout_us = 10000000,
                                  .application_name = "optsnap-write-queue-test"};
    if (pg_pool_create(&pool, &loop, &ps, on_pool, NULL))
        return 1;
    struct write_queue_settings qs = {.retry_cap_us = 1000000, .max_attempts = 3};
    struct write_queue_hooks hooks = {.report = on_report, .group_settled = on_settled};
    if (write_queue_create(&wq, &loop, pool, &qs, &hooks, NULL))
        return 1;
    RUN(test_trigger_refusing_everything);
    RUN(test_few_bad_rows_are_bisected_out);
    write_queue_close(wq, NULL, NULL);
    wq = NULL;
    pg_pool_close(pool, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    PQfinish(db);
    TEST_EXIT();
}
