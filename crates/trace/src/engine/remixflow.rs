//! `remix-flow`: the thief's post-mix coins that were remixed, found by counting.
//!
//! In a CoinJoin whose outputs are all equal and as many as its inputs (Whirlpool's 5 × 5),
//! every participant takes out as many coins as it put in. Seen from the thief, its coins
//! flow through the rounds the taint entered and their remixes: they *enter* as the coins
//! the trace holds (tainted Tx0 premix outputs), pass from round to round as post-mix coins
//! spent in a later round, and *leave* as post-mix coins spent outside a round (or never
//! spent). The soft hops `postmix-cashout` and `postmix-sweep` already name some that left;
//! every other coin that entered a round from outside is someone else's (no taint reached
//! it), and when the coins found leaving are as many as the coins that entered, every other
//! coin that left is someone else's as well.
//!
//! These are the constraints of a flow (a circulation with bounds: each coin an arc from its
//! round to the round that remixed it, or to "left"); a coin is the thief's *for certain*
//! when every flow that meets them uses it. That is decided exactly, not guessed: one
//! feasible flow (max-flow), then the strongly connected components of its residual graph:
//! a coin carrying the thief in that flow can be rerouted exactly when its two ends share a
//! component. Those that cannot are added to the thief's entity, one soft hop each, scored
//! as the weakest soft link the count rests on. Nothing is carried: the taint already went
//! on through the coins that left. Where the coins are interchangeable (two of a round's
//! inputs could each be the thief's), nothing is drawn.

use super::Tracer;
use crate::soft::SoftHop;
use cointrail_chain::view::{display_txid, OutNum, Prevout, TxNum};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// How many post-mix coins the graph may hold; past it, descent stops there (the coins
/// not followed further count as having left, which only weakens what is concluded).
const MAX_COINS: usize = 200_000;

/// A flow network with lower bounds, solved by augmenting paths (the flows are counts of
/// coins, small), then read for the arcs every feasible flow uses.
struct Net {
    n: usize,
    /// (from, to, low, high) per arc.
    arcs: Vec<(usize, usize, i64, i64)>,
}

impl Net {
    fn arc(&mut self, u: usize, v: usize, lo: i64, hi: i64) -> usize {
        self.arcs.push((u, v, lo, hi));
        self.arcs.len() - 1
    }

