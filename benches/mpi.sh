#!/usr/bin/env bash
# Data-parallel throughput: training rows/s on 1M rows × 64 features of snappy Parquet
# (generated under target/), one process against `mpirun -np 2` on this 2-core machine, for
# logistic regression and the 64 → 64 → 32 → 1 MLP at global batch sizes 256 and 4096. The two
# ranks get one reader and one gradient thread each (the single process: 2 readers, 2 threads),
# so both use the 2 cores. Needs Open MPI (see docs/distributed.md). Prints a
# Markdown table; each figure is the median of RUNS runs.
# Usage: benches/mpi.sh [RUNS]   (default 3)
set -euo pipefail
runs=${1:-3}
source "$(dirname "$0")/datasets.sh"
cargo build --release --quiet --features mpi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
$bin scan "$small" >/dev/null # warm the page cache
echo "| model | global batch | 1 process rows/s | 2 ranks rows/s | 2 ranks / 1 process | steps/epoch (2 ranks) |"
echo "|---|---|---|---|---|---|"
for model in "logistic" "mlp --hidden 64,32 --optimizer adam --lr 0.001"; do
  for b in 256 4096; do
    one=""; two=""; steps=""
    for _ in $(seq "$runs"); do
      # shellcheck disable=SC2086
      $bin train "$small" --model $model --batch-size "$b" --epochs 1 --no-eval --quiet --report "$report"
      one+="$(field rows_per_s)"$'\n'
      # shellcheck disable=SC2086
      mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" train "$small" --model $model --batch-size "$b" --epochs 1 --no-eval --quiet --readers 1 --threads 1 --report "$report"
      two+="$(field rows_per_s)"$'\n'
      steps="$(field iterations)"
    done
    python3 - "${model%% *}" "$b" "$(printf '%s' "$one" | median)" "$(printf '%s' "$two" | median)" "$steps" <<'PY'
import sys
model, b = sys.argv[1:3]
one, two = map(float, sys.argv[3:5])
steps = int(sys.argv[5])
name = "MLP 64→64→32→1 (Adam)" if model == "mlp" else "logistic (SGD)"
print(f"| {name} | {b} | {one/1e6:.2f} M | {two/1e6:.2f} M | {two/one:.2f} | {steps:,} |")
PY
  done
done
