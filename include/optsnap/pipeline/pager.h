/* pager.h - one paginated fetch (a chain snapshot, a contracts listing, a
 * contract's bars) on the engine: the first URL, then next_url under the
 * rules of pager_rules.h. The driver parses each page; the pager decides
 * whether to follow, fetch again or stop, and tells the driver how it ended.
 * Fetches start in FIFO order when the engine has room (http_concurrency,
 * and queue_max_rows for the rows a page may bring). */
#ifndef OPTSNAP_PAGER_H
#define OPTSNAP_PAGER_H

#include <stdbool.h>
#include <stddef.h>

#include "optsnap/api/api_error.h"
#include "optsnap/http/http_client.h"
#include "optsnap/pipeline/pager_rules.h"
#include "optsnap/util/list.h"

struct engine;
struct pager;

enum page_verdict {
    PAGE_OK,        /* parsed; *next_url set (NULL when none) */
    PAGE_MALFORMED, /* the body would not parse: fetch it again, if the rules allow */
    PAGE_FAILED,    /* stop: why says it */
};

/* What a driver's parse result (enum parse_result) means for its page: PAGE_OK
 * for PARSE_OK, PAGE_MALFORMED for a body that is not JSON (it may be fetched
 * again), PAGE_FAILED for anything else. */
enum page_verdict pager_verdict_of_parse(int parse_rc);

/* The driver's view of one 2xx page. next_url must stay valid until the call returns. */
typedef enum page_verdict (*pager_page_cb)(struct pager *p, const struct http_response *resp,
                                           const char **next_url, char *why, size_t why_size);
/* Called exactly once after pager_start returned 0: complete = every page
 * was fetched and accepted; else why says what stopped it (a failed request,
 * a rule, shutdown, cancellation). The pager may be started again from here. */
typedef void (*pager_end_cb)(struct pager *p, bool complete, const char *why);

struct pager {
    /* set by the driver */
    pager_page_cb on_page;
    pager_end_cb on_end;
    void *user;
    long reserve_rows;  /* rows one page may bring (queue room needed before it starts) */
    const char *what;   /* "snapshot", "contracts", "aggregates": logs */
    const char *label;  /* the underlying or contract, for logs (quoted by the pager) */
    /* the pager's */
    struct api_error error; /* what the API said when a request failed (kind NONE otherwise) */
    struct engine *e;
    struct pager_rules rules;
    char *url;          /* the page to fetch (again) */
    struct list_node link; /* in the engine's queue of pagers waiting to fetch */
    bool queued, in_flight, active, abandoned;
    char abandon_why[96];
};

/* Starts fetching url (copied). Returns 0 (on_end will be called), or -1
 * (out of memory, engine not running: on_end is never called). */
int pager_start(struct engine *e, struct pager *p, const char *url) __attribute__((warn_unused_result));

/* Frees what the pager holds (its URL, its rules' memory), for the driver
 * freeing the struct around it: a pager never started, or ended. */
void pager_release(struct pager *p);

/* The driver gives up on this fetch (its group failed): no further page is
 * requested; on_end follows with complete = false and why (at once when
 * waiting, when the page in flight returns otherwise). */
void pager_abandon(struct pager *p, const char *why);

/* For the engine: a waiting pager's turn came (starts its request), or the
 * engine is draining (ends it). */
void pager_fetch_now(struct pager *p);
void pager_end_waiting(struct pager *p, const char *why);

#endif
