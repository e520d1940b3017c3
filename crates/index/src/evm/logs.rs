//! What the EVM index keeps beside the movements: every transaction's event logs (so swaps,
//! WETH wraps and mixer deposits can be decoded over the index, and `export --format etl`
//! can write logs without a node), and what each block started with (the first address and
//! token id), so a reorganisation also drops the ids first seen in the dropped blocks and a
//! reorganised index equals one built without the dropped blocks.
//!
//! Files (appended and committed like every other column; counts in the manifest's
//! `extra` section):
//! - `logs.bin`       tx u40 | log index u32 | address 20 | topic count u8 |
//!                    first topic u40 | data offset u40 | data length u32
//! - `log_topics.bin` 32 bytes per topic; `log_data.bin` the data bytes, one per record
//! - `tx_logs.bin`    per transaction from `from_tx`: its first log id (u40)
//! - `block_start.bin` per block from `from_block`: address count u32 | token count u32 at
//!                    its start | logs kept u8 (1: the block's logs were given in full)
//!
//! An index written before these existed records them only for blocks added after it was
//! first opened by this version (`from_block`, `from_tx`); for older blocks logs are
//! unknown, and a rollback into them keeps the ids it cannot attribute to a block.

use std::collections::HashMap;
use std::path::Path;

use cointrail_evm::etl::Log;
use cointrail_evm::movement::BlockRows;
use cointrail_evm::{Address, B256};
use serde::{Deserialize, Serialize};

use super::store::EvmIndex;
use crate::column::{u40_bytes, u40_of, Column};
use crate::IndexError;

pub(crate) const LOG_W: usize = 5 + 4 + 20 + 1 + 5 + 5 + 4;
pub(crate) const START_W: usize = 4 + 4 + 1;

/// The manifest's record of the extra columns.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExtraManifest {
    /// First block record (index into `blocks.bin`) with a `block_start.bin` entry.
    pub from_block: u64,
    /// First transaction with a `tx_logs.bin` entry.
    pub from_tx: u64,
    pub logs: u64,
    pub topics: u64,
    pub data: u64,
}

pub(crate) struct ExtraCols {
    pub logs: Column,
    pub topics: Column,
    pub data: Column,
    pub tx_logs: Column,
    pub starts: Column,
}

impl ExtraCols {
    pub(crate) fn open(dir: &Path) -> std::io::Result<ExtraCols> {
        Ok(ExtraCols {
            logs: Column::open(dir, "logs.bin", LOG_W)?,
            topics: Column::open(dir, "log_topics.bin", 32)?,
            data: Column::open(dir, "log_data.bin", 1)?,
            tx_logs: Column::open(dir, "tx_logs.bin", 5)?,
            starts: Column::open(dir, "block_start.bin", START_W)?,
        })
    }

    pub(crate) fn cols(&mut self) -> [&mut Column; 5] {
        [
            &mut self.logs,
            &mut self.topics,
            &mut self.data,
            &mut self.tx_logs,
            &mut self.starts,
        ]
    }
}

/// Committed record counts of the extra columns, in [`ExtraCols::cols`] order.
pub(crate) fn extra_counts(m: &super::store::EvmManifest) -> [u64; 5] {
    match &m.extra {
        Some(e) => [
            e.logs,
            e.topics,
            e.data,
            m.txs.saturating_sub(e.from_tx),
            m.blocks.saturating_sub(e.from_block),
        ],
        None => [0; 5],
    }
}

/// One block's logs, checked and decoded before anything of the block is appended.
pub(crate) struct PendingLogs {
    /// Per transaction position in `rows.transactions`: its logs.
    by_tx: Vec<Vec<(u32, Address, Vec<B256>, Vec<u8>)>>,
    complete: bool,
}

