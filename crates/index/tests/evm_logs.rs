//! The EVM index's logs table and block starts on real mainnet rows (blocks 17173049-50,
//! 681 logs): every log given comes back exactly, per transaction and per block; a
//! reorganisation drops the logs, addresses and tokens of the dropped blocks, so the
//! rolled-back index equals one that never saw them; bad log rows are refused whole.

use std::path::{Path, PathBuf};

use cointrail_evm::etl::{open_etl_file, Located, Log, Row};
use cointrail_evm::movement::{group_blocks, BlockRows};
use cointrail_index::evm::EvmIndex;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
}

fn rows(names: &[&str]) -> Vec<Located<Row>> {
    names
        .iter()
        .flat_map(|n| open_etl_file(&fixture(n)).unwrap().map(|r| r.unwrap()))
        .collect()
}

fn blocks() -> Vec<BlockRows> {
    let r = rows(&[
        "mainnet_17173049_blocks.json",
        "mainnet_17173049_transactions.json",
        "mainnet_17173049_token_transfers.json",
        "mainnet_17173049_logs.json",
    ]);
    group_blocks(r).unwrap().into_values().collect()
}

fn fixture_logs() -> Vec<Log> {
    rows(&["mainnet_17173049_logs.json"])
        .into_iter()
        .map(|r| match r.row {
            Row::Log(l) => l,
            _ => unreachable!(),
        })
        .collect()
}

fn ingest(dir: &Path, bs: &[BlockRows]) -> EvmIndex {
    let mut idx = EvmIndex::open_writer(dir, "ethereum").unwrap();
    for b in bs {
        idx.ingest_block(b).unwrap();
    }
    idx.commit().unwrap();
    idx
}

#[test]
fn every_log_comes_back_per_transaction_and_per_block() {
    let dir = tempfile::tempdir().unwrap();
    let bs = blocks();
    drop(ingest(dir.path(), &bs));
    let idx = EvmIndex::open_reader(dir.path()).unwrap();
    assert_eq!(idx.verify(), Vec::<String>::new());
    let want = fixture_logs();
    assert_eq!(want.len(), 681);
    assert_eq!(idx.stats().logs, 681);
    for n in [17173049u64, 17173050] {
        assert!(idx.block_logs_kept(n));
        let mine: Vec<Log> = want
            .iter()
            .filter(|l| l.block_number == n)
            .cloned()
            .collect();
        assert_eq!(idx.block_logs(n).unwrap(), mine, "block {n}");
    }
    // Per transaction: the rows of its hash, in log order, with the etl transaction index.
    let h = want[0].transaction_hash;
    let t = idx.tx_number(&h).unwrap();
    let of_tx: Vec<Log> = want
        .iter()
        .filter(|l| l.transaction_hash == h)
        .cloned()
        .collect();
    assert!(!of_tx.is_empty());
    assert_eq!(idx.tx_logs(t).unwrap(), of_tx);
    // A transaction without logs has an empty list, not an unknown one.
    let quiet = (0..idx.stats().transactions)
        .find(|&t| idx.tx_logs(t).unwrap().is_empty())
        .expect("a plain transfer among 298 transactions");
    assert!(!want
        .iter()
        .any(|l| l.transaction_hash == idx.tx_hash(quiet)));
    assert!(idx.tx_logs(idx.stats().transactions).is_none());
}

