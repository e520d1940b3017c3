//! What token contracts said of themselves, kept beside the EVM index (`tokens.json`):
//! on real mainnet rows (blocks 17173049-50), the tokens to ask are exactly the moved
//! tokens the shipped registry does not know; kept rows survive reopening, teach answers
//! their symbol, merge field by field, and a damaged file is refused by name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cointrail_evm::etl::{open_etl_file, Row, TokenRow};
use cointrail_evm::movement::group_blocks;
use cointrail_evm::{Address, U256};
use cointrail_index::evm::EvmIndex;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/eth/etl")
        .join(name)
}

fn ingest(dir: &Path) -> EvmIndex {
    let rows: Vec<_> = [
        "mainnet_17173049_blocks.json",
        "mainnet_17173049_transactions.json",
        "mainnet_17173049_token_transfers.json",
    ]
    .iter()
    .flat_map(|n| open_etl_file(&fixture(n)).unwrap().map(|r| r.unwrap()))
    .collect();
    let mut idx = EvmIndex::open_writer(dir, "ethereum").unwrap();
    for b in group_blocks(rows).unwrap().into_values() {
        idx.ingest_block(&b).unwrap();
    }
    idx.commit().unwrap();
    idx
}

fn moved_tokens() -> BTreeSet<Address> {
    open_etl_file(&fixture("mainnet_17173049_token_transfers.json"))
        .unwrap()
        .map(|r| match r.unwrap().row {
            Row::TokenTransfer(t) => t.token_address,
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn tokens_are_asked_once_kept_and_taught() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = ingest(dir.path());
    let moved = moved_tokens();
    let unknown: Vec<Address> = moved
        .iter()
        .filter(|a| cointrail_evm::tokens::shipped(a).is_none())
        .copied()
        .collect();
    assert!(
        moved.len() > unknown.len(),
        "the fixture moves registry tokens too"
    );
    assert!(unknown.len() >= 2);
    assert_eq!(idx.tokens_to_ask().unwrap(), unknown);

    // One answered, one asked and silent (an NFT, say): neither is asked again.
    let (a, b) = (unknown[0], unknown[1]);
    let row_a = TokenRow {
        address: a,
        symbol: Some("TKNA".into()),
        name: Some("Token A".into()),
        decimals: Some(9),
        total_supply: Some(U256::from(1_000u64)),
        block_number: Some(17_173_050),
    };
    let silent_b = TokenRow {
        address: b,
        symbol: None,
        name: None,
        decimals: None,
        total_supply: None,
        block_number: Some(17_173_050),
    };
    assert_eq!(
        idx.learn_tokens(&[row_a.clone(), silent_b.clone()])
            .unwrap(),
        2
    );
    assert_eq!(
        idx.learn_tokens(&[row_a.clone()]).unwrap(),
        0,
        "nothing new"
    );
    assert_eq!(
        idx.tokens_to_ask().unwrap(),
        unknown[2..].to_vec(),
        "asked tokens are not asked again"
    );
    drop(idx);

    let r = EvmIndex::open_reader(dir.path()).unwrap();
    assert_eq!(r.token_rows().unwrap(), {
        let mut v = vec![row_a.clone(), silent_b.clone()];
        v.sort_by_key(|t| t.address);
        v
    });
    let info = cointrail_evm::tokens::token_info(&a).unwrap();
    assert_eq!((info.symbol, info.decimals), ("TKNA", 9));
    // Movements of that token are shown in its units.
    let mv = (0..r.stats().movements)
        .map(|i| r.movement(i))
        .find(|m| m.token.as_deref() == Some(a.to_checksum(None).as_str()))
        .expect("a movement of the token");
    assert_eq!(mv.symbol, Some("TKNA"));
    assert_eq!(mv.decimals, Some(9));
    drop(r);

    // A later answer fills what the first lacked, field by field; the first block stays.
    let mut w = EvmIndex::open_writer(dir.path(), "ethereum").unwrap();
    let later_b = TokenRow {
        decimals: Some(0),
        symbol: Some("NFTB".into()),
        block_number: Some(17_200_000),
        ..silent_b.clone()
    };
    assert_eq!(w.learn_tokens(&[later_b]).unwrap(), 1);
    let kept = w.token_rows().unwrap();
    let b_row = kept.iter().find(|t| t.address == b).unwrap();
    assert_eq!(b_row.symbol.as_deref(), Some("NFTB"));
    assert_eq!(b_row.block_number, Some(17_173_050));
    drop(w);

    // A damaged file is refused by name and line, and what the index holds is untouched.
    let p = dir.path().join("tokens.json");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("{\"address\": 5}\n");
    std::fs::write(&p, text).unwrap();
    let e = EvmIndex::open_reader(dir.path()).err().expect("refused");
    let msg = e.to_string();
    assert!(msg.contains("tokens.json:3"), "{msg}");
    assert!(msg.contains("remove the file"), "{msg}");
}
