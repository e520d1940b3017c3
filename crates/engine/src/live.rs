//! The alert engine's hooks (`cointrail_follow::hooks`) answered by the investigation's
//! engine: a case's traced outputs, the exposure of arriving funds, the nearest known
//! service, an entity's addresses. `cointrail follow`, `cointrail alerts` and the service
//! all plug in these.
//!
//! Loading an engine (attributions, clustering, case traces) takes seconds on a big chain,
//! so it is kept between blocks and reopened only when what it was built from changes: the
//! label store, the cases, `attribution.tsv`, the clustering, or the chain under it (a
//! reorganisation). New blocks alone do not reopen it: the hooks are handed the follower's
//! live view of the index, and ids are dense and append-only, so what was loaded stays
//! valid for the blocks that came after. A case's trace is run when the rule is added (or
//! the case changes); from then on the alert engine moves its frontier block by block.

use crate::inputs::{engine_inputs, Fingerprint};
use crate::Engine;
use cointrail_chain::view::{ChainView, OutNum};
use cointrail_follow::hooks::{
    EntityResolver, Exposure, ExposureCheck, Hooks, RiskLevel, ServiceHop, ServiceOracle,
    TaintWatch, WatchedAccount, WatchedOutput,
};
use cointrail_risk::rules::Level;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Most addresses an entity rule watches.
const ENTITY_LIMIT: usize = 100_000;
/// How far forward the nearest service is looked for.
const SERVICE_HOPS: u32 = 4;
const SERVICE_STEPS: usize = 10_000;

struct Loaded {
    engine: Arc<Engine>,
    stamp: Fingerprint,
    /// The chain the engine was opened on: its transaction count and last txid.
    tx_count: u64,
    last_txid: Option<[u8; 32]>,
    cases: HashMap<String, Option<Vec<WatchedOutput>>>,
    holders: HashMap<(String, u64), Vec<WatchedAccount>>,
    entities: HashMap<String, Option<Vec<String>>>,
}

/// One engine shared by the four hooks.
pub struct Live {
    data_dir: PathBuf,
    rules: Option<PathBuf>,
    cur: Mutex<Option<Loaded>>,
}

impl Live {
    pub fn new(data_dir: &Path, rules: Option<&Path>) -> Arc<Live> {
        Arc::new(Live {
            data_dir: data_dir.to_path_buf(),
            rules: rules.map(Path::to_path_buf),
            cur: Mutex::new(None),
        })
    }

    /// Run `f` on a current engine, (re)opening it if its inputs changed or `chain` is not
    /// the chain it was opened on. `None` when there is no index to open yet.
    fn with<T>(
        &self,
        chain: Option<&dyn ChainView>,
        f: impl FnOnce(&mut Loaded) -> T,
    ) -> Option<T> {
        let mut cur = self.cur.lock().unwrap_or_else(|p| p.into_inner());
        let files = engine_inputs(&self.data_dir, self.rules.as_deref());
        let stale = match cur.as_ref() {
            None => true,
            Some(l) => {
                l.stamp != Fingerprint::of(&files)
                    || chain.is_some_and(|c| {
                        c.tx_count() < l.tx_count
                            || (l.tx_count > 0
                                && Some(c.txid((l.tx_count - 1) as u32)) != l.last_txid)
                    })
            }
        };
        if stale {
            match Engine::open_full(&self.data_dir, self.rules.as_deref()) {
                Ok(e) => {
                    let n = e.index.tx_count();
                    *cur = Some(Loaded {
                        last_txid: (n > 0).then(|| e.index.txid((n - 1) as u32)),
                        tx_count: n,
                        engine: Arc::new(e),
                        // After opening: loading may bring the clustering up to date.
                        stamp: Fingerprint::of(&files),
                        cases: HashMap::new(),
                        holders: HashMap::new(),
                        entities: HashMap::new(),
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        "alert hooks: cannot open the data directory: {}",
                        crate::error_text(&e)
                    );
                    *cur = None;
                    return None;
                }
            }
        }
        cur.as_mut().map(f)
    }

    /// The hooks, all four backed by this engine.
    pub fn hooks(self: &Arc<Live>) -> Hooks {
        Hooks {
            taint: Some(Box::new(Shared(self.clone()))),
            exposure: Some(Box::new(Shared(self.clone()))),
            services: Some(Box::new(Shared(self.clone()))),
            entities: Some(Box::new(Shared(self.clone()))),
        }
    }
}

struct Shared(Arc<Live>);

/// Hooks backed by the data directory's engine (see [`Live`]).
pub fn hooks(data_dir: &Path, rules: Option<&Path>) -> Hooks {
    Live::new(data_dir, rules).hooks()
}

impl TaintWatch for Shared {
    /// The case's dormant frontier: traced outputs (FIFO, stopping at services) that are
    /// tainted, unspent and not at a service.
    fn watched_outputs(&self, case: &str) -> Option<Vec<WatchedOutput>> {
        self.0
            .with(None, |l| {
                if let Some(v) = l.cases.get(case) {
                    return v.clone();
                }
                let v = trace_frontier(&l.engine, case);
                l.cases.insert(case.to_string(), v.clone());
                v
            })
            .flatten()
    }

