#!/usr/bin/env bash
# `optsnap run` as an operated daemon: /metrics values match what was written,
# /healthz, /readyz, the status page escapes what it shows, and the systemd
# notify protocol (READY=1 after the database, WATCHDOG=1, STATUS=, STOPPING=1)
# arrives on NOTIFY_SOCKET.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
DB=$(pgtest_createdb optsnap_e2e_ops)
DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1 || fail "migrate"
SIM_PORT=$(free_port)
e2e_spawn "$TMP/sim.log" "$BIN" mock-api --port "$SIM_PORT" --underlyings SPY,QQQ --contracts 100 --always-open
wait_for_port "$SIM_PORT" 10 || fail "simulator"
# the notify socket: a datagram listener that records every message
e2e_spawn "$TMP/notify.out" python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$TMP/notify.sock"
for _ in $(seq 50); do [ -S "$TMP/notify.sock" ] && break; sleep 0.1; done
LPORT=$(free_port)
NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=1000000 DATABASE_URL=$DB OPTSNAP_API_KEY=ops-secret \
    e2e_spawn "$TMP/run.log" "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" --universe SPY,QQQ \
    --calendar always --cadence 2s --listen "127.0.0.1:$LPORT" --stats-interval 500ms
RUN=$E2E_LAST_PID
wait_for_port "$LPORT" 10 || fail "listener"
E2E_WAIT=20 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c 'SELECT count(*) FROM ingest_coverage') -ge 4 ]" || fail "no windows covered"
sleep 3 # a timeline refresh
curl -fsS "http://127.0.0.1:$LPORT/healthz" | grep -qx ok || fail "/healthz"
curl -fsS "http://127.0.0.1:$LPORT/readyz" | grep -qx ready || fail "/readyz"
curl -fsS "http://127.0.0.1:$LPORT/metrics" >"$TMP/metrics.txt" || fail "/metrics"
written=$(sed -n 's/^optsnap_rows_total{outcome="written"} \([0-9]*\)$/\1/p' "$TMP/metrics.txt")
in_db=$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots")
[ -n "$written" ] && [ "$written" -ge 100 ] || fail "rows written metric: '$written'"
[ "$written" -le "$in_db" ] || fail "metric says $written written, database holds $in_db"
grep -q '^optsnap_db_connections{state="idle"} ' "$TMP/metrics.txt" || fail "pool gauge missing"
grep -q '^optsnap_freshness_seconds{underlying="SPY"} ' "$TMP/metrics.txt" || fail "freshness missing"
grep -q '^optsnap_http_request_duration_seconds_bucket{le="+Inf"} ' "$TMP/metrics.txt" || fail "latency histogram missing"
grep -q '^optsnap_uncovered_windows ' "$TMP/metrics.txt" || fail "uncovered windows missing"
curl -fsS "http://127.0.0.1:$LPORT/" >"$TMP/status.html" || fail "status page"
grep -q '<svg' "$TMP/status.html" || fail "no coverage timeline on the status page"
grep -q 'SPY' "$TMP/status.html" || fail "status page lacks the underlyings"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LPORT/nope")
[ "$code" = 404 ] || fail "unknown path answered $code"
for f in "$TMP/metrics.txt" "$TMP/status.html" "$TMP/run.log"; do
    ! grep -q ops-secret "$f" || fail "the API key leaked into $f"
done
e2e_stop "$RUN" TERM 30
[ "$E2E_STOP_RC" = 0 ] || fail "run exited $E2E_STOP_RC"
sleep 0.3
grep -q '^READY=1' "$TMP/notify.out" || fail "no READY=1"
grep -q '^WATCHDOG=1' "$TMP/notify.out" || fail "no WATCHDOG=1"
grep -q '^STATUS=' "$TMP/notify.out" || fail "no STATUS="
grep -q '^STOPPING=1' "$TMP/notify.out" || fail "no STOPPING=1"
# READY only after the database connection
first_ready=$(grep -n '^READY=1' "$TMP/notify.out" | head -1 | cut -d: -f1)
[ "$first_ready" -ge 1 ] || fail "READY ordering"
echo "ops e2e: ok written=$written in_db=$in_db notify=$(sort -u "$TMP/notify.out" | cut -c1-20 | tr '\n' ' ')"
