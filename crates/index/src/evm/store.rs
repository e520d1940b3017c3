use std::collections::HashMap;

use super::maps::{addr_hash, tx_hash, Maps, MapsRef, ADDR, TX};
use std::fs::File;
use std::path::{Path, PathBuf};

use cointrail_evm::movement::{block_movements, Asset, BlockRows, Movement};
use cointrail_evm::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::column::{u40_bytes, u40_of, Column};
use crate::IndexError;

pub const EVM_FORMAT: u32 = 1;
pub(crate) const BLOCK_W: usize = 8 + 32 + 8 + 8 + 8;
pub(crate) const TX_W: usize = 32 + 4 + 1 + 8;
pub(crate) const MV_W: usize = 1 + 4 + 4 + 4 + 32 + 5 + 5 + 5;
pub(crate) const NONE40: u64 = (1 << 40) - 1;

/// What is committed: the length of every column. Written last, atomically.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EvmManifest {
    pub format: u32,
    pub chain: String,
    pub blocks: u64,
    pub txs: u64,
    pub movements: u64,
    pub addrs: u64,
    pub assets: u64,
    pub paths: u64,
    pub path_words: u64,
    pub generation: u64,
    /// The on-disk lookup maps (None: an index from before them; built at open).
    #[serde(default)]
    pub maps: Option<MapsRef>,
    /// The EIP-155 chain id, once a node told it (`follow`); files do not carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// Running totals and list positions (`totals.rs`); None: an index from before them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<super::totals::TotalsManifest>,
    /// Logs and per-block id starts (`logs.rs`); None: an index from before them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<super::logs::ExtraManifest>,
}

