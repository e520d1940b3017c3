//! The attributions of a data directory, persisted (`DATA_DIR/state/attribution.bin`) so
//! that opening the engine maps them instead of parsing every `attribution.tsv` line and
//! label again (on the 10M chain, 1.5M lines: 10 s and 3 GB at every command).
//!
//! Three layers, each rebuilt only when what it depends on changed:
//! - by address key (type + full 32-byte hash, as the sources name addresses): every
//!   attribution, grouped per key in key order. Depends on the sources only
//!   (`attribution.tsv`'s modification time and length, the label store's change stamp;
//!   the label sources' versions are recorded beside them).
//! - by address id: the keys the index held when the state was built, with a bitset over
//!   ids. Ids are dense and append-only, so they stay valid while the chain only grows:
//!   the file records its block count and tip hash, and is re-resolved when that block is
//!   no longer on the chain (a reorganisation may give ids to other addresses) or when
//!   the index has grown much since. Keys the index did not hold then are looked up at
//!   open, and only when the index has new addresses.
//! - by cluster: the labels of each multi-input cluster holding an attributed address,
//!   for the clustering state recorded (transactions covered, last txid, addresses).
//!
//! Answers are the same as building the maps from the sources (`tests`; the order of a
//! cluster's labels is now fixed: by address id, then source order).

use crate::state_file::{self, bit, u32_at, u64_at, StateFile, Unusable};
use anyhow::Result;
use cointrail_chain::view::{AddrId, ChainView};
use cointrail_chain::AddressKey;
use cointrail_clustering::Clustering;
use cointrail_index::Index;
use cointrail_risk::Attribution;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CTATTR01";
const REC: usize = 40;
const NONE: u32 = u32::MAX;

/// Re-resolve ids when the index holds this many more addresses than when the state was
/// built (each new address is otherwise one extra lookup at open for unresolved keys, and
/// labelled addresses among them answer from a small map).
const REGROW_ADDRS: u64 = 1_000_000;

pub fn path(data_dir: &Path) -> PathBuf {
    state_file::state_dir(data_dir).join("attribution.bin")
}

mod sec {
    pub const STR_OFF: usize = 0;
    pub const STR: usize = 1;
    pub const RECS: usize = 2;
    pub const KEYS: usize = 3;
    pub const KEY_STARTS: usize = 4;
    pub const KEY_IDS: usize = 5;
    pub const IDS: usize = 6;
    pub const ID_BITS: usize = 7;
    pub const CROOTS: usize = 8;
    pub const CSTARTS: usize = 9;
    pub const CRECS: usize = 10;
    pub const CBITS: usize = 11;
    pub const COUNT: usize = 12;
}

/// One attribution with its strings interned.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Rec {
    name: u32,
    category: u32,
    source: u32,
    entity: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
}

impl Rec {
    fn encode(&self, v: &mut Vec<u8>) {
        let flags = self.entity.is_some() as u32
            | (self.from.is_some() as u32) << 1
            | (self.to.is_some() as u32) << 2;
        for x in [self.name, self.category, self.source, flags] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for x in [self.entity, self.from, self.to] {
            v.extend_from_slice(&x.unwrap_or(0).to_le_bytes());
        }
    }
    /// Record `i` of a records section (`None` past its end: a damaged index).
    fn decode(s: &[u8], i: usize) -> Option<Rec> {
        let r = s.get(REC * i..REC * (i + 1))?;
        let flags = u32_at(r, 3);
        let opt = |bitn: u32, v: u64| (flags & (1 << bitn) != 0).then_some(v);
        Some(Rec {
            name: u32_at(r, 0),
            category: u32_at(r, 1),
            source: u32_at(r, 2),
            entity: opt(0, u64_at(&r[16..], 0)),
            from: opt(1, u64_at(&r[16..], 1)),
            to: opt(2, u64_at(&r[16..], 2)),
        })
    }
}

