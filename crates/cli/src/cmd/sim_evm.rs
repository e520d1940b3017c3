//! `simulate --chain ethereum`: the EVM economy of `cointrail_sim::evm`.

use crate::Global;
use anyhow::Result;
use cointrail_sim::evm::{simulate_evm, EvmSimConfig};

use super::sim::SimulateArgs;

pub fn run(a: &SimulateArgs, g: &Global) -> Result<()> {
    let cfg = EvmSimConfig {
        seed: a.seed,
        txs: a.txs,
        users: a.users,
        exchanges: a.exchanges,
        txs_per_block: a.txs_per_block,
        heist_fanout: a.heist_fanout,
        ..EvmSimConfig::default()
    };
    let t = std::time::Instant::now();
    let bar = crate::progress::bar(g, cfg.txs, "simulate");
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total.max(done));
        bar.set_position(done);
    };
    let r = simulate_evm(&cfg, &a.out, &mut progress);
    bar.finish_and_clear();
    let s = r?;
    if g.json {
        return crate::print_json(&s);
    }
    let eth = |w: &str| w.parse::<f64>().unwrap_or(0.0) / 1e18;
    let usd = |u: &str| u.parse::<f64>().unwrap_or(0.0) / 1e6;
    println!(
        "{} blocks (0–{}), {} transactions ({} failed), {:.1} MB of ethereum-etl JSON lines in {:.1}s",
        s.blocks,
        s.last_block,
        s.txs,
        s.failed_txs,
        s.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let h = &s.heist;
    println!(
        "heist: {:.2} ETH and {:.2} USDS drained from {} (exchange-{}) to {} in block {} (tx {}); fanned out to {} addresses; {} deposits at other exchanges ({:.2} ETH, {:.2} USDS); {} addresses dormant",
        eth(&h.drained_wei), usd(&h.drained_token_units), h.source, h.victim_exchange, h.main_thief, h.drain_block, h.drain_tx,
        h.fanout_addresses, h.deposits_at_exchanges, eth(&h.to_exchanges_wei), usd(&h.to_exchanges_token_units), h.dormant_addresses
    );
    println!(
        "truth: {} (addresses.tsv, heist_hops.tsv, thieves.tsv, summary.json)",
        a.out.join("truth").display()
    );
    println!(
        "ingest it with: cointrail ingest --chain ethereum {}",
        a.out.join("etl").display()
    );
    Ok(())
}
