//! Answers to the point queries (`tx`, `address`, `block`, `stats`), as serializable
//! structs: the CLI prints them and the service returns them.

use crate::store::Index;
use crate::IndexError;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Txid};
use cointrail_chain::view::{AddrId, ChainView, OutNum, Prevout, TxNum};
use cointrail_chain::AddressKey;
use serde::Serialize;
use std::str::FromStr;

#[derive(Serialize, Debug)]
pub struct Stats {
    pub network: String,
    pub start_height: Option<u32>,
    pub tip_height: Option<u32>,
    pub tip_hash: Option<String>,
    pub block_count: u64,
    pub tx_count: u64,
    pub input_count: u64,
    pub output_count: u64,
    pub address_count: u64,
    /// Inputs spending outputs from before the indexed range (value unknown).
    pub external_input_count: u64,
}

#[derive(Serialize, Debug)]
pub struct SpentBy {
    pub txid: String,
    pub input: u32,
}

#[derive(Serialize, Debug)]
pub struct TxInput {
    pub index: u32,
    /// `coinbase`, `indexed` or `external` (spends an output from before the indexed range).
    pub kind: &'static str,
    pub prev_txid: Option<String>,
    pub prev_vout: Option<u32>,
    pub address: Option<String>,
    /// Satoshis; null when the spent output is outside the index.
    pub value: Option<u64>,
}

#[derive(Serialize, Debug)]
pub struct TxOutput {
    pub vout: u32,
    pub address: Option<String>,
    pub script_type: &'static str,
    pub value: u64,
    pub spent_by: Option<SpentBy>,
    /// Hex of the OP_RETURN script, for data outputs.
    pub data: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct TxInfo {
    pub txid: String,
    pub block_height: u32,
    pub block_hash: String,
    pub block_time: u32,
    pub position: u32,
    pub version: i32,
    pub locktime: u32,
    pub coinbase: bool,
    pub input_value: Option<u64>,
    pub output_value: u64,
    /// Null when an input's value is unknown (it spends from before the indexed range).
    pub fee: Option<u64>,
    pub inputs: Vec<TxInput>,
    pub outputs: Vec<TxOutput>,
}

#[derive(Serialize, Debug)]
pub struct AddrOutput {
    pub txid: String,
    pub vout: u32,
    pub height: u32,
    pub value: u64,
    pub spent_by: Option<SpentBy>,
    pub spent_height: Option<u32>,
}

#[derive(Serialize, Debug)]
pub struct AddressInfo {
    pub address: String,
    pub script_type: &'static str,
    pub balance: u64,
    pub received: u64,
    pub sent: u64,
    pub output_count: u64,
    pub unspent_count: u64,
    pub tx_count: u64,
    pub first_seen_height: Option<u32>,
    pub last_seen_height: Option<u32>,
    /// Oldest first.
    pub outputs: Vec<AddrOutput>,
}

#[derive(Serialize, Debug)]
pub struct BlockInfo {
    pub height: u32,
    pub hash: String,
    pub prev_hash: Option<String>,
    pub time: u32,
    pub bits: String,
    pub tx_count: u64,
    pub txids: Vec<String>,
}

pub use cointrail_chain::view::display_txid;

impl Index {
    pub fn stats(&self) -> Stats {
        let n = self.block_count();
        Stats {
            network: self.network_name().to_string(),
            start_height: (n > 0).then(|| self.start_height()),
            tip_height: self.tip_height(),
            tip_hash: (n > 0)
                .then(|| BlockHash::from_byte_array(self.block_hash(n - 1)).to_string()),
            block_count: n,
            tx_count: self.tx_count(),
            input_count: self.in_prev.len(),
            output_count: self.out_value.len(),
            address_count: self.addr_count(),
            external_input_count: self.ext_ref.len(),
        }
    }

    pub fn parse_txid(&self, s: &str) -> Result<TxNum, IndexError> {
        let t = Txid::from_str(s.trim()).map_err(|e| {
            IndexError::NotFound(format!("'{s}' is not a txid (64 hex digits): {e}"))
        })?;
        self.lookup_txid(&t.to_byte_array()).ok_or_else(|| {
            IndexError::NotFound(format!(
                "transaction {s} is not in the index (heights {}..={})",
                self.start_height(),
                self.tip_height().map_or("-".into(), |h| h.to_string())
            ))
        })
    }

    pub fn parse_address(&self, s: &str) -> Result<AddrId, IndexError> {
        let key =
            AddressKey::parse(s.trim(), self.render_network()).map_err(IndexError::NotFound)?;
        self.lookup_addr(&key).ok_or_else(|| {
            IndexError::NotFound(format!("address {s} never appears in the indexed chain"))
        })
    }

    fn spent_by(&self, o: OutNum) -> Option<SpentBy> {
        let s = self.output_spender(o)?;
        let input = self
            .tx_inputs(s)
            .position(|i| self.input_prevout(i) == Prevout::Output(o))
            .unwrap_or(0) as u32;
        Some(SpentBy {
            txid: display_txid(self.txid(s)),
            input,
        })
    }

    pub fn render_addr(&self, a: AddrId) -> String {
        self.addr_key(a).render(self.render_network())
    }

