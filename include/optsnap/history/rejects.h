/* rejects.h - the dead letter (ingest_rejects): `optsnap rejects` lists it,
 * `optsnap rejects --replay` runs each stored raw row through today's
 * snapshot parser and writes what now parses, each reject in its own
 * transaction that also marks it replayed, so a reject is replayed exactly
 * once (notes/decisions.md, "Partial rows, fallback keys and replay").
 * Wraps libpq, blocking: a one-shot command, never on the ingester's loop. */
#ifndef OPTSNAP_REJECTS_H
#define OPTSNAP_REJECTS_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Which rejects. Text filters are NULL for "any". */
struct rejects_filter {
    int64_t since_us, until_us; /* received_at in [since, until); 0 = unbounded */
    const char *reason;         /* substring of the reason, case-insensitive */
    const char *kind;           /* "reject", "partial", "refused" */
    const char *underlying;
    long limit;                 /* 0 = no limit */
    bool include_replayed;      /* listing only: also those already replayed */
};

/* What a replay did. Every reject examined lands in exactly one of the
 * outcome counters. */
struct replay_counts {
    long examined;
    long written;        /* the row was inserted or changed */
    long unchanged;      /* the row was already there as parsed (a later poll wrote it) */
    long partial;        /* written, but still with fields dropped (a new partial reject keeps them) */
    long still_rejected; /* today's parser still makes no row of it, or the same partial */
    long failed;         /* the database refused the row again (its transaction rolled back) */
};

/* Replays the rejects matching f (replayed_at IS NULL, oldest first) on
 * conn (idle). statement_timeout_us applies per transaction (0 = server
 * default). With dry_run nothing is written: the counts say what would be.
 * Returns 0, or -1 with a message in err when the database cannot be used
 * (a failing row is counted, not an error). */
int rejects_replay(PGconn *conn, const struct rejects_filter *f, int64_t statement_timeout_us, bool dry_run,
                   struct replay_counts *out, char *err, size_t err_size) __attribute__((warn_unused_result));

#endif
