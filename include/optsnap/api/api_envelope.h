/* api_envelope.h - what every market-data API page shares: the body checks
 * (UTF-8, no NUL), the cJSON parse, the {"status","request_id","error",
 * "message","next_url"} envelope, error messages, and exact big integers.
 * Internal to the parser modules (snapshot/aggs/reference). Pure: cJSON only. */
#ifndef OPTSNAP_API_ENVELOPE_H
#define OPTSNAP_API_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "optsnap/api/json_tree.h"      /* struct json_exact_ints */
#include "optsnap/api/snapshot_parse.h" /* enum parse_result */

/* What api_envelope_open found. */
struct api_envelope {
    cJSON *root;          /* owned: release with api_envelope_close() */
    const cJSON *results; /* root's "results" item or NULL (points into root) */
    char request_id[96];  /* printable ASCII, "" when absent */
    char status[32];      /* printable ASCII, "" when absent */
    bool exact_valid;     /* number nodes' valueint index `exact` (see below) */
};

/* Checks and parses body[0..len): UTF-8 and NUL check over the whole body,
 * cJSON parse, no trailing data, root is an object, the error envelope.
 * When `exact` is not NULL, integer literals of 16+ digits are read exactly
 * and every number node's valueint is set to its index in exact->items, or
 * -1 (env->exact_valid tells whether that was done). Returns PARSE_OK with
 * env->root set (the caller calls api_envelope_close), or a negative
 * enum parse_result with a one-line message in err and nothing to free. */
int api_envelope_open(struct api_envelope *env, const char *body, size_t len,
                      struct json_exact_ints *exact, char *err, size_t err_size)
    __attribute__((warn_unused_result));

void api_envelope_close(struct api_envelope *env);

/* What a page's "results" may be (the page parsers' one prologue checks it). */
struct api_results_rule {
    size_t max;        /* most elements of the array */
    const char *noun;  /* what an element is, for the message: "entries", "bars" */
    bool missing_ok;   /* absent or null is no results (else absent is "results: missing") */
    bool object_ok;    /* one object is one result (the single-item endpoints) */
};

/* A page being parsed: its envelope, how many results it holds and its
 * next_url (owned until api_page_finish or api_page_abandon). */
struct api_page {
    struct api_envelope env;
    size_t count;
    char *next_url;
};

/* A page parser's prologue: clears err, api_envelope_open, checks
 * "results" against rule and takes next_url. request_id[0..size) gets the
 * envelope's request_id (as far as it was read) either way, as does
 * pg->env.status. Returns PARSE_OK with pg open (end it with api_page_finish
 * or api_page_abandon), or a negative enum parse_result with the message in
 * err and nothing to free. */
int api_page_open(struct api_page *pg, const char *body, size_t len, struct json_exact_ints *exact,
                  const struct api_results_rule *rule, char *request_id, size_t request_id_size, char *err,
                  size_t err_size) __attribute__((warn_unused_result));

/* The results one at a time: the first (NULL when none), then the one after res. */
const cJSON *api_page_first(const struct api_page *pg);
const cJSON *api_page_next(const struct api_page *pg, const cJSON *res);

/* Success: the parsed page's next_url (*page_next_url, freed) becomes pg's; pg is closed. */
void api_page_finish(struct api_page *pg, char **page_next_url);

/* What api_page_open and api_page_finish wrote into a parsed page, for its
 * reset: *page_next_url freed and NULL, request_id "". */
void api_page_forget(char **page_next_url, char *request_id);

/* Failure after a successful open: next_url freed, pg closed. Returns rc. */
int api_page_abandon(struct api_page *pg, int rc);

/* Reads "next_url" from the envelope: absent, null or "" give *out = NULL;
 * a string gives a malloc'd copy (the caller frees); anything else (or a
 * URL over 16 KiB) is PARSE_ERR_SHAPE with a message in err. */
int api_next_url_take(const struct api_envelope *env, char **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Writes "<message> (request_id=...)" into err; the suffix only when
 * request_id is not empty. Tolerates err == NULL / err_size == 0. */
void api_err_set(char *err, size_t err_size, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Exact int64 value of an integral number node: from the exact table when
 * the envelope has one for this node, else from valuedouble. Returns 0, or
 * -1 when the node is not an integral number within int64. */
int api_number_exact_i64(const struct api_envelope *env, const struct json_exact_ints *exact,
                         const cJSON *node, int64_t *out) __attribute__((warn_unused_result));

/* Byte range [start, end) of one JSON value inside a body. */
struct json_span {
    size_t start, end;
};

/* The exact text of each result, for rejects: finds the root object's first
 * "results" member in body[0..len) (a body api_envelope_open accepted) and
 * writes the span of each element of that array (or of the object itself)
 * into *spans (grown with array_reserve; the caller frees). Returns the
 * count, or -1 when there is no such member written plainly (an escaped
 * key), it is neither array nor object, or memory ran out. */
long api_results_spans(const char *body, size_t len, struct json_span **spans, size_t *cap);

/* A timestamp as the API sends it, read by magnitude: seconds,
 * milliseconds, microseconds or nanoseconds since the epoch (the spec says
 * ns; real answers mix units), within [2000-01-01, 2100-01-01) in any of
 * them; those ranges do not overlap. Fractions are rounded to the us.
 * Returns API_TS_OK with *us, API_TS_NONE for 0 (how the API says "never"),
 * API_TS_NOT_NUMBER, or API_TS_OUT_OF_RANGE. */
enum api_ts_result { API_TS_OK = 0, API_TS_NONE = 1, API_TS_NOT_NUMBER = -1, API_TS_OUT_OF_RANGE = -2 };
int api_timestamp_us(const struct api_envelope *env, const struct json_exact_ints *exact,
                     const cJSON *node, int64_t *us) __attribute__((warn_unused_result));

/* Returns the byte offset of the first invalid UTF-8 sequence or NUL byte
 * in text[0..len), or len when there is none. */
size_t api_utf8_first_invalid(const char *text, size_t len);

/* Makes a malloc'd copy of text[0..len) that is valid UTF-8 without NUL
 * (invalid bytes and NUL become U+FFFD), cut at a character boundary to at
 * most `cap` bytes. *out_len gets its length. The caller frees. NULL on OOM. */
char *api_text_sanitize(const char *text, size_t len, size_t cap, size_t *out_len);

/* Copies src into dst (size > 0), printable ASCII only (others become '?'),
 * truncated; dst is always NUL-terminated. */
void api_copy_ascii(char *dst, size_t size, const char *src);

#endif
