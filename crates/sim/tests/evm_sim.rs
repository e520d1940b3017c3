//! `simulate --chain ethereum`: same seed, same bytes; the files read back through the
//! movement model the index uses, every balance stays non-negative, native balances sum
//! to withdrawals issued − burnt, tokens to what was minted, and each thief address of
//! the truth received exactly what the truth says.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cointrail_evm::etl::BlockStream;
use cointrail_evm::movement::{block_movements, Asset, SINK};
use cointrail_evm::{Address, U256};
use cointrail_sim::evm::{simulate_evm, EvmSimConfig};

fn cfg(seed: u64) -> EvmSimConfig {
    EvmSimConfig {
        seed,
        txs: 6_000,
        users: 200,
        exchanges: 3,
        txs_per_block: 60,
        heist_fanout: 40,
        ..EvmSimConfig::default()
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    [
        "blocks",
        "transactions",
        "traces",
        "token_transfers",
        "logs",
    ]
    .iter()
    .map(|t| dir.join("etl").join(format!("{t}.json")))
    .collect()
}

#[test]
fn same_seed_same_bytes_and_balances_reconcile() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let s = simulate_evm(&cfg(5), &a, &mut |_, _| {}).unwrap();
    simulate_evm(&cfg(5), &b, &mut |_, _| {}).unwrap();
    for (fa, fb) in files(&a).iter().zip(files(&b)) {
        assert!(
            std::fs::read(fa).unwrap() == std::fs::read(&fb).unwrap(),
            "{} differs",
            fa.display()
        );
    }
    for t in [
        "addresses.tsv",
        "heist_hops.tsv",
        "thieves.tsv",
        "summary.json",
    ] {
        assert_eq!(
            std::fs::read(a.join("truth").join(t)).unwrap(),
            std::fs::read(b.join("truth").join(t)).unwrap(),
            "{t}"
        );
    }
    assert!(s.txs >= 6_000 && s.failed_txs > 0, "{s:?}");
    assert_eq!(s.heist.fanout_addresses, 40);
    assert!(s.heist.deposits_at_exchanges > 10, "{:?}", s.heist);

    let mut bal: HashMap<(Asset, Address), U256> = HashMap::new();
    let mut received: HashMap<(Asset, Address), U256> = HashMap::new();
    let (mut issued, mut burnt, mut minted) = (U256::ZERO, U256::ZERO, U256::ZERO);
    let mut kinds: HashMap<&str, u64> = HashMap::new();
    for blk in BlockStream::open(&files(&a)).unwrap() {
        let blk = blk.unwrap();
        for m in block_movements(&blk).unwrap() {
            *kinds.entry(m.kind.as_str()).or_default() += 1;
            if m.from == SINK {
                match m.asset {
                    Asset::Native => issued += m.amount,
                    Asset::Token(_) => minted += m.amount,
                }
            } else {
                let b = bal.entry((m.asset, m.from)).or_default();
                assert!(
                    *b >= m.amount,
                    "block {}: {} spends {} of {:?} holding {}",
                    m.block,
                    m.from,
                    m.amount,
                    m.asset,
                    b
                );
                *b -= m.amount;
            }
            if m.to == SINK {
                burnt += m.amount;
            } else {
                *bal.entry((m.asset, m.to)).or_default() += m.amount;
                *received.entry((m.asset, m.to)).or_default() += m.amount;
            }
        }
    }
    for k in [
        "value",
        "internal",
        "create",
        "token",
        "fee",
        "burn",
        "withdrawal",
    ] {
        assert!(
            kinds.get(k).copied().unwrap_or(0) > 0,
            "no {k} movement: {kinds:?}"
        );
    }
    let native: U256 = bal
        .iter()
        .filter(|((a, _), _)| *a == Asset::Native)
        .map(|(_, v)| *v)
        .fold(U256::ZERO, |x, y| x + y);
    let tokens: U256 = bal
        .iter()
        .filter(|((a, _), _)| *a != Asset::Native)
        .map(|(_, v)| *v)
        .fold(U256::ZERO, |x, y| x + y);
    assert_eq!(issued.to_string(), s.issued_wei);
    assert_eq!(burnt.to_string(), s.burnt_wei);
    assert_eq!(native, issued - burnt);
    assert_eq!(tokens, minted);
    assert_eq!(minted.to_string(), s.token_minted_units);

    let token: Address = s.token.parse().unwrap();
    let thieves = std::fs::read_to_string(a.join("truth/thieves.tsv")).unwrap();
    let mut n = 0;
    for line in thieves.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let addr: Address = f[0].parse().unwrap();
        let got = |asset| {
            received
                .get(&(asset, addr))
                .copied()
                .unwrap_or(U256::ZERO)
                .to_string()
        };
        assert_eq!(got(Asset::Native), f[2], "{line}");
        assert_eq!(got(Asset::Token(token)), f[3], "{line}");
        n += 1;
    }
    assert_eq!(n, 41);
    let main: Address = s.heist.main_thief.parse().unwrap();
    assert_eq!(
        received[&(Asset::Native, main)] >= s.heist.drained_wei.parse::<U256>().unwrap(),
        true
    );
    assert_eq!(
        s.heist.drained_wei,
        (U256::from(401_000u64) * U256::from(10u64).pow(U256::from(18u64))).to_string()
    );
    let hops = std::fs::read_to_string(a.join("truth/heist_hops.tsv")).unwrap();
    for kind in [
        "drain",
        "dex-swap-in",
        "dex-swap-out",
        "fanout",
        "deposit",
        "sweep",
    ] {
        assert!(
            hops.lines().any(|l| l.split('\t').nth(3) == Some(kind)),
            "no {kind} hop"
        );
    }
}
