//! Entity-aware tracing and the soft hops (issue 19) on small hand-built chains: each
//! method must find its link, and must not find one where the chain does not support it.
//! Figures are worked out by hand in the comments.

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, WPubkeyHash, Witness,
};
use cointrail_chain::view::{ChainView, OutNum, TxNum};
use cointrail_chain::MemChain;
use cointrail_trace::{
    trace, CoinJoinInfo, DemixParams, Oracle, Source, Stop, TraceParams, TraceResult,
};
use std::collections::{HashMap, HashSet};

fn spk(n: u16) -> ScriptBuf {
    let mut h = [0u8; 20];
    h[..2].copy_from_slice(&n.to_le_bytes());
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
}

fn spk_legacy(n: u16) -> ScriptBuf {
    let mut h = [0u8; 20];
    h[..2].copy_from_slice(&n.to_le_bytes());
    ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array(h))
}

/// A chain of one transaction per block; outputs name their script by a number (legacy
/// P2PKH scripts are numbers ≥ 10,000).
struct Chain {
    c: MemChain,
    tag: u32,
    script_of: HashMap<OutNum, u16>,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            c: MemChain::new(),
            tag: 0,
            script_of: HashMap::new(),
        }
    }
    fn tx(&mut self, ins: &[(TxNum, u32)], outs: &[(u16, u64)]) -> TxNum {
        self.tag += 1;
        let input = if ins.is_empty() {
            vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(self.tag.to_le_bytes().to_vec()),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }]
        } else {
            ins.iter()
                .map(|&(t, v)| TxIn {
                    previous_output: OutPoint::new(self.c.txid_of(t), v),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect()
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input,
            output: outs
                .iter()
                .map(|&(s, v)| TxOut {
                    value: Amount::from_sat(v),
                    script_pubkey: if s >= 10_000 { spk_legacy(s) } else { spk(s) },
                })
                .collect(),
        };
        let t = self.c.push_tx(&tx, self.tag);
        for (i, &(s, _)) in outs.iter().enumerate() {
            self.script_of.insert(self.out(t, i as u32), s);
        }
        t
    }
    fn out(&self, t: TxNum, v: u32) -> OutNum {
        self.c.tx_outputs(t).start + v as u64
    }
}

/// Who is who: scripts at services (category, name), clusters (script → entity), CoinJoins.
#[derive(Default)]
struct World {
    services: HashMap<u16, (&'static str, &'static str)>,
    clusters: HashMap<u16, u64>,
    coinjoins: HashSet<TxNum>,
    /// CoinJoins whose equal outputs are not all of them: (equal value, their vouts).
    cj_equal: HashMap<TxNum, (u64, Vec<u32>)>,
}

struct Or<'a>(&'a Chain, &'a World);

impl Oracle for Or<'_> {
    fn stop_at(&self, out: OutNum) -> Option<Stop> {
        let s = self.0.script_of.get(&out)?;
        self.1.services.get(s).map(|(cat, name)| Stop {
            entity: None,
            category: cat.to_string(),
            name: name.to_string(),
        })
    }
    fn coinjoin(&self, tx: TxNum) -> Option<CoinJoinInfo> {
        if let Some((v, vouts)) = self.1.cj_equal.get(&tx) {
            return Some(CoinJoinInfo {
                protocol: "joinmarket".into(),
                anonymity_set: vouts.len() as u32,
                equal_value: *v,
                equal_outputs: vouts.iter().map(|&i| self.0.out(tx, i)).collect(),
            });
        }
        self.1.coinjoins.contains(&tx).then(|| {
            let outs: Vec<OutNum> = self.0.c.tx_outputs(tx).collect();
            CoinJoinInfo {
                protocol: "whirlpool".into(),
                anonymity_set: outs.len() as u32,
                equal_value: 1_000_000,
                equal_outputs: outs,
            }
        })
    }
    fn entity_of(&self, out: OutNum) -> Option<u64> {
        let s = self.0.script_of.get(&out)?;
        Some(*self.1.clusters.get(s).unwrap_or(&(*s as u64)))
    }
    fn address(&self, out: OutNum) -> Option<String> {
        self.0.script_of.get(&out).map(|s| format!("addr{s}"))
    }
    fn entity_outputs(&self, out: OutNum) -> Vec<OutNum> {
        let e = self.entity_of(out);
        let mut v: Vec<OutNum> = self
            .0
            .script_of
            .keys()
            .copied()
            .filter(|&o| self.entity_of(o) == e)
            .collect();
        v.sort_unstable();
        v
    }
}

fn run(ch: &Chain, w: &World, src: OutNum, p: TraceParams) -> TraceResult {
    let r = trace(
        &ch.c,
        &Or(ch, w),
        &[Source {
            out: src,
            label: 1,
            amount: None,
        }],
        &p,
    );
    for t in [&r.totals, &r.soft_totals] {
        assert_eq!(
            t.source_sats,
            t.unspent_sats + t.fee_sats + t.stopped_sats + t.mixer_sats + t.limit_sats,
            "conservation: {t:?}"
        );
    }
    r
}

fn at(r: &TraceResult, ch: &Chain, t: TxNum, v: u32) -> (u64, u64) {
    let txid = cointrail_chain::view::display_txid(ch.c.txid(t));
    r.outputs
        .iter()
        .find(|o| o.txid == txid && o.vout == v)
        .map_or((0, 0), |o| (o.tainted_sats, o.soft_sats))
}

const EXCH: u16 = 900;
const MIXER: u16 = 800;
const MIXER_POOL: u16 = 801;
const MIXER_CHANGE: u16 = 802;

/// The thief (entity 50: scripts 10, 11, 12) holds a clean coin at 11 before the theft.
/// theft: [T1000] → 10 (1000). c1: 11's clean 500 → exchange. c2: 10 → exchange (1000).
/// Coin level (FIFO): the exchange gets 1000 at c2, nothing at c1.
/// Entity-aware: 10 joins the thief's balance (1000); c1 spends the thief's coin at 11 and
/// draws 500; c2 draws the other 500 (its 1000 are 500 tainted + 500 clean). The exchange
/// gets 1000 either way, spread differently: never more than the entity received.
#[test]
fn entity_aware_follows_the_thiefs_other_coins_up_to_what_it_received() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 1000)]);
    let clean = ch.tx(&[], &[(11, 500)]);
    let early = ch.tx(&[], &[(12, 300)]);
    // Spent before the theft: never the thief's loot.
    let e1 = ch.tx(&[(early, 0)], &[(EXCH, 300)]);
    let theft = ch.tx(&[(victim, 0)], &[(10, 1000)]);
    let c1 = ch.tx(&[(clean, 0)], &[(EXCH, 500)]);
    let c2 = ch.tx(&[(theft, 0)], &[(EXCH, 1000)]);
    // A bystander (script 20, its own entity) also pays the exchange: untouched.
    let by = ch.tx(&[], &[(20, 700)]);
    let b1 = ch.tx(&[(by, 0)], &[(EXCH, 700)]);
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    for s in [10, 11, 12] {
        w.clusters.insert(s, 50);
    }
    let src = ch.out(victim, 0);
    let coin = run(&ch, &w, src, TraceParams::default());
    assert_eq!(at(&coin, &ch, c1, 0), (0, 0));
    assert_eq!(at(&coin, &ch, c2, 0), (1000, 0));
    assert_eq!(coin.totals.stopped_sats, 1000);
    assert!(coin.thief_entity.is_empty());

    let ea = run(
        &ch,
        &w,
        src,
        TraceParams {
            entity_aware: true,
            ..Default::default()
        },
    );
    assert_eq!(at(&ea, &ch, c1, 0), (500, 0));
    assert_eq!(at(&ea, &ch, c2, 0), (500, 0));
    assert_eq!(at(&ea, &ch, e1, 0), (0, 0));
    assert_eq!(at(&ea, &ch, b1, 0), (0, 0));
    assert_eq!(ea.totals.stopped_sats, 1000);
    assert_eq!(ea.totals.unspent_sats, 0);
    assert_eq!(ea.parameters["entity_aware"], true);
    let addrs: Vec<&str> = ea.thief_entity.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(addrs, ["addr10", "addr11", "addr12"]);
    assert_eq!(ea.thief_entity[0].rule, "first-hop");
    assert!(!addrs.contains(&"addr20"));
}

