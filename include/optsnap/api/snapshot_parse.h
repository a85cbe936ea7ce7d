/* snapshot_parse.h - one page of GET /v3/snapshot/options/{underlying} (or the
 * single-contract GET /v3/snapshot/options/{underlying}/{contract}) into
 * snapshot rows, rejects and next_url. Pure: cJSON only. */
#ifndef OPTSNAP_SNAPSHOT_PARSE_H
#define OPTSNAP_SNAPSHOT_PARSE_H

#include <stdbool.h>

#include "optsnap/api/row.h"

struct json_exact_ints;
struct json_span;

/* Grows as needed; reuse one page across calls with snapshot_page_reset().
 * All memory is owned by the page and freed by snapshot_page_free(). */
struct snapshot_page {
    struct snapshot_row *rows;
    size_t nrows, rows_cap;
    struct row_reject *rejects;
    size_t nrejects, rejects_cap;
    char *next_url;       /* malloc'd, NULL when this is the last page */
    char request_id[96];  /* from the envelope, "" when absent */
    char status[32];      /* envelope "status", e.g. "OK", "DELAYED" */
    size_t npartial;      /* rejects of kind REJECT_PARTIAL among them (each also a row) */
    /* Parser scratch, reused across calls: the exact values of nanosecond
     * timestamps, which a double cannot hold, and the byte spans of the
     * results (for the raw text of rejects). Owned by the page. */
    struct json_exact_ints *exact;
    struct json_span *spans;
    size_t spans_cap;
};

/* What the caller knows about the page it fetched. */
struct snapshot_parse_opts {
    /* The underlying requested ("" or NULL: take it from the data). A row
     * is kept when the API names this underlying (with or without "I:"), or
     * names none, or its OCC root is one of the underlying's roots
     * (roots.h); any other row is a reject. Rows carry this name. */
    const char *underlying;
    /* The key of a row without any event timestamp (unix us): the start of
     * the sweep's window. Such a row is stored with last_updated_fallback
     * set. 0: such a row is a reject ("no event timestamp"). */
    int64_t fallback_us;
};

enum parse_result {
    PARSE_OK = 0,
    PARSE_ERR_JSON = -1,     /* not JSON, truncated, not UTF-8 */
    PARSE_ERR_API = -2,      /* error envelope: status ERROR / NOT_AUTHORIZED ... */
    PARSE_ERR_SHAPE = -3,    /* JSON, but not a snapshot page (results missing/wrong type) */
    PARSE_ERR_NOMEM = -4,
};

/* Parses body[0..len). On PARSE_OK, page holds the rows (source = live) and the
 * rejects of this page, appended to what it already held. On any error, err
 * gets a one-line message naming the request_id when the API sent one, and
 * the page's rows are left as they were before the call.
 *
 * A bad value in a field that is not part of the key (a wrong type, NaN, a
 * negative price, an impossible timestamp, an unknown timeframe) costs that
 * field only: the row is kept with the field NULL, and a reject of kind
 * REJECT_PARTIAL carries the API's JSON text of the result and the first
 * reason, so `optsnap rejects --replay` can restore it. A row is rejected
 * whole only when it has no usable identity: not an object, no OCC ticker,
 * details disagreeing with the ticker, another underlying, or no event time
 * and no fallback. Timestamps are read by magnitude as s, ms, us or ns.
 * Each reject's raw is the exact text of its result, capped at
 * SNAPSHOT_REJECT_RAW_MAX bytes. */
int snapshot_page_parse_opts(struct snapshot_page *page, const char *body, size_t len,
                             const struct snapshot_parse_opts *opts, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* snapshot_page_parse_opts with {underlying, fallback_us = 0}. */
int snapshot_page_parse(struct snapshot_page *page, const char *body, size_t len,
                        const char *underlying, char *err, size_t err_size)
    __attribute__((warn_unused_result));

#define SNAPSHOT_REJECT_RAW_MAX 16384

void snapshot_page_reset(struct snapshot_page *page); /* empties, keeps capacity */
void snapshot_page_free(struct snapshot_page *page);


#endif