/// Attributions by address key, interned: the part built from the sources.
struct Keyed {
    strings: Vec<String>,
    recs: Vec<Rec>,
    keys: Vec<[u8; 33]>,
    /// `keys.len() + 1` entries: key `i`'s records are `recs[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
    /// What the sources were, when built (meta's `sources` and `label_versions`).
    sources: serde_json::Value,
    label_versions: serde_json::Value,
}

impl Keyed {
    /// From source records in source order: grouped per key (order kept within a key).
    fn from_sources(
        list: Vec<([u8; 33], Attribution)>,
        sources: serde_json::Value,
        label_versions: serde_json::Value,
    ) -> Keyed {
        let mut strings = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |s: &str| -> u32 {
            if let Some(&i) = ids.get(s) {
                return i;
            }
            let i = strings.len() as u32;
            strings.push(s.to_string());
            ids.insert(s.to_string(), i);
            i
        };
        let mut rows: Vec<([u8; 33], Rec)> = list
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    Rec {
                        name: intern(&a.name),
                        category: intern(&a.category),
                        source: intern(&a.source),
                        entity: a.entity,
                        from: a.valid_from,
                        to: a.valid_to,
                    },
                )
            })
            .collect();
        rows.sort_by_key(|a| a.0); // stable: source order within a key
        let (mut keys, mut starts, mut recs) = (Vec::new(), Vec::new(), Vec::new());
        for (k, r) in rows {
            if keys.last() != Some(&k) {
                keys.push(k);
                starts.push(recs.len() as u32);
            }
            recs.push(r);
        }
        starts.push(recs.len() as u32);
        Keyed {
            strings,
            recs,
            keys,
            starts,
            sources,
            label_versions,
        }
    }

    /// The keyed part of an existing state file (to re-resolve ids or clusters only),
    /// whose every byte was checked against its checksum.
    fn from_file(f: &StateFile) -> Keyed {
        let off = f.section(sec::STR_OFF);
        let blob = f.section(sec::STR);
        let nstr = off.len() / 4 - 1;
        let strings = (0..nstr)
            .map(|i| {
                String::from_utf8_lossy(&blob[u32_at(off, i) as usize..u32_at(off, i + 1) as usize])
                    .into_owned()
            })
            .collect();
        let recs_s = f.section(sec::RECS);
        let recs = (0..recs_s.len() / REC)
            .filter_map(|i| Rec::decode(recs_s, i))
            .collect();
        let keys = f
            .section(sec::KEYS)
            .chunks_exact(33)
            .map(|c| c.try_into().unwrap())
            .collect();
        let ks = f.section(sec::KEY_STARTS);
        let starts = (0..ks.len() / 4).map(|i| u32_at(ks, i)).collect();
        Keyed {
            strings,
            recs,
            keys,
            starts,
            sources: f.meta["sources"].clone(),
            label_versions: f.meta["label_versions"].clone(),
        }
    }
}

/// What the sources are now: compared with what a state file was built from.
pub fn sources_now(data_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "attribution_tsv": state_file::file_fingerprint(&data_dir.join("attribution.tsv")),
        "labels": state_file::store_fingerprint(&data_dir.join("labels.redb")),
    })
}

fn index_binding(idx: &Index) -> serde_json::Value {
    let n = idx.block_count();
    serde_json::json!({
        "network": idx.network_name(),
        "block_count": n,
        "tip_hash": (n > 0).then(|| hex(&idx.block_hash(n - 1))),
        "addr_count": idx.addr_count(),
    })
}

