//! The redb store. Tables: `labels` (label key → JSON record), `by_target`
//! (currency\0address-or-tx → label keys), `sources` (name → JSON `SourceInfo`).
//! An import is one write transaction, so it is all-or-nothing.

use crate::error::TagError;
use crate::label::{index_key, normalize_address, normalize_currency, valid_date, Label, Target};
use redb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const LABELS: TableDefinition<&str, &[u8]> = TableDefinition::new("labels");
const BY_TARGET: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("by_target");
const SOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("sources");
const ACTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("actors");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    /// Every version date imported, ascending; the last is current.
    pub versions: Vec<String>,
    pub open_labels: u64,
    pub closed_labels: u64,
    /// Actors this source holds (ActorPacks); sources written before actors were counted
    /// read as 0.
    #[serde(default)]
    pub actors: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportStats {
    pub added: u64,
    pub unchanged: u64,
    pub updated: u64,
    /// Labels absent from this version and therefore closed.
    pub closed: u64,
    pub reopened: u64,
    /// The labels this import opened (added or relisted): what the alert rules for newly
    /// flagged addresses look at.
    pub opened: Vec<Label>,
}

pub struct TagStore {
    db: Database,
    path: std::path::PathBuf,
}
/// Record that the store changed, in `<store>.stamp` beside it. Readers (the service)
/// watch the stamp, not the store: merely opening a redb file rewrites its header, so the
/// store's own modification time cannot tell a reader's visit from a writer's commit.
fn touch_stamp(db: &Path) {
    let mut p = db.as_os_str().to_owned();
    p.push(".stamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Best effort: a missed stamp delays a reload, it loses nothing.
    let _ = std::fs::write(p, now.to_string());
}

impl TagStore {
    pub fn open(path: impl AsRef<Path>) -> Result<TagStore, TagError> {
        cointrail_chain::private_file::create_private(path.as_ref()).map_err(|e| TagError::Io {
            path: path.as_ref().display().to_string(),
            source: e,
        })?;
        let db = Database::create(path.as_ref()).map_err(|e| TagError::Io {
            path: path.as_ref().display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let tx = db.begin_write()?;
        tx.open_table(LABELS)?;
        tx.open_multimap_table(BY_TARGET)?;
        tx.open_table(SOURCES)?;
        tx.open_table(ACTORS)?;
        tx.commit()?;
        Ok(TagStore {
            db,
            path: path.as_ref().to_path_buf(),
        })
    }

    /// Replace the state of `source` by `labels` as of `version` (YYYY-MM-DD). Labels of the
    /// source that are open and absent from `labels` get `valid_to = version`. Re-importing
    /// the same version is a no-op; an older version than the current one is refused
    /// (history is append-only).
    pub fn import(
        &mut self,
        source: &str,
        version: &str,
        labels: Vec<Label>,
    ) -> Result<ImportStats, TagError> {
        if !valid_date(version) {
            return Err(TagError::field(
                source,
                0,
                "version",
                format!("'{version}' is not YYYY-MM-DD"),
            ));
        }
        if source.is_empty() || source.contains('\0') {
            return Err(TagError::field(
                source,
                0,
                "source",
                "empty or contains NUL",
            ));
        }
        // Every way in (parsers, `labels add`, the API) meets the same size limits here; the
        // parsers check first so that their error can name the row.
        for l in &labels {
            if let Some((field, msg)) = l.oversized_field() {
                let (Target::Address(t) | Target::Tx(t)) = &l.target;
                return Err(TagError::field(
                    source,
                    0,
                    field,
                    format!(
                        "the label of {}: {msg}",
                        t.chars().take(100).collect::<String>()
                    ),
                ));
            }
        }
        // Last occurrence of a key wins, as later tags in a pack refine earlier ones.
        let mut new: BTreeMap<String, Label> = BTreeMap::new();
        for mut l in labels {
            l.source = source.into();
            l.valid_from = version.into();
            l.valid_to = None;
            new.insert(l.key(), l);
        }
        let mut stats = ImportStats::default();
        let tx = self.db.begin_write()?;
        {
            let mut src_t = tx.open_table(SOURCES)?;
            let mut info = match src_t.get(source)? {
                Some(v) => serde_json::from_slice::<SourceInfo>(v.value())?,
                None => SourceInfo {
                    name: source.into(),
                    versions: vec![],
                    open_labels: 0,
                    closed_labels: 0,
                    actors: 0,
                },
            };
            if let Some(cur) = info.versions.last() {
                if version < cur.as_str() {
                    return Err(TagError::field(
                        source,
                        0,
                        "version",
                        format!("{version} is older than the imported {cur}"),
                    ));
                }
            }
            let mut lab_t = tx.open_table(LABELS)?;
            let mut idx_t = tx.open_multimap_table(BY_TARGET)?;
            // Close the open labels of this source that are absent now.
            let prefix = format!("{source}\0");
            let end = format!("{source}\u{1}");
            let mut to_close = Vec::new();
            let mut existing: HashSet<String> = HashSet::new();
            for row in lab_t.range(prefix.as_str()..end.as_str())? {
                let (k, v) = row?;
                let k = k.value().to_string();
                if !new.contains_key(&k) {
                    let l: Label = serde_json::from_slice(v.value())?;
                    if l.valid_to.is_none() {
                        to_close.push((k, l));
                    }
                } else {
                    existing.insert(k);
                }
            }
            for (k, mut l) in to_close {
                l.valid_to = Some(version.into());
                lab_t.insert(k.as_str(), serde_json::to_vec(&l)?.as_slice())?;
                stats.closed += 1;
            }
            for (k, mut l) in new {
                if existing.contains(&k) {
                    let old: Label = serde_json::from_slice(
                        lab_t
                            .get(k.as_str())?
                            .map(|v| v.value().to_vec())
                            .unwrap_or_default()
                            .as_slice(),
                    )?;
                    if old.valid_to.is_some() {
                        // Relisted: the closed interval moves to a history key so `as_of`
                        // queries still see it; the main key restarts at this version.
                        let hist = format!("{k}\0{}", old.valid_from);
                        lab_t.insert(hist.as_str(), serde_json::to_vec(&old)?.as_slice())?;
                        idx_t.insert(old.index_key().as_str(), hist.as_str())?;
                        stats.reopened += 1;
                        stats.opened.push(l.clone());
                    } else {
                        l.valid_from = old.valid_from.clone();
                        if old == l {
                            stats.unchanged += 1;
                            continue;
                        }
                        stats.updated += 1;
                    }
                } else {
                    stats.added += 1;
                    stats.opened.push(l.clone());
                    idx_t.insert(l.index_key().as_str(), k.as_str())?;
                }
                lab_t.insert(k.as_str(), serde_json::to_vec(&l)?.as_slice())?;
            }
            if info.versions.last().map(|s| s.as_str()) != Some(version) {
                info.versions.push(version.into());
            }
            let (mut open, mut closed) = (0, 0);
            for row in lab_t.range(prefix.as_str()..end.as_str())? {
                let (_, v) = row?;
                // Cheap check on the JSON, avoids a full decode of every record.
                if memfind(v.value(), b"\"valid_to\":null") {
                    open += 1
                } else {
                    closed += 1
                }
            }
            info.open_labels = open;
            info.closed_labels = closed;
            src_t.insert(source, serde_json::to_vec(&info)?.as_slice())?;
        }
        // Default durability is Immediate: the commit is fsynced before returning.
        tx.commit()?;
        touch_stamp(&self.path);
        Ok(stats)
    }

    /// Add one label to a source (default `user`) at `version`, keeping the source's others.
    pub fn add_label(&mut self, mut label: Label, version: &str) -> Result<ImportStats, TagError> {
        let source = if label.source.is_empty() {
            "user".to_string()
        } else {
            label.source.clone()
        };
        label.source = source.clone();
        let mut all: Vec<Label> = self.source_labels(&source, None)?;
        let version = match self
            .source_info(&source)?
            .and_then(|i| i.versions.last().cloned())
        {
            Some(cur) if cur.as_str() > version => cur,
            _ => version.to_string(),
        };
        all.push(label);
        self.import(&source, &version, all)
    }

    fn labels_at(
        &self,
        key: &str,
        as_of: Option<&str>,
        want_tx: bool,
    ) -> Result<Vec<Label>, TagError> {
        let tx = self.db.begin_read()?;
        let idx = tx.open_multimap_table(BY_TARGET)?;
        let lab = tx.open_table(LABELS)?;
        let mut out = Vec::new();
        for k in idx.get(key)? {
            let k = k?;
            if let Some(v) = lab.get(k.value())? {
                let l: Label = serde_json::from_slice(v.value())?;
                if l.visible(as_of) && matches!(l.target, Target::Tx(_)) == want_tx {
                    out.push(l);
                }
            }
        }
        Ok(out)
    }

    pub fn labels_for_address(
        &self,
        currency: &str,
        addr: &str,
        as_of: Option<&str>,
    ) -> Result<Vec<Label>, TagError> {
        let cur = normalize_currency(currency);
        self.labels_at(
            &index_key(&cur, &normalize_address(&cur, addr)),
            as_of,
            false,
        )
    }

    pub fn labels_for_tx(
        &self,
        currency: &str,
        txid: &str,
        as_of: Option<&str>,
    ) -> Result<Vec<Label>, TagError> {
        let cur = normalize_currency(currency);
        self.labels_at(
            &index_key(&cur, &txid.trim().to_ascii_lowercase()),
            as_of,
            true,
        )
    }

    /// Case-insensitive substring search over label, actor, category, address; current labels.
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<Label>, TagError> {
        let needle = text.to_lowercase();
        let mut out = Vec::new();
        self.for_each(None, |l| {
            let hit = [
                Some(&l.label),
                l.actor.as_ref(),
                l.category.as_ref(),
                l.abuse.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|s| s.to_lowercase().contains(&needle))
                || match &l.target {
                    Target::Address(a) | Target::Tx(a) => a.to_lowercase() == needle,
                };
            if hit {
                out.push(l);
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Visit every target (address or txid, as stored) of `currency` that has labels, in
    /// key order, without reading the labels; stop when `f` returns false. For matching a
    /// large set of addresses against the store at the cost of a key scan.
    pub fn for_each_target(
        &self,
        currency: &str,
        mut f: impl FnMut(&str) -> bool,
    ) -> Result<(), TagError> {
        let cur = normalize_currency(currency);
        let (lo, hi) = (format!("{cur}\0"), format!("{cur}\u{1}"));
        let tx = self.db.begin_read()?;
        let by = tx.open_multimap_table(BY_TARGET)?;
        for row in by.range::<&str>(lo.as_str()..hi.as_str())? {
            let (k, _) = row?;
            let key = k.value();
            if !f(&key[lo.len()..]) {
                break;
            }
        }
        Ok(())
    }

    /// Visit every label visible at `as_of`; stop when `f` returns false.
    pub fn for_each(
        &self,
        as_of: Option<&str>,
        mut f: impl FnMut(Label) -> bool,
    ) -> Result<(), TagError> {
        let tx = self.db.begin_read()?;
        let lab = tx.open_table(LABELS)?;
        for row in lab.iter()? {
            let (_, v) = row?;
            let l: Label = serde_json::from_slice(v.value())?;
            if l.visible(as_of) && !f(l) {
                break;
            }
        }
        Ok(())
    }

    /// Every label ever stored, withdrawn ones too (with their `valid_to`): what screening
    /// needs to judge each transfer by the labels valid at its time.
    pub fn every_label(&self) -> Result<Vec<Label>, TagError> {
        let tx = self.db.begin_read()?;
        let lab = tx.open_table(LABELS)?;
        let mut out = Vec::new();
        for row in lab.iter()? {
            out.push(serde_json::from_slice(row?.1.value())?);
        }
        Ok(out)
    }

    pub fn source_labels(&self, source: &str, as_of: Option<&str>) -> Result<Vec<Label>, TagError> {
        let tx = self.db.begin_read()?;
        let lab = tx.open_table(LABELS)?;
        let (prefix, end) = (format!("{source}\0"), format!("{source}\u{1}"));
        let mut out = Vec::new();
        for row in lab.range(prefix.as_str()..end.as_str())? {
            let l: Label = serde_json::from_slice(row?.1.value())?;
            if l.visible(as_of) {
                out.push(l);
            }
        }
        Ok(out)
    }

    pub fn source_info(&self, source: &str) -> Result<Option<SourceInfo>, TagError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SOURCES)?;
        Ok(match t.get(source)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    pub fn list_sources(&self) -> Result<Vec<SourceInfo>, TagError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SOURCES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(serde_json::from_slice(row?.1.value())?);
        }
        Ok(out)
    }

    /// All labels visible at `as_of`, for export.
    pub fn all_labels(&self, as_of: Option<&str>) -> Result<Vec<Label>, TagError> {
        let mut v = Vec::new();
        self.for_each(as_of, |l| {
            v.push(l);
            true
        })?;
        Ok(v)
    }
}

impl TagStore {
    /// Store ActorPack actors (by id; a later import replaces an actor of the same id).
    pub fn import_actors(&mut self, actors: &[crate::Actor]) -> Result<usize, TagError> {
        self.import_actors_from(None, actors)
    }

    /// Store actors and record `(source, version)` among the sources (`labels sources`), so
    /// an ActorPack's import is listed like any other source's.
    pub fn import_actors_from(
        &mut self,
        source: Option<(&str, &str)>,
        actors: &[crate::Actor],
    ) -> Result<usize, TagError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(ACTORS)?;
            for a in actors {
                t.insert(a.id.as_str(), serde_json::to_vec(a)?.as_slice())?;
            }
            if let Some((name, version)) = source {
                let mut src_t = tx.open_table(SOURCES)?;
                let mut info = match src_t.get(name)? {
                    Some(v) => serde_json::from_slice::<SourceInfo>(v.value())?,
                    None => SourceInfo {
                        name: name.into(),
                        versions: vec![],
                        open_labels: 0,
                        closed_labels: 0,
                        actors: 0,
                    },
                };
                if info.versions.last().map(String::as_str) != Some(version) {
                    info.versions.push(version.into());
                    info.versions.sort();
                    info.versions.dedup();
                }
                info.actors = actors.len() as u64;
                src_t.insert(name, serde_json::to_vec(&info)?.as_slice())?;
            }
        }
        tx.commit()?;
        touch_stamp(&self.path);
        Ok(actors.len())
    }

    pub fn actor(&self, id: &str) -> Result<Option<crate::Actor>, TagError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(ACTORS)?;
        Ok(match t.get(id)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
