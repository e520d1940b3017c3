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
crates/sim/README.md) and, with --etl, etl/ (blockchain-etl JSON lines).
  cointrail simulate --out sim2 --txs 100000 --scenario scenarios/kucoin-structured.yaml
  cointrail simulate --chain ethereum --out eth1 --txs 200000   # ethereum-etl files + truth/
  cointrail ingest --chain ethereum eth1/etl
  cointrail simulate --chains bitcoin,ethereum --out x1 --txs 30000   # one heist across both chains
  (x1/bitcoin/blocks, x1/ethereum/etl, x1/truth/: crossings, bridges.yaml, attribution.tsv)")]
pub struct SimulateArgs {
    /// New or empty output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed: the same seed and options write the same chain, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Transactions to simulate (coinbases included).
    #[arg(long, default_value_t = 100_000)]
    pub txs: u64,
    /// Simulated users (wallets that buy, pay merchants, withdraw and deposit).
    #[arg(long, default_value_t = 5_000)]
    pub users: u32,
    /// Simulated exchanges (exchange-0 … exchange-N-1), each with hot and cold wallets.
    #[arg(long, default_value_t = 5)]
    pub exchanges: u32,
    /// A Lazarus-style heist: VICTIM_EXCHANGE:AMOUNT_BTC:START_HEIGHT (repeatable). Without
    /// any, one heist of at least 1,000 BTC from exchange 0 runs once the economy is going.
    /// The thief takes whole coins of the hot wallet, so the amount stolen is the target or
    /// a little more (the `demo`'s 1,500 BTC target takes 1,506.28 BTC with seed 2024).
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
    /// Average transactions per block once the economy runs (the first blocks hold only
    /// coinbases that fund the economy).
    #[arg(long, default_value_t = 300)]
    pub txs_per_block: u32,
    /// Skip the per-address ownership file (large on big chains).
    #[arg(long)]
    pub no_address_truth: bool,
    /// `bitcoin` (Core block files) or `ethereum` (ethereum-etl files of an EVM economy
    /// with a Bybit-style heist; see `cointrail simulate --chain ethereum --help` examples).
    #[arg(long, default_value = "bitcoin", value_parser = ["bitcoin", "ethereum"])]
    pub chain: String,
    /// Ethereum: fresh addresses the drained ETH is fanned out to.
    #[arg(long, default_value_t = 300)]
    pub heist_fanout: u32,
    /// The heists' laundering playbook, a YAML file (shares through peel chains, the mixer
    /// and CoinJoins, the mixer's fee band and delay, structured deposits, OTC, dormancy,
    /// post-mix consolidation). Without it: scenarios/default.yaml, today's behaviour.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// `bitcoin,ethereum`: the two-chain world (a Bybit-style heist on Ethereum crossing
    /// to Bitcoin through a THORChain-like router and a bridge); --txs is then Bitcoin's.
    #[arg(long, value_delimiter = ',')]
    pub chains: Vec<String>,
    /// Two-chain world: per mille of the router payouts on Bitcoin the thief swaps back to
    /// Ethereum (vault deposit with `=:ETH.ETH:0x…`, router outbound `OUT:<txid>`, then an
    /// exchange deposit); 0 for none.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub way_back_permille: u16,
    /// Two-chain world: Ethereum transactions.
    #[arg(long, default_value_t = 20_000)]
    pub eth_txs: u64,
    /// Two-chain world: ETH in the victim's cold wallet (a fifth more as the LST).
    #[arg(long, default_value_t = 20_000)]
    pub heist_eth: u64,
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
    if !a.chains.is_empty() {
        return super::sim_evm::run_two_chains(&a, g);
    }
    if a.chain == "ethereum" {
        return super::sim_evm::run(&a, g);
    }
    let mut cfg = config(&a);
    if let Some(path) = &a.scenario {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the scenario file {}", path.display()))?;
        cfg.scenario = cointrail_sim::Scenario::from_yaml(&text, &path.display().to_string())
            .map_err(anyhow::Error::msg)?;
    }
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
#[command(
    after_help = "The scenario: 2,000 users, 5 exchanges, 80 merchants, 30,000 transactions and one
heist with a 1,500 BTC target from exchange-0 (the thief takes whole coins: 1,506.28 BTC with
seed 2024), two small thefts. The data dir is replaced by the next demo.
Examples:
  cointrail --data-dir demo demo
  cointrail --data-dir demo demo --seed 7 --txs 50000"
)]
pub struct DemoArgs {
    /// Simulate this many transactions (the default scenario has 30,000).
    #[arg(long)]
    pub txs: Option<u64>,
    /// Random seed of the simulated economy (the same seed gives the same chain and figures).
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
    say(g, &format!("    {} blocks (genesis included), {} transactions (coinbases included, the genesis coinbase not) written as a Bitcoin Core blocks directory (xor.dat obfuscated)", s.blocks, s.txs));

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
            "    tip height {} · {} transactions indexed (the genesis coinbase included) · {} addresses",
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
    say(g, "      precision: of the address pairs put in one cluster, the share one owner really holds; recall: of the address pairs one owner holds, the share put in one cluster (low here: most simulated wallets never spend two of their addresses together, and change addresses are left to `cluster build --change`)");
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
        let by_cat = |c: &str| -> u64 {
            r.destinations
                .iter()
                .filter(|d| d.category == c && !is_coordinator(&d.name))
                .map(|d| d.tainted_sats)
                .sum()
        };
        let coordinators: u64 = r
            .destinations
            .iter()
            .filter(|d| is_coordinator(&d.name))
            .map(|d| d.tainted_sats)
            .sum();
        let mut t = serde_json::json!({"case": name, "totals": r.totals, "destinations": r.destinations.len(), "peel_chains": r.peel_chains.len(),
            "by_category": {"exchange": by_cat("exchange"), "otc": by_cat("otc"), "mixer": by_cat("mixer"), "coinjoin_coordinator": coordinators}});
        // Where the heist mixed stolen and clean coins, the models part ways: trace it
        // under each of them.
        let mixed = s
            .heists
            .iter()
            .find(|h| h.kind == "heist" && format!("sim-heist-{}", h.id) == *name)
            .and_then(|h| h.mixed_spend.clone());
        if let Some(m) = mixed {
            let runs = compare_models(&e, &src, name, &stops, &m);
            t["models"] = serde_json::to_value(&runs)?;
            say(g, models_side_by_side(&runs, &m).trim_end());
        }
        traces.push(t);
    }
    for h in s.heists.iter().filter(|h| h.kind == "heist") {
        let name = format!("sim-heist-{}", h.id);
        let Some(t) = traces.iter().find(|t| t["case"] == name.as_str()) else {
            continue;
        };
        say(g, &truth_beside_trace(h, t));
    }
    if g.json {
        crate::print_json(
            &serde_json::json!({"simulation": s, "ingest": report, "index": stats, "cases": cases, "clustering": scores, "traces": traces, "seconds": started.elapsed().as_secs_f64()}),
        )?;
    } else {
        println!("done in {:.1}s.", started.elapsed().as_secs_f64());
        println!("{}", explore_hint(dd));
        if let Some(c) = cases.first() {
            println!(
                "See it in the browser: cointrail --data-dir {} serve --ui-open, then open http://127.0.0.1:8700/#/case/{c}",
                dd.display()
            );
        }
    }
    Ok(())
}

