//! The EVM index's two lookup maps on disk: transaction hash → transaction id and
//! address → address id. Open-addressing tables of `u32` slots (id + 1, 0 = empty) in
//! files mapped read-write, the Bitcoin index's `TableFile`: opening maps them (O(1)),
//! a lookup probes a slot or two and confirms the key in the column it names, so an
//! entry pointing at a dropped or reused id is simply not a match.
//!
//! Why not a static perfect hash (`ptr_hash`): the maps grow with every block, and a
//! perfect hash would be rebuilt from the whole chain at each commit; probing here costs
//! one or two cache misses, well under the microsecond a query has.
//!
//! Crash safety: the maps are derived from the columns. A batch commit leaves them
//! unsynced; the manifest says up to which counts they are known synced (`synced`) and an
//! open re-inserts what lies past that (in memory only for a reader). Entries of records
//! a crash or rollback dropped stay behind as stale ones, counted for the growth rule,
//! and dropped when a map is rebuilt at twice its size under a new generation (the old
//! file stays what the manifest names until the new one is committed).

use std::path::{Path, PathBuf};

use cointrail_evm::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::column::TableFile;

const MIN_SLOTS: u64 = 1 << 12;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MapsRef {
    /// Generation and slot count of `tx_map.<gen>.bin` and `addr_map.<gen>.bin`.
    pub gen: [u64; 2],
    pub slots: [u64; 2],
    /// Transactions and addresses whose entries are known to be on disk.
    pub synced: [u64; 2],
    /// Entries left by records that were dropped (crash, rollback): they only take room.
    pub stale: [u64; 2],
}

pub(crate) const TX: usize = 0;
pub(crate) const ADDR: usize = 1;
const NAMES: [&str; 2] = ["tx_map", "addr_map"];

pub(crate) fn tx_hash(h: &B256) -> u64 {
    mix(u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
        ^ u64::from_le_bytes(h[24..32].try_into().expect("8 bytes")))
}

/// Addresses are not all random (vanity prefixes, precompiles), so all 20 bytes count.
pub(crate) fn addr_hash(a: &Address) -> u64 {
    let b = a.as_slice();
    let x = u64::from_le_bytes(b[..8].try_into().expect("8"))
        ^ u64::from_le_bytes(b[8..16].try_into().expect("8")).rotate_left(23)
        ^ (u32::from_le_bytes(b[16..20].try_into().expect("4")) as u64).rotate_left(46);
    mix(x)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub(crate) struct Maps {
    pub r: MapsRef,
    pub t: [TableFile; 2],
    /// Files of replaced generations, removed once a manifest no longer names them.
    pub retired: Vec<PathBuf>,
    /// A map was rebuilt since the last commit: the next commit must sync it.
    pub regrown: bool,
}

pub(crate) fn path(dir: &Path, which: usize, gen: u64) -> PathBuf {
    dir.join(format!("{}.{gen}.bin", NAMES[which]))
}

impl Maps {
    /// Open the maps the manifest names; `private` maps them copy-on-write (a reader,
    /// which may repair entries in memory but never writes the files).
    pub fn open(dir: &Path, r: &MapsRef, private: bool) -> std::io::Result<Maps> {
        let open = |w: usize| {
            let p = path(dir, w, r.gen[w]);
            if private {
                TableFile::open_read_only(&p)
            } else {
                TableFile::open(&p)
            }
        };
        Ok(Maps {
            r: r.clone(),
            t: [open(TX)?, open(ADDR)?],
            retired: Vec::new(),
            regrown: false,
        })
    }

    /// Build both maps from `keys` (tx hashes' and addresses' hashes by id): a new index,
    /// or an index from before the maps. `anonymous`: in memory only (a reader).
    pub fn build(
        dir: &Path,
        gen: u64,
        hashes: [&dyn Fn(u64) -> u64; 2],
        counts: [u64; 2],
        anonymous: bool,
    ) -> std::io::Result<Maps> {
        let mut r = MapsRef {
            synced: counts,
            ..Default::default()
        };
        let mut make = |w: usize| -> std::io::Result<TableFile> {
            let slots = slots_for(counts[w]);
            let mut t = if anonymous {
                TableFile {
                    path: PathBuf::new(),
                    map: memmap2::MmapMut::map_anon(slots as usize * 4)?,
                }
            } else {
                TableFile::create(&path(dir, w, gen), slots)?
            };
            for id in 0..counts[w] {
                insert(&mut t, hashes[w](id), id);
            }
            r.gen[w] = gen;
            r.slots[w] = slots;
            Ok(t)
        };
        let t = [make(TX)?, make(ADDR)?];
        Ok(Maps {
            r,
            t,
            retired: Vec::new(),
            regrown: true,
        })
    }

    /// The id whose key `is` confirms, among ids below `limit`.
    #[inline]
    pub fn find(&self, w: usize, h: u64, limit: u64, is: impl Fn(u64) -> bool) -> Option<u64> {
        let t = &self.t[w];
        let mask = t.slots() - 1;
        let mut i = h & mask;
        // Bounded: even a map somehow full answers "absent" rather than spinning.
        for _ in 0..t.slots() {
            let v = t.slot(i);
            if v == 0 {
                return None;
            }
            let id = (v - 1) as u64;
            if id < limit && is(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Add the entry of a new id; rebuilds the map at twice the size first when it would
    /// pass half full (`n` ids live, all found through `hash`).
    pub fn add(
        &mut self,
        dir: &Path,
        w: usize,
        h: u64,
        id: u64,
        hash: &dyn Fn(u64) -> u64,
    ) -> std::io::Result<()> {
        if (id + 1 + self.r.stale[w]) * 2 > self.r.slots[w] {
            self.grow(dir, w, id, hash)?;
        }
        insert(&mut self.t[w], h, id);
        Ok(())
    }

    fn grow(
        &mut self,
        dir: &Path,
        w: usize,
        n: u64,
        hash: &dyn Fn(u64) -> u64,
    ) -> std::io::Result<()> {
        let gen = self.r.gen[w].max(self.r.gen[1 - w]) + 1;
        let slots = slots_for(n + 1);
        let mut t = TableFile::create(&path(dir, w, gen), slots)?;
        for id in 0..n {
            insert(&mut t, hash(id), id);
        }
        let old = std::mem::replace(&mut self.t[w], t);
        self.retired.push(old.path.clone());
        self.r.gen[w] = gen;
        self.r.slots[w] = slots;
        self.r.stale[w] = 0;
        self.regrown = true;
        Ok(())
    }

    /// Put back the entries of ids `from..to` unless already there (a batch redone after
    /// a crash finds its own entries).
    pub fn repair(&mut self, w: usize, from: u64, to: u64, hash: &dyn Fn(u64) -> u64) {
        for id in from..to {
            let h = hash(id);
            if self.find(w, h, id + 1, |x| x == id).is_none() {
                insert(&mut self.t[w], h, id);
            }
        }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        for t in &self.t {
            t.flush()?;
        }
        Ok(())
    }
}

fn slots_for(n: u64) -> u64 {
    ((n + 1) * 4).next_power_of_two().max(MIN_SLOTS)
}

fn insert(t: &mut TableFile, h: u64, id: u64) {
    let mask = t.slots() - 1;
    let mut i = h & mask;
    while t.slot(i) != 0 {
        i = (i + 1) & mask;
    }
    t.set_slot(i, id as u32 + 1);
}
