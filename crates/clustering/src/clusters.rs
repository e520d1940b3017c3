//! Common-input-ownership clustering (methods.md §2.1): every transaction's input addresses
//! belong to one entity, except coinbases and detected CoinJoins. Union-find over address
//! ids; every union that joined two clusters is logged with its transaction, so `explain`
//! can show the chain of merges between any two addresses. Aggregates are maintained at the
//! roots as transactions are applied, never summed at query time.
//!
//! With change rules (`with_change`), the same pass also records soft links (`change.rs`):
//! they never join the common-input clusters; `entities.rs` merges them through the guards.

use crate::arr::Arr;
use crate::change::{Atom, ChangeRules, LinkState, SoftLink, TxFacts};
use crate::coinjoin::{detect_coinjoin, NetParams};
use crate::store::{array_offsets, Base, Dirty, Track, AGG, U32_SHIFT};
use cointrail_chain::view::{display_txid, AddrId, ChainView, InNum, Prevout, TxNum};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const RULE_SET: &str = "multi-input, coinbase and CoinJoins excluded";

#[derive(
    Clone,
    Copy,
    Debug,
    Serialize,
    Deserialize,
    PartialEq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
)]
#[repr(C)]
pub struct Merge {
    pub tx: TxNum,
    pub a: AddrId,
    pub b: AddrId,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MergeStep {
    pub txid: String,
    pub height: u32,
    pub from: String,
    pub to: String,
    pub rule: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub cluster_id: AddrId,
    pub size: u32,
    pub balance: u64,
    pub received: u64,
    pub sent: u64,
    /// Transactions touching the cluster (one counted twice if it touched two clusters
    /// before they merged).
    pub tx_count: u32,
    pub first_seen_height: u32,
    pub last_seen_height: u32,
}

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct State {
    pub(crate) covered_txs: u64,
    pub(crate) addrs: u64,
    pub(crate) merges: u64,
    pub(crate) coinjoins_skipped: u64,
    /// CoinJoins found, by detector (also those whose inputs predate the indexed range).
    #[serde(default)]
    pub(crate) coinjoins_by_protocol: std::collections::BTreeMap<String, u64>,
    pub(crate) rule_set: String,
    /// The change layer (soft links), when the clustering was built with change rules.
    #[serde(default)]
    pub(crate) change: Option<ChangeState>,
    /// The txid of the last covered transaction (hex, as stored): tells a reorganisation
    /// that replaced blocks from one that only added some. Absent in older files.
    #[serde(default)]
    pub(crate) last_txid: Option<String>,
    /// How `arrays.bin` is laid out; another layout (an older version's) is rebuilt.
    #[serde(default)]
    pub(crate) layout: u32,
    /// The txid of the first transaction (the coinbase) of the last covered block: with
    /// the last txid it pins that block, so a competing block holding the same last
    /// transaction at the same position is not taken for it.
    #[serde(default)]
    pub(crate) block_first_txid: Option<String>,
    /// This state's generation (`store.rs`): one more at every save.
    #[serde(default)]
    pub gen: u64,
    /// Room in the copy's files, in addresses, merges and change links (absent: exactly
    /// the counts, as saves before copies wrote them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_addrs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_merges: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_links: Option<u64>,
    /// In the manifest (`clusters/state.json`) only: the copy holding this state, and the
    /// other copy with its generation (absent when there is none to bring up to date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    #[serde(default)]
    pub other_gen: u64,
}

pub(crate) fn state_bytes(s: &State) -> Vec<u8> {
    serde_json::to_vec_pretty(s).expect("state serializes")
}

/// `arrays.bin`: `parent`, `next` (u32 each) and the aggregate records, each array
/// starting on a page boundary so it can be mapped on its own. Layout 3 is layout 2 with
/// room for more addresses (`cap_addrs`) in two copies (`store.rs`); layout 2 saves are
/// still read.
const LAYOUT: u32 = 3;

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct ChangeState {
    pub(crate) rules_name: String,
    pub(crate) rules: String,
    pub(crate) delay_blocks: u32,
    pub(crate) seen_addrs: u32,
    pub(crate) links: u64,
    pub(crate) pending_from: u64,
    /// See [`ChangeLayer::final_to`]; absent in saves from before horizons (rebuilt).
    #[serde(default)]
    pub(crate) final_to: Option<u32>,
    #[serde(default)]
    pub(crate) final_seen: Option<u32>,
}

impl ChangeLayer {
    pub(crate) fn last_recv_bytes(&self) -> &[u8] {
        self.last_recv.as_bytes()
    }
}

impl ChangeState {
    /// The saved rule set, parsed, under its saved name.
    fn rules(&self) -> Option<ChangeRules> {
        let mut r = ChangeRules::parse(&self.rules).ok()?;
        r.name = self.rules_name.clone();
        Some(r)
    }

    /// What makes two clusterings judge change alike: the rules and the delay.
    fn setting(&self) -> (&str, u32) {
        (&self.rules, self.delay_blocks)
    }
}

/// Soft links from change heuristics (`change.rs`), computed in the same pass as the
/// common-input clusters. Links are appended in chain order, so the ones still inside the
/// delay are a suffix (`pending_from..`).
///
/// A transaction is judged on the spends the chain shows before the end of its delay (the
/// first transaction at or above its height plus the delay): its final verdict, the same
/// whether the clustering was built at once or followed the chain. While the chain does
/// not reach that far, it is judged provisionally on the spends of its own block, and
/// judged again once it does (`Clustering::rejudge`); its link stays pending meanwhile.
pub struct ChangeLayer {
    pub rules: ChangeRules,
    /// Blocks a link waits before it is trusted (guard 3; 1,008 ≈ one week).
    pub delay_blocks: u32,
    /// Addresses seen before the next transaction: ids at or above are fresh.
    seen_addrs: u32,
    /// The last transaction that paid each address: a link's change address paid again
    /// before its delay ends makes the link `Reused`. Mapped from `change_last_recv.bin`
    /// at open (4 bytes per address: a query never reads it, so opening must not copy it),
    /// owned once a build or the follower writes to it.
    last_recv: Arr<TxNum>,
    /// Mapped from `change_links.bin` when opened for queries (`Clustering::open_mapped`),
    /// decoded when first read.
    pub links: Links,
    pending_from: usize,
    /// Transactions before this one have their final verdicts; the rest were judged
    /// provisionally.
    final_to: TxNum,
    /// `seen_addrs` before `final_to`.
    final_seen: u32,
}

impl ChangeLayer {
    pub fn new(rules: ChangeRules, delay_blocks: u32) -> ChangeLayer {
        ChangeLayer {
            rules,
            delay_blocks,
            seen_addrs: 0,
            last_recv: Arr::default(),
            links: Links::default(),
            pending_from: 0,
            final_to: 0,
            final_seen: 0,
        }
    }

    /// What makes two clusterings judge change alike: the rules and the delay.
    fn setting(&self) -> (&str, u32) {
        (&self.rules.text, self.delay_blocks)
    }

    /// Whether transaction `tx`'s verdict is final (judged on the spends before the end of
    /// its delay) rather than provisional (the chain does not reach that far yet).
    pub fn verdict_is_final(&self, tx: TxNum) -> bool {
        tx < self.final_to
    }

    fn settle(&mut self, height: u32) {
        let links = self.links.vec_mut();
        while let Some(l) = links.get_mut(self.pending_from) {
            if l.height.saturating_add(self.delay_blocks) > height {
                break;
            }
            l.state = if self.last_recv[l.change as usize] == l.tx {
                LinkState::Ready
            } else {
                LinkState::Reused
            };
            self.pending_from += 1;
        }
    }
}

/// The change layer's links: decoded into a vector, or (a clustering opened for queries,
/// `Clustering::open_mapped`) still mapped from the saved copy's `change_links.bin` and
/// decoded only when first read. A query command (screen, trace) never reads them, and
/// decoding them all at open was the part of opening that grew with the chain (22 bytes
/// per link read and 24 allocated: ~165 MB of each on a 100M-transaction chain).
#[derive(Default)]
pub struct Links {
    /// The saved links (exactly `len` of them), while not decoded. The copy they are
    /// mapped from is held (`Clustering::copy_lock`) for as long as the map lives.
    mapped: Option<memmap2::Mmap>,
    vec: std::sync::OnceLock<Vec<SoftLink>>,
}

impl Links {
    fn mapped(map: memmap2::Mmap) -> Links {
        Links {
            mapped: Some(map),
            vec: std::sync::OnceLock::new(),
        }
    }

