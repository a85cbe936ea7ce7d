/* Unit tests for http_parse: request heads, strictness, incremental input, query decoding. */
#include "optsnap/http/http_parse.h"
#include "test.h"

#include <stdint.h>

#define MAX_HEAD 16384

/* malloc for tests: never NULL, so a failure is loud and the compiler knows it. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Parses a copy held in an exact-size heap block, so ASan sees any over-read. */
static int parse_copy(struct http_request *req, const char *text, size_t len, char **keep)
{
    char *buf = xmalloc(len ? len : 1);
    memcpy(buf, text, len);
    int r = http_request_parse(req, buf, len, MAX_HEAD);
    if (keep)
        *keep = buf;
    else
        free(buf);
    return r;
}

static int parse_str(const char *text)
{
    struct http_request req;
    return parse_copy(&req, text, strlen(text), NULL);
}

static const char valid_request[] =
    "GET /v3/snapshot/options/O%3AAAPL?limit=250&order=asc HTTP/1.1\r\n"
    "Host: 127.0.0.1:8089\r\n"
    "Authorization: Bearer secret\r\n"
    "Accept:application/json\r\n"
    "X-Empty:\r\n"
    "X-Spaces: \t padded value \t \r\n"
    "\r\n";

static void test_parse_valid(void)
{
    struct http_request req;
    char *buf = NULL;
    CHECK_INT(parse_copy(&req, valid_request, strlen(valid_request), &buf), HTTP_PARSE_DONE);
    CHECK_STR(req.method, "GET");
    CHECK_STR(req.target, "/v3/snapshot/options/O%3AAAPL?limit=250&order=asc");
    CHECK_STR(req.path, "/v3/snapshot/options/O:AAPL");
    CHECK_STR(req.query, "limit=250&order=asc");
    CHECK_INT(req.version_minor, 1);
    CHECK_INT(req.nheaders, 5);
    CHECK(req.keep_alive);
    CHECK_INT(req.content_length, 0);
    CHECK_INT(req.head_len, strlen(valid_request));
    CHECK_STR(http_request_header(&req, "host"), "127.0.0.1:8089");
    CHECK_STR(http_request_header(&req, "AUTHORIZATION"), "Bearer secret");
    CHECK_STR(http_request_header(&req, "accept"), "application/json");
    CHECK_STR(http_request_header(&req, "x-empty"), "");
    CHECK_STR(http_request_header(&req, "X-Spaces"), "padded value");
    CHECK(http_request_header(&req, "missing") == NULL);
    CHECK(http_request_header(&req, "Hos") == NULL);
    free(buf);

    CHECK_INT(parse_copy(&req, "GET / HTTP/1.0\r\n\r\n", 18, &buf), HTTP_PARSE_DONE);
    CHECK_STR(req.path, "/");
    CHECK_STR(req.query, "");
    CHECK_INT(req.version_minor, 0);
    CHECK_INT(req.nheaders, 0);
    CHECK(!req.keep_alive);
    CHECK_INT(req.head_len, 18);
    free(buf);

    const char *q = "GET /x? HTTP/1.1\r\n\r\n";
    CHECK_INT(parse_copy(&req, q, strlen(q), &buf), HTTP_PARSE_DONE);
    CHECK_STR(req.path, "/x");
    CHECK_STR(req.query, "");
    CHECK_STR(req.target, "/x?");
    free(buf);
}

static void test_parse_keep_alive(void)
{
    struct http_request req;
    const char *cases[][2] = {
        {"GET / HTTP/1.1\r\n\r\n", "1"},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "0"},
        {"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", "0"},
        {"GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n", "0"},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", "1"},
        {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", "1"},
        {"GET / HTTP/1.0\r\n\r\n", "0"},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "1"},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "0"},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_INT(parse_copy(&req, cases[i][0], strlen(cases[i][0]), NULL), HTTP_PARSE_DONE);
        if (req.keep_alive != (cases[i][1][0] == '1')) {
            fprintf(stderr, "  keep_alive wrong for case %zu\n", i);
            test_current_failed = 1;
        }
    }
}

