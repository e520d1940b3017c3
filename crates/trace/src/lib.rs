//! Tracing stolen coins: the taint models of `../shared/specs/methods.md` §1 as exact
//! integer transfer functions (`model`), and the tracer that applies them hop by hop over
//! any `ChainView` (`engine`), with reports for people (`report`).

pub mod backward;
pub mod engine;
pub mod model;
pub mod report;
pub mod soft;

pub use engine::{
    trace, CoinJoinInfo, CoinJoinPolicy, EntityMember, NoOracle, Oracle, Source, Stop, TraceParams,
    TraceResult,
};
pub use model::{FeePolicy, InRule, Model, OutRule, Run};
pub use soft::DemixParams;
