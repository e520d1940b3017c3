//! What the account tracer needs from a chain: movements in order, the movements touching
//! an address, a transaction's movements and logs, and balances. `MemLedger` answers from
//! memory (hand-built chains in tests, small simulated worlds); the EVM index answers the
//! same trait from its columns.

use std::collections::{BTreeMap, HashMap};

use cointrail_evm::etl::Log;
use cointrail_evm::movement::{Asset, MovementKind};
use cointrail_evm::{Address, B256, U256};
use serde::Serialize;

/// One movement, with its place in chain order. `id`s ascend in chain order and a
/// transaction's movements are contiguous, gas first (the order `cointrail_evm::movement`
/// produces and the EVM index stores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    pub id: u64,
    pub block: u64,
    /// The transaction (a dense number of the ledger); None for rewards and withdrawals.
    pub tx: Option<u64>,
    pub kind: MovementKind,
    pub asset: Asset,
    pub from: Address,
    pub to: Address,
    pub amount: U256,
}

impl Move {
    /// Gas: bought before the transaction runs, paid to the fee sink.
    pub fn is_gas(&self) -> bool {
        matches!(self.kind, MovementKind::Fee | MovementKind::Burn)
    }
}

pub trait Ledger {
    fn movement(&self, id: u64) -> Option<Move>;
    /// Ids of the movements an address sent or received (any asset), `>= from`, ascending.
    fn touching(&self, addr: &Address, from: u64) -> Vec<u64>;
    /// The movements of a transaction, ascending.
    fn tx_movements(&self, tx: u64) -> Vec<Move>;
    /// The transaction's logs in log order (empty when the source kept none).
    fn tx_logs(&self, tx: u64) -> Vec<Log>;
    fn tx_hash(&self, tx: u64) -> Option<B256>;
    fn tx_by_hash(&self, hash: &B256) -> Option<u64>;
    /// Balance of (address, asset) just before movement `id`: received minus sent, never
    /// below zero (an index that starts late does not know older value).
    fn balance_before(&self, addr: &Address, asset: Asset, id: u64) -> U256 {
        let mut bal = U256::ZERO;
        for m in self.touching(addr, 0) {
            if m >= id {
                break;
            }
            let Some(mv) = self.movement(m) else { continue };
            if mv.asset != asset || mv.from == mv.to {
                continue;
            }
            if mv.to == *addr {
                bal += mv.amount;
            } else {
                bal = bal.saturating_sub(mv.amount);
            }
        }
        bal
    }
}

/// A ledger in memory. Transactions are added whole; ids are positions.
#[derive(Debug, Default, Clone)]
pub struct MemLedger {
    moves: Vec<Move>,
    txs: Vec<(B256, u64, std::ops::Range<u64>)>,
    logs: BTreeMap<u64, Vec<Log>>,
    by_addr: HashMap<Address, Vec<u64>>,
    by_hash: HashMap<B256, u64>,
}

/// One movement of a transaction being built for a [`MemLedger`].
#[derive(Debug, Clone)]
pub struct Leg {
    pub kind: MovementKind,
    pub asset: Asset,
    pub from: Address,
    pub to: Address,
    pub amount: U256,
}

impl Leg {
    pub fn eth(from: Address, to: Address, wei: u128) -> Leg {
        Leg {
            kind: MovementKind::Value,
            asset: Asset::Native,
            from,
            to,
            amount: U256::from(wei),
        }
    }
    pub fn internal(from: Address, to: Address, wei: u128) -> Leg {
        Leg {
            kind: MovementKind::Internal,
            ..Leg::eth(from, to, wei)
        }
    }
    pub fn gas(from: Address, wei: u128) -> Leg {
        Leg {
            kind: MovementKind::Burn,
            ..Leg::eth(from, cointrail_evm::movement::SINK, wei)
        }
    }
    pub fn token(token: Address, from: Address, to: Address, amount: u128) -> Leg {
        Leg {
            kind: MovementKind::Token,
            asset: Asset::Token(token),
            from,
            to,
            amount: U256::from(amount),
        }
    }
}

impl MemLedger {
    pub fn new() -> MemLedger {
        MemLedger::default()
    }

    /// Add a transaction (its legs in execution order, gas first) and its logs; returns
    /// its number. The hash is derived from the number unless given.
    pub fn push_tx(&mut self, block: u64, legs: Vec<Leg>, logs: Vec<Log>) -> u64 {
        let n = self.txs.len() as u64;
        let mut h = [0u8; 32];
        h[24..].copy_from_slice(&(n + 1).to_be_bytes());
        self.push_tx_hash(block, B256::from(h), legs, logs)
    }

    pub fn push_tx_hash(&mut self, block: u64, hash: B256, legs: Vec<Leg>, logs: Vec<Log>) -> u64 {
        let n = self.txs.len() as u64;
        let start = self.moves.len() as u64;
        for l in legs {
            self.push_move(block, Some(n), l);
        }
        self.txs.push((hash, block, start..self.moves.len() as u64));
        self.by_hash.insert(hash, n);
        if !logs.is_empty() {
            self.logs.insert(n, logs);
        }
        n
    }

    /// A movement of no transaction (a reward or a withdrawal).
    pub fn push_block_level(&mut self, block: u64, leg: Leg) -> u64 {
        self.push_move(block, None, leg)
    }

    fn push_move(&mut self, block: u64, tx: Option<u64>, l: Leg) -> u64 {
        let id = self.moves.len() as u64;
        self.by_addr.entry(l.from).or_default().push(id);
        if l.to != l.from {
            self.by_addr.entry(l.to).or_default().push(id);
        }
        self.moves.push(Move {
            id,
            block,
            tx,
            kind: l.kind,
            asset: l.asset,
            from: l.from,
            to: l.to,
            amount: l.amount,
        });
        id
    }

    pub fn len(&self) -> u64 {
        self.moves.len() as u64
    }
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }
    /// The movement ids of a transaction.
    pub fn tx_range(&self, tx: u64) -> std::ops::Range<u64> {
        self.txs[tx as usize].2.clone()
    }
}

impl Ledger for MemLedger {
    fn movement(&self, id: u64) -> Option<Move> {
        self.moves.get(id as usize).cloned()
    }
    fn touching(&self, addr: &Address, from: u64) -> Vec<u64> {
        match self.by_addr.get(addr) {
            Some(v) => {
                let i = v.partition_point(|&x| x < from);
                v[i..].to_vec()
            }
            None => Vec::new(),
        }
    }
    fn tx_movements(&self, tx: u64) -> Vec<Move> {
        match self.txs.get(tx as usize) {
            Some((_, _, r)) => self.moves[r.start as usize..r.end as usize].to_vec(),
            None => Vec::new(),
        }
    }
    fn tx_logs(&self, tx: u64) -> Vec<Log> {
        self.logs.get(&tx).cloned().unwrap_or_default()
    }
    fn tx_hash(&self, tx: u64) -> Option<B256> {
        self.txs.get(tx as usize).map(|t| t.0)
    }
    fn tx_by_hash(&self, hash: &B256) -> Option<u64> {
        self.by_hash.get(hash).copied()
    }
}
