//! Label sets that ship inside the binary, importable in one command
//! (`cointrail labels import --builtin NAME`). Today: `dprk-incidents`, TagPacks of
//! exchange hacks and thefts publicly attributed to North Korea (one pack per incident
//! and kind: researcher `<incident>.yaml`, `_fbi`, `_ofac` (perpetrators) and `_victim`),
//! each naming its public source; `builtin/dprk-incidents/SOURCE.md` says where they come
//! from. A compilation of public attributions, not verified on chain.
//!
//! An incident's perpetrator addresses (every pack of the incident but `_victim`) can
//! start a case (`cointrail case create NAME --from-incident bybit-2025`).

use crate::{parse_tagpack, ImportStats, Label, TagError, TagStore, Target};

/// The `dprk-incidents` packs: (file name, text).
pub const DPRK_INCIDENTS: &[(&str, &str)] = &[
    (
        "alphapo-coinspaid-2023.yaml",
        include_str!("../builtin/dprk-incidents/alphapo-coinspaid-2023.yaml"),
    ),
    (
        "alphapo-coinspaid-2023_victim.yaml",
        include_str!("../builtin/dprk-incidents/alphapo-coinspaid-2023_victim.yaml"),
    ),
    (
        "atomic-wallet-2023.yaml",
        include_str!("../builtin/dprk-incidents/atomic-wallet-2023.yaml"),
    ),
    (
        "atomic-wallet-2023_victim.yaml",
        include_str!("../builtin/dprk-incidents/atomic-wallet-2023_victim.yaml"),
    ),
    (
        "btc-markets-2018.yaml",
        include_str!("../builtin/dprk-incidents/btc-markets-2018.yaml"),
    ),
    (
        "btc-markets-2018_victim.yaml",
        include_str!("../builtin/dprk-incidents/btc-markets-2018_victim.yaml"),
    ),
    (
        "btc990-2021.yaml",
        include_str!("../builtin/dprk-incidents/btc990-2021.yaml"),
    ),
    (
        "bybit-2025.yaml",
        include_str!("../builtin/dprk-incidents/bybit-2025.yaml"),
    ),
    (
        "bybit-2025_victim.yaml",
        include_str!("../builtin/dprk-incidents/bybit-2025_victim.yaml"),
    ),
    (
        "coinberry-2020.yaml",
        include_str!("../builtin/dprk-incidents/coinberry-2020.yaml"),
    ),
    (
        "coinex-2023.yaml",
        include_str!("../builtin/dprk-incidents/coinex-2023.yaml"),
    ),
    (
        "coinex-2023_victim.yaml",
        include_str!("../builtin/dprk-incidents/coinex-2023_victim.yaml"),
    ),
    (
        "coinrail-2018.yaml",
        include_str!("../builtin/dprk-incidents/coinrail-2018.yaml"),
    ),
    (
        "coinsecure-2018.yaml",
        include_str!("../builtin/dprk-incidents/coinsecure-2018.yaml"),
    ),
    (
        "deribit-2022.yaml",
        include_str!("../builtin/dprk-incidents/deribit-2022.yaml"),
    ),
    (
        "deribit-2022_victim.yaml",
        include_str!("../builtin/dprk-incidents/deribit-2022_victim.yaml"),
    ),
    (
        "dmm-bitcoin-2024.yaml",
        include_str!("../builtin/dprk-incidents/dmm-bitcoin-2024.yaml"),
    ),
    (
        "dragonex-2019.yaml",
        include_str!("../builtin/dprk-incidents/dragonex-2019.yaml"),
    ),
    (
        "harmony-horizon-2022.yaml",
        include_str!("../builtin/dprk-incidents/harmony-horizon-2022.yaml"),
    ),
    (
        "harmony-horizon-2022_fbi.yaml",
        include_str!("../builtin/dprk-incidents/harmony-horizon-2022_fbi.yaml"),
    ),
    (
        "harmony-horizon-2022_victim.yaml",
        include_str!("../builtin/dprk-incidents/harmony-horizon-2022_victim.yaml"),
    ),
    (
        "htx-heco-2023.yaml",
        include_str!("../builtin/dprk-incidents/htx-heco-2023.yaml"),
    ),
    (
        "kucoin-2020.yaml",
        include_str!("../builtin/dprk-incidents/kucoin-2020.yaml"),
    ),
    (
        "liquid-2021.yaml",
        include_str!("../builtin/dprk-incidents/liquid-2021.yaml"),
    ),
    (
        "lykke-2024.yaml",
        include_str!("../builtin/dprk-incidents/lykke-2024.yaml"),
    ),
    (
        "lykke-2024_victim.yaml",
        include_str!("../builtin/dprk-incidents/lykke-2024_victim.yaml"),
    ),
    (
        "orbit-bridge-2023.yaml",
        include_str!("../builtin/dprk-incidents/orbit-bridge-2023.yaml"),
    ),
    (
        "poloniex-2023.yaml",
        include_str!("../builtin/dprk-incidents/poloniex-2023.yaml"),
    ),
    (
        "poloniex-2023_victim.yaml",
        include_str!("../builtin/dprk-incidents/poloniex-2023_victim.yaml"),
    ),
    (
        "ronin-bridge-2022.yaml",
        include_str!("../builtin/dprk-incidents/ronin-bridge-2022.yaml"),
    ),
    (
        "ronin-bridge-2022_ofac.yaml",
        include_str!("../builtin/dprk-incidents/ronin-bridge-2022_ofac.yaml"),
    ),
    (
        "stake-2023.yaml",
        include_str!("../builtin/dprk-incidents/stake-2023.yaml"),
    ),
    (
        "wazirx-2024.yaml",
        include_str!("../builtin/dprk-incidents/wazirx-2024.yaml"),
    ),
    (
        "wazirx-2024_victim.yaml",
        include_str!("../builtin/dprk-incidents/wazirx-2024_victim.yaml"),
    ),
];

