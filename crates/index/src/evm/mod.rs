//! The EVM index: one value-movement table (see `cointrail_evm::movement`) with, per
//! address, linked lists of the movements it sends and receives, in the Bitcoin index's
//! column files and commit protocol (append-only columns whose committed length is in a
//! manifest written last; in-place list heads written only after the records they point
//! at are durable, and repaired from those records after a crash).
//!
//! Layout of `<data-dir>/ethereum/` (one directory per EVM chain):
//! - `blocks.bin`   number u64 | hash 32 | timestamp u64 | first tx u64 | first movement u64
//! - `txs.bin`      hash 32 | block index u32 | status u8 (1 ok, 0 failed, 2 unknown) | first movement u64
//! - `mvs.bin`      kind u8 | asset u32 | from u32 | to u32 | amount 32 (big-endian) |
//!                  tx u40 (all ones: none) | prev of the same sender u40 | prev of the same receiver u40
//! - `addrs.bin`    20-byte address; `addr_out_head.bin`, `addr_in_head.bin`: u40 heads
//!                  (movement id + 1, 0 = empty list), changed in place
//! - `assets.bin`   20-byte token contract; asset 0 is the native coin
//! - `mv_path.bin`/`mv_path_idx.bin`: call paths of internal movements (u32 each)
//! - `tx_map.<gen>.bin`, `addr_map.<gen>.bin`: hash → id maps on disk (see `maps.rs`)
//! - `mv_acct.bin`, `acct.bin`, `acct_in_head.bin`, `acct_out_head.bin`, `addr_acct_head.bin`:
//!   running totals per (address, asset) and list positions (see `totals.rs`)
//! - `logs.bin`, `log_topics.bin`, `log_data.bin`, `tx_logs.bin`, `block_start.bin`: event
//!   logs per transaction and the ids each block started with (see `logs.rs`)
//! - `tokens.json`: what token contracts said of themselves (symbol, decimals), one etl
//!   `tokens` row per line, rewritten whole on change (see `tokens.rs`)

mod ledger;
mod logs;
mod maps;
mod node;
mod query;
mod store;
mod tokens;
mod totals;
mod walk;

pub use ledger::LedgerMove;
pub use logs::ExtraManifest;
pub use maps::MapsRef;
pub use query::{AddressSummary, AssetBalance, BlockSummary, MovementView, TxSummary};
pub use store::{EvmIndex, EvmManifest, EvmStats};
pub use totals::{AddressFacts, AssetTotals, TotalsManifest};
pub use walk::RawMovement;
