/* Integration tests of the writer through the non-blocking pool, on a real
 * PostgreSQL: the upsert statement shape, duplicates, unchanged re-polls,
 * live vs backfill, rejects, coverage, timeouts, data errors, concurrency. */
#include <stdlib.h>
#include <uv.h>

#include "integration/pgtest.h"
#include "optsnap/db/batch.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/util/timeutil.h"
#include "optsnap/db/writer.h"
#include "test.h"

static char conninfo[512];
static PGconn *db;
static uv_loop_t loop;
static struct pg_pool *pool;

struct waiter {
    struct pg_txn_result result;
    int done;
};

static void on_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct waiter *w = txn->user;
    w->result = *r;
    w->done = 1;
}

static void wait_idle(void)
{
    for (int i = 0; i < 2000 && !pg_pool_has_idle(pool); i++)
        uv_run(&loop, UV_RUN_ONCE);
}

/* Builds and runs one batch's transaction; returns the result. */
static bool last_mark_refused; /* of the last run_batch */

/* Runs a built job; the caller frees it. */
static struct pg_txn_result run_job(struct writer_job *jp, long *written)
{
#define j (*jp)
    struct waiter w = {0};
    wait_idle();
    j.txn.done = on_done;
    j.txn.user = &w;
    if (pg_pool_submit(pool, &j.txn)) {
        fprintf(stderr, "submit failed\n");
        exit(1);
    }
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (written)
        *written = writer_job_rows_written(&j, &w.result);
    last_mark_refused = writer_job_mark_refused(&j, &w.result);
    return w.result;
#undef j
}

static struct pg_txn_result run_batch(struct batch *b, const char *underlying, enum row_source src,
                                      const struct coverage_mark *cov, long *written)
{
    struct writer_job j;
    if (writer_job_build(&j, b, underlying, src, cov)) {
        fprintf(stderr, "build failed\n");
        exit(1);
    }
    struct pg_txn_result r = run_job(&j, written);
    writer_job_free(&j);
    return r;
}

static struct snapshot_row mkrow(const char *ticker, const char *when, double price)
{
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.contract.ticker, sizeof r.contract.ticker, "%s", ticker);
    snprintf(r.contract.underlying, sizeof r.contract.underlying, "AAPL");
    r.contract.contract_type = 'C';
    r.contract.exercise_style = 'A';
    if (date_parse("2026-12-18", &r.contract.expiration_days))
        exit(1);
    r.contract.strike_price = 150;
    r.contract.shares_per_contract = 100;
    if (timestamp_parse(when, &r.last_updated_us))
        exit(1);
    snapshot_row_set_f64(&r, SNAP_TRADE_PRICE, price);
    snapshot_row_set_i64(&r, SNAP_TRADE_SIZE, 3);
    snapshot_row_set_i64(&r, SNAP_TRADE_TIME, r.last_updated_us);
    snapshot_row_set_f64(&r, SNAP_DELTA, 0.5);
    return r;
}

static struct batch *batch_of(const struct snapshot_row *rows, size_t n)
{
    struct batch *b = batch_new();
    for (size_t i = 0; i < n; i++)
        if (batch_add_row(b, &rows[i]))
            exit(1);
    if (batch_sort_dedupe(b) < 0)
        exit(1);
    return b;
}

static void test_statement_shape(void)
{
    /* LESSONS §1: the ticker is assigned directly; no relation sub-select */
    CHECK(strstr(writer_sql_snapshots, "(SELECT") == NULL);
    CHECK(strstr(writer_sql_options, "(SELECT") == NULL);
    CHECK(strstr(writer_sql_snapshots, "ON CONFLICT (ticker, last_updated) DO UPDATE") != NULL);
    CHECK(strstr(writer_sql_snapshots, "IS DISTINCT FROM") != NULL);
}

