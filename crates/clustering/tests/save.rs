//! Incremental saves (`store.rs`): what is saved is what was in memory and what a rebuild
//! gives; readers never see a copy change under them; `kill -9` at any point of a save
//! leaves a saved generation; a one-block save writes a small part of a whole one.

use cointrail_chain::view::{AddrId, ChainView, Prevout, TxNum};
use cointrail_chain::AddressKey;
use cointrail_clustering::{ChangeRules, Clustering, NetParams};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

mod common;

/// The first `n` transactions of a chain, with the addresses they pay, and spends by
/// later transactions hidden (what a follower at that height sees).
struct Prefix<'a, V: ChainView>(&'a V, u64, u64);

impl<'a, V: ChainView> Prefix<'a, V> {
    fn new(v: &'a V, n: u64) -> Prefix<'a, V> {
        let addrs = (0..n as u32)
            .flat_map(|t| v.tx_outputs(t))
            .filter_map(|o| v.output_addr(o))
            .map(|a| a as u64 + 1)
            .max()
            .unwrap_or(0);
        Prefix(v, n, addrs)
    }
}

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
        self.0.output_spender(o).filter(|&s| (s as u64) < self.1)
    }
    fn output_tx(&self, o: u64) -> TxNum {
        self.0.output_tx(o)
    }
    fn addr_count(&self) -> u64 {
        self.2
    }
    fn addr_key(&self, a: AddrId) -> AddressKey {
        self.0.addr_key(a)
    }
    fn lookup_txid(&self, t: &[u8; 32]) -> Option<TxNum> {
        self.0.lookup_txid(t).filter(|&x| (x as u64) < self.1)
    }
    fn lookup_addr(&self, k: &AddressKey) -> Option<AddrId> {
        self.0.lookup_addr(k).filter(|&a| (a as u64) < self.2)
    }
}

/// Where each block ends.
fn block_ends(v: &impl ChainView) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut t = 0;
    while t < v.tx_count() {
        t = v.tx_block(t as TxNum).1.end as u64;
        ends.push(t);
    }
    ends
}

/// A digest of the clustering's answers (independent of how compressed its union-find
/// paths are): every address's cluster and summary and member-list successor, the merge
/// log, the change links, the counters.
fn answers(c: &Clustering) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    let mut eat = |x: u64| h = (h ^ x).wrapping_mul(0x100000001b3);
    for a in 0..c.addr_count() as AddrId {
        let s = c.summary(a);
        for x in [
            s.cluster_id as u64,
            s.size as u64,
            s.received,
            s.sent,
            s.tx_count as u64,
            s.first_seen_height as u64,
            s.last_seen_height as u64,
        ] {
            eat(x);
        }
        eat(c.addresses(a, 1, 1).first().map_or(u64::MAX, |&n| n as u64));
    }
    for m in c.merges.iter() {
        eat(((m.tx as u64) << 32) | m.a as u64);
        eat(m.b as u64);
    }
    if let Some(ch) = &c.change {
        for l in &ch.links {
            for b in l.to_bytes() {
                eat(b as u64);
            }
        }
    }
    eat(c.covered_txs);
    eat(c.coinjoins_skipped);
    h
}

fn rules() -> ChangeRules {
    ChangeRules::parse("default").unwrap()
}

fn fresh(dir: &Path, change: bool) -> Clustering {
    let c = Clustering::new(dir, NetParams::any_height());
    if change {
        c.with_change(rules(), 6)
    } else {
        c
    }
}

