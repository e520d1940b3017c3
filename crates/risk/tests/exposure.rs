//! Exposure and risk on small chains whose answers can be worked out by hand.

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, WPubkeyHash, Witness,
};
use cointrail_chain::view::{AddrId, ChainView, OutNum};
use cointrail_chain::MemChain;
use cointrail_risk::exposure::{split, split2_first, ExposureType};
use cointrail_risk::{
    Attribution, Attributor, CaseTaint, ExposureParams, Level, Nobody, RuleSet, Screener,
};
use std::collections::HashMap;

fn screener<'a>(
    view: &'a MemChain,
    attr: &'a dyn Attributor,
    taint: &'a dyn CaseTaint,
    rules: &'a RuleSet,
    params: &'a ExposureParams,
) -> Screener<'a> {
    Screener {
        view,
        attr,
        taint,
        rules,
        params,
        prices: &cointrail_risk::NoPrices,
    }
}

fn spk(n: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([n; 20]))
}

fn tx(ins: &[(bitcoin::Txid, u32)], outs: &[(u8, u64)], tag: u32) -> Transaction {
    let input = if ins.is_empty() {
        vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(tag.to_le_bytes().to_vec()),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }]
    } else {
        ins.iter()
            .map(|(t, v)| TxIn {
                previous_output: OutPoint::new(*t, *v),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect()
    };
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input,
        output: outs
            .iter()
            .map(|(s, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: spk(*s),
            })
            .collect(),
    }
}

const S: u8 = 1; // sanctioned
const A: u8 = 2; // unlabelled
const D: u8 = 3; // an exchange deposit address
const A2: u8 = 4;
const S2: u8 = 5;

/// cb → S 2 BTC; S → A 1 BTC + S2 0.9999 (fee 10,000); A → D 0.6 + A2 0.3999 (fee 10,000).
fn chain() -> (MemChain, Vec<bitcoin::Txid>) {
    let mut c = MemChain::new();
    let t0 = tx(&[], &[(S, 200_000_000)], 0);
    let t1 = tx(
        &[(t0.compute_txid(), 0)],
        &[(A, 100_000_000), (S2, 99_990_000)],
        1,
    );
    let t2 = tx(
        &[(t1.compute_txid(), 0)],
        &[(D, 60_000_000), (A2, 39_990_000)],
        2,
    );
    let ids = vec![t0.compute_txid(), t1.compute_txid(), t2.compute_txid()];
    c.push_tx(&t0, 100);
    c.push_tx(&t1, 101);
    c.push_tx(&t2, 102);
    (c, ids)
}

struct Labels(HashMap<AddrId, Attribution>);
impl Attributor for Labels {
    fn attribute(&self, a: AddrId) -> Vec<Attribution> {
        self.0.get(&a).cloned().into_iter().collect()
    }
}

fn addr(c: &MemChain, n: u8) -> AddrId {
    c.lookup_addr(&cointrail_chain::AddressKey::from_script(&spk(n)).unwrap())
        .unwrap()
}

fn label(name: &str, cat: &str, valid_to: Option<u64>) -> Attribution {
    Attribution {
        entity: None,
        name: name.into(),
        category: cat.into(),
        source: "test".into(),
        valid_from: None,
        valid_to,
    }
}

fn labels(c: &MemChain, delist_at: Option<u64>) -> Labels {
    let mut m = HashMap::new();
    m.insert(addr(c, S), label("Lazarus Group", "sanctions", delist_at));
    m.insert(addr(c, S2), label("Lazarus Group", "sanctions", delist_at));
    m.insert(addr(c, D), label("Exchange X", "exchange", None));
    Labels(m)
}

fn outputs_of(c: &MemChain, a: AddrId) -> Vec<OutNum> {
    (0..c.tx_count() as u32)
        .flat_map(|t| c.tx_outputs(t))
        .filter(|&o| c.output_addr(o) == Some(a))
        .collect()
}

#[test]
fn deposit_two_hops_from_a_sanctioned_party_is_high() {
    let (c, _) = chain();
    let rules = RuleSet::default_rules();
    let l = labels(&c, None);
    let d_out = outputs_of(&c, addr(&c, D))[0];
    let s = screener(&c, &l, &Nobody, &rules, &ExposureParams::default()).output(d_out);
    let row = s
        .exposure
        .iter()
        .find(|r| r.category == "sanctions")
        .unwrap();
    assert_eq!(row.exposure_type, ExposureType::Indirect);
    assert_eq!(
        row.sats, 60_000_000,
        "all of the deposit traces back to the sanctioned address"
    );
    assert_eq!(row.min_hops, 2);
    assert_eq!(row.path.len(), 2);
    assert_eq!(s.risk, Level::High);
    assert!(s
        .fired_rules
        .iter()
        .any(|f| f.rule == "indirect-severe-or-high"));
}

