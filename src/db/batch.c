/* batch.c - rows and rejects for one transaction; sort by key and dedupe. */
#include "optsnap/db/batch.h"

#include "optsnap/util/array.h"

#include <stdlib.h>
#include <string.h>

struct batch *batch_new(void) { return calloc(1, sizeof(struct batch)); }

void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nrejects; i++)
        row_reject_clear(&b->rejects[i]);
    free(b->rejects);
    free(b->rows);
    free(b);
}

int batch_add_row(struct batch *b, const struct snapshot_row *row)
{
    if (array_reserve((void **)&b->rows, &b->rows_cap, b->nrows + 1, sizeof *b->rows))
        return -1;
    b->rows[b->nrows++] = *row;
    return 0;
}

int batch_add_reject(struct batch *b, struct row_reject *rj)
{
    if (array_reserve((void **)&b->rejects, &b->rejects_cap, b->nrejects + 1, sizeof *b->rejects))
        return -1;
    b->reject_bytes += rj->raw_len;
    b->rejects[b->nrejects++] = *rj;
    memset(rj, 0, sizeof *rj);
    return 0;
}

static int cmp_index(const void *pa, const void *pb, void *ctx)
{
    const struct snapshot_row *rows = ctx;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    int c = strcmp(rows[ia].contract.ticker, rows[ib].contract.ticker);
    if (c)
        return c;
    if (rows[ia].last_updated_us != rows[ib].last_updated_us)
        return rows[ia].last_updated_us < rows[ib].last_updated_us ? -1 : 1;
    return ia < ib ? -1 : ia > ib; /* insertion order: stable */
}

bool batch_test_fail_alloc;

static int cmp_row_key(const void *pa, const void *pb)
{
    const struct snapshot_row *a = pa, *b = pb;
    int c = strcmp(a->contract.ticker, b->contract.ticker);
    if (c)
        return c;
    return a->last_updated_us < b->last_updated_us ? -1 : a->last_updated_us > b->last_updated_us;
}

/* The out-of-memory path: no allocation. A row is dropped when a later row has
 * its key (so the last one wins, as on the fast path), in O(n^2) compares;
 * then the keys are unique and an in-place sort needs no stability. A batch
 * that kept its duplicates would fail whole with 21000 (ON CONFLICT cannot
 * touch a row twice). */
static long dedupe_in_place(struct batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nrows; i++) {
        bool later = false;
        for (size_t j = i + 1; j < b->nrows && !later; j++)
            later = b->rows[j].last_updated_us == b->rows[i].last_updated_us &&
                    strcmp(b->rows[j].contract.ticker, b->rows[i].contract.ticker) == 0;
        if (!later) {
            if (n != i)
                b->rows[n] = b->rows[i];
            n++;
        }
    }
    long dropped = (long)(b->nrows - n);
    b->nrows = n;
    qsort(b->rows, b->nrows, sizeof *b->rows, cmp_row_key);
    return dropped;
}

long batch_sort_dedupe(struct batch *b)
{
    if (b->nrows < 2)
        return 0;
    uint32_t *idx = batch_test_fail_alloc ? NULL : malloc(b->nrows * sizeof *idx);
    struct snapshot_row *out = batch_test_fail_alloc ? NULL : malloc(b->nrows * sizeof *out);
    if (idx == NULL || out == NULL) {
        free(idx);
        free(out);
        return dedupe_in_place(b);
    }
    for (size_t i = 0; i < b->nrows; i++)
        idx[i] = (uint32_t)i;
    qsort_r(idx, b->nrows, sizeof *idx, cmp_index, b->rows);
    size_t n = 0;
    for (size_t i = 0; i < b->nrows; i++) {
        const struct snapshot_row *r = &b->rows[idx[i]];
        if (n > 0 && out[n - 1].last_updated_us == r->last_updated_us &&
            strcmp(out[n - 1].contract.ticker, r->contract.ticker) == 0)
            out[n - 1] = *r; /* same key: the later one wins */
        else
            out[n++] = *r;
    }
    long dropped = (long)(b->nrows - n);
    free(idx);
    free(b->rows);
    b->rows = out;
    b->rows_cap = b->nrows;
    b->nrows = n;
    return dropped;
}

int batch_split(struct batch *b, struct batch **second)
{
    if (b->nrows < 2)
        return -1;
    struct batch *s = batch_new();
    if (s == NULL)
        return -1;
    size_t half = b->nrows / 2, rest = b->nrows - half;
    s->rows = malloc(rest * sizeof *s->rows);
    if (s->rows == NULL) {
        free(s);
        return -1;
    }
    memcpy(s->rows, b->rows + half, rest * sizeof *s->rows);
    s->nrows = s->rows_cap = rest;
    b->nrows = half;
    s->owner = b->owner;
    s->token = b->token;
    *second = s;
    return 0;
}

size_t batch_count_contracts(const struct batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nrows; i++)
        if (i == 0 || strcmp(b->rows[i].contract.ticker, b->rows[i - 1].contract.ticker) != 0)
            n++;
    return n;
}

size_t batch_contract_end(const struct batch *b, size_t i)
{
    size_t j = i + 1;
    while (j < b->nrows && strcmp(b->rows[j].contract.ticker, b->rows[i].contract.ticker) == 0)
        j++;
    return j;
}
