//! Cross-chain joins (issue 16): the two sides of a crossing (a deposit into a vault,
//! bridge or router on chain A; a release paid out on chain B) matched, and taint carried
//! over at the crossing's own rate.
//!
//! Chain-neutral on purpose: a side is a [`Deposit`] or a [`Release`] (transaction hash,
//! time, addresses and amounts as the chain writes them), so the same rules join
//! Ethereum→Bitcoin, Bitcoin→Ethereum, or any pair; the caller reads them from its indexes.
//!
//! How a join is made, strongest first (each [`Join`] says which):
//! - **THORChain**: the outbound's memo `OUT:<inbound hash>` names the inbound
//!   transaction; THORChain's signers write it, so the link is certain. The inbound memo
//!   (when known) is a check: its destination must be paid, its asset's chain must be the
//!   release's chain, else the hop is skipped with the reason (never a guessed link).
//!   `REFUND:<hash>` joins a refund (back to the sender's chain).
//! - **Bridge id**: a bridge rule names where the deposit's id and the release's id are
//!   (a log field on one side, an OP_RETURN prefix on the other); equal ids join.
//! - **Amount and time**: for a bridge rule without ids, a release within `window_secs`
//!   after the deposit whose paid amount is within `tolerance_bps` of the deposit times
//!   the rule's rate. Confidence (parts per million) = `(1 − err / (2·tol)) / candidates`:
//!   1,000,000 only for the exact amount with one candidate; halved by a second candidate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use alloy_primitives::U512;
use cointrail_evm::U256;
use serde::{Deserialize, Serialize};

use crate::runs::{largest_remainder, Label};
use crate::thorchain::{parse_memo, Memo};

/// The inbound side: value paid into a crossing on its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deposit {
    pub chain: String,
    /// Transaction hash, lowercase hex without `0x`.
    pub tx: String,
    /// Unix seconds of its block.
    pub time: u64,
    pub from: String,
    /// The vault, router or bridge contract paid.
    pub to: String,
    pub asset: String,
    /// In the chain's base unit (wei, token units, satoshis).
    pub amount: U256,
    pub memo: Option<String>,
    pub id: Option<String>,
}

/// One payment of a release (change back to the vault is not one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payout {
    pub address: String,
    pub amount: U256,
    /// Output index (vout) or movement id on its chain.
    pub index: u64,
}

/// The outbound side: a transaction on the other chain paying the crossing's value out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub chain: String,
    pub tx: String,
    pub time: u64,
    pub asset: String,
    pub payouts: Vec<Payout>,
    pub memo: Option<String>,
    pub id: Option<String>,
}

