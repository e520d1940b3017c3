//! The exposure walk on an account chain (Ethereum and any EVM chain): the same breakdown
//! as the UTXO walk in `exposure` (ownership / direct / indirect, received / sent, per
//! category), per asset (the native coin and each token), judged by the same rules.
//!
//! An account has no outputs to follow, so amounts are split over an account's transfers
//! of the same asset instead, exactly (256-bit integers, largest remainder):
//! - backward, what an unattributed account X paid on at transfer `m` came from X's earlier
//!   receipts, in proportion to their amounts; whatever exceeds them came from before the
//!   indexed blocks (`outside_index`);
//! - forward, what an unattributed account Y received at transfer `m` left in Y's later
//!   sends, in proportion to their amounts; what they do not cover is still held there.
//!
//! The walk stops at any attributed account (exchanges, DEX and bridge contracts, which
//! pool everyone's funds, included) and at `max_hops`. Two bounds keep an answer's cost
//! small whatever the chain (an account's history, unlike an output, has no size limit):
//! - a branch carrying less than `min_share` (1% by default, [`MIN_SHARE_PPM`]) of the
//!   subject's total of its asset in its direction is not walked on (`below_min_share`):
//!   at most 1/`min_share` branches per hop are walked, and what is cut is reported;
//! - `max_steps` counts the list entries the walk looks at, per direction (backward an
//!   account's whole received list, forward its sends after the transfer, every asset:
//!   lengths known from the index without reading). A list longer than what is left of the
//!   bound (a hub: a pool, an exchange, a bot) is not read: its branch is reported in
//!   `beyond_limit` and the rest of the walk goes on;
//! - a branch reads at most `max_branch_reads` (32 by default, [`MAX_BRANCH_READS`]) of its
//!   counterparty's list, the newest; the older rest of the list is one more part of the
//!   split, its amount read from the running totals, not walked on
//!   (`beyond_branch_reads`). So a branch costs a bounded number of reads however long the
//!   counterparty's history, and a list counts at most the cap against `max_steps`.
//!
//! Labels are judged at the time of each transfer, as on Bitcoin.

use crate::exposure::{label_of, usd_parameters, ExposureParams, ExposureType};
use crate::rules::{FiredRule, Level, NotJudged, RuleRow, RuleSet};
use crate::usd::{convert, day_of, to_f64, ByDay, UsdFigure, UsdPrices, UsdRate};
use crate::Attributor;
use cointrail_evm::{U256, U512};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// An account's dense id (the index's address id).
pub type AcctId = u32;

/// The default `min_share`, in parts per million of the subject's total of an asset in one
/// direction: branches carrying less are not walked on (10,000 = 1%).
pub const MIN_SHARE_PPM: u64 = 10_000;

/// The default `max_branch_reads`: how many transfers of a counterparty's list a branch
/// reads (the newest ones); the rest of the list is one lump whose amount the running
/// totals give (`beyond_branch_reads`).
pub const MAX_BRANCH_READS: usize = 32;

/// How a walk reads and where it stops beyond `ExposureParams`.
#[derive(Clone, Copy, Debug)]
pub struct WalkOptions {
    /// Read whole lists entry by entry, as the walk did before views could count and seek
    /// (the tests' reference: both must answer the same).
    pub scan: bool,
    /// Branches carrying less than this many parts per million of the subject's total of
    /// their asset in their direction are not walked on (0: every branch is).
    pub min_share_ppm: u64,
    /// A branch reads at most this many transfers of its counterparty's list, the newest
    /// (the subject's own lists are read whole); the older rest is split as one lump whose
    /// amount the view sums, not walked on (`beyond_branch_reads`). 0: no cap.
    pub max_branch_reads: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            scan: false,
            min_share_ppm: MIN_SHARE_PPM,
            max_branch_reads: MAX_BRANCH_READS,
        }
    }
}

/// What a transfer is, as far as exposure goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    /// Value passing from one account to another (a transaction's value, an internal call,
    /// a token transfer, a creation's endowment, a self-destruct's refund).
    Value,
    /// Gas: the priority fee and the burnt base fee.
    Gas,
    /// New coins: block rewards, withdrawals, tokens minted (from the zero address).
    NewCoins,
}

/// One transfer, as the walk reads it.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub id: u64,
    pub from: AcctId,
    pub to: AcctId,
    /// 0 is the native coin; tokens are numbered by the view.
    pub asset: u32,
    pub amount: U256,
    /// Unix time of its block.
    pub time: u64,
    pub kind: TransferKind,
    /// Its transaction, as the view names it in paths (none for rewards, withdrawals).
    pub tx: Option<u64>,
}

/// How an asset is shown and priced.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AssetInfo {
    /// `ETH`, a token's symbol, or its contract when the registry does not know it.
    pub asset: String,
    /// The token contract (EIP-55); null for the native coin.
    pub token: Option<String>,
    pub symbol: Option<String>,
    pub decimals: Option<u8>,
}

/// The chain as the account walk reads it. Transfer ids grow in chain order.
pub trait AccountView {
    /// Visit the transfers `a` received, newest first, until `f` says stop.
    fn each_received(&self, a: AcctId, f: &mut dyn FnMut(u64) -> bool);
    /// Visit the transfers `a` sent, newest first, until `f` says stop.
    fn each_sent(&self, a: AcctId, f: &mut dyn FnMut(u64) -> bool);
    fn transfer(&self, id: u64) -> Transfer;
    /// As [`AccountView::transfer`] with `time` left 0, for views where the time costs a
    /// read of its own: the walk asks [`AccountView::time`] only of transfers whose
    /// counterparty is labelled.
    fn transfer_untimed(&self, id: u64) -> Transfer {
        self.transfer(id)
    }
    /// Unix time of transfer `id`'s block.
    fn time(&self, id: u64) -> u64 {
        self.transfer(id).time
    }
    /// A hint that transfer `id` will be read soon (a view on files may ask the CPU to
    /// start loading its records); no effect on any answer. The default does nothing.
    fn prefetch(&self, _id: u64) {}
    /// A hint that the walk will soon read these lists, `(sent, a, asset, via)`: with
    /// `sent`, `a`'s sends of `asset` after `via` ([`AccountView::each_sent_of_after`]),
    /// else `a`'s receipts of `asset` before `via` ([`AccountView::each_received_of_before`]),
    /// about `depth` entries of each. A view on files may load them side by side so their
    /// cache misses overlap; no effect on any answer. The default does nothing.
    fn warm(&self, _lists: &[(bool, AcctId, u32, u64)], _depth: usize) {}
    /// Every transfer `a` received into `ins` and sent into `outs`, newest first (what
    /// [`AccountView::each_received`] and [`AccountView::each_sent`] visit). A view on files
    /// may read its lists side by side; the default reads one after the other.
    fn lists(&self, a: AcctId, ins: &mut Vec<u64>, outs: &mut Vec<u64>) {
        self.each_received(a, &mut |id| {
            ins.push(id);
            true
        });
        self.each_sent(a, &mut |id| {
            outs.push(id);
            true
        });
    }
    /// A transaction's hash as shown in paths.
    fn tx_name(&self, tx: u64) -> String;
    fn asset_info(&self, asset: u32) -> AssetInfo;
    fn render(&self, a: AcctId) -> String;

    // What the walk needs to know without reading whole lists. The defaults read the
    // lists (any view answers correctly); the EVM index answers them from its running
    // totals and per-asset lists in a few reads, whatever the size of the address.

