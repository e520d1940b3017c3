//! The running totals per (address, asset) answer exactly what walking the lists answers:
//! balances (now and at an earlier block), counts, first/last seen, kind; pages of
//! movements concatenate to the whole history; an index from before the totals gets them
//! built by the first writer, equal to those kept while ingesting.

use std::path::{Path, PathBuf};

use cointrail_evm::etl::{open_etl_file, Located, Row};
use cointrail_evm::movement::{group_blocks, BlockRows};
use cointrail_evm::Address;
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

fn every_address(idx: &EvmIndex) -> Vec<Address> {
    let mut v = Vec::new();
    for i in 0..idx.movement_count() {
        let m = idx.ledger_move(i).unwrap();
        v.push(m.from);
        v.push(m.to);
    }
    v.sort();
    v.dedup();
    v
}

/// Every address: the fast answers equal the walked ones.
fn check_against_walk(idx: &EvmIndex) {
    assert!(idx.has_totals());
    let tip = idx.tip().unwrap();
    let addrs = every_address(idx);
    assert!(addrs.len() > 300, "{}", addrs.len());
    for a in &addrs {
        for at in [None, Some(tip - 1), Some(tip)] {
            assert_eq!(
                idx.balances(a, at),
                idx.balances_walk(a, at),
                "{a} at {at:?}"
            );
        }
        let fast = idx.address_summary(a, None, 5, None);
        let slow = idx.address_summary_walk(a, None, 5);
        assert_eq!(
            serde_json::to_value(&fast).unwrap(),
            serde_json::to_value(&slow).unwrap(),
            "{a}"
        );
        // Pages of 3 concatenate to the whole history, newest first, each movement once.
        let all = idx.address_summary_walk(a, None, usize::MAX).recent;
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let (page, next) = idx.movement_page(a, before, 3);
            paged.extend(page);
            match next {
                Some(c) => before = Some(c),
                None => break,
            }
        }
        assert_eq!(paged, all.iter().map(|m| m.id).collect::<Vec<_>>(), "{a}");
    }
    // The busiest address (the burn address): more than a page, a cursor to go on.
    let busiest = addrs
        .iter()
        .max_by_key(|a| idx.address_summary(a, None, 0, None).movements_in)
        .unwrap();
    let s = idx.address_summary(busiest, None, 20, None);
    assert!(s.movements_in > 100 && s.recent.len() == 20 && s.next_before.is_some());
}

#[test]
fn totals_equal_the_walk_through_ingest_rollback_and_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let bs = blocks();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    idx.ingest_block(&bs[0]).unwrap();
    idx.commit().unwrap();
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    check_against_walk(&idx);
    assert_eq!(idx.verify(), Vec::<String>::new());
    // A reorganisation drops the second block's movements from every total.
    idx.rollback_to(17173049).unwrap();
    assert_eq!(idx.verify(), Vec::<String>::new());
    idx.ingest_block(&bs[1]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.verify(), Vec::<String>::new());
    let kept: Vec<_> = every_address(&idx)
        .iter()
        .map(|a| idx.balances(a, None))
        .collect();
    drop(idx);
    let idx = EvmIndex::open_reader(dir.path()).unwrap();
    check_against_walk(&idx);
    drop(idx);

    // An index from before the totals: no `totals` in the manifest, no files.
    let mpath = dir.path().join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("totals");
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    for f in [
        "mv_acct.bin",
        "acct.bin",
        "acct_in_head.bin",
        "acct_out_head.bin",
        "addr_acct_head.bin",
    ] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let old = EvmIndex::open_reader(dir.path()).unwrap();
    assert!(!old.has_totals());
    // Readers answer by walking meanwhile.
    let walked: Vec<_> = every_address(&old)
        .iter()
        .map(|a| old.balances(a, None))
        .collect();
    assert_eq!(walked, kept);
    let a = every_address(&old)[7];
    let s = old.address_summary(&a, None, 2, None);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        serde_json::to_value(old.address_summary_walk(&a, None, 2)).unwrap()
    );
    drop(old);
    // The first writer builds them.
    let idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    assert!(idx.has_totals());
    assert_eq!(idx.verify(), Vec::<String>::new());
    drop(idx);
    let idx = EvmIndex::open_reader(dir.path()).unwrap();
    let rebuilt: Vec<_> = every_address(&idx)
        .iter()
        .map(|a| idx.balances(a, None))
        .collect();
    assert_eq!(rebuilt, kept);
    check_against_walk(&idx);
}

