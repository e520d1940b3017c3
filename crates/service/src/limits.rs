//! Request limits the router enforces before authentication and handlers: the length of the
//! target (414), the declared and the actual body size (413), and the time the body may take
//! to arrive (408). Each answer is the documented JSON error.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn closing(e: ApiError) -> Response {
    let mut r = e.into_response();
    // The rest of the request was not read: the connection cannot carry another one.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        src = s.source();
    }
    false
}

pub async fn enforce(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let lim = &st.cfg.limits;
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > lim.max_uri_bytes {
        return closing(
            ApiError::new(
                StatusCode::URI_TOO_LONG,
                "too_large",
                format!(
                    "the request target (path and query) is {target} bytes; at most {} are accepted",
                    lim.max_uri_bytes
                ),
            )
            .with_field("path"),
        );
    }
    let too_large = |n: String| {
        closing(
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the request body is {n} bytes; at most {} are accepted",
                    lim.max_body_bytes
                ),
            )
            .with_field("body"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Refused before waiting for a byte of it: a client announcing 50 MB gets its answer now.
    if let Some(n) = declared.filter(|n| *n > lim.max_body_bytes as u64) {
        return too_large(n.to_string());
    }
    let has_body =
        declared.is_some_and(|n| n > 0) || req.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, lim.max_body_bytes);
    let bytes = match tokio::time::timeout(lim.body_read_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if is_length_limit(&e) => return too_large(format!("over {}", lim.max_body_bytes)),
        Ok(Err(e)) => {
            return closing(
                ApiError::invalid("body", format!("the request body could not be read: {e}")),
            )
        }
        Err(_) => {
            return closing(
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    format!(
                        "the request body did not arrive within {} s; send it at once after the headers",
                        lim.body_read_timeout.as_secs_f64()
                    ),
                )
                .with_field("body"),
            )
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
