/* pgtest.h - helpers for integration tests that run against the real,
 * throwaway PostgreSQL cluster scripts/test.sh starts (OPTSNAP_TEST_PGURL).
 * Every helper prints what went wrong to stderr; none of them exits. */
#ifndef OPTSNAP_PGTEST_H
#define OPTSNAP_PGTEST_H

#include <stddef.h>

#include <libpq-fe.h>

/* Exit code that tells meson a test was skipped. */
#define PGTEST_SKIP 77

/* Drops and recreates database `name` on the cluster named by
 * OPTSNAP_TEST_PGURL and writes a conninfo for it into conninfo[size]:
 * through OPTSNAP_TEST_POOLER_URL's host and port when that is set.
 * Returns 0 ok, -1 error, PGTEST_SKIP when OPTSNAP_TEST_PGURL is unset (a
 * note is printed; the caller should exit 77). */
int pgtest_fresh_db(const char *name, char *conninfo, size_t size);

/* A test's database: fresh_db, migrate, connect, TimeZone UTC. Returns 0
 * with *db set (caller PQfinish()es), PGTEST_SKIP, or 1 on failure. */
int pgtest_open_migrated(const char *name, char *conninfo, size_t size, PGconn **db);

/* Connects; returns NULL (after printing why) on failure. Caller PQfinish()es. */
PGconn *pgtest_connect(const char *conninfo);

/* Runs SQL that returns no rows or ignored rows (several statements allowed).
 * Returns 0 ok, -1 error (printed, with the SQL). */
int pgtest_exec(PGconn *conn, const char *sql);

/* Same, but an error is expected: returns 0 when the SQL failed with
 * SQLSTATE `sqlstate` (or any error when sqlstate is NULL), -1 otherwise. */
int pgtest_exec_fails(PGconn *conn, const char *sql, const char *sqlstate);

/* First column of the first row as an integer (NULL reads as 0); returns
 * LLONG_MIN and prints the error when the query fails or returns no row. */
long long pgtest_scalar(PGconn *conn, const char *sql);

/* First column of the first row as text into buf[size] ("" for NULL).
 * Returns 0 ok, -1 error or no row. */
int pgtest_text(PGconn *conn, const char *sql, char *buf, size_t size);

/* All rows' first column, joined with '\n', into buf[size] (truncated to
 * fit). For EXPLAIN output. Returns 0 ok, -1 error. */
int pgtest_lines(PGconn *conn, const char *sql, char *buf, size_t size);

/* migrate_apply() on conninfo; returns its result (0 ok). */
int pgtest_migrate(const char *conninfo);

#endif
