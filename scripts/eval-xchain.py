#!/usr/bin/env python3
"""Trace accuracy on the simulated two-chain heist (issue 16), per laundering stage.

Runs `cointrail trace CASE --json` (FIFO by default: the case is the Ethereum drain, the
trace crosses to Bitcoin at the router and the bridge) and compares it with the
simulator's truth:

- Ethereum (OUT/ethereum/truth/heist_hops.tsv): the thief's payments to services by stage:
  `dex` (tokens paid into the DEX pool: the trace's conversions at those swaps, tainted
  input), `router` (THORChain-style router deposits), `bridge`, `mixer` (Tornado-style
  pool notes) and `exchange` (deposit addresses; ETH and the stablecoin apart): recall =
  tainted amount the trace stops at (or converts at) that very transaction and address /
  the true amount; precision = of everything the trace stops at services in that asset,
  the share on a true payment.
- The crossings (OUT/truth/crossings.tsv): of the Bitcoin the router and the bridge
  released for the thief's deposits, the share the trace carried across as taint.
- Bitcoin (OUT/bitcoin/truth/thief_payments.tsv): the thief's payments to services after
  the crossing (exchange, OTC, mixer…, and `router`: deposits into the vault to swap back
  to Ethereum): recall = tainted sats the trace finds at those outputs / their value;
  precision = of the tainted sats at that kind of service's addresses (the truth's owner
  of each address), the share on the thief's true payments of that stage.
- The way back (OUT/truth/way_back.tsv): `router back to Ethereum` = tainted wei the trace
  carried across on the true outbounds / the wei they paid (precision: the share of all
  wei carried back that is on a true outbound); `ethereum (after bitcoin) exchange` = tainted
  wei the Ethereum leg after Bitcoin stops at the thief's exchange deposits / their value.

    scripts/eval-xchain.py SIM_DIR DATA_DIR [CASE] [MODEL]

DATA_DIR must hold both chains ingested, OUT/truth/attribution.tsv and bridges.yaml
copied in, and the case (`case create CASE --from-tx DRAIN_TX`). COINTRAIL_BIN names the
binary (default ./target/release/cointrail). Prints a Markdown table; `--json` last
argument prints the figures as JSON instead. COINTRAIL_TRACE_ARGS adds options to the trace
(e.g. "--entity-aware --soft-hops" for the Bitcoin leg); recall counts proven taint only,
and soft taint at the same outputs is reported apart (`soft recall`)."""
import json, os, subprocess, sys
from collections import defaultdict

args = [a for a in sys.argv[1:] if a != "--json"]
as_json = "--json" in sys.argv[1:]
sim, data = args[0], args[1]
case = args[2] if len(args) > 2 else "bybit"
model = args[3] if len(args) > 3 else "fifo"
cli = os.environ.get("COINTRAIL_BIN", "./target/release/cointrail")

out = subprocess.run(
    [cli, "--data-dir", data, "--json", "trace", case, "--model", model]
    + os.environ.get("COINTRAIL_TRACE_ARGS", "").split(),
    capture_output=True, text=True)
if out.returncode != 0:
    sys.exit(f"trace failed: {out.stderr}")
r = json.loads(out.stdout)

def asset_of(row):
    return "ETH" if row.get("token") is None else row["token"].lower()

# Token contract → symbol from the truth (the sim's tokens are not in the shipped registry).
STAGE = {"deposit": "exchange", "router-deposit": "router", "bridge-deposit": "bridge",
         "mixer-deposit": "mixer", "dex-swap-in": "dex"}
truth = defaultdict(lambda: defaultdict(int))   # (stage, asset_sym) -> (tx, to) -> amount
syms = set()
for line in open(f"{sim}/ethereum/truth/heist_hops.tsv").read().splitlines()[1:]:
    _hop, _block, tx, kind, _frm, to, asset, amount = line.split("\t")
    st = STAGE.get(kind)
    if st is None:
        continue
    truth[(st, asset)][(tx.lower(), to.lower())] += int(amount)
    syms.add(asset)

# The trace names tokens by contract: map each to the truth's symbol through the swaps and
# deposits it stops at (the drain moves every asset, so each appears).
tok_sym = {}
for line in open(f"{sim}/ethereum/truth/heist_hops.tsv").read().splitlines()[1:]:
    f = line.split("\t")
    if f[3] == "drain":
        tok_sym.setdefault(f[6], set()).add((f[2].lower(), int(f[7])))
src_rows = {}
for t in r.get("totals", []):
    a = asset_of(t)
    src_rows[a] = int(t["source"])
