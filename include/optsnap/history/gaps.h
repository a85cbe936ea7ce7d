/* gaps.h - missing cadence windows per underlying (sql/003_gaps.sql's
 * optsnap_gaps). Wraps libpq, blocking: for short commands (gaps, repair,
 * backfill start-up), never on the ingester's loop. */
#ifndef OPTSNAP_GAPS_H
#define OPTSNAP_GAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "optsnap/config/settings.h"

/* Cap on the ranges one query returns: a result beyond it is an error (narrow
 * the range or the universe), never a silently cut list. */
#define GAPS_MAX_RANGES 1000000

/* One run of consecutive missing windows [start_us, end_us) of one
 * underlying, inside one stretch of sessions: end_us - start_us =
 * windows * cadence. Times are unix epoch microseconds. */
struct gap_range {
    char underlying[16];
    int64_t start_us;
    int64_t end_us;
    int windows;
};

/* What gaps_query returns. `ranges` is malloc'd (count entries, ordered by
 * underlying then start); gap_list_free() frees it. */
struct gap_list {
    struct gap_range *ranges;
    size_t count;
    int64_t total_windows;
};

/* What to look for: the expected windows of `calendar` ("us-options",
 * "always") at `cadence_us` in [from_us, to_us), for `underlyings`. Windows
 * ending after `horizon_us` are not gaps (0 = the database's now()). */
struct gap_request {
    const char *calendar;
    int64_t cadence_us;
    int64_t from_us;
    int64_t to_us;
    int64_t horizon_us;
    const struct universe_entry *underlyings;
    size_t underlying_count;
    int64_t statement_timeout_us; /* SET LOCAL for the query; 0 = server default */
};

/* The request of a command over [from_us, to_us) for u[0..n): calendar,
 * cadence and statement_timeout from the settings, no horizon. */
struct gap_request gap_request_of(const struct settings *s, int64_t from_us, int64_t to_us,
                                  const struct universe_entry *u, size_t n);

/* Runs optsnap_gaps in one transaction on `conn` (idle, not in a
 * transaction). On success returns 0 and fills *out (caller frees with
 * gap_list_free). On failure returns GAPS_ERR_DB (logged with SQLSTATE),
 * GAPS_ERR_REQUEST (a bad calendar range or cadence: SQLSTATE 22023, the
 * message written to err) or GAPS_ERR_TOO_MANY; *out is then empty. */
#define GAPS_ERR_DB (-1)
#define GAPS_ERR_REQUEST (-2)
#define GAPS_ERR_TOO_MANY (-3)
int gaps_query(PGconn *conn, const struct gap_request *req, struct gap_list *out, char *err,
               size_t err_size) __attribute__((warn_unused_result));

void gap_list_free(struct gap_list *list);

/* `optsnap gaps ...`; returns the process exit code (enum exit_code). */
int cmd_gaps(int argc, char **argv);

#endif
