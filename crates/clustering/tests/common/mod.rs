//! Small hand-built chains for the clustering tests: each transaction in its own block.
#![allow(dead_code)]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, PubkeyHash, ScriptBuf, Sequence, Transaction, TxIn, TxOut, WPubkeyHash,
    Witness,
};
use cointrail_chain::view::{AddrId, ChainView, TxNum};
use cointrail_chain::{AddressKey, MemChain};

/// Address `n`: P2WPKH below 1000, P2PKH from 1000 on.
pub fn spk(n: u16) -> ScriptBuf {
    let mut h = [0u8; 20];
    h[..2].copy_from_slice(&n.to_le_bytes());
    h[19] = 7;
    if n >= 1000 {
        ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(h))
    } else {
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
    }
}

/// Each transaction in its own block: height = its position (1-based).
pub struct Chain(pub MemChain, pub u32);
impl Chain {
    pub fn new() -> Chain {
        Chain(MemChain::new(), 0)
    }
    pub fn tx(&mut self, ins: &[(TxNum, u32)], outs: &[(u16, u64)]) -> TxNum {
        self.tx_lt(ins, outs, 0)
    }
    pub fn tx_lt(&mut self, ins: &[(TxNum, u32)], outs: &[(u16, u64)], lt: u32) -> TxNum {
        self.1 += 1;
        let input = if ins.is_empty() {
            vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(self.1.to_le_bytes().to_vec()),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }]
        } else {
            ins.iter()
                .map(|&(t, v)| TxIn {
                    previous_output: OutPoint::new(self.0.txid_of(t), v),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect()
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::from_consensus(lt),
            input,
            output: outs
                .iter()
                .map(|&(s, v)| TxOut {
                    value: Amount::from_sat(v),
                    script_pubkey: spk(s),
                })
                .collect(),
        };
        let h = self.1;
        self.0.push_tx(&tx, h)
    }
    pub fn addr(&self, n: u16) -> AddrId {
        self.0
            .lookup_addr(&AddressKey::from_script(&spk(n)).unwrap())
            .unwrap()
    }
}

/// A simulated economy (demo config, no heists) of `txs` transactions, indexed: the index
/// and the simulator's output folder (with `truth/`).
pub fn simulated(
    dir: &std::path::Path,
    txs: u64,
    seed: Option<u64>,
) -> (cointrail_index::Index, std::path::PathBuf) {
    let mut cfg = cointrail_sim::SimConfig::demo();
    cfg.txs = txs;
    if let Some(s) = seed {
        cfg.seed = s;
    }
    cfg.heists.clear();
    let sim = dir.join("sim");
    cointrail_sim::simulate(&cfg, &sim, &mut |_, _| {}).unwrap();
    let mut idx = cointrail_index::Index::open_writer(&dir.join("index")).unwrap();
    cointrail_index::ingest(
        &mut idx,
        cointrail_index::Source::BlocksDir(sim.join("blocks")),
        &Default::default(),
    )
    .unwrap();
    (idx, sim)
}

/// The true owner (entity number) of every indexed address, from `truth/addresses.tsv`.
pub fn owners(sim: &std::path::Path, idx: &cointrail_index::Index) -> Vec<Option<u32>> {
    let text = std::fs::read_to_string(sim.join("truth/addresses.tsv")).unwrap();
    let mut owner = vec![None; idx.addr_count() as usize];
    for line in text.lines().skip(1) {
        let mut f = line.split('\t');
        let (Some(a), Some(e)) = (f.next(), f.next()) else {
            continue;
        };
        if let Ok(id) = idx.parse_address(a) {
            owner[id as usize] = e.parse().ok();
        }
    }
    owner
}

/// The directory of the saved copy a clustering's manifest names current (`store.rs`).
pub fn current_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    dir.join(m["current"].as_str().expect("a manifest naming its copy"))
}

/// The other copy (the save before the current one), if the manifest names one.
pub fn other_copy(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()?;
    Some(dir.join(m["other"].as_str()?))
}

/// Remove the save before the current one, so that `open` cannot fall back to it.
pub fn forget_previous(dir: &std::path::Path) {
    if let Some(o) = other_copy(dir) {
        std::fs::remove_dir_all(o).unwrap();
    }
}
