//! The Bitcoin RPC client's HTTP side without a node: a server on 127.0.0.1 that answers
//! the way Bitcoin Core does (Basic auth, 401 without a body, RPC errors as HTTP 500 with a
//! JSON body) checks credentials from the URL, error mapping and a body that is not JSON.
//! The real-node tests are in regtest.rs.

use cointrail_follow::{Auth, RpcClient, RpcError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// Answers each request from `reply(method, authorization)` -> (status, body).
fn fake_core(reply: fn(&str, Option<&str>) -> (u16, String)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let (mut len, mut auth) = (0usize, None);
            let _ = r.read_line(&mut line);
            loop {
                line.clear();
                if r.read_line(&mut line).is_err() || line.trim_end().is_empty() {
                    break;
                }
                let (k, v) = line.trim_end().split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "authorization" => auth = Some(v.trim().to_string()),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let (status, body) = reply(req["method"].as_str().unwrap(), auth.as_deref());
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn credentials_from_the_url_errors_and_bad_bodies() {
    let url = fake_core(|method, auth| {
        // "alice:p@ss:word" in Basic auth.
        if auth != Some("Basic YWxpY2U6cEBzczp3b3Jk") {
            return (401, String::new());
        }
        match method {
            "getbestblockhash" => (
                200,
                r#"{"result":"0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206","error":null,"id":0}"#.into(),
            ),
            "getblockhash" => (
                500,
                r#"{"result":null,"error":{"code":-8,"message":"Block height out of range"},"id":1}"#.into(),
            ),
            "getblockchaininfo" => (
                500,
                r#"{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":2}"#.into(),
            ),
            _ => (200, "<html>not json</html>".into()),
        }
    });
    let rpc = RpcClient::new(&format!("http://alice:p%40ss%3Aword@{url}"), Auth::None).unwrap();
    assert!(
        !rpc.url().contains("alice"),
        "credentials stay out of messages: {}",
        rpc.url()
    );
    assert_eq!(
        rpc.get_best_block_hash().unwrap().to_string(),
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    );
    assert_eq!(rpc.get_block_hash(99).unwrap(), None);
    let e = rpc.get_blockchain_info().unwrap_err();
    assert!(
        matches!(e, RpcError::Rpc { code: -28, .. }) && e.is_transient(),
        "{e}"
    );
    let e = rpc.call("other", serde_json::json!([])).unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");

    let wrong = RpcClient::new(
        &format!("http://{url}"),
        Auth::UserPass("alice".into(), "no".into()),
    )
    .unwrap();
    let e = wrong.get_best_block_hash().unwrap_err();
    assert!(matches!(e, RpcError::Auth(_)) && !e.is_transient(), "{e}");

    // https is accepted (a provider behind TLS; tests/webhook_tls.rs has a real handshake).
    let tls = RpcClient::new("https://user:pw@node.example:8332/", Auth::None).unwrap();
    assert_eq!(tls.url(), "https://node.example:8332/");
}
