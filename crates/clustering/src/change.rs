//! Change-output heuristics (methods.md §2.2–§2.3): each rule names the outputs of a
//! transaction that could be its change; rules compose with `&`, `|` and `-` into a rule
//! set, and a change is declared only when exactly one output remains (BlockSci's
//! `unique_change`). A declared change is a *soft link* from the spender to the change
//! address, kept apart from the common-input clusters and merged into entities only through
//! the collapse guards (`entities.rs`).
//!
//! Every rule reads only the chain, so links are computed in the clustering's single pass
//! and follow it incrementally. The rules that look at how outputs are spent later
//! (locktime, fingerprint, peel, consumer) see only spends before a horizon: the end of the
//! link's delay for its final verdict, the end of its own block before that (see
//! `clusters.rs`), so a clustering built at once and one that followed the chain block by
//! block judge every transaction on the same facts. Outputs are a bit mask (transactions with
//! [`BATCH_OUTPUTS`] outputs or more are batches and never get a change link).

use cointrail_chain::view::{AddrId, ChainView, Prevout, TxNum};
use cointrail_chain::ScriptType;
use serde::Serialize;

/// Transactions with this many outputs or more are batch payouts (§3.4): no change link.
/// (Outputs are a `u64` bit mask, so this must stay at most 64.)
pub const BATCH_OUTPUTS: usize = 10;
const _: () = assert!(BATCH_OUTPUTS <= 64);

/// One heuristic. The names are what rule-set expressions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Atom {
    /// Meiklejohn's one-time change: the only output whose address first appears here, in
    /// a transaction without self-change.
    H2,
    /// The output's address first appears in this transaction.
    Fresh,
    /// The output pays one of the input addresses (self-change).
    Reuse,
    /// All inputs share one script type and the output has it.
    Type,
    /// The output is smaller than every input (an optimal wallet would not have added one).
    Optimal,
    /// The amount is not a multiple of 0.01 BTC (payments usually are round).
    Round,
    /// Spent by a transaction whose locktime is set exactly when this one's is (Core's
    /// anti-fee-sniping), or not spent yet.
    Locktime,
    /// Spent by a transaction of the same version and locktime use, or not spent yet.
    /// (nSequence is not indexed, so it is not part of the fingerprint.)
    Fingerprint,
    /// A 1-in-2-out transaction next to another one (a peel chain): the larger output.
    Peel,
    /// Outputs spent by a transaction with 3 or more outputs: meant to be subtracted
    /// (`- consumer`), as change rarely pays a batch.
    Consumer,
}

impl Atom {
    pub const ALL: [Atom; 10] = [
        Atom::H2,
        Atom::Fresh,
        Atom::Reuse,
        Atom::Type,
        Atom::Optimal,
        Atom::Round,
        Atom::Locktime,
        Atom::Fingerprint,
        Atom::Peel,
        Atom::Consumer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Atom::H2 => "h2",
            Atom::Fresh => "fresh",
            Atom::Reuse => "reuse",
            Atom::Type => "type",
            Atom::Optimal => "optimal",
            Atom::Round => "round",
            Atom::Locktime => "locktime",
            Atom::Fingerprint => "fingerprint",
            Atom::Peel => "peel",
            Atom::Consumer => "consumer",
        }
    }
}

/// A rule set: atoms joined by `&` (both), `|` (either), `-` (minus), with parentheses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Atom(Atom),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Minus(Box<Expr>, Box<Expr>),
}

/// The named rule sets. `default` is methods.md §2.3's recommendation.
pub const NAMED: [(&str, &str); 5] = [
    ("default", "h2 & type & (optimal | round) - consumer"),
    ("meiklejohn", "h2"),
    (
        "strict",
        "h2 & type & optimal & round & locktime & fingerprint - consumer",
    ),
    ("loose", "fresh & (optimal | round) - reuse"),
    ("peel", "peel & type - consumer"),
];

/// A rule set with its name (the expression itself when it has none), as recorded with
/// the clustering and reported with every result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRules {
    pub name: String,
    pub text: String,
    pub expr: Expr,
}

impl ChangeRules {
    /// A named set (`default`, `meiklejohn`, `strict`, `loose`, `peel`) or an expression.
    pub fn parse(spec: &str) -> Result<ChangeRules, String> {
        let spec = spec.trim();
        if let Some((name, text)) = NAMED.iter().find(|(n, _)| *n == spec) {
            return Ok(ChangeRules {
                name: name.to_string(),
                text: text.to_string(),
                expr: parse_expr(text).expect("built-in rule sets parse"),
            });
        }
        let expr = parse_expr(spec)?;
        Ok(ChangeRules {
            name: spec.to_string(),
            text: spec.to_string(),
            expr,
        })
    }
}

