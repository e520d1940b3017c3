//! US dollars for exposure amounts, from an imported price table (never a fixed rate): each
//! amount is converted at the rate of the UTC day it moved, and says which rates it used.
//! An amount without a rate has no USD, and a rule's USD threshold cannot fire on it; the
//! screening says so (`rules_not_judged`) instead of pretending.

use cointrail_evm::U256;
use serde::Serialize;
use std::collections::BTreeMap;

/// A day's USD rate of an asset, as the price table names it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsdRate {
    pub asset: String,
    /// The day the rate is for (YYYY-MM-DD, UTC); may be a few days before the day asked.
    pub date: String,
    /// USD per whole unit (1 BTC, 1 ETH, 1 USDC).
    pub usd: f64,
    pub source: String,
}

/// Historical prices, implemented by the engine over `DATA_DIR/prices.csv`.
pub trait UsdPrices {
    /// The rate of `asset` (a ticker: BTC, ETH, USDC) for UTC day `day` (days since
    /// 1970-01-01), or None when the table has none for that day.
    fn rate(&self, asset: &str, day: u32) -> Option<UsdRate>;
    /// What the table is, for a screening's parameters (file, assets, rows).
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// No price table: no USD anywhere.
pub struct NoPrices;
impl UsdPrices for NoPrices {
    fn rate(&self, _: &str, _: u32) -> Option<UsdRate> {
        None
    }
}

/// The UTC day of a Unix time.
pub fn day_of(unix: u64) -> u32 {
    (unix / 86_400) as u32
}

/// Amounts of one asset by the day they moved, summed exactly.
#[derive(Clone, Debug, Default)]
pub struct ByDay(pub BTreeMap<u32, U256>);

impl ByDay {
    pub fn add(&mut self, day: u32, amount: U256) {
        let e = self.0.entry(day).or_default();
        *e = e.saturating_add(amount);
    }
    pub fn merge(&mut self, other: &ByDay) {
        for (d, a) in &other.0 {
            self.add(*d, *a);
        }
    }
}

/// Most distinct rates named per figure (an address active on many days).
pub const MAX_RATES_SHOWN: usize = 10;

/// USD of an amount at its days' rates.
#[derive(Clone, Debug, Default)]
pub struct UsdFigure {
    /// Sum over the days with a rate; None when no day had one.
    pub usd: Option<f64>,
    pub rates: Vec<UsdRate>,
    /// Base units with no rate (left out of `usd`).
    pub unpriced: U256,
    /// Why some or all of the amount has no USD.
    pub why_unpriced: Option<String>,
}

impl UsdFigure {
    pub fn merge(&mut self, o: &UsdFigure) {
        if let Some(u) = o.usd {
            self.usd = Some(self.usd.unwrap_or(0.0) + u);
        }
        for r in &o.rates {
            if self.rates.len() < MAX_RATES_SHOWN && !self.rates.contains(r) {
                self.rates.push(r.clone());
            }
        }
        self.unpriced = self.unpriced.saturating_add(o.unpriced);
        if self.why_unpriced.is_none() {
            self.why_unpriced.clone_from(&o.why_unpriced);
        }
    }
}

/// A U256 as the nearest f64 (amounts far beyond 2^53 lose digits only in the USD figure,
/// never in the amounts themselves).
pub fn to_f64(v: U256) -> f64 {
    v.as_limbs()
        .iter()
        .rev()
        .fold(0.0, |acc, &l| acc * 18_446_744_073_709_551_616.0 + l as f64)
}

/// Convert amounts by day. `ticker` and `decimals` are None for a token the registry does
/// not know (no symbol, no decimals: no USD).
pub fn convert(
    prices: &dyn UsdPrices,
    ticker: Option<&str>,
    decimals: Option<u8>,
    days: &ByDay,
    cache: &mut BTreeMap<(String, u32), Option<UsdRate>>,
) -> UsdFigure {
    let mut f = UsdFigure::default();
    let (Some(t), Some(dec)) = (ticker, decimals) else {
        f.unpriced = days
            .0
            .values()
            .fold(U256::ZERO, |a, b| a.saturating_add(*b));
        f.why_unpriced =
            Some("a token the registry does not know (no symbol or decimals): no USD".into());
        return f;
    };
    let scale = 10f64.powi(dec as i32);
    for (&day, &amount) in &days.0 {
        let r = cache
            .entry((t.to_string(), day))
            .or_insert_with(|| prices.rate(t, day));
        match r {
            Some(r) => {
                f.usd = Some(f.usd.unwrap_or(0.0) + to_f64(amount) / scale * r.usd);
                if f.rates.len() < MAX_RATES_SHOWN && !f.rates.contains(r) {
                    f.rates.push(r.clone());
                }
            }
            None => {
                f.unpriced = f.unpriced.saturating_add(amount);
                if f.why_unpriced.is_none() {
                    f.why_unpriced = Some(format!(
                        "no {t} rate for {} in the price table (`cointrail prices import FILE.csv`)",
                        date_text(day)
                    ));
                }
            }
        }
    }
    f
}

/// YYYY-MM-DD of a day number (civil from days).
pub fn date_text(day: u32) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table;
    impl UsdPrices for Table {
        fn rate(&self, asset: &str, day: u32) -> Option<UsdRate> {
            (asset == "ETH" && day == 19_000).then(|| UsdRate {
                asset: "ETH".into(),
                date: date_text(day),
                usd: 2000.0,
                source: "t.csv".into(),
            })
        }
    }

    #[test]
    fn each_day_at_its_rate_and_days_without_one_are_unpriced() {
        let mut d = ByDay::default();
        d.add(19_000, U256::from(1_500_000_000_000_000_000u128));
        d.add(19_001, U256::from(7u64));
        let f = convert(&Table, Some("ETH"), Some(18), &d, &mut BTreeMap::new());
        assert_eq!(f.usd, Some(3000.0));
        assert_eq!(f.rates.len(), 1);
        assert_eq!(f.rates[0].date, "2022-01-08");
        assert_eq!(f.unpriced, U256::from(7u64));
        assert!(f.why_unpriced.unwrap().contains("2022-01-09"));
        let f = convert(&Table, None, None, &d, &mut BTreeMap::new());
        assert_eq!(f.usd, None);
        assert_eq!(to_f64(U256::from(1u64) << 64), 18_446_744_073_709_551_616.0);
    }
}
