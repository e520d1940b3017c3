//! CoinJoin detectors, after Dumplings' scanner with the corrections of methods.md §3.1:
//! Whirlpool (and its Tx0), Wasabi 1, Wasabi 2 (WabiSabi), JoinMarket by the design rule
//! (a taker may sweep without change), and generic equal-output CoinJoins.

use cointrail_chain::view::{ChainView, OutNum, Prevout, TxNum};
use cointrail_chain::ScriptType;
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CoinJoin {
    pub protocol: &'static str,
    pub anonymity_set: u32,
    pub equal_value: u64,
    pub equal_outputs: Vec<OutNum>,
    /// Inputs that spend outputs from before the indexed range (a chain that starts above
    /// genesis): their values and scripts are unknown, so the shape was judged on the
    /// rest. Zero when every input was seen.
    pub inputs_unknown: u32,
}

/// Activation heights of each protocol; simulated chains start at 0 and use `any_height`.
#[derive(Clone, Copy, Debug)]
pub struct NetParams {
    pub whirlpool_from: u32,
    pub wasabi1_from: u32,
    pub joinmarket_from: u32,
}

impl NetParams {
    pub fn mainnet() -> NetParams {
        NetParams {
            whirlpool_from: 570_000,
            wasabi1_from: 530_500,
            joinmarket_from: 392_300,
        }
    }
    pub fn any_height() -> NetParams {
        NetParams {
            whirlpool_from: 0,
            wasabi1_from: 0,
            joinmarket_from: 0,
        }
    }
}

const BTC: u64 = 100_000_000;
const WHIRLPOOL_POOLS: [u64; 4] = [100_000, 1_000_000, 5_000_000, 50_000_000];

/// The 78 Wasabi 2 standard denominations (5,000 sat … 1,343.75 BTC): powers of 2 and 3,
/// 2·3^k, and 1-2-5·10^k.
pub fn wasabi2_denominations() -> Vec<u64> {
    let (lo, hi) = (5_000u64, 134_375_000_000u64);
    let mut v = Vec::new();
    let mut p = 1u64;
    while p <= hi {
        if p >= lo {
            v.push(p);
        }
        p *= 2;
    }
    let mut p = 1u64;
    while p <= hi {
        if p >= lo {
            v.push(p);
        }
        if 2 * p >= lo && 2 * p <= hi {
            v.push(2 * p);
        }
        p *= 3;
    }
    let mut p = 1u64;
    while p <= hi {
        for m in [1, 2, 5] {
            if m * p >= lo && m * p <= hi {
                v.push(m * p);
            }
        }
        p *= 10;
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[derive(Default)]
struct Shape {
    /// All inputs, known or not.
    n_in: usize,
    /// Inputs from before the indexed range (values, types and addresses unknown).
    unknown: usize,
    in_vals: Vec<u64>,
    in_types: Vec<ScriptType>,
    in_addrs: Vec<Option<u32>>,
    outs: Vec<OutNum>,
    out_vals: Vec<u64>,
    out_types: Vec<ScriptType>,
    out_addrs: Vec<Option<u32>>,
    height: u32,
    /// Scratch for counting values and addresses.
    sorted: Vec<u64>,
}

thread_local! {
    // One shape per thread, refilled for each candidate: a clustering pass judges hundreds
    // of thousands, and allocating nine vectors for each showed in its profile.
    static SHAPE: std::cell::RefCell<Shape> = std::cell::RefCell::default();
}

/// Fill `s` with `tx`'s inputs and outputs; false for a coinbase.
fn shape<V: ChainView + ?Sized>(view: &V, tx: TxNum, s: &mut Shape) -> bool {
    s.n_in = 0;
    s.unknown = 0;
    s.in_vals.clear();
    s.in_types.clear();
    s.in_addrs.clear();
    s.outs.clear();
    s.out_vals.clear();
    s.out_types.clear();
    s.out_addrs.clear();
    s.height = view.tx_height(tx);
    for i in view.tx_inputs(tx) {
        s.n_in += 1;
        match view.input_prevout(i) {
            Prevout::Output(o) => {
                s.in_vals.push(view.output_value(o));
                s.in_types.push(view.output_script_type(o));
                s.in_addrs.push(view.output_addr(o));
            }
            // Inputs from before the index: judged on what is known (see `inputs_unknown`).
            Prevout::External { .. } => s.unknown += 1,
            // Coinbases are never CoinJoins.
            Prevout::Coinbase => return false,
        }
    }
    for o in view.tx_outputs(tx) {
        s.outs.push(o);
        s.out_vals.push(view.output_value(o));
        s.out_types.push(view.output_script_type(o));
        s.out_addrs.push(view.output_addr(o));
    }
    true
}

/// The runs of equal values among `vals`, in ascending order, sorted in the scratch
/// `sorted` (reused: detection allocates nothing per transaction).
fn equal_runs<'a>(
    sorted: &'a mut Vec<u64>,
    vals: impl IntoIterator<Item = u64>,
) -> impl Iterator<Item = &'a [u64]> {
    sorted.clear();
    sorted.extend(vals);
    sorted.sort_unstable();
    sorted.chunk_by(|a, b| a == b)
}

