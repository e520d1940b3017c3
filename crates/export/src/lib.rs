//! Apache Parquet exports. Only the `parquet` crate's own column writer is used (no Arrow):
//! the tables are flat and typed, and leaving Arrow out keeps this crate's cold build short.
//!
//! `clusters.parquet`: one row per address, in address-id order:
//!
//! ```text
//! message cointrail_clusters {
//!   REQUIRED BINARY address (STRING);
//!   REQUIRED INT64 cluster_id;       -- the entity id: common-input cluster (smallest address id in it)
//!   OPTIONAL INT64 change_group_id;  -- clusters joined by change links through the guards
//!                                    -- (the smallest cluster id among them), when built
//! }
//! ```
//!
//! Key-value metadata records how the file was made (rule set, index height, …).
//!
//! The whole index as a partitioned dataset (`cointrail export --format parquet`, read by
//! the Spark jobs in `spark/`): [`tables`] (schemas), [`table`] (the writer and reader),
//! [`dataset`] (partitions and the manifest).

pub mod dataset;
pub mod table;
pub mod tables;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
}

const SCHEMA: &str = "message cointrail_clusters {
    REQUIRED BINARY address (STRING);
    REQUIRED INT64 cluster_id;
    OPTIONAL INT64 change_group_id;
}";

/// Rows per row group: about 50 MB of addresses at most.
const ROW_GROUP: usize = 1 << 20;

/// One address's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRow {
    pub address: String,
    /// The entity id (`trace --json`, `cluster show`, `/v1/entities`).
    pub cluster_id: u32,
    /// A coarser grouping: the clusters change links join, named by their smallest id.
    pub change_group_id: Option<u32>,
}

/// Write `rows` to `path` (replaced atomically: written beside it, then renamed).
pub fn write_clusters(
    path: &Path,
    rows: impl Iterator<Item = ClusterRow>,
    metadata: &[(&str, String)],
) -> Result<u64, ExportError> {
    let p = path.display().to_string();
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(|source| ExportError::Io {
        path: p.clone(),
        source,
    })?;
    // Nothing half-written is left behind: the file appears complete or not at all.
    match write_rows(file, &p, rows, metadata) {
        Ok(n) => {
            std::fs::rename(&tmp, path).map_err(|source| ExportError::Io { path: p, source })?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_rows(
    file: File,
    p: &str,
    rows: impl Iterator<Item = ClusterRow>,
    metadata: &[(&str, String)],
) -> Result<u64, ExportError> {
    let pq = |source| ExportError::Parquet {
        path: p.to_string(),
        source,
    };
    let schema = Arc::new(parse_message_type(SCHEMA).expect("the schema parses"));
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.clone()))
                .collect(),
        ))
        .build();
    let mut w = SerializedFileWriter::new(file, schema, Arc::new(props)).map_err(pq)?;
    let mut total = 0u64;
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut addrs: Vec<ByteArray> = Vec::with_capacity(ROW_GROUP.min(1 << 16));
        let mut clusters: Vec<i64> = Vec::with_capacity(ROW_GROUP.min(1 << 16));
        let mut groups: Vec<i64> = Vec::new();
        let mut def: Vec<i16> = Vec::with_capacity(ROW_GROUP.min(1 << 16));
        for r in rows.by_ref().take(ROW_GROUP) {
            addrs.push(ByteArray::from(r.address.into_bytes()));
            clusters.push(r.cluster_id as i64);
            match r.change_group_id {
                Some(e) => {
                    groups.push(e as i64);
                    def.push(1);
                }
                None => def.push(0),
            }
        }
        total += addrs.len() as u64;
        let mut rg = w.next_row_group().map_err(pq)?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(pq)? {
            match i {
                0 => {
                    col.typed::<ByteArrayType>()
                        .write_batch(&addrs, None, None)
                        .map_err(pq)?;
                }
                1 => {
                    col.typed::<Int64Type>()
                        .write_batch(&clusters, None, None)
                        .map_err(pq)?;
                }
                _ => {
                    col.typed::<Int64Type>()
                        .write_batch(&groups, Some(&def), None)
                        .map_err(pq)?;
                }
            }
            col.close().map_err(pq)?;
            i += 1;
        }
        rg.close().map_err(pq)?;
    }
    w.close().map_err(pq)?;
    Ok(total)
}

/// Read a file written by [`write_clusters`] back (for checks and tests), with its
/// key-value metadata.
/// What [`read_clusters`] returns: the rows and the file's key-value metadata.
pub type ClusterFile = (Vec<ClusterRow>, Vec<(String, String)>);

pub fn read_clusters(path: &Path) -> Result<ClusterFile, ExportError> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(|source| ExportError::Io {
        path: p.clone(),
        source,
    })?;
    let r = SerializedFileReader::new(file).map_err(|source| ExportError::Parquet {
        path: p.clone(),
        source,
    })?;
    let meta = r
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let iter = r
        .get_row_iter(None)
        .map_err(|source| ExportError::Parquet {
            path: p.clone(),
            source,
        })?;
    for row in iter {
        let row = row.map_err(|source| ExportError::Parquet {
            path: p.clone(),
            source,
        })?;
        use parquet::record::RowAccessor;
        let bad = |msg: String| ExportError::Invalid {
            path: p.clone(),
            msg,
        };
        let address = row
            .get_string(0)
            .map_err(|e| bad(format!("row {}: address: {e}", out.len())))?
            .clone();
        let cluster_id = row
            .get_long(1)
            .map_err(|e| bad(format!("row {}: cluster_id: {e}", out.len())))?;
        let change_group_id = row.get_long(2).ok();
        out.push(ClusterRow {
            address,
            cluster_id: u32::try_from(cluster_id)
                .map_err(|_| bad(format!("row {}: cluster_id {cluster_id}", out.len())))?,
            change_group_id: change_group_id.and_then(|e| u32::try_from(e).ok()),
        });
    }
    Ok((out, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_change_groups_and_metadata() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.parquet");
        let rows: Vec<ClusterRow> = (0..2500u32)
            .map(|i| ClusterRow {
                address: format!("bc1q{i:06}"),
                cluster_id: i / 3 * 3,
                change_group_id: (i % 5 != 0).then_some(i / 6 * 6),
            })
            .collect();
        let n = write_clusters(
            &p,
            rows.clone().into_iter(),
            &[("cointrail.rule_set", "multi-input".into())],
        )
        .unwrap();
        assert_eq!(n, 2500);
        let (back, meta) = read_clusters(&p).unwrap();
        assert_eq!(back, rows);
        assert!(meta.contains(&("cointrail.rule_set".into(), "multi-input".into())));
        // An empty export is a valid file with no rows.
        let e = d.path().join("e.parquet");
        assert_eq!(write_clusters(&e, std::iter::empty(), &[]).unwrap(), 0);
        assert!(read_clusters(&e).unwrap().0.is_empty());
        // Not a parquet file: an error naming it.
        std::fs::write(d.path().join("x.parquet"), b"address,cluster_id\n").unwrap();
        let err = read_clusters(&d.path().join("x.parquet"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.parquet") && err.contains("parquet"),
            "{err}"
        );
    }
}
