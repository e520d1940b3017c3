//! The partitioned dataset on disk: one directory per table, one file per height range for
//! the chain tables, and `manifest.json`, the record of what was written. An export after
//! more blocks were indexed adds partitions past the manifest's last height; a partition
//! whose last block is no longer on the indexed chain (a reorganisation) is dropped, with
//! every partition after it, and written again.
//!
//! Write order (why a crash is harmless): partition files appear complete under their final
//! names (`TableWriter`), then the manifest is replaced atomically. Files the manifest does
//! not name are leftovers of an interrupted export and are replaced by the next one; readers
//! that want only committed data read the files the manifest lists.

use crate::ExportError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "cointrail-parquet";
pub const VERSION: u32 = 1;

/// One height range of the chain tables.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Partition {
    pub from_height: u32,
    pub to_height: u32,
    /// Hash of the block at `to_height` when written: a different hash there now means the
    /// chain was reorganised below it.
    pub last_block_hash: String,
    /// Dense id ranges the partition holds (end exclusive).
    pub tx_ids: (u64, u64),
    pub address_ids: (u64, u64),
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
}

impl Partition {
    /// The file of `table` for this partition, relative to the dataset directory.
    pub fn file(&self, table: &str) -> String {
        partition_file(table, self.from_height, self.to_height)
    }
}

pub fn partition_file(table: &str, from: u32, to: u32) -> String {
    format!("{table}/h{from:09}-{to:09}.parquet")
}

/// A table rewritten whole by each export.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    pub file: String,
    pub rows: u64,
    /// The index height it describes.
    pub tip_height: u32,
    /// How it was made (rule set, model, case, …).
    #[serde(default)]
    pub note: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub network: String,
    /// Most blocks per partition.
    pub partition_blocks: u32,
    pub partitions: Vec<Partition>,
    #[serde(default)]
    pub snapshots: BTreeMap<String, Snapshot>,
}

impl Manifest {
    pub fn new(network: &str, partition_blocks: u32) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            network: network.into(),
            partition_blocks,
            partitions: Vec::new(),
            snapshots: BTreeMap::new(),
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join("manifest.json")
    }

    /// The dataset's manifest, or `None` for a directory with none yet.
    pub fn load(dir: &Path) -> Result<Option<Manifest>, ExportError> {
        let p = Self::path(dir);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ExportError::Io {
                    path: p.display().to_string(),
                    source,
                })
            }
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| ExportError::Invalid {
            path: p.display().to_string(),
            msg: format!("not a cointrail Parquet manifest: {e}"),
        })?;
        if m.format != FORMAT || m.version != VERSION {
            return Err(ExportError::Invalid {
                path: p.display().to_string(),
                msg: format!(
                    "format {} version {}; this cointrail writes {FORMAT} version {VERSION}: export into a new directory",
                    m.format, m.version
                ),
            });
        }
        Ok(Some(m))
    }

    /// Replace the manifest atomically (temporary file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), ExportError> {
        let p = Self::path(dir);
        let tmp = dir.join(".manifest.json.tmp");
        let io = |source| ExportError::Io {
            path: p.display().to_string(),
            source,
        };
        let text = serde_json::to_string_pretty(self).expect("a manifest serialises");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &p).map_err(io)
    }

    /// The next height to export (one past the last partition).
    pub fn next_height(&self) -> Option<u32> {
        self.partitions.last().map(|p| p.to_height + 1)
    }

    /// Drop partitions from `k` on (their files too): they are on a branch the index left.
    pub fn drop_from(&mut self, dir: &Path, k: usize, tables: &[&str]) -> Result<(), ExportError> {
        for p in self.partitions.drain(k..) {
            for t in tables {
                let f = dir.join(p.file(t));
                match std::fs::remove_file(&f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(ExportError::Io {
                            path: f.display().to_string(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_saves_loads_and_drops_partitions_with_their_files() {
        let d = tempfile::tempdir().unwrap();
        assert!(Manifest::load(d.path()).unwrap().is_none());
        let mut m = Manifest::new("regtest", 10);
        std::fs::create_dir_all(d.path().join("blocks")).unwrap();
        for k in 0..3u32 {
            let p = Partition {
                from_height: k * 10,
                to_height: k * 10 + 9,
                last_block_hash: format!("{k:064}"),
                tx_ids: (k as u64 * 100, k as u64 * 100 + 100),
                address_ids: (0, 0),
                rows: BTreeMap::new(),
            };
            std::fs::write(d.path().join(p.file("blocks")), b"x").unwrap();
            m.partitions.push(p);
        }
        m.save(d.path()).unwrap();
        let mut back = Manifest::load(d.path()).unwrap().unwrap();
        assert_eq!(back, m);
        assert_eq!(back.next_height(), Some(30));
        back.drop_from(d.path(), 1, &["blocks", "inputs"]).unwrap();
        assert_eq!(back.next_height(), Some(10));
        assert!(d
            .path()
            .join("blocks/h000000000-000000009.parquet")
            .exists());
        assert!(!d
            .path()
            .join("blocks/h000000010-000000019.parquet")
            .exists());
        // Another format is refused with what to do.
        std::fs::write(
            Manifest::path(d.path()),
            r#"{"format":"x","version":9,"network":"main","partition_blocks":1,"partitions":[]}"#,
        )
        .unwrap();
        let e = Manifest::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("manifest.json") && e.contains("new directory"),
            "{e}"
        );
    }
}
