//! What every request reads: an immutable snapshot of the data directory (engine, keys),
//! swapped whole when the data directory changes.
//!
//! A request takes the current snapshot (an `Arc` clone) once and answers from it alone, so
//! a block or a label import arriving mid-request never mixes two states in one answer. The
//! reloader builds the next snapshot beside the serving one and swaps it in only when it
//! loaded completely; if loading fails, the old one keeps serving and the error is logged.

use crate::keys::{KeyRecord, KeyStore};
use crate::metrics::Metrics;
use cointrail_engine::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// An operator's risk rule file replacing the built-in rules.
    pub rules: Option<PathBuf>,
    /// How often the data directory is checked for changes.
    pub reload_interval: Duration,
    /// Most subjects in one batch request.
    pub max_batch: usize,
    /// Default hops of indirect exposure (a request may ask for fewer or more, up to 6).
    pub max_hops: u32,
    /// Work bound of each screening walk (`ExposureParams::max_edges`).
    pub max_edges: usize,
    /// Off only for a single user on loopback (`--no-keys`).
    pub require_keys: bool,
    /// Timeouts and sizes a client's connection and requests must keep within.
    pub limits: crate::conn::ConnLimits,
    /// `--ui-open`: a request from a loopback peer that names a loopback host needs no key
    /// (an investigator on this machine); every other caller still does.
    pub open_on_loopback: bool,
}

impl ServeConfig {
    pub fn new(data_dir: &Path) -> ServeConfig {
        ServeConfig {
            data_dir: data_dir.to_path_buf(),
            rules: None,
            reload_interval: Duration::from_secs(2),
            max_batch: 1000,
            max_hops: 3,
            max_edges: cointrail_risk::exposure::DEFAULT_MAX_EDGES,
            require_keys: true,
            limits: crate::conn::ConnLimits::default(),
            open_on_loopback: false,
        }
    }
}

pub use cointrail_engine::inputs::Fingerprint;

pub struct Snapshot {
    pub engine: Engine,
    pub fingerprint: Fingerprint,
    /// Counts reloads since start: an answer's `provenance.snapshot` says which one served it.
    pub number: u64,
    pub loaded_at: u64,
}

