//! The state of the simulated world and the mechanics every actor shares: allocating keys,
//! emitting transactions into the block being built, and closing blocks (coinbase, witness
//! commitment, merkle root, proof of work, writing).

use crate::blockwriter::BlockWriter;
use crate::chainparams::*;
use crate::config::{SimConfig, SimError};
use crate::etl::EtlWriter;
use crate::keys::{address_of, Key, KeyGen, Kind};
use crate::purse::Utxo;
use crate::truth::{EntityKind, Truth};
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, Block, BlockHash, CompactTarget, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness, WitnessMerkleNode,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Wallet fingerprint: what a wallet puts in the fields it is free to choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub version: i32,
    /// nLockTime = current height (Core's anti-fee-sniping), else 0.
    pub anti_snipe: bool,
    pub seq: u32,
    /// BIP69 ordering of inputs (outputs are ordered by the caller).
    pub bip69: bool,
}

impl Style {
    pub const CORE: Style = Style {
        version: 2,
        anti_snipe: true,
        seq: 0xffff_fffd,
        bip69: false,
    };
    pub const ELECTRUM: Style = Style {
        version: 2,
        anti_snipe: true,
        seq: 0xffff_fffd,
        bip69: true,
    };
    pub const MOBILE: Style = Style {
        version: 2,
        anti_snipe: false,
        seq: 0xffff_ffff,
        bip69: false,
    };
    pub const SERVICE: Style = Style {
        version: 1,
        anti_snipe: false,
        seq: 0xffff_ffff,
        bip69: false,
    };
    pub const COINJOIN: Style = Style {
        version: 1,
        anti_snipe: false,
        seq: 0xffff_ffff,
        bip69: false,
    };
}

pub enum Out {
    Key(Key),
    Script(ScriptBuf),
}

pub struct World {
    pub cfg: SimConfig,
    pub rng: ChaCha8Rng,
    pub keys: KeyGen,
    next_key: u64,
    sig_nonce: u64,
    pub height: u32,
    pub time: u32,
    pub prev_hash: BlockHash,
    pub feerate: u64,
    log_feerate: f64,
    pub block_txs: Vec<Transaction>,
    pub block_txids: Vec<Txid>,
    pub block_fees: u64,
    pub etl_inputs: Vec<Vec<(u64, Key)>>,
    pub tx_count: u64,
    pub blocks: u64,
    pub entity_kinds: Vec<EntityKind>,
    pub truth: Truth,
    pub writer: Option<BlockWriter>,
    pub etl: Option<EtlWriter>,
    pub kind_counts: std::collections::BTreeMap<&'static str, u64>,
}

/// Coinbase outputs of the block being closed and who receives them.
pub struct CoinbaseOut {
    pub value: u64,
    pub out: Out,
}

impl World {
    pub fn new(
        cfg: SimConfig,
        rng: ChaCha8Rng,
        truth: Truth,
        writer: BlockWriter,
        etl: Option<EtlWriter>,
    ) -> World {
        let keys = KeyGen::new(cfg.seed);
        World {
            cfg,
            rng,
            keys,
            next_key: 1 << 20,
            sig_nonce: 0,
            height: 0,
            time: FIRST_BLOCK_TIME,
            prev_hash: bitcoin::constants::genesis_block(bitcoin::Network::Regtest).block_hash(),
            feerate: 5,
            log_feerate: 1.609_437_912_434_100_3,
            block_txs: Vec::new(),
            block_txids: Vec::new(),
            block_fees: 0,
            etl_inputs: Vec::new(),
            tx_count: 0,
            blocks: 0,
            entity_kinds: Vec::new(),
            truth,
            writer: Some(writer),
            etl,
            kind_counts: Default::default(),
        }
    }

    pub fn new_entity(&mut self, kind: EntityKind, name: &str) -> Result<u32, SimError> {
        let id = self.entity_kinds.len() as u32;
        self.entity_kinds.push(kind);
        self.truth
            .entities
            .line(format_args!("{id}\t{}\t{name}", kind.name()))?;
        Ok(id)
    }

    /// A fresh key owned by `entity`, announced in the address truth.
    pub fn new_key(&mut self, entity: u32, kind: Kind) -> Result<Key, SimError> {
        let id = self.next_key;
        self.next_key += 1;
        let k = Key { id, kind };
        self.announce(k, entity)?;
        Ok(k)
    }

    /// Record the owner of a key whose id was derived rather than allocated (deposit
    /// addresses): call once, when it is first used.
    pub fn announce(&mut self, k: Key, entity: u32) -> Result<(), SimError> {
        if let Some(a) = self.truth.addresses.as_mut() {
            let addr = address_of(&self.keys.script(k));
            a.line(format_args!("{addr}\t{entity}"))?;
        }
        Ok(())
    }

