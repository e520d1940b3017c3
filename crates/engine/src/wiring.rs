//! Plugging the data directory's attributions, clustering and CoinJoin detection into the
//! engine.
//!
//! Attribution sources, all optional:
//! - `DATA_DIR/attribution.tsv`: `address<TAB>category<TAB>name[<TAB>entity]` lines, the
//!   simplest way to name services (the demo writes one for the simulated services).
//! - With a clustering (`cointrail cluster build`), a label on any address names its whole
//!   cluster, as an analytics vendor's entity labels do.

use crate::Engine;
use anyhow::{Context, Result};
use cointrail_chain::view::{AddrId, ChainView};
use cointrail_chain::AddressKey;
use cointrail_clustering::{Clustering, NetParams};
use cointrail_index::Index;
use cointrail_risk::{Attribution, Attributor};
use cointrail_trace::CoinJoinInfo;
use std::collections::HashMap as StdHashMap;

/// Screening looks every visited address up here: a fast hash (keys are dense ids, not
/// attacker-chosen strings) instead of SipHash.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::path::Path;
use std::sync::Arc;

/// One bit per id: is there anything in the map for it. Screening visits mostly unlabelled
/// addresses; this answers them from a few MB that stay in cache instead of a probe into a
/// table of millions of entries (a cache miss each).
struct Bits(Vec<u64>);

impl Bits {
    fn of<'a>(ids: impl Iterator<Item = &'a AddrId>) -> Bits {
        let mut v: Vec<u64> = Vec::new();
        for &i in ids {
            let w = i as usize / 64;
            if v.len() <= w {
                v.resize(w + 1, 0);
            }
            v[w] |= 1 << (i % 64);
        }
        Bits(v)
    }
    #[inline]
    fn has(&self, i: AddrId) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

struct MapAttributor {
    addr_bits: Bits,
    cluster_bits: Bits,
    by_addr: HashMap<AddrId, Vec<Attribution>>,
    by_cluster: HashMap<AddrId, Vec<Attribution>>,
    clusters: Option<Arc<Clustering>>,
    /// Block time by position; heights start at `start`.
    times: Vec<u32>,
    start: u32,
}

