/* test_migrate.c - `optsnap migrate` against a real PostgreSQL: empty
 * database, idempotence, concurrent runs, checksum refusal, rollback of a
 * failed migration, and the command's exit codes. */
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "optsnap/db/migrate.h"
#include "pgtest.h"
#include "test.h"

extern char **environ;

static const char *const expected_tables[] = {
    "options", "option_snapshots", "option_snapshots_default", "ingest_coverage",
    "ingest_rejects", "ingest_leases", "trading_calendars", "trading_holidays",
    "trading_sessions", "schema_migrations",
};

/* A fresh database per test; exits 77 when no cluster is configured. */
static PGconn *fresh(const char *name, char *conninfo, size_t size)
{
    int rc = pgtest_fresh_db(name, conninfo, size);
    if (rc == PGTEST_SKIP)
        exit(PGTEST_SKIP);
    if (rc != 0) {
        fprintf(stderr, "cannot create database %s\n", name);
        exit(1);
    }
    PGconn *conn = pgtest_connect(conninfo);
    if (conn == NULL)
        exit(1);
    return conn;
}

static int table_exists(PGconn *conn, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT (to_regclass('public.%s') IS NOT NULL)::int", table);
    return pgtest_scalar(conn, sql) == 1;
}

static void test_migrate_empty_database(void)
{
    char ci[1024];
    PGconn *conn = fresh("optsnap_it_migrate_empty", ci, sizeof ci);
    CHECK(migrations_count >= 2);
    int applied = -1;
    CHECK_INT(migrate_apply(ci, &applied), 0);
    CHECK_INT(applied, (long long)migrations_count);
    for (size_t i = 0; i < sizeof expected_tables / sizeof expected_tables[0]; i++) {
        if (!table_exists(conn, expected_tables[i])) {
            fprintf(stderr, "  missing table %s\n", expected_tables[i]);
            CHECK(0);
        }
    }
    CHECK_INT(pgtest_scalar(conn, "SELECT count(*) FROM schema_migrations"), (long long)migrations_count);
    for (size_t i = 0; i < migrations_count; i++) {
        char sql[256], got[128];
        snprintf(sql, sizeof sql, "SELECT name || ' ' || checksum FROM schema_migrations WHERE version = %d",
                 migrations[i].version);
        char want[160];
        snprintf(want, sizeof want, "%s %s", migrations[i].name, migrations[i].checksum);
        CHECK_INT(pgtest_text(conn, sql, got, sizeof got), 0);
        CHECK_STR(got, want);
        CHECK_INT(strlen(migrations[i].checksum), 64);
    }
    /* Migration 001 pre-creates today's partition. */
    CHECK_INT(pgtest_scalar(conn,
                            "SELECT (to_regclass('option_snapshots_p' || "
                            "to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD')) IS NOT NULL)::int"),
              1);
    PQfinish(conn);
}

static void test_migrate_twice_changes_nothing(void)
{
    char ci[1024];
    PGconn *conn = fresh("optsnap_it_migrate_twice", ci, sizeof ci);
    int applied = -1;
    CHECK_INT(migrate_apply(ci, &applied), 0);
    CHECK_INT(applied, (long long)migrations_count);
    const char *fingerprint_sql =
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "         WHERE n.nspname = 'public') * 1000000"
        " + (SELECT count(*) FROM trading_sessions) * 10"
        " + (SELECT count(*) FROM schema_migrations)";
    long long before = pgtest_scalar(conn, fingerprint_sql);
    char at_before[64], at_after[64];
    CHECK_INT(pgtest_text(conn, "SELECT max(applied_at)::text FROM schema_migrations", at_before, sizeof at_before), 0);
    CHECK_INT(migrate_apply(ci, &applied), 0);
    CHECK_INT(applied, 0);
    CHECK_INT(pgtest_scalar(conn, fingerprint_sql), before);
    CHECK_INT(pgtest_text(conn, "SELECT max(applied_at)::text FROM schema_migrations", at_after, sizeof at_after), 0);
    CHECK_STR(at_after, at_before);
    PQfinish(conn);
}

