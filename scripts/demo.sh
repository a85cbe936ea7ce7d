#!/usr/bin/env bash
# scripts/demo.sh - optsnap running on its embedded defaults, on a fresh Debian 12
# machine: installs what is missing, builds, starts a throwaway PostgreSQL and
# the bundled market simulator, migrates, and runs `optsnap run` in the
# foreground until Ctrl-C (which drains, commits and cleans everything up).
#
#   scripts/demo.sh                    simulator + throwaway PostgreSQL
#   OPTSNAP_API_KEY=... scripts/demo.sh          the real API instead of the simulator
#   DATABASE_URL=postgresql://... scripts/demo.sh  your database instead of a throwaway one
#
# Options: --run-for DURATION (stop by itself, e.g. 30s), --cadence DURATION
# (default 10s), --universe LIST (default SPY,QQQ,IWM,AAPL; real API: SPY).
# OPTSNAP_BIN=path uses an already built binary instead of building.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
. "$ROOT/scripts/lib/common.sh"
say() { optsnap_say "$@"; }

RUN_FOR=0
CADENCE=10s
UNIVERSE=
while [ $# -gt 0 ]; do
    case "$1" in
        --run-for) RUN_FOR=$2; shift ;;
        --cadence) CADENCE=$2; shift ;;
        --universe) UNIVERSE=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

PIDS=()
TMP=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-demo.XXXXXX")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    optsnap_pg_stop
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${OPTSNAP_BIN:-}" ]; then
    BIN=$OPTSNAP_BIN
else
    optsnap_install_packages || exit 1
    if [ ! -f "$ROOT/build-demo/build.ninja" ]; then
        say "building (meson, release)"
        meson setup "$ROOT/build-demo" --buildtype=release >"$TMP/setup.log" 2>&1 || { cat "$TMP/setup.log" >&2; exit 1; }
    fi
    ninja -C "$ROOT/build-demo" optsnap >/dev/null
    BIN=$ROOT/build-demo/optsnap
fi

if [ -z "${DATABASE_URL:-}" ]; then
    say "starting a throwaway PostgreSQL 15"
    optsnap_pg_start || { echo "demo.sh: cannot start PostgreSQL" >&2; exit 1; }
    psql -X -q "$OPTSNAP_PGURL" -c "CREATE DATABASE optsnap_demo" >/dev/null
    export DATABASE_URL=${OPTSNAP_PGURL%/*}/optsnap_demo
fi

ARGS=(--cadence "$CADENCE" --listen "")
if [ -n "${OPTSNAP_API_KEY:-}" ]; then
    say "using the real API (OPTSNAP_API_KEY is set)"
    ARGS+=(--universe "${UNIVERSE:-SPY}")
else
    SIM_PORT=$(optsnap_free_port)
    say "starting the market simulator on 127.0.0.1:$SIM_PORT"
    "$BIN" mock-api --port "$SIM_PORT" --seed 1 --underlyings "${UNIVERSE:-SPY,QQQ,IWM,AAPL}" \
        --contracts 1000 --always-open >"$TMP/simulator.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$SIM_PORT/_sim/clock" >/dev/null 2>&1 && break; sleep 0.1; done
    export OPTSNAP_API_KEY=demo
    # the simulator trades around the clock, so the demo does too
    ARGS+=(--api-url "http://127.0.0.1:$SIM_PORT" --universe "${UNIVERSE:-SPY,QQQ,IWM,AAPL}" --calendar always)
fi
[ "$RUN_FOR" != 0 ] && ARGS+=(--run-for "$RUN_FOR")

say "migrating"
"$BIN" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; exit 1; }

MASKED=$("$BIN" config 2>/dev/null | sed -n 's/^database_url *= *\([^ ]*\).*/\1/p')
cat >&2 <<EOF
== optsnap is running. Where to look:
   rows:      psql "${MASKED:-\$DATABASE_URL}" -c "SELECT underlying, count(*), max(last_updated) FROM option_snapshots GROUP BY 1"
   coverage:  psql "${MASKED:-\$DATABASE_URL}" -c "SELECT * FROM ingest_coverage ORDER BY window_start DESC LIMIT 10"
   logs:      below (logfmt; a "pool" line whenever the pool's state changes)
   stop:      Ctrl-C (drains what is in flight, commits, exits 0)
EOF
set +e
"$BIN" run "${ARGS[@]}"
rc=$?
set -e
ROWS=$(psql -X -Atq "$DATABASE_URL" -c "SELECT count(*) FROM option_snapshots" 2>/dev/null || echo "?")
WINDOWS=$(psql -X -Atq "$DATABASE_URL" -c "SELECT count(*) FROM ingest_coverage" 2>/dev/null || echo "?")
say "optsnap exited $rc: $ROWS snapshot rows, $WINDOWS covered windows"
echo "demo: rows=$ROWS windows=$WINDOWS exit=$rc"
exit "$rc"
