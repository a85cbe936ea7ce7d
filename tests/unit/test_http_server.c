/* Unit tests for http_server: a real server on 127.0.0.1:0 in a loop thread,
 * driven by blocking-socket clients from the test thread. */
#include "optsnap/http/http_server.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---------- the server side, on its own loop thread ---------- */

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

struct harness {
    uv_loop_t loop;
    uv_async_t stop_async;
    struct http_server *server;
    pthread_t thread;
    int port;
    atomic_int handler_calls;
    atomic_int closed_calls;
    int loop_close_rc;
};

static void fill_pattern(char *p, size_t n, size_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + seed) % 26);
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = xmalloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

static void set_body(struct http_reply *reply, const char *text)
{
    reply->body_len = strlen(text);
    reply->body = dup_bytes(text, reply->body_len);
}

static void on_server_closed(void *user)
{
    struct harness *h = user;
    atomic_fetch_add(&h->closed_calls, 1);
}

static void test_handler(void *user, const struct http_request *req, const char *body,
                         struct http_reply *reply)
{
    struct harness *h = user;
    atomic_fetch_add(&h->handler_calls, 1);
    char arg[32];
    size_t n = 0;
    if (http_query_get(req->query, "n", arg, sizeof arg) == 1)
        n = (size_t)strtoull(arg, NULL, 10);
    reply->status = 200;
    if (strcmp(req->path, "/hello") == 0) {
        char text[2200];
        snprintf(text, sizeof text, "{\"path\":\"%s\",\"method\":\"%s\"}", req->path, req->method);
        set_body(reply, text);
    } else if (strcmp(req->path, "/headers") == 0) {
        reply->status = 404;
        reply->content_type = "text/plain";
        reply->extra_headers = dup_bytes("X-Test: yes\r\nX-Other: 2\r\n", 26);
        reply->extra_headers[25] = '\0';
        set_body(reply, "nothing here");
    } else if (strcmp(req->path, "/echo") == 0) {
        /* body must be NUL-terminated at content_length */
        if (strlen(body) != req->content_length)
            reply->status = 500;
        reply->body_len = req->content_length;
        reply->body = dup_bytes(body, req->content_length);
    } else if (strcmp(req->path, "/big") == 0) {
        reply->body = xmalloc(n ? n : 1);
        fill_pattern(reply->body, n, n);
        reply->body_len = n;
    } else if (strcmp(req->path, "/delay") == 0) {
        reply->delay_ms = (uint32_t)n;
        set_body(reply, "{\"delayed\":true}");
    } else if (strcmp(req->path, "/truncate") == 0) {
        reply->body = xmalloc(10000);
        fill_pattern(reply->body, 10000, 1);
        reply->body_len = 10000;
        reply->truncate_at = 5000;
    } else if (strcmp(req->path, "/reset") == 0) {
        reply->reset = 1;
        set_body(reply, "{\"never\":\"sent\"}");
    } else if (strcmp(req->path, "/delayreset") == 0) {
        reply->reset = 1;
        reply->delay_ms = 100;
    } else if (strcmp(req->path, "/stall") == 0) {
        reply->body = xmalloc(2000);
        fill_pattern(reply->body, 2000, 2);
        reply->body_len = 2000;
        reply->stall_after = 100;
        reply->stall_ms = 300;
    } else if (strcmp(req->path, "/close") == 0) {
        reply->close_after = 1;
        set_body(reply, "{\"bye\":true}");
    } else if (strcmp(req->path, "/stop") == 0) {
        set_body(reply, "{\"dropped\":true}");
        http_server_stop(h->server, on_server_closed, h);
        uv_close((uv_handle_t *)&h->stop_async, NULL);
    } else if (strcmp(req->path, "/nostatus") == 0) {
        reply->status = 0;
    } else {
        reply->status = 404;
        set_body(reply, "{\"error\":\"not found\"}");
    }
}

