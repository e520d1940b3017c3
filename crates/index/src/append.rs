//! Appending blocks, committing batches, and rolling back: the writer side of the index.

use crate::column::*;
use crate::manifest::{TableRef, FORMAT, FORMAT_MAPS_BEHIND};
use crate::store::*;
use crate::IndexError;
use bitcoin::hashes::Hash;
use cointrail_chain::network::network_name;
use cointrail_chain::view::{ChainView, OutNum};
use cointrail_chain::{AddressKey, ChainBlock};
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

const MIN_SLOTS: u64 = 1 << 12;

/// How an input was resolved before its block is appended.
enum Resolved {
    Coinbase,
    Output(OutNum),
    External([u8; 32], u32),
}

impl Index {
    fn check_writable(&self) -> Result<(), IndexError> {
        if self.writable {
            Ok(())
        } else {
            Err(IndexError::Format("index opened read-only".into()))
        }
    }

    /// Set the network and start height of an empty index.
    pub fn init_chain(
        &mut self,
        network: bitcoin::Network,
        start_height: u32,
    ) -> Result<(), IndexError> {
        self.check_writable()?;
        if self.block_count() != 0 {
            return Err(IndexError::Format("the index already has blocks".into()));
        }
        self.network = Some(network);
        self.manifest.network = network_name(network).to_string();
        self.manifest.start_height = start_height;
        Ok(())
    }

