/* listener.h - the daemon's HTTP face on `listen`: /healthz, /readyz,
 * /metrics (Prometheus text) and / (the status page), from a snapshot the
 * daemon fills on demand. Renders are cached for `cache_ms`, so a flood of
 * page requests costs one render per interval, and bounded in size. Wraps
 * the HTTP server (libuv). */
#ifndef OPTSNAP_LISTENER_H
#define OPTSNAP_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/ops/metrics.h"

struct listener;

struct listener_source {
    void *user;
    /* true when ready; else why (one line, newline-terminated) */
    bool (*ready)(void *user, char *why, size_t size);
    /* fills *m; what it points to stays valid until the next call */
    void (*snapshot)(void *user, struct metrics_snapshot *m);
};

struct listener_settings {
    const char *listen;       /* "host:port" or "[v6]:port"; "" = no listener */
    const char *allowed_hosts;/* extra Host header names besides loopback ones (comma list), may be NULL */
    uint64_t cache_ms;        /* how long a render of /metrics or / is reused */
    size_t max_render_bytes;  /* a render over it is answered 500 */
};

/* Starts listening (a warning is logged when the address is not loopback).
 * *out stays NULL when listen is "". Returns 0, or -1 (logged). */
int listener_start(struct listener **out, uv_loop_t *loop, const struct listener_settings *s,
                   const struct listener_source *src) __attribute__((warn_unused_result));
int listener_port(const struct listener *l);
/* Closes; closed_cb(user) runs once every handle is closed and the listener is freed. */
void listener_stop(struct listener *l, void (*closed_cb)(void *user), void *user);

#endif
