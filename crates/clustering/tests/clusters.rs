//! Clustering on small hand-built chains and on a simulated economy with ground truth.

use cointrail_chain::view::{AddrId, ChainView, Prevout, TxNum};
use cointrail_chain::{AddressKey, MemChain};
use cointrail_clustering::{pairwise_scores, Clustering, NetParams};

mod common;
use common::Chain;

/// E8: a1, a2 spent together pay x1 and change a3; later a CoinJoin of five others.
fn chain() -> Chain {
    let mut c = Chain(MemChain::new(), 0);
    let f1 = c.tx(&[], &[(1, 500_000_000)]);
    let f2 = c.tx(&[], &[(2, 300_000_000)]);
    let pay = c.tx(&[(f1, 0), (f2, 0)], &[(10, 600_000_000), (3, 198_765_432)]);
    let _spend_change = c.tx(&[(pay, 1)], &[(11, 198_000_000)]);
    let mut cj_in = Vec::new();
    for k in 0..5u16 {
        let v = if k < 2 { 1_005_000 } else { 1_000_000 };
        let t = c.tx(&[], &[(20 + k, v)]);
        cj_in.push((t, 0));
    }
    c.tx(
        &cj_in,
        &[
            (30, 1_000_000),
            (31, 1_000_000),
            (32, 1_000_000),
            (33, 1_000_000),
            (34, 1_000_000),
        ],
    );
    c
}

#[test]
fn multi_input_merges_and_coinjoins_do_not() {
    let c = chain();
    let d = tempfile::tempdir().unwrap();
    let mut cl = Clustering::new(d.path(), NetParams::any_height());
    cl.update(&c.0);
    assert_eq!(cl.cluster_of(c.addr(1)), cl.cluster_of(c.addr(2)));
    assert_ne!(
        cl.cluster_of(c.addr(1)),
        cl.cluster_of(c.addr(3)),
        "change needs a soft link, not applied"
    );
    assert_ne!(
        cl.cluster_of(c.addr(20)),
        cl.cluster_of(c.addr(21)),
        "CoinJoin inputs stay apart"
    );
    assert_eq!(cl.coinjoins_skipped, 1);
    let s = cl.summary(c.addr(2));
    assert_eq!(
        (s.size, s.received, s.sent, s.balance),
        (2, 800_000_000, 800_000_000, 0)
    );
    assert_eq!(s.cluster_id, c.addr(1).min(c.addr(2)));
    let render = |a: AddrId| format!("addr{a}");
    let steps = cl.explain(&c.0, c.addr(1), c.addr(2), &render).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].txid, c.0.txid_of(2).to_string());
    assert!(cl.explain(&c.0, c.addr(1), c.addr(3), &render).is_none());
}

