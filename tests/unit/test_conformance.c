/* Conformance: every recorded API response in tests/fixtures goes through the
 * production parser for its endpoint, and the rows it gives are rendered as
 * text and compared with <fixture>.expected, committed beside it. Any parser
 * change that alters a stored value, a NULL, a key time or a reject fails
 * here. OPTSNAP_UPDATE_EXPECTED=1 rewrites the .expected files (review the
 * diff before committing it). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>

#include "optsnap/api/aggs_parse.h"
#include "optsnap/api/reference_parse.h"
#include "optsnap/api/snapshot_parse.h"
#include "test.h"

/* Text rendering, growing. */
struct text {
    char *s;
    size_t len, cap;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *s = realloc(t->s, cap);
        if (s == NULL)
            abort();
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void render_contract(struct text *t, const struct option_contract *c)
{
    text_printf(t, "  underlying=%s type=%c style=%c expiration_days=%" PRId32
                   " strike=%.17g shares=%" PRId32 "\n",
                c->underlying, c->contract_type, c->exercise_style, c->expiration_days,
                c->strike_price, c->shares_per_contract);
}

static void render_snapshot_row(struct text *t, const struct snapshot_row *r)
{
    text_printf(t, "row %s last_updated_us=%" PRId64 " fallback=%d source=%s\n", r->contract.ticker,
                r->last_updated_us, r->last_updated_fallback ? 1 : 0, row_source_name(r->source));
    render_contract(t, &r->contract);
    for (int c = 0; c < SNAP_NCOLS; c++) {
        text_printf(t, "  %s=", snap_cols[c].name);
        if (!snapshot_row_has(r, (enum snap_col)c)) {
            text_printf(t, "NULL\n");
            continue;
        }
        switch (snap_cols[c].type) {
        case SNAP_F64: text_printf(t, "%.17g\n", r->v[c].f); break;
        case SNAP_I64: text_printf(t, "%" PRId64 "\n", r->v[c].i); break;
        case SNAP_TS: text_printf(t, "%" PRId64 "us\n", r->v[c].i); break;
        case SNAP_TIMEFRAME: {
            const char *n = snap_timeframe_name(r->v[c].i);
            text_printf(t, "%s\n", n ? n : "?");
            break;
        }
        case SNAP_CONDITIONS:
            text_printf(t, "{");
            for (unsigned k = 0; k < r->nconditions; k++)
                text_printf(t, "%s%" PRId32, k ? "," : "", r->conditions[k]);
            text_printf(t, "}\n");
            break;
        }
    }
}

static void render_reject(struct text *t, const struct row_reject *rj)
{
    text_printf(t, "reject kind=%s ticker=%s key_us=%" PRId64 " raw_bytes=%zu reason=%s\n",
                reject_kind_name(rj->kind), rj->ticker, rj->key_us, rj->raw_len, rj->reason);
}

/* The underlying a snapshot fixture was asked for: the path segment after
 * /v3/snapshot/options/. */
static void snapshot_underlying(const char *rel, char *out, size_t out_size)
{
    const char *p = strstr(rel, "/v3/snapshot/options/");
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen("/v3/snapshot/options/");
    size_t n = strcspn(p, "/.");
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Renders one fixture; returns false when no parser is known for its path. */
static bool render_fixture(const char *rel, const char *body, size_t len, struct text *t)
{
    char err[256] = "";
    if (strstr(rel, "/v3/snapshot/options/") != NULL) {
        char underlying[OPTSNAP_UNDERLYING_MAX];
        snapshot_underlying(rel, underlying, sizeof underlying);
        struct snapshot_page p = {0};
        int rc = snapshot_page_parse(&p, body, len, underlying, err, sizeof err);
        text_printf(t, "parser=snapshot underlying=%s rc=%d\n", underlying, rc);
        if (rc == PARSE_OK) {
            text_printf(t, "status=%s request_id=%s next_url=%s rows=%zu rejects=%zu partial=%zu\n",
                        p.status, p.request_id, p.next_url ? p.next_url : "NULL", p.nrows,
                        p.nrejects, p.npartial);
            for (size_t i = 0; i < p.nrows; i++)
                render_snapshot_row(t, &p.rows[i]);
            for (size_t i = 0; i < p.nrejects; i++)
                render_reject(t, &p.rejects[i]);
        } else {
            text_printf(t, "error=%s\n", err);
        }
        snapshot_page_free(&p);
        return true;
    }
    if (strstr(rel, "/v3/reference/options/contracts") != NULL) {
        struct contracts_page p = {0};
        int rc = contracts_page_parse(&p, body, len, err, sizeof err);
        text_printf(t, "parser=reference rc=%d\n", rc);
        if (rc == PARSE_OK) {
            text_printf(t, "request_id=%s next_url=%s contracts=%zu skipped=%zu fields_dropped=%zu\n",
                        p.request_id, p.next_url ? p.next_url : "NULL", p.ncontracts, p.nskipped,
                        p.nfields_dropped);
            for (size_t i = 0; i < p.ncontracts; i++) {
                const struct contract_reference *ref = &p.refs[i];
                text_printf(t, "contract %s\n", p.contracts[i].ticker);
                render_contract(t, &p.contracts[i]);
                text_printf(t, "  has_reference=%d primary_exchange=%s cfi=%s additional_underlyings=%s\n",
                            ref->has_reference ? 1 : 0,
                            ref->primary_exchange[0] ? ref->primary_exchange : "NULL",
                            ref->cfi[0] ? ref->cfi : "NULL",
                            ref->additional_underlyings ? ref->additional_underlyings : "NULL");
            }
        } else {
            text_printf(t, "error=%s\n", err);
        }
        contracts_page_free(&p);
        return true;
    }
    if (strstr(rel, "/v2/aggs/ticker/") != NULL) {
        struct aggs_page p = {0};
        int rc = aggs_page_parse(&p, body, len, err, sizeof err);
        text_printf(t, "parser=aggs rc=%d\n", rc);
        if (rc == PARSE_OK) {
            text_printf(t, "ticker=%s request_id=%s next_url=%s bars=%zu\n", p.ticker, p.request_id,
                        p.next_url ? p.next_url : "NULL", p.nbars);
            for (size_t i = 0; i < p.nbars; i++) {
                const struct agg_bar *b = &p.bars[i];
                text_printf(t, "bar start_us=%" PRId64 " open=%.17g high=%.17g low=%.17g close=%.17g"
                               " volume=%.17g vwap=",
                            b->start_ms * 1000, b->open, b->high, b->low, b->close, b->volume);
                if (isnan(b->vwap))
                    text_printf(t, "NULL");
                else
                    text_printf(t, "%.17g", b->vwap);
                if (b->trades < 0)
                    text_printf(t, " trades=NULL\n");
                else
                    text_printf(t, " trades=%" PRId64 "\n", b->trades);
            }
        } else {
            text_printf(t, "error=%s\n", err);
        }
        aggs_page_free(&p);
        return true;
    }
    return false;
}

static const char *fixtures_root;
static int nfixtures;
static int nchecked;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type != FTW_F)
        return 0;
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".json") != 0)
        return 0;
    const char *rel = path + strlen(fixtures_root);
    if (strncmp(rel, "/spec/", 6) == 0) /* OpenAPI specs: tests/lint/spec_fields.py */
        return 0;
    nfixtures++;
    size_t len;
    char *body = test_read_file(path, &len);
    struct text t = {0};
    if (!render_fixture(rel, body, len, &t)) {
        fprintf(stderr, "  %s: no parser for this endpoint; add one to test_conformance.c\n", rel);
        test_current_failed = 1;
        free(body);
        return 0;
    }
    char expected_path[4096];
    snprintf(expected_path, sizeof expected_path, "%s.expected", path);
    const char *update = getenv("OPTSNAP_UPDATE_EXPECTED");
    if (update != NULL && strcmp(update, "1") == 0) {
        FILE *f = fopen(expected_path, "wb");
        CHECK(f != NULL);
        if (f != NULL) {
            CHECK(fwrite(t.s, 1, t.len, f) == t.len);
            CHECK(fclose(f) == 0);
        }
    } else {
        FILE *f = fopen(expected_path, "rb");
        if (f == NULL) {
            fprintf(stderr, "  %s: no .expected file beside it\n", rel);
            test_current_failed = 1;
        } else {
            fclose(f);
            size_t elen;
            char *want = test_read_file(expected_path, &elen);
            if (elen != t.len || memcmp(want, t.s, t.len) != 0) {
                /* name the first line that differs */
                size_t i = 0, line = 1, start = 0;
                while (i < elen && i < t.len && want[i] == t.s[i]) {
                    if (want[i] == '\n') {
                        line++;
                        start = i + 1;
                    }
                    i++;
                }
                size_t ge = start, gg = start;
                while (ge < elen && want[ge] != '\n')
                    ge++;
                while (gg < t.len && t.s[gg] != '\n')
                    gg++;
                fprintf(stderr, "  %s: differs from .expected at line %zu\n    expected: %.*s\n    got:      %.*s\n",
                        rel, line, (int)(ge - start), want + start, (int)(gg - start), t.s + start);
                test_current_failed = 1;
            } else {
                nchecked++;
            }
            free(want);
        }
    }
    free(t.s);
    free(body);
    return 0;
}

