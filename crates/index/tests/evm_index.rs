//! The EVM index on real mainnet rows: what goes in comes out (balances, transactions,
//! blocks), a reorganisation is undone exactly, and a crash before the manifest leaves
//! the previous state (the writer dies through a failpoint in a child process).

use std::path::{Path, PathBuf};

use cointrail_evm::etl::{open_etl_file, Located, Row};
use cointrail_evm::movement::{group_blocks, BlockRows};
use cointrail_evm::{Address, B256, U256};
use cointrail_index::evm::EvmIndex;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
}

fn blocks() -> Vec<BlockRows> {
    let rows: Vec<Located<Row>> = [
        "mainnet_17173049_blocks.json",
        "mainnet_17173049_transactions.json",
        "mainnet_17173049_token_transfers.json",
        "mainnet_17173049_logs.json",
    ]
    .iter()
    .flat_map(|n| open_etl_file(&fixture(n)).unwrap().map(|r| r.unwrap()))
    .collect();
    group_blocks(rows).unwrap().into_values().collect()
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

#[test]
fn ingest_query_verify_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let bs = blocks();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    for b in &bs {
        idx.ingest_block(b).unwrap();
    }
    idx.commit().unwrap();
    assert_eq!(idx.verify(), Vec::<String>::new());
    let s = idx.stats();
    assert_eq!(
        (s.blocks, s.transactions, s.first_block, s.last_block),
        (2, 298, Some(17173049), Some(17173050))
    );
    // Re-ingesting an indexed block is refused and changes nothing.
    assert!(idx
        .ingest_block(&bs[0])
        .unwrap_err()
        .to_string()
        .contains("already indexed"));
    drop(idx);

    let idx = EvmIndex::open_reader(dir.path()).unwrap();
    // The first transaction: value and gas of a successful EIP-1559 transaction.
    let h: B256 = "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0"
        .parse()
        .unwrap();
    let t = idx.tx_summary(&h).unwrap();
    assert_eq!((t.block, t.status), (17173049, "success"));
    let kinds: Vec<&str> = t.movements.iter().map(|m| m.kind).collect();
    assert!(
        kinds.contains(&"value") && kinds.contains(&"burn") && kinds.contains(&"token"),
        "{kinds:?}"
    );
    let v = t.movements.iter().find(|m| m.kind == "value").unwrap();
    assert_eq!(v.amount, "1642894143");
    // The withdrawal recipient's ETH balance is the sum of the 32 withdrawals (in wei).
    let w = addr("0xb9d7934878b5fb9610b3fe8a5e441e8fad7e293f");
    let bal = idx.balances(&w, None);
    let native = bal.iter().find(|b| b.token.is_none()).unwrap();
    assert_eq!(
        native.received,
        (U256::from(231693495000000000u64) + U256::from(198354889000000000u64)).to_string()
    );
    // At the first block only that block's withdrawals count.
    let at = idx.balances(&w, Some(17173049));
    assert_eq!(
        at.iter().find(|b| b.token.is_none()).unwrap().received,
        "231693495000000000"
    );
    let b = idx.block_summary(17173050).unwrap();
    assert_eq!(b.transactions, 182);
    assert!(idx.block_summary(17173051).is_none());
    drop(idx);

    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    let before: Vec<_> = idx.balances(&w, Some(17173049));
    idx.rollback_to(17173049).unwrap();
    assert_eq!(idx.stats().blocks, 1);
    assert_eq!(idx.balances(&w, None), before);
    assert_eq!(idx.verify(), Vec::<String>::new());
    // The dropped block goes in again.
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.stats().transactions, 298);
    assert_eq!(idx.verify(), Vec::<String>::new());
    drop(idx);
    assert!(EvmIndex::open_writer(dir.path(), "polygon")
        .err()
        .unwrap()
        .to_string()
        .contains("holds chain `ethereum`"));
}

/// Child side of the crash test: ingest the second block and die at the failpoint.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("EVM_CRASH_DIR") else {
        return;
    };
    let bs = blocks();
    let mut idx = EvmIndex::open_writer(Path::new(&dir), "ethereum").unwrap();
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    unreachable!("the failpoint aborts before this");
}

#[test]
fn a_crash_before_the_manifest_keeps_the_previous_state() {
    for point in ["evm-after-records", "evm-before-manifest"] {
        let dir = tempfile::tempdir().unwrap();
        let bs = blocks();
        let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
        idx.ingest_block(&bs[0]).unwrap();
        idx.commit().unwrap();
        let w = addr("0xb9d7934878b5fb9610b3fe8a5e441e8fad7e293f");
        let before = idx.balances(&w, None);
        drop(idx);
        let st = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture"])
            .env("EVM_CRASH_DIR", dir.path())
            .env("COINTRAIL_FAILPOINT", point)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!st.success(), "the child must die at {point}");
        let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
        assert_eq!(idx.stats().blocks, 1, "{point}");
        assert_eq!(idx.balances(&w, None), before, "{point}");
        assert_eq!(idx.verify(), Vec::<String>::new(), "{point}");
        idx.ingest_block(&bs[1]).unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.verify(), Vec::<String>::new(), "{point}");
        assert_eq!(idx.stats().transactions, 298);
    }
}
