//! THORChain memos: what joins the two sides of a cross-chain swap. An inbound deposit to
//! a vault carries `SWAP:ASSET:DEST:LIMIT:AFFILIATE:FEE` (or the short `=:`/`s:` forms);
//! the outbound transaction on the other chain carries `OUT:<inbound hash>` (or
//! `REFUND:<inbound hash>`), on Bitcoin as an OP_RETURN output.
//!
//! Strict: a memo that is not exactly one of these forms is an error naming the field
//! and why, so a mistyped memo can never join two unrelated transactions. Other actions
//! (liquidity, names, loans) parse as [`Memo::Other`] so callers can skip them knowingly.
//! Grammar from THORChain's "Transaction Memos" and "Memo Length Reduction" pages:
//! shortened assets (`b` = BTC.BTC …), fuzzy token ids (`ETH.USDT-ec7`), scientific
//! limits (`161e6`), streaming `LIMIT/INTERVAL/QUANTITY`, several affiliates `a/b` with
//! fees `10/20` (each at most 1,000 basis points), THORNames as destinations.

use std::fmt;

use cointrail_evm::B256;
use serde::Serialize;

/// Bitcoin carries a memo in one OP_RETURN output of at most 80 bytes.
pub const BITCOIN_MEMO_MAX: usize = 80;
/// Largest affiliate fee THORChain accepts, in basis points.
pub const MAX_AFFILIATE_BPS: u16 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// `CHAIN.SYMBOL`: the real asset on its chain.
    Layer1,
    /// `CHAIN/SYMBOL`: a synthetic held on THORChain.
    Synth,
    /// `CHAIN~SYMBOL`: a trade account asset.
    Trade,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThorAsset {
    pub chain: String,
    pub symbol: String,
    /// The token id (a contract address or its last digits), as written.
    pub id: Option<String>,
    pub kind: AssetKind,
}

