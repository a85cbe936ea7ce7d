/* reference_parse.h - one page of GET /v3/reference/options/contracts. Pure. */
#ifndef OPTSNAP_REFERENCE_PARSE_H
#define OPTSNAP_REFERENCE_PARSE_H

#include <stdbool.h>

#include "optsnap/api/row.h"

/* What the reference endpoint says of a contract beyond option_contract
 * (columns of `options` from 006_fields.sql). */
struct contract_reference {
    bool has_reference;            /* any of the three below was sent */
    char primary_exchange[16];     /* MIC, e.g. "BATO"; "" when absent */
    char cfi[8];                   /* ISO 10962, e.g. "OCASPS"; "" when absent */
    /* The deliverables of an adjusted contract as JSON text,
     * [{"type":"equity","underlying":"AAPL","amount":100}, ...], rebuilt from
     * the fields read (malloc'd, owned by the page); NULL when absent or
     * unreadable (counted in nfields_dropped). */
    char *additional_underlyings;
};

struct contracts_page {
    struct option_contract *contracts;
    struct contract_reference *refs; /* parallel to contracts, same index */
    size_t ncontracts, contracts_cap, refs_cap;
    size_t nskipped;      /* results that were not valid contracts */
    size_t nfields_dropped; /* reference fields of valid contracts that could not be read */
    char *next_url;       /* malloc'd or NULL */
    char request_id[96];
};

int contracts_page_parse(struct contracts_page *page, const char *body, size_t len, char *err,
                         size_t err_size) __attribute__((warn_unused_result));
void contracts_page_reset(struct contracts_page *page);
void contracts_page_free(struct contracts_page *page);

#endif
