//! Ethereum screening end to end: `cointrail screen 0x…` on a small hand-built
//! ethereum-etl chain whose indirect exposure is worked out by hand below, USD from an
//! imported price table, and the API's Ethereum routes on a real server answering what
//! the CLI prints.

use serde_json::Value;
use std::path::Path;

mod support;
use support::*;

const S: &str = "0x5555555555555555555555555555555555555555"; // sanctioned
const X: &str = "0x7777777777777777777777777777777777777777"; // unlabelled middleman
const C: &str = "0xcccccccccccccccccccccccccccccccccccccccc"; // clean, funded before the index
const T: &str = "0x1111111111111111111111111111111111111111"; // the subject
const Y: &str = "0x9999999999999999999999999999999999999999"; // unlabelled
const E: &str = "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"; // an exchange
const Z: &str = "0x2222222222222222222222222222222222222222"; // keeps what it gets
const M: &str = "0x0000000000000000000000000000000000000001"; // fee recipient
const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const ETH: u128 = 1_000_000_000_000_000_000;
/// 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000;

fn h(n: u64) -> String {
    format!("0x{n:064x}")
}

/// Blocks 1..=4, one line per row; gas is free (price 0, no base fee) so that only the
/// transfers below move value.
fn write_chain(dir: &Path) -> Vec<std::path::PathBuf> {
    // (block, from, to, wei)
    let txs: &[(u64, &str, &str, u128)] = &[
        (1, S, X, 10 * ETH),
        (1, C, X, 30 * ETH),
        (1, S, USDC, 0), // S pays X 1,000 USDC (token transfer below)
        (2, X, T, 8 * ETH),
        (2, X, USDC, 0), // X pays T 500 USDC
        (3, T, Y, 6 * ETH),
        (4, Y, E, 3 * ETH),
        (4, Y, Z, ETH),
    ];
    write_txs(dir, txs, &|b| T0 + 12 * b)
}

/// ethereum-etl files of `txs` (block, from, to, wei), block `b` at Unix time `time(b)`; a
/// transaction to the USDC contract carries a token transfer.
fn write_txs(
    dir: &Path,
    txs: &[(u64, &str, &str, u128)],
    time: &dyn Fn(u64) -> u64,
) -> Vec<std::path::PathBuf> {
    let last = txs.iter().map(|t| t.0).max().unwrap_or(1);
    let mut blocks = String::new();
    for b in 1..=last {
        let n = txs.iter().filter(|t| t.0 == b).count();
        blocks.push_str(&format!(
            "{{\"type\": \"block\", \"number\": {b}, \"hash\": \"{}\", \"parent_hash\": \"{}\", \"miner\": \"{M}\", \"timestamp\": {}, \"transaction_count\": {n}, \"gas_used\": {}, \"gas_limit\": 30000000, \"base_fee_per_gas\": null}}\n",
            h(1000 + b),
            h(1000 + b - 1),
            time(b),
            21000 * n
        ));
    }
    let mut tx = String::new();
    let mut tt = String::new();
    let mut idx = std::collections::HashMap::new();
    for (i, (b, from, to, v)) in txs.iter().enumerate() {
        let k = idx.entry(*b).or_insert(0u64);
        tx.push_str(&format!(
            "{{\"type\": \"transaction\", \"hash\": \"{}\", \"nonce\": {i}, \"block_hash\": \"{}\", \"block_number\": {b}, \"transaction_index\": {k}, \"from_address\": \"{from}\", \"to_address\": \"{to}\", \"value\": {v}, \"gas\": 60000, \"gas_price\": 0, \"block_timestamp\": {}, \"max_fee_per_gas\": null, \"max_priority_fee_per_gas\": null, \"transaction_type\": 0, \"receipt_gas_used\": 21000, \"receipt_cumulative_gas_used\": {}, \"receipt_contract_address\": null, \"receipt_status\": 1, \"receipt_effective_gas_price\": 0}}\n",
            h(i as u64 + 1),
            h(1000 + b),
            time(*b),
            21000 * (*k + 1)
        ));
        if *to == USDC {
            let (tf, tt_to, amount) = if *from == S {
                (S, X, 1_000_000_000u64)
            } else {
                (X, T, 500_000_000u64)
            };
            tt.push_str(&format!(
                "{{\"type\": \"token_transfer\", \"token_address\": \"{USDC}\", \"from_address\": \"{tf}\", \"to_address\": \"{tt_to}\", \"value\": {amount}, \"transaction_hash\": \"{}\", \"log_index\": 0, \"block_number\": {b}, \"block_timestamp\": {}, \"block_hash\": \"{}\"}}\n",
                h(i as u64 + 1),
                time(*b),
                h(1000 + b)
            ));
        }
        *k += 1;
    }
    let files = [
        ("blocks.json", blocks),
        ("transactions.json", tx),
        ("token_transfers.json", tt),
    ];
    files
        .iter()
        .map(|(n, text)| {
            let p = dir.join(n);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let files = write_chain(d.path());
    let mut args = vec!["ingest", "--chain", "ethereum"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    cli(&data, &args);
    std::fs::write(
        data.join("attribution.tsv"),
        format!("{S}\tsanctions\tLazarus Group\n{E}\texchange\tExchange E\n"),
    )
    .unwrap();
    (d, data)
}

fn row<'a>(s: &'a Value, dir: &str, cat: &str, asset: &str) -> &'a Value {
    s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["direction"] == dir && r["category"] == cat && r["asset"] == asset)
        .unwrap_or_else(|| panic!("no {dir} {cat} {asset} row: {s}"))
}

