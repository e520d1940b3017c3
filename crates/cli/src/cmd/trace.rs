//! `trace`: follow a case's coins forward; `trace origin`: where an output's coins came from.

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_cases::{parse_outpoints, Case, CaseSource, CaseStore};
use cointrail_trace::{CoinJoinPolicy, FeePolicy, Model, TraceParams};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail trace sim-heist-0                          # a stored case, FIFO, stop at services
  cointrail trace sim-heist-0 --model haircut --report heist.html
  cointrail trace --from TXID:0 --max-hops 5 --json    # ad hoc, without a case
  cointrail trace origin TXID:VOUT --case sim-heist-0  # which stolen satoshis an output holds (FIFO)
  cointrail trace sim-heist-0 --entity-aware --soft-hops  # follow the thief's entity, mixers, CoinJoins
  cointrail trace bybit --report bybit.html           # across chains: Ethereum → Bitcoin → back to Ethereum
Across chains (an Ethereum index in the data directory): a deposit into a THORChain vault with
a swap memo (=:ETH.ETH:0x…) continues on Ethereum from the router's outbound (memo OUT:<txid>);
JSON `to_ethereum` lists each hop with how it was matched, and the skipped ones with why.
Models: fifo (default), lifo, tiho, tifo, haircut, poison, or any xIyO (e.g. liho).
Totals add up to the stolen amount under every model but poison.")]
pub struct TraceArgs {
    /// A case name (see `cointrail case list`), or `origin` followed by TXID:VOUT.
    pub case: Option<String>,
    /// With `origin`: the output to explain.
    pub outpoint: Option<String>,
    /// Ad-hoc sources: TXID:VOUT[,…] (repeatable; several cases may be traced at once with --case).
    #[arg(long = "from")]
    pub from: Vec<String>,
    /// Ad-hoc source: every output of this transaction (TXID, repeatable).
    #[arg(long)]
    pub from_tx: Vec<String>,
    /// Ad-hoc source: every output this address received (repeatable).
    #[arg(long)]
    pub from_address: Vec<String>,
    /// More cases traced together, their labels kept apart.
    #[arg(long = "case")]
    pub cases: Vec<String>,
    /// How taint passes through a transaction that mixes stolen and clean coins: fifo (first
    /// in, first out), lifo, tiho (taint in, highest out), tifo, haircut (proportional),
    /// poison (every output fully tainted), or any xIyO.
    #[arg(long, default_value = "fifo", value_parser = Model::parse)]
    pub model: Model,
    /// `last` (outputs first, the rest is fee) or `proportional`.
    #[arg(long, default_value = "last", value_parser = FeePolicy::parse)]
    pub fee_policy: FeePolicy,
    /// Stop following coins after this many transactions from a source (default: no limit;
    /// the trace still stops at services and at unspent outputs).
    #[arg(long)]
    pub max_hops: Option<u32>,
    /// Haircut floor: drop branches with less taint than this.
    #[arg(long, default_value_t = 546)]
    pub dust_sats: u64,
    /// Haircut floor: drop branches below this fraction of the stolen total (haircut
    /// smears taint over most of the chain without one; 0 disables it).
    #[arg(long, default_value_t = 0.0001)]
    pub min_fraction: f64,
    /// stop (default), haircut-through, fifo-through, poison-through.
    #[arg(long, default_value = "stop", value_parser = CoinJoinPolicy::parse)]
    pub coinjoin: CoinJoinPolicy,
    /// Categories where tracing stops and records exposure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "exchange,otc,payment_processor,gambling,mining,darknet,mixer"
    )]
    pub stop_at: Vec<String>,
    /// Keep at most this many output rows (totals stay complete; poison can reach most of
    /// a chain).
    #[arg(long, default_value_t = 200_000)]
    pub max_rows: usize,
    /// Write a report: .md, .html or .csv (by extension).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Entity-aware tracing: what reaches the thief's own entity (the first hop's
    /// clusters, grown by the thief's self-spends) is its balance, and every later spend of
    /// the entity draws on it (FIFO), up to what it received.
    #[arg(long)]
    pub entity_aware: bool,
    /// Soft hops: match tainted custodial-mixer deposits to withdrawals and follow CoinJoin
    /// outputs the thief cashes out (alone, or swept together first) and its CoinJoin
    /// change; what they carry is soft taint, kept apart from proven. Remixed post-mix
    /// coins that the counts of one-for-one CoinJoins (Whirlpool) prove the thief's join
    /// its entity (`remix-flow`).
    #[arg(long)]
    pub soft_hops: bool,
    /// Soft hops: the score (0-1) a candidate needs to be followed.
    #[arg(long, default_value_t = 0.8)]
    pub soft_min_score: f64,
    /// Soft hops: the mixers' fee band in percent of the deposit (MIN-MAX).
    #[arg(long, default_value = "0.5-5", value_parser = cointrail_trace::DemixParams::parse_fee_band)]
    pub mixer_fee: (u32, u32),
    /// Soft hops: blocks after a deposit in which its withdrawal is looked for (MIN-MAX).
    #[arg(long, default_value = "1-144", value_parser = cointrail_trace::DemixParams::parse_delay)]
    pub mixer_delay: (u32, u32),
    /// Soft hops: also follow CoinJoin outputs the thief sweeps later (with coins the trace
    /// holds, or several from tainted CoinJoins). Off by default: right when the thief
    /// sweeps, wrong when it never does (BENCHMARKS.md).
    #[arg(long)]
    pub coinjoin_links: bool,
    /// Soft hops: blocks after a mix (or a mixer payout) within which a coin spent alone,
    /// straight to services, counts as the thief's cash-out (`postmix-cashout`, and the
    /// habit that tells one mixer withdrawal from others in the band).
    #[arg(long, default_value_t = 36)]
    pub cashout_window: u32,
    /// Bridge rules (YAML or JSON) for cross-chain joins; default DATA_DIR/bridges.yaml
    /// when it exists. THORChain is joined by its memos without rules.
    #[arg(long)]
    pub bridges: Option<PathBuf>,
}

