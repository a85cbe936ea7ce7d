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

long batch_sort_dedupe(struct batch *b)
{
    if (b->nrows < 2)
        return 0;
    uint32_t *idx = malloc(b->nrows * sizeof *idx);
    struct snapshot_row *out = malloc(b->nrows * sizeof *out);
    if (idx == NULL || out == NULL) {
        free(idx);
        free(out);
        return -1;
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
    memcpy(s->request_id, b->request_id, sizeof s->request_id);
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
