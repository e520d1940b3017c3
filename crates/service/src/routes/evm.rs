//! Ethereum (EVM) routes: `/v1/ethereum/…` for stats, an address, a transaction, a block
//! and address screening, answering exactly what the CLI's `--json` prints for the same
//! data directory (`cointrail address|tx|block|stats|screen` on 0x values). The Bitcoin
//! routes hand 0x values over to these (`/v1/screen/address/0x…`, `/v1/addresses/0x…`,
//! `/v1/transactions/0x…`).

use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::state::{AppState, Snapshot};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cointrail_engine::evm::EvmError;
use cointrail_risk::account::AccountScreening;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The chain these routes serve (a new EVM chain adds its own routes by name).
pub const CHAIN: &str = "ethereum";

/// Most movements one page of an address answer lists (the CLI's `--limit` bound).
pub const MAX_RECENT: usize = 1000;
/// Movements in a page when no `limit` is given.
pub const DEFAULT_PAGE: usize = 100;

pub(crate) fn evm_error(e: EvmError, field: &str) -> ApiError {
    match e {
        EvmError::Invalid(m) => ApiError::invalid(field, m),
        EvmError::NotFound(m) => ApiError::not_found(m).with_field(field),
    }
}

/// As axum's `Json` response (the same bytes and content type), written into a buffer
/// sized for a screening answer (several KB) instead of one grown from 128 bytes.
pub(crate) fn json_response<T: serde::Serialize>(v: &T) -> Response {
    let mut buf = Vec::with_capacity(16 * 1024);
    match serde_json::to_writer(&mut buf, v) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buf,
        )
            .into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Json<serde_json::Value>, ApiError> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Screen an EVM address on a snapshot (also the 0x path of `/v1/screen/…` and batches).
