//! The EVM follower against a real anvil, with an in-memory index: catch up, follow new
//! heads, roll back exactly the blocks a reorganisation (evm_snapshot / evm_revert) took
//! away, wait for a node that is behind, refuse a node on another chain.

mod common;

use alloy_primitives::B256;
use cointrail_evmrpc::follower::{EvmFollower, EvmSink, FollowConfig, FollowError};
use cointrail_evmrpc::{EvmNode, FetchedBlock, NodeError};
use common::anvil::{Anvil, CHAIN_ID};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Mem {
    chain: Option<u64>,
    first: u64,
    blocks: Vec<FetchedBlock>,
    rollbacks: Vec<Option<u64>>,
}

#[derive(Clone, Default)]
struct MemSink(Arc<Mutex<Mem>>);

impl EvmSink for MemSink {
    fn chain_id(&self) -> Option<u64> {
        self.0.lock().unwrap().chain
    }
    fn set_chain_id(&mut self, id: u64) -> Result<(), String> {
        self.0.lock().unwrap().chain = Some(id);
        Ok(())
    }
    fn tip(&self) -> Option<(u64, B256)> {
        let m = self.0.lock().unwrap();
        m.blocks
            .last()
            .map(|b| (b.block.header.number, b.block.header.hash))
    }
    fn first(&self) -> Option<u64> {
        let m = self.0.lock().unwrap();
        (!m.blocks.is_empty()).then_some(m.first)
    }
    fn block_hash(&self, n: u64) -> Option<B256> {
        let m = self.0.lock().unwrap();
        n.checked_sub(m.first)
            .and_then(|i| m.blocks.get(i as usize))
            .map(|b| b.block.header.hash)
    }
    fn rollback_to(&mut self, n: Option<u64>) -> Result<(), String> {
        let mut m = self.0.lock().unwrap();
        let keep = n.map_or(0, |n| (n + 1 - m.first) as usize);
        m.blocks.truncate(keep);
        m.rollbacks.push(n);
        Ok(())
    }
    fn append(&mut self, blocks: Vec<FetchedBlock>) -> Result<(), String> {
        let mut m = self.0.lock().unwrap();
        for b in blocks {
            let want = m
                .blocks
                .last()
                .map(|l| (l.block.header.number + 1, l.block.header.hash));
            if let Some((n, h)) = want {
                if b.block.header.number != n || b.block.header.parent_hash != h {
                    return Err(format!(
                        "block {} does not extend the tip",
                        b.block.header.number
                    ));
                }
            } else {
                m.first = b.block.header.number;
            }
            m.blocks.push(b);
        }
        Ok(())
    }
}

impl MemSink {
    fn hashes(&self) -> Vec<B256> {
        self.0
            .lock()
            .unwrap()
            .blocks
            .iter()
            .map(|b| b.block.header.hash)
            .collect()
    }
    fn tx_hashes(&self) -> Vec<B256> {
        self.0
            .lock()
            .unwrap()
            .blocks
            .iter()
            .flat_map(|b| b.block.transactions.hashes().collect::<Vec<_>>())
            .collect()
    }
}

fn node_hashes(node: &EvmNode) -> Vec<B256> {
    let head = node.block_number().unwrap();
    (0..=head)
        .map(|n| node.block_hash(n).unwrap().unwrap())
        .collect()
}

fn pay(a: &Anvil, from: usize, to: usize, wei: u64) -> B256 {
    let acc = a.accounts();
    let h = a.send(json!({"from": acc[from], "to": acc[to], "value": format!("{wei:#x}")}));
    // Mined (auto-mining answers before the block is in).
    assert_eq!(a.receipt(&h)["status"], "0x1");
    h.parse().unwrap()
}

fn cfg() -> FollowConfig {
    FollowConfig {
        poll: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        batch_blocks: 3,
        start: 0,
    }
}

#[test]
fn catch_up_reorg_behind_and_wrong_chain() {
    let a = Anvil::start();
    for i in 0..5 {
        pay(&a, i % 3, 5, 1000 + i as u64);
    }
    let sink = MemSink::default();
    let mut f = EvmFollower::new(EvmNode::connect(&a.url).unwrap(), sink.clone(), cfg());
    let r = f.sync_once().unwrap();
    assert_eq!(
        (r.chain_id, r.blocks_added, r.blocks_rolled_back),
        (CHAIN_ID, 6, 0)
    );
    assert_eq!(r.tip_number, Some(5));
    assert_eq!(sink.hashes(), node_hashes(f.node()));
    // Nothing new: nothing done.
    let r = f.sync_once().unwrap();
    assert_eq!((r.blocks_added, r.blocks_rolled_back), (0, 0));

    // Three blocks on a branch that will be abandoned.
    let snap = a.snapshot();
    let gone: Vec<B256> = (0..3).map(|i| pay(&a, 1, 6, 7 + i)).collect();
    assert_eq!(f.sync_once().unwrap().blocks_added, 3);
    assert_eq!(sink.hashes().len(), 9);

    // The node goes back to block 5 without new blocks: it is behind, nothing is dropped.
    a.revert(snap);
    assert_eq!(a.block_number(), 5);
    let r = f.sync_once().unwrap();
    assert_eq!(r.node_behind, Some(5));
    assert_eq!((r.blocks_added, r.blocks_rolled_back), (0, 0));
    assert_eq!(sink.hashes().len(), 9);

    // Then a longer other branch from 5: exactly the three abandoned blocks go.
    let kept: Vec<B256> = (0..4).map(|i| pay(&a, 2, 7, 70 + i)).collect();
    let r = f.sync_once().unwrap();
    assert_eq!(
        (
            r.blocks_rolled_back,
            r.fork_number,
            r.blocks_added,
            r.tip_number
        ),
        (3, Some(5), 4, Some(9))
    );
    assert_eq!(sink.0.lock().unwrap().rollbacks, vec![Some(5)]);
    assert_eq!(sink.hashes(), node_hashes(f.node()));
    let txs = sink.tx_hashes();
    assert!(
        gone.iter().all(|g| !txs.contains(g)),
        "abandoned transactions are gone"
    );
    assert!(kept.iter().all(|k| txs.contains(k)));
    assert_eq!(txs.len(), 5 + 4);

    // An index bound to another chain refuses this node, and retrying cannot fix it.
    let other = MemSink::default();
    other.0.lock().unwrap().chain = Some(1);
    let mut g = EvmFollower::new(EvmNode::connect(&a.url).unwrap(), other, cfg());
    let e = g.sync_once().unwrap_err();
    assert!(
        matches!(
            e,
            FollowError::Node(NodeError::WrongChain {
                node: CHAIN_ID,
                index: 1
            })
        ),
        "{e}"
    );
    assert!(!e.is_transient());
}

#[test]
fn run_follows_new_heads_until_stopped() {
    let a = Anvil::start();
    let sink = MemSink::default();
    let node = EvmNode::connect(&a.url).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let syncs = Arc::new(Mutex::new(0u32));
    let t = {
        let (sink, stop, syncs) = (sink.clone(), stop.clone(), syncs.clone());
        std::thread::spawn(move || {
            let mut f = EvmFollower::new(node, sink, cfg());
            f.run(&stop, |_| *syncs.lock().unwrap() += 1)
        })
    };
    let want = pay(&a, 0, 1, 5);
    pay(&a, 0, 1, 6);
    let t0 = Instant::now();
    while sink.hashes().len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the follower did not reach the new head"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sink.tx_hashes().contains(&want));
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap().unwrap();
    assert!(*syncs.lock().unwrap() >= 1);
}
