//! THORChain memos: the kept corpus, and cheap fuzzing (any string: an answer, never a
//! panic; any valid swap memo renders and parses back to itself).

use cointrail_account::thorchain::{
    parse_memo, parse_memo_bytes, Affiliate, AssetKind, Memo, SwapMemo, ThorAsset,
};
use proptest::prelude::*;

#[test]
fn corpus() {
    let text = include_str!("memo_corpus.txt");
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (want, memo) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("memo_corpus.txt:{}: no tab", i + 1));
        let got = parse_memo(memo);
        match want {
            "ok" => assert!(got.is_ok(), "memo_corpus.txt:{}: {:?}", i + 1, got),
            "err" => assert!(got.is_err(), "memo_corpus.txt:{}: parsed {:?}", i + 1, got),
            o => panic!("memo_corpus.txt:{}: {o:?} is neither ok nor err", i + 1),
        }
        n += 1;
    }
    assert!(n >= 30);
}

fn asset() -> impl Strategy<Value = ThorAsset> {
    (
        "[A-Z][A-Z0-9]{1,5}",
        "[A-Z][A-Z0-9]{0,6}",
        prop::option::of("(0x)?[0-9a-f]{3,40}"),
        prop::sample::select(vec![AssetKind::Layer1, AssetKind::Synth, AssetKind::Trade]),
    )
        .prop_map(|(chain, symbol, id, kind)| ThorAsset {
            chain,
            symbol,
            id,
            kind,
        })
}

fn swap_memo() -> impl Strategy<Value = SwapMemo> {
    (
        asset(),
        prop::option::of((
            "[g-z][a-z0-9]{0,41}",
            prop::option::of("[g-z][a-z0-9]{0,41}"),
        )),
        prop::option::of(any::<u64>()),
        prop::option::of((any::<u32>(), any::<u32>())),
        prop::collection::vec(("[a-z][a-z0-9]{0,10}", 0u16..=1000), 0..3),
    )
        .prop_map(|(asset, dest, limit, stream, affs)| SwapMemo {
            asset,
            destination: dest.as_ref().map(|d| d.0.clone()),
            refund: dest.and_then(|d| d.1),
            limit: limit.map(|l| l as u128).or(stream.map(|_| 0)),
            interval: stream.map(|s| s.0 as u64),
            quantity: stream.map(|s| s.1 as u64),
            affiliates: affs
                .into_iter()
                .map(|(name, bps)| Affiliate { name, bps })
                .collect(),
            aggregator: Vec::new(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_text_is_an_answer_not_a_panic(s in ".{0,120}") {
        let _ = parse_memo(&s);
    }

    #[test]
    fn memo_shaped_text_is_an_answer_not_a_panic(
        s in "(=|s|SWAP|OUT|REFUND|x)(:[A-Za-z0-9./~ex+-]{0,20}){0,10}"
    ) {
        let _ = parse_memo(&s);
    }

    #[test]
    fn any_bytes_are_an_answer_not_a_panic(b in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = parse_memo_bytes(&b);
    }

    #[test]
    fn valid_swaps_round_trip(m in swap_memo()) {
        let text = m.render();
        prop_assert_eq!(parse_memo(&text).unwrap(), Memo::Swap(m), "{}", text);
    }
}
