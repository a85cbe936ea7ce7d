#!/usr/bin/env bash
# Slowloris against the status listener: 200 idle sockets and 40 that trickle
# a header byte at a time from one peer (loopback); /healthz and /readyz must
# still answer (200/503 with their bytes) within curl's generous 5 s bound,
# and the trickling sockets are cut at the head deadline (5 s), not kept alive
# by their bytes. Then the Host check, and the warning for a listen address
# that is not loopback. Bounded: about 15 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl python3
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
DB=$(pgtest_createdb optsnap_e2e_h11_slowloris)
"$BIN" migrate --database-url "$DB" >"$E2E_TMP/migrate.log" 2>&1 || fail "migrate"
SIM_PORT=$(free_port)
e2e_spawn "$E2E_TMP/sim.log" "$BIN" mock-api --port "$SIM_PORT" --underlyings SPY --contracts 10 --always-open --api-key k
wait_for_port "$SIM_PORT" 10 || fail "simulator"
LPORT=$(free_port)
DATABASE_URL=$DB OPTSNAP_API_KEY=k e2e_spawn "$E2E_TMP/run.log" "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" \
    --universe SPY --calendar always --cadence 1s --listen "127.0.0.1:$LPORT" --run-for 60s \
    --listen-hosts "optsnap.internal, status.example.org"
RUN=$E2E_LAST_PID
wait_for_port "$LPORT" 10 || fail "listener"
# the attacker: holds 200 idle sockets and 40 trickling ones for 12 s,
# reports how many of the trickling ones the server cut before the end
python3 - "$LPORT" >"$E2E_TMP/attack.txt" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
idle, slow = [], []
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port)); idle.append(s)
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port)); s.send(b"GET /metrics HTTP/1.1\r\n"); slow.append(s)
print("open", len(idle) + len(slow), flush=True)
cut = set()
end = time.time() + 12
while time.time() < end:
    for k, s in enumerate(slow):
        if k in cut: continue
        try:
            s.send(b"X")
        except OSError:
            cut.add(k)
    time.sleep(1)
print("cut", len(cut), flush=True)
PY
ATTACK=$!
E2E_WAIT=10 wait_for grep -q "^open 240" "$E2E_TMP/attack.txt" || fail "the attacker could not open its sockets: $(cat "$E2E_TMP/attack.txt")"
ok=0
for i in $(seq 1 8); do
    got=$(curl -s -o "$E2E_TMP/healthz.$i" -w '%{http_code} %{time_total}' --max-time 5 "http://127.0.0.1:$LPORT/healthz" || true)
    code=${got%% *}
    echo "${got##* }" >>"$E2E_TMP/healthz.times" # reported, not asserted (no timed assertions)
    [ "$code" = 200 ] || fail "/healthz during the attack (probe $i): status '$code'"
    [ -s "$E2E_TMP/healthz.$i" ] || fail "/healthz during the attack: empty body"
    rcode=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$LPORT/readyz" || true)
    case $rcode in 200|503) ;; *) fail "/readyz during the attack (probe $i): status '$rcode'" ;; esac
    ok=$((ok + 1))
    sleep 1
done
wait "$ATTACK" || fail "attacker failed: $(cat "$E2E_TMP/attack.txt")"
cut=$(sed -n 's/^cut //p' "$E2E_TMP/attack.txt")
# trickling for 12 s against a 5 s head deadline: every one is cut (or evicted)
[ "${cut:-0}" -eq 40 ] || fail "only ${cut:-?} of 40 trickling connections were cut: the deadline restarts on each byte"
kill -0 "$RUN" 2>/dev/null || fail "the daemon died under the attack"
# Host check (DNS rebinding): /metrics and / answer only loopback names and
# the listen host; the probes answer whatever the Host
hc() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $1" "http://127.0.0.1:$LPORT$2"; }
[ "$(hc evil.example /metrics)" = 403 ] || fail "/metrics answered a foreign Host"
[ "$(hc "evil.example:$LPORT" /)" = 403 ] || fail "the status page answered a foreign Host"
[ "$(hc "localhost:$LPORT" /metrics)" = 200 ] || fail "/metrics refused Host localhost"
[ "$(hc "127.0.0.1:$LPORT" /)" = 200 ] || fail "the status page refused Host 127.0.0.1"
[ "$(hc "[::1]:$LPORT" /metrics)" = 200 ] || fail "/metrics refused Host [::1]"
[ "$(hc "127.0.0.1.evil.example:$LPORT" /metrics)" = 403 ] || fail "/metrics answered a name that only starts like a loopback address"
[ "$(hc evil.example /healthz)" = 200 ] || fail "/healthz refused a foreign Host"
# listen_hosts: the names listed (any port, any case) answer, a near miss does not
[ "$(hc "optsnap.internal:$LPORT" /metrics)" = 200 ] || fail "/metrics refused a listen_hosts name"
[ "$(hc STATUS.example.org /)" = 200 ] || fail "the status page refused a listen_hosts name"
[ "$(hc optsnap.internal.evil.example /metrics)" = 403 ] || fail "/metrics answered a name that only starts with a listen_hosts one"
e2e_stop "$RUN" TERM 20
! grep -q 'listen is not a loopback address' "$E2E_TMP/run.log" || fail "a loopback listen was warned about"
# listen on an address that is not loopback: a warning before the bind. The
# address is TEST-NET-1 (192.0.2.0/24, never assigned), so the bind fails and
# nothing is reachable: the daemon refuses to start without its listener.
set +e
DATABASE_URL=$DB OPTSNAP_API_KEY=k "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" --universe SPY --calendar always \
    --cadence 1s --listen "192.0.2.1:$LPORT" --run-for 10s >"$E2E_TMP/public.log" 2>&1
rc=$?
set -e
grep -q 'level=warn msg="listen is not a loopback address' "$E2E_TMP/public.log" || fail "no warning for a listen address that is not loopback"
grep -q 'msg="cannot listen" listen="192.0.2.1' "$E2E_TMP/public.log" || fail "the failed bind was not reported"
[ "$rc" = 1 ] || fail "run without its listener exited $rc, expected 1"
slowest=$(sort -g "$E2E_TMP/healthz.times" | tail -1)
echo "slowloris e2e: ok ($ok probes answered 200 under 240 hostile sockets, slowest /healthz ${slowest}s, $cut/40 trickling sockets cut)"
