//! The Ethereum side of the index: ingest throughput of ethereum-etl files against their
//! parse ceiling (read + parse + decode into movements, one thread, the same files, in
//! the same run), peak memory, open time, and warm `address` / `tx` latency. Run:
//!
//!   cargo bench -p cointrail-index --bench evm                 # the real rows in testdata/eth/etl
//!   COINTRAIL_BENCH_ETL=eth5m/etl COINTRAIL_BENCH_OUT=/big/disk cargo bench -p cointrail-index --bench evm
//!
//! `COINTRAIL_BENCH_ETL` is a folder of ethereum-etl files, e.g. the simulator's
//! (`cointrail simulate --chain ethereum --txs 5000000 --out eth5m`). The ingest is what
//! `cointrail ingest --chain ethereum` does: the same stream, `ingest_block`, a batch
//! commit every 500,000 transactions and a last full commit. `COINTRAIL_BENCH_KEEP=1`
//! keeps the last index built (its path is printed); `COINTRAIL_BENCH_INDEX=DIR` runs only
//! the open and query part on such an index.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use cointrail_evm::etl::read::etl_files;
use cointrail_evm::etl::BlockStream;
use cointrail_evm::movement::block_movements;
use cointrail_index::evm::EvmIndex;

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn env_u(name: &str, d: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    let dir = std::env::var("COINTRAIL_BENCH_ETL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/eth/etl"));
    let mut files = etl_files(&dir).expect("COINTRAIL_BENCH_ETL is a folder of ethereum-etl files");
    if std::env::var("COINTRAIL_BENCH_ETL").is_err() {
        // The fixtures of one range (the others are single tables of other blocks).
        files.retain(|p| {
            p.to_string_lossy().contains("17173049") && p.extension().is_some_and(|e| e == "json")
        });
    }
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let runs = env_u("COINTRAIL_BENCH_RUNS", 1);
    let every = env_u("COINTRAIL_BENCH_COMMIT_EVERY", 500_000);
    let out_root = std::env::var("COINTRAIL_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    println!(
        "ethereum-etl files: {} ({:.1} MB, {} files), {runs} run(s)",
        dir.display(),
        bytes as f64 / 1e6,
        files.len()
    );

    if let Ok(p) = std::env::var("COINTRAIL_BENCH_INDEX") {
        // Queries only, on an index built before (`COINTRAIL_BENCH_KEEP`).
        queries(Path::new(&p));
        return;
    }
    let (mut ceil, mut ing) = (Vec::new(), Vec::new());
    let (mut txs, mut mvs) = (0u64, 0u64);
    let mut peak_anon_all = 0u64;
    let mut last_dir = None;
    for run in 0..runs {
        // Ceiling: read + parse every row + check and decode every block into movements.
        let t = Instant::now();
        let (mut n_tx, mut n_mv) = (0u64, 0u64);
        for b in BlockStream::open(&files).unwrap() {
            let b = b.unwrap();
            n_tx += b.transactions.len() as u64;
            n_mv += block_movements(&b).unwrap().len() as u64;
        }
        let c = t.elapsed().as_secs_f64();
        ceil.push(c);
        (txs, mvs) = (n_tx, n_mv);

        // Ingest, with RssAnon sampled on the side.
        let d = tempfile::tempdir_in(&out_root).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let peak = std::sync::Arc::new(AtomicU64::new(0));
        let sampler = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kb("RssAnon:"), Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            })
        };
        let t = Instant::now();
        let mut idx = EvmIndex::open_writer(d.path(), "ethereum").unwrap();
        let mut since = 0;
        for b in BlockStream::open(&files).unwrap() {
            let b = b.unwrap();
            idx.ingest_block(&b).unwrap();
            since += b.transactions.len() as u64 + 1;
            if since >= every {
                idx.commit_batch().unwrap();
                since = 0;
            }
        }
        idx.commit().unwrap();
        drop(idx);
        let i = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        let p = peak.load(Ordering::Relaxed);
        peak_anon_all = peak_anon_all.max(p);
        ing.push(i);
        println!(
            "run {run}: ceiling {c:.2} s ({:.0} tx/s), ingest {i:.2} s ({:.0} tx/s), ratio {:.2}, peak RssAnon {:.1} MB",
            n_tx as f64 / c,
            n_tx as f64 / i,
            c / i,
            p as f64 / 1024.0
        );
        last_dir = Some(d);
    }
    let (c, i) = (pct(&mut ceil, 0.5), pct(&mut ing, 0.5));
    println!("transactions {txs}, movements {mvs}");
    println!(
        "parse ceiling (1 thread): median {c:.2} s = {:.0} tx/s ({:.0} MB/s)",
        txs as f64 / c,
        bytes as f64 / 1e6 / c
    );
    println!("ingest: median {i:.2} s = {:.0} tx/s", txs as f64 / i);
    println!("ratio ingest / ceiling: {:.2} (goal >= 0.4)", c / i);
    println!(
        "peak anonymous memory during ingest: {:.1} MB (VmHWM incl. mapped files: {:.1} MB)",
        peak_anon_all as f64 / 1024.0,
        status_kb("VmHWM:") as f64 / 1024.0
    );

    let d = last_dir.expect("at least one run");
    let size: u64 = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "index size: {:.1} MB = {:.0} bytes/tx",
        size as f64 / 1e6,
        size as f64 / txs.max(1) as f64
    );
    queries(d.path());
    if std::env::var("COINTRAIL_BENCH_KEEP").is_ok() {
        // For the serving benchmark: a data dir whose `ethereum/` is this index.
        let p = d.keep();
        println!(
            "index kept in {} (move it to DATA_DIR/ethereum)",
            p.display()
        );
    }
}