impl fmt::Display for ThorAsset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = match self.kind {
            AssetKind::Layer1 => '.',
            AssetKind::Synth => '/',
            AssetKind::Trade => '~',
        };
        write!(f, "{}{sep}{}", self.chain, self.symbol)?;
        if let Some(id) = &self.id {
            write!(f, "-{id}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affiliate {
    /// A THORName or an address.
    pub name: String,
    pub bps: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapMemo {
    pub asset: ThorAsset,
    /// None: back to the sender (THORChain's rule for an empty destination).
    pub destination: Option<String>,
    pub refund: Option<String>,
    /// Minimum output in 1e8 units; None: no price protection.
    pub limit: Option<u128>,
    pub interval: Option<u64>,
    pub quantity: Option<u64>,
    pub affiliates: Vec<Affiliate>,
    /// Aggregator fields after the fee (contract, final token, minimum out), as written.
    pub aggregator: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Memo {
    Swap(SwapMemo),
    /// The outbound leg of the swap whose inbound transaction is this hash.
    Out {
        inbound: B256,
    },
    /// A refund of that inbound transaction.
    Refund {
        inbound: B256,
    },
    /// A recognised action that moves no swap (add/withdraw liquidity, names, loans…).
    Other {
        action: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("THORChain memo {memo:?}: field {field} ({name}): {why}")]
pub struct MemoError {
    pub memo: String,
    /// 1-based position among the `:`-separated fields.
    pub field: usize,
    pub name: &'static str,
    pub why: String,
}

fn err(memo: &str, field: usize, name: &'static str, why: impl Into<String>) -> MemoError {
    let mut m: String = memo.chars().take(120).collect();
    if m.len() < memo.len() {
        m.push('…');
    }
    MemoError {
        memo: m,
        field,
        name,
        why: why.into(),
    }
}

/// The shortened native assets.
fn short_asset(s: &str) -> Option<(&'static str, &'static str)> {
    Some(match s {
        "r" => ("THOR", "RUNE"),
        "a" => ("AVAX", "AVAX"),
        "b" => ("BTC", "BTC"),
        "c" => ("BCH", "BCH"),
        "e" => ("ETH", "ETH"),
        "g" => ("GAIA", "ATOM"),
        "n" => ("BNB", "BNB"),
        "s" => ("BSC", "BNB"),
        "d" => ("DOGE", "DOGE"),
        "l" => ("LTC", "LTC"),
        _ => return None,
    })
}

fn parse_asset(memo: &str, field: usize, s: &str) -> Result<ThorAsset, MemoError> {
    let e = |why: String| err(memo, field, "asset", why);
    if s.is_empty() {
        return Err(e(
            "empty: name the asset to swap to (e.g. BTC.BTC or b)".into()
        ));
    }
    if let Some((c, sym)) = short_asset(&s.to_ascii_lowercase()) {
        return Ok(ThorAsset {
            chain: c.into(),
            symbol: sym.into(),
            id: None,
            kind: AssetKind::Layer1,
        });
    }
    let (pos, kind) = s
        .char_indices()
        .find_map(|(i, c)| match c {
            '.' => Some((i, AssetKind::Layer1)),
            '/' => Some((i, AssetKind::Synth)),
            '~' => Some((i, AssetKind::Trade)),
            _ => None,
        })
        .ok_or_else(|| e(format!("{s:?} is not CHAIN.SYMBOL (nor CHAIN/SYMBOL, CHAIN~SYMBOL, or a short name like b, e, r)")))?;
    let chain = &s[..pos];
    let rest = &s[pos + 1..];
    if !(2..=10).contains(&chain.len()) || !chain.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(e(format!("chain {chain:?} must be 2-10 letters or digits")));
    }
    let (symbol, id) = match rest.split_once('-') {
        Some((s, id)) => (s, Some(id)),
        None => (rest, None),
    };
    if symbol.is_empty()
        || !symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.')
    {
        return Err(e(format!("symbol {symbol:?} must be letters or digits")));
    }
    if let Some(id) = id {
        let hex = id
            .strip_prefix("0x")
            .or_else(|| id.strip_prefix("0X"))
            .unwrap_or(id);
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(e(format!(
                "token id {id:?} must be letters or digits (a contract address or its last digits)"
            )));
        }
    }
    Ok(ThorAsset {
        chain: chain.to_ascii_uppercase(),
        symbol: symbol.to_ascii_uppercase(),
        id: id.map(str::to_string),
        kind,
    })
}

/// An address or THORName: letters, digits and `_`, `-`, `.`, `+`.
fn parse_name(memo: &str, field: usize, name: &'static str, s: &str) -> Result<String, MemoError> {
    if s.is_empty() {
        return Err(err(memo, field, name, "empty"));
    }
    if s.len() > 128
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
    {
        return Err(err(
            memo,
            field,
            name,
            format!("{s:?} is not an address or THORName"),
        ));
    }
    if let Some(h) = s.strip_prefix("0x") {
        if h.len() != 40 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(err(
                memo,
                field,
                name,
                format!("{s:?} starts like an EVM address but is not 20 hex bytes"),
            ));
        }
    }
    Ok(s.to_string())
}

/// A decimal integer, optionally in THORChain's scientific form `161e6` (= 161·10^6).
fn parse_amount(memo: &str, field: usize, name: &'static str, s: &str) -> Result<u128, MemoError> {
    let bad = || {
        err(
            memo,
            field,
            name,
            format!("{s:?} is not a whole number (digits, or digits e exponent like 161e6)"),
        )
    };
    let (mant, exp) = match s.split_once(['e', 'E']) {
        Some((m, x)) => (m, Some(x)),
        None => (s, None),
    };
    if mant.is_empty() || !mant.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut v: u128 = mant
        .parse()
        .map_err(|_| err(memo, field, name, format!("{s:?} is too large")))?;
    if let Some(x) = exp {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) || x.len() > 2 {
            return Err(bad());
        }
        let x: u32 = x.parse().map_err(|_| bad())?;
        v = 10u128
            .checked_pow(x)
            .and_then(|p| v.checked_mul(p))
            .ok_or_else(|| err(memo, field, name, format!("{s:?} is too large")))?;
    }
    Ok(v)
}

fn parse_hash(memo: &str, s: &str) -> Result<B256, MemoError> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            memo,
            2,
            "inbound hash",
            format!("{s:?} is not a 64-hex-digit transaction hash"),
        ));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(B256::new(out))
}