    /// How many links, without decoding them.
    pub fn len(&self) -> usize {
        match (self.vec.get(), &self.mapped) {
            (Some(v), _) => v.len(),
            (None, Some(m)) => m.len() / SoftLink::BYTES,
            (None, None) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the links are still only mapped (not read yet).
    pub fn is_mapped(&self) -> bool {
        self.vec.get().is_none() && self.mapped.is_some()
    }

    /// Link `i` without decoding the others.
    pub fn get_one(&self, i: usize) -> Option<SoftLink> {
        match (self.vec.get(), &self.mapped) {
            (Some(v), _) => v.get(i).copied(),
            (None, Some(m)) => m
                .get(i * SoftLink::BYTES..(i + 1) * SoftLink::BYTES)
                .map(SoftLink::from_bytes),
            (None, None) => None,
        }
    }

    fn decoded(&self) -> &Vec<SoftLink> {
        self.vec.get_or_init(|| match &self.mapped {
            Some(m) => m
                .chunks_exact(SoftLink::BYTES)
                .map(SoftLink::from_bytes)
                .collect(),
            None => Vec::new(),
        })
    }

    /// The vector, decoded first if need be; the map is let go (to change them).
    pub fn vec_mut(&mut self) -> &mut Vec<SoftLink> {
        self.decoded();
        self.mapped = None;
        self.vec.get_mut().expect("decoded above")
    }
}

impl From<Vec<SoftLink>> for Links {
    fn from(v: Vec<SoftLink>) -> Links {
        Links {
            mapped: None,
            vec: std::sync::OnceLock::from(v),
        }
    }
}

impl std::ops::Deref for Links {
    type Target = [SoftLink];
    fn deref(&self) -> &[SoftLink] {
        self.decoded()
    }
}

impl<'a> IntoIterator for &'a Links {
    type Item = &'a SoftLink;
    type IntoIter = std::slice::Iter<'a, SoftLink>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A decoded copy (the map is not shared).
impl Clone for Links {
    fn clone(&self) -> Links {
        Links::from(self.decoded().clone())
    }
}

impl PartialEq for Links {
    fn eq(&self, other: &Links) -> bool {
        self[..] == other[..]
    }
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What the change layer relies on, link by link: chain order, the pending ones a
/// suffix, every id within the clustering. Anything else is a damaged file.
fn links_sound(links: &[SoftLink], pending_from: usize, covered_txs: u64, n: usize) -> bool {
    pending_from <= links.len()
        && links.windows(2).all(|w| w[0].tx <= w[1].tx)
        && links
            .iter()
            .enumerate()
            .all(|(k, l)| link_sound(l, k, pending_from, covered_txs, n))
}

fn link_sound(l: &SoftLink, k: usize, pending_from: usize, covered_txs: u64, n: usize) -> bool {
    (l.tx as u64) < covered_txs
        && (l.input as usize) < n
        && (l.change as usize) < n
        && (l.vout as usize) < crate::change::BATCH_OUTPUTS
        && (l.state == LinkState::Pending) == (k >= pending_from)
}

/// A root's aggregates, stored as laid out here (`repr(C)`, little-endian), so a saved
/// clustering is mapped rather than read.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct Agg {
    received: u64,
    sent: u64,
    size: u32,
    min_id: u32,
    txs: u32,
    first: u32,
    last: u32,
    _pad: u32,
}

pub struct Clustering {
    pub(crate) dir: PathBuf,
    pub covered_txs: u64,
    /// Internal-order txid of transaction `covered_txs - 1` when it was applied.
    pub last_txid: Option<[u8; 32]>,
    /// Internal-order txid of the first transaction of that transaction's block.
    pub block_first_txid: Option<[u8; 32]>,
    pub coinjoins_skipped: u64,
    /// CoinJoins found, by detector (also those whose inputs predate the indexed range).
    pub coinjoins_by_protocol: std::collections::BTreeMap<String, u64>,
    pub(crate) parent: Arr<u32>,
    /// Circular member lists: iterating `next` from any member visits the whole cluster.
    pub(crate) next: Arr<u32>,
    /// A root's aggregates in one record: applying a transaction touches them together,
    /// so one cache miss instead of seven.
    pub(crate) agg: Arr<Agg>,
    pub merges: Arr<Merge>,
    params: NetParams,
    pub change: Option<ChangeLayer>,
    /// Roots a transaction touched: scratch kept to avoid an allocation per transaction.
    touched: Vec<AddrId>,
    /// Told (transactions applied, transactions to apply) as an update goes: for a
    /// progress bar on long builds.
    pub progress: Option<Box<dyn Fn(u64, u64) + Send + Sync>>,
    /// Where the last `rollback_to` started again: the transactions its saved state
    /// covered (0: rebuilt from nothing).
    pub restarted_from: u64,
    /// Every address touched so far is below this id: an output paying one at or above it
    /// is its first, and the address is alone in its cluster. (Conservatively the address
    /// count when opened from a save.)
    fresh_from: AddrId,
    /// Why `open` did not use the saved clustering as it found it, for the user: a save
    /// from an older version or a damaged one is rebuilt (or the save before it used),
    /// which takes a while and should not look like a hang.
    pub open_note: Option<String>,
    /// The saved copy this clustering derives from and the pages changed since
    /// (`store.rs`). Behind a mutex so that a save (`&self`) can reset it; the updating
    /// methods reach it with `get_mut`, which takes no lock.
    pub(crate) track: std::sync::Mutex<Track>,
    /// Pages changed since the copy in `track` (`store.rs`). A plain field, so the update
    /// loop marks a page with a couple of instructions; a save (`&self`) cannot clear it,
    /// so it leaves `Track::saved` set and the next change clears it first
    /// (`after_save`).
    pub(crate) dirty: Dirty,
    /// A shared lock on the saved copy the arrays are mapped from, held while any is:
    /// no save writes into a copy under it.
    copy_lock: Option<std::fs::File>,
    last_save: std::sync::Mutex<Option<crate::store::SaveReport>>,
    /// False while the change layer's links are mapped and checked only at their ends
    /// (`open_mapped`): `sync` checks them all before changing anything.
    links_checked: bool,
}

/// Where the state saved before the current one is: the other copy, or `previous/` (saves
/// from before copies).
/// Without a readable manifest, the newest intact copy (one with its state file: a copy
/// loses it while it is written).
fn previous_dir(dir: &Path) -> PathBuf {
    match peek_state(dir) {
        Some(m) => match m.other {
            Some(o) if valid_copy_name(&o) => dir.join(o),
            _ => dir.join(PREVIOUS),
        },
        None => std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if !valid_copy_name(&name) {
                    return None;
                }
                let s = peek_state(&e.path())?;
                Some((s.gen, e.path()))
            })
            .max()
            .map_or_else(|| dir.join(PREVIOUS), |(_, p)| p),
    }
}

/// A copy's directory name as saves make them (`c` and a generation): the manifest names
/// nothing else, so a damaged one cannot point outside the clustering's directory.
fn valid_copy_name(name: &str) -> bool {
    name.len() > 1 && name.starts_with('c') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The first `len` bytes of a file (fewer when it is shorter).
fn read_prefix(path: &Path, len: usize) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(len as u64).read_to_end(&mut v);
    }
    v
}

/// The state saved before the last one, kept so that a reorganisation deeper than the
/// last save can still start from a saved state, and so that a save cut short leaves one.
pub(crate) const PREVIOUS: &str = "previous";

/// The change layer's last payer of each address (`ChangeLayer::last_recv`).
pub(crate) const LAST_RECV: &str = "change_last_recv.bin";

/// The first transaction of `t`'s block.
fn block_first<V: ChainView>(view: &V, t: u64) -> TxNum {
    view.tx_block(t as TxNum).1.start
}

/// Whether a state covering `n` transactions, the last `last` in a block starting with
/// `first`, is a prefix of `view`'s chain. A state without them (older files) is judged
/// on what it has.
fn prefix_of<V: ChainView>(
    n: u64,
    last: Option<[u8; 32]>,
    first: Option<[u8; 32]>,
    view: &V,
) -> bool {
    n <= view.tx_count()
        && (n == 0
            || (last.is_none_or(|t| view.txid((n - 1) as TxNum) == t)
                && first.is_none_or(|t| view.txid(block_first(view, n - 1)) == t)))
}

/// A shared hold on the clustering's lock while its files are opened: a save (which holds
/// it exclusively) replaces them one by one, and a state file read before a save paired
/// with data files renamed in by it would claim fewer transactions than the arrays hold,
/// so the next update would count some twice. Once mapped, the files opened stay as they
/// were. `None` where there is no directory or it cannot be written (nothing saves there).
fn read_lock(dir: &Path) -> Option<std::fs::File> {
    let f = lock_file(dir).ok()?;
    f.lock_shared().ok()?;
    Some(f)
}

/// The clustering's lock file for a reader: opened for reading (a shared lock needs no
/// more, so a reader without write access to another user's data directory still takes
/// it), created when missing.
fn lock_file(dir: &Path) -> std::io::Result<std::fs::File> {
    let path = dir.join("LOCK");
    match std::fs::File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path),
        r => r,
    }
}

