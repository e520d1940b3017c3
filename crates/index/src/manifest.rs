//! The commit record: how much of every column is the index. Written to a temporary file,
//! synced and renamed over the old one, so a reader sees the old or the new state, never
//! a mixture.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const FORMAT: u32 = 1;
/// The format written while the maps are synced only up to `maps_synced`: binaries from
/// before that field would take its absence to mean "all synced" and never repair them,
/// so they must refuse such an index. Back to [`FORMAT`] once everything is synced.
pub const FORMAT_MAPS_BEHIND: u32 = 2;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub network: String,
    pub start_height: u32,
    pub blocks: u64,
    pub txs: u64,
    pub inputs: u64,
    pub outputs: u64,
    pub addrs: u64,
    pub exts: u64,
    pub oprets: u64,
    pub opret_bytes: u64,
    pub txid_table: TableRef,
    pub addr_table: TableRef,
    /// Bumped at every commit, so long-running readers can tell that the index moved.
    pub generation: u64,
    /// Records of `addr_type.bin` known to be written and synced. Absent in an index from
    /// before that column, or rewritten by a binary that does not know it: then the column
    /// is filled again from the address keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr_types: Option<u64>,
    /// Transactions and addresses whose entries in the txid and address maps are known to
    /// be on disk. Batch commits during an ingest leave the maps unsynced (they are
    /// derived from the columns, and syncing them is a third of a commit's time); a
    /// recovery re-inserts the entries past these counts. Absent: all synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps_synced: Option<[u64; 2]>,
    /// Entries of the txid and address maps left by rolled-back transactions and
    /// addresses: they still fill slots, so they count toward the load that makes a map
    /// grow (growing rebuilds it from the live ids, without them).
    #[serde(default)]
    pub stale_map_entries: [u64; 2],
    /// Txids and addresses (by id) whose map entries are counted, live or stale. A crashed
    /// batch can leave entries for ids past the committed counts; an open finds them as
    /// records past this point and counts them stale. Absent (older indexes): 0, so the
    /// first open counts every id once more and the maps are rebuilt at the next insert.
    #[serde(default)]
    pub map_ids_counted: [u64; 2],
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableRef {
    pub gen: u64,
    pub slots: u64,
}

impl Manifest {
    pub fn load(dir: &Path) -> std::io::Result<Option<Manifest>> {
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

    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("manifest.json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("manifest serializes"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("manifest.json"))?;
        std::fs::File::open(dir)?.sync_all()
    }
}
