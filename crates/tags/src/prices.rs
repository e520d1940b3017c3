//! Historical USD prices of assets (BTC, ETH, USDC, …), imported from a CSV table
//! `date,asset,usd`, so a USD figure can name the day and the source of its rate, and a
//! figure without a known rate shows no USD at all instead of a made-up one.
//!
//! Chain-neutral on purpose: an asset is a ticker string; Bitcoin and Ethereum code share
//! one table (`DATA_DIR/prices.csv`, written by `cointrail prices import`).

use crate::error::TagError;
use crate::label::valid_date;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One day's price of one asset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rate {
    pub asset: String,
    /// The day the price is for (YYYY-MM-DD, UTC).
    pub date: String,
    /// USD per one whole unit (1 BTC, 1 ETH), as written in the table.
    pub usd: f64,
    /// Where the row came from: the imported file's name, or the `source` column.
    pub source: String,
}

/// Prices by asset, then date. Later imports replace rows of the same (asset, date).
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    rows: BTreeMap<String, BTreeMap<String, (f64, String)>>,
}

/// How many days back a rate may be used for a later date (weekends and gaps in a table);
/// beyond this no rate is known.
pub const MAX_RATE_AGE_DAYS: u32 = 3;

impl PriceTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse CSV `date,asset,usd[,source]` (header required, any column order; `#` lines
    /// and blank lines skipped). `default_source` names rows without a `source` column.
    /// Errors name the file, line and field.
    pub fn parse_csv(text: &str, file: &str, default_source: &str) -> Result<Self, TagError> {
        let mut t = PriceTable::new();
        t.merge_csv(text, file, default_source)?;
        Ok(t)
    }

    /// Add the rows of a CSV table (see [`PriceTable::parse_csv`]); returns rows read.
    pub fn merge_csv(
        &mut self,
        text: &str,
        file: &str,
        default_source: &str,
    ) -> Result<usize, TagError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((hl, header)) = lines.next() else {
            return Err(TagError::field(
                file,
                1,
                "header",
                "empty file: expected date,asset,usd",
            ));
        };
        let cols: Vec<String> = header.split(',').map(|c| c.trim().to_lowercase()).collect();
        let col = |n: &str| cols.iter().position(|c| c == n);
        let (Some(di), Some(ai), Some(ui)) = (col("date"), col("asset"), col("usd")) else {
            return Err(TagError::field(
                file,
                hl + 1,
                "header",
                format!("'{header}': the columns date, asset and usd are required"),
            ));
        };
        let si = col("source");
        let mut n = 0;
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let get = |k: usize, name: &str| {
                f.get(k)
                    .copied()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| TagError::field(file, i + 1, name, "missing"))
            };
            let date = get(di, "date")?;
            if !valid_date(date) {
                return Err(TagError::field(
                    file,
                    i + 1,
                    "date",
                    format!("'{date}' is not YYYY-MM-DD"),
                ));
            }
            let asset = normalize_asset(get(ai, "asset")?);
            let usd_text = get(ui, "usd")?;
            let usd: f64 = usd_text
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0)
                .ok_or_else(|| {
                    TagError::field(
                        file,
                        i + 1,
                        "usd",
                        format!("'{usd_text}' is not a positive price"),
                    )
                })?;
            let source = si
                .and_then(|k| f.get(k).copied())
                .filter(|s| !s.is_empty())
                .unwrap_or(default_source);
            self.rows
                .entry(asset)
                .or_default()
                .insert(date.to_string(), (usd, source.to_string()));
            n += 1;
        }
        Ok(n)
    }

    /// Read a table file; a missing file is an empty table (no USD shown anywhere).
    pub fn load(path: &Path) -> Result<Self, TagError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::parse_csv(&t, &path.display().to_string(), "prices.csv"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(TagError::Io {
                path: path.display().to_string(),
                source: e,
            }),
        }
    }

    /// Write the whole table as CSV `date,asset,usd,source`, sorted by asset and date.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("date,asset,usd,source\n");
        for (asset, days) in &self.rows {
            for (date, (usd, src)) in days {
                s.push_str(&format!("{date},{asset},{usd},{src}\n"));
            }
        }
        s
    }

    /// The rate of `asset` on `date` (YYYY-MM-DD): that day's row, or the latest row at most
    /// [`MAX_RATE_AGE_DAYS`] earlier. `None` when no such row exists: show no USD then.
    pub fn rate(&self, asset: &str, date: &str) -> Option<Rate> {
        let days = self.rows.get(&normalize_asset(asset))?;
        let (d, (usd, src)) = days.range(..=date.to_string()).next_back()?;
        if days_between(d, date)? > MAX_RATE_AGE_DAYS as i64 {
            return None;
        }
        Some(Rate {
            asset: normalize_asset(asset),
            date: d.clone(),
            usd: *usd,
            source: src.clone(),
        })
    }

    /// The rate of `asset` at Unix time `secs` (the UTC day it falls on).
    pub fn rate_at(&self, asset: &str, secs: u64) -> Option<Rate> {
        self.rate(asset, &date_of(secs))
    }

    /// USD value of `units` of the asset's smallest unit (`decimals`: 8 for BTC, 18 for ETH).
    pub fn usd_of(rate: &Rate, units: u128, decimals: u32) -> f64 {
        units as f64 / 10f64.powi(decimals as i32) * rate.usd
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows per asset.
    pub fn assets(&self) -> Vec<(String, usize)> {
        self.rows
            .iter()
            .map(|(a, d)| (a.clone(), d.len()))
            .collect()
    }
}

