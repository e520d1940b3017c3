//! The live side end to end, as an operator runs it: a real regtest `bitcoind`, `cointrail
//! follow --once` after each block, alert rules and cases from the CLI and the API, the
//! engine's real hooks (case trace, exposure, nearest service, entities from
//! `attribution.tsv`), a label import that flags an address, and the service's live stream
//! of alerts (server-sent events) read by a plain HTTP client.

#[path = "../../follow/tests/common/mod.rs"]
mod common;
mod support;

use common::{coinbase_coin, spend, Coin, Key, Node};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use support::*;

fn follow(dir: &Path, node: &Node) -> Value {
    let out = bin()
        .arg("--data-dir")
        .arg(dir)
        .args(["--quiet", "--json", "follow", "--once", "--rpc"])
        .arg(node.url())
        .arg("--rpc-cookie")
        .arg(node.cookie())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "follow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    // One JSON report when something happened, nothing otherwise.
    s.lines()
        .find(|l| l.starts_with('{'))
        .map(|_| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null)
}

fn alerts(dir: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&cli(dir, &["--json", "alerts", "list", "--all"])).unwrap();
    v.as_array().unwrap().clone()
}

fn of_rule<'a>(all: &'a [Value], rule: &str) -> Vec<&'a Value> {
    all.iter().filter(|a| a["rule_id"] == rule).collect()
}