fn hex_data(s: &str) -> Option<Vec<u8>> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Check a block's log rows against its transactions. `given`: the source delivers logs
/// at all (a node's receipts do; files only when a logs file was given).
pub(crate) fn check_logs(rows: &BlockRows, given: bool) -> Result<PendingLogs, IndexError> {
    let n = rows.number().unwrap_or(0);
    let pos: HashMap<B256, usize> = rows
        .transactions
        .iter()
        .enumerate()
        .map(|(i, t)| (t.row.hash, i))
        .collect();
    let mut by_tx = vec![Vec::new(); rows.transactions.len()];
    // Logs of a block read without its transactions cannot be placed: the block's logs
    // are then not kept (and say so), rather than guessed.
    let complete = given && (!rows.transactions.is_empty() || rows.logs.is_empty());
    let bad = |l: &cointrail_evm::etl::Located<Log>, field: &str, why: String| {
        IndexError::Block(format!("{}:{}: field `{field}`: {why}", l.file, l.line))
    };
    let mut seen = std::collections::HashSet::new();
    for l in &rows.logs {
        let r = &l.row;
        if !seen.insert(r.log_index) {
            return Err(bad(
                l,
                "log_index",
                format!("log {} of block {n} appears twice", r.log_index),
            ));
        }
        let Some(&p) = pos.get(&r.transaction_hash) else {
            if rows.transactions.is_empty() {
                continue;
            }
            return Err(bad(
                l,
                "transaction_hash",
                format!(
                    "log of transaction {} that is not in block {n}",
                    r.transaction_hash
                ),
            ));
        };
        let t = &rows.transactions[p].row;
        if t.failed() {
            return Err(bad(
                l,
                "transaction_hash",
                "log of a failed transaction (failed transactions emit no logs)".into(),
            ));
        }
        if r.topics.len() > 4 {
            return Err(bad(
                l,
                "topics",
                format!("{} topics; a log has at most 4", r.topics.len()),
            ));
        }
        let log_index = u32::try_from(r.log_index)
            .map_err(|_| bad(l, "log_index", format!("{} is too large", r.log_index)))?;
        let data = hex_data(&r.data).ok_or_else(|| {
            bad(
                l,
                "data",
                format!("{:?} is not 0x-prefixed hex bytes", r.data),
            )
        })?;
        by_tx[p].push((log_index, r.address, r.topics.clone(), data));
    }
    for v in &mut by_tx {
        v.sort_by_key(|x| x.0);
    }
    Ok(PendingLogs { by_tx, complete })
}

impl EvmIndex {
    /// Whether blocks ingested from now on come with their logs in full (a node's receipts
    /// always do; files only when a logs file is among them). Default: yes.
    pub fn set_logs_given(&mut self, given: bool) {
        self.logs_given = given;
    }

    pub(crate) fn logs_given(&self) -> bool {
        self.logs_given
    }

    /// Append what a block starts with (before any of its movements).
    pub(crate) fn push_block_start(&mut self, complete: bool) {
        let mut r = [0u8; START_W];
        r[..4].copy_from_slice(&(self.addrs.len() as u32).to_le_bytes());
        r[4..8].copy_from_slice(&(self.assets.len() as u32).to_le_bytes());
        r[8] = complete as u8;
        self.extra.starts.push(&r);
    }

    /// Append the logs of transaction `tx` (called right after its record).
    pub(crate) fn push_tx_logs(&mut self, tx: u64, p: &PendingLogs, pos: usize) {
        let e = &mut self.extra;
        e.tx_logs.push(&u40_bytes(e.logs.len()));
        for (li, addr, topics, data) in &p.by_tx[pos] {
            let mut r = [0u8; LOG_W];
            r[..5].copy_from_slice(&u40_bytes(tx));
            r[5..9].copy_from_slice(&li.to_le_bytes());
            r[9..29].copy_from_slice(addr.as_slice());
            r[29] = topics.len() as u8;
            r[30..35].copy_from_slice(&u40_bytes(e.topics.len()));
            r[35..40].copy_from_slice(&u40_bytes(e.data.len()));
            r[40..44].copy_from_slice(&(data.len() as u32).to_le_bytes());
            e.logs.push(&r);
            for t in topics {
                e.topics.push(t.as_slice());
            }
            for b in data {
                e.data.push(std::slice::from_ref(b));
            }
        }
    }

