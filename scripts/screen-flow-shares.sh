#!/usr/bin/env bash
# What Ethereum screening answers say, on average (issue 15): N addresses of SUBJECT_FILE
# screened through the API (`GET /v1/screen/address/{a}QUERY`), and for every flow (one
# direction of one asset) the share of its total that went to each part: labelled rows
# (direct + indirect), unattributed, outside_index, new_coins, fee, held, beyond_limit,
# below_min_share, beyond_branch_reads. Also checks that every flow's parts add up to its
# total (conservation).
#
#   scripts/screen-flow-shares.sh BIN DATA_DIR SUBJECT_FILE N ['?max_branch_reads=8']
set -euo pipefail
B=${1:?cointrail binary}; D=${2:?data dir}; F=${3:?subject file}; N=${4:-300}; Q=${5:-}
KEY=$($B --data-dir $D keys create st-$$ --rate 100000000 2>/dev/null)
$B --data-dir $D serve --bind 127.0.0.1:0 --addr-file /tmp/ct-st-addr-$$ 2>/dev/null & SP=$!
for i in $(seq 50); do [ -s /tmp/ct-st-addr-$$ ] && break; sleep 0.2; done
python3 - $(cat /tmp/ct-st-addr-$$) $KEY $N "$F" "$Q" <<'PY'
import sys, json, http.client
addr,key,n,f,q=sys.argv[1:6]; n=int(n)
host,port=addr.rsplit(":",1)
c=http.client.HTTPConnection(host,int(port))
xs=[l.strip() for l in open(f) if l.strip()][:n]
keys=["unattributed","outside_index","new_coins","fee","held","beyond_limit","below_min_share","beyond_branch_reads"]
acc={k:0.0 for k in keys+["rows"]}; nz={k:0 for k in keys}; flows=0; bad=0
for a in xs:
    c.request("GET",f"/v1/screen/address/{a}{q}",headers={"X-API-Key":key}); r=c.getresponse(); s=json.loads(r.read())
    for d in ("received","sent"):
        for fl in s[d]:
            tot=int(fl["total"])
            if tot==0: continue
            flows+=1
            rows=sum(int(x["amount"]) for x in s["exposure"] if x["direction"]==d and x["asset"]==fl["asset"] and x["type"]!="ownership")
            parts=sum(int(fl.get(k,"0")) for k in keys)
            if rows+parts!=tot: bad+=1
            acc["rows"]+=rows/tot
            for k in keys:
                v=int(fl.get(k,"0")); acc[k]+=v/tot; nz[k]+= v>0
print(f"{len(xs)} screens, {flows} flows, conservation broken in {bad}; mean share of a flow: "+", ".join(f"{k} {100*acc[k]/flows:.1f}%" for k in ["rows"]+keys))
print("flows with the part non-zero: "+", ".join(f"{k} {nz[k]}" for k in keys))
PY
kill $SP; $B --data-dir $D keys revoke st-$$ >/dev/null 2>&1; rm -f /tmp/ct-st-addr-$$
