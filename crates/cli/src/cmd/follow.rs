//! `follow` (keep the index at a node's tip and raise alerts) and `alerts list|ack|rules|
//! webhook|dead-letters`.

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_follow::{
    spawn_deliverer, AlertEngine, AlertFilter, AlertStore, Auth, DeliveryConfig, FollowConfig,
    Follower, Hooks, RiskLevel, RpcClient, RuleKind, Webhook,
};
use cointrail_index::Index;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail follow --rpc http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie --zmq tcp://127.0.0.1:28332
  cointrail follow --rpc http://127.0.0.1:18443 --rpc-user u --rpc-password p --poll-secs 1 --once
  cointrail follow --chain ethereum --rpc http://127.0.0.1:8545            # geth/erigon/reth/anvil, debug or trace API on
  cointrail follow --chain ethereum --rpc https://eth.example/KEY --from-block 21895000 --once")]
pub struct FollowArgs {
    /// `bitcoin` (a Bitcoin Core node) or `ethereum` (an EVM node's JSON-RPC; the index is
    /// DATA_DIR/ethereum/).
    #[arg(long, default_value = "bitcoin", value_parser = ["bitcoin", "ethereum"])]
    pub chain: String,
    /// The node's JSON-RPC URL (http://host:port, or https://).
    #[arg(long, env = "COINTRAIL_RPC_URL")]
    pub rpc: String,
    /// The node's cookie file (DATADIR/.cookie, or DATADIR/<chain>/.cookie).
    #[arg(long, conflicts_with_all = ["rpc_user", "rpc_password"])]
    pub rpc_cookie: Option<PathBuf>,
    #[arg(long, requires = "rpc_password")]
    pub rpc_user: Option<String>,
    #[arg(
        long,
        env = "COINTRAIL_RPC_PASSWORD",
        requires = "rpc_user",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
    /// ZMQ endpoint publishing hashblock/rawblock (bitcoind -zmqpubrawblock=...).
    #[arg(long)]
    pub zmq: Option<String>,
    /// Poll the node this often (seconds); with --zmq this is the fallback.
    #[arg(long, default_value_t = 2)]
    pub poll_secs: u64,
    /// Longest wait between retries while the node is unreachable (seconds).
    #[arg(long, default_value_t = 60)]
    pub max_backoff_secs: u64,
    /// Catch up to the node's tip, evaluate the rules, deliver webhooks once, and exit.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub evm: crate::cmd::evm_follow::EvmFollowOpts,
}

/// The alert rules' hooks (case traces, exposure, nearest services, entities), backed by
/// this data directory's engine (`cointrail_engine::live`).
fn hooks(g: &Global) -> Hooks {
    cointrail_engine::live::hooks(&g.data_dir, None)
}

