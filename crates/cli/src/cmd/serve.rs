//! `serve`: the screening API; `keys`: its API keys.

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_service::keys::{KeyStore, Scope};
use cointrail_service::state::AppState;
use cointrail_service::ServeConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail keys create exchange-a                  # prints the key once; give it to the caller
  cointrail serve                                   # http://127.0.0.1:8700, docs at /docs
  cointrail serve --ui-open                         # the workbench at http://127.0.0.1:8700/, no key from this machine
  curl -H 'X-API-Key: ct_…' http://127.0.0.1:8700/v1/screen/address/bc1q…
  COINTRAIL_LOG_FORMAT=json cointrail serve         # one JSON object per log line

New blocks (`ingest`, `follow`), labels and cases in the data directory are picked up
without a restart; each answer comes from one consistent snapshot. SIGTERM or Ctrl-C stops
it after the requests under way are answered.")]
pub struct ServeArgs {
    /// Address and port to listen on. Anything but loopback exposes the API to the network.
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub bind: SocketAddr,
    /// Risk rule file (YAML) replacing the built-in rules.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Seconds between checks of the data directory for changes.
    #[arg(long, default_value_t = 2.0)]
    pub reload_interval: f64,
    /// Most subjects in one batch request.
    #[arg(long, default_value_t = 1000)]
    pub max_batch: usize,
    /// Default hops of indirect exposure (a request may ask for 0 to 6).
    #[arg(long, default_value_t = 3)]
    pub max_hops: u32,
    /// Work bound of each screening walk: inputs and outputs read per direction (a
    /// CoinJoin of 300 inputs costs 300). What it cuts is reported as `beyond_limit_sats`;
    /// the bound is in every answer's `parameters`.
    #[arg(long, default_value_t = cointrail_risk::exposure::DEFAULT_MAX_EDGES)]
    pub max_edges: usize,
    /// Serve without API keys (only on a loopback address, for one local user).
    #[arg(long)]
    pub no_keys: bool,
    /// Let the workbench (and the API) be used without a key from this machine only:
    /// requests from a loopback peer to a loopback host name need none; every other caller
    /// still needs a key. For one investigator on their own machine.
    #[arg(long)]
    pub ui_open: bool,
    /// Write the bound address to this file once listening (useful with port 0).
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds a client has to send a complete request head, and that a kept-alive
    /// connection may sit idle; then it is closed.
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a client has to send a request body once its head arrived (then 408).
    #[arg(long, default_value_t = 30.0)]
    pub body_timeout: f64,
    /// Connections one client address may hold open at once (one more gets 429).
    #[arg(long, default_value_t = 64)]
    pub max_conns_per_client: usize,
}

