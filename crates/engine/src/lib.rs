//! An investigation's data directory, opened as one thing: the chain index, and whatever
//! labels, clusters, cases and traces it holds. The CLI and the service both go through
//! here, so `cointrail screen --json` and the API give exactly the same answer.

use anyhow::{bail, Context, Result};
use bitcoin::hashes::Hash;
use cointrail_chain::view::{ChainView, OutNum};
use cointrail_index::Index;
use cointrail_risk::{Attributor, CaseTaint, ExposureParams, RuleSet, Screening};
use cointrail_trace::{CoinJoinInfo, Oracle, Source, Stop, TraceParams, TraceResult};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

pub mod account;
pub mod attr_state;
pub mod case_state;
pub mod evm;
pub mod inputs;
pub mod live;
pub mod state_file;
pub mod tx_events;
pub mod usd;
pub mod wiring;
pub mod xchain;

/// An error and its causes, each once, for people: many errors already name their source
/// in their own message (`path: io error`), so a cause whose text is already there is
/// skipped (`{:#}` would repeat it).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if s.contains(&c) {
            continue;
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&c);
    }
    s
}

/// Tells whether a transaction of the index is a CoinJoin (the clustering's detectors, once
/// wired in), for tracing and `tx`.
pub type CoinJoinDetector = Arc<dyn Fn(&Index, u32) -> Option<CoinJoinInfo> + Send + Sync>;

pub struct Engine {
    pub data_dir: PathBuf,
    pub index: Index,
    pub rules: RuleSet,
    pub params: ExposureParams,
    /// What attribution is plugged in (label sources and versions, clustering setting).
    pub attribution_note: serde_json::Value,
    /// The address clustering, when one was built (`cointrail cluster build`).
    pub clustering: Option<Arc<cointrail_clustering::Clustering>>,
    /// The checksum of the persisted attribution state in use (`attr_state`), which the
    /// persisted case taint records; none when attributions were built in memory.
    pub attribution_state: Option<u64>,
    /// How the case taint was obtained at the last `load_case_taint`: `opened` (the
    /// persisted one), `traced`, or why it was traced again.
    pub case_taint_note: Option<String>,
    /// How the attribution state was obtained at open: `opened`, `built`, or why it was
    /// rebuilt.
    pub attribution_state_note: Option<String>,
    attributor: Arc<dyn Attributor + Send + Sync>,
    coinjoins: CoinJoinDetector,
    taint: Arc<dyn CaseTaint + Send + Sync>,
    /// USD rates for every chain (`DATA_DIR/prices.csv`; empty until `wiring::attach`).
    pub prices: Arc<dyn cointrail_risk::UsdPrices + Send + Sync>,
    /// The data directory's EVM chains by name, once `attach_evm` opened them.
    pub evm: std::collections::BTreeMap<String, Arc<evm::EvmSide>>,
}

/// Categories where a trace stops and records exposure (services, not the thief's own).
pub const STOP_CATEGORIES: &[&str] = &[
    "exchange",
    "otc",
    "payment_processor",
    "gambling",
    "mining",
    "darknet",
    "mixer",
];

/// The trace oracle: stops at attributed services, CoinJoins from the detectors.
struct TraceOracle<'a> {
    e: &'a Engine,
    stop: &'a [String],
}

