//! Runs of value and the exact arithmetic on them: a balance is an ordered list of runs
//! (label, amount); debits cut runs off it by the model's rule; proportional splits use
//! the largest-remainder rule of methods.md §1.1 so that every wei is accounted for.

use std::collections::VecDeque;

use alloy_primitives::U512;
use cointrail_evm::U256;
use serde::{Deserialize, Serialize};

/// Which source a run of value came from; [`CLEAN`] for value of no source.
pub type Label = u32;
pub const CLEAN: Label = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub label: Label,
    pub amount: U256,
}

impl Run {
    pub fn clean(amount: U256) -> Run {
        Run {
            label: CLEAN,
            amount,
        }
    }
    pub fn tainted(label: Label, amount: U256) -> Run {
        Run { label, amount }
    }
    pub fn is_tainted(&self) -> bool {
        self.label != CLEAN
    }
}

pub fn total(runs: &[Run]) -> U256 {
    runs.iter().fold(U256::ZERO, |a, r| a + r.amount)
}

pub fn tainted(runs: &[Run]) -> U256 {
    runs.iter()
        .filter(|r| r.is_tainted())
        .fold(U256::ZERO, |a, r| a + r.amount)
}

/// Append, merging with the last run when the label is the same (keeps queues short).
pub fn push_run(q: &mut VecDeque<Run>, r: Run) {
    if r.amount.is_zero() {
        return;
    }
    if let Some(last) = q.back_mut() {
        if last.label == r.label {
            last.amount += r.amount;
            return;
        }
    }
    q.push_back(r);
}

fn push_vec(v: &mut Vec<Run>, r: Run) {
    if r.amount.is_zero() {
        return;
    }
    if let Some(last) = v.last_mut() {
        if last.label == r.label {
            last.amount += r.amount;
            return;
        }
    }
    v.push(r);
}

/// Cut `amount` off the front of the queue. What the queue lacks comes back as
/// `shortfall` (value the address held from before what we know of it: clean).
pub fn cut_front(q: &mut VecDeque<Run>, mut amount: U256) -> (Vec<Run>, U256) {
    let mut out = Vec::new();
    while !amount.is_zero() {
        let Some(front) = q.front_mut() else { break };
        if front.amount <= amount {
            amount -= front.amount;
            let r = q.pop_front().unwrap();
            push_vec(&mut out, r);
        } else {
            front.amount -= amount;
            push_vec(&mut out, Run::tainted(front.label, amount));
            amount = U256::ZERO;
        }
    }
    (out, amount)
}

/// Cut `amount` off the back (LIFO). The runs come out in queue order (oldest first).
pub fn cut_back(q: &mut VecDeque<Run>, mut amount: U256) -> (Vec<Run>, U256) {
    let mut rev = Vec::new();
    while !amount.is_zero() {
        let Some(back) = q.back_mut() else { break };
        if back.amount <= amount {
            amount -= back.amount;
            rev.push(q.pop_back().unwrap());
        } else {
            back.amount -= amount;
            rev.push(Run::tainted(back.label, amount));
            amount = U256::ZERO;
        }
    }
    let mut out = Vec::new();
    for r in rev.into_iter().rev() {
        push_vec(&mut out, r);
    }
    (out, amount)
}

/// Cut tainted runs first (in queue order), then clean ones from the front (TIFO).
pub fn cut_taint_first(q: &mut VecDeque<Run>, mut amount: U256) -> (Vec<Run>, U256) {
    let mut out = Vec::new();
    let mut i = 0;
    while !amount.is_zero() && i < q.len() {
        if !q[i].is_tainted() {
            i += 1;
            continue;
        }
        if q[i].amount <= amount {
            amount -= q[i].amount;
            let r = q.remove(i).unwrap();
            push_vec(&mut out, r);
        } else {
            q[i].amount -= amount;
            push_vec(&mut out, Run::tainted(q[i].label, amount));
            amount = U256::ZERO;
        }
    }
    if !amount.is_zero() {
        let (clean, short) = cut_front(q, amount);
        for r in clean {
            push_vec(&mut out, r);
        }
        amount = short;
    }
    // Removing runs may leave equal neighbours: merge them again.
    let merged: VecDeque<Run> = q.drain(..).fold(VecDeque::new(), |mut acc, r| {
        push_run(&mut acc, r);
        acc
    });
    *q = merged;
    (out, amount)
}

