#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer harnesses of tests/fuzz/ with clang
# (ASan + UBSan) and runs each for a bounded time from a copy of its seed
# corpus. Exit 1 on any crash, leak, sanitizer report or build failure.
# FUZZ_SECONDS (default 20) per harness; FUZZ_HARNESSES limits the set;
# FUZZ_KEEP=1 keeps the work directory (kept anyway when something fails).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-20}"
harnesses="${FUZZ_HARNESSES:-snapshot aggs settings http_request}"

if ! dpkg -s clang >/dev/null 2>&1 && ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang missing, installing it" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y --no-install-recommends clang >&2 ||
        { $sudo_cmd apt-get update >&2 && $sudo_cmd apt-get install -y --no-install-recommends clang >&2; }
fi
CC="${FUZZ_CC:-clang}"

work="$(mktemp -d "${TMPDIR:-/tmp}/optsnap-fuzz.XXXXXX")"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { if [ "${FUZZ_KEEP:-0}" = 1 ]; then echo "fuzz: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# Pure modules only: no uv, curl or libpq in a fuzz target.
pure=(src/row.c src/log.c src/timeutil.c src/occ.c src/api_envelope.c src/array.c)
declare -A extra=(
    [snapshot]="src/snapshot_parse.c"
    [aggs]="src/aggs_parse.c src/reference_parse.c"
    [settings]="src/settings.c"
    [http_request]="src/http_parse.c"
)
cflags=(-g -O1 "-fsanitize=fuzzer,address,undefined" -fno-sanitize-recover=undefined
        -fno-omit-frame-pointer -D_GNU_SOURCE -std=c11 -Iinclude -Wall -Wextra -Werror)

# One object per pure source, shared by every harness (instrumented for
# coverage with -fsanitize=fuzzer-no-link, so no second main()).
objflags=(-g -O1 "-fsanitize=fuzzer-no-link,address,undefined" -fno-sanitize-recover=undefined
          -fno-omit-frame-pointer -D_GNU_SOURCE -std=c11 -Iinclude)
mkdir -p "$work/obj"
for h in $harnesses; do
    [ -n "${extra[$h]:-}" ] || { echo "fuzz: unknown harness $h" >&2; exit 2; }
done
for src in "${pure[@]}" ${extra[snapshot]} ${extra[aggs]} ${extra[settings]} ${extra[http_request]}; do
    obj="$work/obj/$(basename "$src" .c).o"
    "$CC" "${objflags[@]}" -c "$src" -o "$obj"
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=0
for h in $harnesses; do
    objs=()
    for src in "${pure[@]}" ${extra[$h]}; do objs+=("$work/obj/$(basename "$src" .c).o"); done
    "$CC" "${cflags[@]}" "tests/fuzz/fuzz_$h.c" "${objs[@]}" -lcjson -lm -o "$work/fuzz_$h"

    corpus="$work/corpus_$h"
    mkdir -p "$corpus" "$work/artifacts_$h"
    for d in "tests/fuzz/corpus/$h" "tests/fuzz/regressions/$h"; do
        [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name 'README*' -exec cp {} "$corpus/" \;
    done
    log="$work/fuzz_$h.log"
    set +e
    "$work/fuzz_$h" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
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
            [ -e "$c" ] && echo "fuzz: crashing input: $c (replay: $work/fuzz_$h $c)"
        done
        echo "fuzz: full log: $log"
        FUZZ_KEEP=1
    else
        echo "fuzz: $h ok seconds=$seconds execs=${execs:-?} execs_per_sec=${speed:-?} cov=${cov:-?} corpus=$ncorpus"
    fi
done
exit "$failed"
