//! Tracing stolen coins: the taint models of `../shared/specs/methods.md` §1 as exact
//! integer transfer functions (`model`), and the tracer that applies them hop by hop over
//! any `ChainView` (`engine`), with reports for people (`report`).

pub mod backward;
pub mod engine;
pub mod model;
pub mod report;

pub use engine::{
    trace, CoinJoinInfo, CoinJoinPolicy, NoOracle, Oracle, Source, Stop, TraceParams, TraceResult,
};
pub use model::{FeePolicy, InRule, Model, OutRule, Run};
