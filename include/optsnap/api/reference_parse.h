/* reference_parse.h - one page of GET /v3/reference/options/contracts. Pure. */
#ifndef OPTSNAP_REFERENCE_PARSE_H
#define OPTSNAP_REFERENCE_PARSE_H

#include "optsnap/api/row.h"

struct contracts_page {
    struct option_contract *contracts;
    size_t ncontracts, contracts_cap;
    size_t nskipped;      /* results that were not valid contracts */
    char *next_url;       /* malloc'd or NULL */
    char request_id[96];
};

int contracts_page_parse(struct contracts_page *page, const char *body, size_t len, char *err,
                         size_t err_size) __attribute__((warn_unused_result));
void contracts_page_reset(struct contracts_page *page);
void contracts_page_free(struct contracts_page *page);

#endif
