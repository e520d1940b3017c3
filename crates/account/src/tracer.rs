//! The account-model tracer (methods.md §1.7). State is a queue of runs per (address,
//! asset); a debit cuts its amount off the sender's queue by the model's rule, a credit
//! appends. Transactions are taken in chain order, each whole and once, driven by a
//! min-heap of the movements that touch tainted addresses (so the work is the tainted
//! addresses' activity, not the chain).
//!
//! Inside a transaction the movements of a source are not in execution order (native
//! frames come before token transfers), so they are settled in dependency order: a
//! debit waits while a credit of the same asset to its sender is still pending in the
//! transaction, a conversion waits for its input; the first ready item (lowest id) goes
//! next. A cycle is broken in id order.
//!
//! Pooling contracts never hold taint: what is paid into a swap's pool waits in flight
//! for the conversion, which hands the input's runs, rescaled to the output amount, to
//! the output's recipient. Taint left in flight at the end of the transaction (a
//! liquidity deposit, a swap that failed its checks) stops at the pool, counted as
//! `pooled`. Tornado-style pools, labelled stops (exchange deposit addresses, bridges)
//! and the zero address stop the trace.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

use cointrail_evm::movement::{Asset, SINK};
use cointrail_evm::{Address, B256, U256};
use serde::Serialize;

use crate::ledger::{Ledger, Move};
use crate::runs::{self, Label, Run};
use crate::swaps::{decode_tx, Conversion, Protocol, TxDecode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountModel {
    /// Deposits leave in the order they arrived.
    Fifo,
    /// The newest deposit leaves first.
    Lifo,
    /// Tainted runs leave first (in arrival order), then clean ones from the front.
    Tifo,
    /// Every debit carries the balance's tainted share (pro rata).
    Haircut,
    /// Every debit of a touched balance is flagged at full value: reachability only.
    Poison,
}

impl AccountModel {
    pub fn parse(s: &str) -> Result<AccountModel, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "fifo" => Self::Fifo,
            "lifo" => Self::Lifo,
            "tifo" => Self::Tifo,
            "haircut" => Self::Haircut,
            "poison" => Self::Poison,
            o => {
                return Err(format!(
                    "unknown account model {o:?}: use fifo, lifo, tifo, haircut or poison"
                ))
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fifo => "fifo",
            Self::Lifo => "lifo",
            Self::Tifo => "tifo",
            Self::Haircut => "haircut",
            Self::Poison => "poison",
        }
    }
    /// Whether totals add up to the source (all but poison).
    pub fn conserves(self) -> bool {
        self != Self::Poison
    }
}

/// Where a trace ends: a service that takes custody (exchange deposit address, bridge,
/// custodial mixer) or a pool that breaks the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stop {
    pub category: String,
    pub name: String,
}

/// Who is who, for stops. An exchange's deposit addresses, bridges and mixers.
pub trait AccountOracle {
    fn stop(&self, addr: &Address) -> Option<Stop>;
}

/// No attribution at all.
pub struct NoStops;
impl AccountOracle for NoStops {
    fn stop(&self, _: &Address) -> Option<Stop> {
        None
    }
}

/// Stops from a function (a label store lookup, say).
pub struct FnOracle<F: Fn(&Address) -> Option<Stop>>(pub F);
impl<F: Fn(&Address) -> Option<Stop>> AccountOracle for FnOracle<F> {
    fn stop(&self, addr: &Address) -> Option<Stop> {
        (self.0)(addr)
    }
}

