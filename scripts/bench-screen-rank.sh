#!/usr/bin/env bash
# Which screenings are slow (issue 18): N subjects screened one by one through the API (one
# kept-alive connection, after 200 warm-up requests), each request's wall time, ranked.
#
#   scripts/bench-screen-rank.sh BIN DATA_DIR SUBJECT_FILE [N] [address|transaction] [TOP] [SERVE_OPTION...]
#
# Prints the distributions (p50/p90/p99/p99.9/max) of the client's wall time per request and
# of the server's own figures from the `server-timing` header (the screening's wall and CPU
# time on its thread, and its page faults), the share of all the server CPU the costliest 1%
# and 10% take, and the TOP subjects by server CPU with what their answers say about their
# size: the address's outputs, each direction's `beyond_limit_sats`, the response's bytes.
# Each request is made twice (a second pass right after the first): a first pass far above
# the second is a cold read (major faults), not work.
# Example (subjects as bench-serve.sh samples them):
#   tail -n +2 SIM/truth/addresses.tsv | cut -f1 | shuf -n 3000 \
#     --random-source=<(openssl enc -aes-256-ctr -pass pass:cointrail -nosalt </dev/zero 2>/dev/null) >addrs
#   scripts/bench-screen-rank.sh target/release/cointrail DATA addrs 2000 address 20
set -euo pipefail
B=${1:?cointrail binary}; D=${2:?data dir}; F=${3:?subject file}; N=${4:-2000}; K=${5:-address}; TOP=${6:-20}
shift $(( $# < 6 ? $# : 6 ))
KEY=$($B --data-dir $D keys create rank-$$ --rate 100000000 2>/dev/null)
$B --data-dir $D serve --bind 127.0.0.1:0 --addr-file /tmp/ct-rank-addr-$$ "$@" 2>/dev/null & SP=$!
trap 'kill $SP 2>/dev/null; $B --data-dir $D keys revoke rank-$$ >/dev/null 2>&1; rm -f /tmp/ct-rank-addr-$$' EXIT
for i in $(seq 300); do [ -s /tmp/ct-rank-addr-$$ ] && break; sleep 0.2; done
python3 - $(cat /tmp/ct-rank-addr-$$) $KEY $N "$F" "$K" "$TOP" <<'PY'
import sys, time, http.client, json
addr,key,n,f,kind,top=sys.argv[1:7]; n=int(n); top=int(top)
host,port=addr.rsplit(":",1)
xs=[l.strip() for l in open(f) if l.strip()][:n]
c=http.client.HTTPConnection(host,int(port))
import re
def timing(h):
    g=lambda k: float(re.search(k+r";dur=([0-9.]+)",h).group(1)) if h and k+";dur=" in h else float("nan")
    m=re.search(r"minor (\d+) major (\d+)",h or "")
    return g("screen"), g("cpu"), (int(m.group(1)),int(m.group(2))) if m else (-1,-1)
def get(a):
    t0=time.perf_counter()
    c.request("GET",f"/v1/screen/{kind}/{a}",headers={"X-API-Key":key})
    r=c.getresponse(); body=r.read(); dt=time.perf_counter()-t0
    return dt, r.status, body, timing(r.getheader("server-timing"))
for a in xs[:200]: get(a)
rows=[]
for a in xs:
    t1,st,body,w1=get(a); t2,_,_,w2=get(a)
    info=("-","-","-")
    if st==200:
        j=json.loads(body)
        info=(j["subject"].get("outputs","-"), j["received"]["beyond_limit_sats"], j["sent"]["beyond_limit_sats"])
    rows.append(dict(t1=1000*t1,t2=1000*t2,a=a,st=st,n=len(body),info=info,w1=w1,w2=w2))
m=len(rows)
def dist(name,vals):
    v=sorted(x for x in vals if x==x); m=len(v)
    if not v:
        return
    tot=sum(v) or 1; q=lambda p: v[min(m-1,int(m*p))]
    print(f"{name}: mean {tot/m:.3f} p50 {q(.5):.3f} p90 {q(.9):.3f} p99 {q(.99):.3f} p99.9 {q(.999):.3f} "
          f"max {v[-1]:.2f} ms; top 1% = {100*sum(v[-max(1,m//100):])/tot:.1f}%, top 10% = {100*sum(v[-max(1,m//10):])/tot:.1f}% of the sum")
print(f"{m} {kind} screens ({sum(r['st']==200 for r in rows)} answered 200), ms per request:")
dist("client wall, first pass ", [r["t1"] for r in rows])
dist("client wall, second pass", [r["t2"] for r in rows])
dist("server wall, first pass ", [r["w1"][0] for r in rows])
dist("server CPU, first pass  ", [r["w1"][1] for r in rows])
dist("server CPU, second pass ", [r["w2"][1] for r in rows])
mj=sum(r["w1"][2][1] for r in rows); mn=sum(r["w1"][2][0] for r in rows)
print(f"page faults, first pass: minor {mn} ({mn/m:.1f} per request), major {mj}; second pass: minor "
      f"{sum(r['w2'][2][0] for r in rows)}, major {sum(r['w2'][2][1] for r in rows)}")
print("cpu_ms_1\tcpu_ms_2\tsrv_wall_1\tclient_1\tclient_2\tminflt\tmajflt\tstatus\tbytes\toutputs\trecv_beyond\tsent_beyond\tsubject")
for r in sorted(rows,key=lambda r: -max(r["w1"][1],r["w2"][1]))[:top]:
    print(f"{r['w1'][1]:.3f}\t{r['w2'][1]:.3f}\t{r['w1'][0]:.3f}\t{r['t1']:.2f}\t{r['t2']:.2f}\t{r['w1'][2][0]}\t{r['w1'][2][1]}\t{r['st']}\t{r['n']}\t"
          + "\t".join(str(x) for x in r["info"]) + f"\t{r['a']}")
PY
