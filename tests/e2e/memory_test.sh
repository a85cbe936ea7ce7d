#!/usr/bin/env bash
# Memory bound (issue 11 finding 4): the simulator serves 120 underlyings
# whose chain pages are each padded to ~500 kB of valid JSON ("pad":[0,0,...],
# the shape that costs the JSON parser the most per byte), 64 transfers at a
# time. With the default http_max_inflight_bytes the daemon's peak RSS
# (VmHWM) stays <= 64 MiB and every row and window still arrives; the code
# before the budget peaked at ~68 MiB here (32 MB of half-read bodies).
# Bounded: two 5 s windows, about 15 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd python3
BIN=${OPTSNAP_BIN:?}
# under ASan the resident set is mostly shadow memory and quarantine: the bound
# is for the plain build (the budget itself: test_http_client.c test_inflight_budget)
if ldd "$BIN" 2>/dev/null | grep -q 'libasan'; then
    echo "sanitizer build: RSS measures ASan's shadow memory, not optsnap's; skipping" >&2
    exit 77
fi
e2e_tmpdir >/dev/null
DB=$(e2e_db optsnap_e2e_h11_memory)
python3 - "$E2E_TMP" <<'PY'
import itertools, string, sys
names = ["".join(p) for p in itertools.product(string.ascii_uppercase, repeat=3)][:120]
open(sys.argv[1] + "/universe.txt", "w").write("\n".join(names) + "\n")
open(sys.argv[1] + "/list.txt", "w").write(",".join(names))
PY
sim_start "$E2E_TMP/sim.log" --underlyings "$(cat "$E2E_TMP/list.txt")" --contracts 10 --always-open \
    --api-key k --pad-bytes 500000
# a page is ~500 kB: under the per-body cap (8 MiB / 16 = 512 KiB)
size=$(curl -fsS -H 'Authorization: Bearer k' "$SIM_URL/v3/snapshot/options/AAA?limit=250" | wc -c)
[ "$size" -gt 450000 ] && [ "$size" -lt 524288 ] || fail "a padded page is $size bytes, want 450000..524287"
# without meson's MALLOC_PERTURB_, which writes every allocated byte (RSS as in production)
DATABASE_URL=$DB OPTSNAP_API_KEY=k e2e_spawn "$E2E_TMP/run.log" env -u MALLOC_PERTURB_ "$BIN" run --api-url "$SIM_URL" \
    --universe "@$E2E_TMP/universe.txt" --calendar always --cadence 5s --listen "" --max-sweeps 2 \
    --lease-ttl 0 --heal-lookback 0 --run-for 60s
RUN=$E2E_LAST_PID
peak=0
while kill -0 "$RUN" 2>/dev/null; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$RUN/status" 2>/dev/null || true)
    [ -n "$v" ] && peak=$v
    sleep 0.1
done
e2e_wait_exit "$RUN" 5
[ "$E2E_STOP_RC" -eq 0 ] || fail "run exited $E2E_STOP_RC: $(tail -5 "$E2E_TMP/run.log")"
# the daemon's own getrusage peak at exit covers the last 0.1 s the sampler missed
self=$(sed -n 's/.*optsnap run stopped.* max_rss_kb=\([0-9]*\).*/\1/p' "$E2E_TMP/run.log")
[ -n "$self" ] || fail "no max_rss_kb in the stop line"
[ "$self" -gt "$peak" ] && peak=$self
[ "$peak" -gt 0 ] || fail "VmHWM was never read"
[ "$peak" -le 65536 ] || fail "peak RSS ${peak} kB > 64 MiB"
grep -q 'http body budget reached' "$E2E_TMP/run.log" || fail "the budget never engaged: the test proves nothing"
! grep -q 'http body too big' "$E2E_TMP/run.log" || fail "a page was refused as too big"
stop=$(grep 'optsnap run stopped' "$E2E_TMP/run.log")
covered=$(sed -n 's/.* sweeps_covered=\([0-9]*\) sweeps_incomplete=0 .*/\1/p' <<<"$stop")
[ "${covered:-0}" -ge 120 ] && [[ "$stop" == *" dropped=0 "* ]] || fail "windows lost: $stop"
rows=$(pg_scalar "$DB" "SELECT count(DISTINCT ticker) FROM option_snapshots")
[ "$rows" -eq 1200 ] || fail "$rows contracts stored, want 1200 (120 underlyings x 10)"
echo "memory e2e: ok (peak RSS ${peak} kB <= 65536 kB over $(sed -n "s/.* pages=\([0-9]*\) .*/\1/p" <<<"$stop") pages of ~${size} bytes; 1200 contracts stored)"
