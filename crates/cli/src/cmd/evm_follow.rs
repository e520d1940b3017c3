//! `follow --chain ethereum`: keep DATA_DIR/ethereum/ at an EVM node's head (catch up,
//! poll for new heads, roll reorganisations back) through `cointrail_evmrpc`'s follower and
//! the same ingest path as ethereum-etl files. Output follows the Bitcoin `follow`: a line
//! (or a JSON object with --json) per sync that changed something, logs on stderr.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Result};
use cointrail_evmrpc::follower::{EvmFollower, FollowConfig, SyncReport};
use cointrail_evmrpc::sink::{Appended, IndexSink};
use cointrail_evmrpc::{EvmNode, TraceApi};
use cointrail_index::evm::EvmIndex;
use serde::Serialize;

use crate::cmd::follow::FollowArgs;
use crate::Global;

/// Options of `follow` that only an EVM node has.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Ethereum (--chain ethereum)")]
pub struct EvmFollowOpts {
    /// Which call-trace API to read: `auto` (debug_traceBlockByHash with the callTracer,
    /// else trace_block), `geth` or `parity`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "geth", "parity"])]
    pub trace_api: String,
    /// The first block to index when the index is empty (a case may need only recent blocks).
    #[arg(long, default_value_t = 0)]
    pub from_block: u64,
    /// Blocks fetched per durable commit while catching up.
    #[arg(long, default_value_t = 100)]
    pub batch_blocks: usize,
}

pub fn trace_api(s: &str) -> TraceApi {
    match s {
        "geth" => TraceApi::Geth,
        "parity" => TraceApi::Parity,
        _ => TraceApi::Auto,
    }
}

/// Set by SIGINT/SIGTERM: the follower commits what it fetched and returns.
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(s) = STOP.get() {
        s.store(true, Ordering::Relaxed);
    }
    // A second Ctrl-C ends the process at once (safe too: the manifest is the commit point).
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
}

fn install_stop() -> Arc<AtomicBool> {
    let s = STOP
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    // SAFETY: the handler only stores to an atomic and resets the dispositions.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    s
}

#[derive(Serialize)]
struct SyncLine<'a> {
    chain: &'a str,
    #[serde(flatten)]
    report: &'a SyncReport,
    transactions_added: u64,
    movements_added: u64,
}