/// The demo's models, in the order methods.md §1.2 names them.
const MODELS: [&str; 6] = ["fifo", "lifo", "tiho", "tifo", "haircut", "poison"];

/// One case traced under one model: its totals, the services by category, and the stolen
/// sats each output of the thief's mixed payment carries.
#[derive(serde::Serialize)]
struct ModelRun {
    model: String,
    totals: cointrail_trace::engine::Totals,
    exchange_sats: u64,
    otc_sats: u64,
    mixer_service_sats: u64,
    destinations: usize,
    /// Per output of the mixed payment (in its order): the stolen sats under this model.
    mixed_payment_tainted_sats: Vec<u64>,
}

fn compare_models(
    e: &cointrail_engine::Engine,
    src: &[cointrail_trace::Source],
    name: &str,
    stops: &[String],
    m: &cointrail_sim::MixedSpend,
) -> Vec<ModelRun> {
    MODELS
        .iter()
        .map(|model| {
            let r = e.trace(
                src,
                cointrail_trace::TraceParams {
                    model: cointrail_trace::Model::parse(model).expect("a named model"),
                    labels: vec![name.to_string()],
                    // `cointrail trace`'s default floor, so the demo and the command agree.
                    min_fraction: 0.0001,
                    ..Default::default()
                },
                stops,
            );
            let by_cat = |c: &str| -> u64 {
                r.destinations
                    .iter()
                    .filter(|d| d.category == c && !is_coordinator(&d.name))
                    .map(|d| d.tainted_sats)
                    .sum()
            };
            let per_output = m
                .outputs
                .iter()
                .map(|o| {
                    r.outputs
                        .iter()
                        .filter(|row| row.txid == m.txid && row.vout == o.vout)
                        .map(|row| row.tainted_sats)
                        .sum()
                })
                .collect();
            ModelRun {
                model: model.to_string(),
                totals: r.totals.clone(),
                exchange_sats: by_cat("exchange"),
                otc_sats: by_cat("otc"),
                mixer_service_sats: by_cat("mixer"),
                destinations: r.destinations.len(),
                mixed_payment_tainted_sats: per_output,
            }
        })
        .collect()
}

