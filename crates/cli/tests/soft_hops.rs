//! Issue 19 end to end: chains simulated from scenario files (KuCoin-style structured
//! mixer deposits; post-mix coins swept and cashed out), ingested with their cases,
//! attribution and clustering, traced with entity-aware tracing and soft hops, and checked
//! against the simulator's truth.

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
    assert!(hops.iter().any(|h| h["rule"] == "remix-flow"));
    for h in hops {
        let rule = h["rule"].as_str().unwrap();
        assert!(
            [
                "mixer-structured",
                "coinjoin-change",
                "postmix-cashout",
                "postmix-sweep",
                "remix-flow"
            ]
            .contains(&rule),
            "{h}"
        );
        if rule == "remix-flow" {
            // It names a remixed post-mix coin as the thief's and carries nothing.
            let f = h["facts"][0].as_str().unwrap();
            let op = f
                .strip_prefix("post-mix output ")
                .and_then(|x| x.split(' ').next())
                .unwrap();
            assert_eq!(thief.get(op).map(String::as_str), Some("postmix"), "{h}");
            assert_eq!(h["soft_sats"], 0, "{h}");
        }
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

/// Issue 19, the coinjoin-consolidate playbook end to end: the thief sweeps its post-mix
/// coins (Whirlpool post-mix, JoinMarket equal outputs) three at a time into a fresh address
/// and cashes each sweep out at once. `postmix-sweep` must carry the taint onto what those
/// sweeps made (≥ 95% of its value; 0 before the rule), land only on the thief's coins, and
/// put the sweeps' addresses in the thief's entity with no address of another owner.
#[test]
fn a_thief_sweeping_its_post_mix_coins_is_followed_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let sim = d.path().join("sim");
    let dir = d.path().join("data");
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/coinjoin-consolidate.yaml"
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
    assert_eq!(r["totals"]["source_sats"], plain["totals"]["source_sats"]);

    let rows = tsv(&sim.join("truth/thief_outputs.tsv"));
    let thief: HashMap<String, (String, String)> = rows
        .iter()
        .filter(|r| r[0] == "0")
        .map(|r| (r[1].clone(), (r[4].clone(), r[3].clone())))
        .collect();
    // What the sweeps made (role `consolidated`), and the taint the trace put there.
    let swept: HashMap<&str, u64> = rows
        .iter()
        .filter(|r| r[0] == "0" && r[4] == "consolidated")
        .map(|r| (r[1].as_str(), r[2].parse().unwrap()))
        .collect();
    assert!(swept.len() >= 50, "{} sweeps", swept.len());
    let mut reached = 0u64;
    for o in r["outputs"].as_array().unwrap() {
        let op = format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]);
        if let Some(&v) = swept.get(op.as_str()) {
            let t = o["tainted_sats"].as_u64().unwrap() + o["soft_sats"].as_u64().unwrap();
            reached += t.min(v);
        }
    }
    let total: u64 = swept.values().sum();
    assert!(
        reached as f64 >= 0.95 * total as f64,
        "the sweeps' coins carry {reached} of {total} sats"
    );

    let hops = r["soft_hops"].as_array().unwrap();
    let sweeps: Vec<&Value> = hops
        .iter()
        .filter(|h| h["rule"] == "postmix-sweep")
        .collect();
    assert!(sweeps.len() >= 50, "{} postmix-sweep hops", sweeps.len());
    for h in &sweeps {
        assert!(h["score"].as_f64().unwrap() >= 0.8, "{h}");
        let facts = h["facts"].to_string();
        assert!(facts.contains("swept together in"), "{h}");
        assert!(facts.contains("what the sweep made was cashed out"), "{h}");
        for l in h["landed"].as_array().unwrap() {
            let role = thief.get(l[0].as_str().unwrap()).map(|x| x.0.as_str());
            assert!(
                matches!(role, Some("postmix") | Some("jm_equal")),
                "{h}: lands on {role:?}"
            );
        }
    }

    // The sweeps' addresses are in the thief's entity, and nobody else's address is.
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
    for a in &ent {
        assert_eq!(owner.get(*a), Some(&te), "{a}");
    }
    let swept_addrs: HashSet<&str> = swept.keys().map(|op| thief[*op].1.as_str()).collect();
    let in_ent = swept_addrs.iter().filter(|a| ent.contains(*a)).count();
    assert!(
        in_ent as f64 >= 0.95 * swept_addrs.len() as f64,
        "{in_ent} of {} sweep addresses in the entity",
        swept_addrs.len()
    );
}
