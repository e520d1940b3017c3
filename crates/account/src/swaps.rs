//! Pooling contracts seen through their logs: swaps become conversion edges (from whoever
//! paid the input to whoever received the output), WETH wraps and unwraps are
//! conversions too, and Tornado-style pool deposits are where a trace stops.
//!
//! A swap event is believed only when the transfers of the same transaction agree with
//! it: the output must be a transfer from the pool to the event's recipient of exactly the
//! output amount, the input a transfer into the pool of exactly the input amount (or of
//! that asset in total), and for Uniswap the token order must match amount0/amount1 (the
//! pools sort token0 < token1). Anything else is a [`SkippedHop`] with its reason, never a
//! guessed link.

use std::collections::HashSet;

use cointrail_evm::etl::Log;
use cointrail_evm::movement::{Asset, MovementKind};
use cointrail_evm::{Address, B256, U256};
use serde::Serialize;

use crate::ledger::Move;

macro_rules! topic {
    ($hex:literal) => {
        B256::new(hex_literal($hex))
    };
}

const fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex"),
    }
}

const fn hex_literal(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = hex_val(b[2 + 2 * i]) * 16 + hex_val(b[3 + 2 * i]);
        i += 1;
    }
    out
}

/// `Swap(address,uint256,uint256,uint256,uint256,address)` (Uniswap v2 pairs and forks).
pub const UNISWAP_V2_SWAP: B256 =
    topic!("0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822");
/// `Swap(address,address,int256,int256,uint160,uint128,int24)` (Uniswap v3 pools).
pub const UNISWAP_V3_SWAP: B256 =
    topic!("0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67");
/// `TokenExchange(address,int128,uint256,int128,uint256)` (Curve stable pools).
pub const CURVE_TOKEN_EXCHANGE: B256 =
    topic!("0x8b3e96f2b889fa771c53c981b40daf005f63f637f1869f707052d15a3dd97140");
/// `TokenExchange(address,uint256,uint256,uint256,uint256)` (Curve crypto pools).
pub const CURVE_TOKEN_EXCHANGE_V2: B256 =
    topic!("0xb2e76ae99761dc136e598d4a629bb347eccb9532a5f8bbd72e18467c3c34cc98");
/// `Deposit(address,uint256)` (WETH9 wrap).
pub const WETH_DEPOSIT: B256 =
    topic!("0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c");
/// `Withdrawal(address,uint256)` (WETH9 unwrap).
pub const WETH_WITHDRAWAL: B256 =
    topic!("0x7fcf532c15f0a6db0bd6d0e038bea71d30d808c7d98cb3bf7268a95bf5081b65");
/// `Deposit(bytes32,uint32,uint256)` (Tornado Cash pools).
pub const TORNADO_DEPOSIT: B256 =
    topic!("0xa945e51eec50ab98c161376f0db4cf2aeba3ec92755fe2fcd388bdbbb80ff196");
/// `Withdrawal(address,bytes32,address,uint256)` (Tornado Cash pools).
pub const TORNADO_WITHDRAWAL: B256 =
    topic!("0xe9e508bad6d4c3227e881ca19068f099da81b5164dd6d62b2eaf1e8bc6c34931");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    UniswapV2,
    UniswapV3,
    Curve,
    WethDeposit,
    WethWithdrawal,
}

/// A conversion edge: `amount_in` of `asset_in` paid into `pool` became `amount_out` of
/// `asset_out` at `recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversion {
    pub protocol: Protocol,
    pub log_index: u64,
    pub pool: Address,
    pub asset_in: Asset,
    pub amount_in: U256,
    pub asset_out: Asset,
    pub amount_out: U256,
    pub recipient: Address,
    /// The input leaves this holder's balance without a movement (a WETH unwrap burns
    /// without a `Transfer`); None when the input is what moved into the pool.
    pub burn_from: Option<Address>,
    /// The movement delivering the output; None when nothing moves (a WETH wrap mints
    /// without a `Transfer`).
    pub output_move: Option<u64>,
}

