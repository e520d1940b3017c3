//! Token symbols and decimals for answers, from two places:
//! - a small registry of well-known Ethereum mainnet tokens that ships with the product
//!   (addresses from the tokens' own deployments, as listed by their issuers and every
//!   explorer), so answers need no node;
//! - what token contracts say of themselves on the indexed chain (the etl `tokens` table,
//!   or `symbol()`/`decimals()` asked of the node while following), which the EVM index
//!   keeps in `tokens.json` and teaches this process when it opens ([`learn`]).
//!
//! The shipped registry wins: any contract can call itself "USDT", so a chain-learned
//! symbol equal to a registry token's (at another address) is shown with a `*`
//! ("USDT*": not the registry's USDT). Learned symbols are cleaned first
//! ([`clean_text`]): no control characters, at most [`MAX_SYMBOL`] characters.
//!
//! The learned table is process-wide (answers all over the code name assets through
//! [`token_info`]); it is keyed by contract address only, which is right for one EVM
//! chain per data directory, as today.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use alloy_primitives::{address, Address};

/// Longest symbol kept from a chain (characters); longer ones are cut.
pub const MAX_SYMBOL: usize = 32;
/// Longest token name kept from a chain (characters).
pub const MAX_NAME: usize = 64;
/// Most decimals a token can usefully have: 10^77 is the largest power of ten below 2^256.
pub const MAX_DECIMALS: u8 = 77;

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

fn learned() -> &'static RwLock<HashMap<Address, TokenInfo>> {
    static L: OnceLock<RwLock<HashMap<Address, TokenInfo>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// Symbol and decimals of a token contract: the shipped registry first, then what the
/// indexed chain said of it ([`learn`]).
pub fn token_info(a: &Address) -> Option<TokenInfo> {
    if let Some(i) = shipped(a) {
        return Some(i);
    }
    learned().read().ok()?.get(a).copied()
}

/// The shipped registry's entry only.
pub fn shipped(a: &Address) -> Option<TokenInfo> {
    MAINNET.iter().find(|(t, _)| t == a).map(|(_, i)| *i)
}

/// Teach this process a token's symbol and decimals as its contract gave them. Ignored
/// for registry tokens; a symbol that imitates a registry token's gets a `*`. Symbols are
/// kept for the life of the process (answers hold `&'static str`); one per token
/// contract, so bounded by the chain's tokens.
pub fn learn(a: Address, symbol: &str, decimals: u8) {
    if shipped(&a).is_some() || decimals > MAX_DECIMALS {
        return;
    }
    let Some(sym) = clean_text(symbol, MAX_SYMBOL) else {
        return;
    };
    let sym = if MAINNET
        .iter()
        .any(|(_, i)| i.symbol.eq_ignore_ascii_case(&sym))
    {
        format!("{sym}*")
    } else {
        sym
    };
    let Ok(mut m) = learned().write() else {
        return;
    };
    if m.get(&a)
        .is_some_and(|i| i.symbol == sym && i.decimals == decimals)
    {
        return;
    }
    let symbol: &'static str = Box::leak(sym.into_boxed_str());
    m.insert(a, TokenInfo { symbol, decimals });
}

/// A contract's text as a person may be shown it: control characters (NULs of a
/// `bytes32` symbol, newlines, escapes) dropped, surrounding space trimmed, at most `max`
/// characters; `None` when nothing is left.
pub fn clean_text(s: &str, max: usize) -> Option<String> {
    let t: String = s.chars().filter(|c| !c.is_control()).collect();
    let t: String = t.trim().chars().take(max).collect();
    let t = t.trim_end().to_string();
    (!t.is_empty()).then_some(t)
}

/// Decode what `symbol()` or `name()` returned: an ABI `string` (offset, length, bytes),
/// or the `bytes32` some early tokens return (EOS, MKR), NUL-padded. Lossy on bad UTF-8;
/// `None` for anything else (a revert's empty answer, a word that is neither).
pub fn decode_text_return(data: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<&[u8]> { data.get(i * 32..i * 32 + 32) };
    let as_usize = |w: &[u8]| -> Option<usize> {
        if w[..24].iter().any(|&b| b != 0) {
            return None;
        }
        Some(u64::from_be_bytes(w[24..].try_into().ok()?) as usize)
    };
    let raw: &[u8] = if data.len() >= 64 {
        let off = as_usize(word(0)?)?;
        let len_word = data.get(off..off.checked_add(32)?)?;
        let len = as_usize(len_word)?;
        let start = off + 32;
        // The length some contracts give exceeds their bytes (the etl's "invalid data"
        // case): keep what is there.
        &data[start..start.saturating_add(len).min(data.len())]
    } else if data.len() == 32 {
        data
    } else {
        return None;
    };
    let s = String::from_utf8_lossy(raw);
    clean_text(&s, usize::MAX)
}

