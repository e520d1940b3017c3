//! API keys on every `/v1` route: who is calling (401 if nobody we know), whether the key
//! may write (403), whether it is within its rate (429).

use crate::error::ApiError;
use crate::keys::{KeyRecord, Scope};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The caller of a request, for handlers that charge more than one token (batches).
#[derive(Clone)]
pub struct Caller {
    pub key: Option<KeyRecord>,
}

fn presented(req: &Request) -> Option<&str> {
    if let Some(v) = req.headers().get("x-api-key") {
        return v.to_str().ok();
    }
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(str::trim)
}

/// `--ui-open`: the peer is on loopback and the browser asked for a loopback host name.
/// The host check stops a web page elsewhere from reaching the keyless API through DNS
/// rebinding (its requests carry its own host name).
fn local_without_key(req: &Request) -> bool {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub async fn require_key(
    State(st): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if !st.cfg.require_keys || (st.cfg.open_on_loopback && local_without_key(&req)) {
        req.extensions_mut().insert(Caller { key: None });
        return next.run(req).await;
    }
    let Some(k) = presented(&req) else {
        return ApiError::unauthorized(
            "no API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (an operator creates keys with `cointrail keys create NAME`)",
        )
        .into_response();
    };
    let keys = st.keys();
    let rec = match crate::keys::verify(&keys.by_id, k) {
        Ok(r) => r.clone(),
        Err(why) => return ApiError::unauthorized(why).into_response(),
    };
    // A batch screening is a POST that only reads.
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !req.uri().path().starts_with("/v1/screen/");
    if writes && rec.scope != Scope::Write {
        return ApiError::forbidden(format!(
            "key '{}' is read-only; adding labels and changing cases needs a key created with --scope write",
            rec.name
        ))
        .into_response();
    }
    if let Err(secs) = st.take_tokens(&rec, 1) {
        return ApiError::rate_limited(secs).into_response();
    }
    req.extensions_mut().insert(Caller { key: Some(rec) });
    next.run(req).await
}
