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
