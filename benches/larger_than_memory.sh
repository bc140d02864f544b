#!/usr/bin/env bash
# Larger-than-memory training: 8M × 64 rows as streamfit shards (~2.1 GB) trained under a
# memory cgroup cap of CAP MiB (page cache included, as the kernel charges it), with
# ../shared/tools/memlimit. The dataset is more than three times the cap. Prints one line per
# run: the source, the cap, peak usage, OOM kills, the exit status and the report's figures.
# Each run starts with the dataset evicted from the page cache, so every page it reads counts.
# Usage: benches/larger_than_memory.sh [CAP_MIB]   (default 640)
set -euo pipefail
cap=${1:-640}
source "$(dirname "$0")/datasets.sh"
memlimit=../shared/tools/memlimit
# Evict the dataset from the page cache first: pages cached earlier are charged to whichever
# cgroup read them, so a warm cache would hide the dataset from the cap.
evict() { python3 -c 'import os,sys
for d in sys.argv[1:]:
    for n in os.listdir(d):
        fd = os.open(os.path.join(d, n), os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
summary='import json,sys
r = json.load(open(sys.argv[1]))
print("rows %d, iterations %d, final loss %.4f, %.2f M rows/s, peak RSS %.0f MB" % (r["rows"], r["iterations"], r["full_loss"], r["rows_per_s"] / 1e6, r["peak_rss_bytes"] / 1e6))'
for source in "$shards" "$data"; do
  evict "$source"
  size=$(du -sm "$source" | cut -f1)
  echo "== $source: $size MB on disk, cap $cap MiB ($(awk "BEGIN{printf \"%.1f\", $size/$cap}")× the cap)"
  $memlimit "$cap" $bin train "$source" --model logistic --batch-size 256 --epochs 2 --full-loss --quiet --report "$report"
  python3 -c "$summary" "$report"
done
# Interrupted and resumed under the same cap: SIGINT after 3 s (a checkpoint is written at the
# next step boundary), then --resume auto; both halves run inside the cap.
for source in "$shards" "$data"; do
  ck=$(mktemp -d)
  evict "$source"
  echo "== $source: interrupted after 3 s and resumed, cap $cap MiB"
  $memlimit "$cap" $bin train "$source" --model logistic --batch-size 256 --epochs 2 --full-loss --quiet \
    --checkpoint-dir "$ck" --checkpoint-every 5000 &
  pid=$!
  sleep 3
  pkill -INT -P "$pid" streamfit || true
  wait "$pid" || true
  $memlimit "$cap" $bin train "$source" --model logistic --batch-size 256 --epochs 2 \
    --checkpoint-dir "$ck" --resume auto --report "$report" | grep -E '^(resume|resumed)'
  python3 -c "$summary" "$report"
  rm -rf "$ck"
done