    pub(crate) fn pending_logs_complete(p: &PendingLogs) -> bool {
        p.complete
    }

    /// The `block_start.bin` record of block record `b`, if kept.
    fn block_start(&self, b: u64) -> Option<(u64, u64, bool)> {
        let from = self.m.extra.as_ref()?.from_block;
        let i = b.checked_sub(from)?;
        if i >= self.extra.starts.len() {
            return None;
        }
        let r = self.extra.starts.get(i);
        Some((
            u32::from_le_bytes(r[..4].try_into().unwrap()) as u64,
            u32::from_le_bytes(r[4..8].try_into().unwrap()) as u64,
            r[8] == 1,
        ))
    }

    /// Whether the logs of indexed block `number` are kept in full.
    pub fn block_logs_kept(&self, number: u64) -> bool {
        self.block_record(number)
            .and_then(|b| self.block_start(b))
            .is_some_and(|s| s.2)
    }

    /// Ids of the logs of transaction `tx` (None: not kept for it).
    fn tx_log_ids(&self, tx: u64) -> Option<std::ops::Range<u64>> {
        let from = self.m.extra.as_ref()?.from_tx;
        let i = tx.checked_sub(from)?;
        if i >= self.extra.tx_logs.len() {
            return None;
        }
        let start = u40_of(self.extra.tx_logs.get(i));
        let end = if i + 1 < self.extra.tx_logs.len() {
            u40_of(self.extra.tx_logs.get(i + 1))
        } else {
            self.extra.logs.len()
        };
        Some(start..end)
    }

    /// The event logs of transaction `tx` (a dense number, [`EvmIndex::tx_number`]) in log
    /// order, as ethereum-etl rows; None when the index does not know them (its block was
    /// ingested without logs, or before this index kept them).
    pub fn tx_logs(&self, tx: u64) -> Option<Vec<Log>> {
        if tx >= self.txs.len() {
            return None;
        }
        let r = self.txs.get(tx);
        let block_idx = u32::from_le_bytes(r[32..36].try_into().unwrap()) as u64;
        if !self.block_start(block_idx).is_some_and(|s| s.2) {
            return None;
        }
        let ids = self.tx_log_ids(tx)?;
        let hash = B256::from_slice(&r[..32]);
        let first_tx = u64::from_le_bytes(self.blocks.get(block_idx)[48..56].try_into().unwrap());
        let number = self.block_number(block_idx);
        Some(
            ids.map(|i| self.log_at(i, hash, tx - first_tx, number))
                .collect(),
        )
    }

    fn log_at(&self, i: u64, hash: B256, tx_index: u64, number: u64) -> Log {
        let r = self.extra.logs.get(i);
        let nt = r[29] as u64;
        let t0 = u40_of(&r[30..35]);
        let d0 = u40_of(&r[35..40]);
        let dn = u32::from_le_bytes(r[40..44].try_into().unwrap()) as u64;
        let mut data = String::with_capacity(2 + 2 * dn as usize);
        data.push_str("0x");
        for j in d0..d0 + dn {
            data.push_str(&format!("{:02x}", self.extra.data.get(j)[0]));
        }
        Log {
            log_index: u32::from_le_bytes(r[5..9].try_into().unwrap()) as u64,
            transaction_hash: hash,
            transaction_index: tx_index,
            address: Address::from_slice(&r[9..29]),
            data,
            topics: (t0..t0 + nt)
                .map(|j| B256::from_slice(self.extra.topics.get(j)))
                .collect(),
            block_number: number,
        }
    }

    /// The logs of indexed block `number` in log order; None when not kept.
    pub fn block_logs(&self, number: u64) -> Option<Vec<Log>> {
        let b = self.block_record(number)?;
        if !self.block_start(b).is_some_and(|s| s.2) {
            return None;
        }
        let first_tx = u64::from_le_bytes(self.blocks.get(b)[48..56].try_into().unwrap());
        let end_tx = if b + 1 < self.blocks.len() {
            u64::from_le_bytes(self.blocks.get(b + 1)[48..56].try_into().unwrap())
        } else {
            self.txs.len()
        };
        let mut out = Vec::new();
        for t in first_tx..end_tx {
            out.extend(self.tx_logs(t)?);
        }
        out.sort_by_key(|l| l.log_index);
        Some(out)
    }

