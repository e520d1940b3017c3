//! Raw, typed access to the movement table in chain order, for account-model tracing
//! (`cointrail-account`'s `Ledger` is implemented over these in `engine::account`).

use std::ops::Range;

use cointrail_evm::movement::{Asset, MovementKind};
use cointrail_evm::{Address, B256, U256};

use super::store::{EvmIndex, NONE40};

/// One movement as stored, with the dense numbers of its transaction and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMove {
    pub id: u64,
    pub block: u64,
    /// Dense transaction number (see [`EvmIndex::tx_number`]); None for rewards and
    /// withdrawals.
    pub tx: Option<u64>,
    pub kind: MovementKind,
    pub asset: Asset,
    pub from: Address,
    pub to: Address,
    pub amount: U256,
}

impl EvmIndex {
    pub fn movement_count(&self) -> u64 {
        self.mvs.len()
    }

    pub fn ledger_move(&self, id: u64) -> Option<LedgerMove> {
        if id >= self.mvs.len() {
            return None;
        }
        let m = self.raw_mv(id);
        let tx = (m.tx != NONE40).then_some(m.tx);
        let block = match tx {
            Some(t) => {
                let b = u32::from_le_bytes(self.txs.get(t)[32..36].try_into().unwrap());
                self.block_number(b as u64)
            }
            None => self.block_number(self.block_index_of_mv(id)),
        };
        Some(LedgerMove {
            id,
            block,
            tx,
            kind: m.kind,
            asset: match self.token_of(m.asset) {
                None => Asset::Native,
                Some(t) => Asset::Token(t),
            },
            from: self.address_of(m.from),
            to: self.address_of(m.to),
            amount: m.amount,
        })
    }

    fn block_index_of_mv(&self, id: u64) -> u64 {
        let first = |b: u64| u64::from_le_bytes(self.blocks.get(b)[56..64].try_into().unwrap());
        let (mut lo, mut hi) = (0u64, self.blocks.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if first(mid) <= id {
                lo = mid
            } else {
                hi = mid
            }
        }
        lo
    }

    /// The movement ids of a transaction (contiguous, gas first).
    pub fn tx_move_ids(&self, tx: u64) -> Range<u64> {
        if tx >= self.txs.len() {
            return 0..0;
        }
        let start = u64::from_le_bytes(self.txs.get(tx)[37..45].try_into().unwrap());
        let mut end = start;
        while end < self.mvs.len() && self.raw_mv(end).tx == tx {
            end += 1;
        }
        start..end
    }

    pub fn tx_number(&self, hash: &B256) -> Option<u64> {
        self.tx_id(hash)
    }

    /// Ids of the movements an address sent or received, `>= from`, ascending.
    pub fn touching(&self, a: &Address, from: u64) -> Vec<u64> {
        let mut v: Vec<u64> = self.sent_ids(a).take_while(|&i| i >= from).collect();
        v.extend(self.received_ids(a).take_while(|&i| i >= from));
        v.sort_unstable();
        v.dedup();
        v
    }
}
