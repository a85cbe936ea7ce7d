/* test_http_client.c - the HTTP client against a scripted libuv HTTP/1.1 server
 * in this file: bodies, retries, Retry-After, timeouts, caps, concurrency,
 * token bucket, retry budget, cancellation, and that the API key never reaches
 * a log line. */
#include "optsnap/http/http_client.h"
#include "optsnap/util/log.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <uv.h>

#define TEST_KEY "k3y-SECRET-5f2a9c"

/* ---------------- scripted server ---------------- */

#define SRV_MAX_ROUTES 256
#define SRV_MAX_TIMES 8

struct srv_hits {
    char path[128];
    int count;
    uint64_t times_ns[SRV_MAX_TIMES];
};

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int open_handles;
    struct srv_conn *conns;
    int conns_open, conns_max, conns_total;
    int active, active_max; /* requests received and not yet answered */
    int requests;
    int auth_good, auth_bad, auth_missing;
    int gzip_offered;
    struct srv_hits hits[SRV_MAX_ROUTES];
    int nhits;
};

struct srv_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct srv *srv;
    struct srv_conn *prev, *next;
    char buf[8192];
    size_t len;
    char path[128];
    bool busy, closed, close_after_write;
    int handles;
    size_t split_n; /* /split/N: the body's length, its second half sent late */
};

static struct srv_hits *srv_hits_for(struct srv *s, const char *path)
{
    for (int i = 0; i < s->nhits; i++)
        if (strcmp(s->hits[i].path, path) == 0)
            return &s->hits[i];
    if (s->nhits == SRV_MAX_ROUTES)
        return NULL;
    struct srv_hits *h = &s->hits[s->nhits++];
    snprintf(h->path, sizeof h->path, "%s", path);
    return h;
}

static int srv_hit_count(struct srv *s, const char *path)
{
    for (int i = 0; i < s->nhits; i++)
        if (strcmp(s->hits[i].path, path) == 0)
            return s->hits[i].count;
    return 0;
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct srv_conn *c = h->data;
    if (--c->handles == 0) {
        c->srv->open_handles--;
        free(c);
    }
}

static void conn_close(struct srv_conn *c, bool reset)
{
    if (c->closed)
        return;
    c->closed = true;
    struct srv *s = c->srv;
    if (c->busy)
        s->active--;
    c->busy = false;
    s->conns_open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    if (reset && uv_tcp_close_reset(&c->tcp, conn_handle_closed) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_written(uv_write_t *w, int status)
{
    struct srv_conn *c = w->data;
    free(w);
    if (status == 0 && c->close_after_write)
        conn_close(c, false);
}

static void conn_send(struct srv_conn *c, const char *data, size_t len)
{
    uv_write_t *w = malloc(sizeof *w + len);
    char *copy = (char *)(w + 1);
    memcpy(copy, data, len);
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    w->data = c;
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, conn_written) != 0) {
        free(w);
        conn_close(c, false);
    }
}

static void conn_respond(struct srv_conn *c, int status, const char *extra, const char *body,
                         size_t body_len)
{
    size_t cap = 512 + body_len;
    char *msg = malloc(cap);
    int n = snprintf(msg, cap, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status, body_len,
                     extra ? extra : "");
    memcpy(msg + n, body, body_len);
    c->busy = false;
    c->srv->active--;
    conn_send(c, msg, (size_t)n + body_len);
    free(msg);
}

static char *pattern_body(size_t n)
{
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (i * 7 + n) % 26);
    b[n] = '\0';
    return b;
}

static void conn_delayed(uv_timer_t *t)
{
    struct srv_conn *c = t->data;
    conn_respond(c, 200, NULL, "slow", 4);
}

/* /split/N: headers and the first half of the body now, the rest 300 ms
 * later, so that transfers overlap and hold half-bodies at once. */
static void conn_split_rest(uv_timer_t *t)
{
    struct srv_conn *c = t->data;
    size_t n = c->split_n, half = n / 2;
    char *b = pattern_body(n);
    c->busy = false;
    c->srv->active--;
    conn_send(c, b + half, n - half);
    free(b);
}

static void conn_split_start(struct srv_conn *c, size_t n)
{
    char head[128];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 X\r\nContent-Length: %zu\r\n\r\n", n);
    char *b = pattern_body(n);
    conn_send(c, head, (size_t)hl);
    conn_send(c, b, n / 2);
    free(b);
    c->split_n = n;
    uv_timer_start(&c->timer, conn_split_rest, 300, 0);
}

static void conn_process(struct srv_conn *c);

