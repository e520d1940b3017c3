//! Running totals per (address, asset) and where each movement sits in its addresses'
//! lists, so that an address answer and a screening hop read a few records instead of an
//! address's whole history (issue 15: exchanges, fee recipients and the burn address have
//! hundreds of thousands of movements).
//!
//! Files (beside the movement table, same commit protocol):
//! - `mv_acct.bin`, one record per movement (`SIDE_W` bytes, offsets below): its block, its
//!   position in the sender's sent list and the receiver's received list, the previous
//!   movement of the same (address, asset) on each side, the sender's latest receipt of
//!   the asset before it, cross pointers into the other list of each party (so a page of
//!   movements can start at any movement of the address), the first movement of each list,
//!   two sticky flags, and the sender's total sent / receiver's total received of the asset
//!   up to and including it (256-bit, saturating like the sums they replace).
//! - `acct.bin`: one record per (address, asset) pair, in order of first appearance:
//!   address u32 | asset u32 | previous pair of the same address (id+1, u40) | the movement
//!   that created it (u40).
//! - `acct_in_head.bin`, `acct_out_head.bin`: per pair, its latest received / sent movement
//!   (id+1, 0 = none), changed in place; `addr_acct_head.bin`: per address, its latest pair
//!   (id+1), changed in place.
//!
//! Everything is derived from the movements: records are appended with them, heads are
//! written only after the records they point at are durable, and recovery (after a crash or
//! for a rollback) walks heads back through the stored previous-pointers, exactly as for the
//! address lists. An index from before these files gets them built by the first writer that
//! opens it (the manifest's `totals` says they are complete); until then readers answer the
//! old way, by walking the lists.

use cointrail_evm::movement::MovementKind;
use cointrail_evm::U256;
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::store::{EvmIndex, NONE40};
use crate::column::{u40_bytes, u40_of, Column};
use crate::IndexError;

pub(crate) const SIDE_W: usize = 114;
const ACCT_W: usize = 18;

const BLOCK: usize = 0; // u32: block record index
const FROM_POS: usize = 4; // u40: position in the sender's sent list (0 = its first)
const TO_POS: usize = 9; // u40: position in the receiver's received list
const FROM_LAST_IN: usize = 14; // id+1: the sender's latest receipt before this (any asset)
const TO_LAST_OUT: usize = 19; // id+1: the receiver's latest send before this (any asset)
const FROM_PREV_ASSET: usize = 24; // id+1: the sender's previous send of this asset
const TO_PREV_ASSET: usize = 29; // id+1: the receiver's previous receipt of this asset
const FROM_LAST_IN_ASSET: usize = 34; // id+1: the sender's latest receipt of this asset before this
const FROM_FIRST: usize = 39; // id: the sender's first send
const TO_FIRST: usize = 44; // id: the receiver's first receipt
const FLAGS: usize = 49; // 1: the receiver has received a creation; 2: the sender has paid gas
const FROM_SENT_TOTAL: usize = 50; // U256 BE
const TO_RECV_TOTAL: usize = 82; // U256 BE

const FLAG_CREATED: u8 = 1;
const FLAG_PAID_GAS: u8 = 2;

/// What the manifest records of the totals (None in an index from before them).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TotalsManifest {
    /// (address, asset) pairs.
    pub accts: u64,
}

pub(crate) struct Totals {
    side: Column,
    acct: Column,
    acct_in: Column,
    acct_out: Column,
    addr_acct: Column,
}

impl Totals {
    pub(crate) fn open(dir: &Path) -> std::io::Result<Totals> {
        Ok(Totals {
            side: Column::open(dir, "mv_acct.bin", SIDE_W)?,
            acct: Column::open(dir, "acct.bin", ACCT_W)?,
            acct_in: Column::open(dir, "acct_in_head.bin", 5)?,
            acct_out: Column::open(dir, "acct_out_head.bin", 5)?,
            addr_acct: Column::open(dir, "addr_acct_head.bin", 5)?,
        })
    }

    fn cols(&mut self) -> [&mut Column; 5] {
        [
            &mut self.side,
            &mut self.acct,
            &mut self.acct_in,
            &mut self.acct_out,
            &mut self.addr_acct,
        ]
    }

    pub(crate) fn write_pending(&mut self) -> std::io::Result<()> {
        for c in self.cols() {
            c.write_pending()?;
        }
        Ok(())
    }

    pub(crate) fn write_overlay(&mut self) -> std::io::Result<()> {
        for c in [&mut self.acct_in, &mut self.acct_out, &mut self.addr_acct] {
            c.write_overlay()?;
        }
        Ok(())
    }

    pub(crate) fn finish_commit(&mut self) -> std::io::Result<()> {
        for c in self.cols() {
            c.finish_commit()?;
        }
        Ok(())
    }

    /// A new address: no pairs yet.
    pub(crate) fn push_address(&mut self) {
        self.addr_acct.push(&u40_bytes(0));
    }
}

