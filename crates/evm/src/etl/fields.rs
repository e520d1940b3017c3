//! Typed reads of one field of a row, the same for JSON and CSV: a row is seen as
//! `name -> text or null`, and each typed read says which field was wrong and why.

use alloy_primitives::{Address, B256, U256};
use std::borrow::Cow;

use super::rows::{TraceType, Withdrawal};

/// Why one field could not be read; the reader adds file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub type FieldResult<T> = Result<T, FieldError>;

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A row's fields by name: text for present values (JSON strings unescaped, numbers and
/// arrays as written), None for null, empty or missing.
pub trait Fields {
    fn text(&self, name: &str) -> Option<Cow<'_, str>>;
}

pub fn req<'a, F: Fields + ?Sized>(f: &'a F, name: &str) -> FieldResult<Cow<'a, str>> {
    f.text(name)
        .ok_or_else(|| bad(name, "missing (null or empty) but required"))
}

pub fn parse_u64(name: &str, s: &str) -> FieldResult<u64> {
    let s = s.trim();
    let r = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    };
    r.map_err(|_| {
        bad(
            name,
            format!("`{}` is not an unsigned 64-bit integer", clip(s)),
        )
    })
}

/// Decimal (as etl writes) or 0x-hex (as nodes write); more than 2^256-1 is an error,
/// never a wrap or a float.
pub fn parse_u256(name: &str, s: &str) -> FieldResult<U256> {
    let s = s.trim();
    let (digits, radix) = match s.strip_prefix("0x") {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad(
            name,
            format!("`{}` is not an unsigned integer", clip(s)),
        ));
    }
    U256::from_str_radix(digits, radix as u64)
        .map_err(|_| bad(name, format!("`{}` exceeds 2^256-1", clip(s))))
}

pub fn parse_addr(name: &str, s: &str) -> FieldResult<Address> {
    let s = s.trim();
    if s.len() != 42 || !s.starts_with("0x") {
        return Err(bad(
            name,
            format!("`{}` is not a 20-byte 0x address", clip(s)),
        ));
    }
    s[2..]
        .parse::<Address>()
        .map_err(|_| bad(name, format!("`{}` is not a 20-byte 0x address", clip(s))))
}

pub fn parse_b256(name: &str, s: &str) -> FieldResult<B256> {
    let s = s.trim();
    if s.len() != 66 || !s.starts_with("0x") {
        return Err(bad(name, format!("`{}` is not a 32-byte 0x hash", clip(s))));
    }
    s[2..]
        .parse::<B256>()
        .map_err(|_| bad(name, format!("`{}` is not a 32-byte 0x hash", clip(s))))
}

fn clip(s: &str) -> String {
    if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary_compat(80)])
    } else {
        s.to_string()
    }
}

trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}
impl FloorBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

pub fn u64_req<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<u64> {
    parse_u64(n, &req(f, n)?)
}
pub fn u64_opt<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Option<u64>> {
    f.text(n).map(|s| parse_u64(n, &s)).transpose()
}
pub fn u256_req<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<U256> {
    parse_u256(n, &req(f, n)?)
}
pub fn u256_opt<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Option<U256>> {
    f.text(n).map(|s| parse_u256(n, &s)).transpose()
}
pub fn addr_req<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Address> {
    parse_addr(n, &req(f, n)?)
}
pub fn addr_opt<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Option<Address>> {
    f.text(n).map(|s| parse_addr(n, &s)).transpose()
}
pub fn b256_req<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<B256> {
    parse_b256(n, &req(f, n)?)
}
pub fn b256_opt<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Option<B256>> {
    f.text(n).map(|s| parse_b256(n, &s)).transpose()
}
pub fn string_opt<F: Fields + ?Sized>(f: &F, n: &str) -> Option<String> {
    f.text(n).map(|s| s.into_owned())
}

pub fn trace_type<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<TraceType> {
    let s = req(f, n)?;
    TraceType::parse(&s).ok_or_else(|| {
        bad(
            n,
            format!(
                "`{}` is not a trace type (call, create, suicide, reward)",
                clip(&s)
            ),
        )
    })
}

/// `[0, 1]` in JSON, `0,1` in CSV, empty for the top frame.
pub fn trace_address<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Vec<u32>> {
    let Some(s) = f.text(n) else {
        return Ok(Vec::new());
    };
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| bad(n, format!("`{}` is not a list of frame indexes", clip(&s))))
        })
        .collect()
}

/// JSON array of 0x hashes, or CSV `0x..,0x..`.
pub fn topics<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Vec<B256>> {
    let Some(s) = f.text(n) else {
        return Ok(Vec::new());
    };
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(|p| p.trim().trim_matches('"'))
        .filter(|p| !p.is_empty())
        .map(|p| parse_b256(n, p))
        .collect()
}

/// JSON array of objects; in CSV the same objects comma-joined without the brackets.
pub fn withdrawals<F: Fields + ?Sized>(f: &F, n: &str) -> FieldResult<Vec<Withdrawal>> {
    let Some(s) = f.text(n) else {
        return Ok(Vec::new());
    };
    let t = s.trim();
    if t.is_empty() || t == "[]" {
        return Ok(Vec::new());
    }
    let json = if t.starts_with('[') {
        t.to_string()
    } else {
        format!("[{t}]")
    };
    #[derive(serde::Deserialize)]
    struct W<'a> {
        index: u64,
        validator_index: u64,
        #[serde(borrow)]
        address: Cow<'a, str>,
        amount: u64,
    }
    let ws: Vec<W> = serde_json::from_str(&json)
        .map_err(|e| bad(n, format!("not a list of withdrawals: {e}")))?;
    ws.into_iter()
        .map(|w| {
            Ok(Withdrawal {
                index: w.index,
                validator_index: w.validator_index,
                address: parse_addr(n, &w.address)?,
                amount: w.amount,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u256_bounds_are_exact() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(parse_u256("value", max).unwrap(), U256::MAX);
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        let e = parse_u256("value", over).unwrap_err();
        assert_eq!(e.field, "value");
        assert!(e.message.contains("exceeds 2^256-1"), "{}", e.message);
        assert!(parse_u256("value", "1.5e18").is_err());
        assert!(parse_u256("value", "-1").is_err());
        assert_eq!(parse_u256("v", "0x10").unwrap(), U256::from(16));
    }
}
