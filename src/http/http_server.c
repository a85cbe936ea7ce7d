/* http_server.c - HTTP/1.1 server on libuv: keep-alive, pipelining, capped buffers, scripted faults. */
#include "optsnap/http/http_server.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "optsnap/util/list.h"
#include "optsnap/util/log.h"

#define HTTP_SERVER_DEFAULT_MAX_HEAD (16 * 1024)
#define HTTP_SERVER_DEFAULT_MAX_BODY (64 * 1024)
#define HTTP_SERVER_DEFAULT_IDLE_MS 30000
#define HTTP_SERVER_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_SERVER_DEFAULT_HEAD_TIMEOUT_MS 5000

/* One timer per connection serves every wait, because the waits never overlap:
 * idle (between requests), delay (before a reply), stall (inside a reply) and
 * write (a client that stops reading must not pin the connection forever). */
enum conn_timer_mode { TIMER_IDLE, TIMER_DELAY, TIMER_STALL, TIMER_WRITE, TIMER_LINGER };

/* After the last reply the write side is shut and input is read and dropped
 * until the peer closes or this passes: closing with unread input would send
 * RST, and the peer's kernel may then discard the reply it has not read yet. */
#define HTTP_SERVER_LINGER_MS 2000

struct http_conn {
    struct http_server *server;
    struct list_node link; /* in the server's conns */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    enum conn_timer_mode timer_mode;
    int handles_open; /* tcp + timer; the struct is freed when both closed */
    bool counted;     /* holds one of max_connections */
    bool closing;
    bool reading;
    bool busy;     /* a reply is delayed, stalled or being written */
    bool peer_eof; /* requests already buffered are still answered */
    bool req_pending; /* req holds a parsed head whose body is still arriving */
    bool continue_sent; /* "100 Continue" answered for the pending request */
    bool lingering;     /* write side shut; input is discarded until EOF */
    bool served;        /* answered a request already: an empty buffer is keep-alive idle */
    uint64_t accepted_ms;   /* uv_now at accept: the oldest goes first when a cap is reached */
    uint64_t head_deadline; /* uv_now by which the request being read must be whole; 0 = none */
    struct sockaddr_storage peer;

    char *buf; /* read buffer, capped at max_head + max_body + 1 */
    size_t len;
    size_t cap;
    struct http_request req;

    /* The reply in flight: head (ours) + body (the handler's), sent as bytes
     * [0, send_limit) of their concatenation. */
    char *head;
    size_t head_len;
    char *body;
    size_t body_len;
    bool body_owned;
    size_t sent_end;   /* end of the bytes handed to uv_write so far */
    size_t send_limit; /* head_len + body_len, or truncate_at */
    size_t stall_after;
    uint32_t stall_ms;
    bool reset;
    bool close_when_done;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    size_t max_connections;
    size_t max_head_bytes;
    size_t max_body_bytes;
    uint64_t idle_timeout_ms;
    uint64_t head_timeout_ms;
    size_t max_per_peer;
    uint64_t evicted;
    http_handler_fn handler;
    void *user;
    struct list_node conns;  /* every connection not yet freed, counted or not */
    size_t nconns;           /* counted ones */
    bool stopping;
    bool listener_closed;
    void (*closed_cb)(void *user);
    void *closed_user;
};

const char *http_status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static void conn_process(struct http_conn *c);
static void conn_write_range(struct http_conn *c, size_t from, size_t to);

static void server_maybe_finish(struct http_server *s)
{
    if (!s->stopping || !s->listener_closed || !list_empty(&s->conns))
        return;
    void (*cb)(void *) = s->closed_cb;
    void *user = s->closed_user;
    free(s);
    if (cb)
        cb(user);
}

static void reply_release(struct http_conn *c)
{
    free(c->head);
    c->head = NULL;
    if (c->body_owned)
        free(c->body);
    c->body = NULL;
    c->body_owned = false;
    c->head_len = c->body_len = 0;
}

