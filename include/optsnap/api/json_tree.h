/* json_tree.h - the API bodies' JSON reader: one pass over the bytes into a
 * cJSON tree (cJSON_Delete frees it; nodes come from cJSON_malloc, so from
 * the process's cJSON allocator), checking UTF-8 as it goes and keeping the
 * exact value of long integer literals. It accepts what cJSON 1.7.15's
 * cJSON_ParseWithLengthOpts (Debian 12's, 1.7.15-1+deb12u4) accepts and builds the same tree (same types,
 * keys, strings and doubles, members in order, duplicates kept), with these
 * differences, all of them refusals: invalid UTF-8 or a NUL byte anywhere
 * it reads, and a \u escape with a non-hex digit (cJSON reads it as 0).
 * tests/unit/test_json_tree.c and tests/fuzz/fuzz_json_tree.c hold it to
 * cJSON on the same bytes. Pure. */
#ifndef OPTSNAP_JSON_TREE_H
#define OPTSNAP_JSON_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* A JSON integer literal too long for a double to hold exactly (nanosecond
 * timestamps, ~1.7e18 > 2^53): its exact value, and which number of the
 * document (0-based, document order) it is. */
struct json_exact_int {
    uint64_t ordinal;
    int64_t value;
};

/* Scratch table of exact integers; grows with the body, owned by the caller
 * (free `items` with free()). */
struct json_exact_ints {
    struct json_exact_int *items;
    size_t n, cap;
};

/* Integer literals with this many digits or more may not fit a double exactly. */
#define JSON_EXACT_MIN_DIGITS 16

enum json_tree_error {
    JSON_TREE_OK = 0,
    JSON_TREE_SYNTAX,  /* not JSON, or past cJSON's nesting limit (1000) */
    JSON_TREE_UTF8,    /* invalid UTF-8 or a NUL byte at *end */
    JSON_TREE_NOMEM,
};

/* Length of the valid UTF-8 sequence at p (n >= 1 bytes there), or 0 when
 * it is invalid (overlong, a surrogate, past U+10FFFF, cut short) or NUL. */
size_t json_utf8_len(const unsigned char *p, size_t n);

/* Reads one JSON value from text[0, len) (a UTF-8 byte order mark and
 * whitespace before it skipped). Returns the tree, *end just past the value
 * (what follows is the caller's: trailing data); or NULL with *error and
 * *end where reading stopped. With exact non-NULL (emptied first), each
 * number node's valueint is its index in exact, or -1 (not a long integer
 * literal); without, valueint is cJSON's (the double, saturated to int). */
cJSON *json_tree_parse(const char *text, size_t len, struct json_exact_ints *exact, const char **end,
                       enum json_tree_error *error);

#endif