/// The saved state in `dir`, read without opening its data files.
pub(crate) fn peek_state(dir: &Path) -> Option<State> {
    serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()
}

fn decode_txid(h: &Option<String>) -> Option<[u8; 32]> {
    hex::decode(h.as_deref()?).ok()?.try_into().ok()
}

/// Ranges at least this long are applied with a reading thread beside the merging one.
const PIPELINE_MIN_TXS: u64 = 2048;

/// What applying transactions needs from the chain, read ahead (on another thread for
/// long ranges): each one's inputs' addresses and the values they spend, its outputs'
/// addresses and values, its height, and whether it is a CoinJoin. Flat arrays for a
/// batch of transactions, reused, so reading allocates nothing per transaction.
#[derive(Default)]
struct Batch {
    ins: Vec<AddrId>,
    vals: Vec<u64>,
    in_end: Vec<u32>,
    outs: Vec<AddrId>,
    out_vals: Vec<u64>,
    out_end: Vec<u32>,
    txs: Vec<TxRead>,
}

#[derive(Clone, Copy)]
struct TxRead {
    height: u32,
    /// More than one input, and not a coinbase: common-input ownership applies.
    multi: bool,
    coinjoin: Option<&'static str>,
    /// The change rules' soft link, if any.
    link: Option<SoftLink>,
    /// The change rules' verdict is provisional: the chain does not reach the end of the
    /// transaction's delay.
    provisional: bool,
}

/// What the reading side needs to judge change: the rules, and where each transaction's
/// look-ahead stops.
struct ChangeReader {
    rules: ChangeRules,
    /// The first address id not yet seen before the next transaction (what makes an
    /// output address "fresh").
    seen: u32,
    delay: u32,
    /// The view's last height.
    tip: u32,
    /// The height of a block and its first transaction: moved forward as horizons are
    /// asked for, which never go back.
    cursor: (u32, TxNum),
}

impl ChangeReader {
    /// For reading transactions `from..end` of `view`: nothing past `end` is seen, so a
    /// clustering brought to `end` of a longer view (a reorganisation's restart) takes no
    /// verdict from blocks it does not cover.
    fn new<V: ChainView>(
        ch: &ChangeLayer,
        seen: u32,
        view: &V,
        from: TxNum,
        end: u64,
    ) -> ChangeReader {
        let n = end.min(view.tx_count());
        let (tip, cursor) = if (from as u64) < n {
            let (h, r) = view.tx_block(from);
            (view.tx_height((n - 1) as TxNum), (h, r.start))
        } else {
            (0, (u32::MAX, n as TxNum))
        };
        ChangeReader {
            rules: ch.rules.clone(),
            seen,
            delay: ch.delay_blocks,
            tip,
            cursor,
        }
    }

    /// Where a transaction at `height`, whose block ends at `block_end`, stops looking
    /// ahead, and whether that gives its final verdict: before the first transaction at or
    /// above the height its delay ends at, when the view reaches it; else at the end of
    /// its own block. Never before the end of its own block (a delay of 0 sees that).
    fn horizon<V: ChainView>(&mut self, view: &V, height: u32, block_end: TxNum) -> (TxNum, bool) {
        let settle = height.saturating_add(self.delay);
        if settle > self.tip {
            return (block_end, false);
        }
        while self.cursor.0 < settle {
            let next = view.tx_block(self.cursor.1).1.end;
            self.cursor = (view.tx_height(next), next);
        }
        (self.cursor.1.max(block_end), true)
    }
}

/// The reading side's state: what it needs to judge transactions in order.
struct Reader {
    params: NetParams,
    change: Option<ChangeReader>,
    /// The block of the last transaction read: its height and transactions.
    block: (u32, std::ops::Range<TxNum>),
    /// The first input whose spent output has not been asked for yet (see `Batch::push`).
    ahead: InNum,
}

/// How many transactions ahead of the one read the outputs their inputs spend are asked
/// for: those are spread over the whole outputs column, and reading them one after
/// another waited on each miss in turn.
const READ_AHEAD: u64 = 16;

/// The change rules' verdict on transaction `t`: a soft link from its input to its one
/// change output, unless it looks like a PayJoin or the change address is an input's.
fn change_link<V: ChainView>(
    view: &V,
    t: TxNum,
    height: u32,
    seen: u32,
    rules: &ChangeRules,
    horizon: TxNum,
) -> Option<SoftLink> {
    let f = TxFacts::of(view as &dyn ChainView, t, seen)?.seeing_spends_before(horizon);
    if f.payjoin_suspect() {
        return None;
    }
    let vout = f.unique_change(&rules.expr)?;
    let (input, change) = (f.input_addr()?, f.output_addr(vout)?);
    (f.eval_atom(Atom::Reuse) >> vout & 1 == 0).then(|| SoftLink {
        tx: t,
        height,
        input,
        change,
        vout,
        agreement: f.agreement(vout),
        state: LinkState::Pending,
    })
}

/// One transaction of a batch.
struct Read<'a> {
    ins: &'a [AddrId],
    vals: &'a [u64],
    outs: &'a [AddrId],
    out_vals: &'a [u64],
    tx: TxRead,
}

impl Batch {
    fn clear(&mut self) {
        self.ins.clear();
        self.vals.clear();
        self.in_end.clear();
        self.outs.clear();
        self.out_vals.clear();
        self.out_end.clear();
        self.txs.clear();
    }

    fn push<V: ChainView>(&mut self, view: &V, t: u64, rd: &mut Reader) {
        let ahead = (t + READ_AHEAD).min(view.tx_count() - 1) as TxNum;
        for i in rd.ahead.max(view.tx_inputs(t as TxNum).start)..view.tx_inputs(ahead).end {
            if let Prevout::Output(o) = view.input_prevout(i) {
                view.prefetch_output(o);
            }
            rd.ahead = i + 1;
        }
        let t = t as TxNum;
        if !rd.block.1.contains(&t) {
            rd.block = view.tx_block(t);
        }
        let o0 = self.outs.len();
        let inputs = view.tx_inputs(t);
        for i in inputs.clone() {
            if let Prevout::Output(o) = view.input_prevout(i) {
                if let Some(a) = view.output_addr(o) {
                    self.ins.push(a);
                    self.vals.push(view.output_value(o));
                }
            }
        }
        self.in_end.push(self.ins.len() as u32);
        for o in view.tx_outputs(t) {
            if let Some(a) = view.output_addr(o) {
                self.outs.push(a);
                self.out_vals.push(view.output_value(o));
            }
        }
        self.out_end.push(self.outs.len() as u32);
        let multi = inputs.end - inputs.start > 1 && !view.is_coinbase(t);
        let height = rd.block.0;
        let coinjoin = if multi {
            detect_coinjoin(view, t, &rd.params).map(|c| c.protocol)
        } else {
            None
        };
        let block_end = rd.block.1.end;
        let (link, provisional) = match &mut rd.change {
            Some(cr) => {
                let (horizon, final_verdict) = cr.horizon(view, height, block_end);
                let link = if coinjoin.is_some() {
                    None
                } else {
                    change_link(view, t, height, cr.seen, &cr.rules, horizon)
                };
                if let Some(m) = self.outs[o0..].iter().max() {
                    cr.seen = cr.seen.max(m + 1);
                }
                (link, !final_verdict)
            }
            None => (None, false),
        };
        self.txs.push(TxRead {
            height,
            multi,
            coinjoin,
            link,
            provisional,
        });
    }

