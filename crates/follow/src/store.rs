//! The durable alert log (DATA_DIR/alerts.redb): rules, their state, the alerts, the webhook
//! outbox and dead letters, and the cursor (last block evaluated). An alert, the rule state it
//! changed, its outbox entries and the cursor are written in one transaction, so a crash
//! either loses the whole block (it is evaluated again, giving the same ids) or nothing.

use crate::rules::Rule;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) const RULES: TableDefinition<&str, &[u8]> = TableDefinition::new("rules");
pub(crate) const RULE_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("rule_state");
pub(crate) const ALERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts");
pub(crate) const ALERT_SEQ: TableDefinition<u64, &str> = TableDefinition::new("alert_seq");
pub(crate) const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
pub(crate) const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_letters");
pub(crate) const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// Height → hash of every evaluated block still within reach of a reorganisation.
pub(crate) const PROCESSED: TableDefinition<u32, &[u8]> = TableDefinition::new("processed");
/// Height → the rule states as they were before that block (undo log).
pub(crate) const UNDO: TableDefinition<u32, &[u8]> = TableDefinition::new("undo");
pub(crate) const FLAGGED: TableDefinition<&str, &[u8]> = TableDefinition::new("flagged");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}: alert store: {1}")]
    Db(PathBuf, String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Index(#[from] cointrail_index::IndexError),
}

pub(crate) fn db_err(p: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(p.to_path_buf(), e.to_string())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// Stable: a hash of the rule id and what fired it (txid, vout), so the same event never
    /// gives two alerts, across restarts and reorganisations.
    pub id: String,
    pub seq: u64,
    pub rule_id: String,
    pub kind: String,
    pub height: u32,
    pub block_hash: String,
    pub txid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vout: Option<u32>,
    pub summary: String,
    pub details: serde_json::Value,
    /// Milliseconds since 1970 when the alert was written.
    pub created_ms: u64,
    #[serde(default)]
    pub acked: bool,
    /// The block that fired it left the best chain (a reorganisation); kept for the record.
    #[serde(default)]
    pub orphaned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// HMAC-SHA256 key for the `X-Cointrail-Signature` header.
    pub secret: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub webhook: String,
    pub alert_id: String,
    pub attempts: u32,
    pub next_try_ms: u64,
    #[serde(default)]
    pub last_error: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AlertFilter {
    pub unacked_only: bool,
    pub rule_id: Option<String>,
    pub limit: Option<usize>,
}

/// The store is opened for each operation and closed after it, so that `cointrail alerts`
/// (another process) can read and acknowledge while `cointrail follow` runs: redb allows
/// one process at a time, and waiting a few milliseconds for the other is cheap.
pub struct AlertStore {
    slot: std::sync::Mutex<Option<redb::Database>>,
    pub(crate) path: PathBuf,
}

/// An open database, closed when dropped. Bind it before the transactions that use it.
pub(crate) struct Db<'a>(std::sync::MutexGuard<'a, Option<redb::Database>>);

impl std::ops::Deref for Db<'_> {
    type Target = redb::Database;
    fn deref(&self) -> &redb::Database {
        self.0.as_ref().expect("opened by AlertStore::db")
    }
}