    /// Validate a block against the index and append it to the pending batch. On error
    /// nothing is appended.
    pub fn append_block(&mut self, b: &ChainBlock) -> Result<(), IndexError> {
        self.check_writable()?;
        let height = self.manifest.start_height + self.block_count() as u32;
        if let Some(h) = b.height {
            if h != height {
                return Err(IndexError::Block(format!(
                    "{}: block {} says height {h}, but it would be {height} here",
                    b.origin, b.hash
                )));
            }
        }
        if self.block_count() > 0 {
            let tip = self.block_hash(self.block_count() - 1);
            if let Some(prev) = b.prev {
                if prev.to_byte_array() != tip {
                    return Err(IndexError::Block(format!(
                        "{}: block {} does not build on the tip",
                        b.origin, b.hash
                    )));
                }
            }
        }
        let keys: Vec<Option<AddressKey>> = b
            .txs
            .iter()
            .flat_map(|tx| &tx.output)
            .map(|o| AddressKey::from_script(&o.script_pubkey))
            .collect();
        self.prefetch_block(b, &keys);
        let resolved = self.resolve_inputs(b)?;
        let first_tx = self.tx_id.len();
        let rec = BlockRec {
            hash: b.hash.to_byte_array(),
            bits: b.bits,
            time: b.time,
            first_tx: u32::try_from(first_tx)
                .map_err(|_| IndexError::Format("more than 2^32 transactions".into()))?,
            first_addr: self.addr_key.len() as u32,
            first_ext: self.ext_ref.len() as u32,
            first_opret: self.opret_idx.len() as u32,
        };
        self.blocks.push(&rec.encode());
        let mut res = resolved.into_iter();
        let mut keys = keys.into_iter();
        for (pos, tx) in b.txs.iter().enumerate() {
            let tx_num = self.tx_id.len() as u32;
            let txid = b.txids[pos].to_byte_array();
            self.tx_id.push(&txid);
            self.tx_first_in.push(&u40_bytes(self.in_prev.len()));
            self.tx_first_out.push(&u40_bytes(self.out_value.len()));
            self.tx_locktime
                .push(&tx.lock_time.to_consensus_u32().to_le_bytes());
            self.tx_version.push(&tx.version.0.to_le_bytes());
            self.insert_txid(&txid, tx_num)?;
            for _ in &tx.input {
                let v = match res.next().expect("one resolution per input") {
                    Resolved::Coinbase => COINBASE,
                    Resolved::Output(o) => {
                        self.out_spender.set(o, &tx_num.to_le_bytes());
                        o
                    }
                    Resolved::External(t, vout) => {
                        let mut r = [0u8; 36];
                        r[..32].copy_from_slice(&t);
                        r[32..].copy_from_slice(&vout.to_le_bytes());
                        let e = self.ext_ref.len();
                        self.ext_ref.push(&r);
                        EXT_FLAG | e
                    }
                };
                self.in_prev.push(&u40_bytes(v));
            }
            for out in &tx.output {
                let o = self.out_value.len();
                self.out_value.push(&out.value.to_sat().to_le_bytes());
                self.out_spender.push(&UNSPENT.to_le_bytes());
                match keys.next().expect("one key per output") {
                    Some(k) => {
                        let a = self.addr_id_or_insert(&k)?;
                        self.out_addr.push(&a.to_le_bytes());
                        let prev = u40_of(&self.addr_last_out.get_current(a as u64)[..5]);
                        self.out_prev_addr.push(&u40_bytes(prev));
                        self.addr_last_out.set(a as u64, &u40_bytes(o));
                    }
                    None => {
                        self.out_addr.push(&NO_ADDR.to_le_bytes());
                        self.out_prev_addr.push(&u40_bytes(NO_OUT));
                        let data = out.script_pubkey.as_bytes();
                        let mut r = [0u8; 17];
                        r[..5].copy_from_slice(&u40_bytes(o));
                        r[5..13].copy_from_slice(&self.opret_data.len().to_le_bytes());
                        r[13..17].copy_from_slice(&(data.len() as u32).to_le_bytes());
                        self.opret_idx.push(&r);
                        for byte in data {
                            self.opret_data.push(&[*byte]);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Warm the cache for every map probe the block will make, in three rounds, each
    /// waiting only on what the round before loaded: the first slot of each probe (and of
    /// each insertion of the block's own txids); then
    /// the record that slot names (txid or address key, and the spent transaction's first
    /// output or the address's last output); then the spend link of each input whose
    /// first slot already matched. Most probes then hit the cache.
    fn prefetch_block(&self, b: &ChainBlock, keys: &[Option<AddressKey>]) {
        let (Some(tt), Some(at)) = (&self.txid_table, &self.addr_table) else {
            return;
        };
        let prevouts = || {
            b.txs
                .iter()
                .flat_map(|tx| &tx.input)
                .filter(|i| !i.previous_output.is_null())
                .map(|i| {
                    (
                        i.previous_output.txid.to_byte_array(),
                        i.previous_output.vout,
                    )
                })
        };
        let (tmask, amask) = (tt.slots() - 1, at.slots() - 1);
        for (t, _) in prevouts() {
            tt.prefetch(txid_hash(&t));
        }
        for t in &b.txids {
            // Where the block's own txids will be inserted.
            tt.prefetch(txid_hash(&t.to_byte_array()));
        }
        for k in keys.iter().flatten() {
            at.prefetch(addr_hash(k));
        }
        for (t, _) in prevouts() {
            if let Some(id) = tt.slot(txid_hash(&t) & tmask).checked_sub(1) {
                self.tx_id.prefetch(id as u64);
                self.tx_first_out.prefetch(id as u64);
            }
        }
        for k in keys.iter().flatten() {
            if let Some(id) = at.slot(addr_hash(k) & amask).checked_sub(1) {
                self.addr_key.prefetch(id as u64);
                self.addr_last_out.prefetch(id as u64);
            }
        }
        let n = self.tx_id.len();
        for (t, vout) in prevouts() {
            if let Some(id) = tt.slot(txid_hash(&t) & tmask).checked_sub(1) {
                let id = id as u64;
                if id < n && self.txid_is(id, &t) {
                    let first = u40_of(self.tx_first_out.get(id));
                    self.out_spender.prefetch(first + vout as u64);
                }
            }
        }
    }

    fn resolve_inputs(&self, b: &ChainBlock) -> Result<Vec<Resolved>, IndexError> {
        let mut local: HashMap<[u8; 32], (usize, usize)> = HashMap::default();
        let mut spent: HashSet<OutNum> = HashSet::default();
        let mut spent_local: HashSet<([u8; 32], u32)> = HashSet::default();
        let mut out = Vec::new();
        let next_out = self.out_value.len();
        let mut local_first_out = next_out;
        let mut firsts = Vec::with_capacity(b.txs.len());
        for tx in &b.txs {
            firsts.push(local_first_out);
            local_first_out += tx.output.len() as u64;
        }
        if b.txs.len() != b.txids.len() || b.txs.is_empty() {
            return Err(IndexError::Block(format!(
                "{}: block {} has no transactions or mismatched txids",
                b.origin, b.hash
            )));
        }
        for (pos, tx) in b.txs.iter().enumerate() {
            let txid = b.txids[pos].to_byte_array();
            for (k, input) in tx.input.iter().enumerate() {
                if input.previous_output.is_null() {
                    if pos != 0 {
                        return Err(IndexError::Block(format!(
                            "{}: transaction {} input {k} has a null prevout outside the coinbase",
                            b.origin, b.txids[pos]
                        )));
                    }
                    out.push(Resolved::Coinbase);
                    continue;
                }
                let ptxid = input.previous_output.txid.to_byte_array();
                let vout = input.previous_output.vout;
                let bad = |what: &str| {
                    IndexError::Block(format!("{}: transaction {} input {k} spends {}:{vout}, {what}; the block is refused", b.origin, b.txids[pos], input.previous_output.txid))
                };
                if let Some(&(lpos, nout)) = local.get(&ptxid) {
                    if vout as usize >= nout {
                        return Err(bad("an output that does not exist"));
                    }
                    if !spent_local.insert((ptxid, vout)) {
                        return Err(bad("which this block already spent"));
                    }
                    out.push(Resolved::Output(firsts[lpos] + vout as u64));
                } else if let Some(t) = self.lookup_txid(&ptxid) {
                    let r = self.tx_outputs(t);
                    if vout as u64 >= r.end - r.start {
                        return Err(bad("an output that does not exist"));
                    }
                    let o = r.start + vout as u64;
                    let cur = u32::from_le_bytes(
                        self.out_spender.get_current(o)[..4].try_into().expect("4"),
                    );
                    if cur != UNSPENT || !spent.insert(o) {
                        return Err(bad("which is already spent"));
                    }
                    out.push(Resolved::Output(o));
                } else {
                    out.push(Resolved::External(ptxid, vout));
                }
            }
            local.insert(txid, (pos, tx.output.len()));
        }
        Ok(out)
    }

    fn insert_txid(&mut self, txid: &[u8; 32], id: u32) -> Result<(), IndexError> {
        let used = self.tx_id.len() + self.manifest.stale_map_entries[0];
        if (used + 1) * 2 > self.txid_table.as_ref().map_or(0, |t| t.slots()) {
            self.grow_table(true)?;
        } else {
            let reused = (id as u64) < self.manifest.map_ids_counted[0];
            let t = self.txid_table.as_mut().expect("grown above");
            insert_once(t, txid_hash(txid), id, reused);
        }
        Ok(())
    }

    fn addr_id_or_insert(&mut self, k: &AddressKey) -> Result<u32, IndexError> {
        if let Some(a) = self.lookup_addr(k) {
            return Ok(a);
        }
        let id = self.addr_key.len() as u32;
        let kb = k.to_bytes();
        self.addr_key.push(&kb);
        self.addr_type.push(&kb[..1]);
        self.addr_last_out.push(&u40_bytes(NO_OUT));
        let used = self.addr_key.len() + self.manifest.stale_map_entries[1];
        if (used + 1) * 2 > self.addr_table.as_ref().map_or(0, |t| t.slots()) {
            self.grow_table(false)?;
        } else {
            let reused = (id as u64) < self.manifest.map_ids_counted[1];
            insert_once(
                self.addr_table.as_mut().expect("grown above"),
                addr_hash(k),
                id,
                reused,
            );
        }
        Ok(id)
    }

    /// The map hash of txid or address `id`, from its stored key.
    fn map_hash(&self, txids: bool, id: u64) -> u64 {
        if txids {
            txid_hash(self.tx_id.get(id).try_into().expect("32"))
        } else {
            addr_hash(
                &AddressKey::from_bytes(self.addr_key.get(id).try_into().expect("33"))
                    .expect("valid key"),
            )
        }
    }

    /// Rebuild a map at twice the size under a new generation; the old file stays valid for
    /// the committed state until the manifest names the new one.
    fn grow_table(&mut self, txids: bool) -> Result<(), IndexError> {
        let (name, n, gen) = if txids {
            (
                "txid_map",
                self.tx_id.len(),
                self.manifest.txid_table.gen + 1,
            )
        } else {
            (
                "addr_map",
                self.addr_key.len(),
                self.manifest.addr_table.gen + 1,
            )
        };
        let slots = ((n + 1) * 4).next_power_of_two().max(MIN_SLOTS);
        let path = self.dir.join(format!("{name}.{gen}.bin"));
        let mut t = TableFile::create(&path, slots).map_err(|e| IndexError::Io(path.clone(), e))?;
        for id in 0..n {
            table_insert(&mut t, self.map_hash(txids, id), id as u32);
        }
        let r = if txids {
            &mut self.manifest.txid_table
        } else {
            &mut self.manifest.addr_table
        };
        *r = TableRef { gen, slots };
        self.maps_regrown = true;
        // Rebuilt from the live ids alone.
        self.manifest.stale_map_entries[usize::from(!txids)] = 0;
        self.manifest.map_ids_counted[usize::from(!txids)] = n;
        let old = if txids {
            self.txid_table.replace(t)
        } else {
            self.addr_table.replace(t)
        };
        if let Some(o) = old {
            self.retired.push(o.path.clone());
        }
        Ok(())
    }

    pub fn has_pending(&self) -> bool {
        self.blocks.len() != self.blocks.committed()
    }

    /// Make the pending batch durable: appended records first, then in-place changes, then
    /// the maps, then the manifest. A crash anywhere before the manifest leaves the old state.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        self.commit_with(true)
    }

    /// As [`Index::commit`], but the maps are not synced unless one was rebuilt: a batch
    /// commit in the middle of an ingest. The manifest records how far the maps are known
    /// synced; after a crash that lost map pages, opening re-inserts the rest from the
    /// columns (`repair_maps`). The ingest's last commit syncs everything.
    pub fn commit_batch(&mut self) -> Result<(), IndexError> {
        self.commit_with(false)
    }

    fn commit_with(&mut self, sync_maps: bool) -> Result<(), IndexError> {
        self.check_writable()?;
        let sync_maps = sync_maps || self.maps_regrown;
        let dir = self.dir.clone();
        let io = |e: std::io::Error| IndexError::Io(dir.clone(), e);
        for c in self.columns_mut() {
            c.write_pending().map_err(io)?;
        }
        self.out_spender.write_overlay().map_err(io)?;
        self.addr_last_out.write_overlay().map_err(io)?;
        if sync_maps {
            for t in [&self.txid_table, &self.addr_table].into_iter().flatten() {
                t.flush().map_err(io)?;
            }
        }
        let m = &mut self.manifest;
        if !sync_maps && m.maps_synced.is_none() {
            // Everything the manifest committed so far was synced.
            m.maps_synced = Some([m.txs, m.addrs]);
        }
        m.blocks = self.blocks.len();
        m.txs = self.tx_id.len();
        m.inputs = self.in_prev.len();
        m.outputs = self.out_value.len();
        m.addrs = self.addr_key.len();
        m.addr_types = Some(self.addr_type.len());
        m.exts = self.ext_ref.len();
        m.oprets = self.opret_idx.len();
        m.opret_bytes = self.opret_data.len();
        if sync_maps {
            m.maps_synced = Some([m.txs, m.addrs]);
        }
        m.format = if m.maps_synced.is_some_and(|[t, a]| t < m.txs || a < m.addrs) {
            FORMAT_MAPS_BEHIND
        } else {
            FORMAT
        };
        m.map_ids_counted = [
            m.map_ids_counted[0].max(m.txs),
            m.map_ids_counted[1].max(m.addrs),
        ];
        m.generation += 1;
        crate::failpoint("before-manifest");
        m.store(&self.dir).map_err(io)?;
        if sync_maps {
            self.maps_regrown = false;
        }
        if !sync_maps {
            crate::failpoint("after-unsynced-maps-commit");
        }
        for c in self.columns_mut() {
            c.finish_commit().map_err(io)?;
        }
        for p in self.retired.drain(..) {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    /// Drop everything after the first `keep` blocks (a reorganisation), spend links and
    /// address lists included. Commits any pending batch first.
    pub fn rollback_to_blocks(&mut self, keep: u64) -> Result<(), IndexError> {
        self.check_writable()?;
        if self.has_pending() {
            self.commit()?;
        }
        let n = self.block_count();
        if keep >= n {
            return Ok(());
        }
        let b = self.block(keep);
        let m = &mut self.manifest;
        let (old_txs, old_addrs) = (m.txs, m.addrs);
        m.blocks = keep;
        m.txs = b.first_tx as u64;
        m.inputs = if m.txs < self.tx_first_in.len() {
            u40_of(self.tx_first_in.get(m.txs))
        } else {
            self.in_prev.len()
        };
        m.outputs = if m.txs < self.tx_first_out.len() {
            u40_of(self.tx_first_out.get(m.txs))
        } else {
            self.out_value.len()
        };
        m.addrs = b.first_addr as u64;
        m.addr_types = m.addr_types.map(|n| n.min(m.addrs));
        m.maps_synced = m.maps_synced.map(|[t, a]| [t.min(m.txs), a.min(m.addrs)]);
        m.stale_map_entries[0] += old_txs - m.txs;
        m.stale_map_entries[1] += old_addrs - m.addrs;
        m.exts = b.first_ext as u64;
        m.oprets = b.first_opret as u64;
        m.opret_bytes = if m.oprets < self.opret_idx.len() {
            u64_of(&self.opret_idx.get(m.oprets)[5..13])
        } else {
            self.opret_data.len()
        };
        m.generation += 1;
        // The manifest shrinks first; recovery then undoes and cuts what it no longer covers,
        // which is exactly what it would do after a crash at this point.
        let dir = self.dir.clone();
        self.manifest
            .store(&self.dir)
            .map_err(|e| IndexError::Io(dir, e))?;
        crate::failpoint("rollback-after-manifest");
        self.recover()
    }
}

impl Index {
    /// Put back map entries a crash may have lost: those of transactions and addresses
    /// past the counts the manifest says were synced (batch commits leave the maps
    /// unsynced). An entry already there is left alone; afterwards everything is synced.
    pub(crate) fn repair_maps(&mut self) -> Result<(), IndexError> {
        let m = self.manifest.clone();
        let [st, sa] = m.maps_synced.unwrap_or([m.txs, m.addrs]);
        if st >= m.txs && sa >= m.addrs {
            return Ok(());
        }
        for (txids, ids) in [(true, st..m.txs), (false, sa..m.addrs)] {
            for id in ids {
                let h = self.map_hash(txids, id);
                let t = if txids {
                    &mut self.txid_table
                } else {
                    &mut self.addr_table
                };
                if let Some(t) = t.as_mut() {
                    insert_once(t, h, id as u32, true);
                }
            }
        }
        let dir = self.dir.clone();
        let io = |e: std::io::Error| IndexError::Io(dir.clone(), e);
        self.manifest.maps_synced = Some([m.txs, m.addrs]);
        self.manifest.format = FORMAT;
        if self.is_read_only_mount() {
            // Repaired in private memory: nothing to flush, nothing may be written.
            return Ok(());
        }
        for t in [&self.txid_table, &self.addr_table].into_iter().flatten() {
            t.flush().map_err(io)?;
        }
        // Repeated identically at the next open if it cannot be stored (a full disk).
        crate::store::store_best_effort(&self.manifest, &self.dir)
    }
}

/// Whether the probe sequence of `h` holds `id`.
fn table_has(t: &TableFile, h: u64, id: u32) -> bool {
    let mask = t.slots() - 1;
    let mut i = h & mask;
    for _ in 0..t.slots() {
        match t.slot(i) {
            0 => return false,
            v if v == id + 1 => return true,
            _ => i = (i + 1) & mask,
        }
    }
    false
}

/// Insert, unless `id` may already have this very entry: a batch that crashed, redone with
/// the same blocks, finds its entries there (they were counted stale when it was found),
/// and inserting them again each time would fill the map with uncounted copies.
fn insert_once(t: &mut TableFile, h: u64, id: u32, reused: bool) {
    if !(reused && table_has(t, h, id)) {
        table_insert(t, h, id);
    }
}

fn table_insert(t: &mut TableFile, h: u64, id: u32) {
    let mask = t.slots() - 1;
    let mut i = h & mask;
    while t.slot(i) != 0 {
        i = (i + 1) & mask;
    }
    t.set_slot(i, id + 1);
}
