//! The tracer on small chains whose answers are worked out by hand (methods.md §6).

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, WPubkeyHash, Witness,
};
use cointrail_chain::view::{ChainView, OutNum, TxNum};
use cointrail_chain::MemChain;
use cointrail_trace::{
    trace, CoinJoinInfo, CoinJoinPolicy, Model, NoOracle, Oracle, Source, Stop, TraceParams,
};
use std::collections::HashSet;

fn spk(n: u16) -> ScriptBuf {
    let mut h = [0u8; 20];
    h[..2].copy_from_slice(&n.to_le_bytes());
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
}

struct Chain {
    c: MemChain,
    next_tag: u32,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            c: MemChain::new(),
            next_tag: 0,
        }
    }
    /// A transaction; `ins` are (tx, vout) of earlier ones, none = a coinbase.
    fn tx(&mut self, ins: &[(TxNum, u32)], outs: &[(u16, u64)]) -> TxNum {
        self.next_tag += 1;
        let input = if ins.is_empty() {
            vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(self.next_tag.to_le_bytes().to_vec()),
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
                    script_pubkey: spk(s),
                })
                .collect(),
        };
        let h = self.next_tag;
        self.c.push_tx(&tx, h)
    }
    fn out(&self, t: TxNum, v: u32) -> OutNum {
        self.c.tx_outputs(t).start + v as u64
    }
}

const EXCHANGE: u16 = 900;

struct Services {
    exchange_addrs: HashSet<u32>,
    coinjoins: HashSet<TxNum>,
}

struct Or<'a>(&'a MemChain, &'a Services);

impl Oracle for Or<'_> {
    fn stop_at(&self, out: OutNum) -> Option<Stop> {
        let a = self.0.output_addr(out)?;
        self.1.exchange_addrs.contains(&a).then(|| Stop {
            entity: Some(7),
            category: "exchange".into(),
            name: "Exchange X".into(),
        })
    }
    fn coinjoin(&self, tx: TxNum) -> Option<CoinJoinInfo> {
        self.1.coinjoins.contains(&tx).then(|| {
            let outs: Vec<OutNum> = self.0.tx_outputs(tx).collect();
            CoinJoinInfo {
                protocol: "whirlpool".into(),
                anonymity_set: outs.len() as u32,
                equal_value: 1_000_000,
                equal_outputs: outs,
            }
        })
    }
}

fn services(c: &MemChain, exch: &[u16], cj: &[TxNum]) -> Services {
    let exchange_addrs = exch
        .iter()
        .map(|&s| {
            c.lookup_addr(&cointrail_chain::AddressKey::from_script(&spk(s)).unwrap())
                .unwrap()
        })
        .collect();
    Services {
        exchange_addrs,
        coinjoins: cj.iter().copied().collect(),
    }
}

fn params(model: &str) -> TraceParams {
    TraceParams {
        model: Model::parse(model).unwrap(),
        ..TraceParams::default()
    }
}

/// E4: tx1 [T1000] → P=300 (exchange deposit), Q=700; tx2 [Q, R=C300] → S=500, U=500.
fn e4() -> (Chain, TxNum, TxNum, TxNum) {
    let mut ch = Chain::new();
    let theft = ch.tx(&[], &[(1, 1000)]);
    let r = ch.tx(&[], &[(2, 300)]);
    let tx1 = ch.tx(&[(theft, 0)], &[(EXCHANGE, 300), (3, 700)]);
    let tx2 = ch.tx(&[(tx1, 1), (r, 0)], &[(4, 500), (5, 500)]);
    (ch, theft, tx1, tx2)
}

