//! The follower and the alerts against a real regtest bitcoind.

mod common;
#[path = "common/http_sink.rs"]
mod http_sink;

use bitcoin::hashes::Hash;
use cointrail_chain::{ChainView, Prevout};
use cointrail_follow::*;
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn follower(node: &Node, data: &std::path::Path) -> Follower {
    let rpc = RpcClient::new(&node.url(), Auth::Cookie(node.cookie())).unwrap();
    let engine = AlertEngine::open(data, Hooks::default()).unwrap();
    Follower::open(&data.join("index"), rpc, Some(engine)).unwrap()
}

fn index_tip(f: &Follower) -> String {
    let i = f.index();
    bitcoin::BlockHash::from_byte_array(i.block_hash(i.block_count() - 1)).to_string()
}

fn spender_of(f: &Follower, txid: &bitcoin::Txid, vout: u32) -> Option<[u8; 32]> {
    let i = f.index();
    let t = i.lookup_txid(&txid.to_byte_array())?;
    let o = i.tx_outputs(t).start + vout as u64;
    i.output_spender(o).map(|s| i.txid(s))
}

#[test]
fn follows_reorganisations_and_alerts_exactly_once() {
    let Some(node) = Node::start() else { return };
    let (a, b, c) = (Key::new(1), Key::new(2), Key::new(3));
    node.mine(101, &a.addr);
    let data = tempfile::tempdir().unwrap();
    let mut f = follower(&node, data.path());
    let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    f.add_listener(Box::new(Recorder(events.clone())));
    let r = f.sync_once().unwrap();
    assert_eq!(r.blocks_added, 102, "genesis + 101");
    assert_eq!(*events.lock().unwrap(), ["added 0..=101"]);
    assert_eq!(index_tip(&f), node.best());

    // Rules: the coinbase of block 1 is "loot"; A's addresses are a hot wallet.
    let loot = coinbase_coin(&node, 1, 1);
    let sink = http_sink::start(200);
    let dead = http_sink::start(500);
    {
        let e = f.engine_mut().unwrap();
        e.store()
            .add_webhook(&Webhook {
                name: "soc".into(),
                url: sink.url.clone(),
                secret: "0123456789abcdef-secret".into(),
            })
            .unwrap();
        e.store()
            .add_webhook(&Webhook {
                name: "down".into(),
                url: dead.url.clone(),
                secret: "0123456789abcdef-other".into(),
            })
            .unwrap();
    }
    add_rule(
        &mut f,
        Some("loot".into()),
        RuleKind::TracedSpend {
            case: None,
            outpoints: vec![format!("{}:{}", loot.outpoint.txid, loot.outpoint.vout)],
            follow_hops: 1,
        },
    );
    add_rule(
        &mut f,
        Some("hot".into()),
        RuleKind::Drain {
            addresses: vec![a.addr.to_string()],
            entity: None,
            threshold_sats: Some(20 * 100_000_000),
            threshold_wei: None,
            share_pct: None,
            window_blocks: 3,
        },
    );
    let bad = add_rule_err(
        &mut f,
        RuleKind::Drain {
            addresses: vec![a.addr.to_string()],
            entity: None,
            threshold_sats: None,
            threshold_wei: None,
            share_pct: None,
            window_blocks: 3,
        },
    );
    assert!(bad.contains("--threshold-sats"), "{bad}");

    // The loot moves: 30 BTC to B, the rest (minus fee) to C.
    let tx1 = spend(
        std::slice::from_ref(&loot),
        &[
            (b.script(), 30 * 100_000_000),
            (c.script(), loot.value - 30 * 100_000_000 - 1_000),
        ],
    );
    node.send(&tx1);
    let mined = node.mine(1, &c.addr);
    let r = f.sync_once().unwrap();
    assert_eq!(r.blocks_added, 1);
    assert_eq!(index_tip(&f), mined[0]);
    assert_eq!(
        spender_of(&f, &loot.outpoint.txid, 0),
        Some(tx1.compute_txid().to_byte_array())
    );
    let alerts = f
        .engine_mut()
        .unwrap()
        .store()
        .list(&AlertFilter::default())
        .unwrap();
    let kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
    // Rules run in id order within a block: "hot" before "loot".
    assert_eq!(kinds, ["drain", "traced_spend"], "{alerts:#?}");
    let traced = &alerts[1];
    assert_eq!(
        traced.id,
        alert_id("loot", &loot.outpoint.txid.to_string(), 0)
    );
    assert_eq!(
        traced.details["spending_txid"],
        json!(tx1.compute_txid().to_string())
    );
    assert_eq!(
        traced.details["destinations"][0]["address"],
        json!(b.addr.to_string())
    );
    assert_eq!(
        traced.details["destinations"][0]["sats"],
        json!(30 * 100_000_000u64)
    );
    let drain = &alerts[0];
    assert_eq!(drain.details["window_sent_sats"], json!(loot.value));
    let first_ids: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();

    // Webhooks: the good endpoint gets both, signed; the failing one ends in dead letters.
    let store = f.engine_mut().unwrap().store().clone();
    let cfg = DeliveryConfig {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_attempts: 3,
        timeout: Duration::from_secs(5),
    };
    let t0 = Instant::now();
    while !store.outbox().unwrap().is_empty() {
        deliver_due(&store, &cfg).unwrap();
        std::thread::sleep(Duration::from_millis(15));
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "outbox never drained"
        );
    }
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for g in &got {
        let sig = g.header("X-Cointrail-Signature").unwrap();
        assert!(cointrail_follow::hmac::verify_signature(
            b"0123456789abcdef-secret",
            &g.body,
            sig
        ));
        assert!(!cointrail_follow::hmac::verify_signature(
            b"0123456789abcdef-other",
            &g.body,
            sig
        ));
        let a: Alert = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(Some(a.id.as_str()), g.header("X-Cointrail-Alert-Id"));
    }
    assert_eq!(dead.got.lock().unwrap().len(), 6, "2 alerts x 3 attempts");
    let dl = store.dead_letters().unwrap();
    assert_eq!(dl.len(), 2);
    assert!(dl
        .iter()
        .all(|d| d.webhook == "down" && d.attempts == 3 && d.last_error.contains("500")));

    // Reorganisation 1: the block is replaced by a longer branch that mines tx1 again.
    node.call("invalidateblock", json!([mined[0]]));
    node.mine_txs(&b.addr, std::slice::from_ref(&tx1));
    node.mine(1, &b.addr);
    let r = f.sync_once().unwrap();
    assert_eq!(
        (r.blocks_rolled_back, r.blocks_added, r.fork_height),
        (1, 2, Some(101))
    );
    assert_eq!(index_tip(&f), node.best());
    assert_eq!(
        spender_of(&f, &loot.outpoint.txid, 0),
        Some(tx1.compute_txid().to_byte_array())
    );
    let alerts = f
        .engine_mut()
        .unwrap()
        .store()
        .list(&AlertFilter::default())
        .unwrap();
    assert_eq!(
        alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        first_ids,
        "same events, same alerts"
    );
    assert!(alerts.iter().all(|a| !a.orphaned && a.height == 102));
    assert!(
        store.outbox().unwrap().is_empty(),
        "a replayed alert is not sent again"
    );

    // Reorganisation 2: a branch without tx1: the alerts stay in the log, marked orphaned,
    // and the index no longer links the spend.
    let fork_hash = node
        .call("getblockhash", json!([102]))
        .as_str()
        .unwrap()
        .to_string();
    node.call("invalidateblock", json!([fork_hash]));
    // Until the node has another branch it only looks behind: the index waits, unchanged.
    let before = index_tip(&f);
    let r = f.sync_once().unwrap();
    assert_eq!((r.node_behind, r.blocks_rolled_back), (Some(101), 0));
    assert_eq!(index_tip(&f), before);
    node.mine_txs(&c.addr, &[]);
    node.mine_txs(&c.addr, &[]);
    node.mine_txs(&c.addr, &[]);
    let r = f.sync_once().unwrap();
    assert_eq!((r.blocks_rolled_back, r.blocks_added), (2, 3));
    assert_eq!(index_tip(&f), node.best());
    assert_eq!(spender_of(&f, &loot.outpoint.txid, 0), None);
    let alerts = store.list(&AlertFilter::default()).unwrap();
    assert!(alerts.iter().all(|a| a.orphaned), "{alerts:#?}");

    // Restart everything; tx1 gets mined again: the alerts come back, not duplicated.
    drop(f);
    drop(store);
    let mut f = follower(&node, data.path());
    node.mine_txs(&c.addr, std::slice::from_ref(&tx1));
    let r = f.sync_once().unwrap();
    assert_eq!(r.blocks_added, 1);
    let alerts = f
        .engine_mut()
        .unwrap()
        .store()
        .list(&AlertFilter::default())
        .unwrap();
    assert_eq!(
        alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        first_ids
    );
    assert!(alerts.iter().all(|a| !a.orphaned && a.height == 105));

    // B's whole balance is the 30 BTC from the loot (the blocks mined to B were orphaned):
    // a drain rule by share sees 100% leave.
    add_rule(
        &mut f,
        Some("b-share".into()),
        RuleKind::Drain {
            addresses: vec![b.addr.to_string()],
            entity: None,
            threshold_sats: None,
            threshold_wei: None,
            share_pct: Some(90.0),
            window_blocks: 1,
        },
    );
    // One hop further: B spends what it got from the loot: the moved frontier fires.
    let b_coin = Coin {
        outpoint: bitcoin::OutPoint::new(tx1.compute_txid(), 0),
        value: 30 * 100_000_000,
        key: 2,
    };
    let tx2 = spend(&[b_coin], &[(a.script(), 30 * 100_000_000 - 500)]);
    node.mine_txs(&c.addr, std::slice::from_ref(&tx2));
    f.sync_once().unwrap();
    let alerts = f
        .engine_mut()
        .unwrap()
        .store()
        .list(&AlertFilter::default())
        .unwrap();
    assert_eq!(alerts.len(), 4);
    assert_eq!(
        (alerts[2].rule_id.as_str(), alerts[2].kind.as_str()),
        ("b-share", "drain")
    );
    assert_eq!(alerts[2].details["share_pct"], json!(100.0));
    assert_eq!(
        alerts[2].details["balance_before_sats"],
        json!(30 * 100_000_000u64)
    );
    assert_eq!(alerts[2].txid, tx2.compute_txid().to_string());
    assert_eq!(alerts[3].kind, "traced_spend");
    assert_eq!(alerts[3].details["hops_from_root"], json!(1));
    assert_eq!(alerts[3].txid, tx1.compute_txid().to_string());

    // Ack by prefix.
    let store = f.engine_mut().unwrap().store().clone();
    assert_eq!(store.ack(&[alerts[0].id[..10].to_string()]).unwrap(), 1);
    let open = store
        .list(&AlertFilter {
            unacked_only: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(open.len(), 3);
}

/// Records what a derived-state keeper (clustering, traces) is told.
struct Recorder(Arc<std::sync::Mutex<Vec<String>>>);

impl ChainListener for Recorder {
    fn rolled_back(&mut self, index: &cointrail_index::Index, fork: u32) -> Result<(), String> {
        assert_eq!(
            index.tip_height(),
            Some(fork),
            "told after the index rolled back"
        );
        self.0
            .lock()
            .unwrap()
            .push(format!("rolled back to {fork}"));
        Ok(())
    }
    fn blocks_added(
        &mut self,
        index: &cointrail_index::Index,
        first: u32,
        last: u32,
    ) -> Result<(), String> {
        assert_eq!(index.tip_height(), Some(last));
        self.0
            .lock()
            .unwrap()
            .push(format!("added {first}..={last}"));
        Ok(())
    }
}

fn add_rule(f: &mut Follower, id: Option<String>, kind: RuleKind) -> Rule {
    add_rule_res(f, id, kind).unwrap()
}

fn add_rule_err(f: &mut Follower, kind: RuleKind) -> String {
    add_rule_res(f, None, kind).unwrap_err().to_string()
}

fn add_rule_res(f: &mut Follower, id: Option<String>, kind: RuleKind) -> Result<Rule, StoreError> {
    // The engine needs the index to check addresses against its network and to date the rule.
    let (index, engine) = f.parts();
    engine.unwrap().add_rule(index, id, kind, String::new())
}

#[test]
fn clear_errors_for_bad_credentials_unreachable_node_and_wrong_network() {
    let Some(node) = Node::start() else { return };
    let bad = RpcClient::new(&node.url(), Auth::UserPass("nobody".into(), "wrong".into())).unwrap();
    let e = bad.get_blockchain_info().unwrap_err();
    assert!(matches!(e, RpcError::Auth(_)), "{e}");
    assert!(e.to_string().contains("--rpc-user"), "{e}");
    assert!(!e.is_transient());

    let nobody = RpcClient::new(&format!("http://127.0.0.1:{}", free_port()), Auth::None).unwrap();
    let e = nobody.get_best_block_hash().unwrap_err();
    assert!(
        matches!(e, RpcError::Unreachable { .. }) && e.is_transient(),
        "{e}"
    );
    assert!(e.to_string().contains("unreachable"), "{e}");

    let missing = RpcClient::new(
        &node.url(),
        Auth::Cookie(node.dir.path().join("nope/.cookie")),
    )
    .unwrap();
    let e = missing.get_best_block_hash().unwrap_err();
    assert!(e.to_string().contains("cookie"), "{e}");

    // An index holding mainnet's genesis refuses a regtest node.
    let data = tempfile::tempdir().unwrap();
    {
        let mut idx = cointrail_index::Index::open_writer(&data.path().join("index")).unwrap();
        let g = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin);
        let origin = cointrail_chain::Origin {
            file: "genesis".into(),
            offset: 0,
            kind: cointrail_chain::error::OriginKind::Byte,
        };
        let cb = cointrail_chain::ChainBlock::from_block(g, bitcoin::Network::Bitcoin, origin);
        cointrail_index::ingest(
            &mut idx,
            cointrail_index::Source::Blocks(vec![cb]),
            &Default::default(),
        )
        .unwrap();
    }
    let mut f = follower(&node, data.path());
    let e = f.sync_once().unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.to_string(), "the node is on regtest but the index holds mainnet: point --rpc at a mainnet node or use another --data-dir");

    // A method the node does not know gives its RPC error, named.
    let e = node.rpc.call("nosuchmethod", json!([])).unwrap_err();
    assert!(
        e.to_string()
            .contains("nosuchmethod failed: RPC error -32601"),
        "{e}"
    );
}

