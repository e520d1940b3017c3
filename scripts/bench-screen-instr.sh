#!/usr/bin/env bash
# Instructions per address screen of `cointrail serve`, counted by callgrind: unlike time,
# the count does not move with what else the machine runs, so builds can be compared on a
# shared box (memory stalls are not in it: confirm a gain with wrk, bench-serve-eth.sh).
#
#   scripts/bench-screen-instr.sh BIN DATA_DIR SUBJECT_FILE [N] [ethereum|bitcoin] [ENV=VALUE...]
#
# 50 warm-up requests, then callgrind is switched on (`callgrind_control -i on`) for the
# next N (default 300) subjects of SUBJECT_FILE (one address a line). Needs valgrind.
set -euo pipefail
U="usage: scripts/bench-screen-instr.sh BIN DATA_DIR SUBJECT_FILE [N] [ethereum|bitcoin]"
B=${1:?$U}; D=${2:?$U}; F=${3:?$U}; N=${4:-300}; CHAIN=${5:-ethereum}
shift $(( $# < 5 ? $# : 5 ))
command -v callgrind_control >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
ROUTE=/v1/ethereum/screen/address; [ "$CHAIN" = bitcoin ] && ROUTE=/v1/screen/address
W=$(mktemp -d); trap 'kill $VP 2>/dev/null; rm -rf "$W"' EXIT
KEY=$($B --data-dir "$D" keys create instr-$$ --rate 100000000 2>/dev/null)
env "$@" valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" --instr-atstart=no \
  "$B" --data-dir "$D" serve --bind 127.0.0.1:0 --addr-file "$W/addr" 2>"$W/log" &
VP=$!
for _ in $(seq 600); do [ -s "$W/addr" ] && break; sleep 0.5; done
python3 - "$(cat "$W/addr")" "$KEY" "$N" "$F" "$ROUTE" "$VP" <<'PY'
import sys, http.client, subprocess
addr, key, n, f, route, vp = sys.argv[1:7]; n = int(n)
host, port = addr.rsplit(":", 1)
xs = [l.strip() for l in open(f) if l.strip()]
c = http.client.HTTPConnection(host, int(port), timeout=600)
def get(a):
    c.request("GET", f"{route}/{a}", headers={"X-API-Key": key}); c.getresponse().read()
for a in xs[:50]: get(a)
subprocess.run(["callgrind_control", "-i", "on", vp], capture_output=True, check=True)
for a in xs[50:50 + n]: get(a)
subprocess.run(["callgrind_control", "-d", vp], capture_output=True, check=True)
PY
kill $VP; wait $VP 2>/dev/null || true
TOT=$(cat "$W"/cg.out* | awk '/^totals:/ {s += $2} END {print s}')
echo "$TOT instructions over $N screens: $((TOT / N)) per screen"
"$B" --data-dir "$D" keys revoke instr-$$ >/dev/null 2>&1 || true
