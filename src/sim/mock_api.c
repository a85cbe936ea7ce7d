/* mock_api.c - `optsnap mock-api`: serves the simulated market (mock_market.c) over HTTP with faults, control and truth endpoints. */
#include "optsnap/sim/mock_api.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/http/http_server.h"
#include "optsnap/util/log.h"
#include "optsnap/sim/mock_flatfiles.h"
#include "optsnap/sim/mock_market.h"
#include "optsnap/util/timeutil.h"

#define MAX_OUTAGES 8
#define MAX_INJECTED 100000
#define AGGS_DEFAULT_LIMIT 5000
#define AGGS_MAX_LIMIT 50000
#define REF_DEFAULT_LIMIT 10
#define REF_MAX_LIMIT 1000

struct outage {
    int64_t from_us, to_us;
};

struct injected_row {
    char ticker[OPTSNAP_TICKER_MAX];      /* the contract whose row was replaced */
    char sent_ticker[OPTSNAP_TICKER_MAX]; /* what the bad row carried ("" none) */
    enum mm_bad_kind kind;
    int64_t at_us;
    int page_limit; /* the limit its page was asked with (1 = a start-up probe) */
    char request_id[40];
};

struct sim_stats {
    uint64_t requests, api_requests, chain_pages, single, aggs, reference, control, truth;
    uint64_t not_found, unauthorized, bad_request;
    uint64_t rows, bars, contracts, bytes;
    uint64_t faults[MM_FAULT_COUNT];
    uint64_t outage_replies;
};

struct sim {
    struct mock_market market;
    const char *host;
    int port;
    const char *api_key; /* NULL: any non-empty key */
    const char *unentitled; /* comma list of underlyings answered 403 NOT_AUTHORIZED, or NULL */
    const char *link_host;  /* host:port put in next_url instead of the request's Host, or NULL */
    uint64_t seed;
    double speed;
    int64_t clock_start_us, wall_start_us;
    size_t max_connections;
    size_t pad_bytes; /* --pad-bytes: each chain page grows by about this much */

    double rates[MM_FAULT_COUNT];
    uint32_t slow_ms, stall_ms, retry_after_s;
    struct outage outages[MAX_OUTAGES];
    int noutages;
    bool outage_reset; /* act outages out as connection resets instead of 503 */

    uint64_t fault_counter; /* API requests seen: the fault PRNG's counter */
    uint64_t request_counter;
    struct sim_stats st;
    struct injected_row *injected; /* capped at MAX_INJECTED */
    size_t ninjected, injected_cap, injected_dropped;

    uv_loop_t loop;
    struct http_server *server;
    uv_signal_t sigint, sigterm;
    bool stopping;
};

/* ================= helpers ================= */

int mock_api_time_parse(const char *text, int64_t *out_us)
{
    if (text == NULL || text[0] == '\0')
        return -1;
    bool digits = true;
    for (const char *p = text; *p; p++)
        digits &= isdigit((unsigned char)*p) != 0;
    if (digits && strlen(text) <= 18) {
        *out_us = strtoll(text, NULL, 10);
        return 0;
    }
    return timestamp_parse(text, out_us);
}

static int64_t sim_now(const struct sim *s)
{
    double dt = (double)(time_now_us() - s->wall_start_us) * s->speed;
    return s->clock_start_us + (int64_t)dt;
}

static void request_id_make(struct sim *s, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = mm_hash2(s->seed ^ (uint64_t)s->wall_start_us, ++s->request_counter);
    uint64_t b = mm_hash2(a, 0x1d);
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (4 * i)) & 15];
        out[16 + i] = hex[(b >> (4 * i)) & 15];
    }
    out[32] = '\0';
}

static void reply_json(struct http_reply *r, int status, struct mm_buf *b)
{
    r->status = status;
    r->content_type = "application/json";
    if (b->bytes.failed) {
        mm_buf_free(b);
        r->status = 500;
        static const char oom[] = "{\"status\":\"ERROR\",\"error\":\"response too large\"}";
        r->body = strdup(oom);
        r->body_len = r->body ? sizeof oom - 1 : 0;
        return;
    }
    r->body = mm_buf_take(b, &r->body_len);
}

static void reply_error(struct sim *s, struct http_reply *r, int status, const char *status_text,
                        const char *field, const char *message, const char *request_id)
{
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"status\":");
    mm_buf_str(&b, status_text);
    mm_buf_puts(&b, ",\"request_id\":");
    mm_buf_str(&b, request_id);
    mm_buf_puts(&b, ",\"");
    mm_buf_puts(&b, field);
    mm_buf_puts(&b, "\":");
    mm_buf_str(&b, message);
    mm_buf_puts(&b, "}");
    if (status == 404)
        s->st.not_found++;
    else if (status == 401)
        s->st.unauthorized++;
    else if (status == 400)
        s->st.bad_request++;
    reply_json(r, status, &b);
}

/* 0 absent, 1 present (value in out), -1 malformed. Looks in the query. */
static int qget(const struct http_request *req, const char *key, char *out, size_t size)
{
    return http_query_get(req->query, key, out, size);
}

static int parse_rate(const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= 0 && d <= 1))
        return -1;
    *out = d;
    return 0;
}

static int parse_u32(const char *v, uint32_t *out)
{
    char *end;
    long long d = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || d < 0 || d > 86400000)
        return -1;
    *out = (uint32_t)d;
    return 0;
}

static int parse_outage(const char *v, struct outage *o)
{
    const char *dots = strstr(v, "..");
    if (dots == NULL || dots - v >= 64)
        return -1;
    char a[64];
    memcpy(a, v, (size_t)(dots - v));
    a[dots - v] = '\0';
    if (mock_api_time_parse(a, &o->from_us) != 0 || mock_api_time_parse(dots + 2, &o->to_us) != 0 ||
        o->to_us <= o->from_us)
        return -1;
    return 0;
}

