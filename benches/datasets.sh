# Sourced by the benchmark scripts: builds the release binary and makes sure the benchmark
# datasets exist under target/ (generated once, reused afterwards). Sets $bin, $small (1M × 64
# snappy Parquet, 4 files), $data (8M × 64 snappy Parquet, 8 files) and $shards ($data
# converted to streamfit shards).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
bin=target/release/streamfit
small=target/bench-1m
data=target/bench-8m
shards=target/bench-8m-shards
[[ -f $small/truth.json ]] || $bin generate --rows 1000000 --features 64 --shards 4 --compression snappy --seed 0 --out "$small" --quiet
[[ -f $data/truth.json ]] || $bin generate --rows 8000000 --features 64 --shards 8 --compression snappy --seed 0 --out "$data" --quiet
[[ -f $shards/manifest.json ]] || $bin convert "$data" --out "$shards" >/dev/null