    pub fn address(&self, k: Key) -> String {
        address_of(&self.keys.script(k))
    }

    /// Fee for a transaction of these input and output kinds at the current fee rate.
    pub fn fee_for(
        &self,
        ins: impl Iterator<Item = Kind>,
        outs: impl Iterator<Item = Kind>,
    ) -> u64 {
        fee_at(self.feerate, ins, outs)
    }

    /// Approximately standard normal (Irwin-Hall: twelve uniforms). Only +, -, * are used
    /// so that every platform draws the same numbers (libm's ln/cos/exp may differ in the
    /// last bit between systems, which would break byte-identical output).
    pub fn normal(&mut self) -> f64 {
        let mut s = 0.0;
        for _ in 0..12 {
            s += self.rng.random::<f64>();
        }
        s - 6.0
    }

    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let n = self.normal();
        median * det_exp(sigma * n)
    }

    /// Build and queue a transaction; returns its txid (output `i` is `outs[i]`).
    pub fn emit(
        &mut self,
        ins: &[Utxo],
        outs: &[(u64, Out)],
        style: Style,
        kind: Option<&'static str>,
    ) -> Result<Txid, SimError> {
        let mut order: Vec<usize> = (0..ins.len()).collect();
        if style.bip69 {
            order.sort_by(|&a, &b| {
                let (x, y) = (&ins[a], &ins[b]);
                x.txid
                    .to_byte_array()
                    .iter()
                    .rev()
                    .cmp(y.txid.to_byte_array().iter().rev())
                    .then(x.vout.cmp(&y.vout))
            });
        }
        let mut input = Vec::with_capacity(ins.len());
        let mut in_sum = 0u64;
        for &i in &order {
            let u = &ins[i];
            in_sum += u.value;
            self.sig_nonce += 1;
            let (script_sig, witness) = self.keys.spend(u.key, self.sig_nonce);
            input.push(TxIn {
                previous_output: u.outpoint(),
                script_sig,
                sequence: Sequence(style.seq),
                witness,
            });
        }
        let mut output = Vec::with_capacity(outs.len());
        let mut out_sum = 0u64;
        for (v, o) in outs {
            out_sum += v;
            let script_pubkey = match o {
                Out::Key(k) => self.keys.script(*k),
                Out::Script(s) => s.clone(),
            };
            output.push(TxOut {
                value: Amount::from_sat(*v),
                script_pubkey,
            });
        }
        assert!(
            in_sum >= out_sum,
            "simulator bug: outputs {out_sum} exceed inputs {in_sum} ({kind:?})"
        );
        let lock = if style.anti_snipe {
            // Core sets the current height, and one time in ten up to 100 blocks less.
            let back = if self.rng.random_ratio(1, 10) {
                self.rng.random_range(0..100u32).min(self.height)
            } else {
                0
            };
            self.height - back
        } else {
            0
        };
        let tx = Transaction {
            version: Version(style.version),
            lock_time: LockTime::from_consensus(lock),
            input,
            output,
        };
        let txid = tx.compute_txid();
        self.block_fees += in_sum - out_sum;
        if self.etl.is_some() {
            let v: Vec<(u64, Key)> = order.iter().map(|&i| (ins[i].value, ins[i].key)).collect();
            self.etl_inputs.push(v);
        }
        if let Some(k) = kind {
            *self.kind_counts.entry(k).or_default() += 1;
            self.truth
                .tx_kinds
                .line(format_args!("{txid}\t{k}\t{}", self.height))?;
        }
        self.tx_count += 1;
        self.block_txs.push(tx);
        self.block_txids.push(txid);
        Ok(txid)
    }

    /// Close the current block: coinbase paying `cb_outs` (whose values must not exceed the
    /// subsidy plus the block's fees), witness commitment, merkle root, proof of work.
    /// Returns the coinbase txid.
    pub fn close_block(&mut self, cb_outs: Vec<CoinbaseOut>) -> Result<Txid, SimError> {
        let h = self.height;
        let mut script_sig = bitcoin::script::Builder::new()
            .push_int(h as i64)
            .into_script()
            .into_bytes();
        // Extra nonce, as pools put there.
        script_sig.push(8);
        script_sig.extend_from_slice(&self.rng.random::<u64>().to_le_bytes());
        let mut output: Vec<TxOut> = cb_outs
            .iter()
            .map(|o| TxOut {
                value: Amount::from_sat(o.value),
                script_pubkey: match &o.out {
                    Out::Key(k) => self.keys.script(*k),
                    Out::Script(s) => s.clone(),
                },
            })
            .collect();
        let paid: u64 = cb_outs.iter().map(|o| o.value).sum();
        assert!(
            paid <= SUBSIDY + self.block_fees,
            "simulator bug: coinbase pays {paid}, more than subsidy + fees"
        );
        // Witness root: the coinbase counts as all zeros.
        let mut wtxids = Vec::with_capacity(self.block_txs.len() + 1);
        wtxids.push(bitcoin::hashes::sha256d::Hash::all_zeros());
        for tx in &self.block_txs {
            wtxids.push(tx.compute_wtxid().to_raw_hash());
        }
        let wroot = WitnessMerkleNode::from_raw_hash(
            bitcoin::merkle_tree::calculate_root(wtxids.into_iter()).expect("non-empty"),
        );
        let reserved = [0u8; 32];
        let commitment = Block::compute_witness_commitment(&wroot, &reserved);
        let mut cs = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
        cs.extend_from_slice(commitment.as_byte_array());
        output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(cs),
        });
        let coinbase = Transaction {
            version: Version(2),
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(script_sig),
                sequence: Sequence::MAX,
                witness: Witness::from_slice(&[&reserved[..]]),
            }],
            output,
        };
        let cb_txid = coinbase.compute_txid();
        let mut txids = Vec::with_capacity(self.block_txids.len() + 1);
        txids.push(cb_txid.to_raw_hash());
        txids.extend(self.block_txids.iter().map(|t| t.to_raw_hash()));
        let merkle_root = TxMerkleNode::from_raw_hash(
            bitcoin::merkle_tree::calculate_root(txids.into_iter()).unwrap(),
        );
        // Block times: ten minutes apart on average, jittered but always above the median
        // of the last eleven.
        let jitter: i64 = self.rng.random_range(-240..=240);
        let t = (FIRST_BLOCK_TIME as i64 + h as i64 * 600 + jitter) as u32;
        self.time = t;
        let mut header = Header {
            version: BlockVersion::from_consensus(0x2000_0000),
            prev_blockhash: self.prev_hash,
            merkle_root,
            time: t,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: self.rng.random::<u32>(),
        };
        let target = header.target();
        let hash = loop {
            let hsh = header.block_hash();
            if target.is_met_by(hsh) {
                break hsh;
            }
            header.nonce = header.nonce.wrapping_add(1);
        };
        let mut txdata = Vec::with_capacity(self.block_txs.len() + 1);
        txdata.push(coinbase);
        txdata.append(&mut self.block_txs);
        let block = Block { header, txdata };
        let bytes = bitcoin::consensus::encode::serialize(&block);
        if let Some(etl) = self.etl.as_mut() {
            etl.write_block(&block, h, &hash, bytes.len(), &self.etl_inputs, &self.keys)?;
        }
        self.etl_inputs.clear();
        self.writer.as_mut().unwrap().push(bytes)?;
        self.block_txids.clear();
        self.block_fees = 0;
        self.prev_hash = hash;
        self.tx_count += 1;
        self.blocks += 1;
        self.height += 1;
        Ok(cb_txid)
    }

    /// Fee rate (sat/vB) for the next block: a mean-reverting random walk, 1..=300.
    pub fn next_feerate(&mut self) {
        // A walk in log space, pulled towards 12 sat/vB.
        const LN_12: f64 = 2.484_906_649_788_000_3;
        let drift = (LN_12 - self.log_feerate) * 0.05;
        let step = 0.15 * self.normal();
        self.log_feerate = (self.log_feerate + drift + step).clamp(0.0, 5.7);
        self.feerate = det_exp(self.log_feerate).round().clamp(1.0, 300.0) as u64;
    }
}

