//! What the clustering tests share: the 8 real mainnet blocks of `testdata/btc/mainnet`
//! ingested into `DATA/index`, and the clustering built over them.

use cointrail_clustering::Clustering;
use cointrail_engine::wiring::load_clustering;
use cointrail_index::{ingest, Index, IngestOptions, Source};
use std::path::Path;

/// Blocks 831,328–831,335 ingested into `data/index`, with their clustering.
pub fn real_blocks(data: &Path) -> (Index, Clustering) {
    let blocks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet");
    let files = (831328..=831335)
        .map(|h| blocks.join(format!("0{h}.bin")))
        .collect();
    let mut idx = Index::open_writer(&data.join("index")).unwrap();
    ingest(&mut idx, Source::Files(files), &IngestOptions::default()).unwrap();
    let c = load_clustering(data, &idx).unwrap();
    (idx, c)
}
