/* api_error.c - the JSON body of a refused API request into status, error, message, request_id and a kind. */
#include "optsnap/api/api_error.h"

#include <stdio.h>
#include <string.h>

#include "optsnap/api/api_envelope.h"

static const char *string_member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

enum api_error_kind api_error_classify(long http_status, const char *status)
{
    if (http_status == 401)
        return API_ERROR_KEY;
    if (http_status == 403)
        return API_ERROR_PLAN;
    if (http_status == 429)
        return API_ERROR_RATE;
    if (http_status == 404)
        return API_ERROR_NOT_FOUND;
    if (http_status >= 400 && http_status < 500)
        return API_ERROR_BAD_REQUEST;
    if (http_status >= 500 && http_status < 600)
        return API_ERROR_SERVER;
    /* a 2xx whose envelope says it failed */
    if (status != NULL && strcmp(status, "NOT_AUTHORIZED") == 0)
        return API_ERROR_PLAN;
    if (status != NULL && status[0] != '\0' && strcmp(status, "OK") != 0 && strcmp(status, "DELAYED") != 0)
        return API_ERROR_OTHER;
    return http_status >= 200 && http_status < 300 ? API_ERROR_NONE : API_ERROR_OTHER;
}

void api_error_from_json(const cJSON *root, struct api_error *out)
{
    out->json = cJSON_IsObject(root);
    if (!out->json)
        return;
    api_copy_ascii(out->status, sizeof out->status, string_member(root, "status"));
    api_copy_ascii(out->error, sizeof out->error, string_member(root, "error"));
    api_copy_ascii(out->request_id, sizeof out->request_id, string_member(root, "request_id"));
    const char *msg = string_member(root, "message");
    api_copy_ascii(out->message, sizeof out->message, msg != NULL ? msg : string_member(root, "error"));
}

/* The start of a body that is not JSON (HTML, plain text), on one line. */
static void text_snippet(char *dst, size_t size, const char *body, size_t len)
{
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < size)
            dst[o++] = ' ';
        space = false;
        dst[o++] = (c >= 0x21 && c < 0x7f) ? (char)c : '?';
    }
    dst[o] = '\0';
}

void api_error_parse(long http_status, const char *body, size_t len, struct api_error *out)
{
    memset(out, 0, sizeof *out);
    out->http_status = http_status;
    if (body == NULL)
        len = 0;
    if (len > API_ERROR_BODY_MAX)
        len = API_ERROR_BODY_MAX;
    cJSON *root = NULL;
    if (len > 0 && api_utf8_first_invalid(body, len) == len)
        root = cJSON_ParseWithLength(body, len);
    if (cJSON_IsObject(root))
        api_error_from_json(root, out);
    else if (len > 0)
        text_snippet(out->message, sizeof out->message, body, len);
    cJSON_Delete(root);
    out->kind = api_error_classify(http_status, out->status);
}

bool api_error_is_permanent(const struct api_error *e)
{
    return e->kind == API_ERROR_KEY || e->kind == API_ERROR_PLAN;
}

const char *api_error_kind_name(enum api_error_kind kind)
{
    switch (kind) {
    case API_ERROR_NONE: return "none";
    case API_ERROR_KEY: return "key";
    case API_ERROR_PLAN: return "plan";
    case API_ERROR_RATE: return "rate";
    case API_ERROR_NOT_FOUND: return "not_found";
    case API_ERROR_BAD_REQUEST: return "bad_request";
    case API_ERROR_SERVER: return "server";
    case API_ERROR_OTHER: break;
    }
    return "other";
}

const char *api_error_format(const struct api_error *e, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    const char *status = e->status[0] ? e->status : e->error[0] && !e->message[0] ? e->error : "";
    snprintf(buf, size, "HTTP %ld%s%s: %s", e->http_status, status[0] ? " " : "", status,
             e->message[0] ? e->message : "(empty body)");
    size_t n = strlen(buf);
    if (e->request_id[0] && n + 1 < size)
        snprintf(buf + n, size - n, " (request_id=%s)", e->request_id);
    return buf;
}
