/* fuzz_snapshot.c - libFuzzer harness for snapshot_page_parse: any bytes as an
 * options-chain snapshot page, parsed twice into one page (append + reuse).
 * Built by scripts/fuzz.sh; tests/unit/test_fuzz_regressions.c includes it
 * with FUZZ_ENTRY renamed to replay the corpus and regression inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/log.h"
#include "optsnap/api/snapshot_parse.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    log_set_level(LOG_LEVEL_OFF);
    /* An exact-size heap copy: ASan then catches any read past the body,
     * which the parser must never do (it takes a length, not a C string). */
    char *body = malloc(size ? size : 1);
    if (body == NULL)
        return 0;
    if (size)
        memcpy(body, data, size);

    struct snapshot_page page;
    memset(&page, 0, sizeof page);
    char err[256];
    /* "" takes the underlying from the data; "AAPL" exercises the
     * other-underlying reject path with the same bytes. */
    static const char *const underlyings[] = {"", "AAPL"};
    for (size_t k = 0; k < 2; k++) {
        size_t before = page.nrows;
        err[0] = '\0';
        int rc = snapshot_page_parse(&page, body, size, underlyings[k], err, sizeof err);
        if (rc != PARSE_OK) {
            /* The documented contract: an error leaves the rows alone and
             * says why. */
            if (page.nrows != before || err[0] == '\0' || rc < PARSE_ERR_NOMEM)
                abort();
        } else if (page.nrows < before || page.nrows > page.rows_cap) {
            abort();
        }
        if (memchr(page.request_id, '\0', sizeof page.request_id) == NULL ||
            memchr(page.status, '\0', sizeof page.status) == NULL)
            abort();
    }
    snapshot_page_reset(&page);
    if (page.nrows != 0)
        abort();
    snapshot_page_free(&page);
    free(body);
    return 0;
}