impl EvmManifest {
    fn load(dir: &Path) -> std::io::Result<Option<Self>> {
        let p = dir.join("manifest.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", p.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    pub(crate) fn store(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = dir.join("manifest.json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("manifest serializes"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("manifest.json"))?;
        File::open(dir)?.sync_all()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EvmStats {
    pub chain: String,
    pub blocks: u64,
    pub first_block: Option<u64>,
    pub last_block: Option<u64>,
    pub transactions: u64,
    pub movements: u64,
    pub addresses: u64,
    pub tokens: u64,
    /// Event logs kept (see `logs.rs`).
    pub logs: u64,
}

pub struct EvmIndex {
    pub(crate) dir: PathBuf,
    _lock: File,
    writable: bool,
    pub(crate) m: EvmManifest,
    pub(crate) blocks: Column,
    pub(crate) txs: Column,
    pub(crate) mvs: Column,
    pub(crate) addrs: Column,
    pub(crate) out_head: Column,
    pub(crate) in_head: Column,
    pub(crate) assets: Column,
    pub(crate) path_idx: Column,
    pub(crate) path_words: Column,
    pub(crate) maps: Option<Maps>,
    pub(crate) asset_ids: HashMap<Address, u32>,
    pub(crate) totals: super::totals::Totals,
    pub(crate) extra: super::logs::ExtraCols,
    pub(crate) logs_given: bool,
}

fn io_err(dir: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |e| IndexError::Io(dir.to_path_buf(), e)
}

impl EvmIndex {
    /// Open (creating if needed) for writing: takes the writer lock and undoes what an
    /// interrupted writer left past the manifest.
    pub fn open_writer(dir: &Path, chain: &str) -> Result<EvmIndex, IndexError> {
        let mut idx = Self::open(dir, true)?;
        if idx.m.chain.is_empty() {
            idx.m.chain = chain.to_string();
        } else if idx.m.chain != chain {
            return Err(IndexError::Format(format!(
                "{}: this index holds chain `{}`, not `{chain}`; use another --data-dir",
                dir.display(),
                idx.m.chain
            )));
        }
        Ok(idx)
    }

    pub fn open_reader(dir: &Path) -> Result<EvmIndex, IndexError> {
        if !dir.join("manifest.json").exists() {
            return Err(IndexError::NoIndex(dir.to_path_buf()));
        }
        Self::open(dir, false)
    }

    fn open(dir: &Path, writable: bool) -> Result<EvmIndex, IndexError> {
        let io = io_err(dir);
        std::fs::create_dir_all(dir).map_err(&io)?;
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("LOCK"))
            .map_err(&io)?;
        if writable {
            lock.try_lock()
                .map_err(|_| IndexError::Locked(dir.to_path_buf()))?;
        }
        let mut m = EvmManifest::load(dir).map_err(&io)?.unwrap_or(EvmManifest {
            format: EVM_FORMAT,
            totals: Some(Default::default()),
            extra: Some(Default::default()),
            ..Default::default()
        });
        if writable && m.extra.is_none() {
            // An index from before logs were kept: keep them from the next block on.
            m.extra = Some(super::logs::ExtraManifest {
                from_block: m.blocks,
                from_tx: m.txs,
                ..Default::default()
            });
        }
        if m.format != EVM_FORMAT {
            return Err(IndexError::Format(format!(
                "{}: EVM index format {} is not {EVM_FORMAT}; rebuild it",
                dir.display(),
                m.format
            )));
        }
        let c = |n: &str, w: usize| Column::open(dir, n, w).map_err(&io);
        let mut idx = EvmIndex {
            dir: dir.to_path_buf(),
            _lock: lock,
            writable,
            blocks: c("blocks.bin", BLOCK_W)?,
            txs: c("txs.bin", TX_W)?,
            mvs: c("mvs.bin", MV_W)?,
            addrs: c("addrs.bin", 20)?,
            out_head: c("addr_out_head.bin", 5)?,
            in_head: c("addr_in_head.bin", 5)?,
            assets: c("assets.bin", 20)?,
            path_idx: c("mv_path_idx.bin", 12)?,
            path_words: c("mv_path.bin", 4)?,
            m,
            maps: None,
            asset_ids: HashMap::new(),
            totals: super::totals::Totals::open(dir).map_err(&io)?,
            extra: super::logs::ExtraCols::open(dir).map_err(&io)?,
            logs_given: true,
        };
        if writable {
            idx.recover()?;
        }
        idx.map_committed()?;
        idx.load_assets();
        super::tokens::teach(&super::tokens::load(dir)?);
        idx.open_maps()?;
        if writable && idx.m.totals.is_none() {
            idx.totals_build()?;
        }
        Ok(idx)
    }

    /// Map the lookup maps, put back entries a crash left unsynced, or build them for an
    /// index from before them (in memory only for a reader).
    fn open_maps(&mut self) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = io_err(&dir);
        let counts = [self.txs.len(), self.addrs.len()];
        let txs = &self.txs;
        let addrs = &self.addrs;
        let th = |i: u64| tx_hash(&B256::from_slice(&txs.get(i)[..32]));
        let ah = |i: u64| addr_hash(&Address::from_slice(addrs.get(i)));
        let mut store = false;
        let maps = match self.m.maps.clone() {
            Some(r) => {
                let mut maps = Maps::open(&dir, &r, !self.writable).map_err(&io)?;
                for (w, h) in [(TX, &th as &dyn Fn(u64) -> u64), (ADDR, &ah)] {
                    if maps.r.synced[w] < counts[w] {
                        maps.repair(w, maps.r.synced[w], counts[w], h);
                        store = self.writable;
                    }
                }
                maps
            }
            None => {
                store = self.writable && counts != [0, 0];
                Maps::build(&dir, 1, [&th, &ah], counts, !self.writable).map_err(&io)?
            }
        };
        self.maps = Some(maps);
        if store {
            let maps = self.maps.as_mut().expect("just set");
            maps.flush().map_err(&io)?;
            maps.r.synced = counts;
            maps.regrown = false;
            self.m.maps = Some(maps.r.clone());
            self.m.store(&dir).map_err(&io)?;
        }
        Ok(())
    }

    pub(crate) fn maps(&self) -> &Maps {
        self.maps.as_ref().expect("maps are opened with the index")
    }

    /// The id of a transaction hash (committed, or pending for the writer).
    pub fn tx_id(&self, h: &B256) -> Option<u64> {
        let txs = &self.txs;
        self.maps().find(TX, tx_hash(h), txs.len(), |i| {
            &txs.get(i)[..32] == h.as_slice()
        })
    }

    /// The id of an address, if it ever appeared.
    pub fn address_id(&self, a: &Address) -> Option<u32> {
        let addrs = &self.addrs;
        self.maps()
            .find(ADDR, addr_hash(a), addrs.len(), |i| {
                addrs.get(i) == a.as_slice()
            })
            .map(|i| i as u32)
    }

    fn cols(&mut self) -> [&mut Column; 14] {
        let [l, t, d, tl, st] = self.extra.cols();
        [
            l,
            t,
            d,
            tl,
            st,
            &mut self.blocks,
            &mut self.txs,
            &mut self.mvs,
            &mut self.addrs,
            &mut self.out_head,
            &mut self.in_head,
            &mut self.assets,
            &mut self.path_idx,
            &mut self.path_words,
        ]
    }

    fn committed_counts(&self) -> [u64; 14] {
        let m = &self.m;
        let [l, t, d, tl, st] = super::logs::extra_counts(m);
        [
            l,
            t,
            d,
            tl,
            st,
            m.blocks,
            m.txs,
            m.movements,
            m.addrs,
            m.addrs,
            m.addrs,
            m.assets,
            m.paths,
            m.path_words,
        ]
    }

    fn map_committed(&mut self) -> Result<(), IndexError> {
        let counts = self.committed_counts();
        let dir = self.dir.clone();
        for (c, n) in self.cols().into_iter().zip(counts) {
            if c.file_records().map_err(io_err(&dir))? < n {
                return Err(IndexError::Corrupt(format!(
                    "{} is shorter than its manifest says",
                    c.path.display()
                )));
            }
            c.set_committed(n).map_err(io_err(&dir))?;
        }
        self.totals_map_committed()
    }

    /// Records past the manifest are an interrupted batch: cut them off, and point list
    /// heads that were already moved onto them back at committed movements.
    fn recover(&mut self) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = io_err(&dir);
        let counts = self.committed_counts();
        let mut dirty = false;
        for (c, n) in self.cols().into_iter().zip(counts) {
            if c.file_records().map_err(&io)? > n {
                dirty = true;
            }
        }
        // Heads are written after the records they point at, so a batch that moved a head
        // also left records past the manifest.
        if dirty {
            // Map entries of the records cut below stay behind: count them as stale, and
            // trust the maps only up to what is still committed.
            let cut = [
                self.txs
                    .file_records()
                    .map_err(&io)?
                    .saturating_sub(self.m.txs),
                self.addrs
                    .file_records()
                    .map_err(&io)?
                    .saturating_sub(self.m.addrs),
            ];
            let keep = [self.m.txs, self.m.addrs];
            for r in self
                .m
                .maps
                .iter_mut()
                .chain(self.maps.iter_mut().map(|m| &mut m.r))
            {
                for w in [TX, ADDR] {
                    r.stale[w] += cut[w];
                    r.synced[w] = r.synced[w].min(keep[w]);
                }
            }
            self.repair_heads(self.m.movements)?;
            for (c, n) in self.cols().into_iter().zip(counts) {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&c.path)
                    .map_err(&io)?;
                f.set_len(n * c.width as u64).map_err(&io)?;
                f.sync_all().map_err(&io)?;
            }
        }
        self.totals_recover()
    }

    /// Every head (and so every list) must point below `keep` movements: follow the
    /// previous-pointers stored in the (possibly uncommitted) movement records.
    fn repair_heads(&mut self, keep: u64) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = io_err(&dir);
        let n_addrs = self.m.addrs;
        for (head_col, prev_off) in [(0usize, MV_W - 10), (1usize, MV_W - 5)] {
            for a in 0..n_addrs {
                let col = if head_col == 0 {
                    &self.out_head
                } else {
                    &self.in_head
                };
                let h = u40_of(&col.read_file(a).map_err(&io)?[..5]);
                if h == 0 || h - 1 < keep {
                    continue;
                }
                let mut cur = h - 1;
                while cur != NONE40 && cur >= keep {
                    let rec = self.read_mv_file(cur)?;
                    cur = u40_of(&rec[prev_off..prev_off + 5]);
                }
                let new = if cur == NONE40 { 0 } else { cur + 1 };
                let col = if head_col == 0 {
                    &mut self.out_head
                } else {
                    &mut self.in_head
                };
                col.write_at(a, &u40_bytes(new)).map_err(&io)?;
                col.sync().map_err(&io)?;
            }
        }
        Ok(())
    }