#[test]
fn run_loop_polls_and_catches_up_after_the_node_restarts() {
    let Some(mut node) = Node::start() else {
        return;
    };
    let a = Key::new(7);
    node.mine(5, &a.addr);
    let data = tempfile::tempdir().unwrap();
    let mut f = follower(&node, data.path());
    let stop = Arc::new(AtomicBool::new(false));
    let (tips_tx, tips) = std::sync::mpsc::channel::<Option<String>>();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        let cfg = FollowConfig {
            poll: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..Default::default()
        };
        f.run(&cfg, None, s2, |r| {
            let _ = tips_tx.send(r.tip_hash.clone());
        })
    });
    let wait_for = |want: &str| {
        let t0 = Instant::now();
        loop {
            if let Ok(Some(t)) = tips.recv_timeout(Duration::from_secs(1)) {
                if t == want {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "follower never reached {want}"
            );
        }
    };
    wait_for(&node.best());
    node.mine(3, &a.addr);
    wait_for(&node.best());
    // The node goes away for a while; the follower keeps retrying, then catches up.
    node.stop();
    std::thread::sleep(Duration::from_millis(1500));
    node.launch();
    node.mine(2, &a.addr);
    wait_for(&node.best());
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap().unwrap();
    let idx = cointrail_index::Index::open_reader(&data.path().join("index")).unwrap();
    assert_eq!(idx.tip_height(), Some(10));
    // Spend links of the chain followed live match the node: coinbases only, no prevouts.
    assert!(matches!(
        idx.input_prevout(idx.tx_inputs(10).start),
        Prevout::Coinbase
    ));
}

