//! Clustering speed against its floor, and entity query latency. Run:
//!
//!   cargo bench -p cointrail-clustering --bench cluster              # a 100k-tx simulated chain
//!   COINTRAIL_BENCH_INDEX=DATA/index cargo bench -p cointrail-clustering --bench cluster
//!
//! The floor is one pass over the inputs column that fetches each input's address (what
//! common-input ownership must read at the least). Measured in the same run on the same
//! index: multi-input clustering alone, and with the `default` change rules (which also
//! read outputs, spenders and the inputs' values). Then warm queries: a cluster's
//! aggregates, and an entity's id through the guards.
//!
//! Each timed run also prints the CPU time the process used in it (other processes' load
//! stretches wall time far more), and the multi-input clustering prints a digest of its
//! answers, to check that a faster build answers the same. `COINTRAIL_BENCH_HARD_ONLY=1`
//! stops after the multi-input clustering.

use cointrail_chain::view::{ChainView, Prevout};
use cointrail_clustering::entities::NoTags;
use cointrail_clustering::{ChangeRules, Clustering, Entities, Guards, NetParams};
use std::time::Instant;

/// A chain with one exchange-size cluster: `n` deposit addresses funded `per_tx` to a
/// transaction, then swept `per_tx` at a time, each sweep paying one of its own addresses
/// and spent by the next sweep, so that common-input ownership joins all of them.
fn exchange_chain(n: u32, per_tx: u32) -> cointrail_chain::MemChain {
    use bitcoin::hashes::Hash;
    use bitcoin::{
        absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence,
        Transaction, TxIn, TxOut, WPubkeyHash, Witness,
    };
    let spk = |i: u32| {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&i.to_le_bytes());
        h[4] = 0xec;
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
    };
    let input = |previous_output| TxIn {
        previous_output,
        script_sig: ScriptBuf::new(),
        sequence: Sequence::MAX,
        witness: Witness::new(),
    };
    let tx = |input, output| Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input,
        output,
    };
    let mut c = cointrail_chain::MemChain::new();
    let mut prev: Option<OutPoint> = None;
    for k in 0..n / per_tx {
        let coinbase = TxIn {
            script_sig: ScriptBuf::from_bytes(k.to_le_bytes().to_vec()),
            ..input(OutPoint::null())
        };
        let outs = (0..per_tx)
            .map(|j| TxOut {
                value: Amount::from_sat(100_000),
                script_pubkey: spk(k * per_tx + j),
            })
            .collect();
        let fund = tx(vec![coinbase], outs);
        let fid = fund.compute_txid();
        c.push_tx(&fund, 2 * k);
        let mut ins: Vec<TxIn> = (0..per_tx).map(|j| input(OutPoint::new(fid, j))).collect();
        ins.extend(prev.map(input));
        let sweep = tx(
            ins,
            vec![TxOut {
                // Back to one of the swept addresses: the next sweep's input from it
                // joins this group to the next.
                value: Amount::from_sat(50_000),
                script_pubkey: spk(k * per_tx),
            }],
        );
        prev = Some(OutPoint::new(sweep.compute_txid(), 0));
        c.push_tx(&sweep, 2 * k + 1);
    }
    c
}

/// Call `f` with each address a transaction of two inputs or more spends from; false (and
/// no call) for one with fewer.
fn spent_addrs(idx: &cointrail_index::Index, tx: u32, mut f: impl FnMut(u32)) -> bool {
    let r = idx.tx_inputs(tx);
    if r.end - r.start < 2 {
        return false;
    }
    for i in r {
        if let Prevout::Output(o) = idx.input_prevout(i) {
            if let Some(a) = idx.output_addr(o) {
                f(a);
            }
        }
    }
    true
}

/// The bare references' union-find: path halving, and the smaller root id wins.
fn find(p: &mut [u32], mut a: u32) -> u32 {
    while p[a as usize] != a {
        let g = p[p[a as usize] as usize];
        p[a as usize] = g;
        a = g;
    }
    a
}