/// The sums a screening branch's unread rest is given (`received_of_sum_below`,
/// `sent_of_sum_between`) equal the sums over the lists, for every address of the two
/// mainnet blocks (ETH and tokens interleaved, so the latest send before a receipt is often
/// of another asset), every one of its receipts and (up to 40 of) its sends.
#[test]
fn the_sums_of_a_branchs_unread_rest_equal_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    for b in blocks() {
        idx.ingest_block(&b).unwrap();
    }
    idx.commit().unwrap();
    drop(idx);
    let idx = EvmIndex::open_reader(dir.path()).unwrap();
    let list = |a: u32, sent: bool| {
        let mut v = Vec::new();
        idx.each_movement_of(a, sent, &mut |id| {
            v.push(id);
            true
        });
        v
    };
    let (mut received_checked, mut sent_checked, mut nonzero) = (0, 0, 0);
    for addr in every_address(&idx) {
        let a = idx.address_id(&addr).unwrap();
        let (ins, outs) = (list(a, false), list(a, true));
        for &r in &ins {
            let m = idx.raw_movement(r);
            let want = ins
                .iter()
                .filter(|&&i| i < r && idx.raw_movement(i).asset == m.asset)
                .fold(cointrail_evm::U256::ZERO, |s, &i| {
                    s + idx.raw_movement(i).amount
                });
            assert_eq!(
                idx.received_of_sum_below(a, m.asset, r),
                Some(want),
                "{addr} {r}"
            );
            received_checked += 1;
        }
        for &s in outs.iter().take(40) {
            let asset = idx.raw_movement(s).asset;
            for &after in ins.iter().chain(&outs).take(80) {
                if after >= s {
                    continue;
                }
                let want = outs
                    .iter()
                    .filter(|&&i| i > after && i < s && idx.raw_movement(i).asset == asset)
                    .fold(cointrail_evm::U256::ZERO, |x, &i| {
                        x + idx.raw_movement(i).amount
                    });
                let got = idx.sent_of_sum_between(a, asset, after, s);
                assert_eq!(
                    got,
                    Some(want),
                    "{addr}: sends of {asset} in ({after}, {s})"
                );
                sent_checked += 1;
                nonzero += !want.is_zero() as usize;
            }
        }
        // Not `a`'s receipt / send of that asset: no answer (the caller reads instead).
        if let (Some(&r), Some(&s)) = (ins.first(), outs.first()) {
            let (ra, sa) = (idx.raw_movement(r).asset, idx.raw_movement(s).asset);
            assert_eq!(idx.received_of_sum_below(a, ra + 1000, r), None);
            assert_eq!(idx.sent_of_sum_between(a, sa + 1000, 0, s), None);
        }
    }
    assert!(
        received_checked > 300 && sent_checked > 300,
        "{received_checked} {sent_checked}"
    );
    assert!(nonzero > 50, "{nonzero}");
}

/// The per-asset list readers the screening walk uses (`each_received_of_before`,
/// `each_sent_of_after`, which read the next entry's pointer and prefetch it before handing
/// over the current one) visit exactly the filtered address lists, newest first, stop when
/// told, and `warm_asset_lists` (a cache warm-up, with ids past the end too) changes
/// nothing of what they visit.
#[test]
fn per_asset_list_readers_equal_the_lists_and_warming_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    for b in blocks() {
        idx.ingest_block(&b).unwrap();
    }
    idx.commit().unwrap();
    drop(idx);
    let idx = EvmIndex::open_reader(dir.path()).unwrap();
    let list = |a: u32, sent: bool| {
        let mut v = Vec::new();
        idx.each_movement_of(a, sent, &mut |id| {
            v.push(id);
            true
        });
        v
    };
    let mut checked = 0;
    for warm in [false, true] {
        for addr in every_address(&idx) {
            let a = idx.address_id(&addr).unwrap();
            let (ins, outs) = (list(a, false), list(a, true));
            if warm {
                let mut lists: Vec<(bool, u32, u32, u64)> = outs
                    .iter()
                    .map(|&s| (false, a, idx.raw_movement(s).asset, s))
                    .chain(ins.iter().map(|&r| (true, a, idx.raw_movement(r).asset, r)))
                    .collect();
                lists.push((true, a, 0, u64::MAX / 2));
                lists.push((false, a, 0, u64::MAX / 2));
                for depth in [0, 1, 32] {
                    idx.warm_asset_lists(&lists, depth);
                }
            }
            for &s in outs.iter().take(30) {
                let asset = idx.raw_movement(s).asset;
                let want: Vec<u64> = ins
                    .iter()
                    .copied()
                    .filter(|&i| i < s && idx.raw_movement(i).asset == asset)
                    .collect();
                let mut got = Vec::new();
                assert!(idx.each_received_of_before(a, asset, s, &mut |i| {
                    got.push(i);
                    true
                }));
                assert_eq!(got, want, "{addr}: receipts of {asset} before {s}");
                // Stopping after the first visit.
                let mut first = Vec::new();
                idx.each_received_of_before(a, asset, s, &mut |i| {
                    first.push(i);
                    false
                });
                assert_eq!(first, want.iter().copied().take(1).collect::<Vec<_>>());
                checked += 1;
            }
            for &after in ins.iter().chain(&outs).take(30) {
                for asset in outs.iter().map(|&s| idx.raw_movement(s).asset).take(3) {
                    let want: Vec<u64> = outs
                        .iter()
                        .copied()
                        .filter(|&i| i > after && idx.raw_movement(i).asset == asset)
                        .collect();
                    let mut got = Vec::new();
                    assert!(idx.each_sent_of_after(a, asset, after, &mut |i| {
                        got.push(i);
                        true
                    }));
                    assert_eq!(got, want, "{addr}: sends of {asset} after {after}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 600, "{checked}");
}
