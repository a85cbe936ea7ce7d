/* dayblock.h - what a live snapshot's day block would have said at the end
 * of each minute bar (DESIGN §5): open of the session's first bar, running
 * high and low, the bar's close, cumulative volume and volume-weighted vwap,
 * previous close, change and change percent. One row per bar that ends
 * inside the window asked for, keyed at the bar's end, source backfill;
 * never a bar that has not closed yet. REST backfill and flat files both
 * build their rows here. Pure. */
#ifndef OPTSNAP_DAYBLOCK_H
#define OPTSNAP_DAYBLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/api/aggs_parse.h"
#include "optsnap/api/row.h"

/* Which bars of one local day become rows. */
struct dayblock_window {
    int64_t day_start_us, day_end_us; /* the local (America/New_York) day the bars belong to */
    int64_t from_us, to_us;           /* rows keyed in [from, to) ... */
    bool to_inclusive;                /* ... or [from, to] when to is the session's close */
    int64_t resolution_us;            /* bar length */
    int64_t not_after_us;             /* the API's now: a bar ending later is still open */
    bool no_vwap;                     /* the bars carry no vwap (flat files): day_vwap stays NULL, not a guess */
};

/* True when bar i's end is a row of w. */
bool dayblock_bar_inside(const struct dayblock_window *w, const struct agg_bar *bar);

/* Calls emit(user, row) for every bar (sorted by start, the whole day so far
 * from its first bar) whose end is inside w. prev_close may be NAN (no
 * earlier session: no previous close, change or change percent). Returns 0,
 * -1 when the bars are not strictly ascending, or emit's non-zero result. */
int dayblock_build(const struct option_contract *contract, const struct agg_bar *bars, size_t nbars,
                   double prev_close, const struct dayblock_window *w,
                   int (*emit)(void *user, const struct snapshot_row *row), void *user)
    __attribute__((warn_unused_result));

#endif
