/* scrub.c - secrets out of text bound for a log line or an error message. */
#include "optsnap/util/scrub.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool starts_ci(const char *s, const char *prefix) { return strncasecmp(s, prefix, strlen(prefix)) == 0; }

/* Length of the secret value at s: up to a delimiter of its kind. */
static size_t value_len(const char *s, const char *stops)
{
    size_t n = 0;
    if (*s == '\'' || *s == '"') { /* conninfo quoting: up to the matching quote */
        char q = *s;
        n = 1;
        while (s[n] && s[n] != q) {
            if (s[n] == '\\' && s[n + 1])
                n++;
            n++;
        }
        return s[n] ? n + 1 : n;
    }
    while (s[n] && !strchr(stops, s[n]) && !iscntrl((unsigned char)s[n]))
        n++;
    return n;
}

/* Secrets known by value (the database password, the API key), set at
 * start-up before any log line that could carry them. */
#define SCRUB_KNOWN_MAX 8
#define SCRUB_KNOWN_LEN 256
static char known[SCRUB_KNOWN_MAX][SCRUB_KNOWN_LEN];
static size_t known_len[SCRUB_KNOWN_MAX];
static int nknown;

void scrub_register_secret(const char *secret, size_t len)
{
    if (secret == NULL || len < 3 || len >= SCRUB_KNOWN_LEN)
        return;
    for (int i = 0; i < nknown; i++)
        if (known_len[i] == len && memcmp(known[i], secret, len) == 0)
            return;
    if (nknown == SCRUB_KNOWN_MAX)
        return;
    memcpy(known[nknown], secret, len);
    known[nknown][len] = '\0';
    known_len[nknown++] = len;
}

void scrub_forget_secrets(void) { nknown = 0; }

static size_t known_at(const char *s)
{
    for (int i = 0; i < nknown; i++)
        if (strncmp(s, known[i], known_len[i]) == 0)
            return known_len[i];
    return 0;
}

const char *scrub_secrets(char *out, size_t size, const char *text)
{
    static const char *const keys[] = {"password=", "apikey=", "api_key=", "token=", "access_token=",
                                       "secret=", "sslpassword="};
    size_t o = 0;
    if (size == 0)
        return out;
    for (size_t i = 0; text && text[i] && o + 1 < size;) {
        const char *s = text + i;
        size_t skip = known_at(s), keep = 0;
        if (skip > 0) {
            for (const char *m = "***"; *m && o + 1 < size; m++)
                out[o++] = *m;
            i += skip;
            continue;
        }
        /* scheme://user:PASSWORD@host: the password is between the first ':' after "//" and the last '@' */
        if (s[0] == '/' && s[1] == '/') {
            size_t end = 2;
            while (s[end] && !strchr("/?# \t\r\n'\"", s[end]))
                end++;
            const char *at = NULL;
            for (size_t k = 2; k < end; k++)
                if (s[k] == '@')
                    at = s + k;
            const char *colon = at ? memchr(s + 2, ':', (size_t)(at - s - 2)) : NULL;
            if (colon) {
                keep = (size_t)(colon - s) + 1;
                skip = (size_t)(at - colon) - 1;
            }
        }
        if (keep == 0) {
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                if (starts_ci(s, keys[k]) && (i == 0 || !isalnum((unsigned char)text[i - 1]))) {
                    keep = strlen(keys[k]);
                    skip = value_len(s + keep, " \t&;,)'\"");
                    break;
                }
            }
        }
        if (keep == 0 && (starts_ci(s, "authorization:") || starts_ci(s, "bearer "))) {
            keep = strchr(s, ':') && starts_ci(s, "authorization:") ? 14 : 7;
            while (s[keep] == ' ')
                keep++;
            if (starts_ci(s + keep, "bearer "))
                keep += 7;
            skip = value_len(s + keep, " \t\r\n,;\"'");
        }
        if (keep == 0) {
            char c = *s;
            out[o++] = iscntrl((unsigned char)c) ? ' ' : c;
            i++;
            continue;
        }
        for (size_t k = 0; k < keep && o + 1 < size; k++)
            out[o++] = iscntrl((unsigned char)s[k]) ? ' ' : s[k];
        if (skip > 0)
            for (const char *m = "***"; *m && o + 1 < size; m++)
                out[o++] = *m;
        i += keep + skip;
    }
    out[o] = '\0';
    return out;
}
