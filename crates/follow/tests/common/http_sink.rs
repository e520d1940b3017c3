//! A tiny HTTP server on 127.0.0.1 that records POSTs and answers a fixed status.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Sink {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
}

pub fn start(status: u16) -> Sink {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            serve_one(s, status, &g);
        }
    });
    Sink { url, got }
}

/// The same over TLS (rustls, ring) with the given certificate chain and key: the receiver
/// a user points an https webhook at. The URL names `localhost`, which the chain must cover.
pub fn start_tls(
    status: u16,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Sink {
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://localhost:{}/hook", l.local_addr().unwrap().port());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
            // A client that rejects the certificate aborts the handshake: the read fails
            // and nothing is recorded.
            serve_one(rustls::StreamOwned::new(conn, s), status, &g);
        }
    });
    Sink { url, got }
}

/// Read one request (headers, Content-Length body), record it, answer `status`.
fn serve_one<S: Read + Write>(s: S, status: u16, g: &Mutex<Vec<Received>>) {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).is_err() {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    g.lock().unwrap().push(Received {
        headers,
        body,
        at: std::time::Instant::now(),
    });
    let s = r.get_mut();
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = s.flush();
}
