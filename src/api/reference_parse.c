/* reference_parse.c - options contracts reference pages into option_contract records; bad entries are skipped and counted. */
#include "optsnap/api/reference_parse.h"

#include "optsnap/util/array.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/api/api_envelope.h"
#include "optsnap/api/occ.h"
#include "optsnap/util/timeutil.h"

#define CONTRACTS_RESULTS_MAX 50000

static const char *opt_string(const cJSON *obj, const char *key, bool *bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it == NULL || cJSON_IsNull(it))
        return NULL;
    if (!cJSON_IsString(it)) {
        *bad = true;
        return NULL;
    }
    return it->valuestring;
}

/* additional_underlyings: an array of {type, underlying, amount}; the JSON
 * text rebuilt from what was read, or NULL (with *bad) when it is not that. */
static char *deliverables_parse(const cJSON *arr, bool *bad)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > 64) {
        *bad = true;
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    if (out == NULL)
        return NULL;
    for (const cJSON *e = arr->child; e != NULL; e = e->next) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *und = cJSON_GetObjectItemCaseSensitive(e, "underlying");
        const cJSON *amount = cJSON_GetObjectItemCaseSensitive(e, "amount");
        if (!cJSON_IsObject(e) || !cJSON_IsString(type) || !cJSON_IsString(und) || !cJSON_IsNumber(amount) ||
            !isfinite(amount->valuedouble)) {
            cJSON_Delete(out);
            *bad = true;
            return NULL;
        }
        char t[32], u[32];
        api_copy_ascii(t, sizeof t, type->valuestring);
        api_copy_ascii(u, sizeof u, und->valuestring);
        cJSON *o = cJSON_CreateObject();
        if (o != NULL && !cJSON_AddItemToArray(out, o)) {
            cJSON_Delete(o);
            o = NULL;
        }
        /* from here out owns o */
        if (o == NULL || cJSON_AddStringToObject(o, "type", t) == NULL ||
            cJSON_AddStringToObject(o, "underlying", u) == NULL ||
            cJSON_AddNumberToObject(o, "amount", amount->valuedouble) == NULL) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    char *printed = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    /* the caller free()s it: a malloc'd copy of cJSON's text, which only
     * cJSON_free may release */
    char *text = printed ? strdup(printed) : NULL;
    cJSON_free(printed);
    return text;
}

/* The fields of `options` only the reference endpoint knows. */
static void reference_parse(const cJSON *res, struct contract_reference *ref, size_t *dropped)
{
    memset(ref, 0, sizeof *ref);
    bool bad = false;
    const char *s = opt_string(res, "primary_exchange", &bad);
    if (s != NULL) {
        api_copy_ascii(ref->primary_exchange, sizeof ref->primary_exchange, s);
        ref->has_reference = true;
    }
    s = opt_string(res, "cfi", &bad);
    if (s != NULL) {
        api_copy_ascii(ref->cfi, sizeof ref->cfi, s);
        ref->has_reference = true;
    }
    const cJSON *au = cJSON_GetObjectItemCaseSensitive(res, "additional_underlyings");
    if (au != NULL && !cJSON_IsNull(au)) {
        ref->additional_underlyings = deliverables_parse(au, &bad);
        ref->has_reference = true;
    }
    if (bad)
        (*dropped)++;
}

/* Returns 0 when res is a valid contract (fields that are absent come from
 * the OCC symbol), -1 when it is not. */
