/* Unit tests for the API error-body parser on the shapes the API sends for
 * 401, 403 and 429 (as seen in public logs of Massive / Polygon.io clients),
 * empty and HTML bodies, oversized and hostile ones. */
#include "optsnap/api/api_error.h"
#include "test.h"

static void test_real_shapes(void)
{
    struct api_error e;
    char line[512];
    const char *b401 = "{\"status\":\"ERROR\",\"request_id\":\"a1b2c3d4e5f60718293a4b5c6d7e8f90\",\"error\":\"Unknown API Key\"}";
    api_error_parse(401, b401, strlen(b401), &e);
    CHECK_INT(e.kind, API_ERROR_KEY);
    CHECK(e.json);
    CHECK_STR(e.status, "ERROR");
    CHECK_STR(e.error, "Unknown API Key");
    CHECK_STR(e.message, "Unknown API Key");
    CHECK_STR(e.request_id, "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    CHECK(api_error_is_permanent(&e));
    CHECK_STR(api_error_format(&e, line, sizeof line),
              "HTTP 401 ERROR: Unknown API Key (request_id=a1b2c3d4e5f60718293a4b5c6d7e8f90)");

    const char *b401b = "{\"status\":\"ERROR\",\"request_id\":\"r0\",\"error\":\"API Key was not provided\"}";
    api_error_parse(401, b401b, strlen(b401b), &e);
    CHECK_INT(e.kind, API_ERROR_KEY);
    CHECK_STR(e.message, "API Key was not provided");

    const char *b403 = "{\"status\":\"NOT_AUTHORIZED\",\"request_id\":\"12a3289bf1a7e83d6fa1c4e1b683f6e5\","
                       "\"message\":\"You are not entitled to this data. Please upgrade your plan at "
                       "https://massive.com/pricing\"}";
    api_error_parse(403, b403, strlen(b403), &e);
    CHECK_INT(e.kind, API_ERROR_PLAN);
    CHECK_STR(e.status, "NOT_AUTHORIZED");
    CHECK_STR(e.error, "");
    CHECK_STR(e.message, "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing");
    CHECK(api_error_is_permanent(&e));
    CHECK_STR(api_error_kind_name(e.kind), "plan");
    CHECK_STR(api_error_format(&e, line, sizeof line),
              "HTTP 403 NOT_AUTHORIZED: You are not entitled to this data. Please upgrade your plan at "
              "https://massive.com/pricing (request_id=12a3289bf1a7e83d6fa1c4e1b683f6e5)");

    const char *b429 = "{\"status\":\"ERROR\",\"request_id\":\"r429\",\"error\":\"You've exceeded the maximum "
                       "requests per minute, please wait or upgrade your subscription to continue.\"}";
    api_error_parse(429, b429, strlen(b429), &e);
    CHECK_INT(e.kind, API_ERROR_RATE);
    CHECK(!api_error_is_permanent(&e));
    CHECK(strstr(e.message, "exceeded the maximum requests per minute") != NULL);

    /* the spec's NOT_ENTITLED / NOT_FOUND members (per ticker in some endpoints) */
    const char *b404 = "{\"error\":\"NOT_FOUND\",\"message\":\"Ticker not found.\",\"ticker\":\"APx\"}";
    api_error_parse(404, b404, strlen(b404), &e);
    CHECK_INT(e.kind, API_ERROR_NOT_FOUND);
    CHECK_STR(e.error, "NOT_FOUND");
    CHECK_STR(e.message, "Ticker not found.");
    CHECK_STR(api_error_format(&e, line, sizeof line), "HTTP 404: Ticker not found.");
}

static void test_not_json(void)
{
    struct api_error e;
    char line[512];
    api_error_parse(429, "", 0, &e);
    CHECK_INT(e.kind, API_ERROR_RATE);
    CHECK(!e.json);
    CHECK_STR(api_error_format(&e, line, sizeof line), "HTTP 429: (empty body)");
    api_error_parse(403, NULL, 10, &e);
    CHECK_INT(e.kind, API_ERROR_PLAN);
    CHECK_STR(e.message, "");
    const char *html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>\t\x01</body></html>";
    api_error_parse(502, html, strlen(html), &e);
    CHECK_INT(e.kind, API_ERROR_SERVER);
    CHECK(!e.json);
    CHECK_STR(e.message, "<html> <head><title>502 Bad Gateway</title></head> <body> ?</body></html>");
    /* JSON that is not an object, and an object of the wrong member types */
    api_error_parse(400, "[1,2]", 5, &e);
    CHECK_INT(e.kind, API_ERROR_BAD_REQUEST);
    CHECK_STR(e.message, "[1,2]");
    const char *odd = "{\"status\":7,\"message\":{\"x\":1},\"error\":null,\"request_id\":[]}";
    api_error_parse(401, odd, strlen(odd), &e);
    CHECK(e.json);
    CHECK_STR(e.status, "");
    CHECK_STR(e.message, "");
    CHECK_STR(e.request_id, "");
}

static void test_caps_and_hostile_text(void)
{
    struct api_error e;
    /* a body far over the cap is read only up to it: not JSON then */
    size_t n = API_ERROR_BODY_MAX * 4;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"message\":\"", 12);
    memcpy(big + n - 3, "\"}", 3);
    api_error_parse(500, big, n, &e);
    CHECK(!e.json);
    CHECK(strlen(e.message) < sizeof e.message);
    free(big);
    /* control bytes, quotes and non-ASCII never reach a log line as they are */
    const char *evil = "{\"status\":\"ERROR\\n\",\"message\":\"line1\\nkey=\\\"x\\\" \xc3\xa9\",\"request_id\":\"id\\u0007\"}";
    api_error_parse(401, evil, strlen(evil), &e);
    CHECK(e.json);
    CHECK_STR(e.status, "ERROR?");
    CHECK(strchr(e.message, '\n') == NULL);
    CHECK(strstr(e.message, "??") != NULL); /* the two bytes of U+00E9 */
    CHECK_STR(e.request_id, "id?");
    /* a long message is cut to its field, never overflows */
    char longmsg[2000];
    int k = snprintf(longmsg, sizeof longmsg, "{\"message\":\"");
    memset(longmsg + k, 'x', 1500);
    snprintf(longmsg + k + 1500, sizeof longmsg - (size_t)k - 1500, "\"}");
    api_error_parse(403, longmsg, strlen(longmsg), &e);
    CHECK_INT(strlen(e.message), sizeof e.message - 1);
    char line[64];
    api_error_format(&e, line, sizeof line);
    CHECK_INT(strlen(line), sizeof line - 1);
    /* invalid UTF-8 is not handed to cJSON */
    api_error_parse(401, "{\"error\":\"\xff\"}", 12, &e);
    CHECK(!e.json);
}

static void test_classify(void)
{
    CHECK_INT(api_error_classify(200, "OK"), API_ERROR_NONE);
    CHECK_INT(api_error_classify(200, "DELAYED"), API_ERROR_NONE);
    CHECK_INT(api_error_classify(200, ""), API_ERROR_NONE);
    CHECK_INT(api_error_classify(200, "NOT_AUTHORIZED"), API_ERROR_PLAN);
    CHECK_INT(api_error_classify(200, "ERROR"), API_ERROR_OTHER);
    CHECK_INT(api_error_classify(418, ""), API_ERROR_BAD_REQUEST);
    CHECK_INT(api_error_classify(503, "ERROR"), API_ERROR_SERVER);
    CHECK_INT(api_error_classify(302, ""), API_ERROR_OTHER);
    CHECK_STR(api_error_kind_name(API_ERROR_KEY), "key");
    CHECK_STR(api_error_kind_name(API_ERROR_OTHER), "other");
}

int main(void)
{
    RUN(test_real_shapes);
    RUN(test_not_json);
    RUN(test_caps_and_hostile_text);
    RUN(test_classify);
    TEST_EXIT();
}
