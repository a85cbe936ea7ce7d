/* flatfiles.h - one day's minute-aggregates flat file fetched from the S3
 * endpoint (flatfiles_url) on the engine's HTTP client (its libcurl multi,
 * so nothing blocks the loop): signed with CURLOPT_AWS_SIGV4
 * ("aws:amz:<region>:s3") and the flatfiles_* keys, gunzipped with zlib as
 * bytes arrive and parsed as CSV as it streams (api/flat_csv.h): memory is
 * one zlib window, one output chunk and one line, whatever the file size.
 * If-None-Match with the ETag applied last time: 304 = unchanged. Wraps
 * libcurl and zlib. */
#ifndef OPTSNAP_FLATFILES_H
#define OPTSNAP_FLATFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "optsnap/api/flat_csv.h"
#include "optsnap/config/settings.h"
#include "optsnap/http/http_client.h"

/* ---- gzip as a stream (RFC 1952 members, concatenated members too) ---- */

typedef int (*gunzip_sink_fn)(void *user, const char *data, size_t n);

struct gunzip {
    z_stream z;
    bool ready, member_ended;
    gunzip_sink_fn sink;
    void *user;
    char error[96];
    unsigned char out[16384];
};

/* Returns 0 or -1 (out of memory). Free with gunzip_free. */
int gunzip_init(struct gunzip *g, gunzip_sink_fn sink, void *user) __attribute__((warn_unused_result));
/* Inflates n bytes, handing the output to sink in chunks. Returns 0, -1
 * for corrupt data (g->error), or sink's non-zero result. */
int gunzip_feed(struct gunzip *g, const void *data, size_t n) __attribute__((warn_unused_result));
/* The input ended: -1 when the last member is incomplete (truncated file). */
int gunzip_finish(struct gunzip *g) __attribute__((warn_unused_result));
void gunzip_free(struct gunzip *g);

/* ---- the fetch ---- */

enum flatfile_outcome {
    FLATFILE_APPLIED,   /* 200: the whole file was parsed */
    FLATFILE_UNCHANGED, /* 304: the ETag asked with is still the object's */
    FLATFILE_MISSING,   /* 404: not published (yet) */
    FLATFILE_FAILED,    /* refused (403: keys), transport, corrupt gzip, bad header */
};

struct flatfile_fetch {
    void (*on_end)(struct flatfile_fetch *f, enum flatfile_outcome o, const char *why);
    void *user;
    /* Optional backpressure: asked before each chunk of the body is taken;
     * false pauses the transfer (nothing is consumed) until
     * flatfile_fetch_resume. Set after flatfile_fetch_start. */
    bool (*can_take)(void *user);
    bool head;    /* a HEAD: the ETag (or 304) only, no body; set by start */
    bool paused;
    long pauses;  /* how often it paused */
    /* read after on_end */
    char etag[100];  /* the object's, "" when none */
    long status;
    uint64_t bytes_in, bytes_out;
    struct flat_csv csv; /* bars, rejects, line counts */
    /* the module's */
    struct http_stream st;
    struct gunzip gz;
    struct curl_slist *headers;
    char url[1400];
    char error_body[160]; /* the start of a non-200 body (the S3 error code) */
    size_t error_len;
    char why[256];
    bool stopped;
};

/* The object URL of date's minute aggregates under base (no trailing '/'). */
void flatfile_url(char *out, size_t size, const char *base, int32_t date);

/* True when flat files are configured: url, access key and secret key. */
bool flatfiles_configured(const struct settings *s);

/* Starts the GET of date's file on http (if_none_match "" = unconditional).
 * want (may be NULL) skips other tickers' lines early; on_bar / on_reject get each line as it is parsed (from the loop); on_end
 * is called once, from the loop, unless this returns -1 (logged). After
 * on_end, flatfile_fetch_free. */
int flatfile_fetch_start(struct flatfile_fetch *f, struct http_client *http, const struct settings *s,
                         int32_t date, const char *if_none_match, flat_csv_want_fn want, flat_csv_bar_fn on_bar,
                         flat_csv_reject_fn on_reject, void *user) __attribute__((warn_unused_result));
/* A HEAD of date's object (If-None-Match when if_none_match is not ""):
 * on_end says APPLIED (200: f->etag is the object's), UNCHANGED (304) or
 * why not. */
int flatfile_head_start(struct flatfile_fetch *f, struct http_client *http, const struct settings *s, int32_t date,
                        const char *if_none_match) __attribute__((warn_unused_result));
/* Takes a paused transfer up again (never from inside a parse callback:
 * curl may hand the held chunk over at once). */
void flatfile_fetch_resume(struct flatfile_fetch *f);
void flatfile_fetch_free(struct flatfile_fetch *f);

#endif
