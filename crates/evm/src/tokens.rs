//! A small registry of well-known Ethereum mainnet tokens that ships with the product, so
//! answers can show symbol and decimals without a node. Addresses from the tokens' own
//! deployments (as listed by their issuers and every explorer).

use alloy_primitives::{address, Address};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub symbol: &'static str,
    pub decimals: u8,
}

const MAINNET: [(Address, TokenInfo); 6] = [
    (
        address!("C02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"),
        TokenInfo {
            symbol: "WETH",
            decimals: 18,
        },
    ),
    (
        address!("dAC17F958D2ee523a2206206994597C13D831ec7"),
        TokenInfo {
            symbol: "USDT",
            decimals: 6,
        },
    ),
    (
        address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
        TokenInfo {
            symbol: "USDC",
            decimals: 6,
        },
    ),
    (
        address!("6B175474E89094C44Da98b954EedeAC495271d0F"),
        TokenInfo {
            symbol: "DAI",
            decimals: 18,
        },
    ),
    (
        address!("2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"),
        TokenInfo {
            symbol: "WBTC",
            decimals: 8,
        },
    ),
    (
        address!("ae7ab96520DE3A18E5e111B5EaAb095312D7fE84"),
        TokenInfo {
            symbol: "stETH",
            decimals: 18,
        },
    ),
];

/// Symbol and decimals of a known token contract.
pub fn token_info(a: &Address) -> Option<TokenInfo> {
    MAINNET.iter().find(|(t, _)| t == a).map(|(_, i)| *i)
}

/// `amount` in base units as a decimal number with the token's decimals ("1.5").
pub fn format_units(amount: &alloy_primitives::U256, decimals: u8) -> String {
    let s = amount.to_string();
    let d = decimals as usize;
    if d == 0 {
        return s;
    }
    let s = format!("{s:0>width$}", width = d + 1);
    let (int, frac) = s.split_at(s.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn known_tokens_and_units() {
        let weth: Address = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
            .parse()
            .unwrap();
        assert_eq!(token_info(&weth).unwrap().symbol, "WETH");
        assert_eq!(
            format_units(&alloy_primitives::U256::from(1_500_000u64), 6),
            "1.5"
        );
        assert_eq!(
            format_units(&alloy_primitives::U256::from(5u64), 18),
            "0.000000000000000005"
        );
        assert_eq!(
            format_units(&alloy_primitives::U256::from(2_000_000u64), 6),
            "2"
        );
    }
}
