//! Cross-chain joins on hand-built two-chain worlds; every answer worked out by hand.

use cointrail_account::xchain::{
    convert_taint, join_bridge, join_thorchain, BridgeRules, Deposit, Matched, Payout, Release,
};
use cointrail_evm::U256;

fn u(x: u64) -> U256 {
    U256::from(x)
}
fn eth(x: u64) -> U256 {
    U256::from(x) * U256::from(10u64).pow(U256::from(18u8))
}

const H1: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "0x2222222222222222222222222222222222222222222222222222222222222222";
const DEST: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

fn dep(tx: &str, time: u64, amount: U256, memo: Option<&str>, id: Option<&str>) -> Deposit {
    Deposit {
        chain: "ethereum".into(),
        tx: tx.trim_start_matches("0x").into(),
        time,
        from: "0xthief".into(),
        to: "0xvault".into(),
        asset: "ETH".into(),
        amount,
        memo: memo.map(String::from),
        id: id.map(String::from),
    }
}

fn rel(tx: &str, time: u64, to: &str, sats: u64, memo: Option<&str>, id: Option<&str>) -> Release {
    Release {
        chain: "bitcoin".into(),
        tx: tx.into(),
        time,
        asset: "BTC".into(),
        payouts: vec![Payout {
            address: to.into(),
            amount: u(sats),
            index: 0,
        }],
        memo: memo.map(String::from),
        id: id.map(String::from),
    }
}

#[test]
fn thorchain_joins_by_out_memo_and_checks_the_inbound_memo() {
    let memo = format!("=:BTC.BTC:{DEST}");
    let deps = vec![
        dep(H1, 100, eth(10), Some(&memo), None),
        dep(H2, 100, eth(5), Some("=:BTC.BTC:bcrt1qsomeoneelse"), None),
    ];
    let out1 = format!("OUT:{}", H1.trim_start_matches("0x").to_uppercase());
    let out2 = format!("OUT:{}", H2.trim_start_matches("0x"));
    let rels = vec![
        // A payment with an unrelated memo: not THORChain's, ignored.
        rel("aa", 200, DEST, 1, Some("hello"), None),
        rel("bb", 700, DEST, 50_000_000, Some(&out1), None),
        // Names H2 but pays another address than H2's memo: skipped with the reason.
        rel("cc", 700, DEST, 25_000_000, Some(&out2), None),
        // Names a deposit we do not follow: ignored.
        rel(
            "dd",
            700,
            DEST,
            1,
            Some(&format!("OUT:{}", "33".repeat(32))),
            None,
        ),
    ];
    let j = join_thorchain(&deps, &rels);
    assert_eq!(j.joins.len(), 1);
    assert_eq!((j.joins[0].deposit, j.joins[0].release), (0, 1));
    assert_eq!(j.joins[0].matched, Matched::ThorchainOut);
    assert_eq!(j.joins[0].confidence_ppm, 1_000_000);
    assert_eq!(j.skipped.len(), 1);
    assert_eq!(j.skipped[0].tx, "cc");
    assert!(
        j.skipped[0].reason.contains("does not pay"),
        "{}",
        j.skipped[0].reason
    );
}

#[test]
fn thorchain_refuses_an_unparseable_inbound_memo_and_joins_refunds() {
    let deps = vec![dep(
        H1,
        100,
        eth(1),
        Some("=:BTC.BTC:bcrt1qx:notanumber"),
        None,
    )];
    let out = format!("OUT:{}", H1.trim_start_matches("0x"));
    let j = join_thorchain(&deps, &[rel("bb", 700, DEST, 5, Some(&out), None)]);
    assert!(j.joins.is_empty());
    assert!(
        j.skipped[0].reason.contains("does not parse"),
        "{}",
        j.skipped[0].reason
    );
    let refund = format!("REFUND:{}", H1.trim_start_matches("0x"));
    let j = join_thorchain(&deps, &[rel("bb", 700, "0xthief", 5, Some(&refund), None)]);
    assert_eq!(j.joins[0].matched, Matched::ThorchainRefund);
}

