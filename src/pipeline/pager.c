/* pager.c - a paginated fetch on the engine: first URL, then next_url, with
 * the origin, cursor-loop, page-cap and parse-retry rules of pager_rules.c. */
#include "optsnap/pipeline/pager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/snapshot_parse.h"
#include "optsnap/pipeline/engine.h"
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"

#define PAGER_PARSE_RETRIES 3

/* engine.c's accounting of requests in flight (not part of its public API). */
void engine_fetch_started(struct engine *e, long reserve_rows);
void engine_fetch_finished(struct engine *e, long reserve_rows);

void pager_release(struct pager *p)
{
    free(p->url);
    p->url = NULL;
    pager_rules_reset(&p->rules);
}

static void pager_end(struct pager *p, bool complete, const char *why)
{
    char reason[160];
    snprintf(reason, sizeof reason, "%s", why ? why : "");
    p->active = false;
    p->abandoned = false;
    pager_release(p);
    p->on_end(p, complete, reason); /* may start the pager again */
}

int pager_start(struct engine *e, struct pager *p, const char *url)
{
    if (!engine_running(e) || p->active)
        return -1;
    char *u = strdup(url);
    if (u == NULL)
        return -1;
    p->e = e;
    free(p->url);
    p->url = u;
    pager_rules_init(&p->rules, engine_settings(e)->max_pages, PAGER_PARSE_RETRIES);
    p->active = true;
    p->abandoned = false;
    p->in_flight = false;
    memset(&p->error, 0, sizeof p->error);
    engine_fetch_enqueue(e, p);
    engine_after_event(e);
    return 0;
}

void pager_end_waiting(struct pager *p, const char *why) { pager_end(p, false, why); }

void pager_abandon(struct pager *p, const char *why)
{
    if (!p->active)
        return;
    if (p->queued) {
        engine_fetch_remove(p->e, p);
        pager_end(p, false, why);
        return;
    }
    p->abandoned = true;
    snprintf(p->abandon_why, sizeof p->abandon_why, "%s", why);
}

static void on_http(void *user, const struct http_response *resp);

void pager_fetch_now(struct pager *p)
{
    if (http_client_get(engine_http(p->e), p->url, on_http, p) != 0) {
        pager_end(p, false, "cannot start a request");
        return;
    }
    p->in_flight = true;
    engine_fetch_started(p->e, p->reserve_rows);
}

/* The rules' verdict on a parsed page's next_url. */
static void after_page(struct pager *p, const char *next)
{
    struct engine *e = p->e;
    char fetch[8192];
    enum pager_step step = pager_rules_next(&p->rules, engine_origin(e), next, fetch, sizeof fetch);
    char l[80], u[300], s[300], r[120];
    switch (step) {
    case PAGER_STEP_LAST:
        pager_end(p, true, "");
        return;
    case PAGER_STEP_FOLLOW: {
        char *nu = engine_running(e) ? strdup(fetch) : NULL;
        if (nu == NULL) {
            pager_end(p, false, engine_running(e) ? "out of memory" : "shutting down");
            return;
        }
        free(p->url);
        p->url = nu;
        engine_fetch_enqueue(e, p);
        return;
    }
    case PAGER_STEP_CAP:
        engine_counters_mut(e)->pages_capped++;
        log_error("page cap reached: the rest is not fetched, the window stays uncovered",
                  "what=%s for=%s pages=%d max_pages=%d", p->what, log_quote(l, sizeof l, p->label), p->rules.pages,
                  p->rules.max_pages);
        break;
    default:
        log_error("pagination stopped", "what=%s for=%s page=%d reason=%s next_url=%s", p->what,
                  log_quote(l, sizeof l, p->label), p->rules.pages, log_quote(r, sizeof r, pager_step_text(step)),
                  log_quote(u, sizeof u, scrub_secrets(s, sizeof s, next)));
        break;
    }
    pager_end(p, false, pager_step_text(step));
}

static void on_http(void *user, const struct http_response *resp)
{
    struct pager *p = user;
    struct engine *e = p->e;
    char l[80], q[300], why[200];
    p->in_flight = false;
    engine_fetch_finished(e, p->reserve_rows);
    if (engine_closing(e) || resp->outcome == HTTP_CANCELLED) {
        pager_end(p, false, "cancelled");
        return;
    }
    if (p->abandoned) {
        pager_end(p, false, p->abandon_why);
        goto out;
    }
    if (resp->outcome != HTTP_OK) {
        char said[400];
        engine_counters_mut(e)->requests_failed++;
        api_error_parse(resp->status, resp->body, resp->body_len, &p->error);
        if (resp->status > 0)
            api_error_format(&p->error, said, sizeof said);
        else
            snprintf(said, sizeof said, "%s", resp->error ? resp->error : "no answer");
        log_error("request failed", "what=%s for=%s status=%ld attempts=%d error=%s", p->what,
                  log_quote(l, sizeof l, p->label), resp->status, resp->attempts, log_quote(q, sizeof q, said));
        snprintf(why, sizeof why, "request failed: %.170s", said);
        pager_end(p, false, why);
        goto out;
    }
    const char *next = NULL;
    why[0] = '\0';
    enum page_verdict v = p->on_page(p, resp, &next, why, sizeof why);
    switch (v) {
    case PAGE_OK:
        engine_counters_mut(e)->pages++;
        after_page(p, next);
        break;
    case PAGE_MALFORMED:
        engine_counters_mut(e)->parse_errors++;
        if (engine_running(e) && pager_rules_retry_parse(&p->rules)) {
            log_warn("bad page, fetching it again", "what=%s for=%s try=%d error=%s", p->what,
                     log_quote(l, sizeof l, p->label), p->rules.parse_retries, log_quote(q, sizeof q, why));
            engine_fetch_enqueue(e, p);
            break;
        }
        log_error("bad page", "what=%s for=%s error=%s", p->what, log_quote(l, sizeof l, p->label),
                  log_quote(q, sizeof q, why));
        pager_end(p, false, "bad page");
        break;
    case PAGE_FAILED:
        pager_end(p, false, why[0] ? why : "page refused");
        break;
    }
out:
    engine_after_event(e);
}

enum page_verdict pager_verdict_of_parse(int parse_rc)
{
    if (parse_rc == PARSE_OK)
        return PAGE_OK;
    return parse_rc == PARSE_ERR_JSON ? PAGE_MALFORMED : PAGE_FAILED;
}
