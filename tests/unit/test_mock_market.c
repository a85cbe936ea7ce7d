/* test_mock_market.c - the simulated market: determinism, day block = bars,
 * pagination exactly-once, filters, idle re-polls, liquidity mix, faults. */
#include <stdint.h>

#include "optsnap/sim/mock_market.h"
#include "optsnap/api/snapshot_parse.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

static int64_t at(const char *text)
{
    int64_t us = 0;
    if (timestamp_parse(text, &us) != 0) {
        fprintf(stderr, "bad time %s\n", text);
        exit(1);
    }
    return us;
}

static void market(struct mock_market *m, uint64_t seed, const char *spec, int contracts, bool always)
{
    char err[128];
    if (mock_market_init(m, seed, spec, contracts, always, err, sizeof err) != 0) {
        fprintf(stderr, "init: %s\n", err);
        exit(1);
    }
}

static char *snapshot_json(const struct mock_market *m, const struct mm_contract *c, int64_t t,
                           struct mm_snapshot *s)
{
    struct mm_buf b = {0};
    mm_snapshot_at(m, c, t, s);
    mm_snapshot_write(&b, m, s, MM_BAD_NONE);
    return mm_buf_take(&b, NULL);
}

/* Every contract listed for underlying u at t, in ticker order. */
static int all_contracts(const struct mock_market *m, int u, int64_t t, struct mm_contract *out, int cap)
{
    struct mm_chain_query q, next;
    mm_chain_query_init(&q, u);
    q.limit = 250;
    int n = 0;
    bool more = true;
    while (more && n + 250 <= cap) {
        int got = mm_chain_page(m, &q, t, out + n, &more, &next);
        n += got;
        q = next;
    }
    return n;
}

static void test_universe(void)
{
    struct mock_market m;
    market(&m, 1, "25", 5000, false);
    CHECK_INT(m.nunderlyings, 25);
    CHECK(mm_underlying_find(&m, "SPY") >= 0);
    CHECK(mm_underlying_find(&m, "AAA") >= 0);
    CHECK_INT(m.nexpiries, 12);
    CHECK(mm_contracts_per_underlying(&m) <= 5000 && mm_contracts_per_underlying(&m) >= 4900);
    for (size_t i = 1; i < m.nunderlyings; i++)
        CHECK(strcmp(m.underlyings[i - 1].name, m.underlyings[i].name) < 0);
    int32_t ex[MM_MAX_EXPIRIES];
    int n = mm_expiries_at(&m, mm_local_date(&m, at("2026-11-02T15:00:00Z")), ex);
    CHECK_INT(n, 12);
    int32_t mon;
    CHECK_INT(date_parse("2026-11-02", &mon), 0);
    CHECK_INT(ex[0], mon + 4); /* the Friday of that week */
    mock_market_free(&m);

    market(&m, 1, "SPY,QQQ,SPY", 100, false);
    CHECK_INT(m.nunderlyings, 2);
    mock_market_free(&m);
    char err[128];
    CHECK(mock_market_init(&m, 1, "SPY,bad!", 100, false, err, sizeof err) != 0);
    CHECK(mock_market_init(&m, 1, "0", 100, false, err, sizeof err) != 0);
}

static void test_determinism(void)
{
    struct mock_market a, b, c;
    market(&a, 7, "4", 400, false);
    market(&b, 7, "4", 400, false);
    market(&c, 8, "4", 400, false);
    int64_t t = at("2026-11-03T18:12:34Z");
    static struct mm_contract list[2000];
    int n = all_contracts(&a, 1, t, list, 2000);
    CHECK_INT(n, (int)mm_contracts_per_underlying(&a));
    int differ = 0;
    for (int i = 0; i < n; i++) {
        struct mm_snapshot s1, s2, s3;
        char *j1 = snapshot_json(&a, &list[i], t, &s1);
        char *j2 = snapshot_json(&b, &list[i], t, &s2);
        struct mm_contract cc;
        mm_contract_make(&c, list[i].uidx, list[i].exp_days, list[i].type, list[i].strike_milli, &cc);
        char *j3 = snapshot_json(&c, &cc, t, &s3);
        CHECK_STR(j1, j2);
        differ += strcmp(j1, j3) != 0;
        free(j1);
        free(j2);
        free(j3);
    }
    CHECK(differ > n / 2);
    mock_market_free(&a);
    mock_market_free(&b);
    mock_market_free(&c);
}