    fn read_mv_file(&self, i: u64) -> Result<Vec<u8>, IndexError> {
        let mut buf = vec![0u8; MV_W];
        self.mvs
            .read_exact_at(&mut buf, i * MV_W as u64)
            .map_err(io_err(&self.dir))?;
        Ok(buf)
    }

    /// Token contracts are few: their ids live in memory.
    fn load_assets(&mut self) {
        self.asset_ids = (0..self.assets.len())
            .map(|i| (Address::from_slice(self.assets.get(i)), i as u32 + 1))
            .collect();
    }

    pub fn manifest(&self) -> &EvmManifest {
        &self.m
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tip(&self) -> Option<u64> {
        (self.blocks.len() > 0).then(|| self.block_number(self.blocks.len() - 1))
    }

    pub(crate) fn block_number(&self, i: u64) -> u64 {
        u64::from_le_bytes(self.blocks.get(i)[..8].try_into().unwrap())
    }

    fn addr_id(&mut self, a: Address) -> Result<u32, IndexError> {
        if let Some(id) = self.address_id(&a) {
            return Ok(id);
        }
        let id = self.addrs.len();
        self.addrs.push(a.as_slice());
        self.out_head.push(&u40_bytes(0));
        self.in_head.push(&u40_bytes(0));
        self.totals.push_address();
        let addrs = &self.addrs;
        let ah = |i: u64| addr_hash(&Address::from_slice(addrs.get(i)));
        let maps = self.maps.as_mut().expect("maps are opened with the index");
        maps.add(&self.dir, ADDR, addr_hash(&a), id, &ah)
            .map_err(io_err(&self.dir))?;
        Ok(id as u32)
    }

    fn asset_id(&mut self, a: Asset) -> u32 {
        match a {
            Asset::Native => 0,
            Asset::Token(t) => {
                if let Some(&id) = self.asset_ids.get(&t) {
                    return id;
                }
                self.assets.push(t.as_slice());
                let id = self.assets.len() as u32;
                self.asset_ids.insert(t, id);
                id
            }
        }
    }

    /// The ingest entry point for every EVM source: check one block's rows, turn them into
    /// movements and append them (pending until [`EvmIndex::commit`]). Blocks must come in
    /// order, each one after the tip; a bad block changes nothing.
    pub fn ingest_block(&mut self, rows: &BlockRows) -> Result<usize, IndexError> {
        if !self.writable {
            return Err(IndexError::Block("the EVM index is open read-only".into()));
        }
        let movements = block_movements(rows).map_err(|e| IndexError::Block(e.to_string()))?;
        let b = rows
            .block
            .as_ref()
            .expect("block_movements checked the block row");
        let logs = super::logs::check_logs(rows, self.logs_given())?;
        if let Some(tip) = self.tip() {
            if b.row.number <= tip {
                return Err(IndexError::Block(format!(
                    "{}:{}: block {} is not after the index tip {tip}; it is already indexed",
                    b.file, b.line, b.row.number
                )));
            }
        }
        let first_tx = self.txs.len();
        let first_mv = self.mvs.len();
        let mut rec = Vec::with_capacity(BLOCK_W);
        rec.extend_from_slice(&b.row.number.to_le_bytes());
        rec.extend_from_slice(b.row.hash.as_slice());
        rec.extend_from_slice(&b.row.timestamp.to_le_bytes());
        rec.extend_from_slice(&first_tx.to_le_bytes());
        rec.extend_from_slice(&first_mv.to_le_bytes());
        let block_idx = self.blocks.len() as u32;
        self.blocks.push(&rec);
        self.push_block_start(EvmIndex::pending_logs_complete(&logs));

        // Movements come grouped by transaction index; transactions own the range from
        // their first movement to the next transaction's.
        let mut by_tx: Vec<Vec<&Movement>> = vec![Vec::new(); rows.transactions.len()];
        let mut block_level = Vec::new();
        let pos: HashMap<u32, usize> = rows
            .transactions
            .iter()
            .enumerate()
            .map(|(i, t)| (t.row.transaction_index as u32, i))
            .collect();
        for m in &movements {
            match m.tx_index.and_then(|i| pos.get(&i)) {
                Some(&p) => by_tx[p].push(m),
                None => block_level.push(m),
            }
        }
        for (pos, (t, ms)) in rows.transactions.iter().zip(by_tx).enumerate() {
            let tx_id = self.txs.len();
            let mut rec = Vec::with_capacity(TX_W);
            rec.extend_from_slice(t.row.hash.as_slice());
            rec.extend_from_slice(&block_idx.to_le_bytes());
            rec.push(match t.row.receipt_status {
                Some(1) => 1,
                Some(0) => 0,
                _ => 2,
            });
            rec.extend_from_slice(&self.mvs.len().to_le_bytes());
            self.txs.push(&rec);
            let txs = &self.txs;
            let th = |i: u64| tx_hash(&B256::from_slice(&txs.get(i)[..32]));
            let maps = self.maps.as_mut().expect("maps are opened with the index");
            maps.add(&self.dir, TX, tx_hash(&t.row.hash), tx_id, &th)
                .map_err(io_err(&self.dir))?;
            self.push_tx_logs(tx_id, &logs, pos);
            for m in ms {
                self.push_movement(m, tx_id)?;
            }
        }
        for m in block_level {
            self.push_movement(m, NONE40)?;
        }
        Ok(movements.len())
    }

    fn push_movement(&mut self, m: &Movement, tx: u64) -> Result<(), IndexError> {
        let id = self.mvs.len();
        let asset = self.asset_id(m.asset);
        let from = self.addr_id(m.from)?;
        let to = self.addr_id(m.to)?;
        let prev_from = u40_of(&self.out_head.get_current(from as u64)[..5]);
        let prev_to = u40_of(&self.in_head.get_current(to as u64)[..5]);
        let mut rec = [0u8; MV_W];
        rec[0] = m.kind as u8;
        rec[1..5].copy_from_slice(&asset.to_le_bytes());
        rec[5..9].copy_from_slice(&from.to_le_bytes());
        rec[9..13].copy_from_slice(&to.to_le_bytes());
        rec[13..45].copy_from_slice(&m.amount.to_be_bytes::<32>());
        rec[45..50].copy_from_slice(&u40_bytes(tx));
        rec[50..55].copy_from_slice(&u40_bytes(if prev_from == 0 {
            NONE40
        } else {
            prev_from - 1
        }));
        rec[55..60].copy_from_slice(&u40_bytes(if prev_to == 0 { NONE40 } else { prev_to - 1 }));
        let heads = [
            prev_from,
            u40_of(&self.in_head.get_current(from as u64)[..5]),
            u40_of(&self.out_head.get_current(to as u64)[..5]),
            prev_to,
        ];
        let block = self.blocks.len() as u32 - 1;
        self.totals_push(
            id,
            block,
            m.kind,
            asset,
            from,
            to,
            m.amount,
            tx != NONE40,
            heads,
        );
        self.mvs.push(&rec);
        self.out_head.set(from as u64, &u40_bytes(id + 1));
        self.in_head.set(to as u64, &u40_bytes(id + 1));
        let mut p = [0u8; 12];
        p[..8].copy_from_slice(&id.to_le_bytes());
        if !m.trace_address.is_empty() {
            p[8..12].copy_from_slice(&(self.path_words.len() as u32).to_le_bytes());
            self.path_idx.push(&p);
            self.path_words
                .push(&(m.trace_address.len() as u32).to_le_bytes());
            for w in &m.trace_address {
                self.path_words.push(&w.to_le_bytes());
            }
        }
        Ok(())
    }

    /// Make the pending blocks durable: appended records, then list heads, then the
    /// maps, then the manifest. A crash before the manifest leaves the previous state.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        self.commit_with(true)
    }