    fn len(&self) -> usize {
        self.txs.len()
    }

    fn get(&self, k: usize) -> Read<'_> {
        let (i0, o0) = if k == 0 {
            (0, 0)
        } else {
            (self.in_end[k - 1] as usize, self.out_end[k - 1] as usize)
        };
        let (i1, o1) = (self.in_end[k] as usize, self.out_end[k] as usize);
        Read {
            ins: &self.ins[i0..i1],
            vals: &self.vals[i0..i1],
            outs: &self.outs[o0..o1],
            out_vals: &self.out_vals[o0..o1],
            tx: self.txs[k],
        }
    }
}

/// Extend `v` to `n` elements, element `i` being `f(i)`; in two halves on two threads when
/// there are millions: the first touch of fresh memory, not the writing, is what costs
/// (the kernel zeroes every page), and two cores fault pages in faster than one.
fn fill_to<T: Send>(v: &mut Vec<T>, n: usize, f: impl Fn(usize) -> T + Sync) {
    let start = v.len();
    if n <= start {
        return;
    }
    v.reserve(n - start);
    let fill = |slots: &mut [std::mem::MaybeUninit<T>], first: usize| {
        for (k, slot) in slots.iter_mut().enumerate() {
            slot.write(f(first + k));
        }
    };
    let spare = &mut v.spare_capacity_mut()[..n - start];
    if spare.len() < 1 << 20 {
        fill(spare, start);
    } else {
        let mid = spare.len() / 2;
        let (a, b) = spare.split_at_mut(mid);
        std::thread::scope(|s| {
            s.spawn(|| fill(a, start));
            fill(b, start + mid);
        });
    }
    // SAFETY: the `n - start` slots after the old length were all written just above
    // (a panic in `f` would leave before this line, with the length unchanged).
    unsafe { v.set_len(n) }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_parts(path, &[bytes])
}

fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    // Saves hold the clustering's lock, so no other saver truncates this file while it is
    // being renamed into place (where another process may map it at once).
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    for p in parts {
        f.write_all(p)?;
    }
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

impl Clustering {
    pub fn new(dir: &Path, params: NetParams) -> Clustering {
        Clustering {
            dir: dir.to_path_buf(),
            covered_txs: 0,
            last_txid: None,
            block_first_txid: None,
            coinjoins_skipped: 0,
            coinjoins_by_protocol: Default::default(),
            parent: Arr::default(),
            next: Arr::default(),
            agg: Arr::default(),
            merges: Arr::default(),
            params,
            change: None,
            touched: Vec::new(),
            progress: None,
            restarted_from: 0,
            fresh_from: 0,
            open_note: None,
            track: Default::default(),
            dirty: Dirty::default(),
            copy_lock: None,
            last_save: Default::default(),
            links_checked: true,
        }
    }

    /// Also keep soft links from these change rules (a new clustering only).
    pub fn with_change(mut self, rules: ChangeRules, delay_blocks: u32) -> Clustering {
        self.change = Some(ChangeLayer::new(rules, delay_blocks));
        self
    }

    /// Open the stored clustering, or start an empty one.
    pub fn open(dir: &Path, params: NetParams) -> std::io::Result<Clustering> {
        Clustering::open_with(dir, params, false)
    }

    /// Open the stored clustering to answer queries: as [`Clustering::open`], but the
    /// change layer's links are mapped, not read (a query never reads them; each is
    /// decoded when first read, and all are checked before `sync` changes anything), so
    /// that opening does not grow with the chain.
    pub fn open_mapped(dir: &Path, params: NetParams) -> std::io::Result<Clustering> {
        Clustering::open_with(dir, params, true)
    }

    fn open_with(dir: &Path, params: NetParams, lazy: bool) -> std::io::Result<Clustering> {
        let _lock = read_lock(dir);
        let mut c = Clustering::open_at(dir, params, lazy)?;
        if c.covered_txs == 0 {
            // Nothing usable here (a damaged copy or state file): the state saved before
            // it (the other copy, or `previous/` of saves before copies).
            let mut p = Clustering::open_at(&previous_dir(dir), params, lazy)?;
            // The save before may be from before a change of setting (`cluster build
            // --change`): then the setting of the last save wins, when it can be read,
            // and the clustering is built again with it.
            let prev = p.change.as_ref().map(ChangeLayer::setting);
            let same = peek_state(dir)
                .is_none_or(|st| st.change.as_ref().map(ChangeState::setting) == prev);
            if p.covered_txs > 0 && same {
                p.dir = dir.to_path_buf();
                let which = if peek_state(dir).is_some() {
                    "the one saved before it"
                } else {
                    "its newest intact copy"
                };
                p.open_note = Some(format!(
                    "the last saved clustering {}; {which} (covering {} transactions) is used",
                    c.open_note.as_deref().unwrap_or("is missing or empty"),
                    p.covered_txs
                ));
                return Ok(p);
            }
        }
        c.open_note = c
            .open_note
            .map(|why| format!("the saved clustering {why}: it is built again from the index"));
        Ok(c)
    }

    /// An empty clustering in `dir`, with why the one saved there was not used.
    fn afresh(dir: &Path, params: NetParams, why: &str) -> Clustering {
        let mut c = Clustering::new(dir, params);
        c.open_note = Some(why.to_string());
        c
    }

