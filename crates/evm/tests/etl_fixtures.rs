//! The readers and the movement model on real ethereum-etl rows (mainnet blocks
//! 17,173,049–50 and older trace fixtures, testdata/eth/etl).

use std::io::Write;
use std::path::{Path, PathBuf};

use cointrail_evm::etl::read::etl_files;
use cointrail_evm::etl::{open_etl_file, Format, Kind, Located, Row};
use cointrail_evm::movement::{block_movements, group_blocks, Asset, MovementKind, SINK};
use cointrail_evm::{Address, U256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
}

fn read_all(p: &Path) -> Vec<Located<Row>> {
    open_etl_file(p).unwrap().map(|r| r.unwrap()).collect()
}

fn rows_of(names: &[&str]) -> Vec<Located<Row>> {
    names.iter().flat_map(|n| read_all(&fixture(n))).collect()
}

const JSON_SET: [&str; 4] = [
    "mainnet_17173049_blocks.json",
    "mainnet_17173049_transactions.json",
    "mainnet_17173049_token_transfers.json",
    "mainnet_17173049_logs.json",
];

#[test]
fn json_lines_of_every_table_read_in_full() {
    let mut counts = std::collections::HashMap::new();
    for n in JSON_SET {
        let f = open_etl_file(&fixture(n)).unwrap();
        assert_eq!(f.format(), Format::JsonLines);
        assert_eq!(f.kind(), Kind::Mixed, "stream output says each row's type");
        for r in f {
            let r = r.unwrap();
            *counts.entry(std::mem::discriminant(&r.row)).or_insert(0) += 1;
        }
    }
    let rows = rows_of(&JSON_SET);
    let n = |pred: fn(&Row) -> bool| rows.iter().filter(|r| pred(&r.row)).count();
    assert_eq!(n(|r| matches!(r, Row::Block(_))), 2);
    assert_eq!(n(|r| matches!(r, Row::Transaction(_))), 298);
    assert_eq!(n(|r| matches!(r, Row::TokenTransfer(_))), 291);
    assert_eq!(n(|r| matches!(r, Row::Log(_))), 681);
    let Row::Block(b) = &rows[0].row else {
        panic!()
    };
    assert_eq!(b.number, 17173049);
    assert_eq!(b.withdrawals.len(), 16);
    assert_eq!(b.withdrawals[0].amount, 45762059);
    assert_eq!(b.base_fee_per_gas, Some(U256::from(80869370967u64)));
    // A token amount beyond u64 (and beyond f64's exact range) is read exactly.
    assert!(rows.iter().any(|r| matches!(&r.row, Row::TokenTransfer(t)
        if t.value == "7786596450288373164569331648084".parse::<U256>().unwrap())));
}

#[test]
fn csv_and_json_of_the_same_blocks_give_the_same_rows() {
    let csv_blocks = read_all(&fixture("mainnet_17173049_blocks.csv"));
    let json_blocks = read_all(&fixture("mainnet_17173049_blocks.json"));
    assert_eq!(csv_blocks.len(), 2);
    for (c, j) in csv_blocks.iter().zip(&json_blocks) {
        assert_eq!(c.row, j.row);
    }
    // The CSV export has no receipt columns; every other column agrees.
    let csv_tx = read_all(&fixture("mainnet_17173049_transactions.csv"));
    let json_tx = read_all(&fixture("mainnet_17173049_transactions.json"));
    assert_eq!(csv_tx.len(), 298);
    for (c, j) in csv_tx.iter().zip(&json_tx) {
        let (Row::Transaction(c), Row::Transaction(j)) = (&c.row, &j.row) else {
            panic!()
        };
        assert_eq!(
            (
                c.hash,
                c.value,
                c.from_address,
                c.to_address,
                c.gas,
                c.nonce
            ),
            (
                j.hash,
                j.value,
                j.from_address,
                j.to_address,
                j.gas,
                j.nonce
            )
        );
        assert_eq!(c.receipt_status, None);
    }
    assert_eq!(csv_tx[1].line, 3, "line numbers count the header");
}

#[test]
fn gz_and_bz2_read_the_same_rows_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(fixture("mainnet_17173049_transactions.csv")).unwrap();
    let gz = dir.path().join("transactions.csv.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(&src).unwrap();
    e.finish().unwrap();
    let bz = dir.path().join("transactions.csv.bz2");
    let mut e = bzip2::write::BzEncoder::new(
        std::fs::File::create(&bz).unwrap(),
        bzip2::Compression::fast(),
    );
    e.write_all(&src).unwrap();
    e.finish().unwrap();
    let plain = read_all(&fixture("mainnet_17173049_transactions.csv"));
    for p in [&gz, &bz] {
        let got = read_all(p);
        assert_eq!(got.len(), plain.len());
        assert!(got
            .iter()
            .zip(&plain)
            .all(|(a, b)| a.row == b.row && a.line == b.line));
    }
}

