//! Alerts: the durable log that `cointrail follow` writes (DATA_DIR/alerts.redb), its rules,
//! and a live stream of new alerts as server-sent events.
//!
//! The follower is another process; it rewrites `alerts.redb.stamp` after every commit
//! that wrote alerts. The stream watches that stamp (a `stat` every 100 ms) and reads the
//! store only when it moved, so many listeners cost the follower nothing. Each event's id
//! is the alert's sequence number: a client that reconnects with `Last-Event-ID` (or
//! `?after=`) misses nothing and gets nothing twice.

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::Fingerprint;
use crate::state::{with_stores, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use cointrail_follow::{AlertEngine, AlertFilter, AlertStore, RuleKind, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound(m) => ApiError::not_found(m).into(),
        StoreError::Invalid(m) => ApiError::invalid("rule", m).into(),
        e => anyhow::Error::new(e),
    }
}

async fn blocking<T: Send + 'static>(
    st: Arc<AppState>,
    f: impl Fn(&AppState) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || with_stores(&st, || f(&st)))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

fn open(st: &AppState) -> anyhow::Result<AlertStore> {
    AlertStore::open(&st.cfg.data_dir).map_err(store_error)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Include acknowledged alerts (default: only unacknowledged).
    pub all: Option<bool>,
    /// Only this rule's alerts.
    pub rule: Option<String>,
    /// Only the newest N (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    /// Oldest first. Each: id (stable), seq, rule_id, kind, height, block_hash, txid, vout,
    /// summary, details, created_ms, acked, orphaned.
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<serde_json::Value>,
}