pub(crate) fn screen(
    snap: &Snapshot,
    address: &str,
    max_hops: Option<u32>,
    max_branch_reads: Option<usize>,
    field: &str,
) -> Result<AccountScreening, ApiError> {
    let mut p = snap.engine.params.clone();
    if let Some(h) = max_hops {
        if h > crate::routes::screen::MAX_HOPS {
            return Err(ApiError::invalid(
                "max_hops",
                format!("max_hops is at most {}", crate::routes::screen::MAX_HOPS),
            ));
        }
        p.max_hops = h;
    }
    let mut opts = cointrail_risk::account::WalkOptions::default();
    if let Some(r) = max_branch_reads {
        opts.max_branch_reads = r;
    }
    let mut s = snap
        .engine
        .screen_evm_with(CHAIN, address, &p, opts)
        .map_err(|e| evm_error(e, field))?;
    s.provenance["snapshot"] = serde_json::json!(snap.number);
    Ok(s)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvmScreenQuery {
    /// Hops followed through unattributed addresses (0 to 6; default: the server's, 3).
    #[param(minimum = 0, maximum = 6)]
    pub max_hops: Option<u32>,
    /// How many transfers of a counterparty's list a branch of the walk reads (the newest;
    /// the older rest is `beyond_branch_reads`; the subject's own lists are read whole);
    /// 0: no cap. Default 32.
    pub max_branch_reads: Option<usize>,
}

/// Screen an Ethereum address: the same breakdown as Bitcoin's (ownership, direct,
/// indirect; received and sent; per category), per asset (ETH and each token), with USD
/// from the price table where it has a rate, judged by the same rules.
#[utoipa::path(get, path = "/v1/ethereum/screen/address/{address}", tag = "ethereum",
    params(("address" = String, Path, description = "0x and 40 hex digits, any case (EIP-55 checked when mixed)"), EvmScreenQuery),
    responses(
        (status = 200, description = "Exposure and risk", body = AccountScreening),
        (status = 400, description = "Not an Ethereum address", body = crate::error::ErrorBody),
        (status = 404, description = "No Ethereum index, or the address has no movements in it", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn screen_address(
    State(st): State<Arc<AppState>>,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<EvmScreenQuery>,
) -> Result<Response, ApiError> {
    let snap = st.snapshot();
    let s = screen(&snap, &address, q.max_hops, q.max_branch_reads, "address")?;
    st.metrics.screened_subjects.fetch_add(1, Ordering::Relaxed);
    Ok(json_response(&s))
}

/// The Ethereum index: blocks, transactions, movements, addresses, tokens.
#[utoipa::path(get, path = "/v1/ethereum/stats", tag = "ethereum",
    responses(
        (status = 200, description = "As `cointrail stats --chain ethereum --json`: chain, blocks, first_block, last_block, transactions, movements, addresses, tokens", body = Object),
        (status = 404, description = "No Ethereum index in this data directory", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn stats(State(st): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let snap = st.snapshot();
    let side = snap.engine.evm(CHAIN).map_err(|e| evm_error(e, "chain"))?;
    to_json(&side.index.stats())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvmAddressQuery {
    /// Balances as of this block (default: the index tip).
    #[param(minimum = 0)]
    pub at_block: Option<u64>,
    /// Movements in this page, newest first (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
    /// Cursor: list movements older than this movement id (the previous page's
    /// `next_before`); default: from the newest.
    #[param(minimum = 0)]
    pub before: Option<u64>,
}

/// An Ethereum address (also `/v1/addresses/0x…`).
pub(crate) fn address_answer(
    snap: &Snapshot,
    address: &str,
    at_block: Option<u64>,
    limit: Option<usize>,
    before: Option<u64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = match limit {
        Some(l) if l > MAX_RECENT => {
            return Err(ApiError::invalid(
                "limit",
                format!("limit is at most {MAX_RECENT}"),
            ))
        }
        Some(l) => l,
        None => DEFAULT_PAGE,
    };
    let side = snap
        .engine
        .evm(CHAIN)
        .map_err(|e| evm_error(e, "address"))?;
    let (a, _) = side.address(address).map_err(|e| evm_error(e, "address"))?;
    to_json(&side.index.address_summary(&a, at_block, limit, before))
}

/// An Ethereum address: balances per asset (at any block), movements in and out, first
/// and last seen, contract or EOA, the most recent movements.
#[utoipa::path(get, path = "/v1/ethereum/addresses/{address}", tag = "ethereum",
    params(("address" = String, Path, description = "0x and 40 hex digits, any case (EIP-55 checked when mixed)"), EvmAddressQuery),
    responses(
        (status = 200, description = "As `cointrail address 0x… --json`: chain, address, kind, balances, movements_in, movements_out, first_seen_block, last_seen_block, as_of_block, recent (one page of movements, newest first), next_before (the cursor of the next page, null on the last)", body = Object),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn address(
    State(st): State<Arc<AppState>>,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<EvmAddressQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    address_answer(&st.snapshot(), &address, q.at_block, q.limit, q.before)
}

/// An Ethereum transaction (also `/v1/transactions/0x…`).
pub(crate) fn tx_answer(snap: &Snapshot, hash: &str) -> Result<Json<serde_json::Value>, ApiError> {
    let h = hash.trim();
    let ok = h.len() == 66
        && h.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"))
        && h[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::invalid(
            "hash",
            format!("`{hash}` is not an EVM transaction hash (0x and 64 hex digits)"),
        ));
    }
    let b: cointrail_evm::B256 = h
        .parse()
        .map_err(|_| ApiError::invalid("hash", format!("`{hash}` is not a transaction hash")))?;
    let side = snap.engine.evm(CHAIN).map_err(|e| evm_error(e, "hash"))?;
    let t = cointrail_engine::tx_events::tx_with_events(&side.index, &b).ok_or_else(|| {
        ApiError::not_found(format!("transaction {h} is not in the {CHAIN} index"))
            .with_field("hash")
    })?;
    to_json(&t)
}

/// An Ethereum transaction: every movement (internal ones with their call path, token
/// transfers with symbol and decimals when known), status, block.
#[utoipa::path(get, path = "/v1/ethereum/transactions/{hash}", tag = "ethereum",
    params(("hash" = String, Path, description = "0x and 64 hex digits")),
    responses(
        (status = 200, description = "As `cointrail tx 0x… --json`: chain, hash, block, status, movements, logs (count kept, null: not kept), events (decoded swaps, WETH wraps, mixer deposits/withdrawals)", body = Object),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn transaction(
    State(st): State<Arc<AppState>>,
    ApiPath(hash): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    tx_answer(&st.snapshot(), &hash)
}

/// An Ethereum block: hash, time, transaction count and every movement.
#[utoipa::path(get, path = "/v1/ethereum/blocks/{number}", tag = "ethereum",
    params(("number" = u64, Path, description = "Block number", minimum = 0)),
    responses(
        (status = 200, description = "As `cointrail block N --chain ethereum --json`: chain, number, hash, timestamp, transactions, movements", body = Object),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn block(
    State(st): State<Arc<AppState>>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("number", format!("`{number}` is not a block number")))?;
    let snap = st.snapshot();
    let side = snap.engine.evm(CHAIN).map_err(|e| evm_error(e, "number"))?;
    let b = side.index.block_summary(n).ok_or_else(|| {
        ApiError::not_found(format!("block {n} is not in the {CHAIN} index")).with_field("number")
    })?;
    to_json(&b)
}
