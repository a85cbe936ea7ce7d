/* Unit tests for the skip cache: hits only after a commit of the slot's own
 * token, every value part of the fingerprint, a newer batch wins, eviction in
 * a full bucket, forgetting by underlying and all, the options knowledge and
 * its last_seen step, fixed memory whatever the universe. */
#include "optsnap/db/fingerprint.h"
#include <stdio.h>

#include "test.h"

#define T0 INT64_C(1793631600000000) /* 2026-11-02T15:00:00Z */

static struct snapshot_row mkrow(const char *ticker, int64_t t, double price)
{
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.contract.ticker, sizeof r.contract.ticker, "%s", ticker);
    r.last_updated_us = t;
    snapshot_row_set_f64(&r, SNAP_TRADE_PRICE, price);
    snapshot_row_set_i64(&r, SNAP_DAY_VOLUME, 10);
    return r;
}

static void test_fingerprint_covers_the_row(void)
{
    struct snapshot_row a = mkrow("O:SPY261218C00500000", T0, 1.5), b = a;
    uint64_t fa = fingerprint_row(&a, "SPY", ROW_SOURCE_LIVE);
    CHECK(fa != 0);
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) == fa);
    b.v[SNAP_BID].f = 99; /* not present: not part of the row */
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) == fa);
    b = a;
    b.v[SNAP_TRADE_PRICE].f = 1.5000000000000002;
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) != fa);
    b = a;
    b.last_updated_us++;
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) != fa);
    b = a;
    snapshot_row_set_f64(&b, SNAP_BID, 0); /* a value appears */
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) != fa);
    b = a;
    b.contract.ticker[19] = '1';
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) != fa);
    b = a;
    b.last_updated_fallback = true;
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) != fa);
    CHECK(fingerprint_row(&a, "SPY", ROW_SOURCE_BACKFILL) != fa);
    CHECK(fingerprint_row(&a, "SPYW", ROW_SOURCE_LIVE) != fa);
    b = a;
    snapshot_row_set_i64(&b, SNAP_TRADE_CONDITIONS, 0);
    b.nconditions = 1;
    b.conditions[0] = 209;
    uint64_t fc = fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE);
    b.conditions[0] = 219;
    CHECK(fingerprint_row(&b, "SPY", ROW_SOURCE_LIVE) != fc);
}

static void test_hit_only_after_commit(void)
{
    struct fingerprint_table *t;
    CHECK(fingerprint_table_create(&t, 1000) == 0);
    struct snapshot_row r = mkrow("O:SPY261218C00500000", T0, 1.5);
    uint64_t f = fingerprint_row(&r, "SPY", ROW_SOURCE_LIVE);
    CHECK(!fingerprint_table_hit(t, r.contract.ticker, f));
    fingerprint_table_pending(t, r.contract.ticker, "SPY", 7);
    CHECK(!fingerprint_table_hit(t, r.contract.ticker, f)); /* in flight: not stored yet */
    CHECK(!fingerprint_table_hit(t, r.contract.ticker, 7));  /* a token is not a fingerprint */
    fingerprint_table_commit(t, r.contract.ticker, f, 6);    /* another batch's commit */
    CHECK(!fingerprint_table_hit(t, r.contract.ticker, f));
    fingerprint_table_commit(t, r.contract.ticker, f, 7);
    CHECK(fingerprint_table_hit(t, r.contract.ticker, f));
    CHECK(!fingerprint_table_hit(t, "O:SPY261218P00500000", f));
    /* a changed row misses; the slot is the ticker's, so it replaces the old one */
    struct snapshot_row r2 = mkrow("O:SPY261218C00500000", T0 + 60000000, 1.6);
    uint64_t f2 = fingerprint_row(&r2, "SPY", ROW_SOURCE_LIVE);
    CHECK(!fingerprint_table_hit(t, r2.contract.ticker, f2));
    fingerprint_table_pending(t, r2.contract.ticker, "SPY", 8);
    CHECK(!fingerprint_table_hit(t, r.contract.ticker, f)); /* the old row no longer hits while in flight */
    fingerprint_table_commit(t, r2.contract.ticker, f2, 8);
    CHECK(fingerprint_table_hit(t, r2.contract.ticker, f2));
    CHECK(!fingerprint_table_hit(t, r.contract.ticker, f));
    struct fingerprint_stats st;
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.hits, 2);
    fingerprint_table_free(t);
}

/* Batch 1 sends f1, batch 2 sends f2 for the same ticker; 1's commit comes
 * after 2 was sent: it must not set f1 (the database will end with f2). */