fn clustering_binding(c: Option<&Clustering>) -> serde_json::Value {
    match c {
        None => serde_json::Value::Null,
        Some(c) => serde_json::json!({
            "covered_txs": c.covered_txs,
            "last_txid": c.last_txid.map(|t| hex(&t)),
            "addr_count": c.addr_count(),
        }),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Build the whole state: keyed → ids resolved on `idx` → clusters of `c`.
fn encode(k: &Keyed, idx: &Index, c: Option<&Clustering>) -> Vec<u8> {
    // Strings.
    let (mut off, mut blob) = (Vec::new(), Vec::new());
    for s in &k.strings {
        off.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        blob.extend_from_slice(s.as_bytes());
    }
    off.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    let mut recs = Vec::with_capacity(k.recs.len() * REC);
    for r in &k.recs {
        r.encode(&mut recs);
    }
    let keys: Vec<u8> = k.keys.iter().flatten().copied().collect();
    let starts: Vec<u8> = k.starts.iter().flat_map(|x| x.to_le_bytes()).collect();
    // Ids.
    let mut key_ids = Vec::with_capacity(k.keys.len());
    let mut ids: Vec<(u32, u32)> = Vec::new();
    for (i, kb) in k.keys.iter().enumerate() {
        let id = AddressKey::from_bytes(kb).and_then(|key| idx.lookup_addr(&key));
        key_ids.push(id.unwrap_or(NONE));
        if let Some(id) = id {
            ids.push((id, i as u32));
        }
    }
    ids.sort_unstable();
    let addr_count = idx.addr_count() as usize;
    let id_bits = state_file::bitset(ids.iter().map(|x| x.0), addr_count);
    let key_ids_b: Vec<u8> = key_ids.iter().flat_map(|x| x.to_le_bytes()).collect();
    let ids_b: Vec<u8> = ids
        .iter()
        .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
        .collect();
    // Clusters: each cluster's labels, by (name, category) once, in address-id order.
    let mut by_root: HashMap<u32, Vec<Rec>, foldhash::fast::RandomState> = HashMap::default();
    if let Some(c) = c {
        for &(a, ki) in &ids {
            if a as usize >= c.addr_count() {
                continue;
            }
            let root = c.cluster_of(a);
            let v = by_root.entry(root).or_default();
            for r in &k.recs[k.starts[ki as usize] as usize..k.starts[ki as usize + 1] as usize] {
                if !v
                    .iter()
                    .any(|x| x.name == r.name && x.category == r.category)
                {
                    v.push(Rec {
                        entity: Some(root as u64),
                        ..*r
                    });
                }
            }
        }
    }
    let mut roots: Vec<u32> = by_root.keys().copied().collect();
    roots.sort_unstable();
    let (mut cstarts, mut crecs) = (Vec::new(), Vec::new());
    for r in &roots {
        cstarts.extend_from_slice(&((crecs.len() / REC) as u32).to_le_bytes());
        for x in &by_root[r] {
            x.encode(&mut crecs);
        }
    }
    cstarts.extend_from_slice(&((crecs.len() / REC) as u32).to_le_bytes());
    let cbits = state_file::bitset(roots.iter().copied(), c.map_or(0, |c| c.addr_count()));
    let roots_b: Vec<u8> = roots.iter().flat_map(|x| x.to_le_bytes()).collect();
    let meta = serde_json::json!({
        "kind": "attribution",
        "sources": k.sources,
        "label_versions": k.label_versions,
        "index": index_binding(idx),
        "clustering": clustering_binding(c),
        "counts": {
            "keys": k.keys.len(),
            "attributions": k.recs.len(),
            "attributed_addresses": ids.len(),
            "labelled_clusters": roots.len(),
        },
    });
    let mut sections: Vec<&[u8]> = vec![&[]; sec::COUNT];
    sections[sec::STR_OFF] = &off;
    sections[sec::STR] = &blob;
    sections[sec::RECS] = &recs;
    sections[sec::KEYS] = &keys;
    sections[sec::KEY_STARTS] = &starts;
    sections[sec::KEY_IDS] = &key_ids_b;
    sections[sec::IDS] = &ids_b;
    sections[sec::ID_BITS] = &id_bits;
    sections[sec::CROOTS] = &roots_b;
    sections[sec::CSTARTS] = &cstarts;
    sections[sec::CRECS] = &crecs;
    sections[sec::CBITS] = &cbits;
    state_file::encode(MAGIC, &meta, &sections)
}

/// The attributions of a data directory, mapped.
pub struct AttrState {
    f: StateFile,
    /// Addresses the index gave ids at or past the file's `addr_count` that carry an
    /// attribution: id → key index.
    extra: HashMap<AddrId, u32, foldhash::fast::RandomState>,
    /// Ids below this are answered from the file's id table.
    resolved_below: u64,
    /// What happened at open, for the note and the tests: `opened`, or why it was rebuilt.
    pub how: String,
}

impl AttrState {
    /// Open the persisted state, rebuilding what is stale (saying why, once).
    pub fn load(data_dir: &Path, idx: &Index, c: Option<&Clustering>) -> Result<AttrState> {
        let p = path(data_dir);
        let now = sources_now(data_dir);
        let why;
        let keyed = match state_file::open(&p, MAGIC) {
            Ok(f) => {
                if f.meta["sources"] != now {
                    why = "attribution.tsv or the label store changed since it was built";
                    None
                } else if f.sections.len() != sec::COUNT {
                    why = "it has another layout";
                    None
                } else if let Err(m) = check_layout(&f) {
                    tracing::warn!(
                        "{} is unusable ({m}): rebuilding it from attribution.tsv and the label store",
                        p.display()
                    );
                    why = "it was unusable";
                    None
                } else {
                    match stale_binding(&f, idx, c) {
                        None => {
                            return Ok(AttrState::new(f, idx, "opened".into()));
                        }
                        // Its keyed part is reused: read whole, so checked whole first.
                        Some(w) => match state_file::verify(&p) {
                            Ok(_) => {
                                why = w;
                                Some(Keyed::from_file(&f))
                            }
                            Err(e) => {
                                let m = match e {
                                    Unusable::Corrupt(m) => m,
                                    Unusable::Missing => "it vanished".into(),
                                };
                                tracing::warn!(
                                    "{} is unusable ({m}): rebuilding it from attribution.tsv and the label store",
                                    p.display()
                                );
                                why = "it was unusable";
                                None
                            }
                        },
                    }
                }
            }
            Err(Unusable::Missing) => {
                why = "";
                None
            }
            Err(Unusable::Corrupt(m)) => {
                tracing::warn!(
                    "{} is unusable ({m}): rebuilding it from attribution.tsv and the label store",
                    p.display()
                );
                why = "it was unusable";
                None
            }
        };
        let (keyed, how) = match keyed {
            Some(k) => {
                tracing::info!("{}: {why}: resolving its addresses again", p.display());
                (k, format!("re-resolved: {why}"))
            }
            None => {
                if !why.is_empty() && why != "it was unusable" {
                    tracing::info!("{}: {why}: rebuilding it", p.display());
                }
                let (list, versions) = crate::wiring::read_sources(data_dir, idx.render_network())?;
                // Fingerprints taken before reading: a change while reading is seen next time.
                let how = if why.is_empty() {
                    "built".to_string()
                } else {
                    format!("rebuilt: {why}")
                };
                (Keyed::from_sources(list, now, versions), how)
            }
        };
        let bytes = encode(&keyed, idx, c);
        drop(keyed);
        let f = state_file::persist(&p, MAGIC, bytes)?;
        Ok(AttrState::new(f, idx, how))
    }

    fn new(f: StateFile, idx: &Index, how: String) -> AttrState {
        let resolved_below = f.meta["index"]["addr_count"].as_u64().unwrap_or(0);
        let mut extra = HashMap::default();
        // Keys unresolved when built may have appeared since: only when there are new
        // addresses.
        if idx.addr_count() > resolved_below {
            let (keys, kid) = (f.section(sec::KEYS), f.section(sec::KEY_IDS));
            for i in 0..kid.len() / 4 {
                if u32_at(kid, i) != NONE {
                    continue;
                }
                let kb: &[u8; 33] = keys[33 * i..33 * i + 33].try_into().unwrap();
                if let Some(a) = AddressKey::from_bytes(kb).and_then(|k| idx.lookup_addr(&k)) {
                    if a as u64 >= resolved_below {
                        extra.insert(a, i as u32);
                    }
                }
            }
        }
        AttrState {
            f,
            extra,
            resolved_below,
            how,
        }
    }

    pub fn meta(&self) -> &serde_json::Value {
        &self.f.meta
    }

    /// The file's checksum: names this exact set of attributions (the case taint built on
    /// them records it).
    pub fn checksum(&self) -> u64 {
        self.f.checksum
    }

    /// Addresses with attributions of their own, and clusters with labels.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.f.section(sec::IDS).len() / 8 + self.extra.len(),
            self.f.section(sec::CROOTS).len() / 4,
        )
    }

    /// String `i` (bounds-checked: a damaged offset gives an empty string, not a panic;
    /// `cointrail state verify` finds such damage).
    fn string(&self, i: u32) -> String {
        let off = self.f.section(sec::STR_OFF);
        let at = |k: usize| off.get(4 * k..4 * k + 4).map(|_| u32_at(off, k) as usize);
        let s = match (at(i as usize), at(i as usize + 1)) {
            (Some(a), Some(b)) => self.f.section(sec::STR).get(a..b).unwrap_or_default(),
            _ => &[],
        };
        String::from_utf8_lossy(s).into_owned()
    }

    fn attribution(&self, r: Rec) -> Attribution {
        Attribution {
            entity: r.entity,
            name: self.string(r.name),
            category: self.string(r.category),
            source: self.string(r.source),
            valid_from: r.from,
            valid_to: r.to,
        }
    }

    fn key_attributions(&self, ki: u32) -> Vec<Attribution> {
        let ks = self.f.section(sec::KEY_STARTS);
        let recs = self.f.section(sec::RECS);
        if 4 * (ki as usize + 2) > ks.len() {
            return Vec::new();
        }
        (u32_at(ks, ki as usize)..u32_at(ks, ki as usize + 1))
            .map_while(|i| Rec::decode(recs, i as usize))
            .map(|r| self.attribution(r))
            .collect()
    }

    /// The address's own attributions (none: empty).
    pub fn of_address(&self, a: AddrId) -> Vec<Attribution> {
        if (a as u64) < self.resolved_below {
            if !bit(self.f.section(sec::ID_BITS), a as u64) {
                return Vec::new();
            }
            let ids = self.f.section(sec::IDS);
            let n = ids.len() / 8;
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let x = u32_at(ids, 2 * mid);
                if x < a {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if lo < n && u32_at(ids, 2 * lo) == a {
                return self.key_attributions(u32_at(ids, 2 * lo + 1));
            }
            Vec::new()
        } else {
            self.extra
                .get(&a)
                .map(|&k| self.key_attributions(k))
                .unwrap_or_default()
        }
    }

    /// The labels of the cluster whose id (`Clustering::cluster_of`) is `root`.
    pub fn of_cluster(&self, root: AddrId) -> Vec<Attribution> {
        if !bit(self.f.section(sec::CBITS), root as u64) {
            return Vec::new();
        }
        let roots = self.f.section(sec::CROOTS);
        let n = roots.len() / 4;
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if u32_at(roots, mid) < root {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo >= n || u32_at(roots, lo) != root {
            return Vec::new();
        }
        let (cs, recs) = (self.f.section(sec::CSTARTS), self.f.section(sec::CRECS));
        if 4 * (lo + 2) > cs.len() {
            return Vec::new();
        }
        (u32_at(cs, lo)..u32_at(cs, lo + 1))
            .map_while(|i| Rec::decode(recs, i as usize))
            .map(|r| self.attribution(r))
            .collect()
    }
}

/// The sections' lengths against each other and against the meta record's counts, and the
/// offset tables' first and last entries: what a file cut, padded or overwritten in a
/// section table would break, checked in constant time (the content is checked against the
/// checksum when the file is written and by `cointrail state verify`). What passes is
/// safe to read: every offset read later is bounds-checked.
fn check_layout(f: &StateFile) -> std::result::Result<(), String> {
    let len = |i: usize| f.sections[i].len();
    let last_u32 = |i: usize| {
        let s = f.section(i);
        (s.len() >= 4).then(|| u32_at(s, s.len() / 4 - 1) as usize)
    };
    let first_u32 = |i: usize| (len(i) >= 4).then(|| u32_at(f.section(i), 0) as usize);
    let count = |k: &str| f.meta["counts"][k].as_u64().map(|n| n as usize);
    let bits = |n: Option<u64>| n.map(|n| 8 * (n as usize).div_ceil(64));
    let nkeys = len(sec::KEYS) / 33;
    let nrecs = len(sec::RECS) / REC;
    let nroots = len(sec::CROOTS) / 4;
    let ok = len(sec::KEYS).is_multiple_of(33)
        && len(sec::RECS).is_multiple_of(REC)
        && len(sec::CRECS).is_multiple_of(REC)
        && len(sec::STR_OFF).is_multiple_of(4)
        && len(sec::CROOTS).is_multiple_of(4)
        && len(sec::IDS).is_multiple_of(8)
        && first_u32(sec::STR_OFF) == Some(0)
        && last_u32(sec::STR_OFF) == Some(len(sec::STR))
        && len(sec::KEY_STARTS) == 4 * (nkeys + 1)
        && first_u32(sec::KEY_STARTS) == Some(0)
        && last_u32(sec::KEY_STARTS) == Some(nrecs)
        && len(sec::KEY_IDS) == 4 * nkeys
        && len(sec::CSTARTS) == 4 * (nroots + 1)
        && first_u32(sec::CSTARTS) == Some(0)
        && last_u32(sec::CSTARTS) == Some(len(sec::CRECS) / REC)
        && Some(len(sec::ID_BITS)) == bits(f.meta["index"]["addr_count"].as_u64())
        && Some(len(sec::CBITS))
            == bits(Some(
                f.meta["clustering"]["addr_count"].as_u64().unwrap_or(0),
            ))
        && count("keys") == Some(nkeys)
        && count("attributions") == Some(nrecs)
        && count("attributed_addresses") == Some(len(sec::IDS) / 8)
        && count("labelled_clusters") == Some(nroots);
    if ok {
        Ok(())
    } else {
        Err("its sections do not fit together (damaged)".into())
    }
}

/// Why the id or cluster layer of a current-sources file no longer fits, or `None`.
fn stale_binding(f: &StateFile, idx: &Index, c: Option<&Clustering>) -> Option<&'static str> {
    let b = &f.meta["index"];
    if b["network"].as_str() != Some(idx.network_name()) {
        return Some("it was built for another network");
    }
    let n = b["block_count"].as_u64().unwrap_or(u64::MAX);
    if n > idx.block_count() {
        return Some("the chain is shorter than when it was built (a reorganisation)");
    }
    if n > 0 && b["tip_hash"].as_str() != Some(&hex(&idx.block_hash(n - 1))) {
        return Some("the block it was built at left the chain (a reorganisation)");
    }
    let built_addrs = b["addr_count"].as_u64().unwrap_or(0);
    if idx.addr_count() < built_addrs {
        return Some("the index holds fewer addresses than when it was built");
    }
    if idx.addr_count() - built_addrs >= REGROW_ADDRS {
        return Some("the index grew by a million addresses or more");
    }
    if f.meta["clustering"] != clustering_binding(c) {
        return Some("the clustering changed");
    }
    None
}