fn u256_at(r: &[u8], off: usize) -> U256 {
    U256::from_be_bytes::<32>(r[off..off + 32].try_into().unwrap())
}

/// `id+1` pointer → movement id.
fn ptr(v: u64) -> Option<u64> {
    (v != 0).then(|| v - 1)
}

/// Per (address, asset): what it received and sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetTotals {
    pub asset: u32,
    pub received: U256,
    pub sent: U256,
}

/// What the totals say of one address, without walking its lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressFacts {
    pub movements_in: u64,
    pub movements_out: u64,
    pub first_movement: Option<u64>,
    pub last_movement: Option<u64>,
    /// It received a creation (a contract made in the indexed blocks).
    pub created: bool,
    /// It paid gas for a transaction (an externally owned account).
    pub paid_gas: bool,
}

impl EvmIndex {
    /// Whether the running totals are complete (an index from before them has none until a
    /// writer opens it).
    pub fn has_totals(&self) -> bool {
        self.m.totals.is_some()
    }

    fn accts_committed(&self) -> u64 {
        self.m.totals.as_ref().map_or(0, |t| t.accts)
    }

    pub(crate) fn totals_counts(&self) -> [u64; 5] {
        let a = self.accts_committed();
        let mv = if self.m.totals.is_some() {
            self.m.movements
        } else {
            0
        };
        [
            mv,
            a,
            a,
            a,
            if self.m.totals.is_some() {
                self.m.addrs
            } else {
                0
            },
        ]
    }

    pub(crate) fn totals_map_committed(&mut self) -> Result<(), IndexError> {
        let counts = self.totals_counts();
        let dir = self.dir.clone();
        let io = |e| IndexError::Io(dir.clone(), e);
        for (c, n) in self.totals.cols().into_iter().zip(counts) {
            if c.file_records().map_err(io)? < n {
                return Err(IndexError::Corrupt(format!(
                    "{} is shorter than its manifest says",
                    c.path.display()
                )));
            }
            c.set_committed(n).map_err(io)?;
        }
        Ok(())
    }

