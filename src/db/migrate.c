/* migrate.c - applies the embedded sql/ migrations, one transaction each, under an advisory lock. */
#include "optsnap/db/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "optsnap/commands.h"
#include "optsnap/config/settings.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"

/* ASCII "opsnap" then 1; optsnap_ensure_partitions() uses ...02. Transaction
 * scoped, so it is released by COMMIT/ROLLBACK and works through a pooler. */
#define MIGRATE_LOCK_KEY "8030045053519921153"

#define MIGRATE_LOCK_TIMEOUT "30s"

#define MIGRATE_ERR_DB (-1)
#define MIGRATE_ERR_CHECKSUM (-2)

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

/* Server NOTICEs ("relation already exists, skipping") are not events an
 * operator needs; keep them out of stderr unless debugging. */
static void migrate_notice(void *arg, const char *message)
{
    (void)arg;
    char q[512];
    log_debug("postgres notice", "text=%s", log_quote(q, sizeof q, message));
}

static void log_pg_error(const char *msg, const char *migration, PGconn *conn, const PGresult *res)
{
    char qe[512], qm[64];
    const char *text = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char clean[512];
    log_error(msg, "migration=%s sqlstate=%s error=%s", log_quote(qm, sizeof qm, migration),
              state ? state : "none", log_quote(qe, sizeof qe, scrub_secrets(clean, sizeof clean, text)));
}

/* Runs a command that returns no rows; logs and returns -1 on failure. */
static int exec_command(PGconn *conn, const char *sql, const char *migration)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_pg_error("migrate: statement failed", migration, conn, res);
        PQclear(res);
        return MIGRATE_ERR_DB;
    }
    PQclear(res);
    return 0;
}

static void rollback_quietly(PGconn *conn)
{
    PGresult *res = PQexec(conn, "ROLLBACK");
    PQclear(res);
}

