//! `simulate --chains bitcoin,ethereum`: one heist across two chains.
//!
//! Layout (two data sets side by side, each ingested into the same data directory):
//! `OUT/ethereum/` (ethereum-etl files and the EVM truth), `OUT/bitcoin/` (Core blocks
//! directory and the Bitcoin truth), `OUT/truth/` (what joins them: `crossings.tsv`,
//! `bridges.yaml`, `attribution_evm.tsv`, `summary.json`).
//!
//! Order: the Ethereum run goes first (its clock starts where the Bitcoin economy does) and
//! records every crossing: each inbound router swap or bridge deposit names a Bitcoin
//! destination derived from the Bitcoin run's seed ([`crate::router::xchain_address`]).
//! The Bitcoin run then pays each crossing from a vault (exchange-1's hot wallet plays
//! THORChain's and the bridge's Bitcoin vault): `OUT:<inbound hash>` or `BRIDGE:<id>` in
//! an OP_RETURN, a block after the last crossing, and the existing Bitcoin laundering
//! (fan-out, peels, mixer, CoinJoins, OTC, exchanges) takes it from there.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::blockwriter::io;
use crate::chainparams::FIRST_BLOCK_TIME;
use crate::config::{HeistParams, SimConfig, SimError};
use crate::evm::xchain::WayBackDeposit;
use crate::evm::xchain::XchainEvm;
use crate::evm::{start_evm, EvmSimConfig, EvmSimSummary};
use crate::router::RouterPayout;
use crate::SimSummary;

/// The exchange whose Bitcoin hot wallet plays the cross-chain vault.
pub const VAULT_EXCHANGE: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TwoChainConfig {
    pub seed: u64,
    pub btc_txs: u64,
    pub eth_txs: u64,
    pub eth_users: u32,
    /// ETH in the victim's cold wallet (a fifth more is held as the LST).
    pub heist_eth: u64,
    /// Second-layer fan-out addresses on Ethereum (the first layer is a tenth of it).
    pub fanout: u32,
    pub sats_per_eth: u64,
    /// Per mille of the router payouts on Bitcoin that the thief swaps straight back to
    /// Ethereum (chosen by a hash of the seed and the payout).
    pub way_back_permille: u16,
}