impl Oracle for TraceOracle<'_> {
    fn stop_at(&self, out: OutNum) -> Option<Stop> {
        let a = self.e.index.output_addr(out)?;
        self.e.attributor.attribute(a).into_iter().find_map(|l| {
            let cat = cointrail_risk::rules::normalize_category(&l.category);
            self.stop.contains(&cat).then_some(Stop {
                entity: self.e.entity_id(a),
                category: cat,
                name: l.name,
            })
        })
    }
    fn coinjoin(&self, tx: u32) -> Option<CoinJoinInfo> {
        (self.e.coinjoins)(&self.e.index, tx)
    }
    fn entity_of(&self, out: OutNum) -> Option<u64> {
        self.e.entity_id(self.e.index.output_addr(out)?)
    }
    fn labels_of(&self, out: OutNum) -> Vec<String> {
        match self.e.index.output_addr(out) {
            Some(a) => self
                .e
                .attributor
                .attribute(a)
                .into_iter()
                .map(|l| l.name)
                .collect(),
            None => vec![],
        }
    }
    fn address(&self, out: OutNum) -> Option<String> {
        self.e
            .index
            .output_addr(out)
            .map(|a| self.e.index.render_addr(a))
    }
    /// The outputs of the owner's cluster (its address without a clustering), for
    /// entity-aware tracing. A cluster past 100,000 addresses is cut there: the thief's are
    /// small, and a giant one is a service, where the trace stops anyway.
    fn entity_outputs(&self, out: OutNum) -> Vec<OutNum> {
        let Some(a) = self.e.index.output_addr(out) else {
            return Vec::new();
        };
        let addrs = match &self.e.clustering {
            Some(c) if (a as usize) < c.addr_count() => c.addresses(a, 0, 100_000),
            _ => vec![a],
        };
        addrs
            .into_iter()
            .flat_map(|x| self.e.index.addr_outputs(x))
            .collect()
    }
}

/// One tainted output of a traced case: (output, case, tainted sats, hops).
pub type CaseTaintRow = (OutNum, String, u64, u32);

/// Exact taint of traced cases per output, for screening.
struct TracedCases(HashMap<OutNum, Vec<(String, u64, u32)>, foldhash::fast::RandomState>);
impl CaseTaint for TracedCases {
    fn taint(&self, out: OutNum) -> Vec<(String, u64, u32)> {
        self.0.get(&out).cloned().unwrap_or_default()
    }
}

/// Soft (not proven) exposure of a screened output to a case (`Engine::soft_exposure`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SoftExposure {
    pub case: String,
    /// `TXID:VOUT` of the subject's output.
    pub output: String,
    /// Satoshis soft hops of the case's trace put there.
    pub soft_sats: u64,
    pub hops: u32,
    /// The soft rules the case's trace followed (see the trace's `soft_hops` for each).
    pub rules_in_case: Vec<String>,
}

/// What a screening request names.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Address(String),
    Tx(String),
    Output(String, u32),
}

impl Subject {
    /// `ADDR`, `TXID` or `TXID:VOUT`.
    pub fn parse(s: &str) -> Result<Subject> {
        let s = s.trim();
        if let Some((t, v)) = s.split_once(':') {
            if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                let vout = v
                    .parse()
                    .with_context(|| format!("'{v}' is not an output index"))?;
                return Ok(Subject::Output(t.to_string(), vout));
            }
        }
        if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Subject::Tx(s.to_string()));
        }
        Ok(Subject::Address(s.to_string()))
    }
}

impl Engine {
    pub fn open(data_dir: &Path) -> Result<Engine> {
        let dir = data_dir.join("index");
        // A data directory may hold only an EVM chain: its Bitcoin index is then empty (made
        // here once), so every command and the service open it the same way.
        if !dir.join("manifest.json").exists()
            && evm::EVM_CHAINS.iter().any(|c| evm::has_chain(data_dir, c))
        {
            Index::open_writer(&dir)
                .and_then(|mut w| w.commit())
                .with_context(|| format!("creating an empty Bitcoin index in {}", dir.display()))?;
        }
        let index = Index::open_reader(&dir)?;
        Ok(Engine {
            data_dir: data_dir.to_path_buf(),
            index,
            rules: RuleSet::default_rules(),
            params: ExposureParams::default(),
            attribution_note: serde_json::Value::Null,
            clustering: None,
            attribution_state: None,
            case_taint_note: None,
            attribution_state_note: None,
            attributor: Arc::new(cointrail_risk::Nobody),
            coinjoins: Arc::new(|_: &Index, _: u32| None),
            taint: Arc::new(cointrail_risk::Nobody),
            prices: Arc::new(usd::TablePrices::empty()),
            evm: Default::default(),
        })
    }

