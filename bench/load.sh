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
cargo build -q --release -p etiquette-examples
cargo build -q --release -p etiquette-core --examples

wait_for_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listening on $PORT" >&2
    return 1
}

# requests per second from wrk
rps() {
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$PORT$1" \
        | awk '/Requests\/sec/ {print int($2)}'
}

# best requests per second of each route over $ROUNDS interleaved rounds, so
# that the machine's drift hits every route alike: "best1 best2 ..."
best_rps() { # route...
    local -a best=()
    local i r
    for ((r = 0; r < ROUNDS; r++)); do
        i=0
        for route in "$@"; do
            local now
            now=$(rps "$route")
            if [ -z "${best[$i]:-}" ] || [ "$now" -gt "${best[$i]}" ]; then best[$i]=$now; fi
            i=$((i + 1))
        done
    done
    echo "${best[*]}"
}

http_case() { # name, command...
    local name=$1
    shift
    PORT=$PORT RUST_LOG=warn "$@" >"$OUT/$name.log" 2>&1 &
    local pid=$!
    wait_for_port
    local noop add spawn
    if [ "$name" = axum ]; then
        # Also the same increment through a hand-written spawn + semaphore.
        read -r noop add spawn < <(best_rps /noop /add-task /spawn-task)
        echo "axum-spawn $noop $spawn" >>"$OUT/http-spawn"
    else
        read -r noop add < <(best_rps /noop /add-task)
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    echo "$name $noop $add"
}

echo "== in-process throughput, trivial tasks (best of 5, interleaved)"
./target/release/examples/throughput | tee "$OUT/rust-throughput"
(cd bench/python && "$VENV/bin/python" throughput.py 100000) | tee "$OUT/python-throughput"

echo "== add_task latency with room in the queue"
./target/release/examples/enqueue_latency | tee "$OUT/latency"

echo "== HTTP: /add-task against /noop, wrk -t2 -c$CONNECTIONS -d$DURATION, best of $ROUNDS interleaved rounds"
{
    http_case axum ./target/release/axum_counter
    http_case actix ./target/release/actix_counter
    http_case poem ./target/release/poem_counter
    (cd bench/python && exec "$VENV/bin/uvicorn" app:app --port "$PORT" --loop uvloop --log-level warning) >"$OUT/fastapi.log" 2>&1 &
    pid=$!
    wait_for_port
    read -r noop add < <(best_rps /noop /add-task)
    kill -TERM "$pid"
    wait "$pid" || true
    echo "fastapi $noop $add"
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
while read -r name noop add; do
    echo "| $name /add-task req/s vs /noop | $add | $noop | $(ratio "$add" "$noop") |"
done <"$OUT/http"
while read -r name noop spawn; do
    echo "| axum /spawn-task (spawn+semaphore) req/s vs /noop | $spawn | $noop | $(ratio "$spawn" "$noop") |"
done <"$OUT/http-spawn"
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
