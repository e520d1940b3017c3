//! blockchain-etl JSON lines (`transactions.json`, `blocks.json`), in the enriched form
//! (input values, types and addresses filled in), field names as bitcoin-etl writes them.

use crate::blockwriter::io;
use crate::config::SimError;
use crate::keys::{address_of, Key, KeyGen};
use bitcoin::{Block, BlockHash, Script};
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct EtlWriter {
    tx_path: PathBuf,
    block_path: PathBuf,
    txs: BufWriter<File>,
    blocks: BufWriter<File>,
}

impl EtlWriter {
    pub fn create(dir: &Path) -> Result<EtlWriter, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let tx_path = dir.join("transactions.json");
        let block_path = dir.join("blocks.json");
        let txs = File::create(&tx_path).map_err(|e| io(&tx_path, e))?;
        let blocks = File::create(&block_path).map_err(|e| io(&block_path, e))?;
        Ok(EtlWriter {
            txs: BufWriter::new(txs),
            blocks: BufWriter::new(blocks),
            tx_path,
            block_path,
        })
    }

    /// `inputs[i]` holds the spent values and keys of the block's transaction `i + 1`.
    pub fn write_block(
        &mut self,
        block: &Block,
        height: u32,
        hash: &BlockHash,
        size: usize,
        inputs: &[Vec<(u64, Key)>],
        keys: &KeyGen,
    ) -> Result<(), SimError> {
        let cb = &block.txdata[0];
        let stripped: usize = 80
            + bitcoin::consensus::encode::VarInt(block.txdata.len() as u64).size()
            + block.txdata.iter().map(|t| t.base_size()).sum::<usize>();
        let row = json!({
            "hash": hash.to_string(),
            "size": size,
            "stripped_size": stripped,
            "weight": block.weight().to_wu(),
            "number": height,
            "version": block.header.version.to_consensus(),
            "merkle_root": block.header.merkle_root.to_string(),
            "timestamp": block.header.time,
            "nonce": format!("{:x}", block.header.nonce),
            "bits": format!("{:x}", block.header.bits.to_consensus()),
            "coinbase_param": hex::encode(cb.input[0].script_sig.as_bytes()),
            "transaction_count": block.txdata.len(),
        });
        writeln!(self.blocks, "{row}").map_err(|e| io(&self.block_path, e))?;
        for (i, tx) in block.txdata.iter().enumerate() {
            let coinbase = i == 0;
            let mut ins = Vec::new();
            let mut in_value = 0u64;
            if !coinbase {
                for (k, (txin, (v, key))) in tx.input.iter().zip(&inputs[i - 1]).enumerate() {
                    in_value += v;
                    let spk = keys.script(*key);
                    let (ty, addrs) = type_and_addresses(&spk);
                    ins.push(json!({
                        "index": k,
                        "spent_transaction_hash": txin.previous_output.txid.to_string(),
                        "spent_output_index": txin.previous_output.vout,
                        "script_asm": script_sig_asm(txin.script_sig.as_script()),
                        "script_hex": hex::encode(txin.script_sig.as_bytes()),
                        "sequence": txin.sequence.0,
                        "required_signatures": if addrs.is_empty() { Value::Null } else { json!(1) },
                        "type": ty,
                        "addresses": addrs,
                        "value": v,
                    }));
                }
            }
            let mut outs = Vec::new();
            let mut out_value = 0u64;
            for (k, o) in tx.output.iter().enumerate() {
                out_value += o.value.to_sat();
                let (ty, addrs) = type_and_addresses(&o.script_pubkey);
                outs.push(json!({
                    "index": k,
                    "script_asm": output_asm(&o.script_pubkey),
                    "script_hex": hex::encode(o.script_pubkey.as_bytes()),
                    "required_signatures": if addrs.is_empty() { Value::Null } else { json!(1) },
                    "type": ty,
                    "addresses": addrs,
                    "value": o.value.to_sat(),
                }));
            }
            let row = json!({
                "hash": tx.compute_txid().to_string(),
                "size": tx.total_size(),
                "virtual_size": tx.vsize(),
                "version": tx.version.0,
                "lock_time": tx.lock_time.to_consensus_u32(),
                "block_number": height,
                "block_hash": hash.to_string(),
                "block_timestamp": block.header.time,
                "is_coinbase": coinbase,
                "index": i,
                "inputs": ins,
                "outputs": outs,
                "input_count": if coinbase { 0 } else { tx.input.len() },
                "output_count": tx.output.len(),
                "input_value": in_value,
                "output_value": out_value,
                "fee": if coinbase { 0 } else { in_value - out_value },
            });
            writeln!(self.txs, "{row}").map_err(|e| io(&self.tx_path, e))?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), SimError> {
        self.txs.flush().map_err(|e| io(&self.tx_path, e))?;
        self.blocks.flush().map_err(|e| io(&self.block_path, e))
    }
}

/// Core's `type` names for the scripts we write.
fn type_and_addresses(s: &Script) -> (&'static str, Vec<String>) {
    let ty = if s.is_p2pkh() {
        "pubkeyhash"
    } else if s.is_p2sh() {
        "scripthash"
    } else if s.is_p2wpkh() {
        "witness_v0_keyhash"
    } else if s.is_p2wsh() {
        "witness_v0_scripthash"
    } else if s.is_p2tr() {
        "witness_v1_taproot"
    } else if s.is_op_return() {
        "nulldata"
    } else {
        "nonstandard"
    };
    let a = address_of(s);
    (ty, if a.is_empty() { vec![] } else { vec![a] })
}

/// Core-style asm of the output templates we write.
fn output_asm(s: &Script) -> String {
    let b = s.as_bytes();
    if s.is_p2pkh() {
        format!(
            "OP_DUP OP_HASH160 {} OP_EQUALVERIFY OP_CHECKSIG",
            hex::encode(&b[3..23])
        )
    } else if s.is_p2sh() {
        format!("OP_HASH160 {} OP_EQUAL", hex::encode(&b[2..22]))
    } else if s.is_p2wpkh() {
        format!("0 {}", hex::encode(&b[2..]))
    } else if s.is_p2tr() || s.is_p2wsh() {
        format!(
            "{} {}",
            if s.is_p2tr() { 1 } else { 0 },
            hex::encode(&b[2..])
        )
    } else if s.is_op_return() {
        format!("OP_RETURN {}", hex::encode(&b[2.min(b.len())..]))
    } else {
        hex::encode(b)
    }
}

/// Core-style asm of a scriptSig made of pushes; DER signatures end in "[ALL]".
fn script_sig_asm(s: &Script) -> String {
    let mut parts = Vec::new();
    for ins in s.instructions() {
        match ins {
            Ok(bitcoin::script::Instruction::PushBytes(p)) => {
                let b = p.as_bytes();
                if b.len() >= 70 && b[0] == 0x30 && b.last() == Some(&1) {
                    parts.push(format!("{}[ALL]", hex::encode(&b[..b.len() - 1])));
                } else {
                    parts.push(hex::encode(b));
                }
            }
            Ok(bitcoin::script::Instruction::Op(op)) => parts.push(format!("{op:?}")),
            Err(_) => break,
        }
    }
    parts.join(" ")
}