static void test_parse_content_length(void)
{
    struct http_request req;
    const char *ok = "POST /control HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n";
    CHECK_INT(parse_copy(&req, ok, strlen(ok), NULL), HTTP_PARSE_DONE);
    CHECK_INT(req.content_length, 12);
    CHECK_INT(req.head_len, strlen(ok));
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), HTTP_PARSE_DONE);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
              HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
              HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n"), HTTP_PARSE_BAD);
}

static void test_parse_rejects(void)
{
    const char *bad[] = {
        "GET / HTTP/1.1\n\n",                          /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\n\r\n",             /* bare LF in a header */
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",        /* lone CR */
        "GET / HTTP/1.1\r\nX: a\x01 b\r\n\r\n",        /* control byte */
        "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",          /* DEL */
        "GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n",  /* obs-fold */
        "GET / HTTP/1.1\r\n X: a\r\n\r\n",             /* whitespace before first header */
        "GET / HTTP/1.1\r\nX : a\r\n\r\n",             /* space before colon */
        "GET / HTTP/1.1\r\nX(y): a\r\n\r\n",           /* non-token name */
        "GET / HTTP/1.1\r\n: a\r\n\r\n",               /* empty name */
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.2\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\n\r\n",
        "GET x HTTP/1.1\r\n\r\n",                    /* not origin-form */
        "GET http://h/ HTTP/1.1\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\n\r\n",
        "GET /a?b#frag HTTP/1.1\r\n\r\n",
        "GET /a%00b HTTP/1.1\r\n\r\n",
        "GET /a%0a HTTP/1.1\r\n\r\n",
        "GET /a%zz HTTP/1.1\r\n\r\n",
        "GET /a%4 HTTP/1.1\r\n\r\n",
        "GET /a% HTTP/1.1\r\n\r\n",
        "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",             /* raw UTF-8 in the target */
        "GET /\t HTTP/1.1\r\n\r\n",
        "GET\r\n\r\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse_str(bad[i]);
        if (r != HTTP_PARSE_BAD) {
            fprintf(stderr, "  bad case %zu gave %d\n", i, r);
            test_current_failed = 1;
        }
    }
    /* Some are recognised before the head is complete. */
    CHECK_INT(parse_str("GET / HTTP/1.1\n"), HTTP_PARSE_BAD);
    CHECK_INT(parse_str("\x16\x03\x01\x02"), HTTP_PARSE_BAD); /* a TLS hello */
    CHECK_INT(parse_str("GARBAGE\r\n"), HTTP_PARSE_BAD);
    /* obs-text is allowed in a header value. */
    CHECK_INT(parse_str("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n"), HTTP_PARSE_DONE);
    CHECK_INT(parse_str("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n"), HTTP_PARSE_DONE);
}

static void test_parse_header_count(void)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "X-H%d: %d\r\n", i, i);
    strcpy(text + n, "\r\n");
    struct http_request req;
    char *buf = NULL;
    CHECK_INT(parse_copy(&req, text, strlen(text), &buf), HTTP_PARSE_DONE);
    CHECK_INT(req.nheaders, HTTP_MAX_HEADERS);
    CHECK_STR(http_request_header(&req, "x-h31"), "31");
    free(buf);
    n += (size_t)snprintf(text + n, sizeof text - n, "X-One-Too-Many: 1\r\n\r\n");
    CHECK_INT(parse_str(text), HTTP_PARSE_BAD);
}

