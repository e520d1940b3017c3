//! The two-chain world: every crossing recorded on Ethereum is paid on Bitcoin, with its
//! memo, to the address its Ethereum memo names.

use cointrail_sim::twochain::{simulate_two_chains, TwoChainConfig};

#[test]
fn crossings_are_paid_on_bitcoin_with_their_memos() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TwoChainConfig {
        btc_txs: 8_000,
        eth_txs: 3_000,
        eth_users: 200,
        heist_eth: 2_000,
        fanout: 60,
        ..TwoChainConfig::default()
    };
    let s = simulate_two_chains(&cfg, dir.path(), &mut |_, _| {}).unwrap();
    assert!(s.router_crossings > 10, "{}", s.router_crossings);
    assert_eq!(
        s.bitcoin.tx_kinds.get("router_outbound").copied(),
        Some(s.crossings as u64)
    );
    let crossings = std::fs::read_to_string(dir.path().join("truth/crossings.tsv")).unwrap();
    let mut sats = 0u64;
    for line in crossings.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        sats += f[7].parse::<u64>().unwrap();
        if f[0] == "router" {
            assert_eq!(f[9], format!("=:BTC.BTC:{}", f[6]));
            assert_eq!(
                f[8],
                format!("OUT:{}", f[1].trim_start_matches("0x").to_uppercase())
            );
        }
    }
    assert_eq!(sats, s.crossed_sats);
    // Every crossing's destination received exactly its sats from the vault.
    let outs = std::fs::read_to_string(dir.path().join("bitcoin/truth/thief_outputs.tsv")).unwrap();
    for line in crossings.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            outs.lines().any(|o| {
                let g: Vec<&str> = o.split('\t').collect();
                g[3] == f[6] && g[2] == f[7] && g[4] == "drain"
            }),
            "no payout to {}",
            f[6]
        );
    }
    // The way back: a few percent of the router payouts go into the vault again with a
    // THORChain swap memo to a fresh Ethereum address, each paid out there by the router
    // (`OUT:<txid>`) at the run's rate less the router's fee, then into an exchange deposit.
    assert!(
        s.way_back >= 1 && s.way_back * 10 < s.router_crossings,
        "{}",
        s.way_back
    );
    let wb = std::fs::read_to_string(dir.path().join("truth/way_back.tsv")).unwrap();
    let pays =
        std::fs::read_to_string(dir.path().join("bitcoin/truth/thief_payments.tsv")).unwrap();
    let logs = std::fs::read_to_string(dir.path().join("ethereum/etl/logs.json")).unwrap();
    let hops = std::fs::read_to_string(dir.path().join("ethereum/truth/heist_hops.tsv")).unwrap();
    let mut wei_sum = 0u128;
    for line in wb.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f[2].ends_with(f[3]) || f[2].contains(&format!("{}:", f[3])),
            "{line}"
        );
        cointrail_account::thorchain::parse_memo(f[2]).unwrap();
        let sats: u128 = f[1].parse().unwrap();
        let wei: u128 = f[6].parse().unwrap();
        assert_eq!(wei, sats * 10u128.pow(18) / 5_000_000 * 9_950 / 10_000);
        wei_sum += wei;
        // The Bitcoin deposit is a thief payment of kind `router`, at vout 0.
        assert!(
            pays.lines()
                .any(|p| p.contains(&format!("{}:0\t{}\t", f[0], f[1])) && p.contains("\trouter\t")),
            "{line}"
        );
        // The outbound's TransferOut memo names the Bitcoin deposit.
        let memo_hex = hex::encode(format!("OUT:{}", f[0].to_uppercase()));
        assert!(logs.contains(&memo_hex), "{line}");
        assert!(
            hops.contains(&format!("{}\trouter-release\t", f[4])),
            "{line}"
        );
        assert!(!f[7].is_empty(), "{line}");
        assert!(
            hops.contains(&format!("{}\twayback-deposit\t", f[7])),
            "{line}"
        );
    }
    assert_eq!(wei_sum.to_string(), s.way_back_wei);
    let rules = std::fs::read_to_string(dir.path().join("truth/bridges.yaml")).unwrap();
    cointrail_account::xchain::BridgeRules::parse(&rules, "bridges.yaml").unwrap();
}

