//! `screen TXID:VOUT --direction out` (whom an output pays) beside the source-of-funds view,
//! on the CLI and the API, over the demo's simulated heist.

use serde_json::Value;
use std::path::{Path, PathBuf};

mod support;
use support::*;

fn demo_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    (d, dir)
}

/// A thief's payment into an attributed exchange address (the truth says exchange, the
/// vendor attribution agrees): `(outpoint, exchange name)`.
fn exchange_deposit(dir: &Path) -> (String, String) {
    let pay = std::fs::read_to_string(dir.join("demo-chain/truth/thief_payments.tsv")).unwrap();
    let attr = std::fs::read_to_string(dir.join("attribution.tsv")).unwrap();
    for l in pay.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        if f[5] != "exchange" {
            continue;
        }
        if let Some(a) = attr
            .lines()
            .map(|a| a.split('\t').collect::<Vec<_>>())
            .find(|a| a[0] == f[3] && a[1] == "exchange")
        {
            return (f[1].to_string(), a[2].to_string());
        }
    }
    panic!("the demo has no attributed exchange deposit of the thief");
}

fn rows(s: &Value, dir: &str) -> Vec<Value> {
    s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == dir)
        .cloned()
        .collect()
}

#[test]
fn a_withdrawal_screened_out_shows_whom_it_pays() {
    let (_d, dir) = demo_dir();
    let (deposit, exchange) = exchange_deposit(&dir);

    // The deposit output itself pays the exchange: direct, one hop, all of it.
    let out = json(&dir, &["screen", &deposit, "--direction", "out"]);
    assert_eq!(out["subject"]["direction"], "out", "{out}");
    let sent = rows(&out, "sent");
    let ex = sent
        .iter()
        .find(|r| r["category"] == "exchange")
        .unwrap_or_else(|| panic!("no exchange row: {out}"));
    assert_eq!(ex["type"], "direct", "{out}");
    assert_eq!(ex["min_hops"], 1, "{out}");
    assert!(ex["entities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == exchange.as_str()));
    let value = out["subject"]["value"].as_u64().unwrap();
    assert_eq!(ex["sats"].as_u64().unwrap(), value, "{out}");
    assert_eq!(out["sent"]["total_sats"].as_u64().unwrap(), value);
    assert!(rows(&out, "received").is_empty(), "{out}");

    // The same output's source of funds is the theft, and no exchange: the views differ.
    let inn = json(&dir, &["screen", &deposit]);
    assert_eq!(inn["subject"]["direction"], "in", "{inn}");
    assert_eq!(inn, json(&dir, &["screen", &deposit, "--direction", "in"]));
    assert!(rows(&inn, "sent").is_empty(), "{inn}");
    assert!(
        rows(&inn, "received")
            .iter()
            .any(|r| r["category"].as_str().unwrap().starts_with("stolen_funds")),
        "{inn}"
    );
    assert!(!rows(&inn, "received")
        .iter()
        .any(|r| r["category"] == "exchange"));
    assert_eq!(inn["risk"], "severe");
    assert_ne!(out["risk"], inn["risk"]);

    // One hop back: the thief's output that paid the deposit is a withdrawal whose coins
    // reach the exchange at the second hop, split exactly by value.
    let (txid, _) = deposit.split_once(':').unwrap();
    let tx = json(&dir, &["tx", txid]);
    assert_eq!(tx["inputs"].as_array().unwrap().len(), 1, "{tx}");
    let prev = format!(
        "{}:{}",
        tx["inputs"][0]["prev_txid"].as_str().unwrap(),
        tx["inputs"][0]["prev_vout"]
    );
    // Two hops: the peel chain goes on to further exchanges beyond.
    let back = json(
        &dir,
        &["screen", &prev, "--direction", "out", "--max-hops", "2"],
    );
    let ex = rows(&back, "sent")
        .into_iter()
        .find(|r| r["category"] == "exchange")
        .unwrap_or_else(|| panic!("no exchange row: {back}"));
    assert_eq!(ex["type"], "indirect", "{back}");
    assert_eq!(ex["min_hops"], 2, "{back}");
    // The spend has this one input, so the exchange's part is its output's whole value.
    assert_eq!(ex["sats"].as_u64().unwrap(), value, "{back}");

    // The human output names the direction screened.
    let h = cli(&dir, &["screen", &deposit, "--direction", "out"]);
    assert!(
        h.contains("direction screened: out (whom the output pays)"),
        "{h}"
    );
    assert!(h.contains("sent") && h.contains("exchange"), "{h}");
    assert!(!h.contains("from others"), "{h}");
    let h = cli(&dir, &["screen", &deposit]);
    assert!(h.contains("direction screened: in"), "{h}");

    // --direction out is for one output only, and says so.
    let (ok, _, err) = try_cli(&dir, &["screen", txid, "--direction", "out"]);
    assert!(!ok);
    assert!(err.contains("TXID:VOUT"), "{err}");

    // The API answers the same on the output route.
    let key = cli(&dir, &["keys", "create", "desk"]).trim().to_string();
    let srv = Server::start(&dir, &[]);
    let (t, v) = deposit.split_once(':').unwrap();
    let r = get(
        &srv.addr,
        &format!("/v1/screen/output/{t}/{v}?direction=out"),
        &key,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let api = r.json();
    assert_eq!(api["exposure"], out["exposure"]);
    assert_eq!(api["risk"], out["risk"]);
    let r = get(&srv.addr, &format!("/v1/screen/output/{t}/{v}"), &key);
    assert_eq!(r.json()["exposure"], inn["exposure"]);
    let r = get(
        &srv.addr,
        &format!("/v1/screen/output/{t}/{v}?direction=up"),
        &key,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["field"], "direction");
    let r = get(
        &srv.addr,
        &format!("/v1/screen/output/{t}/999?direction=out"),
        &key,
    );
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let spec = get(&srv.addr, "/openapi.json", &key).json();
    let params = &spec["paths"]["/v1/screen/output/{txid}/{vout}"]["get"]["parameters"];
    assert!(
        params
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "direction"),
        "{params}"
    );
    srv.stop();
}

/// The walk's work bound (`--max-edges`): every answer names it, and what it cuts is
/// reported as beyond the limit, in JSON and in the human text. With room for one input or
/// output, no spend of an exchange address (at least an input and an output) is followed.
#[test]
fn the_work_bound_is_named_and_what_it_cuts_is_reported() {
    let (_d, dir) = demo_dir();
    let attr = std::fs::read_to_string(dir.join("attribution.tsv")).unwrap();
    let mut found = false;
    for a in attr
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .take(60)
    {
        let cut = json(&dir, &["screen", a, "--max-edges", "1"]);
        assert_eq!(cut["parameters"]["max_edges"], 1, "{cut}");
        let sent = cut["sent"]["total_sats"].as_u64().unwrap();
        if sent == 0 {
            continue;
        }
        found = true;
        assert_eq!(
            cut["sent"]["beyond_limit_sats"].as_u64().unwrap(),
            sent,
            "{cut}"
        );
        assert!(
            rows(&cut, "sent").iter().all(|r| r["type"] == "ownership"),
            "{cut}"
        );
        let text = cli(&dir, &["screen", a, "--max-edges", "1"]);
        assert!(
            text.contains("not followed: the walk reached its work bound (--max-edges 1"),
            "{text}"
        );
        let whole = json(&dir, &["screen", a]);
        assert_eq!(whole["parameters"]["max_edges"], 4000);
        assert_eq!(whole["sent"]["total_sats"].as_u64().unwrap(), sent);
        assert!(
            whole["sent"]["beyond_limit_sats"].as_u64().unwrap() < sent,
            "{whole}"
        );
        break;
    }
    assert!(
        found,
        "no attributed address of the demo has spent anything"
    );
}
