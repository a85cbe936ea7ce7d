/* fingerprint.c - the skip cache: a fixed table of fingerprints of committed rows. */
#include "optsnap/db/fingerprint.h"

#include <stdlib.h>
#include <string.h>

struct fingerprint_slot {
    uint64_t fp;   /* the row's fingerprint, or the batch token while pending */
    uint32_t tag;  /* ticker tag, 0 = empty */
    uint32_t meta; /* META_* bits */
};

/* meta: bits 0-7 the underlying's tag, then flags, then 21 bits of the
 * contract's last committed seen in units of 1024 s since 2020-01-01 (to 2088). */
#define META_UNDERLYING 0xffu
#define META_PENDING (1u << 8)
#define META_FP (1u << 9)
#define META_KNOWN (1u << 10)
#define META_SEEN_SHIFT 11
#define SEEN_UNIT_US (INT64_C(1024) * 1000000)
#define SEEN_BASE_US (INT64_C(1577836800) * 1000000)
#define SEEN_MAX ((1u << 21) - 1)

struct fingerprint_table {
    struct fingerprint_slot *slots;
    size_t nbuckets;
    uint64_t clock; /* eviction round-robin */
    /* occupied slots per underlying tag: forgetting an underlying the table
     * holds nothing of (a fresh start, a takeover of a dead peer's) scans
     * nothing; a scan of the whole table is 10 ms at 1M slots */
    uint32_t held[META_UNDERLYING + 1];
    struct fingerprint_stats st;
};

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return k;
}

/* Each step is a bijection of the state: inputs of one length that differ
 * in one word never collide. */
static inline uint64_t step(uint64_t h, uint64_t w) { return fmix64(h ^ w) + UINT64_C(0x9e3779b97f4a7c15); }

static uint64_t hash_str(uint64_t h, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    h = step(h, n);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(&w, s + i, k);
        h = step(h, w);
    }
    return h;
}

uint64_t fingerprint_row(const struct snapshot_row *r, const char *underlying, enum row_source source)
{
    uint64_t h = UINT64_C(0x6f7074736e617031); /* "optsnap1" */
    h = hash_str(h, r->contract.ticker, sizeof r->contract.ticker);
    h = step(h, (uint64_t)r->last_updated_us);
    h = step(h, r->present);
    for (int c = 0; c < SNAP_NCOLS; c++) {
        if (!snapshot_row_has(r, (enum snap_col)c))
            continue;
        if (snap_cols[c].type == SNAP_CONDITIONS) {
            unsigned n = r->nconditions < SNAP_CONDITIONS_MAX ? r->nconditions : SNAP_CONDITIONS_MAX;
            h = step(h, n);
            for (unsigned k = 0; k < n; k++)
                h = step(h, (uint64_t)(uint32_t)r->conditions[k]);
        } else {
            uint64_t w;
            memcpy(&w, &r->v[c], sizeof w);
            h = step(h, w);
        }
    }
    h = step(h, ((uint64_t)source << 1) | (r->last_updated_fallback ? 1u : 0u));
    h = hash_str(h, underlying ? underlying : "", OPTSNAP_UNDERLYING_MAX);
    return h ? h : 1;
}

int fingerprint_table_create(struct fingerprint_table **out, long entries)
{
    *out = NULL;
    if (entries < 1)
        return -1;
    struct fingerprint_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    t->nbuckets = ((size_t)entries + FINGERPRINT_BUCKET_SLOTS - 1) / FINGERPRINT_BUCKET_SLOTS;
    /* calloc: pages are mapped when first written, so a small universe costs little */
    t->slots = calloc(t->nbuckets * FINGERPRINT_BUCKET_SLOTS, sizeof *t->slots);
    if (t->slots == NULL) {
        free(t);
        return -1;
    }
    t->st.slots = t->nbuckets * FINGERPRINT_BUCKET_SLOTS;
    t->st.bytes = t->st.slots * sizeof *t->slots;
    *out = t;
    return 0;
}