impl Drop for Db<'_> {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// How long to wait for another process to close the store.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn open_db(path: &Path) -> Result<redb::Database, StoreError> {
    cointrail_chain::private_file::create_private(path).map_err(|e| db_err(path, e))?;
    let t0 = std::time::Instant::now();
    loop {
        match redb::Database::create(path) {
            Ok(db) => return Ok(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if t0.elapsed() < OPEN_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(db_err(
                    path,
                    format!(
                    "another process has held it for {OPEN_WAIT:?}; is a cointrail command stuck?"
                ),
                ))
            }
            Err(e) => return Err(db_err(path, e)),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain data serializes")
}

impl AlertStore {
    /// Open (creating) `DATA_DIR/alerts.redb`.
    pub fn open(data_dir: &Path) -> Result<AlertStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| db_err(data_dir, e))?;
        let path = data_dir.join("alerts.redb");
        let s = AlertStore {
            slot: std::sync::Mutex::new(None),
            path,
        };
        // Create every table so readers never meet a missing one.
        s.create_tables()?;
        Ok(s)
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let s = self;
        let db = s.db()?;
        let w = db.begin_write().map_err(|e| s.err(e))?;
        {
            w.open_table(RULES).map_err(|e| s.err(e))?;
            w.open_table(RULE_STATE).map_err(|e| s.err(e))?;
            w.open_table(ALERTS).map_err(|e| s.err(e))?;
            w.open_table(ALERT_SEQ).map_err(|e| s.err(e))?;
            w.open_table(OUTBOX).map_err(|e| s.err(e))?;
            w.open_table(DEAD).map_err(|e| s.err(e))?;
            w.open_table(WEBHOOKS).map_err(|e| s.err(e))?;
            w.open_table(PROCESSED).map_err(|e| s.err(e))?;
            w.open_table(UNDO).map_err(|e| s.err(e))?;
            w.open_table(FLAGGED).map_err(|e| s.err(e))?;
            w.open_table(META).map_err(|e| s.err(e))?;
        }
        w.commit().map_err(|e| s.err(e))
    }

    pub(crate) fn db(&self) -> Result<Db<'_>, StoreError> {
        let mut g = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(open_db(&self.path)?);
        }
        Ok(Db(g))
    }

    pub(crate) fn err(&self, e: impl std::fmt::Display) -> StoreError {
        db_err(&self.path, e)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(RULES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Alerts in the order they were raised (newest last).
    pub fn list(&self, f: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let seq = r.open_table(ALERT_SEQ).map_err(|e| self.err(e))?;
        let alerts = r.open_table(ALERTS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in seq.iter().map_err(|e| self.err(e))?.rev() {
            let (_, id) = row.map_err(|e| self.err(e))?;
            let Some(v) = alerts.get(id.value()).map_err(|e| self.err(e))? else {
                continue;
            };
            let a: Alert = serde_json::from_slice(v.value()).map_err(|e| self.err(e))?;
            if f.unacked_only && a.acked {
                continue;
            }
            if f.rule_id.as_ref().is_some_and(|r| *r != a.rule_id) {
                continue;
            }
            out.push(a);
            if f.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Alerts written after sequence number `seq`, oldest first, at most `limit`: what a
    /// live stream sends next (an alert's `seq` is its event id).
    pub fn since(&self, seq: u64, limit: usize) -> Result<Vec<Alert>, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let seqs = r.open_table(ALERT_SEQ).map_err(|e| self.err(e))?;
        let alerts = r.open_table(ALERTS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in seqs
            .range(seq.saturating_add(1)..)
            .map_err(|e| self.err(e))?
        {
            let (_, id) = row.map_err(|e| self.err(e))?;
            if let Some(v) = alerts.get(id.value()).map_err(|e| self.err(e))? {
                out.push(serde_json::from_slice(v.value()).map_err(|e| self.err(e))?);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The newest alert's sequence number (0: none yet).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let seqs = r.open_table(ALERT_SEQ).map_err(|e| self.err(e))?;
        let last = seqs.last().map_err(|e| self.err(e))?;
        Ok(last.map(|(k, _)| k.value()).unwrap_or(0))
    }

    /// `alerts.redb.stamp`, rewritten after every commit that wrote new alerts: live
    /// streams in other processes watch it rather than opening the store to poll.
    pub fn stamp_path(&self) -> PathBuf {
        let mut p = self.path.as_os_str().to_owned();
        p.push(".stamp");
        PathBuf::from(p)
    }

    pub(crate) fn touch_stamp(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // Best effort: a missed stamp delays a stream's next read, it loses nothing.
        let _ = std::fs::write(self.stamp_path(), now.to_string());
    }

    pub fn get(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(ALERTS).map_err(|e| self.err(e))?;
        let v = t.get(id).map_err(|e| self.err(e))?;
        v.map(|v| serde_json::from_slice(v.value()).map_err(|e| self.err(e)))
            .transpose()
    }

    /// Acknowledge alerts by id (or unique id prefix); returns how many changed.
    pub fn ack(&self, ids: &[String]) -> Result<usize, StoreError> {
        let db = self.db()?;
        let w = db.begin_write().map_err(|e| self.err(e))?;
        let mut changed = 0;
        {
            let mut t = w.open_table(ALERTS).map_err(|e| self.err(e))?;
            for want in ids {
                let mut hits = Vec::new();
                for row in t.range(want.as_str()..).map_err(|e| self.err(e))? {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    if !k.value().starts_with(want.as_str()) {
                        break;
                    }
                    hits.push((k.value().to_string(), v.value().to_vec()));
                }
                match hits.len() {
                    0 => return Err(StoreError::NotFound(format!("no alert with id {want}"))),
                    1 => {}
                    n => {
                        return Err(StoreError::Invalid(format!(
                            "id prefix {want} matches {n} alerts: give more characters"
                        )))
                    }
                }
                let (k, v) = hits.pop().expect("one");
                let mut a: Alert = serde_json::from_slice(&v).map_err(|e| self.err(e))?;
                if !a.acked {
                    a.acked = true;
                    changed += 1;
                    t.insert(k.as_str(), to_json(&a).as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        w.commit().map_err(|e| self.err(e))?;
        Ok(changed)
    }

    pub fn add_webhook(&self, h: &Webhook) -> Result<(), StoreError> {
        crate::http::parse_url(&h.url).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if h.secret.len() < 16 {
            return Err(StoreError::Invalid(
                "webhook secret must be at least 16 characters (it keys the HMAC)".into(),
            ));
        }
        let db = self.db()?;
        let w = db.begin_write().map_err(|e| self.err(e))?;
        w.open_table(WEBHOOKS)
            .map_err(|e| self.err(e))?
            .insert(h.name.as_str(), to_json(h).as_slice())
            .map_err(|e| self.err(e))?;
        w.commit().map_err(|e| self.err(e))
    }

    pub fn remove_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let db = self.db()?;
        let w = db.begin_write().map_err(|e| self.err(e))?;
        let found = w
            .open_table(WEBHOOKS)
            .map_err(|e| self.err(e))?
            .remove(name)
            .map_err(|e| self.err(e))?
            .is_some();
        w.commit().map_err(|e| self.err(e))?;
        Ok(found)
    }

    pub fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.read_all(WEBHOOKS)
    }

    pub fn outbox(&self) -> Result<Vec<Delivery>, StoreError> {
        self.read_all(OUTBOX)
    }

    pub fn dead_letters(&self) -> Result<Vec<Delivery>, StoreError> {
        self.read_all(DEAD)
    }

    /// Put dead letters back in the outbox (after the endpoint is fixed).
    pub fn requeue_dead(&self) -> Result<usize, StoreError> {
        let db = self.db()?;
        let w = db.begin_write().map_err(|e| self.err(e))?;
        let n;
        {
            let mut dead = w.open_table(DEAD).map_err(|e| self.err(e))?;
            let mut out = w.open_table(OUTBOX).map_err(|e| self.err(e))?;
            let mut rows = Vec::new();
            for row in dead.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                rows.push((k.value().to_string(), v.value().to_vec()));
            }
            n = rows.len();
            for (k, v) in rows {
                let mut d: Delivery = serde_json::from_slice(&v).map_err(|e| self.err(e))?;
                d.attempts = 0;
                d.next_try_ms = 0;
                out.insert(k.as_str(), to_json(&d).as_slice())
                    .map_err(|e| self.err(e))?;
                dead.remove(k.as_str()).map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(def).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Last evaluated block: (height, hash).
    pub fn cursor(&self) -> Result<Option<(u32, [u8; 32])>, StoreError> {
        let db = self.db()?;
        let r = db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(PROCESSED).map_err(|e| self.err(e))?;
        let last = t.last().map_err(|e| self.err(e))?;
        Ok(last.map(|(k, v)| {
            let mut h = [0u8; 32];
            h.copy_from_slice(v.value());
            (k.value(), h)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_handles_share_the_file_one_operation_at_a_time() {
        // As `cointrail follow` and `cointrail alerts` do from two processes.
        let dir = tempfile::tempdir().unwrap();
        let a = std::sync::Arc::new(AlertStore::open(dir.path()).unwrap());
        let b = std::sync::Arc::new(AlertStore::open(dir.path()).unwrap());
        let hook = |n: usize| Webhook {
            name: format!("h{n}"),
            url: format!("http://127.0.0.1:{}/x", 1000 + n),
            secret: "0123456789abcdef".into(),
        };
        let t = {
            let a = a.clone();
            std::thread::spawn(move || {
                for n in 0..40 {
                    a.add_webhook(&hook(n)).unwrap();
                }
            })
        };
        for n in 40..80 {
            b.add_webhook(&hook(n)).unwrap();
            b.webhooks().unwrap();
        }
        t.join().unwrap();
        assert_eq!(a.webhooks().unwrap().len(), 80);
        assert!(b.remove_webhook("h3").unwrap());
        assert_eq!(a.webhooks().unwrap().len(), 79);
    }
}
