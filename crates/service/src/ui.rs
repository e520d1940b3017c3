//! The investigation workbench: a small no-build JavaScript app embedded in the binary and
//! served at `/` by the same process (and snapshot) as the API it calls.
//!
//! The files are compiled in with `include_bytes!`, so `cargo build` alone yields a working
//! UI that loads nothing from elsewhere; the Content-Security-Policy says so to the browser
//! too (everything from this origin only), which also keeps a hostile label text from
//! running as script if a rendering bug ever let it into the page.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Scripts and data only from this origin. Styles may be inline: cytoscape sets element
/// styles; images may be `data:`/`blob:` (the PNG export draws into one).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ct:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!("../ui/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("util.js", JS),
    asset!("case.js", JS),
    asset!("graph.js", JS),
    asset!("screen.js", JS),
    asset!("alerts.js", JS),
    asset!("search.js", JS),
    asset!("investigation.js", JS),
    asset!("evm.js", JS),
    asset!("vendor/cytoscape.esm.min.js", JS),
    asset!("vendor/cytoscape.LICENSE", "text/plain; charset=utf-8"),
];

/// The names of the embedded files (for tests and `--help`).
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

/// `COINTRAIL_UI_DIR=crates/service/ui`: serve the same files from disk instead, so a change
/// to the UI shows on reload without rebuilding (only the embedded names are served).
fn body(a: &Asset) -> Vec<u8> {
    if let Some(dir) = std::env::var_os("COINTRAIL_UI_DIR") {
        if let Ok(b) = std::fs::read(std::path::Path::new(&dir).join(a.path)) {
            return b;
        }
    }
    a.body.to_vec()
}

fn respond(a: &Asset) -> Response {
    let mut r = (StatusCode::OK, body(a)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change only with the binary; revalidating each load keeps a restarted
    // server's new UI from mixing with an old cached module.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /`: the workbench page.
pub async fn index() -> Response {
    respond(&ASSETS[0])
}

/// `GET /ui/{*path}`: its scripts, styles and vendored library.
pub async fn asset(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches("/ui/");
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => respond(a),
        None => ApiError::not_found(format!("no workbench file {path}: the workbench is at /"))
            .into_response(),
    }
}
