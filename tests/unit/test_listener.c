/* Unit tests for the listener: a real listener on 127.0.0.1:0 in a loop
 * thread with a counting snapshot source, driven by blocking-socket clients.
 * A flood of status page requests costs one render per cache interval (the
 * finding: 320 requests for / with 3,000 underlyings held the loop 8.3 s,
 * one render each); a render over its size cap is a 500 and the probes
 * still answer. */
#include "optsnap/ops/listener.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define UNDERLYINGS 3000

struct harness {
    uv_loop_t loop;
    uv_async_t stop_async;
    struct listener *listener;
    pthread_t thread;
    int port;
    atomic_int snapshots;
    struct metrics_underlying *under;
};

static bool source_ready(void *user, char *why, size_t size)
{
    (void)user;
    snprintf(why, size, "test\n");
    return true;
}

static void source_snapshot(void *user, struct metrics_snapshot *m)
{
    struct harness *h = user;
    atomic_fetch_add(&h->snapshots, 1);
    m->now_us = 1764000000000000;
    m->started_us = m->now_us - 60000000;
    m->version = "test";
    m->underlyings = h->under;
    m->n_underlyings = UNDERLYINGS;
}

static void on_listener_closed(void *user)
{
    (void)user;
}

static void on_stop(uv_async_t *a)
{
    struct harness *h = a->data;
    listener_stop(h->listener, on_listener_closed, h);
    uv_close((uv_handle_t *)&h->stop_async, NULL);
}

static void *loop_thread(void *arg)
{
    struct harness *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int harness_start(struct harness *h, uint64_t cache_ms, size_t max_render_bytes)
{
    memset(h, 0, sizeof *h);
    h->under = calloc(UNDERLYINGS, sizeof *h->under);
    if (h->under == NULL)
        return -1;
    for (int i = 0; i < UNDERLYINGS; i++) {
        snprintf(h->under[i].name, sizeof h->under[i].name, "U%04d", i);
        h->under[i].freshness_s = i % 90;
        h->under[i].rows_written = (uint64_t)i * 7;
    }
    if (uv_loop_init(&h->loop) != 0)
        return -1;
    struct listener_settings s = {.listen = "127.0.0.1:0", .cache_ms = cache_ms, .max_render_bytes = max_render_bytes};
    struct listener_source src = {.user = h, .ready = source_ready, .snapshot = source_snapshot};
    if (listener_start(&h->listener, &h->loop, &s, &src) != 0 || h->listener == NULL)
        return -1;
    h->port = listener_port(h->listener);
    h->stop_async.data = h;
    if (uv_async_init(&h->loop, &h->stop_async, on_stop) != 0)
        return -1;
    return pthread_create(&h->thread, NULL, loop_thread, h) == 0 ? 0 : -1;
}

static void harness_stop(struct harness *h)
{
    uv_async_send(&h->stop_async);
    pthread_join(h->thread, NULL);
    CHECK_INT(uv_loop_close(&h->loop), 0);
    free(h->under);
}

/* One GET; returns the status code (-1 on a socket error), the body's
 * length in *body_len. */
static int get(int port, const char *path, size_t *body_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char resp[1 << 22];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof resp - 1 && (r = read(fd, resp + len, sizeof resp - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    resp[len] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
        return -1;
    const char *body = strstr(resp, "\r\n\r\n");
    *body_len = body ? len - (size_t)(body + 4 - resp) : 0;
    return status;
}

static void test_page_flood_renders_once_per_interval(void)
{
    struct harness h;
    CHECK_INT(harness_start(&h, 60000, 0), 0);
    size_t first = 0;
    for (int i = 0; i < 40; i++) {
        size_t len = 0;
        CHECK_INT(get(h.port, "/", &len), 200);
        if (i == 0)
            first = len;
        CHECK(len == first);
    }
    CHECK(first > UNDERLYINGS * 4); /* every underlying is on the page */
    CHECK_INT(atomic_load(&h.snapshots), 1);
    size_t len = 0;
    CHECK_INT(get(h.port, "/metrics", &len), 200);
    CHECK_INT(get(h.port, "/metrics", &len), 200);
    CHECK_INT(atomic_load(&h.snapshots), 2); /* /metrics has its own cached render */
    harness_stop(&h);

    /* without the cache every request renders: the count above is the cache's */
    CHECK_INT(harness_start(&h, 0, 0), 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(get(h.port, "/", &len), 200);
    CHECK_INT(atomic_load(&h.snapshots), 5);
    harness_stop(&h);
}

static void test_render_over_cap_is_500(void)
{
    struct harness h;
    CHECK_INT(harness_start(&h, 1000, 4096), 0);
    size_t len = 0;
    CHECK_INT(get(h.port, "/", &len), 500);
    CHECK_INT(get(h.port, "/healthz", &len), 200);
    CHECK_INT(get(h.port, "/readyz", &len), 200);
    harness_stop(&h);
}

int main(void)
{
    RUN(test_page_flood_renders_once_per_interval);
    RUN(test_render_over_cap_is_500);
    TEST_EXIT();
}
