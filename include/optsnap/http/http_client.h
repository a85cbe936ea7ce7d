/* http_client.h - GET requests over libcurl multi driven by the libuv loop:
 * the WIDE request pool (http_concurrency), an optional token bucket
 * (http_rate), timeouts, retries with capped exponential backoff and full
 * jitter, Retry-After, and a bounded retry budget. Wraps libcurl only. */
#ifndef OPTSNAP_HTTP_CLIENT_H
#define OPTSNAP_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/util/list.h"

struct http_client;

struct http_settings {
    int concurrency;            /* requests in flight, >= 1 */
    double rate;                /* requests per second, 0 = unlimited */
    int64_t connect_timeout_us; /* 0 = libcurl's default (300 s) */
    int64_t total_timeout_us;   /* whole transfer, per attempt, 0 = none */
    int64_t low_speed_time_us;  /* abort when < 1 byte/s for this long (rounded up to whole
                                 * seconds, libcurl's unit), 0 = off */
    int max_attempts;           /* per request, including the first, >= 1 */
    int64_t backoff_base_us;    /* first retry waits random(0, base) */
    int64_t backoff_cap_us;     /* no wait exceeds this (Retry-After is capped by it too) */
    double retry_budget_ratio;  /* retries allowed per original request, e.g. 0.2 */
    int retry_budget_min;       /* retries always allowed per 10 s, e.g. 10 */
    size_t max_inflight_bytes;  /* body bytes buffered over all running transfers: one that
                                 * would go over it pauses (CURL_WRITEFUNC_PAUSE) until a
                                 * transfer ends; the oldest running one never pauses */
    size_t max_body_bytes;      /* a larger body fails the request (no retry); <= max_inflight_bytes */
    const char *api_key;        /* sent as "Authorization: Bearer", never logged; NULL or "" = none */
    const char *ca_file;        /* CA bundle for TLS verification, NULL = system default */
    const char *user_agent;
};

/* The default budget, and the share of it one body may take (max_body_bytes =
 * max_inflight_bytes / HTTP_BODY_SHARE): a parsed page costs the JSON parser up
 * to ~40 times its bytes (a list of tiny values), so the body cap, not the
 * budget, bounds the parse. */
#define HTTP_DEFAULT_INFLIGHT_BYTES ((size_t)8 * 1024 * 1024)
#define HTTP_BODY_SHARE 16

void http_settings_default(struct http_settings *s);

enum http_outcome {
    HTTP_OK = 0,          /* got a 2xx */
    HTTP_FAILED_STATUS,   /* a non-retryable status, or a retryable one after the last attempt */
    HTTP_FAILED_TRANSPORT,/* connect/timeout/reset/truncation after the last attempt */
    HTTP_FAILED_TOO_BIG,  /* body exceeded max_body_bytes */
    HTTP_CANCELLED,       /* http_client_close() was called before it finished */
};

struct http_response {
    enum http_outcome outcome;
    long status;            /* last HTTP status, 0 when none */
    const char *body;       /* NUL-terminated; valid only during the callback */
    size_t body_len;
    int attempts;           /* how many tries it took */
    double elapsed_s;       /* from submit to completion, including waits */
    const char *error;      /* short text for logs when outcome != HTTP_OK; no secrets */
    int64_t date_us;        /* the server's Date header (unix us, whole seconds); 0 = none */
    long ratelimit_remaining; /* the last attempt's X-RateLimit-Remaining, -1 = absent */
};

typedef void (*http_done_cb)(void *user, const struct http_response *resp);

/* Creates a client on loop. Copies the strings of *s. Returns 0 or a negative errno. */
int http_client_create(struct http_client **out, uv_loop_t *loop, const struct http_settings *s)
    __attribute__((warn_unused_result));

/* Queues a GET of url (copied). cb is called exactly once, unless this returns
 * non-zero, in which case it is never called. Requests beyond `concurrency` wait
 * in a FIFO inside the client. cb always runs from the loop, never from inside
 * this call; it may call http_client_get and http_client_close. resp and
 * resp->body belong to the client and are valid only during cb. Redirects are
 * not followed (a 3xx is HTTP_FAILED_STATUS). Returns 0, -EINVAL (empty or
 * > 8 KiB url), -ENOMEM, or -ESHUTDOWN after http_client_close. */
int http_client_get(struct http_client *c, const char *url, http_done_cb cb, void *user)
    __attribute__((warn_unused_result));

size_t http_client_in_flight(const struct http_client *c); /* transfers running */
size_t http_client_waiting(const struct http_client *c);   /* queued + sleeping before a retry */

/* Upper bounds (seconds) of the attempt-latency histogram, Prometheus' default buckets. */
#define HTTP_LATENCY_BUCKETS 11
extern const double http_latency_bounds_s[HTTP_LATENCY_BUCKETS];

/* Counters since create. requests/failures/retry_budget_exhausted/cancelled count
 * requests; status_* and transport_errors count attempts (a 429 also counts in
 * status_4xx); bytes is the body bytes received over all attempts. */
struct http_client_stats {
    uint64_t requests, retries, failures, retry_budget_exhausted, bytes;
    uint64_t status_2xx, status_4xx, status_429, status_5xx, transport_errors;
    uint64_t cancelled, too_big;
    uint64_t rate_limit_pauses;   /* starts paused because X-RateLimit-Remaining hit 0 */
    uint64_t body_pauses;         /* transfers paused because max_inflight_bytes was reached */
    uint64_t inflight_bytes_peak; /* the most body-buffer bytes running transfers held at once */
    /* Attempt latency (start of the transfer to its end), cumulative like
     * Prometheus: latency_buckets[i] counts attempts <= http_latency_bounds_s[i]. */
    uint64_t latency_buckets[HTTP_LATENCY_BUCKETS];
    uint64_t latency_count;
    double latency_sum_s;
};
void http_client_get_stats(const struct http_client *c, struct http_client_stats *out);

/* Seeds the backoff jitter PRNG (tests; by default it is seeded from the clock). */
void http_client_set_seed(struct http_client *c, uint64_t seed);

/* Parses a Retry-After value: delta seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", relative to now_s, epoch seconds). A date
 * in the past gives 0. Returns 0 and *out_us, or -1 when unparsable. */
int http_retry_after_parse(const char *value, int64_t now_s, int64_t *out_us)
    __attribute__((warn_unused_result));

/* A transfer on the client's multi whose easy handle (a CURL *) the caller
 * made and owns: a download consumed as it arrives (its write callback),
 * outside the pool's queue, retries and body cap. done(s, curlcode) is
 * called once from the loop: when it ends (CURLcode), or with -1 when the
 * client closes first. The caller then removes nothing; it may clean up the
 * easy handle. Returns 0 or -1 (closing, or curl refused it). */
struct http_stream {
    void *easy;
    void (*done)(struct http_stream *s, int curlcode);
    void *user;
    /* the client's */
    struct list_node link;
};
int http_client_stream_start(struct http_client *c, struct http_stream *s) __attribute__((warn_unused_result));

/* Cancels everything (callbacks get HTTP_CANCELLED, from the loop, not from
 * inside this call), closes every handle, frees the client, then calls
 * closed_cb(user) (may be NULL). A second call is ignored. */
void http_client_close(struct http_client *c, void (*closed_cb)(void *user), void *user);

#endif
