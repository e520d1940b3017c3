//! Bad input is refused with file:line and the field, never a panic or a silent skip.

use std::path::{Path, PathBuf};

use cointrail_evm::etl::{open_etl_file, Located, Row, RowError};
use cointrail_evm::movement::{block_movements, group_blocks};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn read(p: &Path) -> Result<Vec<Located<Row>>, RowError> {
    open_etl_file(p)?.collect()
}

/// The first real transaction line, with one field replaced.
fn tx_line_with(field: &str, value: &str) -> String {
    let line = std::fs::read_to_string(fixture("mainnet_17173049_transactions.json"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line).unwrap();
    let raw = format!("{{\"x\":{value}}}");
    let x: serde_json::Value = serde_json::from_str::<serde_json::Value>(&raw)
        .unwrap_or(serde_json::Value::String(value.into()));
    v.insert(field.into(), x["x"].clone());
    let mut s = serde_json::to_string(&v).unwrap();
    // serde_json turns big integers into floats; put the exact digits back.
    if value.len() > 18 && value.bytes().all(|b| b.is_ascii_digit()) {
        let f = serde_json::to_string(&x["x"]).unwrap();
        s = s.replace(&format!("\"{field}\":{f}"), &format!("\"{field}\":{value}"));
    }
    s
}

#[test]
fn a_value_over_2_pow_256_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let ok = tx_line_with("value", "1");
    let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    let p = write(
        dir.path(),
        "transactions.json",
        &format!("{ok}\n{}\n", tx_line_with("value", over)),
    );
    let e = read(&p).unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(e.field.as_deref(), Some("value"));
    assert!(
        e.to_string().contains("transactions.json:2: field `value`"),
        "{e}"
    );
    assert!(e.message.contains("exceeds 2^256-1"), "{e}");
}

#[test]
fn a_wrong_type_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "t.json",
        &format!("{}\n", tx_line_with("gas", "\"lots\"")),
    );
    let e = read(&p).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (1, Some("gas")));
    let p = write(
        dir.path(),
        "t2.json",
        &format!("{}\n", tx_line_with("from_address", "\"0x12\"")),
    );
    let e = read(&p).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("from_address"));
    // A CSV row with a bad number, on line 3 of the file (header is line 1).
    let csv = std::fs::read_to_string(fixture("mainnet_17173049_transactions.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().take(3).map(String::from).collect();
    lines[2] = lines[2].replacen(",93,", ",9x3,", 1);
    let p = write(dir.path(), "transactions.csv", &(lines.join("\n") + "\n"));
    let e = read(&p).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (3, Some("nonce")), "{e}");
    let p = write(dir.path(), "junk.json", "{\"hello\": 1}\n");
    assert!(read(&p)
        .unwrap_err()
        .message
        .contains("no ethereum-etl row"));
}

#[test]
fn a_transaction_whose_block_is_missing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "transactions.json",
        &format!("{}\n", tx_line_with("block_number", "99")),
    );
    let rows = read(&p).unwrap();
    let e = group_blocks(rows).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (1, Some("block_number")));
    assert!(
        e.message.contains("block 99 is not among the blocks read"),
        "{e}"
    );
}

#[test]
fn traces_that_do_not_add_up_are_refused_and_failed_frames_move_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let block = std::fs::read_to_string(fixture("mainnet_17173049_blocks.json"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let tx = tx_line_with("value", "1000");
    let hash = "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0";
    let from = "0xae2fc483527b8ef99eb5d9b44875f005ba1fae13";
    let to = "0x6b75d8af000000e20b7a7ddf000ba900b4009a80";
    let other = "0x1111111111111111111111111111111111111111";
    let trace = |addr: &str, value: u64, err: &str, f: &str, t: &str| {
        format!(
        "{{\"type\":\"trace\",\"block_number\":17173049,\"transaction_hash\":\"{hash}\",\"transaction_index\":0,\"from_address\":\"{f}\",\"to_address\":\"{t}\",\"value\":{value},\"trace_type\":\"call\",\"call_type\":\"call\",\"subtraces\":0,\"trace_address\":{addr},\"error\":{err},\"status\":{}}}",
        if err == "null" { 1 } else { 0 })
    };
    // Top frame moves 999 where the transaction moves 1000.
    let p = write(
        dir.path(),
        "bad.json",
        &format!("{block}\n{tx}\n{}\n", trace("[]", 999, "null", from, to)),
    );
    let e = group_blocks(read(&p).unwrap())
        .and_then(|b| block_movements(b.values().next().unwrap()))
        .unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (3, Some("value")), "{e}");
    assert!(
        e.message.contains("999") && e.message.contains("1000"),
        "{e}"
    );
    // A reverted child fails its own child; siblings still move.
    let p = write(
        dir.path(),
        "ok.json",
        &format!(
            "{block}\n{tx}\n{}\n{}\n{}\n{}\n",
            trace("[]", 1000, "null", from, to),
            trace("[0]", 600, "\"Reverted\"", to, other),
            trace("[0,0]", 500, "null", other, from),
            trace("[1]", 300, "null", to, other)
        ),
    );
    let blocks = group_blocks(read(&p).unwrap()).unwrap();
    let ms = block_movements(blocks.values().next().unwrap()).unwrap();
    let native: Vec<_> = ms
        .iter()
        .filter(|m| {
            matches!(
                m.kind,
                cointrail_evm::movement::MovementKind::Value
                    | cointrail_evm::movement::MovementKind::Internal
            )
        })
        .map(|m| (m.trace_address.clone(), m.amount.to::<u64>()))
        .collect();
    assert_eq!(native, vec![(vec![], 1000), (vec![1], 300)]);
}
