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

/// `simulate --chains bitcoin,ethereum`: both chains, the crossings joining them, and one
/// attribution file naming the services of both (for `DATA_DIR/attribution.tsv`).
pub fn run_two_chains(a: &SimulateArgs, g: &Global) -> Result<()> {
    let mut chains = a.chains.clone();
    chains.sort();
    if chains != ["bitcoin", "ethereum"] {
        anyhow::bail!(
            "--chains {}: the two-chain world is --chains bitcoin,ethereum",
            a.chains.join(",")
        );
    }
    let cfg = cointrail_sim::twochain::TwoChainConfig {
        seed: a.seed,
        btc_txs: a.txs,
        eth_txs: a.eth_txs,
        heist_eth: a.heist_eth,
        fanout: a.heist_fanout,
        way_back_permille: a.way_back_permille,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let bar = crate::progress::bar(g, cfg.eth_txs + cfg.btc_txs, "simulate");
    let mut progress = |done: u64, _total: u64| bar.set_position(done);
    let r = cointrail_sim::twochain::simulate_two_chains(&cfg, &a.out, &mut progress);
    bar.finish_and_clear();
    let s = r?;
    let truth = a.out.join("truth");
    crate::cmd::sim::write_service_attribution(
        &a.out.join("bitcoin/truth"),
        &truth.join("attribution.tsv"),
    )?;
    let evm = std::fs::read_to_string(truth.join("attribution_evm.tsv"))?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(truth.join("attribution.tsv"))?;
    std::io::Write::write_all(&mut f, evm.as_bytes())?;
    if g.json {
        return crate::print_json(&s);
    }
    println!(
        "two chains in {:.1}s: Ethereum {} txs, Bitcoin {} txs; {} crossings ({} THORChain-like, {} bridge): {:.2} ETH became {:.8} BTC",
        t.elapsed().as_secs_f64(),
        s.ethereum.txs,
        s.bitcoin.txs,
        s.crossings,
        s.router_crossings,
        s.bridge_crossings,
        s.crossed_wei.parse::<f64>().unwrap_or(0.0) / 1e18,
        s.crossed_sats as f64 / 1e8
    );
    println!(
        "way back: {} Bitcoin deposits into the vault ({:.8} BTC) paid out on Ethereum as {:.4} ETH (truth/way_back.tsv)",
        s.way_back,
        s.way_back_sats as f64 / 1e8,
        s.way_back_wei.parse::<f64>().unwrap_or(0.0) / 1e18
    );
    let d = a.out.display();
    println!("load it:\n  cointrail ingest --blocks-dir {d}/bitcoin/blocks\n  cointrail ingest --chain ethereum {d}/ethereum/etl\n  cp {d}/truth/attribution.tsv {d}/truth/bridges.yaml DATA_DIR/\n  cointrail case create bybit --from-tx {}\n  cointrail trace bybit", s.ethereum.heist.drain_tx);
    Ok(())
}
