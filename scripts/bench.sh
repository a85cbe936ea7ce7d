#!/usr/bin/env bash
# scripts/bench.sh - optsnap's performance figures, each against a baseline
# measured in the same run on the same machine (never a timed test):
#   (1) physical ceiling: binary COPY of the same rows into empty tables;
#   (2) the writer alone (rows in memory -> PostgreSQL), first write and re-poll;
#   (3) the full path, simulator -> optsnap -> PostgreSQL, for a large universe:
#       first sweep and an unchanged re-poll (the simulator's clock is frozen);
#   (4) optsnap's peak RSS at two universe sizes;
#   (6) history: the aggregate requests of a pruned repair of a one-hour gap
#       against a naive one (--no-prune) on the same data (--history-only: that alone);
#   (7) flat files: rows/s of a flat-file backfill of one past day against a
#       REST backfill of the same day and universe, and optsnap's peak RSS
#       while it reads the largest file the simulator makes here
#       (--flatfiles-only: that alone; --flatfiles-underlyings/--flatfiles-contracts);
#   (8) optsnap's CPU per row on the full path against cJSON alone
#       (parse + delete) on the very pages the sweep fetched, and optsnap's
#       page parser alone on them (tests/bench/bench_parse.c);
#   (5) WAL bytes per row of each sweep (pg_wal_lsn_diff around it: does not
#       depend on the machine's speed), the unchanged re-poll's above all.
# Rows land in day partitions, as in production (the simulator's frozen day
# has one), not in the DEFAULT partition; the run says how many did not.
# usage: scripts/bench.sh [--underlyings-large N] [--contracts N] [--writer-rows N] [--json FILE]
#   default large universe: 300 underlyings x 5000 contracts = 1.5M contracts;
#   e.g. --underlyings-large 4 --contracts 5000 --writer-rows 20000 on a small machine.
#   --json FILE: every figure and ratio, machine-readable, to compare runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
UNDERLYINGS_LARGE=300
CONTRACTS=5000
WRITER_ROWS=300000
JSON=""
HISTORY_ONLY=0
HISTORY_UNDERLYINGS=10
HISTORY_CONTRACTS=2000
FLAT_ONLY=0
FLAT_UNDERLYINGS=10
FLAT_CONTRACTS=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --underlyings-large) UNDERLYINGS_LARGE=$2; shift ;;
        --contracts) CONTRACTS=$2; shift ;;
        --writer-rows) WRITER_ROWS=$2; shift ;;
        --json) JSON=$2; shift ;;
        --history-only) HISTORY_ONLY=1 ;;
        --history-underlyings) HISTORY_UNDERLYINGS=$2; shift ;;
        --history-contracts) HISTORY_CONTRACTS=$2; shift ;;
        --flatfiles-only) FLAT_ONLY=1 ;;
        --flatfiles-underlyings) FLAT_UNDERLYINGS=$2; shift ;;
        --flatfiles-contracts) FLAT_CONTRACTS=$2; shift ;;
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
ninja -C "$BUILD" optsnap bench_writer bench_parse >/dev/null
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
    # the lookback starts at the first run's first window: the gap between the
    # two runs is what is repaired, not the hours before the first one
    local span_s
    span_s=$(psql -X -qAt "$url_a" -c "SELECT extract(epoch FROM max(window_end) - min(window_start))::int8 FROM ingest_coverage")
    psql -X -q "$URL" -c "CREATE DATABASE bench_hist_b TEMPLATE bench_hist_a" >/dev/null
    local rep=(--api-url "$sim_url" --universe "$names" --calendar always --cadence 600s --until "$t_end"
               --lookback "${span_s}s" --backfill-http-concurrency 32)
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

