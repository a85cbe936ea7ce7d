#!/usr/bin/env bash
# scripts/bench.sh - optsnap's performance figures, each against a baseline
# measured in the same run on the same machine (never a timed test):
#   (1) physical ceiling: binary COPY of the same rows into empty tables;
#   (2) the writer alone (rows in memory -> PostgreSQL), first write and re-poll;
#   (3) the full path, simulator -> optsnap -> PostgreSQL, for a large universe:
#       first sweep and an unchanged re-poll (the simulator's clock is frozen);
#   (4) optsnap's peak RSS at two universe sizes;
#   (5) history: the aggregate requests of a pruned repair of a one-hour gap
#       against a naive one (--no-prune) on the same data, and that both
#       write the same rows.
# usage: scripts/bench.sh [--contracts-large N] [--writer-rows N] [--history-only]
#        [--history-underlyings N] [--history-contracts N]
#   default large universe: 300 underlyings x 5000 contracts = 1.5M contracts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
UNDERLYINGS_LARGE=300
CONTRACTS=5000
WRITER_ROWS=300000
HISTORY_ONLY=0
HISTORY_UNDERLYINGS=10
HISTORY_CONTRACTS=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --underlyings-large) UNDERLYINGS_LARGE=$2; shift ;;
        --contracts) CONTRACTS=$2; shift ;;
        --writer-rows) WRITER_ROWS=$2; shift ;;
        --history-only) HISTORY_ONLY=1 ;;
        --history-underlyings) HISTORY_UNDERLYINGS=$2; shift ;;
        --history-contracts) HISTORY_CONTRACTS=$2; shift ;;
        *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '== %s\n' "$*" >&2; }

# ---- build (release) ----
BUILD=$ROOT/build-bench
if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" optsnap bench_writer >/dev/null
BIN=$BUILD/optsnap

