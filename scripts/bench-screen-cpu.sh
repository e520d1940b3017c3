#!/usr/bin/env bash
# Server CPU per address screen (issue 18): N sequential requests after 200 warm-up ones,
# the server's utime+stime from /proc before and after. Unlike requests/s under wrk, this
# does not move with the machine's load, so builds can be compared on a shared machine.
#
#   scripts/bench-screen-cpu.sh BIN DATA_DIR SUBJECT_FILE [N] [address|transaction] [SERVE_OPTION...]
#
# SERVE_OPTIONs go to `cointrail serve` (e.g. `--max-edges 1000000` for the walk without
# its work bound).
# SUBJECT_FILE: one address (or txid) a line (e.g. `tail -n +2 SIM/truth/addresses.tsv |
# cut -f1 | shuf -n 3000 --random-source=<(yes)`; txids from SIM/truth/tx_kinds.tsv).
# Also prints the mean, p50, p99 and max of the requests' wall times (sequential, one
# connection kept alive; these do move with the machine's load).
set -euo pipefail
B=${1:?cointrail binary}; D=${2:?data dir}; F=${3:?subject file}; N=${4:-1500}; K=${5:-address}
shift $(( $# < 5 ? $# : 5 ))
KEY=$($B --data-dir $D keys create cpu-$$ --rate 100000000 2>/dev/null)
$B --data-dir $D serve --bind 127.0.0.1:0 --addr-file /tmp/ct-cpu-addr-$$ "$@" 2>/dev/null & SP=$!
for i in $(seq 50); do [ -s /tmp/ct-cpu-addr-$$ ] && break; sleep 0.2; done
python3 - $(cat /tmp/ct-cpu-addr-$$) $KEY $SP $N "$F" "$K" <<'PY'
import sys, time, http.client, os
addr,key,pid,n,f,kind=sys.argv[1:7]; n=int(n)
host,port=addr.rsplit(":",1)
xs=[l.strip() for l in open(f) if l.strip()][:n]
c=http.client.HTTPConnection(host,int(port))
def get(a):
    c.request("GET",f"/v1/screen/{kind}/{a}",headers={"X-API-Key":key})
    r=c.getresponse(); r.read(); return r.status==200
def cpu():
    f=open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()
    return (int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK")
for a in xs[:200]: get(a)
c0=cpu(); ok=0; ts=[]
for a in xs:
    t0=time.perf_counter(); ok+=get(a); ts.append(time.perf_counter()-t0)
ts.sort(); m=len(ts)
print(f"server CPU per {kind} screen: {1000*(cpu()-c0)/m:.3f} ms over {m} ({ok} answered 200); "
      f"wall mean {1000*sum(ts)/m:.3f} ms, p50 {1000*ts[m//2]:.3f}, p99 {1000*ts[int(m*.99)]:.3f}, max {1000*ts[-1]:.2f} ms")
PY
kill $SP; $B --data-dir $D keys revoke cpu-$$ >/dev/null 2>&1; rm -f /tmp/ct-cpu-addr-$$