static void conn_on_handle_close(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct http_server *s = c->server;
    list_remove(&c->link);
    if (c->counted)
        s->nconns--;
    reply_release(c);
    free(c->buf);
    free(c);
    server_maybe_finish(s);
}

/* rst: abort with a TCP reset instead of an orderly FIN. */
static void conn_close(struct http_conn *c, bool rst)
{
    if (c->closing)
        return;
    c->closing = true;
    c->busy = true;
    uv_timer_stop(&c->timer);
    if (!rst || uv_tcp_close_reset(&c->tcp, conn_on_handle_close) != 0)
        uv_close((uv_handle_t *)&c->tcp, conn_on_handle_close);
    uv_close((uv_handle_t *)&c->timer, conn_on_handle_close);
}

static void conn_timer_arm(struct http_conn *c, enum conn_timer_mode mode, uint64_t ms);

static void conn_on_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    switch (c->timer_mode) {
    case TIMER_IDLE:
    case TIMER_WRITE:
    case TIMER_LINGER:
        conn_close(c, false);
        break;
    case TIMER_DELAY:
        if (c->reset)
            conn_close(c, true);
        else
            conn_write_range(c, 0, c->stall_after ? c->stall_after : c->send_limit);
        break;
    case TIMER_STALL:
        conn_write_range(c, c->sent_end, c->send_limit);
        break;
    }
}

static void conn_timer_arm(struct http_conn *c, enum conn_timer_mode mode, uint64_t ms)
{
    c->timer_mode = mode;
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

static void conn_reading_start(struct http_conn *c);

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->peer_eof) {
        conn_close(c, false);
        return;
    }
    c->lingering = true;
    c->len = 0;
    conn_reading_start(c);
    conn_timer_arm(c, TIMER_LINGER, HTTP_SERVER_LINGER_MS);
}

/* Ends the connection after its last reply: FIN first so the client reads
 * the whole reply before the close. */
static void conn_finish(struct http_conn *c)
{
    uv_timer_stop(&c->timer);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0)
        conn_close(c, false);
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    struct http_conn *c = h->data;
    size_t room = c->cap - c->len;
    *out = uv_buf_init(room ? c->buf + c->len : NULL, (unsigned int)(room > UINT32_MAX ? UINT32_MAX : room));
}

static void conn_reading_stop(struct http_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

static void conn_reading_start(struct http_conn *c)
{
    if (c->reading || c->peer_eof || c->closing || c->len >= c->cap)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) == 0)
        c->reading = true;
    else
        conn_close(c, false);
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct http_conn *c = stream->data;
    if (c->closing)
        return;
    if (c->lingering) {
        if (nread > 0)
            c->len = 0;
        else if (nread < 0)
            conn_close(c, false);
        return;
    }
    if (nread > 0) {
        c->len += (size_t)nread;
        if (c->len >= c->cap)
            conn_reading_stop(c); /* resumes once a reply consumed its request */
        if (!c->busy)
            conn_process(c);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        conn_reading_stop(c);
        return;
    }
    if (nread == UV_EOF) {
        c->peer_eof = true;
        conn_reading_stop(c);
        if (!c->busy)
            conn_process(c);
        return;
    }
    conn_close(c, false);
}

static void conn_on_write(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c, false);
        return;
    }
    uv_timer_stop(&c->timer);
    if (c->sent_end < c->send_limit) {
        conn_timer_arm(c, TIMER_STALL, c->stall_ms);
        return;
    }
    bool truncated = c->send_limit < c->head_len + c->body_len;
    reply_release(c);
    if (truncated || c->close_when_done) {
        conn_finish(c);
        return;
    }
    c->busy = false;
    conn_reading_start(c);
    conn_process(c);
}

