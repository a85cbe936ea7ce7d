/* roots.c - the one table of alternate OCC roots per underlying, and the rule that matches rows to the requested underlying. */
#include "optsnap/api/roots.h"

#include <string.h>

#include "optsnap/api/occ.h"
#include "optsnap/api/row.h"

/* Each entry: the underlying (its base, without "I:") and every OCC root its
 * options trade under. Sources: Cboe product specifications.
 *   SPX  - SPX (AM-settled monthlies), SPXW (PM-settled weeklies and
 *          dailies), SPXPM (the PM-settled series SPXW replaced in 2017;
 *          kept so old contracts still match in backfill)
 *   NDX  - NDX (AM-settled), NDXP (PM-settled weeklies)
 *   RUT  - RUT (AM-settled), RUTW (PM-settled weeklies)
 *   VIX  - VIX (monthlies), VIXW (weeklies)
 *   OEX  - OEX (American-style) and XEO (European-style) on the S&P 100
 * An underlying not listed has one root, its own (adjusted contracts such as
 * AAPL1 are matched through the API's underlying ticker instead). */
struct root_family {
    const char *underlying;
    const char *roots[4];
    size_t n;
};

static const struct root_family families[] = {
    {"SPX", {"SPX", "SPXW", "SPXPM"}, 3},
    {"NDX", {"NDX", "NDXP"}, 2},
    {"RUT", {"RUT", "RUTW"}, 2},
    {"VIX", {"VIX", "VIXW"}, 2},
    {"OEX", {"OEX", "XEO"}, 2},
};

const char *underlying_base(const char *u)
{
    return underlying_is_index(u) ? u + 2 : u;
}

bool underlying_is_index(const char *u)
{
    return u != NULL && u[0] == 'I' && u[1] == ':' && u[2] != '\0';
}

static const struct root_family *family_of(const char *base)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].underlying, base) == 0)
            return &families[i];
    return NULL;
}

const char *const *option_roots_of(const char *u, size_t *n)
{
    const struct root_family *f = family_of(underlying_base(u));
    *n = f != NULL ? f->n : 1;
    return f != NULL ? f->roots : NULL;
}

bool option_root_of_underlying(const char *u, const char *root)
{
    const char *base = underlying_base(u);
    if (strcmp(root, base) == 0)
        return true;
    const struct root_family *f = family_of(base);
    for (size_t i = 0; f != NULL && i < f->n; i++)
        if (strcmp(f->roots[i], root) == 0)
            return true;
    return false;
}

bool option_row_matches_underlying(const char *requested, const char *data_underlying,
                                   const char *root)
{
    if (requested == NULL || requested[0] == '\0')
        return true;
    if (data_underlying == NULL || data_underlying[0] == '\0')
        return true;
    if (strcmp(underlying_base(data_underlying), underlying_base(requested)) == 0)
        return true;
    return root != NULL && option_root_of_underlying(requested, root);
}

bool option_contract_matches_underlying(const struct option_contract *c, const char *requested)
{
    struct occ_symbol occ;
    if (occ_parse(c->ticker, &occ))
        return false;
    return option_row_matches_underlying(requested, c->underlying, occ.root);
}
