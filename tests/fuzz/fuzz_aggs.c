/* fuzz_aggs.c - libFuzzer harness for the history/reference page parsers:
 * the same bytes go to aggs_page_parse (bars) and contracts_page_parse
 * (the contracts listing), each twice into one reused page.
 * Built by scripts/fuzz.sh; tests/unit/test_fuzz_regressions.c includes it
 * with FUZZ_ENTRY renamed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/aggs_parse.h"
#include "optsnap/util/log.h"
#include "optsnap/api/reference_parse.h"
#include "optsnap/api/snapshot_parse.h" /* enum parse_result */

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    log_set_level(LOG_LEVEL_OFF);
    char *body = malloc(size ? size : 1); /* exact size: over-reads show */
    if (body == NULL)
        return 0;
    if (size)
        memcpy(body, data, size);
    char err[256];

    struct aggs_page aggs;
    memset(&aggs, 0, sizeof aggs);
    for (int k = 0; k < 2; k++) {
        err[0] = '\0';
        int rc = aggs_page_parse(&aggs, body, size, err, sizeof err);
        if (rc != PARSE_OK && (err[0] == '\0' || rc < PARSE_ERR_NOMEM))
            abort();
        if (rc == PARSE_OK) {
            /* The header promises bad bars fail the page: none may get through. */
            for (size_t i = 0; i < aggs.nbars; i++) {
                const struct agg_bar *b = &aggs.bars[i];
                if (!isfinite(b->open) || !isfinite(b->high) || !isfinite(b->low) ||
                    !isfinite(b->close) || !isfinite(b->volume) || b->volume < 0 ||
                    b->high < b->low)
                    abort();
            }
        }
        if (memchr(aggs.ticker, '\0', sizeof aggs.ticker) == NULL ||
            memchr(aggs.request_id, '\0', sizeof aggs.request_id) == NULL)
            abort();
    }
    aggs_page_reset(&aggs);
    aggs_page_free(&aggs);

    struct contracts_page contracts;
    memset(&contracts, 0, sizeof contracts);
    for (int k = 0; k < 2; k++) {
        err[0] = '\0';
        int rc = contracts_page_parse(&contracts, body, size, err, sizeof err);
        if (rc != PARSE_OK && (err[0] == '\0' || rc < PARSE_ERR_NOMEM))
            abort();
        if (contracts.ncontracts > contracts.contracts_cap && contracts.contracts_cap != 0)
            abort();
    }
    contracts_page_reset(&contracts);
    contracts_page_free(&contracts);
    free(body);
    return 0;
}
