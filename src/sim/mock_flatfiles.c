/* mock_flatfiles.c - the simulator's S3-style flat files (mock_flatfiles.h). */
#include "optsnap/sim/mock_flatfiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

#define MAX_DAYS 64 /* days republished */

/* ---- SHA-256 (FIPS 180-4) and HMAC ---- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = a[7] + (ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25)) + ((a[4] & a[5]) ^ (~a[4] & a[6])) +
                      K256[i] + w[i];
        uint32_t t2 = (ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22)) + ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h[i] += a[i];
}

void mock_sha256(const void *data, size_t n, unsigned char out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t left = n;
    for (; left >= 64; left -= 64, p += 64)
        sha256_block(h, p);
    unsigned char tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t o = 0; o < tl; o += 64)
        sha256_block(h, tail + o);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

void mock_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n, unsigned char out[32])
{
    unsigned char k[64] = {0}, ipad[64], opad[64], inner[32];
    if (klen > 64)
        mock_sha256(key, klen, k);
    else
        memcpy(k, key, klen);
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    unsigned char *buf = malloc(64 + (n > 32 ? n : 32));
    if (buf == NULL) {
        memset(out, 0, 32);
        return;
    }
    memcpy(buf, ipad, 64);
    memcpy(buf + 64, msg, n);
    mock_sha256(buf, 64 + n, inner);
    memcpy(buf, opad, 64);
    memcpy(buf + 64, inner, 32);
    mock_sha256(buf, 96, out);
    free(buf);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- the signature: AWS SigV4, as curl's CURLOPT_AWS_SIGV4 makes it ---- */

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