impl Attributor for MapAttributor {
    fn attribute(&self, addr: AddrId) -> Vec<Attribution> {
        if self.addr_bits.has(addr) {
            if let Some(v) = self.by_addr.get(&addr) {
                return v.clone();
            }
        }
        match &self.clusters {
            Some(c) if (addr as usize) < c.addr_count() => {
                let root = c.cluster_of(addr);
                if !self.cluster_bits.has(root) {
                    return Vec::new();
                }
                self.by_cluster.get(&root).cloned().unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
    fn time_of_height(&self, h: u32) -> u64 {
        h.checked_sub(self.start)
            .and_then(|i| self.times.get(i as usize))
            .copied()
            .unwrap_or(h) as u64
    }
}

/// Attribution from the persisted state (`attr_state`): what every command and the service
/// use; `MapAttributor` is the same built in memory from the sources.
struct StateAttributor {
    state: crate::attr_state::AttrState,
    clusters: Option<Arc<Clustering>>,
    times: Vec<u32>,
    start: u32,
}

impl Attributor for StateAttributor {
    fn attribute(&self, addr: AddrId) -> Vec<Attribution> {
        let own = self.state.of_address(addr);
        if !own.is_empty() {
            return own;
        }
        match &self.clusters {
            Some(c) if (addr as usize) < c.addr_count() => {
                self.state.of_cluster(c.cluster_of(addr))
            }
            _ => Vec::new(),
        }
    }
    fn time_of_height(&self, h: u32) -> u64 {
        h.checked_sub(self.start)
            .and_then(|i| self.times.get(i as usize))
            .copied()
            .unwrap_or(h) as u64
    }
}

/// Address attributions from `attribution.tsv` and the label store, by index id (the
/// addresses the index holds). Every attribution in memory (~800 B a line at 10M): for the
/// reference (`attach_from_sources`) and the export, which need them all; the others
/// stream the sources (`for_each_source`).
fn read_attribution(data_dir: &Path, idx: &Index) -> Result<HashMap<AddrId, Vec<Attribution>>> {
    let mut by_addr: HashMap<AddrId, Vec<Attribution>> = HashMap::default();
    for_each_source(data_dir, idx.render_network(), |k, a| {
        if let Some(id) = AddressKey::from_bytes(&k).and_then(|key| idx.lookup_addr(&key)) {
            by_addr.entry(id).or_default().push(a);
        }
    })?;
    Ok(by_addr)
}

/// Attributions by full address key, in source order.
pub type KeyedAttributions = Vec<([u8; 33], Attribution)>;

/// Every Bitcoin attribution of the sources, by address key, in source order
/// (`attribution.tsv` lines, then the label store's labels), and the label sources'
/// versions. All in memory: `for_each_source` streams them.
pub fn read_sources(
    data_dir: &Path,
    net: bitcoin::Network,
) -> Result<(KeyedAttributions, serde_json::Value)> {
    let mut out = Vec::new();
    let versions = for_each_source(data_dir, net, |k, a| out.push((k, a)))?;
    Ok((out, versions))
}

/// Every Bitcoin attribution of the sources, by address key, in source order
/// (`attribution.tsv` lines, then the label store's labels), handed to `f` one at a time
/// as it is read (`attribution.tsv` through a buffered reader, never whole in memory);
/// returns the label sources' versions.
pub fn for_each_source(
    data_dir: &Path,
    net: bitcoin::Network,
    mut f: impl FnMut([u8; 33], Attribution),
) -> Result<serde_json::Value> {
    use std::io::BufRead;
    let path = data_dir.join("attribution.tsv");
    if path.exists() {
        let file =
            std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut r = std::io::BufReader::with_capacity(1 << 16, file);
        let mut line = String::new();
        let mut i = 0usize;
        loop {
            line.clear();
            if r.read_line(&mut line)
                .with_context(|| format!("reading {} line {}", path.display(), i + 1))?
                == 0
            {
                break;
            }
            i += 1;
            // As `str::lines`: the line ending, `\n` or `\r\n`, is not part of the line.
            let l = line.strip_suffix('\n').unwrap_or(&line);
            let l = l.strip_suffix('\r').unwrap_or(l);
            // 0x lines name EVM accounts: `evm::EvmSide::open` reads those.
            if l.starts_with('#')
                || l.trim().is_empty()
                || is_evm_address(l.split('\t').next().unwrap_or(""))
            {
                continue;
            }
            let mut fs = l.split('\t');
            let (Some(addr), Some(category), Some(name)) = (fs.next(), fs.next(), fs.next()) else {
                anyhow::bail!(
                    "{} line {}: expected address, category, name separated by tabs",
                    path.display(),
                    i
                );
            };
            let key = AddressKey::parse(addr, net)
                .map_err(|m| anyhow::anyhow!("{} line {}: {m}", path.display(), i))?;
            f(
                key.to_bytes(),
                Attribution {
                    entity: fs.next().and_then(|x| x.parse().ok()),
                    name: name.to_string(),
                    category: category.to_string(),
                    source: "attribution.tsv".into(),
                    valid_from: None,
                    valid_to: None,
                },
            );
        }
    }
    // The label store: every BTC label, open and closed, with its validity as times.
    let store_path = data_dir.join("labels.redb");
    let mut versions = serde_json::Map::new();
    if store_path.exists() {
        let s = cointrail_tags::TagStore::open(&store_path)?;
        for src in s.list_sources()? {
            versions.insert(src.name.clone(), serde_json::json!(src.versions.last()));
        }
        for l in s.every_label()?.into_iter().filter(|l| l.currency == "BTC") {
            let cointrail_tags::Target::Address(addr) = &l.target else {
                continue;
            };
            let Ok(key) = AddressKey::parse(addr, net) else {
                continue;
            };
            f(
                key.to_bytes(),
                Attribution {
                    entity: None,
                    name: l
                        .actor
                        .clone()
                        .filter(|x| !x.is_empty())
                        .unwrap_or(l.label.clone()),
                    category: l.risk_category().unwrap_or("unknown").to_string(),
                    source: l.source.clone(),
                    valid_from: date_to_unix(&l.valid_from),
                    valid_to: l.valid_to.as_deref().and_then(date_to_unix),
                },
            );
        }
    }
    Ok(serde_json::Value::Object(versions))
}

/// Every attributed address with its own labels (not its cluster's), in address-id order,
/// each address's labels in the order screening reads them: what `export --format parquet`
/// writes as the `labels` table, so the Spark jobs attribute as `MapAttributor` does.
pub fn address_attributions(
    data_dir: &Path,
    idx: &Index,
) -> Result<Vec<(AddrId, Vec<Attribution>)>> {
    let mut v: Vec<(AddrId, Vec<Attribution>)> =
        read_attribution(data_dir, idx)?.into_iter().collect();
    v.sort_unstable_by_key(|x| x.0);
    Ok(v)
}

/// Every indexed address attributed with exactly this name (case-insensitive), from
/// `attribution.tsv` and the label store (streamed: only the matches are kept).
pub fn addresses_named(data_dir: &Path, idx: &Index, name: &str) -> Result<Vec<AddrId>> {
    let mut v: Vec<AddrId> = Vec::new();
    for_each_source(data_dir, idx.render_network(), |k, a| {
        if a.name.eq_ignore_ascii_case(name) {
            if let Some(id) = AddressKey::from_bytes(&k).and_then(|key| idx.lookup_addr(&key)) {
                v.push(id);
            }
        }
    })?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn by_cluster(
    by_addr: &HashMap<AddrId, Vec<Attribution>>,
    c: &Clustering,
) -> HashMap<AddrId, Vec<Attribution>> {
    let mut m: HashMap<AddrId, Vec<Attribution>> = HashMap::default();
    for (&a, ls) in by_addr {
        if (a as usize) >= c.addr_count() {
            continue;
        }
        let k = c.cluster_of(a);
        let v = m.entry(k).or_default();
        for l in ls {
            if !v
                .iter()
                .any(|x| x.name == l.name && x.category == l.category)
            {
                let mut l = l.clone();
                l.entity = Some(k as u64);
                v.push(l);
            }
        }
    }
    m
}

/// The labels of an address's cluster, for `cluster show`: each (name, category) once, in
/// the order of the attributed members' address ids, then source order (as the persisted
/// state's cluster layer). The sources are streamed: only the cluster's own attributions
/// are kept.
pub fn cluster_labels(
    data_dir: &Path,
    idx: &Index,
    c: &Clustering,
    a: AddrId,
) -> Result<Vec<Attribution>> {
    let root = c.cluster_of(a);
    let mut mine: Vec<(AddrId, usize, Attribution)> = Vec::new();
    for_each_source(data_dir, idx.render_network(), |k, l| {
        let id = AddressKey::from_bytes(&k).and_then(|key| idx.lookup_addr(&key));
        if let Some(id) = id.filter(|&x| (x as usize) < c.addr_count() && c.cluster_of(x) == root) {
            mine.push((id, mine.len(), l));
        }
    })?;
    mine.sort_unstable_by_key(|x| (x.0, x.1));
    let mut v: Vec<Attribution> = Vec::new();
    for (_, _, mut l) in mine {
        if !v
            .iter()
            .any(|x| x.name == l.name && x.category == l.category)
        {
            l.entity = Some(root as u64);
            v.push(l);
        }
    }
    Ok(v)
}

/// Up to this many members, a cluster's store labels are asked member by member; beyond,
/// the store's labelled addresses are scanned once and those inside the cluster kept.
pub const LABELS_PER_MEMBER_UP_TO: u32 = 2_000;

/// The label store's labels (visible now) on any member of `a`'s cluster: what names the
/// cluster. Complete for any size: a cluster of more than `per_member_up_to` addresses
/// (an exchange's millions) is not asked member by member (that took a store read each,
/// and stopped at the first 100,000 members, so a labelled member further on was
/// missed) but matched against the store's labelled addresses: a scan of its keys.
pub fn cluster_store_labels(
    data_dir: &Path,
    idx: &Index,
    c: &Clustering,
    a: AddrId,
    per_member_up_to: u32,
) -> Result<Vec<cointrail_tags::Label>> {
    let path = data_dir.join("labels.redb");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let st = cointrail_tags::TagStore::open(&path)?;
    let mut out = Vec::new();
    let size = c.size_of(a);
    if size <= per_member_up_to {
        for x in c.addresses(a, 0, size as usize) {
            out.extend(st.labels_for_address("BTC", &idx.render_addr(x), None)?);
        }
    } else {
        // The store's labelled BTC targets, keys only; the labels of those in the cluster.
        let (root, net) = (c.cluster_of(a), idx.render_network());
        let mut members = Vec::new();
        st.for_each_target("BTC", |target| {
            let member = AddressKey::parse(target, net)
                .ok()
                .and_then(|k| idx.lookup_addr(&k))
                .filter(|&x| (x as usize) < c.addr_count() && c.cluster_of(x) == root);
            if member.is_some() {
                members.push(target.to_string());
            }
            true
        })?;
        for target in members {
            out.extend(st.labels_for_address("BTC", &target, None)?);
        }
    }
    Ok(out)
}

/// How a clustering was obtained, for results built on it: the rule set, how many of the
/// index's transactions it covers, and its change rules with their delay.
pub fn clustering_note(c: &Clustering) -> serde_json::Value {
    serde_json::json!({
        "rule_set": cointrail_clustering::clusters::RULE_SET,
        "covered_txs": c.covered_txs,
        "change_rules": c.change.as_ref().map(|ch| serde_json::json!({
            "name": ch.rules.name,
            "expression": ch.rules.text,
            "delay_blocks": ch.delay_blocks,
            "used_for_attribution": false,
        })),
    })
}

/// Attach whatever attribution and clustering this data directory holds: the persisted
/// attribution state (`attr_state`), rebuilt first if its sources changed.
pub fn attach(e: &mut Engine) -> Result<()> {
    let data_dir = e.data_dir.clone();
    let clusters = open_clustering(&data_dir, &e.index)?;
    let state = crate::attr_state::AttrState::load(&data_dir, &e.index, clusters.as_deref())?;
    let (attributed, labelled) = state.counts();
    e.attribution_note = serde_json::json!({
        "attributed_addresses": attributed,
        "clustering": clusters.as_deref().map(clustering_note),
        "labelled_clusters": labelled,
        "label_versions": state.meta()["label_versions"],
    });
    e.attribution_state_note = Some(state.how.clone());
    e.attribution_state = Some(state.checksum());
    let times = block_times(&e.index);
    e.clustering = clusters.clone();
    e.set_attributor(Arc::new(StateAttributor {
        state,
        clusters,
        times,
        start: e.index.start_height(),
    }));
    attach_coinjoins(e);
    e.prices = Arc::new(crate::usd::TablePrices::load(&data_dir)?);
    Ok(())
}

/// The same attributions as `attach`, built in memory from the sources at every call (as
/// every open did before the state was persisted): the reference the persisted state is
/// checked against.
pub fn attach_from_sources(e: &mut Engine) -> Result<()> {
    let data_dir = e.data_dir.clone();
    let by_addr = read_attribution(&data_dir, &e.index)?;
    let clusters = open_clustering(&data_dir, &e.index)?;
    let by_cluster = clusters
        .as_deref()
        .map(|c| by_cluster(&by_addr, c))
        .unwrap_or_default();
    e.prices = Arc::new(crate::usd::TablePrices::load(&data_dir)?);
    e.attribution_note = serde_json::json!({
        "attributed_addresses": by_addr.len(),
        "clustering": clusters.as_deref().map(clustering_note),
        "labelled_clusters": by_cluster.len(),
    });
    e.attribution_state = None;
    let start = e.index.start_height();
    let times = block_times(&e.index);
    e.clustering = clusters.clone();
    e.set_attributor(Arc::new(MapAttributor {
        addr_bits: Bits::of(by_addr.keys()),
        cluster_bits: Bits::of(by_cluster.keys()),
        by_addr,
        by_cluster,
        clusters,
        times,
        start,
    }));
    attach_coinjoins(e);
    Ok(())
}

/// The clustering a query reads: its change links mapped, not read (`open_mapped`).
fn open_clustering(data_dir: &Path, idx: &Index) -> Result<Option<Arc<Clustering>>> {
    Ok(
        if cointrail_clustering::Clustering::saved_exists(&cluster_dir(data_dir)) {
            Some(Arc::new(load_clustering_with(data_dir, idx, true)?))
        } else {
            None
        },
    )
}

fn block_times(idx: &Index) -> Vec<u32> {
    (0..idx.block_count()).map(|b| idx.block(b).time).collect()
}

fn attach_coinjoins(e: &mut Engine) {
    let params = cluster_params(&e.index);
    e.set_coinjoin_detector(Arc::new(move |idx: &Index, tx: u32| {
        cointrail_clustering::detect_coinjoin(idx, tx, &params).map(|c| CoinJoinInfo {
            protocol: c.protocol.to_string(),
            anonymity_set: c.anonymity_set,
            equal_value: c.equal_value,
            equal_outputs: c.equal_outputs,
        })
    }));
}

/// CoinJoin detection parameters for the index's network.
pub fn cluster_params(idx: &Index) -> NetParams {
    if idx.network() == Some(bitcoin::Network::Bitcoin) {
        NetParams::mainnet()
    } else {
        NetParams::any_height()
    }
}

pub fn cluster_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("clusters")
}

/// Open the clustering and bring it to the index tip, saving it when that is worth it.
pub fn load_clustering(data_dir: &Path, idx: &Index) -> Result<Clustering> {
    load_clustering_with(data_dir, idx, false)
}

/// `load_clustering`; `mapped`: the change links mapped, not read (for queries, which
/// never read them; see `Clustering::open_mapped`).
fn load_clustering_with(data_dir: &Path, idx: &Index, mapped: bool) -> Result<Clustering> {
    let dir = cluster_dir(data_dir);
    let token = Clustering::saved_token(&dir);
    let params = cluster_params(idx);
    let mut c = if mapped {
        Clustering::open_mapped(&dir, params)
    } else {
        Clustering::open(&dir, params)
    }
    .context("opening the clustering")?;
    if let Some(note) = &c.open_note {
        tracing::warn!("{note}");
    }
    let note = c.open_note.clone();
    // Brought to the tip in memory. Saved too when small, when built from nothing, or when
    // catching up took long enough that doing it again at every open would cost more than
    // a save: a big one only a few blocks behind is left to the follower's schedule (each
    // save rewrites every array, ~53 GB on mainnet). Not over a save another process made
    // meanwhile. A data directory this process cannot write is still read.
    let (t, from_nothing) = (std::time::Instant::now(), c.covered_txs == 0);
    let synced = c.sync(idx);
    // Mapped links found damaged when `sync` checked them before a change: rebuilt.
    let rebuilt = c.open_note != note;
    if let (true, Some(n)) = (rebuilt, &c.open_note) {
        tracing::warn!("{n}");
    }
    if synced
        && (c.addr_count() <= crate::live::SAVE_EACH_BLOCK_ADDRS
            || from_nothing
            || rebuilt
            || t.elapsed() >= std::time::Duration::from_secs(30))
    {
        if let Err(e) = c.save_unless_saved_since(&token) {
            tracing::warn!("the clustering is up to date in memory but could not be saved: {e}");
        }
    }
    Ok(c)
}

/// Bring a clustering to the index tip and save it if that moved it: a reorganisation since
/// the last save is undone (by a rebuild), new blocks are applied.
pub fn sync_saved(c: &mut Clustering, idx: &Index) -> Result<()> {
    if c.sync(idx) {
        c.save().context("saving the clustering")?;
    }
    Ok(())
}

/// A `0x…` value in an attribution line: an EVM account, not a Bitcoin address.
pub fn is_evm_address(s: &str) -> bool {
    s.trim()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("0x"))
}

/// `YYYY-MM-DD` as Unix seconds at midnight UTC (days-from-civil).
pub fn date_to_unix(d: &str) -> Option<u64> {
    let mut p = d.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (p.next()?.ok()?, p.next()?.ok()?, p.next()?.ok()?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from((era * 146097 + doe - 719468) * 86400).ok()
}

/// Entity tags for the collapse guards (`cointrail_clustering::entities`): each labelled
/// cluster's first label names it (the first in source order of its attributed member with
/// the smallest address id, as the persisted state orders a cluster's labels), and a
/// service category (exchange, mixer, OTC, payment processor, gambling, mining, darknet
/// market) on any of its labels makes it a service.
///
/// Built by streaming the sources: one small record per labelled cluster, not every
/// attribution (`cluster build` on the 10M chain held 1.2 GB for the whole map before).
pub struct ClusterTags<'c> {
    by_cluster: HashMap<AddrId, ClusterTag>,
    names: Vec<String>,
    /// Asked per member when a link is judged: a table of every address's cluster would
    /// cost a pass over all of them on every `cluster show`.
    c: &'c Clustering,
}

#[derive(Clone, Copy)]
struct ClusterTag {
    /// The attributed member whose first label names the cluster.
    first_member: AddrId,
    name: u32,
    service: bool,
}

impl cointrail_clustering::EntityTags for ClusterTags<'_> {
    fn tag(&self, member: AddrId) -> Option<cointrail_clustering::Tag> {
        if member as usize >= self.c.addr_count() {
            return None;
        }
        let t = self.by_cluster.get(&self.c.cluster_of(member))?;
        Some(cointrail_clustering::Tag {
            name: self.names[t.name as usize].clone(),
            service: t.service,
        })
    }
}

/// The data directory's labels as entity tags over `c`'s clusters.
pub fn cluster_tags<'c>(
    data_dir: &Path,
    idx: &Index,
    c: &'c Clustering,
) -> Result<ClusterTags<'c>> {
    let mut by_cluster: HashMap<AddrId, ClusterTag> = HashMap::default();
    let mut names: Vec<String> = Vec::new();
    let mut name_ids: StdHashMap<String, u32> = StdHashMap::new();
    for_each_source(data_dir, idx.render_network(), |k, a| {
        let Some(id) = AddressKey::from_bytes(&k).and_then(|key| idx.lookup_addr(&key)) else {
            return;
        };
        if id as usize >= c.addr_count() {
            return;
        }
        let service = crate::STOP_CATEGORIES
            .contains(&cointrail_risk::rules::normalize_category(&a.category).as_str());
        let mut name = || match name_ids.get(&a.name) {
            Some(&n) => n,
            None => {
                let n = names.len() as u32;
                names.push(a.name.clone());
                name_ids.insert(a.name.clone(), n);
                n
            }
        };
        match by_cluster.entry(c.cluster_of(id)) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ClusterTag {
                    first_member: id,
                    name: name(),
                    service,
                });
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let t = e.get_mut();
                t.service |= service;
                // A smaller member renames it; the same member's later lines do not.
                if id < t.first_member {
                    t.first_member = id;
                    t.name = name();
                }
            }
        }
    })?;
    Ok(ClusterTags {
        by_cluster,
        names,
        c,
    })
}