/// Parse `a & (b | c) - d`. `&` and `-` bind tighter than `|`; all are left-associative.
pub fn parse_expr(s: &str) -> Result<Expr, String> {
    let toks = tokenize(s)?;
    let mut p = Parser { toks, i: 0 };
    let e = p.or()?;
    if p.i != p.toks.len() {
        return Err(format!(
            "change rules {s:?}: unexpected {:?} at token {}",
            p.toks[p.i],
            p.i + 1
        ));
    }
    Ok(e)
}

fn tokenize(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            cur.push(ch.to_ascii_lowercase());
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        match ch {
            '&' | '|' | '-' | '(' | ')' => out.push(ch.to_string()),
            c if c.is_whitespace() => {}
            c => {
                return Err(format!(
                    "change rules {s:?}: unexpected character {c:?} (use rule names, & | - and parentheses)"
                ))
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("change rules: empty expression".into());
    }
    Ok(out)
}

struct Parser {
    toks: Vec<String>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.i).map(String::as_str)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek() == Some("|") {
            self.i += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        loop {
            match self.peek() {
                Some("&") => {
                    self.i += 1;
                    e = Expr::And(Box::new(e), Box::new(self.atom()?));
                }
                Some("-") => {
                    self.i += 1;
                    e = Expr::Minus(Box::new(e), Box::new(self.atom()?));
                }
                _ => return Ok(e),
            }
        }
    }
    fn atom(&mut self) -> Result<Expr, String> {
        let Some(t) = self.peek().map(str::to_string) else {
            return Err("change rules: the expression ends too early".into());
        };
        self.i += 1;
        if t == "(" {
            let e = self.or()?;
            if self.peek() != Some(")") {
                return Err("change rules: missing ')'".into());
            }
            self.i += 1;
            return Ok(e);
        }
        Atom::ALL
            .iter()
            .find(|a| a.name() == t)
            .map(|a| Expr::Atom(*a))
            .ok_or_else(|| {
                format!(
                    "change rules: unknown rule {t:?}; rules are {}, or a named set: {}",
                    Atom::ALL.map(|a| a.name()).join(", "),
                    NAMED.map(|(n, _)| n).join(", ")
                )
            })
    }
}

/// What the rules need to know about one transaction. Held in fixed arrays (a change
/// candidate has fewer than [`BATCH_OUTPUTS`] outputs) and with each rule's answer kept
/// once computed: the clustering asks this of every transaction, and a rule set and the
/// agreement panel ask the same rules several times.
pub struct TxFacts<'a> {
    view: &'a dyn ChainView,
    tx: TxNum,
    n_out: usize,
    outs: [(u64, Option<AddrId>); BATCH_OUTPUTS],
    out_types: [ScriptType; BATCH_OUTPUTS],
    /// The first input's address, when known.
    first_in: Option<AddrId>,
    /// Outputs paying one of the inputs' addresses.
    reuse: u64,
    /// Inputs' count, smallest and total value; `None` when some input's value is unknown
    /// (spends from before the indexed range).
    in_vals: Option<(usize, u64, u64)>,
    in_type: Option<ScriptType>,
    /// Addresses with ids at or above this first appear in this transaction.
    first_new_addr: AddrId,
    /// Spends by this transaction or later ones are not seen.
    horizon: TxNum,
    /// Each atom's mask, once evaluated (by `Atom::ALL` position).
    memo: [std::cell::Cell<Option<u64>>; Atom::ALL.len()],
}

