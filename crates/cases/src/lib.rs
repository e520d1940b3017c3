//! Cases: registered incidents (the stolen outputs, or everything an address or a
//! transaction received), stored durably in `DATA_DIR/cases.redb`.
//!
//! A case stores what the investigator said, as chain-level strings (txid:vout, txid,
//! address), never index ids: ids change when the chain reorganises or the index is rebuilt,
//! so sources are resolved against the index each time a case is traced.

use bitcoin::hashes::Hash;
use cointrail_chain::view::{ChainView, OutNum};
use cointrail_chain::AddressKey;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::str::FromStr;

const CASES: TableDefinition<&str, &[u8]> = TableDefinition::new("cases");

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaseSource {
    /// One stolen output.
    Outpoint { txid: String, vout: u32 },
    /// Every output of a transaction (the theft transaction).
    Tx { txid: String },
    /// Every output an address received, optionally from a height on.
    Address {
        address: String,
        from_height: Option<u32>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub name: String,
    pub description: String,
    pub sources: Vec<CaseSource>,
    /// Unix seconds.
    pub created: u64,
    /// Where the case came from: `cli`, `tagpack:<file>`, `simulator:<heist id>`, `api`.
    pub origin: String,
}

/// A source resolved against an index: the outputs to trace, and what could not be found.
#[derive(Debug, Default, Serialize)]
pub struct Resolved {
    pub outputs: Vec<OutNum>,
    pub total_sats: u64,
    pub missing: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("case store {0}: {1}")]
    Store(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error("no case named '{0}' (see `cointrail case list`)")]
    NotFound(String),
    #[error("a case named '{0}' exists already; pick another name or delete it first")]
    Exists(String),
}

