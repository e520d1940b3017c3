//! Simulation parameters and their validation.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const COIN: u64 = 100_000_000;

/// One Lazarus-style heist against an exchange's wallets.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HeistParams {
    /// Index of the victim exchange (0-based, `< SimConfig::exchanges`).
    pub victim_exchange: u32,
    /// Sats to steal. The drain spends whole victim UTXOs, so the stolen sum is at least
    /// this and exceeds it by less than one UTXO.
    pub amount_sats: u64,
    /// Absolute block height of the drain (≥ [`SimConfig::economy_start_height`]).
    pub start_height: u32,
    /// Share of the fanned-out coins that is left untouched for a long stretch.
    #[serde(default = "d_dormant_pct")]
    pub dormant_share_pct: u8,
    /// Blocks after the drain before dormant coins start moving again; each dormant coin
    /// wakes at a uniform point in `[dormant_blocks, 2 * dormant_blocks)`.
    #[serde(default = "d_dormant_blocks")]
    pub dormant_blocks: u32,
    /// Number of fresh addresses the drained coins are fanned out to.
    #[serde(default = "d_fanout")]
    pub fanout: u32,
    /// Two-chain world only: instead of a drain, the victim's hot wallet (a cross-chain
    /// vault) pays these outbound swaps to the thief (`router.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub router_payouts: Vec<crate::router::RouterPayout>,
    /// Two-chain world only: per mille of the router payouts the thief sends straight back
    /// through the vault to Ethereum (a THORChain swap memo `=:ETH.ETH:0x…`), chosen by a
    /// hash of the seed and the payout (no draw of the run's generator).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub way_back_permille: u16,
}

fn is_zero(x: &u16) -> bool {
    *x == 0
}

fn d_dormant_pct() -> u8 {
    40
}
fn d_dormant_blocks() -> u32 {
    100
}
fn d_fanout() -> u32 {
    120
}

impl HeistParams {
    pub fn new(victim_exchange: u32, amount_sats: u64, start_height: u32) -> HeistParams {
        HeistParams {
            victim_exchange,
            amount_sats,
            start_height,
            dormant_share_pct: d_dormant_pct(),
            dormant_blocks: d_dormant_blocks(),
            fanout: d_fanout(),
            router_payouts: Vec::new(),
            way_back_permille: 0,
        }
    }

    /// The thief's own clean coins, paid by the bootstrap like every wallet's first coins:
    /// 2% of the target, in whole 0.001 BTC. Real thieves mix such coins with stolen ones
    /// (fees, consolidations), and that is where the taint models part ways.
    pub fn own_clean_sats(&self) -> u64 {
        self.amount_sats / 50 / 100_000 * 100_000
    }
}

