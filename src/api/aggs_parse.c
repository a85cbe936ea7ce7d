/* aggs_parse.c - aggregate bar pages (/v2/aggs/ticker/...) into bars; any bad bar fails the page. */
#include "optsnap/api/aggs_parse.h"

#include "optsnap/util/array.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/api_envelope.h"

#define AGGS_RESULTS_MAX 50000

/* Reads a required finite number; returns 0, or -1 with *why set. */
static int bar_number(const cJSON *bar, const char *key, bool required, double *out,
                      const char **why)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(bar, key);
    if (it == NULL || cJSON_IsNull(it)) {
        if (required) {
            *why = "missing";
            return -1;
        }
        *out = NAN;
        return 0;
    }
    if (!cJSON_IsNumber(it)) {
        *why = "not a number";
        return -1;
    }
    if (!isfinite(it->valuedouble)) {
        *why = "not finite";
        return -1;
    }
    *out = it->valuedouble;
    return 0;
}

/* Returns 0, or -1 with a message naming the bar and field. */
static int bar_parse(const struct api_envelope *env, const cJSON *bar, struct agg_bar *out, const char **field,
                     const char **why)
{
    if (!cJSON_IsObject(bar)) {
        *field = "bar";
        *why = "not an object";
        return -1;
    }
    static const char *const req_keys[] = {"o", "h", "l", "c", "v", "t"};
    double vals[6];
    for (int i = 0; i < 6; i++) {
        *field = req_keys[i];
        if (bar_number(bar, req_keys[i], true, &vals[i], why))
            return -1;
        if (vals[i] < 0) {
            *why = "negative";
            return -1;
        }
    }
    out->open = vals[0];
    out->high = vals[1];
    out->low = vals[2];
    out->close = vals[3];
    out->volume = vals[4];
    *field = "t";
    if (vals[5] != floor(vals[5])) {
        *why = "not an integer";
        return -1;
    }
    /* the spec says ms; read by magnitude like every API timestamp */
    int64_t us;
    if (api_timestamp_us(env, NULL, cJSON_GetObjectItemCaseSensitive(bar, "t"), &us) != API_TS_OK) {
        *why = "timestamp out of range";
        return -1;
    }
    out->start_ms = us / 1000;
    *field = "h";
    if (out->high < out->low) {
        *why = "high < low";
        return -1;
    }
    if (out->open < out->low || out->open > out->high) {
        *field = "o";
        *why = "outside [low, high]";
        return -1;
    }
    if (out->close < out->low || out->close > out->high) {
        *field = "c";
        *why = "outside [low, high]";
        return -1;
    }
    *field = "vw";
    if (bar_number(bar, "vw", false, &out->vwap, why))
        return -1;
    if (out->vwap < 0) {
        *why = "negative";
        return -1;
    }
    double n;
    *field = "n";
    if (bar_number(bar, "n", false, &n, why))
        return -1;
    if (isnan(n)) {
        out->trades = -1;
    } else if (n < 0) {
        *why = "negative";
        return -1;
    } else if (n != floor(n) || n > 9007199254740992.0) {
        *why = "not an integer";
        return -1;
    } else {
        out->trades = (int64_t)n;
    }
    return 0;
}

int aggs_page_parse(struct aggs_page *page, const char *body, size_t len, char *err,
                    size_t err_size)
{
    static const struct api_results_rule rule = {.max = AGGS_RESULTS_MAX, .noun = "bars", .missing_ok = true};
    struct api_page pg;
    int rc = api_page_open(&pg, body, len, NULL, &rule, page->request_id, sizeof page->request_id, err, err_size);
    if (rc != PARSE_OK)
        return rc;
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(pg.env.root, "ticker");
    if (tk != NULL && !cJSON_IsNull(tk) && !cJSON_IsString(tk)) {
        api_err_set(err, err_size, pg.env.request_id, "ticker: not a string");
        return api_page_abandon(&pg, PARSE_ERR_SHAPE);
    }
    if (array_reserve((void **)&page->bars, &page->bars_cap, page->nbars + pg.count, sizeof *page->bars)) {
        api_err_set(err, err_size, pg.env.request_id, "out of memory");
        return api_page_abandon(&pg, PARSE_ERR_NOMEM);
    }
    size_t i = 0;
    for (const cJSON *bar = api_page_first(&pg); bar != NULL; bar = api_page_next(&pg, bar), i++) {
        const char *field = "", *why = "";
        if (bar_parse(&pg.env, bar, &page->bars[page->nbars + i], &field, &why)) {
            api_err_set(err, err_size, pg.env.request_id, "results[%zu].%s: %s", i, field, why);
            return api_page_abandon(&pg, PARSE_ERR_SHAPE);
        }
    }
    page->nbars += pg.count;
    if (cJSON_IsString(tk))
        api_copy_ascii(page->ticker, sizeof page->ticker, tk->valuestring);
    api_page_finish(&pg, &page->next_url);
    return PARSE_OK;
}

void aggs_page_reset(struct aggs_page *page)
{
    page->nbars = 0;
    api_page_forget(&page->next_url, page->request_id);
    page->ticker[0] = '\0';
}

void aggs_page_free(struct aggs_page *page)
{
    aggs_page_reset(page);
    free(page->bars);
    memset(page, 0, sizeof *page);
}
