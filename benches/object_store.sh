#!/usr/bin/env bash
# Object storage (issue 16): scan and train throughput on one dataset read from local files and
# from the tests' in-process S3 server (s3s over a directory, on 127.0.0.1), with 0 ms and
# 20 ms added to every request, read-ahead off (--fetch-ahead-bytes 1) or at its default
# (64 MiB). Prints a Markdown table (tests/object_store_bench.rs, an ignored test).
# The server shares the machine's cores with streamfit, so the dataset is small: ROWS × 64
# float32 features (default 600,000 rows, ~150 MB of Snappy Parquet, 4 files, row groups of
# ROW_GROUP_ROWS rows, default 65,536: one unit is one request of ~16 MB), generated once
# under /tmp/streamfit-bench-s3-ROWS-ROW_GROUP_ROWS.
# STREAMFIT_BENCH_DEFAULT_ONLY=1 runs only the default --fetch-ahead-bytes (local, 0 ms, 20 ms).
# Usage: benches/object_store.sh [ROWS] [EPOCHS] [ROW_GROUP_ROWS]
set -euo pipefail
rows=${1:-600000}
epochs=${2:-1}
row_group_rows=${3:-65536}
root=/tmp/streamfit-bench-s3-$rows-$row_group_rows
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ ! -d "$root/bucket/data" ]; then
  mkdir -p "$root/bucket"
  cargo run --release -q -- generate --rows "$rows" --features 64 --shards 4 --row-group-rows "$row_group_rows" --out "$root/bucket/data" -q
fi
# Record each object's ETag the way the server keeps one for an uploaded object (s3s-fs
# otherwise hashes the whole file with MD5 on every GET and HEAD, which would dominate).
python3 - "$root" <<'PY'
import base64, hashlib, json, os, sys
root = sys.argv[1]
enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
for dirpath, _, names in os.walk(os.path.join(root, "bucket")):
    for name in names:
        path = os.path.join(dirpath, name)
        key = os.path.relpath(path, os.path.join(root, "bucket"))
        md5 = hashlib.md5(open(path, "rb").read()).hexdigest()
        info = os.path.join(root, ".bucket-%s.object-%s.internal.json" % (enc("bucket"), enc(key)))
        json.dump({"e_tag": md5}, open(info, "w"))
PY
du -sh "$root/bucket/data"
STREAMFIT_BENCH_ROOT=$root STREAMFIT_BENCH_EPOCHS=$epochs \
  cargo test --release -q --test object_store_bench -- --ignored --nocapture --test-threads 1