#[test]
fn incremental_rollback_reopen_and_aggregates() {
    let c = chain();
    let d = tempfile::tempdir().unwrap();
    let mut one = Clustering::new(&d.path().join("one"), NetParams::any_height());
    one.update(&c.0);
    // The same chain applied in two steps, through a view of its first transactions.
    let mut inc = Clustering::new(&d.path().join("inc"), NetParams::any_height());
    inc.update(&Prefix(&c.0, 3, true));
    assert_eq!(inc.covered_txs, 3);
    inc.save().unwrap();
    let mut inc = Clustering::open(&d.path().join("inc"), NetParams::any_height()).unwrap();
    assert_eq!(inc.covered_txs, 3);
    inc.update(&c.0);
    inc.save().unwrap();
    let reopened = Clustering::open(&d.path().join("inc"), NetParams::any_height()).unwrap();
    for a in 0..c.0.addr_count() as u32 {
        assert_eq!(one.cluster_of(a), reopened.cluster_of(a));
        let (x, y) = (one.summary(a), reopened.summary(a));
        assert_eq!(
            (x.received, x.sent, x.tx_count, x.size),
            (y.received, y.sent, y.tx_count, y.size)
        );
    }
    // Opened (its arrays mapped from the files), given nothing new, saved straight from
    // the maps over the files they map, and opened again: the same clustering.
    let mut again = Clustering::open(&d.path().join("inc"), NetParams::any_height()).unwrap();
    again.update(&c.0);
    assert!(!again.merges.is_empty());
    again.save().unwrap();
    let again = Clustering::open(&d.path().join("inc"), NetParams::any_height()).unwrap();
    for a in 0..c.0.addr_count() as u32 {
        assert_eq!(one.cluster_of(a), again.cluster_of(a));
        assert_eq!(one.summary(a).received, again.summary(a).received);
        assert_eq!(one.addresses(a, 0, 10), again.addresses(a, 0, 10));
    }
    assert_eq!(again.merges, one.merges);
    // Rollback to before the payment that merged a1 and a2 separates them again.
    let mut rb = Clustering::open(&d.path().join("inc"), NetParams::any_height()).unwrap();
    rb.rollback_to(&c.0, 2);
    assert_ne!(rb.cluster_of(c.addr(1)), rb.cluster_of(c.addr(2)));
    rb.update(&c.0);
    assert_eq!(rb.cluster_of(c.addr(1)), rb.cluster_of(c.addr(2)));
    // Aggregates equal brute-force sums over the chain.
    let mut recv = std::collections::HashMap::<AddrId, u64>::new();
    for t in 0..c.0.tx_count() as u32 {
        for o in c.0.tx_outputs(t) {
            if let Some(a) = c.0.output_addr(o) {
                *recv.entry(one.cluster_of(a)).or_default() += c.0.output_value(o);
            }
        }
    }
    for (k, v) in recv {
        assert_eq!(one.summary(k).received, v);
    }
}

/// The first `n` transactions of a chain (addresses limited to those they use); with
/// `true`, spends by later transactions are hidden too, as they were before those came.
struct Prefix<'a, V: ChainView>(&'a V, u64, bool);
impl<V: ChainView> ChainView for Prefix<'_, V> {
    fn tx_count(&self) -> u64 {
        self.1
    }
    fn txid(&self, t: TxNum) -> [u8; 32] {
        self.0.txid(t)
    }
    fn tx_height(&self, t: TxNum) -> u32 {
        self.0.tx_height(t)
    }
    fn tx_locktime(&self, t: TxNum) -> u32 {
        self.0.tx_locktime(t)
    }
    fn tx_version(&self, t: TxNum) -> i32 {
        self.0.tx_version(t)
    }
    fn tx_inputs(&self, t: TxNum) -> std::ops::Range<u64> {
        self.0.tx_inputs(t)
    }
    fn tx_outputs(&self, t: TxNum) -> std::ops::Range<u64> {
        self.0.tx_outputs(t)
    }
    fn input_prevout(&self, i: u64) -> Prevout {
        self.0.input_prevout(i)
    }
    fn output_value(&self, o: u64) -> u64 {
        self.0.output_value(o)
    }
    fn output_addr(&self, o: u64) -> Option<AddrId> {
        self.0.output_addr(o)
    }
    fn output_spender(&self, o: u64) -> Option<TxNum> {
        self.0
            .output_spender(o)
            .filter(|&s| !self.2 || (s as u64) < self.1)
    }
    fn output_tx(&self, o: u64) -> TxNum {
        self.0.output_tx(o)
    }
    fn addr_count(&self) -> u64 {
        (0..self.1 as u32)
            .flat_map(|t| self.0.tx_outputs(t))
            .filter_map(|o| self.0.output_addr(o))
            .map(|a| a as u64 + 1)
            .max()
            .unwrap_or(0)
    }
    fn addr_key(&self, a: AddrId) -> AddressKey {
        self.0.addr_key(a)
    }
    fn lookup_txid(&self, t: &[u8; 32]) -> Option<TxNum> {
        self.0.lookup_txid(t).filter(|&x| (x as u64) < self.1)
    }
    fn lookup_addr(&self, k: &AddressKey) -> Option<AddrId> {
        self.0.lookup_addr(k)
    }
}