    /// How many transfers `a` received in all (the length of the list `each_received`
    /// visits).
    fn received_len(&self, a: AcctId) -> u64 {
        let mut n = 0;
        self.each_received(a, &mut |_| {
            n += 1;
            true
        });
        n
    }
    /// How many transfers `a` sent after transfer `after` (ids above it).
    fn sent_len_after(&self, a: AcctId, after: u64) -> u64 {
        let mut n = 0;
        self.each_sent(a, &mut |id| {
            if id <= after {
                return false;
            }
            n += 1;
            true
        });
        n
    }
    /// Visit the transfers of `asset` that `a` received before transfer `before`, newest
    /// first, until `f` says stop.
    fn each_received_of_before(
        &self,
        a: AcctId,
        asset: u32,
        before: u64,
        f: &mut dyn FnMut(u64) -> bool,
    ) {
        self.each_received(a, &mut |id| {
            id >= before || self.transfer(id).asset != asset || f(id)
        })
    }
    /// The sum of the amounts of `asset` that `a` received in transfers older than `r` (ids
    /// below it; transfers to itself included), `r` being one of them: a branch's unread
    /// rest. The default reads the list; the EVM index reads one running total.
    fn received_of_sum_below(&self, a: AcctId, asset: u32, r: u64) -> U256 {
        let mut sum = U256::ZERO;
        self.each_received(a, &mut |id| {
            if id < r {
                let t = self.transfer_untimed(id);
                if t.asset == asset {
                    sum = sum.saturating_add(t.amount);
                }
            }
            true
        });
        sum
    }
    /// The sum of the amounts of `asset` that `a` sent in transfers with ids between
    /// `after` and `s` (both excluded; transfers to itself included), `s` being one of
    /// them: a branch's unread rest. The default reads the list; the EVM index reads the
    /// running totals.
    fn sent_of_sum_between(&self, a: AcctId, asset: u32, after: u64, s: u64) -> U256 {
        let mut sum = U256::ZERO;
        self.each_sent(a, &mut |id| {
            if id > after && id < s {
                let t = self.transfer_untimed(id);
                if t.asset == asset {
                    sum = sum.saturating_add(t.amount);
                }
            }
            id > after
        });
        sum
    }
    /// Visit the transfers of `asset` that `a` sent after transfer `after`, newest first,
    /// until `f` says stop.
    fn each_sent_of_after(
        &self,
        a: AcctId,
        asset: u32,
        after: u64,
        f: &mut dyn FnMut(u64) -> bool,
    ) {
        self.each_sent(a, &mut |id| {
            id > after && (self.transfer(id).asset != asset || f(id))
        })
    }
}

/// One exposure row: a category reached in one direction, by one kind of exposure, in one
/// asset.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AccountExposureRow {
    pub category: String,
    pub level: Level,
    #[serde(rename = "type")]
    pub exposure_type: ExposureType,
    /// `received` (origins of funds) or `sent` (destinations).
    pub direction: String,
    pub asset: String,
    pub token: Option<String>,
    pub symbol: Option<String>,
    pub decimals: Option<u8>,
    /// Base units (wei or the token's), exact.
    pub amount: String,
    /// USD at the rate of the day the subject's own transfer moved each part (price
    /// table); null without a rate.
    pub usd: Option<f64>,
    pub usd_rates: Vec<UsdRate>,
    /// Base units of this row with no rate (left out of `usd`).
    pub usd_unpriced: String,
    pub usd_note: Option<String>,
    /// Share of the direction's total of this asset.
    pub share: f64,
    pub min_hops: u32,
    /// Names of the labelled parties behind the row (at most 5).
    pub entities: Vec<String>,
    /// The label had been withdrawn (a delisting) when these funds moved.
    pub delisted: bool,
    /// Transactions from the subject to the party (subject side first), for one instance.
    pub path: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    amount_int: U256,
    #[serde(skip)]
    #[schema(ignore)]
    unpriced_int: U256,
}

impl RuleRow for AccountExposureRow {
    fn category(&self) -> &str {
        &self.category
    }
    fn level(&self) -> Level {
        self.level
    }
    fn exposure_type(&self) -> ExposureType {
        self.exposure_type
    }
    fn direction(&self) -> &str {
        &self.direction
    }
    fn delisted(&self) -> bool {
        self.delisted
    }
    fn asset(&self) -> &str {
        &self.asset
    }
    fn amount(&self) -> U256 {
        self.amount_int
    }
    fn share(&self) -> f64 {
        self.share
    }
    fn usd(&self) -> UsdFigure {
        UsdFigure {
            usd: self.usd,
            rates: self.usd_rates.clone(),
            unpriced: self.unpriced_int,
            why_unpriced: self.usd_note.clone(),
        }
    }
}

/// What happened to one asset's funds in one direction, in base units (decimal strings).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AssetFlow {
    #[serde(flatten)]
    pub asset: AssetInfo,
    /// What others paid the subject (received) or the subject paid others, gas included
    /// (sent). Transfers to itself are left out.
    pub total: String,
    /// Reached no labelled party within the hop limit.
    pub unattributed: String,
    /// Came from before the indexed blocks (more was paid on than had arrived).
    pub outside_index: String,
    /// Block rewards, withdrawals, minted tokens.
    pub new_coins: String,
    /// Gas paid on the way (priority fees and burnt base fees).
    pub fee: String,
    /// Still held by an unattributed account along the way (sent direction).
    pub held: String,
    /// Cut off by the step bound.
    pub beyond_limit: String,
    /// Not walked on: unattributed branches carrying less than `min_share` of this
    /// direction's total of the asset (see `parameters.min_share`).
    pub below_min_share: String,
    /// Not walked on: the share of the older transfers of a counterparty's list beyond the
    /// `max_branch_reads` newest that a branch reads (see `parameters.max_branch_reads`).
    pub beyond_branch_reads: String,
}

#[derive(Clone, Debug, Default)]
struct FlowAcc {
    total: U256,
    unattributed: U256,
    outside_index: U256,
    new_coins: U256,
    fee: U256,
    held: U256,
    beyond_limit: U256,
    below_min_share: U256,
    beyond_branch_reads: U256,
    /// The subject's own transfers by day, for the ownership rows' USD.
    days: ByDay,
}

fn add(x: &mut U256, v: U256) {
    *x = x.saturating_add(v);
}

/// An EVM screening: the same breakdown as a Bitcoin one, per asset.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AccountScreening {
    pub chain: String,
    /// What was screened: `{kind: "address", address, movements_in, movements_out}`.
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    pub risk: Level,
    pub fired_rules: Vec<FiredRule>,
    /// Rules whose USD threshold could not be judged for want of a rate.
    pub rules_not_judged: Vec<NotJudged>,
    pub exposure: Vec<AccountExposureRow>,
    /// Per asset.
    pub received: Vec<AssetFlow>,
    pub sent: Vec<AssetFlow>,
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// Filled by the caller: index tip, labels.
    #[schema(value_type = Object)]
    pub provenance: serde_json::Value,
}

/// Split `w` over parts in proportion to their weights, exactly (largest remainder, ties to
/// the lower index), in 256-bit integers (products in 512 bits, so nothing overflows).
pub fn split_u256(w: U256, parts: &[U256]) -> Vec<U256> {
    let mut out = Vec::with_capacity(parts.len());
    split_u256_into(w, parts, &mut out);
    out
}

