//! Token metadata: the etl `tokens` table read from real ethereum-etl fixtures, and the
//! node's `eth_call` answers behind those rows decoded to the same values (so a follower
//! that asks the node keeps what an etl export would have given).

use std::path::{Path, PathBuf};

use cointrail_evm::etl::{open_etl_file, BlockStream, Kind, TokenRow};
use cointrail_evm::tokens::{decode_decimals_return, decode_text_return, MAX_NAME, MAX_SYMBOL};
use cointrail_evm::U256;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl/tokens")
        .join(p)
}

fn read_tokens(p: &Path) -> Vec<TokenRow> {
    let mut f = open_etl_file(p).unwrap();
    assert_eq!(f.kind(), Kind::Tokens, "{}", p.display());
    assert!(
        f.next_row().is_none(),
        "token rows are kept aside, not block rows"
    );
    f.take_tokens().into_iter().map(|t| t.row).collect()
}

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn real_tokens_rows_read_and_equal_the_decoded_node_answers() {
    let answers = std::fs::read_to_string(fixture("eth_call_answers.txt")).unwrap();
    for (case, file) in [
        (
            "token_with_alternative_return_type",
            "eos_bytes32_symbol_tokens.csv",
        ),
        ("token_with_invalid_data", "short_string_tokens.csv"),
    ] {
        let rows = read_tokens(&fixture(file));
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let answer = |sel: &str| {
            let l = answers
                .lines()
                .find(|l| l.starts_with(case) && l.split(' ').nth(1) == Some(sel))
                .unwrap_or_else(|| panic!("{case} {sel}"));
            hex(l.split(' ').nth(2).unwrap())
        };
        let symbol = decode_text_return(&answer("0x95d89b41"));
        let name = decode_text_return(&answer("0x06fdde03"));
        let decimals = decode_decimals_return(&answer("0x313ce567"));
        let supply = U256::from_be_slice(&answer("0x18160ddd"));
        assert_eq!(symbol, row.symbol, "{case}: symbol");
        assert_eq!(name, row.name, "{case}: name");
        assert_eq!(decimals, row.decimals, "{case}: decimals");
        assert_eq!(Some(supply), row.total_supply, "{case}: total supply");
    }
    let eos = &read_tokens(&fixture("eos_bytes32_symbol_tokens.csv"))[0];
    assert_eq!(eos.symbol.as_deref(), Some("EOS"));
    assert_eq!(eos.name, None);
    assert_eq!(eos.decimals, Some(18));
    assert_eq!(
        eos.total_supply,
        Some(U256::from(10u64).pow(U256::from(27u64)))
    );
    assert_eq!(
        format!("{:#x}", eos.address),
        "0x86fa049857e0209aa7d9e616f7eb3b3b78ecfdb0"
    );
}

#[test]
fn token_lines_of_a_stream_file_are_kept_beside_its_blocks() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("stream.json");
    std::fs::write(
        &p,
        concat!(
            r#"{"type": "block", "number": 7, "hash": "0x0000000000000000000000000000000000000000000000000000000000000007", "parent_hash": "0x0000000000000000000000000000000000000000000000000000000000000006", "miner": "0x0000000000000000000000000000000000000001", "timestamp": 1700000000, "transaction_count": 0, "gas_used": 0, "gas_limit": 30000000}"#,
            "\n",
            r#"{"type": "token", "address": "0x86fa049857e0209aa7d9e616f7eb3b3b78ecfdb0", "symbol": "EOS", "name": null, "decimals": 18, "total_supply": "1000000000000000000000000000", "block_number": 7}"#,
            "\n",
        ),
    )
    .unwrap();
    let mut s = BlockStream::open(&[p]).unwrap();
    let b = s.next_block().unwrap().unwrap();
    assert_eq!(b.number(), Some(7));
    assert!(s.next_block().is_none());
    let t = s.take_tokens();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].line, 2);
    assert_eq!(t[0].row.symbol.as_deref(), Some("EOS"));
    assert_eq!(t[0].row.block_number, Some(7));
}

#[test]
fn hostile_token_rows_are_cleaned_or_refused_with_file_line_and_field() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("tokens.csv");
    let long = "N".repeat(500);
    std::fs::write(
        &p,
        format!(
            "address,symbol,name,decimals,total_supply,block_number\n\
             0x1111111111111111111111111111111111111111,\"\u{1b}[2JUS\nDT\",{long},300,5,\n"
        ),
    )
    .unwrap();
    let rows = read_tokens(&p);
    assert_eq!(rows[0].symbol.as_deref(), Some("[2JUSDT"));
    assert_eq!(rows[0].name.as_ref().unwrap().chars().count(), MAX_NAME);
    assert_eq!(rows[0].decimals, None, "300 decimals say nothing usable");
    assert!(rows[0].symbol.as_ref().unwrap().len() <= MAX_SYMBOL);

    for (row, field) in [
        ("0x11,USDT,Tether,6,1,", "address"),
        (
            "0x1111111111111111111111111111111111111111,USDT,Tether,six,1,",
            "decimals",
        ),
        (
            &*format!(
                "0x1111111111111111111111111111111111111111,USDT,Tether,6,1{},",
                "0".repeat(80)
            ),
            "total_supply",
        ),
    ] {
        std::fs::write(
            &p,
            format!("address,symbol,name,decimals,total_supply,block_number\n{row}\n"),
        )
        .unwrap();
        let mut f = open_etl_file(&p).unwrap();
        let e = f.next_row().unwrap().unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert!(e.to_string().contains("tokens.csv:2"), "{e}");
    }
}
