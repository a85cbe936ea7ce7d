#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer harnesses of tests/fuzz/ with clang
# (ASan + UBSan) and runs each for a bounded time from a copy of its seed
# corpus (meson -Dfuzz=true in build-fuzz/). Exit 1 on any crash, leak, sanitizer report or build failure.
# FUZZ_SECONDS (default 20) per harness; FUZZ_HARNESSES limits the set;
# FUZZ_KEEP=1 keeps the work directory (kept anyway when something fails).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-20}"
harnesses="${FUZZ_HARNESSES:-snapshot aggs settings http_request flat_csv json_tree}"

# clang and the build's libraries (CI runs this first, on a fresh machine)
. "$root/scripts/lib/common.sh"
optsnap_install_packages clang || exit 1
CC="${FUZZ_CC:-clang}"

work="$(mktemp -d "${TMPDIR:-/tmp}/optsnap-fuzz.XXXXXX")"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { if [ "${FUZZ_KEEP:-0}" = 1 ]; then echo "fuzz: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# The harnesses are built by meson (-Dfuzz=true) against the core library
# only: the pure modules, no uv, curl or libpq.
build="${FUZZ_BUILD:-$root/build-fuzz}"
for h in $harnesses; do
    case "$h" in snapshot|aggs|settings|http_request|flat_csv|json_tree) ;; *) echo "fuzz: unknown harness $h" >&2; exit 2 ;; esac
done
if [ ! -f "$build/build.ninja" ]; then
    CC="$CC" meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        --buildtype=debugoptimized >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
fi
targets=()
for h in $harnesses; do targets+=("fuzz_$h"); done
ninja -C "$build" "${targets[@]}" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=0
for h in $harnesses; do

    corpus="$work/corpus_$h"
    mkdir -p "$corpus" "$work/artifacts_$h"
    for d in "tests/fuzz/corpus/$h" "tests/fuzz/regressions/$h"; do
        [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name 'README*' -exec cp {} "$corpus/" \;
    done
    log="$work/fuzz_$h.log"
    set +e
    "$build/fuzz_$h" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 \
        -artifact_prefix="$work/artifacts_$h/" "$corpus" >"$log" 2>&1
    rc=$?
    set -e
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    cov="$(grep -o 'DONE *cov: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    ncorpus="$(find "$corpus" -type f | wc -l)"
    crashes=("$work/artifacts_$h"/*)
    if [ "$rc" -ne 0 ] || [ -e "${crashes[0]}" ]; then
        failed=1
        echo "fuzz: $h FAILED rc=$rc execs=${execs:-?} corpus=$ncorpus"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|deadly signal' "$log" | head -20 || true
        for c in "${crashes[@]}"; do
            [ -e "$c" ] && echo "fuzz: crashing input: $c (replay: $build/fuzz_$h $c)"
        done
        echo "fuzz: full log: $log"
        FUZZ_KEEP=1
    else
        echo "fuzz: $h ok seconds=$seconds execs=${execs:-?} execs_per_sec=${speed:-?} cov=${cov:-?} corpus=$ncorpus"
    fi
done
exit "$failed"
