#!/usr/bin/env bash
# End to end: `optsnap backfill` and `optsnap repair` against the simulator.
#  1. live run, daemon stopped for a few windows, live run again: `gaps` lists
#     exactly the stopped windows; `repair` fills them; every backfilled row
#     equals the simulator's day-block truth exactly and no bar is missing;
#     `gaps` is then empty and a second `repair` does nothing;
#  2. kill -9 of a backfill half-way, re-run: it does only the missing units,
#     the result is complete, no duplicate keys;
#  3. two concurrent `repair` runs: each underlying filled once (the other run
#     skips it because of the lease), same rows as one run;
#  4. us-options calendar: an early close (2025-11-28, 13:00 ET) gets rows and
#     windows only until the close; a holiday (2025-11-27) is not a gap;
#  5. a backfill whose --to is in the future marks no window that has not
#     ended and stores no row keyed after its now; a daemon that then fails
#     over those windows leaves them uncovered, and `gaps` lists every one.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
SPEED=30
export OPTSNAP_API_KEY=e2e-secret-key

start_sim() { # start_sim NAME [extra flags...]: sets SIM_URL, SIM_PID
    local name=$1; shift
    sim_start "$TMP/$name.log" --seed 7 --underlyings SPY,QQQ "$@"
}

run_daemon() { # run_daemon DB LOG [flags...]: sets RUN_PID
    local db=$1 log=$2; shift 2
    DATABASE_URL=$db e2e_spawn "$log" "$BIN" run \
        --api-url "$SIM_URL" --universe SPY,QQQ --calendar always --cadence 60s \
        --clock "$(sim_shared_clock)" --clock-speed "$SPEED" --page-limit 50 --batch-rows 100 \
        --db-connections 2 --http-concurrency 4 --listen "" --retry-max-backoff 2s "$@"
    RUN_PID=$E2E_LAST_PID
}

iso() { python3 -c "import datetime,sys; print(datetime.datetime.fromtimestamp(int(sys.argv[1])/1e6, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$1"; }