static void test_upsert_with_duplicates(void)
{
    struct snapshot_row rows[] = {
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:00:00.000001Z", 1.0),
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:00:00.000001Z", 2.0), /* same µs key */
        mkrow("O:AAPL261218P00150000", "2026-11-02T15:00:00Z", 3.0),
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:01:00Z", 4.0),
    };
    struct batch *b = batch_of(rows, 4);
    CHECK_INT(b->nrows, 3);
    long written = -1;
    struct pg_txn_result r = run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, &written);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(written, 3);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots"), 3);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM options"), 2);
    char buf[64];
    CHECK(pgtest_text(db, "SELECT trade_price FROM option_snapshots WHERE ticker = 'O:AAPL261218C00150000' "
                          "AND last_updated = '2026-11-02T15:00:00.000001Z'", buf, sizeof buf) == 0);
    CHECK_STR(buf, "2"); /* the last one wins */
    CHECK(pgtest_text(db, "SELECT underlying || ',' || source || ',' || contract_type || ',' || exercise_style "
                          "FROM option_snapshots s JOIN options USING (ticker, underlying) "
                          "WHERE ticker = 'O:AAPL261218P00150000'", buf, sizeof buf) == 0);
    CHECK_STR(buf, "AAPL,live,call,american");
    CHECK(pgtest_text(db, "SELECT last_seen FROM options WHERE ticker = 'O:AAPL261218C00150000'", buf,
                      sizeof buf) == 0);
    CHECK_STR(buf, "2026-11-02 15:01:00+00");
    batch_free(b);
}

static void test_unchanged_repoll_writes_nothing(void)
{
    struct snapshot_row rows[] = {
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:00:00.000001Z", 2.0),
        mkrow("O:AAPL261218P00150000", "2026-11-02T15:00:00Z", 3.0),
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:01:00Z", 4.0),
    };
    long long xmin_sum = pgtest_scalar(db, "SELECT sum(xmin::text::bigint) FROM option_snapshots");
    long long opt_xmin = pgtest_scalar(db, "SELECT sum(xmin::text::bigint) FROM options");
    struct batch *b = batch_of(rows, 3);
    long written = -1;
    struct pg_txn_result r = run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, &written);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(written, 0);
    /* no new row versions: every xmin is as it was, in snapshots and options */
    CHECK_INT(pgtest_scalar(db, "SELECT sum(xmin::text::bigint) FROM option_snapshots"), xmin_sum);
    CHECK_INT(pgtest_scalar(db, "SELECT sum(xmin::text::bigint) FROM options"), opt_xmin);
    batch_free(b);

    /* one changed value under the same key: exactly that row is updated */
    struct snapshot_row changed = mkrow("O:AAPL261218P00150000", "2026-11-02T15:00:00Z", 3.5);
    b = batch_of(&changed, 1);
    r = run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, &written);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(written, 1);
    CHECK_INT(pgtest_scalar(db, "SELECT (trade_price * 10)::int FROM option_snapshots WHERE ticker = 'O:AAPL261218P00150000'"), 35);
    batch_free(b);
}

static void test_backfill_never_overwrites_live(void)
{
    struct snapshot_row bf = mkrow("O:AAPL261218P00150000", "2026-11-02T15:00:00Z", 99.0);
    struct batch *b = batch_of(&bf, 1);
    long written = -1;
    struct pg_txn_result r = run_batch(b, "AAPL", ROW_SOURCE_BACKFILL, NULL, &written);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(written, 0);
    CHECK_INT(pgtest_scalar(db, "SELECT (trade_price * 10)::int FROM option_snapshots WHERE ticker = 'O:AAPL261218P00150000'"), 35);
    batch_free(b);
    /* a backfilled row is replaced by a live one for the same key */
    struct snapshot_row nb = mkrow("O:AAPL261218P00150000", "2026-11-02T16:00:00Z", 7.0);
    b = batch_of(&nb, 1);
    r = run_batch(b, "AAPL", ROW_SOURCE_BACKFILL, NULL, &written);
    CHECK_INT(written, 1);
    nb.v[SNAP_TRADE_PRICE].f = 8.0;
    batch_free(b);
    b = batch_of(&nb, 1);
    r = run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, &written);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(written, 1);
    char buf[64];
    CHECK(pgtest_text(db, "SELECT source || ':' || trade_price FROM option_snapshots "
                          "WHERE ticker = 'O:AAPL261218P00150000' AND last_updated = '2026-11-02T16:00:00Z'",
                      buf, sizeof buf) == 0);
    CHECK_STR(buf, "live:8");
    batch_free(b);
}

