/* http_client.c - GETs on libcurl multi driven by the libuv loop, with a wide pool, a token bucket and budgeted retries. */
#include "optsnap/http/http_client.h"

#include "optsnap_version.h"

#include "optsnap/util/list.h"
#include "optsnap/util/log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

const double http_latency_bounds_s[HTTP_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5,   1.0,  2.5,   5.0,  10.0};

/* Hard limits that keep a bad setting from turning into unbounded memory. */
#define HTTP_CONCURRENCY_MAX 4096
#define HTTP_URL_MAX 8192
#define HTTP_ERROR_MAX CURL_ERROR_SIZE
#define HTTP_RETRY_AFTER_MAX 64
/* Body buffers larger than this are freed after use instead of kept on the
 * free list, so idle memory stays ~concurrency x this, whatever the pages. */
#define HTTP_BODY_KEEP_BYTES (64 * 1024)
#define HTTP_BUDGET_WINDOW_S 10
/* Without a Retry-After, a response saying X-RateLimit-Remaining: 0 pauses new
 * starts this long (capped by backoff_cap_us): most plans count per second or minute. */
#define HTTP_RATE_PAUSE_US INT64_C(1000000)

enum request_list { LIST_NONE = 0, LIST_QUEUED, LIST_SLEEPING, LIST_CANCELLED };

struct http_request {
    struct list_node link; /* in the queue of `list` */
    enum request_list list;
    char *url;
    http_done_cb cb;
    void *user;
    int attempts;
    uint64_t submit_ns;
    uint64_t wake_ns; /* when sleeping before a retry */
    char last_error[HTTP_ERROR_MAX];
    int64_t date_s; /* the last attempt's Date header, 0 = none */
    long ratelimit_remaining; /* the last attempt's X-RateLimit-Remaining, -1 = none */
};

struct request_queue {
    struct list_node head;
    size_t count;
};

/* One easy handle with its response state; reused from a free list so curl keeps
 * its connection and TLS session caches warm. */
struct http_transfer {
    struct http_transfer *next_all, *next_free;
    struct http_client *client;
    CURL *easy;
    struct http_request *req; /* NULL when idle */
    uint64_t start_ns;
    char *body;
    size_t body_len, body_cap;
    bool too_big;
    bool paused;       /* on_body returned CURL_WRITEFUNC_PAUSE: waits for budget */
    size_t charged;    /* body bytes counted in the client's inflight_bytes */
    uint64_t start_seq; /* start order: the oldest running transfer never waits for budget */
    size_t content_length; /* from the header, 0 = unknown: sizes the buffer once */
    char retry_after[HTTP_RETRY_AFTER_MAX];
    long ratelimit_remaining; /* -1 = header absent */
    int64_t date_s;           /* the Date header, unix seconds; 0 = absent */
    char errbuf[CURL_ERROR_SIZE];
};

/* One uv_poll_t per socket curl asks us to watch; freed in its close callback. */
struct http_socket {
    uv_poll_t poll;
    struct list_node link; /* in the client's sockets */
    struct http_client *client;
    curl_socket_t fd;
    int events; /* what curl last asked us to watch */
    bool closing;
};

struct budget_slot {
    int64_t second;
    uint32_t requests, retries;
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    struct http_settings settings;
    char *api_key_header; /* "Authorization: Bearer ..." (wiped before free) */
    char *ca_file, *user_agent;
    struct curl_slist *headers;

    uv_timer_t curl_timer;  /* CURLMOPT_TIMERFUNCTION */
    uv_timer_t pump_timer;  /* deferred starts, token-bucket waits, rate pauses; teardown */
    uv_timer_t retry_timer; /* earliest wake of a sleeping request */
    int open_handles;

    struct request_queue queued, sleeping, cancelled;
    struct http_transfer *all_transfers, *free_transfers;
    size_t running;
    size_t inflight_bytes; /* body buffers of running transfers (max_inflight_bytes) */
    size_t paused;         /* running transfers paused for budget */
    bool budget_freed;     /* a transfer gave its bytes back since the last resume */
    uint64_t start_seq;
    struct list_node sockets;
    struct list_node streams; /* caller-owned transfers running (struct http_stream) */

    double tokens;
    uint64_t tokens_ns;
    uint64_t pause_until_ns;

    struct budget_slot budget[HTTP_BUDGET_WINDOW_S];
    bool budget_exhausted_logged;
    uint64_t rng;

    struct http_client_stats stats;

    bool closing;
    void (*closed_cb)(void *user);
    void *closed_user;
};

/* ---------- small helpers ---------- */

void http_settings_default(struct http_settings *s)
{
    memset(s, 0, sizeof *s);
    s->concurrency = 64;
    s->rate = 0;
    s->connect_timeout_us = 5 * INT64_C(1000000);
    s->total_timeout_us = 30 * INT64_C(1000000);
    s->low_speed_time_us = 10 * INT64_C(1000000);
    s->max_attempts = 5;
    s->backoff_base_us = 250 * INT64_C(1000);
    s->backoff_cap_us = 30 * INT64_C(1000000);
    s->retry_budget_ratio = 0.2;
    s->retry_budget_min = 10;
    s->max_inflight_bytes = HTTP_DEFAULT_INFLIGHT_BYTES;
    s->max_body_bytes = HTTP_DEFAULT_INFLIGHT_BYTES / HTTP_BODY_SHARE;
    s->api_key = NULL;
    s->ca_file = NULL;
    s->user_agent = "optsnap/" OPTSNAP_VERSION;
}