/// Haircut: the debit takes every label (and clean) in proportion to the balance, split by
/// largest remainder over the components in label order, clean last (ties go to the lower
/// index, so a tie favours counting taint). The queue holds one run per label.
pub fn cut_pro_rata(q: &mut VecDeque<Run>, amount: U256) -> (Vec<Run>, U256) {
    let bal = total(q.make_contiguous());
    let take = amount.min(bal);
    let short = amount - take;
    let mut comps: Vec<Run> = q.drain(..).collect();
    comps.sort_by_key(|r| r.label);
    let weights: Vec<U256> = comps.iter().map(|r| r.amount).collect();
    let shares = largest_remainder(take, &weights);
    let mut out = Vec::new();
    for (c, s) in comps.iter_mut().zip(shares) {
        c.amount -= s;
        push_vec(&mut out, Run::tainted(c.label, s));
    }
    for c in comps {
        push_run(q, c);
    }
    (out, short)
}

/// Add a run to a haircut pool: one run per label, so the pool stays a composition.
pub fn pool_add(q: &mut VecDeque<Run>, r: Run) {
    if r.amount.is_zero() {
        return;
    }
    if let Some(x) = q.iter_mut().find(|x| x.label == r.label) {
        x.amount += r.amount;
    } else {
        q.push_back(r);
    }
}

/// Split `total` over `weights` exactly: floor of each share `total·w/Σw`, then one unit
/// each to the largest remainders (ties to the lower index). Computed in 512 bits, so any
/// pair of 256-bit amounts is exact.
pub fn largest_remainder(total: U256, weights: &[U256]) -> Vec<U256> {
    let sum: U512 = weights.iter().fold(U512::ZERO, |a, w| a + U512::from(*w));
    if sum.is_zero() {
        return vec![U256::ZERO; weights.len()];
    }
    let t = U512::from(total);
    let mut out = Vec::with_capacity(weights.len());
    let mut rem = Vec::with_capacity(weights.len());
    let mut given = U256::ZERO;
    for (i, w) in weights.iter().enumerate() {
        let (q, r) = (t * U512::from(*w)).div_rem(sum);
        let q: U256 = q.to();
        out.push(q);
        given += q;
        rem.push((r, i));
    }
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // The residue is below the number of buckets.
    let residue: usize = (total - given).to();
    for k in 0..residue {
        out[rem[k].1] += U256::from(1u8);
    }
    out
}

/// The runs of `amount_in` re-expressed as `amount_out` of another asset (a swap), each
/// run scaled by `amount_out / amount_in`, exactly, by largest remainder.
pub fn convert(runs: &[Run], amount_out: U256) -> Vec<Run> {
    let weights: Vec<U256> = runs.iter().map(|r| r.amount).collect();
    let shares = largest_remainder(amount_out, &weights);
    let mut out = Vec::new();
    for (r, s) in runs.iter().zip(shares) {
        push_vec(&mut out, Run::tainted(r.label, s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(x: u64) -> U256 {
        U256::from(x)
    }

    #[test]
    fn largest_remainder_matches_e2() {
        // methods.md §6 E2: 2,000 over 3,000 / 2,000 / 4,000 → 667 / 444 / 889.
        assert_eq!(
            largest_remainder(u(2000), &[u(3000), u(2000), u(4000)]),
            vec![u(667), u(444), u(889)]
        );
    }

    #[test]
    fn largest_remainder_is_exact_near_2_256() {
        let big = U256::MAX;
        let s = largest_remainder(big, &[big, big, u(1)]);
        assert_eq!(s.iter().fold(U256::ZERO, |a, x| a + *x), big);
    }

    #[test]
    fn cuts() {
        let mut q: VecDeque<Run> = [Run::clean(u(5)), Run::tainted(0, u(10)), Run::clean(u(3))]
            .into_iter()
            .collect();
        let mut q2 = q.clone();
        let mut q3 = q.clone();
        assert_eq!(
            cut_front(&mut q, u(7)),
            (vec![Run::clean(u(5)), Run::tainted(0, u(2))], U256::ZERO)
        );
        assert_eq!(
            cut_back(&mut q2, u(7)),
            (vec![Run::tainted(0, u(4)), Run::clean(u(3))], U256::ZERO)
        );
        // Taint first: the 10 tainted, then 2 clean from the front; the 5 and 3 clean
        // that are left merge into one 6 run.
        assert_eq!(
            cut_taint_first(&mut q3, u(12)),
            (vec![Run::tainted(0, u(10)), Run::clean(u(2))], U256::ZERO)
        );
        assert_eq!(q3, VecDeque::from(vec![Run::clean(u(6))]));
        let (_, short) = cut_front(&mut q3, u(9));
        assert_eq!(short, u(3));
    }
}
