//! The exposure walk: backward from what a subject received (origins) and forward from
//! what it sent (destinations), splitting amounts over inputs/outputs in proportion to
//! value (haircut, exact integers), through unattributed addresses only, stopping at any
//! attributed party (services included) and at `max_hops`.

use crate::rules::{FiredRule, Level, NotJudged, RuleRow, RuleSet};
use crate::usd::{convert, day_of, ByDay, UsdFigure, UsdPrices, UsdRate};
use crate::{Attributor, CaseTaint};
use cointrail_chain::view::{display_txid, AddrId, ChainView, OutNum, Prevout, TxNum};
use cointrail_evm::U256;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExposureType {
    /// The subject itself is the labelled party.
    Ownership,
    /// One hop: the counterparty of the subject's own transaction.
    Direct,
    /// Two or more hops, through unattributed addresses.
    Indirect,
}

#[derive(Clone, Debug)]
pub struct ExposureParams {
    pub max_hops: u32,
    /// Bound on graph steps per screening, so an answer always comes fast; what is cut off
    /// is reported as `beyond_limit_sats`.
    pub max_steps: usize,
    /// Bound on the work of each direction's walk, counted as the inputs and outputs it
    /// reads: following a transaction backward reads its inputs, forward its inputs and
    /// outputs, so a CoinJoin of 300 inputs costs 300 where a payment costs 2. A
    /// transaction is followed only while its inputs (and outputs) fit in what is left;
    /// otherwise that branch's sats are reported as `beyond_limit_sats`. The walk is
    /// breadth-first, so what the bound cuts is the farthest hops and the widest
    /// transactions, never a nearer hop before a farther one.
    pub max_edges: usize,
}

impl Default for ExposureParams {
    fn default() -> Self {
        ExposureParams {
            max_hops: 3,
            max_steps: 20_000,
            max_edges: DEFAULT_MAX_EDGES,
        }
    }
}

/// The default work bound per direction (`ExposureParams::max_edges`).
pub const DEFAULT_MAX_EDGES: usize = 4_000;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExposureRow {
    pub category: String,
    pub level: Level,
    #[serde(rename = "type")]
    pub exposure_type: ExposureType,
    /// `received` (origins of funds) or `sent` (destinations).
    pub direction: String,
    pub sats: u64,
    /// Share of the direction's total.
    pub share: f64,
    pub min_hops: u32,
    /// Names of the labelled parties behind the row (at most 5).
    pub entities: Vec<String>,
    /// The label had been withdrawn (e.g. delisted from the SDN list) when these funds moved.
    pub delisted: bool,
    /// Transactions from the subject to the party (subject side first), for one instance.
    pub path: Vec<String>,
    /// Always `BTC` here (EVM rows name their asset).
    pub asset: String,
    /// USD of `sats`, each part at the rate of the day the subject's own transaction moved
    /// it (the imported price table); null when no part has a rate.
    pub usd: Option<f64>,
    /// The rates used (date and source), at most 10.
    pub usd_rates: Vec<UsdRate>,
    /// Satoshis of this row with no rate (left out of `usd`).
    pub usd_unpriced_sats: u64,
    /// Why part or all of the row has no USD.
    pub usd_note: Option<String>,
}