/// Built at once to half the chain, then followed block by block with a save after each
/// (and the follower restarted from its save now and then): every save opens again as
/// what was in memory, byte for byte; whole copies are written only by the first two
/// saves (there is no other copy before) and when the chain outgrows a copy's room (a
/// quarter more addresses); and the end answers as a clustering built at once.
#[test]
fn followed_with_a_save_each_block_equals_a_rebuild() {
    let d = tempfile::tempdir().unwrap();
    let (idx, _) = common::simulated(d.path(), 6_000, Some(11));
    let ends = block_ends(&idx);
    assert!(ends.len() > 20, "{} blocks", ends.len());
    for change in [false, true] {
        let dir = d.path().join(if change { "change" } else { "plain" });
        let mut cl = fresh(&dir, change);
        let (mut wholes, mut bytes, mut whole_bytes) = (vec![], 0u64, 0u64);
        let half = ends.len() / 2;
        for (k, &end) in ends.iter().enumerate().skip(half) {
            cl.update(&Prefix::new(&idx, end));
            cl.save().unwrap();
            let rep = cl.last_save().unwrap();
            if let Some(why) = rep.whole {
                wholes.push(why);
                whole_bytes = rep.bytes;
            } else {
                bytes += rep.bytes;
            }
            let back = Clustering::open(&dir, NetParams::any_height()).unwrap();
            assert_eq!(back.open_note, None);
            assert_eq!(back.covered_txs, end);
            assert_eq!(back.saved_digest(), cl.saved_digest(), "block {k}");
            if k % 7 == 3 {
                // The follower restarted: it goes on from its save.
                cl = back;
            }
        }
        assert_eq!(
            wholes[..2],
            ["not opened from the saved copies", "no other copy"]
        );
        assert!(
            wholes[2..]
                .iter()
                .all(|&w| w == "the other copy is outgrown or damaged"),
            "{wholes:?}"
        );
        let incremental = (ends.len() - half - wholes.len()) as u64;
        assert!(incremental * 2 > (ends.len() - half) as u64, "{wholes:?}");
        let per_save = bytes / incremental;
        println!(
            "change rules {change}: {} blocks followed, whole copies {wholes:?} ({whole_bytes} bytes the last), incremental saves {per_save} bytes on average",
            ends.len() - half
        );
        assert!(
            per_save * 4 < whole_bytes,
            "a block's save writes {per_save} bytes, a whole copy {whole_bytes}"
        );
        let mut one = fresh(&d.path().join("one"), change);
        one.update(&idx);
        let back = Clustering::open(&dir, NetParams::any_height()).unwrap();
        assert_eq!(answers(&back), answers(&one), "change rules: {change}");
        drop(back);
        // A reorganisation of the last block restarts from the other copy (the save
        // before), and the save after it brings that copy up to date in place.
        let before = ends[ends.len() - 2];
        cl.rollback_to(&Prefix::new(&idx, before), before);
        assert_eq!(cl.restarted_from, before);
        cl.update(&idx);
        cl.save().unwrap();
        assert_eq!(cl.last_save().unwrap().whole, None);
        let back = Clustering::open(&dir, NetParams::any_height()).unwrap();
        assert_eq!(back.saved_digest(), cl.saved_digest());
        assert_eq!(answers(&back), answers(&one));
    }
}

