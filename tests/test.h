/* test.h - a minimal assertion kit for optsnap's C tests. Each test binary
 * prints one "name ... ok|FAIL" line per test and exits non-zero on any
 * failure; exit 77 tells meson the test was skipped. */
#ifndef OPTSNAP_TEST_H
#define OPTSNAP_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_current_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);             \
            test_current_failed = 1;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,  \
                    a_, #b, b_);                                                                   \
            test_current_failed = 1;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,    \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                       \
            test_current_failed = 1;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_DBL(a, b)                                                                            \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= 1e-9 * (fabs(b_) > 1 ? fabs(b_) : 1))) {                            \
            fprintf(stderr, "  %s:%d: %s == %.17g, expected %.17g\n", __FILE__, __LINE__, #a, a_,  \
                    b_);                                                                           \
            test_current_failed = 1;                                                               \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        test_current_failed = 0;                                                                   \
        fn();                                                                                      \
        printf("%-48s %s\n", #fn, test_current_failed ? "FAIL" : "ok");                            \
        test_failures += test_current_failed;                                                      \
    } while (0)

#define TEST_EXIT() return test_failures ? 1 : 0

/* Reads a whole file into a NUL-terminated malloc'd buffer; caller frees. */
static inline char *test_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    buf[n] = '\0';
    fclose(f);
    if (len_out)
        *len_out = (size_t)n;
    return buf;
}

/* A fixture of tests/fixtures (OPTSNAP_FIXTURES) by its path there; exits
 * 77 (skipped) when OPTSNAP_FIXTURES is not set. Caller frees. */
static inline char *test_fixture_read(const char *rel, size_t *len)
{
    const char *dir = getenv("OPTSNAP_FIXTURES");
    if (dir == NULL) {
        fprintf(stderr, "OPTSNAP_FIXTURES not set\n");
        exit(77);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return test_read_file(path, len);
}

/* A copy of src with the first `from` replaced by `to`; fails the test (and
 * returns a copy of src) when `from` does not occur. Caller frees. */
static inline char *test_text_replace(const char *src, const char *from, const char *to)
{
    const char *at = strstr(src, from);
    if (at == NULL) {
        fprintf(stderr, "  fixture text not found: %s\n", from);
        test_current_failed = 1;
        return strdup(src);
    }
    size_t a = (size_t)(at - src), f = strlen(from), t = strlen(to), n = strlen(src);
    char *out = malloc(n - f + t + 1);
    if (out == NULL) {
        test_current_failed = 1;
        return strdup(src);
    }
    memcpy(out, src, a);
    memcpy(out + a, to, t);
    memcpy(out + a + t, at + f, n - a - f + 1);
    return out;
}

#endif
