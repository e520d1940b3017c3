//! Connections: the HTTP/1.1 server under the router, with the limits a slow or hostile
//! client meets before any handler runs (issue 20).
//!
//! - a request head must arrive within `header_read_timeout`; the same clock runs while a
//!   kept-alive connection waits for its next request (the idle timeout), so neither a
//!   silent client nor one trickling a header a byte at a time holds a connection;
//! - a request head over `max_head_bytes` is refused (431), a target over hyper's 64 KiB
//!   limit too (414); shorter targets over `max_uri_bytes` are refused by the router's
//!   limits layer (`crate::limits`);
//! - at most `max_conns_per_client` connections per client address at once; one more is
//!   answered 429 and closed;
//! - hyper answers a head it cannot parse itself, with an empty body: [`JsonRejections`]
//!   rewrites those answers (400, 414, 431) into the documented JSON error body.

use crate::error::ErrorBody;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a connection may cost the server.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// From accepting a connection (or finishing a response) to a complete request head.
    pub header_read_timeout: Duration,
    /// From a complete head to a complete body.
    pub body_read_timeout: Duration,
    /// Connections one client address may hold open at once.
    pub max_conns_per_client: usize,
    /// Request line plus headers, in bytes.
    pub max_head_bytes: usize,
    /// Path plus query, in bytes.
    pub max_uri_bytes: usize,
    /// Request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_conns_per_client: 64,
            max_head_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1 << 20,
        }
    }
}

/// Open connections per client address.
#[derive(Clone, Default)]
pub struct ClientSlots(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in [`ClientSlots`], given back when dropped.
pub struct Slot {
    slots: ClientSlots,
    ip: IpAddr,
}

impl ClientSlots {
    /// A slot for `ip`, or None when it already holds `max`.
    pub fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A whole HTTP/1.1 response carrying the JSON error body, closing the connection.
pub fn json_response(status: u16, reason: &str, body: &ErrorBody, extra: &str) -> Vec<u8> {
    let json = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        json.len()
    )
    .into_bytes();
    r.extend_from_slice(&json);
    r
}

/// The answer to one connection too many from one client.
pub fn too_many_connections(max: usize) -> Vec<u8> {
    json_response(
        429,
        "Too Many Requests",
        &ErrorBody {
            error: "too_many_connections".into(),
            message: format!(
                "this client already holds {max} open connections, the most one address may; reuse a kept-alive connection or close one"
            ),
            field: None,
        },
        "retry-after: 1\r\n",
    )
}

/// The JSON answer for an automatic hyper rejection with this status line, if it is one.
fn rewrite(head: &[u8], limits: &ConnLimits) -> Option<Vec<u8>> {
    if !head.ends_with(b"\r\n\r\n") || head.len() > 1024 {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let lower = text.to_ascii_lowercase();
    // hyper's own answers have no body and no content type; the router's always have both.
    if !lower.contains("\r\ncontent-length: 0\r\n") || lower.contains("\r\ncontent-type:") {
        return None;
    }
    let status = text.strip_prefix("HTTP/1.")?.get(2..5)?;
    let body = |error: &str, message: String, field: &str| ErrorBody {
        error: error.into(),
        message,
        field: Some(field.into()),
    };
    Some(match status {
        "400" => json_response(
            400,
            "Bad Request",
            &body(
                "invalid_input",
                "malformed HTTP request: the request line or a header could not be parsed".into(),
                "request",
            ),
            "",
        ),
        "414" => json_response(
            414,
            "URI Too Long",
            &body(
                "too_large",
                format!(
                    "the request target (path and query) is too long; at most {} bytes are accepted",
                    limits.max_uri_bytes
                ),
                "path",
            ),
            "",
        ),
        "431" => json_response(
            431,
            "Request Header Fields Too Large",
            &body(
                "too_large",
                format!(
                    "the request head (request line and headers) is over {} bytes, or has too many headers",
                    limits.max_head_bytes
                ),
                "headers",
            ),
            "",
        ),
        _ => return None,
    })
}

/// A connection whose automatic rejections from hyper (bodiless 400/414/431) leave as the
/// documented JSON error instead. Everything else passes through untouched.
pub struct JsonRejections<T> {
    inner: T,
    limits: ConnLimits,
    /// A rewritten answer not yet fully written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonRejections<T> {
    pub fn new(inner: T, limits: ConnLimits) -> Self {
        JsonRejections {
            inner,
            limits,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> JsonRejections<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonRejections<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonRejections<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        if let Some(json) = rewrite(buf, &this.limits) {
            // hyper counts its head as written; the JSON answer goes out in its place.
            this.pending = json;
            this.written = 0;
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each message head from one buffer, which is what
    // `rewrite` recognises.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_automatic_rejections_are_rewritten() {
        let l = ConnLimits::default();
        let hyper431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 12:00:00 GMT\r\n\r\n";
        let r = rewrite(hyper431, &l).expect("rewritten");
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        let body: serde_json::Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"], "too_large");
        assert_eq!(body["field"], "headers");
        // The router's own JSON errors pass untouched.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ours, &l).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ok, &l).is_none());
    }
}
