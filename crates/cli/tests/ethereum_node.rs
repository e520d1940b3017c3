//! `follow --chain ethereum` and `export --format etl` against a real anvil: the scenario's
//! transactions (plain transfers, a failing one, internal calls through the Forwarder, a
//! CREATE with value, a SELFDESTRUCT, ERC-20 transfers) followed into one data dir, exported
//! as ethereum-etl files, ingested into another: both answer identically. A reorganisation
//! (evm_snapshot / evm_revert) leaves the index equal to a fresh follow of the new chain; a
//! node on another chain id is refused and the index stays as it was.

#[path = "../../evmrpc/tests/common/mod.rs"]
mod common;

use common::anvil::{Anvil, CHAIN_ID};
use common::scenario;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("COINTRAIL_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let o = run(data, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn ok_json(data: &Path, args: &[&str]) -> Value {
    let out = ok(data, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// `follow --once --json` prints one object per sync that changed something.
fn follow_once(data: &Path, url: &str) -> Vec<Value> {
    let out = ok(
        data,
        &[
            "--json", "follow", "--chain", "ethereum", "--rpc", url, "--once",
        ],
    );
    serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .map(|v| v.unwrap())
        .collect()
}

/// Every answer the index gives about what it holds: stats, verify, each block, each
/// address seen in a movement (balances and every movement), each transaction.
fn answers(data: &Path) -> Value {
    let stats = ok_json(data, &["--json", "stats", "--chain", "ethereum"]);
    let verify = ok_json(data, &["--json", "verify", "--chain", "ethereum"]);
    let (first, last) = (
        stats["first_block"].as_u64().unwrap(),
        stats["last_block"].as_u64().unwrap(),
    );
    let mut blocks = Vec::new();
    let mut addrs = BTreeSet::new();
    let mut txs = BTreeSet::new();
    for n in first..=last {
        let b = ok_json(
            data,
            &["--json", "block", &n.to_string(), "--chain", "ethereum"],
        );
        for m in b["movements"].as_array().unwrap() {
            addrs.insert(m["from"].as_str().unwrap().to_string());
            addrs.insert(m["to"].as_str().unwrap().to_string());
            if let Some(t) = m["tx"].as_str() {
                txs.insert(t.to_string());
            }
        }
        blocks.push(b);
    }
    let addresses: Vec<Value> = addrs
        .iter()
        .map(|a| ok_json(data, &["--json", "address", a, "--limit", "100000"]))
        .collect();
    let transactions: Vec<Value> = txs
        .iter()
        .map(|t| ok_json(data, &["--json", "tx", t]))
        .collect();
    json!({"stats": stats, "verify": verify, "blocks": blocks, "addresses": addresses, "transactions": transactions})
}

#[test]
fn followed_index_equals_its_etl_export_ingested() {
    let a = Anvil::start();
    let s = scenario::run(&a);
    let tmp = tempfile::tempdir().unwrap();
    let (da, db, out) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("export"),
    );

    let syncs = follow_once(&da, &a.url);
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    assert_eq!(syncs[0]["chain"], "ethereum");
    assert_eq!(syncs[0]["chain_id"], CHAIN_ID);
    assert_eq!(syncs[0]["blocks_added"], s.tip + 1);
    assert_eq!(syncs[0]["tip_number"], s.tip);
    // The scenario's ERC-20 was asked what it calls itself, once.
    assert_eq!(syncs[0]["tokens_learned"], 1, "{syncs:?}");
    // Nothing new: a second run adds nothing and prints nothing.
    assert!(follow_once(&da, &a.url).is_empty());

    let e = ok_json(
        &da,
        &[
            "--json",
            "export",
            "--format",
            "etl",
            "--chain",
            "ethereum",
            "--rpc",
            &a.url,
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(e["rows"]["blocks"], s.tip + 1);
    assert!(e["rows"]["token_transfers"].as_u64().unwrap() >= 3, "{e}");
    for t in [
        "blocks",
        "transactions",
        "traces",
        "token_transfers",
        "logs",
        "tokens",
    ] {
        assert!(out.join(format!("{t}.json")).is_file(), "{t}");
    }
    let tokens = std::fs::read_to_string(out.join("tokens.json")).unwrap();
    let t: Value = serde_json::from_str(tokens.lines().next().unwrap()).unwrap();
    assert_eq!(
        (&t["symbol"], &t["name"], &t["decimals"]),
        (&json!("TUSD"), &json!("Test Dollar"), &json!(6)),
        "{tokens}"
    );
    let i = ok_json(
        &db,
        &[
            "--json",
            "ingest",
            "--chain",
            "ethereum",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(i["blocks_added"], s.tip + 1);

    let (ansa, ansb) = (answers(&da), answers(&db));
    assert_same(&ansa, &ansb, "");
    assert_eq!(ansa["verify"]["problems"], json!([]));

    // An index filled from files has no chain id; following the node it came from adds
    // nothing and binds it to the node's chain.
    let mb = db.join("ethereum/manifest.json");
    assert!(!std::fs::read_to_string(&mb).unwrap().contains("chain_id"));
    assert!(follow_once(&db, &a.url).is_empty());
    assert!(std::fs::read_to_string(&mb)
        .unwrap()
        .contains("\"chain_id\": 31337"));

    // What the scenario sent is what the index says (checked once, on both by equality).
    let tx = |h: &str| ok_json(&da, &["--json", "tx", h]);
    let failed = tx(&s.failed);
    assert_eq!(failed["status"], "failed");
    assert!(failed["movements"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["kind"] == "fee" || m["kind"] == "burn"));
    let fwd = tx(&s.forward);
    let internal: Vec<&Value> = fwd["movements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "internal")
        .collect();
    assert_eq!(internal.len(), 3, "{fwd}");
    assert_eq!(internal[0]["amount"], "1000000000000000000");
    let relay = tx(&s.relay);
    assert!(relay["movements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["kind"] == "internal" && m["call_path"] == json!([0, 0])));
    let tt = tx(&s.token_transfer);
    assert!(tt["movements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["kind"] == "token"
            && m["amount"] == "250000000"
            && m["symbol"] == "TUSD"
            && m["decimals"] == 6));
    let human = ok(&da, &["tx", &s.token_transfer]);
    assert!(human.contains("250 TUSD"), "{human}");
    // The failed inner payment of tryPay moved nothing: the 2 ETH stayed in the forwarder.
    let tp = tx(&s.try_pay);
    assert!(!tp["movements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["kind"] == "internal"));

    // A second export into the same folder needs --force.
    let o = run(
        &da,
        &[
            "export",
            "--format",
            "etl",
            "--rpc",
            &a.url,
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
}

fn pay(a: &Anvil, from: usize, to: usize, wei: u64) -> String {
    let acc = a.accounts();
    let h = a.send(json!({"from": acc[from], "to": acc[to], "value": format!("{wei:#x}")}));
    assert_eq!(a.receipt(&h)["status"], "0x1");
    h
}

#[test]
fn a_reorganisation_leaves_what_a_fresh_follow_gives() {
    let a = Anvil::start();
    let s = scenario::run(&a);
    let tmp = tempfile::tempdir().unwrap();
    let (da, dc) = (tmp.path().join("a"), tmp.path().join("c"));

    let snap = a.snapshot();
    // The dropped branch brings addresses, a token and logs seen nowhere else: the
    // reorganised index must forget them all (stats equal a fresh follow's).
    let acc = a.accounts();
    let fresh = "0x00000000000000000000000000000000000f4e51";
    let mut gone: Vec<String> = (0..3).map(|i| pay(&a, 0, 4, 1_000 + i)).collect();
    let h = a.send(json!({"from": acc[0], "to": fresh, "value": "0x3e8"}));
    assert_eq!(a.receipt(&h)["status"], "0x1");
    gone.push(h);
    use alloy_sol_types::{SolCall, SolConstructor};
    let ctor = scenario::Token::constructorCall {
        name_: "Gone".into(),
        symbol_: "GONE".into(),
        supply: alloy_primitives::U256::from(1_000u64),
    }
    .abi_encode();
    let token2 = a.deploy(&acc[0], &common::anvil::contract_code("Token"), &ctor);
    let call = scenario::Token::transferCall {
        to: "0x00000000000000000000000000000000000f4e52"
            .parse()
            .unwrap(),
        value: alloy_primitives::U256::from(7u64),
    }
    .abi_encode();
    let h = a.send(json!({"from": acc[0], "to": token2, "gas": "0x100000",
        "data": format!("0x{}", common::anvil::hex(&call))}));
    assert_eq!(a.receipt(&h)["status"], "0x1");
    gone.push(h);
    let dropped = a.block_number() - s.tip;
    follow_once(&da, &a.url);
    for h in &gone {
        ok_json(&da, &["--json", "tx", h]);
    }
    let before = ok_json(&da, &["--json", "stats", "--chain", "ethereum"]);

    // The three blocks are replaced by a longer branch with other transactions.
    a.revert(snap);
    assert_eq!(a.block_number(), s.tip);
    let kept: Vec<String> = (0..dropped + 1).map(|i| pay(&a, 5, 6, 7_000 + i)).collect();
    // Until the index follows, an export would describe blocks the node no longer has.
    let out = tmp.path().join("export");
    let o = run(
        &da,
        &[
            "export",
            "--format",
            "etl",
            "--rpc",
            &a.url,
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("block {}", s.tip + 1)) && err.contains("another branch"),
        "{err}"
    );
    assert!(!out.join("blocks.json").exists());
    assert!(!out.join(".cointrail-export.tmp").exists());
    let syncs = follow_once(&da, &a.url);
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    assert_eq!(syncs[0]["blocks_rolled_back"], dropped);
    assert_eq!(syncs[0]["fork_number"], s.tip);
    assert_eq!(syncs[0]["blocks_added"], dropped + 1);
    for h in &gone {
        let o = run(&da, &["tx", h]);
        assert!(!o.status.success(), "{h} should have left the index");
    }
    for h in &kept {
        ok_json(&da, &["--json", "tx", h]);
    }

    follow_once(&dc, &a.url);
    let (ra, rc) = (answers(&da), answers(&dc));
    // Every figure, the address, token and log counts too: ids first seen in the dropped
    // blocks went with them.
    assert_same(&ra["stats"], &rc["stats"], ".stats");
    for k in ["addresses", "tokens", "logs"] {
        assert!(
            before[k].as_u64().unwrap() > rc["stats"][k].as_u64().unwrap(),
            "{k}: the dropped branch should have added some ({before} vs {})",
            rc["stats"]
        );
    }
    for f in [
        fresh,
        "0x00000000000000000000000000000000000f4e52",
        token2.as_str(),
    ] {
        assert!(
            !run(&da, &["address", f]).status.success(),
            "{f} should be unknown again"
        );
    }
    assert_same(&ra, &rc, "");
}

/// Equal, or a panic naming the first place where they differ (the answers are large).
fn assert_same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                assert_same(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{at}.{k}"),
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_same(p, q, &format!("{at}[{i}]"));
            }
            assert_eq!(x.len(), y.len(), "{at}: lengths differ");
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn a_node_on_another_chain_id_is_refused_and_the_index_kept() {
    let a = Anvil::start();
    pay(&a, 0, 1, 5);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("a");
    follow_once(&d, &a.url);
    let manifest = d.join("ethereum/manifest.json");
    let before = std::fs::read(&manifest).unwrap();
    assert!(String::from_utf8_lossy(&before).contains("\"chain_id\": 31337"));

    let other = Anvil::start_with(CHAIN_ID + 1, &[]);
    pay(&other, 0, 1, 6);
    pay(&other, 0, 1, 7);
    let o = run(
        &d,
        &[
            "follow", "--chain", "ethereum", "--rpc", &other.url, "--once",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("chain id 31338") && err.contains("chain id 31337") && err.contains("--rpc"),
        "{err}"
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    ok_json(&d, &["--json", "verify", "--chain", "ethereum"]);

    // An unreachable node names the RPC method.
    drop(other);
    let o = run(
        &d,
        &[
            "follow",
            "--chain",
            "ethereum",
            "--rpc",
            "http://127.0.0.1:9",
            "--once",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("eth_chainId") && err.contains("unreachable"),
        "{err}"
    );
}

/// Without --once: new heads are followed as they come, and Ctrl-C (SIGINT) stops the
/// follower cleanly (exit 0, what was fetched committed).
#[test]
fn follows_new_heads_and_stops_cleanly_on_ctrl_c() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let a = Anvil::start();
    pay(&a, 0, 1, 5);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("a");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(&d)
        .args(["--json", "follow", "--chain", "ethereum", "--rpc", &a.url])
        .args(["--poll-secs", "1"])
        .env("COINTRAIL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let reader = {
        let out = out.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let syncs = |out: &Mutex<String>| -> Vec<Value> {
        serde_json::Deserializer::from_str(&out.lock().unwrap())
            .into_iter::<Value>()
            .map_while(Result::ok)
            .collect()
    };
    let wait_for = |n: usize| {
        let t0 = Instant::now();
        while syncs(&out).len() < n {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no sync {n}: {}",
                out.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(1);
    let h = pay(&a, 2, 3, 9);
    wait_for(2);
    let s = syncs(&out);
    assert_eq!(s[1]["blocks_added"], 1, "{s:?}");
    assert_eq!(s[1]["tip_number"], a.block_number());

    // SAFETY: signalling the child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    ok_json(&d, &["--json", "tx", &h]);
    let v = ok_json(&d, &["--json", "verify", "--chain", "ethereum"]);
    assert_eq!(v["problems"], json!([]));
}
