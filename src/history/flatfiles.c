/* flatfiles.c - a day's flat file: signed GET, gunzip and CSV as it streams. */
#include "optsnap/history/flatfiles.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

/* ---- gzip ---- */

int gunzip_init(struct gunzip *g, gunzip_sink_fn sink, void *user)
{
    memset(g, 0, sizeof *g);
    g->sink = sink;
    g->user = user;
    if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK)
        return -1;
    g->ready = true;
    return 0;
}

int gunzip_feed(struct gunzip *g, const void *data, size_t n)
{
    g->z.next_in = (Bytef *)data;
    g->z.avail_in = (uInt)n;
    for (;;) {
        if (g->member_ended) {
            if (g->z.avail_in == 0)
                return 0;
            if (inflateReset(&g->z) != Z_OK) /* another member follows (concatenated gzip) */
                return -1;
            g->member_ended = false;
        }
        g->z.next_out = g->out;
        g->z.avail_out = sizeof g->out;
        int rc = inflate(&g->z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            snprintf(g->error, sizeof g->error, "corrupt gzip data (%s)", g->z.msg ? g->z.msg : "zlib error");
            return -1;
        }
        size_t got = sizeof g->out - g->z.avail_out;
        if (got > 0) {
            int s = g->sink(g->user, (const char *)g->out, got);
            if (s != 0)
                return s;
        }
        if (rc == Z_STREAM_END)
            g->member_ended = true;
        else if (g->z.avail_out != 0 || (rc == Z_BUF_ERROR && got == 0))
            return 0; /* all input taken and no output pending */
    }
}

int gunzip_finish(struct gunzip *g)
{
    if (!g->member_ended) {
        snprintf(g->error, sizeof g->error, "gzip data truncated");
        return -1;
    }
    return 0;
}

void gunzip_free(struct gunzip *g)
{
    if (g->ready)
        inflateEnd(&g->z);
    g->ready = false;
}

/* ---- the fetch ---- */

void flatfile_url(char *out, size_t size, const char *base, int32_t date)
{
    char d[16];
    date_format(d, sizeof d, date);
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    snprintf(out, size, "%.*s/us_options_opra/minute_aggs_v1/%.4s/%.2s/%s.csv.gz", (int)bl, base, d, d + 5, d);
}

bool flatfiles_configured(const struct settings *s)
{
    return s->flatfiles_url[0] && s->flatfiles_access_key[0] && s->flatfiles_secret_key && s->flatfiles_secret_key[0];
}

static int csv_sink(void *user, const char *data, size_t n)
{
    struct flatfile_fetch *f = user;
    f->bytes_out += n;
    return flat_csv_feed(&f->csv, data, n);
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct flatfile_fetch *f = user;
    size_t len = size * n;
    if (len > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        const char *v = p + 5;
        size_t vl = len - 5;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof f->etag) {
            memcpy(f->etag, v, vl);
            f->etag[vl] = '\0';
        }
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct flatfile_fetch *f = user;
    size_t len = size * n;
    f->bytes_in += len;
    if (f->status == 0)
        curl_easy_getinfo(f->st.easy, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200) { /* keep the start: S3 says why in it */
        size_t room = sizeof f->error_body - 1 - f->error_len, k = len < room ? len : room;
        memcpy(f->error_body + f->error_len, p, k);
        f->error_len += k;
        f->error_body[f->error_len] = '\0';
        return len;
    }
    if (f->can_take != NULL && !f->can_take(f->csv.user)) {
        f->bytes_in -= len; /* handed over again after the resume */
        f->paused = true;
        f->pauses++;
        return CURL_WRITEFUNC_PAUSE;
    }
    int rc = gunzip_feed(&f->gz, p, len);
    if (rc != 0) {
        snprintf(f->why, sizeof f->why, "%s", f->gz.error[0] ? f->gz.error : f->csv.error[0] ? f->csv.error
                                                                                            : "stopped");
        f->stopped = true;
        return 0; /* aborts the transfer */
    }
    return len;
}

/* The S3 error code of a refusal ("<Code>SignatureDoesNotMatch</Code>"), or "". */
static void s3_code(const char *body, char *out, size_t size)
{
    const char *a = strstr(body, "<Code>"), *b = a ? strstr(a, "</Code>") : NULL;
    out[0] = '\0';
    if (a && b && (size_t)(b - a - 6) < size)
        snprintf(out, size, "%.*s", (int)(b - a - 6), a + 6);
}