    /// The case's tainted Ethereum accounts at the end of block `through`, traced once per
    /// (case, block) while the engine stays current.
    fn watched_accounts(&self, case: &str, through: u64) -> Vec<WatchedAccount> {
        self.0
            .with(None, |l| {
                let k = (case.to_string(), through);
                if let Some(v) = l.holders.get(&k) {
                    return v.clone();
                }
                let v = trace_holders(&l.engine, case, through);
                // Blocks are evaluated in order: old blocks' answers are not asked again.
                if l.holders.len() >= 64 {
                    l.holders.clear();
                }
                l.holders.insert(k, v.clone());
                v
            })
            .unwrap_or_default()
    }
}

fn trace_frontier(e: &Engine, case: &str) -> Option<Vec<WatchedOutput>> {
    let store = cointrail_cases::CaseStore::open(&e.data_dir.join("cases.redb")).ok()?;
    let c = store.get(case).ok()?;
    drop(store);
    if !c.sources.is_empty() && c.sources.iter().all(cointrail_cases::is_evm_source) {
        // A case on Ethereum: its Bitcoin leg's frontier, where its loot crossed.
        let across = e
            .bridge_rules()
            .and_then(|r| e.trace_case_across(&c, &r))
            .unwrap_or_else(|err| {
                tracing::warn!("case {case}: {}", crate::error_text(&err));
                None
            });
        return Some(
            across
                .and_then(|x| x.btc)
                .map(|r| frontier_of(&r))
                .unwrap_or_default(),
        );
    }
    let Ok((src, _)) = e.case_sources(&c, 1) else {
        // The case exists but none of its outputs is indexed yet: nothing to watch now.
        return Some(vec![]);
    };
    let stops: Vec<String> = crate::STOP_CATEGORIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = e.trace(
        &src,
        cointrail_trace::TraceParams {
            labels: vec![case.to_string()],
            // The frontier is every unspent tainted output.
            max_rows: usize::MAX,
            ..Default::default()
        },
        &stops,
    );
    Some(frontier_of(&r))
}

/// The trace's dormant frontier: tainted, unspent, not at a service.
fn frontier_of(r: &cointrail_trace::TraceResult) -> Vec<WatchedOutput> {
    r.outputs
        .iter()
        .filter(|o| !o.spent && o.stop_reason.is_none() && o.tainted_sats > 0)
        .map(|o| WatchedOutput {
            txid: o.txid.clone(),
            vout: o.vout,
            sats: o.tainted_sats,
        })
        .collect()
}

/// The accounts holding a case's taint on Ethereum through block `through`.
fn trace_holders(e: &Engine, case: &str, through: u64) -> Vec<WatchedAccount> {
    let Ok(store) = cointrail_cases::CaseStore::open(&e.data_dir.join("cases.redb")) else {
        return Vec::new();
    };
    let Ok(c) = store.get(case) else {
        return Vec::new();
    };
    drop(store);
    match e.case_holders(&c, Some(through)) {
        Ok(Some(v)) => v
            .into_iter()
            .map(|(a, asset, amount)| WatchedAccount {
                chain: "ethereum".into(),
                address: a.to_checksum(None),
                asset: match asset {
                    cointrail_evm::movement::Asset::Native => "ETH".into(),
                    cointrail_evm::movement::Asset::Token(t) => t.to_checksum(None),
                },
                amount: amount.to_string(),
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(err) => {
            tracing::warn!("case {case}: {}", crate::error_text(&err));
            Vec::new()
        }
    }
}

fn level(l: Level) -> Option<RiskLevel> {
    Some(match l {
        Level::None => return None,
        Level::Low => RiskLevel::Low,
        Level::Medium => RiskLevel::Medium,
        Level::High => RiskLevel::High,
        Level::Severe => RiskLevel::Severe,
    })
}

impl ExposureCheck for Shared {
    fn exposure(&self, chain: &dyn ChainView, out: OutNum) -> Option<Exposure> {
        let s = self
            .0
            .with(Some(chain), |l| l.engine.screen_output_on(chain, out))?;
        let lvl = level(s.risk)?;
        let top = s
            .exposure
            .iter()
            .filter(|r| r.direction == "received")
            .max_by_key(|r| r.sats);
        let reason = match top {
            Some(r) => format!(
                "{:.0}% {} exposure to {}{}{}",
                r.share * 100.0,
                match r.exposure_type {
                    cointrail_risk::exposure::ExposureType::Direct => "direct",
                    cointrail_risk::exposure::ExposureType::Indirect => "indirect",
                    cointrail_risk::exposure::ExposureType::Ownership => "ownership",
                },
                r.category,
                if r.entities.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.entities.join(", "))
                },
                match s.fired_rules.first() {
                    Some(f) => format!(" (rule {})", f.rule),
                    None => String::new(),
                }
            ),
            None => "risk rules fired without a received exposure row".into(),
        };
        Some(Exposure { level: lvl, reason })
    }
}

impl ServiceOracle for Shared {
    fn nearest_service(&self, chain: &dyn ChainView, out: OutNum) -> Option<ServiceHop> {
        let (hops, name, category) = self
            .0
            .with(Some(chain), |l| {
                l.engine
                    .nearest_service(chain, out, SERVICE_HOPS, SERVICE_STEPS)
            })
            .flatten()?;
        Some(ServiceHop {
            hops,
            service: format!("{name} ({category})"),
        })
    }
}

impl EntityResolver for Shared {
    fn addresses_of(&self, entity: &str) -> Option<Vec<String>> {
        self.0
            .with(None, |l| {
                if let Some(v) = l.entities.get(entity) {
                    return v.clone();
                }
                let v = l.engine.entity_addresses(entity, ENTITY_LIMIT);
                l.entities.insert(entity.to_string(), v.clone());
                v
            })
            .flatten()
    }
}

/// Tell the alert rules about the labels an import just opened: the Bitcoin addresses among
/// them whose category carries risk (medium or more under the built-in rules: sanctions,
/// ransomware, theft, scams, mixers…) become "flagged", and `flagged_receive` rules alert
/// on funds they received within their look-back window. Without alert rules (no
/// `alerts.redb`) or without an index this does nothing. Returns the alerts raised.
pub fn flag_labels(
    data_dir: &Path,
    opened: &[cointrail_tags::Label],
) -> anyhow::Result<Vec<cointrail_follow::Alert>> {
    if !data_dir.join("alerts.redb").exists() || !data_dir.join("index").exists() {
        return Ok(vec![]);
    }
    let rules = cointrail_risk::RuleSet::default_rules();
    let index = cointrail_index::Index::open_reader(&data_dir.join("index"))?;
    let network = index.render_network();
    let flagged: Vec<cointrail_follow::FlaggedAddress> = opened
        .iter()
        .filter(|l| l.currency == "BTC")
        .filter_map(|l| {
            let cointrail_tags::Target::Address(a) = &l.target else {
                return None;
            };
            let cat =
                cointrail_risk::rules::normalize_category(l.risk_category().unwrap_or("unknown"));
            if rules.level_of(&cat) < Level::Medium {
                return None;
            }
            // Addresses of another network (a testnet label in a mainnet store) are skipped.
            cointrail_chain::AddressKey::parse(a, network).ok()?;
            Some(cointrail_follow::FlaggedAddress {
                address: a.clone(),
                label: l.label.clone(),
                category: cat,
                source: l.source.clone(),
            })
        })
        .collect();
    if flagged.is_empty() {
        return Ok(vec![]);
    }
    let mut e = cointrail_follow::AlertEngine::open(data_dir, Hooks::default())?;
    Ok(e.labels_flagged(&index, &flagged)?)
}

/// Keeps the data directory's clustering at the follower's tip, through reorganisations
/// (`cointrail follow` registers it). Does nothing until a clustering exists (`cointrail
/// cluster build`). New blocks are applied in memory at once; the files are rewritten
/// after every block while they are small, otherwise when [`save_due`] says so, and on
/// stop. The saved state names its last transaction, so whatever a crash loses is
/// re-applied (or, after a reorganisation, rebuilt) at the next open.
pub struct ClusterFollower {
    data_dir: PathBuf,
    clustering: Option<cointrail_clustering::Clustering>,
    dirty: bool,
    last_save: std::time::Instant,
    /// How long the last save took.
    last_save_took: std::time::Duration,
    /// The save token as of this follower's last open or save: when it differs, another
    /// process (`cluster build --change …`) saved a clustering, which the follower takes
    /// up instead of overwriting it with its own at its next save.
    token: Option<String>,
}

/// Clusterings of at most this many addresses (about 88 MB of arrays) are saved per block.
pub const SAVE_EACH_BLOCK_ADDRS: usize = 2_000_000;
/// A save writes only the pages that changed since the copy it writes was last saved
/// (`clustering/src/store.rs`), but a whole copy (48 bytes per address: about 53 GB on
/// mainnet) now and then (the first saves, a copy outgrown, a copy held by a reader), and
/// the follower waits for it: saves are spaced so that they take at most 1/this of the
/// time. With saves of a block's changes, that is every block.
const SAVE_SHARE: u32 = 20;

/// Whether a clustering of `addrs` addresses, last saved `since` ago by a save that took
/// `took`, is saved now: small ones at every block; others never so often that saving
/// takes more than 1/[`SAVE_SHARE`] of the time.
pub fn save_due(addrs: usize, since: std::time::Duration, took: std::time::Duration) -> bool {
    addrs <= SAVE_EACH_BLOCK_ADDRS || since >= took * SAVE_SHARE
}

impl ClusterFollower {
    pub fn new(data_dir: &Path) -> ClusterFollower {
        ClusterFollower {
            data_dir: data_dir.to_path_buf(),
            clustering: None,
            dirty: false,
            last_save: std::time::Instant::now(),
            last_save_took: std::time::Duration::ZERO,
            token: None,
        }
    }

