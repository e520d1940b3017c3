//! Bytes a clustering's save writes: a whole copy (what every save wrote before
//! incremental saves) against a block's changes. Run:
//!
//!   COINTRAIL_BENCH_INDEX=DATA/index cargo bench -p cointrail-clustering --bench save
//!
//! (without an index, a simulated 100k-transaction chain). The clustering is built at
//! once up to `COINTRAIL_BENCH_BLOCKS` (default 6) blocks before the tip, then follows
//! them one at a time with a save after each, as the follower does. Each save prints what
//! it reported (whole copy or pages, bytes of array data), the bytes the process passed to
//! `write` calls (`wchar` in `/proc/self/io`: the arrays and the small state, lag and
//! stamp files), what the kernel counted as sent to storage (`write_bytes`: on kernels
//! whose page cache holds large folios, ext4 since 6.16, a 4 KB write into a cached 2 MB
//! folio counts 2 MB there although only the dirty 4 KB block is written), the sectors the
//! disk under the clustering wrote meanwhile (`/sys/dev/block/M:m/stat`: every process's
//! writes, so noisy on a shared machine; the saves sync their files, so theirs are in it),
//! and its time. The first two saves are whole copies (there is no other copy before
//! them), the rest write what changed. `COINTRAIL_BENCH_TMP` sets where the clustering is
//! written (a disk, not a tmpfs).

use cointrail_chain::view::{AddrId, ChainView, Prevout, TxNum};
use cointrail_chain::AddressKey;
use cointrail_clustering::{Clustering, NetParams};
use std::time::Instant;

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

/// A counter of `/proc/self/io` (`wchar`, `write_bytes`) so far.
fn proc_io(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let (k, v) = l.split_once(": ")?;
                (k == key).then(|| v.trim().parse().ok())?
            })
        })
        .unwrap_or(0)
}

/// Bytes written so far by the block device holding `dir` (sectors written × 512).
fn device_written(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let stat = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/stat")).ok()?;
    Some(stat.split_whitespace().nth(6)?.parse::<u64>().ok()? * 512)
}

fn main() {
    let tmp = match std::env::var("COINTRAIL_BENCH_TMP") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let idx = match std::env::var("COINTRAIL_BENCH_INDEX") {
        Ok(p) => cointrail_index::Index::open_reader(std::path::Path::new(&p)).unwrap(),
        Err(_) => {
            let mut cfg = cointrail_sim::SimConfig::demo();
            cfg.txs = 100_000;
            cfg.heists.clear();
            let sim = tmp.path().join("sim");
            cointrail_sim::simulate(&cfg, &sim, &mut |_, _| {}).unwrap();
            let mut idx = cointrail_index::Index::open_writer(&tmp.path().join("index")).unwrap();
            cointrail_index::ingest(
                &mut idx,
                cointrail_index::Source::BlocksDir(sim.join("blocks")),
                &Default::default(),
            )
            .unwrap();
            idx
        }
    };
    let blocks: usize = std::env::var("COINTRAIL_BENCH_BLOCKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let mut ends = Vec::new();
    let mut t = 0u64;
    while t < idx.tx_count() {
        t = idx.tx_block(t as TxNum).1.end as u64;
        ends.push(t);
    }
    let follow = &ends[ends.len() - blocks..];
    let start = ends[ends.len() - blocks - 1];
    let dir = tmp.path().join("clusters");
    let t0 = Instant::now();
    let mut cl = Clustering::new(&dir, NetParams::any_height());
    cl.update(&Prefix::new(&idx, start));
    println!(
        "chain: {} txs, {} addresses; built to {} txs ({} addresses) in {:.1}s",
        idx.tx_count(),
        idx.addr_count(),
        start,
        cl.addr_count(),
        t0.elapsed().as_secs_f64()
    );
    println!("save  covers(txs)  block txs  new addrs  kind                                 pages  array bytes        wchar  write_bytes  disk wrote   seconds");
    let mut prev = start;
    let (mut whole, mut part) = (Vec::new(), Vec::new());
    std::fs::create_dir_all(&dir).unwrap();
    for (k, &end) in std::iter::once(&start).chain(follow).enumerate() {
        let addrs_before = cl.addr_count();
        if end > prev {
            cl.update(&Prefix::new(&idx, end));
        }
        let (c0, w0, d0) = (
            proc_io("wchar"),
            proc_io("write_bytes"),
            device_written(&dir),
        );
        let t = Instant::now();
        cl.save().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let (wchar, wb) = (proc_io("wchar") - c0, proc_io("write_bytes") - w0);
        let disk = device_written(&dir)
            .zip(d0)
            .map_or("?".to_string(), |(a, b)| (a - b).to_string());
        let rep = cl.last_save().unwrap();
        println!(
            "{k:>4}  {end:>11}  {:>9}  {:>9}  {:<35}  {:>5}  {:>11}  {wchar:>11}  {wb:>11}  {disk:>10}  {secs:>8.3}",
            end - prev,
            cl.addr_count() - addrs_before,
            rep.whole.unwrap_or("the pages changed"),
            rep.pages,
            rep.bytes,
        );
        if rep.whole.is_some() {
            whole.push(wchar);
        } else {
            part.push(wchar);
        }
        prev = end;
    }
    part.sort_unstable();
    if let (Some(w), false) = (whole.last(), part.is_empty()) {
        let median = part[part.len() / 2];
        println!(
            "whole copy: {w} bytes written (wchar); a block's save: median {median} bytes ({:.2}% of a whole copy, {:.0}x fewer)",
            100.0 * median as f64 / *w as f64,
            *w as f64 / median.max(1) as f64
        );
    }
}
