#!/usr/bin/env bash
# Chaos: `optsnap run` against the simulator with every HTTP fault switched on
# (429 + Retry-After, 5xx, slow, stalls, truncated and malformed bodies,
# resets, bad rows), on an accelerated clock. At seeded random moments
# (CHAOS_SEED, printed with every action) the daemon is killed with SIGKILL
# and restarted, or its database is cut off for a few seconds (connection
# limit 0 + its backends terminated). Then `optsnap repair` fills what the
# kills lost. Asserts: every window of the run is covered; every live row
# equals the simulator's truth and every covered live window is complete;
# every backfilled row equals the day-block truth; every bad row injected is
# in ingest_rejects; no duplicate keys; repair never touched a live row.
# Ends with one summary line (quoted by the README):
#   chaos: seed=S kills=K db_cutoffs=C faults_injected=F rows_checked=R windows=W result=ok
# The shared cluster is never restarted: only this test's database is cut off.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
SPEED=30
SEED=${CHAOS_SEED:-$(( $(date +%s) % 100000 ))}
CHAOS_SECONDS=${CHAOS_SECONDS:-36}
DBNAME=optsnap_e2e_chaos
export OPTSNAP_API_KEY=e2e-secret-key
RANDOM=$SEED # bash's generator: the same seed gives the same actions and moments
echo "chaos: seed=$SEED (re-run with CHAOS_SEED=$SEED)"

N_RUN=0
run_daemon() { # sets RUN_PID; every start logs to its own file
    N_RUN=$(( N_RUN + 1 ))
    DATABASE_URL=$DB e2e_spawn "$TMP/run$N_RUN.log" "$BIN" run \
        --api-url "$SIM_URL" --universe SPY,QQQ --calendar always --cadence 60s \
        --clock "$(sim_shared_clock)" --clock-speed "$SPEED" --page-limit 50 --batch-rows 100 \
        --db-connections 2 --http-concurrency 4 --listen "" --stats-interval 1s \
        --retry-max-backoff 1s --http-max-attempts 12 --http-timeout 2s --http-connect-timeout 1s \
        --lease-ttl 3s
    RUN_PID=$E2E_LAST_PID
}

faults() { curl -fsS -X POST "$SIM_URL/_sim/faults" --data "$1" >/dev/null; }

iso() { python3 -c "import datetime,sys; print(datetime.datetime.fromtimestamp(int(sys.argv[1])/1e6, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$1"; }

DB=$(e2e_db "$DBNAME") || fail "database"

sim_start "$TMP/sim.log" --seed "$SEED" --underlyings SPY,QQQ \
    --contracts 120 --clock 2026-11-02T15:00:00Z --speed "$SPEED" --always-open
SIM_CLOCK=$(sim_clock_us_at_real)

# modest rates: about one request in five meets a fault; the stall and slow
# answers stay under the daemon's 2 s attempt timeout or trip it. The
# simulator counts a bad row as injected even when the same answer's body is
# then truncated, malformed or reset (the row never reached the daemon), so
# the two kinds alternate: each chaos step picks one profile (seeded).
COMMON="429-rate=0.05&retry-after=1&5xx-rate=0.05&slow-rate=0.03&slow-ms=300"
BODY="truncate-rate=0.04&malformed-rate=0.04&reset-rate=0.04&stall-rate=0.01&stall-ms=3000&bad-row-rate=0"
ROWS="truncate-rate=0&malformed-rate=0&reset-rate=0&stall-rate=0&bad-row-rate=0.1"
PROFILE=$BODY
faults "$COMMON&$PROFILE"

