//! Plugging the data directory's attributions and traced cases into the engine.
//!
//! Attribution sources, all optional:
//! - `DATA_DIR/attribution.tsv`: `address<TAB>category<TAB>name[<TAB>entity]` lines, the
//!   simplest way to name services (the demo writes one for the simulated services).

use crate::Global;
use anyhow::{Context, Result};
use cointrail_chain::view::{AddrId, ChainView};
use cointrail_chain::AddressKey;
use cointrail_engine::Engine;
use cointrail_risk::{Attribution, Attributor};
use std::collections::HashMap;
use std::sync::Arc;

struct MapAttributor {
    by_addr: HashMap<AddrId, Vec<Attribution>>,
    times: Vec<u32>,
}

impl Attributor for MapAttributor {
    fn attribute(&self, addr: AddrId) -> Vec<Attribution> {
        self.by_addr.get(&addr).cloned().unwrap_or_default()
    }
    fn time_of_height(&self, h: u32) -> u64 {
        self.times.get(h as usize).copied().unwrap_or(h) as u64
    }
}

/// Attach whatever attribution and case taint this data directory holds.
pub fn attach(e: &mut Engine, g: &Global) -> Result<()> {
    let mut by_addr: HashMap<AddrId, Vec<Attribution>> = HashMap::new();
    let mut notes = Vec::new();
    let path = g.data_dir.join("attribution.tsv");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let net = e.index.render_network();
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 3 {
                anyhow::bail!(
                    "{} line {}: expected address, category, name separated by tabs",
                    path.display(),
                    i + 1
                );
            }
            let key = AddressKey::parse(f[0], net)
                .map_err(|m| anyhow::anyhow!("{} line {}: {m}", path.display(), i + 1))?;
            if let Some(a) = e.index.lookup_addr(&key) {
                by_addr.entry(a).or_default().push(Attribution {
                    entity: f.get(3).and_then(|x| x.parse().ok()),
                    name: f[2].to_string(),
                    category: f[1].to_string(),
                    source: "attribution.tsv".into(),
                    valid_from: None,
                    valid_to: None,
                });
                n += 1;
            }
        }
        notes.push(serde_json::json!({"source": "attribution.tsv", "addresses": n}));
    }
    let start = e.index.start_height();
    let times: Vec<u32> = (0..e.index.block_count())
        .map(|b| e.index.block(b).time)
        .collect();
    let times = if start == 0 { times } else { Vec::new() };
    e.attribution_note = serde_json::json!(notes);
    e.set_attributor(Arc::new(MapAttributor { by_addr, times }));
    Ok(())
}
