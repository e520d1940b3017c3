//! Account-model taint (methods.md §1.7) for EVM chains: balance FIFO, LIFO and TIFO
//! (deposit queues), haircut (pro rata) and poison per (address, asset), with gas to the
//! fee sink; swaps through pooling contracts as conversion edges decoded from their logs
//! (Uniswap v2/v3, Curve, WETH); Tornado-style pools and labelled services as stops; and
//! the THORChain memo grammar that joins a swap's two chains.
//!
//! Written against the [`Ledger`] trait ("movements in order"), so it is tested on
//! hand-built chains ([`MemLedger`]) and runs unchanged over the EVM index.

pub mod ledger;
pub mod mixer;
pub mod report;
pub mod runs;
pub mod swaps;
pub mod thorchain;
pub mod tracer;
pub mod xchain;

pub use ledger::{Ledger, Leg, MemLedger, Move};
pub use runs::{Label, Run, CLEAN};
pub use tracer::{trace, AccountModel, AccountOracle, AccountTrace, NoStops, Params, Source, Stop};