/// [`split_u256`] into `out` (cleared first). When `w` and the parts' total are below
/// 2^128 (every native or token amount but the most extreme) the arithmetic is on `u128`
/// halves: a 128-by-128-bit product and a 256-by-128-bit division with a 128-bit quotient
/// (`w * p / total <= w`), or plain `u128` when the product fits; the largest remainders
/// are selected, not sorted. Otherwise 512-bit products.
pub fn split_u256_into(w: U256, parts: &[U256], out: &mut Vec<U256>) {
    out.clear();
    let (Ok(w128), Some(total)) = (u128::try_from(w), total_u128(parts)) else {
        out.extend(split_u256_wide(w, parts));
        return;
    };
    if total == 0 {
        out.resize(parts.len(), U256::ZERO);
        return;
    }
    // Remainders with their part's index; on the stack for the usual few dozen parts.
    let mut stack = [(0u128, 0u32); 48];
    let mut heap = Vec::new();
    let rems: &mut [(u128, u32)] = if parts.len() <= stack.len() {
        &mut stack[..parts.len()]
    } else {
        heap.resize(parts.len(), (0u128, 0u32));
        &mut heap
    };
    let mut given = 0u128;
    for (i, p) in parts.iter().enumerate() {
        // Each part is below the total, so it fits 128 bits.
        let p = p.as_limbs()[0] as u128 | ((p.as_limbs()[1] as u128) << 64);
        let (q, r) = mul_div_u128(w128, p, total);
        given += q;
        out.push(U256::from(q));
        rems[i] = (r, i as u32);
    }
    // Fewer than parts.len() units are left over.
    let left = (w128 - given) as usize;
    if left == 0 {
        return;
    }
    if total < 1 << 96 {
        // Remainders are below 2^96: remainder and index packed in one u128 key (larger
        // remainder first, then lower index), selected with single comparisons.
        let mut keys = [0u128; 48];
        let mut keys_heap = Vec::new();
        let keys: &mut [u128] = if rems.len() <= keys.len() {
            &mut keys[..rems.len()]
        } else {
            keys_heap.resize(rems.len(), 0);
            &mut keys_heap
        };
        for (k, (r, i)) in keys.iter_mut().zip(rems.iter()) {
            *k = (r << 32) | (u32::MAX - i) as u128;
        }
        if left < keys.len() {
            keys.select_nth_unstable_by(left - 1, |a, b| b.cmp(a));
        }
        for k in keys.iter().take(left) {
            out[(u32::MAX - *k as u32) as usize] += U256::from(1u8);
        }
        return;
    }
    let order = |a: &(u128, u32), b: &(u128, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    if left < rems.len() {
        rems.select_nth_unstable_by(left - 1, order);
    }
    for r in rems.iter().take(left) {
        out[r.1 as usize] += U256::from(1u8);
    }
}

/// The sum of `parts` when it is below 2^128.
fn total_u128(parts: &[U256]) -> Option<u128> {
    let mut total = 0u128;
    for p in parts {
        total = total.checked_add(u128::try_from(*p).ok()?)?;
    }
    Some(total)
}

/// `(a * b / d, a * b % d)` exactly, for `a * b / d` below 2^128 (`b <= d` is enough).
#[inline]
fn mul_div_u128(a: u128, b: u128, d: u128) -> (u128, u128) {
    let (hi, lo) = mul_u128(a, b);
    if hi == 0 {
        // One division: the remainder from the quotient.
        let q = lo / d;
        (q, lo - q * d)
    } else {
        div_256_by_128(hi, lo, d)
    }
}

/// The full product of two `u128`, as (high, low) halves.
#[inline]
fn mul_u128(a: u128, b: u128) -> (u128, u128) {
    const M: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & M);
    let (b1, b0) = (b >> 64, b & M);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    // Below 3 * 2^64: no overflow.
    let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
    let lo = (p00 & M) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// `(u1 * 2^128 + u0) / v` and its remainder, for `u1 < v` (so the quotient fits 128 bits):
/// long division in 64-bit digits with a normalised divisor (Knuth's algorithm D, two
/// quotient digits, each estimated from the divisor's top digit and corrected at most twice).
fn div_256_by_128(u1: u128, u0: u128, v: u128) -> (u128, u128) {
    debug_assert!(u1 < v);
    const B: u128 = 1 << 64;
    const M: u128 = u64::MAX as u128;
    let s = v.leading_zeros();
    let v = v << s;
    let (vn1, vn0) = (v >> 64, v & M);
    let un32 = if s == 0 {
        u1
    } else {
        (u1 << s) | (u0 >> (128 - s))
    };
    let un10 = u0 << s;
    let (un1, un0) = (un10 >> 64, un10 & M);
    // One quotient digit of (top * 2^64 + next) / v, top < v: (digit, remainder).
    let digit = |top: u128, next: u128| {
        let mut q = top / vn1;
        let mut rhat = top - q * vn1;
        while q >= B || q * vn0 > (rhat << 64) + next {
            q -= 1;
            rhat += vn1;
            if rhat >= B {
                break;
            }
        }
        // The true remainder is below v < 2^128: wrapping arithmetic gives it exactly.
        let r = (top << 64)
            .wrapping_add(next)
            .wrapping_sub(q.wrapping_mul(v));
        (q, r)
    };
    let (q1, r1) = digit(un32, un1);
    let (q0, r0) = digit(r1, un0);
    ((q1 << 64) | q0, r0 >> s)
}

fn split_u256_wide(w: U256, parts: &[U256]) -> Vec<U256> {
    let total: U512 = parts.iter().fold(U512::ZERO, |a, p| a + U512::from(*p));
    if total.is_zero() {
        return vec![U256::ZERO; parts.len()];
    }
    let mut out = Vec::with_capacity(parts.len());
    let mut rems: Vec<(U512, usize)> = Vec::with_capacity(parts.len());
    let mut given = U256::ZERO;
    let wide = U512::from(w);
    for (i, p) in parts.iter().enumerate() {
        let exact = wide * U512::from(*p);
        let q = U256::from(exact / total);
        given += q;
        out.push(q);
        rems.push((exact % total, i));
    }
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // Fewer than parts.len() units are left over.
    let left = (w - given).to::<usize>();
    for r in rems.iter().take(left) {
        out[r.1] += U256::from(1u8);
    }
    out
}

/// A row's key: direction (`received`, `sent`), category, kind, delisted, asset.
type RowKey = (&'static str, String, ExposureType, bool, u32);

/// A counterparty's label as the walk uses it: category, delisted, names.
type Label = crate::FixedLabelParts;

/// Visits a list's relevant ids, newest first, while the callback says go on.
type Visit<'a> = dyn Fn(&mut dyn FnMut(u64) -> bool) + 'a;

/// The transactions from the subject to where a branch is, shared between branches (one
/// pointer per branch, not a copy of its path).
#[derive(Clone, Default)]
struct Trail(Option<std::rc::Rc<(u64, Trail)>>);

impl Trail {
    fn push(&self, t: u64) -> Trail {
        Trail(Some(std::rc::Rc::new((t, self.clone()))))
    }
    /// Subject side first.
    fn to_vec(&self) -> Vec<u64> {
        let mut v = Vec::new();
        let mut p = self;
        while let Some(n) = &p.0 {
            v.push(n.0);
            p = &n.1;
        }
        v.reverse();
        v
    }
}

struct Row {
    amount: U256,
    hops: u32,
    names: Vec<String>,
    path: Vec<u64>,
    days: ByDay,
}

/// A branch of the walk: `w` of `asset` at account `at`, which it reached (backward: left)
/// by transfer `via`, `h` hops from the subject.
struct Branch {
    at: AcctId,
    asset: u32,
    w: U256,
    h: u32,
    via: u64,
    path: Trail,
    day: u32,
}

/// Screens accounts: the chain, who is who, the rules, USD rates and the walk's bounds.
pub struct AccountScreener<'a> {
    pub view: &'a dyn AccountView,
    pub attr: &'a dyn Attributor,
    pub rules: &'a RuleSet,
    pub params: &'a ExposureParams,
    pub prices: &'a dyn UsdPrices,
}

struct Walk {
    /// Few (one per direction, category, kind and asset): found by a linear search, put in
    /// the order of their formatted keys by `finish`.
    rows: Vec<(RowKey, Row)>,
    /// Labels of the counterparties met whose labels do not depend on time (none has a
    /// `valid_to`): worked out once per screening.
    labels: HashMap<AcctId, Option<Arc<Label>>>,
    received: BTreeMap<u32, FlowAcc>,
    sent: BTreeMap<u32, FlowAcc>,
    steps: usize,
    /// Read whole lists entry by entry, as the walk did before the views could count
    /// (`AccountScreener::address_by_scanning`, the reference the tests compare with).
    scan: bool,
    min_share_ppm: u64,
    max_branch_reads: usize,
}

impl Walk {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        dir: &'static str,
        cat: &str,
        t: ExposureType,
        delisted: bool,
        asset: u32,
        amount: U256,
        hops: u32,
        names: &[String],
        path: &Trail,
        day: u32,
    ) {
        let k = match self.rows.iter().position(|(k, _)| {
            // The cheap fields first: most rows differ in asset, kind or direction.
            k.4 == asset && k.2 == t && k.3 == delisted && k.0 == dir && k.1 == cat
        }) {
            Some(k) => k,
            None => {
                self.rows.push((
                    (dir, cat.to_string(), t, delisted, asset),
                    Row {
                        amount: U256::ZERO,
                        hops: u32::MAX,
                        names: Vec::new(),
                        path: path.to_vec(),
                        days: ByDay::default(),
                    },
                ));
                self.rows.len() - 1
            }
        };
        let e = &mut self.rows[k].1;
        add(&mut e.amount, amount);
        e.hops = e.hops.min(hops);
        e.days.add(day, amount);
        for n in names {
            if e.names.len() >= 5 {
                break;
            }
            if !e.names.contains(n) {
                e.names.push(n.clone());
            }
        }
    }
}

