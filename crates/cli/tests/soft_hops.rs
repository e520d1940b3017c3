//! Issue 19 end to end: a chain simulated from a scenario file (KuCoin-style structured
//! mixer deposits), ingested with its cases, attribution and clustering, traced with
//! entity-aware tracing and soft hops, and checked against the simulator's truth.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

mod support;
use support::*;

fn tsv(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

#[test]
fn a_scenario_chain_traced_with_soft_hops_agrees_with_the_truth() {
    let d = tempfile::tempdir().unwrap();
    let sim = d.path().join("sim");
    let dir = d.path().join("data");
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/kucoin-structured.yaml"
    );
    let s = sim.to_str().unwrap();
    cli(
        &dir,
        &[
            "simulate",
            "--out",
            s,
            "--txs",
            "30000",
            "--users",
            "2000",
            "--txs-per-block",
            "100",
            "--seed",
            "7",
            "--scenario",
            scenario,
        ],
    );
    cli(&dir, &["ingest", "--blocks-dir", &format!("{s}/blocks")]);
    cli(&dir, &["case", "import-sim", &format!("{s}/truth")]);
    cli(&dir, &["sim-attribution", &format!("{s}/truth")]);
    cli(&dir, &["cluster", "build"]);
    let plain = json(&dir, &["trace", "sim-heist-0"]);
    let r = json(
        &dir,
        &["trace", "sim-heist-0", "--entity-aware", "--soft-hops"],
    );
    assert_eq!(r["parameters"]["entity_aware"], true);

    // Soft taint is kept apart: the hard totals are the coin-level trace's where the
    // entity does not change them (services reached can only grow), and each side adds up.
    for t in [&r["totals"], &r["soft_totals"]] {
        let g = |k: &str| t[k].as_u64().unwrap();
        assert_eq!(
            g("source_sats"),
            g("unspent_sats")
                + g("fee_sats")
                + g("stopped_sats")
                + g("mixer_sats")
                + g("limit_sats")
        );
    }
    assert_eq!(r["totals"]["source_sats"], plain["totals"]["source_sats"]);
    assert!(r["totals"]["stopped_sats"].as_u64() >= plain["totals"]["stopped_sats"].as_u64());

    // The structured deposits are matched, and every soft hop lands on the thief's outputs.
    let thief: HashMap<String, String> = tsv(&sim.join("truth/thief_outputs.tsv"))
        .into_iter()
        .filter(|r| r[0] == "0")
        .map(|r| (r[1].clone(), r[4].clone()))
        .collect();
    let hops = r["soft_hops"].as_array().unwrap();
    assert!(!hops.is_empty(), "{}", r["demix"]);
    assert!(hops.iter().any(|h| h["rule"] == "mixer-structured"));
    for h in hops {
        let rule = h["rule"].as_str().unwrap();
        assert!(
            [
                "mixer-structured",
                "coinjoin-change",
                "postmix-cashout",
                "postmix-sweep"
            ]
            .contains(&rule),
            "{h}"
        );
        assert!(h["score"].as_f64().unwrap() >= 0.8);
        assert!(!h["facts"].as_array().unwrap().is_empty());
        for l in h["landed"].as_array().unwrap() {
            let op = l[0].as_str().unwrap();
            let role = thief.get(op).map(String::as_str);
            match rule {
                "mixer-structured" => assert_eq!(role, Some("mixer_payout"), "{h}"),
                // Each landed output is the thief's, whatever its role.
                _ => assert!(role.is_some(), "{h}"),
            }
        }
    }
    let soft_at_services: u64 = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["stop_reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("service:"))
        })
        .map(|o| o["soft_sats"].as_u64().unwrap())
        .sum();
    assert!(soft_at_services > 0);

    // The thief's entity holds no address of another owner.
    let owner: HashMap<String, String> = tsv(&sim.join("truth/addresses.tsv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(sim.join("truth/summary.json")).unwrap())
            .unwrap();
    let te = summary["heists"][0]["thief_entity"].to_string();
    let ent: HashSet<&str> = r["thief_entity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["address"].as_str().unwrap())
        .collect();
    assert!(ent.len() > 100);
    for a in &ent {
        assert_eq!(owner.get(*a), Some(&te), "{a}");
    }
}
