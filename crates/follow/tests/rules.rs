//! Rules on chains built in memory (no node): an entity's drain by share across a window,
//! and its state undone by a reorganisation.

#[path = "common/blocks.rs"]
mod blocks;

use blocks::*;
use cointrail_follow::*;

struct Exchange;

impl EntityResolver for Exchange {
    fn addresses_of(&self, entity: &str) -> Option<Vec<String>> {
        (entity == "hot-exchange").then(|| vec![addr(1), addr(2)])
    }
}

#[test]
#[allow(non_snake_case)]
fn entity_drain_by_share_and_its_undo_on_reorganisation() {
    let (a, a2, x) = (addr(1), addr(2), addr(3));
    let (A, A2, X) = (a.as_str(), a2.as_str(), x.as_str());
    let dir = tempfile::tempdir().unwrap();
    let mut idx = cointrail_index::Index::open_writer(&dir.path().join("index")).unwrap();
    let g = genesis();
    let t = g.header.time;
    let cb1 = coinbase(1, &[(spk(A), 50_0000_0000)]);
    let b1 = block(g.block_hash(), t + 1, vec![cb1.clone()]);
    ingest(&mut idx, vec![g, b1.clone()]);
    let hooks = Hooks {
        entities: Some(Box::new(Exchange)),
        ..Default::default()
    };
    let mut e = AlertEngine::open(dir.path(), hooks).unwrap();
    e.sync(&idx).unwrap();
    let drain = |entity: &str| RuleKind::Drain {
        addresses: vec![],
        entity: Some(entity.into()),
        threshold_sats: None,
        threshold_wei: None,
        share_pct: Some(50.0),
        window_blocks: 2,
    };
    e.add_rule(
        &idx,
        Some("hot".into()),
        drain("hot-exchange"),
        String::new(),
    )
    .unwrap();
    e.add_rule(&idx, Some("ghost".into()), drain("nobody"), String::new())
        .unwrap();

    // Block 2: 10 of 50 BTC leave (20%), 40 move inside the entity (change, not a drain).
    let tx2 = spend(
        &[bitcoin::OutPoint::new(cb1.compute_txid(), 0)],
        &[(spk(X), 10_0000_0000), (spk(A2), 40_0000_0000)],
    );
    let b2 = block(
        b1.block_hash(),
        t + 2,
        vec![coinbase(2, &[(spk(X), 1)]), tx2.clone()],
    );
    // Block 3: 35 more leave: 45 of the 50 the entity held when the window began (90%).
    let tx3 = spend(
        &[bitcoin::OutPoint::new(tx2.compute_txid(), 1)],
        &[(spk(X), 35_0000_0000), (spk(A), 5_0000_0000)],
    );
    let b3 = block(
        b2.block_hash(),
        t + 3,
        vec![coinbase(3, &[(spk(X), 1)]), tx3.clone()],
    );
    ingest(&mut idx, vec![b2.clone()]);
    let r = e.sync(&idx).unwrap();
    assert!(r.alerts.is_empty(), "20% is under the 50% share");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("\"nobody\" is unknown")),
        "{:?}",
        r.warnings
    );
    ingest(&mut idx, vec![b3.clone()]);
    let r = e.sync(&idx).unwrap();
    assert_eq!(r.alerts.len(), 1);
    let a = &r.alerts[0];
    assert_eq!((a.rule_id.as_str(), a.height), ("hot", 3));
    assert_eq!(a.txid, tx3.compute_txid().to_string());
    assert_eq!(
        a.details["window_sent_sats"],
        serde_json::json!(45_0000_0000u64)
    );
    assert_eq!(
        a.details["balance_before_sats"],
        serde_json::json!(50_0000_0000u64)
    );
    assert_eq!(a.details["share_pct"], serde_json::json!(90.0));

    // A longer branch from block 2 without tx3: block 3 is undone (its alert orphaned, the
    // window's flows restored), and the new blocks do not drain.
    let c3 = block(b2.block_hash(), t + 30, vec![coinbase(3, &[(spk(X), 2)])]);
    let c4 = block(c3.block_hash(), t + 31, vec![coinbase(4, &[(spk(X), 2)])]);
    let rep = ingest(&mut idx, vec![c3, c4.clone()]);
    assert_eq!(rep.blocks_rolled_back, 1);
    let r = e.sync(&idx).unwrap();
    assert_eq!((r.rolled_back_to, r.blocks_evaluated), (Some(2), 2));
    assert!(r.alerts.is_empty());
    let all = e.store().list(&AlertFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].orphaned);
    // tx3 confirmed in block 5 instead: its drain is the same alert, back from orphaned.
    let c5 = block(
        c4.block_hash(),
        t + 32,
        vec![coinbase(5, &[(spk(X), 2)]), tx3.clone()],
    );
    ingest(&mut idx, vec![c5]);
    let r = e.sync(&idx).unwrap();
    // 35 BTC left within the window (blocks 4-5) out of 40 held when it began: 87.5%.
    assert!(r.alerts.is_empty(), "same id: not a new alert");
    let all = e.store().list(&AlertFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert!(!all[0].orphaned);
    assert_eq!(all[0].height, 5);
}