/// BTC rounded to two decimals with thousands separators, for tables that compare.
fn btc2(sats: u64) -> String {
    let cents = (sats + 500_000) / 1_000_000;
    format!(
        "{}.{:02}",
        crate::human::thousands(cents / 100),
        cents % 100
    )
}

/// The models' answers side by side, and the one transaction that makes them differ.
fn models_side_by_side(runs: &[ModelRun], m: &cointrail_sim::MixedSpend) -> String {
    let mut o = String::from(
        "    the same heist under each taint model (BTC, rounded to 0.01; exact satoshis with --json):\n",
    );
    o.push_str(&format!(
        "      {:<8} {:>12} {:>12} {:>14} {:>12} {:>12} {:>9} {:>9}\n",
        "model",
        "exchanges",
        "OTC broker",
        "mixer service",
        "CoinJoins",
        "unspent",
        "fees",
        "floors"
    ));
    for r in runs {
        let t = &r.totals;
        o.push_str(&format!(
            "      {:<8} {:>12} {:>12} {:>14} {:>12} {:>12} {:>9} {:>9}{}\n",
            r.model,
            btc2(r.exchange_sats),
            btc2(r.otc_sats),
            btc2(r.mixer_service_sats),
            btc2(t.mixer_sats),
            btc2(t.unspent_sats),
            btc2(t.fee_sats),
            btc2(t.limit_sats),
            if r.model == "poison" {
                "  (whole outputs touched, not stolen amounts)"
            } else {
                ""
            }
        ));
    }
    let kinds: Vec<&str> = m
        .inputs
        .iter()
        .map(|i| if i.2 { "stolen" } else { "clean" })
        .collect();
    o.push_str(&format!(
        "    why they differ: at height {} the thief paid {} from {} BTC of stolen coins and {} BTC of its own clean coins at once (tx {}, inputs in order: {}); the stolen part of each output under each model:\n",
        m.height,
        m.outputs
            .iter()
            .filter(|o| o.kind != "thief")
            .map(|o| o.to.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        btc2(m.stolen_in_sats),
        btc2(m.clean_in_sats),
        m.txid,
        kinds.join(", "),
    ));
    o.push_str(&format!(
        "      {:<30} {:>9}",
        "output of the payment", "value"
    ));
    for r in runs {
        o.push_str(&format!(" {:>8}", r.model));
    }
    o.push('\n');
    for (i, out) in m.outputs.iter().enumerate() {
        let to = if out.kind == "thief" {
            "change kept by the thief".to_string()
        } else {
            out.to.clone()
        };
        o.push_str(&format!(
            "      {:<30} {:>9}",
            format!("{} → {to}", out.vout),
            btc2(out.sats)
        ));
        for r in runs {
            o.push_str(&format!(
                " {:>8}",
                btc2(r.mixed_payment_tainted_sats.get(i).copied().unwrap_or(0))
            ));
        }
        o.push('\n');
    }
    let share = m.stolen_in_sats as f64 / (m.stolen_in_sats + m.clean_in_sats).max(1) as f64;
    o.push_str(&format!(
        "      FIFO fills the outputs in order from the first input's coins on, LIFO from the last input's; TIFO and TIHO spend the stolen coins first (TIHO into the largest output first); haircut gives every output the same stolen share ({:.1}%); poison marks every output whole.\n",
        share * 100.0
    ));
    o.push_str("      Everywhere else the thief moved only stolen coins (or the trace stopped at a service or CoinJoin), so there the models agree, except that haircut's floors (`--min-fraction`: branches under 1/10,000 of the stolen amount) drop the smallest branches.\n");
    o
}

/// The trace beside the simulation's truth, bucket by bucket, with why they differ. The
/// buckets do not overlap: "services" are split into exchanges, OTC and the mixer service,
/// and CoinJoins are their own bucket.
fn truth_beside_trace(h: &cointrail_sim::HeistSummary, t: &serde_json::Value) -> String {
    use crate::human::btc as b;
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let tot = &t["totals"];
    let cat = &t["by_category"];
    let trace_other = n(&tot["stopped_sats"]).saturating_sub(
        n(&cat["exchange"]) + n(&cat["otc"]) + n(&cat["mixer"]) + n(&cat["coinjoin_coordinator"]),
    );
    let rows: Vec<(&str, Option<u64>, Option<u64>)> = vec![
        (
            "exchanges (other than the victim)",
            Some(n(&cat["exchange"])),
            Some(h.paid_exchange_sats),
        ),
        (
            "the OTC broker",
            Some(n(&cat["otc"])),
            Some(h.paid_otc_sats),
        ),
        (
            "the mixer service",
            Some(n(&cat["mixer"])),
            Some(h.paid_mixer_sats),
        ),
        (
            "CoinJoin coordinators' fees",
            Some(n(&cat["coinjoin_coordinator"])),
            Some(h.paid_coinjoin_fee_sats),
        ),
        ("other services", Some(trace_other), None),
        (
            "CoinJoins entered (the trace stops there)",
            Some(n(&tot["mixer_sats"])),
            None,
        ),
        (
            "still unspent (dormant)",
            Some(n(&tot["unspent_sats"])),
            Some(h.held_dormant_sats + h.held_other_sats),
        ),
        ("fees", Some(n(&tot["fee_sats"])), Some(h.fees_sats)),
        ("cut by limits", Some(n(&tot["limit_sats"])), None),
    ];
    let show = |v: Option<u64>| v.map_or("-".to_string(), b);
    let mut o = format!(
        "    heist {}: {} stolen at height {}; the FIFO trace beside the simulation's truth:\n      {:<50} {:>22} {:>22}\n",
        h.id,
        b(h.stolen_sats),
        h.start_height,
        "where the coins went",
        "trace",
        "truth"
    );
    for (what, tr, tu) in &rows {
        o.push_str(&format!(
            "      {:<50} {:>22} {:>22}\n",
            what,
            show(*tr),
            show(*tu)
        ));
    }
    let truth_sum: u64 = rows.iter().filter_map(|r| r.2).sum();
    o.push_str(&format!(
        "      the trace's rows add up to the stolen amount; the truth's add up to {}: the stolen amount plus {} the mixer paid back to the thief, counted once going in and again where it went next, plus {} of the thief's own clean coins (some mixed with stolen ones, below)\n",
        b(truth_sum),
        b(h.returned_by_mixer_sats),
        b(h.own_clean_sats)
    ));
    o.push_str("      the trace stops at the first service or CoinJoin it reaches, so coins that passed a CoinJoin (or the mixer) on their way to an exchange count there, not at the exchange; the truth follows them to the end\n");
    o
}

/// How to go on from the demo. `cargo run` leaves no `cointrail` on the PATH, so name the
/// binary that is running (or the install command) instead of assuming one.
fn explore_hint(dd: &Path) -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("cointrail").is_file()));
    let exe = if on_path {
        "cointrail".to_string()
    } else {
        std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "target/release/cointrail".into())
    };
    let mut s = format!(
        "Explore: {exe} --data-dir {} stats | case list | trace sim-heist-0 | tx TXID | address ADDR",
        dd.display()
    );
    if !on_path {
        s.push_str("
(`cointrail` is not on your PATH: `cargo install --path crates/cli` puts it there, or use the path above)");
    }
    s
}

