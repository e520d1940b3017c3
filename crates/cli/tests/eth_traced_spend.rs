//! `traced-spend` on a case whose sources are on Ethereum, against a real anvil: the
//! accounts the case's trace left taint at fire when they send, the frontier moves with the
//! taint (an account that received tainted ETH fires next), and accounts without taint do
//! not.

#[path = "../../evmrpc/tests/common/mod.rs"]
mod common;

use common::anvil::Anvil;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn ok(data: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(data)
        .arg("--quiet")
        .args(args)
        .env("COINTRAIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn alerts(data: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&ok(data, &["--json", "alerts", "list", "--all"])).unwrap();
    let mut a = v
        .as_array()
        .cloned()
        .or_else(|| v["alerts"].as_array().cloned())
        .unwrap_or_else(|| panic!("{v}"));
    a.sort_by_key(|x| x["height"].as_u64());
    a
}

fn same_address(a: &Value, b: &str) -> bool {
    a.as_str().is_some_and(|x| x.eq_ignore_ascii_case(b))
}

#[test]
fn an_ethereum_case_alerts_when_its_tainted_accounts_send() {
    let a = Anvil::start();
    let acc = a.accounts();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let follow = || {
        ok(
            &data,
            &["follow", "--chain", "ethereum", "--rpc", &a.url, "--once"],
        )
    };
    let send = |from: &str, to: &str, wei: &str| {
        let h = a.send(json!({"from": from, "to": to, "value": wei}));
        assert_eq!(a.receipt(&h)["status"], "0x1");
        h
    };

    // The theft: 5 ETH from acc[1] to acc[2]; the case is that transaction.
    let theft = send(&acc[1], &acc[2], "0x4563918244f40000");
    follow();
    ok(&data, &["case", "create", "stolen", "--from-tx", &theft]);
    ok(
        &data,
        &[
            "alerts",
            "rules",
            "add",
            "traced-spend",
            "--id",
            "loot",
            "--case",
            "stolen",
        ],
    );

    // Accounts without taint send: nothing.
    send(&acc[3], &acc[4], "0x1000");
    follow();
    assert!(alerts(&data).is_empty(), "{:?}", alerts(&data));

    // The thief's account sends 1 ETH on: one alert, naming it and the transaction.
    let h1 = send(&acc[2], &acc[5], "0xde0b6b3a7640000");
    let out = follow();
    assert!(out.contains("ALERT"), "{out}");
    let al = alerts(&data);
    assert_eq!(al.len(), 1, "{al:?}");
    assert_eq!(al[0]["rule_id"], "loot");
    assert_eq!(al[0]["kind"], "traced_spend");
    assert_eq!(al[0]["txid"], h1);
    assert_eq!(al[0]["details"]["chain"], "ethereum");
    assert_eq!(al[0]["details"]["case"], "stolen");
    assert!(
        same_address(&al[0]["details"]["address"], &acc[2]),
        "{}",
        al[0]
    );
    assert_eq!(al[0]["details"]["held_before"][0]["asset"], "ETH");
    assert_eq!(
        al[0]["details"]["held_before"][0]["tainted"],
        "5000000000000000000"
    );
    assert_eq!(al[0]["details"]["sent"][0]["amount"], "1000000000000000000");

    // The taint moved with it: acc[5] now holds some, and fires when it sends; acc[4]
    // (paid by an untainted account) still does not.
    send(&acc[4], &acc[7], "0x1000");
    let h2 = send(&acc[5], &acc[6], "0x2000");
    follow();
    let al = alerts(&data);
    assert_eq!(al.len(), 2, "{al:?}");
    assert_eq!(al[1]["txid"], h2);
    assert!(
        same_address(&al[1]["details"]["address"], &acc[5]),
        "{}",
        al[1]
    );

    // Following again adds nothing.
    follow();
    assert_eq!(alerts(&data).len(), 2);
}
