/* Unit tests for batch: dedupe on the microsecond key (last wins), sort, split. */
#include "optsnap/db/batch.h"
#include "test.h"

static struct snapshot_row mkrow(const char *ticker, int64_t t, double price)
{
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.contract.ticker, sizeof r.contract.ticker, "%s", ticker);
    r.last_updated_us = t;
    snapshot_row_set_f64(&r, SNAP_TRADE_PRICE, price);
    return r;
}

static void test_dedupe_last_wins(void)
{
    struct batch *b = batch_new();
    struct snapshot_row rows[] = {
        mkrow("O:B", 5, 1.0), mkrow("O:A", 7, 2.0), mkrow("O:B", 5, 3.0),
        mkrow("O:A", 6, 4.0), mkrow("O:B", 5, 5.0), mkrow("O:A", 7, 6.0),
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(batch_add_row(b, &rows[i]) == 0);
    CHECK_INT(batch_sort_dedupe(b), 3);
    CHECK_INT(b->nrows, 3);
    CHECK_STR(b->rows[0].contract.ticker, "O:A");
    CHECK_INT(b->rows[0].last_updated_us, 6);
    CHECK_DBL(b->rows[0].v[SNAP_TRADE_PRICE].f, 4.0);
    CHECK_STR(b->rows[1].contract.ticker, "O:A");
    CHECK_INT(b->rows[1].last_updated_us, 7);
    CHECK_DBL(b->rows[1].v[SNAP_TRADE_PRICE].f, 6.0); /* the later of the two */
    CHECK_STR(b->rows[2].contract.ticker, "O:B");
    CHECK_DBL(b->rows[2].v[SNAP_TRADE_PRICE].f, 5.0);
    CHECK_INT(batch_count_contracts(b), 2);
    batch_free(b);
}

static void test_dedupe_many(void)
{
    struct batch *b = batch_new();
    for (int i = 0; i < 20000; i++) {
        char t[32];
        snprintf(t, sizeof t, "O:T%05d", (i * 7919) % 5000);
        struct snapshot_row r = mkrow(t, 100, (double)i);
        CHECK(batch_add_row(b, &r) == 0);
    }
    CHECK_INT(batch_sort_dedupe(b), 15000);
    CHECK_INT(b->nrows, 5000);
    for (size_t i = 1; i < b->nrows; i++)
        CHECK(strcmp(b->rows[i - 1].contract.ticker, b->rows[i].contract.ticker) < 0);
    batch_free(b);
}

/* Out of memory, the duplicates still go (PostgreSQL would raise 21000 for
 * the whole batch) and the result equals the fast path's. */
static void test_dedupe_out_of_memory(void)
{
    struct batch *fast = batch_new(), *slow = batch_new();
    for (int i = 0; i < 3000; i++) {
        char t[32];
        snprintf(t, sizeof t, "O:T%04d", (i * 7919) % 700);
        struct snapshot_row r = mkrow(t, 100 + i % 3, (double)i);
        CHECK(batch_add_row(fast, &r) == 0);
        CHECK(batch_add_row(slow, &r) == 0);
    }
    long want = batch_sort_dedupe(fast);
    batch_test_fail_alloc = true;
    long got = batch_sort_dedupe(slow);
    batch_test_fail_alloc = false;
    CHECK(want > 0);
    CHECK_INT(got, want);
    CHECK_INT(slow->nrows, fast->nrows);
    for (size_t i = 0; i < slow->nrows && i < fast->nrows; i++) {
        CHECK_STR(slow->rows[i].contract.ticker, fast->rows[i].contract.ticker);
        CHECK_INT(slow->rows[i].last_updated_us, fast->rows[i].last_updated_us);
        CHECK_DBL(slow->rows[i].v[SNAP_TRADE_PRICE].f, fast->rows[i].v[SNAP_TRADE_PRICE].f);
        if (i > 0)
            CHECK(strcmp(slow->rows[i - 1].contract.ticker, slow->rows[i].contract.ticker) < 0 ||
                  slow->rows[i - 1].last_updated_us < slow->rows[i].last_updated_us);
    }
    batch_free(fast);
    batch_free(slow);
}

static void test_split_and_rejects(void)
{
    struct batch *b = batch_new();
    for (int i = 0; i < 5; i++) {
        struct snapshot_row r = mkrow("O:X", i, 1.0);
        CHECK(batch_add_row(b, &r) == 0);
    }
    struct row_reject rj;
    memset(&rj, 0, sizeof rj);
    rj.raw = strdup("{\"bad\":1}");
    rj.raw_len = strlen(rj.raw);
    snprintf(rj.reason, sizeof rj.reason, "x");
    CHECK(batch_add_reject(b, &rj) == 0);
    CHECK(rj.raw == NULL); /* ownership moved */
    int owner_tag;
    b->owner = &owner_tag;
    struct batch *second = NULL;
    CHECK(batch_split(b, &second) == 0);
    CHECK_INT(b->nrows, 2);
    CHECK_INT(second->nrows, 3);
    CHECK_INT(second->rows[0].last_updated_us, 2);
    CHECK(second->owner == &owner_tag);
    CHECK_INT(b->nrejects, 1);
    CHECK_INT(second->nrejects, 0);
    struct batch *third = NULL;
    struct batch *one = batch_new();
    struct snapshot_row r = mkrow("O:Y", 1, 1);
    CHECK(batch_add_row(one, &r) == 0);
    CHECK(batch_split(one, &third) == -1);
    batch_free(one);
    batch_free(b);
    batch_free(second);
}

int main(void)
{
    RUN(test_dedupe_last_wins);
    RUN(test_dedupe_many);
    RUN(test_dedupe_out_of_memory);
    RUN(test_split_and_rejects);
    TEST_EXIT();
}
