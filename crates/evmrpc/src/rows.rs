//! A node's block as ethereum-etl rows (the schema of `blocks`, `transactions` with the
//! receipt fields, `traces`, `token_transfers`, `logs`): what `ethereumetl export_all`
//! would write for the same block, so the index cannot tell a node from a file.
//!
//! Traces: geth `callTracer` frames are flattened the way ethereum-etl's geth extraction
//! does (depth-first, `trace_address` the child indices, the root frame included with an
//! empty address); parity `trace_block` rows map one to one. `status` is 0 for a frame that
//! failed or sits under one that failed (its value moved nothing), else 1.

use crate::node::{FetchedBlock, Traces};
use alloy_consensus::Transaction as _;
use alloy_eips::Typed2718 as _;
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rpc_types_trace::geth::CallFrame;
use alloy_rpc_types_trace::parity::{Action, RewardType, TraceOutput};

/// `Transfer(address,address,uint256)`.
pub const TRANSFER_TOPIC: B256 =
    alloy_primitives::b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
    pub nonce: String,
    pub sha3_uncles: B256,
    pub logs_bloom: Bytes,
    pub transactions_root: B256,
    pub state_root: B256,
    pub receipts_root: B256,
    pub miner: Address,
    pub difficulty: U256,
    pub total_difficulty: Option<U256>,
    pub size: Option<u64>,
    pub extra_data: Bytes,
    pub gas_limit: u64,
    pub gas_used: u64,
    pub timestamp: u64,
    pub transaction_count: u64,
    pub base_fee_per_gas: Option<u64>,
    pub withdrawals_root: Option<B256>,
    pub withdrawals: Vec<WithdrawalRow>,
    pub blob_gas_used: Option<u64>,
    pub excess_blob_gas: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRow {
    pub index: u64,
    pub validator_index: u64,
    pub address: Address,
    /// Gwei, as in the block.
    pub amount: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    pub hash: B256,
    pub nonce: u64,
    pub transaction_index: u64,
    pub from_address: Address,
    pub to_address: Option<Address>,
    pub value: U256,
    pub gas: u64,
    pub gas_price: Option<u128>,
    pub input: Bytes,
    pub block_timestamp: u64,
    pub block_number: u64,
    pub block_hash: B256,
    pub max_fee_per_gas: Option<u128>,
    pub max_priority_fee_per_gas: Option<u128>,
    pub transaction_type: u8,
    pub receipt_cumulative_gas_used: u64,
    pub receipt_gas_used: u64,
    pub receipt_contract_address: Option<Address>,
    pub receipt_root: Option<B256>,
    pub receipt_status: Option<u8>,
    pub receipt_effective_gas_price: u128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRow {
    pub block_number: u64,
    /// `None` for block rewards.
    pub transaction_hash: Option<B256>,
    pub transaction_index: Option<u64>,
    pub from_address: Option<Address>,
    pub to_address: Option<Address>,
    pub value: U256,
    pub input: Option<Bytes>,
    pub output: Option<Bytes>,
    /// call, create, suicide, reward.
    pub trace_type: String,
    /// call, delegatecall, staticcall, callcode (calls only).
    pub call_type: Option<String>,
    pub reward_type: Option<String>,
    pub gas: Option<u64>,
    pub gas_used: Option<u64>,
    pub subtraces: u64,
    pub trace_address: Vec<u64>,
    pub error: Option<String>,
    pub status: u8,
    pub trace_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub log_index: u64,
    pub transaction_hash: B256,
    pub transaction_index: u64,
    pub address: Address,
    pub data: Bytes,
    pub topics: Vec<B256>,
    pub block_number: u64,
    pub block_hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTransferRow {
    pub token_address: Address,
    pub from_address: Address,
    pub to_address: Address,
    /// The amount (ERC-20) or the token id (ERC-721, where it is the fourth topic).
    pub value: U256,
    pub transaction_hash: B256,
    pub log_index: u64,
    pub block_number: u64,
    pub block_hash: B256,
}

/// One block's rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockRows {
    pub block: Option<BlockRow>,
    pub transactions: Vec<TransactionRow>,
    pub traces: Vec<TraceRow>,
    pub logs: Vec<LogRow>,
    pub token_transfers: Vec<TokenTransferRow>,
}

fn u64_of(v: U256, what: &str, n: u64) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("block {n}: {what} {v} does not fit 64 bits"))
}