static void test_every_fixture_matches_expected(void)
{
    CHECK(nftw(fixtures_root, visit, 16, FTW_PHYS) == 0);
    /* the fixtures this repository ships: 2 snapshot, 3 reference, 2 aggregates */
    CHECK(nfixtures >= 7);
    const char *update = getenv("OPTSNAP_UPDATE_EXPECTED");
    if (update == NULL || strcmp(update, "1") != 0)
        CHECK_INT(nchecked, nfixtures);
    printf("conformance: fixtures=%d matched=%d\n", nfixtures, nchecked);
}

/* The comparison itself can fail: a changed value renders differently. */
static void test_rendering_notices_a_changed_value(void)
{
    static const char a[] = "{\"status\":\"OK\",\"results\":[{\"details\":{\"ticker\":\"O:AAPL230616C00150000\","
                            "\"contract_type\":\"call\",\"exercise_style\":\"american\",\"expiration_date\":\"2023-06-16\","
                            "\"strike_price\":150,\"shares_per_contract\":100},\"day\":{\"close\":1.5,"
                            "\"last_updated\":1686931200000}}]}";
    char b[sizeof a];
    memcpy(b, a, sizeof a);
    char *p = strstr(b, "1.5");
    CHECK(p != NULL);
    if (p != NULL)
        p[2] = '6';
    struct text ta = {0}, tb = {0};
    CHECK(render_fixture("/v3/snapshot/options/AAPL.json", a, strlen(a), &ta));
    CHECK(render_fixture("/v3/snapshot/options/AAPL.json", b, strlen(b), &tb));
    CHECK(ta.len > 0 && tb.len > 0);
    CHECK(ta.len != tb.len || memcmp(ta.s, tb.s, ta.len) != 0);
    if (test_current_failed)
        fprintf(stderr, "%s\n%s\n", ta.s, tb.s);
    /* the ms day.last_updated is the key, in us */
    CHECK(strstr(ta.s, "last_updated_us=1686931200000000 ") != NULL);
    CHECK(strstr(ta.s, "day_close=1.5\n") != NULL);
    CHECK(strstr(ta.s, "fmv=NULL\n") != NULL);
    free(ta.s);
    free(tb.s);
}

int main(void)
{
    fixtures_root = getenv("OPTSNAP_FIXTURES");
    if (fixtures_root == NULL) {
        fprintf(stderr, "OPTSNAP_FIXTURES not set\n");
        return 77;
    }
    RUN(test_every_fixture_matches_expected);
    RUN(test_rendering_notices_a_changed_value);
    return test_failures ? 1 : 0;
}