flatfiles_bench() { # (7) TAG UNDERLYINGS CONTRACTS HTTP_RATE: one past day from the flat file vs from the aggregates endpoint
    local tag=$1 nu=$2 nc=$3 rate=$4
    local port names sim_url db_rest db_flat common rows_q
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    names=$(python3 -c "print(','.join(f'F{i:03d}' for i in range($nu)))")
    say "flat files: one past day, $nu x $nc contracts, http_rate $rate, REST backfill vs flat-file backfill"
    MOCK_FLATFILES_ACCESS_KEY=bench-access MOCK_FLATFILES_SECRET_KEY=bench-secret \
        "$BIN" mock-api --port "$port" --seed 5 --underlyings "$names" --contracts "$nc" \
        --clock 2026-11-04T15:00:00Z --speed 0 --always-open --log-level warn >"$TMP/fsim.log" 2>&1 &
    PIDS+=($!)
    sim_url="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -fsS "$sim_url/_sim/clock" >/dev/null 2>&1 && break; sleep 0.1; done
    # the object once (the simulator builds it on the first GET): its size, and no build time in either figure
    curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user bench-access:bench-secret \
        "$sim_url/flatfiles/us_options_opra/minute_aggs_v1/2026/11/2026-11-02.csv.gz" -o "$TMP/day.csv.gz"
    local gz_bytes csv_bytes
    gz_bytes=$(stat -c %s "$TMP/day.csv.gz")
    csv_bytes=$(gzip -dc "$TMP/day.csv.gz" | wc -c)
    for d in "bench_ff_rest$tag" "bench_ff_flat$tag"; do
        psql -X -q "$URL" -c "CREATE DATABASE $d" >/dev/null
        DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/$d" "$BIN" migrate >/dev/null 2>&1
    done
    db_rest="postgresql://postgres@127.0.0.1:$PORT/bench_ff_rest$tag"
    db_flat="postgresql://postgres@127.0.0.1:$PORT/bench_ff_flat$tag"
    common=(--from 2026-11-02T05:00:00Z --to 2026-11-03T05:00:00Z --universe "$names" --calendar always
            --api-url "$sim_url" --backfill-http-concurrency 32 --backfill-db-connections 2 --batch-rows 5000
            --http-rate "$rate")
    local t0 t1 t2 t3
    t0=$(date +%s.%N)
    DATABASE_URL=$db_rest OPTSNAP_API_KEY=bench /usr/bin/time -v "$BIN" backfill "${common[@]}" \
        >"$TMP/ff_rest.out" 2>"$TMP/ff_rest.log" || true
    t1=$(date +%s.%N)
    local s0 s1
    s0=$(curl -fsS "$sim_url/_sim/stats")
    t2=$(date +%s.%N)
    DATABASE_URL=$db_flat OPTSNAP_API_KEY=bench OPTSNAP_FLATFILES_SECRET_KEY=bench-secret /usr/bin/time -v \
        "$BIN" backfill --from-flatfiles "${common[@]}" --flatfiles-url "$sim_url/flatfiles" \
        --flatfiles-access-key bench-access >"$TMP/ff_flat.out" 2>"$TMP/ff_flat.log" || true
    t3=$(date +%s.%N)
    s1=$(curl -fsS "$sim_url/_sim/stats")
    # the same rows either way, day_vwap aside (the file has no vwap column)
    rows_q="SELECT count(*) || ' ' || md5(string_agg((ticker, last_updated, day_open, day_high, day_low, day_close,
            day_volume, day_previous_close, day_change, day_change_percent, day_time)::text, '|'
            ORDER BY ticker, last_updated)) FROM option_snapshots WHERE source = 'backfill'"
    python3 - "$t0" "$t1" "$t2" "$t3" "$(psql -X -qAt "$db_rest" -c "$rows_q")" "$(psql -X -qAt "$db_flat" -c "$rows_q")" \
        "$TMP/ff_flat.log" "$gz_bytes" "$csv_bytes" "$s0" "$s1" "$TMP/ff_rest.out" "$TMP/ff_flat.out" \
        "$TMP/ff_rest.log" "$rate" <<'PYEND'
import json, re, sys
t0, t1, t2, t3 = (float(x) for x in sys.argv[1:5])
rest, flat = sys.argv[5], sys.argv[6]
rows = int(rest.split()[0])
def peak_kb(path):
    for line in open(path):
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", line)
        if m:
            return int(m.group(1))
    return 0