sym_of = {"ETH": "ETH"}
for sym, rows in tok_sym.items():
    for a, v in src_rows.items():
        if any(v == amt for _tx, amt in rows):
            sym_of[a] = sym

rows = []
# Stops (exchange, router/bridge = category bridge, mixer) by (tx, address, asset).
stops = defaultdict(int)
stopped_total = defaultdict(int)
for s in r.get("stops", []):
    sym = sym_of.get(asset_of(s), asset_of(s))
    stops[(sym, (s.get("tx") or "").lower(), s["address"].lower())] += int(s["amount"])
    stopped_total[sym] += int(s["amount"])
conv = defaultdict(int)
for c in r.get("conversions", []):
    sym = sym_of.get(asset_of(c["asset_in"]), asset_of(c["asset_in"]))
    conv[(sym, (c.get("tx") or "").lower())] += int(c["tainted_in"])

on_truth = defaultdict(int)
for (st, sym), pay in sorted(truth.items()):
    total = sum(pay.values())
    if st == "dex":
        by_tx = defaultdict(int)
        for (tx, _to), v in pay.items():
            by_tx[tx] += v
        found = sum(min(conv.get((sym, tx), 0), v) for tx, v in by_tx.items())
        prec = None
    else:
        found = sum(min(stops.get((sym, tx, to), 0), v) for (tx, to), v in pay.items())
        on_truth[sym] += sum(stops.get((sym, tx, to), 0) for (tx, to) in pay)
    rows.append({"chain": "ethereum", "stage": st, "asset": sym, "payments": len(pay),
                 "truth": total, "found": found, "recall": found / total if total else None})
for row in rows:
    if row["stage"] != "dex":
        t = stopped_total.get(row["asset"], 0)
        row["precision"] = on_truth[row["asset"]] / t if t else None

# Crossings: Bitcoin released for the thief's deposits, carried as taint.
cross = {}
for line in open(f"{sim}/truth/crossings.tsv").read().splitlines()[1:]:
    f = line.split("\t")
    cross[f[1].lower()] = (f[0], int(f[7]))
carried = defaultdict(int)
joined_wrong = 0
for h in r.get("crossings", {}).get("hops", []):
    c = cross.get(h["deposit_tx"].lower())
    if c is None:
        joined_wrong += h["tainted_sats"]
        continue
    carried[c[0]] += h["tainted_sats"]
for kind in sorted({k for k, _ in cross.values()}):
    total = sum(s for k, s in cross.values() if k == kind)
    n = sum(1 for k, _ in cross.values() if k == kind)
    rows.append({"chain": "ethereum>bitcoin", "stage": f"{kind} release", "asset": "BTC",
                 "payments": n, "truth": total, "found": carried[kind],
                 "recall": carried[kind] / total if total else None,
                 "precision": None if not carried[kind] else
                 carried[kind] / (carried[kind] + joined_wrong)})

# Bitcoin: the thief's payments to services after the crossing.
btc = r.get("bitcoin") or {}
at_services = {f"{o['txid']}:{o['vout']}": o["tainted_sats"] for o in btc.get("outputs", [])
               if (o.get("stop_reason") or "").startswith("service:")}
soft_at = {f"{o['txid']}:{o['vout']}": o.get("soft_sats", 0) for o in btc.get("outputs", [])
           if (o.get("stop_reason") or "").startswith("service:")}
paid = defaultdict(dict)
p = f"{sim}/bitcoin/truth/thief_payments.tsv"
if os.path.exists(p):
    for line in open(p).read().splitlines()[1:]:
        _h, outpoint, value, _addr, _place, kind, _height = line.split("\t")
        paid[kind][outpoint] = int(value)
# Precision per stage: of the tainted sats the trace stops at the addresses of that kind
# of service (the truth's owner of the address: exchange, otc, mixer, coinjoin_coordinator;
# `router` for the addresses the thief's vault deposits paid), the share on a true payment
# of that stage. `precision (all)` in the JSON pools every Bitcoin service.
kind_of_entity = {}
addr_stage = {}
if os.path.exists(f"{sim}/bitcoin/truth/entities.tsv"):
    for line in open(f"{sim}/bitcoin/truth/entities.tsv").read().splitlines()[1:]:
        f = line.split("\t")
        kind_of_entity[f[0]] = f[1]
    for line in open(f"{sim}/bitcoin/truth/addresses.tsv").read().splitlines()[1:]:
        f = line.split("\t")
        addr_stage[f[0]] = kind_of_entity.get(f[1], "?")
