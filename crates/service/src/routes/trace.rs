//! A case's trace under a chosen model, as `cointrail trace CASE --json` gives it, plus what a
//! graph needs to draw edges: the transaction that spent each tainted output.

use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::state::{with_stores, AppState};
use axum::extract::State;
use axum::Json;
use cointrail_cases::CaseStore;
use cointrail_chain::view::ChainView;
use cointrail_trace::{CoinJoinPolicy, FeePolicy, Model, TraceParams};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Rows a request may keep; totals are complete whatever the cap.
pub const MAX_ROWS: usize = 200_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// fifo (default), lifo, tiho, tifo, haircut, poison, or any xIyO order (e.g. liho).
    pub model: Option<String>,
    /// `last` (default: outputs first, the rest is fee) or `proportional`.
    pub fee_policy: Option<String>,
    /// stop (default), haircut-through, fifo-through, poison-through.
    pub coinjoin: Option<String>,
    /// Stop after this many hops (default: no limit).
    #[param(minimum = 0)]
    pub max_hops: Option<u32>,
    /// Haircut floor in satoshis (default 546).
    #[param(minimum = 0)]
    pub dust_sats: Option<u64>,
    /// Haircut floor as a fraction of the stolen total (default 0.0001).
    #[param(minimum = 0, maximum = 1)]
    pub min_fraction: Option<f64>,
    /// Output rows kept (default 5000, at most 200000); totals are always complete.
    #[param(minimum = 1, maximum = 200000)]
    pub max_rows: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseTrace {
    pub case: String,
    /// The case's description and sources.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Exactly `cointrail trace CASE --json` with the same parameters; each row of
    /// `outputs` also has `spent_by` (txid or null) and `spent_height`.
    #[schema(value_type = Object)]
    pub trace: serde_json::Value,
    /// Sources of the case the index does not hold.
    pub missing: Vec<String>,
    pub index_tip_height: Option<u32>,
    /// The snapshot that answered.
    pub snapshot: u64,
}

fn parse<T>(
    v: &Option<String>,
    field: &str,
    f: impl Fn(&str) -> Result<T, String>,
    default: T,
) -> Result<T, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => f(s).map_err(|m| ApiError::invalid(field, m)),
    }
}

/// Trace a case forward under a model: totals, destinations by entity, dormant (unspent)
/// outputs, peel chains, CoinJoins met, and every tainted output with who spent it.
#[utoipa::path(get, path = "/v1/cases/{name}/trace", tag = "cases",
    params(("name" = String, Path), TraceQuery),
    responses((status = 200, body = CaseTrace),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn case_trace(
    State(st): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<TraceQuery>,
) -> Result<Json<CaseTrace>, ApiError> {
    let model = parse(
        &q.model,
        "model",
        Model::parse,
        Model::parse("fifo").unwrap(),
    )?;
    let fee_policy = parse(
        &q.fee_policy,
        "fee_policy",
        FeePolicy::parse,
        FeePolicy::Last,
    )?;
    let coinjoin = parse(
        &q.coinjoin,
        "coinjoin",
        CoinJoinPolicy::parse,
        CoinJoinPolicy::Stop,
    )?;
    let max_rows = q.max_rows.unwrap_or(5000);
    if max_rows == 0 || max_rows > MAX_ROWS {
        return Err(ApiError::invalid(
            "max_rows",
            format!("max_rows is 1 to {MAX_ROWS}"),
        ));
    }
    let min_fraction = q.min_fraction.unwrap_or(0.0001);
    if !(0.0..=1.0).contains(&min_fraction) {
        return Err(ApiError::invalid("min_fraction", "min_fraction is 0 to 1"));
    }
    let snap = st.snapshot();
    let path = st.cfg.data_dir.join("cases.redb");
    let st2 = st.clone();
    let n2 = name.clone();
    let case = tokio::task::spawn_blocking(move || {
        with_stores(&st2, || {
            let s = CaseStore::open(&path)?;
            s.get(&n2).map_err(|e| match e {
                cointrail_cases::CaseError::NotFound(n) => {
                    ApiError::not_found(format!("no case named '{n}'"))
                        .with_field("name")
                        .into()
                }
                e => anyhow::Error::new(e),
            })
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let p = TraceParams {
        model,
        fee_policy,
        max_hops: q.max_hops,
        dust_sats: q.dust_sats.unwrap_or(546),
        min_fraction,
        coinjoin,
        labels: vec![case.name.clone()],
        provenance: serde_json::Value::Null,
        max_rows,
        ..Default::default()
    };
    let answer = tokio::task::spawn_blocking(move || -> Result<CaseTrace, ApiError> {
        let e = &snap.engine;
        let (src, resolved) = e.case_sources(&case, 1).map_err(|err| {
            ApiError::not_found(cointrail_engine::error_text(&err)).with_field("name")
        })?;
        let stops: Vec<String> = cointrail_engine::STOP_CATEGORIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = e.trace(&src, p, &stops);
        let idx = &e.index;
        let spenders: Vec<Option<u32>> = r
            .outputs
            .iter()
            .map(|row| idx.output_spender(row.out))
            .collect();
        let mut v = serde_json::to_value(&r).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(rows) = v.get_mut("outputs").and_then(|o| o.as_array_mut()) {
            for (row, sp) in rows.iter_mut().zip(spenders) {
                row["spent_by"] =
                    serde_json::json!(sp.map(|t| cointrail_chain::view::display_txid(idx.txid(t))));
                row["spent_height"] = serde_json::json!(sp.map(|t| idx.tx_height(t)));
            }
        }
        Ok(CaseTrace {
            case: case.name.clone(),
            definition: serde_json::to_value(&case)
                .map_err(|e| ApiError::internal(e.to_string()))?,
            trace: v,
            missing: resolved.missing,
            index_tip_height: idx.tip_height(),
            snapshot: snap.number,
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(answer))
}
