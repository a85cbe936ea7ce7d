/* Unit tests for where next_url may be fetched from (same origin, the API's
 * alias hosts, api_allowed_hosts; look-alikes, userinfo, ports, case, http),
 * the strict URL split under it, and the shared backoff. */
#include "optsnap/api/api_origin.h"
#include "optsnap/util/backoff.h"
#include "optsnap/util/url.h"
#include "test.h"

static enum api_origin_verdict resolve(const struct api_origin *o, const char *url, char *out, size_t size)
{
    return api_origin_resolve(o, url, out, size);
}

static void test_same_origin(void)
{
    struct api_origin o;
    char out[1024];
    CHECK(api_origin_init(&o, "https://api.polygon.io//") == 0);
    CHECK_STR(o.base, "https://api.polygon.io");
    CHECK(api_origin_owns(&o, "https://api.polygon.io/v3/snapshot/options/SPY?cursor=abc"));
    CHECK(api_origin_owns(&o, "https://api.polygon.io"));
    CHECK_INT(resolve(&o, "https://api.polygon.io/v3/x?cursor=1", out, sizeof out), API_ORIGIN_SAME);
    CHECK_STR(out, "https://api.polygon.io/v3/x?cursor=1");
    /* case and the explicit default port are the same origin */
    CHECK_INT(resolve(&o, "HTTPS://API.Polygon.IO:443/v3/x", out, sizeof out), API_ORIGIN_SAME);
    CHECK(!api_origin_owns(&o, "https://api.polygon.io.evil.example/v3/x")); /* the key would go there */
    CHECK(!api_origin_owns(&o, "https://api.polygon.i"));
    CHECK(!api_origin_owns(&o, "http://api.polygon.io/v3/x"));          /* downgrade */
    CHECK(!api_origin_owns(&o, "https://api.polygon.io:8443/v3/x"));    /* another port */
    CHECK(!api_origin_owns(&o, "https://evil.example/?u=https://api.polygon.io/"));
    CHECK(api_origin_init(&o, "") == -1);
    CHECK(api_origin_init(&o, "///") == -1);
}