static struct http_request *req_of(const struct request_queue *q, struct list_node *n)
{
    return n == &q->head ? NULL : list_entry(n, struct http_request, link);
}

static struct http_request *queue_head(const struct request_queue *q) { return req_of(q, q->head.next); }
static struct http_request *queue_tail(const struct request_queue *q) { return req_of(q, q->head.prev); }
static struct http_request *queue_prev(const struct request_queue *q, struct http_request *r)
{
    return req_of(q, r->link.prev);
}

/* Links r in at the tail of q (or at its head when front). */
static void queue_insert(struct request_queue *q, struct http_request *r, enum request_list l, bool front)
{
    r->list = l;
    if (front)
        list_push_front(&q->head, &r->link);
    else
        list_push_back(&q->head, &r->link);
    q->count++;
}

static void queue_push_back(struct request_queue *q, struct http_request *r, enum request_list l)
{
    queue_insert(q, r, l, false);
}

static void queue_remove(struct request_queue *q, struct http_request *r)
{
    list_remove(&r->link);
    r->list = LIST_NONE;
    q->count--;
}

static uint64_t rng_next(struct http_client *c)
{
    /* splitmix64: tiny, good enough for jitter, and seedable for tests */
    uint64_t z = (c->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void http_client_set_seed(struct http_client *c, uint64_t seed) { c->rng = seed; }

/* Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))]. */
static int64_t backoff_jitter_us(struct http_client *c, int attempts)
{
    int64_t cap = c->settings.backoff_cap_us;
    int64_t ceiling = c->settings.backoff_base_us;
    for (int i = 1; i < attempts && ceiling < cap; i++)
        ceiling *= 2;
    if (ceiling > cap)
        ceiling = cap;
    if (ceiling <= 0)
        return 0;
    return (int64_t)(rng_next(c) % (uint64_t)(ceiling + 1));
}

/* The URL path without scheme, host or query: what log lines may show. */
static void url_path_for_log(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p += strcspn(p, "/?#");
    size_t n = strcspn(p, "?#");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    if (n == 0 && size > 1) {
        out[0] = '/';
        out[1] = '\0';
    }
}

int http_retry_after_parse(const char *value, int64_t now_s, int64_t *out_us)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value == '\0')
        return -1;
    if (isdigit((unsigned char)*value)) {
        int64_t secs = 0;
        const char *p = value;
        for (; isdigit((unsigned char)*p); p++) {
            if (secs < INT64_C(1000000000))
                secs = secs * 10 + (*p - '0');
        }
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p != '\0')
            return -1;
        *out_us = secs * INT64_C(1000000);
        return 0;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t delta = (int64_t)t - now_s;
    if (delta < 0)
        delta = 0;
    if (delta > INT64_C(1000000000))
        delta = INT64_C(1000000000);
    *out_us = delta * INT64_C(1000000);
    return 0;
}

/* ---------- retry budget: retries per 10 s vs requests per 10 s ---------- */

static struct budget_slot *budget_slot_now(struct http_client *c)
{
    int64_t sec = (int64_t)(uv_now(c->loop) / 1000);
    struct budget_slot *s = &c->budget[sec % HTTP_BUDGET_WINDOW_S];
    if (s->second != sec) {
        s->second = sec;
        s->requests = s->retries = 0;
    }
    return s;
}

static bool budget_allows_retry(struct http_client *c)
{
    int64_t sec = (int64_t)(uv_now(c->loop) / 1000);
    uint64_t requests = 0, retries = 0;
    for (int i = 0; i < HTTP_BUDGET_WINDOW_S; i++) {
        if (sec - c->budget[i].second < HTTP_BUDGET_WINDOW_S) {
            requests += c->budget[i].requests;
            retries += c->budget[i].retries;
        }
    }
    return (double)retries <
           (double)c->settings.retry_budget_min + c->settings.retry_budget_ratio * (double)requests;
}

/* ---------- handle bookkeeping ---------- */

static void client_free(struct http_client *c)
{
    if (c->api_key_header) {
        explicit_bzero(c->api_key_header, strlen(c->api_key_header));
        free(c->api_key_header);
    }
    free(c->ca_file);
    free(c->user_agent);
    free(c);
}

/* One of the client's handles has closed: the last one frees the client. */
static void handle_gone(struct http_client *c)
{
    if (--c->open_handles == 0) {
        void (*cb)(void *) = c->closed_cb;
        void *user = c->closed_user;
        client_free(c);
        if (cb)
            cb(user);
    }
}

static void handle_closed(uv_handle_t *h) { handle_gone(h->data); }

static void socket_closed(uv_handle_t *h)
{
    struct http_socket *s = (struct http_socket *)h;
    struct http_client *c = s->client;
    free(s);
    handle_gone(c);
}

static void socket_close(struct http_socket *s)
{
    if (s->closing)
        return;
    s->closing = true;
    uv_poll_stop(&s->poll);
    list_remove(&s->link);
    uv_close((uv_handle_t *)&s->poll, socket_closed);
}

