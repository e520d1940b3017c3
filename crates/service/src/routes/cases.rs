//! Cases: registered thefts. Screening counts every stored case's traced taint exactly, so
//! creating one here changes the answers of the next snapshot (loaded at once).

use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::{with_stores, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cointrail_cases::{Case, CaseError, CaseSource, CaseStore};
use cointrail_chain::AddressKey;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;

fn case_error(e: CaseError) -> anyhow::Error {
    match e {
        CaseError::NotFound(n) => ApiError::not_found(format!("no case named '{n}'"))
            .with_field("name")
            .into(),
        CaseError::Exists(n) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a case named '{n}' exists already; pick another name or delete it first"),
        )
        .with_field("name")
        .into(),
        CaseError::Invalid(m) => ApiError::invalid("case", m).into(),
        e => anyhow::Error::new(e),
    }
}

fn with_cases<T: Send + 'static>(
    st: Arc<AppState>,
    f: impl Fn(&CaseStore) -> Result<T, CaseError> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, ApiError>> {
    let path = st.cfg.data_dir.join("cases.redb");
    async move {
        tokio::task::spawn_blocking(move || {
            with_stores(&st, || {
                let s = CaseStore::open(&path).map_err(anyhow::Error::new)?;
                f(&s).map_err(case_error)
            })
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseList {
    #[schema(value_type = Vec<Object>)]
    pub cases: Vec<serde_json::Value>,
}

/// Every stored case.
#[utoipa::path(get, path = "/v1/cases", tag = "cases",
    responses((status = 200, body = CaseList),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(State(st): State<Arc<AppState>>) -> Result<Json<CaseList>, ApiError> {
    let cases = with_cases(st, |s| s.list()).await?;
    Ok(Json(CaseList {
        cases: cases
            .into_iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseView {
    #[schema(value_type = Object)]
    pub case: serde_json::Value,
    /// What its sources resolve to in the current index.
    pub resolved_outputs: usize,
    pub resolved_sats: u64,
    /// Sources the index does not hold (outside its range, or unknown).
    pub missing: Vec<String>,
}

/// A case, and what its sources resolve to in the index.
#[utoipa::path(get, path = "/v1/cases/{name}", tag = "cases",
    params(("name" = String, Path)),
    responses((status = 200, body = CaseView), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(st): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CaseView>, ApiError> {
    let snap = st.snapshot();
    let case = with_cases(st, move |s| s.get(&name)).await?;
    let idx = &snap.engine.index;
    let r = cointrail_cases::resolve(
        idx,
        idx.render_network(),
        &|a| idx.addr_outputs(a),
        &case.sources,
    );
    Ok(Json(CaseView {
        case: serde_json::to_value(&case).map_err(|e| ApiError::internal(e.to_string()))?,
        resolved_outputs: r.outputs.len(),
        resolved_sats: r.total_sats,
        missing: r.missing,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// A short unique name, e.g. `kucoin-2020`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,100}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Stolen outputs `TXID:VOUT`, whole transactions `TXID`, or addresses (everything
    /// they received, from `from_height` on).
    #[schema(min_items = 1, max_items = 10000)]
    pub sources: Vec<String>,
    #[schema(minimum = 0, maximum = 4294967295_u64)]
    #[serde(default, deserialize_with = "crate::error::de_opt_u32")]
    pub from_height: Option<u32>,
}

/// Register a theft; screening counts its traced taint from the next snapshot on.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = NewCase,
    responses((status = 201, body = Object),
        (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    ApiJson(n): ApiJson<NewCase>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let name = n.name.clone();
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::invalid(
            "name",
            "name is 1 to 100 of letters, digits, '-', '_', '.'",
        ));
    }
    if n.sources.is_empty() || n.sources.len() > 10_000 {
        return Err(ApiError::invalid("sources", "give 1 to 10000 sources"));
    }
    let net = st.snapshot().engine.index.render_network();
    let mut sources = Vec::new();
    for (i, s) in n.sources.iter().enumerate() {
        let s = s.trim();
        let field = format!("sources[{i}]");
        let hex64 = |t: &str| t.len() == 64 && bitcoin::Txid::from_str(t).is_ok();
        if let Some((t, v)) = s.rsplit_once(':').filter(|(t, _)| hex64(t)) {
            let vout = v
                .parse()
                .map_err(|_| ApiError::invalid(&field, format!("'{v}' is not an output index")))?;
            sources.push(CaseSource::Outpoint {
                txid: t.to_ascii_lowercase(),
                vout,
            });
        } else if hex64(s) {
            sources.push(CaseSource::Tx {
                txid: s.to_ascii_lowercase(),
            });
        } else {
            AddressKey::parse(s, net).map_err(|m| {
                ApiError::invalid(&field, format!("not TXID:VOUT, TXID or an address: {m}"))
            })?;
            sources.push(CaseSource::Address {
                address: s.to_string(),
                from_height: n.from_height,
            });
        }
    }
    let case = Case {
        name,
        description: n.description,
        sources,
        created: crate::keys::now(),
        origin: "api".into(),
    };
    let stored = case.clone();
    with_cases(st.clone(), move |s| s.create(&case)).await?;
    st.reload_now.notify_one();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(stored).map_err(|e| ApiError::internal(e.to_string()))?),
    ))
}

/// Delete a case.
#[utoipa::path(delete, path = "/v1/cases/{name}", tag = "cases",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(st): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    with_cases(st.clone(), move |s| s.delete(&name)).await?;
    st.reload_now.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