pub fn run_serve(a: ServeArgs, g: &Global) -> Result<()> {
    if a.no_keys && !a.bind.ip().is_loopback() {
        bail!("--no-keys is only allowed on a loopback address (127.0.0.1 or ::1); create keys with `cointrail keys create NAME` instead");
    }
    // An EVM chain alone is enough: the engine makes the empty Bitcoin index beside it.
    if !g.data_dir.join("index").join("manifest.json").exists()
        && !cointrail_engine::evm::EVM_CHAINS
            .iter()
            .any(|c| cointrail_engine::evm::has_chain(&g.data_dir, c))
    {
        bail!(
            "{} holds no index: build one first (`cointrail demo`, or `cointrail ingest …`)",
            g.data_dir.display()
        );
    }
    let mut cfg = ServeConfig::new(&g.data_dir);
    cfg.rules = a.rules.clone();
    cfg.reload_interval = Duration::from_secs_f64(a.reload_interval.max(0.05));
    cfg.max_batch = a.max_batch.max(1);
    cfg.max_hops = a.max_hops.min(cointrail_service::routes::screen::MAX_HOPS);
    cfg.max_edges = a.max_edges.max(1);
    cfg.require_keys = !a.no_keys;
    cfg.limits.header_read_timeout = Duration::from_secs_f64(a.header_timeout.max(0.1));
    cfg.limits.body_read_timeout = Duration::from_secs_f64(a.body_timeout.max(0.1));
    cfg.limits.max_conns_per_client = a.max_conns_per_client.max(1);
    cfg.open_on_loopback = a.ui_open;
    let t0 = std::time::Instant::now();
    let st = Arc::new(AppState::load(cfg).context("loading the data directory")?);
    let keys = st
        .keys()
        .by_id
        .values()
        .filter(|k| k.revoked.is_none())
        .count();
    if keys == 0 && !a.no_keys && !a.ui_open {
        eprintln!("note: no API keys yet; every /v1 request will get 401 until you run `cointrail keys create NAME`");
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = a.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.bind)
            .await
            .with_context(|| format!("binding {}", a.bind))?;
        let local = listener.local_addr()?;
        if let Some(f) = &a.addr_file {
            std::fs::write(f, local.to_string())
                .with_context(|| format!("writing {}", f.display()))?;
        }
        let snap = st.snapshot();
        tracing::info!(
            addr = %local,
            tip_height = ?snap.engine.index.tip_height(),
            load_ms = t0.elapsed().as_millis() as u64,
            keys,
            "serving"
        );
        eprintln!("serving http://{local} (workbench: http://{local}/, docs: http://{local}/docs)");
        cointrail_service::serve(st, listener, cointrail_service::shutdown_signal()).await
    })
}

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  cointrail keys create exchange-a                       # read-only, 1000 requests/s
  cointrail keys create analyst --scope write --rate 50  # may add labels and cases
  cointrail keys revoke exchange-a                       # by name or id; takes effect within seconds")]
pub enum KeysCmd {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// Who uses it (shown in logs and `keys list`).
        name: String,
        /// read (screening and lookups) or write (also labels and cases).
        #[arg(long, default_value = "read")]
        scope: Scope,
        /// Sustained requests per second (a batch counts one per subject).
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Requests allowed at once above the rate (default: one second's worth).
        #[arg(long)]
        burst: Option<u32>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id or name.
    Revoke { id_or_name: String },
}

pub fn run_keys(c: KeysCmd, g: &Global) -> Result<()> {
    std::fs::create_dir_all(&g.data_dir)
        .with_context(|| format!("creating {}", g.data_dir.display()))?;
    let s = KeyStore::open(&g.data_dir)?;
    match c {
        KeysCmd::Create {
            name,
            scope,
            rate,
            burst,
        } => {
            let (rec, key) = s.create(&name, scope, rate, burst.unwrap_or(rate))?;
            if g.json {
                return crate::print_json(&serde_json::json!({
                    "id": rec.id, "name": rec.name, "scope": rec.scope,
                    "rate_per_sec": rec.rate_per_sec, "burst": rec.burst, "key": key,
                }));
            }
            println!("{key}");
            eprintln!(
                "key {} for '{}' ({:?}, {} requests/s): shown only now, store it safely",
                rec.id, rec.name, rec.scope, rec.rate_per_sec
            );
        }
        KeysCmd::List => {
            let keys = s.list()?;
            if g.json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({"id": k.id, "name": k.name, "scope": k.scope, "rate_per_sec": k.rate_per_sec, "burst": k.burst, "created": k.created, "revoked": k.revoked}))
                    .collect();
                return crate::print_json(&v);
            }
            if keys.is_empty() {
                println!("no keys; create one with `cointrail keys create NAME`");
            }
            for k in keys {
                println!(
                    "{}  {:<20} {:<5} {:>6}/s  {}",
                    k.id,
                    k.name,
                    format!("{:?}", k.scope).to_lowercase(),
                    k.rate_per_sec,
                    if k.revoked.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        KeysCmd::Revoke { id_or_name } => {
            let ids = s.revoke(&id_or_name)?;
            if g.json {
                return crate::print_json(&serde_json::json!({ "revoked": ids }));
            }
            println!("revoked {}", ids.join(", "));
        }
    }
    Ok(())
}