run_daemon
kills=0
cutoffs=0
deadline=$(( $(date +%s) + CHAOS_SECONDS ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    if [ $(( RANDOM % 2 )) = 0 ]; then PROFILE=$BODY; pname=body; else PROFILE=$ROWS; pname=bad-rows; fi
    faults "$PROFILE"
    pause=$(( 2 + RANDOM % 4 ))
    echo "chaos: faults profile $pname for ${pause}s"
    sleep "$pause"
    if [ $(( RANDOM % 2 )) = 0 ]; then
        # the killed sweep's bad rows may be fetched and not yet committed:
        # a kill loses them along with the window (which repair fills from
        # bars, without bad rows), so none is injected in the last 3 s
        faults "$BODY"
        sleep 3
        echo "chaos: t+$(( CHAOS_SECONDS - deadline + $(date +%s) ))s kill -9 daemon pid=$RUN_PID sim_now_us=$(sim_now_us)"
        kill -9 "$RUN_PID"
        e2e_stop "$RUN_PID" KILL 5
        kills=$(( kills + 1 ))
        down=$(( RANDOM % 3 ))
        sleep "$down"
        faults "$PROFILE"
        run_daemon
        echo "chaos: restarted after ${down}s pid=$RUN_PID"
    else
        down=$(( 2 + RANDOM % 3 ))
        echo "chaos: t+$(( CHAOS_SECONDS - deadline + $(date +%s) ))s database cut off for ${down}s sim_now_us=$(sim_now_us)"
        psql -X -q "$DB" -c "ALTER DATABASE $DBNAME CONNECTION LIMIT 0" \
            -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DBNAME' AND pid <> pg_backend_pid()" >/dev/null
        # Behind a transaction pooler (scripts/test.sh --pooler) idle server
        # backends dying is hidden from the daemon by design; the cut-off it
        # sees there is the pooler dropping its clients and holding new ones
        # (pgbouncer's KILL pauses the database until RESUME).
        pooler_admin=""
        [ -n "${OPTSNAP_TEST_POOLER_URL:-}" ] && pooler_admin="${OPTSNAP_TEST_POOLER_URL%/*}/pgbouncer"
        [ -z "$pooler_admin" ] || psql -X -q "$pooler_admin" -c "KILL $DBNAME" >/dev/null
        sleep "$down"
        [ -z "$pooler_admin" ] || psql -X -q "$pooler_admin" -c "RESUME $DBNAME" >/dev/null
        psql -X -q "$OPTSNAP_TEST_PGURL" -c "ALTER DATABASE $DBNAME CONNECTION LIMIT -1" >/dev/null
        cutoffs=$(( cutoffs + 1 ))
        kill -0 "$RUN_PID" 2>/dev/null || { tail -20 "$TMP/run$N_RUN.log"; fail "the daemon died during a database cut-off"; }
    fi
done
# a last stretch without chaos so the end of the run is live-covered
sleep 4
e2e_stop "$RUN_PID" TERM 60
[ "$E2E_STOP_RC" = 0 ] || { tail -30 "$TMP/run$N_RUN.log"; fail "final SIGTERM: exit $E2E_STOP_RC"; }
grep -q 'msg="drained: everything fetched is committed"' "$TMP/run$N_RUN.log" || fail "no drain on SIGTERM"
if [ "$cutoffs" -gt 0 ]; then
    grep -q 'msg="database connection lost"' "$TMP"/run*.log || fail "no database cut-off was noticed"
fi
stats=$(curl -fsS "$SIM_URL/_sim/stats")
echo "simulator: $stats"
injected=$(python3 -c 'import json,sys; print(sum(int(v) for v in json.loads(sys.argv[1])["faults"].values()))' "$stats")
[ "$injected" -gt 0 ] || fail "no fault was injected: the test proves nothing"
for f in 429 5xx truncate malformed reset; do
    grep -q "\"$f" <<<"$stats" || echo "note: no counter named $f in /_sim/stats"
done

echo "== live rows against the truth (rejects included)"
faults "clear=1"
live_out=$(python3 "$HERE/check_truth.py" "$DB" "$SIM_URL" --clock "$SIM_CLOCK" --speed "$SPEED" --rejects --allow-overrun) ||
    { echo "$live_out"; curl -fsS "$SIM_URL/_sim/injected"; echo; grep -h 'reject\|connection lost\|started\|stopped' "$TMP"/run*.log | cut -c1-300 | tail -40
      [ -n "${CHAOS_KEEP:-}" ] && cp -r "$TMP" "$CHAOS_KEEP"
      fail "live rows differ from the simulator's truth or a bad row is not in ingest_rejects"; }
echo "$live_out"
live_rows=$(sed -n 's/.*truth check: rows=\([0-9]*\).*/\1/p' <<<"$live_out")
LIVE_BEFORE=$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE source = 'live'")

echo "== repair what the kills lost (faults back on, except malformed bodies)"
# malformed-rate 0: a malformed aggregates page fails its unit in repair
# (it is not fetched again, unlike a malformed snapshot page in run)
faults "$COMMON&$BODY&malformed-rate=0"
FIRST=$(pg_scalar "$DB" "SELECT (extract(epoch FROM min(window_start)) * 1000000)::int8 FROM ingest_coverage")
LAST_END=$(pg_scalar "$DB" "SELECT (extract(epoch FROM max(window_end)) * 1000000)::int8 FROM ingest_coverage")
G=(--calendar always --cadence 60s --universe SPY,QQQ)
set +e
DATABASE_URL=$DB "$BIN" gaps "${G[@]}" --since "$(iso "$FIRST")" --until "$(iso "$LAST_END")" --format json >"$TMP/gaps.json"
rc=$?
set -e
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "gaps exited $rc"
RANGES=$(python3 -c '
import json, sys, datetime
d = json.load(open(sys.argv[1]))
ts = lambda t: int(datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000
print(" ".join("%s:%d:%d" % (g["underlying"], ts(g["start"]), ts(g["end"])) for g in d["gaps"]))' "$TMP/gaps.json")
echo "gaps before repair: ${RANGES:-none}"
if [ "$kills" -gt 0 ] && [ -z "$RANGES" ]; then
    echo "note: the kills lost no window"
fi
LOOKBACK=$(( (LAST_END - FIRST) / 1000000 ))s
DATABASE_URL=$DB "$BIN" repair --api-url "$SIM_URL" "${G[@]}" --until "$(iso "$LAST_END")" --lookback "$LOOKBACK" \
    --http-max-attempts 12 --http-timeout 5s --retry-max-backoff 1s >"$TMP/repair.out" 2>"$TMP/repair.log" ||
    { cat "$TMP/repair.out"; tail -20 "$TMP/repair.log"; fail "repair did not exit 0"; }
cat "$TMP/repair.out"
faults "clear=1"
bf_rows=0
if [ -n "$RANGES" ]; then
    # shellcheck disable=SC2086
    bf_out=$(python3 "$HERE/check_backfill.py" "$DB" "$SIM_URL" $RANGES) ||
        { echo "$bf_out"; fail "backfilled rows differ from the truth"; }
    echo "$bf_out"
    bf_rows=$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE source = 'backfill'")
fi

echo "== every window covered, no duplicate, live rows untouched"
DATABASE_URL=$DB "$BIN" gaps "${G[@]}" --since "$(iso "$FIRST")" --until "$(iso "$LAST_END")" >"$TMP/gaps2.out" ||
    { cat "$TMP/gaps2.out"; fail "windows still uncovered after repair"; }
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE source = 'live'")" = "$LIVE_BEFORE" ] ||
    fail "repair changed the live rows"
dups=$(pg_scalar "$DB" "SELECT count(*) FROM (SELECT ticker, last_updated FROM option_snapshots GROUP BY 1, 2 HAVING count(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups duplicate keys"
cov_dups=$(pg_scalar "$DB" "SELECT count(*) FROM (SELECT underlying, window_start FROM ingest_coverage GROUP BY 1, 2 HAVING count(*) > 1) d")
[ "$cov_dups" = 0 ] || fail "$cov_dups windows covered twice"
windows=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage")
expected_windows=$(( 2 * (LAST_END - FIRST) / 60000000 ))
[ "$windows" = "$expected_windows" ] || fail "$windows windows covered, expected $expected_windows"
e2e_stop "$SIM_PID" TERM 10
echo "chaos: seed=$SEED kills=$kills db_cutoffs=$cutoffs faults_injected=$injected rows_checked=$(( live_rows + bf_rows )) windows=$windows result=ok"