    /// Everything screening uses, as `cointrail screen` and the service see it: the index,
    /// the attributions and clustering (`wiring::attach`), the traced cases, and an
    /// operator's rule file if given.
    pub fn open_full(data_dir: &Path, rules: Option<&Path>) -> Result<Engine> {
        let mut e = Engine::open(data_dir)?;
        if let Some(r) = rules {
            e = e.with_rules_file(r)?;
        }
        wiring::attach(&mut e)?;
        // Before the case taint: a case on Ethereum reaches Bitcoin through its index.
        e.attach_evm()?;
        e.load_case_taint()?;
        Ok(e)
    }

    /// The attributions of an address (labels, directly or through its cluster).
    pub fn attributions(
        &self,
        a: cointrail_chain::view::AddrId,
    ) -> Vec<cointrail_risk::Attribution> {
        self.attributor.attribute(a)
    }

    /// Replace the built-in risk rules with an operator's YAML file.
    pub fn with_rules_file(mut self, path: &Path) -> Result<Engine> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading rule file {}", path.display()))?;
        self.rules =
            RuleSet::from_yaml(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?;
        Ok(self)
    }

    pub fn set_attributor(&mut self, a: Arc<dyn Attributor + Send + Sync>) {
        self.attributor = a;
    }

    pub fn set_coinjoin_detector(&mut self, d: CoinJoinDetector) {
        self.coinjoins = d;
    }

    /// Resolve a case against the index: its outputs, or an error naming what is missing.
    pub fn case_sources(
        &self,
        case: &cointrail_cases::Case,
        label: u32,
    ) -> Result<(Vec<Source>, cointrail_cases::Resolved)> {
        let r = cointrail_cases::resolve(
            &self.index,
            self.index.render_network(),
            &|a| self.index.addr_outputs(a),
            &case.sources,
        );
        if r.outputs.is_empty() {
            bail!(
                "case '{}' has no outputs in the index: {}",
                case.name,
                r.missing.join("; ")
            );
        }
        Ok((
            r.outputs
                .iter()
                .map(|&o| Source {
                    out: o,
                    label,
                    amount: None,
                })
                .collect(),
            r,
        ))
    }

    /// Trace sources forward with the engine's attributions and CoinJoin detection.
    pub fn trace(
        &self,
        sources: &[Source],
        mut p: TraceParams,
        stop_categories: &[String],
    ) -> TraceResult {
        let mut prov = self.provenance();
        prov["stop_categories"] = serde_json::json!(stop_categories);
        prov["attribution"] = serde_json::json!(self.attribution_note);
        p.provenance = prov;
        let oracle = TraceOracle {
            e: self,
            stop: stop_categories,
        };
        cointrail_trace::trace(&self.index, &oracle, sources, &p)
    }

    /// Where an output's satoshis came from under FIFO (fee last), without a case: every
    /// origin slice back to labelled parties (the default stop categories), coinbases,
    /// CoinJoins or the hop limit.
    pub fn fifo_origins(
        &self,
        out: OutNum,
        p: &cointrail_trace::backward::BackParams,
    ) -> cointrail_trace::backward::Origins {
        let stops: Vec<String> = STOP_CATEGORIES.iter().map(|s| s.to_string()).collect();
        let oracle = TraceOracle {
            e: self,
            stop: &stops,
        };
        cointrail_trace::backward::fifo_origins(&self.index, &oracle, out, p)
    }

    /// The exact taint of every stored case (FIFO, default stops), so screening counts it:
    /// from the persisted case taint (`case_state`) when it was built on these very
    /// attributions, cases and chain, else traced again (and persisted). The number of
    /// cases traced.
    pub fn load_case_taint(&mut self) -> Result<usize> {
        let (taint, n) = match self.attribution_state {
            Some(sum) => {
                let s = case_state::CaseTaintState::load(self, sum)?;
                let n = s.traced_cases();
                self.case_taint_note = Some(s.how.clone());
                (Arc::new(s) as Arc<dyn CaseTaint + Send + Sync>, n)
            }
            None => {
                let (rows, n) = self.trace_cases()?;
                self.case_taint_note = Some("traced".into());
                let mut map: HashMap<OutNum, Vec<(String, u64, u32)>, foldhash::fast::RandomState> =
                    HashMap::default();
                for (o, case, sats, hops) in rows {
                    map.entry(o).or_default().push((case, sats, hops));
                }
                (
                    Arc::new(TracedCases(map)) as Arc<dyn CaseTaint + Send + Sync>,
                    n,
                )
            }
        };
        self.taint = taint;
        Ok(n)
    }