impl Release {
    pub fn paid(&self) -> U256 {
        self.payouts.iter().fold(U256::ZERO, |a, p| a + p.amount)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matched {
    /// `OUT:<inbound hash>` on the release.
    ThorchainOut,
    /// `REFUND:<inbound hash>` on the release.
    ThorchainRefund,
    /// Equal bridge ids on both sides.
    BridgeId,
    /// Amount (at the rule's rate) and time window.
    AmountTime,
}

impl Matched {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThorchainOut => "thorchain_out_memo",
            Self::ThorchainRefund => "thorchain_refund_memo",
            Self::BridgeId => "bridge_id",
            Self::AmountTime => "amount_time",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Join {
    /// Index into the deposits given.
    pub deposit: usize,
    /// Index into the releases given.
    pub release: usize,
    /// `thorchain` or the bridge rule's name.
    pub via: String,
    pub matched: Matched,
    /// Parts per million; 1,000,000 for memo and id joins.
    pub confidence_ppm: u32,
}

/// A crossing that was seen and not joined, with the reason (logged, never guessed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedHop {
    pub chain: String,
    pub tx: String,
    pub reason: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Joined {
    pub joins: Vec<Join>,
    pub skipped: Vec<SkippedHop>,
}

/// Hash as joined: lowercase hex without `0x`.
pub fn norm_hash(h: &str) -> String {
    h.trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .to_ascii_lowercase()
}

fn norm_addr(a: &str) -> String {
    a.trim().to_ascii_lowercase()
}

/// THORChain's chain names for the chains we index.
fn thor_chain(chain: &str) -> &str {
    match chain {
        "bitcoin" => "BTC",
        "ethereum" => "ETH",
        o => o,
    }
}

/// Join THORChain releases to deposits by their `OUT:`/`REFUND:` memos. Releases whose memo
/// is not THORChain's are ignored (they may be a bridge's); a release naming a deposit not
/// given is ignored too (the caller passes the deposits it follows).
pub fn join_thorchain(deposits: &[Deposit], releases: &[Release]) -> Joined {
    let by_hash: HashMap<String, usize> = deposits
        .iter()
        .enumerate()
        .map(|(i, d)| (norm_hash(&d.tx), i))
        .collect();
    let mut out = Joined::default();
    for (ri, r) in releases.iter().enumerate() {
        let Some(memo) = &r.memo else { continue };
        let (inbound, refund) = match parse_memo(memo) {
            Ok(Memo::Out { inbound }) => (inbound, false),
            Ok(Memo::Refund { inbound }) => (inbound, true),
            _ => continue,
        };
        let h = alloy_primitives::hex::encode(inbound.as_slice());
        let Some(&di) = by_hash.get(&h) else { continue };
        let d = &deposits[di];
        if !refund {
            if let Some(reason) = check_inbound_memo(d, r) {
                out.skipped.push(SkippedHop {
                    chain: r.chain.clone(),
                    tx: r.tx.clone(),
                    reason,
                });
                continue;
            }
        }
        out.joins.push(Join {
            deposit: di,
            release: ri,
            via: "thorchain".into(),
            matched: if refund {
                Matched::ThorchainRefund
            } else {
                Matched::ThorchainOut
            },
            confidence_ppm: 1_000_000,
        });
    }
    out
}

/// Why an `OUT:` release does not fit its inbound's memo, if it does not.
fn check_inbound_memo(d: &Deposit, r: &Release) -> Option<String> {
    let memo = d.memo.as_deref()?;
    let m = match parse_memo(memo) {
        Ok(m) => m,
        Err(e) => {
            return Some(format!(
                "inbound {} has a memo that does not parse ({e}); THORChain would have refunded it",
                d.tx
            ))
        }
    };
    let Memo::Swap(s) = m else {
        return Some(format!("inbound {} memo {memo:?} is not a swap", d.tx));
    };
    if !s.asset.chain.eq_ignore_ascii_case(thor_chain(&r.chain)) {
        return Some(format!(
            "inbound {} swaps to chain {} but the outbound is on {}",
            d.tx, s.asset.chain, r.chain
        ));
    }
    if let Some(dest) = &s.destination {
        let dest = norm_addr(dest);
        if !r.payouts.iter().any(|p| norm_addr(&p.address) == dest) {
            return Some(format!(
                "outbound {} does not pay the memo's destination {dest}",
                r.tx
            ));
        }
    }
    None
}

/// One bridge, as a rule file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeRule {
    pub name: String,
    pub deposit: BridgeSide,
    pub release: BridgeSide,
    /// Release base units per `rate_in` deposit base units (for the amount join), e.g.
    /// 5,000,000 sats per 10^18 wei. Same asset: 1 / 1.
    #[serde(default = "one")]
    pub rate_out: String,
    #[serde(default = "one")]
    pub rate_in: String,
    #[serde(default = "d_tol")]
    pub tolerance_bps: u32,
    #[serde(default = "d_window")]
    pub window_secs: u64,
}

fn one() -> String {
    "1".into()
}
fn d_tol() -> u32 {
    100
}
fn d_window() -> u64 {
    3_600
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSide {
    pub chain: String,
    /// The bridge's contracts or vault addresses on this chain.
    pub addresses: Vec<String>,
    /// Where the id is: `log:<event name>` on an EVM chain (the id field of that event),
    /// `op_return:<prefix>` on Bitcoin (the text after the prefix). None: no ids.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeRules {
    pub bridges: Vec<BridgeRule>,
}

#[derive(Debug, thiserror::Error)]
#[error("bridge rules {file}: {msg}")]
pub struct RulesError {
    pub file: String,
    pub msg: String,
}

impl BridgeRule {
    fn rate(&self) -> (U256, U256) {
        // Checked at load.
        (
            self.rate_out.parse().unwrap_or(U256::from(1u8)),
            self.rate_in.parse().unwrap_or(U256::from(1u8)),
        )
    }
    /// The OP_RETURN prefix of release ids, if the rule names one.
    pub fn release_id_prefix(&self) -> Option<&str> {
        self.release.id.as_deref()?.strip_prefix("op_return:")
    }
    pub fn deposit_id_log(&self) -> Option<&str> {
        self.deposit.id.as_deref()?.strip_prefix("log:")
    }
    pub fn is_deposit_address(&self, chain: &str, a: &str) -> bool {
        self.deposit.chain == chain
            && self
                .deposit
                .addresses
                .iter()
                .any(|x| x.eq_ignore_ascii_case(a))
    }
    pub fn is_release_address(&self, chain: &str, a: &str) -> bool {
        self.release.chain == chain
            && self
                .release
                .addresses
                .iter()
                .any(|x| x.eq_ignore_ascii_case(a))
    }
}

impl BridgeRules {
    /// Parse a rule file (YAML or JSON); every error names the file and the field.
    pub fn parse(text: &str, file: &str) -> Result<BridgeRules, RulesError> {
        let e = |msg: String| RulesError {
            file: file.to_string(),
            msg,
        };
        let r: BridgeRules = serde_saphyr::from_str(text).map_err(|x| e(x.to_string()))?;
        let mut names = HashSet::new();
        for (i, b) in r.bridges.iter().enumerate() {
            let at = format!("bridges[{i}] ({:?})", b.name);
            if b.name.trim().is_empty() {
                return Err(e(format!("bridges[{i}].name is empty")));
            }
            if !names.insert(b.name.clone()) {
                return Err(e(format!("{at}: the name is used twice")));
            }
            for (side, s) in [("deposit", &b.deposit), ("release", &b.release)] {
                if s.addresses.is_empty() && s.id.is_none() {
                    return Err(e(format!(
                        "{at}.{side}: give its addresses, or an id to find it by"
                    )));
                }
                if s.chain.trim().is_empty() {
                    return Err(e(format!("{at}.{side}.chain is empty")));
                }
                if let Some(id) = &s.id {
                    let rest = id
                        .strip_prefix("log:")
                        .or_else(|| id.strip_prefix("op_return:"));
                    if rest.is_none_or(str::is_empty) {
                        return Err(e(format!(
                            "{at}.{side}.id {id:?}: write log:<event> or op_return:<prefix>"
                        )));
                    }
                }
            }
            for (f, v) in [("rate_out", &b.rate_out), ("rate_in", &b.rate_in)] {
                match v.parse::<U256>() {
                    Ok(x) if !x.is_zero() => {}
                    _ => {
                        return Err(e(format!(
                            "{at}.{f} {v:?}: a positive integer of base units (as a string)"
                        )))
                    }
                }
            }
            if b.tolerance_bps > 10_000 {
                return Err(e(format!(
                    "{at}.tolerance_bps {} is over 10000 (100%)",
                    b.tolerance_bps
                )));
            }
            if b.window_secs == 0 {
                return Err(e(format!("{at}.window_secs must be positive")));
            }
        }
        Ok(r)
    }

    pub fn load(path: &Path) -> Result<BridgeRules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|x| RulesError {
            file: path.display().to_string(),
            msg: x.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// Join a bridge's deposits to its releases: by id where both carry one, else by amount and
/// time. Deposits are taken in time order; each release is used once.
pub fn join_bridge(rule: &BridgeRule, deposits: &[Deposit], releases: &[Release]) -> Joined {
    let mut out = Joined::default();
    let mut used: HashSet<usize> = HashSet::new();
    let by_id: BTreeMap<&str, Vec<usize>> =
        releases
            .iter()
            .enumerate()
            .fold(BTreeMap::new(), |mut m, (i, r)| {
                if let Some(id) = &r.id {
                    m.entry(id.as_str()).or_default().push(i);
                }
                m
            });
    let mut order: Vec<usize> = (0..deposits.len()).collect();
    order.sort_by_key(|&i| (deposits[i].time, i));
    let (num, den) = rule.rate();
    for di in order {
        let d = &deposits[di];
        if let Some(id) = &d.id {
            match by_id.get(id.as_str()).map(|v| v.as_slice()) {
                Some([ri]) if !used.contains(ri) => {
                    used.insert(*ri);
                    out.joins.push(Join {
                        deposit: di,
                        release: *ri,
                        via: rule.name.clone(),
                        matched: Matched::BridgeId,
                        confidence_ppm: 1_000_000,
                    });
                    continue;
                }
                Some([_, _, ..]) => {
                    out.skipped.push(SkippedHop {
                        chain: d.chain.clone(),
                        tx: d.tx.clone(),
                        reason: format!("bridge {}: id {id} is on several releases", rule.name),
                    });
                    continue;
                }
                // No release carries it (the release side has no ids, or it is not seen
                // yet): fall through to amount and time.
                _ => {}
            }
        }
        // expected = amount · num / den, exact to the unit (floor).
        let expected: U256 = (U512::from(d.amount) * U512::from(num) / U512::from(den)).to();
        let tol: U256 =
            (U512::from(expected) * U512::from(rule.tolerance_bps) / U512::from(10_000u32)).to();
        let mut cands: Vec<(U256, u64, usize)> = Vec::new();
        for (ri, r) in releases.iter().enumerate() {
            if used.contains(&ri) || r.time < d.time || r.time > d.time + rule.window_secs {
                continue;
            }
            // A release that carries an id belongs to the deposit with that id.
            if r.id.is_some() && d.id.is_some() {
                continue;
            }
            let paid = r.paid();
            let err = if paid > expected {
                paid - expected
            } else {
                expected - paid
            };
            if err <= tol {
                cands.push((err, r.time, ri));
            }
        }
        if cands.is_empty() {
            out.skipped.push(SkippedHop {
                chain: d.chain.clone(),
                tx: d.tx.clone(),
                reason: format!(
                    "bridge {}: no release of {expected} ± {tol} within {} s",
                    rule.name, rule.window_secs
                ),
            });
            continue;
        }
        cands.sort();
        let (err, _, ri) = cands[0];
        used.insert(ri);
        out.joins.push(Join {
            deposit: di,
            release: ri,
            via: rule.name.clone(),
            matched: Matched::AmountTime,
            confidence_ppm: amount_confidence(err, tol, cands.len()),
        });
    }
    out
}

/// `(1 − err / (2·tol)) / n` in parts per million, exactly floored.
fn amount_confidence(err: U256, tol: U256, n: usize) -> u32 {
    let m = U512::from(1_000_000u32);
    let base = if tol.is_zero() {
        m
    } else {
        let two_tol = U512::from(tol) * U512::from(2u8);
        m * (two_tol - U512::from(err)) / two_tol
    };
    let v: u64 = (base / U512::from(n as u64)).to();
    v as u32
}

/// Taint carried over a crossing: the deposit's `amount_in` held these tainted parts (the
/// rest clean); the release paid `amount_out` in its own asset. Each part becomes its share
/// of `amount_out` by largest remainder over (tainted parts…, clean rest), so tainted out +
/// clean out = `amount_out` exactly and no unit is made or lost (methods.md §1.7, the swap
/// rule, at the crossing's realised rate). Parts larger than `amount_in` in sum are capped
/// at it (the deposit is all tainted).
pub fn convert_taint(
    tainted: &[(Label, U256)],
    amount_in: U256,
    amount_out: U256,
) -> Vec<(Label, U256)> {
    let sum = tainted.iter().fold(U256::ZERO, |a, t| a + t.1);
    let mut w: Vec<U256> = tainted.iter().map(|t| t.1).collect();
    w.push(amount_in.saturating_sub(sum));
    let shares = largest_remainder(amount_out, &w);
    tainted
        .iter()
        .zip(shares)
        .map(|(t, s)| (t.0, s))
        .filter(|t| !t.1.is_zero())
        .collect()
}

/// Spread converted taint over a release's payouts in proportion to what each was paid
/// (largest remainder per label), capped per payout at its amount.
pub fn spread_over_payouts(taint: &[(Label, U256)], payouts: &[Payout]) -> Vec<Vec<(Label, U256)>> {
    let w: Vec<U256> = payouts.iter().map(|p| p.amount).collect();
    let mut out = vec![Vec::new(); payouts.len()];
    for &(l, a) in taint {
        for (i, s) in largest_remainder(a, &w).into_iter().enumerate() {
            if !s.is_zero() {
                out[i].push((l, s));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(x: u64) -> U256 {
        U256::from(x)
    }

    #[test]
    fn conversion_is_exact_and_conserving() {
        // 3 ETH in, 2 of them tainted by case 0 and 0.5 by case 1 (0.5 clean); 15,000,001
        // sats out. Exact shares: 10,000,000.67 / 2,500,000.17 / 2,500,000.17 →
        // floors 10,000,000 + 2,500,000 + 2,500,000 = 15,000,000; the one residue unit goes
        // to the largest remainder (case 0's 0.67).
        let e = U256::from(10u64).pow(U256::from(18u8));
        let out = convert_taint(&[(0, u(2) * e), (1, e / u(2))], u(3) * e, u(15_000_001));
        assert_eq!(out, vec![(0, u(10_000_001)), (1, u(2_500_000))]);
    }

    #[test]
    fn spread_follows_payout_amounts() {
        let p = |a: &str, v: u64, i: u64| Payout {
            address: a.into(),
            amount: u(v),
            index: i,
        };
        // 7 tainted over payouts 1 / 2: exact 2.33 / 4.67 → 2 / 5.
        let s = spread_over_payouts(&[(0, u(7))], &[p("a", 100, 0), p("b", 200, 2)]);
        assert_eq!(s, vec![vec![(0, u(2))], vec![(0, u(5))]]);
    }
}

/// Event topics the crossings are read from on an EVM chain.
pub mod topics {
    use alloy_primitives::{keccak256, B256};
    /// THORChain router `Deposit(address indexed to, address indexed asset, uint256 amount,
    /// string memo)`: an inbound swap with its memo.
    pub fn thorchain_deposit() -> B256 {
        keccak256("Deposit(address,address,uint256,string)")
    }
    /// The simulator's generic bridge: `BridgeDeposit(uint64 indexed id, address indexed
    /// sender, uint256 amount, string recipient)`.
    pub fn bridge_deposit() -> B256 {
        keccak256("BridgeDeposit(uint64,address,uint256,string)")
    }
    /// THORChain router `TransferOut(address indexed vault, address indexed to, address
    /// asset, uint256 amount, string memo)`: an outbound payment with its `OUT:` memo.
    pub fn thorchain_transfer_out() -> B256 {
        keccak256("TransferOut(address,address,address,uint256,string)")
    }
}

/// One THORChain router `TransferOut` of a transaction's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOut {
    pub vault: cointrail_evm::Address,
    pub to: cointrail_evm::Address,
    /// The zero address for the native coin.
    pub asset: cointrail_evm::Address,
    pub amount: U256,
    pub memo: String,
}

/// The router `TransferOut` events of a transaction's logs (malformed ones are left out:
/// they join nothing).
pub fn transfer_outs_from_logs(logs: &[cointrail_evm::etl::Log]) -> Vec<TransferOut> {
    let mut v = Vec::new();
    for l in logs {
        if l.topics.first() != Some(&topics::thorchain_transfer_out()) || l.topics.len() < 3 {
            continue;
        }
        let data =
            alloy_primitives::hex::decode(l.data.trim_start_matches("0x")).unwrap_or_default();
        let (Some(a), Some(x)) = (data.get(12..32), data.get(32..64)) else {
            continue;
        };
        let Some(memo) = abi_string_at(&data, 2) else {
            continue;
        };
        let word_addr = |b: &[u8]| cointrail_evm::Address::from_slice(&b[12..32]);
        v.push(TransferOut {
            vault: word_addr(&l.topics[1].0),
            to: word_addr(&l.topics[2].0),
            asset: cointrail_evm::Address::from_slice(a),
            amount: U256::from_be_slice(x),
            memo,
        });
    }
    v
}

/// Whether an OP_RETURN text is meant as a THORChain swap memo (`=:`, `SWAP:`, `s:`, any
/// case): such a memo on a deposit to a vault is a crossing, and one that does not parse
/// is a skipped hop with its reason, never ignored silently.
pub fn looks_like_swap_memo(text: &str) -> bool {
    let t = text.trim_start();
    let head = t.split(':').next().unwrap_or("");
    t.contains(':')
        && ["=", "swap", "s"]
            .iter()
            .any(|p| head.eq_ignore_ascii_case(p))
}

/// The memo of a THORChain router `Deposit` event and the id of a `BridgeDeposit` in a
/// transaction's logs, when the ledger keeps logs (none: the join goes on without the
/// memo check / by amount and time).
pub fn memo_and_id_from_logs(logs: &[cointrail_evm::etl::Log]) -> (Option<String>, Option<String>) {
    let (mut memo, mut id) = (None, None);
    for l in logs {
        let Some(t0) = l.topics.first() else { continue };
        if *t0 == topics::thorchain_deposit() {
            let data =
                alloy_primitives::hex::decode(l.data.trim_start_matches("0x")).unwrap_or_default();
            memo = abi_string_at(&data, 1);
        } else if *t0 == topics::bridge_deposit() {
            if let Some(t1) = l.topics.get(1) {
                id = Some(U256::from_be_bytes(t1.0).to_string());
            }
        }
    }
    (memo, id)
}

/// The ABI string whose offset is the `word`-th 32-byte word of `data`.
fn abi_string_at(data: &[u8], word: usize) -> Option<String> {
    let w = |i: usize| -> Option<usize> {
        let b = data.get(i..i + 32)?;
        let v = U256::from_be_slice(b);
        (v < U256::from(1u64 << 32)).then(|| v.to::<usize>())
    };
    let off = w(word * 32)?;
    let len = w(off)?;
    let bytes = data.get(off + 32..off + 32 + len)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The text an OP_RETURN script pushes (one push, as memos are written), if it is UTF-8.
pub fn op_return_text(script: &[u8]) -> Option<String> {
    let (&op, rest) = script.split_first()?;
    if op != 0x6a {
        return None;
    }
    let (&p, rest) = rest.split_first()?;
    let data = match p {
        1..=75 => rest.get(..p as usize)?,
        0x4c => {
            let (&n, rest) = rest.split_first()?;
            rest.get(..n as usize)?
        }
        _ => return None,
    };
    String::from_utf8(data.to_vec()).ok()
}
