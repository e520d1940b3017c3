//! The `cointrail` command line.

mod cmd;
mod human;
mod progress;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

// The screening service allocates many small, short-lived values per request (paths,
// rows, the JSON answer); mimalloc serves them with about half of glibc's CPU (BENCHMARKS.md,
// "Ethereum screening: fixed labels, mimalloc, prefetching the bytes that are read").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Options every command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct Global {
    /// Where the index, labels, cases and alerts live.
    #[arg(
        long,
        global = true,
        default_value = "./cointrail-data",
        env = "COINTRAIL_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Print machine-readable JSON instead of the human-readable report.
    #[arg(long, global = true)]
    pub json: bool,
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, global = true)]
    pub quiet: bool,
}

impl Global {
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

#[derive(Parser)]
#[command(name = "cointrail", version, about = "Self-hosted cryptocurrency forensics: ingest a chain, cluster addresses, label, trace stolen coins, screen deposits.", long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a heist, index it and show where the coins went: everything cointrail does.
    Demo(cmd::sim::DemoArgs),
    /// Write a simulated chain (an economy with heists) and its ground truth.
    Simulate(cmd::sim::SimulateArgs),
    /// Attribute a simulated chain's services (exchanges, OTC, mixer, processor) from its
    /// truth/ folder into DATA_DIR/attribution.tsv, as a vendor's labels would.
    SimAttribution { truth_dir: PathBuf },
    /// Add blocks to the index (Core blocks directory, block files, or blockchain-etl rows).
    Ingest(cmd::chain::IngestArgs),
    /// Parse and verify block files without indexing them.
    Inspect(cmd::chain::InspectArgs),
    /// Show a transaction: inputs, outputs, what spent each output, fee.
    Tx(cmd::chain::TxArgs),
    /// Show an address: every output it received, what spent it, balance.
    Address(cmd::chain::AddressArgs),
    /// Show a block by height or hash.
    Block(cmd::chain::BlockArgs),
    /// Summary of the index (`--chain ethereum` for the Ethereum one).
    Stats(cmd::chain::ChainArg),
    /// Check the index for consistency (after a crash, a disk problem, or to be sure).
    Verify(cmd::chain::ChainArg),
    /// The derived state commands map at open (DATA_DIR/state/): check it in full.
    #[command(subcommand)]
    State(cmd::state::StateCmd),
    /// Keep the index at the tip of a running Bitcoin Core node (or an EVM node with
    /// `--chain ethereum`) and raise alerts.
    Follow(cmd::follow::FollowArgs),
    /// Write the Bitcoin index as a Parquet dataset (`--format parquet`) or the indexed
    /// Ethereum blocks as ethereum-etl files (`--format etl`).
    Export(cmd::evm_export::ExportArgs),
    /// List and acknowledge alerts; manage alert rules and webhooks.
    #[command(subcommand)]
    Alerts(cmd::follow::AlertsCmd),
    /// Follow a case's stolen coins forward (or `trace origin TXID:VOUT`).
    Trace(cmd::trace::TraceArgs),
    /// Labels: import TagPacks, the OFAC SDN list, lists and CSV; look up, search, export.
    #[command(subcommand)]
    Labels(cmd::labels::LabelsCmd),
    /// Historical USD prices (date, asset, usd) that USD figures use; none are made up.
    #[command(subcommand)]
    Prices(cmd::prices::PricesCmd),
    /// Entities: build the clustering, show an address's cluster, explain merges, export.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCmd),
    /// Read back a Spark run (spark/): import its clusters and exposure, show, export,
    /// compare them with cointrail's own.
    #[command(subcommand)]
    Spark(cmd::spark::SparkCmd),
    /// Exposure and risk of an address, a transaction or a deposit output.
    Screen(cmd::screen::ScreenArgs),
    /// Register and manage incidents (cases) to trace.
    #[command(subcommand)]
    Case(cmd::case::CaseCmd),
    /// The screening API over HTTP (JSON, OpenAPI at /openapi.json, docs at /docs).
    Serve(cmd::serve::ServeArgs),
    /// API keys for `serve`: create, list, revoke.
    #[command(subcommand)]
    Keys(cmd::serve::KeysCmd),
}

fn main() {
    // `cointrail … | head` must end quietly when the reader goes away, as Unix tools do,
    // instead of panicking on the failed write.
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // A service logs what it does by default, with times; a command only its warnings,
    // read by a person at a terminal: without time or module.
    let service = matches!(cli.command, Command::Serve(_) | Command::Follow(_));
    let default_level = if service { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("COINTRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a terminal: logs piped to a file or a journal stay plain text.
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("COINTRAIL_LOG_FORMAT").as_deref() == Ok("json") {
        fmt.json().init();
    } else if service {
        fmt.init();
    } else {
        fmt.without_time().with_target(false).init();
    }
    let g = &cli.global;
    let result: anyhow::Result<()> = match cli.command {
        Command::Demo(a) => cmd::sim::run_demo(a, g),
        Command::Simulate(a) => cmd::sim::run_simulate(a, g),
        Command::SimAttribution { truth_dir } => {
            cmd::sim::write_service_attribution(&truth_dir, &g.data_dir.join("attribution.tsv"))
                .map(|n| println!("{n} service addresses attributed"))
        }
        Command::Ingest(a) => cmd::chain::run_ingest(a, g),
        Command::Inspect(a) => cmd::chain::run_inspect(a, g),
        Command::Tx(a) => cmd::chain::run_tx(a, g),
        Command::Address(a) => cmd::chain::run_address(a, g),
        Command::Block(a) => cmd::chain::run_block(a, g),
        Command::Stats(a) => cmd::chain::run_stats_for(a, g),
        Command::Verify(a) => cmd::chain::run_verify_for(a, g),
        Command::State(c) => cmd::state::run(c, g),
        Command::Case(c) => cmd::case::run(c, g),
        Command::Screen(a) => cmd::screen::run(a, g),
        Command::Cluster(c) => cmd::cluster::run(c, g),
        Command::Spark(c) => cmd::spark::run(c, g),
        Command::Labels(c) => cmd::labels::run(c, g),
        Command::Prices(c) => cmd::prices::run(c, g),
        Command::Trace(a) => cmd::trace::run(a, g),
        Command::Follow(a) => cmd::follow::run_follow(a, g),
        Command::Export(a) => cmd::evm_export::run(a, g),
        Command::Alerts(c) => cmd::follow::run_alerts(c, g),
        Command::Serve(a) => cmd::serve::run_serve(a, g),
        Command::Keys(c) => cmd::serve::run_keys(c, g),
    };
    if let Err(e) = result {
        eprintln!("error: {}", cointrail_engine::error_text(&e));
        std::process::exit(1);
    }
}