impl Default for TwoChainConfig {
    fn default() -> Self {
        TwoChainConfig {
            seed: 1,
            btc_txs: 30_000,
            eth_txs: 20_000,
            eth_users: 1_000,
            heist_eth: 20_000,
            fanout: 300,
            sats_per_eth: 5_000_000,
            way_back_permille: 30,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TwoChainSummary {
    pub seed: u64,
    pub ethereum: EvmSimSummary,
    pub bitcoin: SimSummary,
    pub crossings: usize,
    pub router_crossings: usize,
    pub bridge_crossings: usize,
    pub crossed_wei: String,
    pub crossed_sats: u64,
    pub bitcoin_heist_start_height: u32,
    /// The way back: Bitcoin deposits into the vault swapped to Ethereum, their sats and
    /// the wei the router paid out for them.
    pub way_back: usize,
    pub way_back_sats: u64,
    pub way_back_wei: String,
}

fn check_empty(out: &Path) -> Result<(), SimError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| io(out, e))?
            .next()
            .is_some()
    {
        return Err(SimError::OutDir {
            path: out.to_path_buf(),
            msg: "is not empty; give a new or empty folder".into(),
        });
    }
    Ok(())
}

/// The Bitcoin configuration of a two-chain run, without its heist (its height depends on
/// the Ethereum run).
pub fn bitcoin_config(cfg: &TwoChainConfig) -> SimConfig {
    let mut c = SimConfig::for_txs(cfg.seed, cfg.btc_txs);
    c.heists.clear();
    c
}

pub fn simulate_two_chains(
    cfg: &TwoChainConfig,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<TwoChainSummary, SimError> {
    check_empty(out)?;
    let mut btc = bitcoin_config(cfg);
    let econ = btc.economy_start_height();
    let eth_start = FIRST_BLOCK_TIME as u64 + econ as u64 * 600;
    let eth_cfg = EvmSimConfig {
        seed: cfg.seed,
        txs: cfg.eth_txs,
        users: cfg.eth_users,
        exchanges: 5,
        txs_per_block: 150,
        heist_eth: cfg.heist_eth,
        heist_fanout: cfg.fanout,
        xchain: Some(XchainEvm {
            btc_seed: btc.seed,
            start_time: eth_start,
            sats_per_eth: cfg.sats_per_eth,
        }),
    };
    let mut run = start_evm(&eth_cfg, &out.join("ethereum"), progress)?;
    let crossings = run.crossings();
    if crossings.is_empty() {
        return Err(SimError::Config(
            "the Ethereum run made no crossing: raise the fan-out or the transactions".into(),
        ));
    }
    let last = crossings
        .iter()
        .map(|c| c.eth_time)
        .max()
        .unwrap_or(eth_start);
    // Ten blocks of margin for the Bitcoin clock's jitter (±240 s a block).
    let start = econ + ((last - eth_start) / 600) as u32 + 10;
    let payouts: Vec<RouterPayout> = crossings
        .iter()
        .map(|c| RouterPayout {
            key_id: c.key_n,
            sats: c.sats,
            memo: c.btc_memo.clone(),
        })
        .collect();
    let total: u64 = payouts.iter().map(|p| p.sats).sum();
    let mut h = HeistParams::new(VAULT_EXCHANGE, total, start);
    let span = btc.estimated_end_height().saturating_sub(start);
    if span < 60 {
        return Err(SimError::Config(format!(
            "the Bitcoin run ends about {} blocks after the crossings: raise --btc-txs",
            span
        )));
    }
    h.dormant_blocks = (span * 4 / 10).max(1);
    h.router_payouts = payouts;
    h.way_back_permille = cfg.way_back_permille;
    btc.heists = vec![h];
    let bitcoin = crate::simulate(&btc, &out.join("bitcoin"), progress)?;
    // The way back: the Bitcoin run's vault deposits, paid out on Ethereum after them.
    let deps = read_way_back(&out.join("bitcoin/truth/way_back.tsv"))?;
    let releases = run.way_back(&deps)?;
    let eth = run.finish()?;

    let truth = out.join("truth");
    std::fs::create_dir_all(&truth).map_err(|e| io(&truth, e))?;
    std::fs::copy(
        out.join("ethereum/truth/crossings.tsv"),
        truth.join("crossings.tsv"),
    )
    .map_err(|e| io(&truth, e))?;
    write_bridges(&truth, &eth)?;
    write_evm_attribution(
        &out.join("ethereum/truth/addresses.tsv"),
        &truth.join("attribution_evm.tsv"),
    )?;
    write_way_back(&truth.join("way_back.tsv"), &deps, &releases)?;
    let way_back_wei: u128 = releases
        .iter()
        .map(|r| r.wei.parse::<u128>().unwrap_or(0))
        .sum();
    let crossed_wei: u128 = eth
        .crossings
        .iter()
        .map(|c| c.wei.parse::<u128>().unwrap_or(0))
        .sum();
    let s = TwoChainSummary {
        seed: cfg.seed,
        crossings: eth.crossings.len(),
        router_crossings: eth.crossings.iter().filter(|c| c.kind == "router").count(),
        bridge_crossings: eth.crossings.iter().filter(|c| c.kind == "bridge").count(),
        crossed_wei: crossed_wei.to_string(),
        crossed_sats: total,
        bitcoin_heist_start_height: start,
        way_back: deps.len(),
        way_back_sats: deps.iter().map(|d| d.sats).sum(),
        way_back_wei: way_back_wei.to_string(),
        ethereum: eth,
        bitcoin,
    };
    let p = truth.join("summary.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&s).expect("serializes") + "\n",
    )
    .map_err(|e| io(&p, e))?;
    let p = truth.join("config.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(cfg).expect("serializes") + "\n",
    )
    .map_err(|e| io(&p, e))?;
    Ok(s)
}

/// The bridge rule of the simulated bridge (ids on both sides; releases found by their
/// OP_RETURN prefix; the rate and fee the simulator used, with room for rounding).
fn write_bridges(dir: &Path, eth: &EvmSimSummary) -> Result<(), SimError> {
    let x = eth.xchain.as_ref().expect("a two-chain run");
    let bridge = &x.bridge;
    let text = format!(
        "# The simulated generic bridge: ETH deposited on Ethereum, BTC released on Bitcoin.\n\
         bridges:\n  - name: simbridge\n    deposit:\n      chain: ethereum\n      addresses: [\"{bridge}\"]\n      id: \"log:BridgeDeposit\"\n    release:\n      chain: bitcoin\n      addresses: []\n      id: \"op_return:BRIDGE:\"\n    rate_out: \"{}\"\n    rate_in: \"1000000000000000000\"\n    tolerance_bps: 100\n    window_secs: 172800\n",
        x.sats_per_eth
    );
    let p = dir.join("bridges.yaml");
    std::fs::write(&p, text).map_err(|e| io(&p, e))
}

/// `address<TAB>category<TAB>name` for the Ethereum services: exchange deposit and hot
/// addresses, the THORChain router and vault, the bridge, the Tornado-like pool, the DEX
/// pools.
fn write_evm_attribution(addresses: &Path, out: &Path) -> Result<(), SimError> {
    let text = std::fs::read_to_string(addresses).map_err(|e| io(addresses, e))?;
    let mut s = String::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            continue;
        }
        let (cat, name) = match (f[1], f[2]) {
            (e, "deposit" | "hot") if e.starts_with("exchange-") => ("exchange", e.to_string()),
            ("thorchain", _) => ("bridge", "THORChain".to_string()),
            ("bridge", _) => ("bridge", "simbridge".to_string()),
            ("tornado", "pool") => ("mixer", "Tornado-like pool".to_string()),
            ("dex", "pool") => ("dex", "DEX pool".to_string()),
            _ => continue,
        };
        s.push_str(&format!("{}\t{cat}\t{name}\n", f[0]));
    }
    std::fs::write(out, s).map_err(|e| io(out, e))
}