rss_kb, rest_rss_kb = peak_kb(sys.argv[7]), peak_kb(sys.argv[14])
gz, csv = int(sys.argv[8]), int(sys.argv[9])
s0, s1 = json.loads(sys.argv[10]), json.loads(sys.argv[11])
rest_rps, flat_rps = rows / (t1 - t0), int(flat.split()[0]) / (t3 - t2)
same = "yes" if rest == flat and rows > 0 else f"NO ({rest} vs {flat})"
print(f"flat files, one past day, http_rate {sys.argv[15]} (0 = unlimited): REST backfill {rows} rows in {t1 - t0:.1f}s = {rest_rps:.0f} rows/s; "
      f"flat-file backfill {flat.split()[0]} rows in {t3 - t2:.1f}s = {flat_rps:.0f} rows/s; "
      f"flat/REST {flat_rps / rest_rps:.2f}x (target >= 10x); same rows (vwap aside): {same}")
print(f"flat files: peak RSS of the flat-file backfill {rss_kb / 1024:.1f} MiB (target <= 64 MiB; the REST "
      f"backfill's {rest_rss_kb / 1024:.1f} MiB) reading a "
      f"{gz / 1e6:.1f} MB file ({csv / 1e6:.1f} MB of CSV); API requests during it: aggregates "
      f"{s1['aggs'] - s0['aggs']}, listing {s1['reference'] - s0['reference']}")
for f in sys.argv[12:14]:
    for line in open(f):
        if line.startswith("backfill: "):
            print("  " + line.rstrip())
PYEND
}

flatfiles_benches() {
    flatfiles_bench a "$FLAT_UNDERLYINGS" "$FLAT_CONTRACTS" 0 # the largest file here; REST as fast as loopback allows
    flatfiles_bench b 2 500 100 # the API as paid plans are asked to use it: about 100 requests/s
}

if [ "$FLAT_ONLY" = 1 ]; then
    flatfiles_benches
    exit 0
fi

if [ "$HISTORY_ONLY" = 1 ]; then
    history_bench
    exit 0
fi


# ---- (1) + (2) ----
say "writer vs COPY: $WRITER_ROWS rows"
psql -X -q "$URL" -c "CREATE DATABASE bench_writer" >/dev/null
"$BUILD/bench_writer" "postgresql://postgres@127.0.0.1:$PORT/bench_writer" "$WRITER_ROWS" 4 5000 2>/dev/null \
    | tee "$TMP/writer.txt"