struct bar_sum {
    int n;
    double o, h, l, c, v, vwv;
    int64_t last_start;
    bool sorted;
};

static int sum_bar(void *user, const struct mm_bar *b)
{
    struct bar_sum *s = user;
    if (s->n == 0) {
        s->o = b->o;
        s->h = b->h;
        s->l = b->l;
    }
    if (s->n > 0 && b->start_ms <= s->last_start)
        s->sorted = false;
    s->last_start = b->start_ms;
    s->h = b->h > s->h ? b->h : s->h;
    s->l = b->l < s->l ? b->l : s->l;
    s->c = b->c;
    s->v += b->v;
    s->vwv += b->vw * b->v;
    s->n++;
    return 0;
}

static void test_day_block_equals_bars(void)
{
    struct mock_market m;
    market(&m, 3, "3", 800, false);
    int64_t open = at("2026-11-04T14:30:00Z");
    static struct mm_contract list[1000];
    int n = all_contracts(&m, 0, open, list, 1000);
    int checked = 0, traded = 0;
    for (int i = 0; i < n; i += 3) {
        for (int step = 0; step <= 13; step++) {
            /* Bar ends (whole minutes) through the session and after it. */
            int64_t t = open + (int64_t)step * 30 * USEC_PER_MIN + (step % 3) * USEC_PER_MIN;
            struct mm_day d;
            mm_day_block(&m, &list[i], t, &d);
            struct bar_sum s = {.sorted = true};
            int64_t from_ms = open / 1000 - 9 * 3600 * 1000;
            mm_bars_foreach(&m, &list[i], MM_SPAN_MINUTE, 1, from_ms, t / 1000 - 1, false, INT64_MAX,
                            sum_bar, &s);
            CHECK(s.sorted);
            CHECK_INT(d.has_trades, s.n > 0);
            CHECK_INT(d.nbars, s.n);
            if (s.n > 0) {
                traded++;
                CHECK_DBL(d.open, s.o);
                CHECK_DBL(d.high, s.h);
                CHECK_DBL(d.low, s.l);
                CHECK_DBL(d.close, s.c);
                CHECK_DBL(d.volume, s.v);
                CHECK(d.vwap == s.vwv / s.v); /* exact: same order, same formula */
            }
            checked++;
        }
    }
    CHECK(checked > 1000);
    CHECK(traded > 100);
    mock_market_free(&m);
}

/* The day block mid-minute against the raw tape, computed independently. */
static void test_day_block_against_tape(void)
{
    struct mock_market m;
    market(&m, 5, "2", 400, true);
    int64_t t0 = at("2026-11-07T06:00:00Z"); /* a Saturday: always-open trades */
    static struct mm_contract list[500];
    int n = all_contracts(&m, 1, t0, list, 500);
    int busy = 0;
    for (int i = 0; i < n; i++) {
        int64_t t = t0 + (int64_t)(i * 7919) % (12 * 3600) * USEC_PER_SEC + 12345;
        int32_t date = mm_session_date(&m, t);
        int nt = mm_trade_count(&m, &list[i], date);
        busy += list[i].tier == 3;
        double v = 0, hi = -1, lo = 1e9, first = -1, last = -1;
        int64_t prev_ns = 0;
        for (int k = 0; k < nt; k++) {
            struct mm_trade tr;
            mm_trade_get(&m, &list[i], date, k, &tr);
            CHECK(tr.t_ns > prev_ns);
            CHECK((tr.t_ns / 1000) % USEC_PER_MIN != 0);
            CHECK(tr.size > 0 && tr.price > 0);
            prev_ns = tr.t_ns;
            if (tr.t_ns / 1000 > t)
                break;
            if (first < 0)
                first = tr.price;
            last = tr.price;
            hi = tr.price > hi ? tr.price : hi;
            lo = tr.price < lo ? tr.price : lo;
            v += tr.size;
        }
        struct mm_day d;
        mm_day_block(&m, &list[i], t, &d);
        CHECK_INT(d.has_trades, first >= 0);
        if (first >= 0) {
            CHECK_DBL(d.open, first);
            CHECK_DBL(d.close, last);
            CHECK_DBL(d.high, hi);
            CHECK_DBL(d.low, lo);
            CHECK_DBL(d.volume, v);
            CHECK(d.vwap >= lo - 1e-4 && d.vwap <= hi + 1e-4);
        }
        CHECK(d.last_updated_ns == mm_midnight_us(&m, date) * 1000);
    }
    CHECK(busy > 0);
    mock_market_free(&m);
}

