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
use cointrail_account::thorchain::{parse_memo, Memo};
use cointrail_account::tracer::AccountTrace;
use cointrail_account::xchain::{
    convert_taint, join_bridge, join_thorchain, looks_like_swap_memo, memo_and_id_from_logs,
    norm_hash, op_return_text, spread_over_payouts, transfer_outs_from_logs, BridgeRules, Deposit,
    Matched, Payout, Release, SkippedHop,
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
        let Some(n) = ledger.tx_by_hash(&h) else {
            continue;
        };
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
        let Some(text) = op_return_text(&script) else {
            continue;
        };
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
            .filter(|&i| {
                !thor_joined.contains(&i) && b.is_deposit_address("ethereum", &deps[i].d.to)
            })
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
            tainted_wei: d
                .tainted
                .iter()
                .fold(U256::ZERO, |a, t| a + t.1)
                .to_string(),
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
        let Some(a) = btc.output_addr(o) else {
            continue;
        };
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

/// A case whose sources are on Ethereum, traced across chains the way `trace CASE` does it
/// with its defaults: balance FIFO on Ethereum stopping at the default service categories
/// and at crossings, each crossing joined to its Bitcoin release, FIFO on Bitcoin from the
/// converted taint. Screening (`Engine::trace_cases`) and the alert hooks read this.
pub struct CaseAcross {
    pub eth: AccountTrace,
    pub crossed: Crossed,
    /// The Bitcoin leg, when a crossing was joined.
    pub btc: Option<cointrail_trace::TraceResult>,
    /// The way back: the Bitcoin leg's crossings back to Ethereum and the Ethereum leg
    /// after them (FIFO), when one was joined.
    pub back: Option<(CrossedBack, AccountTrace)>,
}

impl crate::Engine {
    /// The data directory's Ethereum side: the one `attach_evm` opened, else opened now.
    pub fn ethereum_side(&self) -> anyhow::Result<Option<std::sync::Arc<crate::evm::EvmSide>>> {
        if let Some(s) = self.evm.get("ethereum") {
            return Ok(Some(s.clone()));
        }
        if !crate::evm::has_chain(&self.data_dir, "ethereum") {
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(crate::evm::EvmSide::open(
            &self.data_dir,
            "ethereum",
        )?)))
    }

    /// The bridge rules of the data directory (`DATA_DIR/bridges.yaml`), none without one;
    /// a file with errors is an error naming it.
    pub fn bridge_rules(&self) -> anyhow::Result<BridgeRules> {
        let p = self.data_dir.join("bridges.yaml");
        if !p.exists() {
            return Ok(BridgeRules::default());
        }
        Ok(BridgeRules::load(&p)?)
    }

    /// Trace a case whose sources are all on Ethereum across chains (see [`CaseAcross`]).
    /// `None` when the case has a source elsewhere, there is no Ethereum index, or the index
    /// names none of its sources.
    pub fn trace_case_across(
        &self,
        case: &cointrail_cases::Case,
        rules: &BridgeRules,
    ) -> anyhow::Result<Option<CaseAcross>> {
        if case.sources.is_empty() || !case.sources.iter().all(cointrail_cases::is_evm_source) {
            return Ok(None);
        }
        let Some(side) = self.ethereum_side()? else {
            return Ok(None);
        };
        let Some(eth) = eth_leg(&side, case, None) else {
            return Ok(None);
        };
        let (crossed, btc) = self.bitcoin_leg(&side, case, &eth, rules);
        let back = match &btc {
            Some(b) => self.back_leg(&side, case, b, None, rules)?,
            None => None,
        };
        Ok(Some(CaseAcross {
            eth,
            crossed,
            btc,
            back,
        }))
    }

    /// An Ethereum leg's crossings to Bitcoin and the Bitcoin leg from them (FIFO, default
    /// stops and `bridge`: a deposit to the router's Bitcoin vault ends it).
    fn bitcoin_leg(
        &self,
        side: &crate::evm::EvmSide,
        case: &cointrail_cases::Case,
        eth: &AccountTrace,
        rules: &BridgeRules,
    ) -> (Crossed, Option<cointrail_trace::TraceResult>) {
        let crossed = cross_to_bitcoin(
            &side.index,
            &self.index,
            eth,
            &|c| c == BRIDGE_CATEGORY,
            rules,
            1,
        );
        let btc = (!crossed.sources.is_empty()).then(|| {
            let stops: Vec<String> = crate::STOP_CATEGORIES
                .iter()
                .map(|s| s.to_string())
                .chain([BRIDGE_CATEGORY.to_string()])
                .collect();
            let p = cointrail_trace::TraceParams {
                labels: vec![case.name.clone()],
                max_rows: usize::MAX,
                ..cointrail_trace::TraceParams::default()
            };
            self.trace(&crossed.sources, p, &stops)
        });
        (crossed, btc)
    }

    /// A Bitcoin leg's crossings back to Ethereum and the Ethereum leg after them (FIFO),
    /// through block `until` when given.
    fn back_leg(
        &self,
        side: &crate::evm::EvmSide,
        case: &cointrail_cases::Case,
        btc: &cointrail_trace::TraceResult,
        until: Option<u64>,
        rules: &BridgeRules,
    ) -> anyhow::Result<Option<(CrossedBack, AccountTrace)>> {
        let labels = std::slice::from_ref(&case.name);
        let mut x = cross_to_ethereum(&self.index, &side.index, btc, labels);
        x.extend(cross_bridges_to_ethereum(
            &self.index,
            &side.index,
            btc,
            labels,
            rules,
        ));
        if x.sources.is_empty() {
            return Ok(None);
        }
        let t = ethereum_leg_from(
            side,
            &x.sources,
            cointrail_account::tracer::AccountModel::Fifo,
            &[],
            until,
        )?;
        Ok(Some((x, t)))
    }
}

