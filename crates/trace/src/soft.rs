//! Soft hops: links the chain does not prove, each with a rule, a score and its facts.
//!
//! Two rules continue a trace past where coin-level taint stops (issue 19):
//! - `mixer-demix` / `mixer-structured`: a tainted deposit into a custodial mixer is
//!   matched to the withdrawal the mixer paid out later (amount after the fee band, delay
//!   window, output-script habit; the KuCoin-2020 "equal deposits just below a round
//!   number, each after the previous payout" series narrows the window to the next
//!   deposit);
//! - `coinjoin-change`: the change output of a CoinJoin the taint entered that the tainted
//!   inputs' value explains (inputs − k × denomination − fees, the one output that fits:
//!   the subset-sum analysis of JoinMarket and Wasabi change);
//! - `postmix-cashout`: post-mix outputs (pool denomination) of a tainted CoinJoin or of
//!   its remixes, spent alone soon after the mix straight to services, the thief's
//!   cash-out habit; when more such outputs exist than the taint can fill, the soft taint
//!   is split among them and the score says by how much;
//! - `postmix-sweep`: such post-mix coins swept together (every input a post-mix coin or a
//!   coin the trace holds) and the sweep cashed out alone straight to services soon after:
//!   candidates of the same budget as `postmix-cashout`, one hop per sweep;
//! - `remix-flow`: a post-mix coin that was remixed, taken as the thief's when every
//!   routing of the thief's coins through one-for-one CoinJoins (as many equal outputs as
//!   inputs, each participant's count kept), from the tainted coins that entered to the
//!   coins the rules above found leaving, passes through it (`engine/remixflow.rs`); it
//!   joins the thief's entity and carries nothing;
//! - `coinjoin-consolidation` (opt-in): outputs of a CoinJoin the taint entered (or of its
//!   remixes) spent later together, or together with coins the trace already holds, are
//!   taken as the thief's.
//!
//! What a soft hop carries is kept under a label of its own (the case's soft label), so
//! totals, reports and screening never add it to proven (hard) taint.

use serde::Serialize;

/// Settings of the soft rules (all off unless `TraceParams::demix` is set).
#[derive(Clone, Debug, Serialize)]
pub struct DemixParams {
    /// A candidate continues the trace only at or above this score (0..=1).
    pub min_score: f64,
    /// The mixer's fee band, in basis points of the deposit (what it keeps).
    pub fee_min_bp: u32,
    pub fee_max_bp: u32,
    /// Blocks after the deposit within which its withdrawal is looked for.
    pub delay_min: u32,
    pub delay_max: u32,
    /// Follow CoinJoin outputs that are consolidated later (post-mix links).
    pub coinjoin_links: bool,
    /// How many CoinJoin remixes deep post-mix outputs are followed.
    pub remix_depth: u32,
    /// `postmix-cashout`: blocks after its CoinJoin within which a post-mix coin spent
    /// alone, straight to services, counts as a cash-out candidate.
    pub cashout_blocks: u32,
}

impl Default for DemixParams {
    fn default() -> Self {
        DemixParams {
            min_score: 0.8,
            fee_min_bp: 50,
            fee_max_bp: 500,
            delay_min: 1,
            delay_max: 144,
            // Off unless asked for: on playbooks where the thief never sweeps its post-mix
            // coins, every such link found was someone else's (BENCHMARKS.md).
            coinjoin_links: false,
            remix_depth: 2,
            cashout_blocks: 36,
        }
    }
}

impl DemixParams {
    /// `MIN-MAX` in percent (`0.5-5`) into basis points.
    pub fn parse_fee_band(s: &str) -> Result<(u32, u32), String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("fee band '{s}': write MIN-MAX in percent, e.g. 0.5-5"))?;
        let p = |x: &str| -> Result<u32, String> {
            let v: f64 = x
                .trim()
                .parse()
                .map_err(|_| format!("fee band '{s}': '{x}' is not a percentage"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("fee band '{s}': {v} is not between 0 and 100"));
            }
            Ok((v * 100.0).round() as u32)
        };
        let (lo, hi) = (p(a)?, p(b)?);
        if lo > hi {
            return Err(format!("fee band '{s}': the minimum is above the maximum"));
        }
        Ok((lo, hi))
    }

    /// `MIN-MAX` blocks.
    pub fn parse_delay(s: &str) -> Result<(u32, u32), String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("delay '{s}': write MIN-MAX in blocks, e.g. 1-144"))?;
        let p = |x: &str| -> Result<u32, String> {
            x.trim()
                .parse()
                .map_err(|_| format!("delay '{s}': '{x}' is not a number of blocks"))
        };
        let (lo, hi) = (p(a)?, p(b)?);
        if lo > hi {
            return Err(format!("delay '{s}': the minimum is above the maximum"));
        }
        Ok((lo, hi))
    }
}