#[test]
fn simulated_economy_against_ground_truth() {
    let d = tempfile::tempdir().unwrap();
    let (idx, sim) = common::simulated(d.path(), 12_000, None);
    let mut cl = Clustering::new(&d.path().join("cl"), NetParams::any_height());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    cl.progress = Some(Box::new(move |done, total| {
        s2.lock().unwrap().push((done, total))
    }));
    cl.update(&idx);
    // Progress is reported batch by batch, ending with everything applied.
    let seen = seen.lock().unwrap().clone();
    let n = idx.tx_count();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 == n));
    assert_eq!(seen.last(), Some(&(n, n)));
    // Every CoinJoin the simulator made is detected (and therefore not merged).
    let kinds = std::fs::read_to_string(sim.join("truth/tx_kinds.tsv")).unwrap();
    let mut cj = 0;
    for line in kinds.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if ["whirlpool", "wasabi", "wasabi2", "joinmarket"]
            .iter()
            .any(|k| f[1].starts_with(k))
            && !f[1].contains("tx0")
            && !f[1].contains("premix")
        {
            let t = idx.parse_txid(f[0]).unwrap();
            assert!(
                cointrail_clustering::detect_coinjoin(&idx, t, &NetParams::any_height()).is_some(),
                "{} ({}) not detected",
                f[0],
                f[1]
            );
            cj += 1;
        }
    }
    assert!(cj > 0, "the simulation has CoinJoins");
    // Multi-input precision is near perfect; record what it is.
    let owner = common::owners(&sim, &idx);
    let s = pairwise_scores(&cl, &owner);
    eprintln!("multi-input on the simulated economy: {s:?}");
    assert!(s.precision > 0.99, "{s:?}");
    assert!(s.recall > 0.0);

    // The maintained aggregates equal a recount from the chain, cluster by cluster.
    // Transactions: at least the distinct ones touching the final cluster, at most the
    // distinct ones per member address summed (a transaction counts once per cluster it
    // touched as they were then).
    let mut want: std::collections::HashMap<AddrId, (u64, u64, u32, u32, u32)> = Default::default();
    let mut txs_min: std::collections::HashMap<AddrId, u32> = Default::default();
    let mut txs_max: std::collections::HashMap<AddrId, u32> = Default::default();
    for t in 0..idx.tx_count() as TxNum {
        let h = idx.tx_height(t);
        let (mut clusters, mut addrs) = (Vec::new(), Vec::new());
        let mut touch = |a: AddrId, recv: u64, sent: u64| {
            let e = want
                .entry(cl.cluster_of(a))
                .or_insert((0, 0, 0, u32::MAX, 0));
            e.0 += recv;
            e.1 += sent;
            e.3 = e.3.min(h);
            e.4 = e.4.max(h);
            clusters.push(cl.cluster_of(a));
            addrs.push(a);
        };
        for i in idx.tx_inputs(t) {
            if let Prevout::Output(o) = idx.input_prevout(i) {
                if let Some(a) = idx.output_addr(o) {
                    touch(a, 0, idx.output_value(o));
                }
            }
        }
        for o in idx.tx_outputs(t) {
            if let Some(a) = idx.output_addr(o) {
                touch(a, idx.output_value(o), 0);
            }
        }
        clusters.sort_unstable();
        clusters.dedup();
        addrs.sort_unstable();
        addrs.dedup();
        for c in clusters {
            *txs_min.entry(c).or_default() += 1;
        }
        for a in addrs {
            *txs_max.entry(cl.cluster_of(a)).or_default() += 1;
        }
    }
    let mut sizes: std::collections::HashMap<AddrId, u32> = Default::default();
    for a in 0..idx.addr_count() as AddrId {
        *sizes.entry(cl.cluster_of(a)).or_default() += 1;
    }
    assert!(want.len() > 1000);

    // A thousand transactions at a time (applied on one thread) gives the same clustering
    // as one pass (read ahead on a second thread).
    let mut inc = Clustering::new(&d.path().join("inc"), NetParams::any_height());
    let mut k = 0;
    while k < idx.tx_count() {
        k = (k + 1000).min(idx.tx_count());
        inc.update(&Prefix(&idx, k, true));
    }
    assert_eq!(inc.merges, cl.merges);
    // With change rules too: following the chain a few blocks at a time, each step seeing
    // only the spends made so far (as a node's tip shows them), gives the same soft links
    // as one pass that sees every spend: each transaction is judged on the spends before
    // the end of its delay, and judged again if that was beyond the tip.
    let rules = || cointrail_clustering::ChangeRules::parse("default").unwrap();
    let mut one =
        Clustering::new(&d.path().join("c1"), NetParams::any_height()).with_change(rules(), 144);
    one.update(&idx);
    let mut step =
        Clustering::new(&d.path().join("c2"), NetParams::any_height()).with_change(rules(), 144);
    let mut k = 0;
    while k < idx.tx_count() {
        // Whole blocks, as a node gives them.
        k = idx
            .tx_block(((k + 1000).min(idx.tx_count()) - 1) as TxNum)
            .1
            .end as u64;
        step.update(&Prefix(&idx, k, true));
    }
    let links = |c: &Clustering| {
        let ch = c.change.as_ref().unwrap();
        ch.links
            .iter()
            .map(|l| (l.tx, l.input, l.change, l.vout, l.agreement, l.state))
            .collect::<Vec<_>>()
    };
    assert!(links(&one).len() > 100);
    assert_eq!(links(&one), links(&step));
    // (`change.rs`, `later_spends_count_until_the_delay_ends_whether_followed_or_rebuilt`
    // shows a later spend that changes a verdict within the delay, and one after it that does
    // not.)
    assert_eq!(one.merges, cl.merges);
    assert_eq!(inc.coinjoins_by_protocol, cl.coinjoins_by_protocol);
    let sum = |c: &Clustering, a| {
        let s = c.summary(a);
        let t = (s.cluster_id, s.size, s.received, s.sent, s.tx_count);
        (t, s.first_seen_height, s.last_seen_height)
    };
    for a in 0..idx.addr_count() as AddrId {
        assert_eq!(sum(&inc, a), sum(&cl, a), "address {a}");
    }
    for (id, (recv, sent, _, first, last)) in want {
        let s = cl.summary(id);
        assert_eq!(
            (
                s.received,
                s.sent,
                s.first_seen_height,
                s.last_seen_height,
                s.size
            ),
            (recv, sent, first, last, sizes[&id]),
            "cluster {id}"
        );
        assert!(
            (txs_min[&id]..=txs_max[&id]).contains(&s.tx_count),
            "cluster {id}: {} transactions, expected {}..={}",
            s.tx_count,
            txs_min[&id],
            txs_max[&id]
        );
    }
}

