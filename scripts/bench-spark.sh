#!/usr/bin/env bash
# Both engines on one simulated chain: cointrail (release build) and the Spark jobs
# (spark/, local mode). Prints a Markdown table row per step with wall seconds.
#
#   scripts/bench-spark.sh TXS [WORK_DIR] [EXPOSURE_EVERY]
#
# Steps: simulate (seed 7), ingest, cluster build (multi-input), case import-sim,
# sim-attribution, export --format parquet, trace sim-heist-0 under fifo and haircut;
# then one spark-submit-equivalent run of clustering + exposure (every EXPOSURE_EVERY-th
# address, default 1000: three-hop walks fan out a thousandfold, so every address of a 1M
# chain is a cluster job) + taint. cointrail's own exposure has no whole-chain batch form:
# its figure is `screen` per address (BENCHMARKS.md, screening service).
# Then the read-back: `cointrail spark import` of Spark's results and `cointrail spark
# compare --trace` (the same partition, the same exposure rows of the screened addresses and
# the same FIFO/haircut taint, to the satoshi; its JSON goes to WORK_DIR/compare.json, and
# the script fails when anything differs). cointrail's own exposure time for the same
# addresses (`screen` without step bounds) is compare's cointrail_screen_seconds.
# SPARK_DRIVER_MEMORY (default 8g): the local JVM's heap. The jobs' own local default (2g)
# fails on the 1M chain: exposure's broadcast joins ran out of it ("Not enough memory to
# build and broadcast the table").
# COINTRAIL_SPARK_DEBUG=1 puts each exposure hop's frontier and rows in WORK_DIR/spark.log.
# SPARK_SHUFFLE_PARTITIONS: spark.sql.shuffle.partitions (the jobs' local default: 2 per core).
# Spark's scratch (shuffle files, spilled checkpoints) goes to WORK_DIR/spark-tmp, removed at
# the end with the exported dataset unless KEEP=1.
#
# On a chain built already (e.g. the shared 10M chain of scripts/bench-screen-setup.sh):
#   CHAIN=/work/d10m scripts/bench-spark.sh 10000000 /work/tmp-spark 100000
# uses CHAIN/sim/truth and CHAIN/data/index, read-only: WORK_DIR/data gets a symlink to the
# index and its own clustering, cases, attribution and state (built and timed here), so
# CHAIN's data directory is not written. TXS is then only a label.
set -euo pipefail
cd "$(dirname "$0")/.."
TXS=${1:?TXS}
W=${2:-$(mktemp -d)}
EVERY=${3:-1000}
BIN=target/release/cointrail
[ -x "$BIN" ] || cargo build --release --locked -p cointrail
PY=$(scripts/install-spark.sh)
D="$W/data"
SIM="$W/sim"
if [ -n "${CHAIN:-}" ]; then
  SIM="$CHAIN/sim"
  [ -f "$CHAIN/data/index/manifest.json" ] || { echo "CHAIN=$CHAIN: no data/index there" >&2; exit 1; }
  mkdir -p "$D"
  [ -e "$D/index" ] || ln -s "$(cd "$CHAIN/data/index" && pwd)" "$D/index"
fi
export SPARK_LOCAL_DIRS="$W/spark-tmp"
mkdir -p "$SPARK_LOCAL_DIRS"
t() { local name=$1; shift; local s; s=$(date +%s.%N); "$@" >/dev/null; printf '| %s | %.1f |\n' "$name" "$(echo "$(date +%s.%N) - $s" | bc)"; }
echo "| step ($TXS transactions) | seconds |"
echo "|---|---|"
if [ -z "${CHAIN:-}" ]; then
  [ -d "$SIM" ] || t "simulate" "$BIN" --quiet simulate --out "$SIM" --txs "$TXS" --seed 7
  t "cointrail ingest" "$BIN" --quiet --data-dir "$D" ingest --blocks-dir "$SIM/blocks"
fi
t "cointrail cluster build (multi-input)" "$BIN" --quiet --data-dir "$D" cluster build
[ -f "$D/cases.redb" ] || "$BIN" --quiet --data-dir "$D" case import-sim "$SIM/truth" >/dev/null
"$BIN" --quiet --data-dir "$D" sim-attribution "$SIM/truth" >/dev/null
# The attribution and case-taint state (DATA/state/) is built by the first command that
# opens the engine; timed on its own so that the trace rows below are the traces.
A=$(awk -F'\t' '!/^#/ {print $1; exit}' "$D/attribution.tsv")
t "cointrail state build (first screen)" "$BIN" --quiet --data-dir "$D" screen "$A"
t "cointrail trace sim-heist-0 --model fifo" "$BIN" --quiet --data-dir "$D" trace sim-heist-0 --model fifo --json
t "cointrail trace sim-heist-0 --model haircut" "$BIN" --quiet --data-dir "$D" trace sim-heist-0 --model haircut --json
rm -rf "$W/ds" "$W/out"
t "cointrail export --format parquet" "$BIN" --quiet --data-dir "$D" export --format parquet "$W/ds" --case sim-heist-0
s=$(date +%s.%N)
PYTHONPATH=spark "$PY" -m cointrail_spark "$W/ds" "$W/out" --case sim-heist-0 --master 'local[2]' \
  --exposure-every "$EVERY" --driver-memory "${SPARK_DRIVER_MEMORY:-8g}" \
  ${SPARK_SHUFFLE_PARTITIONS:+--shuffle-partitions "$SPARK_SHUFFLE_PARTITIONS"} 2>"$W/spark.log" >/dev/null
printf '| spark: all jobs, one JVM (exposure of every %s. address) | %.1f |\n' "$EVERY" "$(echo "$(date +%s.%N) - $s" | bc)"
python3 - "$W/out/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for k, v in s["times"].items():
    print(f"| spark: {k} | {v:.1f} |")
print("rows:", s["rows"], file=sys.stderr)
PY
t "cointrail spark import (clusters + exposure)" "$BIN" --quiet --data-dir "$D" spark import "$W/out"
s=$(date +%s.%N)
ok=1
"$BIN" --quiet --data-dir "$D" --json spark compare --trace "$W/ds/trace.parquet" >"$W/compare.json" 2>"$W/compare.err" || ok=0
printf '| cointrail spark compare --trace (partition, exposure, taint) | %.1f |\n' "$(echo "$(date +%s.%N) - $s" | bc)"
python3 - "$W/compare.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
x = c["exposure"]
print(f"| cointrail: exposure of the same {x['addresses_screened']} addresses (screen, {x['max_hops']} hops, no step bound) | {x['cointrail_screen_seconds']:.1f} |")
t = c["taint"] or {}
print(f"equal: {c['equal']}: clusters {c['clusters']['addresses']} addresses, same partition {c['clusters']['same_partition']}, "
      f"same ids {c['clusters']['same_cluster_id']}; exposure {x['rows']} rows, {x['differing_rows']} differ; "
      f"taint {t.get('rows_cointrail')} outputs, {t.get('differing_rows')} differ", file=sys.stderr)
PY
[ "${KEEP:-0}" = 1 ] || rm -rf "$W/ds" "$SPARK_LOCAL_DIRS"
[ "$ok" = 1 ] || { echo "spark compare: results differ (see $W/compare.json, $W/compare.err)" >&2; exit 1; }