router_addrs = set()
if os.path.exists(p):
    for line in open(p).read().splitlines()[1:]:
        f = line.split("\t")
        if f[5] == "router":
            router_addrs.add(f[3])
stage_stopped = defaultdict(int)
for o in btc.get("outputs", []):
    op = f"{o['txid']}:{o['vout']}"
    if op not in at_services:
        continue
    a = o.get("address") or ""
    st = "router" if a in router_addrs else addr_stage.get(a, "?")
    stage_stopped[st] += at_services[op]
all_paid = {op for d in paid.values() for op in d}
total_found = sum(at_services.values())
real = sum(t for op, t in at_services.items() if op in all_paid)
for kind, pay in sorted(paid.items()):
    total = sum(pay.values())
    found = sum(min(at_services.get(op, 0), v) for op, v in pay.items())
    soft = sum(min(at_services.get(op, 0) + soft_at.get(op, 0), v) for op, v in pay.items())
    on = sum(at_services.get(op, 0) for op in pay)
    rows.append({"chain": "bitcoin", "stage": kind, "asset": "BTC", "payments": len(pay),
                 "truth": total, "found": found, "recall": found / total if total else None,
                 "recall_with_soft": soft / total if total else None,
                 "precision": on / stage_stopped[kind] if stage_stopped.get(kind) else None,
                 "precision_all": real / total_found if total_found else None})

# The way back (OUT/truth/way_back.tsv): Bitcoin deposited into the router's vault with a
# swap memo to Ethereum, the router's outbound there, and the destination's ETH into an
# exchange deposit address. Recall of the crossing = tainted wei the trace carried across on
# the true outbounds / the wei they paid; of the exchange stage after it = tainted wei the
# Ethereum leg after Bitcoin stops at those deposits / their value.
wb_path = f"{sim}/truth/way_back.tsv"
if os.path.exists(wb_path):
    wb = [l.split("\t") for l in open(wb_path).read().splitlines()[1:]]
    back = r.get("to_ethereum") or {}
    by_dep = {f[0].lower(): f for f in wb}
    carried = 0
    carried_wrong = 0
    for h in back.get("hops", []):
        f = by_dep.get(h["deposit_tx"].lower())
        if f is not None and f[4].lower() == h["release_tx"].lower():
            carried += min(int(h["tainted"]), int(f[6]))
        else:
            carried_wrong += int(h["tainted"])
    total = sum(int(f[6]) for f in wb)
    rows.append({"chain": "bitcoin>ethereum", "stage": "router back to Ethereum", "asset": "ETH",
                 "payments": len(wb), "truth": total, "found": carried,
                 "recall": carried / total if total else None,
                 "precision": None if not (carried + carried_wrong) else
                 carried / (carried + carried_wrong)})
    leg = back.get("trace") or {}
    stops2 = defaultdict(int)
    stopped2 = 0
    for st in leg.get("stops", []):
        if st.get("token") is not None:
            continue
        stops2[((st.get("tx") or "").lower(), st["address"].lower())] += int(st["amount"])
        stopped2 += int(st["amount"])
    pay = {(f[7].lower(), f[8].lower()): int(f[9]) for f in wb if f[7]}
    total = sum(pay.values())
    found = sum(min(stops2.get(k, 0), v) for k, v in pay.items())
    on = sum(stops2.get(k, 0) for k in pay)
    rows.append({"chain": "ethereum (after bitcoin)", "stage": "exchange", "asset": "ETH",
                 "payments": len(pay), "truth": total, "found": found,
                 "recall": found / total if total else None,
                 "precision": on / stopped2 if stopped2 else None})

def all_recall(chain_pred):
    sel = [x for x in rows if chain_pred(x) and x["stage"] != "dex"]
    return sel

if as_json:
    print(json.dumps({"case": case, "model": model, "rows": rows}, indent=1))
    sys.exit(0)
fmt = lambda x: "-" if x is None else f"{x:.3f}"
print(f"case {case}, model {model}: recall by value per laundering stage (truth: heist_hops.tsv, crossings.tsv, thief_payments.tsv)")
print("| chain | stage | asset | payments | true amount | found | recall | recall with soft hops | precision |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|")
for x in rows:
    print(f"| {x['chain']} | {x['stage']} | {x['asset']} | {x['payments']} | {x['truth']} | {x['found']} | {fmt(x['recall'])} | {fmt(x.get('recall_with_soft'))} | {fmt(x.get('precision'))} |")
