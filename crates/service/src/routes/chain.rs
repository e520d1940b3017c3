//! Read-only views of the chain: an address, a transaction, an entity (cluster).

use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::routes::screen::{check_address, check_txid};
use crate::state::{with_stores, AppState};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Skip this many items (default 0).
    #[param(minimum = 0)]
    pub offset: Option<usize>,
    /// At most this many items (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
}

impl PageQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            Some(l) if l > 1000 => Err(ApiError::invalid("limit", "limit is at most 1000")),
            Some(l) => Ok(l),
            None => Ok(100),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AddressView {
    /// Balance, totals, first and last height, outputs (oldest first, up to `limit`).
    #[schema(value_type = Object)]
    pub address: serde_json::Value,
    /// The entity (cluster) id, when a clustering was built.
    pub entity: Option<u64>,
    /// Who the labels say controls it (directly, or through its cluster).
    #[schema(value_type = Vec<Object>)]
    pub attributions: Vec<serde_json::Value>,
}

/// An address: totals, outputs, entity and attributions. A 0x address is answered as
/// `/v1/ethereum/addresses/{address}` does.
#[utoipa::path(get, path = "/v1/addresses/{address}", tag = "chain",
    params(("address" = String, Path, description = "A Bitcoin address of the index's network"), PageQuery),
    responses((status = 200, body = AddressView),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn address(
    State(st): State<Arc<AppState>>,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let snap = st.snapshot();
    if crate::routes::screen::is_evm(&address) {
        return crate::routes::evm::address_answer(&snap, &address, None, q.limit, None)
            .map(IntoResponse::into_response);
    }
    let a = check_address(&snap, &address, "address")?;
    let limit = q.limit()?;
    let e = &snap.engine;
    let info = e
        .index
        .address_info(a, q.offset.unwrap_or(0).saturating_add(limit));
    let mut v = serde_json::to_value(&info).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(outs) = v.get_mut("outputs").and_then(|o| o.as_array_mut()) {
        let skip = q.offset.unwrap_or(0).min(outs.len());
        outs.drain(..skip);
    }
    Ok(Json(AddressView {
        address: v,
        entity: e
            .clustering
            .as_ref()
            .filter(|c| (a as usize) < c.addr_count())
            .map(|c| c.cluster_of(a) as u64),
        attributions: e
            .attributions(a)
            .into_iter()
            .filter_map(|x| serde_json::to_value(x).ok())
            .collect(),
    })
    .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransactionView {
    /// Block, inputs (with what they spend), outputs (with who spends them), fee.
    #[schema(value_type = Object)]
    pub transaction: serde_json::Value,
    /// Labels on the transaction itself (e.g. a theft transaction from a TagPack).
    #[schema(value_type = Vec<Object>)]
    pub labels: Vec<serde_json::Value>,
}

/// A transaction with its inputs, outputs and labels. A 0x hash (0x and 64 hex digits) is
/// answered as `/v1/ethereum/transactions/{hash}` does.
#[utoipa::path(get, path = "/v1/transactions/{txid}", tag = "chain",
    params(("txid" = String, Path, description = "Transaction id, 64 hex digits", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, body = TransactionView),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn transaction(
    State(st): State<Arc<AppState>>,
    ApiPath(txid): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let snap = st.snapshot();
    if crate::routes::screen::is_evm(&txid) {
        return crate::routes::evm::tx_answer(&snap, &txid).map(IntoResponse::into_response);
    }
    let t = check_txid(&snap, &txid, "txid")?;
    let info = snap.engine.index.tx_info(t);
    let tx = serde_json::to_value(&info).map_err(|e| ApiError::internal(e.to_string()))?;
    let path = snap.engine.data_dir.join("labels.redb");
    let canonical = txid.trim().to_ascii_lowercase();
    let st2 = st.clone();
    let labels = tokio::task::spawn_blocking(move || {
        with_stores(&st2, || {
            if !path.exists() {
                return Ok(vec![]);
            }
            let s = cointrail_tags::TagStore::open(&path)?;
            Ok(s.labels_for_tx("BTC", &canonical, None)?)
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(TransactionView {
        transaction: tx,
        labels: labels
            .into_iter()
            .filter_map(|l| serde_json::to_value(l).ok())
            .collect(),
    })
    .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EntityView {
    pub entity: u64,
    /// Size, balance, received, sent, transactions, first and last height.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub attributions: Vec<serde_json::Value>,
    /// Member addresses, `offset`..`offset+limit`.
    pub addresses: Vec<String>,
}

/// An entity: a cluster of addresses under one control (common-input ownership), with the
/// labels that name it.
#[utoipa::path(get, path = "/v1/entities/{id}", tag = "chain",
    params(("id" = u64, Path, description = "Entity id, as `/v1/addresses/{address}` gives it", minimum = 0), PageQuery),
    responses((status = 200, body = EntityView),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn entity(
    State(st): State<Arc<AppState>>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<EntityView>, ApiError> {
    let snap = st.snapshot();
    let limit = q.limit()?;
    let Some(c) = snap.engine.clustering.as_ref() else {
        return Err(ApiError::not_found(
            "no clustering in this data directory: an operator runs `cointrail cluster build`",
        ));
    };
    let a = u32::try_from(id)
        .ok()
        .filter(|&a| (a as usize) < c.addr_count())
        .ok_or_else(|| ApiError::not_found(format!("no entity {id}")).with_field("id"))?;
    let root = c.cluster_of(a);
    if root != a {
        return Err(ApiError::not_found(format!(
            "{id} is not an entity id; the entity holding that address is {root}"
        ))
        .with_field("id"));
    }
    let idx = &snap.engine.index;
    Ok(Json(EntityView {
        entity: id,
        summary: serde_json::to_value(c.summary(a))
            .map_err(|e| ApiError::internal(e.to_string()))?,
        attributions: snap
            .engine
            .attributions(a)
            .into_iter()
            .filter_map(|x| serde_json::to_value(x).ok())
            .collect(),
        addresses: c
            .addresses(a, q.offset.unwrap_or(0), limit)
            .into_iter()
            .map(|m| idx.render_addr(m))
            .collect(),
    }))
}
