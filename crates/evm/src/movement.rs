//! The value-movement model: every way value changes hands on an EVM chain, as one kind
//! of row (from, to, asset, amount). Balances and exposure are sums over these rows, so
//! the rules that decide what moves live here and nowhere else:
//! - a successful transaction moves its value; a failed one moves gas only;
//! - with traces, native value comes from the successful `call`/`create`/`suicide`
//!   frames (a failed frame fails its whole subtree), rewards from `reward` frames;
//! - gas is its own movement: the priority part to the block's fee recipient, the base
//!   fee (EIP-1559) to the burn sink;
//! - token transfers move the token; withdrawals credit the validator's address.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::etl::{
    Block, Located, Log, Row, RowError, TokenTransfer, Trace, TraceType, Transaction,
};

/// Where burnt base fees go and where rewards and withdrawals come from: nobody's account.
pub const SINK: Address = Address::ZERO;

/// One gwei in wei: withdrawals are counted in gwei.
pub const GWEI: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Asset {
    /// ETH (or the chain's native coin), in wei.
    Native,
    /// A token contract; amounts in its base units (or the id for ERC-721).
    Token(Address),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum MovementKind {
    /// A transaction's own value (top frame).
    Value = 0,
    /// Value of a successful internal call.
    Internal = 1,
    /// Contract creation (with its endowment, possibly zero).
    Create = 2,
    /// Self-destruct: the contract's balance to the refund address.
    SelfDestruct = 3,
    Token = 4,
    /// Priority fee to the block's fee recipient.
    Fee = 5,
    /// Base fee burnt (EIP-1559).
    Burn = 6,
    /// Block or uncle reward.
    Reward = 7,
    /// Beacon-chain withdrawal.
    Withdrawal = 8,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Value => "value",
            Self::Internal => "internal",
            Self::Create => "create",
            Self::SelfDestruct => "selfdestruct",
            Self::Token => "token",
            Self::Fee => "fee",
            Self::Burn => "burn",
            Self::Reward => "reward",
            Self::Withdrawal => "withdrawal",
        }
    }
    pub fn from_u8(v: u8) -> Option<Self> {
        use MovementKind::*;
        [
            Value,
            Internal,
            Create,
            SelfDestruct,
            Token,
            Fee,
            Burn,
            Reward,
            Withdrawal,
        ]
        .get(v as usize)
        .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub block: u64,
    /// Index of the transaction in its block; None for rewards and withdrawals.
    pub tx_index: Option<u32>,
    pub kind: MovementKind,
    pub asset: Asset,
    pub from: Address,
    pub to: Address,
    pub amount: U256,
    /// Call path of an internal movement (empty for the top frame).
    pub trace_address: Vec<u32>,
    pub log_index: Option<u64>,
}

/// All rows of one block, each with its origin for error messages. This is what every
/// source (etl files, node RPC) hands to the index.
#[derive(Debug, Clone, Default)]
pub struct BlockRows {
    pub block: Option<Located<Block>>,
    pub transactions: Vec<Located<Transaction>>,
    pub traces: Vec<Located<Trace>>,
    pub token_transfers: Vec<Located<TokenTransfer>>,
    pub logs: Vec<Located<Log>>,
}

impl BlockRows {
    pub fn number(&self) -> Option<u64> {
        self.block.as_ref().map(|b| b.row.number)
    }
}

fn err<T>(at: &Located<T>, field: &str, msg: impl Into<String>) -> RowError {
    RowError::new(&at.file, at.line, Some(field), msg)
}

/// Group a stream of rows into blocks. A row whose block has no block row is an error
/// naming that row; nothing of a bad batch should be stored.
pub fn group_blocks(
    rows: impl IntoIterator<Item = Located<Row>>,
) -> Result<BTreeMap<u64, BlockRows>, RowError> {
    let mut blocks: BTreeMap<u64, BlockRows> = BTreeMap::new();
    let mut orphans: Vec<(u64, Located<()>)> = Vec::new();
    for Located { file, line, row } in rows {
        let n = row.block_number();
        let e = blocks.entry(n).or_default();
        let at = Located {
            file: file.clone(),
            line,
            row: (),
        };
        match row {
            Row::Block(b) => {
                if let Some(prev) = &e.block {
                    return Err(RowError::new(
                        &file,
                        line,
                        Some("number"),
                        format!(
                            "block {n} appears twice (first at {}:{})",
                            prev.file, prev.line
                        ),
                    ));
                }
                e.block = Some(Located { file, line, row: b });
                continue;
            }
            Row::Transaction(t) => e.transactions.push(Located { file, line, row: t }),
            Row::Trace(t) => e.traces.push(Located { file, line, row: t }),
            Row::TokenTransfer(t) => e.token_transfers.push(Located { file, line, row: t }),
            Row::Log(l) => e.logs.push(Located { file, line, row: l }),
        }
        orphans.push((n, at));
    }
    for (n, at) in orphans {
        if blocks.get(&n).is_none_or(|b| b.block.is_none()) {
            return Err(RowError::new(&at.file, at.line, Some("block_number"), format!("block {n} is not among the blocks read; give the blocks file of the same range")));
        }
    }
    for b in blocks.values_mut() {
        b.transactions.sort_by_key(|t| t.row.transaction_index);
        b.token_transfers.sort_by_key(|t| t.row.log_index);
        b.logs.sort_by_key(|t| t.row.log_index);
    }
    Ok(blocks)
}

