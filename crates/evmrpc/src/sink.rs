//! The follower's [`EvmSink`] over the EVM index: a node's blocks go through the same
//! ingest path as ethereum-etl files (`rows::to_rows` → `EvmIndex::ingest_block`), each
//! batch committed before the follower moves on, reorganisations rolled back with
//! `EvmIndex::rollback_to` (crash-safe: the manifest is the commit point).

use crate::follower::EvmSink;
use crate::node::FetchedBlock;
use crate::rows::to_rows;
use alloy_primitives::B256;
use cointrail_index::evm::EvmIndex;

/// Counts of what a sink has appended since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Appended {
    pub blocks: u64,
    pub transactions: u64,
    pub movements: u64,
}

pub struct IndexSink {
    idx: EvmIndex,
    appended: Appended,
    /// Called after each committed batch with the new tip and the totals so far.
    on_commit: Option<Box<dyn FnMut(u64, &Appended)>>,
    /// Called with the index after each committed batch and each rollback (alert rules).
    on_index: Option<Box<dyn FnMut(&EvmIndex)>>,
}

impl IndexSink {
    pub fn new(idx: EvmIndex) -> IndexSink {
        IndexSink {
            idx,
            appended: Appended::default(),
            on_commit: None,
            on_index: None,
        }
    }

    pub fn on_commit(&mut self, f: impl FnMut(u64, &Appended) + 'static) {
        self.on_commit = Some(Box::new(f));
    }

    /// Run `f` over the index after every committed batch and rollback (the Ethereum
    /// follower evaluates its alert rules there).
    pub fn on_index(&mut self, f: impl FnMut(&EvmIndex) + 'static) {
        self.on_index = Some(Box::new(f));
    }

    pub fn index(&self) -> &EvmIndex {
        &self.idx
    }

    pub fn appended(&self) -> Appended {
        self.appended
    }

    pub fn into_index(self) -> EvmIndex {
        self.idx
    }
}

impl EvmSink for IndexSink {
    fn chain_id(&self) -> Option<u64> {
        self.idx.chain_id()
    }

    fn set_chain_id(&mut self, id: u64) -> Result<(), String> {
        self.idx.set_chain_id(id).map_err(|e| e.to_string())
    }

    fn tip(&self) -> Option<(u64, B256)> {
        let n = self.idx.tip()?;
        Some((n, self.idx.block_hash(n)?))
    }

    fn first(&self) -> Option<u64> {
        self.idx.first_block()
    }

    fn block_hash(&self, number: u64) -> Option<B256> {
        self.idx.block_hash(number)
    }

    fn rollback_to(&mut self, number: Option<u64>) -> Result<(), String> {
        let keep = match (number, self.idx.first_block()) {
            (Some(n), _) => n,
            (None, None) => return Ok(()),
            (None, Some(first)) if first > 0 => first - 1,
            (None, Some(_)) => {
                return Err("a reorganisation replaced every indexed block down to genesis; remove the index and follow again".into())
            }
        };
        self.idx.rollback_to(keep).map_err(|e| e.to_string())?;
        if let Some(f) = self.on_index.as_mut() {
            f(&self.idx);
        }
        Ok(())
    }

    fn tokens_to_ask(&self) -> Vec<alloy_primitives::Address> {
        self.idx.tokens_to_ask().unwrap_or_default()
    }

    fn learn_tokens(&mut self, rows: Vec<cointrail_evm::etl::TokenRow>) -> Result<(), String> {
        self.idx
            .learn_tokens(&rows)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn append(&mut self, blocks: Vec<FetchedBlock>) -> Result<(), String> {
        let mut failed = None;
        for b in &blocks {
            let n = b.block.header.number;
            let rows = match to_rows(b) {
                Ok(r) => r,
                Err(e) => {
                    failed = Some(format!("the node's block {n} cannot be read: {e}"));
                    break;
                }
            };
            // A refused block changes nothing (ingest_block checks before it appends), so
            // the blocks before it are committed and kept.
            match self.idx.ingest_block(&rows) {
                Ok(m) => {
                    self.appended.blocks += 1;
                    self.appended.transactions += rows.transactions.len() as u64;
                    self.appended.movements += m as u64;
                }
                Err(e) => {
                    failed = Some(format!("the node's block {n} was refused: {e}"));
                    break;
                }
            }
        }
        self.idx.commit().map_err(|e| e.to_string())?;
        if let Some(f) = self.on_index.as_mut() {
            f(&self.idx);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if let (Some(f), Some(tip)) = (self.on_commit.as_mut(), self.idx.tip()) {
            f(tip, &self.appended);
        }
        Ok(())
    }
}