#[test]
fn movements_of_two_real_blocks_account_for_every_wei_of_gas() {
    let blocks = group_blocks(rows_of(&JSON_SET)).unwrap();
    assert_eq!(blocks.len(), 2);
    let mut all = Vec::new();
    for b in blocks.values() {
        let ms = block_movements(b).unwrap();
        let blk = &b.block.as_ref().unwrap().row;
        let sum = |k: MovementKind| {
            ms.iter()
                .filter(|m| m.kind == k)
                .fold(U256::ZERO, |a, m| a + m.amount)
        };
        // Burnt = base fee × the block's gas used (a figure from the block row, not ours).
        assert_eq!(
            sum(MovementKind::Burn),
            blk.base_fee_per_gas.unwrap() * U256::from(blk.gas_used)
        );
        assert!(ms
            .iter()
            .filter(|m| m.kind == MovementKind::Fee)
            .all(|m| m.to == blk.miner));
        assert!(ms
            .iter()
            .filter(|m| m.kind == MovementKind::Burn)
            .all(|m| m.to == SINK));
        let wd: u64 = blk.withdrawals.iter().map(|w| w.amount).sum();
        assert_eq!(
            sum(MovementKind::Withdrawal),
            U256::from(wd) * U256::from(1_000_000_000u64)
        );
        all.extend(ms);
    }
    let sum = |k: MovementKind| {
        all.iter()
            .filter(|m| m.kind == k)
            .fold(U256::ZERO, |a, m| a + m.amount)
    };
    // Priority fees summed independently from the receipts (python over the same rows).
    assert_eq!(
        sum(MovementKind::Fee),
        U256::from(282058744401230968u64 + 93906739550486156u64)
    );
    let count = |k: MovementKind| all.iter().filter(|m| m.kind == k).count();
    // 127 successful transactions carry value; the 9 failed ones move gas only.
    assert_eq!(count(MovementKind::Value), 127);
    assert_eq!(
        sum(MovementKind::Value),
        "82246255043361813012".parse::<U256>().unwrap()
    );
    assert_eq!(count(MovementKind::Burn), 298);
    assert_eq!(count(MovementKind::Token), 291);
    assert_eq!(count(MovementKind::Withdrawal), 32);
    let creates: Vec<_> = all
        .iter()
        .filter(|m| m.kind == MovementKind::Create)
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].to,
        "0x303abf64fe75964565d2b44b9e4518e6126f1f0e"
            .parse::<Address>()
            .unwrap()
    );
    assert!(all
        .iter()
        .filter(|m| m.kind == MovementKind::Token)
        .all(|m| matches!(m.asset, Asset::Token(_))));
}

#[test]
fn real_traces_read_from_json_and_csv() {
    let t = read_all(&fixture("mainnet_508110_traces.json"));
    assert_eq!(t.len(), 4, "the last line has no newline and still counts");
    let rewards: Vec<_> = t
        .iter()
        .filter_map(|r| match &r.row {
            Row::Trace(t) if t.transaction_hash.is_none() => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(rewards.len(), 2);
    let s = read_all(&fixture("mainnet_1011973_traces.csv"));
    let Row::Trace(sd) = &s[1].row else { panic!() };
    assert_eq!(sd.trace_type, cointrail_evm::etl::TraceType::Suicide);
    assert_eq!(sd.trace_address, vec![0]);
    let c = read_all(&fixture("mainnet_1000690_traces.csv"));
    let Row::Trace(first) = &c[0].row else {
        panic!()
    };
    assert_eq!(first.value, Some("64655529900000002048".parse().unwrap()));
    let tt = read_all(&fixture("mainnet_483920_token_transfers.csv"));
    assert!(tt.iter().all(|r| matches!(r.row, Row::TokenTransfer(_))));
    // A directory lists blocks before the tables that refer to them.
    let files = etl_files(&fixture("")).unwrap();
    let first_non_block = files
        .iter()
        .position(|p| !p.to_string_lossy().contains("blocks"))
        .unwrap();
    assert!(files[first_non_block..].iter().all(|p| !p
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains("blocks")));
}