/// A swap-like event that was not turned into an edge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedHop {
    pub log_index: u64,
    pub pool: Address,
    pub reason: String,
}

/// A deposit into a Tornado-style pool (the trace stops there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MixerDeposit {
    pub log_index: u64,
    pub pool: Address,
    pub commitment: B256,
}

/// A withdrawal from a Tornado-style pool: a candidate for where deposited value went,
/// never taint by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MixerWithdrawal {
    pub log_index: u64,
    pub pool: Address,
    pub to: Address,
    pub relayer: Address,
    pub fee: U256,
    pub nullifier_hash: B256,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TxDecode {
    pub conversions: Vec<Conversion>,
    pub skipped: Vec<SkippedHop>,
    pub mixer_deposits: Vec<MixerDeposit>,
    pub mixer_withdrawals: Vec<MixerWithdrawal>,
}

impl TxDecode {
    /// Addresses that pool value in this transaction: whatever is paid to them is held
    /// in flight for a conversion, never as their balance.
    pub fn is_pool(&self, a: &Address) -> bool {
        self.conversions.iter().any(|c| c.pool == *a) || self.skipped.iter().any(|s| s.pool == *a)
    }
    pub fn is_mixer_pool(&self, a: &Address) -> bool {
        self.mixer_deposits.iter().any(|d| d.pool == *a)
    }
}

fn words(data: &str) -> Result<Vec<[u8; 32]>, String> {
    let h = data.strip_prefix("0x").unwrap_or(data);
    if h.len() % 64 != 0 {
        return Err(format!(
            "log data is {} hex digits, not a whole number of 32-byte words",
            h.len()
        ));
    }
    let b = h.as_bytes();
    let mut out = Vec::with_capacity(h.len() / 64);
    for w in b.chunks(64) {
        let mut word = [0u8; 32];
        for (i, pair) in w.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| "log data is not hex".to_string())?;
            word[i] =
                u8::from_str_radix(s, 16).map_err(|_| format!("log data: {s:?} is not hex"))?;
        }
        out.push(word);
    }
    Ok(out)
}

fn addr_of_word(w: &[u8; 32]) -> Result<Address, String> {
    if w[..12].iter().any(|&b| b != 0) {
        return Err("an address word has nonzero high bytes".into());
    }
    Ok(Address::from_slice(&w[12..]))
}

fn topic_addr(l: &Log, i: usize) -> Result<Address, String> {
    let t = l
        .topics
        .get(i)
        .ok_or_else(|| format!("the event lacks indexed topic {i}"))?;
    addr_of_word(&t.0)
}

fn uint(w: &[u8; 32]) -> U256 {
    U256::from_be_bytes(*w)
}

/// An int256 word as (is_negative, magnitude).
fn int(w: &[u8; 32]) -> (bool, U256) {
    let v = U256::from_be_bytes(*w);
    if w[0] & 0x80 != 0 {
        (true, (!v).wrapping_add(U256::from(1u8)))
    } else {
        (false, v)
    }
}

fn need(ws: &[[u8; 32]], n: usize, what: &str) -> Result<(), String> {
    if ws.len() < n {
        return Err(format!("{what} has {} data words, needs {n}", ws.len()));
    }
    Ok(())
}

struct Matcher<'a> {
    moves: &'a [Move],
    used_out: HashSet<u64>,
    used_in: HashSet<u64>,
}

