#!/usr/bin/env bash
# Instructions per trivial task, counted by callgrind: etiquette against a
# hand-written tokio::spawn + Semaphore, at limits 1, 16 and 1024.
#
#   bash bench/instructions.sh
#
# Unlike requests/s or tasks/s, the count repeats to within a fraction of a
# percent from run to run, whatever else the machine does. It does not see
# what cache lines and wake-ups cost: it tells how much work a task takes,
# not how fast two cores get through it. Each figure is the difference
# between runs of 200k and 100k tasks, divided by 100k, so that building the
# runtime and the queue cancels out.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build -q --release -p etiquette-core --example throughput
BIN=./target/release/examples/throughput

instructions() { # case limit n
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" once "$@" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

per_task() { # case limit
    local small large
    small=$(instructions "$1" "$2" 100000)
    large=$(instructions "$1" "$2" 200000)
    echo $(((large - small) / 100000))
}

echo "| limit | etiquette | spawn+semaphore | etiquette / spawn |"
echo "|---|---|---|---|"
for limit in 1 16 1024; do
    ours=$(per_task etiquette "$limit")
    naive=$(per_task spawn "$limit")
    echo "| $limit | $ours | $naive | $(awk -v a="$ours" -v b="$naive" 'BEGIN { printf "%.2f", a / b }') |"
done
