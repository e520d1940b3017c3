//! The `cointrail` command line.

mod cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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

#[derive(Parser)]
#[command(name = "cointrail", version, about = "Self-hosted cryptocurrency forensics: ingest a chain, cluster addresses, label, trace stolen coins, screen deposits.", long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("COINTRAIL_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let result: anyhow::Result<()> = match cli.command {};
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
