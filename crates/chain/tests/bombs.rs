//! Issue 20, item 1: compressed input is decompressed with a bound, blocks have a size cap,
//! and a file that is not blocks is refused at its first bytes (small bzip2 bombs made here).

use bzip2::write::BzEncoder;
use bzip2::Compression;
use cointrail_chain::blockfile::{frame_block, MAX_BLOCK_BYTES};
use cointrail_chain::Catalog;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = BzEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `copies` bzip2 streams of `mb` MiB of zeros back to back: a multi-stream file that
/// decompresses to copies × mb MiB from a few kilobytes.
fn zero_bomb(mb: usize, copies: usize) -> Vec<u8> {
    let one = bz2(&vec![0u8; mb << 20]);
    one.repeat(copies)
}

fn real_block() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet/block169482.raw"),
    )
    .unwrap()
}

#[test]
fn a_bomb_of_zeros_is_refused_at_its_first_bytes() {
    // 512 MiB of zeros from a few kB: before, all of it was held in memory and each
    // 81-byte run of zeros catalogued as a "block".
    let bomb = zero_bomb(8, 64);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let t0 = Instant::now();
    let e = Catalog::new()
        .add_bytes(Path::new("bomb.bz2"), bomb.clone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bomb.bz2") && e.contains("not blocks"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // The same from a file.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("zeros.bin.bz2");
    std::fs::write(&p, &bomb).unwrap();
    let e = Catalog::new().add_file(&p).unwrap_err().to_string();
    assert!(
        e.contains("zeros.bin.bz2") && e.contains("not blocks"),
        "{e}"
    );
}

#[test]
fn zeros_are_not_blocks_even_uncompressed() {
    let e = Catalog::new()
        .add_bytes(Path::new("zeros"), vec![0u8; 81 * 1000])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no transactions"), "{e}");
}

#[test]
fn a_real_block_followed_by_a_bomb_stops_at_the_cap() {
    // Starts like a block file, so the early check passes; the expansion cap stops it.
    let mut framed = Vec::new();
    frame_block(bitcoin::Network::Bitcoin, &real_block(), &mut framed);
    let mut bomb = bz2(&framed);
    bomb.extend(zero_bomb(8, 16)); // 128 MiB more
    let e = Catalog::new()
        .add_bytes(Path::new("tail.bz2"), bomb)
        .unwrap_err()
        .to_string();
    assert!(e.contains("decompression bomb"), "{e}");
    // The same block compressed on its own still reads.
    let mut cat = Catalog::new();
    cat.add_bytes(Path::new("ok.bz2"), bz2(&framed)).unwrap();
    assert_eq!(cat.entries.len(), 1);
    cat.load(&cat.entries[0], bitcoin::Network::Bitcoin)
        .unwrap();
}

#[test]
fn a_frame_larger_than_any_block_is_refused() {
    let mut framed = Vec::new();
    frame_block(bitcoin::Network::Bitcoin, &real_block(), &mut framed);
    let len = (MAX_BLOCK_BYTES + 1) as u32;
    framed[4..8].copy_from_slice(&len.to_le_bytes());
    framed.resize(8 + MAX_BLOCK_BYTES + 1, 0);
    let e = Catalog::new()
        .add_bytes(Path::new("big.dat"), framed.clone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("over 4000000 bytes"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big.dat");
    std::fs::write(&p, &framed).unwrap();
    let e = Catalog::new().add_file(&p).unwrap_err().to_string();
    assert!(e.contains("over 4000000 bytes"), "{e}");
}

#[test]
fn compressed_etl_that_is_not_json_is_refused_early() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("rows.json.bz2");
    std::fs::write(&p, zero_bomb(8, 64)).unwrap();
    let e = cointrail_chain::etl::read_etl(&[p])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not JSON lines"), "{e}");
}
