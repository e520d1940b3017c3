//! Ingest throughput against the parse-and-hash ceiling, index size per transaction, peak
//! memory, and warm point-query latency. Run:
//!
//!   cargo bench -p cointrail-index --bench ingest                      # real blocks in testdata/
//!   COINTRAIL_BENCH_BLOCKS=/path/to/blocks cargo bench -p cointrail-index --bench ingest
//!
//! `COINTRAIL_BENCH_BLOCKS` is a Bitcoin Core blocks directory (e.g. the simulator's 10M-tx
//! chain: `cointrail simulate --txs 10000000 --out sim10m`, then `sim10m/blocks`).
//! The ceiling reads the same files, decodes every block and hashes every txid, nothing else.

use cointrail_chain::view::ChainView;
use cointrail_chain::Catalog;
use cointrail_index::{ingest, Index, IngestOptions, Source};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/btc/mainnet");
    let source = std::env::var("COINTRAIL_BENCH_BLOCKS")
        .ok()
        .map(PathBuf::from);
    let make_source = || match &source {
        Some(d) => Source::BlocksDir(d.clone()),
        None => Source::Files(
            (831328..=831335)
                .map(|h| root.join(format!("0{h}.bin")))
                .collect(),
        ),
    };
    let label = source
        .as_ref()
        .map_or("testdata 8 mainnet blocks 831328-831335".to_string(), |d| {
            d.display().to_string()
        });
    let runs: usize = std::env::var("COINTRAIL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    // Ceiling: read + decode + txid hashing, on one thread, same files.
    let mut ceil = Vec::new();
    let mut bytes = 0u64;
    let mut txs = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        let mut cat = Catalog::new();
        match make_source() {
            Source::BlocksDir(d) => cat.add_blocks_dir(&d).unwrap(),
            Source::Files(fs) => {
                for f in fs {
                    cat.add_file(&f).unwrap();
                }
            }
            Source::Etl(_) | Source::Blocks(_) => unreachable!("the benchmark reads block files"),
        }
        let mut r = cat.reader();
        bytes = 0;
        txs = 0;
        for e in &cat.entries {
            let raw = r.read_bytes(e).unwrap();
            bytes += raw.len() as u64;
            let b: bitcoin::Block = bitcoin::consensus::deserialize(&raw).unwrap();
            for tx in &b.txdata {
                std::hint::black_box(tx.compute_txid());
            }
            txs += b.txdata.len() as u64;
        }
        ceil.push(t.elapsed().as_secs_f64());
    }
    let ceil_s = median(&mut ceil);

    // Ingest into a fresh index each run; sample anonymous memory while it runs.
    let mut ing = Vec::new();
    let peak_anon = AtomicU64::new(0);
    let mut sizes = Vec::new();
    let mut last_dir = None;
    for _ in 0..runs {
        let d = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    peak_anon.fetch_max(status_kb("RssAnon:"), Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            });
            let mut idx = Index::open_writer(&d.path().join("index")).unwrap();
            let r = ingest(&mut idx, make_source(), &IngestOptions::default());
            // Stop the sampler before anything can panic, or the scope never ends.
            stop.store(true, Ordering::Relaxed);
            r.unwrap();
            sizes = idx.sizes();
        });
        ing.push(t.elapsed().as_secs_f64());
        last_dir = Some(d);
    }
    let ing_s = median(&mut ing);
    let dir = last_dir.unwrap();
    let idx = Index::open_reader(&dir.path().join("index")).unwrap();
    let ntx = idx.tx_count();
    assert_eq!(ntx, txs);

    println!("# ingest benchmark: {label}");
    println!(
        "blocks bytes {bytes}, transactions {txs}, inputs {}, outputs {}, addresses {}",
        idx.stats().input_count,
        idx.stats().output_count,
        idx.addr_count()
    );
    println!(
        "parse+hash ceiling: median {ceil_s:.3} s = {:.0} tx/s ({:.0} MB/s)",
        txs as f64 / ceil_s,
        bytes as f64 / ceil_s / 1e6
    );
    println!(
        "ingest:             median {ing_s:.3} s = {:.0} tx/s; ratio to ceiling {:.2}",
        txs as f64 / ing_s,
        ceil_s / ing_s
    );
    println!(
        "peak anonymous memory during ingest: {:.1} MB (VmHWM incl. mapped files: {:.1} MB)",
        peak_anon.load(Ordering::Relaxed) as f64 / 1024.0,
        status_kb("VmHWM:") as f64 / 1024.0
    );
    let core = [
        "blocks.bin",
        "tx_first_in.bin",
        "tx_first_out.bin",
        "tx_locktime.bin",
        "tx_version.bin",
        "in_prev.bin",
        "out_value.bin",
        "out_addr.bin",
        "out_spender.bin",
    ];
    let mut core_total = 0u64;
    println!("bytes per transaction:");
    for (name, b) in &sizes {
        let is_core = core.contains(&name.as_str());
        if is_core {
            core_total += b;
        }
        println!(
            "  {name:<20} {:>8.2}{}",
            *b as f64 / ntx as f64,
            if is_core { "  (core)" } else { "" }
        );
    }
    println!(
        "  core columns total   {:>8.2}",
        core_total as f64 / ntx as f64
    );

    // Warm point queries: tx and address (with under 1,000 outputs).
    let n = 2000.min(ntx as u32);
    let step = (ntx as u32 / n).max(1);
    let mut tx_lat = Vec::new();
    for pass in 0..2 {
        for k in 0..n {
            let t = k * step;
            let txid = cointrail_index::query::display_txid(idx.txid(t));
            let s = Instant::now();
            let found = idx.parse_txid(&txid).unwrap();
            std::hint::black_box(idx.tx_info(found));
            if pass == 1 {
                tx_lat.push(s.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let mut addr_lat = Vec::new();
    let na = 2000.min(idx.addr_count() as u32);
    let astep = (idx.addr_count() as u32 / na).max(1);
    for pass in 0..2 {
        for k in 0..na {
            let a = k * astep;
            let s_addr = idx.render_addr(a);
            let s = Instant::now();
            let id = idx.parse_address(&s_addr).unwrap();
            let info = idx.address_info(id, 1000);
            std::hint::black_box(&info);
            if pass == 1 && info.output_count < 1000 {
                addr_lat.push(s.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    println!(
        "warm point queries: tx median {:.1} µs, address (<1000 outputs) median {:.1} µs",
        median(&mut tx_lat),
        median(&mut addr_lat)
    );
}
