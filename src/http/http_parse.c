/* http_parse.c - strict incremental parser for HTTP/1.x request heads; pure, libc only. */
#include "optsnap/http/http_parse.h"

#include <stdint.h>
#include <string.h>

/* Line endings are CRLF only: a bare LF or a CR not followed by LF is BAD, in
 * every position, so a prefix of a request is either AGAIN or already BAD. */

enum { PARSE_OK = 2 }; /* internal: a line or field was accepted */

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_vchar(unsigned char c) { return c > 0x20 && c < 0x7f; }

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* s[0..n) equals the NUL-terminated word, ignoring ASCII case. */
static bool span_equals_nocase(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n; i++) {
        if (word[i] == '\0' || ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)word[i]))
            return false;
    }
    return word[i] == '\0';
}

/* Finds the CR of the line starting at pos, checking every byte on the way.
 * Returns PARSE_OK with *eol, AGAIN, BAD or TOO_LARGE. */
static int line_find(const char *buf, size_t len, size_t max_head, size_t pos, size_t *eol)
{
    size_t limit = len < max_head ? len : max_head;
    for (size_t i = pos; i < limit; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r') {
            if (i + 1 >= limit)
                break;
            if (buf[i + 1] != '\n')
                return HTTP_PARSE_BAD;
            *eol = i;
            return PARSE_OK;
        }
        if (c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f)
            return HTTP_PARSE_BAD;
    }
    return len >= max_head ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_AGAIN;
}

/* Percent-decodes the path; decoded control bytes are refused so that a path
 * can be logged and compared as a C string. */
static int path_decode(const char *s, size_t n, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3)
                return HTTP_PARSE_BAD;
            int hi = hex_value((unsigned char)s[i + 1]);
            int lo = hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return HTTP_PARSE_BAD;
            c = (unsigned char)(hi * 16 + lo);
            if (c < 0x20 || c == 0x7f)
                return HTTP_PARSE_BAD;
            i += 2;
        }
        if (o + 1 >= out_size)
            return HTTP_PARSE_TOO_LARGE;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return PARSE_OK;
}

struct head_marks {
    size_t method_end;
    size_t target_start;
    size_t target_end;
    size_t name_end[HTTP_MAX_HEADERS];
    size_t value_end[HTTP_MAX_HEADERS];
    bool have_length;
    bool have_host;
    bool conn_close;
    bool conn_keep_alive;
};

static int request_line_parse(struct http_request *req, struct head_marks *m, const char *buf,
                              size_t eol)
{
    size_t i = 0;
    while (i < eol && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == 0 || i >= eol || buf[i] != ' ')
        return HTTP_PARSE_BAD;
    m->method_end = i;
    size_t t = i + 1;
    size_t k = t;
    while (k < eol && is_vchar((unsigned char)buf[k]))
        k++;
    if (k == t || k >= eol || buf[k] != ' ')
        return HTTP_PARSE_BAD;
    m->target_start = t;
    m->target_end = k;
    size_t v = k + 1;
    if (eol - v != 8 || memcmp(buf + v, "HTTP/1.", 7) != 0)
        return HTTP_PARSE_BAD;
    if (buf[v + 7] != '0' && buf[v + 7] != '1')
        return HTTP_PARSE_BAD;
    req->version_minor = buf[v + 7] - '0';

    /* Only origin-form: our clients never send absolute-form or '*'. */
    if (buf[t] != '/')
        return HTTP_PARSE_BAD;
    size_t q = t;
    while (q < k && buf[q] != '?') {
        if (buf[q] == '#')
            return HTTP_PARSE_BAD;
        q++;
    }
    for (size_t j = q; j < k; j++) {
        if (buf[j] == '#')
            return HTTP_PARSE_BAD;
    }
    int r = path_decode(buf + t, q - t, req->path_buf, sizeof req->path_buf);
    if (r != PARSE_OK)
        return r;
    req->path = req->path_buf;
    req->target = buf + t;
    req->query = q < k ? buf + q + 1 : "";
    return PARSE_OK;
}

static int content_length_parse(const char *s, size_t n, size_t *out)
{
    if (n == 0)
        return HTTP_PARSE_BAD;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < '0' || c > '9')
            return HTTP_PARSE_BAD;
        if (v > (SIZE_MAX - 9) / 10)
            return HTTP_PARSE_BAD;
        v = v * 10 + (size_t)(c - '0');
    }
    *out = v;
    return PARSE_OK;
}

