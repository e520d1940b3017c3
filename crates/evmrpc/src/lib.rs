//! The node side of the EVM chains: read a node's JSON-RPC (geth, erigon, reth, anvil) with
//! alloy's provider, over the product's one HTTP client (`cointrail_follow::http`: reqwest
//! with rustls, so https providers work).
//!
//! - [`node`]: blocks with full transactions, receipts and call traces (geth `callTracer`,
//!   or parity `trace_block`), with errors naming the RPC method and the block.
//! - [`rows`]: a fetched block as `cointrail_evm::etl` rows, what the etl files give.
//! - [`follower`]: catch up, poll for new heads, roll reorganisations back, into any
//!   [`follower::EvmSink`]; [`sink::IndexSink`] is the EVM index's.

pub mod follower;
pub mod node;
pub mod rows;
pub mod sink;

pub use node::{EvmNode, FetchedBlock, NodeError, TraceApi, Traces};