/// The Ethereum leg of a case (balance FIFO, stopping at the default service categories and
/// at crossings), through block `until` when given; `None` when the index names none of its
/// sources.
fn eth_leg(
    side: &crate::evm::EvmSide,
    case: &cointrail_cases::Case,
    until: Option<u64>,
) -> Option<AccountTrace> {
    let mut stops: Vec<String> = crate::STOP_CATEGORIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    stops.push(BRIDGE_CATEGORY.to_string());
    let oracle =
        cointrail_account::tracer::FnOracle(|a: &cointrail_evm::Address| side.stop_of(a, &stops));
    let mut p =
        cointrail_account::tracer::Params::new(cointrail_account::tracer::AccountModel::Fifo);
    p.until_block = until;
    match crate::account::trace_evm_cases(&side.index, std::slice::from_ref(case), &oracle, p) {
        Ok((t, _)) => Some(t),
        Err(e) => {
            tracing::debug!("case {}: {}", case.name, crate::error_text(&e));
            None
        }
    }
}

impl crate::Engine {
    /// The accounts holding a case's taint on Ethereum at the end of block `through`
    /// (`None`: the index's tip): (address, asset, tainted amount), largest first. `None`
    /// when the case is not on Ethereum or the index names none of its sources.
    pub fn case_holders(
        &self,
        case: &cointrail_cases::Case,
        through: Option<u64>,
    ) -> anyhow::Result<Option<Vec<(cointrail_evm::Address, Asset, U256)>>> {
        if case.sources.is_empty() || !case.sources.iter().all(cointrail_cases::is_evm_source) {
            return Ok(None);
        }
        let Some(side) = self.ethereum_side()? else {
            return Ok(None);
        };
        let Some(t) = eth_leg(&side, case, through) else {
            return Ok(None);
        };
        // The way back: what came back from Bitcoin through the router and is held on
        // Ethereum again is watched too. Bridge rules with errors only cost the way back
        // here (the holders of the first leg are still watched); `trace` reports the error.
        let back = if self.index.block_count() > 0 {
            let rules = self.bridge_rules().unwrap_or_else(|err| {
                tracing::warn!("case {}: {}", case.name, crate::error_text(&err));
                BridgeRules::default()
            });
            match self.bitcoin_leg(&side, case, &t, &rules).1 {
                Some(b) => self.back_leg(&side, case, &b, through, &rules)?,
                None => None,
            }
        } else {
            None
        };
        Ok(Some({
            let mut m: BTreeMap<(cointrail_evm::Address, Asset), U256> = BTreeMap::new();
            for h in t
                .held
                .iter()
                .chain(back.iter().flat_map(|b| b.1.held.iter()))
                .filter(|h| !h.amount.is_zero())
            {
                *m.entry((h.address, h.asset)).or_default() += h.amount;
            }
            let mut v: Vec<_> = m.into_iter().map(|((a, s), x)| (a, s, x)).collect();
            v.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(&y.0)));
            v
        }))
    }
}