/// a1 and a2 funded, then spent together (one merge).
fn joined_pair() -> Chain {
    let mut a = Chain(MemChain::new(), 0);
    let f1 = a.tx(&[], &[(1, 500_000_000)]);
    let f2 = a.tx(&[], &[(2, 300_000_000)]);
    a.tx(&[(f1, 0), (f2, 0)], &[(10, 799_000_000)]);
    a
}

/// A reorganisation that replaced covered transactions by as many others is noticed from
/// the saved state's last txid, and the merge it undid is gone after `sync`.
#[test]
fn sync_after_a_same_length_reorganisation_rebuilds() {
    let a = joined_pair();
    let mut b = Chain(MemChain::new(), 0);
    let g1 = b.tx(&[], &[(1, 500_000_000)]);
    b.tx(&[], &[(2, 300_000_000)]);
    b.tx(&[(g1, 0)], &[(10, 499_000_000)]);
    assert_eq!(a.0.tx_count(), b.0.tx_count());

    let d = tempfile::tempdir().unwrap();
    let mut cl = Clustering::new(d.path(), NetParams::any_height());
    assert!(cl.sync(&a.0));
    assert_eq!(cl.cluster_of(a.addr(1)), cl.cluster_of(a.addr(2)));
    cl.save().unwrap();
    let mut cl = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert!(cl.is_prefix_of(&a.0));
    assert!(!cl.sync(&a.0), "nothing new");
    assert!(!cl.is_prefix_of(&b.0), "same length, other last txid");
    assert!(cl.sync(&b.0));
    assert_ne!(cl.cluster_of(b.addr(1)), cl.cluster_of(b.addr(2)));
    assert_eq!(cl.covered_txs, 3);
    assert!(cl.is_prefix_of(&b.0));
    // A longer chain that extends the covered one is applied, not rebuilt.
    b.tx(&[], &[(3, 1_000)]);
    assert!(cl.is_prefix_of(&b.0));
    assert!(cl.sync(&b.0));
    assert_eq!(cl.covered_txs, 4);
}