static void on_stop_async(uv_async_t *a)
{
    struct harness *h = a->data;
    http_server_stop(h->server, on_server_closed, h);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_thread(void *arg)
{
    struct harness *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    h->loop_close_rc = uv_loop_close(&h->loop);
    return NULL;
}

static int harness_start(struct harness *h, const struct http_server_settings *settings)
{
    memset(h, 0, sizeof *h);
    if (uv_loop_init(&h->loop) != 0)
        return -1;
    uv_async_init(&h->loop, &h->stop_async, on_stop_async);
    h->stop_async.data = h;
    int r = http_server_start(&h->server, &h->loop, settings, test_handler, h);
    if (r != 0) {
        fprintf(stderr, "  http_server_start: %s\n", uv_strerror(r));
        return -1;
    }
    h->port = http_server_port(h->server);
    if (h->port <= 0)
        return -1;
    return pthread_create(&h->thread, NULL, loop_thread, h) == 0 ? 0 : -1;
}

/* Stops the server from the test thread and asserts a clean loop close. */
static void harness_stop(struct harness *h, bool already_stopping)
{
    if (!already_stopping)
        uv_async_send(&h->stop_async);
    pthread_join(h->thread, NULL);
    CHECK_INT(atomic_load(&h->closed_calls), 1);
    CHECK_INT(h->loop_close_rc, 0);
}

static struct http_server_settings default_settings(void)
{
    struct http_server_settings s;
    memset(&s, 0, sizeof s);
    s.host = "127.0.0.1";
    s.port = 0;
    s.max_connections = 16;
    s.idle_timeout_ms = 5000;
    return s;
}

/* ---------- the client side ---------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void client_send_str(int fd, const char *s) { client_send(fd, s, strlen(s)); }

/* A client connection's received bytes, kept across responses for pipelining. */
struct client {
    int fd;
    char *data;
    size_t len;
    size_t cap;
    int last_errno; /* errno of the read that ended input, 0 for EOF */
};

/* Reads more; returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t client_fill(struct client *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->data = realloc(c->data, c->cap);
    }
    ssize_t r = recv(c->fd, c->data + c->len, c->cap - c->len, 0);
    if (r > 0)
        c->len += (size_t)r;
    c->last_errno = r < 0 ? errno : 0;
    return r;
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->data);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

struct response {
    int status;
    char head[4096];
    size_t content_length;
    char *body; /* malloc'd */
    size_t body_len;
};

