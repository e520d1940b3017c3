//! A simulated Bitcoin economy with heists, written as a Bitcoin Core blocks directory plus
//! the ground truth about who owns what and where stolen coins went. See the crate README.

pub mod blockwriter;
pub mod chainparams;
mod coinjoin;
pub mod config;
mod economy;
pub mod etl;
/// `simulate --chain ethereum`: an EVM economy as ethereum-etl files.
pub mod evm;
mod heist;
pub mod keys;
mod purse;
pub mod scenario;
/// The Bitcoin side of the two-chain world: vault payouts (THORChain outbounds, bridge releases).
pub mod router;
pub mod truth;
/// `simulate --chains bitcoin,ethereum`: the two-chain world.
pub mod twochain;
mod world;

pub use coinjoin::ww2_denominations;
pub use config::{HeistParams, SimConfig, SimError, COIN};
pub use scenario::Scenario;
pub use truth::{HeistSummary, MixedOutput, MixedSpend};

use blockwriter::{io, BlockWriter};
use economy::Sim;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use world::{CoinbaseOut, Out, World};

/// What a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct SimSummary {
    pub seed: u64,
    /// Blocks written, genesis included.
    pub blocks: u64,
    /// Transactions, coinbases included (genesis excluded).
    pub txs: u64,
    pub files: u32,
    pub bytes: u64,
    pub tip_height: u32,
    pub tip_hash: String,
    /// First height with transactions other than coinbases.
    pub economy_start_height: u32,
    pub entities: u64,
    pub xor: bool,
    pub etl: bool,
    /// Count of labelled transactions per kind (as in `truth/tx_kinds.tsv`).
    pub tx_kinds: BTreeMap<String, u64>,
    pub heists: Vec<HeistSummary>,
    /// UTXOs the simulator's wallets and queues held at the end (its live state).
    pub live_utxos: u64,
}

/// Refuse a folder that holds anything: the simulator never overwrites or mixes data.
fn check_out_dir(out: &Path) -> Result<(), SimError> {
    if out.exists() {
        if !out.is_dir() {
            return Err(SimError::OutDir {
                path: out.to_path_buf(),
                msg: "exists and is not a folder".into(),
            });
        }
        let mut rd = std::fs::read_dir(out).map_err(|e| io(out, e))?;
        if let Some(entry) = rd.next() {
            let name = entry
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(SimError::OutDir {
                path: out.to_path_buf(),
                msg: format!("is not empty (it holds '{name}'); give a new or empty folder"),
            });
        }
    }
    Ok(())
}

/// Simulate the chain of `cfg` into `out_dir` (which must be new or empty). `progress`
/// is called after every block with (transactions so far, transactions wanted).
pub fn simulate(
    cfg: &SimConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimSummary, SimError> {
    cfg.validate()?;
    check_out_dir(out_dir)?;
    std::fs::create_dir_all(out_dir).map_err(|e| io(out_dir, e))?;
    let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // The key has its own stream so that obfuscation changes no other byte.
    let key = if cfg.xor {
        let mut k: [u8; 8] = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0078_6f72_2e64_6174).random();
        if k == [0; 8] {
            k[0] = 1;
        }
        Some(k)
    } else {
        None
    };
    let writer_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5772_6974_6572);
    let mut writer = BlockWriter::new(
        &out_dir.join("blocks"),
        cfg.max_file_bytes,
        key,
        cfg.reorder_window as usize,
        writer_rng,
    )?;
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    writer.write_now(&bitcoin::consensus::encode::serialize(&genesis))?;
    let truth = truth::Truth::create(&out_dir.join("truth"), cfg.address_truth)?;
    let etl = if cfg.etl {
        Some(etl::EtlWriter::create(&out_dir.join("etl"))?)
    } else {
        None
    };
    let world = World::new(cfg.clone(), rng, truth, writer, etl);
    let mut sim = Sim::setup(world)?;
    sim.bootstrap(progress)?;
    run_economy(&mut sim, progress)?;
    let heists = sim.finish_heists()?;
    let economy_start_height = sim.economy_start;
    let live_utxos = sim.live_utxos();
    let mut w = sim.w;
    let tip_height = w.height - 1;
    let tip_hash = w.prev_hash.to_string();
    let writer = w.writer.take().unwrap();
    let files = writer.files();
    let bytes = writer.finish()?;
    if let Some(e) = w.etl.take() {
        e.finish()?;
    }
    let summary = SimSummary {
        seed: cfg.seed,
        blocks: w.blocks + 1,
        txs: w.tx_count,
        files,
        bytes,
        tip_height,
        tip_hash,
        economy_start_height,
        entities: w.entity_kinds.len() as u64,
        xor: cfg.xor,
        etl: cfg.etl,
        tx_kinds: w
            .kind_counts
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        heists,
        live_utxos,
    };
    w.truth.finish()?;
    let p = out_dir.join("truth").join("summary.json");
    let mut text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    text.push('\n');
    std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    let p = out_dir.join("truth").join("config.json");
    let mut text = serde_json::to_string_pretty(cfg).expect("config serializes");
    text.push('\n');
    std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    Ok(summary)
}

fn run_economy(sim: &mut Sim, progress: &mut dyn FnMut(u64, u64)) -> Result<(), SimError> {
    let total = sim.w.cfg.txs;
    let per_block = sim.w.cfg.txs_per_block as u64;
    while sim.w.tx_count + 1 < total {
        sim.w.next_feerate();
        sim.heists_step()?;
        sim.services()?;
        sim.whirlpool_mixes()?;
        if sim.w.rng.random_ratio(1, 5) {
            sim.wasabi_round()?;
        }
        if sim.w.rng.random_ratio(1, 8) {
            sim.wasabi2_round()?;
        }
        let target = (per_block as f64 * sim.w.rng.random_range(0.6..1.4)) as u64;
        let start = sim.w.tx_count;
        let mut attempts = 0u64;
        while sim.w.tx_count - start < target
            && sim.w.tx_count + 1 < total
            && attempts < target * 30
        {
            attempts += 1;
            sim.user_action()?;
        }
        let pool = sim.pick_pool();
        let value = chainparams::SUBSIDY + sim.w.block_fees;
        let key = sim.pools[pool].key;
        let h = sim.w.height;
        let txid = sim.w.close_block(vec![CoinbaseOut {
            value,
            out: Out::Key(key),
        }])?;
        sim.pools[pool].immature.push_back((
            h,
            purse::Utxo {
                txid,
                vout: 0,
                value,
                key,
            },
        ));
        progress(sim.w.tx_count, total);
    }
    Ok(())
}