/// Readers open the clustering again and again while a writer follows the chain and
/// saves at every block. Each reader keeps what it opened until the writer has saved
/// twice more (a save writes into the copy that is not current, so the second would
/// write into the one the reader maps, were it not held), then checks that it still
/// holds exactly the generation it opened.
#[test]
fn readers_never_see_a_copy_change_under_them() {
    let d = tempfile::tempdir().unwrap();
    let (idx, _) = common::simulated(d.path(), 5_000, Some(5));
    let ends = block_ends(&idx);
    let dir = d.path().join("cl");
    let digests = Arc::new(Mutex::new(HashMap::<u64, u64>::new()));
    let saves = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let checked = std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (dir, digests, saves, done) = (&dir, &digests, &saves, &done);
                s.spawn(move || {
                    let mut checked = 0;
                    while !done.load(Ordering::Acquire) {
                        let c = Clustering::open(dir, NetParams::any_height()).unwrap();
                        if c.covered_txs == 0 {
                            continue;
                        }
                        assert_eq!(c.open_note, None);
                        let at = saves.load(Ordering::Acquire);
                        while saves.load(Ordering::Acquire) < at + 2
                            && !done.load(Ordering::Acquire)
                        {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        let want = digests.lock().unwrap()[&c.covered_txs];
                        assert_eq!(c.saved_digest(), want, "at {} txs", c.covered_txs);
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();
        let mut cl = fresh(&dir, true);
        let mut wholes = 0;
        for &end in &ends {
            cl.update(&Prefix::new(&idx, end));
            digests
                .lock()
                .unwrap()
                .insert(cl.covered_txs, cl.saved_digest());
            cl.save().unwrap();
            wholes += (cl.last_save().unwrap().whole == Some("the other copy is held by a reader"))
                as u32;
            saves.fetch_add(1, Ordering::Release);
        }
        done.store(true, Ordering::Release);
        let checked: u32 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        // Copies held by readers were not written: whole copies instead.
        assert!(wholes > 0, "no copy was held by a reader");
        checked
    });
    assert!(checked >= 10, "{checked} checks");
}

/// The child of `kill_9_during_saves_leaves_a_saved_generation`: follows the chain from
/// its save, a save per block, and when at the tip goes back (a reorganisation to a third
/// of the way), forever.
#[test]
fn save_child() {
    let (Ok(index), Ok(dir)) = (
        std::env::var("COINTRAIL_SAVE_CHILD_INDEX"),
        std::env::var("COINTRAIL_SAVE_CHILD_DIR"),
    ) else {
        return;
    };
    let idx = cointrail_index::Index::open_reader(Path::new(&index)).unwrap();
    let ends = block_ends(&idx);
    let dir = Path::new(&dir);
    let mut cl = Clustering::open(dir, NetParams::any_height()).unwrap();
    if cl.covered_txs == 0 && cl.change.is_none() {
        cl = fresh(dir, true);
    }
    loop {
        match ends.iter().find(|&&e| e > cl.covered_txs) {
            Some(&end) => cl.update(&Prefix::new(&idx, end)),
            None => {
                let back = ends[ends.len() / 3];
                cl.rollback_to(&Prefix::new(&idx, back), back);
            }
        }
        cl.save().unwrap();
    }
}

/// `kill -9` of a process that saves at every block, at random moments, again and again:
/// each time the clustering opens without complaint as a saved generation (what a build
/// at once to its height answers), and so does the copy before it; the next process goes
/// on from it.
#[test]
fn kill_9_during_saves_leaves_a_saved_generation() {
    if std::env::var("COINTRAIL_SAVE_CHILD_INDEX").is_ok() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (idx, _) = common::simulated(d.path(), 4_000, Some(9));
    drop(idx);
    let idx = cointrail_index::Index::open_reader(&d.path().join("index")).unwrap();
    let ends = block_ends(&idx);
    let dir = d.path().join("cl");
    let mut expected = HashMap::<u64, u64>::new();
    let mut want = |covered: u64| {
        *expected.entry(covered).or_insert_with(|| {
            let mut c = fresh(&d.path().join("expected"), true);
            c.update(&Prefix::new(&idx, covered));
            answers(&c)
        })
    };
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut heights = std::collections::BTreeSet::new();
    for round in 0..30 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "save_child", "--nocapture", "--test-threads=1"])
            .env("COINTRAIL_SAVE_CHILD_INDEX", d.path().join("index"))
            .env("COINTRAIL_SAVE_CHILD_DIR", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(30 + seed % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let c = Clustering::open(&dir, NetParams::any_height()).unwrap();
        if c.covered_txs == 0 {
            assert!(
                !dir.join("state.json").exists(),
                "round {round}: {:?}",
                c.open_note
            );
            continue;
        }
        assert_eq!(c.open_note, None, "round {round}");
        assert!(ends.contains(&c.covered_txs));
        assert_eq!(answers(&c), want(c.covered_txs), "round {round}");
        heights.insert(c.covered_txs);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        if let Some(o) = m["other"].as_str() {
            // The save before, unless it was being written when killed.
            let p = Clustering::open(&dir.join(o), NetParams::any_height()).unwrap();
            if p.covered_txs > 0 {
                assert_eq!(answers(&p), want(p.covered_txs), "round {round}, {o}");
            }
        }
    }
    assert!(heights.len() >= 5, "{heights:?}");
}
