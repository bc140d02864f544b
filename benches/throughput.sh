#!/usr/bin/env bash
# Throughput benchmark: scan (the read ceiling) vs train on 8M rows × 64 features (snappy,
# ~2 GB) under target/, page cache warm. Prints a Markdown table; each figure is the median
# of RUNS runs. Usage: benches/throughput.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --quiet
bin=target/release/streamfit
data=target/bench-8m
if [[ ! -f $data/truth.json ]]; then
  $bin generate --rows 8000000 --features 64 --shards 8 --compression snappy --seed 0 --out "$data"
fi
$bin scan "$data" >/dev/null # warm the page cache
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
scan=$(for _ in $(seq "$runs"); do $bin scan "$data" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows_per_s"])'; done | median)
report=$(mktemp)
train=""; rss=""
for _ in $(seq "$runs"); do
  $bin train "$data" --model logistic --batch-size 256 --epochs 1 --no-eval --quiet --report "$report"
  train+="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows_per_s"])' "$report")"$'\n'
  rss+="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak_rss_bytes"])' "$report")"$'\n'
done
train=$(printf '%s' "$train" | median)
rss=$(printf '%s' "$rss" | median)
rm -f "$report"
echo "| dataset | scan rows/s | train rows/s (logistic, b=256) | train / scan | train peak RSS |"
echo "|---|---|---|---|---|"
python3 - "$scan" "$train" "$rss" <<'PY'
import sys
scan, train, rss = map(float, sys.argv[1:])
print(f"| 8M × 64 f32, snappy, 8 shards | {scan/1e6:.2f} M | {train/1e6:.2f} M | {train/scan:.0%} | {rss/1e6:.0f} MB |")
PY