struct FromAddr(cointrail_chain::AddressKey);

impl ExposureCheck for FromAddr {
    /// High when the paying transaction spends from the "sanctioned" address.
    fn exposure(&self, chain: &dyn ChainView, out: u64) -> Option<Exposure> {
        let bad = chain.lookup_addr(&self.0)?;
        let t = chain.output_tx(out);
        let hit = chain.tx_inputs(t).any(|i| match chain.input_prevout(i) {
            Prevout::Output(p) => chain.output_addr(p) == Some(bad),
            _ => false,
        });
        hit.then(|| Exposure {
            level: RiskLevel::High,
            reason: "direct from sanctioned".into(),
        })
    }
}

struct Cases(Vec<WatchedOutput>);

impl TaintWatch for Cases {
    fn watched_outputs(&self, case: &str) -> Option<Vec<WatchedOutput>> {
        (case == "heist").then(|| self.0.clone())
    }
}

#[test]
fn exposure_flagged_label_and_case_rules_fire_through_their_hooks() {
    let Some(node) = Node::start() else { return };
    let (a, b, c, d) = (Key::new(21), Key::new(22), Key::new(23), Key::new(24));
    node.mine(102, &a.addr);
    let heist = coinbase_coin(&node, 2, 21);
    let data = tempfile::tempdir().unwrap();
    let hooks = Hooks {
        exposure: Some(Box::new(FromAddr(
            cointrail_chain::AddressKey::from_script(&a.script()).unwrap(),
        ))),
        taint: Some(Box::new(Cases(vec![WatchedOutput {
            txid: heist.outpoint.txid.to_string(),
            vout: 0,
            sats: heist.value,
        }]))),
        ..Default::default()
    };
    let rpc = RpcClient::new(&node.url(), Auth::Cookie(node.cookie())).unwrap();
    let engine = AlertEngine::open(data.path(), hooks).unwrap();
    let mut f = Follower::open(&data.path().join("index"), rpc, Some(engine)).unwrap();
    f.sync_once().unwrap();
    let mut live = f.engine_mut().unwrap().subscribe();
    add_rule(
        &mut f,
        Some("b-exposure".into()),
        RuleKind::Exposure {
            addresses: vec![b.addr.to_string()],
            entity: None,
            min_level: RiskLevel::High,
        },
    );
    add_rule(
        &mut f,
        Some("flagged".into()),
        RuleKind::FlaggedReceive {
            categories: vec!["sanctions".into()],
            lookback_blocks: 10,
        },
    );
    add_rule(
        &mut f,
        Some("case".into()),
        RuleKind::TracedSpend {
            case: Some("heist".into()),
            outpoints: vec![],
            follow_hops: 0,
        },
    );
    let e = add_rule_res(
        &mut f,
        None,
        RuleKind::TracedSpend {
            case: Some("nope".into()),
            outpoints: vec![],
            follow_hops: 0,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("no case named \"nope\""), "{e}");

    // A (sanctioned) pays B and C; the heist coin moves to D.
    let c1 = coinbase_coin(&node, 1, 21);
    let tx1 = spend(
        std::slice::from_ref(&c1),
        &[
            (b.script(), 10 * 100_000_000),
            (c.script(), c1.value - 10 * 100_000_000 - 1000),
        ],
    );
    let tx2 = spend(
        std::slice::from_ref(&heist),
        &[(d.script(), heist.value - 1000)],
    );
    node.mine_txs(&d.addr, &[tx1.clone(), tx2.clone()]);
    f.sync_once().unwrap();
    let store = f.engine_mut().unwrap().store().clone();
    let got = store.list(&AlertFilter::default()).unwrap();
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|x| (x.rule_id.as_str(), x.txid.as_str()))
        .collect();
    let (t1, t2, hs) = (
        tx1.compute_txid().to_string(),
        tx2.compute_txid().to_string(),
        heist.outpoint.txid.to_string(),
    );
    assert_eq!(
        kinds,
        [("b-exposure", t1.as_str()), ("case", hs.as_str())],
        "{got:#?}"
    );
    assert_eq!(got[0].vout, Some(0));
    assert_eq!(got[1].details["spending_txid"], serde_json::json!(t2));
    // The live stream saw the same alerts, in order.
    assert_eq!(live.try_recv().unwrap().id, got[0].id);
    assert_eq!(live.try_recv().unwrap().id, got[1].id);

    // A label import flags C: what C received in the last 10 blocks fires at once...
    let flag = FlaggedAddress {
        address: c.addr.to_string(),
        label: "Test OFAC entry".into(),
        category: "sanctions".into(),
        source: "sdn".into(),
    };
    let (index, engine) = f.parts();
    let fired = engine
        .unwrap()
        .labels_flagged(index, std::slice::from_ref(&flag))
        .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0].txid.as_str(), fired[0].vout),
        (t1.as_str(), Some(1))
    );
    // ...importing it again does not repeat it, and another category is ignored.
    let (index, engine) = f.parts();
    let e = engine.unwrap();
    assert!(e
        .labels_flagged(index, std::slice::from_ref(&flag))
        .unwrap()
        .is_empty());
    let other = FlaggedAddress {
        address: d.addr.to_string(),
        category: "scam".into(),
        ..flag.clone()
    };
    assert!(e.labels_flagged(index, &[other]).unwrap().is_empty());
    // ...and new funds reaching C fire when their block arrives.
    let c_coin = coinbase_coin(&node, 3, 21);
    let tx3 = spend(
        std::slice::from_ref(&c_coin),
        &[(c.script(), c_coin.value - 1000)],
    );
    node.mine_txs(&d.addr, std::slice::from_ref(&tx3));
    f.sync_once().unwrap();
    let got = store.list(&AlertFilter::default()).unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(
        (got[3].rule_id.as_str(), got[3].txid.clone()),
        ("flagged", tx3.compute_txid().to_string())
    );
    // A pays C again (not B): no exposure alert, since only B is watched.
    assert!(got.iter().filter(|x| x.rule_id == "b-exposure").count() == 1);
}

