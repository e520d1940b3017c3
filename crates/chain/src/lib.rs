//! Chain formats: everything that turns bytes from the outside world (Bitcoin Core block
//! files, raw/hex/bzip2 block dumps, blockchain-etl JSON lines) into validated blocks, and
//! scripts into the address keys the index stores.
//!
//! This crate knows nothing about storage. It depends only on `bitcoin` for consensus
//! encoding and hashing.

pub mod address;
pub mod block;
pub mod blockfile;
pub mod error;
pub mod etl;
pub mod mem;
pub mod network;
pub mod private_file;

pub use address::{AddressKey, ScriptType};
pub mod view;

pub use block::ChainBlock;
pub use blockfile::{BlockEntry, Catalog, FileFormat};
pub use error::{ChainError, Origin};
pub use view::{AddrId, ChainView, InNum, MemChain, OutNum, Prevout, TxNum};
