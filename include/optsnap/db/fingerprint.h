/* fingerprint.h - the skip cache: a fixed-size table, slotted by ticker, of
 * 64-bit fingerprints of (ticker, last_updated, values, underlying, source) of
 * rows whose commit was confirmed, so an unchanged re-poll never reaches
 * PostgreSQL; and, in the same slot, what is known of the contract's row in
 * `options`, so known contracts skip the options statements.
 *
 * Memory is fixed at creation (16 bytes a slot, buckets of 8 slots, a ticker
 * lives in one bucket), whatever the universe: a ticker that finds its bucket
 * full evicts another (that one just misses next time). A hit means: the last
 * confirmed commit of this process for this ticker sent exactly this row.
 *
 * Ordering: a row that misses claims its ticker's slot as pending under its
 * batch's token before it is sent; a commit sets the fingerprint only if the
 * slot still holds that token. So a row sent later (a newer batch of the same
 * ticker) always wins, and a slot whose row is in flight never hits.
 *
 * Forgetting: forget_underlying when a lease changes hands (another process
 * may have written the rows), forget_all when a commit's outcome is unknown
 * (connection lost during COMMIT), after a failover, or when rows were
 * deleted behind our back (retention dropping partitions). Pure: no I/O. */
#ifndef OPTSNAP_FINGERPRINT_H
#define OPTSNAP_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/api/row.h"

#define FINGERPRINT_BUCKET_SLOTS 8
/* Default: 1M slots (16 MiB), for ~1M contracts. */
#define FINGERPRINT_DEFAULT_ENTRIES (1L * 1024 * 1024)

struct fingerprint_table;

struct fingerprint_stats {
    size_t slots;          /* capacity */
    size_t bytes;          /* memory of the table */
    uint64_t hits, misses, evictions, forgets;
    uint64_t forget_scans;         /* forgets of an underlying that walked the table */
    uint64_t contracts_known_hits; /* options statements skipped */
};

/* Creates a table of at least `entries` slots (rounded up to whole buckets,
 * at least one). Returns 0, or -1 when out of memory or entries < 1. Free
 * with fingerprint_table_free. */
int fingerprint_table_create(struct fingerprint_table **out, long entries) __attribute__((warn_unused_result));
void fingerprint_table_free(struct fingerprint_table *t);

/* The row's fingerprint: ticker, last_updated, the present mask and every
 * present value (trade conditions included), the fallback flag, the
 * underlying and the source. Never 0. */
uint64_t fingerprint_row(const struct snapshot_row *r, const char *underlying, enum row_source source);

/* True when the ticker's slot holds fp (not pending): the row is stored. */
bool fingerprint_table_hit(struct fingerprint_table *t, const char *ticker, uint64_t fp);

/* The row is about to be sent in the batch of `token` (non-zero, unique per
 * batch): claims the ticker's slot (evicting another ticker when the bucket
 * is full) as pending; it stops hitting until a commit of that token. */
void fingerprint_table_pending(struct fingerprint_table *t, const char *ticker, const char *underlying,
                               uint64_t token);

/* The batch of `token` committed with this row: sets fp if the slot is still
 * pending under that token (otherwise a newer batch owns it: nothing). */
void fingerprint_table_commit(struct fingerprint_table *t, const char *ticker, uint64_t fp, uint64_t token);

/* True when the contract is known to be in `options` with a last_seen the
 * options statements would not move for seen_us: the statements can skip it.
 * (The writer touches last_seen when it moved by WRITER_LAST_SEEN_STEP_US;
 * a contract is skipped while seen_us < the seen last committed + that step,
 * so last_seen lags the newest row by less than twice the step.) */
bool fingerprint_table_contract_known(struct fingerprint_table *t, const char *ticker, int64_t seen_us);

/* The options statements for the contract committed with seen_us. */
void fingerprint_table_contract_commit(struct fingerprint_table *t, const char *ticker, int64_t seen_us);

/* The contract's `options` knowledge is dropped (the database refused a row:
 * maybe our word that it is in `options` was wrong). */
void fingerprint_table_contract_forget(struct fingerprint_table *t, const char *ticker);

/* Drops every slot of the underlying's contracts (and, at worst, of the
 * ~1/256 of others whose underlying shares its 8-bit tag: they miss once). */
void fingerprint_table_forget_underlying(struct fingerprint_table *t, const char *underlying);

/* Drops everything. */
void fingerprint_table_forget_all(struct fingerprint_table *t);

void fingerprint_table_get_stats(const struct fingerprint_table *t, struct fingerprint_stats *out);

/* The step of the last_seen touch, in microseconds (30 minutes). */
#define WRITER_LAST_SEEN_STEP_US (INT64_C(30) * 60 * 1000000)

#endif
