/* api_envelope.c - body checks, cJSON parse and the status/error envelope shared by the API page parsers. */
#include "optsnap/api/api_envelope.h"

#include "optsnap/api/api_error.h"
#include "optsnap/api/json_tree.h"
#include "optsnap/util/array.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEXT_URL_MAX 16384

void api_err_set(char *err, size_t err_size, const char *request_id, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    if (n < 0) {
        err[0] = '\0';
        return;
    }
    size_t used = (size_t)n < err_size ? (size_t)n : err_size - 1;
    if (request_id != NULL && request_id[0] != '\0' && used < err_size - 1)
        snprintf(err + used, err_size - used, " (request_id=%s)", request_id);
}

void api_copy_ascii(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return;
    size_t i = 0;
    for (; src != NULL && src[i] != '\0' && i + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
}

size_t api_utf8_first_invalid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (p[i] >= 0x20 && p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = json_utf8_len(p + i, len - i);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}

char *api_text_sanitize(const char *text, size_t len, size_t cap, size_t *out_len)
{
    size_t alloc = len > cap / 3 ? cap : len * 3; /* U+FFFD is 3 bytes */
    char *out = malloc(alloc + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t k = json_utf8_len(p + i, len - i);
        const unsigned char *src = p + i;
        size_t w = k;
        if (k == 0) {
            src = (const unsigned char *)"\xEF\xBF\xBD";
            w = 3;
            k = 1;
        }
        if (o + w > alloc)
            break;
        memcpy(out + o, src, w);
        o += w;
        i += k;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

void api_envelope_close(struct api_envelope *env)
{
    cJSON_Delete(env->root);
    env->root = NULL;
    env->results = NULL;
}

static const char *string_item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int api_envelope_open(struct api_envelope *env, const char *body, size_t len,
                      struct json_exact_ints *exact, char *err, size_t err_size)
{
    memset(env, 0, sizeof *env);
    if (exact != NULL)
        exact->n = 0;
    if (body == NULL || len == 0) {
        api_err_set(err, err_size, NULL, "invalid JSON: empty body");
        return PARSE_ERR_JSON;
    }
    const char *end = NULL;
    enum json_tree_error jerr;
    bool trailing = false;
    cJSON *root = json_tree_parse(body, len, exact, &end, &jerr);
    size_t at = (end != NULL && end >= body && end <= body + len) ? (size_t)(end - body) : 0;
    if (root != NULL) { /* one value; data behind it means a garbled body */
        while (at < len && (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r'))
            at++;
        if (at < len) {
            cJSON_Delete(root);
            root = NULL;
            jerr = JSON_TREE_SYNTAX;
            trailing = true;
        }
    }
    if (root == NULL) {
        if (jerr == JSON_TREE_NOMEM) {
            api_err_set(err, err_size, NULL, "out of memory reading body");
            return PARSE_ERR_NOMEM;
        }
        /* invalid UTF-8 anywhere in the body is the reason, before any syntax error */
        size_t bad = api_utf8_first_invalid(body, len);
        if (bad < len)
            api_err_set(err, err_size, NULL, "invalid UTF-8 at byte %zu", bad);
        else if (trailing)
            api_err_set(err, err_size, NULL, "invalid JSON: trailing data at byte %zu", at);
        else
            api_err_set(err, err_size, NULL, "invalid JSON at byte %zu of %zu", at, len);
        return PARSE_ERR_JSON;
    }
    env->root = root;
    if (!cJSON_IsObject(root)) {
        api_envelope_close(env);
        api_err_set(err, err_size, NULL, "body is not a JSON object");
        return PARSE_ERR_SHAPE;
    }
    api_copy_ascii(env->request_id, sizeof env->request_id, string_item(root, "request_id"));

    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (status != NULL && !cJSON_IsNull(status) && !cJSON_IsString(status)) {
        api_envelope_close(env);
        api_err_set(err, err_size, env->request_id, "status: not a string");
        return PARSE_ERR_SHAPE;
    }
    api_copy_ascii(env->status, sizeof env->status, cJSON_IsString(status) ? status->valuestring : "");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    bool status_ok = env->status[0] == '\0' || strcmp(env->status, "OK") == 0 ||
                     strcmp(env->status, "DELAYED") == 0;
    if (!status_ok || (error != NULL && !cJSON_IsNull(error))) {
        struct api_error e;
        memset(&e, 0, sizeof e);
        api_error_from_json(root, &e);
        const char *msg = e.message[0] ? e.message : "(no message)";
        if (env->request_id[0] != '\0')
            api_err_set(err, err_size, NULL, "API error status=%s request_id=%s: %s",
                        env->status[0] ? env->status : "(none)", env->request_id, msg);
        else
            api_err_set(err, err_size, NULL, "API error status=%s: %s",
                        env->status[0] ? env->status : "(none)", msg);
        api_envelope_close(env);
        return PARSE_ERR_API;
    }
    env->results = cJSON_GetObjectItemCaseSensitive(root, "results");

    env->exact_valid = exact != NULL; /* json_tree_parse indexed each number node */
    return PARSE_OK;
}

int api_next_url_take(const struct api_envelope *env, char **out, char *err, size_t err_size)
{
    *out = NULL;
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(env->root, "next_url");
    if (next == NULL || cJSON_IsNull(next))
        return PARSE_OK;
    if (!cJSON_IsString(next)) {
        api_err_set(err, err_size, env->request_id, "next_url: not a string");
        return PARSE_ERR_SHAPE;
    }
    size_t n = strlen(next->valuestring);
    if (n == 0)
        return PARSE_OK;
    if (n > NEXT_URL_MAX) {
        api_err_set(err, err_size, env->request_id, "next_url: longer than %d bytes", NEXT_URL_MAX);
        return PARSE_ERR_SHAPE;
    }
    *out = malloc(n + 1);
    if (*out == NULL) {
        api_err_set(err, err_size, env->request_id, "out of memory");
        return PARSE_ERR_NOMEM;
    }
    memcpy(*out, next->valuestring, n + 1);
    return PARSE_OK;
}

static int results_check(const struct api_envelope *env, const struct api_results_rule *rule, size_t *count,
                         char *err, size_t err_size)
{
    const cJSON *results = env->results;
    *count = 0;
    if (results == NULL && !rule->missing_ok) {
        api_err_set(err, err_size, env->request_id, "results: missing");
        return PARSE_ERR_SHAPE;
    }
    if (results == NULL || (rule->missing_ok && cJSON_IsNull(results)))
        return PARSE_OK;
    if (cJSON_IsArray(results)) {
        *count = (size_t)cJSON_GetArraySize(results);
        if (*count > rule->max) {
            api_err_set(err, err_size, env->request_id, "results: %zu %s, more than %zu", *count, rule->noun,
                        rule->max);
            return PARSE_ERR_SHAPE;
        }
        return PARSE_OK;
    }
    if (rule->object_ok && cJSON_IsObject(results)) {
        *count = 1;
        return PARSE_OK;
    }
    api_err_set(err, err_size, env->request_id, rule->object_ok ? "results: not an array or object"
                                                                : "results: not an array");
    return PARSE_ERR_SHAPE;
}

int api_page_open(struct api_page *pg, const char *body, size_t len, struct json_exact_ints *exact,
                  const struct api_results_rule *rule, char *request_id, size_t request_id_size, char *err,
                  size_t err_size)
{
    pg->count = 0;
    pg->next_url = NULL;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    int rc = api_envelope_open(&pg->env, body, len, exact, err, err_size);
    snprintf(request_id, request_id_size, "%s", pg->env.request_id);
    if (rc == PARSE_OK)
        rc = results_check(&pg->env, rule, &pg->count, err, err_size);
    if (rc == PARSE_OK)
        rc = api_next_url_take(&pg->env, &pg->next_url, err, err_size);
    if (rc != PARSE_OK)
        api_envelope_close(&pg->env);
    return rc;
}

const cJSON *api_page_first(const struct api_page *pg)
{
    if (pg->count == 0)
        return NULL;
    return cJSON_IsArray(pg->env.results) ? pg->env.results->child : pg->env.results;
}

const cJSON *api_page_next(const struct api_page *pg, const cJSON *res)
{
    return cJSON_IsArray(pg->env.results) ? res->next : NULL;
}

void api_page_finish(struct api_page *pg, char **page_next_url)
{
    free(*page_next_url);
    *page_next_url = pg->next_url;
    pg->next_url = NULL;
    api_envelope_close(&pg->env);
}

void api_page_forget(char **page_next_url, char *request_id)
{
    free(*page_next_url);
    *page_next_url = NULL;
    request_id[0] = '\0';
}

int api_page_abandon(struct api_page *pg, int rc)
{
    free(pg->next_url);
    pg->next_url = NULL;
    api_envelope_close(&pg->env);
    return rc;
}

int api_number_exact_i64(const struct api_envelope *env, const struct json_exact_ints *exact,
                         const cJSON *node, int64_t *out)
{
    if (!cJSON_IsNumber(node))
        return -1;
    if (env->exact_valid && exact != NULL && node->valueint >= 0 &&
        (size_t)node->valueint < exact->n) {
        *out = exact->items[node->valueint].value;
        return 0;
    }
    double d = node->valuedouble;
    /* 2^63 is exactly representable; anything at or past it does not fit. */
    if (!isfinite(d) || d != floor(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        return -1;
    *out = (int64_t)d;
    return 0;
}

static size_t skip_ws(const char *p, size_t i, size_t len)
{
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* p[i] is '"': returns the index after the closing quote, or len. */
static size_t skip_string(const char *p, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return len;
}

/* Returns the index after the value starting at p[i] (the body is JSON that cJSON accepted). */
static size_t skip_value(const char *p, size_t i, size_t len)
{
    if (i >= len)
        return len;
    if (p[i] == '"')
        return skip_string(p, i, len);
    if (p[i] == '{' || p[i] == '[') {
        int depth = 0;
        while (i < len) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, i, len);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return len;
    }
    while (i < len && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' &&
           p[i] != '\n' && p[i] != '\r')
        i++;
    return i;
}

static int span_push(struct json_span **spans, size_t *cap, size_t n, size_t start, size_t end)
{
    if (array_reserve((void **)spans, cap, n + 1, sizeof **spans))
        return -1;
    (*spans)[n].start = start;
    (*spans)[n].end = end;
    return 0;
}

long api_results_spans(const char *body, size_t len, struct json_span **spans, size_t *cap)
{
    size_t i = skip_ws(body, 0, len);
    if (i >= len || body[i] != '{')
        return -1;
    i = skip_ws(body, i + 1, len);
    while (i < len && body[i] == '"') {
        size_t kend = skip_string(body, i, len);
        bool is_results = kend - i == 9 && memcmp(body + i, "\"results\"", 9) == 0;
        i = skip_ws(body, kend, len);
        if (i >= len || body[i] != ':')
            return -1;
        i = skip_ws(body, i + 1, len);
        if (is_results) {
            if (i < len && body[i] == '{') {
                if (span_push(spans, cap, 0, i, skip_value(body, i, len)))
                    return -1;
                return 1;
            }
            if (i >= len || body[i] != '[')
                return -1;
            long n = 0;
            i = skip_ws(body, i + 1, len);
            while (i < len && body[i] != ']') {
                size_t end = skip_value(body, i, len);
                if (end <= i) /* no value here ("[}", stray bytes): malformed, and no progress */
                    return -1;
                if (span_push(spans, cap, (size_t)n, i, end))
                    return -1;
                n++;
                i = skip_ws(body, end, len);
                if (i < len && body[i] == ',')
                    i = skip_ws(body, i + 1, len);
            }
            return n;
        }
        size_t vend = skip_value(body, i, len);
        if (vend <= i)
            return -1;
        i = skip_ws(body, vend, len);
        if (i < len && body[i] == ',')
            i = skip_ws(body, i + 1, len);
    }
    return -1;
}

/* [2000-01-01, 2100-01-01) in seconds; the same range in ms, us and ns is
 * this times 1e3, 1e6, 1e9, and a range spans less than a factor 1000. */
#define TS_MIN_S INT64_C(946684800)
#define TS_MAX_S INT64_C(4102444800)

int api_timestamp_us(const struct api_envelope *env, const struct json_exact_ints *exact,
                     const cJSON *node, int64_t *us)
{
    if (!cJSON_IsNumber(node) || !isfinite(node->valuedouble))
        return API_TS_NOT_NUMBER;
    int64_t v;
    if (api_number_exact_i64(env, exact, node, &v) == 0) {
        if (v == 0)
            return API_TS_NONE;
        if (v >= TS_MIN_S && v < TS_MAX_S)
            *us = v * 1000000;
        else if (v >= TS_MIN_S * 1000 && v < TS_MAX_S * 1000)
            *us = v * 1000;
        else if (v >= TS_MIN_S * 1000000 && v < TS_MAX_S * 1000000)
            *us = v;
        else if (v >= TS_MIN_S * 1000000000 && v < TS_MAX_S * 1000000000)
            *us = v / 1000;
        else
            return API_TS_OUT_OF_RANGE;
        return API_TS_OK;
    }
    /* not integral: 1605195918.507 (s) or 1605195918507.25 (ms) */
    double d = node->valuedouble, scale;
    if (d >= (double)TS_MIN_S && d < (double)TS_MAX_S)
        scale = 1e6;
    else if (d >= (double)TS_MIN_S * 1e3 && d < (double)TS_MAX_S * 1e3)
        scale = 1e3;
    else if (d >= (double)TS_MIN_S * 1e6 && d < (double)TS_MAX_S * 1e6)
        scale = 1;
    else if (d >= (double)TS_MIN_S * 1e9 && d < (double)TS_MAX_S * 1e9)
        scale = 1e-3;
    else
        return API_TS_OUT_OF_RANGE;
    *us = llround(d * scale);
    return API_TS_OK;
}
