/* api_origin.h - the API's base URL, and where a URL the API sent back
 * (next_url) may be fetched from: the key travels as a header, so following
 * a link to another host would hand it over. Accepted are api_url's own
 * origin, the API's known alias hosts (api.polygon.io and api.massive.com
 * are one service; a link to either is fetched from api_url), and the hosts
 * of api_allowed_hosts; https only, except on loopback hosts. Pure. */
#ifndef OPTSNAP_API_ORIGIN_H
#define OPTSNAP_API_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "optsnap/util/url.h"

#define API_ORIGIN_MAX_ALLOWED 16

struct api_origin {
    char base[512];  /* api_url without trailing '/' */
    size_t len;
    bool https;
    char host[URL_HOST_MAX];
    int port;
    size_t path_len; /* of api_url's path prefix inside base ("" for most) */
    struct {
        char host[URL_HOST_MAX];
        int port;    /* 0 = the scheme's default */
    } allowed[API_ORIGIN_MAX_ALLOWED];
    size_t nallowed;
};

/* Returns 0, or -1 when api_url is empty, too long, not an absolute http(s)
 * URL, carries userinfo, a query or a fragment, or is plain http to a host
 * that is not loopback. */
int api_origin_init(struct api_origin *o, const char *api_url) __attribute__((warn_unused_result));

/* Adds the hosts of a comma list ("host" or "host:port" each, blanks
 * ignored) that next_url may point to and that are followed as they are.
 * Returns 0, or -1 with a message in err (a bad entry, more than
 * API_ORIGIN_MAX_ALLOWED). */
int api_origin_allow_hosts(struct api_origin *o, const char *list, char *err, size_t err_size)
    __attribute__((warn_unused_result));

enum api_origin_verdict {
    API_ORIGIN_REFUSED = 0, /* another host, a downgrade to http, userinfo, a bad URL */
    API_ORIGIN_SAME,        /* api_url's origin and under its path: fetched as it is */
    API_ORIGIN_ALIAS,       /* a known alias host of the API: rebased onto api_url */
    API_ORIGIN_ALLOWED,     /* a host of api_allowed_hosts: fetched as it is */
};

/* Decides where url may be fetched from and writes the URL to fetch into
 * out[size] (url itself, or api_url + url's path for an alias). REFUSED
 * (with out = "") also when out is too small. */
enum api_origin_verdict api_origin_resolve(const struct api_origin *o, const char *url, char *out,
                                           size_t size);

/* True when api_origin_resolve would not refuse url. */
bool api_origin_owns(const struct api_origin *o, const char *url);

/* The API's known hosts that are one service: api.polygon.io and
 * api.massive.com (and their staging pair). True when a and b are in one group. */
bool api_origin_hosts_alias(const char *a, const char *b);

#endif