impl Matcher<'_> {
    fn output(
        &mut self,
        pool: Address,
        to: Option<Address>,
        amount: U256,
        tokens_only: bool,
    ) -> Option<&Move> {
        let m = self.moves.iter().find(|m| {
            m.from == pool
                && to.is_none_or(|t| m.to == t)
                && m.amount == amount
                && !m.is_gas()
                && (!tokens_only || m.kind == MovementKind::Token)
                && !self.used_out.contains(&m.id)
        })?;
        self.used_out.insert(m.id);
        Some(m)
    }

    /// The asset paid into the pool as this swap's input: one transfer of exactly the
    /// amount, or else one asset whose transfers into the pool add up to it.
    fn input(&mut self, pool: Address, not: Asset, amount: U256) -> Option<Asset> {
        if let Some(m) = self.moves.iter().find(|m| {
            m.to == pool
                && m.asset != not
                && m.amount == amount
                && !m.is_gas()
                && !self.used_in.contains(&m.id)
        }) {
            self.used_in.insert(m.id);
            return Some(m.asset);
        }
        let mut assets: Vec<Asset> = self
            .moves
            .iter()
            .filter(|m| m.to == pool && m.asset != not && !m.is_gas())
            .map(|m| m.asset)
            .collect();
        assets.dedup();
        let hits: Vec<Asset> = assets
            .into_iter()
            .filter(|a| {
                self.moves
                    .iter()
                    .filter(|m| m.to == pool && m.asset == *a && !m.is_gas())
                    .fold(U256::ZERO, |s, m| s + m.amount)
                    == amount
            })
            .collect();
        (hits.len() == 1).then(|| hits[0])
    }
}

/// Decode one transaction's logs against its movements.
pub fn decode_tx(logs: &[Log], moves: &[Move]) -> TxDecode {
    let mut out = TxDecode::default();
    let mut m = Matcher {
        moves,
        used_out: HashSet::new(),
        used_in: HashSet::new(),
    };
    for l in logs {
        let Some(t0) = l.topics.first() else { continue };
        let r = match *t0 {
            x if x == UNISWAP_V2_SWAP => uniswap(l, &mut m, false).map(|c| out.conversions.push(c)),
            x if x == UNISWAP_V3_SWAP => uniswap(l, &mut m, true).map(|c| out.conversions.push(c)),
            x if x == CURVE_TOKEN_EXCHANGE || x == CURVE_TOKEN_EXCHANGE_V2 => {
                curve(l, &mut m).map(|c| out.conversions.push(c))
            }
            x if x == WETH_DEPOSIT => weth(l, &mut m, true).map(|c| out.conversions.push(c)),
            x if x == WETH_WITHDRAWAL => weth(l, &mut m, false).map(|c| out.conversions.push(c)),
            x if x == TORNADO_DEPOSIT => tornado_deposit(l).map(|d| out.mixer_deposits.push(d)),
            x if x == TORNADO_WITHDRAWAL => {
                tornado_withdrawal(l).map(|w| out.mixer_withdrawals.push(w))
            }
            _ => continue,
        };
        if let Err(reason) = r {
            out.skipped.push(SkippedHop {
                log_index: l.log_index,
                pool: l.address,
                reason,
            });
        }
    }
    out
}

