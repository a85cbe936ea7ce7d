/* test_engine.c - the engine and its pager on a real loop, against a loopback
 * HTTP server in this file and a database that never answers: pagination
 * (follow, cap), drain on SIGTERM (waiting fetches end, the one in flight
 * finishes), a second signal and shutdown_timeout stop at once, and the loop
 * always closes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "optsnap/http/http_server.h"
#include "optsnap/pipeline/engine.h"
#include "optsnap/pipeline/pager.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

#define MAX_PAGERS 8

/* ---- the API: a server on the engine's own loop ---- */

struct server {
    struct http_server *http;
    int port;
    int last_page; /* pages 0..last_page; the last has no next_url */
    uint32_t delay_ms;
    int requests;
};

static struct server srv;

static void on_request(void *user, const struct http_request *req, const char *body, struct http_reply *reply)
{
    (void)user;
    (void)body;
    srv.requests++;
    int n = 0;
    const char *q = strstr(req->query, "n=");
    if (q)
        n = atoi(q + 2);
    char buf[256];
    if (n < srv.last_page)
        snprintf(buf, sizeof buf, "{\"results\":[],\"next_url\":\"http://127.0.0.1:%d/p?n=%d\"}", srv.port, n + 1);
    else
        snprintf(buf, sizeof buf, "{\"results\":[]}");
    reply->status = 200;
    reply->body = strdup(buf);
    reply->body_len = strlen(buf);
    reply->delay_ms = srv.delay_ms;
}

/* ---- a driver that runs pagers and, optionally, one group with a row ---- */

struct driver;

struct fetch {
    struct pager pager;
    struct driver *d;
    bool ended, complete;
    char why[96];
    int pages;
};

struct driver {
    struct engine *e;
    struct fetch f[MAX_PAGERS];
    int nf;
    bool with_row; /* a group whose row can never commit: the database is away */
    struct engine_group g;
    uv_timer_t signal_timer;
    int signals_left;
    int settled;
};

static enum page_verdict on_page(struct pager *p, const struct http_response *resp, const char **next_url, char *why,
                                 size_t why_size)
{
    (void)why;
    (void)why_size;
    struct fetch *f = p->user;
    static char next[256];
    f->pages++;
    const char *k = strstr(resp->body, "\"next_url\":\"");
    if (k == NULL) {
        *next_url = NULL;
        return PAGE_OK;
    }
    k += 12;
    const char *end = strchr(k, '"');
    snprintf(next, sizeof next, "%.*s", (int)(end - k), k);
    *next_url = next;
    return PAGE_OK;
}

static void on_end(struct pager *p, bool complete, const char *why)
{
    struct fetch *f = p->user;
    f->ended = true;
    f->complete = complete;
    snprintf(f->why, sizeof f->why, "%s", why);
    struct driver *d = f->d;
    bool all = true;
    for (int i = 0; i < d->nf; i++)
        all = all && d->f[i].ended;
    if (all && d->signals_left == 0 && !d->with_row)
        engine_drain(d->e, "test over"); /* nothing else to wait for */
}

static void raise_signal(uv_timer_t *t)
{
    struct driver *d = t->data;
    if (d->signals_left-- > 0)
        raise(SIGTERM);
    if (d->signals_left <= 0)
        uv_timer_stop(t);
}

static void d_start(void *self)
{
    struct driver *d = self;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/p?n=0", srv.port);
    for (int i = 0; i < d->nf; i++) {
        d->f[i].d = d;
        d->f[i].pager = (struct pager){.on_page = on_page, .on_end = on_end, .user = &d->f[i], .what = "test",
                                       .label = "T"};
        CHECK_INT(pager_start(d->e, &d->f[i].pager, url), 0);
    }
    if (d->with_row) {
        struct snapshot_row r;
        memset(&r, 0, sizeof r);
        snprintf(r.contract.ticker, sizeof r.contract.ticker, "O:T261218C00001000");
        r.last_updated_us = time_now_us();
        snprintf(d->g.wg.underlying, sizeof d->g.wg.underlying, "T");
        d->g.wg.owner = d;
        engine_group_open(d->e, &d->g);
        CHECK_INT(engine_group_add_row(d->e, &d->g, &r), 0);
        engine_group_close(d->e, &d->g);
    }
    if (d->signals_left > 0)
        uv_timer_start(&d->signal_timer, raise_signal, 100, 100);
}

static bool d_busy(void *self)
{
    struct driver *d = self;
    for (int i = 0; i < d->nf; i++)
        if (!d->f[i].ended)
            return true;
    return false;
}

static void d_settled(void *self, struct engine_group *g)
{
    (void)g;
    ((struct driver *)self)->settled++;
}

static void d_closing(void *self)
{
    struct driver *d = self;
    if (srv.http) {
        http_server_stop(srv.http, NULL, NULL);
        srv.http = NULL;
    }
    (void)d;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        exit(1);
    close(fd);
    return ntohs(a.sin_port);
}

