//! Alerts delivered to https receivers: one whose certificate chains to a CA the user
//! trusts through COINTRAIL_CA_FILE (delivered, signed), one signed by a CA nobody trusts
//! (refused, with the certificate named in the error, and kept for retry).
//! A test binary of its own: the trusted CA file is read once per process.

#[path = "common/http_sink.rs"]
mod http_sink;

#[path = "common/payment_index.rs"]
mod payment_index;

use cointrail_follow::*;
use payment_index::{index_with_payment, ADDR};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::time::Duration;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A server certificate for `localhost` and its key.
    fn leaf(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (
            vec![cert.der().clone(), self.issuer.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

#[test]
fn https_webhook_with_a_trusted_ca_and_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = Ca::new("cointrail test CA");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, trusted.issuer.pem()).unwrap();
    // Before the first request: the process-wide client reads it once.
    std::env::set_var(cointrail_follow::http::CA_FILE_ENV, &ca_file);

    let (chain, key) = trusted.leaf();
    let good = http_sink::start_tls(200, chain, key);
    let (chain, key) = Ca::new("some other CA").leaf();
    let rogue = http_sink::start_tls(200, chain, key);

    let idx = index_with_payment(dir.path());
    let mut e = AlertEngine::open(dir.path(), Hooks::default()).unwrap();
    e.sync(&idx).unwrap();
    let store = e.store().clone();
    for (n, u) in [("siem", &good.url), ("rogue", &rogue.url)] {
        assert!(u.starts_with("https://"));
        store
            .add_webhook(&Webhook {
                name: n.into(),
                url: u.clone(),
                secret: "a-long-enough-secret".into(),
            })
            .unwrap();
    }
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
    let fired = e
        .labels_flagged(
            &idx,
            &[FlaggedAddress {
                address: ADDR.into(),
                label: "x".into(),
                category: "sanctions".into(),
                source: "t".into(),
            }],
        )
        .unwrap();
    assert_eq!(fired.len(), 1);

    let cfg = DeliveryConfig {
        base_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(60),
        max_attempts: 3,
        timeout: Duration::from_secs(10),
    };
    let r = deliver_due(&store, &cfg).unwrap();
    assert_eq!((r.delivered, r.failed, r.dead), (1, 1, 0), "{r:?}");

    let got = good.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(cointrail_follow::hmac::verify_signature(
        b"a-long-enough-secret",
        &got[0].body,
        got[0].header("X-Cointrail-Signature").unwrap()
    ));
    assert_eq!(
        got[0].header("X-Cointrail-Alert-Id"),
        Some(fired[0].id.as_str())
    );
    let a: Alert = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(a, fired[0]);

    // The untrusted receiver saw nothing; its delivery waits in the outbox with the reason.
    assert!(rogue.got.lock().unwrap().is_empty());
    let out = store.outbox().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].webhook, "rogue");
    assert!(
        out[0].last_error.to_lowercase().contains("certificate"),
        "{}",
        out[0].last_error
    );
}
