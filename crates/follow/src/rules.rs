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
        /// For the set's 0x (EVM) addresses: alert when they send out at least this many
        /// wei of the native coin within the window (a decimal string: 256-bit amounts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold_wei: Option<String>,
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
    /// The EVM index's tip when the rule was added: on Ethereum it applies after it (None:
    /// no EVM index then, every block evaluated after the rule counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evm_start: Option<u64>,
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

/// An address meant for an EVM chain: written with 0x (no Bitcoin address has it).
pub fn is_evm_address(a: &str) -> bool {
    a.trim()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("0x"))
}

/// The Bitcoin addresses of a rule (0x ones are checked by [`parse_evm_addresses`]).
pub fn parse_addresses(addrs: &[String], network: Network) -> Result<Vec<AddressKey>, String> {
    addrs
        .iter()
        .filter(|a| !is_evm_address(a))
        .map(|a| AddressKey::parse(a.trim(), network).map_err(|e| format!("address {a:?}: {e}")))
        .collect()
}

/// The 0x addresses of a rule.
pub fn parse_evm_addresses(addrs: &[String]) -> Result<Vec<cointrail_evm::Address>, String> {
    addrs
        .iter()
        .filter(|a| is_evm_address(a))
        .map(|a| cointrail_evm::parse_address(a.trim()).map_err(|e| format!("address {a:?}: {e}")))
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
            threshold_wei,
            share_pct,
            window_blocks,
        } => {
            if addresses.is_empty() && entity.is_none() {
                return Err("a drain rule needs --address (one or more) or --entity".into());
            }
            parse_addresses(addresses, network)?;
            let evm = parse_evm_addresses(addresses)?;
            let btc = addresses.len() - evm.len();
            if let Some(w) = threshold_wei {
                let v = cointrail_evm::U256::from_str_radix(w.trim(), 10)
                    .map_err(|_| format!("--threshold-wei {w:?} is not a decimal amount of wei"))?;
                if v.is_zero() {
                    return Err("--threshold-wei 0 would fire on every payment: give a positive amount (1 fires on any movement)".into());
                }
            }
            if !evm.is_empty() && threshold_wei.is_none() {
                return Err("a drain rule on 0x addresses needs --threshold-wei (the native coin sent out, in wei; --share-pct is Bitcoin-only)".into());
            }
            if (btc > 0 || (entity.is_some() && threshold_wei.is_none()))
                && threshold_sats.is_none()
                && share_pct.is_none()
            {
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
            if !parse_evm_addresses(addresses)?.is_empty() {
                return Err("exposure rules watch Bitcoin addresses; for 0x addresses use a drain or flagged-receive rule".into());
            }
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
            threshold_wei: None,
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
                threshold_wei: None,
                share_pct: Some(20.0),
                window_blocks: 6,
            },
            start_height: 7,
            note: String::new(),
            evm_start: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"kind\":\"drain\""));
        assert_eq!(serde_json::from_str::<Rule>(&s).unwrap(), r);
    }
}
