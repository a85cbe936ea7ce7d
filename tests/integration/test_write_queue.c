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
    int bisected, refused, dropped, committed, settled, retrying;
    long skipped;
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
    case WRITE_COMMITTED:
        seen.committed++;
        seen.skipped += r->skipped;
        break;
    case WRITE_RETRYING: seen.retrying++; break;
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

/* One sweep's group of `nrows` rows (at rows_us + i ms, price i, or i + 0.5
 * for row `changed`) in batches of 100, marked covered once written. */
static void run_group_rows(struct write_group *g, int nrows, int64_t window_us, int64_t rows_us, int changed)
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
            struct snapshot_row r = mkrow(i, rows_us + 1000 * i);
            if (i == changed)
                snapshot_row_set_f64(&r, SNAP_TRADE_PRICE, i + 0.5);
            if (batch_add_row(b, &r))
                exit(1);
        }
        write_queue_add(wq, g, b);
    }
    write_queue_close_group(wq, g);
    for (int i = 0; i < 200000 && !seen.settled; i++)
        uv_run(&loop, UV_RUN_ONCE);
}

static void run_group(struct write_group *g, int nrows, int64_t window_us)
{
    run_group_rows(g, nrows, window_us, window_us, -1);
}

/* Rows that reach PostgreSQL: a BEFORE INSERT row trigger fires for every
 * row an INSERT .. ON CONFLICT proposes, conflicting or not. */
static long rows_sent(void) { return pgtest_scalar(db, "SELECT n FROM rows_sent"); }

static void test_unchanged_repoll_sends_nothing(void)
{
    CHECK_INT(pgtest_exec(db, "CREATE TABLE rows_sent (n int8 NOT NULL); INSERT INTO rows_sent VALUES (0);"
                              " CREATE FUNCTION count_sent() RETURNS trigger LANGUAGE plpgsql AS $$"
                              " BEGIN UPDATE rows_sent SET n = n + 1; RETURN NEW; END $$;"
                              " CREATE TRIGGER count_sent BEFORE INSERT ON option_snapshots"
                              " FOR EACH ROW EXECUTE FUNCTION count_sent()"),
              0);
    struct write_group g;
    int64_t w, rows_at;
    CHECK(timestamp_parse("2026-11-10T15:00:00Z", &w) == 0);
    rows_at = w;
    run_group_rows(&g, 300, w, rows_at, -1);
    CHECK(g.coverage_written);
    CHECK_INT(rows_sent(), 300);
    CHECK_INT(g.rows_skipped, 0);
    struct write_queue_stats st0, st;
    write_queue_get_stats(wq, &st0);
    /* the next window polls the same rows: none is sent, the window is covered */
    run_group_rows(&g, 300, w + 60 * USEC_PER_SEC, rows_at, -1);
    CHECK(g.coverage_written);
    CHECK(!g.failed);
    CHECK_INT(rows_sent(), 300);
    CHECK_INT(g.rows_skipped, 300);
    CHECK_INT(seen.skipped, 300); /* reported with the mark's commit */
    CHECK_INT(seen.committed, 1);  /* the mark alone */
    write_queue_get_stats(wq, &st);
    CHECK_INT(st.rows_skipped - st0.rows_skipped, 300);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'TRG'"
                                " AND window_start >= '2026-11-10T15:00:00Z'"),
              2);
    /* one row changed: it alone is sent and stored; its contract skips the options statements */
    run_group_rows(&g, 300, w + 120 * USEC_PER_SEC, rows_at, 42);
    CHECK(g.coverage_written);
    CHECK_INT(rows_sent(), 301);
    CHECK_INT(g.rows_skipped, 299);
    CHECK_INT(g.rows_written, 1);
    write_queue_get_stats(wq, &st0);
    CHECK_INT(st0.contracts_skipped - st.contracts_skipped, 1);
    char buf[64];
    CHECK(pgtest_text(db, "SELECT trade_price FROM option_snapshots WHERE ticker = 'O:TRG261218C00142000'"
                          " AND last_updated = '2026-11-10T15:00:00.042Z'", buf,
                      sizeof buf) == 0);
    CHECK_STR(buf, "42.5");
    /* forgetting the underlying (a lease changed hands): everything is sent again */
    write_queue_forget_underlying(wq, "TRG");
    run_group_rows(&g, 300, w + 180 * USEC_PER_SEC, rows_at, 42);
    CHECK(g.coverage_written);
    CHECK_INT(rows_sent(), 601);
    CHECK_INT(g.rows_skipped, 0);
    CHECK_INT(g.rows_written, 0); /* the database's own IS DISTINCT FROM: nothing changed */
}