#[test]
fn zmq_rawblock_path_indexes_blocks_from_a_real_node() {
    let Some(node) = Node::start() else { return };
    let a = Key::new(31);
    node.mine(3, &a.addr);
    let data = tempfile::tempdir().unwrap();
    let mut f = follower(&node, data.path());
    f.sync_once().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in = rt.enter();
    let mut publ = <zeromq::PubSocket as zeromq::Socket>::new();
    let ep = rt
        .block_on(zeromq::Socket::bind(&mut publ, "tcp://127.0.0.1:0"))
        .unwrap()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let (ztx, zrx) = std::sync::mpsc::channel();
    let zl = cointrail_follow::zmq::spawn_listener(ep, ztx, stop.clone());
    let (tips_tx, tips) = std::sync::mpsc::channel();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        // Polling every 10 minutes: only ZMQ can make this follower move within the test.
        let cfg = FollowConfig {
            poll: Duration::from_secs(600),
            ..Default::default()
        };
        f.run(&cfg, Some(zrx), s2, |r| {
            let _ = tips_tx.send(r.tip_hash.clone());
        })
    });
    // The first sync, then the listener's "subscribed" resync: both report the old tip.
    let old = node.best();
    for _ in 0..2 {
        assert_eq!(
            tips.recv_timeout(Duration::from_secs(10)).unwrap(),
            Some(old.clone())
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tips.try_recv().is_err(),
        "nothing moves the follower but ZMQ"
    );
    for seq in 0..3u32 {
        let hash = node.mine(1, &a.addr).pop().unwrap();
        let raw = node.call("getblock", json!([hash, 0]));
        let bytes = hex::decode(raw.as_str().unwrap()).unwrap();
        let m = zeromq::ZmqMessage::try_from(vec![
            bytes::Bytes::from_static(b"rawblock"),
            bytes::Bytes::from(bytes),
            bytes::Bytes::copy_from_slice(&seq.to_le_bytes()),
        ])
        .unwrap();
        rt.block_on(zeromq::SocketSend::send(&mut publ, m)).unwrap();
        let got = tips
            .recv_timeout(Duration::from_secs(10))
            .expect("ZMQ woke the follower");
        assert_eq!(got.as_deref(), Some(hash.as_str()));
    }
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap().unwrap();
    zl.join().unwrap();
}

