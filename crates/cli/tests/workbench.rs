//! The investigation workbench: served at `/` by a real `cointrail serve` over the demo's
//! data dir, its endpoints (case trace, paths), `--ui-open`, and the page itself driven in
//! Debian's chromium by playwright-core (ui-tests/workbench.test.mjs; installed by
//! scripts/install-browser.sh, which scripts/test.sh runs first).

use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

mod support;
use support::*;

fn demo_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    (d, dir)
}

/// The first stolen outpoint of heist 0 and the address it was paid to.
fn stolen(dir: &Path) -> (String, String) {
    let t = std::fs::read_to_string(dir.join("demo-chain/truth/stolen_outpoints.tsv")).unwrap();
    let f: Vec<&str> = t.lines().nth(1).unwrap().split('\t').collect();
    (f[1].to_string(), f[3].to_string())
}

/// The thief's first output (TXID:0 of the drain transaction): a deposit made of stolen coins.
/// (The source outpoint itself sits at the victim's address, which is not exposed to its own
/// theft.)
fn loot(dir: &Path) -> String {
    let t = std::fs::read_to_string(dir.join("demo-chain/truth/stolen_outpoints.tsv")).unwrap();
    let f: Vec<&str> = t.lines().nth(1).unwrap().split('\t').collect();
    format!("{}:0", f[4])
}

