//! An investigation's data directory, opened as one thing: the chain index, and whatever
//! labels, clusters, cases and traces it holds. The CLI and the service both go through
//! here, so `cointrail screen --json` and the API give exactly the same answer.

use anyhow::{bail, Context, Result};
use bitcoin::hashes::Hash;
use cointrail_chain::view::{ChainView, OutNum};
use cointrail_index::Index;
use cointrail_risk::{Attributor, CaseTaint, ExposureParams, RuleSet, Screening};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub struct Engine {
    pub data_dir: PathBuf,
    pub index: Index,
    pub rules: RuleSet,
    pub params: ExposureParams,
    attributor: Box<dyn Attributor + Send + Sync>,
    taint: Box<dyn CaseTaint + Send + Sync>,
}

/// What a screening request names.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Address(String),
    Tx(String),
    Output(String, u32),
}

impl Subject {
    /// `ADDR`, `TXID` or `TXID:VOUT`.
    pub fn parse(s: &str) -> Result<Subject> {
        let s = s.trim();
        if let Some((t, v)) = s.split_once(':') {
            if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                let vout = v
                    .parse()
                    .with_context(|| format!("'{v}' is not an output index"))?;
                return Ok(Subject::Output(t.to_string(), vout));
            }
        }
        if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Subject::Tx(s.to_string()));
        }
        Ok(Subject::Address(s.to_string()))
    }
}

impl Engine {
    pub fn open(data_dir: &Path) -> Result<Engine> {
        let index = Index::open_reader(&data_dir.join("index"))?;
        Ok(Engine {
            data_dir: data_dir.to_path_buf(),
            index,
            rules: RuleSet::default_rules(),
            params: ExposureParams::default(),
            attributor: Box::new(cointrail_risk::Nobody),
            taint: Box::new(cointrail_risk::Nobody),
        })
    }

    /// Replace the built-in risk rules with an operator's YAML file.
    pub fn with_rules_file(mut self, path: &Path) -> Result<Engine> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading rule file {}", path.display()))?;
        self.rules =
            RuleSet::from_yaml(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?;
        Ok(self)
    }

    pub fn set_attributor(&mut self, a: Box<dyn Attributor + Send + Sync>) {
        self.attributor = a;
    }

    pub fn set_case_taint(&mut self, t: Box<dyn CaseTaint + Send + Sync>) {
        self.taint = t;
    }

    fn provenance(&self) -> serde_json::Value {
        let s = self.index.stats();
        serde_json::json!({
            "index_tip_height": s.tip_height,
            "index_tip_hash": s.tip_hash,
            "index_generation": self.index.manifest().generation,
            "network": s.network,
        })
    }

    pub fn screen(&self, subject: &Subject) -> Result<Screening> {
        let idx = &self.index;
        let mut s = match subject {
            Subject::Address(a) => {
                let id = idx.parse_address(a)?;
                let outs = idx.addr_outputs(id);
                cointrail_risk::screen_address(
                    idx,
                    &*self.attributor,
                    &*self.taint,
                    &self.rules,
                    &self.params,
                    id,
                    &outs,
                    &idx.render_addr(id),
                )
            }
            Subject::Tx(t) => {
                let tx = idx.parse_txid(t)?;
                cointrail_risk::screen_tx(
                    idx,
                    &*self.attributor,
                    &*self.taint,
                    &self.rules,
                    &self.params,
                    tx,
                )
            }
            Subject::Output(t, vout) => {
                let o = self.outpoint(t, *vout)?;
                cointrail_risk::screen_output(
                    idx,
                    &*self.attributor,
                    &*self.taint,
                    &self.rules,
                    &self.params,
                    o,
                )
            }
        };
        s.provenance = self.provenance();
        Ok(s)
    }

    pub fn outpoint(&self, txid: &str, vout: u32) -> Result<OutNum> {
        let t = self.index.parse_txid(txid)?;
        let r = self.index.tx_outputs(t);
        if vout as u64 >= r.end - r.start {
            bail!(
                "transaction {txid} has {} outputs; there is no output {vout}",
                r.end - r.start
            );
        }
        Ok(r.start + vout as u64)
    }

    /// Txid in display form from raw bytes (helper for callers).
    pub fn display_txid(raw: [u8; 32]) -> String {
        bitcoin::Txid::from_byte_array(raw).to_string()
    }

    pub fn parse_txid(s: &str) -> Result<[u8; 32]> {
        Ok(bitcoin::Txid::from_str(s)
            .with_context(|| format!("'{s}' is not a txid"))?
            .to_byte_array())
    }
}