static int ticker_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mm_contract *)a)->ticker, ((const struct mm_contract *)b)->ticker);
}

static bool key_le(const struct mm_contract *a, const struct mm_contract *b, enum mm_sort sort)
{
    if (sort == MM_SORT_STRIKE && a->strike_milli != b->strike_milli)
        return a->strike_milli < b->strike_milli;
    if (sort == MM_SORT_EXPIRATION && a->exp_days != b->exp_days)
        return a->exp_days < b->exp_days;
    return strcmp(a->ticker, b->ticker) <= 0;
}

static bool matches(const struct mm_chain_query *q, const struct mm_contract *c)
{
    return (!q->type_filter || q->type_filter == c->type) && c->strike_milli >= q->strike_lo &&
           c->strike_milli <= q->strike_hi && c->exp_days >= q->exp_lo && c->exp_days <= q->exp_hi;
}

/* Walks every page (through the cursor text, as a client would) and checks
 * exactly-once coverage of the brute-force filtered set, in order. */
static void sweep_check(const struct mock_market *m, struct mm_chain_query q, int64_t t,
                        const struct mm_contract *all, int nall)
{
    static struct mm_contract got[6000], want[6000];
    int nw = 0;
    for (int i = 0; i < nall; i++)
        if (matches(&q, &all[i]))
            want[nw++] = all[i];
    int ng = 0, pages = 0;
    bool more = true;
    while (more && ng < 6000 - 250 && pages < 10000) {
        struct mm_chain_query next;
        int k = mm_chain_page(m, &q, t, got + ng, &more, &next);
        CHECK(k <= q.limit);
        CHECK(k == q.limit || !more);
        ng += k;
        pages++;
        if (more) {
            char cur[512];
            CHECK_INT(mm_cursor_encode(&next, m, cur, sizeof cur), 0);
            CHECK_INT(mm_cursor_decode(m, cur, &q), 0);
        }
    }
    CHECK_INT(ng, nw);
    for (int i = 1; i < ng; i++) {
        bool ok = q.desc ? key_le(&got[i], &got[i - 1], q.sort) : key_le(&got[i - 1], &got[i], q.sort);
        CHECK(ok && strcmp(got[i].ticker, got[i - 1].ticker) != 0);
        if (!ok)
            break;
    }
    qsort(got, (size_t)ng, sizeof got[0], ticker_cmp);
    qsort(want, (size_t)nw, sizeof want[0], ticker_cmp);
    for (int i = 0; i < ng && i < nw; i++) {
        CHECK_STR(got[i].ticker, want[i].ticker);
        if (strcmp(got[i].ticker, want[i].ticker) != 0)
            break;
        CHECK(matches(&q, &got[i]));
    }
}