/// A reorganisation starts again from the newest saved state that is still a prefix of
/// the new chain (here the save before the last), not from nothing, and ends where a
/// rebuild would.
#[test]
fn a_reorganisation_restarts_from_a_saved_state() {
    let base = |c: &mut Chain| {
        let f1 = c.tx(&[], &[(1, 500_000_000)]);
        let f2 = c.tx(&[], &[(2, 300_000_000)]);
        let f3 = c.tx(&[], &[(3, 100_000_000)]);
        let f4 = c.tx(&[], &[(4, 100_000_000)]);
        c.tx(&[(f1, 0), (f2, 0)], &[(10, 799_000_000)]);
        (f3, f4)
    };
    let mut a = Chain(MemChain::new(), 0);
    let (f3, f4) = base(&mut a);
    let mut b = Chain(MemChain::new(), 0);
    base(&mut b);
    let d = tempfile::tempdir().unwrap();
    let mut cl = Clustering::new(d.path(), NetParams::any_height());
    cl.update(&a.0);
    cl.save().unwrap();
    // The old branch joins 3 and 4; the new one spends 3 alone.
    a.tx(&[(f3, 0), (f4, 0)], &[(11, 199_000_000)]);
    b.tx(&[(f3, 0)], &[(12, 99_000_000)]);
    b.tx(&[(f4, 0)], &[(13, 99_000_000)]);
    assert!(cl.sync(&a.0));
    cl.save().unwrap();
    assert_eq!(cl.cluster_of(a.addr(3)), cl.cluster_of(a.addr(4)));

    let mut cl = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert!(cl.sync(&b.0));
    assert_eq!(cl.restarted_from, 5, "the save before the last");
    let mut fresh = Clustering::new(&d.path().join("fresh"), NetParams::any_height());
    fresh.update(&b.0);
    assert_ne!(cl.cluster_of(b.addr(3)), cl.cluster_of(b.addr(4)));
    assert_eq!(cl.cluster_of(b.addr(1)), cl.cluster_of(b.addr(2)));
    assert_eq!(cl.merges, fresh.merges);
    for x in 0..b.0.addr_count() as u32 {
        let (p, q) = (cl.summary(x), fresh.summary(x));
        assert_eq!(
            (p.cluster_id, p.size, p.received, p.sent, p.tx_count),
            (q.cluster_id, q.size, q.received, q.sent, q.tx_count)
        );
    }
    // Saved, it is the new branch's state; a chain unlike any save is rebuilt from nothing.
    cl.save().unwrap();
    let mut c = Chain(MemChain::new(), 0);
    c.tx(&[], &[(7, 1_000)]);
    let mut cl = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert!(cl.sync(&c.0));
    assert_eq!(cl.restarted_from, 0);
    assert_eq!(cl.covered_txs, 1);
}