/// Names of the built-in sets.
pub const SETS: &[&str] = &["dprk-incidents"];

pub fn builtin_set(name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match name {
        "dprk-incidents" => Some(DPRK_INCIDENTS),
        _ => None,
    }
}

/// What importing one built-in pack did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltinImport {
    pub file: String,
    pub source: String,
    pub version: String,
    pub labels: usize,
    #[serde(skip)]
    pub stats: ImportStats,
}

/// Import every pack of set `name` (source `NAME:<pack>`, version the pack's `lastmod`):
/// importing again changes nothing, a newer binary's packs close what they dropped.
pub fn import_builtin(store: &mut TagStore, name: &str) -> Result<Vec<BuiltinImport>, TagError> {
    let set = builtin_set(name).ok_or_else(|| TagError::Parse {
        file: name.into(),
        msg: format!(
            "no built-in label set named {name:?}; built in: {}",
            SETS.join(", ")
        ),
    })?;
    let mut out = Vec::new();
    for (file, text) in set {
        let stem = file.trim_end_matches(".yaml");
        let src = format!("{name}:{stem}");
        let at = format!("builtin:{name}/{file}");
        let labels = parse_tagpack(text, &at, &src)?;
        let ver = labels
            .iter()
            .filter_map(|l| l.lastmod.clone())
            .max()
            .unwrap_or_else(crate::today);
        let n = labels.len();
        let stats = store.import(&src, &ver, labels)?;
        out.push(BuiltinImport {
            file: at,
            source: src,
            version: ver,
            labels: n,
            stats,
        });
    }
    Ok(out)
}

/// The incidents of the `dprk-incidents` set (pack names without a kind suffix).
pub fn incidents() -> Vec<&'static str> {
    let mut v: Vec<&str> = DPRK_INCIDENTS
        .iter()
        .map(|(f, _)| f.trim_end_matches(".yaml"))
        .filter(|s| !s.contains('_'))
        .collect();
    v.sort_unstable();
    v
}

/// One perpetrator address of an incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncidentAddress {
    pub address: String,
    /// `BTC`, `ETH`, `TRX`, … as the pack says; `network` for EVM side chains (BSC, ARB…).
    pub currency: String,
    pub network: Option<String>,
    pub pack: String,
}

/// An incident's title (from its researcher pack) and perpetrator addresses (every pack of
/// the incident but the victims'), each once, in pack order.
pub fn incident(name: &str) -> Result<(String, Vec<IncidentAddress>), TagError> {
    let packs: Vec<&(&str, &str)> = DPRK_INCIDENTS
        .iter()
        .filter(|(f, _)| {
            let stem = f.trim_end_matches(".yaml");
            stem == name || (stem.starts_with(&format!("{name}_")) && !stem.ends_with("_victim"))
        })
        .collect();
    if packs.is_empty() {
        return Err(TagError::Parse {
            file: "dprk-incidents".into(),
            msg: format!(
                "no incident named {name:?}; the built-in incidents are: {}",
                incidents().join(", ")
            ),
        });
    }
    let mut title = String::new();
    let mut out: Vec<IncidentAddress> = Vec::new();
    for (file, text) in packs {
        let at = format!("builtin:dprk-incidents/{file}");
        let doc = crate::tagpack::yaml_value(text, &at)?;
        if file.trim_end_matches(".yaml") == name {
            title = doc["title"].as_str().unwrap_or(name).to_string();
        }
        // Checked the way an import checks it (addresses, fields) before use.
        let labels: Vec<Label> = parse_tagpack(text, &at, "dprk-incidents")?;
        let perpetrator = |l: &Label| l.category.as_deref() == Some("perpetrator");
        let networks: std::collections::HashMap<String, String> = doc["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| {
                        Some((
                            t["address"].as_str()?.to_string(),
                            t["network"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for l in labels.iter().filter(|l| perpetrator(l)) {
            let Target::Address(a) = &l.target else {
                continue;
            };
            if out.iter().any(|x| x.address.eq_ignore_ascii_case(a)) {
                continue;
            }
            out.push(IncidentAddress {
                address: a.clone(),
                currency: l.currency.clone(),
                network: networks.get(a).cloned(),
                pack: file.trim_end_matches(".yaml").to_string(),
            });
        }
    }
    Ok((title, out))
}