fn flows(walk: &Walk, sent: bool) -> &BTreeMap<u32, FlowAcc> {
    if sent {
        &walk.sent
    } else {
        &walk.received
    }
}

fn flow(walk: &mut Walk, sent: bool, asset: u32) -> &mut FlowAcc {
    if sent {
        walk.sent.entry(asset).or_default()
    } else {
        walk.received.entry(asset).or_default()
    }
}

/// Whether a share is under `min_share` of the subject's total of its asset in the walk's
/// direction ([`AccountScreener::min_share_cut`]).
struct MinShareCut {
    /// (asset, total * min_share_ppm); an asset missing has a total of 0, and a
    /// `min_share` of 0 makes every cut 0: nothing is below it.
    by_asset: Vec<(u32, U256)>,
}

impl MinShareCut {
    fn below(&self, asset: u32, w: U256) -> bool {
        let cut = self
            .by_asset
            .iter()
            .find(|(a, _)| *a == asset)
            .map_or(U256::ZERO, |(_, c)| *c);
        // `w * 10^6` in u128 when it fits (every amount but the most extreme).
        match u128::try_from(w)
            .ok()
            .and_then(|w| w.checked_mul(1_000_000))
        {
            Some(x) => U256::from(x) < cut,
            None => w.saturating_mul(U256::from(1_000_000u64)) < cut,
        }
    }
}

fn kind(h: u32) -> ExposureType {
    if h <= 1 {
        ExposureType::Direct
    } else {
        ExposureType::Indirect
    }
}