static void conn_route(struct srv_conn *c)
{
    struct srv *s = c->srv;
    const char *p = c->path;
    struct srv_hits *h = srv_hits_for(s, p);
    int hit = 0;
    if (h) {
        if (h->count < SRV_MAX_TIMES)
            h->times_ns[h->count] = uv_hrtime();
        hit = ++h->count;
    }
    size_t n;
    if (sscanf(p, "/ok/%zu", &n) == 1) {
        char *b = pattern_body(n);
        conn_respond(c, 200, NULL, b, n);
        free(b);
    } else if (sscanf(p, "/split/%zu", &n) == 1) {
        conn_split_start(c, n);
    } else if (sscanf(p, "/slow/%zu", &n) == 1) {
        uv_timer_start(&c->timer, conn_delayed, n, 0);
    } else if (strncmp(p, "/once429/", 9) == 0) {
        if (hit == 1)
            conn_respond(c, 429, "Retry-After: 1\r\n", "{}", 2);
        else
            conn_respond(c, 200, NULL, "after429", 8);
    } else if (strncmp(p, "/once503/", 9) == 0) {
        if (hit == 1)
            conn_respond(c, 503, NULL, "down", 4);
        else
            conn_respond(c, 200, NULL, "after503", 8);
    } else if (sscanf(p, "/status/%zu", &n) == 1) {
        conn_respond(c, (int)n, NULL, "status", 6);
    } else if (strncmp(p, "/always503/", 11) == 0) {
        conn_respond(c, 503, NULL, "down", 4);
    } else if (strncmp(p, "/remaining0/", 12) == 0) {
        conn_respond(c, 200, "X-RateLimit-Remaining: 0\r\n", "last", 4);
    } else if (strcmp(p, "/gzip") == 0) {
        static const char gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\x57"
                                 "\x48\xaf\xca\x2c\x50\x28\xcf\x2f\xca\x49\xe1\xca\x18\x15\x18\x15"
                                 "\x18\x15\x18\x15\x18\x15\x18\x15\x18\x1c\x02\x00\xc6\xeb\xaf\xd0"
                                 "\xa4\x06\x00\x00";
        conn_respond(c, 200, "Content-Encoding: gzip\r\n", gz, sizeof gz - 1);
    } else if (strcmp(p, "/reset") == 0) {
        conn_close(c, true);
    } else if (strcmp(p, "/trunc") == 0) {
        const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        c->close_after_write = true;
        conn_send(c, m, strlen(m));
    } else if (strcmp(p, "/stall") == 0) {
        /* say nothing: the client's low-speed limit must give up */
    } else if (sscanf(p, "/eof/%zu", &n) == 1) {
        /* no Content-Length: the body ends when the connection does */
        char *b = pattern_body(n);
        const char *hd = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        size_t hl = strlen(hd);
        char *m = malloc(hl + n);
        memcpy(m, hd, hl);
        memcpy(m + hl, b, n);
        c->close_after_write = true;
        conn_send(c, m, hl + n);
        free(m);
        free(b);
    } else {
        conn_respond(c, 404, NULL, "nope", 4);
    }
}

static void conn_process(struct srv_conn *c)
{
    while (!c->closed && !c->busy) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return;
        *end = '\0';
        char path[128] = "";
        if (sscanf(c->buf, "GET %127s HTTP/1.1", path) != 1) {
            conn_close(c, false);
            return;
        }
        struct srv *s = c->srv;
        const char *auth = strcasestr(c->buf, "\r\nAuthorization: ");
        const char *want = "Bearer " TEST_KEY;
        if (!auth)
            s->auth_missing++;
        if (auth && strncmp(auth + 17, want, strlen(want)) == 0 &&
            (auth[17 + strlen(want)] == '\r' || auth[17 + strlen(want)] == '\0'))
            s->auth_good++;
        else
            s->auth_bad++;
        const char *ae = strcasestr(c->buf, "\r\nAccept-Encoding: ");
        if (ae) {
            const char *eol = strstr(ae + 2, "\r\n");
            const char *gzip = strstr(ae + 2, "gzip");
            if (gzip && (!eol || gzip < eol))
                s->gzip_offered++;
        }
        size_t used = (size_t)(end + 4 - c->buf);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        snprintf(c->path, sizeof c->path, "%s", path);
        c->busy = true;
        s->requests++;
        if (++s->active > s->active_max)
            s->active_max = s->active;
        conn_route(c);
    }
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct srv_conn *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - 1 - c->len));
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct srv_conn *c = st->data;
    if (n < 0 || c->len + 1 >= sizeof c->buf) {
        conn_close(c, false);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    conn_process(c);
}

static void srv_accept(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    if (status != 0)
        return;
    struct srv_conn *c = calloc(1, sizeof *c);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->open_handles++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conns_total++;
    if (++s->conns_open > s->conns_max)
        s->conns_max = s->conns_open;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
        conn_close(c, false);
}

static void srv_listener_closed(uv_handle_t *h)
{
    struct srv *s = h->data;
    s->open_handles--;
}

static int srv_start(struct srv *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->open_handles = 1;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&s->listener, 128, srv_accept) != 0)
        return -1;
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.sin_port);
    return 0;
}

static void srv_stop(struct srv *s)
{
    uv_close((uv_handle_t *)&s->listener, srv_listener_closed);
    while (s->conns)
        conn_close(s->conns, false);
}

/* ---------------- harness ---------------- */

struct result {
    int calls;
    enum http_outcome outcome;
    long status;
    char *body;
    size_t body_len;
    int attempts;
    double elapsed_s;
    uint64_t done_ns;
    char error[256];
};

struct env {
    uv_loop_t loop;
    struct srv srv;
    struct http_client *client;
    uv_timer_t tick;
    int done;
    int closed_calls;
    size_t in_flight_max;
};

static struct env *g_env;
static bool g_in_get;

static void tick_fired(uv_timer_t *t) { (void)t; }

