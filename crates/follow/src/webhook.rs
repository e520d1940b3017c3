//! Webhook delivery from the outbox: HMAC-signed POSTs, retries with exponential backoff,
//! and a dead-letter list for endpoints that keep failing. An alert leaves the outbox only
//! when an endpoint answered 2xx, so a crash at any point can re-send but never lose one
//! (receivers deduplicate on `X-Cointrail-Alert-Id`).

use crate::hmac::signature_header;
use crate::http;
use crate::store::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// After this many failed attempts the delivery goes to the dead-letter list.
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub delivered: u32,
    pub failed: u32,
    pub dead: u32,
}

/// Try every delivery that is due now.
pub fn deliver_due(store: &AlertStore, cfg: &DeliveryConfig) -> Result<DeliveryReport, StoreError> {
    let mut rep = DeliveryReport::default();
    let now = now_ms();
    let hooks = store.webhooks()?;
    let due: Vec<Delivery> = store
        .outbox()?
        .into_iter()
        .filter(|d| d.next_try_ms <= now)
        .collect();
    for mut d in due {
        let key = format!("{}\0{}", d.webhook, d.alert_id);
        let hook = hooks.iter().find(|h| h.name == d.webhook);
        let alert = store.get(&d.alert_id)?;
        let result = match (hook, &alert) {
            (Some(h), Some(a)) => post_alert(h, a, cfg.timeout),
            // The webhook was removed, or the alert is gone: nothing to deliver.
            _ => Ok(()),
        };
        let db = store.db()?;
        let w = db.begin_write().map_err(|e| store.err(e))?;
        {
            let mut out = w.open_table(OUTBOX).map_err(|e| store.err(e))?;
            match result {
                Ok(()) => {
                    out.remove(key.as_str()).map_err(|e| store.err(e))?;
                    rep.delivered += 1;
                }
                Err(e) => {
                    d.attempts += 1;
                    d.last_error = e;
                    if d.attempts >= cfg.max_attempts {
                        out.remove(key.as_str()).map_err(|e| store.err(e))?;
                        w.open_table(DEAD)
                            .map_err(|e| store.err(e))?
                            .insert(key.as_str(), to_json(&d).as_slice())
                            .map_err(|e| store.err(e))?;
                        tracing::warn!(webhook = %d.webhook, alert = %d.alert_id, error = %d.last_error, "webhook delivery failed {} times: moved to the dead-letter list", d.attempts);
                        rep.dead += 1;
                    } else {
                        let back = cfg
                            .base_backoff
                            .saturating_mul(1u32 << (d.attempts - 1).min(20))
                            .min(cfg.max_backoff);
                        // From the failure, not the round's start: a slow endpoint must
                        // not eat its own backoff.
                        d.next_try_ms = now_ms() + back.as_millis() as u64;
                        out.insert(key.as_str(), to_json(&d).as_slice())
                            .map_err(|e| store.err(e))?;
                        rep.failed += 1;
                    }
                }
            }
        }
        w.commit().map_err(|e| store.err(e))?;
    }
    Ok(rep)
}

/// The earliest time (ms) a pending delivery is due, if any.
pub fn next_due_ms(store: &AlertStore) -> Result<Option<u64>, StoreError> {
    Ok(store.outbox()?.iter().map(|d| d.next_try_ms).min())
}

fn post_alert(h: &Webhook, a: &Alert, timeout: Duration) -> Result<(), String> {
    let url = http::parse_url(&h.url).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(a).map_err(|e| e.to_string())?;
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("X-Cointrail-Alert-Id", a.id.clone()),
        (
            "X-Cointrail-Signature",
            signature_header(h.secret.as_bytes(), &body),
        ),
    ];
    let r = http::post(&url, &headers, &body, timeout).map_err(|e| e.to_string())?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!("{} answered HTTP {}", h.url, r.status))
    }
}

/// Run deliveries on a thread until `stop`: woken at once by the engine after it queued
/// alerts (see [`crate::AlertEngine::set_delivery_waker`]), otherwise when the next retry
/// is due.
pub fn spawn_deliverer(
    store: Arc<AlertStore>,
    cfg: DeliveryConfig,
    wake: std::sync::mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = deliver_due(&store, &cfg) {
                tracing::error!("webhook delivery: {e}");
            }
            let wait = match next_due_ms(&store) {
                Ok(Some(t)) => Duration::from_millis(t.saturating_sub(now_ms())),
                _ => Duration::from_millis(500),
            }
            .clamp(Duration::from_millis(5), Duration::from_millis(500));
            match wake.recv_timeout(wait) {
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
    })
}
