//! `simulate` and `demo`: a simulated economy with heists, and the one command that shows
//! everything cointrail can do on it.

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_sim::{HeistParams, SimConfig, COIN};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail simulate --out sim1                                  # 100k txs, 5 exchanges, one heist
  cointrail simulate --txs 10000000 --out sim10m --xor           # the benchmark chain
  cointrail simulate --out s --heist 0:2000:300 --heist 1:500:900  # victim exchange:BTC:start height
The output folder gets blocks/ (a Bitcoin Core blocks directory), truth/ (ground truth, see
crates/sim/README.md) and, with --etl, etl/ (blockchain-etl JSON lines).")]
pub struct SimulateArgs {
    /// New or empty output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Transactions to simulate (coinbases included).
    #[arg(long, default_value_t = 100_000)]
    pub txs: u64,
    #[arg(long, default_value_t = 5_000)]
    pub users: u32,
    #[arg(long, default_value_t = 5)]
    pub exchanges: u32,
    /// A Lazarus-style heist: VICTIM_EXCHANGE:AMOUNT_BTC:START_HEIGHT (repeatable). Without
    /// any, one heist of 1,000 BTC from exchange 0 runs once the economy is going.
    #[arg(long, value_parser = parse_heist)]
    pub heist: Vec<HeistParams>,
    /// Unrelated small thefts from users.
    #[arg(long, default_value_t = 3)]
    pub thefts: u32,
    /// Obfuscate block files with an xor.dat key, as Bitcoin Core 28+ does.
    #[arg(long)]
    pub xor: bool,
    /// Also write blockchain-etl JSON lines.
    #[arg(long)]
    pub etl: bool,
    #[arg(long, default_value_t = 300)]
    pub txs_per_block: u32,
    /// Skip the per-address ownership file (large on big chains).
    #[arg(long)]
    pub no_address_truth: bool,
}

fn parse_heist(s: &str) -> Result<HeistParams, String> {
    let p: Vec<&str> = s.split(':').collect();
    if p.len() != 3 {
        return Err(format!(
            "'{s}': expected VICTIM_EXCHANGE:AMOUNT_BTC:START_HEIGHT, e.g. 0:1500:400"
        ));
    }
    let victim = p[0]
        .parse()
        .map_err(|_| format!("'{}' is not an exchange number", p[0]))?;
    let btc: f64 = p[1]
        .parse()
        .map_err(|_| format!("'{}' is not an amount in BTC", p[1]))?;
    if !(btc > 0.0 && btc < 21e6) {
        return Err(format!("'{}' BTC is not a possible amount", p[1]));
    }
    let start = p[2]
        .parse()
        .map_err(|_| format!("'{}' is not a height", p[2]))?;
    Ok(HeistParams::new(
        victim,
        (btc * COIN as f64).round() as u64,
        start,
    ))
}

pub fn config(a: &SimulateArgs) -> SimConfig {
    let mut c = SimConfig {
        seed: a.seed,
        txs: a.txs,
        users: a.users,
        exchanges: a.exchanges,
        thefts: a.thefts,
        xor: a.xor,
        etl: a.etl,
        txs_per_block: a.txs_per_block,
        address_truth: !a.no_address_truth,
        ..SimConfig::default()
    };
    c.heists = if a.heist.is_empty() {
        vec![HeistParams::new(
            0,
            1_000 * COIN,
            c.economy_start_height() + 50,
        )]
    } else {
        a.heist.clone()
    };
    c
}

fn run_sim(cfg: &SimConfig, out: &Path, g: &Global) -> Result<cointrail_sim::SimSummary> {
    let bar = crate::progress::bar(g, cfg.txs, "simulate");
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let r = cointrail_sim::simulate(cfg, out, &mut progress);
    bar.finish_and_clear();
    Ok(r?)
}

