//! The EVM index's on-disk lookup maps (tx hash → tx, address → id): they grow through
//! rebuilds, survive batch commits that leave them unsynced even when every unsynced
//! entry is lost, and forget what a rollback dropped.

use std::path::Path;
use std::sync::Arc;

use cointrail_evm::etl::{Block, Located, Transaction};
use cointrail_evm::movement::BlockRows;
use cointrail_evm::{Address, B256, U256};
use cointrail_index::evm::EvmIndex;

fn h(tag: u8, n: u64) -> B256 {
    let mut b = [0u8; 32];
    b[0] = tag;
    b[8..16].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    b[24..32].copy_from_slice(&n.to_le_bytes());
    B256::from(b)
}

fn a(n: u64) -> Address {
    let mut b = [0u8; 20];
    // Vanity-like: a long common prefix, so the hash must use every byte.
    b[12..20].copy_from_slice(&n.to_be_bytes());
    Address::from(b)
}

/// Block `n` with `k` value transfers between fresh addresses (`salt` varies the hashes).
fn block(n: u64, k: u64, salt: u8) -> BlockRows {
    let file: Arc<str> = "synthetic".into();
    let file2 = file.clone();
    let at = move |row| Located {
        file: file2.clone(),
        line: n,
        row,
    };
    let txs = (0..k)
        .map(|i| {
            let id = n * 10_000 + i;
            at(Transaction {
                hash: h(salt, id),
                nonce: 0,
                block_hash: Some(h(200 + salt, n)),
                block_number: n,
                transaction_index: i,
                from_address: a(2 * id),
                to_address: Some(a(2 * id + 1)),
                value: U256::from(1000 + i),
                gas: 21_000,
                gas_price: None,
                block_timestamp: None,
                max_fee_per_gas: None,
                max_priority_fee_per_gas: None,
                transaction_type: None,
                receipt_gas_used: None,
                receipt_cumulative_gas_used: None,
                receipt_contract_address: None,
                receipt_status: Some(1),
                receipt_effective_gas_price: None,
            })
        })
        .collect();
    BlockRows {
        block: Some(Located {
            file,
            line: n,
            row: Block {
                number: n,
                hash: h(200 + salt, n),
                parent_hash: h(200 + salt, n.wrapping_sub(1)),
                miner: a(u64::MAX),
                timestamp: 1_700_000_000 + 12 * n,
                transaction_count: k,
                gas_used: 0,
                gas_limit: 30_000_000,
                base_fee_per_gas: None,
                withdrawals: Vec::new(),
            },
        }),
        transactions: txs,
        ..Default::default()
    }
}

fn map_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_map."))
        .collect();
    v.sort();
    v
}

fn all_found(idx: &EvmIndex, blocks: std::ops::Range<u64>, k: u64, salt: u8) {
    for n in blocks {
        for i in 0..k {
            let id = n * 10_000 + i;
            assert!(
                idx.tx_summary(&h(salt, id)).is_some(),
                "tx {id} of block {n}"
            );
            assert!(idx.knows_address(&a(2 * id)), "sender {id}");
            assert!(idx.knows_address(&a(2 * id + 1)), "receiver {id}");
        }
    }
}

#[test]
fn maps_grow_and_open_without_rebuilding() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    for n in 0..10 {
        idx.ingest_block(&block(n, 900, 1)).unwrap();
    }
    idx.commit().unwrap();
    // 9,000 txs and 18,001 addresses: both maps were rebuilt, and only the newest
    // generation of each is left.
    let files = map_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| !f.ends_with(".1.bin")), "{files:?}");
    drop(idx);
    let r = EvmIndex::open_reader(dir.path()).unwrap();
    all_found(&r, 0..10, 900, 1);
    assert!(r.tx_summary(&h(9, 1)).is_none());
    assert!(!r.knows_address(&a(1 << 40)));
    assert_eq!(r.verify(), Vec::<String>::new());
}

#[test]
fn unsynced_entries_lost_in_a_crash_are_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    idx.ingest_block(&block(0, 300, 1)).unwrap();
    idx.commit().unwrap();
    for n in 1..6 {
        idx.ingest_block(&block(n, 300, 1)).unwrap();
        idx.commit_batch().unwrap();
    }
    let m = idx.manifest().clone();
    drop(idx);
    let r = m.maps.clone().unwrap();
    assert_eq!(m.txs, 1800);
    // Synced at the first commit and at the one after the address map was rebuilt; the
    // last two batches are not.
    assert_eq!(r.synced, [1200, 2400]);
    // Lose every entry past what the manifest calls synced (what a power cut may do).
    for (w, name) in [(0usize, "tx_map"), (1, "addr_map")] {
        let p = dir.path().join(format!("{name}.{}.bin", r.gen[w]));
        let mut b = std::fs::read(&p).unwrap();
        for s in b.chunks_mut(4) {
            let v = u32::from_le_bytes(s.try_into().unwrap());
            if v != 0 && (v - 1) as u64 >= r.synced[w] {
                s.copy_from_slice(&[0; 4]);
            }
        }
        std::fs::write(&p, b).unwrap();
    }
    // A reader repairs in memory (and writes nothing)...
    let rd = EvmIndex::open_reader(dir.path()).unwrap();
    all_found(&rd, 0..6, 300, 1);
    assert_eq!(rd.verify(), Vec::<String>::new());
    drop(rd);
    // ...a writer repairs on disk and records it.
    let idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    all_found(&idx, 0..6, 300, 1);
    assert_eq!(idx.manifest().maps.as_ref().unwrap().synced, [1800, 3600]);
    assert_eq!(idx.verify(), Vec::<String>::new());
}

#[test]
fn a_rollback_forgets_the_dropped_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    for n in 0..6 {
        idx.ingest_block(&block(n, 200, 1)).unwrap();
    }
    idx.commit().unwrap();
    idx.rollback_to(2).unwrap();
    all_found(&idx, 0..3, 200, 1);
    assert!(idx.tx_summary(&h(1, 3 * 10_000)).is_none());
    assert_eq!(idx.manifest().maps.as_ref().unwrap().stale[0], 600);
    // The other branch reuses the dropped ids with other hashes.
    for n in 3..8 {
        idx.ingest_block(&block(n, 200, 2)).unwrap();
    }
    idx.commit().unwrap();
    drop(idx);
    let r = EvmIndex::open_reader(dir.path()).unwrap();
    all_found(&r, 0..3, 200, 1);
    all_found(&r, 3..8, 200, 2);
    assert!(r.tx_summary(&h(1, 4 * 10_000 + 7)).is_none());
    assert_eq!(r.verify(), Vec::<String>::new());
}