/* Copies the value of "key=" inside auth (up to ',' or end) into out. */
static bool auth_field(const char *auth, const char *key, char *out, size_t size)
{
    const char *p = strstr(auth, key);
    if (p == NULL)
        return false;
    p += strlen(key);
    size_t n = strcspn(p, ", ");
    if (n == 0 || n >= size)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Appends "name:value\n" for each signed header (value trimmed). */
static bool canonical_headers(const struct http_request *req, const char *signed_headers, struct mm_buf *b)
{
    char names[512];
    snprintf(names, sizeof names, "%s", signed_headers);
    for (char *save = NULL, *h = strtok_r(names, ";", &save); h; h = strtok_r(NULL, ";", &save)) {
        const char *v = http_request_header(req, h);
        if (v == NULL)
            return false;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        mm_buf_puts(b, h);
        mm_buf_puts(b, ":");
        mm_buf_add(b, v, n);
        mm_buf_puts(b, "\n");
    }
    return true;
}

/* NULL when the request is signed with the configured keys, else why not. */
static const char *sigv4_check(const struct http_request *req)
{
    const char *access = env_or("MOCK_FLATFILES_ACCESS_KEY", "sim-access");
    const char *secret = env_or("MOCK_FLATFILES_SECRET_KEY", "sim-secret");
    const char *auth = http_request_header(req, "Authorization");
    const char *amz_date = http_request_header(req, "x-amz-date");
    char cred[256], sh[512], sig[80];
    if (auth == NULL || strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0 || amz_date == NULL)
        return "AccessDenied";
    if (!auth_field(auth, "Credential=", cred, sizeof cred) || !auth_field(auth, "SignedHeaders=", sh, sizeof sh) ||
        !auth_field(auth, "Signature=", sig, sizeof sig))
        return "AuthorizationHeaderMalformed";
    size_t al = strlen(access);
    if (strncmp(cred, access, al) != 0 || cred[al] != '/')
        return "InvalidAccessKeyId";
    const char *scope = cred + al + 1; /* DATE/REGION/SERVICE/aws4_request */
    char parts[4][64];
    if (sscanf(scope, "%63[^/]/%63[^/]/%63[^/]/%63s", parts[0], parts[1], parts[2], parts[3]) != 4 ||
        strcmp(parts[3], "aws4_request") != 0)
        return "AuthorizationHeaderMalformed";
    const char *payload = http_request_header(req, "x-amz-content-sha256");
    struct mm_buf c = {0};
    mm_buf_puts(&c, req->method);
    mm_buf_puts(&c, "\n");
    mm_buf_add(&c, req->target, strcspn(req->target, "?"));
    mm_buf_puts(&c, "\n");
    mm_buf_puts(&c, req->query);
    mm_buf_puts(&c, "\n");
    bool ok = canonical_headers(req, sh, &c);
    mm_buf_puts(&c, "\n");
    mm_buf_puts(&c, sh);
    mm_buf_puts(&c, "\n");
    mm_buf_puts(&c, payload ? payload : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    unsigned char d[32], k[32];
    char dh[65], sts[512], key[300];
    mock_sha256(c.bytes.data, c.bytes.len, d);
    ok = ok && !c.bytes.failed;
    mm_buf_free(&c);
    if (!ok)
        return "AuthorizationHeaderMalformed";
    hex(d, 32, dh);
    int n = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, dh);
    int kl = snprintf(key, sizeof key, "AWS4%s", secret);
    mock_hmac_sha256(key, (size_t)kl, parts[0], strlen(parts[0]), k);
    for (int i = 1; i < 4; i++)
        mock_hmac_sha256(k, 32, parts[i], strlen(parts[i]), k);
    mock_hmac_sha256(k, 32, sts, (size_t)n, d);
    hex(d, 32, dh);
    return strcmp(dh, sig) == 0 ? NULL : "SignatureDoesNotMatch";
}

/* ---- the objects ---- */

struct republished {
    int32_t date;
    int generation;
    bool bad;
};

#define CACHED 4 /* objects kept built: a backfill reads a day and the one before, often twice */

struct object {
    int32_t date;
    int generation;
    bool valid;
    char *gz;
    size_t gz_len;
    char etag[40];
    uint64_t used;
};

static struct {
    struct republished days[MAX_DAYS];
    int ndays;
    struct object cache[CACHED]; /* the objects built last (least recently used replaced) */
    uint64_t clock;
} ff;

static struct republished *republished_of(int32_t date, bool add)
{
    for (int i = 0; i < ff.ndays; i++)
        if (ff.days[i].date == date)
            return &ff.days[i];
    if (!add || ff.ndays == MAX_DAYS)
        return NULL;
    ff.days[ff.ndays] = (struct republished){.date = date};
    return &ff.days[ff.ndays++];
}

struct csv_out {
    struct mm_buf *b;
    const char *ticker;
};

static int bar_line(void *user, const struct mm_bar *bar)
{
    struct csv_out *o = user;
    mm_buf_puts(o->b, o->ticker);
    mm_buf_puts(o->b, ",");
    mm_buf_fixed(o->b, bar->v, 0);
    const double px[4] = {bar->o, bar->c, bar->h, bar->l};
    for (int i = 0; i < 4; i++) {
        mm_buf_puts(o->b, ",");
        mm_buf_fixed(o->b, px[i], 2);
    }
    mm_buf_puts(o->b, ",");
    mm_buf_int(o->b, bar->start_ms * 1000000);
    mm_buf_puts(o->b, ",");
    mm_buf_int(o->b, bar->n);
    mm_buf_puts(o->b, "\n");
    return 0;
}

/* The day's CSV: every contract listed that day, by underlying, expiry,
 * type and strike (ticker order within an underlying), its bars in time order. */
static void day_csv(const struct mock_market *m, int32_t date, int64_t now_us, bool bad, struct mm_buf *b)
{
    mm_buf_puts(b, "ticker,volume,open,close,high,low,window_start,transactions\n");
    if (bad)
        mm_buf_puts(b, "\"O:BAD\",1,1,1,1,1,0,1\n");
    int64_t from_ms = mm_midnight_us(m, date) / 1000, to_ms = mm_midnight_us(m, date + 1) / 1000 - 1;
    int32_t exp[MM_MAX_EXPIRIES];
    int nexp = mm_expiries_at(m, date, exp);
    for (size_t u = 0; u < m->nunderlyings; u++)
        for (int e = 0; e < nexp; e++)
            for (int t = 0; t < 2; t++)
                for (int k = 0; k < m->nstrikes; k++) {
                    const struct mm_underlying *ud = &m->underlyings[u];
                    struct mm_contract c;
                    mm_contract_make(m, (int)u, exp[e], t ? 'P' : 'C', ud->strike0_milli + k * ud->strike_step_milli, &c);
                    struct csv_out o = {b, c.ticker};
                    mm_bars_foreach(m, &c, MM_SPAN_MINUTE, 1, from_ms, to_ms, false, now_us, bar_line, &o);
                }
}

static int gzip_of(const char *in, size_t n, char **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)n);
    *out = malloc(cap);
    if (*out == NULL) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)*out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* The object of date, built when not cached; NULL when out of memory. */
