/* aggs_parse.h - one page of GET /v2/aggs/ticker/{ticker}/range/... into bars. Pure. */
#ifndef OPTSNAP_AGGS_PARSE_H
#define OPTSNAP_AGGS_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct agg_bar {
    int64_t start_ms; /* "t": bar start, unix ms */
    double open, high, low, close;
    double volume;    /* "v" */
    double vwap;      /* "vw", NAN when absent */
    int64_t trades;   /* "n", -1 when absent */
};

struct aggs_page {
    struct agg_bar *bars;
    size_t nbars, bars_cap;
    char *next_url;      /* malloc'd or NULL */
    char request_id[96];
    char ticker[40];
};

/* Same error contract as snapshot_page_parse (enum parse_result). A bar with
 * bad values (NaN, negative volume, high < low, ...) fails the page with a
 * message: bars are history, a partial day would be a silent hole. */
int aggs_page_parse(struct aggs_page *page, const char *body, size_t len, char *err,
                    size_t err_size) __attribute__((warn_unused_result));
void aggs_page_reset(struct aggs_page *page);
void aggs_page_free(struct aggs_page *page);

#endif
