//! `prices`: the historical USD price table (`DATA_DIR/prices.csv`) that USD figures use.

use crate::Global;
use anyhow::{Context, Result};
use cointrail_tags::PriceTable;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  cointrail prices import btc-usd-daily.csv        # columns date,asset,usd (YYYY-MM-DD, BTC, 565.5)
  cointrail prices show BTC 2014-03-01             # the rate a figure of that day uses, and its source
Without a table, no USD is shown anywhere: amounts stay in BTC.")]
pub enum PricesCmd {
    /// Import a CSV table `date,asset,usd[,source]` (rows of the same asset and date replace
    /// earlier ones; the file's name is the source of rows without a source column).
    Import {
        /// CSV files with a header naming date, asset and usd.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The rate used for an asset on a day (or what the table holds, without arguments).
    Show {
        /// BTC, ETH, USDC, … (any ticker the table holds).
        asset: Option<String>,
        /// YYYY-MM-DD (UTC).
        date: Option<String>,
    },
}

pub fn table_path(g: &Global) -> PathBuf {
    g.data_dir.join("prices.csv")
}

pub fn run(cmd: PricesCmd, g: &Global) -> Result<()> {
    let path = table_path(g);
    let mut t = PriceTable::load(&path)?;
    match cmd {
        PricesCmd::Import { files } => {
            let mut report = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let n = t.merge_csv(&text, &f.display().to_string(), &name)?;
                report.push(serde_json::json!({"file": f, "rows": n, "source": name}));
            }
            std::fs::create_dir_all(&g.data_dir)?;
            // Write beside, then rename: a crash never leaves half a table.
            let tmp = path.with_extension("csv.tmp");
            std::fs::write(&tmp, t.to_csv())?;
            std::fs::rename(&tmp, &path)?;
            if g.json {
                return crate::print_json(&report);
            }
            for r in &report {
                println!(
                    "{}: {} rows imported",
                    r["file"].as_str().unwrap_or(""),
                    r["rows"]
                );
            }
            let held: Vec<String> = t
                .assets()
                .into_iter()
                .map(|(a, n)| format!("{a} {n} days"))
                .collect();
            println!("the price table now holds {}", held.join(", "));
        }
        PricesCmd::Show { asset, date } => match (asset, date) {
            (Some(a), Some(d)) => {
                let r = t.rate(&a, &d);
                if g.json {
                    return crate::print_json(&r);
                }
                match r {
                    Some(r) => println!(
                        "{} on {}: {} USD (rate of {}, from {})",
                        r.asset, d, r.usd, r.date, r.source
                    ),
                    None => println!(
                        "no {a} rate known for {d} (within {} days before it): USD figures of that day are not shown",
                        cointrail_tags::prices::MAX_RATE_AGE_DAYS
                    ),
                }
            }
            _ => {
                let v = t.assets();
                if g.json {
                    return crate::print_json(&v);
                }
                if v.is_empty() {
                    println!("no price table: `cointrail prices import FILE.csv` (date,asset,usd)");
                }
                for (a, n) in v {
                    println!("{a:6} {n} days");
                }
            }
        },
    }
    Ok(())
}
