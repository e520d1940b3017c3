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
    // A 0x address is an Ethereum account: direct exposure over its movements.
    if cointrail_evm::address::looks_like_evm_address(&a.subject) {
        return crate::cmd::evm::run_screen(&a.subject, g);
    }
    let mut e = open_engine(g, a.rules.as_ref())?;
    // Stored cases count exactly: trace them first.
    e.load_case_taint()?;
    e.params.max_hops = a.max_hops;
    let s = e.screen(&Subject::parse(&a.subject)?)?;
    if g.json {
        return crate::print_json(&s);
    }
    println!("{}: risk {:?}", a.subject, s.risk);
    for f in &s.fired_rules {
        println!(
            "  rule {} ({:?}): {} sat (${:.0}, {:.1}%) — {}",
            f.rule,
            f.level,
            f.sats,
            f.usd,
            f.share * 100.0,
            f.description
        );
    }
    println!("exposure:");
    for r in &s.exposure {
        println!(
            "  {:<9} {:<10} {:<24} {:>16} sat {:>6.2}%  hops {}  {}{}",
            r.direction,
            format!("{:?}", r.exposure_type).to_lowercase(),
            r.category,
            r.sats,
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
    println!(
        "received {} sat ({} unattributed within {} hops, {} coinbase, {} from before the index); sent {} sat ({} unattributed, {} fees)",
        s.received.total_sats, s.received.unattributed_sats, a.max_hops, s.received.coinbase_sats, s.received.outside_index_sats, s.sent.total_sats, s.sent.unattributed_sats, s.sent.fee_sats
    );
    Ok(())
}
