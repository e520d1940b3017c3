//! `cointrail trace` of a case whose source is an Ethereum transaction: the account models
//! over the EVM index, end to end (ethereum-etl rows → ingest → label → case → trace).
//! The chain is `crates/account/tests/worked.rs`'s chain 1, with gas paid to the block's
//! miner, so the figures are the hand-computed ones there.

use std::path::Path;
use std::process::{Command, Output};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
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

fn addr(b: u8) -> String {
    format!("0x{}", format!("{b:02x}").repeat(20))
}
fn hash(n: u64) -> String {
    format!("0x{n:064x}")
}

/// Blocks 99..=104, one transaction each: (from, to, value, gas used at price 1).
fn write_chain(dir: &Path) -> String {
    let txs: [(u8, u8, u64, u64); 6] = [
        (0x05, 0x02, 50, 0),   // FUNDER → THIEF (clean prior balance)
        (0x01, 0x02, 1000, 0), // VICTIM → THIEF: the theft
        (0x02, 0x03, 300, 10), // THIEF → ALICE, gas 10
        (0x06, 0x03, 100, 0),  // DONOR → ALICE
        (0x03, 0x07, 150, 0),  // ALICE → EXCHANGE
        (0x02, 0x04, 500, 20), // THIEF → BOB, gas 20
    ];
    let mut s = String::new();
    for (i, (from, to, value, gas)) in txs.iter().enumerate() {
        let n = 99 + i as u64;
        s.push_str(&format!(
            r#"{{"type":"block","number":{n},"hash":"{}","parent_hash":"{}","miner":"{}","timestamp":{},"transaction_count":1,"gas_used":{gas},"gas_limit":30000000}}"#,
            hash(n),
            hash(n - 1),
            addr(0xaa),
            1_700_000_000 + n * 12
        ));
        s.push('\n');
        s.push_str(&format!(
            r#"{{"type":"transaction","hash":"{}","nonce":{i},"block_number":{n},"transaction_index":0,"from_address":"{}","to_address":"{}","value":{value},"gas":21000,"gas_price":1,"receipt_gas_used":{gas},"receipt_status":1,"receipt_effective_gas_price":1}}"#,
            hash(1000 + n),
            addr(*from),
            addr(*to)
        ));
        s.push('\n');
    }
    let p = dir.join("stream.json");
    std::fs::write(&p, s).unwrap();
    p.display().to_string()
}

