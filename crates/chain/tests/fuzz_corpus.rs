//! Replays the fuzz corpus and mutated real blocks through the parsers: errors are fine,
//! panics are bugs.

use cointrail_chain::etl::read_etl_bytes;
use cointrail_chain::Catalog;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn block_file(data: Vec<u8>) -> usize {
    let mut cat = Catalog::new();
    let mut ok = 0;
    if cat.add_bytes(Path::new("input"), data).is_ok() {
        for e in &cat.entries {
            ok += cat.load(e, bitcoin::Network::Bitcoin).is_ok() as usize;
        }
    }
    ok
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("fuzz/corpus").join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(!v.is_empty(), "{} is empty", dir.display());
    v.sort();
    v
}

#[test]
fn block_file_corpus_never_panics() {
    let mut loaded = 0;
    for data in corpus("block_file") {
        loaded += block_file(data);
    }
    assert!(loaded > 0, "the seeds include valid blocks");
}

#[test]
fn decompress_corpus_never_panics() {
    let mut loaded = 0;
    for data in corpus("decompress") {
        let _ =
            cointrail_chain::blockfile::decompress_json_lines(Path::new("input.json.bz2"), &data);
        loaded += block_file(data);
    }
    assert!(loaded > 0, "the seeds include compressed real blocks");
}

#[test]
fn etl_corpus_never_panics() {
    for data in corpus("etl_rows") {
        let _ = read_etl_bytes(&[(PathBuf::from("input"), data)]);
    }
}

/// xorshift: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_real_blocks_never_panic() {
    let seed = std::fs::read(root().join("testdata/btc/mainnet/block482683.raw")).unwrap();
    let mut framed = Vec::new();
    cointrail_chain::blockfile::frame_block(bitcoin::Network::Bitcoin, &seed, &mut framed);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for base in [seed, framed] {
        for _ in 0..300 {
            let mut d = base.clone();
            match rng.next() % 4 {
                0 => {
                    for _ in 0..1 + rng.next() % 8 {
                        let i = (rng.next() as usize) % d.len();
                        d[i] ^= 1 << (rng.next() % 8);
                    }
                }
                1 => d.truncate((rng.next() as usize) % d.len()),
                2 => {
                    let i = (rng.next() as usize) % d.len();
                    d.splice(i..i, (0..rng.next() % 16).map(|_| rng.next() as u8));
                }
                _ => {
                    // Varints that claim huge counts.
                    let i = 80.min(d.len() - 1);
                    d[i] = 0xff;
                }
            }
            block_file(d);
        }
    }
    let rows = corpus("etl_rows").concat();
    for _ in 0..300 {
        let mut d = rows.clone();
        let i = (rng.next() as usize) % d.len();
        d[i] = b"{}[]\",:0123456789aex-"[(rng.next() % 21) as usize];
        let _ = read_etl_bytes(&[(PathBuf::from("input"), d)]);
    }
}