    pub fn log_count(&self) -> u64 {
        self.extra.logs.len()
    }

    /// For a rollback to the first `keep` blocks (first dropped transaction `first_tx`):
    /// the extra counts to keep, and the address and token counts the kept blocks end with
    /// (None when the first dropped block has no start record: an index from before them).
    pub(crate) fn extra_rollback(&mut self, keep: u64, first_tx: u64) -> Option<(u64, u64)> {
        let start = self.block_start(keep);
        let e = self.m.extra.as_mut()?;
        if keep < e.from_block || first_tx < e.from_tx {
            // Dropping blocks from before the extra columns: nothing of them was kept.
            *e = ExtraManifest {
                from_block: keep,
                from_tx: first_tx,
                ..Default::default()
            };
            return None;
        }
        let i = first_tx - e.from_tx;
        let logs = if i < self.extra.tx_logs.len() {
            u40_of(self.extra.tx_logs.get(i))
        } else {
            self.extra.logs.len()
        };
        let (topics, data) = if logs < self.extra.logs.len() {
            let r = self.extra.logs.get(logs);
            (u40_of(&r[30..35]), u40_of(&r[35..40]))
        } else {
            (self.extra.topics.len(), self.extra.data.len())
        };
        e.logs = logs;
        e.topics = topics;
        e.data = data;
        start.map(|s| (s.0, s.1))
    }

    /// Set the manifest's extra counts to what is appended (a commit).
    pub(crate) fn extra_commit_counts(&mut self) {
        if let Some(e) = self.m.extra.as_mut() {
            e.logs = self.extra.logs.len();
            e.topics = self.extra.topics.len();
            e.data = self.extra.data.len();
        }
    }

    /// Invariants of the extra columns (`verify`).
    pub(crate) fn verify_extra(&self, bad: &mut Vec<String>) {
        let Some(e) = self.m.extra.as_ref() else {
            return;
        };
        let mut prev = 0u64;
        for i in 0..self.extra.tx_logs.len() {
            let f = u40_of(self.extra.tx_logs.get(i));
            if f < prev || f > self.extra.logs.len() {
                bad.push(format!(
                    "tx_logs entry of transaction {} points outside or backwards",
                    e.from_tx + i
                ));
                return;
            }
            prev = f;
        }
        let (mut t_next, mut d_next, mut prev_tx) = (0u64, 0u64, 0u64);
        for i in 0..self.extra.logs.len() {
            let r = self.extra.logs.get(i);
            let tx = u40_of(&r[..5]);
            let ok_tx = tx >= prev_tx
                && tx >= e.from_tx
                && tx < self.txs.len()
                && self.tx_log_ids(tx).is_some_and(|ids| ids.contains(&i));
            if !ok_tx || u40_of(&r[30..35]) != t_next || u40_of(&r[35..40]) != d_next {
                bad.push(format!("log {i} is not where its transaction's logs are"));
                return;
            }
            prev_tx = tx;
            t_next += r[29] as u64;
            d_next += u32::from_le_bytes(r[40..44].try_into().unwrap()) as u64;
        }
        if t_next != self.extra.topics.len() || d_next != self.extra.data.len() {
            bad.push("the log topic and data columns do not match the log records".into());
        }
        let mut prev_start = (0u64, 0u64);
        for i in 0..self.extra.starts.len() {
            let r = self.extra.starts.get(i);
            let s = (
                u32::from_le_bytes(r[..4].try_into().unwrap()) as u64,
                u32::from_le_bytes(r[4..8].try_into().unwrap()) as u64,
            );
            if s.0 < prev_start.0
                || s.1 < prev_start.1
                || s.0 > self.addrs.len()
                || s.1 > self.assets.len()
            {
                bad.push(format!(
                    "block_start entry of block record {} points outside or backwards",
                    e.from_block + i
                ));
                return;
            }
            prev_start = s;
        }
    }
}