static int contract_parse(const cJSON *res, struct option_contract *ct)
{
    if (!cJSON_IsObject(res))
        return -1;
    bool bad = false;
    const char *ticker = opt_string(res, "ticker", &bad);
    struct occ_symbol occ;
    if (ticker == NULL || occ_parse(ticker, &occ))
        return -1;
    memset(ct, 0, sizeof *ct);
    memcpy(ct->ticker, ticker, strlen(ticker) + 1); /* occ_parse bounds it */
    ct->contract_type = occ.contract_type;
    ct->exercise_style = '?';
    ct->expiration_days = occ.expiration_days;
    ct->strike_price = (double)occ.strike_milli / 1000.0;

    const char *s = opt_string(res, "underlying_ticker", &bad);
    if (s != NULL && s[0] != '\0') {
        if (strlen(s) >= sizeof ct->underlying)
            return -1;
        api_copy_ascii(ct->underlying, sizeof ct->underlying, s);
    } else {
        memcpy(ct->underlying, occ.root, strlen(occ.root) + 1);
    }
    s = opt_string(res, "contract_type", &bad);
    if (s != NULL) {
        char t = strcmp(s, "call") == 0 ? 'C' : strcmp(s, "put") == 0 ? 'P' : 'O';
        if (t != occ.contract_type)
            return -1;
    }
    s = opt_string(res, "exercise_style", &bad);
    if (s != NULL)
        ct->exercise_style = strcmp(s, "american") == 0   ? 'A'
                             : strcmp(s, "european") == 0 ? 'E'
                             : strcmp(s, "bermudan") == 0 ? 'B'
                                                          : '?';
    s = opt_string(res, "expiration_date", &bad);
    if (s != NULL) {
        int32_t days;
        if (date_parse(s, &days) || days != occ.expiration_days)
            return -1;
    }
    if (bad)
        return -1;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(res, "strike_price");
    if (it != NULL && !cJSON_IsNull(it)) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
        if (!isfinite(d) || d < 0 || d >= 1e6 || llround(d * 1000.0) != occ.strike_milli)
            return -1;
    }
    it = cJSON_GetObjectItemCaseSensitive(res, "shares_per_contract");
    if (it != NULL && !cJSON_IsNull(it)) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
        if (!isfinite(d) || d < 0 || d != floor(d) || d > 2147483647.0)
            return -1;
        ct->shares_per_contract = (int32_t)d;
    }
    return 0;
}

int contracts_page_parse(struct contracts_page *page, const char *body, size_t len, char *err,
                         size_t err_size)
{
    /* An underlying without contracts may come back without "results";
     * /v3/reference/options/contracts/{ticker} sends one object. */
    static const struct api_results_rule rule = {
        .max = CONTRACTS_RESULTS_MAX, .noun = "entries", .missing_ok = true, .object_ok = true};
    struct api_page pg;
    int rc = api_page_open(&pg, body, len, NULL, &rule, page->request_id, sizeof page->request_id, err, err_size);
    if (rc != PARSE_OK)
        return rc;
    size_t want = page->ncontracts + pg.count;
    if (array_reserve((void **)&page->contracts, &page->contracts_cap, want, sizeof *page->contracts) ||
        array_reserve((void **)&page->refs, &page->refs_cap, want, sizeof *page->refs)) {
        api_err_set(err, err_size, pg.env.request_id, "out of memory");
        return api_page_abandon(&pg, PARSE_ERR_NOMEM);
    }
    for (const cJSON *res = api_page_first(&pg); res != NULL; res = api_page_next(&pg, res)) {
        if (contract_parse(res, &page->contracts[page->ncontracts]) == 0) {
            reference_parse(res, &page->refs[page->ncontracts], &page->nfields_dropped);
            page->ncontracts++;
        } else {
            page->nskipped++;
        }
    }
    api_page_finish(&pg, &page->next_url);
    return PARSE_OK;
}

void contracts_page_reset(struct contracts_page *page)
{
    for (size_t i = 0; i < page->ncontracts; i++)
        free(page->refs[i].additional_underlyings);
    page->ncontracts = 0;
    page->nskipped = 0;
    page->nfields_dropped = 0;
    api_page_forget(&page->next_url, page->request_id);
}

void contracts_page_free(struct contracts_page *page)
{
    contracts_page_reset(page);
    free(page->contracts);
    free(page->refs);
    memset(page, 0, sizeof *page);
}