/// Tickers compare in upper case ("btc" and "BTC" are one asset).
pub fn normalize_asset(a: &str) -> String {
    a.trim().to_uppercase()
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn day_number(date: &str) -> Option<i64> {
    let y = date.get(0..4)?.parse().ok()?;
    let m = date.get(5..7)?.parse().ok()?;
    let d = date.get(8..10)?.parse().ok()?;
    Some(days_from_civil(y, m, d))
}

fn days_between(a: &str, b: &str) -> Option<i64> {
    Some(day_number(b)? - day_number(a)?)
}

/// The UTC date (YYYY-MM-DD) of Unix time `secs` (civil from days, H. Hinnant's algorithm).
pub fn date_of(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
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

    #[test]
    fn rates_name_their_day_and_source_and_unknown_days_have_none() {
        let t = PriceTable::parse_csv(
            "# daily closes\ndate,asset,usd\n2014-03-01,BTC,565.5\n2014-03-03,btc,640\n2024-01-01,ETH,2300\n",
            "p.csv",
            "p.csv",
        )
        .unwrap();
        let r = t.rate("BTC", "2014-03-01").unwrap();
        assert_eq!(
            (r.date.as_str(), r.usd, r.source.as_str()),
            ("2014-03-01", 565.5, "p.csv")
        );
        // A gap of a day uses the latest earlier rate, and says which day it is.
        assert_eq!(t.rate("BTC", "2014-03-02").unwrap().date, "2014-03-01");
        // Too old, before the table, or another asset: no rate.
        assert!(t.rate("BTC", "2014-03-10").is_none());
        assert!(t.rate("BTC", "2013-01-01").is_none());
        assert!(t.rate("USDC", "2024-01-01").is_none());
        assert_eq!(t.rate_at("eth", 1_704_067_200).unwrap().usd, 2300.0);
        assert!((PriceTable::usd_of(&r, 150_000_000, 8) - 848.25).abs() < 1e-9);
        let again = PriceTable::parse_csv(&t.to_csv(), "x", "x").unwrap();
        assert_eq!(again.rate("BTC", "2014-03-03").unwrap().source, "p.csv");
    }

    #[test]
    fn bad_rows_name_file_line_and_field() {
        let e = PriceTable::parse_csv("date,asset,usd\n2014-13-01,BTC,1\n", "p.csv", "p")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.csv") && e.contains('2') && e.contains("date"),
            "{e}"
        );
        let e = PriceTable::parse_csv("date,asset,usd\n2014-01-01,BTC,-3\n", "p.csv", "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("usd"), "{e}");
        let e = PriceTable::parse_csv("day,asset,price\n", "p.csv", "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("header"), "{e}");
        assert_eq!(date_of(1_231_006_505), "2009-01-03");
    }
}
