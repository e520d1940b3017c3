//! Keep the index at the node's tip: catch up over RPC, hear of new blocks over ZMQ (or by
//! polling), follow reorganisations, and survive the node going away.

use crate::engine::{AlertEngine, EngineReport};
use crate::rpc::{block_from_bytes, ChainInfo, RpcClient, RpcError};
use crate::sync::sleep_unless;
use crate::zmq::ZmqEvent;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Network};
use cointrail_chain::network::network_name;
use cointrail_chain::ChainBlock;
use cointrail_index::{ingest, Index, IngestOptions, Source};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Index(#[from] cointrail_index::IndexError),
    #[error(transparent)]
    Alerts(#[from] crate::store::StoreError),
    #[error("{0}")]
    Chain(String),
    #[error("a chain listener failed: {0}")]
    Listener(String),
}

impl FollowError {
    pub fn is_transient(&self) -> bool {
        match self {
            FollowError::Rpc(e) => e.is_transient(),
            // The node reorganised under us while we fetched: just sync again.
            FollowError::Chain(_) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FollowConfig {
    pub poll: Duration,
    /// Cap of the exponential backoff while the node is unreachable.
    pub max_backoff: Duration,
    /// Blocks fetched per ingest batch while catching up.
    pub batch_blocks: usize,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            poll: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            batch_blocks: 200,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub blocks_added: u64,
    pub blocks_rolled_back: u64,
    pub fork_height: Option<u32>,
    pub tip_height: Option<u32>,
    pub tip_hash: Option<String>,
    pub alerts: usize,
    /// Set when the node's tip is an ancestor of the index's tip (the node is behind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_behind: Option<u32>,
    #[serde(skip)]
    pub engine: Option<EngineReport>,
}

/// Derived state kept by other crates (clustering, labels' derived state, traces) that must
/// follow the chain too. Calls are notifications after the index committed: a listener
/// should keep its own cursor (height + hash) and catch up from it, so a crash between the
/// index commit and the call loses nothing.
pub trait ChainListener: Send {
    /// Blocks above `fork_height` left the chain.
    fn rolled_back(&mut self, index: &Index, fork_height: u32) -> Result<(), String>;
    /// Blocks `first..=last` were appended.
    fn blocks_added(&mut self, index: &Index, first: u32, last: u32) -> Result<(), String>;
}

pub struct Follower {
    rpc: RpcClient,
    index: Index,
    engine: Option<AlertEngine>,
    network: Option<Network>,
    listeners: Vec<Box<dyn ChainListener>>,
}

impl Follower {
    /// Open the index for writing (one writer per index).
    pub fn open(
        index_dir: &Path,
        rpc: RpcClient,
        engine: Option<AlertEngine>,
    ) -> Result<Follower, FollowError> {
        let index = Index::open_writer(index_dir)?;
        Ok(Follower {
            rpc,
            network: index.network(),
            index,
            engine,
            listeners: Vec::new(),
        })
    }

    pub fn add_listener(&mut self, l: Box<dyn ChainListener>) {
        self.listeners.push(l);
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn engine_mut(&mut self) -> Option<&mut AlertEngine> {
        self.engine.as_mut()
    }

    /// The index and the engine together (adding a rule needs both).
    pub fn parts(&mut self) -> (&Index, Option<&mut AlertEngine>) {
        (&self.index, self.engine.as_mut())
    }

    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// Ask the node who it is; refuse one on another network than the index.
    pub fn check_node(&mut self) -> Result<ChainInfo, FollowError> {
        let info = self.rpc.get_blockchain_info()?;
        if let Some(n) = self.index.network() {
            if n != info.network {
                return Err(RpcError::WrongNetwork {
                    node: info.chain.clone(),
                    index: network_name(n).to_string(),
                }
                .into());
            }
        }
        self.network = Some(info.network);
        Ok(info)
    }

    fn index_hash_at(&self, h: u32) -> Option<BlockHash> {
        let start = self.index.start_height();
        let tip = self.index.tip_height()?;
        (h >= start && h <= tip)
            .then(|| BlockHash::from_byte_array(self.index.block_hash((h - start) as u64)))
    }

    /// Height of the last block the index shares with the node (`None`: nothing indexed).
    fn find_fork(&self, node_height: u32) -> Result<Option<u32>, FollowError> {
        use crate::sync::{find_fork, ForkError};
        let indexed = self
            .index
            .tip_height()
            .map(|tip| (self.index.start_height() as u64, tip as u64));
        let fork = find_fork(
            indexed,
            node_height as u64,
            |h| self.rpc.get_block_hash(h as u32),
            |h| self.index_hash_at(h as u32),
        );
        match fork {
            Ok(f) => Ok(f.map(|h| h as u32)),
            Err(ForkError::Node(e)) => Err(e.into()),
            Err(ForkError::HeadBelowFirst { head, first }) => Err(FollowError::Chain(format!(
                "the node is at height {head}, below the index's first block ({first}): waiting for it to sync"
            ))),
            Err(ForkError::Disjoint { first }) => Err(FollowError::Chain(format!(
                "the node's chain shares no block with the index (first indexed block, height {first}, is not on it)"
            ))),
        }
    }

    /// Bring the index (and the alert rules) to the node's tip.
    pub fn sync_once(&mut self) -> Result<SyncReport, FollowError> {
        let info = self.check_node()?;
        let network = info.network;
        let mut rep = SyncReport::default();
        let node_tip = info.blocks;
        let fork = self.find_fork(node_tip)?;
        if let (Some(f), Some(tip)) = (fork, self.index.tip_height()) {
            if f == node_tip && f < tip {
                // The node holds a prefix of our chain: it is behind (still syncing, or a
                // different node), not on another branch. Rolling back would throw away
                // blocks it will most likely reach again; wait instead.
                tracing::warn!(
                    node = node_tip,
                    index = tip,
                    "the node is behind the index; waiting for it"
                );
                rep.node_behind = Some(node_tip);
                return self.finish(rep);
            }
            if f < tip {
                // The node left our branch: it is the authority even if its branch has less
                // work than ours (after invalidateblock, say).
                rep.blocks_rolled_back = (tip - f) as u64;
                rep.fork_height = Some(f);
                tracing::info!(fork = f, dropped = tip - f, "reorganisation: rolling back");
                self.index
                    .rollback_to_blocks((f - self.index.start_height() + 1) as u64)?;
                for l in &mut self.listeners {
                    l.rolled_back(&self.index, f)
                        .map_err(FollowError::Listener)?;
                }
            }
        }
        let mut next = match fork {
            Some(f) => f + 1,
            None => 0,
        };
        let mut prev = fork.and_then(|f| self.index_hash_at(f));
        while next <= node_tip {
            let end = node_tip.min(next + self.batch() as u32 - 1);
            let mut batch = Vec::with_capacity((end - next + 1) as usize);
            for h in next..=end {
                let Some(hash) = self.rpc.get_block_hash(h)? else {
                    break;
                };
                let b = self.rpc.get_block(&hash, network)?;
                if prev.is_some() && b.prev != prev {
                    return Err(FollowError::Chain(format!(
                        "the node reorganised while blocks were fetched (block {hash} at {h} does not build on the one before)"
                    )));
                }
                prev = Some(b.hash);
                batch.push(b);
            }
            if batch.is_empty() {
                break;
            }
            next += batch.len() as u32;
            rep.blocks_added += self.append(batch, network)?;
        }
        self.finish(rep)
    }

    fn batch(&self) -> usize {
        200
    }

    fn append(&mut self, blocks: Vec<ChainBlock>, network: Network) -> Result<u64, FollowError> {
        let before = self.index.tip_height();
        let r = ingest(
            &mut self.index,
            Source::Blocks(blocks),
            &IngestOptions {
                network: Some(network),
                ..Default::default()
            },
        )?;
        if r.orphan_blocks > 0 {
            return Err(FollowError::Chain(format!(
                "{} fetched blocks did not connect to the index",
                r.orphan_blocks
            )));
        }
        if let (Some(last), true) = (self.index.tip_height(), r.blocks_added > 0) {
            let first = before.map_or(self.index.start_height(), |b| b + 1);
            for l in &mut self.listeners {
                l.blocks_added(&self.index, first, last)
                    .map_err(FollowError::Listener)?;
            }
        }
        Ok(r.blocks_added)
    }

    fn finish(&mut self, mut rep: SyncReport) -> Result<SyncReport, FollowError> {
        if let Some(e) = self.engine.as_mut() {
            let er = e.sync(&self.index)?;
            for w in &er.warnings {
                tracing::warn!("{w}");
            }
            rep.alerts = er.alerts.len();
            rep.engine = Some(er);
        }
        rep.tip_height = self.index.tip_height();
        rep.tip_hash = rep
            .tip_height
            .and_then(|h| self.index_hash_at(h))
            .map(|h| h.to_string());
        Ok(rep)
    }

    /// A `rawblock` from ZMQ: when it extends the tip, index it without asking the node;
    /// anything else (a reorganisation, a gap) goes through a full sync.
    pub fn on_raw_block(&mut self, bytes: &[u8]) -> Result<SyncReport, FollowError> {
        let Some(network) = self.network else {
            return self.sync_once();
        };
        let b = match block_from_bytes(bytes, network, "zmq:rawblock") {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("ZMQ rawblock refused: {e}; syncing over RPC");
                return self.sync_once();
            }
        };
        let tip = self.index.tip_height().and_then(|h| self.index_hash_at(h));
        if tip.is_some() && b.prev == tip {
            let added = self.append(vec![b], network)?;
            return self.finish(SyncReport {
                blocks_added: added,
                ..Default::default()
            });
        }
        if self
            .index
            .find_block_hash(&b.hash.to_byte_array())
            .is_some()
        {
            return Ok(SyncReport::default());
        }
        self.sync_once()
    }

    /// Follow until `stop`: sync, then wait for a ZMQ event or the poll interval. A node
    /// that goes away is retried with exponential backoff; errors that retrying cannot fix
    /// (credentials, network, a damaged index) end the run.
    pub fn run(
        &mut self,
        cfg: &FollowConfig,
        events: Option<Receiver<ZmqEvent>>,
        stop: Arc<AtomicBool>,
        mut on_sync: impl FnMut(&SyncReport),
    ) -> Result<(), FollowError> {
        let mut backoff = crate::sync::Backoff::new(cfg.max_backoff);
        let mut pending_raw: Option<Vec<u8>> = None;
        while !stop.load(Ordering::Relaxed) {
            let r = match pending_raw.take() {
                Some(raw) => self.on_raw_block(&raw),
                None => self.sync_once(),
            };
            match r {
                Ok(rep) => {
                    if let Some(t) = backoff.recovered() {
                        tracing::info!("node is back after {t:?}; caught up");
                    }
                    on_sync(&rep);
                }
                Err(e) if e.is_transient() => {
                    let wait = backoff.failed();
                    tracing::warn!("{e}; retrying in {wait:?}");
                    sleep_unless(&stop, wait);
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Wait for news: a ZMQ event or the poll interval, whichever comes first.
            match &events {
                Some(rx) => match rx.recv_timeout(cfg.poll) {
                    Ok(ZmqEvent::RawBlock { bytes, .. }) => pending_raw = Some(bytes),
                    Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => sleep_unless(&stop, cfg.poll),
                },
                None => sleep_unless(&stop, cfg.poll),
            }
        }
        Ok(())
    }
}
