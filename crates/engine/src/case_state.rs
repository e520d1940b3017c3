//! The stored cases' exact taint, persisted (`DATA_DIR/state/case_taint.bin`) so that
//! screening maps it instead of tracing every case again at every open.
//!
//! A trace depends on the cases, on the attributions (where it stops), and on the chain up
//! to its tip (new blocks can carry the taint on). The file records all three: the case
//! store's change stamp, the checksum of the attribution state it was traced with, and the
//! block count and tip hash. A case on Ethereum reaches Bitcoin through its cross-chain
//! trace, so the Ethereum index's commit record, the files its labels come from and the
//! bridge rules are recorded too. Any difference traces the cases again and rewrites it.

use crate::state_file::{self, u32_at, u64_at, StateFile, Unusable};
use crate::Engine;
use anyhow::Result;
use cointrail_chain::view::OutNum;
use cointrail_risk::CaseTaint;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CTTAINT1";
/// out u64, case u32, hops u32, sats u64.
const ENTRY: usize = 24;

pub fn path(data_dir: &Path) -> PathBuf {
    state_file::state_dir(data_dir).join("case_taint.bin")
}

/// What the case taint depends on now.
fn binding(e: &Engine, attribution: u64) -> serde_json::Value {
    let n = e.index.block_count();
    serde_json::json!({
        "cases": state_file::store_fingerprint(&e.data_dir.join("cases.redb")),
        "attribution_checksum": format!("{attribution:016x}"),
        "network": e.index.network_name(),
        "block_count": n,
        "tip_hash": (n > 0).then(|| e.index.block_hash(n - 1).iter().map(|b| format!("{b:02x}")).collect::<String>()),
        // The tracer's rules may change between versions.
        "version": env!("CARGO_PKG_VERSION"),
        // A case on Ethereum taints Bitcoin through its cross-chain trace: that depends on
        // the Ethereum index, its labels and the bridge rules as well.
        "ethereum": ethereum_binding(e),
    })
}

/// What the Bitcoin leg of an Ethereum case depends on besides the Bitcoin side: the
/// Ethereum index's commit record (`manifest.json`: its generation moves at every commit and
/// rollback), the files its labels come from and `bridges.yaml`. Null without an Ethereum
/// index.
fn ethereum_binding(e: &Engine) -> serde_json::Value {
    let dir = e.data_dir.join("ethereum");
    if !crate::evm::has_chain(&e.data_dir, "ethereum") {
        return serde_json::Value::Null;
    }
    let manifest = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    serde_json::json!({
        "manifest": manifest,
        "attribution_tsv": state_file::file_fingerprint(&e.data_dir.join("attribution.tsv")),
        "labels": state_file::store_fingerprint(&e.data_dir.join("labels.redb")),
        "bridges": state_file::file_fingerprint(&e.data_dir.join("bridges.yaml")),
    })
}

pub struct CaseTaintState {
    f: StateFile,
    names: Vec<String>,
    /// What happened at open: `opened`, or why it was traced again.
    pub how: String,
}

impl CaseTaintState {
    pub fn load(e: &Engine, attribution: u64) -> Result<CaseTaintState> {
        let p = path(&e.data_dir);
        let want = binding(e, attribution);
        let why = match state_file::open(&p, MAGIC) {
            Ok(f) if f.meta["binding"] == want && f.sections.len() == 3 => match check_layout(&f) {
                Ok(()) => return Ok(CaseTaintState::new(f, "opened".into())),
                Err(m) => {
                    tracing::warn!("{} is unusable ({m}): tracing the cases again", p.display());
                    "it was unusable"
                }
            },
            Ok(_) => "the cases, the attributions or the chain changed since it was traced",
            Err(Unusable::Missing) => "",
            Err(Unusable::Corrupt(m)) => {
                tracing::warn!("{} is unusable ({m}): tracing the cases again", p.display());
                "it was unusable"
            }
        };
        if !why.is_empty() {
            tracing::info!("{}: {why}: tracing the cases again", p.display());
        }
        let (rows, n) = e.trace_cases()?;
        let mut names: Vec<String> = Vec::new();
        let mut entries: Vec<(OutNum, u32, u32, u64)> = Vec::with_capacity(rows.len());
        for (o, case, sats, hops) in rows {
            let ci = match names.iter().position(|x| *x == case) {
                Some(i) => i,
                None => {
                    names.push(case);
                    names.len() - 1
                }
            } as u32;
            entries.push((o, ci, hops, sats));
        }
        // Stable: an output's cases stay in case order, as the traced map gave them.
        entries.sort_by_key(|x| x.0);
        let (mut off, mut blob) = (Vec::new(), Vec::new());
        for s in &names {
            off.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            blob.extend_from_slice(s.as_bytes());
        }
        off.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        let mut ent = Vec::with_capacity(entries.len() * ENTRY);
        for (o, c, h, s) in &entries {
            ent.extend_from_slice(&o.to_le_bytes());
            ent.extend_from_slice(&c.to_le_bytes());
            ent.extend_from_slice(&h.to_le_bytes());
            ent.extend_from_slice(&s.to_le_bytes());
        }
        let meta = serde_json::json!({
            "kind": "case_taint",
            "binding": want,
            "traced_cases": n,
            "tainted_outputs": entries.len(),
        });
        let bytes = state_file::encode(MAGIC, &meta, &[&off, &blob, &ent]);
        let f = state_file::persist(&p, MAGIC, bytes)?;
        let how = if why.is_empty() {
            "traced".to_string()
        } else {
            format!("traced again: {why}")
        };
        Ok(CaseTaintState::new(f, how))
    }

    fn new(f: StateFile, how: String) -> CaseTaintState {
        let (off, blob) = (f.section(0), f.section(1));
        let names = (0..(off.len() / 4).saturating_sub(1))
            .map(|i| {
                let s = blob
                    .get(u32_at(off, i) as usize..u32_at(off, i + 1) as usize)
                    .unwrap_or_default();
                String::from_utf8_lossy(s).into_owned()
            })
            .collect();
        CaseTaintState { f, names, how }
    }

    pub fn traced_cases(&self) -> usize {
        self.f.meta["traced_cases"].as_u64().unwrap_or(0) as usize
    }
}

/// The sections' lengths against each other and the meta record, in constant time (see
/// `attr_state::check_layout`).
fn check_layout(f: &StateFile) -> std::result::Result<(), String> {
    let (off, blob, ent) = (f.section(0), f.section(1), f.section(2));
    let ok = off.len() >= 4
        && off.len().is_multiple_of(4)
        && u32_at(off, 0) == 0
        && u32_at(off, off.len() / 4 - 1) as usize == blob.len()
        && ent.len().is_multiple_of(ENTRY)
        && f.meta["tainted_outputs"].as_u64() == Some((ent.len() / ENTRY) as u64);
    if ok {
        Ok(())
    } else {
        Err("its sections do not fit together (damaged)".into())
    }
}

impl CaseTaint for CaseTaintState {
    fn taint(&self, out: OutNum) -> Vec<(String, u64, u32)> {
        let s = self.f.section(2);
        let n = s.len() / ENTRY;
        let at = |i: usize| u64_at(&s[ENTRY * i..], 0);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if at(mid) < out {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut v = Vec::new();
        while lo < n && at(lo) == out {
            let e = &s[ENTRY * lo..ENTRY * (lo + 1)];
            let case = u32_at(e, 2) as usize;
            v.push((
                self.names.get(case).cloned().unwrap_or_default(),
                u64_at(e, 2),
                u32_at(e, 3),
            ));
            lo += 1;
        }
        v
    }
}