static const char *host_for_links(const struct sim *s, const struct http_request *req, char *buf,
                                  size_t size)
{
    if (s->link_host != NULL) {
        snprintf(buf, size, "%s", s->link_host);
        return buf;
    }
    const char *h = http_request_header(req, "Host");
    bool ok = h && h[0] && strlen(h) < size;
    for (const char *p = h; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '.' || *p == ':' || *p == '-' || *p == '[' || *p == ']';
    if (ok)
        snprintf(buf, size, "%s", h);
    else
        snprintf(buf, size, "%s:%d", s->host, http_server_port(s->server));
    return buf;
}

/* ================= auth and faults ================= */

static bool authorized(const struct sim *s, const struct http_request *req, bool *missing)
{
    char key[256] = "";
    const char *auth = http_request_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        snprintf(key, sizeof key, "%s", auth + 7);
    else if (qget(req, "apiKey", key, sizeof key) != 1)
        key[0] = '\0';
    *missing = key[0] == '\0';
    if (*missing)
        return false;
    return s->api_key == NULL || strcmp(key, s->api_key) == 0;
}

static bool in_outage(const struct sim *s, int64_t now)
{
    for (int i = 0; i < s->noutages; i++)
        if (now >= s->outages[i].from_us && now < s->outages[i].to_us)
            return true;
    return false;
}

/* Whether underlying is one of --unentitled's comma list. */
static bool unentitled(const struct sim *s, const char *underlying)
{
    if (s->unentitled == NULL)
        return false;
    size_t al = strlen(underlying);
    for (const char *p = s->unentitled; *p;) {
        size_t n = strcspn(p, ",");
        if (n == al && strncmp(p, underlying, n) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Acts out response-level faults on a reply that is already built. */
static void apply_faults(struct sim *s, uint64_t n, uint32_t mask, struct http_reply *r,
                         const char *request_id)
{
    if (mask & (1u << MM_FAULT_SLOW)) {
        r->delay_ms = s->slow_ms;
        s->st.faults[MM_FAULT_SLOW]++;
    }
    if (mask & (1u << MM_FAULT_RESET)) {
        r->reset = 1;
        s->st.faults[MM_FAULT_RESET]++;
    } else if (mask & (1u << MM_FAULT_429)) {
        free(r->body);
        r->body = NULL;
        reply_error(s, r, 429, "ERROR", "error",
                    "You've exceeded the maximum requests per minute, please wait or upgrade your "
                    "subscription to continue.",
                    request_id);
        char h[64];
        snprintf(h, sizeof h, "Retry-After: %u\r\n", s->retry_after_s);
        r->extra_headers = strdup(h);
        s->st.faults[MM_FAULT_429]++;
    } else if (mask & (1u << MM_FAULT_5XX)) {
        free(r->body);
        r->body = NULL;
        double p = mm_fault_param(s->seed, n, MM_FAULT_5XX);
        if (p < 1.0 / 3) {
            reply_error(s, r, 500, "ERROR", "error", "Internal server error", request_id);
        } else if (p < 2.0 / 3) {
            static const char html[] = "<html><body><h1>502 Bad Gateway</h1></body></html>\n";
            r->status = 502;
            r->content_type = "text/html";
            r->body = strdup(html);
            r->body_len = r->body ? sizeof html - 1 : 0;
        } else {
            reply_error(s, r, 503, "ERROR", "error", "Service temporarily unavailable", request_id);
            char h[64];
            snprintf(h, sizeof h, "Retry-After: %u\r\n", s->retry_after_s);
            r->extra_headers = strdup(h);
        }
        s->st.faults[MM_FAULT_5XX]++;
    } else if (mask & (1u << MM_FAULT_MALFORMED)) {
        char *colon = r->body ? memchr(r->body, ':', r->body_len) : NULL;
        if (colon)
            *colon = ';';
        s->st.faults[MM_FAULT_MALFORMED]++;
    } else if (mask & (1u << MM_FAULT_TRUNCATE)) {
        /* Offsets count the head (~100 bytes) too: cut somewhere in the body. */
        double p = mm_fault_param(s->seed, n, MM_FAULT_TRUNCATE);
        r->truncate_at = 160 + (size_t)(p * (double)(r->body_len > 2 ? r->body_len - 2 : 1));
        s->st.faults[MM_FAULT_TRUNCATE]++;
    } else if (mask & (1u << MM_FAULT_STALL)) {
        double p = mm_fault_param(s->seed, n, MM_FAULT_STALL);
        r->stall_after = 160 + (size_t)(p * (double)(r->body_len > 2 ? r->body_len - 2 : 1));
        r->stall_ms = s->stall_ms;
        s->st.faults[MM_FAULT_STALL]++;
    }
}

static void injected_add(struct sim *s, const struct mm_contract *c, enum mm_bad_kind kind,
                         int64_t now, int page_limit, const char *request_id)
{
    if (s->ninjected == s->injected_cap) {
        if (s->injected_cap >= MAX_INJECTED) {
            s->injected_dropped++;
            return;
        }
        size_t nc = s->injected_cap ? s->injected_cap * 2 : 256;
        struct injected_row *p = realloc(s->injected, nc * sizeof *p);
        if (!p) {
            s->injected_dropped++;
            return;
        }
        s->injected = p;
        s->injected_cap = nc;
    }
    struct injected_row *ir = &s->injected[s->ninjected++];
    snprintf(ir->ticker, sizeof ir->ticker, "%s", c->ticker);
    mm_bad_ticker(&s->market, c, kind, ir->sent_ticker, sizeof ir->sent_ticker);
    ir->kind = kind;
    ir->at_us = now;
    ir->page_limit = page_limit;
    snprintf(ir->request_id, sizeof ir->request_id, "%s", request_id);
}

/* ================= query parsing ================= */

static int parse_money_milli(const char *v, int64_t *out_milli, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(d) || d < 0 || d > 1e7)
        return -1;
    *out = d;
    *out_milli = (int64_t)llround(d * 1000);
    return 0;
}

/* strike_price[.gt|.gte|.lt|.lte] and expiration_date[...] into inclusive bounds. */
static int parse_range_filters(const struct http_request *req, int64_t *slo, int64_t *shi, int32_t *elo,
                               int32_t *ehi, char *err, size_t err_size)
{
    static const char *const ops[] = {"", ".gt", ".gte", ".lt", ".lte"};
    char key[48], v[64];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "strike_price%s", ops[i]);
        int g = qget(req, key, v, sizeof v);
        if (g < 0 || (g == 1 && v[0] == '\0')) {
            snprintf(err, err_size, "invalid %s", key);
            return -1;
        }
        if (g == 1) {
            int64_t mil;
            double d;
            if (parse_money_milli(v, &mil, &d) != 0) {
                snprintf(err, err_size, "invalid %s", key);
                return -1;
            }
            int64_t lo = INT64_MIN, hi = INT64_MAX;
            double x = d * 1000;
            switch (i) {
            case 0: lo = hi = mil; break;
            case 1: lo = (int64_t)floor(x + 1e-6) + 1; break;
            case 2: lo = (int64_t)ceil(x - 1e-6); break;
            case 3: hi = (int64_t)ceil(x - 1e-6) - 1; break;
            default: hi = (int64_t)floor(x + 1e-6); break;
            }
            if (lo > *slo)
                *slo = lo;
            if (hi < *shi)
                *shi = hi;
        }
        snprintf(key, sizeof key, "expiration_date%s", ops[i]);
        g = qget(req, key, v, sizeof v);
        if (g < 0) {
            snprintf(err, err_size, "invalid %s", key);
            return -1;
        }
        if (g == 1) {
            int32_t d;
            if (date_parse(v, &d) != 0) {
                snprintf(err, err_size, "invalid %s (want YYYY-MM-DD)", key);
                return -1;
            }
            int32_t lo = INT32_MIN, hi = INT32_MAX;
            switch (i) {
            case 0: lo = hi = d; break;
            case 1: lo = d + 1; break;
            case 2: lo = d; break;
            case 3: hi = d - 1; break;
            default: hi = d; break;
            }
            if (lo > *elo)
                *elo = lo;
            if (hi < *ehi)
                *ehi = hi;
        }
    }
    return 0;
}

static int parse_limit(const struct http_request *req, int def, int max, int *out)
{
    char v[32];
    int g = qget(req, "limit", v, sizeof v);
    if (g == 0) {
        *out = def;
        return 0;
    }
    char *end;
    long l = g == 1 ? strtol(v, &end, 10) : -1;
    if (g != 1 || end == v || *end != '\0' || l < 1 || l > max)
        return -1;
    *out = (int)l;
    return 0;
}

static int parse_order(const struct http_request *req, bool *desc)
{
    char v[16];
    int g = qget(req, "order", v, sizeof v);
    if (g == 0)
        return 0;
    if (g == 1 && strcmp(v, "asc") == 0)
        *desc = false;
    else if (g == 1 && strcmp(v, "desc") == 0)
        *desc = true;
    else
        return -1;
    return 0;
}

/* ================= API handlers ================= */

/* --pad-bytes: a field no parser reads, "pad":[0,0,...], about n bytes long:
 * the page stays valid, and a list of tiny values is what costs a JSON
 * parser the most memory per byte (memory tests). */
static void chain_pad(struct mm_buf *b, size_t n)
{
    if (n == 0)
        return;
    static const char zeros[] = "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0";
    mm_buf_puts(b, ",\"pad\":[");
    for (size_t done = 0; done < n; done += sizeof zeros - 1)
        mm_buf_add(b, zeros, sizeof zeros - 1);
    mm_buf_puts(b, "0]");
}

/* The query of a first page (no cursor) from its parameters: NULL, or why it is a 400. */
static const char *chain_query_from_params(const struct http_request *req, struct mm_chain_query *q,
                                           char *err, size_t err_size)
{
    char v[32];
    if (parse_limit(req, 10, 250, &q->limit) != 0)
        return "limit must be an integer in 1..250";
    if (parse_order(req, &q->desc) != 0)
        return "order must be asc or desc";
    int g = qget(req, "sort", v, sizeof v);
    if (g == 1 && strcmp(v, "ticker") == 0)
        q->sort = MM_SORT_TICKER;
    else if (g == 1 && strcmp(v, "expiration_date") == 0)
        q->sort = MM_SORT_EXPIRATION;
    else if (g == 1 && strcmp(v, "strike_price") == 0)
        q->sort = MM_SORT_STRIKE;
    else if (g != 0)
        return "sort must be ticker, expiration_date or strike_price";
    g = qget(req, "contract_type", v, sizeof v);
    if (g == 1 && strcmp(v, "call") == 0)
        q->type_filter = 'C';
    else if (g == 1 && strcmp(v, "put") == 0)
        q->type_filter = 'P';
    else if (g != 0)
        return "contract_type must be call or put";
    if (parse_range_filters(req, &q->strike_lo, &q->strike_hi, &q->exp_lo, &q->exp_hi, err, err_size) != 0)
        return err;
    return NULL;
}

/* Which row of a page of count the bad-row fault replaces (-1 none), and with what. */
static int chain_bad_row_pick(struct sim *s, uint64_t n, uint32_t mask, int count, enum mm_bad_kind *kind)
{
    /* A bad row is injected (and recorded, for tests to find in ingest_rejects)
     * only in a body that reaches the client intact: not in one this same
     * request will replace (429, 5xx), corrupt or cut (malformed, truncate,
     * reset). A stalled or slow body still arrives whole. */
    const uint32_t body_lost = (1u << MM_FAULT_RESET) | (1u << MM_FAULT_429) | (1u << MM_FAULT_5XX) |
                               (1u << MM_FAULT_MALFORMED) | (1u << MM_FAULT_TRUNCATE);
    *kind = MM_BAD_NONE;
    if (!(mask & (1u << MM_FAULT_BAD_ROW)) || (mask & body_lost) || count <= 0)
        return -1;
    double p = mm_fault_param(s->seed, n, MM_FAULT_BAD_ROW);
    *kind = (enum mm_bad_kind)(1 + (int)(mm_fault_param(s->seed, n + (1ull << 40), MM_FAULT_BAD_ROW) *
                                         (MM_BAD_KIND_COUNT - 1)));
    s->st.faults[MM_FAULT_BAD_ROW]++;
    return (int)(p * count);
}

/* The page's rows, the one at bad_at replaced by a bad row of bad_kind (and recorded). */
static void chain_rows_write(struct sim *s, struct mm_buf *b, const struct mm_contract *page, int count,
                             int bad_at, enum mm_bad_kind bad_kind, int64_t now, int page_limit,
                             const char *rid)
{
    for (int i = 0; i < count; i++) {
        struct mm_snapshot snap;
        mm_snapshot_at(&s->market, &page[i], now, &snap);
        if (i)
            mm_buf_add(b, ",", 1);
        enum mm_bad_kind kind = MM_BAD_NONE;
        if (i == bad_at) {
            kind = bad_kind == MM_BAD_NEG_SIZE && !snap.has_trade ? MM_BAD_INFINITE : bad_kind;
            injected_add(s, &page[i], kind, now, page_limit, rid);
        }
        mm_snapshot_write(b, &s->market, &snap, kind);
    }
    s->st.rows += (uint64_t)count;
}

/* ,"next_url" to the page after q (next), or back to q's own start under the cursor-loop fault. */
static void chain_next_url(struct sim *s, const struct http_request *req, struct mm_buf *b,
                           const char *underlying, const struct mm_chain_query *q, bool had_cursor,
                           const struct mm_chain_query *next, uint32_t mask)
{
    char cur[512], host[256];
    const struct mm_chain_query *target = next;
    struct mm_chain_query loop;
    if (mask & (1u << MM_FAULT_CURSOR_LOOP)) {
        /* Back to where this page started (or to the first page). */
        loop = *q;
        if (!had_cursor)
            loop.has_after = false;
        target = &loop;
        s->st.faults[MM_FAULT_CURSOR_LOOP]++;
    }
    if (mm_cursor_encode(target, &s->market, cur, sizeof cur) == 0) {
        mm_buf_puts(b, ",\"next_url\":\"http://");
        mm_buf_puts(b, host_for_links(s, req, host, sizeof host));
        mm_buf_puts(b, "/v3/snapshot/options/");
        mm_buf_puts(b, underlying);
        mm_buf_puts(b, "?cursor=");
        mm_buf_puts(b, cur);
        mm_buf_puts(b, "\"");
    }
}

static void handle_chain(struct sim *s, const struct http_request *req, const char *underlying,
                         int64_t now, uint64_t n, uint32_t mask, const char *rid,
                         struct http_reply *r)
{
    struct mm_chain_query q;
    char v[600], err[128];
    int u = mm_underlying_find(&s->market, underlying);
    int g = qget(req, "cursor", v, sizeof v);
    bool had_cursor = g == 1;
    const char *why = NULL;
    if (g == 1) {
        if (mm_cursor_decode(&s->market, v, &q) != 0 || u < 0 || q.uidx != u)
            why = "invalid cursor";
    } else {
        mm_chain_query_init(&q, u < 0 ? 0 : u);
        why = chain_query_from_params(req, &q, err, sizeof err);
    }
    if (why != NULL) {
        reply_error(s, r, 400, "ERROR", "error", why, rid);
        return;
    }
    s->st.chain_pages++;
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"request_id\":");
    mm_buf_str(&b, rid);
    mm_buf_puts(&b, ",\"results\":[");
    bool more = false;
    struct mm_chain_query next;
    int count = 0;
    static struct mm_contract page[250];
    if (u >= 0)
        count = mm_chain_page(&s->market, &q, now, page, &more, &next);
    enum mm_bad_kind bad_kind;
    int bad_at = chain_bad_row_pick(s, n, mask, count, &bad_kind);
    chain_rows_write(s, &b, page, count, bad_at, bad_kind, now, q.limit, rid);
    mm_buf_puts(&b, "],\"status\":\"OK\"");
    chain_pad(&b, s->pad_bytes);
    if (more)
        chain_next_url(s, req, &b, underlying, &q, had_cursor, &next, mask);
    mm_buf_puts(&b, "}");
    reply_json(r, 200, &b);
}

