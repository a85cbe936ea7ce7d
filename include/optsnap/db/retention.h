/* retention.h - the `retention` setting applied: whole day partitions of
 * option_snapshots older than the window are dropped by SQL
 * optsnap_retention_apply (sql/009_history.sql), never the DEFAULT partition,
 * and their coverage is expired so gaps and repair leave those days alone.
 * Used by `optsnap retention` (history/retention.c, blocking) and by the daemon's daily
 * maintenance through its pool (retention_job_build + retention_on_tuples in
 * an engine query: no blocking call on the loop). */
#ifndef OPTSNAP_DB_RETENTION_H
#define OPTSNAP_DB_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "optsnap/config/settings.h"
#include "optsnap/db/pg_txn.h"

/* One call of optsnap_retention_apply: the statement and what it reported.
 * Self-contained (no pointer to the caller's data); stmt points into it, so
 * it must not move between build and the statement's completion. */
struct retention_job {
    char cutoff[16];  /* YYYY-MM-DD: partitions of earlier UTC days go */
    char dry_run[8];
    const char *values[2];
    struct pg_stmt stmt; /* on_tuples = retention_on_tuples, user = the job */
    int days_dropped;    /* filled by retention_on_tuples */
    int days_listed;     /* partitions older than the cutoff (dropped or, dry run / busy, not) */
    char first_day[16], last_day[16]; /* of the days listed; "" when none */
};

/* The UTC day (days since 1970-01-01) whose partition is the oldest kept when
 * `now_us` is now and `retention_us` the window: floor((now - retention) /
 * 1 day). Pure. */
int32_t retention_cutoff_day(int64_t now_us, int64_t retention_us);

/* Fills *j for now_us and the `retention` setting (s->retention_us).
 * Returns 0 when built, 1 when retention is off (0), -1 when the window is
 * shorter than 2 days (the SQL refuses to drop yesterday or today). */
int retention_job_build(struct retention_job *j, const struct settings *s, int64_t now_us, bool dry_run)
    __attribute__((warn_unused_result));

/* The statement's on_tuples: counts the days and logs one line per day
 * dropped (or, dry run, that would be dropped). `user` is the job. */
void retention_on_tuples(void *user, const void *pgresult);

/* For the daemon's daily maintenance: build the job for now (market clock)
 * and put j->stmt into an engine query of its own (nstmts = 1, user = j);
 * after it completes, j->days_dropped is the count for the metric. */

#endif