/// Everything a run depends on. Deserializing fills missing fields from `Default`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SimConfig {
    pub seed: u64,
    /// Total transactions to generate, coinbases included (the last block may overshoot by
    /// less than one block).
    pub txs: u64,
    pub users: u32,
    pub exchanges: u32,
    pub heists: Vec<HeistParams>,
    /// Unrelated small thefts from user wallets, spread over the chain.
    pub thefts: u32,
    /// Obfuscate the block files with a random `xor.dat` key, as Core 28+ does.
    pub xor: bool,
    /// Also write blockchain-etl JSON lines (`etl/transactions.json`, `etl/blocks.json`).
    pub etl: bool,
    /// Largest `blk*.dat` file (Core: 128 MiB).
    pub max_file_bytes: u64,
    /// Average transactions per block in the economy phase.
    pub txs_per_block: u32,
    pub merchants: u32,
    /// Initial reserve of each exchange (sats), split 20% hot, 80% cold.
    pub exchange_reserve_sats: u64,
    /// Write `truth/addresses.tsv` (owner of every address). Large on big chains.
    pub address_truth: bool,
    /// How many blocks may be held back and written out of height order (Core writes blocks
    /// as they arrive from peers). 1 writes in order.
    pub reorder_window: u32,
    /// The heists' laundering playbook (`simulate --scenario FILE`); left out of
    /// `config.json` while it is the default, so that file is as before.
    #[serde(skip_serializing_if = "crate::scenario::Scenario::is_default")]
    pub scenario: crate::scenario::Scenario,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            txs: 100_000,
            users: 5_000,
            exchanges: 5,
            heists: Vec::new(),
            thefts: 3,
            xor: false,
            etl: false,
            max_file_bytes: 128 << 20,
            txs_per_block: 300,
            merchants: 200,
            exchange_reserve_sats: 3_000 * COIN,
            address_truth: true,
            reorder_window: 8,
            scenario: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulation parameters: {0}")]
    Config(String),
    #[error("output folder {path}: {msg}")]
    OutDir { path: PathBuf, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SimConfig {
    /// The README's default scenario: ~30k transactions, one Lazarus-style heist of 1,500 BTC
    /// from exchange 0, part of it still dormant at the end. Runs in a few seconds.
    pub fn demo() -> SimConfig {
        let mut c = SimConfig {
            seed: 2024,
            txs: 30_000,
            users: 2_000,
            exchanges: 5,
            thefts: 2,
            xor: true,
            etl: false,
            txs_per_block: 100,
            merchants: 80,
            exchange_reserve_sats: 4_000 * COIN,
            ..SimConfig::default()
        };
        let start = c.economy_start_height() + 40;
        c.heists = vec![HeistParams {
            victim_exchange: 0,
            amount_sats: 1_500 * COIN,
            start_height: start,
            dormant_share_pct: 40,
            dormant_blocks: 150,
            fanout: 120,
            router_payouts: Vec::new(),
            way_back_permille: 0,
        }];
        c
    }

    /// A complete scenario for `txs` transactions (what `cointrail simulate --seed --txs`
    /// needs): users and block size scale with the chain, one 1,500 BTC heist from exchange 0
    /// starts a tenth of the way in, about half its dormant coins are still dormant at the
    /// end, and three unrelated thefts. Valid for any `txs` ≥ 1000.
    pub fn for_txs(seed: u64, txs: u64) -> SimConfig {
        let users = (txs / 20).clamp(200, 200_000) as u32;
        let mut c = SimConfig {
            seed,
            txs,
            users,
            exchanges: 5,
            thefts: 3,
            xor: true,
            txs_per_block: (txs / 300).clamp(40, 1_000) as u32,
            merchants: (users / 25).max(20),
            exchange_reserve_sats: 4_000 * COIN,
            ..SimConfig::default()
        };
        let start = c.economy_start_height();
        let span = c.estimated_end_height() - start;
        let mut h = HeistParams::new(0, 1_500 * COIN, start + span / 10);
        h.dormant_blocks = (span * 6 / 10).max(1);
        c.heists = vec![h];
        c
    }

    /// Sats handed out by the bootstrap coinbases before the economy starts.
    pub fn allocation_sats(&self) -> u64 {
        let users = self.users as u64 * USER_ALLOC_AVG;
        let exchanges = self.exchanges as u64 * self.exchange_reserve_sats;
        let services =
            MIXER_ALLOC + OTC_ALLOC + self.merchants as u64 * MERCHANT_ALLOC + WP_SEED_SATS;
        let thieves: u64 = self.heists.iter().map(HeistParams::own_clean_sats).sum();
        users + exchanges + services + thieves
    }

    /// Height of the first block with economy transactions: the bootstrap coinbases that
    /// fund every wallet come first, then 100 blocks so they mature.
    pub fn economy_start_height(&self) -> u32 {
        let per_block = crate::chainparams::SUBSIDY;
        let alloc_blocks = self.allocation_sats().div_ceil(per_block).max(1);
        (alloc_blocks + crate::chainparams::COINBASE_MATURITY as u64 + 1) as u32
    }

    /// Rough last height, for checking heist heights.
    pub fn estimated_end_height(&self) -> u32 {
        let econ_blocks = (self.txs / self.txs_per_block.max(1) as u64) as u32;
        self.economy_start_height() + econ_blocks
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        if self.users == 0 {
            return bad("users is 0: the economy needs at least 50 users".into());
        }
        if self.users < 50 {
            return bad(format!(
                "users is {}: the economy needs at least 50 users (CoinJoins need that many participants)",
                self.users
            ));
        }
        if self.users > 50_000_000 {
            return bad(format!("users is {}: at most 50,000,000", self.users));
        }
        if self.exchanges < 2 {
            return bad(format!(
                "exchanges is {}: at least 2 are needed (thieves cash out at exchanges other than the victim)",
                self.exchanges
            ));
        }
        if self.exchanges > 1000 {
            return bad(format!("exchanges is {}: at most 1000", self.exchanges));
        }
        if self.merchants == 0 {
            return bad("merchants is 0: at least 1 is needed".into());
        }
        if self.txs_per_block < 20 || self.txs_per_block > 20_000 {
            return bad(format!(
                "txs_per_block is {}: use 20..=20000",
                self.txs_per_block
            ));
        }
        if self.txs < 1_000 {
            return bad(format!("txs is {}: at least 1000", self.txs));
        }
        if self.max_file_bytes < (1 << 20) {
            return bad(format!(
                "max_file_bytes is {}: at least 1 MiB",
                self.max_file_bytes
            ));
        }
        if self.reorder_window == 0 || self.reorder_window > 1024 {
            return bad(format!(
                "reorder_window is {}: use 1..=1024",
                self.reorder_window
            ));
        }
        if self.exchange_reserve_sats < 10 * COIN {
            return bad(format!(
                "exchange_reserve_sats is {}: at least 10 BTC",
                self.exchange_reserve_sats
            ));
        }
        let alloc = self.allocation_sats();
        if alloc > 20_000_000 * COIN {
            return bad(format!(
                "the economy would need {} BTC, more than the 21M supply allows",
                alloc / COIN
            ));
        }
        let start = self.economy_start_height();
        let end = self.estimated_end_height();
        let mut per_victim = std::collections::BTreeMap::<u32, u64>::new();
        for (i, h) in self.heists.iter().enumerate() {
            if h.victim_exchange >= self.exchanges {
                return bad(format!(
                    "heist {i}: victim_exchange {} does not exist (exchanges are 0..{})",
                    h.victim_exchange, self.exchanges
                ));
            }
            if h.amount_sats < 10 * COIN {
                return bad(format!(
                    "heist {i}: amount_sats {} is below 10 BTC; use `thefts` for small thefts",
                    h.amount_sats
                ));
            }
            *per_victim.entry(h.victim_exchange).or_default() += h.amount_sats;
            let cap = self.exchange_reserve_sats / 2;
            if per_victim[&h.victim_exchange] > cap {
                return bad(format!(
                    "heist {i}: exchange {} holds {} sats and can lose at most half of that ({} sats) to heists, but the heists on it take {} sats",
                    h.victim_exchange, self.exchange_reserve_sats, cap, per_victim[&h.victim_exchange]
                ));
            }
            if h.start_height < start || h.start_height >= end {
                return bad(format!(
                    "heist {i}: start_height {} is outside the economy's heights {start}..{end} (the bootstrap ends at {start}; about {end} blocks in all)",
                    h.start_height
                ));
            }
            if h.dormant_share_pct > 90 {
                return bad(format!(
                    "heist {i}: dormant_share_pct {} is above 90",
                    h.dormant_share_pct
                ));
            }
            if h.fanout < 10 || h.fanout > 5_000 {
                return bad(format!(
                    "heist {i}: fanout {} is outside 10..=5000",
                    h.fanout
                ));
            }
            if h.dormant_blocks == 0 {
                return bad(format!("heist {i}: dormant_blocks is 0"));
            }
            let per_addr = h.amount_sats / h.fanout as u64;
            if per_addr < COIN / 10 {
                return bad(format!(
                    "heist {i}: {} sats over {} addresses is below 0.1 BTC each; lower fanout",
                    h.amount_sats, h.fanout
                ));
            }
        }
        Ok(())
    }
}

/// Average initial balance of a user.
pub const USER_ALLOC_AVG: u64 = COIN;
pub const MIXER_ALLOC: u64 = 800 * COIN;
pub const OTC_ALLOC: u64 = 300 * COIN;
pub const MERCHANT_ALLOC: u64 = COIN / 2;
/// Whirlpool remixers present from the start (20 per pool), so the first mixes have them.
pub const WP_SEED_SATS: u64 = 20 * (1_000_000 + 5_000_000 + 50_000_000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_valid() {
        SimConfig::demo().validate().unwrap();
    }

    #[test]
    fn scaled_scenarios_are_valid() {
        for txs in [1_000, 5_000, 30_000, 1_000_000, 10_000_000, 100_000_000] {
            let c = SimConfig::for_txs(3, txs);
            c.validate().unwrap_or_else(|e| panic!("{txs}: {e}"));
            assert_eq!(c.heists.len(), 1);
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_reason() {
        let mut c = SimConfig::demo();
        c.users = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("users is 0"), "{e}");

        let mut c = SimConfig::demo();
        c.heists[0].amount_sats = c.exchange_reserve_sats;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("can lose at most half"), "{e}");

        let mut c = SimConfig::demo();
        c.heists[0].victim_exchange = 9;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("does not exist"));

        let mut c = SimConfig::demo();
        c.heists[0].start_height = 3;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("start_height"));
    }
}

#[cfg(test)]
mod serde_tests {
    use super::*;

    #[test]
    fn partial_json_config_fills_defaults() {
        let c: SimConfig = serde_json::from_str(
            r#"{"seed": 9, "txs": 5000, "heists": [{"victim_exchange": 1, "amount_sats": 2000000000, "start_height": 700}]}"#,
        )
        .unwrap();
        assert_eq!(c.seed, 9);
        assert_eq!(c.users, SimConfig::default().users);
        assert_eq!(c.heists[0].fanout, 120);
        assert_eq!(c.heists[0].dormant_share_pct, 40);
    }
}
