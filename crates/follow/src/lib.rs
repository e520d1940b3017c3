//! Follow a running Bitcoin Core node and raise alerts as blocks arrive.
//!
//! - [`rpc`]: a JSON-RPC client (cookie or user/password) over [`http`]: reqwest with rustls,
//!   shared with webhooks and the EVM node client.
//! - [`zmq`]: `hashblock`/`rawblock` notifications over the pure-Rust `zeromq` crate.
//! - [`follower`]: catch-up, staying at the tip, reorganisations, backoff.
//! - [`engine`], [`rules`], [`store`]: alert rules evaluated per block with an undo log,
//!   and a durable alert log in redb.
//! - [`webhook`]: HMAC-signed delivery with retries and a dead-letter list.
//! - [`hooks`]: the traits other crates implement (traces, exposure, services, entities).

pub mod engine;
pub mod evm_alerts;
pub mod follower;
pub mod hmac;
pub mod hooks;
pub mod http;
pub mod rpc;
pub mod rules;
pub mod store;
pub mod sync;
pub mod webhook;
pub mod zmq;

pub use engine::{alert_id, AlertEngine, EngineReport};
pub use follower::{ChainListener, FollowConfig, FollowError, Follower, SyncReport};
pub use hooks::{
    EntityResolver, Exposure, ExposureCheck, FlaggedAddress, Hooks, RiskLevel, ServiceHop,
    ServiceOracle, TaintWatch, WatchedAccount, WatchedOutput,
};
pub use rpc::{Auth, ChainInfo, RpcClient, RpcError};
pub use rules::{Rule, RuleKind};
pub use store::{Alert, AlertFilter, AlertStore, Delivery, StoreError, Webhook};
pub use webhook::{deliver_due, spawn_deliverer, DeliveryConfig, DeliveryReport};