/// The most frequent of `vals` (ties: the larger value) and its count.
fn largest_equal_group(vals: &[u64], sorted: &mut Vec<u64>) -> (u64, usize) {
    equal_runs(sorted, vals.iter().copied()).fold((0, 0), |best, run| {
        if run.len() >= best.1 {
            (run[0], run.len())
        } else {
            best
        }
    })
}

fn distinct(xs: &[Option<u32>], sorted: &mut Vec<u64>) -> usize {
    equal_runs(sorted, xs.iter().flatten().map(|&a| a as u64)).count()
}

fn equal_outs(s: &Shape, value: u64) -> Vec<OutNum> {
    s.outs
        .iter()
        .zip(&s.out_vals)
        .filter(|(_, v)| **v == value)
        .map(|(o, _)| *o)
        .collect()
}

/// Whether two of the outputs carry the same value (assumed so for more than 32).
fn has_equal_values<V: ChainView + ?Sized>(view: &V, or: std::ops::Range<OutNum>) -> bool {
    let mut vals = [0u64; 32];
    let n = (or.end - or.start) as usize;
    if n > vals.len() {
        return true;
    }
    for (slot, o) in vals.iter_mut().zip(or) {
        *slot = view.output_value(o);
    }
    let vals = &mut vals[..n];
    vals.sort_unstable();
    vals.windows(2).any(|w| w[0] == w[1])
}

/// Generic over the view so that clustering's pass over the index inlines its column reads.
pub fn detect_coinjoin<V: ChainView + ?Sized>(
    view: &V,
    tx: TxNum,
    p: &NetParams,
) -> Option<CoinJoin> {
    // Every detector below needs at least 3 outputs (Whirlpool 5, JoinMarket 2e−1 with
    // e ≥ 2, generic 2e, Wasabi ≥ 10 equal or 80% denominations of many) and 2 inputs:
    // most transactions are decided here, before their inputs are read.
    let (ir, or) = (view.tx_inputs(tx), view.tx_outputs(tx));
    if or.end - or.start < 3 || ir.end - ir.start < 2 {
        return None;
    }
    // All but Wasabi 2 (50 inputs or more) need two outputs of one value; most
    // transactions have none, and this asks only their output values, read in order.
    if ir.end - ir.start < 50 && !has_equal_values(view, or.clone()) {
        return None;
    }
    SHAPE.with_borrow_mut(|s| {
        if !outputs_allow(view, (ir.end - ir.start) as usize, or, &mut s.sorted) {
            return None;
        }
        if shape(view, tx, s) {
            judge(s, p)
        } else {
            None
        }
    })
}

/// Whether the outputs alone (their count and values, with the inputs' count) meet what
/// some detector of [`judge`] needs before it looks further: the inputs' values, script
/// types and addresses are read only then. A necessary condition of each detector, so
/// what is refused here `judge` would refuse too.
fn outputs_allow<V: ChainView + ?Sized>(
    view: &V,
    n_in: usize,
    or: std::ops::Range<OutNum>,
    sorted: &mut Vec<u64>,
) -> bool {
    let n_out = (or.end - or.start) as usize;
    // Wasabi 2: judged on the inputs' script types and the denominations.
    if n_in >= 50 {
        return true;
    }
    sorted.clear();
    sorted.extend(or.map(|o| view.output_value(o)));
    sorted.sort_unstable();
    // Whirlpool: as many inputs as outputs, 5 to 10, all outputs at one pool size.
    if (5..=10).contains(&n_in)
        && n_in == n_out
        && sorted.first() == sorted.last()
        && WHIRLPOOL_POOLS.contains(&sorted[0])
    {
        return true;
    }
    // The largest group of equal output values (ties: the larger value), as `judge` takes it.
    let (ev, e) = sorted.chunk_by(|a, b| a == b).fold((0, 0), |best, run| {
        if run.len() >= best.1 {
            (run[0], run.len())
        } else {
            best
        }
    });
    let wasabi1 =
        e >= 10 && (ev as i64 - (BTC / 10) as i64).unsigned_abs() <= BTC / 50 && n_in >= e;
    let c = n_out - e;
    let joinmarket = (2..=30).contains(&e) && ev >= 100_000 && (c == e || c + 1 == e) && n_in >= e;
    let generic = e >= 2 && e * 2 == n_out;
    wasabi1 || joinmarket || generic
}

