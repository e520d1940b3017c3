//! Entities from addresses: CoinJoin detection (methods.md §3.1) and common-input-ownership
//! clustering (§2.1) with every merge kept, so any two addresses' link can be explained.

pub mod arr;
pub mod change;
pub mod clusters;
pub mod coinjoin;
pub mod entities;
pub mod store;

pub use change::{ChangeRules, SoftLink};
pub use clusters::{pairwise_scores, Clustering, MergeStep, Scores};
pub use coinjoin::{classify_tx, detect_coinjoin, CoinJoin, NetParams};
pub use entities::{Entities, EntityTags, Guards, Outcome, Tag};
pub use store::SaveReport;
