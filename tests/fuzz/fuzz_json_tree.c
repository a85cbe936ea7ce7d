/* fuzz_json_tree.c - libFuzzer harness holding the API bodies' JSON reader
 * (api/json_tree.c) to cJSON on the same bytes: refused alike (ours may
 * refuse for its documented reasons: invalid UTF-8, a NUL, a \u escape with
 * a non-hex digit), and when accepted the same tree ending at the same byte;
 * a difference aborts. Built by scripts/fuzz.sh; tests/unit/test_json_tree.c
 * and test_fuzz_regressions.c include it with FUZZ_ENTRY renamed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/json_tree.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

static int json_tree_equal(const cJSON *a, const cJSON *b)
{
    for (; a != NULL || b != NULL; a = a->next, b = b->next) {
        if (a == NULL || b == NULL || (a->type & 0xFF) != (b->type & 0xFF))
            return 0;
        if ((a->string == NULL) != (b->string == NULL) || (a->string && strcmp(a->string, b->string) != 0))
            return 0;
        if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
            (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0))
            return 0;
        if (memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0 || a->valueint != b->valueint)
            return 0;
        if (a->child != NULL) {
            const cJSON *last = a->child;
            while (last->next != NULL)
                last = last->next;
            if (a->child->prev != last) /* cJSON's chain: the first child's prev is the last */
                return 0;
        }
        if (!json_tree_equal(a->child, b->child))
            return 0;
    }
    return 1;
}

/* A \u escape with a non-hex digit among its four: cJSON reads it as 0. */
static int has_bad_unicode_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\\' && s[i + 1] == 'u') {
            for (size_t k = i + 2; k < i + 6; k++) {
                if (k >= n)
                    return 1;
                char c = s[k];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                    return 1;
            }
        }
        if (s[i] == '\\')
            i++; /* an escaped backslash does not start an escape */
    }
    return 0;
}

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = json_utf8_len((const unsigned char *)s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* 1 when json_tree_parse and cJSON agree on s[0, n): *both says whether both accepted. */
static int json_tree_agrees(const char *s, size_t n, int *both)
{
    const char *end_c = NULL, *end_o = NULL;
    enum json_tree_error e;
    cJSON *c = cJSON_ParseWithLengthOpts(s, n, &end_c, 0);
    cJSON *o = json_tree_parse(s, n, NULL, &end_o, &e);
    int ok;
    *both = c != NULL && o != NULL;
    if (c == NULL || o == NULL) {
        ok = (c == NULL && o == NULL) ||
             (o == NULL && c != NULL && (!valid_utf8(s, n) || has_bad_unicode_escape(s, n)));
        if (o == NULL)
            ok = ok && e != JSON_TREE_OK && e != JSON_TREE_NOMEM;
    } else {
        ok = json_tree_equal(c, o) && end_c == end_o;
    }
    cJSON_Delete(c);
    cJSON_Delete(o);
    return ok;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1); /* exact size: over-reads show */
    if (body == NULL)
        return 0;
    if (size)
        memcpy(body, data, size);
    int both;
    if (!json_tree_agrees(body, size, &both))
        abort();
    free(body);
    return 0;
}