/// Which detector, if any, accepts the shape.
fn judge(s: &mut Shape, p: &NetParams) -> Option<CoinJoin> {
    let (n_in, n_out) = (s.n_in, s.out_vals.len());
    if n_in < 2 || n_out < 2 {
        return None;
    }
    let unknown = s.unknown;
    let found = |protocol, anonymity_set: usize, equal_value, equal_outputs| {
        Some(CoinJoin {
            protocol,
            anonymity_set: anonymity_set as u32,
            equal_value,
            equal_outputs,
            inputs_unknown: unknown as u32,
        })
    };
    // Whirlpool: 5..=10 segwit inputs and as many outputs, all outputs at one pool size,
    // at least one input exactly the pool, the others within pool + 0.0011 BTC.
    if s.height >= p.whirlpool_from
        && (5..=10).contains(&n_in)
        && n_in == n_out
        && s.in_types.iter().chain(&s.out_types).all(|t| t.is_segwit())
    {
        let v = s.out_vals[0];
        if WHIRLPOOL_POOLS.contains(&v)
            && s.out_vals.iter().all(|&x| x == v)
            && (unknown > 0 || s.in_vals.contains(&v))
            && s.in_vals.iter().all(|&x| x >= v && x <= v + 110_000)
        {
            return found("whirlpool", n_out, v, s.outs.clone());
        }
    }
    let (ev, e) = largest_equal_group(&s.out_vals, &mut s.sorted);
    // Wasabi 2: P2WPKH/P2TR inputs, at least 50, more than 80% of outputs standard denominations.
    if n_in >= 50
        && s.in_types
            .iter()
            .all(|t| matches!(t, ScriptType::P2wpkh | ScriptType::P2tr))
    {
        let denoms = wasabi2_denominations();
        let std_outs = s
            .out_vals
            .iter()
            .filter(|v| denoms.binary_search(v).is_ok())
            .count();
        if std_outs * 5 > n_out * 4 {
            return found("wasabi2", e, ev, equal_outs(s, ev));
        }
    }
    // Wasabi 1 (after 610,000 on mainnet): native segwit, ≥10 equal outputs near 0.1 BTC,
    // n_in ≥ that count, ≥2 outputs with unique values.
    if s.height >= p.wasabi1_from
        && e >= 10
        && (ev as i64 - (BTC / 10) as i64).unsigned_abs() <= BTC / 50
        && n_in >= e
        && s.in_types.iter().chain(&s.out_types).all(|t| t.is_segwit())
    {
        let unique = equal_runs(&mut s.sorted, s.out_vals.iter().copied())
            .filter(|r| r.len() == 1)
            .count();
        if unique >= 2 {
            return found("wasabi1", e, ev, equal_outs(s, ev));
        }
    }
    // JoinMarket, design rule: 2..=30 equal outputs ≥ 0.001 BTC, change c ∈ {e, e−1},
    // n_in ≥ n_out... relaxed to the design (makers have change, the taker may sweep), at
    // most one output of a different script type.
    if s.height >= p.joinmarket_from && (2..=30).contains(&e) && ev >= 100_000 {
        let c = n_out - e;
        let mut types = [0usize; 256];
        for &t in &s.out_types {
            types[t as usize] += 1;
        }
        let main = types.iter().max().copied().unwrap_or(0);
        // Unknown inputs count as distinct owners: nothing says otherwise.
        if (c == e || c + 1 == e)
            && n_in >= e
            && n_out - main <= 1
            && distinct(&s.in_addrs, &mut s.sorted) + unknown >= e
        {
            return found("joinmarket", e, ev, equal_outs(s, ev));
        }
    }
    // Generic: one equal group with e = n_out − e, e distinct output and input scripts, and
    // no input larger than the common value plus the largest other output (−0.0001 BTC).
    if e >= 2
        && e * 2 == n_out
        && distinct(&s.out_addrs, &mut s.sorted) >= e
        && distinct(&s.in_addrs, &mut s.sorted) + unknown >= e
    {
        let groups = equal_runs(&mut s.sorted, s.out_vals.iter().copied())
            .filter(|r| r.len() >= 2)
            .count();
        let max_other = s
            .out_vals
            .iter()
            .filter(|&&v| v != ev)
            .max()
            .copied()
            .unwrap_or(0);
        let max_in = s.in_vals.iter().max().copied().unwrap_or(0);
        if groups == 1 && max_in + 10_000 <= ev + max_other {
            return found("generic", e, ev, equal_outs(s, ev));
        }
    }
    None
}