    /// Trace every stored case: (output, case, tainted sats, hops) in case order, and how
    /// many cases were traced (those without outputs in the index are skipped).
    pub fn trace_cases(&self) -> Result<(Vec<CaseTaintRow>, usize)> {
        let path = self.data_dir.join("cases.redb");
        if !path.exists() {
            return Ok((Vec::new(), 0));
        }
        let store = cointrail_cases::CaseStore::open(&path)?;
        let cases = store.list()?;
        drop(store);
        let stops: Vec<String> = STOP_CATEGORIES.iter().map(|s| s.to_string()).collect();
        let mut rows = Vec::new();
        let mut n = 0;
        let on_ethereum = |c: &cointrail_cases::Case| {
            !c.sources.is_empty() && c.sources.iter().all(cointrail_cases::is_evm_source)
        };
        // Read only when a case is on Ethereum.
        let bridges = if cases.iter().any(on_ethereum) {
            self.bridge_rules()?
        } else {
            cointrail_account::xchain::BridgeRules::default()
        };
        for c in &cases {
            if on_ethereum(c) {
                // A case on Ethereum taints Bitcoin where its loot crossed (THORChain,
                // bridges): the Bitcoin leg of its cross-chain trace.
                let Some(x) = self.trace_case_across(c, &bridges)? else {
                    continue;
                };
                for row in x.btc.iter().flat_map(|r| r.outputs.iter()) {
                    if row.tainted_sats > 0 {
                        let o = self.outpoint(&row.txid, row.vout)?;
                        rows.push((o, c.name.clone(), row.tainted_sats, row.hops));
                    }
                }
                n += 1;
                continue;
            }
            let Ok((src, _)) = self.case_sources(c, 1) else {
                continue;
            };
            // The addresses that held the stolen coins are the victim's: coins at them are the
            // victim's own (before the theft, or paid back), not stolen funds the victim
            // received, so they carry no taint (screening the victim must not say Severe).
            let victims: std::collections::HashSet<_> = src
                .iter()
                .filter_map(|s| self.index.output_addr(s.out))
                .collect();
            let p = TraceParams {
                labels: vec![c.name.clone()],
                // Screening needs every tainted output, not a page of them.
                max_rows: usize::MAX,
                ..TraceParams::default()
            };
            let r = self.trace(&src, p, &stops);
            for row in r.outputs.iter().filter(|r| r.tainted_sats > 0) {
                let o = self.outpoint(&row.txid, row.vout)?;
                if self
                    .index
                    .output_addr(o)
                    .is_some_and(|a| victims.contains(&a))
                {
                    continue;
                }
                rows.push((o, c.name.clone(), row.tainted_sats, row.hops));
            }
            n += 1;
        }
        Ok((rows, n))
    }