    /// Open the state saved in `dir`: the copy its manifest names current, or (a copy's
    /// own directory, or a save from before copies) the files in `dir` itself.
    fn open_at(dir: &Path, params: NetParams, lazy: bool) -> std::io::Result<Clustering> {
        let mut c = Clustering::new(dir, params);
        let state_path = dir.join("state.json");
        let Ok(text) = std::fs::read(&state_path) else {
            return Ok(c);
        };
        // A damaged state file is no saved state: the clustering is derived from the
        // index, so it is rebuilt (or `open` falls back to the previous save), never a
        // dead end.
        let damaged = "has a damaged state file (clusters/state.json)";
        let Ok(man) = serde_json::from_slice::<State>(&text) else {
            return Ok(Clustering::afresh(dir, params, damaged));
        };
        // The manifest names the copy; that copy's own state file must be the same
        // generation (it is written before the manifest, and removed while the copy is
        // written).
        let (files, s, base) = match &man.current {
            Some(name) if valid_copy_name(name) => {
                let cdir = dir.join(name);
                match peek_state(&cdir) {
                    Some(s) if s.gen == man.gen && s.current.is_none() => (
                        cdir,
                        man.clone(),
                        Some(Base {
                            copy: name.clone(),
                            gen: man.gen,
                        }),
                    ),
                    _ => {
                        return Ok(Clustering::afresh(
                            dir,
                            params,
                            "has data files that do not match its state file",
                        ))
                    }
                }
            }
            Some(_) => return Ok(Clustering::afresh(dir, params, damaged)),
            // A copy's own directory (the other copy, opened as the save before): a save
            // of what derives from it can still bring a copy up to date in place.
            None => {
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let base = (valid_copy_name(name) && man.gen > 0).then(|| Base {
                    copy: name.to_string(),
                    gen: man.gen,
                });
                (dir.to_path_buf(), man, base)
            }
        };
        let dir_files = files.as_path();
        // Rebuilt, the clustering keeps its change setting when that still parses.
        let rebuilt = |why: &str| {
            let c = Clustering::afresh(dir, params, why);
            match s
                .change
                .as_ref()
                .and_then(|cs| Some((cs.rules()?, cs.delay_blocks)))
            {
                Some((r, delay)) => c.with_change(r, delay),
                None => c,
            }
        };
        let n = s.addrs;
        if n > u32::MAX as u64 + 1 || s.merges > u32::MAX as u64 * 4 {
            // Not a count this format can hold: a damaged state file. Rebuild.
            return Ok(rebuilt(damaged));
        }
        let cap = s.cap_addrs.unwrap_or(n);
        let cap_merges = s.cap_merges.unwrap_or(s.merges);
        if cap < n || cap > u32::MAX as u64 + 1 || cap_merges < s.merges {
            return Ok(rebuilt(damaged));
        }
        let (next_at, agg_at, len) = array_offsets(cap);
        // A state file without its data files: a save (of the layout before copies) cut
        // short.
        let open = |name: &str| match std::fs::File::open(dir_files.join(name)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let (Some(arrays), Some(merges)) = (open("arrays.bin")?, open("merges.bin")?) else {
            return Ok(rebuilt("was cut short while saving"));
        };
        let layout_ok = s.layout == LAYOUT || (s.layout == 2 && base.is_none());
        if !layout_ok
            || arrays.metadata()?.len() != len
            || merges.metadata()?.len() != cap_merges * std::mem::size_of::<Merge>() as u64
        {
            // Another layout, or files from different commits (the state file is written
            // last): rebuild.
            let why = if !layout_ok {
                "was saved by an older version (another layout)"
            } else {
                "has data files that do not match its state file"
            };
            return Ok(rebuilt(why));
        }
        let n = n as usize;
        // Held while the arrays are mapped: no save writes into this copy meanwhile. One
        // being written (held exclusively) is no saved state to open.
        match arrays.try_lock_shared() {
            Ok(()) => c.copy_lock = Some(arrays.try_clone()?),
            Err(std::fs::TryLockError::WouldBlock) => {
                return Ok(rebuilt("is being written by a save"));
            }
            // A file system without locks: no saver can lock it either (`store.rs`
            // then writes whole copies).
            Err(std::fs::TryLockError::Error(_)) => {}
        }
        c.parent = Arr::map(&arrays, 0, n)?;
        c.next = Arr::map(&arrays, next_at, n)?;
        c.agg = Arr::map(&arrays, agg_at, n)?;
        c.merges = Arr::map(&merges, 0, s.merges as usize)?;
        if let Some(cs) = &s.change {
            let recv_file = open(LAST_RECV)?;
            let recv_len = match &recv_file {
                Some(f) => f.metadata()?.len(),
                None => 0,
            };
            let want_len = (cs.links as usize).checked_mul(SoftLink::BYTES);
            let pending_from = cs.pending_from as usize;
            // Mapped (a query never reads the links; decoded when first read): checked
            // here at both ends and at the pending boundary, in full when decoded to be
            // changed (`sync`). Read and checked in full otherwise, as before.
            let mapped = match (lazy, want_len, open("change_links.bin")?) {
                (true, Some(want), Some(f)) if want > 0 && f.metadata()?.len() >= want as u64 => {
                    // SAFETY: as the arrays: the copy is held (`copy_lock`) while mapped,
                    // and a save never writes into a copy a reader holds.
                    let map = unsafe { memmap2::MmapOptions::new().len(want).map(&f) }?;
                    Some(map)
                }
                _ => None,
            };
            let links = match mapped {
                Some(map) => Links::mapped(map),
                None => {
                    let bytes =
                        read_prefix(&dir_files.join("change_links.bin"), want_len.unwrap_or(0));
                    Links::from(if Some(bytes.len()) == want_len {
                        bytes
                            .chunks(SoftLink::BYTES)
                            .map(SoftLink::from_bytes)
                            .collect::<Vec<_>>()
                    } else {
                        Vec::new()
                    })
                }
            };
            // What the layer relies on: links in chain order, the pending ones a suffix,
            // final verdicts within what is covered. Anything else is a damaged file.
            let sound = links.len() as u64 == cs.links
                && if links.is_mapped() {
                    let at = |k: usize| links.get_one(k);
                    let ends = [
                        0,
                        pending_from.saturating_sub(1),
                        pending_from,
                        links.len() - 1,
                    ];
                    pending_from <= links.len()
                        && ends.iter().all(|&k| {
                            k >= links.len()
                                || at(k).is_some_and(|l| {
                                    link_sound(&l, k, pending_from, s.covered_txs, n)
                                })
                        })
                        && at(0).map(|l| l.tx) <= at(links.len() - 1).map(|l| l.tx)
                } else {
                    links_sound(&links, pending_from, s.covered_txs, n)
                }
                && cs.final_to.is_some_and(|f| f as u64 <= s.covered_txs)
                && recv_len == cap * 4
                && s.cap_links.unwrap_or(cs.links) >= cs.links;
            match (cs.rules(), cs.final_to, cs.final_seen) {
                (Some(rules), Some(final_to), Some(final_seen)) if sound => {
                    c.change = Some(ChangeLayer {
                        rules,
                        delay_blocks: cs.delay_blocks,
                        seen_addrs: cs.seen_addrs,
                        last_recv: match &recv_file {
                            Some(f) => Arr::map(f, 0, n)?,
                            None => Arr::default(),
                        },
                        links,
                        pending_from,
                        final_to,
                        final_seen,
                    });
                }
                _ => {
                    // Torn, unreadable, or from before horizons (its links were judged on
                    // every later spend): rebuild with the same rules when they parse.
                    return Ok(rebuilt(
                        "has change links saved by an older version, or damaged ones",
                    ));
                }
            }
        }
        c.covered_txs = s.covered_txs;
        c.fresh_from = n as AddrId;
        c.block_first_txid = decode_txid(&s.block_first_txid);
        c.last_txid = decode_txid(&s.last_txid);
        c.coinjoins_skipped = s.coinjoins_skipped;
        c.coinjoins_by_protocol = s.coinjoins_by_protocol.clone();
        let links = c.change.as_ref().map_or(0, |ch| ch.links.len() as u64);
        c.links_checked = !c.change.as_ref().is_some_and(|ch| ch.links.is_mapped());
        *c.track.get_mut().unwrap_or_else(|e| e.into_inner()) = Track { base, saved: false };
        c.dirty = Dirty::clean(s.merges, links);
        Ok(c)
    }

    /// Make every array an owned vector and let go of the saved copy they were mapped
    /// from: a clustering that changes is saved into the copies, and must not hold one.
    fn own_arrays(&mut self) {
        if self.copy_lock.is_none() {
            return;
        }
        // The links' map is of the copy let go below.
        if let Some(ch) = self.change.as_mut() {
            ch.links.vec_mut();
        }
        self.parent.vec();
        self.next.vec();
        self.agg.vec();
        self.merges.vec();
        if let Some(ch) = self.change.as_mut() {
            ch.last_recv.vec();
        }
        self.copy_lock = None;
    }

    /// The state file of what is in memory.
    pub(crate) fn state(&self) -> State {
        State {
            covered_txs: self.covered_txs,
            addrs: self.parent.len() as u64,
            merges: self.merges.len() as u64,
            coinjoins_skipped: self.coinjoins_skipped,
            coinjoins_by_protocol: self.coinjoins_by_protocol.clone(),
            rule_set: RULE_SET.into(),
            last_txid: self.last_txid.map(hex::encode),
            block_first_txid: self.block_first_txid.map(hex::encode),
            layout: LAYOUT,
            change: self.change.as_ref().map(|ch| ChangeState {
                rules_name: ch.rules.name.clone(),
                rules: ch.rules.text.clone(),
                delay_blocks: ch.delay_blocks,
                seen_addrs: ch.seen_addrs,
                links: ch.links.len() as u64,
                pending_from: ch.pending_from as u64,
                final_to: Some(ch.final_to),
                final_seen: Some(ch.final_seen),
            }),
            gen: 0,
            cap_addrs: None,
            cap_merges: None,
            cap_links: None,
            current: None,
            other: None,
            other_gen: 0,
        }
    }

    /// Persist: arrays and merge log first, the state file last (atomic renames).
    pub fn save(&self) -> std::io::Result<()> {
        self.save_if(|_| true).map(|_| ())
    }

    /// Save unless another save landed since the one whose token (the content of
    /// [`Clustering::saved_token`]) the caller holds: checked and done under the lock, so
    /// a follower cannot overwrite a clustering that `cluster build --change …` saved
    /// while it waited. Returns the new token, or `None` when it did not save.
    pub fn save_unless_saved_since(
        &self,
        token: &Option<String>,
    ) -> std::io::Result<Option<String>> {
        self.save_if(|now| now == token)
    }

    /// What [`Clustering::saved_stamp`] holds: a token that changes with every completed
    /// save (`None` before the first).
    pub fn saved_token(dir: &Path) -> Option<String> {
        std::fs::read_to_string(Clustering::saved_stamp(dir)).ok()
    }

    fn save_if(&self, go: impl FnOnce(&Option<String>) -> bool) -> std::io::Result<Option<String>> {
        std::fs::create_dir_all(&self.dir)?;
        // One saver at a time (`serve`, `follow` and `cluster build` may all save): the
        // files of one save are never mixed with another's. Released when `_lock` drops.
        // Opened for writing: on NFS an exclusive lock needs it.
        let _lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join("LOCK"))?;
        _lock.lock()?;
        if !go(&Clustering::saved_token(&self.dir)) {
            return Ok(None);
        }
        let rep = self.save_copies()?;
        *self.last_save.lock().unwrap_or_else(|e| e.into_inner()) = Some(rep);
        // Unique to this save (its time and process), so that no two saves look alike.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let token = format!("{} {nanos}-{}\n", self.covered_txs, std::process::id());
        write_atomic(&Clustering::saved_stamp(&self.dir), token.as_bytes())?;
        Ok(Some(token))
    }

