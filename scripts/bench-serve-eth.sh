#!/usr/bin/env bash
# Load benchmark of Ethereum address screening through the API (issue 15), the same way
# scripts/bench-serve.sh measures Bitcoin: wrk on the same machine, keys enabled, 20,000
# addresses of the chain asked round-robin, the server's RSS sampled every 10 s.
#
#   scripts/bench-serve-eth.sh DATA_DIR SIM_DIR [SECONDS] [CONNECTIONS]
#
# SIM_DIR is the output of `cointrail simulate --chain ethereum` and DATA_DIR a data dir
# where SIM_DIR/etl was ingested (`cointrail --data-dir DATA_DIR ingest --chain ethereum
# SIM_DIR/etl`). The simulated exchanges (hot, deposit, cold addresses) and the heist's
# addresses are attributed from the truth into DATA_DIR/attribution.tsv (once), so the
# screening walks meet labelled counterparties. Needs wrk (`apt-get install wrk`) and a
# release build (COINTRAIL_BIN=PATH runs another binary: builds compared in one go).
set -euo pipefail
DATA=${1:?data dir}; SIM=${2:?simulator output}; SECS=${3:-60}; CONN=${4:-4}
BIN=${COINTRAIL_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/cointrail}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$(dirname "$0")/.." && cargo build --release -p cointrail)
W=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$W"' EXIT
if ! grep -q "^# simulated ethereum" "$DATA/attribution.tsv" 2>/dev/null; then
  {
    echo "# simulated ethereum (from $SIM/truth/addresses.tsv)"
    awk -F'\t' 'NR > 1 && $2 ~ /^exchange-/ { print $1 "\texchange\t" $2 }
                NR > 1 && $2 == "thief" { print $1 "\tstolen_funds\tsim-eth-heist" }' "$SIM/truth/addresses.tsv"
  } >>"$DATA/attribution.tsv"
fi
seeded() { openssl enc -aes-256-ctr -pass pass:cointrail -nosalt </dev/zero 2>/dev/null; }
# Users' addresses (what a screening customer asks about), not the services themselves.
awk -F'\t' 'NR > 1 && $3 == "user" { print $1 }' "$SIM/truth/addresses.tsv" | shuf -n 20000 --random-source=<(seeded) >"$W/addrs"
KEY=$("$BIN" --data-dir "$DATA" keys create "bench-$$" --rate 100000000 2>/dev/null)
"$BIN" --data-dir "$DATA" serve --bind 127.0.0.1:0 --addr-file "$W/addr" 2>"$W/log" &
PID=$!
for _ in $(seq 1 600); do [ -s "$W/addr" ] && break; sleep 0.2; done
URL="http://$(cat "$W/addr")"
# Addresses the index never saw would be 404s: dropped first so the run is error-free.
python3 - "$URL" "$KEY" "$W" <<'PY'
import sys, urllib.request, urllib.error
url, key, w = sys.argv[1:4]
ok = []
for a in (l.strip() for l in open(f"{w}/addrs")):
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/v1/ethereum/screen/address/{a}", headers={"X-API-Key": key}), timeout=60)
        ok.append(a)
    except urllib.error.HTTPError:
        pass
open(f"{w}/addrs", "w").write("\n".join(ok) + "\n")
print(f"{len(ok)} addresses to ask for")
PY
cat >"$W/addrs.lua" <<LUA
local xs = {}
for l in io.lines("$W/addrs") do xs[#xs + 1] = l end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/ethereum/screen/address/" .. xs[(i % #xs) + 1], { ["X-API-Key"] = "$KEY" })
end
LUA
wrk -t1 -c"$CONN" -d5s -s "$W/addrs.lua" "$URL" >/dev/null   # warm-up
( while kill -0 $PID 2>/dev/null; do echo "$(date +%s) $(ps -o rss= -p $PID)"; sleep 10; done ) >"$W/rss" &
RSSPID=$!
echo "== ethereum address screening, $SECS s, $CONN connections"
wrk -t1 -c"$CONN" -d"${SECS}s" --latency -s "$W/addrs.lua" "$URL" | grep -E "Requests/sec|Latency Distribution|%|Non-2xx|Socket errors|requests in"
kill $RSSPID
echo "server RSS (KiB) every 10 s: $(awk '{print $2}' "$W/rss" | tr '\n' ' ')"
"$BIN" --data-dir "$DATA" keys revoke "bench-$$" >/dev/null
