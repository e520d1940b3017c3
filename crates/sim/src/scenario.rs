//! The heist's laundering playbook (issue 19): how the thief splits the fanned-out coins
//! between peel chains, the custodial mixer and CoinJoins, the mixer's fee band and delay,
//! structured deposits, OTC use, dormancy, and whether post-mix coins are consolidated.
//! `Scenario::default()` is the simulator's behaviour before scenarios existed, draw for
//! draw, so a run without `--scenario` writes the same chain byte for byte.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// Shares (percent) of the fanned-out coins not left dormant: peel chains, then the
    /// custodial mixer, then Whirlpool; the rest goes to JoinMarket.
    pub peel_pct: u8,
    pub mixer_pct: u8,
    pub whirlpool_pct: u8,
    /// What the mixer keeps, in basis points of a deposit (drawn uniformly in the band).
    pub mixer_fee_bp: [u32; 2],
    /// Blocks from a deposit to its payout: uniform in `[min, max)`.
    pub mixer_delay_blocks: [u32; 2],
    /// Deposits of equal amounts just below a round number, each after the previous payout
    /// (KuCoin 2020); otherwise each deposit is a coin's own size.
    pub structured_deposits: bool,
    /// One cash-out in this many goes to the OTC broker instead of an exchange.
    pub otc_one_in: u32,
    /// Override the heists' dormant share (percent) and dormancy (blocks).
    pub dormant_pct: Option<u8>,
    pub dormant_blocks: Option<u32>,
    /// The thief's post-mix coins (Whirlpool, JoinMarket) are spent together, this many at
    /// a time, before they are cashed out (0: each is cashed out alone).
    pub consolidate_postmix: u32,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            peel_pct: 45,
            mixer_pct: 25,
            whirlpool_pct: 15,
            mixer_fee_bp: [300, 300],
            mixer_delay_blocks: [2, 6],
            structured_deposits: true,
            otc_one_in: 5,
            dormant_pct: None,
            dormant_blocks: None,
            consolidate_postmix: 0,
        }
    }
}

impl Scenario {
    pub fn is_default(&self) -> bool {
        *self == Scenario::default()
    }

    /// Read a scenario file; errors name the file and what is wrong.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Scenario, String> {
        let s: Scenario =
            serde_saphyr::from_str(text).map_err(|e| format!("scenario {origin}: {e}"))?;
        s.check().map_err(|e| format!("scenario {origin}: {e}"))?;
        Ok(s)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.peel_pct as u32 + self.mixer_pct as u32 + self.whirlpool_pct as u32 > 100 {
            return Err("peel_pct + mixer_pct + whirlpool_pct is above 100".into());
        }
        if self.mixer_fee_bp[0] > self.mixer_fee_bp[1] || self.mixer_fee_bp[1] >= 10_000 {
            return Err("mixer_fee_bp: [min, max] with min <= max < 10000".into());
        }
        if self.mixer_delay_blocks[0] == 0
            || self.mixer_delay_blocks[0] >= self.mixer_delay_blocks[1]
        {
            return Err("mixer_delay_blocks: [min, max) with 1 <= min < max".into());
        }
        if self.otc_one_in == 0 {
            return Err("otc_one_in: at least 1".into());
        }
        if self.dormant_pct.is_some_and(|p| p > 100) {
            return Err("dormant_pct: at most 100".into());
        }
        if self.dormant_blocks == Some(0) {
            return Err("dormant_blocks: at least 1".into());
        }
        if self.consolidate_postmix == 1 {
            return Err("consolidate_postmix: 0 (never) or at least 2".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_read_and_errors_name_the_field() {
        for f in [
            "default",
            "kucoin-structured",
            "mixer-heavy",
            "coinjoin-consolidate",
            "holdout",
        ] {
            let path = format!("{}/../../scenarios/{f}.yaml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let s = Scenario::from_yaml(&text, &path).unwrap();
            assert_eq!(s.is_default(), f == "default", "{f}");
        }
        let e = Scenario::from_yaml("peel_pct: 90\nmixer_pct: 20\n", "x.yaml").unwrap_err();
        assert!(e.contains("x.yaml") && e.contains("peel_pct"), "{e}");
        let e = Scenario::from_yaml("peel_pc: 9\n", "x.yaml").unwrap_err();
        assert!(e.contains("peel_pc"), "{e}");
    }
}