static void test_rejects_coverage_and_missing_partition(void)
{
    struct snapshot_row far = mkrow("O:AAPL261218C00150000", "2024-07-03T15:00:00Z", 1.0);
    struct batch *b = batch_of(&far, 1);
    struct row_reject rj;
    memset(&rj, 0, sizeof rj);
    snprintf(rj.ticker, sizeof rj.ticker, "O:BAD");
    snprintf(rj.reason, sizeof rj.reason, "ticker: not an OCC symbol");
    rj.raw = strdup("{\"details\":{\"ticker\":\"O:BAD\"}}");
    rj.raw_len = strlen(rj.raw);
    snprintf(rj.request_id, sizeof rj.request_id, "req-123");
    CHECK(batch_add_reject(b, &rj) == 0);
    /* a batch sealed mid-page holds rejects of two pages: each keeps its own */
    memset(&rj, 0, sizeof rj);
    snprintf(rj.reason, sizeof rj.reason, "details.ticker: missing");
    rj.raw = strdup("{}");
    rj.raw_len = 2;
    snprintf(rj.request_id, sizeof rj.request_id, "req-456");
    CHECK(batch_add_reject(b, &rj) == 0);
    memset(&rj, 0, sizeof rj);
    snprintf(rj.reason, sizeof rj.reason, "no request id");
    rj.raw = strdup("{}");
    rj.raw_len = 2;
    CHECK(batch_add_reject(b, &rj) == 0);
    struct coverage_mark cov = {0};
    CHECK(timestamp_parse("2024-07-03T15:00:00Z", &cov.window_start_us) == 0);
    cov.window_end_us = cov.window_start_us + 60 * USEC_PER_SEC;
    cov.rows = 2;
    struct pg_txn_result r = run_batch(b, "AAPL", ROW_SOURCE_LIVE, &cov, NULL);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE last_updated = '2024-07-03T15:00:00Z'"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE reason = 'ticker: not an OCC symbol' "
                                "AND request_id = 'req-123' AND raw LIKE '%O:BAD%' AND underlying = 'AAPL'"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE reason = 'details.ticker: missing' "
                                "AND request_id = 'req-456' AND ticker IS NULL"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_rejects WHERE reason = 'no request id' "
                                "AND request_id IS NULL"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT rows FROM ingest_coverage WHERE underlying = 'AAPL' "
                                "AND window_start = '2024-07-03T15:00:00Z' AND source = 'live'"), 2);
    batch_free(b);
}

/* A batch sent again after a COMMIT whose outcome was unknown (the same
 * write token) writes its rejects once; another batch's token writes them
 * again; no token (rejects from before 010) writes every time. */
static void test_rejects_written_once_per_token(void)
{
    struct snapshot_row row = mkrow("O:AAPL261218C00155000", "2026-11-05T15:07:00Z", 1.0);
    struct batch *b = batch_of(&row, 1);
    for (int i = 0; i < 2; i++) {
        struct row_reject rj;
        memset(&rj, 0, sizeof rj);
        snprintf(rj.ticker, sizeof rj.ticker, "O:TOKEN%d", i);
        snprintf(rj.reason, sizeof rj.reason, "idempotency test");
        rj.raw = strdup("{}");
        rj.raw_len = 2;
        CHECK(batch_add_reject(b, &rj) == 0);
    }
    const char *q = "SELECT count(*) FROM ingest_rejects WHERE reason = 'idempotency test'";
    snprintf(b->write_token, sizeof b->write_token, "test.1-1");
    CHECK_INT(run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, NULL).status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, q), 2);
    CHECK_INT(run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, NULL).status, PG_TXN_OK); /* the retry */
    CHECK_INT(pgtest_scalar(db, q), 2);
    snprintf(b->write_token, sizeof b->write_token, "test.1-2");
    CHECK_INT(run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, NULL).status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, q), 4);
    b->write_token[0] = '\0';
    CHECK_INT(run_batch(b, "AAPL", ROW_SOURCE_LIVE, NULL, NULL).status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, q), 6);
    batch_free(b);
}