void fingerprint_table_free(struct fingerprint_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

static struct fingerprint_slot *bucket_of(struct fingerprint_table *t, const char *ticker, uint32_t *tag)
{
    uint64_t h = hash_str(UINT64_C(0x7469636b65723031), ticker, OPTSNAP_TICKER_MAX);
    *tag = (uint32_t)h ? (uint32_t)h : 1;
    /* the bucket from the high half, the tag from the low half: independent bits */
    return &t->slots[(size_t)((h >> 32) % t->nbuckets) * FINGERPRINT_BUCKET_SLOTS];
}

static struct fingerprint_slot *find(struct fingerprint_table *t, const char *ticker)
{
    uint32_t tag;
    struct fingerprint_slot *b = bucket_of(t, ticker, &tag);
    for (int i = 0; i < FINGERPRINT_BUCKET_SLOTS; i++)
        if (b[i].tag == tag)
            return &b[i];
    return NULL;
}

static uint32_t underlying_tag(const char *underlying)
{
    return (uint32_t)hash_str(UINT64_C(0x756e6465726c7931), underlying ? underlying : "",
                              OPTSNAP_UNDERLYING_MAX) & META_UNDERLYING;
}

bool fingerprint_table_hit(struct fingerprint_table *t, const char *ticker, uint64_t fp)
{
    struct fingerprint_slot *s = find(t, ticker);
    bool hit = s != NULL && (s->meta & (META_FP | META_PENDING)) == META_FP && s->fp == fp;
    if (hit)
        t->st.hits++;
    else
        t->st.misses++;
    return hit;
}

void fingerprint_table_pending(struct fingerprint_table *t, const char *ticker, const char *underlying,
                               uint64_t token)
{
    uint32_t tag;
    struct fingerprint_slot *b = bucket_of(t, ticker, &tag), *s = NULL, *empty = NULL;
    for (int i = 0; i < FINGERPRINT_BUCKET_SLOTS && s == NULL; i++) {
        if (b[i].tag == tag)
            s = &b[i];
        else if (b[i].tag == 0 && empty == NULL)
            empty = &b[i];
    }
    if (s == NULL)
        s = empty;
    if (s == NULL) { /* full: evict, preferring a slot with no row in flight */
        int start = (int)(t->clock++ % FINGERPRINT_BUCKET_SLOTS);
        s = &b[start];
        for (int i = 0; i < FINGERPRINT_BUCKET_SLOTS; i++) {
            struct fingerprint_slot *c = &b[(start + i) % FINGERPRINT_BUCKET_SLOTS];
            if (!(c->meta & META_PENDING)) {
                s = c;
                break;
            }
        }
        t->st.evictions++;
    }
    if (s->tag != 0)
        t->held[s->meta & META_UNDERLYING]--;
    if (s->tag != tag) { /* an empty slot, or another contract's evicted */
        s->tag = tag;
        s->meta = 0;
    }
    uint32_t ut = underlying_tag(underlying);
    s->fp = token;
    s->meta = (s->meta & ~(META_UNDERLYING | META_FP)) | META_PENDING | ut;
    t->held[ut]++;
}

void fingerprint_table_commit(struct fingerprint_table *t, const char *ticker, uint64_t fp, uint64_t token)
{
    struct fingerprint_slot *s = find(t, ticker);
    if (s == NULL || !(s->meta & META_PENDING) || s->fp != token)
        return;
    s->fp = fp;
    s->meta = (s->meta & ~META_PENDING) | META_FP;
}

static bool seen_unit(int64_t seen_us, uint32_t *unit)
{
    if (seen_us < SEEN_BASE_US)
        return false;
    int64_t u = (seen_us - SEEN_BASE_US) / SEEN_UNIT_US;
    if (u > (int64_t)SEEN_MAX)
        return false;
    *unit = (uint32_t)u;
    return true;
}

bool fingerprint_table_contract_known(struct fingerprint_table *t, const char *ticker, int64_t seen_us)
{
    struct fingerprint_slot *s = find(t, ticker);
    if (s == NULL || !(s->meta & META_KNOWN))
        return false;
    /* the seen committed, rounded down: skipping less, never more */
    int64_t committed = SEEN_BASE_US + (int64_t)(s->meta >> META_SEEN_SHIFT) * SEEN_UNIT_US;
    bool known = seen_us < committed + WRITER_LAST_SEEN_STEP_US;
    if (known)
        t->st.contracts_known_hits++;
    return known;
}

void fingerprint_table_contract_commit(struct fingerprint_table *t, const char *ticker, int64_t seen_us)
{
    struct fingerprint_slot *s = find(t, ticker);
    uint32_t unit;
    if (s == NULL)
        return;
    if (!seen_unit(seen_us, &unit)) {
        s->meta &= ~META_KNOWN;
        return;
    }
    if ((s->meta & META_KNOWN) && (s->meta >> META_SEEN_SHIFT) > unit)
        return; /* knowledge only grows: last_seen never moves back */
    s->meta = (s->meta & ((1u << META_SEEN_SHIFT) - 1)) | META_KNOWN | (unit << META_SEEN_SHIFT);
}

void fingerprint_table_contract_forget(struct fingerprint_table *t, const char *ticker)
{
    struct fingerprint_slot *s = find(t, ticker);
    if (s != NULL)
        s->meta &= ~META_KNOWN & ((1u << META_SEEN_SHIFT) - 1);
}

void fingerprint_table_forget_underlying(struct fingerprint_table *t, const char *underlying)
{
    uint32_t ut = underlying_tag(underlying);
    t->st.forgets++;
    if (t->held[ut] == 0)
        return;
    size_t n = t->nbuckets * FINGERPRINT_BUCKET_SLOTS;
    for (size_t i = 0; i < n; i++)
        if (t->slots[i].tag != 0 && (t->slots[i].meta & META_UNDERLYING) == ut)
            memset(&t->slots[i], 0, sizeof t->slots[i]);
    t->held[ut] = 0;
    t->st.forget_scans++;
}

void fingerprint_table_forget_all(struct fingerprint_table *t)
{
    memset(t->slots, 0, t->nbuckets * FINGERPRINT_BUCKET_SLOTS * sizeof *t->slots);
    memset(t->held, 0, sizeof t->held);
    t->st.forgets++;
}

void fingerprint_table_get_stats(const struct fingerprint_table *t, struct fingerprint_stats *out) { *out = t->st; }