/// The Bitcoin run's way-back deposits (none when the file is absent: no way back).
fn read_way_back(p: &Path) -> Result<Vec<WayBackDeposit>, SimError> {
    if !p.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(p).map_err(|e| io(p, e))?;
    let mut v = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let bad = || SimError::Config(format!("{}: bad line {line:?}", p.display()));
        if f.len() < 8 {
            return Err(bad());
        }
        let height: u64 = f[6].parse().map_err(|_| bad())?;
        v.push(WayBackDeposit {
            btc_txid: f[1].to_string(),
            sats: f[3].parse().map_err(|_| bad())?,
            memo: f[4].to_string(),
            eth_address: f[5].to_string(),
            spent: f[7].to_string(),
            // Bitcoin block times are within ±240 s of 600 s a block.
            not_before: FIRST_BLOCK_TIME as u64 + height * 600 + 600,
        });
    }
    Ok(v)
}

/// `OUT/truth/way_back.tsv`: each Bitcoin deposit, its Ethereum outbound, and where the
/// destination's ETH went (an exchange deposit address).
fn write_way_back(
    p: &Path,
    deps: &[WayBackDeposit],
    rel: &[crate::evm::xchain::WayBackRelease],
) -> Result<(), SimError> {
    let mut s = String::from(
        "btc_txid\tsats\tmemo\teth_address\teth_tx\teth_block\twei\tdeposit_tx\tdeposit_address\tdeposit_wei\texchange\tbtc_spent\n",
    );
    for (d, r) in deps.iter().zip(rel) {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            d.btc_txid,
            d.sats,
            d.memo,
            d.eth_address,
            r.eth_tx,
            r.eth_block,
            r.wei,
            r.deposit_tx.as_deref().unwrap_or(""),
            r.deposit_address.as_deref().unwrap_or(""),
            r.deposit_wei.as_deref().unwrap_or(""),
            r.exchange
                .map(|k| format!("exchange-{k}"))
                .unwrap_or_default(),
            d.spent
        ));
    }
    std::fs::write(p, s).map_err(|e| io(p, e))
}