/// Alerts, oldest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(ListQuery),
    responses((status = 200, body = AlertList), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let limit = match q.limit {
        Some(l) if l > 1000 => return Err(ApiError::invalid("limit", "limit is at most 1000")),
        l => l.unwrap_or(100),
    };
    let f = AlertFilter {
        unacked_only: !q.all.unwrap_or(false),
        rule_id: q.rule,
        limit: Some(limit),
    };
    let v = blocking(st, move |st| open(st)?.list(&f).map_err(store_error)).await?;
    Ok(Json(AlertList {
        alerts: v
            .into_iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Alert ids, or unique prefixes of them.
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AckResult {
    /// How many were unacknowledged before.
    pub acknowledged: usize,
}

/// Acknowledge alerts.
#[utoipa::path(post, path = "/v1/alerts/ack", tag = "alerts", request_body = AckRequest,
    responses((status = 200, body = AckResult), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn ack(
    State(st): State<Arc<AppState>>,
    ApiJson(r): ApiJson<AckRequest>,
) -> Result<Json<AckResult>, ApiError> {
    if r.ids.is_empty() || r.ids.len() > 1000 {
        return Err(ApiError::invalid("ids", "give 1 to 1000 alert ids"));
    }
    if let Some(bad) = r
        .ids
        .iter()
        .find(|i| i.len() < 4 || !i.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ApiError::invalid(
            "ids",
            format!("{bad:?} is not an alert id (at least 4 hex digits of one)"),
        ));
    }
    let ids = r.ids;
    let n = blocking(st, move |st| open(st)?.ack(&ids).map_err(store_error)).await?;
    Ok(Json(AckResult { acknowledged: n }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleList {
    /// Each: id, kind, its parameters, start_height, note.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<serde_json::Value>,
}

/// Alert rules.
#[utoipa::path(get, path = "/v1/alerts/rules", tag = "alerts",
    responses((status = 200, body = RuleList),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn rules(State(st): State<Arc<AppState>>) -> Result<Json<RuleList>, ApiError> {
    let v = blocking(st, |st| open(st)?.rules().map_err(store_error)).await?;
    Ok(Json(RuleList {
        rules: v
            .into_iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect(),
    }))
}

/// A new rule: `kind` is one of `traced_spend` (case, outpoints, follow_hops), `drain`
/// (addresses, entity, threshold_sats, share_pct, window_blocks), `exposure` (addresses,
/// entity, min_level) or `flagged_receive` (categories, lookback_blocks). The same rules as
/// `cointrail alerts rules add`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewRule {
    /// Rule name (default rule-N).
    pub id: Option<String>,
    #[serde(default)]
    pub note: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
}

/// Add an alert rule; it applies to blocks after the current tip.
#[utoipa::path(post, path = "/v1/alerts/rules", tag = "alerts", request_body = NewRule,
    responses((status = 201, body = Object), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_rule(
    State(st): State<Arc<AppState>>,
    ApiJson(r): ApiJson<NewRule>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let mut kind_json = r.rule;
    if let Some(o) = kind_json.as_object_mut() {
        o.remove("id");
        o.remove("note");
    }
    let kind: RuleKind = serde_json::from_value(kind_json).map_err(|e| {
        ApiError::invalid(
            "kind",
            format!("{e}: kind is traced_spend, drain, exposure or flagged_receive, with its parameters"),
        )
    })?;
    let (id, note) = (r.id, r.note);
    let snap = st.snapshot();
    let rule = blocking(st, move |st| {
        let hooks = cointrail_engine::live::hooks(&st.cfg.data_dir, st.cfg.rules.as_deref());
        let mut e = AlertEngine::open(&st.cfg.data_dir, hooks).map_err(store_error)?;
        e.add_rule(&snap.engine.index, id.clone(), kind.clone(), note.clone())
            .map_err(store_error)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(rule).map_err(|e| ApiError::internal(e.to_string()))?),
    ))
}

/// Remove an alert rule (its alerts stay in the log).
#[utoipa::path(delete, path = "/v1/alerts/rules/{id}", tag = "alerts",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn remove_rule(
    State(st): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(st, move |st| {
        let mut e = AlertEngine::open(&st.cfg.data_dir, Default::default()).map_err(store_error)?;
        e.remove_rule(&id).map_err(store_error)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this alert sequence number (as `Last-Event-ID` does); default: only
    /// alerts written from now on.
    #[param(minimum = 0)]
    pub after: Option<u64>,
}

/// New alerts as server-sent events (`event: alert`, `id:` its sequence number, `data:`
/// the alert as JSON), as soon as `cointrail follow` writes them. Reconnect with
/// `Last-Event-ID` to resume without gaps. A comment is sent every 15 s to keep the
/// connection open.
#[utoipa::path(get, path = "/v1/alerts/stream", tag = "alerts", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of alerts", content_type = "text/event-stream", body = String),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError>
{
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::invalid("Last-Event-ID", "Last-Event-ID is an alert sequence number")
                })?,
        ),
        None => q.after,
    };
    let start = match resume {
        Some(s) => s,
        None => blocking(st.clone(), |st| open(st)?.last_seq().map_err(store_error)).await?,
    };
    struct S {
        st: Arc<AppState>,
        last: u64,
        seen_stamp: Option<Fingerprint>,
        queue: std::collections::VecDeque<cointrail_follow::Alert>,
        stop: tokio::sync::watch::Receiver<bool>,
    }
    let init = S {
        stop: st.stopping.subscribe(),
        st,
        last: start,
        // Read once at the start: alerts after `start` may exist already.
        seen_stamp: None,
        queue: Default::default(),
    };
    let s = futures_util::stream::unfold(init, |mut s| async move {
        loop {
            if *s.stop.borrow() {
                return None;
            }
            if let Some(a) = s.queue.pop_front() {
                s.last = a.seq;
                let ev = Event::default()
                    .event("alert")
                    .id(a.seq.to_string())
                    .json_data(&a)
                    .unwrap_or_else(|_| Event::default().comment("unserializable alert"));
                return Some((Ok(ev), s));
            }
            let path = s.st.cfg.data_dir.join("alerts.redb.stamp");
            let now = Fingerprint::of(std::slice::from_ref(&path));
            if s.seen_stamp.as_ref() != Some(&now) {
                let last = s.last;
                let got = blocking(s.st.clone(), move |st| {
                    open(st)?.since(last, 1000).map_err(store_error)
                })
                .await;
                match got {
                    Ok(v) => {
                        // Only mark the stamp seen once everything behind it was read.
                        if v.len() < 1000 {
                            s.seen_stamp = Some(now);
                        }
                        s.queue.extend(v);
                    }
                    Err(e) => tracing::warn!("alert stream: reading the alert store: {e}"),
                }
                if !s.queue.is_empty() {
                    continue;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = s.stop.changed() => {}
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
