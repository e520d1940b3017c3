//! The trace report's view of what the thief still holds (dormant loot, by age and address
//! type: what a `traced-spend` alert watches) and of each peel chain with the deposits its
//! peels made at services.

use cointrail_chain::view::ChainView;
use cointrail_index::Index;
use cointrail_trace::TraceResult;
use serde::Serialize;
use std::collections::BTreeMap;

/// Age buckets, youngest first: (upper bound in seconds, name).
const AGES: &[(u64, &str)] = &[
    (86_400, "under 1 day"),
    (7 * 86_400, "1 to 7 days"),
    (30 * 86_400, "7 to 30 days"),
    (365 * 86_400, "30 days to 1 year"),
    (u64::MAX, "over 1 year"),
];

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct LootBucket {
    /// How long the output has sat unspent, at the index's tip (block times).
    pub age: &'static str,
    pub script_type: &'static str,
    pub outputs: u64,
    pub tainted_sats: u64,
}

#[derive(Serialize, Debug)]
pub struct DormantLoot {
    pub outputs: u64,
    pub tainted_sats: u64,
    pub buckets: Vec<LootBucket>,
}

fn time_at(idx: &Index, height: u32) -> u64 {
    idx.block(height.saturating_sub(idx.start_height()) as u64)
        .time as u64
}

/// Tainted outputs still unspent and not at a service, grouped by age and address type.
/// Only the rows the trace kept are counted (`outputs_truncated` says when rows were cut).
pub fn dormant_loot(r: &TraceResult, idx: &Index) -> DormantLoot {
    let tip = idx.tip_height().map_or(0, |h| time_at(idx, h));
    let mut groups: BTreeMap<(usize, &'static str), (u64, u64)> = BTreeMap::new();
    // Entity-aware: the thief's entity's unspent outputs hold what is left of its balance
    // (`held_sats`); otherwise the tainted outputs that rest unspent.
    let held = |o: &cointrail_trace::engine::Row| match o.stop_reason.as_deref() {
        None => o.tainted_sats,
        Some("thief_entity") => o.held_sats,
        _ => 0,
    };
    for o in r.outputs.iter().filter(|o| !o.spent && held(o) > 0) {
        let age = tip.saturating_sub(time_at(idx, o.height));
        let bucket = AGES.iter().position(|(max, _)| age < *max).unwrap_or(0);
        let g = groups
            .entry((bucket, idx.output_script_type(o.out).name()))
            .or_default();
        g.0 += 1;
        g.1 += held(o);
    }
    let buckets: Vec<LootBucket> = groups
        .into_iter()
        .map(|((b, st), (n, sats))| LootBucket {
            age: AGES[b].1,
            script_type: st,
            outputs: n,
            tainted_sats: sats,
        })
        .collect();
    DormantLoot {
        outputs: buckets.iter().map(|b| b.outputs).sum(),
        tainted_sats: buckets.iter().map(|b| b.tainted_sats).sum(),
        buckets,
    }
}

/// Deposits at services made by the transactions of each peel chain: (name, category,
/// tainted sats), in the order of the trace's outputs. One pass over the outputs for all
/// chains (once per chain, it grew as chains × outputs: a fifth of `trace`'s time on the
/// 3M chain).
pub fn peel_deposits(r: &TraceResult) -> Vec<Vec<(String, String, u64)>> {
    let mut chains_of: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, c) in r.peel_chains.iter().enumerate() {
        for s in &c.steps {
            let v = chains_of.entry(s.txid.as_str()).or_default();
            if v.last() != Some(&i) {
                v.push(i);
            }
        }
    }
    let mut out = vec![Vec::new(); r.peel_chains.len()];
    for o in r.outputs.iter().filter(|o| o.tainted_sats > 0) {
        let Some(chains) = chains_of.get(o.txid.as_str()) else {
            continue;
        };
        let Some(cat) = o
            .stop_reason
            .as_deref()
            .and_then(|s| s.strip_prefix("service:"))
        else {
            continue;
        };
        let name = o
            .labels
            .last()
            .cloned()
            .or_else(|| o.address.clone())
            .unwrap_or_default();
        for &i in chains {
            out[i].push((name.clone(), cat.to_string(), o.tainted_sats));
        }
    }
    out
}

/// The two sections as a person reads them.
pub fn human(r: &TraceResult, loot: &DormantLoot) -> String {
    use crate::human::btc;
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "dormant loot: {} in {} tainted unspent outputs{}",
        btc(loot.tainted_sats),
        loot.outputs,
        if r.outputs_truncated {
            " (of the rows kept; raise --max-rows for all)"
        } else {
            ""
        }
    );
    for b in &loot.buckets {
        let _ = writeln!(
            o,
            "  {:<18} {:<8} {:>5} outputs  {:>22}",
            b.age,
            b.script_type,
            b.outputs,
            btc(b.tainted_sats)
        );
    }
    let _ = writeln!(o, "peel chains: {}", r.peel_chains.len());
    let mut all_deps = peel_deposits(r);
    for (i, c) in r.peel_chains.iter().enumerate() {
        let deps = std::mem::take(&mut all_deps[i]);
        let _ = writeln!(
            o,
            "  from {}: {} steps, {} peeled, {} deposits at services{}",
            c.first_txid,
            c.length,
            btc(c.peeled_sats),
            deps.len(),
            if deps.is_empty() { "" } else { ":" }
        );
        for (name, cat, sats) in deps {
            let _ = writeln!(o, "    {} → {name} [{cat}]", btc(sats));
        }
    }
    o
}