impl RuleRow for ExposureRow {
    fn category(&self) -> &str {
        &self.category
    }
    fn level(&self) -> Level {
        self.level
    }
    fn exposure_type(&self) -> ExposureType {
        self.exposure_type
    }
    fn direction(&self) -> &str {
        &self.direction
    }
    fn delisted(&self) -> bool {
        self.delisted
    }
    fn asset(&self) -> &str {
        &self.asset
    }
    fn amount(&self) -> U256 {
        U256::from(self.sats)
    }
    fn sats(&self) -> Option<u64> {
        Some(self.sats)
    }
    fn share(&self) -> f64 {
        self.share
    }
    fn usd(&self) -> UsdFigure {
        UsdFigure {
            usd: self.usd,
            rates: self.usd_rates.clone(),
            unpriced: U256::from(self.usd_unpriced_sats),
            why_unpriced: self.usd_note.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Flow {
    pub total_sats: u64,
    /// Reached no labelled party within the hop limit.
    pub unattributed_sats: u64,
    /// Came from outputs before the indexed range (value known, origin not).
    pub outside_index_sats: u64,
    /// New coins (coinbase).
    pub coinbase_sats: u64,
    /// Still unspent (sent direction): not sent anywhere yet.
    pub unspent_sats: u64,
    /// Fees paid on the way.
    pub fee_sats: u64,
    /// Cut off by the step bound.
    pub beyond_limit_sats: u64,
    /// Received direction of an address: what the address paid to itself (outputs of
    /// transactions whose every input is its own, i.e. change). Left out of `total_sats`,
    /// which counts what others paid; `cointrail address` counts both.
    pub self_change_sats: u64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Screening {
    /// What was screened: address, txid, vout.
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    pub risk: Level,
    pub fired_rules: Vec<FiredRule>,
    /// Rules whose USD threshold could not be judged for want of a rate (see each reason).
    pub rules_not_judged: Vec<NotJudged>,
    pub exposure: Vec<ExposureRow>,
    pub received: Flow,
    pub sent: Flow,
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// Filled by the caller: index tip, label versions, clustering setting.
    #[schema(value_type = Object)]
    pub provenance: serde_json::Value,
}

/// Split `w` over parts in proportion to their weights, exactly (largest remainder, ties to
/// the lower index).
pub fn split(w: u64, parts: &[u64]) -> Vec<u64> {
    let (mut out, mut rems) = (Vec::new(), Vec::new());
    split_into(w, parts, &mut out, &mut rems);
    out
}

/// As [`split`], into buffers the caller keeps (the walk splits at every step: allocating
/// two vectors each time was a tenth of a screening).
fn split_into(w: u64, parts: &[u64], out: &mut Vec<u64>, rems: &mut Vec<(u128, usize)>) {
    out.clear();
    rems.clear();
    let total: u128 = parts.iter().map(|&p| p as u128).sum();
    if total == 0 {
        out.resize(parts.len(), 0);
        return;
    }
    let mut given = 0u64;
    // Most products fit 64 bits, and a 128-bit division is several times slower (screening
    // splits at every step of its walk).
    let total64 = u64::try_from(total).ok();
    for (i, &p) in parts.iter().enumerate() {
        let (q, r) = match (total64, w.checked_mul(p)) {
            (Some(t), Some(x)) => ((x / t) as u128, (x % t) as u128),
            _ => {
                let exact = w as u128 * p as u128;
                (exact / total, exact % total)
            }
        };
        out.push(q as u64);
        given += q as u64;
        rems.push((r, i));
    }
    // The `w - given` largest remainders (ties to the lower index) get one more: selecting
    // them is linear, sorting them all was a sixth of a screening's time.
    let m = (w - given) as usize;
    if m > 0 {
        let order = |a: &(u128, usize), b: &(u128, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if m < rems.len() {
            rems.select_nth_unstable_by(m - 1, order);
        }
        for r in &rems[..m] {
            out[r.1] += 1;
        }
    }
}

/// `split(w, &[a, b])[0]`, without allocating.
pub fn split2_first(w: u64, a: u64, b: u64) -> u64 {
    let total = a as u128 + b as u128;
    if total == 0 {
        return 0;
    }
    let (xa, xb) = (w as u128 * a as u128, w as u128 * b as u128);
    let (qa, ra, qb, rb) = (xa / total, xa % total, xb / total, xb % total);
    // At most one satoshi is left over; it goes to the larger remainder, ties to `a`.
    let left = w as u128 - qa - qb;
    (qa + u128::from(left > 0 && ra >= rb)) as u64
}

/// The transactions from the subject to where a walk is, as an arena of (transaction,
/// parent) links shared by every branch of one screening: a branch holds an index, and a
/// step pushes one link (no allocation per step, no copy of the path).
struct Paths(Vec<(TxNum, u32)>);

/// The empty path (the subject itself).
const ROOT: u32 = 0;

impl Paths {
    fn new() -> Paths {
        Paths(vec![(0, ROOT)])
    }
    fn push(&mut self, parent: u32, t: TxNum) -> u32 {
        self.0.push((t, parent));
        (self.0.len() - 1) as u32
    }
    /// Subject side first.
    fn to_vec(&self, mut at: u32) -> Vec<TxNum> {
        let mut v = Vec::new();
        while at != ROOT {
            let (t, parent) = self.0[at as usize];
            v.push(t);
            at = parent;
        }
        v.reverse();
        v
    }
}

/// A labelled party as the walk sees it: the category, whether delisted, the names.
struct Hit {
    cat: String,
    delisted: bool,
    names: Vec<String>,
}

/// What the walk learned about an address in this screening: nothing attributed, labels
/// that read the same at any time, or labels with a withdrawal date (read again at each
/// time they are met).
enum Known {
    Nobody,
    Fixed(std::rc::Rc<Hit>),
    Dated(std::rc::Rc<Vec<crate::Attribution>>),
}

/// Hasher for dense ids (address ids): one multiplication.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (v as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = std::collections::HashMap<AddrId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// What one screening's walks reuse: the path arena, the buffers a step fills, and what is
/// known of the addresses met (a service's address recurs all over a walk, and decoding its
/// labels each time was most of what a labelled step cost).
struct Scratch {
    paths: Paths,
    prev: Vec<Prevout>,
    outs: Vec<OutNum>,
    vals: Vec<u64>,
    shares: Vec<u64>,
    rems: Vec<(u128, usize)>,
    known: IdMap<Known>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            paths: Paths::new(),
            prev: Vec::new(),
            outs: Vec::new(),
            vals: Vec::new(),
            shares: Vec::new(),
            rems: Vec::new(),
            known: IdMap::default(),
        }
    }
}

/// What exposure rows are summed by: the category, direct or indirect, and whether the
/// label was delisted by then.
type RowKey = (String, ExposureType, bool);

/// One exposure row's sums: sats, the fewest hops, up to five names, and the path of the
/// first exposure found.
struct Row {
    sats: u64,
    hops: u32,
    names: Vec<String>,
    path: Vec<TxNum>,
    /// Sats by the UTC day the subject's own transaction moved them, for USD.
    days: ByDay,
    /// The last day added to and its sats not yet in `days` (a walk adds many times in a
    /// row on the same day: summed here, put in `days` when the day changes).
    pending: Option<(u32, u64)>,
}

impl Row {
    fn settle(&mut self) {
        if let Some((d, s)) = self.pending.take() {
            self.days.add(d, U256::from(s));
        }
    }
}

/// The rows of one screening, few (categories × direct/indirect): found by a scan, their
/// key allocated only when a row is new. Put in key order when finished.
#[derive(Default)]
struct Acc {
    rows: Vec<(RowKey, Row)>,
}

impl Acc {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        cat: &str,
        t: ExposureType,
        delisted: bool,
        sats: u64,
        hops: u32,
        names: &[String],
        path: impl FnOnce() -> Vec<TxNum>,
        day: u32,
    ) {
        let i = match self
            .rows
            .iter()
            .position(|(k, _)| k.1 == t && k.2 == delisted && k.0 == cat)
        {
            Some(i) => i,
            None => {
                self.rows.push((
                    (cat.to_string(), t, delisted),
                    Row {
                        sats: 0,
                        hops: u32::MAX,
                        names: Vec::new(),
                        path: path(),
                        days: ByDay::default(),
                        pending: None,
                    },
                ));
                self.rows.len() - 1
            }
        };
        let e = &mut self.rows[i].1;
        e.sats += sats;
        match &mut e.pending {
            Some((d, s)) if *d == day => *s += sats,
            _ => {
                e.settle();
                e.pending = Some((day, sats));
            }
        }
        e.hops = e.hops.min(hops);
        for n in names {
            if e.names.len() >= 5 {
                break;
            }
            if !e.names.contains(n) {
                e.names.push(n.clone());
            }
        }
    }

    /// The rows in key order, their days settled.
    fn into_rows(mut self) -> Vec<(RowKey, Row)> {
        self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, r) in &mut self.rows {
            r.settle();
        }
        self.rows
    }
}

/// What screening reads: the chain, who is who (attributions), the traced cases' taint,
/// the risk rules, and the walk's parameters. Screen an address, a transaction or an
/// output with [`Screener::address`], [`Screener::tx`], [`Screener::output`].
pub struct Screener<'a> {
    pub view: &'a dyn ChainView,
    pub attr: &'a dyn Attributor,
    pub taint: &'a dyn CaseTaint,
    pub rules: &'a RuleSet,
    pub params: &'a ExposureParams,
    /// USD rates (the imported price table).
    pub prices: &'a dyn UsdPrices,
}

