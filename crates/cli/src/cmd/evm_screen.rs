//! `screen 0x…`: exposure and risk of an Ethereum address, through the engine (the API's
//! `/v1/ethereum/screen/address/{a}` gives the same JSON).

use crate::cmd::screen::ScreenArgs;
use crate::Global;
use anyhow::Result;
use cointrail_risk::account::AccountScreening;

pub fn run(a: &ScreenArgs, g: &Global) -> Result<()> {
    // A malformed address is refused before anything is opened, saying what is wrong.
    cointrail_evm::parse_address(&a.subject)?;
    let mut e = crate::cmd::screen::open_engine(g, a.rules.as_ref())?;
    e.attach_evm()?;
    let mut p = e.params.clone();
    p.max_hops = a.max_hops;
    let mut opts = cointrail_risk::account::WalkOptions::default();
    if let Some(r) = a.max_branch_reads {
        opts.max_branch_reads = r;
    }
    let s = e.screen_evm_with("ethereum", &a.subject, &p, opts)?;
    if g.json {
        return crate::print_json(&s);
    }
    print!("{}", human(&s, a.max_hops));
    Ok(())
}

/// An amount in base units as the asset's units ("1.5 ETH"), or base units when the
/// registry does not know the token's decimals.
fn units(amount: &str, asset: &str, decimals: Option<u8>) -> String {
    match (decimals, amount.parse::<cointrail_evm::U256>()) {
        (Some(d), Ok(v)) => format!("{} {asset}", cointrail_evm::tokens::format_units(&v, d)),
        _ => format!("{amount} base units of {asset}"),
    }
}

fn usd(u: Option<f64>) -> String {
    u.map_or(String::new(), |u| format!(" ({u:.2} USD)"))
}

/// The screening as a person reads it: verdict, rules, an exposure table per asset, and
/// what the totals count.
pub fn human(s: &AccountScreening, max_hops: u32) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let addr = s.subject["address"].as_str().unwrap_or("?");
    let _ = writeln!(o, "{addr} ({}): risk {:?}", s.chain, s.risk);
    let decimals = |asset: &str| {
        s.received
            .iter()
            .chain(&s.sent)
            .find(|f| f.asset.asset == asset)
            .and_then(|f| f.asset.decimals)
    };
    for f in &s.fired_rules {
        let rates = f
            .usd_rates
            .iter()
            .map(|r| format!("{} {} USD/{} from {}", r.date, r.usd, r.asset, r.source))
            .collect::<Vec<_>>();
        let _ = writeln!(
            o,
            "  rule {} ({:?}): {} {} {}{} ({:.1}% of the asset's flow) — {}{}",
            f.rule,
            f.level,
            f.direction,
            units(&f.amount, &f.asset, decimals(&f.asset)),
            "",
            usd(f.usd),
            f.share * 100.0,
            f.description,
            if rates.is_empty() {
                String::new()
            } else {
                format!(" [rates: {}]", rates.join("; "))
            }
        );
    }
    for n in &s.rules_not_judged {
        let _ = writeln!(
            o,
            "  rule {} not judged ({}): {}",
            n.rule, n.direction, n.reason
        );
    }
    if s.exposure.is_empty() {
        let _ = writeln!(o, "exposure: no labelled party within {max_hops} hops");
    } else {
        let _ = writeln!(o, "exposure:");
        for r in &s.exposure {
            let _ = writeln!(
                o,
                "  {:<8} {:<9} {:<18} {}{} {:.2}% hops {} {}{}",
                r.direction,
                format!("{:?}", r.exposure_type).to_lowercase(),
                r.category,
                units(&r.amount, &r.asset, r.decimals),
                usd(r.usd),
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
    for (dir, flows) in [("received", &s.received), ("sent", &s.sent)] {
        for f in flows {
            let u = |x: &str| units(x, &f.asset.asset, f.asset.decimals);
            let _ = writeln!(
                o,
                "{dir} {}: {} reached no labelled party within {max_hops} hops, {} from before the indexed blocks, {} new (rewards, withdrawals, mints), {} gas, {} still held along the way, {} beyond the step bound, {} in branches under the minimum share not walked on, {} in counterparties' older transfers beyond the branch read cap",
                u(&f.total),
                u(&f.unattributed),
                u(&f.outside_index),
                u(&f.new_coins),
                u(&f.fee),
                u(&f.held),
                u(&f.beyond_limit),
                u(&f.below_min_share),
                u(&f.beyond_branch_reads)
            );
        }
    }
    if s.fired_rules.iter().all(|f| f.usd.is_none()) && !s.exposure.is_empty() {
        let _ = writeln!(
            o,
            "USD: shown only where the price table has a rate for the day (`cointrail prices import FILE.csv`)"
        );
    }
    o
}