/// Decode what `decimals()` returned: one ABI word holding at most [`MAX_DECIMALS`].
pub fn decode_decimals_return(data: &[u8]) -> Option<u8> {
    if data.len() != 32 || data[..31].iter().any(|&b| b != 0) || data[31] > MAX_DECIMALS {
        return None;
    }
    Some(data[31])
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

    fn hex(s: &str) -> Vec<u8> {
        let s = s.trim_start_matches("0x");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_string_bytes32_and_short_answers() {
        // Real answers recorded by ethereum-etl's tests (testdata/eth/etl/tokens/): EOS's
        // symbol() is a bytes32, its name() is all zeros; the other token says its string
        // is 6 bytes long and gives 3 and NULs.
        assert_eq!(
            decode_text_return(&hex(
                "0x454f530000000000000000000000000000000000000000000000000000000000"
            ))
            .as_deref(),
            Some("EOS")
        );
        assert_eq!(decode_text_return(&hex(&"00".repeat(32))), None);
        let invalid = "0x000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000064554480000000000000000000000000000000000000000000000000000000000";
        assert_eq!(decode_text_return(&hex(invalid)).as_deref(), Some("ETH"));
        // An ordinary ABI string, and answers that are none.
        let mut abi = vec![0u8; 96];
        abi[31] = 32;
        abi[63] = 4;
        abi[64..68].copy_from_slice(b"USDS");
        assert_eq!(decode_text_return(&abi).as_deref(), Some("USDS"));
        assert_eq!(decode_text_return(&[]), None);
        assert_eq!(decode_text_return(&[1, 2, 3]), None);
        let mut huge = abi.clone();
        huge[0] = 0xff; // an offset past any length
        assert_eq!(decode_text_return(&huge), None);
        let mut long = abi.clone();
        long[40] = 0xff; // a length word over 2^64
        assert_eq!(decode_text_return(&long), None);
        assert_eq!(
            decode_decimals_return(&hex(
                "0x0000000000000000000000000000000000000000000000000000000000000012"
            )),
            Some(18)
        );
        assert_eq!(decode_decimals_return(&[0u8; 31]), None);
        let mut big = [0u8; 32];
        big[30] = 1;
        assert_eq!(decode_decimals_return(&big), None);
    }

    #[test]
    fn learned_tokens_are_cleaned_and_never_pass_for_registry_ones() {
        let a: Address = "0x1111111111111111111111111111111111111111"
            .parse()
            .unwrap();
        let b: Address = "0x2222222222222222222222222222222222222222"
            .parse()
            .unwrap();
        let usdt: Address = "0xdac17f958d2ee523a2206206994597c13d831ec7"
            .parse()
            .unwrap();
        assert_eq!(token_info(&a), None);
        // The escape character goes (what is left cannot colour a terminal), so does the
        // newline.
        learn(a, "\u{1b}[31mUSDS\n", 6);
        assert_eq!(
            token_info(&a),
            Some(TokenInfo {
                symbol: "[31mUSDS",
                decimals: 6
            })
        );
        learn(b, "usdt", 6);
        assert_eq!(token_info(&b).unwrap().symbol, "usdt*");
        learn(usdt, "FAKE", 2);
        assert_eq!(
            token_info(&usdt),
            Some(TokenInfo {
                symbol: "USDT",
                decimals: 6
            })
        );
        let c: Address = "0x3333333333333333333333333333333333333333"
            .parse()
            .unwrap();
        learn(c, &"X".repeat(100), 200);
        assert_eq!(token_info(&c), None, "decimals over 77 say nothing usable");
        learn(c, &"X".repeat(100), 0);
        assert_eq!(token_info(&c).unwrap().symbol.len(), MAX_SYMBOL);
        assert_eq!(clean_text(" \0\0 ", 8), None);
    }
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