static void record(struct result *r, const struct http_response *resp)
{
    CHECK(!g_in_get);
    r->calls++;
    r->outcome = resp->outcome;
    r->status = resp->status;
    r->attempts = resp->attempts;
    r->elapsed_s = resp->elapsed_s;
    r->done_ns = uv_hrtime();
    CHECK(resp->body != NULL);
    CHECK(resp->body[resp->body_len] == '\0');
    free(r->body);
    r->body = malloc(resp->body_len + 1);
    memcpy(r->body, resp->body, resp->body_len + 1);
    r->body_len = resp->body_len;
    snprintf(r->error, sizeof r->error, "%s", resp->error ? resp->error : "");
    if (resp->outcome != HTTP_OK)
        CHECK(resp->error != NULL && resp->error[0] != '\0');
    if (g_env && g_env->client) {
        size_t f = http_client_in_flight(g_env->client);
        if (f > g_env->in_flight_max)
            g_env->in_flight_max = f;
    }
    if (g_env)
        g_env->done++;
}

static void on_done(void *user, const struct http_response *resp) { record(user, resp); }

static void base_settings(struct http_settings *s)
{
    http_settings_default(s);
    s->concurrency = 4;
    s->connect_timeout_us = 2000000;
    s->total_timeout_us = 8000000;
    s->low_speed_time_us = 0;
    s->max_attempts = 3;
    s->backoff_base_us = 10000;
    s->backoff_cap_us = 2000000;
    s->retry_budget_ratio = 1.0;
    s->retry_budget_min = 100;
    s->max_body_bytes = 1 << 20;
    s->api_key = TEST_KEY;
}

static bool env_start(struct env *e, const struct http_settings *s)
{
    memset(e, 0, sizeof *e);
    g_env = e;
    CHECK_INT(uv_loop_init(&e->loop), 0);
    if (srv_start(&e->srv, &e->loop) != 0) {
        CHECK(!"server start");
        return false;
    }
    int rc = http_client_create(&e->client, &e->loop, s);
    CHECK_INT(rc, 0);
    if (rc != 0)
        return false;
    http_client_set_seed(e->client, 42);
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_start(&e->tick, tick_fired, 50, 50); /* UV_RUN_ONCE never blocks for long */
    return true;
}

static void env_get(struct env *e, const char *path, struct result *r)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e->srv.port, path);
    g_in_get = true;
    int rc = http_client_get(e->client, url, on_done, r);
    g_in_get = false;
    CHECK_INT(rc, 0);
}

static bool env_run_until(struct env *e, const int *counter, int target, int timeout_ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000;
    while (*counter < target && uv_hrtime() < deadline)
        uv_run(&e->loop, UV_RUN_ONCE);
    CHECK(*counter >= target);
    return *counter >= target;
}

static void client_closed(void *user)
{
    struct env *e = user;
    e->closed_calls++;
    e->client = NULL;
}

static void env_finish(struct env *e)
{
    if (e->client)
        http_client_close(e->client, client_closed, e);
    srv_stop(&e->srv);
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CHECK_INT(e->closed_calls, 1);
    CHECK_INT(e->srv.open_handles, 0);
    CHECK_INT(uv_loop_close(&e->loop), 0);
    g_env = NULL;
}

static double span_s(uint64_t a, uint64_t b) { return (double)(b - a) / 1e9; }

/* ---------------- tests ---------------- */

static void test_retry_after_parse(void)
{
    int64_t us = 0;
    CHECK_INT(http_retry_after_parse("120", 0, &us), 0);
    CHECK_INT(us, 120000000);
    CHECK_INT(http_retry_after_parse(" 5 ", 0, &us), 0);
    CHECK_INT(us, 5000000);
    CHECK_INT(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30, &us), 0);
    CHECK_INT(us, 30000000);
    CHECK_INT(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 30, &us), 0);
    CHECK_INT(us, 0);
    CHECK(http_retry_after_parse("", 0, &us) != 0);
    CHECK(http_retry_after_parse("soon", 0, &us) != 0);
    CHECK(http_retry_after_parse("12abc", 0, &us) != 0);
}

static void test_bodies_byte_exact(void)
{
    struct http_settings s;
    base_settings(&s);
    struct env e;
    if (!env_start(&e, &s))
        return;
    static const size_t sizes[] = {0, 1, 17, 1000, 65536, 300000};
    enum { N = sizeof sizes / sizeof sizes[0] };
    struct result r[N + 1];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/ok/%zu", sizes[i]);
        env_get(&e, path, &r[i]);
    }
    /* the query (a cursor) must not reach the logs either */
    env_get(&e, "/ok/5?cursor=QUERYSECRET", &r[N]);
    struct result gz = {0};
    env_get(&e, "/gzip", &gz);
    env_run_until(&e, &e.done, N + 2, 5000);
    CHECK_INT(gz.outcome, HTTP_OK);
    CHECK_INT(gz.body_len, 1700);
    for (size_t off = 0; gz.body && off + 17 <= gz.body_len; off += 17)
        CHECK(memcmp(gz.body + off, "hello gzip world\n", 17) == 0);
    free(gz.body);
    CHECK_INT(e.srv.gzip_offered, N + 2);
    for (int i = 0; i < N; i++) {
        char *want = pattern_body(sizes[i]);
        CHECK_INT(r[i].calls, 1);
        CHECK_INT(r[i].outcome, HTTP_OK);
        CHECK_INT(r[i].status, 200);
        CHECK_INT(r[i].attempts, 1);
        CHECK_INT(r[i].body_len, sizes[i]);
        CHECK(r[i].body_len == sizes[i] && memcmp(r[i].body, want, sizes[i]) == 0);
        free(want);
    }
    CHECK_INT(r[N].outcome, HTTP_OK);
    /* compared without printing: a failure message must not carry the key */
    CHECK_INT(e.srv.auth_good, N + 2);
    CHECK_INT(e.srv.auth_bad, 0);
    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    CHECK_INT(st.requests, N + 2);
    CHECK_INT(st.status_2xx, N + 2);
    CHECK_INT(st.failures, 0);
    CHECK_INT(st.latency_count, N + 2);
    CHECK_INT(st.latency_buckets[HTTP_LATENCY_BUCKETS - 1], N + 2);
    CHECK_INT(st.bytes, 0 + 1 + 17 + 1000 + 65536 + 300000 + 5 + 1700);
    env_finish(&e);
    for (int i = 0; i <= N; i++)
        free(r[i].body);
}

