#!/usr/bin/env bash
# Load benchmark of `cointrail serve` (issue #7): wrk on the same machine, keys enabled,
# address screening then transaction screening, with the server's RSS sampled every 10 s.
#
#   scripts/bench-serve.sh DATA_DIR SIM_TRUTH_DIR [SECONDS_PER_RUN] [CONNECTIONS]
#
# DATA_DIR holds an index (with attribution and cases: see BENCHMARKS.md for how the 10M
# one is made); SIM_TRUTH_DIR is the simulator's truth/ folder of that chain, where the
# addresses and txids to ask for come from (20,000 of each, sampled with a fixed seed).
# Needs wrk (Debian package `wrk`) and a release build.
set -euo pipefail
DATA=${1:?data dir}; TRUTH=${2:?truth dir}; SECS=${3:-60}; CONN=${4:-4}
BIN=$(cd "$(dirname "$0")/.." && pwd)/target/release/cointrail
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$(dirname "$0")/.." && cargo build --release -p cointrail)
W=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$W"' EXIT
seeded() { openssl enc -aes-256-ctr -pass pass:cointrail -nosalt </dev/zero 2>/dev/null; }
tail -n +2 "$TRUTH/addresses.tsv" | cut -f1 | shuf -n 20000 --random-source=<(seeded) >"$W/addrs"
tail -n +2 "$TRUTH/tx_kinds.tsv" | cut -f1 | shuf -n 20000 --random-source=<(seeded) >"$W/txids"
KEY=$("$BIN" --data-dir "$DATA" keys create "bench-$$" --rate 100000000 2>/dev/null)
"$BIN" --data-dir "$DATA" serve --bind 127.0.0.1:0 --addr-file "$W/addr" 2>"$W/log" &
PID=$!
for _ in $(seq 1 600); do [ -s "$W/addr" ] && break; sleep 0.2; done
URL="http://$(cat "$W/addr")"
echo "loaded: $(grep -o 'load_ms[^ ]*' "$W/log" | head -1)"
# Subjects the index does not hold (truth rows of unused addresses) would be 404s: dropped
# first so the run is errors-free.
python3 - "$URL" "$KEY" "$W" <<'PY'
import json, sys, urllib.request
url, key, w = sys.argv[1:4]
for kind in ("addrs", "txids"):
    xs = [l.strip() for l in open(f"{w}/{kind}") if l.strip()]
    ok = []
    for i in range(0, len(xs), 500):
        r = urllib.request.Request(url + "/v1/screen/batch", json.dumps({"subjects": xs[i:i+500]}).encode(),
                                   {"X-API-Key": key, "Content-Type": "application/json"})
        ok += [it["subject"] for it in json.load(urllib.request.urlopen(r, timeout=600))["results"] if "screening" in it]
    open(f"{w}/{kind}", "w").write("\n".join(ok) + "\n")
PY
for kind in addrs txids; do
  route=$([ $kind = addrs ] && echo address || echo transaction)
  cat >"$W/$kind.lua" <<LUA
local xs = {}
for l in io.lines("$W/$kind") do xs[#xs + 1] = l end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/screen/$route/" .. xs[(i % #xs) + 1], { ["X-API-Key"] = "$KEY" })
end
LUA
  wrk -t1 -c"$CONN" -d5s -s "$W/$kind.lua" "$URL" >/dev/null   # warm-up
  ( while kill -0 $PID 2>/dev/null; do echo "$(date +%s) $(ps -o rss= -p $PID)"; sleep 10; done ) >"$W/rss.$kind" &
  RSSPID=$!
  echo "== $route screening, $SECS s, $CONN connections"
  wrk -t1 -c"$CONN" -d"${SECS}s" --latency -s "$W/$kind.lua" "$URL" | grep -E "Requests/sec|Latency Distribution|%|Non-2xx|Socket errors|requests in"
  kill $RSSPID
  echo "server RSS (KiB) every 10 s: $(awk '{print $2}' "$W/rss.$kind" | tr '\n' ' ')"
done
curl -s "$URL/metrics" | grep -E "^cointrail_http_requests_total.*screen" || true
"$BIN" --data-dir "$DATA" keys revoke "bench-$$" >/dev/null
