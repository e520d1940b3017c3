//! One module per resource.
pub mod alerts;
pub mod cases;
pub mod chain;
pub mod evm;
pub mod labels;
pub mod ops;
pub mod paths;
pub mod screen;
pub mod trace;
