#!/usr/bin/env bash
# Measures etiquette against its baselines in one run and prints one table
# of ratios. Everything runs on this machine; load goes to 127.0.0.1 only.
#
#   bash bench/load.sh            # full run, about 6 minutes
#   DURATION=2s ROUNDS=1 bash bench/load.sh
#
# Needs: cargo, python3 (for a venv with the Python original), and wrk
# (installed from Debian's packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18080}
VENV=${VENV:-target/bench-venv}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q etiquette==0.0.3 fastapi uvicorn uvloop
fi
VENV=$(cd "$VENV" && pwd)

echo "== building (release)"
# Without the `metrics` feature, which only `axum_jobs` uses (see
# examples/Cargo.toml).
cargo build -q --release -p etiquette-examples --no-default-features
cargo build -q --release -p etiquette-core --examples

wait_for_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listening on $PORT" >&2
    return 1
}

# user + system CPU time of a process and all its threads, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One wrk run against a route of the server with this pid:
# "requests/s server-CPU-microseconds-per-request". The second figure is the
# steadier one on a noisy machine: it does not depend on how the cores were
# shared out during the run.
measure() { # pid route
    local before after out
    before=$(cpu_ticks "$1")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$PORT$2")
    after=$(cpu_ticks "$1")
    echo "$out" | awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        / requests in / {requests = $1}
        /Requests\/sec/ {rps = int($2)}
        END {printf "%d %.1f\n", rps, ticks / hz * 1e6 / requests}'
}

# Each route's best requests/s and least CPU per request over $ROUNDS
# interleaved rounds, so that the machine's drift hits every route alike:
# "rps1 cpu1 rps2 cpu2 ..."
best_of() { # pid route...
    local pid=$1
    shift
    local -a rps=() cpu=()
    local i r now_rps now_cpu
    for ((r = 0; r < ROUNDS; r++)); do
        i=0
        for route in "$@"; do
            read -r now_rps now_cpu < <(measure "$pid" "$route")
            if [ -z "${rps[$i]:-}" ] || [ "$now_rps" -gt "${rps[$i]}" ]; then rps[$i]=$now_rps; fi
            if [ -z "${cpu[$i]:-}" ] || awk -v a="$now_cpu" -v b="${cpu[$i]}" 'BEGIN {exit !(a < b)}'; then
                cpu[$i]=$now_cpu
            fi
            i=$((i + 1))
        done
    done
    for ((i = 0; i < $#; i++)); do printf '%s %s ' "${rps[$i]}" "${cpu[$i]}"; done
    echo
}

# Prints "name noop_rps noop_cpu add_rps add_cpu [spawn_rps spawn_cpu]".
http_case() { # name, routes, command...
    local name=$1 routes=$2
    shift 2
    PORT=$PORT RUST_LOG=warn "$@" >"$OUT/$name.log" 2>&1 &
    local pid=$!
    wait_for_port
    # shellcheck disable=SC2086 # the routes are words
    echo "$name $(best_of "$pid" $routes)"
    kill -TERM "$pid"
    wait "$pid" || true
}

echo "== in-process throughput, trivial tasks (best of 5, interleaved)"
./target/release/examples/throughput | tee "$OUT/rust-throughput"
(cd bench/python && "$VENV/bin/python" throughput.py 100000) | tee "$OUT/python-throughput"

echo "== add_task latency with room in the queue"
./target/release/examples/enqueue_latency | tee "$OUT/latency"

echo "== HTTP: /add-task against /noop, wrk -t2 -c$CONNECTIONS -d$DURATION, best of $ROUNDS interleaved rounds"
echo "   (name, then requests/s and server CPU µs per request of each route)"
{
    # axum also serves the same increment through a hand-written spawn +
    # semaphore, the baseline for handing work off at all.
    http_case axum "/noop /add-task /spawn-task" ./target/release/axum_counter
    http_case actix "/noop /add-task" ./target/release/actix_counter
    http_case poem "/noop /add-task" ./target/release/poem_counter
    (cd bench/python && exec "$VENV/bin/uvicorn" app:app --port "$PORT" --loop uvloop --log-level warning) >"$OUT/fastapi.log" 2>&1 &
    pid=$!
    wait_for_port
    echo "fastapi $(best_of "$pid" /noop /add-task)"
    kill -TERM "$pid"
    wait "$pid" || true
} | tee "$OUT/http"

echo "== overload: 60k requests/s for 10 s, 100 ms tasks, 16 at once"
./target/release/examples/overload naive | tee "$OUT/overload"
./target/release/examples/overload etiquette | tee -a "$OUT/overload"

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "| measure | etiquette | baseline | ratio |"
echo "|---|---|---|---|"
for limit in 1 16 1024; do
    line=$(grep "^limit=$limit " "$OUT/rust-throughput")
    ours=$(echo "$line" | field etiquette_per_s)
    naive=$(echo "$line" | field spawn_semaphore_per_s)
    python=$(grep "^limit=$limit " "$OUT/python-throughput" | field python_per_s)
    echo "| trivial tasks/s, limit $limit, vs spawn+semaphore | $ours | $naive | $(ratio "$ours" "$naive") |"
    echo "| trivial tasks/s, limit $limit, vs Python etiquette | $ours | $python | $(ratio "$ours" "$python") |"
done
while read -r name noop noop_cpu add add_cpu spawn spawn_cpu; do
    echo "| $name /add-task req/s vs /noop | $add | $noop | $(ratio "$add" "$noop") |"
    echo "| $name server CPU µs per request, /add-task vs /noop | $add_cpu | $noop_cpu | $(ratio "$add_cpu" "$noop_cpu") |"
    if [ -n "$spawn" ]; then
        echo "| $name /spawn-task (spawn+semaphore) req/s vs /noop | $spawn | $noop | $(ratio "$spawn" "$noop") |"
        echo "| $name server CPU µs per request, /spawn-task vs /noop | $spawn_cpu | $noop_cpu | $(ratio "$spawn_cpu" "$noop_cpu") |"
        echo "| $name /add-task vs /spawn-task: req/s, CPU per request | $add, $add_cpu | $spawn, $spawn_cpu | $(ratio "$add" "$spawn"), $(ratio "$add_cpu" "$spawn_cpu") |"
    fi
done <"$OUT/http"
while read -r line; do
    producers=$(echo "$line" | field producers)
    echo "| add_task p50 / p99, $producers producer(s) | $(echo "$line" | field p50_ns) ns / $(echo "$line" | field p99_ns) ns | | |"
done <"$OUT/latency"
naive_rss=$(grep mode=naive "$OUT/overload" | field peak_rss_mib)
ours_rss=$(grep mode=etiquette "$OUT/overload" | field peak_rss_mib)
naive_pending=$(grep mode=naive "$OUT/overload" | field pending)
ours_pending=$(grep mode=etiquette "$OUT/overload" | field pending)
echo "| overload peak RSS (MiB) | $ours_rss | $naive_rss | $(ratio "$ours_rss" "$naive_rss") |"
echo "| overload pending at end | $ours_pending | $naive_pending | |"