    fn token_now(&self) -> Option<String> {
        let dir = crate::wiring::cluster_dir(&self.data_dir);
        cointrail_clustering::Clustering::saved_token(&dir)
    }

    /// Drop what this follower holds in memory, to open the clustering another process
    /// saved.
    fn take_up_other_save(&mut self) {
        tracing::info!("the clustering was saved by another process: taking it up");
        self.clustering = None;
        self.dirty = false;
    }

    fn sync(&mut self, index: &cointrail_index::Index) -> Result<(), String> {
        let dir = crate::wiring::cluster_dir(&self.data_dir);
        if self.clustering.is_some() && self.token_now() != self.token {
            self.take_up_other_save();
        }
        if self.clustering.is_none() {
            if !cointrail_clustering::Clustering::saved_exists(&dir) {
                return Ok(());
            }
            self.token = self.token_now();
            let c =
                cointrail_clustering::Clustering::open(&dir, crate::wiring::cluster_params(index))
                    .map_err(|e| format!("opening the clustering in {}: {e}", dir.display()))?;
            if let Some(note) = &c.open_note {
                tracing::warn!("{note}");
            }
            self.clustering = Some(c);
        }
        let c = self.clustering.as_mut().expect("opened above");
        self.dirty |= c.sync(index);
        if self.dirty
            && save_due(
                c.addr_count(),
                self.last_save.elapsed(),
                self.last_save_took,
            )
        {
            self.save()?;
        }
        Ok(())
    }

