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
    assert_eq!(s.bitcoin.tx_kinds.get("router_outbound").copied(), Some(s.crossings as u64));
    let crossings = std::fs::read_to_string(dir.path().join("truth/crossings.tsv")).unwrap();
    let mut sats = 0u64;
    for line in crossings.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        sats += f[7].parse::<u64>().unwrap();
        if f[0] == "router" {
            assert_eq!(f[9], format!("=:BTC.BTC:{}", f[6]));
            assert_eq!(f[8], format!("OUT:{}", f[1].trim_start_matches("0x").to_uppercase()));
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
    let rules = std::fs::read_to_string(dir.path().join("truth/bridges.yaml")).unwrap();
    cointrail_account::xchain::BridgeRules::parse(&rules, "bridges.yaml").unwrap();
}