fn parse_swap(memo: &str, f: &[&str]) -> Result<SwapMemo, MemoError> {
    if f.len() < 2 {
        return Err(err(
            memo,
            2,
            "asset",
            "missing: a swap memo is SWAP:ASSET:DESTINATION[:LIMIT[:AFFILIATE:FEE]]",
        ));
    }
    if f.len() > 9 {
        return Err(err(
            memo,
            10,
            "extra",
            format!("{} fields; a swap memo has at most 9", f.len()),
        ));
    }
    let asset = parse_asset(memo, 2, f[1])?;
    let (destination, refund) = match f.get(2).copied().unwrap_or("") {
        "" => (None, None),
        d => match d.split_once('/') {
            Some((a, r)) => (
                Some(parse_name(memo, 3, "destination", a)?),
                Some(parse_name(memo, 3, "refund address", r)?),
            ),
            None => (Some(parse_name(memo, 3, "destination", d)?), None),
        },
    };
    let (mut limit, mut interval, mut quantity) = (None, None, None);
    if let Some(l) = f.get(3).copied().filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = l.split('/').collect();
        if parts.len() > 3 {
            return Err(err(memo, 4, "limit", "at most LIMIT/INTERVAL/QUANTITY"));
        }
        if !parts[0].is_empty() {
            limit = Some(parse_amount(memo, 4, "limit", parts[0])?);
        }
        if let Some(i) = parts.get(1) {
            interval = Some(
                parse_amount(memo, 4, "streaming interval", i)?
                    .try_into()
                    .map_err(|_| err(memo, 4, "streaming interval", "too large"))?,
            );
        }
        if let Some(q) = parts.get(2) {
            quantity = Some(
                parse_amount(memo, 4, "streaming quantity", q)?
                    .try_into()
                    .map_err(|_| err(memo, 4, "streaming quantity", "too large"))?,
            );
        }
    }
    let names: Vec<&str> = match f.get(4).copied().unwrap_or("") {
        "" => Vec::new(),
        a => a.split('/').collect(),
    };
    let fees: Vec<&str> = match f.get(5).copied().unwrap_or("") {
        "" => Vec::new(),
        x => x.split('/').collect(),
    };
    if names.is_empty() && !fees.is_empty() {
        return Err(err(memo, 6, "affiliate fee", "a fee without an affiliate"));
    }
    if !fees.is_empty() && fees.len() != names.len() {
        return Err(err(
            memo,
            6,
            "affiliate fee",
            format!("{} fees for {} affiliates", fees.len(), names.len()),
        ));
    }
    let mut affiliates = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let name = parse_name(memo, 5, "affiliate", n)?;
        let bps = match fees.get(i) {
            None => 0,
            Some(x) => {
                let v = parse_amount(memo, 6, "affiliate fee", x)?;
                if v > MAX_AFFILIATE_BPS as u128 {
                    return Err(err(
                        memo,
                        6,
                        "affiliate fee",
                        format!("{v} basis points; at most {MAX_AFFILIATE_BPS}"),
                    ));
                }
                v as u16
            }
        };
        affiliates.push(Affiliate { name, bps });
    }
    Ok(SwapMemo {
        asset,
        destination,
        refund,
        limit,
        interval,
        quantity,
        affiliates,
        aggregator: f.iter().skip(6).map(|s| s.to_string()).collect(),
    })
}

/// Parse a memo (surrounding whitespace is ignored; nothing else is forgiven).
pub fn parse_memo(memo: &str) -> Result<Memo, MemoError> {
    let m = memo.trim();
    if m.is_empty() {
        return Err(err(memo, 1, "action", "empty memo"));
    }
    if m.chars().any(|c| c.is_control()) {
        return Err(err(memo, 1, "action", "control characters in the memo"));
    }
    let f: Vec<&str> = m.split(':').collect();
    let action = f[0].to_ascii_lowercase();
    match action.as_str() {
        "swap" | "s" | "=" => parse_swap(m, &f).map(Memo::Swap),
        "out" | "refund" => {
            if f.len() != 2 {
                return Err(err(
                    m,
                    2,
                    "inbound hash",
                    format!(
                        "{} is OUT:<hash> or REFUND:<hash>, got {} fields",
                        f[0],
                        f.len()
                    ),
                ));
            }
            let inbound = parse_hash(m, f[1])?;
            Ok(if action == "out" {
                Memo::Out { inbound }
            } else {
                Memo::Refund { inbound }
            })
        }
        "add" | "a" | "+" | "withdraw" | "wd" | "-" | "name" | "n" | "~" | "loan+" | "$+"
        | "loan-" | "$-" | "bond" | "unbond" | "leave" | "migrate" | "ragnarok" | "noop"
        | "consolidate" | "reserve" | "donate" | "trade+" | "trade-" | "secure+" | "secure-" => {
            Ok(Memo::Other { action })
        }
        _ => Err(err(
            m,
            1,
            "action",
            format!(
                "{:?} is not a THORChain action (SWAP, =, s, OUT, REFUND, ADD, WITHDRAW, …)",
                f[0]
            ),
        )),
    }
}

/// A memo from the bytes of an OP_RETURN push (or an EVM deposit's memo string).
pub fn parse_memo_bytes(b: &[u8]) -> Result<Memo, MemoError> {
    let s = std::str::from_utf8(b).map_err(|_| {
        err(
            &String::from_utf8_lossy(b),
            1,
            "action",
            "the memo is not UTF-8 text",
        )
    })?;
    parse_memo(s)
}

