//! The trace report's dormant loot (tainted unspent outputs by age and address type) and
//! peel chains with their deposits at services, over the demo's simulated heist.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

mod support;
use support::*;

#[test]
fn trace_report_groups_dormant_loot_and_lists_peel_deposits() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    let r = json(&dir, &["trace", "sim-heist-0"]);
    assert_eq!(r["outputs_truncated"], false);
    let loot = &r["dormant_loot"];

    // The loot is exactly the trace's unspent taint, and its buckets add up to it.
    let unspent: Vec<&Value> = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["spent"] == false
                && o["stop_reason"].is_null()
                && o["tainted_sats"].as_u64().unwrap() > 0
        })
        .collect();
    assert!(!unspent.is_empty(), "the demo's thief holds coins");
    let total: u64 = unspent
        .iter()
        .map(|o| o["tainted_sats"].as_u64().unwrap())
        .sum();
    assert_eq!(loot["tainted_sats"].as_u64().unwrap(), total);
    assert_eq!(loot["tainted_sats"], r["totals"]["unspent_sats"]);
    assert_eq!(loot["outputs"].as_u64().unwrap(), unspent.len() as u64);
    let buckets = loot["buckets"].as_array().unwrap();
    let sum: u64 = buckets
        .iter()
        .map(|b| b["tainted_sats"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total);
    let ages = [
        "under 1 day",
        "1 to 7 days",
        "7 to 30 days",
        "30 days to 1 year",
        "over 1 year",
    ];
    for b in buckets {
        assert!(ages.contains(&b["age"].as_str().unwrap()), "{b}");
    }

    // Address types: per type, the loot's totals match the outputs' own script types.
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for o in &unspent {
        let tx = json(&dir, &["tx", o["txid"].as_str().unwrap()]);
        let out = &tx["outputs"][o["vout"].as_u64().unwrap() as usize];
        *by_type
            .entry(out["script_type"].as_str().unwrap().to_string())
            .or_default() += o["tainted_sats"].as_u64().unwrap();
    }
    let mut loot_types: BTreeMap<String, u64> = BTreeMap::new();
    for b in buckets {
        *loot_types
            .entry(b["script_type"].as_str().unwrap().to_string())
            .or_default() += b["tainted_sats"].as_u64().unwrap();
    }
    assert_eq!(loot_types, by_type);

    // Peel chains: each is listed with the deposits its transactions made at services.
    let chains = r["peel_chains"].as_array().unwrap();
    assert!(!chains.is_empty(), "the demo launders through peel chains");
    let h = cli(&dir, &["trace", "sim-heist-0"]);
    assert!(h.contains("dormant loot: "), "{h}");
    assert!(h.contains(&format!("peel chains: {}", chains.len())), "{h}");
    let mut exchange_deposits = 0;
    for c in chains {
        let txs: HashSet<&str> = c["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["txid"].as_str().unwrap())
            .collect();
        let deps: Vec<&Value> = r["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| {
                txs.contains(o["txid"].as_str().unwrap())
                    && o["tainted_sats"].as_u64().unwrap() > 0
                    && o["stop_reason"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("service:"))
            })
            .collect();
        exchange_deposits += deps
            .iter()
            .filter(|o| o["stop_reason"] == "service:exchange")
            .count();
        let line = format!(
            "from {}: {} steps, ",
            c["first_txid"].as_str().unwrap(),
            c["length"]
        );
        let at = h
            .find(&line)
            .unwrap_or_else(|| panic!("{line} missing: {h}"));
        assert!(
            h[at..]
                .lines()
                .next()
                .unwrap()
                .contains(&format!("{} deposits at services", deps.len())),
            "{h}"
        );
    }
    assert!(exchange_deposits > 0, "no peel reached an exchange: {r}");
    assert!(h.contains("[exchange]"), "{h}");
}

/// Entity-aware: the thief's entity's unspent outputs hold what is left of its balance, so
/// the dormant loot is filled (it was empty when only outputs outside the entity counted),
/// never more than the trace's unspent taint, each output at most its value; the human
/// report and the markdown report show it.
#[test]
fn entity_aware_dormant_loot_is_the_entitys_unspent_holdings() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    let r = json(&dir, &["trace", "sim-heist-0", "--entity-aware"]);
    let loot = &r["dormant_loot"];
    let unspent = r["totals"]["unspent_sats"].as_u64().unwrap();
    let held = loot["tainted_sats"].as_u64().unwrap();
    assert!(held > 0, "the entity-aware loot is empty: {loot}");
    assert!(held <= unspent, "{held} > {unspent}");
    let rows = r["outputs"].as_array().unwrap();
    let mut by_rows = 0;
    for o in rows {
        let h = o["held_sats"].as_u64().unwrap();
        if h > 0 {
            assert_eq!(o["stop_reason"], "thief_entity", "{o}");
            assert_eq!(o["spent"], false, "{o}");
            assert!(h <= o["value"].as_u64().unwrap(), "{o}");
        }
        let free = o["stop_reason"].is_null() && o["spent"] == false;
        by_rows += h + if free {
            o["tainted_sats"].as_u64().unwrap()
        } else {
            0
        };
    }
    assert_eq!(by_rows, held);
    let h = cli(&dir, &["trace", "sim-heist-0", "--entity-aware"]);
    assert!(h.contains("dormant loot: "), "{h}");
    let md = d.path().join("r.md");
    cli(
        &dir,
        &[
            "trace",
            "sim-heist-0",
            "--entity-aware",
            "--report",
            md.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("the thief's entity (balance)"), "{text}");
}

/// `screen --soft`: a deposit at a service that soft hops reached shows soft exposure to
/// the case on a line and in a JSON field of its own; the proven exposure, the verdict and
/// the fired rules are those of the screening without `--soft`.
#[test]
fn screening_reports_soft_exposure_apart_from_proven() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    let r = json(&dir, &["trace", "sim-heist-0", "--soft-hops"]);
    let row = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["soft_sats"].as_u64().unwrap() > 0
                && o["tainted_sats"] == 0
                && o["stop_reason"] == "service:exchange"
        })
        .expect("a soft-only deposit at an exchange on the demo")
        .clone();
    let op = format!("{}:{}", row["txid"].as_str().unwrap(), row["vout"]);
    let plain = json(&dir, &["screen", &op]);
    let soft = json(&dir, &["screen", &op, "--soft"]);
    for k in ["risk", "fired_rules", "exposure", "received", "sent"] {
        assert_eq!(plain[k], soft[k], "{k} changed with --soft");
    }
    assert!(plain.get("soft_exposure").is_none());
    let se = soft["soft_exposure"].as_array().unwrap();
    assert_eq!(se.len(), 1, "{se:?}");
    assert_eq!(se[0]["case"], "sim-heist-0");
    assert_eq!(se[0]["output"], op.as_str());
    assert_eq!(se[0]["soft_sats"], row["soft_sats"]);
    let h = cli(&dir, &["screen", &op, "--soft"]);
    assert!(
        h.contains("soft exposure (not proven, not in the verdict): "),
        "{h}"
    );
    assert!(h.contains("of case sim-heist-0 at"), "{h}");
    let (ok, _, err) = try_cli(&dir, &["screen", &op, "--soft", "--direction", "out"]);
    assert!(!ok && err.contains("--soft"), "{err}");
}
