//! The follower into the real EVM index (`IndexSink`) on anvil: catch-up equals the node,
//! and a block whose rows do not add up is refused naming the RPC method and the block,
//! with the blocks before it kept and the index consistent.

mod common;

use alloy_primitives::U256;
use cointrail_evmrpc::follower::{EvmFollower, EvmSink, FollowConfig};
use cointrail_evmrpc::sink::IndexSink;
use cointrail_evmrpc::{EvmNode, Traces};
use cointrail_index::evm::EvmIndex;
use common::anvil::{hex_u64, Anvil, CHAIN_ID};
use common::scenario;

#[test]
fn follows_into_the_index_and_refuses_a_bad_block_keeping_the_rest() {
    let a = Anvil::start();
    let s = scenario::run(&a);
    let tmp = tempfile::tempdir().unwrap();

    let idx = EvmIndex::open_writer(&tmp.path().join("a"), "ethereum").unwrap();
    let mut f = EvmFollower::new(
        EvmNode::connect(&a.url).unwrap(),
        IndexSink::new(idx),
        FollowConfig {
            batch_blocks: 4,
            ..Default::default()
        },
    );
    let r = f.sync_once().unwrap();
    assert_eq!((r.blocks_added, r.tip_number), (s.tip + 1, Some(s.tip)));
    let sink = f.into_sink();
    assert_eq!(sink.chain_id(), Some(CHAIN_ID));
    let node = EvmNode::connect(&a.url).unwrap();
    for n in 0..=s.tip {
        assert_eq!(sink.block_hash(n), node.block_hash(n).unwrap(), "block {n}");
    }
    assert_eq!(sink.appended().blocks, s.tip + 1);
    assert!(sink.index().verify().is_empty());
    drop(sink);

    // The Forwarder's split, with its top frame claiming one wei more than the transaction.
    let bad_n = hex_u64(&a.receipt(&s.forward)["blockNumber"]);
    let idx = EvmIndex::open_writer(&tmp.path().join("b"), "ethereum").unwrap();
    let mut sink = IndexSink::new(idx);
    let good: Vec<_> = (0..bad_n)
        .map(|n| node.fetch_block(n).unwrap().unwrap())
        .collect();
    sink.append(good).unwrap();
    let mut bad = node.fetch_block(bad_n).unwrap().unwrap();
    let Traces::Geth(frames) = &mut bad.traces else {
        panic!("anvil answers the callTracer")
    };
    let root = &mut frames[0].1;
    root.value = Some(root.value.unwrap_or_default() + U256::from(1u64));
    let next = node.fetch_block(bad_n + 1).unwrap().unwrap();
    let e = sink.append(vec![bad, next]).unwrap_err();
    assert!(
        e.contains(&format!("debug_traceBlockByHash block {bad_n}")) && e.contains("field `value`"),
        "{e}"
    );
    assert_eq!(sink.index().tip(), Some(bad_n - 1));
    let dir = sink.index().dir().to_path_buf();
    drop(sink);
    let idx = EvmIndex::open_reader(&dir).unwrap();
    assert_eq!(idx.tip(), Some(bad_n - 1));
    assert!(idx.verify().is_empty());
}