static void handle_single(struct sim *s, const char *underlying, const char *ticker, int64_t now,
                          const char *rid, struct http_reply *r)
{
    struct mm_contract c;
    if (mm_contract_parse(&s->market, ticker, &c) != 0 ||
        strcmp(s->market.underlyings[c.uidx].name, underlying) != 0 || !mm_is_listed(&s->market, &c, now)) {
        reply_error(s, r, 404, "NOT_FOUND", "message", "Options contract not found", rid);
        return;
    }
    s->st.single++;
    struct mm_snapshot snap;
    mm_snapshot_at(&s->market, &c, now, &snap);
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"request_id\":");
    mm_buf_str(&b, rid);
    mm_buf_puts(&b, ",\"results\":");
    mm_snapshot_write(&b, &s->market, &snap, MM_BAD_NONE);
    mm_buf_puts(&b, ",\"status\":\"OK\"}");
    s->st.rows++;
    reply_json(r, 200, &b);
}

struct bars_out {
    struct mm_buf *b;
    int count, limit;
    bool more;
    int64_t last_start;
};

static int bars_write(void *user, const struct mm_bar *bar)
{
    struct bars_out *o = user;
    if (o->count == o->limit) {
        o->more = true;
        return 1;
    }
    struct mm_buf *b = o->b;
    const struct {
        const char *key;
        double v;
        int decimals;
    } prices[] = {{"\"v\":", bar->v, 0},  {",\"vw\":", bar->vw, 4}, {",\"o\":", bar->o, 2},
                  {",\"c\":", bar->c, 2}, {",\"h\":", bar->h, 2},   {",\"l\":", bar->l, 2}};
    mm_buf_puts(b, o->count ? ",{" : "{");
    for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++) {
        mm_buf_puts(b, prices[i].key);
        mm_buf_fixed(b, prices[i].v, prices[i].decimals);
    }
    mm_buf_puts(b, ",\"t\":");
    mm_buf_int(b, bar->start_ms);
    mm_buf_puts(b, ",\"n\":");
    mm_buf_int(b, bar->n);
    mm_buf_puts(b, "}");
    o->count++;
    o->last_start = bar->start_ms;
    return 0;
}

static int parse_agg_bound(const struct mock_market *m, const char *v, bool is_to, int64_t *ms)
{
    int32_t d;
    if (strlen(v) == 10 && date_parse(v, &d) == 0) {
        *ms = is_to ? mm_midnight_us(m, d + 1) / 1000 - 1 : mm_midnight_us(m, d) / 1000;
        return 0;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || x < 0)
        return -1;
    *ms = x;
    return 0;
}

static void handle_aggs(struct sim *s, const struct http_request *req, char *rest, int64_t now,
                        const char *rid, struct http_reply *r)
{
    /* rest = "{ticker}/range/{mult}/{span}/{from}/{to}" */
    char *parts[6];
    int np = 0;
    for (char *p = rest; np < 6;) {
        parts[np++] = p;
        char *sl = strchr(p, '/');
        if (!sl)
            break;
        *sl = '\0';
        p = sl + 1;
    }
    if (np != 6 || strcmp(parts[1], "range") != 0 || strchr(parts[5], '/')) {
        reply_error(s, r, 404, "NOT_FOUND", "message", "The requested resource was not found", rid);
        return;
    }
    char *end;
    long mult = strtol(parts[2], &end, 10);
    enum mm_timespan span;
    if (strcmp(parts[3], "second") == 0)
        span = MM_SPAN_SECOND;
    else if (strcmp(parts[3], "minute") == 0)
        span = MM_SPAN_MINUTE;
    else if (strcmp(parts[3], "hour") == 0)
        span = MM_SPAN_HOUR;
    else if (strcmp(parts[3], "day") == 0)
        span = MM_SPAN_DAY;
    else {
        reply_error(s, r, 400, "ERROR", "error", "timespan must be second, minute, hour or day", rid);
        return;
    }
    int64_t from_ms, to_ms;
    if (end == parts[2] || *end || mult < 1 || mult > 10000 || parse_agg_bound(&s->market, parts[4], false, &from_ms) != 0 ||
        parse_agg_bound(&s->market, parts[5], true, &to_ms) != 0) {
        reply_error(s, r, 400, "ERROR", "error", "bad multiplier, from or to", rid);
        return;
    }
    int limit;
    bool desc = false;
    char v[16];
    if (parse_limit(req, AGGS_DEFAULT_LIMIT, AGGS_MAX_LIMIT, &limit) != 0 ||
        (qget(req, "sort", v, sizeof v) == 1 && strcmp(v, "asc") != 0 && strcmp(v, "desc") != 0)) {
        reply_error(s, r, 400, "ERROR", "error", "bad sort or limit", rid);
        return;
    }
    if (qget(req, "sort", v, sizeof v) == 1 && strcmp(v, "desc") == 0)
        desc = true;
    s->st.aggs++;
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"ticker\":");
    mm_buf_str(&b, parts[0]);
    struct mm_buf rows = {0};
    struct bars_out o = {&rows, 0, limit, false, 0};
    struct mm_contract c;
    if (mm_contract_parse(&s->market, parts[0], &c) == 0)
        mm_bars_foreach(&s->market, &c, span, (int)mult, from_ms, to_ms, desc, now, bars_write, &o);
    s->st.bars += (uint64_t)o.count;
    mm_buf_puts(&b, ",\"queryCount\":");
    mm_buf_int(&b, o.count);
    mm_buf_puts(&b, ",\"resultsCount\":");
    mm_buf_int(&b, o.count);
    mm_buf_puts(&b, ",\"adjusted\":true");
    if (o.count > 0) {
        /* like the real API: no "results" key when there are none */
        mm_buf_puts(&b, ",\"results\":[");
        if (rows.bytes.data)
            mm_buf_add(&b, rows.bytes.data, rows.bytes.len);
        mm_buf_puts(&b, "]");
    }
    if (rows.bytes.failed)
        b.bytes.failed = true;
    mm_buf_free(&rows);
    mm_buf_puts(&b, ",\"status\":\"OK\",\"request_id\":");
    mm_buf_str(&b, rid);
    mm_buf_puts(&b, ",\"count\":");
    mm_buf_int(&b, o.count);
    if (o.more) {
        char host[256], url[4608]; /* room for the longest path segments the parser accepts */
        int64_t nf = desc ? from_ms : o.last_start + 1, nt = desc ? o.last_start - 1 : to_ms;
        snprintf(url, sizeof url, ",\"next_url\":\"http://%s/v2/aggs/ticker/%s/range/%ld/%s/%lld/%lld?sort=%s&limit=%d\"",
                 host_for_links(s, req, host, sizeof host), parts[0], mult, parts[3], (long long)nf,
                 (long long)nt, desc ? "desc" : "asc", limit);
        mm_buf_puts(&b, url);
    }
    mm_buf_puts(&b, "}");
    reply_json(r, 200, &b);
}

