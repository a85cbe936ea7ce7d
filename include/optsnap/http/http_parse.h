/* http_parse.h - incremental HTTP/1.1 request-head parser for optsnap's own
 * servers (the simulator and the status listener). Pure: no I/O. */
#ifndef OPTSNAP_HTTP_PARSE_H
#define OPTSNAP_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 32

struct http_header {
    const char *name;  /* points into the parsed buffer, NUL-terminated */
    const char *value;
};

/* Views into the caller's buffer (which the parser NUL-terminates in place). */
struct http_request {
    const char *method;   /* "GET" */
    const char *target;   /* raw request-target: "/v3/snapshot/options/AAPL?limit=10" */
    const char *path;     /* target up to '?', percent-decoded */
    const char *query;    /* after '?', raw (not decoded), "" when none */
    int version_minor;    /* 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    bool keep_alive;      /* after Connection: and version rules */
    size_t content_length;
    size_t head_len;      /* bytes of the head, including the final CRLFCRLF */
    char path_buf[2048];  /* storage for the decoded path */
};

enum http_parse_result {
    HTTP_PARSE_DONE = 0,      /* a complete head is in buf[0..head_len) */
    HTTP_PARSE_AGAIN = 1,     /* need more bytes */
    HTTP_PARSE_BAD = -1,      /* malformed: answer 400 and close */
    HTTP_PARSE_TOO_LARGE = -2 /* head over the limit: answer 431 and close */
};

/* Parses the head at buf[0..len). max_head caps the head size. Modifies buf
 * (NUL-terminates tokens) only when it returns HTTP_PARSE_DONE; req's views
 * then live as long as buf. Never reads past buf[len-1].
 * Strict: lines end in CRLF only (a bare LF or lone CR is BAD); control bytes,
 * obs-fold, a non-token header name, more than HTTP_MAX_HEADERS headers,
 * Transfer-Encoding, a bad or conflicting Content-Length, a repeated Host, a
 * version other than HTTP/1.0 or 1.1, or a target not starting with '/' are BAD.
 * Host is not required. A path that decodes to %00 or any control byte is BAD;
 * one longer than path_buf is TOO_LARGE. query shares target's storage. */
int http_request_parse(struct http_request *req, char *buf, size_t len, size_t max_head);

/* Case-insensitive header lookup; NULL when absent. */
const char *http_request_header(const struct http_request *req, const char *name);

/* Finds key in an application/x-www-form-urlencoded query and percent-decodes
 * its value into out (NUL-terminated; '+' is a space; %00 is bad). The first
 * occurrence wins; "key" without '=' yields "". Returns 1 found, 0 absent,
 * -1 too long/bad (out is then ""). */
int http_query_get(const char *query, const char *key, char *out, size_t out_size);

#endif
