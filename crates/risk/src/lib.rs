//! Exposure and risk: where an address's, a transaction's or a deposit's funds came from
//! (and went to), by category, split into ownership, direct and indirect exposure, and a
//! risk level from an ordered rule set an operator can replace. The method is
//! `../shared/specs/methods.md` §4; every number in a result can be followed back through
//! the rows and paths it carries.
//!
//! The engine reads the chain through `ChainView` and learns who is who through two small
//! traits, so it does not depend on how clusters, labels or traces are stored.

pub mod account;
pub mod exposure;
pub mod rules;
pub mod usd;

pub use exposure::{ExposureParams, ExposureRow, Screener, Screening};
pub use rules::{Level, RuleSet};
pub use usd::{NoPrices, UsdPrices, UsdRate};

use cointrail_chain::view::{AddrId, OutNum};
use serde::Serialize;

/// Who controls an address, as far as the labels (through its cluster) tell.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Attribution {
    /// Cluster (entity) id, when the address is clustered.
    pub entity: Option<u64>,
    pub name: String,
    /// A category name (`exchange`, `mixer`, `sanctions`, `ransomware`, …; see
    /// [`rules::normalize_category`] for the synonyms understood).
    pub category: String,
    /// Where the label comes from (source and version), for the report.
    pub source: String,
    /// When a source first carried the label (unix seconds), for the record; screening
    /// applies the label to earlier funds too.
    /// A withdrawn label (a delisted sanctions entry) has a `valid_to`: funds moved from
    /// then on are reported apart, as `delisted`.
    pub valid_from: Option<u64>,
    pub valid_to: Option<u64>,
}

/// A label as screening reports it: normalized category, whether it is delisted for the
/// funds in question, the names of the attributions.
pub type FixedLabelParts = (String, bool, Vec<String>);
/// A label worked out once and shared by every screening ([`Attributor::fixed_label`]).
pub type FixedLabel = std::sync::Arc<FixedLabelParts>;

/// Attribution of addresses; implemented over the cluster store and the label store.
pub trait Attributor {
    fn attribute(&self, addr: AddrId) -> Vec<Attribution>;
    /// Whether `addr` has any attribution (without copying them: the account walk asks this
    /// of every counterparty it meets, and most have none).
    fn is_labelled(&self, addr: AddrId) -> bool {
        !self.attribute(addr).is_empty()
    }
    /// Hand `addr`'s attributions to `f` (an implementation holding them can lend them
    /// instead of copying; the account walk asks this of each labelled counterparty).
    fn with_attributions(&self, addr: AddrId, f: &mut dyn FnMut(&[Attribution])) {
        f(&self.attribute(addr))
    }
    /// `addr`'s label when it is one that neither the rules nor the time can change (a
    /// single attribution without a `valid_to`), worked out ahead by an implementation that
    /// holds its attributions; None: ask [`Self::with_attributions`].
    fn fixed_label(&self, _addr: AddrId) -> Option<FixedLabel> {
        None
    }
    /// Unix time of a block height, to judge label validity (a delisting). Heights stand
    /// in for times unless the implementation knows block times.
    fn time_of_height(&self, height: u32) -> u64 {
        height as u64
    }
}

/// Taint of traced cases on an output: (case name, tainted sats, hops from the theft).
pub trait CaseTaint {
    fn taint(&self, out: OutNum) -> Vec<(String, u64, u32)>;
}

/// No labels and no cases: every address is unattributed.
pub struct Nobody;
impl Attributor for Nobody {
    fn attribute(&self, _: AddrId) -> Vec<Attribution> {
        Vec::new()
    }
}
impl CaseTaint for Nobody {
    fn taint(&self, _: OutNum) -> Vec<(String, u64, u32)> {
        Vec::new()
    }
}