struct chain {
    struct result r;
    int remaining;
    int calls;
};

static void chain_done(void *user, const struct http_response *resp)
{
    struct chain *ch = user;
    CHECK(!g_in_get);
    CHECK_INT(resp->outcome, HTTP_OK);
    ch->calls++;
    g_env->done++;
    if (--ch->remaining > 0) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/ok/%d", g_env->srv.port, ch->remaining);
        g_in_get = true;
        CHECK_INT(http_client_get(g_env->client, url, chain_done, ch), 0);
        g_in_get = false;
    }
}

/* the ingester follows next_url from inside its callback */
static void test_get_from_callback(void)
{
    struct http_settings s;
    base_settings(&s);
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct chain ch = {.remaining = 5};
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok/9", e.srv.port);
    g_in_get = true;
    CHECK_INT(http_client_get(e.client, url, chain_done, &ch), 0);
    g_in_get = false;
    env_run_until(&e, &e.done, 5, 5000);
    CHECK_INT(ch.calls, 5);
    CHECK_INT(e.srv.conns_total, 1); /* one kept-alive connection served the chain */
    env_finish(&e);
}

static void test_status_handling(void)
{
    struct http_settings s;
    base_settings(&s);
    s.backoff_cap_us = 3000000;
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result r429 = {0}, r503 = {0}, r404 = {0};
    env_get(&e, "/once429/a", &r429);
    env_get(&e, "/once503/a", &r503);
    env_get(&e, "/missing", &r404);
    env_run_until(&e, &e.done, 3, 8000);

    CHECK_INT(r429.outcome, HTTP_OK);
    CHECK_INT(r429.attempts, 2);
    CHECK_STR(r429.body, "after429");
    struct srv_hits *h = srv_hits_for(&e.srv, "/once429/a");
    CHECK_INT(h->count, 2);
    double gap = span_s(h->times_ns[0], h->times_ns[1]);
    if (gap < 0.95 || gap > 3.0)
        fprintf(stderr, "  retry after 429 came %.3f s later\n", gap);
    CHECK(gap >= 0.95); /* Retry-After: 1 honoured over a 10 ms jitter */
    CHECK(gap <= 3.0);  /* and capped */

    CHECK_INT(r503.outcome, HTTP_OK);
    CHECK_INT(r503.attempts, 2);
    CHECK_STR(r503.body, "after503");

    CHECK_INT(r404.outcome, HTTP_FAILED_STATUS);
    CHECK_INT(r404.status, 404);
    CHECK_INT(r404.attempts, 1);
    CHECK_STR(r404.body, "nope");
    CHECK_INT(srv_hit_count(&e.srv, "/missing"), 1);

    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    CHECK_INT(st.status_429, 1);
    CHECK_INT(st.status_5xx, 1);
    CHECK_INT(st.status_4xx, 2);
    CHECK_INT(st.retries, 2);
    CHECK_INT(st.failures, 1);
    env_finish(&e);
    free(r429.body);
    free(r503.body);
    free(r404.body);
}

/* Which statuses are retried: 408, 429, 500, 502, 503, 504; not other 4xx/5xx. */
static void test_retryable_statuses(void)
{
    struct http_settings s;
    base_settings(&s);
    s.backoff_cap_us = 5000;
    struct env e;
    if (!env_start(&e, &s))
        return;
    static const int codes[] = {400, 401, 403, 404, 410, 422, 501, 408, 500, 502, 504, 301};
    static const int want_attempts[] = {1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 1};
    enum { N = sizeof codes / sizeof codes[0] };
    struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/status/%d", codes[i]);
        env_get(&e, path, &r[i]);
    }
    env_run_until(&e, &e.done, N, 5000);
    for (int i = 0; i < N; i++) {
        if (r[i].attempts != want_attempts[i] || r[i].outcome != HTTP_FAILED_STATUS)
            fprintf(stderr, "  status %d: outcome %d attempts %d\n", codes[i], r[i].outcome,
                    r[i].attempts);
        CHECK_INT(r[i].outcome, HTTP_FAILED_STATUS);
        CHECK_INT(r[i].status, codes[i]);
        CHECK_INT(r[i].attempts, want_attempts[i]);
        free(r[i].body);
    }
    env_finish(&e);
}

