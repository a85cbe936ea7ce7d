/* occ.h - OCC option symbols as the API spells them: "O:AAPL230616C00150000". Pure. */
#ifndef OPTSNAP_OCC_H
#define OPTSNAP_OCC_H

#include <stdint.h>

struct occ_symbol {
    char root[8];            /* "AAPL" (1-6 chars, A-Z 0-9 and '.') */
    int32_t expiration_days; /* days since 1970-01-01 */
    char contract_type;      /* 'C' or 'P' */
    int64_t strike_milli;    /* strike * 1000 */
};

/* Returns 0 and fills *out when ticker is a well-formed OCC symbol with the
 * "O:" prefix and a real calendar date; -1 otherwise. */
int occ_parse(const char *ticker, struct occ_symbol *out) __attribute__((warn_unused_result));

/* Writes "O:ROOTYYMMDDT########" into buf (size >= 32). Returns 0 or -1. */
int occ_format(char *buf, unsigned long size, const char *root, int32_t expiration_days,
               char contract_type, int64_t strike_milli);

#endif
