//! Cases across chains (issue 16): an Ethereum trace that reaches a crossing (a THORChain
//! router or vault, a bridge: addresses attributed to category `bridge`) continues on
//! Bitcoin in the same case. Deposits are the trace's stops at those addresses; releases
//! are Bitcoin transactions whose OP_RETURN carries `OUT:`/`REFUND:` or a bridge rule's id
//! prefix; `cointrail_account::xchain` joins them and converts the taint at the crossing's
//! own rate (exact largest remainder), which becomes partial-amount sources of the Bitcoin
//! tracer under the same case label.

use std::collections::{BTreeMap, HashMap, HashSet};

use cointrail_account::ledger::Ledger;
use cointrail_account::runs::Label;
use cointrail_account::tracer::AccountTrace;
use cointrail_account::xchain::{
    convert_taint, join_bridge, join_thorchain, memo_and_id_from_logs, norm_hash,
    op_return_text, spread_over_payouts, BridgeRules, Deposit, Matched, Payout, Release,
    SkippedHop,
};
use cointrail_chain::view::{display_txid, ChainView, OutNum};
use cointrail_evm::movement::Asset;
use cointrail_evm::U256;
use cointrail_index::evm::EvmIndex;
use cointrail_index::Index;
use cointrail_trace::Source;
use serde::Serialize;

use crate::account::EvmLedger;

/// Category of the addresses where a trace crosses chains.
pub const BRIDGE_CATEGORY: &str = "bridge";

/// One payout of a joined release, with the taint it carries on.
#[derive(Debug, Clone, Serialize)]
pub struct HopPayout {
    pub address: String,
    pub vout: u32,
    pub sats: u64,
    pub tainted_sats: u64,
}

/// One cross-chain hop, and how it was matched.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub from_chain: String,
    pub to_chain: String,
    /// `thorchain` or the bridge rule's name.
    pub via: String,
    pub matched: Matched,
    pub confidence_ppm: u32,
    pub deposit_tx: String,
    pub deposit_block: u64,
    pub deposit_to: String,
    pub deposit_wei: String,
    pub tainted_wei: String,
    pub release_tx: String,
    pub release_height: u32,
    pub released_sats: u64,
    pub tainted_sats: u64,
    pub payouts: Vec<HopPayout>,
}

#[derive(Debug, Default, Serialize)]
pub struct Crossed {
    pub hops: Vec<Hop>,
    pub skipped: Vec<SkippedHop>,
    /// Tainted deposits into crossings no release was found for (still counted as stopped
    /// on Ethereum).
    pub unjoined_wei: String,
    #[serde(skip)]
    pub sources: Vec<Source>,
}

struct Dep {
    d: Deposit,
    block: u64,
    tainted: Vec<(Label, U256)>,
}