static void test_data_error_is_atomic(void)
{
    long long before = pgtest_scalar(db, "SELECT count(*) FROM option_snapshots");
    struct snapshot_row rows[] = {
        mkrow("O:AAPL261218C00160000", "2026-11-03T15:00:00Z", 1.0),
        mkrow("O:AAPL261218C00170000", "2026-11-03T15:00:00Z", 1.0),
    };
    rows[1].contract.ticker[2] = (char)0xff; /* not UTF-8: the server refuses it, 22021 */
    struct batch *b = batch_of(rows, 2);
    struct coverage_mark cov = {.window_start_us = rows[0].last_updated_us,
                                .window_end_us = rows[0].last_updated_us + 60000000, .rows = 2};
    struct pg_txn_result r = run_batch(b, "AAPL", ROW_SOURCE_LIVE, &cov, NULL);
    CHECK_INT(r.status, PG_TXN_SQL_ERROR);
    CHECK(strncmp(r.sqlstate, "22", 2) == 0);
    CHECK(pg_sqlstate_is_data_error(r.sqlstate));
    CHECK_INT(r.failed_stmt, 0); /* insert_options: the first statement of the batch */
    /* nothing of the transaction is left: not the good row, not the contracts, not the coverage */
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots"), before);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM options WHERE ticker = 'O:AAPL261218C00160000'"), 0);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE window_start = '2026-11-03T15:00:00Z'"), 0);
    batch_free(b);
}

/* 006_fields.sql's columns, the fallback flag, the rejects' kind and key,
 * and contracts' reference data, through the real statements. */
static void test_api_fields_and_reject_kinds(void)
{
    struct snapshot_row r = mkrow("O:SPXW261218C05000000", "2026-11-10T15:00:00Z", 12.5);
    snprintf(r.contract.underlying, sizeof r.contract.underlying, "I:SPX");
    snapshot_row_set_i64(&r, SNAP_QUOTE_TIMEFRAME, SNAP_TIMEFRAME_DELAYED);
    snapshot_row_set_i64(&r, SNAP_TRADE_TIMEFRAME, SNAP_TIMEFRAME_REAL_TIME);
    snapshot_row_set_i64(&r, SNAP_UNDERLYING_TIMEFRAME, SNAP_TIMEFRAME_DELAYED);
    snapshot_row_set_i64(&r, SNAP_BID_EXCHANGE, 302);
    snapshot_row_set_i64(&r, SNAP_ASK_EXCHANGE, 323);
    snapshot_row_set_f64(&r, SNAP_UNDERLYING_VALUE, 5012.25);
    snapshot_row_set_i64(&r, SNAP_FMV_TIME, r.last_updated_us - 1);
    r.conditions[0] = 209;
    r.conditions[1] = 219;
    r.nconditions = 2;
    r.present |= UINT64_C(1) << SNAP_TRADE_CONDITIONS;
    struct snapshot_row fb = mkrow("O:SPXW261218C05100000", "2026-11-10T15:01:00Z", 1.0);
    snprintf(fb.contract.underlying, sizeof fb.contract.underlying, "I:SPX");
    fb.last_updated_fallback = true;
    struct snapshot_row rows[] = {r, fb};
    struct batch *b = batch_of(rows, 2);
    struct row_reject rj;
    memset(&rj, 0, sizeof rj);
    snprintf(rj.ticker, sizeof rj.ticker, "O:SPXW261218C05000000");
    snprintf(rj.reason, sizeof rj.reason, "fmv: not a number");
    rj.raw = strdup("{\"fmv\":\"x\"}");
    rj.raw_len = strlen(rj.raw);
    rj.kind = REJECT_PARTIAL;
    rj.key_us = r.last_updated_us;
    CHECK(batch_add_reject(b, &rj) == 0);
    memset(&rj, 0, sizeof rj);
    snprintf(rj.reason, sizeof rj.reason, "details.ticker: missing");
    rj.raw = strdup("{}");
    rj.raw_len = 2;
    CHECK(batch_add_reject(b, &rj) == 0);
    struct pg_txn_result res = run_batch(b, "I:SPX", ROW_SOURCE_LIVE, NULL, NULL);
    CHECK_INT(res.status, PG_TXN_OK);
    char buf[512];
    CHECK(pgtest_text(db, "SELECT concat_ws('|', quote_timeframe, trade_timeframe, underlying_timeframe, bid_exchange,"
                          " ask_exchange, trade_conditions::text, underlying_value, fmv_time = last_updated - interval '1 microsecond',"
                          " last_updated_fallback, underlying) FROM option_snapshots WHERE ticker = 'O:SPXW261218C05000000'",
                      buf, sizeof buf) == 0);
    CHECK_STR(buf, "DELAYED|REAL-TIME|DELAYED|302|323|[209, 219]|5012.25|t|f|I:SPX");
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE ticker = 'O:SPXW261218C05100000'"
                                " AND last_updated_fallback AND trade_conditions IS NULL AND quote_timeframe IS NULL"),
              1);
    CHECK(pgtest_text(db, "SELECT string_agg(kind || ':' || coalesce(key_time::text, '-'), ',' ORDER BY id)"
                          " FROM ingest_rejects WHERE underlying = 'I:SPX'", buf, sizeof buf) == 0);
    CHECK_STR(buf, "partial:2026-11-10 15:00:00+00,reject:-");
    /* an unchanged re-poll of the new columns writes nothing */
    long written = -1;
    b->nrejects = 0;
    for (size_t i = 0; i < 2; i++)
        free(b->rejects[i].raw);
    res = run_batch(b, "I:SPX", ROW_SOURCE_LIVE, NULL, &written);
    CHECK_INT(res.status, PG_TXN_OK);
    CHECK_INT(written, 0);
    /* one condition more is a change */
    b->rows[0].conditions[2] = 1;
    b->rows[0].nconditions = 3;
    res = run_batch(b, "I:SPX", ROW_SOURCE_LIVE, NULL, &written);
    CHECK_INT(written, 1);
    batch_free(b);

    /* the reference endpoint's fields onto the contracts */
    struct contracts_page page = {0};
    char err[256];
    const char *ref = "{\"status\":\"OK\",\"results\":[{\"ticker\":\"O:SPXW261218C05000000\","
                      "\"underlying_ticker\":\"I:SPX\",\"cfi\":\"OCEICS\",\"primary_exchange\":\"XCBO\","
                      "\"additional_underlyings\":[{\"type\":\"index\",\"underlying\":\"I:SPX\",\"amount\":100}]},"
                      "{\"ticker\":\"O:SPXW261218C09990000\",\"cfi\":\"OCEICS\"}]}";
    CHECK_INT(contracts_page_parse(&page, ref, strlen(ref), err, sizeof err), 0);
    struct writer_job j;
    CHECK(writer_contracts_job_build(&j, &page) == 0);
    CHECK_INT(j.txn.nstmts, 1);
    struct waiter w = {0};
    wait_idle();
    j.txn.done = on_done;
    j.txn.user = &w;
    CHECK(pg_pool_submit(pool, &j.txn) == 0);
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(w.result.status, PG_TXN_OK);
    CHECK_INT(w.result.affected[0], 1); /* the contract not in `options` is left for later */
    writer_job_free(&j);
    CHECK(pgtest_text(db, "SELECT concat_ws('|', cfi, primary_exchange, additional_underlyings->0->>'underlying',"
                          " reference_updated_at IS NOT NULL) FROM options WHERE ticker = 'O:SPXW261218C05000000'",
                      buf, sizeof buf) == 0);
    CHECK_STR(buf, "OCEICS|XCBO|I:SPX|t");
    contracts_page_free(&page);
}

