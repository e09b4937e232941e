#!/usr/bin/env bash
# Issue #15's benchmarks of etiquette-postgres, side by side on ONE
# throwaway PostgreSQL 15 started for the run (fsync on, default settings),
# every figure measured $ROUNDS times, interleaved, so that the machine's
# drift hits every contender alike; the tables give the best and the spread.
#
#   1. 100k trivial jobs end to end (enqueued first, then timed from the
#      workers' start until every job is finished): etiquette-postgres with
#      1 and 3 worker processes, graphile-worker 0.17.3 (installed from npm
#      into a temporary folder) at its defaults and at its fastest settings,
#      and a plain SQL claim-then-delete loop (pgbench, 32 clients, single
#      and in batches of 10).
#   2. Enqueueing 100k jobs: one add at a time, `Postgres::add_many` (one
#      call, and chunks of 10k), 64 concurrent adders (group commit), and the
#      same rows inserted by one INSERT ... SELECT inside the server.
#   3. HTTP: axum `/add-task` on PostgreSQL (a process that only adds)
#      against a handler inserting a row per request over a pool, and the
#      in-memory queue's `/add-task`; wrk, requests/s and CPU per request.
#   4. Bloat: jobs/s and latency from add to start with 0, 100k and 5M
#      finished rows in the table; its size before and after one pruning
#      cycle.
#
# Each measurement also reads, from the server, what it cost: transactions
# and WAL bytes per job, WAL flushes per second, and the server's CPU per
# job. Results and the reasons behind them: BENCHMARKS.md, "PostgreSQL
# backend".
#
#   bash bench/postgres.sh            # full run, about 40 minutes
#   QUICK=1 bash bench/postgres.sh    # smoke run: 10k jobs, 500k rows, short wrk
#   SECTIONS=14 bash bench/postgres.sh  # only sections 1 and 4
#
# Needs: PostgreSQL 15's server binaries (initdb, pg_ctl; PG_BIN overrides
# /usr/lib/postgresql/15/bin), psql, pgbench, node (20) and npm, cargo, and
# wrk (installed from Debian's packages when missing). Run as root, the
# server runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    JOBS=${JOBS:-10000} SEQ_JOBS=${SEQ_JOBS:-500} BIG=${BIG:-500000}
    DURATION=${DURATION:-2s} LATENCY_S=${LATENCY_S:-3} ROUNDS=${ROUNDS:-1}
else
    JOBS=${JOBS:-100000} SEQ_JOBS=${SEQ_JOBS:-5000} BIG=${BIG:-5000000}
    DURATION=${DURATION:-4s} LATENCY_S=${LATENCY_S:-10} ROUNDS=${ROUNDS:-2}
fi
SMALL=${SMALL:-100000}         # finished rows, the smaller bloat case
LIMIT=${LIMIT:-256}            # etiquette's max_concurrent_tasks per worker process
LATENCY_RATE=${LATENCY_RATE:-200} # jobs/s added while measuring add-to-start latency
CONNECTIONS=${CONNECTIONS:-64} # wrk connections
SECTIONS=${SECTIONS:-1234}     # which of the four parts to run
section() { [[ $SECTIONS == *$1* ]]; }
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
GRAPHILE=graphile-worker@0.17.3

