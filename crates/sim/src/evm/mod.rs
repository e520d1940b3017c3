//! `simulate --chain ethereum`: a small EVM economy written as ethereum-etl JSON lines
//! (`etl/blocks.json`, `transactions.json` with receipt fields, `traces.json`,
//! `token_transfers.json`, `logs.json`: the schema `cointrail ingest` reads), with its
//! ground truth in `truth/`. Deterministic per seed; rows are written a block at a time,
//! so memory holds the accounts (as a node does) and one block, never the chain.
//!
//! New ETH enters only through beacon withdrawals and leaves only by the base-fee burn,
//! so at every block the native balances sum to withdrawals issued − burnt, which is
//! what the test reconciles through the movement model.

mod chain;
mod economy;
mod heist;
mod writer;
/// The Ethereum side of `simulate --chains bitcoin,ethereum`.
pub mod xchain;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::blockwriter::io;
use crate::config::SimError;
use chain::{hex_addr, Chain, ETH};
use economy::{Econ, Exchange};
pub use heist::EvmHeistSummary;
use writer::{EtlOut, Tsv};

/// What `simulate --chain ethereum` depends on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvmSimConfig {
    pub seed: u64,
    /// Transactions to write (the heist's are included; the run goes on past this only
    /// until the heist's last hop is swept).
    pub txs: u64,
    pub users: u32,
    /// Exchanges (exchange-0 is the heist's victim; at least 2).
    pub exchanges: u32,
    pub txs_per_block: u32,
    /// ETH in the victim's cold wallet, all of it drained.
    pub heist_eth: u64,
    /// Fresh addresses the drained ETH is fanned out to.
    pub heist_fanout: u32,
    /// The two-chain world (LST, THORChain-like router, bridge, Tornado-like pool); none
    /// for `simulate --chain ethereum`.
    #[serde(default)]
    pub xchain: Option<xchain::XchainEvm>,
}