/* The connection dies inside a transaction (its COMMIT's outcome unknown to
 * the client): the cache forgets everything, the batch is retried, and the
 * rows the cache knew before are sent again on the next poll. */
static void test_lost_commit_forgets_everything(void)
{
    CHECK_INT(pgtest_exec(db, "CREATE SEQUENCE kill_once; CREATE FUNCTION kill_once() RETURNS trigger"
                              " LANGUAGE plpgsql AS $$ BEGIN IF NEW.trade_price = 7 AND nextval('kill_once') = 1"
                              " THEN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF;"
                              " RETURN NEW; END $$; CREATE TRIGGER kill_once BEFORE INSERT ON option_snapshots"
                              " FOR EACH ROW EXECUTE FUNCTION kill_once()"),
              0);
    struct write_group g;
    int64_t w, rows_at;
    CHECK(timestamp_parse("2026-11-10T16:00:00Z", &w) == 0);
    rows_at = w;
    long before = rows_sent();
    run_group_rows(&g, 100, w, rows_at, -1); /* the connection dies on row 7, the retry commits */
    CHECK(g.coverage_written);
    CHECK(seen.retrying >= 1);
    struct write_queue_stats st;
    write_queue_get_stats(wq, &st);
    CHECK(st.cache_forgets >= 2); /* the forget of the test above, and this one */
    long mid = rows_sent();
    CHECK(mid >= before + 100);
    /* the batch in flight at the forget is not trusted either (its retry's
     * commit sets nothing): its rows are sent once more, then known */
    run_group_rows(&g, 100, w + 60 * USEC_PER_SEC, rows_at, -1);
    CHECK_INT(rows_sent(), mid + 100);
    CHECK_INT(g.rows_skipped, 0);
    run_group_rows(&g, 100, w + 120 * USEC_PER_SEC, rows_at, -1);
    CHECK_INT(rows_sent(), mid + 100);
    CHECK_INT(g.rows_skipped, 100);
    /* the previous test's rows, known before the loss, are sent again */
    int64_t w0;
    CHECK(timestamp_parse("2026-11-10T15:00:00Z", &w0) == 0);
    run_group_rows(&g, 300, w + 180 * USEC_PER_SEC, w0, 42);
    CHECK_INT(rows_sent(), mid + 400);
    CHECK_INT(g.rows_skipped, 0);
    CHECK_INT(pgtest_exec(db, "DROP TRIGGER kill_once ON option_snapshots; DROP FUNCTION kill_once();"
                              " DROP TRIGGER count_sent ON option_snapshots; DROP FUNCTION count_sent()"),
              0);
}

/* The cache's word that a contract is in `options` turns out wrong (here: the
 * contract was deleted behind its back): the foreign key refuses the batch,
 * which goes again with the contract listed; no row becomes a reject. */
static void test_wrong_options_knowledge_is_retried(void)
{
    struct write_group g;
    int64_t w;
    CHECK(timestamp_parse("2026-11-10T17:00:00Z", &w) == 0);
    run_group_rows(&g, 10, w, w, -1);
    CHECK(g.coverage_written);
    CHECK_INT(pgtest_exec(db, "DELETE FROM option_snapshots WHERE ticker = 'O:TRG261218C00103000';"
                              " DELETE FROM options WHERE ticker = 'O:TRG261218C00103000'"),
              0);
    long rejects = pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects");
    run_group_rows(&g, 10, w + 60 * USEC_PER_SEC, w, 3); /* row 3 changed: sent, its contract "known" */
    CHECK(g.coverage_written);
    CHECK_INT(seen.refused, 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects"), rejects);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM options WHERE ticker = 'O:TRG261218C00103000'"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE ticker = 'O:TRG261218C00103000'"
                                " AND trade_price = 3.5"),
              1);
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
    RUN(test_unchanged_repoll_sends_nothing);
    RUN(test_lost_commit_forgets_everything);
    RUN(test_wrong_options_knowledge_is_retried);
    write_queue_close(wq, NULL, NULL);
    wq = NULL;
    pg_pool_close(pool, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    PQfinish(db);
    TEST_EXIT();
}
