//! The on-disk chain index: columns, maps, recovery, and read access (`ChainView`).

use crate::column::*;
use crate::manifest::{Manifest, TableRef, FORMAT, FORMAT_MAPS_BEHIND};
use crate::IndexError;
use bitcoin::Network;
use cointrail_chain::network::{network_name, parse_network};
use cointrail_chain::view::{AddrId, ChainView, InNum, OutNum, Prevout, TxNum};
use cointrail_chain::AddressKey;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// `in_prev` value of a coinbase input.
pub const COINBASE: u64 = U40_MAX;
/// `in_prev` flag: the low bits index the external-reference column.
pub const EXT_FLAG: u64 = 1 << 39;
/// `out_addr` of an OP_RETURN output.
pub const NO_ADDR: u32 = u32::MAX;
/// `out_spender` of an unspent output.
pub const UNSPENT: u32 = u32::MAX;
/// End of an address's output list.
pub const NO_OUT: u64 = U40_MAX;

/// Block record: hash 32 | bits 4 | time 4 | first_tx 4 | first_addr 4 | first_ext 4 | first_opret 4.
pub const BLOCK_REC: usize = 56;

pub struct BlockRec {
    pub hash: [u8; 32],
    pub bits: u32,
    pub time: u32,
    pub first_tx: u32,
    pub first_addr: u32,
    pub first_ext: u32,
    pub first_opret: u32,
}