impl<'a> TxFacts<'a> {
    /// `first_new_addr`: the number of addresses seen before `tx` (ids are dense in order of
    /// first appearance). `None` when the transaction cannot have a change link (coinbase,
    /// fewer than 2 or a batch of outputs).
    pub fn of(view: &'a dyn ChainView, tx: TxNum, first_new_addr: AddrId) -> Option<TxFacts<'a>> {
        let or = view.tx_outputs(tx);
        let n_out = (or.end - or.start) as usize;
        if view.is_coinbase(tx) || !(2..BATCH_OUTPUTS).contains(&n_out) {
            return None;
        }
        let mut outs = [(0, None); BATCH_OUTPUTS];
        let mut out_types = [ScriptType::NonStandard; BATCH_OUTPUTS];
        for (k, o) in or.enumerate() {
            outs[k] = (view.output_value(o), view.output_addr(o));
            out_types[k] = view.output_script_type(o);
        }
        let (mut first_in, mut reuse) = (None, 0u64);
        let mut in_vals = Some((0usize, u64::MAX, 0u64));
        let mut types: Option<Option<ScriptType>> = None;
        for i in view.tx_inputs(tx) {
            match view.input_prevout(i) {
                Prevout::Output(o) => {
                    if let Some((n, min, sum)) = in_vals.as_mut() {
                        let v = view.output_value(o);
                        (*n, *min, *sum) = (*n + 1, (*min).min(v), sum.saturating_add(v));
                    }
                    let a = view.output_addr(o);
                    let t = a.map(|_| view.output_script_type(o));
                    types = Some(match types {
                        None => t,
                        Some(prev) if prev == t => prev,
                        Some(_) => None,
                    });
                    if let Some(a) = a {
                        first_in = first_in.or(Some(a));
                        for (k, out) in outs[..n_out].iter().enumerate() {
                            if out.1 == Some(a) {
                                reuse |= 1 << k;
                            }
                        }
                    }
                }
                _ => {
                    in_vals = None;
                    types = Some(None);
                }
            }
        }
        Some(TxFacts {
            view,
            tx,
            n_out,
            outs,
            out_types,
            first_in,
            reuse,
            in_vals,
            in_type: types.flatten(),
            first_new_addr,
            horizon: TxNum::MAX,
            memo: Default::default(),
        })
    }

    /// See only the spends made by transactions before `horizon`.
    pub fn seeing_spends_before(mut self, horizon: TxNum) -> TxFacts<'a> {
        self.horizon = horizon;
        self.memo = Default::default();
        self
    }

    fn mask(&self, f: impl Fn(usize, u64, AddrId) -> bool) -> u64 {
        let mut m = 0u64;
        for (i, &(v, a)) in self.outs[..self.n_out].iter().enumerate() {
            if let Some(a) = a {
                if f(i, v, a) {
                    m |= 1 << i;
                }
            }
        }
        m
    }

    fn spender(&self, i: usize) -> Option<TxNum> {
        self.view
            .output_spender(self.view.tx_outputs(self.tx).start + i as u64)
            .filter(|&s| s < self.horizon)
    }

    fn is_1in2out(&self, t: TxNum) -> bool {
        let (i, o) = (self.view.tx_inputs(t), self.view.tx_outputs(t));
        i.end - i.start == 1 && o.end - o.start == 2 && !self.view.is_coinbase(t)
    }

    /// The outputs `atom` names as possible change.
    pub fn eval_atom(&self, atom: Atom) -> u64 {
        let slot = &self.memo[Atom::ALL.iter().position(|&a| a == atom).expect("listed")];
        if let Some(m) = slot.get() {
            return m;
        }
        let m = self.compute_atom(atom);
        slot.set(Some(m));
        m
    }

    fn compute_atom(&self, atom: Atom) -> u64 {
        let v = self.view;
        match atom {
            Atom::Fresh => self.mask(|_, _, a| a >= self.first_new_addr),
            Atom::Reuse => self.reuse,
            Atom::H2 => {
                if self.eval_atom(Atom::Reuse) != 0 {
                    return 0;
                }
                let f = self.eval_atom(Atom::Fresh);
                if f.count_ones() == 1 {
                    f
                } else {
                    0
                }
            }
            Atom::Type => match self.in_type {
                Some(k) => self.mask(|i, _, _| self.out_types[i] == k),
                None => 0,
            },
            Atom::Optimal => match self.in_vals {
                Some((n, min, _)) if n > 0 => self.mask(|_, w, _| w < min),
                _ => 0,
            },
            Atom::Round => self.mask(|_, w, _| w % 1_000_000 != 0),
            Atom::Locktime => {
                let lt = v.tx_locktime(self.tx) > 0;
                self.mask(|i, _, _| self.spender(i).is_none_or(|s| (v.tx_locktime(s) > 0) == lt))
            }
            Atom::Fingerprint => {
                let (ver, lt) = (v.tx_version(self.tx), v.tx_locktime(self.tx) > 0);
                self.mask(|i, _, _| {
                    self.spender(i)
                        .is_none_or(|s| v.tx_version(s) == ver && (v.tx_locktime(s) > 0) == lt)
                })
            }
            Atom::Peel => {
                if !self.is_1in2out(self.tx) {
                    return 0;
                }
                let parent = match v.input_prevout(v.tx_inputs(self.tx).start) {
                    Prevout::Output(o) => Some(v.output_tx(o)),
                    _ => None,
                };
                let linked = parent.is_some_and(|p| self.is_1in2out(p))
                    || (0..2).any(|i| self.spender(i).is_some_and(|s| self.is_1in2out(s)));
                let (a, b) = (self.outs[0].0, self.outs[1].0);
                if !linked || a == b {
                    return 0;
                }
                let big = usize::from(b > a);
                self.mask(|i, _, _| i == big)
            }
            Atom::Consumer => self.mask(|i, _, _| {
                self.spender(i).is_some_and(|s| {
                    let o = v.tx_outputs(s);
                    o.end - o.start >= 3
                })
            }),
        }
    }

