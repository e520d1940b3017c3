//! The alert rules on an EVM chain (`follow --chain ethereum`): the same rules, alert log,
//! alert ids and webhook outbox as on Bitcoin, evaluated block by block over the EVM index
//! where they mean something for accounts:
//!
//! - `drain` on 0x addresses (or an entity whose addresses include 0x ones): the set sent
//!   at least `threshold_wei` of the native coin to others within `window_blocks` blocks
//!   (gas and payments inside the set do not count). A threshold of 1 wei alerts on any
//!   movement of a watched (dormant) address; an exchange hot wallet's label as the entity
//!   with a large threshold alerts on a large outflow. It fires in the block where the
//!   window's total reaches the threshold.
//! - `flagged_receive`: value (any asset) reached a 0x address a label import flagged.
//!
//! - `traced_spend` with a case: the accounts holding the case's taint before the block
//!   (the hook traces the case through the previous block: `TaintWatch::watched_accounts`)
//!   fire when they send an asset they hold taint in (gas does not count). The trace moves
//!   the frontier itself, so `follow_hops` is not needed here; a case on Ethereum whose loot
//!   crossed to Bitcoin is watched there too, through its Bitcoin leg's outputs.
//!
//! `exposure` watches Bitcoin outputs and is evaluated there only, as are a `traced_spend`
//! rule's explicit outpoints.
//!
//! Why no rule state: the window's total is read again from the index's per-address lists
//! at each block, so a reorganisation only has to mark the dropped blocks' alerts orphaned
//! (`evm_undo` keeps each block's alert ids, `evm_processed` its hash).

use std::collections::{HashMap, HashSet};

use cointrail_evm::movement::MovementKind;
use cointrail_evm::{Address, B256, U256};
use cointrail_index::evm::EvmIndex;
use redb::{ReadableTable, TableDefinition};
use serde_json::json;

use crate::engine::{insert_alerts, AlertEngine, EngineReport, Fired, UNDO_DEPTH};
use crate::rules::{parse_evm_addresses, Rule, RuleKind};
use crate::store::*;

/// Block number → hash of every evaluated EVM block within reach of a reorganisation.
const EVM_PROCESSED: TableDefinition<u64, &[u8]> = TableDefinition::new("evm_processed");
/// Block number → ids of the alerts it fired (orphaned if it leaves the chain).
const EVM_UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("evm_undo");

fn eth(wei: U256) -> String {
    cointrail_evm::tokens::format_units(&wei, 18)
}

impl AlertEngine {
    /// The last EVM block evaluated: (number, hash).
    pub fn evm_cursor(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let s = self.store();
        let db = s.db()?;
        let r = redb::ReadableDatabase::begin_read(&*db).map_err(|e| s.err(e))?;
        let t = match r.open_table(EVM_PROCESSED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(s.err(e)),
        };
        let last = t.last().map_err(|e| s.err(e))?;
        Ok(last.map(|(k, v)| {
            let mut h = [0u8; 32];
            h.copy_from_slice(v.value());
            (k.value(), h)
        }))
    }

