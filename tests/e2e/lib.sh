# tests/e2e/lib.sh - shared helpers for the shell-driven end-to-end tests.
# Source it:  . "$(dirname "$0")/lib.sh"
# Background processes started with e2e_spawn are killed (by pid) on exit.
# shellcheck shell=bash

set -euo pipefail

E2E_PIDS=()
E2E_TMP=""

# Exit 77 (meson: skipped) when no throwaway cluster is configured.
skip_unless_pg() {
    if [ -z "${OPTSNAP_TEST_PGURL:-}" ]; then
        echo "OPTSNAP_TEST_PGURL is not set; skipping (scripts/test.sh sets it)" >&2
        exit 77
    fi
}

# skip_unless_cmd NAME...: exit 77 when a needed program is missing.
skip_unless_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || { echo "$c not installed; skipping" >&2; exit 77; }
    done
}

# e2e_tmpdir: a private temp dir, removed on exit; echoes its path.
e2e_tmpdir() {
    if [ -z "$E2E_TMP" ]; then
        E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-e2e.XXXXXX")
    fi
    echo "$E2E_TMP"
}

# pgtest_createdb NAME: drops and creates database NAME on the test cluster
# and echoes its URL. NAME must be [a-z0-9_]+ (it becomes an identifier).
# With OPTSNAP_TEST_POOLER_URL set (scripts/test.sh --pooler) the URL points
# at the transaction pooler; the DROP/CREATE still go straight to PostgreSQL.
pgtest_createdb() {
    # OPTSNAP_TEST_DB_PREFIX keeps concurrent checkouts off each other's databases (not for
    # tests that name their database in SQL, e.g. run_test.sh section 4: leave it unset there)
    local name=${OPTSNAP_TEST_DB_PREFIX:-}$1
    skip_unless_pg
    if ! [[ "$name" =~ ^[a-z0-9_]+$ ]]; then
        echo "pgtest_createdb: bad database name '$name'" >&2
        return 2
    fi
    PGOPTIONS='-c client_min_messages=warning' psql "$OPTSNAP_TEST_PGURL" -v ON_ERROR_STOP=1 -qAt \
        -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$name\"" >/dev/null
    # The base URL is postgresql://user@host:port/dbname[?params].
    local url=${OPTSNAP_TEST_POOLER_URL:-$OPTSNAP_TEST_PGURL}
    local base=${url%%\?*} query=""
    [[ "$url" == *\?* ]] && query="?${url#*\?}"
    echo "${base%/*}/$name$query"
}

# e2e_db NAME: a fresh database NAME (pgtest_createdb), migrated; echoes its URL.
e2e_db() {
    local url
    url=$(pgtest_createdb "$1") || return 1
    DATABASE_URL=$url "${OPTSNAP_BIN:?}" migrate >/dev/null 2>&1 || { echo "e2e_db: migrate failed for $1" >&2; return 1; }
    echo "$url"
}

# sim_start LOG [mock-api flags...]: starts the simulator on a free port; sets
# SIM_URL and SIM_PID.
sim_start() {
    local log=$1; shift
    local port; port=$(free_port)
    e2e_spawn "$log" "${OPTSNAP_BIN:?}" mock-api --port "$port" "$@"
    SIM_PID=$E2E_LAST_PID
    wait_for_port "$port" 10 || fail "simulator did not start"
    SIM_URL="http://127.0.0.1:$port"
}

# sim_now_us: the simulator's market clock now (microseconds).
sim_now_us() {
    curl -fsS "$SIM_URL/_sim/clock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sim_now_us"])'
}

# sim_clock_us_at_real: "SIM_US@REAL": the simulator's clock read, and the
# real instant right after its answer (before anything slow: python starts
# in ~100 ms). Anchored there, a daemon is never ahead of the simulator.
sim_clock_us_at_real() {
    local body real
    body=$(curl -fsS "$SIM_URL/_sim/clock")
    real=$(date +%s.%N)
    echo "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sim_now_us"])' "$body")@$real"
}

# sim_shared_clock: the `clock` setting that makes a daemon's market clock the
# simulator's ("2026-11-02T15:00:00.123456Z@1764690000.5").
sim_shared_clock() {
    local at; at=$(sim_clock_us_at_real)
    python3 -c "import datetime,sys; us, real = sys.argv[1].split('@'); t = int(us) / 1e6; \
print(datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ') + '@' + real)" "$at"
}

# pg_scalar URL SQL: first column of the first row.
pg_scalar() {
    psql "$1" -v ON_ERROR_STOP=1 -qAt -c "$2" | head -n 1
}

