//! The soft rounds of the tracer: custodial-mixer deposits matched to withdrawals, and
//! CoinJoin outputs followed to where they are consolidated (rules and scores in
//! `crate::soft`). Runs after each coin-level pass; what a soft hop carries is registered
//! under the soft twin of its label and traced in the next pass.

use super::{CjHit, Deposit, EntityMember, Tracer};
use crate::model::{largest_remainder, Label, Run, CLEAN};
use crate::soft::{just_below_round, score, Candidate, DemixEntry, SoftHop};
use cointrail_chain::view::{display_txid, OutNum, Prevout, TxNum};
use cointrail_chain::ScriptType;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Two deposits are "equal" within 0.1%.
fn equal(a: u64, b: u64) -> bool {
    a.abs_diff(b) as u128 * 1000 <= a.max(b) as u128
}

fn find(p: &mut [usize], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

fn union(p: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(p, a), find(p, b));
    if ra != rb {
        p[ra.max(rb)] = ra.min(rb);
    }
}

/// Labels and amounts of a run list, labels in order.
fn by_label(runs: &[Run]) -> Vec<(Label, u64)> {
    let mut m: BTreeMap<Label, u64> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.label != CLEAN) {
        *m.entry(r.label).or_default() += r.amount;
    }
    m.into_iter().filter(|x| x.1 > 0).collect()
}