/// Fee at `rate` sat/vB for a transaction with these input and output kinds.
pub fn fee_at(rate: u64, ins: impl Iterator<Item = Kind>, outs: impl Iterator<Item = Kind>) -> u64 {
    let mut v = 11u64;
    for k in ins {
        v += k.input_vbytes();
    }
    for k in outs {
        v += k.output_vbytes();
    }
    v * rate
}

/// The fee closure coin selection needs: inputs vary, outputs are fixed.
pub fn fee_fn(rate: u64, outs: Vec<Kind>) -> impl Fn(&[Utxo]) -> u64 {
    move |ins: &[Utxo]| fee_at(rate, ins.iter().map(|u| u.key.kind), outs.iter().copied())
}

/// e^x from +, -, * and / only (bit-identical on every IEEE-754 platform): x = k·ln2 + r,
/// e^r by its Taylor series (|r| ≤ 0.35, 18 terms), 2^k assembled from bits.
pub fn det_exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    const LN2: f64 = std::f64::consts::LN_2;
    let k = (x / LN2 + if x >= 0.0 { 0.5 } else { -0.5 }) as i64;
    let r = x - k as f64 * LN2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..18 {
        term = term * r / i as f64;
        sum += term;
    }
    sum * f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::det_exp;

    #[test]
    fn det_exp_matches_libm_closely() {
        for i in -400..=400 {
            let x = i as f64 * 0.037;
            let (a, b) = (det_exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-14, "exp({x}): {a} vs {b}");
        }
    }
}
