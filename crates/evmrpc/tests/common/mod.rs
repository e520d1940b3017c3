//! Shared by the evmrpc tests (and by path from the CLI's Ethereum tests).
#![allow(dead_code)]

pub mod anvil;
pub mod scenario;