/* The total timeout ends an attempt that is too slow to answer. */
static void test_total_timeout(void)
{
    struct http_settings s;
    base_settings(&s);
    s.total_timeout_us = 300000;
    s.max_attempts = 2;
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result r = {0};
    env_get(&e, "/slow/3000/t", &r);
    env_run_until(&e, &e.done, 1, 5000);
    CHECK_INT(r.outcome, HTTP_FAILED_TRANSPORT);
    CHECK_INT(r.attempts, 2);
    CHECK(r.elapsed_s >= 0.55 && r.elapsed_s < 2.0);
    if (!(r.elapsed_s >= 0.55 && r.elapsed_s < 2.0))
        fprintf(stderr, "  total timeout: %.3f s, %s\n", r.elapsed_s, r.error);
    env_finish(&e);
    free(r.body);
}

static void test_transport_failures(void)
{
    struct http_settings s;
    base_settings(&s);
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result rr = {0}, rt = {0}, rp = {0}, rf = {0};
    env_get(&e, "/reset", &rr);
    env_get(&e, "/trunc", &rt);
    g_in_get = true;
    CHECK_INT(http_client_get(e.client, "http://127.0.0.1:1/refused", on_done, &rp), 0);
    CHECK_INT(http_client_get(e.client, "ftp://127.0.0.1/not-allowed", on_done, &rf), 0);
    g_in_get = false;
    env_run_until(&e, &e.done, 4, 8000);

    CHECK_INT(rr.outcome, HTTP_FAILED_TRANSPORT);
    CHECK_INT(rr.attempts, 3);
    CHECK(srv_hit_count(&e.srv, "/reset") >= 3);
    CHECK_INT(rt.outcome, HTTP_FAILED_TRANSPORT);
    CHECK_INT(rt.attempts, 3);
    CHECK(srv_hit_count(&e.srv, "/trunc") >= 3);
    CHECK_INT(rp.outcome, HTTP_FAILED_TRANSPORT); /* connection refused: retried */
    CHECK_INT(rp.attempts, 3);
    CHECK_INT(rf.outcome, HTTP_FAILED_TRANSPORT); /* protocol not allowed: not retried */
    CHECK_INT(rf.attempts, 1);
    if (rr.outcome != HTTP_FAILED_TRANSPORT || rt.attempts != 3)
        fprintf(stderr, "  reset: %s / trunc: %s\n", rr.error, rt.error);
    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    CHECK_INT(st.transport_errors, 3 + 3 + 3 + 1);
    CHECK_INT(st.failures, 4);
    env_finish(&e);
    free(rr.body);
    free(rt.body);
    free(rp.body);
    free(rf.body);
}

static void test_low_speed_abort(void)
{
    struct http_settings s;
    base_settings(&s);
    s.low_speed_time_us = 1000000;
    s.max_attempts = 2;
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result r = {0};
    env_get(&e, "/stall", &r);
    env_run_until(&e, &e.done, 1, 12000);
    CHECK_INT(r.outcome, HTTP_FAILED_TRANSPORT);
    CHECK_INT(r.attempts, 2);
    CHECK_INT(srv_hit_count(&e.srv, "/stall"), 2);
    CHECK(strstr(r.error, "too slow") != NULL);
    CHECK(r.elapsed_s >= 1.8 && r.elapsed_s < 7.0);
    if (!(r.elapsed_s >= 1.8 && r.elapsed_s < 7.0) || !strstr(r.error, "too slow"))
        fprintf(stderr, "  stall: %.3f s, %s\n", r.elapsed_s, r.error);
    env_finish(&e);
    free(r.body);
}

static void test_body_cap(void)
{
    struct http_settings s;
    base_settings(&s);
    s.max_body_bytes = 65536;
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result exact = {0}, over = {0}, big = {0}, eof = {0}, eof_ok = {0};
    env_get(&e, "/ok/65536", &exact);
    env_get(&e, "/ok/65537", &over);
    env_get(&e, "/ok/200000", &big);
    env_get(&e, "/eof/200000", &eof);
    env_get(&e, "/eof/1234", &eof_ok);
    env_run_until(&e, &e.done, 5, 5000);
    CHECK_INT(exact.outcome, HTTP_OK);
    CHECK_INT(exact.body_len, 65536);
    CHECK_INT(over.outcome, HTTP_FAILED_TOO_BIG);
    CHECK_INT(over.attempts, 1);
    CHECK_INT(big.outcome, HTTP_FAILED_TOO_BIG);
    CHECK_INT(big.attempts, 1);
    CHECK_INT(eof.outcome, HTTP_FAILED_TOO_BIG); /* no Content-Length: the write callback stops it */
    CHECK_INT(eof.attempts, 1);
    CHECK_INT(srv_hit_count(&e.srv, "/eof/200000"), 1);
    CHECK_INT(eof_ok.outcome, HTTP_OK);
    char *want = pattern_body(1234);
    CHECK(eof_ok.body_len == 1234 && memcmp(eof_ok.body, want, 1234) == 0);
    free(want);
    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    CHECK_INT(st.too_big, 3);
    env_finish(&e);
    free(exact.body);
    free(over.body);
    free(big.body);
    free(eof.body);
    free(eof_ok.body);
}

/* A budget of bytes in flight: 8 overlapping transfers of 200,000-byte bodies
 * with room for ~5: the others pause and resume, every body arrives whole, and the
 * buffers never held more than the budget. */
