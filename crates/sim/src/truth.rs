//! The ground truth written beside the blocks (formats in the crate README).

use crate::blockwriter::io;
use crate::config::SimError;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What kind of entity owns an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Miner,
    Exchange,
    PaymentProcessor,
    Merchant,
    CoinjoinCoordinator,
    Mixer,
    Otc,
    User,
    Thief,
}

impl EntityKind {
    pub fn name(self) -> &'static str {
        match self {
            EntityKind::Miner => "miner",
            EntityKind::Exchange => "exchange",
            EntityKind::PaymentProcessor => "payment_processor",
            EntityKind::Merchant => "merchant",
            EntityKind::CoinjoinCoordinator => "coinjoin_coordinator",
            EntityKind::Mixer => "mixer",
            EntityKind::Otc => "otc",
            EntityKind::User => "user",
            EntityKind::Thief => "thief",
        }
    }
}

/// Per-heist totals; `stolen + returned_by_mixer + own_clean = paid_* + fees + held_dormant +
/// held_other`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeistSummary {
    pub id: u32,
    /// "heist" (Lazarus-style, from an exchange) or "theft" (small, from a user).
    pub kind: String,
    pub thief_entity: u32,
    pub victim_entity: u32,
    pub start_height: u32,
    pub stolen_sats: u64,
    pub stolen_outpoints: u64,
    pub paid_exchange_sats: u64,
    pub paid_otc_sats: u64,
    pub paid_mixer_sats: u64,
    /// Coordinator fees paid to CoinJoin coordinators (Whirlpool Tx0).
    pub paid_coinjoin_fee_sats: u64,
    /// Two-chain world: paid into the router's Bitcoin vault to swap back to Ethereum.
    #[serde(default)]
    pub paid_router_sats: u64,
    pub payments: u64,
    /// The thief's share of mining fees, and JoinMarket maker fees paid as taker.
    pub fees_sats: u64,
    pub returned_by_mixer_sats: u64,
    pub held_dormant_sats: u64,
    pub held_other_sats: u64,
    pub dormant_outputs_at_end: u64,
    pub thief_outputs: u64,
    /// The thief's own clean coins (not stolen), paid to it before the heist.
    pub own_clean_sats: u64,
    /// Where the thief mixed stolen and clean coins, if it got that far.
    pub mixed_spend: Option<MixedSpend>,
}

/// One payment from stolen coins and the thief's clean ones together, to two services plus
/// change the thief keeps: the place where FIFO, LIFO, TIHO, TIFO, haircut and poison give
/// different answers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MixedSpend {
    pub txid: String,
    pub height: u32,
    /// Inputs in their order: (outpoint, sats, stolen?).
    pub inputs: Vec<(String, u64, bool)>,
    pub stolen_in_sats: u64,
    pub clean_in_sats: u64,
    /// Outputs in their order.
    pub outputs: Vec<MixedOutput>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MixedOutput {
    pub vout: u32,
    pub sats: u64,
    /// The service's name (`exchange-3`, `otc-broker`), or `thief` for the kept change.
    pub to: String,
    /// `exchange`, `otc` or `thief`.
    pub kind: String,
}

pub struct Tsv {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Tsv {
    pub fn create(path: PathBuf, header: &str) -> Result<Tsv, SimError> {
        let f = File::create(&path).map_err(|e| io(&path, e))?;
        let mut t = Tsv {
            path,
            w: BufWriter::with_capacity(1 << 18, f),
        };
        t.line(format_args!("{header}"))?;
        Ok(t)
    }

    pub fn line(&mut self, args: std::fmt::Arguments) -> Result<(), SimError> {
        self.w
            .write_fmt(args)
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(|e| io(&self.path, e))
    }

    pub fn finish(mut self) -> Result<(), SimError> {
        self.w.flush().map_err(|e| io(&self.path, e))
    }
}

pub struct Truth {
    pub dir: PathBuf,
    pub entities: Tsv,
    pub addresses: Option<Tsv>,
    pub stolen: Tsv,
    pub thief_outputs: Tsv,
    pub payments: Tsv,
    pub tx_kinds: Tsv,
}

impl Truth {
    pub fn create(dir: &Path, addresses: bool) -> Result<Truth, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Truth {
            dir: dir.to_path_buf(),
            entities: Tsv::create(dir.join("entities.tsv"), "entity\tkind\tname")?,
            addresses: if addresses {
                Some(Tsv::create(dir.join("addresses.tsv"), "address\tentity")?)
            } else {
                None
            },
            stolen: Tsv::create(
                dir.join("stolen_outpoints.tsv"),
                "heist\toutpoint\tvalue\taddress\tdrain_txid\theight",
            )?,
            thief_outputs: Tsv::create(
                dir.join("thief_outputs.tsv"),
                "heist\toutpoint\tvalue\taddress\trole\theight",
            )?,
            payments: Tsv::create(
                dir.join("thief_payments.tsv"),
                "heist\toutpoint\tvalue\taddress\tplace_entity\tplace_kind\theight",
            )?,
            tx_kinds: Tsv::create(dir.join("tx_kinds.tsv"), "txid\tkind\theight")?,
        })
    }

    pub fn finish(self) -> Result<(), SimError> {
        self.entities.finish()?;
        if let Some(a) = self.addresses {
            a.finish()?;
        }
        self.stolen.finish()?;
        self.thief_outputs.finish()?;
        self.payments.finish()?;
        self.tx_kinds.finish()
    }
}