/* Reference cursor: "r1|uidx(-1 all)|position|as_of|expired|type|elo|ehi|limit|desc". */
struct ref_query {
    int uidx;
    int64_t pos;
    int32_t as_of;
    int expired, type, desc, limit;
    int32_t elo, ehi;
};

static int ref_expiries(const struct sim *s, const struct ref_query *q, int32_t out[MM_MAX_EXPIRIES])
{
    int32_t all[MM_MAX_EXPIRIES];
    int n = q->expired ? mm_expired_at(q->as_of, all) : mm_expiries_at(&s->market, q->as_of, all);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (all[i] >= q->elo && all[i] <= q->ehi)
            out[k++] = all[i];
    return k;
}

/* A reference cursor (base64 of the text above) into q; 0, or -1 when it is not one we sent. */
static int ref_cursor_decode(const struct sim *s, const char *v, struct ref_query *q)
{
    unsigned char text[400];
    long long pos;
    long as_of, elo, ehi;
    int used = 0;
    if (mm_base64_decode(v, text, sizeof text) < 0 ||
        sscanf((const char *)text, "r1|%d|%lld|%ld|%d|%d|%ld|%ld|%d|%d%n", &q->uidx, &pos, &as_of,
               &q->expired, &q->type, &elo, &ehi, &q->limit, &q->desc, &used) != 9 ||
        text[used] != '\0' || q->uidx < -1 || q->uidx >= (int)s->market.nunderlyings || pos < 0 ||
        q->limit < 1 || q->limit > REF_MAX_LIMIT || (q->type != 0 && q->type != 'C' && q->type != 'P') ||
        elo < INT32_MIN || ehi > INT32_MAX || as_of < INT32_MIN || as_of > INT32_MAX)
        return -1;
    q->pos = pos;
    q->as_of = (int32_t)as_of;
    q->elo = (int32_t)elo;
    q->ehi = (int32_t)ehi;
    return 0;
}

/* The query of a first page (no cursor) from its parameters: NULL, or why it is a 400. */
static const char *ref_query_from_params(const struct sim *s, const struct http_request *req,
                                         struct ref_query *q)
{
    char v[32], err[128];
    int g = qget(req, "underlying_ticker", v, sizeof v);
    if (g == 1) {
        q->uidx = mm_underlying_find(&s->market, v);
        if (q->uidx < 0)
            q->uidx = -2; /* unknown: an empty answer */
    }
    if (qget(req, "as_of", v, sizeof v) == 1 && date_parse(v, &q->as_of) != 0)
        return "as_of must be YYYY-MM-DD";
    if (qget(req, "expired", v, 16) == 1)
        q->expired = strcmp(v, "true") == 0;
    g = qget(req, "contract_type", v, 16);
    if (g == 1)
        q->type = strcmp(v, "call") == 0 ? 'C' : strcmp(v, "put") == 0 ? 'P' : -1;
    bool d = false;
    int64_t slo = INT64_MIN, shi = INT64_MAX; /* the strike filters are checked, not applied */
    if (q->type < 0 || parse_limit(req, REF_DEFAULT_LIMIT, REF_MAX_LIMIT, &q->limit) != 0 ||
        parse_order(req, &d) != 0 ||
        parse_range_filters(req, &slo, &shi, &q->elo, &q->ehi, err, sizeof err) != 0)
        return "bad contract_type, limit, order or filter";
    q->desc = d;
    return NULL;
}

/* One contract of the reference list, as the real API's object (keys alphabetical). */
static void ref_contract_write(const struct sim *s, struct mm_buf *b, int u, const struct mm_contract *c,
                               bool first)
{
    const struct mm_underlying *ud = &s->market.underlyings[u];
    char date[16];
    mm_buf_puts(b, first ? "{" : ",{");
    if (mm_contract_adjusted(&s->market, u, c->exp_days, c->type, c->strike_milli)) {
        /* the deliverables of an adjusted contract (after a special dividend, say) */
        mm_buf_puts(b, "\"additional_underlyings\":[{\"amount\":100,\"type\":\"equity\",\"underlying\":");
        mm_buf_str(b, ud->name);
        mm_buf_puts(b, "},{\"amount\":25.5,\"type\":\"cash\",\"underlying\":\"USD\"}],");
    }
    mm_buf_puts(b, "\"cfi\":");
    mm_buf_puts(b, c->type == 'C' ? "\"OCASPS\",\"contract_type\":\"call\"" : "\"OPASPS\",\"contract_type\":\"put\"");
    mm_buf_puts(b, ",\"exercise_style\":\"american\",\"expiration_date\":\"");
    mm_buf_puts(b, date_format(date, sizeof date, c->exp_days));
    mm_buf_puts(b, "\",\"primary_exchange\":\"BATO\",\"shares_per_contract\":100,\"strike_price\":");
    mm_buf_fixed(b, (double)c->strike_milli / 1000.0, 3);
    mm_buf_puts(b, ",\"ticker\":");
    mm_buf_str(b, c->ticker);
    mm_buf_puts(b, ",\"underlying_ticker\":");
    mm_buf_str(b, ud->name);
    mm_buf_puts(b, "}");
}

/* ,"next_url" to the page that starts at position pos of q's list. */
static void ref_next_url(const struct sim *s, const struct http_request *req, struct mm_buf *b,
                         const struct ref_query *q, int64_t pos)
{
    char text[200], cur[300], host[256];
    snprintf(text, sizeof text, "r1|%d|%lld|%ld|%d|%d|%ld|%ld|%d|%d", q->uidx, (long long)pos,
             (long)q->as_of, q->expired, q->type, (long)q->elo, (long)q->ehi, q->limit, q->desc);
    if (mm_base64_encode((const unsigned char *)text, strlen(text), cur, sizeof cur) > 0) {
        mm_buf_puts(b, ",\"next_url\":\"http://");
        mm_buf_puts(b, host_for_links(s, req, host, sizeof host));
        mm_buf_puts(b, "/v3/reference/options/contracts?cursor=");
        mm_buf_puts(b, cur);
        mm_buf_puts(b, "\"");
    }
}

static void handle_reference(struct sim *s, const struct http_request *req, int64_t now, const char *rid,
                             struct http_reply *r)
{
    struct ref_query q = {-1, 0, mm_local_date(&s->market, now), 0, 0, 0, REF_DEFAULT_LIMIT, INT32_MIN, INT32_MAX};
    char v[600];
    const char *why = NULL;
    if (qget(req, "cursor", v, sizeof v) == 1)
        why = ref_cursor_decode(s, v, &q) != 0 ? "invalid cursor" : NULL;
    else
        why = ref_query_from_params(s, req, &q);
    if (why != NULL) {
        reply_error(s, r, 400, "ERROR", "error", why, rid);
        return;
    }
    s->st.reference++;
    /* the list runs underlying, expiry, type, strike: a position names its contract */
    int32_t ex[MM_MAX_EXPIRIES];
    int ne = ref_expiries(s, &q, ex);
    int nt = q.type ? 1 : 2;
    int64_t per = (int64_t)ne * nt * s->market.nstrikes;
    int64_t nu = q.uidx == -1 ? (int64_t)s->market.nunderlyings : q.uidx >= 0 ? 1 : 0;
    int64_t total = per * nu;
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"results\":[");
    int count = 0;
    for (int64_t p = q.pos; p < total && count < q.limit; p++, count++) {
        int64_t i = q.desc ? total - 1 - p : p;
        int u = q.uidx >= 0 ? q.uidx : (int)(i / per);
        int64_t rem = i % per;
        int e = (int)(rem / (nt * s->market.nstrikes));
        int ty = (int)(rem / s->market.nstrikes % nt);
        int k = (int)(rem % s->market.nstrikes);
        char type = q.type ? (char)q.type : ty ? 'P' : 'C';
        const struct mm_underlying *ud = &s->market.underlyings[u];
        struct mm_contract c;
        mm_contract_make(&s->market, u, ex[e], type, ud->strike0_milli + k * ud->strike_step_milli, &c);
        ref_contract_write(s, &b, u, &c, count == 0);
    }
    s->st.contracts += (uint64_t)count;
    mm_buf_puts(&b, "],\"status\":\"OK\",\"request_id\":");
    mm_buf_str(&b, rid);
    if (q.pos + count < total)
        ref_next_url(s, req, &b, &q, q.pos + count);
    mm_buf_puts(&b, "}");
    reply_json(r, 200, &b);
}

/* ================= control and truth ================= */