static void test_pagination(void)
{
    struct mock_market m;
    market(&m, 1, "SPY,QQQ", 2000, false);
    int64_t t = at("2026-11-02T15:00:00Z");
    int u = mm_underlying_find(&m, "QQQ");
    /* brute-force universe: every listed expiry x type x grid strike */
    static struct mm_contract all[6000];
    int nall = 0;
    int32_t ex[MM_MAX_EXPIRIES];
    int ne = mm_expiries_at(&m, mm_local_date(&m, t), ex);
    const struct mm_underlying *ud = &m.underlyings[u];
    for (int e = 0; e < ne; e++)
        for (int ty = 0; ty < 2; ty++)
            for (int k = 0; k < m.nstrikes; k++)
                mm_contract_make(&m, u, ex[e], ty ? 'P' : 'C', ud->strike0_milli + k * ud->strike_step_milli,
                                 &all[nall++]);
    CHECK_INT(nall, (int)mm_contracts_per_underlying(&m));
    int limits[] = {1, 7, 10, 250};
    for (int sort = 0; sort < 3; sort++)
        for (int desc = 0; desc < 2; desc++)
            for (int li = 0; li < 4; li++) {
                if (limits[li] == 1 && sort != 2)
                    continue; /* 2000 pages: once is enough */
                struct mm_chain_query q;
                mm_chain_query_init(&q, u);
                q.sort = (enum mm_sort)sort;
                q.desc = desc;
                q.limit = limits[li];
                sweep_check(&m, q, t, all, nall);
                /* with filters */
                q.type_filter = 'P';
                q.strike_lo = ud->strike0_milli + 10 * ud->strike_step_milli + 1; /* off-grid: gt */
                q.strike_hi = ud->strike0_milli + 60 * ud->strike_step_milli;
                q.exp_lo = ex[1];
                q.exp_hi = ex[3];
                sweep_check(&m, q, t, all, nall);
                q.type_filter = 'C';
                q.strike_lo = INT64_MIN;
                q.strike_hi = ud->strike0_milli - 1; /* nothing */
                sweep_check(&m, q, t, all, nall);
            }
    /* A sweep that crosses an expiry roll-off still never repeats a contract. */
    struct mm_chain_query q;
    mm_chain_query_init(&q, u);
    q.limit = 100;
    int64_t fri = at("2026-11-06T20:00:00Z");
    static struct mm_contract seen[8000];
    int ns = 0;
    bool more = true;
    for (int p = 0; more && p < 80; p++) {
        struct mm_chain_query next;
        int64_t when = p < 5 ? fri : fri + 2 * USEC_PER_DAY; /* Sunday: Friday's expiry is gone */
        ns += mm_chain_page(&m, &q, when, seen + ns, &more, &next);
        q = next;
    }
    qsort(seen, (size_t)ns, sizeof seen[0], ticker_cmp);
    int dups = 0;
    for (int i = 1; i < ns; i++)
        dups += strcmp(seen[i].ticker, seen[i - 1].ticker) == 0;
    CHECK_INT(dups, 0);

    /* Cursors: garbage is refused, never crashes. */
    struct mm_chain_query bad;
    CHECK(mm_cursor_decode(&m, "", &bad) != 0);
    CHECK(mm_cursor_decode(&m, "!!!!", &bad) != 0);
    CHECK(mm_cursor_decode(&m, "YWJj", &bad) != 0);
    mock_market_free(&m);
}

static void test_idle_repoll_identical(void)
{
    struct mock_market m;
    market(&m, 11, "2", 400, false);
    int64_t t = at("2026-11-05T17:00:00Z");
    static struct mm_contract list[500];
    int n = all_contracts(&m, 0, t, list, 500);
    int same = 0, changed = 0;
    for (int i = 0; i < n; i++) {
        struct mm_snapshot s1, s2, s3;
        char *j1 = snapshot_json(&m, &list[i], t, &s1);
        int64_t e_us = s1.event_ns / 1000;
        CHECK(e_us <= t);
        /* At E itself nothing differs: the snapshot is a function of E. */
        char *j2 = snapshot_json(&m, &list[i], e_us, &s2);
        CHECK_STR(j1, j2);
        char *j3 = snapshot_json(&m, &list[i], t + 60 * USEC_PER_SEC, &s3);
        if (s3.event_ns == s1.event_ns) {
            CHECK_STR(j1, j3);
            same++;
        } else {
            CHECK(strcmp(j1, j3) != 0);
            changed++;
        }
        free(j1);
        free(j2);
        free(j3);
    }
    CHECK(same > n / 2);
    CHECK(changed > 0);
    /* After the close and over the weekend, nothing changes until Monday 00:00 local. */
    struct mm_snapshot a, b;
    char *ja = snapshot_json(&m, &list[3], at("2026-11-06T21:30:00Z"), &a);
    char *jb = snapshot_json(&m, &list[3], at("2026-11-08T12:00:00Z"), &b);
    CHECK_STR(ja, jb);
    free(ja);
    free(jb);
    mock_market_free(&m);
}