#[test]
fn a_rollback_equals_an_index_that_never_saw_the_dropped_block() {
    let bs = blocks();
    let one = tempfile::tempdir().unwrap();
    let fresh1 = ingest(one.path(), &bs[..1]).stats();
    let two = tempfile::tempdir().unwrap();
    let fresh2 = ingest(two.path(), &bs).stats();
    assert!(fresh2.addresses > fresh1.addresses && fresh2.logs > fresh1.logs);

    let dir = tempfile::tempdir().unwrap();
    let mut idx = ingest(dir.path(), &bs);
    idx.rollback_to(17173049).unwrap();
    let s = idx.stats();
    assert_eq!(
        (
            s.blocks,
            s.transactions,
            s.movements,
            s.addresses,
            s.tokens,
            s.logs
        ),
        (
            fresh1.blocks,
            fresh1.transactions,
            fresh1.movements,
            fresh1.addresses,
            fresh1.tokens,
            fresh1.logs
        )
    );
    assert_eq!(idx.verify(), Vec::<String>::new());
    // An address first seen in the dropped block is unknown again; the map's stale
    // entry for it is harmless.
    let dropped = fixture_logs()
        .into_iter()
        .find(|l| l.block_number == 17173050)
        .unwrap();
    let t = idx.tx_number(&dropped.transaction_hash);
    assert!(t.is_none());
    drop(idx);
    // Reopened (recovery ran) and the block put back: the same as ingesting both at once.
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    assert_eq!(idx.stats().addresses, fresh1.addresses);
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    let s = idx.stats();
    assert_eq!(
        (s.transactions, s.movements, s.addresses, s.tokens, s.logs),
        (
            fresh2.transactions,
            fresh2.movements,
            fresh2.addresses,
            fresh2.tokens,
            fresh2.logs
        )
    );
    assert_eq!(idx.verify(), Vec::<String>::new());
    let fresh = EvmIndex::open_reader(two.path()).unwrap();
    assert_eq!(idx.block_logs(17173050), fresh.block_logs(17173050));
}

#[test]
fn logs_not_given_are_unknown_and_bad_log_rows_are_refused_whole() {
    let bs = blocks();
    let dir = tempfile::tempdir().unwrap();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    idx.set_logs_given(false);
    let mut no_logs = bs[0].clone();
    no_logs.logs.clear();
    idx.ingest_block(&no_logs).unwrap();
    idx.set_logs_given(true);
    let mut bad = bs[1].clone();
    bad.logs[3].row.data = "0xzz".into();
    let e = idx.ingest_block(&bad).unwrap_err().to_string();
    assert!(
        e.contains("field `data`") && e.contains("mainnet_17173049_logs.json:"),
        "{e}"
    );
    let mut stray = bs[1].clone();
    stray.logs[0].row.transaction_hash = bs[0].transactions[0].row.hash;
    let e = idx.ingest_block(&stray).unwrap_err().to_string();
    assert!(e.contains("not in block 17173050"), "{e}");
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.verify(), Vec::<String>::new());
    assert!(!idx.block_logs_kept(17173049));
    assert!(idx.block_logs(17173049).is_none());
    assert!(idx.tx_logs(0).is_none());
    assert!(idx.block_logs_kept(17173050));
    let n2 = fixture_logs()
        .iter()
        .filter(|l| l.block_number == 17173050)
        .count() as u64;
    assert_eq!(idx.stats().logs, n2);
}

#[test]
fn an_index_from_before_logs_keeps_them_from_its_next_block_on() {
    let bs = blocks();
    let dir = tempfile::tempdir().unwrap();
    drop(ingest(dir.path(), &bs[..1]));
    // Make it look written by a version without the extra columns.
    let mp = dir.path().join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("extra");
    std::fs::write(&mp, serde_json::to_vec(&m).unwrap()).unwrap();
    for f in [
        "logs.bin",
        "log_topics.bin",
        "log_data.bin",
        "tx_logs.bin",
        "block_start.bin",
    ] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let r = EvmIndex::open_reader(dir.path()).unwrap();
    assert!(r.tx_logs(0).is_none() && r.stats().logs == 0);
    assert_eq!(r.verify(), Vec::<String>::new());
    drop(r);
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    let addrs1 = idx.stats().addresses;
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.verify(), Vec::<String>::new());
    assert!(idx.block_logs(17173049).is_none());
    assert!(idx.block_logs(17173050).is_some());
    // Rolling back the block ingested since: its addresses go (its start is known).
    idx.rollback_to(17173049).unwrap();
    assert_eq!(idx.stats().addresses, addrs1);
    // Rolling back a block from before: nothing to attribute, the ids stay.
    let before = idx.stats().addresses;
    idx.rollback_to(17173048).unwrap();
    assert_eq!(idx.stats().blocks, 0);
    assert_eq!(idx.stats().addresses, before);
    assert_eq!(idx.verify(), Vec::<String>::new());
}