#[test]
fn direct_counterparty_of_a_sanctioned_party_is_severe() {
    let (c, _) = chain();
    let rules = RuleSet::default_rules();
    let a = addr(&c, A);
    let s = screener(
        &c,
        &labels(&c, None),
        &Nobody,
        &rules,
        &ExposureParams::default(),
    )
    .address(a, &outputs_of(&c, a), "A");
    let row = s
        .exposure
        .iter()
        .find(|r| r.category == "sanctions" && r.direction == "received")
        .unwrap();
    assert_eq!(
        (row.exposure_type, row.sats, row.min_hops),
        (ExposureType::Direct, 100_000_000, 1)
    );
    // A sent 1 BTC: 0.6 to the exchange (direct), 0.3999 back to A2 (unattributed), fee 10,000.
    let sent = s
        .exposure
        .iter()
        .find(|r| r.category == "exchange" && r.direction == "sent")
        .unwrap();
    assert_eq!(sent.sats, 60_000_000);
    assert_eq!(s.sent.fee_sats, 10_000);
    assert_eq!(s.sent.unattributed_sats, 39_990_000);
    assert_eq!(s.risk, Level::Severe);
}

#[test]
fn funds_moved_after_a_delisting_are_reported_apart_and_carry_no_risk() {
    let (c, _) = chain();
    let rules = RuleSet::default_rules();
    let a = addr(&c, A);
    // Heights stand for times here: the label ended at "time" 101, when S paid A.
    let s = screener(
        &c,
        &labels(&c, Some(101)),
        &Nobody,
        &rules,
        &ExposureParams::default(),
    )
    .address(a, &outputs_of(&c, a), "A");
    let row = s
        .exposure
        .iter()
        .find(|r| r.category == "sanctions")
        .unwrap();
    assert!(row.delisted);
    assert_eq!(row.level, Level::None);
    assert!(s.risk < Level::High, "{:?}", s.risk);
}

struct Taint(OutNum, u64);
impl CaseTaint for Taint {
    fn taint(&self, o: OutNum) -> Vec<(String, u64, u32)> {
        if o == self.0 {
            vec![("heist-1".into(), self.1, 2)]
        } else {
            vec![]
        }
    }
}

#[test]
fn traced_case_taint_counts_exactly() {
    let (c, _) = chain();
    let rules = RuleSet::default_rules();
    let d_out = outputs_of(&c, addr(&c, D))[0];
    let s = screener(
        &c,
        &Nobody,
        &Taint(d_out, 12_345_678),
        &rules,
        &ExposureParams::default(),
    )
    .output(d_out);
    let row = s
        .exposure
        .iter()
        .find(|r| r.category == "stolen_funds:heist-1")
        .unwrap();
    assert_eq!(row.sats, 12_345_678);
    assert_eq!(s.risk, Level::Severe);
    // The rest of the deposit is accounted for: unattributed or coinbase, to the satoshi.
    let accounted: u64 = s.exposure.iter().map(|r| r.sats).sum::<u64>()
        + s.received.unattributed_sats
        + s.received.coinbase_sats
        + s.received.outside_index_sats;
    assert_eq!(accounted, 60_000_000);
}

#[test]
fn tx_screening_and_a_hop_limit() {
    let (c, ids) = chain();
    let rules = RuleSet::default_rules();
    let t2 = c.lookup_txid(&ids[2].to_byte_array()).unwrap();
    let p = ExposureParams {
        max_hops: 1,
        ..Default::default()
    };
    let s = screener(&c, &labels(&c, None), &Nobody, &rules, &p).tx(t2);
    assert!(
        s.exposure.iter().all(|r| r.category != "sanctions"),
        "two hops away: beyond max_hops 1"
    );
    assert_eq!(s.received.unattributed_sats, 99_990_000);
    let s = screener(
        &c,
        &labels(&c, None),
        &Nobody,
        &rules,
        &ExposureParams::default(),
    )
    .tx(t2);
    assert_eq!(
        s.exposure
            .iter()
            .find(|r| r.category == "sanctions")
            .unwrap()
            .sats,
        99_990_000
    );
    // t2 pays the exchange deposit D directly: a direct "sent" destination of the tx itself.
    let sent = s
        .exposure
        .iter()
        .find(|r| r.category == "exchange" && r.direction == "sent")
        .expect("the deposit is a direct destination");
    assert_eq!(
        (sent.sats, sent.exposure_type, sent.min_hops),
        (60_000_000, ExposureType::Direct, 1)
    );
}