    /// Records past the manifest: walk the in-place heads back onto committed records
    /// (through the previous-pointers those records keep), then cut the files.
    pub(crate) fn totals_recover(&mut self) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = |e| IndexError::Io(dir.clone(), e);
        let counts = self.totals_counts();
        let mut dirty = false;
        for (c, n) in self.totals.cols().into_iter().zip(counts) {
            if c.file_records().map_err(io)? > n {
                dirty = true;
            }
        }
        if !dirty {
            return Ok(());
        }
        let [keep_mv, keep_acct, _, _, keep_addr] = counts;
        let t = &mut self.totals;
        let read = |c: &Column, i: u64, w: usize| -> Result<Vec<u8>, IndexError> {
            let mut b = vec![0u8; w];
            c.read_exact_at(&mut b, i * w as u64).map_err(io)?;
            Ok(b)
        };
        for a in 0..keep_acct {
            for side in [0usize, 1] {
                let col = if side == 0 { &t.acct_in } else { &t.acct_out };
                let h = u40_of(&read(col, a, 5)?);
                if h == 0 || h - 1 < keep_mv {
                    continue;
                }
                let mut cur = h;
                while cur != 0 && cur - 1 >= keep_mv {
                    let r = read(&t.side, cur - 1, SIDE_W)?;
                    let off = if side == 0 {
                        TO_PREV_ASSET
                    } else {
                        FROM_PREV_ASSET
                    };
                    cur = u40_of(&r[off..off + 5]);
                }
                let col = if side == 0 {
                    &mut t.acct_in
                } else {
                    &mut t.acct_out
                };
                col.write_at(a, &u40_bytes(cur)).map_err(io)?;
                col.sync().map_err(io)?;
            }
        }
        for a in 0..keep_addr {
            let h = u40_of(&read(&t.addr_acct, a, 5)?);
            if h == 0 || h - 1 < keep_acct {
                continue;
            }
            let mut cur = h;
            while cur != 0 && cur - 1 >= keep_acct {
                cur = u40_of(&read(&t.acct, cur - 1, ACCT_W)?[8..13]);
            }
            t.addr_acct.write_at(a, &u40_bytes(cur)).map_err(io)?;
            t.addr_acct.sync().map_err(io)?;
        }
        for (c, n) in t.cols().into_iter().zip(counts) {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&c.path)
                .map_err(io)?;
            f.set_len(n * c.width as u64).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        Ok(())
    }

    /// The pairs to keep when the movements from `first_mv` on are dropped (a rollback):
    /// pairs are numbered in order of the movement that created them.
    pub(crate) fn totals_rollback(&mut self, first_mv: u64) {
        if let Some(tm) = self.m.totals.as_mut() {
            let mut keep = tm.accts.min(self.totals.acct.len());
            while keep > 0 && u40_of(&self.totals.acct.get(keep - 1)[13..18]) >= first_mv {
                keep -= 1;
            }
            tm.accts = keep;
        }
    }

    /// The pair (address, asset), as the writer sees it (pending included).
    fn acct_current(&self, addr: u32, asset: u32) -> Option<u64> {
        let mut cur = u40_of(&self.totals.addr_acct.get_current(addr as u64)[..5]);
        while let Some(i) = ptr(cur) {
            let r = self.totals.acct.get(i);
            if u32::from_le_bytes(r[4..8].try_into().unwrap()) == asset {
                return Some(i);
            }
            cur = u40_of(&r[8..13]);
        }
        None
    }

    fn acct_for(&mut self, addr: u32, asset: u32, created_by: u64) -> u64 {
        if let Some(i) = self.acct_current(addr, asset) {
            return i;
        }
        let i = self.totals.acct.len();
        let mut r = [0u8; ACCT_W];
        r[..4].copy_from_slice(&addr.to_le_bytes());
        r[4..8].copy_from_slice(&asset.to_le_bytes());
        r[8..13].copy_from_slice(&self.totals.addr_acct.get_current(addr as u64)[..5]);
        r[13..18].copy_from_slice(&u40_bytes(created_by));
        self.totals.acct.push(&r);
        self.totals.acct_in.push(&u40_bytes(0));
        self.totals.acct_out.push(&u40_bytes(0));
        self.totals.addr_acct.set(addr as u64, &u40_bytes(i + 1));
        i
    }

    /// Append movement `id`'s record. `heads` are, before it, (id+1 or 0): the sender's
    /// latest send and receipt, the receiver's latest send and receipt.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn totals_push(
        &mut self,
        id: u64,
        block: u32,
        kind: MovementKind,
        asset: u32,
        from: u32,
        to: u32,
        amount: U256,
        in_tx: bool,
        heads: [u64; 4],
    ) {
        let [from_out, from_in, to_out, to_in] = heads;
        let fa = self.acct_for(from, asset, id);
        let ta = self.acct_for(to, asset, id);
        let fa_out = u40_of(&self.totals.acct_out.get_current(fa)[..5]);
        let fa_in = u40_of(&self.totals.acct_in.get_current(fa)[..5]);
        let ta_in = u40_of(&self.totals.acct_in.get_current(ta)[..5]);
        let side = &self.totals.side;
        let mut r = [0u8; SIDE_W];
        r[BLOCK..BLOCK + 4].copy_from_slice(&block.to_le_bytes());
        let mut flags = 0u8;
        let (from_pos, from_first) = match ptr(from_out) {
            None => (0, id),
            Some(p) => {
                let pr = side.get(p);
                flags |= pr[FLAGS] & FLAG_PAID_GAS;
                (
                    u40_of(&pr[FROM_POS..FROM_POS + 5]) + 1,
                    u40_of(&pr[FROM_FIRST..FROM_FIRST + 5]),
                )
            }
        };
        let (to_pos, to_first) = match ptr(to_in) {
            None => (0, id),
            Some(p) => {
                let pr = side.get(p);
                flags |= pr[FLAGS] & FLAG_CREATED;
                (
                    u40_of(&pr[TO_POS..TO_POS + 5]) + 1,
                    u40_of(&pr[TO_FIRST..TO_FIRST + 5]),
                )
            }
        };
        if kind == MovementKind::Create {
            flags |= FLAG_CREATED;
        }
        if in_tx && matches!(kind, MovementKind::Fee | MovementKind::Burn) {
            flags |= FLAG_PAID_GAS;
        }
        let sent = ptr(fa_out).map_or(U256::ZERO, |p| u256_at(side.get(p), FROM_SENT_TOTAL));
        let recv = ptr(ta_in).map_or(U256::ZERO, |p| u256_at(side.get(p), TO_RECV_TOTAL));
        r[FROM_POS..FROM_POS + 5].copy_from_slice(&u40_bytes(from_pos));
        r[TO_POS..TO_POS + 5].copy_from_slice(&u40_bytes(to_pos));
        r[FROM_LAST_IN..FROM_LAST_IN + 5].copy_from_slice(&u40_bytes(from_in));
        r[TO_LAST_OUT..TO_LAST_OUT + 5].copy_from_slice(&u40_bytes(to_out));
        r[FROM_PREV_ASSET..FROM_PREV_ASSET + 5].copy_from_slice(&u40_bytes(fa_out));
        r[TO_PREV_ASSET..TO_PREV_ASSET + 5].copy_from_slice(&u40_bytes(ta_in));
        r[FROM_LAST_IN_ASSET..FROM_LAST_IN_ASSET + 5].copy_from_slice(&u40_bytes(fa_in));
        r[FROM_FIRST..FROM_FIRST + 5].copy_from_slice(&u40_bytes(from_first));
        r[TO_FIRST..TO_FIRST + 5].copy_from_slice(&u40_bytes(to_first));
        r[FLAGS] = flags;
        r[FROM_SENT_TOTAL..FROM_SENT_TOTAL + 32]
            .copy_from_slice(&sent.saturating_add(amount).to_be_bytes::<32>());
        r[TO_RECV_TOTAL..TO_RECV_TOTAL + 32]
            .copy_from_slice(&recv.saturating_add(amount).to_be_bytes::<32>());
        self.totals.side.push(&r);
        self.totals.acct_out.set(fa, &u40_bytes(id + 1));
        self.totals.acct_in.set(ta, &u40_bytes(id + 1));
    }

    /// Build the totals of an index from before them (a writer opening it), by replaying
    /// its movements; the manifest names them only once complete, so a crash in the middle
    /// starts over.
    pub(crate) fn totals_build(&mut self) -> Result<(), IndexError> {
        let dir = self.dir.clone();
        let io = |e| IndexError::Io(dir.clone(), e);
        for c in self.totals.cols() {
            c.set_committed(0).map_err(io)?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&c.path)
                .and_then(|f| f.set_len(0))
                .map_err(io)?;
        }
        for _ in 0..self.addrs.len() {
            self.totals.push_address();
        }
        // The heads of every address as the replay goes: (latest send, latest receipt).
        let mut heads = vec![[0u64; 2]; self.addrs.len() as usize];
        let n_blocks = self.blocks.len();
        let first_mv = |s: &EvmIndex, b: u64| {
            if b < n_blocks {
                u64::from_le_bytes(s.blocks.get(b)[56..64].try_into().unwrap())
            } else {
                s.mvs.len()
            }
        };
        for b in 0..n_blocks {
            for id in first_mv(self, b)..first_mv(self, b + 1) {
                let m = self.raw_mv(id);
                let (f, t) = (m.from as usize, m.to as usize);
                let h = [heads[f][0], heads[f][1], heads[t][0], heads[t][1]];
                self.totals_push(
                    id,
                    b as u32,
                    m.kind,
                    m.asset,
                    m.from,
                    m.to,
                    m.amount,
                    m.tx != NONE40,
                    h,
                );
                heads[f][0] = id + 1;
                heads[t][1] = id + 1;
            }
            if self.totals.side.len() - self.totals.side.committed() > 1_000_000 {
                self.totals.write_pending().map_err(io)?;
                self.totals.write_overlay().map_err(io)?;
                self.totals.finish_commit().map_err(io)?;
            }
        }
        self.totals.write_pending().map_err(io)?;
        self.totals.write_overlay().map_err(io)?;
        self.m.totals = Some(TotalsManifest {
            accts: self.totals.acct.len(),
        });
        self.m.store(&dir).map_err(io)?;
        self.totals.finish_commit().map_err(io)?;
        Ok(())
    }

    // ---- readers -------------------------------------------------------------------

    /// A movement's side record; one past the committed ones (a writer beside this reader
    /// moved a head onto it) is read from the file.
    fn side(&self, i: u64) -> std::borrow::Cow<'_, [u8]> {
        if i < self.totals.side.len() {
            std::borrow::Cow::Borrowed(self.totals.side.get(i))
        } else {
            let mut b = vec![0u8; SIDE_W];
            let _ = self.totals.side.read_exact_at(&mut b, i * SIDE_W as u64);
            std::borrow::Cow::Owned(b)
        }
    }

    /// Step a head (id+1) back over movements not committed for this reader, through the
    /// per-asset previous-pointer at `off`.
    fn committed_ptr(&self, mut cur: u64, off: usize) -> u64 {
        while cur != 0 && cur - 1 >= self.mvs.len() {
            cur = u40_of(&self.side(cur - 1)[off..off + 5]);
        }
        cur
    }

    /// An address list head (id+1), stepped back over movements a running writer has not
    /// committed yet.
    pub(crate) fn list_head(&self, a: u32, sent: bool) -> u64 {
        if a as u64 >= self.addrs.len() {
            return 0;
        }
        let col = if sent { &self.out_head } else { &self.in_head };
        let mut cur = u40_of(&col.get(a as u64)[..5]);
        while cur != 0 && cur - 1 >= self.mvs.len() {
            let mut b = vec![0u8; super::store::MV_W];
            if self
                .mvs
                .read_exact_at(&mut b, (cur - 1) * super::store::MV_W as u64)
                .is_err()
            {
                return 0;
            }
            let off = if sent { 50 } else { 55 };
            let p = u40_of(&b[off..off + 5]);
            cur = if p == NONE40 { 0 } else { p + 1 };
        }
        cur
    }

    /// The pairs of an address: (asset, latest receipt id+1, latest send id+1).
    pub(crate) fn accts_of(&self, a: u32) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        self.each_acct_of(a, &mut |asset, i| {
            let rin = self.committed_ptr(u40_of(&self.totals.acct_in.get(i)[..5]), TO_PREV_ASSET);
            let rout =
                self.committed_ptr(u40_of(&self.totals.acct_out.get(i)[..5]), FROM_PREV_ASSET);
            out.push((asset, rin, rout));
            true
        });
        out
    }

    /// `a`'s latest send of `asset` (id+1, 0 = none), without listing its other pairs.
    fn latest_send_of(&self, a: u32, asset: u32) -> u64 {
        let mut rout = 0;
        self.each_acct_of(a, &mut |x, i| {
            if x != asset {
                return true;
            }
            rout = self.committed_ptr(u40_of(&self.totals.acct_out.get(i)[..5]), FROM_PREV_ASSET);
            false
        });
        rout
    }

    /// Visit the pairs of an address (asset, pair record index), newest first, while `f`
    /// says go on.
    fn each_acct_of(&self, a: u32, f: &mut dyn FnMut(u32, u64) -> bool) {
        if !self.has_totals() || a as u64 >= self.totals.addr_acct.len() {
            return;
        }
        let n = self.totals.acct.len();
        let mut cur = u40_of(&self.totals.addr_acct.get(a as u64)[..5]);
        // Pairs a running writer added are past this reader's count: skip them.
        while let Some(i) = ptr(cur) {
            if i < n {
                break;
            }
            let mut b = [0u8; ACCT_W];
            if self
                .totals
                .acct
                .read_exact_at(&mut b, i * ACCT_W as u64)
                .is_err()
            {
                return;
            }
            cur = u40_of(&b[8..13]);
        }
        while let Some(i) = ptr(cur) {
            let r = self.totals.acct.get(i);
            let asset = u32::from_le_bytes(r[4..8].try_into().unwrap());
            if !f(asset, i) {
                return;
            }
            cur = u40_of(&r[8..13]);
        }
    }

    /// Received and sent per asset by movements below `limit` (all when None), from the
    /// running totals: the present in O(assets) reads, an earlier block by stepping back
    /// from the heads over the later movements only. None without totals.
    pub fn asset_totals(&self, a: u32, limit: Option<u64>) -> Option<Vec<AssetTotals>> {
        if !self.has_totals() {
            return None;
        }
        let limit = limit.unwrap_or(u64::MAX);
        let mut v: Vec<AssetTotals> = self
            .accts_of(a)
            .into_iter()
            .filter_map(|(asset, mut rin, mut rout)| {
                while rin != 0 && rin - 1 >= limit {
                    rin = u40_of(&self.side(rin - 1)[TO_PREV_ASSET..TO_PREV_ASSET + 5]);
                }
                while rout != 0 && rout - 1 >= limit {
                    rout = u40_of(&self.side(rout - 1)[FROM_PREV_ASSET..FROM_PREV_ASSET + 5]);
                }
                if rin == 0 && rout == 0 {
                    return None;
                }
                Some(AssetTotals {
                    asset,
                    received: ptr(rin)
                        .map_or(U256::ZERO, |p| u256_at(&self.side(p), TO_RECV_TOTAL)),
                    sent: ptr(rout).map_or(U256::ZERO, |p| u256_at(&self.side(p), FROM_SENT_TOTAL)),
                })
            })
            .collect();
        v.sort_by_key(|t| t.asset);
        Some(v)
    }

    /// The movements address `a` received and sent (ids, newest first: what
    /// [`EvmIndex::each_movement_of`] visits), read from its per-asset lists side by side so
    /// that their cache misses overlap (a list is a chain of pointers); without totals, its
    /// two address lists one after the other.
    pub fn movements_of(&self, a: u32, ins: &mut Vec<u64>, outs: &mut Vec<u64>) {
        if !self.has_totals() {
            for (sent, v) in [(false, ins), (true, outs)] {
                self.each_movement_of(a, sent, &mut |id| {
                    v.push(id);
                    true
                });
            }
            return;
        }
        let n = self.mvs.len().min(self.totals.side.len());
        // (current entry id+1, sent)
        let mut curs: Vec<(u64, bool)> = Vec::new();
        for (_, rin, rout) in self.accts_of(a) {
            for c in [(rin, false), (rout, true)] {
                if let Some(i) = ptr(c.0).filter(|i| *i < n) {
                    self.totals
                        .side
                        .prefetch_range(i, FROM_PREV_ASSET, TO_PREV_ASSET + 5);
                    curs.push(c);
                }
            }
        }
        loop {
            let mut any = false;
            for c in curs.iter_mut() {
                let Some(i) = ptr(c.0).filter(|i| *i < n) else {
                    continue;
                };
                let off = if c.1 { FROM_PREV_ASSET } else { TO_PREV_ASSET };
                c.0 = u40_of(&self.totals.side.get(i)[off..off + 5]);
                if let Some(next) = ptr(c.0).filter(|x| *x < n) {
                    self.totals
                        .side
                        .prefetch_range(next, FROM_PREV_ASSET, TO_PREV_ASSET + 5);
                }
                if c.1 {
                    outs.push(i);
                } else {
                    ins.push(i);
                }
                any = true;
            }
            if !any {
                break;
            }
        }
        ins.sort_unstable_by(|x, y| y.cmp(x));
        outs.sort_unstable_by(|x, y| y.cmp(x));
    }

    /// Counts, first and last movement and the two flags of an address. None without totals.
    pub fn address_facts(&self, a: u32) -> Option<AddressFacts> {
        if !self.has_totals() {
            return None;
        }
        let (hin, hout) = (self.list_head(a, false), self.list_head(a, true));
        let mut f = AddressFacts::default();
        if let Some(p) = ptr(hin) {
            let r = self.side(p);
            f.movements_in = u40_of(&r[TO_POS..TO_POS + 5]) + 1;
            f.created = r[FLAGS] & FLAG_CREATED != 0;
            f.first_movement = Some(u40_of(&r[TO_FIRST..TO_FIRST + 5]));
            f.last_movement = Some(p);
        }
        if let Some(p) = ptr(hout) {
            let r = self.side(p);
            f.movements_out = u40_of(&r[FROM_POS..FROM_POS + 5]) + 1;
            f.paid_gas = r[FLAGS] & FLAG_PAID_GAS != 0;
            let first = u40_of(&r[FROM_FIRST..FROM_FIRST + 5]);
            f.first_movement = Some(f.first_movement.map_or(first, |x| x.min(first)));
            f.last_movement = Some(f.last_movement.map_or(p, |x| x.max(p)));
        }
        Some(f)
    }

    /// How many movements address `a` received (or sent) in all.
    pub fn list_len(&self, a: u32, sent: bool) -> Option<u64> {
        if !self.has_totals() {
            return None;
        }
        Some(ptr(self.list_head(a, sent)).map_or(0, |p| {
            let off = if sent { FROM_POS } else { TO_POS };
            u40_of(&self.side(p)[off..off + 5]) + 1
        }))
    }

    /// Where address `a`'s received (or sent) list stands just before movement `m`, one of
    /// its own movements: the latest of that list with a smaller id (id+1, 0 = none). None
    /// without totals or when `m` is not `a`'s.
    pub fn list_before(&self, a: u32, m: u64, sent: bool) -> Option<u64> {
        if !self.has_totals() || m >= self.mvs.len() {
            return None;
        }
        let raw = self.raw_mv(m);
        let prev = |p: u64| if p == NONE40 { 0 } else { p + 1 };
        let s = self.side(m);
        match (sent, raw.from == a, raw.to == a) {
            (true, true, _) => Some(prev(raw.prev_from)),
            (false, _, true) => Some(prev(raw.prev_to)),
            (true, false, true) => Some(u40_of(&s[TO_LAST_OUT..TO_LAST_OUT + 5])),
            (false, true, false) => Some(u40_of(&s[FROM_LAST_IN..FROM_LAST_IN + 5])),
            _ => None,
        }
    }

    /// How many movements `a` sent after movement `after` (ids above it), `after` being one
    /// of `a`'s own movements. None without totals or when it is not.
    pub fn sent_len_after(&self, a: u32, after: u64) -> Option<u64> {
        let total = self.list_len(a, true)?;
        let raw = self.raw_mv(after);
        let upto = if raw.from == a {
            u40_of(&self.side(after)[FROM_POS..FROM_POS + 5]) + 1
        } else {
            ptr(self.list_before(a, after, true)?)
                .map_or(0, |p| u40_of(&self.side(p)[FROM_POS..FROM_POS + 5]) + 1)
        };
        Some(total.saturating_sub(upto))
    }

    /// Visit the movements of `asset` that `a` received before its own movement `before`
    /// (newest first) while `f` says go on. False without totals or when `before` is not
    /// `a`'s send of that asset (the caller walks the lists instead).
    pub fn each_received_of_before(
        &self,
        a: u32,
        asset: u32,
        before: u64,
        f: &mut dyn FnMut(u64) -> bool,
    ) -> bool {
        if !self.has_totals() || before >= self.mvs.len() {
            return false;
        }
        let raw = self.raw_mv(before);
        if raw.from != a || raw.asset != asset {
            return false;
        }
        let mut cur = u40_of(&self.side(before)[FROM_LAST_IN_ASSET..FROM_LAST_IN_ASSET + 5]);
        if let Some(i) = ptr(cur) {
            self.prefetch_movement(i);
        }
        while let Some(i) = ptr(cur) {
            // The next entry's pointer before `f` reads this one, and the next entry's
            // records asked for: its cache misses overlap with `f`'s work.
            let next = u40_of(&self.side(i)[TO_PREV_ASSET..TO_PREV_ASSET + 5]);
            if let Some(n) = ptr(next) {
                self.prefetch_movement(n);
            }
            if !f(i) {
                break;
            }
            cur = next;
        }
        true
    }

    /// Visit the movements of `asset` that `a` sent after movement `after` (newest first)
    /// while `f` says go on. False without totals.
    pub fn each_sent_of_after(
        &self,
        a: u32,
        asset: u32,
        after: u64,
        f: &mut dyn FnMut(u64) -> bool,
    ) -> bool {
        if !self.has_totals() {
            return false;
        }
        let mut cur = self.latest_send_of(a, asset);
        if let Some(i) = ptr(cur) {
            self.prefetch_movement(i);
        }
        while let Some(i) = ptr(cur) {
            if i <= after {
                break;
            }
            // As in `each_received_of_before`: the next pointer first, its records asked for.
            let next = u40_of(&self.side(i)[FROM_PREV_ASSET..FROM_PREV_ASSET + 5]);
            if let Some(n) = ptr(next).filter(|n| *n > after) {
                self.prefetch_movement(n);
            }
            if !f(i) {
                break;
            }
            cur = next;
        }
        true
    }

    /// The sum of `a`'s receipts of `asset` older than `r` (ids below it), `r` being one of
    /// them: one read of the running totals (a screening branch's unread rest). None without
    /// totals or when `r` is not `a`'s receipt of `asset`.
    pub fn received_of_sum_below(&self, a: u32, asset: u32, r: u64) -> Option<U256> {
        if !self.has_totals() || r >= self.mvs.len() {
            return None;
        }
        let raw = self.raw_mv(r);
        if raw.to != a || raw.asset != asset {
            return None;
        }
        let prev = u40_of(&self.side(r)[TO_PREV_ASSET..TO_PREV_ASSET + 5]);
        Some(ptr(prev).map_or(U256::ZERO, |p| u256_at(&self.side(p), TO_RECV_TOTAL)))
    }

    /// The sum of `a`'s sends of `asset` with ids between `after` and `s` (both excluded),
    /// `s` being one of them: from the running totals (a screening branch's unread rest).
    /// None without totals or when `s` is not `a`'s send of `asset`.
    ///
    /// It is the running total at the send before `s` less the running total at `a`'s
    /// latest send of `asset` not after `after`. That send is found from both ends at once,
    /// one step each in turn: back from `a`'s latest send of any asset before `after` over
    /// its sent list (short unless `a` sent many other assets in between) and down the
    /// asset's own list from `s` (short unless the unread rest is long), whichever ends
    /// first.
    pub fn sent_of_sum_between(&self, a: u32, asset: u32, after: u64, s: u64) -> Option<U256> {
        if !self.has_totals() || s >= self.mvs.len() || after >= self.mvs.len() {
            return None;
        }
        let raw = self.raw_mv(s);
        if raw.from != a || raw.asset != asset {
            return None;
        }
        let prev_of = |i: u64| ptr(u40_of(&self.side(i)[FROM_PREV_ASSET..FROM_PREV_ASSET + 5]));
        let Some(hi_at) = prev_of(s).filter(|p| *p > after) else {
            return Some(U256::ZERO);
        };
        let hi = u256_at(&self.side(hi_at), FROM_SENT_TOTAL);
        // Walker A: `a`'s sends of any asset, from its latest one not after `after`.
        let ra = self.raw_mv(after);
        let mut a_cur: Option<Option<u64>> = if ra.from == a {
            Some(Some(after))
        } else if ra.to == a {
            Some(ptr(u40_of(&self.side(after)[TO_LAST_OUT..TO_LAST_OUT + 5])))
        } else {
            None // not `a`'s movement: walker B alone
        };
        // Walker B: the asset's list, down from `hi_at`.
        let mut b_cur = Some(hi_at);
        let lo_at = loop {
            match a_cur {
                Some(None) => break None,
                Some(Some(q)) => {
                    let m = self.raw_mv(q);
                    if m.asset == asset {
                        break Some(q);
                    }
                    a_cur = Some((m.prev_from != NONE40).then_some(m.prev_from));
                }
                None => {}
            }
            match b_cur {
                Some(i) if i > after => b_cur = prev_of(i),
                lo => break lo,
            }
        };
        let lo = lo_at.map_or(U256::ZERO, |p| u256_at(&self.side(p), FROM_SENT_TOTAL));
        Some(hi.saturating_sub(lo))
    }

    /// Bring into the cache the first `depth` entries of several per-asset lists at once,
    /// walking them side by side so that their cache misses overlap (a list is a chain of
    /// pointers: alone, each entry waits for the one before). Each list is `(sent, a,
    /// asset, via)`: `sent`, `a`'s sends of `asset` after movement `via` (as
    /// [`EvmIndex::each_sent_of_after`] visits them); else `a`'s receipts of `asset`
    /// before its own send `via` (as [`EvmIndex::each_received_of_before`]). Only a warm-up
    /// for those readers: nothing is returned, no answer changes.
    pub fn warm_asset_lists(&self, lists: &[(bool, u32, u32, u64)], depth: usize) {
        if !self.has_totals() {
            return;
        }
        let n = self.mvs.len().min(self.totals.side.len());
        // First what a branch reads before its list, for all lists at once: the address's
        // list head (its length, for the step bound) and, forward, its pairs' chain (where
        // its list of the asset starts).
        for &(sent, a, _, _) in lists {
            if (a as u64) < self.addrs.len() {
                let col = if sent { &self.out_head } else { &self.in_head };
                col.prefetch(a as u64);
                if sent && (a as u64) < self.totals.addr_acct.len() {
                    self.totals.addr_acct.prefetch(a as u64);
                }
            }
        }
        for &(sent, a, _, _) in lists {
            if let Some(h) = ptr(self.list_head(a, sent)).filter(|h| *h < n) {
                self.totals.side.prefetch_range(h, FROM_POS, TO_POS + 5);
            }
            if sent && (a as u64) < self.totals.addr_acct.len() {
                if let Some(i) = ptr(u40_of(&self.totals.addr_acct.get(a as u64)[..5]))
                    .filter(|i| *i < self.totals.acct.len())
                {
                    self.totals.acct.prefetch(i);
                    self.totals.acct_out.prefetch(i);
                }
            }
        }
        // (current entry id+1, offset of its previous-pointer, lowest id to visit)
        let mut curs: Vec<(u64, usize, u64)> = Vec::with_capacity(lists.len());
        for &(sent, a, asset, via) in lists {
            if via >= n {
                continue;
            }
            let c = if sent {
                (self.latest_send_of(a, asset), FROM_PREV_ASSET, via + 1)
            } else {
                let r = self.totals.side.get(via);
                (
                    u40_of(&r[FROM_LAST_IN_ASSET..FROM_LAST_IN_ASSET + 5]),
                    TO_PREV_ASSET,
                    0,
                )
            };
            if let Some(i) = ptr(c.0).filter(|i| *i < n && *i >= c.2) {
                self.prefetch_movement(i);
                curs.push(c);
            }
        }
        for step in 0..depth {
            let mut any = false;
            for c in curs.iter_mut() {
                let Some(i) = ptr(c.0).filter(|i| *i < n && *i >= c.2) else {
                    continue;
                };
                let r = self.totals.side.get(i);
                c.0 = u40_of(&r[c.1..c.1 + 5]);
                if let Some(next) = ptr(c.0).filter(|x| *x < n && *x >= c.2) {
                    self.prefetch_movement(next);
                    if step + 1 == depth {
                        // The entry past the cap: a branch reads its running total (the
                        // amount of the list's unread rest), at the record's end.
                        self.totals.side.prefetch_whole(next);
                    }
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Ask the CPU to start loading movement `i`'s record and its side record (a hint for
    /// a reader about to visit it; nothing changes).
    #[inline]
    pub fn prefetch_movement(&self, i: u64) {
        self.mvs.prefetch_whole(i);
        if self.has_totals() {
            // What readers take from a side record: its block (a time) and the two
            // previous-pointers of the per-asset lists; a 114-byte record's bytes 24..34
            // are on its second cache line about half of the time.
            self.totals.side.prefetch_range(i, BLOCK, TO_PREV_ASSET + 5);
        }
    }

    /// Block record index of movement `i`, from its side record (None without totals).
    pub(crate) fn side_block(&self, i: u64) -> Option<u64> {
        (self.has_totals() && i < self.totals.side.len()).then(|| {
            u32::from_le_bytes(
                self.totals.side.get(i)[BLOCK..BLOCK + 4]
                    .try_into()
                    .unwrap(),
            ) as u64
        })
    }

    /// The totals agree with the lists they summarise (`verify`): every pair's totals are
    /// the sums over its movements, every position and flag what a walk finds.
    pub(crate) fn verify_totals(&self, bad: &mut Vec<String>) {
        if !self.has_totals() {
            return;
        }
        if self.totals.side.len() != self.mvs.len() {
            bad.push(format!(
                "{} movement side records for {} movements",
                self.totals.side.len(),
                self.mvs.len()
            ));
            return;
        }
        for a in 0..self.addrs.len() as u32 {
            let mut sums: std::collections::BTreeMap<u32, (U256, U256)> = Default::default();
            let mut n = [0u64; 2];
            for (k, sent) in [false, true].into_iter().enumerate() {
                self.each_movement_of(a, sent, &mut |id| {
                    let m = self.raw_mv(id);
                    let e = sums.entry(m.asset).or_default();
                    if sent {
                        e.1 = e.1.saturating_add(m.amount);
                    } else {
                        e.0 = e.0.saturating_add(m.amount);
                    }
                    n[k] += 1;
                    true
                });
            }
            let want: Vec<AssetTotals> = sums
                .into_iter()
                .map(|(asset, (received, sent))| AssetTotals {
                    asset,
                    received,
                    sent,
                })
                .collect();
            if self.asset_totals(a, None).as_ref() != Some(&want) {
                bad.push(format!(
                    "address {a}: running totals differ from its movements"
                ));
            }
            let f = self.address_facts(a).unwrap_or_default();
            if [f.movements_in, f.movements_out] != n {
                bad.push(format!("address {a}: list positions differ from its lists"));
            }
            if bad.len() > 50 {
                return;
            }
        }
    }
}

impl EvmIndex {
    /// Before the manifest is written: how many pairs the commit makes durable.
    pub(crate) fn totals_commit_counts(&mut self) {
        let n = self.totals.acct.len();
        if let Some(t) = self.m.totals.as_mut() {
            t.accts = n;
        }
    }
}
