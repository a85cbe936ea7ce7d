/* backfill.h - the backfill driver on the engine (pipeline/engine.h): history
 * from the aggregates endpoint (DESIGN §5), one unit per underlying and
 * trading session, with the backfill_* budgets, a per-underlying lease in
 * PostgreSQL and the coverage ledger. Planning (sessions) is blocking, before
 * the loop; everything after goes through the engine's pool and pagers. Used
 * by `optsnap backfill` and `optsnap repair` (history/repair.c). */
#ifndef OPTSNAP_BACKFILL_H
#define OPTSNAP_BACKFILL_H

#include <stdbool.h>
#include <stdint.h>

#include "optsnap/config/settings.h"

/* One range of one underlying to fill: [from_us, to_us), unix microseconds. */
struct backfill_request {
    char underlying[16];
    int64_t from_us, to_us;
    bool no_prune; /* ask every contract, even those the live rows show did not trade */
    /* Bars from the day's flat file (history/flatfiles.h) instead of one
     * aggregates request per contract: FLAT_ALWAYS (backfill
     * --from-flatfiles: the stored ETag, not the coverage ledger, decides
     * whether a day is done again), FLAT_AUTO (repair: the units of days that
     * ended more than flatfiles_delay ago, when flat files are configured). */
    enum { FLAT_NEVER = 0, FLAT_AUTO, FLAT_ALWAYS } flat;
};

/* The contracts of underlying $1 that did not trade inside [$2, $3) (a
 * unit passes its start less one bar: the bar ending at the start is its),
 * all within one New York day. p is a contract's last row before the start,
 * g its latest row from the start on (same day); "covered after" means a
 * live window of $1 starting at or after $3 that day is covered, so every
 * contract listed then has its latest event stored (a covered window is
 * complete, DESIGN §4) - even when that event is older than the range: an
 * idle contract re-polls unchanged and keeps the row it had.
 *  - no g: no event at all from the start up to a covered window after the
 *    range, so no trade: quiet when covered after (else unknown: asked);
 *  - g inside the range: its last event is in there; quiet only when covered
 *    after (nothing came later) and g shows p's volume and trade time;
 *  - g's last trade (last_trade.sip_timestamp) before the start, g after
 *    the range or covered after: no trade from the start to g, so quiet
 *    (this needs no p: the range before a day's first live row);
 *  - g after the range: quiet when g shows p's day volume and last trade
 *    time (or, with no p, no volume).
 * No trade means no minute bar, so no backfill row: asking the aggregates
 * endpoint for them would return nothing. A contract known only from the
 * listing is asked. Two primary-key probes per contract. Backfill skips
 * them; repair --dry-run counts them. One `ticker` column. */

#define BACKFILL_SQL_QUIET_CONTRACTS \
    "SELECT o.ticker" \
    "  FROM options o" \
    " CROSS JOIN (SELECT date_trunc('day', $2::timestamptz AT TIME ZONE 'America/New_York')" \
    "                    AT TIME ZONE 'America/New_York' AS d0) b" \
    " CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM ingest_coverage c" \
    "                      WHERE c.underlying = $1 AND c.source = 'live' AND c.window_start >= $3::timestamptz" \
    "                        AND c.window_start < b.d0 + interval '1 day') AS after) k" \
    "  LEFT JOIN LATERAL (SELECT x.last_updated, x.day_volume, x.trade_time FROM option_snapshots x" \
    "                      WHERE x.ticker = o.ticker AND x.last_updated >= $2::timestamptz" \
    "                        AND x.last_updated < b.d0 + interval '1 day'" \
    "                      ORDER BY x.last_updated DESC LIMIT 1) g ON true" \
    "  LEFT JOIN LATERAL (SELECT x.day_volume, x.trade_time FROM option_snapshots x" \
    "                      WHERE x.ticker = o.ticker AND x.last_updated < $2::timestamptz" \
    "                        AND x.last_updated >= b.d0" \
    "                      ORDER BY x.last_updated DESC LIMIT 1) p ON true" \
    " WHERE o.underlying = $1" \
    "   AND o.expiration_date >= (($2::timestamptz) AT TIME ZONE 'America/New_York')::date" \
    "   AND (CASE WHEN g.last_updated IS NULL THEN k.after" \
    "             WHEN g.last_updated < $3::timestamptz AND NOT k.after THEN false" \
    "             WHEN g.trade_time < $2::timestamptz THEN true" \
    "             WHEN p IS NULL THEN coalesce(g.day_volume, 0) = 0" \
    "             ELSE p.day_volume IS NOT DISTINCT FROM g.day_volume" \
    "                  AND p.trade_time IS NOT DISTINCT FROM g.trade_time END)" \
    " ORDER BY o.ticker COLLATE \"C\""

/* The previous closes of the day's live rows: $1 underlying, $2 the unit's
 * start. One primary-key probe per contract. */
#define BACKFILL_SQL_KNOWN_CLOSES \
    "SELECT o.ticker, s.day_previous_close" \
    "  FROM options o" \
    " CROSS JOIN (SELECT date_trunc('day', $2::timestamptz AT TIME ZONE 'America/New_York')" \
    "                    AT TIME ZONE 'America/New_York' AS d0) b" \
    " CROSS JOIN LATERAL (SELECT x.day_previous_close FROM option_snapshots x" \
    "                      WHERE x.ticker = o.ticker AND x.last_updated >= b.d0" \
    "                        AND x.last_updated < b.d0 + interval '1 day' AND x.source = 'live'" \
    "                      ORDER BY x.last_updated DESC LIMIT 1) s" \
    " WHERE o.underlying = $1" \
    "   AND o.expiration_date >= (($2::timestamptz) AT TIME ZONE 'America/New_York')::date" \
    "   AND s.day_previous_close IS NOT NULL"

/* What a run did, for the caller's report and exit code. */
struct backfill_result {
    int units_total;
    int units_done;       /* filled and marked covered now */
    int units_covered;    /* already had no gap: nothing to do */
    int units_failed;     /* stay uncovered (reasons logged and printed) */
    int units_skipped;    /* another process held the underlying's lease */
    long rows_written;    /* rows the upserts inserted or changed */
    long rows_built;
    long contracts_asked;   /* (contract, unit) pairs whose bars were fetched */
    long contracts_skipped; /* pairs pruned: no trade inside the unit */
    long closes_known;      /* previous closes the day's live rows gave: no request */
    long flat_applied;   /* flat-file units whose object was applied */
    long flat_unchanged; /* ... skipped: the object's ETag is the one applied before (304) */
    long flat_rejects;   /* flat-file lines that were not good bars (stored as rejects) */
    double seconds;
    bool interrupted;     /* SIGINT/SIGTERM: drained, the rest stays uncovered */
};

/* Splits each request into units (underlying x trading session of the
 * `calendar` setting, intersected with the range) and fills them; prints a
 * per-unit line to stdout for each unit that failed or was skipped. The
 * requests array is the caller's. Ranges are clipped at the API's now less
 * one cadence: no window is marked before it has ended, no bar still open is
 * stored. Returns 0 and fills *out (also on partial
 * success: look at the counts), or -1 on a fatal error (logged): no database,
 * bad calendar range. */
int backfill_execute(struct settings *s, const struct backfill_request *reqs, size_t nreqs,
                     int64_t resolution_us, struct backfill_result *out)
    __attribute__((warn_unused_result));

/* The commands; each returns the process exit code (enum exit_code). */
int cmd_backfill(int argc, char **argv);
int cmd_repair(int argc, char **argv);

#endif