impl TraceArgs {
    /// The soft-hop settings, when `--soft-hops` asks for them.
    pub fn demix(&self) -> Option<cointrail_trace::DemixParams> {
        self.soft_hops.then(|| cointrail_trace::DemixParams {
            min_score: self.soft_min_score,
            fee_min_bp: self.mixer_fee.0,
            fee_max_bp: self.mixer_fee.1,
            delay_min: self.mixer_delay.0,
            delay_max: self.mixer_delay.1,
            coinjoin_links: self.coinjoin_links,
            cashout_blocks: self.cashout_window,
            ..Default::default()
        })
    }
}

pub fn run(a: TraceArgs, g: &Global) -> Result<()> {
    if a.case.as_deref() != Some("origin") && crate::cmd::evm_trace::maybe_run(&a, g)? {
        return Ok(());
    }
    let e = crate::cmd::screen::open_engine(g, None)?;
    let store = CaseStore::open(&g.data_dir.join("cases.redb"))?;
    if a.case.as_deref() == Some("origin") {
        return origin(&a, &e, &store, g);
    }
    let mut cases: Vec<Case> = Vec::new();
    for name in a.case.iter().chain(a.cases.iter()) {
        cases.push(store.get(name)?);
    }
    let mut adhoc = Vec::new();
    for f in &a.from {
        adhoc.extend(parse_outpoints(f)?);
    }
    adhoc.extend(a.from_tx.iter().map(|t| CaseSource::Tx { txid: t.clone() }));
    adhoc.extend(a.from_address.iter().map(|x| CaseSource::Address {
        address: x.clone(),
        from_height: None,
    }));
    if !adhoc.is_empty() {
        cases.push(Case {
            name: "ad-hoc".into(),
            description: String::new(),
            sources: adhoc,
            created: 0,
            origin: "cli".into(),
        });
    }
    if cases.is_empty() {
        bail!("nothing to trace: name a case (`cointrail case list`) or give --from TXID:VOUT");
    }
    let mut sources = Vec::new();
    let mut labels = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let (s, r) = e.case_sources(c, i as u32 + 1)?;
        for m in &r.missing {
            eprintln!("warning: case {}: {m}", c.name);
        }
        sources.extend(s);
        labels.push(c.name.clone());
    }
    let p = TraceParams {
        model: a.model,
        fee_policy: a.fee_policy,
        max_hops: a.max_hops,
        dust_sats: a.dust_sats,
        min_fraction: a.min_fraction,
        coinjoin: a.coinjoin,
        labels,
        provenance: serde_json::Value::Null,
        max_rows: a.max_rows,
        entity_aware: a.entity_aware,
        demix: a.demix(),
    };
    let mut stops: Vec<String> = a
        .stop_at
        .iter()
        .map(|s| cointrail_risk::rules::normalize_category(s))
        .collect();
    let eth_side = cointrail_engine::evm::has_chain(&g.data_dir, "ethereum");
    if eth_side {
        // With an Ethereum index, a deposit to the router's Bitcoin vault (attributed
        // `bridge`) ends the Bitcoin leg and crosses to Ethereum.
        stops.push(cointrail_engine::xchain::BRIDGE_CATEGORY.to_string());
    }
    let t0 = std::time::Instant::now();
    let r = e.trace(&sources, p, &stops);
    let back = if eth_side {
        let rules = crate::cmd::xchain_trace::load_rules(&a, g)?;
        crate::cmd::xchain_trace::back_to_ethereum(
            &e,
            &r,
            &r_labels(&cases),
            a.model,
            &stops,
            &rules,
        )?
        .filter(|b| !b.crossed.hops.is_empty() || !b.crossed.skipped.is_empty())
    } else {
        None
    };
    let title = cases
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(" + ");
    if let Some(path) = &a.report {
        let body = match path.extension().and_then(|x| x.to_str()) {
            Some("md") => {
                cointrail_trace::report::markdown(&r, &title)
                    + &back
                        .as_ref()
                        .map(|b| format!("\n## Back to Ethereum\n\n```\n{}```\n", b.human()))
                        .unwrap_or_default()
            }
            Some("html") | Some("htm") => {
                cointrail_trace::report::html(&r, &title)
                    + &back
                        .as_ref()
                        .map(crate::cmd::xchain_trace::Back::html)
                        .unwrap_or_default()
            }
            Some("csv") => {
                cointrail_trace::report::csv(&r)
                    + &back
                        .as_ref()
                        .map(|b| {
                            "section,chain,tx,address,asset,amount,tainted,detail\n".to_string()
                                + &b.csv()
                        })
                        .unwrap_or_default()
            }
            _ => bail!(
                "--report {}: use a .md, .html or .csv file name",
                path.display()
            ),
        };
        std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    let loot = crate::cmd::trace_loot::dormant_loot(&r, &e.index);
    if g.json {
        let mut v = serde_json::to_value(&r)?;
        v["dormant_loot"] = serde_json::to_value(&loot)?;
        if let Some(b) = &back {
            v["chain"] = serde_json::json!("bitcoin+ethereum");
            v["to_ethereum"] = b.json()?;
            v["per_chain_totals"] = serde_json::json!({
                "bitcoin": serde_json::to_value(&r.totals)?,
                "ethereum": b.totals_json()?,
            });
        }
        return crate::print_json(&v);
    }
    print_summary(&r, &title, t0.elapsed().as_secs_f64());
    print!("{}", crate::cmd::trace_loot::human(&r, &loot));
    if let Some(b) = &back {
        print!("{}", b.human());
    }
    if let Some(p) = &a.report {
        println!("report written to {}", p.display());
    }
    Ok(())
}

