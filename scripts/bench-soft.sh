#!/usr/bin/env bash
# Issue 19 benchmark: for each scenario file, simulate a chain, ingest it with the sim's cases,
# attribution and a clustering, and score coin-level, entity-aware and soft-hop traces against
# the truth (scripts/eval-soft.py).
#
#   scripts/bench-soft.sh [TXS] [OUT_DIR] [SCENARIO.yaml ...]
# TXS defaults to 100000, OUT_DIR to /tmp/bench-soft, scenarios to scenarios/*.yaml.
# COINTRAIL_BIN names the binary (default: a release build made here).
set -euo pipefail
cd "$(dirname "$0")/.."
TXS="${1:-100000}"
OUT="${2:-/tmp/bench-soft}"
shift 2 2>/dev/null || shift $# 
SCEN=("$@")
[ ${#SCEN[@]} -gt 0 ] || SCEN=(scenarios/*.yaml)
if [ -z "${COINTRAIL_BIN:-}" ]; then
  cargo build --release -q -p cointrail
  COINTRAIL_BIN=./target/release/cointrail
fi
C="$COINTRAIL_BIN"
mkdir -p "$OUT"
for s in "${SCEN[@]}"; do
  n=$(basename "$s" .yaml)
  sim="$OUT/$n-sim"; data="$OUT/$n-data"
  if [ ! -f "$data/index/manifest.json" ]; then
    rm -rf "$sim" "$data"
    $C --quiet simulate --out "$sim" --txs "$TXS" --seed 7 --scenario "$s" >/dev/null
    $C --quiet --data-dir "$data" ingest --blocks-dir "$sim/blocks" >/dev/null
    $C --data-dir "$data" case import-sim "$sim/truth" >/dev/null
    $C --data-dir "$data" sim-attribution "$sim/truth" >/dev/null
    $C --quiet --data-dir "$data" cluster build >/dev/null
  fi
  echo "## scenario $n ($TXS txs, seed 7)"
  COINTRAIL_BIN="$C" python3 scripts/eval-soft.py "$sim" "$data" 0
  echo
done
