//! blockchain-etl exports: the JSON-lines `transactions` and `blocks` rows of bitcoin-etl,
//! which is also the schema of the public BigQuery Bitcoin dataset.
//!
//! The rows carry everything the txid commits to (version, inputs with their scriptSig and
//! sequence, outputs, lock time), so each non-coinbase transaction is rebuilt and its txid
//! checked against the row. Witnesses are not exported; the index does not need them.
//! Coinbase rows omit their input, so their txid is taken from the row. When the `blocks`
//! rows are given too, each block's merkle root is recomputed from the txids and checked.

use crate::block::ChainBlock;
use crate::error::{ChainError, Origin, OriginKind, Result};
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, BlockHash, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Default)]
struct EtlBlockRow {
    hash: Option<BlockHash>,
    merkle_root: Option<String>,
    time: Option<u32>,
    bits: Option<u32>,
    tx_count: Option<u64>,
    origin: Option<Origin>,
}

struct EtlTx {
    index: u64,
    txid: Txid,
    tx: Transaction,
}

#[derive(Default)]
struct Pending {
    hash: Option<BlockHash>,
    time: u32,
    txs: Vec<EtlTx>,
    first: Option<Origin>,
}

/// Parse blockchain-etl files (transactions and/or blocks rows, told apart per row) into
/// blocks ordered by height, each `prev` linked to the block before it when that block is
/// in the export.
pub fn read_etl(paths: &[PathBuf]) -> Result<Vec<ChainBlock>> {
    let mut files = Vec::new();
    for path in paths {
        files.push((path.clone(), crate::blockfile::read_maybe_bz2(path)?));
    }
    read_etl_bytes(&files)
}

