//! Risk levels from exposure rows: an ordered, documented rule set (YAML), replaceable by
//! the operator's own file. The highest level among the rules that fire wins; every fired
//! rule is reported with the amounts and rows that made it fire.

use crate::exposure::{ExposureRow, ExposureType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Hash,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    None,
    Low,
    Medium,
    High,
    Severe,
}

impl Level {
    pub fn lower(self) -> Level {
        match self {
            Level::Severe => Level::High,
            Level::High => Level::Medium,
            Level::Medium => Level::Low,
            _ => Level::None,
        }
    }
}

/// Map label categories from different sources (GraphSense concepts, OFAC, our own) to
/// one vocabulary.
pub fn normalize_category(c: &str) -> String {
    let c = c.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match c.as_str() {
        "sanction" | "sanctioned" | "ofac" | "sdn" | "sanctions" => "sanctions",
        "mixing_service" | "mixer" | "coinjoin" | "tumbler" => "mixer",
        "exchange" | "cex" | "exchange_hot_wallet" | "exchange_cold_wallet" => "exchange",
        "hack" | "hacker" | "theft" | "stolen_funds" | "stolen" | "exploit" | "service_hack" => {
            "stolen_funds"
        }
        "market" | "darknet_market" | "darknet" | "darkweb" => "darknet",
        "scam" | "fraud" | "phishing" | "ponzi_scheme" | "scammer" | "investment_fraud"
        | "pyramid_scheme" | "sextortion" => "scam",
        "ransomware" => "ransomware",
        "terrorist_financing" | "terrorism" | "extremism" => "terrorist_financing",
        "csam" => "csam",
        "gambling" | "casino" => "gambling",
        "miner" | "mining_service" | "mining_pool" | "mining" | "coinbase" => "mining",
        "payment_processor" | "payment_service" => "payment_processor",
        "otc" | "otc_broker" => "otc",
        other => return other.to_string(),
    }
    .to_string()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Condition {
    /// Categories matched (normalized names); empty: any.
    #[serde(default)]
    pub category: Vec<String>,
    /// Category levels matched (via the rule set's `levels`); empty: any.
    #[serde(default)]
    pub severity: Vec<Level>,
    /// Exposure types matched; empty: any.
    #[serde(default, rename = "type")]
    pub types: Vec<ExposureType>,
    /// `received` or `sent`; empty: both.
    #[serde(default)]
    pub direction: Vec<String>,
    /// Fires when the matched amount exceeds this many US dollars (0: any amount)…
    #[serde(default)]
    pub min_usd: Option<f64>,
    /// …or when its share of the direction's total exceeds this fraction.
    #[serde(default)]
    pub min_share: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub level: Level,
    pub when: Condition,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleSet {
    pub name: String,
    /// Price used to express satoshi amounts in dollars for the thresholds.
    pub btc_usd: f64,
    /// Category → level of risk of that category.
    pub levels: BTreeMap<String, Level>,
    pub rules: Vec<Rule>,
    /// When no rule fires: the highest level of any category present, one level lower if
    /// it is reached only indirectly.
    #[serde(default = "yes")]
    pub fallback_highest_category: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FiredRule {
    pub rule: String,
    pub level: Level,
    pub description: String,
    pub sats: u64,
    pub usd: f64,
    pub share: f64,
    /// Indexes into the screening's `exposure` rows that made it fire.
    pub rows: Vec<usize>,
}

pub const DEFAULT_RULES: &str = include_str!("default_rules.yaml");

impl RuleSet {
    pub fn default_rules() -> RuleSet {
        RuleSet::from_yaml(DEFAULT_RULES, "built-in").expect("built-in rules parse")
    }

    /// Parse an operator's rule file; errors name the file and what is wrong.
    pub fn from_yaml(text: &str, name: &str) -> Result<RuleSet, String> {
        let mut r: RuleSet =
            serde_saphyr::from_str(text).map_err(|e| format!("rule file {name}: {e}"))?;
        if !(r.btc_usd > 0.0 && r.btc_usd.is_finite()) {
            return Err(format!(
                "rule file {name}: btc_usd must be a positive price"
            ));
        }
        for rule in &r.rules {
            if rule.when.min_usd.is_some_and(|v| v < 0.0 || !v.is_finite())
                || rule
                    .when
                    .min_share
                    .is_some_and(|v| !(0.0..=1.0).contains(&v))
            {
                return Err(format!(
                    "rule file {name}: rule '{}': min_usd must be ≥ 0 and min_share within 0..1",
                    rule.name
                ));
            }
            for d in &rule.when.direction {
                if d != "received" && d != "sent" {
                    return Err(format!(
                        "rule file {name}: rule '{}': direction '{d}' is neither received nor sent",
                        rule.name
                    ));
                }
            }
        }
        r.levels = r
            .levels
            .into_iter()
            .map(|(k, v)| (normalize_category(&k), v))
            .collect();
        for rule in &mut r.rules {
            rule.when.category = rule
                .when
                .category
                .iter()
                .map(|c| normalize_category(c))
                .collect();
        }
        Ok(r)
    }

    pub fn level_of(&self, category: &str) -> Level {
        if category.starts_with("stolen_funds:") {
            // A tracked case: the investigator's own theft.
            return self
                .levels
                .get("tracked_case")
                .copied()
                .unwrap_or(Level::Severe);
        }
        self.levels.get(category).copied().unwrap_or(Level::None)
    }

    /// Evaluate the rules over exposure rows.
    pub fn evaluate(
        &self,
        rows: &[ExposureRow],
        received_total: u64,
        sent_total: u64,
    ) -> (Level, Vec<FiredRule>) {
        let mut fired = Vec::new();
        for rule in &self.rules {
            let w = &rule.when;
            let mut by_dir: BTreeMap<&str, (u64, Vec<usize>)> = BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                let cat_ok = w.category.is_empty()
                    || w.category.iter().any(|c| {
                        c == &r.category
                            || (c == "stolen_funds" && r.category.starts_with("stolen_funds"))
                    });
                // A row's level already says whether its label held when the funds moved.
                let sev_ok = w.severity.is_empty() || w.severity.contains(&r.level);
                let type_ok = w.types.is_empty() || w.types.contains(&r.exposure_type);
                let dir_ok =
                    w.direction.is_empty() || w.direction.iter().any(|d| d == &r.direction);
                if cat_ok && sev_ok && type_ok && dir_ok && r.sats > 0 && !r.delisted {
                    let e = by_dir
                        .entry(if r.direction == "sent" {
                            "sent"
                        } else {
                            "received"
                        })
                        .or_default();
                    e.0 += r.sats;
                    e.1.push(i);
                }
            }
            for (dir, (sats, idx)) in by_dir {
                let total = if dir == "sent" {
                    sent_total
                } else {
                    received_total
                };
                let share = if total == 0 {
                    0.0
                } else {
                    sats as f64 / total as f64
                };
                let usd = sats as f64 / 1e8 * self.btc_usd;
                let by_usd = w.min_usd.is_some_and(|m| usd > m || (m == 0.0 && sats > 0));
                let by_share = w.min_share.is_some_and(|m| share > m);
                let unconditional = w.min_usd.is_none() && w.min_share.is_none();
                if by_usd || by_share || unconditional {
                    fired.push(FiredRule {
                        rule: rule.name.clone(),
                        level: rule.level,
                        description: rule.description.clone(),
                        sats,
                        usd,
                        share,
                        rows: idx,
                    });
                }
            }
        }
        let mut level = fired.iter().map(|f| f.level).max().unwrap_or(Level::None);
        if fired.is_empty() && self.fallback_highest_category {
            for (i, r) in rows.iter().enumerate() {
                let l = r.level;
                let l = if r.exposure_type == ExposureType::Indirect {
                    l.lower()
                } else {
                    l
                };
                if l > Level::None && r.sats > 0 {
                    if l > level {
                        level = l;
                    }
                    if fired.iter().all(|f| f.rule != "highest-category") {
                        fired.push(FiredRule { rule: "highest-category".into(), level: l, description: "no rule fired: the highest category present (one level lower if only indirect)".into(), sats: r.sats, usd: r.sats as f64 / 1e8 * self.btc_usd, share: r.share, rows: vec![i] });
                    } else if let Some(f) = fired.iter_mut().find(|f| f.rule == "highest-category")
                    {
                        if l > f.level {
                            *f = FiredRule {
                                rule: "highest-category".into(),
                                level: l,
                                description: f.description.clone(),
                                sats: r.sats,
                                usd: r.sats as f64 / 1e8 * self.btc_usd,
                                share: r.share,
                                rows: vec![i],
                            };
                        }
                    }
                }
            }
        }
        (level, fired)
    }
}
