#!/usr/bin/env bash
# Categorical columns: peak RSS of the vocabulary pass and training with a string column of
# ROWS distinct values (default 10M) against the printed memory budget, and training rows/s on
# 5 categorical + 10 numeric columns against the 10 numeric columns alone. The table is
# generated once under the target directory by examples/categorical_table.rs (never in git).
# Usage: [STREAMFIT_BIN=path] benches/categorical.sh [ROWS]
set -euo pipefail
rows=${1:-10000000}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-target}
# STREAMFIT_BIN: a binary built beforehand (a shared target directory may hold another
# checkout's `streamfit`).
if [[ -z ${STREAMFIT_BIN:-} ]]; then cargo build --release --quiet; fi
bin=${STREAMFIT_BIN:-$target/release/streamfit}
table=$target/bench-categorical-$rows.parquet
[[ -f $table ]] || cargo run --release --quiet --example categorical_table -- "$table" "$rows"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$report" "$1"; }
x="x0,x1,x2,x3,x4,x5,x6,x7,x8,x9"
run() { # NAME, then train flags
  local name=$1; shift
  local out
  out=$($bin train "$table" --model logistic --batch-size 256 --epochs 1 --no-eval --report "$report" "$@")
  local vocab budget
  vocab=$(grep -o 'categorical: vocabularies over [^:]* in [0-9.]* s' <<<"$out" || echo "no vocabulary pass")
  budget=$(grep -o 'memory budget: [0-9.,]* [KMG]B' <<<"$out" | head -1)
  printf '| %s | %.2f M | %s MB | %s | %s |\n' "$name" \
    "$(python3 -c "print($(field rows_per_s)/1e6)")" \
    "$(python3 -c "print(round($(field peak_rss_bytes)/1e6))")" "${budget#memory budget: }" "$vocab"
}
echo "| $rows rows | train rows/s (logistic, b=256) | peak RSS | printed budget | vocabulary pass |"
echo "|---|---|---|---|---|"
run "--categorical id (${rows} distinct, K=100)" --features "$x" --categorical id
run "5 categorical + 10 numeric" --features "$x" --categorical c0,c1,c2,c3,c4
run "10 numeric only" --features "$x"
