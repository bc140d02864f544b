#!/usr/bin/env bash
# Larger than memory (issue 17): 3 epochs of logistic regression (batch 256, --no-eval) on the
# 8M × 64 dataset (2.06 GB of snappy Parquet, 2.08 GB of shards), warm (page cache holding the
# data) and with the pages evicted first (posix_fadvise DONTNEED) under memory cgroup caps of
# 1,000, 400 and 200 MiB (../shared/tools/memlimit: the page cache counts against the cap, as in
# a container), for each read mode. Prints one table row per case: the median rows/s of RUNS
# runs, the ratio to the warm median, what the kernel read from storage (pgpgin) and the
# workingset refaults (pages read again after being evicted) per run, peak RSS against the
# printed budget, and the read mode the run used; and per dataset the storage's own ceilings as
# the rows/s they could feed: `cat` of the files 3 times (front to back), evicted, under the
# smallest cap, and the units read in the plan's shuffled order (benches/storage_order.py).
#
# Usage: benches/larger_than_memory.sh [RUNS] [CAPS] [MODES]
#   RUNS  runs per case (default 3), CAPS caps in MiB (default "1000 400 200"),
#   MODES read modes under a cap (default "auto map": auto picks explicit reads there).
#   BIN=path overrides the binary (e.g. an older build, to compare).
#   benches/larger_than_memory.sh resume [CAP]: the interrupted-and-resumed check under a cap.
set -euo pipefail
source "$(dirname "$0")/datasets.sh"
bin=${BIN:-$bin}
memlimit=../shared/tools/memlimit
evict() { python3 -c 'import os,sys
for d in sys.argv[1:]:
    for n in os.listdir(d):
        fd = os.open(os.path.join(d, n), os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
vmstat() { awk '/^pgpgin /{p=$2} /^workingset_refault_file /{r=$2} END{print p, r}' /proc/vmstat; }
train=(train --model logistic --batch-size 256 --epochs 3 --no-eval --quiet)

if [[ ${1:-} == resume ]]; then
  cap=${2:-400}
  # Interrupted and resumed under the cap: SIGINT after 3 s (a checkpoint is written at the
  # next step boundary), then --resume auto; both halves run inside the cap.
  for source in "$shards" "$data"; do
    ck=$(mktemp -d)
    evict "$source"
    echo "== $source: interrupted after 3 s and resumed, cap $cap MiB"
    $memlimit "$cap" $bin "${train[@]}" "$source" --checkpoint-dir "$ck" --checkpoint-every 5000 &
    pid=$!
    sleep 3
    pkill -INT -P "$pid" streamfit || true
    wait "$pid" || true
    $memlimit "$cap" $bin "${train[@]/--quiet/}" "$source" --checkpoint-dir "$ck" --resume auto \
      --report "$report" | grep -E '^(resume|resumed)'
    python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print("%.2f M rows/s, peak RSS %.0f MB" % (r["rows_per_s"] / 1e6, r["peak_rss_bytes"] / 1e6))' "$report"
    rm -rf "$ck"
  done
  exit 0
fi

runs=${1:-3}
caps=${2:-1000 400 200}
modes=${3:-auto map}
# One run: prints "rows/s GB-read refaults peak-RSS-MB budget-MB mode".
one() {
  local cap=$1 source=$2; shift 2
  local before after
  if [[ $cap == warm ]]; then
    cat "$source"/* >/dev/null
    before=$(vmstat)
    $bin "${train[@]}" "$source" --report "$report" "$@"
  else
    evict "$source"
    before=$(vmstat)
    $memlimit "$cap" $bin "${train[@]}" "$source" --report "$report" "$@" 2>/dev/null
  fi
  after=$(vmstat)
  python3 - "$report" "$before" "$after" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b, a = map(int, sys.argv[2].split()), map(int, sys.argv[3].split())
(p0, r0), (p1, r1) = b, a
print(r["rows_per_s"], (p1 - p0) / 1e6, r1 - r0, r["peak_rss_bytes"] / 1e6,
      r["memory_budget_bytes"] / 1e6, r.get("read_mode", "-"))
PY
}
# The median run of a case (by rows/s): its row of figures.
case_row() {
  local rows=() i
  for ((i = 0; i < runs; i++)); do rows+=("$(one "$@")"); done
  printf '%s\n' "${rows[@]}" | sort -g | sed -n "$(((runs + 1) / 2))p"
}
echo "3 epochs, logistic, batch 256; median of $runs runs per case; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| data | case | read mode | rows/s | vs warm | read from storage | refaults | peak RSS / budget |"
echo "|---|---|---|---|---|---|---|---|"
for source in "$data" "$shards"; do
  name=$([[ $source == "$shards" ]] && echo shards || echo Parquet)
  warm=$(case_row warm "$source")
  warm_rate=${warm%% *}
  show() {
    awk -v name="$name" -v case="$1" -v warm="$warm_rate" '{
      printf "| %s | %s | %s | %.2f M | %.0f%% | %.2f GB | %s | %.0f / %.0f MB |\n",
        name, case, $6, $1 / 1e6, 100 * $1 / warm, $2, $3, $4, $5 }' <<<"$2"
  }
  show "warm" "$warm"
  # The storage's own ceiling: the files read 3 times with `cat`, evicted, under the smallest
  # cap, as the rows/s that rate of bytes would feed.
  evict "$source"
  rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$report")
  bytes=$(du -sb "$source" | cut -f1)
  start=$(date +%s.%N)
  $memlimit "${caps##* }" bash -c 'for i in 1 2 3; do cat "$1"/* >/dev/null; done' _ "$source" 2>/dev/null
  end=$(date +%s.%N)
  awk -v name="$name" -v rows="$rows" -v bytes="$bytes" -v s="$start" -v e="$end" -v warm="$warm_rate" -v cap="${caps##* }" 'BEGIN {
    t = e - s; printf "| %s | storage: cat × 3, evicted, cap %s MiB | - | %.2f M | %.0f%% | %.2f GB/s | - | - |\n",
      name, cap, 3 * rows / t / 1e6, 100 * 3 * rows / t / warm, 3 * bytes / t / 1e9 }'
  # What the storage delivers in the order an epoch reads (units of 16 MiB in the plan's
  # shuffled order, O_DIRECT, evicted first): the ceiling for any reading path that keeps the
  # plan (benches/storage_order.py compares the orders and methods).
  rate=$(python3 "$(dirname "$0")/storage_order.py" "$source" --runs 1 --case plan,direct,1 --rate-only)
  awk -v name="$name" -v rows="$rows" -v bytes="$bytes" -v rate="$rate" -v warm="$warm_rate" 'BEGIN {
    r = rate * 1e9 / bytes * rows; printf "| %s | storage: units in plan order, direct, evicted | - | %.2f M | %.0f%% | %.2f GB/s | - | - |\n",
      name, r / 1e6, 100 * r / warm, rate }'
  for cap in $caps; do
    for mode in $modes; do
      show "evicted, cap $cap MiB" "$(case_row "$cap" "$source" --read-mode "$mode")"
    done
  done
done