/* Sends bytes [from, to) of head+body in one uv_write, the body uncopied. */
static void conn_write_range(struct http_conn *c, size_t from, size_t to)
{
    uv_buf_t bufs[2];
    unsigned int n = 0;
    if (from < c->head_len) {
        size_t end = to < c->head_len ? to : c->head_len;
        bufs[n++] = uv_buf_init(c->head + from, (unsigned int)(end - from));
    }
    if (to > c->head_len) {
        size_t start = (from > c->head_len ? from : c->head_len) - c->head_len;
        size_t end = to - c->head_len;
        bufs[n++] = uv_buf_init(c->body + start, (unsigned int)(end - start));
    }
    c->sent_end = to;
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, conn_on_write) != 0) {
        conn_close(c, false);
        return;
    }
    if (c->server->idle_timeout_ms > 0)
        conn_timer_arm(c, TIMER_WRITE, c->server->idle_timeout_ms);
}

/* Takes ownership of reply->body and reply->extra_headers in every path. */
static void conn_reply_begin(struct http_conn *c, struct http_reply *reply, bool keep_alive,
                             bool head_only, bool body_static)
{
    char *extra = reply->extra_headers;
    reply->extra_headers = NULL;
    c->body = reply->body;
    /* uv_buf_t lengths are 32-bit; no reply of ours comes near that. */
    c->body_len = c->body && reply->body_len <= UINT32_MAX ? reply->body_len : 0;
    c->body_owned = !body_static;
    reply->body = NULL;
    c->busy = true;
    uv_timer_stop(&c->timer);

    if (c->closing) {
        free(extra);
        reply_release(c);
        return;
    }
    keep_alive = keep_alive && !reply->close_after && !c->server->stopping;
    c->close_when_done = !keep_alive;
    int status = reply->status >= 100 && reply->status <= 999 ? reply->status : 500;
    const char *ctype = reply->content_type ? reply->content_type : "application/json";
    size_t extra_len = extra ? strlen(extra) : 0;
    size_t cap = 192 + strlen(ctype) + extra_len;
    c->head = malloc(cap);
    if (c->head == NULL) {
        free(extra);
        conn_close(c, false);
        return;
    }
    int n = snprintf(c->head, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n",
                     status, http_status_reason(status), ctype, c->body_len,
                     keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n + extra_len + 3 > cap) {
        free(extra);
        conn_close(c, false);
        return;
    }
    c->head_len = (size_t)n;
    if (extra_len) {
        memcpy(c->head + c->head_len, extra, extra_len);
        c->head_len += extra_len;
    }
    free(extra);
    memcpy(c->head + c->head_len, "\r\n", 3);
    c->head_len += 2;

    if (head_only) {
        /* HEAD: Content-Length says what GET would send; no body follows. */
        if (c->body_owned)
            free(c->body);
        c->body = NULL;
        c->body_len = 0;
    }
    size_t total = c->head_len + c->body_len;
    c->send_limit = reply->truncate_at > 0 && reply->truncate_at < total ? reply->truncate_at : total;
    c->stall_after =
        reply->stall_after > 0 && reply->stall_after < c->send_limit ? reply->stall_after : 0;
    c->stall_ms = reply->stall_ms;
    c->reset = reply->reset != 0;
    c->sent_end = 0;

    if (reply->delay_ms > 0) {
        conn_timer_arm(c, TIMER_DELAY, reply->delay_ms);
        return;
    }
    if (c->reset) {
        conn_close(c, true);
        return;
    }
    conn_write_range(c, 0, c->stall_after ? c->stall_after : c->send_limit);
}

static void conn_reply_error(struct http_conn *c, int status, const char *json)
{
    struct http_reply reply;
    memset(&reply, 0, sizeof reply);
    reply.status = status;
    reply.body = (char *)json;
    reply.body_len = strlen(json);
    log_debug("http request rejected", "status=%d", status);
    conn_reply_begin(c, &reply, false, false, true);
}

/* Grows the read buffer to hold at least want bytes; the views of a parsed
 * request whose body is still arriving move with it. */
static char *view_rebase(const char *p, uintptr_t old, char *nb)
{
    return nb + ((uintptr_t)p - old);
}

