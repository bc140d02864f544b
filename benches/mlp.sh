#!/usr/bin/env bash
# MLP throughput: training rows/s of a 64 → 64 → 32 → 1 ReLU MLP (binary head, Adam) at batch
# sizes 256 and 4096 on 1M rows × 64 features of snappy Parquet (generated under target/), page
# cache warm, next to logistic regression on the same data, and the same MLP read from the
# 8M-row dataset's streamfit shards (no decoding, so the gradient alone sets the pace). Uses all
# cores for the gradient. Prints a Markdown table; each figure is the median of RUNS runs.
# Usage: benches/mlp.sh [RUNS]   (default 3)
set -euo pipefail
runs=${1:-3}
source "$(dirname "$0")/datasets.sh"
$bin scan "$small" >/dev/null # warm the page cache
echo "| data | model | batch | train rows/s | stall | gradient share of trainer time |"
echo "|---|---|---|---|---|---|"
for source in "$small" "$shards"; do
  for model in "logistic" "mlp --hidden 64,32 --optimizer adam --lr 0.001"; do
    [[ $source == "$shards" && $model == logistic ]] && continue
    for b in 256 4096; do
      speeds=""; stalls=""; grads=""
      for _ in $(seq "$runs"); do
        # shellcheck disable=SC2086
        $bin train "$source" --model $model --batch-size "$b" --epochs 1 --no-eval --quiet --profile --report "$report" >/dev/null
        speeds+="$(field rows_per_s)"$'\n'
        stalls+="$(field stall_fraction)"$'\n'
        grads+="$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["profile"]; s={x["stage"]: x for x in p["stages"]}; print(s["gradient"]["busy_seconds"] / max(1e-9, p["wall_seconds"]))' "$report" 2>/dev/null || echo nan)"$'\n'
      done
      python3 - "$source" "${model%% *}" "$b" "$(printf '%s' "$speeds" | median)" "$(printf '%s' "$stalls" | median)" "$(printf '%s' "$grads" | median)" <<'PY'
import sys
source, model, b = sys.argv[1:4]
speed, stall, grad = map(float, sys.argv[4:])
name = "8M × 64, shards" if source.endswith("shards") else "1M × 64, snappy Parquet"
model = "MLP 64→64→32→1 (Adam)" if model == "mlp" else "logistic (SGD)"
print(f"| {name} | {model} | {b} | {speed/1e6:.2f} M | {stall:.0%} | {grad:.0%} |")
PY
    done
  done
done
