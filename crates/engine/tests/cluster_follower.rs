//! The follower keeps the saved clustering at the tip, and takes up one that another
//! process saved meanwhile (`cluster build --change …`) instead of overwriting it.

use cointrail_chain::view::ChainView;
use cointrail_clustering::{ChangeRules, Clustering};
use cointrail_engine::live::ClusterFollower;
use cointrail_engine::wiring::{cluster_dir, cluster_params, load_clustering};
use cointrail_follow::ChainListener;
use cointrail_index::{ingest, Index, IngestOptions, Source};
use std::path::{Path, PathBuf};

fn blocks(heights: std::ops::RangeInclusive<u32>) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet");
    heights.map(|h| dir.join(format!("0{h}.bin"))).collect()
}

#[test]
fn a_clustering_rebuilt_by_another_process_is_taken_up_not_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let mut idx = Index::open_writer(&data.join("index")).unwrap();
    ingest(
        &mut idx,
        Source::Files(blocks(831328..=831331)),
        &IngestOptions::default(),
    )
    .unwrap();
    // A clustering without change rules, which the follower opens and keeps.
    load_clustering(&data, &idx).unwrap();
    let mut follower = ClusterFollower::new(&data);
    follower.blocks_added(&idx, 831328, 831331).unwrap();
    // Another process builds it again with change rules and saves it.
    let dir = cluster_dir(&data);
    let mut other = Clustering::new(&dir, cluster_params(&idx))
        .with_change(ChangeRules::parse("default").unwrap(), 2);
    other.update(&idx);
    other.save().unwrap();
    // New blocks: the follower applies them to the rebuilt clustering and saves that.
    ingest(
        &mut idx,
        Source::Files(blocks(831332..=831335)),
        &IngestOptions::default(),
    )
    .unwrap();
    follower.blocks_added(&idx, 831332, 831335).unwrap();
    drop(follower);
    let saved = Clustering::open(&dir, cluster_params(&idx)).unwrap();
    assert_eq!(saved.covered_txs, idx.tx_count());
    let ch = saved.change.as_ref().expect("the change rules stay");
    assert_eq!((ch.rules.name.as_str(), ch.delay_blocks), ("default", 2));
}