/// Read a server-sent event stream (chunked HTTP/1.1) and pass on each event's
/// (id, event, data as JSON).
fn sse(addr: &str, key: &str, tx: mpsc::Sender<(u64, String, Value)>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /v1/alerts/stream HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains(" 200 "), "stream answered {line}");
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("content-type") {
            assert!(line.contains("text/event-stream"), "{line}");
        }
    }
    let mut buf = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            return;
        }
        let n = usize::from_str_radix(line.trim(), 16).unwrap();
        let mut chunk = vec![0u8; n + 2];
        r.read_exact(&mut chunk).unwrap();
        buf.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            let (mut id, mut name, mut data) = (None, String::new(), String::new());
            for l in ev.lines() {
                if let Some(v) = l.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = l.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = l.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                if tx
                    .send((id, name, serde_json::from_str(&data).unwrap()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

#[test]
fn case_drain_exposure_and_flag_alerts_reach_the_log_and_the_stream() {
    let Some(node) = Node::start() else { return };
    let (miner, hot, thief, mule, deposit, stash, sanctioned) = (
        Key::new(31),
        Key::new(32),
        Key::new(33),
        Key::new(34),
        Key::new(35),
        Key::new(36),
        Key::new(37),
    );
    // The exchange's hot wallet mines blocks 1-3 (150 BTC); coinbases mature at 101+.
    node.mine(3, &hot.addr);
    node.mine(100, &miner.addr);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    follow(&dir, &node);
    let stats: Value = serde_json::from_str(&cli(&dir, &["--json", "stats"])).unwrap();
    assert_eq!(stats["tip_height"], 103);

    // Who is who: the victim exchange, and the exchange the thief cashes out at.
    std::fs::write(
        dir.join("attribution.tsv"),
        format!(
            "{}\texchange\tVictimEx\n{}\texchange\tCashOutEx\n",
            hot.addr, deposit.addr
        ),
    )
    .unwrap();
    // A drain rule on the victim named as an entity (resolved through its labels), and an
    // exposure rule on the mule's address.
    cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "drain",
            "--id",
            "hot",
            "--entity",
            "VictimEx",
            "--share-pct",
            "25",
            "--window-blocks",
            "6",
        ],
    );
    cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "exposure",
            "--id",
            "mule",
            "--address",
            &mule.addr.to_string(),
            "--min-level",
            "high",
        ],
    );
    cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "flagged-receive",
            "--id",
            "flag",
            "--category",
            "sanctions",
            "--lookback-blocks",
            "20",
        ],
    );

    // The heist: 49.9999 BTC of the hot wallet's 150 leave for the thief (33%).
    let loot_coin = coinbase_coin(&node, 1, 32);
    let heist = spend(
        std::slice::from_ref(&loot_coin),
        &[(thief.script(), loot_coin.value - 10_000)],
    );
    let heist_txid = heist.compute_txid().to_string();
    node.mine_txs(&miner.addr, std::slice::from_ref(&heist));
    let r = follow(&dir, &node);
    assert_eq!(r["blocks_added"], 1, "{r}");
    let all = alerts(&dir);
    let drain = of_rule(&all, "hot");
    assert_eq!(drain.len(), 1, "{all:#?}");
    assert_eq!(drain[0]["txid"], heist_txid.as_str());
    assert_eq!(drain[0]["details"]["window_sent_sats"], loot_coin.value);
    let share = drain[0]["details"]["share_pct"].as_f64().unwrap();
    assert!((share - 33.33).abs() < 0.1, "{share}");

    // The investigator registers the theft and watches it; the trace's frontier is the
    // thief's output, dormant for now.
    cli(&dir, &["case", "create", "heist", "--from-tx", &heist_txid]);
    let rule: Value = serde_json::from_str(&cli(
        &dir,
        &[
            "--json",
            "alerts",
            "rules",
            "add",
            "traced-spend",
            "--case",
            "heist",
            "--id",
            "loot",
        ],
    ))
    .unwrap();
    assert_eq!(rule["follow_hops"], 10, "{rule}");
    node.mine(1, &miner.addr);
    follow(&dir, &node);
    assert!(
        of_rule(&alerts(&dir), "loot").is_empty(),
        "dormant funds raise nothing"
    );

    // The service streams alerts as they are written.
    let write = cli(&dir, &["keys", "create", "ops", "--scope", "write"])
        .trim()
        .to_string();
    let write = write
        .split_whitespace()
        .find(|w| w.starts_with("ct_"))
        .unwrap()
        .to_string();
    let server = Server::start(&dir, &[]);
    let (tx, rx) = mpsc::channel();
    {
        let (addr, key) = (server.addr.clone(), write.clone());
        std::thread::spawn(move || sse(&addr, &key, tx));
    }
    std::thread::sleep(Duration::from_millis(300));

    // The loot moves: 10 BTC to the mule, the rest to a stash. The miner pays the
    // (not yet listed) sanctioned address in the same block.
    let thief_coin = Coin {
        outpoint: bitcoin::OutPoint::new(heist.compute_txid(), 0),
        value: heist.output[0].value.to_sat(),
        key: 33,
    };
    let to_mule = 1_000_000_000u64;
    let peel = spend(
        std::slice::from_ref(&thief_coin),
        &[
            (mule.script(), to_mule),
            (stash.script(), thief_coin.value - to_mule - 10_000),
        ],
    );
    let m = coinbase_coin(&node, 4, 31);
    let pay_sanctioned = spend(
        std::slice::from_ref(&m),
        &[(sanctioned.script(), m.value - 10_000)],
    );
    node.mine_txs(&miner.addr, &[peel.clone(), pay_sanctioned.clone()]);
    follow(&dir, &node);
    let all = alerts(&dir);
    let loot = of_rule(&all, "loot");
    assert_eq!(loot.len(), 1, "{all:#?}");
    assert_eq!(loot[0]["vout"], 0);
    assert_eq!(
        loot[0]["details"]["spending_txid"],
        peel.compute_txid().to_string()
    );
    assert_eq!(loot[0]["details"]["traced_sats"], thief_coin.value);
    // The mule received stolen funds: the exposure hook screened the output for real.
    let mule_alerts = of_rule(&all, "mule");
    assert_eq!(mule_alerts.len(), 1, "{all:#?}");
    assert_eq!(mule_alerts[0]["details"]["exposure"]["level"], "severe");
    assert!(
        mule_alerts[0]["summary"]
            .as_str()
            .unwrap()
            .contains("heist"),
        "{}",
        mule_alerts[0]["summary"]
    );

    // The mule pays the cash-out exchange: the frontier moved to the mule's output (its
    // traced share, exact to the satoshi), and the alert names the service it reached.
    let mule_coin = Coin {
        outpoint: bitcoin::OutPoint::new(peel.compute_txid(), 0),
        value: to_mule,
        key: 34,
    };
    let cash_out = spend(&[mule_coin], &[(deposit.script(), to_mule - 5_000)]);
    node.mine_txs(&miner.addr, std::slice::from_ref(&cash_out));
    follow(&dir, &node);
    let all = alerts(&dir);
    let loot = of_rule(&all, "loot");
    assert_eq!(loot.len(), 2, "{all:#?}");
    let hop = loot[1];
    assert_eq!(hop["txid"], peel.compute_txid().to_string());
    assert_eq!(hop["details"]["hops_from_root"], 1);
    // The whole output was traced (every satoshi of the peel's input was stolen).
    assert_eq!(hop["details"]["traced_sats"], to_mule);
    assert_eq!(hop["details"]["nearest_service_hops"], 0);
    assert_eq!(
        hop["details"]["destinations"][0]["nearest_service"]["service"],
        "CashOutEx (exchange)"
    );

    // Every alert written while the stream was open arrived on it, in order, once.
    let mut streamed = Vec::new();
    while let Ok(ev) = rx.recv_timeout(Duration::from_secs(10)) {
        assert_eq!(ev.1, "alert");
        streamed.push(ev);
        if streamed.len() == 3 {
            break;
        }
    }
    let want: Vec<String> = all
        .iter()
        .filter(|a| a["rule_id"] != "hot")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let got: Vec<String> = streamed
        .iter()
        .map(|e| e.2["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    assert!(streamed.windows(2).all(|w| w[0].0 < w[1].0));

    // A label import flags the sanctioned address: the payment two blocks back alerts now.
    let out = cli(
        &dir,
        &[
            "--json",
            "labels",
            "add",
            &sanctioned.addr.to_string(),
            "Sanctioned Party",
            "--category",
            "sanctions",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["alerts"], 1, "{out}");
    let flag = of_rule(&alerts(&dir), "flag")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(flag.len(), 1);
    assert_eq!(flag[0]["txid"], pay_sanctioned.compute_txid().to_string());
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the flag alert streamed");
    assert_eq!(ev.2["id"], flag[0]["id"]);

    // The API: list, acknowledge, and manage rules.
    let r = http(
        &server.addr,
        "GET",
        "/v1/alerts?limit=2",
        Some(&write),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["alerts"].as_array().unwrap().len(), 2);
    let id = flag[0]["id"].as_str().unwrap();
    let body = json!({"ids": [&id[..10]]}).to_string();
    let r = http(
        &server.addr,
        "POST",
        "/v1/alerts/ack",
        Some(&write),
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["acknowledged"], 1);
    assert!(!alerts(&dir)
        .iter()
        .any(|a| a["id"] == id && a["acked"] == false));
    let rule = json!({"id": "api-drain", "kind": "drain", "addresses": [deposit.addr.to_string()],
        "threshold_sats": 100_000_000u64, "window_blocks": 3})
    .to_string();
    let r = http(
        &server.addr,
        "POST",
        "/v1/alerts/rules",
        Some(&write),
        Some(&rule),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let bad = json!({"kind": "drain", "addresses": [deposit.addr.to_string()], "window_blocks": 3})
        .to_string();
    let r = http(
        &server.addr,
        "POST",
        "/v1/alerts/rules",
        Some(&write),
        Some(&bad),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("--threshold-sats"),
        "{:?}",
        r.json()
    );
    let rules = cli(&dir, &["--json", "alerts", "rules", "list"]);
    assert!(rules.contains("api-drain"));
    let r = http(
        &server.addr,
        "DELETE",
        "/v1/alerts/rules/api-drain",
        Some(&write),
        None,
    );
    assert_eq!(r.status, 204);
    let r = http(
        &server.addr,
        "DELETE",
        "/v1/alerts/rules/api-drain",
        Some(&write),
        None,
    );
    assert_eq!(r.status, 404);
    // A reconnecting client resumes after the last event it saw.
    let first = streamed[0].0;
    let r = http(&server.addr, "GET", "/v1/alerts", Some(&write), None);
    assert_eq!(r.status, 200);
    let (tx2, rx2) = mpsc::channel();
    {
        let addr = server.addr.clone();
        let key = write.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            write!(s, "GET /v1/alerts/stream?after={first} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\r\n").unwrap();
            let mut b = [0u8; 65536];
            let mut acc = Vec::new();
            while let Ok(n) = s.read(&mut b) {
                if n == 0 {
                    break;
                }
                acc.extend_from_slice(&b[..n]);
                let text = String::from_utf8_lossy(&acc).to_string();
                if text.matches("event: alert").count() >= 3 {
                    let _ = tx2.send(text);
                    return;
                }
            }
        });
    }
    let text = rx2
        .recv_timeout(Duration::from_secs(10))
        .expect("resumed stream");
    assert!(
        !text.contains(&format!("id: {first}\n")),
        "resumes after, not at, {first}"
    );
    assert!(text.contains(&format!("id: {}\n", first + 1)), "{text}");
    assert!(server.stop().success());
}

fn cluster_of(dir: &Path, addr: &str) -> (u64, Vec<String>) {
    let v: Value = serde_json::from_str(&cli(dir, &["--json", "cluster", "show", addr])).unwrap();
    let addrs = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (v["cluster"]["size"].as_u64().unwrap(), addrs)
}

fn cluster_state(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("clusters/state.json")).unwrap()).unwrap()
}