#[test]
fn operator_rules_replace_the_defaults_and_bad_files_are_refused() {
    let custom = "name: strict\nbtc_usd: 50000\nlevels: {exchange: medium}\nrules:\n  - name: any-exchange\n    level: severe\n    when: {category: [exchange], min_usd: 0}\n";
    let rules = RuleSet::from_yaml(custom, "strict.yaml").unwrap();
    let (c, _) = chain();
    let a = addr(&c, A);
    let s = screener(
        &c,
        &labels(&c, None),
        &Nobody,
        &rules,
        &ExposureParams::default(),
    )
    .address(a, &outputs_of(&c, a), "A");
    assert_eq!(s.risk, Level::Severe);
    assert_eq!(s.fired_rules[0].rule, "any-exchange");
    // A fixed btc_usd in an older rule file is no longer used, and the answer says so.
    assert!(s.parameters["usd"]["ignored"]
        .as_str()
        .unwrap()
        .contains("50000"));
    assert!(RuleSet::from_yaml("rules: 7", "worse.yaml")
        .unwrap_err()
        .contains("worse.yaml"));
}

#[test]
fn split_conserves_and_is_proportional() {
    let mut seed = 88172645463325252u64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = 1 + (seed % 7) as usize;
        let parts: Vec<u64> = (0..n).map(|k| (seed >> (k * 5)) % 1_000_000).collect();
        let w = seed % 10_000_000_000;
        let s = split(w, &parts);
        let total: u64 = parts.iter().sum();
        if total == 0 {
            continue;
        }
        assert_eq!(s.iter().sum::<u64>(), w);
        for (x, p) in s.iter().zip(&parts) {
            let exact = w as f64 * *p as f64 / total as f64;
            assert!((*x as f64 - exact).abs() <= 1.0);
        }
    }
    assert_eq!(split(2000, &[3000, 2000, 4000]), vec![667, 444, 889]);
}

/// Rates of a price table: BTC only, on the days given.
struct Rates(Vec<(u32, f64)>);
impl cointrail_risk::UsdPrices for Rates {
    fn rate(&self, asset: &str, day: u32) -> Option<cointrail_risk::UsdRate> {
        let (_, usd) = self.0.iter().find(|(d, _)| *d == day && asset == "BTC")?;
        Some(cointrail_risk::UsdRate {
            asset: "BTC".into(),
            date: cointrail_risk::usd::date_text(day),
            usd: *usd,
            source: "test-table".into(),
        })
    }
}

#[test]
fn usd_thresholds_use_the_rate_of_the_day_and_cannot_fire_without_one() {
    // Only a USD threshold: 0.6 BTC to an exchange (low) must exceed $20,000.
    let yaml = "name: usd-only\nlevels: {exchange: low}\nrules:\n  - name: big-exchange\n    level: medium\n    when: {category: [exchange], min_usd: 20000}\nfallback_highest_category: false\n";
    let rules = RuleSet::from_yaml(yaml, "usd.yaml").unwrap();
    let (c, _) = chain();
    let a = addr(&c, A);
    let (l, p) = (labels(&c, None), ExposureParams::default());
    let with = |prices: &dyn cointrail_risk::UsdPrices| {
        Screener {
            view: &c,
            attr: &l,
            taint: &Nobody,
            rules: &rules,
            params: &p,
            prices,
        }
        .address(a, &outputs_of(&c, a), "A")
    };
    // No table: the rule cannot fire, and the answer says why.
    let s = with(&cointrail_risk::NoPrices);
    assert!(s.fired_rules.is_empty(), "{:?}", s.fired_rules);
    assert_eq!(s.rules_not_judged.len(), 1);
    assert!(s.rules_not_judged[0]
        .reason
        .contains("no BTC rate for 1970-01-01"));
    let row = s
        .exposure
        .iter()
        .find(|r| r.category == "exchange")
        .unwrap();
    assert_eq!((row.usd, row.usd_unpriced_sats), (None, 60_000_000));
    // Heights stand in for times here: every block is on day 0. At 40,000 USD/BTC the
    // 0.6 BTC sent to the exchange are 24,000 USD: fires, naming the rate.
    let s = with(&Rates(vec![(0, 40_000.0)]));
    let f = &s.fired_rules[0];
    assert_eq!(
        (f.rule.as_str(), f.sats),
        ("big-exchange", Some(60_000_000))
    );
    assert_eq!(f.usd, Some(24_000.0));
    assert_eq!(f.usd_rates[0].date, "1970-01-01");
    assert_eq!(f.usd_rates[0].source, "test-table");
    assert_eq!(s.risk, Level::Medium);
    // At 30,000 USD/BTC: 18,000 USD, under the threshold, judged (not "not judged").
    let s = with(&Rates(vec![(0, 30_000.0)]));
    assert!(s.fired_rules.is_empty() && s.rules_not_judged.is_empty());
}

