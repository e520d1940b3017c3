//! The Ethereum commands end to end on real ethereum-etl rows (mainnet blocks
//! 17,173,049–50): ingest told apart by content, address/tx/block/stats/verify answers,
//! addresses in any case with EIP-55 checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
}

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(data: &Path, args: &[&str]) -> serde_json::Value {
    let o = run(data, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn ingest_fixtures(data: &Path) -> serde_json::Value {
    let files: Vec<String> = [
        "mainnet_17173049_blocks.json",
        "mainnet_17173049_transactions.json",
        "mainnet_17173049_token_transfers.json",
    ]
    .iter()
    .map(|n| fixture(n).display().to_string())
    .collect();
    let mut args = vec!["--json", "ingest"];
    args.extend(files.iter().map(String::as_str));
    ok_json(data, &args)
}

#[test]
fn ingest_by_content_then_query_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = ingest_fixtures(d);
    assert_eq!(
        (
            r["chain"].as_str(),
            r["blocks_added"].as_u64(),
            r["transactions_added"].as_u64()
        ),
        (Some("ethereum"), Some(2), Some(298))
    );
    assert!(
        d.join("ethereum/manifest.json").exists(),
        "a subdirectory per chain"
    );
    // Again: nothing new.
    let r = ingest_fixtures(d);
    assert_eq!(
        (r["blocks_added"].as_u64(), r["already_indexed"].as_u64()),
        (Some(0), Some(2))
    );

    let s = ok_json(d, &["--json", "stats", "--chain", "ethereum"]);
    assert_eq!(
        (
            s["blocks"].as_u64(),
            s["transactions"].as_u64(),
            s["last_block"].as_u64()
        ),
        (Some(2), Some(298), Some(17173050))
    );
    // The only index in the data directory: --chain can be left out.
    assert_eq!(ok_json(d, &["--json", "stats"])["chain"], "ethereum");
    assert_eq!(
        ok_json(d, &["--json", "verify"])["problems"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let t = ok_json(
        d,
        &[
            "--json",
            "tx",
            "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0",
        ],
    );
    assert_eq!(
        (t["block"].as_u64(), t["status"].as_str()),
        (Some(17173049), Some("success"))
    );
    let mv = t["movements"].as_array().unwrap();
    assert!(
        mv.iter().any(|m| m["kind"] == "token"
            && m["token"] == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
            && m["symbol"] == "WETH"
            && m["decimals"] == 18),
        "WETH transfer shown with its EIP-55 address"
    );

    // Withdrawal recipient, typed lower case, upper case and checksummed.
    let lower = "0xb9d7934878b5fb9610b3fe8a5e441e8fad7e293f";
    let a = ok_json(d, &["--json", "address", lower]);
    let eip55 = a["address"].as_str().unwrap().to_string();
    assert_ne!(eip55, lower);
    let upper = format!("0x{}", lower[2..].to_uppercase());
    assert_eq!(
        ok_json(d, &["--json", "address", &upper])["address"],
        a["address"]
    );
    assert_eq!(
        ok_json(d, &["--json", "address", &eip55])["movements_in"],
        a["movements_in"]
    );
    assert_eq!(a["movements_in"].as_u64(), Some(32));
    assert_eq!(a["balances"][0]["balance"], "430048384000000000");
    let at = ok_json(d, &["--json", "address", lower, "--at-block", "17173049"]);
    assert_eq!(at["balances"][0]["balance"], "231693495000000000");
    // A mixed-case address with a wrong checksum is refused, saying the right one.
    let mut bad = eip55.clone().into_bytes();
    let i = bad
        .iter()
        .rposition(|c| c.is_ascii_alphabetic() && *c != b'x')
        .unwrap();
    bad[i] ^= 0x20;
    let o = run(d, &["address", std::str::from_utf8(&bad).unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&eip55),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A malformed 0x value is named as a malformed Ethereum address or hash, not sent to the
    // Bitcoin index (which this data directory does not have).
    for (cmd, arg, says) in [
        ("address", "0xZZ", "0xZZ"),
        ("tx", "0x1234", "not an EVM transaction hash"),
        ("screen", "0xZZ", "0xZZ"),
        ("labels", "0xZZ", "0xZZ"),
    ] {
        let args: Vec<&str> = if cmd == "labels" {
            vec![cmd, "show", arg]
        } else {
            vec![cmd, arg]
        };
        let o = run(d, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{cmd} {arg}: {err}");
        assert!(
            err.contains(says) && !err.contains("no index"),
            "{cmd} {arg}: {err}"
        );
    }

    let b = ok_json(d, &["--json", "block", "17173050", "--chain", "ethereum"]);
    assert_eq!(b["transactions"].as_u64(), Some(182));
}

#[test]
fn a_bad_row_names_file_line_and_field_and_the_index_keeps_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ingest_fixtures(d);
    // A later block whose transaction has a value over 2^256.
    let blocks = std::fs::read_to_string(fixture("mainnet_17173049_blocks.json")).unwrap();
    let b2 = blocks
        .lines()
        .nth(1)
        .unwrap()
        .replace("17173050", "17173051");
    let tx = std::fs::read_to_string(fixture("mainnet_17173049_transactions.json")).unwrap();
    let t = tx.lines().next().unwrap().replace("\"block_number\": 17173049", "\"block_number\": 17173051")
        .replace("\"value\": 1642894143", "\"value\": 115792089237316195423570985008687907853269984665640564039457584007913129639936");
    let bf = d.join("blocks.json");
    std::fs::write(&bf, format!("{b2}\n")).unwrap();
    let tf = d.join("transactions.json");
    std::fs::write(&tf, format!("\n{t}\n")).unwrap();
    let o = run(
        d,
        &[
            "ingest",
            "--chain",
            "ethereum",
            bf.to_str().unwrap(),
            tf.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("transactions.json:2: field `value`") && err.contains("2^256"),
        "{err}"
    );
    let s = ok_json(d, &["--json", "stats", "--chain", "ethereum"]);
    assert_eq!(s["blocks"].as_u64(), Some(2));
    assert_eq!(
        ok_json(d, &["--json", "verify", "--chain", "ethereum"])["problems"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn labels_show_finds_an_ofac_eth_address_without_being_told_the_currency() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ofac = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tags/tests/data/ofac-2025-11-19");
    let eth = ofac.join("sanctioned_addresses_ETH.txt");
    let usdt = ofac.join("sanctioned_addresses_USDT.txt");
    for f in [&eth, &usdt] {
        let o = run(
            d,
            &[
                "labels",
                "import",
                f.to_str().unwrap(),
                "--version",
                "2025-11-19",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let first = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("0x"))
            .unwrap()
            .to_string()
    };
    for addr in [first(&eth), first(&usdt)] {
        // Any case: lower, upper and EIP-55 all find it.
        let a = cointrail_evm::parse_address(&addr).unwrap();
        for typed in [
            addr.to_lowercase(),
            format!("0x{}", addr[2..].to_uppercase()),
            a.to_checksum(None),
        ] {
            let v = ok_json(d, &["--json", "labels", "show", &typed]);
            let rows = v.as_array().unwrap();
            assert!(!rows.is_empty(), "{typed}: {v}");
            assert!(rows.iter().any(|r| r["category"] == "sanctioned"), "{v}");
        }
    }
    // Bitcoin addresses still default to BTC and are not looked up on EVM lists.
    let o = run(
        d,
        &[
            "--json",
            "labels",
            "show",
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
        ],
    );
    assert!(o.status.success());
}

#[test]
fn screen_shows_direct_exposure_to_a_labelled_counterparty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ingest_fixtures(d);
    // Label the withdrawal recipient's only counterparty kind: rows from the sink are
    // withdrawals; label the sender of the first transaction instead and screen its receiver.
    let o = run(
        d,
        &[
            "labels",
            "add",
            "0xae2fc483527b8ef99eb5d9b44875f005ba1fae13",
            "Test mixer",
            "--category",
            "mixer",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = ok_json(
        d,
        &[
            "--json",
            "screen",
            "0x6b75d8af000000e20b7a7ddf000ba900b4009a80",
        ],
    );
    let mixer: Vec<_> = s["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["category"] == "mixer"
                && e["direction"] == "received"
                && e["type"] == "direct"
                && e["token"].is_null()
        })
        .collect();
    assert_eq!(mixer.len(), 1, "{s}");
    // 1,642,894,143 wei of transaction 0 (plus whatever else it sent there in these blocks).
    assert!(
        mixer[0]["amount"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            >= 1642894143
    );
    let own = ok_json(
        d,
        &[
            "--json",
            "screen",
            "0xae2fc483527b8ef99eb5d9b44875f005ba1fae13",
        ],
    );
    assert!(
        own["exposure"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "ownership" && r["category"] == "mixer"),
        "{own}"
    );
}