static void test_parse_limits(void)
{
    struct http_request req;
    /* A head of exactly max_head bytes is accepted; one byte more is not. */
    char text[300];
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t fill = 100;
    size_t n = strlen(start);
    memcpy(text, start, n);
    memset(text + n, 'a', fill);
    memcpy(text + n + fill, "\r\n\r\n", 4);
    size_t total = n + fill + 4;
    char *buf = xmalloc(total);
    memcpy(buf, text, total);
    CHECK_INT(http_request_parse(&req, buf, total, total), HTTP_PARSE_DONE);
    free(buf);
    buf = xmalloc(total);
    memcpy(buf, text, total);
    CHECK_INT(http_request_parse(&req, buf, total, total - 1), HTTP_PARSE_TOO_LARGE);
    /* Unfinished and already at the cap: too large, not "again". */
    CHECK_INT(http_request_parse(&req, buf, total - 10, total - 10), HTTP_PARSE_TOO_LARGE);
    CHECK_INT(http_request_parse(&req, buf, total - 10, total), HTTP_PARSE_AGAIN);
    free(buf);

    /* A decoded path longer than path_buf. */
    size_t plen = sizeof req.path_buf + 10;
    static char big[sizeof req.path_buf + 128];
    memcpy(big, "GET /", 5);
    n = 5;
    memset(big + n, 'p', plen);
    n += plen;
    memcpy(big + n, " HTTP/1.1\r\n\r\n", 13);
    n += 13;
    CHECK_INT(parse_copy(&req, big, n, NULL), HTTP_PARSE_TOO_LARGE);
    /* ...while the same length in the query is fine. */
    memcpy(big, "GET /?", 6);
    n = 6;
    memset(big + n, 'q', plen);
    n += plen;
    memcpy(big + n, " HTTP/1.1\r\n\r\n", 13);
    n += 13;
    CHECK_INT(parse_copy(&req, big, n, NULL), HTTP_PARSE_DONE);
    CHECK_INT(parse_copy(&req, "", 0, NULL), HTTP_PARSE_AGAIN);
}

/* Every strict prefix is AGAIN and leaves the buffer untouched. */
static void test_parse_prefixes(void)
{
    size_t total = strlen(valid_request);
    for (size_t len = 0; len < total; len++) {
        struct http_request req;
        char *buf = xmalloc(len ? len : 1);
        memcpy(buf, valid_request, len);
        int r = http_request_parse(&req, buf, len, MAX_HEAD);
        if (r != HTTP_PARSE_AGAIN) {
            fprintf(stderr, "  prefix %zu gave %d\n", len, r);
            test_current_failed = 1;
        }
        if (memcmp(buf, valid_request, len) != 0) {
            fprintf(stderr, "  prefix %zu modified the buffer\n", len);
            test_current_failed = 1;
        }
        free(buf);
    }
}

static void test_parse_pipelined(void)
{
    const char *a = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *b = "POST /second?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    const char *c = "GET /third HTTP/1.1\r\nConnection: close\r\n\r\n";
    char all[512];
    size_t n = (size_t)snprintf(all, sizeof all, "%s%s%s", a, b, c);
    char *buf = xmalloc(n);
    memcpy(buf, all, n);
    struct http_request req;
    size_t off = 0;
    CHECK_INT(http_request_parse(&req, buf + off, n - off, MAX_HEAD), HTTP_PARSE_DONE);
    CHECK_STR(req.path, "/first");
    CHECK_INT(req.head_len, strlen(a));
    off += req.head_len + req.content_length;
    CHECK_INT(http_request_parse(&req, buf + off, n - off, MAX_HEAD), HTTP_PARSE_DONE);
    CHECK_STR(req.method, "POST");
    CHECK_STR(req.path, "/second");
    CHECK_STR(req.query, "x=1");
    CHECK_INT(req.content_length, 5);
    CHECK(memcmp(buf + off + req.head_len, "hello", 5) == 0);
    off += req.head_len + req.content_length;
    CHECK_INT(http_request_parse(&req, buf + off, n - off, MAX_HEAD), HTTP_PARSE_DONE);
    CHECK_STR(req.path, "/third");
    CHECK(!req.keep_alive);
    off += req.head_len;
    CHECK_INT(off, n);
    free(buf);
}

