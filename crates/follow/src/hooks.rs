//! What the alert rules need from crates written elsewhere (traces, risk, clustering,
//! labels, services), as small traits the service plugs in. Every hook is optional: a rule
//! whose hook is missing still works on what it was given directly (explicit outpoints or
//! addresses) and says in its alert what it could not tell.

use cointrail_chain::{ChainView, OutNum};
use serde::{Deserialize, Serialize};

/// An output a case's trace holds (its frontier): when it is spent, the funds moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedOutput {
    pub txid: String,
    pub vout: u32,
    /// Traced (tainted) value inside the output, which may be less than the output's value.
    pub sats: u64,
}

/// An account a case's trace left taint at, on an account chain (Ethereum): when it sends,
/// the funds may be moving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedAccount {
    pub chain: String,
    /// `0x…` (checksummed).
    pub address: String,
    /// `ETH` (the native coin) or the token's contract address (`0x…`, checksummed).
    pub asset: String,
    /// Tainted base units still held there (a decimal string: 256-bit amounts).
    pub amount: String,
}

/// The case's current trace frontier (cointrail-taint / cases).
pub trait TaintWatch: Send + Sync {
    /// `None` when the case does not exist.
    fn watched_outputs(&self, case: &str) -> Option<Vec<WatchedOutput>>;
    /// The accounts holding the case's taint on an account chain (a case on Ethereum) as of
    /// the end of block `through` (later blocks not traced); empty when there are none or the
    /// hook cannot tell.
    fn watched_accounts(&self, _case: &str, _through: u64) -> Vec<WatchedAccount> {
        Vec::new()
    }
}

/// Risk levels in increasing order; the risk crate maps its scores onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Severe,
}

impl RiskLevel {
    pub fn parse(s: &str) -> Result<RiskLevel, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "low" => RiskLevel::Low,
            "medium" => RiskLevel::Medium,
            "high" => RiskLevel::High,
            "severe" => RiskLevel::Severe,
            _ => {
                return Err(format!(
                    "risk level {s:?} is not one of low, medium, high, severe"
                ))
            }
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exposure {
    pub level: RiskLevel,
    /// Why: e.g. "62% indirect exposure to sanctioned: Garantex".
    pub reason: String,
}

/// Exposure of funds arriving in an output (cointrail-risk).
pub trait ExposureCheck: Send + Sync {
    fn exposure(&self, chain: &dyn ChainView, out: OutNum) -> Option<Exposure>;
}

/// Distance from an output to the nearest known service (exchange deposit, mixer…).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceHop {
    pub hops: u32,
    pub service: String,
}

pub trait ServiceOracle: Send + Sync {
    fn nearest_service(&self, chain: &dyn ChainView, out: OutNum) -> Option<ServiceHop>;
}

/// Addresses of an entity (a cluster id or a labelled entity name; cointrail-cluster/labels).
pub trait EntityResolver: Send + Sync {
    fn addresses_of(&self, entity: &str) -> Option<Vec<String>>;
}

/// The hooks an [`crate::AlertEngine`] uses; all optional.
#[derive(Default)]
pub struct Hooks {
    pub taint: Option<Box<dyn TaintWatch>>,
    pub exposure: Option<Box<dyn ExposureCheck>>,
    pub services: Option<Box<dyn ServiceOracle>>,
    pub entities: Option<Box<dyn EntityResolver>>,
}

/// An address a label import just flagged (sanctions list, scam report…): fed to
/// [`crate::AlertEngine::labels_flagged`] by the label importer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlaggedAddress {
    pub address: String,
    pub label: String,
    pub category: String,
    pub source: String,
}
