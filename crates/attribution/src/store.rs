//! The versioned label store (redb: ACID, survives a crash mid-import).
//!
//! Each import is a named source at a version date. Importing a newer version closes the
//! labels that disappeared (`valid_to` = the new version) and reopens those that came back;
//! a query can ask what was known at a date. Re-importing the same version changes nothing.

use crate::{normalize_address, normalize_currency, Label, LabelError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

const LABELS: TableDefinition<&str, &[u8]> = TableDefinition::new("labels");
const SOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("sources");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceInfo {
    pub name: String,
    pub versions: Vec<String>,
    pub active_labels: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub source: String,
    pub version: String,
    pub added: u64,
    pub closed: u64,
    pub unchanged: u64,
}

pub struct LabelStore {
    db: redb::Database,
    path: String,
}

fn key(l: &Label) -> String {
    let id = l.address.as_deref().or(l.tx_hash.as_deref()).unwrap_or("");
    format!("{}\u{0}{}\u{0}{}\u{0}{}", l.currency, id, l.source, l.label)
}

impl LabelStore {
    pub fn open(path: &Path) -> Result<LabelStore, LabelError> {
        let p = path.display().to_string();
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| LabelError::Store(p.clone(), e.to_string()))?;
        }
        let db = redb::Database::create(path)
            .map_err(|e| LabelError::Store(p.clone(), e.to_string()))?;
        Ok(LabelStore { db, path: p })
    }

    fn err(&self, e: impl std::fmt::Display) -> LabelError {
        LabelError::Store(self.path.clone(), e.to_string())
    }

    /// Import one version of one source, atomically.
    pub fn import(
        &self,
        source: &str,
        version: &str,
        labels: &[Label],
    ) -> Result<ImportReport, LabelError> {
        let mut rep = ImportReport {
            source: source.into(),
            version: version.into(),
            ..Default::default()
        };
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut src = w.open_table(SOURCES).map_err(|e| self.err(e))?;
            let mut info: SourceInfo = match src.get(source).map_err(|e| self.err(e))? {
                Some(v) => serde_json::from_slice(v.value()).map_err(|e| self.err(e))?,
                None => SourceInfo {
                    name: source.into(),
                    versions: vec![],
                    active_labels: 0,
                },
            };
            if let Some(last) = info.versions.last() {
                if version < last.as_str() {
                    return Err(LabelError::Other(format!("source '{source}' is at version {last}; version {version} is older: import versions in order")));
                }
            }
            let mut t = w.open_table(LABELS).map_err(|e| self.err(e))?;
            let new_keys: HashSet<String> = labels.iter().map(key).collect();
            // Close what disappeared from this source.
            let mut to_close = Vec::new();
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let l: Label = serde_json::from_slice(v.value()).map_err(|e| self.err(e))?;
                if l.source == source && l.valid_to.is_none() && !new_keys.contains(k.value()) {
                    to_close.push((k.value().to_string(), l));
                }
            }
            for (k, mut l) in to_close {
                l.valid_to = Some(version.into());
                t.insert(
                    k.as_str(),
                    serde_json::to_vec(&l).expect("labels serialize").as_slice(),
                )
                .map_err(|e| self.err(e))?;
                rep.closed += 1;
            }
            for l in labels {
                let k = key(l);
                let existing: Option<Label> = t
                    .get(k.as_str())
                    .map_err(|e| self.err(e))?
                    .map(|v| serde_json::from_slice(v.value()))
                    .transpose()
                    .map_err(|e| self.err(e))?;
                let mut nl = l.clone();
                nl.source = source.into();
                nl.version = version.into();
                match existing {
                    Some(old) if old.valid_to.is_none() => {
                        nl.valid_from = old.valid_from.clone();
                        if old == nl {
                            rep.unchanged += 1;
                            continue;
                        }
                    }
                    Some(_) => nl.valid_from = version.into(),
                    None => nl.valid_from = version.into(),
                }
                nl.valid_to = None;
                t.insert(
                    k.as_str(),
                    serde_json::to_vec(&nl)
                        .expect("labels serialize")
                        .as_slice(),
                )
                .map_err(|e| self.err(e))?;
                rep.added += 1;
            }
            if info.versions.last().map(String::as_str) != Some(version) {
                info.versions.push(version.into());
            }
            info.active_labels = new_keys.len() as u64;
            src.insert(
                source,
                serde_json::to_vec(&info).expect("serializes").as_slice(),
            )
            .map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        Ok(rep)
    }

    /// Labels of an address, as known at `as_of` (YYYY-MM-DD), or all (open and closed).
    pub fn labels_for(
        &self,
        currency: &str,
        address: &str,
        as_of: Option<&str>,
    ) -> Result<Vec<Label>, LabelError> {
        let cur = normalize_currency(currency);
        let prefix = format!("{}\u{0}{}\u{0}", cur, normalize_address(&cur, address));
        let end = format!("{}\u{0}{}\u{1}", cur, normalize_address(&cur, address));
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match r.open_table(LABELS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in t
            .range(prefix.as_str()..end.as_str())
            .map_err(|e| self.err(e))?
        {
            let (_, v) = row.map_err(|e| self.err(e))?;
            let l: Label = serde_json::from_slice(v.value()).map_err(|e| self.err(e))?;
            if as_of.is_none_or(|d| {
                l.valid_from.as_str() <= d && l.valid_to.as_deref().is_none_or(|t| d < t)
            }) {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Every label (optionally of one currency), open and closed.
    pub fn all(&self, currency: Option<&str>) -> Result<Vec<Label>, LabelError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match r.open_table(LABELS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        let cur = currency.map(normalize_currency);
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            if let Some(c) = &cur {
                if !k.value().starts_with(&format!("{c}\u{0}")) {
                    continue;
                }
            }
            out.push(serde_json::from_slice(v.value()).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Labels whose name, actor, category or address contains `text` (case-insensitive).
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<Label>, LabelError> {
        let q = text.to_lowercase();
        Ok(self
            .all(None)?
            .into_iter()
            .filter(|l| {
                [
                    Some(&l.label),
                    l.actor.as_ref(),
                    Some(&l.category),
                    l.address.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(&q))
            })
            .take(limit)
            .collect())
    }

    pub fn sources(&self) -> Result<Vec<SourceInfo>, LabelError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match r.open_table(SOURCES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Open labels as a TagPack (YAML) that imports back to the same labels.
    pub fn export_tagpack(&self, source: Option<&str>) -> Result<String, LabelError> {
        let mut y = String::from("title: cointrail export\ncreator: cointrail\ntags:\n");
        for l in self
            .all(None)?
            .into_iter()
            .filter(|l| l.valid_to.is_none() && source.is_none_or(|s| s == l.source))
        {
            let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
            match (&l.address, &l.tx_hash) {
                (Some(a), _) => y.push_str(&format!("- address: {}\n", q(a))),
                (None, Some(h)) => y.push_str(&format!("- tx_hash: {}\n", q(h))),
                _ => continue,
            }
            y.push_str(&format!(
                "  currency: {}\n  label: {}\n  category: {}\n  source: {}\n",
                q(&l.currency),
                q(&l.label),
                q(&l.category),
                q(&format!("{} {}", l.source, l.version))
            ));
            if let Some(c) = &l.confidence {
                y.push_str(&format!("  confidence: {}\n", q(c)));
            }
            if let Some(a) = &l.actor {
                y.push_str(&format!("  actor: {}\n", q(a)));
            }
            if l.is_cluster_definer {
                y.push_str("  is_cluster_definer: true\n");
            }
        }
        Ok(y)
    }
}