impl AccountOracle for HashMap<Address, Stop> {
    fn stop(&self, addr: &Address) -> Option<Stop> {
        self.get(addr).cloned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The value this movement credited to its receiver is tainted.
    Movement(u64),
    /// Only `amount` of what this movement credited is tainted (a cross-chain release
    /// paying converted taint); the rest of the credit is clean. Several labels may each
    /// name a part of the same movement; their sum is capped at the movement's amount.
    Part { movement: u64, amount: U256 },
    /// The whole balance of (address, asset) just before movement `before`.
    Balance {
        address: Address,
        asset: Asset,
        before: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Params {
    pub model: AccountModel,
    /// Stop after this block (later activity is left as held).
    pub until_block: Option<u64>,
    /// Stop after this many transactions (the rest is held; `truncated` says so).
    pub max_txs: usize,
}

impl Params {
    pub fn new(model: AccountModel) -> Params {
        Params {
            model,
            until_block: None,
            max_txs: 1_000_000,
        }
    }
}

/// Per (label, asset): where the taint went. For every model but poison
/// `source + converted_in = held + stopped + fee + pooled + converted_out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub label: Label,
    pub asset: Asset,
    pub source: U256,
    pub converted_in: U256,
    pub held: U256,
    pub stopped: U256,
    pub fee: U256,
    pub pooled: U256,
    pub converted_out: U256,
}

impl Totals {
    pub fn balanced(&self) -> bool {
        self.source + self.converted_in
            == self.held + self.stopped + self.fee + self.pooled + self.converted_out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRow {
    pub label: Label,
    pub address: Address,
    pub asset: Asset,
    pub amount: U256,
    pub movement: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldRow {
    pub address: Address,
    pub asset: Asset,
    pub label: Label,
    pub amount: U256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopRow {
    pub address: Address,
    pub asset: Asset,
    pub label: Label,
    pub amount: U256,
    pub category: String,
    pub name: String,
    pub block: u64,
    pub tx: Option<B256>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversionRow {
    pub block: u64,
    pub tx: Option<B256>,
    pub protocol: Protocol,
    pub pool: Address,
    pub recipient: Address,
    pub asset_in: Asset,
    pub amount_in: U256,
    pub asset_out: Asset,
    pub amount_out: U256,
    /// Tainted part of the input and of the output, per label.
    pub tainted_in: Vec<(Label, U256)>,
    pub tainted_out: Vec<(Label, U256)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRow {
    pub block: u64,
    pub tx: Option<B256>,
    pub log_index: u64,
    pub pool: Address,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountTrace {
    pub model: AccountModel,
    pub sources: Vec<SourceRow>,
    pub totals: Vec<Totals>,
    /// Tainted balances at the end, largest first.
    pub held: Vec<HeldRow>,
    pub stops: Vec<StopRow>,
    pub conversions: Vec<ConversionRow>,
    /// Swap events in traced transactions that were not believed (logged, not followed).
    pub skipped: Vec<SkippedRow>,
    /// Debits larger than what the tracer knew the sender held (value from before the
    /// indexed range): the missing part was taken as clean.
    pub shortfalls: u64,
    pub transactions: u64,
    pub truncated: bool,
    /// For each deposit into a Tornado-style pool: later withdrawals, ranked. Candidates
    /// only: they carry no taint.
    pub mixer_candidates: Vec<crate::mixer::Candidate>,
}

impl AccountTrace {
    /// Every (label, asset) adds up (always true but for poison).
    pub fn conserved(&self) -> bool {
        self.totals.iter().all(Totals::balanced)
    }
    pub fn totals_of(&self, label: Label, asset: Asset) -> Option<&Totals> {
        self.totals
            .iter()
            .find(|t| t.label == label && t.asset == asset)
    }
    /// Tainted amount held at an address in an asset (all labels).
    pub fn held_at(&self, a: &Address, asset: Asset) -> U256 {
        self.held
            .iter()
            .filter(|h| h.address == *a && h.asset == asset)
            .fold(U256::ZERO, |s, h| s + h.amount)
    }
    /// Tainted amount stopped at an address in an asset (all labels).
    pub fn stopped_at(&self, a: &Address, asset: Asset) -> U256 {
        self.stops
            .iter()
            .filter(|h| h.address == *a && h.asset == asset)
            .fold(U256::ZERO, |s, h| s + h.amount)
    }
}

type Key = (Address, Asset);

struct Tx<'d> {
    id: Option<u64>,
    hash: Option<B256>,
    block: u64,
    start: u64,
    decode: &'d TxDecode,
    /// Who paid the gas (else the first payer: the transaction's sender), and its last movement.
    sender: Option<Address>,
    last: u64,
    in_flight: HashMap<Key, VecDeque<Run>>,
    /// In-transaction movement of addresses that hold no queue: (received, sent).
    delta: HashMap<Key, (U256, U256)>,
}

pub struct AccountTracer<'a, L: Ledger, O: AccountOracle> {
    ledger: &'a L,
    oracle: &'a O,
    p: Params,
    queues: HashMap<Key, VecDeque<Run>>,
    tracked: HashSet<Address>,
    newly: Vec<Address>,
    heap: BinaryHeap<Reverse<u64>>,
    source_moves: HashMap<u64, Label>,
    /// Partly tainted source movements: (label, tainted amount) parts.
    source_parts: HashMap<u64, Vec<(Label, U256)>>,
    totals: BTreeMap<(Label, Asset), Totals>,
    /// (pool, depositor, block, movement) of each tainted mixer deposit.
    mixer_deposits: Vec<(Address, Address, u64, u64)>,
    out: AccountTrace,
}

impl<'a, L: Ledger, O: AccountOracle> AccountTracer<'a, L, O> {
    pub fn new(ledger: &'a L, oracle: &'a O, p: Params) -> Self {
        AccountTracer {
            ledger,
            oracle,
            out: AccountTrace {
                model: p.model,
                sources: Vec::new(),
                totals: Vec::new(),
                held: Vec::new(),
                stops: Vec::new(),
                conversions: Vec::new(),
                skipped: Vec::new(),
                shortfalls: 0,
                transactions: 0,
                truncated: false,
                mixer_candidates: Vec::new(),
            },
            mixer_deposits: Vec::new(),
            p,
            queues: HashMap::new(),
            tracked: HashSet::new(),
            newly: Vec::new(),
            heap: BinaryHeap::new(),
            source_moves: HashMap::new(),
            source_parts: HashMap::new(),
            totals: BTreeMap::new(),
        }
    }

    fn tot(&mut self, label: Label, asset: Asset) -> &mut Totals {
        self.totals.entry((label, asset)).or_insert_with(|| Totals {
            label,
            asset,
            source: U256::ZERO,
            converted_in: U256::ZERO,
            held: U256::ZERO,
            stopped: U256::ZERO,
            fee: U256::ZERO,
            pooled: U256::ZERO,
            converted_out: U256::ZERO,
        })
    }

    /// Register a source under a label (several sources may share one).
    pub fn add_source(&mut self, label: Label, s: Source) -> Result<(), String> {
        match s {
            Source::Movement(id) => {
                let m = self
                    .ledger
                    .movement(id)
                    .ok_or_else(|| format!("movement {id} is not in the ledger"))?;
                if m.is_gas() {
                    return Err(format!("movement {id} is gas, not a transfer: pick a value movement of the transaction"));
                }
                self.source_moves.insert(id, label);
                self.heap.push(Reverse(id));
            }
            Source::Part { movement, amount } => {
                let m = self
                    .ledger
                    .movement(movement)
                    .ok_or_else(|| format!("movement {movement} is not in the ledger"))?;
                if m.is_gas() {
                    return Err(format!("movement {movement} is gas, not a transfer"));
                }
                if amount.is_zero() {
                    return Ok(());
                }
                let parts = self.source_parts.entry(movement).or_default();
                let have = parts.iter().fold(U256::ZERO, |a, p| a + p.1);
                let amount = amount.min(m.amount.saturating_sub(have));
                if amount.is_zero() {
                    return Err(format!(
                        "movement {movement}: its {} are all claimed by other parts",
                        m.amount
                    ));
                }
                parts.push((label, amount));
                self.heap.push(Reverse(movement));
            }
            Source::Balance {
                address,
                asset,
                before,
            } => {
                let bal = self.ledger.balance_before(&address, asset, before);
                if bal.is_zero() {
                    return Err(format!(
                        "{address} holds nothing of that asset before movement {before}"
                    ));
                }
                let q = self.queues.entry((address, asset)).or_default();
                runs::push_run(q, Run::tainted(label, bal));
                self.tot(label, asset).source += bal;
                self.out.sources.push(SourceRow {
                    label,
                    address,
                    asset,
                    amount: bal,
                    movement: None,
                });
                if self.tracked.insert(address) {
                    for id in self.ledger.touching(&address, before) {
                        self.heap.push(Reverse(id));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn run(mut self) -> AccountTrace {
        let mut done_upto: Option<u64> = None;
        while let Some(Reverse(id)) = self.heap.pop() {
            if done_upto.is_some_and(|d| id <= d) {
                continue;
            }
            let Some(mv) = self.ledger.movement(id) else {
                continue;
            };
            if self.p.until_block.is_some_and(|b| mv.block > b) {
                break;
            }
            if self.out.transactions as usize >= self.p.max_txs {
                self.out.truncated = true;
                break;
            }
            let moves = match mv.tx {
                Some(t) => self.ledger.tx_movements(t),
                None => vec![mv.clone()],
            };
            let last = moves.last().map(|m| m.id).unwrap_or(id);
            self.process_tx(mv.tx, &moves);
            self.out.transactions += 1;
            done_upto = Some(last);
            for a in std::mem::take(&mut self.newly) {
                for id in self.ledger.touching(&a, last + 1) {
                    self.heap.push(Reverse(id));
                }
            }
        }
        self.finish()
    }

    fn finish(mut self) -> AccountTrace {
        for (pool, depositor, block, id) in std::mem::take(&mut self.mixer_deposits) {
            self.out
                .mixer_candidates
                .extend(crate::mixer::withdrawal_candidates(
                    self.ledger,
                    pool,
                    depositor,
                    block,
                    id,
                    10_000,
                ));
        }
        let poison = self.p.model == AccountModel::Poison;
        let mut held = Vec::new();
        let queues = std::mem::take(&mut self.queues);
        for ((address, asset), q) in queues {
            for r in q {
                if r.is_tainted() && !r.amount.is_zero() {
                    held.push(HeldRow {
                        address,
                        asset,
                        label: r.label,
                        amount: r.amount,
                    });
                }
            }
        }
        held.sort_by(|a, b| {
            b.amount
                .cmp(&a.amount)
                .then(a.address.cmp(&b.address))
                .then(a.asset.cmp(&b.asset))
                .then(a.label.cmp(&b.label))
        });
        // Merge rows of one (address, asset, label) (a FIFO queue may hold several runs).
        let mut merged: Vec<HeldRow> = Vec::new();
        let mut idx: HashMap<(Address, Asset, Label), usize> = HashMap::new();
        for h in held {
            match idx.get(&(h.address, h.asset, h.label)) {
                Some(&i) => merged[i].amount += h.amount,
                None => {
                    idx.insert((h.address, h.asset, h.label), merged.len());
                    merged.push(h);
                }
            }
        }
        merged.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.address.cmp(&b.address)));
        for h in &merged {
            if !poison {
                self.tot(h.label, h.asset).held += h.amount;
            }
        }
        self.out.held = merged;
        self.out.totals = self.totals.into_values().collect();
        self.out
    }

    fn queue_init(&self, k: Key, tx: &Tx) -> U256 {
        let before = self.ledger.balance_before(&k.0, k.1, tx.start);
        let (inn, out) = tx.delta.get(&k).copied().unwrap_or_default();
        (before + inn).saturating_sub(out)
    }

    fn queue(&mut self, k: Key, tx: &mut Tx) -> &mut VecDeque<Run> {
        if !self.queues.contains_key(&k) {
            let init = self.queue_init(k, tx);
            tx.delta.remove(&k);
            let mut q = VecDeque::new();
            runs::push_run(&mut q, Run::clean(init));
            self.queues.insert(k, q);
        }
        self.queues.get_mut(&k).unwrap()
    }

    fn cut(&mut self, q: &mut VecDeque<Run>, amount: U256) -> (Vec<Run>, U256) {
        match self.p.model {
            AccountModel::Fifo => runs::cut_front(q, amount),
            AccountModel::Lifo => runs::cut_back(q, amount),
            AccountModel::Tifo => runs::cut_taint_first(q, amount),
            AccountModel::Haircut => runs::cut_pro_rata(q, amount),
            AccountModel::Poison => {
                let mut labels: Vec<Label> = q
                    .iter()
                    .filter(|r| r.is_tainted())
                    .map(|r| r.label)
                    .collect();
                labels.sort_unstable();
                labels.dedup();
                if labels.is_empty() {
                    (vec![Run::clean(amount)], U256::ZERO)
                } else {
                    (
                        labels
                            .into_iter()
                            .map(|l| Run::tainted(l, amount))
                            .collect(),
                        U256::ZERO,
                    )
                }
            }
        }
    }

    fn add(&self, q: &mut VecDeque<Run>, r: Run) {
        match self.p.model {
            AccountModel::Haircut | AccountModel::Poison => runs::pool_add(q, r),
            _ => runs::push_run(q, r),
        }
    }

    /// Take `amount` of `k` from whoever holds it: a tracked address's queue, a pool's
    /// in-flight value, or an untracked (clean) address.
    fn debit(&mut self, k: Key, amount: U256, tx: &mut Tx) -> Vec<Run> {
        let (mut got, short) = if tx.decode.is_pool(&k.0) {
            let mut q = tx.in_flight.remove(&k).unwrap_or_default();
            let r = self.cut(&mut q, amount);
            tx.in_flight.insert(k, q);
            r
        } else if self.tracked.contains(&k.0) {
            let mut q = std::mem::take(self.queue(k, tx));
            let r = self.cut(&mut q, amount);
            self.queues.insert(k, q);
            if !r.1.is_zero() {
                self.out.shortfalls += 1;
            }
            r
        } else {
            tx.delta.entry(k).or_default().1 += amount;
            (Vec::new(), amount)
        };
        if !short.is_zero() {
            got.push(Run::clean(short));
        }
        got
    }

    fn available(&self, k: Key, tx: &Tx) -> U256 {
        let sum = |q: &VecDeque<Run>| q.iter().fold(U256::ZERO, |a, r| a + r.amount);
        if tx.decode.is_pool(&k.0) {
            return tx.in_flight.get(&k).map(sum).unwrap_or_default();
        }
        if let Some(q) = self.queues.get(&k) {
            return sum(q);
        }
        let (inn, out) = tx.delta.get(&k).copied().unwrap_or_default();
        inn.saturating_sub(out)
    }

    fn stop_row(&mut self, to: Address, asset: Asset, runs_: &[Run], stop: Stop, tx: &Tx) {
        for r in runs_.iter().filter(|r| r.is_tainted()) {
            self.tot(r.label, asset).stopped += r.amount;
            self.out.stops.push(StopRow {
                address: to,
                asset,
                label: r.label,
                amount: r.amount,
                category: stop.category.clone(),
                name: stop.name.clone(),
                block: tx.block,
                tx: tx.hash,
            });
        }
    }

    /// Hand runs of `asset` to `to`.
    fn deliver(&mut self, to: Address, asset: Asset, got: Vec<Run>, tx: &mut Tx) {
        let tainted = got.iter().any(Run::is_tainted);
        if tx.decode.is_pool(&to) {
            let mut q = tx.in_flight.remove(&(to, asset)).unwrap_or_default();
            for r in got {
                self.add(&mut q, r);
            }
            tx.in_flight.insert((to, asset), q);
            return;
        }
        if !tainted && !self.tracked.contains(&to) {
            tx.delta.entry((to, asset)).or_default().0 += runs::total(&got);
            return;
        }
        if tainted && tx.decode.is_mixer_pool(&to) {
            self.mixer_deposits
                .push((to, tx.sender.unwrap_or(to), tx.block, tx.last));
        }
        let stop = if tx.decode.is_mixer_pool(&to) {
            Some(Stop {
                category: "mixer".into(),
                name: "Tornado-style pool deposit".into(),
            })
        } else if let Some(s) = self.oracle.stop(&to) {
            Some(s)
        } else if to == SINK {
            Some(Stop {
                category: "burn".into(),
                name: "the zero address".into(),
            })
        } else {
            None
        };
        if let Some(s) = stop {
            self.stop_row(to, asset, &got, s, tx);
            return;
        }
        let mut q = std::mem::take(self.queue((to, asset), tx));
        for r in got {
            self.add(&mut q, r);
        }
        self.queues.insert((to, asset), q);
        if self.tracked.insert(to) {
            self.newly.push(to);
        }
    }

    fn process_move(&mut self, m: &Move, tx: &mut Tx) {
        let got = if let Some(&label) = self.source_moves.get(&m.id) {
            self.tot(label, m.asset).source += m.amount;
            self.out.sources.push(SourceRow {
                label,
                address: m.to,
                asset: m.asset,
                amount: m.amount,
                movement: Some(m.id),
            });
            vec![Run::tainted(label, m.amount)]
        } else if let Some(parts) = self.source_parts.get(&m.id).cloned() {
            // Tainted parts first, then the clean rest of the credit (the payer, a
            // vault, is not traced: its rest is not stolen value).
            let mut runs = Vec::new();
            let mut sum = U256::ZERO;
            for (label, a) in parts {
                self.tot(label, m.asset).source += a;
                self.out.sources.push(SourceRow {
                    label,
                    address: m.to,
                    asset: m.asset,
                    amount: a,
                    movement: Some(m.id),
                });
                runs.push(Run::tainted(label, a));
                sum += a;
            }
            if m.amount > sum {
                runs.push(Run::clean(m.amount - sum));
            }
            runs
        } else {
            self.debit((m.from, m.asset), m.amount, tx)
        };
        if m.is_gas() {
            for r in got.iter().filter(|r| r.is_tainted()) {
                self.tot(r.label, m.asset).fee += r.amount;
            }
            return;
        }
        self.deliver(m.to, m.asset, got, tx);
    }

    fn process_conversion(&mut self, c: &Conversion, tx: &mut Tx) {
        let input = match c.burn_from {
            Some(h) => self.debit((h, c.asset_in), c.amount_in, tx),
            None => self.debit((c.pool, c.asset_in), c.amount_in, tx),
        };
        let output: Vec<Run> = if self.p.model == AccountModel::Poison {
            input
                .iter()
                .filter(|r| r.is_tainted())
                .map(|r| Run::tainted(r.label, c.amount_out))
                .chain(
                    input
                        .iter()
                        .all(|r| !r.is_tainted())
                        .then(|| Run::clean(c.amount_out)),
                )
                .collect()
        } else {
            runs::convert(&input, c.amount_out)
        };
        let t_in = by_label(&input);
        let t_out = by_label(&output);
        if !t_in.is_empty() {
            for &(l, a) in &t_in {
                self.tot(l, c.asset_in).converted_out += a;
            }
            for &(l, a) in &t_out {
                self.tot(l, c.asset_out).converted_in += a;
            }
            self.out.conversions.push(ConversionRow {
                block: tx.block,
                tx: tx.hash,
                protocol: c.protocol,
                pool: c.pool,
                recipient: c.recipient,
                asset_in: c.asset_in,
                amount_in: c.amount_in,
                asset_out: c.asset_out,
                amount_out: c.amount_out,
                tainted_in: t_in,
                tainted_out: t_out,
            });
        }
        self.deliver(c.recipient, c.asset_out, output, tx);
    }

    fn process_tx(&mut self, txid: Option<u64>, moves: &[Move]) {
        let Some(first) = moves.first() else { return };
        let decode = match txid {
            Some(t) => {
                let logs = self.ledger.tx_logs(t);
                if logs.is_empty() {
                    TxDecode::default()
                } else {
                    decode_tx(&logs, moves)
                }
            }
            None => TxDecode::default(),
        };
        let mut tx = Tx {
            id: txid,
            hash: txid.and_then(|t| self.ledger.tx_hash(t)),
            block: first.block,
            start: first.id,
            sender: moves
                .iter()
                .find(|m| m.is_gas())
                .or(moves.first())
                .map(|m| m.from),
            last: moves.last().map(|m| m.id).unwrap_or(first.id),
            decode: &decode,
            in_flight: HashMap::new(),
            delta: HashMap::new(),
        };
        for s in &decode.skipped {
            self.out.skipped.push(SkippedRow {
                block: tx.block,
                tx: tx.hash,
                log_index: s.log_index,
                pool: s.pool,
                reason: s.reason.clone(),
            });
        }
        // Gas is bought before anything runs.
        for m in moves.iter().filter(|m| m.is_gas()) {
            self.process_move(m, &mut tx);
        }
        let outputs: HashSet<u64> = decode
            .conversions
            .iter()
            .filter_map(|c| c.output_move)
            .collect();
        #[derive(Clone, Copy)]
        enum Item {
            Move(usize),
            Conv(usize),
        }
        let mut pending: Vec<Item> = moves
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.is_gas() && !outputs.contains(&m.id))
            .map(|(i, _)| Item::Move(i))
            .chain((0..decode.conversions.len()).map(Item::Conv))
            .collect();
        let credit_of = |it: &Item| -> Key {
            match *it {
                Item::Move(i) => (moves[i].to, moves[i].asset),
                Item::Conv(c) => (
                    decode.conversions[c].recipient,
                    decode.conversions[c].asset_out,
                ),
            }
        };
        let need_of = |it: &Item| -> (Key, U256) {
            match *it {
                Item::Move(i) => ((moves[i].from, moves[i].asset), moves[i].amount),
                Item::Conv(c) => {
                    let c = &decode.conversions[c];
                    ((c.burn_from.unwrap_or(c.pool), c.asset_in), c.amount_in)
                }
            }
        };
        while !pending.is_empty() {
            let pick = (0..pending.len())
                .find(|&i| {
                    let (k, amount) = need_of(&pending[i]);
                    let fed_later = pending
                        .iter()
                        .enumerate()
                        .any(|(j, it)| j != i && credit_of(it) == k);
                    !fed_later || self.available(k, &tx) >= amount
                })
                .unwrap_or(0);
            match pending.remove(pick) {
                Item::Move(i) => self.process_move(&moves[i], &mut tx),
                Item::Conv(c) => {
                    let c = decode.conversions[c].clone();
                    self.process_conversion(&c, &mut tx)
                }
            }
        }
        // Whatever was paid into a pool and not converted stops there.
        let mut left: Vec<(Key, VecDeque<Run>)> =
            std::mem::take(&mut tx.in_flight).into_iter().collect();
        left.sort_by_key(|(k, _)| *k);
        for ((pool, asset), q) in left {
            for r in q.iter().filter(|r| r.is_tainted()) {
                self.tot(r.label, asset).pooled += r.amount;
                self.out.stops.push(StopRow {
                    address: pool,
                    asset,
                    label: r.label,
                    amount: r.amount,
                    category: "pool".into(),
                    name: "paid into a pooling contract, no conversion took it".into(),
                    block: tx.block,
                    tx: tx.hash,
                });
            }
        }
        let _ = tx.id;
    }
}

fn by_label(rs: &[Run]) -> Vec<(Label, U256)> {
    let mut m: BTreeMap<Label, U256> = BTreeMap::new();
    for r in rs.iter().filter(|r| r.is_tainted()) {
        *m.entry(r.label).or_default() += r.amount;
    }
    m.into_iter().filter(|(_, a)| !a.is_zero()).collect()
}

/// Trace `sources` (each its own label, in order) under `params`.
pub fn trace<L: Ledger, O: AccountOracle>(
    ledger: &L,
    oracle: &O,
    sources: &[Source],
    params: Params,
) -> Result<AccountTrace, String> {
    let mut t = AccountTracer::new(ledger, oracle, params);
    for (i, s) in sources.iter().enumerate() {
        t.add_source(i as Label, s.clone())?;
    }
    Ok(t.run())
}