fn r_labels(cases: &[Case]) -> Vec<String> {
    cases.iter().map(|c| c.name.clone()).collect()
}

pub fn print_summary(r: &cointrail_trace::TraceResult, title: &str, secs: f64) {
    let t = &r.totals;
    let b = crate::cmd::sim::btc;
    println!(
        "trace of {title} ({}{}{}, {} txs visited in {:.2}s)",
        r.parameters["model"].as_str().unwrap_or("?"),
        if r.parameters["entity_aware"] == true {
            " entity-aware"
        } else {
            ""
        },
        if r.parameters["soft_hops"].is_null() {
            ""
        } else {
            " + soft hops"
        },
        r.txs_visited,
        secs
    );
    let h = crate::human::btc;
    println!(
        "  stolen {} went to (these add up to the stolen amount{}):",
        h(t.source_sats),
        if r.parameters["model"] == "poison" {
            ", except under poison"
        } else {
            ""
        }
    );
    for (what, v) in [
        (
            "services reached (exchanges, OTC desks, the mixer service)",
            t.stopped_sats,
        ),
        ("CoinJoins entered (the trace stops there)", t.mixer_sats),
        ("still unspent (dormant)", t.unspent_sats),
        ("fees", t.fee_sats),
        ("cut by the hop limit or the haircut floors", t.limit_sats),
    ] {
        println!("    {:>22}  {what}", h(v));
    }
    for d in r.destinations.iter().take(10) {
        println!(
            "  {:>14.8} BTC ({:>5.1}%) → {} [{}], min {} hops, heights {}..{}",
            b(d.tainted_sats),
            d.share * 100.0,
            d.name,
            d.category,
            d.min_hops,
            d.first_height,
            d.last_height
        );
    }
    if !r.mixers.is_empty() {
        println!(
            "  {} CoinJoin/mixer transactions received taint (anonymity sets {:?})",
            r.mixers.len(),
            r.mixers
                .iter()
                .map(|m| m.anonymity_set)
                .take(5)
                .collect::<Vec<_>>()
        );
    }
    if !r.peel_chains.is_empty() {
        println!(
            "  {} peel chains (longest {} steps)",
            r.peel_chains.len(),
            r.peel_chains.iter().map(|c| c.length).max().unwrap_or(0)
        );
    }
    let dormant = r
        .outputs
        .iter()
        .filter(|o| !o.spent && o.stop_reason.is_none() && o.tainted_sats > 0)
        .count();
    println!("  {dormant} tainted outputs still unspent (dormant)");
    if r.parameters["entity_aware"] == true {
        println!(
            "  entity-aware: {} addresses taken as the thief's ({} through soft hops)",
            r.thief_entity.len(),
            r.thief_entity.iter().filter(|m| m.soft).count()
        );
    }
    if !r.parameters["soft_hops"].is_null() {
        let st = &r.soft_totals;
        println!(
            "  soft hops (not proven; kept apart from the figures above): {} followed, carrying {}",
            r.soft_hops.len(),
            h(st.source_sats)
        );
        for (what, v) in [
            ("services reached through soft hops", st.stopped_sats),
            ("CoinJoins entered", st.mixer_sats),
            ("still unspent", st.unspent_sats),
            ("fees", st.fee_sats),
            ("cut by limits", st.limit_sats),
        ] {
            println!("    {:>22}  {what}", h(v));
        }
        let unmatched = r.demix.iter().filter(|d| d.followed.is_none()).count();
        println!(
            "  {} mixer deposits ranked against withdrawals, {unmatched} without a candidate above the score",
            r.demix.len()
        );
        for hop in r.soft_hops.iter().take(5) {
            println!(
                "    {} (score {:.2}) {} → {}: {}",
                hop.rule,
                hop.score,
                hop.from.get(..20).unwrap_or(&hop.from),
                hop.to_txid.get(..16).unwrap_or(&hop.to_txid),
                h(hop.soft_sats)
            );
        }
    }
}