/// The rows of one fetched block. Errors name the block and what does not add up.
pub fn to_rows(f: &FetchedBlock) -> Result<BlockRows, String> {
    let b = &f.block;
    let h = &b.header;
    let n = h.number;
    let txs = b
        .transactions
        .as_transactions()
        .ok_or_else(|| format!("block {n}: transactions came as hashes"))?;
    let withdrawals = b
        .withdrawals
        .as_ref()
        .map(|w| {
            w.iter()
                .map(|w| WithdrawalRow {
                    index: w.index,
                    validator_index: w.validator_index,
                    address: w.address,
                    amount: w.amount,
                })
                .collect()
        })
        .unwrap_or_default();
    let block = BlockRow {
        number: n,
        hash: h.hash,
        parent_hash: h.parent_hash,
        nonce: format!("{:#x}", h.nonce),
        sha3_uncles: h.ommers_hash,
        logs_bloom: Bytes::copy_from_slice(h.logs_bloom.as_slice()),
        transactions_root: h.transactions_root,
        state_root: h.state_root,
        receipts_root: h.receipts_root,
        miner: h.beneficiary,
        difficulty: h.difficulty,
        total_difficulty: h.total_difficulty,
        size: h.size.map(|s| u64_of(s, "size", n)).transpose()?,
        extra_data: h.extra_data.clone(),
        gas_limit: h.gas_limit,
        gas_used: h.gas_used,
        timestamp: h.timestamp,
        transaction_count: txs.len() as u64,
        base_fee_per_gas: h.base_fee_per_gas,
        withdrawals_root: h.withdrawals_root,
        withdrawals,
        blob_gas_used: h.blob_gas_used,
        excess_blob_gas: h.excess_blob_gas,
    };
    let mut rows = BlockRows::default();
    for (i, (tx, r)) in txs.iter().zip(&f.receipts).enumerate() {
        let hash = *tx.inner.tx_hash();
        if r.transaction_hash != hash {
            return Err(format!(
                "block {n}: receipt {i} is for {} not {hash}",
                r.transaction_hash
            ));
        }
        let inner = tx.inner.inner();
        rows.transactions.push(TransactionRow {
            hash,
            nonce: inner.nonce(),
            transaction_index: i as u64,
            from_address: tx.inner.signer(),
            to_address: inner.to(),
            value: inner.value(),
            gas: inner.gas_limit(),
            gas_price: Some(inner.gas_price().unwrap_or_else(|| r.effective_gas_price)),
            input: inner.input().clone(),
            block_timestamp: h.timestamp,
            block_number: n,
            block_hash: h.hash,
            max_fee_per_gas: inner.is_dynamic_fee().then(|| inner.max_fee_per_gas()),
            max_priority_fee_per_gas: inner.max_priority_fee_per_gas(),
            transaction_type: inner.ty(),
            receipt_cumulative_gas_used: r.inner.cumulative_gas_used(),
            receipt_gas_used: r.gas_used,
            receipt_contract_address: r.contract_address,
            receipt_root: None,
            receipt_status: Some(r.status() as u8),
            receipt_effective_gas_price: r.effective_gas_price,
        });
        for l in r.inner.logs() {
            let log_index = l
                .log_index
                .ok_or_else(|| format!("block {n}: a log of {hash} has no logIndex"))?;
            let topics = l.topics().to_vec();
            rows.logs.push(LogRow {
                log_index,
                transaction_hash: hash,
                transaction_index: i as u64,
                address: l.address(),
                data: l.data().data.clone(),
                topics: topics.clone(),
                block_number: n,
                block_hash: h.hash,
            });
            if let Some(t) = token_transfer(&topics, &l.data().data) {
                rows.token_transfers.push(TokenTransferRow {
                    token_address: l.address(),
                    from_address: t.0,
                    to_address: t.1,
                    value: t.2,
                    transaction_hash: hash,
                    log_index,
                    block_number: n,
                    block_hash: h.hash,
                });
            }
        }
    }
    rows.traces = trace_rows(f, &rows.transactions)?;
    rows.block = Some(block);
    Ok(rows)
}

/// A `Transfer` log as ethereum-etl reads it: ERC-20 (3 topics, amount in data) or ERC-721
/// (4 topics, the id indexed); anything else is not a token transfer.
fn token_transfer(topics: &[B256], data: &[u8]) -> Option<(Address, Address, U256)> {
    if topics.first() != Some(&TRANSFER_TOPIC) {
        return None;
    }
    let addr = |t: &B256| Address::from_slice(&t[12..]);
    match topics.len() {
        3 if data.len() == 32 => Some((
            addr(&topics[1]),
            addr(&topics[2]),
            U256::from_be_slice(data),
        )),
        4 if data.is_empty() => Some((
            addr(&topics[1]),
            addr(&topics[2]),
            U256::from_be_bytes(topics[3].0),
        )),
        _ => None,
    }
}

fn trace_id(kind: &str, tx: Option<B256>, n: u64, addr: &[u64]) -> String {
    let mut s = match tx {
        Some(t) => format!("{kind}_{t:#x}"),
        None => format!("{kind}_{n}"),
    };
    for a in addr {
        s.push('_');
        s.push_str(&a.to_string());
    }
    s
}

