//! Issue 20: hostile input to ingest. Item 10: the same garbage gets the same verdict into
//! an empty and into a non-empty index.

use cointrail_index::{ingest, Index, IngestOptions, Source};
use std::path::{Path, PathBuf};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/btc")
        .join(p)
}

/// A real block with its prev-hash and merkle root overwritten: it decodes as a block (so
/// it is catalogued), connects to nothing, and fails its merkle check when loaded.
fn garbage_block(dir: &Path) -> PathBuf {
    let mut b = std::fs::read(data("mainnet/block169482.raw")).unwrap();
    for x in &mut b[4..68] {
        *x ^= 0x5a;
    }
    let p = dir.join("garbage.raw");
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn garbage_gets_the_same_verdict_into_an_empty_and_a_full_index() {
    let d = tempfile::tempdir().unwrap();
    let junk = garbage_block(d.path());
    let opts = IngestOptions::default();
    let mut empty = Index::open_writer(&d.path().join("empty")).unwrap();
    let e1 = ingest(&mut empty, Source::Files(vec![junk.clone()]), &opts);
    assert!(e1.is_err(), "into an empty index garbage is an error");

    let mut full = Index::open_writer(&d.path().join("full")).unwrap();
    ingest(
        &mut full,
        Source::Files(vec![data("mainnet/0831328.bin")]),
        &opts,
    )
    .unwrap();
    let before = serde_json::to_value(full.stats()).unwrap();
    let e2 = ingest(&mut full, Source::Files(vec![junk]), &opts)
        .err()
        .expect("into a non-empty index the same garbage is an error too")
        .to_string();
    assert!(e2.contains("nothing usable"), "{e2}");
    assert_eq!(serde_json::to_value(full.stats()).unwrap(), before);
    // Blocks already indexed are not garbage: ingesting them again is fine.
    let r = ingest(
        &mut full,
        Source::Files(vec![data("mainnet/0831328.bin")]),
        &opts,
    )
    .unwrap();
    assert_eq!(r.already_indexed, 1);
}
