//! A clustering built from nothing (`cluster build`, a rebuild, a reorganisation's restart
//! from nothing): the same result as applying the transactions one by one
//! (`Clustering::apply`), in a fraction of the time.
//!
//! Applying a transaction finds the root of every address it touches and updates that
//! root's aggregates: random reads into the parents and into the 40-byte records for each
//! input and output, on one thread. Here:
//!
//! 1. **Union-find on two threads**, as the bare union-find reference does: a reading thread
//!    reads the inputs' addresses of the transactions with two inputs or more (and detects
//!    the CoinJoins among them), a merging thread joins them, keeping the merge log, the
//!    member lists and the sizes (a separate dense array). Single-input transactions are
//!    not read at all, unless one of their outputs pays an address seen before.
//! 2. **Roots flattened** on two threads: every address's parent becomes its root.
//! 3. **Aggregates from the outputs column**, on two threads that split the roots between
//!    them: each output credits its root with its value and counts its transaction; when it
//!    is spent (within the range), it credits the root's `sent` and counts the spending
//!    transaction. The columns are read in order.
//!
//! Sums, the smallest id and the first and last transaction add up the same whichever way
//! they are grouped. The transaction count does not: `apply` counts a transaction once for
//! each cluster it touched *when it was applied* (two clusters merged later keep both
//! counts). Step 3 counts every input and output; step 1 logs, for each transaction, how
//! many of its inputs and outputs shared a root with another of them at that moment, and
//! those are taken off. Only addresses seen before can share a root: an output paying an
//! address for the first time (an id above every address paid until then) is alone, except
//! with another output of the same transaction to the same address.

use super::{Agg, Clustering, Merge, READ_AHEAD};
use crate::coinjoin::{detect_coinjoin, NetParams};
use cointrail_chain::mem::prefetch;
use cointrail_chain::view::{AddrId, ChainView, Prevout, TxNum};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Transactions per batch handed from the reading thread to the merging one.
const BATCH: u64 = 4096;

/// One transaction the merging thread must look at: `addrs[start..union_end]` are inputs
/// to join (the first to each of the others, in order: the merge log depends on it), then
/// up to `end` other addresses seen before (a multiset: an address twice is counted twice,
/// as the counts of step 3 are) whose roots may coincide with theirs or one another's.
#[derive(Clone, Copy)]
struct Job {
    tx: TxNum,
    start: u32,
    union_end: u32,
    end: u32,
}

#[derive(Default)]
struct Work {
    addrs: Vec<AddrId>,
    jobs: Vec<Job>,
    /// Transactions read (for progress).
    txs: u64,
}

/// What the reading thread found besides the jobs.
#[derive(Default)]
struct Found {
    by_protocol: BTreeMap<&'static str, u64>,
    skipped: u64,
    /// (address, times counted too often): a first-time address paid twice by one
    /// transaction.
    extra: Vec<(AddrId, u32)>,
}

/// The reading side's state and scratch, reused for every transaction.
struct Scan<'a, V> {
    view: &'a V,
    /// The block of the last transaction read: its height and transactions.
    block: (u32, std::ops::Range<TxNum>),
    /// The first input whose spent output has not been asked for yet.
    ahead: u64,
    /// Addresses at or above this id had not been paid before the transaction read.
    seen: AddrId,
    /// Each transaction's height, written as they are read (step 3 turns transactions into
    /// heights with it).
    heights: &'a mut [u32],
    /// The CoinJoins (found beforehand, in chain order) and the next one to meet.
    coinjoins: &'a [(TxNum, &'static str)],
    next_coinjoin: usize,
    ins: Vec<AddrId>,
    /// Outputs to addresses seen before (a multiset).
    old: Vec<AddrId>,
    fresh: Vec<AddrId>,
    found: Found,
}

