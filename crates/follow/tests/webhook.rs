//! Alert delivery without a node: an index built from regtest genesis plus a block made
//! here, a flagged-label alert, and endpoints that are down, slow, or fine.

#[path = "common/http_sink.rs"]
mod http_sink;

#[path = "common/payment_index.rs"]
mod payment_index;

use cointrail_follow::*;
use payment_index::{index_with_payment, ADDR};
use std::time::{Duration, Instant};

#[test]
fn down_slow_and_fixed_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let idx = index_with_payment(dir.path());
    assert_eq!(idx.tip_height(), Some(1));
    let mut e = AlertEngine::open(dir.path(), Hooks::default()).unwrap();
    e.sync(&idx).unwrap();
    let down = http_sink::start(503);
    // Accepts connections and never answers.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_url = format!("http://{}/slow", slow.local_addr().unwrap());
    let store = e.store().clone();
    for (n, u) in [("down", down.url.clone()), ("slow", slow_url)] {
        store
            .add_webhook(&Webhook {
                name: n.into(),
                url: u,
                secret: "a-long-enough-secret".into(),
            })
            .unwrap();
    }
    let short = Webhook {
        name: "x".into(),
        url: down.url.clone(),
        secret: "short".into(),
    };
    assert!(store
        .add_webhook(&short)
        .unwrap_err()
        .to_string()
        .contains("16 characters"));
    let tls = Webhook {
        name: "x".into(),
        url: "ftp://example.com".into(),
        secret: "a-long-enough-secret".into(),
    };
    assert!(store
        .add_webhook(&tls)
        .unwrap_err()
        .to_string()
        .contains("use http:// or https://"));

    e.add_rule(
        &idx,
        Some("ofac".into()),
        RuleKind::FlaggedReceive {
            categories: vec![],
            lookback_blocks: 6,
        },
        String::new(),
    )
    .unwrap();
    let flag = FlaggedAddress {
        address: ADDR.into(),
        label: "x".into(),
        category: "sanctions".into(),
        source: "t".into(),
    };
    let fired = e.labels_flagged(&idx, &[flag]).unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(store.outbox().unwrap().len(), 2);

    let cfg = DeliveryConfig {
        // Long enough that a loaded CI machine finishes the first round (the slow
        // endpoint alone takes the 300 ms timeout) well before anything is due again.
        base_backoff: Duration::from_millis(2500),
        max_backoff: Duration::from_millis(2500),
        max_attempts: 2,
        timeout: Duration::from_millis(300),
    };
    let t0 = Instant::now();
    let r = deliver_due(&store, &cfg).unwrap();
    assert_eq!(
        r,
        DeliveryReport {
            delivered: 0,
            failed: 2,
            dead: 0
        }
    );
    assert!(
        t0.elapsed() < Duration::from_millis(2400),
        "a slow endpoint is bounded by the timeout"
    );
    // Not due yet: nothing is tried.
    assert_eq!(
        deliver_due(&store, &cfg).unwrap(),
        DeliveryReport::default()
    );
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(deliver_due(&store, &cfg).unwrap().dead, 2);
    assert!(store.outbox().unwrap().is_empty());
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead
        .iter()
        .any(|d| d.webhook == "down" && d.last_error.contains("503")));
    assert!(dead
        .iter()
        .any(|d| d.webhook == "slow" && !d.last_error.is_empty()));

    // The endpoint is fixed (replaced): requeued dead letters are delivered, signed.
    let ok = http_sink::start(204);
    store
        .add_webhook(&Webhook {
            name: "down".into(),
            url: ok.url.clone(),
            secret: "a-long-enough-secret".into(),
        })
        .unwrap();
    assert!(store.remove_webhook("slow").unwrap());
    assert_eq!(store.requeue_dead().unwrap(), 2);
    let r = deliver_due(&store, &cfg).unwrap();
    // The removed webhook's entry is dropped, the other delivered.
    assert_eq!(r.failed + r.dead, 0);
    assert!(store.outbox().unwrap().is_empty() && store.dead_letters().unwrap().is_empty());
    let got = ok.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let sig = got[0].header("X-Cointrail-Signature").unwrap();
    assert!(cointrail_follow::hmac::verify_signature(
        b"a-long-enough-secret",
        &got[0].body,
        sig
    ));
    let a: Alert = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(a, fired[0]);
}