/// Self-spends grow the entity; a transaction with another party's input does not.
/// theft → 10 (1000). s1: 10 → 30 (600), 31 (390), fee 10: only the thief's coins in, so
/// 30 and 31 are the thief's. 31 shares a cluster (60) with 32, which holds a clean 200.
/// p1: 32 → exchange (200): entity-aware draws 200 (the balance holds 990).
/// j1: 30 (600) + bystander 40 (400) → 41 (1000): 41 is not taken as the thief's, and
/// 40's other coin (entity 40) paying the exchange in b1 stays clean.
#[test]
fn self_spends_grow_the_entity_and_joint_spends_do_not() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 1000)]);
    let c32 = ch.tx(&[], &[(32, 200)]);
    let by = ch.tx(&[], &[(40, 400), (40, 900)]);
    let theft = ch.tx(&[(victim, 0)], &[(10, 1000)]);
    let s1 = ch.tx(&[(theft, 0)], &[(30, 600), (31, 390)]);
    let p1 = ch.tx(&[(c32, 0)], &[(EXCH, 200)]);
    let j1 = ch.tx(&[(s1, 0), (by, 0)], &[(41, 1000)]);
    let b1 = ch.tx(&[(by, 1)], &[(EXCH, 900)]);
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    w.clusters.insert(31, 60);
    w.clusters.insert(32, 60);
    let src = ch.out(victim, 0);
    let r = run(
        &ch,
        &w,
        src,
        TraceParams {
            entity_aware: true,
            ..Default::default()
        },
    );
    assert_eq!(at(&r, &ch, p1, 0), (200, 0));
    assert_eq!(at(&r, &ch, b1, 0), (0, 0));
    // j1 draws 600 for the thief's input (the balance's oldest 600), FIFO: 41 holds 600.
    assert_eq!(at(&r, &ch, j1, 0), (600, 0));
    assert_eq!(r.totals.fee_sats, 10);
    let rules: HashMap<&str, &str> = r
        .thief_entity
        .iter()
        .map(|m| (m.address.as_str(), m.rule.as_str()))
        .collect();
    assert_eq!(rules.get("addr30"), Some(&"self-spend"));
    assert_eq!(rules.get("addr32"), Some(&"cluster"));
    assert_eq!(rules.get("addr41"), None);
    assert_eq!(rules.get("addr40"), None);
    // 1000 stolen: 10 fee, 200 at the exchange, 600 in 41 (unspent), 190 left in the balance.
    assert_eq!(r.totals.stopped_sats, 200);
    assert_eq!(r.totals.unspent_sats, 790);
}

fn demix() -> TraceParams {
    TraceParams {
        demix: Some(DemixParams {
            coinjoin_links: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// KuCoin-style structured deposits: two deposits of 999,000,000 (just below 10 BTC) into
/// a labelled mixer, each after the previous payout. The mixer pays 969,030,000 (3% kept)
/// to fresh P2WPKH addresses of the thief, who pays an exchange. A decoy withdrawal of
/// another size in the same window is no candidate.
#[test]
fn structured_mixer_deposits_are_matched_to_their_payouts() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 2_000_000_000)]);
    let pool = ch.tx(
        &[],
        &[
            (MIXER_POOL, 5_000_000_000),
            (MIXER_POOL, 5_000_000_000),
            (MIXER_POOL, 5_000_000_000),
        ],
    );
    let theft = ch.tx(&[(victim, 0)], &[(10, 1_999_990_000)]);
    let d1 = ch.tx(&[(theft, 0)], &[(MIXER, 999_000_000), (11, 1_000_980_000)]);
    let decoy = ch.tx(
        &[(pool, 2)],
        &[(70, 300_000_000), (MIXER_CHANGE, 4_699_990_000)],
    );
    let w1 = ch.tx(
        &[(pool, 0)],
        &[(20, 969_030_000), (MIXER_CHANGE, 4_030_960_000)],
    );
    let _d2 = ch.tx(&[(d1, 1)], &[(MIXER, 999_000_000), (12, 1_970_000)]);
    let w2 = ch.tx(
        &[(pool, 1)],
        &[
            (21, 500_000_000),
            (22, 469_030_000),
            (MIXER_CHANGE, 4_030_960_000),
        ],
    );
    let x1 = ch.tx(&[(w1, 0)], &[(EXCH, 969_020_000)]);
    let x2 = ch.tx(&[(w2, 0), (w2, 1)], &[(EXCH, 969_020_000)]);
    let _ = decoy;
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    for s in [MIXER, MIXER_POOL, MIXER_CHANGE] {
        w.services.insert(s, ("mixer", "Mixer M"));
    }
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    let r = run(&ch, &w, src, demix());
    // Hard taint is the same with and without soft hops.
    assert_eq!(hard.totals, r.totals);
    assert_eq!(r.totals.stopped_sats, 2 * 999_000_000);
    assert_eq!(r.demix.len(), 2);
    assert!(r
        .demix
        .iter()
        .all(|d| d.structured && d.followed == Some(0)));
    assert_eq!(r.soft_hops.len(), 2);
    // The last deposit of the series has no next deposit to confirm it: 0.8.
    assert_eq!(r.soft_hops[0].score, 1.0);
    assert_eq!(r.soft_hops[1].score, 0.8);
    for h in &r.soft_hops {
        assert_eq!(h.rule, "mixer-structured");
        assert_eq!(h.soft_sats, 969_030_000);
        assert!(
            h.facts.iter().any(|f| f.contains("kept 3.00%")),
            "{:?}",
            h.facts
        );
    }
    let txid = |t| cointrail_chain::view::display_txid(ch.c.txid(t));
    assert_eq!(r.soft_hops[0].to_txid, txid(w1));
    assert_eq!(r.soft_hops[1].to_txid, txid(w2));
    // What the payouts carried reaches the exchange as soft taint only.
    assert_eq!(at(&r, &ch, x1, 0), (0, 969_020_000));
    assert_eq!(at(&r, &ch, x2, 0), (0, 969_020_000));
    assert_eq!(r.soft_totals.source_sats, 2 * 969_030_000);
    assert_eq!(r.soft_totals.stopped_sats, 2 * 969_020_000);
    assert_eq!(r.soft_totals.fee_sats, 2 * 10_000);
    let ex = r
        .destinations
        .iter()
        .find(|d| d.name == "Exchange X")
        .unwrap();
    assert_eq!((ex.tainted_sats, ex.soft_sats), (0, 2 * 969_020_000));
    assert!(r
        .thief_entity
        .iter()
        .any(|m| m.address == "addr20" && m.soft));
    assert!(!r.thief_entity.iter().any(|m| m.address == "addr70"));
}