static const char *response_header(const struct response *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = (size_t)(e - v) < size - 1 ? (size_t)(e - v) : size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Reads one response. 0 = complete, 1 = body cut short by EOF, -1 = no full head. */
static int response_read(struct client *c, struct response *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    for (;;) {
        end = c->len ? memmem(c->data, c->len, "\r\n\r\n", 4) : NULL;
        if (end)
            break;
        if (client_fill(c) <= 0)
            return -1;
    }
    size_t head_len = (size_t)(end - c->data) + 4;
    if (head_len >= sizeof r->head)
        return -1;
    memcpy(r->head, c->data, head_len);
    r->head[head_len] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    char v[64];
    if (response_header(r, "Content-Length", v, sizeof v))
        r->content_length = (size_t)strtoull(v, NULL, 10);
    while (c->len < head_len + r->content_length) {
        if (client_fill(c) <= 0)
            break;
    }
    size_t avail = c->len - head_len;
    r->body_len = avail < r->content_length ? avail : r->content_length;
    r->body = xmalloc(r->body_len + 1);
    memcpy(r->body, c->data + head_len, r->body_len);
    r->body[r->body_len] = '\0';
    size_t used = head_len + r->body_len;
    memmove(c->data, c->data + used, c->len - used);
    c->len -= used;
    return r->body_len == r->content_length ? 0 : 1;
}

static bool client_open(struct client *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = client_connect(port);
    return c->fd >= 0;
}

/* True when the server closed: EOF (or reset) with no further bytes. */
static bool client_sees_close(struct client *c)
{
    size_t before = c->len;
    ssize_t r = client_fill(c);
    return c->len == before && (r == 0 || (r < 0 && c->last_errno == ECONNRESET));
}

/* True when the server closed in order (FIN, not RST) with no further bytes. */
static bool client_sees_eof(struct client *c)
{
    size_t before = c->len;
    return client_fill(c) == 0 && c->len == before;
}

static int simple_get(int port, const char *target, struct response *r)
{
    struct client c;
    if (!client_open(&c, port))
        return -1;
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", target);
    client_send_str(c.fd, req);
    int rc = response_read(&c, r);
    client_close(&c);
    return rc;
}

/* ---------- tests ---------- */

static struct harness H; /* the main server, shared by most tests */

static void test_server_basic(void)
{
    struct response r;
    char v[128];
    CHECK_INT(simple_get(H.port, "/hello?x=1", &r), 0);
    CHECK_INT(r.status, 200);
    CHECK(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_STR(response_header(&r, "Content-Type", v, sizeof v), "application/json");
    CHECK_STR(response_header(&r, "Connection", v, sizeof v), "keep-alive");
    CHECK_STR(r.body, "{\"path\":\"/hello\",\"method\":\"GET\"}");
    CHECK_INT(r.content_length, strlen("{\"path\":\"/hello\",\"method\":\"GET\"}"));
    free(r.body);

    CHECK_INT(simple_get(H.port, "/headers", &r), 0);
    CHECK(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK_STR(response_header(&r, "Content-Type", v, sizeof v), "text/plain");
    CHECK_STR(response_header(&r, "X-Test", v, sizeof v), "yes");
    CHECK_STR(response_header(&r, "X-Other", v, sizeof v), "2");
    CHECK_STR(r.body, "nothing here");
    free(r.body);

    CHECK_INT(simple_get(H.port, "/nostatus", &r), 0);
    CHECK(strncmp(r.head, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
    CHECK_INT(r.content_length, 0);
    free(r.body);

    CHECK_INT(simple_get(H.port, "/big?n=1000000", &r), 0);
    CHECK_INT(r.body_len, 1000000);
    char *expect = xmalloc(1000000);
    fill_pattern(expect, 1000000, 1000000);
    CHECK(memcmp(r.body, expect, 1000000) == 0);
    free(expect);
    free(r.body);

    CHECK_STR(http_status_reason(429), "Too Many Requests");
    CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
}

static void test_server_keep_alive(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    int before = atomic_load(&H.handler_calls);
    struct response r;
    for (int i = 0; i < 3; i++) {
        client_send_str(c.fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        CHECK_INT(response_read(&c, &r), 0);
        CHECK_INT(r.status, 200);
        free(r.body);
    }
    CHECK_INT(atomic_load(&H.handler_calls) - before, 3);
    /* HEAD: length announced, no body sent, connection still usable. */
    client_send_str(c.fd, "HEAD /big?n=777 HTTP/1.1\r\n\r\n");
    char head[4096] = "";
    size_t got = 0;
    while (!strstr(head, "\r\n\r\n") && got < sizeof head - 1) {
        ssize_t n = recv(c.fd, head + got, sizeof head - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        head[got] = '\0';
    }
    CHECK(strstr(head, "Content-Length: 777\r\n") != NULL);
    CHECK(strlen(strstr(head, "\r\n\r\n")) == 4);
    client_send_str(c.fd, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    char v[64];
    CHECK_STR(response_header(&r, "Connection", v, sizeof v), "close");
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);

    /* HTTP/1.0 defaults to close. */
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GET /hello HTTP/1.0\r\n\r\n");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_STR(response_header(&r, "Connection", v, sizeof v), "close");
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);
}

static void test_server_pipelined(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    const char *reqs = "GET /hello?i=1 HTTP/1.1\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
                       "GET /big?n=300000 HTTP/1.1\r\n\r\n"
                       "GET /nope HTTP/1.1\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n";
    client_send_str(c.fd, reqs);
    struct response r;
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "/hello") != NULL);
    free(r.body);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_STR(r.body, "hello world");
    free(r.body);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.body_len, 300000);
    free(r.body);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 404);
    free(r.body);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);

    /* Requests pipelined and then half-closed are all answered. */
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GET /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    shutdown(c.fd, SHUT_WR);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(response_read(&c, &r), 0);
        CHECK_INT(r.status, 200);
        free(r.body);
    }
    CHECK(client_sees_close(&c));
    client_close(&c);
}

