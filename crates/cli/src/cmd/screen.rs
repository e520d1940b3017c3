//! `screen`: exposure and risk of an address, a transaction or one output (a deposit).

use crate::Global;
use anyhow::Result;
use cointrail_engine::{Engine, Subject};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail screen bc1q...                 # an address: where its funds came from and went
  cointrail screen TXID:1 --json           # a deposit output, exactly what the API answers
  cointrail screen TXID:0 --direction out  # a withdrawal: whom the output pays
  cointrail screen TXID:1 --soft           # and soft (not proven) exposure to stored cases, apart
  cointrail screen TXID --rules my.yaml    # with your own rule set (see crates/risk/src/default_rules.yaml)
  cointrail screen 0xb9d7934878b5fb9610b3fe8a5e441e8fad7e293f --json   # an Ethereum address, per asset
  cointrail screen 0xb9d7934878b5fb9610b3fe8a5e441e8fad7e293f --max-branch-reads 0   # walking whole lists
  cointrail prices import closes.csv       # then USD at each day's rate (date,asset,usd[,source])")]
pub struct ScreenArgs {
    /// ADDRESS, TXID or TXID:VOUT.
    pub subject: String,
    /// Risk rule file (YAML) replacing the built-in rules.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Hops followed through unattributed addresses.
    #[arg(long, default_value_t = 3)]
    pub max_hops: u32,
    /// Work bound of each direction's walk: inputs and outputs read (a CoinJoin of 300
    /// inputs costs 300). What it cuts is reported as beyond the limit.
    #[arg(long, default_value_t = cointrail_risk::exposure::DEFAULT_MAX_EDGES)]
    pub max_edges: usize,
    /// For TXID:VOUT: `in` screens where the output's coins came from (a deposit), `out`
    /// whom the output pays (a withdrawal). An address or a transaction shows both.
    #[arg(long, value_enum, default_value_t = Direction::In)]
    pub direction: Direction,
    /// Also report soft (not proven) exposure: the stored cases traced with soft hops
    /// (mixer demixing, CoinJoin change, post-mix cash-outs), on a line and JSON field
    /// (`soft_exposure`) of their own; never added to the exposure above or the verdict.
    #[arg(long)]
    pub soft: bool,
    /// Ethereum addresses: how many transfers of a counterparty's list a branch of the
    /// walk reads (the newest; the older rest is reported as beyond the branch read cap,
    /// `beyond_branch_reads`; the subject's own are all read). 0: whole lists. Default 32.
    #[arg(long)]
    pub max_branch_reads: Option<usize>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    In,
    Out,
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
    // A 0x address is an Ethereum account (a malformed one is refused there, saying what
    // is wrong).
    if crate::cmd::evm::has_0x_prefix(&a.subject) {
        if a.direction == Direction::Out {
            anyhow::bail!("--direction out screens one Bitcoin output (TXID:VOUT); an Ethereum address screening already shows both directions: drop --direction");
        }
        return crate::cmd::evm_screen::run(&a, g);
    }
    if a.max_branch_reads.is_some() {
        anyhow::bail!("--max-branch-reads bounds the walk of an Ethereum (0x) address; a Bitcoin subject's walk is bounded by --max-edges");
    }
    let mut e = open_engine(g, a.rules.as_ref())?;
    // Stored cases count exactly: trace them first.
    e.load_case_taint()?;
    e.params.max_hops = a.max_hops;
    e.params.max_edges = a.max_edges;
    let subject = Subject::parse(&a.subject)?;
    let s = match (&subject, a.direction) {
        (_, Direction::In) => e.screen(&subject)?,
        (Subject::Output(t, v), Direction::Out) => e.screen_output_forward(t, *v, &e.params)?,
        _ => anyhow::bail!(
            "--direction out screens one output (TXID:VOUT); an address or a transaction already shows both directions: drop --direction"
        ),
    };
    let soft = if a.soft {
        if a.direction == Direction::Out {
            anyhow::bail!("--soft reports where an output's coins came from: drop --direction out");
        }
        Some(e.soft_exposure(&subject)?)
    } else {
        None
    };
    if g.json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(x) = &soft {
            v["soft_exposure"] = serde_json::to_value(x)?;
        }
        return crate::print_json(&v);
    }
    if let Subject::Output(..) = subject {
        println!(
            "direction screened: {}",
            match a.direction {
                Direction::In => "in (where the output's coins came from)",
                Direction::Out => "out (whom the output pays)",
            }
        );
    }
    print!("{}", human(&a.subject, &s, a.max_hops));
    if let Some(x) = &soft {
        print!("{}", soft_human(x));
    }
    println!("{}", usd_note(&s));
    Ok(())
}