/// One unstructured deposit (1,234,567,890 sats) and two withdrawals in the fee band in its
/// window, to legacy scripts unlike the depositor's: 0.4, no bonus; nothing is followed.
/// A withdrawal outside the fee band (10% kept) is no candidate at all.
#[test]
fn ambiguous_or_out_of_band_withdrawals_are_not_followed() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 1_234_567_890)]);
    let pool = ch.tx(
        &[],
        &[
            (MIXER_POOL, 5_000_000_000),
            (MIXER_POOL, 5_000_000_000),
            (MIXER_POOL, 5_000_000_000),
        ],
    );
    let theft = ch.tx(&[(victim, 0)], &[(MIXER, 1_234_567_890)]);
    let _a = ch.tx(
        &[(pool, 0)],
        &[(10_001, 1_200_000_000), (MIXER_CHANGE, 3_799_990_000)],
    );
    let _b = ch.tx(
        &[(pool, 1)],
        &[(10_002, 1_210_000_000), (MIXER_CHANGE, 3_789_990_000)],
    );
    let _c = ch.tx(
        &[(pool, 2)],
        &[(10_003, 1_111_111_101), (MIXER_CHANGE, 3_888_878_899)],
    );
    let _ = theft;
    let mut w = World::default();
    for s in [MIXER, MIXER_POOL, MIXER_CHANGE] {
        w.services.insert(s, ("mixer", "Mixer M"));
    }
    let r = run(&ch, &w, ch.out(victim, 0), demix());
    assert_eq!(r.demix.len(), 1);
    let d = &r.demix[0];
    assert!(!d.structured);
    assert_eq!(d.candidates.len(), 2);
    assert!(d.candidates.iter().all(|c| c.score == 0.4));
    assert_eq!(d.followed, None);
    assert!(r.soft_hops.is_empty());
    assert_eq!(r.soft_totals.source_sats, 0);
}

/// A Whirlpool-style CoinJoin (5 × 1,000,000) takes 1,005,000 tainted sats. Later:
/// k1 spends outputs 0 and 3 together → a soft link (score 0.5: followed only when asked
/// for, below the default 0.8) carrying 1,005,000 of
/// the two outputs' 2,000,000 (1,000,000 + 5,000 in output order); k2 spends output 1
/// alone and k3 spends output 4 with a stranger's coin: no link.
#[test]
fn coinjoin_outputs_consolidated_together_are_soft_linked() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 1_005_000)]);
    let others = ch.tx(
        &[],
        &[
            (2, 1_005_000),
            (3, 1_000_000),
            (4, 1_000_000),
            (5, 1_000_000),
            (6, 50_000),
        ],
    );
    let cj = ch.tx(
        &[
            (victim, 0),
            (others, 0),
            (others, 1),
            (others, 2),
            (others, 3),
        ],
        &[
            (30, 1_000_000),
            (31, 1_000_000),
            (32, 1_000_000),
            (33, 1_000_000),
            (34, 1_000_000),
        ],
    );
    let k1 = ch.tx(&[(cj, 0), (cj, 3)], &[(40, 1_990_000)]);
    let k2 = ch.tx(&[(cj, 1)], &[(41, 990_000)]);
    let k3 = ch.tx(&[(cj, 4), (others, 4)], &[(42, 1_040_000)]);
    let x = ch.tx(&[(k1, 0)], &[(EXCH, 1_980_000)]);
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    w.coinjoins.insert(cj);
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    assert_eq!(hard.totals.mixer_sats, 1_005_000);
    // Alone, "spent together" is below the default score: nothing is followed.
    let r = run(&ch, &w, src, demix());
    assert!(r.soft_hops.is_empty());
    assert_eq!(r.soft_totals.source_sats, 0);
    let low = TraceParams {
        demix: Some(DemixParams {
            min_score: 0.5,
            coinjoin_links: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = run(&ch, &w, src, low);
    assert_eq!(r.totals, hard.totals);
    assert_eq!(r.soft_hops.len(), 1);
    let h = &r.soft_hops[0];
    assert_eq!(h.rule, "coinjoin-consolidation");
    assert_eq!(h.score, 0.5);
    assert_eq!(h.soft_sats, 1_005_000);
    assert_eq!(
        h.to_txid,
        cointrail_chain::view::display_txid(ch.c.txid(k1))
    );
    // k1 (FIFO): 40 takes the 1,005,000 soft sats; the exchange gets them, fee last.
    assert_eq!(at(&r, &ch, k1, 0), (0, 1_005_000));
    assert_eq!(at(&r, &ch, x, 0), (0, 1_005_000));
    assert_eq!(at(&r, &ch, k2, 0), (0, 0));
    assert_eq!(at(&r, &ch, k3, 0), (0, 0));
    assert_eq!(r.soft_totals.stopped_sats, 1_005_000);
}

/// A post-mix output spent together with a coin the trace holds links at 0.9.
#[test]
fn a_postmix_output_spent_with_the_thiefs_coin_is_linked() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 3_005_000)]);
    let others = ch.tx(
        &[],
        &[
            (2, 1_005_000),
            (3, 1_000_000),
            (4, 1_000_000),
            (5, 1_000_000),
        ],
    );
    let split = ch.tx(&[(victim, 0)], &[(10, 1_005_000), (11, 2_000_000)]);
    let cj = ch.tx(
        &[
            (split, 0),
            (others, 0),
            (others, 1),
            (others, 2),
            (others, 3),
        ],
        &[
            (30, 1_000_000),
            (31, 1_000_000),
            (32, 1_000_000),
            (33, 1_000_000),
            (34, 1_000_000),
        ],
    );
    let k = ch.tx(&[(split, 1), (cj, 2)], &[(EXCH, 2_990_000)]);
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    w.coinjoins.insert(cj);
    let r = run(&ch, &w, ch.out(victim, 0), demix());
    assert_eq!(r.soft_hops.len(), 1);
    assert_eq!(r.soft_hops[0].score, 0.9);
    assert_eq!(r.soft_hops[0].soft_sats, 1_000_000);
    // Hard: 2,000,000 of k's output (FIFO, fee last). Soft: the post-mix 1,000,000 is
    // traced in a second pass where the hard input counts as clean: FIFO gives the
    // output [clean 2,000,000, soft 990,000] and 10,000 soft to the fee.
    assert_eq!(at(&r, &ch, k, 0), (2_000_000, 990_000));
    assert_eq!(r.totals.stopped_sats, 2_000_000);
    assert_eq!(r.soft_totals.stopped_sats, 990_000);
    assert_eq!(r.soft_totals.fee_sats, 10_000);
}

