#!/usr/bin/env bash
# Clock steps (issue 11, "the daemon trusts its own clock"): the daemon's wall
# clock is stepped 4 s back, then 4 s ahead (4 windows each way), by an
# LD_PRELOAD shim (tests/clockshim/clock_shim.c) that adds an offset read from
# a file; the simulator and PostgreSQL keep the true time. Then:
#   - the skew against the API's Date and the database's now() is logged both
#     ways, and the clocks agree again after each step;
#   - per underlying, windows are marked in the order they start: a window is
#     never marked after a later one (stepped back, nothing is swept again);
#   - check_truth.py with its default bound, the window's end: every covered
#     window holds each contract's state from inside the window, never from
#     before it (stepped ahead) nor from after it (swept again later);
#   - windows are covered again once the clock is back.
# Its power, measured: with --max-clock-skew 1h (no skew refusal) the same
# run fails check_truth (6 contract-windows marked from data 40 market
# seconds before them). The mock API sends no Date header, so the database
# clock (checked every stats_interval, 200 ms here) is the peer that sees it.
# Bounded: about 25 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
SHIM=${TEST_CLOCK_SHIM:?meson sets TEST_CLOCK_SHIM}
[ -f "$SHIM" ] || fail "no clock shim at $SHIM"
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
DB=$(e2e_db optsnap_e2e_h11_clock_step)
OFFSET=$E2E_TMP/offset_us
step() { echo "$1" >"$OFFSET.new" && mv "$OFFSET.new" "$OFFSET"; }
step 0
# the shim on itself: a process sees the offset, `date` 4 s back
real=$(date +%s)
ASAN_LINK="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
shifted=$(step -4000000; ASAN_OPTIONS=$ASAN_LINK CLOCK_SHIM_OFFSET_FILE=$OFFSET LD_PRELOAD=$SHIM date +%s; step 0)
[ $((real - shifted)) -ge 3 ] && [ $((real - shifted)) -le 5 ] || fail "the shim does not step the clock ($real vs $shifted)"
# market time runs 10x (windows of 10 market seconds, 1 s real) from a past
# anchor, so contracts change between a fetch and a window 4 s (40 market
# seconds) later; the daemon shares the simulator's clock
SPEED=10
sim_start "$E2E_TMP/sim.log" --underlyings SPY,QQQ --contracts 30 --always-open --api-key k \
    --clock 2026-11-02T15:00:00Z --speed $SPEED
CLOCK=$(sim_shared_clock)
# an ASan build refuses a preloaded library before its runtime unless told
DATABASE_URL=$DB OPTSNAP_API_KEY=k CLOCK_SHIM_OFFSET_FILE=$OFFSET LD_PRELOAD=$SHIM \
    ASAN_OPTIONS=$ASAN_LINK \
    e2e_spawn "$E2E_TMP/run.log" "$BIN" run --api-url "$SIM_URL" --universe SPY,QQQ --calendar always \
    --cadence 10s --clock "$CLOCK" --clock-speed $SPEED --listen "" --lease-ttl 0 --heal-lookback 0 --max-clock-skew 1s --stats-interval 200ms --run-for 60s
RUN=$E2E_LAST_PID
covered() { pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage WHERE source = 'live'"; }
E2E_WAIT=15 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c \"SELECT count(*) FROM ingest_coverage\") -ge 6 ]" ||
    fail "no windows covered before the steps: $(tail -5 "$E2E_TMP/run.log")"
step -4000000
sleep 4
step 0
sleep 4
step 4000000
sleep 4
step 0
sleep 3
back=$(sim_now_us)
# stepped ahead, it started windows up to 4 s beyond the true time: those are
# never swept again (they stay gaps, for repair); new ones come after them
sleep 5
before_stop=$(covered)
e2e_stop "$RUN" TERM 20
[ "$E2E_STOP_RC" = 0 ] || fail "run exited $E2E_STOP_RC: $(tail -5 "$E2E_TMP/run.log")"
grep -q 'msg="clock skew: windows are not marked covered.*skew_ms=[1-9]' "$E2E_TMP/run.log" ||
    fail "the step back was not seen (a peer ahead of us)"
grep -q 'msg="clock skew: windows are not marked covered.*skew_ms=-[1-9]' "$E2E_TMP/run.log" ||
    fail "the step ahead was not seen (a peer behind us)"
[ "$(grep -c 'msg="clocks agree again"' "$E2E_TMP/run.log")" -ge 2 ] || fail "the clocks never agreed again"
# marked in start order, per underlying (completed_at is the database's clock)
disorder=$(pg_scalar "$DB" "SELECT count(*) FROM (SELECT window_start, lag(window_start) OVER w AS prev
    FROM ingest_coverage WHERE source = 'live' WINDOW w AS (PARTITION BY underlying ORDER BY completed_at, window_start)) x
    WHERE prev IS NOT NULL AND window_start <= prev")
[ "$disorder" = 0 ] || fail "$disorder windows were marked after a later one: swept again after the step back"
after=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage WHERE source = 'live' AND window_start >= to_timestamp($back / 1e6)")
[ "$after" -ge 2 ] || fail "no window covered after the clock came back ($after)"
python3 "$HERE/check_truth.py" "$DB" "$SIM_URL" || fail "a covered window holds state from outside it"
# nothing is lost silently: every window left uncovered between the first and
# the last covered one is a gap `optsnap gaps` lists (for repair)
iso="'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
span=$(pg_scalar "$DB" "SELECT to_char(min(window_start) AT TIME ZONE 'UTC', $iso) || '|' ||
    to_char(max(window_end) AT TIME ZONE 'UTC', $iso) FROM ingest_coverage")
want=$(pg_scalar "$DB" "SELECT (extract(epoch FROM max(window_end) - min(window_start)) / 10)::int * 2 - count(*)
    FROM ingest_coverage")
[ "${want:-0}" -ge 4 ] || fail "only ${want:-0} windows left uncovered: the steps did not bite"
DATABASE_URL=$DB "$BIN" gaps --since "${span%%|*}" --until "${span##*|}" --underlying SPY,QQQ --cadence 10s \
    --calendar always --format json >"$E2E_TMP/gaps.json" || [ $? -eq 3 ] || fail "gaps failed"
got=$(python3 -c 'import json,sys; print(sum(g["windows"] for g in json.load(open(sys.argv[1]))["gaps"]))' "$E2E_TMP/gaps.json")
[ "$got" = "$want" ] || fail "gaps lists $got uncovered windows, the coverage table leaves $want"
echo "clock_step e2e: ok ($before_stop live windows, $after after the clock came back, $got uncovered and listed by gaps; steps -4 s and +4 s)"
