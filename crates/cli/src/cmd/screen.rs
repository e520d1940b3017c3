//! `screen`: exposure and risk of an address, a transaction or one output (a deposit).

use crate::Global;
use anyhow::Result;
use cointrail_engine::{Engine, Subject};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail screen bc1q...                 # an address: where its funds came from and went
  cointrail screen TXID:1 --json           # a deposit output, exactly what the API answers
  cointrail screen TXID --rules my.yaml    # with your own rule set (see crates/risk/src/default_rules.yaml)")]
pub struct ScreenArgs {
    /// ADDRESS, TXID or TXID:VOUT.
    pub subject: String,
    /// Risk rule file (YAML) replacing the built-in rules.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Hops followed through unattributed addresses.
    #[arg(long, default_value_t = 3)]
    pub max_hops: u32,
}

pub fn open_engine(g: &Global, rules: Option<&PathBuf>) -> Result<Engine> {
    let mut e = Engine::open(&g.data_dir)?;
    if let Some(r) = rules {
        e = e.with_rules_file(r)?;
    }
    cointrail_engine::wiring::attach(&mut e)?;
    Ok(e)
}

pub fn run(a: ScreenArgs, g: &Global) -> Result<()> {
    // A 0x address is an Ethereum account: direct exposure over its movements (a malformed
    // one is refused there, saying what is wrong).
    if crate::cmd::evm::has_0x_prefix(&a.subject) {
        return crate::cmd::evm::run_screen(&a.subject, g);
    }
    let mut e = open_engine(g, a.rules.as_ref())?;
    // Stored cases count exactly: trace them first.
    e.load_case_taint()?;
    e.params.max_hops = a.max_hops;
    let subject = Subject::parse(&a.subject)?;
    let s = e.screen(&subject)?;
    if g.json {
        return crate::print_json(&s);
    }
    print!("{}", human(&a.subject, &s, a.max_hops));
    // USD only at a rate of the day the coins moved, from the imported price table.
    let day = match &subject {
        Subject::Tx(t) | Subject::Output(t, _) => e
            .index
            .parse_txid(t)
            .ok()
            .map(|n| e.index.tx_info(n).block_time as u64),
        Subject::Address(_) => None,
    };
    let prices = crate::cmd::prices::load(&g.data_dir)?;
    println!("{}", usd_note(&s, day, &prices));
    Ok(())
}

/// USD of the fired rules at the rate of the transaction's day, naming that rate's date and
/// source; no USD when the table has no rate for the day or the amounts span many days.
pub fn usd_note(
    s: &cointrail_risk::Screening,
    day: Option<u64>,
    prices: &cointrail_tags::PriceTable,
) -> String {
    let Some(secs) = day else {
        return "USD: not shown (an address's amounts span many days; screen a TXID or TXID:VOUT for USD at that day's rate)".into();
    };
    let date = cointrail_tags::prices::date_of(secs);
    let Some(r) = prices.rate("BTC", &date) else {
        return format!("USD: not shown (no BTC rate for {date} in the price table: `cointrail prices import FILE.csv`)");
    };
    let flow = s.received.total_sats.max(s.sent.total_sats);
    let mut out = format!(
        "USD at {} USD/BTC (rate of {}, from {}): {:.2} USD moved",
        r.usd,
        r.date,
        r.source,
        cointrail_tags::PriceTable::usd_of(&r, flow as u128, 8)
    );
    for f in &s.fired_rules {
        out.push_str(&format!(
            "; rule {}: {:.2} USD",
            f.rule,
            cointrail_tags::PriceTable::usd_of(&r, f.sats as u128, 8)
        ));
    }
    out
}

/// The screening as a person reads it: the verdict, the rules that set it, an aligned
/// exposure table in BTC, and what each received/sent figure counts.
pub fn human(subject: &str, s: &cointrail_risk::Screening, max_hops: u32) -> String {
    use crate::human::btc;
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{subject}: risk {:?}", s.risk);
    for f in &s.fired_rules {
        let _ = writeln!(
            o,
            "  rule {} ({:?}): {} ({:.1}% of the flow) — {}",
            f.rule,
            f.level,
            btc(f.sats),
            f.share * 100.0,
            f.description
        );
    }
    if s.exposure.is_empty() {
        let _ = writeln!(o, "exposure: no labelled party within {max_hops} hops");
    } else {
        let cw = s
            .exposure
            .iter()
            .map(|r| r.category.len())
            .max()
            .unwrap_or(0)
            .max("category".len());
        let aw = s
            .exposure
            .iter()
            .map(|r| btc(r.sats).len())
            .max()
            .unwrap_or(0);
        let _ = writeln!(o, "exposure:");
        let _ = writeln!(
            o,
            "  {:<9} {:<10} {:<cw$} {:>aw$} {:>7}  {:>4}  parties",
            "direction", "type", "category", "amount", "share", "hops"
        );
        for r in &s.exposure {
            let _ = writeln!(
                o,
                "  {:<9} {:<10} {:<cw$} {:>aw$} {:>6.2}%  {:>4}  {}{}",
                r.direction,
                format!("{:?}", r.exposure_type).to_lowercase(),
                r.category,
                btc(r.sats),
                r.share * 100.0,
                r.min_hops,
                r.entities.join(", "),
                if r.delisted {
                    " (label withdrawn at the time)"
                } else {
                    ""
                }
            );
        }
    }
    let rc = &s.received;
    let mut line = format!(
        "received {} from others: {} reached no labelled party within {max_hops} hops, {} new coins (coinbase), {} from before the indexed range",
        btc(rc.total_sats),
        btc(rc.unattributed_sats),
        btc(rc.coinbase_sats),
        btc(rc.outside_index_sats)
    );
    if rc.self_change_sats > 0 {
        let _ = write!(
            line,
            "; not counted: {} it paid to itself as change (`cointrail address` counts every output, change included)",
            btc(rc.self_change_sats)
        );
    }
    let _ = writeln!(o, "{line}");
    let sn = &s.sent;
    let _ = writeln!(
        o,
        "sent {} ({} more that still sits in unspent outputs along the way is left out): {} reached no labelled party within {max_hops} hops, {} paid as fees",
        btc(sn.total_sats),
        btc(sn.unspent_sats),
        btc(sn.unattributed_sats),
        btc(sn.fee_sats)
    );
    o
}
