//! Labels from the sources this field uses: GraphSense TagPacks (YAML), the OFAC SDN list
//! (advanced XML) and the publisher's per-currency lists, and a plain CSV of one's own; kept
//! in a versioned store where a newer version of a source closes what disappeared (a
//! delisting) instead of forgetting it.

pub mod ofac;
pub mod store;
pub mod tagpack;

pub use store::{LabelStore, SourceInfo};

use serde::{Deserialize, Serialize};

/// One label on one address (or transaction) from one source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Source name (e.g. `ofac-sdn`, a TagPack's title) and its version date (YYYY-MM-DD).
    pub source: String,
    pub version: String,
    /// BTC, ETH, TRX, USDT, … (OFAC's XBT is stored as BTC).
    pub currency: String,
    pub address: Option<String>,
    pub tx_hash: Option<String>,
    pub label: String,
    pub category: String,
    #[serde(default)]
    pub abuse: Option<String>,
    #[serde(default)]
    pub confidence: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub is_cluster_definer: bool,
    /// Sanctions programs (DPRK3, CYBER2, …) for SDN labels.
    #[serde(default)]
    pub programs: Vec<String>,
    /// First version of the source that had it, and the version that dropped it.
    pub valid_from: String,
    pub valid_to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{file} line {line}: field '{field}': {msg}")]
    Field {
        file: String,
        line: usize,
        field: String,
        msg: String,
    },
    #[error("label store {0}: {1}")]
    Store(String, String),
    #[error("{0}")]
    Other(String),
}

/// Normalize an address for lookups: bech32 lowercase, hex (ETH-style) lowercase, base58 as is.
pub fn normalize_address(currency: &str, a: &str) -> String {
    let a = a.trim();
    let lower = a.to_ascii_lowercase();
    if lower.starts_with("bc1")
        || lower.starts_with("tb1")
        || lower.starts_with("bcrt1")
        || lower.starts_with("0x")
    {
        return lower;
    }
    let _ = currency;
    a.to_string()
}

/// Currency codes as the store keeps them.
pub fn normalize_currency(c: &str) -> String {
    match c.trim().to_ascii_uppercase().as_str() {
        "XBT" => "BTC".into(),
        other => other.to_string(),
    }
}

/// Read a file, bzip2-decompressed when it is bzip2.
pub fn read_maybe_bz2(path: &std::path::Path) -> Result<Vec<u8>, LabelError> {
    use std::io::Read;
    let data = std::fs::read(path).map_err(|e| LabelError::Parse {
        file: path.display().to_string(),
        msg: e.to_string(),
    })?;
    if data.starts_with(b"BZh") {
        let mut out = Vec::new();
        bzip2::read::MultiBzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(|e| LabelError::Parse {
                file: path.display().to_string(),
                msg: format!("bzip2: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(data)
    }
}
