/* listener.c - /healthz, /readyz, /metrics and the status page over the HTTP server. */
#include "optsnap/ops/listener.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "optsnap/http/http_server.h"
#include "optsnap/util/buf.h"
#include "optsnap/util/log.h"
#include "optsnap/util/url.h"

struct cached_render {
    char *body;
    size_t len;
    uint64_t at_ms; /* uv_now of the render; 0 = none */
};

struct listener {
    uv_loop_t *loop;
    struct http_server *server;
    struct listener_source src;
    uint64_t cache_ms;
    size_t max_render_bytes;
    struct cached_render metrics, page;
    void (*closed_cb)(void *);
    void *closed_user;
    char listen_host[128];  /* the Host names /metrics and / answer to, besides loopback ones */
    char allowed_hosts[512];
};

static void cache_drop(struct cached_render *c)
{
    free(c->body);
    memset(c, 0, sizeof *c);
}

/* The cached render of path, rendered again when older than cache_ms. */
static const struct cached_render *render(struct listener *l, bool page)
{
    struct cached_render *c = page ? &l->page : &l->metrics;
    uint64_t now = uv_now(l->loop);
    if (c->body != NULL && now - c->at_ms < l->cache_ms)
        return c;
    struct metrics_snapshot m;
    memset(&m, 0, sizeof m);
    l->src.snapshot(l->src.user, &m);
    struct bytebuf out;
    bytebuf_init(&out, l->max_render_bytes);
    if (page)
        metrics_render_status_page(&m, &out);
    else
        metrics_render_prometheus(&m, &out);
    size_t len;
    char *body = bytebuf_take(&out, &len);
    if (body == NULL) {
        log_warn("listener: render failed or over its size cap", "what=%s max_bytes=%zu", page ? "page" : "metrics",
                 l->max_render_bytes);
        return NULL;
    }
    cache_drop(c);
    c->body = body;
    c->len = len;
    c->at_ms = now;
    return c;
}

static void reply_text(struct http_reply *reply, int status, const char *text)
{
    reply->status = status;
    reply->content_type = "text/plain; charset=utf-8";
    reply->body = strdup(text);
    reply->body_len = reply->body ? strlen(text) : 0;
    if (reply->body == NULL)
        reply->status = 500;
}

/* Whether a Host header names this listener: a loopback name or address, the
 * listen host, or one of allowed_hosts (any port). A page that DNS rebinding
 * loaded from another name must not read /metrics or the status page.
 * No Host header (HTTP/1.0) passes: a browser always sends one. */
static bool host_allowed(const struct listener *l, const char *header)
{
    if (header == NULL)
        return true;
    char name[256];
    size_t n = 0;
    const char *p = header;
    if (*p == '[') { /* [v6]:port */
        p++;
        while (*p && *p != ']' && n + 1 < sizeof name)
            name[n++] = (char)tolower((unsigned char)*p++);
    } else {
        while (*p && *p != ':' && n + 1 < sizeof name)
            name[n++] = (char)tolower((unsigned char)*p++);
    }
    name[n] = '\0';
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0';
    if (n == 0)
        return false;
    if (url_host_is_loopback(name) || strcasecmp(name, l->listen_host) == 0)
        return true;
    const char *a = l->allowed_hosts;
    while (*a) {
        size_t len = strcspn(a, ",");
        const char *b = a;
        while (len > 0 && *b == ' ') {
            b++;
            len--;
        }
        while (len > 0 && b[len - 1] == ' ')
            len--;
        if (len == n && strncasecmp(b, name, n) == 0)
            return true;
        a += strcspn(a, ",");
        if (*a == ',')
            a++;
    }
    return false;
}

