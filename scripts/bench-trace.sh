#!/usr/bin/env bash
# Trace benchmark (issue 6): forward FIFO and haircut traces of a simulated heist through a
# large simulated chain, no hop limit, warm. Prints the median trace time of 5 runs per
# model and the transactions visited per second.
#
#   scripts/bench-trace.sh [SIM_DIR] [DATA_DIR]
# SIM_DIR defaults to /work/benchdata/sim10m (made with
#   cointrail simulate --txs 10000000 --out SIM_DIR --xor --seed 7); it is ingested into DATA_DIR once.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM="${1:-/work/benchdata/sim10m}"
DATA="${2:-/work/benchdata/d10m}"
cargo build --release -q -p cointrail
C=./target/release/cointrail
if [ ! -f "$DATA/index/manifest.json" ]; then
  /usr/bin/time -f "ingest: %e s, peak RSS %M KB" $C --quiet --data-dir "$DATA" ingest --blocks-dir "$SIM/blocks"
  $C --data-dir "$DATA" case import-sim "$SIM/truth" >/dev/null
fi
if [ ! -f "$DATA/attribution.tsv" ]; then
  $C --data-dir "$DATA" sim-attribution "$SIM/truth" >/dev/null
fi
for model in fifo haircut; do
  times=()
  for i in 1 2 3 4 5; do
    line=$($C --data-dir "$DATA" trace sim-heist-0 --model "$model" | sed -n 1p)
    # "trace of sim-heist-0 (fifo, 3940 txs visited in 0.04s)"
    visited=$(echo "$line" | sed -E 's/.*, ([0-9]+) txs visited in ([0-9.]+)s\)/\1/')
    secs=$(echo "$line" | sed -E 's/.*, ([0-9]+) txs visited in ([0-9.]+)s\)/\2/')
    times+=("$secs")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  echo "$model: median ${median}s over 5 runs (${times[*]}), $visited txs visited, $(python3 -c "print(int($visited/max($median,1e-9)))") txs/s"
done
