//! Labels: look up and search the label store; add one's own (write scope).

use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::state::{with_stores, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cointrail_chain::AddressKey;
use cointrail_tags::{Label, TagStore, Target};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabelQuery {
    /// Labels of this address (all sources).
    pub address: Option<String>,
    /// Or: search label, actor, category and address for this text.
    #[param(min_length = 1)]
    pub q: Option<String>,
    /// What was known at this date, YYYY-MM-DD (address lookups only).
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub as_of: Option<String>,
    /// At most this many (search; default 50, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LabelList {
    #[schema(value_type = Vec<Object>)]
    pub labels: Vec<serde_json::Value>,
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn to_values(v: Vec<Label>) -> Vec<serde_json::Value> {
    v.into_iter()
        .filter_map(|l| serde_json::to_value(l).ok())
        .collect()
}

/// Labels of an address, or a search.
#[utoipa::path(get, path = "/v1/labels", tag = "labels", params(LabelQuery),
    responses((status = 200, body = LabelList),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<LabelQuery>,
) -> Result<Json<LabelList>, ApiError> {
    if let Some(d) = &q.as_of {
        if !valid_date(d) {
            return Err(ApiError::invalid(
                "as_of",
                format!("'{d}' is not YYYY-MM-DD"),
            ));
        }
    }
    let limit = q.limit.unwrap_or(50);
    if limit > 1000 {
        return Err(ApiError::invalid("limit", "limit is at most 1000"));
    }
    let path = st.cfg.data_dir.join("labels.redb");
    let st2 = st.clone();
    let labels = match (q.address, q.q) {
        (Some(a), None) => {
            tokio::task::spawn_blocking(move || {
                with_stores(&st2, || {
                    if !path.exists() {
                        return Ok(vec![]);
                    }
                    Ok(TagStore::open(&path)?.labels_for_address("BTC", &a, q.as_of.as_deref())?)
                })
            })
            .await
        }
        (None, Some(text)) if !text.trim().is_empty() => {
            tokio::task::spawn_blocking(move || {
                with_stores(&st2, || {
                    if !path.exists() {
                        return Ok(vec![]);
                    }
                    Ok(TagStore::open(&path)?.search(&text, limit)?)
                })
            })
            .await
        }
        _ => {
            return Err(ApiError::invalid(
                "address",
                "give either address=ADDRESS or q=TEXT (not both)",
            ))
        }
    }
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(LabelList {
        labels: to_values(labels),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLabel {
    /// A Bitcoin address of the index's network.
    pub address: String,
    /// The name shown, e.g. "Exchange X hot wallet".
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    pub label: String,
    /// exchange, mixer, sanctions, ransomware, darknet, scam, theft, … (default `user`).
    #[schema(max_length = 256)]
    pub category: Option<String>,
    /// The source the label is filed under (default `user`).
    #[schema(pattern = "^[A-Za-z0-9_:.-]{1,64}$")]
    pub source: Option<String>,
    #[schema(max_length = 256)]
    pub actor: Option<String>,
}

/// Add a label of one's own. Screening counts it once the next snapshot is loaded (at once).
#[utoipa::path(post, path = "/v1/labels", tag = "labels", request_body = NewLabel,
    responses((status = 201, description = "Stored", body = Object),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
        (status = 503, description = "The label store is held by another process", body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn add(
    State(st): State<Arc<AppState>>,
    ApiJson(n): ApiJson<NewLabel>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let net = st.snapshot().engine.index.render_network();
    AddressKey::parse(n.address.trim(), net).map_err(|m| ApiError::invalid("address", m))?;
    let name = n.label.trim();
    let max = cointrail_tags::MAX_LABEL_CHARS;
    if name.is_empty() || name.chars().count() > max {
        return Err(ApiError::invalid(
            "label",
            format!("label must be 1 to {max} characters"),
        ));
    }
    let source = n.source.clone().unwrap_or_else(|| "user".into());
    if source.trim().is_empty()
        || source.len() > 64
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
    {
        return Err(ApiError::invalid(
            "source",
            "source is 1 to 64 of letters, digits, '-', '_', ':', '.'",
        ));
    }
    let mut l = Label::new(
        &source,
        "BTC",
        Target::Address(n.address.trim().to_string()),
        name,
    );
    l.category = Some(
        n.category
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "user".into()),
    );
    l.actor = n.actor.clone().filter(|a| !a.trim().is_empty());
    l.origin = Some("api".into());
    if let Some((field, msg)) = l.oversized_field() {
        return Err(ApiError::invalid(field, msg));
    }
    let path = st.cfg.data_dir.join("labels.redb");
    let st2 = st.clone();
    let stored = l.clone();
    tokio::task::spawn_blocking(move || {
        with_stores(&st2, || {
            let opened = TagStore::open(&path)?
                .add_label(l.clone(), &cointrail_tags::import::today())?
                .opened;
            // A newly flagged address: the flagged_receive alert rules look back for it.
            if let Err(e) = cointrail_engine::live::flag_labels(&st2.cfg.data_dir, &opened) {
                tracing::warn!(
                    "label stored; alert rules not checked against it: {}",
                    cointrail_engine::error_text(&e)
                );
            }
            Ok(())
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    st.reload_now.notify_one();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(stored).map_err(|e| ApiError::internal(e.to_string()))?),
    ))
}
