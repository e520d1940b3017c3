#!/usr/bin/env bash
# Server CPU per address screen (issue 18): N sequential requests after 200 warm-up ones,
# the server's utime+stime from /proc before and after. Unlike requests/s under wrk, this
# does not move with the machine's load, so builds can be compared on a shared machine.
#
#   scripts/bench-screen-cpu.sh BIN DATA_DIR ADDRESS_FILE [N]
#
# ADDRESS_FILE: one address a line (e.g. `tail -n +2 SIM/truth/addresses.tsv | cut -f1 |
# shuf -n 3000 --random-source=<(yes)`).
set -euo pipefail
B=${1:?cointrail binary}; D=${2:?data dir}; F=${3:?address file}; N=${4:-1500}
KEY=$($B --data-dir $D keys create cpu-$$ --rate 100000000 2>/dev/null)
$B --data-dir $D serve --bind 127.0.0.1:0 --addr-file /tmp/ct-cpu-addr-$$ 2>/dev/null & SP=$!
for i in $(seq 50); do [ -s /tmp/ct-cpu-addr-$$ ] && break; sleep 0.2; done
python3 - http://$(cat /tmp/ct-cpu-addr-$$) $KEY $SP $N "$F" <<'PY'
import sys, time, urllib.request, os
url,key,pid,n,f=sys.argv[1:6]; n=int(n)
xs=[l.strip() for l in open(f) if l.strip()][:n]
def cpu():
    f=open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()
    return (int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK")
for a in xs[:200]:
    try: urllib.request.urlopen(urllib.request.Request(url+"/v1/screen/address/"+a,headers={"X-API-Key":key})).read()
    except Exception: pass
c0=cpu(); ok=0
for a in xs:
    try:
        urllib.request.urlopen(urllib.request.Request(url+"/v1/screen/address/"+a,headers={"X-API-Key":key})).read(); ok+=1
    except Exception: pass
print(f"server CPU per address screen: {1000*(cpu()-c0)/ok:.3f} ms over {ok}")
PY
kill $SP; $B --data-dir $D keys revoke cpu-$$ >/dev/null 2>&1; rm -f /tmp/ct-cpu-addr-$$
