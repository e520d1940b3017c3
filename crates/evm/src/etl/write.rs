//! Write rows as ethereum-etl JSON lines (`blocks.json`, `transactions.json`,
//! `traces.json`, `token_transfers.json`, `logs.json`), the files `ethereumetl export_all`
//! writes and this crate's readers take back unchanged.
//!
//! Columns are the etl names, with each row's `type` as ethereum-etl's JSON exporter adds
//! it; only the columns the rows hold are written (no bytecode, call input or blooms).
//! 256-bit amounts are decimal strings: a JSON number above 2^53 loses digits in most
//! readers (BigQuery's JSON export does the same); addresses and hashes are lowercase 0x.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, U256};
use serde_json::{json, Map, Value};

use super::rows::{Block, Log, TokenRow, TokenTransfer, Trace, TraceType, Transaction};
use crate::movement::BlockRows;

/// The five tables, in the order `etl_files` reads them.
pub const TABLES: [&str; 5] = [
    "blocks",
    "transactions",
    "traces",
    "token_transfers",
    "logs",
];

fn a(x: &Address) -> Value {
    Value::String(format!("{x:#x}"))
}
fn oa(x: &Option<Address>) -> Value {
    x.as_ref().map_or(Value::Null, a)
}
fn h(x: &B256) -> Value {
    Value::String(format!("{x:#x}"))
}
fn oh(x: &Option<B256>) -> Value {
    x.as_ref().map_or(Value::Null, h)
}
fn u(x: &U256) -> Value {
    Value::String(x.to_string())
}
fn ou(x: &Option<U256>) -> Value {
    x.as_ref().map_or(Value::Null, u)
}

fn obj(kind: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(kind.into()));
    if let Value::Object(o) = v {
        m.extend(o);
    }
    Value::Object(m)
}

pub fn block_json(b: &Block) -> Value {
    obj(
        "block",
        json!({
            "number": b.number,
            "hash": h(&b.hash),
            "parent_hash": h(&b.parent_hash),
            "miner": a(&b.miner),
            "timestamp": b.timestamp,
            "transaction_count": b.transaction_count,
            "gas_used": b.gas_used,
            "gas_limit": b.gas_limit,
            "base_fee_per_gas": ou(&b.base_fee_per_gas),
            "withdrawals": b.withdrawals.iter().map(|w| json!({
                "index": w.index,
                "validator_index": w.validator_index,
                "address": a(&w.address),
                "amount": w.amount,
            })).collect::<Vec<_>>(),
        }),
    )
}

pub fn transaction_json(t: &Transaction) -> Value {
    obj(
        "transaction",
        json!({
            "hash": h(&t.hash),
            "nonce": t.nonce,
            "block_hash": oh(&t.block_hash),
            "block_number": t.block_number,
            "transaction_index": t.transaction_index,
            "from_address": a(&t.from_address),
            "to_address": oa(&t.to_address),
            "value": u(&t.value),
            "gas": t.gas,
            "gas_price": ou(&t.gas_price),
            "block_timestamp": t.block_timestamp,
            "max_fee_per_gas": ou(&t.max_fee_per_gas),
            "max_priority_fee_per_gas": ou(&t.max_priority_fee_per_gas),
            "transaction_type": t.transaction_type,
            "receipt_cumulative_gas_used": t.receipt_cumulative_gas_used,
            "receipt_gas_used": t.receipt_gas_used,
            "receipt_contract_address": oa(&t.receipt_contract_address),
            "receipt_status": t.receipt_status,
            "receipt_effective_gas_price": ou(&t.receipt_effective_gas_price),
        }),
    )
}

pub fn trace_json(t: &Trace) -> Value {
    obj(
        "trace",
        json!({
            "block_number": t.block_number,
            "transaction_hash": oh(&t.transaction_hash),
            "transaction_index": t.transaction_index,
            "from_address": oa(&t.from_address),
            "to_address": oa(&t.to_address),
            "value": ou(&t.value),
            // `other` is how the rows hold genesis and DAO-fork entries; etl says `genesis`.
            "trace_type": match t.trace_type {
                TraceType::Other => "genesis",
                k => k.as_str(),
            },
            "call_type": t.call_type,
            "reward_type": t.reward_type,
            "gas": t.gas,
            "gas_used": t.gas_used,
            "subtraces": t.subtraces,
            "trace_address": t.trace_address,
            "error": t.error,
            "status": t.status,
            "trace_id": t.trace_id,
        }),
    )
}