static void test_newer_batch_wins(void)
{
    struct fingerprint_table *t;
    CHECK(fingerprint_table_create(&t, 64) == 0);
    const char *k = "O:QQQ261218C00400000";
    fingerprint_table_pending(t, k, "QQQ", 1);
    fingerprint_table_pending(t, k, "QQQ", 2);
    fingerprint_table_commit(t, k, 111, 1);
    CHECK(!fingerprint_table_hit(t, k, 111));
    fingerprint_table_commit(t, k, 222, 2);
    CHECK(fingerprint_table_hit(t, k, 222));
    fingerprint_table_free(t);
}

static void test_full_bucket_evicts_and_memory_is_fixed(void)
{
    struct fingerprint_table *t;
    CHECK(fingerprint_table_create(&t, 8) == 0); /* one bucket */
    struct fingerprint_stats st;
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.slots, 8);
    CHECK_INT(st.bytes, 8 * 16);
    char k[32];
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof k, "O:X%02d", i);
        fingerprint_table_pending(t, k, "X", (uint64_t)(i + 1));
        fingerprint_table_commit(t, k, 1000 + (uint64_t)i, (uint64_t)(i + 1));
    }
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof k, "O:X%02d", i);
        CHECK(fingerprint_table_hit(t, k, 1000 + (uint64_t)i));
    }
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.evictions, 0);
    /* 1000 more tickers through the same 8 slots: memory stays, some are evicted */
    for (int i = 8; i < 1008; i++) {
        snprintf(k, sizeof k, "O:X%04d", i);
        fingerprint_table_pending(t, k, "X", (uint64_t)(i + 1));
        fingerprint_table_commit(t, k, 1000 + (uint64_t)i, (uint64_t)(i + 1));
    }
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.evictions, 1000);
    CHECK_INT(st.bytes, 8 * 16);
    int hits = 0;
    for (int i = 8; i < 1008; i++) {
        snprintf(k, sizeof k, "O:X%04d", i);
        hits += fingerprint_table_hit(t, k, 1000 + (uint64_t)i);
    }
    CHECK_INT(hits, 8); /* the last eight */
    /* a slot with a row in flight is evicted last */
    fingerprint_table_free(t);
    CHECK(fingerprint_table_create(&t, 8) == 0);
    for (int i = 0; i < 7; i++) {
        snprintf(k, sizeof k, "O:Y%02d", i);
        fingerprint_table_pending(t, k, "Y", (uint64_t)(i + 1));
        fingerprint_table_commit(t, k, 500 + (uint64_t)i, (uint64_t)(i + 1));
    }
    fingerprint_table_pending(t, "O:INFLIGHT", "Y", 99);
    fingerprint_table_pending(t, "O:NEWCOMER", "Y", 100);
    fingerprint_table_commit(t, "O:INFLIGHT", 42, 99);
    CHECK(fingerprint_table_hit(t, "O:INFLIGHT", 42));
    fingerprint_table_free(t);
    CHECK(fingerprint_table_create(&t, 0) == -1);
}

static void test_forget(void)
{
    struct fingerprint_table *t;
    CHECK(fingerprint_table_create(&t, 4096) == 0);
    const char *spy = "O:SPY261218C00500000", *qqq = "O:QQQ261218C00400000";
    fingerprint_table_pending(t, spy, "SPY", 1);
    fingerprint_table_pending(t, qqq, "QQQ", 1);
    fingerprint_table_commit(t, spy, 11, 1);
    fingerprint_table_commit(t, qqq, 22, 1);
    fingerprint_table_contract_commit(t, spy, T0);
    fingerprint_table_forget_underlying(t, "SPY");
    CHECK(!fingerprint_table_hit(t, spy, 11));
    CHECK(!fingerprint_table_contract_known(t, spy, T0));
    CHECK(fingerprint_table_hit(t, qqq, 22)); /* different 8-bit tags for these two */
    fingerprint_table_forget_all(t);
    CHECK(!fingerprint_table_hit(t, qqq, 22));
    struct fingerprint_stats st;
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forgets, 2);
    CHECK_INT(st.forget_scans, 1);
    fingerprint_table_free(t);
}

/* A forget walks the table only when it holds slots of that underlying's
 * tag, counted through fills, evictions, a contract moving to another
 * underlying, forgets and forget_all: the walk is skipped exactly when it
 * would clear nothing. */