WORK=$(mktemp -d /tmp/etiquette-pgbench.XXXXXX)
DATA=$WORK/pg/data
BACKGROUND=()
cleanup() {
    set +e
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    if [ -f "$DATA/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

wait_for_port() { # port
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listening on $1" >&2
    return 1
}

# --- tools -----------------------------------------------------------------

for tool in psql pgbench node npm cargo; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
[ -x "$PG_BIN/initdb" ] || { echo "no initdb in $PG_BIN (apt-get install postgresql, or set PG_BIN)" >&2; exit 1; }
command -v wrk >/dev/null || { timeout 600 apt-get update -qq && timeout 600 apt-get install -y -qq wrk >/dev/null; }

echo "== building pg_bench (release)"
timeout 3600 nice -n 10 cargo build -q --release -p etiquette-postgres --example pg_bench
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/examples/pg_bench")

echo "== installing $GRAPHILE into a temporary folder"
GW=$WORK/graphile
mkdir -p "$GW"
(cd "$GW" && echo '{"private": true}' >package.json &&
    timeout 600 npm install --silent --no-audit --no-fund "$GRAPHILE" >/dev/null)
cp bench/postgres/graphile_worker.js "$GW/"

# --- the server ------------------------------------------------------------

echo "== starting PostgreSQL"
chmod 755 "$WORK"
mkdir -p "$WORK/pg"
if [ "$(id -u)" = 0 ]; then chown postgres: "$WORK/pg"; fi
PGPORT=$(free_port)
as_postgres "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres --no-sync >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/pg/log" -w -t 60 \
    -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1" start >/dev/null
URL="postgresql://postgres@127.0.0.1:$PGPORT/bench"
sql() { timeout "${2:-1800}" psql -X -q -At -v ON_ERROR_STOP=1 -d "$URL" -c "$1"; }
timeout 60 psql -X -q -d "postgresql://postgres@127.0.0.1:$PGPORT/postgres" -c "CREATE DATABASE bench"

machine="$(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "machine: $machine; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $(sql 'SHOW server_version'), in $WORK (the same disk as /tmp)"
settings=""
for setting in fsync synchronous_commit wal_sync_method commit_delay shared_buffers \
    max_connections work_mem max_wal_size checkpoint_timeout autovacuum; do
    settings+="$setting=$(sql "SHOW $setting") "
done
echo "settings: $settings"
fsyncs=$(timeout 120 "$PG_BIN/pg_test_fsync" -s 1 -f "$WORK/pg/fsync.test" 2>/dev/null |
    awk '$1 == "fdatasync" {print int($2); exit}')
echo "pg_test_fsync: $fsyncs fdatasync/s (one 8 kB write each)"

# --- figures ---------------------------------------------------------------

RESULTS=$WORK/results
touch "$RESULTS"
note() { echo "$*" >>"$RESULTS"; } # key value...
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" | head -1; } # key < line

# "commits|WAL flushes|WAL bytes" of the server so far.
pg_stats() {
    sql "SELECT d.xact_commit, w.wal_sync, w.wal_bytes FROM pg_stat_database d, pg_stat_wal w
         WHERE d.datname = current_database()"
}

# CPU seconds of the whole server: the postmaster, its children that
# ended (reaped: cutime, cstime) and those alive.
pg_cpu() {
    local postmaster ticks
    postmaster=$(head -1 "$DATA/postmaster.pid")
    ticks=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
    for child in $(ps --ppid "$postmaster" -o pid=); do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

# Runs a command that handles JOBS jobs and prints `elapsed_s=.. jobs_per_s=..`
# (and `polls=..`, its own read-only statements), and notes under NAME its
# rate and what it cost the server per job: transactions, WAL bytes and
# CPU, and WAL flushes per second. Its connections are closed when it returns, so
# their statistics have been reported.
measured() { # name jobs command...
    local name=$1 jobs=$2
    shift 2
    local before after cpu_before cpu_after out
    before=$(pg_stats)
    cpu_before=$(pg_cpu)
    # The client's CPU: the command's own and that of every process it
    # waited for (all but the server's), or, from `pg_bench race`, its
    # workers' while the race ran (without their start).
    local TIMEFORMAT='%U %S'
    { time out=$("$@" 2>&3); } 3>&2 2>"$WORK/times"
    local client_s
    client_s=$(echo "$out" | field client_cpu_s)
    [ -n "$client_s" ] || client_s=$(awk '{print $1 + $2}' "$WORK/times")
    sleep 0.5
    after=$(pg_stats)
    cpu_after=$(pg_cpu)
    local line
    line=$(awk -v b="$before" -v a="$after" -v c0="$cpu_before" -v c1="$cpu_after" -v jobs="$jobs" \
        -v s="$(echo "$out" | field elapsed_s)" -v polls="$(echo "$out" | field polls)" -v client="$client_s" '
        BEGIN {
            split(b, x, "|"); split(a, y, "|")
            printf "xacts_per_job=%.3f flushes_per_s=%.0f wal_bytes_per_job=%.0f pg_cpu_us_per_job=%.1f client_cpu_us_per_job=%.1f",
                (y[1] - x[1] - polls) / jobs, (y[2] - x[2]) / s, (y[3] - x[3]) / jobs, (c1 - c0) * 1e6 / jobs,
                client * 1e6 / jobs
        }')
    echo "   $name: $out $line"
    local figures=("$(echo "$out" | field jobs_per_s)")
    for key in xacts_per_job flushes_per_s wal_bytes_per_job pg_cpu_us_per_job client_cpu_us_per_job; do
        figures+=("$(echo "$line" | field "$key")")
    done
    note "$name" "${figures[@]}"
}

# Finished rows, as a busy queue keeps for status lookups: finished an hour
# ago, within the default retention (a day), so the workers' own pruning
# leaves them.
fill() { # rows
    sql "INSERT INTO etiquette.jobs (queue, name, args, state, attempt, run_at, created_at, finished_at)
         SELECT 'default', 'trivial', 'null', 'succeeded', 1, now() - interval '2 hours',
                now() - interval '2 hours', now() - interval '1 hour'
         FROM generate_series(1, $1)"
}

prepare_etiquette() { # finished rows to add first, jobs to enqueue
    sql "TRUNCATE etiquette.jobs"
    if [ "$1" -gt 0 ]; then
        fill "$1"
        # As autovacuum would have done by then.
        sql "VACUUM ANALYZE etiquette.jobs"
    fi
    timeout 1800 "$BIN" add-many "$URL" "$2" 10000 >/dev/null
    sql "ANALYZE etiquette.jobs"
    sql "CHECKPOINT"
}

# Due or running jobs left (each part through its own partial index).
ETIQUETTE_PENDING="SELECT EXISTS (SELECT 1 FROM etiquette.jobs WHERE state IN ('available', 'retrying'))
                       OR EXISTS (SELECT 1 FROM etiquette.jobs WHERE state = 'running')"

e2e_etiquette() { # processes
    prepare_etiquette 0 "$JOBS"
    measured "e2e.etiquette.p$1" "$JOBS" \
        "$BIN" race "$JOBS" "$1" 1 "$URL" "$ETIQUETTE_PENDING" -- "$BIN" work "$URL" "$LIMIT"
}

e2e_graphile() { # mode processes
    sql "TRUNCATE graphile_worker._private_jobs"
    sql "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
             SELECT ROW('trivial', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
             FROM generate_series(1, $JOBS)))" >/dev/null
    sql "ANALYZE graphile_worker._private_jobs"
    sql "CHECKPOINT"
    (cd "$GW" && export DATABASE_URL=$URL NO_LOG_SUCCESS=1 && measured "e2e.graphile_$1.p$2" "$JOBS" \
        "$BIN" race "$JOBS" "$2" 1 "$URL" "SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs)" \
        -- node graphile_worker.js "$1")
}

e2e_plain() { # batch
    sql "TRUNCATE plain.jobs; INSERT INTO plain.jobs (payload) SELECT '{}' FROM generate_series(1, $JOBS)"
    sql "ANALYZE plain.jobs"
    sql "CHECKPOINT"
    # pgbench runs until killed once the table is empty.
    measured "e2e.plain.b$1" "$JOBS" \
        "$BIN" race "$JOBS" 1 0 "$URL" "SELECT EXISTS (SELECT 1 FROM plain.jobs)" \
        -- pgbench -n -c 32 -j 2 -T 3600 -f "$WORK/claim_$1.sql" "$URL"
}

# --- setup -----------------------------------------------------------------

timeout 120 "$BIN" add-many "$URL" 0 1 >/dev/null # etiquette's schema
(cd "$GW" && DATABASE_URL=$URL timeout 120 node -e '
    require("graphile-worker").runMigrations({ connectionString: process.env.DATABASE_URL })
        .then(() => process.exit(0), (error) => { console.error(error); process.exit(1); })')
sql "CREATE SCHEMA plain;
     CREATE TABLE plain.jobs (id bigserial PRIMARY KEY, run_at timestamptz NOT NULL DEFAULT now(),
                              payload jsonb NOT NULL);
     -- What the hand-written HTTP handler inserts into: etiquette's table's shape and indexes.
     CREATE TABLE plain.tasks (LIKE etiquette.jobs INCLUDING ALL)"
# The plain job loop: claim the oldest (SKIP LOCKED), delete it, commit.
for batch in 1 10; do
    cat >"$WORK/claim_$batch.sql" <<EOF
WITH next AS (SELECT id FROM plain.jobs ORDER BY id LIMIT $batch FOR UPDATE SKIP LOCKED)
DELETE FROM plain.jobs AS job USING next WHERE job.id = next.id;
EOF
done

# --- 1. end to end -----------------------------------------------------------

if section 1; then
    echo "== 1. $JOBS trivial jobs end to end ($ROUNDS interleaved rounds; etiquette at max_concurrent_tasks $LIMIT)"
    for ((round = 1; round <= ROUNDS; round++)); do
        e2e_etiquette 1
        e2e_graphile fast 1
        e2e_etiquette 3
        e2e_graphile fast 3
        e2e_plain 1
        e2e_plain 10
        e2e_graphile default 1
    done
fi

# --- 2. enqueueing -------------------------------------------------------------

if section 2; then
    echo "== 2. enqueueing ($ROUNDS interleaved rounds)"
    for ((round = 1; round <= ROUNDS; round++)); do
        for how in "seq add-seq $SEQ_JOBS" "many_one add-many $JOBS $JOBS" "many_10k add-many $JOBS 10000" \
            "concurrent add-concurrent $JOBS 64"; do
            read -r label command n param <<<"$how"
            sql "TRUNCATE etiquette.jobs"
            sql "CHECKPOINT"
            measured "enqueue.$label" "$n" timeout 1800 "$BIN" "$command" "$URL" "$n" ${param:+"$param"}
        done
        sql "TRUNCATE etiquette.jobs"
        sql "CHECKPOINT"
        # The floor: the same rows, made inside the server by one statement.
        measured "enqueue.server_insert" "$JOBS" bash -c "
            start=\$(date +%s.%N)
            psql -X -q -At -v ON_ERROR_STOP=1 -d '$URL' -c \"INSERT INTO etiquette.jobs (queue, name, args)
                SELECT 'default', 'trivial', 'null' FROM generate_series(1, $JOBS)\"
            awk -v s=\$start -v e=\$(date +%s.%N) -v n=$JOBS 'BEGIN {printf \"elapsed_s=%.3f jobs_per_s=%.0f\n\", e - s, n / (e - s)}'"
    done
fi

# --- 3. HTTP -------------------------------------------------------------------

if section 3; then

    echo "== 3. HTTP: wrk -t2 -c$CONNECTIONS -d$DURATION, $ROUNDS interleaved rounds"
    HTTP_PORT=$(free_port)
    sql "TRUNCATE etiquette.jobs"
    "$BIN" serve "$URL" "$HTTP_PORT" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    BACKGROUND+=("$SERVER")
    wait_for_port "$HTTP_PORT"
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    # The server's connections stay open: a busy backend reports its statistics
    # at most once a second, an idle one 10 s after its last report. So the
    # routes that write wait 11 s before the counts are read, and again after.
    sleep 11
    for ((round = 1; round <= ROUNDS; round++)); do
        for route in /noop /memory-add-task /add-task /insert-16 /insert-64; do
            before=$(cpu_ticks "$SERVER")
            pg_before=$(pg_cpu)
            stats_before=$(pg_stats)
            out=$(timeout 120 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$HTTP_PORT$route")
            after=$(cpu_ticks "$SERVER")
            pg_after=$(pg_cpu)
            case $route in /add-task | /insert-*) sleep 11 ;; esac
            stats_after=$(pg_stats)
            line=$(echo "$out" | awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" \
                -v pg="$(awk -v a="$pg_after" -v b="$pg_before" 'BEGIN {print a - b}')" \
                -v b="$stats_before" -v a="$stats_after" '
                / requests in / {requests = $1}
                /Requests\/sec/ {rps = int($2)}
                /Non-2xx/ {errors = $NF}
                END {
                    split(b, x, "|"); split(a, y, "|")
                    printf "rps=%d server_cpu_us=%.1f pg_cpu_us=%.1f xacts=%.3f flushes=%.4f errors=%d\n",
                        rps, ticks / hz * 1e6 / requests, pg * 1e6 / requests,
                        (y[1] - x[1]) / requests, (y[2] - x[2]) / requests, errors
                }')
            echo "   $route: $line $(echo "$out" | grep -i "socket errors" || true)"
            [ "$(echo "$line" | field errors)" = 0 ] || { echo "errors on $route" >&2; exit 1; }
            note "http.$route" "$(echo "$line" | field rps)" "$(echo "$line" | field server_cpu_us)" \
                "$(echo "$line" | field pg_cpu_us)" "$(echo "$line" | field xacts)" "$(echo "$line" | field flushes)"
        done
    done
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    BACKGROUND=()
fi

# --- 4. bloat ------------------------------------------------------------------

if section 4; then

    echo "== 4. bloat: $JOBS jobs through 1 worker process with 0, $SMALL and $BIG finished rows in the table"
    for ((round = 1; round <= ROUNDS; round++)); do
        for rows in 0 "$SMALL" "$BIG"; do
            prepare_etiquette "$rows" "$JOBS"
            measured "bloat.$rows" "$JOBS" \
                "$BIN" race "$JOBS" 1 1 "$URL" "$ETIQUETTE_PENDING" -- "$BIN" work "$URL" "$LIMIT"
            out=$(timeout 600 "$BIN" latency "$URL" "$LATENCY_RATE" "$LATENCY_S" "$LIMIT")
            echo "   add to start, $LATENCY_RATE jobs/s for $LATENCY_S s: $out"
            note "latency.$rows" "$(echo "$out" | field p99_ms)" "$(echo "$out" | field p50_ms)"
        done
    done
    size() { sql "SELECT pg_total_relation_size('etiquette.jobs')"; }
    rows_before=$(sql "SELECT count(*) FROM etiquette.jobs")
    size_before=$(size)
    # Retention 30 minutes: the rows finished an hour ago go, those of the runs
    # above stay.
    prune_out=$(timeout 2400 "$BIN" prune "$URL" 1800)
    size_pruned=$(size)
    rows_after=$(sql "SELECT count(*) FROM etiquette.jobs")
    sql "VACUUM etiquette.jobs"
    size_vacuumed=$(size)
    # The space freed is reused: as many finished rows again.
    fill "$((rows_before - rows_after))"
    size_refilled=$(size)
    echo "   pruning (retention 30 min): $rows_before rows, $((size_before / 1048576)) MiB -> $(echo "$prune_out" | field prune_s) s ->" \
        "$rows_after rows, $((size_pruned / 1048576)) MiB; after VACUUM $((size_vacuumed / 1048576)) MiB;" \
        "with as many finished rows inserted again: $((size_refilled / 1048576)) MiB"
fi

# --- summary -------------------------------------------------------------------

# A measurement's best round: its figures, then the range of its first
# figure over all rounds ("lo–hi", or "1 round"). Best is the highest first
# figure, or the lowest with `min`.
stat() { # key [min]
    awk -v key="$1" -v mode="${2:-max}" '
        $1 == key {
            v = $2 + 0
            if (n == 0 || v < lo) lo = v
            if (n == 0 || v > hi) hi = v
            if (n == 0 || (mode == "min" ? v < bestv : v > bestv)) {bestv = v; line = $0}
            n++
        }
        END {
            if (n == 0) {print "- - - - - - -"; exit}
            sub(/^[^ ]+ /, "", line)
            printf "%s %s\n", line, (n == 1) ? "1-round" : lo "–" hi
        }' "$RESULTS"
}
best() { stat "$1" "${2:-max}" | awk '{print $1}'; } # key [min]
spread() { stat "$1" "${2:-max}" | awk '{print $NF}'; } # key [min]
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-"}'; }
better() { awk -v a="$1" -v b="$2" 'BEGIN {print (a > b) ? a : b}'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN {print (r == "-") ? "-" : (r + 0 >= t) ? "met" : "**not met**"}'; }

echo
echo "## PostgreSQL backend ($(date -u +%Y-%m-%d), $ROUNDS rounds, QUICK=$QUICK)"
echo
echo "machine: $machine; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: PostgreSQL $(sql 'SHOW server_version'), $settings; pg_test_fsync: $fsyncs fdatasync/s"
echo
echo "Jobs/s: the best round and the range over all rounds. The rest, from the"
echo "best round: the server's transactions (xact_commit: a statement sent as"
echo "text and prepared unnamed counts two, its Parse and its Execute), WAL"
echo "bytes and CPU per job, and its WAL flushes per second; the CPU per job of"
echo "everything else the measurement ran (workers, adders, pgbench), the client."
echo
echo "| measure | jobs/s | spread | xacts/job | WAL flushes/s | WAL bytes/job | server CPU µs/job | client CPU µs/job |"
echo "|---|---|---|---|---|---|---|---|"
row() { # key label
    local figures
    read -r -a figures <<<"$(stat "$1")"
    echo "| $2 | ${figures[0]} | ${figures[6]} | ${figures[1]} | ${figures[2]} | ${figures[3]} | ${figures[4]} | ${figures[5]} |"
}
row e2e.etiquette.p1 "end to end, etiquette, 1 process × $LIMIT"
row e2e.etiquette.p3 "end to end, etiquette, 3 processes × $LIMIT"
row e2e.graphile_fast.p1 "end to end, graphile-worker fastest, 1 process"
row e2e.graphile_fast.p3 "end to end, graphile-worker fastest, 3 processes"
row e2e.graphile_default.p1 "end to end, graphile-worker defaults (24 at once), 1 process"
row e2e.plain.b1 "end to end, plain SQL claim+delete, 32 clients"
row e2e.plain.b10 "end to end, plain SQL claim+delete, 32 clients, batches of 10"
row enqueue.seq "enqueue $SEQ_JOBS, one add at a time"
row enqueue.many_one "enqueue $JOBS, one add_many call"
row enqueue.many_10k "enqueue $JOBS, add_many in chunks of 10k"
row enqueue.concurrent "enqueue $JOBS, 64 concurrent adders"
row enqueue.server_insert "(floor) one INSERT ... SELECT of $JOBS rows in the server"
for rows in 0 "$SMALL" "$BIG"; do
    row "bloat.$rows" "end to end, 1 process, $rows finished rows in the table"
done
echo
echo "| add to start, $LATENCY_RATE jobs/s for $LATENCY_S s, 1 process | p99 ms (best) | p99 spread | p50 ms (same round) |"
echo "|---|---|---|---|"
for rows in 0 "$SMALL" "$BIG"; do
    read -r -a figures <<<"$(stat "latency.$rows" min)"
    echo "| $rows finished rows | ${figures[0]} | ${figures[2]} | ${figures[1]} |"
done
echo
if section 4; then
    echo "pruning: $rows_before rows, $((size_before / 1048576)) MiB before; one cycle took $(echo "$prune_out" | field prune_s) s;" \
        "$rows_after rows, $((size_pruned / 1048576)) MiB after; $((size_vacuumed / 1048576)) MiB after VACUUM;" \
        "$((size_refilled / 1048576)) MiB with as many finished rows inserted again"
    echo
fi
echo "| HTTP route (wrk -c$CONNECTIONS -d$DURATION) | req/s | spread | app CPU µs/req | PostgreSQL CPU µs/req | xacts/req | WAL flushes/req |"
echo "|---|---|---|---|---|---|---|"
for route in /noop /memory-add-task /add-task /insert-16 /insert-64; do
    read -r -a figures <<<"$(stat "http.$route")"
    echo "| $route | ${figures[0]} | ${figures[5]} | ${figures[1]} | ${figures[2]} | ${figures[3]} | ${figures[4]} |"
done

ours=$(better "$(best e2e.etiquette.p1)" "$(best e2e.etiquette.p3)")
fastest=$(better "$(best e2e.graphile_fast.p1)" "$(best e2e.graphile_fast.p3)")
default=$(best e2e.graphile_default.p1)
plain=$(better "$(best e2e.plain.b1)" "$(best e2e.plain.b10)")
http=$(best http./add-task)
insert=$(better "$(best http./insert-16)" "$(best http./insert-64)")
many=$(better "$(best enqueue.many_one)" "$(best enqueue.many_10k)")
empty=$(best bloat.0)
big=$(best "bloat.$BIG")
echo
echo "| target (best of our configurations against the best of theirs) | ratio | |"
echo "|---|---|---|"
echo "| end to end ≥ 2× graphile-worker fastest | $(ratio "$ours" "$fastest") ($ours / $fastest) | $(met "$(ratio "$ours" "$fastest")" 2) |"
echo "| end to end ≥ 10× graphile-worker defaults | $(ratio "$ours" "$default") ($ours / $default) | $(met "$(ratio "$ours" "$default")" 10) |"
echo "| end to end, against plain SQL (better of single and batches) | $(ratio "$ours" "$plain") ($ours / $plain) | |"
echo "| axum /add-task ≥ 3× insert per request (better pool) | $(ratio "$http" "$insert") ($http / $insert) | $(met "$(ratio "$http" "$insert")" 3) |"
echo "| add_many ≥ 100k jobs/s | $many jobs/s | $(met "$many" 100000) |"
echo "| $BIG finished rows within 20 % of the empty table | $(ratio "$big" "$empty") ($big / $empty) | $(met "$(ratio "$big" "$empty")" 0.8) |"
echo
# The machine's CPU shared by the server and the workers bounds any queue:
# jobs/s <= cores / (server + client CPU per job).
budget() { # key
    read -r -a figures <<<"$(stat "$1")"
    awk -v s="${figures[4]}" -v c="${figures[5]}" -v n="$(nproc)" \
        'BEGIN {if (s + c > 0) printf "%.1f + %.1f = %.1f µs, at most %.0f jobs/s on %d cores", s, c, s + c, n * 1e6 / (s + c), n; else print "-"}'
}
if section 1; then
    echo "CPU per job, server + client, and the bound it sets on this machine:"
    for key in e2e.etiquette.p1 e2e.etiquette.p3 e2e.graphile_fast.p1 e2e.graphile_fast.p3; do
        echo "- $key: $(budget "$key")"
    done
    echo "- 2x the better graphile-worker fastest ($fastest jobs/s) leaves $(awk -v f="$fastest" -v n="$(nproc)" 'BEGIN {if (f > 0) printf "%.1f", n * 1e6 / (2 * f); else print "-"}') µs of CPU per job, server and client together"
    echo
fi
echo "reproduce: $([ "$QUICK" = 1 ] && echo "QUICK=1 ")$([ "$SECTIONS" != 1234 ] && echo "SECTIONS=$SECTIONS ")bash bench/postgres.sh"