/// The largest-remainder rule as first written (every remainder sorted, 128-bit products):
/// the faster split must give the very same shares, ties and huge values included.
fn split_by_sorting(w: u64, parts: &[u64]) -> Vec<u64> {
    let total: u128 = parts.iter().map(|&p| p as u128).sum();
    if total == 0 {
        return vec![0; parts.len()];
    }
    let mut out = Vec::new();
    let mut rems = Vec::new();
    let mut given = 0u64;
    for (i, &p) in parts.iter().enumerate() {
        let exact = w as u128 * p as u128;
        out.push((exact / total) as u64);
        given += out[i];
        rems.push((exact % total, i));
    }
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for k in 0..(w - given) as usize {
        out[rems[k].1] += 1;
    }
    out
}

#[test]
fn split_gives_the_shares_of_sorting_every_remainder() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..20_000 {
        let n = 1 + (next() % 60) as usize;
        let scale = match round % 4 {
            0 => 10, // many ties
            1 => 1_000_000,
            2 => 2_100_000_000_000_000, // all bitcoin: products past 64 bits
            _ => u64::MAX / 64,
        };
        let parts: Vec<u64> = (0..n).map(|_| next() % scale).collect();
        let w = next() % if round % 2 == 0 { 1_000 } else { u64::MAX / 2 };
        assert_eq!(
            split(w, &parts),
            split_by_sorting(w, &parts),
            "{w} {parts:?}"
        );
        // The two-part split the walk uses for taint and change, without allocating.
        let (a, b) = (parts[0], if n > 1 { parts[1] } else { next() % scale });
        assert_eq!(split2_first(w, a, b), split(w, &[a, b])[0], "{w} {a} {b}");
        assert_eq!(split2_first(w, b, b), split(w, &[b, b])[0], "tie {w} {b}");
    }
}

/// The work bound (`max_edges`) counts the inputs a backward walk reads: a deposit two hops
/// from the sanctioned party needs two transactions of one input each. With room for one,
/// the second hop is not walked and its sats are reported as beyond the limit, never as
/// unattributed; the bound is in the answer's parameters.
#[test]
fn the_work_bound_reports_what_it_cut_and_says_so() {
    let (c, _) = chain();
    let rules = RuleSet::default_rules();
    let l = labels(&c, None);
    let d_out = outputs_of(&c, addr(&c, D))[0];
    let run = |max_edges| {
        let p = ExposureParams {
            max_edges,
            ..Default::default()
        };
        screener(&c, &l, &Nobody, &rules, &p).output(d_out)
    };
    let cut = run(1);
    assert!(cut.exposure.iter().all(|r| r.category != "sanctions"));
    assert_eq!(cut.received.beyond_limit_sats, 60_000_000);
    assert_eq!(cut.received.unattributed_sats, 0);
    assert_eq!(cut.parameters["max_edges"], 1);
    let whole = run(2);
    assert_eq!(whole.received.beyond_limit_sats, 0);
    let row = whole
        .exposure
        .iter()
        .find(|r| r.category == "sanctions")
        .unwrap();
    assert_eq!(row.sats, 60_000_000);
    // The default bound does not cut a walk this small.
    let d = run(ExposureParams::default().max_edges);
    assert_eq!(
        serde_json::to_value(&d.exposure).unwrap(),
        serde_json::to_value(&whole.exposure).unwrap()
    );

    // Forward, a transaction costs its inputs and outputs: S's output spent by t1 (1 in,
    // 2 out) reaches A, then t2 (1 in, 2 out) reaches the exchange.
    let s_addr = addr(&c, S);
    let fwd = |max_edges| {
        let p = ExposureParams {
            max_edges,
            ..Default::default()
        };
        screener(&c, &Nobody, &Nobody, &rules, &p).address(s_addr, &outputs_of(&c, s_addr), "S")
    };
    assert_eq!(fwd(2).sent.beyond_limit_sats, 200_000_000, "t1 needs 3");
    // t1 fits, t2 (what A received: 1 BTC) does not.
    assert_eq!(fwd(3).sent.beyond_limit_sats, 100_000_000);
    assert_eq!(fwd(6).sent.beyond_limit_sats, 0);
}
