//! One module per group of subcommands.
pub mod case;
pub mod chain;
pub mod cluster;
pub mod evm;
pub mod evm_export;
pub mod evm_follow;
pub mod evm_screen;
pub mod evm_trace;
pub mod follow;
pub mod labels;
pub mod prices;
pub mod screen;
pub mod serve;
pub mod sim;
pub mod sim_evm;
pub mod trace;
pub mod trace_loot;
