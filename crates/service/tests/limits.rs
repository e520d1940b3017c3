//! Issue 20, items 5–7: slow and hostile clients on loopback against a real server. Every
//! rejection is the documented JSON; timeouts and the per-client cap are a second or two.

use cointrail_service::keys::{KeyStore, Scope};
use cointrail_service::state::AppState;
use cointrail_service::ServeConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Srv {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    key: String,
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(tune: impl FnOnce(&mut ServeConfig)) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = cointrail_index::Index::open_writer(&dir.path().join("index")).unwrap();
    let block =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet/0831328.bin");
    cointrail_index::ingest(
        &mut idx,
        cointrail_index::Source::Files(vec![block]),
        &Default::default(),
    )
    .unwrap();
    drop(idx);
    let (_, key) = KeyStore::open(dir.path())
        .unwrap()
        .create("tester", Scope::Read, 1, 5)
        .unwrap();
    let mut cfg = ServeConfig::new(dir.path());
    cfg.limits.header_read_timeout = Duration::from_secs(1);
    cfg.limits.body_read_timeout = Duration::from_secs(1);
    tune(&mut cfg);
    let st = Arc::new(AppState::load(cfg).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            cointrail_service::serve(st, l, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        })
    });
    let addr = rx.recv().unwrap();
    Srv {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
        _dir: dir,
        key,
    }
}

struct Resp {
    status: u16,
    head: String,
    body: serde_json::Value,
}

/// Send `req` (writing on, even if the server stops reading) and read the whole answer,
/// with a reader running from the start so an early answer is seen before any reset.
fn exchange(addr: SocketAddr, req: Vec<u8>) -> Resp {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if complete(&raw) {
                break;
            }
        }
        raw
    });
    let mut w = s;
    for c in req.chunks(16 << 10) {
        if w.write_all(c).is_err() {
            break;
        }
    }
    let raw = reader.join().unwrap();
    parse(&raw)
}

fn complete(raw: &[u8]) -> bool {
    let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    len.is_some_and(|n| raw.len() >= i + 4 + n)
}

fn parse(raw: &[u8]) -> Resp {
    let i = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..i]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_slice(&raw[i + 4..]).unwrap_or_else(|e| {
        panic!(
            "status {status}: the body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&raw[i + 4..])
        )
    });
    Resp { status, head, body }
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

#[test]
fn every_rejection_is_the_documented_json() {
    let s = start(|_| {});
    // 414: a 100 kB path (over hyper's own limit) and a 10 kB one (over ours).
    for n in [100_000, 10_000] {
        let r = exchange(
            s.addr,
            get(&format!("/v1/screen/address/{}", "a".repeat(n)), ""),
        );
        assert_eq!(r.status, 414, "{n}: {}", r.head);
        assert_eq!(r.body["error"], "too_large");
        assert_eq!(r.body["field"], "path");
    }
    // 431: a 1 MB key header, and many headers.
    let r = exchange(
        s.addr,
        get(
            "/health",
            &format!("X-API-Key: {}\r\n", "k".repeat(1 << 20)),
        ),
    );
    assert_eq!(r.status, 431, "{}", r.head);
    assert_eq!(r.body["error"], "too_large");
    assert_eq!(r.body["field"], "headers");
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = exchange(s.addr, get("/health", &many));
    assert_eq!(r.status, 431, "{}", r.head);
    // 400: a malformed request line and a malformed header.
    let r = exchange(s.addr, b"GARBAGE\r\n\r\n".to_vec());
    assert_eq!(r.status, 400, "{}", r.head);
    assert_eq!(r.body["error"], "invalid_input");
    let r = exchange(
        s.addr,
        b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
    );
    assert_eq!(r.status, 400, "{}", r.head);
    assert!(r
        .head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    // Normal answers are untouched.
    let r = exchange(s.addr, get("/health", ""));
    assert_eq!(r.status, 200);
}

#[test]
fn a_batch_over_the_keys_burst_names_the_limit_instead_of_429_forever() {
    let s = start(|_| {});
    let body = r#"{"subjects":["a","b","c","d","e","f"]}"#;
    let req = format!(
        "POST /v1/screen/batch HTTP/1.1\r\nHost: t\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        s.key,
        body.len()
    );
    for _ in 0..2 {
        let r = exchange(s.addr, req.clone().into_bytes());
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.body["field"], "subjects");
        let m = r.body["message"].as_str().unwrap();
        assert!(m.contains("burst of 5"), "{m}");
        std::thread::sleep(Duration::from_millis(1100));
    }
    // Within the burst it is screened (each subject answers, here with its own error).
    let body = r#"{"subjects":["a","b","c","d","e"]}"#;
    let req = format!(
        "POST /v1/screen/batch HTTP/1.1\r\nHost: t\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        s.key,
        body.len()
    );
    std::thread::sleep(Duration::from_millis(5100));
    let r = exchange(s.addr, req.into_bytes());
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Whether the server closed the connection within `within` (EOF or reset).
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(t0.elapsed()),
        }
        if t0.elapsed() > within {
            return None;
        }
    }
}

#[test]
fn slow_clients_time_out() {
    let s = start(|_| {});
    // A connection that never sends a byte.
    let mut idle = TcpStream::connect(s.addr).unwrap();
    let t = closed_within(&mut idle, Duration::from_secs(4)).expect("idle connection closed");
    assert!(t >= Duration::from_millis(500), "{t:?}");

    // A head trickled a byte at a time: the clock runs from the start of the head.
    let mut slow = TcpStream::connect(s.addr).unwrap();
    slow.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let t0 = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut = false;
    for b in head.iter() {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if t0.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    assert!(
        cut || closed_within(&mut slow, Duration::from_millis(500)).is_some(),
        "a trickled head is cut off"
    );
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());

    // A body announced at 50 MB and never sent: answered at once.
    let t0 = Instant::now();
    let r = exchange(
        s.addr,
        format!(
            "POST /v1/screen/batch HTTP/1.1\r\nHost: t\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n",
            s.key
        )
        .into_bytes(),
    );
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(r.body["error"], "too_large");
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );

    // A body that stops halfway: 408 after the body timeout.
    let t0 = Instant::now();
    let r = exchange(
        s.addr,
        format!(
            "POST /v1/screen/batch HTTP/1.1\r\nHost: t\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"subjects\"",
            s.key
        )
        .into_bytes(),
    );
    assert_eq!(r.status, 408, "{:?}", r.body);
    assert_eq!(r.body["error"], "timeout");
    let t = t0.elapsed();
    assert!(
        t >= Duration::from_millis(900) && t < Duration::from_secs(4),
        "{t:?}"
    );
}

#[test]
fn connections_per_client_are_capped() {
    let s = start(|c| {
        c.limits.max_conns_per_client = 3;
        c.limits.header_read_timeout = Duration::from_secs(5);
    });
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = exchange(s.addr, get("/health", ""));
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"], "too_many_connections");
    assert!(r.head.to_ascii_lowercase().contains("retry-after: 1"));
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let r = exchange(s.addr, get("/health", ""));
    assert_eq!(r.status, 200);
}
