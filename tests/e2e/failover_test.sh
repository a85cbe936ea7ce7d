#!/usr/bin/env bash
# End to end: `optsnap run` survives a PostgreSQL failover.
# The test starts its own primary and a synchronous streaming standby
# (pg_basebackup -R; synchronous_standby_names = '*' on the primary, so a
# commit the daemon saw acknowledged is on the standby too), migrates, runs
# the daemon with a multi-host DATABASE_URL (target_session_attrs=read-write),
# stops the primary hard (pg_ctl stop -m immediate) after a few covered
# windows, promotes the standby (pg_ctl promote), and checks on the new primary:
#  - the daemon kept running, lost its connections, reconnected, and covered
#    new windows there;
#  - every covered window has its rows, equal to the simulator's truth
#    (check_truth.py);
#  - every window of the run is covered or listed by `optsnap gaps`; `repair`
#    fills the listed ones and `gaps` then reports none;
#  - SIGTERM still drains and exits 0.
# In the PgBouncer pass the daemon, migrate, gaps and repair reach the pair
# through this test's own PgBouncer (transaction mode, 4 server connections)
# in front of the primary; after the promotion the pooler is pointed at the
# new primary (SIGHUP), as an operator's failover script or a moved DNS name
# does. The daemon's client connections to the pooler may survive; what it
# must do is the same: no crash, no window marked without its rows, new
# windows covered on the new primary, gaps and repair exact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
POOLED=0
[ -n "${OPTSNAP_TEST_POOLER_URL:-}" ] && POOLED=1
skip_unless_pg # the suite is configured for PostgreSQL tests at all
skip_unless_cmd curl psql python3
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$SRC/scripts/lib/common.sh"
. "$SRC/scripts/lib/pgbouncer.sh"
[ -x "$OPTSNAP_PGBIN/pg_basebackup" ] || { echo "$OPTSNAP_PGBIN/pg_basebackup not found; skipping" >&2; exit 77; }
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "running as root without a postgres user; skipping" >&2; exit 77
fi
BIN=${OPTSNAP_BIN:?}
HERE=$(cd "$(dirname "$0")" && pwd)
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
[ "$(id -u)" -eq 0 ] && chmod 755 "$TMP"
SPEED=30
export OPTSNAP_API_KEY=e2e-secret-key
DBNAME=optsnap_e2e_failover

failover_cleanup() {
    local bad=0
    e2e_cleanup || bad=1
    [ "$POOLED" = 1 ] && optsnap_pgbouncer_stop "$TMP/pgbouncer.log"
    optsnap_pg_standby_stop
    optsnap_pg_stop
    [ "$bad" = 0 ] || exit 1
}
trap failover_cleanup EXIT

