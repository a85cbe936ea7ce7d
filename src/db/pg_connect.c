/* pg_connect.c - the blocking start-up connection, its error logging and the schema check. */
#include "optsnap/db/pg_connect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/db/migrate.h"
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"

static void log_text(const char *msg, const char *state, const char *text)
{
    char clean[512], q[600];
    scrub_secrets(clean, sizeof clean, text ? text : "");
    size_t n = strlen(clean);
    while (n > 0 && clean[n - 1] == ' ') /* libpq ends its messages with a newline */
        clean[--n] = '\0';
    log_error(msg, "sqlstate=%s error=%s", state && state[0] ? state : "none", log_quote(q, sizeof q, clean));
}

void pg_log_error(const char *msg, PGconn *conn, const PGresult *res)
{
    const char *text = res ? PQresultErrorMessage(res) : NULL;
    if (text == NULL || text[0] == '\0')
        text = conn ? PQerrorMessage(conn) : "out of memory";
    log_text(msg, res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL, text);
}

PGconn *pg_connect_blocking(const char *conninfo, const char *application_name)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo ? conninfo : "", application_name, "10", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        pg_log_error("cannot connect to the database", c, NULL);
        PQfinish(c);
        return NULL;
    }
    return c;
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