impl Clustering {
    /// Apply transactions `0..end` to an empty clustering (see the module comment).
    /// Callers: `covered_txs == 0`, no change layer, arrays grown to the view's addresses,
    /// `end` at least 1.
    pub(super) fn build_bulk<V: ChainView + Sync>(&mut self, view: &V, end: u64) {
        debug_assert_eq!(self.covered_txs, 0);
        debug_assert!(self.change.is_none());
        let n = self.parent.len();
        // Each address's parent and, at a root, the cluster's size less one, side by side:
        // a union reads both roots' sizes, which then come with the parents the finds
        // read, instead of two more reads at random (the merge log and the member lists
        // are kept as `Clustering::union` keeps them).
        let mut nodes: Vec<[u32; 2]> = Vec::new();
        super::fill_to(&mut nodes, n, |i| [i as u32, 0]);
        let mut heights: Vec<u32> = vec![0; end as usize];
        // (root when the transaction was applied, inputs and outputs counted too often)
        let mut extra: Vec<(AddrId, u32)> = Vec::new();
        let params = self.params;
        let (send, recv) = std::sync::mpsc::sync_channel::<Work>(8);
        let (back, spare) = std::sync::mpsc::channel::<Work>();
        let next: &mut [u32] = &mut self.next;
        let merges = self.merges.vec();
        let progress = &self.progress;
        let mut clock = Clock::start();
        let found_coinjoins = coinjoins(view, end, &params);
        clock.lap("CoinJoins");
        let found = std::thread::scope(|s| {
            let heights = &mut heights[..];
            let reading = s.spawn(move || {
                let mut sc = Scan {
                    view,
                    block: (0, 0..0),
                    ahead: 0,
                    seen: 0,
                    heights,
                    coinjoins: &found_coinjoins,
                    next_coinjoin: 0,
                    ins: Vec::new(),
                    old: Vec::new(),
                    fresh: Vec::new(),
                    found: Found::default(),
                };
                let c0 = cpu();
                let mut b = 0u64;
                while b < end {
                    let e = (b + BATCH).min(end);
                    let mut w = spare.try_recv().unwrap_or_default();
                    w.addrs.clear();
                    w.jobs.clear();
                    w.txs = e - b;
                    for t in b..e {
                        sc.read(t as TxNum, end, &mut w);
                    }
                    if send.send(w).is_err() {
                        break;
                    }
                    b = e;
                }
                if std::env::var_os("COINTRAIL_CLUSTER_PHASES").is_some() {
                    eprintln!("bulk: reading thread cpu {:.3} s", cpu() - c0);
                }
                sc.found
            });
            let c0 = cpu();
            let mut roots: Vec<AddrId> = Vec::new();
            let mut done = 0u64;
            for w in recv {
                // The parents of the addresses a few transactions ahead are asked for
                // before they are needed: those of different transactions are unrelated
                // reads, which the memory system overlaps.
                const AHEAD: usize = 8;
                let at = nodes.as_ptr();
                let fetch = |j: &Job| {
                    for &a in &w.addrs[j.start as usize..j.end as usize] {
                        prefetch(at.wrapping_add(a as usize));
                    }
                };
                w.jobs.iter().take(AHEAD).for_each(fetch);
                for (k, j) in w.jobs.iter().enumerate() {
                    if let Some(f) = w.jobs.get(k + AHEAD) {
                        fetch(f);
                    }
                    merge_tx(&mut nodes, next, merges, &mut extra, &mut roots, &w, j);
                }
                done += w.txs;
                if let Some(p) = progress {
                    p(done, end);
                }
                let _ = back.send(w);
            }
            if std::env::var_os("COINTRAIL_CLUSTER_PHASES").is_some() {
                eprintln!("bulk: merging thread cpu {:.3} s", cpu() - c0);
            }
            reading.join().expect("the reading thread does not panic")
        });
        clock.lap("union-find");
        for (p, k) in &found.by_protocol {
            *self.coinjoins_by_protocol.entry(p.to_string()).or_default() += k;
        }
        self.coinjoins_skipped += found.skipped;
        extra.extend_from_slice(&found.extra);
        flatten(&mut nodes);
        copy_parents(&nodes, &mut self.parent);
        clock.lap("flatten");
        aggregate(view, end, &nodes, &heights, &extra, &mut self.agg);
        clock.lap("aggregates");
        clock.report();
    }
}