pub fn run_simulate(a: SimulateArgs, g: &Global) -> Result<()> {
    let cfg = config(&a);
    let t = std::time::Instant::now();
    let s = run_sim(&cfg, &a.out, g)?;
    if g.json {
        return crate::print_json(&s);
    }
    println!(
        "{} blocks, {} transactions in {} files ({:.1} MB) in {:.1}s; tip {} {}",
        s.blocks,
        s.txs,
        s.files,
        s.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        s.tip_height,
        s.tip_hash
    );
    for h in &s.heists {
        println!(
            "{} {}: {:.2} BTC stolen at height {} from entity {}; paid to exchanges {:.2}, OTC {:.2}, mixer {:.2}; dormant {:.2} BTC",
            h.kind, h.id, btc(h.stolen_sats), h.start_height, h.victim_entity, btc(h.paid_exchange_sats), btc(h.paid_otc_sats), btc(h.paid_mixer_sats), btc(h.held_dormant_sats)
        );
    }
    println!(
        "ingest it with: cointrail ingest --blocks-dir {}",
        a.out.join("blocks").display()
    );
    Ok(())
}

pub fn btc(sats: u64) -> f64 {
    sats as f64 / COIN as f64
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulate this many transactions (the default scenario has 30,000).
    #[arg(long)]
    pub txs: Option<u64>,
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
}

/// Marker that a data dir was made by `demo`, so a later demo may replace it.
const DEMO_MARK: &str = "DEMO";

pub fn run_demo(a: DemoArgs, g: &Global) -> Result<()> {
    let started = std::time::Instant::now();
    let dd = &g.data_dir;
    if dd.join("index").exists() && !dd.join(DEMO_MARK).exists() {
        bail!(
            "{} holds an index that `demo` did not make; run the demo with another --data-dir",
            dd.display()
        );
    }
    if dd.exists() {
        std::fs::remove_dir_all(dd)
            .with_context(|| format!("clearing the previous demo in {}", dd.display()))?;
    }
    std::fs::create_dir_all(dd)?;
    std::fs::write(
        dd.join(DEMO_MARK),
        "made by `cointrail demo`; the next demo replaces this folder\n",
    )?;
    let mut cfg = SimConfig::demo();
    cfg.seed = a.seed;
    if let Some(t) = a.txs {
        cfg.txs = t;
    }
    let chain = dd.join("demo-chain");
    say(
        g,
        "1/4 simulating an economy with a Lazarus-style exchange heist",
    );
    let s = run_sim(&cfg, &chain, g)?;
    say(g, &format!("    {} blocks, {} transactions written as a Bitcoin Core blocks directory (xor.dat obfuscated)", s.blocks, s.txs));

    say(g, "2/4 ingesting the blocks into the index");
    let mut index = cointrail_index::Index::open_writer(&g.index_dir())?;
    let report = cointrail_index::ingest(
        &mut index,
        cointrail_index::Source::BlocksDir(chain.join("blocks")),
        &Default::default(),
    )?;
    let stats = index.stats();
    drop(index);
    say(
        g,
        &format!(
            "    tip {} · {} txs · {} addresses",
            report.tip_height.unwrap_or(0),
            stats.tx_count,
            stats.address_count
        ),
    );

    say(g, "3/4 clustering, cases and attribution");
    let cases = crate::cmd::case::import_sim(&chain.join("truth"), g)?;
    say(
        g,
        &format!("    {} case(s): {}", cases.len(), cases.join(", ")),
    );

    let idx = cointrail_index::Index::open_reader(&g.index_dir())?;
    let cl = crate::cmd::cluster::load(g, &idx)?;
    let mut owner = vec![None; cointrail_chain::ChainView::addr_count(&idx) as usize];
    for line in std::fs::read_to_string(chain.join("truth/addresses.tsv"))?
        .lines()
        .skip(1)
    {
        let mut f = line.split('\t');
        if let (Some(a), Some(e)) = (f.next(), f.next()) {
            if let Ok(id) = idx.parse_address(a) {
                owner[id as usize] = e.parse().ok();
            }
        }
    }
    let scores = cointrail_clustering::pairwise_scores(&cl, &owner);
    say(g, &format!("    clustering (multi-input, CoinJoin-aware): {} merges, {} CoinJoins left apart; precision {:.4}, recall {:.4} against the truth", cl.merges.len(), cl.coinjoins_skipped, scores.precision, scores.recall));
    drop(idx);
    let n = write_service_attribution(&chain.join("truth"), &dd.join("attribution.tsv"))?;
    say(g, &format!("    {n} service addresses attributed (the simulated equivalent of an analytics vendor's labels)"));

    say(
        g,
        "4/4 tracing each heist (FIFO, stopping at services), against the ground truth",
    );
    let e = crate::cmd::screen::open_engine(g, None)?;
    let store = cointrail_cases::CaseStore::open(&dd.join("cases.redb"))?;
    let stops: Vec<String> = cointrail_engine::STOP_CATEGORIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut traces = Vec::new();
    for name in &cases {
        let c = store.get(name)?;
        let (src, _) = e.case_sources(&c, 1)?;
        let t0 = std::time::Instant::now();
        let r = e.trace(
            &src,
            cointrail_trace::TraceParams {
                labels: vec![name.clone()],
                ..Default::default()
            },
            &stops,
        );
        if !g.json {
            crate::cmd::trace::print_summary(&r, name, t0.elapsed().as_secs_f64());
        }
        let report = dd.join(format!("{name}.html"));
        std::fs::write(&report, cointrail_trace::report::html(&r, name))?;
        say(g, &format!("    report: {}", report.display()));
        traces.push(serde_json::json!({"case": name, "totals": r.totals, "destinations": r.destinations.len(), "peel_chains": r.peel_chains.len()}));
    }
    say(g, "    ground truth of the simulation:");
    for h in s.heists.iter().filter(|h| h.kind == "heist") {
        say(
            g,
            &format!(
                "    heist {}: {:.2} BTC stolen at height {}: {:.2} BTC to other exchanges, {:.2} to the OTC broker, {:.2} into the mixer, {:.2} still dormant",
                h.id,
                btc(h.stolen_sats),
                h.start_height,
                btc(h.paid_exchange_sats),
                btc(h.paid_otc_sats),
                btc(h.paid_mixer_sats),
                btc(h.held_dormant_sats)
            ),
        );
    }
    if g.json {
        crate::print_json(
            &serde_json::json!({"simulation": s, "ingest": report, "index": stats, "cases": cases, "clustering": scores, "traces": traces, "seconds": started.elapsed().as_secs_f64()}),
        )?;
    } else {
        println!("done in {:.1}s. Explore: cointrail --data-dir {} stats | case list | tx TXID | address ADDR", started.elapsed().as_secs_f64(), dd.display());
        if let Some(c) = cases.first() {
            println!(
                "See it in the browser: cointrail --data-dir {} serve --ui-open, then open http://127.0.0.1:8700/#/case/{c}",
                dd.display()
            );
        }
    }
    Ok(())
}

