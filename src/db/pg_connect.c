/* pg_connect.c - the blocking start-up connection, its error logging, its retry and the schema check. */
#include "optsnap/db/pg_connect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "optsnap/config/settings.h"
#include "optsnap/db/migrate.h"
#include "optsnap/util/backoff.h"
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"
#include "optsnap/util/timeutil.h"

/* The error text of res (or else of conn), scrubbed, without libpq's trailing newline. */
static const char *error_text(char *clean, size_t size, PGconn *conn, const PGresult *res)
{
    const char *text = res ? PQresultErrorMessage(res) : NULL;
    if (text == NULL || text[0] == '\0')
        text = conn ? PQerrorMessage(conn) : "out of memory";
    scrub_secrets(clean, size, text ? text : "");
    size_t n = strlen(clean);
    while (n > 0 && (clean[n - 1] == ' ' || clean[n - 1] == '\n'))
        clean[--n] = '\0';
    return clean;
}

void pg_log_error(const char *msg, PGconn *conn, const PGresult *res)
{
    char clean[512], q[600];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    log_error(msg, "sqlstate=%s error=%s", state && state[0] ? state : "none",
              log_quote(q, sizeof q, error_text(clean, sizeof clean, conn, res)));
}

PGconn *pg_connect_blocking(const char *conninfo, const char *application_name)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo ? conninfo : "", application_name, "10", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char masked[SETTING_STR_MAX], qd[SETTING_STR_MAX + 8], clean[512], qe[600];
        settings_mask_conninfo(vals[0], masked, sizeof masked);
        log_error("cannot connect to the database", "database=%s sqlstate=none error=%s",
                  log_quote(qd, sizeof qd, masked[0] ? masked : "(libpq defaults)"),
                  log_quote(qe, sizeof qe, error_text(clean, sizeof clean, c, NULL)));
        PQfinish(c);
        return NULL;
    }
    return c;
}

PGresult *pg_exec_in_txn(PGconn *conn, bool read_only, int64_t timeout_us, const char *sql, int nparams,
                         const char *const *values)
{
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%lldms", (long long)(timeout_us / 1000));
    const char *tv[1] = {timeout};
    PGresult *res = read_only ? PQexec(conn, "BEGIN READ ONLY") : PQexec(conn, "BEGIN");
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        res = PQexecParams(conn, "SELECT set_config('statement_timeout', $1, true)", 1, NULL, tv, NULL, NULL, 0);
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        PQclear(res);
        res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
    }
    return res;
}

int pg_check_schema(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("the schema is missing: run `optsnap migrate` first", "sqlstate=%s",
                  PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "none");
        PQclear(res);
        return -1;
    }
    int have = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    int want = migrations_count ? migrations[migrations_count - 1].version : 0;
    if (have < want) {
        log_error("the schema is older than this binary: run `optsnap migrate` first", "schema_version=%d needed=%d",
                  have, want);
        return -1;
    }
    return 0;
}

int pg_startup_retry(const char *what, pg_startup_fn attempt, void *user, int64_t max_backoff_us)
{
    bool reached = false;
    int64_t deadline = 0;
    for (int n = 0;; n++) {
        bool connected = false, lost = false;
        if (attempt(user, &connected, &lost) == 0)
            return 0;
        reached = reached || connected;
        if (!(lost || (reached && !connected)))
            return -1;
        int64_t now = time_now_us();
        if (deadline == 0)
            deadline = now + PG_STARTUP_RETRY_US;
        if (now >= deadline)
            return -1;
        int64_t wait = backoff_full_jitter_us(n, 200000, max_backoff_us);
        if (wait > deadline - now)
            wait = deadline - now;
        log_warn("lost the database: trying again", "phase=%s attempt=%d wait_ms=%lld", what, n + 1,
                 (long long)(wait / 1000));
        struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (long)(wait % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}
