/* Integration tests of the pool's error handling on a real PostgreSQL: a
 * statement timeout, a deadlock or a serialization failure leaves the
 * connection in place (the same backend serves the next transaction); a
 * read-only refusal (a standby after a failover), a terminated session and
 * a killed backend replace it. Through the PgBouncer pass the backend pid is
 * the pooler's choice, so there only the pool's own counters are checked. */
#include <stdlib.h>
#include <uv.h>

#include "integration/pgtest.h"
#include "optsnap/db/pg_pool.h"
#include "test.h"

static char conninfo[512];
static PGconn *db;
static uv_loop_t loop;
static struct pg_pool *pool;
static bool direct; /* no pooler between us and PostgreSQL */

struct waiter {
    struct pg_txn_result result;
    long long pid;
    int done;
};

static void on_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct waiter *w = txn->user;
    w->result = *r;
    w->done = 1;
}

static void on_pid(void *user, const void *pgresult)
{
    struct waiter *w = user;
    const PGresult *res = pgresult;
    if (PQntuples(res) == 1)
        w->pid = atoll(PQgetvalue(res, 0, 0));
}

static void wait_idle(void)
{
    for (int i = 0; i < 5000 && !pg_pool_has_idle(pool); i++)
        uv_run(&loop, UV_RUN_ONCE);
}

/* Runs sql (then SELECT pg_backend_pid() in the same transaction when
 * with_pid) on the pool's one connection; returns the result. */
static struct waiter run(const char *sql, bool with_pid)
{
    struct waiter w = {.pid = -1};
    struct pg_txn txn = {.done = on_done, .user = &w};
    int n = 0;
    if (sql)
        txn.stmts[n++] = (struct pg_stmt){.name = "stmt", .sql = sql};
    if (with_pid)
        txn.stmts[n++] = (struct pg_stmt){.name = "pid", .sql = "SELECT pg_backend_pid()", .on_tuples = on_pid};
    txn.nstmts = n;
    wait_idle();
    if (pg_pool_submit(pool, &txn)) {
        fprintf(stderr, "submit failed\n");
        exit(1);
    }
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    return w;
}

static long long backend_pid(void)
{
    struct waiter w = run(NULL, true);
    CHECK_INT(w.result.status, PG_TXN_OK);
    return w.pid;
}

static uint64_t reconnects(void)
{
    struct pg_pool_stats st;
    pg_pool_get_stats(pool, &st);
    return st.reconnects + st.connect_failures;
}

static long long our_backends(void)
{
    return pgtest_scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'optsnap-pool-test'");
}

/* A statement cut by statement_timeout: 57014, and the next transaction runs
 * on the same backend (the connection was not replaced). */
static void test_statement_timeout_keeps_connection(void)
{
    long long pid = backend_pid();
    uint64_t before = reconnects();
    pg_pool_set_statement_timeout(pool, 100000);
    struct waiter w = run("SELECT pg_sleep(3)", false);
    pg_pool_set_statement_timeout(pool, 10000000);
    CHECK_INT(w.result.status, PG_TXN_SQL_ERROR);
    CHECK_STR(w.result.sqlstate, "57014");
    CHECK_INT(pg_error_classify(w.result.sqlstate, w.result.message), PG_ERROR_RETRY);
    CHECK(pg_pool_has_idle(pool)); /* usable at once, no reconnect in between */
    CHECK_INT(reconnects(), before);
    if (direct) {
        CHECK_INT(backend_pid(), pid);
        CHECK_INT(our_backends(), 1);
    }
}

/* Deadlock and serialization failures as the server reports them (raised
 * with their SQLSTATE): retried by the caller, the connection stays. */
static void test_deadlock_and_serialization_keep_connection(void)
{
    long long pid = backend_pid();
    uint64_t before = reconnects();
    struct waiter w = run("DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$", false);
    CHECK_STR(w.result.sqlstate, "40P01");
    w = run("DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$", false);
    CHECK_STR(w.result.sqlstate, "40001");
    CHECK_INT(w.result.status, PG_TXN_SQL_ERROR);
    CHECK(pg_pool_has_idle(pool));
    CHECK_INT(reconnects(), before);
    if (direct)
        CHECK_INT(backend_pid(), pid);
}

/* A read-only transaction refuses a write with 25006, as a standby does
 * after a failover: the pool closes the connection and connects again (with
 * target_session_attrs=read-write libpq would pick the new primary). */