/* ---------- curl callbacks: record only, never call back into libcurl ---------- */

/* The bytes-in-flight budget (max_inflight_bytes) pauses a transfer rather
 * than cutting it: a cut throws away what arrived and fetches it again (API
 * quota, and a loop when pages stay large), while a pause keeps it and lets
 * TCP flow control hold the rest in the kernel and the server. A transfer
 * paused past http_timeout fails that attempt and is retried as a timeout.
 * Charged: each running transfer's buffer (a kept one of <= 64 KiB included).
 *
 * The running transfer started first: it may always grow (up to max_body_bytes),
 * so one transfer always progresses and the budget never deadlocks. */
static const struct http_transfer *oldest_running(const struct http_client *c)
{
    const struct http_transfer *o = NULL;
    for (const struct http_transfer *t = c->all_transfers; t; t = t->next_all)
        if (t->req && (!o || t->start_seq < o->start_seq))
            o = t;
    return o;
}

/* May t's buffer grow by `more` bytes within max_inflight_bytes? Room for the
 * oldest transfer's whole body is kept free: others may use only the rest. */
static bool budget_allows_growth(const struct http_client *c, const struct http_transfer *t, size_t more)
{
    size_t budget = c->settings.max_inflight_bytes, cap = c->settings.max_body_bytes;
    if (c->inflight_bytes + more + cap <= budget)
        return true;
    const struct http_transfer *o = oldest_running(c);
    if (o == t)
        return true;
    size_t reserve = o && o->charged < cap ? cap - o->charged : 0;
    return c->inflight_bytes + more + reserve <= budget;
}

static void body_charge(struct http_client *c, struct http_transfer *t, size_t new_cap)
{
    c->inflight_bytes = c->inflight_bytes - t->charged + new_cap;
    t->charged = new_cap;
    if (c->inflight_bytes > c->stats.inflight_bytes_peak)
        c->stats.inflight_bytes_peak = c->inflight_bytes;
}

/* Grows t's buffer to hold `need` bytes: the usual doubling when the budget
 * has room for it, else just what is needed; 1 = grown, 0 = wait for budget,
 * -1 = out of memory. */
static int body_grow(struct http_transfer *t, size_t need)
{
    struct http_client *c = t->client;
    size_t cap = c->settings.max_body_bytes;
    size_t want = t->body_cap > 16 * 1024 ? t->body_cap : 16 * 1024;
    if (want < t->content_length + 1)
        want = t->content_length + 1;
    while (want < need)
        want *= 2;
    if (want > cap + 1)
        want = cap + 1;
    if (!budget_allows_growth(c, t, want - t->body_cap)) {
        want = need;
        if (!budget_allows_growth(c, t, want - t->body_cap))
            return 0;
    }
    char *nb = realloc(t->body, want);
    if (!nb)
        return -1;
    t->body = nb;
    t->body_cap = want;
    body_charge(c, t, want);
    return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_transfer *t = userp;
    struct http_client *c = t->client;
    size_t n = size * nmemb;
    if (n > c->settings.max_body_bytes - t->body_len) {
        t->too_big = true;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    if (t->body_len + n + 1 > t->body_cap) {
        int g = body_grow(t, t->body_len + n + 1);
        if (g < 0)
            return 0;
        if (g == 0) {
            /* curl keeps this chunk and offers it again after curl_easy_pause(CONT) */
            if (!t->paused) {
                t->paused = true;
                c->paused++;
                if (c->stats.body_pauses++ == 0)
                    log_info("http body budget reached: transfers wait for bytes to free",
                             "max_inflight_bytes=%zu inflight_bytes=%zu", c->settings.max_inflight_bytes,
                             c->inflight_bytes);
            }
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    memcpy(t->body + t->body_len, data, n);
    t->body_len += n;
    return n;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *value_len)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return false;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    *value = v;
    *value_len = (size_t)(end - v);
    return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct http_transfer *t = userp;
    size_t n = size * nmemb;
    const char *v;
    size_t vl;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx, say): forget the previous one's headers */
        t->retry_after[0] = '\0';
        t->ratelimit_remaining = -1;
        t->content_length = 0;
        t->date_s = 0;
    } else if (header_is(line, n, "Date", &v, &vl)) {
        char d[64];
        if (vl < sizeof d) {
            memcpy(d, v, vl);
            d[vl] = '\0';
            time_t when = curl_getdate(d, NULL);
            t->date_s = when == (time_t)-1 ? 0 : (int64_t)when;
        }
    } else if (header_is(line, n, "Content-Length", &v, &vl)) {
        /* a hint only (compressed size under gzip); capped so a lying header costs nothing */
        size_t len = 0;
        for (size_t i = 0; i < vl && isdigit((unsigned char)v[i]) && len <= SIZE_MAX / 10 - 10; i++)
            len = len * 10 + (size_t)(v[i] - '0');
        t->content_length = len < t->client->settings.max_body_bytes ? len : 0;
    } else if (header_is(line, n, "Retry-After", &v, &vl)) {
        if (vl >= sizeof t->retry_after)
            vl = sizeof t->retry_after - 1;
        memcpy(t->retry_after, v, vl);
        t->retry_after[vl] = '\0';
    } else if (header_is(line, n, "X-RateLimit-Remaining", &v, &vl)) {
        long r = 0;
        size_t i = 0;
        for (; i < vl && isdigit((unsigned char)v[i]) && r < 1000000000L; i++)
            r = r * 10 + (v[i] - '0');
        t->ratelimit_remaining = i > 0 ? r : -1;
    }
    return n;
}