pub struct KeySet {
    pub by_id: HashMap<String, KeyRecord>,
    pub fingerprint: Fingerprint,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct AppState {
    pub cfg: ServeConfig,
    snapshot: RwLock<Arc<Snapshot>>,
    keys: RwLock<Arc<KeySet>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    pub metrics: Metrics,
    pub started: Instant,
    /// Wakes the reloader at once (after the API wrote labels or cases).
    pub reload_now: tokio::sync::Notify,
    /// Set when the server begins its graceful stop: long-lived answers (the alert
    /// stream) end then, so the stop does not wait on them forever.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// redb allows one open handle per file per process: the API's label and case requests
    /// and the reloader take turns, and hold the files only while they use them, so the
    /// CLI can import labels while the service runs.
    store_turn: Mutex<()>,
}

/// Run `f` with the data directory's stores to ourselves; another process holding a store
/// (an import running) is waited for up to 5 s, then reported as 503.
pub fn with_stores<T>(
    st: &AppState,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> Result<T, crate::error::ApiError> {
    let _turn = st.store_turn.lock().unwrap_or_else(|p| p.into_inner());
    let t0 = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => {
                let e = match e.downcast::<crate::error::ApiError>() {
                    Ok(api) => return Err(api),
                    Err(e) => e,
                };
                let msg = cointrail_engine::error_text(&e);
                let busy = msg.contains("already open") || msg.contains("lock");
                if !busy {
                    return Err(crate::error::ApiError::internal(msg));
                }
                if t0.elapsed() > Duration::from_secs(5) {
                    return Err(crate::error::ApiError::unavailable(format!(
                        "the store is held by another process (an import?): {msg}; retry shortly"
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn engine_inputs(cfg: &ServeConfig) -> Vec<PathBuf> {
    // The index's commit record, and what the engine is built from besides the chain.
    let mut v = vec![cfg.data_dir.join("index").join("manifest.json")];
    v.extend(cointrail_engine::inputs::engine_inputs(
        &cfg.data_dir,
        cfg.rules.as_deref(),
    ));
    v
}

pub fn load_engine(cfg: &ServeConfig) -> anyhow::Result<(Engine, Fingerprint)> {
    // Taken first: a change during the load makes the next check load again.
    let fp = Fingerprint::of(&engine_inputs(cfg));
    let mut e = Engine::open_full(&cfg.data_dir, cfg.rules.as_deref())?;
    e.params.max_hops = cfg.max_hops;
    e.params.max_edges = cfg.max_edges;
    Ok((e, fp))
}

pub fn load_keys(data_dir: &Path) -> anyhow::Result<KeySet> {
    let path = KeyStore::path(data_dir);
    let fingerprint = Fingerprint::of(&[crate::keys::stamp_path(&path)]);
    if !path.exists() {
        return Ok(KeySet {
            by_id: HashMap::new(),
            fingerprint,
        });
    }
    let s = KeyStore::open(data_dir)?;
    let by_id = s.list()?.into_iter().map(|k| (k.id.clone(), k)).collect();
    Ok(KeySet { by_id, fingerprint })
}

impl AppState {
    pub fn load(cfg: ServeConfig) -> anyhow::Result<AppState> {
        let (engine, fingerprint) = load_engine(&cfg)?;
        let keys = load_keys(&cfg.data_dir)?;
        Ok(AppState {
            snapshot: RwLock::new(Arc::new(Snapshot {
                engine,
                fingerprint,
                number: 1,
                loaded_at: crate::keys::now(),
            })),
            keys: RwLock::new(Arc::new(keys)),
            buckets: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            started: Instant::now(),
            reload_now: tokio::sync::Notify::new(),
            stopping: tokio::sync::watch::channel(false).0,
            store_turn: Mutex::new(()),
            cfg,
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("snapshot lock").clone()
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().expect("keys lock").clone()
    }

    /// Reload what changed; returns whether the engine was replaced.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let kfp = Fingerprint::of(&[crate::keys::stamp_path(&KeyStore::path(&self.cfg.data_dir))]);
        if kfp != self.keys().fingerprint {
            let k = load_keys(&self.cfg.data_dir)?;
            tracing::info!(keys = k.by_id.len(), "API keys reloaded");
            *self.keys.write().expect("keys lock") = Arc::new(k);
        }
        let cur = self.snapshot();
        if Fingerprint::of(&engine_inputs(&self.cfg)) == cur.fingerprint {
            return Ok(false);
        }
        let t0 = Instant::now();
        let (engine, fingerprint) = {
            let _turn = self.store_turn.lock().unwrap_or_else(|p| p.into_inner());
            load_engine(&self.cfg)?
        };
        let tip = engine.index.tip_height();
        let next = Arc::new(Snapshot {
            engine,
            fingerprint,
            number: cur.number + 1,
            loaded_at: crate::keys::now(),
        });
        *self.snapshot.write().expect("snapshot lock") = next;
        self.metrics
            .reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            snapshot = cur.number + 1,
            tip_height = ?tip,
            ms = t0.elapsed().as_millis() as u64,
            "data directory changed: new snapshot serving"
        );
        Ok(true)
    }

    /// Take `cost` tokens from the key's bucket, or say how many seconds until they exist.
    pub fn take_tokens(&self, k: &KeyRecord, cost: u32) -> Result<(), u64> {
        let rate = k.rate_per_sec.max(1) as f64;
        let cap = (k.burst.max(1) as f64).max(cost as f64);
        let now = Instant::now();
        let mut b = self.buckets.lock().expect("bucket lock");
        let e = b.entry(k.id.clone()).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        e.tokens = (e.tokens + now.duration_since(e.last).as_secs_f64() * rate).min(cap);
        e.last = now;
        if e.tokens >= cost as f64 {
            e.tokens -= cost as f64;
            Ok(())
        } else {
            Err(((cost as f64 - e.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Check the data directory every `reload_interval`, or at once when woken.
pub async fn reloader(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(state.cfg.reload_interval) => {}
            _ = state.reload_now.notified() => {}
            _ = stop.changed() => return,
        }
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.reload_if_changed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                state
                    .metrics
                    .reload_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %cointrail_engine::error_text(&e), "reload failed; the previous snapshot keeps serving")
            }
            Err(e) => tracing::error!(error = %e, "reload task died"),
        }
    }
}
