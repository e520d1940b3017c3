//! An account trace as people and programs read it: addresses in EIP-55, amounts as exact
//! decimal strings in base units (JSON numbers cannot hold 2^256), a token's symbol and
//! decimals when the shipped registry knows it, and each label by its case's name.

use cointrail_evm::movement::Asset;
use cointrail_evm::tokens::{format_units, token_info};
use cointrail_evm::{Address, B256, U256};
use serde::Serialize;

use crate::runs::Label;
use crate::tracer::AccountTrace;

#[derive(Debug, Clone, Serialize)]
pub struct AssetRef {
    /// None for the native coin.
    pub token: Option<String>,
    pub symbol: Option<&'static str>,
    pub decimals: Option<u8>,
}

fn asset_ref(a: Asset) -> AssetRef {
    match a {
        Asset::Native => AssetRef {
            token: None,
            symbol: Some("ETH"),
            decimals: Some(18),
        },
        Asset::Token(t) => {
            let i = token_info(&t);
            AssetRef {
                token: Some(t.to_checksum(None)),
                symbol: i.map(|i| i.symbol),
                decimals: i.map(|i| i.decimals),
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TotalsRow {
    pub source_label: String,
    #[serde(flatten)]
    pub asset: AssetRef,
    pub source: String,
    pub converted_in: String,
    pub held: String,
    pub stopped: String,
    pub fee: String,
    pub pooled: String,
    pub converted_out: String,
    /// source + converted_in = held + stopped + fee + pooled + converted_out.
    pub balanced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldJson {
    pub address: String,
    #[serde(flatten)]
    pub asset: AssetRef,
    pub source_label: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StopJson {
    pub address: String,
    #[serde(flatten)]
    pub asset: AssetRef,
    pub source_label: String,
    pub amount: String,
    pub category: String,
    pub name: String,
    pub block: u64,
    pub tx: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversionJson {
    pub block: u64,
    pub tx: Option<String>,
    pub protocol: crate::swaps::Protocol,
    pub pool: String,
    pub recipient: String,
    pub asset_in: AssetRef,
    pub amount_in: String,
    pub asset_out: AssetRef,
    pub amount_out: String,
    pub tainted_in: String,
    pub tainted_out: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedJson {
    pub block: u64,
    pub tx: Option<String>,
    pub log_index: u64,
    pub pool: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    pub chain: String,
    pub model: &'static str,
    /// Every (label, asset) adds up (poison never does: it flags, it does not count).
    pub conserved: bool,
    pub totals: Vec<TotalsRow>,
    pub held: Vec<HeldJson>,
    pub stops: Vec<StopJson>,
    pub conversions: Vec<ConversionJson>,
    pub skipped: Vec<SkippedJson>,
    pub shortfalls: u64,
    pub transactions: u64,
    pub truncated: bool,
    /// Later withdrawals from each mixer pool the trace stopped at, ranked: candidates to
    /// check, never taint.
    pub mixer_candidates: Vec<crate::mixer::Candidate>,
    pub notes: Vec<String>,
}

fn addr(a: &Address) -> String {
    a.to_checksum(None)
}
fn hash(h: &Option<B256>) -> Option<String> {
    h.map(|h| h.to_string())
}

fn sum(v: &[(Label, U256)]) -> String {
    v.iter().fold(U256::ZERO, |s, (_, a)| s + *a).to_string()
}

/// `labels[i]` names label `i` (a case name); unnamed labels show as `source N`.
pub fn report(t: &AccountTrace, chain: &str, labels: &[String]) -> AccountReport {
    let name = |l: Label| {
        labels
            .get(l as usize)
            .cloned()
            .unwrap_or_else(|| format!("source {l}"))
    };
    let mut notes = Vec::new();
    if !t.skipped.is_empty() {
        notes.push(format!(
            "{} swap event(s) disagreed with their transfers and were not followed (see skipped)",
            t.skipped.len()
        ));
    }
    if t.shortfalls > 0 {
        notes.push(format!("{} debit(s) exceeded what the index knew the sender held (history before the indexed blocks): the missing part was taken as clean", t.shortfalls));
    }
    if t.truncated {
        notes.push(
            "stopped at the transaction limit: what was not followed is counted as held".into(),
        );
    }
    AccountReport {
        chain: chain.into(),
        model: t.model.as_str(),
        conserved: t.model.conserves() && t.conserved(),
        totals: t
            .totals
            .iter()
            .map(|x| TotalsRow {
                source_label: name(x.label),
                asset: asset_ref(x.asset),
                source: x.source.to_string(),
                converted_in: x.converted_in.to_string(),
                held: x.held.to_string(),
                stopped: x.stopped.to_string(),
                fee: x.fee.to_string(),
                pooled: x.pooled.to_string(),
                converted_out: x.converted_out.to_string(),
                balanced: x.balanced(),
            })
            .collect(),
        held: t
            .held
            .iter()
            .map(|h| HeldJson {
                address: addr(&h.address),
                asset: asset_ref(h.asset),
                source_label: name(h.label),
                amount: h.amount.to_string(),
            })
            .collect(),
        stops: t
            .stops
            .iter()
            .map(|s| StopJson {
                address: addr(&s.address),
                asset: asset_ref(s.asset),
                source_label: name(s.label),
                amount: s.amount.to_string(),
                category: s.category.clone(),
                name: s.name.clone(),
                block: s.block,
                tx: hash(&s.tx),
            })
            .collect(),
        conversions: t
            .conversions
            .iter()
            .map(|c| ConversionJson {
                block: c.block,
                tx: hash(&c.tx),
                protocol: c.protocol,
                pool: addr(&c.pool),
                recipient: addr(&c.recipient),
                asset_in: asset_ref(c.asset_in),
                amount_in: c.amount_in.to_string(),
                asset_out: asset_ref(c.asset_out),
                amount_out: c.amount_out.to_string(),
                tainted_in: sum(&c.tainted_in),
                tainted_out: sum(&c.tainted_out),
            })
            .collect(),
        skipped: t
            .skipped
            .iter()
            .map(|s| SkippedJson {
                block: s.block,
                tx: hash(&s.tx),
                log_index: s.log_index,
                pool: addr(&s.pool),
                reason: s.reason.clone(),
            })
            .collect(),
        shortfalls: t.shortfalls,
        transactions: t.transactions,
        truncated: t.truncated,
        mixer_candidates: t.mixer_candidates.clone(),
        notes,
    }
}

fn amount(a: &str, r: &AssetRef) -> String {
    let unit = r.symbol.unwrap_or("units");
    match (a.parse::<U256>(), r.decimals) {
        (Ok(v), Some(d)) => format!("{} {unit}", format_units(&v, d)),
        _ => format!("{a} {unit}"),
    }
}

/// The report for a person: totals per source and asset, then where the value is.
pub fn human(r: &AccountReport, max_rows: usize) -> String {
    let mut s = format!("{} trace, model {}\n", r.chain, r.model);
    for t in &r.totals {
        s.push_str(&format!(
            "  {} in {}: source {}, converted in {}; held {}, stopped {}, fee {}, pooled {}, converted out {}{}\n",
            t.source_label,
            t.asset.symbol.map(str::to_string).or(t.asset.token.clone()).unwrap_or_default(),
            amount(&t.source, &t.asset),
            amount(&t.converted_in, &t.asset),
            amount(&t.held, &t.asset),
            amount(&t.stopped, &t.asset),
            amount(&t.fee, &t.asset),
            amount(&t.pooled, &t.asset),
            amount(&t.converted_out, &t.asset),
            if t.balanced { "" } else { "  (does not add up: poison flags, it does not count)" }
        ));
    }
    if !r.stops.is_empty() {
        s.push_str("stopped at:\n");
        for x in r.stops.iter().take(max_rows) {
            s.push_str(&format!(
                "  {}  {}  {} ({}, block {})\n",
                x.address,
                amount(&x.amount, &x.asset),
                x.category,
                x.name,
                x.block
            ));
        }
    }
    if !r.conversions.is_empty() {
        s.push_str("conversions:\n");
        for c in r.conversions.iter().take(max_rows) {
            s.push_str(&format!(
                "  block {} {:?}: {} tainted of {} → {} tainted of {} to {}\n",
                c.block,
                c.protocol,
                amount(&c.tainted_in, &c.asset_in),
                amount(&c.amount_in, &c.asset_in),
                amount(&c.tainted_out, &c.asset_out),
                amount(&c.amount_out, &c.asset_out),
                c.recipient
            ));
        }
    }
    if !r.held.is_empty() {
        s.push_str(&format!(
            "held ({} balances, largest first):\n",
            r.held.len()
        ));
        for h in r.held.iter().take(max_rows) {
            s.push_str(&format!(
                "  {}  {}\n",
                h.address,
                amount(&h.amount, &h.asset)
            ));
        }
    }
    for sk in &r.skipped {
        s.push_str(&format!(
            "skipped: block {} log {} pool {}: {}\n",
            sk.block, sk.log_index, sk.pool, sk.reason
        ));
    }
    for c in r.mixer_candidates.iter().take(max_rows) {
        s.push_str(&format!(
            "mixer withdrawal candidate (not taint): {} at block {}, score {:.2}: {}\n",
            c.to.to_checksum(None),
            c.withdrawal_block,
            c.score,
            c.reasons.join("; ")
        ));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}