impl AccountScreener<'_> {
    /// `a`'s label for funds moved at `time()` (asked only when `a`'s labels depend on
    /// time, a delisting), worked out once per screening otherwise.
    fn label(&self, walk: &mut Walk, a: AcctId, time: &dyn Fn() -> u64) -> Option<Arc<Label>> {
        // Most labelled counterparties (an exchange's many deposit addresses) have one
        // label that no rule or time changes: worked out when the labels were loaded.
        if let Some(l) = self.attr.fixed_label(a) {
            return Some(l);
        }
        if let Some(l) = walk.labels.get(&a) {
            return l.clone();
        }
        let mut timed = false;
        let mut label = None;
        self.attr.with_attributions(a, &mut |ls| {
            timed = ls.iter().any(|l| l.valid_to.is_some());
            label = label_of(ls, self.rules, if timed { time() } else { 0 }).map(Arc::new);
        });
        if !timed {
            walk.labels.insert(a, label.clone());
        }
        label
    }

    /// What reading a list of `n` entries costs against the step bound: every entry, or
    /// with a branch read cap at most the cap (the rest is summed from the running totals,
    /// not read).
    fn charge(walk: &Walk, n: usize) -> usize {
        match walk.max_branch_reads {
            0 => n,
            cap => n.min(cap),
        }
    }

    /// Read a branch's list into `out`: the transfers `keep` accepts, oldest first, at most
    /// `max_branch_reads` of them (the newest; 0: all). False when the list costs more than
    /// what is left of the step bound: then nothing is read or counted, the branch is cut
    /// and the rest of the walk goes on. The bound counts `n` steps, every transfer of the
    /// list the walk looks at (backward the whole received list, forward every later send),
    /// relevant or not, or the cap when that is smaller ([`Self::charge`]): so a hub (an
    /// exchange, a pool, the burn address) is judged from its count without being read, and
    /// `visit` need only produce the relevant ones (one asset, the right side of `via`),
    /// newest first.
    fn read(
        &self,
        walk: &mut Walk,
        n: u64,
        visit: &Visit,
        keep: &dyn Fn(&Transfer) -> bool,
        out: &mut Vec<Transfer>,
    ) -> bool {
        out.clear();
        if n == 0 {
            return true;
        }
        let n = Self::charge(walk, usize::try_from(n).unwrap_or(usize::MAX));
        if walk.steps.saturating_add(n) > self.params.max_steps {
            return false;
        }
        walk.steps += n;
        let cap = walk.max_branch_reads;
        visit(&mut |id| {
            let t = self.view.transfer_untimed(id);
            if keep(&t) {
                out.push(t);
            }
            cap == 0 || out.len() < cap
        });
        out.reverse();
        true
    }

    /// The walk's list reading as it was before the views could count: every entry read
    /// and counted, newest first, until `stop` (kept as the reference of
    /// `address_by_scanning`); the same bound as [`Self::read`], the cap applied after
    /// reading by [`Self::cap_scanned`].
    fn read_scanning(
        &self,
        walk: &mut Walk,
        sent: bool,
        a: AcctId,
        keep: &dyn Fn(&Transfer) -> bool,
        stop: &dyn Fn(u64) -> bool,
        out: &mut Vec<Transfer>,
    ) -> bool {
        out.clear();
        let mut k = 0usize;
        let mut f = |id: u64| {
            if stop(id) {
                return false;
            }
            k += 1;
            let t = self.view.transfer_untimed(id);
            if keep(&t) {
                out.push(t);
            }
            true
        };
        if sent {
            self.view.each_sent(a, &mut f);
        } else {
            self.view.each_received(a, &mut f);
        }
        let k = Self::charge(walk, k);
        if walk.steps.saturating_add(k) > self.params.max_steps {
            out.clear();
            return false;
        }
        walk.steps += k;
        out.reverse();
        true
    }

    /// The reference's cap (`address_by_scanning`): keep the `max_branch_reads` newest of
    /// `out` (oldest first) and sum, by reading the whole list, its older entries that the
    /// cap leaves out (`relevant` says which entries count: the asset and the side of
    /// `via`, transfers to itself included). None when nothing is left out for the cap.
    fn cap_scanned(
        &self,
        walk: &Walk,
        sent: bool,
        at: AcctId,
        relevant: &dyn Fn(&Transfer) -> bool,
        out: &mut Vec<Transfer>,
    ) -> Option<U256> {
        let cap = walk.max_branch_reads;
        if cap == 0 || out.len() < cap {
            return None;
        }
        out.drain(..out.len() - cap);
        let cut = out[0].id;
        let mut sum = U256::ZERO;
        let mut f = |id: u64| {
            if id < cut {
                let t = self.view.transfer_untimed(id);
                if relevant(&t) {
                    sum = sum.saturating_add(t.amount);
                }
            }
            true
        };
        if sent {
            self.view.each_sent(at, &mut f);
        } else {
            self.view.each_received(at, &mut f);
        }
        Some(sum)
    }

    /// `at`'s receipts of `asset` before `via` (what it paid on at `via` came from), the
    /// newest `max_branch_reads` of them (transfers to itself left out). None: cut by the
    /// step bound; Some(Some(rest)): the cap was reached, `rest` the amount of `at`'s older
    /// receipts of the asset (before the oldest one read; transfers to itself included),
    /// from the running totals.
    fn earlier_receipts(
        &self,
        walk: &mut Walk,
        at: AcctId,
        asset: u32,
        via: u64,
        out: &mut Vec<Transfer>,
    ) -> Option<Option<U256>> {
        if walk.scan {
            if !self.read_scanning(
                walk,
                false,
                at,
                &|t| t.asset == asset && t.from != at && t.id < via,
                &|_| false,
                out,
            ) {
                return None;
            }
            return Some(self.cap_scanned(
                walk,
                false,
                at,
                &|t| t.asset == asset && t.id < via,
                out,
            ));
        }
        let n = self.view.received_len(at);
        if !self.read(
            walk,
            n,
            &|f| self.view.each_received_of_before(at, asset, via, f),
            &|t| t.from != at,
            out,
        ) {
            return None;
        }
        let cap = walk.max_branch_reads;
        Some(
            (cap > 0 && out.len() == cap)
                .then(|| self.view.received_of_sum_below(at, asset, out[0].id)),
        )
    }

    /// `at`'s sends of `asset` after `via` (where what it received at `via` went), the
    /// newest `max_branch_reads` of them; as [`Self::earlier_receipts`], the rest being its
    /// sends of the asset between `via` and the oldest one read.
    fn later_sends(
        &self,
        walk: &mut Walk,
        at: AcctId,
        asset: u32,
        via: u64,
        out: &mut Vec<Transfer>,
    ) -> Option<Option<U256>> {
        if walk.scan {
            if !self.read_scanning(
                walk,
                true,
                at,
                &|t| t.asset == asset && t.to != at,
                &|id| id <= via,
                out,
            ) {
                return None;
            }
            return Some(self.cap_scanned(
                walk,
                true,
                at,
                &|t| t.asset == asset && t.id > via,
                out,
            ));
        }
        let n = self.view.sent_len_after(at, via);
        if !self.read(
            walk,
            n,
            &|f| self.view.each_sent_of_after(at, asset, via, f),
            &|t| t.to != at,
            out,
        ) {
            return None;
        }
        let cap = walk.max_branch_reads;
        Some(
            (cap > 0 && out.len() == cap)
                .then(|| self.view.sent_of_sum_between(at, asset, via, out[0].id)),
        )
    }

    /// The `min_share` cut of one direction, per asset: `w` is below it when `w * 10^6 <
    /// total * min_share_ppm` (the totals are complete once the first hop is read, so the
    /// right side is worked out once per walk, not at every share).
    fn min_share_cut(walk: &Walk, sent: bool) -> MinShareCut {
        MinShareCut {
            by_asset: flows(walk, sent)
                .iter()
                .map(|(&a, f)| (a, f.total.saturating_mul(U256::from(walk.min_share_ppm))))
                .collect(),
        }
    }

    /// Walk one direction's branches, hop by hop: backward (`sent` false) over each
    /// account's earlier receipts, forward over its later sends.
    fn walk_on(&self, mut queue: VecDeque<Branch>, walk: &mut Walk, sent: bool) {
        let dir = if sent { "sent" } else { "received" };
        // Reused from branch to branch.
        let mut read = Vec::new();
        let mut weights: Vec<U256> = Vec::new();
        let mut shares: Vec<U256> = Vec::new();
        // Branches are read in queue order; the lists of the next WARM ones are handed to
        // the view to load side by side (a cache warm-up: which branches are read, and
        // what they read, does not depend on it).
        const WARM: usize = 8;
        let depth = match walk.max_branch_reads {
            0 => MAX_BRANCH_READS,
            cap => cap,
        };
        let mut lists: Vec<(bool, AcctId, u32, u64)> = Vec::with_capacity(WARM);
        let cut = Self::min_share_cut(walk, sent);
        let mut unwarmed = 0usize;
        while let Some(b) = queue.pop_front() {
            if b.w.is_zero() {
                continue;
            }
            let (asset, at, via) = (b.asset, b.at, b.via);
            if cut.below(asset, b.w) {
                add(&mut flow(walk, sent, asset).below_min_share, b.w);
                continue;
            }
            // Counted over the branches read only, so that the branches cut in front of the
            // queue are looked at once, not at every warm-up.
            if unwarmed == 0 && !walk.scan {
                lists.clear();
                for x in std::iter::once(&b).chain(queue.iter()) {
                    if lists.len() == WARM {
                        break;
                    }
                    if !x.w.is_zero() && !cut.below(x.asset, x.w) {
                        lists.push((sent, x.at, x.asset, x.via));
                    }
                }
                self.view.warm(&lists, depth);
                unwarmed = WARM;
            }
            unwarmed = unwarmed.saturating_sub(1);
            let got = if sent {
                self.later_sends(walk, at, asset, via, &mut read)
            } else {
                self.earlier_receipts(walk, at, asset, via, &mut read)
            };
            let Some(lump) = got else {
                add(&mut flow(walk, sent, asset).beyond_limit, b.w);
                continue;
            };
            weights.clear();
            weights.extend(read.iter().map(|t| t.amount));
            // The older transfers beyond the cap: one part, its amount from the totals.
            weights.extend(lump);
            let covered = weights.iter().fold(U256::ZERO, |a, w| a.saturating_add(*w));
            weights.push(b.w.saturating_sub(covered));
            split_u256_into(b.w, &weights, &mut shares);
            if lump.is_some() {
                let l = shares[read.len()];
                add(&mut flow(walk, sent, asset).beyond_branch_reads, l);
            }
            // Backward: more was paid on than had arrived; forward: not paid on yet.
            let rest = shares[shares.len() - 1];
            let f = flow(walk, sent, asset);
            add(
                if sent {
                    &mut f.held
                } else {
                    &mut f.outside_index
                },
                rest,
            );
            // Summed over the branch and added to the direction's flow once.
            let (mut fee, mut new_coins, mut below, mut unattributed) =
                (U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO);
            for (t, share) in read.iter().zip(&shares) {
                if share.is_zero() {
                    continue;
                }
                match (sent, t.kind) {
                    (true, TransferKind::Gas) => {
                        add(&mut fee, *share);
                        continue;
                    }
                    (false, TransferKind::NewCoins) => {
                        add(&mut new_coins, *share);
                        continue;
                    }
                    _ => {}
                }
                let hop = b.h + 1;
                let other = if sent { t.to } else { t.from };
                // Most counterparties have no label: the time is read for the others only.
                let label = if !self.attr.is_labelled(other) {
                    None
                } else {
                    self.label(walk, other, &|| self.view.time(t.id))
                };
                if label.is_none() && hop < self.params.max_hops && cut.below(asset, *share) {
                    // What the branch would be cut for when taken from the queue.
                    add(&mut below, *share);
                    continue;
                }
                let path = || match t.tx {
                    Some(x) => b.path.push(x),
                    None => b.path.clone(),
                };
                match label {
                    Some(l) => walk.row(
                        dir,
                        &l.0,
                        kind(hop),
                        l.1,
                        asset,
                        *share,
                        hop,
                        &l.2,
                        &path(),
                        b.day,
                    ),
                    None if hop < self.params.max_hops => queue.push_back(Branch {
                        at: other,
                        asset,
                        w: *share,
                        h: hop,
                        via: t.id,
                        path: path(),
                        day: b.day,
                    }),
                    None => add(&mut unattributed, *share),
                }
            }
            let f = flow(walk, sent, asset);
            add(&mut f.fee, fee);
            add(&mut f.new_coins, new_coins);
            add(&mut f.below_min_share, below);
            add(&mut f.unattributed, unattributed);
        }
    }

    /// The subject's own transfers one way (`sent`, or received): each is counted in the
    /// subject's totals, labelled counterparties become direct rows, and unattributed ones
    /// the branches the walk goes on from.
    fn first_hop(
        &self,
        a: AcctId,
        ids: &[u64],
        sent: bool,
        walk: &mut Walk,
        last_time: &mut u64,
    ) -> VecDeque<Branch> {
        let mut branches = VecDeque::new();
        // Records asked for this many transfers ahead, so that their cache misses overlap.
        const AHEAD: usize = 8;
        for id in ids.iter().rev().take(AHEAD) {
            self.view.prefetch(*id);
        }
        for (k, id) in ids.iter().rev().enumerate() {
            if let Some(next) = (ids.len() > k + AHEAD).then(|| ids[ids.len() - 1 - k - AHEAD]) {
                self.view.prefetch(next);
            }
            let t = self.view.transfer(*id);
            *last_time = (*last_time).max(t.time);
            let other = if sent { t.to } else { t.from };
            if other == a {
                continue;
            }
            let day = day_of(t.time);
            let flows = if sent {
                &mut walk.sent
            } else {
                &mut walk.received
            };
            let f = flows.entry(t.asset).or_default();
            add(&mut f.total, t.amount);
            f.days.add(day, t.amount);
            // Gas paid and coins minted have no counterparty to walk on from.
            match (sent, t.kind) {
                (true, TransferKind::Gas) => {
                    add(&mut f.fee, t.amount);
                    continue;
                }
                (false, TransferKind::NewCoins) => {
                    add(&mut f.new_coins, t.amount);
                    continue;
                }
                _ => {}
            }
            let path = Trail::default();
            let path = match t.tx {
                Some(x) => path.push(x),
                None => path,
            };
            let label = if self.attr.is_labelled(other) {
                self.label(walk, other, &|| t.time)
            } else {
                None
            };
            match label {
                Some(l) => walk.row(
                    if sent { "sent" } else { "received" },
                    &l.0,
                    ExposureType::Direct,
                    l.1,
                    t.asset,
                    t.amount,
                    1,
                    &l.2,
                    &path,
                    day,
                ),
                None if 1 < self.params.max_hops => branches.push_back(Branch {
                    at: other,
                    asset: t.asset,
                    w: t.amount,
                    h: 1,
                    via: t.id,
                    path,
                    day,
                }),
                None => add(&mut flow(walk, sent, t.asset).unattributed, t.amount),
            }
        }
        branches
    }

    /// Screen account `a`: where what it received came from, and where what it sent went.
    pub fn address(&self, chain: &str, a: AcctId) -> AccountScreening {
        self.address_with(chain, a, WalkOptions::default())
    }

    /// As [`AccountScreener::address`], reading every list entry by entry as the walk did
    /// before views could count and seek (slow on hubs; the tests' reference: both must
    /// answer the same).
    pub fn address_by_scanning(&self, chain: &str, a: AcctId) -> AccountScreening {
        self.address_with(
            chain,
            a,
            WalkOptions {
                scan: true,
                ..WalkOptions::default()
            },
        )
    }

    /// Screen account `a` with explicit walk options.
    pub fn address_with(&self, chain: &str, a: AcctId, opts: WalkOptions) -> AccountScreening {
        let mut walk = Walk {
            rows: Vec::new(),
            labels: HashMap::new(),
            received: BTreeMap::new(),
            sent: BTreeMap::new(),
            steps: 0,
            scan: opts.scan,
            min_share_ppm: opts.min_share_ppm,
            max_branch_reads: opts.max_branch_reads,
        };
        let (mut ins, mut outs) = (Vec::new(), Vec::new());
        self.view.lists(a, &mut ins, &mut outs);
        let (n_in, n_out) = (ins.len(), outs.len());
        let mut last_time = 0u64;
        // The subject's own transfers are read whole (not against the step bound): they are
        // its totals.
        let back = self.first_hop(a, &ins, false, &mut walk, &mut last_time);
        self.walk_on(back, &mut walk, false);
        walk.steps = 0;
        let fwd = self.first_hop(a, &outs, true, &mut walk, &mut last_time);
        self.walk_on(fwd, &mut walk, true);
        let own = self.label(&mut walk, a, &|| last_time);
        self.finish(
            chain,
            serde_json::json!({"kind": "address", "address": self.view.render(a), "movements_in": n_in, "movements_out": n_out}),
            walk,
            own,
        )
    }

    fn finish(
        &self,
        chain: &str,
        subject: serde_json::Value,
        mut walk: Walk,
        own: Option<Arc<Label>>,
    ) -> AccountScreening {
        let mut infos: BTreeMap<u32, AssetInfo> = BTreeMap::new();
        let mut info = |asset: u32| {
            infos
                .entry(asset)
                .or_insert_with(|| self.view.asset_info(asset))
                .clone()
        };
        let mut cache = BTreeMap::new();
        let total_of = |dir: &str, asset: u32| {
            let m = if dir == "sent" {
                &walk.sent
            } else {
                &walk.received
            };
            m.get(&asset).map(|f| f.total).unwrap_or_default()
        };
        let mut rows = Vec::new();
        let mut push = |rows: &mut Vec<AccountExposureRow>,
                        info: AssetInfo,
                        dir: &str,
                        cat: String,
                        t: ExposureType,
                        delisted: bool,
                        amount: U256,
                        total: U256,
                        hops: u32,
                        names: Vec<String>,
                        path: Vec<String>,
                        days: &ByDay| {
            let f = convert(
                self.prices,
                info.symbol.as_deref(),
                info.decimals,
                days,
                &mut cache,
            );
            rows.push(AccountExposureRow {
                level: if delisted {
                    Level::None
                } else {
                    self.rules.level_of(&cat)
                },
                category: cat,
                exposure_type: t,
                direction: dir.into(),
                asset: info.asset,
                token: info.token,
                symbol: info.symbol,
                decimals: info.decimals,
                amount: amount.to_string(),
                usd: f.usd,
                usd_rates: f.rates,
                usd_unpriced: f.unpriced.to_string(),
                usd_note: f.why_unpriced,
                share: if total.is_zero() {
                    0.0
                } else {
                    to_f64(amount) / to_f64(total)
                },
                min_hops: hops,
                entities: names,
                delisted,
                path,
                amount_int: amount,
                unpriced_int: f.unpriced,
            });
        };
        if let Some(own) = own {
            let (cat, delisted, names) = &*own;
            for (dir, m) in [("received", &walk.received), ("sent", &walk.sent)] {
                for (&asset, f) in m {
                    if !f.total.is_zero() {
                        push(
                            &mut rows,
                            info(asset),
                            dir,
                            cat.clone(),
                            ExposureType::Ownership,
                            *delisted,
                            f.total,
                            f.total,
                            0,
                            names.clone(),
                            vec![],
                            &f.days,
                        );
                    }
                }
            }
        }
        // The order rows had when they were kept by "direction|category" strings (the sort
        // below is stable).
        walk.rows.sort_by(|a, b| a.0.cmp(&b.0));
        for ((dir, cat, t, delisted, asset), r) in &walk.rows {
            let dir: &str = dir;
            push(
                &mut rows,
                info(*asset),
                dir,
                cat.to_string(),
                *t,
                *delisted,
                r.amount,
                total_of(dir, *asset),
                r.hops,
                r.names.clone(),
                r.path.iter().map(|&x| self.view.tx_name(x)).collect(),
                &r.days,
            );
        }
        rows.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(
                    b.usd
                        .unwrap_or(0.0)
                        .partial_cmp(&a.usd.unwrap_or(0.0))
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
                .then(a.asset.cmp(&b.asset))
                .then(b.amount_int.cmp(&a.amount_int))
        });
        let by_name: BTreeMap<String, u32> = walk
            .received
            .keys()
            .chain(walk.sent.keys())
            .map(|&a| (info(a).asset, a))
            .collect();
        let v = self.rules.evaluate(&rows, &|dir: &str, asset: &str| {
            by_name
                .get(asset)
                .map(|&a| total_of(dir, a))
                .unwrap_or_default()
        });
        let flows = |m: &BTreeMap<u32, FlowAcc>, info: &mut dyn FnMut(u32) -> AssetInfo| {
            m.iter()
                .map(|(&a, f)| AssetFlow {
                    asset: info(a),
                    total: f.total.to_string(),
                    unattributed: f.unattributed.to_string(),
                    outside_index: f.outside_index.to_string(),
                    new_coins: f.new_coins.to_string(),
                    fee: f.fee.to_string(),
                    held: f.held.to_string(),
                    beyond_limit: f.beyond_limit.to_string(),
                    below_min_share: f.below_min_share.to_string(),
                    beyond_branch_reads: f.beyond_branch_reads.to_string(),
                })
                .collect::<Vec<_>>()
        };
        AccountScreening {
            chain: chain.to_string(),
            subject,
            risk: v.level,
            fired_rules: v.fired,
            rules_not_judged: v.not_judged,
            exposure: rows,
            received: flows(&walk.received, &mut info),
            sent: flows(&walk.sent, &mut info),
            parameters: serde_json::json!({
                "max_hops": self.params.max_hops,
                "max_steps": self.params.max_steps,
                "max_steps_counts": "list entries looked at, per direction (a list counts its length, or max_branch_reads when that is smaller); a list costing more than what is left is not read (its branch is beyond_limit) and the walk goes on",
                "min_share": walk.min_share_ppm as f64 / 1e6,
                "min_share_means": "a branch carrying less than this share of the subject's total of its asset in its direction is not walked on (below_min_share)",
                "max_branch_reads": walk.max_branch_reads,
                "max_branch_reads_means": "a branch reads at most this many of its counterparty's transfers (the newest of the list it splits over; the subject's own are all read); the older rest of that list is one part of the split, its amount from the running totals (transfers to itself included), not walked on (beyond_branch_reads); 0: no cap",
                "rule_set": self.rules.name,
                "split": "account haircut: backward over the counterparty's earlier receipts, forward over its later sends, of the same asset, in proportion to amount (256-bit, largest remainder)",
                "usd": usd_parameters(self.rules, self.prices),
            }),
            provenance: serde_json::Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_u256_is_exact_even_near_2_pow_256() {
        let u = |v: u64| U256::from(v);
        // 10 over 3 equal parts: 4, 3, 3 (the remainder to the lowest index).
        assert_eq!(
            split_u256(u(10), &[u(1), u(1), u(1)]),
            vec![u(4), u(3), u(3)]
        );
        assert_eq!(
            split_u256(u(8), &[u(10), u(30), u(0)]),
            vec![u(2), u(6), u(0)]
        );
        assert_eq!(split_u256(u(5), &[u(0), u(0)]), vec![u(0), u(0)]);
        // Products overflow 256 bits: still exact and conserving.
        let w = U256::MAX - u(7);
        let parts = [U256::MAX, U256::MAX / u(3), u(1)];
        let s = split_u256(w, &parts);
        let sum = s.iter().fold(U256::ZERO, |a, b| a + *b);
        assert_eq!(sum, w);
        assert!(s[0] > s[1] && s[1] > s[2]);
    }

    /// Transfers in chain order: (from, to, amount); every one ETH, one a second.
    struct Mem(Vec<(AcctId, AcctId, u64)>);
    impl AccountView for Mem {
        fn each_received(&self, a: AcctId, f: &mut dyn FnMut(u64) -> bool) {
            for (i, t) in self.0.iter().enumerate().rev() {
                if t.1 == a && !f(i as u64) {
                    return;
                }
            }
        }
        fn each_sent(&self, a: AcctId, f: &mut dyn FnMut(u64) -> bool) {
            for (i, t) in self.0.iter().enumerate().rev() {
                if t.0 == a && !f(i as u64) {
                    return;
                }
            }
        }
        fn transfer(&self, id: u64) -> Transfer {
            let t = self.0[id as usize];
            Transfer {
                id,
                from: t.0,
                to: t.1,
                asset: 0,
                amount: U256::from(t.2),
                time: id,
                kind: TransferKind::Value,
                tx: Some(id),
            }
        }
        fn tx_name(&self, tx: u64) -> String {
            format!("tx{tx}")
        }
        fn asset_info(&self, _: u32) -> AssetInfo {
            AssetInfo {
                asset: "ETH".into(),
                token: None,
                symbol: Some("ETH".into()),
                decimals: Some(18),
            }
        }
        fn render(&self, a: AcctId) -> String {
            format!("acct{a}")
        }
    }

    #[test]
    fn a_hub_beyond_the_step_bound_is_reported_not_walked() {
        // 50 strangers pay hub 1, which pays the subject 0 (unattributed everywhere).
        let mut v: Vec<(AcctId, AcctId, u64)> = (0..50).map(|i| (100 + i, 1, 10)).collect();
        v.push((1, 0, 7));
        let view = Mem(v);
        let rules = RuleSet::default_rules();
        let run = |max_steps| {
            let params = ExposureParams {
                max_hops: 3,
                max_steps,
                ..Default::default()
            };
            AccountScreener {
                view: &view,
                attr: &crate::Nobody,
                rules: &rules,
                params: &params,
                prices: &crate::NoPrices,
            }
            .address("test", 0)
        };
        let s = run(10);
        assert_eq!(s.received[0].beyond_limit, "7");
        let s = run(20_000);
        assert_eq!(s.received[0].beyond_limit, "0");
        assert_eq!(s.received[0].total, "7");
        // The hub's 32 newest receipts are read (10 each), its 18 older ones are one part
        // of 180: 7 over [10 × 32, 180] is 0 each and 2 for the lump, 5 units left by
        // largest remainder: the lump's (260/500) first, then the four oldest read (70/500,
        // ties to the lower index). Those four strangers' (empty) pasts are outside.
        assert_eq!(s.received[0].beyond_branch_reads, "3");
        assert_eq!(s.received[0].outside_index, "4");
    }

    /// Account 9 is an exchange.
    struct Nine;
    impl crate::Attributor for Nine {
        fn attribute(&self, a: AcctId) -> Vec<crate::Attribution> {
            if a != 9 {
                return Vec::new();
            }
            vec![crate::Attribution {
                entity: None,
                name: "ex".into(),
                category: "exchange".into(),
                source: "test".into(),
                valid_from: None,
                valid_to: None,
            }]
        }
    }

    /// [`Nine`] with its label worked out ahead, as `EvmSide` does.
    struct NineFixed;
    impl crate::Attributor for NineFixed {
        fn attribute(&self, a: AcctId) -> Vec<crate::Attribution> {
            Nine.attribute(a)
        }
        fn fixed_label(&self, a: AcctId) -> Option<crate::FixedLabel> {
            crate::exposure::fixed_label_of(&Nine.attribute(a))
        }
    }

    #[test]
    fn a_fixed_label_is_what_the_rules_make_of_the_attribution_at_any_time() {
        let one = Nine.attribute(9);
        let fixed = crate::exposure::fixed_label_of(&one).unwrap();
        let rules = RuleSet::default_rules();
        for t in [0, 1_700_000_000, u64::MAX] {
            assert_eq!(Some((*fixed).clone()), label_of(&one, &rules, t));
        }
        // A delisting or a second label depends on the time or the rules: not fixed.
        let mut timed = one.clone();
        timed[0].valid_to = Some(5);
        assert!(crate::exposure::fixed_label_of(&timed).is_none());
        let two = [one[0].clone(), one[0].clone()];
        assert!(crate::exposure::fixed_label_of(&two).is_none());
        assert!(crate::exposure::fixed_label_of(&[]).is_none());
    }

    fn screen(view: &Mem, max_steps: usize, opts: WalkOptions) -> serde_json::Value {
        let rules = RuleSet::default_rules();
        let params = ExposureParams {
            max_hops: 3,
            max_steps,
            ..ExposureParams::default()
        };
        let s = AccountScreener {
            view,
            attr: &Nine,
            rules: &rules,
            params: &params,
            prices: &crate::NoPrices,
        };
        let fast = serde_json::to_value(s.address_with("test", 0, opts)).unwrap();
        let slow =
            serde_json::to_value(s.address_with("test", 0, WalkOptions { scan: true, ..opts }))
                .unwrap();
        assert_eq!(fast, slow);
        let ahead = AccountScreener {
            attr: &NineFixed,
            ..s
        };
        assert_eq!(
            serde_json::to_value(ahead.address_with("test", 0, opts)).unwrap(),
            fast
        );
        fast
    }

    fn exchange_received(s: &serde_json::Value) -> Option<String> {
        s["exposure"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["category"] == "exchange" && r["direction"] == "received")
            .map(|r| r["amount"].as_str().unwrap().to_string())
    }

    #[test]
    fn a_branch_under_the_minimum_share_is_reported_not_walked() {
        // The exchange pays 1 and 2; 1 pays the subject 1,000 and 2 pays it 5 (0.5%).
        let view = Mem(vec![(9, 1, 1000), (9, 2, 10), (1, 0, 1000), (2, 0, 5)]);
        let s = screen(&view, 20_000, WalkOptions::default());
        assert_eq!(s["received"][0]["total"], "1005");
        assert_eq!(s["received"][0]["below_min_share"], "5");
        assert_eq!(exchange_received(&s).as_deref(), Some("1000"));
        assert_eq!(s["parameters"]["min_share"], 0.01);
        // Without the minimum both branches reach the exchange.
        let all = screen(
            &view,
            20_000,
            WalkOptions {
                min_share_ppm: 0,
                ..WalkOptions::default()
            },
        );
        assert_eq!(all["received"][0]["below_min_share"], "0");
        assert_eq!(exchange_received(&all).as_deref(), Some("1005"));
    }

    /// Every flow's parts add up to its total: the rows of its direction and asset (not
    /// ownership), unattributed, outside the index, new coins, fees, held, beyond the step
    /// bound, under the minimum share and beyond the branch read cap.
    fn assert_conserved(s: &serde_json::Value) {
        let n = |v: &serde_json::Value| v.as_str().unwrap().parse::<u128>().unwrap();
        for dir in ["received", "sent"] {
            for f in s[dir].as_array().unwrap() {
                let rows: u128 = s["exposure"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| {
                        r["direction"] == dir
                            && r["asset"] == f["asset"]
                            && r["type"] != "ownership"
                    })
                    .map(|r| n(&r["amount"]))
                    .sum();
                let parts: u128 = [
                    "unattributed",
                    "outside_index",
                    "new_coins",
                    "fee",
                    "held",
                    "beyond_limit",
                    "below_min_share",
                    "beyond_branch_reads",
                ]
                .iter()
                .map(|k| n(&f[*k]))
                .sum();
                assert_eq!(rows + parts, n(&f["total"]), "{dir} {f}");
            }
        }
    }

    #[test]
    fn a_branch_reads_at_most_max_branch_reads_and_lumps_the_older_rest() {
        let view = Mem(vec![
            // Backward: account 1 received 600 from the exchange, then 100 from each of
            // four strangers, then paid the subject 500.
            (9, 1, 600),
            (100, 1, 100),
            (101, 1, 100),
            (102, 1, 100),
            (103, 1, 100),
            (1, 0, 500),
            // Forward: the subject paid account 2 300, which paid 100 to a stranger, 200
            // to the exchange, then 50 to each of two strangers.
            (0, 2, 300),
            (2, 104, 100),
            (2, 9, 200),
            (2, 105, 50),
            (2, 106, 50),
        ]);
        let capped = |cap| WalkOptions {
            max_branch_reads: cap,
            ..WalkOptions::default()
        };
        // Cap 2. Backward: the two newest receipts (100, 100) are read, the older 600 + 100
        // + 100 = 800 are one part: 500 over [100, 100, 800] = 50, 50, 400. The strangers'
        // 50s came from before the index; the exchange is not reached.
        let s = screen(&view, 20_000, capped(2));
        assert_eq!(s["parameters"]["max_branch_reads"], 2);
        let r = &s["received"][0];
        assert_eq!(r["total"], "500");
        assert_eq!(r["beyond_branch_reads"], "400");
        assert_eq!(r["outside_index"], "100");
        assert_eq!(exchange_received(&s), None);
        // Forward: the two newest sends (50, 50) are read, the 100 + 200 between the
        // subject's payment and them are one part: 300 over [50, 50, 300] = 37.5, 37.5,
        // 225; the half unit goes to the first part (equal remainders, lower index).
        let out = &s["sent"][0];
        assert_eq!(out["total"], "300");
        assert_eq!(out["beyond_branch_reads"], "225");
        assert_eq!(out["held"], "75");
        assert!(!s["exposure"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["direction"] == "sent"));
        assert_conserved(&s);
        // No cap (and the default 32, longer than these lists): every list read whole.
        for opts in [capped(0), WalkOptions::default()] {
            let s = screen(&view, 20_000, opts);
            assert_eq!(s["received"][0]["beyond_branch_reads"], "0");
            assert_eq!(s["received"][0]["outside_index"], "200");
            assert_eq!(exchange_received(&s).as_deref(), Some("300"));
            assert_eq!(s["sent"][0]["beyond_branch_reads"], "0");
            assert_eq!(s["sent"][0]["held"], "150");
            assert_conserved(&s);
        }
        assert_eq!(
            screen(&view, 20_000, WalkOptions::default())["parameters"]["max_branch_reads"],
            MAX_BRANCH_READS
        );
    }

    #[test]
    fn a_hub_cut_by_the_step_bound_leaves_the_rest_of_the_walk() {
        // 50 strangers pay hub 1, which pays the subject 7 first; then the exchange pays 2,
        // which pays the subject 7.
        let mut v: Vec<(AcctId, AcctId, u64)> = (0..50).map(|i| (100 + i, 1, 10)).collect();
        v.push((1, 0, 7));
        v.push((9, 2, 7));
        v.push((2, 0, 7));
        let view = Mem(v);
        let s = screen(&view, 10, WalkOptions::default());
        assert_eq!(s["received"][0]["beyond_limit"], "7");
        // Before, the hub used the whole bound up and this branch was cut too.
        assert_eq!(exchange_received(&s).as_deref(), Some("7"));
        let s = screen(&view, 20_000, WalkOptions::default());
        assert_eq!(s["received"][0]["beyond_limit"], "0");
        assert_eq!(exchange_received(&s).as_deref(), Some("7"));
    }

    #[test]
    fn mul_div_u128_is_exact() {
        let mut x = 5u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x
        };
        let mut cases = vec![
            (u128::MAX, u128::MAX, u128::MAX),
            (u128::MAX, 1, u128::MAX),
            (u128::MAX - 1, u128::MAX - 2, u128::MAX),
            (1 << 127, 1 << 127, 1 << 127),
            (1 << 64, (1 << 64) - 1, 1 << 64),
            (3, 2, 7),
        ];
        for _ in 0..20_000 {
            let r = |n: &mut dyn FnMut() -> u64| {
                let v = ((n() as u128) << 64) | n() as u128;
                v >> (n() % 128)
            };
            let (a, b, c) = (r(&mut next), r(&mut next), r(&mut next));
            let d = b.max(c).max(1);
            cases.push((a, b, d));
        }
        for (a, b, d) in cases {
            let (q, r) = mul_div_u128(a, b, d);
            let exact = U256::from(a) * U256::from(b);
            let (wq, wr) = exact.div_rem(U256::from(d));
            assert_eq!((U256::from(q), U256::from(r)), (wq, wr), "{a} * {b} / {d}");
        }
    }

    #[test]
    fn split_u256_narrow_and_wide_agree() {
        let mut x = 11u64;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) % m
        };
        for round in 0..300 {
            let n = 1 + next(40) as usize;
            let scale = U256::from(1u8) << (next(100) as usize);
            let parts: Vec<U256> = (0..n)
                .map(|_| U256::from(next(1_000_000)) * scale + U256::from(next(3)))
                .collect();
            let w = U256::from(next(u64::MAX)) * (U256::from(1u8) << (next(60) as usize));
            assert_eq!(
                split_u256(w, &parts),
                split_u256_wide(w, &parts),
                "round {round}"
            );
        }
        // Ties (equal remainders go to the lower index first), more parts than the stack
        // holds, and totals on both sides of 2^96 (the packed keys and the pairs).
        for n in [3usize, 47, 48, 49, 120] {
            for scale in [0usize, 60, 95, 97, 120] {
                let parts = vec![U256::from(7u8) << scale; n];
                for w in [1u64, 5, n as u64 + 1, 1_000_003] {
                    let w = U256::from(w);
                    let got = split_u256(w, &parts);
                    assert_eq!(got, split_u256_wide(w, &parts), "n {n} scale {scale} w {w}");
                    assert_eq!(got.iter().fold(U256::ZERO, |a, x| a + *x), w);
                }
            }
        }
    }

    #[test]
    fn counting_lists_answers_what_reading_every_entry_answered() {
        // A pseudo-random chain of 12 accounts (self-payments included), unlabelled: the
        // walk goes on everywhere, so the step bound cuts it at many places.
        let mut x = 7u64;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let v: Vec<(AcctId, AcctId, u64)> = (0..400)
            .map(|_| (next(12) as AcctId, next(12) as AcctId, 1 + next(1000)))
            .collect();
        let view = Mem(v);
        let rules = RuleSet::default_rules();
        let mut lumped = 0;
        for max_steps in [3, 25, 120, 20_000] {
            let params = ExposureParams {
                max_hops: 3,
                max_steps,
                ..Default::default()
            };
            let s = AccountScreener {
                view: &view,
                attr: &crate::Nobody,
                rules: &rules,
                params: &params,
                prices: &crate::NoPrices,
            };
            for cap in [0, 3, MAX_BRANCH_READS] {
                let opts = WalkOptions {
                    max_branch_reads: cap,
                    ..WalkOptions::default()
                };
                for a in 0..12 {
                    let fast = serde_json::to_value(s.address_with("test", a, opts)).unwrap();
                    let slow = serde_json::to_value(s.address_with(
                        "test",
                        a,
                        WalkOptions { scan: true, ..opts },
                    ))
                    .unwrap();
                    assert_eq!(fast, slow, "account {a}, max_steps {max_steps}, cap {cap}");
                    assert_conserved(&fast);
                    lumped += (fast["received"][0]["beyond_branch_reads"] != "0") as usize;
                }
            }
        }
        // The cap of 3 did lump in many walks (the comparison covers it).
        assert!(lumped > 10, "{lumped}");
    }
}
