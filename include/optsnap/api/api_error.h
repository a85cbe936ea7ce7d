/* api_error.h - what the API said when it refused a request: the JSON body of
 * a non-2xx answer (or of an error envelope) read into status, error,
 * message and request_id, capped, printable, and classified (bad key, plan
 * not entitled, rate limited, ...). Seen shapes:
 *   401 {"status":"ERROR","request_id":"...","error":"Unknown API Key"}
 *   403 {"status":"NOT_AUTHORIZED","request_id":"...","message":"You are not
 *        entitled to this data. Please upgrade your plan at https://massive.com/pricing"}
 *   429 {"status":"ERROR","request_id":"...","error":"You've exceeded the
 *        maximum requests per minute, please wait or upgrade your subscription to continue."}
 * and bodies that are empty or HTML (proxies, load balancers). Pure: cJSON only. */
#ifndef OPTSNAP_API_ERROR_H
#define OPTSNAP_API_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Bytes of a body that are read at most; the rest is ignored. */
#define API_ERROR_BODY_MAX 16384

enum api_error_kind {
    API_ERROR_NONE = 0,   /* a 2xx without an error envelope */
    API_ERROR_KEY,        /* 401: no key, unknown key: stop, fix the key */
    API_ERROR_PLAN,       /* 403 / NOT_AUTHORIZED: the plan lacks this data: stop that underlying */
    API_ERROR_RATE,       /* 429: slow down, retry */
    API_ERROR_NOT_FOUND,  /* 404: unknown ticker or path */
    API_ERROR_BAD_REQUEST,/* other 4xx */
    API_ERROR_SERVER,     /* 5xx */
    API_ERROR_OTHER,      /* anything else, e.g. an error envelope in a 200 */
};

struct api_error {
    long http_status;
    enum api_error_kind kind;
    bool json;            /* the body was a JSON object */
    char status[32];      /* "NOT_AUTHORIZED", "ERROR"; "" when absent */
    char error[128];      /* the "error" member; "" when absent */
    char message[256];    /* "message", else "error", else the start of a non-JSON body */
    char request_id[96];
};

/* Reads body[0..len) (NULL or empty allowed; at most API_ERROR_BODY_MAX
 * bytes) of an answer with HTTP status http_status into *out. Every text is
 * printable ASCII (others become '?'), cut to its field. Never fails. */
void api_error_parse(long http_status, const char *body, size_t len, struct api_error *out);

/* Fills the JSON fields of *out from an error object (root of a body). */
void api_error_from_json(const cJSON *root, struct api_error *out);

/* The kind for an HTTP status and the body's "status" member. */
enum api_error_kind api_error_classify(long http_status, const char *status);

/* True for the answers that repeating cannot fix: the key (401) or the plan
 * (403). The daemon stops that underlying's sweeps and says why in /readyz. */
bool api_error_is_permanent(const struct api_error *e);

/* Stable short name for logs and metric labels: "key", "plan", "rate",
 * "not_found", "bad_request", "server", "other", "none". */
const char *api_error_kind_name(enum api_error_kind kind);

/* One line for logs and /readyz: `HTTP 403 NOT_AUTHORIZED: You are not
 * entitled to this data... (request_id=...)`. buf always NUL-terminated. */
const char *api_error_format(const struct api_error *e, char *buf, size_t size);

#endif
