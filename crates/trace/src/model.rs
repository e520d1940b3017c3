//! Per-transaction taint transfer functions, exact in integer satoshis.
//!
//! A coin's taint is a run list: ordered runs of (label, amount), label 0 meaning clean,
//! each run remembering its offset in its source so FIFO results can be traced back to
//! exact source satoshis. Every model except poison conserves value per label:
//! Σ outputs + fee = Σ inputs, to the satoshi (property-tested).

use serde::{Deserialize, Serialize};

pub type Label = u32;
pub const CLEAN: Label = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub label: Label,
    pub amount: u64,
    /// Offset of the run's first satoshi within its source (ordered models only).
    pub offset: u64,
}

impl Run {
    pub fn clean(amount: u64) -> Run {
        Run {
            label: CLEAN,
            amount,
            offset: 0,
        }
    }
    pub fn tainted(label: Label, amount: u64, offset: u64) -> Run {
        Run {
            label,
            amount,
            offset,
        }
    }
}

/// How the input tape is ordered (§1.2 item 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InRule {
    /// Inputs in order.
    First,
    /// The whole tape reversed.
    Last,
    /// Tainted runs first (stable).
    Taint,
    /// Clean runs first (stable).
    Clean,
    /// Inputs by value, highest first (stable).
    High,
    /// Inputs by value, smallest first (stable).
    Small,
}

/// The order in which outputs take their share of the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutRule {
    First,
    Last,
    High,
    Small,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Model {
    /// Every output of a transaction with tainted inputs is tainted at full value: a
    /// reachability flag, never an amount.
    Poison,
    /// Taint spreads over outputs and fee in proportion to value.
    Haircut,
    /// The In-Out family: FIFO = (First, First), LIFO = (Last, First), TIHO = (Taint, High),
    /// TIFO = (Taint, First), CISO = (Clean, Small).
    Ordered(InRule, OutRule),
}