static const struct object *object_build(const struct mock_market *m, int32_t date, int64_t now_us)
{
    struct republished *rp = republished_of(date, false);
    int gen = rp ? rp->generation : 0;
    struct object *o = &ff.cache[0];
    for (int i = 0; i < CACHED; i++) {
        struct object *c = &ff.cache[i];
        if (c->valid && c->date == date && c->generation == gen) {
            c->used = ++ff.clock;
            return c;
        }
        if (!c->valid || c->used < o->used)
            o = c;
    }
    free(o->gz);
    memset(o, 0, sizeof *o);
    struct mm_buf b = {0};
    b.bytes.limit = (size_t)4 << 30;
    day_csv(m, date, now_us, rp && rp->bad, &b);
    int rc = b.bytes.failed ? -1 : gzip_of(b.bytes.data, b.bytes.len, &o->gz, &o->gz_len);
    mm_buf_free(&b);
    if (rc != 0)
        return NULL;
    unsigned char d[32];
    mock_sha256(o->gz, o->gz_len, d);
    d[0] ^= (unsigned char)gen; /* a republished object is a new version even with the same bytes */
    d[1] ^= (unsigned char)(gen >> 8);
    o->etag[0] = '"';
    hex(d, 16, o->etag + 1);
    snprintf(o->etag + 33, sizeof o->etag - 33, "\"");
    o->date = date;
    o->generation = gen;
    o->valid = true;
    o->used = ++ff.clock;
    return o;
}

/* ---- routes ---- */

static void reply_s3_error(struct http_reply *r, int status, const char *code)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>",
                     code, code);
    r->status = status;
    r->content_type = "application/xml";
    r->body = strdup(body);
    r->body_len = r->body ? (size_t)n : 0;
}

/* "[/flatfiles]/us_options_opra/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz" -> date; -1 when not one. */
static int object_date(const char *path, int32_t *date)
{
    static const char prefix[] = "/us_options_opra/minute_aggs_v1/";
    if (strncmp(path, "/flatfiles/", 11) == 0)
        path += 10;
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return -1;
    path += sizeof prefix - 1;
    int y, mo, y2, mo2, d;
    char tail[16];
    if (strlen(path) != 25 || sscanf(path, "%4d/%2d/%4d-%2d-%2d%15s", &y, &mo, &y2, &mo2, &d, tail) != 6 ||
        y != y2 || mo != mo2 || strcmp(tail, ".csv.gz") != 0)
        return -1;
    char text[16];
    snprintf(text, sizeof text, "%04d-%02d-%02d", y, mo, d);
    return date_parse(text, date);
}

static void republish(const struct http_request *req, struct http_reply *r)
{
    char v[32], bad[8] = "";
    int32_t date;
    if (http_query_get(req->query, "date", v, sizeof v) != 1 || date_parse(v, &date) != 0) {
        reply_s3_error(r, 400, "InvalidArgument");
        return;
    }
    struct republished *rp = republished_of(date, true);
    if (rp == NULL) {
        reply_s3_error(r, 507, "TooManyRepublished");
        return;
    }
    rp->generation++;
    rp->bad = http_query_get(req->query, "bad", bad, sizeof bad) == 1 && strcmp(bad, "1") == 0;
    log_info("flat file republished", "date=%s generation=%d bad_line=%d", v, rp->generation, rp->bad ? 1 : 0);
    r->status = 200;
    r->content_type = "application/json";
    r->body = strdup("{\"status\":\"OK\"}");
    r->body_len = r->body ? strlen(r->body) : 0;
}

bool mock_flatfiles_route(const struct mock_market *m, int64_t now_us, const struct http_request *req,
                          struct http_reply *r)
{
    if (strcmp(req->path, "/_sim/flatfiles/republish") == 0) {
        republish(req, r);
        return true;
    }
    int32_t date;
    if (object_date(req->path, &date) != 0)
        return false;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        reply_s3_error(r, 405, "MethodNotAllowed");
        return true;
    }
    const char *why = sigv4_check(req);
    if (why != NULL) {
        log_info("flat file request refused", "code=%s", why);
        reply_s3_error(r, 403, why);
        return true;
    }
    /* published once the local day is over, on trading days only */
    if (!mm_is_trading_date(m, date) || mm_midnight_us(m, date + 1) > now_us) {
        reply_s3_error(r, 404, "NoSuchKey");
        return true;
    }
    const struct object *o = object_build(m, date, now_us);
    if (o == NULL) {
        reply_s3_error(r, 500, "InternalError");
        return true;
    }
    char h[96];
    snprintf(h, sizeof h, "ETag: %s\r\n", o->etag);
    r->extra_headers = strdup(h);
    const char *inm = http_request_header(req, "If-None-Match");
    if (inm != NULL && strcmp(inm, o->etag) == 0) {
        r->status = 304;
        return true;
    }
    r->status = 200;
    r->content_type = "application/x-gzip";
    r->body = malloc(o->gz_len ? o->gz_len : 1);
    if (r->body == NULL) {
        reply_s3_error(r, 500, "InternalError");
        return true;
    }
    memcpy(r->body, o->gz, o->gz_len);
    r->body_len = o->gz_len;
    return true;
}
