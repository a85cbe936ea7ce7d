/* pager_rules.h - the rules a paginated fetch lives by, apart from any I/O:
 * follow next_url only on the API's origin, never the same cursor twice,
 * at most `max_pages` pages, fetch a malformed page again at most
 * `max_parse_retries` times. Pure: the pager (pager.h) applies them. */
#ifndef OPTSNAP_PAGER_RULES_H
#define OPTSNAP_PAGER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/api/api_origin.h"

enum pager_step {
    PAGER_STEP_FOLLOW,     /* fetch next_url */
    PAGER_STEP_LAST,       /* no next_url: the listing is complete */
    PAGER_STEP_OFF_ORIGIN, /* next_url leaves the API's origin: the key would go with it */
    PAGER_STEP_LOOP,       /* a cursor seen before: the API is looping */
    PAGER_STEP_CAP,        /* max_pages reached */
    PAGER_STEP_NOMEM,
};

/* One paginated fetch's memory of what it has seen. Zero-initialised it is
 * at its first page. Owns `seen`: pager_rules_reset frees it. */
struct pager_rules {
    int max_pages;         /* pages per fetch, >= 1 */
    int max_parse_retries; /* fetches again of one malformed page */
    int pages;             /* pages accepted so far */
    int parse_retries;     /* of the page in hand */
    uint64_t *seen;        /* hashes of the cursors followed */
    size_t nseen, seen_cap;
};

void pager_rules_init(struct pager_rules *r, int max_pages, int max_parse_retries);
void pager_rules_reset(struct pager_rules *r);

/* A page parsed: what to do about its next_url (NULL or "" = none).
 * Counts the page; on PAGER_STEP_FOLLOW remembers the cursor and writes the
 * URL to fetch into fetch[size] (next_url itself, or rebased onto api_url
 * when it names the API's alias host: api_origin_resolve). */
enum pager_step pager_rules_next(struct pager_rules *r, const struct api_origin *origin, const char *next_url,
                                 char *fetch, size_t size);

/* A page would not parse: true when it may be fetched again (counted). */
bool pager_rules_retry_parse(struct pager_rules *r);

/* Short text for logs and reasons: "next_url leaves the API's origin", ... */
const char *pager_step_text(enum pager_step s);

#endif
