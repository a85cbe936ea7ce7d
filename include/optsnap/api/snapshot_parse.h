/* snapshot_parse.h - one page of GET /v3/snapshot/options/{underlying} (or the
 * single-contract GET /v3/snapshot/options/{underlying}/{contract}) into
 * snapshot rows, rejects and next_url. Pure: cJSON only. */
#ifndef OPTSNAP_SNAPSHOT_PARSE_H
#define OPTSNAP_SNAPSHOT_PARSE_H

#include "optsnap/api/row.h"

struct json_exact_ints;

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
    /* Parser scratch, reused across calls: the exact values of nanosecond
     * timestamps, which a double cannot hold. Owned by the page. */
    struct json_exact_ints *exact;
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
 * `underlying` is the one requested ("" to take it from the data); a row of
 * another underlying is a reject. */
int snapshot_page_parse(struct snapshot_page *page, const char *body, size_t len,
                        const char *underlying, char *err, size_t err_size)
    __attribute__((warn_unused_result));

void snapshot_page_reset(struct snapshot_page *page); /* empties, keeps capacity */
void snapshot_page_free(struct snapshot_page *page);

/* Nanoseconds since epoch -> microseconds, truncated. */
static inline int64_t ns_to_us(int64_t ns) { return ns / 1000; }

#endif