/// A branch of a walk: the output it sits in, its sats, its hops from the subject, its
/// path (in the screening's arena) and the day the subject's own transaction moved it.
type Branch = (OutNum, u64, u32, u32, u32);

impl Screener<'_> {
    /// The strongest attribution of an address for funds moved at `height`.
    fn label(&self, a: AddrId, height: u32) -> Option<(String, bool, Vec<String>)> {
        label_at(self.attr, self.rules, a, self.attr.time_of_height(height))
    }

    /// As `label`, remembering each address's labels for the rest of the screening.
    fn label_known(
        &self,
        known: &mut IdMap<Known>,
        a: AddrId,
        height: u32,
    ) -> Option<std::rc::Rc<Hit>> {
        let k = known.entry(a).or_insert_with(|| {
            let labels = self.attr.attribute(a);
            if labels.is_empty() {
                Known::Nobody
            } else if labels.iter().all(|l| l.valid_to.is_none()) {
                // No withdrawal: the same answer at any time.
                match label_of(&labels, self.rules, 0) {
                    Some((cat, delisted, names)) => Known::Fixed(std::rc::Rc::new(Hit {
                        cat,
                        delisted,
                        names,
                    })),
                    None => Known::Nobody,
                }
            } else {
                Known::Dated(std::rc::Rc::new(labels))
            }
        });
        match k {
            Known::Nobody => None,
            Known::Fixed(h) => Some(h.clone()),
            Known::Dated(labels) => {
                label_of(&labels[..], self.rules, self.attr.time_of_height(height)).map(
                    |(cat, delisted, names)| {
                        std::rc::Rc::new(Hit {
                            cat,
                            delisted,
                            names,
                        })
                    },
                )
            }
        }
    }

    /// The UTC day of a transaction's block.
    fn day(&self, t: TxNum) -> u32 {
        day_of(self.attr.time_of_height(self.view.tx_height(t)))
    }

    fn kind(h: u32) -> ExposureType {
        if h <= 1 {
            ExposureType::Direct
        } else {
            ExposureType::Indirect
        }
    }

    /// Origins of the sats sitting in outputs `starts` (the subject's own, hop 0). Each
    /// branch carries the day the subject's own transaction received the sats (for USD).
    /// `days[i]` is the day of `starts[i]`'s transaction (the caller has found each start's
    /// transaction already: a search of the whole chain's, once per start).
    fn backward(
        &self,
        sc: &mut Scratch,
        starts: &[(OutNum, u64)],
        days: &[u32],
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        let queue = starts
            .iter()
            .zip(days)
            .map(|(&(o, w), &d)| (o, w, 0, ROOT, d))
            .collect();
        self.backward_from(sc, queue, 0, acc, flow)
    }

    /// Origins of a transaction's outputs: the traced cases' taint of each output, then the
    /// rest as one amount over the transaction's inputs (one split of the sum, not one per
    /// output: a payout batch of 300 outputs read its inputs 300 times).
    fn backward_tx(
        &self,
        sc: &mut Scratch,
        tx: TxNum,
        outs: &[(OutNum, u64)],
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        let day = self.day(tx);
        let mut w = 0u64;
        for &(o, v) in outs {
            if v > 0 {
                w += self.case_taint(sc, o, v, 0, ROOT, day, acc);
            }
        }
        let (mut queue, mut edges) = (std::collections::VecDeque::new(), 0usize);
        if w > 0 {
            self.back_step(sc, tx, w, 0, ROOT, day, &mut edges, &mut queue, acc, flow);
        }
        self.backward_from(sc, queue, edges, acc, flow)
    }

    /// The part of the `w` sats in output `o` that traced cases' taint explains, added as
    /// exposure (exact: the case's tainted share of the output's value); returns the rest.
    #[allow(clippy::too_many_arguments)]
    fn case_taint(
        &self,
        sc: &Scratch,
        o: OutNum,
        mut w: u64,
        h: u32,
        path: u32,
        day: u32,
        acc: &mut Acc,
    ) -> u64 {
        for (case, tainted, hops) in self.taint.taint(o) {
            let value = self.view.output_value(o).max(1);
            let share = split2_first(w, tainted.min(value), value - tainted.min(value));
            if share > 0 {
                let t = if hops <= 1 && h <= 1 {
                    ExposureType::Direct
                } else {
                    ExposureType::Indirect
                };
                acc.add(
                    &format!("stolen_funds:{case}"),
                    t,
                    false,
                    share,
                    hops.max(h),
                    std::slice::from_ref(&case),
                    || sc.paths.to_vec(path),
                    day,
                );
                w -= share;
            }
        }
        w
    }

    /// The backward walk from the branches in `queue`, `edges` of its work bound used.
    fn backward_from(
        &self,
        sc: &mut Scratch,
        mut queue: std::collections::VecDeque<Branch>,
        mut edges: usize,
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        let mut steps = 0usize;
        while let Some((o, w, h, path, day)) = queue.pop_front() {
            if w == 0 {
                continue;
            }
            steps += 1;
            if steps > self.params.max_steps {
                flow.beyond_limit_sats += w;
                continue;
            }
            // Exact taint of traced cases on this output.
            let w = self.case_taint(sc, o, w, h, path, day, acc);
            if w == 0 {
                continue;
            }
            // No transaction has no input: with the bound used up, every branch left is cut
            // (without looking for its transaction, a search of the whole chain's).
            if edges >= self.params.max_edges {
                flow.beyond_limit_sats += w;
                continue;
            }
            let t = self.view.output_tx(o);
            self.back_step(sc, t, w, h, path, day, &mut edges, &mut queue, acc, flow);
        }
    }

    /// One step back: `w` sats of transaction `t`'s outputs, `h` hops from the subject,
    /// split over its inputs; labelled ones are exposure, the others are followed on.
    #[allow(clippy::too_many_arguments)]
    fn back_step(
        &self,
        sc: &mut Scratch,
        t: TxNum,
        w: u64,
        h: u32,
        path: u32,
        day: u32,
        edges: &mut usize,
        queue: &mut std::collections::VecDeque<Branch>,
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        let inputs = self.view.tx_inputs(t);
        let n = (inputs.end - inputs.start) as usize;
        if *edges + n > self.params.max_edges {
            flow.beyond_limit_sats += w;
            return;
        }
        *edges += n;
        if self.view.is_coinbase(t) {
            flow.coinbase_sats += w;
            return;
        }
        let height = self.view.tx_height(t);
        let path2 = sc.paths.push(path, t);
        sc.prev.clear();
        sc.prev.extend(inputs.map(|i| self.view.input_prevout(i)));
        // The outputs spent are all over the chain: start loading them together, so
        // their cache misses overlap instead of coming one after another.
        for p in &sc.prev {
            if let Prevout::Output(po) = p {
                self.view.prefetch_output(*po);
            }
        }
        sc.vals.clear();
        sc.vals.extend(sc.prev.iter().map(|p| match p {
            Prevout::Output(po) => self.view.output_value(*po),
            _ => 0,
        }));
        if sc.vals.iter().all(|v| *v == 0) {
            flow.outside_index_sats += w;
            return;
        }
        split_into(w, &sc.vals, &mut sc.shares, &mut sc.rems);
        for k in 0..sc.prev.len() {
            let share = sc.shares[k];
            if share == 0 {
                continue;
            }
            let Prevout::Output(po) = sc.prev[k] else {
                continue;
            };
            let hop = h + 1;
            match self
                .view
                .output_addr(po)
                .and_then(|a| self.label_known(&mut sc.known, a, height))
            {
                Some(hit) => acc.add(
                    &hit.cat,
                    Self::kind(hop),
                    hit.delisted,
                    share,
                    hop,
                    &hit.names,
                    || sc.paths.to_vec(path2),
                    day,
                ),
                None if hop < self.params.max_hops => queue.push_back((po, share, hop, path2, day)),
                None => flow.unattributed_sats += share,
            }
        }
    }

    /// Destinations of the sats sitting in outputs `starts` (the subject's own, hop 0).
    fn forward(
        &self,
        sc: &mut Scratch,
        starts: &[(OutNum, u64)],
        own: Option<AddrId>,
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        self.forward_from(
            sc,
            starts
                .iter()
                .map(|&(o, w)| (o, w, 0, ROOT, u32::MAX))
                .collect(),
            own,
            acc,
            flow,
        )
    }

    /// As `forward`, from outputs already some hops away from the subject. Each branch
    /// carries the day the subject's own transaction sent the sats (`u32::MAX`: not yet
    /// known, the next spend is the subject's).
    fn forward_from(
        &self,
        sc: &mut Scratch,
        starts: std::collections::VecDeque<Branch>,
        own: Option<AddrId>,
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        let mut queue = starts;
        let (mut steps, mut edges) = (0usize, 0usize);
        while let Some((o, w, h, path, day)) = queue.pop_front() {
            if w == 0 {
                continue;
            }
            steps += 1;
            if steps > self.params.max_steps {
                flow.beyond_limit_sats += w;
                continue;
            }
            let Some(s) = self.view.output_spender(o) else {
                if h == 0 {
                    flow.unspent_sats += w;
                } else {
                    flow.unattributed_sats += w;
                }
                continue;
            };
            let (inputs, outputs) = (self.view.tx_inputs(s), self.view.tx_outputs(s));
            let n = (inputs.end - inputs.start + outputs.end - outputs.start) as usize;
            if edges + n > self.params.max_edges {
                flow.beyond_limit_sats += w;
                continue;
            }
            edges += n;
            let height = self.view.tx_height(s);
            let day = if day == u32::MAX { self.day(s) } else { day };
            let path2 = sc.paths.push(path, s);
            sc.prev.clear();
            sc.prev.extend(inputs.map(|i| self.view.input_prevout(i)));
            for p in &sc.prev {
                if let Prevout::Output(po) = p {
                    self.view.prefetch_output(*po);
                }
            }
            // What the inputs spend (`input_value`: an output outside the index is 0).
            let in_total: u64 = sc
                .prev
                .iter()
                .map(|p| match p {
                    Prevout::Output(po) => self.view.output_value(*po),
                    _ => 0,
                })
                .sum();
            sc.outs.clear();
            sc.outs.extend(outputs);
            // Value returning to the subject's own address is change, not sent.
            sc.vals.clear();
            let (mut paid, mut change) = (0u64, 0u64);
            for &d in &sc.outs {
                let v = self.view.output_value(d);
                paid += v;
                let weight = if own.is_some() && self.view.output_addr(d) == own {
                    0
                } else {
                    v
                };
                if weight == 0 {
                    change += v;
                }
                sc.vals.push(weight);
            }
            let fee = in_total.saturating_sub(paid);
            sc.vals.push(fee);
            let base = in_total.max(paid).max(1);
            // Only the part of w that did not come back as change is sent.
            let sent_w = split2_first(w, base - change.min(base), change.min(base));
            split_into(sent_w, &sc.vals, &mut sc.shares, &mut sc.rems);
            flow.fee_sats += sc.shares[sc.shares.len() - 1];
            for k in 0..sc.outs.len() {
                let (d, share) = (sc.outs[k], sc.shares[k]);
                if share == 0 {
                    continue;
                }
                let hop = h + 1;
                match self
                    .view
                    .output_addr(d)
                    .and_then(|a| self.label_known(&mut sc.known, a, height))
                {
                    Some(hit) => acc.add(
                        &hit.cat,
                        Self::kind(hop),
                        hit.delisted,
                        share,
                        hop,
                        &hit.names,
                        || sc.paths.to_vec(path2),
                        day,
                    ),
                    None if hop < self.params.max_hops => {
                        queue.push_back((d, share, hop, path2, day))
                    }
                    None => flow.unattributed_sats += share,
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        subject: serde_json::Value,
        acc: Acc,
        ownership: Vec<(String, bool, Vec<String>)>,
        received: Flow,
        sent: Flow,
        own_days: (ByDay, ByDay),
    ) -> Screening {
        let mut cache = BTreeMap::new();
        let mut usd_of =
            |days: &ByDay| convert(self.prices, Some("BTC"), Some(8), days, &mut cache);
        let mut rows = Vec::new();
        for (cat, delisted, names) in ownership {
            let lvl = if delisted {
                Level::None
            } else {
                self.rules.level_of(&cat)
            };
            for (dir, total, days) in [
                ("received", received.total_sats, &own_days.0),
                ("sent", sent.total_sats, &own_days.1),
            ] {
                if total > 0 {
                    let f = usd_of(days);
                    rows.push(ExposureRow {
                        category: cat.clone(),
                        level: lvl,
                        exposure_type: ExposureType::Ownership,
                        direction: dir.into(),
                        sats: total,
                        share: 1.0,
                        min_hops: 0,
                        entities: names.clone(),
                        delisted,
                        path: vec![],
                        asset: "BTC".into(),
                        usd: f.usd,
                        usd_rates: f.rates,
                        usd_unpriced_sats: u64::try_from(f.unpriced).unwrap_or(u64::MAX),
                        usd_note: f.why_unpriced,
                    });
                }
            }
        }
        for (
            (cat, t, delisted),
            Row {
                sats,
                hops,
                names,
                path,
                days,
                ..
            },
        ) in acc.into_rows()
        {
            let (dir, cat) = match cat.strip_prefix("sent|") {
                Some(c) => ("sent", c.to_string()),
                None => ("received", cat),
            };
            let total = if dir == "sent" {
                sent.total_sats
            } else {
                received.total_sats
            };
            let f = usd_of(&days);
            rows.push(ExposureRow {
                level: if delisted {
                    Level::None
                } else {
                    self.rules.level_of(&cat)
                },
                category: cat,
                exposure_type: t,
                direction: dir.into(),
                sats,
                share: if total == 0 {
                    0.0
                } else {
                    sats as f64 / total as f64
                },
                min_hops: hops,
                entities: names,
                delisted,
                path: path
                    .iter()
                    .map(|&t| display_txid(self.view.txid(t)))
                    .collect(),
                asset: "BTC".into(),
                usd: f.usd,
                usd_rates: f.rates,
                usd_unpriced_sats: u64::try_from(f.unpriced).unwrap_or(u64::MAX),
                usd_note: f.why_unpriced,
            });
        }
        rows.sort_by(|a, b| b.level.cmp(&a.level).then(b.sats.cmp(&a.sats)));
        let (rt, st) = (received.total_sats, sent.total_sats);
        let v = self.rules.evaluate(&rows, &|dir: &str, _asset: &str| {
            U256::from(if dir == "sent" { st } else { rt })
        });
        Screening {
            subject,
            risk: v.level,
            fired_rules: v.fired,
            rules_not_judged: v.not_judged,
            exposure: rows,
            received,
            sent,
            parameters: serde_json::json!({
                "max_hops": self.params.max_hops,
                "max_steps": self.params.max_steps,
                "max_edges": self.params.max_edges,
                "rule_set": self.rules.name,
                "split": "haircut (proportional, largest remainder)",
                "usd": usd_parameters(self.rules, self.prices),
            }),
            provenance: serde_json::Value::Null,
        }
    }
}

/// How USD figures were obtained, for a screening's parameters.
pub(crate) fn usd_parameters(rules: &RuleSet, prices: &dyn UsdPrices) -> serde_json::Value {
    let mut v = serde_json::json!({
        "method": "each amount at the USD rate of the UTC day the subject's own transaction moved it (or up to 3 days earlier), from the imported price table; no rate, no USD, and a rule's min_usd cannot fire on it",
        "price_table": prices.describe(),
    });
    if let Some(b) = rules.btc_usd {
        v["ignored"] = serde_json::json!(format!(
            "the rule file's btc_usd ({b}) is no longer used: USD comes from the price table"
        ));
    }
    v
}

/// The strongest attribution of an address for funds moved at Unix time `t` (a withdrawn
/// label reads as delisted from its `valid_to` on). Shared by the UTXO and account walks.
pub(crate) fn label_at(
    attr: &dyn Attributor,
    rules: &RuleSet,
    a: AddrId,
    t: u64,
) -> Option<(String, bool, Vec<String>)> {
    label_of(&attr.attribute(a), rules, t)
}

/// An address's label when neither the rules nor the time can change it: one attribution
/// without a `valid_to` (what [`label_of`] answers for it under any rules at any time).
/// Implementations of [`crate::Attributor::fixed_label`] work it out when labels load.
pub fn fixed_label_of(labels: &[crate::Attribution]) -> Option<crate::FixedLabel> {
    match labels {
        [l] if l.valid_to.is_none() => Some(std::sync::Arc::new((
            crate::rules::normalize_category(&l.category),
            false,
            vec![l.name.clone()],
        ))),
        _ => None,
    }
}

/// The strongest of an address's attributions for funds moved at Unix time `t`.
pub(crate) fn label_of(
    labels: &[crate::Attribution],
    rules: &RuleSet,
    t: u64,
) -> Option<(String, bool, Vec<String>)> {
    if labels.is_empty() {
        return None;
    }
    let mut best: Option<(Level, String, bool)> = None;
    let mut names = Vec::new();
    for l in labels {
        let cat = crate::rules::normalize_category(&l.category);
        // Only a withdrawal (delisting) changes what a label means for funds moved after
        // it. `valid_from` is when a source first carried the label, not when the party
        // took control: an address labelled today was the same party's yesterday.
        let delisted = l.valid_to.is_some_and(|v| t >= v);
        let lvl = if delisted {
            Level::None
        } else {
            rules.level_of(&cat)
        };
        names.push(l.name.clone());
        if best.as_ref().is_none_or(|b| lvl > b.0) {
            best = Some((lvl, cat, delisted));
        }
    }
    best.map(|(_, c, d)| (c, d, names))
}

/// Separate sent rows from received ones inside the accumulator.
fn sent_acc(acc: Acc, into: &mut Acc) {
    for ((cat, t, d), v) in acc.rows {
        into.rows.push(((format!("sent|{cat}"), t, d), v));
    }
}

/// Add (day, sats) pairs to `into`, each run of one day summed first (sats fit 64 bits: all
/// the bitcoin there will ever be is 2.1 × 10^15 sats).
fn add_by_day(pairs: impl Iterator<Item = (u32, u64)>, into: &mut ByDay) {
    let mut cur: Option<(u32, u64)> = None;
    for (d, w) in pairs {
        if let Some((cd, s)) = &mut cur {
            if *cd == d {
                *s = s.saturating_add(w);
                continue;
            }
        }
        if let Some((cd, s)) = cur.replace((d, w)) {
            into.add(cd, U256::from(s));
        }
    }
    if let Some((cd, s)) = cur {
        into.add(cd, U256::from(s));
    }
}

/// The UTC day of a transaction's block, remembering the last block: a run of transactions
/// in chain order (an address's outputs, and mostly their spends) asks one block many times.
#[derive(Default)]
struct DayOf {
    block: std::ops::Range<TxNum>,
    day: u32,
}

impl DayOf {
    fn get(&mut self, cx: &Screener<'_>, t: TxNum) -> u32 {
        if !self.block.contains(&t) {
            let (h, block) = cx.view.tx_block(t);
            self.day = day_of(cx.attr.time_of_height(h));
            self.block = block;
        }
        self.day
    }
}

impl Screener<'_> {
    /// Screen an address: what it received (origins) and what it sent (destinations).
    pub fn address(&self, addr: AddrId, outputs: &[OutNum], rendered: &str) -> Screening {
        let (cx, view) = (self, self.view);
        let mut received = Flow::default();
        let mut sent = Flow::default();
        let mut acc = Acc::default();
        let starts: Vec<(OutNum, u64)> =
            outputs.iter().map(|&o| (o, view.output_value(o))).collect();
        received.total_sats = starts.iter().map(|s| s.1).sum();
        // Each start's transaction and its day, found once: `output_tx` is a search over every
        // transaction, and an address with a long history (an exchange's deposit address:
        // 12,579 outputs at 10M) spent most of its screening searching the same ones three
        // times. The outputs are in chain order, so their blocks come in order too.
        let mut days = DayOf::default();
        let start_tx: Vec<TxNum> = outputs.iter().map(|&o| view.output_tx(o)).collect();
        // Outputs that the address paid to itself would count twice as received: they are
        // change (a transaction's inputs read once for all its outputs to the address).
        let mut last: Option<(TxNum, bool)> = None;
        let mut starts_in: Vec<(OutNum, u64)> = Vec::new();
        let mut days_in: Vec<u32> = Vec::new();
        for (&(o, w), &t) in starts.iter().zip(&start_tx) {
            let own = match last {
                Some((lt, own)) if lt == t => own,
                _ => {
                    let own = view.tx_inputs(t).all(|i| matches!(view.input_prevout(i), Prevout::Output(po) if view.output_addr(po) == Some(addr)));
                    last = Some((t, own));
                    own
                }
            };
            if !own {
                starts_in.push((o, w));
                days_in.push(days.get(cx, t));
            }
        }
        let self_paid: u64 = received.total_sats - starts_in.iter().map(|s| s.1).sum::<u64>();
        received.total_sats -= self_paid;
        received.self_change_sats = self_paid;
        let mut sc = Scratch::new();
        cx.backward(&mut sc, &starts_in, &days_in, &mut acc, &mut received);
        let spent: Vec<(OutNum, u64)> = starts
            .iter()
            .copied()
            .filter(|&(o, _)| view.output_spender(o).is_some())
            .collect();
        sent.total_sats = spent.iter().map(|s| s.1).sum();
        let mut sacc = Acc::default();
        cx.forward(&mut sc, &spent, Some(addr), &mut sacc, &mut sent);
        sent.total_sats = sent.total_sats.saturating_sub(sent.unspent_sats);
        sent_acc(sacc, &mut acc);
        let tip = view.tx_count().saturating_sub(1) as TxNum;
        let own: Vec<(String, bool, Vec<String>)> = cx
            .label(
                addr,
                if view.tx_count() > 0 {
                    view.tx_height(tip)
                } else {
                    0
                },
            )
            .into_iter()
            .collect();
        let mut own_days = (ByDay::default(), ByDay::default());
        if !own.is_empty() {
            // Summed per day first: a `ByDay` add per output was a tenth of a long history.
            add_by_day(
                starts_in.iter().zip(&days_in).map(|(&(_, w), &d)| (d, w)),
                &mut own_days.0,
            );
            add_by_day(
                spent
                    .iter()
                    .filter_map(|&(o, w)| view.output_spender(o).map(|s| (days.get(cx, s), w))),
                &mut own_days.1,
            );
        }
        cx.finish(
            serde_json::json!({"kind": "address", "address": rendered, "outputs": outputs.len()}),
            acc,
            own,
            received,
            sent,
            own_days,
        )
    }

    /// Screen one output (a deposit): where its coins came from.
    pub fn output(&self, out: OutNum) -> Screening {
        let (cx, view) = (self, self.view);
        let mut received = Flow {
            total_sats: view.output_value(out),
            ..Flow::default()
        };
        let mut acc = Acc::default();
        let t = view.output_tx(out);
        cx.backward(
            &mut Scratch::new(),
            &[(out, view.output_value(out))],
            &[cx.day(t)],
            &mut acc,
            &mut received,
        );
        cx.finish(
        serde_json::json!({"kind": "output", "direction": "in", "txid": display_txid(view.txid(t)), "vout": view.output_vout(out), "value": view.output_value(out)}),
        acc,
        vec![],
        received,
        Flow::default(),
        Default::default(),
    )
    }

    /// Screen one output forward (a withdrawal): whom it pays. The output's own address is
    /// its direct counterparty; an unattributed one is followed on through its spends, split
    /// exactly, as the destinations of an address or a transaction are.
    pub fn output_forward(&self, out: OutNum) -> Screening {
        let (cx, view) = (self, self.view);
        let w = view.output_value(out);
        let mut sent = Flow {
            total_sats: w,
            ..Flow::default()
        };
        let mut sacc = Acc::default();
        let t = view.output_tx(out);
        let mut sc = Scratch::new();
        let path = sc.paths.push(ROOT, t);
        let day = cx.day(t);
        match view
            .output_addr(out)
            .and_then(|a| cx.label(a, view.tx_height(t)))
        {
            Some((cat, delisted, names)) => sacc.add(
                &cat,
                ExposureType::Direct,
                delisted,
                w,
                1,
                &names,
                || vec![t],
                day,
            ),
            // Not spent yet: nothing has been paid on, so nothing counts as sent.
            None if view.output_spender(out).is_none() => sent.unspent_sats = w,
            None => cx.forward_from(
                &mut sc,
                std::collections::VecDeque::from([(out, w, 1, path, day)]),
                None,
                &mut sacc,
                &mut sent,
            ),
        }
        sent.total_sats = sent.total_sats.saturating_sub(sent.unspent_sats);
        let mut acc = Acc::default();
        sent_acc(sacc, &mut acc);
        cx.finish(
            serde_json::json!({"kind": "output", "direction": "out", "txid": display_txid(view.txid(t)), "vout": view.output_vout(out), "value": w}),
            acc,
            vec![],
            Flow::default(),
            sent,
            Default::default(),
        )
    }

    /// Screen a transaction: where the coins it moves came from, and where they went next.
    pub fn tx(&self, tx: TxNum) -> Screening {
        let (cx, view) = (self, self.view);
        let outs: Vec<(OutNum, u64)> = view
            .tx_outputs(tx)
            .map(|o| (o, view.output_value(o)))
            .collect();
        let mut received = Flow {
            total_sats: outs.iter().map(|s| s.1).sum(),
            ..Flow::default()
        };
        let mut acc = Acc::default();
        let mut sc = Scratch::new();
        cx.backward_tx(&mut sc, tx, &outs, &mut acc, &mut received);
        let mut sent = Flow {
            total_sats: received.total_sats,
            ..Flow::default()
        };
        let mut sacc = Acc::default();
        // The transaction's own outputs are its direct counterparties; what is not attributed
        // is followed on from hop 1.
        let height = view.tx_height(tx);
        let day = cx.day(tx);
        let mut next = std::collections::VecDeque::new();
        let path = sc.paths.push(ROOT, tx);
        for (o, w) in outs {
            match view.output_addr(o).and_then(|a| cx.label(a, height)) {
                Some((cat, delisted, names)) => sacc.add(
                    &cat,
                    ExposureType::Direct,
                    delisted,
                    w,
                    1,
                    &names,
                    || vec![tx],
                    day,
                ),
                None => next.push_back((o, w, 1, path, day)),
            }
        }
        cx.forward_from(&mut sc, next, None, &mut sacc, &mut sent);
        sent.total_sats = sent.total_sats.saturating_sub(sent.unspent_sats);
        sent_acc(sacc, &mut acc);
        cx.finish(
            serde_json::json!({"kind": "transaction", "txid": display_txid(view.txid(tx))}),
            acc,
            vec![],
            received,
            sent,
            Default::default(),
        )
    }
}
