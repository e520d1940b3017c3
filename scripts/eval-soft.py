#!/usr/bin/env python3
"""Entity-aware tracing and soft hops against a simulated chain's ground truth (issue 19).

For one heist, per trace variant (coin-level FIFO; entity-aware; soft hops; both):
- recall by value of the thief's real payments to services (truth/thief_payments.tsv) that
  the trace finds at those very outputs: hard taint only, and hard + soft;
- precision (value) of what the trace puts at services, hard and soft apart;
- precision of the soft hops: share of the sats they carried that landed on outputs the
  truth gives the thief (truth/thief_outputs.tsv);
- per stage (the kind of the paying transaction, truth/tx_kinds.tsv): recall with and
  without soft hops;
- the thief's entity the case found (`thief_entity`): share of the truth's thief addresses
  it covers, and how many of its addresses belong to someone else (truth/addresses.tsv).

    scripts/eval-soft.py SIM_DIR DATA_DIR [HEIST_ID]
DATA_DIR: the chain ingested, `case import-sim`, `sim-attribution`, and a clustering
(`cluster build`) for the entity. COINTRAIL_BIN names the binary (default
./target/release/cointrail); VARIANTS restricts the variants (comma-separated names)."""
import json, os, subprocess, sys
from collections import defaultdict

sim, data = sys.argv[1], sys.argv[2]
heist = sys.argv[3] if len(sys.argv) > 3 else "0"
cli = os.environ.get("COINTRAIL_BIN", "./target/release/cointrail")

def tsv(name):
    lines = open(f"{sim}/truth/{name}").read().splitlines()
    return [l.split("\t") for l in lines[1:]]

pay = {}
for h, op, value, _addr, _place, kind, _height in tsv("thief_payments.tsv"):
    if h == heist:
        pay[op] = (int(value), kind)
thief_out = {r[1] for r in tsv("thief_outputs.tsv") if r[0] == heist}
summary = json.load(open(f"{sim}/truth/summary.json"))
hs = [x for x in summary["heists"] if str(x["id"]) == heist][0]
thief_ent = str(hs["thief_entity"])
owner = {}
if os.path.exists(f"{sim}/truth/addresses.tsv"):
    for a, e in tsv("addresses.tsv"):
        owner[a] = e
truth_addrs = {a for a, e in owner.items() if e == thief_ent}
kinds = {}
want = {op.split(":")[0] for op in pay}
COINJOIN_KINDS = {"whirlpool_mix", "joinmarket", "joinmarket_sweep", "wasabi", "wasabi2"}
cj_txs = set()
for txid, kind, _h in tsv("tx_kinds.tsv"):
    if txid in want:
        kinds[txid] = kind
    if kind in COINJOIN_KINDS:
        cj_txs.add(txid)
stage = {op: kinds.get(op.split(":")[0], "other") for op in pay}
total = sum(v for v, _ in pay.values())
print(f"heist {heist}: {hs['stolen_sats']/1e8:.2f} BTC stolen; truth: {total/1e8:.2f} BTC in {len(pay)} payments to services; {len(truth_addrs)} thief addresses")

variants = [
    ("fifo", []),
    ("fifo entity-aware", ["--entity-aware"]),
    ("fifo + soft hops", ["--soft-hops"]),
    ("fifo entity-aware + soft hops", ["--entity-aware", "--soft-hops"]),
    ("fifo entity-aware + soft hops + coinjoin links", ["--entity-aware", "--soft-hops", "--coinjoin-links"]),
]
only = os.environ.get("VARIANTS")
if only:
    variants = [v for v in variants if v[0] in only.split(",")]