static void test_server_post_body(void)
{
    /* 60 KB: larger than the head buffer, sent in pieces with pauses. */
    size_t n = 60000;
    char *payload = xmalloc(n);
    fill_pattern(payload, n, 9);
    struct client c;
    CHECK(client_open(&c, H.port));
    char head[128];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    client_send_str(c.fd, head);
    usleep(20000);
    client_send(c.fd, payload, 1000);
    usleep(20000);
    client_send(c.fd, payload + 1000, n - 1000);
    client_send_str(c.fd, "GET /hello HTTP/1.1\r\n\r\n");
    struct response r;
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body_len, n);
    CHECK(r.body_len == n && memcmp(r.body, payload, n) == 0);
    free(r.body);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    free(r.body);
    client_close(&c);
    free(payload);

    /* Expect: 100-continue gets the interim answer before the body is sent. */
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 100);
    free(r.body);
    client_send_str(c.fd, "abcde");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "abcde");
    free(r.body);
    client_close(&c);

    /* Over the body cap: 413 and close, without waiting for the body. */
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "POST /echo HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 413);
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);
}

static void test_server_bad_requests(void)
{
    struct client c;
    struct response r;
    char v[64];
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GARBAGE\r\n\r\n");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK(strncmp(r.head, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK_STR(response_header(&r, "Connection", v, sizeof v), "close");
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);

    /* A good request, then a bad one: the good one is answered first. */
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GET /hello HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 200);
    free(r.body);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK_INT(r.status, 400);
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);

    /* A head over 16 KiB: 431 and close. */
    CHECK(client_open(&c, H.port));
    size_t n = 20000;
    char *big = xmalloc(n + 64);
    const char *start = "GET / HTTP/1.1\r\nX-Big: ";
    size_t off = strlen(start);
    memcpy(big, start, off);
    memset(big + off, 'x', n);
    off += n;
    off += (size_t)sprintf(big + off, "\r\n\r\n");
    client_send(c.fd, big, off);
    free(big);
    CHECK_INT(response_read(&c, &r), 0);
    CHECK(strncmp(r.head, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
    free(r.body);
    /* The unread rest of the head is drained, so the close is a FIN. */
    CHECK(client_sees_eof(&c));
    client_close(&c);
}

static void test_server_delay(void)
{
    struct response r;
    double t0 = now_ms();
    CHECK_INT(simple_get(H.port, "/delay?n=300", &r), 0);
    double elapsed = now_ms() - t0;
    CHECK_INT(r.status, 200);
    CHECK(elapsed >= 295);
    CHECK(elapsed < 3000);
    free(r.body);
}

static void test_server_truncate(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GET /truncate HTTP/1.1\r\n\r\n");
    struct response r;
    CHECK_INT(response_read(&c, &r), 1);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.content_length, 10000);
    CHECK_INT(strlen(r.head) + r.body_len, 5000);
    char *expect = xmalloc(10000);
    fill_pattern(expect, 10000, 1);
    CHECK(memcmp(r.body, expect, r.body_len) == 0);
    free(expect);
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);
}

static void test_server_reset(void)
{
    const char *paths[] = {"/reset", "/delayreset"};
    for (int i = 0; i < 2; i++) {
        struct client c;
        CHECK(client_open(&c, H.port));
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n\r\n", paths[i]);
        client_send_str(c.fd, req);
        ssize_t n = client_fill(&c);
        CHECK(n < 0);
        CHECK_INT(c.last_errno, ECONNRESET); /* RST, not an orderly FIN */
        CHECK_INT(c.len, 0);
        client_close(&c);
    }
}

static void test_server_stall(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    double t0 = now_ms();
    client_send_str(c.fd, "GET /stall HTTP/1.1\r\n\r\n");
    ssize_t n = client_fill(&c);
    double first = now_ms() - t0;
    CHECK(n > 0 && n <= 100);
    CHECK(first < 250);
    struct response r;
    CHECK_INT(response_read(&c, &r), 0);
    double all = now_ms() - t0;
    CHECK_INT(r.body_len, 2000);
    CHECK(all >= 295);
    char *expect = xmalloc(2000);
    fill_pattern(expect, 2000, 2);
    CHECK(memcmp(r.body, expect, 2000) == 0);
    free(expect);
    free(r.body);
    client_close(&c);
}

