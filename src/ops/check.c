/* check.c - `optsnap check`: one line per start-up check (API reachable, key
 * accepted, plan entitled to chain snapshots, rate-limit headers, database
 * reachable, schema at the newest migration, the role's privileges), ok or
 * FAIL with the reason, secrets scrubbed; exit 0 when all pass, 1 otherwise. */
#include "optsnap/ops/check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>

#include "optsnap/api/api_error.h"
#include "optsnap/api/api_origin.h"
#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/config/settings.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/http/http_client.h"
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"

struct check_report {
    FILE *out; /* NULL: each line is a log line (run's start-up) */
    int failed;
};

static void check_line(struct check_report *rep, bool ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check_line(struct check_report *rep, bool ok, const char *name, const char *fmt, ...)
{
    char raw[1024], clean[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    scrub_secrets(clean, sizeof clean, raw);
    if (rep->out == NULL) {
        char n[40], d[1100];
        if (ok)
            log_info("start-up check", "check=%s result=ok detail=%s", log_quote(n, sizeof n, name),
                     log_quote(d, sizeof d, clean));
        else
            log_warn("start-up check failed", "check=%s result=FAIL detail=%s", log_quote(n, sizeof n, name),
                     log_quote(d, sizeof d, clean));
    } else {
        fprintf(rep->out, "%-14s %-4s %s\n", name, ok ? "ok" : "FAIL", clean);
        fflush(rep->out);
    }
    if (!ok)
        rep->failed++;
}

/* One GET on a private loop, run to completion. */
struct check_get {
    bool done;
    enum http_outcome outcome;
    long status;
    long ratelimit_remaining;
    char error[256];
    struct api_error api;
};

static void check_get_done(void *user, const struct http_response *resp)
{
    struct check_get *g = user;
    g->done = true;
    g->outcome = resp->outcome;
    g->status = resp->status;
    g->ratelimit_remaining = resp->ratelimit_remaining;
    snprintf(g->error, sizeof g->error, "%s", resp->error ? resp->error : "");
    api_error_parse(resp->status, resp->body, resp->body_len, &g->api);
}

static int check_http_get(uv_loop_t *loop, struct http_client *http, const char *url, struct check_get *g)
{
    memset(g, 0, sizeof *g);
    g->ratelimit_remaining = -1;
    if (http_client_get(http, url, check_get_done, g) != 0)
        return -1;
    while (!g->done && uv_run(loop, UV_RUN_ONCE) != 0) {
    }
    return g->done ? 0 : -1;
}

static void closed_cb(void *user) { *(bool *)user = true; }

/* The API checks: reachable and key (a one-contract listing), plan (one chain
 * snapshot page of the first underlying), rate-limit headers seen. */
/* The plan: one chain snapshot of the first underlying (a 403 body says why not). */
static void check_plan(struct check_report *rep, uv_loop_t *loop, struct http_client *http, const char *base,
                       const char *underlying, long *ratelimit)
{
    char url[1024];
    struct check_get g;
    snprintf(url, sizeof url, "%s/v3/snapshot/options/%s?limit=1", base, underlying);
    if (check_http_get(loop, http, url, &g) != 0 || g.status == 0) {
        check_line(rep, false, "api plan", "chain snapshot of %s: %s", underlying, g.error);
        return;
    }
    char why[512];
    if (g.ratelimit_remaining >= 0)
        *ratelimit = g.ratelimit_remaining;
    if (g.api.kind == API_ERROR_NONE)
        check_line(rep, true, "api plan", "chain snapshot of %s answered", underlying);
    else
        check_line(rep, false, "api plan", "chain snapshot of %s: %s", underlying,
                   api_error_format(&g.api, why, sizeof why));
}

static void check_api(struct check_report *rep, const struct settings *s)
{
    struct api_origin origin;
    if (api_origin_init(&origin, s->api_url) != 0) {
        check_line(rep, false, "api", "api_url '%s' is not an absolute https URL (http only on loopback)",
                   s->api_url);
        return;
    }
    if (s->api_key == NULL || s->api_key[0] == '\0')
        check_line(rep, false, "api key", "no API key (OPTSNAP_API_KEY, api_key_file or $CREDENTIALS_DIRECTORY/api_key)");

    struct universe_entry *u = NULL;
    char err[256] = "";
    int nu = settings_load_universe(s, &u, err, sizeof err);
    if (nu <= 0) {
        check_line(rep, false, "universe", "%s", nu < 0 ? err : "empty universe");
        free(u);
        u = NULL;
    }

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        check_line(rep, false, "api", "cannot start an event loop");
        free(u);
        return;
    }
    struct http_settings hs;
    http_settings_default(&hs);
    hs.concurrency = 1;
    hs.max_attempts = 1;
    hs.total_timeout_us = s->http_timeout_us;
    hs.connect_timeout_us = s->http_connect_timeout_us;
    hs.api_key = s->api_key;
    hs.ca_file = s->ca_file[0] ? s->ca_file : NULL;
    struct http_client *http = NULL;
    if (http_client_create(&http, &loop, &hs) != 0) {
        check_line(rep, false, "api", "cannot start the HTTP client");
        free(u);
        (void)uv_loop_close(&loop);
        return;
    }

    char url[1024];
    struct check_get g;
    long ratelimit = -1;
    bool key_ok = false;
    snprintf(url, sizeof url, "%s/v3/reference/options/contracts?limit=1", origin.base);
    if (check_http_get(&loop, http, url, &g) != 0) {
        check_line(rep, false, "api reachable", "request could not be started");
    } else if (g.status == 0) {
        check_line(rep, false, "api reachable", "%s: %s", origin.base, g.error);
    } else {
        char why[512];
        check_line(rep, true, "api reachable", "%s answered HTTP %ld", origin.base, g.status);
        if (g.ratelimit_remaining >= 0)
            ratelimit = g.ratelimit_remaining;
        if (g.api.kind == API_ERROR_KEY) {
            check_line(rep, false, "api key", "%s", api_error_format(&g.api, why, sizeof why));
        } else if (g.api.kind == API_ERROR_NONE || g.api.kind == API_ERROR_PLAN) {
            /* a plan without the reference data still accepted the key */
            key_ok = true;
            if (s->api_key != NULL && s->api_key[0] != '\0')
                check_line(rep, true, "api key", "accepted");
        } else {
            check_line(rep, false, "api key", "%s", api_error_format(&g.api, why, sizeof why));
        }
    }

    if (key_ok && u != NULL)
        check_plan(rep, &loop, http, origin.base, u[0].underlying, &ratelimit);
    if (key_ok) {
        if (ratelimit < 0)
            check_line(rep, true, "api rate limit", "no X-RateLimit-Remaining header (http_rate=%g)", s->http_rate);
        else
            check_line(rep, ratelimit > 0, "api rate limit", "X-RateLimit-Remaining=%ld%s", ratelimit,
                       ratelimit > 0 ? "" : ": the plan's quota is used up");
    }

    bool closed = false;
    http_client_close(http, closed_cb, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warn("event loop did not close", "command=check");
    free(u);
}

/* What `run`, `backfill` and `repair` do to each table: sql/roles.sql's
 * optsnap_writer grants, which a role passing this check holds. One row per
 * (table, privilege): has_table_privilege with a list is true when ANY of
 * them is held. */
static const char privileges_sql[] =
    "SELECT t, p, to_regclass(t) IS NOT NULL,"
    " CASE WHEN to_regclass(t) IS NULL THEN false"
    "      ELSE has_table_privilege(to_regclass(t), p) END"
    " FROM unnest($1::text[], $2::text[]) AS x(t, p)"
    " UNION ALL"
    " SELECT 'optsnap_ensure_partitions()', 'EXECUTE',"
    " to_regprocedure('optsnap_ensure_partitions(date, date)') IS NOT NULL,"
    " CASE WHEN to_regprocedure('optsnap_ensure_partitions(date, date)') IS NULL THEN false"
    "      ELSE has_function_privilege(to_regprocedure('optsnap_ensure_partitions(date, date)'), 'EXECUTE') END";

static const struct table_privileges {
    const char *table, *privileges;
} needed_privileges[] = {
    {"options", "SELECT,INSERT,UPDATE"},
    {"option_snapshots", "SELECT,INSERT,UPDATE"},
    {"ingest_coverage", "SELECT,INSERT,UPDATE"},
    {"ingest_rejects", "SELECT,INSERT"},
    {"ingest_leases", "SELECT,INSERT,UPDATE,DELETE"},
    {"ingest_lease_log", "SELECT,INSERT"},
    {"ingest_daemons", "SELECT,INSERT,UPDATE,DELETE"},
    {"schema_migrations", "SELECT"},
    {"trading_sessions", "SELECT"},
};

static void check_privileges(struct check_report *rep, PGconn *conn)
{
    /* two parallel array literals, one element per (table, privilege) */
    char tables[1024] = "{", privs[1024] = "{";
    size_t tl = 1, pl = 1;
    for (size_t i = 0; i < sizeof needed_privileges / sizeof needed_privileges[0]; i++) {
        const char *p = needed_privileges[i].privileges;
        while (*p) {
            size_t n = strcspn(p, ",");
            int a = snprintf(tables + tl, sizeof tables - tl, "%s%s", tl > 1 ? "," : "", needed_privileges[i].table);
            int b = snprintf(privs + pl, sizeof privs - pl, "%s%.*s", pl > 1 ? "," : "", (int)n, p);
            if (a < 0 || b < 0 || (size_t)a >= sizeof tables - tl || (size_t)b >= sizeof privs - pl) {
                check_line(rep, false, "privileges", "internal: privilege list too long");
                return;
            }
            tl += (size_t)a;
            pl += (size_t)b;
            p += n;
            if (*p == ',')
                p++;
        }
    }
    if (tl + 2 > sizeof tables || pl + 2 > sizeof privs) {
        check_line(rep, false, "privileges", "internal: privilege list too long");
        return;
    }
    memcpy(tables + tl, "}", 2);
    memcpy(privs + pl, "}", 2);
    const char *params[2] = {tables, privs};
    PGresult *res = PQexecParams(conn, privileges_sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[512];
        scrub_secrets(msg, sizeof msg, PQresultErrorMessage(res));
        check_line(rep, false, "privileges", "query failed: %s", msg);
        PQclear(res);
        return;
    }
    char missing[768] = "";
    size_t len = 0;
    int bad = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        bool exists = PQgetvalue(res, i, 2)[0] == 't';
        bool granted = PQgetvalue(res, i, 3)[0] == 't';
        if (exists && granted)
            continue;
        bad++;
        int n = exists ? snprintf(missing + len, sizeof missing - len, "%s%s %s (not granted)", len ? ", " : "",
                                  PQgetvalue(res, i, 0), PQgetvalue(res, i, 1))
                       : snprintf(missing + len, sizeof missing - len, "%s%s (missing)", len ? ", " : "",
                                  PQgetvalue(res, i, 0));
        /* a missing table is named once, not once per privilege */
        if (!exists && i > 0 && strcmp(PQgetvalue(res, i - 1, 0), PQgetvalue(res, i, 0)) == 0) {
            missing[len] = '\0';
            continue;
        }
        if (n > 0 && (size_t)n < sizeof missing - len)
            len += (size_t)n;
    }
    if (bad == 0)
        check_line(rep, true, "privileges", "role %s has what run, backfill and repair need", PQuser(conn));
    else
        check_line(rep, false, "privileges", "role %s: %s", PQuser(conn), missing);
    PQclear(res);
}

static void check_database(struct check_report *rep, const struct settings *s)
{
    PGconn *conn = pg_connect_blocking(s->database_url, "optsnap-check");
    if (conn == NULL) {
        check_line(rep, false, "database", "cannot connect (the log line above says why)");
        return;
    }
    check_line(rep, true, "database", "connected to %s:%s as %s (server %d)", PQhost(conn), PQport(conn),
               PQuser(conn), PQserverVersion(conn));
    if (pg_check_schema(conn) == 0)
        check_line(rep, true, "schema", "at the newest migration this binary embeds");
    else
        check_line(rep, false, "schema", "not at the newest migration: run `optsnap migrate`");
    check_privileges(rep, conn);
    PQfinish(conn);
}

int check_run(const struct settings *s, FILE *out)
{
    struct check_report rep = {.out = out};
    check_api(&rep, s);
    check_database(&rep, s);
    if (out == NULL) {
        if (rep.failed)
            log_warn("start-up checks: some failed (run goes on; `optsnap check` repeats them)", "failed=%d",
                     rep.failed);
        return rep.failed ? EXIT_RUNTIME : EXIT_OK;
    }
    fprintf(out, "check: %s (%d failed)\n", rep.failed ? "FAIL" : "ok", rep.failed);
    fflush(out);
    return rep.failed ? EXIT_RUNTIME : EXIT_OK;
}

static void check_usage(FILE *out)
{
    fprintf(out, "usage: optsnap check [--config FILE] [--<setting> VALUE ...]\n"
                 "\n"
                 "Checks, one line each (ok or FAIL and why): the API is reachable, the key is\n"
                 "accepted, the plan is entitled to chain snapshots (one request for the first\n"
                 "underlying of the universe), the rate-limit headers, the database is reachable,\n"
                 "the schema is at the newest migration, the role's privileges on the tables.\n"
                 "Exit 0 when every check passes, 1 otherwise, 2 on a usage error.\n");
}

static int check_command(struct settings *s, void *unused)
{
    (void)unused;
    char err[512] = "";
    if (settings_load_api_key(s, err, sizeof err) != 0) {
        char clean[512];
        fprintf(stdout, "%-14s %-4s %s\n", "api key", "FAIL", scrub_secrets(clean, sizeof clean, err));
        return EXIT_RUNTIME;
    }
    return check_run(s, stdout);
}

int cmd_check(int argc, char **argv)
{
    const struct cli_command c = {"check", check_usage, NULL, 0, true};
    return cli_command_run(&c, argc, argv, check_command, NULL);
}
