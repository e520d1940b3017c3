//! Issue 20, item 2: every numeric field of an ETL row is range-checked. A value too large for
//! its field is refused with an error naming the field, never cut to its low bits.

use cointrail_chain::etl::read_etl_bytes;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn rows() -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/worked/e1.json");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn read(rows: &[Value]) -> Result<usize, String> {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    read_etl_bytes(&[(PathBuf::from("t.json"), text.into_bytes())])
        .map(|b| b.len())
        .map_err(|e| e.to_string())
}

/// The first non-coinbase row: its txid commits to its fields, so an edit must keep the
/// low 32 bits of the field the same for the row to still hash right (the attack).
fn spending_row(rows: &[Value]) -> usize {
    rows.iter().position(|r| r["is_coinbase"] == false).unwrap()
}

#[test]
fn the_unchanged_rows_read() {
    assert!(read(&rows()).unwrap() > 0);
}

#[test]
fn an_output_index_past_32_bits_is_refused_not_wrapped() {
    let mut r = rows();
    let i = spending_row(&r);
    let vout = r[i]["inputs"][0]["spent_output_index"].as_u64().unwrap();
    r[i]["inputs"][0]["spent_output_index"] = Value::from(vout + (1u64 << 32));
    let e = read(&r).unwrap_err();
    assert!(e.contains("inputs[0].spent_output_index"), "{e}");
    assert!(e.contains("out of range"), "{e}");
    assert!(e.contains("t.json line"), "{e}");
    // As a string (BigQuery NUMERIC) too.
    r[i]["inputs"][0]["spent_output_index"] = Value::from((vout + (1u64 << 32)).to_string());
    let e = read(&r).unwrap_err();
    assert!(e.contains("inputs[0].spent_output_index"), "{e}");
}

#[test]
fn a_sequence_past_32_bits_is_refused() {
    let mut r = rows();
    let i = spending_row(&r);
    r[i]["inputs"][0]["sequence"] = Value::from(0xffff_ffffu64 + (1u64 << 32));
    let e = read(&r).unwrap_err();
    assert!(
        e.contains("inputs[0].sequence") && e.contains("out of range"),
        "{e}"
    );
}

#[test]
fn lock_time_version_index_and_height_are_range_checked() {
    for (field, bad) in [
        ("lock_time", Value::from(1u64 << 32)),
        ("version", Value::from(1u64 << 33)),
        ("index", Value::from(1u64 << 32)),
        ("block_number", Value::from(1u64 << 32)),
        ("block_timestamp", Value::from(1u64 << 32)),
        ("lock_time", Value::from(-1)),
        ("lock_time", serde_json::json!(1e30)),
    ] {
        let mut r = rows();
        let i = spending_row(&r);
        r[i][field] = bad.clone();
        let e = read(&r).unwrap_err();
        assert!(e.contains(&format!("'{field}'")), "{field}={bad}: {e}");
    }
}

#[test]
fn an_output_over_21_million_btc_is_refused() {
    let mut r = rows();
    // A coinbase row: its txid is taken from the row, so nothing else would catch it.
    r[0]["outputs"][0]["value"] = Value::from(21_000_000u64 * 100_000_000 + 1);
    let e = read(&r).unwrap_err();
    assert!(
        e.contains("outputs[0].value") && e.contains("21 million"),
        "{e}"
    );
    r[0]["outputs"][0]["value"] = Value::from("99999999999999999999999");
    let e = read(&r).unwrap_err();
    assert!(
        e.contains("outputs[0].value") && e.contains("out of range"),
        "{e}"
    );
    r[0]["outputs"][0]["value"] = Value::from(21_000_000u64 * 100_000_000);
    read(&r).unwrap();
}
