//! Keep an EVM index at a node's head: catch up block by block, then poll for new heads;
//! when the node's chain no longer holds the index's tip, roll back to the last shared block
//! and index the node's branch (the way the Bitcoin follower in `cointrail_follow` does).
//!
//! The index is reached through [`EvmSink`], so this loop knows nothing of its storage.

use crate::node::{EvmNode, FetchedBlock, NodeError};
use alloy_primitives::B256;
use cointrail_follow::sync::{sleep_unless, Backoff};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the follower needs of an EVM index.
pub trait EvmSink {
    /// The chain id the index holds, `None` while it is empty and unbound.
    fn chain_id(&self) -> Option<u64>;
    /// Bind an empty index to a chain (called once, before the first block).
    fn set_chain_id(&mut self, id: u64) -> Result<(), String>;
    /// Number and hash of the last indexed block.
    fn tip(&self) -> Option<(u64, B256)>;
    /// The first indexed block (an index may start above genesis).
    fn first(&self) -> Option<u64>;
    fn block_hash(&self, number: u64) -> Option<B256>;
    /// Drop every block above `number` (`None`: drop all), crash-safe.
    fn rollback_to(&mut self, number: Option<u64>) -> Result<(), String>;
    /// Append blocks that extend the tip, in order, durably.
    fn append(&mut self, blocks: Vec<FetchedBlock>) -> Result<(), String>;
    /// Token contracts that moved value and whose symbol/decimals nobody asked yet.
    fn tokens_to_ask(&self) -> Vec<alloy_primitives::Address> {
        Vec::new()
    }
    /// Keep what token contracts answered.
    fn learn_tokens(&mut self, _rows: Vec<cointrail_evm::etl::TokenRow>) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("the EVM index: {0}")]
    Index(String),
    /// The node changed its chain while blocks were fetched: sync again.
    #[error("{0}")]
    Chain(String),
}

