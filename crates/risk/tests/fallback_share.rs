//! When no rule fires, the "highest category" verdict quotes the share of the row behind it
//! (it said 0.0% beside an exposure table that showed 0.36% for the same row).

use cointrail_risk::exposure::ExposureType;
use cointrail_risk::{ExposureRow, Level, RuleSet};

#[test]
fn the_fallback_verdict_carries_its_rows_share() {
    let rules = RuleSet::default_rules();
    let row = ExposureRow {
        category: "mixer".into(),
        level: rules.level_of("mixer"),
        exposure_type: ExposureType::Indirect,
        direction: "sent".into(),
        sats: 36_000_000,
        share: 0.0036,
        min_hops: 2,
        entities: vec!["mixer".into()],
        delisted: false,
        path: vec![],
        asset: "BTC".into(),
        usd: None,
        usd_rates: vec![],
        usd_unpriced_sats: 36_000_000,
        usd_note: None,
    };
    let total = |_: &str, _: &str| cointrail_evm::U256::from(10_000_000_000u64);
    let v = rules.evaluate(&[row], &total);
    assert!(v.level > Level::None);
    let f = v
        .fired
        .iter()
        .find(|f| f.rule == "highest-category")
        .expect("the fallback verdict");
    assert_eq!(f.share, 0.0036);
    assert_eq!(f.sats, Some(36_000_000));
}
