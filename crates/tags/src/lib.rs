//! Labels for addresses and transactions from real sources, kept in a versioned redb store.
//!
//! Every import is a named source at a version date. A newer version of a source closes
//! (sets `valid_to`) the labels that disappeared instead of deleting them, so a query can ask
//! what was known at a date (`as_of`).

pub mod actors;
pub mod builtin;
pub mod csv_user;
pub mod definer;
pub mod error;
pub mod import;
pub mod label;
pub mod ofac;
pub mod prices;
pub mod snapshot;
pub mod store;
pub mod tagpack;

pub use actors::{parse_actorpack, Actor};
pub use csv_user::parse_user_csv;
pub use definer::{best_definer, confidence_score, Conflict};
pub use error::TagError;
pub use import::{detect_format, import_path, today, Format, Imported};
pub use label::{
    currencies_for_address, normalize_address, normalize_currency, valid_date, Label, Target,
    EVM_CURRENCIES, MAX_LABEL_CHARS,
};
pub use ofac::{parse_address_list, parse_sdn_advanced, parse_sdn_advanced_file, OFAC_SOURCE};
pub use prices::{PriceTable, Rate};
pub use snapshot::{CompactLabel, TagSnapshot};
pub use store::{ImportStats, SourceInfo, TagStore};
pub use tagpack::{export_tagpack, parse_tagpack};
