//! `simulate --chain ethereum` end to end: the files ingest, `verify` is clean, and each
//! thief address of the truth shows in `address --json` exactly what the truth says it
//! received (native and token).

mod support;
use support::{cli, json};

#[test]
fn simulated_ethereum_ingests_verifies_and_shows_the_heist() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let data = tmp.path().join("data");
    let s = sim.display().to_string();
    let summary = json(
        &data,
        &[
            "simulate",
            "--chain",
            "ethereum",
            "--out",
            &s,
            "--txs",
            "8000",
            "--users",
            "300",
            "--exchanges",
            "3",
            "--heist-fanout",
            "30",
            "--seed",
            "9",
        ],
    );
    assert_eq!(summary["chain"], "ethereum");
    let etl = sim.join("etl").display().to_string();
    cli(&data, &["ingest", &etl]);
    let v = json(&data, &["verify", "--chain", "ethereum"]);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["blocks"], summary["blocks"]);
    let stats = json(&data, &["stats", "--chain", "ethereum"]);
    assert_eq!(stats["transactions"], summary["txs"], "{stats}");

    let token = summary["token"].as_str().unwrap().to_lowercase();
    let thieves = std::fs::read_to_string(sim.join("truth/thieves.tsv")).unwrap();
    let mut checked = 0;
    for line in thieves.lines().skip(1).take(12) {
        let f: Vec<&str> = line.split('\t').collect();
        let a = json(&data, &["address", f[0]]);
        let bal = a["balances"].as_array().unwrap();
        let received = |tok: Option<&str>| {
            bal.iter()
                .find(|b| b["token"].as_str().map(str::to_lowercase).as_deref() == tok)
                .map(|b| b["received"].as_str().unwrap().to_string())
                .unwrap_or_else(|| "0".into())
        };
        assert_eq!(received(None), f[2], "{line}: {a}");
        assert_eq!(received(Some(&token)), f[3], "{line}: {a}");
        checked += 1;
    }
    assert!(checked >= 12);
    // The drain: the victim's cold wallet sent everything to the main thief.
    let drain = json(
        &data,
        &["tx", summary["heist"]["drain_tx"].as_str().unwrap()],
    );
    let text = drain.to_string().to_lowercase();
    assert!(
        text.contains(
            &summary["heist"]["main_thief"]
                .as_str()
                .unwrap()
                .to_lowercase()
        ),
        "{drain}"
    );
    assert!(
        text.contains(summary["heist"]["drained_wei"].as_str().unwrap()),
        "{drain}"
    );
    // The simulator's tokens table names its stablecoin: answers show it in its units.
    let usds = drain["movements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "token")
        .expect("the drain moves the stablecoin");
    assert_eq!(
        (&usds["symbol"], &usds["decimals"]),
        (&serde_json::json!("USDS"), &serde_json::json!(6)),
        "{usds}"
    );
    let human = cli(
        &data,
        &["tx", summary["heist"]["drain_tx"].as_str().unwrap()],
    );
    assert!(human.contains(" USDS"), "{human}");
    assert!(!human.contains("units of"), "{human}");
}
