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

say() { printf '== %s\n' "$*" >&2; }

# ---- packages -------------------------------------------------------------
PACKAGES=(build-essential pkg-config meson ninja-build libuv1-dev libcurl4-openssl-dev
          libpq-dev libcjson-dev postgresql-15 postgresql-contrib curl python3 pgbouncer wrk)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || { echo "test.sh: $PGBIN/initdb not found" >&2; exit 1; }

# ---- throwaway cluster ------------------------------------------------------
PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-test-pg.XXXXXX")
PGDATA_DIR="$PGTMP/data"
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root.
    chown postgres: "$PGTMP"
    AS_PG=(runuser -u postgres --)
fi
# Runs a PostgreSQL tool from inside the temp dir: the checkout (e.g. under
# /root) may not be readable by the postgres user, and the tools stat the cwd.
pg_tool() { (cd "$PGTMP" && "${AS_PG[@]}" "$@"); }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
        pg_tool "$PGBIN/pg_ctl" -D "$PGDATA_DIR" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$PGTMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

say "initdb in $PGTMP"
pg_tool "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C \
    --no-sync >"$PGTMP/initdb.log" 2>&1 || { cat "$PGTMP/initdb.log" >&2; exit 1; }

started=0
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
# scripts/test.sh, attempt $attempt
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGTMP'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_min_error_statement = panic
EOF
    if pg_tool "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGTMP/postgres.log" -w -t 60 start >/dev/null 2>&1; then
        started=1
        break
    fi
    say "PostgreSQL did not start on port $PORT (attempt $attempt); retrying"
done
if [ "$started" -ne 1 ]; then
    tail -n 30 "$PGTMP/postgres.log" >&2 || true
    echo "test.sh: could not start PostgreSQL" >&2
    exit 1
fi
export OPTSNAP_TEST_PGURL="postgresql://postgres@127.0.0.1:$PORT/postgres"
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
