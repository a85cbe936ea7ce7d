#!/usr/bin/env bash
# End to end: `optsnap backfill --from-flatfiles` against the simulator's
# S3-style flat files (src/sim/mock_flatfiles.c, SigV4 signature verified).
#  1. a past day of two underlyings from the flat file: every row equals the
#     simulator's truth exactly (check_backfill.py --no-vwap: day_vwap NULL,
#     the file has no vwap; every bar has its row and no row is invented), the
#     day's windows are covered, the ETag is stored per day and underlying,
#     no row is in the DEFAULT partition, the transfer paused for backpressure;
#  2. the same command again: every unit skipped by ETag (304: the log line
#     and the summary), the rows unchanged (a digest of the table);
#  3. rows damaged in the database, the day republished (new ETag, plus one
#     quoted, unparsable line): the run applies it again, the rows equal the
#     truth again, the bad line is stored in ingest_rejects, the ETag updated;
#  4. a wrong secret key: exit 3, the reason names SignatureDoesNotMatch,
#     nothing covered, no row, and the secret is in no log;
#  5. no secret key at all: exit 2 with a message naming what is missing;
#  6. repair on the us-options calendar with flat files configured: the
#     whole sessions older than flatfiles_delay come from flat files, today's
#     part from the aggregates endpoint, and the flat sessions equal the truth.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
export OPTSNAP_API_KEY=e2e-secret-key
export MOCK_FLATFILES_ACCESS_KEY=e2e-access MOCK_FLATFILES_SECRET_KEY=e2e-flat-secret-0451
sim_start "$TMP/sim.log" --seed 7 --underlyings SPY,QQQ --contracts 120 --clock 2026-11-04T15:00:00Z --always-open \
    --api-key e2e-secret-key
DAY_FROM=2026-11-02T05:00:00Z # the simulator's local day 2026-11-02 (UTC-5)
DAY_TO=2026-11-03T05:00:00Z
FROM_US=1793595600000000
TO_US=1793682000000000

flat_backfill() { # flat_backfill DB LOG SECRET: runs the backfill, sets RC
    local db=$1 log=$2 secret=$3
    set +e
    DATABASE_URL=$db OPTSNAP_FLATFILES_SECRET_KEY=$secret "$BIN" backfill --from-flatfiles \
        --from "$DAY_FROM" --to "$DAY_TO" --underlying SPY,QQQ --calendar always --cadence 60s \
        --api-url "$SIM_URL" --flatfiles-url "$SIM_URL/flatfiles" --flatfiles-access-key e2e-access \
        --batch-rows 500 >"$log" 2>&1
    RC=$?
    set -e
}
digest() { # the rows' values (ingested_at aside: a repaired row is written again)
    pg_scalar "$1" "SELECT count(*) || ' ' || md5(string_agg((s.ticker, s.last_updated, s.source, s.day_open, s.day_high,
        s.day_low, s.day_close, s.day_volume, s.day_vwap, s.day_previous_close, s.day_change, s.day_change_percent,
        s.day_time)::text, '|' ORDER BY s.ticker, s.last_updated)) FROM option_snapshots s"
}
truth() { python3 "$HERE/check_backfill.py" "$1" "$SIM_URL" "SPY:$FROM_US:$TO_US" "QQQ:$FROM_US:$TO_US" --no-vwap; }

