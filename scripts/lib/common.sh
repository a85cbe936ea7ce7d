# scripts/lib/common.sh - what test.sh, demo.sh and bench.sh share: the
# Debian packages optsnap needs, and a throwaway PostgreSQL 15 cluster.
# Source it; it defines functions only. Callers set their own traps and call
# optsnap_pg_stop from them.
# shellcheck shell=bash

optsnap_say() { printf '== %s\n' "$*" >&2; }

OPTSNAP_PACKAGES=(build-essential pkg-config meson ninja-build libuv1-dev libcurl4-openssl-dev
                  libpq-dev libcjson-dev zlib1g-dev postgresql-15 postgresql-contrib curl python3 pgbouncer wrk)

# optsnap_install_packages [EXTRA...]: apt-get installs what is missing (as root).
optsnap_install_packages() {
    local missing=() p
    for p in "${OPTSNAP_PACKAGES[@]}" "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    optsnap_say "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

OPTSNAP_PGBIN=/usr/lib/postgresql/15/bin

# Runs a PostgreSQL tool from inside the cluster's temp dir (the checkout may be
# unreadable by the postgres user, and the tools stat the cwd), as postgres when root.
optsnap_pg_tool() {
    if [ "$(id -u)" -eq 0 ]; then (cd "$OPTSNAP_PGTMP" && runuser -u postgres -- "$@")
    else (cd "$OPTSNAP_PGTMP" && "$@"); fi
}

optsnap_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# optsnap_pg_start [durable]: initdb + start on a free port in a new temp dir.
# Sets OPTSNAP_PGTMP and OPTSNAP_PGURL (superuser, database postgres). With
# "durable", fsync and full_page_writes stay on (benchmarks); otherwise off (tests).
optsnap_pg_start() {
    [ -x "$OPTSNAP_PGBIN/initdb" ] || { echo "$OPTSNAP_PGBIN/initdb not found" >&2; return 1; }
    OPTSNAP_PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-pg.XXXXXX")
    [ "$(id -u)" -eq 0 ] && chown postgres: "$OPTSNAP_PGTMP"
    local data="$OPTSNAP_PGTMP/data" attempt port
    optsnap_pg_tool "$OPTSNAP_PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
        --no-sync >"$OPTSNAP_PGTMP/initdb.log" 2>&1 || { cat "$OPTSNAP_PGTMP/initdb.log" >&2; return 1; }
    for attempt in 1 2 3 4 5; do
        port=$(optsnap_free_port)
        {
            echo "# optsnap throwaway cluster, attempt $attempt"
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $port"
            echo "unix_socket_directories = '$OPTSNAP_PGTMP'"
            echo "max_connections = 200"
            echo "log_min_messages = warning"
            echo "log_min_error_statement = panic"
            if [ "${1:-}" = durable ]; then
                echo "shared_buffers = 1GB"
                echo "max_wal_size = 8GB"
                echo "checkpoint_timeout = 30min"
            else
                echo "fsync = off"
                # on: an acknowledged commit is written to the OS before the
                # ack, so a restart test can tell a lost commit from a bug
                echo "synchronous_commit = on"
                echo "full_page_writes = off"
            fi
        } >>"$data/postgresql.conf"
        if optsnap_pg_tool "$OPTSNAP_PGBIN/pg_ctl" -D "$data" -l "$OPTSNAP_PGTMP/postgres.log" -w -t 60 start >/dev/null 2>&1; then
            OPTSNAP_PGURL="postgresql://postgres@127.0.0.1:$port/postgres"
            return 0
        fi
        optsnap_say "PostgreSQL did not start on port $port (attempt $attempt); retrying"
    done
    tail -n 30 "$OPTSNAP_PGTMP/postgres.log" >&2 || true
    return 1
}

# optsnap_pg_stop: stops the cluster and removes its directory (idempotent).
optsnap_pg_stop() {
    optsnap_pg_destroy "${OPTSNAP_PGTMP:-}"
    OPTSNAP_PGTMP=
}

# optsnap_pg_destroy DIR: stops the cluster in DIR/data (immediate) and
# removes DIR; nothing when DIR is empty.
optsnap_pg_destroy() {
    [ -n "$1" ] || return 0
    if [ -f "$1/data/postmaster.pid" ]; then
        optsnap_pg_tool "$OPTSNAP_PGBIN/pg_ctl" -D "$1/data" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$1"
}

# optsnap_pg_standby PRIMARY_PORT: a streaming standby of the cluster on
# 127.0.0.1:PRIMARY_PORT (pg_basebackup -R), started on a free port in a new
# temp dir. Sets OPTSNAP_STANDBY_TMP, OPTSNAP_STANDBY_PORT, OPTSNAP_STANDBY_URL.
# synchronous_standby_names is cleared on the standby, so that once promoted
# it does not wait for a standby of its own. Stop it with optsnap_pg_standby_stop.
optsnap_pg_standby() {
    local primary_port=$1 attempt port
    OPTSNAP_STANDBY_TMP=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-pg-standby.XXXXXX")
    [ "$(id -u)" -eq 0 ] && chown postgres: "$OPTSNAP_STANDBY_TMP"
    local data="$OPTSNAP_STANDBY_TMP/data"
    optsnap_pg_tool "$OPTSNAP_PGBIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
        -D "$data" -R -X stream -c fast --no-sync >"$OPTSNAP_STANDBY_TMP/basebackup.log" 2>&1 ||
        { cat "$OPTSNAP_STANDBY_TMP/basebackup.log" >&2; return 1; }
    for attempt in 1 2 3 4 5; do
        port=$(optsnap_free_port)
        {
            echo "# optsnap standby, attempt $attempt"
            echo "port = $port"
            echo "unix_socket_directories = '$OPTSNAP_STANDBY_TMP'"
            echo "synchronous_standby_names = ''"
            echo "hot_standby = on"
        } >>"$data/postgresql.conf"
        if optsnap_pg_tool "$OPTSNAP_PGBIN/pg_ctl" -D "$data" -l "$OPTSNAP_STANDBY_TMP/postgres.log" -w -t 60 start >/dev/null 2>&1; then
            OPTSNAP_STANDBY_PORT=$port
            OPTSNAP_STANDBY_URL="postgresql://postgres@127.0.0.1:$port/postgres"
            return 0
        fi
        optsnap_say "standby did not start on port $port (attempt $attempt); retrying"
    done
    tail -n 30 "$OPTSNAP_STANDBY_TMP/postgres.log" >&2 || true
    return 1
}

# optsnap_pg_standby_stop: stops the standby (or the primary it was promoted
# to) and removes its directory (idempotent).
optsnap_pg_standby_stop() {
    optsnap_pg_destroy "${OPTSNAP_STANDBY_TMP:-}"
    OPTSNAP_STANDBY_TMP=
}
