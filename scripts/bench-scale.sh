#!/usr/bin/env bash
# One row of the scale table (issue 18): every step on a simulated chain of SIZE
# transactions, each with its wall time, peak RSS and peak anonymous memory, the files it
# leaves on disk and bytes per transaction. Run it for 10M, 30M and 100M (disk: about
# 1 KB per transaction for blocks + index), then compare rows: a step whose cost per
# transaction grows with SIZE is not linear.
#
#   scripts/bench-scale.sh SIZE WORK_DIR [SCREEN_SECONDS]
#
# Steps: simulate (seed 7, --xor) → ingest → cluster build (multi-input) → cluster build
# --change default → case import-sim → sim-attribution → both cluster builds again with
# attribution.tsv present → first screen (builds DATA/state/)
# → screen again → trace sim-heist-0 under each model → scripts/bench-serve.sh (address and
# transaction screening, SCREEN_SECONDS each, default 30). Steps already done are skipped.
# Output: a TSV table on stdout (step, seconds, CPU seconds (user+sys: far less sensitive to the
# machine's load than wall time), peak RSS KB, peak anon KB, disk MB, bytes/tx,
# the 1-minute load average at the step's start and end: on a shared machine wall times carry
# that load, peak memory and disk do not). SCREEN_SECONDS=0 skips the serve load. A last row
# "total" gives the whole work dir's size (chain + data dir).
set -euo pipefail
SIZE=${1:?transactions}; W=${2:?work dir}; SECS=${3:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/target/release/cointrail
[ -x "$B" ] || (cd "$ROOT" && cargo build --release -p cointrail)
mkdir -p "$W"; SIM=$W/sim; DATA=$W/data
printf 'step\tseconds\tcpu_s\tpeak_rss_kb\tpeak_anon_kb\tdisk_mb\tbytes_per_tx\tload_start\tload_end\n'
load1() { cut -d' ' -f1 /proc/loadavg; }
# Runs a command, samples its RssAnon every 0.05 s, prints one row.
row() {
  local name=$1 dir=$2; shift 2
  local t0 t1 pid anon=0 a l0
  l0=$(load1)
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M %U %S" -o "$W/.rss" "$@" >/dev/null 2>"$W/.err" &
  pid=$!
  while kill -0 $pid 2>/dev/null; do
    for c in $(pgrep -P $pid); do
      a=$(awk '/RssAnon/ {print $2}' /proc/$c/status 2>/dev/null || echo 0)
      [ "${a:-0}" -gt "$anon" ] && anon=$a
    done
    sleep 0.05
  done
  wait $pid || { echo "$name failed:" >&2; cat "$W/.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  local mb=0
  [ -n "$dir" ] && mb=$(du -sm "$dir" | cut -f1)
  local m u s; read -r m u s < <(tail -1 "$W/.rss")
  printf '%s\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$u + $s" | bc)" "$m" "$anon" "$mb" \
    "$(echo "$mb * 1048576 / $SIZE" | bc)" "$l0" "$(load1)"
}
[ -f "$SIM/truth/summary.json" ] || row simulate "$SIM" "$B" --quiet simulate --txs "$SIZE" --out "$SIM" --xor --seed 7
[ -f "$DATA/index/manifest.json" ] || row ingest "$DATA/index" "$B" --quiet --data-dir "$DATA" ingest --blocks-dir "$SIM/blocks"
row "cluster build" "$DATA/clusters" "$B" --quiet --data-dir "$DATA" cluster build --change none
row "cluster build --change default" "$DATA/clusters" "$B" --quiet --data-dir "$DATA" cluster build --change default
[ -f "$DATA/cases.redb" ] || row "case import-sim" "" "$B" --quiet --data-dir "$DATA" case import-sim "$SIM/truth"
[ -f "$DATA/attribution.tsv" ] || row sim-attribution "" "$B" --quiet --data-dir "$DATA" sim-attribution "$SIM/truth"
# The same two builds again with attribution.tsv present (their summary of tagged clusters
# reads every attribution line): the second leaves the change-layer clustering in place for
# the queries below, as before.
row "cluster build (attribution.tsv present)" "$DATA/clusters" "$B" --quiet --data-dir "$DATA" cluster build --change none
row "cluster build --change default (attribution.tsv present)" "$DATA/clusters" "$B" --quiet --data-dir "$DATA" cluster build --change default
rm -rf "$DATA/state"
A=$(awk -F'\t' '!/^#/ {print $1; exit}' "$DATA/attribution.tsv")
row "screen (builds state)" "$DATA/state" "$B" --quiet --data-dir "$DATA" screen "$A"
row "screen" "" "$B" --quiet --data-dir "$DATA" screen "$A"
for m in fifo lifo tiho tifo haircut poison; do
  extra=(); [ $m = poison ] && extra=(--max-hops 8)
  row "trace --model $m" "" "$B" --quiet --data-dir "$DATA" trace sim-heist-0 --model $m "${extra[@]}"
done
mb=$(du -sm "$W" | cut -f1)
printf 'total\t\t\t\t\t%s\t%s\t%s\t\n' "$mb" "$(echo "$mb * 1048576 / $SIZE" | bc)" "$(load1)"
[ "$SECS" = 0 ] || "$ROOT/scripts/bench-serve.sh" "$DATA" "$SIM/truth" "$SECS" 4 | grep -E "==|Requests/sec|50%|99%|RSS" >&2