pub fn token_transfer_json(t: &TokenTransfer) -> Value {
    obj(
        "token_transfer",
        json!({
            "token_address": a(&t.token_address),
            "from_address": a(&t.from_address),
            "to_address": a(&t.to_address),
            "value": u(&t.value),
            "transaction_hash": h(&t.transaction_hash),
            "log_index": t.log_index,
            "block_number": t.block_number,
        }),
    )
}

pub fn log_json(l: &Log) -> Value {
    obj(
        "log",
        json!({
            "log_index": l.log_index,
            "transaction_hash": h(&l.transaction_hash),
            "transaction_index": l.transaction_index,
            "address": a(&l.address),
            "data": l.data,
            "topics": l.topics.iter().map(h).collect::<Vec<_>>(),
            "block_number": l.block_number,
        }),
    )
}

/// A `tokens` row as ethereum-etl writes it (`type` says the table, so a reader tells it
/// from the block tables by content; the total supply is a decimal number).
pub fn token_json(t: &TokenRow) -> Value {
    json!({
        "type": "token",
        "address": format!("{:#x}", t.address),
        "symbol": t.symbol,
        "name": t.name,
        "decimals": t.decimals,
        "total_supply": t.total_supply.map(|v| v.to_string()),
        "block_number": t.block_number,
    })
}

/// Write `tokens.json` (the etl `tokens` table) in `dir`, synced; the tables' rows are
/// written block by block, this one whole, as the etl's `export_tokens` does.
pub fn write_tokens(dir: &Path, rows: &[TokenRow]) -> std::io::Result<PathBuf> {
    let p = dir.join("tokens.json");
    let mut f = BufWriter::new(File::create(&p)?);
    for r in rows {
        serde_json::to_writer(&mut f, &token_json(r))?;
        f.write_all(b"\n")?;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(p)
}

/// Counts of rows written per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub blocks: u64,
    pub transactions: u64,
    pub traces: u64,
    pub token_transfers: u64,
    pub logs: u64,
}

/// The five files of one export, written block by block (blocks must come in order).
pub struct EtlWriter {
    dir: PathBuf,
    files: [BufWriter<File>; 5],
    written: Written,
}

impl EtlWriter {
    /// Create (or replace) the five files in `dir`.
    pub fn create(dir: &Path) -> std::io::Result<EtlWriter> {
        std::fs::create_dir_all(dir)?;
        let open = |t: &str| -> std::io::Result<BufWriter<File>> {
            Ok(BufWriter::new(File::create(dir.join(format!("{t}.json")))?))
        };
        Ok(EtlWriter {
            dir: dir.to_path_buf(),
            files: [
                open(TABLES[0])?,
                open(TABLES[1])?,
                open(TABLES[2])?,
                open(TABLES[3])?,
                open(TABLES[4])?,
            ],
            written: Written::default(),
        })
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        TABLES
            .iter()
            .map(|t| self.dir.join(format!("{t}.json")))
            .collect()
    }

    fn line(&mut self, table: usize, v: &Value) -> std::io::Result<()> {
        let f = &mut self.files[table];
        serde_json::to_writer(&mut *f, v)?;
        f.write_all(b"\n")
    }

    pub fn write_block(&mut self, b: &BlockRows) -> std::io::Result<()> {
        if let Some(x) = &b.block {
            self.line(0, &block_json(&x.row))?;
            self.written.blocks += 1;
        }
        for x in &b.transactions {
            self.line(1, &transaction_json(&x.row))?;
            self.written.transactions += 1;
        }
        for x in &b.traces {
            self.line(2, &trace_json(&x.row))?;
            self.written.traces += 1;
        }
        for x in &b.token_transfers {
            self.line(3, &token_transfer_json(&x.row))?;
            self.written.token_transfers += 1;
        }
        for x in &b.logs {
            self.line(4, &log_json(&x.row))?;
            self.written.logs += 1;
        }
        Ok(())
    }