/// Raw request with a chosen Host header (the `--ui-open` check reads it).
fn get_host(addr: &str, path: &str, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Nodes and edges the workbench draws for a trace: a node per transaction (creating or
/// spending a tainted output) and per address, an edge per output and per spend.
fn graph_size(trace: &Value) -> (usize, usize) {
    let mut nodes = HashSet::new();
    let mut edges = 0;
    for r in trace["outputs"].as_array().unwrap() {
        let txid = r["txid"].as_str().unwrap();
        nodes.insert(format!("t:{txid}"));
        let a = r["address"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{txid}:{}", r["vout"]));
        nodes.insert(format!("a:{a}"));
        edges += 1;
        if let Some(s) = r["spent_by"].as_str() {
            nodes.insert(format!("t:{s}"));
            edges += 1;
        }
    }
    (nodes.len(), edges)
}

#[test]
fn workbench_is_served_with_its_endpoints() {
    let (_d, dir) = demo_dir();
    let key = cli(&dir, &["keys", "create", "analyst"]).trim().to_string();
    let srv = Server::start(&dir, &[]);
    let a = srv.addr.clone();

    // The page and its files: embedded, typed, under a CSP that allows this origin only.
    let r = http(&a, "GET", "/", None, None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let html = String::from_utf8(r.body.clone()).unwrap();
    assert!(html.contains("/ui/app.js"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    for (p, ct) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/graph.js", "text/javascript"),
        ("/ui/vendor/cytoscape.esm.min.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/vendor/cytoscape.LICENSE", "text/plain"),
    ] {
        let r = http(&a, "GET", p, None, None);
        assert_eq!(r.status, 200, "{p}");
        assert!(r.header("content-type").unwrap().starts_with(ct), "{p}");
        assert!(!r.body.is_empty());
    }
    let r = http(&a, "GET", "/ui/nothing.js", None, None);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("not_found"))
    );
    // The API still wants a key.
    assert_eq!(http(&a, "GET", "/v1/cases", None, None).status, 401);

    // A case's trace under a model: the CLI's answer, plus who spent each output.
    let api = get(
        &a,
        "/v1/cases/sim-heist-0/trace?model=haircut&max_rows=200000",
        &key,
    );
    assert_eq!(api.status, 200, "{}", String::from_utf8_lossy(&api.body));
    let api = api.json();
    let local = json(&dir, &["trace", "sim-heist-0", "--model", "haircut"]);
    assert_eq!(api["trace"]["totals"], local["totals"]);
    assert_eq!(api["trace"]["destinations"], local["destinations"]);
    let rows = api["trace"]["outputs"].as_array().unwrap();
    assert_eq!(rows.len(), local["outputs"].as_array().unwrap().len());
    let spent = rows.iter().find(|r| r["spent"] == true).unwrap();
    let tx = get(
        &a,
        &format!("/v1/transactions/{}", spent["txid"].as_str().unwrap()),
        &key,
    )
    .json();
    let out = &tx["transaction"]["outputs"][spent["vout"].as_u64().unwrap() as usize];
    assert_eq!(out["spent_by"]["txid"], spent["spent_by"]);
    assert!(rows
        .iter()
        .all(|r| (r["spent"] == true) == r["spent_by"].is_string()));
    let t = &api["trace"]["totals"];
    let sum: u64 = [
        "unspent_sats",
        "fee_sats",
        "stopped_sats",
        "mixer_sats",
        "limit_sats",
    ]
    .iter()
    .map(|k| t[k].as_u64().unwrap())
    .sum();
    assert_eq!(sum, t["source_sats"].as_u64().unwrap());
    for (p, field) in [
        ("/v1/cases/sim-heist-0/trace?model=nonsense", "model"),
        ("/v1/cases/sim-heist-0/trace?coinjoin=x", "coinjoin"),
        ("/v1/cases/sim-heist-0/trace?max_rows=0", "max_rows"),
        ("/v1/cases/nope/trace", "name"),
    ] {
        let r = get(&a, p, &key);
        assert!(matches!(r.status, 400 | 404), "{p}");
        assert_eq!(r.json()["field"], field, "{p}");
    }

    // Paths: from a mule (one hop after the theft) to an address it paid.
    let (_, thief) = stolen(&dir);
    let fifo = get(&a, "/v1/cases/sim-heist-0/trace", &key).json();
    let (mule, dest) = mule_and_next(&fifo["trace"]);
    let p = get(
        &a,
        &format!("/v1/paths?from={mule}&to={dest}&max_hops=4"),
        &key,
    );
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    let p = p.json();
    assert!(!p["paths"].as_array().unwrap().is_empty(), "{p}");
    let first = p["paths"][0].as_array().unwrap();
    assert_eq!(p["direction"], "forward");
    assert_eq!(p["hops"], 1);
    assert_eq!(first.first().unwrap()["from"], p_end(&p, &mule, &dest).0);
    assert_eq!(first.last().unwrap()["to"], p_end(&p, &mule, &dest).1);
    // Asked the other way round, the same path comes back, marked backward.
    let back = get(&a, &format!("/v1/paths?from={dest}&to={mule}"), &key).json();
    assert_eq!(back["direction"], "backward");
    assert_eq!(back["paths"], p["paths"]);
    for w in first.windows(2) {
        assert_eq!(w[0]["to"], w[1]["from"]);
    }
    let r = get(&a, &format!("/v1/paths?from={thief}&to={thief}"), &key);
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("to")));
    let r = get(
        &a,
        &format!("/v1/paths?from={mule}&to={dest}&max_hops=99"),
        &key,
    );
    assert_eq!(r.json()["field"], "max_hops");

    // The OpenAPI document names the new endpoints.
    let doc = http(&a, "GET", "/openapi.json", None, None).json();
    assert!(doc["paths"]["/v1/cases/{name}/trace"]["get"].is_object());
    assert!(doc["paths"]["/v1/paths"]["get"].is_object());
    drop(srv);

    // --ui-open: no key from loopback to a loopback host name; a foreign Host still needs one.
    let srv = Server::start(&dir, &["--ui-open"]);
    assert_eq!(get_host(&srv.addr, "/v1/cases", &srv.addr), 200);
    assert_eq!(get_host(&srv.addr, "/v1/cases", "localhost:8700"), 200);
    assert_eq!(get_host(&srv.addr, "/v1/cases", "evil.example"), 401);
    assert_eq!(
        get_host(&srv.addr, "/v1/cases", "127.0.0.1.evil.example"),
        401
    );
}

/// The ends of a path in its direction.
fn p_end(p: &Value, from: &str, to: &str) -> (String, String) {
    if p["direction"] == "forward" {
        (from.into(), to.into())
    } else {
        (to.into(), from.into())
    }
}

/// A tainted address one hop after the theft (not a service: it gets expanded), and an
/// address it paid next (the path test's two ends).
fn mule_and_next(trace: &Value) -> (String, String) {
    let rows = trace["outputs"].as_array().unwrap();
    for r2 in rows
        .iter()
        .filter(|r| r["hops"] == 2 && r["address"].is_string())
    {
        if let Some(r1) = rows.iter().find(|r| {
            r["hops"] == 1
                && r["address"].is_string()
                && r["spent_by"] == r2["txid"]
                && r["address"] != r2["address"]
        }) {
            return (
                r1["address"].as_str().unwrap().into(),
                r2["address"].as_str().unwrap().into(),
            );
        }
    }
    panic!("no two-hop flow in the trace");
}

/// Real Ethereum rows (mainnet blocks 17,173,049–50, testdata/eth/etl) indexed beside the
/// demo's chain, and a sanctions label on the sender of a WETH transfer in them: what the
/// browser test searches for (the transfer's hash, its receiver) and what it must show.
fn ethereum_beside(dir: &Path) -> Value {
    let etl = repo().join("testdata/eth/etl");
    let files: Vec<String> = [
        "mainnet_17173049_blocks.json",
        "mainnet_17173049_transactions.json",
        "mainnet_17173049_token_transfers.json",
    ]
    .iter()
    .map(|f| etl.join(f).display().to_string())
    .collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    cli(dir, &args);
    let hash = "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0";
    let tx = json(dir, &["tx", hash]);
    let weth = tx["movements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["symbol"] == "WETH")
        .unwrap()
        .clone();
    let from = weth["from"].as_str().unwrap();
    let to = weth["to"].as_str().unwrap();
    cli(
        dir,
        &[
            "labels",
            "add",
            from,
            "OFAC test: WETH sender",
            "--category",
            "sanctions",
        ],
    );
    let addr = json(dir, &["address", &to.to_lowercase()]);
    json!({
        "tx": hash, "block": tx["block"], "status": tx["status"], "movements": tx["movements"].as_array().unwrap().len(),
        "weth_amount": weth["amount"], "sanctioned": from, "subject": to, "subject_lower": to.to_lowercase(),
        "balances": addr["balances"],
    })
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn workbench_in_a_real_browser() {
    let root = repo();
    let chromium = std::env::var("WB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let pw = root.join("ui-tests/node_modules/playwright-core/package.json");
    assert!(
        Path::new(&chromium).exists() && pw.exists(),
        "the browser test needs chromium and playwright-core: run scripts/install-browser.sh (scripts/test.sh does)"
    );
    let (_d, dir) = demo_dir();
    let key = cli(&dir, &["keys", "create", "analyst", "--scope", "write"])
        .trim()
        .to_string();
    let (_, thief) = stolen(&dir);
    // The alert the page receives live is made as an investigator gets one: a rule on
    // sanctioned receivers, then a sanctions label (imported while the service runs) on an
    // address that received within the rule's look-back (all of this short chain).
    let tip = json(&dir, &["stats"])["tip_height"].as_u64().unwrap();
    cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "flagged-receive",
            "--id",
            "sanctioned-receiver",
            "--category",
            "sanctions",
            "--lookback-blocks",
            &(tip + 1).to_string(),
        ],
    );
    let eth = ethereum_beside(&dir);
    let srv = Server::start(&dir, &[]);
    let trace = get(&srv.addr, "/v1/cases/sim-heist-0/trace", &key).json();
    let (nodes, edges) = graph_size(&trace["trace"]);
    let src = trace["trace"]["totals"]["source_sats"].as_u64().unwrap();
    let (mule, path_to) = mule_and_next(&trace["trace"]);
    let shots = root.join("target/ui-screenshots");
    let out = std::process::Command::new("node")
        .arg(root.join("ui-tests/workbench.test.mjs"))
        .current_dir(root.join("ui-tests"))
        .env("WB_URL", format!("http://{}", srv.addr))
        .env("WB_KEY", &key)
        .env("WB_CASE", "sim-heist-0")
        .env("WB_SOURCE", &thief)
        .env("WB_DEPOSIT", loot(&dir))
        .env("WB_SHOTS", &shots)
        .env("WB_CHROMIUM", &chromium)
        .env("WB_BIN", env!("CARGO_BIN_EXE_cointrail"))
        .env("WB_DATA", &dir)
        .env("WB_ETH", eth.to_string())
        .env(
            "WB_EXPECT",
            json!({
                "nodes": nodes, "edges": edges, "mule": mule, "path_to": path_to,
                "source_btc": format!("{}.{:08}", src / 100_000_000, src % 100_000_000),
            })
            .to_string(),
        )
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed (screenshots in {}):\n{stdout}\n{}",
        shots.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