/* One migration in its own transaction. Sets *did_apply when it ran the SQL. */
static int migrate_one(PGconn *conn, const struct migration *m, int *did_apply)
{
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    *did_apply = 0;

    if (exec_command(conn, "BEGIN", m->name) < 0)
        return MIGRATE_ERR_DB;
    /* The lock comes before CREATE TABLE IF NOT EXISTS: two sessions racing
     * on that DDL would otherwise collide on the catalog's unique index. */
    if (exec_command(conn, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", m->name) < 0)
        goto fail;
    /* Set after the advisory wait (a concurrent migrate may take long): a
     * migration queued behind a long query for a table lock would stall
     * every writer queued behind it, so give up and let the operator retry. */
    if (exec_command(conn, "SET LOCAL lock_timeout = '" MIGRATE_LOCK_TIMEOUT "'", m->name) < 0 ||
        exec_command(conn, create_table_sql, m->name) < 0)
        goto fail;

    const char *params[3] = {version, NULL, NULL};
    PGresult *res = PQexecParams(conn, "SELECT checksum FROM schema_migrations WHERE version = $1::integer",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_pg_error("migrate: reading schema_migrations failed", m->name, conn, res);
        PQclear(res);
        goto fail;
    }
    if (PQntuples(res) == 1) {
        const char *have = PQgetvalue(res, 0, 0);
        if (strcmp(have, m->checksum) != 0) {
            char qh[96];
            log_error("migrate: applied migration differs from this binary's copy; refusing to continue",
                      "migration=%s version=%d applied_checksum=%s embedded_checksum=%s", m->name,
                      m->version, log_quote(qh, sizeof qh, have), m->checksum);
            PQclear(res);
            rollback_quietly(conn);
            return MIGRATE_ERR_CHECKSUM;
        }
        PQclear(res);
        return exec_command(conn, "COMMIT", m->name) < 0 ? MIGRATE_ERR_DB : 0;
    }
    PQclear(res);

    if (exec_command(conn, m->sql, m->name) < 0)
        goto fail;
    params[1] = m->name;
    params[2] = m->checksum;
    res = PQexecParams(conn,
                       "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1::integer, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_pg_error("migrate: recording migration failed", m->name, conn, res);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    if (exec_command(conn, "COMMIT", m->name) < 0)
        return MIGRATE_ERR_DB;
    *did_apply = 1;
    return 0;

fail:
    rollback_quietly(conn);
    return MIGRATE_ERR_DB;
}

/* Warns when the database is ahead of this binary: an older binary must not
 * pretend to understand a newer schema silently. */
static void warn_unknown_versions(PGconn *conn)
{
    int newest = migrations_count ? migrations[migrations_count - 1].version : 0;
    char v[16];
    snprintf(v, sizeof v, "%d", newest);
    const char *params[1] = {v};
    PGresult *res = PQexecParams(conn,
                                 "SELECT count(*), max(version) FROM schema_migrations WHERE version > $1::integer",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        atoi(PQgetvalue(res, 0, 0)) > 0)
        log_warn("migrate: database has migrations this binary does not know", "count=%s newest=%s",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    PQclear(res);
}

int migrate_apply(const char *conninfo, int *applied)
{
    int count = 0;
    if (applied)
        *applied = 0;
    PGconn *conn = pg_connect_blocking(conninfo, "optsnap-migrate");
    if (conn == NULL)
        return MIGRATE_ERR_DB;
    PQsetNoticeProcessor(conn, migrate_notice, NULL);
    {
        char qd[128], qh[256];
        log_info("migrate: connected", "db=%s host=%s", log_quote(qd, sizeof qd, PQdb(conn)),
                 log_quote(qh, sizeof qh, PQhost(conn)));
    }

    int rc = 0;
    for (size_t i = 0; i < migrations_count; i++) {
        int did_apply = 0;
        rc = migrate_one(conn, &migrations[i], &did_apply);
        if (rc < 0)
            break;
        if (did_apply) {
            count++;
            log_info("migrate: applied", "migration=%s version=%d checksum=%.12s", migrations[i].name,
                     migrations[i].version, migrations[i].checksum);
        }
    }
    if (rc == 0)
        warn_unknown_versions(conn);
    PQfinish(conn);
    if (applied)
        *applied = count;
    return rc;
}

static void migrate_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap migrate [--database-url URL]\n\n"
            "Applies the schema migrations compiled into this binary that the database\n"
            "lacks, each in its own transaction under an advisory lock; safe to run\n"
            "concurrently and repeatedly. Refuses to run when an applied migration's\n"
            "checksum differs from the embedded one.\n\n"
            "  --database-url URL  libpq URL or conninfo (default: $DATABASE_URL, then\n"
            "                      libpq's PG* variables and ~/.pgpass)\n"
            "  --help              this text\n\n"
            "exit codes: 0 ok, 1 database error or checksum mismatch, 2 usage error\n");
}

int cmd_migrate(int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            migrate_usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--database-url") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "optsnap migrate: --database-url needs a value\n");
                migrate_usage(stderr);
                return EXIT_USAGE;
            }
            url = settings_hide_argv_password(argv[++i]);
        } else if (strncmp(a, "--database-url=", 15) == 0) {
            url = settings_hide_argv_password(argv[i] + 15);
        } else {
            fprintf(stderr, "optsnap migrate: unknown argument '%s'\n", a);
            migrate_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (url == NULL)
        url = getenv("DATABASE_URL");
    if (url == NULL)
        url = "";
    settings_register_conninfo_secret(url);

    int applied = 0;
    int rc = migrate_apply(url, &applied);
    if (rc == MIGRATE_ERR_CHECKSUM) {
        log_error("migrate: checksum mismatch: an applied migration was edited after it ran; "
                  "restore the original file and put the change in a new migration",
                  "applied=%d", applied);
        return EXIT_RUNTIME;
    }
    if (rc < 0) {
        log_error("migrate: failed", "applied=%d", applied);
        return EXIT_RUNTIME;
    }
    log_info("migrate: done", "applied=%d known=%zu", applied, migrations_count);
    return EXIT_OK;
}
