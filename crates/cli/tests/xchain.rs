//! One heist across two chains, end to end: `simulate --chains bitcoin,ethereum` →
//! ingest both → attribution and bridge rules → `case create` on the Ethereum drain →
//! `trace`, checked against the simulator's crossings.

mod support;

use std::collections::HashMap;
use support::{cli, json};

#[test]
fn a_heist_is_followed_from_ethereum_into_bitcoin() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("x");
    let d = dir.path().join("data");
    let s = json(
        &d,
        &[
            "simulate", "--chains", "bitcoin,ethereum", "--out", sim.to_str().unwrap(),
            "--txs", "8000", "--eth-txs", "3000", "--heist-eth", "2000", "--heist-fanout", "60",
        ],
    );
    let p = |x: &str| sim.join(x).display().to_string();
    cli(&d, &["ingest", "--blocks-dir", &p("bitcoin/blocks")]);
    cli(&d, &["ingest", "--chain", "ethereum", &p("ethereum/etl")]);
    for f in ["attribution.tsv", "bridges.yaml"] {
        std::fs::copy(sim.join("truth").join(f), d.join(f)).unwrap();
    }
    let drain = s["ethereum"]["heist"]["drain_tx"].as_str().unwrap();
    cli(&d, &["case", "create", "bybit", "--from-tx", drain]);
    let html = dir.path().join("r.html");
    let csv = dir.path().join("r.csv");
    let v = json(&d, &["trace", "bybit", "--report", html.to_str().unwrap()]);
    cli(&d, &["trace", "bybit", "--report", csv.to_str().unwrap()]);

    // The truth: inbound hash → (kind, destination, sats).
    let truth = std::fs::read_to_string(sim.join("truth/crossings.tsv")).unwrap();
    let crossings: HashMap<String, (String, String, u64)> = truth
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].to_string(), (f[0].to_string(), f[6].to_string(), f[7].parse().unwrap()))
        })
        .collect();
    assert_eq!(v["chain"], "ethereum+bitcoin");
    assert_eq!(v["conserved"], true);
    let hops = v["crossings"]["hops"].as_array().unwrap();
    assert!(hops.len() >= 10, "{} hops", hops.len());
    let mut tainted = 0u64;
    let mut by = HashMap::new();
    for h in hops {
        let (kind, dest, sats) = &crossings[h["deposit_tx"].as_str().unwrap()];
        // Every hop joins a real crossing to its own release.
        assert_eq!(h["payouts"][0]["address"].as_str().unwrap(), dest, "{h}");
        assert_eq!(h["released_sats"].as_u64().unwrap(), *sats);
        match (kind.as_str(), h["matched"].as_str().unwrap()) {
            ("router", "thorchain_out") => assert_eq!(h["confidence_ppm"], 1_000_000),
            ("bridge", "amount_time" | "bridge_id") => {}
            o => panic!("{o:?} joined wrongly: {h}"),
        }
        let t = h["tainted_sats"].as_u64().unwrap();
        assert!(t <= *sats);
        tainted += t;
        *by.entry(h["via"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert!(by["thorchain"] >= 10, "{by:?}");
    // The Bitcoin leg starts from exactly the converted taint and adds up.
    let b = &v["per_chain_totals"]["bitcoin"];
    assert_eq!(b["source_sats"].as_u64().unwrap(), tainted);
    let sum: u64 = ["unspent_sats", "fee_sats", "stopped_sats", "mixer_sats", "limit_sats"]
        .iter()
        .map(|k| b[*k].as_u64().unwrap())
        .sum();
    assert_eq!(sum, tainted);
    assert!(b["stopped_sats"].as_u64().unwrap() > tainted / 4);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Cross-chain hops") && page.contains("thorchain_out"));
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().filter(|l| l.starts_with("hop,")).count(), hops.len());
    assert!(rows.lines().any(|l| l.starts_with("total,bitcoin,")));
}