fn store_err(path: &Path, e: impl std::fmt::Display) -> CaseError {
    CaseError::Store(path.display().to_string(), e.to_string())
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

pub struct CaseStore {
    db: redb::Database,
    path: std::path::PathBuf,
}

impl CaseStore {
    pub fn open(path: &Path) -> Result<CaseStore, CaseError> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| store_err(path, e))?;
        }
        cointrail_chain::private_file::create_private(path).map_err(|e| store_err(path, e))?;
        let db = redb::Database::create(path).map_err(|e| store_err(path, e))?;
        Ok(CaseStore {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn create(&self, case: &Case) -> Result<(), CaseError> {
        validate(case)?;
        let w = self
            .db
            .begin_write()
            .map_err(|e| store_err(&self.path, e))?;
        {
            let mut t = w.open_table(CASES).map_err(|e| store_err(&self.path, e))?;
            if t.get(case.name.as_str())
                .map_err(|e| store_err(&self.path, e))?
                .is_some()
            {
                return Err(CaseError::Exists(case.name.clone()));
            }
            let v = serde_json::to_vec(case).expect("cases serialize");
            t.insert(case.name.as_str(), v.as_slice())
                .map_err(|e| store_err(&self.path, e))?;
        }
        w.commit().map_err(|e| store_err(&self.path, e))?;
        touch_stamp(&self.path);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<Case, CaseError> {
        let r = self.db.begin_read().map_err(|e| store_err(&self.path, e))?;
        let t = match r.open_table(CASES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(CaseError::NotFound(name.into()))
            }
            Err(e) => return Err(store_err(&self.path, e)),
        };
        let v = t
            .get(name)
            .map_err(|e| store_err(&self.path, e))?
            .ok_or_else(|| CaseError::NotFound(name.into()))?;
        serde_json::from_slice(v.value()).map_err(|e| store_err(&self.path, e))
    }

    pub fn list(&self) -> Result<Vec<Case>, CaseError> {
        let r = self.db.begin_read().map_err(|e| store_err(&self.path, e))?;
        let t = match r.open_table(CASES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(e) => return Err(store_err(&self.path, e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| store_err(&self.path, e))? {
            let (_, v) = row.map_err(|e| store_err(&self.path, e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| store_err(&self.path, e))?);
        }
        Ok(out)
    }

    pub fn delete(&self, name: &str) -> Result<(), CaseError> {
        let w = self
            .db
            .begin_write()
            .map_err(|e| store_err(&self.path, e))?;
        {
            let mut t = w.open_table(CASES).map_err(|e| store_err(&self.path, e))?;
            if t.remove(name)
                .map_err(|e| store_err(&self.path, e))?
                .is_none()
            {
                return Err(CaseError::NotFound(name.into()));
            }
        }
        w.commit().map_err(|e| store_err(&self.path, e))?;
        touch_stamp(&self.path);
        Ok(())
    }
}

fn validate(case: &Case) -> Result<(), CaseError> {
    if case.name.trim().is_empty()
        || case.name.len() > 200
        || case.name.chars().any(|c| c.is_control())
    {
        return Err(CaseError::Invalid(
            "a case name must be 1-200 printable characters".into(),
        ));
    }
    if case.sources.is_empty() {
        return Err(CaseError::Invalid(format!(
            "case '{}' has no sources: give --from, --from-tx or --from-address",
            case.name
        )));
    }
    for s in &case.sources {
        if is_evm_source(s) {
            continue;
        }
        match s {
            CaseSource::Outpoint { txid, .. } | CaseSource::Tx { txid } => {
                bitcoin::Txid::from_str(txid)
                    .map_err(|e| CaseError::Invalid(format!("'{txid}' is not a txid: {e}")))?;
            }
            CaseSource::Address { address, .. } => {
                if cointrail_chain::address::address_network(address).is_none()
                    && !address.contains(':')
                {
                    return Err(CaseError::Invalid(format!(
                        "'{address}' is not a valid Bitcoin address"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A source on an EVM chain (Ethereum): a `0x` transaction hash or a `0x` address. Those
/// are traced with the account models (`cointrail-account`), not resolved to outputs.
pub fn is_evm_source(s: &CaseSource) -> bool {
    let hex = |x: &str, n: usize| {
        x.strip_prefix("0x")
            .or_else(|| x.strip_prefix("0X"))
            .is_some_and(|h| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    match s {
        CaseSource::Tx { txid } => hex(txid, 64),
        CaseSource::Address { address, .. } => hex(address, 40),
        CaseSource::Outpoint { .. } => false,
    }
}

/// Parse `TXID:VOUT[,TXID:VOUT…]`.
pub fn parse_outpoints(s: &str) -> Result<Vec<CaseSource>, CaseError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (t, v) = p
                .trim()
                .rsplit_once(':')
                .ok_or_else(|| CaseError::Invalid(format!("'{p}' is not TXID:VOUT")))?;
            bitcoin::Txid::from_str(t)
                .map_err(|e| CaseError::Invalid(format!("'{t}' is not a txid: {e}")))?;
            let vout = v
                .parse()
                .map_err(|_| CaseError::Invalid(format!("'{v}' is not an output index")))?;
            Ok(CaseSource::Outpoint {
                txid: t.to_string(),
                vout,
            })
        })
        .collect()
}

/// Find a case's outputs in an index. What is not there is reported, not guessed.
pub fn resolve(
    view: &dyn ChainView,
    network: bitcoin::Network,
    addr_outputs: &dyn Fn(u32) -> Vec<OutNum>,
    sources: &[CaseSource],
) -> Resolved {
    let mut r = Resolved::default();
    let push = |r: &mut Resolved, o: OutNum| {
        if !r.outputs.contains(&o) {
            r.total_sats += view.output_value(o);
            r.outputs.push(o);
        }
    };
    for s in sources.iter().filter(|s| !is_evm_source(s)) {
        match s {
            CaseSource::Outpoint { txid, vout } => {
                let t = bitcoin::Txid::from_str(txid)
                    .ok()
                    .and_then(|t| view.lookup_txid(&t.to_byte_array()));
                match t {
                    Some(t)
                        if (*vout as u64) < view.tx_outputs(t).end - view.tx_outputs(t).start =>
                    {
                        push(&mut r, view.tx_outputs(t).start + *vout as u64)
                    }
                    Some(_) => r
                        .missing
                        .push(format!("{txid}:{vout}: the transaction has no such output")),
                    None => r
                        .missing
                        .push(format!("{txid}:{vout}: transaction not in the index")),
                }
            }
            CaseSource::Tx { txid } => match bitcoin::Txid::from_str(txid)
                .ok()
                .and_then(|t| view.lookup_txid(&t.to_byte_array()))
            {
                Some(t) => {
                    for o in view.tx_outputs(t) {
                        if view.output_addr(o).is_some() {
                            push(&mut r, o);
                        }
                    }
                }
                None => r
                    .missing
                    .push(format!("{txid}: transaction not in the index")),
            },
            CaseSource::Address {
                address,
                from_height,
            } => {
                match AddressKey::parse(address, network)
                    .ok()
                    .and_then(|k| view.lookup_addr(&k))
                {
                    Some(a) => {
                        for o in addr_outputs(a) {
                            if from_height.is_none_or(|h| view.tx_height(view.output_tx(o)) >= h) {
                                push(&mut r, o);
                            }
                        }
                    }
                    None => r
                        .missing
                        .push(format!("{address}: address not in the index")),
                }
            }
        }
    }
    r.outputs.sort_unstable();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str) -> Case {
        Case {
            name: name.into(),
            description: "test".into(),
            sources: parse_outpoints(
                "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16:0",
            )
            .unwrap(),
            created: 1,
            origin: "cli".into(),
        }
    }

    #[test]
    fn create_list_get_delete_survive_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cases.redb");
        {
            let s = CaseStore::open(&p).unwrap();
            assert!(s.list().unwrap().is_empty());
            s.create(&case("kucoin-2020")).unwrap();
            s.create(&case("bitfinex")).unwrap();
            assert!(matches!(
                s.create(&case("bitfinex")),
                Err(CaseError::Exists(_))
            ));
        }
        let s = CaseStore::open(&p).unwrap();
        assert_eq!(
            s.list()
                .unwrap()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["bitfinex", "kucoin-2020"]
        );
        assert_eq!(s.get("kucoin-2020").unwrap(), case("kucoin-2020"));
        s.delete("bitfinex").unwrap();
        assert!(matches!(s.get("bitfinex"), Err(CaseError::NotFound(_))));
        assert!(matches!(s.delete("bitfinex"), Err(CaseError::NotFound(_))));
    }

    #[test]
    fn bad_sources_are_refused() {
        assert!(parse_outpoints("abc:0").is_err());
        assert!(parse_outpoints(
            "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        )
        .is_err());
        assert!(parse_outpoints(
            "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16:x"
        )
        .is_err());
        let d = tempfile::tempdir().unwrap();
        let s = CaseStore::open(&d.path().join("c.redb")).unwrap();
        let mut c = case("x");
        c.sources = vec![CaseSource::Address {
            address: "1BoatSLRHtKNngkdXEeobR76b53LETtpyX".into(),
            from_height: None,
        }];
        assert!(matches!(s.create(&c), Err(CaseError::Invalid(_))));
        c.sources.clear();
        assert!(matches!(s.create(&c), Err(CaseError::Invalid(_))));
    }
}
