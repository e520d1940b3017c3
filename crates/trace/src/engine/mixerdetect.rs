//! Unlabelled custodial mixers, told by their pattern (issue 19): an owner (a cluster, or
//! an address without a clustering) that takes many deposits from others and, after a
//! delay inside the demixing window, pays most of them back out less a fee inside the fee
//! band. An exchange or a merchant also takes many deposits and pays many withdrawals, but
//! its withdrawals are not its deposits less a fee: the same count made on the mirror band
//! (deposits *plus* the fee) is as high there as on the fee band, and the test asks the fee
//! band to beat it clearly. Used by soft hops only, where no label names the mixer.

use super::Tracer;
use crate::soft::DetectedMixer;
use cointrail_chain::view::{OutNum, Prevout, TxNum};

/// At least this many deposits from others before the pattern is judged.
pub const MIN_DEPOSITS: usize = 20;
/// Share of deposits with a payout in the fee band needed to call it a mixer.
pub const MIN_MATCHED: f64 = 0.5;
/// Owners with more outputs than this are not judged (an exchange's wallet, by size).
pub const MAX_OUTPUTS: usize = 50_000;

impl Tracer<'_> {
    /// The owner of `o` as a detected mixer (cached per owner): the stop it becomes.
    pub(super) fn detected_mixer(&mut self, o: OutNum) -> Option<super::Stop> {
        let dp = self.p.demix.clone()?;
        let key = self.ekey(o)?;
        if let Some(x) = self.soft.detected_cache.get(&key) {
            return x.clone();
        }
        let found = self.judge_mixer(o, key, &dp);
        let stop = found.map(|d| {
            let s = super::Stop {
                entity: self.oracle.entity_of(o),
                category: "mixer".into(),
                name: d.name.clone(),
            };
            self.soft.detected.push(d);
            s
        });
        self.soft.detected_cache.insert(key, stop.clone());
        stop
    }

    fn judge_mixer(
        &self,
        o: OutNum,
        key: u64,
        dp: &crate::soft::DemixParams,
    ) -> Option<DetectedMixer> {
        let view = self.view;
        let mut outs = self.oracle.entity_outputs(o);
        if outs.is_empty() {
            outs.push(o);
        }
        if outs.len() > MAX_OUTPUTS {
            return None;
        }
        let mine = |x: OutNum| self.ekey(x) == Some(key);
        // Deposits: outputs paid by a transaction with no input of the owner.
        let mut deposits: Vec<(u32, u64)> = Vec::new();
        let mut spenders: Vec<TxNum> = Vec::new();
        for &x in &outs {
            let t = view.output_tx(x);
            let from_self = view.tx_inputs(t).any(|i| match view.input_prevout(i) {
                Prevout::Output(p) => mine(p),
                _ => false,
            });
            if !from_self {
                deposits.push((view.tx_height(t), view.output_value(x)));
            }
            if let Some(s) = view.output_spender(x) {
                spenders.push(s);
            }
        }
        if deposits.len() < MIN_DEPOSITS {
            return None;
        }
        spenders.sort_unstable();
        spenders.dedup();
        // Payouts: what each spend paid to others (its outputs not of the owner), by height.
        let mut payouts: Vec<(u32, u64)> = spenders
            .iter()
            .map(|&s| {
                let paid: u64 = view
                    .tx_outputs(s)
                    .filter(|&x| !mine(x))
                    .map(|x| view.output_value(x))
                    .sum();
                (view.tx_height(s), paid)
            })
            .filter(|p| p.1 > 0)
            .collect();
        payouts.sort_unstable();
        let count = |lo_bp: i64, hi_bp: i64| -> usize {
            deposits
                .iter()
                .filter(|&&(h, v)| {
                    let (a, b) = (
                        h.saturating_add(dp.delay_min),
                        h.saturating_add(dp.delay_max),
                    );
                    let lo = (v as i128 * (10_000 - hi_bp) as i128 / 10_000) as u64;
                    let hi = (v as i128 * (10_000 - lo_bp) as i128 / 10_000) as u64;
                    let start = payouts.partition_point(|p| p.0 < a);
                    payouts[start..]
                        .iter()
                        .take_while(|p| p.0 <= b)
                        .any(|p| p.1 >= lo && p.1 <= hi)
                })
                .count()
        };
        let (fmin, fmax) = (dp.fee_min_bp as i64, dp.fee_max_bp as i64);
        let band = count(fmin, fmax);
        // The mirror band: payouts above the deposit by as much.
        let mirror = count(-fmax, -fmin);
        let n = deposits.len();
        let share = band as f64 / n as f64;
        if share < MIN_MATCHED || band < 3 * mirror.max(1) {
            return None;
        }
        let name = format!(
            "unlabelled mixer ({})",
            self.oracle
                .address(o)
                .unwrap_or_else(|| format!("owner {key}"))
        );
        Some(DetectedMixer {
            name,
            entity: self.oracle.entity_of(o),
            deposits: n as u64,
            matched: band as u64,
            mirror_matched: mirror as u64,
            facts: vec![
                format!("{n} deposits from others to one owner ({} outputs)", outs.len()),
                format!(
                    "{band} of them ({:.0}%) paid back out {}-{} blocks later less {}.{:02}-{}.{:02}% (the fee band)",
                    share * 100.0,
                    dp.delay_min,
                    dp.delay_max,
                    fmin / 100,
                    fmin % 100,
                    fmax / 100,
                    fmax % 100
                ),
                format!(
                    "{mirror} paid back out with as much added instead (the mirror band an exchange's unrelated withdrawals fill as often)"
                ),
            ],
        })
    }

    /// Whether `o` belongs to the detected mixer named `name`.
    pub(super) fn at_detected(&self, o: OutNum, name: &str) -> bool {
        self.ekey(o).is_some_and(|k| {
            self.soft
                .detected_cache
                .get(&k)
                .is_some_and(|s| s.as_ref().is_some_and(|s| s.name == name))
        })
    }
}
