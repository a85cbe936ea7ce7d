#!/usr/bin/env bash
# The engine under every command, end to end against the simulator and a
# real PostgreSQL:
#  1. SIGTERM in the middle of a backfill drains like run: every unit whose
#     mark committed is whole (rows equal the truth), every other unit has no
#     window covered and `gaps` lists it; exit 3 (partial), never 1.
#  2. No blocking call on the loop: with the lease statement of one
#     underlying held up by a lock, the other underlying's HTTP transfers keep
#     completing; once the lock goes, both finish.
#  3. The page cap (max_pages) for run and backfill: a fetch longer than the
#     cap stops there with one clear log line, its window stays uncovered.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
export OPTSNAP_API_KEY=e2e-secret-key

sim_stat() { curl -fsS "$SIM_URL/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "== 1. SIGTERM mid-backfill: drained, committed units whole, the rest uncovered"
sim_start "$TMP/sim1.log" --seed 11 --underlyings SPY,QQQ --contracts 600 --clock 2026-11-20T15:00:00Z
DB1=$(e2e_db optsnap_e2e_engine1) || fail "database"
B=(--api-url "$SIM_URL" --calendar us-options --cadence 60s --universe SPY,QQQ)
DATABASE_URL=$DB1 e2e_spawn "$TMP/bf1.log" "$BIN" backfill "${B[@]}" --from 2026-11-02 --to 2026-11-07
BF=$E2E_LAST_PID
E2E_WAIT=60 wait_for grep -q 'msg="unit filled"' "$TMP/bf1.log" || fail "no unit filled"
e2e_stop "$BF" TERM 30
rc=$E2E_STOP_RC
[ "$rc" = 3 ] || { tail -20 "$TMP/bf1.log"; fail "an interrupted backfill exited $rc, expected 3 (partial)"; }
grep -q 'msg="stopping: no new requests, draining' "$TMP/bf1.log" || fail "no drain on SIGTERM"
grep -q 'msg="drained: everything fetched is committed" command=backfill' "$TMP/bf1.log" || fail "the drain did not finish"
# per unit (underlying x session of 390 windows): all covered or none
psql -X -Atq "$DB1" -c "SELECT underlying, window_start::date, count(*) FROM ingest_coverage GROUP BY 1, 2 ORDER BY 1, 2" >"$TMP/units.txt"
cat "$TMP/units.txt"
whole=0
while IFS='|' read -r u d n; do
    [ "$n" = 390 ] || fail "unit $u $d is partly covered ($n of 390 windows)"
    whole=$((whole + 1))
    from=$(python3 -c "import datetime,sys; d=datetime.date.fromisoformat(sys.argv[1]); t=datetime.datetime(d.year,d.month,d.day,14,30,tzinfo=datetime.timezone.utc); print(int(t.timestamp()*1e6))" "$d")
    python3 "$HERE/check_backfill.py" "$DB1" "$SIM_URL" "$u:$from:$((from + 390 * 60000000))" --close >/dev/null ||
        fail "unit $u $d is covered but its rows differ from the truth"
done <"$TMP/units.txt"
[ "$whole" -ge 1 ] && [ "$whole" -lt 10 ] || fail "expected some but not all of the 10 units covered, got $whole"
DATABASE_URL=$DB1 "$BIN" gaps --calendar us-options --cadence 60s --universe SPY,QQQ \
    --since 2026-11-02T00:00:00Z --until 2026-11-07T00:00:00Z --format json >"$TMP/gaps1.json" && fail "gaps found nothing missing"
missing=$(python3 -c "import json,sys; print(sum(g['windows'] for g in json.load(open(sys.argv[1]))['gaps']))" "$TMP/gaps1.json")
[ "$missing" = $(( (10 - whole) * 390 )) ] || fail "gaps lists $missing windows, expected $(( (10 - whole) * 390 ))"
echo "drained: $whole of 10 units whole, $missing windows listed by gaps"
e2e_stop "$SIM_PID" TERM 10

echo "== 2. a statement held up by a lock: HTTP transfers keep completing"
sim_start "$TMP/sim2.log" --seed 12 --underlyings SPY,QQQ --contracts 400 --clock 2026-11-20T15:00:00Z
DB2=$(e2e_db optsnap_e2e_engine2) || fail "database"
# QQQ's lease row exists, expired, and a transaction holds it locked: QQQ's
# lease statement waits on the lock (its connection is busy), SPY's unit runs
psql -X -q "$DB2" -c "INSERT INTO ingest_leases (kind, underlying, holder, expires_at) VALUES ('history', 'QQQ', 'nobody', now() - interval '1 hour')"
mkfifo "$TMP/hold"
( psql -X -q "$DB2" -v ON_ERROR_STOP=1 <"$TMP/hold" >"$TMP/hold.log" 2>&1 ) &
HOLD_PID=$!
exec 7>"$TMP/hold"
printf 'BEGIN;\nSELECT 1 FROM ingest_leases WHERE underlying = %s FOR UPDATE;\n' "'QQQ'" >&7
E2E_WAIT=10 wait_for bash -c "[ \$(psql -X -Atq '$DB2' -c \"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'ingest_leases' AND l.mode = 'RowShareLock'\") -ge 1 ]" ||
    fail "the lock was not taken"
aggs0=$(sim_stat aggs)
DATABASE_URL=$DB2 e2e_spawn "$TMP/bf2.log" "$BIN" backfill --api-url "$SIM_URL" --calendar us-options --cadence 60s \
    --universe QQQ,SPY --from 2026-11-02 --to 2026-11-03 --backfill-db-connections 2 --http-rate 60
# http_rate: SPY's ~720 requests take 12 s, so they are still going while the
# wait is observed (unthrottled, a slow sanitizer build once saw SPY finish first)
BF=$E2E_LAST_PID
E2E_WAIT=20 wait_for bash -c "psql -X -Atq '$DB2' -c \"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'optsnap-backfill'\" | grep -q '^1$'" ||
    fail "the lease statement never waited on the lock"
a1=$(sim_stat aggs)
sleep 3
a2=$(sim_stat aggs)
waiting=$(psql -X -Atq "$DB2" -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'optsnap-backfill'")
echo "aggregate requests while the lease statement waited: $((a2 - a1)) in 3 s (from $((a1 - aggs0)) before); still waiting: $waiting"
[ "$waiting" = 1 ] || fail "the lock was not held throughout"
[ $((a2 - a1)) -gt 0 ] || fail "no HTTP transfer completed while one statement waited: the loop is blocked"
printf 'ROLLBACK;\n' >&7
exec 7>&-
wait "$HOLD_PID" || true
e2e_wait_exit "$BF" 60
[ "$E2E_STOP_RC" = 0 ] || { tail -20 "$TMP/bf2.log"; fail "backfill exited $E2E_STOP_RC after the lock went"; }
[ "$(pg_scalar "$DB2" "SELECT count(DISTINCT underlying) FROM ingest_coverage")" = 2 ] || fail "not both underlyings filled"
e2e_stop "$SIM_PID" TERM 10

echo "== 3. the page cap: run and backfill stop at max_pages, window uncovered"
sim_start "$TMP/sim3.log" --seed 13 --underlyings SPY --contracts 1200 --clock 2026-11-20T15:00:00Z --always-open
DB3=$(e2e_db optsnap_e2e_engine3) || fail "database"
DATABASE_URL=$DB3 e2e_spawn "$TMP/run3.log" "$BIN" run --api-url "$SIM_URL" --universe SPY --calendar always \
    --cadence 60s --clock "$(sim_shared_clock)" --page-limit 100 --max-pages 3 --max-sweeps 1 --listen ""
e2e_wait_exit "$E2E_LAST_PID" 60
grep -q 'msg="page cap reached: the rest is not fetched, the window stays uncovered" what=snapshot for="SPY" pages=3 max_pages=3' "$TMP/run3.log" ||
    { tail -5 "$TMP/run3.log"; fail "run: no page cap line"; }
grep -q 'pages_capped=1' "$TMP/run3.log" || fail "run: pages_capped not counted"
[ "$(pg_scalar "$DB3" "SELECT count(*) FROM ingest_coverage")" = 0 ] || fail "run: a capped sweep's window was covered"
[ "$(pg_scalar "$DB3" "SELECT count(*) FROM option_snapshots")" = 300 ] || fail "run: expected the 3 pages' 300 rows (harmless upserts)"
DATABASE_URL=$DB3 "$BIN" backfill --api-url "$SIM_URL" --calendar always --cadence 60s --universe SPY \
    --from 2026-11-19T14:00:00Z --to 2026-11-19T15:00:00Z --max-pages 1 >"$TMP/bf3.out" 2>"$TMP/bf3.log" && rc=0 || rc=$?
[ "$rc" = 3 ] || { cat "$TMP/bf3.out"; fail "backfill: exit $rc, expected 3"; }
grep -q 'msg="page cap reached: the rest is not fetched, the window stays uncovered" what=contracts' "$TMP/bf3.log" ||
    fail "backfill: no page cap line for the contracts listing (1200 contracts, 1000 a page)"
grep -q 'page cap reached (max_pages)' "$TMP/bf3.out" || fail "backfill: the unit's reason does not say page cap"
[ "$(pg_scalar "$DB3" "SELECT count(*) FROM ingest_coverage WHERE source = 'backfill'")" = 0 ] || fail "backfill: a capped unit was covered"
echo "engine e2e: ok"