static void test_read_only_replaces_connection(void)
{
    long long pid = backend_pid();
    uint64_t before = reconnects();
    struct waiter w = {.pid = -1};
    struct pg_txn txn = {.nstmts = 2, .done = on_done, .user = &w};
    txn.stmts[0] = (struct pg_stmt){.name = "read_only", .sql = "SELECT set_config('transaction_read_only', 'on', true)"};
    txn.stmts[1] = (struct pg_stmt){.name = "write", .sql = "CREATE TABLE pool_test_never (x int)"};
    wait_idle();
    CHECK(pg_pool_submit(pool, &txn) == 0);
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(w.result.status, PG_TXN_SQL_ERROR);
    CHECK_STR(w.result.sqlstate, "25006");
    CHECK_INT(w.result.failed_stmt, 1);
    CHECK(strstr(w.result.message, "read-only transaction") != NULL);
    CHECK_INT(pg_error_classify(w.result.sqlstate, w.result.message), PG_ERROR_RECONNECT);
    CHECK(!pg_pool_has_idle(pool)); /* closed, reconnecting */
    CHECK_INT(reconnects(), before + 1);
    long long pid2 = backend_pid();
    if (direct)
        CHECK(pid2 != pid);
    CHECK_INT(pgtest_scalar(db, "SELECT count(*) FROM pg_class WHERE relname = 'pool_test_never'"), 0);
}

/* 57P01 (what pg_terminate_backend sends), here raised by the session itself
 * so it arrives as a statement error on a live socket: replaced anyway. */
static void test_terminated_session_replaces_connection(void)
{
    long long pid = backend_pid();
    uint64_t before = reconnects();
    struct waiter w = run("DO $$ BEGIN RAISE EXCEPTION 'terminating' USING ERRCODE = '57P01'; END $$", false);
    CHECK_STR(w.result.sqlstate, "57P01");
    CHECK_INT(reconnects(), before + 1);
    long long pid2 = backend_pid();
    if (direct)
        CHECK(pid2 != pid);
}

/* A backend killed from outside while idle: the armed READABLE watch sees the
 * close, the pool connects again, the next transaction works. */
static void test_killed_backend_reconnects(void)
{
    if (!direct)
        return; /* behind the pooler the server backend is not ours to kill */
    long long pid = backend_pid();
    char sql[128];
    uint64_t before = reconnects();
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)::int", pid);
    CHECK_INT(pgtest_scalar(db, sql), 1);
    /* the loop sees the server's close on the idle socket (no submission needed) */
    for (int i = 0; i < 5000 && reconnects() == before; i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(reconnects(), before + 1);
    long long pid2 = backend_pid();
    CHECK(pid2 > 0 && pid2 != pid);
}

static void test_reconnect_backoff_is_capped(void)
{
    /* the setter clamps: floor 100 ms, 0 = default; no crash, pool still works */
    pg_pool_set_max_backoff(pool, 1);
    pg_pool_set_max_backoff(pool, 0);
    pg_pool_set_max_backoff(pool, 2000000);
    CHECK(backend_pid() > 0);
}

int main(void)
{
    int rc = pgtest_fresh_db("optsnap_itest_pg_pool", conninfo, sizeof conninfo);
    if (rc == PGTEST_SKIP)
        return 77;
    const char *pooler = getenv("OPTSNAP_TEST_POOLER_URL");
    direct = pooler == NULL || *pooler == '\0';
    /* db: straight to PostgreSQL, to look at pg_stat_activity */
    if (rc || (db = pgtest_connect(getenv("OPTSNAP_TEST_PGURL"))) == NULL)
        return 1;
    uv_loop_init(&loop);
    struct pg_pool_settings ps = {.conninfo = conninfo, .size = 1, .statement_timeout_us = 10000000,
                                  .application_name = "optsnap-pool-test", .max_backoff_us = 1000000};
    if (pg_pool_create(&pool, &loop, &ps, NULL, NULL))
        return 1;
    RUN(test_statement_timeout_keeps_connection);
    RUN(test_deadlock_and_serialization_keep_connection);
    RUN(test_read_only_replaces_connection);
    RUN(test_terminated_session_replaces_connection);
    RUN(test_killed_backend_reconnects);
    RUN(test_reconnect_backoff_is_capped);
    pg_pool_close(pool, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    PQfinish(db);
    TEST_EXIT();
}
