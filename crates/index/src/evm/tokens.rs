//! Token metadata as the indexed chain gave it: `tokens.json` beside the columns, one
//! ethereum-etl `tokens` row per JSON line (so `export --format etl` writes it back as
//! it is), from the etl `tokens` table at ingest or from the node's `symbol()` /
//! `decimals()` answers while following.
//!
//! It is display data that changes rarely and is small (one row per token contract), so
//! it is not a column: each change rewrites the file to a temporary one, syncs it and
//! renames it over the old, so a crash leaves the old or the new table, never a mixture.
//! A row with no symbol and no decimals records a contract that was asked and answered
//! nothing usable (an NFT, a contract that is no token), so it is not asked again.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use cointrail_evm::etl::TokenRow;
use cointrail_evm::Address;

use super::store::EvmIndex;
use crate::IndexError;

pub(crate) const FILE: &str = "tokens.json";

pub(crate) fn load(dir: &Path) -> Result<Vec<TokenRow>, IndexError> {
    let path = dir.join(FILE);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IndexError::Io(path, e)),
    };
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| IndexError::Io(path.clone(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: TokenRow = serde_json::from_str(&line).map_err(|e| {
            IndexError::Format(format!(
                "{}:{}: not a token row ({e}); remove the file and ingest the tokens again",
                path.display(),
                i + 1
            ))
        })?;
        rows.push(row);
    }
    Ok(rows)
}

fn store(dir: &Path, rows: &BTreeMap<Address, TokenRow>) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for r in rows.values() {
        serde_json::to_writer(&mut f, r)?;
        f.write_all(b"\n")?;
    }
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Tell the process-wide table of token names what this chain said.
pub(crate) fn teach(rows: &[TokenRow]) {
    for r in rows {
        if let (Some(s), Some(d)) = (&r.symbol, r.decimals) {
            cointrail_evm::tokens::learn(r.address, s, d);
        }
    }
}

impl EvmIndex {
    /// The token rows this index keeps, in address order.
    pub fn token_rows(&self) -> Result<Vec<TokenRow>, IndexError> {
        load(&self.dir)
    }

    /// Keep token rows (the etl `tokens` table, or a node's answers). A new row for a
    /// contract already kept replaces it field by field where it says more (a later
    /// export that has the symbol, a node that answers now). Returns how many rows
    /// changed. Crash-safe (temporary file, sync, rename); needs the writer.
    pub fn learn_tokens(&mut self, rows: &[TokenRow]) -> Result<usize, IndexError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut all: BTreeMap<Address, TokenRow> = load(&self.dir)?
            .into_iter()
            .map(|r| (r.address, r))
            .collect();
        let mut changed = 0;
        for r in rows {
            let merged = match all.get(&r.address) {
                None => r.clone(),
                Some(old) => TokenRow {
                    address: r.address,
                    symbol: r.symbol.clone().or_else(|| old.symbol.clone()),
                    name: r.name.clone().or_else(|| old.name.clone()),
                    decimals: r.decimals.or(old.decimals),
                    total_supply: r.total_supply.or(old.total_supply),
                    block_number: old.block_number.or(r.block_number),
                },
            };
            if all.get(&r.address) != Some(&merged) {
                all.insert(r.address, merged);
                changed += 1;
            }
        }
        if changed > 0 {
            store(&self.dir, &all).map_err(|e| IndexError::Io(self.dir.join(FILE), e))?;
            teach(&all.values().cloned().collect::<Vec<_>>());
        }
        Ok(changed)
    }

    /// Token contracts that moved value in this index and that neither the shipped
    /// registry nor `tokens.json` knows (not even as asked): what a follower asks the node.
    pub fn tokens_to_ask(&self) -> Result<Vec<Address>, IndexError> {
        let kept: std::collections::HashSet<Address> =
            load(&self.dir)?.into_iter().map(|r| r.address).collect();
        let mut v: Vec<Address> = self
            .asset_ids
            .keys()
            .filter(|a| !kept.contains(*a) && cointrail_evm::tokens::shipped(a).is_none())
            .copied()
            .collect();
        v.sort();
        Ok(v)
    }
}