/// One followed soft link.
#[derive(Clone, Debug, Serialize)]
pub struct SoftHop {
    /// `mixer-demix`, `mixer-structured`, `coinjoin-change`, `postmix-cashout`,
    /// `postmix-sweep`, `coinjoin-consolidation` or `remix-flow` (which carries nothing:
    /// `soft_sats` 0, `landed` empty; it names a remixed coin as the thief's).
    pub rule: String,
    pub score: f64,
    /// Where the taint stopped: the mixer deposit `TXID:VOUT`, or the CoinJoin's txid.
    pub from: String,
    /// The withdrawal or consolidating transaction the trace continues from.
    pub to_txid: String,
    /// Satoshis the link carries on, under the soft label.
    pub soft_sats: u64,
    /// The facts behind the score (amounts in sats, heights, scripts), one per line.
    pub facts: Vec<String>,
    /// The outputs the soft taint was put on (`TXID:VOUT`, sats).
    pub landed: Vec<(String, u64)>,
}

/// An owner without a label taken for a custodial mixer by its pattern
/// (`engine/mixerdetect.rs`); its deposits are demixed like a labelled mixer's.
#[derive(Clone, Debug, Serialize)]
pub struct DetectedMixer {
    pub name: String,
    pub entity: Option<u64>,
    /// Deposits from others the owner took.
    pub deposits: u64,
    /// Of them, paid back out less a fee inside the fee band within the delay window.
    pub matched: u64,
    /// Of them, paid back out with a fee *added* (the mirror band): the control count.
    pub mirror_matched: u64,
    pub facts: Vec<String>,
}

/// A withdrawal that could pay out a deposit, with its score and evidence.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub txid: String,
    pub height: u32,
    pub withdrawn_sats: u64,
    /// What the mixer kept, in basis points of the deposit.
    pub fee_bp: u32,
    pub delay_blocks: u32,
    pub score: f64,
    pub evidence: Vec<String>,
    #[serde(skip)]
    pub tx: u32,
}

/// A tainted deposit into a custodial mixer and its ranked candidate withdrawals.
#[derive(Clone, Debug, Serialize)]
pub struct DemixEntry {
    pub deposit: String,
    pub mixer: String,
    pub deposit_sats: u64,
    pub tainted_sats: u64,
    pub height: u32,
    /// Part of a structured series (equal deposits just below a round number).
    pub structured: bool,
    /// Best first, at most 5.
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the one followed as a soft hop.
    pub followed: Option<usize>,
}

/// Whether `v` sits just below a round amount (1, 2 or 5 × 10^k sats, at least 0.01 BTC):
/// within 1% under it. Returns the round amount.
pub fn just_below_round(v: u64) -> Option<u64> {
    let mut unit = 1_000_000u64;
    while unit <= 100_000_000_000_000 {
        for m in [1u64, 2, 5] {
            let r = m * unit;
            if r > v && (r - v) * 100 <= r {
                return Some(r);
            }
        }
        unit *= 10;
    }
    None
}

/// The score of a candidate from its facts (documented weights; they add up to 1):
/// amount inside the fee band 0.4, the only such withdrawal in its window (or the only
/// one of several whose outputs were cashed out alone, soon, to services: the thief's habit
/// after a mix) 0.25, paid out before the series' next structured deposit 0.2, output
/// scripts of the depositor's type 0.15.
pub fn score(in_band: bool, unique: bool, before_next: bool, script_match: bool) -> f64 {
    if !in_band {
        return 0.0;
    }
    let mut s = 0.4;
    if unique {
        s += 0.25;
    }
    if before_next {
        s += 0.2;
    }
    if script_match {
        s += 0.15;
    }
    (s * 100.0f64).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_amounts() {
        assert_eq!(just_below_round(999_000_000), Some(1_000_000_000));
        assert_eq!(just_below_round(199_800_000), Some(200_000_000));
        assert_eq!(just_below_round(4_990_000_000), Some(5_000_000_000));
        assert_eq!(just_below_round(123_456_789), None);
        assert_eq!(just_below_round(1_000_000_000), None);
        assert_eq!(just_below_round(500_000), None);
    }

    #[test]
    fn fee_band_and_delay_parse() {
        assert_eq!(DemixParams::parse_fee_band("0.5-5"), Ok((50, 500)));
        assert!(DemixParams::parse_fee_band("5-1").is_err());
        assert!(DemixParams::parse_fee_band("x").is_err());
        assert_eq!(DemixParams::parse_delay("2-10"), Ok((2, 10)));
        assert!(DemixParams::parse_delay("10-2").is_err());
    }

    #[test]
    fn scores_add_up() {
        assert_eq!(score(true, true, true, true), 1.0);
        assert_eq!(score(true, true, false, true), 0.8);
        assert_eq!(score(false, true, true, true), 0.0);
        assert_eq!(score(true, false, false, true), 0.55);
    }
}