# ---- throwaway cluster (durable: fsync on, the same price for every figure) ----
. "$ROOT/scripts/lib/common.sh"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    optsnap_pg_stop
    rm -rf "${TMP:-}"
}
trap cleanup EXIT INT TERM
TMP=$(mktemp -d /tmp/optsnap-bench.XXXXXX)
optsnap_pg_start durable || { echo "bench.sh: cannot start PostgreSQL" >&2; exit 1; }
URL=$OPTSNAP_PGURL
PORT=${URL##*:}; PORT=${PORT%%/*}
say "PostgreSQL 15 on port $PORT, $(nproc) cores"

history_bench() { # (5): pruned vs naive repair of a one-hour gap
    local port names url_a url_b sim_url t_end stats0 stats1 stats2
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    names=$(python3 -c "print(','.join(f'H{i:03d}' for i in range($HISTORY_UNDERLYINGS)))")
    say "history: pruned vs naive repair of a one-hour gap, $HISTORY_UNDERLYINGS x $HISTORY_CONTRACTS contracts"
    # 360x: a 600 s cadence window is 1.7 s real, the one-hour gap 10 s real
    "$BIN" mock-api --port "$port" --seed 3 --underlyings "$names" --contracts "$HISTORY_CONTRACTS" \
        --clock 2026-11-02T15:00:00Z --speed 360 --always-open --log-level warn >"$TMP/hsim.log" 2>&1 &
    PIDS+=($!)
    sim_url="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -fsS "$sim_url/_sim/clock" >/dev/null 2>&1 && break; sleep 0.1; done
    psql -X -q "$URL" -c "CREATE DATABASE bench_hist_a" >/dev/null
    url_a="postgresql://postgres@127.0.0.1:$PORT/bench_hist_a"
    url_b="postgresql://postgres@127.0.0.1:$PORT/bench_hist_b"
    DATABASE_URL=$url_a "$BIN" migrate >/dev/null 2>&1
    local clock now_us
    now_us=$(curl -fsS "$sim_url/_sim/clock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sim_now_us"])')
    clock="$(python3 -c "import datetime; print(datetime.datetime.fromtimestamp($now_us/1e6, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'))")@$(date +%s.%N)"
    local live=(--api-url "$sim_url" --universe "$names" --calendar always --cadence 600s --clock "$clock"
                --clock-speed 360 --listen "" --http-concurrency 32 --db-connections 2)
    DATABASE_URL=$url_a OPTSNAP_API_KEY=bench "$BIN" run "${live[@]}" --max-sweeps 2 >"$TMP/hrun1.log" 2>&1
    sleep 10
    DATABASE_URL=$url_a OPTSNAP_API_KEY=bench "$BIN" run "${live[@]}" --max-sweeps 2 >"$TMP/hrun2.log" 2>&1
    t_end=$(psql -X -qAt "$url_a" -c "SELECT to_char(max(window_end) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ingest_coverage")
    psql -X -q "$URL" -c "CREATE DATABASE bench_hist_b TEMPLATE bench_hist_a" >/dev/null
    local rep=(--api-url "$sim_url" --universe "$names" --calendar always --cadence 600s --until "$t_end"
               --lookback 3h --backfill-http-concurrency 32)
    DATABASE_URL=$url_a OPTSNAP_API_KEY=bench "$BIN" repair "${rep[@]}" --dry-run >"$TMP/hplan.out" 2>/dev/null || true
    grep '^plan: windows' "$TMP/hplan.out" >&2 || true
    stats0=$(curl -fsS "$sim_url/_sim/stats")
    DATABASE_URL=$url_a OPTSNAP_API_KEY=bench "$BIN" repair "${rep[@]}" >"$TMP/hrep_a.out" 2>"$TMP/hrep_a.log" || true
    stats1=$(curl -fsS "$sim_url/_sim/stats")
    DATABASE_URL=$url_b OPTSNAP_API_KEY=bench "$BIN" repair "${rep[@]}" --no-prune >"$TMP/hrep_b.out" 2>"$TMP/hrep_b.log" || true
    stats2=$(curl -fsS "$sim_url/_sim/stats")
    local q="SELECT count(*) || ' ' || md5(string_agg(ticker || last_updated::text || coalesce(day_volume, -1), ',' ORDER BY ticker, last_updated)) FROM option_snapshots WHERE source = 'backfill'"
    local rows_a rows_b
    rows_a=$(psql -X -qAt "$url_a" -c "$q")
    rows_b=$(psql -X -qAt "$url_b" -c "$q")
    python3 - "$stats0" "$stats1" "$stats2" "$rows_a" "$rows_b" "$TMP/hrep_a.out" "$TMP/hrep_b.out" <<'PYEND'
import json, sys
s0, s1, s2 = (json.loads(x) for x in sys.argv[1:4])
pruned, naive = s1["aggs"] - s0["aggs"], s2["aggs"] - s1["aggs"]
lp, ln = s1["reference"] - s0["reference"], s2["reference"] - s1["reference"]
a, b = sys.argv[4], sys.argv[5]
same = "yes" if a == b and not a.startswith("0 ") else f"NO ({a} vs {b})"
ratio = f"{pruned / naive:.2f}" if naive else "n/a"
print(f"history, one-hour gap: aggregate requests pruned {pruned}, naive {naive}, pruned/naive {ratio} "
      f"(target <= 0.2); listing pages {lp} vs {ln}; same backfilled rows ({a.split()[0]}): {same}")
for f in sys.argv[6:8]:
    for line in open(f):
        if line.startswith("repair: contracts") or " units: " in line:
            print("  " + line.rstrip())
PYEND
}

if [ "$HISTORY_ONLY" = 1 ]; then
    history_bench
    exit 0
fi

# ---- (1) + (2) ----
say "writer vs COPY: $WRITER_ROWS rows"
psql -X -q "$URL" -c "CREATE DATABASE bench_writer" >/dev/null
"$BUILD/bench_writer" "postgresql://postgres@127.0.0.1:$PORT/bench_writer" "$WRITER_ROWS" 4 5000 2>/dev/null

# ---- (3) + (4) ----
sweep() { # sweep LABEL DB UNDERLYINGS: one sweep of the whole universe; prints rows/s and RSS
    local label=$1 db=$2 n=$3 log=$TMP/$1.log
    local t0 t1 sim_cpu0 pg_cpu0
    sim_cpu0=$(proc_cpu "$SIM_PID" self)
    pg_cpu0=$(proc_cpu "$PG_PID" children)
    t0=$(date +%s.%N)
    DATABASE_URL=$db OPTSNAP_API_KEY=bench "$BIN" run --api-url "$SIM_URL" --universe "@$TMP/universe.$n" \
        --calendar always --cadence 3600s --max-sweeps 1 --listen "" --page-limit 250 \
        --http-concurrency 16 --db-connections 2 --batch-rows 5000 --queue-max-rows 50000 \
        --stats-interval 5s >"$log" 2>&1
    t1=$(date +%s.%N)
    local sim_cpu pg_cpu
    sim_cpu=$(python3 -c "print(f'{$(proc_cpu "$SIM_PID" self) - $sim_cpu0:.1f}')")
    pg_cpu=$(python3 -c "print(f'{$(proc_cpu "$PG_PID" children) - $pg_cpu0:.1f}')")
    local line rows written unchanged rss
    line=$(grep 'msg="optsnap run stopped"' "$log")
    rows=$(sed -n 's/.* rows_fetched=\([0-9]*\).*/\1/p' <<<"$line")
    written=$(sed -n 's/.* rows_written=\([0-9]*\).*/\1/p' <<<"$line")
    unchanged=$(sed -n 's/.* rows_unchanged=\([0-9]*\).*/\1/p' <<<"$line")
    rss=$(sed -n 's/.* max_rss_kb=\([0-9]*\).*/\1/p' <<<"$line")
    local own_cpu
    own_cpu=$(sed -n 's/.* cpu_seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    local secs rps
    secs=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
    rps=$(python3 -c "print(f'{$rows / ($t1 - $t0):.0f}')")
    printf '%-24s rows=%-8s written=%-8s unchanged=%-8s %7ss %7s rows/s  rss=%s MiB  cpu s: optsnap %s simulator %s postgres %s\n' \
        "$label" "$rows" "$written" "$unchanged" "$secs" "$rps" "$((rss / 1024))" "$own_cpu" "$sim_cpu" "$pg_cpu"
    echo "$rps" >"$TMP/$label.rps"
}

SIM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# synthetic underlyings, the same list for the simulator and for optsnap's universe
python3 - "$UNDERLYINGS_LARGE" "$TMP" <<'EOF2'
import itertools, string, sys
n, tmp = int(sys.argv[1]), sys.argv[2]
names = ["".join(p) for p in itertools.product(string.ascii_uppercase, repeat=3)][:n]
open(f"{tmp}/universe.{n}", "w").write("\n".join(names) + "\n")
open(f"{tmp}/universe.20", "w").write("\n".join(names[:20]) + "\n")
open(f"{tmp}/universe.csv", "w").write(",".join(names))
EOF2
"$BIN" mock-api --port "$SIM_PORT" --seed 1 --underlyings "$(cat "$TMP/universe.csv")" --contracts "$CONTRACTS" \
    --clock 2026-11-02T17:00:00Z --speed 0 --log-level warn >"$TMP/sim.log" 2>&1 &
PIDS+=($!)
SIM_PID=$!
SIM_URL="http://127.0.0.1:$SIM_PORT"
PG_PID=$(head -1 "$OPTSNAP_PGTMP/data/postmaster.pid")
# proc_cpu PID self|children: CPU seconds of a process, or of its reaped
# children (PostgreSQL's backends are reaped by the postmaster when they exit)
proc_cpu() {
    python3 - "$1" "$2" <<'EOF3'
import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
hz = os.sysconf("SC_CLK_TCK")
ut, st, cut, cst = (int(x) for x in f[11:15])
print((ut + st) / hz if sys.argv[2] == "self" else (cut + cst) / hz)
EOF3
}
for _ in $(seq 100); do curl -fsS "$SIM_URL/_sim/clock" >/dev/null 2>&1 && break; sleep 0.1; done
for db in bench_small bench_large; do
    psql -X -q "$URL" -c "CREATE DATABASE $db" >/dev/null
    DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/$db" "$BIN" migrate >/dev/null 2>&1
done
SMALL="postgresql://postgres@127.0.0.1:$PORT/bench_small"
LARGE="postgresql://postgres@127.0.0.1:$PORT/bench_large"
say "full path: simulator -> optsnap -> PostgreSQL (all on $(nproc) cores)"
sweep "small-first-sweep" "$SMALL" 20
sweep "large-first-sweep" "$LARGE" "$UNDERLYINGS_LARGE"
sweep "large-unchanged-repoll" "$LARGE" "$UNDERLYINGS_LARGE"
python3 - "$TMP" <<'EOF'
import sys
tmp = sys.argv[1]
first = float(open(f"{tmp}/large-first-sweep.rps").read())
again = float(open(f"{tmp}/large-unchanged-repoll.rps").read())
print(f"re-poll / first sweep: {again / first:.2f}x")
EOF
history_bench
