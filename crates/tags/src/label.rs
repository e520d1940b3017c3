use serde::{Deserialize, Serialize};

/// What a label is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Target {
    Address(String),
    Tx(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Store source name (e.g. `graphsense:miners`, `ofac-sdn`, `user`).
    pub source: String,
    pub currency: String,
    pub target: Target,
    pub label: String,
    pub category: Option<String>,
    pub abuse: Option<String>,
    pub actor: Option<String>,
    /// GraphSense confidence class (`ownership`, `authority_data`, `forensic`, ...).
    pub confidence: Option<String>,
    pub is_cluster_definer: bool,
    pub lastmod: Option<String>,
    /// Provenance URI or publisher given by the source itself (TagPack `source`).
    pub origin: Option<String>,
    pub concepts: Vec<String>,
    /// Sanctions programmes (OFAC) such as DPRK3, CYBER2.
    pub programs: Vec<String>,
    /// Set by the store: version date of the import that first carried this label.
    pub valid_from: String,
    /// Set by the store: version date of the import from which the label was absent.
    pub valid_to: Option<String>,
}

impl Label {
    /// The category screening judges this label by. GraphSense puts what a party does
    /// wrong in `abuse` (phishing, scam, ponzi_scheme, service_hack, ransomware, …) and
    /// what it is in `category` (exchange, perpetrator, victim, …): the abuse decides,
    /// except on a victim's own addresses; then the category; then the first concept.
    pub fn risk_category(&self) -> Option<&str> {
        let victim = self.category.as_deref() == Some("victim");
        self.abuse
            .as_deref()
            .filter(|a| !victim && !a.is_empty())
            .or(self.category.as_deref())
            .or(self.concepts.first().map(String::as_str))
    }

    pub fn new(source: &str, currency: &str, target: Target, label: &str) -> Label {
        let currency = normalize_currency(currency);
        let target = match target {
            Target::Address(a) => Target::Address(normalize_address(&currency, &a)),
            Target::Tx(t) => Target::Tx(t.trim().to_ascii_lowercase()),
        };
        Label {
            source: source.into(),
            currency,
            target,
            label: label.trim().into(),
            category: None,
            abuse: None,
            actor: None,
            confidence: None,
            is_cluster_definer: false,
            lastmod: None,
            origin: None,
            concepts: vec![],
            programs: vec![],
            valid_from: String::new(),
            valid_to: None,
        }
    }

    pub fn address(&self) -> Option<&str> {
        match &self.target {
            Target::Address(a) => Some(a),
            Target::Tx(_) => None,
        }
    }

    /// Visible at `as_of` (None: the current state, i.e. not closed).
    pub fn visible(&self, as_of: Option<&str>) -> bool {
        match as_of {
            None => self.valid_to.is_none(),
            Some(d) => {
                self.valid_from.as_str() <= d && self.valid_to.as_deref().is_none_or(|t| d < t)
            }
        }
    }

    /// Identity within a source: one record per (currency, target, label).
    pub(crate) fn key(&self) -> String {
        let (k, v) = match &self.target {
            Target::Address(a) => ('a', a),
            Target::Tx(t) => ('t', t),
        };
        format!(
            "{}\0{}\0{k}{}\0{}",
            self.source, self.currency, v, self.label
        )
    }

    pub(crate) fn index_key(&self) -> String {
        match &self.target {
            Target::Address(a) => index_key(&self.currency, a),
            Target::Tx(t) => format!("{}\0{}", self.currency, t),
        }
    }
}

pub(crate) fn index_key(currency: &str, addr: &str) -> String {
    format!("{currency}\0{addr}")
}

/// Upper-case ticker; OFAC's XBT is Bitcoin, stored as BTC.
pub fn normalize_currency(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    if c == "XBT" {
        "BTC".into()
    } else {
        c
    }
}

/// The lists an address of this format can be on. A 0x address is the same account on
/// every EVM chain and for every ERC-20 token, so it is looked up under all of them.
pub const EVM_CURRENCIES: [&str; 6] = ["ETH", "USDT", "USDC", "ETC", "ARB", "BSC"];

/// Currencies to look an address up under when the user did not say: the chain is told
/// by the address's format.
pub fn currencies_for_address(addr: &str) -> &'static [&'static str] {
    let a = addr.trim();
    let evm = a.len() == 42
        && a.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"))
        && a[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if evm {
        &EVM_CURRENCIES
    } else {
        &["BTC"]
    }
}

/// BTC/LTC bech32 and every hex (0x) address are case-insensitive: store them lower-case.
/// Base58 addresses are case-sensitive and kept as given.
pub fn normalize_address(currency: &str, addr: &str) -> String {
    let a = addr.trim();
    let lower = a.to_ascii_lowercase();
    let bech = ["bc1", "tb1", "bcrt1", "ltc1", "tltc1"]
        .iter()
        .any(|p| lower.starts_with(p));
    if lower.starts_with("0x") || bech || matches!(currency, "ETH" | "ETC" | "BSC" | "ARB") {
        lower
    } else {
        a.to_string()
    }
}

/// `YYYY-MM-DD` with plausible month and day.
pub fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    matches!(
        (num(0..4), num(5..7), num(8..10)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}

#[cfg(test)]
mod risk_category_tests {
    use super::*;

    fn label(category: Option<&str>, abuse: Option<&str>) -> Label {
        let mut l = Label::new("t", "BTC", Target::Address("1A".into()), "x");
        l.category = category.map(str::to_string);
        l.abuse = abuse.map(str::to_string);
        l
    }

    #[test]
    fn abuse_decides_except_on_victims() {
        assert_eq!(
            label(None, Some("ponzi_scheme")).risk_category(),
            Some("ponzi_scheme")
        );
        assert_eq!(
            label(Some("perpetrator"), Some("service_hack")).risk_category(),
            Some("service_hack")
        );
        assert_eq!(
            label(Some("victim"), Some("service_hack")).risk_category(),
            Some("victim")
        );
        assert_eq!(
            label(Some("exchange"), None).risk_category(),
            Some("exchange")
        );
        let mut c = label(None, None);
        assert_eq!(c.risk_category(), None);
        c.concepts = vec!["mixing_service".into()];
        assert_eq!(c.risk_category(), Some("mixing_service"));
    }
}