fn queries(dir: &Path) {
    let t = Instant::now();
    let idx = EvmIndex::open_reader(dir).unwrap();
    println!("open (reader): {:.2} ms", t.elapsed().as_secs_f64() * 1e3);

    // Warm point queries: the answers `cointrail tx` and `cointrail address` print
    // (address: balances per asset, counts, first/last seen, 20 recent movements).
    let st = idx.stats();
    let n = env_u("COINTRAIL_BENCH_QUERIES", 20_000)
        .min(st.transactions)
        .max(1);
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |m: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % m
    };
    let hashes: Vec<_> = (0..n).map(|_| idx.tx_hash(next(st.transactions))).collect();
    let addrs: Vec<_> = (0..n)
        .map(|_| idx.address_of(next(st.addresses) as u32))
        .collect();
    // Like Bitcoin's figure (addresses with < 1,000 outputs), the ordinary addresses
    // apart: an address answer walks its whole history (balances at any block), so a
    // service with millions of movements takes as long as its history.
    let small: Vec<usize> = (0..n as usize)
        .filter(|&k| {
            let s = idx.address_summary(&addrs[k], None, 0, None);
            s.movements_in + s.movements_out < 1_000
        })
        .collect();
    for (name, f) in [
        (
            "tx",
            &(|k: usize| {
                std::hint::black_box(idx.tx_summary(&hashes[k]).is_some());
            }) as &dyn Fn(usize),
        ),
        ("address", &|k: usize| {
            std::hint::black_box(idx.address_summary(&addrs[k], None, 20, None).movements_in);
        }),
    ] {
        for k in 0..n as usize {
            f(k); // warm
        }
        let mut lat: Vec<f64> = (0..n as usize)
            .map(|k| {
                let t = Instant::now();
                f(k);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let mean = lat.iter().sum::<f64>() / lat.len() as f64;
        if name == "address" {
            let mut sm: Vec<f64> = small.iter().map(|&k| lat[k]).collect();
            println!(
                "warm `address` over the {} of them with < 1,000 movements: median {:.1} us, p99 {:.1} us, max {:.0} us",
                sm.len(),
                pct(&mut sm, 0.5),
                pct(&mut sm, 0.99),
                pct(&mut sm, 1.0)
            );
        }
        println!(
            "warm `{name}` over {n} random {}: median {:.1} us, p99 {:.1} us, max {:.0} us, mean {:.1} us (goal < 1 ms)",
            if name == "tx" { "transactions" } else { "addresses" },
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            pct(&mut lat, 1.0),
            mean
        );
    }
}
