//! Regtest blocks built in memory (no node): the index checks links and merkle roots, not
//! scripts or proof of work, so unsigned spends are enough to exercise the rules.
#![allow(dead_code)]

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, block, transaction, Amount, Block, BlockHash, CompactTarget, Network, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};
use std::str::FromStr;

pub fn spk(addr: &str) -> ScriptBuf {
    bitcoin::Address::from_str(addr)
        .unwrap()
        .assume_checked()
        .script_pubkey()
}

pub fn coinbase(height: u32, outs: &[(ScriptBuf, u64)]) -> Transaction {
    tx(
        vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: bitcoin::script::Builder::new()
                .push_int(height as i64)
                .push_int(0)
                .into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        outs,
    )
}

pub fn spend(ins: &[OutPoint], outs: &[(ScriptBuf, u64)]) -> Transaction {
    tx(
        ins.iter()
            .map(|o| TxIn {
                previous_output: *o,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        outs,
    )
}

fn tx(input: Vec<TxIn>, outs: &[(ScriptBuf, u64)]) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input,
        output: outs
            .iter()
            .map(|(s, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect(),
    }
}

pub fn block(prev: BlockHash, time: u32, txs: Vec<Transaction>) -> Block {
    let mut b = Block {
        header: block::Header {
            version: block::Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata: txs,
    };
    b.header.merkle_root = b.compute_merkle_root().unwrap();
    b
}

pub fn genesis() -> Block {
    bitcoin::constants::genesis_block(Network::Regtest)
}

pub fn ingest(
    idx: &mut cointrail_index::Index,
    blocks: Vec<Block>,
) -> cointrail_index::IngestReport {
    let bs = blocks
        .into_iter()
        .map(|b| {
            let origin = cointrail_chain::Origin {
                file: "test".into(),
                offset: 0,
                kind: cointrail_chain::error::OriginKind::Byte,
            };
            cointrail_chain::ChainBlock::from_block(b, Network::Regtest, origin)
        })
        .collect();
    let opts = cointrail_index::IngestOptions {
        network: Some(Network::Regtest),
        ..Default::default()
    };
    cointrail_index::ingest(idx, cointrail_index::Source::Blocks(bs), &opts).unwrap()
}

/// A regtest P2WPKH address for a made-up key hash.
pub fn addr(n: u8) -> String {
    let s = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([n; 20]));
    bitcoin::Address::from_script(&s, Network::Regtest)
        .unwrap()
        .to_string()
}