    /// Bring the rules up to the EVM index's tip: orphan the alerts of blocks a
    /// reorganisation removed, then evaluate every block not yet evaluated. The first call
    /// starts at the tip (history is not alerted on).
    pub fn sync_evm(&mut self, idx: &EvmIndex) -> Result<EngineReport, StoreError> {
        let mut rep = EngineReport::default();
        let Some(tip) = idx.tip() else {
            return Ok(rep);
        };
        let hash_at = |n: u64| idx.block_hash(n).map(|h| h.0);
        let Some((cur, cur_hash)) = self.evm_cursor()? else {
            self.commit_evm(tip, hash_at(tip).expect("tip is indexed"), Vec::new())?;
            return Ok(rep);
        };
        let mut common = cur;
        if hash_at(cur) != Some(cur_hash) {
            let processed = self.evm_processed()?;
            loop {
                let below = processed.range(..common).next_back().map(|(k, v)| (*k, *v));
                let Some((n, h)) = below else {
                    // No evaluated block is still on the chain: blocks below the first one
                    // evaluated were history (never alerted on), so evaluation starts again
                    // at that first block, on the new branch.
                    let first = processed.keys().next().copied().unwrap_or(cur);
                    common = first.saturating_sub(1);
                    if processed.len() as u64 >= UNDO_DEPTH as u64 {
                        rep.warnings.push(format!(
                            "the EVM index left the chain the alerts were evaluated on more than {UNDO_DEPTH} blocks deep; alerts from block {first} on are evaluated again"
                        ));
                    }
                    break;
                };
                common = n;
                if hash_at(n) == Some(h) {
                    break;
                }
            }
            self.evm_rollback(common)?;
            rep.rolled_back_to = Some(common as u32);
        }
        let rules = self.store().rules()?;
        let mut warned = HashSet::new();
        for n in common + 1..=tip {
            // An index filled from files may skip blocks.
            let Some(h) = hash_at(n) else { continue };
            let fired = self.eval_evm_block(idx, n, &rules, &mut rep.warnings, &mut warned)?;
            let alerts = self.commit_evm(n, h, fired)?;
            rep.alerts.extend(alerts);
            rep.blocks_evaluated += 1;
        }
        Ok(rep)
    }

    fn evm_processed(&self) -> Result<std::collections::BTreeMap<u64, [u8; 32]>, StoreError> {
        let s = self.store();
        let db = s.db()?;
        let r = redb::ReadableDatabase::begin_read(&*db).map_err(|e| s.err(e))?;
        let t = r.open_table(EVM_PROCESSED).map_err(|e| s.err(e))?;
        let mut m = std::collections::BTreeMap::new();
        for row in t.iter().map_err(|e| s.err(e))? {
            let (k, v) = row.map_err(|e| s.err(e))?;
            m.insert(k.value(), v.value().try_into().expect("32 bytes"));
        }
        Ok(m)
    }