    /// One flow within the bounds that conserves at every node, or None.
    fn feasible(&self) -> Option<Vec<i64>> {
        let (ss, tt) = (self.n, self.n + 1);
        let nn = self.n + 2;
        let mut to = Vec::new();
        let mut cap = Vec::new();
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); nn];
        let mut add = |u: usize, v: usize, c: i64, to: &mut Vec<usize>, cap: &mut Vec<i64>| {
            adj[u].push(to.len());
            to.push(v);
            cap.push(c);
            adj[v].push(to.len());
            to.push(u);
            cap.push(0);
            to.len() - 2
        };
        let mut excess = vec![0i64; self.n];
        let mut fwd = Vec::with_capacity(self.arcs.len());
        for &(u, v, lo, hi) in &self.arcs {
            fwd.push(add(u, v, hi - lo, &mut to, &mut cap));
            excess[v] += lo;
            excess[u] -= lo;
        }
        let mut need = 0;
        for (x, &e) in excess.iter().enumerate() {
            if e > 0 {
                add(ss, x, e, &mut to, &mut cap);
                need += e;
            } else if e < 0 {
                add(x, tt, -e, &mut to, &mut cap);
            }
        }
        let mut got = 0;
        loop {
            let mut prev = vec![usize::MAX; nn];
            let mut q = VecDeque::from([ss]);
            prev[ss] = usize::MAX - 1;
            while let Some(u) = q.pop_front() {
                if u == tt {
                    break;
                }
                for &e in &adj[u] {
                    let v = to[e];
                    if cap[e] > 0 && prev[v] == usize::MAX {
                        prev[v] = e;
                        q.push_back(v);
                    }
                }
            }
            if prev[tt] == usize::MAX {
                break;
            }
            let mut f = i64::MAX;
            let mut v = tt;
            while v != ss {
                let e = prev[v];
                f = f.min(cap[e]);
                v = to[e ^ 1];
            }
            let mut v = tt;
            while v != ss {
                let e = prev[v];
                cap[e] -= f;
                cap[e ^ 1] += f;
                v = to[e ^ 1];
            }
            got += f;
        }
        (got == need).then(|| {
            self.arcs
                .iter()
                .zip(&fwd)
                .map(|(&(_, _, lo, _), &e)| lo + cap[e ^ 1])
                .collect()
        })
    }

    /// Strongly connected components of the residual graph of `flow` (Kosaraju, no
    /// recursion): an arc whose flow can change lies on a residual cycle, so its ends share
    /// a component.
    fn residual_components(&self, flow: &[i64]) -> Vec<usize> {
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); self.n];
        let mut inc: Vec<Vec<usize>> = vec![Vec::new(); self.n];
        for (&(u, v, lo, hi), &f) in self.arcs.iter().zip(flow) {
            if f < hi {
                out[u].push(v);
                inc[v].push(u);
            }
            if f > lo {
                out[v].push(u);
                inc[u].push(v);
            }
        }
        let mut seen = vec![false; self.n];
        let mut order = Vec::with_capacity(self.n);
        for s in 0..self.n {
            if seen[s] {
                continue;
            }
            seen[s] = true;
            let mut stack = vec![(s, 0usize)];
            while let Some(&mut (u, ref mut i)) = stack.last_mut() {
                if *i < out[u].len() {
                    let v = out[u][*i];
                    *i += 1;
                    if !seen[v] {
                        seen[v] = true;
                        stack.push((v, 0));
                    }
                } else {
                    order.push(u);
                    stack.pop();
                }
            }
        }
        let mut comp = vec![usize::MAX; self.n];
        let mut c = 0;
        for &s in order.iter().rev() {
            if comp[s] != usize::MAX {
                continue;
            }
            comp[s] = c;
            let mut stack = vec![s];
            while let Some(u) = stack.pop() {
                for &v in &inc[u] {
                    if comp[v] == usize::MAX {
                        comp[v] = c;
                        stack.push(v);
                    }
                }
            }
            c += 1;
        }
        comp
    }
}