fn trace_rows(f: &FetchedBlock, txs: &[TransactionRow]) -> Result<Vec<TraceRow>, String> {
    let n = f.block.header.number;
    let mut out = Vec::new();
    match &f.traces {
        Traces::Geth(frames) => {
            if frames.len() != txs.len() {
                return Err(format!(
                    "block {n}: {} call traces for {} transactions",
                    frames.len(),
                    txs.len()
                ));
            }
            for (i, ((h, root), tx)) in frames.iter().zip(txs).enumerate() {
                if *h != tx.hash {
                    return Err(format!(
                        "block {n}: call trace {i} is for {h}, expected {}",
                        tx.hash
                    ));
                }
                let mut addr = Vec::new();
                flatten(root, n, tx, false, &mut addr, &mut out)?;
            }
        }
        Traces::Parity(t) => {
            // A failed frame fails its subtree: collect the failed addresses per tx first.
            let failed: Vec<(Option<B256>, &[usize])> = t
                .iter()
                .filter(|x| x.trace.error.is_some())
                .map(|x| (x.transaction_hash, x.trace.trace_address.as_slice()))
                .collect();
            for x in t {
                let tr = &x.trace;
                let under_failed = failed
                    .iter()
                    .any(|(ft, fa)| *ft == x.transaction_hash && tr.trace_address.starts_with(fa));
                let addr: Vec<u64> = tr.trace_address.iter().map(|a| *a as u64).collect();
                let (gas_used, output, created) = match &tr.result {
                    Some(TraceOutput::Call(c)) => (Some(c.gas_used), Some(c.output.clone()), None),
                    Some(TraceOutput::Create(c)) => {
                        (Some(c.gas_used), Some(c.code.clone()), Some(c.address))
                    }
                    None => (None, None, None),
                };
                let base = TraceRow {
                    block_number: n,
                    transaction_hash: x.transaction_hash,
                    transaction_index: x.transaction_position,
                    from_address: None,
                    to_address: None,
                    value: U256::ZERO,
                    input: None,
                    output,
                    trace_type: String::new(),
                    call_type: None,
                    reward_type: None,
                    gas: None,
                    gas_used,
                    subtraces: tr.subtraces as u64,
                    trace_address: addr.clone(),
                    error: tr.error.clone(),
                    status: u8::from(!under_failed),
                    trace_id: String::new(),
                };
                let row = match &tr.action {
                    Action::Call(c) => TraceRow {
                        from_address: Some(c.from),
                        to_address: Some(c.to),
                        value: c.value,
                        input: Some(c.input.clone()),
                        trace_type: "call".into(),
                        call_type: Some(format!("{:?}", c.call_type).to_lowercase()),
                        gas: Some(c.gas),
                        ..base
                    },
                    Action::Create(c) => TraceRow {
                        from_address: Some(c.from),
                        to_address: created,
                        value: c.value,
                        input: Some(c.init.clone()),
                        trace_type: "create".into(),
                        gas: Some(c.gas),
                        ..base
                    },
                    Action::Selfdestruct(s) => TraceRow {
                        from_address: Some(s.address),
                        to_address: Some(s.refund_address),
                        value: s.balance,
                        trace_type: "suicide".into(),
                        ..base
                    },
                    Action::Reward(r) => TraceRow {
                        to_address: Some(r.author),
                        value: r.value,
                        trace_type: "reward".into(),
                        reward_type: Some(
                            match r.reward_type {
                                RewardType::Block => "block",
                                RewardType::Uncle => "uncle",
                            }
                            .into(),
                        ),
                        ..base
                    },
                };
                let mut row = row;
                row.trace_id =
                    trace_id(&row.trace_type, row.transaction_hash, n, &row.trace_address);
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// Depth-first, parent before children; `trace_address` is the path of child indices.
fn flatten(
    f: &CallFrame,
    n: u64,
    tx: &TransactionRow,
    parent_failed: bool,
    addr: &mut Vec<u64>,
    out: &mut Vec<TraceRow>,
) -> Result<(), String> {
    let failed = parent_failed || f.error.is_some();
    let typ = f.typ.to_ascii_uppercase();
    let (trace_type, call_type) = match typ.as_str() {
        "CALL" | "DELEGATECALL" | "STATICCALL" | "CALLCODE" => ("call", Some(typ.to_lowercase())),
        "CREATE" | "CREATE2" => ("create", None),
        "SELFDESTRUCT" | "SUICIDE" => ("suicide", None),
        other => {
            return Err(format!(
                "block {n}: transaction {}: call frame of unknown type {other:?}",
                tx.hash
            ))
        }
    };
    let gas = |v: U256, what: &str| u64_of(v, what, n);
    let row = TraceRow {
        block_number: n,
        transaction_hash: Some(tx.hash),
        transaction_index: Some(tx.transaction_index),
        from_address: Some(f.from),
        to_address: f.to,
        value: f.value.unwrap_or_default(),
        input: (trace_type != "suicide").then(|| f.input.clone()),
        output: f.output.clone(),
        trace_type: trace_type.to_string(),
        call_type,
        reward_type: None,
        gas: (trace_type != "suicide")
            .then(|| gas(f.gas, "gas"))
            .transpose()?,
        gas_used: (trace_type != "suicide")
            .then(|| gas(f.gas_used, "gasUsed"))
            .transpose()?,
        subtraces: f.calls.len() as u64,
        trace_address: addr.clone(),
        error: f.error.clone(),
        status: u8::from(!failed),
        trace_id: trace_id(trace_type, Some(tx.hash), n, addr),
    };
    out.push(row);
    for (i, c) in f.calls.iter().enumerate() {
        addr.push(i as u64);
        flatten(c, n, tx, failed, addr, out)?;
        addr.pop();
    }
    Ok(())
}