# scalar_is URL SQL OP VALUE: the query's answer compared with test(1)'s OP
# (read again on each wait_for try, not once when the line is parsed; an
# error reads as 0)
scalar_is() { [ "$(pg_scalar "$1" "$2" 2>/dev/null || echo 0)" "$3" "$4" ]; }

# free_port: an unused TCP port on 127.0.0.1 (racy by nature; fine for tests).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_port PORT [TIMEOUT_SECONDS=10] [HOST=127.0.0.1]: returns 0 once a
# TCP connect succeeds, 1 on timeout.
wait_for_port() {
    local port=$1 timeout=${2:-10} host=${3:-127.0.0.1}
    local deadline=$(( $(date +%s) + timeout ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "wait_for_port: nothing listening on $host:$port after ${timeout}s" >&2
    return 1
}

# wait_for CMD... : retries CMD every 0.1 s for up to E2E_WAIT seconds (10).
wait_for() {
    local deadline=$(( $(date +%s) + ${E2E_WAIT:-10} ))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "wait_for: timed out: $*" >&2
            return 1
        fi
        sleep 0.1
    done
}

# e2e_spawn LOGFILE CMD...: starts CMD in the background with output to
# LOGFILE, remembers its pid for cleanup, and sets E2E_LAST_PID.
e2e_spawn() {
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    E2E_LAST_PID=$!
    E2E_PIDS+=("$E2E_LAST_PID")
}

# e2e_stop PID [SIGNAL=TERM] [TIMEOUT=10]: signals one process started by
# e2e_spawn and waits for it, escalating to KILL after TIMEOUT seconds. Sets
# E2E_STOP_RC to its exit status (call it directly, not inside $(...): a
# subshell cannot wait for the process).
e2e_stop() {
    local pid=$1 sig=${2:-TERM} timeout=${3:-10} i=0
    E2E_STOP_RC=0
    kill -"$sig" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$i" -ge $(( timeout * 10 )) ]; then
            echo "e2e_stop: $pid ignored SIG$sig for ${timeout}s; killing" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        i=$(( i + 1 ))
    done
    wait "$pid" 2>/dev/null || E2E_STOP_RC=$?
}

# e2e_wait_exit PID TIMEOUT: waits for a process that stops by itself (TERM,
# then KILL, after TIMEOUT seconds); sets E2E_STOP_RC.
e2e_wait_exit() {
    local pid=$1 i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt $(( $2 * 10 )) ]; do sleep 0.1; i=$(( i + 1 )); done
    e2e_stop "$pid" TERM 10
}

# e2e_logs_clean: no log of the test's processes (their children included:
# heal passes write to the daemon's stderr) holds a sanitizer report or an
# engine "driver bug" line; prints the first ones and returns 1 otherwise.
E2E_BAD_LOG='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|\(a driver bug\)'
e2e_logs_clean() {
    [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ] || return 0
    local bad
    bad=$(grep -rlE "$E2E_BAD_LOG" "$E2E_TMP" --include='*.log' 2>/dev/null || true)
    [ -z "$bad" ] && return 0
    echo "FAIL: a sanitizer report or a driver bug in: $bad" >&2
    printf '%s\n' "$bad" | xargs grep -hE -A30 "$E2E_BAD_LOG" | grep -E '^ *#[0-9]|ERROR|runtime error|leak of|driver bug' | head -40 >&2
    return 1
}

# Kills what e2e_spawn started (each by its pid), checks their logs
# (e2e_logs_clean) and removes the temp dir. Returns 1 when the test was
# passing and a log holds a finding: the EXIT trap then fails the test.
e2e_cleanup() {
    local rc=$? pid
    for pid in "${E2E_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    E2E_PIDS=()
    local bad=0
    if [ "$rc" = 0 ] && ! e2e_logs_clean; then
        bad=1
    fi
    if [ -n "$E2E_TMP" ] && [ -n "${E2E_KEEP:-}" ]; then
        echo "E2E_KEEP: logs kept in $E2E_TMP" >&2
    elif [ -n "$E2E_TMP" ]; then
        rm -rf "$E2E_TMP"
    fi
    return "$bad"
}
trap 'e2e_cleanup || exit 1' EXIT
# a signal (meson's timeout, Ctrl-C) must also run the cleanup
trap 'exit 143' TERM
trap 'exit 130' INT

# fail MSG: prints and exits 1 (cleanup runs from the EXIT trap).
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
