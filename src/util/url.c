/* url.c - strict split of http(s) URLs into scheme, host and port, for deciding where the key may go. */
#include "optsnap/util/url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool host_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.';
}

/* host[:port] of length len; the host is a DNS name or IPv4 address, or an
 * IPv6 literal in brackets. */
int url_host_port_parse(const char *text, size_t len, char *host, int *port)
{
    size_t hlen;
    const char *p = text, *end = text + len;
    *port = 0;
    if (len == 0)
        return -1;
    if (*p == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL)
            return -1;
        for (const char *q = p + 1; q < close; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return -1;
        if (close == p + 1)
            return -1;
        hlen = (size_t)(close - p) + 1;
    } else {
        hlen = 0;
        while (p + hlen < end && p[hlen] != ':') {
            if (!host_char((unsigned char)p[hlen]))
                return -1;
            hlen++;
        }
        /* empty labels ("a..b", ".a", "a.") make look-alikes: refused */
        if (hlen == 0 || p[0] == '.' || p[0] == '-' || p[hlen - 1] == '.' || p[hlen - 1] == '-')
            return -1;
        for (size_t i = 1; i < hlen; i++)
            if (p[i] == '.' && p[i - 1] == '.')
                return -1;
    }
    if (hlen >= URL_HOST_MAX)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        host[i] = (char)tolower((unsigned char)p[i]);
    host[hlen] = '\0';
    p += hlen;
    if (p == end)
        return 0;
    if (*p != ':')
        return -1;
    p++;
    if (p == end)
        return 0; /* "host:" is the default port */
    long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = (int)v;
    return 0;
}

int url_split(const char *url, struct url_parts *out)
{
    memset(out, 0, sizeof *out);
    if (url == NULL)
        return -1;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '\\')
            return -1;
    size_t skip;
    if (strncasecmp(url, "https://", 8) == 0) {
        out->https = true;
        skip = 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
    } else {
        return -1;
    }
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    /* userinfo ("https://api.massive.com@evil/") sends the request to evil */
    if (memchr(auth, '@', alen) != NULL)
        return -1;
    int port;
    if (url_host_port_parse(auth, alen, out->host, &port))
        return -1;
    out->port = port ? port : (out->https ? 443 : 80);
    out->rest = auth + alen;
    return 0;
}

bool url_host_is_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
        return true;
    /* 127.a.b.c, dotted decimal only */
    if (strncmp(host, "127.", 4) != 0)
        return false;
    int parts = 1;
    const char *p = host + 4;
    while (*p) {
        int digits = 0, v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            if (++digits > 3 || v > 255)
                return false;
            p++;
        }
        if (digits == 0)
            return false;
        parts++;
        if (*p == '.')
            p++;
        else if (*p != '\0')
            return false;
    }
    return parts == 4 && host[strlen(host) - 1] != '.';
}

size_t url_list_next(const char **cursor, const char **tok)
{
    const char *p = *cursor;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *t = p;
        size_t n = len;
        while (n > 0 && (*t == ' ' || *t == '\t'))
            t++, n--;
        while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        p += len;
        if (*p == ',')
            p++;
        if (n > 0) {
            *cursor = p;
            *tok = t;
            return n;
        }
    }
    *cursor = p;
    return 0;
}