echo "== 1. a past day from the flat file equals the truth"
DB=$(e2e_db optsnap_e2e_ff1) || fail "database"
flat_backfill "$DB" "$TMP/bf1.log" e2e-flat-secret-0451
[ "$RC" = 0 ] || { tail -20 "$TMP/bf1.log"; fail "flat-file backfill exited $RC"; }
grep -q 'backfill: flat files: 4 units applied, 0 unchanged' "$TMP/bf1.log" || { tail -5 "$TMP/bf1.log"; fail "summary"; }
truth "$DB" || fail "flat-file rows differ from the truth"
# backpressure: with 500-row batches a unit's rows outgrow its budget of sealed batches, and the file waits
grep -q 'msg="flat file read".* pauses=[1-9]' "$TMP/bf1.log" || { grep 'flat file read' "$TMP/bf1.log"; fail "the transfer never paused"; }
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE day_vwap IS NOT NULL")" = 0 ] || fail "a vwap was invented"
COVERED=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage WHERE window_start >= '$DAY_FROM' AND window_start < '$DAY_TO'")
[ "$COVERED" = $(( 2 * 1440 )) ] || fail "covered $COVERED windows, expected 2880"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots_default")" = 0 ] || fail "rows in the DEFAULT partition"
ETAG1=$(pg_scalar "$DB" "SELECT string_agg(DISTINCT etag, ',') FROM ingest_flatfiles WHERE day = '2026-11-02'")
[ "$(pg_scalar "$DB" "SELECT count(*) FROM ingest_flatfiles WHERE day = '2026-11-02'")" = 2 ] || fail "ETags per underlying"
[[ "$ETAG1" == \"*\" ]] || fail "stored ETag '$ETAG1'"
BEFORE=$(digest "$DB")

echo "== 2. the same again: skipped by ETag, nothing written"
flat_backfill "$DB" "$TMP/bf2.log" e2e-flat-secret-0451
[ "$RC" = 0 ] || { tail -20 "$TMP/bf2.log"; fail "second run exited $RC"; }
grep -q 'backfill: flat files: 0 units applied, 4 unchanged' "$TMP/bf2.log" || { tail -5 "$TMP/bf2.log"; fail "not skipped by ETag"; }
[ "$(grep -c 'flat file unchanged (same ETag as applied)' "$TMP/bf2.log")" = 4 ] || fail "skip log lines"
[ "$(digest "$DB")" = "$BEFORE" ] || fail "rows changed on a skipped run"

echo "== 3. republished: applied again, damaged rows repaired, the bad line kept"
psql -X -q "$DB" -v ON_ERROR_STOP=1 -c "UPDATE option_snapshots SET day_close = day_close + 1, day_volume = 0
    WHERE (ticker, last_updated) IN (SELECT ticker, last_updated FROM option_snapshots ORDER BY ticker, last_updated LIMIT 25)"
truth "$DB" >/dev/null && fail "the damage was not seen"
curl -fsS -X POST "$SIM_URL/_sim/flatfiles/republish?date=2026-11-02&bad=1" >/dev/null || fail "republish"
flat_backfill "$DB" "$TMP/bf3.log" e2e-flat-secret-0451
[ "$RC" = 0 ] || { tail -20 "$TMP/bf3.log"; fail "run after republish exited $RC"; }
grep -q 'backfill: flat files: 4 units applied, 0 unchanged' "$TMP/bf3.log" || { tail -5 "$TMP/bf3.log"; fail "republished file not applied"; }
truth "$DB" || fail "rows differ from the truth after the republished file"
[ "$(digest "$DB")" = "$BEFORE" ] || fail "the republished file did not give the same rows back"
ETAG2=$(pg_scalar "$DB" "SELECT string_agg(DISTINCT etag, ',') FROM ingest_flatfiles WHERE day = '2026-11-02'")
[ -n "$ETAG2" ] && [ "$ETAG2" != "$ETAG1" ] || fail "ETag not updated ($ETAG1 -> $ETAG2)"
REJ=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_rejects WHERE reason LIKE 'flat file: quoted field (line 2)%' AND raw LIKE '\"O:BAD\"%'")
[ "$REJ" -ge 1 ] || fail "the bad line was not stored as a reject"

echo "== 4. a wrong secret: refused, nothing covered"
DB2=$(e2e_db optsnap_e2e_ff2) || fail "database"
flat_backfill "$DB2" "$TMP/bf4.log" wrong-secret-7781
[ "$RC" = 3 ] || { tail -20 "$TMP/bf4.log"; fail "wrong secret exited $RC, expected 3"; }
grep -q 'failed: flat file refused: HTTP 403 SignatureDoesNotMatch' "$TMP/bf4.log" || { tail -5 "$TMP/bf4.log"; fail "reason"; }
[ "$(pg_scalar "$DB2" "SELECT count(*) FROM ingest_coverage")" = 0 ] || fail "windows covered with a refused file"
[ "$(pg_scalar "$DB2" "SELECT count(*) FROM option_snapshots")" = 0 ] || fail "rows written with a refused file"
[ "$(pg_scalar "$DB2" "SELECT count(*) FROM ingest_flatfiles")" = 0 ] || fail "ETag stored with a refused file"
if grep -q -e 'wrong-secret-7781' -e 'e2e-flat-secret-0451' "$TMP"/bf*.log "$TMP/sim.log"; then fail "a secret key is in a log"; fi

echo "== 5. no secret: a usage error"
set +e
DATABASE_URL=$DB2 env -u OPTSNAP_FLATFILES_SECRET_KEY "$BIN" backfill --from-flatfiles --from "$DAY_FROM" --to "$DAY_TO" \
    --underlying SPY --calendar always --api-url "$SIM_URL" --flatfiles-url "$SIM_URL/flatfiles" \
    --flatfiles-access-key e2e-access >"$TMP/bf5.log" 2>&1
RC=$?
set -e
[ "$RC" = 2 ] || fail "no secret exited $RC, expected 2"
grep -q 'needs flatfiles_url, flatfiles_access_key and the secret key' "$TMP/bf5.log" || fail "no-secret message"
echo "== 6. repair takes past sessions from flat files by itself"
sim_start "$TMP/sim6.log" --seed 7 --underlyings SPY --contracts 60 --clock 2026-11-04T15:00:00Z --speed 0 \
    --api-key e2e-secret-key
DB3=$(e2e_db optsnap_e2e_ff3) || fail "database"
set +e
DATABASE_URL=$DB3 OPTSNAP_FLATFILES_SECRET_KEY=e2e-flat-secret-0451 "$BIN" repair --lookback 3d --calendar us-options \
    --universe SPY --api-url "$SIM_URL" --flatfiles-url "$SIM_URL/flatfiles" --flatfiles-access-key e2e-access \
    --clock "2026-11-04T15:00:00Z@$(date +%s.%N)" --clock-speed 1 >"$TMP/rep6.log" 2>&1
RC=$?
set -e
# the window still open at the clock's now stays missing: exit 3
[ "$RC" = 0 ] || [ "$RC" = 3 ] || { tail -20 "$TMP/rep6.log"; fail "repair exited $RC"; }
grep -q 'repair: flat files: 2 units applied' "$TMP/rep6.log" || { grep 'repair:' "$TMP/rep6.log"; fail "repair did not use the flat files"; }
[ "$(grep -c 'msg="flat file read"' "$TMP/rep6.log")" = 2 ] || fail "flat file reads"
# 2026-11-02 and 2026-11-03, 14:30-21:00Z: every row (the close included) equals the truth
python3 "$HERE/check_backfill.py" "$DB3" "$SIM_URL" SPY:1793629800000000:1793653200000000 \
    SPY:1793716200000000:1793739600000000 --close --no-vwap || fail "repaired flat-file sessions differ from the truth"
echo "flatfiles_test: ok"