static void test_inflight_budget(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 8;
    s.max_inflight_bytes = 1 << 20;
    s.max_body_bytes = 256 * 1024;
    struct env e;
    if (!env_start(&e, &s))
        return;
    enum { N = 16 };
    struct result r[N] = {{0}};
    for (int i = 0; i < N; i++)
        env_get(&e, i % 2 ? "/split/200000" : "/split/200001", &r[i]);
    env_run_until(&e, &e.done, N, 8000);
    char *want0 = pattern_body(200001), *want1 = pattern_body(200000);
    for (int i = 0; i < N; i++) {
        CHECK_INT(r[i].outcome, HTTP_OK);
        size_t n = i % 2 ? 200000 : 200001;
        CHECK(r[i].body_len == n && memcmp(r[i].body, i % 2 ? want1 : want0, n) == 0);
        free(r[i].body);
    }
    free(want0);
    free(want1);
    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    CHECK(st.body_pauses > 0);
    CHECK(st.inflight_bytes_peak <= s.max_inflight_bytes);
    CHECK(st.inflight_bytes_peak > s.max_body_bytes);
    CHECK_INT(st.retries, 0);
    /* a body cap above the budget is refused */
    struct http_client *bad = NULL;
    s.max_body_bytes = s.max_inflight_bytes + 1;
    CHECK_INT(http_client_create(&bad, &e.loop, &s), -EINVAL);
    env_finish(&e);
}

static void test_concurrency_limit(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 4;
    struct env e;
    if (!env_start(&e, &s))
        return;
    enum { N = 50 };
    static struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/slow/20/%d", i);
        env_get(&e, path, &r[i]);
    }
    CHECK_INT(http_client_in_flight(e.client), 0); /* nothing starts inside get */
    CHECK_INT(http_client_waiting(e.client), N);
    env_run_until(&e, &e.done, N, 10000);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += r[i].outcome == HTTP_OK && r[i].calls == 1 && strcmp(r[i].body, "slow") == 0;
        free(r[i].body);
    }
    CHECK_INT(ok, N);
    CHECK(e.srv.active_max <= 4);
    CHECK(e.srv.active_max >= 2); /* the pool was actually used */
    CHECK(e.srv.conns_max <= 4);
    CHECK(e.srv.conns_total <= 4); /* connections were reused */
    CHECK(e.in_flight_max <= 4);
    if (e.srv.active_max > 4 || e.srv.conns_total > 4)
        fprintf(stderr, "  active_max=%d conns_max=%d conns_total=%d\n", e.srv.active_max,
                e.srv.conns_max, e.srv.conns_total);
    env_finish(&e);
}

static void test_token_bucket(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 8;
    s.rate = 20;
    struct env e;
    if (!env_start(&e, &s))
        return;
    enum { N = 20 };
    struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/ok/%d", 100 + i);
        env_get(&e, path, &r[i]);
    }
    env_run_until(&e, &e.done, N, 6000);
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/ok/%d", 100 + i);
        struct srv_hits *h = srv_hits_for(&e.srv, path);
        CHECK_INT(h->count, 1);
        if (h->times_ns[0] < first)
            first = h->times_ns[0];
        if (h->times_ns[0] > last)
            last = h->times_ns[0];
        CHECK_INT(r[i].outcome, HTTP_OK);
        free(r[i].body);
    }
    double spread = span_s(first, last);
    if (spread < 0.85 || spread > 3.0)
        fprintf(stderr, "  20 requests at 20/s spread over %.3f s\n", spread);
    CHECK(spread >= 0.85); /* 19 gaps of 50 ms */
    CHECK(spread <= 3.0);
    env_finish(&e);
}

static void test_ratelimit_remaining_pauses(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 1;
    s.backoff_cap_us = 400000; /* the pause is capped like any wait */
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result a = {0}, b = {0};
    env_get(&e, "/remaining0/a", &a);
    env_get(&e, "/ok/3", &b);
    env_run_until(&e, &e.done, 2, 5000);
    CHECK_INT(a.outcome, HTTP_OK);
    CHECK_INT(b.outcome, HTTP_OK);
    double gap = span_s(srv_hits_for(&e.srv, "/remaining0/a")->times_ns[0],
                        srv_hits_for(&e.srv, "/ok/3")->times_ns[0]);
    CHECK(gap >= 0.35 && gap < 2.0);
    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    CHECK_INT(st.rate_limit_pauses, 1);
    env_finish(&e);
    free(a.body);
    free(b.body);
}

static void test_retry_budget(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 8;
    s.max_attempts = 5;
    s.retry_budget_min = 3;
    s.retry_budget_ratio = 0.1;
    s.backoff_base_us = 1000;
    s.backoff_cap_us = 5000;
    struct env e;
    if (!env_start(&e, &s))
        return;
    enum { N = 40 };
    struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/always503/%d", i);
        env_get(&e, path, &r[i]);
    }
    env_run_until(&e, &e.done, N, 8000);
    int failed = 0, attempts = 0;
    for (int i = 0; i < N; i++) {
        failed += r[i].outcome == HTTP_FAILED_STATUS && r[i].status == 503;
        attempts += r[i].attempts;
        free(r[i].body);
    }
    CHECK_INT(failed, N);
    struct http_client_stats st;
    http_client_get_stats(e.client, &st);
    /* retries < 3 + 0.1 * 40 within 10 s; without the budget it would be 160 */
    CHECK(st.retries >= 3 && st.retries <= 7);
    CHECK(st.retry_budget_exhausted >= (uint64_t)N - 7);
    CHECK_INT(attempts, N + (int)st.retries);
    CHECK_INT(e.srv.requests, N + (int)st.retries);
    env_finish(&e);
}