    /// Soft exposure of a screened subject (issue 19): every stored case traced with soft
    /// hops (mixer demixing, CoinJoin change, post-mix cash-outs), and the soft satoshis
    /// those hops put on the subject's outputs, per case and output. Never part of the
    /// screening's proven exposure, its totals or its verdict.
    pub fn soft_exposure(&self, subject: &Subject) -> Result<Vec<SoftExposure>> {
        let idx = &self.index;
        let outs: Vec<OutNum> = match subject {
            Subject::Address(a) => idx.addr_outputs(idx.parse_address(a)?),
            Subject::Tx(t) => idx.tx_outputs(idx.parse_txid(t)?).collect(),
            Subject::Output(t, v) => vec![self.outpoint(t, *v)?],
        };
        let want: std::collections::HashSet<OutNum> = outs.into_iter().collect();
        let path = self.data_dir.join("cases.redb");
        if !path.exists() {
            return Ok(Vec::new());
        }
        let store = cointrail_cases::CaseStore::open(&path)?;
        let cases = store.list()?;
        drop(store);
        let stops: Vec<String> = STOP_CATEGORIES.iter().map(|s| s.to_string()).collect();
        let mut found = Vec::new();
        for c in &cases {
            let Ok((src, _)) = self.case_sources(c, 1) else {
                continue;
            };
            let p = TraceParams {
                labels: vec![c.name.clone()],
                max_rows: usize::MAX,
                demix: Some(cointrail_trace::DemixParams::default()),
                ..TraceParams::default()
            };
            let r = self.trace(&src, p, &stops);
            let mut rules: Vec<String> = r.soft_hops.iter().map(|h| h.rule.clone()).collect();
            rules.sort();
            rules.dedup();
            for row in r.outputs.iter().filter(|r| r.soft_sats > 0) {
                if want.contains(&row.out) {
                    found.push(SoftExposure {
                        case: c.name.clone(),
                        output: format!("{}:{}", row.txid, row.vout),
                        soft_sats: row.soft_sats,
                        hops: row.hops,
                        rules_in_case: rules.clone(),
                    });
                }
            }
        }
        Ok(found)
    }

    /// The case taint screening uses for one output (for comparisons and tests).
    pub fn case_taint_of(&self, out: OutNum) -> Vec<(String, u64, u32)> {
        self.taint.taint(out)
    }

    fn provenance(&self) -> serde_json::Value {
        let s = self.index.stats();
        serde_json::json!({
            "index_tip_height": s.tip_height,
            "index_tip_hash": s.tip_hash,
            "index_generation": self.index.manifest().generation,
            "network": s.network,
            "attribution": self.attribution_note,
        })
    }

