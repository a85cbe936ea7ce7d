# scripts/lib/pgbouncer.sh - a throwaway PgBouncer in transaction pooling mode
# in front of the cluster optsnap_pg_start made, so the integration and e2e
# suites can prove optsnap works behind a transaction pooler (issue 7; the
# incident's service ran behind Neon's pooler). Source it after common.sh;
# it defines functions only. Callers call optsnap_pgbouncer_stop from their
# traps, before optsnap_pg_stop.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the OPTSNAP_* globals are for the sourcing script

OPTSNAP_PGBOUNCER_BIN=${OPTSNAP_PGBOUNCER_BIN:-/usr/sbin/pgbouncer}

# Runs pgbouncer as postgres when root: pgbouncer refuses to run as root.
optsnap_pgbouncer_tool() {
    if [ "$(id -u)" -eq 0 ]; then (cd "$OPTSNAP_PGBOUNCER_TMP" && runuser -u postgres -- "$@")
    else (cd "$OPTSNAP_PGBOUNCER_TMP" && "$@"); fi
}

# optsnap_pgbouncer_start PGURL: starts a daemonized pgbouncer on a free port
# of 127.0.0.1 forwarding every database name to PGURL's host and port. Sets
# OPTSNAP_PGBOUNCER_TMP, OPTSNAP_PGBOUNCER_PORT and OPTSNAP_POOLER_URL (same
# user, database postgres). Pool size is small on purpose: 4 server
# connections per database/user pair is the shape of the incident.
# OPTSNAP_PGBOUNCER_EXTRA (optional): more lines for the [pgbouncer] section.
optsnap_pgbouncer_start() {
    local pgurl=$1
    [ -x "$OPTSNAP_PGBOUNCER_BIN" ] || { echo "$OPTSNAP_PGBOUNCER_BIN not found" >&2; return 1; }
    local hostport=${pgurl#*://}
    hostport=${hostport#*@}
    hostport=${hostport%%/*}
    local pghost=${hostport%:*} pgport=${hostport##*:}
    local user=${pgurl#*://}
    user=${user%%@*}
    OPTSNAP_PGBOUNCER_TMP=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-pgbouncer.XXXXXX")
    [ "$(id -u)" -eq 0 ] && chown postgres: "$OPTSNAP_PGBOUNCER_TMP"
    local dir=$OPTSNAP_PGBOUNCER_TMP attempt port
    # trust still wants each user name known: auth_file lists the superuser
    # and the login roles tests/integration/test_roles.c creates; auth_user
    # lets pgbouncer look up any role a later test adds (pg_shadow).
    printf '"%s" ""\n"optsnap_test_w" ""\n"optsnap_test_r" ""\n' "$user" >"$dir/userlist.txt"
    for attempt in 1 2 3 4 5; do
        port=$(optsnap_free_port)
        # ignore_startup_parameters leaves out "options" on purpose: the pooler
        # would drop a startup -c setting silently, and code relying on one
        # must fail here rather than pass.
        cat >"$dir/pgbouncer.ini" <<EOF
; optsnap throwaway pooler, attempt $attempt
[databases]
* = host=$pghost port=$pgport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = $user
auth_user = $user
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
${OPTSNAP_PGBOUNCER_EXTRA:-}
EOF
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pgbouncer.ini" "$dir/userlist.txt"
        if optsnap_pgbouncer_tool "$OPTSNAP_PGBOUNCER_BIN" -d "$dir/pgbouncer.ini" >>"$dir/start.log" 2>&1; then
            local i
            for i in $(seq 1 50); do
                if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                    OPTSNAP_PGBOUNCER_PORT=$port
                    OPTSNAP_POOLER_URL="postgresql://$user@127.0.0.1:$port/postgres"
                    return 0
                fi
                sleep 0.1
            done
            optsnap_pgbouncer_kill
        fi
        optsnap_say "pgbouncer did not start on port $port (attempt $attempt); retrying"
    done
    tail -n 30 "$dir/start.log" "$dir/pgbouncer.log" >&2 || true
    return 1
}

# optsnap_pgbouncer_repoint HOST PORT: every database now forwards to HOST:PORT
# (what an operator's failover script or a moved DNS name does), applied
# with SIGHUP (pgbouncer's reload). Returns 1 without a running pgbouncer.
optsnap_pgbouncer_repoint() {
    local ini=$OPTSNAP_PGBOUNCER_TMP/pgbouncer.ini pid
    [ -f "$ini" ] && [ -f "$OPTSNAP_PGBOUNCER_TMP/pgbouncer.pid" ] || return 1
    sed -i "s/^\* = host=.*/* = host=$1 port=$2/" "$ini"
    pid=$(cat "$OPTSNAP_PGBOUNCER_TMP/pgbouncer.pid")
    kill -HUP "$pid"
}

# Signals the daemon named by the pidfile (our own process, by pid) and waits.
optsnap_pgbouncer_kill() {
    local pidfile=$OPTSNAP_PGBOUNCER_TMP/pgbouncer.pid pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# optsnap_pgbouncer_stop [KEEPLOG]: stops pgbouncer and removes its directory
# (idempotent). With KEEPLOG, the log is copied there first.
optsnap_pgbouncer_stop() {
    [ -n "${OPTSNAP_PGBOUNCER_TMP:-}" ] || return 0
    optsnap_pgbouncer_kill
    if [ -n "${1:-}" ] && [ -f "$OPTSNAP_PGBOUNCER_TMP/pgbouncer.log" ]; then
        cp "$OPTSNAP_PGBOUNCER_TMP/pgbouncer.log" "$1" 2>/dev/null || true
    fi
    rm -rf "$OPTSNAP_PGBOUNCER_TMP"
    OPTSNAP_PGBOUNCER_TMP=
}