impl<V: ChainView> Scan<'_, V> {
    /// Read transaction `t`: what the merging thread must do with it, if anything.
    #[inline]
    fn read(&mut self, t: TxNum, end: u64, w: &mut Work) {
        let view = self.view;
        // The outputs the next transactions' multi-input spends read, asked for ahead (see
        // `READ_AHEAD`): those are spread over the whole outputs column.
        // A single-input transaction's input is read only when an output pays an address
        // seen before (one seen before now certainly is).
        let ahead = (t as u64 + READ_AHEAD).min(end - 1) as TxNum;
        let ar = view.tx_inputs(ahead);
        if self.ahead < ar.end {
            let wanted = ar.end - ar.start > 1
                || view
                    .tx_outputs(ahead)
                    .any(|o| view.output_addr(o).is_some_and(|a| a < self.seen));
            if wanted {
                for i in self.ahead.max(ar.start)..ar.end {
                    if let Prevout::Output(o) = view.input_prevout(i) {
                        view.prefetch_output(o);
                    }
                }
            }
            self.ahead = ar.end;
        }
        if !self.block.1.contains(&t) {
            self.block = view.tx_block(t);
        }
        self.heights[t as usize] = self.block.0;
        // Outputs: to addresses seen before, or first-time ones (alone in their clusters).
        let before = self.seen;
        self.old.clear();
        self.fresh.clear();
        for o in view.tx_outputs(t) {
            if let Some(a) = view.output_addr(o) {
                if a < before {
                    self.old.push(a);
                } else {
                    self.fresh.push(a);
                    self.seen = self.seen.max(a + 1);
                }
            }
        }
        if self.fresh.len() > 1 {
            // A first-time address paid twice by this transaction is one cluster touched
            // twice. Rare; ids come in order, so most transactions are cleared at once.
            if self.fresh.windows(2).any(|p| p[1] <= p[0]) {
                self.fresh.sort_unstable();
                let mut i = 0;
                while i < self.fresh.len() {
                    let mut k = i + 1;
                    while k < self.fresh.len() && self.fresh[k] == self.fresh[i] {
                        k += 1;
                    }
                    if k - i > 1 {
                        self.found.extra.push((self.fresh[i], (k - i - 1) as u32));
                    }
                    i = k;
                }
            }
        }
        let inputs = view.tx_inputs(t);
        let n_in = inputs.end - inputs.start;
        let multi = n_in > 1 && !view.is_coinbase(t);
        if !multi && self.old.is_empty() {
            // One input (or a coinbase) and first-time outputs: nothing can share a root.
            return;
        }
        self.ins.clear();
        for i in inputs {
            if let Prevout::Output(o) = view.input_prevout(i) {
                if let Some(a) = view.output_addr(o) {
                    self.ins.push(a);
                }
            }
        }
        let coinjoin = if multi {
            let cj = self.coinjoins;
            while cj.get(self.next_coinjoin).is_some_and(|c| c.0 < t) {
                self.next_coinjoin += 1;
            }
            cj.get(self.next_coinjoin).filter(|c| c.0 == t).map(|c| c.1)
        } else {
            None
        };
        if let Some(p) = coinjoin {
            *self.found.by_protocol.entry(p).or_default() += 1;
            if self.ins.len() > 1 {
                self.found.skipped += 1;
            }
        }
        let start = w.addrs.len() as u32;
        let union_end = if multi && coinjoin.is_none() && self.ins.len() > 1 {
            w.addrs.extend_from_slice(&self.ins);
            w.addrs.len() as u32
        } else {
            if self.ins.len() + self.old.len() < 2 {
                return;
            }
            w.addrs.extend_from_slice(&self.ins);
            start
        };
        w.addrs.extend_from_slice(&self.old);
        w.jobs.push(Job {
            tx: t,
            start,
            union_end,
            end: w.addrs.len() as u32,
        });
    }
}

/// The CoinJoins among transactions `0..end` (which common-input ownership does not join),
/// in chain order: detected on two threads, each over half the range, before the
/// union-find, which looks them up as it meets them. Detection reads each candidate's
/// inputs and outputs (values, script types, addresses) and depends on nothing the
/// clustering holds, so it needs not wait for the reading thread's turn.
fn coinjoins<V: ChainView + Sync>(
    view: &V,
    end: u64,
    params: &NetParams,
) -> Vec<(TxNum, &'static str)> {
    let scan = |lo: u64, hi: u64| {
        let mut found = Vec::new();
        for t in lo as TxNum..hi as TxNum {
            let r = view.tx_inputs(t);
            if r.end - r.start > 1 && !view.is_coinbase(t) {
                if let Some(c) = detect_coinjoin(view, t, params) {
                    found.push((t, c.protocol));
                }
            }
        }
        found
    };
    let mid = end / 2;
    std::thread::scope(|s| {
        let first = s.spawn(|| scan(0, mid));
        let second = scan(mid, end);
        let mut all = first.join().expect("detection does not panic");
        all.extend(second);
        all
    })
}

