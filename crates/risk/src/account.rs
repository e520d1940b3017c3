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
//! pool everyone's funds, included), at `max_hops`, and at `max_steps` (transfers read).
//! Labels are judged at the time of each transfer, as on Bitcoin.

use crate::exposure::{label_at, usd_parameters, ExposureParams, ExposureType};
use crate::rules::{FiredRule, Level, NotJudged, RuleRow, RuleSet};
use crate::usd::{convert, day_of, to_f64, ByDay, UsdFigure, UsdPrices, UsdRate};
use crate::Attributor;
use cointrail_evm::{U256, U512};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// An account's dense id (the index's address id).
pub type AcctId = u32;

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

type RowKey = (String, ExposureType, bool, u32);

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
    rows: BTreeMap<RowKey, Row>,
    received: BTreeMap<u32, FlowAcc>,
    sent: BTreeMap<u32, FlowAcc>,
    steps: usize,
    /// Read whole lists entry by entry, as the walk did before the views could count
    /// (`AccountScreener::address_by_scanning`, the reference the tests compare with).
    scan: bool,
}

impl Walk {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        dir: &str,
        cat: String,
        t: ExposureType,
        delisted: bool,
        asset: u32,
        amount: U256,
        hops: u32,
        names: &[String],
        path: &Trail,
        day: u32,
    ) {
        let e = self
            .rows
            .entry((format!("{dir}|{cat}"), t, delisted, asset))
            .or_insert_with(|| Row {
                amount: U256::ZERO,
                hops: u32::MAX,
                names: Vec::new(),
                path: path.to_vec(),
                days: ByDay::default(),
            });
        add(&mut e.amount, amount);
        e.hops = e.hops.min(hops);
        e.days.add(day, amount);
        for n in names {
            if e.names.len() < 5 && !e.names.contains(n) {
                e.names.push(n.clone());
            }
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
    fn label(&self, a: AcctId, time: u64) -> Option<(String, bool, Vec<String>)> {
        label_at(self.attr, self.rules, a, time)
    }

    /// The transfers of a branch's list that `keep` accepts, oldest first, or None when
    /// the step bound is reached first. The bound counts `n` steps, every transfer of the
    /// list the walk looks at (backward the whole received list, forward every later send),
    /// relevant or not: so a hub (an exchange, a pool, the burn address) is judged from its
    /// count without being read, and `visit` need only produce the relevant ones (one asset,
    /// the right side of `via`), newest first.
    fn read(
        &self,
        walk: &mut Walk,
        n: u64,
        visit: &dyn Fn(&mut dyn FnMut(u64) -> bool),
        keep: &dyn Fn(&Transfer) -> bool,
    ) -> Option<Vec<Transfer>> {
        if n == 0 {
            return Some(Vec::new());
        }
        let budget = self.params.max_steps;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if walk.steps.saturating_add(n) > budget {
            // Where counting them one by one would have stopped.
            walk.steps = walk.steps.max(budget) + 1;
            return None;
        }
        walk.steps += n;
        let mut out = Vec::new();
        visit(&mut |id| {
            let t = self.view.transfer(id);
            if keep(&t) {
                out.push(t);
            }
            true
        });
        out.reverse();
        Some(out)
    }

    /// The walk's list reading as it was before the views could count: every entry read
    /// and counted, newest first, until `stop` (kept as the reference of
    /// `address_by_scanning`).
    fn read_scanning(
        &self,
        walk: &mut Walk,
        sent: bool,
        a: AcctId,
        keep: &dyn Fn(&Transfer) -> bool,
        stop: &dyn Fn(u64) -> bool,
    ) -> Option<Vec<Transfer>> {
        let mut out = Vec::new();
        let mut over = false;
        let budget = self.params.max_steps;
        let mut f = |id: u64| {
            if stop(id) {
                return false;
            }
            walk.steps += 1;
            if walk.steps > budget {
                over = true;
                return false;
            }
            let t = self.view.transfer(id);
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
        out.reverse();
        (!over).then_some(out)
    }

    /// `at`'s receipts of `asset` before `via` (what it paid on at `via` came from).
    fn earlier_receipts(
        &self,
        walk: &mut Walk,
        at: AcctId,
        asset: u32,
        via: u64,
    ) -> Option<Vec<Transfer>> {
        if walk.scan {
            return self.read_scanning(
                walk,
                false,
                at,
                &|t| t.asset == asset && t.from != at && t.id < via,
                &|_| false,
            );
        }
        let n = self.view.received_len(at);
        self.read(
            walk,
            n,
            &|f| self.view.each_received_of_before(at, asset, via, f),
            &|t| t.from != at,
        )
    }

    /// `at`'s sends of `asset` after `via` (where what it received at `via` went).
    fn later_sends(
        &self,
        walk: &mut Walk,
        at: AcctId,
        asset: u32,
        via: u64,
    ) -> Option<Vec<Transfer>> {
        if walk.scan {
            return self.read_scanning(
                walk,
                true,
                at,
                &|t| t.asset == asset && t.to != at,
                &|id| id <= via,
            );
        }
        let n = self.view.sent_len_after(at, via);
        self.read(
            walk,
            n,
            &|f| self.view.each_sent_of_after(at, asset, via, f),
            &|t| t.to != at,
        )
    }

    fn backward(&self, mut queue: VecDeque<Branch>, walk: &mut Walk) {
        while let Some(b) = queue.pop_front() {
            if b.w.is_zero() {
                continue;
            }
            let (asset, at, via) = (b.asset, b.at, b.via);
            let Some(earlier) = self.earlier_receipts(walk, at, asset, via) else {
                add(
                    &mut walk.received.entry(asset).or_default().beyond_limit,
                    b.w,
                );
                continue;
            };
            let mut weights: Vec<U256> = earlier.iter().map(|t| t.amount).collect();
            let arrived = weights.iter().fold(U256::ZERO, |a, w| a.saturating_add(*w));
            weights.push(b.w.saturating_sub(arrived));
            let shares = split_u256(b.w, &weights);
            add(
                &mut walk.received.entry(asset).or_default().outside_index,
                shares[shares.len() - 1],
            );
            for (t, share) in earlier.iter().zip(&shares) {
                if share.is_zero() {
                    continue;
                }
                let hop = b.h + 1;
                let path = match t.tx {
                    Some(x) => b.path.push(x),
                    None => b.path.clone(),
                };
                if t.kind == TransferKind::NewCoins {
                    add(
                        &mut walk.received.entry(asset).or_default().new_coins,
                        *share,
                    );
                    continue;
                }
                match self.label(t.from, t.time) {
                    Some((cat, delisted, names)) => walk.row(
                        "received",
                        cat,
                        kind(hop),
                        delisted,
                        asset,
                        *share,
                        hop,
                        &names,
                        &path,
                        b.day,
                    ),
                    None if hop < self.params.max_hops => queue.push_back(Branch {
                        at: t.from,
                        asset,
                        w: *share,
                        h: hop,
                        via: t.id,
                        path,
                        day: b.day,
                    }),
                    None => add(
                        &mut walk.received.entry(asset).or_default().unattributed,
                        *share,
                    ),
                }
            }
        }
    }

    fn forward(&self, mut queue: VecDeque<Branch>, walk: &mut Walk) {
        while let Some(b) = queue.pop_front() {
            if b.w.is_zero() {
                continue;
            }
            let (asset, at, via) = (b.asset, b.at, b.via);
            let Some(later) = self.later_sends(walk, at, asset, via) else {
                add(&mut walk.sent.entry(asset).or_default().beyond_limit, b.w);
                continue;
            };
            let mut weights: Vec<U256> = later.iter().map(|t| t.amount).collect();
            let left = weights.iter().fold(U256::ZERO, |a, w| a.saturating_add(*w));
            weights.push(b.w.saturating_sub(left));
            let shares = split_u256(b.w, &weights);
            add(
                &mut walk.sent.entry(asset).or_default().held,
                shares[shares.len() - 1],
            );
            for (t, share) in later.iter().zip(&shares) {
                if share.is_zero() {
                    continue;
                }
                if t.kind == TransferKind::Gas {
                    add(&mut walk.sent.entry(asset).or_default().fee, *share);
                    continue;
                }
                let hop = b.h + 1;
                let path = match t.tx {
                    Some(x) => b.path.push(x),
                    None => b.path.clone(),
                };
                match self.label(t.to, t.time) {
                    Some((cat, delisted, names)) => walk.row(
                        "sent",
                        cat,
                        kind(hop),
                        delisted,
                        asset,
                        *share,
                        hop,
                        &names,
                        &path,
                        b.day,
                    ),
                    None if hop < self.params.max_hops => queue.push_back(Branch {
                        at: t.to,
                        asset,
                        w: *share,
                        h: hop,
                        via: t.id,
                        path,
                        day: b.day,
                    }),
                    None => add(
                        &mut walk.sent.entry(asset).or_default().unattributed,
                        *share,
                    ),
                }
            }
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
        for id in ids.iter().rev() {
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
            match self.label(other, t.time) {
                Some((cat, delisted, names)) => walk.row(
                    if sent { "sent" } else { "received" },
                    cat,
                    ExposureType::Direct,
                    delisted,
                    t.asset,
                    t.amount,
                    1,
                    &names,
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
                None => add(&mut f.unattributed, t.amount),
            }
        }
        branches
    }

    /// Screen account `a`: where what it received came from, and where what it sent went.
    pub fn address(&self, chain: &str, a: AcctId) -> AccountScreening {
        self.address_walk(chain, a, false)
    }

    /// As [`AccountScreener::address`], reading every list entry by entry as the walk did
    /// before views could count and seek (slow on hubs; the tests' reference: both must
    /// answer the same).
    pub fn address_by_scanning(&self, chain: &str, a: AcctId) -> AccountScreening {
        self.address_walk(chain, a, true)
    }

    fn address_walk(&self, chain: &str, a: AcctId, scan: bool) -> AccountScreening {
        let mut walk = Walk {
            rows: BTreeMap::new(),
            received: BTreeMap::new(),
            sent: BTreeMap::new(),
            steps: 0,
            scan,
        };
        let mut ins = Vec::new();
        self.view.each_received(a, &mut |id| {
            ins.push(id);
            true
        });
        let mut outs = Vec::new();
        self.view.each_sent(a, &mut |id| {
            outs.push(id);
            true
        });
        let (n_in, n_out) = (ins.len(), outs.len());
        let mut last_time = 0u64;
        // The subject's own transfers are read whole (not against the step bound): they are
        // its totals.
        let back = self.first_hop(a, &ins, false, &mut walk, &mut last_time);
        self.backward(back, &mut walk);
        walk.steps = 0;
        let fwd = self.first_hop(a, &outs, true, &mut walk, &mut last_time);
        self.forward(fwd, &mut walk);
        let own = self.label(a, last_time);
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
        walk: Walk,
        own: Option<(String, bool, Vec<String>)>,
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
        if let Some((cat, delisted, names)) = own {
            for (dir, m) in [("received", &walk.received), ("sent", &walk.sent)] {
                for (&asset, f) in m {
                    if !f.total.is_zero() {
                        push(
                            &mut rows,
                            info(asset),
                            dir,
                            cat.clone(),
                            ExposureType::Ownership,
                            delisted,
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
        for ((key, t, delisted, asset), r) in &walk.rows {
            let (dir, cat) = key.split_once('|').expect("direction|category");
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
        // 7 over 50 equal receipts: 7 strangers get 1 each, their (empty) pasts are outside.
        assert_eq!(s.received[0].outside_index, "7");
        assert_eq!(s.received[0].total, "7");
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
            for a in 0..12 {
                let fast = serde_json::to_value(s.address("test", a)).unwrap();
                let slow = serde_json::to_value(s.address_by_scanning("test", a)).unwrap();
                assert_eq!(fast, slow, "account {a}, max_steps {max_steps}");
            }
        }
    }
}