# ---- (3) + (4) ----
sweep() { # sweep LABEL DB UNDERLYINGS: one sweep of the whole universe; prints rows/s and RSS
    local label=$1 db=$2 n=$3 log=$TMP/$1.log
    local t0 t1 sim_cpu0 pg_cpu0 lsn0 lsn1
    lsn0=$(psql -X -A -t -q "$URL" -c "SELECT pg_current_wal_lsn()")
    sim_cpu0=$(proc_cpu "$SIM_PID" self)
    pg_cpu0=$(proc_cpu "$PG_PID" children)
    t0=$(date +%s.%N)
    DATABASE_URL=$db OPTSNAP_API_KEY=bench "$BIN" run --api-url "$SIM_URL" --universe "@$TMP/universe.$n" \
        --calendar always --cadence 3600s --max-sweeps 1 --listen "" --page-limit 250 \
        --http-concurrency 16 --db-connections 2 --batch-rows 5000 --queue-max-rows 50000 \
        --stats-interval 5s >"$log" 2>&1
    t1=$(date +%s.%N)
    lsn1=$(psql -X -A -t -q "$URL" -c "SELECT pg_current_wal_lsn()")
    local wal
    wal=$(psql -X -A -t -q "$URL" -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::int8")
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
    local walrow
    walrow=$(python3 -c "print(f'{$wal / max($rows, 1):.1f}')")
    printf '%-24s rows=%-8s written=%-8s unchanged=%-8s %7ss %7s rows/s  rss=%s MiB  cpu s: optsnap %s simulator %s postgres %s  WAL %s B/row\n' \
        "$label" "$rows" "$written" "$unchanged" "$secs" "$rps" "$((rss / 1024))" "$own_cpu" "$sim_cpu" "$pg_cpu" "$walrow"
    echo "$rps" >"$TMP/$label.rps"
    printf '{"label":"%s","rows":%s,"written":%s,"unchanged":%s,"seconds":%s,"rows_per_s":%s,"max_rss_kib":%s,"cpu_s_optsnap":%s,"cpu_s_simulator":%s,"cpu_s_postgres":%s,"wal_bytes":%s,"wal_bytes_per_row":%s}\n' \
        "$label" "$rows" "${written:-0}" "${unchanged:-0}" "$secs" "$rps" "${rss:-0}" "${own_cpu:-0}" "$sim_cpu" "$pg_cpu" \
        "$wal" "$walrow" >>"$TMP/sweeps.jsonl"
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
    # day partitions around the simulator's frozen day, as the daemon makes them in production
    psql -X -q "postgresql://postgres@127.0.0.1:$PORT/$db" \
        -c "SELECT optsnap_ensure_partitions(date '2026-10-01', date '2026-11-03')" >/dev/null
done
SMALL="postgresql://postgres@127.0.0.1:$PORT/bench_small"
LARGE="postgresql://postgres@127.0.0.1:$PORT/bench_large"
say "full path: simulator -> optsnap -> PostgreSQL (all on $(nproc) cores)"
sweep "small-first-sweep" "$SMALL" 20
sweep "large-first-sweep" "$LARGE" "$UNDERLYINGS_LARGE"
# The unchanged re-poll: the fingerprint table lives in the process, so a
# re-poll is the second sweep of one daemon (the simulator's clock is frozen:
# every row is the same). Figures of that sweep alone: sampled when the first
# sweep's windows are all covered, and at exit.
repoll() { # repoll LABEL DB UNDERLYINGS
    local label=$1 db=$2 n=$3 log=$TMP/$1.log cadence=30
    local covered0 pid
    covered0=$(psql -X -A -t -q "$db" -c "SELECT count(*) FROM ingest_coverage")
    # start just after a window boundary, so the first sweep ends long before the second starts
    python3 -c "import time; time.sleep((0.5 - time.time()) % $cadence)"
    DATABASE_URL=$db OPTSNAP_API_KEY=bench "$BIN" run --api-url "$SIM_URL" --universe "@$TMP/universe.$n" \
        --calendar always --cadence ${cadence}s --max-sweeps 2 --listen "" --page-limit 250 \
        --http-concurrency 16 --db-connections 2 --batch-rows 5000 --queue-max-rows 50000 \
        --stats-interval 60s --log-level debug >"$log" 2>&1 &
    pid=$!
    while [ "$(psql -X -A -t -q "$db" -c "SELECT count(*) FROM ingest_coverage")" -lt $((covered0 + n)) ]; do
        kill -0 "$pid" 2>/dev/null || { echo "bench.sh: the re-poll daemon exited early" >&2; tail "$log" >&2; return 1; }
        sleep 0.1
    done
    local lsn0 own0 pgc0 pgb0 sim0
    lsn0=$(psql -X -A -t -q "$URL" -c "SELECT pg_current_wal_lsn()")
    own0=$(proc_cpu "$pid" self)
    sim0=$(proc_cpu "$SIM_PID" self)
    pgc0=$(proc_cpu "$PG_PID" children)
    pgb0=0
    for b in $(psql -X -A -t -q "$URL" -c "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'optsnap%'"); do
        local c
        c=$(proc_cpu "$b" self 2>/dev/null) || c=0
        pgb0=$(python3 -c "print($pgb0 + ${c:-0})")
    done
    wait "$pid"
    local lsn1 wal
    lsn1=$(psql -X -A -t -q "$URL" -c "SELECT pg_current_wal_lsn()")
    wal=$(psql -X -A -t -q "$URL" -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::int8")
    local line own_cpu rss
    line=$(grep 'msg="optsnap run stopped"' "$log")
    own_cpu=$(sed -n 's/.* cpu_seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    rss=$(sed -n 's/.* max_rss_kb=\([0-9]*\).*/\1/p' <<<"$line")
    python3 - "$log" "$label" "$wal" "$own_cpu" "$own0" "$(proc_cpu "$SIM_PID" self)" "$sim0" \
        "$(proc_cpu "$PG_PID" children)" "$pgc0" "$pgb0" "$rss" "$TMP" <<'EOF4'
import json, re, sys
log, label, wal = sys.argv[1], sys.argv[2], int(sys.argv[3])
own = float(sys.argv[4]) - float(sys.argv[5]); sim = float(sys.argv[6]) - float(sys.argv[7])
pg = float(sys.argv[8]) - float(sys.argv[9]) - float(sys.argv[10])
rss, tmp = int(sys.argv[11] or 0), sys.argv[12]
sweeps = {}
for line in open(log):
    if 'msg="sweep covered"' not in line:
        continue
    w = re.search(r" window=(\S+)", line).group(1)
    rows = int(re.search(r" rows=(\d+)", line).group(1)); secs = float(re.search(r" seconds=([0-9.]+)", line).group(1))
    r, s = sweeps.get(w, (0, 0.0)); sweeps[w] = (r + rows, max(s, secs))
second = sweeps[sorted(sweeps)[-1]]
rows, secs = second
skipped = 0
for line in open(log):
    m = re.search(r'msg="optsnap run stopped".* rows_unchanged=(\d+)', line)
    if m:
        skipped = int(m.group(1))
d = {"label": label, "rows": rows, "written": 0, "unchanged": skipped, "seconds": secs,
     "rows_per_s": round(rows / secs) if secs else 0, "max_rss_kib": rss, "cpu_s_optsnap": round(own, 2),
     "cpu_s_simulator": round(sim, 2), "cpu_s_postgres": round(pg, 2), "wal_bytes": wal,
     "wal_bytes_per_row": round(wal / max(rows, 1), 1)}
print(f"{label:<24} rows={rows:<8} unchanged(all sweeps)={skipped:<8} {secs:7.2f}s {d['rows_per_s']:7} rows/s  "
      f"rss={rss // 1024} MiB  cpu s: optsnap {own:.2f} simulator {sim:.2f} postgres {pg:.2f}  WAL {d['wal_bytes_per_row']} B/row")
open(f"{tmp}/sweeps.jsonl", "a").write(json.dumps(d) + "\n")
EOF4
}
repoll "large-unchanged-repoll" "$LARGE" "$UNDERLYINGS_LARGE"
# ---- (8) CPU per row: cJSON alone, optsnap's parser, optsnap's full path ----
# the simulator's clock is frozen: these are the pages the sweeps fetched
say "parse: cJSON alone and optsnap's page parser on the large universe's pages"
mkdir -p "$TMP/pages"
python3 - "$SIM_URL" "$TMP/universe.$UNDERLYINGS_LARGE" "$TMP/pages" <<'EOF5'
import json, sys, urllib.request
base, uni, out = sys.argv[1:4]
n = 0
for u in open(uni).read().split():
    url = f"{base}/v3/snapshot/options/{u}?limit=250"
    while url:
        body = urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer bench"})).read()
        open(f"{out}/{n:06d}.json", "wb").write(body)
        n += 1
        url = json.loads(body).get("next_url")
EOF5
"$BUILD/bench_parse" 5 "$TMP"/pages/*.json | tee "$TMP/parse.txt"
# ---- (6) the seed's pattern as a peer: same simulator, same PostgreSQL ----
SEED_PY=/usr/bin/python3
if ! "$SEED_PY" -c 'import psycopg2' 2>/dev/null; then
    say "installing python3-psycopg2 (Debian) for the seed's pattern"
    apt-get install -y -q python3-psycopg2 >/dev/null 2>&1 || true
fi
if "$SEED_PY" -c 'import psycopg2' 2>/dev/null; then
    psql -X -q "$URL" -c "CREATE DATABASE bench_seed" >/dev/null
    SEED="postgresql://postgres@127.0.0.1:$PORT/bench_seed"
    DATABASE_URL=$SEED "$BIN" migrate >/dev/null 2>&1
    psql -X -q "$SEED" -c "SELECT optsnap_ensure_partitions(date '2026-10-01', date '2026-11-03')" >/dev/null
    say "the seed's pattern: one autocommitted upsert per contract and per snapshot, 32 threads"
    for label in seed-first-sweep seed-unchanged-repoll; do
        out=$("$SEED_PY" "$ROOT/scripts/bench_seed.py" "$SEED" "$SIM_URL" "$TMP/universe.$UNDERLYINGS_LARGE" --threads 32)
        echo "$label $out"
        echo "$out" | sed -n 's/.*rows_per_s=\([0-9]*\).*/\1/p' >"$TMP/$label.rps"
    done
else
    say "python3-psycopg2 missing: the seed's pattern is not measured"
fi

# stored size of a snapshot row: heap + TOAST + every index of the partitions holding rows
# over the rows (the large universe's first sweep; the re-poll added none)
psql -X -A -t -q -F ' ' "$LARGE" -c "
  SELECT count(*), sum(pg_table_size(t.relid)), sum(pg_indexes_size(t.relid)), (SELECT count(*) FROM option_snapshots),
         sum(pg_relation_size(t.relid, 'main')),
         (SELECT sum(pg_relation_size(i.indexrelid) - 8192) FROM pg_index i JOIN pg_partition_tree('option_snapshots') u
             ON u.relid = i.indrelid WHERE u.isleaf AND pg_table_size(u.relid) > 0)
    FROM pg_partition_tree('option_snapshots') t
   WHERE t.isleaf AND pg_table_size(t.relid) > 0" >"$TMP/size.txt" # partitions holding rows: an empty one's index pages are not a row's
read -r size_parts size_heap size_idx size_rows size_main size_idx_leaves <"$TMP/size.txt"
python3 -c "import sys; h, i, n = map(int, sys.argv[1:4]); print(f'stored size per snapshot row: {(h + i) / max(n, 1):.0f} bytes (heap+TOAST {h / max(n, 1):.0f}, indexes {i / max(n, 1):.0f}; {n} rows in {sys.argv[4]} partitions; target <= 300)')" \
    "$size_heap" "$size_idx" "$size_rows" "$size_parts" | tee "$TMP/size_line.txt"
# without what each partition costs whatever its size (free-space and
# visibility maps, an index's metapage): what a row costs in a day partition
# of a whole market's sweeps, where those are noise
python3 -c "import sys; h, i, n = map(int, sys.argv[1:4]); print(f'  per row without per-partition overhead: {(h + i) / max(n, 1):.0f} bytes (heap main fork {h / max(n, 1):.0f}, index pages {i / max(n, 1):.0f})')" \
    "$size_main" "$size_idx_leaves" "$size_rows" | tee -a "$TMP/size_line.txt"
default_rows=$(psql -X -A -t -q "$LARGE" -c "SELECT count(*) FROM option_snapshots_default")
total_rows=$(psql -X -A -t -q "$LARGE" -c "SELECT count(*) FROM option_snapshots")
echo "rows in the DEFAULT partition: $default_rows of $total_rows"
python3 - "$TMP" "$JSON" "$default_rows" "$total_rows" "$UNDERLYINGS_LARGE" "$CONTRACTS" "$WRITER_ROWS" <<'EOF'
import json, re, subprocess, sys
tmp, out = sys.argv[1], sys.argv[2]
sweeps = {d["label"]: d for d in map(json.loads, open(f"{tmp}/sweeps.jsonl"))}
first, again = sweeps["large-first-sweep"], sweeps["large-unchanged-repoll"]
ratios = {
    "repoll_over_first_sweep": again["rows_per_s"] / first["rows_per_s"],
    "postgres_cpu_repoll_over_first": again["cpu_s_postgres"] / first["cpu_s_postgres"] if first["cpu_s_postgres"] else None,
}
print(f"re-poll / first sweep: {ratios['repoll_over_first_sweep']:.2f}x")
if ratios["postgres_cpu_repoll_over_first"] is not None:
    print(f"PostgreSQL CPU, re-poll / first sweep: {ratios['postgres_cpu_repoll_over_first']:.2f}")
print(f"WAL per row, unchanged re-poll: {again['wal_bytes_per_row']} bytes (first sweep {first['wal_bytes_per_row']})")
import os
if os.path.exists(f"{tmp}/seed-first-sweep.rps"):
    seed_first = float(open(f"{tmp}/seed-first-sweep.rps").read() or 0)
    seed_again = float(open(f"{tmp}/seed-unchanged-repoll.rps").read() or 0)
    ratios["optsnap_over_seed_first_sweep"] = first["rows_per_s"] / seed_first if seed_first else None
    ratios["optsnap_over_seed_repoll"] = again["rows_per_s"] / seed_again if seed_again else None
    ratios["seed_rows_per_s"] = {"first": seed_first, "repoll": seed_again}
    print(f"optsnap / the seed's pattern: first sweep {ratios['optsnap_over_seed_first_sweep']:.1f}x, "
          f"unchanged re-poll {ratios['optsnap_over_seed_repoll']:.1f}x")
parse = dict(kv.split("=") for kv in open(f"{tmp}/parse.txt").read().split())
cj, own_parser = float(parse["cjson_us_per_row"]), float(parse["optsnap_parser_us_per_row"])
full_first = first["cpu_s_optsnap"] * 1e6 / max(first["rows"], 1)
full_again = again["cpu_s_optsnap"] * 1e6 / max(again["rows"], 1)
ratios["cpu_per_row_us"] = {"cjson_alone": cj, "optsnap_parser": own_parser,
                            "optsnap_full_path_first_sweep": round(full_first, 2),
                            "optsnap_full_path_repoll": round(full_again, 2)}
ratios["optsnap_full_path_over_cjson_first_sweep"] = full_first / cj if cj else None
ratios["optsnap_parser_over_cjson"] = own_parser / cj if cj else None
print(f"CPU per row: cJSON alone {cj:.2f} us, optsnap's parser {own_parser:.2f} us ({own_parser / cj:.2f}x cJSON), "
      f"optsnap's full path {full_first:.2f} us first sweep ({full_first / cj:.2f}x cJSON, target <= 1.0), "
      f"{full_again:.2f} us re-poll ({full_again / cj:.2f}x)")
m = re.search(r"per snapshot row: (\d+) bytes \(heap\+TOAST (\d+), indexes (\d+)", open(f"{tmp}/size_line.txt").read())
if m:
    ratios["stored_bytes_per_row"] = {"total": int(m.group(1)), "heap": int(m.group(2)), "indexes": int(m.group(3))}
m = re.search(r"without per-partition overhead: (\d+) bytes \(heap main fork (\d+), index pages (\d+)", open(f"{tmp}/size_line.txt").read())
if m:
    ratios["stored_bytes_per_row_no_partition_overhead"] = {"total": int(m.group(1)), "heap_main": int(m.group(2)),
                                                            "index_pages": int(m.group(3))}
writer = {}
for line in open(f"{tmp}/writer.txt"):
    m = re.match(r"\((\w+)\)\s.*?([0-9]+) rows/s", line)
    if m:
        writer[m.group(1)] = int(m.group(2))
if out:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    json.dump({"commit": commit, "underlyings_large": int(sys.argv[5]), "contracts_per_underlying": int(sys.argv[6]),
               "writer_rows": int(sys.argv[7]), "writer_rows_per_s": writer, "sweeps": sweeps, "ratios": ratios,
               "default_partition_rows": int(sys.argv[3]), "snapshot_rows": int(sys.argv[4])},
              open(out, "w"), indent=1)
    print(f"figures written to {out}")
EOF

# ---- (6) ----
history_bench

# ---- (7) ----
flatfiles_benches