#[test]
fn e4_fifo_and_haircut_with_an_exchange_stop() {
    let (ch, theft, _tx1, tx2) = e4();
    let sv = services(&ch.c, &[EXCHANGE], &[]);
    let src = [Source {
        out: ch.out(theft, 0),
        label: 1,
        amount: None,
    }];
    let f = trace(&ch.c, &Or(&ch.c, &sv), &src, &params("fifo"));
    assert_eq!(
        (
            f.totals.source_sats,
            f.totals.stopped_sats,
            f.totals.unspent_sats,
            f.totals.fee_sats
        ),
        (1000, 300, 700, 0)
    );
    let s = f
        .outputs
        .iter()
        .find(|r| r.txid == ch.c.txid_of(tx2).to_string() && r.vout == 0)
        .unwrap();
    let u = f
        .outputs
        .iter()
        .find(|r| r.txid == ch.c.txid_of(tx2).to_string() && r.vout == 1)
        .unwrap();
    assert_eq!((s.tainted_sats, u.tainted_sats, s.hops), (500, 200, 2));
    // FIFO keeps offsets: U holds source satoshis 800..1000.
    assert_eq!((u.runs[0].offset, u.runs[0].amount), (800, 200));
    assert_eq!(f.destinations.len(), 1);
    assert_eq!(
        (f.destinations[0].tainted_sats, f.destinations[0].min_hops),
        (300, 1)
    );
    assert_eq!(
        f.destinations[0].path.len(),
        2,
        "theft tx then the deposit tx"
    );
    let h = trace(&ch.c, &Or(&ch.c, &sv), &src, &params("haircut"));
    let taint_of = |v: u32| {
        h.outputs
            .iter()
            .find(|r| r.txid == ch.c.txid_of(tx2).to_string() && r.vout == v)
            .unwrap()
            .tainted_sats
    };
    assert_eq!((taint_of(0), taint_of(1)), (350, 350));
    let t = &h.totals;
    assert_eq!(
        t.unspent_sats + t.fee_sats + t.stopped_sats + t.mixer_sats + t.limit_sats,
        t.source_sats
    );
}

#[test]
fn hop_limit_and_no_stops() {
    let (ch, theft, _, _) = e4();
    let src = [Source {
        out: ch.out(theft, 0),
        label: 1,
        amount: None,
    }];
    let mut p = params("fifo");
    p.max_hops = Some(1);
    let r = trace(&ch.c, &NoOracle, &src, &p);
    assert_eq!((r.totals.unspent_sats, r.totals.limit_sats), (300, 700));
    assert_eq!(r.txs_visited, 1);
    let r = trace(&ch.c, &NoOracle, &src, &params("fifo"));
    assert_eq!(r.totals.unspent_sats, 1000);
    assert_eq!(r.txs_visited, 2);
}

#[test]
fn coinjoin_stop_reports_the_anonymity_set_and_through_policies_mark_inference() {
    // E7: premix i1 tainted 1,005,000 and four others → 5 × 1,000,000, fee 10,000.
    let mut ch = Chain::new();
    let theft = ch.tx(&[], &[(1, 1_005_000)]);
    let others: Vec<TxNum> = (0..4)
        .map(|k| ch.tx(&[], &[(10 + k, if k == 0 { 1_005_000 } else { 1_000_000 })]))
        .collect();
    let mut ins = vec![(theft, 0)];
    ins.extend(others.iter().map(|&t| (t, 0)));
    let cj = ch.tx(
        &ins,
        &[
            (20, 1_000_000),
            (21, 1_000_000),
            (22, 1_000_000),
            (23, 1_000_000),
            (24, 1_000_000),
        ],
    );
    let sv = services(&ch.c, &[], &[cj]);
    let src = [Source {
        out: ch.out(theft, 0),
        label: 1,
        amount: None,
    }];
    let r = trace(&ch.c, &Or(&ch.c, &sv), &src, &params("fifo"));
    assert_eq!(r.totals.mixer_sats, 1_005_000);
    assert_eq!(r.mixers[0].anonymity_set, 5);
    assert_eq!(r.mixers[0].candidates.len(), 5);
    assert_eq!(r.mixers[0].candidates[0].2, 201_000);
    let mut p = params("fifo");
    p.coinjoin = CoinJoinPolicy::HaircutThrough;
    let r = trace(&ch.c, &Or(&ch.c, &sv), &src, &p);
    let outs: Vec<u64> = r
        .outputs
        .iter()
        .filter(|x| x.hops == 1)
        .map(|x| x.tainted_sats)
        .collect();
    assert_eq!(outs, vec![200_599, 200_599, 200_599, 200_599, 200_598]);
    assert_eq!(r.totals.fee_sats, 2_006);
    assert!(r.outputs.iter().filter(|x| x.hops == 1).all(|x| x.inferred));
}