fn find(p: &mut [usize], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

impl Tracer<'_> {
    /// A CoinJoin where each participant takes out as many coins as it put in: all its
    /// outputs equal, as many as its inputs.
    fn one_for_one(&mut self, t: TxNum) -> bool {
        let view = self.view;
        let n_out = view.tx_outputs(t).count();
        let n_in = view.tx_inputs(t).count();
        n_out >= 2 && n_in == n_out && self.cj_info(t).is_some_and(|(_, eq)| eq.len() == n_out)
    }

    /// `remix-flow` (module doc): run once, after the last soft round.
    pub(super) fn remix_flow(&mut self) {
        let Some(dp) = self.p.demix.clone() else {
            return;
        };
        let view = self.view;
        let mut starts: Vec<TxNum> = self.soft.all_hits.clone();
        starts.sort_unstable();
        starts.dedup();
        starts.retain(|&t| self.one_for_one(t));
        if starts.is_empty() {
            return;
        }
        // The rounds: the tainted ones and every round that remixed one of their coins.
        let mut round_ix: HashMap<TxNum, usize> = HashMap::new();
        let mut rounds: Vec<TxNum> = Vec::new();
        let mut coins: Vec<OutNum> = Vec::new();
        let mut q: VecDeque<TxNum> = VecDeque::new();
        for &t in &starts {
            round_ix.insert(t, rounds.len());
            rounds.push(t);
            q.push_back(t);
        }
        let mut truncated = false;
        while let Some(t) = q.pop_front() {
            for o in view.tx_outputs(t) {
                coins.push(o);
                if coins.len() >= MAX_COINS {
                    truncated = true;
                    continue;
                }
                let Some(s) = view.output_spender(o) else {
                    continue;
                };
                if !truncated && !round_ix.contains_key(&s) && self.one_for_one(s) {
                    round_ix.insert(s, rounds.len());
                    rounds.push(s);
                    q.push_back(s);
                }
            }
        }
        let coin_set: HashSet<OutNum> = coins.iter().copied().collect();
        // Coins the soft hops found leaving: their score.
        let mut found: HashMap<String, (f64, String)> = HashMap::new();
        for h in &self.soft.hops {
            if matches!(
                h.rule.as_str(),
                "postmix-cashout" | "postmix-sweep" | "coinjoin-consolidation"
            ) {
                for (op, _) in &h.landed {
                    let e = found.entry(op.clone()).or_insert((h.score, h.rule.clone()));
                    if h.score < e.0 {
                        *e = (h.score, h.rule.clone());
                    }
                }
            }
        }
        // Nodes: 0 = entered (the trace's coins), 1 = left, 2 + i = round i.
        const ENTER: usize = 0;
        const LEFT: usize = 1;
        let mut net = Net {
            n: rounds.len() + 2,
            arcs: Vec::new(),
        };
        let mut sure = 0i64;
        let mut unsure = 0i64;
        let mut entries: Vec<(i64, i64)> = vec![(0, 0); rounds.len()];
        for (i, &t) in rounds.iter().enumerate() {
            for inp in view.tx_inputs(t) {
                let Prevout::Output(p) = view.input_prevout(inp) else {
                    continue;
                };
                if coin_set.contains(&p) {
                    continue;
                }
                // A coin from outside the rounds: the thief's when the trace holds it
                // (mostly tainted, or of the thief's entity); partly tainted, perhaps;
                // untouched by the taint, someone else's.
                let taint = self.soft.row_of.get(&p).map(|&r| {
                    let row = &self.rows[r];
                    row.tainted_sats + row.soft_sats
                });
                if self.is_thief(p)
                    || taint.is_some_and(|x| x.saturating_mul(2) >= view.output_value(p))
                {
                    entries[i].0 += 1;
                } else if taint.is_some_and(|x| x > 0) || self.soft.held.contains(&p) {
                    entries[i].1 += 1;
                }
            }
            let (s, u) = entries[i];
            if s > 0 {
                net.arc(ENTER, 2 + i, s, s);
            }
            if u > 0 {
                net.arc(ENTER, 2 + i, 0, u);
            }
            sure += s;
            unsure += u;
        }
        if sure + unsure == 0 {
            return;
        }
        net.arc(LEFT, ENTER, sure, sure + unsure);
        // One arc per coin.
        let mut coin_arc: Vec<(OutNum, usize, usize, bool, usize)> = Vec::new();
        let mut landed = 0;
        let mut parent: Vec<usize> = (0..net.n).collect();
        for &o in &coins {
            let u = 2 + round_ix[&view.output_tx(o)];
            let v = view
                .output_spender(o)
                .and_then(|s| round_ix.get(&s))
                .map_or(LEFT, |&j| 2 + j);
            let known = v == LEFT && found.contains_key(&self.outpoint(o));
            landed += known as usize;
            let a = net.arc(u, v, known as i64, 1);
            coin_arc.push((o, u, v, known, a));
            if v != LEFT {
                let (ru, rv) = (find(&mut parent, u), find(&mut parent, v));
                parent[ru.max(rv)] = ru.min(rv);
            }
        }
        if landed == 0 {
            return;
        }
        let Some(flow) = net.feasible() else {
            self.warnings.push(format!(
                "remix-flow: the thief's coins cannot be routed through the {} one-for-one CoinJoins its post-mix coins went through ({sure} entered, {landed} found leaving): a soft link or an entry is wrong; no remix was linked",
                rounds.len()
            ));
            return;
        };
        let comp = net.residual_components(&flow);
        // Per group of rounds tied by remixes: what entered, what was found leaving, and
        // the weakest link found.
        let mut group: BTreeMap<usize, (usize, i64, i64, usize, f64, String)> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            let g = group.entry(find(&mut parent, 2 + i)).or_insert((
                0,
                0,
                0,
                0,
                f64::MAX,
                String::new(),
            ));
            g.0 += 1;
            g.1 += e.0;
            g.2 += e.1;
        }
        for &(o, u, _, known, _) in &coin_arc {
            if known {
                let (sc, rule) = found[&self.outpoint(o)].clone();
                let g = group
                    .get_mut(&find(&mut parent, u))
                    .expect("every round has a group");
                g.3 += 1;
                if sc < g.4 {
                    g.4 = sc;
                    g.5 = rule;
                }
            }
        }
        // The thief's coins in and out of each round in the routing found.
        let mut thief_in = vec![0i64; net.n];
        let mut thief_out = vec![0i64; net.n];
        for (&(u, v, _, _), &f) in net.arcs.iter().zip(&flow) {
            thief_out[u] += f;
            thief_in[v] += f;
        }
        for &(o, u, v, known, a) in &coin_arc {
            if known || flow[a] != 1 || comp[u] == comp[v] || self.soft.claimed_out.contains(&o) {
                continue;
            }
            let g = group[&find(&mut parent, u)].clone();
            let sc = ((g.4.min(0.9)) * 100.0).round() / 100.0;
            if sc < dp.min_score {
                continue;
            }
            let ri = u - 2;
            let t = rounds[ri];
            let ht = view.tx_height(t);
            let (to_txid, went) = if v == LEFT {
                let w = match view.output_spender(o) {
                    Some(s) => format!(
                        "left the CoinJoins at height {} in {}",
                        view.tx_height(s),
                        display_txid(view.txid(s))
                    ),
                    None => "is unspent".to_string(),
                };
                (
                    view.output_spender(o)
                        .map_or_else(String::new, |s| display_txid(view.txid(s))),
                    w,
                )
            } else {
                let s = rounds[v - 2];
                (
                    display_txid(view.txid(s)),
                    format!(
                        "was remixed at height {} in CoinJoin {} (the thief's coins there in the routing found: {} in, {} out)",
                        view.tx_height(s),
                        display_txid(view.txid(s)),
                        thief_in[v],
                        thief_out[v]
                    ),
                )
            };
            let n = view.tx_outputs(t).count();
            let facts = vec![
                format!(
                    "post-mix output {} ({} sats, height {ht}) of the {n} × {n} CoinJoin {} ({} of its inputs entered from the trace; the thief's coins there in the routing found: {} in, {} out) {went}",
                    self.outpoint(o),
                    view.output_value(o),
                    display_txid(view.txid(t)),
                    entries[ri].0,
                    thief_in[u],
                    thief_out[u]
                ),
                format!(
                    "{} CoinJoin(s) tied by remixes, each giving every participant as many equal outputs as it put in: {} coin(s) entered them from the trace{}; {} left where soft hops found them (weakest: {} at {:.2}); every coin that entered untouched by the taint is someone else's",
                    g.0,
                    g.1,
                    if g.2 > 0 { format!(" (and {} partly tainted)", g.2) } else { String::new() },
                    g.3,
                    g.5,
                    g.4
                ),
                format!(
                    "every routing of the thief's coins through them that keeps those counts passes through this coin (the other choices leave a CoinJoin giving the thief more or fewer coins than it put in){}",
                    if truncated { format!("; the descent stopped at {MAX_COINS} coins") } else { String::new() }
                ),
            ];
            self.soft.members.push((o, "remix-flow".into()));
            self.soft.claimed_out.insert(o);
            self.soft.hops.push(SoftHop {
                rule: "remix-flow".into(),
                score: sc,
                from: display_txid(view.txid(t)),
                to_txid,
                soft_sats: 0,
                facts,
                landed: Vec::new(),
            });
        }
    }
}