/// The movements of one block, after checking its rows agree with each other.
pub fn block_movements(b: &BlockRows) -> Result<Vec<Movement>, RowError> {
    let Some(block) = &b.block else {
        let first = b
            .transactions
            .first()
            .map(|t| (t.file.clone(), t.line))
            .unwrap_or_else(|| ("?".into(), 0));
        return Err(RowError::new(
            &first.0,
            first.1,
            Some("block_number"),
            "no block row for these rows",
        ));
    };
    let n = block.row.number;
    let base_fee = block.row.base_fee_per_gas;
    let mut out = Vec::new();

    let mut tx_by_hash: HashMap<B256, &Located<Transaction>> = HashMap::new();
    for t in &b.transactions {
        if tx_by_hash.insert(t.row.hash, t).is_some() {
            return Err(err(t, "hash", "the transaction appears twice in its block"));
        }
    }
    let mut traces_by_tx: HashMap<B256, Vec<&Located<Trace>>> = HashMap::new();
    let mut block_traces = Vec::new();
    for t in &b.traces {
        match t.row.transaction_hash {
            Some(h) => {
                if !tx_by_hash.contains_key(&h) && !b.transactions.is_empty() {
                    return Err(err(
                        t,
                        "transaction_hash",
                        format!("trace of a transaction that is not in block {n}"),
                    ));
                }
                traces_by_tx.entry(h).or_default().push(t);
            }
            None => block_traces.push(t),
        }
    }

    for tx in &b.transactions {
        let t = &tx.row;
        let idx = Some(t.transaction_index as u32);
        let traces = traces_by_tx.get(&t.hash);
        let root = traces.and_then(|ts| ts.iter().find(|x| x.row.trace_address.is_empty()));
        let failed =
            t.failed() || (t.receipt_status.is_none() && root.is_some_and(|r| r.row.failed_here()));

        // Gas first: paid whether or not the transaction succeeded.
        if let Some(gas_used) = t.receipt_gas_used {
            let fee = U256::from(gas_used) * t.paid_gas_price();
            let burnt = base_fee
                .map(|b| (b * U256::from(gas_used)).min(fee))
                .unwrap_or(U256::ZERO);
            let tip = fee - burnt;
            if !tip.is_zero() {
                out.push(mv(
                    n,
                    idx,
                    MovementKind::Fee,
                    Asset::Native,
                    t.from_address,
                    block.row.miner,
                    tip,
                ));
            }
            if !burnt.is_zero() {
                out.push(mv(
                    n,
                    idx,
                    MovementKind::Burn,
                    Asset::Native,
                    t.from_address,
                    SINK,
                    burnt,
                ));
            }
        }

        match traces {
            Some(ts) => {
                if let Some(r) = root {
                    check_root(t, r, failed)?;
                }
                if !failed {
                    trace_movements(n, idx, ts, &mut out);
                }
            }
            None if !failed => {
                if let Some(to) = t.to_address {
                    if !t.value.is_zero() {
                        out.push(mv(
                            n,
                            idx,
                            MovementKind::Value,
                            Asset::Native,
                            t.from_address,
                            to,
                            t.value,
                        ));
                    }
                } else if let Some(c) = t.receipt_contract_address {
                    out.push(mv(
                        n,
                        idx,
                        MovementKind::Create,
                        Asset::Native,
                        t.from_address,
                        c,
                        t.value,
                    ));
                }
            }
            None => {}
        }
    }

    let mut tt_seen = HashSet::new();
    for tt in &b.token_transfers {
        let r = &tt.row;
        if !tt_seen.insert((r.transaction_hash, r.log_index)) {
            return Err(err(tt, "log_index", "the same log appears twice"));
        }
        let tx = tx_by_hash.get(&r.transaction_hash);
        if tx.is_none() && !b.transactions.is_empty() {
            return Err(err(
                tt,
                "transaction_hash",
                format!("token transfer of a transaction that is not in block {n}"),
            ));
        }
        // A failed transaction has no logs; a row claiming one is bad data, not a move.
        if tx.is_some_and(|t| t.row.failed()) {
            return Err(err(
                tt,
                "transaction_hash",
                "token transfer in a failed transaction (failed transactions emit no logs)",
            ));
        }
        out.push(Movement {
            block: n,
            tx_index: tx.map(|t| t.row.transaction_index as u32),
            kind: MovementKind::Token,
            asset: Asset::Token(r.token_address),
            from: r.from_address,
            to: r.to_address,
            amount: r.value,
            trace_address: Vec::new(),
            log_index: Some(r.log_index),
        });
    }

    for r in block_traces {
        if r.row.trace_type == TraceType::Reward && !r.row.failed_here() {
            if let (Some(to), Some(v)) = (r.row.to_address, r.row.value) {
                out.push(mv(
                    n,
                    None,
                    MovementKind::Reward,
                    Asset::Native,
                    SINK,
                    to,
                    v,
                ));
            }
        }
    }
    for w in &block.row.withdrawals {
        out.push(mv(
            n,
            None,
            MovementKind::Withdrawal,
            Asset::Native,
            SINK,
            w.address,
            U256::from(w.amount) * U256::from(GWEI),
        ));
    }
    Ok(out)
}

