//! Logs kept by the EVM index, end to end on real mainnet rows (blocks 17173049-50, an
//! MEV sandwich around a Uniswap v2 pool): `tx` lists the Swap decoded from the stored
//! log, and `trace` of a case over the ingested chain turns it into a conversion edge.
//! Ingested without the logs file, the same chain decodes nothing and says logs are not
//! kept. The expected amounts are read from the log row itself, not written down here.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::json;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
        .display()
        .to_string()
}

const V2_SWAP: &str = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822";
const TX: &str = "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0";

/// The Uniswap v2 Swap log of `TX` in the fixture: (log index, pool, amounts as decimal
/// strings: amount0In, amount1In, amount0Out, amount1Out, recipient topic).
fn swap_log() -> (u64, String, [String; 4], String) {
    let text = std::fs::read_to_string(fixture("mainnet_17173049_logs.json")).unwrap();
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        if r["transaction_hash"] == TX && r["topics"][0] == V2_SWAP {
            let data = r["data"].as_str().unwrap().trim_start_matches("0x");
            let word = |i: usize| {
                let w = &data[64 * i..64 * (i + 1)];
                cointrail_evm::U256::from_str_radix(w, 16)
                    .unwrap()
                    .to_string()
            };
            let to = r["topics"][2].as_str().unwrap();
            return (
                r["log_index"].as_u64().unwrap(),
                r["address"].as_str().unwrap().to_lowercase(),
                [word(0), word(1), word(2), word(3)],
                format!("0x{}", &to[26..]),
            );
        }
    }
    panic!("the fixture holds the swap of {TX}");
}

fn ingest(dir: &Path, with_logs: bool) -> PathBuf {
    let data = dir.join(if with_logs { "with" } else { "without" });
    let mut args = vec![
        "ingest".to_string(),
        "--chain".into(),
        "ethereum".into(),
        fixture("mainnet_17173049_blocks.json"),
        fixture("mainnet_17173049_transactions.json"),
        fixture("mainnet_17173049_token_transfers.json"),
    ];
    if with_logs {
        args.push(fixture("mainnet_17173049_logs.json"));
    }
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    json(&data, &a);
    data
}

#[test]
fn tx_lists_the_swap_and_trace_converts_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ingest(tmp.path(), true);
    let (li, pool, amounts, recipient) = swap_log();
    let t = json(&data, &["tx", TX]);
    assert_eq!(t["logs"], 4);
    let ev = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["log_index"] == li)
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(ev["kind"], "uniswap_v2_swap");
    assert_eq!(ev["contract"].as_str().unwrap().to_lowercase(), pool);
    assert_eq!(ev["recipient"].as_str().unwrap().to_lowercase(), recipient);
    // One side in, the other out: the event's own nonzero amounts.
    let nonzero: Vec<&String> = amounts.iter().filter(|a| *a != "0").collect();
    assert_eq!(nonzero.len(), 2);
    assert_eq!(&ev["amount_in"], nonzero[0].as_str());
    assert_eq!(&ev["amount_out"], nonzero[1].as_str());
    assert_eq!(ev["asset_in"], "WETH");
    let stats = json(&data, &["stats", "--chain", "ethereum"]);
    assert!(stats["logs"].as_u64().unwrap() > 600);

    // A case from the transaction: its WETH goes through the pool as a conversion.
    json(&data, &["case", "create", "sandwich", "--from-tx", TX]);
    let tr = json(&data, &["trace", "sandwich"]);
    assert_eq!(tr["conserved"], true);
    let conv = tr["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tx"] == TX)
        .unwrap_or_else(|| panic!("{:#}", tr["conversions"]));
    assert_eq!(conv["protocol"], "uniswap_v2");
    assert_eq!(&conv["amount_in"], nonzero[0].as_str());
    assert_eq!(&conv["amount_out"], nonzero[1].as_str());
    assert_eq!(
        conv["recipient"].as_str().unwrap().to_lowercase(),
        recipient
    );
}

#[test]
fn without_a_logs_file_nothing_is_decoded_and_tx_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ingest(tmp.path(), false);
    let t = json(&data, &["tx", TX]);
    assert_eq!(t["logs"], Value::Null);
    assert_eq!(t["events"], serde_json::json!([]));
    json(&data, &["case", "create", "sandwich", "--from-tx", TX]);
    let tr = json(&data, &["trace", "sandwich"]);
    assert_eq!(tr["conversions"], serde_json::json!([]));
    assert_eq!(tr["conserved"], true);
    let human = support::cli(&data, &["tx", TX]);
    assert!(human.contains("logs: not kept"), "{human}");
}

fn read_logs(path: &Path) -> Vec<cointrail_evm::etl::Log> {
    cointrail_evm::etl::open_etl_file(path)
        .unwrap()
        .map(|r| match r.unwrap().row {
            cointrail_evm::etl::Row::Log(l) => l,
            other => panic!("not a log row: {other:?}"),
        })
        .collect()
}

#[test]
fn export_without_a_node_writes_the_logs_from_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ingest(tmp.path(), true);
    let out = tmp.path().join("out");
    let r = json(
        &data,
        &[
            "export",
            "--format",
            "etl",
            "--chain",
            "ethereum",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r["rows"]["logs"], 681);
    assert!(!out.join("blocks.json").exists());
    let mut want = read_logs(Path::new(&fixture("mainnet_17173049_logs.json")));
    want.sort_by_key(|l| (l.block_number, l.log_index));
    assert_eq!(read_logs(&out.join("logs.json")), want);

    // An index without logs cannot: the error says what to give.
    let data = ingest(tmp.path(), false);
    let (ok, _, err) = support::try_cli(
        &data,
        &[
            "export",
            "--format",
            "etl",
            "--chain",
            "ethereum",
            out.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(
        !ok && err.contains("--rpc") && err.contains("17173049"),
        "{err}"
    );
}