static void test_statement_timeout(void)
{
    struct pg_pool *slow;
    struct pg_pool_settings ps = {.conninfo = conninfo, .size = 1, .statement_timeout_us = 100000};
    CHECK(pg_pool_create(&slow, &loop, &ps, NULL, NULL) == 0);
    for (int i = 0; i < 2000 && !pg_pool_has_idle(slow); i++)
        uv_run(&loop, UV_RUN_ONCE);
    struct waiter w = {0};
    struct pg_txn txn = {.nstmts = 1, .done = on_done, .user = &w};
    txn.stmts[0] = (struct pg_stmt){.name = "sleep", .sql = "SELECT pg_sleep(2)"};
    uint64_t t0 = uv_hrtime();
    CHECK(pg_pool_submit(slow, &txn) == 0);
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(w.result.status, PG_TXN_SQL_ERROR);
    CHECK_STR(w.result.sqlstate, "57014");
    CHECK(pg_sqlstate_is_transient(w.result.sqlstate));
    CHECK((uv_hrtime() - t0) < 1500000000ULL); /* cut short, not slept through */
    /* the setting was local to that transaction: the pool's next one still has it */
    struct waiter w2 = {0};
    for (int i = 0; i < 2000 && !pg_pool_has_idle(slow); i++)
        uv_run(&loop, UV_RUN_ONCE);
    struct pg_txn t2 = {.nstmts = 1, .done = on_done, .user = &w2};
    t2.stmts[0] = (struct pg_stmt){.name = "sleep", .sql = "SELECT pg_sleep(0.01)"};
    CHECK(pg_pool_submit(slow, &t2) == 0);
    while (!w2.done)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(w2.result.status, PG_TXN_OK);
    pg_pool_close(slow, NULL, NULL);
}