    /// Flush and sync every file; returns the counts.
    pub fn finish(self) -> std::io::Result<Written> {
        for f in self.files {
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etl::{BlockStream, Located, Withdrawal};
    use std::sync::Arc;

    fn at<T>(row: T) -> Located<T> {
        Located {
            file: Arc::from("t"),
            line: 1,
            row,
        }
    }

    #[test]
    fn rows_written_read_back_unchanged() {
        let big = U256::MAX - U256::from(7u64);
        let tx = B256::repeat_byte(0xab);
        let x = |b: u8| Address::repeat_byte(b);
        let mut rows = BlockRows {
            block: Some(at(Block {
                number: 9,
                hash: B256::repeat_byte(1),
                parent_hash: B256::repeat_byte(2),
                miner: x(3),
                timestamp: 1_700_000_000,
                transaction_count: 1,
                gas_used: 21_000,
                gas_limit: 30_000_000,
                base_fee_per_gas: Some(U256::from(7u64)),
                withdrawals: vec![Withdrawal {
                    index: 4,
                    validator_index: 5,
                    address: x(6),
                    amount: 32_000_000_000,
                }],
            })),
            ..Default::default()
        };
        rows.transactions.push(at(Transaction {
            hash: tx,
            nonce: 0,
            block_hash: Some(B256::repeat_byte(1)),
            block_number: 9,
            transaction_index: 0,
            from_address: x(0xa),
            to_address: None,
            value: big,
            gas: 100_000,
            gas_price: Some(U256::from(9u64)),
            block_timestamp: Some(1_700_000_000),
            max_fee_per_gas: None,
            max_priority_fee_per_gas: None,
            transaction_type: Some(0),
            receipt_gas_used: Some(21_000),
            receipt_cumulative_gas_used: Some(21_000),
            receipt_contract_address: Some(x(0xc)),
            receipt_status: Some(1),
            receipt_effective_gas_price: Some(U256::from(9u64)),
        }));
        rows.traces.push(at(Trace {
            block_number: 9,
            transaction_hash: Some(tx),
            transaction_index: Some(0),
            from_address: Some(x(0xa)),
            to_address: Some(x(0xc)),
            value: Some(big),
            trace_type: TraceType::Create,
            call_type: None,
            reward_type: None,
            gas: Some(90_000),
            gas_used: Some(50_000),
            subtraces: 1,
            trace_address: vec![],
            error: None,
            status: Some(1),
            trace_id: Some("create_x".into()),
        }));
        rows.traces.push(at(Trace {
            trace_address: vec![0, 3],
            trace_type: TraceType::Call,
            call_type: Some("delegatecall".into()),
            error: Some("Reverted".into()),
            status: Some(0),
            subtraces: 0,
            ..rows.traces[0].row.clone()
        }));
        rows.token_transfers.push(at(TokenTransfer {
            token_address: x(0xc),
            from_address: x(0),
            to_address: x(0xa),
            value: big,
            transaction_hash: tx,
            log_index: 0,
            block_number: 9,
        }));
        rows.logs.push(at(Log {
            log_index: 0,
            transaction_hash: tx,
            transaction_index: 0,
            address: x(0xc),
            data: format!("0x{}", "00".repeat(31) + "05"),
            topics: vec![B256::repeat_byte(0xdd), B256::ZERO],
            block_number: 9,
        }));
        let dir = tempfile::tempdir().unwrap();
        let mut w = EtlWriter::create(dir.path()).unwrap();
        w.write_block(&rows).unwrap();
        let paths = w.paths();
        let n = w.finish().unwrap();
        assert_eq!((n.blocks, n.transactions, n.traces, n.logs), (1, 1, 2, 1));
        let back = BlockStream::open(&paths)
            .unwrap()
            .next_block()
            .unwrap()
            .unwrap();
        let strip = |b: &BlockRows| {
            (
                b.block.as_ref().map(|x| x.row.clone()),
                b.transactions
                    .iter()
                    .map(|x| x.row.clone())
                    .collect::<Vec<_>>(),
                b.traces.iter().map(|x| x.row.clone()).collect::<Vec<_>>(),
                b.token_transfers
                    .iter()
                    .map(|x| x.row.clone())
                    .collect::<Vec<_>>(),
                b.logs.iter().map(|x| x.row.clone()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(strip(&back), strip(&rows));
    }
}