/// As [`read_etl`], from contents already in memory.
pub fn read_etl_bytes(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<ChainBlock>> {
    let mut by_height: BTreeMap<u32, Pending> = BTreeMap::new();
    let mut blocks: BTreeMap<u32, EtlBlockRow> = BTreeMap::new();
    for (path, data) in files {
        let text = std::str::from_utf8(data).map_err(|e| {
            ChainError::format(line_origin(path, 1), format!("not UTF-8 text: {e}"))
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let at = line_origin(path, i as u64 + 1);
            let row: Value = serde_json::from_str(line)
                .map_err(|e| ChainError::format(at.clone(), format!("not a JSON object: {e}")))?;
            if row.get("inputs").is_some() || row.get("outputs").is_some() {
                let height = u32_field(&row, "block_number", &at)?;
                let p = by_height.entry(height).or_default();
                let bh = block_hash_field(&row, "block_hash", &at)?;
                if let (Some(a), Some(b)) = (p.hash, bh) {
                    if a != b {
                        return Err(ChainError::format(
                            at,
                            format!("block_number {height} has two block hashes ({a} and {b})"),
                        ));
                    }
                }
                p.hash = p.hash.or(bh);
                if let Some(t) = opt_time(&row, "block_timestamp", &at)? {
                    p.time = t;
                }
                p.first.get_or_insert(at.clone());
                p.txs.push(parse_tx(&row, &at)?);
            } else if row.get("merkle_root").is_some() || row.get("transaction_count").is_some() {
                let height = u32_field(&row, "number", &at)?;
                let b = EtlBlockRow {
                    hash: block_hash_field(&row, "hash", &at)?,
                    merkle_root: row
                        .get("merkle_root")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    time: opt_time(&row, "timestamp", &at)?,
                    bits: match row.get("bits").and_then(|v| v.as_str()) {
                        Some(s) => Some(u32::from_str_radix(s, 16).map_err(|_| {
                            ChainError::format(
                                at.clone(),
                                format!("field 'bits': '{s}' is not hex"),
                            )
                        })?),
                        None => None,
                    },
                    tx_count: match row.get("transaction_count") {
                        None | Some(Value::Null) => None,
                        Some(_) => Some(u32_field(&row, "transaction_count", &at)? as u64),
                    },
                    origin: Some(at.clone()),
                };
                blocks.insert(height, b);
            } else {
                return Err(ChainError::format(
                    at,
                    "neither a transactions row (inputs/outputs) nor a blocks row (merkle_root)",
                ));
            }
        }
    }
    let mut out: Vec<ChainBlock> = Vec::new();
    let mut prev: Option<(u32, BlockHash)> = None;
    for (height, mut p) in by_height {
        let brow = blocks.remove(&height).unwrap_or_default();
        let origin = p.first.clone().expect("a pending block has a first row");
        let hash = p
            .hash
            .or(brow.hash)
            .ok_or_else(|| ChainError::format(origin.clone(), "field 'block_hash' is missing"))?;
        p.txs.sort_by_key(|t| t.index);
        for (i, t) in p.txs.iter().enumerate() {
            if t.index != i as u64 {
                return Err(ChainError::format(
                    origin.clone(),
                    format!("block {height}: transaction index {i} is missing or repeated"),
                ));
            }
        }
        if let Some(n) = brow.tx_count {
            if n != p.txs.len() as u64 {
                return Err(ChainError::format(
                    origin.clone(),
                    format!(
                        "block {height}: blocks row says {n} transactions, the export has {}",
                        p.txs.len()
                    ),
                ));
            }
        }
        if let Some(root) = &brow.merkle_root {
            let computed =
                bitcoin::merkle_tree::calculate_root(p.txs.iter().map(|t| t.txid.to_raw_hash()))
                    .map(|h| h.to_string())
                    .unwrap_or_default();
            if &computed != root {
                return Err(ChainError::Merkle {
                    origin: brow.origin.clone().unwrap_or(origin),
                    hash: hash.to_string(),
                    header: root.clone(),
                    computed,
                });
            }
        }
        let prev_hash = match prev {
            Some((h, ph)) if h + 1 == height => Some(ph),
            _ => None,
        };
        let (txids, txs): (Vec<Txid>, Vec<Transaction>) =
            p.txs.into_iter().map(|t| (t.txid, t.tx)).unzip();
        out.push(ChainBlock {
            hash,
            prev: prev_hash,
            height: Some(height),
            time: brow.time.unwrap_or(p.time),
            bits: brow.bits.unwrap_or(0),
            txids,
            txs,
            origin,
        });
        prev = Some((height, hash));
    }
    if let Some((h, b)) = blocks.into_iter().next() {
        if b.tx_count != Some(0) {
            return Err(ChainError::format(b.origin.unwrap_or(line_origin(Path::new("?"), 0)), format!("blocks row for height {h} has no transactions rows: give the transactions export too")));
        }
    }
    Ok(out)
}

fn parse_tx(row: &Value, at: &Origin) -> Result<EtlTx> {
    let txid = Txid::from_str(str_field(row, "hash", at)?)
        .map_err(|e| ChainError::format(at.clone(), format!("field 'hash': {e}")))?;
    let index = u32_field(row, "index", at)? as u64;
    let is_coinbase = row
        .get("is_coinbase")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Version is a signed 32-bit field on the wire; blockchain-etl writes it as a number
    // that may be negative (as Core shows it) or the same bits read unsigned.
    let version = match row.get("version") {
        Some(Value::Number(n)) if n.as_i64().is_some() => {
            let v = n.as_i64().expect("checked");
            i32::try_from(v)
                .ok()
                .or_else(|| u32::try_from(v).ok().map(|u| u as i32))
                .ok_or_else(|| {
                    out_of_range(at, "version", &v.to_string(), "-2147483648 to 4294967295")
                })?
        }
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .and_then(|v| {
                i32::try_from(v)
                    .ok()
                    .or_else(|| u32::try_from(v).ok().map(|u| u as i32))
            })
            .ok_or_else(|| out_of_range(at, "version", s, "-2147483648 to 4294967295"))?,
        _ => return Err(missing(at, "version")),
    };
    let lock_time = u32_field(row, "lock_time", at)?;
    let mut input = Vec::new();
    if is_coinbase {
        input.push(TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        });
    }
    for (k, i) in array(row, "inputs", at)?.iter().enumerate() {
        let f = |name: &str| format!("inputs[{k}].{name}");
        let ptxid = Txid::from_str(
            i.get("spent_transaction_hash")
                .and_then(Value::as_str)
                .ok_or_else(|| missing(at, &f("spent_transaction_hash")))?,
        )
        .map_err(|e| {
            ChainError::format(
                at.clone(),
                format!("field '{}': {e}", f("spent_transaction_hash")),
            )
        })?;
        let vout = u32_in(i, "spent_output_index", &f("spent_output_index"), at)?;
        let script = hex::decode(i.get("script_hex").and_then(Value::as_str).unwrap_or(""))
            .map_err(|e| {
                ChainError::format(at.clone(), format!("field '{}': {e}", f("script_hex")))
            })?;
        let seq = match i.get("sequence") {
            None | Some(Value::Null) => 0xffff_ffff,
            Some(_) => u32_in(i, "sequence", &f("sequence"), at)?,
        };
        input.push(TxIn {
            previous_output: OutPoint::new(ptxid, vout),
            script_sig: ScriptBuf::from_bytes(script),
            sequence: Sequence(seq),
            witness: Witness::new(),
        });
    }
    let mut output = Vec::new();
    for (k, o) in array(row, "outputs", at)?.iter().enumerate() {
        let f = |name: &str| format!("outputs[{k}].{name}");
        let value = u64_in(o, "value", &f("value"), at)?;
        if value > MAX_MONEY {
            return Err(out_of_range(
                at,
                &f("value"),
                &value.to_string(),
                "0 to 2,100,000,000,000,000 satoshis (21 million BTC)",
            ));
        }
        let script = hex::decode(
            o.get("script_hex")
                .and_then(Value::as_str)
                .ok_or_else(|| missing(at, &f("script_hex")))?,
        )
        .map_err(|e| ChainError::format(at.clone(), format!("field '{}': {e}", f("script_hex"))))?;
        output.push(TxOut {
            value: Amount::from_sat(value),
            script_pubkey: ScriptBuf::from_bytes(script),
        });
    }
    let tx = Transaction {
        version: Version(version),
        lock_time: LockTime::from_consensus(lock_time),
        input,
        output,
    };
    if !is_coinbase && tx.compute_txid() != txid {
        return Err(ChainError::format(
            at.clone(),
            format!(
                "transaction {txid}: its fields hash to {}, not to its 'hash'",
                tx.compute_txid()
            ),
        ));
    }
    Ok(EtlTx { index, txid, tx })
}

fn line_origin(path: &Path, line: u64) -> Origin {
    Origin {
        file: path.to_path_buf(),
        offset: line,
        kind: OriginKind::Line,
    }
}

fn missing(at: &Origin, field: &str) -> ChainError {
    ChainError::format(
        at.clone(),
        format!("field '{field}' is missing or not a number/string of the right kind"),
    )
}

/// Numbers arrive as JSON numbers (bitcoin-etl) or strings (BigQuery NUMERIC).
fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// No output can hold more than every bitcoin there will ever be.
pub const MAX_MONEY: u64 = 21_000_000 * 100_000_000;

fn u32_field(row: &Value, name: &str, at: &Origin) -> Result<u32> {
    u32_in(row, name, name, at)
}

/// A number field that must fit 64 bits unsigned; `shown` is its path in errors.
fn u64_in(obj: &Value, name: &str, shown: &str, at: &Origin) -> Result<u64> {
    let v = obj.get(name).ok_or_else(|| missing(at, shown))?;
    if let Some(n) = num(v) {
        return Ok(n);
    }
    match v {
        Value::Number(n) => Err(out_of_range(
            at,
            shown,
            &n.to_string(),
            "0 to 18446744073709551615",
        )),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(out_of_range(at, shown, s, "0 to 18446744073709551615"))
        }
        _ => Err(missing(at, shown)),
    }
}