impl Tracer<'_> {
    /// Find the soft hops of what the last pass left at mixers and CoinJoins. True when
    /// another pass has something to trace.
    pub(super) fn soft_round(&mut self) -> bool {
        let deps = std::mem::take(&mut self.soft.deposits);
        let hits = std::mem::take(&mut self.soft.cj_hits);
        self.soft.all_hits.extend(hits.iter().map(|h| h.tx));
        if deps.is_empty() && hits.is_empty() {
            return false;
        }
        // A transaction seen in an earlier pass may be visited again for what a soft hop
        // brings it (its other inputs are then already accounted for).
        self.queued.clear();
        self.demix_deposits(deps);
        self.postmix(hits);
        !self.heap.is_empty() || !self.soft.deposits.is_empty() || !self.soft.cj_hits.is_empty()
    }

    pub(super) fn outpoint(&self, o: OutNum) -> String {
        let v = self.view;
        format!(
            "{}:{}",
            display_txid(v.txid(v.output_tx(o))),
            v.output_vout(o)
        )
    }

    fn first_tx_at(&self, height: u32) -> TxNum {
        let (mut lo, mut hi) = (0u64, self.view.tx_count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.view.tx_height(mid as TxNum) < height {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo as TxNum
    }

    /// The detector, asked once per transaction (remix trees overlap): the CoinJoin's equal
    /// value and equal outputs.
    pub(super) fn cj_info(&mut self, t: TxNum) -> Option<(u64, Vec<OutNum>)> {
        if let Some(b) = self.soft.cj_cache.get(&t) {
            return b.clone();
        }
        let b = self
            .oracle
            .coinjoin(t)
            .map(|c| (c.equal_value, c.equal_outputs));
        self.soft.cj_cache.insert(t, b.clone());
        b
    }

    fn is_coinjoin(&mut self, t: TxNum) -> bool {
        self.cj_info(t).is_some()
    }

    fn at_mixer(&self, o: OutNum, name: &str) -> bool {
        self.oracle
            .stop_at(o)
            .is_some_and(|s| s.category == "mixer" && s.name == name)
            || self.at_detected(o, name)
    }

    /// Put soft taint on `o` (per label, soft labels) and trace it on. Returns the sats.
    fn soft_register(&mut self, o: OutNum, per_label: &[(Label, u64)], hops: u32) -> u64 {
        if self.frontier.contains_key(&o) || !self.soft.claimed_out.insert(o) {
            return 0;
        }
        let value = self.view.output_value(o);
        let mut runs = Vec::new();
        let mut sum = 0;
        for &(l, a) in per_label {
            let a = a.min(value - sum);
            if a == 0 {
                continue;
            }
            let sl = self.soft_of(l);
            runs.push(Run::tainted(sl, a, 0));
            self.totals[sl as usize - 1].source_sats += a;
            sum += a;
        }
        if sum == 0 {
            return 0;
        }
        if sum < value {
            runs.push(Run::clean(value - sum));
        }
        self.register(o, runs, hops, false);
        sum
    }

    /// Whether every one of `outs` (paid at height `h`) was spent alone within `window`
    /// blocks by a transaction paying only services: the facts, when so.
    fn cashed_out(&self, outs: &[OutNum], h: u32, window: u32) -> Option<String> {
        let view = self.view;
        let mut facts = Vec::new();
        for &o in outs {
            let s = view.output_spender(o)?;
            let ins = view.tx_inputs(s);
            let hs = view.tx_height(s);
            if ins.end - ins.start != 1 || hs.saturating_sub(h) > window {
                return None;
            }
            let mut names = Vec::new();
            for x in view.tx_outputs(s) {
                let st = self.oracle.stop_at(x).filter(|st| st.category != "mixer")?;
                names.push(format!("{} ({})", st.name, st.category));
            }
            if names.is_empty() {
                return None;
            }
            facts.push(format!(
                "{} spent alone {} blocks later to {}",
                self.outpoint(o),
                hs - h,
                names.join(", ")
            ));
        }
        (!facts.is_empty()).then(|| format!("{} (window {window} blocks)", facts.join("; ")))
    }

    fn demix_deposits(&mut self, mut deps: Vec<Deposit>) {
        let dp = self
            .p
            .demix
            .clone()
            .expect("soft rounds run with demix settings");
        let view = self.view;
        deps.sort_by_key(|d| d.out);
        let vals: Vec<u64> = deps.iter().map(|d| view.output_value(d.out)).collect();
        for i in 0..deps.len() {
            let d = &deps[i];
            let v = vals[i];
            let dtx = view.output_tx(d.out);
            let h = view.tx_height(dtx);
            let series: Vec<usize> = (0..deps.len())
                .filter(|&j| deps[j].mixer == d.mixer && equal(vals[j], v))
                .collect();
            let round = just_below_round(v);
            let structured = round.is_some() && series.len() >= 2;
            let next = series
                .iter()
                .copied()
                .find(|&j| j > i && view.output_tx(deps[j].out) > dtx)
                .filter(|_| structured)
                .map(|j| view.tx_height(view.output_tx(deps[j].out)));
            let lo_h = h.saturating_add(dp.delay_min);
            let mut hi_h = h.saturating_add(dp.delay_max);
            if let Some(nh) = next {
                hi_h = hi_h.min(nh);
            }
            let dep_types: BTreeSet<ScriptType> = view
                .tx_inputs(dtx)
                .filter_map(|i| match view.input_prevout(i) {
                    Prevout::Output(p) => Some(view.output_script_type(p)),
                    _ => None,
                })
                .collect();
            let mut cands: Vec<(Candidate, Vec<OutNum>)> = Vec::new();
            if lo_h <= hi_h {
                let (a, b) = (
                    self.first_tx_at(lo_h),
                    self.first_tx_at(hi_h.saturating_add(1)),
                );
                for w in a..b {
                    if self.soft.claimed_tx.contains(&w) || w <= dtx {
                        continue;
                    }
                    let ins = view.tx_inputs(w);
                    if ins.start == ins.end {
                        continue;
                    }
                    let Prevout::Output(p) = view.input_prevout(ins.start) else {
                        continue;
                    };
                    if !self.at_mixer(p, &d.mixer) {
                        continue;
                    }
                    let outs: Vec<OutNum> = view
                        .tx_outputs(w)
                        .filter(|&o| !self.at_mixer(o, &d.mixer))
                        .collect();
                    let wsum: u64 = outs.iter().map(|&o| view.output_value(o)).sum();
                    if wsum == 0 || wsum > v {
                        continue;
                    }
                    let fee_bp = ((v - wsum) as u128 * 10_000 / v as u128) as u32;
                    if fee_bp < dp.fee_min_bp || fee_bp > dp.fee_max_bp {
                        continue;
                    }
                    let types: BTreeSet<ScriptType> =
                        outs.iter().map(|&o| view.output_script_type(o)).collect();
                    let hw = view.tx_height(w);
                    let mut ev = vec![
                        format!("deposit {v} sats at height {h}; withdrawal of {wsum} sats at height {hw}, {} blocks later (window {}-{})", hw - h, dp.delay_min, dp.delay_max),
                        format!(
                            "the mixer kept {}.{:02}% (fee band {}.{:02}-{}.{:02}%)",
                            fee_bp / 100,
                            fee_bp % 100,
                            dp.fee_min_bp / 100,
                            dp.fee_min_bp % 100,
                            dp.fee_max_bp / 100,
                            dp.fee_max_bp % 100
                        ),
                    ];
                    let script_match = types.iter().all(|t| dep_types.contains(t));
                    ev.push(format!(
                        "withdrawal scripts {types:?} {} the depositor's input scripts {dep_types:?}",
                        if script_match { "match" } else { "differ from" }
                    ));
                    cands.push((
                        Candidate {
                            txid: display_txid(view.txid(w)),
                            height: hw,
                            withdrawn_sats: wsum,
                            fee_bp,
                            delay_blocks: hw - h,
                            score: 0.0,
                            evidence: ev,
                            tx: w,
                        },
                        outs,
                    ));
                }
            }
            let k = cands.len();
            // The depositor's habit after the mix: each output of the withdrawal spent alone,
            // soon, by a transaction paying only services (a cash-out).
            let habits: Vec<Option<String>> = cands
                .iter()
                .map(|(c, outs)| self.cashed_out(outs, c.height, dp.cashout_blocks))
                .collect();
            let k_habit = habits.iter().filter(|h| h.is_some()).count();
            // Several cashed-out candidates may be the payouts of the thief's *other*
            // tainted deposits into the same mixer: m = this deposit and those others one of
            // these candidates fits (fee band, window). When the cashed-out candidates are
            // no more than m, each deposit takes one, the earliest first.
            let mut m = 1;
            if k_habit > 1 {
                for j in 0..deps.len() {
                    if j == i || deps[j].mixer != d.mixer {
                        continue;
                    }
                    let hj = view.tx_height(view.output_tx(deps[j].out));
                    let fits = cands.iter().zip(&habits).any(|((c, _), hb)| {
                        let vj = vals[j];
                        hb.is_some()
                            && c.withdrawn_sats < vj
                            && c.height >= hj.saturating_add(dp.delay_min)
                            && c.height <= hj.saturating_add(dp.delay_max)
                            && {
                                let bp =
                                    ((vj - c.withdrawn_sats) as u128 * 10_000 / vj as u128) as u32;
                                bp >= dp.fee_min_bp && bp <= dp.fee_max_bp
                            }
                    });
                    if fits {
                        m += 1;
                    }
                }
            }
            let shared = k_habit > 1 && k_habit <= m;
            let first_habit = cands
                .iter()
                .zip(&habits)
                .filter(|(_, h)| h.is_some())
                .map(|((c, _), _)| c.height)
                .min();
            for ((c, _), habit) in cands.iter_mut().zip(&habits) {
                let script_match = c.evidence[2].contains(" match ");
                c.evidence.push(if k == 1 {
                    "the only withdrawal in the fee band within the window".into()
                } else {
                    format!("{k} withdrawals in the fee band within the window")
                });
                let by_shared = shared && habit.is_some() && Some(c.height) == first_habit;
                let by_habit = k > 1 && habit.is_some() && (k_habit == 1 || by_shared);
                if let Some(h) = habit {
                    c.evidence.push(if by_shared {
                        format!("the earliest of {k_habit} cashed out, for {m} tainted deposits into this mixer that they fit (each takes one): {h}")
                    } else if by_habit {
                        format!("the only one of them cashed out: {h}")
                    } else {
                        format!("cashed out: {h}")
                    });
                }
                if let (Some(r), Some(nh)) = (round, next) {
                    c.evidence.push(format!("structured series: {} deposits of about {v} sats, just below {r} sats; paid out before the series' next deposit at height {nh}", series.len()));
                }
                c.score = score(true, k == 1 || by_habit, next.is_some(), script_match);
            }
            cands.sort_by(|a, b| {
                b.0.score
                    .total_cmp(&a.0.score)
                    .then(a.0.delay_blocks.cmp(&b.0.delay_blocks))
            });
            cands.truncate(5);
            let tainted: u64 = by_label(&d.runs).iter().map(|x| x.1).sum();
            let mut entry = DemixEntry {
                deposit: format!(
                    "{}:{}",
                    display_txid(view.txid(dtx)),
                    view.output_vout(d.out)
                ),
                mixer: d.mixer.clone(),
                deposit_sats: v,
                tainted_sats: tainted,
                height: h,
                structured,
                candidates: cands.iter().map(|c| c.0.clone()).collect(),
                followed: None,
            };
            if let Some((best, outs)) = cands.first().filter(|c| c.0.score >= dp.min_score) {
                self.soft.claimed_tx.insert(best.tx);
                entry.followed = Some(0);
                let values: Vec<u64> = outs.iter().map(|&o| view.output_value(o)).collect();
                let labels = by_label(&d.runs);
                // The deposit's taint, scaled to what came out: a share W/d of each label.
                let shares: Vec<Vec<u64>> = labels
                    .iter()
                    .map(|&(_, a)| {
                        let carry = (a as u128 * best.withdrawn_sats as u128 / v as u128) as u64;
                        largest_remainder(carry, &values)
                    })
                    .collect();
                let rule = if structured {
                    "mixer-structured"
                } else {
                    "mixer-demix"
                };
                let mut carried = 0;
                let mut landed = Vec::new();
                for (j, &o) in outs.iter().enumerate() {
                    let per: Vec<(Label, u64)> = labels
                        .iter()
                        .zip(&shares)
                        .map(|(&(l, _), s)| (l, s[j]))
                        .collect();
                    let got = self.soft_register(o, &per, d.hops + 1);
                    if got > 0 {
                        self.soft.members.push((o, rule.to_string()));
                        landed.push((self.outpoint(o), got));
                    }
                    carried += got;
                }
                self.soft.hops.push(SoftHop {
                    rule: rule.into(),
                    score: best.score,
                    from: entry.deposit.clone(),
                    to_txid: best.txid.clone(),
                    soft_sats: carried,
                    facts: best.evidence.clone(),
                    landed,
                });
            }
            self.soft.demix.push(entry);
        }
    }

    fn postmix(&mut self, hits: Vec<CjHit>) {
        let dp = self
            .p
            .demix
            .clone()
            .expect("soft rounds run with demix settings");
        let view = self.view;
        // Every tainted CoinJoin's outputs and, through remixes, their descendants: output →
        // (which CoinJoin, remix depth).
        let mut origin: HashMap<OutNum, (usize, u32)> = HashMap::new();
        let mut comp: Vec<usize> = (0..hits.len()).collect();
        for (k, hit) in hits.iter().enumerate() {
            let mut desc: Vec<(OutNum, u32)> = view.tx_outputs(hit.tx).map(|o| (o, 0)).collect();
            let mut seen: std::collections::HashSet<TxNum> = [hit.tx].into_iter().collect();
            let mut i = 0;
            while i < desc.len() && desc.len() < 10_000 {
                let (o, depth) = desc[i];
                i += 1;
                if depth >= dp.remix_depth {
                    continue;
                }
                // A remix is a post-mix coin mixed again, as Whirlpool does by design: only
                // CoinJoins whose outputs are all equal are descended. Where change outputs
                // exist (JoinMarket, Wasabi 1), a change spent in another CoinJoin is
                // followed by `coinjoin-change`, and an equal output spent in another
                // CoinJoin is most often a maker's coin, which would tie unrelated rounds.
                let tx_o = view.output_tx(o);
                let all_equal = self.cj_info(tx_o).is_some_and(|(_, eq)| {
                    eq.len() as u64 == view.tx_outputs(tx_o).count() as u64 && eq.contains(&o)
                });
                if !all_equal {
                    continue;
                }
                if let Some(s) = view.output_spender(o) {
                    if self.is_coinjoin(s) && seen.insert(s) {
                        desc.extend(view.tx_outputs(s).map(|o2| (o2, depth + 1)));
                    }
                }
            }
            for (o, d) in desc {
                match origin.get(&o) {
                    // Trees that share an output (the thief's coins meet in the same mixes):
                    // one component, whose taint and candidates are judged together.
                    Some(&(k2, _)) => union(&mut comp, k, k2),
                    None => {
                        origin.insert(o, (k, d));
                    }
                }
            }
        }
        let mut by_spender: BTreeMap<TxNum, Vec<OutNum>> = BTreeMap::new();
        let mut outs: Vec<OutNum> = origin.keys().copied().collect();
        outs.sort_unstable();
        for o in outs {
            if self.soft.claimed_out.contains(&o) {
                continue;
            }
            if let Some(s) = view.output_spender(o) {
                if !self.is_coinjoin(s) {
                    by_spender.entry(s).or_default().push(o);
                }
            }
        }
        let mut remaining: Vec<Vec<(Label, u64)>> =
            hits.iter().map(|h| by_label(&h.runs)).collect();
        self.coinjoin_change(&hits, &mut remaining);
        let roots: Vec<usize> = (0..hits.len()).map(|k| find(&mut comp, k)).collect();
        self.postmix_cashout(&hits, &origin, &roots, &mut remaining);
        if !dp.coinjoin_links {
            return;
        }
        for (x, linked) in by_spender {
            let held: Vec<OutNum> = view
                .tx_inputs(x)
                .filter_map(|i| match view.input_prevout(i) {
                    Prevout::Output(p) if !origin.contains_key(&p) => Some(p),
                    _ => None,
                })
                .filter(|&p| self.soft.held.contains(&p) || self.is_thief(p))
                .collect();
            let mixes: BTreeSet<usize> = linked.iter().map(|o| origin[o].0).collect();
            let maxd = linked.iter().map(|o| origin[o].1).max().unwrap_or(0);
            let (base, how) = if !held.is_empty() {
                (
                    0.9,
                    format!(
                        "spent together with {} output(s) the trace already holds",
                        held.len()
                    ),
                )
            } else if mixes.len() >= 2 {
                // Two outputs only: other participants of the same pools do that too (on the
                // simulator about one such link in ten was someone else's), so it needs three.
                let base = if linked.len() >= 3 { 0.85 } else { 0.75 };
                // Outputs of two different CoinJoins the taint entered, in one spend: one
                // owner who was in both, as the thief was.
                (
                    base,
                    format!(
                        "{} outputs of {} different tainted CoinJoins spent together",
                        linked.len(),
                        mixes.len()
                    ),
                )
            } else if linked.len() >= 2 {
                // Spent together says one owner for these outputs, not which owner: a
                // participant who is not the thief does the same (measured on the
                // simulator: wrong every time), so alone it stays below the default.
                (
                    0.5,
                    format!("{} outputs of one CoinJoin spent together", linked.len()),
                )
            } else {
                continue;
            };
            let sc = ((base - 0.05 * maxd as f64) * 100.0).round() / 100.0;
            if sc < dp.min_score {
                continue;
            }
            let mut carried = 0;
            let mut landed = Vec::new();
            let mut facts = Vec::new();
            for &k in &mixes {
                let left: u64 = remaining[k].iter().map(|r| r.1).sum();
                facts.push(format!(
                    "{} CoinJoin {} took taint in ({left} sats still unassigned)",
                    hits[k].protocol,
                    display_txid(view.txid(hits[k].tx))
                ));
            }
            facts.push(format!(
                "post-mix outputs {} spent in {} at height {}: {how}",
                linked
                    .iter()
                    .map(|&o| format!(
                        "{} ({} sats, remix depth {})",
                        self.outpoint(o),
                        view.output_value(o),
                        origin[&o].1
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                display_txid(view.txid(x)),
                view.tx_height(x)
            ));
            for &o in &linked {
                let (k, depth) = origin[&o];
                let left: u64 = remaining[k].iter().map(|r| r.1).sum();
                let amount = view.output_value(o).min(left);
                if amount == 0 {
                    continue;
                }
                let w: Vec<u64> = remaining[k].iter().map(|r| r.1).collect();
                let split = largest_remainder(amount, &w);
                let per: Vec<(Label, u64)> = remaining[k]
                    .iter()
                    .zip(&split)
                    .map(|(r, &a)| (r.0, a))
                    .collect();
                let got = self.soft_register(o, &per, hits[k].hops + 1 + depth);
                if got > 0 {
                    for (r, &a) in remaining[k].iter_mut().zip(&split) {
                        r.1 -= a;
                    }
                    self.soft.members.push((o, "coinjoin-consolidation".into()));
                    landed.push((self.outpoint(o), got));
                }
                carried += got;
            }
            if carried == 0 {
                continue;
            }
            facts.push(format!("{carried} sats carried on as soft taint"));
            let from = mixes
                .iter()
                .map(|&k| display_txid(view.txid(hits[k].tx)))
                .collect::<Vec<_>>()
                .join(",");
            self.soft.hops.push(SoftHop {
                rule: "coinjoin-consolidation".into(),
                score: sc,
                from,
                to_txid: display_txid(view.txid(x)),
                soft_sats: carried,
                facts,
                landed,
            });
        }
    }

    /// Take `amount` sats out of a CoinJoin's unassigned taint (per label, in proportion)
    /// and put them on `o` as soft taint. Returns what landed.
    fn carry_from(
        &mut self,
        remaining: &mut [(Label, u64)],
        o: OutNum,
        amount: u64,
        hops: u32,
    ) -> u64 {
        let left: u64 = remaining.iter().map(|r| r.1).sum();
        let amount = amount.min(left).min(self.view.output_value(o));
        if amount == 0 {
            return 0;
        }
        let w: Vec<u64> = remaining.iter().map(|r| r.1).collect();
        let split = largest_remainder(amount, &w);
        let per: Vec<(Label, u64)> = remaining
            .iter()
            .zip(&split)
            .map(|(r, &a)| (r.0, a))
            .collect();
        let got = self.soft_register(o, &per, hops);
        if got > 0 {
            for (r, &a) in remaining.iter_mut().zip(&split) {
                r.1 -= a;
            }
        }
        got
    }

    /// `coinjoin-change`: the tainted inputs' value, less k equal outputs and the fees,
    /// leaves one change output; when exactly one output of the CoinJoin fits, it is the
    /// depositor's (JoinMarket's taker, a Wasabi participant), whatever the others did.
    fn coinjoin_change(&mut self, hits: &[CjHit], remaining: &mut [Vec<(Label, u64)>]) {
        let view = self.view;
        for (k, hit) in hits.iter().enumerate() {
            let Some((eq, eq_outs)) = self.cj_info(hit.tx) else {
                continue;
            };
            let tin = hit.tin_value;
            if eq == 0 || tin <= eq {
                continue;
            }
            let mut fits = Vec::new();
            for o in view.tx_outputs(hit.tx) {
                if eq_outs.contains(&o) || self.soft.claimed_out.contains(&o) {
                    continue;
                }
                let c = view.output_value(o);
                if c == 0 || c >= tin {
                    continue;
                }
                let rest = tin - c;
                let m = rest / eq;
                if m == 0 || m as usize > eq_outs.len() {
                    continue;
                }
                let gap = rest - m * eq;
                // Fees: what makers, the coordinator and the miners take, at most 0.5% of
                // what was mixed plus 0.002 BTC, and well below one denomination.
                let tol = (m * eq / 200 + 200_000).min(eq / 4);
                if gap <= tol {
                    fits.push((o, m, gap));
                }
            }
            // Several fit: a fee is what the makers and the miners took, so the one whose
            // gap is by far the smallest (under a quarter of the next) is the change; the
            // others fit by chance. Otherwise the change is ambiguous.
            fits.sort_by_key(|f| f.2);
            let runner_up = fits.get(1).map(|f| f.2);
            if fits.is_empty() || runner_up.is_some_and(|g2| fits[0].2.saturating_mul(4) >= g2) {
                continue;
            }
            let (o, m, gap) = fits[0];
            let c = view.output_value(o);
            let left: u64 = remaining[k].iter().map(|r| r.1).sum();
            // The change's share of the taint that came in (all of it when the inputs were
            // wholly tainted).
            let share = (c as u128 * left as u128 / tin as u128) as u64;
            let got = self.carry_from(&mut remaining[k], o, share, hit.hops + 1);
            if got == 0 {
                continue;
            }
            self.soft.members.push((o, "coinjoin-change".into()));
            let txid = display_txid(view.txid(hit.tx));
            self.soft.hops.push(SoftHop {
                rule: "coinjoin-change".into(),
                score: if runner_up.is_none() { 0.9 } else { 0.85 },
                from: txid.clone(),
                to_txid: txid,
                soft_sats: got,
                facts: vec![
                    format!(
                        "{} CoinJoin at height {}: the inputs that brought taint in are worth {tin} sats",
                        hit.protocol,
                        view.tx_height(hit.tx)
                    ),
                    format!(
                        "{tin} = {m} × {eq} (equal outputs) + {c} (output {}) + {gap} sats of fees",
                        view.output_vout(o)
                    ),
                    match runner_up {
                        None => format!(
                            "the only one of its {} outputs that fits",
                            view.tx_outputs(hit.tx).count()
                        ),
                        Some(g2) => format!(
                            "{} of its {} outputs fit; this one leaves {gap} sats of fees, the next {g2} (more than 4 times as much)",
                            fits.len(),
                            view.tx_outputs(hit.tx).count()
                        ),
                    },
                    format!("{got} sats carried on as soft taint"),
                ],
                landed: vec![(self.outpoint(o), got)],
            });
        }
    }

    /// `postmix-cashout`: post-mix outputs of a tainted CoinJoin (or of its remixes) that
    /// are spent alone within `cashout_blocks` of their mix, every output of the spend at a
    /// service. CoinJoins whose post-mix trees share outputs (the thief's coins meet in the
    /// same mixes) form one component, judged together: when its candidates are worth more
    /// than the taint it has left unassigned, each carries its share of its value and the
    /// score falls by the same share.
    fn postmix_cashout(
        &mut self,
        hits: &[CjHit],
        origin: &HashMap<OutNum, (usize, u32)>,
        roots: &[usize],
        remaining: &mut [Vec<(Label, u64)>],
    ) {
        let dp = self
            .p
            .demix
            .clone()
            .expect("soft rounds run with demix settings");
        let view = self.view;
        // Candidates per component: (post-mix output, remix depth, the sweep that spent it
        // with other post-mix coins, if any).
        let mut by_comp: BTreeMap<usize, Vec<(OutNum, u32, Option<TxNum>)>> = BTreeMap::new();
        let mut outs: Vec<(OutNum, (usize, u32))> = origin.iter().map(|(&o, &x)| (o, x)).collect();
        outs.sort_unstable();
        // Spends of two or more post-mix outputs: `postmix-sweep` candidates when judged so.
        let mut swept: BTreeMap<TxNum, Vec<(OutNum, usize, u32)>> = BTreeMap::new();
        for (o, (k, depth)) in outs {
            if self.soft.claimed_out.contains(&o) {
                continue;
            }
            let t = view.output_tx(o);
            match self.cj_info(t) {
                Some((_, eq_outs)) if eq_outs.contains(&o) => {}
                _ => continue,
            }
            let Some(s) = view.output_spender(o) else {
                continue;
            };
            let ins = view.tx_inputs(s);
            if self.is_coinjoin(s) {
                continue;
            }
            if ins.end - ins.start >= 2 {
                swept.entry(s).or_default().push((o, k, depth));
                continue;
            }
            if view.tx_height(s).saturating_sub(view.tx_height(t)) > dp.cashout_blocks {
                continue;
            }
            let paid: Vec<OutNum> = view.tx_outputs(s).collect();
            let at_services = !paid.is_empty()
                && paid.iter().all(|&x| {
                    self.oracle
                        .stop_at(x)
                        .is_some_and(|st| st.category != "mixer")
                });
            if at_services {
                by_comp.entry(roots[k]).or_default().push((o, depth, None));
            }
        }
        // `postmix-sweep`: post-mix coins swept together (with nothing but other post-mix
        // coins or coins the trace holds), and what the sweep made cashed out as a single
        // coin would be: every output spent alone, soon, straight to services.
        // The facts of each sweep, and how many of its inputs the taint reaches (post-mix
        // coins of these trees, coins the trace holds): with one only, the others are
        // post-mix coins of CoinJoins the taint has not (or not yet) entered, which the
        // score says.
        let mut sweep_facts: HashMap<TxNum, (String, usize)> = HashMap::new();
        for (s, linked) in swept {
            let own: BTreeSet<OutNum> = linked.iter().map(|x| x.0).collect();
            let mut support = own.len();
            let mut others_ok = true;
            for i in view.tx_inputs(s) {
                let Prevout::Output(p) = view.input_prevout(i) else {
                    others_ok = false;
                    break;
                };
                if own.contains(&p) {
                    continue;
                }
                if self.soft.held.contains(&p) || self.is_thief(p) {
                    support += 1;
                } else if !self
                    .cj_info(view.output_tx(p))
                    .is_some_and(|(_, eq)| eq.contains(&p))
                {
                    others_ok = false;
                    break;
                }
            }
            if !others_ok {
                continue;
            }
            let made: Vec<OutNum> = view.tx_outputs(s).collect();
            let Some(f) = self.cashed_out(&made, view.tx_height(s), dp.cashout_blocks) else {
                continue;
            };
            sweep_facts.insert(s, (f, support));
            for (o, k, depth) in linked {
                by_comp
                    .entry(roots[k])
                    .or_default()
                    .push((o, depth, Some(s)));
            }
        }
        for (root, cands) in by_comp {
            let members: Vec<usize> = (0..hits.len()).filter(|&k| roots[k] == root).collect();
            let mut merged: BTreeMap<Label, u64> = BTreeMap::new();
            for &k in &members {
                for &(l, a) in &remaining[k] {
                    *merged.entry(l).or_default() += a;
                }
            }
            let before = merged.clone();
            let mut budget: Vec<(Label, u64)> = merged.into_iter().collect();
            let left: u64 = budget.iter().map(|r| r.1).sum();
            let total_v: u64 = cands.iter().map(|&(o, _, _)| view.output_value(o)).sum();
            if left == 0 || total_v == 0 {
                continue;
            }
            let share = (left as f64 / total_v as f64).min(1.0);
            let hops = members.iter().map(|&k| hits[k].hops).min().unwrap_or(0);
            let kc = cands.len();
            let budget_fact = format!(
                "{kc} post-mix output(s) of these CoinJoins and their remixes, worth {total_v} sats, were cashed out alone or swept and cashed out; each carries {:.0}% of its value",
                share * 100.0
            );
            let amount_of = |v: u64| {
                if total_v <= left {
                    v
                } else {
                    (v as u128 * left as u128 / total_v as u128) as u64
                }
            };
            let score_at =
                |depth: u32| (((0.9 - 0.05 * depth as f64) * share) * 100.0).round() / 100.0;
            for &(o, depth, _) in cands.iter().filter(|c| c.2.is_none()) {
                let sc = score_at(depth);
                if sc < dp.min_score {
                    continue;
                }
                let v = view.output_value(o);
                let amount = amount_of(v);
                let s = view.output_spender(o).expect("candidates are spent");
                let hw = view.tx_height(view.output_tx(o));
                let hs = view.tx_height(s);
                let services: Vec<String> = view
                    .tx_outputs(s)
                    .filter_map(|x| self.oracle.stop_at(x))
                    .map(|st| format!("{} ({})", st.name, st.category))
                    .collect();
                let k = origin[&o].0;
                let txid = display_txid(view.txid(hits[k].tx));
                let got = self.carry_from(&mut budget, o, amount, hops + 1 + depth);
                if got == 0 {
                    continue;
                }
                self.soft.members.push((o, "postmix-cashout".into()));
                self.soft.hops.push(SoftHop {
                    rule: "postmix-cashout".into(),
                    score: sc,
                    from: txid.clone(),
                    to_txid: display_txid(view.txid(s)),
                    soft_sats: got,
                    facts: vec![
                        format!(
                            "{} CoinJoin {txid} at height {} took taint in; with the {} tainted CoinJoin(s) its post-mix coins met in, {left} tainted sats were unassigned",
                            hits[k].protocol,
                            view.tx_height(hits[k].tx),
                            members.len()
                        ),
                        format!(
                            "post-mix output {} ({v} sats, remix depth {depth}, height {hw}) spent alone {} blocks later (window {}) by a transaction paying only services: {}",
                            self.outpoint(o),
                            hs - hw,
                            dp.cashout_blocks,
                            services.join(", ")
                        ),
                        budget_fact.clone(),
                        format!("{got} sats carried on as soft taint"),
                    ],
                    landed: vec![(self.outpoint(o), got)],
                });
            }
            // One hop per sweep: the component's post-mix coins it spent.
            let mut sweeps: BTreeMap<TxNum, Vec<(OutNum, u32)>> = BTreeMap::new();
            for &(o, depth, s) in &cands {
                if let Some(s) = s {
                    sweeps.entry(s).or_default().push((o, depth));
                }
            }
            for (s, coins) in sweeps {
                let maxd = coins.iter().map(|c| c.1).max().unwrap_or(0);
                let (cashout, support) = sweep_facts[&s].clone();
                let sc = if support >= 2 {
                    score_at(maxd)
                } else {
                    score_at(maxd + 1)
                };
                if sc < dp.min_score {
                    continue;
                }
                let n_in = view.tx_inputs(s).count();
                let mixes: BTreeSet<usize> = coins.iter().map(|&(o, _)| origin[&o].0).collect();
                let mut facts = vec![format!(
                    "{} tainted CoinJoin(s) {} took taint in; with the {} tainted CoinJoin(s) their post-mix coins met in, {left} tainted sats were unassigned",
                    mixes.len(),
                    mixes
                        .iter()
                        .map(|&k| format!(
                            "{} {} (height {})",
                            hits[k].protocol,
                            display_txid(view.txid(hits[k].tx)),
                            view.tx_height(hits[k].tx)
                        ))
                        .collect::<Vec<_>>()
                        .join(", "),
                    members.len()
                )];
                facts.push(format!(
                    "post-mix outputs {} swept together in {} at height {} ({} input(s), every one a post-mix coin or a coin the trace holds)",
                    coins
                        .iter()
                        .map(|&(o, d)| format!(
                            "{} ({} sats, remix depth {d}, height {})",
                            self.outpoint(o),
                            view.output_value(o),
                            view.tx_height(view.output_tx(o))
                        ))
                        .collect::<Vec<_>>()
                        .join(", "),
                    display_txid(view.txid(s)),
                    view.tx_height(s),
                    n_in
                ));
                facts.push(if support >= 2 {
                    format!("{support} of its inputs carry taint or are post-mix coins of these CoinJoins")
                } else {
                    "its other inputs are post-mix coins of CoinJoins the taint did not enter (score as one remix deeper)".to_string()
                });
                facts.push(format!("what the sweep made was cashed out: {cashout}"));
                facts.push(budget_fact.clone());
                let mut carried = 0;
                let mut landed = Vec::new();
                for &(o, depth) in &coins {
                    let amount = amount_of(view.output_value(o));
                    let got = self.carry_from(&mut budget, o, amount, hops + 1 + depth);
                    if got > 0 {
                        self.soft.members.push((o, "postmix-sweep".into()));
                        landed.push((self.outpoint(o), got));
                    }
                    carried += got;
                }
                if carried == 0 {
                    continue;
                }
                // What the sweep made is the sweeper's (unless a service's address).
                for o in view.tx_outputs(s) {
                    if self.oracle.stop_at(o).is_none() {
                        self.soft.members.push((o, "postmix-sweep".into()));
                    }
                }
                facts.push(format!("{carried} sats carried on as soft taint"));
                let from = mixes
                    .iter()
                    .map(|&k| display_txid(view.txid(hits[k].tx)))
                    .collect::<Vec<_>>()
                    .join(",");
                self.soft.hops.push(SoftHop {
                    rule: "postmix-sweep".into(),
                    score: sc,
                    from,
                    to_txid: display_txid(view.txid(s)),
                    soft_sats: carried,
                    facts,
                    landed,
                });
            }
            // What the component used, taken back from its CoinJoins in order.
            let mut used: BTreeMap<Label, u64> = before
                .iter()
                .map(|(&l, &a)| {
                    let now = budget.iter().find(|r| r.0 == l).map_or(0, |r| r.1);
                    (l, a - now)
                })
                .collect();
            for &k in &members {
                for r in remaining[k].iter_mut() {
                    let u = used.entry(r.0).or_default();
                    let t = (*u).min(r.1);
                    r.1 -= t;
                    *u -= t;
                }
            }
        }
    }

    /// The addresses taken as the thief's: its entities' (entity-aware tracing) and where
    /// soft hops led.
    pub(super) fn thief_entity(&self) -> Vec<EntityMember> {
        let mut m: BTreeMap<String, EntityMember> = BTreeMap::new();
        let mut members: Vec<_> = self.ent.members.values().copied().collect();
        members.sort_by_key(|x| x.1);
        for (rule, o) in members {
            if let Some(a) = self.oracle.address(o) {
                m.entry(a.clone()).or_insert(EntityMember {
                    address: a,
                    rule: rule.into(),
                    soft: false,
                });
            }
            for x in self.oracle.entity_outputs(o) {
                if let Some(a) = self.oracle.address(x) {
                    m.entry(a.clone()).or_insert(EntityMember {
                        address: a,
                        rule: "cluster".into(),
                        soft: false,
                    });
                }
            }
        }
        for (o, rule) in &self.soft.members {
            if let Some(a) = self.oracle.address(*o) {
                m.entry(a.clone()).or_insert(EntityMember {
                    address: a,
                    rule: rule.clone(),
                    soft: true,
                });
            }
        }
        m.into_values().collect()
    }
}