static int conn_buf_grow(struct http_conn *c, size_t want)
{
    uintptr_t old = (uintptr_t)c->buf;
    struct http_request *r = &c->req;
    /* query is either inside target or a static "" */
    bool query_in_buf = false;
    if (c->req_pending) {
        uintptr_t q = (uintptr_t)r->query, t = (uintptr_t)r->target;
        query_in_buf = q >= t && q <= t + strlen(r->target);
    }
    char *nb = realloc(c->buf, want);
    if (nb == NULL)
        return -1;
    c->buf = nb;
    c->cap = want;
    if (c->req_pending && (uintptr_t)nb != old) {
        r->method = view_rebase(r->method, old, nb);
        r->target = view_rebase(r->target, old, nb);
        if (query_in_buf)
            r->query = view_rebase(r->query, old, nb);
        for (size_t i = 0; i < r->nheaders; i++) {
            r->headers[i].name = view_rebase(r->headers[i].name, old, nb);
            r->headers[i].value = view_rebase(r->headers[i].value, old, nb);
        }
    }
    return 0;
}

static void conn_wait_more(struct http_conn *c)
{
    if (c->peer_eof) {
        conn_close(c, false);
        return;
    }
    conn_reading_start(c);
    struct http_server *s = c->server;
    if (c->len == 0 && !c->req_pending && c->served) { /* keep-alive, between requests */
        c->head_deadline = 0;
        if (s->idle_timeout_ms > 0)
            conn_timer_arm(c, TIMER_IDLE, s->idle_timeout_ms);
        return;
    }
    /* A request is under way (or the first is awaited): one deadline for the
     * whole of it, not restarted by each trickled byte (slowloris). */
    uint64_t now = uv_now(s->loop);
    if (c->head_deadline == 0)
        c->head_deadline = now + s->head_timeout_ms;
    conn_timer_arm(c, TIMER_IDLE, c->head_deadline > now ? c->head_deadline - now : 1);
}

/* curl (before 8.0) sends "Expect: 100-continue" with POST bodies over 1 KiB
 * and otherwise waits a second before sending the body. Nothing else is in
 * flight when this runs (no reply is busy), so a direct write keeps order; a
 * partial write would corrupt the stream, so it closes the connection. */
static int conn_continue_send(struct http_conn *c)
{
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *expect = http_request_header(&c->req, "Expect");
    if (expect == NULL || strcasecmp(expect, "100-continue") != 0 || c->req.version_minor < 1)
        return 0;
    uv_buf_t b = uv_buf_init((char *)interim, sizeof interim - 1);
    if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != (int)(sizeof interim - 1)) {
        conn_close(c, false);
        return -1;
    }
    return 0;
}

static void conn_process(struct http_conn *c)
{
    struct http_server *s = c->server;
    while (!c->busy && !c->closing) {
        if (!c->req_pending) {
            int r = http_request_parse(&c->req, c->buf, c->len, s->max_head_bytes);
            if (r == HTTP_PARSE_AGAIN) {
                conn_wait_more(c);
                return;
            }
            if (r == HTTP_PARSE_BAD) {
                conn_reply_error(c, 400, "{\"status\":\"ERROR\",\"error\":\"bad request\"}");
                return;
            }
            if (r != HTTP_PARSE_DONE) {
                conn_reply_error(c, 431, "{\"status\":\"ERROR\",\"error\":\"request head too large\"}");
                return;
            }
            if (c->req.content_length > s->max_body_bytes) {
                conn_reply_error(c, 413, "{\"status\":\"ERROR\",\"error\":\"request body too large\"}");
                return;
            }
            c->req_pending = true;
        }
        size_t need = c->req.head_len + c->req.content_length;
        if (need + 1 > c->cap && conn_buf_grow(c, need + 1) != 0) {
            conn_close(c, false);
            return;
        }
        if (c->len < need) {
            if (!c->continue_sent) {
                c->continue_sent = true;
                if (conn_continue_send(c) != 0)
                    return;
            }
            conn_wait_more(c);
            return;
        }
        c->req_pending = false;
        c->continue_sent = false;
        c->served = true;
        c->head_deadline = 0;

        /* The body is NUL-terminated in place for the handler; the byte under
         * the NUL may be the next pipelined request, so it is put back. */
        const char *body = "";
        char saved = 0;
        if (c->req.content_length > 0) {
            saved = c->buf[need];
            c->buf[need] = '\0';
            body = c->buf + c->req.head_len;
        }
        struct http_reply reply;
        memset(&reply, 0, sizeof reply);
        s->handler(s->user, &c->req, body, &reply);
        if (c->req.content_length > 0)
            c->buf[need] = saved;
        bool keep_alive = c->req.keep_alive;
        bool head_only = strcmp(c->req.method, "HEAD") == 0;
        memmove(c->buf, c->buf + need, c->len - need);
        c->len -= need;
        conn_reply_begin(c, &reply, keep_alive, head_only, false);
    }
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr, &((const struct sockaddr_in *)b)->sin_addr,
                      sizeof(struct in_addr)) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}