    pub fn tx_info(&self, t: TxNum) -> TxInfo {
        let b = self.block_of_tx(t);
        let brec = self.block(b);
        let mut inputs = Vec::new();
        let mut in_sum: Option<u64> = Some(0);
        for (k, i) in self.tx_inputs(t).enumerate() {
            let (kind, ptxid, pvout, addr, value) = match self.input_prevout(i) {
                Prevout::Coinbase => ("coinbase", None, None, None, Some(0)),
                Prevout::External { txid, vout } => {
                    ("external", Some(display_txid(txid)), Some(vout), None, None)
                }
                Prevout::Output(o) => {
                    let pt = self.output_tx(o);
                    (
                        "indexed",
                        Some(display_txid(self.txid(pt))),
                        Some(self.output_vout(o)),
                        self.output_addr(o).map(|a| self.render_addr(a)),
                        Some(self.output_value(o)),
                    )
                }
            };
            in_sum = match (in_sum, value) {
                (Some(s), Some(v)) => Some(s + v),
                _ => None,
            };
            inputs.push(TxInput {
                index: k as u32,
                kind,
                prev_txid: ptxid,
                prev_vout: pvout,
                address: addr,
                value: if kind == "coinbase" { None } else { value },
            });
        }
        let mut outputs = Vec::new();
        let mut out_sum = 0u64;
        for (v, o) in self.tx_outputs(t).enumerate() {
            let value = self.output_value(o);
            out_sum += value;
            let addr = self.output_addr(o);
            outputs.push(TxOutput {
                vout: v as u32,
                address: addr.map(|a| self.render_addr(a)),
                script_type: self.output_script_type(o).name(),
                value,
                spent_by: self.spent_by(o),
                data: if addr.is_none() {
                    self.op_return_data(o).map(hex::encode)
                } else {
                    None
                },
            });
        }
        let coinbase = self.is_coinbase(t);
        TxInfo {
            txid: display_txid(self.txid(t)),
            block_height: self.start_height() + b as u32,
            block_hash: BlockHash::from_byte_array(brec.hash).to_string(),
            block_time: brec.time,
            position: t - brec.first_tx,
            version: self.tx_version(t),
            locktime: self.tx_locktime(t),
            coinbase,
            input_value: if coinbase { None } else { in_sum },
            output_value: out_sum,
            fee: if coinbase {
                Some(0)
            } else {
                in_sum.map(|s| s.saturating_sub(out_sum))
            },
            inputs,
            outputs,
        }
    }

    /// Every output an address received, oldest first.
    pub fn addr_outputs(&self, a: AddrId) -> Vec<OutNum> {
        let mut outs = Vec::new();
        let mut cur = self.addr_last_out(a);
        while let Some(o) = cur {
            outs.push(o);
            cur = self.out_prev_same_addr(o);
        }
        outs.reverse();
        outs
    }

    /// Every output an address received, oldest first, with what spent it.
    pub fn address_info(&self, a: AddrId, max_outputs: usize) -> AddressInfo {
        let outs = self.addr_outputs(a);
        let (mut received, mut sent, mut unspent) = (0u64, 0u64, 0u64);
        let mut txs: Vec<TxNum> = Vec::new();
        let mut rows = Vec::new();
        let (mut first, mut last) = (None, None);
        for &o in &outs {
            let v = self.output_value(o);
            received += v;
            let t = self.output_tx(o);
            let h = self.tx_height(t);
            first = first.or(Some(h));
            last = Some(last.map_or(h, |l: u32| l.max(h)));
            txs.push(t);
            let spender = self.output_spender(o);
            let spent_height = spender.map(|s| self.tx_height(s));
            if let Some(s) = spender {
                sent += v;
                txs.push(s);
                last = Some(last.map_or(spent_height.unwrap_or(h), |l: u32| {
                    l.max(spent_height.unwrap_or(h))
                }));
                let _ = s;
            } else {
                unspent += 1;
            }
            if rows.len() < max_outputs {
                rows.push(AddrOutput {
                    txid: display_txid(self.txid(t)),
                    vout: self.output_vout(o),
                    height: h,
                    value: v,
                    spent_by: self.spent_by(o),
                    spent_height,
                });
            }
        }
        txs.sort_unstable();
        txs.dedup();
        AddressInfo {
            address: self.render_addr(a),
            script_type: self.addr_key(a).kind.name(),
            balance: received - sent,
            received,
            sent,
            output_count: outs.len() as u64,
            unspent_count: unspent,
            tx_count: txs.len() as u64,
            first_seen_height: first,
            last_seen_height: last,
            outputs: rows,
        }
    }

    /// A block by height or hash.
    pub fn block_info(&self, q: &str) -> Result<BlockInfo, IndexError> {
        let q = q.trim();
        let pos = if q.len() == 64 {
            let h = BlockHash::from_str(q)
                .map_err(|e| IndexError::NotFound(format!("'{q}' is not a block hash: {e}")))?;
            self.find_block_hash(&h.to_byte_array())
                .ok_or_else(|| IndexError::NotFound(format!("block {q} is not in the index")))?
        } else {
            let h: u32 = q.parse().map_err(|_| {
                IndexError::NotFound(format!(
                    "'{q}' is neither a height nor a 64-hex-digit block hash"
                ))
            })?;
            let start = self.start_height();
            match self.tip_height() {
                Some(tip) if h >= start && h <= tip => (h - start) as u64,
                _ => {
                    return Err(IndexError::NotFound(format!(
                        "height {h} is outside the index ({})",
                        self.tip_height()
                            .map_or("empty".into(), |t| format!("{start}..={t}"))
                    )))
                }
            }
        };
        let r = self.block(pos);
        let txs = self.block_txs(pos);
        Ok(BlockInfo {
            height: self.start_height() + pos as u32,
            hash: BlockHash::from_byte_array(r.hash).to_string(),
            prev_hash: (pos > 0)
                .then(|| BlockHash::from_byte_array(self.block_hash(pos - 1)).to_string()),
            time: r.time,
            bits: format!("{:08x}", r.bits),
            tx_count: (txs.end - txs.start) as u64,
            txids: txs.map(|t| display_txid(self.txid(t))).collect(),
        })
    }
}
