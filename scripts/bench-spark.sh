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
set -euo pipefail
cd "$(dirname "$0")/.."
TXS=${1:?TXS}
W=${2:-$(mktemp -d)}
EVERY=${3:-1000}
BIN=target/release/cointrail
[ -x "$BIN" ] || cargo build --release --locked -p cointrail
PY=$(scripts/install-spark.sh)
D="$W/data"
t() { local name=$1; shift; local s; s=$(date +%s.%N); "$@" >/dev/null; printf '| %s | %.1f |\n' "$name" "$(echo "$(date +%s.%N) - $s" | bc)"; }
echo "| step ($TXS transactions) | seconds |"
echo "|---|---|"
[ -d "$W/sim" ] || t "simulate" "$BIN" --quiet simulate --out "$W/sim" --txs "$TXS" --seed 7
t "cointrail ingest" "$BIN" --quiet --data-dir "$D" ingest --blocks-dir "$W/sim/blocks"
t "cointrail cluster build (multi-input)" "$BIN" --quiet --data-dir "$D" cluster build
"$BIN" --quiet --data-dir "$D" case import-sim "$W/sim/truth" >/dev/null
"$BIN" --quiet --data-dir "$D" sim-attribution "$W/sim/truth" >/dev/null
t "cointrail trace sim-heist-0 --model fifo" "$BIN" --quiet --data-dir "$D" trace sim-heist-0 --model fifo --json
t "cointrail trace sim-heist-0 --model haircut" "$BIN" --quiet --data-dir "$D" trace sim-heist-0 --model haircut --json
rm -rf "$W/ds" "$W/out"
t "cointrail export --format parquet" "$BIN" --quiet --data-dir "$D" export --format parquet "$W/ds" --case sim-heist-0
s=$(date +%s.%N)
PYTHONPATH=spark "$PY" -m cointrail_spark "$W/ds" "$W/out" --case sim-heist-0 --master 'local[2]' \
  --exposure-every "$EVERY" --driver-memory "${SPARK_DRIVER_MEMORY:-8g}" 2>"$W/spark.log" >/dev/null
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
[ "$ok" = 1 ] || { echo "spark compare: results differ (see $W/compare.json, $W/compare.err)" >&2; exit 1; }