static void test_liquidity_mix(void)
{
    struct mock_market m;
    market(&m, 2, "4", 4000, false);
    int32_t date;
    CHECK_INT(date_parse("2026-11-03", &date), 0);
    int64_t t = mm_midnight_us(&m, date);
    static struct mm_contract list[4100];
    int n = all_contracts(&m, 2, t, list, 4100);
    int quiet = 0, busy = 0;
    for (int i = 0; i < n; i++) {
        int k = mm_trade_count(&m, &list[i], date);
        quiet += k <= 8;
        busy += k >= 390; /* at least one a minute on average */
    }
    double qs = (double)quiet / n, bs = (double)busy / n;
    CHECK(qs >= 0.7 && qs <= 0.9);
    CHECK(bs >= 0.01 && bs <= 0.06);
    /* weekend: no trades in the regular model */
    CHECK_INT(mm_trade_count(&m, &list[0], date + 4), 0);
    mock_market_free(&m);
}

static void test_json_numbers(void)
{
    struct mm_buf b = {0};
    mm_buf_fixed(&b, 29.0, 2);
    mm_buf_puts(&b, " ");
    mm_buf_fixed(&b, -0.028227189324641973, 10);
    mm_buf_puts(&b, " ");
    mm_buf_fixed(&b, 0.005, 3);
    mm_buf_puts(&b, " ");
    mm_buf_double(&b, 30.7738);
    mm_buf_puts(&b, " ");
    mm_buf_int(&b, INT64_MIN + 1);
    CHECK_STR(b.bytes.data, "29 -0.0282271893 0.005 30.7738 -9223372036854775807");
    mm_buf_free(&b);
    b.bytes.limit = 16;
    mm_buf_puts(&b, "0123456789abcdefXYZ");
    CHECK(b.bytes.failed);
    mm_buf_free(&b);
    /* base64 round trip */
    char enc[64];
    unsigned char dec[64];
    CHECK(mm_base64_encode((const unsigned char *)"hello!?", 7, enc, sizeof enc) > 0);
    CHECK(mm_base64_decode(enc, dec, sizeof dec) == 7);
    CHECK_STR((char *)dec, "hello!?");
}

static void test_faults_reproducible(void)
{
    double rates[MM_FAULT_COUNT] = {0};
    for (int f = 0; f < MM_FAULT_COUNT; f++)
        rates[f] = 0.1;
    int fired[MM_FAULT_COUNT] = {0};
    for (uint64_t i = 0; i < 20000; i++) {
        uint32_t a = mm_fault_draw(42, i, rates);
        CHECK_INT(a, mm_fault_draw(42, i, rates));
        int excl = 0;
        for (int f = 0; f < MM_FAULT_COUNT; f++)
            if (a & (1u << f)) {
                fired[f]++;
                excl += f <= MM_FAULT_STALL;
            }
        CHECK(excl <= 1);
        CHECK(mm_fault_param(42, i, MM_FAULT_5XX) == mm_fault_param(42, i, MM_FAULT_5XX));
    }
    /* first in priority ~10%, others less (exclusive), independents ~10% */
    CHECK(fired[MM_FAULT_RESET] > 1700 && fired[MM_FAULT_RESET] < 2300);
    CHECK(fired[MM_FAULT_STALL] > 800 && fired[MM_FAULT_STALL] < 1500);
    CHECK(fired[MM_FAULT_BAD_ROW] > 1700 && fired[MM_FAULT_BAD_ROW] < 2300);
    /* zero rates: never */
    double zero[MM_FAULT_COUNT] = {0};
    int any = 0;
    for (uint64_t i = 0; i < 1000; i++)
        any += mm_fault_draw(42, i, zero) != 0;
    CHECK_INT(any, 0);
    /* another seed: another sequence */
    int diff = 0;
    for (uint64_t i = 0; i < 1000; i++)
        diff += mm_fault_draw(42, i, rates) != mm_fault_draw(43, i, rates);
    CHECK(diff > 100);
}