fn say(g: &Global, s: &str) {
    if !g.json {
        println!("{s}");
    }
}

/// Name the simulated services (not users, not thieves) as a vendor would: one line per
/// address of an exchange, OTC desk, mixer, payment processor or CoinJoin coordinator.
pub fn write_service_attribution(truth: &Path, out: &Path) -> Result<usize> {
    let ents = std::fs::read_to_string(truth.join("entities.tsv"))
        .context("reading truth/entities.tsv")?;
    let mut kind: std::collections::HashMap<String, (String, String)> = Default::default();
    for line in ents.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 3 {
            kind.insert(f[0].to_string(), (f[1].to_string(), f[2].to_string()));
        }
    }
    let addrs = std::fs::read_to_string(truth.join("addresses.tsv"))
        .context("reading truth/addresses.tsv (simulate without --no-address-truth)")?;
    let mut w = String::from("# address\tcategory\tname\tentity (simulated vendor attribution)\n");
    let mut n = 0;
    for line in addrs.lines().skip(1) {
        let mut f = line.split('\t');
        let (Some(a), Some(e)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some((k, name)) = kind.get(e) {
            let cat = match k.as_str() {
                "exchange" => "exchange",
                "otc" => "otc",
                "mixer" => "mixer",
                "payment_processor" => "payment_processor",
                _ => continue,
            };
            w.push_str(&format!("{a}\t{cat}\t{name}\t{e}\n"));
            n += 1;
        }
    }
    std::fs::write(out, w)?;
    Ok(n)
}
