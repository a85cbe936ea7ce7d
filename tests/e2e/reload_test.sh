#!/usr/bin/env bash
# SIGHUP: the universe and reloadable settings change without dropping work;
# a bad new configuration is rejected and the running one kept.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
DB=$(pgtest_createdb optsnap_e2e_reload)
DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1 || fail "migrate"
SIM_PORT=$(free_port)
e2e_spawn "$TMP/sim.log" "$BIN" mock-api --port "$SIM_PORT" --underlyings SPY,QQQ --contracts 60 --always-open
wait_for_port "$SIM_PORT" 10 || fail "simulator"
conf() { # conf UNIVERSE [extra line]
    printf 'api_url = http://127.0.0.1:%s\nuniverse = %s\ncalendar = always\ncadence = 1s\nlisten =\n%s\n' \
        "$SIM_PORT" "$1" "${2:-}" >"$TMP/optsnap.conf"
}
conf SPY
DATABASE_URL=$DB OPTSNAP_API_KEY=k e2e_spawn "$TMP/run.log" "$BIN" run --config "$TMP/optsnap.conf"
RUN=$E2E_LAST_PID
count() { pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage WHERE underlying = '$1'"; }
E2E_WAIT=15 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c \"SELECT count(*) FROM ingest_coverage WHERE underlying = 'SPY'\") -ge 2 ]" || fail "SPY never covered"
[ "$(count QQQ)" = 0 ] || fail "QQQ swept before it was in the universe"

conf SPY,QQQ "log_level = debug"
kill -HUP "$RUN"
E2E_WAIT=15 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c \"SELECT count(*) FROM ingest_coverage WHERE underlying = 'QQQ'\") -ge 2 ]" || fail "QQQ not swept after SIGHUP"
grep -q 'msg="configuration reloaded"' "$TMP/run.log" || fail "no reload line"
grep -q 'msg="setting reloaded" setting=log_level' "$TMP/run.log" || fail "log_level not reloaded"

printf 'universe = SPY\nbogus_setting = 1\n' >"$TMP/optsnap.conf"
kill -HUP "$RUN"
E2E_WAIT=5 wait_for grep -q 'msg="configuration reload rejected' "$TMP/run.log" || fail "bad configuration not rejected"
before=$(count QQQ)
sleep 3
after=$(count QQQ)
[ "$after" -gt "$before" ] || fail "the running configuration was not kept after a bad reload ($before -> $after)"
kill -0 "$RUN" || fail "the daemon died on a bad reload"
e2e_stop "$RUN" TERM 30
[ "$E2E_STOP_RC" = 0 ] || fail "exit $E2E_STOP_RC"
echo "reload e2e: ok (QQQ windows $before -> $after after the rejected reload)"