pub fn run(a: FollowArgs, g: &Global) -> Result<()> {
    let chain = a.chain.as_str();
    if a.rpc_cookie.is_some() || a.rpc_user.is_some() {
        bail!("--rpc-cookie/--rpc-user are Bitcoin Core's; an EVM node's credentials go in the URL (https://user:password@host/…) or its path (an API key)");
    }
    if a.zmq.is_some() {
        bail!("--zmq is Bitcoin Core's; an EVM node is polled for new heads (--poll-secs)");
    }
    if a.poll_secs == 0 {
        bail!("--poll-secs must be at least 1");
    }
    let node = EvmNode::connect(&a.rpc)?;
    node.set_trace_api(trace_api(&a.evm.trace_api));
    let url = node.url().to_string();
    let idx = EvmIndex::open_writer(&crate::cmd::evm::evm_dir(g, chain), chain)?;
    let mut sink = IndexSink::new(idx);
    // The alert rules (drain on 0x addresses, flagged-receive), evaluated after every
    // committed batch into the same alert log and webhook outbox as Bitcoin's.
    let engine = Rc::new(std::cell::RefCell::new(
        cointrail_follow::AlertEngine::open(
            &g.data_dir,
            cointrail_engine::live::hooks(&g.data_dir, None),
        )?,
    ));
    let store = engine.borrow().store().clone();
    let alert_error: Rc<std::cell::RefCell<Option<String>>> = Rc::default();
    {
        let engine = engine.clone();
        let err = alert_error.clone();
        let json = g.json;
        sink.on_index(move |idx| match engine.borrow_mut().sync_evm(idx) {
            Ok(r) => {
                for w in &r.warnings {
                    tracing::warn!("{w}");
                }
                for al in &r.alerts {
                    if json {
                        let _ = crate::print_json(&serde_json::json!({"alert": al}));
                    } else {
                        println!("  ALERT {} [{}] {}", &al.id[..12], al.rule_id, al.summary);
                    }
                }
            }
            Err(e) => *err.borrow_mut() = Some(e.to_string()),
        });
    }
    let totals = Rc::new(Cell::new(Appended::default()));
    let bar = crate::progress::bar(g, 0, "follow");
    {
        let totals = totals.clone();
        let bar = bar.clone();
        sink.on_commit(move |tip, t| {
            totals.set(*t);
            bar.set_position(tip);
        });
    }
    let cfg = FollowConfig {
        poll: Duration::from_secs(a.poll_secs),
        max_backoff: Duration::from_secs(a.max_backoff_secs.max(1)),
        batch_blocks: a.evm.batch_blocks.max(1),
        start: a.evm.from_block,
    };
    let mut f = EvmFollower::new(node, sink, cfg);
    let stop = install_stop();
    f.set_stop(stop.clone());

    // Refuse a node of another chain before anything is written. A node that is down is
    // an error for --once; a long-running follow waits for it (the loop retries).
    let first_look = f
        .check_node()
        .and_then(|id| Ok((id, f.node().block_number()?)));
    match first_look {
        Ok((chain_id, head)) => {
            bar.set_length(head);
            if !g.quiet && !g.json {
                eprintln!(
                    "node {url}: chain id {chain_id} at block {head}; index {}",
                    f.sink()
                        .index()
                        .tip()
                        .map_or("empty".to_string(), |t| format!("at block {t}"))
                );
            }
        }
        Err(e) if !a.once && e.is_transient() => {
            tracing::warn!("{e}; retrying with backoff");
        }
        Err(e) => return Err(e.into()),
    }
    let json = g.json;
    let printed = Cell::new(Appended::default());
    let print = |r: &SyncReport| {
        bar.finish_and_clear();
        if let Some(h) = r.node_behind {
            eprintln!("the node is at block {h}, behind the index; waiting for it to catch up");
        }
        let now = totals.get();
        let before = printed.replace(now);
        if r.blocks_added == 0 && r.blocks_rolled_back == 0 {
            return;
        }
        if json {
            let _ = crate::print_json(&SyncLine {
                chain,
                report: r,
                transactions_added: now.transactions - before.transactions,
                movements_added: now.movements - before.movements,
            });
        } else {
            if let Some(fk) = r.fork_number {
                println!(
                    "reorganisation: {} block(s) rolled back to block {fk}",
                    r.blocks_rolled_back
                );
            }
            println!(
                "tip {} {} (+{} block(s), {} transaction(s), {} movement(s))",
                r.tip_number.map(|h| h.to_string()).unwrap_or_default(),
                r.tip_hash.clone().unwrap_or_default(),
                r.blocks_added,
                now.transactions - before.transactions,
                now.movements - before.movements,
            );
        }
    };
    let check_alerts = || -> Result<()> {
        if let Some(e) = alert_error.borrow_mut().take() {
            bail!("alert rules: {e}");
        }
        Ok(())
    };
    if a.once {
        let r = f.sync_once()?;
        print(&r);
        check_alerts()?;
        let d =
            cointrail_follow::deliver_due(&store, &cointrail_follow::DeliveryConfig::default())?;
        if !g.json && (d.delivered + d.failed + d.dead) > 0 {
            println!(
                "webhooks: {} delivered, {} to retry, {} dead-lettered",
                d.delivered, d.failed, d.dead
            );
        }
        return Ok(());
    }
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    engine.borrow_mut().set_delivery_waker(wake_tx);
    let _deliverer = cointrail_follow::spawn_deliverer(
        store,
        cointrail_follow::DeliveryConfig::default(),
        wake_rx,
        stop.clone(),
    );
    if !g.quiet && !g.json {
        eprintln!(
            "following {url} (poll every {}s); Ctrl-C to stop (safe at any moment)",
            a.poll_secs
        );
    }
    f.run(&stop, print)?;
    if !g.quiet && !g.json {
        eprintln!(
            "stopped; index at block {}",
            f.sink()
                .index()
                .tip()
                .map_or("-".to_string(), |t| t.to_string())
        );
    }
    Ok(())
}
