/* batch.h - a batch of rows and rejects bound for one upsert transaction:
 * appended from parsed pages, then sorted by key and deduplicated on the
 * microsecond key (the last one wins). Pure: no I/O library. */
#ifndef OPTSNAP_BATCH_H
#define OPTSNAP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/api/row.h"
#include "optsnap/util/list.h"

struct batch {
    struct snapshot_row *rows;
    size_t nrows, rows_cap;
    struct row_reject *rejects; /* each owns its raw */
    size_t nrejects, rejects_cap;
    size_t reject_bytes;

    /* Set by the owner (the ingester); the batch module never reads them. */
    void *owner;                /* the sweep this batch belongs to */
    struct list_node link;      /* the write queue's list */
    int64_t not_before_us;      /* retry backoff: not submitted before this time */
    int attempts;
    bool final;                 /* the last batch of its sweep: may carry the coverage mark */
    bool bisected;              /* a part of a batch the database refused with a data error */
    uint64_t token;             /* the skip cache's token for this batch's rows (copied by split) */
    long skipped;               /* rows the skip cache kept out of it (reported with its commit) */
    /* The rejects' idempotency token: set by the write queue when the batch
     * is first sent, kept across its retries, never copied by a split. */
    char write_token[48];
};

/* Returns a new empty batch, or NULL when out of memory. Free with batch_free(). */
struct batch *batch_new(void);
void batch_free(struct batch *b);

/* Copies row in. Returns 0 or -1 (out of memory). */
int batch_add_row(struct batch *b, const struct snapshot_row *row) __attribute__((warn_unused_result));

/* Moves the reject in: on success the batch owns rj->raw and *rj is zeroed;
 * on failure (-1) the caller still owns it. */
int batch_add_reject(struct batch *b, struct row_reject *rj) __attribute__((warn_unused_result));

/* Sorts rows by (ticker, last_updated) and keeps the last-added row of each
 * key. Returns how many duplicates were dropped (>= 0). Never fails: when
 * out of memory it dedupes in place without allocating (slower), so no batch
 * ever reaches PostgreSQL with a key twice. */
long batch_sort_dedupe(struct batch *b) __attribute__((warn_unused_result));

/* Tests only: when true, batch_sort_dedupe behaves as if malloc failed. */
extern bool batch_test_fail_alloc;

/* Bisects: moves the second half of the rows (and no rejects) into a new
 * batch returned through *second (with owner copied). Returns 0, or -1 when
 * out of memory or when b has fewer than 2 rows. */
int batch_split(struct batch *b, struct batch **second) __attribute__((warn_unused_result));

/* In a sorted batch: the index after the last row of b->rows[i]'s contract. */
size_t batch_contract_end(const struct batch *b, size_t i);

/* Number of distinct tickers in a sorted batch. */
size_t batch_count_contracts(const struct batch *b);

#endif
