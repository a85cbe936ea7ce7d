/* fuzz_flat_csv.c - libFuzzer harness for the flat files' streaming CSV
 * parser: the bytes are fed whole, then again split at a point the first
 * byte chooses and one byte at a time for the first 64; the three parses
 * must agree on the bars and rejects they hand over, and every bar must be
 * a consistent one. Built by scripts/fuzz.sh; tests/unit/test_fuzz_regressions.c
 * includes it with FUZZ_ENTRY renamed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/flat_csv.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

struct fuzz_flat_tally {
    long bars, rejects;
    double sum; /* of the bars' fields: the parses must hand over the same values */
};

static int fuzz_flat_bar(void *user, const char *ticker, const struct agg_bar *b)
{
    struct fuzz_flat_tally *t = user;
    if (ticker[0] == '\0' || !(b->low <= b->high) || !(b->volume >= 0) || !isfinite(b->open) || !isnan(b->vwap))
        abort(); /* the parser let an inconsistent bar through */
    t->bars++;
    t->sum += b->open + b->close + b->volume + (double)(b->start_ms % 1000003) + (double)strlen(ticker);
    return 0;
}

static int fuzz_flat_reject(void *user, long line_no, const char *reason, const char *text, size_t len)
{
    struct fuzz_flat_tally *t = user;
    if (line_no < 1 || reason == NULL || (len > 0 && text == NULL) || len > FLAT_CSV_LINE_MAX)
        abort();
    t->rejects++;
    return 0;
}

static int fuzz_flat_parse(const uint8_t *data, size_t size, size_t cut, size_t bytewise, struct fuzz_flat_tally *t)
{
    struct flat_csv p;
    flat_csv_init(&p, fuzz_flat_bar, fuzz_flat_reject, t);
    size_t off = 0;
    for (; off < bytewise && off < size; off++)
        if (flat_csv_feed(&p, (const char *)data + off, 1) != 0)
            return -1;
    if (cut > off && cut < size) {
        if (flat_csv_feed(&p, (const char *)data + off, cut - off) != 0)
            return -1;
        off = cut;
    }
    if (flat_csv_feed(&p, (const char *)data + off, size - off) != 0)
        return -1;
    return flat_csv_finish(&p);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    struct fuzz_flat_tally a = {0}, b = {0}, c = {0};
    int ra = fuzz_flat_parse(data, size, 0, 0, &a);
    int rb = fuzz_flat_parse(data, size, size ? (size_t)data[0] * size / 256 : 0, 0, &b);
    int rc = fuzz_flat_parse(data, size, 0, 64, &c);
    if (ra != rb || ra != rc || a.bars != b.bars || a.bars != c.bars || a.rejects != b.rejects ||
        a.rejects != c.rejects || memcmp(&a.sum, &b.sum, sizeof a.sum) != 0 || memcmp(&a.sum, &c.sum, sizeof a.sum) != 0)
        abort(); /* the chunking changed the result */
    return 0;
}