fn say(g: &Global, s: &str) {
    if !g.json {
        println!("{s}");
    }
}

/// The simulated CoinJoin coordinators, as `write_service_attribution` names their fee
/// addresses (category `mixer`): the demo counts their fees apart from the mixer service.
fn is_coordinator(name: &str) -> bool {
    matches!(name, "whirlpool" | "wasabi")
}

/// Name the simulated services (not users, not thieves) as a vendor would: one line per
/// address of an exchange, OTC desk, mixer, payment processor or CoinJoin coordinator (the
/// coordinator's fee addresses, category `mixer`, named after the coordinator).
pub fn write_service_attribution(truth: &Path, out: &Path) -> Result<usize> {
    use std::io::{BufRead, Write};
    let ents = std::fs::read_to_string(truth.join("entities.tsv"))
        .context("reading truth/entities.tsv")?;
    let mut kind: std::collections::HashMap<String, (&'static str, String)> = Default::default();
    for line in ents.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 3 {
            let cat = match f[1] {
                "exchange" => "exchange",
                "otc" => "otc",
                "mixer" => "mixer",
                "payment_processor" => "payment_processor",
                // The coordinators' fee addresses (Whirlpool's per-pool Tx0 fee addresses,
                // Wasabi's round fee address) are public tags on the real chain.
                "coinjoin_coordinator" => "mixer",
                _ => continue,
            };
            kind.insert(f[0].to_string(), (cat, f[2].to_string()));
        }
    }
    // Streamed line by line (issue 18's scale table: reading the whole address truth into
    // memory cost ~110 bytes per transaction of the chain), into a temporary file renamed
    // over `out` at the end, so a failure never leaves a partial attribution file.
    let addrs = std::fs::File::open(truth.join("addresses.tsv"))
        .context("reading truth/addresses.tsv (simulate without --no-address-truth)")?;
    let tmp = out.with_extension("tsv.tmp");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?,
    );
    w.write_all(b"# address\tcategory\tname\tentity (simulated vendor attribution)\n")?;
    let mut n = 0;
    let mut line = String::new();
    let mut r = std::io::BufReader::new(addrs);
    r.read_line(&mut line)
        .context("reading truth/addresses.tsv")?; // header
    loop {
        line.clear();
        if r.read_line(&mut line)
            .context("reading truth/addresses.tsv")?
            == 0
        {
            break;
        }
        let mut f = line.trim_end_matches(['\n', '\r']).split('\t');
        let (Some(a), Some(e)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some((cat, name)) = kind.get(e) {
            writeln!(w, "{a}\t{cat}\t{name}\t{e}")?;
            n += 1;
        }
    }
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(n)
}
