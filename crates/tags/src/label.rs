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

/// The longest label text any import, `labels add` or the API accepts, in characters. One
/// limit everywhere: the largest in the real GraphSense packs is 214 (a URL used as a name).
pub const MAX_LABEL_CHARS: usize = 256;
/// The longest provenance (`origin`, usually a URL) a label may carry, in characters.
pub const MAX_ORIGIN_CHARS: usize = 2048;
/// At most this many concepts on one label.
pub const MAX_CONCEPTS: usize = 64;

impl Label {
    /// The first text field over its size limit, as (field, message): a 20-million-character
    /// name in a file must not become a 200 MB label store.
    pub fn oversized_field(&self) -> Option<(&'static str, String)> {
        let too_long = |field: &'static str, v: &str, max: usize| {
            let n = v.chars().count();
            (n > max).then(|| {
                (
                    field,
                    format!("{n} characters; at most {max} are accepted (shorten it)"),
                )
            })
        };
        let (Target::Address(t) | Target::Tx(t)) = &self.target;
        let fields: [(&'static str, Option<&str>, usize); 8] = [
            ("label", Some(self.label.as_str()), MAX_LABEL_CHARS),
            ("address", Some(t.as_str()), MAX_LABEL_CHARS),
            ("currency", Some(self.currency.as_str()), MAX_LABEL_CHARS),
            ("category", self.category.as_deref(), MAX_LABEL_CHARS),
            ("abuse", self.abuse.as_deref(), MAX_LABEL_CHARS),
            ("actor", self.actor.as_deref(), MAX_LABEL_CHARS),
            ("confidence", self.confidence.as_deref(), MAX_LABEL_CHARS),
            ("source", self.origin.as_deref(), MAX_ORIGIN_CHARS),
        ];
        for (f, v, max) in fields {
            if let Some(e) = v.and_then(|v| too_long(f, v, max)) {
                return Some(e);
            }
        }
        if self.concepts.len() > MAX_CONCEPTS {
            return Some((
                "concepts",
                format!(
                    "{} concepts; at most {MAX_CONCEPTS} are accepted",
                    self.concepts.len()
                ),
            ));
        }
        for c in &self.concepts {
            if let Some(e) = too_long("concepts", c, MAX_LABEL_CHARS) {
                return Some(e);
            }
        }
        for c in &self.programs {
            if let Some(e) = too_long("programs", c, MAX_LABEL_CHARS) {
                return Some(e);
            }
        }
        None
    }

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
