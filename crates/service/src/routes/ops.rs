//! For the operator: health (is it serving, on what) and metrics (Prometheus).

use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` while a snapshot serves.
    pub status: String,
    /// Which load of the data directory answers now (1 at start, +1 per reload).
    pub snapshot: u64,
    pub index_tip_height: Option<u32>,
    pub index_tip_hash: Option<String>,
    pub index_generation: u64,
    pub network: String,
    /// Unix seconds when the serving snapshot was loaded.
    pub loaded_at: u64,
    pub uptime_secs: u64,
    pub keys_required: bool,
}

/// Is the service up, and on which state of the data directory. No key needed.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn health(State(st): State<Arc<AppState>>) -> Json<Health> {
    let snap = st.snapshot();
    let s = snap.engine.index.stats();
    Json(Health {
        status: "ok".into(),
        snapshot: snap.number,
        index_tip_height: s.tip_height,
        index_tip_hash: s.tip_hash,
        index_generation: snap.engine.index.manifest().generation,
        network: s.network,
        loaded_at: snap.loaded_at,
        uptime_secs: st.started.elapsed().as_secs(),
        keys_required: st.cfg.require_keys,
    })
}

/// Request counts and latency histograms per route, reloads, screened subjects and the
/// index tip, in Prometheus' text format. No key needed (bind to loopback or firewall it).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let snap = st.snapshot();
    let tip = snap.engine.index.tip_height().map_or(-1.0, |h| h as f64);
    let body = st.metrics.render(&[
        (
            "cointrail_index_tip_height",
            "Height of the serving snapshot's tip.",
            tip,
        ),
        (
            "cointrail_snapshot",
            "Number of the serving snapshot.",
            snap.number as f64,
        ),
        (
            "cointrail_uptime_seconds",
            "Seconds since start.",
            st.started.elapsed().as_secs_f64(),
        ),
    ]);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