static uint32_t rng_state = 12345;
static uint32_t rng_next(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

/* Every single-byte change of a valid request, and random multi-byte damage,
 * must give a defined result without touching memory outside the input. */
static void test_parse_byte_flips(void)
{
    size_t total = strlen(valid_request);
    size_t done = 0, bad = 0;
    for (size_t pos = 0; pos < total; pos++) {
        for (int v = 0; v < 256; v++) {
            char *buf = xmalloc(total);
            memcpy(buf, valid_request, total);
            buf[pos] = (char)v;
            struct http_request req;
            int r = http_request_parse(&req, buf, total, MAX_HEAD);
            CHECK(r == HTTP_PARSE_DONE || r == HTTP_PARSE_AGAIN || r == HTTP_PARSE_BAD ||
                  r == HTTP_PARSE_TOO_LARGE);
            if (r == HTTP_PARSE_DONE) {
                done++;
                CHECK(req.head_len <= total);
                CHECK(strlen(req.path) < sizeof req.path_buf);
                for (size_t i = 0; i < req.nheaders; i++)
                    CHECK(strlen(req.headers[i].name) > 0);
            } else if (r == HTTP_PARSE_BAD) {
                bad++;
            }
            free(buf);
        }
    }
    CHECK(done > 0);
    CHECK(bad > 0);
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + rng_next() % total;
        char *buf = xmalloc(len);
        memcpy(buf, valid_request, len);
        int flips = 1 + (int)(rng_next() % 6);
        for (int f = 0; f < flips; f++)
            buf[rng_next() % len] = (char)(rng_next() & 0xff);
        struct http_request req;
        int r = http_request_parse(&req, buf, len, 1 + rng_next() % (total + 8));
        CHECK(r >= HTTP_PARSE_TOO_LARGE && r <= HTTP_PARSE_AGAIN);
        free(buf);
    }
}

static void test_query_get(void)
{
    char out[64];
    const char *q = "limit=250&order=asc&ticker=O%3AAAPL&name=a+b%20c&flag&empty=&dup=1&dup=2";
    CHECK_INT(http_query_get(q, "limit", out, sizeof out), 1);
    CHECK_STR(out, "250");
    CHECK_INT(http_query_get(q, "ticker", out, sizeof out), 1);
    CHECK_STR(out, "O:AAPL");
    CHECK_INT(http_query_get(q, "name", out, sizeof out), 1);
    CHECK_STR(out, "a b c");
    CHECK_INT(http_query_get(q, "flag", out, sizeof out), 1);
    CHECK_STR(out, "");
    CHECK_INT(http_query_get(q, "empty", out, sizeof out), 1);
    CHECK_STR(out, "");
    CHECK_INT(http_query_get(q, "dup", out, sizeof out), 1);
    CHECK_STR(out, "1");
    CHECK_INT(http_query_get(q, "missing", out, sizeof out), 0);
    CHECK_INT(http_query_get(q, "lim", out, sizeof out), 0);
    CHECK_INT(http_query_get(q, "limit=", out, sizeof out), 0);
    CHECK_INT(http_query_get("", "a", out, sizeof out), 0);
    CHECK_INT(http_query_get("a%2Eb=1", "a.b", out, sizeof out), 1);
    CHECK_STR(out, "1");
    CHECK_INT(http_query_get("expiration_date.gte=2026-11-20", "expiration_date.gte", out, sizeof out), 1);
    CHECK_STR(out, "2026-11-20");
    CHECK_INT(http_query_get("a=%00", "a", out, sizeof out), -1);
    CHECK_STR(out, "");
    CHECK_INT(http_query_get("a=%g1", "a", out, sizeof out), -1);
    CHECK_INT(http_query_get("a=%1", "a", out, sizeof out), -1);
    CHECK_INT(http_query_get("a=12345", "a", out, 5), -1);
    CHECK_INT(http_query_get("a=1234", "a", out, 5), 1);
    CHECK_STR(out, "1234");
    /* A bad escape in another key does not hide a later match. */
    CHECK_INT(http_query_get("%zz=1&a=2", "a", out, sizeof out), 1);
    CHECK_STR(out, "2");
    CHECK_INT(http_query_get(NULL, "a", out, sizeof out), -1);
}

int main(void)
{
    RUN(test_parse_valid);
    RUN(test_parse_keep_alive);
    RUN(test_parse_content_length);
    RUN(test_parse_rejects);
    RUN(test_parse_header_count);
    RUN(test_parse_limits);
    RUN(test_parse_prefixes);
    RUN(test_parse_pipelined);
    RUN(test_parse_byte_flips);
    RUN(test_query_get);
    TEST_EXIT();
}