    /// Forget evaluated blocks above `common`; their alerts are kept, marked orphaned.
    fn evm_rollback(&mut self, common: u64) -> Result<(), StoreError> {
        let s = self.store().clone();
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        {
            let mut undo = w.open_table(EVM_UNDO).map_err(|e| s.err(e))?;
            let mut processed = w.open_table(EVM_PROCESSED).map_err(|e| s.err(e))?;
            let mut alerts = w.open_table(ALERTS).map_err(|e| s.err(e))?;
            let mut ids: Vec<String> = Vec::new();
            for row in undo.range(common + 1..).map_err(|e| s.err(e))? {
                let (_, v) = row.map_err(|e| s.err(e))?;
                ids.extend(serde_json::from_slice::<Vec<String>>(v.value()).map_err(|e| s.err(e))?);
            }
            undo.retain_in(common + 1.., |_, _| false)
                .map_err(|e| s.err(e))?;
            processed
                .retain_in(common + 1.., |_, _| false)
                .map_err(|e| s.err(e))?;
            for id in ids {
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
        w.commit().map_err(|e| s.err(e))
    }

    /// Alerts, their deliveries and the block's cursor and undo, in one transaction.
    fn commit_evm(
        &mut self,
        n: u64,
        h: [u8; 32],
        fired: Vec<Fired>,
    ) -> Result<Vec<Alert>, StoreError> {
        let s = self.store().clone();
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        let mut ids = Vec::new();
        let new_alerts = insert_alerts(&s, &w, fired, &mut ids)?;
        {
            let mut u = w.open_table(EVM_UNDO).map_err(|e| s.err(e))?;
            u.insert(n, to_json(&ids).as_slice())
                .map_err(|e| s.err(e))?;
            let mut p = w.open_table(EVM_PROCESSED).map_err(|e| s.err(e))?;
            p.insert(n, h.as_slice()).map_err(|e| s.err(e))?;
            let keep = UNDO_DEPTH as u64;
            if n > keep {
                u.retain_in(..n - keep, |_, _| false)
                    .map_err(|e| s.err(e))?;
                p.retain_in(..n - keep, |_, _| false)
                    .map_err(|e| s.err(e))?;
            }
        }
        w.commit().map_err(|e| s.err(e))?;
        drop(db);
        self.publish(&new_alerts);
        Ok(new_alerts)
    }

    /// The 0x addresses a rule watches: its own and its entity's.
    fn evm_set(
        &self,
        rule: &Rule,
        addresses: &[String],
        entity: &Option<String>,
        warnings: &mut Vec<String>,
    ) -> Vec<Address> {
        let mut set: Vec<Address> = parse_evm_addresses(addresses).unwrap_or_default();
        if let Some(e) = entity {
            match self.hooks.entities.as_ref().and_then(|r| r.addresses_of(e)) {
                Some(a) => {
                    let a: Vec<String> = a
                        .into_iter()
                        .filter(|x| crate::rules::is_evm_address(x))
                        .collect();
                    set.extend(parse_evm_addresses(&a).unwrap_or_default());
                }
                None => warnings.push(format!(
                    "rule {}: entity {e:?} is unknown (or no entity resolver is plugged in)",
                    rule.id
                )),
            }
        }
        set.sort();
        set.dedup();
        set
    }

    fn eval_evm_block(
        &mut self,
        idx: &EvmIndex,
        n: u64,
        rules: &[Rule],
        warnings: &mut Vec<String>,
        warned: &mut HashSet<String>,
    ) -> Result<Vec<Fired>, StoreError> {
        let block_hash = idx.block_hash(n).map(|h| h.to_string()).unwrap_or_default();
        let mut fired = Vec::new();
        let mut flagged: Option<HashMap<Address, crate::hooks::FlaggedAddress>> = None;
        for rule in rules.iter().filter(|r| r.evm_start.is_none_or(|s| s < n)) {
            match &rule.kind {
                RuleKind::Drain {
                    addresses,
                    entity,
                    threshold_wei: Some(t),
                    window_blocks,
                    ..
                } => {
                    let Ok(threshold) = U256::from_str_radix(t.trim(), 10) else {
                        continue;
                    };
                    let set = self.evm_set(rule, addresses, entity, warnings);
                    if let Some(f) =
                        eval_drain(idx, rule, n, &block_hash, &set, threshold, *window_blocks)
                    {
                        fired.push(f);
                    }
                }
                RuleKind::FlaggedReceive { categories, .. } => {
                    let fl = match &flagged {
                        Some(f) => f,
                        None => flagged.insert(self.evm_flagged()?),
                    };
                    for (a, f) in fl.iter() {
                        if categories.is_empty() || categories.contains(&f.category) {
                            fire_flagged(idx, rule, n, &block_hash, *a, f, &mut fired);
                        }
                    }
                }
                RuleKind::TracedSpend { case: Some(c), .. } => {
                    let Some(t) = &self.hooks.taint else {
                        if warned.insert(rule.id.clone()) {
                            warnings.push(format!(
                                "rule {}: no trace hook is plugged in to read case {c:?}'s accounts from; it is not evaluated on Ethereum",
                                rule.id
                            ));
                        }
                        continue;
                    };
                    let held = t.watched_accounts(c, n.saturating_sub(1));
                    fire_holders(idx, rule, c, n, &block_hash, &held, &mut fired);
                }
                RuleKind::TracedSpend { .. } | RuleKind::Exposure { .. } => {
                    if warned.insert(rule.id.clone()) {
                        warnings.push(format!(
                            "rule {} ({}) watches Bitcoin outputs; it is not evaluated on Ethereum",
                            rule.id,
                            rule.kind_name()
                        ));
                    }
                }
                RuleKind::Drain { .. } => {}
            }
        }
        Ok(fired)
    }

    fn evm_flagged(&self) -> Result<HashMap<Address, crate::hooks::FlaggedAddress>, StoreError> {
        let s = self.store();
        let db = s.db()?;
        let r = redb::ReadableDatabase::begin_read(&*db).map_err(|e| s.err(e))?;
        let t = match r.open_table(FLAGGED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(HashMap::new()),
            Err(e) => return Err(s.err(e)),
        };
        let mut m = HashMap::new();
        for row in t.iter().map_err(|e| s.err(e))? {
            let (_, v) = row.map_err(|e| s.err(e))?;
            let f: crate::hooks::FlaggedAddress =
                serde_json::from_slice(v.value()).map_err(|e| s.err(e))?;
            if crate::rules::is_evm_address(&f.address) {
                if let Ok(a) = cointrail_evm::parse_address(f.address.trim()) {
                    m.insert(a, f);
                }
            }
        }
        Ok(m)
    }
}

/// Native value the set sent to others in blocks `from..=n`, per movement (newest first):
/// (block, amount, tx).
fn outflows(idx: &EvmIndex, set: &[Address], from: u64, n: u64) -> Vec<(u64, U256, Option<u64>)> {
    let ids: HashSet<u32> = set.iter().filter_map(|a| idx.address_id(a)).collect();
    let mut out = Vec::new();
    for &id in &ids {
        idx.each_movement_of(id, true, &mut |i| {
            let b = idx.movement_block(i);
            if b > n {
                return true;
            }
            if b < from {
                return false;
            }
            let m = idx.raw_movement(i);
            let gas = matches!(m.kind, MovementKind::Fee | MovementKind::Burn);
            if m.asset == 0 && !gas && !ids.contains(&m.to) && !m.amount.is_zero() {
                out.push((b, m.amount, m.tx));
            }
            true
        });
    }
    out
}

fn eval_drain(
    idx: &EvmIndex,
    rule: &Rule,
    n: u64,
    block_hash: &str,
    set: &[Address],
    threshold: U256,
    window: u32,
) -> Option<Fired> {
    if set.is_empty() {
        return None;
    }
    let from = n.saturating_sub(window.max(1) as u64 - 1);
    let flows = outflows(idx, set, from, n);
    let total = flows.iter().fold(U256::ZERO, |s, f| s + f.1);
    let in_block: Vec<&(u64, U256, Option<u64>)> = flows.iter().filter(|f| f.0 == n).collect();
    let block_sent = in_block.iter().fold(U256::ZERO, |s, f| s + f.1);
    // Fire in the block that brings the window's total to the threshold.
    if block_sent.is_zero() || total < threshold || total - block_sent >= threshold {
        return None;
    }
    let mut by_tx: HashMap<u64, U256> = HashMap::new();
    for f in &in_block {
        if let Some(t) = f.2 {
            *by_tx.entry(t).or_default() += f.1;
        }
    }
    let mut txs: Vec<(u64, U256)> = by_tx.into_iter().collect();
    txs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = txs.first().map(|t| idx.tx_hash(t.0)).unwrap_or(B256::ZERO);
    Some(Fired {
        rule_id: rule.id.clone(),
        kind: "drain",
        txid: top.to_string(),
        vout: None,
        id_vout: u32::MAX,
        summary: format!(
            "drain: {} ETH left the watched set within {window} block(s) (threshold {} ETH) on ethereum",
            eth(total),
            eth(threshold)
        ),
        details: json!({
            "chain": "ethereum",
            "addresses": set.iter().map(|a| a.to_checksum(None)).collect::<Vec<_>>(),
            "window_blocks": window,
            "window_sent_wei": total.to_string(),
            "block_sent_wei": block_sent.to_string(),
            "threshold_wei": threshold.to_string(),
            "transactions": txs.iter().take(20).map(|(t, v)| json!({"hash": idx.tx_hash(*t).to_string(), "sent_wei": v.to_string()})).collect::<Vec<_>>(),
        }),
        height: n as u32,
        block_hash: block_hash.to_string(),
    })
}

fn fire_flagged(
    idx: &EvmIndex,
    rule: &Rule,
    n: u64,
    block_hash: &str,
    a: Address,
    f: &crate::hooks::FlaggedAddress,
    fired: &mut Vec<Fired>,
) {
    let Some(id) = idx.address_id(&a) else { return };
    let mut hits: Vec<u64> = Vec::new();
    idx.each_movement_of(id, false, &mut |i| {
        let b = idx.movement_block(i);
        if b > n {
            return true;
        }
        if b == n {
            hits.push(i);
        }
        b == n
    });
    let mut seen = HashSet::new();
    for i in hits.into_iter().rev() {
        let m = idx.raw_movement(i);
        if m.amount.is_zero() || m.from == id {
            continue;
        }
        let Some(t) = m.tx else { continue };
        if !seen.insert(t) {
            continue;
        }
        let hash = idx.tx_hash(t).to_string();
        let asset = idx.token_of(m.asset).map_or("wei".to_string(), |t| {
            format!("units of token {}", t.to_checksum(None))
        });
        fired.push(Fired {
            rule_id: rule.id.clone(),
            kind: "flagged_receive",
            // Several flagged addresses in one transaction: one alert each.
            id_vout: u32::from_be_bytes(a.0[..4].try_into().unwrap()),
            vout: None,
            summary: format!(
                "{} {asset} reached {} ({}: {}) in {hash} on ethereum",
                m.amount, f.address, f.category, f.label
            ),
            details: json!({"chain": "ethereum", "address": f.address, "label": f.label,
                "category": f.category, "source": f.source, "amount": m.amount.to_string()}),
            txid: hash,
            height: n as u32,
            block_hash: block_hash.to_string(),
        });
    }
}

/// A case's tainted accounts that sent, in block `n`, an asset they hold taint in: one
/// alert per (account, transaction).
fn fire_holders(
    idx: &EvmIndex,
    rule: &Rule,
    case: &str,
    n: u64,
    block_hash: &str,
    held: &[crate::hooks::WatchedAccount],
    fired: &mut Vec<Fired>,
) {
    // Address → (asset → tainted amount held).
    let mut by_addr: std::collections::BTreeMap<Address, Vec<(Option<Address>, String)>> =
        Default::default();
    for h in held {
        let Ok(a) = cointrail_evm::parse_address(&h.address) else {
            continue;
        };
        let asset = if h.asset == "ETH" {
            None
        } else {
            match cointrail_evm::parse_address(&h.asset) {
                Ok(t) => Some(t),
                Err(_) => continue,
            }
        };
        by_addr
            .entry(a)
            .or_default()
            .push((asset, h.amount.clone()));
    }
    for (a, assets) in by_addr {
        let Some(id) = idx.address_id(&a) else {
            continue;
        };
        let mut sent: Vec<u64> = Vec::new();
        idx.each_movement_of(id, true, &mut |i| {
            let b = idx.movement_block(i);
            if b > n {
                return true;
            }
            if b == n {
                sent.push(i);
            }
            b == n
        });
        // Per transaction: (asset, amount, to) of what left in a tainted asset.
        let mut txs: std::collections::BTreeMap<u64, Vec<serde_json::Value>> = Default::default();
        for i in sent.into_iter().rev() {
            let m = idx.raw_movement(i);
            if matches!(m.kind, MovementKind::Fee | MovementKind::Burn)
                || m.amount.is_zero()
                || m.to == id
            {
                continue;
            }
            let token = idx.token_of(m.asset);
            if !assets.iter().any(|(t, _)| *t == token) {
                continue;
            }
            let Some(t) = m.tx else { continue };
            txs.entry(t).or_default().push(json!({
                "asset": token.map_or("ETH".to_string(), |t| t.to_checksum(None)),
                "amount": m.amount.to_string(),
                "to": idx.address_of(m.to).to_checksum(None),
            }));
        }
        for (t, moves) in txs {
            let hash = idx.tx_hash(t).to_string();
            let holds: Vec<serde_json::Value> = assets
                .iter()
                .map(|(t, amt)| {
                    json!({"asset": t.map_or("ETH".to_string(), |t| t.to_checksum(None)), "tainted": amt})
                })
                .collect();
            fired.push(Fired {
                rule_id: rule.id.clone(),
                kind: "traced_spend",
                // Several tainted accounts in one transaction: one alert each.
                id_vout: u32::from_be_bytes(a.0[..4].try_into().unwrap()),
                vout: None,
                summary: format!(
                    "{} holding taint of case {case} sent it on in {hash} on ethereum",
                    a.to_checksum(None)
                ),
                details: json!({"chain": "ethereum", "case": case,
                    "address": a.to_checksum(None), "held_before": holds, "sent": moves}),
                txid: hash,
                height: n as u32,
                block_hash: block_hash.to_string(),
            });
        }
    }
}
