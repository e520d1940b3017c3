//! The tracer: taint from a case's sources, carried transaction by transaction in chain
//! order (each transaction evaluated once with all its tainted inputs, [BS]'s order), until
//! it rests unspent, reaches a service, enters a mixer, goes to fees, or hits a limit.
//! Memory is the frontier (tainted outputs not yet spent) plus the result rows.

use crate::model::{tainted, transfer, FeePolicy, InRule, Label, Model, OutRule, Run, CLEAN};
use crate::soft::{DemixEntry, DemixParams, DetectedMixer, SoftHop};
use cointrail_chain::view::{display_txid, ChainView, OutNum, Prevout, TxNum};
use serde::Serialize;
use std::cmp::Reverse;

mod demix;
mod mixerdetect;
mod remixflow;
use std::collections::{BinaryHeap, VecDeque};

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Stolen coins to follow: an output, under a label (a case), whole or in part.
#[derive(Clone, Debug)]
pub struct Source {
    pub out: OutNum,
    /// 1-based index into `TraceParams::labels`.
    pub label: Label,
    /// Satoshis of the output that are stolen (default: all of it).
    pub amount: Option<u64>,
}

/// Where tracing stops: a service (exchange, OTC desk, …) or any category the caller stops at.
#[derive(Clone, Debug, Serialize)]
pub struct Stop {
    pub entity: Option<u64>,
    pub category: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CoinJoinInfo {
    pub protocol: String,
    pub anonymity_set: u32,
    pub equal_value: u64,
    pub equal_outputs: Vec<OutNum>,
}

/// What the tracer asks of the rest of the system: who owns an output, which transactions
/// are CoinJoins. Implemented over clusters and labels by the caller.
pub trait Oracle {
    fn stop_at(&self, _out: OutNum) -> Option<Stop> {
        None
    }
    fn coinjoin(&self, _tx: TxNum) -> Option<CoinJoinInfo> {
        None
    }
    fn entity_of(&self, _out: OutNum) -> Option<u64> {
        None
    }
    fn labels_of(&self, _out: OutNum) -> Vec<String> {
        Vec::new()
    }
    /// The address of an output as a person reads it.
    fn address(&self, _out: OutNum) -> Option<String> {
        None
    }
    /// Every output paid to the owner of `out`: its cluster's outputs, or its address's
    /// without a clustering. Entity-aware tracing follows their later spends.
    fn entity_outputs(&self, _out: OutNum) -> Vec<OutNum> {
        Vec::new()
    }
}

/// No stops, no CoinJoins: follow everything.
pub struct NoOracle;
impl Oracle for NoOracle {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoinJoinPolicy {
    /// Taint stops at the CoinJoin; the anonymity set and candidates are reported.
    Stop,
    HaircutThrough,
    FifoThrough,
    PoisonThrough,
}

impl CoinJoinPolicy {
    pub fn parse(s: &str) -> Result<CoinJoinPolicy, String> {
        match s {
            "stop" => Ok(CoinJoinPolicy::Stop),
            "haircut-through" => Ok(CoinJoinPolicy::HaircutThrough),
            "fifo-through" => Ok(CoinJoinPolicy::FifoThrough),
            "poison-through" => Ok(CoinJoinPolicy::PoisonThrough),
            _ => Err(format!("unknown CoinJoin policy '{s}': use stop, haircut-through, fifo-through or poison-through")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TraceParams {
    pub model: Model,
    pub fee_policy: FeePolicy,
    pub max_hops: Option<u32>,
    /// Haircut floors: a branch whose taint falls below either is dropped (counted as limit).
    pub dust_sats: u64,
    pub min_fraction: f64,
    pub coinjoin: CoinJoinPolicy,
    /// Names of the labels (cases), index = label - 1.
    pub labels: Vec<String>,
    /// Caller's provenance: index tip, label versions, clustering setting.
    pub provenance: serde_json::Value,
    /// Rows kept in `outputs`; past it rows are counted, not stored (poison can reach most
    /// of a chain), and `outputs_truncated` says so. Totals are always complete.
    pub max_rows: usize,
    /// Entity-aware tracing: once taint reaches the thief's own entity (the common-input
    /// clusters of the first hop's outputs, grown by the thief's self-spends), the
    /// entity's later spends draw on what it received (one FIFO balance), whichever of
    /// its coins they spend.
    pub entity_aware: bool,
    /// Soft hops through custodial mixers and CoinJoins (`soft.rs`); none when unset.
    pub demix: Option<DemixParams>,
}

impl Default for TraceParams {
    fn default() -> Self {
        TraceParams {
            model: Model::Ordered(InRule::First, OutRule::First),
            fee_policy: FeePolicy::Last,
            max_hops: None,
            dust_sats: 546,
            min_fraction: 0.0,
            coinjoin: CoinJoinPolicy::Stop,
            labels: vec!["case".into()],
            provenance: serde_json::Value::Null,
            max_rows: 200_000,
            entity_aware: false,
            demix: None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub source_sats: u64,
    /// Tainted and still unspent, not at a service: the dormant funds.
    pub unspent_sats: u64,
    pub fee_sats: u64,
    /// Reached a stop (a service): recorded as exposure there.
    pub stopped_sats: u64,
    /// Entered a CoinJoin or mixer under the `stop` policy.
    pub mixer_sats: u64,
    /// Cut by the hop limit or the haircut floors.
    pub limit_sats: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunOut {
    pub label: String,
    pub offset: u64,
    pub amount: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub txid: String,
    pub vout: u32,
    pub address: Option<String>,
    pub value: u64,
    pub tainted_sats: u64,
    pub hops: u32,
    pub height: u32,
    pub spent: bool,
    pub entity: Option<u64>,
    pub labels: Vec<String>,
    /// `service:<category>`, `mixer:<protocol>` is reported on the spending tx instead,
    /// `hop_limit`, `floor`, or null where the taint went on (or rests unspent).
    pub stop_reason: Option<String>,
    /// Behind a CoinJoin followed through: an inference, not a fact.
    pub inferred: bool,
    /// Satoshis carried here by soft hops (never part of `tainted_sats`).
    #[serde(default)]
    pub soft_sats: u64,
    /// Entity-aware tracing, an unspent output of the thief's entity: the part of the
    /// entity's balance left at the end that it holds (the balance is spent oldest first,
    /// so what is left is the newest receipts, placed on the newest outputs), hard and soft.
    #[serde(default)]
    pub held_sats: u64,
    #[serde(default)]
    pub held_soft_sats: u64,
    /// Which cases' satoshis it holds; for ordered models, with their source offsets.
    pub runs: Vec<RunOut>,
    #[serde(skip)]
    pub out: OutNum,
}

#[derive(Clone, Debug, Serialize)]
pub struct Destination {
    pub name: String,
    pub category: String,
    pub entity: Option<u64>,
    pub tainted_sats: u64,
    /// Reached only through soft hops (kept apart from `tainted_sats`).
    pub soft_sats: u64,
    pub share: f64,
    pub min_hops: u32,
    pub first_height: u32,
    pub last_height: u32,
    pub outputs: u64,
    /// Transactions from the theft to one of the outputs (theft first).
    pub path: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MixerEntry {
    pub txid: String,
    pub protocol: String,
    pub anonymity_set: u32,
    pub tainted_in: u64,
    /// Each equal output with its prior share of the tainted amount (1/e).
    pub candidates: Vec<(String, u32, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeelStep {
    pub txid: String,
    pub peel_value: u64,
    pub peel_tainted: u64,
    pub destination: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeelChain {
    pub length: usize,
    pub first_txid: String,
    pub peeled_sats: u64,
    pub steps: Vec<PeelStep>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TraceResult {
    pub parameters: serde_json::Value,
    pub provenance: serde_json::Value,
    pub totals: Totals,
    /// What soft hops carried on: their `source_sats` is what they took up, the rest
    /// where it went; never part of `totals`.
    pub soft_totals: Totals,
    /// Per label (case), the same totals.
    pub by_label: Vec<(String, Totals)>,
    pub conserving: bool,
    pub destinations: Vec<Destination>,
    pub mixers: Vec<MixerEntry>,
    pub peel_chains: Vec<PeelChain>,
    /// Followed soft hops, each with its rule, score and facts.
    pub soft_hops: Vec<SoftHop>,
    /// Every tainted custodial-mixer deposit with its ranked candidate withdrawals.
    pub demix: Vec<DemixEntry>,
    /// Entity-aware tracing: the thief's addresses the trace took as its own, with why.
    pub thief_entity: Vec<EntityMember>,
    /// Soft hops: owners without a label taken for mixers by their pattern, with the facts.
    pub detected_mixers: Vec<DetectedMixer>,
    pub txs_visited: u64,
    pub tainted_outputs: u64,
    pub outputs_truncated: bool,
    /// Labels claiming the same satoshis where models keep the first (§1.4).
    pub warnings: Vec<String>,
    pub outputs: Vec<Row>,
}

/// An address taken as the thief's own.
#[derive(Clone, Debug, Serialize)]
pub struct EntityMember {
    pub address: String,
    /// `first-hop` (the theft paid it), `cluster` (spent together with one), `self-spend`
    /// (paid by a transaction of the thief's coins only), or a soft rule.
    pub rule: String,
    pub soft: bool,
}

struct Tainted {
    runs: Vec<Run>,
    hops: u32,
    inferred: bool,
}

struct Tracer<'a> {
    view: &'a dyn ChainView,
    oracle: &'a dyn Oracle,
    p: &'a TraceParams,
    frontier: HashMap<OutNum, Tainted>,
    heap: BinaryHeap<Reverse<TxNum>>,
    queued: HashSet<TxNum>,
    /// For each visited transaction, the transaction its taint came from (shortest hops).
    parent: HashMap<TxNum, TxNum>,
    rows: Vec<Row>,
    /// Hard labels first (`1..=nl`), then their soft twins (`nl+1..=2nl`).
    totals: Vec<Totals>,
    nl: usize,
    source_total: u64,
    mixers: Vec<MixerEntry>,
    warnings: Vec<String>,
    visited: u64,
    tainted_outputs: u64,
    truncated: bool,
    /// Destinations, accumulated as taint stops at services (rows may be capped).
    dest: std::collections::BTreeMap<(String, String), (Destination, OutNum)>,
    /// The transaction being processed: spends at or before it are past.
    now: TxNum,
    ent: EntityState,
    soft: SoftState,
}

/// Entity-aware tracing: the thief's entities and the one balance they share.
#[derive(Default)]
struct EntityState {
    /// Entity key → why it is the thief's and one output of it.
    members: HashMap<u64, (&'static str, OutNum)>,
    /// What reached the thief's entity and is not spent yet, oldest first.
    pool: VecDeque<Run>,
    pool_sum: u64,
    pool_hops: u32,
    pool_from: Option<TxNum>,
    /// Transactions that already drew on the balance (a later round must not draw again).
    drawn: HashSet<TxNum>,
}

struct Deposit {
    out: OutNum,
    runs: Vec<Run>,
    hops: u32,
    mixer: String,
}

struct CjHit {
    tx: TxNum,
    runs: Vec<Run>,
    /// The whole value of the inputs that brought taint in (the change rule's subset sum).
    tin_value: u64,
    hops: u32,
    protocol: String,
}

#[derive(Default)]
struct SoftState {
    deposits: Vec<Deposit>,
    cj_hits: Vec<CjHit>,
    /// Every CoinJoin the taint entered, over all passes (`remix-flow` starts from them).
    all_hits: Vec<TxNum>,
    hops: Vec<SoftHop>,
    demix: Vec<DemixEntry>,
    /// Withdrawals and post-mix outputs already used by a soft hop.
    claimed_tx: HashSet<TxNum>,
    claimed_out: HashSet<OutNum>,
    /// Every output the trace tainted (post-mix consolidation asks).
    held: HashSet<OutNum>,
    members: Vec<(OutNum, String)>,
    /// Listed outputs (while soft hops are on, so that a later pass adds to its row).
    row_of: HashMap<OutNum, usize>,
    /// The detector's answer per transaction: (equal value, equal outputs).
    cj_cache: HashMap<TxNum, Option<(u64, Vec<OutNum>)>>,
    /// Owners judged for the mixer pattern: the stop a detected one became.
    detected_cache: HashMap<u64, Option<Stop>>,
    detected: Vec<DetectedMixer>,
}

impl Tracer<'_> {
    fn label_name(&self, l: Label) -> String {
        let (base, soft) = if l as usize > self.nl {
            (l - self.nl as Label, true)
        } else {
            (l, false)
        };
        let name = self
            .p
            .labels
            .get(base as usize - 1)
            .cloned()
            .unwrap_or_else(|| format!("label{base}"));
        if soft {
            format!("{name} (soft)")
        } else {
            name
        }
    }

    fn soft_of(&self, l: Label) -> Label {
        if l as usize > self.nl {
            l
        } else {
            l + self.nl as Label
        }
    }

    /// (hard, soft) satoshis of a run list.
    fn hard_soft(&self, runs: &[Run]) -> (u64, u64) {
        let (mut h, mut s) = (0, 0);
        for r in runs.iter().filter(|r| r.label != CLEAN) {
            if r.label as usize > self.nl {
                s += r.amount;
            } else {
                h += r.amount;
            }
        }
        (h, s)
    }

    fn add(&mut self, runs: &[Run], f: impl Fn(&mut Totals, u64)) {
        for r in runs.iter().filter(|r| r.label != CLEAN) {
            f(&mut self.totals[r.label as usize - 1], r.amount);
        }
    }

    fn queue(&mut self, s: TxNum) {
        if self.queued.insert(s) {
            self.heap.push(Reverse(s));
        }
    }

    /// The owner key of an output: its cluster, else its address (high bit set).
    fn ekey(&self, o: OutNum) -> Option<u64> {
        self.oracle
            .entity_of(o)
            .or_else(|| self.view.output_addr(o).map(|a| (1u64 << 63) | a as u64))
    }

    fn is_thief(&self, o: OutNum) -> bool {
        !self.ent.members.is_empty()
            && self
                .ekey(o)
                .is_some_and(|k| self.ent.members.contains_key(&k))
    }

    /// Take an output's owner as the thief's; its coins spent from now on draw on the
    /// thief's balance, so their spends are queued.
    fn add_thief(&mut self, o: OutNum, rule: &'static str) {
        let Some(k) = self.ekey(o) else { return };
        if self.ent.members.contains_key(&k) {
            return;
        }
        self.ent.members.insert(k, (rule, o));
        let mut outs = self.oracle.entity_outputs(o);
        outs.push(o);
        for x in outs {
            if let Some(s) = self.view.output_spender(x) {
                if s > self.now {
                    self.queue(s);
                }
            }
        }
    }

    /// Whether `o`'s address is first paid by `t`.
    fn fresh(&self, o: OutNum, t: TxNum) -> bool {
        let a = self.view.output_addr(o);
        a.is_some()
            && self
                .oracle
                .entity_outputs(o)
                .into_iter()
                .filter(|&x| self.view.output_addr(x) == a)
                .all(|x| self.view.output_tx(x) >= t)
    }

    fn to_pool(&mut self, runs: Vec<Run>, hops: u32, from: TxNum) {
        for r in runs
            .into_iter()
            .filter(|r| r.label != CLEAN && r.amount > 0)
        {
            self.ent.pool_sum += r.amount;
            self.ent.pool.push_back(r);
        }
        if self.ent.pool_from.is_none() || hops < self.ent.pool_hops {
            self.ent.pool_hops = hops;
        }
        self.ent.pool_from = Some(from);
    }

    /// `value` sats of the thief's balance, oldest first (clean beyond it).
    fn draw(&mut self, value: u64) -> Vec<Run> {
        let mut need = value;
        let mut out = Vec::new();
        while need > 0 {
            let Some(front) = self.ent.pool.front_mut() else {
                break;
            };
            let take = front.amount.min(need);
            out.push(Run::tainted(front.label, take, front.offset));
            front.amount -= take;
            front.offset += take;
            need -= take;
            self.ent.pool_sum -= take;
            if front.amount == 0 {
                self.ent.pool.pop_front();
            }
        }
        if need > 0 {
            out.push(Run::clean(need));
        }
        out
    }

    /// A new tainted output: decide whether the taint rests, stops or goes on.
    fn register(&mut self, o: OutNum, runs: Vec<Run>, hops: u32, inferred: bool) {
        let view = self.view;
        let t = view.output_tx(o);
        let value = view.output_value(o);
        let (hard, soft) = self.hard_soft(&runs);
        let taint = hard + soft;
        let spender = view.output_spender(o);
        let ordered = matches!(self.p.model, Model::Ordered(..));
        self.tainted_outputs += 1;
        let mut stop = if hops > 0 {
            self.oracle.stop_at(o)
        } else {
            None
        };
        // Soft hops: an owner with no label may be a mixer by its pattern (not the thief's
        // own entity, not the first hop).
        if stop.is_none() && hops > 1 && self.p.demix.is_some() && !self.is_thief(o) {
            stop = self.detected_mixer(o);
        }
        if let Some(s) = &stop {
            self.destination(o, s, hard, soft, hops);
            if self.p.demix.is_some() && s.category == "mixer" {
                self.soft.deposits.push(Deposit {
                    out: o,
                    runs: runs.clone(),
                    hops,
                    mixer: s.name.clone(),
                });
            }
        }
        if self.p.demix.is_some() {
            self.soft.held.insert(o);
        }
        // Entity-aware: what reaches the thief's own entity joins its balance.
        let pooled = stop.is_none()
            && self.p.entity_aware
            && hops >= 1
            && (self.is_thief(o) || {
                if hops == 1 {
                    self.add_thief(o, "first-hop");
                    true
                } else {
                    false
                }
            });
        // Rows past `max_rows` are not kept (poison can reach most of a chain, and a row
        // costs hundreds of bytes); destinations and totals stay complete either way.
        if self.rows.len() >= self.p.max_rows {
            self.truncated = true;
            if stop.is_some() {
                self.add(&runs, |t, a| t.stopped_sats += a);
            } else if pooled {
                self.to_pool(runs, hops, t);
            } else {
                self.register_unlisted(o, runs, hops, inferred, taint, spender);
            }
            return;
        }
        let runs_out: Vec<RunOut> = runs
            .iter()
            .filter(|r| r.label != CLEAN)
            .map(|r| RunOut {
                label: self.label_name(r.label),
                offset: if ordered { r.offset } else { 0 },
                amount: r.amount,
            })
            .collect();
        // A soft pass may bring more to an output an earlier pass listed: one row each.
        if let Some(&idx) = self.soft.row_of.get(&o) {
            let row = &mut self.rows[idx];
            row.tainted_sats += hard;
            row.soft_sats += soft;
            row.runs.extend(runs_out);
            self.decide(idx, o, runs, hops, inferred, stop, pooled, taint, spender);
            return;
        }
        let row = Row {
            txid: display_txid(view.txid(t)),
            vout: view.output_vout(o),
            address: self.oracle.address(o),
            value,
            tainted_sats: hard,
            hops,
            height: view.tx_height(t),
            spent: spender.is_some(),
            entity: self.oracle.entity_of(o),
            labels: self.oracle.labels_of(o),
            stop_reason: None,
            inferred,
            soft_sats: soft,
            held_sats: 0,
            held_soft_sats: 0,
            runs: runs_out,
            out: o,
        };
        let idx = self.rows.len();
        self.rows.push(row);
        if self.p.demix.is_some() {
            self.soft.row_of.insert(o, idx);
        }
        self.decide(idx, o, runs, hops, inferred, stop, pooled, taint, spender);
    }

    /// Where the taint of a listed output goes: a service, the thief's balance, a limit,
    /// or on (or it rests unspent).
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        idx: usize,
        o: OutNum,
        runs: Vec<Run>,
        hops: u32,
        inferred: bool,
        stop: Option<Stop>,
        pooled: bool,
        taint: u64,
        spender: Option<TxNum>,
    ) {
        let t = self.view.output_tx(o);
        if let Some(s) = stop {
            self.rows[idx].stop_reason = Some(format!("service:{}", s.category));
            if self.rows[idx].entity.is_none() {
                self.rows[idx].entity = s.entity;
            }
            if !self.rows[idx].labels.contains(&s.name) {
                self.rows[idx].labels.push(s.name);
            }
            self.add(&runs, |t, a| t.stopped_sats += a);
            return;
        }
        if pooled {
            self.rows[idx].stop_reason = Some("thief_entity".into());
            self.to_pool(runs, hops, t);
            return;
        }
        if let Some(reason) = self.limit(hops, taint, spender) {
            self.rows[idx].stop_reason = Some(reason.into());
            self.add(&runs, |t, a| t.limit_sats += a);
            return;
        }
        self.rest_or_go_on(o, runs, hops, inferred, spender);
    }

    /// Count a service stop into its destination (name from the stop, else the address).
    fn destination(&mut self, o: OutNum, s: &Stop, hard: u64, soft: u64, hops: u32) {
        let view = self.view;
        let h = view.tx_height(view.output_tx(o));
        let name = if s.name.is_empty() {
            self.oracle.address(o).unwrap_or_default()
        } else {
            s.name.clone()
        };
        let entity = self.oracle.entity_of(o).or(s.entity);
        let e = self
            .dest
            .entry((s.category.clone(), name.clone()))
            .or_insert_with(|| {
                (
                    Destination {
                        name,
                        category: s.category.clone(),
                        entity,
                        tainted_sats: 0,
                        soft_sats: 0,
                        share: 0.0,
                        min_hops: u32::MAX,
                        first_height: u32::MAX,
                        last_height: 0,
                        outputs: 0,
                        path: vec![],
                    },
                    o,
                )
            });
        let d = &mut e.0;
        d.tainted_sats += hard;
        d.soft_sats += soft;
        d.min_hops = d.min_hops.min(hops);
        d.first_height = d.first_height.min(h);
        d.last_height = d.last_height.max(h);
        d.outputs += 1;
    }

    /// The hop limit or a haircut floor, when one ends the branch here.
    fn limit(&self, hops: u32, taint: u64, spender: Option<TxNum>) -> Option<&'static str> {
        if self.p.max_hops.is_some_and(|m| hops >= m) && spender.is_some() {
            return Some("hop_limit");
        }
        if self.p.model == Model::Haircut
            && hops > 0
            && (taint < self.p.dust_sats
                || (taint as f64) < self.p.min_fraction * self.source_total as f64)
        {
            return Some("floor");
        }
        None
    }

    /// An output past `max_rows`: the same decisions as `register`, without a row.
    fn register_unlisted(
        &mut self,
        o: OutNum,
        runs: Vec<Run>,
        hops: u32,
        inferred: bool,
        taint: u64,
        spender: Option<TxNum>,
    ) {
        if self.limit(hops, taint, spender).is_some() {
            self.add(&runs, |t, a| t.limit_sats += a);
            return;
        }
        self.rest_or_go_on(o, runs, hops, inferred, spender);
    }

    fn rest_or_go_on(
        &mut self,
        o: OutNum,
        runs: Vec<Run>,
        hops: u32,
        inferred: bool,
        spender: Option<TxNum>,
    ) {
        match spender {
            None => self.add(&runs, |t, a| t.unspent_sats += a),
            Some(s) => {
                self.frontier.insert(
                    o,
                    Tainted {
                        runs,
                        hops,
                        inferred,
                    },
                );
                self.queue(s);
            }
        }
    }

    fn process(&mut self, t: TxNum) {
        self.visited += 1;
        self.now = t;
        let view = self.view;
        let mut ins: Vec<Vec<Run>> = Vec::new();
        let (mut hops, mut inferred, mut from) = (u32::MAX, false, None);
        let mut unknown = false;
        // Entity-aware: a transaction spending the thief's coins draws on its balance,
        // once (a later soft round may visit it again).
        let entity = self.p.entity_aware && !self.ent.members.is_empty();
        let may_draw = entity && !self.ent.drawn.contains(&t);
        let mut all_thief = entity;
        let mut drew = false;
        for i in view.tx_inputs(t) {
            match view.input_prevout(i) {
                Prevout::Output(o) => {
                    let mine = entity && self.is_thief(o);
                    all_thief &= mine;
                    let held = self.frontier.remove(&o);
                    if mine && may_draw {
                        if let Some(x) = held {
                            inferred |= x.inferred;
                            self.to_pool(x.runs, x.hops, view.output_tx(o));
                        }
                        let runs = self.draw(view.output_value(o));
                        drew = true;
                        if tainted(&runs, None) > 0 && self.ent.pool_hops < hops {
                            hops = self.ent.pool_hops;
                            from = self.ent.pool_from;
                        }
                        ins.push(runs);
                        continue;
                    }
                    match held {
                        Some(x) => {
                            if x.hops < hops {
                                hops = x.hops;
                                from = Some(view.output_tx(o));
                            }
                            inferred |= x.inferred;
                            ins.push(x.runs);
                        }
                        None => ins.push(vec![Run::clean(view.output_value(o))]),
                    }
                }
                Prevout::External { .. } => {
                    unknown = true;
                    all_thief = false;
                    ins.push(vec![]);
                }
                Prevout::Coinbase => {
                    all_thief = false;
                    ins.push(vec![]);
                }
            }
        }
        if drew {
            self.ent.drawn.insert(t);
        }
        if let Some(f) = from {
            if f != t {
                self.parent.insert(t, f);
            }
        }
        let outs: Vec<OutNum> = view.tx_outputs(t).collect();
        let values: Vec<u64> = outs.iter().map(|&o| view.output_value(o)).collect();
        let mut model = self.p.model;
        if let Some(cj) = self.oracle.coinjoin(t) {
            match self.p.coinjoin {
                CoinJoinPolicy::Stop => {
                    let tin_value: u64 = ins
                        .iter()
                        .filter(|r| tainted(r, None) > 0)
                        .flatten()
                        .map(|r| r.amount)
                        .sum();
                    let all: Vec<Run> = ins.into_iter().flatten().collect();
                    let tin = tainted(&all, None);
                    self.add(&all, |t, a| t.mixer_sats += a);
                    if self.p.demix.is_some() && tin > 0 {
                        self.soft.cj_hits.push(CjHit {
                            tx: t,
                            tin_value,
                            runs: all.iter().filter(|r| r.label != CLEAN).copied().collect(),
                            hops: if hops == u32::MAX { 0 } else { hops },
                            protocol: cj.protocol.clone(),
                        });
                    }
                    let e = cj.equal_outputs.len().max(1) as u64;
                    self.mixers.push(MixerEntry {
                        txid: display_txid(view.txid(t)),
                        protocol: cj.protocol.clone(),
                        anonymity_set: cj.anonymity_set,
                        tainted_in: tin,
                        candidates: cj
                            .equal_outputs
                            .iter()
                            .map(|&o| {
                                (
                                    display_txid(view.txid(t)),
                                    view.output_vout(o),
                                    tin.min(cj.equal_value * e) / e,
                                )
                            })
                            .collect(),
                    });
                    return;
                }
                CoinJoinPolicy::HaircutThrough => model = Model::Haircut,
                CoinJoinPolicy::FifoThrough => {
                    model = Model::Ordered(InRule::First, OutRule::First)
                }
                CoinJoinPolicy::PoisonThrough => model = Model::Poison,
            }
            inferred = true;
            all_thief = false;
        }
        // A transaction of the thief's coins only pays the thief, unless it pays a service,
        // a labelled party or an address used before (a CoinJoin coordinator's fee address
        // is reused; the thief's own are fresh). (A payment to an unknown party would be taken as the
        // thief's: measured by `scripts/eval-soft.py` as the entity's foreign addresses.)
        if all_thief && !ins.is_empty() {
            for &o in &outs {
                // A labelled party (a CoinJoin coordinator's fee address) is never the thief.
                if self.oracle.stop_at(o).is_none()
                    && self.oracle.labels_of(o).is_empty()
                    && self.fresh(o, t)
                {
                    self.add_thief(o, "self-spend");
                }
            }
        }
        // An input from before the index has an unknown value: it is treated as clean and
        // as large as needed to pay the outputs, so the known taint is still conserved.
        if unknown {
            let have: u64 = ins.iter().flatten().map(|r| r.amount).sum();
            let need: u64 = values.iter().sum();
            if need > have {
                if let Some(slot) = ins.iter_mut().find(|r| r.is_empty()) {
                    slot.push(Run::clean(need - have));
                }
            }
            self.warnings.push(format!("{}: spends outputs from before the index; their value is unknown and treated as clean", display_txid(view.txid(t))));
        }
        let x = match transfer(model, self.p.fee_policy, &ins, &values) {
            Ok(x) => x,
            Err(e) => {
                self.warnings.push(format!(
                    "{}: {e}; taint stops here",
                    display_txid(view.txid(t))
                ));
                let all: Vec<Run> = ins.into_iter().flatten().collect();
                self.add(&all, |t, a| t.limit_sats += a);
                return;
            }
        };
        let fee = x.fee.clone();
        self.add(&fee, |t, a| t.fee_sats += a);
        for (o, runs) in outs.into_iter().zip(x.outputs) {
            if tainted(&runs, None) > 0 {
                self.register(o, runs, hops.saturating_add(1), inferred);
            }
        }
    }

    /// Place the thief's balance left at the end on the entity's unspent outputs that have
    /// rows, newest first, each up to its value (the dormant loot of an entity-aware trace).
    fn place_pool(&mut self) {
        let mut left: Vec<Run> = self.ent.pool.iter().copied().collect();
        for i in (0..self.rows.len()).rev() {
            if left.is_empty() {
                break;
            }
            let r = &self.rows[i];
            if r.spent || r.stop_reason.as_deref() != Some("thief_entity") {
                continue;
            }
            let mut room = r.value;
            let (mut h, mut sf) = (0, 0);
            while room > 0 {
                let Some(back) = left.last_mut() else { break };
                let take = back.amount.min(room);
                if back.label as usize > self.nl {
                    sf += take;
                } else {
                    h += take;
                }
                back.amount -= take;
                room -= take;
                if back.amount == 0 {
                    left.pop();
                }
            }
            self.rows[i].held_sats = h;
            self.rows[i].held_soft_sats = sf;
        }
    }

    fn path_to(&self, o: OutNum) -> Vec<String> {
        let mut t = self.view.output_tx(o);
        let mut path = vec![t];
        while let Some(&p) = self.parent.get(&t) {
            path.push(p);
            t = p;
            if path.len() > 10_000 {
                break;
            }
        }
        path.reverse();
        path.into_iter()
            .map(|t| display_txid(self.view.txid(t)))
            .collect()
    }
}

/// Trace `sources` forward through `view`.
pub fn trace(
    view: &dyn ChainView,
    oracle: &dyn Oracle,
    sources: &[Source],
    p: &TraceParams,
) -> TraceResult {
    let nlabels = sources
        .iter()
        .map(|s| s.label as usize)
        .max()
        .unwrap_or(0)
        .max(p.labels.len());
    let mut tr = Tracer {
        view,
        oracle,
        p,
        frontier: HashMap::default(),
        heap: BinaryHeap::new(),
        queued: HashSet::default(),
        parent: HashMap::default(),
        rows: Vec::new(),
        // Each label has a soft twin at `label + nlabels` for what soft hops carry.
        totals: vec![Totals::default(); 2 * nlabels],
        nl: nlabels,
        source_total: 0,
        mixers: Vec::new(),
        warnings: Vec::new(),
        visited: 0,
        tainted_outputs: 0,
        truncated: false,
        dest: Default::default(),
        now: 0,
        ent: EntityState::default(),
        soft: SoftState::default(),
    };
    // Sources, merged per output: several cases may claim parts of one output.
    let mut by_out: std::collections::BTreeMap<OutNum, Vec<Run>> = Default::default();
    let mut seen_labels: HashSet<(OutNum, Label)> = HashSet::default();
    for s in sources {
        if s.label == 0 || !seen_labels.insert((s.out, s.label)) {
            continue;
        }
        let value = view.output_value(s.out);
        let runs = by_out.entry(s.out).or_default();
        let used: u64 = runs.iter().map(|r| r.amount).sum();
        let amount = s.amount.unwrap_or(value).min(value - used);
        if amount < s.amount.unwrap_or(value) {
            tr.warnings.push(format!("output {}:{}: claimed by several cases beyond its value; the first claim keeps the satoshis", display_txid(view.txid(view.output_tx(s.out))), view.output_vout(s.out)));
        }
        if amount > 0 {
            runs.push(Run::tainted(s.label, amount, 0));
            tr.totals[s.label as usize - 1].source_sats += amount;
            tr.source_total += amount;
        }
    }
    for (o, mut runs) in by_out {
        let used: u64 = runs.iter().map(|r| r.amount).sum();
        let value = view.output_value(o);
        if used < value {
            runs.push(Run::clean(value - used));
        }
        tr.register(o, runs, 0, false);
    }
    // Soft hops are found once the coin-level trace has run (the series of mixer deposits
    // must be known to judge each); what they carry is then traced the same way, in rounds.
    for _round in 0..64 {
        while let Some(Reverse(t)) = tr.heap.pop() {
            tr.process(t);
        }
        if tr.p.demix.is_none() || !tr.soft_round() {
            break;
        }
    }
    tr.remix_flow();
    tr.place_pool();
    let pool: Vec<Run> = tr.ent.pool.drain(..).collect();
    tr.add(&pool, |t, a| t.unspent_sats += a);
    // What remains in the frontier was queued behind a tx that never came: cannot happen
    // in a consistent index, but never lose satoshis silently.
    let left: Vec<Run> = tr.frontier.drain().flat_map(|(_, x)| x.runs).collect();
    tr.add(&left, |t, a| t.unspent_sats += a);

    let sum = |ts: &[Totals]| {
        let mut totals = Totals::default();
        for t in ts {
            totals.source_sats += t.source_sats;
            totals.unspent_sats += t.unspent_sats;
            totals.fee_sats += t.fee_sats;
            totals.stopped_sats += t.stopped_sats;
            totals.mixer_sats += t.mixer_sats;
            totals.limit_sats += t.limit_sats;
        }
        totals
    };
    let totals = sum(&tr.totals[..nlabels]);
    let soft_totals = sum(&tr.totals[nlabels..]);
    let thief_entity = tr.thief_entity();
    let destinations = destinations(&tr, totals.source_sats);
    let peel_chains = peel_chains(&tr);
    let by_label = tr.totals[..nlabels]
        .iter()
        .enumerate()
        .map(|(i, t)| (tr.label_name(i as Label + 1), t.clone()))
        .collect();
    tr.warnings.sort();
    tr.warnings.dedup();
    TraceResult {
        parameters: serde_json::json!({
            "model": p.model.name(),
            "fee_policy": format!("{:?}", p.fee_policy).to_lowercase(),
            "max_hops": p.max_hops,
            "dust_sats": p.dust_sats,
            "min_fraction": p.min_fraction,
            "coinjoin_policy": p.coinjoin,
            "labels": p.labels,
            "max_rows": p.max_rows,
            "entity_aware": p.entity_aware,
            "soft_hops": p.demix,
        }),
        provenance: p.provenance.clone(),
        totals,
        soft_totals,
        by_label,
        conserving: p.model.conserves(),
        destinations,
        mixers: tr.mixers.clone(),
        peel_chains,
        soft_hops: std::mem::take(&mut tr.soft.hops),
        demix: std::mem::take(&mut tr.soft.demix),
        thief_entity,
        detected_mixers: std::mem::take(&mut tr.soft.detected),
        txs_visited: tr.visited,
        tainted_outputs: tr.tainted_outputs,
        outputs_truncated: tr.truncated,
        warnings: tr.warnings.clone(),
        outputs: tr.rows,
    }
}

fn destinations(tr: &Tracer, source: u64) -> Vec<Destination> {
    let mut v: Vec<Destination> = tr
        .dest
        .values()
        .map(|(d, first)| {
            let mut d = d.clone();
            d.path = tr.path_to(*first);
            d.share = if source == 0 {
                0.0
            } else {
                d.tainted_sats as f64 / source as f64
            };
            d
        })
        .collect();
    v.sort_by_key(|d| std::cmp::Reverse((d.tainted_sats, d.soft_sats)));
    v
}

/// Chains of at least 3 tainted 1-in-2-out transactions, each spending the previous one's
/// larger output, each peeling at most a fifth of its input (methods.md §3.3).
fn peel_chains(tr: &Tracer) -> Vec<PeelChain> {
    let view = tr.view;
    let is_step = |t: TxNum| -> Option<(OutNum, OutNum)> {
        let ins = view.tx_inputs(t);
        let outs: Vec<OutNum> = view.tx_outputs(t).collect();
        if ins.end - ins.start != 1 || outs.len() != 2 {
            return None;
        }
        let (a, b) = (outs[0], outs[1]);
        let (big, small) = if view.output_value(a) >= view.output_value(b) {
            (a, b)
        } else {
            (b, a)
        };
        let input = view.input_value(ins.start)?;
        (view.output_value(small) * 5 <= input).then_some((big, small))
    };
    let by_out: HashMap<OutNum, usize> = tr
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.out, i))
        .collect();
    let tainted_txs: Vec<TxNum> = {
        let mut v: Vec<TxNum> = tr.parent.keys().copied().collect();
        v.sort_unstable();
        v
    };
    let mut chains = Vec::new();
    let mut used: HashSet<TxNum> = HashSet::default();
    for &t in &tainted_txs {
        if used.contains(&t) || is_step(t).is_none() {
            continue;
        }
        // Start only where the previous transaction is not itself a step feeding us.
        if let Prevout::Output(o) = view.input_prevout(view.tx_inputs(t).start) {
            let p = view.output_tx(o);
            if is_step(p).is_some_and(|(big, _)| big == o) && tr.parent.contains_key(&p) {
                continue;
            }
        }
        let mut steps = Vec::new();
        let mut cur = t;
        while let Some((big, small)) = is_step(cur) {
            used.insert(cur);
            let row = by_out.get(&small).map(|&i| &tr.rows[i]);
            steps.push(PeelStep {
                txid: display_txid(view.txid(cur)),
                peel_value: view.output_value(small),
                peel_tainted: row.map_or(0, |r| r.tainted_sats),
                destination: row.and_then(|r| r.labels.last().cloned().or(r.address.clone())),
            });
            match view.output_spender(big) {
                Some(n) if tr.parent.contains_key(&n) => cur = n,
                _ => break,
            }
        }
        if steps.len() >= 3 {
            chains.push(PeelChain {
                length: steps.len(),
                first_txid: steps[0].txid.clone(),
                peeled_sats: steps.iter().map(|s| s.peel_value).sum(),
                steps,
            });
        }
    }
    chains
}

impl TraceResult {
    /// FIFO provenance of one output: which sources' satoshis (and which offsets) it holds.
    pub fn origin(&self, txid: &str, vout: u32) -> Option<&Row> {
        self.outputs
            .iter()
            .find(|r| r.txid == txid && r.vout == vout)
    }
}