fn flow<'a>(s: &'a Value, dir: &str, asset: &str) -> &'a Value {
    s[dir]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["asset"] == asset)
        .unwrap_or_else(|| panic!("no {dir} flow of {asset}: {s}"))
}

#[test]
fn indirect_exposure_splits_exactly_by_hand() {
    let (_d, data) = setup();
    let s = json(&data, &["screen", T]);
    assert_eq!(s["chain"], "ethereum");
    // Received: X paid T 8 ETH out of its earlier 10 (from S) + 30 (from C): 2 ETH from the
    // sanctioned S, two hops away; C's 6 ETH came from before the indexed blocks.
    let r = row(&s, "received", "sanctions", "ETH");
    assert_eq!(r["type"], "indirect");
    assert_eq!(r["amount"], (2 * ETH).to_string());
    assert_eq!(r["min_hops"], 2);
    assert_eq!(r["entities"][0], "Lazarus Group");
    assert_eq!(r["path"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["share"], 0.25);
    let f = flow(&s, "received", "ETH");
    assert_eq!(f["total"], (8 * ETH).to_string());
    assert_eq!(f["outside_index"], (6 * ETH).to_string());
    // The token separately: all of X's 500 USDC to T came from S's 1,000.
    let u = row(&s, "received", "sanctions", "USDC");
    assert_eq!(
        (u["amount"].as_str(), u["decimals"].as_u64()),
        (Some("500000000"), Some(6))
    );
    assert_eq!(u["token"], "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
    // Sent: T's 6 ETH to Y; Y later sent 3 to the exchange and 1 to Z (who keeps it), and
    // keeps 2: 3 ETH reach the exchange, 3 are still held along the way.
    let e = row(&s, "sent", "exchange", "ETH");
    assert_eq!(
        (e["type"].as_str(), e["amount"].as_str()),
        (Some("indirect"), Some("3000000000000000000"))
    );
    assert_eq!(e["share"], 0.5);
    let f = flow(&s, "sent", "ETH");
    assert_eq!(f["held"], (3 * ETH).to_string());
    // The same rules as Bitcoin: indirect sanctions exposure over 10% of what arrived.
    assert_eq!(s["risk"], "high");
    let fired: Vec<&str> = s["fired_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(fired.contains(&"indirect-severe-or-high"), "{fired:?}");
    // No price table: no USD, and the threshold says it could not be judged on price.
    assert!(r["usd"].is_null());
    assert!(
        r["usd_note"]
            .as_str()
            .unwrap()
            .contains("no ETH rate for 2023-11-14"),
        "{r}"
    );

    // One hop: only direct counterparties, none labelled.
    let s1 = json(&data, &["screen", T, "--max-hops", "1"]);
    assert!(s1["exposure"].as_array().unwrap().is_empty(), "{s1}");
    assert_eq!(
        flow(&s1, "received", "ETH")["unattributed"],
        (8 * ETH).to_string()
    );
    assert_eq!(s1["risk"], "none");

    // Direct and ownership: X dealt with S directly; S owns its label.
    let sx = json(&data, &["screen", X]);
    let d = row(&sx, "received", "sanctions", "ETH");
    assert_eq!(
        (d["type"].as_str(), d["amount"].as_str()),
        (Some("direct"), Some("10000000000000000000"))
    );
    assert_eq!(sx["risk"], "severe");
    let ss = json(&data, &["screen", S]);
    assert_eq!(row(&ss, "sent", "sanctions", "ETH")["type"], "ownership");

    // Human output names the asset in its units.
    let text = cli(&data, &["screen", T]);
    assert!(
        text.contains("risk High") && text.contains("2 ETH") && text.contains("500 USDC"),
        "{text}"
    );
}

#[test]
fn usd_from_the_price_table_at_the_days_rate() {
    let (d, data) = setup();
    let table = d.path().join("prices.csv");
    std::fs::write(
        &table,
        "date,asset,usd,source\n2023-11-14,ETH,2000,test-closes\n2023-11-14,USDC,1,test-closes\n",
    )
    .unwrap();
    cli(&data, &["prices", "import", table.to_str().unwrap()]);
    let s = json(&data, &["screen", T]);
    let r = row(&s, "received", "sanctions", "ETH");
    assert_eq!(r["usd"], 4000.0);
    assert_eq!(r["usd_rates"][0]["date"], "2023-11-14");
    assert_eq!(r["usd_rates"][0]["source"], "test-closes");
    assert_eq!(row(&s, "received", "sanctions", "USDC")["usd"], 500.0);
    let f = s["fired_rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "indirect-severe-or-high" && f["asset"] == "ETH")
        .unwrap();
    assert_eq!(f["usd"], 4000.0);
    assert_eq!(f["usd_rates"][0]["usd"], 2000.0);
    // A USD threshold judged on the table: 500 USDC of indirect sanctions exposure is
    // under $20,000 but all of the USDC received: fires by share, with its USD.
    let fu = s["fired_rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["asset"] == "USDC")
        .unwrap();
    assert_eq!(fu["usd"], 500.0);
    assert!(s["rules_not_judged"].as_array().unwrap().is_empty(), "{s}");
}

#[test]
fn ethereum_api_answers_what_the_cli_prints() {
    let (_d, data) = setup();
    let key = cli(&data, &["keys", "create", "eth"]).trim().to_string();
    let srv = Server::start(&data, &[]);
    let a = srv.addr.clone();
    let strip = |mut v: Value| {
        if let Some(p) = v["provenance"].as_object_mut() {
            p.remove("snapshot");
        }
        v
    };
    // Screening, with the chain in the path or inferred from the 0x address.
    let local = json(&data, &["screen", T]);
    for path in [
        format!("/v1/ethereum/screen/address/{T}"),
        format!("/v1/screen/address/{T}"),
    ] {
        let r = get(&a, &path, &key);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let api = r.json();
        assert_eq!(api["provenance"]["snapshot"], 1);
        assert_eq!(strip(api), local, "{path}");
    }
    let r = get(
        &a,
        &format!("/v1/ethereum/screen/address/{T}?max_hops=1"),
        &key,
    )
    .json();
    assert_eq!(strip(r), json(&data, &["screen", T, "--max-hops", "1"]));
    // The branch read cap: echoed in the parameters (default 32); Bitcoin has no use for it.
    assert_eq!(local["parameters"]["max_branch_reads"], 32);
    let r = get(
        &a,
        &format!("/v1/screen/address/{T}?max_branch_reads=1"),
        &key,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let capped = r.json();
    assert_eq!(capped["parameters"]["max_branch_reads"], 1);
    assert_eq!(
        strip(capped),
        json(&data, &["screen", T, "--max-branch-reads", "1"])
    );
    let r = get(
        &a,
        &format!(
            "/v1/screen/transaction/{}?max_branch_reads=1",
            "ab".repeat(32)
        ),
        &key,
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("max_branch_reads"))
    );
    // A batch mixes chains; a 0x subject is screened on Ethereum.
    let body = format!("{{\"subjects\":[\"{T}\"]}}");
    let b = http(&a, "POST", "/v1/screen/batch", Some(&key), Some(&body));
    assert_eq!(b.status, 200, "{}", String::from_utf8_lossy(&b.body));
    assert_eq!(strip(b.json()["results"][0]["screening"].clone()), local);

    // Address, transaction, block, stats: the CLI's --json.
    let addr = json(&data, &["address", T]);
    assert_eq!(
        get(&a, &format!("/v1/ethereum/addresses/{T}"), &key).json(),
        addr
    );
    assert_eq!(get(&a, &format!("/v1/addresses/{T}"), &key).json(), addr);
    let at = json(&data, &["address", X, "--at-block", "1"]);
    assert_eq!(
        get(&a, &format!("/v1/ethereum/addresses/{X}?at_block=1"), &key).json(),
        at
    );
    let tx = json(&data, &["tx", &h(4)]);
    assert_eq!(
        get(&a, &format!("/v1/ethereum/transactions/{}", h(4)), &key).json(),
        tx
    );
    assert_eq!(
        get(&a, &format!("/v1/transactions/{}", h(4)), &key).json(),
        tx
    );
    let blk = json(&data, &["block", "2", "--chain", "ethereum"]);
    assert_eq!(get(&a, "/v1/ethereum/blocks/2", &key).json(), blk);
    let st = json(&data, &["stats", "--chain", "ethereum"]);
    assert_eq!(get(&a, "/v1/ethereum/stats", &key).json(), st);

    // Bad input: 400 naming the field; unknown: 404.
    let r = get(&a, "/v1/ethereum/screen/address/0x12", &key);
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("address"))
    );
    let r = get(&a, "/v1/screen/address/0xZZ", &key);
    assert_eq!(r.status, 400);
    let r = get(
        &a,
        "/v1/ethereum/screen/address/0x3333333333333333333333333333333333333333",
        &key,
    );
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let r = get(&a, "/v1/ethereum/blocks/99", &key);
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (404, Some("number"))
    );
    let r = get(&a, "/v1/ethereum/blocks/x", &key);
    assert_eq!(r.status, 400);
    let r = get(&a, "/v1/ethereum/transactions/0x1234", &key);
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("hash")));
    // Documented in the OpenAPI document.
    let doc = http(&a, "GET", "/openapi.json", None, None).json();
    for p in [
        "/v1/ethereum/stats",
        "/v1/ethereum/addresses/{address}",
        "/v1/ethereum/transactions/{hash}",
        "/v1/ethereum/blocks/{number}",
        "/v1/ethereum/screen/address/{address}",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} not documented");
    }
    let params = &doc["paths"]["/v1/ethereum/screen/address/{address}"]["get"]["parameters"];
    assert!(params
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "max_branch_reads" && p["in"] == "query"));
    // The flow's schema (the asset flattened in, then the amounts) names the new part.
    let flow = doc["components"]["schemas"]["AssetFlow"].to_string();
    assert!(flow.contains("\"beyond_branch_reads\""), "{flow}");
    srv.stop();
}

