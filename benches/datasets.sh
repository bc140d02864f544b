# Sourced by the benchmark scripts: builds the release binary and makes sure the benchmark
# datasets exist under target/ (generated once, reused afterwards). Sets $bin, $small (1M × 64
# snappy Parquet, 4 files), $data (8M × 64 snappy Parquet, 8 files) and $shards ($data
# converted to streamfit shards), and the helpers the scripts share: `median` (of numbers on
# stdin), `$report` (a temporary file for `--report`, removed on exit) and `field NAME` (a
# top-level field of that report).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
bin=target/release/streamfit
small=target/bench-1m
data=target/bench-8m
shards=target/bench-8m-shards
[[ -f $small/truth.json ]] || $bin generate --rows 1000000 --features 64 --shards 4 --compression snappy --seed 0 --out "$small" --quiet
[[ -f $data/truth.json ]] || $bin generate --rows 8000000 --features 64 --shards 8 --compression snappy --seed 0 --out "$data" --quiet
[[ -f $shards/manifest.json ]] || $bin convert "$data" --out "$shards" >/dev/null
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
report=$(mktemp)
trap 'rm -f "$report"' EXIT
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$report" "$1"; }
