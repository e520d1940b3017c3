#!/usr/bin/env bash
# Rebuild the screening benchmark's setup from nothing, then run the load (issue 18): so
# anyone reproduces the figure in BENCHMARKS.md ("Screening service").
#
#   scripts/bench-screen-setup.sh TXS WORK_DIR [SECONDS_PER_RUN] [CONNECTIONS]
#
# simulate (seed 7, --xor) → ingest → cluster build → case import-sim → sim-attribution →
# one `screen` (builds the persisted attribution and case-taint state in DATA/state/) →
# scripts/bench-serve.sh. Each step is timed with its peak RSS; steps already done in
# WORK_DIR are skipped. TXS=10000000 is the chain of BENCHMARKS.md (about 5 minutes to
# build on 2 cores, 10 GB of disk); 2000000 builds in under a minute.
# Needs wrk (Debian package `wrk`) and a release build (made if missing).
set -euo pipefail
TXS=${1:?transactions, e.g. 2000000}; W=${2:?work dir}; SECS=${3:-30}; CONN=${4:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/target/release/cointrail
[ -x "$B" ] || (cd "$ROOT" && cargo build --release -p cointrail)
mkdir -p "$W"; SIM=$W/sim; DATA=$W/data
step() { local name=$1; shift; /usr/bin/time -f "$name: %e s, peak RSS %M KB" "$@" >/dev/null; }
[ -f "$SIM/truth/summary.json" ] || step simulate "$B" --quiet simulate --txs "$TXS" --out "$SIM" --xor --seed 7
[ -f "$DATA/index/manifest.json" ] || step ingest "$B" --quiet --data-dir "$DATA" ingest --blocks-dir "$SIM/blocks"
[ -f "$DATA/clusters/state.json" ] || step "cluster build" "$B" --quiet --data-dir "$DATA" cluster build
[ -f "$DATA/cases.redb" ] || step "case import-sim" "$B" --quiet --data-dir "$DATA" case import-sim "$SIM/truth"
[ -f "$DATA/attribution.tsv" ] || step sim-attribution "$B" --quiet --data-dir "$DATA" sim-attribution "$SIM/truth"
A=$(awk -F'\t' '!/^#/ {print $1; exit}' "$DATA/attribution.tsv")
step "first screen (builds DATA/state/)" "$B" --quiet --data-dir "$DATA" screen "$A"
step "second screen (opens DATA/state/)" "$B" --quiet --data-dir "$DATA" screen "$A"
step "trace sim-heist-0" "$B" --quiet --data-dir "$DATA" trace sim-heist-0
echo "attribution lines: $(grep -vc '^#' "$DATA/attribution.tsv"); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ROOT/scripts/bench-serve.sh" "$DATA" "$SIM/truth" "$SECS" "$CONN"