/* A client that resets mid-reply must not take the server down. */
static void test_server_client_abort(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GET /big?n=20000000 HTTP/1.1\r\n\r\n");
    CHECK(client_fill(&c) > 0);
    struct linger lg = {1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    client_close(&c); /* RST with most of the 20 MB unsent */
    usleep(100000);
    struct response r;
    CHECK_INT(simple_get(H.port, "/hello", &r), 0);
    CHECK_INT(r.status, 200);
    free(r.body);
}

static void test_server_close_after(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    client_send_str(c.fd, "GET /close HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    struct response r;
    CHECK_INT(response_read(&c, &r), 0);
    char v[64];
    CHECK_STR(response_header(&r, "Connection", v, sizeof v), "close");
    CHECK_STR(r.body, "{\"bye\":true}");
    free(r.body);
    CHECK(client_sees_close(&c));
    client_close(&c);
}

static void test_server_idle_and_limits(void)
{
    struct http_server_settings s = default_settings();
    s.idle_timeout_ms = 200;
    s.head_timeout_ms = 200; /* a fresh connection waits for its first request this long */
    s.max_connections = 2;
    struct harness h;
    CHECK(harness_start(&h, &s) == 0);

    /* idle timeout */
    struct client idle;
    CHECK(client_open(&idle, h.port));
    double t0 = now_ms();
    CHECK(client_sees_close(&idle));
    double waited = now_ms() - t0;
    CHECK(waited >= 150 && waited < 2000);
    client_close(&idle);
    /* ...and after a request on a keep-alive connection. */
    CHECK(client_open(&idle, h.port));
    client_send_str(idle.fd, "GET /hello HTTP/1.1\r\n\r\n");
    usleep(150000);
    struct response r;
    CHECK_INT(response_read(&idle, &r), 0);
    free(r.body);
    t0 = now_ms();
    CHECK(client_sees_close(&idle));
    waited = now_ms() - t0;
    CHECK(waited < 2000);
    client_close(&idle);
    usleep(50000);

    /* max_connections: the third is served; the oldest idle one (a) is
     * closed to make room, the other (b) still serves. */
    struct client a, b, x;
    CHECK(client_open(&a, h.port));
    usleep(20000);
    CHECK(client_open(&b, h.port));
    client_send_str(a.fd, "GET /hello HTTP/1.1\r\n\r\n");
    client_send_str(b.fd, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK_INT(response_read(&a, &r), 0);
    free(r.body);
    CHECK_INT(response_read(&b, &r), 0);
    free(r.body);
    CHECK(client_open(&x, h.port));
    client_send_str(x.fd, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK_INT(response_read(&x, &r), 0);
    CHECK_INT(r.status, 200);
    free(r.body);
    CHECK(client_sees_close(&a));
    client_close(&a);
    CHECK_INT(http_server_evictions(h.server), 1);
    CHECK_INT(http_server_connections(h.server), 2);

    /* Stop while connections are open; one of them mid-delay. */
    client_send_str(x.fd, "GET /delay?n=10000 HTTP/1.1\r\n\r\n");
    usleep(50000);
    t0 = now_ms();
    harness_stop(&h, false);
    CHECK(now_ms() - t0 < 1000);
    CHECK(client_sees_close(&x));
    client_close(&x);
    client_close(&b);
}

/* Slowloris: a head trickled a byte at a time is cut at its deadline, which
 * the bytes do not restart; idle and trickling sockets from one peer cannot
 * lock a newcomer out (the oldest not being answered makes room). */
static void test_server_slow_heads_and_peer_cap(void)
{
    struct http_server_settings s = default_settings();
    s.idle_timeout_ms = 60000;
    s.head_timeout_ms = 300;
    s.max_connections = 64;
    s.max_connections_per_peer = 4;
    struct harness h;
    CHECK(harness_start(&h, &s) == 0);
    struct client t;
    CHECK(client_open(&t, h.port));
    static const char head[] = "GET /hello HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    size_t sent = 0;
    bool cut = false;
    for (; sent < sizeof head - 1 && !cut; sent++) {
        if (send(t.fd, head + sent, 1, MSG_NOSIGNAL) != 1)
            cut = true;
        usleep(100000); /* 60 bytes would take 6 s; the deadline is 0.3 s */
        struct pollfd pf = {.fd = t.fd, .events = POLLIN};
        if (poll(&pf, 1, 0) == 1)
            cut = true;
    }
    CHECK(cut);
    CHECK(sent < 30);
    CHECK(t.len == 0); /* closed without an answer */
    client_close(&t);

    /* per-peer cap: four idle sockets, then a request is still answered */
    struct client idle[4], probe;
    for (int i = 0; i < 4; i++) {
        CHECK(client_open(&idle[i], h.port));
        client_send_str(idle[i].fd, "GET /hel"); /* a head that never completes */
        usleep(10000);
    }
    CHECK(client_open(&probe, h.port));
    client_send_str(probe.fd, "GET /hello HTTP/1.1\r\n\r\n");
    struct response r;
    CHECK_INT(response_read(&probe, &r), 0);
    CHECK_INT(r.status, 200);
    free(r.body);
    CHECK(client_sees_close(&idle[0])); /* the oldest made room */
    CHECK_INT(http_server_evictions(h.server), 1);
    CHECK(http_server_connections(h.server) <= 4);
    for (int i = 0; i < 4; i++)
        client_close(&idle[i]);
    client_close(&probe);
    harness_stop(&h, false);
}

static void test_server_stop_from_handler(void)
{
    struct http_server_settings s = default_settings();
    struct harness h;
    CHECK(harness_start(&h, &s) == 0);
    struct client c, other;
    CHECK(client_open(&other, h.port));
    CHECK(client_open(&c, h.port));
    client_send_str(other.fd, "GET /stall HTTP/1.1\r\n\r\n");
    usleep(50000);
    client_send_str(c.fd, "GET /stop HTTP/1.1\r\n\r\n");
    harness_stop(&h, true);
    CHECK(client_sees_close(&c));
    CHECK_INT(c.len, 0);
    client_close(&c);
    client_close(&other);
}

static void test_server_start_errors(void)
{
    uv_loop_t loop;
    CHECK_INT(uv_loop_init(&loop), 0);
    struct http_server_settings s = default_settings();
    struct http_server *srv = NULL;
    s.host = "not-an-address";
    CHECK(http_server_start(&srv, &loop, &s, test_handler, NULL) < 0);
    CHECK(srv == NULL);
    /* Port already in use: the error comes back and the loop still closes. */
    s.host = "127.0.0.1";
    s.port = H.port;
    CHECK_INT(http_server_start(&srv, &loop, &s, test_handler, NULL), UV_EADDRINUSE);
    CHECK(srv == NULL);
    /* nothing was left on the loop: it closes without running */
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* Keep-alive GETs of 250 KB bodies on one connection: the shape of a sweep. */
static void test_server_throughput(void)
{
    struct client c;
    CHECK(client_open(&c, H.port));
    const int count = 400;
    const size_t size = 250000;
    size_t total = 0;
    double t0 = now_ms();
    char req[128];
    snprintf(req, sizeof req, "GET /big?n=%zu HTTP/1.1\r\nHost: t\r\n\r\n", size);
    for (int i = 0; i < count; i++) {
        client_send_str(c.fd, req);
        struct response r;
        if (response_read(&c, &r) != 0 || r.body_len != size) {
            CHECK(!"short response");
            free(r.body);
            break;
        }
        total += r.body_len;
        free(r.body);
    }
    double ms = now_ms() - t0;
    client_close(&c);
    printf("  throughput: %d x %zu B in %.0f ms = %.0f req/s, %.0f MB/s\n", count, size, ms,
           count / (ms / 1e3), (double)total / 1e6 / (ms / 1e3));
    CHECK_INT(total, (size_t)count * size);
}

static void test_server_stop_main(void) { harness_stop(&H, false); }

int main(void)
{
    /* SIGPIPE stays at its default: the server must protect itself. */
    struct http_server_settings s = default_settings();
    if (harness_start(&H, &s) != 0) {
        fprintf(stderr, "cannot start the server\n");
        return 1;
    }
    RUN(test_server_basic);
    RUN(test_server_keep_alive);
    RUN(test_server_pipelined);
    RUN(test_server_post_body);
    RUN(test_server_bad_requests);
    RUN(test_server_delay);
    RUN(test_server_truncate);
    RUN(test_server_reset);
    RUN(test_server_stall);
    RUN(test_server_close_after);
    RUN(test_server_client_abort);
    RUN(test_server_start_errors);
    RUN(test_server_throughput);
    RUN(test_server_idle_and_limits);
    RUN(test_server_slow_heads_and_peer_cap);
    RUN(test_server_stop_from_handler);
    RUN(test_server_stop_main);
    TEST_EXIT();
}
