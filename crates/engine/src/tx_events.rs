//! An Ethereum transaction with the events decoded from its stored logs (`cointrail tx
//! 0x…` and `/v1/ethereum/transactions/{hash}` give the same answer): swaps (Uniswap
//! v2/v3, Curve), WETH wraps and unwraps, Tornado-style deposits and withdrawals, and
//! swap-like events that did not agree with the transaction's transfers (with why).

use cointrail_account::ledger::Ledger;
use cointrail_account::swaps::{decode_tx, Protocol};
use cointrail_evm::movement::Asset;
use cointrail_evm::tokens::token_info;
use cointrail_evm::{Address, B256};
use cointrail_index::evm::{EvmIndex, TxSummary};
use serde::Serialize;

use crate::account::EvmLedger;

#[derive(Debug, Clone, Serialize)]
pub struct TxWithEvents {
    #[serde(flatten)]
    pub summary: TxSummary,
    /// Logs the index keeps for this transaction; None when its block was ingested
    /// without logs (then no event is decoded).
    pub logs: Option<usize>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventView {
    /// `uniswap_v2_swap`, `uniswap_v3_swap`, `curve_exchange`, `weth_deposit`,
    /// `weth_withdrawal`, `mixer_deposit`, `mixer_withdrawal`, or `skipped` (a swap-like
    /// event whose amounts the transfers do not confirm: `reason` says why).
    pub kind: &'static str,
    pub log_index: u64,
    /// The emitting contract (pool, WETH, mixer), EIP-55.
    pub contract: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_out: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_out: Option<String>,
    /// Who received the output (a swap's recipient, a mixer withdrawal's payee).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `ETH`, or the token's symbol when the shipped registry knows it, else its address.
fn asset_name(a: Asset) -> String {
    match a {
        Asset::Native => "ETH".into(),
        Asset::Token(t) => token_info(&t).map_or_else(|| t.to_checksum(None), |i| i.symbol.into()),
    }
}

fn ev(kind: &'static str, log_index: u64, contract: Address) -> EventView {
    EventView {
        kind,
        log_index,
        contract: contract.to_checksum(None),
        asset_in: None,
        amount_in: None,
        asset_out: None,
        amount_out: None,
        recipient: None,
        reason: None,
    }
}

/// The transaction `hash` with its decoded events, if indexed.
pub fn tx_with_events(idx: &EvmIndex, hash: &B256) -> Option<TxWithEvents> {
    let summary = idx.tx_summary(hash)?;
    let tx = idx.tx_number(hash)?;
    let Some(logs) = idx.tx_logs(tx) else {
        return Some(TxWithEvents {
            summary,
            logs: None,
            events: Vec::new(),
        });
    };
    let moves = EvmLedger(idx).tx_movements(tx);
    let d = decode_tx(&logs, &moves);
    let mut events = Vec::new();
    for c in &d.conversions {
        let kind = match c.protocol {
            Protocol::UniswapV2 => "uniswap_v2_swap",
            Protocol::UniswapV3 => "uniswap_v3_swap",
            Protocol::Curve => "curve_exchange",
            Protocol::WethDeposit => "weth_deposit",
            Protocol::WethWithdrawal => "weth_withdrawal",
        };
        events.push(EventView {
            asset_in: Some(asset_name(c.asset_in)),
            amount_in: Some(c.amount_in.to_string()),
            asset_out: Some(asset_name(c.asset_out)),
            amount_out: Some(c.amount_out.to_string()),
            recipient: Some(c.recipient.to_checksum(None)),
            ..ev(kind, c.log_index, c.pool)
        });
    }
    for s in &d.skipped {
        events.push(EventView {
            reason: Some(s.reason.clone()),
            ..ev("skipped", s.log_index, s.pool)
        });
    }
    for m in &d.mixer_deposits {
        events.push(ev("mixer_deposit", m.log_index, m.pool));
    }
    for w in &d.mixer_withdrawals {
        events.push(EventView {
            recipient: Some(w.to.to_checksum(None)),
            ..ev("mixer_withdrawal", w.log_index, w.pool)
        });
    }
    events.sort_by_key(|e| e.log_index);
    Some(TxWithEvents {
        summary,
        logs: Some(logs.len()),
        events,
    })
}
