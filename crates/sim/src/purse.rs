//! A set of UTXOs one entity (or one role of it) controls, with coin selection.

use crate::keys::Key;
use bitcoin::{OutPoint, Txid};
use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utxo {
    pub txid: Txid,
    pub vout: u32,
    pub value: u64,
    pub key: Key,
}

impl Utxo {
    pub fn outpoint(&self) -> OutPoint {
        OutPoint {
            txid: self.txid,
            vout: self.vout,
        }
    }
}

#[derive(Default, Clone, Debug)]
pub struct Purse {
    pub utxos: Vec<Utxo>,
    pub sum: u64,
}

impl Purse {
    pub fn add(&mut self, u: Utxo) {
        self.sum += u.value;
        self.utxos.push(u);
    }

    pub fn len(&self) -> usize {
        self.utxos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.utxos.is_empty()
    }

    pub fn take_all(&mut self) -> Vec<Utxo> {
        self.sum = 0;
        std::mem::take(&mut self.utxos)
    }

    /// Take up to `n` UTXOs from the front (oldest first).
    pub fn take_front(&mut self, n: usize) -> Vec<Utxo> {
        let n = n.min(self.utxos.len());
        let v: Vec<Utxo> = self.utxos.drain(..n).collect();
        self.sum -= v.iter().map(|u| u.value).sum::<u64>();
        v
    }

    pub fn take_index(&mut self, i: usize) -> Utxo {
        let u = self.utxos.swap_remove(i);
        self.sum -= u.value;
        u
    }

    /// Random coins until their sum reaches `target` (at most `max_inputs`); nothing is taken
    /// when they cannot reach it.
    pub fn select_random<R: Rng>(
        &mut self,
        rng: &mut R,
        target: u64,
        max_inputs: usize,
    ) -> Option<Vec<Utxo>> {
        if self.sum < target || self.utxos.is_empty() {
            return None;
        }
        let mut got = Vec::new();
        let mut s = 0u64;
        while s < target {
            if self.utxos.is_empty() || got.len() >= max_inputs {
                for u in got {
                    self.add(u);
                }
                return None;
            }
            let i = rng.random_range(0..self.utxos.len());
            let u = self.take_index(i);
            s += u.value;
            got.push(u);
        }
        Some(got)
    }

    /// Largest coins first until `target` is reached (exchanges and services).
    pub fn select_largest(&mut self, target: u64, max_inputs: usize) -> Option<Vec<Utxo>> {
        if self.sum < target {
            return None;
        }
        self.utxos.sort_by(|a, b| {
            a.value
                .cmp(&b.value)
                .then_with(|| a.txid.cmp(&b.txid))
                .then(a.vout.cmp(&b.vout))
        });
        let mut got = Vec::new();
        let mut s = 0;
        while s < target {
            if got.len() >= max_inputs || self.utxos.is_empty() {
                for u in got {
                    self.add(u);
                }
                return None;
            }
            let u = self.utxos.pop().unwrap();
            self.sum -= u.value;
            s += u.value;
            got.push(u);
        }
        Some(got)
    }
}

impl Purse {
    /// Largest coins first until they cover `total` plus `fee_of(the coins)`. Nothing is
    /// taken when they cannot. Returns the coins and the fee.
    pub fn fund_largest(
        &mut self,
        total: u64,
        max_inputs: usize,
        fee_of: impl Fn(&[Utxo]) -> u64,
    ) -> Option<(Vec<Utxo>, u64)> {
        if self.sum < total {
            return None;
        }
        self.utxos.sort_by(|a, b| {
            a.value
                .cmp(&b.value)
                .then_with(|| a.txid.cmp(&b.txid))
                .then(a.vout.cmp(&b.vout))
        });
        let mut got: Vec<Utxo> = Vec::new();
        let mut s = 0u64;
        loop {
            let fee = fee_of(&got);
            if !got.is_empty() && s >= total + fee {
                return Some((got, fee));
            }
            if got.len() >= max_inputs || self.utxos.is_empty() {
                for u in got {
                    self.add(u);
                }
                return None;
            }
            let u = self.utxos.pop().unwrap();
            self.sum -= u.value;
            s += u.value;
            got.push(u);
        }
    }

    /// As [`Purse::fund_largest`], picking coins at random.
    pub fn fund_random<R: Rng>(
        &mut self,
        rng: &mut R,
        total: u64,
        max_inputs: usize,
        fee_of: impl Fn(&[Utxo]) -> u64,
    ) -> Option<(Vec<Utxo>, u64)> {
        if self.sum < total {
            return None;
        }
        let mut got: Vec<Utxo> = Vec::new();
        let mut s = 0u64;
        loop {
            let fee = fee_of(&got);
            if !got.is_empty() && s >= total + fee {
                return Some((got, fee));
            }
            if got.len() >= max_inputs || self.utxos.is_empty() {
                for u in got {
                    self.add(u);
                }
                return None;
            }
            let i = rng.random_range(0..self.utxos.len());
            let u = self.take_index(i);
            s += u.value;
            got.push(u);
        }
    }
}