static void curl_timer_fired(uv_timer_t *timer);

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_client *c = userp;
    if (timeout_ms < 0 || c->closing) {
        uv_timer_stop(&c->curl_timer);
        return 0;
    }
    /* 0 means "as soon as possible": arm 1 ms rather than calling
     * curl_multi_socket_action from inside curl's own callback */
    uv_timer_start(&c->curl_timer, curl_timer_fired, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
    return 0;
}

static void poll_fired(uv_poll_t *poll, int status, int events);

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct http_client *c = userp;
    struct http_socket *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            socket_close(s);
        return 0;
    }
    if (s && s->closing)
        return 0;
    if (!s) {
        if (c->closing)
            return 0;
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->client = c;
        s->fd = fd;
        s->poll.data = c;
        c->open_handles++;
        list_push_front(&c->sockets, &s->link);
        /* documented as safe from inside the socket callback */
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    s->events = events;
    if (uv_poll_start(&s->poll, events, poll_fired) != 0)
        return -1;
    return 0;
}

/* ---------- transfers ---------- */

static struct http_transfer *transfer_get(struct http_client *c)
{
    struct http_transfer *t = c->free_transfers;
    if (t) {
        c->free_transfers = t->next_free;
        t->next_free = NULL;
        return t;
    }
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->client = c;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return NULL;
    }
    const struct http_settings *s = &c->settings;
    CURL *e = t->easy;
    int rc = 0;
    rc |= (int)curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    rc |= (int)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= (int)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    rc |= (int)curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    rc |= (int)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    rc |= (int)curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    rc |= (int)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    rc |= (int)curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    rc |= (int)curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    rc |= (int)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* not fatal: a libcurl built without nghttp2 refuses it and speaks HTTP/1.1 */
    (void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    rc |= (int)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= (int)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* Redirects are not followed: the API does not redirect, and a redirect to
     * another host is better surfaced as a failure than silently obeyed. */
    rc |= (int)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    rc |= (int)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    rc |= (int)curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    rc |= (int)curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max_body_bytes);
    if (s->connect_timeout_us > 0)
        rc |= (int)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                                    (long)((s->connect_timeout_us + 999) / 1000));
    if (s->total_timeout_us > 0)
        rc |= (int)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)((s->total_timeout_us + 999) / 1000));
    if (s->low_speed_time_us > 0) {
        /* curl counts low-speed time in whole seconds */
        long secs = (long)((s->low_speed_time_us + 999999) / 1000000);
        rc |= (int)curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        rc |= (int)curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, secs);
    }
    if (c->ca_file)
        rc |= (int)curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->user_agent)
        rc |= (int)curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    if (rc != 0) {
        log_error("http easy handle setup failed", "component=http_client");
        curl_easy_cleanup(t->easy);
        free(t);
        return NULL;
    }
    t->next_all = c->all_transfers;
    c->all_transfers = t;
    return t;
}

static void transfer_release(struct http_client *c, struct http_transfer *t)
{
    t->req = NULL;
    body_charge(c, t, 0);
    c->budget_freed = true;
    if (t->paused) {
        t->paused = false;
        c->paused--;
    }
    if (t->body_cap > HTTP_BODY_KEEP_BYTES) {
        free(t->body);
        t->body = NULL;
        t->body_cap = 0;
    }
    t->body_len = 0;
    t->next_free = c->free_transfers;
    c->free_transfers = t;
}

/* ---------- completion ---------- */

static void request_complete(struct http_client *c, struct http_request *r, enum http_outcome o,
                             long status, const char *body, size_t body_len, const char *error)
{
    struct http_response resp = {
        .outcome = o,
        .status = status,
        .body = body ? body : "",
        .body_len = body ? body_len : 0,
        .attempts = r->attempts,
        .elapsed_s = (double)(uv_hrtime() - r->submit_ns) / 1e9,
        .error = o == HTTP_OK ? NULL : (error && error[0] ? error : "failed"),
        .date_us = r->date_s * INT64_C(1000000),
        .ratelimit_remaining = r->ratelimit_remaining,
    };
    if (o == HTTP_CANCELLED)
        c->stats.cancelled++;
    else if (o != HTTP_OK)
        c->stats.failures++;
    if (o == HTTP_FAILED_TOO_BIG)
        c->stats.too_big++;
    r->cb(r->user, &resp);
    free(r->url);
    free(r);
}

static void retry_timer_fired(uv_timer_t *timer);
static void pump(struct http_client *c);

static void retry_timer_arm(struct http_client *c)
{
    if (c->closing)
        return;
    if (list_empty(&c->sleeping.head)) {
        uv_timer_stop(&c->retry_timer);
        return;
    }
    uint64_t earliest = UINT64_MAX;
    for (struct http_request *r = queue_head(&c->sleeping); r; r = req_of(&c->sleeping, r->link.next))
        if (r->wake_ns < earliest)
            earliest = r->wake_ns;
    uint64_t now = uv_hrtime();
    uint64_t ms = earliest > now ? (earliest - now + 999999) / 1000000 : 0;
    uv_timer_start(&c->retry_timer, retry_timer_fired, ms, 0);
}

