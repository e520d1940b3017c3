//! Risk levels from exposure rows: an ordered, documented rule set (YAML), replaceable by
//! the operator's own file. The highest level among the rules that fire wins; every fired
//! rule is reported with the amounts and rows that made it fire.

use crate::exposure::ExposureType;
use crate::usd::{to_f64, UsdFigure, UsdRate};
use cointrail_evm::U256;
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
    let c = c.trim();
    let owned;
    // Most categories are written the normalized way already: no copies then.
    let c = if c
        .bytes()
        .any(|b| b.is_ascii_uppercase() || b == b' ' || b == b'-')
    {
        owned = c.to_ascii_lowercase().replace([' ', '-'], "_");
        owned.as_str()
    } else {
        c
    };
    match c {
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
    /// No longer used: USD comes from the imported price table at the rate of the day the
    /// funds moved. Accepted so that older rule files still load; a screening says it was
    /// ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btc_usd: Option<f64>,
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
    /// `received` or `sent`.
    pub direction: String,
    /// The asset of the matched amount: BTC, ETH, a token's symbol (or its contract when
    /// the registry does not know it). Rules add up amounts of one asset only.
    pub asset: String,
    /// The matched amount in the asset's base units (satoshis, wei, token units), exact.
    pub amount: String,
    /// Bitcoin: the matched amount in satoshis (as `amount`); absent on other chains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sats: Option<u64>,
    /// USD of the matched amount, each part at the rate of the day it moved (the price
    /// table); null when no part has a rate.
    pub usd: Option<f64>,
    /// The rates used (date and source), at most 10.
    pub usd_rates: Vec<UsdRate>,
    /// Why part or all of the amount has no USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd_note: Option<String>,
    pub share: f64,
    /// Indexes into the screening's `exposure` rows that made it fire.
    pub rows: Vec<usize>,
}

/// A rule whose USD threshold could not be judged: the matched amount (or part of it) had
/// no rate in the price table, and the part with a rate stayed under the threshold.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NotJudged {
    pub rule: String,
    pub direction: String,
    pub asset: String,
    /// The matched amount, base units.
    pub amount: String,
    pub min_usd: f64,
    /// USD of the part with a rate (null: none had one).
    pub usd_known: Option<f64>,
    pub reason: String,
}

/// What the rules read of an exposure row, on any chain.
pub trait RuleRow {
    fn category(&self) -> &str;
    fn level(&self) -> Level;
    fn exposure_type(&self) -> ExposureType;
    fn direction(&self) -> &str;
    fn delisted(&self) -> bool;
    /// The asset's name as fired rules show it.
    fn asset(&self) -> &str;
    fn amount(&self) -> U256;
    /// Bitcoin rows: the amount in satoshis.
    fn sats(&self) -> Option<u64> {
        None
    }
    fn usd(&self) -> UsdFigure;
    /// Share of the direction's total.
    fn share(&self) -> f64;
}

/// The result of evaluating a rule set.
pub struct Verdict {
    pub level: Level,
    pub fired: Vec<FiredRule>,
    pub not_judged: Vec<NotJudged>,
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

