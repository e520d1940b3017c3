//! Throughput of the simulator: `cargo run --release -p cointrail-sim --example simbench -- [TXS|demo] [OUT] [USERS] [SEED]`.
//! `demo` as TXS runs `SimConfig::demo()` unchanged. Defaults: 1,000,000 transactions into a temporary folder (removed afterwards).

use cointrail_sim::{simulate, SimConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let demo = args.get(1).map(|s| s == "demo").unwrap_or(false);
    let txs: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let keep = args.get(2).map(std::path::PathBuf::from);
    let tmp = std::env::temp_dir().join(format!("cointrail-simbench-{}", std::process::id()));
    let out = keep.clone().unwrap_or(tmp.clone());
    let mut cfg = if demo {
        SimConfig::demo()
    } else {
        SimConfig::for_txs(args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1), txs)
    };
    if let Some(u) = args.get(3).and_then(|s| s.parse().ok()) {
        cfg.users = u;
        cfg.merchants = (u / 25).max(20);
    }
    let t = Instant::now();
    let mut last = 0u64;
    let s = simulate(&cfg, &out, &mut |done, total| {
        if done >= last + total / 10 {
            last = done;
            eprintln!("{done}/{total} txs, {:.1}s", t.elapsed().as_secs_f64());
        }
    })
    .expect("simulate");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "txs {} blocks {} files {} bytes {} live_utxos {} in {:.2}s: {:.0} tx/s",
        s.txs,
        s.blocks,
        s.files,
        s.bytes,
        s.live_utxos,
        secs,
        s.txs as f64 / secs
    );
    println!("{}", serde_json::to_string(&s.heists).unwrap());
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
