//! `follow --chain ethereum` evaluates the alert rules against a real anvil: a drain rule
//! on a watched 0x address fires when ETH leaves it (and not for blocks before the rule, nor
//! for a payment *to* it), the alert is in the same alert log `cointrail alerts` reads, and
//! a real local HTTP receiver gets the HMAC-signed POST.

#[path = "../../evmrpc/tests/common/mod.rs"]
mod common;

use common::anvil::Anvil;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;

fn ok(data: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(data)
        .arg("--quiet")
        .args(args)
        .env("COINTRAIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A webhook receiver on 127.0.0.1: each request's (method, signature header, body).
fn receiver() -> (String, mpsc::Receiver<(String, String, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let method = line.split(' ').next().unwrap_or("").to_string();
            let (mut len, mut sig) = (0usize, String::new());
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "x-cointrail-signature" => sig = v.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            if tx.send((method, sig, body)).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn alerts(data: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&ok(data, &["--json", "alerts", "list", "--all"])).unwrap();
    v.as_array()
        .cloned()
        .or_else(|| v["alerts"].as_array().cloned())
        .unwrap_or_else(|| panic!("{v}"))
}

#[test]
fn a_watched_address_sending_eth_raises_a_stored_alert_and_a_signed_webhook() {
    let a = Anvil::start();
    let acc = a.accounts();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let follow = |d: &Path| {
        ok(
            d,
            &["follow", "--chain", "ethereum", "--rpc", &a.url, "--once"],
        )
    };

    // History before the rule: the watched address already sent once.
    let h0 = a.send(json!({"from": acc[7], "to": acc[8], "value": "0x1000"}));
    a.receipt(&h0);
    follow(&data);
    ok(
        &data,
        &[
            "alerts",
            "rules",
            "add",
            "drain",
            "--id",
            "eth-watch",
            "--address",
            &acc[7],
            "--threshold-wei",
            "1",
            "--window-blocks",
            "1",
        ],
    );
    let secret = "0123456789abcdef-eth";
    let (url, got) = receiver();
    ok(
        &data,
        &["alerts", "webhook", "add", "siem", &url, "--secret", secret],
    );

    // Paid *to* the watched address: no alert.
    let h1 = a.send(json!({"from": acc[9], "to": acc[7], "value": "0x2000"}));
    a.receipt(&h1);
    follow(&data);
    assert!(alerts(&data).is_empty(), "{:?}", alerts(&data));

    // The watched address sends 1 ETH: one alert naming the transaction.
    let snap = a.snapshot();
    let h2 = a.send(json!({"from": acc[7], "to": acc[8], "value": "0xde0b6b3a7640000"}));
    assert_eq!(a.receipt(&h2)["status"], "0x1");
    let out = follow(&data);
    assert!(out.contains("ALERT"), "{out}");
    let al = alerts(&data);
    assert_eq!(al.len(), 1, "{al:?}");
    assert_eq!(al[0]["rule_id"], "eth-watch");
    assert_eq!(al[0]["kind"], "drain");
    assert_eq!(al[0]["txid"], h2);
    assert_eq!(al[0]["details"]["chain"], "ethereum");
    assert_eq!(al[0]["details"]["window_sent_wei"], "1000000000000000000");

    let (method, sig, body) = got
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the webhook receiver got a POST");
    assert_eq!(method, "POST");
    assert!(
        cointrail_follow::hmac::verify_signature(secret.as_bytes(), &body, &sig),
        "bad signature {sig}"
    );
    let posted: Value = serde_json::from_slice(&body).unwrap();
    let posted_id = posted["id"].as_str().or(posted["alert"]["id"].as_str());
    assert_eq!(posted_id, al[0]["id"].as_str(), "{posted}");

    // Following again adds nothing: the same event never alerts twice.
    follow(&data);
    assert_eq!(alerts(&data).len(), 1);

    // A reorganisation drops the block: the alert stays on record, orphaned.
    a.revert(snap);
    for i in 0..2 {
        let h = a.send(json!({"from": acc[9], "to": acc[8], "value": format!("{:#x}", 100 + i)}));
        a.receipt(&h);
    }
    follow(&data);
    let al = alerts(&data);
    assert_eq!(al.len(), 1, "{al:?}");
    assert_eq!(al[0]["orphaned"], true, "{al:?}");
}
