#!/usr/bin/env bash
# scripts/test.sh - builds optsnap in a plain and a sanitizer configuration,
# starts a throwaway PostgreSQL 15 cluster on a free port, and runs every
# meson test suite against it. Cleans up on every exit path.
#
#   scripts/test.sh              both configurations
#   scripts/test.sh --quick      plain build only
#   scripts/test.sh --suite unit only that meson suite (repeatable)
#
# On a fresh Debian 12 machine run as root: missing packages are installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

QUICK=0
SUITES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --suite) [ $# -ge 2 ] || { echo "test.sh: --suite needs a name" >&2; exit 2; }
                 SUITES+=(--suite "$2"); shift ;;
        --suite=*) SUITES+=(--suite "${1#--suite=}") ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

. "$ROOT/scripts/lib/common.sh"
say() { optsnap_say "$@"; }

optsnap_install_packages || exit 1

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    optsnap_pg_stop
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

optsnap_pg_start || { echo "test.sh: could not start PostgreSQL" >&2; exit 1; }
PGTMP=$OPTSNAP_PGTMP
export OPTSNAP_TEST_PGURL=$OPTSNAP_PGURL
export OPTSNAP_TEST_PGTMP="$PGTMP"
say "PostgreSQL 15 at $OPTSNAP_TEST_PGURL"

# ---- build and test ---------------------------------------------------------
run_config() { # dir, meson setup args...
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        say "meson setup $dir $*"
        meson setup "$dir" "$@" >"$PGTMP/setup-$(basename "$dir").log" 2>&1 \
            || { cat "$PGTMP/setup-$(basename "$dir").log" >&2; return 1; }
    fi
    say "build $dir"
    ninja -C "$dir" || return 1
    rm -f "$dir/meson-logs/testlog.json"
    say "test $dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 "${SUITES[@]}"
}

START=$(date +%s)
configs=(build-test)
status=0
run_config build-test --buildtype=debugoptimized || status=1
if [ "$QUICK" -eq 0 ]; then
    configs+=(build-test-san)
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_config build-test-san --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
        || status=1
fi

say "tests finished in $(( $(date +%s) - START ))s"
python3 - "${configs[@]}" <<'EOF'
import json, os, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        print(f"{d}: no test log (build or setup failed)", file=sys.stderr)
        failed += 1
        continue
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line).get("result", "")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
print(f"TOTAL: {passed} passed, {failed} failed, {skipped} skipped")
EOF
exit "$status"
