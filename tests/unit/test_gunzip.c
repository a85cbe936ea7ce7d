/* test_gunzip.c - the flat file's gzip as a stream: the fixture compressed
 * here with zlib comes back byte for byte whatever the chunking (one byte at
 * a time too), two concatenated members, a corrupt byte and a truncated file
 * are errors, and memory is one output chunk (not the file). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "optsnap/history/flatfiles.h"
#include "test.h"

struct out {
    char *data;
    size_t len, cap, max_chunk;
};

static int sink(void *user, const char *d, size_t n)
{
    struct out *o = user;
    if (o->len + n > o->cap)
        return -7;
    memcpy(o->data + o->len, d, n);
    o->len += n;
    if (n > o->max_chunk)
        o->max_chunk = n;
    return 0;
}

static size_t gz(const char *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? len : 0;
}

static int inflate_chunked(const unsigned char *data, size_t n, size_t chunk, struct out *o, char *err, size_t es)
{
    struct gunzip g;
    if (gunzip_init(&g, sink, o) != 0)
        return -9;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += chunk)
        rc = gunzip_feed(&g, data + off, n - off < chunk ? n - off : chunk);
    if (rc == 0)
        rc = gunzip_finish(&g);
    snprintf(err, es, "%s", g.error);
    gunzip_free(&g);
    return rc;
}

static char *fixture(size_t *n)
{
    size_t cap = 400000, len = 0;
    char *s = malloc(cap);
    len += (size_t)snprintf(s, cap, "ticker,volume,open,close,high,low,window_start,transactions\n");
    for (int i = 0; len + 100 < cap; i++)
        len += (size_t)snprintf(s + len, cap - len, "O:SPY261120C%08d,%d,1.%02d,1.%02d,1.99,1.00,%lld,%d\n",
                                500000 + i % 97 * 1000, i % 13, i % 100, (i * 7) % 100,
                                1793631600000000000LL + (long long)i * 60000000000LL, i % 5);
    *n = len;
    return s;
}

/* The fixture compressed here, with zlib's deflate (gzip wrapper). */
static unsigned char *fixture_gz(const char *text, size_t n, size_t *zn)
{
    unsigned char *z = malloc(n + 1024);
    *zn = gz(text, n, z, n + 1024);
    return z;
}

static void test_roundtrip_any_chunking(void)
{
    size_t n, zn;
    char *text = fixture(&n);
    unsigned char *z = fixture_gz(text, n, &zn);
    CHECK(zn > 0 && zn < n / 3);
    const size_t chunks[] = {1, 7, 1000, 16384, zn};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        struct out o = {malloc(n + 1), 0, n + 1, 0};
        char err[96];
        CHECK_INT(inflate_chunked(z, zn, chunks[k], &o, err, sizeof err), 0);
        CHECK(o.len == n && memcmp(o.data, text, n) == 0);
        CHECK(o.max_chunk <= 16384); /* handed on in bounded chunks */
        free(o.data);
    }
    /* two members, as a concatenated gzip file */
    unsigned char *z2 = malloc(2 * zn);
    memcpy(z2, z, zn);
    memcpy(z2 + zn, z, zn);
    struct out o = {malloc(2 * n + 1), 0, 2 * n + 1, 0};
    char err[96];
    CHECK_INT(inflate_chunked(z2, 2 * zn, 333, &o, err, sizeof err), 0);
    CHECK(o.len == 2 * n && memcmp(o.data + n, text, n) == 0);
    free(o.data);
    free(z2);
    free(z);
    free(text);
}

static void test_corrupt_and_truncated(void)
{
    size_t n, zn;
    char *text = fixture(&n);
    unsigned char *z = fixture_gz(text, n, &zn);
    char err[96];
    struct out o = {malloc(n + 1), 0, n + 1, 0};
    CHECK_INT(inflate_chunked(z, zn - 9, 512, &o, err, sizeof err), -1); /* truncated */
    CHECK(strstr(err, "truncated") != NULL);
    z[zn / 2] ^= 0x55; /* a flipped byte: the deflate data or the CRC no longer agree */
    o.len = 0;
    CHECK_INT(inflate_chunked(z, zn, 512, &o, err, sizeof err), -1);
    CHECK(strstr(err, "corrupt gzip") != NULL);
    o.len = 0;
    CHECK_INT(inflate_chunked((const unsigned char *)"not gzip at all", 15, 4, &o, err, sizeof err), -1);
    CHECK(strstr(err, "corrupt gzip") != NULL);
    free(o.data);
    free(z);
    free(text);
}

int main(void)
{
    RUN(test_roundtrip_any_chunking);
    RUN(test_corrupt_and_truncated);
    TEST_EXIT();
}
