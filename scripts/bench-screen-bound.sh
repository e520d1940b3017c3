#!/usr/bin/env bash
# What the screening walk's work bound (`serve --max-edges`) costs in answers and saves in
# CPU (issue 18): for each bound, the server CPU per screen (scripts/bench-screen-cpu.sh)
# and, against the same subjects screened without a bound, how many answers it changed
# (some sats reported as beyond the limit instead of followed) and how many risk levels.
#
#   scripts/bench-screen-bound.sh BIN DATA_DIR SUBJECT_FILE address|transaction N BOUND...
#
# e.g. scripts/bench-screen-bound.sh target/release/cointrail W/data addrs address 2000 1000 4000 20000
set -euo pipefail
B=${1:?binary}; D=${2:?data dir}; F=${3:?subject file}; K=${4:?address|transaction}; N=${5:?subjects}
shift 5
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
head -n "$N" "$F" >"$T/subjects"
KEY=$($B --data-dir "$D" keys create "bound-$$" --rate 100000000 2>/dev/null)
dump() {  # dump OUT [SERVE_OPTION...]: every subject's answer, parameters and provenance left out
  local out=$1; shift
  rm -f "$T/addr"
  $B --data-dir "$D" serve --bind 127.0.0.1:0 --addr-file "$T/addr" "$@" 2>/dev/null & local sp=$!
  for _ in $(seq 150); do [ -s "$T/addr" ] && break; sleep 0.2; done
  python3 - "http://$(cat "$T/addr")" "$KEY" "$T/subjects" "$out" <<'PY'
import json, sys, urllib.request
url, key, f, out = sys.argv[1:5]
xs = [l.strip() for l in open(f) if l.strip()]
with open(out, "w") as o:
    for i in range(0, len(xs), 200):
        r = urllib.request.Request(url + "/v1/screen/batch", json.dumps({"subjects": xs[i:i+200]}).encode(),
                                   {"X-API-Key": key, "Content-Type": "application/json"})
        for it in json.load(urllib.request.urlopen(r, timeout=900))["results"]:
            s = it.get("screening")
            if s:
                s.pop("parameters", None); s.pop("provenance", None)
            o.write(json.dumps({"subject": it["subject"], "screening": s}, sort_keys=True) + "\n")
PY
  kill $sp; wait $sp 2>/dev/null || true
}
dump "$T/unbounded" --max-edges 1000000000000
echo "without a bound: $("$ROOT/scripts/bench-screen-cpu.sh" "$B" "$D" "$T/subjects" "$N" "$K" --max-edges 1000000000000)"
for e in "$@"; do
  dump "$T/b$e" --max-edges "$e"
  python3 - "$T/unbounded" "$T/b$e" "$e" <<'PY'
import json, sys
u = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
n = cut = levels = 0; beyond = total = 0
for x, y in zip(u, b):
    sx, sy = x["screening"], y["screening"]
    if not sx: continue
    n += 1; cut += sx != sy; levels += sx["risk"] != sy["risk"]
    total += sx["received"]["total_sats"] + sx["sent"]["total_sats"]
    beyond += (sy["received"]["beyond_limit_sats"] + sy["sent"]["beyond_limit_sats"]
               - sx["received"]["beyond_limit_sats"] - sx["sent"]["beyond_limit_sats"])
print(f"--max-edges {sys.argv[3]}: {n} subjects, {cut} answers changed ({100*cut/max(n,1):.1f}%), "
      f"{levels} risk levels changed, {100*beyond/max(total,1):.2f}% of their sats cut")
PY
  echo "  $("$ROOT/scripts/bench-screen-cpu.sh" "$B" "$D" "$T/subjects" "$N" "$K" --max-edges "$e")"
done
$B --data-dir "$D" keys revoke "bound-$$" >/dev/null 2>&1 || true
