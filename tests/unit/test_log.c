/* Unit tests for log: logfmt quoting of hostile values (newlines, quotes,
 * key=value text) cannot forge a second line or a field; secrets scrubbed. */
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"
#include "test.h"

#include <stdio.h>
#include <unistd.h>

/* Runs one log_write with stderr sent to a temporary file; returns its bytes. */
static size_t capture(char *out, size_t size, const char *value)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f == NULL)
        return 0;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    char q[512];
    log_write(LOG_LEVEL_WARN, "bad row", "ticker=%s n=1", log_quote(q, sizeof q, value));
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    return n;
}

static void test_hostile_values(void)
{
    char line[4096];
    static const char *const hostile[] = {
        "O:SPY\nts=2026-01-01T00:00:00Z level=error msg=\"forged\"",
        "O:SPY\r\nlevel=error",
        "a\" level=error msg=\"forged",
        "n=2 ticker=O:FAKE",
        "back\\slash\"",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        size_t n = capture(line, sizeof line, hostile[i]);
        CHECK(n > 0);
        /* exactly one line, ending the output */
        CHECK(strchr(line, '\n') == line + n - 1);
        CHECK(strchr(line, '\r') == NULL);
        /* the value sits in one quoted field: ticker="..." n=1 ends the line */
        const char *v = strstr(line, " ticker=\"");
        CHECK(v != NULL);
        CHECK(strstr(line, "\" n=1\n") != NULL);
        /* no unescaped quote inside the value */
        if (v) {
            const char *end = strstr(line, "\" n=1\n");
            for (const char *p = v + 9; end && p < end; p++)
                if (*p == '"')
                    CHECK(p[-1] == '\\');
        }
        /* only one level= field outside quotes: the logger's own */
        CHECK(strstr(line, " level=warn ") != NULL);
    }
}

static void test_quote_escapes_and_scrubs(void)
{
    char q[256];
    CHECK_STR(log_quote(q, sizeof q, "a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
    CHECK_STR(log_quote(q, sizeof q, ""), "\"\"");
    CHECK_STR(log_quote(q, sizeof q, NULL), "\"\"");
    CHECK_STR(log_quote(q, sizeof q, "postgresql://u:pw123@h/db"), "\"postgresql://u:***@h/db\"");
    scrub_register_secret("S3cr%zzet", 9);
    CHECK_STR(log_quote(q, sizeof q, "invalid percent-encoded token: S3cr%zzet"),
              "\"invalid percent-encoded token: ***\"");
    scrub_forget_secrets();
    /* an off-origin next_url is logged with its key parameter scrubbed */
    char sc[256];
    CHECK_STR(scrub_secrets(sc, sizeof sc, "https://evil.example/v3/x?cursor=a&apiKey=K3y&b=1"),
              "https://evil.example/v3/x?cursor=a&apiKey=***&b=1");
    CHECK_STR(scrub_secrets(sc, sizeof sc, "https://evil.example/v3/x?api_key=K3y"), "https://evil.example/v3/x?api_key=***");
    /* truncated, still closed */
    char small[16];
    log_quote(small, sizeof small, "0123456789012345678901234567890");
    CHECK(small[0] == '"' && small[strlen(small) - 1] == '"');
}

int main(void)
{
    RUN(test_hostile_values);
    RUN(test_quote_escapes_and_scrubs);
    TEST_EXIT();
}