static void test_concurrent_batches(void)
{
    /* 4 connections, 16 batches: half disjoint, half overlapping but sorted: no deadlock */
    enum { N = 16, ROWS = 400 };
    struct batch *bs[N];
    struct writer_job jobs[N];
    struct waiter ws[N];
    memset(ws, 0, sizeof ws);
    for (int k = 0; k < N; k++) {
        bs[k] = batch_new();
        for (int i = 0; i < ROWS; i++) {
            char t[32];
            int strike = (k % 2 == 0) ? (k * ROWS + i) : i; /* odd batches overlap each other */
            snprintf(t, sizeof t, "O:AAPL261218C%08d", strike * 10);
            struct snapshot_row r = mkrow(t, "2026-11-04T15:00:00Z", (double)k);
            if (batch_add_row(bs[k], &r))
                exit(1);
        }
        if (batch_sort_dedupe(bs[k]) < 0 || writer_job_build(&jobs[k], bs[k], "AAPL", ROW_SOURCE_LIVE, NULL))
            exit(1);
        jobs[k].txn.done = on_done;
        jobs[k].txn.user = &ws[k];
    }
    int submitted = 0, done = 0, max_busy = 0;
    while (done < N) {
        while (submitted < N && pg_pool_submit(pool, &jobs[submitted].txn) == 0)
            submitted++;
        struct pg_pool_stats st;
        pg_pool_get_stats(pool, &st);
        if (st.busy > max_busy)
            max_busy = st.busy;
        uv_run(&loop, UV_RUN_ONCE);
        done = 0;
        for (int k = 0; k < N; k++)
            done += ws[k].done;
    }
    int ok = 0;
    for (int k = 0; k < N; k++) {
        ok += ws[k].result.status == PG_TXN_OK;
        if (ws[k].result.status != PG_TXN_OK)
            fprintf(stderr, "  batch %d: %s %s\n", k, ws[k].result.sqlstate, ws[k].result.message);
        writer_job_free(&jobs[k]);
        batch_free(bs[k]);
    }
    CHECK_INT(ok, N);
    CHECK(max_busy <= 4);
    CHECK(max_busy >= 2);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE last_updated = '2026-11-04T15:00:00Z'"),
              (N / 2) * ROWS); /* the odd batches overlap batch 0's tickers */
    /* the pool never opened more connections than its size */
    CHECK(pgtest_scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'optsnap-writer-test'") <= 4);
}

/* Issue 11: no command marks a window before it has ended (backfill) or
 * started (live, by the database's clock plus the skew bound), and a live
 * window is never marked twice. */
static void test_marks_never_ahead_of_the_database_clock(void)
{
    int64_t now = time_now_us(), minute = 60 * USEC_PER_SEC;
    int64_t cur = now / minute * minute;
    struct batch *b = batch_new();
    struct coverage_mark live = {.window_start_us = cur + 5 * minute, .window_end_us = cur + 6 * minute,
                                 .max_ahead_us = 2 * USEC_PER_SEC};
    struct pg_txn_result r = run_batch(b, "FUT", ROW_SOURCE_LIVE, &live, NULL);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK(last_mark_refused);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'FUT'"), 0);
    /* the window in progress may be marked (a sweep ends inside it) ... */
    live.window_start_us = cur;
    live.window_end_us = cur + minute;
    r = run_batch(b, "FUT", ROW_SOURCE_LIVE, &live, NULL);
    CHECK(!last_mark_refused);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'FUT'"), 1);
    /* ... once: a second live mark of it is refused */
    r = run_batch(b, "FUT", ROW_SOURCE_LIVE, &live, NULL);
    CHECK(last_mark_refused);
    /* backfill over [now - 3m, now + 3m) marks only the windows that have ended */
    struct coverage_mark range = {.calendar = "always", .cadence_us = minute, .window_start_us = cur - 3 * minute,
                                  .window_end_us = cur + 3 * minute};
    r = run_batch(b, "FUT2", ROW_SOURCE_BACKFILL, &range, NULL);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'FUT2' AND window_end > now()"), 0);
    CHECK(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'FUT2'") >= 2);
    batch_free(b);
}

static void test_coverage_range_for_backfill(void)
{
    /* a live mark already holds 2024-07-03 15:00; backfill marks 15:00..15:10 */
    struct batch *b = batch_new();
    struct coverage_mark cov = {.calendar = "always", .cadence_us = 60 * USEC_PER_SEC};
    CHECK(timestamp_parse("2024-07-03T15:00:00Z", &cov.window_start_us) == 0);
    cov.window_end_us = cov.window_start_us + 10 * 60 * USEC_PER_SEC;
    struct pg_txn_result r = run_batch(b, "AAPL", ROW_SOURCE_BACKFILL, &cov, NULL);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'AAPL' "
                                "AND window_start >= '2024-07-03T15:00:00Z' AND window_start < '2024-07-03T15:10:00Z'"), 10);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE underlying = 'AAPL' AND source = 'backfill' "
                                "AND window_start >= '2024-07-03T15:00:00Z' AND window_start < '2024-07-03T15:10:00Z'"), 9);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM ingest_coverage WHERE window_start = '2024-07-03T15:00:00Z' AND source = 'live'"), 1);
    batch_free(b);
}