/// Join the Ethereum trace's stops at crossings to Bitcoin releases; `label_base` is added
/// to account labels to make the Bitcoin tracer's (1-based) labels.
pub fn cross_to_bitcoin(
    evm: &EvmIndex,
    btc: &Index,
    trace: &AccountTrace,
    crossing_stop: &dyn Fn(&str) -> bool,
    rules: &BridgeRules,
    label_base: u32,
) -> Crossed {
    let ledger = EvmLedger(evm);
    // Tainted ETH stopped at crossings, per deposit transaction.
    let mut by_tx: BTreeMap<(String, String), (u64, Vec<(Label, U256)>)> = BTreeMap::new();
    for s in &trace.stops {
        if s.asset != Asset::Native || !crossing_stop(&s.category) {
            continue;
        }
        let Some(tx) = s.tx else { continue };
        let e = by_tx
            .entry((format!("{tx:x}"), format!("{:#x}", s.address)))
            .or_insert((s.block, Vec::new()));
        match e.1.iter_mut().find(|x| x.0 == s.label) {
            Some(x) => x.1 += s.amount,
            None => e.1.push((s.label, s.amount)),
        }
    }
    let mut deps: Vec<Dep> = Vec::new();
    for ((tx, to), (block, tainted)) in by_tx {
        let h: cointrail_evm::B256 = match format!("0x{}", norm_hash(&tx)).parse() {
            Ok(h) => h,
            Err(_) => continue,
        };
        let Some(n) = ledger.tx_by_hash(&h) else { continue };
        let addr: cointrail_evm::Address = to.parse().unwrap_or_default();
        let moves = ledger.tx_movements(n);
        // The block's time through the movement (a block summary would decode the block).
        let time = moves.first().map(|m| evm.movement_time(m.id)).unwrap_or(0);
        let amount = moves
            .iter()
            .filter(|m| m.asset == Asset::Native && m.to == addr && !m.is_gas())
            .fold(U256::ZERO, |a, m| a + m.amount);
        let (memo, id) = memo_and_id_from_logs(&ledger.tx_logs(n));
        deps.push(Dep {
            d: Deposit {
                chain: "ethereum".into(),
                tx: norm_hash(&tx),
                time,
                from: String::new(),
                to,
                asset: "ETH".into(),
                amount,
                memo,
                id,
            },
            block,
            tainted,
        });
    }
    let mut out = Crossed::default();
    if deps.is_empty() {
        out.unjoined_wei = "0".into();
        return out;
    }
    // Releases on Bitcoin: OP_RETURN memos naming one of these deposits, or bridge ids.
    let want: HashSet<String> = deps.iter().map(|d| d.d.tx.clone()).collect();
    let prefixes: Vec<(usize, String)> = rules
        .bridges
        .iter()
        .enumerate()
        .filter(|(_, b)| b.release.chain == "bitcoin")
        .filter_map(|(i, b)| b.release_id_prefix().map(|p| (i, p.to_string())))
        .collect();
    let mut releases: Vec<Release> = Vec::new();
    let mut rel_outs: Vec<Vec<OutNum>> = Vec::new();
    let mut bridge_rel: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut thor_rel: Vec<usize> = Vec::new();
    for i in 0..btc.op_return_count() {
        let (o, script) = btc.op_return_at(i);
        let Some(text) = op_return_text(&script) else { continue };
        let (thor, bridge) = if let Some(h) = text
            .strip_prefix("OUT:")
            .or_else(|| text.strip_prefix("REFUND:"))
        {
            if !want.contains(&norm_hash(h)) {
                continue;
            }
            (true, None)
        } else if let Some((bi, p)) = prefixes.iter().find(|(_, p)| text.starts_with(p.as_str())) {
            (false, Some((*bi, text[p.len()..].to_string())))
        } else {
            continue;
        };
        let tx = btc.output_tx(o);
        let (release, outs) = release_of(btc, tx, &text, bridge.as_ref().map(|b| b.1.clone()));
        let ri = releases.len();
        releases.push(release);
        rel_outs.push(outs);
        if thor {
            thor_rel.push(ri);
        }
        if let Some((bi, _)) = bridge {
            bridge_rel.entry(bi).or_default().push(ri);
        }
    }
    let all_deps: Vec<Deposit> = deps.iter().map(|d| d.d.clone()).collect();
    let mut joins = join_thorchain(&all_deps, &releases);
    let thor_joined: HashSet<usize> = joins.joins.iter().map(|j| j.deposit).collect();
    for (bi, b) in rules.bridges.iter().enumerate() {
        if b.release.chain != "bitcoin" {
            continue;
        }
        let dset: Vec<usize> = (0..deps.len())
            .filter(|&i| !thor_joined.contains(&i) && b.is_deposit_address("ethereum", &deps[i].d.to))
            .collect();
        let rset = bridge_rel.get(&bi).cloned().unwrap_or_default();
        let sub_d: Vec<Deposit> = dset.iter().map(|&i| deps[i].d.clone()).collect();
        let sub_r: Vec<Release> = rset.iter().map(|&i| releases[i].clone()).collect();
        let j = join_bridge(b, &sub_d, &sub_r);
        for mut x in j.joins {
            x.deposit = dset[x.deposit];
            x.release = rset[x.release];
            joins.joins.push(x);
        }
        joins.skipped.extend(j.skipped);
    }
    let joined: HashSet<usize> = joins.joins.iter().map(|j| j.deposit).collect();
    out.unjoined_wei = deps
        .iter()
        .enumerate()
        .filter(|(i, _)| !joined.contains(i))
        .flat_map(|(_, d)| d.tainted.iter().map(|t| t.1))
        .fold(U256::ZERO, |a, x| a + x)
        .to_string();
    out.skipped = joins.skipped;
    // A release may be named by one deposit only (memo joins are 1:1; bridge joins use
    // each release once), so the conversion below never counts an output twice.
    for j in &joins.joins {
        let d = &deps[j.deposit];
        let r = &releases[j.release];
        let paid = r.paid();
        let conv = convert_taint(&d.tainted, d.d.amount, paid);
        let spread = spread_over_payouts(&conv, &r.payouts);
        let mut payouts = Vec::new();
        let mut tainted_sats = 0u64;
        for (k, p) in r.payouts.iter().enumerate() {
            let t: u64 = spread[k].iter().map(|x| x.1.to::<u64>()).sum();
            tainted_sats += t;
            for &(label, amt) in &spread[k] {
                out.sources.push(Source {
                    out: rel_outs[j.release][k],
                    label: label + label_base,
                    amount: Some(amt.to::<u64>()),
                });
            }
            payouts.push(HopPayout {
                address: p.address.clone(),
                vout: p.index as u32,
                sats: p.amount.to::<u64>(),
                tainted_sats: t,
            });
        }
        let tx = btc.output_tx(rel_outs[j.release][0]);
        out.hops.push(Hop {
            from_chain: "ethereum".into(),
            to_chain: "bitcoin".into(),
            via: j.via.clone(),
            matched: j.matched,
            confidence_ppm: j.confidence_ppm,
            deposit_tx: format!("0x{}", d.d.tx),
            deposit_block: d.block,
            deposit_to: d.d.to.clone(),
            deposit_wei: d.d.amount.to_string(),
            tainted_wei: d.tainted.iter().fold(U256::ZERO, |a, t| a + t.1).to_string(),
            release_tx: r.tx.clone(),
            release_height: btc.tx_height(tx),
            released_sats: paid.to::<u64>(),
            tainted_sats,
            payouts,
        });
    }
    out
}