static bool transport_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT: /* connect, total and low-speed timeouts */
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: /* a reset during the handshake lands here */
    case CURLE_BAD_CONTENT_ENCODING: /* a truncated gzip stream */
        return true;
    default:
        return false;
    }
}

static bool status_retryable(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

static void record_latency(struct http_client *c, double secs)
{
    for (int i = 0; i < HTTP_LATENCY_BUCKETS; i++)
        if (secs <= http_latency_bounds_s[i])
            c->stats.latency_buckets[i]++;
    c->stats.latency_count++;
    c->stats.latency_sum_s += secs;
}

/* The response's status class into the counters. */
static void count_attempt(struct http_client *c, CURLcode rc, long status, bool transport)
{
    if (transport) {
        c->stats.transport_errors++;
    } else if (rc == CURLE_OK) {
        if (status >= 200 && status < 300)
            c->stats.status_2xx++;
        else if (status >= 400 && status < 500)
            c->stats.status_4xx++;
        else if (status >= 500)
            c->stats.status_5xx++;
        if (status == 429)
            c->stats.status_429++;
    }
}

/* X-RateLimit-Remaining: 0 pauses new starts until Retry-After (or a short
 * default), capped by the backoff cap. */
static void note_rate_limit(struct http_client *c, struct http_request *r, const struct http_transfer *t,
                            int64_t retry_after_us)
{
    r->ratelimit_remaining = t->ratelimit_remaining;
    if (t->ratelimit_remaining == 0) {
        int64_t pause = retry_after_us > 0 ? retry_after_us : HTTP_RATE_PAUSE_US;
        if (pause > c->settings.backoff_cap_us)
            pause = c->settings.backoff_cap_us;
        uint64_t until = uv_hrtime() + (uint64_t)pause * 1000;
        if (until > c->pause_until_ns) {
            c->pause_until_ns = until;
            c->stats.rate_limit_pauses++;
            log_info("http rate limit reached, pausing starts", "pause_ms=%lld",
                     (long long)(pause / 1000));
        }
    }

}

/* A failed attempt that may be retried: rescheduled (true) when attempts and
 * the retry budget allow; false = it fails now. */
static bool retry_later(struct http_client *c, struct http_transfer *t, struct http_request *r, long status,
                        int64_t retry_after_us, const char *qpath)
{
    if (r->attempts < c->settings.max_attempts && !c->closing) {
        if (budget_allows_retry(c)) {
            int64_t wait = backoff_jitter_us(c, r->attempts);
            if (retry_after_us > wait)
                wait = retry_after_us;
            if (wait > c->settings.backoff_cap_us)
                wait = c->settings.backoff_cap_us;
            char qerr[200];
            log_warn("http retry", "path=%s attempt=%d status=%ld reason=%s wait_ms=%lld", qpath,
                     r->attempts, status, log_quote(qerr, sizeof qerr, r->last_error),
                     (long long)(wait / 1000));
            c->stats.retries++;
            budget_slot_now(c)->retries++;
            c->budget_exhausted_logged = false;
            r->wake_ns = uv_hrtime() + (uint64_t)wait * 1000;
            c->running--;
            transfer_release(c, t);
            queue_push_back(&c->sleeping, r, LIST_SLEEPING);
            retry_timer_arm(c);
            return true;
        }
        c->stats.retry_budget_exhausted++;
        if (!c->budget_exhausted_logged) {
            c->budget_exhausted_logged = true;
            log_warn("http retry budget exhausted, failing without retry",
                     "path=%s retry_budget_min=%d retry_budget_ratio=%g", qpath,
                     c->settings.retry_budget_min, c->settings.retry_budget_ratio);
        }
    }
    return false;
}

static void attempt_finished(struct http_client *c, struct http_transfer *t, CURLcode rc)
{
    struct http_request *r = t->req;
    /* detached first: a callback that calls http_client_close must not find r running */
    t->req = NULL;
    double secs = (double)(uv_hrtime() - t->start_ns) / 1e9;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    record_latency(c, secs);
    c->stats.bytes += t->body_len;

    char qpath[300] = "\"\"";
    if (log_min_level <= LOG_LEVEL_WARN) {
        char path[256];
        url_path_for_log(r->url, path, sizeof path);
        log_quote(qpath, sizeof qpath, path);
    }

    bool too_big = t->too_big || rc == CURLE_FILESIZE_EXCEEDED;
    bool transport = rc != CURLE_OK && !too_big;
    count_attempt(c, rc, status, transport);
    log_debug("http attempt", "method=GET path=%s status=%ld ms=%.1f attempt=%d result=%d", qpath,
              status, secs * 1000.0, r->attempts, (int)rc);

    int64_t retry_after_us = -1;
    if (t->retry_after[0]) {
        int64_t v;
        if (http_retry_after_parse(t->retry_after, (int64_t)time(NULL), &v) == 0)
            retry_after_us = v;
    }
    note_rate_limit(c, r, t, retry_after_us);

    if (too_big) {
        snprintf(r->last_error, sizeof r->last_error, "body larger than %zu bytes",
                 c->settings.max_body_bytes);
        log_warn("http body too big", "path=%s max_bytes=%zu", qpath, c->settings.max_body_bytes);
        c->running--;
        transfer_release(c, t);
        request_complete(c, r, HTTP_FAILED_TOO_BIG, status, NULL, 0, r->last_error);
        return;
    }
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        c->running--;
        t->body[t->body_len] = '\0'; /* attempt_start and on_body keep body_cap > body_len */
        r->date_s = t->date_s;
        /* t stays out of the free list during the callback: its body is the response */
        request_complete(c, r, HTTP_OK, status, t->body, t->body_len, NULL);
        transfer_release(c, t);
        return;
    }

    bool retryable;
    if (transport) {
        snprintf(r->last_error, sizeof r->last_error, "%s",
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
        retryable = transport_retryable(rc);
    } else {
        snprintf(r->last_error, sizeof r->last_error, "HTTP status %ld", status);
        retryable = status_retryable(status);
    }

    if (retryable && retry_later(c, t, r, status, retry_after_us, qpath))
        return;
    c->running--;
    enum http_outcome o = transport ? HTTP_FAILED_TRANSPORT : HTTP_FAILED_STATUS;
    if (!transport && t->body_len > 0) {
        t->body[t->body_len] = '\0';
        request_complete(c, r, o, status, t->body, t->body_len, r->last_error);
    } else {
        request_complete(c, r, o, status, NULL, 0, r->last_error);
    }
    transfer_release(c, t);
}

/* A caller's stream ended: unlinked and told. False when easy is not one. */
static bool stream_finished(struct http_client *c, CURL *easy, CURLcode rc)
{
    for (struct list_node *n = c->streams.next; n != &c->streams; n = n->next) {
        struct http_stream *st = list_entry(n, struct http_stream, link);
        if (st->easy != easy)
            continue;
        list_remove(&st->link);
        curl_multi_remove_handle(c->multi, easy);
        st->done(st, (int)rc);
        return true;
    }
    return false;
}

int http_client_stream_start(struct http_client *c, struct http_stream *s)
{
    if (c->closing || curl_multi_add_handle(c->multi, s->easy) != CURLM_OK)
        return -1;
    list_push_back(&c->streams, &s->link);
    return 0;
}

/* Reaps every finished transfer; runs after each socket_action, timeouts included. */
static void reap_finished(struct http_client *c)
{
    CURLMsg *msg;
    int left;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        if (stream_finished(c, easy, rc))
            continue;
        struct http_transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(c->multi, easy);
        if (t && t->req)
            attempt_finished(c, t, rc);
    }
    if (!c->closing)
        pump(c);
}