static int run_engine(struct driver *d, struct settings *s, int concurrency)
{
    char api[64], err[200];
    srv.port = free_port();
    snprintf(api, sizeof api, "http://127.0.0.1:%d", srv.port);
    if (settings_set(s, "api_url", api, SOURCE_FLAG, "test", err, sizeof err) != 0)
        return -103;
    struct engine_config cfg = {.name = "test", .application_name = "optsnap-test", .http_concurrency = concurrency,
                                .db_connections = 1, .queue_max_rows = 1000, .batch_rows = 100};
    struct engine_driver drv = {.self = d, .start = d_start, .busy = d_busy, .group_settled = d_settled,
                                .closing = d_closing};
    if (engine_create(&d->e, s, &cfg, &drv) != 0)
        return -100;
    uv_timer_init(engine_loop(d->e), &d->signal_timer);
    d->signal_timer.data = d;
    if (engine_own_handle(d->e, (uv_handle_t *)&d->signal_timer) != 0)
        return -101;
    struct http_server_settings hs = {.host = "127.0.0.1", .port = srv.port};
    if (http_server_start(&srv.http, engine_loop(d->e), &hs, on_request, NULL) != 0)
        return -102;
    int rc = engine_run(d->e);
    engine_free(d->e);
    return rc;
}

static void setup(struct settings *s, const char *shutdown_timeout, const char *max_pages)
{
    char err[200];
    settings_init(s);
    memset(&srv, 0, sizeof srv);
    srv.last_page = 2;
    if (settings_set(s, "api_url", "http://127.0.0.1", SOURCE_FLAG, "t", err, sizeof err) ||
        settings_set(s, "database_url", "host=127.0.0.1 port=1 connect_timeout=1", SOURCE_FLAG, "t", err,
                     sizeof err) ||
        settings_set(s, "shutdown_timeout", shutdown_timeout, SOURCE_FLAG, "t", err, sizeof err) ||
        settings_set(s, "max_pages", max_pages, SOURCE_FLAG, "t", err, sizeof err) ||
        settings_set(s, "retry_max_backoff", "100ms", SOURCE_FLAG, "t", err, sizeof err)) {
        fprintf(stderr, "settings: %s\n", err);
        exit(1);
    }
}

/* Every page is followed to the last; the run ends by itself and cleanly. */
static void test_pager_follows_to_the_last_page(void)
{
    struct settings s;
    setup(&s, "5s", "10");
    struct driver d = {.nf = 2};
    CHECK_INT(run_engine(&d, &s, 4), 0);
    for (int i = 0; i < 2; i++) {
        CHECK(d.f[i].ended && d.f[i].complete);
        CHECK_INT(d.f[i].pages, 3);
    }
    CHECK_INT(srv.requests, 6);
    settings_free(&s);
}

/* A listing longer than max_pages stops there, incomplete, with its reason. */
static void test_page_cap(void)
{
    struct settings s;
    setup(&s, "5s", "2");
    struct driver d = {.nf = 1};
    srv.last_page = 100;
    CHECK_INT(run_engine(&d, &s, 4), 0);
    CHECK(d.f[0].ended && !d.f[0].complete);
    CHECK_INT(d.f[0].pages, 2);
    CHECK(strstr(d.f[0].why, "page cap") != NULL);
    settings_free(&s);
}

/* SIGTERM: the fetch in flight finishes its page, the waiting ones end at
 * once as "shutting down", nothing else starts, and the run exits 0. */
static void test_sigterm_drains(void)
{
    struct settings s;
    setup(&s, "5s", "10");
    struct driver d = {.nf = 4, .signals_left = 1};
    srv.delay_ms = 300; /* the first page is in flight when the signal comes */
    CHECK_INT(run_engine(&d, &s, 1), 0);
    int shut = 0, finished_page = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(d.f[i].ended && !d.f[i].complete);
        shut += strcmp(d.f[i].why, "shutting down") == 0;
        finished_page += d.f[i].pages;
    }
    CHECK_INT(shut, 4);
    CHECK_INT(finished_page, 1); /* the one in flight was read, its next page never asked */
    CHECK_INT(srv.requests, 1);
    settings_free(&s);
}

/* Rows that cannot commit hold the drain; a second signal stops at once (exit 1). */
static void test_second_signal_stops_at_once(void)
{
    struct settings s;
    setup(&s, "60s", "10");
    struct driver d = {.nf = 0, .with_row = true, .signals_left = 2};
    CHECK_INT(run_engine(&d, &s, 1), 1);
    CHECK_INT(d.settled, 0); /* never covered */
    settings_free(&s);
}

/* ... and so does shutdown_timeout, with one signal. */
static void test_shutdown_timeout_stops(void)
{
    struct settings s;
    setup(&s, "300ms", "10");
    struct driver d = {.nf = 0, .with_row = true, .signals_left = 1};
    CHECK_INT(run_engine(&d, &s, 1), 1); /* without the timeout this would wait for the database forever */
    settings_free(&s);
}

int main(void)
{
    log_set_level(getenv("TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_OFF);
    RUN(test_pager_follows_to_the_last_page);
    RUN(test_page_cap);
    RUN(test_sigterm_drains);
    RUN(test_second_signal_stops_at_once);
    RUN(test_shutdown_timeout_stops);
    TEST_EXIT();
}