impl FollowError {
    pub fn is_transient(&self) -> bool {
        match self {
            FollowError::Node(e) => e.is_transient(),
            FollowError::Chain(_) => true,
            FollowError::Index(_) => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FollowConfig {
    pub poll: Duration,
    pub max_backoff: Duration,
    /// Blocks appended per durable batch while catching up.
    pub batch_blocks: usize,
    /// First block to index when the index is empty (0: genesis).
    pub start: u64,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            poll: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            batch_blocks: 100,
            start: 0,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    pub chain_id: u64,
    pub blocks_added: u64,
    pub blocks_rolled_back: u64,
    /// The last block the index shared with the node, when it rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork_number: Option<u64>,
    pub tip_number: Option<u64>,
    pub tip_hash: Option<String>,
    /// Set when the node's head is below the index's tip on the same chain (it is behind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_behind: Option<u64>,
    /// Token contracts asked for their symbol and decimals (`eth_call`).
    pub tokens_learned: u64,
}

pub struct EvmFollower<S: EvmSink> {
    node: EvmNode,
    sink: S,
    cfg: FollowConfig,
    stop: Option<std::sync::Arc<AtomicBool>>,
}

impl<S: EvmSink> EvmFollower<S> {
    pub fn new(node: EvmNode, sink: S, cfg: FollowConfig) -> Self {
        EvmFollower {
            node,
            sink,
            cfg,
            stop: None,
        }
    }

    pub fn node(&self) -> &EvmNode {
        &self.node
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Refuse a node on another chain; bind an empty index to the node's chain. An index
    /// that holds blocks but no chain id (it was filled from files) is bound only once the
    /// node's chain is seen to hold its blocks (in [`Self::sync_once`]), so a wrong node
    /// leaves it as it was.
    pub fn check_node(&mut self) -> Result<u64, FollowError> {
        match self.sink.chain_id() {
            Some(id) => Ok(self.node.check_chain(id)?),
            None => {
                let id = self.node.chain_id()?;
                if self.sink.tip().is_none() {
                    self.sink.set_chain_id(id).map_err(FollowError::Index)?;
                }
                Ok(id)
            }
        }
    }

    /// Stop between batches (and before each sync) once `stop` is set, committing what
    /// was fetched: a long catch-up ends promptly on Ctrl-C.
    pub fn set_stop(&mut self, stop: std::sync::Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The last block the index shares with the node; `None` when nothing is indexed.
    fn find_fork(&self, head: u64) -> Result<Option<u64>, FollowError> {
        use cointrail_follow::sync::{find_fork, ForkError};
        let indexed = self.sink.first().zip(self.sink.tip().map(|(n, _)| n));
        match find_fork(
            indexed,
            head,
            |n| self.node.block_hash(n),
            |n| self.sink.block_hash(n),
        ) {
            Ok(f) => Ok(f),
            Err(ForkError::Node(e)) => Err(e.into()),
            Err(ForkError::HeadBelowFirst { head, first }) => Err(FollowError::Chain(format!(
                "the node's head is block {head}, below the index's first block ({first}): waiting for it to sync"
            ))),
            Err(ForkError::Disjoint { first }) => Err(FollowError::Index(format!(
                "the node's chain shares no block with the index (its first block {first} is not on it): use another --data-dir"
            ))),
        }
    }

    /// Bring the index to the node's head.
    pub fn sync_once(&mut self) -> Result<SyncReport, FollowError> {
        let chain_id = self.check_node()?;
        let mut rep = SyncReport {
            chain_id,
            ..Default::default()
        };
        let head = self.node.block_number()?;
        let fork = self.find_fork(head)?;
        if self.sink.chain_id().is_none() {
            self.sink
                .set_chain_id(chain_id)
                .map_err(FollowError::Index)?;
        }
        if let (Some(f), Some((tip, _))) = (fork, self.sink.tip()) {
            if f == head && f < tip {
                // A prefix of our chain: the node is behind (restarted, still syncing), not
                // on another branch. Keep what we have and wait.
                tracing::warn!(
                    node = head,
                    index = tip,
                    "the node is behind the index; waiting for it"
                );
                rep.node_behind = Some(head);
                return Ok(self.finish(rep));
            }
            if f < tip {
                tracing::info!(fork = f, dropped = tip - f, "reorganisation: rolling back");
                self.sink.rollback_to(Some(f)).map_err(FollowError::Index)?;
                rep.blocks_rolled_back = tip - f;
                rep.fork_number = Some(f);
            }
        }
        let mut next = fork.map_or(self.cfg.start, |f| f + 1);
        let mut prev = fork.and_then(|f| self.sink.block_hash(f));
        while next <= head && !self.stopping() {
            let end = head.min(next + self.cfg.batch_blocks.max(1) as u64 - 1);
            let mut batch = Vec::with_capacity((end - next + 1) as usize);
            for n in next..=end {
                if self.stopping() {
                    break;
                }
                let Some(b) = self.node.fetch_block(n)? else {
                    break;
                };
                if prev.is_some_and(|p| p != b.block.header.parent_hash) {
                    return Err(FollowError::Chain(format!(
                        "the node reorganised while blocks were fetched (block {n}, {}, does not build on the one before)",
                        b.block.header.hash
                    )));
                }
                prev = Some(b.block.header.hash);
                batch.push(b);
            }
            if batch.is_empty() {
                break;
            }
            let k = batch.len() as u64;
            self.sink.append(batch).map_err(FollowError::Index)?;
            next += k;
            rep.blocks_added += k;
            // New tokens are asked at the batch's last block, so the answer is the same
            // whenever the follower runs (a token can change its own symbol later).
            let ask = self.sink.tokens_to_ask();
            if !ask.is_empty() {
                let mut rows = Vec::with_capacity(ask.len());
                for a in ask {
                    rows.push(self.node.token_meta(a, next - 1)?);
                }
                rep.tokens_learned += rows.len() as u64;
                self.sink.learn_tokens(rows).map_err(FollowError::Index)?;
            }
        }
        Ok(self.finish(rep))
    }

    fn finish(&self, mut rep: SyncReport) -> SyncReport {
        if let Some((n, h)) = self.sink.tip() {
            rep.tip_number = Some(n);
            rep.tip_hash = Some(format!("{h:#x}"));
        }
        rep
    }

    /// Follow until `stop`: sync, wait `poll`, again. A node that goes away is retried with
    /// exponential backoff; what retrying cannot fix (another chain, a damaged index) ends
    /// the run.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_sync: impl FnMut(&SyncReport),
    ) -> Result<(), FollowError> {
        let mut backoff = Backoff::new(self.cfg.max_backoff);
        while !stop.load(Ordering::Relaxed) {
            match self.sync_once() {
                Ok(rep) => {
                    if let Some(t) = backoff.recovered() {
                        tracing::info!("node is back after {t:?}; caught up");
                    }
                    on_sync(&rep);
                    sleep_unless(stop, self.cfg.poll);
                }
                Err(e) if e.is_transient() => {
                    let wait = backoff.failed();
                    tracing::warn!("{e}; retrying in {wait:?}");
                    sleep_unless(stop, wait);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