fn uniswap(l: &Log, m: &mut Matcher, v3: bool) -> Result<Conversion, String> {
    let ws = words(&l.data)?;
    let recipient = topic_addr(l, 2)?;
    // (index of the token paid in, amount in, index of the token paid out, amount out)
    let (in_idx, amount_in, out_idx, amount_out) = if v3 {
        need(&ws, 5, "a Uniswap v3 Swap")?;
        let (n0, a0) = int(&ws[0]);
        let (n1, a1) = int(&ws[1]);
        match (n0, n1) {
            (false, true) if !a0.is_zero() && !a1.is_zero() => (0, a0, 1, a1),
            (true, false) if !a0.is_zero() && !a1.is_zero() => (1, a1, 0, a0),
            _ => {
                return Err(format!(
                "Uniswap v3 Swap with amount0 {}{a0} and amount1 {}{a1}: not one in and one out",
                if n0 { "-" } else { "" },
                if n1 { "-" } else { "" }
            ))
            }
        }
    } else {
        need(&ws, 4, "a Uniswap v2 Swap")?;
        let (i0, i1, o0, o1) = (uint(&ws[0]), uint(&ws[1]), uint(&ws[2]), uint(&ws[3]));
        match (i0.is_zero(), i1.is_zero(), o0.is_zero(), o1.is_zero()) {
            (false, true, true, false) => (0, i0, 1, o1),
            (true, false, false, true) => (1, i1, 0, o0),
            _ => return Err(format!("Uniswap v2 Swap in ({i0}, {i1}) out ({o0}, {o1}): not one token in and the other out (flash swaps are not followed)")),
        }
    };
    let out_mv = m
        .output(l.address, Some(recipient), amount_out, true)
        .ok_or_else(|| format!("no token transfer of {amount_out} from the pool to the recipient {recipient} in this transaction"))?;
    let (asset_out, output_move) = (out_mv.asset, out_mv.id);
    let asset_in = m
        .input(l.address, asset_out, amount_in)
        .ok_or_else(|| format!("the input amount {amount_in} matches no transfer into the pool"))?;
    if let (Asset::Token(a_in), Asset::Token(a_out)) = (asset_in, asset_out) {
        if (in_idx == 0) != (a_in < a_out) || in_idx == out_idx {
            return Err(format!(
                "token order disagrees with the event: token{in_idx} in would be {a_in}, token{out_idx} out {a_out}, but pools sort token0 < token1"
            ));
        }
    } else {
        return Err("a Uniswap pool paid or was paid in the native coin".into());
    }
    Ok(Conversion {
        protocol: if v3 {
            Protocol::UniswapV3
        } else {
            Protocol::UniswapV2
        },
        log_index: l.log_index,
        pool: l.address,
        asset_in,
        amount_in,
        asset_out,
        amount_out,
        recipient,
        burn_from: None,
        output_move: Some(output_move),
    })
}

fn curve(l: &Log, m: &mut Matcher) -> Result<Conversion, String> {
    let ws = words(&l.data)?;
    need(&ws, 4, "a Curve TokenExchange")?;
    let buyer = topic_addr(l, 1)?;
    let (sold, bought) = (uint(&ws[1]), uint(&ws[3]));
    if uint(&ws[0]) == uint(&ws[2]) {
        return Err("Curve TokenExchange sells and buys the same coin index".into());
    }
    // Newer pools pay a `receiver` that the event does not name: then the one transfer
    // of exactly the bought amount out of the pool is the output.
    let out_mv = match m.output(l.address, Some(buyer), bought, false) {
        Some(x) => x,
        None => m.output(l.address, None, bought, false).ok_or_else(|| {
            format!("no transfer of {bought} out of the pool in this transaction")
        })?,
    };
    let (asset_out, recipient, output_move) = (out_mv.asset, out_mv.to, out_mv.id);
    let asset_in = m
        .input(l.address, asset_out, sold)
        .ok_or_else(|| format!("the sold amount {sold} matches no transfer into the pool"))?;
    Ok(Conversion {
        protocol: Protocol::Curve,
        log_index: l.log_index,
        pool: l.address,
        asset_in,
        amount_in: sold,
        asset_out,
        amount_out: bought,
        recipient,
        burn_from: None,
        output_move: Some(output_move),
    })
}

