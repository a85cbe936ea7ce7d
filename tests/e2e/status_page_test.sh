#!/usr/bin/env bash
# The status page in a real browser: run live, stop for a few windows, run again
# with the listener; headless Chromium loads `/`, takes a screenshot; the
# timeline shows exactly the gap that was made (DOM: a "missing" rect with the
# gap's bounds; pixels: red between green on one timeline row).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3 chromium
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
SPEED=1800 # half an hour of market time per second: hour-long windows every 2 s
DB=$(e2e_db optsnap_e2e_status) || fail "database"
sim_start "$TMP/sim.log" --underlyings SPY --contracts 40 --clock 2026-11-02T15:00:00Z --speed "$SPEED" --always-open
run() { # run LOG [flags]; no self-healing: the page must show the stop's gap as missing
    local log=$1; shift
    DATABASE_URL=$DB OPTSNAP_API_KEY=k e2e_spawn "$log" "$BIN" run --api-url "$SIM_URL" \
        --universe SPY --calendar always --cadence 3600s --clock "$(sim_shared_clock)" --clock-speed "$SPEED" \
        --heal-lookback 0 "$@"
}
run "$TMP/run1.log" --max-sweeps 2 --listen ""
RUN1=$E2E_LAST_PID
for _ in $(seq 300); do kill -0 "$RUN1" 2>/dev/null || break; sleep 0.1; done
e2e_stop "$RUN1" TERM 5
sleep 8 # about four hour-long windows with nobody sweeping: wide enough to see on a 24 h timeline
LPORT=$(free_port)
run "$TMP/run2.log" --listen "127.0.0.1:$LPORT" --stats-interval 1s
RUN2=$E2E_LAST_PID
wait_for_port "$LPORT" 20 || { tail -5 "$TMP/run2.log"; fail "listener"; }
# the gap: between the last window of the first run and the first of the second
E2E_WAIT=30 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c \"SELECT count(*) FROM ingest_coverage WHERE completed_at > now() - interval '20 seconds' AND window_start > (SELECT min(window_start) + interval '3 hours' FROM ingest_coverage)\") -ge 2 ]" \
    || fail "the second run covered nothing"
IFS='|' read -r gap_from gap_to < <(psql -X -Atq -F '|' "$DB" -c "
    SELECT to_char(a.window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
           to_char(min(b.window_start) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
    FROM ingest_coverage a JOIN ingest_coverage b ON b.window_start > a.window_end
    WHERE NOT EXISTS (SELECT 1 FROM ingest_coverage c WHERE c.window_start = a.window_end)
    GROUP BY a.window_end ORDER BY a.window_end LIMIT 1")
[ -n "${gap_from:-}" ] || fail "no gap in ingest_coverage"
echo "gap made: $gap_from .. $gap_to"
sleep 4 # the timeline refreshes every 3 s here
curl -fsS "http://127.0.0.1:$LPORT/" >"$TMP/page.html" || fail "status page"
grep -qF "<title>missing $gap_from – $gap_to UTC</title>" "$TMP/page.html" \
    || { grep -o '<title>[a-z]* [^<]*</title>' "$TMP/page.html" | tail -5; fail "the timeline has no missing span $gap_from – $gap_to"; }
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$TMP/chromium" --window-size=1280,1200 \
    --screenshot="$TMP/status.png" "http://127.0.0.1:$LPORT/" >"$TMP/chromium.log" 2>&1 || { tail "$TMP/chromium.log"; fail "chromium"; }
[ -s "$TMP/status.png" ] || fail "no screenshot"
python3 "$HERE/png_pixels.py" "$TMP/status.png" || fail "the screenshot does not show a gap between covered spans"
[ -n "${KEEP_STATUS_SCREENSHOT:-}" ] && cp "$TMP/status.png" "$KEEP_STATUS_SCREENSHOT"
e2e_stop "$RUN2" TERM 30
[ "$E2E_STOP_RC" = 0 ] || fail "run exited $E2E_STOP_RC"
echo "status page e2e: ok"
