#!/usr/bin/env bash
# scripts/soak.sh - a simulated trading week on an accelerated clock: optsnap
# run sweeps 5 underlyings x ~2,000 contracts every market hour at 3,600x,
# i.e. one window per real second, for SOAK_SECONDS (default 180 s = 180
# market hours). Samples optsnap's RSS and open file descriptors every 5 s and
# prints them with the first and last samples after warm-up. A measurement,
# not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/scripts/lib/common.sh"
SECONDS_TOTAL=${SOAK_SECONDS:-180}
BIN=${OPTSNAP_BIN:-$ROOT/build-bench/optsnap}
[ -x "$BIN" ] || { meson setup "$ROOT/build-bench" --buildtype=release >/dev/null; ninja -C "$ROOT/build-bench" optsnap >/dev/null; }
PIDS=()
TMP=$(mktemp -d /tmp/optsnap-soak.XXXXXX)
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    optsnap_pg_stop
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
optsnap_pg_start || exit 1
psql -X -q "$OPTSNAP_PGURL" -c "CREATE DATABASE soak" >/dev/null
export DATABASE_URL=${OPTSNAP_PGURL%/*}/soak
"$BIN" migrate >/dev/null 2>&1
SIM_PORT=$(optsnap_free_port)
"$BIN" mock-api --port "$SIM_PORT" --underlyings SPY,QQQ,IWM,AAPL,MSFT --contracts 2000 \
    --clock 2026-11-02T00:00:00Z --speed 3600 --always-open --log-level warn >"$TMP/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$SIM_PORT/_sim/clock" >"$TMP/clock.json" 2>/dev/null && break; sleep 0.1; done
REAL=$(date +%s.%N)
CLOCK=$(python3 -c 'import json,sys,datetime; t=json.load(open(sys.argv[1]))["sim_now_us"]/1e6; print(datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))' "$TMP/clock.json")
OPTSNAP_API_KEY=soak "$BIN" run --api-url "http://127.0.0.1:$SIM_PORT" --universe SPY,QQQ,IWM,AAPL,MSFT \
    --calendar always --cadence 3600s --clock "$CLOCK@$REAL" --clock-speed 3600 --listen "" \
    --run-for "${SECONDS_TOTAL}s" --stats-interval 30s >"$TMP/run.log" 2>&1 &
RUN=$!
PIDS+=($RUN)
echo "t_s  rss_kib  fds  windows_covered  rows"
samples=()
t=0
while kill -0 "$RUN" 2>/dev/null; do
    sleep 5
    t=$((t + 5))
    kill -0 "$RUN" 2>/dev/null || break
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$RUN/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$RUN/fd" 2>/dev/null | wc -l)
    win=$(psql -X -Atq "$DATABASE_URL" -c "SELECT count(*) FROM ingest_coverage")
    rows=$(psql -X -Atq "$DATABASE_URL" -c "SELECT count(*) FROM option_snapshots")
    printf '%4d %8d %4d %8d %10d\n' "$t" "$rss" "$fds" "$win" "$rows"
    samples+=("$t $rss $fds")
done
wait "$RUN" && rc=0 || rc=$?
grep 'msg="optsnap run stopped"' "$TMP/run.log" | sed 's/^.*msg="optsnap run stopped" //'
python3 - "$rc" "${samples[@]}" <<'EOF'
import sys
rc = int(sys.argv[1])
s = [tuple(int(x) for x in a.split()) for a in sys.argv[2:]]
warm = [x for x in s if x[0] >= 30] or s
rss = [x[1] for x in warm]
fds = [x[2] for x in warm]
print(f"soak: exit={rc} samples={len(s)} after warm-up (t>=30s): rss_kib first={rss[0]} last={rss[-1]} "
      f"min={min(rss)} max={max(rss)}; fds first={fds[0]} last={fds[-1]} min={min(fds)} max={max(fds)}")
EOF
