//! `ChainView`: read access to an indexed chain by dense ids.
//!
//! Clustering, tracing and screening are written against this trait, never against the
//! storage. The index implements it over its memory-mapped columns; [`MemChain`] implements
//! it over a few blocks in memory, for tests and worked examples.
//!
//! Ids: transactions are numbered densely in chain order (`TxNum`), and so are all inputs
//! (`InNum`) and all outputs (`OutNum`) across the chain; the inputs and outputs of one
//! transaction are contiguous ranges. Addresses get dense ids in order of first appearance.

use crate::address::{AddressKey, ScriptType};
use bitcoin::hashes::Hash;
use bitcoin::{Block, Transaction, Txid};
use std::collections::HashMap;
use std::ops::Range;

pub type TxNum = u32;
pub type InNum = u64;
pub type OutNum = u64;
pub type AddrId = u32;

/// What an input spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prevout {
    /// The coinbase input: new coins.
    Coinbase,
    /// An output created before the indexed range starts: its value is unknown.
    External { txid: [u8; 32], vout: u32 },
    /// An indexed output.
    Output(OutNum),
}

/// A txid as people and block explorers write it (byte-reversed hex), from the internal
/// byte order the index keeps.
pub fn display_txid(raw: [u8; 32]) -> String {
    Txid::from_byte_array(raw).to_string()
}

pub trait ChainView {
    fn tx_count(&self) -> u64;
    fn txid(&self, tx: TxNum) -> [u8; 32];
    fn tx_height(&self, tx: TxNum) -> u32;
    fn tx_locktime(&self, tx: TxNum) -> u32;
    fn tx_version(&self, tx: TxNum) -> i32;
    fn tx_inputs(&self, tx: TxNum) -> Range<InNum>;
    fn tx_outputs(&self, tx: TxNum) -> Range<OutNum>;
    fn input_prevout(&self, input: InNum) -> Prevout;
    fn output_value(&self, out: OutNum) -> u64;
    /// `None` for OP_RETURN outputs.
    fn output_addr(&self, out: OutNum) -> Option<AddrId>;
    /// The transaction that spends this output, if any.
    fn output_spender(&self, out: OutNum) -> Option<TxNum>;
    fn output_tx(&self, out: OutNum) -> TxNum;
    fn addr_count(&self) -> u64;
    fn addr_key(&self, addr: AddrId) -> AddressKey;
    fn lookup_txid(&self, txid: &[u8; 32]) -> Option<TxNum>;
    fn lookup_addr(&self, key: &AddressKey) -> Option<AddrId>;

    /// The height of `tx`'s block and the transactions of that block. Views that know
    /// their blocks answer directly; this walks the heights around `tx`.
    fn tx_block(&self, tx: TxNum) -> (u32, Range<TxNum>) {
        let h = self.tx_height(tx);
        let (mut first, mut end) = (tx as u64, tx as u64 + 1);
        while first > 0 && self.tx_height((first - 1) as TxNum) == h {
            first -= 1;
        }
        while end < self.tx_count() && self.tx_height(end as TxNum) == h {
            end += 1;
        }
        (h, first as TxNum..end as TxNum)
    }
    /// A hint that `out`'s address and value are about to be read: a view whose columns
    /// are far larger than the cache starts loading them, so that readers of many
    /// unrelated outputs overlap the misses. It changes nothing else.
    fn prefetch_output(&self, _out: OutNum) {}
    /// Value of what an input spends, when known.
    fn input_value(&self, input: InNum) -> Option<u64> {
        match self.input_prevout(input) {
            Prevout::Output(o) => Some(self.output_value(o)),
            _ => None,
        }
    }
    fn is_coinbase(&self, tx: TxNum) -> bool {
        let r = self.tx_inputs(tx);
        r.end - r.start == 1 && self.input_prevout(r.start) == Prevout::Coinbase
    }
    fn output_script_type(&self, out: OutNum) -> ScriptType {
        match self.output_addr(out) {
            Some(a) => self.addr_key(a).kind,
            None => ScriptType::OpReturn,
        }
    }
    /// Position of an output within its transaction.
    fn output_vout(&self, out: OutNum) -> u32 {
        (out - self.tx_outputs(self.output_tx(out)).start) as u32
    }
}

/// A chain held in memory: the reference implementation of [`ChainView`].
#[derive(Default)]
pub struct MemChain {
    txids: Vec<[u8; 32]>,
    tx_height: Vec<u32>,
    tx_locktime: Vec<u32>,
    tx_version: Vec<i32>,
    tx_first_in: Vec<InNum>,
    tx_first_out: Vec<OutNum>,
    in_prevout: Vec<Prevout>,
    out_value: Vec<u64>,
    out_addr: Vec<Option<AddrId>>,
    out_spender: Vec<Option<TxNum>>,
    out_tx: Vec<TxNum>,
    addrs: Vec<AddressKey>,
    txid_map: HashMap<[u8; 32], TxNum>,
    addr_map: HashMap<AddressKey, AddrId>,
}

impl MemChain {
    pub fn new() -> MemChain {
        MemChain::default()
    }