fn weth(l: &Log, m: &mut Matcher, deposit: bool) -> Result<Conversion, String> {
    let ws = words(&l.data)?;
    need(&ws, 1, "a WETH event")?;
    let who = topic_addr(l, 1)?;
    let wad = uint(&ws[0]);
    let weth = Asset::Token(l.address);
    if deposit {
        m.input(l.address, weth, wad)
            .filter(|a| *a == Asset::Native)
            .ok_or_else(|| {
                format!("WETH Deposit of {wad} wei but no such ETH payment into the contract")
            })?;
        Ok(Conversion {
            protocol: Protocol::WethDeposit,
            log_index: l.log_index,
            pool: l.address,
            asset_in: Asset::Native,
            amount_in: wad,
            asset_out: weth,
            amount_out: wad,
            recipient: who,
            burn_from: None,
            output_move: None,
        })
    } else {
        let out = m
            .output(l.address, Some(who), wad, false)
            .filter(|x| x.asset == Asset::Native)
            .ok_or_else(|| format!("WETH Withdrawal of {wad} wei but no ETH paid back to {who} (internal transfers need traces)"))?;
        Ok(Conversion {
            protocol: Protocol::WethWithdrawal,
            log_index: l.log_index,
            pool: l.address,
            asset_in: weth,
            amount_in: wad,
            asset_out: Asset::Native,
            amount_out: wad,
            recipient: who,
            burn_from: Some(who),
            output_move: Some(out.id),
        })
    }
}

fn tornado_deposit(l: &Log) -> Result<MixerDeposit, String> {
    let c = l
        .topics
        .get(1)
        .ok_or("a Tornado Deposit lacks its commitment topic")?;
    Ok(MixerDeposit {
        log_index: l.log_index,
        pool: l.address,
        commitment: *c,
    })
}

fn tornado_withdrawal(l: &Log) -> Result<MixerWithdrawal, String> {
    let ws = words(&l.data)?;
    need(&ws, 3, "a Tornado Withdrawal")?;
    Ok(MixerWithdrawal {
        log_index: l.log_index,
        pool: l.address,
        to: addr_of_word(&ws[0])?,
        nullifier_hash: B256::new(ws[1]),
        relayer: topic_addr(l, 1)?,
        fee: uint(&ws[2]),
    })
}

/// Log data from words, for tests and simulators.
pub fn encode_words(ws: &[U256]) -> String {
    let mut s = String::from("0x");
    for w in ws {
        for b in w.to_be_bytes::<32>() {
            s.push_str(&format!("{b:02x}"));
        }
    }
    s
}

/// An address as an indexed topic.
pub fn addr_topic(a: Address) -> B256 {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    B256::new(w)
}

/// A signed amount as an int256 word.
pub fn int_word(negative: bool, magnitude: U256) -> U256 {
    if negative {
        (!magnitude).wrapping_add(U256::from(1u8))
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    #[test]
    fn topics_are_the_keccak_of_their_signatures() {
        for (sig, t) in [
            (
                "Swap(address,uint256,uint256,uint256,uint256,address)",
                UNISWAP_V2_SWAP,
            ),
            (
                "Swap(address,address,int256,int256,uint160,uint128,int24)",
                UNISWAP_V3_SWAP,
            ),
            (
                "TokenExchange(address,int128,uint256,int128,uint256)",
                CURVE_TOKEN_EXCHANGE,
            ),
            (
                "TokenExchange(address,uint256,uint256,uint256,uint256)",
                CURVE_TOKEN_EXCHANGE_V2,
            ),
            ("Deposit(address,uint256)", WETH_DEPOSIT),
            ("Withdrawal(address,uint256)", WETH_WITHDRAWAL),
            ("Deposit(bytes32,uint32,uint256)", TORNADO_DEPOSIT),
            (
                "Withdrawal(address,bytes32,address,uint256)",
                TORNADO_WITHDRAWAL,
            ),
        ] {
            assert_eq!(keccak256(sig.as_bytes()), t, "{sig}");
        }
    }

    #[test]
    fn int256_words() {
        let w = int_word(true, U256::from(5u8)).to_be_bytes::<32>();
        assert_eq!(int(&w), (true, U256::from(5u8)));
        assert_eq!(
            int(&U256::from(7u8).to_be_bytes::<32>()),
            (false, U256::from(7u8))
        );
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        assert!(words("0x12").is_err());
        assert!(words(&format!("0x{}", "zz".repeat(32))).is_err());
        assert!(addr_of_word(&[1u8; 32]).is_err());
    }
}