struct cancel_ctx {
    struct env *e;
    int get_after_close;
};

static void close_now(uv_timer_t *t)
{
    struct cancel_ctx *cx = t->data;
    http_client_close(cx->e->client, client_closed, cx->e);
    /* closing is asynchronous but new work is refused at once */
    cx->get_after_close = http_client_get(cx->e->client, "http://127.0.0.1:1/", on_done, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_close_cancels_everything(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 4;
    s.backoff_cap_us = 2000000;
    struct env e;
    if (!env_start(&e, &s))
        return;
    enum { N = 7 };
    struct result r[N];
    memset(r, 0, sizeof r);
    env_get(&e, "/once429/cancel", &r[0]); /* will be sleeping on Retry-After */
    for (int i = 1; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/slow/5000/%d", i);
        env_get(&e, path, &r[i]);
    }
    uv_timer_t t;
    struct cancel_ctx cx = {.e = &e};
    uv_timer_init(&e.loop, &t);
    t.data = &cx;
    uv_timer_start(&t, close_now, 600, 0);
    /* before the close fires: 4 running, 2 queued, 1 sleeping */
    uint64_t until = uv_hrtime() + 250000000;
    while (uv_hrtime() < until)
        uv_run(&e.loop, UV_RUN_ONCE);
    CHECK_INT(http_client_in_flight(e.client), 4);
    CHECK_INT(http_client_waiting(e.client), 3);
    env_run_until(&e, &e.done, N, 5000);
    for (int i = 0; i < N; i++) {
        CHECK_INT(r[i].calls, 1);
        CHECK_INT(r[i].outcome, HTTP_CANCELLED);
        free(r[i].body);
    }
    CHECK(cx.get_after_close != 0);
    env_finish(&e);
}

struct close_in_cb {
    struct result r;
};

static void close_from_cb(void *user, const struct http_response *resp)
{
    record(user, resp);
    http_client_close(g_env->client, client_closed, g_env);
    http_client_close(g_env->client, client_closed, g_env); /* a second call is ignored */
}

static void test_close_from_callback(void)
{
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 8;
    struct env e;
    if (!env_start(&e, &s))
        return;
    enum { N = 5 };
    struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 1; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/slow/5000/c%d", i);
        env_get(&e, path, &r[i]);
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok/10", e.srv.port);
    CHECK_INT(http_client_get(e.client, url, close_from_cb, &r[0]), 0);
    env_run_until(&e, &e.done, N, 5000);
    CHECK_INT(r[0].calls, 1);
    CHECK_INT(r[0].outcome, HTTP_OK);
    for (int i = 1; i < N; i++) {
        CHECK_INT(r[i].calls, 1);
        CHECK_INT(r[i].outcome, HTTP_CANCELLED);
    }
    env_finish(&e);
    for (int i = 0; i < N; i++)
        free(r[i].body);
}

static void test_create_rejects_bad_settings(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct http_settings s;
    struct http_client *c = NULL;
    base_settings(&s);
    s.concurrency = 0;
    CHECK_INT(http_client_create(&c, &loop, &s), -EINVAL);
    base_settings(&s);
    s.api_key = "abc\r\nX-Injected: 1";
    CHECK_INT(http_client_create(&c, &loop, &s), -EINVAL);
    base_settings(&s);
    s.max_attempts = 0;
    CHECK_INT(http_client_create(&c, &loop, &s), -EINVAL);
    CHECK(c == NULL);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* No key (NULL or ""): no Authorization header at all. */
static void test_no_key_no_header(void)
{
    struct http_settings s;
    base_settings(&s);
    s.api_key = "";
    struct env e;
    if (!env_start(&e, &s))
        return;
    struct result r = {0};
    env_get(&e, "/ok/3", &r);
    env_run_until(&e, &e.done, 1, 5000);
    CHECK_INT(r.outcome, HTTP_OK);
    CHECK_INT(e.srv.auth_good, 0);
    CHECK_INT(e.srv.auth_missing, 1);
    env_finish(&e);
    free(r.body);
}

static pid_t child_start(char *const argv[], int port)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    for (int i = 0; i < 100; i++) { /* wait up to ~3 s for it to listen */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(30000);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* TLS: an `openssl s_server` with a throwaway self-signed certificate. The
 * client must refuse it unless ca_file names that certificate. Skipped when
 * the openssl tool is missing. */
static pid_t tls_server_start(const char *dir, int *port_out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 1 "
             "-keyout %s/k.pem -out %s/c.pem >/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0)
        return -1;
    int port = free_port();
    if (port < 0)
        return -1;
    char accept_arg[64], cert[512], key[512];
    snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%d", port);
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    char *argv[] = {"openssl", "s_server", "-accept", accept_arg, "-cert", cert, "-key", key,
                    "-www", "-quiet", NULL};
    pid_t pid = child_start(argv, port);
    if (pid > 0)
        *port_out = port;
    return pid;
}

static const char h2_server_js[] =
    "const http2=require('http2'),fs=require('fs');"
    "const [cert,key,port]=process.argv.slice(1);let sessions=0;"
    "const srv=http2.createSecureServer({cert:fs.readFileSync(cert),key:fs.readFileSync(key)});"
    "srv.on('session',()=>{sessions++;});"
    "srv.on('stream',(st,h)=>{setTimeout(()=>{st.respond({':status':200});"
    "st.end('alpn='+st.session.alpnProtocol+' sessions='+sessions);},50);});"
    "srv.listen(+port,'127.0.0.1');";

/* HTTP/2 over TLS when the server offers it, all requests multiplexed on one
 * connection. Needs node (its built-in http2 module); skipped without it. */
static void h2_check(const char *dir)
{
    int port = free_port();
    char cert[512], key[512], ports[16];
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {"node", "-e", (char *)h2_server_js, cert, key, ports, NULL};
    pid_t pid = port > 0 ? child_start(argv, port) : -1;
    if (pid < 0) {
        printf("  (node unavailable: HTTP/2 check skipped)\n");
        return;
    }
    struct http_settings s;
    base_settings(&s);
    s.concurrency = 8;
    s.ca_file = cert;
    struct env e;
    if (env_start(&e, &s)) {
        enum { N = 16 };
        struct result r[N];
        memset(r, 0, sizeof r);
        char url[128];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/h2", port);
        for (int i = 0; i < N; i++)
            CHECK_INT(http_client_get(e.client, url, on_done, &r[i]), 0);
        env_run_until(&e, &e.done, N, 8000);
        int h2_one_conn = 0;
        for (int i = 0; i < N; i++) {
            h2_one_conn += r[i].outcome == HTTP_OK && strcmp(r[i].body, "alpn=h2 sessions=1") == 0;
            if (i == 0 && r[i].body && strcmp(r[i].body, "alpn=h2 sessions=1") != 0)
                fprintf(stderr, "  h2: outcome %d body \"%s\" error %s\n", r[i].outcome, r[i].body,
                        r[i].error);
            free(r[i].body);
        }
        CHECK_INT(h2_one_conn, N);
        env_finish(&e);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static void test_tls_verification(void)
{
    char dir[] = "/tmp/test_http_tls_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    int port = 0;
    pid_t pid = tls_server_start(dir, &port);
    if (pid < 0) {
        printf("  (openssl unavailable: TLS test skipped)\n");
    } else {
        char url[128], ca[512];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
        snprintf(ca, sizeof ca, "%s/c.pem", dir);
        for (int trusted = 0; trusted <= 1; trusted++) {
            struct http_settings s;
            base_settings(&s);
            s.ca_file = trusted ? ca : NULL;
            struct env e;
            if (!env_start(&e, &s))
                break;
            struct result r = {0};
            g_in_get = true;
            CHECK_INT(http_client_get(e.client, url, on_done, &r), 0);
            g_in_get = false;
            env_run_until(&e, &e.done, 1, 8000);
            if (trusted) {
                CHECK_INT(r.outcome, HTTP_OK);
                CHECK(r.body && strstr(r.body, "s_server") != NULL);
            } else {
                /* an untrusted certificate is refused at once, never retried */
                CHECK_INT(r.outcome, HTTP_FAILED_TRANSPORT);
                CHECK_INT(r.attempts, 1);
            }
            if ((trusted && r.outcome != HTTP_OK) || (!trusted && r.outcome == HTTP_OK))
                fprintf(stderr, "  tls trusted=%d: %s\n", trusted, r.error);
            env_finish(&e);
            free(r.body);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        h2_check(dir);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(!"cleanup");
}

/* Run last: everything the client logged at debug level, across all tests. */
static char g_log_path[] = "/tmp/test_http_client_log_XXXXXX";
static int g_saved_stderr = -1;

static void test_key_never_logged(void)
{
    fflush(stderr);
    size_t len = 0;
    char *log = test_read_file(g_log_path, &len);
    CHECK(len > 0);
    CHECK(strstr(log, "msg=\"http attempt\"") != NULL); /* the capture works */
    CHECK(strstr(log, "msg=\"http retry\"") != NULL);
    CHECK(strstr(log, "path=\"/ok/5\"") != NULL);
    CHECK(strstr(log, TEST_KEY) == NULL);
    CHECK(strstr(log, "Bearer") == NULL);
    CHECK(strstr(log, "QUERYSECRET") == NULL);
    free(log);
}

int main(void)
{
    /* Everything the client logs goes to a file, checked by the last test. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    log_set_level(LOG_LEVEL_DEBUG);
    int fd = mkstemp(g_log_path);
    if (fd < 0)
        return 1;
    /* a crash (a sanitizer report) leaves its text in this file */
    printf("stderr captured in %s until the end\n", g_log_path);
    fflush(stderr);
    g_saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);

    RUN(test_retry_after_parse);
    RUN(test_create_rejects_bad_settings);
    RUN(test_bodies_byte_exact);
    RUN(test_no_key_no_header);
    RUN(test_get_from_callback);
    RUN(test_status_handling);
    RUN(test_retryable_statuses);
    RUN(test_total_timeout);
    RUN(test_transport_failures);
    RUN(test_low_speed_abort);
    RUN(test_body_cap);
    RUN(test_inflight_budget);
    RUN(test_concurrency_limit);
    RUN(test_token_bucket);
    RUN(test_ratelimit_remaining_pauses);
    RUN(test_retry_budget);
    RUN(test_close_cancels_everything);
    RUN(test_close_from_callback);
    RUN(test_tls_verification);
    RUN(test_key_never_logged);

    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    if (test_failures) {
        /* show what was captured (check failures print to stderr too) */
        char *log = test_read_file(g_log_path, NULL);
        fputs(log, stderr);
        free(log);
    }
    unlink(g_log_path);
    TEST_EXIT();
}
