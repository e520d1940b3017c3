#!/usr/bin/env python3
"""Trace accuracy against a simulated chain's ground truth (issue 6).

For one simulated heist, per taint model: of the thief's real payments to exchanges, the
OTC broker and the mixer (truth/thief_payments.tsv), the share by value the trace finds at
those very outputs (recall), and of what the trace attributes to services, the share that
sits on real thief payments (precision); the dormant amount found against the truth.

    scripts/eval-trace.py SIM_DIR DATA_DIR [HEIST_ID]
DATA_DIR must hold the ingested chain, the sim cases (`case import-sim`) and attribution
(`sim-attribution`). COINTRAIL_BIN names another binary (default ./target/release/cointrail)."""
import json, subprocess, sys

sim, data = sys.argv[1], sys.argv[2]
heist = sys.argv[3] if len(sys.argv) > 3 else "0"
import os
cli = os.environ.get("COINTRAIL_BIN", "./target/release/cointrail")
truth = {}
for line in open(f"{sim}/truth/thief_payments.tsv").read().splitlines()[1:]:
    h, outpoint, value, _addr, _place, kind, _height = line.split("\t")
    if h == heist:
        truth[outpoint] = (int(value), kind)
summary = json.load(open(f"{sim}/truth/summary.json"))
hs = [x for x in summary["heists"] if str(x["id"]) == heist][0]
print(f"heist {heist}: {hs['stolen_sats']/1e8:.2f} BTC stolen; truth: {sum(v for v,_ in truth.values())/1e8:.2f} BTC in {len(truth)} payments to services, {hs['held_dormant_sats']/1e8:.2f} BTC dormant at the end")
print("| model | recall (value) | precision (value) | found at services BTC | unspent BTC (truth dormant + other held) | mixer/CoinJoin BTC |")
print("|---|---:|---:|---:|---:|---:|")
import os
for model in os.environ.get("MODELS", "fifo,lifo,tiho,tifo,haircut,poison").split(","):
    r = json.loads(subprocess.run([cli, "--data-dir", data, "trace", f"sim-heist-{heist}", "--model", model, "--json"], capture_output=True, text=True, check=True).stdout)
    at_services = {f"{o['txid']}:{o['vout']}": o["tainted_sats"] for o in r["outputs"] if (o["stop_reason"] or "").startswith("service:")}
    found = sum(min(at_services.get(op, 0), v) for op, (v, _) in truth.items())
    total_truth = sum(v for v, _ in truth.values())
    total_found = sum(at_services.values())
    real = sum(t for op, t in at_services.items() if op in truth)
    t = r["totals"]
    print(f"| {model} | {found/total_truth:.3f} | {(real/total_found if total_found else 0):.3f} | {total_found/1e8:.2f} | {t['unspent_sats']/1e8:.2f} ({(hs['held_dormant_sats']+hs['held_other_sats'])/1e8:.2f}) | {t['mixer_sats']/1e8:.2f} |")