    /// Rewritten when a save completes, never during one: what a process serving the
    /// clustering watches to reload it (the state file is absent while a save is under
    /// way, which looked like a change, and reloaded the save before, then this one).
    pub fn saved_stamp(dir: &Path) -> PathBuf {
        dir.join("saved.stamp")
    }

    /// Whether `dir` holds a saved clustering (or the one before it, which `open` falls
    /// back to).
    pub fn saved_exists(dir: &Path) -> bool {
        dir.join("state.json").exists() || previous_dir(dir).join("state.json").exists()
    }

    /// What the last save by this clustering wrote (whole copy or pages, bytes).
    pub fn last_save(&self) -> Option<crate::store::SaveReport> {
        self.last_save
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn grow(&mut self, n: usize) {
        let old = self.parent.len();
        if n <= old {
            return;
        }
        self.after_save();
        let d = &mut self.dirty;
        let pages = |shift: u32| (old >> shift, (n - 1) / (1 << shift) + 1);
        let (a, b) = pages(U32_SHIFT);
        d.parent.set_range(a, b);
        d.next.set_range(a, b);
        d.agg
            .set_range((old * AGG) >> 12, ((n - 1) * AGG >> 12) + 1);
        if self.parent.vec().capacity() < n {
            // Room for all at once (a first build knows the final count), or half as much
            // again when following the tip, so blocks do not reallocate. In 4 KB pages:
            // asking for 2 MB pages (MADV_HUGEPAGE) made the kernel compact memory on each
            // fault when the page cache had fragmented it, and the first touch of 1 GB took
            // 0.9-1.3 s instead of 0.2 s, for no faster merging.
            let want = n.max(self.parent.len() * 3 / 2);
            self.parent.own_with_capacity(want);
            self.next.own_with_capacity(want);
            self.agg.own_with_capacity(want);
        }
        fill_to(self.parent.vec(), n, |i| i as u32);
        fill_to(self.next.vec(), n, |i| i as u32);
        fill_to(self.agg.vec(), n, |i| Agg {
            received: 0,
            sent: 0,
            size: 1,
            min_id: i as u32,
            txs: 0,
            first: u32::MAX,
            last: 0,
            _pad: 0,
        });
    }

    pub fn find(&mut self, a: AddrId) -> AddrId {
        self.after_save();
        self.find_root(a)
    }

    /// What a save wrote is no longer dirty: cleared before the first change after it.
    #[inline]
    pub(crate) fn after_save(&mut self) {
        let t = self.track.get_mut().unwrap_or_else(|e| e.into_inner());
        if t.saved {
            t.saved = false;
            let links = self.change.as_ref().map_or(0, |c| c.links.len() as u64);
            self.dirty = Dirty::clean(self.merges.len() as u64, links);
        }
    }

    fn find_root(&mut self, mut a: AddrId) -> AddrId {
        let dirty = &mut self.dirty;
        while self.parent[a as usize] != a {
            let p = self.parent[a as usize];
            let gp = self.parent[p as usize];
            if gp != p {
                self.parent[a as usize] = gp;
                dirty.parent.set(a as usize >> U32_SHIFT);
            }
            a = p;
        }
        a
    }

    /// The aggregates of `r`, to change (its page is marked for the next save).
    #[inline]
    fn agg_mut(&mut self, r: AddrId) -> &mut Agg {
        self.dirty.agg.set_agg(r as usize);
        &mut self.agg[r as usize]
    }

    fn root(&self, mut a: AddrId) -> AddrId {
        while self.parent[a as usize] != a {
            a = self.parent[a as usize];
        }
        a
    }

    pub(crate) fn union(&mut self, a: AddrId, b: AddrId, tx: TxNum) {
        self.after_save();
        let (ra, rb) = (self.find_root(a), self.find_root(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.agg[ra as usize].size >= self.agg[rb as usize].size {
            (ra, rb)
        } else {
            (rb, ra)
        };
        let (bi, si) = (big as usize, small as usize);
        self.parent[si] = big;
        let d = &mut self.dirty;
        d.parent.set(si >> U32_SHIFT);
        d.next.set(si >> U32_SHIFT);
        d.next.set(bi >> U32_SHIFT);
        let sm = self.agg[si];
        let g = self.agg_mut(big);
        g.size += sm.size;
        g.min_id = g.min_id.min(sm.min_id);
        g.received += sm.received;
        g.sent += sm.sent;
        g.txs += sm.txs;
        g.first = g.first.min(sm.first);
        g.last = g.last.max(sm.last);
        self.next.swap(bi, si);
        self.merges.vec().push(Merge { tx, a, b });
    }

    /// Apply the transactions the view has beyond what is covered. Generic over the view:
    /// on the index, its column reads inline into the loop.
    pub fn update<V: ChainView + Sync>(&mut self, view: &V) {
        self.apply_until(view, view.tx_count());
    }

    /// Apply transactions `covered_txs..end`.
    fn apply_until<V: ChainView + Sync>(&mut self, view: &V, end: u64) {
        if end < self.covered_txs {
            // A view shorter than what is covered: `sync` undoes the difference first.
            return;
        }
        self.after_save();
        if end > self.covered_txs {
            self.own_arrays();
        }
        self.grow(view.addr_count() as usize);
        if let Some(ch) = self.change.as_mut() {
            let (old, n) = (ch.last_recv.len(), view.addr_count() as usize);
            if n > old {
                let d = &mut self.dirty;
                d.recv
                    .set_range(old >> U32_SHIFT, (n - 1) / (1 << U32_SHIFT) + 1);
            }
            ch.last_recv.vec().resize(n, 0);
        }
        self.rejudge(view, end);
        let mut touched = std::mem::take(&mut self.touched);
        if end.saturating_sub(self.covered_txs) >= PIPELINE_MIN_TXS {
            self.apply_pipelined(view, end, &mut touched);
        } else {
            let mut batch = Batch::default();
            let mut rd = self.reader(view, end);
            for t in self.covered_txs..end {
                batch.clear();
                batch.push(view, t, &mut rd);
                self.apply(t as TxNum, &batch.get(0), &mut touched);
            }
            self.report(end - self.covered_txs, end - self.covered_txs);
        }
        self.touched = touched;
        self.covered_txs = end;
        self.last_txid = (end > 0).then(|| view.txid((end - 1) as TxNum));
        self.block_first_txid = (end > 0).then(|| view.txid(block_first(view, end - 1)));
        if let (Some(ch), true) = (self.change.as_mut(), end > 0) {
            let pf = ch.pending_from;
            ch.settle(view.tx_height((end - 1) as TxNum));
            if ch.pending_from != pf {
                let d = &mut self.dirty;
                d.links_from = d.links_from.min(pf as u64);
            }
        }
    }

    /// Whether what is covered is still a prefix of `view`'s chain: false after a
    /// reorganisation removed covered transactions, even if as many came back.
    pub fn is_prefix_of<V: ChainView>(&self, view: &V) -> bool {
        prefix_of(
            self.covered_txs,
            self.last_txid,
            self.block_first_txid,
            view,
        )
    }

    /// Bring the clustering to `view`'s tip: undo a reorganisation if one happened, then
    /// apply what is new. Returns whether anything changed.
    pub fn sync<V: ChainView + Sync>(&mut self, view: &V) -> bool {
        let behind = !self.is_prefix_of(view) || self.covered_txs < view.tx_count();
        if behind && !self.links_checked {
            // Opened for queries with the links mapped: every link is checked before the
            // layer is changed, as `open` checks them.
            self.links_checked = true;
            let n = self.parent.len();
            let covered = self.covered_txs;
            if let Some(ch) = self.change.as_ref() {
                if !links_sound(&ch.links, ch.pending_from, covered, n) {
                    let why = "has change links saved by an older version, or damaged ones";
                    let rules = (ch.rules.clone(), ch.delay_blocks);
                    let progress = self.progress.take();
                    *self = Clustering::afresh(&self.dir, self.params, why)
                        .with_change(rules.0, rules.1);
                    self.progress = progress;
                    self.open_note = Some(format!(
                        "the saved clustering {why}: it is built again from the index"
                    ));
                }
            }
        }
        if !self.is_prefix_of(view) {
            self.rollback_to(view, view.tx_count());
            true
        } else if self.covered_txs < view.tx_count() {
            self.update(view);
            true
        } else {
            false
        }
    }

    /// Read blocks of transactions on a second thread (columns, CoinJoin detection) while
    /// this one merges and maintains the aggregates: the two halves take similar time, and
    /// the machines this runs on have two cores.
    fn apply_pipelined<V: ChainView + Sync>(
        &mut self,
        view: &V,
        end: u64,
        touched: &mut Vec<AddrId>,
    ) {
        const BATCH: u64 = 4096;
        let start = self.covered_txs;
        let mut rd = self.reader(view, end);
        let (send, recv) = std::sync::mpsc::sync_channel::<Batch>(8);
        let (back, spare) = std::sync::mpsc::channel::<Batch>();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut b = start;
                while b < end {
                    let e = (b + BATCH).min(end);
                    let mut batch = spare.try_recv().unwrap_or_default();
                    batch.clear();
                    for t in b..e {
                        batch.push(view, t, &mut rd);
                    }
                    if send.send(batch).is_err() {
                        return;
                    }
                    b = e;
                }
            });
            let mut t = start;
            for batch in recv {
                for k in 0..batch.len() {
                    self.apply(t as TxNum, &batch.get(k), touched);
                    t += 1;
                }
                self.report(t - start, end - start);
                let _ = back.send(batch);
            }
        });
    }

    /// Give the transactions judged provisionally their final verdicts where the chain
    /// now reaches the end of their delay. Their links are still pending (they settle when
    /// the transaction at the end of the delay is applied), so they are replaced.
    fn rejudge<V: ChainView>(&mut self, view: &V, end: u64) {
        let covered = self.covered_txs;
        let Some(ch) = self.change.as_ref() else {
            return;
        };
        let from = ch.final_to;
        if from as u64 >= covered {
            return;
        }
        let mut rd = Reader {
            params: self.params,
            change: Some(ChangeReader::new(ch, ch.final_seen, view, from, end)),
            block: (0, 0..0),
            ahead: 0,
        };
        let (mut batch, mut judged, mut t) = (Batch::default(), Vec::new(), from as u64);
        let mut seen = ch.final_seen;
        while t < covered {
            batch.clear();
            batch.push(view, t, &mut rd);
            let tx = batch.get(0).tx;
            if tx.provisional {
                break;
            }
            judged.extend(tx.link);
            seen = rd.change.as_ref().map_or(seen, |cr| cr.seen);
            t += 1;
        }
        let ch = self.change.as_mut().expect("checked above");
        let at = ch.links.partition_point(|l| l.tx < from);
        let end = ch.links.partition_point(|l| (l.tx as u64) < t);
        ch.links.vec_mut().splice(at..end, judged);
        let d = &mut self.dirty;
        d.links_from = d.links_from.min(at as u64);
        ch.final_to = t as TxNum;
        ch.final_seen = seen;
    }

    /// What reading ahead needs of the clustering's state at its start.
    fn reader<V: ChainView>(&self, view: &V, end: u64) -> Reader {
        let from = self.covered_txs as TxNum;
        Reader {
            params: self.params,
            change: self
                .change
                .as_ref()
                .map(|ch| ChangeReader::new(ch, ch.seen_addrs, view, from, end)),
            block: (0, 0..0),
            ahead: 0,
        }
    }

    fn report(&self, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            p(done, total);
        }
    }

    fn apply(&mut self, t: TxNum, read: &Read, touched: &mut Vec<AddrId>) {
        let tx = read.tx;
        touched.clear();
        let (ins, vals) = (read.ins, read.vals);
        let coinjoin = tx.coinjoin.is_some();
        if let Some(p) = tx.coinjoin {
            match self.coinjoins_by_protocol.get_mut(p) {
                Some(n) => *n += 1,
                None => {
                    self.coinjoins_by_protocol.insert(p.to_string(), 1);
                }
            }
            if ins.len() > 1 {
                self.coinjoins_skipped += 1;
            }
        }
        // What the inputs spent goes to their roots after the unions: one root for all of
        // them when they were joined, which saves a find per input.
        if tx.multi && !coinjoin && ins.len() > 1 {
            for &b in &ins[1..] {
                self.union(ins[0], b, t);
            }
            let r = self.find_root(ins[0]);
            self.agg_mut(r).sent += vals.iter().sum::<u64>();
            touched.push(r);
        } else {
            for (&a, &v) in ins.iter().zip(vals.iter()) {
                let r = self.find_root(a);
                self.agg_mut(r).sent += v;
                touched.push(r);
            }
        }
        if let Some(ch) = self.change.as_mut() {
            let d = &mut self.dirty;
            let h = tx.height;
            let pf = ch.pending_from;
            ch.settle(h);
            if ch.pending_from != pf {
                d.links_from = d.links_from.min(pf as u64);
            }
            for &a in read.outs {
                if ch.last_recv[a as usize] != t {
                    ch.last_recv[a as usize] = t;
                    d.recv.set(a as usize >> U32_SHIFT);
                }
                ch.seen_addrs = ch.seen_addrs.max(a + 1);
            }
            if tx.link.is_some() {
                d.links_from = d.links_from.min(ch.links.len() as u64);
            }
            ch.links.vec_mut().extend(tx.link);
            if !tx.provisional && ch.final_to == t {
                ch.final_to = t + 1;
                ch.final_seen = ch.seen_addrs;
            }
        }
        let h = tx.height;
        // Outputs paying addresses for the first time (most of them) credit their own
        // records: no find, and no sorting them among the roots touched. Unless one such
        // address is paid twice here (its ids not increasing), which the general way counts
        // once.
        let fresh_from = self.fresh_from;
        let mut prev = None;
        let firsts_apart = read.outs.iter().all(|&a| {
            a < fresh_from || {
                let ok = prev.is_none_or(|p| a > p);
                prev = Some(a);
                ok
            }
        });
        for (&a, &v) in read.outs.iter().zip(read.out_vals.iter()) {
            if firsts_apart && a >= fresh_from {
                let g = self.agg_mut(a);
                g.received += v;
                g.txs += 1;
                g.first = g.first.min(h);
                g.last = g.last.max(h);
                continue;
            }
            let r = self.find_root(a);
            self.agg_mut(r).received += v;
            touched.push(r);
        }
        if let Some(&m) = read.outs.iter().max() {
            self.fresh_from = fresh_from.max(m + 1);
        }
        if touched.is_empty() {
            return;
        }
        if touched.len() > 1 {
            touched.sort_unstable();
            touched.dedup();
        }
        for &r in touched.iter() {
            let g = self.agg_mut(r);
            g.txs += 1;
            g.first = g.first.min(h);
            g.last = g.last.max(h);
        }
    }

    /// Undo what transactions from `tx_count` on merged (a reorganisation). Union-find
    /// cannot be undone in place, so this starts again from the newest saved state that is
    /// still a prefix of `view` (the last save, or the one before it, kept in `previous/`)
    /// with the same change setting, else from nothing, and applies the chain up to
    /// `tx_count`. `restarted_from` says which.
    pub fn rollback_to<V: ChainView + Sync>(&mut self, view: &V, tx_count: u64) {
        let params = self.params;
        let dir = self.dir.clone();
        let target = tx_count.min(view.tx_count());
        let setting = self.change.as_ref().map(ChangeLayer::setting);
        let progress = self.progress.take();
        let lock = read_lock(&dir);
        let saved = [dir.clone(), previous_dir(&dir)].into_iter().find_map(|d| {
            // Judged on the state file first: opening reads the change layer's files.
            let s = peek_state(&d)?;
            let (last, first) = (
                decode_txid(&s.last_txid)?,
                decode_txid(&s.block_first_txid)?,
            );
            let same = s.change.as_ref().map(ChangeState::setting) == setting;
            let fits = s.covered_txs > 0 && s.covered_txs <= target;
            if !(same && fits && prefix_of(s.covered_txs, Some(last), Some(first), view)) {
                return None;
            }
            let c = Clustering::open_at(&d, params, false).ok()?;
            (c.covered_txs == s.covered_txs && c.last_txid == Some(last)).then_some(c)
        });
        drop(lock);
        let name = self.change.as_ref().map(|c| c.rules.name.clone());
        match saved {
            Some(c) => {
                *self = c;
                if let (Some(ch), Some(name)) = (self.change.as_mut(), name) {
                    ch.rules.name = name;
                }
            }
            None => {
                let change = self.change.take();
                *self = Clustering::new(&dir, params);
                self.change = change.map(|c| ChangeLayer::new(c.rules, c.delay_blocks));
            }
        }
        self.dir = dir;
        self.restarted_from = self.covered_txs;
        self.progress = progress;
        self.apply_until(view, target);
    }

    /// The hard cluster's root (internal; stable only until the next merge).
    pub fn root_of(&self, a: AddrId) -> AddrId {
        self.root(a)
    }

    /// Addresses in `a`'s hard cluster.
    pub fn size_of(&self, a: AddrId) -> u32 {
        self.agg[self.root(a) as usize].size
    }

    /// The cluster id: the smallest address id in the cluster, stable as clusters grow.
    pub fn cluster_of(&self, a: AddrId) -> AddrId {
        self.agg[self.root(a) as usize].min_id
    }

    pub fn summary(&self, a: AddrId) -> Summary {
        let r = self.root(a) as usize;
        Summary {
            cluster_id: self.agg[r].min_id,
            size: self.agg[r].size,
            balance: self.agg[r].received.saturating_sub(self.agg[r].sent),
            received: self.agg[r].received,
            sent: self.agg[r].sent,
            tx_count: self.agg[r].txs,
            first_seen_height: self.agg[r].first,
            last_seen_height: self.agg[r].last,
        }
    }

    /// A page of a cluster's addresses (in member-list order).
    pub fn addresses(&self, a: AddrId, offset: usize, limit: usize) -> Vec<AddrId> {
        let mut out = Vec::new();
        let mut cur = a;
        let mut k = 0usize;
        loop {
            if k >= offset && out.len() < limit {
                out.push(cur);
            }
            k += 1;
            cur = self.next[cur as usize];
            if cur == a || out.len() >= limit {
                break;
            }
        }
        out
    }

    pub fn addr_count(&self) -> usize {
        self.parent.len()
    }

    /// A digest (FNV-1a) of every byte a save writes: the arrays, the merge log, the
    /// change layer and the counters of the state file. A clustering saved and opened
    /// again has the digest it had in memory (`tests/save.rs`).
    pub fn saved_digest(&self) -> u64 {
        let mut h = 0xcbf29ce484222325u64;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ x as u64).wrapping_mul(0x100000001b3);
            }
        };
        eat(self.parent.as_bytes());
        eat(self.next.as_bytes());
        eat(self.agg.as_bytes());
        eat(self.merges.as_bytes());
        if let Some(ch) = &self.change {
            eat(ch.last_recv.as_bytes());
            for l in ch.links.iter() {
                eat(&l.to_bytes());
            }
            let c = [
                ch.seen_addrs,
                ch.pending_from as u32,
                ch.final_to,
                ch.final_seen,
            ];
            eat(c.as_bytes());
        }
        eat(self.covered_txs.as_bytes());
        eat(self.coinjoins_skipped.as_bytes());
        eat(&self.last_txid.unwrap_or_default());
        eat(&self.block_first_txid.unwrap_or_default());
        h
    }

    /// The merges that join `a` to `b` (shortest chain in the merge graph), or `None` when
    /// they are in different clusters.
    pub fn explain(
        &self,
        view: &dyn ChainView,
        a: AddrId,
        b: AddrId,
        render: &dyn Fn(AddrId) -> String,
    ) -> Option<Vec<MergeStep>> {
        if self.root(a) != self.root(b) {
            return None;
        }
        if a == b {
            return Some(vec![]);
        }
        let path = shortest_path(self.merges.iter().map(|m| (m.a, m.b, m.tx)), a, b)?;
        Some(
            path.into_iter()
                .map(|(near, far, t)| MergeStep {
                    txid: display_txid(view.txid(t)),
                    height: view.tx_height(t),
                    from: render(near),
                    to: render(far),
                    rule: "multi-input".into(),
                })
                .collect(),
        )
    }
}