static void test_contract_parse(void)
{
    struct mock_market m;
    market(&m, 1, "SPY", 200, false);
    int64_t t = at("2026-11-02T15:00:00Z");
    static struct mm_contract list[300];
    int n = all_contracts(&m, 0, t, list, 300);
    for (int i = 0; i < n; i++) {
        struct mm_contract c;
        CHECK_INT(mm_contract_parse(&m, list[i].ticker, &c), 0);
        CHECK_STR(c.ticker, list[i].ticker);
        CHECK(c.key == list[i].key);
        CHECK(mm_is_listed(&m, &c, t));
    }
    struct mm_contract c;
    CHECK(mm_contract_parse(&m, "O:QQQ261106C00100000", &c) != 0);
    CHECK(mm_contract_parse(&m, "garbage", &c) != 0);
    mock_market_free(&m);
}

/* One chain page as mock-api serves it, with bad rows of the given kind at
 * every `bad_every`-th row (0 = none). */
static char *page_json(const struct mock_market *m, const struct mm_contract *list, int n, int64_t t,
                       enum mm_bad_kind bad, int bad_every, struct mm_snapshot *snaps, size_t *len)
{
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"request_id\":\"abc\",\"results\":[");
    for (int i = 0; i < n; i++) {
        mm_snapshot_at(m, &list[i], t, &snaps[i]);
        if (i)
            mm_buf_puts(&b, ",");
        enum mm_bad_kind k = bad_every && i % bad_every == 0 ? bad : MM_BAD_NONE;
        if (k == MM_BAD_NEG_SIZE && !snaps[i].has_trade)
            k = MM_BAD_INFINITE;
        mm_snapshot_write(&b, m, &snaps[i], k);
    }
    mm_buf_puts(&b, "],\"status\":\"OK\",\"next_url\":\"http://h/v3/snapshot/options/SPY?cursor=x\"}");
    return mm_buf_take(&b, len);
}

static void check_f(const struct snapshot_row *r, enum snap_col c, bool present, double v)
{
    CHECK_INT(snapshot_row_has(r, c), present);
    if (present && snapshot_row_has(r, c) && r->v[c].f != v) {
        fprintf(stderr, "  %s col %s: %.17g != %.17g\n", r->contract.ticker, snap_cols[c].name, r->v[c].f, v);
        test_current_failed = 1;
    }
}

static void check_i(const struct snapshot_row *r, enum snap_col c, bool present, int64_t v)
{
    CHECK_INT(snapshot_row_has(r, c), present);
    if (present && snapshot_row_has(r, c))
        CHECK_INT(r->v[c].i, v);
}

