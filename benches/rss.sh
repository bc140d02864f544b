#!/usr/bin/env bash
# Bounded memory: peak RSS training on ~250 MB vs ~2 GB of Parquet with the same settings
# (logistic, b = 256, defaults otherwise, 1 epoch with the evaluation pass). Prints a table.
set -euo pipefail
source "$(dirname "$0")/datasets.sh"
large=$data
echo "| dataset | on disk | rows | peak RSS | memory budget |"
echo "|---|---|---|---|---|"
declare -A peak
for data in "$small" "$large"; do
  $bin train "$data" --batch-size 256 --epochs 1 --quiet --report "$report"
  size=$(du -sm "$data" | cut -f1)
  read -r rows rss budget < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["rows"], r["peak_rss_bytes"], r["memory_budget_bytes"])' "$report")
  peak[$data]=$rss
  printf '| %s | %s MB | %s | %.1f MB | %.1f MB |\n' "$data" "$size" "$rows" "$(awk "BEGIN{print $rss/1e6}")" "$(awk "BEGIN{print $budget/1e6}")"
done
diff=$(( ${peak[$large]} - ${peak[$small]} ))
printf '\npeak RSS difference (2 GB minus 250 MB): %.1f MB (acceptance: within 64 MB)\n' "$(awk "BEGIN{print $diff/1e6}")"
