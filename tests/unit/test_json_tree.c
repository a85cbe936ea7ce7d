/* test_json_tree.c - the API bodies' JSON reader held to cJSON 1.7.15 on the
 * same bytes: accepted and refused alike, and when accepted the same tree
 * (types, keys, strings, doubles bit for bit, cJSON's valueint, member order,
 * the prev chain) ending at the same byte. Hand-picked edge cases, every
 * fixture, seeded mutations of them, and random decimal numbers (the exact
 * fast path against strtod). The documented differences (invalid UTF-8, a
 * NUL, a \u escape with a non-hex digit) are refusals and checked as such. */
#include <dirent.h>
#include <stdint.h>

#include "test.h"

#define FUZZ_ENTRY fuzz_json_tree_one
#include "fuzz/fuzz_json_tree.c"
#undef FUZZ_ENTRY

static long compared, accepted;

/* One body both ways; returns 1 when they agree. */
static int same_as_cjson(const char *s, size_t n, int report)
{
    int both;
    int ok = json_tree_agrees(s, n, &both);
    compared++;
    accepted += both;
    if (!ok && report)
        fprintf(stderr, "  differs from cJSON: %.*s\n", (int)(n > 200 ? 200 : n), s);
    return ok;
}

static void check_str(const char *s) { CHECK(same_as_cjson(s, strlen(s), 1)); }