    fn save(&mut self) -> Result<(), String> {
        if let (Some(c), true) = (&self.clustering, self.dirty) {
            let t = std::time::Instant::now();
            // Checked under the save lock: another process's save is never overwritten.
            match c
                .save_unless_saved_since(&self.token)
                .map_err(|e| format!("saving the clustering: {e}"))?
            {
                Some(token) => {
                    if let Some(r) = c.last_save() {
                        match r.whole {
                            Some(why) => tracing::info!(
                                bytes = r.bytes,
                                "the clustering was saved as a whole copy: {why}"
                            ),
                            None => tracing::debug!(
                                bytes = r.bytes,
                                pages = r.pages,
                                "the clustering's changed pages were saved"
                            ),
                        }
                    }
                    self.token = Some(token);
                    self.dirty = false;
                    self.last_save = std::time::Instant::now();
                    self.last_save_took = t.elapsed();
                }
                None => self.take_up_other_save(),
            }
        }
        Ok(())
    }
}

impl cointrail_follow::ChainListener for ClusterFollower {
    fn rolled_back(&mut self, index: &cointrail_index::Index, _fork: u32) -> Result<(), String> {
        self.sync(index)
    }

    fn blocks_added(
        &mut self,
        index: &cointrail_index::Index,
        _first: u32,
        _last: u32,
    ) -> Result<(), String> {
        self.sync(index)
    }
}

impl Drop for ClusterFollower {
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn big_clusterings_are_saved_seldom_enough_that_saving_stays_a_small_share() {
        let min = |m: u64| Duration::from_secs(60 * m);
        // Small: every block.
        assert!(save_due(1_000, Duration::ZERO, Duration::ZERO));
        // Big, a block's changes saved in 0.2 s: every block (ten minutes apart).
        assert!(save_due(50_000_000, min(10), Duration::from_millis(200)));
        // Not twice in a few seconds, though.
        assert!(!save_due(
            50_000_000,
            Duration::from_secs(3),
            Duration::from_millis(200)
        ));
        // Mainnet-size, after a whole copy took four minutes: not before 80 minutes.
        assert!(!save_due(1_100_000_000, min(30), min(4)));
        assert!(save_due(1_100_000_000, min(80), min(4)));
    }
}
