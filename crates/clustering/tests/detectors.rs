//! methods.md §6 E7 and E9 exactly, and the Wasabi 2 denomination set.

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, WPubkeyHash, Witness,
};
use cointrail_chain::view::{ChainView, TxNum};
use cointrail_chain::MemChain;
use cointrail_clustering::coinjoin::{detect_coinjoin, wasabi2_denominations, NetParams};

fn spk(n: u16) -> ScriptBuf {
    let mut h = [0u8; 20];
    h[..2].copy_from_slice(&n.to_le_bytes());
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
}

/// Funding coinbases for each input value, then the transaction under test at height 700,000.
fn build(ins: &[u64], outs: &[u64]) -> (MemChain, TxNum) {
    let mut c = MemChain::new();
    let mut prev = Vec::new();
    for (k, &v) in ins.iter().enumerate() {
        let cb = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(vec![k as u8, 1]),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(v),
                script_pubkey: spk(100 + k as u16),
            }],
        };
        prev.push(cb.compute_txid());
        c.push_tx(&cb, 699_000);
    }
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: prev
            .iter()
            .map(|t| TxIn {
                previous_output: OutPoint::new(*t, 0),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: outs
            .iter()
            .enumerate()
            .map(|(k, &v)| TxOut {
                value: Amount::from_sat(v),
                script_pubkey: spk(500 + k as u16),
            })
            .collect(),
    };
    let t = c.push_tx(&tx, 700_000);
    (c, t)
}

#[test]
fn e7_whirlpool() {
    let (c, t) = build(
        &[1_005_000, 1_005_000, 1_000_000, 1_000_000, 1_000_000],
        &[1_000_000; 5],
    );
    let cj = detect_coinjoin(&c, t, &NetParams::mainnet()).unwrap();
    assert_eq!(
        (cj.protocol, cj.anonymity_set, cj.equal_value),
        ("whirlpool", 5, 1_000_000)
    );
    // Before the protocol existed, the same shape is not Whirlpool.
    let (c, t) = {
        let (c, t) = build(
            &[1_005_000, 1_005_000, 1_000_000, 1_000_000, 1_000_000],
            &[1_000_000; 5],
        );
        (c, t)
    };
    let early = NetParams {
        whirlpool_from: 800_000,
        ..NetParams::mainnet()
    };
    assert_ne!(
        detect_coinjoin(&c, t, &early).map(|x| x.protocol),
        Some("whirlpool")
    );
}

#[test]
fn e9_j1_joinmarket_with_maker_change() {
    let (c, t) = build(
        &[
            4_000_000, 4_040_000, 3_000_000, 3_000_000, 4_000_000, 4_000_000,
        ],
        &[
            5_000_000, 5_000_000, 5_000_000, 1_234_567, 2_345_678, 3_456_789,
        ],
    );
    let cj = detect_coinjoin(&c, t, &NetParams::mainnet()).unwrap();
    assert_eq!((cj.protocol, cj.anonymity_set), ("joinmarket", 3));
}

#[test]
fn e9_j2_taker_sweep_is_joinmarket_by_design_rule() {
    let outs = [5_000_000, 5_000_000, 5_000_000, 1_234_567, 2_345_678];
    let (c, t) = build(
        &[4_000_000, 4_040_000, 3_000_000, 4_000_000, 3_600_000],
        &outs,
    );
    let cj = detect_coinjoin(&c, t, &NetParams::mainnet()).unwrap();
    assert_eq!((cj.protocol, cj.anonymity_set), ("joinmarket", 3));
    // Dumplings' literal test e ∈ {c, c−1} rejects it (c = 2): the reason for the design rule.
    let (e, c_) = (3usize, outs.len() - 3);
    assert!(!(e == c_ || e + 1 == c_));
}

#[test]
fn ordinary_payments_are_not_coinjoins() {
    let (c, t) = build(&[500_000_000, 300_000_000], &[600_000_000, 198_765_432]);
    assert_eq!(detect_coinjoin(&c, t, &NetParams::mainnet()), None);
    // A batch payout with two equal amounts and one change is not a CoinJoin either.
    let (c, t) = build(&[50_000_000], &[1_000_000, 1_000_000, 47_000_000]);
    assert_eq!(detect_coinjoin(&c, t, &NetParams::mainnet()), None);
}

#[test]
fn wasabi2_has_78_denominations() {
    let d = wasabi2_denominations();
    assert_eq!(d.len(), 78);
    for v in [8_388_608u64, 4_782_969, 3_188_646, 5_000_000, 1_000_000] {
        assert!(d.binary_search(&v).is_ok(), "{v}");
    }
    for v in [1_234_567u64, 4_096] {
        assert!(d.binary_search(&v).is_err(), "{v}");
    }
    assert_eq!((d[0], *d.last().unwrap()), (5_000, 100_000_000_000));
}

/// The 8 consecutive real mainnet blocks (831,328-831,335, February 2024) hold Whirlpool
/// rounds (0.01 and 0.001 BTC pools, 6 to 8 participants: Surge Cycles). Their inputs come
/// from before the indexed range, so the detectors judge them on what is known.
#[test]
fn real_blocks_hold_whirlpool_rounds() {
    let d = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet");
    let files = (831328..=831335)
        .map(|h| root.join(format!("0{h}.bin")))
        .collect();
    let mut idx = cointrail_index::Index::open_writer(&d.path().join("index")).unwrap();
    cointrail_index::ingest(
        &mut idx,
        cointrail_index::Source::Files(files),
        &Default::default(),
    )
    .unwrap();
    let p = NetParams::mainnet();
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in 0..idx.tx_count() as u32 {
        let Some(cj) = cointrail_clustering::detect_coinjoin(&idx, t, &p) else {
            continue;
        };
        *by.entry(cj.protocol).or_default() += 1;
        if cj.protocol == "whirlpool" {
            let outs: Vec<u64> = idx.tx_outputs(t).map(|o| idx.output_value(o)).collect();
            assert!(outs.iter().all(|&v| v == cj.equal_value), "{outs:?}");
            assert!([100_000, 1_000_000, 5_000_000, 50_000_000].contains(&cj.equal_value));
            assert!((5..=10).contains(&outs.len()));
            assert_eq!(cj.anonymity_set as usize, outs.len());
        }
    }
    eprintln!("CoinJoins by detector in blocks 831328-831335: {by:?}");
    // The 7×0.01 BTC rounds of block 831,328 alone are six.
    assert!(by.get("whirlpool").copied().unwrap_or(0) >= 6, "{by:?}");
}