/// Every report names the option and each soft hop's rule, score and facts.
#[test]
fn reports_name_the_soft_hops_and_the_entity_option() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 1_005_000)]);
    let others = ch.tx(
        &[],
        &[
            (2, 1_005_000),
            (3, 1_000_000),
            (4, 1_000_000),
            (5, 1_000_000),
        ],
    );
    let cj = ch.tx(
        &[
            (victim, 0),
            (others, 0),
            (others, 1),
            (others, 2),
            (others, 3),
        ],
        &[
            (30, 1_000_000),
            (31, 1_000_000),
            (32, 1_000_000),
            (33, 1_000_000),
            (34, 1_000_000),
        ],
    );
    let _k1 = ch.tx(&[(cj, 0), (cj, 3)], &[(40, 1_990_000)]);
    let mut w = World::default();
    w.coinjoins.insert(cj);
    let p = TraceParams {
        entity_aware: true,
        demix: Some(DemixParams {
            min_score: 0.5,
            coinjoin_links: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = run(&ch, &w, ch.out(victim, 0), p);
    let md = cointrail_trace::report::markdown(&r, "case");
    assert!(md.contains(r"| entity\_aware | true |"), "{md}");
    assert!(md.contains("## Soft hops (not proven"));
    assert!(md.contains("| coinjoin-consolidation | 0.50 |"));
    assert!(md.contains("2 outputs of one CoinJoin spent together"));
    let html = cointrail_trace::report::html(&r, "case");
    assert!(html.contains("coinjoin-consolidation"));
    let plain = cointrail_trace::report::markdown(
        &run(&ch, &w, ch.out(victim, 0), TraceParams::default()),
        "case",
    );
    assert!(plain.contains(r"| entity\_aware | false |"));
    assert!(!plain.contains("Soft hops"));
}

/// Three outputs of two different CoinJoins the taint entered, spent together: 0.85,
/// followed. The theft splits 2,010,000 into two premix coins of 1,005,000; each enters its
/// own 5 × 1,000,000 mix; outputs 0 and 2 of the first and 4 of the second are swept into
/// 60 (2,990,000), which pays the exchange 1,980,000. Each mix hands on what it took in
/// (1,005,000): the first's over its two outputs in output order (1,000,000 + 5,000), the
/// second's capped by its one output (1,000,000): 2,005,000 soft.
#[test]
fn outputs_of_two_tainted_coinjoins_swept_together_are_linked() {
    let mut ch = Chain::new();
    let victim = ch.tx(&[], &[(1, 2_010_000)]);
    let others = ch.tx(
        &[],
        &[
            (2, 1_005_000),
            (3, 1_000_000),
            (4, 1_000_000),
            (5, 1_000_000),
            (6, 1_005_000),
            (7, 1_000_000),
            (8, 1_000_000),
            (9, 1_000_000),
        ],
    );
    let split = ch.tx(&[(victim, 0)], &[(10, 1_005_000), (11, 1_005_000)]);
    let cj1 = ch.tx(
        &[
            (split, 0),
            (others, 0),
            (others, 1),
            (others, 2),
            (others, 3),
        ],
        &[
            (30, 1_000_000),
            (31, 1_000_000),
            (32, 1_000_000),
            (33, 1_000_000),
            (34, 1_000_000),
        ],
    );
    let cj2 = ch.tx(
        &[
            (split, 1),
            (others, 4),
            (others, 5),
            (others, 6),
            (others, 7),
        ],
        &[
            (40, 1_000_000),
            (41, 1_000_000),
            (42, 1_000_000),
            (43, 1_000_000),
            (44, 1_000_000),
        ],
    );
    let sweep = ch.tx(&[(cj1, 2), (cj2, 4), (cj1, 0)], &[(60, 2_990_000)]);
    // The spend pays the exchange and keeps change: not a cash-out, so `postmix-sweep`
    // (tested below) has no say and this is `coinjoin-consolidation`'s link alone.
    let x = ch.tx(&[(sweep, 0)], &[(EXCH, 1_980_000), (61, 1_000_000)]);
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    w.coinjoins.insert(cj1);
    w.coinjoins.insert(cj2);
    let r = run(&ch, &w, ch.out(victim, 0), demix());
    assert_eq!(r.soft_hops.len(), 1);
    assert_eq!(r.soft_hops[0].rule, "coinjoin-consolidation");
    assert_eq!(r.soft_hops[0].score, 0.85);
    assert_eq!(r.soft_hops[0].soft_sats, 2_005_000);
    // Outputs take soft sats in outpoint order: cj1:0 1,000,000, cj1:2 5,000, cj2:4
    // 1,000,000. FIFO over the sweep's inputs (cj1:2, cj2:4, cj1:0): 60 = [S5,000,
    // C995,000, S1,000,000, S990,000], fee S10,000; the exchange's first 1,980,000 of it
    // hold 5,000 + 980,000 = 985,000 soft.
    assert_eq!(at(&r, &ch, x, 0), (0, 985_000));
}

fn soft_only() -> TraceParams {
    TraceParams {
        demix: Some(DemixParams::default()),
        ..Default::default()
    }
}

/// `postmix-cashout`: the thief's 1,005,000 enter a 5 × 1,000,000 CoinJoin. Output 2 is
/// spent alone 3 blocks later straight to an exchange: the one candidate for the one coin
/// the taint fills, followed at 0.9 with 1,000,000 soft (990,000 reach the exchange, 10,000
/// the fee). Output 0 spent alone to a private address, and output 4 spent alone to the
/// exchange 60 blocks later (past the 36-block window), are no candidates.
/// Must not: a second output cashed out the same way makes two candidates (2,000,000) for
/// 1,005,000 of taint: each would carry 50.25% of its value, scored 0.9 × 0.5025 = 0.45,
/// below the default score, so nothing is followed.
#[test]
fn postmix_coins_cashed_out_alone_to_services_are_followed_when_unambiguous() {
    let build = |second: bool| {
        let mut ch = Chain::new();
        let victim = ch.tx(&[], &[(1, 1_005_000)]);
        let others = ch.tx(
            &[],
            &[
                (2, 1_005_000),
                (3, 1_005_000),
                (4, 1_005_000),
                (5, 1_005_000),
            ],
        );
        let cj = ch.tx(
            &[
                (victim, 0),
                (others, 0),
                (others, 1),
                (others, 2),
                (others, 3),
            ],
            &[
                (30, 1_000_000),
                (31, 1_000_000),
                (32, 1_000_000),
                (33, 1_000_000),
                (34, 1_000_000),
            ],
        );
        let _ = ch.tx(&[], &[(98, 1)]);
        let k0 = ch.tx(&[(cj, 0)], &[(41, 990_000)]);
        let k2 = ch.tx(&[(cj, 2)], &[(EXCH, 990_000)]);
        let k3 = ch.tx(&[(cj, 3)], &[(if second { EXCH } else { 43 }, 990_000)]);
        for _ in 0..60 {
            ch.tx(&[], &[(99, 1)]);
        }
        let k4 = ch.tx(&[(cj, 4)], &[(EXCH, 990_000)]);
        let mut w = World::default();
        w.services.insert(EXCH, ("exchange", "Exchange X"));
        w.coinjoins.insert(cj);
        (ch, w, victim, [k0, k2, k3, k4])
    };
    let (ch, w, victim, [k0, k2, k3, k4]) = build(false);
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    let r = run(&ch, &w, src, soft_only());
    assert_eq!(r.totals, hard.totals, "hard taint is the same");
    assert_eq!(r.soft_hops.len(), 1, "{:?}", r.soft_hops);
    let h = &r.soft_hops[0];
    assert_eq!(h.rule, "postmix-cashout");
    assert_eq!(h.score, 0.9);
    assert_eq!(h.soft_sats, 1_000_000);
    assert_eq!(
        h.to_txid,
        cointrail_chain::view::display_txid(ch.c.txid(k2))
    );
    assert!(
        h.facts
            .iter()
            .any(|f| f.contains("spent alone 3 blocks later")),
        "{:?}",
        h.facts
    );
    assert!(
        h.facts.iter().any(|f| f.contains("Exchange X (exchange)")),
        "{:?}",
        h.facts
    );
    assert_eq!(at(&r, &ch, k2, 0), (0, 990_000));
    for k in [k0, k3, k4] {
        assert_eq!(at(&r, &ch, k, 0), (0, 0));
    }
    assert_eq!(r.soft_totals.stopped_sats, 990_000);
    assert_eq!(r.soft_totals.fee_sats, 10_000);

    let (ch, w, victim, [_, k2, k3, _]) = build(true);
    let src = ch.out(victim, 0);
    let r = run(&ch, &w, src, soft_only());
    assert!(r.soft_hops.is_empty(), "{:?}", r.soft_hops);
    // Asked for less certainty, each candidate carries half a coin, scored 0.45.
    let low = TraceParams {
        demix: Some(DemixParams {
            min_score: 0.4,
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = run(&ch, &w, src, low);
    assert_eq!(r.soft_hops.len(), 2);
    for h in &r.soft_hops {
        assert_eq!(
            (h.rule.as_str(), h.score, h.soft_sats),
            ("postmix-cashout", 0.45, 502_500)
        );
    }
    assert_eq!(at(&r, &ch, k2, 0), (0, 502_500));
    assert_eq!(at(&r, &ch, k3, 0), (0, 502_500));
}

/// `postmix-sweep`: the thief's 2,010,000 are split in two coins of 1,005,000 that enter
/// two 5 × 1,000,000 CoinJoins (cj1, cj2; each its own component, 1,005,000 of taint).
/// The thief sweeps cj1:2 and cj2:4 together (nothing else in) into 1,990,000 at 60 and,
/// 3 blocks later, pays all of it alone to an exchange (1,980,000, fee 10,000): each
/// component has one candidate of 1,000,000 for its 1,005,000, so each carries its whole
/// value at 0.9 (remix depth 0, two inputs the taint reaches), one hop per component, and
/// the exchange gets 1,980,000 soft (the sweep's 2,000,000 less both fees).
/// Must not: (a) the sweep's coin paid on to a private address (no cash-out); (b) an
/// ordinary coin of someone else swept in as well (not a post-mix coin, not held); (c) the
/// cash-out 60 blocks after the sweep (window 36); (d) other participants of cj1 sweeping
/// their post-mix coins and cashing out the same way: cj1's candidates are then worth
/// 4,000,000 for 1,005,000 of taint, each carries 25% at 0.9 × 0.25 = 0.23, so only cj2's
/// coin is followed. Weaker: (e) cj1:2 swept with a post-mix coin of a CoinJoin the taint
/// never entered is scored as one remix deeper, 0.85, and followed alone.
#[test]
fn postmix_coins_swept_together_then_cashed_out_are_followed() {
    #[derive(Clone, Copy, PartialEq)]
    enum V {
        Find,
        PrivatePayee,
        ForeignCoin,
        LateCashout,
        OthersSweepToo,
        UntaintedMix,
    }
    let build = |v: V| {
        let mut ch = Chain::new();
        let victim = ch.tx(&[], &[(1, 2_010_000)]);
        let others = ch.tx(
            &[],
            &[
                (2, 1_005_000),
                (3, 1_005_000),
                (4, 1_005_000),
                (5, 1_005_000),
                (6, 1_005_000),
                (7, 1_005_000),
                (8, 1_005_000),
                (9, 1_005_000),
                (20, 1_005_000),
                (21, 1_005_000),
                (22, 1_005_000),
                (23, 1_005_000),
                (24, 1_005_000),
                (25, 500_000),
            ],
        );
        let split = ch.tx(&[(victim, 0)], &[(10, 1_005_000), (11, 1_005_000)]);
        let five = |a: u16| -> Vec<(u16, u64)> { (a..a + 5).map(|s| (s, 1_000_000)).collect() };
        let cj1 = ch.tx(
            &[
                (split, 0),
                (others, 0),
                (others, 1),
                (others, 2),
                (others, 3),
            ],
            &five(30),
        );
        let cj2 = ch.tx(
            &[
                (split, 1),
                (others, 4),
                (others, 5),
                (others, 6),
                (others, 7),
            ],
            &five(40),
        );
        // A CoinJoin the taint never enters.
        let cj3 = ch.tx(
            &[
                (others, 8),
                (others, 9),
                (others, 10),
                (others, 11),
                (others, 12),
            ],
            &five(50),
        );
        let mut ins = vec![(cj1, 2), (if v == V::UntaintedMix { cj3 } else { cj2 }, 4)];
        let mut made = 1_990_000;
        if v == V::ForeignCoin {
            ins.push((others, 13));
            made += 500_000;
        }
        let sweep = ch.tx(&ins, &[(60, made)]);
        if v == V::LateCashout {
            for _ in 0..60 {
                ch.tx(&[], &[(99, 1)]);
            }
        } else {
            for _ in 0..2 {
                ch.tx(&[], &[(99, 1)]);
            }
        }
        let payee = if v == V::PrivatePayee { 61 } else { EXCH };
        let x = ch.tx(&[(sweep, 0)], &[(payee, made - 10_000)]);
        if v == V::OthersSweepToo {
            // Two other participants of cj1, each sweeping two of its outputs (with a
            // post-mix coin of cj3) and cashing out at once.
            let s1 = ch.tx(&[(cj1, 0), (cj1, 1)], &[(62, 1_990_000)]);
            ch.tx(&[(s1, 0)], &[(EXCH, 1_980_000)]);
            let s2 = ch.tx(&[(cj1, 3), (cj3, 0)], &[(63, 1_990_000)]);
            ch.tx(&[(s2, 0)], &[(EXCH, 1_980_000)]);
        }
        let mut w = World::default();
        w.services.insert(EXCH, ("exchange", "Exchange X"));
        for t in [cj1, cj2, cj3] {
            w.coinjoins.insert(t);
        }
        (ch, w, victim, sweep, x)
    };
    let (ch, w, victim, sweep, x) = build(V::Find);
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    assert_eq!(hard.totals.mixer_sats, 2_010_000);
    let r = run(&ch, &w, src, soft_only());
    assert_eq!(r.totals, hard.totals, "hard taint is the same");
    assert_eq!(r.soft_hops.len(), 2, "{:?}", r.soft_hops);
    let sweep_txid = cointrail_chain::view::display_txid(ch.c.txid(sweep));
    for h in &r.soft_hops {
        assert_eq!(
            (h.rule.as_str(), h.score, h.soft_sats, h.to_txid.as_str()),
            ("postmix-sweep", 0.9, 1_000_000, sweep_txid.as_str())
        );
        let facts = h.facts.join("\n");
        assert!(facts.contains("swept together in"), "{facts}");
        assert!(facts.contains("2 of its inputs carry taint"), "{facts}");
        assert!(
            facts.contains("spent alone 3 blocks later to Exchange X (exchange)"),
            "{facts}"
        );
        assert!(facts.contains("each carries 100% of its value"), "{facts}");
    }
    assert_eq!(at(&r, &ch, sweep, 0), (0, 1_990_000));
    assert_eq!(at(&r, &ch, x, 0), (0, 1_980_000));
    assert_eq!(r.soft_totals.stopped_sats, 1_980_000);
    assert_eq!(r.soft_totals.fee_sats, 20_000);
    // The swept coins and what the sweep made are the thief's (soft); the exchange is not.
    for a in ["addr32", "addr44", "addr60"] {
        assert!(
            r.thief_entity
                .iter()
                .any(|m| m.address == a && m.soft && m.rule == "postmix-sweep"),
            "{a}: {:?}",
            r.thief_entity
        );
    }
    assert!(!r
        .thief_entity
        .iter()
        .any(|m| m.address == format!("addr{EXCH}")));

    for v in [V::PrivatePayee, V::ForeignCoin, V::LateCashout] {
        let (ch, w, victim, sweep, x) = build(v);
        let r = run(&ch, &w, ch.out(victim, 0), soft_only());
        assert!(r.soft_hops.is_empty(), "{:?}", r.soft_hops);
        assert_eq!(at(&r, &ch, sweep, 0), (0, 0));
        assert_eq!(at(&r, &ch, x, 0), (0, 0));
    }

    // Others sweeping cj1's coins too: only cj2's coin is followed.
    let (ch, w, victim, sweep, x) = build(V::OthersSweepToo);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert_eq!(r.soft_hops.len(), 1, "{:?}", r.soft_hops);
    let h = &r.soft_hops[0];
    assert_eq!((h.score, h.soft_sats), (0.9, 1_000_000));
    assert_eq!(h.landed.len(), 1);
    assert!(h.landed[0].0.ends_with(":4"), "{:?}", h.landed);
    // cj2:4 is the sweep's second input: FIFO puts its 1,000,000 after cj1:2's clean.
    assert_eq!(at(&r, &ch, sweep, 0), (0, 990_000));
    assert_eq!(at(&r, &ch, x, 0), (0, 980_000));
    // Asked for less certainty, cj1's four swept coins carry 25% each (251,250), scored
    // 0.9 × 0.25 = 0.23 (0.85 × 0.25 = 0.21 for the one swept with cj3's coin).
    let low = TraceParams {
        demix: Some(DemixParams {
            min_score: 0.2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = run(&ch, &w, ch.out(victim, 0), low);
    let mut got: Vec<(f64, Vec<u64>)> = r
        .soft_hops
        .iter()
        .map(|h| (h.score, h.landed.iter().map(|l| l.1).collect()))
        .collect();
    got.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.len().cmp(&b.1.len())));
    assert_eq!(
        got,
        vec![
            (0.21, vec![251_250]),
            (0.23, vec![251_250]),
            (0.23, vec![251_250, 251_250]),
            (0.9, vec![1_000_000]),
        ],
        "{:?}",
        r.soft_hops
    );
    assert!(r
        .soft_hops
        .iter()
        .filter(|h| h.score < 0.5)
        .all(|h| h.facts.iter().any(
            |f| f.contains("worth 4000000 sats") && f.contains("each carries 25% of its value")
        )));

    // One tainted-tree coin swept with an untainted post-mix coin: 0.85, cj1's coin alone.
    let (ch, w, victim, sweep, x) = build(V::UntaintedMix);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert_eq!(r.soft_hops.len(), 1, "{:?}", r.soft_hops);
    let h = &r.soft_hops[0];
    assert_eq!(
        (h.rule.as_str(), h.score, h.soft_sats),
        ("postmix-sweep", 0.85, 1_000_000)
    );
    assert!(h
        .facts
        .iter()
        .any(|f| f.contains("CoinJoins the taint did not enter")));
    assert_eq!(at(&r, &ch, sweep, 0), (0, 1_000_000));
    assert_eq!(at(&r, &ch, x, 0), (0, 1_000_000));
}

/// `coinjoin-change`: a JoinMarket round where the thief (taker) puts in 3,000,000 and two
/// makers 1,500,000 and 1,600,000; three equal outputs of 1,000,000 (vouts 0, 2, 4). The
/// taker's change 1,988,000 = 3,000,000 − 1,000,000 − 12,000 of fees; the makers' changes
/// (501,000 and 601,000) leave 499,000 and 399,000 past two denominations: no fit. The
/// change is followed at 0.9 to the exchange (1,978,000 soft after a 10,000 fee).
/// Must not: when a maker's change would fit too (a maker input of 2,990,000 with change
/// 1,991,000: 9,000 of "fees" against the taker's 12,000), the change is ambiguous and
/// nothing is followed.
/// Closest by far: a maker input of 2,799,000 with change 1,800,000 fits too, but only with
/// 200,000 of fees (3,000,000 − 1,000,000 − 1,800,000), more than 4 × 12,000: the taker's
/// change is followed, at 0.85.
#[test]
fn the_coinjoin_change_the_tainted_inputs_explain_is_followed_only_when_unique() {
    let build = |m1: u64| {
        let mut ch = Chain::new();
        let victim = ch.tx(&[], &[(1, 3_000_000)]);
        let makers = ch.tx(&[], &[(2, m1), (3, 1_600_000)]);
        let cj = ch.tx(
            &[(victim, 0), (makers, 0), (makers, 1)],
            &[
                (30, 1_000_000),
                (31, 1_988_000),
                (32, 1_000_000),
                (33, m1 - 1_000_000 + 1_000),
                (34, 1_000_000),
                (35, 601_000),
            ],
        );
        let k = ch.tx(&[(cj, 1)], &[(EXCH, 1_978_000)]);
        let mut w = World::default();
        w.services.insert(EXCH, ("exchange", "Exchange X"));
        w.cj_equal.insert(cj, (1_000_000, vec![0, 2, 4]));
        (ch, w, victim, k)
    };
    let (ch, w, victim, k) = build(1_500_000);
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    assert_eq!(hard.totals.mixer_sats, 3_000_000);
    let r = run(&ch, &w, src, soft_only());
    assert_eq!(r.totals, hard.totals);
    assert_eq!(r.soft_hops.len(), 1, "{:?}", r.soft_hops);
    let h = &r.soft_hops[0];
    assert_eq!(
        (h.rule.as_str(), h.score, h.soft_sats),
        ("coinjoin-change", 0.9, 1_988_000)
    );
    assert!(
        h.facts.iter().any(|f| f.contains(
            "3000000 = 1 × 1000000 (equal outputs) + 1988000 (output 1) + 12000 sats of fees"
        )),
        "{:?}",
        h.facts
    );
    assert_eq!(at(&r, &ch, k, 0), (0, 1_978_000));
    assert!(r
        .thief_entity
        .iter()
        .any(|m| m.address == "addr31" && m.soft && m.rule == "coinjoin-change"));

    let (ch, w, victim, k) = build(2_990_000);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert!(r.soft_hops.is_empty(), "{:?}", r.soft_hops);
    assert_eq!(at(&r, &ch, k, 0), (0, 0));

    let (ch, w, victim, k) = build(2_799_000);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert_eq!(r.soft_hops.len(), 1, "{:?}", r.soft_hops);
    let h = &r.soft_hops[0];
    assert_eq!(
        (h.rule.as_str(), h.score, h.soft_sats),
        ("coinjoin-change", 0.85, 1_988_000)
    );
    assert!(
        h.facts.iter().any(|f| f.contains(
            "2 of its 6 outputs fit; this one leaves 12000 sats of fees, the next 200000"
        )),
        "{:?}",
        h.facts
    );
    assert_eq!(at(&r, &ch, k, 0), (0, 1_978_000));
}

/// A chain with an owner (cluster 70) that takes 25 deposits from others (1.2× apart in
/// size, at fresh addresses 710+) and pays each back out later from its hot wallet (701):
/// `payout(v)` says how much. Then the thief's 10 BTC go in at 750 and, 3 blocks later,
/// 9.8 BTC (2% kept) come back out to the thief's 40, which pays an exchange.
fn mixer_world(payout: impl Fn(u64) -> u64) -> (Chain, World, TxNum, TxNum) {
    let mut ch = Chain::new();
    let mut hot = (ch.tx(&[], &[(701, 100_000_000_000)]), 0);
    let mut deps = Vec::new();
    let mut v = 10_000_000u64;
    for i in 0..25u16 {
        let c = ch.tx(&[], &[(300 + i, v + 50_000)]);
        ch.tx(&[(c, 0)], &[(710 + i, v)]);
        deps.push(v);
        v = v * 6 / 5;
    }
    for (i, &d) in deps.iter().enumerate() {
        let p = payout(d);
        let left = ch.c.output_value(ch.out(hot.0, hot.1)) - p - 10_000;
        hot = (ch.tx(&[hot], &[(400 + i as u16, p), (701, left)]), 1);
    }
    let victim = ch.tx(&[], &[(1, 1_000_050_000)]);
    let theft = ch.tx(&[(victim, 0)], &[(10, 1_000_040_000)]);
    let _dep = ch.tx(&[(theft, 0)], &[(750, 1_000_000_000)]);
    let _ = ch.tx(&[], &[(99, 1)]);
    let _ = ch.tx(&[], &[(99, 1)]);
    let p = payout(1_000_000_000);
    let left = ch.c.output_value(ch.out(hot.0, hot.1)) - p - 10_000;
    let out = ch.tx(&[hot], &[(40, p), (701, left)]);
    let cash = ch.tx(&[(out, 0)], &[(EXCH, p - 10_000)]);
    let mut w = World::default();
    w.services.insert(EXCH, ("exchange", "Exchange X"));
    for s in [701, 750].into_iter().chain(710..735) {
        w.clusters.insert(s, 70);
    }
    (ch, w, victim, cash)
}

/// Unlabelled mixer detection: the owner pays 26 of its 27 deposits back out less 2% (the
/// fee band 0.5-5%) and none with a fee added (the mirror band): a mixer by its pattern, so
/// the thief's deposit is demixed like a labelled mixer's (`mixer-demix`, 0.8: in band, the
/// only withdrawal in band, scripts match) and the 9.8 BTC reach the exchange as soft
/// taint. Must not: an owner whose withdrawals are not its deposits less a fee (60% of each,
/// an exchange paying out other amounts) is no mixer, and nothing soft is followed; without
/// soft hops nothing is judged at all.
#[test]
fn an_unlabelled_mixer_is_told_by_its_pattern_and_an_exchange_is_not() {
    let (ch, w, victim, cash) = mixer_world(|v| v - v / 50);
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    assert!(hard.detected_mixers.is_empty());
    assert_eq!(hard.totals.unspent_sats, 1_000_000_000);
    let r = run(&ch, &w, src, soft_only());
    assert_eq!(r.detected_mixers.len(), 1, "{:?}", r.detected_mixers);
    let d = &r.detected_mixers[0];
    assert_eq!(
        (d.deposits, d.matched, d.mirror_matched),
        (27, 26, 0),
        "{d:?}"
    );
    assert_eq!(d.entity, Some(70));
    assert!(d.name.contains("unlabelled mixer"), "{}", d.name);
    assert_eq!(r.soft_hops.len(), 1, "{:?}", r.soft_hops);
    let h = &r.soft_hops[0];
    assert_eq!((h.rule.as_str(), h.score), ("mixer-demix", 0.8));
    assert_eq!(h.soft_sats, 980_000_000);
    assert_eq!(at(&r, &ch, cash, 0), (0, 979_990_000));
    // The deposit is the mixer's: hard taint stops there as mixer exposure.
    assert_eq!(r.totals.stopped_sats, 1_000_000_000);

    let (ch, w, victim, cash) = mixer_world(|v| v / 5 * 3);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert!(r.detected_mixers.is_empty(), "{:?}", r.detected_mixers);
    assert!(r.soft_hops.is_empty());
    assert_eq!(at(&r, &ch, cash, 0), (0, 0));
    assert_eq!(r.totals.unspent_sats, 1_000_000_000);
}

/// Two unstructured deposits of 500,000,000 into a labelled mixer; two withdrawals in the
/// band of both (485,000,000 and 487,500,000, 3 and 5 blocks later), each cashed out alone
/// to an exchange the next block. Each deposit has two cashed-out candidates, but there
/// are two tainted deposits they fit: the first takes the earliest (0.8), the second is
/// then left with one (0.8). Must not: a third withdrawal in the band, also cashed out,
/// makes three candidates for two deposits: nothing is followed.
#[test]
fn cashed_out_withdrawals_no_more_than_the_thiefs_deposits_are_taken_one_each() {
    let build = |third: bool| {
        let mut ch = Chain::new();
        let victim = ch.tx(&[], &[(1, 1_000_100_000)]);
        let pool = ch.tx(
            &[],
            &[
                (MIXER_POOL, 5_000_000_000),
                (MIXER_POOL, 5_000_000_000),
                (MIXER_POOL, 5_000_000_000),
            ],
        );
        let theft = ch.tx(&[(victim, 0)], &[(10, 500_050_000), (11, 500_040_000)]);
        let _d1 = ch.tx(&[(theft, 0)], &[(MIXER, 500_000_000)]);
        let _d2 = ch.tx(&[(theft, 1)], &[(MIXER, 500_000_000)]);
        let w1 = ch.tx(
            &[(pool, 0)],
            &[(40, 485_000_000), (MIXER_CHANGE, 4_514_990_000)],
        );
        let c1 = ch.tx(&[(w1, 0)], &[(EXCH, 484_990_000)]);
        let w2 = ch.tx(
            &[(pool, 1)],
            &[(41, 487_500_000), (MIXER_CHANGE, 4_512_490_000)],
        );
        let c2 = ch.tx(&[(w2, 0)], &[(EXCH, 487_490_000)]);
        if third {
            let w3 = ch.tx(
                &[(pool, 2)],
                &[(42, 490_000_000), (MIXER_CHANGE, 4_509_990_000)],
            );
            ch.tx(&[(w3, 0)], &[(EXCH, 489_990_000)]);
        }
        let mut w = World::default();
        w.services.insert(EXCH, ("exchange", "Exchange X"));
        for s in [MIXER, MIXER_POOL, MIXER_CHANGE] {
            w.services.insert(s, ("mixer", "Mixer M"));
        }
        (ch, w, victim, [c1, c2])
    };
    let (ch, w, victim, [c1, c2]) = build(false);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert_eq!(r.soft_hops.len(), 2, "{:?}", r.demix);
    for h in &r.soft_hops {
        assert_eq!((h.rule.as_str(), h.score), ("mixer-demix", 0.8), "{h:?}");
    }
    assert!(
        r.soft_hops[0]
            .facts
            .iter()
            .any(|f| f.contains("the earliest of 2 cashed out, for 2 tainted deposits")),
        "{:?}",
        r.soft_hops[0].facts
    );
    assert_eq!(at(&r, &ch, c1, 0).0, 0);
    assert!(at(&r, &ch, c1, 0).1 > 0 && at(&r, &ch, c2, 0).1 > 0);

    let (ch, w, victim, [c1, c2]) = build(true);
    let r = run(&ch, &w, ch.out(victim, 0), soft_only());
    assert!(r.soft_hops.is_empty(), "{:?}", r.soft_hops);
    assert_eq!(at(&r, &ch, c1, 0), (0, 0));
    assert_eq!(at(&r, &ch, c2, 0), (0, 0));
}

/// `remix-flow`: the thief's 1,005,000 (a premix coin) enter the 5 × 1,000,000 CoinJoin r1
/// with four coins of others; two of r1's outputs are remixed: r1:0 in r2 and r1:1 in r3,
/// each with four post-mix coins the taint never touched. r2:3 is spent alone 3 blocks
/// later straight to an exchange (`postmix-cashout`, remix depth 1: 0.85). Every other
/// output is spent alone to private addresses. Counting: one thief coin went into r1, so
/// one came out; the one found leaving (r2:3) accounts for it, so every other coin that
/// left is someone else's: r3's five outputs, hence r3's inputs, hence r1:1; r2 gave the
/// thief a coin, so the thief put one in, and r1:0 is the only input of r2 that can be
/// its: r1:0's address joins the entity (0.85, the link it rests on), r1:1's does not.
/// Must not: (a) r1:1 remixed in r2 as well: either of r1:0, r1:1 could be the thief's,
/// nothing is linked; (b) r2:3 paid to a private address: no coin found leaving, nothing
/// to count from; (c) r3:0 cashed out too, asked down to score 0.4: both cash-outs are
/// taken (half a coin each, 0.43), two coins found leaving for one that entered: no
/// routing fits, so nothing is linked and the trace warns.
#[test]
fn a_remixed_post_mix_coin_is_linked_only_when_the_counts_leave_no_other_routing() {
    let build = |variant: u8| {
        let mut ch = Chain::new();
        let victim = ch.tx(&[], &[(1, 1_005_000)]);
        let others = ch.tx(
            &[],
            &[
                (2, 1_005_000),
                (3, 1_005_000),
                (4, 1_005_000),
                (5, 1_005_000),
            ],
        );
        let clean: Vec<(u16, u64)> = (60..68).map(|s| (s, 1_000_000)).collect();
        let clean = ch.tx(&[], &clean);
        let r1 = ch.tx(
            &[
                (victim, 0),
                (others, 0),
                (others, 1),
                (others, 2),
                (others, 3),
            ],
            &[
                (30, 1_000_000),
                (31, 1_000_000),
                (32, 1_000_000),
                (33, 1_000_000),
                (34, 1_000_000),
            ],
        );
        let r2_ins: Vec<(TxNum, u32)> = if variant == 1 {
            vec![(r1, 0), (r1, 1), (clean, 0), (clean, 1), (clean, 2)]
        } else {
            vec![(r1, 0), (clean, 0), (clean, 1), (clean, 2), (clean, 3)]
        };
        let r2 = ch.tx(
            &r2_ins,
            &[
                (40, 1_000_000),
                (41, 1_000_000),
                (42, 1_000_000),
                (43, 1_000_000),
                (44, 1_000_000),
            ],
        );
        let r3_ins: Vec<(TxNum, u32)> = if variant == 1 {
            vec![(r1, 2), (clean, 4), (clean, 5), (clean, 6), (clean, 7)]
        } else {
            vec![(r1, 1), (clean, 4), (clean, 5), (clean, 6), (clean, 7)]
        };
        let r3 = ch.tx(
            &r3_ins,
            &[
                (50, 1_000_000),
                (51, 1_000_000),
                (52, 1_000_000),
                (53, 1_000_000),
                (54, 1_000_000),
            ],
        );
        let cash = ch.tx(
            &[(r2, 3)],
            &[(if variant == 2 { 45 } else { EXCH }, 990_000)],
        );
        for (s, (t, v)) in (100..).zip(
            [(r1, 3), (r1, 4), (r2, 0), (r2, 1), (r2, 2), (r2, 4)]
                .into_iter()
                .chain(
                    (0..5)
                        .map(|v| (r3, v))
                        .filter(|&(_, v)| variant != 3 || v != 0),
                )
                .chain((variant != 1).then_some((r1, 2))),
        ) {
            ch.tx(&[(t, v)], &[(s, 990_000)]);
        }
        if variant == 3 {
            ch.tx(&[(r3, 0)], &[(EXCH, 990_000)]);
        }
        let mut w = World::default();
        w.services.insert(EXCH, ("exchange", "Exchange X"));
        w.coinjoins.extend([r1, r2, r3]);
        (ch, w, victim, r1, r2, cash)
    };
    let (ch, w, victim, r1, r2, cash) = build(0);
    let src = ch.out(victim, 0);
    let hard = run(&ch, &w, src, TraceParams::default());
    let r = run(&ch, &w, src, soft_only());
    assert_eq!(r.totals, hard.totals, "hard taint is the same");
    let txid = |t| cointrail_chain::view::display_txid(ch.c.txid(t));
    let cashout: Vec<_> = r
        .soft_hops
        .iter()
        .filter(|h| h.rule == "postmix-cashout")
        .collect();
    assert_eq!(cashout.len(), 1, "{:?}", r.soft_hops);
    assert_eq!(
        (cashout[0].score, cashout[0].to_txid.clone()),
        (0.85, txid(cash))
    );
    let flow: Vec<_> = r
        .soft_hops
        .iter()
        .filter(|h| h.rule == "remix-flow")
        .collect();
    assert_eq!(flow.len(), 1, "{:?}", r.soft_hops);
    let h = flow[0];
    assert_eq!(h.score, 0.85);
    assert_eq!((h.from.clone(), h.to_txid.clone()), (txid(r1), txid(r2)));
    assert_eq!(
        h.soft_sats, 0,
        "the link carries nothing: the taint went on at r2:3"
    );
    assert!(
        h.facts[0].starts_with(&format!("post-mix output {}:0 (1000000 sats", txid(r1))),
        "{:?}",
        h.facts
    );
    assert!(
        h.facts[1].contains("1 coin(s) entered them from the trace; 1 left where soft hops found them (weakest: postmix-cashout at 0.85)"),
        "{:?}",
        h.facts
    );
    let soft_members: Vec<(&str, &str)> = r
        .thief_entity
        .iter()
        .filter(|m| m.soft)
        .map(|m| (m.address.as_str(), m.rule.as_str()))
        .collect();
    assert!(
        soft_members.contains(&("addr30", "remix-flow")),
        "{soft_members:?}"
    );
    assert!(
        soft_members.contains(&("addr43", "postmix-cashout")),
        "{soft_members:?}"
    );
    assert!(
        !r.thief_entity.iter().any(|m| m.address == "addr31"),
        "r1:1 went to r3, whose coins all left as someone else's"
    );
    // The same with the entity-aware trace.
    let ea = TraceParams {
        entity_aware: true,
        ..soft_only()
    };
    let r = run(&ch, &w, src, ea);
    assert!(r
        .thief_entity
        .iter()
        .any(|m| m.address == "addr30" && m.rule == "remix-flow"));

    for variant in [1, 2] {
        let (ch, w, victim, ..) = build(variant);
        let r = run(&ch, &w, ch.out(victim, 0), soft_only());
        assert!(
            !r.soft_hops.iter().any(|h| h.rule == "remix-flow"),
            "variant {variant}: {:?}",
            r.soft_hops
        );
        assert!(!r
            .thief_entity
            .iter()
            .any(|m| m.address == "addr30" || m.address == "addr31"));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
    let (ch, w, victim, ..) = build(3);
    let low = TraceParams {
        demix: Some(DemixParams {
            min_score: 0.4,
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = run(&ch, &w, ch.out(victim, 0), low);
    let cashouts: Vec<f64> = r
        .soft_hops
        .iter()
        .filter(|h| h.rule == "postmix-cashout")
        .map(|h| h.score)
        .collect();
    assert_eq!(cashouts, vec![0.43, 0.43], "{:?}", r.soft_hops);
    assert!(!r.soft_hops.iter().any(|h| h.rule == "remix-flow"));
    assert!(
        r.warnings.iter().any(
            |w| w.starts_with("remix-flow: the thief's coins cannot be routed")
                && w.contains("(1 entered, 2 found leaving)")
        ),
        "{:?}",
        r.warnings
    );
}
