//! Alert rules: what a person asks to be told about, checked before it is stored.

use crate::hooks::RiskLevel;
use bitcoin::Network;
use cointrail_chain::AddressKey;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// (1) Any output of a case's traced funds (or of the listed outpoints) is spent.
    TracedSpend {
        #[serde(default)]
        case: Option<String>,
        /// `txid:vout` outputs watched besides the case's frontier.
        #[serde(default)]
        outpoints: Vec<String>,
        /// Keep following the funds this many hops past the first spend (the frontier moves
        /// to the spending transaction's outputs); 0 watches only the starting outputs.
        #[serde(default)]
        follow_hops: u32,
    },
    /// (2) An address set or entity sends out more than `threshold_sats`, or more than
    /// `share_pct` of its balance, within `window_blocks` blocks.
    Drain {
        #[serde(default)]
        addresses: Vec<String>,
        #[serde(default)]
        entity: Option<String>,
        #[serde(default)]
        threshold_sats: Option<u64>,
        #[serde(default)]
        share_pct: Option<f64>,
        window_blocks: u32,
    },
    /// (3) A watched address set or entity receives funds whose exposure reaches `min_level`.
    Exposure {
        #[serde(default)]
        addresses: Vec<String>,
        #[serde(default)]
        entity: Option<String>,
        min_level: RiskLevel,
    },
    /// (4) Funds reach an address a label import flagged: in new blocks, and within the
    /// last `lookback_blocks` when the import happens.
    FlaggedReceive {
        #[serde(default)]
        categories: Vec<String>,
        #[serde(default = "default_lookback")]
        lookback_blocks: u32,
    },
}

fn default_lookback() -> u32 {
    144
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    pub id: String,
    #[serde(flatten)]
    pub kind: RuleKind,
    /// Blocks up to this height were indexed before the rule existed: it starts after them.
    pub start_height: u32,
    #[serde(default)]
    pub note: String,
}

impl Rule {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RuleKind::TracedSpend { .. } => "traced_spend",
            RuleKind::Drain { .. } => "drain",
            RuleKind::Exposure { .. } => "exposure",
            RuleKind::FlaggedReceive { .. } => "flagged_receive",
        }
    }
}

pub fn parse_outpoint(s: &str) -> Result<(bitcoin::Txid, u32), String> {
    let (t, v) = s
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("outpoint {s:?} is not TXID:VOUT"))?;
    let txid = bitcoin::Txid::from_str(t).map_err(|e| format!("outpoint {s:?}: txid: {e}"))?;
    let vout = v
        .parse::<u32>()
        .map_err(|_| format!("outpoint {s:?}: vout {v:?} is not a number"))?;
    Ok((txid, vout))
}

pub fn parse_addresses(addrs: &[String], network: Network) -> Result<Vec<AddressKey>, String> {
    addrs
        .iter()
        .map(|a| AddressKey::parse(a.trim(), network).map_err(|e| format!("address {a:?}: {e}")))
        .collect()
}

/// Reject rules that cannot mean anything, with the reason.
pub fn validate(kind: &RuleKind, network: Network) -> Result<(), String> {
    match kind {
        RuleKind::TracedSpend {
            case, outpoints, ..
        } => {
            if case.is_none() && outpoints.is_empty() {
                return Err("a traced_spend rule needs --case or at least one --outpoint".into());
            }
            for o in outpoints {
                parse_outpoint(o)?;
            }
        }
        RuleKind::Drain {
            addresses,
            entity,
            threshold_sats,
            share_pct,
            window_blocks,
        } => {
            if addresses.is_empty() && entity.is_none() {
                return Err("a drain rule needs --address (one or more) or --entity".into());
            }
            parse_addresses(addresses, network)?;
            if threshold_sats.is_none() && share_pct.is_none() {
                return Err("a drain rule needs --threshold-sats or --share-pct (or both)".into());
            }
            if *threshold_sats == Some(0) {
                return Err(
                    "--threshold-sats 0 would fire on every payment: give a positive amount".into(),
                );
            }
            if let Some(p) = share_pct {
                if !(*p > 0.0 && *p <= 100.0) {
                    return Err(format!("--share-pct {p} is not in (0, 100]"));
                }
            }
            if *window_blocks == 0 || *window_blocks > 52_560 {
                return Err(format!(
                    "--window-blocks {window_blocks} must be between 1 and 52560 (a year)"
                ));
            }
        }
        RuleKind::Exposure {
            addresses, entity, ..
        } => {
            if addresses.is_empty() && entity.is_none() {
                return Err("an exposure rule needs --address (one or more) or --entity".into());
            }
            parse_addresses(addresses, network)?;
        }
        RuleKind::FlaggedReceive {
            lookback_blocks, ..
        } => {
            if *lookback_blocks > 52_560 {
                return Err(format!(
                    "--lookback-blocks {lookback_blocks} is more than a year of blocks"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonsense_rules_are_refused_with_reasons() {
        let n = Network::Regtest;
        let drain = |t, s, w| RuleKind::Drain {
            addresses: vec!["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into()],
            entity: None,
            threshold_sats: t,
            share_pct: s,
            window_blocks: w,
        };
        assert!(validate(&drain(Some(1000), None, 6), n).is_ok());
        assert!(validate(&drain(None, None, 6), n)
            .unwrap_err()
            .contains("--threshold-sats"));
        assert!(validate(&drain(Some(0), None, 6), n).is_err());
        assert!(validate(&drain(None, Some(150.0), 6), n)
            .unwrap_err()
            .contains("150"));
        assert!(validate(&drain(Some(5), None, 0), n)
            .unwrap_err()
            .contains("window"));
        let mainnet_addr = RuleKind::Exposure {
            addresses: vec!["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into()],
            entity: None,
            min_level: RiskLevel::High,
        };
        assert!(validate(&mainnet_addr, n).is_err());
        assert!(validate(&mainnet_addr, Network::Bitcoin).is_ok());
        let bad_op = RuleKind::TracedSpend {
            case: None,
            outpoints: vec!["abcd:1".into()],
            follow_hops: 0,
        };
        assert!(validate(&bad_op, n).unwrap_err().contains("abcd"));
        let none = RuleKind::TracedSpend {
            case: None,
            outpoints: vec![],
            follow_hops: 0,
        };
        assert!(validate(&none, n).is_err());
    }

    #[test]
    fn rules_round_trip_as_json() {
        let r = Rule {
            id: "hot".into(),
            kind: RuleKind::Drain {
                addresses: vec!["x".into()],
                entity: None,
                threshold_sats: Some(5),
                share_pct: Some(20.0),
                window_blocks: 6,
            },
            start_height: 7,
            note: String::new(),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"kind\":\"drain\""));
        assert_eq!(serde_json::from_str::<Rule>(&s).unwrap(), r);
    }
}