impl Model {
    pub fn parse(s: &str) -> Result<Model, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "fifo" => Model::Ordered(InRule::First, OutRule::First),
            "lifo" => Model::Ordered(InRule::Last, OutRule::First),
            "tiho" => Model::Ordered(InRule::Taint, OutRule::High),
            "tifo" => Model::Ordered(InRule::Taint, OutRule::First),
            "ciso" => Model::Ordered(InRule::Clean, OutRule::Small),
            "haircut" => Model::Haircut,
            "poison" => Model::Poison,
            other => {
                // Generic xIyO, e.g. "LIHO".
                let b = other.as_bytes();
                if b.len() == 4 && b[1] == b'i' && b[3] == b'o' {
                    let i = match b[0] {
                        b'f' => InRule::First,
                        b'l' => InRule::Last,
                        b't' => InRule::Taint,
                        b'c' => InRule::Clean,
                        b'h' => InRule::High,
                        b's' => InRule::Small,
                        _ => return Err(format!("unknown IN rule in '{s}'")),
                    };
                    let o = match b[2] {
                        b'f' => OutRule::First,
                        b'l' => OutRule::Last,
                        b'h' => OutRule::High,
                        b's' => OutRule::Small,
                        _ => return Err(format!("unknown OUT rule in '{s}'")),
                    };
                    Model::Ordered(i, o)
                } else {
                    return Err(format!("unknown model '{s}': use fifo, lifo, tiho, tifo, haircut, poison or xIyO (e.g. LIHO)"));
                }
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Model::Poison => "poison".into(),
            Model::Haircut => "haircut".into(),
            Model::Ordered(InRule::First, OutRule::First) => "fifo".into(),
            Model::Ordered(InRule::Last, OutRule::First) => "lifo".into(),
            Model::Ordered(InRule::Taint, OutRule::High) => "tiho".into(),
            Model::Ordered(InRule::Taint, OutRule::First) => "tifo".into(),
            Model::Ordered(i, o) => format!("{i:?}-in {o:?}-out").to_lowercase(),
        }
    }

    pub fn conserves(&self) -> bool {
        !matches!(self, Model::Poison)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeePolicy {
    /// Outputs are filled first; what is left of the tape is the fee.
    Last,
    /// Each run pays its share of the fee before matching.
    Proportional,
}

impl FeePolicy {
    pub fn parse(s: &str) -> Result<FeePolicy, String> {
        match s {
            "last" => Ok(FeePolicy::Last),
            "proportional" => Ok(FeePolicy::Proportional),
            _ => Err(format!(
                "unknown fee policy '{s}': use last or proportional"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransferError {
    #[error("outputs ({outputs} sat) exceed inputs ({inputs} sat): malformed transaction")]
    NegativeFee { inputs: u64, outputs: u64 },
    #[error("an input's runs add up to {runs} sat but the input holds {value} sat")]
    RunsMismatch { runs: u64, value: u64 },
}

/// The result for one transaction: a run list per output, and the fee's runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    pub outputs: Vec<Vec<Run>>,
    pub fee: Vec<Run>,
}

/// Largest-remainder split of `total` over `weights` (§1.1): floor each exact share, then
/// one satoshi at a time by descending remainder, ties to the lower index.
pub fn largest_remainder(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut out = Vec::with_capacity(weights.len());
    let mut rem = Vec::with_capacity(weights.len());
    let mut given = 0u64;
    for (i, &w) in weights.iter().enumerate() {
        let exact = total as u128 * w as u128;
        let q = (exact / sum) as u64;
        out.push(q);
        given += q;
        rem.push((exact % sum, i));
    }
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for k in 0..(total - given) as usize {
        out[rem[k].1] += 1;
    }
    out
}

fn coalesce(runs: &mut Vec<Run>) {
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for r in runs.drain(..) {
        if r.amount == 0 {
            continue;
        }
        if let Some(last) = out.last_mut() {
            if last.label == r.label
                && (last.label == CLEAN || last.offset + last.amount == r.offset)
            {
                last.amount += r.amount;
                continue;
            }
        }
        out.push(r);
    }
    *runs = out;
}

/// Apply a model to one transaction. `inputs[i]` is the run list of input i (it must add
/// up to the input's value); `outputs[j]` the output values.
pub fn transfer(
    model: Model,
    fee_policy: FeePolicy,
    inputs: &[Vec<Run>],
    outputs: &[u64],
) -> Result<Transfer, TransferError> {
    let in_vals: Vec<u64> = inputs
        .iter()
        .map(|r| r.iter().map(|x| x.amount).sum())
        .collect();
    let v: u64 = in_vals.iter().sum();
    let w: u64 = outputs.iter().sum();
    if w > v {
        return Err(TransferError::NegativeFee {
            inputs: v,
            outputs: w,
        });
    }
    let fee = v - w;
    match model {
        Model::Poison => {
            let first = inputs
                .iter()
                .flatten()
                .filter(|r| r.label != CLEAN && r.amount > 0)
                .map(|r| r.label)
                .min();
            let outs = outputs
                .iter()
                .map(|&x| match first {
                    Some(l) => vec![Run::tainted(l, x, 0)],
                    None => vec![Run::clean(x)],
                })
                .collect();
            Ok(Transfer {
                outputs: outs,
                fee: vec![],
            })
        }
        Model::Haircut => {
            // Per label: T_l over buckets (outputs..., fee) in proportion to value.
            let mut per_label: std::collections::BTreeMap<Label, u64> = Default::default();
            for r in inputs.iter().flatten() {
                if r.label != CLEAN {
                    *per_label.entry(r.label).or_default() += r.amount;
                }
            }
            let mut weights: Vec<u64> = outputs.to_vec();
            weights.push(fee);
            let mut outs: Vec<Vec<Run>> = vec![Vec::new(); outputs.len()];
            let mut fee_runs = Vec::new();
            // Capacity left in each bucket: several labels rounded on their own could
            // overfill one by a satoshi, so any excess moves to the next bucket with room.
            let mut cap = weights.clone();
            for (&l, &t) in &per_label {
                let mut shares = largest_remainder(t, &weights);
                let mut excess = 0u64;
                for (j, s) in shares.iter_mut().enumerate() {
                    if *s > cap[j] {
                        excess += *s - cap[j];
                        *s = cap[j];
                    }
                }
                for (j, s) in shares.iter_mut().enumerate() {
                    let room = (cap[j] - *s).min(excess);
                    *s += room;
                    excess -= room;
                }
                for (j, s) in shares.iter().enumerate() {
                    if *s == 0 {
                        continue;
                    }
                    cap[j] -= s;
                    if j < outputs.len() {
                        outs[j].push(Run::tainted(l, *s, 0));
                    } else {
                        fee_runs.push(Run::tainted(l, *s, 0));
                    }
                }
            }
            for (j, o) in outs.iter_mut().enumerate() {
                if cap[j] > 0 {
                    o.push(Run::clean(cap[j]));
                }
            }
            if cap[outputs.len()] > 0 {
                fee_runs.push(Run::clean(cap[outputs.len()]));
            }
            Ok(Transfer {
                outputs: outs,
                fee: fee_runs,
            })
        }
        Model::Ordered(in_rule, out_rule) => {
            // Build the tape.
            let mut order: Vec<usize> = (0..inputs.len()).collect();
            match in_rule {
                InRule::High => order.sort_by(|&a, &b| in_vals[b].cmp(&in_vals[a])),
                InRule::Small => order.sort_by(|&a, &b| in_vals[a].cmp(&in_vals[b])),
                _ => {}
            }
            let mut tape: Vec<Run> = order
                .iter()
                .flat_map(|&i| inputs[i].iter().copied())
                .filter(|r| r.amount > 0)
                .collect();
            match in_rule {
                InRule::Last => tape.reverse(),
                InRule::Taint => {
                    let (t, c): (Vec<Run>, Vec<Run>) =
                        tape.into_iter().partition(|r| r.label != CLEAN);
                    tape = t.into_iter().chain(c).collect();
                }
                InRule::Clean => {
                    let (c, t): (Vec<Run>, Vec<Run>) =
                        tape.into_iter().partition(|r| r.label == CLEAN);
                    tape = c.into_iter().chain(t).collect();
                }
                _ => {}
            }
            let mut fee_runs = Vec::new();
            if fee_policy == FeePolicy::Proportional && fee > 0 {
                // Each run pays a·f/V, largest remainder over runs.
                let amounts: Vec<u64> = tape.iter().map(|r| r.amount).collect();
                let cuts = largest_remainder(fee, &amounts);
                for (r, c) in tape.iter_mut().zip(cuts) {
                    if c > 0 {
                        // The fee takes the run's last satoshis, keeping its offset.
                        fee_runs.push(Run {
                            label: r.label,
                            amount: c,
                            offset: r.offset + r.amount - c,
                        });
                        r.amount -= c;
                    }
                }
            }
            let mut out_order: Vec<usize> = (0..outputs.len()).collect();
            match out_rule {
                OutRule::First => {}
                OutRule::Last => out_order.reverse(),
                OutRule::High => out_order.sort_by(|&a, &b| outputs[b].cmp(&outputs[a])),
                OutRule::Small => out_order.sort_by(|&a, &b| outputs[a].cmp(&outputs[b])),
            }
            let mut outs: Vec<Vec<Run>> = vec![Vec::new(); outputs.len()];
            let mut pos = 0usize;
            let mut head: Option<Run> = None;
            let next = |pos: &mut usize, head: &mut Option<Run>| -> Option<Run> {
                if let Some(h) = head.take() {
                    return Some(h);
                }
                while *pos < tape.len() {
                    let r = tape[*pos];
                    *pos += 1;
                    if r.amount > 0 {
                        return Some(r);
                    }
                }
                None
            };
            for &j in &out_order {
                let mut need = outputs[j];
                while need > 0 {
                    let Some(r) = next(&mut pos, &mut head) else {
                        break;
                    };
                    if r.amount <= need {
                        outs[j].push(r);
                        need -= r.amount;
                    } else {
                        outs[j].push(Run { amount: need, ..r });
                        head = Some(Run {
                            label: r.label,
                            amount: r.amount - need,
                            offset: r.offset + need,
                        });
                        need = 0;
                    }
                }
            }
            // What is left of the tape is the fee (Last), or nothing (Proportional).
            while let Some(r) = next(&mut pos, &mut head) {
                fee_runs.push(r);
            }
            for o in &mut outs {
                coalesce(o);
            }
            coalesce(&mut fee_runs);
            Ok(Transfer {
                outputs: outs,
                fee: fee_runs,
            })
        }
    }
}

/// Tainted satoshis of a run list (all labels, or one).
pub fn tainted(runs: &[Run], label: Option<Label>) -> u64 {
    runs.iter()
        .filter(|r| r.label != CLEAN && label.is_none_or(|l| l == r.label))
        .map(|r| r.amount)
        .sum()
}
