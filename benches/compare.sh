#!/usr/bin/env bash
# Interleaved A/B throughput of two streamfit binaries (e.g. before and after a change): RUNS
# pairs of `train DATA --model logistic --batch-size 256 --epochs 1 --no-eval`, alternating A
# and B so both see the same machine load; prints each run and the medians (rows/s from the
# report, wall seconds of the whole process).
# Usage: benches/compare.sh BIN_A BIN_B [DATA] [RUNS]   (DATA default target/bench-8m, RUNS 7)
set -euo pipefail
a=$1 b=$2
data=${3:-target/bench-8m}
runs=${4:-7}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
for bin in "$a" "$b"; do "$bin" scan "$data" >/dev/null; done # warm the page cache
results=""
for _ in $(seq "$runs"); do
  for bin in "$a" "$b"; do
    start=$(date +%s.%N)
    "$bin" train "$data" --model logistic --batch-size 256 --epochs 1 --no-eval --quiet --report "$report"
    end=$(date +%s.%N)
    line=$(python3 -c 'import json,sys; print(sys.argv[2], json.load(open(sys.argv[1]))["rows_per_s"], float(sys.argv[3]) - float(sys.argv[4]))' "$report" "$bin" "$end" "$start")
    echo "$line"
    results+="$line"$'\n'
  done
done
printf '%s' "$results" | python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, rows, wall = line.split()
    runs.setdefault(name, []).append((float(rows), float(wall)))
for name, v in runs.items():
    print(f"{name}: median {statistics.median(r for r, _ in v) / 1e6:.2f} M rows/s, wall {statistics.median(w for _, w in v):.2f} s")
'