impl BlockRec {
    pub fn encode(&self) -> [u8; BLOCK_REC] {
        let mut b = [0u8; BLOCK_REC];
        b[..32].copy_from_slice(&self.hash);
        for (i, v) in [
            self.bits,
            self.time,
            self.first_tx,
            self.first_addr,
            self.first_ext,
            self.first_opret,
        ]
        .iter()
        .enumerate()
        {
            b[32 + i * 4..36 + i * 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
    pub fn decode(b: &[u8]) -> BlockRec {
        let f = |i: usize| u32_of(&b[32 + i * 4..]);
        BlockRec {
            hash: b[..32].try_into().expect("32"),
            bits: f(0),
            time: f(1),
            first_tx: f(2),
            first_addr: f(3),
            first_ext: f(4),
            first_opret: f(5),
        }
    }
}

pub struct Index {
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
    pub(crate) network: Option<Network>,
    /// The `LOCK` file (None on a read-only mount, where no writer can run).
    _lock: Option<File>,
    pub(crate) writable: bool,
    /// Opened on a read-only mount: nothing is written, not even by recovery.
    read_only_mount: bool,
    /// Why the files hold more than the last commit, when recovery could not run (a
    /// read-only mount): answers come from the last commit meanwhile.
    recovery_pending: Option<String>,
    pub(crate) blocks: Column,
    pub(crate) tx_id: Column,
    pub(crate) tx_first_in: Column,
    pub(crate) tx_first_out: Column,
    pub(crate) tx_locktime: Column,
    pub(crate) tx_version: Column,
    pub(crate) in_prev: Column,
    pub(crate) out_value: Column,
    pub(crate) out_addr: Column,
    pub(crate) out_spender: Column,
    pub(crate) out_prev_addr: Column,
    pub(crate) addr_key: Column,
    pub(crate) addr_last_out: Column,
    /// The first byte of each address key (its script type), dense: CoinJoin detectors and
    /// change rules ask it of every input and output, and 1 byte per address stays in
    /// cache where the 33-byte keys do not.
    pub(crate) addr_type: Column,
    pub(crate) ext_ref: Column,
    pub(crate) opret_idx: Column,
    pub(crate) opret_data: Column,
    pub(crate) txid_table: Option<TableFile>,
    pub(crate) addr_table: Option<TableFile>,
    /// Tables replaced during the batch, deleted once the manifest no longer names them.
    pub(crate) retired: Vec<PathBuf>,
    /// A map was rebuilt into a new file during this batch: the next commit must sync it.
    pub(crate) maps_regrown: bool,
}

impl Index {
    /// Open (creating if needed) for writing: takes the writer lock, and finishes or undoes
    /// whatever an interrupted writer left behind.
    pub fn open_writer(dir: &Path) -> Result<Index, IndexError> {
        Index::open(dir, true)
    }

    /// Open for reading. Needs an existing index; runs alongside a writer.
    pub fn open_reader(dir: &Path) -> Result<Index, IndexError> {
        if !dir.join("manifest.json").exists() {
            return Err(IndexError::NoIndex(dir.to_path_buf()));
        }
        Index::open(dir, false)
    }

    /// The index over its column files, each opened by `column` (writable or read-only maps),
    /// once the manifest is known to be of this format.
    fn assemble(
        dir: &Path,
        manifest: Manifest,
        lock: Option<std::fs::File>,
        writable: bool,
        read_only_mount: bool,
        column: impl Fn(&str, usize) -> Result<Column, IndexError>,
    ) -> Result<Index, IndexError> {
        if manifest.format != FORMAT && manifest.format != FORMAT_MAPS_BEHIND {
            return Err(IndexError::Format(format!(
                "{}: index format {} is not {FORMAT}; rebuild it",
                dir.display(),
                manifest.format
            )));
        }
        let network = if manifest.network.is_empty() {
            None
        } else {
            Some(parse_network(&manifest.network).map_err(IndexError::Format)?)
        };
        let c = column;
        Ok(Index {
            dir: dir.to_path_buf(),
            network,
            _lock: lock,
            writable,
            read_only_mount,
            recovery_pending: None,
            blocks: c("blocks.bin", BLOCK_REC)?,
            tx_id: c("tx_id.bin", 32)?,
            tx_first_in: c("tx_first_in.bin", 5)?,
            tx_first_out: c("tx_first_out.bin", 5)?,
            tx_locktime: c("tx_locktime.bin", 4)?,
            tx_version: c("tx_version.bin", 4)?,
            in_prev: c("in_prev.bin", 5)?,
            out_value: c("out_value.bin", 8)?,
            out_addr: c("out_addr.bin", 4)?,
            out_spender: c("out_spender.bin", 4)?,
            out_prev_addr: c("out_prev_addr.bin", 5)?,
            addr_key: c("addr_key.bin", 33)?,
            addr_last_out: c("addr_last_out.bin", 5)?,
            addr_type: c("addr_type.bin", 1)?,
            ext_ref: c("ext_ref.bin", 36)?,
            opret_idx: c("opret_idx.bin", 17)?,
            opret_data: c("opret_data.bin", 1)?,
            txid_table: None,
            addr_table: None,
            retired: Vec::new(),
            maps_regrown: false,
            manifest,
        })
    }

    fn open(dir: &Path, writable: bool) -> Result<Index, IndexError> {
        let io = |e: std::io::Error| IndexError::Io(dir.to_path_buf(), e);
        if !writable {
            // Evidence is often mounted read-only: read it as it is, without the lock (no
            // writer can run there) and without recovery (it would write).
            match open_file_opts().open(dir.join("LOCK")) {
                Err(e) if read_only_error(&e) => return Index::open_read_only(dir),
                _ => {}
            }
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = open_file_opts().open(dir.join("LOCK")).map_err(io)?;
        // The lock is taken before the manifest is read: a reader that gets it recovers
        // and may store the manifest, which must then be the latest one (a writer may have
        // committed and left between an earlier read and the lock).
        let locked = if writable {
            lock.try_lock()
                .map_err(|_| IndexError::Locked(dir.to_path_buf()))?;
            true
        } else {
            lock.try_lock().is_ok()
        };
        let manifest = Manifest::load(dir).map_err(io)?.unwrap_or(Manifest {
            format: FORMAT,
            ..Manifest::default()
        });
        let mut idx = Index::assemble(dir, manifest, Some(lock), writable, false, |name, w| {
            Column::open(dir, name, w).map_err(io)
        })?;
        if writable {
            idx.fill_addr_types()?;
            idx.recover()?;
        } else if locked {
            // No writer is running: finish what a crashed one left, so every reader sees a
            // consistent index; then let writers in again.
            let r = idx.fill_addr_types().and_then(|_| idx.recover());
            if let Some(l) = &idx._lock {
                let _ = l.unlock();
            }
            r?;
        } else {
            idx.map_committed()?;
        }
        Ok(idx)
    }

    /// Open an index on a read-only mount: the committed state, as a reader beside a running
    /// writer sees it (spend links and list heads of an interrupted batch are stepped over,
    /// map entries it left are skipped). Map entries a crash may have lost are put back in
    /// private memory only.
    fn open_read_only(dir: &Path) -> Result<Index, IndexError> {
        let io = |e: std::io::Error| IndexError::Io(dir.to_path_buf(), e);
        let manifest = Manifest::load(dir)
            .map_err(io)?
            .ok_or_else(|| IndexError::NoIndex(dir.to_path_buf()))?;
        let mut idx = Index::assemble(dir, manifest, None, false, true, |name, w| {
            Column::open_read_only(dir, name, w).map_err(io)
        })?;
        idx.map_committed()?;
        let mut pending = Vec::new();
        let lens: Vec<(String, u64, u64)> = {
            let names: Vec<String> = idx
                .columns_mut()
                .iter()
                .map(|c| {
                    c.path
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default()
                })
                .collect();
            let mut v = Vec::new();
            for (n, c) in names.iter().zip(idx.columns_mut()) {
                v.push((n.clone(), c.committed(), c.file_records().map_err(io)?));
            }
            v
        };
        if let Some((n, committed, have)) = lens.iter().find(|(_, c, h)| h > c) {
            pending.push(format!(
                "{n} holds {have} records past the {committed} committed"
            ));
        }
        let m = idx.manifest.clone();
        if m.maps_synced.is_some_and(|[t, a]| t < m.txs || a < m.addrs) {
            pending.push("the maps were not synced after the last batch".into());
            // In private memory only: lookups find every committed id.
            idx.repair_maps()?;
        }
        if !pending.is_empty() {
            let why = format!(
                "{}: the last batch was interrupted and recovery is pending ({}); it runs the next time cointrail opens this index with write access. Answers come from the last commit",
                dir.display(),
                pending.join("; ")
            );
            tracing::warn!("{why}");
            idx.recovery_pending = Some(why);
        }
        Ok(idx)
    }

    /// Why recovery is still to run, when the index was opened on a read-only mount after
    /// an interrupted batch (None: nothing pending, or recovery ran).
    pub fn recovery_pending(&self) -> Option<&str> {
        self.recovery_pending.as_deref()
    }

    /// Opened on a read-only mount.
    pub fn is_read_only_mount(&self) -> bool {
        self.read_only_mount
    }

    /// Every column, for operations that apply to all of them alike.
    pub(crate) fn columns_mut(&mut self) -> [&mut Column; 17] {
        [
            &mut self.blocks,
            &mut self.tx_id,
            &mut self.tx_first_in,
            &mut self.tx_first_out,
            &mut self.tx_locktime,
            &mut self.tx_version,
            &mut self.in_prev,
            &mut self.out_value,
            &mut self.out_addr,
            &mut self.out_spender,
            &mut self.out_prev_addr,
            &mut self.addr_key,
            &mut self.addr_last_out,
            &mut self.addr_type,
            &mut self.ext_ref,
            &mut self.opret_idx,
            &mut self.opret_data,
        ]
    }

    fn committed_len(&self, col: &str) -> u64 {
        let m = &self.manifest;
        match col {
            "blocks.bin" => m.blocks,
            "tx_id.bin" | "tx_first_in.bin" | "tx_first_out.bin" | "tx_locktime.bin"
            | "tx_version.bin" => m.txs,
            "in_prev.bin" => m.inputs,
            "out_value.bin" | "out_addr.bin" | "out_spender.bin" | "out_prev_addr.bin" => m.outputs,
            "addr_key.bin" | "addr_last_out.bin" => m.addrs,
            // What is known filled; past it, script types come from the keys.
            "addr_type.bin" => m.addr_types.unwrap_or(0).min(m.addrs),
            "ext_ref.bin" => m.exts,
            "opret_idx.bin" => m.oprets,
            "opret_data.bin" => m.opret_bytes,
            _ => unreachable!("unknown column {col}"),
        }
    }

    /// Fill the script-type column from the address keys past what the manifest says is
    /// filled: an index built before the column existed, one last written by a binary that
    /// does not know it, or a fill cut short (which is redone: the count moves only after
    /// the column is synced). Only ever under the writer lock.
    fn fill_addr_types(&mut self) -> Result<(), IndexError> {
        let io = |p: &Path, e| IndexError::Io(p.to_path_buf(), e);
        let want = self.manifest.addrs;
        let have = self
            .addr_type
            .file_records()
            .map_err(|e| io(&self.addr_type.path, e))?
            .min(self.manifest.addr_types.unwrap_or(0));
        if have >= want {
            return Ok(());
        }
        const CHUNK: u64 = 1 << 16;
        let mut keys = vec![0u8; (CHUNK * 33) as usize];
        let mut types = Vec::with_capacity(CHUNK as usize);
        let mut a = have;
        while a < want {
            let n = CHUNK.min(want - a);
            let buf = &mut keys[..(n * 33) as usize];
            self.addr_key
                .read_exact_at(buf, a * 33)
                .map_err(|e| io(&self.addr_key.path, e))?;
            types.clear();
            types.extend(buf.chunks(33).map(|k| k[0]));
            self.addr_type
                .write_at(a, &types)
                .map_err(|e| io(&self.addr_type.path, e))?;
            a += n;
        }
        self.addr_type
            .sync()
            .map_err(|e| io(&self.addr_type.path, e))?;
        self.manifest.addr_types = Some(want);
        let dir = self.dir.clone();
        self.manifest
            .store(&self.dir)
            .map_err(|e| IndexError::Io(dir, e))
    }

    /// Map exactly what the manifest commits.
    fn map_committed(&mut self) -> Result<(), IndexError> {
        let lens: Vec<u64> = self
            .columns_mut()
            .iter()
            .map(|c| {
                c.path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
            .iter()
            .map(|n| self.committed_len(n))
            .collect();
        let dir = self.dir.clone();
        for (c, n) in self.columns_mut().into_iter().zip(lens) {
            let have = c
                .file_records()
                .map_err(|e| IndexError::Io(dir.clone(), e))?;
            if have < n {
                return Err(IndexError::Corrupt(format!(
                    "{} holds {have} records, the manifest commits {n}",
                    c.path.display()
                )));
            }
            c.set_committed(n)
                .map_err(|e| IndexError::Io(dir.clone(), e))?;
        }
        self.txid_table = self.open_table("txid_map", &self.manifest.txid_table.clone())?;
        self.addr_table = self.open_table("addr_map", &self.manifest.addr_table.clone())?;
        Ok(())
    }

    fn open_table(&self, name: &str, r: &TableRef) -> Result<Option<TableFile>, IndexError> {
        if r.slots == 0 {
            return Ok(None);
        }
        let p = self.dir.join(format!("{name}.{}.bin", r.gen));
        let t = if self.read_only_mount {
            TableFile::open_read_only(&p)
        } else {
            match TableFile::open(&p) {
                // Reading must need no free space.
                Err(e) if !self.writable && e.kind() == std::io::ErrorKind::StorageFull => {
                    TableFile::open_unreserved(&p)
                }
                r => r,
            }
        }
        .map_err(|e| IndexError::Io(p.clone(), e))?;
        if t.slots() != r.slots {
            return Err(IndexError::Corrupt(format!(
                "{}: {} slots, the manifest says {}",
                p.display(),
                t.slots(),
                r.slots
            )));
        }
        Ok(Some(t))
    }

    /// Bring the files back to the committed state: undo the in-place effects of records
    /// past the manifest (an interrupted batch, or blocks a rollback removed), cut them off,
    /// and delete table files the manifest does not name.
    pub(crate) fn recover(&mut self) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = |e: std::io::Error| IndexError::Io(dir.clone(), e);
        let m = self.manifest.clone();
        // Inputs past the commit: the outputs they spent are unspent again.
        let in_end = self.in_prev.file_records().map_err(io)?;
        let out_have = self.out_spender.file_records().map_err(io)?;
        for i in m.inputs..in_end {
            let prev = u40_of(&self.in_prev.read_file(i).map_err(io)?);
            if prev != COINBASE && prev & EXT_FLAG == 0 && prev < m.outputs && prev < out_have {
                self.out_spender
                    .write_at(prev, &UNSPENT.to_le_bytes())
                    .map_err(io)?;
            }
        }
        // Outputs past the commit, newest first: each address's list head goes back.
        let out_end = self
            .out_addr
            .file_records()
            .map_err(io)?
            .min(self.out_prev_addr.file_records().map_err(io)?);
        let addr_have = self.addr_last_out.file_records().map_err(io)?;
        for o in (m.outputs..out_end).rev() {
            let a = u32_of(&self.out_addr.read_file(o).map_err(io)?);
            if a != NO_ADDR && (a as u64) < m.addrs && (a as u64) < addr_have {
                let prev = self.out_prev_addr.read_file(o).map_err(io)?;
                self.addr_last_out
                    .write_at(a as u64, &prev[..5])
                    .map_err(io)?;
            }
        }
        self.out_spender.sync().map_err(io)?;
        self.addr_last_out.sync().map_err(io)?;
        let names: Vec<String> = self
            .columns_mut()
            .iter()
            .map(|c| {
                c.path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let lens: Vec<u64> = names.iter().map(|n| self.committed_len(n)).collect();
        for (c, n) in self.columns_mut().into_iter().zip(lens) {
            let have = c.file_records().map_err(io)?;
            if have < n {
                return Err(IndexError::Corrupt(format!(
                    "{} holds {have} records, the manifest commits {n}",
                    c.path.display()
                )));
            }
            // Records past the committed length (a crashed batch, or blocks rolled back) stay
            // in the file and are overwritten by the next append. Cutting the file instead
            // would pull pages from under a reader (the service) still mapping the longer
            // committed state: it would die of SIGBUS on its next read there.
            c.set_committed(n).map_err(io)?;
        }
        // Records past what was counted: a batch that crashed after inserting their ids
        // into the maps. Their entries stay there, so they count toward the maps' load.
        let ids = [
            self.tx_id.file_records().map_err(io)?,
            self.addr_key.file_records().map_err(io)?,
        ];
        let mut counted = false;
        for (k, have) in ids.into_iter().enumerate() {
            let c = &mut self.manifest.map_ids_counted[k];
            if have > *c {
                self.manifest.stale_map_entries[k] += have - *c;
                *c = have;
                counted = true;
            }
        }
        // Files first: removing the tables the manifest does not name frees space, and a
        // full disk (a batch stopped by ENOSPC) must not keep the index from being read.
        let keep = [
            format!("txid_map.{}.bin", m.txid_table.gen),
            format!("addr_map.{}.bin", m.addr_table.gen),
        ];
        for e in std::fs::read_dir(&self.dir).map_err(io)?.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if (n.starts_with("txid_map.") || n.starts_with("addr_map.")) && !keep.contains(&n) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        if counted {
            // Bookkeeping only (the maps' load): the next open counts the same again if it
            // cannot be stored now, so a full disk does not stop recovery.
            store_best_effort(&self.manifest, &self.dir)?;
        }
        self.txid_table = self.open_table("txid_map", &m.txid_table)?;
        self.addr_table = self.open_table("addr_map", &m.addr_table)?;
        self.retired.clear();
        self.maps_regrown = false;
        self.repair_maps()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn network(&self) -> Option<Network> {
        self.network
    }

    /// The network for rendering addresses (mainnet until the first block says otherwise).
    pub fn render_network(&self) -> Network {
        self.network.unwrap_or(Network::Bitcoin)
    }

    pub fn network_name(&self) -> &'static str {
        self.network.map(network_name).unwrap_or("none")
    }

    pub fn block_count(&self) -> u64 {
        self.blocks.len()
    }

    pub fn start_height(&self) -> u32 {
        self.manifest.start_height
    }

    /// Height of the last block, if any.
    pub fn tip_height(&self) -> Option<u32> {
        let n = self.block_count();
        (n > 0).then(|| self.manifest.start_height + n as u32 - 1)
    }

    pub fn block(&self, i: u64) -> BlockRec {
        BlockRec::decode(self.blocks.get(i))
    }

    pub fn block_hash(&self, i: u64) -> [u8; 32] {
        self.block(i).hash
    }

    /// Whether transaction `id` has this txid; compared as fixed-size arrays, inlined, where
    /// a slice compare calls memcmp.
    #[inline]
    pub(crate) fn txid_is(&self, id: u64, txid: &[u8; 32]) -> bool {
        <&[u8; 32]>::try_from(self.tx_id.get(id)).is_ok_and(|k| k == txid)
    }

    /// Block position (0 = first indexed block) holding a transaction.
    #[inline]
    pub fn block_of_tx(&self, tx: TxNum) -> u64 {
        // Binary search over first_tx: the block count is small enough to stay in cache.
        let (mut lo, mut hi) = (0u64, self.block_count());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            // Only the field the search needs: decoding whole records (hash included) cost
            // 5% of a screening.
            if u32_of(&self.blocks.get(mid)[40..]) <= tx {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub fn find_block_hash(&self, hash: &[u8; 32]) -> Option<u64> {
        (0..self.block_count())
            .rev()
            .find(|&i| &self.block_hash(i) == hash)
    }

    pub fn block_txs(&self, b: u64) -> Range<TxNum> {
        let first = self.block(b).first_tx;
        let end = if b + 1 < self.block_count() {
            self.block(b + 1).first_tx
        } else {
            self.tx_id.len() as u32
        };
        first..end
    }

    pub fn ext_ref(&self, i: u64) -> ([u8; 32], u32) {
        let b = self.ext_ref.get(i);
        (b[..32].try_into().expect("32"), u32_of(&b[32..]))
    }

    /// Next output of the same address, going back in time.
    pub fn out_prev_same_addr(&self, o: OutNum) -> Option<OutNum> {
        let v = u40_of(self.out_prev_addr.get(o));
        (v != NO_OUT).then_some(v)
    }

    pub fn addr_last_out(&self, a: AddrId) -> Option<OutNum> {
        let mut v = u40_of(&self.addr_last_out.get_current(a as u64)[..5]);
        // Beside a running writer the head may already name outputs of its uncommitted
        // batch: step back over them through the (already written) list links.
        while v != NO_OUT && v >= self.out_value.len() {
            v = u40_of(&self.out_prev_addr.read_file(v).ok()?[..5]);
        }
        (v != NO_OUT).then_some(v)
    }

    /// How many OP_RETURN outputs are indexed (cross-chain joins scan them for memos).
    pub fn op_return_count(&self) -> u64 {
        self.opret_idx.len()
    }

    /// The `i`-th OP_RETURN output, in chain order, and its script.
    pub fn op_return_at(&self, i: u64) -> (OutNum, Vec<u8>) {
        let rec = self.opret_idx.get(i);
        let off = u64_of(&rec[5..13]);
        let len = u32_of(&rec[13..17]) as u64;
        (
            u40_of(rec),
            (off..off + len).map(|k| self.opret_data.get(k)[0]).collect(),
        )
    }

    /// The data of an OP_RETURN output.
    pub fn op_return_data(&self, o: OutNum) -> Option<Vec<u8>> {
        let (mut lo, mut hi) = (0u64, self.opret_idx.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let rec = self.opret_idx.get(mid);
            let out = u40_of(rec);
            if out == o {
                let off = u64_of(&rec[5..13]);
                let len = u32_of(&rec[13..17]) as u64;
                return Some(
                    (off..off + len)
                        .map(|i| self.opret_data.get(i)[0])
                        .collect(),
                );
            }
            if out < o {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        None
    }

    /// Bytes per part of the index, for sizing (see BENCHMARKS.md).
    pub fn sizes(&mut self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .columns_mut()
            .iter()
            .map(|c| {
                (
                    c.path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string(),
                    c.bytes_on_disk(),
                )
            })
            .collect();
        if let Some(t) = &self.txid_table {
            v.push(("txid_map".into(), t.slots() * 4));
        }
        if let Some(t) = &self.addr_table {
            v.push(("addr_map".into(), t.slots() * 4));
        }
        v
    }

    #[inline]
    pub(crate) fn table_lookup<F: Fn(u32) -> bool>(
        t: &Option<TableFile>,
        h: u64,
        limit: u64,
        matches: F,
    ) -> Option<u32> {
        let t = t.as_ref()?;
        let mask = t.slots() - 1;
        let mut i = h & mask;
        // Bounded, so that even a map somehow full answers "absent" instead of spinning.
        for _ in 0..t.slots() {
            let v = t.slot(i);
            if v == 0 {
                return None;
            }
            let id = v - 1;
            if (id as u64) < limit && matches(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
        None
    }
}

#[inline]
pub(crate) fn txid_hash(txid: &[u8; 32]) -> u64 {
    u64::from_le_bytes(txid[..8].try_into().expect("8"))
}

#[inline]
pub(crate) fn addr_hash(k: &AddressKey) -> u64 {
    u64::from_le_bytes(k.hash[..8].try_into().expect("8"))
        ^ (k.kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl ChainView for Index {
    #[inline]
    fn tx_count(&self) -> u64 {
        self.tx_id.len()
    }
    #[inline]
    fn txid(&self, tx: TxNum) -> [u8; 32] {
        self.tx_id.get(tx as u64).try_into().expect("32")
    }
    #[inline]
    fn tx_height(&self, tx: TxNum) -> u32 {
        self.manifest.start_height + self.block_of_tx(tx) as u32
    }
    fn tx_block(&self, tx: TxNum) -> (u32, Range<TxNum>) {
        let b = self.block_of_tx(tx);
        (self.manifest.start_height + b as u32, self.block_txs(b))
    }
    #[inline]
    fn prefetch_output(&self, out: OutNum) {
        self.out_addr.prefetch(out);
        self.out_value.prefetch(out);
    }
    #[inline]
    fn tx_locktime(&self, tx: TxNum) -> u32 {
        u32_of(self.tx_locktime.get(tx as u64))
    }
    #[inline]
    fn tx_version(&self, tx: TxNum) -> i32 {
        u32_of(self.tx_version.get(tx as u64)) as i32
    }
    #[inline]
    fn tx_inputs(&self, tx: TxNum) -> Range<InNum> {
        let t = tx as u64;
        let end = if t + 1 < self.tx_first_in.len() {
            u40_of(self.tx_first_in.get(t + 1))
        } else {
            self.in_prev.len()
        };
        u40_of(self.tx_first_in.get(t))..end
    }
    #[inline]
    fn tx_outputs(&self, tx: TxNum) -> Range<OutNum> {
        let t = tx as u64;
        let end = if t + 1 < self.tx_first_out.len() {
            u40_of(self.tx_first_out.get(t + 1))
        } else {
            self.out_value.len()
        };
        u40_of(self.tx_first_out.get(t))..end
    }
    #[inline]
    fn input_prevout(&self, input: InNum) -> Prevout {
        let v = u40_of(self.in_prev.get(input));
        if v == COINBASE {
            Prevout::Coinbase
        } else if v & EXT_FLAG != 0 {
            let (txid, vout) = self.ext_ref(v & !EXT_FLAG);
            Prevout::External { txid, vout }
        } else {
            Prevout::Output(v)
        }
    }
    #[inline]
    fn output_value(&self, out: OutNum) -> u64 {
        u64_of(self.out_value.get(out))
    }
    #[inline]
    fn output_addr(&self, out: OutNum) -> Option<AddrId> {
        let a = u32_of(self.out_addr.get(out));
        (a != NO_ADDR).then_some(a)
    }
    #[inline]
    fn output_spender(&self, out: OutNum) -> Option<TxNum> {
        let s = u32_of(&self.out_spender.get_current(out)[..4]);
        // A reader running beside a writer may see a spend of a batch not yet committed.
        (s != UNSPENT && (s as u64) < self.tx_id.len()).then_some(s)
    }
    #[inline]
    fn output_tx(&self, out: OutNum) -> TxNum {
        let (mut lo, mut hi) = (0u64, self.tx_first_out.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if u40_of(self.tx_first_out.get(mid)) <= out {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo as TxNum
    }
    fn addr_count(&self) -> u64 {
        self.addr_key.len()
    }
    /// One byte of the key column, not the whole key: detectors ask this of every input
    /// and output.
    fn output_script_type(&self, out: OutNum) -> cointrail_chain::ScriptType {
        match self.output_addr(out) {
            Some(a) => {
                // Past the filled part only for a reader that opened while a writer was
                // filling the column of an older index.
                let b = if (a as u64) < self.addr_type.len() {
                    self.addr_type.get(a as u64)[0]
                } else {
                    self.addr_key.get(a as u64)[0]
                };
                cointrail_chain::ScriptType::from_u8(b).expect("stored keys are valid")
            }
            None => cointrail_chain::ScriptType::OpReturn,
        }
    }
    fn addr_key(&self, addr: AddrId) -> AddressKey {
        AddressKey::from_bytes(self.addr_key.get(addr as u64).try_into().expect("33"))
            .expect("stored keys are valid")
    }
    fn lookup_txid(&self, txid: &[u8; 32]) -> Option<TxNum> {
        Index::table_lookup(&self.txid_table, txid_hash(txid), self.tx_id.len(), |id| {
            self.txid_is(id as u64, txid)
        })
    }
    fn lookup_addr(&self, key: &AddressKey) -> Option<AddrId> {
        let kb = key.to_bytes();
        Index::table_lookup(
            &self.addr_table,
            addr_hash(key),
            self.addr_key.len(),
            |id| <&[u8; 33]>::try_from(self.addr_key.get(id as u64)).is_ok_and(|k| *k == kb),
        )
    }
}

/// The errors that say a file system cannot be written (a read-only mount, or no write
/// permission on the evidence copy).
fn read_only_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ReadOnlyFilesystem
        || e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(30)
}

/// Store a manifest whose only news is derived bookkeeping that the next open recomputes
/// identically: a full disk is then a warning, not a failure to open.
pub(crate) fn store_best_effort(m: &Manifest, dir: &Path) -> Result<(), IndexError> {
    match m.store(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == std::io::ErrorKind::StorageFull
                || e.kind() == std::io::ErrorKind::QuotaExceeded =>
        {
            let _ = std::fs::remove_file(dir.join("manifest.json.tmp"));
            tracing::warn!(
                "{}: no space left to update the manifest's map counts ({e}); they are counted again at the next open",
                dir.display()
            );
            Ok(())
        }
        Err(e) => Err(IndexError::Io(dir.to_path_buf(), e)),
    }
}