#[test]
fn peel_chain_into_exchange_deposits_is_reported_as_a_chain() {
    let mut ch = Chain::new();
    let theft = ch.tx(&[], &[(1, 100_000_000)]);
    let mut prev = theft;
    let mut value = 100_000_000u64;
    for k in 0..5u16 {
        let peel = 2_000_000;
        let change = value - peel - 1_000;
        prev = ch.tx(
            &[(prev, if k == 0 { 0 } else { 1 })],
            &[(EXCHANGE + k % 2, peel), (100 + k, change)],
        );
        value = change;
    }
    let sv = services(&ch.c, &[EXCHANGE, EXCHANGE + 1], &[]);
    let src = [Source {
        out: ch.out(theft, 0),
        label: 1,
        amount: None,
    }];
    let r = trace(&ch.c, &Or(&ch.c, &sv), &src, &params("fifo"));
    assert_eq!(r.peel_chains.len(), 1);
    assert_eq!(r.peel_chains[0].length, 5);
    assert_eq!(r.peel_chains[0].peeled_sats, 10_000_000);
    assert!(r.peel_chains[0]
        .steps
        .iter()
        .all(|s| s.destination.as_deref() == Some("Exchange X")));
    assert_eq!(r.totals.stopped_sats, 10_000_000);
    assert_eq!(r.totals.fee_sats, 5_000);
    assert_eq!(r.totals.unspent_sats, 100_000_000 - 10_000_000 - 5_000);
}

#[test]
fn several_cases_at_once_stay_apart() {
    let (ch, theft, _, _) = e4();
    let src = [
        Source {
            out: ch.out(theft, 0),
            label: 1,
            amount: Some(400),
        },
        Source {
            out: ch.out(theft, 0),
            label: 2,
            amount: Some(600),
        },
    ];
    let mut p = params("fifo");
    p.labels = vec!["a".into(), "b".into()];
    let sv = services(&ch.c, &[EXCHANGE], &[]);
    let r = trace(&ch.c, &Or(&ch.c, &sv), &src, &p);
    // FIFO: P=300 takes a's first 300; Q=700 holds a's last 100 and all of b.
    assert_eq!(r.by_label[0].1.stopped_sats, 300);
    assert_eq!(r.by_label[1].1.stopped_sats, 0);
    assert_eq!(
        r.by_label[0].1.unspent_sats + r.by_label[1].1.unspent_sats,
        700
    );
    let again = trace(&ch.c, &Or(&ch.c, &sv), &src, &p);
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        serde_json::to_string(&again).unwrap(),
        "same inputs, same result"
    );
}