struct migrate_thread {
    pthread_t thread;
    const char *conninfo;
    int rc;
    int applied;
};

static void *migrate_thread_main(void *arg)
{
    struct migrate_thread *t = arg;
    t->rc = migrate_apply(t->conninfo, &t->applied);
    return NULL;
}

static void test_migrate_concurrent_runs(void)
{
    char ci[1024];
    PGconn *conn = fresh("optsnap_it_migrate_concurrent", ci, sizeof ci);
    struct migrate_thread t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct migrate_thread){.conninfo = ci, .rc = 99, .applied = -1};
        CHECK_INT(pthread_create(&t[i].thread, NULL, migrate_thread_main, &t[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i].thread, NULL);
        CHECK_INT(t[i].rc, 0);
        total += t[i].applied;
    }
    /* Each migration ran exactly once, whichever thread ran it. */
    CHECK_INT(total, (long long)migrations_count);
    CHECK_INT(pgtest_scalar(conn, "SELECT count(*) FROM schema_migrations"), (long long)migrations_count);
    CHECK_INT(pgtest_scalar(conn, "SELECT count(DISTINCT version) FROM schema_migrations"),
              (long long)migrations_count);
    CHECK_INT(pgtest_scalar(conn, "SELECT count(*) FROM trading_holidays WHERE day = '2025-01-09'"), 1);
    PQfinish(conn);
}

static void test_migrate_refuses_changed_checksum(void)
{
    char ci[1024];
    PGconn *conn = fresh("optsnap_it_migrate_checksum", ci, sizeof ci);
    int applied = -1;
    CHECK_INT(migrate_apply(ci, &applied), 0);
    CHECK_INT(pgtest_exec(conn, "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1"), 0);
    CHECK_INT(migrate_apply(ci, &applied), -2);
    CHECK_INT(applied, 0);
    /* The refusal changed nothing. */
    CHECK_INT(pgtest_scalar(conn, "SELECT count(*) FROM schema_migrations WHERE checksum = 'x'"), 1);
    /* A later version's mismatch is also caught, after the earlier ones pass. */
    char fix[256];
    snprintf(fix, sizeof fix, "UPDATE schema_migrations SET checksum = '%s' WHERE version = 1",
             migrations[0].checksum);
    CHECK_INT(pgtest_exec(conn, fix), 0);
    snprintf(fix, sizeof fix, "UPDATE schema_migrations SET checksum = 'z' WHERE version = %d",
             migrations[migrations_count - 1].version);
    CHECK_INT(pgtest_exec(conn, fix), 0);
    CHECK_INT(migrate_apply(ci, &applied), -2);
    PQfinish(conn);
}

static void test_migrate_failure_rolls_back(void)
{
    char ci[1024];
    PGconn *conn = fresh("optsnap_it_migrate_rollback", ci, sizeof ci);
    /* A conflicting table makes 001 fail halfway through its SQL. */
    CHECK_INT(pgtest_exec(conn, "CREATE TABLE ingest_coverage (x int)"), 0);
    int applied = -1;
    CHECK_INT(migrate_apply(ci, &applied), -1);
    CHECK_INT(applied, 0);
    CHECK(!table_exists(conn, "options"));
    CHECK(!table_exists(conn, "option_snapshots"));
    /* Even schema_migrations went: it was created in the same transaction. */
    CHECK(!table_exists(conn, "schema_migrations"));
    /* Once the obstacle is gone, the same run succeeds. */
    CHECK_INT(pgtest_exec(conn, "DROP TABLE ingest_coverage"), 0);
    CHECK_INT(migrate_apply(ci, &applied), 0);
    CHECK_INT(applied, (long long)migrations_count);
    PQfinish(conn);
}

