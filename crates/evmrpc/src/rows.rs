//! A node's block as ethereum-etl rows (`cointrail_evm::etl`: `blocks`, `transactions` with
//! the receipt fields, `traces`, `token_transfers`, `logs`), the very types the etl file
//! readers produce, so node and files share one ingest path (`EvmIndex::ingest_block`) and
//! the index cannot tell a node from a file.
//!
//! Traces: geth `callTracer` frames are flattened the way ethereum-etl's geth extraction
//! does (depth-first, `trace_address` the child indices, the root frame included with an
//! empty address); parity `trace_block` rows map one to one. `status` is 0 for a frame that
//! failed or sits under one that failed (its value moved nothing), else 1.
//!
//! Each row's origin (`Located`) names the RPC method and the block (`file`) and the row's
//! position in the node's answer (`line`, from 1), so a row the movement model refuses is
//! reported as `debug_traceBlockByHash block 7:3: field `value`: …`.

use std::sync::Arc;

use crate::node::{FetchedBlock, Traces};
use alloy_consensus::Transaction as _;
use alloy_eips::Typed2718 as _;
use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_trace::geth::CallFrame;
use alloy_rpc_types_trace::parity::{Action, RewardType, TraceOutput};
use cointrail_evm::etl::{
    Block, Located, Log, TokenTransfer, Trace, TraceType, Transaction, Withdrawal,
};
use cointrail_evm::movement::BlockRows;

/// `Transfer(address,address,uint256)`.
pub const TRANSFER_TOPIC: B256 =
    alloy_primitives::b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

fn u64_of(v: U256, what: &str, n: u64) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("block {n}: {what} {v} does not fit 64 bits"))
}

fn at<T>(file: &Arc<str>, line: usize, row: T) -> Located<T> {
    Located {
        file: file.clone(),
        line: line as u64 + 1,
        row,
    }
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
    let src_block: Arc<str> = format!("eth_getBlockByNumber block {n}").into();
    let src_receipts: Arc<str> = format!("eth_getBlockReceipts block {n}").into();
    let withdrawals = b
        .withdrawals
        .as_ref()
        .map(|w| {
            w.iter()
                .map(|w| Withdrawal {
                    index: w.index,
                    validator_index: w.validator_index,
                    address: w.address,
                    amount: w.amount,
                })
                .collect()
        })
        .unwrap_or_default();
    let block = Block {
        number: n,
        hash: h.hash,
        parent_hash: h.parent_hash,
        miner: h.beneficiary,
        timestamp: h.timestamp,
        transaction_count: txs.len() as u64,
        gas_used: h.gas_used,
        gas_limit: h.gas_limit,
        base_fee_per_gas: h.base_fee_per_gas.map(U256::from),
        withdrawals,
    };
    let mut rows = BlockRows::default();
    let mut log_no = 0usize;
    for (i, (tx, r)) in txs.iter().zip(&f.receipts).enumerate() {
        let hash = *tx.inner.tx_hash();
        if r.transaction_hash != hash {
            return Err(format!(
                "block {n}: receipt {i} is for {} not {hash}",
                r.transaction_hash
            ));
        }
        let inner = tx.inner.inner();
        rows.transactions.push(at(
            &src_block,
            i,
            Transaction {
                hash,
                nonce: inner.nonce(),
                block_hash: Some(h.hash),
                block_number: n,
                transaction_index: i as u64,
                from_address: tx.inner.signer(),
                to_address: inner.to(),
                value: inner.value(),
                gas: inner.gas_limit(),
                gas_price: Some(U256::from(
                    inner.gas_price().unwrap_or(r.effective_gas_price),
                )),
                block_timestamp: Some(h.timestamp),
                max_fee_per_gas: inner
                    .is_dynamic_fee()
                    .then(|| U256::from(inner.max_fee_per_gas())),
                max_priority_fee_per_gas: inner.max_priority_fee_per_gas().map(U256::from),
                transaction_type: Some(inner.ty() as u64),
                receipt_gas_used: Some(r.gas_used),
                receipt_cumulative_gas_used: Some(r.inner.cumulative_gas_used()),
                receipt_contract_address: r.contract_address,
                receipt_status: Some(r.status() as u64),
                receipt_effective_gas_price: Some(U256::from(r.effective_gas_price)),
            },
        ));
        for l in r.inner.logs() {
            let log_index = l
                .log_index
                .ok_or_else(|| format!("block {n}: a log of {hash} has no logIndex"))?;
            let topics = l.topics().to_vec();
            if let Some(t) = token_transfer(&topics, &l.data().data) {
                rows.token_transfers.push(at(
                    &src_receipts,
                    log_no,
                    TokenTransfer {
                        token_address: l.address(),
                        from_address: t.0,
                        to_address: t.1,
                        value: t.2,
                        transaction_hash: hash,
                        log_index,
                        block_number: n,
                    },
                ));
            }
            rows.logs.push(at(
                &src_receipts,
                log_no,
                Log {
                    log_index,
                    transaction_hash: hash,
                    transaction_index: i as u64,
                    address: l.address(),
                    data: format!("{}", l.data().data),
                    topics,
                    block_number: n,
                },
            ));
            log_no += 1;
        }
    }
    rows.traces = trace_rows(f, &rows.transactions)?;
    rows.block = Some(at(&src_block, 0, block));
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

fn trace_id(kind: TraceType, tx: Option<B256>, n: u64, addr: &[u32]) -> String {
    let mut s = match tx {
        Some(t) => format!("{}_{t:#x}", kind.as_str()),
        None => format!("{}_{n}", kind.as_str()),
    };
    for a in addr {
        s.push('_');
        s.push_str(&a.to_string());
    }
    s
}

fn index_u32(v: usize, n: u64) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("block {n}: trace address index {v} does not fit 32 bits"))
}

