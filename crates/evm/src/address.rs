//! EVM addresses as people type them: any case is accepted, but a mixed-case address is
//! an EIP-55 checksum claim and must hold (a typo in a checksummed address is caught here
//! instead of silently pointing at someone else).

use alloy_primitives::Address;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("`{0}` is not an EVM address: expected 0x followed by 40 hex digits")]
    Format(String),
    #[error("`{given}` fails its EIP-55 checksum (mixed case is a checksum); did you mean {expected}? Or type it all lower case to skip the check")]
    Checksum { given: String, expected: String },
}

/// True when the text looks like an EVM address (0x + 40 hex), whatever its case;
/// used to infer the chain from what the user typed.
pub fn looks_like_evm_address(s: &str) -> bool {
    let s = s.trim();
    s.len() == 42
        && (s.starts_with("0x") || s.starts_with("0X"))
        && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse an address in any case; mixed case must be a valid EIP-55 checksum.
pub fn parse_address(s: &str) -> Result<Address, AddressError> {
    let t = s.trim();
    if !looks_like_evm_address(t) {
        return Err(AddressError::Format(t.to_string()));
    }
    let hex = &t[2..];
    let addr: Address = hex
        .parse()
        .map_err(|_| AddressError::Format(t.to_string()))?;
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    if has_upper && has_lower {
        let expected = addr.to_checksum(None);
        if expected[2..] != *hex {
            return Err(AddressError::Checksum {
                given: t.to_string(),
                expected,
            });
        }
    }
    Ok(addr)
}

/// The EIP-55 form shown in every answer.
pub fn checksummed(a: &Address) -> String {
    a.to_checksum(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The EIP-55 specification's own examples.
    const EIP55: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_examples_round_trip_and_any_single_case_is_accepted() {
        for s in EIP55 {
            let a = parse_address(s).unwrap();
            assert_eq!(checksummed(&a), s);
            assert_eq!(parse_address(&s.to_lowercase()).unwrap(), a);
            assert_eq!(
                parse_address(&format!("0x{}", s[2..].to_uppercase())).unwrap(),
                a
            );
        }
    }

    #[test]
    fn a_broken_checksum_is_refused_with_the_right_spelling() {
        let bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
        match parse_address(bad) {
            Err(AddressError::Checksum { expected, .. }) => assert_eq!(expected, EIP55[0]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_address("0x1234"),
            Err(AddressError::Format(_))
        ));
        assert!(!looks_like_evm_address(
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        ));
    }
}