#[test]
fn alerts_catch_up_after_a_crash_between_index_and_alert_commits() {
    let Some(node) = Node::start() else { return };
    let (a, b) = (Key::new(41), Key::new(42));
    node.mine(101, &a.addr);
    let data = tempfile::tempdir().unwrap();
    let loot = coinbase_coin(&node, 1, 41);
    {
        let mut f = follower(&node, data.path());
        f.sync_once().unwrap();
        add_rule(
            &mut f,
            Some("loot".into()),
            RuleKind::TracedSpend {
                case: None,
                outpoints: vec![format!("{}:0", loot.outpoint.txid)],
                follow_hops: 0,
            },
        );
    }
    // The index moves on without the alert engine, as if the process died right after the
    // index commit.
    let tx = spend(
        std::slice::from_ref(&loot),
        &[(b.script(), loot.value - 1000)],
    );
    node.mine_txs(&b.addr, std::slice::from_ref(&tx));
    node.mine(2, &b.addr);
    {
        let rpc = RpcClient::new(&node.url(), Auth::Cookie(node.cookie())).unwrap();
        let mut bare = Follower::open(&data.path().join("index"), rpc, None).unwrap();
        assert_eq!(bare.sync_once().unwrap().blocks_added, 3);
    }
    // On restart the engine evaluates the three blocks it missed: one alert.
    let mut f = follower(&node, data.path());
    let r = f.sync_once().unwrap();
    assert_eq!((r.blocks_added, r.alerts), (0, 1));
    let e = r.engine.unwrap();
    assert_eq!(e.blocks_evaluated, 3);
    assert_eq!(e.alerts[0].height, 102);
    assert_eq!(
        e.alerts[0].details["spending_txid"],
        json!(tx.compute_txid().to_string())
    );
    drop(f);
    let mut f = follower(&node, data.path());
    assert_eq!(f.sync_once().unwrap().alerts, 0);
    let store = f.engine_mut().unwrap().store().clone();
    assert_eq!(store.list(&AlertFilter::default()).unwrap().len(), 1);
}
