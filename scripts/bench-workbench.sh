#!/usr/bin/env bash
# First paint of the workbench's flow graph (issue 17's goals: a 500-node case graph in under
# 1 s; the demo case's whole trace graph, about 5,900 nodes) in this machine's Chromium,
# driven by playwright-core (scripts/install-browser.sh installs both).
#
#   scripts/bench-workbench.sh [RUNS]        # default 5 runs each; prints the medians
#
# Makes a fresh `cointrail demo` data dir, serves it, and for each graph size opens the case
# page (the trace request), then clicks "Open the flow graph" and times until the graph's
# first frame is painted. COINTRAIL_BIN picks the binary (default target/release/cointrail,
# else target/debug/cointrail: the paint is the browser's work; only the trace request's
# time depends on the build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-5}
BIN=${COINTRAIL_BIN:-$ROOT/target/release/cointrail}
[ -x "$BIN" ] || BIN=$ROOT/target/debug/cointrail
[ -x "$BIN" ] || { echo "no cointrail binary: cargo build --release -p cointrail" >&2; exit 1; }
bash "$ROOT/scripts/install-browser.sh"
W=$(mktemp -d); PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$W"' EXIT
"$BIN" --data-dir "$W/data" --quiet demo >/dev/null
KEY=$("$BIN" --data-dir "$W/data" keys create bench --rate 100000 | grep -o 'ct_[A-Za-z0-9_]*' | head -1)
"$BIN" --data-dir "$W/data" serve --bind 127.0.0.1:0 --addr-file "$W/addr" 2>"$W/log" &
PID=$!
for _ in $(seq 1 600); do [ -s "$W/addr" ] && break; sleep 0.1; done
echo "binary: $BIN; load average $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine inflates every figure)"
(cd "$ROOT/ui-tests" && WB_URL="http://$(cat "$W/addr")" WB_KEY="$KEY" WB_CASE=sim-heist-0 WB_RUNS="$RUNS" \
  node bench-workbench.mjs)
