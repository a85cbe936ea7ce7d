#!/usr/bin/env bash
# Known secrets (an API key, a database password) never appear in logs,
# /metrics, the status page, `optsnap config` output or error messages, from
# any command, on success or on failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
OUT=$E2E_TMP/out
mkdir -p "$OUT"
KEY="key-$(date +%s%N)-SeCrEt"
PW="pw-$(date +%s%N)-SeCrEt"
DB=$(pgtest_createdb optsnap_e2e_secrets)
psql -X -q "$DB" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optsnap_secret_user') THEN CREATE ROLE optsnap_secret_user LOGIN SUPERUSER; END IF; END \$\$" \
    -c "ALTER ROLE optsnap_secret_user PASSWORD '$PW'" >/dev/null
# the same database, reached as that user with the password in the URL
HOSTPORT=$(sed -E 's|^postgresql://[^@]*@([^/]+)/.*$|\1|' <<<"$DB")
SECRET_URL="postgresql://optsnap_secret_user:$PW@$HOSTPORT/optsnap_e2e_secrets"
BAD_URL="postgresql://optsnap_secret_user:$PW@127.0.0.1:1/optsnap_e2e_secrets"

DATABASE_URL=$SECRET_URL "$BIN" migrate >"$OUT/migrate.out" 2>&1 || fail "migrate"
SIM_PORT=$(free_port)
e2e_spawn "$OUT/sim.log" "$BIN" mock-api --port "$SIM_PORT" --underlyings SPY --contracts 40 --always-open --api-key "$KEY"
wait_for_port "$SIM_PORT" 10 || fail "simulator"
LPORT=$(free_port)
DATABASE_URL=$SECRET_URL OPTSNAP_API_KEY=$KEY e2e_spawn "$OUT/run.log" "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" \
    --universe SPY --calendar always --cadence 1s --listen "127.0.0.1:$LPORT" --log-level debug
RUN=$E2E_LAST_PID
wait_for_port "$LPORT" 10 || fail "listener"
E2E_WAIT=15 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c 'SELECT count(*) FROM ingest_coverage') -ge 2 ]" || fail "nothing ingested with the key"
curl -fsS "http://127.0.0.1:$LPORT/metrics" >"$OUT/metrics.txt"
curl -fsS "http://127.0.0.1:$LPORT/" >"$OUT/status.html"
curl -fsS "http://127.0.0.1:$LPORT/readyz" >"$OUT/readyz.txt" || true
e2e_stop "$RUN" TERM 20
DATABASE_URL=$SECRET_URL OPTSNAP_API_KEY=$KEY "$BIN" config >"$OUT/config.out" 2>&1 || fail "config"
DATABASE_URL=$SECRET_URL "$BIN" gaps --calendar always --universe SPY --since 10m >"$OUT/gaps.out" 2>&1 || true
# failures that carry the secrets in their input
DATABASE_URL=$BAD_URL "$BIN" migrate >"$OUT/migrate-bad.out" 2>&1 && fail "migrate against a closed port succeeded"
DATABASE_URL=$BAD_URL OPTSNAP_API_KEY=$KEY "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" --universe SPY \
    --listen "" >"$OUT/run-bad.out" 2>&1 && fail "run against a closed port succeeded"
DATABASE_URL=$BAD_URL "$BIN" gaps --calendar always --universe SPY >"$OUT/gaps-bad.out" 2>&1 && fail "gaps against a closed port succeeded"
DATABASE_URL=$BAD_URL OPTSNAP_API_KEY=$KEY "$BIN" repair --calendar always --universe SPY \
    --api-url "http://127.0.0.1:$SIM_PORT" >"$OUT/repair-bad.out" 2>&1 && fail "repair against a closed port succeeded"
# the first run covered the windows up to a moment ago, and windows only move
# forward: without this the 401 run could find nothing left to sweep
psql -X -q "$DB" -c "DELETE FROM ingest_coverage" >/dev/null
DATABASE_URL=$SECRET_URL OPTSNAP_API_KEY=wrong-key "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" --universe SPY \
    --calendar always --cadence 1s --listen "" --max-sweeps 1 >"$OUT/run-401.out" 2>&1 || true
grep -q "401\|NOT_AUTHORIZED\|status=401" "$OUT/run-401.out" || { cat "$OUT/run-401.out"; fail "a wrong key was not reported"; }
# the key must not be in any URL the simulator saw either
cat "$OUT"/*.out "$OUT"/*.log "$OUT"/*.txt "$OUT"/*.html >"$E2E_TMP/all"
n=$(wc -c <"$E2E_TMP/all")
[ "$n" -gt 2000 ] || fail "too little output captured ($n bytes): the check would prove nothing"
if grep -F -l -e "$KEY" -e "$PW" "$OUT"/* ; then
    grep -F -n -e "$KEY" -e "$PW" "$OUT"/* | head -5
    fail "a secret leaked into the files above"
fi
echo "secrets e2e: ok ($n bytes of logs, metrics, pages and messages checked)"