#[test]
fn a_delisted_label_counts_before_its_delisting_only() {
    // An address on OFAC's 2024-09-27 ETH list and gone from the 2025-11-19 one (Tornado
    // Cash): it pays T 1 ETH before the delisting and 2 ETH after.
    const D: &str = "0x01e2919679362dfbc9ee1644ba9c6da6d6245bb1";
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let day = 86_400;
    let files = write_txs(
        d.path(),
        &[(1, D, T, ETH), (2, D, T, 2 * ETH)],
        &|b| {
            if b == 1 {
                1_735_689_600 + day
            } else {
                1_767_225_600 + day
            }
        }, // 2025-01-02, 2026-01-02
    );
    let mut args = vec!["ingest", "--chain", "ethereum"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    cli(&data, &args);
    // The two versions of the list, as far as this address goes (named as the publisher
    // names them: the currency comes from the file name).
    for v in ["old", "new"] {
        std::fs::create_dir_all(d.path().join(v)).unwrap();
    }
    let old = d.path().join("old/sanctioned_addresses_ETH.txt");
    std::fs::write(
        &old,
        format!("{D}\n0x03893a7c7463ae47d46bc7f091665f1893656003\n"),
    )
    .unwrap();
    let new = d.path().join("new/sanctioned_addresses_ETH.txt");
    std::fs::write(&new, "0x03893a7c7463ae47d46bc7f091665f1893656003\n").unwrap();
    for (f, v) in [(&old, "2024-09-27"), (&new, "2025-11-19")] {
        cli(
            &data,
            &[
                "labels",
                "import",
                f.to_str().unwrap(),
                "--format",
                "list",
                "--source",
                "ofac-eth",
                "--version",
                v,
            ],
        );
    }
    let s = json(&data, &["screen", T]);
    let rows: Vec<&Value> = s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["category"] == "sanctions" && r["direction"] == "received")
        .collect();
    let listed = rows
        .iter()
        .find(|r| r["delisted"] == false)
        .unwrap_or_else(|| panic!("{s}"));
    let gone = rows.iter().find(|r| r["delisted"] == true).unwrap();
    assert_eq!(listed["amount"], ETH.to_string());
    assert_eq!(
        (gone["amount"].as_str(), gone["level"].as_str()),
        (Some("2000000000000000000"), Some("none"))
    );
    assert_eq!(s["risk"], "severe", "{s}");
}