/// The merging thread's part of one transaction: join its inputs, then log how many of its
/// inputs and outputs shared a root with another of them.
#[allow(clippy::too_many_arguments)]
#[inline]
fn merge_tx(
    nodes: &mut [[u32; 2]],
    next: &mut [u32],
    merges: &mut Vec<Merge>,
    extra: &mut Vec<(AddrId, u32)>,
    roots: &mut Vec<AddrId>,
    w: &Work,
    j: &Job,
) {
    let (s, u, e) = (j.start as usize, j.union_end as usize, j.end as usize);
    roots.clear();
    // The joined inputs are one root, counted once for each of them.
    let joined = if u > s {
        let a = w.addrs[s];
        for &b in &w.addrs[s + 1..u] {
            let (ra, rb) = (find(nodes, a), find(nodes, b));
            if ra == rb {
                continue;
            }
            // The larger cluster's root stays root (ties: `a`'s), as `Clustering::union`.
            let (big, small) = if nodes[ra as usize][1] >= nodes[rb as usize][1] {
                (ra, rb)
            } else {
                (rb, ra)
            };
            nodes[small as usize][0] = big;
            nodes[big as usize][1] += nodes[small as usize][1] + 1;
            next.swap(big as usize, small as usize);
            merges.push(Merge { tx: j.tx, a, b });
        }
        let r = find(nodes, a);
        roots.push(r);
        Some((r, (u - s) as u32))
    } else {
        None
    };
    for &y in &w.addrs[u..e] {
        roots.push(find(nodes, y));
    }
    if roots.len() > 1 {
        roots.sort_unstable();
    }
    let mut i = 0;
    while i < roots.len() {
        let g = roots[i];
        let mut k = i + 1;
        while k < roots.len() && roots[k] == g {
            k += 1;
        }
        let mut over = (k - i - 1) as u32;
        if let Some((r, n)) = joined {
            if r == g {
                over += n - 1;
            }
        }
        if over > 0 {
            extra.push((g, over));
        }
        i = k;
    }
}

/// The root of `a`, halving the path on the way (as `find_in`).
#[inline]
fn find(nodes: &mut [[u32; 2]], mut a: AddrId) -> AddrId {
    while nodes[a as usize][0] != a {
        let p = nodes[a as usize][0];
        nodes[a as usize][0] = nodes[p as usize][0];
        a = p;
    }
    a
}

/// Point every address straight at its root, on two threads. Each only ever writes a root
/// over an ancestor, so a walk by the other thread meets ancestors either way.
fn flatten(nodes: &mut [[u32; 2]]) {
    let n = nodes.len();
    // SAFETY: `AtomicU32` has the size and alignment of `u32`, so `n` pairs are `2n`
    // atomics (the parent of `x` at `2x`); the exclusive borrow keeps any other access out
    // while they live.
    let p: &[AtomicU32] =
        unsafe { std::slice::from_raw_parts(nodes.as_mut_ptr() as *const AtomicU32, 2 * n) };
    let run = |lo: usize, hi: usize| {
        for x in lo..hi {
            let mut r = p[2 * x].load(Relaxed);
            if r as usize == x {
                continue;
            }
            loop {
                let up = p[2 * r as usize].load(Relaxed);
                if up == r {
                    break;
                }
                r = up;
            }
            p[2 * x].store(r, Relaxed);
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| run(0, n / 2));
        run(n / 2, n);
    });
}

/// The clustering's parent array from the nodes, on two threads.
fn copy_parents(nodes: &[[u32; 2]], parent: &mut [u32]) {
    let mid = parent.len() / 2;
    let (a, b) = parent.split_at_mut(mid);
    let copy = |dst: &mut [u32], base: usize| {
        for (k, d) in dst.iter_mut().enumerate() {
            *d = nodes[base + k][0];
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| copy(a, 0));
        copy(b, mid);
    });
}

