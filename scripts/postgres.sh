#!/usr/bin/env bash
# A throwaway local PostgreSQL for the examples, started the way the tests
# start theirs (initdb + pg_ctl from the installed binaries, in a temporary
# folder, listening on 127.0.0.1 only):
#
#   eval "$(bash scripts/postgres.sh start)"   # exports DATABASE_URL
#   DATABASE_URL=$DATABASE_URL cargo run -p etiquette-examples --bin axum_jobs
#   bash scripts/postgres.sh stop               # stops it, deletes its data
#
# PG_PORT picks the port (54329 by default); PG_BIN the server's binaries
# (the newest /usr/lib/postgresql/*/bin by default). Needs the server
# installed: apt-get install postgresql. As root, the server runs as the
# `postgres` user (initdb refuses root).
set -euo pipefail

port=${PG_PORT:-54329}
state="${TMPDIR:-/tmp}/etiquette-postgres-$port"
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "no PostgreSQL server binaries found: apt-get install postgresql (or set PG_BIN)" >&2
        exit 1
    fi
    if [ -d "$state" ]; then
        echo "a server already runs from $state: bash scripts/postgres.sh stop" >&2
        exit 1
    fi
    mkdir -p "$state"
    [ "$(id -u)" = 0 ] && chown postgres: "$state"
    as_server "$bin/initdb" -D "$state/data" -A trust -U postgres --no-sync >/dev/null
    as_server "$bin/pg_ctl" -D "$state/data" -l "$state/log" -w \
        -o "-p $port -k $state -c listen_addresses=127.0.0.1" start >/dev/null
    echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
    echo "# PostgreSQL runs from $state (log: $state/log); stop it with: bash scripts/postgres.sh stop" >&2
    ;;
stop)
    if [ -d "$state/data" ]; then
        as_server "$bin/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$state"
    ;;
*)
    echo "usage: bash scripts/postgres.sh start|stop" >&2
    exit 2
    ;;
esac