/* The oldest counted connection not busy with a reply (idle, or still reading
 * its request), of the newcomer's peer when same_peer; NULL when none. */
static struct http_conn *oldest_evictable(struct http_server *s, const struct http_conn *newcomer, bool same_peer)
{
    struct http_conn *best = NULL;
    struct list_node *n;
    for (n = s->conns.next; n != &s->conns; n = n->next) {
        struct http_conn *o = list_entry(n, struct http_conn, link);
        if (o == newcomer || !o->counted || o->closing || o->busy)
            continue;
        if (same_peer && !same_address(&o->peer, &newcomer->peer))
            continue;
        if (best == NULL || o->accepted_ms <= best->accepted_ms)
            best = o;
    }
    return best;
}

static void server_on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0) {
        log_warn("http accept failed", "error=%s", uv_err_name(status));
        return;
    }
    if (s->stopping)
        return;
    struct http_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_error("http connection allocation failed", "bytes=%zu", sizeof *c);
        return;
    }
    c->server = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    list_push_front(&s->conns, &c->link);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, false);
        return;
    }
    int plen = (int)sizeof c->peer;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen) != 0)
        memset(&c->peer, 0, sizeof c->peer);
    c->accepted_ms = uv_now(s->loop);
    /* At a cap the oldest connection that is not being answered makes room:
     * refusing the newcomer would let idle or trickling clients lock out a
     * liveness probe for as long as they hold their sockets. */
    size_t same_peer = 0;
    if (s->max_per_peer > 0)
        for (struct list_node *n = s->conns.next; n != &s->conns; n = n->next) {
            const struct http_conn *o = list_entry(n, struct http_conn, link);
            if (o != c && o->counted && !o->closing && same_address(&o->peer, &c->peer))
                same_peer++;
        }
    bool peer_full = s->max_per_peer > 0 && same_peer >= s->max_per_peer;
    if (peer_full || s->nconns >= s->max_connections) {
        struct http_conn *victim = oldest_evictable(s, c, peer_full);
        if (victim == NULL) {
            log_debug("http connection refused", "connections=%zu", s->nconns);
            conn_close(c, false);
            return;
        }
        s->evicted++;
        log_debug("http connection evicted", "connections=%zu peer_connections=%zu", s->nconns, same_peer);
        conn_close(victim, false);
    }
    c->counted = true;
    s->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    c->cap = s->max_head_bytes + 1;
    c->buf = malloc(c->cap);
    if (c->buf == NULL) {
        c->cap = 0;
        conn_close(c, false);
        return;
    }
    conn_reading_start(c);
    if (!c->closing) {
        c->head_deadline = uv_now(s->loop) + s->head_timeout_ms;
        conn_timer_arm(c, TIMER_IDLE, s->head_timeout_ms);
    }
}

static void server_on_listener_close(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->listener_closed = true;
    server_maybe_finish(s);
}

/* A bound, listening, non-blocking TCP socket, or a negative errno (which is
 * the uv error code on Unix). */