/// Join `a` to a transaction's group, whose root so far is `root`.
fn join(p: &mut [u32], root: &mut Option<u32>, a: u32) {
    let ra = find(p, a);
    match *root {
        None => *root = Some(ra),
        Some(r0) if r0 != ra => {
            let (lo, hi) = (r0.min(ra), r0.max(ra));
            p[hi as usize] = lo;
            *root = Some(lo);
        }
        _ => {}
    }
}

/// Hashes of what a clustering answers: every address's cluster id, every address's
/// cluster summary, the merge log, and each address's successor in its member list, plus
/// the CoinJoin counts. Two builds that print the same line give the same answers (compare
/// before and after a change to the clustering's code).
fn digest(c: &Clustering) -> String {
    use std::hash::{Hash, Hasher};
    let h = || std::collections::hash_map::DefaultHasher::new();
    let (mut ids, mut sums, mut merges, mut next) = (h(), h(), h(), h());
    for a in 0..c.addr_count() as u32 {
        c.cluster_of(a).hash(&mut ids);
        let s = c.summary(a);
        (
            s.cluster_id,
            s.size,
            s.received,
            s.sent,
            s.tx_count,
            s.first_seen_height,
            s.last_seen_height,
        )
            .hash(&mut sums);
        c.addresses(a, 1, 1).hash(&mut next);
    }
    for m in c.merges.iter() {
        (m.tx, m.a, m.b).hash(&mut merges);
    }
    format!(
        "digest: cluster ids {:016x}, summaries {:016x}, merges {} {:016x}, member lists {:016x}, CoinJoins skipped {} {:?}",
        ids.finish(),
        sums.finish(),
        c.merges.len(),
        merges.finish(),
        next.finish(),
        c.coinjoins_skipped,
        c.coinjoins_by_protocol
    )
}