/// Every piece of the simulated EVM economy is on chain in the form a real one has, read
/// back from the ethereum-etl files with the decoders cointrail uses: the ERC-20 stablecoin
/// (6 decimals) and the liquid-staking token (18), each moving by `Transfer` events; the DEX
/// pools' Curve `TokenExchange` events at the thief's swaps; the THORChain-like router's
/// `Deposit` events (memo `=:BTC.BTC:<address>` naming the crossing's Bitcoin address, to the
/// Ethereum vault) and `TransferOut` events (memo `OUT:<bitcoin txid>`) for the way back,
/// whose Bitcoin deposits all pay one Bitcoin vault with a swap memo to Ethereum; the
/// Tornado-like pool's deposit and withdrawal events.
#[test]
fn the_evm_economy_pieces_are_on_chain_in_their_real_forms() {
    use cointrail_account::thorchain::{parse_memo, Memo};
    use cointrail_account::xchain::{memo_and_id_from_logs, transfer_outs_from_logs};
    use cointrail_evm::etl::Log;
    use std::collections::{HashMap, HashSet};

    let dir = tempfile::tempdir().unwrap();
    let cfg = TwoChainConfig {
        btc_txs: 8_000,
        eth_txs: 3_000,
        eth_users: 200,
        heist_eth: 2_000,
        fanout: 60,
        ..TwoChainConfig::default()
    };
    simulate_two_chains(&cfg, dir.path(), &mut |_, _| {}).unwrap();
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    let tsv = |p: &str| -> Vec<Vec<String>> {
        read(p)
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    };
    let role = |entity: &str, r: &str| -> Vec<String> {
        tsv("ethereum/truth/addresses.tsv")
            .into_iter()
            .filter(|f| f[1] == entity && f[2] == r)
            .map(|f| f[0].to_lowercase())
            .collect()
    };
    let one = |entity: &str, r: &str| {
        let v = role(entity, r);
        assert_eq!(v.len(), 1, "{entity} {r}: {v:?}");
        v[0].clone()
    };
    let logs: Vec<Log> = read("ethereum/etl/logs.json")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut by_tx: HashMap<String, Vec<Log>> = HashMap::new();
    for l in &logs {
        by_tx
            .entry(format!("{:#x}", l.transaction_hash))
            .or_default()
            .push(l.clone());
    }
    let emitted = |a: &str, t: cointrail_evm::B256| {
        logs.iter()
            .filter(|l| format!("{:#x}", l.address) == a && l.topics.first() == Some(&t))
            .count()
    };
    let hops = tsv("ethereum/truth/heist_hops.tsv");
    let hops_of =
        |k: &str| -> Vec<Vec<String>> { hops.iter().filter(|f| f[3] == k).cloned().collect() };

    // The tokens: what they say of themselves, and their Transfer events.
    let transfer_topic: cointrail_evm::B256 =
        "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
            .parse()
            .unwrap();
    let tokens: Vec<serde_json::Value> = read("ethereum/etl/tokens.json")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (entity, sym, dec) in [("usds", "USDS", 6), ("lst", "LST", 18)] {
        let a = one(entity, "token");
        let t = tokens
            .iter()
            .find(|t| t["address"].as_str().unwrap().eq_ignore_ascii_case(&a))
            .unwrap_or_else(|| panic!("{sym} not in tokens.json"));
        assert_eq!(t["symbol"], sym);
        assert_eq!(t["decimals"], dec);
        assert!(emitted(&a, transfer_topic) > 0, "{sym} never moved");
    }

    // The DEX pools: each of the thief's swaps is a Curve TokenExchange of the pool paid.
    let pools: HashSet<String> = role("dex", "pool").into_iter().collect();
    assert_eq!(pools.len(), 2, "a pool per token");
    let swaps = hops_of("dex-swap-in");
    assert!(swaps.len() >= 2);
    for f in &swaps {
        assert!(pools.contains(&f[5].to_lowercase()), "{f:?}");
        assert!(
            by_tx[&f[2].to_lowercase()].iter().any(|l| {
                format!("{:#x}", l.address) == f[5].to_lowercase()
                    && l.topics.first() == Some(&cointrail_account::swaps::CURVE_TOKEN_EXCHANGE)
            }),
            "swap {f:?} has no TokenExchange"
        );
    }

    // The router: each crossing's deposit carries a THORChain swap memo naming its Bitcoin
    // address, paid to the Ethereum vault.
    let (router, vault) = (one("thorchain", "router"), one("thorchain", "vault"));
    let cross = tsv("ethereum/truth/crossings.tsv");
    let mut router_deposits = 0;
    for f in cross.iter().filter(|f| f[0] == "router") {
        let tx = &by_tx[&f[1].to_lowercase()];
        let (memo, _) = memo_and_id_from_logs(tx);
        let memo = memo.unwrap_or_else(|| panic!("no Deposit memo in {}", f[1]));
        let Ok(Memo::Swap(s)) = parse_memo(&memo) else {
            panic!("{memo:?} is not a swap")
        };
        assert_eq!(s.asset.to_string(), "BTC.BTC");
        assert_eq!(s.destination.as_deref(), Some(f[6].as_str()));
        let dep = tx
            .iter()
            .find(|l| {
                l.topics.first() == Some(&cointrail_account::xchain::topics::thorchain_deposit())
            })
            .unwrap();
        assert_eq!(format!("{:#x}", dep.address), router);
        assert!(format!("{:#x}", dep.topics[1]).ends_with(vault.trim_start_matches("0x")));
        router_deposits += 1;
    }
    assert!(router_deposits > 10);

    // The way back: Bitcoin deposits into one Bitcoin vault with a swap memo to Ethereum;
    // the router's TransferOut from the Ethereum vault names each (`OUT:<txid>`).
    let wb = tsv("truth/way_back.tsv");
    assert!(!wb.is_empty());
    let btc_vaults: HashSet<String> = tsv("bitcoin/truth/thief_payments.tsv")
        .into_iter()
        .filter(|f| f[5] == "router")
        .map(|f| f[3].clone())
        .collect();
    assert_eq!(btc_vaults.len(), 1, "{btc_vaults:?}");
    for f in &wb {
        let Ok(Memo::Swap(s)) = parse_memo(&f[2]) else {
            panic!("{:?} is not a swap", f[2])
        };
        assert_eq!(s.asset.chain, "ETH");
        let outs = transfer_outs_from_logs(&by_tx[&f[4].to_lowercase()]);
        assert_eq!(outs.len(), 1, "{f:?}");
        assert_eq!(format!("{:#x}", outs[0].vault), vault);
        assert_eq!(format!("{:#x}", outs[0].to), f[3].to_lowercase());
        let Ok(Memo::Out { inbound }) = parse_memo(&outs[0].memo) else {
            panic!("{:?}", outs[0].memo)
        };
        assert_eq!(format!("{inbound:x}"), f[0]);
    }

    // The Tornado-like pool: each of the thief's notes is a Deposit event of the pool, and
    // the pool's withdrawals (through the relayer) are Withdrawal events.
    let pool = one("tornado", "pool");
    let notes = hops_of("mixer-deposit");
    assert!(!notes.is_empty(), "the heist used no Tornado note");
    for f in &notes {
        assert_eq!(f[5].to_lowercase(), pool);
        assert!(by_tx[&f[2].to_lowercase()].iter().any(|l| {
            format!("{:#x}", l.address) == pool
                && l.topics.first() == Some(&cointrail_account::swaps::TORNADO_DEPOSIT)
        }));
    }
    assert!(
        emitted(&pool, cointrail_account::swaps::TORNADO_WITHDRAWAL)
            >= role("thief", "mixer-out").len()
    );
    assert_eq!(role("thief", "mixer-out").len(), notes.len());
}