#[test]
fn an_ethereum_case_traces_with_the_account_models() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let file = write_chain(dir.path());
    ok(&d, &["--json", "ingest", "--chain", "ethereum", &file]);
    ok(
        &d,
        &[
            "labels",
            "add",
            &addr(0x07),
            "Some Exchange",
            "--category",
            "exchange",
        ],
    );
    let theft = hash(1000 + 100);
    ok(&d, &["case", "create", "eth-heist", "--from-tx", &theft]);
    // A hash the index lacks is refused at creation, naming it.
    let o = run(&d, &["case", "create", "typo", "--from-tx", &hash(7)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not in the Ethereum index"));

    // FIFO (see worked.rs balance_fifo): fee 20, exchange 110, ALICE 150, BOB 500,
    // THIEF 220; 20 + 110 + 870 = 1000.
    let r: serde_json::Value =
        serde_json::from_str(&ok(&d, &["--json", "trace", "eth-heist"])).unwrap();
    assert_eq!(r["chain"], "ethereum");
    assert_eq!(r["model"], "fifo");
    assert_eq!(r["conserved"], true);
    let t = &r["totals"][0];
    assert_eq!(
        (
            t["source"].as_str(),
            t["fee"].as_str(),
            t["stopped"].as_str(),
            t["held"].as_str()
        ),
        (Some("1000"), Some("20"), Some("110"), Some("870"))
    );
    assert_eq!(t["source_label"], "eth-heist");
    assert_eq!(r["stops"][0]["category"], "exchange");
    assert_eq!(r["stops"][0]["name"], "Some Exchange");
    let held = |a: u8| -> Option<String> {
        r["held"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| {
                h["address"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&addr(a))
            })
            .map(|h| h["amount"].as_str().unwrap().to_string())
    };
    assert_eq!(held(0x03).as_deref(), Some("150"));
    assert_eq!(held(0x04).as_deref(), Some("500"));
    assert_eq!(held(0x02).as_deref(), Some("220"));

    // Haircut (worked.rs balance_haircut): fee 29, exchange 107, held 864.
    let r: serde_json::Value = serde_json::from_str(&ok(
        &d,
        &["--json", "trace", "eth-heist", "--model", "haircut"],
    ))
    .unwrap();
    let t = &r["totals"][0];
    assert_eq!(
        (t["fee"].as_str(), t["stopped"].as_str(), t["held"].as_str()),
        (Some("29"), Some("107"), Some("864"))
    );

    // Ad hoc, and for people.
    let h = ok(&d, &["trace", "--from-tx", &theft, "--model", "lifo"]);
    assert!(h.contains("ethereum trace, model lifo"), "{h}");
    assert!(h.contains("Some Exchange"), "{h}");

    // A model with no account form is refused with the ones that exist.
    let o = run(&d, &["trace", "eth-heist", "--model", "tiho"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("fifo, lifo, tifo, haircut or poison"));
}

/// An exchange deposit address nobody labelled is found by its sweep pattern: it forwards
/// everything it receives to one labelled exchange hot wallet, which pays out to several
/// customers. The trace stops there as at the exchange, with the hot wallet named. A
/// thief's own address that pays a labelled deposit address (itself only a forwarder) is
/// not taken for one. Blocks 99…, gas 0 (FIFO, by hand: the thief holds the 1000 stolen,
/// 400 stop at D, 300 at the labelled deposit address L through E, 300 stay).
#[test]
fn an_unlabelled_deposit_address_is_found_by_its_sweep() {
    let txs: [(u8, u8, u64); 9] = [
        (0x05, 0x07, 1000), // FUNDER → HOT (the hot wallet's float)
        (0x01, 0x02, 1000), // VICTIM → THIEF: the theft
        (0x02, 0x0d, 400),  // THIEF → D (unlabelled deposit address)
        (0x0d, 0x07, 400),  // D sweeps to HOT
        (0x07, 0x11, 100),  // HOT → a customer
        (0x07, 0x12, 100),  // HOT → another
        (0x02, 0x0e, 300),  // THIEF → E (the thief's own)
        (0x0e, 0x0f, 300),  // E → L (a labelled deposit address)
        (0x0f, 0x07, 300),  // L sweeps to HOT
    ];
    let mut s = String::new();
    for (i, (from, to, value)) in txs.iter().enumerate() {
        let n = 99 + i as u64;
        s.push_str(&format!(
            r#"{{"type":"block","number":{n},"hash":"{}","parent_hash":"{}","miner":"{}","timestamp":{},"transaction_count":1,"gas_used":0,"gas_limit":30000000}}"#,
            hash(n),
            hash(n - 1),
            addr(0xaa),
            1_700_000_000 + n * 12
        ));
        s.push('\n');
        s.push_str(&format!(
            r#"{{"type":"transaction","hash":"{}","nonce":{i},"block_number":{n},"transaction_index":0,"from_address":"{}","to_address":"{}","value":{value},"gas":21000,"gas_price":1,"receipt_gas_used":0,"receipt_status":1,"receipt_effective_gas_price":1}}"#,
            hash(1000 + n),
            addr(*from),
            addr(*to)
        ));
        s.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let file = dir.path().join("stream.json");
    std::fs::write(&file, s).unwrap();
    ok(
        &d,
        &[
            "--json",
            "ingest",
            "--chain",
            "ethereum",
            file.to_str().unwrap(),
        ],
    );
    std::fs::write(
        d.join("attribution.tsv"),
        format!(
            "{}\texchange\tSome Exchange\n{}\texchange\tSome Exchange\n",
            addr(0x07),
            addr(0x0f)
        ),
    )
    .unwrap();
    ok(
        &d,
        &["case", "create", "sweep", "--from-tx", &hash(1000 + 100)],
    );
    let r: serde_json::Value =
        serde_json::from_str(&ok(&d, &["--json", "trace", "sweep"])).unwrap();
    assert_eq!(r["conserved"], true);
    let stops = r["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 2, "{r}");
    let at = |a: u8| {
        stops
            .iter()
            .find(|s| {
                s["address"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&addr(a))
            })
            .unwrap_or_else(|| panic!("no stop at {}: {r}", addr(a)))
    };
    let dstop = at(0x0d);
    assert_eq!(dstop["amount"], "400");
    assert_eq!(dstop["category"], "exchange");
    let name = dstop["name"].as_str().unwrap();
    assert!(
        name.starts_with("Some Exchange (deposit address: sweeps to ")
            && name.to_lowercase().contains(&addr(0x07)),
        "{name}"
    );
    let lstop = at(0x0f);
    assert_eq!(
        (&lstop["amount"], &lstop["name"]),
        (&"300".into(), &"Some Exchange".into())
    );
    let t = &r["totals"][0];
    assert_eq!(
        (t["stopped"].as_str(), t["held"].as_str()),
        (Some("700"), Some("300"))
    );
    // E paid a labelled deposit address (a forwarder, not a hot wallet): no stop at E, and
    // it held nothing at the end; THIEF holds the rest.
    assert!(!stops.iter().any(|s| s["address"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case(&addr(0x0e))));
}
