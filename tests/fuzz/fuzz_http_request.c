/* fuzz_http_request.c - libFuzzer harness for the request-head parser shared
 * by the simulator and the status listener: http_request_parse on the whole
 * input and on a prefix, then http_query_get / http_request_header on what it
 * found, plus http_query_get on the raw bytes as a query string.
 * Built by scripts/fuzz.sh; tests/unit/test_fuzz_regressions.c includes it
 * with FUZZ_ENTRY renamed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/http/http_parse.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static const char *const fuzz_http_keys[] = {"limit", "order", "a", "", "cursor", "ticker"};

/* Every lookup must NUL-terminate out within out_size, whatever it returns. */
static void fuzz_http_query_all(const char *query)
{
    static const size_t sizes[] = {1, 2, 8, 256};
    char out[256];
    for (size_t k = 0; k < sizeof fuzz_http_keys / sizeof fuzz_http_keys[0]; k++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            memset(out, 'x', sizeof out);
            int r = http_query_get(query, fuzz_http_keys[k], out, sizes[s]);
            if (r < -1 || r > 1 || memchr(out, '\0', sizes[s]) == NULL)
                abort();
            if (r == -1 && out[0] != '\0')
                abort();
        }
    }
}

/* Parses an exact-size heap copy of data[0..len) so ASan sees any over-read. */
static int fuzz_http_parse_copy(const uint8_t *data, size_t len, size_t max_head)
{
    char *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return HTTP_PARSE_BAD;
    if (len)
        memcpy(buf, data, len);
    struct http_request req;
    int r = http_request_parse(&req, buf, len, max_head);
    if (r == HTTP_PARSE_DONE) {
        if (req.head_len == 0 || req.head_len > len || req.head_len > max_head ||
            req.nheaders > HTTP_MAX_HEADERS || req.method == NULL || req.target == NULL ||
            req.path == NULL || req.query == NULL || req.target[0] != '/' ||
            (req.version_minor != 0 && req.version_minor != 1))
            abort();
        /* The decoded path must hold no control byte (documented as BAD). */
        for (const unsigned char *p = (const unsigned char *)req.path; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                abort();
        for (size_t i = 0; i < req.nheaders; i++)
            if (req.headers[i].name == NULL || req.headers[i].value == NULL)
                abort();
        (void)http_request_header(&req, "host");
        (void)http_request_header(&req, "Connection");
        fuzz_http_query_all(req.query);
    } else if (r != HTTP_PARSE_AGAIN && r != HTTP_PARSE_BAD && r != HTTP_PARSE_TOO_LARGE) {
        abort();
    }
    free(buf);
    return r;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    int full = fuzz_http_parse_copy(data, size, 16384);
    /* Incremental use: a prefix of a complete head may only ask for more or
     * already be judged bad, never be accepted with a longer head. */
    if (size > 1) {
        int half = fuzz_http_parse_copy(data, size / 2, 16384);
        if (full == HTTP_PARSE_DONE && half == HTTP_PARSE_TOO_LARGE)
            abort();
    }
    /* A tight cap drives the TOO_LARGE paths with the same bytes. */
    (void)fuzz_http_parse_copy(data, size, 64);

    char *query = malloc(size + 1);
    if (query == NULL)
        return 0;
    if (size)
        memcpy(query, data, size);
    query[size] = '\0';
    fuzz_http_query_all(query);
    free(query);
    return 0;
}
