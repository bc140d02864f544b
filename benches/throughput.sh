#!/usr/bin/env bash
# Throughput benchmark: scan (the read ceiling) vs train on 8M rows × 64 features, from snappy
# Parquet (~2 GB, generated under target/) and from the same data converted to streamfit
# shards, page cache warm. Prints a Markdown table; each figure is the median of RUNS runs.
# Usage: benches/throughput.sh [RUNS]   (default 3)
set -euo pipefail
runs=${1:-3}
source "$(dirname "$0")/datasets.sh"
echo "| dataset | scan rows/s | scan GB/s | train rows/s (logistic, b=256) | train / scan | train peak RSS |"
echo "|---|---|---|---|---|---|"
for source in "$data" "$shards"; do
  $bin scan "$source" >/dev/null # warm the page cache
  scans=$(for _ in $(seq "$runs"); do $bin scan "$source" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["rows_per_s"], r["file_gb_per_s"])'; done)
  scan=$(awk '{print $1}' <<<"$scans" | median)
  gbs=$(awk '{print $2}' <<<"$scans" | median)
  train=""; rss=""
  for _ in $(seq "$runs"); do
    $bin train "$source" --model logistic --batch-size 256 --epochs 1 --no-eval --quiet --report "$report"
    train+="$(field rows_per_s)"$'\n'
    rss+="$(field peak_rss_bytes)"$'\n'
  done
  train=$(printf '%s' "$train" | median)
  rss=$(printf '%s' "$rss" | median)
  python3 - "$source" "$scan" "$gbs" "$train" "$rss" <<'PY'
import sys
source = sys.argv[1]
scan, gbs, train, rss = map(float, sys.argv[2:])
name = "8M × 64 f32, streamfit shards" if source.endswith("shards") else "8M × 64 f32, snappy Parquet, 8 files"
print(f"| {name} | {scan/1e6:.2f} M | {gbs:.2f} | {train/1e6:.2f} M | {train/scan:.0%} | {rss/1e6:.0f} MB |")
PY
done
