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
# (the test cluster trusts loopback, so a wrong password cannot be tried here)
# malformed URLs and bad escapes carrying the password, through every
# database command (libpq repeats such a URL, or just the bad token, in its error)
MALFORMED=("postgresql://optsnap_secret_user:$PW@[::1/optsnap_e2e_secrets"
    "postgresql://optsnap_secret_user:${PW}%zz@127.0.0.1:1/optsnap_e2e_secrets"
    "postgresql://optsnap_secret_user:$PW@127.0.0.1:notaport/optsnap_e2e_secrets"
    "host=127.0.0.1 port=1 user=optsnap_secret_user password=$PW dbname=x"
    "postgresql://optsnap_secret_user:$PW@%2Fnonexistent%2Fsocket%2Fdir/optsnap_e2e_secrets")
k=0
for url in "${MALFORMED[@]}"; do
    k=$((k + 1))
    DATABASE_URL=$url "$BIN" migrate >"$OUT/m$k-migrate.out" 2>&1 && fail "migrate with malformed URL $k succeeded"
    DATABASE_URL=$url "$BIN" gaps --calendar always --universe SPY >"$OUT/m$k-gaps.out" 2>&1 && fail "gaps with malformed URL $k succeeded"
    DATABASE_URL=$url "$BIN" rejects >"$OUT/m$k-rejects.out" 2>&1 && fail "rejects with malformed URL $k succeeded"
    DATABASE_URL=$url OPTSNAP_API_KEY=$KEY "$BIN" repair --calendar always --universe SPY \
        --api-url "http://127.0.0.1:$SIM_PORT" >"$OUT/m$k-repair.out" 2>&1 && fail "repair with malformed URL $k succeeded"
    DATABASE_URL=$url OPTSNAP_API_KEY=$KEY "$BIN" backfill --calendar always --universe SPY --from now-5m --to now-1m \
        --api-url "http://127.0.0.1:$SIM_PORT" >"$OUT/m$k-backfill.out" 2>&1 && fail "backfill with malformed URL $k succeeded"
    DATABASE_URL=$url OPTSNAP_API_KEY=$KEY timeout 20 "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" --universe SPY \
        --listen "" --run-for 3s >"$OUT/m$k-run.out" 2>&1 || true
    # the same URL on the command line
    "$BIN" migrate --database-url "$url" >"$OUT/m$k-migrate-arg.out" 2>&1 && fail "migrate --database-url $k succeeded"
    "$BIN" gaps --database-url "$url" --calendar always --universe SPY >"$OUT/m$k-gaps-arg.out" 2>&1 && fail "gaps --database-url $k succeeded"
    for f in "$OUT"/m$k-*.out; do [ -s "$f" ] || fail "$f: no error message at all"; done
done
grep -q "password was given on the command line" "$OUT/m1-gaps-arg.out" || fail "no warning for a password in --database-url"
# argv: a password in --database-url is blanked (ps, /proc/PID/cmdline)
OPTSNAP_API_KEY=$KEY e2e_spawn "$OUT/run-argv.log" "$BIN" run --database-url "$SECRET_URL" --api-url "http://127.0.0.1:$SIM_PORT" \
    --universe SPY --calendar always --cadence 1s --listen "" --run-for 20s
ARGV_PID=$E2E_LAST_PID
E2E_WAIT=10 wait_for grep -q "password was given on the command line" "$OUT/run-argv.log" || fail "run: no argv warning"
tr '\0' ' ' </proc/$ARGV_PID/cmdline >"$OUT/cmdline.txt"
grep -q -- "--database-url postgresql://optsnap_secret_user:\*\**@" "$OUT/cmdline.txt" || { cat "$OUT/cmdline.txt"; fail "the argv password was not blanked"; }
E2E_WAIT=15 wait_for bash -c "grep -q 'sweep\|covered' '$OUT/run-argv.log'" || true
e2e_stop "$ARGV_PID" TERM 20
grep -q "cannot connect\|connection lost" "$OUT/run-argv.log" && { cat "$OUT/run-argv.log"; fail "run with a blanked argv lost the real password"; }
# the key must not be in any URL the simulator saw either
cat "$OUT"/*.out "$OUT"/*.log "$OUT"/*.txt "$OUT"/*.html >"$E2E_TMP/all"
n=$(wc -c <"$E2E_TMP/all")
[ "$n" -gt 2000 ] || fail "too little output captured ($n bytes): the check would prove nothing"
if grep -F -l -e "$KEY" -e "$PW" "$OUT"/* ; then
    grep -F -n -e "$KEY" -e "$PW" "$OUT"/* | head -5
    fail "a secret leaked into the files above"
fi
echo "secrets e2e: ok ($n bytes of logs, metrics, pages and messages checked)"
