//! An index built from regtest genesis plus one block paying ADDR, made here (no node).
#![allow(dead_code)]

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, block, transaction, Amount, Block, CompactTarget, Network, OutPoint, ScriptBuf,
    Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};
use std::str::FromStr;

pub const ADDR: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

pub fn index_with_payment(dir: &std::path::Path) -> cointrail_index::Index {
    let g = bitcoin::constants::genesis_block(Network::Regtest);
    let spk = bitcoin::Address::from_str(ADDR)
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let cb = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(vec![0x51, 0x00]),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(5_000_000_000),
            script_pubkey: spk,
        }],
    };
    let mut b = Block {
        header: block::Header {
            version: block::Version::from_consensus(0x2000_0000),
            prev_blockhash: g.block_hash(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: g.header.time + 600,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata: vec![cb],
    };
    b.header.merkle_root = b.compute_merkle_root().unwrap();
    let origin = |f: &str| cointrail_chain::Origin {
        file: f.into(),
        offset: 0,
        kind: cointrail_chain::error::OriginKind::Byte,
    };
    let blocks = vec![
        cointrail_chain::ChainBlock::from_block(g, Network::Regtest, origin("genesis")),
        cointrail_chain::ChainBlock::from_block(b, Network::Regtest, origin("block1")),
    ];
    let mut idx = cointrail_index::Index::open_writer(&dir.join("index")).unwrap();
    cointrail_index::ingest(
        &mut idx,
        cointrail_index::Source::Blocks(blocks),
        &Default::default(),
    )
    .unwrap();
    idx
}