static void curl_timer_fired(uv_timer_t *timer)
{
    struct http_client *c = timer->data;
    int running;
    if (c->closing)
        return;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    reap_finished(c);
}

static void poll_fired(uv_poll_t *poll, int status, int events)
{
    struct http_socket *s = (struct http_socket *)poll;
    struct http_client *c = s->client;
    curl_socket_t fd = s->fd;
    int running;
    if (c->closing || s->closing)
        return;
    int flags = 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    if (status < 0)
        flags |= CURL_CSELECT_ERR;
    /* s may be freed (CURL_POLL_REMOVE) inside this call: use only fd and c after it */
    curl_multi_socket_action(c->multi, fd, flags, &running);
    if (status < 0 && !c->closing) {
        /* libuv stops a poll handle that reports an error; if curl keeps the
         * socket without changing what it waits for, it would never hear of it again */
        for (struct list_node *n = c->sockets.next; n != &c->sockets; n = n->next) {
            struct http_socket *x = list_entry(n, struct http_socket, link);
            if (x->fd == fd && !x->closing && !uv_is_active((uv_handle_t *)&x->poll))
                uv_poll_start(&x->poll, x->events, poll_fired);
        }
    }
    reap_finished(c);
}

/* ---------- starting ---------- */

static void pump_timer_fired(uv_timer_t *timer)
{
    struct http_client *c = timer->data;
    if (!c->closing)
        pump(c);
}

static void retry_timer_fired(uv_timer_t *timer)
{
    struct http_client *c = timer->data;
    if (c->closing)
        return;
    uint64_t now = uv_hrtime() + 500000; /* wake those due within half a millisecond */
    /* walk backwards so the due requests keep their order at the head of the FIFO:
     * a retry is older than anything still queued */
    struct http_request *r = queue_tail(&c->sleeping);
    while (r) {
        struct http_request *prev = queue_prev(&c->sleeping, r);
        if (r->wake_ns <= now) {
            queue_remove(&c->sleeping, r);
            queue_insert(&c->queued, r, LIST_QUEUED, true);
        }
        r = prev;
    }
    retry_timer_arm(c);
    pump(c);
}