/// A competing last block holding the same last transaction at the same position (same
/// mempool, another miner) is told apart by its coinbase.
#[test]
fn a_competing_block_with_the_same_last_transaction_is_not_a_prefix() {
    let build = |miner: u16| {
        let mut c = Chain(MemChain::new(), 0);
        let cb1 = c.tx(&[], &[(1, 5_000_000_000)]);
        c.tx(&[], &[(miner, 5_000_000_000)]);
        c.1 -= 1; // the next transaction in the same block
        c.tx(&[(cb1, 0)], &[(3, 4_000_000_000)]);
        c
    };
    let (x, y) = (build(2), build(4));
    assert_eq!(x.0.txid(2), y.0.txid(2));
    assert_eq!(x.0.tx_height(1), x.0.tx_height(2));
    let mut cl = Clustering::new(tempfile::tempdir().unwrap().path(), NetParams::any_height());
    cl.update(&x.0);
    assert!(cl.is_prefix_of(&x.0));
    assert!(!cl.is_prefix_of(&y.0));
}

/// A save cut short (its data files written, its state file not) leaves the state saved
/// before it, which `open` returns and `sync` brings forward.
#[test]
fn a_save_cut_short_falls_back_to_the_one_before() {
    let mut a = joined_pair();
    let d = tempfile::tempdir().unwrap();
    let mut cl = Clustering::new(d.path(), NetParams::any_height());
    cl.update(&a.0);
    cl.save().unwrap();
    let f3 = a.tx(&[], &[(3, 100_000_000)]);
    a.tx(&[(f3, 0)], &[(11, 99_000_000)]);
    cl.update(&a.0);
    cl.save().unwrap();
    // Without its manifest, the newest intact copy: here the last save's.
    let newest = common::current_copy(d.path());
    std::fs::remove_file(d.path().join("state.json")).unwrap();
    assert!(Clustering::saved_exists(d.path()));
    let back = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert_eq!(back.covered_txs, 5);
    assert_eq!(back.merges, cl.merges);
    drop(back);
    // That copy cut short too (a copy has no state file while a save writes it): the
    // copy before.
    std::fs::remove_file(newest.join("state.json")).unwrap();
    let mut back = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert_eq!(back.covered_txs, 3);
    // The user is told why (a rebuild or an older state is no silent surprise).
    assert_eq!(
        back.open_note.as_deref(),
        Some("the last saved clustering is missing or empty; its newest intact copy (covering 3 transactions) is used")
    );
    assert!(back.sync(&a.0));
    assert_eq!(back.covered_txs, 5);
    assert_eq!(back.merges, cl.merges);
    back.save().unwrap();
    // A completed save leaves its stamp (what a serving process watches).
    let stamp = std::fs::read_to_string(Clustering::saved_stamp(d.path())).unwrap();
    assert!(stamp.starts_with("5 "), "{stamp}");
    assert_eq!(Clustering::saved_token(d.path()), Some(stamp.clone()));
    // A save that another landed before is not made: its caller held an older token.
    let stale = Some("0 0-0\n".to_string());
    assert_eq!(back.save_unless_saved_since(&stale).unwrap(), None);
    assert_eq!(Clustering::saved_token(d.path()), Some(stamp.clone()));
    let next = back.save_unless_saved_since(&Some(stamp)).unwrap().unwrap();
    assert_eq!(Clustering::saved_token(d.path()), Some(next));
    let again = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert_eq!(again.covered_txs, 5);
    assert_eq!(again.open_note, None);
    assert_eq!(again.cluster_of(a.addr(1)), again.cluster_of(a.addr(2)));
    // A damaged state file is no dead end either: the newest intact copy is used.
    std::fs::write(d.path().join("state.json"), b"{garbage").unwrap();
    let mut damaged = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert_eq!(damaged.covered_txs, 5);
    let note = damaged.open_note.clone().unwrap();
    assert!(
        note.contains("damaged state file") && note.contains("covering 5"),
        "{note}"
    );
    assert!(!damaged.sync(&a.0));
    assert_eq!(damaged.merges, cl.merges);
    // Saves from a version with another layout, here and before: rebuilt, and said so.
    damaged.save().unwrap();
    assert!(common::other_copy(d.path()).is_none(), "a whole copy");
    for dir in [d.path().to_path_buf(), common::current_copy(d.path())] {
        let f = dir.join("state.json");
        let mut st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        st["layout"] = 1.into();
        std::fs::write(&f, serde_json::to_vec(&st).unwrap()).unwrap();
    }
    let old = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    assert_eq!(old.covered_txs, 0);
    assert_eq!(
        old.open_note.as_deref(),
        Some("the saved clustering was saved by an older version (another layout): it is built again from the index")
    );
}

