//! The chain index: BlockSci's layout in Rust. Dense ids, fixed-width append-only column
//! files read through memory maps, spend links stored both ways, and open-addressing maps
//! from txid and address to id. See ARCHITECTURE.md for the file layout and the commit
//! protocol that makes a `kill -9` at any moment safe.

mod append;
pub mod check;
pub mod column;
pub mod evm;
pub mod ingest;
pub mod manifest;
pub mod query;
pub mod store;

pub use ingest::{ingest, IngestOptions, IngestReport, Progress, Source};
pub use store::Index;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Chain(#[from] cointrail_chain::ChainError),
    #[error("{0}")]
    Block(String),
    #[error("{0}")]
    Format(String),
    #[error("index is damaged: {0}; rebuild it by ingesting again into an empty --data-dir")]
    Corrupt(String),
    #[error("{0}: another cointrail process is writing this index; wait for it to finish")]
    Locked(PathBuf),
    #[error("no index in {0}: run `cointrail ingest` first (or `cointrail demo`)")]
    NoIndex(PathBuf),
    #[error("{0}")]
    NotFound(String),
}

/// Crash-test hook: `COINTRAIL_FAILPOINT=<name>` makes the process die at that point, as a
/// `kill -9` would, so tests can check recovery from every step of a commit.
pub(crate) fn failpoint(name: &str) {
    if std::env::var("COINTRAIL_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}
