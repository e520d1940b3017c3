//! API keys, stored hashed in `DATA_DIR/keys.redb`.
//!
//! A key is `ct_<id>_<secret>`: `id` (8 hex digits) finds the record, `secret` (128 random
//! bits) proves possession. Only SHA-256 of the whole key is stored. A fast hash is enough
//! because the secret is random and long (as for GitHub's tokens); a slow password hash
//! would cost every request milliseconds for nothing.
//!
//! The service never holds the file open: it reads every record at start and whenever the
//! file changes, so `cointrail keys create|revoke` take effect within a reload interval.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Screening and every GET.
    Read,
    /// Also adds labels and creates or deletes cases.
    Write,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            _ => Err(format!("scope '{s}': use read or write")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// Sustained requests per second (a batch counts one per subject).
    pub rate_per_sec: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    /// Unix seconds.
    pub created: u64,
    pub revoked: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {msg}")]
    Store { path: String, msg: String },
    #[error("no API key with id or name '{0}' (see `cointrail keys list`)")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

pub struct KeyStore {
    path: PathBuf,
    db: redb::Database,
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The id part of a presented key, if it has the key's shape.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("ct_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && secret.len() == 32).then_some(id)
}

/// Record that the store changed, in `<store>.stamp` beside it. Readers (the service)
/// watch the stamp, not the store: merely opening a redb file rewrites its header, so the
/// store's own modification time cannot tell a reader's visit from a writer's commit.
pub fn touch_stamp(db: &Path) {
    let mut p = db.as_os_str().to_owned();
    p.push(".stamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Best effort: a missed stamp delays a reload, it loses nothing.
    let _ = std::fs::write(p, now.to_string());
}

/// Where `touch_stamp` records changes of `db`.
pub fn stamp_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".stamp");
    PathBuf::from(p)
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl KeyStore {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("keys.redb")
    }

    pub fn open(data_dir: &Path) -> Result<KeyStore, KeyError> {
        let path = Self::path(data_dir);
        cointrail_chain::private_file::create_private(&path).map_err(|e| KeyError::Store {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let db = redb::Database::create(&path).map_err(|e| KeyError::Store {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Ok(KeyStore { path, db })
    }

    fn err(&self, e: impl std::fmt::Display) -> KeyError {
        KeyError::Store {
            path: self.path.display().to_string(),
            msg: e.to_string(),
        }
    }

    /// Create a key; the returned string is the only copy of it.
    pub fn create(
        &self,
        name: &str,
        scope: Scope,
        rate_per_sec: u32,
        burst: u32,
    ) -> Result<(KeyRecord, String), KeyError> {
        if name.trim().is_empty() {
            return Err(KeyError::Invalid("a key needs a name (who uses it)".into()));
        }
        if rate_per_sec == 0 {
            return Err(KeyError::Invalid("--rate must be at least 1".into()));
        }
        let mut rng = rand::rng();
        let id = format!("{:08x}", rand::Rng::random::<u32>(&mut rng));
        let secret = format!("{:032x}", rand::Rng::random::<u128>(&mut rng));
        let key = format!("ct_{id}_{secret}");
        let rec = KeyRecord {
            id: id.clone(),
            name: name.trim().to_string(),
            scope,
            rate_per_sec,
            burst: burst.max(1),
            hash: hash_key(&key),
            created: now(),
            revoked: None,
        };
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(KEYS).map_err(|e| self.err(e))?;
            if t.get(id.as_str()).map_err(|e| self.err(e))?.is_some() {
                return Err(KeyError::Invalid(
                    "key id collision; run the command again".into(),
                ));
            }
            let v = serde_json::to_vec(&rec).map_err(|e| self.err(e))?;
            t.insert(id.as_str(), v.as_slice())
                .map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        touch_stamp(&self.path);
        Ok((rec, key))
    }

    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match r.open_table(KEYS) {
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

    /// Revoke by id or by name (every key of that name); returns the revoked ids.
    pub fn revoke(&self, id_or_name: &str) -> Result<Vec<String>, KeyError> {
        let targets: Vec<KeyRecord> = self
            .list()?
            .into_iter()
            .filter(|k| (k.id == id_or_name || k.name == id_or_name) && k.revoked.is_none())
            .collect();
        if targets.is_empty() {
            return Err(KeyError::NotFound(id_or_name.to_string()));
        }
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(KEYS).map_err(|e| self.err(e))?;
            for k in &targets {
                let mut k = k.clone();
                k.revoked = Some(now());
                let v = serde_json::to_vec(&k).map_err(|e| self.err(e))?;
                t.insert(k.id.as_str(), v.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))?;
        touch_stamp(&self.path);
        Ok(targets.into_iter().map(|k| k.id).collect())
    }
}

/// Check a presented key against the loaded records: the record if valid and not revoked.
pub fn verify<'a>(
    keys: &'a std::collections::HashMap<String, KeyRecord>,
    presented: &str,
) -> Result<&'a KeyRecord, &'static str> {
    let id = key_id(presented).ok_or("the API key is malformed (expected ct_<id>_<secret>)")?;
    let rec = keys.get(id).ok_or("unknown API key")?;
    if !constant_time_eq(rec.hash.as_bytes(), hash_key(presented).as_bytes()) {
        return Err("unknown API key");
    }
    if rec.revoked.is_some() {
        return Err("this API key was revoked");
    }
    Ok(rec)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let d = tempfile::tempdir().unwrap();
        let s = KeyStore::open(d.path()).unwrap();
        let (rec, key) = s.create("exchange-a", Scope::Read, 100, 20).unwrap();
        assert_eq!(key_id(&key), Some(rec.id.as_str()));
        // The key itself is not stored, only its hash.
        let raw = std::fs::read(KeyStore::path(d.path())).unwrap();
        let secret = key.rsplit('_').next().unwrap();
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let map: std::collections::HashMap<_, _> = s
            .list()
            .unwrap()
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        assert_eq!(verify(&map, &key).unwrap().name, "exchange-a");
        let mut wrong = key.clone();
        wrong.replace_range(
            wrong.len() - 1..,
            if key.ends_with('0') { "1" } else { "0" },
        );
        assert_eq!(verify(&map, &wrong).unwrap_err(), "unknown API key");
        assert!(verify(&map, "nonsense").is_err());
        assert_eq!(s.revoke("exchange-a").unwrap(), vec![rec.id.clone()]);
        let map: std::collections::HashMap<_, _> = s
            .list()
            .unwrap()
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        assert_eq!(verify(&map, &key).unwrap_err(), "this API key was revoked");
        assert!(matches!(s.revoke("exchange-a"), Err(KeyError::NotFound(_))));
        assert!(s.create(" ", Scope::Read, 1, 1).is_err());
    }
}