/// Opening waits while a save holds the clustering's lock (it replaces the files one by
/// one), so no state file is paired with another save's arrays.
#[test]
fn opening_waits_for_a_save_in_progress() {
    let a = joined_pair();
    let d = tempfile::tempdir().unwrap();
    let mut cl = Clustering::new(d.path(), NetParams::any_height());
    cl.update(&a.0);
    cl.save().unwrap();
    // A save in progress, as another process's would hold it.
    let lock = std::fs::File::create(d.path().join("LOCK")).unwrap();
    lock.lock().unwrap();
    let (done, opened) = std::sync::mpsc::channel();
    let dir = d.path().to_path_buf();
    let reader = std::thread::spawn(move || {
        let c = Clustering::open(&dir, NetParams::any_height()).unwrap();
        done.send(c.covered_txs).unwrap();
    });
    // Not while the save holds the lock...
    assert!(opened
        .recv_timeout(std::time::Duration::from_millis(300))
        .is_err());
    // ...and at once when it ends.
    drop(lock);
    let covered = opened
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    assert_eq!(covered, cl.covered_txs);
    reader.join().unwrap();
}

/// An output paying an address for the first time credits the address's own record
/// (`Clustering::apply`); one transaction paying a new address twice still counts once
/// for it, also after a save and a reopen (which takes every saved address as seen).
#[test]
fn a_new_address_paid_twice_by_one_transaction_counts_it_once() {
    let mut c = Chain::new();
    let f = c.tx(&[], &[(1, 1_000_000)]);
    let t = c.tx(&[(f, 0)], &[(2, 400_000), (2, 500_000), (3, 90_000)]);
    let d = tempfile::tempdir().unwrap();
    let mut cl = Clustering::new(d.path(), NetParams::any_height());
    cl.update(&c.0);
    let s = cl.summary(c.addr(2));
    assert_eq!((s.size, s.received, s.tx_count), (1, 900_000, 1));
    assert_eq!((s.first_seen_height, s.last_seen_height), (2, 2));
    assert_eq!(cl.summary(c.addr(3)).tx_count, 1);
    cl.save().unwrap();
    // After a reopen, address 2's coin is spent with address 3's, paying address 3 again:
    // seen before the save, so no longer new (its payment goes to the cluster's root).
    let j = c.tx(&[(t, 0), (t, 2)], &[(3, 100_000), (4, 150_000)]);
    let mut cl = Clustering::open(d.path(), NetParams::any_height()).unwrap();
    cl.update(&c.0);
    let s = cl.summary(c.addr(3));
    assert_eq!(s.size, 2, "addresses 2 and 3 joined by transaction {j}");
    // Transaction 2 touched two clusters (2 and 3, apart then) and counts for each;
    // transaction 3 touched one.
    assert_eq!((s.received, s.sent, s.tx_count), (1_090_000, 490_000, 3));
    assert_eq!((s.first_seen_height, s.last_seen_height), (2, 3));
    assert_eq!(cl.summary(c.addr(4)).tx_count, 1);
}
