//! The README's main command and the investigation commands, end to end on the demo data.

use std::path::Path;

mod support;
use support::{json, try_cli as cli};

#[test]
fn demo_then_investigate() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let demo = json(&dir, &["demo"]);
    assert!(demo["index"]["tx_count"].as_u64().unwrap() > 20_000);
    let traces = demo["traces"].as_array().unwrap();
    assert!(!traces.is_empty());
    for t in traces {
        let x = &t["totals"];
        let sum: u64 = [
            "unspent_sats",
            "fee_sats",
            "stopped_sats",
            "mixer_sats",
            "limit_sats",
        ]
        .iter()
        .map(|k| x[k].as_u64().unwrap())
        .sum();
        assert_eq!(
            sum,
            x["source_sats"].as_u64().unwrap(),
            "FIFO conserves the stolen amount"
        );
    }
    assert!(dir.join("sim-heist-0.html").exists());
    // The help texts quote the demo's stolen amount: it is this run's.
    let stolen = demo["simulation"]["heists"][0]["stolen_sats"]
        .as_u64()
        .unwrap();
    let quoted = format!(
        "{},{:03}.{:02}",
        stolen / 100_000_000_000,
        stolen / 100_000_000 % 1000,
        (stolen % 100_000_000 + 500_000) / 1_000_000
    );
    for cmd in ["demo", "simulate"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cointrail"))
            .args([cmd, "--help"])
            .output()
            .unwrap();
        let h = String::from_utf8_lossy(&o.stdout);
        assert!(h.contains(&quoted), "{cmd} --help should say {quoted}: {h}");
    }

    // The heist mixes stolen and clean coins once (issue 21 item 6): there the taint models
    // part ways, visibly, and each still conserves the stolen amount (poison flags whole
    // outputs instead).
    let heist = &traces[0];
    let models = heist["models"].as_array().expect("models side by side");
    let names: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fifo", "lifo", "tiho", "tifo", "haircut", "poison"]);
    let by = |n: &str| models.iter().find(|m| m["model"] == n).unwrap();
    for m in models {
        let x = &m["totals"];
        let sum: u64 = [
            "unspent_sats",
            "fee_sats",
            "stopped_sats",
            "mixer_sats",
            "limit_sats",
        ]
        .iter()
        .map(|k| x[k].as_u64().unwrap())
        .sum();
        if m["model"] == "poison" {
            assert!(sum > x["source_sats"].as_u64().unwrap(), "{m}");
        } else {
            assert_eq!(sum, x["source_sats"].as_u64().unwrap(), "{m}");
        }
    }
    assert_eq!(
        by("fifo")["totals"],
        heist["totals"],
        "the FIFO row is the trace above"
    );
    // Each output of the mixed payment carries a different stolen amount under each of
    // FIFO, LIFO, TIHO (or TIFO) and haircut; poison marks them whole.
    let per = |n: &str| by(n)["mixed_payment_tainted_sats"].clone();
    let distinct: std::collections::BTreeSet<String> =
        ["fifo", "lifo", "tifo", "haircut", "poison"]
            .iter()
            .map(|n| per(n).to_string())
            .collect();
    assert_eq!(distinct.len(), 5, "{models:?}");
    assert_ne!(per("tiho"), per("fifo"));
    let sim = &demo["simulation"]["heists"][0]["mixed_spend"];
    let values: Vec<u64> = sim["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sats"].as_u64().unwrap())
        .collect();
    assert_eq!(per("poison"), serde_json::json!(values));
    // So the totals differ too: what reaches services, and what the thief still holds.
    let stopped: std::collections::BTreeSet<u64> = ["fifo", "lifo", "tifo", "haircut"]
        .iter()
        .map(|n| by(n)["totals"]["stopped_sats"].as_u64().unwrap())
        .collect();
    assert_eq!(stopped.len(), 4, "{models:?}");
    assert_ne!(
        by("fifo")["totals"]["unspent_sats"],
        by("tifo")["totals"]["unspent_sats"]
    );

    // Cases: listed, re-importable, traceable under another model with a report.
    let cases = json(&dir, &["case", "list"]);
    assert!(cases
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "sim-heist-0"));
    let (ok, _, err) = cli(
        &dir,
        &[
            "case",
            "import-sim",
            dir.join("demo-chain/truth").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let report = d.path().join("h.md");
    let h = json(
        &dir,
        &[
            "trace",
            "sim-heist-0",
            "--model",
            "haircut",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let x = &h["totals"];
    let sum: u64 = [
        "unspent_sats",
        "fee_sats",
        "stopped_sats",
        "mixer_sats",
        "limit_sats",
    ]
    .iter()
    .map(|k| x[k].as_u64().unwrap())
    .sum();
    assert_eq!(
        sum,
        x["source_sats"].as_u64().unwrap(),
        "haircut conserves too"
    );
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("## Where the coins went"));
    assert_eq!(h["parameters"]["model"], "haircut");
    // The command and the demo's table agree.
    assert_eq!(h["totals"], by("haircut")["totals"]);
    let lifo = json(&dir, &["trace", "sim-heist-0", "--model", "lifo"]);
    assert_eq!(lifo["totals"], by("lifo")["totals"]);
    assert!(h["provenance"]["index_tip_height"].as_u64().is_some());

    // A deposit the trace reached at an exchange screens as exposed to the case.
    let f = json(&dir, &["trace", "sim-heist-0"]);
    let row = f["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stop_reason"] == "service:exchange")
        .expect("the heist reaches an exchange");
    let outpoint = format!("{}:{}", row["txid"].as_str().unwrap(), row["vout"]);
    let s = json(&dir, &["screen", &outpoint]);
    assert_eq!(s["risk"], "severe", "{s}");
    assert!(s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["category"] == "stolen_funds:sim-heist-0"));
    let origin = json(
        &dir,
        &["trace", "origin", &outpoint, "--case", "sim-heist-0"],
    );
    assert_eq!(origin["cases"][0]["tainted_sats"], row["tainted_sats"]);

    // Dormant loot can be watched by case: the rule takes the case's traced frontier.
    let (ok, out, err) = cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "traced-spend",
            "--case",
            "sim-heist-0",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("traced_spend"), "{out}");

    // Bad input: clear errors, non-zero exit.
    let (ok, _, err) = cli(&dir, &["trace", "no-such-case"]);
    assert!(!ok && err.contains("no case named"), "{err}");
    let (ok, _, err) = cli(&dir, &["screen", "bc1qnotanaddress"]);
    assert!(!ok && err.contains("not a valid"), "{err}");
    let (ok, _, err) = cli(&dir, &["trace", "sim-heist-0", "--model", "bogus"]);
    assert!(!ok && err.contains("unknown model"), "{err}");
}

