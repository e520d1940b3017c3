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
}

impl Default for ExposureParams {
    fn default() -> Self {
        ExposureParams {
            max_hops: 3,
            max_steps: 20_000,
        }
    }
}

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
    let total: u128 = parts.iter().map(|&p| p as u128).sum();
    if total == 0 {
        return vec![0; parts.len()];
    }
    let mut out: Vec<u64> = Vec::with_capacity(parts.len());
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(parts.len());
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
    out
}

/// The transactions from the subject to where a walk is, shared between the branches of the
/// walk (a branch is one pointer, not a copy of its whole path: copies were a tenth of a
/// screening's time).
#[derive(Clone, Default)]
pub(crate) struct Path(Option<std::rc::Rc<(TxNum, Path)>>);

impl Path {
    fn push(&self, t: TxNum) -> Path {
        Path(Some(std::rc::Rc::new((t, self.clone()))))
    }
    /// Subject side first.
    fn to_vec(&self) -> Vec<TxNum> {
        let mut v = Vec::new();
        let mut p = self;
        while let Some(n) = &p.0 {
            v.push(n.0);
            p = &n.1;
        }
        v.reverse();
        v
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
}

#[derive(Default)]
struct Acc {
    rows: BTreeMap<RowKey, Row>,
}

impl Acc {
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, key: RowKey, sats: u64, hops: u32, names: &[String], path: &Path, day: u32) {
        let e = self.rows.entry(key).or_insert_with(|| Row {
            sats: 0,
            hops: u32::MAX,
            names: Vec::new(),
            path: path.to_vec(),
            days: ByDay::default(),
        });
        e.sats += sats;
        e.days.add(day, U256::from(sats));
        e.hops = e.hops.min(hops);
        for n in names {
            if e.names.len() < 5 && !e.names.contains(n) {
                e.names.push(n.clone());
            }
        }
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

impl Screener<'_> {
    /// The strongest attribution of an address for funds moved at `height`.
    fn label(&self, a: AddrId, height: u32) -> Option<(String, bool, Vec<String>)> {
        label_at(self.attr, self.rules, a, self.attr.time_of_height(height))
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

    /// Origins of `w` sats sitting in output `o`, `h` hops from the subject. Each branch
    /// carries the day the subject's own transaction received the sats (for USD).
    fn backward(&self, starts: Vec<(OutNum, u64)>, acc: &mut Acc, flow: &mut Flow) {
        let mut queue: std::collections::VecDeque<(OutNum, u64, u32, Path, u32)> = starts
            .into_iter()
            .map(|(o, w)| (o, w, 0, Path::default(), self.day(self.view.output_tx(o))))
            .collect();
        let mut steps = 0usize;
        while let Some((o, mut w, h, path, day)) = queue.pop_front() {
            if w == 0 {
                continue;
            }
            steps += 1;
            if steps > self.params.max_steps {
                flow.beyond_limit_sats += w;
                continue;
            }
            // Exact taint of traced cases on this output.
            for (case, tainted, hops) in self.taint.taint(o) {
                let value = self.view.output_value(o).max(1);
                let share = split(w, &[tainted.min(value), value - tainted.min(value)])[0];
                if share > 0 {
                    let t = if hops <= 1 && h <= 1 {
                        ExposureType::Direct
                    } else {
                        ExposureType::Indirect
                    };
                    acc.add(
                        (format!("stolen_funds:{case}"), t, false),
                        share,
                        hops.max(h),
                        std::slice::from_ref(&case),
                        &path,
                        day,
                    );
                    w -= share;
                }
            }
            if w == 0 {
                continue;
            }
            let t = self.view.output_tx(o);
            let path2 = path.push(t);
            if self.view.is_coinbase(t) {
                flow.coinbase_sats += w;
                continue;
            }
            let height = self.view.tx_height(t);
            let ins: Vec<_> = self
                .view
                .tx_inputs(t)
                .map(|i| self.view.input_prevout(i))
                .collect();
            let vals: Vec<u64> = ins
                .iter()
                .map(|p| match p {
                    Prevout::Output(po) => self.view.output_value(*po),
                    _ => 0,
                })
                .collect();
            if vals.iter().all(|v| *v == 0) {
                flow.outside_index_sats += w;
                continue;
            }
            for (p, share) in ins.iter().zip(split(w, &vals)) {
                if share == 0 {
                    continue;
                }
                let Prevout::Output(po) = *p else { continue };
                let hop = h + 1;
                match self
                    .view
                    .output_addr(po)
                    .and_then(|a| self.label(a, height))
                {
                    Some((cat, delisted, names)) => acc.add(
                        (cat, Self::kind(hop), delisted),
                        share,
                        hop,
                        &names,
                        &path2,
                        day,
                    ),
                    None if hop < self.params.max_hops => {
                        queue.push_back((po, share, hop, path2.clone(), day))
                    }
                    None => flow.unattributed_sats += share,
                }
            }
        }
    }

    /// Destinations of `w` sats sitting in output `o`.
    fn forward(
        &self,
        starts: Vec<(OutNum, u64)>,
        own: Option<AddrId>,
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        self.forward_from(
            starts
                .into_iter()
                .map(|(o, w)| (o, w, 0, Path::default(), u32::MAX))
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
        starts: std::collections::VecDeque<(OutNum, u64, u32, Path, u32)>,
        own: Option<AddrId>,
        acc: &mut Acc,
        flow: &mut Flow,
    ) {
        let mut queue = starts;
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
            let Some(s) = self.view.output_spender(o) else {
                if h == 0 {
                    flow.unspent_sats += w;
                } else {
                    flow.unattributed_sats += w;
                }
                continue;
            };
            let height = self.view.tx_height(s);
            let day = if day == u32::MAX { self.day(s) } else { day };
            let path2 = path.push(s);
            let in_total: u64 = self
                .view
                .tx_inputs(s)
                .map(|i| self.view.input_value(i).unwrap_or(0))
                .sum();
            let outs: Vec<OutNum> = self.view.tx_outputs(s).collect();
            // Value returning to the subject's own address is change, not sent.
            let mut weights: Vec<u64> = outs
                .iter()
                .map(|&d| {
                    if own.is_some() && self.view.output_addr(d) == own {
                        0
                    } else {
                        self.view.output_value(d)
                    }
                })
                .collect();
            let paid: u64 = outs.iter().map(|&d| self.view.output_value(d)).sum();
            let change: u64 = outs
                .iter()
                .zip(&weights)
                .filter(|(_, w)| **w == 0)
                .map(|(d, _)| self.view.output_value(*d))
                .sum();
            let fee = in_total.saturating_sub(paid);
            weights.push(fee);
            let base = in_total.max(paid).max(1);
            // Only the part of w that did not come back as change is sent.
            let sent_w = split(w, &[base - change.min(base), change.min(base)])[0];
            let shares = split(sent_w, &weights);
            flow.fee_sats += shares[shares.len() - 1];
            for (&d, &share) in outs.iter().zip(&shares) {
                if share == 0 {
                    continue;
                }
                let hop = h + 1;
                match self.view.output_addr(d).and_then(|a| self.label(a, height)) {
                    Some((cat, delisted, names)) => acc.add(
                        (cat, Self::kind(hop), delisted),
                        share,
                        hop,
                        &names,
                        &path2,
                        day,
                    ),
                    None if hop < self.params.max_hops => {
                        queue.push_back((d, share, hop, path2.clone(), day))
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
        mut acc: Acc,
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
            },
        ) in std::mem::take(&mut acc.rows)
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
    let labels = attr.attribute(a);
    if labels.is_empty() {
        return None;
    }
    let mut best: Option<(Level, String, bool)> = None;
    let mut names = Vec::new();
    for l in &labels {
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
        into.rows.insert((format!("sent|{cat}"), t, d), v);
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
        // Outputs that the address paid to itself would count twice as received: they are change.
        let starts_in: Vec<(OutNum, u64)> = starts.iter().copied().filter(|&(o, _)| {
        let t = view.output_tx(o);
        !view.tx_inputs(t).all(|i| matches!(view.input_prevout(i), Prevout::Output(po) if view.output_addr(po) == Some(addr)))
    }).collect();
        let self_paid: u64 = received.total_sats - starts_in.iter().map(|s| s.1).sum::<u64>();
        received.total_sats -= self_paid;
        received.self_change_sats = self_paid;
        cx.backward(starts_in.clone(), &mut acc, &mut received);
        let spent: Vec<(OutNum, u64)> = starts
            .iter()
            .copied()
            .filter(|&(o, _)| view.output_spender(o).is_some())
            .collect();
        sent.total_sats = spent.iter().map(|s| s.1).sum();
        let mut sacc = Acc::default();
        cx.forward(spent.clone(), Some(addr), &mut sacc, &mut sent);
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
            for &(o, w) in &starts_in {
                own_days.0.add(cx.day(view.output_tx(o)), U256::from(w));
            }
            for &(o, w) in &spent {
                if let Some(s) = view.output_spender(o) {
                    own_days.1.add(cx.day(s), U256::from(w));
                }
            }
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
        cx.backward(vec![(out, view.output_value(out))], &mut acc, &mut received);
        let t = view.output_tx(out);
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
        let path = Path::default().push(t);
        let day = cx.day(t);
        match view
            .output_addr(out)
            .and_then(|a| cx.label(a, view.tx_height(t)))
        {
            Some((cat, delisted, names)) => sacc.add(
                (cat, ExposureType::Direct, delisted),
                w,
                1,
                &names,
                &path,
                day,
            ),
            // Not spent yet: nothing has been paid on, so nothing counts as sent.
            None if view.output_spender(out).is_none() => sent.unspent_sats = w,
            None => cx.forward_from(
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
        cx.backward(outs.clone(), &mut acc, &mut received);
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
        for (o, w) in outs {
            match view.output_addr(o).and_then(|a| cx.label(a, height)) {
                Some((cat, delisted, names)) => sacc.add(
                    (cat, ExposureType::Direct, delisted),
                    w,
                    1,
                    &names,
                    &Path::default().push(tx),
                    day,
                ),
                None => next.push_back((o, w, 1, Path::default().push(tx), day)),
            }
        }
        cx.forward_from(next, None, &mut sacc, &mut sent);
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