    /// Evaluate the rules over exposure rows. Amounts are added up per direction and asset
    /// (`total` gives the direction's total of an asset, for shares).
    pub fn evaluate<R: RuleRow>(&self, rows: &[R], total: &dyn Fn(&str, &str) -> U256) -> Verdict {
        let mut fired = Vec::new();
        let mut not_judged = Vec::new();
        let fire = |rule: &str,
                    level,
                    description: &str,
                    dir: &str,
                    asset: &str,
                    idx: Vec<usize>,
                    share: f64| {
            let mut amount = U256::ZERO;
            let mut sats: Option<u64> = Some(0);
            let mut usd = UsdFigure::default();
            for &i in &idx {
                let r = &rows[i];
                amount = amount.saturating_add(r.amount());
                sats = sats.zip(r.sats()).map(|(a, b)| a.saturating_add(b));
                usd.merge(&r.usd());
            }
            FiredRule {
                rule: rule.to_string(),
                level,
                description: description.to_string(),
                direction: dir.to_string(),
                asset: asset.to_string(),
                amount: amount.to_string(),
                sats: if idx.is_empty() { None } else { sats },
                usd: usd.usd,
                usd_rates: usd.rates,
                usd_note: usd.why_unpriced,
                share,
                rows: idx,
            }
        };
        for rule in &self.rules {
            let w = &rule.when;
            let mut groups: BTreeMap<(String, String), (U256, Vec<usize>)> = BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                let cat_ok = w.category.is_empty()
                    || w.category.iter().any(|c| {
                        c == r.category()
                            || (c == "stolen_funds" && r.category().starts_with("stolen_funds"))
                    });
                // A row's level already says whether its label held when the funds moved.
                let sev_ok = w.severity.is_empty() || w.severity.contains(&r.level());
                let type_ok = w.types.is_empty() || w.types.contains(&r.exposure_type());
                let dir_ok =
                    w.direction.is_empty() || w.direction.iter().any(|d| d == r.direction());
                if cat_ok && sev_ok && type_ok && dir_ok && r.amount() > U256::ZERO && !r.delisted()
                {
                    let dir = if r.direction() == "sent" {
                        "sent"
                    } else {
                        "received"
                    };
                    let e = groups
                        .entry((dir.to_string(), r.asset().to_string()))
                        .or_insert((U256::ZERO, Vec::new()));
                    e.0 = e.0.saturating_add(r.amount());
                    e.1.push(i);
                }
            }
            for ((dir, asset), (amount, idx)) in groups {
                let t = total(&dir, &asset);
                let share = if t.is_zero() {
                    0.0
                } else {
                    to_f64(amount) / to_f64(t)
                };
                let mut usd = UsdFigure::default();
                for &i in &idx {
                    usd.merge(&rows[i].usd());
                }
                let known = usd.usd.unwrap_or(0.0);
                let by_usd = w
                    .min_usd
                    .is_some_and(|m| known > m || (m == 0.0 && amount > U256::ZERO));
                let by_share = w.min_share.is_some_and(|m| share > m);
                let unconditional = w.min_usd.is_none() && w.min_share.is_none();
                if by_usd || by_share || unconditional {
                    fired.push(fire(
                        &rule.name,
                        rule.level,
                        &rule.description,
                        &dir,
                        &asset,
                        idx,
                        share,
                    ));
                } else if let Some(m) = w.min_usd.filter(|m| *m > 0.0) {
                    if !usd.unpriced.is_zero() {
                        not_judged.push(NotJudged {
                            rule: rule.name.clone(),
                            direction: dir.clone(),
                            asset: asset.clone(),
                            amount: amount.to_string(),
                            min_usd: m,
                            usd_known: usd.usd,
                            reason: format!(
                                "{} of {} base units have no USD rate ({}); the threshold of {m} USD could not be judged on them",
                                usd.unpriced,
                                amount,
                                usd.why_unpriced.as_deref().unwrap_or("no rate")
                            ),
                        });
                    }
                }
            }
        }
        let mut level = fired.iter().map(|f| f.level).max().unwrap_or(Level::None);
        if fired.is_empty() && self.fallback_highest_category {
            let mut best: Option<(Level, usize)> = None;
            for (i, r) in rows.iter().enumerate() {
                let l = if r.exposure_type() == ExposureType::Indirect {
                    r.level().lower()
                } else {
                    r.level()
                };
                if l > Level::None && r.amount() > U256::ZERO && best.is_none_or(|(b, _)| l > b) {
                    best = Some((l, i));
                }
            }
            if let Some((l, i)) = best {
                level = l;
                let r = &rows[i];
                fired.push(fire(
                    "highest-category",
                    l,
                    "no rule fired: the highest category present (one level lower if only indirect)",
                    if r.direction() == "sent" { "sent" } else { "received" },
                    r.asset(),
                    vec![i],
                    r.share(),
                ));
            }
        }
        Verdict {
            level,
            fired,
            not_judged,
        }
    }
}