fn origin(
    a: &TraceArgs,
    e: &cointrail_engine::Engine,
    store: &CaseStore,
    g: &Global,
) -> Result<()> {
    let op = a
        .outpoint
        .as_deref()
        .context("usage: cointrail trace origin TXID:VOUT [--case NAME…]")?;
    let (txid, vout) = op.rsplit_once(':').context("expected TXID:VOUT")?;
    let vout: u32 = vout.parse().context("VOUT must be a number")?;
    let target = e.outpoint(txid, vout)?;
    let names: Vec<String> = if a.cases.is_empty() {
        store.list()?.into_iter().map(|c| c.name).collect()
    } else {
        a.cases.clone()
    };
    let mut found = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let c = store.get(n)?;
        let Ok((src, _)) = e.case_sources(&c, i as u32 + 1) else {
            continue;
        };
        let p = TraceParams {
            labels: names.clone(),
            max_hops: a.max_hops,
            // The output asked about must have its row, wherever it is.
            max_rows: usize::MAX,
            ..TraceParams::default()
        };
        let r = e.trace(&src, p, &[]);
        if let Some(row) = r.outputs.iter().find(|r| r.txid == txid && r.vout == vout) {
            found.push(serde_json::json!({"case": n, "tainted_sats": row.tainted_sats, "hops": row.hops, "runs": row.runs}));
        }
    }
    // Source of funds by attribution as well: which labelled parties it draws from.
    let sof = e.screen(&cointrail_engine::Subject::Output(txid.to_string(), vout))?;
    // And without any case: every origin of its satoshis under FIFO.
    let back = e.fifo_origins(
        target,
        &cointrail_trace::backward::BackParams {
            max_hops: a.max_hops.unwrap_or(6),
            max_rows: a.max_rows.min(10_000),
        },
    );
    if g.json {
        return crate::print_json(
            &serde_json::json!({"output": op, "cases": found, "fifo_backward": back, "source_of_funds": sof}),
        );
    }
    if found.is_empty() {
        println!(
            "{op} holds no satoshis of the cases {} (FIFO)",
            names.join(", ")
        );
    }
    for f in &found {
        println!(
            "{op}: {} sat of case {} ({} hops after the theft)",
            f["tainted_sats"], f["case"], f["hops"]
        );
        for r in f["runs"].as_array().into_iter().flatten() {
            println!(
                "    source satoshis {}..{} of {}",
                r["offset"],
                r["offset"].as_u64().unwrap_or(0) + r["amount"].as_u64().unwrap_or(0),
                r["label"]
            );
        }
    }
    println!(
        "where its {} sat came from (FIFO, fee last, up to {} hops back):",
        back.value, back.max_hops
    );
    for o in &back.origins {
        let what = match &o.kind {
            cointrail_trace::backward::OriginKind::Labelled { stop } => {
                format!("{} ({})", stop.name, stop.category)
            }
            cointrail_trace::backward::OriginKind::Coinbase => "newly mined".into(),
            cointrail_trace::backward::OriginKind::External => {
                "from before the indexed range".into()
            }
            cointrail_trace::backward::OriginKind::Coinjoin { protocol } => {
                format!("out of a {protocol} CoinJoin")
            }
            cointrail_trace::backward::OriginKind::HopLimit => "hop limit".into(),
        };
        println!(
            "  {:>14} sat  {} hop(s) back  {}:{} [{}..{}]  {what}",
            o.amount,
            o.hops,
            o.txid,
            o.vout,
            o.offset,
            o.offset + o.amount
        );
    }
    if back.truncated_sats > 0 {
        println!("  {} sat beyond the listed origins", back.truncated_sats);
    }
    for x in &sof.exposure {
        println!(
            "  source of funds: {} {:?} {} sat, {} hops back",
            x.category, x.exposure_type, x.sats, x.min_hops
        );
    }
    Ok(())
}