#[test]
fn real_blocks_real_labels_real_screening() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let blocks: Vec<String> = (831328..=831335)
        .map(|h| {
            root.join(format!("btc/mainnet/0{h}.bin"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["ingest"];
    args.extend(blocks.iter().map(String::as_str));
    let (ok, _, err) = cli(&dir, &args);
    assert!(ok, "{err}");
    let pack = root.join("labels/exchange-wallets-bitfinexcom.yaml");
    let (ok, _, err) = cli(&dir, &["labels", "import", pack.to_str().unwrap()]);
    assert!(ok, "{err}");
    let l = json(
        &dir,
        &["labels", "show", "1Kr6QSydW9bFQG1mXiPNNu6WpJGmUa9i1g"],
    );
    assert_eq!(l[0]["category"], "exchange");
    // Block 831,330 pays this Bitfinex hot wallet: its screening shows the ownership.
    let s = json(&dir, &["screen", "1Kr6QSydW9bFQG1mXiPNNu6WpJGmUa9i1g"]);
    let own = s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "ownership")
        .expect("ownership row");
    assert_eq!(own["category"], "exchange");
    assert_eq!(own["delisted"], false);
    assert_eq!(s["risk"], "low");
    // And the paying transaction's flags come from the CoinJoin/shape classifier.
    let tx = json(
        &dir,
        &[
            "tx",
            "36529eb76f3b8fafd15bb67a6f338753d93fb31cbbec2cf070615e80e202502a",
        ],
    );
    assert_eq!(
        tx["outputs"][3]["address"],
        "1Kr6QSydW9bFQG1mXiPNNu6WpJGmUa9i1g"
    );
    assert!(tx["flags"].is_array());
    // The output's label shows in `tx`, and the label's actor (ActorPack) in `labels show`.
    assert_eq!(
        tx["outputs"][3]["labels"][0], l[0]["label"],
        "{}",
        tx["outputs"][3]
    );
    let actors = root.join("labels/actors-excerpt.actorpack.yaml");
    let (ok, _, err) = cli(&dir, &["labels", "import", actors.to_str().unwrap()]);
    assert!(ok, "{err}");
    let l = json(
        &dir,
        &["labels", "show", "1Kr6QSydW9bFQG1mXiPNNu6WpJGmUa9i1g"],
    );
    assert_eq!(l[0]["actor"], "bitfinex");
    assert_eq!(l[0]["actor_info"]["label"], "Bitfinex", "{}", l[0]);
    assert!(l[0]["actor_info"]["jurisdictions"].is_array());
    // A label on the transaction itself (a TagPack `tx_hash` tag) shows in `tx` and in
    // `labels show TXID`.
    let txid = "36529eb76f3b8fafd15bb67a6f338753d93fb31cbbec2cf070615e80e202502a";
    let pack = d.path().join("txpack.yaml");
    std::fs::write(
        &pack,
        format!("title: test\ncreator: cointrail tests\nsource: https://example.org/test\ncategory: exchange\nlastmod: 2026-11-30\ntags:\n- tx_hash: '{txid}'\n  currency: BTC\n  label: 'Bitfinex hot wallet top-up'\n"),
    )
    .unwrap();
    let (ok, _, err) = cli(&dir, &["labels", "import", pack.to_str().unwrap()]);
    assert!(ok, "{err}");
    let tx = json(&dir, &["tx", txid]);
    assert_eq!(
        tx["labels"][0]["label"], "Bitfinex hot wallet top-up",
        "{}",
        tx["labels"]
    );
    let lt = json(&dir, &["labels", "show", txid]);
    assert_eq!(lt[0]["label"], "Bitfinex hot wallet top-up");
    // Clustering builds over the real blocks; the cluster is named by its best definer.
    let b = json(&dir, &["cluster", "build"]);
    assert!(b["merges"].as_u64().unwrap() > 0);
    // The real blocks' Whirlpool rounds are found, although their inputs predate the range.
    assert!(
        b["coinjoins_by_protocol"]["whirlpool"]
            .as_u64()
            .unwrap_or(0)
            >= 6,
        "{b}"
    );
    let c = json(
        &dir,
        &["cluster", "show", "1Kr6QSydW9bFQG1mXiPNNu6WpJGmUa9i1g"],
    );
    assert_eq!(c["name"], "bitfinex");
    // A TagPack of hack addresses becomes a case.
    let kucoin = root.join("labels/kucoin-2020.yaml");
    let names = json(&dir, &["case", "import-tagpack", kucoin.to_str().unwrap()]);
    assert!(
        names[0].as_str().unwrap().starts_with("tagpack:"),
        "{names}"
    );
    let cases = json(&dir, &["case", "list"]);
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == names[0])
        .unwrap();
    assert!(case["sources"].as_array().unwrap().len() > 1);
}

/// Issue 5's real-data proof: outputs of the 8 consecutive mainnet blocks pay addresses the
/// GraphSense TagPacks label as exchange reserve wallets and miners, found through the index.
#[test]
fn tagpack_exchange_and_miner_wallets_are_paid_in_the_real_blocks() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let blocks: Vec<String> = (831328..=831335)
        .map(|h| {
            root.join(format!("btc/mainnet/0{h}.bin"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["ingest"];
    args.extend(blocks.iter().map(String::as_str));
    assert!(cli(&dir, &args).0);
    let packs: Vec<String> = [
        "binance",
        "bybit",
        "bitfinexcom",
        "cryptocom",
        "deribit",
        "swissborg",
    ]
    .iter()
    .map(|p| {
        root.join(format!("labels/exchange-wallets-{p}.yaml"))
            .display()
            .to_string()
    })
    .chain(std::iter::once(
        root.join("labels/miners_additional.yaml")
            .display()
            .to_string(),
    ))
    .collect();
    let mut args = vec!["labels", "import"];
    args.extend(packs.iter().map(String::as_str));
    let (ok, _, err) = cli(&dir, &args);
    assert!(ok, "{err}");
    // Every labelled BTC address that the index knows: look each up, collect the actors.
    let mut found = std::collections::BTreeSet::new();
    for p in &packs {
        for line in std::fs::read_to_string(p).unwrap().lines() {
            let Some(a) = line
                .trim()
                .strip_prefix("- address:")
                .or_else(|| line.trim().strip_prefix("address:"))
            else {
                continue;
            };
            let a = a
                .trim()
                .trim_matches('\'')
                .trim_matches('"')
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            let (ok, out, _) = cli(&dir, &["address", &a, "--json", "--limit", "1"]);
            if !ok {
                continue; // never paid in these blocks
            }
            let info: serde_json::Value = serde_json::from_str(&out).unwrap();
            if info["outputs"].as_array().is_some_and(|o| !o.is_empty()) {
                let l = json(&dir, &["labels", "show", &a]);
                found.insert(
                    l[0]["actor"]
                        .as_str()
                        .or(l[0]["label"].as_str())
                        .unwrap_or("")
                        .to_lowercase(),
                );
            }
        }
    }
    for want in [
        "binance",
        "bybit",
        "bitfinex",
        "crypto.com",
        "deribit",
        "swissborg",
    ] {
        assert!(
            found
                .iter()
                .any(|f| f.contains(want)
                    || f.replace(['.', ' '], "").contains(&want.replace('.', ""))),
            "{want} not found among {found:?}"
        );
    }
    assert!(
        found.len() >= 7,
        "exchanges and at least one miner: {found:?}"
    );
}

/// A real positive in a real block: block 300,025 pays an address the GraphSense TagPack of
/// Ponzi schemes names ("cryptory"); the pack says so in its `abuse` field, which screening
/// reads as the scam category. (No OFAC-listed or ransomware address is paid in any of the
/// real blocks in ../shared/data: checked against every list there.)
#[test]
fn real_scam_positive_in_a_real_block() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let block = root.join("btc/mainnet/block300025.raw");
    let (ok, _, err) = cli(&dir, &["ingest", block.to_str().unwrap()]);
    assert!(ok, "{err}");
    let pack = root.join("labels/ponzi_scheme.yaml");
    let (ok, _, err) = cli(&dir, &["labels", "import", pack.to_str().unwrap()]);
    assert!(ok, "{err}");
    let addr = "1FyedPPk923wRfmVphV1CLt3bVLGxHZXpK";
    let s = json(&dir, &["screen", addr]);
    assert_eq!(s["risk"], "high", "{s}");
    let own = s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "ownership")
        .expect("ownership row");
    assert_eq!(own["category"], "scam");
    assert!(own["sats"].as_u64().unwrap() > 0);
    assert!(s["fired_rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "high-ownership"));
    // The paying transaction sent funds straight to the scam: direct exposure, high.
    let a = json(&dir, &["address", addr]);
    let txid = a["outputs"][0]["txid"].as_str().unwrap().to_string();
    let st = json(&dir, &["screen", &txid]);
    assert_eq!(st["risk"], "high", "{st}");
    assert!(st["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["category"] == "scam" && e["type"] == "direct" && e["direction"] == "sent"));
}