/// One hop from Bitcoin back to Ethereum (a deposit to the router's Bitcoin vault with a
/// swap memo, joined to the Ethereum outbound whose memo is `OUT:<bitcoin txid>`).
#[derive(Debug, Clone, Serialize)]
pub struct BackHop {
    pub from_chain: String,
    pub to_chain: String,
    pub via: String,
    pub matched: Matched,
    pub confidence_ppm: u32,
    pub deposit_tx: String,
    pub deposit_height: u32,
    /// The vault output(s) of the deposit.
    pub deposit_to: String,
    pub deposit_sats: u64,
    pub tainted_sats: u64,
    /// The inbound memo (`=:ETH.ETH:0x…`).
    pub memo: String,
    pub release_tx: String,
    pub release_block: u64,
    pub release_memo: String,
    /// `ETH` or the token contract.
    pub asset: String,
    /// In the asset's base units (wei for ETH).
    pub released: String,
    pub tainted: String,
    pub payouts: Vec<BackPayout>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackPayout {
    pub address: String,
    pub movement: u64,
    pub amount: String,
    pub tainted: String,
}

/// The crossings from a Bitcoin leg back to Ethereum.
#[derive(Debug, Default, Serialize)]
pub struct CrossedBack {
    pub hops: Vec<BackHop>,
    /// Tainted deposits that look like crossings and were not joined, each with why.
    pub skipped: Vec<SkippedHop>,
    /// Tainted sats of those (they stay stopped on Bitcoin, at the vault).
    pub unjoined_sats: u64,
    /// (account label, movement, tainted amount): sources of the Ethereum leg.
    #[serde(skip)]
    pub sources: Vec<(Label, u64, U256)>,
}

fn asset_name(a: Asset) -> String {
    match a {
        Asset::Native => "ETH".into(),
        Asset::Token(t) => format!("{t:#x}"),
    }
}

/// Follow a Bitcoin leg's taint back to Ethereum. A crossing is a tainted transaction of
/// the leg whose OP_RETURN reads as a THORChain swap memo (`=:`, `SWAP:`, `s:`) and whose
/// tainted outputs the trace stopped at a service (the vault: an address attributed
/// `bridge`, or an exchange's wallet playing one). The memo must parse, swap to Ethereum and
/// name a destination; the outbound is found among the destination's receipts by its router
/// `TransferOut` memo `OUT:<txid>` and joined by `join_thorchain` (which also checks the
/// destination and the chain). Everything else is a skipped hop with its reason, and its
/// taint stays stopped at the vault. `labels` are the Bitcoin leg's label names in account
/// label order.
pub fn cross_to_ethereum(
    btc: &Index,
    evm: &EvmIndex,
    leg: &cointrail_trace::TraceResult,
    labels: &[String],
) -> CrossedBack {
    let ledger = EvmLedger(evm);
    let mut out = CrossedBack::default();
    // Tainted rows by transaction, in the leg's order.
    let mut by_tx: BTreeMap<u32, Vec<&cointrail_trace::engine::Row>> = BTreeMap::new();
    for row in leg.outputs.iter().filter(|r| r.tainted_sats > 0) {
        by_tx.entry(btc.output_tx(row.out)).or_default().push(row);
    }
    // (deposit, tainted parts per label, height, tainted sats)
    type Dep = (Deposit, Vec<(Label, U256)>, u32, u64);
    let mut deps: Vec<Dep> = Vec::new();
    for (tx, rows) in by_tx {
        let memo = btc
            .tx_outputs(tx)
            .filter(|&o| btc.output_addr(o).is_none())
            .find_map(|o| btc.op_return_data(o).and_then(|s| op_return_text(&s)));
        let Some(memo) = memo.filter(|m| looks_like_swap_memo(m)) else {
            continue;
        };
        let txid = display_txid(btc.txid(tx));
        let vault: Vec<_> = rows
            .iter()
            .filter(|r| {
                r.stop_reason
                    .as_deref()
                    .is_some_and(|s| s.starts_with("service:"))
            })
            .collect();
        let skip = |reason: String, sats: u64, out: &mut CrossedBack| {
            out.skipped.push(SkippedHop {
                chain: "bitcoin".into(),
                tx: txid.clone(),
                reason,
            });
            out.unjoined_sats += sats;
        };
        if vault.is_empty() {
            skip(
                format!("swap memo {memo:?}, but the trace stops at no vault output in it (attribute the vault's address to category bridge to follow it)"),
                0,
                &mut out,
            );
            continue;
        }
        let tainted_sats: u64 = vault.iter().map(|r| r.tainted_sats).sum();
        let swap = match parse_memo(&memo) {
            Err(e) => {
                skip(
                    format!("memo does not parse ({e}); THORChain refunds such a deposit"),
                    tainted_sats,
                    &mut out,
                );
                continue;
            }
            Ok(Memo::Swap(s)) => s,
            Ok(_) => {
                skip(
                    format!("memo {memo:?} is not a swap"),
                    tainted_sats,
                    &mut out,
                );
                continue;
            }
        };
        if !swap.asset.chain.eq_ignore_ascii_case("ETH") {
            skip(
                format!(
                    "memo swaps to {}: only Ethereum is followed from Bitcoin",
                    swap.asset
                ),
                tainted_sats,
                &mut out,
            );
            continue;
        }
        let Some(dest) = swap.destination.as_deref() else {
            skip(
                "memo names no destination (THORChain would pay the sender on its own chain)"
                    .into(),
                tainted_sats,
                &mut out,
            );
            continue;
        };
        if cointrail_evm::parse_address(dest).is_err() {
            skip(
                format!("memo destination {dest:?} is not an Ethereum address (a THORName is not resolved here)"),
                tainted_sats,
                &mut out,
            );
            continue;
        }
        let mut parts: BTreeMap<Label, U256> = BTreeMap::new();
        for r in &vault {
            for run in &r.runs {
                if let Some(l) = labels.iter().position(|x| *x == run.label) {
                    *parts.entry(l as Label).or_default() += U256::from(run.amount);
                }
            }
        }
        let amount: u64 = vault.iter().map(|r| r.value).sum();
        let to = vault
            .iter()
            .filter_map(|r| r.address.clone())
            .collect::<Vec<_>>()
            .join(",");
        deps.push((
            Deposit {
                chain: "bitcoin".into(),
                tx: txid,
                time: btc.block(btc.block_of_tx(tx)).time as u64,
                from: String::new(),
                to,
                asset: "BTC".into(),
                amount: U256::from(amount),
                memo: Some(memo),
                id: None,
            },
            parts.into_iter().collect(),
            btc.tx_height(tx),
            tainted_sats,
        ));
    }
    if deps.is_empty() {
        return out;
    }
    // Outbounds: the destinations' receipts whose transaction carries a router
    // `TransferOut` to them.
    let mut releases: Vec<Release> = Vec::new();
    let mut rel_block: Vec<u64> = Vec::new();
    let mut other_memos: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen: HashSet<(u64, cointrail_evm::Address)> = HashSet::new();
    for (d, ..) in &deps {
        let Some(dest) = d
            .memo
            .as_deref()
            .and_then(|m| match parse_memo(m) {
                Ok(Memo::Swap(s)) => s.destination,
                _ => None,
            })
            .and_then(|x| cointrail_evm::parse_address(&x).ok())
        else {
            continue;
        };
        for id in evm.received_ids(&dest) {
            let Some(m) = ledger.movement(id) else {
                continue;
            };
            let Some(t) = m.tx else { continue };
            if m.is_gas() || !seen.insert((t, dest)) {
                continue;
            }
            let moves = ledger.tx_movements(t);
            for o in transfer_outs_from_logs(&ledger.tx_logs(t)) {
                if o.to != dest {
                    continue;
                }
                let asset = if o.asset.is_zero() {
                    Asset::Native
                } else {
                    Asset::Token(o.asset)
                };
                let pays: Vec<Payout> = moves
                    .iter()
                    .filter(|x| x.to == dest && x.asset == asset && !x.is_gas())
                    .map(|x| Payout {
                        address: format!("{dest:#x}"),
                        amount: x.amount,
                        index: x.id,
                    })
                    .collect();
                if pays.is_empty() {
                    continue;
                }
                other_memos
                    .entry(format!("{dest:#x}"))
                    .or_default()
                    .push(format!("{:?}", o.memo.chars().take(90).collect::<String>()));
                releases.push(Release {
                    chain: "ethereum".into(),
                    tx: format!("{:#x}", ledger.tx_hash(t).unwrap_or_default()),
                    time: evm.movement_time(m.id),
                    asset: asset_name(asset),
                    payouts: pays,
                    memo: Some(o.memo),
                    id: None,
                });
                rel_block.push(m.block);
            }
        }
    }
    let all: Vec<Deposit> = deps.iter().map(|d| d.0.clone()).collect();
    let mut joins = join_thorchain(&all, &releases);
    // The outbound pays the memo's asset: ETH for `ETH.ETH`/`e`, else a token whose
    // contract ends with the memo's id. A join paying another asset is refused.
    joins.joins.retain(|j| {
        let d = &all[j.deposit];
        let r = &releases[j.release];
        let Some(Ok(Memo::Swap(s))) = d.memo.as_deref().map(parse_memo) else {
            return true;
        };
        let native = s.asset.symbol.eq_ignore_ascii_case("ETH") && s.asset.id.is_none();
        let fits = if native {
            r.asset == "ETH"
        } else {
            r.asset != "ETH"
                && s.asset.id.as_deref().is_none_or(|id| {
                    let id = id.trim_start_matches("0x").to_ascii_lowercase();
                    r.asset.to_ascii_lowercase().ends_with(&id)
                })
        };
        if !fits {
            joins.skipped.push(SkippedHop {
                chain: "ethereum".into(),
                tx: r.tx.clone(),
                reason: format!(
                    "outbound names inbound {} but pays {} where its memo asks for {}",
                    d.tx, r.asset, s.asset
                ),
            });
        }
        fits
    });
    out.skipped.extend(joins.skipped.iter().cloned());
    let joined: HashSet<usize> = joins.joins.iter().map(|j| j.deposit).collect();
    for (i, (d, _, _, sats)) in deps.iter().enumerate() {
        if joined.contains(&i) {
            continue;
        }
        out.unjoined_sats += sats;
        // A join refused by its memo check is already listed (with the release's tx).
        if joins.skipped.iter().any(|s| {
            releases.iter().any(|r| {
                r.tx == s.tx
                    && r.memo.as_deref().is_some_and(|m| {
                        m.to_ascii_lowercase()
                            .ends_with(&norm_hash(&d.tx).to_ascii_lowercase())
                    })
            })
        }) {
            continue;
        }
        let dest = d
            .memo
            .as_deref()
            .and_then(|m| match parse_memo(m) {
                Ok(Memo::Swap(s)) => s.destination,
                _ => None,
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        let others = other_memos.get(&dest).cloned().unwrap_or_default();
        let reason = if others.is_empty() {
            format!("no outbound on ethereum names it (OUT:{}): nothing the router paid {dest} is indexed", d.tx)
        } else {
            format!(
                "no outbound on ethereum names it (OUT:{}); the router's payments to {dest} name other inbounds ({})",
                d.tx,
                others.join(", ")
            )
        };
        out.skipped.push(SkippedHop {
            chain: "bitcoin".into(),
            tx: d.tx.clone(),
            reason,
        });
    }
    // A payout movement carries one inbound's taint: an outbound transaction whose
    // `TransferOut` events name two inbounds but pay through the same movement (hostile or
    // malformed logs) joins the first, and the other is a skipped hop.
    let mut paid_by: HashMap<u64, String> = HashMap::new();
    for j in &joins.joins {
        let (d, tainted, height, sats) = &deps[j.deposit];
        let r = &releases[j.release];
        if let Some(other) = r.payouts.iter().find_map(|p| paid_by.get(&p.index)) {
            out.skipped.push(SkippedHop {
                chain: "ethereum".into(),
                tx: r.tx.clone(),
                reason: format!(
                    "outbound for inbound {} pays through the same transfer as the one for inbound {other}: joined to that one only",
                    d.tx
                ),
            });
            out.unjoined_sats += sats;
            continue;
        }
        for p in &r.payouts {
            paid_by.insert(p.index, d.tx.clone());
        }
        let paid = r.paid();
        let conv = convert_taint(tainted, d.amount, paid);
        let spread = spread_over_payouts(&conv, &r.payouts);
        let mut payouts = Vec::new();
        let mut total = U256::ZERO;
        for (k, p) in r.payouts.iter().enumerate() {
            let t = spread[k].iter().fold(U256::ZERO, |a, x| a + x.1);
            total += t;
            for &(label, amt) in &spread[k] {
                out.sources.push((label, p.index, amt));
            }
            payouts.push(BackPayout {
                address: p.address.clone(),
                movement: p.index,
                amount: p.amount.to_string(),
                tainted: t.to_string(),
            });
        }
        out.hops.push(BackHop {
            from_chain: "bitcoin".into(),
            to_chain: "ethereum".into(),
            via: j.via.clone(),
            matched: j.matched,
            confidence_ppm: j.confidence_ppm,
            deposit_tx: d.tx.clone(),
            deposit_height: *height,
            deposit_to: d.to.clone(),
            deposit_sats: d.amount.to::<u64>(),
            tainted_sats: *sats,
            memo: d.memo.clone().unwrap_or_default(),
            release_tx: r.tx.clone(),
            release_block: rel_block[j.release],
            release_memo: r.memo.clone().unwrap_or_default(),
            asset: r.asset.clone(),
            released: paid.to_string(),
            tainted: total.to_string(),
            payouts,
        });
    }
    out
}

/// The Ethereum leg after a crossing back: account-model trace (`model`) from the
/// converted taint, stopping at the default service categories and at crossings.
pub fn ethereum_leg_from(
    side: &crate::evm::EvmSide,
    sources: &[(Label, u64, U256)],
    model: cointrail_account::tracer::AccountModel,
    extra_stops: &[String],
    until: Option<u64>,
) -> anyhow::Result<AccountTrace> {
    let mut stops: Vec<String> = crate::STOP_CATEGORIES
        .iter()
        .map(|s| s.to_string())
        .chain(extra_stops.iter().cloned())
        .collect();
    stops.push(BRIDGE_CATEGORY.to_string());
    stops.sort();
    stops.dedup();
    let oracle =
        cointrail_account::tracer::FnOracle(|a: &cointrail_evm::Address| side.stop_of(a, &stops));
    let ledger = EvmLedger(&side.index);
    let mut p = cointrail_account::tracer::Params::new(model);
    p.until_block = until;
    let mut t = cointrail_account::tracer::AccountTracer::new(&ledger, &oracle, p);
    for &(label, movement, amount) in sources {
        t.add_source(
            label,
            cointrail_account::tracer::Source::Part { movement, amount },
        )
        .map_err(anyhow::Error::msg)?;
    }
    Ok(t.run())
}

/// Follow a Bitcoin leg back to Ethereum through generic bridges (`bridges.yaml` rules whose
/// deposit side is `bitcoin` and release side `ethereum`): a deposit is a tainted
/// transaction of the leg that the trace stopped at one of the rule's Bitcoin addresses
/// (without a THORChain swap memo: those are [`cross_to_ethereum`]'s); its id is the text
/// after the rule's `op_return:` prefix, when it names one. Releases are the rule's Ethereum
/// addresses' sends (each transaction's value movements from them) within the rule's window
/// after the first deposit; `join_bridge` joins them by amount at the rule's rate and time
/// (releases on Ethereum carry no id we decode), with its confidence. Deposits it cannot
/// join are skipped hops with the rule's reason.
pub fn cross_bridges_to_ethereum(
    btc: &Index,
    evm: &EvmIndex,
    leg: &cointrail_trace::TraceResult,
    labels: &[String],
    rules: &BridgeRules,
) -> CrossedBack {
    let ledger = EvmLedger(evm);
    let mut out = CrossedBack::default();
    let rules: Vec<&cointrail_account::xchain::BridgeRule> = rules
        .bridges
        .iter()
        .filter(|b| b.deposit.chain == "bitcoin" && b.release.chain == "ethereum")
        .collect();
    if rules.is_empty() {
        return out;
    }
    let mut by_tx: BTreeMap<u32, Vec<&cointrail_trace::engine::Row>> = BTreeMap::new();
    for row in leg.outputs.iter().filter(|r| r.tainted_sats > 0) {
        by_tx.entry(btc.output_tx(row.out)).or_default().push(row);
    }
    for rule in rules {
        // (deposit, tainted parts, height, tainted sats)
        type Dep = (Deposit, Vec<(Label, U256)>, u32, u64);
        let mut deps: Vec<Dep> = Vec::new();
        for (&tx, rows) in &by_tx {
            let memo = btc
                .tx_outputs(tx)
                .filter(|&o| btc.output_addr(o).is_none())
                .find_map(|o| btc.op_return_data(o).and_then(|s| op_return_text(&s)));
            if memo.as_deref().is_some_and(looks_like_swap_memo) {
                continue;
            }
            let at: Vec<_> = rows
                .iter()
                .filter(|r| {
                    r.stop_reason
                        .as_deref()
                        .is_some_and(|s| s.starts_with("service:"))
                        && r.address
                            .as_deref()
                            .is_some_and(|a| rule.is_deposit_address("bitcoin", a))
                })
                .collect();
            if at.is_empty() {
                continue;
            }
            let id = match (rule.deposit.id.as_deref(), &memo) {
                (Some(spec), Some(m)) => spec
                    .strip_prefix("op_return:")
                    .and_then(|p| m.strip_prefix(p))
                    .map(str::to_string),
                _ => None,
            };
            let mut parts: BTreeMap<Label, U256> = BTreeMap::new();
            for r in &at {
                for run in &r.runs {
                    if let Some(l) = labels.iter().position(|x| *x == run.label) {
                        *parts.entry(l as Label).or_default() += U256::from(run.amount);
                    }
                }
            }
            deps.push((
                Deposit {
                    chain: "bitcoin".into(),
                    tx: display_txid(btc.txid(tx)),
                    time: btc.block(btc.block_of_tx(tx)).time as u64,
                    from: String::new(),
                    to: at
                        .iter()
                        .filter_map(|r| r.address.clone())
                        .collect::<Vec<_>>()
                        .join(","),
                    asset: "BTC".into(),
                    amount: U256::from(at.iter().map(|r| r.value).sum::<u64>()),
                    memo,
                    id,
                },
                parts.into_iter().collect(),
                btc.tx_height(tx),
                at.iter().map(|r| r.tainted_sats).sum(),
            ));
        }
        if deps.is_empty() {
            continue;
        }
        let t0 = deps.iter().map(|d| d.0.time).min().unwrap_or(0);
        let t1 = deps.iter().map(|d| d.0.time).max().unwrap_or(0) + rule.window_secs;
        // Releases: the rule's Ethereum addresses' sends in the window, one per transaction.
        let mut releases: Vec<Release> = Vec::new();
        let mut rel_block: Vec<u64> = Vec::new();
        for a in &rule.release.addresses {
            let Ok(addr) = cointrail_evm::parse_address(a) else {
                continue;
            };
            let mut seen = HashSet::new();
            for id in evm.sent_ids(&addr) {
                let Some(m) = ledger.movement(id) else {
                    continue;
                };
                let Some(t) = m.tx else { continue };
                let time = evm.movement_time(id);
                if m.is_gas() || time < t0 || time > t1 || !seen.insert(t) {
                    continue;
                }
                let pays: Vec<Payout> = ledger
                    .tx_movements(t)
                    .into_iter()
                    .filter(|x| x.from == addr && !x.is_gas() && x.asset == m.asset)
                    .map(|x| Payout {
                        address: format!("{:#x}", x.to),
                        amount: x.amount,
                        index: x.id,
                    })
                    .collect();
                if pays.is_empty() {
                    continue;
                }
                releases.push(Release {
                    chain: "ethereum".into(),
                    tx: format!("{:#x}", ledger.tx_hash(t).unwrap_or_default()),
                    time,
                    asset: asset_name(m.asset),
                    payouts: pays,
                    memo: None,
                    id: None,
                });
                rel_block.push(m.block);
            }
        }
        let all: Vec<Deposit> = deps.iter().map(|d| d.0.clone()).collect();
        let joins = join_bridge(rule, &all, &releases);
        out.skipped.extend(joins.skipped.iter().cloned());
        let joined: HashSet<usize> = joins.joins.iter().map(|j| j.deposit).collect();
        for (i, d) in deps.iter().enumerate() {
            if !joined.contains(&i) {
                out.unjoined_sats += d.3;
            }
        }
        for j in &joins.joins {
            let (d, tainted, height, sats) = &deps[j.deposit];
            let r = &releases[j.release];
            let paid = r.paid();
            let conv = convert_taint(tainted, d.amount, paid);
            let spread = spread_over_payouts(&conv, &r.payouts);
            let mut payouts = Vec::new();
            let mut total = U256::ZERO;
            for (k, p) in r.payouts.iter().enumerate() {
                let t = spread[k].iter().fold(U256::ZERO, |a, x| a + x.1);
                total += t;
                for &(label, amt) in &spread[k] {
                    out.sources.push((label, p.index, amt));
                }
                payouts.push(BackPayout {
                    address: p.address.clone(),
                    movement: p.index,
                    amount: p.amount.to_string(),
                    tainted: t.to_string(),
                });
            }
            out.hops.push(BackHop {
                from_chain: "bitcoin".into(),
                to_chain: "ethereum".into(),
                via: j.via.clone(),
                matched: j.matched,
                confidence_ppm: j.confidence_ppm,
                deposit_tx: d.tx.clone(),
                deposit_height: *height,
                deposit_to: d.to.clone(),
                deposit_sats: d.amount.to::<u64>(),
                tainted_sats: *sats,
                memo: d.memo.clone().unwrap_or_default(),
                release_tx: r.tx.clone(),
                release_block: rel_block[j.release],
                release_memo: String::new(),
                asset: r.asset.clone(),
                released: paid.to_string(),
                tainted: total.to_string(),
                payouts,
            });
        }
    }
    out
}

impl CrossedBack {
    /// Add another join's hops (THORChain, then each bridge).
    pub fn extend(&mut self, o: CrossedBack) {
        self.hops.extend(o.hops);
        self.skipped.extend(o.skipped);
        self.unjoined_sats += o.unjoined_sats;
        self.sources.extend(o.sources);
    }
}