fn trace_rows(
    f: &FetchedBlock,
    txs: &[Located<Transaction>],
) -> Result<Vec<Located<Trace>>, String> {
    let n = f.block.header.number;
    let mut out: Vec<Trace> = Vec::new();
    let src: Arc<str> = match &f.traces {
        Traces::Geth(_) => format!("debug_traceBlockByHash block {n}"),
        Traces::Parity(_) => format!("trace_block block {n}"),
    }
    .into();
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
                if *h != tx.row.hash {
                    return Err(format!(
                        "block {n}: call trace {i} is for {h}, expected {}",
                        tx.row.hash
                    ));
                }
                let mut addr = Vec::new();
                flatten(root, n, &tx.row, false, &mut addr, &mut out)?;
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
                let addr: Vec<u32> = tr
                    .trace_address
                    .iter()
                    .map(|a| index_u32(*a, n))
                    .collect::<Result<_, _>>()?;
                let (gas_used, created) = match &tr.result {
                    Some(TraceOutput::Call(c)) => (Some(c.gas_used), None),
                    Some(TraceOutput::Create(c)) => (Some(c.gas_used), Some(c.address)),
                    None => (None, None),
                };
                let base = Trace {
                    block_number: n,
                    transaction_hash: x.transaction_hash,
                    transaction_index: x.transaction_position,
                    from_address: None,
                    to_address: None,
                    value: Some(U256::ZERO),
                    trace_type: TraceType::Call,
                    call_type: None,
                    reward_type: None,
                    gas: None,
                    gas_used,
                    subtraces: tr.subtraces as u64,
                    trace_address: addr,
                    error: tr.error.clone(),
                    status: Some(u64::from(!under_failed)),
                    trace_id: None,
                };
                let mut row = match &tr.action {
                    Action::Call(c) => Trace {
                        from_address: Some(c.from),
                        to_address: Some(c.to),
                        value: Some(c.value),
                        trace_type: TraceType::Call,
                        call_type: Some(format!("{:?}", c.call_type).to_lowercase()),
                        gas: Some(c.gas),
                        ..base
                    },
                    Action::Create(c) => Trace {
                        from_address: Some(c.from),
                        to_address: created,
                        value: Some(c.value),
                        trace_type: TraceType::Create,
                        gas: Some(c.gas),
                        ..base
                    },
                    Action::Selfdestruct(s) => Trace {
                        from_address: Some(s.address),
                        to_address: Some(s.refund_address),
                        value: Some(s.balance),
                        trace_type: TraceType::Suicide,
                        ..base
                    },
                    Action::Reward(r) => Trace {
                        to_address: Some(r.author),
                        value: Some(r.value),
                        trace_type: TraceType::Reward,
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
                row.trace_id = Some(trace_id(
                    row.trace_type,
                    row.transaction_hash,
                    n,
                    &row.trace_address,
                ));
                out.push(row);
            }
        }
    }
    Ok(out
        .into_iter()
        .enumerate()
        .map(|(i, t)| at(&src, i, t))
        .collect())
}

/// Depth-first, parent before children; `trace_address` is the path of child indices.
fn flatten(
    f: &CallFrame,
    n: u64,
    tx: &Transaction,
    parent_failed: bool,
    addr: &mut Vec<u32>,
    out: &mut Vec<Trace>,
) -> Result<(), String> {
    let failed = parent_failed || f.error.is_some();
    let typ = f.typ.to_ascii_uppercase();
    let (trace_type, call_type) = match typ.as_str() {
        "CALL" | "DELEGATECALL" | "STATICCALL" | "CALLCODE" => {
            (TraceType::Call, Some(typ.to_lowercase()))
        }
        "CREATE" | "CREATE2" => (TraceType::Create, None),
        "SELFDESTRUCT" | "SUICIDE" => (TraceType::Suicide, None),
        other => {
            return Err(format!(
                "block {n}: transaction {}: call frame of unknown type {other:?}",
                tx.hash
            ))
        }
    };
    let suicide = trace_type == TraceType::Suicide;
    let gas = |v: U256, what: &str| u64_of(v, what, n);
    out.push(Trace {
        block_number: n,
        transaction_hash: Some(tx.hash),
        transaction_index: Some(tx.transaction_index),
        from_address: Some(f.from),
        to_address: f.to,
        value: Some(f.value.unwrap_or_default()),
        trace_type,
        call_type,
        reward_type: None,
        gas: (!suicide).then(|| gas(f.gas, "gas")).transpose()?,
        gas_used: (!suicide).then(|| gas(f.gas_used, "gasUsed")).transpose()?,
        subtraces: f.calls.len() as u64,
        trace_address: addr.clone(),
        error: f.error.clone(),
        status: Some(u64::from(!failed)),
        trace_id: Some(trace_id(trace_type, Some(tx.hash), n, addr)),
    });
    for (i, c) in f.calls.iter().enumerate() {
        addr.push(index_u32(i, n)?);
        flatten(c, n, tx, failed, addr, out)?;
        addr.pop();
    }
    Ok(())
}