    /// Screening over `view` with this engine's attributions, case taint and rules.
    fn screener<'a>(
        &'a self,
        view: &'a dyn ChainView,
        params: &'a ExposureParams,
    ) -> cointrail_risk::Screener<'a> {
        cointrail_risk::Screener {
            view,
            attr: &*self.attributor,
            taint: &*self.taint,
            rules: &self.rules,
            params,
            prices: &*self.prices,
        }
    }

    /// The one entity id every output names (trace JSON, `cluster show`, `/v1/addresses`,
    /// `/v1/entities/{id}`): the address's multi-input cluster id, when a clustering was
    /// built; none without one. A vendor's own entity numbers (attribution.tsv's fourth
    /// column) are not entity ids.
    pub fn entity_id(&self, a: u32) -> Option<u64> {
        let c = self.clustering.as_ref()?;
        ((a as usize) < c.addr_count()).then(|| c.cluster_of(a) as u64)
    }

    pub fn screen(&self, subject: &Subject) -> Result<Screening> {
        self.screen_with(subject, &self.params)
    }

    /// Screen with other parameters than the engine's (a request's own hop limit).
    pub fn screen_with(&self, subject: &Subject, params: &ExposureParams) -> Result<Screening> {
        let idx = &self.index;
        let mut s = match subject {
            Subject::Address(a) => {
                let id = idx.parse_address(a)?;
                let outs = idx.addr_outputs(id);
                self.screener(idx, params)
                    .address(id, &outs, &idx.render_addr(id))
            }
            Subject::Tx(t) => {
                let tx = idx.parse_txid(t)?;
                self.screener(idx, params).tx(tx)
            }
            Subject::Output(t, vout) => {
                let o = self.outpoint(t, *vout)?;
                self.screener(idx, params).output(o)
            }
        };
        s.provenance = self.provenance();
        Ok(s)
    }

    /// Screen one output forward (a withdrawal): whom it pays, beside `screen_with`'s
    /// source-of-funds view of the same output.
    pub fn screen_output_forward(
        &self,
        txid: &str,
        vout: u32,
        params: &ExposureParams,
    ) -> Result<Screening> {
        let o = self.outpoint(txid, vout)?;
        let mut s = self.screener(&self.index, params).output_forward(o);
        s.provenance = self.provenance();
        Ok(s)
    }

    /// Screen one output on another view of the same index: a follower's writer, which
    /// already holds blocks this engine's reader was opened before. Ids are dense and
    /// append-only, so the attributions and case taint loaded here stay valid for it (until
    /// a reorganisation; the caller reopens the engine then).
    pub fn screen_output_on(&self, view: &dyn ChainView, out: OutNum) -> Screening {
        let mut s = self.screener(view, &self.params).output(out);
        s.provenance = self.provenance();
        s
    }

    /// The nearest attributed service at or after `out`, following spends forward
    /// breadth-first up to `max_hops` transactions: `(hops, name, category)`, 0 hops when
    /// the output itself pays a service. Bounded by `max_steps` outputs visited.
    pub fn nearest_service(
        &self,
        view: &dyn ChainView,
        out: OutNum,
        max_hops: u32,
        max_steps: usize,
    ) -> Option<(u32, String, String)> {
        let mut queue = std::collections::VecDeque::from([(out, 0u32)]);
        let mut seen = std::collections::HashSet::new();
        while let Some((o, hops)) = queue.pop_front() {
            if !seen.insert(o) || seen.len() > max_steps {
                continue;
            }
            if let Some(a) = view.output_addr(o) {
                let found = self.attributor.attribute(a).into_iter().find(|l| {
                    STOP_CATEGORIES
                        .contains(&cointrail_risk::rules::normalize_category(&l.category).as_str())
                });
                if let Some(l) = found {
                    return Some((hops, l.name, l.category));
                }
            }
            if hops < max_hops {
                if let Some(t) = view.output_spender(o) {
                    for n in view.tx_outputs(t) {
                        queue.push_back((n, hops + 1));
                    }
                }
            }
        }
        None
    }

    /// Addresses of an entity: a cluster's id (its root address id, as `cluster show` and
    /// `/v1/entities/{id}` give it), or the name of a labelled party (every address labelled
    /// with that name, and with a clustering their clusters). At most `limit`.
    pub fn entity_addresses(&self, entity: &str, limit: usize) -> Option<Vec<String>> {
        let idx = &self.index;
        let mut ids: Vec<cointrail_chain::view::AddrId> = Vec::new();
        if let (Ok(id), Some(c)) = (entity.trim().parse::<u32>(), self.clustering.as_ref()) {
            if (id as usize) < c.addr_count() && c.cluster_of(id) == id {
                ids = c.addresses(id, 0, limit);
            }
        }
        if ids.is_empty() {
            let named = wiring::addresses_named(&self.data_dir, idx, entity.trim()).ok()?;
            let mut roots = std::collections::HashSet::new();
            for a in named {
                match self.clustering.as_ref() {
                    Some(c) if (a as usize) < c.addr_count() => {
                        let r = c.cluster_of(a);
                        if roots.insert(r) {
                            ids.extend(c.addresses(r, 0, limit));
                        }
                    }
                    _ => ids.push(a),
                }
                if ids.len() >= limit {
                    break;
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(limit);
        (!ids.is_empty()).then(|| ids.into_iter().map(|a| idx.render_addr(a)).collect())
    }

    pub fn outpoint(&self, txid: &str, vout: u32) -> Result<OutNum> {
        let t = self.index.parse_txid(txid)?;
        let r = self.index.tx_outputs(t);
        if vout as u64 >= r.end - r.start {
            bail!(
                "transaction {txid} has {} outputs; there is no output {vout}",
                r.end - r.start
            );
        }
        Ok(r.start + vout as u64)
    }

    pub fn parse_txid(s: &str) -> Result<[u8; 32]> {
        Ok(bitcoin::Txid::from_str(s)
            .with_context(|| format!("'{s}' is not a txid"))?
            .to_byte_array())
    }
}

#[cfg(test)]
mod error_text_tests {
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Err::<(), _>(io)
            .context("reading labels.yaml: no such file")
            .context("importing labels")
            .unwrap_err();
        assert_eq!(
            super::error_text(&e),
            "importing labels: reading labels.yaml: no such file"
        );
        assert_eq!(
            format!("{e:#}"),
            "importing labels: reading labels.yaml: no such file: no such file"
        );
    }
}
