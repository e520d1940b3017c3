//! Entities: common-input clusters joined by the change layer's soft links, but only
//! through the collapse guards of methods.md §2.3. A wrong change guess joins two owners,
//! and the joined cluster then pulls in more: Meiklejohn's refined run made one cluster of
//! 1.6M keys holding Mt. Gox, Instawallet, BitPay and Silk Road. So a link is merged only when
//!
//! 1. the delay has passed and the change address was not reused meanwhile (`LinkState`,
//!    decided on the chain in the clustering pass);
//! 2. the two sides do not carry different entity tags (tag conflict);
//! 3. neither side is a tagged service (exchange, mixer, payment processor…);
//! 4. neither side has more than `max_size` addresses (size cap).
//!
//! CoinJoins, possible PayJoins and batches never produce links (`clusters.rs`).
//! Tags come from the investigation's labels, which change, so entities are computed when
//! opened (one pass over the links, in chain order) rather than stored.

use crate::change::{LinkState, SoftLink};
use crate::clusters::{Clustering, Scores};
use cointrail_chain::view::AddrId;
use serde::Serialize;
use std::collections::HashMap;

/// What the labels say about a hard cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    /// A service (exchange, mixer, payment processor…): never merged by a soft link.
    pub service: bool,
}

/// Labels per hard cluster, given any member address.
pub trait EntityTags {
    fn tag(&self, member: AddrId) -> Option<Tag>;
}

/// No labels: only the delay and the size cap guard.
pub struct NoTags;
impl EntityTags for NoTags {
    fn tag(&self, _: AddrId) -> Option<Tag> {
        None
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Guards {
    /// Neither side of a soft merge may have more addresses than this.
    pub max_size: u64,
}

impl Default for Guards {
    fn default() -> Guards {
        Guards { max_size: 10_000 }
    }
}

/// What became of one soft link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Merged,
    /// Both sides were already one entity.
    AlreadyJoined,
    /// Still inside the delay.
    Pending,
    /// The change address received other funds within the delay.
    Reused,
    TagConflict,
    Service,
    SizeCap,
}

#[derive(Clone, Debug)]
struct Info {
    size: u64,
    /// `None`: not looked up yet.
    tag: Option<Option<Tag>>,
    /// Smallest cluster id among the entity's clusters: the entity id.
    min_id: AddrId,
    /// Circular list of the entity's hard roots.
    next: AddrId,
}

pub struct Entities<'c> {
    c: &'c Clustering,
    parent: HashMap<AddrId, AddrId>,
    info: HashMap<AddrId, Info>,
    /// Per link of the change layer, in order.
    pub outcomes: Vec<Outcome>,
    pub guards: Guards,
}