static void connection_tokens_scan(struct head_marks *m, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t start = i;
        while (i < n && s[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (span_equals_nocase(s + start, end - start, "close"))
            m->conn_close = true;
        else if (span_equals_nocase(s + start, end - start, "keep-alive"))
            m->conn_keep_alive = true;
    }
}

static int header_line_parse(struct http_request *req, struct head_marks *m, const char *buf,
                             size_t pos, size_t eol)
{
    /* A line opening with whitespace is obs-fold (or junk after the start line). */
    size_t i = pos;
    while (i < eol && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == pos || i >= eol || buf[i] != ':')
        return HTTP_PARSE_BAD;
    if (req->nheaders >= HTTP_MAX_HEADERS)
        return HTTP_PARSE_BAD;
    size_t name_len = i - pos;
    size_t v = i + 1;
    while (v < eol && (buf[v] == ' ' || buf[v] == '\t'))
        v++;
    size_t ve = eol;
    while (ve > v && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
        ve--;

    const char *name = buf + pos;
    const char *value = buf + v;
    size_t value_len = ve - v;
    if (span_equals_nocase(name, name_len, "content-length")) {
        size_t cl = 0;
        if (content_length_parse(value, value_len, &cl) != PARSE_OK)
            return HTTP_PARSE_BAD;
        if (m->have_length && cl != req->content_length)
            return HTTP_PARSE_BAD;
        m->have_length = true;
        req->content_length = cl;
    } else if (span_equals_nocase(name, name_len, "transfer-encoding")) {
        return HTTP_PARSE_BAD; /* no chunked request bodies */
    } else if (span_equals_nocase(name, name_len, "host")) {
        if (m->have_host)
            return HTTP_PARSE_BAD;
        m->have_host = true;
    } else if (span_equals_nocase(name, name_len, "connection")) {
        connection_tokens_scan(m, value, value_len);
    }
    size_t h = req->nheaders++;
    req->headers[h].name = name;
    req->headers[h].value = value;
    m->name_end[h] = i;
    m->value_end[h] = ve;
    return PARSE_OK;
}

int http_request_parse(struct http_request *req, char *buf, size_t len, size_t max_head)
{
    if (req == NULL || (buf == NULL && len > 0))
        return HTTP_PARSE_BAD;
    struct head_marks m;
    memset(&m, 0, sizeof m);
    req->method = req->target = req->path = NULL;
    req->query = "";
    req->version_minor = 0;
    req->nheaders = 0;
    req->keep_alive = false;
    req->content_length = 0;
    req->head_len = 0;
    req->path_buf[0] = '\0';

    size_t pos = 0;
    size_t eol = 0;
    int r = line_find(buf, len, max_head, pos, &eol);
    if (r != PARSE_OK)
        return r;
    r = request_line_parse(req, &m, buf, eol);
    if (r != PARSE_OK)
        return r;
    pos = eol + 2;
    for (;;) {
        r = line_find(buf, len, max_head, pos, &eol);
        if (r != PARSE_OK)
            return r;
        if (eol == pos)
            break;
        r = header_line_parse(req, &m, buf, pos, eol);
        if (r != PARSE_OK)
            return r;
        pos = eol + 2;
    }

    /* Complete and valid: only now terminate the tokens in place. */
    buf[m.method_end] = '\0';
    buf[m.target_end] = '\0';
    for (size_t h = 0; h < req->nheaders; h++) {
        buf[m.name_end[h]] = '\0';
        buf[m.value_end[h]] = '\0';
    }
    req->method = buf;
    req->head_len = eol + 2;
    req->keep_alive = req->version_minor >= 1 ? !m.conn_close : (m.conn_keep_alive && !m.conn_close);
    return HTTP_PARSE_DONE;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    if (req == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (span_equals_nocase(req->headers[i].name, strlen(req->headers[i].name), name))
            return req->headers[i].value;
    }
    return NULL;
}

/* Form-decodes s[0..n) ('+' is a space, %XX a byte) into out. 0 or -1. */
static int form_decode(const char *s, size_t n, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_value((unsigned char)s[i + 1]);
            int lo = hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= out_size)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int http_query_get(const char *query, const char *key, char *out, size_t out_size)
{
    if (query == NULL || key == NULL || out == NULL || out_size == 0)
        return -1;
    out[0] = '\0';
    const char *p = query;
    while (*p) {
        const char *seg_end = strchr(p, '&');
        if (seg_end == NULL)
            seg_end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        const char *key_end = eq ? eq : seg_end;
        char decoded_key[256];
        if (key_end > p && form_decode(p, (size_t)(key_end - p), decoded_key, sizeof decoded_key) == 0 &&
            strcmp(decoded_key, key) == 0) {
            const char *v = eq ? eq + 1 : seg_end;
            if (form_decode(v, (size_t)(seg_end - v), out, out_size) != 0) {
                out[0] = '\0';
                return -1;
            }
            return 1;
        }
        p = *seg_end ? seg_end + 1 : seg_end;
    }
    return 0;
}