echo "== primary and synchronous standby"
optsnap_pg_start || fail "primary did not start"
P1=${OPTSNAP_PGURL##*:}; P1=${P1%%/*}
PRIMARY_ADMIN=$OPTSNAP_PGURL
optsnap_pg_standby "$P1" || fail "standby did not start"
P2=$OPTSNAP_STANDBY_PORT
E2E_WAIT=30 wait_for scalar_is "$PRIMARY_ADMIN" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" = 1 ||
    fail "the standby does not stream"
psql -X -q "$PRIMARY_ADMIN" -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
    -c "ALTER SYSTEM SET synchronous_commit = 'on'" -c "SELECT pg_reload_conf()" >/dev/null
E2E_WAIT=30 wait_for scalar_is "$PRIMARY_ADMIN" "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'" = 1 ||
    fail "the standby is not synchronous"
psql -X -q "$PRIMARY_ADMIN" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DBNAME" >/dev/null
MULTI="postgresql://postgres@127.0.0.1:$P1,127.0.0.1:$P2/$DBNAME?target_session_attrs=read-write"
NEW_PRIMARY="postgresql://postgres@127.0.0.1:$P2/$DBNAME"
CLIENT_NEW=$NEW_PRIMARY # what gaps and repair use after the failover
if [ "$POOLED" = 1 ]; then
    # a failed server login is retried after 1 s, not pgbouncer's 15 s
    OPTSNAP_PGBOUNCER_EXTRA="server_login_retry = 1" optsnap_pgbouncer_start "$PRIMARY_ADMIN" ||
        fail "the test's pgbouncer did not start"
    MULTI="postgresql://postgres@127.0.0.1:$OPTSNAP_PGBOUNCER_PORT/$DBNAME"
    CLIENT_NEW=$MULTI
    echo "through this test's pgbouncer on port $OPTSNAP_PGBOUNCER_PORT"
fi
DATABASE_URL=$MULTI "$BIN" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log"; fail "migrate through the multi-host URL"; }
[ "$(pg_scalar "$NEW_PRIMARY" "SELECT pg_is_in_recovery()")" = t ] || fail "port $P2 should be the standby"
# synchronous commit waits for the standby's flush, not its replay: a read
# there may come a moment before the migrations are visible
E2E_WAIT=15 wait_for scalar_is "$NEW_PRIMARY" "SELECT count(*) FROM schema_migrations" -gt 0 ||
    fail "migrations not replicated"

echo "== run against the simulator"
sim_start "$TMP/sim.log" --seed 11 --underlyings SPY,QQQ --contracts 80 --clock 2026-11-02T15:00:00Z \
    --speed "$SPEED" --always-open
SIM_CLOCK=$(sim_clock_us_at_real)
DATABASE_URL=$MULTI e2e_spawn "$TMP/run.log" "$BIN" run \
    --api-url "$SIM_URL" --universe SPY,QQQ --calendar always --cadence 60s \
    --clock "$(sim_shared_clock)" --clock-speed "$SPEED" --page-limit 50 --batch-rows 100 \
    --db-connections 2 --http-concurrency 4 --listen "" --stats-interval 1s --retry-max-backoff 1s \
    --heal-lookback 0
# no self-healing: its pass after the outage would fill windows while the
# test counts what gaps lists and what repair fills (CI saw it race once)
RUN_PID=$E2E_LAST_PID
covered() { pg_scalar "$1" "SELECT count(*) FROM ingest_coverage"; }
PRIMARY_DB="${PRIMARY_ADMIN%/*}/$DBNAME"
E2E_WAIT=30 wait_for sh -c "[ \"\$(psql -X -qAt '$PRIMARY_DB' -c 'SELECT count(*) FROM ingest_coverage')\" -ge 4 ]" ||
    { tail -20 "$TMP/run.log"; fail "fewer than 4 windows covered on the primary"; }
BEFORE=$(covered "$PRIMARY_DB")
echo "covered on the old primary before the failover: $BEFORE"

echo "== primary stopped hard, standby promoted"
optsnap_pg_tool "$OPTSNAP_PGBIN/pg_ctl" -D "$OPTSNAP_PGTMP/data" stop -m immediate >/dev/null
sleep 6 # an outage of about three simulated minutes: the daemon fails to connect and backs off
kill -0 "$RUN_PID" 2>/dev/null || { tail -20 "$TMP/run.log"; fail "the daemon died when the primary stopped"; }
optsnap_pg_tool "$OPTSNAP_PGBIN/pg_ctl" -D "$OPTSNAP_STANDBY_TMP/data" promote -w -t 30 >/dev/null ||
    fail "promote failed"
[ "$(pg_scalar "$NEW_PRIMARY" "SELECT pg_is_in_recovery()")" = f ] || fail "the standby was not promoted"
if [ "$POOLED" = 1 ]; then
    optsnap_pgbouncer_repoint 127.0.0.1 "$P2" || fail "could not point pgbouncer at the new primary"
fi
AT_PROMOTE=$(covered "$NEW_PRIMARY")
# every acknowledged mark reached the synchronous standby
[ "$AT_PROMOTE" -ge "$BEFORE" ] || fail "the new primary has $AT_PROMOTE covered windows, the old one had $BEFORE"
PROMOTED_AT=$(pg_scalar "$NEW_PRIMARY" "SELECT now()")
E2E_WAIT=40 wait_for sh -c "[ \"\$(psql -X -qAt '$NEW_PRIMARY' -c \"SELECT count(*) FROM ingest_coverage WHERE completed_at > '$PROMOTED_AT'\")\" -ge 4 ]" ||
    { tail -30 "$TMP/run.log"; fail "no new windows covered on the new primary"; }
kill -0 "$RUN_PID" 2>/dev/null || fail "the daemon is not running after the failover"
if [ "$POOLED" = 0 ]; then
    grep -q 'msg="database connection lost"' "$TMP/run.log" || fail "the failover was not noticed"
    # connected again after the loss (to the only host that accepts writes now)
    sed -n '/msg="database connection lost"/,$p' "$TMP/run.log" | grep -q 'msg="database connected"' ||
        fail "no reconnection logged after the loss"
else
    # the outage happened behind the pooler (it lost or could not reach the old
    # primary); what the daemon saw depends on timing: failed statements it
    # retried, or only statements the pooler held until a server came back
    grep -Eq "@127\.0\.0\.1:$P1 closing because: (server conn crashed|connect failed)" "$OPTSNAP_PGBOUNCER_TMP/pgbouncer.log" ||
        fail "pgbouncer's log shows no loss of the old primary"
    echo "behind the pooler the daemon logged $(grep -Ec 'level=(warn|error)' "$TMP/run.log") warnings or errors"
fi
# a clock statement that waited out the outage is a slow round trip, not skew
! grep -q 'msg="clock skew' "$TMP/run.log" || fail "the outage was taken for clock skew: $(grep 'msg="clock skew' "$TMP/run.log" | head -1)"
echo "covered on the new primary: at promotion $AT_PROMOTE, now $(covered "$NEW_PRIMARY")"
e2e_stop "$RUN_PID" TERM 60
[ "$E2E_STOP_RC" = 0 ] || { tail -30 "$TMP/run.log"; fail "run exited $E2E_STOP_RC after the failover"; }
grep -q 'msg="drained: everything fetched is committed"' "$TMP/run.log" || fail "no drain after the failover"

echo "== the new primary against the truth; gaps and repair"
python3 "$HERE/check_truth.py" "$NEW_PRIMARY" "$SIM_URL" --clock "$SIM_CLOCK" --speed "$SPEED" ||
    fail "covered windows on the new primary differ from the simulator's truth"
dups=$(pg_scalar "$NEW_PRIMARY" "SELECT count(*) FROM (SELECT ticker, last_updated FROM option_snapshots GROUP BY 1, 2 HAVING count(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups duplicate keys"
iso() { python3 -c "import datetime,sys; print(datetime.datetime.fromtimestamp(int(sys.argv[1])/1e6, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$1"; }
FIRST=$(pg_scalar "$NEW_PRIMARY" "SELECT (extract(epoch FROM min(window_start)) * 1000000)::int8 FROM ingest_coverage")
LAST_END=$(pg_scalar "$NEW_PRIMARY" "SELECT (extract(epoch FROM max(window_end)) * 1000000)::int8 FROM ingest_coverage")
G=(--calendar always --cadence 60s --universe SPY,QQQ --since "$(iso "$FIRST")" --until "$(iso "$LAST_END")")
# the windows of the run not covered (the outage, if the daemon could not catch up)
UNCOVERED=$(pg_scalar "$NEW_PRIMARY" "
  SELECT count(*) FROM unnest(ARRAY['QQQ','SPY']) AS u,
         generate_series(to_timestamp($FIRST / 1e6), to_timestamp($LAST_END / 1e6) - interval '60 s', interval '60 s') AS g
   WHERE NOT EXISTS (SELECT 1 FROM ingest_coverage c WHERE c.underlying = u AND c.window_start = g)")
BACKFILLED0=$(pg_scalar "$NEW_PRIMARY" "SELECT count(*) FROM ingest_coverage WHERE source = 'backfill'")
set +e
DATABASE_URL=$CLIENT_NEW "$BIN" gaps "${G[@]}" --format json >"$TMP/gaps1.json" 2>"$TMP/gaps1.log"
rc=$?
set -e
LISTED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_windows"])' "$TMP/gaps1.json")
echo "windows of the run not covered: $UNCOVERED; listed by gaps: $LISTED (exit $rc)"
[ "$LISTED" = "$UNCOVERED" ] || fail "gaps lists $LISTED windows, $UNCOVERED are uncovered"
if [ "$UNCOVERED" -gt 0 ]; then
    [ "$rc" = 3 ] || fail "gaps exited $rc with gaps present"
    LOOKBACK=$(( (LAST_END - FIRST) / 1000000 ))s
    DATABASE_URL=$CLIENT_NEW "$BIN" repair --api-url "$SIM_URL" --calendar always --cadence 60s --universe SPY,QQQ \
        --until "$(iso "$LAST_END")" --lookback "$LOOKBACK" >"$TMP/repair.out" 2>"$TMP/repair.log" ||
        { tail -20 "$TMP/repair.log"; fail "repair on the new primary did not exit 0"; }
    [ "$(pg_scalar "$NEW_PRIMARY" "SELECT count(*) FROM ingest_coverage WHERE source = 'backfill'")" = "$((BACKFILLED0 + UNCOVERED))" ] ||
        fail "repair marked other windows than the $UNCOVERED listed"
    RANGES=$(python3 -c '
import json, sys, datetime
d = json.load(open(sys.argv[1]))
ts = lambda t: int(datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000
print(" ".join("%s:%d:%d" % (g["underlying"], ts(g["start"]), ts(g["end"])) for g in d["gaps"]))' "$TMP/gaps1.json")
    # shellcheck disable=SC2086
    python3 "$HERE/check_backfill.py" "$NEW_PRIMARY" "$SIM_URL" $RANGES || fail "repaired rows differ from the truth"
else
    [ "$rc" = 0 ] || fail "gaps exited $rc with no gaps"
fi
DATABASE_URL=$CLIENT_NEW "$BIN" gaps "${G[@]}" >"$TMP/gaps2.out" 2>&1 || { cat "$TMP/gaps2.out"; fail "gaps still reported after repair"; }
e2e_stop "$SIM_PID" TERM 10
echo "failover e2e: ok (pooled=$POOLED covered before=$BEFORE at_promote=$AT_PROMOTE uncovered_after=$UNCOVERED)"