static bool attempt_start(struct http_client *c, struct http_request *r)
{
    struct http_transfer *t = transfer_get(c);
    if (!t) {
        snprintf(r->last_error, sizeof r->last_error, "cannot create a transfer");
        return false;
    }
    t->req = r;
    t->too_big = false;
    t->content_length = 0;
    t->body_len = 0;
    t->retry_after[0] = '\0';
    t->ratelimit_remaining = -1;
    t->errbuf[0] = '\0';
    if (!t->body) {
        t->body = malloc(1);
        if (!t->body) {
            transfer_release(c, t);
            snprintf(r->last_error, sizeof r->last_error, "out of memory");
            return false;
        }
        t->body_cap = 1;
    }
    /* Over TLS, wait for the first connection to say whether it multiplexes
     * (HTTP/2) instead of opening one connection per request. */
    long pipewait = strncasecmp(r->url, "https://", 8) == 0 ? 1L : 0L;
    if (curl_easy_setopt(t->easy, CURLOPT_URL, r->url) != CURLE_OK ||
        curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, pipewait) != CURLE_OK) {
        transfer_release(c, t);
        snprintf(r->last_error, sizeof r->last_error, "invalid URL");
        return false;
    }
    r->attempts++;
    t->start_ns = uv_hrtime();
    t->start_seq = ++c->start_seq;
    body_charge(c, t, t->body_cap);
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
        transfer_release(c, t);
        snprintf(r->last_error, sizeof r->last_error, "cannot add the transfer");
        return false;
    }
    c->running++;
    return true;
}

/* Lets the paused transfers go on once some budget came back: each one that
 * still finds no room pauses again in on_body. Outside curl's callbacks only. */
static void resume_paused(struct http_client *c)
{
    if (!c->paused || !c->budget_freed)
        return;
    c->budget_freed = false;
    for (struct http_transfer *t = c->all_transfers; t && !c->closing; t = t->next_all) {
        if (!t->req || !t->paused)
            continue;
        t->paused = false;
        c->paused--;
        /* a failure here leaves the transfer to its timeout, which retries it */
        (void)curl_easy_pause(t->easy, CURLPAUSE_CONT);
    }
}

/* Starts queued requests while slots and tokens allow. Runs from the loop only. */
static void pump(struct http_client *c)
{
    resume_paused(c);
    while (!c->closing && !list_empty(&c->queued.head) && c->running < (size_t)c->settings.concurrency) {
        uint64_t now = uv_hrtime();
        if (c->pause_until_ns > now) {
            uint64_t ms = (c->pause_until_ns - now + 999999) / 1000000;
            uv_timer_start(&c->pump_timer, pump_timer_fired, ms, 0);
            return;
        }
        if (c->settings.rate > 0) {
            /* a bucket of one token: starts are spaced evenly, never bursty */
            c->tokens += (double)(now - c->tokens_ns) / 1e9 * c->settings.rate;
            if (c->tokens > 1.0)
                c->tokens = 1.0;
            c->tokens_ns = now;
            if (c->tokens < 1.0) {
                double wait_s = (1.0 - c->tokens) / c->settings.rate;
                uint64_t ms = (uint64_t)(wait_s * 1000.0) + 1;
                uv_timer_start(&c->pump_timer, pump_timer_fired, ms, 0);
                return;
            }
            c->tokens -= 1.0;
        }
        struct http_request *r = queue_head(&c->queued);
        queue_remove(&c->queued, r);
        if (!attempt_start(c, r)) {
            char qerr[200];
            log_warn("http request not started", "reason=%s",
                     log_quote(qerr, sizeof qerr, r->last_error));
            request_complete(c, r, HTTP_FAILED_TRANSPORT, 0, NULL, 0, r->last_error);
        }
    }
}

/* ---------- public API ---------- */

static char *strdup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

int http_client_create(struct http_client **out, uv_loop_t *loop, const struct http_settings *s)
{
    *out = NULL;
    if (!loop || !s || s->concurrency < 1 || s->concurrency > HTTP_CONCURRENCY_MAX ||
        s->max_attempts < 1 || s->max_body_bytes == 0 || s->rate < 0 ||
        s->connect_timeout_us < 0 || s->total_timeout_us < 0 || s->low_speed_time_us < 0 ||
        s->backoff_base_us < 0 || s->backoff_cap_us < 0 || s->retry_budget_ratio < 0 ||
        s->retry_budget_min < 0 || s->max_body_bytes > SIZE_MAX / 2 ||
        s->max_body_bytes > s->max_inflight_bytes)
        return -EINVAL;
    /* a CR or LF in the key would let it inject headers */
    if (s->api_key && strpbrk(s->api_key, "\r\n"))
        return -EINVAL;

    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -ENOMEM;
        curl_ready = true;
    }

    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->settings = *s;
    list_init(&c->queued.head);
    list_init(&c->sleeping.head);
    list_init(&c->cancelled.head);
    list_init(&c->sockets);
    list_init(&c->streams);
    bool failed = false;
    c->ca_file = strdup_or_null(s->ca_file, &failed);
    c->user_agent = strdup_or_null(s->user_agent, &failed);
    c->settings.api_key = NULL; /* only the header copy is kept */
    c->settings.ca_file = c->ca_file;
    c->settings.user_agent = c->user_agent;
    if (s->api_key && s->api_key[0] && !failed) {
        size_t n = strlen("Authorization: Bearer ") + strlen(s->api_key) + 1;
        c->api_key_header = malloc(n);
        if (c->api_key_header)
            snprintf(c->api_key_header, n, "Authorization: Bearer %s", s->api_key);
        else
            failed = true;
    }
    struct curl_slist *h = NULL;
    if (!failed) {
        h = curl_slist_append(NULL, "Accept: application/json");
        if (h && c->api_key_header) {
            struct curl_slist *h2 = curl_slist_append(h, c->api_key_header);
            if (!h2) {
                curl_slist_free_all(h);
                h = NULL;
            }
        }
        if (!h)
            failed = true;
    }
    c->headers = h;
    c->multi = failed ? NULL : curl_multi_init();
    if (!c->multi) {
        if (c->headers) {
            for (struct curl_slist *p = c->headers; p; p = p->next)
                explicit_bzero(p->data, strlen(p->data));
            curl_slist_free_all(c->headers);
        }
        client_free(c);
        return -ENOMEM;
    }
    long conns = s->concurrency;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, conns);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    uv_timer_init(loop, &c->curl_timer);
    uv_timer_init(loop, &c->pump_timer);
    uv_timer_init(loop, &c->retry_timer);
    c->curl_timer.data = c->pump_timer.data = c->retry_timer.data = c;
    c->open_handles = 3;

    c->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
    c->tokens = 1.0;
    c->tokens_ns = uv_hrtime();
    for (int i = 0; i < HTTP_BUDGET_WINDOW_S; i++)
        c->budget[i].second = INT64_MIN / 2;
    *out = c;
    return 0;
}