static void test_alias_hosts(void)
{
    struct api_origin o;
    char out[1024];
    CHECK(api_origin_init(&o, "https://api.polygon.io") == 0);
    /* client-python's contracts fixture: next_url on api.massive.com */
    CHECK_INT(resolve(&o, "https://api.massive.com/v3/reference/options/contracts?cursor=YXA9", out, sizeof out),
              API_ORIGIN_ALIAS);
    CHECK_STR(out, "https://api.polygon.io/v3/reference/options/contracts?cursor=YXA9");
    CHECK(api_origin_init(&o, "https://api.massive.com") == 0);
    CHECK_INT(resolve(&o, "https://API.POLYGON.IO/v3/snapshot/options/I:SPX?cursor=x", out, sizeof out),
              API_ORIGIN_ALIAS);
    CHECK_STR(out, "https://api.massive.com/v3/snapshot/options/I:SPX?cursor=x");
    /* production and staging are not one service */
    CHECK_INT(resolve(&o, "https://api.staging.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_STR(out, "");
    /* an alias over http, or on another port, is not the API */
    CHECK_INT(resolve(&o, "http://api.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://api.polygon.io:444/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    /* look-alikes of the alias */
    CHECK_INT(resolve(&o, "https://api.polygon.io.evil.example/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://api-polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://evilapi.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://api.polygon.io./v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://api.polygon.io%2eevil.example/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    /* userinfo: the request would go to the host after '@' */
    CHECK_INT(resolve(&o, "https://api.polygon.io@evil.example/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://api.massive.com:x@evil.example/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://evil.example@api.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://evil.example\\@api.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://api.polygon.io /v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "//api.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "ftp://api.polygon.io/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    /* an output buffer too small refuses rather than cut the URL */
    CHECK_INT(resolve(&o, "https://api.polygon.io/v3/x?cursor=1", out, 16), API_ORIGIN_REFUSED);
}

static void test_alias_onto_simulator_and_proxy(void)
{
    struct api_origin o;
    char out[1024];
    /* api_url not one of the API's names: a link on either name comes back
     * to it, with its path prefix, and the key never leaves it */
    CHECK(api_origin_init(&o, "http://127.0.0.1:8089") == 0);
    CHECK_INT(resolve(&o, "https://api.massive.com/v3/snapshot/options/SPY?cursor=2", out, sizeof out),
              API_ORIGIN_ALIAS);
    CHECK_STR(out, "http://127.0.0.1:8089/v3/snapshot/options/SPY?cursor=2");
    CHECK(api_origin_init(&o, "https://proxy.internal/massive/") == 0);
    CHECK_INT(resolve(&o, "https://api.polygon.io/v3/x?c=1", out, sizeof out), API_ORIGIN_ALIAS);
    CHECK_STR(out, "https://proxy.internal/massive/v3/x?c=1");
    CHECK_INT(resolve(&o, "https://proxy.internal/massive/v3/x", out, sizeof out), API_ORIGIN_SAME);
    CHECK_INT(resolve(&o, "https://proxy.internal/other/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://proxy.internal/massiveX/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
}

static void test_allowed_hosts(void)
{
    struct api_origin o;
    char out[1024], err[256];
    CHECK(api_origin_init(&o, "https://api.massive.com") == 0);
    CHECK(api_origin_allow_hosts(&o, " files.example.com ,, Edge.Example.com:8443, localhost:9000", err, sizeof err) == 0);
    CHECK_INT(o.nallowed, 3);
    CHECK_INT(resolve(&o, "https://files.example.com/v3/x", out, sizeof out), API_ORIGIN_ALLOWED);
    CHECK_STR(out, "https://files.example.com/v3/x");
    CHECK_INT(resolve(&o, "https://FILES.example.com:443/v3/x", out, sizeof out), API_ORIGIN_ALLOWED);
    CHECK_INT(resolve(&o, "https://files.example.com:8443/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://edge.example.com:8443/x", out, sizeof out), API_ORIGIN_ALLOWED);
    CHECK_INT(resolve(&o, "https://edge.example.com/x", out, sizeof out), API_ORIGIN_REFUSED);
    /* https only off loopback, and never a downgrade from an https api_url */
    CHECK_INT(resolve(&o, "http://files.example.com/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "http://localhost:9000/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://files.example.com.evil/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://x.files.example.com/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "https://files.example.com@evil.example/v3/x", out, sizeof out), API_ORIGIN_REFUSED);

    /* a loopback api_url may follow plain http to another allowed loopback host */
    CHECK(api_origin_init(&o, "http://127.0.0.1:8089") == 0);
    CHECK(api_origin_allow_hosts(&o, "localhost:8089", err, sizeof err) == 0);
    CHECK_INT(resolve(&o, "http://localhost:8089/v3/x?cursor=1", out, sizeof out), API_ORIGIN_ALLOWED);
    CHECK_INT(resolve(&o, "http://localhost:8090/v3/x", out, sizeof out), API_ORIGIN_REFUSED);
    CHECK_INT(resolve(&o, "http://127.0.0.1:8089/v3/x", out, sizeof out), API_ORIGIN_SAME);
    CHECK_INT(resolve(&o, "http://127.0.0.1:8090/v3/x", out, sizeof out), API_ORIGIN_REFUSED);

    CHECK(api_origin_init(&o, "https://api.massive.com") == 0);
    CHECK(api_origin_allow_hosts(&o, "https://x.example", err, sizeof err) == -1);
    CHECK(strstr(err, "https://x.example") != NULL);
    CHECK(api_origin_allow_hosts(&o, "a..example", err, sizeof err) == -1);
    CHECK(api_origin_allow_hosts(&o, "user@x.example", err, sizeof err) == -1);
    CHECK(api_origin_allow_hosts(&o, "x.example:0", err, sizeof err) == -1);
    CHECK(api_origin_allow_hosts(&o, "x.example:65536", err, sizeof err) == -1);
    CHECK(api_origin_init(&o, "https://api.massive.com") == 0);
    CHECK(api_origin_allow_hosts(&o, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", err, sizeof err) == -1);
}

static void test_api_url_rules(void)
{
    struct api_origin o;
    CHECK(api_origin_init(&o, "https://api.massive.com") == 0);
    CHECK(api_origin_init(&o, "http://localhost:8089") == 0);
    CHECK(api_origin_init(&o, "http://127.0.0.53:80/") == 0);
    CHECK(api_origin_init(&o, "http://[::1]:8089") == 0);
    CHECK(api_origin_init(&o, "http://api.massive.com") == -1);   /* key in clear */
    CHECK(api_origin_init(&o, "http://127.0.0.1.evil.example") == -1);
    CHECK(api_origin_init(&o, "http://localhost.evil.example") == -1);
    CHECK(api_origin_init(&o, "https://u:p@api.massive.com") == -1);
    CHECK(api_origin_init(&o, "https://api.massive.com/?apiKey=x") == -1);
    CHECK(api_origin_init(&o, "api.massive.com") == -1);
}

static void test_url_split(void)
{
    struct url_parts u;
    CHECK(url_split("https://Api.Massive.COM:8443/v3?x=1", &u) == 0);
    CHECK(u.https);
    CHECK_STR(u.host, "api.massive.com");
    CHECK_INT(u.port, 8443);
    CHECK_STR(u.rest, "/v3?x=1");
    CHECK(url_split("http://h", &u) == 0);
    CHECK_INT(u.port, 80);
    CHECK_STR(u.rest, "");
    CHECK(url_split("https://h:/x", &u) == 0);
    CHECK_INT(u.port, 443);
    CHECK(url_split("https://[::1]:9/x", &u) == 0);
    CHECK_STR(u.host, "[::1]");
    CHECK(url_split("https://h:99999/x", &u) == -1);
    CHECK(url_split("https://h:8a/x", &u) == -1);
    CHECK(url_split("https:///x", &u) == -1);
    CHECK(url_split("https://-h/x", &u) == -1);
    CHECK(url_split("https://h\x01/x", &u) == -1);
    CHECK(url_split("https://h/\x7f", &u) == -1);
    CHECK(url_split("https://[zz]/x", &u) == -1);
    CHECK(url_host_is_loopback("127.0.0.1"));
    CHECK(url_host_is_loopback("127.1.2.3"));
    CHECK(!url_host_is_loopback("127.0.0"));
    CHECK(!url_host_is_loopback("127.0.0.1.x"));
    CHECK(!url_host_is_loopback("127.0.0.256"));
    CHECK(!url_host_is_loopback("128.0.0.1"));
    CHECK(!url_host_is_loopback("localhostx"));
    CHECK(url_host_is_loopback("::1") && url_host_is_loopback("[::1]"));
    CHECK(!url_host_is_loopback("127.0.0.1.evil.example"));
    CHECK(!url_host_is_loopback("127.evil.example"));
    const char *cur = " a , ,b:1,", *tok;
    size_t n = url_list_next(&cur, &tok);
    CHECK(n == 1 && strncmp(tok, "a", 1) == 0);
    n = url_list_next(&cur, &tok);
    CHECK(n == 3 && strncmp(tok, "b:1", 3) == 0);
    CHECK(url_list_next(&cur, &tok) == 0);
}

static void test_backoff(void)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        int64_t w = backoff_full_jitter_us(attempt, 200000, 6000000);
        CHECK(w >= 0 && w <= 6000000);
        if (attempt == 0)
            CHECK(w <= 200000);
    }
    /* full jitter: spread over the whole range, not clustered at the cap */
    int below_half = 0;
    for (int i = 0; i < 1000; i++)
        below_half += backoff_full_jitter_us(10, 200000, 6000000) < 3000000;
    CHECK(below_half > 350 && below_half < 650);
}

int main(void)
{
    RUN(test_same_origin);
    RUN(test_alias_hosts);
    RUN(test_alias_onto_simulator_and_proxy);
    RUN(test_allowed_hosts);
    RUN(test_api_url_rules);
    RUN(test_url_split);
    RUN(test_backoff);
    TEST_EXIT();
}