pub fn run_follow(a: FollowArgs, g: &Global) -> Result<()> {
    if a.chain == "ethereum" {
        return crate::cmd::evm_follow::run(a, g);
    }
    if a.poll_secs == 0 {
        bail!("--poll-secs must be at least 1");
    }
    let auth = match (a.rpc_cookie, a.rpc_user, a.rpc_password) {
        (Some(c), _, _) => Auth::Cookie(c),
        (None, Some(u), Some(p)) => Auth::UserPass(u, p),
        _ => Auth::None,
    };
    let rpc = RpcClient::new(&a.rpc, auth)?;
    let engine = AlertEngine::open(&g.data_dir, hooks(g))?;
    let store = engine.store().clone();
    let mut f = Follower::open(&g.index_dir(), rpc, Some(engine))?;
    // The clustering (when one was built) follows the chain too, reorganisations included.
    f.add_listener(Box::new(cointrail_engine::live::ClusterFollower::new(
        &g.data_dir,
    )));
    let cfg = FollowConfig {
        poll: Duration::from_secs(a.poll_secs),
        max_backoff: Duration::from_secs(a.max_backoff_secs.max(1)),
        ..Default::default()
    };
    let json = g.json;
    let print = move |r: &cointrail_follow::SyncReport| {
        if let Some(h) = r.node_behind {
            eprintln!("the node is at height {h}, behind the index; waiting for it to catch up");
        }
        if r.blocks_added == 0 && r.blocks_rolled_back == 0 && r.alerts == 0 {
            return;
        }
        if json {
            let _ = crate::print_json(r);
        } else {
            if let Some(fh) = r.fork_height {
                println!(
                    "reorganisation: {} block(s) rolled back to height {fh}",
                    r.blocks_rolled_back
                );
            }
            println!(
                "tip {} {} (+{} block(s)){}",
                r.tip_height.map(|h| h.to_string()).unwrap_or_default(),
                r.tip_hash.clone().unwrap_or_default(),
                r.blocks_added,
                if r.alerts > 0 {
                    format!(", {} new alert(s)", r.alerts)
                } else {
                    String::new()
                }
            );
            if let Some(e) = &r.engine {
                for al in &e.alerts {
                    println!("  ALERT {} [{}] {}", &al.id[..12], al.rule_id, al.summary);
                }
            }
        }
    };
    if a.once {
        let info = f.check_node()?;
        if !g.quiet && !g.json {
            eprintln!(
                "node {}: {} at height {}",
                f.rpc().url(),
                info.chain,
                info.blocks
            );
        }
        let r = f.sync_once()?;
        print(&r);
        let d = cointrail_follow::deliver_due(&store, &DeliveryConfig::default())?;
        if !g.json && (d.delivered + d.failed + d.dead) > 0 {
            println!(
                "webhooks: {} delivered, {} to retry, {} dead-lettered",
                d.delivered, d.failed, d.dead
            );
        }
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    if let Some(e) = f.engine_mut() {
        e.set_delivery_waker(wake_tx);
    }
    let _deliverer = spawn_deliverer(store, DeliveryConfig::default(), wake_rx, stop.clone());
    let events = a.zmq.map(|ep| {
        let (tx, rx) = std::sync::mpsc::channel();
        cointrail_follow::zmq::spawn_listener(ep, tx, stop.clone());
        rx
    });
    if !g.quiet && !g.json {
        eprintln!(
            "following {} (poll every {}s{}); Ctrl-C to stop (safe at any moment)",
            f.rpc().url(),
            a.poll_secs,
            if events.is_some() { ", ZMQ" } else { "" }
        );
    }
    f.run(&cfg, events, stop, print)?;
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum AlertsCmd {
    /// List alerts (oldest first).
    List {
        /// Include acknowledged alerts.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        rule: Option<String>,
        /// Only the newest N.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Acknowledge alerts by id (a unique prefix is enough).
    Ack {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Manage alert rules.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Manage webhooks (HMAC-SHA256 signed POSTs of each alert).
    #[command(subcommand)]
    Webhook(WebhookCmd),
    /// Deliveries that failed every retry; --requeue sends them again.
    DeadLetters {
        #[arg(long)]
        requeue: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum RulesCmd {
    /// Add a rule. It applies to blocks after the current tip.
    #[command(after_help = "Examples:
  cointrail alerts rules add traced-spend --id loot --outpoint TXID:0 --follow-hops 3
  cointrail alerts rules add traced-spend --case bybit-2025
  cointrail alerts rules add drain --id hot --address bc1q... --address bc1q... --threshold-sats 5000000000 --share-pct 30 --window-blocks 6
  cointrail alerts rules add drain --id eth-watch --address 0x... --threshold-wei 1 --window-blocks 1   # any ETH leaving it
  cointrail alerts rules add drain --id hot-wallet --entity Binance --threshold-wei 1000000000000000000000 --window-blocks 300
  cointrail alerts rules add exposure --address bc1q... --min-level high
  cointrail alerts rules add flagged-receive --category sanctions --lookback-blocks 1008")]
    Add(Box<RuleAddArgs>),
    List,
    Remove {
        id: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum RuleKindArg {
    TracedSpend,
    Drain,
    Exposure,
    FlaggedReceive,
}

#[derive(clap::Args)]
pub struct RuleAddArgs {
    pub kind: RuleKindArg,
    /// Rule name (default rule-N).
    #[arg(long)]
    pub id: Option<String>,
    /// traced-spend: watch the case's traced outputs.
    #[arg(long)]
    pub case: Option<String>,
    /// traced-spend: watch TXID:VOUT (repeatable).
    #[arg(long)]
    pub outpoint: Vec<String>,
    /// traced-spend: keep following the funds this many hops past the first spend, each
    /// spend raising an alert (default: 10 with --case, so a case's frontier moves with the
    /// chain; 0 with only --outpoint).
    #[arg(long)]
    pub follow_hops: Option<u32>,
    /// drain / exposure: a watched address (repeatable).
    #[arg(long)]
    pub address: Vec<String>,
    /// drain / exposure: a watched entity (cluster id or entity name).
    #[arg(long)]
    pub entity: Option<String>,
    /// drain: alert when the watched set sends out at least this many satoshis within the
    /// window (give this, --share-pct, or both).
    #[arg(long)]
    pub threshold_sats: Option<u64>,
    /// drain, 0x addresses (evaluated by `follow --chain ethereum`): alert when the set
    /// sends out at least this many wei of ETH within the window (1: any movement).
    #[arg(long)]
    pub threshold_wei: Option<String>,
    /// drain: alert when the watched set sends out at least this share (percent) of what
    /// it held before the window.
    #[arg(long)]
    pub share_pct: Option<f64>,
    /// drain: the sliding window, in blocks (1 = within one block).
    #[arg(long, default_value_t = 6)]
    pub window_blocks: u32,
    /// exposure: low, medium, high or severe.
    #[arg(long, default_value = "high")]
    pub min_level: String,
    /// flagged-receive: only labels of these categories (repeatable; default all).
    #[arg(long)]
    pub category: Vec<String>,
    /// flagged-receive: at import, also alert on what a newly flagged address received in
    /// the last N blocks (144 ≈ one day); new blocks are always checked.
    #[arg(long, default_value_t = 144)]
    pub lookback_blocks: u32,
    /// Free text kept with the rule and shown with its alerts (a ticket number, say).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Add the rule even though --entity names no entity known today (one you expect to
    /// label or cluster later); without it an unknown entity is refused, as it could never fire.
    #[arg(long)]
    pub force: bool,
}

/// A rule as a sentence: what it watches and when it fires.
fn describe_rule(k: &RuleKind) -> String {
    let watched = |addresses: &[String], entity: &Option<String>| {
        let mut w = Vec::new();
        match addresses.len() {
            0 => {}
            1 => w.push(format!("address {}", addresses[0])),
            n => w.push(format!("{n} addresses ({}, …)", addresses[0])),
        }
        if let Some(e) = entity {
            w.push(format!("entity {e}"));
        }
        w.join(" and ")
    };
    match k {
        RuleKind::TracedSpend {
            case,
            outpoints,
            follow_hops,
        } => {
            let mut w = Vec::new();
            if let Some(c) = case {
                w.push(format!("case {c}'s traced outputs"));
            }
            if !outpoints.is_empty() {
                w.push(format!("{} output(s) ({})", outpoints.len(), outpoints.join(", ")));
            }
            format!(
                "fires when {} are spent, following the coins {follow_hops} hop(s) further",
                w.join(" and ")
            )
        }
        RuleKind::Drain {
            addresses,
            entity,
            threshold_sats,
            threshold_wei,
            share_pct,
            window_blocks,
        } => {
            let mut t = Vec::new();
            if let Some(x) = threshold_sats {
                t.push(format!("at least {}", crate::human::btc(*x)));
            }
            if let Some(w) = threshold_wei {
                t.push(format!("at least {w} wei (0x addresses)"));
            }
            if let Some(p) = share_pct {
                t.push(format!("at least {p}% of what it held"));
            }
            format!(
                "fires when {} sends out {} within {window_blocks} block(s)",
                watched(addresses, entity),
                t.join(" or ")
            )
        }
        RuleKind::Exposure {
            addresses,
            entity,
            min_level,
        } => format!(
            "fires when {} receives funds whose exposure is {min_level:?} or worse",
            watched(addresses, entity)
        ),
        RuleKind::FlaggedReceive {
            categories,
            lookback_blocks,
        } => format!(
            "fires when funds reach an address a label import flagged ({}); at import, looks back {lookback_blocks} blocks",
            if categories.is_empty() {
                "any risky category".to_string()
            } else {
                categories.join(", ")
            }
        ),
    }
}

#[derive(clap::Subcommand)]
pub enum WebhookCmd {
    Add {
        name: String,
        /// http://host:port/path
        url: String,
        /// HMAC key (at least 16 characters); receivers check X-Cointrail-Signature.
        #[arg(long, env = "COINTRAIL_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
    },
    List,
    Remove {
        name: String,
    },
}

fn open_store(g: &Global) -> Result<AlertStore> {
    AlertStore::open(&g.data_dir).context("opening the alert store")
}

pub fn run_alerts(cmd: AlertsCmd, g: &Global) -> Result<()> {
    match cmd {
        AlertsCmd::List { all, rule, limit } => {
            let s = open_store(g)?;
            let v = s.list(&AlertFilter {
                unacked_only: !all,
                rule_id: rule,
                limit,
            })?;
            if g.json {
                return crate::print_json(&v);
            }
            if v.is_empty() {
                println!("no {}alerts", if all { "" } else { "unacknowledged " });
            }
            for a in v {
                println!(
                    "{} {:>7} [{}] {}{}{}",
                    &a.id[..12],
                    a.height,
                    a.rule_id,
                    a.summary,
                    if a.orphaned {
                        " (ORPHANED: its block left the chain)"
                    } else {
                        ""
                    },
                    if a.acked { " (acked)" } else { "" }
                );
            }
        }
        AlertsCmd::Ack { ids } => {
            let n = open_store(g)?.ack(&ids)?;
            if g.json {
                crate::print_json(&serde_json::json!({ "acknowledged": n }))?;
            } else {
                println!("{n} alert(s) acknowledged");
            }
        }
        AlertsCmd::Rules(RulesCmd::List) => {
            let v = open_store(g)?.rules()?;
            if g.json {
                return crate::print_json(&v);
            }
            if v.is_empty() {
                println!("no alert rules: `cointrail alerts rules add --help`");
            }
            let iw = v.iter().map(|r| r.id.len()).max().unwrap_or(0);
            let kw = v.iter().map(|r| r.kind_name().len()).max().unwrap_or(0);
            for r in v {
                println!(
                    "{:iw$}  {:kw$}  from height {:>7}  {}{}",
                    r.id,
                    r.kind_name(),
                    r.start_height + 1,
                    describe_rule(&r.kind),
                    if r.note.is_empty() {
                        String::new()
                    } else {
                        format!(" (note: {})", r.note)
                    }
                );
            }
        }
        AlertsCmd::Rules(RulesCmd::Remove { id }) => {
            let mut e = AlertEngine::open(&g.data_dir, hooks(g))?;
            e.remove_rule(&id)?;
            if !g.json {
                println!("rule {id} removed");
            }
        }
        AlertsCmd::Rules(RulesCmd::Add(a)) => {
            let h = hooks(g);
            if let Some(ent) = &a.entity {
                let known = h
                    .entities
                    .as_ref()
                    .and_then(|r| r.addresses_of(ent))
                    .is_some_and(|v| !v.is_empty());
                if !known && !a.force {
                    bail!("entity {ent:?} is not known: no cluster id or labelled entity of that name (see `cointrail labels search` and `cointrail cluster show ADDRESS`); give --force to add the rule for an entity you will label later");
                }
                if !known {
                    eprintln!("warning: entity {ent:?} is not known yet; the rule fires once it is (--force)");
                }
            }
            let kind = match a.kind {
                RuleKindArg::TracedSpend => RuleKind::TracedSpend {
                    follow_hops: a
                        .follow_hops
                        .unwrap_or(if a.case.is_some() { 10 } else { 0 }),
                    case: a.case,
                    outpoints: a.outpoint,
                },
                RuleKindArg::Drain => RuleKind::Drain {
                    addresses: a.address,
                    entity: a.entity,
                    threshold_sats: a.threshold_sats,
                    threshold_wei: a.threshold_wei.clone(),
                    share_pct: a.share_pct,
                    window_blocks: a.window_blocks,
                },
                RuleKindArg::Exposure => RuleKind::Exposure {
                    addresses: a.address,
                    entity: a.entity,
                    min_level: RiskLevel::parse(&a.min_level).map_err(anyhow::Error::msg)?,
                },
                RuleKindArg::FlaggedReceive => RuleKind::FlaggedReceive {
                    categories: a.category,
                    lookback_blocks: a.lookback_blocks,
                },
            };
            // Rules are kept beside the Bitcoin index; a data directory with only an EVM
            // chain gets the empty one every command opens (made once, by Engine::open).
            cointrail_engine::Engine::open(&g.data_dir)?;
            let index = Index::open_reader(&g.index_dir())?;
            let mut e = AlertEngine::open(&g.data_dir, h)?;
            let r = e.add_rule(&index, a.id, kind, a.note)?;
            if g.json {
                crate::print_json(&r)?;
            } else {
                println!(
                    "rule {} ({}) added; it applies from height {}",
                    r.id,
                    r.kind_name(),
                    r.start_height + 1
                );
            }
        }
        AlertsCmd::Webhook(WebhookCmd::Add { name, url, secret }) => {
            open_store(g)?.add_webhook(&Webhook {
                name: name.clone(),
                url,
                secret,
            })?;
            if !g.json {
                println!("webhook {name} added");
            }
        }
        AlertsCmd::Webhook(WebhookCmd::List) => {
            let v: Vec<_> = open_store(g)?
                .webhooks()?
                .into_iter()
                .map(|w| serde_json::json!({"name": w.name, "url": w.url}))
                .collect();
            if g.json {
                return crate::print_json(&v);
            }
            for w in v {
                println!(
                    "{} {}",
                    w["name"].as_str().unwrap_or(""),
                    w["url"].as_str().unwrap_or("")
                );
            }
        }
        AlertsCmd::Webhook(WebhookCmd::Remove { name }) => {
            if !open_store(g)?.remove_webhook(&name)? {
                bail!("no webhook named {name}");
            }
        }
        AlertsCmd::DeadLetters { requeue } => {
            let s = open_store(g)?;
            if requeue {
                let n = s.requeue_dead()?;
                println!("{n} delivery(ies) queued again; `cointrail follow` sends them");
                return Ok(());
            }
            let v = s.dead_letters()?;
            if g.json {
                return crate::print_json(&v);
            }
            for d in v {
                println!(
                    "{} {} after {} attempts: {}",
                    d.webhook, d.alert_id, d.attempts, d.last_error
                );
            }
        }
    }
    Ok(())
}