/// USD of the fired rules, each part at the rate of the day it moved (the imported price
/// table), naming each rate's date and source; where no rate is known, why not.
pub fn usd_note(s: &cointrail_risk::Screening) -> String {
    let mut out = Vec::new();
    for f in &s.fired_rules {
        let rates = f
            .usd_rates
            .iter()
            .map(|r| {
                format!(
                    "{} USD/{} (rate of {}, from {})",
                    r.usd, r.asset, r.date, r.source
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        match (f.usd, &f.usd_note) {
            (Some(u), None) => out.push(format!("USD: rule {}: {u:.2} USD at {rates}", f.rule)),
            (Some(u), Some(n)) => out.push(format!(
                "USD: rule {}: {u:.2} USD at {rates}, and part not shown ({n})",
                f.rule
            )),
            (None, n) => out.push(format!(
                "USD: not shown ({})",
                n.as_deref().unwrap_or("no rate in the price table")
            )),
        }
    }
    for n in &s.rules_not_judged {
        out.push(format!("USD: rule {} not judged: {}", n.rule, n.reason));
    }
    if out.is_empty() {
        out.push("USD: no rule fired, no amount to convert".into());
    }
    out.dedup();
    out.join("\n")
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
            btc(f.sats.unwrap_or(0)),
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
    if rc.beyond_limit_sats > 0 {
        let _ = write!(line, "; {}", cut_text(rc.beyond_limit_sats, s));
    }
    // A forward screening of one output (a withdrawal) received nothing from others to report.
    if s.subject["direction"] != "out" {
        let _ = writeln!(o, "{line}");
    }
    let sn = &s.sent;
    let _ = write!(
        o,
        "sent {} ({} more that still sits in unspent outputs along the way is left out): {} reached no labelled party within {max_hops} hops, {} paid as fees",
        btc(sn.total_sats),
        btc(sn.unspent_sats),
        btc(sn.unattributed_sats),
        btc(sn.fee_sats)
    );
    if sn.beyond_limit_sats > 0 {
        let _ = write!(o, "; {}", cut_text(sn.beyond_limit_sats, s));
    }
    let _ = writeln!(o);
    o
}

/// Soft exposure on lines of its own, after the proven exposure and the verdict.
pub fn soft_human(x: &[cointrail_engine::SoftExposure]) -> String {
    use crate::human::btc;
    use std::fmt::Write;
    let mut o = String::new();
    if x.is_empty() {
        let _ = writeln!(
            o,
            "soft exposure (not proven, not in the verdict): none from the stored cases"
        );
        return o;
    }
    let total: u64 = x.iter().map(|r| r.soft_sats).sum();
    let _ = writeln!(
        o,
        "soft exposure (not proven, not in the verdict): {} from stored cases through soft hops",
        btc(total)
    );
    for r in x {
        let _ = writeln!(
            o,
            "  {} of case {} at {} ({} hops; the case's soft rules: {})",
            btc(r.soft_sats),
            r.case,
            r.output,
            r.hops,
            r.rules_in_case.join(", ")
        );
    }
    o
}

/// What the walk's work bounds left unfollowed, and how to follow more.
fn cut_text(sats: u64, s: &cointrail_risk::Screening) -> String {
    format!(
        "{} not followed: the walk reached its work bound (--max-edges {}, {} branches at most)",
        crate::human::btc(sats),
        s.parameters["max_edges"],
        s.parameters["max_steps"]
    )
}