static void stats_json(const struct sim *s, struct mm_buf *b)
{
    const struct sim_stats *st = &s->st;
#define STAT(name) \
    mm_buf_puts(b, ",\"" #name "\":"); \
    mm_buf_int(b, (int64_t)st->name)
    mm_buf_puts(b, "{\"sim_now_us\":");
    mm_buf_int(b, sim_now(s));
    STAT(requests);
    STAT(api_requests);
    STAT(chain_pages);
    STAT(single);
    STAT(aggs);
    STAT(reference);
    STAT(control);
    STAT(truth);
    STAT(not_found);
    STAT(unauthorized);
    STAT(bad_request);
    STAT(rows);
    STAT(bars);
    STAT(contracts);
    STAT(bytes);
    STAT(outage_replies);
#undef STAT
    mm_buf_puts(b, ",\"injected_rows\":");
    mm_buf_int(b, (int64_t)s->ninjected);
    mm_buf_puts(b, ",\"faults\":{");
    for (int f = 0; f < MM_FAULT_COUNT; f++) {
        mm_buf_puts(b, f ? ",\"" : "\"");
        mm_buf_puts(b, mm_fault_name((enum mm_fault)f));
        mm_buf_puts(b, "\":");
        mm_buf_int(b, (int64_t)st->faults[f]);
    }
    mm_buf_puts(b, "}}");
}

static void faults_json(const struct sim *s, struct mm_buf *b)
{
    mm_buf_puts(b, "{");
    for (int f = 0; f < MM_FAULT_COUNT; f++) {
        mm_buf_puts(b, f ? ",\"" : "\"");
        mm_buf_puts(b, mm_fault_name((enum mm_fault)f));
        mm_buf_puts(b, "_rate\":");
        mm_buf_double(b, s->rates[f]);
    }
    mm_buf_puts(b, ",\"slow_ms\":");
    mm_buf_int(b, s->slow_ms);
    mm_buf_puts(b, ",\"stall_ms\":");
    mm_buf_int(b, s->stall_ms);
    mm_buf_puts(b, ",\"retry_after\":");
    mm_buf_int(b, s->retry_after_s);
    mm_buf_puts(b, ",\"outage_mode\":");
    mm_buf_puts(b, s->outage_reset ? "\"reset\"" : "\"503\"");
    mm_buf_puts(b, ",\"outages\":[");
    for (int i = 0; i < s->noutages; i++) {
        char a[40], z[40];
        mm_buf_puts(b, i ? ",{\"from\":\"" : "{\"from\":\"");
        mm_buf_puts(b, timestamp_format(a, sizeof a, s->outages[i].from_us));
        mm_buf_puts(b, "\",\"to\":\"");
        mm_buf_puts(b, timestamp_format(z, sizeof z, s->outages[i].to_us));
        mm_buf_puts(b, "\"}");
    }
    mm_buf_puts(b, "]}");
}

/* Rate setting names shared by flags ("--fault-429-rate") and the control endpoint ("429-rate"). */
static const struct {
    const char *name;
    enum mm_fault fault;
} rate_names[] = {
    {"429-rate", MM_FAULT_429},           {"5xx-rate", MM_FAULT_5XX},
    {"slow-rate", MM_FAULT_SLOW},         {"stall-rate", MM_FAULT_STALL},
    {"truncate-rate", MM_FAULT_TRUNCATE}, {"malformed-rate", MM_FAULT_MALFORMED},
    {"reset-rate", MM_FAULT_RESET},       {"cursor-loop-rate", MM_FAULT_CURSOR_LOOP},
    {"bad-row-rate", MM_FAULT_BAD_ROW},
};
#define NRATES (sizeof rate_names / sizeof rate_names[0])

/* Applies one fault setting; 0 ok, -1 bad value, 1 unknown name. */
static int fault_set(struct sim *s, const char *name, const char *value)
{
    char norm[48];
    size_t i = 0;
    if (strncmp(name, "fault-", 6) == 0 || strncmp(name, "fault_", 6) == 0)
        name += 6;
    for (; name[i] && i + 1 < sizeof norm; i++)
        norm[i] = name[i] == '_' ? '-' : name[i];
    norm[i] = '\0';
    for (size_t k = 0; k < NRATES; k++)
        if (strcmp(norm, rate_names[k].name) == 0)
            return parse_rate(value, &s->rates[rate_names[k].fault]);
    if (strcmp(norm, "slow-ms") == 0)
        return parse_u32(value, &s->slow_ms);
    if (strcmp(norm, "stall-ms") == 0)
        return parse_u32(value, &s->stall_ms);
    if (strcmp(norm, "retry-after") == 0)
        return parse_u32(value, &s->retry_after_s);
    if (strcmp(norm, "outage-mode") == 0) {
        if (strcmp(value, "503") == 0)
            s->outage_reset = false;
        else if (strcmp(value, "reset") == 0)
            s->outage_reset = true;
        else
            return -1;
        return 0;
    }
    if (strcmp(norm, "outage") == 0) {
        if (value[0] == '\0' || strcmp(value, "none") == 0) {
            s->noutages = 0;
            return 0;
        }
        if (s->noutages >= MAX_OUTAGES)
            return -1;
        return parse_outage(value, &s->outages[s->noutages]) == 0 ? (s->noutages++, 0) : -1;
    }
    if (strcmp(norm, "clear") == 0) {
        memset(s->rates, 0, sizeof s->rates);
        s->noutages = 0;
        return 0;
    }
    return 1;
}

/* Applies every key=value pair of a form-encoded string (query or body). */
static int faults_apply_form(struct sim *s, const char *form, char *err, size_t err_size)
{
    const char *p = form;
    while (*p) {
        const char *e = strchr(p, '&');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char key[64];
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen > 0 && klen < sizeof key) {
            memcpy(key, p, klen);
            key[klen] = '\0';
            char val[128];
            if (http_query_get(p, key, val, sizeof val) != 1) /* decodes this pair's value */
                val[0] = '\0';
            int rc = fault_set(s, key, val);
            if (rc != 0) {
                snprintf(err, err_size, "%s fault setting '%s'", rc < 0 ? "bad value for" : "unknown", key);
                return -1;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

static int truth_time(const struct sim *s, const struct http_request *req, int64_t *at)
{
    char v[64];
    int g = qget(req, "at", v, sizeof v);
    if (g == 0) {
        *at = sim_now(s);
        return 0;
    }
    return g == 1 ? mock_api_time_parse(v, at) : -1;
}

static void day_json(struct mm_buf *b, const struct mm_day *d)
{
    /* the snapshot writer's day object, with the simulator's two extras first */
    mm_buf_puts(b, "{\"has_trades\":");
    mm_buf_puts(b, d->has_trades ? "true" : "false");
    mm_buf_puts(b, ",\"bars\":");
    mm_buf_int(b, d->nbars);
    mm_day_members(b, d, ",", 1);
    mm_buf_puts(b, "}");
}

/* GET /_sim/stats */
static void sim_stats(struct sim *s, struct http_reply *r)
{
    struct mm_buf b = {0};
    s->st.control++;
    stats_json(s, &b);
    reply_json(r, 200, &b);
}

/* GET /_sim/faults, and POST or PUT to change them (query and form body, in that order) */
static void sim_faults(struct sim *s, const struct http_request *req, const char *body, const char *rid,
                       struct http_reply *r)
{
    char err[160];
    s->st.control++;
    if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
        if (faults_apply_form(s, req->query, err, sizeof err) != 0 ||
            faults_apply_form(s, body ? body : "", err, sizeof err) != 0) {
            reply_error(s, r, 400, "ERROR", "error", err, rid);
            return;
        }
        log_info("faults changed", "by=control_endpoint");
    }
    struct mm_buf b = {0};
    faults_json(s, &b);
    reply_json(r, 200, &b);
}

/* GET /_sim/clock */
static void sim_clock(struct sim *s, struct http_reply *r)
{
    struct mm_buf b = {0};
    char t[40];
    s->st.control++;
    mm_buf_puts(&b, "{\"sim_now_us\":");
    int64_t now = sim_now(s);
    mm_buf_int(&b, now);
    mm_buf_puts(&b, ",\"sim_now\":\"");
    mm_buf_puts(&b, timestamp_format(t, sizeof t, now));
    mm_buf_puts(&b, "\",\"speed\":");
    mm_buf_double(&b, s->speed);
    mm_buf_puts(&b, ",\"session_date\":\"");
    mm_buf_puts(&b, date_format(t, sizeof t, mm_session_date(&s->market, now)));
    mm_buf_puts(&b, "\"}");
    reply_json(r, 200, &b);
}

/* GET /_sim/injected: every bad row put into a chain page so far */
static void sim_injected(struct sim *s, struct http_reply *r)
{
    struct mm_buf b = {0};
    s->st.control++;
    mm_buf_puts(&b, "{\"count\":");
    mm_buf_int(&b, (int64_t)s->ninjected);
    mm_buf_puts(&b, ",\"dropped\":");
    mm_buf_int(&b, (int64_t)s->injected_dropped);
    mm_buf_puts(&b, ",\"results\":[");
    for (size_t i = 0; i < s->ninjected; i++) {
        const struct injected_row *ir = &s->injected[i];
        mm_buf_puts(&b, i ? ",{\"ticker\":" : "{\"ticker\":");
        mm_buf_str(&b, ir->ticker);
        mm_buf_puts(&b, ",\"sent_ticker\":");
        mm_buf_str(&b, ir->sent_ticker);
        mm_buf_puts(&b, ",\"reason\":");
        mm_buf_str(&b, mm_bad_kind_name(ir->kind));
        mm_buf_puts(&b, ",\"at_us\":");
        mm_buf_int(&b, ir->at_us);
        mm_buf_puts(&b, ",\"page_limit\":");
        mm_buf_int(&b, ir->page_limit);
        mm_buf_puts(&b, ",\"request_id\":");
        mm_buf_str(&b, ir->request_id);
        mm_buf_puts(&b, "}");
    }
    mm_buf_puts(&b, "]}");
    reply_json(r, 200, &b);
}

/* GET /_sim/truth/snapshot and /_sim/truth/dayblock (what) of ?ticker= at `at` */
static void truth_snapshot(struct sim *s, const struct http_request *req, const char *what, int64_t at,
                           const char *rid, struct http_reply *r)
{
    char ticker[64], date[64];
    struct mm_contract c;
    if (qget(req, "ticker", ticker, sizeof ticker) != 1 || mm_contract_parse(&s->market, ticker, &c) != 0) {
        reply_error(s, r, 404, "NOT_FOUND", "message", "unknown ticker", rid);
        return;
    }
    struct mm_snapshot snap;
    mm_snapshot_at(&s->market, &c, at, &snap);
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"request_id\":");
    mm_buf_str(&b, rid);
    mm_buf_puts(&b, ",\"ticker\":");
    mm_buf_str(&b, c.ticker);
    mm_buf_puts(&b, ",\"at_us\":");
    mm_buf_int(&b, at);
    mm_buf_puts(&b, ",\"listed\":");
    mm_buf_puts(&b, mm_is_listed(&s->market, &c, at) ? "true" : "false");
    mm_buf_puts(&b, ",\"last_updated_us\":");
    mm_buf_int(&b, snap.event_ns / 1000);
    if (strcmp(what, "snapshot") == 0) {
        mm_buf_puts(&b, ",\"results\":");
        mm_snapshot_write(&b, &s->market, &snap, MM_BAD_NONE);
    } else {
        mm_buf_puts(&b, ",\"session_date\":\"");
        mm_buf_puts(&b, date_format(date, sizeof date, snap.day.date));
        mm_buf_puts(&b, "\",\"day\":");
        day_json(&b, &snap.day);
    }
    mm_buf_puts(&b, ",\"status\":\"OK\"}");
    reply_json(r, 200, &b);
}

/* GET /_sim/truth/contracts?underlying=U: every contract listed at `at`, walked page by page */
static void truth_contracts(struct sim *s, const struct http_request *req, int64_t at, const char *rid,
                            struct http_reply *r)
{
    char name[32];
    int u = qget(req, "underlying", name, sizeof name) == 1 ? mm_underlying_find(&s->market, name) : -1;
    if (u < 0) {
        reply_error(s, r, 404, "NOT_FOUND", "message", "unknown underlying", rid);
        return;
    }
    struct mm_chain_query q, next;
    mm_chain_query_init(&q, u);
    q.limit = 250;
    static struct mm_contract page[250];
    bool more = true;
    int total = 0;
    struct mm_buf b = {0};
    mm_buf_puts(&b, "{\"underlying\":");
    mm_buf_str(&b, name);
    mm_buf_puts(&b, ",\"at_us\":");
    mm_buf_int(&b, at);
    mm_buf_puts(&b, ",\"results\":[");
    while (more) {
        int k = mm_chain_page(&s->market, &q, at, page, &more, &next);
        for (int i = 0; i < k; i++) {
            struct mm_snapshot snap;
            mm_snapshot_at(&s->market, &page[i], at, &snap);
            mm_buf_puts(&b, total++ ? ",{\"ticker\":" : "{\"ticker\":");
            mm_buf_str(&b, page[i].ticker);
            mm_buf_puts(&b, ",\"last_updated_us\":");
            mm_buf_int(&b, snap.event_ns / 1000);
            mm_buf_puts(&b, "}");
        }
        q = next;
    }
    mm_buf_puts(&b, "],\"count\":");
    mm_buf_int(&b, total);
    mm_buf_puts(&b, ",\"status\":\"OK\"}");
    reply_json(r, 200, &b);
}

/* GET /_sim/truth/{what}?at=TIME: what the API serves (or a backfill must rebuild) at TIME */
static void sim_truth(struct sim *s, const struct http_request *req, const char *what, const char *rid,
                      struct http_reply *r)
{
    int64_t at;
    s->st.truth++;
    if (truth_time(s, req, &at) != 0)
        reply_error(s, r, 400, "ERROR", "error", "at must be RFC3339 or unix microseconds", rid);
    else if (strcmp(what, "snapshot") == 0 || strcmp(what, "dayblock") == 0)
        truth_snapshot(s, req, what, at, rid, r);
    else if (strcmp(what, "contracts") == 0)
        truth_contracts(s, req, at, rid, r);
    else
        reply_error(s, r, 404, "NOT_FOUND", "message", "The requested resource was not found", rid);
}

/* The control and truth routes, /_sim/...: no key, no faults. */
static void handle_sim(struct sim *s, const struct http_request *req, const char *body,
                       const char *rid, struct http_reply *r)
{
    const char *path = req->path;
    if (strcmp(path, "/_sim/stats") == 0)
        sim_stats(s, r);
    else if (strcmp(path, "/_sim/faults") == 0)
        sim_faults(s, req, body, rid, r);
    else if (strcmp(path, "/_sim/clock") == 0)
        sim_clock(s, r);
    else if (strcmp(path, "/_sim/injected") == 0)
        sim_injected(s, r);
    else if (strncmp(path, "/_sim/truth/", 12) == 0)
        sim_truth(s, req, path + 12, rid, r);
    else
        reply_error(s, r, 404, "NOT_FOUND", "message", "The requested resource was not found", rid);
}

/* ================= dispatch ================= */

enum route { ROUTE_NONE, ROUTE_CHAIN, ROUTE_SINGLE, ROUTE_AGGS, ROUTE_REFERENCE };

static void on_request(void *user, const struct http_request *req, const char *body,
                       struct http_reply *r)
{
    struct sim *s = user;
    char rid[33];
    request_id_make(s, rid);
    s->st.requests++;
    const char *path = req->path;
    if (mock_flatfiles_route(&s->market, sim_now(s), req, r)) { /* S3-style flat files: their own keys */
        s->st.bytes += r->body_len;
        return;
    }
    if (strncmp(path, "/_sim/", 6) == 0) {
        handle_sim(s, req, body, rid, r);
        s->st.bytes += r->body_len;
        return;
    }
    char rest[2048];
    snprintf(rest, sizeof rest, "%s", path);
    enum route route = ROUTE_NONE;
    char *a = NULL, *bpart = NULL;
    if (strncmp(rest, "/v3/snapshot/options/", 21) == 0) {
        a = rest + 21;
        char *sl = strchr(a, '/');
        if (sl) {
            *sl = '\0';
            bpart = sl + 1;
            route = (*bpart && !strchr(bpart, '/')) ? ROUTE_SINGLE : ROUTE_NONE;
        } else {
            route = *a ? ROUTE_CHAIN : ROUTE_NONE;
        }
    } else if (strncmp(rest, "/v2/aggs/ticker/", 16) == 0) {
        a = rest + 16;
        route = ROUTE_AGGS;
    } else if (strcmp(rest, "/v3/reference/options/contracts") == 0) {
        route = ROUTE_REFERENCE;
    }
    bool missing;
    if (!authorized(s, req, &missing)) {
        reply_error(s, r, 401, missing ? "NOT_AUTHORIZED" : "ERROR", missing ? "message" : "error",
                    missing ? "API Key was not provided" : "Unknown API Key", rid);
        s->st.bytes += r->body_len;
        return;
    }
    if (route == ROUTE_NONE) {
        reply_error(s, r, 404, "NOT_FOUND", "message", "The requested resource was not found", rid);
        s->st.bytes += r->body_len;
        return;
    }
    s->st.api_requests++;
    int64_t now = sim_now(s);
    if (in_outage(s, now)) {
        s->st.outage_replies++;
        if (s->outage_reset)
            r->reset = 1;
        else
            reply_error(s, r, 503, "ERROR", "error", "Service temporarily unavailable (outage)", rid);
        s->st.bytes += r->body_len;
        return;
    }
    if ((route == ROUTE_CHAIN || route == ROUTE_SINGLE) && unentitled(s, a)) {
        /* the body the real API sends for data outside the plan */
        reply_error(s, r, 403, "NOT_AUTHORIZED", "message",
                    "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing",
                    rid);
        s->st.bytes += r->body_len;
        return;
    }
    uint64_t n = s->fault_counter++;
    uint32_t mask = mm_fault_draw(s->seed, n, s->rates);
    switch (route) {
    case ROUTE_CHAIN: handle_chain(s, req, a, now, n, mask, rid, r); break;
    case ROUTE_SINGLE: handle_single(s, a, bpart, now, rid, r); break;
    case ROUTE_AGGS: handle_aggs(s, req, a, now, rid, r); break;
    default: handle_reference(s, req, now, rid, r); break;
    }
    if (r->status == 200)
        apply_faults(s, n, mask, r, rid);
    if (s->market.realism && r->extra_headers == NULL && !r->reset) {
        /* the real API's quota header; never 0 here, so nothing pauses */
        char h[64];
        snprintf(h, sizeof h, "X-RateLimit-Remaining: %llu\r\n",
                 (unsigned long long)(1000000 - s->st.api_requests % 1000000) + 1);
        r->extra_headers = strdup(h);
    }
    s->st.bytes += r->body_len;
}

/* ================= lifecycle ================= */

static void stats_log(const struct sim *s)
{
    const struct sim_stats *st = &s->st;
    log_info("mock-api stats",
             "requests=%llu api_requests=%llu chain_pages=%llu single=%llu aggs=%llu reference=%llu "
             "control=%llu truth=%llu not_found=%llu unauthorized=%llu bad_request=%llu rows=%llu "
             "bars=%llu contracts=%llu bytes=%llu outage_replies=%llu injected_rows=%zu "
             "fault_reset=%llu fault_429=%llu fault_5xx=%llu fault_malformed=%llu fault_truncate=%llu "
             "fault_stall=%llu fault_slow=%llu fault_cursor_loop=%llu fault_bad_row=%llu",
             (unsigned long long)st->requests, (unsigned long long)st->api_requests,
             (unsigned long long)st->chain_pages, (unsigned long long)st->single,
             (unsigned long long)st->aggs, (unsigned long long)st->reference,
             (unsigned long long)st->control, (unsigned long long)st->truth,
             (unsigned long long)st->not_found, (unsigned long long)st->unauthorized,
             (unsigned long long)st->bad_request, (unsigned long long)st->rows,
             (unsigned long long)st->bars, (unsigned long long)st->contracts,
             (unsigned long long)st->bytes, (unsigned long long)st->outage_replies, s->ninjected,
             (unsigned long long)st->faults[MM_FAULT_RESET], (unsigned long long)st->faults[MM_FAULT_429],
             (unsigned long long)st->faults[MM_FAULT_5XX], (unsigned long long)st->faults[MM_FAULT_MALFORMED],
             (unsigned long long)st->faults[MM_FAULT_TRUNCATE], (unsigned long long)st->faults[MM_FAULT_STALL],
             (unsigned long long)st->faults[MM_FAULT_SLOW], (unsigned long long)st->faults[MM_FAULT_CURSOR_LOOP],
             (unsigned long long)st->faults[MM_FAULT_BAD_ROW]);
}

static void on_server_closed(void *user)
{
    struct sim *s = user;
    s->server = NULL;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct sim *s = h->data;
    if (s->stopping)
        return;
    s->stopping = true;
    log_info("stopping", "signal=%d", signum);
    http_server_stop(s->server, on_server_closed, s);
}

/* usage: what it is, where it listens, the market it simulates */
static void usage_serving(FILE *out)
{
    fprintf(out,
        "usage: optsnap mock-api [options]\n"
        "\n"
        "Serves a deterministic simulated options market with the market-data API's\n"
        "shape over HTTP/1.1 (keep-alive), for tests, demos and load tests.\n"
        "\n"
        "Listening:\n"
        "  --host ADDR              address to bind (default 127.0.0.1)\n"
        "  --port N                 port (default 8089; 0 = any free port). The bound\n"
        "                           address is logged: msg=\"listening\" addr=HOST:PORT\n"
        "  --api-key KEY            accept only this key (Authorization: Bearer KEY or\n"
        "                           ?apiKey=KEY); without it any non-empty key is accepted\n"
        "  --max-connections N      concurrent connections (default 1024)\n"
        "  --log-level LEVEL        debug|info|warn|error (default info)\n"
        "\n"
        "Market:\n"
        "  --seed N                 everything derives from it (default 1)\n"
        "  --underlyings N|LIST     N synthetic underlyings (SPY,QQQ,IWM,AAPL,... then AAA,AAB,...)\n"
        "                           or a comma list (default 20)\n"
        "  --contracts M            contracts per underlying (default 2000; the real number,\n"
        "                           expiries x 2 x strikes, is logged and is <= M)\n"
        "  --clock TIME             simulated time at start (RFC3339; default: the wall clock)\n"
        "  --speed X                simulated seconds per wall second (default 1)\n"
        "  --always-open            trade 24/7 (sessions are whole local days, every day)\n"
        "  --ny-calendar            sessions on the real New York calendar: DST, the NYSE\n"
        "                           holidays and early closes of sql/002_calendar.sql\n"
        "  --realism                (implies --ny-calendar) the real API's shapes: day.last_updated in ms beside ns\n"
        "                           quote/trade times, timeframe DELAYED, no fmv, greeks {} or\n"
        "                           no IV for some contracts, some with no event time at all\n"
        "                           (the /truth endpoints still give the values, not the shapes),\n"
        "                           an X-RateLimit-Remaining header, index underlyings (I:SPX)\n"
        "                           answer underlying_asset.value\n"
        "  --unentitled LIST        answer these underlyings' snapshots with the real 403\n"
        "                           NOT_AUTHORIZED body\n"
        "  --link-host HOST:PORT    next_url points there (an alias host of this server)\n"
        "  --pad-bytes N            each chain page carries a \"pad\":[0,0,...] field of about\n"
        "                           N bytes that no parser reads (memory tests)\n"
        "\n");
}

/* usage: the model the market follows and the faults it can act out */
static void usage_faults(FILE *out)
{
    fprintf(out,
        "Model (without --ny-calendar): America/New_York is a fixed UTC-5 (no DST, no holidays): sessions are\n"
        "14:30-21:00Z Monday-Friday; day.last_updated is the session date's 05:00Z.\n"
        "Expiries: weekly Fridays and monthly third Fridays. Most contracts trade a few\n"
        "times a day or never, about 3%% several times a minute. A snapshot is a function\n"
        "of the contract's last event (trade, quote or session start), so an idle\n"
        "contract re-polls byte-identically. Before a session's first trade the day\n"
        "object holds only last_updated and previous_close. The day block equals the\n"
        "session's minute bars aggregated (vwap = sum(vw*v)/sum(v)).\n"
        "\n"
        "Faults (rates are probabilities per API request, 0..1; deterministic given --seed):\n"
        "  --fault-429-rate R       429 with Retry-After\n"
        "  --fault-retry-after S    Retry-After seconds for 429/503 (default 1)\n"
        "  --fault-5xx-rate R       500, 502 (HTML body) or 503\n"
        "  --fault-slow-rate R      delay the answer by --fault-slow-ms (default 2000)\n"
        "  --fault-stall-rate R     stall mid-body for --fault-stall-ms (default 20000)\n"
        "  --fault-truncate-rate R  send part of the body, then close\n"
        "  --fault-malformed-rate R syntactically broken JSON\n"
        "  --fault-reset-rate R     close the connection with a TCP reset\n"
        "  --fault-cursor-loop-rate R  next_url loops back to this page's cursor\n"
        "  --fault-bad-row-rate R   one row of a chain page replaced by a row the parser\n"
        "                           must reject (non-OCC ticker, numeric ticker, no details,\n"
        "                           negative trade size, open_interest 1e999, fmv a string)\n"
        "  --outage FROM..TO        simulated-time window where every API request fails\n"
        "                           (repeatable, up to 8)\n"
        "  --outage-mode 503|reset  how an outage answers (default 503)\n"
        "\n");
}

/* usage: the routes it serves */
static void usage_routes(FILE *out)
{
    fprintf(out,
        "API routes (need a key):\n"
        "  GET /v3/snapshot/options/{underlying}   limit 1-250 (10), order, sort (ticker,\n"
        "      expiration_date, strike_price), contract_type, strike_price[.gt|.gte|.lt|.lte],\n"
        "      expiration_date[...]; next_url carries an opaque cursor, never the key\n"
        "  GET /v3/snapshot/options/{underlying}/{contract}\n"
        "  GET /v2/aggs/ticker/{contract}/range/{mult}/{second|minute|hour|day}/{from}/{to}\n"
        "      from/to as YYYY-MM-DD (local dates) or unix ms; sort, limit (5000, max 50000)\n"
        "  GET /v3/reference/options/contracts     underlying_ticker, as_of, expired,\n"
        "      contract_type, expiration_date[...], limit (10, max 1000), order\n"
        "\n"
        "Control and truth routes (no key; served where the API listens):\n"
        "  GET  /_sim/stats         counters of what was served and injected (also logged\n"
        "                           as one logfmt line on exit)\n"
        "  GET  /_sim/faults        current fault settings\n"
        "  POST /_sim/faults        change them: form body or query, names as the flags\n"
        "                           without --fault- (429-rate=0.1&outage=FROM..TO&\n"
        "                           outage-mode=reset&clear=1 ...); outage= (empty) clears\n"
        "  GET  /_sim/injected      every bad row injected: ticker, reason, at_us, page_limit\n"
        "  GET  /_sim/clock         simulated now\n"
        "  GET  /_sim/truth/snapshot?ticker=T&at=TIME   the exact single-contract result\n"
        "                           the API serves at TIME (RFC3339 or unix us; default now)\n"
        "  GET  /_sim/truth/dayblock?ticker=T&at=TIME   the day block a backfill at TIME\n"
        "                           must reconstruct from minute bars\n"
        "  GET  /_sim/truth/contracts?underlying=U&at=TIME  every listed contract and its\n"
        "                           last event time (the snapshot key) at TIME\n"
        "\n"
        "SIGINT/SIGTERM: close every connection and exit 0.\n");
}

static void usage(FILE *out)
{
    usage_serving(out);
    usage_faults(out);
    usage_routes(out);
}

enum {
    OPT_HOST = 1000, OPT_PORT, OPT_API_KEY, OPT_SEED, OPT_UNDERLYINGS, OPT_CONTRACTS, OPT_CLOCK,
    OPT_SPEED, OPT_ALWAYS_OPEN, OPT_OUTAGE, OPT_OUTAGE_MODE, OPT_MAXCONN, OPT_LOG_LEVEL, OPT_HELP,
    OPT_FAULT, /* every --fault-* option */
    OPT_REALISM, OPT_UNENTITLED, OPT_LINK_HOST, OPT_NY_CALENDAR, OPT_PAD_BYTES,
};

static const struct option sim_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"seed", required_argument, NULL, OPT_SEED},
    {"underlyings", required_argument, NULL, OPT_UNDERLYINGS},
    {"contracts", required_argument, NULL, OPT_CONTRACTS},
    {"clock", required_argument, NULL, OPT_CLOCK},
    {"speed", required_argument, NULL, OPT_SPEED},
    {"always-open", no_argument, NULL, OPT_ALWAYS_OPEN},
    {"outage", required_argument, NULL, OPT_OUTAGE},
    {"outage-mode", required_argument, NULL, OPT_OUTAGE_MODE},
    {"max-connections", required_argument, NULL, OPT_MAXCONN},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"realism", no_argument, NULL, OPT_REALISM},
    {"ny-calendar", no_argument, NULL, OPT_NY_CALENDAR},
    {"unentitled", required_argument, NULL, OPT_UNENTITLED},
    {"link-host", required_argument, NULL, OPT_LINK_HOST},
    {"pad-bytes", required_argument, NULL, OPT_PAD_BYTES},
    {"fault-429-rate", required_argument, NULL, OPT_FAULT},
    {"fault-retry-after", required_argument, NULL, OPT_FAULT},
    {"fault-5xx-rate", required_argument, NULL, OPT_FAULT},
    {"fault-slow-rate", required_argument, NULL, OPT_FAULT},
    {"fault-slow-ms", required_argument, NULL, OPT_FAULT},
    {"fault-stall-rate", required_argument, NULL, OPT_FAULT},
    {"fault-stall-ms", required_argument, NULL, OPT_FAULT},
    {"fault-truncate-rate", required_argument, NULL, OPT_FAULT},
    {"fault-malformed-rate", required_argument, NULL, OPT_FAULT},
    {"fault-reset-rate", required_argument, NULL, OPT_FAULT},
    {"fault-cursor-loop-rate", required_argument, NULL, OPT_FAULT},
    {"fault-bad-row-rate", required_argument, NULL, OPT_FAULT},
    {NULL, 0, NULL, 0},
};