print("| variant | recall hard | recall hard+soft | precision hard | precision soft | soft-hop precision | soft hops | entity coverage | entity foreign addresses |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
per_stage = {}
missed_note = None


def cli_json(*args):
    return json.loads(subprocess.run([cli, "--data-dir", data, "--json", *args],
                                     capture_output=True, text=True, check=True).stdout)


def remixed_only(addr):
    """Whether every coin the address received was spent in a CoinJoin (a post-mix coin
    remixed): no spend outside a CoinJoin ties it to anything. Also whether one of them
    went into its remix beside another owner's coin from the same CoinJoin (the same two
    rounds: the chain cannot tell which of the two is the thief's)."""
    outs = cli_json("address", addr).get("outputs", [])
    only = bool(outs) and all((o.get("spent_by") or {}).get("txid") in cj_txs for o in outs)
    twin = False
    for o in outs if only else []:
        for i in cli_json("tx", o["spent_by"]["txid"])["inputs"]:
            if i.get("prev_txid") == o["txid"] and i.get("prev_vout") != o["vout"] \
                    and owner.get(i.get("address")) not in (None, thief_ent):
                twin = True
    return only, twin


for name, flags in variants:
    out = subprocess.run([cli, "--data-dir", data, "trace", f"sim-heist-{heist}", "--json", *flags],
                         capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    hard, soft = defaultdict(int), defaultdict(int)
    for o in r["outputs"]:
        if (o["stop_reason"] or "").startswith("service:"):
            op = f"{o['txid']}:{o['vout']}"
            hard[op] += o["tainted_sats"]
            soft[op] += o.get("soft_sats", 0)
    found_h = sum(min(hard.get(op, 0), v) for op, (v, _) in pay.items())
    found_hs = sum(min(hard.get(op, 0) + soft.get(op, 0), v) for op, (v, _) in pay.items())
    th, ts = sum(hard.values()), sum(soft.values())
    real_h = sum(t for op, t in hard.items() if op in pay)
    real_s = sum(t for op, t in soft.items() if op in pay)
    landed = [(op, s) for h in r.get("soft_hops", []) for op, s in h["landed"]]
    land_tot = sum(s for _, s in landed)
    land_ok = sum(s for op, s in landed if op in thief_out)
    ent = {m["address"] for m in r.get("thief_entity", [])}
    cov = len(ent & truth_addrs) / len(truth_addrs) if truth_addrs and ent else 0.0
    foreign = sum(1 for a in ent if a in owner and owner[a] != thief_ent)
    f = lambda x: f"{x:.3f}"
    if name == "fifo entity-aware + soft hops" and ent and truth_addrs:
        missed = sorted(truth_addrs - ent)
        judged = [remixed_only(a) for a in missed]
        remixed = sum(1 for only, _ in judged if only)
        twins = sum(1 for only, twin in judged if only and twin)
        rest = len(truth_addrs) - remixed
        missed_note = (f"{name}: {len(missed)} of {len(truth_addrs)} thief addresses not in the entity; "
                       f"{remixed} of them only ever received post-mix coins that were remixed in another "
                       f"CoinJoin (no spend outside a CoinJoin links them), {twins} of these beside another "
                       f"owner's coin from the same CoinJoin (both in the same two rounds: either could be "
                       f"the thief's); coverage of the other {rest}: {len(ent & truth_addrs) / rest:.3f}")
    print(f"| {name} | {f(found_h/total)} | {f(found_hs/total)} | {f(real_h/th) if th else '-'} | {f(real_s/ts) if ts else '-'} | {f(land_ok/land_tot) if land_tot else '-'} | {len(r.get('soft_hops', []))} | {f(cov) if ent else '-'} | {foreign if ent else '-'} |")
    st = defaultdict(lambda: [0, 0, 0])
    for op, (v, _) in pay.items():
        s = st[stage[op]]
        s[0] += v
        s[1] += min(hard.get(op, 0), v)
        s[2] += min(hard.get(op, 0) + soft.get(op, 0), v)
    per_stage[name] = st
if missed_note:
    print("\n" + missed_note)
print("\nPer stage (kind of the paying transaction): recall hard / hard+soft")
stages = sorted({k for st in per_stage.values() for k in st}, key=lambda k: -per_stage[variants[0][0]][k][0])
print("| stage | truth BTC | " + " | ".join(n for n, _ in variants) + " |")
print("|---|---:|" + "---:|" * len(variants))
for k in stages:
    t = per_stage[variants[0][0]][k][0]
    cells = [f"{per_stage[n][k][1]/t:.3f} / {per_stage[n][k][2]/t:.3f}" for n, _ in variants]
    print(f"| {k} | {t/1e8:.2f} | " + " | ".join(cells) + " |")