    pub fn eval(&self, e: &Expr) -> u64 {
        match e {
            Expr::Atom(a) => self.eval_atom(*a),
            Expr::And(x, y) => self.eval(x) & self.eval(y),
            Expr::Or(x, y) => self.eval(x) | self.eval(y),
            Expr::Minus(x, y) => self.eval(x) & !self.eval(y),
        }
    }

    /// A possible PayJoin (UIH2 on two outputs, methods.md §2.2): the larger output could
    /// have been paid without the smallest input, so the inputs may have two owners.
    pub fn payjoin_suspect(&self) -> bool {
        let Some((n, min, sum)) = self.in_vals else {
            return false;
        };
        if self.n_out != 2 || n < 2 {
            return false;
        }
        let max_out = self.outs[0].0.max(self.outs[1].0);
        sum - min >= max_out
    }

    /// The unique change output under `rules`: its position in the transaction.
    pub fn unique_change(&self, rules: &Expr) -> Option<u32> {
        let m = self.eval(rules);
        (m.count_ones() == 1).then(|| m.trailing_zeros())
    }

    /// How many of the independent rules agree that output `i` is change, out of
    /// [`PANEL`]'s size: the link's confidence.
    pub fn agreement(&self, i: u32) -> u8 {
        PANEL
            .iter()
            .filter(|(a, want)| (self.eval_atom(*a) >> i & 1 == 1) == *want)
            .count() as u8
    }

    /// The address of the first input (every input is in one hard cluster).
    pub fn input_addr(&self) -> Option<AddrId> {
        self.first_in
    }

    pub fn output_addr(&self, i: u32) -> Option<AddrId> {
        self.outs[..self.n_out].get(i as usize).and_then(|x| x.1)
    }
}

/// The rules whose votes make a link's confidence (`agreement / PANEL.len()`): each atom
/// with the answer that says "change".
pub const PANEL: [(Atom, bool); 7] = [
    (Atom::H2, true),
    (Atom::Type, true),
    (Atom::Optimal, true),
    (Atom::Round, true),
    (Atom::Locktime, true),
    (Atom::Fingerprint, true),
    (Atom::Consumer, false),
];

/// A soft link: `tx` declared output `vout` (address `change`) the change of the spender
/// whose first input address is `input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SoftLink {
    pub tx: TxNum,
    pub height: u32,
    pub input: AddrId,
    pub change: AddrId,
    pub vout: u32,
    /// Rules of [`PANEL`] that agree.
    pub agreement: u8,
    pub state: LinkState,
}

/// Where a link stands on the chain's side of the guards (the delay, §2.3 guard 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Fewer than the delay's blocks have passed.
    Pending = 0,
    /// The delay passed and the change address received nothing else meanwhile.
    Ready = 1,
    /// The change address received other funds within the delay: not trusted.
    Reused = 2,
}

impl LinkState {
    pub fn from_u8(v: u8) -> LinkState {
        match v {
            1 => LinkState::Ready,
            2 => LinkState::Reused,
            _ => LinkState::Pending,
        }
    }
}

impl SoftLink {
    pub fn confidence(&self) -> f64 {
        self.agreement as f64 / PANEL.len() as f64
    }

    pub const BYTES: usize = 22;

    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[0..4].copy_from_slice(&self.tx.to_le_bytes());
        b[4..8].copy_from_slice(&self.height.to_le_bytes());
        b[8..12].copy_from_slice(&self.input.to_le_bytes());
        b[12..16].copy_from_slice(&self.change.to_le_bytes());
        b[16..20].copy_from_slice(&self.vout.to_le_bytes());
        b[20] = self.agreement;
        b[21] = self.state as u8;
        b
    }

    pub fn from_bytes(b: &[u8]) -> SoftLink {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        SoftLink {
            tx: u(0),
            height: u(4),
            input: u(8),
            change: u(12),
            vout: u(16),
            agreement: b[20],
            state: LinkState::from_u8(b[21]),
        }
    }
}