int http_client_get(struct http_client *c, const char *url, http_done_cb cb, void *user)
{
    if (!c || !url || !cb)
        return -EINVAL;
    if (c->closing)
        return -ESHUTDOWN;
    size_t n = strlen(url);
    if (n == 0 || n > HTTP_URL_MAX)
        return -EINVAL;
    struct http_request *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->url = malloc(n + 1);
    if (!r->url) {
        free(r);
        return -ENOMEM;
    }
    memcpy(r->url, url, n + 1);
    r->cb = cb;
    r->user = user;
    r->ratelimit_remaining = -1;
    r->submit_ns = uv_hrtime();
    queue_push_back(&c->queued, r, LIST_QUEUED);
    c->stats.requests++;
    budget_slot_now(c)->requests++;
    /* Starting happens from the loop, so a start failure never calls cb from
     * inside this function; an armed pump timer (token wait) already covers it. */
    if (!uv_is_active((uv_handle_t *)&c->pump_timer))
        uv_timer_start(&c->pump_timer, pump_timer_fired, 0, 0);
    return 0;
}

size_t http_client_in_flight(const struct http_client *c) { return c->running; }

size_t http_client_waiting(const struct http_client *c)
{
    return c->queued.count + c->sleeping.count;
}

void http_client_get_stats(const struct http_client *c, struct http_client_stats *out)
{
    *out = c->stats;
}

/* Runs from the loop after http_client_close: delivers HTTP_CANCELLED, then
 * frees curl state and closes every handle. */
static void teardown(uv_timer_t *timer)
{
    struct http_client *c = timer->data;
    struct http_request *r;
    while ((r = queue_head(&c->cancelled)) != NULL) {
        queue_remove(&c->cancelled, r);
        snprintf(r->last_error, sizeof r->last_error, "cancelled");
        request_complete(c, r, HTTP_CANCELLED, 0, NULL, 0, r->last_error);
    }
    for (struct list_node *n; (n = list_pop_front(&c->streams)) != NULL;) {
        struct http_stream *st = list_entry(n, struct http_stream, link);
        curl_multi_remove_handle(c->multi, st->easy);
        st->done(st, -1);
    }
    /* stop watching before curl closes its sockets; curl's REMOVE calls for
     * these during cleanup are then ignored */
    while (!list_empty(&c->sockets))
        socket_close(list_entry(c->sockets.next, struct http_socket, link));
    struct http_transfer *t = c->all_transfers;
    while (t) {
        struct http_transfer *next = t->next_all;
        curl_easy_cleanup(t->easy);
        free(t->body);
        free(t);
        t = next;
    }
    c->all_transfers = c->free_transfers = NULL;
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    for (struct curl_slist *p = c->headers; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    uv_close((uv_handle_t *)&c->curl_timer, handle_closed);
    uv_close((uv_handle_t *)&c->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&c->pump_timer, handle_closed);
}

void http_client_close(struct http_client *c, void (*closed_cb)(void *user), void *user)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    c->closed_cb = closed_cb;
    c->closed_user = user;
    uv_timer_stop(&c->curl_timer);
    uv_timer_stop(&c->retry_timer);
    /* running first (oldest work), then sleeping retries, then the queue */
    for (struct http_transfer *t = c->all_transfers; t; t = t->next_all) {
        if (!t->req)
            continue;
        curl_multi_remove_handle(c->multi, t->easy);
        queue_push_back(&c->cancelled, t->req, LIST_CANCELLED);
        t->req = NULL;
    }
    c->running = 0;
    struct http_request *r;
    while ((r = queue_head(&c->sleeping)) != NULL) {
        queue_remove(&c->sleeping, r);
        queue_push_back(&c->cancelled, r, LIST_CANCELLED);
    }
    while ((r = queue_head(&c->queued)) != NULL) {
        queue_remove(&c->queued, r);
        queue_push_back(&c->cancelled, r, LIST_CANCELLED);
    }
    uv_timer_start(&c->pump_timer, teardown, 0, 0);
}