/// The fewest-edge path from `from` to `to` over undirected `edges` `(a, b, label)`: the
/// edges crossed in walking order, each as `(near, far, label)`; `None` when unreachable.
pub(crate) fn shortest_path<E: Copy>(
    edges: impl Iterator<Item = (AddrId, AddrId, E)>,
    from: AddrId,
    to: AddrId,
) -> Option<Vec<(AddrId, AddrId, E)>> {
    use std::collections::{HashMap, VecDeque};
    let mut adj: HashMap<AddrId, Vec<(AddrId, E)>> = HashMap::new();
    for (a, b, e) in edges {
        adj.entry(a).or_default().push((b, e));
        adj.entry(b).or_default().push((a, e));
    }
    let mut prev: HashMap<AddrId, (AddrId, E)> = HashMap::new();
    let mut q = VecDeque::from([from]);
    while let Some(x) = q.pop_front() {
        if x == to {
            break;
        }
        for &(y, e) in adj.get(&x).into_iter().flatten() {
            if y != from && !prev.contains_key(&y) {
                prev.insert(y, (x, e));
                q.push_back(y);
            }
        }
    }
    let mut path = Vec::new();
    let mut cur = to;
    while cur != from {
        let &(p, e) = prev.get(&cur)?;
        path.push((p, cur, e));
        cur = p;
    }
    path.reverse();
    Some(path)
}