struct sim_args {
    const char *underlyings, *clock;
    int contracts;
    bool always_open, realism, ny_calendar;
};

#define SIM_ARGS_HELP 100 /* --help printed: exit 0 */

static bool host_port_chars(const char *v)
{
    for (const char *p = v; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == ':' || *p == '-'))
            return false;
    return true;
}

/* optarg as a whole number in [lo, hi], or false after saying which option was bad. */
static bool arg_long(const char *name, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(optarg, &end, 10);
    if (*end || end == optarg || v < lo || v > hi) {
        fprintf(stderr, "mock-api: bad --%s\n", name);
        return false;
    }
    *out = v;
    return true;
}

/* optarg as a whole number in [0, hi], or false after saying which option was bad. */
static bool arg_ull(const char *name, unsigned long long hi, unsigned long long *out)
{
    char *end;
    unsigned long long v = strtoull(optarg, &end, 10);
    if (*end || end == optarg || v > hi) {
        fprintf(stderr, "mock-api: bad --%s\n", name);
        return false;
    }
    *out = v;
    return true;
}

/* One option of the market (usage's "Market:") into s and a: EXIT_OK or EXIT_USAGE (said why). */
static int market_opt(struct sim *s, struct sim_args *a, int c)
{
    char *end;
    long n;
    unsigned long long u;
    switch (c) {
    case OPT_SEED:
        if (!arg_ull("seed", ULLONG_MAX, &u))
            return EXIT_USAGE;
        s->seed = u;
        break;
    case OPT_UNDERLYINGS: a->underlyings = optarg; break;
    case OPT_CONTRACTS:
        if (!arg_long("contracts", INT_MIN, INT_MAX, &n))
            return EXIT_USAGE;
        a->contracts = (int)n;
        break;
    case OPT_CLOCK: a->clock = optarg; break;
    case OPT_SPEED:
        s->speed = strtod(optarg, &end);
        if (*end || end == optarg || !(s->speed >= 0 && s->speed <= 1e6)) {
            fprintf(stderr, "mock-api: bad --speed\n");
            return EXIT_USAGE;
        }
        break;
    case OPT_ALWAYS_OPEN: a->always_open = true; break;
    case OPT_NY_CALENDAR: a->ny_calendar = true; break;
    case OPT_REALISM: a->realism = true; a->ny_calendar = true; break;
    case OPT_UNENTITLED: s->unentitled = optarg[0] ? optarg : NULL; break;
    case OPT_LINK_HOST:
        if (!host_port_chars(optarg)) {
            fprintf(stderr, "mock-api: bad --link-host (want host:port)\n");
            return EXIT_USAGE;
        }
        s->link_host = optarg[0] ? optarg : NULL;
        break;
    case OPT_PAD_BYTES:
        if (!arg_ull("pad-bytes", 256u * 1024 * 1024, &u))
            return EXIT_USAGE;
        s->pad_bytes = (size_t)u;
        break;
    }
    return EXIT_OK;
}

