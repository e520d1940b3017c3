//! What an engine opened on a data directory is built from, and how to tell that it changed:
//! the service reloads its snapshot, and the alert hooks reopen their engine, when the
//! fingerprint of these files moves.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Modification times and sizes of a set of files (absent files count too).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

impl Fingerprint {
    pub fn of(paths: &[PathBuf]) -> Fingerprint {
        Fingerprint(
            paths
                .iter()
                .map(|p| {
                    let m = std::fs::metadata(p).ok();
                    (
                        p.clone(),
                        m.and_then(|m| Some((m.modified().ok()?, m.len()))),
                    )
                })
                .collect(),
        )
    }
}

/// The files besides the chain index that an engine reads: the label and case stores'
/// stamps (stores write one after each commit; merely opening a redb file rewrites its
/// header), `attribution.tsv`, the clustering's stamp of a completed save, and the risk
/// rules file.
pub fn engine_inputs(data_dir: &Path, rules: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![
        data_dir.join("labels.redb.stamp"),
        data_dir.join("cases.redb.stamp"),
        data_dir.join("attribution.tsv"),
        cointrail_clustering::Clustering::saved_stamp(&crate::wiring::cluster_dir(data_dir)),
        data_dir.join("prices.csv"),
    ];
    // EVM chains: their commit records (new blocks).
    v.extend(
        crate::evm::EVM_CHAINS
            .iter()
            .map(|c| data_dir.join(c).join("manifest.json")),
    );
    v.extend(rules.map(Path::to_path_buf));
    v
}