static void on_done(struct http_stream *st, int curlcode)
{
    struct flatfile_fetch *f = st->user;
    curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &f->status);
    char code[64];
    enum flatfile_outcome o = FLATFILE_FAILED;
    if (curlcode == -1) {
        snprintf(f->why, sizeof f->why, "cancelled");
    } else if (f->stopped) {
        /* why is set: corrupt gzip, bad header, or the caller stopped it */
    } else if (curlcode != CURLE_OK) {
        snprintf(f->why, sizeof f->why, "flat file transfer failed: %s", curl_easy_strerror((CURLcode)curlcode));
    } else if (f->head && f->status == 200) {
        o = FLATFILE_APPLIED;
    } else if (f->status == 304) {
        o = FLATFILE_UNCHANGED;
    } else if (f->status == 404) {
        o = FLATFILE_MISSING;
        snprintf(f->why, sizeof f->why, "flat file not published (404)");
    } else if (f->status != 200) {
        s3_code(f->error_body, code, sizeof code);
        snprintf(f->why, sizeof f->why, "flat file refused: HTTP %ld %s%s", f->status, code,
                 f->status == 403 ? " (check flatfiles_access_key and the secret key)" : "");
    } else if (gunzip_finish(&f->gz) != 0) {
        snprintf(f->why, sizeof f->why, "%s", f->gz.error);
    } else if (flat_csv_finish(&f->csv) != 0) {
        snprintf(f->why, sizeof f->why, "%s", f->csv.error[0] ? f->csv.error : "stopped");
    } else {
        o = FLATFILE_APPLIED;
    }
    f->on_end(f, o, o == FLATFILE_APPLIED || o == FLATFILE_UNCHANGED ? NULL : f->why);
}

static int easy_setup(struct flatfile_fetch *f, CURL *e, const struct settings *s, const char *if_none_match)
{
    char sigv4[128], userpwd[512], inm[160];
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", s->flatfiles_region[0] ? s->flatfiles_region : "us-east-1");
    if ((size_t)snprintf(userpwd, sizeof userpwd, "%s:%s", s->flatfiles_access_key, s->flatfiles_secret_key) >=
        sizeof userpwd)
        return -1;
    int bad = curl_easy_setopt(e, CURLOPT_URL, f->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERPWD, userpwd) != CURLE_OK;
    explicit_bzero(userpwd, sizeof userpwd); /* curl keeps its own copy */
    if (if_none_match[0]) {
        snprintf(inm, sizeof inm, "If-None-Match: %s", if_none_match);
        f->headers = curl_slist_append(NULL, inm);
        bad |= f->headers == NULL || curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers) != CURLE_OK;
    }
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->http_connect_timeout_us / 1000));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((s->http_timeout_us + 999999) / 1000000));
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    if (s->ca_file[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    return bad ? -1 : 0;
}

static int fetch_start(struct flatfile_fetch *f, struct http_client *http, const struct settings *s, int32_t date,
                       const char *if_none_match, bool head, flat_csv_want_fn want, flat_csv_bar_fn on_bar,
                       flat_csv_reject_fn on_reject, void *user)
{
    void (*on_end)(struct flatfile_fetch *, enum flatfile_outcome, const char *) = f->on_end;
    void *owner = f->user;
    memset(f, 0, sizeof *f);
    f->on_end = on_end;
    f->user = owner;
    f->head = head;
    flat_csv_init(&f->csv, on_bar, on_reject, user);
    f->csv.want = want;
    flatfile_url(f->url, sizeof f->url, s->flatfiles_url, date);
    CURL *e = curl_easy_init();
    if (e == NULL || gunzip_init(&f->gz, csv_sink, f) != 0) {
        if (e)
            curl_easy_cleanup(e);
        log_error("cannot start a flat-file fetch (out of memory)", "%s", "");
        return -1;
    }
    f->st = (struct http_stream){.easy = e, .done = on_done, .user = f};
    if (head)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (easy_setup(f, e, s, if_none_match) != 0 || http_client_stream_start(http, &f->st) != 0) {
        log_error("cannot start a flat-file fetch", "url=%s", f->url);
        flatfile_fetch_free(f);
        return -1;
    }
    log_debug("flat file fetch started", "url=%s if_none_match=%s", f->url, if_none_match[0] ? if_none_match : "-");
    return 0;
}

int flatfile_fetch_start(struct flatfile_fetch *f, struct http_client *http, const struct settings *s,
                         int32_t date, const char *if_none_match, flat_csv_want_fn want, flat_csv_bar_fn on_bar,
                         flat_csv_reject_fn on_reject, void *user)
{
    return fetch_start(f, http, s, date, if_none_match, false, want, on_bar, on_reject, user);
}

int flatfile_head_start(struct flatfile_fetch *f, struct http_client *http, const struct settings *s, int32_t date,
                        const char *if_none_match)
{
    return fetch_start(f, http, s, date, if_none_match, true, NULL, NULL, NULL, NULL);
}

void flatfile_fetch_resume(struct flatfile_fetch *f)
{
    if (f->paused && f->st.easy) {
        f->paused = false;
        curl_easy_pause(f->st.easy, CURLPAUSE_CONT);
    }
}

void flatfile_fetch_free(struct flatfile_fetch *f)
{
    if (f->st.easy)
        curl_easy_cleanup(f->st.easy);
    f->st.easy = NULL;
    curl_slist_free_all(f->headers);
    f->headers = NULL;
    gunzip_free(&f->gz);
}