fn mv(
    block: u64,
    tx_index: Option<u32>,
    kind: MovementKind,
    asset: Asset,
    from: Address,
    to: Address,
    amount: U256,
) -> Movement {
    Movement {
        block,
        tx_index,
        kind,
        asset,
        from,
        to,
        amount,
        trace_address: Vec::new(),
        log_index: None,
    }
}

/// The top frame is the transaction itself: same sender, same value, same fate.
fn check_root(t: &Transaction, r: &Located<Trace>, failed: bool) -> Result<(), RowError> {
    let v = r.row.value.unwrap_or(U256::ZERO);
    if v != t.value {
        return Err(err(
            r,
            "value",
            format!(
                "top frame moves {v} wei but its transaction {} moves {} wei",
                t.hash, t.value
            ),
        ));
    }
    if let Some(from) = r.row.from_address {
        if from != t.from_address {
            return Err(err(
                r,
                "from_address",
                format!(
                    "top frame is sent by {from} but its transaction by {}",
                    t.from_address
                ),
            ));
        }
    }
    if t.receipt_status == Some(1) && r.row.failed_here() {
        return Err(err(
            r,
            "status",
            format!("top frame failed but its transaction {} succeeded", t.hash),
        ));
    }
    if failed && t.receipt_status.is_some() && !r.row.failed_here() && r.row.status.is_some() {
        return Err(err(
            r,
            "status",
            format!("top frame succeeded but its transaction {} failed", t.hash),
        ));
    }
    Ok(())
}

fn trace_movements(n: u64, idx: Option<u32>, ts: &[&Located<Trace>], out: &mut Vec<Movement>) {
    let failed: Vec<&[u32]> = ts
        .iter()
        .filter(|t| t.row.failed_here())
        .map(|t| t.row.trace_address.as_slice())
        .collect();
    let mut frames: Vec<&Trace> = ts.iter().map(|t| &t.row).collect();
    frames.sort_by(|a, b| a.trace_address.cmp(&b.trace_address));
    for f in frames {
        if failed.iter().any(|p| f.trace_address.starts_with(p)) {
            continue;
        }
        let value = f.value.unwrap_or(U256::ZERO);
        let (Some(from), Some(to)) = (f.from_address, f.to_address) else {
            continue;
        };
        let kind = match f.trace_type {
            TraceType::Call => {
                // delegatecall/staticcall carry no value; callcode keeps it with the caller.
                if !matches!(f.call_type.as_deref(), None | Some("call")) || value.is_zero() {
                    continue;
                }
                if f.trace_address.is_empty() {
                    MovementKind::Value
                } else {
                    MovementKind::Internal
                }
            }
            TraceType::Create => MovementKind::Create,
            TraceType::Suicide => MovementKind::SelfDestruct,
            TraceType::Reward | TraceType::Other => continue,
        };
        out.push(Movement {
            block: n,
            tx_index: idx,
            kind,
            asset: Asset::Native,
            from,
            to,
            amount: value,
            trace_address: f.trace_address.clone(),
            log_index: None,
        });
    }
}
