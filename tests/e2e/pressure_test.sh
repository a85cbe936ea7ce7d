#!/usr/bin/env bash
# Pool pressure, the incident's shape: db_connections (2) far below the request
# concurrency (64), a database made slow by a lock the test holds, and a short
# statement_timeout. Ingestion degrades (statement timeouts retried, the queue
# full, fetching paused) but never exceeds its 2 connections, never loses a
# row, and recovers when the lock goes. The skip cache is off: it would keep
# the re-polled rows from the queue, which must fill. All of it under extra
# CPU load (stress-ng, 2 workers, stopped by its own --timeout), in the direct
# and the pooler pass alike: the load that once let a third backend start
# before the old one had gone (issue 11, finding 8).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3 stress-ng
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
SPEED=30
DBNAME=optsnap_e2e_pressure
DB=$(pgtest_createdb $DBNAME)
DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1 || fail "migrate"
SIM_PORT=$(free_port)
e2e_spawn "$TMP/sim.log" "$BIN" mock-api --port "$SIM_PORT" --seed 3 --underlyings SPY,QQQ,IWM,AAPL \
    --contracts 200 --clock 2026-11-02T15:00:00Z --speed "$SPEED" --always-open
wait_for_port "$SIM_PORT" 10 || fail "simulator"
SIM_URL="http://127.0.0.1:$SIM_PORT"
body=$(curl -fsS "$SIM_URL/_sim/clock"); real=$(date +%s.%N)
SIM_US=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sim_now_us"])' "$body")
CLOCK=$(python3 -c "import datetime; print(datetime.datetime.fromtimestamp($SIM_US/1e6, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'))")@$real
QMAX=400
# the load outlives the run (about 25 s) and ends by itself even if this script is killed
e2e_spawn "$TMP/stress.log" stress-ng --cpu 2 --timeout 60s --metrics-brief
STRESS=$E2E_LAST_PID
DATABASE_URL=$DB OPTSNAP_API_KEY=k e2e_spawn "$TMP/run.log" "$BIN" run --api-url "$SIM_URL" \
    --universe SPY,QQQ,IWM,AAPL --calendar always --cadence 60s --clock "$CLOCK" --clock-speed "$SPEED" \
    --db-connections 2 --http-concurrency 64 --page-limit 50 --batch-rows 100 --queue-max-rows $QMAX \
    --statement-timeout 1s --retry-max-backoff 1s --stats-interval 200ms --listen "" --skip-cache-entries 0
RUN=$E2E_LAST_PID
# sample the daemon's connections for the whole run. Through the pooler the
# daemon's connections are pgbouncer's clients: its server connections are
# pgbouncer's (up to default_pool_size, any of them lent to either client per
# transaction), so the pooler's SHOW CLIENTS is what the daemon holds.
if [ -n "${OPTSNAP_TEST_POOLER_URL:-}" ]; then
    ADMIN="${OPTSNAP_TEST_POOLER_URL%/*}/pgbouncer"
    e2e_spawn "$TMP/conns.txt" bash -c "while true; do psql -X -A -F'|' '$ADMIN' -c 'SHOW CLIENTS' | awk -F'|' 'NR==1 { for (i = 1; i <= NF; i++) col[\$i] = i; next } \$col[\"database\"] == \"$DBNAME\" && \$col[\"application_name\"] == \"optsnap\" { n++ } END { if (NR > 0) print n + 0 }'; sleep 0.1; done"
else
    e2e_spawn "$TMP/conns.txt" bash -c "while true; do psql -X -Atq '$OPTSNAP_TEST_PGURL' -c \"SELECT count(*) FROM pg_stat_activity WHERE datname = '$DBNAME' AND application_name = 'optsnap'\"; sleep 0.1; done"
fi
SAMPLER=$E2E_LAST_PID
E2E_WAIT=20 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c 'SELECT count(*) FROM ingest_coverage') -ge 4 ]" || fail "no windows before the pressure"
# the database goes slow: inserts wait on a lock held for 6 s, longer than statement_timeout
e2e_spawn "$TMP/lock.log" psql -X -q "$DB" -c "BEGIN" -c "LOCK TABLE option_snapshots IN SHARE ROW EXCLUSIVE MODE" \
    -c "SELECT pg_sleep(6)" -c "COMMIT"
LOCKER=$E2E_LAST_PID
sleep 0.5
before=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage")
wait "$LOCKER" || fail "the lock holder failed"
sleep 6 # recovery
after=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage")
e2e_stop "$RUN" TERM 30
[ "$E2E_STOP_RC" = 0 ] || { tail -20 "$TMP/run.log"; fail "run exited $E2E_STOP_RC"; }
e2e_stop "$SAMPLER" TERM 5
kill -0 "$STRESS" 2>/dev/null || fail "stress-ng ended before the run did: the pressure ran without the CPU load"
e2e_stop "$STRESS" TERM 10
maxconn=$(sort -n "$TMP/conns.txt" | tail -1)
samples=$(wc -l <"$TMP/conns.txt")
[ "$samples" -ge 50 ] || fail "only $samples connection samples"
[ "${maxconn:-0}" -ge 1 ] || fail "the sampler never saw the daemon's connections"
[ "$maxconn" -le 2 ] || fail "the daemon held $maxconn connections (db_connections is 2)"
grep -q 'msg="batch will be retried".*sqlstate=57014' "$TMP/run.log" || fail "no statement timeout was retried: the database was not slow"
full=$(sed -n 's/.*msg="pool".* queue_rows=\([0-9]*\).*/\1/p' "$TMP/run.log" | sort -n | tail -1)
[ "${full:-0}" -ge $((QMAX - 50)) ] || fail "the queue never filled (max queue_rows ${full:-0} of $QMAX): fetching was not paused"
[ "$after" -gt "$before" ] || fail "no recovery: covered windows $before -> $after"
# --allow-overrun: a sweep the held lock stalls past a cadence beyond its window
# is not marked (run refuses it); one that finished within it may hold later state
python3 "$HERE/check_truth.py" "$DB" "$SIM_URL" --clock "$SIM_US@$real" --speed "$SPEED" --allow-overrun || fail "rows lost or wrong under pressure"
echo "pressure e2e: ok (under stress-ng --cpu 2) max_connections=$maxconn samples=$samples max_queue_rows=$full/$QMAX windows $before -> $after"