static void test_round_trip_parser(void)
{
    struct mock_market m;
    market(&m, 9, "SPY,QQQ", 2000, false);
    int u = mm_underlying_find(&m, "SPY");
    static struct mm_contract list[2100];
    static struct mm_snapshot snaps[2100];
    int64_t times[3] = {at("2026-11-03T14:45:10Z"), at("2026-11-04T20:59:59Z"), at("2026-11-07T12:00:00Z")};
    int rows = 0;
    for (int ti = 0; ti < 3; ti++) {
        int n = all_contracts(&m, u, times[ti], list, 2100);
        size_t len;
        char *body = page_json(&m, list, n, times[ti], MM_BAD_NONE, 0, snaps, &len);
        struct snapshot_page page = {0};
        char err[256] = "";
        int rc = snapshot_page_parse(&page, body, len, "SPY", err, sizeof err);
        CHECK_INT(rc, PARSE_OK);
        if (rc != PARSE_OK)
            fprintf(stderr, "  parse: %s\n", err);
        CHECK_INT(page.nrows, n);
        CHECK_INT(page.nrejects, 0);
        for (size_t i = 0; i < page.nrejects && i < 3; i++)
            fprintf(stderr, "  reject %s: %s\n", page.rejects[i].ticker, page.rejects[i].reason);
        CHECK(page.next_url != NULL);
        for (size_t i = 0; i < page.nrows && i < (size_t)n; i++) {
            const struct snapshot_row *r = &page.rows[i];
            const struct mm_snapshot *s = &snaps[i];
            CHECK_STR(r->contract.ticker, s->c.ticker);
            CHECK_STR(r->contract.underlying, "SPY");
            CHECK_INT(r->contract.contract_type, s->c.type);
            CHECK_INT(r->contract.expiration_days, s->c.exp_days);
            CHECK_DBL(r->contract.strike_price, (double)s->c.strike_milli / 1000.0);
            CHECK_INT(r->last_updated_us, s->event_ns / 1000);
            const struct mm_day *d = &s->day;
            check_f(r, SNAP_DAY_OPEN, d->has_trades, d->open);
            check_f(r, SNAP_DAY_HIGH, d->has_trades, d->high);
            check_f(r, SNAP_DAY_LOW, d->has_trades, d->low);
            check_f(r, SNAP_DAY_CLOSE, d->has_trades, d->close);
            check_i(r, SNAP_DAY_VOLUME, d->has_trades, (int64_t)d->volume);
            check_f(r, SNAP_DAY_VWAP, d->has_trades, d->vwap);
            check_f(r, SNAP_DAY_CHANGE, d->has_trades && d->has_prev, d->change);
            check_f(r, SNAP_DAY_CHANGE_PERCENT, d->has_trades && d->has_prev, d->change_percent);
            check_f(r, SNAP_DAY_PREVIOUS_CLOSE, d->has_prev, d->previous_close);
            check_i(r, SNAP_DAY_TIME, true, d->last_updated_ns / 1000);
            check_f(r, SNAP_IMPLIED_VOLATILITY, true, s->iv);
            check_i(r, SNAP_OPEN_INTEREST, true, s->open_interest);
            check_f(r, SNAP_DELTA, true, s->delta);
            check_f(r, SNAP_GAMMA, true, s->gamma);
            check_f(r, SNAP_THETA, true, s->theta);
            check_f(r, SNAP_VEGA, true, s->vega);
            check_f(r, SNAP_BID, s->has_quote, s->quote.bid);
            check_f(r, SNAP_ASK, s->has_quote, s->quote.ask);
            check_i(r, SNAP_BID_SIZE, s->has_quote, s->quote.bid_size);
            check_i(r, SNAP_ASK_SIZE, s->has_quote, s->quote.ask_size);
            check_i(r, SNAP_QUOTE_TIME, s->has_quote, s->quote.t_ns / 1000);
            check_f(r, SNAP_TRADE_PRICE, s->has_trade, s->trade.price);
            check_i(r, SNAP_TRADE_SIZE, s->has_trade, s->trade.size);
            check_i(r, SNAP_TRADE_EXCHANGE, s->has_trade, s->trade.exchange);
            check_i(r, SNAP_TRADE_TIME, s->has_trade, s->trade.t_ns / 1000);
            check_f(r, SNAP_UNDERLYING_PRICE, true, s->underlying_price);
            check_i(r, SNAP_UNDERLYING_TIME, true, s->underlying_ns / 1000);
            check_f(r, SNAP_BREAK_EVEN_PRICE, s->has_break_even, s->break_even);
            check_f(r, SNAP_CHANGE_TO_BREAK_EVEN, s->has_break_even, s->change_to_break_even);
            check_f(r, SNAP_FMV, true, s->fmv);
            if (test_current_failed)
                break;
            rows++;
        }
        snapshot_page_free(&page);
        free(body);
    }
    CHECK(rows > 5000);

    /* Every kind of injected bad row is rejected (whole, or a partial row
     * with the field dropped), and only those rows. */
    int64_t t = times[0];
    int n = all_contracts(&m, u, t, list, 2100);
    for (int k = 1; k < MM_BAD_KIND_COUNT; k++) {
        size_t len;
        char *body = page_json(&m, list, 250, t, (enum mm_bad_kind)k, 10, snaps, &len);
        struct snapshot_page page = {0};
        char err[256] = "";
        CHECK_INT(snapshot_page_parse(&page, body, len, "SPY", err, sizeof err), PARSE_OK);
        CHECK_INT(page.nrejects, 25);
        CHECK_INT(page.nrows - page.npartial, 225);
        CHECK(page.npartial == 0 || page.npartial == 25);
        if (page.nrejects > 0) {
            char want[OPTSNAP_TICKER_MAX];
            mm_bad_ticker(&m, &list[0], (enum mm_bad_kind)k, want, sizeof want);
            CHECK_STR(page.rejects[0].ticker, want);
        }
        snapshot_page_free(&page);
        free(body);
    }
    (void)n;
    mock_market_free(&m);
}

