#!/usr/bin/env bash
# scripts/test.sh - builds optsnap in a plain and a sanitizer configuration,
# starts a throwaway PostgreSQL 15 cluster on a free port, and runs every
# meson test suite against it. Cleans up on every exit path.
#
#   scripts/test.sh              both configurations, then integration+e2e via PgBouncer
#   scripts/test.sh --quick      plain build only
#   scripts/test.sh --suite unit only that meson suite (repeatable)
#   scripts/test.sh --pooler     only the pass through PgBouncer (below)
#
# On a fresh Debian 12 machine run as root: missing packages are installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

QUICK=0
POOLER_ONLY=0
SUITES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --pooler) POOLER_ONLY=1 ;;
        --suite) [ $# -ge 2 ] || { echo "test.sh: --suite needs a name" >&2; exit 2; }
                 SUITES+=(--suite "$2"); shift ;;
        --suite=*) SUITES+=(--suite "${1#--suite=}") ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

. "$ROOT/scripts/lib/common.sh"
. "$ROOT/scripts/lib/pgbouncer.sh"
say() { optsnap_say "$@"; }

# beyond the build: Chromium for the status page test, promtool (in Debian's
# prometheus package) for the alert rules test, openssl for the TLS test's
# self-signed server, pgbouncer for the pooler pass
optsnap_install_packages chromium prometheus openssl || exit 1

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    optsnap_pgbouncer_stop
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

# ---- pooler pass (issue 7) ----------------------------------------------------
# The integration and e2e suites once more, the code under test connecting
# through PgBouncer in transaction mode with 4 server connections per database
# (scripts/lib/pgbouncer.sh), the way the incident's service ran behind Neon's
# pooler. CREATE/DROP DATABASE still go straight to PostgreSQL. Reuses
# build-test's binaries; its log is build-test/meson-logs/pooler.json.
run_pooler() {
    local t0 rc=0 suites=("${SUITES[@]}")
    [ ${#suites[@]} -gt 0 ] || suites=(--suite integration --suite e2e)
    optsnap_pgbouncer_start "$OPTSNAP_TEST_PGURL" || { echo "test.sh: could not start pgbouncer" >&2; return 1; }
    say "pooler pass: pgbouncer (pool_mode=transaction, default_pool_size=4) at $OPTSNAP_POOLER_URL"
    rm -f build-test/meson-logs/pooler.json
    t0=$(date +%s)
    OPTSNAP_TEST_POOLER_URL=$OPTSNAP_POOLER_URL meson test -C build-test --no-rebuild --logbase pooler \
        --print-errorlogs --num-processes 2 "${suites[@]}" || rc=1
    say "pooler pass finished in $(( $(date +%s) - t0 ))s"
    [ "$rc" -eq 0 ] || say "pgbouncer's log: build-test/meson-logs/pgbouncer.log"
    optsnap_pgbouncer_stop build-test/meson-logs/pgbouncer.log
    return "$rc"
}

START=$(date +%s)
configs=()
status=0
if [ "$POOLER_ONLY" -eq 1 ]; then
    if [ ! -f build-test/build.ninja ]; then
        meson setup build-test --buildtype=debugoptimized >"$PGTMP/setup-build-test.log" 2>&1 \
            || { cat "$PGTMP/setup-build-test.log" >&2; exit 1; }
    fi
    ninja -C build-test || exit 1
else
    configs+=(build-test)
    run_config build-test --buildtype=debugoptimized || status=1
fi
if [ "$QUICK" -eq 0 ] && [ "$POOLER_ONLY" -eq 0 ]; then
    configs+=(build-test-san)
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_config build-test-san --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
        || status=1
fi
if [ "$POOLER_ONLY" -eq 1 ] || { [ "$QUICK" -eq 0 ] && [ ${#SUITES[@]} -eq 0 ]; }; then
    configs+=(build-test/meson-logs/pooler.json)
    run_pooler || status=1
fi

say "tests finished in $(( $(date +%s) - START ))s"
python3 - "${configs[@]}" <<'EOF'
import json, os, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    # a build dir's default log, or a named log (the pooler pass)
    path = d if d.endswith(".json") else os.path.join(d, "meson-logs", "testlog.json")
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