    /// Append a block's transactions at `height`.
    pub fn push_block(&mut self, block: &Block, height: u32) {
        for tx in &block.txdata {
            self.push_tx(tx, height);
        }
    }

    /// Append one transaction. Inputs spending unknown txids become `External`.
    pub fn push_tx(&mut self, tx: &Transaction, height: u32) -> TxNum {
        let num = self.txids.len() as TxNum;
        let txid = tx.compute_txid().to_byte_array();
        self.txids.push(txid);
        self.tx_height.push(height);
        self.tx_locktime.push(tx.lock_time.to_consensus_u32());
        self.tx_version.push(tx.version.0);
        self.tx_first_in.push(self.in_prevout.len() as InNum);
        self.tx_first_out.push(self.out_value.len() as OutNum);
        for input in &tx.input {
            let p = if input.previous_output.is_null() {
                Prevout::Coinbase
            } else {
                let ptxid = input.previous_output.txid.to_byte_array();
                match self.txid_map.get(&ptxid) {
                    Some(&t) => {
                        let o = self.tx_first_out[t as usize] + input.previous_output.vout as u64;
                        self.out_spender[o as usize] = Some(num);
                        Prevout::Output(o)
                    }
                    None => Prevout::External {
                        txid: ptxid,
                        vout: input.previous_output.vout,
                    },
                }
            };
            self.in_prevout.push(p);
        }
        for out in &tx.output {
            self.out_value.push(out.value.to_sat());
            let addr = AddressKey::from_script(&out.script_pubkey).map(|k| {
                let next = self.addrs.len() as AddrId;
                *self.addr_map.entry(k).or_insert_with(|| {
                    self.addrs.push(k);
                    next
                })
            });
            self.out_addr.push(addr);
            self.out_spender.push(None);
            self.out_tx.push(num);
        }
        self.txid_map.insert(txid, num);
        num
    }

    pub fn txid_of(&self, tx: TxNum) -> Txid {
        Txid::from_byte_array(self.txids[tx as usize])
    }
}

impl ChainView for MemChain {
    fn tx_count(&self) -> u64 {
        self.txids.len() as u64
    }
    fn txid(&self, tx: TxNum) -> [u8; 32] {
        self.txids[tx as usize]
    }
    fn tx_height(&self, tx: TxNum) -> u32 {
        self.tx_height[tx as usize]
    }
    fn tx_locktime(&self, tx: TxNum) -> u32 {
        self.tx_locktime[tx as usize]
    }
    fn tx_version(&self, tx: TxNum) -> i32 {
        self.tx_version[tx as usize]
    }
    fn tx_inputs(&self, tx: TxNum) -> Range<InNum> {
        let t = tx as usize;
        let end = self
            .tx_first_in
            .get(t + 1)
            .copied()
            .unwrap_or(self.in_prevout.len() as u64);
        self.tx_first_in[t]..end
    }
    fn tx_outputs(&self, tx: TxNum) -> Range<OutNum> {
        let t = tx as usize;
        let end = self
            .tx_first_out
            .get(t + 1)
            .copied()
            .unwrap_or(self.out_value.len() as u64);
        self.tx_first_out[t]..end
    }
    fn input_prevout(&self, input: InNum) -> Prevout {
        self.in_prevout[input as usize]
    }
    fn output_value(&self, out: OutNum) -> u64 {
        self.out_value[out as usize]
    }
    fn output_addr(&self, out: OutNum) -> Option<AddrId> {
        self.out_addr[out as usize]
    }
    fn output_spender(&self, out: OutNum) -> Option<TxNum> {
        self.out_spender[out as usize]
    }
    fn output_tx(&self, out: OutNum) -> TxNum {
        self.out_tx[out as usize]
    }
    fn addr_count(&self) -> u64 {
        self.addrs.len() as u64
    }
    fn addr_key(&self, addr: AddrId) -> AddressKey {
        self.addrs[addr as usize]
    }
    fn lookup_txid(&self, txid: &[u8; 32]) -> Option<TxNum> {
        self.txid_map.get(txid).copied()
    }
    fn lookup_addr(&self, key: &AddressKey) -> Option<AddrId> {
        self.addr_map.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two real mainnet blocks in memory: each transaction's block, found by the
    /// trait's walk over heights, is the block it was pushed with.
    #[test]
    fn a_transaction_knows_its_block() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet");
        let mut chain = MemChain::new();
        let mut ranges = Vec::new();
        for h in [831_328u32, 831_329] {
            let bytes = std::fs::read(dir.join(format!("0{h}.bin"))).unwrap();
            let block: Block = bitcoin::consensus::deserialize(&bytes).unwrap();
            let first = chain.tx_count() as TxNum;
            chain.push_block(&block, h);
            ranges.push((h, first..chain.tx_count() as TxNum));
        }
        assert!(ranges.iter().all(|(_, r)| r.len() > 1000));
        for (h, r) in &ranges {
            for t in [r.start, r.start + 1, r.end - 1] {
                assert_eq!(chain.tx_block(t), (*h, r.clone()));
            }
        }
    }
}