/// A number field that must fit 32 bits (output indexes, sequences, lock times, heights):
/// a larger value is refused, never cut to its low bits.
fn u32_in(obj: &Value, name: &str, shown: &str, at: &Origin) -> Result<u32> {
    let n = match obj.get(name) {
        Some(v @ Value::Number(n)) if n.as_f64().is_some_and(|f| f > u32::MAX as f64) => {
            return Err(out_of_range(at, shown, &v.to_string(), "0 to 4294967295"))
        }
        _ => u64_in(obj, name, shown, at)?,
    };
    u32::try_from(n).map_err(|_| out_of_range(at, shown, &n.to_string(), "0 to 4294967295"))
}

fn out_of_range(at: &Origin, field: &str, value: &str, range: &str) -> ChainError {
    ChainError::format(
        at.clone(),
        format!("field '{field}': {value} is out of range ({range}); the row is refused"),
    )
}

fn str_field<'a>(row: &'a Value, name: &str, at: &Origin) -> Result<&'a str> {
    row.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(at, name))
}

fn array<'a>(row: &'a Value, name: &str, at: &Origin) -> Result<&'a Vec<Value>> {
    match row.get(name) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(missing(at, name)),
    }
}

fn block_hash_field(row: &Value, name: &str, at: &Origin) -> Result<Option<BlockHash>> {
    match row.get(name).and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => BlockHash::from_str(s)
            .map(Some)
            .map_err(|e| ChainError::format(at.clone(), format!("field '{name}': {e}"))),
    }
}

