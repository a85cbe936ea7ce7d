/* http_server.h - a small HTTP/1.1 server on the libuv loop (keep-alive,
 * bounded heads and connections) for the simulator and the status listener.
 * The handler answers synchronously with a reply that may carry faults for the
 * server to act out (delay, stall, truncation, reset). Wraps libuv only. */
#ifndef OPTSNAP_HTTP_SERVER_H
#define OPTSNAP_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/http/http_parse.h"

struct http_server;

struct http_reply {
    int status;                 /* 200, 404, 429, ... */
    const char *content_type;   /* static string, default "application/json" */
    char *extra_headers;        /* malloc'd "Name: value\r\n..." or NULL; server frees */
    char *body;                 /* malloc'd or NULL; the server takes ownership and frees */
    size_t body_len;
    /* Faults, acted out by the server. Byte counts are of the serialized
     * response (head + body); the head still announces the full length. */
    uint32_t delay_ms;          /* wait before sending anything */
    size_t stall_after;         /* when > 0 and < total, send that many bytes ... */
    uint32_t stall_ms;          /* ... then pause this long before the rest */
    size_t truncate_at;         /* when > 0, send only this many bytes of the response, then close */
    int reset;                  /* close with TCP RST without answering */
    int close_after;            /* send "Connection: close" and close after the reply */
};

/* Called once per request; must fill *reply (zeroed on entry). body is the
 * request body, NUL-terminated, req->content_length bytes ("" when none); req
 * and body are valid only during the call. A status outside 100..999 (or left
 * 0) is sent as 500. The handler may call http_server_stop; the reply is then
 * dropped (and freed). */
typedef void (*http_handler_fn)(void *user, const struct http_request *req, const char *body,
                                struct http_reply *reply);

struct http_server_settings {
    const char *host;           /* "127.0.0.1" */
    int port;                   /* 0 = pick a free one (see http_server_port) */
    size_t max_connections;     /* at it, the oldest connection not being answered is closed
                                   to make room (a new one is refused only when every
                                   connection is busy with a reply) */
    size_t max_connections_per_peer; /* the same per client address (0 = no per-peer cap) */
    uint64_t head_timeout_ms;   /* a whole request (head and body) must arrive within this
                                   from its first byte (the first request: from accept),
                                   however the bytes trickle in; default 5 s */
    size_t max_head_bytes;      /* default 16 KiB */
    uint64_t idle_timeout_ms;   /* keep-alive idle close, default 30 s; also bounds a
                                   write to a client that stops reading */
    size_t max_body_bytes;      /* request body cap (Content-Length), default 64 KiB; over it: 413 */
};

/* The server answers by itself, then closes: 400 for a malformed head, 431
 * for one over max_head_bytes (or a path over path_buf), 413 for a body over
 * max_body_bytes; "100 Continue" for "Expect: 100-continue". HEAD gets GET's
 * head without the body. Replies on one connection go out one at a time, in
 * request order (pipelining). Start sets SIGPIPE to SIG_IGN when it is still
 * SIG_DFL: libuv writes with write(2), and a client that closes mid-reply
 * would otherwise kill the process.
 *
 * Binds and listens. Zero settings fields take their defaults (host
 * 127.0.0.1, max_connections 1024). Returns 0 or a negative uv error code
 * (UV_EADDRINUSE, UV_EINVAL for a bad address, ...): nothing to close then,
 * the loop is left as it was. */
int http_server_start(struct http_server **out, uv_loop_t *loop,
                      const struct http_server_settings *settings, http_handler_fn handler,
                      void *user) __attribute__((warn_unused_result));

int http_server_port(const struct http_server *s); /* the bound port */

/* Open connections that count toward max_connections. */
size_t http_server_connections(const struct http_server *s);

/* Connections closed to make room for a new one since start. */
uint64_t http_server_evictions(const struct http_server *s);

/* The reason phrase for a status code ("Not Found"); "Unknown" if unlisted. */
const char *http_status_reason(int status);

/* Closes the listener and every connection (replies waiting on a delay or
 * stall are dropped and freed); closed_cb (may be NULL) runs once all handles
 * are closed and the server is freed, so uv_loop_close can then succeed. A
 * second call is ignored. */
void http_server_stop(struct http_server *s, void (*closed_cb)(void *user), void *user);

#endif