static void test_edge_cases(void)
{
    static const char *const cases[] = {
        "{}", "[]", "{ }", "[ ]", " {\"a\":1} ", "\t\r\n[1]", "null", "true", "false", "nul", "tru", "fals",
        "0", "-0", "-", "-.5", ".5", "1.", "1.e5", "01", "-01", "00.5", "1e", "1e+", "1E-2", "1e5x", "+1",
        "1.2.3", "[1-2]", "[1,]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\":}", "{1:2}", "[1 2]",
        "\"abc\"", "\"a\\\"b\"", "\"\\\\\"", "\"\\/\"", "\"\\b\\f\\n\\r\\t\"", "\"\\x\"", "\"abc", "\"\\",
        "\"\\u0041\"", "\"\\u00e9\"", "\"\\u20ac\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"",
        "\"\\ud83d\\u0041\"", "\"\\u004\"", "\"\\u0000x\"", "\"tab\there\"", "\"ctl\x01\"", "\"\xc3\xa9\"",
        "{\"a\":1,\"a\":2}", "{\"\":0}", "[[[[]]]]", "[{\"k\":[1,{\"x\":null}]}]", "[1e308, 1e309, -1e400]",
        "[1e-320, 4.9e-324, 2.2250738585072014e-308]", "[9007199254740993, 9007199254740992.5]",
        "[123456789012345678, 1234567890123456789, 12345678901234567890, 1e22, 1e23]",
        "[0.1, 0.2, 0.30000000000000004, 3.141592653589793, 2.718281828459045e-7]",
        "[2147483647, 2147483648, -2147483648, -2147483649, 1e10]",
        "\xef\xbb\xbf{\"bom\":1}", "\xef\xbb\xbf[]", "\xef\xbb\xbf", "[1]  ", "[1] x", "{\"a\":1}{",
        "[\"\\u00zz\"]",
        "[1234567890123456789012345678901234567890123456789012345678901234]",
        "[123456789012345678901234567890123456789012345678901234567890123]",
        "[0.000000000000000000000000000000000000000000000000000000000001]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_str(cases[i]);
}

static void test_nesting_limit(void)
{
    static char buf[2 * 1002 + 1];
    for (int depth = 998; depth <= 1002; depth++) {
        memset(buf, '[', (size_t)depth);
        memset(buf + depth, ']', (size_t)depth);
        CHECK(same_as_cjson(buf, 2 * (size_t)depth, 1));
    }
    const char *end;
    enum json_tree_error e;
    memset(buf, '[', 1000);
    memset(buf + 1000, ']', 1000);
    cJSON *ok = json_tree_parse(buf, 2000, NULL, &end, &e);
    CHECK(ok != NULL); /* cJSON's limit: 1000 deep is read, 1001 is not */
    cJSON_Delete(ok);
    memset(buf, '[', 1001);
    memset(buf + 1001, ']', 1001);
    CHECK(json_tree_parse(buf, 2002, NULL, &end, &e) == NULL);
}

/* xorshift64*: the same sequence on every run */
static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

/* One random decimal of the kind test_random_numbers reads, at body + n; the new n. */
static size_t any_decimal(char *body, size_t n, size_t cap)
{
    int id = (int)(rng() % 20), fd = (int)(rng() % 20);
    for (int d = 0; d < id || (id == 0 && d == 0); d++)
        body[n++] = (char)('0' + rng() % 10);
    if (fd) {
        body[n++] = '.';
        for (int d = 0; d < fd; d++)
            body[n++] = (char)('0' + rng() % 10);
    }
    if (rng() % 3 == 0)
        n += (size_t)snprintf(body + n, cap - n, "e%s%d", rng() % 2 ? "-" : "", (int)(rng() % 330));
    return n;
}

/* An integer of 15 to 21 digits, at body + n; the new n. */
static size_t long_integer(char *body, size_t n, size_t cap)
{
    (void)cap;
    int digits = 15 + (int)(rng() % 7);
    body[n++] = (char)('1' + rng() % 9);
    for (int d = 1; d < digits; d++)
        body[n++] = (char)('0' + rng() % 10);
    return n;
}

/* rounds arrays of `per` numbers from gen (a quarter negative), each read
 * both ways; the number of arrays on which the readers differ. */
static int random_arrays(int rounds, int per, size_t (*gen)(char *body, size_t n, size_t cap))
{
    int mismatches = 0;
    char body[4096];
    for (int round = 0; round < rounds; round++) {
        size_t n = 0;
        body[n++] = '[';
        for (int k = 0; k < per; k++) {
            if (k)
                body[n++] = ',';
            if (rng() % 4 == 0)
                body[n++] = '-';
            n = gen(body, n, sizeof body);
        }
        body[n++] = ']';
        if (!same_as_cjson(body, n, mismatches < 5))
            mismatches++;
    }
    return mismatches;
}

static void test_random_numbers(void) { CHECK_INT(random_arrays(400, 50, any_decimal), 0); }

/* Integers of 15 to 19 digits (nanosecond timestamps and past 2^53: the
 * conversion path), and past 19 (strtod), against cJSON's strtod. */
static void test_random_long_integers(void) { CHECK_INT(random_arrays(200, 100, long_integer), 0); }

static char *read_whole(const char *path, size_t *len) { return test_read_file(path, len); }

/* Every fixture, and seeded mutations of each: flips, insertions of the
 * characters that matter, deletions, truncations. */
static void mutate_and_compare(const char *body, size_t len, int rounds, int *mismatches)
{
    static const char specials[] = "{}[]:,\"\\u0-.eE+ \t\n\x01\xc3\xff";
    char *m = malloc(len + 8);
    if (m == NULL)
        return;
    if (!same_as_cjson(body, len, *mismatches < 5))
        (*mismatches)++;
    for (int r = 0; r < rounds && len > 0; r++) {
        size_t n = len;
        memcpy(m, body, len);
        size_t at = (size_t)(rng() % len);
        switch (rng() % 4) {
        case 0: m[at] = (char)(m[at] ^ (1 << (rng() % 8))); break;
        case 1: memmove(m + at + 1, m + at, n - at); m[at] = specials[rng() % (sizeof specials - 1)]; n++; break;
        case 2: memmove(m + at, m + at + 1, n - at - 1); n--; break;
        default: n = at; break;
        }
        if (!same_as_cjson(m, n, *mismatches < 5))
            (*mismatches)++;
    }
    free(m);
}

static void walk_fixtures(const char *dir, int *files, int *mismatches)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t nl = strlen(e->d_name);
        if (nl > 5 && strcmp(e->d_name + nl - 5, ".json") == 0) {
            size_t len;
            char *body = read_whole(path, &len);
            if (body != NULL) {
                (*files)++;
                mutate_and_compare(body, len, len > 20000 ? 60 : 300, mismatches);
                free(body);
            }
        } else {
            walk_fixtures(path, files, mismatches); /* a directory, or not openable: skipped */
        }
    }
    closedir(d);
}

