//! The one HTTP client of the product: node JSON-RPC (Bitcoin Core here, EVM nodes through
//! alloy) and alert webhooks all go through `reqwest` with rustls, so users can point
//! cointrail at https node providers and https receivers directly.
//!
//! TLS trusts the system's roots (through rustls-platform-verifier) plus, when set, the PEM
//! certificates in the file named by `COINTRAIL_CA_FILE` (a private CA, or a self-signed
//! receiver). The crypto provider is `ring`, installed once for the process, so that the
//! build compiles one TLS backend only.

use std::sync::OnceLock;
use std::time::Duration;

pub use reqwest::Url;

/// Environment variable naming a PEM file of extra CA certificates to trust.
pub const CA_FILE_ENV: &str = "COINTRAIL_CA_FILE";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {0:?}: {1}")]
    BadUrl(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// Parse a node or webhook URL: `http://` or `https://`; a URL without a scheme is http
/// (as `alice:pw@node:8332`, which Bitcoin users write).
pub fn parse_url(s: &str) -> Result<Url, HttpError> {
    let bad = |m: &str| HttpError::BadUrl(s.to_string(), m.to_string());
    let full = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let u = Url::parse(&full).map_err(|e| bad(&e.to_string()))?;
    match u.scheme() {
        "http" | "https" => {}
        other => {
            return Err(bad(&format!(
                "scheme {other}:// is not supported: use http:// or https://"
            )))
        }
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(u)
}

/// The URL without its user:password, for messages and logs.
pub fn display_url(u: &Url) -> String {
    let mut d = u.clone();
    let _ = d.set_username("");
    let _ = d.set_password(None);
    d.to_string()
}

/// Make ring the process's rustls provider (reqwest is built without one, so that only ring
/// is compiled). Idempotent; a provider installed earlier by someone else is kept.
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The extra roots from `COINTRAIL_CA_FILE`, if set.
fn extra_roots() -> Result<Vec<reqwest::Certificate>, HttpError> {
    let Some(path) = std::env::var_os(CA_FILE_ENV) else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(&path).map_err(|e| {
        HttpError::Setup(format!(
            "cannot read {CA_FILE_ENV}={}: {e}",
            std::path::Path::new(&path).display()
        ))
    })?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        HttpError::Setup(format!(
            "{CA_FILE_ENV}={} holds no PEM certificate: {e}",
            std::path::Path::new(&path).display()
        ))
    })
}

/// An async client with the product's TLS settings (for alloy's HTTP transport); `timeout`
/// bounds each request.
pub fn async_client(timeout: Duration) -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("cointrail/", env!("CARGO_PKG_VERSION")));
    for c in extra_roots()? {
        b = b.add_root_certificate(c);
    }
    b.build().map_err(|e| HttpError::Setup(chain(&e)))
}

/// A blocking client (its own I/O thread) for the synchronous follower and webhook sender.
/// Building one is not free (a thread and a runtime): keep it, or use [`shared`].
pub fn blocking_client(connect_timeout: Duration) -> Result<reqwest::blocking::Client, HttpError> {
    install_crypto_provider();
    let mut b = reqwest::blocking::Client::builder()
        .connect_timeout(connect_timeout)
        // Per request (`post`) instead: the webhook sender and RPC want different bounds.
        .timeout(None)
        .user_agent(concat!("cointrail/", env!("CARGO_PKG_VERSION")));
    for c in extra_roots()? {
        b = b.add_root_certificate(c);
    }
    b.build().map_err(|e| HttpError::Setup(chain(&e)))
}

/// The process-wide blocking client, built on first use. Its connection pool is what makes
/// a busy follower cheap over TLS.
pub fn shared() -> Result<&'static reqwest::blocking::Client, HttpError> {
    static C: OnceLock<Result<reqwest::blocking::Client, String>> = OnceLock::new();
    C.get_or_init(|| blocking_client(Duration::from_secs(10)).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| HttpError::Setup(e.clone()))
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POST `body` and read the whole response; `timeout` bounds the whole exchange.
pub fn post(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let client = shared()?;
    let who = display_url(url);
    let mut req = client
        .post(url.clone())
        .timeout(timeout)
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().map_err(|e| {
        if e.is_connect() || e.is_timeout() {
            HttpError::Connect(who.clone(), chain(&e))
        } else {
            HttpError::Io(who.clone(), chain(&e))
        }
    })?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .map_err(|e| HttpError::Io(who.clone(), chain(&e)))?
        .to_vec();
    Ok(Response { status, body })
}

/// An error with its causes: reqwest's own message alone ("error sending request") hides
/// what to fix (refused, certificate unknown, timed out).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_url("http://127.0.0.1:18443").unwrap();
        assert_eq!(
            (u.host_str(), u.port_or_known_default(), u.path()),
            (Some("127.0.0.1"), Some(18443), "/")
        );
        let u = parse_url("alice:pw@node:8332/wallet/x").unwrap();
        assert_eq!((u.username(), u.password()), ("alice", Some("pw")));
        assert_eq!(
            (u.host_str(), u.port_or_known_default(), u.path()),
            (Some("node"), Some(8332), "/wallet/x")
        );
        assert_eq!(display_url(&u), "http://node:8332/wallet/x");
        let u = parse_url("https://rpc.example.org/v2/key").unwrap();
        assert_eq!(u.port_or_known_default(), Some(443));
        assert!(parse_url("http://x:99999").is_err());
        assert!(parse_url("ftp://x")
            .unwrap_err()
            .to_string()
            .contains("https://"));
    }
}
