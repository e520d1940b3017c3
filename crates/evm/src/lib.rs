//! EVM chains as cointrail sees them: the ethereum-etl rows (the one shape every EVM
//! source is converted into, files and node RPC alike), readers for those files, and
//! the value-movement model the index stores. No storage lives here.

pub mod address;
pub mod etl;
pub mod movement;
pub mod tokens;

pub use address::{parse_address, AddressError};
pub use alloy_primitives::{Address, B256, U256, U512};
