#!/usr/bin/env bash
# Shuffle lanes against the read ceiling: RUNS rounds of `scan DATA` and of `train DATA --model
# logistic --batch-size 256 --epochs 1 --no-eval --shuffle-lanes K` for each K given,
# interleaved so that all see the same machine load; prints each run (rows/s, wall seconds,
# CPU seconds from `perf stat -e task-clock` when perf is installed) and the medians, with
# train / scan.
# Usage: benches/shuffle_lanes.sh BIN DATA RUNS K [K...]
#   e.g. benches/shuffle_lanes.sh target/release/streamfit target/bench-8m 5 1 2 4
set -euo pipefail
bin=$1 data=$2 runs=$3
shift 3
report=$(mktemp)
stat=$(mktemp)
trap 'rm -f "$report" "$report.out" "$stat"' EXIT
"$bin" scan "$data" >/dev/null # warm the page cache
measure() { # NAME COMMAND...: runs it, stdout into $report.out; prints "NAME rows/s wall cpu"
  local name=$1
  shift
  local start end cpu=nan
  start=$(date +%s.%N)
  if command -v perf >/dev/null; then
    perf stat -e task-clock -x, -o "$stat" "$@" >"$report.out"
    cpu=$(awk -F, '/task-clock/ {print $1 / 1000}' "$stat")
  else
    "$@" >"$report.out"
  fi
  end=$(date +%s.%N)
  # `scan --json` reports on stdout, `train --report` into the file.
  if [ "$name" = scan ]; then cp "$report.out" "$report"; fi
  python3 -c 'import json,sys; print(sys.argv[1], json.load(open(sys.argv[2]))["rows_per_s"], float(sys.argv[3]) - float(sys.argv[4]), sys.argv[5])' \
    "$name" "$report" "$end" "$start" "$cpu"
}
results=""
for _ in $(seq "$runs"); do
  line=$(measure scan "$bin" scan "$data" --json)
  echo "$line"
  results+="$line"$'\n'
  for k in "$@"; do
    line=$(measure "train-K$k" "$bin" train "$data" --model logistic --batch-size 256 --epochs 1 \
      --no-eval --quiet --shuffle-lanes "$k" --report "$report")
    echo "$line"
    results+="$line"$'\n'
  done
done
printf '%s' "$results" | python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, rows, wall, cpu = line.split()
    runs.setdefault(name, []).append((float(rows), float(wall), float(cpu)))
scan = statistics.median(r for r, _, _ in runs["scan"])
for name, v in runs.items():
    rows = statistics.median(r for r, _, _ in v)
    cpu = statistics.median(c for _, _, c in v)
    wall = statistics.median(w for _, w, _ in v)
    print(f"{name}: median {rows / 1e6:.2f} M rows/s ({rows / scan:.0%} of scan), wall {wall:.2f} s, CPU {cpu:.2f} s")
'