const RULES: &str = r#"
bridges:
  - name: simbridge
    deposit: { chain: ethereum, addresses: ["0xbridge"], id: "log:BridgeDeposit" }
    release: { chain: bitcoin, addresses: ["bcrt1qbridgevault"], id: "op_return:BRIDGE:" }
    rate_out: "5000000"
    rate_in: "1000000000000000000"
    tolerance_bps: 200
    window_secs: 3600
"#;

#[test]
fn bridge_joins_by_id() {
    let r = BridgeRules::parse(RULES, "rules.yaml").unwrap();
    let b = &r.bridges[0];
    assert_eq!(b.release_id_prefix(), Some("BRIDGE:"));
    let deps = vec![
        dep(H1, 100, eth(2), None, Some("7")),
        dep(H2, 100, eth(2), None, Some("8")),
    ];
    // Same amounts: only the ids tell them apart. 8's release comes first.
    let rels = vec![
        rel("r8", 500, "x", 9_900_000, None, Some("8")),
        rel("r7", 900, "y", 9_900_000, None, Some("7")),
    ];
    let j = join_bridge(b, &deps, &rels);
    let pairs: Vec<(usize, usize, Matched)> = j
        .joins
        .iter()
        .map(|x| (x.deposit, x.release, x.matched))
        .collect();
    assert_eq!(
        pairs,
        vec![(0, 1, Matched::BridgeId), (1, 0, Matched::BridgeId)]
    );
}

#[test]
fn bridge_joins_by_amount_and_time_with_a_confidence() {
    let r = BridgeRules::parse(RULES, "rules.yaml").unwrap();
    let b = &r.bridges[0];
    // 2 ETH at 0.05 BTC/ETH = 10,000,000 sats expected, tolerance 2% = 200,000.
    let deps = vec![
        dep(H1, 1_000, eth(2), None, None),
        dep(H2, 5_000, eth(1), None, None),
    ];
    let rels = vec![
        // Before the deposit: never.
        rel("early", 900, "a", 10_000_000, None, None),
        // err 100,000 → (1 − 100,000/400,000) = 0.75; two candidates → 375,000 ppm.
        rel("r1", 1_500, "b", 9_900_000, None, None),
        // err 150,000: the worse of the two.
        rel("r2", 2_000, "c", 10_150_000, None, None),
        // Out of tolerance (err 300,000).
        rel("r3", 2_100, "d", 10_300_000, None, None),
        // H2 expects 5,000,000 ± 100,000; this one is exact but after the window.
        rel("late", 5_000 + 3_601, "e", 5_000_000, None, None),
    ];
    let j = join_bridge(b, &deps, &rels);
    assert_eq!(j.joins.len(), 1);
    assert_eq!((j.joins[0].deposit, j.joins[0].release), (0, 1));
    assert_eq!(j.joins[0].matched, Matched::AmountTime);
    assert_eq!(j.joins[0].confidence_ppm, 375_000);
    assert_eq!(j.skipped.len(), 1);
    assert!(
        j.skipped[0].reason.contains("5000000 ± 100000"),
        "{}",
        j.skipped[0].reason
    );
}

#[test]
fn bridge_rule_errors_name_the_field() {
    let bad = RULES.replace("tolerance_bps: 200", "tolerance_bps: 20000");
    let e = BridgeRules::parse(&bad, "r.yaml").unwrap_err().to_string();
    assert!(e.contains("r.yaml") && e.contains("tolerance_bps"), "{e}");
    let bad = RULES.replace("\"op_return:BRIDGE:\"", "\"memo\"");
    let e = BridgeRules::parse(&bad, "r.yaml").unwrap_err().to_string();
    assert!(e.contains("release.id"), "{e}");
    let bad = RULES.replace("rate_in: \"1000000000000000000\"", "rate_in: \"0\"");
    assert!(BridgeRules::parse(&bad, "r.yaml")
        .unwrap_err()
        .to_string()
        .contains("rate_in"));
    let bad = RULES.replace("window_secs", "windw_secs");
    assert!(BridgeRules::parse(&bad, "r.yaml").is_err());
    // JSON is YAML too.
    let json = r#"{"bridges":[{"name":"b","deposit":{"chain":"ethereum","addresses":["0x1"]},"release":{"chain":"bitcoin","addresses":["x"]}}]}"#;
    let r = BridgeRules::parse(json, "r.json").unwrap();
    assert_eq!(r.bridges[0].tolerance_bps, 100);
}

