//! The ethereum-etl rows (schema of BigQuery `crypto_ethereum`): the one shape every EVM
//! source is turned into before it reaches the index, so files and node RPC share one
//! ingest path. Field names are the etl column names; only the columns that move value,
//! place a row in the chain, or identify it are kept (bytecode and blooms are not).

pub mod fields;
pub mod read;
pub mod rows;
pub mod stream;
pub mod write;

pub use read::{open_etl_file, EtlFile, Format, Kind, Located, RowError};
pub use rows::{
    Block, Log, Row, TokenRow, TokenTransfer, Trace, TraceType, Transaction, Withdrawal,
};
pub use stream::{looks_like_evm_etl, BlockStream};
pub use write::{token_json, write_tokens, EtlWriter};