/// Unix seconds, or BigQuery's "YYYY-MM-DD HH:MM:SS[ UTC]".
fn opt_time(row: &Value, name: &str, at: &Origin) -> Result<Option<u32>> {
    match row.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64().map(u32::try_from) {
            Some(Ok(v)) => Ok(Some(v)),
            _ => Err(out_of_range(
                at,
                name,
                &n.to_string(),
                "0 to 4294967295 seconds",
            )),
        },
        Some(Value::String(s)) => parse_datetime(s).map(Some).ok_or_else(|| {
            ChainError::format(at.clone(), format!("field '{name}': '{s}' is not a time"))
        }),
        Some(_) => Err(missing(at, name)),
    }
}

fn parse_datetime(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let s = s.trim_end_matches(" UTC").trim_end_matches('Z');
    let (d, t) = s.split_once([' ', 'T'])?;
    let mut dp = d.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (dp.next()?.ok()?, dp.next()?.ok()?, dp.next()?.ok()?);
    let mut tp = t
        .split(':')
        .map(|x| x.split('.').next().unwrap_or("0").parse::<i64>());
    let (hh, mm, ss) = (
        tp.next()?.ok()?,
        tp.next()?.ok()?,
        tp.next().unwrap_or(Ok(0)).ok()?,
    );
    // Bitcoin block times fit u32 seconds (1970..2106); anything else is not a block time.
    let in_range = (1970..=2106).contains(&y)
        && (1..=12).contains(&m)
        && (1..=31).contains(&dd)
        && (0..24).contains(&hh)
        && (0..60).contains(&mm)
        && (0..=60).contains(&ss);
    if !in_range {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    u32::try_from(days * 86400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bigquery_times() {
        assert_eq!(
            super::parse_datetime("2009-01-09 02:54:25 UTC"),
            Some(1231469665)
        );
        assert_eq!(super::parse_datetime("1231469665"), Some(1231469665));
        assert_eq!(super::parse_datetime("garbage"), None);
        assert_eq!(super::parse_datetime("99999999999999-01-01 00:00:00"), None);
    }
}