impl Default for EvmSimConfig {
    fn default() -> Self {
        EvmSimConfig {
            seed: 1,
            txs: 100_000,
            users: 5_000,
            exchanges: 5,
            txs_per_block: 150,
            heist_eth: 401_000,
            heist_fanout: 300,
            xchain: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EvmSimSummary {
    pub chain: String,
    pub seed: u64,
    pub blocks: u64,
    pub last_block: u64,
    pub txs: u64,
    pub failed_txs: u64,
    pub bytes: u64,
    /// Wei issued by withdrawals, burnt by base fees, and their difference: the sum of
    /// every native balance at the tip.
    pub issued_wei: String,
    pub burnt_wei: String,
    pub supply_wei: String,
    pub token: String,
    pub token_symbol: String,
    pub token_decimals: u8,
    pub token_minted_units: String,
    pub pool: String,
    pub heist: EvmHeistSummary,
    /// Two-chain world: every crossing to Bitcoin (also `truth/crossings.tsv`).
    #[serde(skip)]
    pub crossings: Vec<xchain::Crossing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xchain: Option<xchain::XchainAddresses>,
}

fn check_out_dir(out: &Path) -> Result<(), SimError> {
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

/// Simulate into `out` (new or empty): `out/etl/*.json` and `out/truth/`. `progress` gets
/// (transactions so far, transactions wanted) after every block.
pub fn simulate_evm(
    cfg: &EvmSimConfig,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<EvmSimSummary, SimError> {
    start_evm(cfg, out, progress)?.finish()
}

/// A run whose chain is still open: the two-chain world appends the way back (router
/// outbounds of Bitcoin deposits, and what the thief does with them) after the Bitcoin run.
pub struct EvmRun {
    cfg: EvmSimConfig,
    out: std::path::PathBuf,
    e: Econ,
    heist: EvmHeistSummary,
}

/// Simulate the economy and the heist; the chain stays open until [`EvmRun::finish`].
pub fn start_evm(
    cfg: &EvmSimConfig,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<EvmRun, SimError> {
    if cfg.exchanges < 2 {
        return Err(SimError::Config("--exchanges must be at least 2 on ethereum: the thief deposits at exchanges other than the victim".into()));
    }
    if cfg.users < 10 || cfg.txs < 1_000 || cfg.txs_per_block == 0 || cfg.heist_fanout == 0 {
        return Err(SimError::Config(
            "ethereum needs --users ≥ 10, --txs ≥ 1000, a fan-out ≥ 1 and transactions per block"
                .into(),
        ));
    }
    check_out_dir(out)?;
    let truth_dir = out.join("truth");
    std::fs::create_dir_all(&truth_dir).map_err(|e| io(&truth_dir, e))?;
    let mut c = Chain::new(cfg.seed, EtlOut::create(&out.join("etl"))?)?;
    if let Some(x) = &cfg.xchain {
        c.timestamp = x.start_time;
    }
    let mut addresses = Tsv::create(truth_dir.join("addresses.tsv"), "address\tentity\trole")?;
    for (i, b) in c.builders.clone().iter().enumerate() {
        addresses.line(&format!("{}\tbuilder-{i}\tfee-recipient", hex_addr(b)))?;
    }
    let hops = Tsv::create(
        truth_dir.join("heist_hops.tsv"),
        "hop\tblock\ttx_hash\tkind\tfrom\tto\tasset\tamount",
    )?;
    let a0 = c.new_address();
    let mut e = Econ {
        c,
        users: Vec::new(),
        exchanges: Vec::new(),
        token: a0,
        issuer: a0,
        pool: a0,
        lp: a0,
        deployer: a0,
        sweeps: BTreeMap::new(),
        thief_deposits: HashSet::new(),
        addresses,
        hops,
        hop_no: 0,
        x: None,
    };
    e.addresses
        .line(&format!("{}\tusds\ttoken", hex_addr(&a0)))?;
    e.issuer = e.new_labelled("usds-issuer", "issuer")?;
    e.pool = e.new_labelled("dex", "pool")?;
    e.lp = e.new_labelled("dex-lp", "liquidity-provider")?;
    e.deployer = e.new_labelled("dex", "deployer")?;
    for k in 0..cfg.exchanges {
        let hot = e.new_labelled(&format!("exchange-{k}"), "hot")?;
        let signer = e.new_labelled(&format!("exchange-{k}"), "signer")?;
        e.exchanges.push(Exchange {
            hot,
            signer,
            deposits: HashMap::new(),
        });
    }
    for u in 0..cfg.users {
        let a = e.new_labelled(&format!("user-{u}"), "user")?;
        e.users.push(vec![a]);
    }
    let cold = e.new_labelled("exchange-0", "cold")?;
    e.bootstrap(cold, cfg.heist_eth as u128 * ETH)?;
    if let Some(x) = &cfg.xchain {
        // A fifth of the victim's value is also held as the liquid-staking token.
        let lst = cfg.heist_eth as u128 * ETH / 5;
        e.x = Some(xchain::Cross::setup(&mut e, x.clone(), cold, lst)?);
    }

    let est_blocks = (cfg.txs / cfg.txs_per_block as u64).max(20);
    let drain = e.c.number + est_blocks * 3 / 10;
    let mut h = heist::Heist::new(cold, drain, est_blocks, cfg.heist_fanout);
    use rand::Rng;
    while e.c.total_txs < cfg.txs || !h.done(&e) {
        e.staking_withdrawals();
        h.step(&mut e)?;
        e.sweeps_due()?;
        e.mixer_withdrawals_due()?;
        let per = cfg.txs_per_block as u64;
        let target = per * e.c.rng.random_range(60..140) / 100;
        let mut attempts = 0;
        let mut made = 0;
        while made < target && e.c.total_txs < cfg.txs && attempts < target * 5 && !e.c.block_full()
        {
            attempts += 1;
            if e.user_action()? {
                made += 1;
            }
        }
        e.c.close_block()?;
        progress(e.c.total_txs, cfg.txs);
    }
    let heist = h.finish(&truth_dir)?;
    Ok(EvmRun {
        cfg: cfg.clone(),
        out: out.to_path_buf(),
        e,
        heist,
    })
}

impl EvmRun {
    /// The crossings to Bitcoin made so far.
    pub fn crossings(&self) -> Vec<xchain::Crossing> {
        self.e
            .x
            .as_ref()
            .map(|x| x.crossings.clone())
            .unwrap_or_default()
    }

    /// The two-chain world's way back: each Bitcoin deposit's outbound from the vault
    /// through the router (`TransferOut` memo `OUT:<txid>`) to its memo's destination, then
    /// each destination's ETH into a deposit address of an exchange (swept as usual).
    pub fn way_back(
        &mut self,
        deposits: &[xchain::WayBackDeposit],
    ) -> Result<Vec<xchain::WayBackRelease>, SimError> {
        self.e.way_back(deposits)
    }

    pub fn finish(self) -> Result<EvmSimSummary, SimError> {
        let EvmRun { cfg, out, e, heist } = self;
        let cfg = &cfg;
        let out = out.as_path();
        let truth_dir = out.join("truth");
        finish_run(cfg, out, &truth_dir, e, heist)
    }
}

fn finish_run(
    cfg: &EvmSimConfig,
    out: &Path,
    truth_dir: &Path,
    e: Econ,
    heist: EvmHeistSummary,
) -> Result<EvmSimSummary, SimError> {
    e.write_crossings(truth_dir)?;
    let crossings =
        e.x.as_ref()
            .map(|x| x.crossings.clone())
            .unwrap_or_default();
    let xaddrs = e.x.as_ref().map(|x| x.addresses());
    let Econ {
        c,
        addresses,
        hops,
        token,
        pool,
        ..
    } = e;
    addresses.finish()?;
    hops.finish()?;
    let lst_addr = xaddrs.as_ref().map(|x| x.lst.clone());
    let summary = EvmSimSummary {
        chain: "ethereum".into(),
        seed: cfg.seed,
        blocks: c.number,
        last_block: c.number - 1,
        txs: c.total_txs,
        failed_txs: c.failed_txs,
        bytes: 0,
        issued_wei: c.issued_wei.to_string(),
        burnt_wei: c.burnt_wei.to_string(),
        supply_wei: (c.issued_wei - c.burnt_wei).to_string(),
        token: hex_addr(&token),
        token_symbol: "USDS".into(),
        token_decimals: 6,
        token_minted_units: c.minted.to_string(),
        pool: hex_addr(&pool),
        heist,
        crossings,
        xchain: xaddrs,
    };
    let bytes = c.finish()?;
    // The etl `tokens` table of the economy's tokens, so answers name them (USDS, LST)
    // as they would a mainnet token the registry knows.
    let mut tokens = vec![cointrail_evm::etl::TokenRow {
        address: token,
        symbol: Some("USDS".into()),
        name: Some("Simulated USD stablecoin".into()),
        decimals: Some(6),
        total_supply: None,
        block_number: None,
    }];
    if let Some(lst) = &lst_addr {
        if let Ok(a) = lst.parse() {
            tokens.push(cointrail_evm::etl::TokenRow {
                address: a,
                symbol: Some("LST".into()),
                name: Some("Simulated liquid staked ether".into()),
                decimals: Some(18),
                total_supply: None,
                block_number: None,
            });
        }
    }
    let etl_dir = out.join("etl");
    cointrail_evm::etl::write_tokens(&etl_dir, &tokens).map_err(|e| io(&etl_dir, e))?;
    let summary = EvmSimSummary { bytes, ..summary };
    let p = truth_dir.join("summary.json");
    let mut text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    text.push('\n');
    std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    let p = truth_dir.join("config.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(cfg).expect("config serializes") + "\n",
    )
    .map_err(|e| io(&p, e))?;
    Ok(summary)
}