/// `follow` keeps a built clustering at the tip: a block that merges two addresses merges
/// them at once, and a reorganisation that swaps that block for one with as many
/// transactions undoes the merge.
#[test]
fn clustering_follows_blocks_and_reorganisations() {
    let Some(node) = Node::start() else { return };
    let (miner, a, b) = (Key::new(41), Key::new(42), Key::new(43));
    node.mine(1, &a.addr);
    node.mine(1, &b.addr);
    node.mine(100, &miner.addr);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    follow(&dir, &node);
    cli(&dir, &["cluster", "build"]);
    let (a_s, b_s) = (a.addr.to_string(), b.addr.to_string());
    assert_eq!(cluster_of(&dir, &a_s).0, 1);

    // One transaction spends both coinbases: common-input ownership merges A and B.
    let (ca, cb) = (coinbase_coin(&node, 1, 42), coinbase_coin(&node, 2, 43));
    let merge = spend(
        &[ca.clone(), cb.clone()],
        &[(miner.script(), ca.value + cb.value - 20_000)],
    );
    let merged_block = node.mine_txs(&miner.addr, std::slice::from_ref(&merge));
    let r = follow(&dir, &node);
    assert_eq!(r["blocks_added"], 1, "{r}");
    let stats: Value = serde_json::from_str(&cli(&dir, &["--json", "stats"])).unwrap();
    // The follower saved the clustering itself, up to the new block.
    let st = cluster_state(&dir);
    assert_eq!(st["covered_txs"], stats["tx_count"], "{st}");
    // The last transaction applied is the merge (internal byte order, as the index keeps it).
    use bitcoin::hashes::Hash as _;
    let internal: String = merge
        .compute_txid()
        .to_byte_array()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert_eq!(st["last_txid"], json!(internal), "{st}");
    let (size, members) = cluster_of(&dir, &a_s);
    assert_eq!(size, 2);
    assert!(members.contains(&b_s), "{members:?}");

    // The block is replaced by one with as many transactions that merges nothing: A pays
    // the miner alone. The transaction count is unchanged; only the txids tell.
    node.call("invalidateblock", json!([merged_block]));
    let lone = spend(
        std::slice::from_ref(&ca),
        &[(miner.script(), ca.value - 10_000)],
    );
    node.mine_txs(&miner.addr, &[lone]);
    node.mine_txs(&miner.addr, &[]);
    let r = follow(&dir, &node);
    assert_eq!(r["blocks_rolled_back"], 1, "{r}");
    assert_eq!(r["blocks_added"], 2, "{r}");
    let stats: Value = serde_json::from_str(&cli(&dir, &["--json", "stats"])).unwrap();
    assert_eq!(cluster_state(&dir)["covered_txs"], stats["tx_count"]);
    let (size, members) = cluster_of(&dir, &a_s);
    assert_eq!(size, 1, "the merge left with its block: {members:?}");
    assert_eq!(cluster_of(&dir, &b_s).0, 1);
}