/* One option (c, and idx for a long one) into s and a: EXIT_OK, EXIT_USAGE (said why) or SIM_ARGS_HELP. */
static int sim_parse_opt(struct sim *s, struct sim_args *a, int c, int idx)
{
    long n;
    enum log_level lv;
    switch (c) {
    case OPT_HOST: s->host = optarg; break;
    case OPT_PORT:
        if (!arg_long("port", 0, 65535, &n))
            return EXIT_USAGE;
        s->port = (int)n;
        break;
    case OPT_API_KEY: s->api_key = optarg[0] ? optarg : NULL; break;
    case OPT_OUTAGE:
        if (s->noutages >= MAX_OUTAGES || parse_outage(optarg, &s->outages[s->noutages]) != 0) {
            fprintf(stderr, "mock-api: bad --outage (want FROM..TO, at most %d)\n", MAX_OUTAGES);
            return EXIT_USAGE;
        }
        s->noutages++;
        break;
    case OPT_OUTAGE_MODE:
        if (fault_set(s, "outage-mode", optarg) != 0) {
            fprintf(stderr, "mock-api: --outage-mode must be 503 or reset\n");
            return EXIT_USAGE;
        }
        break;
    case OPT_MAXCONN:
        if (!arg_long("max-connections", 1, 100000, &n))
            return EXIT_USAGE;
        s->max_connections = (size_t)n;
        break;
    case OPT_LOG_LEVEL:
        if (log_level_parse(optarg, &lv) != 0) {
            fprintf(stderr, "mock-api: bad --log-level\n");
            return EXIT_USAGE;
        }
        log_set_level(lv);
        break;
    case OPT_FAULT:
        if (fault_set(s, sim_opts[idx].name, optarg) != 0) {
            fprintf(stderr, "mock-api: bad value for --%s\n", sim_opts[idx].name);
            return EXIT_USAGE;
        }
        break;
    case OPT_SEED:
    case OPT_UNDERLYINGS:
    case OPT_CONTRACTS:
    case OPT_CLOCK:
    case OPT_SPEED:
    case OPT_ALWAYS_OPEN:
    case OPT_NY_CALENDAR:
    case OPT_REALISM:
    case OPT_UNENTITLED:
    case OPT_LINK_HOST:
    case OPT_PAD_BYTES: return market_opt(s, a, c);
    case 'h':
    case OPT_HELP: usage(stdout); return SIM_ARGS_HELP;
    default: usage(stderr); return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The command line into s and a: EXIT_OK, EXIT_USAGE (said why) or SIM_ARGS_HELP. */
static int sim_parse_args(struct sim *s, struct sim_args *a, int argc, char **argv)
{
    optind = 1;
    opterr = 1;
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, "h", sim_opts, &idx)) != -1) {
        int rc = sim_parse_opt(s, a, c, idx);
        if (rc != EXIT_OK)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "mock-api: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Listens and serves until SIGINT/SIGTERM. An exit code. */
static int sim_serve(struct sim *s, const struct sim_args *a)
{
    s->wall_start_us = time_now_us();
    s->clock_start_us = s->wall_start_us;
    if (a->clock && mock_api_time_parse(a->clock, &s->clock_start_us) != 0) {
        fprintf(stderr, "mock-api: bad --clock (want RFC3339)\n");
        return EXIT_USAGE;
    }
    char err[160];
    if (mock_market_init(&s->market, s->seed, a->underlyings, a->contracts, a->always_open, err, sizeof err) != 0) {
        fprintf(stderr, "mock-api: %s\n", err);
        return EXIT_USAGE;
    }
    s->market.realism = a->realism;
    s->market.ny_calendar = a->ny_calendar;
    signal(SIGPIPE, SIG_IGN);
    int rc = uv_loop_init(&s->loop);
    if (rc != 0) {
        log_error("uv_loop_init failed", "err=%s", uv_strerror(rc));
        mock_market_free(&s->market);
        return EXIT_RUNTIME;
    }
    struct http_server_settings hs = {0};
    hs.host = s->host;
    hs.port = s->port;
    hs.max_connections = s->max_connections;
    hs.max_head_bytes = 16 * 1024;
    hs.idle_timeout_ms = 30000;
    rc = http_server_start(&s->server, &s->loop, &hs, on_request, s);
    if (rc != 0) {
        log_error("listen failed", "host=%s port=%d err=%s", s->host, s->port, uv_strerror(rc));
        uv_loop_close(&s->loop);
        mock_market_free(&s->market);
        return EXIT_RUNTIME;
    }
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    char t[40];
    log_info("listening", "addr=%s:%d underlyings=%zu contracts_per_underlying=%zu seed=%llu clock=%s speed=%g always_open=%d",
             s->host, http_server_port(s->server), s->market.nunderlyings,
             mm_contracts_per_underlying(&s->market), (unsigned long long)s->seed,
             timestamp_format(t, sizeof t, s->clock_start_us), s->speed, a->always_open ? 1 : 0);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    stats_log(s);
    rc = uv_loop_close(&s->loop);
    free(s->injected);
    mock_market_free(&s->market);
    if (rc != 0) {
        log_error("loop did not close", "err=%s", uv_strerror(rc));
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int cmd_mock_api(int argc, char **argv)
{
    static struct sim sim;
    struct sim *s = &sim;
    memset(s, 0, sizeof *s);
    s->host = "127.0.0.1";
    s->port = 8089;
    s->seed = 1;
    s->speed = 1;
    s->slow_ms = 2000;
    s->stall_ms = 20000;
    s->retry_after_s = 1;
    s->max_connections = 1024;
    struct sim_args a = {.underlyings = "20", .contracts = 2000};
    int rc = sim_parse_args(s, &a, argc, argv);
    if (rc != EXIT_OK)
        return rc == SIM_ARGS_HELP ? EXIT_OK : rc;
    return sim_serve(s, &a);
}