/// CPU seconds this process has used (all its threads, user and system), from
/// `/proc/self/stat` (0 where there is none): on a shared machine, a figure that other
/// processes' load does not stretch as it stretches wall time.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime, stime are the
    // 12th and 13th.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, label) = match std::env::var("COINTRAIL_BENCH_INDEX") {
        Ok(d) => (std::path::PathBuf::from(&d), d),
        Err(_) => {
            let mut cfg = cointrail_sim::SimConfig::demo();
            cfg.txs = 100_000;
            let sim = tmp.path().join("sim");
            cointrail_sim::simulate(&cfg, &sim, &mut |_, _| {}).unwrap();
            let mut idx = cointrail_index::Index::open_writer(&tmp.path().join("index")).unwrap();
            cointrail_index::ingest(
                &mut idx,
                cointrail_index::Source::BlocksDir(sim.join("blocks")),
                &Default::default(),
            )
            .unwrap();
            drop(idx);
            (
                tmp.path().join("index"),
                "simulated 100k txs (demo config)".into(),
            )
        }
    };
    let idx = cointrail_index::Index::open_reader(&dir).unwrap();
    let runs: usize = std::env::var("COINTRAIL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let params = if idx.network() == Some(bitcoin::Network::Bitcoin) {
        NetParams::mainnet()
    } else {
        NetParams::any_height()
    };
    let (txs, ins) = (idx.tx_count(), idx.stats().input_count);
    println!(
        "index: {label}: {txs} txs, {ins} inputs, {} addresses",
        idx.addr_count()
    );

    // How many transactions each CoinJoin detector flags (issue 4 asks this of the 8 real
    // mainnet blocks: COINTRAIL_BENCH_INDEX=<their index>).
    let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
    let (cpu, t0) = (cpu_secs(), Instant::now());
    for t in 0..txs as u32 {
        if let Some(cj) = cointrail_clustering::detect_coinjoin(&idx, t, &params) {
            *by.entry(cj.protocol).or_default() += 1;
        }
    }
    println!(
        "CoinJoins by detector: {by:?} (of {txs} txs; detection over every transaction on one thread: {:.2} s, CPU {:.2} s)",
        t0.elapsed().as_secs_f64(),
        cpu_secs() - cpu
    );

    let mut floor = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut acc = 0u64;
        for i in 0..ins {
            if let Prevout::Output(o) = idx.input_prevout(i) {
                acc = acc.wrapping_add(idx.output_addr(o).unwrap_or(0) as u64);
            }
        }
        std::hint::black_box(acc);
        floor.push(t.elapsed().as_secs_f64());
    }
    let floor = median(&mut floor);
    println!("floor (inputs column → address): median {floor:.2} s");

    // Reference: union-find alone over the same inputs (no CoinJoin detection, no
    // aggregates, no merge log, no member lists): the least any common-input clustering
    // does beyond the floor.
    let mut bare = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut parent: Vec<u32> = (0..idx.addr_count() as u32).collect();
        for tx in 0..txs as u32 {
            let mut root = None;
            spent_addrs(&idx, tx, |a| join(&mut parent, &mut root, a));
        }
        std::hint::black_box(&parent);
        bare.push(t.elapsed().as_secs_f64());
    }
    println!("bare union-find runs: {bare:.2?} s");

    // Reference: the same union-find with the reading on a second thread (what the
    // clustering's pipeline does): the least any two-thread union-find costs here.
    let mut piped = Vec::new();
    let mut piped_cpu = Vec::new();
    for _ in 0..runs {
        let c = cpu_secs();
        let t = Instant::now();
        let mut parent: Vec<u32> = (0..idx.addr_count() as u32).collect();
        let (send, recv) = std::sync::mpsc::sync_channel::<(Vec<u32>, Vec<u32>)>(8);
        std::thread::scope(|s| {
            let idx = &idx;
            s.spawn(move || {
                let mut tx = 0u32;
                while (tx as u64) < txs {
                    let end = (tx as u64 + 4096).min(txs) as u32;
                    let (mut addrs, mut ends) = (Vec::new(), Vec::new());
                    for t in tx..end {
                        if spent_addrs(idx, t, |a| addrs.push(a)) {
                            ends.push(addrs.len() as u32);
                        }
                    }
                    if send.send((addrs, ends)).is_err() {
                        return;
                    }
                    tx = end;
                }
            });
            for (addrs, ends) in recv {
                let mut start = 0usize;
                for e in ends {
                    let group = &addrs[start..e as usize];
                    start = e as usize;
                    let mut root = None;
                    for &a in group {
                        join(&mut parent, &mut root, a);
                    }
                }
            }
        });
        std::hint::black_box(&parent);
        piped.push(t.elapsed().as_secs_f64());
        piped_cpu.push(cpu_secs() - c);
    }
    println!("bare union-find, reading on a second thread, runs: {piped:.2?} s (CPU of both threads: {piped_cpu:.2?} s)");
    let piped = median(&mut piped);
    println!(
        "bare union-find, reading on a second thread: median {piped:.2} s = {:.2} × floor",
        piped / floor
    );
    let bare = median(&mut bare);
    println!(
        "bare union-find (reference): median {bare:.2} s = {:.2} × floor",
        bare / floor
    );

    let mut hard = Vec::new();
    let mut hard_cpu = Vec::new();
    let mut c = None;
    for _ in 0..runs {
        let cpu = cpu_secs();
        let t = Instant::now();
        let mut cl = Clustering::new(&tmp.path().join("cl"), params);
        cl.update(&idx);
        hard.push(t.elapsed().as_secs_f64());
        hard_cpu.push(cpu_secs() - cpu);
        c = Some(cl);
    }
    println!("multi-input clustering runs: {hard:.2?} s (CPU: {hard_cpu:.2?} s)");
    let hard = median(&mut hard);
    let hard_cpu = median(&mut hard_cpu);
    println!(
        "multi-input clustering: median {hard:.2} s = {:.2} × floor = {:.2} × bare union-find = {:.2} × the two-thread bare union-find (the goal: ≤ 2); CPU median {hard_cpu:.2} s = {:.2} × the two-thread union-find's",
        hard / floor,
        hard / bare,
        hard / piped,
        hard_cpu / median(&mut piped_cpu)
    );
    println!("{}", digest(c.as_ref().expect("at least one run")));
    if std::env::var("COINTRAIL_BENCH_HARD_ONLY").is_ok() {
        return;
    }
    let mut soft = Vec::new();
    let mut cs = None;
    for _ in 0..runs {
        let t = Instant::now();
        let mut cl = Clustering::new(&tmp.path().join("cs"), params)
            .with_change(ChangeRules::parse("default").unwrap(), 1008);
        cl.update(&idx);
        soft.push(t.elapsed().as_secs_f64());
        cs = Some(cl);
    }
    println!("with change rules runs: {soft:.2?} s");
    let soft = median(&mut soft);
    let cs = cs.unwrap();
    println!(
        "with default change rules: median {soft:.2} s = {:.2} × floor ({} soft links)",
        soft / floor,
        cs.change.as_ref().unwrap().links.len()
    );
    let t = Instant::now();
    let e = Entities::build(&cs, &NoTags, Guards::default());
    println!(
        "entities through the guards: {:.3} s",
        t.elapsed().as_secs_f64()
    );

    // An exchange-size cluster: a million addresses in one.
    let n = 1_000_000u32;
    let t = Instant::now();
    let ex = exchange_chain(n, 1_000);
    let built = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut big = Clustering::new(&tmp.path().join("ex"), NetParams::any_height());
    big.update(&ex);
    let clustered = t.elapsed().as_secs_f64();
    let member = n / 2;
    assert_eq!(big.size_of(member), n, "one cluster");
    let time = |f: &mut dyn FnMut()| {
        f();
        let t = Instant::now();
        for _ in 0..1000 {
            f();
        }
        t.elapsed().as_secs_f64() / 1000.0 * 1e9
    };
    let summary = time(&mut || {
        std::hint::black_box(big.summary(member));
    });
    let first_page = time(&mut || {
        std::hint::black_box(big.addresses(member, 0, 100));
    });
    let t = Instant::now();
    std::hint::black_box(big.addresses(member, n as usize / 2, 100));
    let deep_page = t.elapsed().as_secs_f64() * 1e3;
    let ents = Entities::build(&big, &NoTags, Guards::default());
    let entity = time(&mut || {
        std::hint::black_box(ents.entity_of(member));
    });
    println!(
        "exchange-size cluster ({} addresses; chain built in {built:.2} s, clustered in {clustered:.2} s): summary {summary:.0} ns, first page of 100 addresses {:.1} µs, entity id {entity:.0} ns, the page at offset {} {deep_page:.1} ms",
        big.size_of(member),
        first_page / 1e3,
        n / 2
    );

    // Warm queries over addresses spread across the id space.
    let c = c.unwrap();
    let n = c.addr_count() as u64;
    let k = 100_000u64.min(n);
    let pick = |i: u64| ((i * 2_654_435_761) % n) as u32;
    for _ in 0..2 {
        let t = Instant::now();
        for i in 0..k {
            std::hint::black_box(c.summary(pick(i)));
        }
        let per = t.elapsed().as_secs_f64() / k as f64;
        let t = Instant::now();
        for i in 0..k {
            std::hint::black_box(e.entity_of(pick(i)));
        }
        let per_e = t.elapsed().as_secs_f64() / k as f64;
        println!(
            "warm queries ({k}): cluster summary {:.0} ns, entity id {:.0} ns",
            per * 1e9,
            per_e * 1e9
        );
    }
}
