#!/usr/bin/env bash
# Do two builds answer the same? Serves DATA_DIR with each binary and compares their JSON
# answers for every address of SUBJECT_FILE (provenance dropped: it names the build's run).
#
#   scripts/compare-screens.sh BIN_A BIN_B DATA_DIR SUBJECT_FILE [ethereum|bitcoin]
set -euo pipefail
U="usage: scripts/compare-screens.sh BIN_A BIN_B DATA_DIR SUBJECT_FILE [ethereum|bitcoin]"
A=${1:?$U}; B=${2:?$U}; D=${3:?$U}; F=${4:?$U}; CHAIN=${5:-ethereum}
ROUTE=/v1/ethereum/screen/address; [ "$CHAIN" = bitcoin ] && ROUTE=/v1/screen/address
W=$(mktemp -d); trap 'kill $P1 $P2 2>/dev/null; rm -rf "$W"' EXIT
KEY=$($A --data-dir "$D" keys create same-$$ --rate 100000000 2>/dev/null)
"$A" --data-dir "$D" serve --bind 127.0.0.1:0 --addr-file "$W/1" 2>/dev/null & P1=$!
"$B" --data-dir "$D" serve --bind 127.0.0.1:0 --addr-file "$W/2" 2>/dev/null & P2=$!
for _ in $(seq 300); do [ -s "$W/1" ] && [ -s "$W/2" ] && break; sleep 0.5; done
python3 - "$(cat "$W/1")" "$(cat "$W/2")" "$KEY" "$F" "$ROUTE" <<'PY'
import sys, json, urllib.request, urllib.error
a1, a2, key, f, route = sys.argv[1:6]
xs = [l.strip() for l in open(f) if l.strip()]
def get(h, a):
    try:
        d = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://{h}{route}/{a}", headers={"X-API-Key": key}), timeout=120).read())
        d.pop("provenance", None)
        return d
    except urllib.error.HTTPError as e:
        return e.code
bad = [a for a in xs if get(a1, a) != get(a2, a)]
for a in bad[:5]:
    print("differs:", a)
print(f"{len(xs) - len(bad)} of {len(xs)} answers identical")
sys.exit(1 if bad else 0)
PY
"$A" --data-dir "$D" keys revoke same-$$ >/dev/null 2>&1 || true
