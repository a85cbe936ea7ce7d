/* url.h - splits an absolute http(s) URL into scheme, host, port and the rest,
 * strictly enough to decide where a request (and the API key with it) would
 * go: no userinfo, no backslashes, no spaces or control bytes, a host that is
 * a DNS name, an IPv4 address or a bracketed IPv6 literal. Pure. */
#ifndef OPTSNAP_URL_H
#define OPTSNAP_URL_H

#include <stdbool.h>
#include <stddef.h>

#define URL_HOST_MAX 256

struct url_parts {
    bool https;               /* else http */
    char host[URL_HOST_MAX];  /* lower-cased; IPv6 keeps its brackets */
    int port;                 /* explicit or the scheme's default (443, 80) */
    const char *rest;         /* points into the URL: path, query, fragment ("" when none) */
};

/* Returns 0 and fills *out (rest points into url), or -1 when url is not an
 * absolute http:// or https:// URL of that strict shape. The scheme is
 * matched case-insensitively; a host ending in '.' or holding '%' is refused. */
int url_split(const char *url, struct url_parts *out) __attribute__((warn_unused_result));

/* Parses "host" or "host:port" (an entry of api_allowed_hosts) into
 * host[URL_HOST_MAX] (lower-cased) and *port (0 when absent). Returns 0 or -1. */
int url_host_port_parse(const char *text, size_t len, char *host, int *port)
    __attribute__((warn_unused_result));

/* Walks a comma list ("a, b:8443,,c"): returns the length of the next
 * non-blank entry, trimmed, and points *tok at it; 0 at the end. *cursor
 * starts at the list and is advanced. */
size_t url_list_next(const char **cursor, const char **tok);

/* True for localhost, 127.0.0.0/8 (dotted decimal only, so not a name
 * such as 127.0.0.1.example) and ::1, bracketed or not: hosts a request never leaves
 * the machine for, so plain http is acceptable there. */
bool url_host_is_loopback(const char *host);

#endif