static void on_request(void *user, const struct http_request *req, const char *body, struct http_reply *reply)
{
    (void)body;
    struct listener *l = user;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        reply_text(reply, 405, "method not allowed\n");
        return;
    }
    if (strcmp(req->path, "/healthz") == 0) {
        reply_text(reply, 200, "ok\n");
        return;
    }
    if (strcmp(req->path, "/readyz") == 0) {
        char why[256] = "";
        if (l->src.ready(l->src.user, why, sizeof why))
            reply_text(reply, 200, "ready\n");
        else
            reply_text(reply, 503, why);
        return;
    }
    bool page = strcmp(req->path, "/") == 0;
    if (!page && strcmp(req->path, "/metrics") != 0) {
        reply_text(reply, 404, "not found\n");
        return;
    }
    if (!host_allowed(l, http_request_header(req, "Host"))) {
        reply_text(reply, 403, "host not allowed (a loopback name, the listen host or listen_hosts)\n");
        return;
    }
    const struct cached_render *c = render(l, page);
    if (c == NULL || (reply->body = malloc(c->len ? c->len : 1)) == NULL) {
        reply_text(reply, 500, "render failed\n");
        return;
    }
    memcpy(reply->body, c->body, c->len);
    reply->body_len = c->len;
    reply->status = 200;
    reply->content_type = page ? "text/html; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8";
}

/* "host:port" or "[v6]:port". Returns 0, or -1 for a malformed address. */
static int split_address(const char *spec, char *host, size_t size, int *port)
{
    const char *colon = strrchr(spec, ':');
    if (colon == NULL)
        return -1;
    size_t hl = (size_t)(colon - spec);
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        spec++;
        hl -= 2;
    }
    if (hl == 0 || hl >= size)
        return -1;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int listener_start(struct listener **out, uv_loop_t *loop, const struct listener_settings *s,
                   const struct listener_source *src)
{
    *out = NULL;
    if (s->listen == NULL || s->listen[0] == '\0')
        return 0;
    char host[128], q[200];
    int port;
    if (split_address(s->listen, host, sizeof host, &port) != 0) {
        log_error("bad listen address: expected host:port", "listen=%s", log_quote(q, sizeof q, s->listen));
        return -1;
    }
    if (!url_host_is_loopback(host))
        log_warn("listen is not a loopback address: /metrics and the status page are reachable from the network "
                 "(put them behind a proxy or a firewall)",
                 "listen=%s", log_quote(q, sizeof q, s->listen));
    struct listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -1;
    l->loop = loop;
    l->src = *src;
    snprintf(l->listen_host, sizeof l->listen_host, "%s", host);
    snprintf(l->allowed_hosts, sizeof l->allowed_hosts, "%s", s->allowed_hosts ? s->allowed_hosts : "");
    l->cache_ms = s->cache_ms;
    l->max_render_bytes = s->max_render_bytes ? s->max_render_bytes : (size_t)8 << 20;
    /* 5 s for a whole request and room made by evicting the oldest idle or
     * slow connection: trickling or idle clients cannot lock /healthz out */
    struct http_server_settings hs = {.host = host, .port = port, .max_connections = 64,
                                      .max_connections_per_peer = 32, .head_timeout_ms = 5000};
    int rc = http_server_start(&l->server, loop, &hs, on_request, l);
    if (rc != 0) {
        log_error("cannot listen", "listen=%s error=%s", log_quote(q, sizeof q, s->listen), uv_strerror(rc));
        free(l);
        return -1;
    }
    log_info("listening", "addr=%s:%d paths=\"/metrics /healthz /readyz /\"", host, http_server_port(l->server));
    *out = l;
    return 0;
}

int listener_port(const struct listener *l) { return http_server_port(l->server); }

static void server_closed(void *user)
{
    struct listener *l = user;
    void (*cb)(void *) = l->closed_cb;
    void *u = l->closed_user;
    cache_drop(&l->metrics);
    cache_drop(&l->page);
    free(l);
    if (cb)
        cb(u);
}

void listener_stop(struct listener *l, void (*closed_cb)(void *user), void *user)
{
    l->closed_cb = closed_cb;
    l->closed_user = user;
    http_server_stop(l->server, server_closed, l);
}