/// Whirlpool Tx0: a premix transaction that creates several outputs of exactly one pool
/// size plus the premix fee (pool + up to 0.0011 BTC), a coordinator fee and change.
pub fn is_whirlpool_tx0(view: &dyn ChainView, tx: TxNum) -> bool {
    let outs: Vec<u64> = view.tx_outputs(tx).map(|o| view.output_value(o)).collect();
    WHIRLPOOL_POOLS.iter().any(|&p| {
        let premix = outs.iter().filter(|&&v| v > p && v <= p + 110_000).count();
        premix >= 2
            && outs
                .iter()
                .filter(|&&v| v > p && v <= p + 110_000)
                .collect::<std::collections::HashSet<_>>()
                .len()
                == 1
    })
}

/// What a transaction looks like, for `cointrail tx` and for tracing decisions.
pub fn classify_tx(view: &dyn ChainView, tx: TxNum, p: &NetParams) -> Vec<String> {
    let mut f = Vec::new();
    if view.is_coinbase(tx) {
        return vec!["coinbase".into()];
    }
    if let Some(cj) = detect_coinjoin(view, tx, p) {
        f.push(format!("coinjoin:{}", cj.protocol));
    } else if is_whirlpool_tx0(view, tx) {
        f.push("whirlpool_tx0".into());
    }
    let ins = view.tx_inputs(tx);
    let outs: Vec<OutNum> = view.tx_outputs(tx).collect();
    let in_addrs: Vec<Option<u32>> = ins
        .clone()
        .map(|i| match view.input_prevout(i) {
            Prevout::Output(o) => view.output_addr(o),
            _ => None,
        })
        .collect();
    if ins.end - ins.start >= 3 && outs.len() == 1 {
        f.push("consolidation".into());
    }
    if outs.len() >= 10 {
        f.push("batch_payout".into());
    }
    if outs.iter().any(|&o| {
        view.output_addr(o)
            .is_some_and(|a| in_addrs.contains(&Some(a)))
    }) {
        f.push("self_change".into());
    }
    if outs.len() == 2 && ins.end - ins.start >= 2 {
        // UIH2: the largest output could have been paid without the smallest input.
        let vals: Vec<u64> = ins.clone().filter_map(|i| view.input_value(i)).collect();
        if vals.len() as u64 == ins.end - ins.start {
            let (min_in, sum_in) = (
                vals.iter().min().copied().unwrap_or(0),
                vals.iter().sum::<u64>(),
            );
            let max_out = outs
                .iter()
                .map(|&o| view.output_value(o))
                .max()
                .unwrap_or(0);
            if sum_in - min_in >= max_out && f.iter().all(|x| !x.starts_with("coinjoin")) {
                f.push("payjoin_suspect".into());
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outputs-only check refuses nothing a detector accepts: on a simulated economy
    /// (CoinJoins of every kind among ordinary payments), detection with it equals
    /// `judge` on every transaction's whole shape, and it does refuse some candidates.
    #[test]
    fn the_outputs_check_refuses_only_what_judge_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cointrail_sim::SimConfig::demo();
        cfg.txs = 12_000;
        cfg.heists.clear();
        let sim = dir.path().join("sim");
        cointrail_sim::simulate(&cfg, &sim, &mut |_, _| {}).unwrap();
        let mut idx = cointrail_index::Index::open_writer(&dir.path().join("index")).unwrap();
        cointrail_index::ingest(
            &mut idx,
            cointrail_index::Source::BlocksDir(sim.join("blocks")),
            &Default::default(),
        )
        .unwrap();
        let p = NetParams::any_height();
        let (mut found, mut refused) = (0, 0);
        for t in 0..idx.tx_count() as TxNum {
            let whole = {
                let mut s = Shape::default();
                if shape(&idx, t, &mut s) {
                    judge(&mut s, &p)
                } else {
                    None
                }
            };
            // The checks before it, which this test does not judge.
            let (ir, or) = (idx.tx_inputs(t), idx.tx_outputs(t));
            let (n_in, n_out) = (ir.end - ir.start, or.end - or.start);
            let before =
                n_out >= 3 && n_in >= 2 && (n_in >= 50 || has_equal_values(&idx, or.clone()));
            if before && !outputs_allow(&idx, n_in as usize, or, &mut Vec::new()) {
                refused += 1;
                assert_eq!(whole, None, "transaction {t}");
            }
            let fast = detect_coinjoin(&idx, t, &p);
            assert_eq!(fast, if before { whole } else { None }, "transaction {t}");
            found += fast.is_some() as u32;
        }
        assert!(found > 10, "{found} CoinJoins");
        assert!(refused > 10, "{refused} refused on the outputs alone");
    }
}