static void test_fixtures_and_mutations(void)
{
    const char *dir = getenv("OPTSNAP_FIXTURES");
    if (dir == NULL) {
        fprintf(stderr, "  OPTSNAP_FIXTURES not set: fixtures skipped\n");
        return;
    }
    int files = 0, mismatches = 0;
    walk_fixtures(dir, &files, &mismatches);
    printf("  fixtures: %d files, %ld bodies compared, %ld accepted by both\n", files, compared, accepted);
    CHECK(files >= 5);
    CHECK_INT(mismatches, 0);
}

/* The exact table: a long integer literal's value and its number's ordinal;
 * every other number -1. */
static void test_exact_integers(void)
{
    const char *s = "{\"a\":1.5,\"t\":1651254260800059123,\"n\":-1651254260800059124,"
                    "\"s\":123456789012345,\"b\":[12345678901234567,1e18,99999999999999999999]}";
    struct json_exact_ints x = {0};
    const char *end;
    enum json_tree_error e;
    cJSON *root = json_tree_parse(s, strlen(s), &x, &end, &e);
    CHECK(root != NULL);
    CHECK_INT(x.n, 3);
    if (root != NULL && x.n == 3) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "t");
        CHECK_INT(x.items[t->valueint].value, INT64_C(1651254260800059123));
        CHECK_INT(x.items[t->valueint].ordinal, 1);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "n");
        CHECK_INT(x.items[n->valueint].value, -INT64_C(1651254260800059124));
        CHECK_INT(cJSON_GetObjectItemCaseSensitive(root, "a")->valueint, -1);
        CHECK_INT(cJSON_GetObjectItemCaseSensitive(root, "s")->valueint, -1); /* 15 digits: a double holds it */
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "b");
        CHECK_INT(x.items[b->child->valueint].value, INT64_C(12345678901234567));
        CHECK_INT(x.items[b->child->valueint].ordinal, 4);
        CHECK_INT(b->child->next->valueint, -1);       /* 1e18: not an integer literal */
        CHECK_INT(b->child->next->next->valueint, -1); /* 20 digits: past int64 */
    }
    cJSON_Delete(root);
    free(x.items);
}

static void test_refusal_kinds(void)
{
    const char *end;
    enum json_tree_error e;
    const char bad_utf8[] = "{\"a\":\"\xc3\x28\"}";
    CHECK(json_tree_parse(bad_utf8, sizeof bad_utf8 - 1, NULL, &end, &e) == NULL);
    CHECK_INT(e, JSON_TREE_UTF8);
    CHECK_INT(end - bad_utf8, 6);
    const char nul[] = "{\"a\":\0}";
    CHECK(json_tree_parse(nul, sizeof nul - 1, NULL, &end, &e) == NULL);
    CHECK_INT(e, JSON_TREE_UTF8);
    CHECK(json_tree_parse("{\"a\" 1}", 7, NULL, &end, &e) == NULL);
    CHECK_INT(e, JSON_TREE_SYNTAX);
    CHECK(json_tree_parse("[\"\\u00zz\"]", 10, NULL, &end, &e) == NULL); /* cJSON: U+0000 */
    CHECK_INT(e, JSON_TREE_SYNTAX);
    CHECK(json_tree_parse("", 0, NULL, &end, &e) == NULL);
}

int main(void)
{
    RUN(test_edge_cases);
    RUN(test_nesting_limit);
    RUN(test_random_numbers);
    RUN(test_random_long_integers);
    RUN(test_fixtures_and_mutations);
    RUN(test_exact_integers);
    RUN(test_refusal_kinds);
    TEST_EXIT();
}
