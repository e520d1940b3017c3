//! `cointrail serve`: the screening service, an HTTP JSON API over one data directory.
//!
//! - [`routes`]: one module per resource (screening, chain views, labels, cases, operations).
//! - [`auth`] and [`keys`]: API keys (stored hashed), scopes, per-key rate limits.
//! - [`state`]: the immutable snapshot each request answers from, and the reloader that
//!   swaps in a new one when the data directory changes (new blocks, labels, cases).
//! - [`error`]: every failure as a JSON body with a reason and the field at fault.
//!
//! Screening goes through `cointrail_engine::Engine`, as `cointrail screen` does, so both
//! give the same answer for the same data directory.

pub mod auth;
pub mod conn;
pub mod error;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod ui;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use state::AppState;
use std::sync::Arc;
use std::time::Instant;
use utoipa::OpenApi;

pub use state::ServeConfig;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A key from `cointrail keys create` (also accepted as `Authorization: Bearer <key>`)",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cointrail screening API",
        description = "Exposure and risk of Bitcoin addresses, transactions and deposits, and of Ethereum addresses (per asset), with an open method (see docs/methods in the repository): every answer lists the exposure rows, the rules that fired, and how it was obtained (index tip, labels, parameters)."
    ),
    paths(
        routes::screen::address,
        routes::screen::transaction,
        routes::screen::output,
        routes::screen::batch,
        routes::chain::address,
        routes::chain::transaction,
        routes::chain::entity,
        routes::evm::stats,
        routes::evm::address,
        routes::evm::transaction,
        routes::evm::block,
        routes::evm::screen_address,
        routes::paths::paths,
        routes::labels::list,
        routes::labels::add,
        routes::cases::list,
        routes::cases::get,
        routes::cases::create,
        routes::cases::delete,
        routes::trace::case_trace,
        routes::alerts::list,
        routes::alerts::ack,
        routes::alerts::rules,
        routes::alerts::add_rule,
        routes::alerts::remove_rule,
        routes::alerts::stream,
        routes::ops::health,
        routes::ops::metrics,
    ),
    modifiers(&SecurityAddon),
    tags(
        (name = "screening", description = "Exposure and risk (KYT)"),
        (name = "chain", description = "Addresses, transactions, entities"),
        (name = "ethereum", description = "Ethereum: stats, addresses, transactions, blocks, screening (0x values on the other routes are answered the same way)"),
        (name = "labels", description = "Who controls what"),
        (name = "cases", description = "Registered thefts, traced exactly"),
        (name = "alerts", description = "Alert rules, the alert log and its live stream"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// Counts and times every answer per route; logs it at debug level.
async fn observe(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let r = next.run(req).await;
    let us = t0.elapsed().as_micros() as u64;
    st.metrics
        .record(method.as_str(), &route, r.status().as_u16(), us);
    tracing::debug!(%method, %route, status = r.status().as_u16(), us, "request");
    r
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}: see /openapi.json or /docs",
        req.method(),
        req.uri().path()
    ))
}

/// The whole API on one state.
pub fn router(st: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/screen/address/{address}", get(routes::screen::address))
        .route(
            "/v1/screen/transaction/{txid}",
            get(routes::screen::transaction),
        )
        .route(
            "/v1/screen/output/{txid}/{vout}",
            get(routes::screen::output),
        )
        .route("/v1/screen/batch", post(routes::screen::batch))
        .route("/v1/addresses/{address}", get(routes::chain::address))
        .route("/v1/transactions/{txid}", get(routes::chain::transaction))
        .route("/v1/entities/{id}", get(routes::chain::entity))
        .route("/v1/ethereum/stats", get(routes::evm::stats))
        .route(
            "/v1/ethereum/addresses/{address}",
            get(routes::evm::address),
        )
        .route(
            "/v1/ethereum/transactions/{hash}",
            get(routes::evm::transaction),
        )
        .route("/v1/ethereum/blocks/{number}", get(routes::evm::block))
        .route(
            "/v1/ethereum/screen/address/{address}",
            get(routes::evm::screen_address),
        )
        .route("/v1/paths", get(routes::paths::paths))
        .route("/v1/cases/{name}/trace", get(routes::trace::case_trace))
        .route(
            "/v1/labels",
            get(routes::labels::list).post(routes::labels::add),
        )
        .route(
            "/v1/cases",
            get(routes::cases::list).post(routes::cases::create),
        )
        .route(
            "/v1/cases/{name}",
            get(routes::cases::get).delete(routes::cases::delete),
        )
        .route("/v1/alerts", get(routes::alerts::list))
        .route("/v1/alerts/ack", post(routes::alerts::ack))
        .route(
            "/v1/alerts/rules",
            get(routes::alerts::rules).post(routes::alerts::add_rule),
        )
        .route(
            "/v1/alerts/rules/{id}",
            axum::routing::delete(routes::alerts::remove_rule),
        )
        .route("/v1/alerts/stream", get(routes::alerts::stream))
        .route_layer(middleware::from_fn_with_state(
            st.clone(),
            auth::require_key,
        ));
    Router::new()
        .merge(v1)
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route("/health", get(routes::ops::health))
        .route("/metrics", get(routes::ops::metrics))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .fallback(not_found)
        .method_not_allowed_fallback(|req: Request| async move {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed on {}", req.method(), req.uri().path()),
            )
            .into_response()
        })
        .layer(axum::extract::DefaultBodyLimit::max(
            st.cfg.limits.max_body_bytes,
        ))
        .layer(middleware::from_fn_with_state(st.clone(), limits::enforce))
        .layer(middleware::from_fn_with_state(st.clone(), observe))
        .with_state(st)
}

/// Serve until `shutdown` resolves, then finish the requests under way.
pub async fn serve(
    st: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reload = tokio::spawn(state::reloader(st.clone(), stop_rx));
    let limits = st.cfg.limits.clone();
    let app = router(st.clone());
    // Connections are served here rather than by `axum::serve`: the limits of `conn` (head
    // timeout, per-client cap, JSON for hyper's own rejections) need the connection itself.
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let slots = conn::ClientSlots::default();
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.take(peer.ip(), limits.max_conns_per_client) else {
            let max = limits.max_conns_per_client;
            conns.spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let answer = conn::too_many_connections(max);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // As `axum::serve` with connect info: handlers may ask for the peer's address.
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), req.map(axum::body::Body::new))
            });
        let limits = limits.clone();
        let mut closing = closing_rx.clone();
        conns.spawn(async move {
            let _slot = slot;
            let io =
                hyper_util::rt::TokioIo::new(conn::JsonRejections::new(stream, limits.clone()));
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_head_bytes.max(8192));
            let c = b.serve_connection(io, svc);
            tokio::pin!(c);
            let stop = async move {
                // The guard `wait_for` returns is not Send: dropped here, before any await.
                let _ = closing.wait_for(|v| *v).await.map(|_| ());
            };
            let ended = tokio::select! {
                r = c.as_mut() => Some(r),
                _ = stop => None,
            };
            match ended {
                Some(Err(e)) => tracing::debug!(error = %e, %peer, "connection ended"),
                Some(Ok(())) => {}
                None => {
                    c.as_mut().graceful_shutdown();
                    let _ = c.await;
                }
            }
        });
    }
    drop(listener);
    // Long-lived answers (the alert stream) end now, then every connection finishes the
    // request under way.
    st.stopping.send_replace(true);
    let _ = closing_tx.send(true);
    while conns.join_next().await.is_some() {}
    let _ = stop_tx.send(true);
    let _ = reload.await;
    Ok(())
}

/// Resolves at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing the requests under way");
}