#[test]
fn taint_converted_at_a_swap_rate_conserves_value() {
    // 10 ETH paid into the router, of which 6 ETH tainted (case 0), 4 clean; 49,999,999
    // sats out. Exact: 6/10 · 49,999,999 = 29,999,999.4 → 29,999,999 tainted; clean
    // 19,999,999.6 → 20,000,000 (the larger remainder takes the unit). Sum = paid out.
    let t = convert_taint(&[(0, eth(6))], eth(10), u(49_999_999));
    assert_eq!(t, vec![(0, u(29_999_999))]);
    // All tainted: all of the output.
    assert_eq!(
        convert_taint(&[(0, eth(10))], eth(10), u(7)),
        vec![(0, u(7))]
    );
}

#[test]
fn swap_memos_are_recognised_before_they_are_parsed() {
    use cointrail_account::xchain::looks_like_swap_memo;
    for m in [
        "=:ETH.ETH:0xabc",
        "=:e:0xabc:0/1/0",
        "SWAP:ETH.ETH:0xabc",
        "swap:ETH.ETH:0xabc",
        "s:ETH.USDT-0xdac17f958d2ee523a2206206994597c13d831ec7:0xabc",
        "=:ETH.ETH:0xabc:1e",
    ] {
        assert!(looks_like_swap_memo(m), "{m}");
    }
    for m in [
        "OUT:ABCD",
        "REFUND:ABCD",
        "hello",
        "=",
        "BRIDGE:7",
        "+:BTC.BTC",
    ] {
        assert!(!looks_like_swap_memo(m), "{m}");
    }
}

#[test]
fn router_transfer_out_events_decode_with_their_memo() {
    use cointrail_account::xchain::{topics, transfer_outs_from_logs};
    use cointrail_evm::etl::Log;
    let w = |v: u128| format!("{v:064x}");
    let addr = |b: u8| cointrail_evm::Address::repeat_byte(b);
    let topic = |b: u8| {
        let mut t = [0u8; 32];
        t[12..].copy_from_slice(addr(b).as_slice());
        cointrail_evm::B256::from(t)
    };
    let memo = "OUT:4E6F157D850B7C3A816DAA815E1ADE2BAFFB9C470A5592F0325E39B8E37A271B";
    let mut data = format!(
        "0x{}{}{}{}",
        "0".repeat(24) + &"dd".repeat(20),
        w(1_000_000),
        w(0x60),
        w(memo.len() as u128)
    );
    let mut b = alloy_hex(memo.as_bytes());
    while !b.len().is_multiple_of(64) {
        b.push('0');
    }
    data.push_str(&b);
    let log = |t0, data: String| Log {
        log_index: 0,
        transaction_hash: Default::default(),
        transaction_index: 0,
        address: addr(0x0b),
        data,
        topics: vec![t0, topic(0x0a), topic(0xd1)],
        block_number: 1,
    };
    let v = transfer_outs_from_logs(&[
        log(topics::thorchain_transfer_out(), data.clone()),
        // Another event with the same layout is not a TransferOut.
        log(topics::thorchain_deposit(), data.clone()),
        // A truncated one is left out, not guessed.
        log(topics::thorchain_transfer_out(), data[..100].to_string()),
    ]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].vault, addr(0x0a));
    assert_eq!(v[0].to, addr(0xd1));
    assert_eq!(v[0].asset, addr(0xdd));
    assert_eq!(v[0].amount, u(1_000_000));
    assert_eq!(v[0].memo, memo);
}

fn alloy_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
