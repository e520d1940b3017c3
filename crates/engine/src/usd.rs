//! The imported price table (`DATA_DIR/prices.csv`, `cointrail prices import`) as the USD
//! rates screening converts with, on every chain.

use cointrail_risk::usd::date_text;
use cointrail_risk::{UsdPrices, UsdRate};
use cointrail_tags::PriceTable;
use std::path::Path;

pub struct TablePrices {
    table: PriceTable,
    file: String,
}

impl TablePrices {
    /// The data directory's table; none imported is an empty table (no USD anywhere).
    pub fn load(data_dir: &Path) -> anyhow::Result<TablePrices> {
        let path = data_dir.join("prices.csv");
        Ok(TablePrices {
            table: PriceTable::load(&path)?,
            file: path.display().to_string(),
        })
    }

    pub fn empty() -> TablePrices {
        TablePrices {
            table: PriceTable::new(),
            file: String::new(),
        }
    }
}

impl UsdPrices for TablePrices {
    fn rate(&self, asset: &str, day: u32) -> Option<UsdRate> {
        self.table.rate(asset, &date_text(day)).map(|r| UsdRate {
            asset: r.asset,
            date: r.date,
            usd: r.usd,
            source: r.source,
        })
    }
    fn describe(&self) -> serde_json::Value {
        if self.table.is_empty() {
            return serde_json::json!({"file": self.file, "assets": {}, "note": "no price table imported: no USD figures (`cointrail prices import FILE.csv`)"});
        }
        let assets: serde_json::Map<String, serde_json::Value> = self
            .table
            .assets()
            .into_iter()
            .map(|(a, n)| (a, serde_json::json!(n)))
            .collect();
        serde_json::json!({"file": self.file, "assets": assets})
    }
}