static void test_forget_scans_only_when_held(void)
{
    struct fingerprint_table *t;
    CHECK(fingerprint_table_create(&t, FINGERPRINT_BUCKET_SLOTS) == 0); /* one bucket */
    struct fingerprint_stats st;
    fingerprint_table_forget_underlying(t, "SPY"); /* a fresh table: nothing to walk */
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forget_scans, 0);
    char tk[32];
    for (int i = 0; i < 3 * FINGERPRINT_BUCKET_SLOTS; i++) { /* evicts SPY by SPY */
        snprintf(tk, sizeof tk, "O:SPY261218C%08d", i);
        fingerprint_table_pending(t, tk, "SPY", 1);
        fingerprint_table_commit(t, tk, (uint64_t)i + 100, 1);
    }
    const char *qqq = "O:QQQ261218C00400000";
    fingerprint_table_pending(t, qqq, "QQQ", 1); /* evicts one SPY slot */
    fingerprint_table_commit(t, qqq, 7, 1);
    fingerprint_table_forget_underlying(t, "SPY");
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forget_scans, 1);
    CHECK(fingerprint_table_hit(t, qqq, 7));
    CHECK(!fingerprint_table_hit(t, tk, (uint64_t)(3 * FINGERPRINT_BUCKET_SLOTS - 1) + 100));
    fingerprint_table_forget_underlying(t, "SPY"); /* none left */
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forget_scans, 1);
    /* the QQQ contract now under IWM (same ticker, another underlying's rows) */
    fingerprint_table_pending(t, qqq, "IWM", 2);
    fingerprint_table_commit(t, qqq, 8, 2);
    fingerprint_table_forget_underlying(t, "QQQ"); /* holds none of QQQ now */
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forget_scans, 1);
    CHECK(fingerprint_table_hit(t, qqq, 8));
    fingerprint_table_forget_underlying(t, "IWM");
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forget_scans, 2);
    CHECK(!fingerprint_table_hit(t, qqq, 8));
    fingerprint_table_pending(t, qqq, "IWM", 3);
    fingerprint_table_forget_all(t);
    fingerprint_table_forget_underlying(t, "IWM"); /* forget_all left none */
    fingerprint_table_get_stats(t, &st);
    CHECK_INT(st.forget_scans, 2);
    fingerprint_table_free(t);
}

static void test_contract_known(void)
{
    struct fingerprint_table *t;
    CHECK(fingerprint_table_create(&t, 64) == 0);
    const char *k = "O:SPY261218C00500000";
    CHECK(!fingerprint_table_contract_known(t, k, T0));
    fingerprint_table_contract_commit(t, k, T0); /* no slot yet: nothing known */
    CHECK(!fingerprint_table_contract_known(t, k, T0));
    fingerprint_table_pending(t, k, "SPY", 1);
    fingerprint_table_contract_commit(t, k, T0);
    CHECK(fingerprint_table_contract_known(t, k, T0));
    CHECK(fingerprint_table_contract_known(t, k, T0 - 3600000000LL)); /* older: last_seen would not move */
    /* within the step of the committed seen (rounded down to 1024 s): skipped;
     * at the step: the statements go, and touch last_seen */
    CHECK(fingerprint_table_contract_known(t, k, T0 + WRITER_LAST_SEEN_STEP_US - INT64_C(1024) * 1000000));
    CHECK(!fingerprint_table_contract_known(t, k, T0 + WRITER_LAST_SEEN_STEP_US));
    /* knowledge never moves back */
    fingerprint_table_contract_commit(t, k, T0 + 7200000000LL);
    fingerprint_table_contract_commit(t, k, T0);
    CHECK(fingerprint_table_contract_known(t, k, T0 + 7200000000LL));
    /* a new row in flight keeps the contract's knowledge */
    fingerprint_table_pending(t, k, "SPY", 2);
    CHECK(fingerprint_table_contract_known(t, k, T0 + 7200000000LL));
    fingerprint_table_contract_forget(t, k);
    CHECK(!fingerprint_table_contract_known(t, k, T0));
    /* before 2020 (outside the stored range): never known */
    fingerprint_table_contract_commit(t, k, INT64_C(1000000000) * 1000000);
    CHECK(!fingerprint_table_contract_known(t, k, INT64_C(1000000000) * 1000000));
    fingerprint_table_free(t);
}

int main(void)
{
    RUN(test_fingerprint_covers_the_row);
    RUN(test_hit_only_after_commit);
    RUN(test_newer_batch_wins);
    RUN(test_full_bucket_evicts_and_memory_is_fixed);
    RUN(test_forget);
    RUN(test_forget_scans_only_when_held);
    RUN(test_contract_known);
    TEST_EXIT();
}
