/* pager_rules.c - origin, cursor-loop, page-cap and parse-retry rules of a paginated fetch. */
#include "optsnap/pipeline/pager_rules.h"

#include <stdlib.h>
#include <string.h>

#include "optsnap/util/array.h"

void pager_rules_init(struct pager_rules *r, int max_pages, int max_parse_retries)
{
    memset(r, 0, sizeof *r);
    r->max_pages = max_pages > 0 ? max_pages : 1;
    r->max_parse_retries = max_parse_retries > 0 ? max_parse_retries : 0;
}

void pager_rules_reset(struct pager_rules *r)
{
    free(r->seen);
    pager_rules_init(r, r->max_pages, r->max_parse_retries);
}

/* FNV-1a over the URL: a repeated cursor repeats the whole URL. */
static uint64_t url_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

enum pager_step pager_rules_next(struct pager_rules *r, const struct api_origin *origin, const char *next_url,
                                 char *fetch, size_t size)
{
    r->pages++;
    r->parse_retries = 0;
    if (next_url == NULL || next_url[0] == '\0')
        return PAGER_STEP_LAST;
    if (api_origin_resolve(origin, next_url, fetch, size) == API_ORIGIN_REFUSED)
        return PAGER_STEP_OFF_ORIGIN;
    uint64_t h = url_hash(next_url);
    for (size_t i = 0; i < r->nseen; i++)
        if (r->seen[i] == h)
            return PAGER_STEP_LOOP;
    if (r->pages >= r->max_pages)
        return PAGER_STEP_CAP;
    if (array_reserve((void **)&r->seen, &r->seen_cap, r->nseen + 1, sizeof *r->seen))
        return PAGER_STEP_NOMEM;
    r->seen[r->nseen++] = h;
    return PAGER_STEP_FOLLOW;
}

bool pager_rules_retry_parse(struct pager_rules *r)
{
    if (r->parse_retries >= r->max_parse_retries)
        return false;
    r->parse_retries++;
    return true;
}

const char *pager_step_text(enum pager_step s)
{
    switch (s) {
    case PAGER_STEP_FOLLOW: return "next page";
    case PAGER_STEP_LAST: return "last page";
    case PAGER_STEP_OFF_ORIGIN: return "next_url leaves the API's origin (not followed: the key would go with it)";
    case PAGER_STEP_LOOP: return "next_url cursor repeats: pagination loop";
    case PAGER_STEP_CAP: return "page cap reached (max_pages)";
    case PAGER_STEP_NOMEM: return "out of memory";
    }
    return "?";
}