/* --ny-calendar: DST, holidays and early closes from util/ny_calendar;
 * the default model stays a fixed UTC-5 without holidays. */
static void test_ny_calendar(void)
{
    struct mock_market m;
    char err[160];
    CHECK(mock_market_init(&m, 1, "SPY,I:SPX", 100, false, err, sizeof err) == 0);
    int32_t thanksgiving = days_from_civil(2026, 11, 26), after = thanksgiving + 1;
    int32_t summer = days_from_civil(2026, 7, 6);
    int64_t o, c;
    /* default: every weekday, 09:30-16:00 at UTC-5 */
    CHECK(mm_is_trading_date(&m, thanksgiving));
    mm_session_bounds(&m, summer, &o, &c);
    CHECK_INT(o, at("2026-07-06T14:30:00Z"));
    CHECK_INT(c, at("2026-07-06T21:00:00Z"));
    m.ny_calendar = true;
    CHECK(!mm_is_trading_date(&m, thanksgiving));
    CHECK(!mm_is_trading_date(&m, days_from_civil(2026, 7, 3))); /* Independence Day observed */
    CHECK_INT(mm_prev_trading_date(&m, after), thanksgiving - 1);
    mm_session_bounds(&m, after, &o, &c);
    CHECK_INT(o, at("2026-11-27T14:30:00Z"));
    CHECK_INT(c, at("2026-11-27T18:00:00Z")); /* early close 13:00 EST */
    mm_session_bounds(&m, summer, &o, &c);
    CHECK_INT(o, at("2026-07-06T13:30:00Z")); /* EDT */
    CHECK_INT(c, at("2026-07-06T20:00:00Z"));
    CHECK_INT(mm_midnight_us(&m, summer), at("2026-07-06T04:00:00Z"));
    CHECK_INT(mm_local_date(&m, at("2026-07-07T03:59:59Z")), summer);
    /* on the holiday the session date is the day before */
    CHECK_INT(mm_session_date(&m, at("2026-11-26T17:00:00Z")), thanksgiving - 1);
    /* an index chain: SPX on the monthly expiry, SPXW on the weeklies */
    int u = mm_underlying_find(&m, "I:SPX");
    CHECK(u >= 0);
    if (u >= 0) {
        const struct mm_underlying *ud = &m.underlyings[u];
        struct mm_contract a, b, back;
        mm_contract_make(&m, u, days_from_civil(2026, 11, 20), 'C', ud->strike0_milli, &a);
        mm_contract_make(&m, u, days_from_civil(2026, 11, 27), 'C', ud->strike0_milli, &b);
        CHECK(strncmp(a.ticker, "O:SPX2", 6) == 0);
        CHECK(strncmp(b.ticker, "O:SPXW2", 7) == 0);
        CHECK(mm_contract_parse(&m, b.ticker, &back) == 0 && back.uidx == u);
        /* a weekly expiry under the monthly root is not listed */
        char wrong[OPTSNAP_TICKER_MAX + 8];
        snprintf(wrong, sizeof wrong, "O:SPX%s", b.ticker + 7);
        CHECK(mm_contract_parse(&m, wrong, &back) != 0);
    }
    mock_market_free(&m);
}

int main(void)
{
    RUN(test_universe);
    RUN(test_ny_calendar);
    RUN(test_determinism);
    RUN(test_day_block_equals_bars);
    RUN(test_day_block_against_tape);
    RUN(test_pagination);
    RUN(test_idle_repoll_identical);
    RUN(test_liquidity_mix);
    RUN(test_json_numbers);
    RUN(test_faults_reproducible);
    RUN(test_contract_parse);
    RUN(test_round_trip_parser);
    TEST_EXIT();
}