impl SwapMemo {
    /// The memo in THORChain's short form (`=:` …), which parses back to the same value.
    pub fn render(&self) -> String {
        let mut s = format!("=:{}:", self.asset);
        if let Some(d) = &self.destination {
            s.push_str(d);
            if let Some(r) = &self.refund {
                s.push('/');
                s.push_str(r);
            }
        }
        let lim = match (self.limit, self.interval, self.quantity) {
            (None, None, None) => String::new(),
            (l, None, None) => l.map(|v| v.to_string()).unwrap_or_default(),
            (l, i, q) => format!(
                "{}/{}/{}",
                l.map(|v| v.to_string()).unwrap_or_default(),
                i.unwrap_or(0),
                q.unwrap_or(0)
            ),
        };
        let aff = self
            .affiliates
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join("/");
        let fee = self
            .affiliates
            .iter()
            .map(|a| a.bps.to_string())
            .collect::<Vec<_>>()
            .join("/");
        let mut tail = vec![lim, aff, fee];
        tail.extend(self.aggregator.iter().cloned());
        while tail.last().is_some_and(|x| x.is_empty()) {
            tail.pop();
        }
        for t in tail {
            s.push(':');
            s.push_str(&t);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(m: &str) -> SwapMemo {
        match parse_memo(m).unwrap() {
            Memo::Swap(s) => s,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn the_documented_forms() {
        let s = swap("=:BTC.BTC:bc1q3a2le4lazts64u8mqte5vuxvug25z5w6rhs95g:5855757:t:10");
        assert_eq!(s.asset.to_string(), "BTC.BTC");
        assert_eq!(
            s.destination.as_deref(),
            Some("bc1q3a2le4lazts64u8mqte5vuxvug25z5w6rhs95g")
        );
        assert_eq!(s.limit, Some(5_855_757));
        assert_eq!(
            s.affiliates,
            vec![Affiliate {
                name: "t".into(),
                bps: 10
            }]
        );

        // Short asset, THORName destination, scientific limit.
        let s = swap("=:e:dx:161e6:t:10");
        assert_eq!(
            (s.asset.chain.as_str(), s.asset.symbol.as_str()),
            ("ETH", "ETH")
        );
        assert_eq!(s.limit, Some(161_000_000));
        let s = swap("SWAP:ETH.USDT-0xdac17f958d2ee523a2206206994597c13d831ec7:0xe6a30f4f3bad978910e2cbb4d97581f5b5a0ade0:10012345678:thor1el4ufmhll3yw7zxzszvfakrk66j7fx0tvcslym:10");
        assert_eq!(
            s.asset.id.as_deref(),
            Some("0xdac17f958d2ee523a2206206994597c13d831ec7")
        );
        assert_eq!(s.limit, Some(10_012_345_678));
        // Empty destination (back to the sender), streaming, no affiliate.
        let s = swap("s:ETH.USDT-ec7::0/3/0");
        assert_eq!(s.destination, None);
        assert_eq!(
            (s.limit, s.interval, s.quantity),
            (Some(0), Some(3), Some(0))
        );
        let s = swap("SWAP:THOR.RUNE:::thor1uwxgm4w8ud6pu4dc2s5tqnrmk7exjzjpvm2krs:100");
        assert_eq!(s.affiliates[0].bps, 100);
        assert_eq!(
            swap("=:AVAX/USDC:thor188cm7ttvfpkxahageez4fufgk003cx2vw9nzdc:0:t:30")
                .asset
                .kind,
            AssetKind::Synth
        );

        let h = "9B2C4A5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8091A";
        assert!(
            matches!(parse_memo(&format!("OUT:{h}")).unwrap(), Memo::Out { inbound } if inbound.to_string().eq_ignore_ascii_case(&format!("0x{h}")))
        );
        assert!(matches!(
            parse_memo(&format!("refund:0x{h}")).unwrap(),
            Memo::Refund { .. }
        ));
        assert!(matches!(
            parse_memo("+:BTC.BTC:thor1abc").unwrap(),
            Memo::Other { .. }
        ));
    }

    #[test]
    fn clear_errors() {
        for (m, field, needle) in [
            ("", 1, "empty"),
            ("SWAP", 2, "missing"),
            ("SWAP:BTCBTC:bc1q", 2, "not CHAIN.SYMBOL"),
            ("=:BTC.BTC:bc1q:12x", 4, "not a whole number"),
            ("=:BTC.BTC:bc1q:1e99", 4, "too large"),
            ("=:BTC.BTC:bc1q:1:t:1001", 6, "at most 1000"),
            ("=:BTC.BTC:bc1q:1::10", 6, "without an affiliate"),
            ("=:BTC.BTC:bc1q:1:t/u:10", 6, "1 fees for 2 affiliates"),
            ("=:e:0x1234:1", 3, "20 hex bytes"),
            ("=:b:bc1q zz", 3, "not an address"),
            ("OUT:1234", 2, "64-hex-digit"),
            ("OUT:", 2, "64-hex-digit"),
            ("OUT:a:b", 2, "got 3 fields"),
            ("BUY:BTC.BTC", 1, "not a THORChain action"),
        ] {
            let e = parse_memo(m).unwrap_err();
            assert_eq!(e.field, field, "{m}: {e}");
            assert!(e.to_string().contains(needle), "{m}: {e}");
        }
        assert!(parse_memo_bytes(&[0xff, 0xfe])
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }
}
