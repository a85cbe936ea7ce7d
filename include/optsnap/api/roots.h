/* roots.h - which OCC roots list options on an underlying, and whether a row
 * belongs to the underlying that was asked for. Index chains hold several
 * roots (SPX: SPX and SPXW; NDX: NDX and NDXP; ...), and index underlyings
 * are spelled "I:SPX" by the API. The table of alternate roots lives in
 * src/api/roots.c and nowhere else. Pure. */
#ifndef OPTSNAP_ROOTS_H
#define OPTSNAP_ROOTS_H

#include <stdbool.h>
#include <stddef.h>

/* "I:SPX" -> "SPX"; anything else unchanged. Points into u. */
const char *underlying_base(const char *u);

/* True when u is an index underlying ("I:" followed by a ticker). */
bool underlying_is_index(const char *u);

/* The roots listed for underlying u ("SPX" or "I:SPX" -> {"SPX", "SPXW",
 * "SPXPM"}); NULL with *n = 1 meaning "its own base only" when u has no
 * alternate roots. */
const char *const *option_roots_of(const char *u, size_t *n);

/* True when the OCC root `root` lists options on underlying u: the root is
 * u's base, or one of its alternate roots. */
bool option_root_of_underlying(const char *u, const char *root);

/* Whether a row (a chain snapshot result, a contracts reference entry)
 * belongs to the requested underlying. `data_underlying` is what the API
 * says the contract's underlying is (underlying_asset.ticker or
 * underlying_ticker; NULL or "" when it said nothing); `root` is the OCC
 * root of the contract's ticker. Accepted when the API said nothing, when it
 * named the requested underlying (with or without the "I:" prefix), or when
 * the root is one of the requested underlying's roots. "" requested accepts
 * everything. */
bool option_row_matches_underlying(const char *requested, const char *data_underlying,
                                   const char *root);

/* option_row_matches_underlying for a contract of the reference endpoint
 * (its underlying as the parser set it, its root from its ticker): the
 * filter of a backfill's contract listing. */
struct option_contract;
bool option_contract_matches_underlying(const struct option_contract *c, const char *requested);

#endif