impl<'c> Entities<'c> {
    /// Apply the clustering's soft links through the guards. Without a change layer every
    /// entity is one hard cluster.
    pub fn build(c: &'c Clustering, tags: &dyn EntityTags, guards: Guards) -> Entities<'c> {
        let mut e = Entities {
            c,
            parent: HashMap::new(),
            info: HashMap::new(),
            outcomes: Vec::new(),
            guards,
        };
        let links: &[SoftLink] = c.change.as_ref().map_or(&[], |ch| &ch.links);
        for l in links {
            let o = e.consider(l, tags);
            e.outcomes.push(o);
        }
        e
    }

    fn find(&mut self, mut r: AddrId) -> AddrId {
        while let Some(&p) = self.parent.get(&r) {
            if p == r {
                break;
            }
            if let Some(&gp) = self.parent.get(&p) {
                self.parent.insert(r, gp);
            }
            r = p;
        }
        r
    }

    fn root(&self, mut r: AddrId) -> AddrId {
        while let Some(&p) = self.parent.get(&r) {
            if p == r {
                break;
            }
            r = p;
        }
        r
    }

    fn touch(&mut self, r: AddrId, tags: &dyn EntityTags) -> &mut Info {
        let c = self.c;
        let i = self.info.entry(r).or_insert_with(|| Info {
            size: c.size_of(r) as u64,
            tag: None,
            min_id: c.cluster_of(r),
            next: r,
        });
        if i.tag.is_none() {
            // Every entity root is first touched while it is still one hard cluster.
            i.tag = Some(tags.tag(r));
        }
        i
    }

    fn consider(&mut self, l: &SoftLink, tags: &dyn EntityTags) -> Outcome {
        match l.state {
            LinkState::Pending => return Outcome::Pending,
            LinkState::Reused => return Outcome::Reused,
            LinkState::Ready => {}
        }
        let a = self.find(self.c.root_of(l.input));
        let b = self.find(self.c.root_of(l.change));
        if a == b {
            return Outcome::AlreadyJoined;
        }
        let ia = self.touch(a, tags).clone();
        let ib = self.touch(b, tags).clone();
        let (ta, tb) = (ia.tag.clone().flatten(), ib.tag.clone().flatten());
        // In the order of methods.md §2.3; the first guard that refuses is recorded.
        if let (Some(x), Some(y)) = (&ta, &tb) {
            if x.name != y.name {
                return Outcome::TagConflict;
            }
        }
        if ta.as_ref().is_some_and(|t| t.service) || tb.as_ref().is_some_and(|t| t.service) {
            return Outcome::Service;
        }
        if ia.size > self.guards.max_size || ib.size > self.guards.max_size {
            return Outcome::SizeCap;
        }
        let (big, small) = if ia.size >= ib.size { (a, b) } else { (b, a) };
        self.parent.insert(small, big);
        self.parent.entry(big).or_insert(big);
        let info_small = self.info[&small].clone();
        let bi = self.info.get_mut(&big).expect("touched");
        bi.size += info_small.size;
        bi.min_id = bi.min_id.min(info_small.min_id);
        if bi.tag.clone().flatten().is_none() {
            bi.tag = Some(ta.or(tb));
        }
        // Splice the two circular lists of hard roots.
        let big_next = bi.next;
        bi.next = info_small.next;
        self.info.get_mut(&small).expect("touched").next = big_next;
        Outcome::Merged
    }

    /// The entity id of an address: the smallest cluster id among its entity's clusters.
    pub fn entity_of(&self, a: AddrId) -> AddrId {
        let r = self.root(self.c.root_of(a));
        self.info.get(&r).map_or(self.c.cluster_of(r), |i| i.min_id)
    }

    /// Addresses in the entity.
    pub fn size(&self, a: AddrId) -> u64 {
        let r = self.root(self.c.root_of(a));
        self.info
            .get(&r)
            .map_or(self.c.size_of(r) as u64, |i| i.size)
    }

    /// The hard clusters (one member address each) the entity is made of.
    pub fn clusters(&self, a: AddrId) -> Vec<AddrId> {
        let start = self.root(self.c.root_of(a));
        let mut out = vec![start];
        let mut cur = self.info.get(&start).map_or(start, |i| i.next);
        while cur != start && out.len() < 1_000_000 {
            out.push(cur);
            cur = self.info.get(&cur).map_or(start, |i| i.next);
        }
        out
    }

    /// A page of the entity's addresses: cluster by cluster.
    pub fn addresses(&self, a: AddrId, offset: usize, limit: usize) -> Vec<AddrId> {
        let mut out = Vec::new();
        let mut skip = offset;
        for r in self.clusters(a) {
            let n = self.c.size_of(r) as usize;
            if skip >= n {
                skip -= n;
                continue;
            }
            out.extend(self.c.addresses(r, skip, limit - out.len()));
            skip = 0;
            if out.len() >= limit {
                break;
            }
        }
        out
    }

    /// How many links ended each way.
    pub fn counts(&self) -> Vec<(Outcome, u64)> {
        let mut m: HashMap<Outcome, u64> = HashMap::new();
        for o in &self.outcomes {
            *m.entry(*o).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by_key(|(o, _)| *o as u8);
        v
    }

    /// The merged soft links that join `a`'s and `b`'s hard clusters (fewest links), as
    /// indexes into the change layer's links; empty when they share a hard cluster,
    /// `None` when they are different entities.
    pub fn link_path(&self, a: AddrId, b: AddrId) -> Option<Vec<usize>> {
        let (ra, rb) = (self.c.root_of(a), self.c.root_of(b));
        if self.root(ra) != self.root(rb) {
            return None;
        }
        if ra == rb {
            return Some(vec![]);
        }
        let links = &self.c.change.as_ref()?.links;
        let merged = links
            .iter()
            .zip(&self.outcomes)
            .enumerate()
            .filter(|(_, (_, o))| **o == Outcome::Merged)
            .map(|(i, (l, _))| (self.c.root_of(l.input), self.c.root_of(l.change), i));
        let path = crate::clusters::shortest_path(merged, ra, rb)?;
        Some(path.into_iter().map(|(_, _, i)| i).collect())
    }

    /// Pairwise precision and recall of the entities against the true owners.
    pub fn scores(&self, owner: &[Option<u32>]) -> Scores {
        crate::clusters::scores_by(self.c.addr_count(), owner, |a| self.entity_of(a))
    }
}