    /// As [`EvmIndex::commit`], leaving the maps unsynced unless one was rebuilt: a
    /// commit in the middle of a long ingest (the maps are derived from the columns; the
    /// manifest says how far they are known synced and an open repairs the rest). The
    /// ingest's last commit should be a [`EvmIndex::commit`].
    pub fn commit_batch(&mut self) -> Result<(), IndexError> {
        self.commit_with(false)
    }

    fn commit_with(&mut self, sync_maps: bool) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = io_err(&dir);
        for c in self.cols() {
            c.write_pending().map_err(&io)?;
        }
        self.totals.write_pending().map_err(&io)?;
        crate::failpoint("evm-after-records");
        self.out_head.write_overlay().map_err(&io)?;
        self.in_head.write_overlay().map_err(&io)?;
        self.totals.write_overlay().map_err(&io)?;
        let counts = [self.txs.len(), self.addrs.len()];
        let maps = self.maps.as_mut().expect("maps are opened with the index");
        let sync = sync_maps || maps.regrown;
        if sync {
            maps.flush().map_err(&io)?;
            maps.r.synced = counts;
        }
        let retired = std::mem::take(&mut maps.retired);
        self.m.maps = Some(maps.r.clone());
        crate::failpoint("evm-before-manifest");
        self.m.blocks = self.blocks.len();
        self.m.txs = self.txs.len();
        self.m.movements = self.mvs.len();
        self.m.addrs = self.addrs.len();
        self.m.assets = self.assets.len();
        self.m.paths = self.path_idx.len();
        self.m.path_words = self.path_words.len();
        self.totals_commit_counts();
        self.extra_commit_counts();
        self.m.generation += 1;
        self.m.store(&dir).map_err(&io)?;
        if sync {
            self.maps.as_mut().expect("open").regrown = false;
        }
        for p in retired {
            let _ = std::fs::remove_file(p);
        }
        for c in self.cols() {
            c.finish_commit().map_err(&io)?;
        }
        self.totals.finish_commit().map_err(&io)
    }

    /// Forget everything after block `number` (a reorganisation); commits pending work first.
    pub fn rollback_to(&mut self, number: u64) -> Result<(), IndexError> {
        self.commit()?;
        let keep = (0..self.blocks.len())
            .take_while(|&i| self.block_number(i) <= number)
            .count() as u64;
        if keep == self.blocks.len() {
            return Ok(());
        }
        let rec = self.blocks.get(keep).to_vec();
        let first_tx = u64::from_le_bytes(rec[48..56].try_into().unwrap());
        let first_mv = u64::from_le_bytes(rec[56..64].try_into().unwrap());
        let keep_paths = (0..self.path_idx.len())
            .take_while(|&i| {
                u64::from_le_bytes(self.path_idx.get(i)[..8].try_into().unwrap()) < first_mv
            })
            .count() as u64;
        let keep_words = if keep_paths < self.path_idx.len() {
            u32::from_le_bytes(self.path_idx.get(keep_paths)[8..12].try_into().unwrap()) as u64
        } else {
            self.path_words.len()
        };
        // The manifest first: from then on the dropped records are "past the manifest",
        // exactly what recovery undoes after a crash, so the same code finishes the job.
        // Addresses and tokens first seen in dropped blocks go too (ids are given in order
        // of first appearance, so they are the ids from the first dropped block's start
        // on), so a reorganised index equals one that never saw the dropped blocks; an
        // index from before block starts were recorded keeps them.
        if let Some((addrs, assets)) = self.extra_rollback(keep, first_tx) {
            self.m.addrs = addrs;
            self.m.assets = assets;
        }
        self.m.blocks = keep;
        self.m.txs = first_tx;
        self.m.movements = first_mv;
        self.m.paths = keep_paths;
        self.m.path_words = keep_words;
        self.totals_rollback(first_mv);
        self.m.generation += 1;
        let dir = self.dir.clone();
        self.m.store(&dir).map_err(io_err(&dir))?;
        self.recover()?;
        self.map_committed()?;
        self.load_assets();
        Ok(())
    }

    pub fn stats(&self) -> EvmStats {
        EvmStats {
            chain: self.m.chain.clone(),
            blocks: self.blocks.len(),
            first_block: (self.blocks.len() > 0).then(|| self.block_number(0)),
            last_block: self.tip(),
            transactions: self.txs.len(),
            movements: self.mvs.len(),
            addresses: self.addrs.len(),
            tokens: self.assets.len(),
            logs: self.extra.logs.len(),
        }
    }

    /// Every invariant the writer keeps, checked from the columns (`cointrail verify`).
    pub fn verify(&self) -> Vec<String> {
        let mut bad = Vec::new();
        let n_mv = self.mvs.len();
        let mut prev_first = (0u64, 0u64);
        for b in 0..self.blocks.len() {
            let r = self.blocks.get(b);
            let ft = u64::from_le_bytes(r[48..56].try_into().unwrap());
            let fm = u64::from_le_bytes(r[56..64].try_into().unwrap());
            if ft < prev_first.0 || fm < prev_first.1 || ft > self.txs.len() || fm > n_mv {
                bad.push(format!("block record {b} points outside or backwards"));
            }
            if b > 0 && self.block_number(b) <= self.block_number(b - 1) {
                bad.push(format!("block record {b} is not after the one before"));
            }
            prev_first = (ft, fm);
        }
        for t in 0..self.txs.len() {
            let h = B256::from_slice(&self.txs.get(t)[..32]);
            if self.tx_id(&h) != Some(t) {
                bad.push(format!(
                    "transaction {t} ({h}) is not found through the hash map"
                ));
                break;
            }
        }
        for a in 0..self.addrs.len() {
            let x = Address::from_slice(self.addrs.get(a));
            if self.address_id(&x) != Some(a as u32) {
                bad.push(format!(
                    "address {a} ({x}) is not found through the address map"
                ));
                break;
            }
        }
        let mut seen_out = 0u64;
        let mut seen_in = 0u64;
        for a in 0..self.addrs.len() {
            for (head, off, side) in [(&self.out_head, 50usize, 0usize), (&self.in_head, 55, 1)] {
                let mut cur = u40_of(&head.get(a)[..5]);
                let mut last = u64::MAX;
                while cur != 0 {
                    let id = cur - 1;
                    if id >= n_mv || id >= last {
                        bad.push(format!(
                            "address {a}: list points at movement {id} out of order"
                        ));
                        break;
                    }
                    let rec = self.mvs.get(id);
                    let who =
                        u32::from_le_bytes(rec[5 + 4 * side..9 + 4 * side].try_into().unwrap());
                    if who as u64 != a {
                        bad.push(format!(
                            "address {a}: movement {id} in its list belongs to address {who}"
                        ));
                        break;
                    }
                    if side == 0 {
                        seen_out += 1
                    } else {
                        seen_in += 1
                    }
                    last = id;
                    let p = u40_of(&rec[off..off + 5]);
                    cur = if p == NONE40 { 0 } else { p + 1 };
                }
            }
            if bad.len() > 50 {
                break;
            }
        }
        self.verify_extra(&mut bad);
        if bad.is_empty() && (seen_out != n_mv || seen_in != n_mv) {
            bad.push(format!("{n_mv} movements but the address lists hold {seen_out} sent and {seen_in} received"));
        }
        for i in 0..n_mv {
            let rec = self.mvs.get(i);
            if cointrail_evm::movement::MovementKind::from_u8(rec[0]).is_none() {
                bad.push(format!("movement {i} has unknown kind {}", rec[0]));
            }
            let asset = u32::from_le_bytes(rec[1..5].try_into().unwrap());
            if asset as u64 > self.assets.len() {
                bad.push(format!("movement {i} names asset {asset} past the end"));
            }
            let tx = u40_of(&rec[45..50]);
            if tx != NONE40 && tx >= self.txs.len() {
                bad.push(format!("movement {i} names transaction {tx} past the end"));
            }
            if bad.len() > 50 {
                break;
            }
        }
        self.verify_totals(&mut bad);
        bad
    }

    /// Amount of a stored movement.
    pub(crate) fn mv_amount(rec: &[u8]) -> U256 {
        U256::from_be_bytes::<32>(rec[13..45].try_into().unwrap())
    }
}
