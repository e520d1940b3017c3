//! Rule evaluation, one block at a time, with an undo log so a reorganisation puts every
//! rule's state back as it was at the fork before the new branch is evaluated.

use crate::hooks::{FlaggedAddress, Hooks};
use crate::rules::{self, Rule, RuleKind};
use crate::store::*;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Network};
use cointrail_chain::{AddrId, AddressKey, ChainView, Prevout, TxNum};
use cointrail_index::query::display_txid;
use cointrail_index::Index;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Blocks of undo kept: deeper reorganisations than this need `alerts rewind`.
pub const UNDO_DEPTH: u32 = 2016;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct FrontierEntry {
    hops: u32,
    sats: u64,
    /// The watched output this one descends from.
    root: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct TracedState {
    frontier: BTreeMap<String, FrontierEntry>,
    /// Outputs already reported spent (so the case's frontier cannot re-add them).
    done: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct DrainState {
    /// (height, sent out, received) by the set per block; only the window is kept. A list,
    /// not a map: JSON map keys are strings, which tagged enums cannot read back as numbers.
    flows: Vec<(u32, u64, u64)>,
    last_fired: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case")]
enum RuleState {
    Traced(TracedState),
    Drain(DrainState),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UndoRecord {
    /// Rule id → its state before the block (`None`: it had none).
    states: BTreeMap<String, Option<RuleState>>,
    alerts: Vec<String>,
}

/// A block's bookkeeping, committed with its alerts: (height, hash, undo, new rule states).
type BlockCommit = (u32, [u8; 32], UndoRecord, Vec<(String, RuleState)>);

#[derive(Debug, Default, Serialize)]
pub struct EngineReport {
    pub blocks_evaluated: u32,
    pub rolled_back_to: Option<u32>,
    pub alerts: Vec<Alert>,
    pub warnings: Vec<String>,
}

/// `sha256(rule id, 0, txid:vout)` truncated to 128 bits: the same event always gets the
/// same id.
pub fn alert_id(rule_id: &str, txid: &str, vout: u32) -> String {
    let h = Sha256::new()
        .chain_update(rule_id.as_bytes())
        .chain_update([0u8])
        .chain_update(format!("{txid}:{vout}").as_bytes())
        .finalize();
    hex::encode(&h[..16])
}

/// Where an alert's event lives, before it gets a sequence number.
pub(crate) struct Fired {
    pub(crate) rule_id: String,
    pub(crate) kind: &'static str,
    pub(crate) txid: String,
    pub(crate) vout: Option<u32>,
    pub(crate) id_vout: u32,
    pub(crate) summary: String,
    pub(crate) details: Value,
    pub(crate) height: u32,
    pub(crate) block_hash: String,
}

pub struct AlertEngine {
    store: Arc<AlertStore>,
    pub(crate) hooks: Hooks,
    live: broadcast::Sender<Alert>,
    waker: Option<std::sync::mpsc::Sender<()>>,
    flagged_cache: Option<HashMap<AddressKey, FlaggedAddress>>,
}

impl AlertEngine {
    pub fn open(data_dir: &Path, hooks: Hooks) -> Result<AlertEngine, StoreError> {
        Ok(AlertEngine::with_store(
            Arc::new(AlertStore::open(data_dir)?),
            hooks,
        ))
    }

    pub fn with_store(store: Arc<AlertStore>, hooks: Hooks) -> AlertEngine {
        AlertEngine {
            store,
            hooks,
            live: broadcast::channel(1024).0,
            waker: None,
            flagged_cache: None,
        }
    }

    pub fn store(&self) -> &Arc<AlertStore> {
        &self.store
    }

    /// Live stream of new alerts (after they are durable), for the service's SSE endpoint.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.live.subscribe()
    }

    /// Poked after every commit that queued webhook deliveries.
    pub fn set_delivery_waker(&mut self, w: std::sync::mpsc::Sender<()>) {
        self.waker = Some(w);
    }

    /// Store a rule (checked first). It applies to blocks after the index's current tip.
    pub fn add_rule(
        &mut self,
        index: &Index,
        id: Option<String>,
        kind: RuleKind,
        note: String,
    ) -> Result<Rule, StoreError> {
        let network = index.render_network();
        rules::validate(&kind, network).map_err(StoreError::Invalid)?;
        if let RuleKind::TracedSpend {
            case: Some(c),
            outpoints,
            ..
        } = &kind
        {
            match &self.hooks.taint {
                Some(t) if t.watched_outputs(c).is_none() => {
                    return Err(StoreError::Invalid(format!("no case named {c:?}")));
                }
                None if outpoints.is_empty() => {
                    return Err(StoreError::Invalid(format!(
                        "case {c:?}: this program has no trace hook to read a case's outputs from; give the outputs with --outpoint TXID:VOUT"
                    )));
                }
                _ => {}
            }
        }
        let existing = self.store.rules()?;
        let id = match id {
            Some(i) => {
                if i.is_empty() || i.len() > 64 || i.contains(char::is_whitespace) {
                    return Err(StoreError::Invalid(format!(
                        "rule id {i:?} must be 1-64 characters without spaces"
                    )));
                }
                if existing.iter().any(|r| r.id == i) {
                    return Err(StoreError::Invalid(format!(
                        "a rule named {i} exists already"
                    )));
                }
                i
            }
            None => (1..)
                .map(|n| format!("rule-{n}"))
                .find(|c| !existing.iter().any(|r| &r.id == c))
                .expect("unbounded"),
        };
        let start = self
            .store
            .cursor()?
            .map(|c| c.0)
            .or(index.tip_height())
            .unwrap_or(0);
        let rule = Rule {
            id: id.clone(),
            kind,
            start_height: start,
            note,
            evm_start: self.evm_cursor()?.map(|c| c.0),
        };
        let state = self.initial_state(index, &rule);
        let s = &self.store;
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        {
            w.open_table(RULES)
                .map_err(|e| s.err(e))?
                .insert(id.as_str(), to_json(&rule).as_slice())
                .map_err(|e| s.err(e))?;
            if let Some(st) = state {
                w.open_table(RULE_STATE)
                    .map_err(|e| s.err(e))?
                    .insert(id.as_str(), to_json(&st).as_slice())
                    .map_err(|e| s.err(e))?;
            }
        }
        w.commit().map_err(|e| s.err(e))?;
        Ok(rule)
    }

    pub fn remove_rule(&mut self, id: &str) -> Result<(), StoreError> {
        let s = &self.store;
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        let found = w
            .open_table(RULES)
            .map_err(|e| s.err(e))?
            .remove(id)
            .map_err(|e| s.err(e))?
            .is_some();
        w.open_table(RULE_STATE)
            .map_err(|e| s.err(e))?
            .remove(id)
            .map_err(|e| s.err(e))?;
        w.commit().map_err(|e| s.err(e))?;
        if !found {
            return Err(StoreError::NotFound(format!("no rule named {id}")));
        }
        Ok(())
    }

    fn initial_state(&self, _index: &Index, rule: &Rule) -> Option<RuleState> {
        match &rule.kind {
            RuleKind::TracedSpend {
                case, outpoints, ..
            } => {
                let mut st = TracedState::default();
                for o in outpoints {
                    let (t, v) = rules::parse_outpoint(o).expect("validated");
                    let k = format!("{t}:{v}");
                    st.frontier.insert(
                        k.clone(),
                        FrontierEntry {
                            hops: 0,
                            sats: 0,
                            root: k,
                        },
                    );
                }
                if let (Some(c), Some(t)) = (case, &self.hooks.taint) {
                    for w in t.watched_outputs(c).unwrap_or_default() {
                        let k = format!("{}:{}", w.txid, w.vout);
                        st.frontier.insert(
                            k.clone(),
                            FrontierEntry {
                                hops: 0,
                                sats: w.sats,
                                root: k,
                            },
                        );
                    }
                }
                Some(RuleState::Traced(st))
            }
            RuleKind::Drain { .. } => Some(RuleState::Drain(DrainState::default())),
            _ => None,
        }
    }

    /// Bring the rules up to the index's tip: undo what a reorganisation removed, then
    /// evaluate every block not yet evaluated. The first call on a fresh store starts at the
    /// tip (history is not alerted on).
    pub fn sync(&mut self, index: &Index) -> Result<EngineReport, StoreError> {
        let mut rep = EngineReport::default();
        let Some(tip) = index.tip_height() else {
            return Ok(rep);
        };
        let start = index.start_height();
        let hash_at = |h: u32| -> Option<[u8; 32]> {
            (h >= start && h <= tip).then(|| index.block_hash((h - start) as u64))
        };
        let Some((cur, cur_hash)) = self.store.cursor()? else {
            let s = &self.store;
            let db = s.db()?;
            let w = db.begin_write().map_err(|e| s.err(e))?;
            w.open_table(PROCESSED)
                .map_err(|e| s.err(e))?
                .insert(tip, hash_at(tip).expect("tip").as_slice())
                .map_err(|e| s.err(e))?;
            w.commit().map_err(|e| s.err(e))?;
            return Ok(rep);
        };
        let mut common = cur;
        if hash_at(cur) != Some(cur_hash) {
            let processed = self.processed_map()?;
            loop {
                if common == 0 || !processed.contains_key(&(common - 1)) {
                    return Err(StoreError::Invalid(format!(
                        "the index left the chain the alerts were evaluated on more than {UNDO_DEPTH} blocks deep (at height {common}); the rule state cannot be undone that far"
                    )));
                }
                common -= 1;
                if hash_at(common) == processed.get(&common).copied() {
                    break;
                }
            }
            self.rollback(common, cur)?;
            rep.rolled_back_to = Some(common);
        }
        let network = index.render_network();
        for h in common + 1..=tip {
            let fired = self.eval_block(index, network, h, &mut rep.warnings)?;
            rep.alerts.extend(fired);
            rep.blocks_evaluated += 1;
        }
        Ok(rep)
    }

    fn processed_map(&self) -> Result<HashMap<u32, [u8; 32]>, StoreError> {
        let s = &self.store;
        let db = s.db()?;
        let r = redb::ReadableDatabase::begin_read(&*db).map_err(|e| s.err(e))?;
        let t = r.open_table(PROCESSED).map_err(|e| s.err(e))?;
        let mut m = HashMap::new();
        for row in t.iter().map_err(|e| s.err(e))? {
            let (k, v) = row.map_err(|e| s.err(e))?;
            m.insert(k.value(), v.value().try_into().expect("32 bytes"));
        }
        Ok(m)
    }

    /// Undo blocks `common+1 ..= cur`: restore rule states, mark their alerts orphaned.
    fn rollback(&mut self, common: u32, cur: u32) -> Result<(), StoreError> {
        let s = &self.store;
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        {
            let mut undo = w.open_table(UNDO).map_err(|e| s.err(e))?;
            let mut states = w.open_table(RULE_STATE).map_err(|e| s.err(e))?;
            let mut alerts = w.open_table(ALERTS).map_err(|e| s.err(e))?;
            let mut processed = w.open_table(PROCESSED).map_err(|e| s.err(e))?;
            for h in (common + 1..=cur).rev() {
                let rec = undo.remove(h).map_err(|e| s.err(e))?;
                processed.remove(h).map_err(|e| s.err(e))?;
                let Some(rec) = rec else { continue };
                let rec: UndoRecord = serde_json::from_slice(rec.value()).map_err(|e| s.err(e))?;
                for (rule, st) in rec.states {
                    match st {
                        Some(st) => states
                            .insert(rule.as_str(), to_json(&st).as_slice())
                            .map_err(|e| s.err(e))?,
                        None => states.remove(rule.as_str()).map_err(|e| s.err(e))?,
                    };
                }
                for id in rec.alerts {
                    let a = alerts
                        .get(id.as_str())
                        .map_err(|e| s.err(e))?
                        .map(|v| v.value().to_vec());
                    let Some(a) = a else { continue };
                    let mut a: Alert = serde_json::from_slice(&a).map_err(|e| s.err(e))?;
                    a.orphaned = true;
                    alerts
                        .insert(id.as_str(), to_json(&a).as_slice())
                        .map_err(|e| s.err(e))?;
                }
            }
        }
        w.commit().map_err(|e| s.err(e))
    }

    fn load_state(&self, id: &str) -> Result<Option<RuleState>, StoreError> {
        let s = &self.store;
        let db = s.db()?;
        let r = redb::ReadableDatabase::begin_read(&*db).map_err(|e| s.err(e))?;
        let t = r.open_table(RULE_STATE).map_err(|e| s.err(e))?;
        let v = t.get(id).map_err(|e| s.err(e))?;
        v.map(|v| serde_json::from_slice(v.value()).map_err(|e| s.err(e)))
            .transpose()
    }

    fn addr_set(
        &self,
        index: &Index,
        network: Network,
        addresses: &[String],
        entity: &Option<String>,
        warnings: &mut Vec<String>,
        rule_id: &str,
    ) -> HashSet<AddrId> {
        let mut all: Vec<String> = addresses.to_vec();
        if let Some(e) = entity {
            match self.hooks.entities.as_ref().and_then(|r| r.addresses_of(e)) {
                Some(a) => all.extend(a),
                None => warnings.push(format!(
                    "rule {rule_id}: entity {e:?} is unknown (or no entity resolver is plugged in)"
                )),
            }
        }
        all.iter()
            .filter_map(|a| AddressKey::parse(a.trim(), network).ok())
            .filter_map(|k| index.lookup_addr(&k))
            .collect()
    }

    fn eval_block(
        &mut self,
        index: &Index,
        network: Network,
        height: u32,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Alert>, StoreError> {
        let pos = (height - index.start_height()) as u64;
        let bhash = index.block_hash(pos);
        let block_hash = BlockHash::from_byte_array(bhash).to_string();
        let txs = index.block_txs(pos);
        let rules = self.store.rules()?;
        let mut undo = UndoRecord::default();
        let mut new_states: Vec<(String, RuleState)> = Vec::new();
        let mut fired: Vec<Fired> = Vec::new();
        for rule in rules.iter().filter(|r| r.start_height < height) {
            let prev = self.load_state(&rule.id)?;
            let mut ctx = Ctx {
                index,
                rule,
                height,
                block_hash: &block_hash,
                txs: txs.clone(),
                fired: &mut fired,
            };
            let next = match &rule.kind {
                RuleKind::TracedSpend {
                    case, follow_hops, ..
                } => {
                    let mut st = match prev.clone() {
                        Some(RuleState::Traced(t)) => t,
                        _ => TracedState::default(),
                    };
                    if let (Some(c), Some(t)) = (case, &self.hooks.taint) {
                        // A case changed since the rule began (a source added) may hold
                        // outputs not yet watched. Only those from before the rule count:
                        // later ones are the funds' own moves, which the frontier follows
                        // itself with its traced share (adding them again would count twice).
                        for w in t.watched_outputs(c).unwrap_or_default() {
                            let before_rule = bitcoin::Txid::from_str(&w.txid)
                                .ok()
                                .and_then(|x| index.lookup_txid(&x.to_byte_array()))
                                .is_some_and(|x| index.tx_height(x) <= rule.start_height);
                            let k = format!("{}:{}", w.txid, w.vout);
                            if before_rule && !st.done.contains(&k) && !st.frontier.contains_key(&k)
                            {
                                st.frontier.insert(
                                    k.clone(),
                                    FrontierEntry {
                                        hops: 0,
                                        sats: w.sats,
                                        root: k,
                                    },
                                );
                            }
                        }
                    }
                    eval_traced(&mut ctx, &mut st, *follow_hops, &self.hooks);
                    Some(RuleState::Traced(st))
                }
                RuleKind::Drain {
                    addresses,
                    entity,
                    threshold_sats,
                    share_pct,
                    window_blocks,
                    ..
                } => {
                    let set = self.addr_set(index, network, addresses, entity, warnings, &rule.id);
                    let mut st = match prev.clone() {
                        Some(RuleState::Drain(d)) => d,
                        _ => DrainState::default(),
                    };
                    eval_drain(
                        &mut ctx,
                        &mut st,
                        &set,
                        *threshold_sats,
                        *share_pct,
                        *window_blocks,
                    );
                    Some(RuleState::Drain(st))
                }
                RuleKind::Exposure {
                    addresses,
                    entity,
                    min_level,
                } => {
                    let set = self.addr_set(index, network, addresses, entity, warnings, &rule.id);
                    match &self.hooks.exposure {
                        Some(x) => eval_exposure(&mut ctx, &set, *min_level, x.as_ref()),
                        None => warnings.push(format!(
                            "rule {}: no exposure checker is plugged in; the rule cannot fire",
                            rule.id
                        )),
                    }
                    None
                }
                RuleKind::FlaggedReceive { categories, .. } => {
                    let flagged = self.flagged(network)?;
                    let by_id: HashMap<AddrId, &FlaggedAddress> = flagged
                        .iter()
                        .filter(|(_, f)| categories.is_empty() || categories.contains(&f.category))
                        .filter_map(|(k, f)| index.lookup_addr(k).map(|a| (a, f)))
                        .collect();
                    if !by_id.is_empty() {
                        for t in ctx.txs.clone() {
                            for o in index.tx_outputs(t) {
                                if let Some(f) = index.output_addr(o).and_then(|a| by_id.get(&a)) {
                                    ctx.fire_flagged(t, o, f);
                                }
                            }
                        }
                    }
                    None
                }
            };
            if next != prev {
                undo.states.insert(rule.id.clone(), prev);
                if let Some(n) = next {
                    new_states.push((rule.id.clone(), n));
                }
            }
        }
        self.commit(fired, Some((height, bhash, undo, new_states)))
    }

    fn flagged(
        &mut self,
        network: Network,
    ) -> Result<&HashMap<AddressKey, FlaggedAddress>, StoreError> {
        if self.flagged_cache.is_none() {
            let s = &self.store;
            let db = s.db()?;
            let r = redb::ReadableDatabase::begin_read(&*db).map_err(|e| s.err(e))?;
            let t = r.open_table(FLAGGED).map_err(|e| s.err(e))?;
            let mut m = HashMap::new();
            for row in t.iter().map_err(|e| s.err(e))? {
                let (_, v) = row.map_err(|e| s.err(e))?;
                let f: FlaggedAddress = serde_json::from_slice(v.value()).map_err(|e| s.err(e))?;
                if let Ok(k) = AddressKey::parse(&f.address, network) {
                    m.insert(k, f);
                }
            }
            self.flagged_cache = Some(m);
        }
        Ok(self.flagged_cache.as_ref().expect("filled"))
    }

    /// A label import flagged these addresses: remember them for the flagged_receive rules,
    /// and alert on funds they received within each rule's look-back window.
    pub fn labels_flagged(
        &mut self,
        index: &Index,
        flagged: &[FlaggedAddress],
    ) -> Result<Vec<Alert>, StoreError> {
        let network = index.render_network();
        let mut keys = Vec::new();
        for f in flagged {
            let k = AddressKey::parse(f.address.trim(), network).map_err(|e| {
                StoreError::Invalid(format!("flagged address {:?}: {e}", f.address))
            })?;
            keys.push((k, f));
        }
        {
            let s = &self.store;
            let db = s.db()?;
            let w = db.begin_write().map_err(|e| s.err(e))?;
            {
                let mut t = w.open_table(FLAGGED).map_err(|e| s.err(e))?;
                for (_, f) in &keys {
                    t.insert(f.address.trim(), to_json(f).as_slice())
                        .map_err(|e| s.err(e))?;
                }
            }
            w.commit().map_err(|e| s.err(e))?;
        }
        self.flagged_cache = None;
        let Some(tip) = index.tip_height() else {
            return Ok(vec![]);
        };
        let evaluated = self.store.cursor()?.map(|c| c.0).unwrap_or(tip);
        let mut fired = Vec::new();
        for rule in self.store.rules()? {
            let RuleKind::FlaggedReceive {
                categories,
                lookback_blocks,
            } = &rule.kind
            else {
                continue;
            };
            let from = evaluated.saturating_sub(*lookback_blocks);
            for (k, f) in &keys {
                if !(categories.is_empty() || categories.contains(&f.category)) {
                    continue;
                }
                let Some(a) = index.lookup_addr(k) else {
                    continue;
                };
                for o in index.addr_outputs(a) {
                    let t = index.output_tx(o);
                    let h = index.tx_height(t);
                    // Blocks after the cursor are alerted on when they are evaluated.
                    if h <= from || h > evaluated {
                        continue;
                    }
                    let pos = (h - index.start_height()) as u64;
                    let bh = BlockHash::from_byte_array(index.block_hash(pos)).to_string();
                    let mut ctx = Ctx {
                        index,
                        rule: &rule,
                        height: h,
                        block_hash: &bh,
                        txs: t..t + 1,
                        fired: &mut fired,
                    };
                    ctx.fire_flagged(t, o, f);
                }
            }
        }
        self.commit(fired, None)
    }

    /// Write alerts (new ones only), their deliveries, and the block's cursor/undo in one
    /// transaction; then publish them.
    fn commit(
        &mut self,
        fired: Vec<Fired>,
        block: Option<BlockCommit>,
    ) -> Result<Vec<Alert>, StoreError> {
        let s = self.store.clone();
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        let mut ids = Vec::new();
        let new_alerts = insert_alerts(&s, &w, fired, &mut ids)?;
        let mut block = block;
        if let Some(b) = block.as_mut() {
            b.2.alerts = ids;
        }
        {
            if let Some((height, hash, undo, states)) = block {
                let mut st = w.open_table(RULE_STATE).map_err(|e| s.err(e))?;
                for (id, state) in states {
                    st.insert(id.as_str(), to_json(&state).as_slice())
                        .map_err(|e| s.err(e))?;
                }
                let mut u = w.open_table(UNDO).map_err(|e| s.err(e))?;
                u.insert(height, to_json(&undo).as_slice())
                    .map_err(|e| s.err(e))?;
                let mut p = w.open_table(PROCESSED).map_err(|e| s.err(e))?;
                p.insert(height, hash.as_slice()).map_err(|e| s.err(e))?;
                if height > UNDO_DEPTH {
                    let cut = height - UNDO_DEPTH;
                    u.retain_in(..cut, |_, _| false).map_err(|e| s.err(e))?;
                    p.retain_in(..cut, |_, _| false).map_err(|e| s.err(e))?;
                }
            }
        }
        w.commit().map_err(|e| s.err(e))?;
        drop(db);
        self.publish(&new_alerts);
        Ok(new_alerts)
    }

    /// After the commit that made them durable: touch the stamp (the SSE stream watches
    /// it), wake the webhook deliverer, send them to live subscribers.
    pub(crate) fn publish(&self, new_alerts: &[Alert]) {
        if !new_alerts.is_empty() {
            self.store.touch_stamp();
            if let Some(wk) = &self.waker {
                let _ = wk.send(());
            }
        }
        for a in new_alerts {
            let _ = self.live.send(a.clone());
        }
    }
}

struct Ctx<'a> {
    index: &'a Index,
    rule: &'a Rule,
    height: u32,
    block_hash: &'a str,
    txs: std::ops::Range<TxNum>,
    fired: &'a mut Vec<Fired>,
}

impl Ctx<'_> {
    fn addr(&self, o: u64) -> Option<String> {
        self.index.output_addr(o).map(|a| self.index.render_addr(a))
    }

    fn outputs_json(&self, t: TxNum, hooks: Option<&Hooks>) -> Vec<Value> {
        self.index
            .tx_outputs(t)
            .enumerate()
            .map(|(i, o)| {
                let mut v = json!({
                    "vout": i,
                    "address": self.addr(o),
                    "sats": self.index.output_value(o),
                });
                if let Some(svc) = hooks
                    .and_then(|h| h.services.as_ref())
                    .and_then(|s| s.nearest_service(self.index, o))
                {
                    v["nearest_service"] = json!(svc);
                }
                v
            })
            .collect()
    }

    fn fire_flagged(&mut self, t: TxNum, o: u64, f: &FlaggedAddress) {
        let txid = display_txid(self.index.txid(t));
        let vout = self.index.output_vout(o);
        let sats = self.index.output_value(o);
        self.fired.push(Fired {
            rule_id: self.rule.id.clone(),
            kind: "flagged_receive",
            summary: format!(
                "{sats} sats reached {} ({}: {}) in {txid}:{vout}",
                f.address, f.category, f.label
            ),
            details: json!({"address": f.address, "label": f.label, "category": f.category,
                "source": f.source, "sats": sats}),
            txid,
            vout: Some(vout),
            id_vout: vout,
            height: self.height,
            block_hash: self.block_hash.to_string(),
        });
    }
}

fn eval_traced(ctx: &mut Ctx, st: &mut TracedState, follow_hops: u32, hooks: &Hooks) {
    // Passes until nothing moves: funds can hop several times within one block.
    while eval_traced_pass(ctx, st, follow_hops, hooks) {}
}

/// One pass over the frontier; true when an output was found spent.
fn eval_traced_pass(ctx: &mut Ctx, st: &mut TracedState, follow_hops: u32, hooks: &Hooks) -> bool {
    let index = ctx.index;
    let mut moved = false;
    let keys: Vec<String> = st.frontier.keys().cloned().collect();
    for k in keys {
        let (txid, vout) = rules::parse_outpoint(&k).expect("frontier keys are outpoints");
        let Some(t) = index.lookup_txid(&txid.to_byte_array()) else {
            continue;
        };
        let outs = index.tx_outputs(t);
        if vout as u64 >= outs.end - outs.start {
            continue;
        }
        let o = outs.start + vout as u64;
        let Some(spender) = index.output_spender(o) else {
            continue;
        };
        let sh = index.tx_height(spender);
        // Spent in this block, or in an earlier one after the rule began (an output the
        // case added late): report it once either way.
        if sh > ctx.height || sh <= ctx.rule.start_height {
            continue;
        }
        let Some(entry) = st.frontier.remove(&k) else {
            continue;
        };
        moved = true;
        st.done.insert(k.clone());
        let spend_txid = display_txid(index.txid(spender));
        let input = index
            .tx_inputs(spender)
            .position(|i| index.input_prevout(i) == Prevout::Output(o))
            .unwrap_or(0);
        let dest = ctx.outputs_json(spender, Some(hooks));
        let nearest = dest
            .iter()
            .filter_map(|d| {
                d.get("nearest_service")
                    .and_then(|s| s.get("hops")?.as_u64())
            })
            .min();
        let value = index.output_value(o);
        let total_out: u64 = index
            .tx_outputs(spender)
            .map(|x| index.output_value(x))
            .sum();
        ctx.fired.push(Fired {
            rule_id: ctx.rule.id.clone(),
            kind: "traced_spend",
            summary: format!(
                "watched output {k} ({value} sats, {} hops from {}) was spent by {spend_txid}; {total_out} sats went to {} outputs{}",
                entry.hops,
                entry.root,
                dest.len(),
                match nearest {
                    Some(h) => format!(", nearest known service {h} hops away"),
                    None => String::new(),
                }
            ),
            details: json!({
                "spent_output": k, "sats": value, "traced_sats": entry.sats,
                "hops_from_root": entry.hops, "root": entry.root,
                "spending_txid": spend_txid, "input": input, "spent_at_height": sh,
                "destinations": dest, "nearest_service_hops": nearest,
                "service_oracle": hooks.services.is_some(),
            }),
            txid: txid.to_string(),
            vout: Some(vout),
            id_vout: vout,
            height: ctx.height,
            block_hash: ctx.block_hash.to_string(),
        });
        if entry.hops < follow_hops {
            // The traced amount moves on in proportion (haircut, exact to the satoshi; the
            // fee takes its share). An explicit outpoint's whole value is traced.
            let traced = if entry.sats == 0 { value } else { entry.sats };
            let total_in: u64 = index
                .tx_inputs(spender)
                .map(|i| match index.input_prevout(i) {
                    Prevout::Output(p) => index.output_value(p),
                    _ => 0,
                })
                .sum();
            let outs: Vec<u64> = index.tx_outputs(spender).collect();
            let mut parts: Vec<u64> = outs.iter().map(|&x| index.output_value(x)).collect();
            parts.push(total_in.saturating_sub(total_out));
            let shares = split(traced, &parts);
            for (i, (&x, &sats)) in outs.iter().zip(&shares).enumerate() {
                // Funds that reached a known service stop there (the alert names it).
                let at_service = dest
                    .get(i)
                    .and_then(|d| d.get("nearest_service"))
                    .and_then(|s| s.get("hops")?.as_u64())
                    == Some(0);
                if sats == 0 || at_service || index.output_addr(x).is_none() {
                    continue;
                }
                let nk = format!("{spend_txid}:{i}");
                if !st.done.contains(&nk) {
                    st.frontier
                        .entry(nk)
                        .and_modify(|e| e.sats += sats)
                        .or_insert(FrontierEntry {
                            hops: entry.hops + 1,
                            sats,
                            root: entry.root.clone(),
                        });
                }
            }
        }
    }
    moved
}

/// Split `w` over `parts` in proportion to their sizes, exactly: largest remainder, ties to
/// the lower index (the rounding of methods.md). All-zero parts give everything to none.
fn split(w: u64, parts: &[u64]) -> Vec<u64> {
    let total: u128 = parts.iter().map(|&p| p as u128).sum();
    if total == 0 {
        return vec![0; parts.len()];
    }
    let mut out: Vec<u64> = Vec::with_capacity(parts.len());
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(parts.len());
    for (i, &p) in parts.iter().enumerate() {
        let x = w as u128 * p as u128;
        out.push((x / total) as u64);
        rems.push((x % total, i));
    }
    let mut left = w - out.iter().sum::<u64>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Balance of a set as of the end of block `height` (outputs created by then, unspent by then).
fn balance_at(index: &Index, set: &HashSet<AddrId>, height: u32) -> u64 {
    let mut b = 0u64;
    for &a in set {
        for o in index.addr_outputs(a) {
            if index.tx_height(index.output_tx(o)) > height {
                continue;
            }
            match index.output_spender(o) {
                Some(s) if index.tx_height(s) <= height => {}
                _ => b += index.output_value(o),
            }
        }
    }
    b
}

fn eval_drain(
    ctx: &mut Ctx,
    st: &mut DrainState,
    set: &HashSet<AddrId>,
    threshold: Option<u64>,
    share_pct: Option<f64>,
    window: u32,
) {
    let index = ctx.index;
    let h = ctx.height;
    st.flows.retain(|&(fh, _, _)| fh + window > h && fh < h);
    if set.is_empty() {
        return;
    }
    let (mut sent, mut recv) = (0u64, 0u64);
    let mut senders: Vec<(u64, TxNum)> = Vec::new();
    for t in ctx.txs.clone() {
        let mut from = 0u64;
        for i in index.tx_inputs(t) {
            if let Prevout::Output(o) = index.input_prevout(i) {
                if index.output_addr(o).is_some_and(|a| set.contains(&a)) {
                    from += index.output_value(o);
                }
            }
        }
        let back: u64 = index
            .tx_outputs(t)
            .filter(|&o| index.output_addr(o).is_some_and(|a| set.contains(&a)))
            .map(|o| index.output_value(o))
            .sum();
        if from > 0 {
            let out = from.saturating_sub(back);
            if out > 0 {
                sent += out;
                senders.push((out, t));
            }
        } else {
            recv += back;
        }
    }
    if sent == 0 && recv == 0 {
        return;
    }
    st.flows.push((h, sent, recv));
    if sent == 0 || st.last_fired.is_some_and(|f| f + window > h) {
        return;
    }
    let win_sent: u64 = st.flows.iter().map(|f| f.1).sum();
    let win_recv: u64 = st.flows.iter().map(|f| f.2).sum();
    let by_amount = threshold.is_some_and(|t| win_sent >= t);
    let mut share = None;
    if let Some(p) = share_pct {
        let now = balance_at(index, set, h);
        let before = (now + win_sent).saturating_sub(win_recv);
        if before > 0 {
            let s = win_sent as f64 * 100.0 / before as f64;
            share = Some((s, before, s >= p));
        }
    }
    if !(by_amount || share.is_some_and(|s| s.2)) {
        return;
    }
    st.last_fired = Some(h);
    senders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let (_, top) = senders[0];
    let txid = display_txid(index.txid(top));
    let txs: Vec<Value> = senders
        .iter()
        .take(20)
        .map(|(v, t)| json!({"txid": display_txid(index.txid(*t)), "sats_out": v, "outputs": ctx.outputs_json(*t, None)}))
        .collect();
    ctx.fired.push(Fired {
        rule_id: ctx.rule.id.clone(),
        kind: "drain",
        summary: format!(
            "drain: {win_sent} sats left the watched set within {window} blocks{}{}",
            share.map(|s| format!(" ({:.1}% of its {} sats)", s.0, s.1)).unwrap_or_default(),
            if by_amount { format!(", over the {} sats threshold", threshold.unwrap_or(0)) } else { String::new() }
        ),
        details: json!({
            "window_blocks": window, "window_sent_sats": win_sent, "window_received_sats": win_recv,
            "block_sent_sats": sent, "share_pct": share.map(|s| s.0), "balance_before_sats": share.map(|s| s.1),
            "threshold_sats": threshold, "share_threshold_pct": share_pct, "transactions": txs,
        }),
        txid,
        vout: None,
        id_vout: u32::MAX,
        height: h,
        block_hash: ctx.block_hash.to_string(),
    });
}

fn eval_exposure(
    ctx: &mut Ctx,
    set: &HashSet<AddrId>,
    min: crate::hooks::RiskLevel,
    x: &dyn crate::hooks::ExposureCheck,
) {
    let index = ctx.index;
    for t in ctx.txs.clone() {
        // Change back to the set is not a receipt.
        let self_spend = index.tx_inputs(t).any(|i| match index.input_prevout(i) {
            Prevout::Output(o) => index.output_addr(o).is_some_and(|a| set.contains(&a)),
            _ => false,
        });
        if self_spend {
            continue;
        }
        for o in index.tx_outputs(t) {
            if !index.output_addr(o).is_some_and(|a| set.contains(&a)) {
                continue;
            }
            let Some(e) = x.exposure(index, o) else {
                continue;
            };
            if e.level < min {
                continue;
            }
            let txid = display_txid(index.txid(t));
            let vout = index.output_vout(o);
            let sats = index.output_value(o);
            let addr = ctx.addr(o).unwrap_or_default();
            ctx.fired.push(Fired {
                rule_id: ctx.rule.id.clone(),
                kind: "exposure",
                summary: format!(
                    "{addr} received {sats} sats in {txid}:{vout} with {:?} exposure: {}",
                    e.level, e.reason
                ),
                details: json!({"address": addr, "sats": sats, "exposure": e}),
                txid,
                vout: Some(vout),
                id_vout: vout,
                height: ctx.height,
                block_hash: ctx.block_hash.to_string(),
            });
        }
    }
}

/// Write the alerts not stored yet (an alert id seen before is a replay: never a second
/// alert) and their webhook deliveries into the open transaction `w`; `ids` gets every
/// fired alert's id (for the block's undo record).
pub(crate) fn insert_alerts(
    s: &AlertStore,
    w: &redb::WriteTransaction,
    fired: Vec<Fired>,
    ids: &mut Vec<String>,
) -> Result<Vec<Alert>, StoreError> {
    let mut new_alerts = Vec::new();
    let now = now_ms();
    let mut alerts = w.open_table(ALERTS).map_err(|e| s.err(e))?;
    let mut seqs = w.open_table(ALERT_SEQ).map_err(|e| s.err(e))?;
    let mut outbox = w.open_table(OUTBOX).map_err(|e| s.err(e))?;
    let hooks: Vec<Webhook> = {
        let t = w.open_table(WEBHOOKS).map_err(|e| s.err(e))?;
        let mut v = Vec::new();
        for row in t.iter().map_err(|e| s.err(e))? {
            let (_, x) = row.map_err(|e| s.err(e))?;
            v.push(serde_json::from_slice(x.value()).map_err(|e| s.err(e))?);
        }
        v
    };
    let mut next_seq = seqs
        .last()
        .map_err(|e| s.err(e))?
        .map(|(k, _)| k.value() + 1)
        .unwrap_or(1);
    for f in fired {
        let id = alert_id(&f.rule_id, &f.txid, f.id_vout);
        let existing = alerts
            .get(id.as_str())
            .map_err(|e| s.err(e))?
            .map(|v| v.value().to_vec());
        ids.push(id.clone());
        if let Some(v) = existing {
            // Seen before: a replay after a crash or a reorganisation that mined
            // the same transaction again. Never a second alert.
            let mut a: Alert = serde_json::from_slice(&v).map_err(|e| s.err(e))?;
            if a.orphaned {
                a.orphaned = false;
                a.height = f.height;
                a.block_hash = f.block_hash;
                alerts
                    .insert(id.as_str(), to_json(&a).as_slice())
                    .map_err(|e| s.err(e))?;
            }
            continue;
        }
        let a = Alert {
            id: id.clone(),
            seq: next_seq,
            rule_id: f.rule_id,
            kind: f.kind.to_string(),
            height: f.height,
            block_hash: f.block_hash,
            txid: f.txid,
            vout: f.vout,
            summary: f.summary,
            details: f.details,
            created_ms: now,
            acked: false,
            orphaned: false,
        };
        next_seq += 1;
        alerts
            .insert(id.as_str(), to_json(&a).as_slice())
            .map_err(|e| s.err(e))?;
        seqs.insert(a.seq, id.as_str()).map_err(|e| s.err(e))?;
        for h in &hooks {
            let d = Delivery {
                webhook: h.name.clone(),
                alert_id: id.clone(),
                attempts: 0,
                next_try_ms: 0,
                last_error: String::new(),
            };
            outbox
                .insert(
                    format!("{}\0{}", h.name, id).as_str(),
                    to_json(&d).as_slice(),
                )
                .map_err(|e| s.err(e))?;
        }
        new_alerts.push(a);
    }
    Ok(new_alerts)
}