/* Contracts the skip cache knows skip the options statements: left out when
 * all are known, only the unknown ones listed otherwise. */
static void test_known_contracts_skip_options(void)
{
    struct snapshot_row rows[] = {
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:00:00Z", 2.0),
        mkrow("O:AAPL261218C00150000", "2026-11-02T15:01:00Z", 2.5),
        mkrow("O:AAPL261218P00170000", "2026-11-02T15:00:00Z", 3.0),
    };
    struct batch *b = batch_of(rows, 3);
    CHECK_INT(pgtest_exec(db, "INSERT INTO options (ticker, underlying, contract_type, expiration_date, strike_price, "
                              "first_seen, last_seen) VALUES ('O:AAPL261218C00150000', 'AAPL', 'call', '2026-12-18', "
                              "150, now(), now()) ON CONFLICT DO NOTHING"),
              0);
    long before = pgtest_scalar(db, "SELECT count(*) FROM options");
    bool all[3] = {true, false, true}, one[3] = {true, false, false};
    struct writer_job j;
    CHECK(writer_job_build_known(&j, b, "AAPL", ROW_SOURCE_LIVE, NULL, all) == 0);
    CHECK_INT(j.txn.nstmts, 1);
    CHECK_STR(j.txn.stmts[0].name, "upsert_snapshots");
    writer_job_free(&j);
    CHECK(writer_job_build_known(&j, b, "AAPL", ROW_SOURCE_LIVE, NULL, one) == 0);
    CHECK_INT(j.txn.nstmts, 3);
    CHECK_STR(j.txn.stmts[0].name, "insert_options");
    CHECK_STR(j.txn.stmts[1].name, "touch_options");
    /* the unknown contract alone goes to options; every row is stored */
    long written = -1;
    struct pg_txn_result r = run_job(&j, &written);
    CHECK_INT(r.status, PG_TXN_OK);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM options"), before + 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM options WHERE ticker = 'O:AAPL261218P00170000'"), 1);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM option_snapshots WHERE ticker = 'O:AAPL261218P00170000'"), 1);
    writer_job_free(&j);
    batch_free(b);
}

int main(void)
{
    int rc = pgtest_fresh_db("optsnap_itest_writer", conninfo, sizeof conninfo);
    if (rc == PGTEST_SKIP)
        return 77;
    if (rc || pgtest_migrate(conninfo) || (db = pgtest_connect(conninfo)) == NULL)
        return 1;
    uv_loop_init(&loop);
    struct pg_pool_settings ps = {.conninfo = conninfo, .size = 4, .statement_timeout_us = 10000000,
                                  .application_name = "optsnap-writer-test"};
    if (pg_pool_create(&pool, &loop, &ps, NULL, NULL))
        return 1;
    RUN(test_statement_shape);
    RUN(test_upsert_with_duplicates);
    RUN(test_unchanged_repoll_writes_nothing);
    RUN(test_known_contracts_skip_options);
    RUN(test_backfill_never_overwrites_live);
    RUN(test_rejects_coverage_and_missing_partition);
    RUN(test_rejects_written_once_per_token);
    RUN(test_coverage_range_for_backfill);
    RUN(test_marks_never_ahead_of_the_database_clock);
    RUN(test_api_fields_and_reject_kinds);
    RUN(test_data_error_is_atomic);
    RUN(test_statement_timeout);
    RUN(test_concurrent_batches);
    pg_pool_close(pool, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    PQfinish(db);
    TEST_EXIT();
}