/// Step 3 (see the module comment): the roots' records from the outputs column, the roots
/// split between two threads at an address id.
fn aggregate<V: ChainView + Sync>(
    view: &V,
    end: u64,
    nodes: &[[u32; 2]],
    heights: &[u32],
    extra: &[(AddrId, u32)],
    agg: &mut [Agg],
) {
    let n = agg.len();
    let mid = n / 2;
    let (lo_half, hi_half) = agg.split_at_mut(mid);
    let run = |recs: &mut [Agg], base: usize| {
        let c0 = cpu();
        let top = base + recs.len();
        let mine = |r: usize| r >= base && r < top;
        // While counting, `first` and `last` hold transactions (`last` one more, so that
        // 0 stays "none"); turned into heights at the end.
        let outs = view.tx_outputs(0).start..view.tx_outputs((end - 1) as TxNum).end;
        // The records the outputs a little ahead credit are asked for before they are
        // needed (and the roots further ahead, to know which records): unrelated reads,
        // which the memory system overlaps, where one after the other each waited.
        const D: u64 = 24;
        let root_at = nodes.as_ptr();
        let rec_at = recs.as_ptr();
        let (mut t, mut t_end) = (0 as TxNum, view.tx_outputs(0).end);
        for o in outs.clone() {
            if o + 2 * D < outs.end {
                if let Some(x) = view.output_addr(o + 2 * D) {
                    prefetch(root_at.wrapping_add(x as usize));
                }
            }
            if o + D < outs.end {
                if let Some(x) = view.output_addr(o + D) {
                    let r = nodes[x as usize][0] as usize;
                    if mine(r) {
                        prefetch(rec_at.wrapping_add(r - base));
                    }
                }
            }
            while o >= t_end {
                t += 1;
                t_end = view.tx_outputs(t).end;
            }
            let Some(x) = view.output_addr(o) else {
                continue;
            };
            let r = nodes[x as usize][0] as usize;
            if !mine(r) {
                continue;
            }
            let v = view.output_value(o);
            let g = &mut recs[r - base];
            g.received += v;
            g.txs = g.txs.wrapping_add(1);
            g.first = g.first.min(t);
            g.min_id = g.min_id.min(x);
            let mut last = t + 1;
            if let Some(sp) = view.output_spender(o) {
                if (sp as u64) < end {
                    g.sent += v;
                    g.txs = g.txs.wrapping_add(1);
                    last = sp + 1;
                }
            }
            g.last = g.last.max(last);
        }
        for &(a, k) in extra {
            let r = nodes[a as usize][0] as usize;
            if mine(r) {
                let g = &mut recs[r - base];
                g.txs = g.txs.wrapping_sub(k);
            }
        }
        for (i, g) in recs.iter_mut().enumerate() {
            let x = base + i;
            if nodes[x][0] as usize != x {
                continue;
            }
            g.size = nodes[x][1] + 1;
            if g.first != u32::MAX {
                g.first = heights[g.first as usize];
            }
            if g.last > 0 {
                g.last = heights[g.last as usize - 1];
            }
        }
        if std::env::var_os("COINTRAIL_CLUSTER_PHASES").is_some() {
            eprintln!("bulk: aggregates thread cpu {:.3} s", cpu() - c0);
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| run(lo_half, 0));
        run(hi_half, mid);
    });
}

/// This thread's CPU time so far, in seconds (0 where the kernel does not say).
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e9
}

/// Phase times for `COINTRAIL_CLUSTER_PHASES=1` (on stderr): wall and the process's CPU.
pub(super) struct Clock {
    on: bool,
    at: std::time::Instant,
    cpu: f64,
    laps: Vec<String>,
}

impl Clock {
    pub(super) fn start() -> Clock {
        let on = std::env::var_os("COINTRAIL_CLUSTER_PHASES").is_some();
        Clock {
            on,
            at: std::time::Instant::now(),
            cpu: if on { process_cpu() } else { 0.0 },
            laps: Vec::new(),
        }
    }

    pub(super) fn lap(&mut self, name: &str) {
        if self.on {
            let cpu = process_cpu();
            self.laps.push(format!(
                "{name} {:.3} s ({:.2} s CPU)",
                self.at.elapsed().as_secs_f64(),
                cpu - self.cpu
            ));
            self.at = std::time::Instant::now();
            self.cpu = cpu;
        }
    }

    pub(super) fn report(&self) {
        if self.on {
            eprintln!("clustering phases: {}", self.laps.join(", "));
        }
    }
}

/// CPU seconds the process has used (user and system; 10 ms ticks).
fn process_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
