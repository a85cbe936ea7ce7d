/* pgtest.c - throwaway databases and one-line SQL helpers for integration tests. */
#include "pgtest.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/db/migrate.h"

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *pgtest_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: cannot connect: %s", conn ? PQerrorMessage(conn) : "out of memory\n");
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    return conn;
}

int pgtest_fresh_db(const char *name, char *conninfo, size_t size)
{
    const char *base = getenv("OPTSNAP_TEST_PGURL");
    if (base == NULL || base[0] == '\0') {
        fprintf(stderr, "pgtest: OPTSNAP_TEST_PGURL is not set; skipping (scripts/test.sh sets it)\n");
        return PGTEST_SKIP;
    }
    PGconn *admin = pgtest_connect(base);
    if (admin == NULL)
        return -1;
    char *ident = PQescapeIdentifier(admin, name, strlen(name));
    if (ident == NULL) {
        fprintf(stderr, "pgtest: bad database name: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return -1;
    }
    char sql[512];
    int rc = 0;
    /* WITH (FORCE) ends sessions a previous, crashed run left behind. */
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
    if (pgtest_exec(admin, sql) < 0)
        rc = -1;
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", ident);
    if (rc == 0 && pgtest_exec(admin, sql) < 0)
        rc = -1;
    PQfreemem(ident);
    PQfinish(admin);
    if (rc < 0)
        return -1;

    /* The code under test connects through the transaction pooler when one
     * is configured (scripts/test.sh --pooler); CREATE/DROP DATABASE above
     * went straight to PostgreSQL. Keep every parameter of that URL, override
     * dbname. */
    const char *target = getenv("OPTSNAP_TEST_POOLER_URL");
    if (target == NULL || target[0] == '\0')
        target = base;
    PQconninfoOption *opts = PQconninfoParse(target, NULL);
    if (opts == NULL) {
        fprintf(stderr, "pgtest: cannot parse %s\n", target == base ? "OPTSNAP_TEST_PGURL" : "OPTSNAP_TEST_POOLER_URL");
        return -1;
    }
    size_t used = 0;
    conninfo[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *val = strcmp(o->keyword, "dbname") == 0 ? name : o->val;
        if (val == NULL)
            continue;
        char quoted[512];
        size_t q = 0;
        quoted[q++] = '\'';
        for (const char *p = val; *p && q < sizeof quoted - 3; p++) {
            if (*p == '\'' || *p == '\\')
                quoted[q++] = '\\';
            quoted[q++] = *p;
        }
        quoted[q++] = '\'';
        quoted[q] = '\0';
        int n = snprintf(conninfo + used, size - used, "%s%s=%s", used ? " " : "", o->keyword, quoted);
        if (n < 0 || (size_t)n >= size - used) {
            fprintf(stderr, "pgtest: conninfo buffer too small\n");
            PQconninfoFree(opts);
            return -1;
        }
        used += (size_t)n;
    }
    PQconninfoFree(opts);
    return 0;
}

int pgtest_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgtest: SQL failed: %s  in: %.300s\n", PQresultErrorMessage(res), sql);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

int pgtest_exec_fails(PGconn *conn, const char *sql, const char *sqlstate)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = -1;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        fprintf(stderr, "pgtest: SQL succeeded but should have failed: %.300s\n", sql);
    } else {
        const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (sqlstate == NULL || (got && strcmp(got, sqlstate) == 0))
            rc = 0;
        else
            fprintf(stderr, "pgtest: SQL failed with %s, expected %s: %s", got ? got : "?", sqlstate,
                    PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}

long long pgtest_scalar(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    long long v = LLONG_MIN;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 || PQnfields(res) < 1) {
        fprintf(stderr, "pgtest: scalar query failed: %s  in: %.300s\n", PQresultErrorMessage(res), sql);
    } else {
        v = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return v;
}

int pgtest_text(PGconn *conn, const char *sql, char *buf, size_t size)
{
    PGresult *res = PQexec(conn, sql);
    int rc = -1;
    buf[0] = '\0';
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 || PQnfields(res) < 1) {
        fprintf(stderr, "pgtest: text query failed: %s  in: %.300s\n", PQresultErrorMessage(res), sql);
    } else {
        snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int pgtest_lines(PGconn *conn, const char *sql, char *buf, size_t size)
{
    PGresult *res = PQexec(conn, sql);
    buf[0] = '\0';
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgtest: query failed: %s  in: %.300s\n", PQresultErrorMessage(res), sql);
        PQclear(res);
        return -1;
    }
    size_t used = 0;
    for (int i = 0; i < PQntuples(res) && used + 1 < size; i++) {
        int n = snprintf(buf + used, size - used, "%s\n", PQgetvalue(res, i, 0));
        if (n < 0)
            break;
        used += (size_t)n < size - used ? (size_t)n : size - used - 1;
    }
    PQclear(res);
    return 0;
}

int pgtest_migrate(const char *conninfo)
{
    int applied = 0;
    return migrate_apply(conninfo, &applied);
}

int pgtest_open_migrated(const char *name, char *conninfo, size_t size, PGconn **db)
{
    *db = NULL;
    int rc = pgtest_fresh_db(name, conninfo, size);
    if (rc == PGTEST_SKIP)
        return PGTEST_SKIP;
    if (rc != 0 || pgtest_migrate(conninfo) != 0)
        return 1;
    *db = pgtest_connect(conninfo);
    if (*db == NULL || pgtest_exec(*db, "SET TimeZone = 'UTC'") != 0)
        return 1;
    return 0;
}
