//! Decoding and validating one block.

use crate::error::{ChainError, Origin, Result};
use crate::network::{bip34_height, network_of_genesis};
use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Network, Transaction};

/// A block ready for the index, whatever format it came in.
#[derive(Clone, Debug)]
pub struct ChainBlock {
    pub hash: BlockHash,
    /// `None` when the source does not carry it (a blockchain-etl range's first block).
    pub prev: Option<BlockHash>,
    /// The height the source states or the coinbase proves (BIP34), if any.
    pub height: Option<u32>,
    pub time: u32,
    pub bits: u32,
    /// One per transaction, in block order.
    pub txids: Vec<bitcoin::Txid>,
    pub txs: Vec<Transaction>,
    pub origin: Origin,
}

impl ChainBlock {
    pub fn from_block(block: Block, network: Network, origin: Origin) -> ChainBlock {
        let txids = block.txdata.iter().map(|t| t.compute_txid()).collect();
        ChainBlock::from_block_txids(block, txids, network, origin)
    }

    pub fn from_block_txids(
        block: Block,
        txids: Vec<bitcoin::Txid>,
        network: Network,
        origin: Origin,
    ) -> ChainBlock {
        let hash = block.block_hash();
        let height = block_height_hint(&block, network);
        ChainBlock {
            hash,
            prev: Some(block.header.prev_blockhash),
            height,
            time: block.header.time,
            bits: block.header.bits.to_consensus(),
            txids,
            txs: block.txdata,
            origin,
        }
    }
}

/// Decode a serialized block and check it: the whole buffer is one block, its merkle root
/// matches its transactions, and its witness commitment (if any) matches their witnesses.
pub fn decode_block(bytes: &[u8], origin: &Origin) -> Result<Block> {
    Ok(decode_block_txids(bytes, origin, true)?.0)
}

/// As [`decode_block`], also returning the txids (hashed once: the merkle check reuses them).
/// With `witness` false the witness commitment is not checked: the index stores nothing
/// derived from witnesses, and hashing them again (the wtxids) costs as much as the txids.
pub fn decode_block_txids(
    bytes: &[u8],
    origin: &Origin,
    witness: bool,
) -> Result<(Block, Vec<bitcoin::Txid>)> {
    let block: Block = bitcoin::consensus::deserialize(bytes)
        .map_err(|e| ChainError::format(origin.clone(), format!("not a valid block: {e}")))?;
    let txids: Vec<bitcoin::Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
    verify_with_txids(&block, &txids, origin, witness)?;
    Ok((block, txids))
}

pub fn verify_block(block: &Block, origin: &Origin) -> Result<()> {
    let txids: Vec<bitcoin::Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
    verify_with_txids(block, &txids, origin, true)
}

fn verify_with_txids(
    block: &Block,
    txids: &[bitcoin::Txid],
    origin: &Origin,
    witness: bool,
) -> Result<()> {
    if block.txdata.is_empty() {
        return Err(ChainError::format(
            origin.clone(),
            "block has no transactions",
        ));
    }
    if !block.txdata[0].is_coinbase() {
        return Err(ChainError::format(
            origin.clone(),
            "first transaction is not a coinbase",
        ));
    }
    let computed = bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| t.to_raw_hash()))
        .map(bitcoin::TxMerkleNode::from_raw_hash);
    if computed != Some(block.header.merkle_root) {
        return Err(ChainError::Merkle {
            origin: origin.clone(),
            hash: block.block_hash().to_string(),
            header: block.header.merkle_root.to_string(),
            computed: computed.map(|c| c.to_string()).unwrap_or_default(),
        });
    }
    if witness && !block.check_witness_commitment() {
        return Err(ChainError::Witness {
            origin: origin.clone(),
            hash: block.block_hash().to_string(),
        });
    }
    Ok(())
}

pub fn decode_header(bytes: &[u8], origin: &Origin) -> Result<Header> {
    bitcoin::consensus::deserialize::<Header>(bytes)
        .map_err(|e| ChainError::format(origin.clone(), format!("not a valid block header: {e}")))
}

/// The height of a block as far as the block itself can tell: 0 or 1 next to a known
/// genesis, else the BIP34 height in the coinbase where the network enforces it.
pub fn block_height_hint(block: &Block, network: Network) -> Option<u32> {
    if let Some((_, h)) = network_of_genesis(&block.block_hash(), &block.header.prev_blockhash) {
        return Some(h);
    }
    if block.header.prev_blockhash == BlockHash::all_zeros() {
        return Some(0);
    }
    let h = block.bip34_block_height().ok()?;
    // Before activation the first push is arbitrary (often nBits): not a height.
    if h >= bip34_height(network) as u64
        && h < 100_000_000
        && block.header.version.to_consensus() >= 2
    {
        Some(h as u32)
    } else {
        None
    }
}