echo "== 1. live, stopped, live: gaps, repair, truth"
DB1=$(e2e_db optsnap_e2e_bf1) || fail "database"
start_sim sim1 --contracts 120 --clock 2026-11-02T15:00:00Z --speed "$SPEED" --always-open
run_daemon "$DB1" "$TMP/run1.log" --max-sweeps 3
e2e_wait_exit "$RUN_PID" 60
[ "$E2E_STOP_RC" = 0 ] || { tail -20 "$TMP/run1.log"; fail "first run exited $E2E_STOP_RC"; }
sleep 8 # the daemon is down for about four simulated minutes
run_daemon "$DB1" "$TMP/run2.log" --max-sweeps 3
e2e_wait_exit "$RUN_PID" 60
[ "$E2E_STOP_RC" = 0 ] || { tail -20 "$TMP/run2.log"; fail "second run exited $E2E_STOP_RC"; }
FIRST=$(pg_scalar "$DB1" "SELECT (extract(epoch FROM min(window_start)) * 1000000)::int8 FROM ingest_coverage")
LAST_END=$(pg_scalar "$DB1" "SELECT (extract(epoch FROM max(window_end)) * 1000000)::int8 FROM ingest_coverage")
# the stopped windows, computed from what the live runs covered
EXPECTED=$(psql -X -qAt "$DB1" -c "
  SELECT string_agg(u || ' ' || w, ',' ORDER BY u, w) FROM (
    SELECT u, (extract(epoch FROM g) * 1000000)::int8 AS w
      FROM unnest(ARRAY['QQQ','SPY']) AS u,
           generate_series(to_timestamp($FIRST / 1e6), to_timestamp($LAST_END / 1e6) - interval '60 s', interval '60 s') AS g
     WHERE NOT EXISTS (SELECT 1 FROM ingest_coverage c WHERE c.underlying = u AND c.window_start = g)) m")
[ -n "$EXPECTED" ] || fail "the daemon was not stopped for any window"
echo "stopped windows: $EXPECTED"
LIVE_BEFORE=$(pg_scalar "$DB1" "SELECT count(*) FROM option_snapshots WHERE source = 'live'")
G=(--calendar always --cadence 60s --universe SPY,QQQ)
set +e
DATABASE_URL=$DB1 "$BIN" gaps "${G[@]}" --since "$(iso "$FIRST")" --until "$(iso "$LAST_END")" --format json >"$TMP/gaps1.json"
rc=$?
set -e
[ "$rc" = 3 ] || fail "gaps exited $rc, expected 3"
GOT=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
import datetime
ws = []
for g in d["gaps"]:
    s = int(datetime.datetime.strptime(g["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000
    ws += [(g["underlying"], s + i * 60000000) for i in range(g["windows"])]
print(",".join(f"{u} {w}" for u, w in sorted(ws)))' "$TMP/gaps1.json")
[ "$GOT" = "$EXPECTED" ] || fail "gaps reported $GOT, expected $EXPECTED"
RANGES=$(python3 -c '
import json, sys, datetime
d = json.load(open(sys.argv[1]))
ts = lambda t: int(datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000
print(" ".join("%s:%d:%d" % (g["underlying"], ts(g["start"]), ts(g["end"])) for g in d["gaps"]))' "$TMP/gaps1.json")
LOOKBACK=$(( (LAST_END - FIRST) / 1000000 ))s
R=(--api-url "$SIM_URL" "${G[@]}" --until "$(iso "$LAST_END")" --lookback "$LOOKBACK")
# the plan first: printed, exit 0, nothing fetched or written; most contracts did not trade in the gap
COV_BEFORE=$(pg_scalar "$DB1" "SELECT count(*) FROM ingest_coverage")
ROWS_BEFORE=$(pg_scalar "$DB1" "SELECT count(*) FROM option_snapshots")
DATABASE_URL=$DB1 "$BIN" repair "${R[@]}" --dry-run >"$TMP/plan1.out" 2>"$TMP/plan1.log" ||
    { cat "$TMP/plan1.out"; tail -20 "$TMP/plan1.log"; fail "repair --dry-run did not exit 0"; }
cat "$TMP/plan1.out"
PLAN_SKIPPED=$(sed -n 's/^plan: .*contracts skipped \([0-9]*\),.*/\1/p' "$TMP/plan1.out")
PLAN_ASKED=$(sed -n 's/^plan: .*contracts asked \([0-9]*\),.*/\1/p' "$TMP/plan1.out")
[ -n "$PLAN_SKIPPED" ] && [ "$PLAN_SKIPPED" -gt 0 ] || fail "the plan skips no contract"
[ "$(pg_scalar "$DB1" "SELECT count(*) FROM ingest_coverage")" = "$COV_BEFORE" ] &&
  [ "$(pg_scalar "$DB1" "SELECT count(*) FROM option_snapshots")" = "$ROWS_BEFORE" ] || fail "--dry-run wrote"
DATABASE_URL=$DB1 "$BIN" repair "${R[@]}" >"$TMP/repair1.out" 2>"$TMP/repair1.log" ||
    { cat "$TMP/repair1.out"; tail -20 "$TMP/repair1.log"; fail "repair did not exit 0"; }
cat "$TMP/repair1.out"
# the run skipped what the plan skipped (the listing may add contracts to ask, never to skip)
grep -q "^repair: contracts asked [0-9]*, skipped $PLAN_SKIPPED " "$TMP/repair1.out" ||
    fail "repair skipped other contracts than its plan ($PLAN_SKIPPED, asked $PLAN_ASKED)"
grep -q 'msg="backfill progress"' "$TMP/repair1.log" || fail "no logfmt progress line when stderr is not a terminal"
# shellcheck disable=SC2086
python3 "$HERE/check_backfill.py" "$DB1" "$SIM_URL" $RANGES || fail "backfilled rows differ from the truth"
DATABASE_URL=$DB1 "$BIN" gaps "${G[@]}" --since "$(iso "$FIRST")" --until "$(iso "$LAST_END")" >/dev/null ||
    fail "gaps still reported after repair"
[ "$(pg_scalar "$DB1" "SELECT count(*) FROM option_snapshots WHERE source = 'live'")" = "$LIVE_BEFORE" ] ||
    fail "a live row was overwritten"
[ "$(pg_scalar "$DB1" "SELECT count(*) FROM ingest_coverage WHERE source = 'backfill'")" = \
  "$(echo "$EXPECTED" | tr ',' '\n' | wc -l)" ] || fail "backfill marked other windows than the gaps"
DATABASE_URL=$DB1 "$BIN" repair "${R[@]}" >"$TMP/repair2.out" 2>"$TMP/repair2.log" || fail "second repair did not exit 0"
grep -q 'no gaps' "$TMP/repair2.out" || fail "second repair did something: $(cat "$TMP/repair2.out")"
e2e_stop "$SIM_PID" TERM 10

echo "== 2. kill -9 half-way, re-run"
start_sim sim2 --contracts 600 --clock 2026-11-20T15:00:00Z
B=(--api-url "$SIM_URL" --calendar us-options --cadence 60s --universe SPY,QQQ)
DB2=$(e2e_db optsnap_e2e_bf2) || fail "database"
DATABASE_URL=$DB2 e2e_spawn "$TMP/bf-killed.log" "$BIN" backfill "${B[@]}" --from 2026-11-02 --to 2026-11-07
BF_PID=$E2E_LAST_PID
E2E_WAIT=60 wait_for grep -q 'msg="unit filled"' "$TMP/bf-killed.log" || fail "no unit filled"
kill -9 "$BF_PID"
e2e_stop "$BF_PID" KILL 5
grep -q '^backfill: ' "$TMP/bf-killed.log" && fail "the backfill had finished before the kill: the test proves nothing"
partial=$(pg_scalar "$DB2" "SELECT count(*) FROM ingest_coverage")
echo "covered windows at the kill: $partial of 3900"
[ "$partial" -lt 3900 ] || fail "everything was covered before the kill"
start=$(date +%s.%N)
DATABASE_URL=$DB2 "$BIN" backfill "${B[@]}" --from 2026-11-02 --to 2026-11-07 >"$TMP/bf2.out" 2>"$TMP/bf2.log" ||
    { cat "$TMP/bf2.out"; tail -20 "$TMP/bf2.log"; fail "re-run did not exit 0"; }
cat "$TMP/bf2.out"
grep -Eq '[1-9][0-9]* already covered' "$TMP/bf2.out" || fail "the re-run did not skip the units already filled"
grep -q 'msg="took over the lease of a process that died on this host"' "$TMP/bf2.log" ||
    fail "the dead backfill's leases were not taken over"
[ "$(pg_scalar "$DB2" "SELECT count(*) FROM ingest_coverage WHERE source = 'backfill'")" = 3900 ] ||
    fail "coverage incomplete (expected 2 underlyings x 5 sessions x 390 windows)"
dups=$(pg_scalar "$DB2" "SELECT count(*) FROM (SELECT ticker, last_updated FROM option_snapshots GROUP BY 1, 2 HAVING count(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups duplicate keys"
ROWS2=$(pg_scalar "$DB2" "SELECT count(*) FROM option_snapshots")
# 2026-11-02..06 lie outside the days migrate made: backfill made them, one day at a time
[ "$ROWS2" -gt 0 ] || fail "no rows backfilled"
[ "$(pg_scalar "$DB2" "SELECT count(*) FROM option_snapshots_default")" = 0 ] ||
    fail "backfilled rows landed in the DEFAULT partition"
[ "$(pg_scalar "$DB2" "SELECT count(*) FROM pg_class WHERE relname IN ('option_snapshots_p20261102','option_snapshots_p20261103','option_snapshots_p20261104','option_snapshots_p20261105','option_snapshots_p20261106')")" = 5 ] ||
    fail "the backfilled days have no partitions of their own"
echo "rows after the re-run: $ROWS2"

echo "== 3. two concurrent repairs"
DB3=$(e2e_db optsnap_e2e_bf3) || fail "database"
RP=("${B[@]}" --until 2026-11-07T00:00:00Z --lookback 5d)
DATABASE_URL=$DB3 "$BIN" repair "${RP[@]}" >"$TMP/rA.out" 2>"$TMP/rA.log" &
PA=$!
DATABASE_URL=$DB3 "$BIN" repair "${RP[@]}" >"$TMP/rB.out" 2>"$TMP/rB.log" &
PB=$!
rcA=0; rcB=0
wait "$PA" || rcA=$?
wait "$PB" || rcB=$?
cat "$TMP/rA.out" "$TMP/rB.out"
for rc in "$rcA" "$rcB"; do
    [ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "a concurrent repair exited $rc"
done
grep -h 'level=error' "$TMP/rA.log" "$TMP/rB.log" && fail "errors in the concurrent repairs"
filled=$(grep -h 'msg="unit filled"' "$TMP/rA.log" "$TMP/rB.log" | sed 's/.*underlying=\([A-Z]*\) from=\([^ ]*\).*/\1 \2/' | sort)
[ "$(echo "$filled" | wc -l)" = 10 ] || fail "expected 10 units filled in all, got: $filled"
[ "$(echo "$filled" | uniq -d | wc -l)" = 0 ] || fail "a unit was filled twice: $filled"
for u in SPY QQQ; do
    n=$(grep -l "msg=\"unit filled\" underlying=$u " "$TMP/rA.log" "$TMP/rB.log" | wc -l)
    [ "$n" = 1 ] || fail "$u was worked by $n processes"
done
grep -q 'skipped: lease held by backfill:' "$TMP/rA.out" "$TMP/rB.out" ||
    echo "note: the runs did not overlap (one finished first): no lease skip seen"
[ "$(pg_scalar "$DB3" "SELECT count(*) FROM option_snapshots")" = "$ROWS2" ] || fail "rows differ from a single run"
DATABASE_URL=$DB3 "$BIN" repair "${RP[@]}" >"$TMP/rC.out" 2>/dev/null || fail "gaps left after the concurrent repairs"
grep -q 'no gaps' "$TMP/rC.out" || fail "a third repair found work"

echo "== 4. us-options: early close and holiday"
DB4=$(e2e_db optsnap_e2e_bf4) || fail "database"
DATABASE_URL=$DB4 "$BIN" backfill "${B[@]}" --underlying SPY --from 2025-11-27 --to 2025-11-29 >"$TMP/bf4.out" 2>"$TMP/bf4.log" ||
    { cat "$TMP/bf4.out"; tail -20 "$TMP/bf4.log"; fail "early-close backfill did not exit 0"; }
cat "$TMP/bf4.out"
grep -q '^backfill: 1 unit:' "$TMP/bf4.out" || fail "expected one unit (the holiday has no session)"
[ "$(pg_scalar "$DB4" "SELECT count(*) FROM option_snapshots WHERE last_updated > '2025-11-28T18:00:00Z' OR last_updated < '2025-11-28T14:30:00Z'")" = 0 ] ||
    fail "rows outside the early-close session"
[ "$(pg_scalar "$DB4" "SELECT count(*) FROM option_snapshots_default")" = 0 ] &&
  [ "$(pg_scalar "$DB4" "SELECT count(*) FROM option_snapshots_p20251128")" -gt 0 ] ||
    fail "the 2025-11-28 rows are not in their day partition"
[ "$(pg_scalar "$DB4" "SELECT count(*) || ' ' || min(window_start AT TIME ZONE 'UTC') || ' ' || max(window_end AT TIME ZONE 'UTC') FROM ingest_coverage")" = \
  "210 2025-11-28 14:30:00 2025-11-28 18:00:00" ] || fail "coverage is not exactly 14:30-18:00Z"
F4=$(( $(date -d 2025-11-28T14:30:00Z +%s) * 1000000 ))
T4=$(( $(date -d 2025-11-28T18:00:00Z +%s) * 1000000 ))
python3 "$HERE/check_backfill.py" "$DB4" "$SIM_URL" "SPY:$F4:$T4" --close || fail "early-close rows differ from the truth"
# the chain as of 16:00Z equals the truth's day blocks at that time
DATABASE_URL=$DB4 "$BIN" chain SPY --at 2025-11-28T16:00:00Z --format csv >"$TMP/chain4.csv" ||
    fail "optsnap chain did not exit 0"
python3 "$HERE/check_chain.py" "$DB4" "$SIM_URL" SPY "$(( $(date -d 2025-11-28T16:00:00Z +%s) * 1000000 ))" "$TMP/chain4.csv" ||
    fail "the chain at 16:00Z differs from the truth"
DATABASE_URL=$DB4 "$BIN" chain SPY --at 2025-11-28T16:00:00Z --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["underlying"]=="SPY" and len(d["rows"])>0' ||
    fail "optsnap chain --format json is not the documented shape"
DATABASE_URL=$DB4 "$BIN" gaps --calendar us-options --cadence 60s --universe SPY --since 2025-11-27 --until 2025-11-29 >/dev/null ||
    fail "the holiday or the time after the early close counts as a gap"
e2e_stop "$SIM_PID" TERM 10

echo "== 5. a backfill into the future"
DB5=$(e2e_db optsnap_e2e_bf5) || fail "database"
start_sim sim5 --contracts 40 --clock 2026-11-02T15:00:00Z --speed "$SPEED" --always-open --api-key k5
NOW5=$(sim_now_us)
F5=$(( (NOW5 / 60000000 - 4) * 60000000 )); T5=$(( F5 + 8 * 60000000 )) # 4 minutes back, 4 ahead
C5=(--api-url "$SIM_URL" --calendar always --cadence 60s --universe SPY --clock "$(sim_shared_clock)" --clock-speed "$SPEED")
DATABASE_URL=$DB5 OPTSNAP_API_KEY=k5 "$BIN" backfill "${C5[@]}" --from "$(iso "$F5")" --to "$(iso "$T5")" >"$TMP/bf5.out" 2>"$TMP/bf5.log" ||
    { cat "$TMP/bf5.out"; tail -20 "$TMP/bf5.log"; fail "the backfill into the future did not exit 0"; }
END5=$(sim_now_us)
cat "$TMP/bf5.out"
[ "$(pg_scalar "$DB5" "SELECT count(*) FROM ingest_coverage")" -gt 0 ] || fail "the past minutes were not backfilled"
[ "$(pg_scalar "$DB5" "SELECT count(*) FROM ingest_coverage WHERE window_end > to_timestamp($END5 / 1e6)")" = 0 ] ||
    fail "a window that had not ended was marked covered"
[ "$(pg_scalar "$DB5" "SELECT count(*) FROM option_snapshots WHERE last_updated > to_timestamp($END5 / 1e6)")" = 0 ] ||
    fail "a row keyed after the backfill's now (a bar still in progress) was stored"
# a daemon whose every request fails (a key the API does not know) sweeps the rest
DATABASE_URL=$DB5 OPTSNAP_API_KEY=not-the-key e2e_spawn "$TMP/run5.log" "$BIN" run "${C5[@]}" --listen "" --max-sweeps 3
e2e_wait_exit "$E2E_LAST_PID" 60
grep -q 'Unknown API Key' "$TMP/run5.log" || fail "the failing daemon's requests did not fail"
while [ "$(sim_now_us)" -lt "$T5" ]; do sleep 0.5; done # the range has ended
set +e
DATABASE_URL=$DB5 "$BIN" gaps --calendar always --cadence 60s --universe SPY --clock "$(sim_shared_clock)" \
    --clock-speed "$SPEED" --since "$(iso "$F5")" --until "$(iso "$T5")" --format json >"$TMP/gaps5.json"
rc=$?
set -e
[ "$rc" = 3 ] || fail "gaps exited $rc, expected 3 (windows missing)"
python3 - "$TMP/gaps5.json" "$DB5" "$F5" "$T5" <<'PY' || fail "gaps does not list exactly the windows left uncovered"
import datetime, json, subprocess, sys
d = json.load(open(sys.argv[1]))
f5, t5 = int(sys.argv[3]), int(sys.argv[4])
listed = set()
for g in d["gaps"]:
    s = int(datetime.datetime.strptime(g["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000
    listed |= {s + i * 60000000 for i in range(g["windows"])}
covered = set(int(x) for x in subprocess.run(["psql", "-X", "-qAt", sys.argv[2], "-c",
              "SELECT (extract(epoch FROM window_start) * 1000000)::int8 FROM ingest_coverage"],
              capture_output=True, text=True, check=True).stdout.split())
every = set(range(f5, t5, 60000000))
print(f"range windows {len(every)}, covered by the backfill {len(covered)}, listed by gaps {len(listed)}")
sys.exit(0 if listed == every - covered and listed and not (covered - every) else 1)
PY
e2e_stop "$SIM_PID" TERM 10
echo "backfill e2e: ok"