#[test]
fn reports_carry_the_numbers() {
    let (ch, theft, _, _) = e4();
    let sv = services(&ch.c, &[EXCHANGE], &[]);
    let r = trace(
        &ch.c,
        &Or(&ch.c, &sv),
        &[Source {
            out: ch.out(theft, 0),
            label: 1,
            amount: None,
        }],
        &params("fifo"),
    );
    let md = cointrail_trace::report::markdown(&r, "e4");
    assert!(
        md.contains("| Exchange X | exchange | 0.00000300 | 30.00% | 1 |"),
        "{md}"
    );
    let html = cointrail_trace::report::html(&r, "e4 <test>");
    assert!(html.contains("<svg") && html.contains("e4 &lt;test&gt;") && !html.contains("<script"));
    // Issue 21 item 14: parameters as a table, not a JSON line; txids are links to the
    // report's list of transactions, each with its anchor; labels fit the drawing and never
    // share a line.
    assert!(!md.contains("Parameters: `{"), "{md}");
    assert!(html.contains("<td>model</td><td>fifo</td>"), "{html}");
    let links: Vec<&str> = html
        .split("href=\"#tx-")
        .skip(1)
        .map(|x| &x[..64])
        .collect();
    assert!(!links.is_empty(), "{html}");
    for l in &links {
        assert!(
            html.contains(&format!("id=\"tx-{l}\"")),
            "link without anchor: {l}"
        );
    }
    let vb: f64 = html
        .split("viewBox=\"0 0 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut ys = Vec::new();
    for t in html.split("<text x=\"").skip(2) {
        let x: f64 = t.split('"').next().unwrap().parse().unwrap();
        let y: f64 = t
            .split("y=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let text = t.split('>').nth(1).unwrap().split('<').next().unwrap();
        assert!(
            x + text.chars().count() as f64 * 7.0 <= vb,
            "label clipped: {text}"
        );
        ys.push(y);
    }
    assert!(
        ys.windows(2).all(|w| w[1] - w[0] >= 14.9),
        "labels overlap: {ys:?}"
    );
    let csv = cointrail_trace::report::csv(&r);
    assert_eq!(csv.lines().count(), 1 + r.outputs.len());
    assert!(csv.contains(",300,300,1,"), "{csv}");
}

/// Issue 20, item 9: names come from label files and the API; no report format passes their
/// markup through, and the HTML page escapes once (not `&amp;lt;`).
#[test]
fn reports_escape_names_in_every_format() {
    let (ch, theft, _, _) = e4();
    let sv = services(&ch.c, &[EXCHANGE], &[]);
    let mut r = trace(
        &ch.c,
        &Or(&ch.c, &sv),
        &[Source {
            out: ch.out(theft, 0),
            label: 1,
            amount: None,
        }],
        &params("fifo"),
    );
    let evil = "<script>alert(1)</script> | *x* [a](javascript:b)\nline";
    r.destinations[0].name = evil.into();
    r.destinations[0].category = "<img src=x onerror=y>".into();
    r.warnings.push(format!("warned about {evil}"));
    let md = cointrail_trace::report::markdown(&r, "<b>case</b>");
    assert!(
        !md.contains("<script") && !md.contains("<img") && !md.contains("<b>"),
        "{md}"
    );
    assert!(md.contains("&lt;script&gt;"), "{md}");
    // The destination stays one row of the right number of cells, on one line.
    let row = md
        .lines()
        .find(|l| l.contains("alert(1)"))
        .expect("the destination row");
    assert_eq!(row.matches(" | ").count(), 6, "{row}");
    assert!(row.contains("\\[a\\]"), "{row}");
    let html = cointrail_trace::report::html(&r, "<b>case</b>");
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>case"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("&amp;lt;"), "escaped twice: {html}");
    r.outputs[0].labels = vec!["=HYPERLINK(\"http://x\")".into()];
    r.outputs[0].stop_reason = Some("service:a,b\nc".into());
    let csv = cointrail_trace::report::csv(&r);
    assert_eq!(csv.lines().count(), 1 + r.outputs.len(), "{csv}");
    assert!(csv.contains("\"'=HYPERLINK"), "{csv}");
    assert!(csv.contains("\"service:a,b c\""), "{csv}");
}

/// `max_rows` bounds the rows kept during the trace (poison can reach most of a chain),
/// never the totals or the destinations.
#[test]
fn max_rows_bounds_rows_not_totals() {
    let (ch, theft, _tx1, _tx2) = e4();
    let sv = services(&ch.c, &[EXCHANGE], &[]);
    let src = [Source {
        out: ch.out(theft, 0),
        label: 1,
        amount: None,
    }];
    for model in ["fifo", "haircut", "poison"] {
        let full = trace(&ch.c, &Or(&ch.c, &sv), &src, &params(model));
        assert!(!full.outputs_truncated);
        let mut p = params(model);
        p.dust_sats = 0;
        p.min_fraction = 0.0;
        let full = {
            let mut q = p.clone();
            q.max_rows = usize::MAX;
            trace(&ch.c, &Or(&ch.c, &sv), &src, &q)
        };
        p.max_rows = 1;
        let cut = trace(&ch.c, &Or(&ch.c, &sv), &src, &p);
        assert!(cut.outputs_truncated, "{model}");
        assert_eq!(
            format!("{:?}", cut.totals),
            format!("{:?}", full.totals),
            "{model}"
        );
        assert_eq!(cut.tainted_outputs, full.tainted_outputs);
        // Only the source row is kept; the destinations are complete all the same.
        assert_eq!(cut.outputs.len(), 1, "{model}");
        assert_eq!(
            format!("{:?}", cut.destinations),
            format!("{:?}", full.destinations),
            "{model}"
        );
        assert_eq!(full.destinations[0].tainted_sats, 300);
        assert_eq!(full.outputs.len(), 5, "{model}: source, P, Q, S, U");
    }
}
