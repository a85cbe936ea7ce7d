/* api_origin.c - the API's base URL and where next_url may be fetched from (same origin, alias hosts, allowed hosts). */
#include "optsnap/api/api_origin.h"

#include <stdio.h>
#include <string.h>

/* One service under two names since the Polygon.io -> Massive rename; each
 * row is a group. The spec's servers list both production and staging. */
static const char *const alias_groups[][2] = {
    {"api.polygon.io", "api.massive.com"},
    {"api.staging.polygon.io", "api.staging.massive.com"},
};
#define N_ALIAS_GROUPS (sizeof alias_groups / sizeof alias_groups[0])

static int alias_group(const char *host)
{
    for (size_t g = 0; g < N_ALIAS_GROUPS; g++)
        for (size_t i = 0; i < 2; i++)
            if (strcmp(host, alias_groups[g][i]) == 0)
                return (int)g;
    return -1;
}

bool api_origin_hosts_alias(const char *a, const char *b)
{
    int g = alias_group(a);
    return g >= 0 && g == alias_group(b);
}

int api_origin_init(struct api_origin *o, const char *api_url)
{
    memset(o, 0, sizeof *o);
    size_t n = strlen(api_url);
    while (n > 0 && api_url[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof o->base)
        return -1;
    memcpy(o->base, api_url, n);
    o->base[n] = '\0';
    o->len = n;
    struct url_parts u;
    if (url_split(o->base, &u))
        return -1;
    if (strpbrk(u.rest, "?#") != NULL)
        return -1;
    if (!u.https && !url_host_is_loopback(u.host))
        return -1; /* the key would cross the network in clear */
    o->https = u.https;
    memcpy(o->host, u.host, sizeof o->host);
    o->port = u.port;
    o->path_len = strlen(u.rest);
    return 0;
}

int api_origin_allow_hosts(struct api_origin *o, const char *list, char *err, size_t err_size)
{
    const char *cur = list != NULL ? list : "", *tok;
    for (size_t tlen; (tlen = url_list_next(&cur, &tok)) > 0;) {
        if (o->nallowed == API_ORIGIN_MAX_ALLOWED) {
            snprintf(err, err_size, "api_allowed_hosts: more than %d hosts", API_ORIGIN_MAX_ALLOWED);
            return -1;
        }
        if (url_host_port_parse(tok, tlen, o->allowed[o->nallowed].host, &o->allowed[o->nallowed].port)) {
            snprintf(err, err_size, "api_allowed_hosts: '%.*s' is not host or host:port",
                     (int)(tlen > 80 ? 80 : tlen), tok);
            return -1;
        }
        o->nallowed++;
    }
    return 0;
}

static enum api_origin_verdict put(char *out, size_t size, enum api_origin_verdict v, const char *a,
                                   const char *b)
{
    int n = snprintf(out, size, "%s%s", a, b);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            out[0] = '\0';
        return API_ORIGIN_REFUSED;
    }
    return v;
}

enum api_origin_verdict api_origin_resolve(const struct api_origin *o, const char *url, char *out,
                                           size_t size)
{
    if (size > 0)
        out[0] = '\0';
    struct url_parts u;
    if (url == NULL || url_split(url, &u))
        return API_ORIGIN_REFUSED;
    /* a plain-http link is followed only on loopback, and never from https */
    if (!u.https && (o->https || !url_host_is_loopback(u.host)))
        return API_ORIGIN_REFUSED;
    if (u.https == o->https && u.port == o->port && strcmp(u.host, o->host) == 0) {
        const char *path = o->base + (o->len - o->path_len);
        char c = u.rest[o->path_len];
        if (strncmp(u.rest, path, o->path_len) == 0 && (c == '\0' || c == '/' || c == '?' || c == '#'))
            return put(out, size, API_ORIGIN_SAME, url, "");
        return API_ORIGIN_REFUSED;
    }
    /* A link to the API under its other name: fetched from api_url, so the
     * key only ever goes to the host the operator configured. When api_url
     * is not one of the API's names (a proxy, the simulator), every known
     * API host counts as it. */
    int g = alias_group(u.host);
    if (g >= 0 && u.https && u.port == 443 && (alias_group(o->host) == g || alias_group(o->host) < 0))
        return put(out, size, API_ORIGIN_ALIAS, o->base, u.rest);
    for (size_t i = 0; i < o->nallowed; i++) {
        int want = o->allowed[i].port ? o->allowed[i].port : (u.https ? 443 : 80);
        if (strcmp(u.host, o->allowed[i].host) == 0 && u.port == want)
            return put(out, size, API_ORIGIN_ALLOWED, url, "");
    }
    return API_ORIGIN_REFUSED;
}

bool api_origin_owns(const struct api_origin *o, const char *url)
{
    char buf[16384 + 512];
    return api_origin_resolve(o, url, buf, sizeof buf) != API_ORIGIN_REFUSED;
}
