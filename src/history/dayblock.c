/* dayblock.c - minute bars -> the day-so-far rows a live snapshot would have held. */
#include "optsnap/history/dayblock.h"

#include <math.h>
#include <string.h>

static double round2(double v) { return round(v * 100.0) / 100.0; }

bool dayblock_bar_inside(const struct dayblock_window *w, const struct agg_bar *bar)
{
    int64_t lu = bar->start_ms * 1000 + w->resolution_us;
    if (lu < w->from_us || lu >= w->day_end_us || lu > w->not_after_us)
        return false;
    return lu < w->to_us || (w->to_inclusive && lu == w->to_us);
}

/* The order of operations is the simulator's (mm_day_block), so the floats agree exactly. */
int dayblock_build(const struct option_contract *contract, const struct agg_bar *bars, size_t nbars,
                   double prev_close, const struct dayblock_window *w,
                   int (*emit)(void *user, const struct snapshot_row *row), void *user)
{
    double open = 0, high = 0, low = 0, vsum = 0, vwv = 0;
    for (size_t i = 0; i < nbars; i++) {
        const struct agg_bar *b = &bars[i];
        if (i > 0 && b->start_ms <= bars[i - 1].start_ms)
            return -1;
        if (i == 0) {
            open = b->open;
            high = b->high;
            low = b->low;
        }
        high = b->high > high ? b->high : high;
        low = b->low < low ? b->low : low;
        double vw = isnan(b->vwap) ? b->close : b->vwap;
        vsum += b->volume;
        vwv += vw * b->volume;
        if (!dayblock_bar_inside(w, b))
            continue;
        struct snapshot_row r;
        memset(&r, 0, sizeof r);
        r.contract = *contract;
        r.last_updated_us = b->start_ms * 1000 + w->resolution_us;
        r.source = ROW_SOURCE_BACKFILL;
        snapshot_row_set_f64(&r, SNAP_DAY_OPEN, open);
        snapshot_row_set_f64(&r, SNAP_DAY_HIGH, high);
        snapshot_row_set_f64(&r, SNAP_DAY_LOW, low);
        snapshot_row_set_f64(&r, SNAP_DAY_CLOSE, b->close);
        snapshot_row_set_i64(&r, SNAP_DAY_VOLUME, (int64_t)llround(vsum));
        if (vsum > 0 && !w->no_vwap)
            snapshot_row_set_f64(&r, SNAP_DAY_VWAP, vwv / vsum);
        if (!isnan(prev_close)) {
            snapshot_row_set_f64(&r, SNAP_DAY_PREVIOUS_CLOSE, prev_close);
            snapshot_row_set_f64(&r, SNAP_DAY_CHANGE, round2(b->close - prev_close));
            if (prev_close != 0)
                snapshot_row_set_f64(&r, SNAP_DAY_CHANGE_PERCENT, (b->close - prev_close) / prev_close * 100.0);
        }
        snapshot_row_set_i64(&r, SNAP_DAY_TIME, w->day_start_us);
        int rc = emit(user, &r);
        if (rc != 0)
            return rc;
    }
    return 0;
}