#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    /// True entities sharing a cluster with another entity.
    pub entities_falsely_merged: u64,
    pub entities: u64,
    pub largest_cluster: u64,
    pub clusters: u64,
}

/// Pairwise precision and recall of co-clustering against the true owners (addresses
/// without an owner are left out), by contingency counts: O(addresses).
pub fn pairwise_scores(c: &Clustering, owner: &[Option<u32>]) -> Scores {
    scores_by(c.addr_count(), owner, |a| c.cluster_of(a))
}

/// The same for any grouping of the first `n` addresses (`group` names each one's group).
pub fn scores_by(n: usize, owner: &[Option<u32>], group: impl Fn(AddrId) -> u32) -> Scores {
    use std::collections::HashMap;
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let mut cell: HashMap<(u32, u32), u64> = HashMap::new();
    let mut by_cluster: HashMap<u32, u64> = HashMap::new();
    let mut by_owner: HashMap<u32, u64> = HashMap::new();
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for a in 0..n {
        let k = group(a as u32);
        *sizes.entry(k).or_default() += 1;
        let Some(Some(o)) = owner.get(a) else {
            continue;
        };
        *cell.entry((k, *o)).or_default() += 1;
        *by_cluster.entry(k).or_default() += 1;
        *by_owner.entry(*o).or_default() += 1;
    }
    let tp: u64 = cell.values().map(|&n| pairs(n)).sum();
    let pred: u64 = by_cluster.values().map(|&n| pairs(n)).sum();
    let truth: u64 = by_owner.values().map(|&n| pairs(n)).sum();
    let mut owners_in: HashMap<u32, u64> = HashMap::new();
    for (k, _) in cell.keys() {
        *owners_in.entry(*k).or_default() += 1;
    }
    let mut merged: std::collections::HashSet<u32> = Default::default();
    for (k, o) in cell.keys() {
        if owners_in[k] > 1 {
            merged.insert(*o);
        }
    }
    Scores {
        precision: if pred == 0 {
            1.0
        } else {
            tp as f64 / pred as f64
        },
        recall: if truth == 0 {
            1.0
        } else {
            tp as f64 / truth as f64
        },
        entities_falsely_merged: merged.len() as u64,
        entities: by_owner.len() as u64,
        largest_cluster: sizes.values().copied().max().unwrap_or(0),
        clusters: sizes.len() as u64,
    }
}