static void test_migrate_unreachable_database(void)
{
    int applied = -1;
    CHECK_INT(migrate_apply("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2", &applied), -1);
    CHECK_INT(applied, 0);
}

/* Runs `$OPTSNAP_BIN migrate args...` and returns its exit code, or -1. */
static int run_cli(char *const extra_args[], const char *database_url_env)
{
    const char *bin = getenv("OPTSNAP_BIN");
    if (bin == NULL)
        return -1;
    char *argv[8] = {(char *)bin, "migrate"};
    int n = 2;
    for (int i = 0; extra_args && extra_args[i] && n < 7; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    if (database_url_env)
        setenv("DATABASE_URL", database_url_env, 1);
    else
        unsetenv("DATABASE_URL");
    pid_t pid;
    if (posix_spawn(&pid, bin, NULL, NULL, argv, environ) != 0)
        return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void test_migrate_command_exit_codes(void)
{
    if (getenv("OPTSNAP_BIN") == NULL) {
        fprintf(stderr, "  OPTSNAP_BIN unset; command not tested\n");
        return;
    }
    char ci[1024];
    PGconn *conn = fresh("optsnap_it_migrate_cli", ci, sizeof ci);
    char *help[] = {"--help", NULL};
    char *bad[] = {"--no-such-flag", NULL};
    char *missing[] = {"--database-url", NULL};
    char *with_url[] = {"--database-url", ci, NULL};
    CHECK_INT(run_cli(help, NULL), 0);
    CHECK_INT(run_cli(bad, NULL), 2);
    CHECK_INT(run_cli(missing, NULL), 2);
    CHECK_INT(run_cli(with_url, NULL), 0);
    CHECK_INT(pgtest_scalar(conn, "SELECT count(*) FROM schema_migrations"), (long long)migrations_count);
    /* DATABASE_URL is used when no flag is given; a second run is a no-op. */
    CHECK_INT(run_cli(NULL, ci), 0);
    /* Neither flag nor DATABASE_URL: libpq's PG* variables decide. */
    char ci_env[1024];
    PGconn *conn_env = fresh("optsnap_it_migrate_cli_env", ci_env, sizeof ci_env);
    PQconninfoOption *opts = PQconninfoParse(ci_env, NULL);
    CHECK(opts != NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (o->val && o->envvar && (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "port") == 0 ||
                                    strcmp(o->keyword, "user") == 0 || strcmp(o->keyword, "dbname") == 0))
            setenv(o->envvar, o->val, 1);
    }
    PQconninfoFree(opts);
    CHECK_INT(run_cli(NULL, NULL), 0);
    CHECK_INT(pgtest_scalar(conn_env, "SELECT count(*) FROM schema_migrations"), (long long)migrations_count);
    unsetenv("PGHOST");
    unsetenv("PGPORT");
    unsetenv("PGUSER");
    unsetenv("PGDATABASE");
    PQfinish(conn_env);
    CHECK_INT(pgtest_exec(conn, "UPDATE schema_migrations SET checksum = 'x' WHERE version = 2"), 0);
    CHECK_INT(run_cli(with_url, NULL), 1);
    char *unreachable[] = {"--database-url", "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2", NULL};
    CHECK_INT(run_cli(unreachable, NULL), 1);
    unsetenv("DATABASE_URL");
    PQfinish(conn);
}

int main(void)
{
    if (getenv("OPTSNAP_TEST_PGURL") == NULL) {
        fprintf(stderr, "OPTSNAP_TEST_PGURL is not set; skipping (scripts/test.sh sets it)\n");
        return PGTEST_SKIP;
    }
    RUN(test_migrate_empty_database);
    RUN(test_migrate_twice_changes_nothing);
    RUN(test_migrate_concurrent_runs);
    RUN(test_migrate_refuses_changed_checksum);
    RUN(test_migrate_failure_rolls_back);
    RUN(test_migrate_unreachable_database);
    RUN(test_migrate_command_exit_codes);
    TEST_EXIT();
}