static int listen_socket_open(const struct sockaddr *addr)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 || bind(fd, addr, len) != 0 ||
        listen(fd, 511) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int http_server_start(struct http_server **out, uv_loop_t *loop,
                      const struct http_server_settings *settings, http_handler_fn handler,
                      void *user)
{
    if (out == NULL || loop == NULL || settings == NULL || handler == NULL)
        return UV_EINVAL;
    *out = NULL;
    const char *host = settings->host ? settings->host : "127.0.0.1";
    if (settings->port < 0 || settings->port > 65535)
        return UV_EINVAL;
    struct sockaddr_storage addr;
    int r;
    if (strchr(host, ':'))
        r = uv_ip6_addr(host, settings->port, (struct sockaddr_in6 *)&addr);
    else
        r = uv_ip4_addr(host, settings->port, (struct sockaddr_in *)&addr);
    if (r != 0)
        return r;

    /* libuv writes with write(2), not send(MSG_NOSIGNAL): without this a
     * client closing mid-reply kills the process. A handler someone else
     * installed is left alone. */
    struct sigaction old_action;
    if (sigaction(SIGPIPE, NULL, &old_action) == 0 && old_action.sa_handler == SIG_DFL) {
        struct sigaction ignore;
        memset(&ignore, 0, sizeof ignore);
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        sigaction(SIGPIPE, &ignore, NULL);
    }

    struct http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return UV_ENOMEM;
    list_init(&s->conns);
    s->loop = loop;
    s->handler = handler;
    s->user = user;
    s->max_connections =
        settings->max_connections ? settings->max_connections : HTTP_SERVER_DEFAULT_MAX_CONNECTIONS;
    s->max_head_bytes = settings->max_head_bytes ? settings->max_head_bytes : HTTP_SERVER_DEFAULT_MAX_HEAD;
    s->max_body_bytes = settings->max_body_bytes ? settings->max_body_bytes : HTTP_SERVER_DEFAULT_MAX_BODY;
    s->idle_timeout_ms = settings->idle_timeout_ms ? settings->idle_timeout_ms : HTTP_SERVER_DEFAULT_IDLE_MS;
    s->head_timeout_ms = settings->head_timeout_ms ? settings->head_timeout_ms : HTTP_SERVER_DEFAULT_HEAD_TIMEOUT_MS;
    s->max_per_peer = settings->max_connections_per_peer;

    /* Bind and listen on a plain socket first: a handle put on the loop could
     * only be undone by a close callback, and a failed start must leave the
     * loop as it was (uv_tcp_bind also defers EADDRINUSE to listen). */
    int fd = listen_socket_open((const struct sockaddr *)&addr);
    if (fd < 0) {
        free(s);
        return fd;
    }
    r = uv_tcp_init(loop, &s->listener);
    if (r != 0) {
        close(fd);
        free(s);
        return r;
    }
    s->listener.data = s;
    r = uv_tcp_open(&s->listener, fd);
    if (r != 0)
        close(fd); /* not adopted by the handle */
    else
        r = uv_listen((uv_stream_t *)&s->listener, 511, server_on_connection);
    if (r != 0) {
        /* Rare (the socket already listens): the handle is on the loop and is
         * freed by its close callback on the next loop turn. */
        s->stopping = true;
        uv_close((uv_handle_t *)&s->listener, server_on_listener_close);
        return r;
    }
    *out = s;
    return 0;
}

int http_server_port(const struct http_server *s)
{
    if (s == NULL)
        return -1;
    struct sockaddr_storage addr;
    int len = sizeof addr;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

size_t http_server_connections(const struct http_server *s) { return s ? s->nconns : 0; }

uint64_t http_server_evictions(const struct http_server *s) { return s ? s->evicted : 0; }

void http_server_stop(struct http_server *s, void (*closed_cb)(void *user), void *user)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = true;
    s->closed_cb = closed_cb;
    s->closed_user = user;
    uv_close((uv_handle_t *)&s->listener, server_on_listener_close);
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &s->conns)
        conn_close(list_entry(n, struct http_conn, link), false);
}
