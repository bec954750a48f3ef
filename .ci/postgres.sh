#!/usr/bin/env bash
# A throwaway PostgreSQL server (Debian's package) for the tests that need one.
#
#   .ci/postgres.sh install      install Debian's postgresql when initdb is missing (root + apt)
#   .ci/postgres.sh start DIR    initialise a cluster in DIR (must not exist or be empty), start
#                                it on a free loopback port, print its SQLAlchemy URL
#   .ci/postgres.sh stop DIR     stop the server of DIR (fast shutdown)
#   .ci/postgres.sh restart DIR  start the stopped server of DIR again, on its port
#
# As root the cluster belongs to the `postgres` user (initdb refuses root). Trust auth on
# 127.0.0.1 only; the socket lives in DIR, so nothing outside DIR (and DIR.log, DIR.port) is
# touched. As root, the user postgres must be able to enter DIR's parent folders.
set -euo pipefail

bindir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
    found=$(command -v initdb 2>/dev/null || true)
    if [ -n "$found" ]; then dirname "$found"; return; fi
    return 1
}

as_owner() {  # run a command as the cluster's owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
    bindir >/dev/null && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
        bindir >/dev/null && return 0
    fi
    echo "postgresql is not installed and cannot be (needs root and apt-get)" >&2
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir=$1 bin port
    bin=$(bindir) || { echo "initdb not found: run '$0 install'" >&2; return 1; }
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir" && chmod 700 "$dir"
        runuser -u postgres -- test -x "$dir" \
            || { echo "user postgres cannot reach '$dir': choose a folder whose parents it can enter" >&2; return 1; }
    fi
    as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-sync >"$dir.log" 2>&1 \
        || { cat "$dir.log" >&2; return 1; }
    port=$(free_port)
    echo "$port" >"$dir.port"
    serve "$dir" "$port"
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres mlcycle
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/mlcycle"
}

serve() {
    local dir=$1 port=$2 bin
    bin=$(bindir)
    as_owner "$bin/pg_ctl" -D "$dir" -w -t 30 -l "$dir/server.log" \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
}

stop() {
    as_owner "$(bindir)/pg_ctl" -D "$1" -w -m fast stop >/dev/null
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?DIR}" ;;
    stop) stop "${2:?DIR}" ;;
    restart) serve "${2:?DIR}" "$(cat "${2:?DIR}.port")" ;;
    *) echo "usage: $0 install | start DIR | stop DIR | restart DIR" >&2; exit 2 ;;
esac