/// A Bitcoin transaction as a release: its payouts are the outputs that neither carry data
/// nor go back to an address it spends from (the vault's change).
fn release_of(btc: &Index, tx: u32, memo: &str, id: Option<String>) -> (Release, Vec<OutNum>) {
    let mut inputs = HashSet::new();
    for i in btc.tx_inputs(tx) {
        if let cointrail_chain::view::Prevout::Output(o) = btc.input_prevout(i) {
            if let Some(a) = btc.output_addr(o) {
                inputs.insert(a);
            }
        }
    }
    let mut payouts = Vec::new();
    let mut outs = Vec::new();
    for o in btc.tx_outputs(tx) {
        let Some(a) = btc.output_addr(o) else { continue };
        if inputs.contains(&a) {
            continue;
        }
        payouts.push(Payout {
            address: btc.render_addr(a),
            amount: U256::from(btc.output_value(o)),
            index: btc.output_vout(o) as u64,
        });
        outs.push(o);
    }
    let b = btc.block_of_tx(tx);
    (
        Release {
            chain: "bitcoin".into(),
            tx: display_txid(btc.txid(tx)),
            time: btc.block(b).time as u64,
            asset: "BTC".into(),
            payouts,
            memo: Some(memo.to_string()),
            id,
        },
        outs,
    )
}
