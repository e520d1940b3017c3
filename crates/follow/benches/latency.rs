//! Latency from "the node accepted a block" to "the alert left" (webhook POST received by
//! a local sink), for blocks of many transactions on a real regtest bitcoind.
//!
//!   cargo bench -p cointrail-follow --bench latency            (5,000 txs, 6 blocks)
//!   BENCH_TXS=1000 BENCH_ROUNDS=4 cargo bench -p cointrail-follow --bench latency
//!
//! Two paths are measured:
//! - zmq: the block's bytes are published on a `zeromq` PUB socket the moment
//!   `generateblock` returns (as Core's -zmqpubrawblock does; the bitcoind built here lacks
//!   ZMQ), and the follower indexes it without further RPC.
//! - poll: the follower polls every 100 ms (the latency includes up to one interval).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/http_sink.rs"]
mod http_sink;

use cointrail_follow::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeromq::{Socket, SocketSend, ZmqMessage};

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    let n_txs = env("BENCH_TXS", 5000);
    let rounds = env("BENCH_ROUNDS", 6);
    let Some(node) = Node::start() else { return };
    let (a, miner) = (Key::new(11), Key::new(12));
    node.mine(110, &a.addr);
    // Fan out coinbases into n_txs coins of key a (2,500 outputs per tx keeps each standard-sized).
    let per = 2500.min(n_txs);
    let mut coins: Vec<Coin> = Vec::new();
    let mut fan = Vec::new();
    for (i, chunk_start) in (0..n_txs).step_by(per).enumerate() {
        let cnt = per.min(n_txs - chunk_start);
        let cb = coinbase_coin(&node, 1 + i as u32, 11);
        let each = (cb.value - 100_000) / cnt as u64;
        let tx = spend(&[cb], &vec![(a.script(), each); cnt]);
        let txid = tx.compute_txid();
        coins.extend((0..cnt).map(|v| Coin {
            outpoint: bitcoin::OutPoint::new(txid, v as u32),
            value: each,
            key: 11,
        }));
        fan.push(tx);
    }
    node.mine_txs(&miner.addr, &fan);

    let data = tempfile::tempdir().unwrap();
    let sink = http_sink::start(200);
    let rpc = RpcClient::new(&node.url(), Auth::Cookie(node.cookie())).unwrap();
    let mut engine = AlertEngine::open(data.path(), Hooks::default()).unwrap();
    engine
        .store()
        .add_webhook(&Webhook {
            name: "sink".into(),
            url: sink.url.clone(),
            secret: "bench-secret-0123456789".into(),
        })
        .unwrap();
    let store = engine.store().clone();
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    engine.set_delivery_waker(wake_tx);
    let mut f = Follower::open(&data.path().join("index"), rpc, Some(engine)).unwrap();
    let t = Instant::now();
    f.sync_once().unwrap();
    eprintln!(
        "initial catch-up of {} blocks: {:?}",
        f.index().block_count(),
        t.elapsed()
    );
    {
        let (index, engine) = f.parts();
        engine
            .unwrap()
            .add_rule(
                index,
                Some("hot".into()),
                RuleKind::Drain {
                    addresses: vec![a.addr.to_string()],
                    entity: None,
                    threshold_sats: Some(1),
                    threshold_wei: None,
                    share_pct: None,
                    window_blocks: 1,
                },
                String::new(),
            )
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let deliverer = spawn_deliverer(store, DeliveryConfig::default(), wake_rx, stop.clone());

    // ZMQ publisher the follower listens to.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in_rt = rt.enter();
    let mut publ = zeromq::PubSocket::new();
    let ep = rt
        .block_on(publ.bind("tcp://127.0.0.1:0"))
        .unwrap()
        .to_string();
    let (ztx, zrx) = std::sync::mpsc::channel();
    let zl = cointrail_follow::zmq::spawn_listener(ep, ztx, stop.clone());
    let (ev_tx, ev_rx) = std::sync::mpsc::channel();
    // Forward listener events, and let the bench switch the follower to polling by
    // dropping the forwarder's sender.
    let mode_zmq = Arc::new(AtomicBool::new(true));
    let mz = mode_zmq.clone();
    std::thread::spawn(move || {
        for e in zrx {
            if mz.load(Ordering::Relaxed) && ev_tx.send(e).is_err() {
                return;
            }
        }
    });
    let s2 = stop.clone();
    let runner = std::thread::spawn(move || {
        let cfg = FollowConfig {
            poll: Duration::from_millis(100),
            ..Default::default()
        };
        f.run(&cfg, Some(ev_rx), s2, |_| {}).unwrap();
    });
    std::thread::sleep(Duration::from_millis(500));

    let mut seq = 0u32;
    let mut results: Vec<(&str, Duration)> = Vec::new();
    for r in 0..rounds * 2 {
        let zmq_mode = r % 2 == 0;
        mode_zmq.store(zmq_mode, Ordering::Relaxed);
        let ts = Instant::now();
        let txs: Vec<_> = coins
            .iter()
            .map(|c| spend(std::slice::from_ref(c), &[(a.script(), c.value - 300)]))
            .collect();
        let sign = ts.elapsed();
        coins = txs
            .iter()
            .map(|t| Coin {
                outpoint: bitcoin::OutPoint::new(t.compute_txid(), 0),
                value: t.output[0].value.to_sat(),
                key: 11,
            })
            .collect();
        let before = sink.got.lock().unwrap().len();
        let tg = Instant::now();
        let hash = node.mine_txs(&miner.addr, &txs);
        let accepted = Instant::now();
        let gen = accepted - tg;
        let t0 = if zmq_mode {
            let raw = node.call("getblock", serde_json::json!([hash, 0]));
            let bytes = hex::decode(raw.as_str().unwrap()).unwrap();
            let t0 = Instant::now();
            let m = ZmqMessage::try_from(vec![
                bytes::Bytes::from_static(b"rawblock"),
                bytes::Bytes::from(bytes),
                bytes::Bytes::copy_from_slice(&seq.to_le_bytes()),
            ])
            .unwrap();
            seq += 1;
            rt.block_on(publ.send(m)).unwrap();
            t0
        } else {
            accepted
        };
        let arrived = loop {
            if let Some(g) = sink.got.lock().unwrap().get(before) {
                break g.at;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no alert for block {hash}"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let lat = arrived - t0;
        eprintln!(
            "{} block {hash}: {} txs, signing {sign:?}, generateblock {gen:?}, latency {lat:?}",
            if zmq_mode { "zmq " } else { "poll" },
            txs.len()
        );
        results.push((if zmq_mode { "zmq" } else { "poll" }, lat));
    }
    for mode in ["zmq", "poll"] {
        let mut v: Vec<Duration> = results
            .iter()
            .filter(|r| r.0 == mode)
            .map(|r| r.1)
            .collect();
        v.sort();
        println!(
            "{mode}: {} blocks of {n_txs} txs: median {:?}, worst {:?}",
            v.len(),
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap();
    deliverer.join().unwrap();
    zl.join().unwrap();
}
