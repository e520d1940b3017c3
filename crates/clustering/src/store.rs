//! Saving a clustering by writing only what changed (issue 18): two copies of the saved
//! arrays, written in turn (shadow copies, as LMDB's two meta pages or a double-buffered
//! checkpoint), and a state file that names the current one.
//!
//! ```text
//! clusters/state.json           the manifest: the current copy's state, plus `current`,
//!                               `other` and `other_gen`; replaced by an atomic rename
//! clusters/lag.G.bin            pages (and log tails) where `other` differs from `current`
//!                               (generation G), with a checksum
//! clusters/cG/arrays.bin        parent | next | aggregates, each at a page boundary with
//!                               room (a sparse file) for a quarter more addresses
//! clusters/cG/merges.bin        the merge log (room for a quarter more)
//! clusters/cG/change_links.bin, change_last_recv.bin   the change layer (room likewise)
//! clusters/cG/state.json        this copy's own state and generation; absent while the
//!                               copy is being written
//! ```
//!
//! A save never writes into the current copy (readers open it): it writes into the other
//! one the pages that one lacks (the last save's changes, from the lag file, and the pages
//! changed in memory since, tracked per 4 KB page as the clustering is updated), then
//! switches the manifest to it. Readers hold a shared `flock` on the copy they map
//! (`arrays.bin`) for as long as they map it; a save takes the other copy only with an
//! exclusive lock that does not wait, and otherwise writes a whole new copy. So a mapped
//! copy never changes under its reader, and the follower never waits for one.
//!
//! Crash safety (`kill -9` or power loss at any point): before a copy is written, its own
//! state file is removed (and the directory synced), so a copy cut short is never taken
//! for a saved state; its pages are synced, its state file written, and then the manifest
//! renamed over the old one: the only commit point. Until that rename, `state.json` names
//! the copy that was current, which the save did not touch.

use crate::change::SoftLink;
use crate::clusters::{Agg, Clustering, Merge};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use zerocopy::IntoBytes;

pub(crate) const PAGE: u64 = 4096;
/// `u32` elements per page (parent, next, last payer): `1 << U32_SHIFT`.
pub(crate) const U32_SHIFT: u32 = 10;
/// Bytes of an aggregate record: a record may straddle two pages.
pub(crate) const AGG: usize = std::mem::size_of::<Agg>();

/// A set of page numbers, one bit each.
#[derive(Clone, Default, Debug, PartialEq)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    #[inline]
    pub fn set(&mut self, page: usize) {
        let w = page >> 6;
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1u64 << (page & 63);
    }

    /// Aggregate record `i`: the page it starts in (a save writes each marked page of
    /// the aggregates and the `AGG - 1` bytes after it, where a record started in it may
    /// end).
    #[inline]
    pub fn set_agg(&mut self, i: usize) {
        self.set((i * AGG) >> 12);
    }

    /// Pages `from..to`.
    pub fn set_range(&mut self, from: usize, to: usize) {
        for p in from..to {
            self.set(p);
        }
    }

    pub fn or(&mut self, o: &Bits) {
        if o.0.len() > self.0.len() {
            self.0.resize(o.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }

    pub fn pages(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            let mut b = bits;
            std::iter::from_fn(move || {
                (b != 0).then(|| {
                    let k = b.trailing_zeros() as usize;
                    b &= b - 1;
                    w * 64 + k
                })
            })
        })
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// Where the in-memory clustering may differ from a saved copy: pages of the per-address
/// arrays, and the first merge and change link that may differ (the logs change at their
/// end only, except a re-judged change link).
#[derive(Clone, Default, Debug, PartialEq)]
pub(crate) struct Dirty {
    pub parent: Bits,
    pub next: Bits,
    pub agg: Bits,
    pub recv: Bits,
    pub merges_from: u64,
    pub links_from: u64,
}

impl Dirty {
    /// Nothing differs from a copy holding `merges` merges and `links` links.
    pub fn clean(merges: u64, links: u64) -> Dirty {
        Dirty {
            merges_from: merges,
            links_from: links,
            ..Dirty::default()
        }
    }

    pub fn union(&self, o: &Dirty) -> Dirty {
        let mut d = self.clone();
        d.parent.or(&o.parent);
        d.next.or(&o.next);
        d.agg.or(&o.agg);
        d.recv.or(&o.recv);
        d.merges_from = d.merges_from.min(o.merges_from);
        d.links_from = d.links_from.min(o.links_from);
        d
    }

    /// The lag file: magic, the pair of copies it relates (`pair_key`), four page lists,
    /// the two log starts, an FNV-1a checksum.
    fn to_bytes(&self, pair: u64) -> Vec<u8> {
        let mut b = b"CTLAG1\0\0".to_vec();
        b.extend_from_slice(&pair.to_le_bytes());
        for bits in [&self.parent, &self.next, &self.agg, &self.recv] {
            b.extend_from_slice(&(bits.count() as u64).to_le_bytes());
            for p in bits.pages() {
                b.extend_from_slice(&(p as u64).to_le_bytes());
            }
        }
        b.extend_from_slice(&self.merges_from.to_le_bytes());
        b.extend_from_slice(&self.links_from.to_le_bytes());
        let sum = fnv(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8], pair: u64) -> Option<Dirty> {
        let (body, sum) = b.split_at_checked(b.len().checked_sub(8)?)?;
        if fnv(body).to_le_bytes() != sum
            || !body.starts_with(b"CTLAG1\0\0")
            || body.get(8..16)? != pair.to_le_bytes()
        {
            return None;
        }
        let mut at = 16;
        let mut u = || -> Option<u64> {
            let v = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
            at += 8;
            Some(v)
        };
        let mut d = Dirty::default();
        for k in 0..4 {
            let n = u()?;
            let mut bits = Bits::default();
            for _ in 0..n {
                let p = u()?;
                if p >= 1 << 40 {
                    return None;
                }
                bits.set(p as usize);
            }
            *[&mut d.parent, &mut d.next, &mut d.agg, &mut d.recv][k] = bits;
        }
        d.merges_from = u()?;
        d.links_from = u()?;
        (at == body.len()).then_some(d)
    }
}

fn fnv(b: &[u8]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for &x in b {
        h = (h ^ x as u64).wrapping_mul(0x100000001b3);
    }
    h
}

/// The saved copy an in-memory clustering was opened from or last saved to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Base {
    pub copy: String,
    pub gen: u64,
}

/// What a clustering knows of its saved copies: the one it derives from (`None`: not
/// from a copy of the current layout, so the next save writes a whole copy), and whether
/// a save has written what `Clustering::dirty` holds (cleared before the next change).
#[derive(Default)]
pub(crate) struct Track {
    pub base: Option<Base>,
    pub saved: bool,
}

pub(crate) fn page_up(x: u64) -> u64 {
    x.div_ceil(PAGE) * PAGE
}

/// Byte offsets of `next` and the aggregates in `arrays.bin`, and its length, for room
/// for `cap` addresses.
pub(crate) fn array_offsets(cap: u64) -> (u64, u64, u64) {
    let next = page_up(cap * 4);
    let agg = next + page_up(cap * 4);
    (next, agg, agg + cap * std::mem::size_of::<Agg>() as u64)
}

/// Room for `n` and a quarter more (a whole copy is written when it is outgrown).
fn room(n: u64) -> u64 {
    n + n / 4 + 1024
}

/// The lag file of generation `gen`.
pub(crate) fn lag_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("lag.{gen}.bin"))
}

/// What a lag file relates: the current copy and generation, the other and its. A lag
/// file left by a save cut short after writing it (its generation then reused) names
/// another pair, and is not taken for the manifest's.
fn pair_key(current: &str, gen: u64, other: &str, other_gen: u64) -> u64 {
    fnv(format!("{current}:{gen}/{other}:{other_gen}").as_bytes())
}

/// The lag file of the manifest `m`: where its other copy differs from its current one.
pub(crate) fn read_lag(dir: &Path, m: &crate::clusters::State) -> Option<Dirty> {
    let pair = pair_key(
        m.current.as_deref()?,
        m.gen,
        m.other.as_deref()?,
        m.other_gen,
    );
    let mut b = Vec::new();
    File::open(lag_path(dir, m.gen))
        .ok()?
        .read_to_end(&mut b)
        .ok()?;
    Dirty::from_bytes(&b, pair)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// A copy's files, opened for writing.
struct CopyFiles {
    arrays: File,
    merges: File,
    links: Option<File>,
    recv: Option<File>,
}

impl CopyFiles {
    fn open(dir: &Path, change: bool, create: bool) -> io::Result<CopyFiles> {
        let o = |name: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(dir.join(name))
        };
        Ok(CopyFiles {
            arrays: o("arrays.bin")?,
            merges: o("merges.bin")?,
            links: change.then(|| o("change_links.bin")).transpose()?,
            recv: change.then(|| o(crate::clusters::LAST_RECV)).transpose()?,
        })
    }

    fn sync(&self) -> io::Result<()> {
        for f in [
            Some(&self.arrays),
            Some(&self.merges),
            self.links.as_ref(),
            self.recv.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// What a save wrote, for the caller's accounting and the tests.
#[derive(Clone, Debug, Default)]
pub struct SaveReport {
    /// Why a whole copy was written (first save, a copy outgrown, the other copy held by
    /// a reader or damaged), rather than the pages the other copy lacked.
    pub whole: Option<&'static str>,
    /// Bytes of array data written (pages, log tails), not counting the small files.
    pub bytes: u64,
    pub pages: u64,
    pub generation: u64,
}

/// Write the pages of `bits` of `data` (a region of an array) at `offset` in `f`, runs of
/// adjacent pages in one write each, each run with the `tail` bytes after it.
fn write_pages(
    f: &File,
    offset: u64,
    data: &[u8],
    bits: &Bits,
    tail: usize,
    rep: &mut SaveReport,
) -> io::Result<()> {
    let mut run: Option<(usize, usize)> = None;
    let flush = |r: (usize, usize), rep: &mut SaveReport| -> io::Result<()> {
        let from = (r.0 as u64 * PAGE) as usize;
        let to = ((r.1 as u64 * PAGE) as usize + tail).min(data.len());
        if from < to {
            f.write_all_at(&data[from..to], offset + from as u64)?;
            rep.bytes += (to - from) as u64;
            rep.pages += (r.1 - r.0) as u64;
        }
        Ok(())
    };
    for p in bits.pages() {
        run = match run {
            Some((a, b)) if b == p => Some((a, p + 1)),
            Some(r) => {
                flush(r, rep)?;
                Some((p, p + 1))
            }
            None => Some((p, p + 1)),
        };
    }
    if let Some(r) = run {
        flush(r, rep)?;
    }
    Ok(())
}

impl Clustering {
    /// The save itself, under the clustering's lock: write the other copy's missing pages
    /// (or a whole copy), then switch the manifest. Returns the new manifest state.
    pub(crate) fn save_copies(&self) -> io::Result<SaveReport> {
        let dir = self.dir.clone();
        let man = crate::clusters::peek_state(&dir).filter(|m| m.current.is_some());
        let mut track = self.track.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.parent.len() as u64;
        let merges = self.merges.len() as u64;
        let links = self.change.as_ref().map_or(0, |c| c.links.len() as u64);
        let change = self.change.is_some();
        #[derive(PartialEq, Clone, Copy)]
        enum From {
            Current,
            Other,
            Nothing,
        }
        let from = match (&track.base, &man) {
            (Some(b), Some(m)) if m.current.as_deref() == Some(&b.copy) && m.gen == b.gen => {
                From::Current
            }
            (Some(b), Some(m)) if m.other.as_deref() == Some(&b.copy) && m.other_gen == b.gen => {
                From::Other
            }
            _ => From::Nothing,
        };
        let lag = man.as_ref().and_then(|m| read_lag(&dir, m));
        // Above every copy's, also those of a manifest lost.
        let copies = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        let newest = copies
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix('c')?
                    .parse::<u64>()
                    .ok()
            })
            .max();
        let gen = man
            .as_ref()
            .map_or(0, |m| m.gen.max(m.other_gen))
            .max(newest.unwrap_or(0))
            + 1;
        // What the other copy lacks, when it can be brought up to date in place.
        let mut target: Option<(String, Dirty, File)> = None;
        let mut why = match from {
            From::Nothing => "not opened from the saved copies",
            _ => "no other copy",
        };
        if let (Some(m), Some(other)) = (&man, man.as_ref().and_then(|m| m.other.clone())) {
            let lack = match (from, &lag) {
                (From::Current, Some(lag)) => Some(lag.union(&self.dirty)),
                (From::Other, _) => Some(self.dirty.clone()),
                _ => None,
            };
            let odir = dir.join(&other);
            let fits = crate::clusters::peek_state(&odir).is_some_and(|s| {
                s.gen == m.other_gen
                    && s.change.is_some() == change
                    && s.cap_addrs.unwrap_or(s.addrs) >= n
                    && s.cap_merges.unwrap_or(s.merges) >= merges
                    && s.change
                        .as_ref()
                        .map_or(0, |c| s.cap_links.unwrap_or(c.links))
                        >= links
            });
            why = if lack.is_none() {
                "no record of what the other copy lacks"
            } else if !fits {
                "the other copy is outgrown or damaged"
            } else {
                "the other copy is held by a reader"
            };
            if let (Some(lack), true) = (lack, fits) {
                // Held by a reader (a shared lock) or by this process's own maps: not
                // written under them; a whole copy instead.
                if let Ok(f) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(odir.join("arrays.bin"))
                {
                    if f.try_lock().is_ok() {
                        target = Some((other, lack, f));
                    }
                }
            }
        }
        let mut rep = SaveReport {
            generation: gen,
            ..Default::default()
        };
        let (name, caps) = match target {
            Some((name, lack, _held)) => {
                let cdir = dir.join(&name);
                let st = crate::clusters::peek_state(&cdir).expect("checked above");
                // From here until its state file is back the copy is no saved state.
                std::fs::remove_file(cdir.join("state.json"))?;
                sync_dir(&cdir)?;
                let files = CopyFiles::open(&cdir, change, false)?;
                let cap = st.cap_addrs.unwrap_or(st.addrs);
                self.write_arrays(&files, cap, Some(&lack), &mut rep)?;
                let cap_links = st
                    .change
                    .as_ref()
                    .map_or(0, |c| st.cap_links.unwrap_or(c.links));
                files.sync()?;
                (name, (cap, st.cap_merges.unwrap_or(st.merges), cap_links))
            }
            None => {
                rep.whole = Some(why);
                let name = format!("c{gen}");
                let cdir = dir.join(&name);
                match std::fs::remove_dir_all(&cdir) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                std::fs::create_dir_all(&cdir)?;
                let files = CopyFiles::open(&cdir, change, true)?;
                let caps = (room(n), room(merges), if change { room(links) } else { 0 });
                files.arrays.set_len(array_offsets(caps.0).2)?;
                files
                    .merges
                    .set_len(caps.1 * std::mem::size_of::<Merge>() as u64)?;
                if let (Some(l), Some(r)) = (&files.links, &files.recv) {
                    l.set_len(caps.2 * SoftLink::BYTES as u64)?;
                    r.set_len(caps.0 * 4)?;
                }
                self.write_arrays(&files, caps.0, None, &mut rep)?;
                files.sync()?;
                (name, caps)
            }
        };
        // The state of the copy just written, then the lag of the other against it, then
        // the manifest naming both.
        let mut st = self.state();
        st.gen = gen;
        st.cap_addrs = Some(caps.0);
        st.cap_merges = Some(caps.1);
        st.cap_links = change.then_some(caps.2);
        let cdir = dir.join(&name);
        write_synced(&cdir.join("state.json"), &crate::clusters::state_bytes(&st))?;
        sync_dir(&cdir)?;
        let m = man.as_ref();
        let (other, other_gen, new_lag) = match (rep.whole.is_some(), from) {
            (false, From::Current) => (
                m.and_then(|m| m.current.clone()),
                m.map_or(0, |m| m.gen),
                Some(self.dirty.clone()),
            ),
            (false, From::Other) => (
                m.and_then(|m| m.current.clone()),
                m.map_or(0, |m| m.gen),
                lag.map(|l| l.union(&self.dirty)),
            ),
            (true, From::Current) => (
                m.and_then(|m| m.current.clone()),
                m.map_or(0, |m| m.gen),
                Some(self.dirty.clone()),
            ),
            (true, From::Other) => (
                m.and_then(|m| m.other.clone()),
                m.map_or(0, |m| m.other_gen),
                Some(self.dirty.clone()),
            ),
            // Kept as the save before (a deeper reorganisation starts from it), but with
            // no lag file: not brought up to date in place.
            (_, From::Nothing) => (
                m.and_then(|m| m.current.clone()),
                m.map_or(0, |m| m.gen),
                None,
            ),
        };
        match (new_lag, &other) {
            (Some(l), Some(o)) => {
                let pair = pair_key(&name, gen, o, other_gen);
                write_synced(&lag_path(&dir, gen), &l.to_bytes(pair))?;
            }
            // No lag (a stale one of this generation would name another pair anyway).
            _ => match std::fs::remove_file(lag_path(&dir, gen)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        st.current = Some(name.clone());
        st.other = other.clone();
        st.other_gen = other_gen;
        write_synced(&dir.join("state.json"), &crate::clusters::state_bytes(&st))?;
        sync_dir(&dir)?;
        track.base = Some(Base {
            copy: name.clone(),
            gen,
        });
        // Until the next change, `dirty` still holds what was just written: a save
        // before it writes those pages again (more than needed, never less).
        track.saved = true;
        drop(track);
        // What no manifest names any more: older lags, copies, and the files of the
        // layout before copies. Readers that map them keep them until they let go.
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                let copy = f.starts_with('c') && f[1..].parse::<u64>().is_ok();
                let keep = Some(&f) == Some(&name) || other.as_ref() == Some(&f);
                if copy && !keep {
                    let _ = std::fs::remove_dir_all(e.path());
                } else if f.starts_with("lag.") && f != format!("lag.{gen}.bin") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for old in [
            "arrays.bin",
            "merges.bin",
            "change_links.bin",
            crate::clusters::LAST_RECV,
            "change_recv.bin",
        ] {
            let _ = std::fs::remove_file(dir.join(old));
        }
        let _ = std::fs::remove_dir_all(dir.join(crate::clusters::PREVIOUS));
        Ok(rep)
    }

    /// Write the arrays into a copy with room for `cap` addresses: the pages of `lack`
    /// (and the logs from where it says), or everything.
    fn write_arrays(
        &self,
        files: &CopyFiles,
        cap: u64,
        lack: Option<&Dirty>,
        rep: &mut SaveReport,
    ) -> io::Result<()> {
        let (next_at, agg_at, _) = array_offsets(cap);
        type Region<'a> = (&'a [u8], u64, fn(&Dirty) -> &Bits, usize);
        let regions: [Region; 3] = [
            (self.parent.as_bytes(), 0, |d| &d.parent, 0),
            (self.next.as_bytes(), next_at, |d| &d.next, 0),
            (self.agg.as_bytes(), agg_at, |d| &d.agg, AGG - 1),
        ];
        for (data, at, bits, tail) in regions {
            match lack {
                Some(l) => write_pages(&files.arrays, at, data, bits(l), tail, rep)?,
                None => {
                    files.arrays.write_all_at(data, at)?;
                    rep.bytes += data.len() as u64;
                }
            }
        }
        let mb = std::mem::size_of::<Merge>();
        let from = lack
            .map_or(0, |l| l.merges_from as usize)
            .min(self.merges.len());
        files
            .merges
            .write_all_at(self.merges[from..].as_bytes(), (from * mb) as u64)?;
        rep.bytes += ((self.merges.len() - from) * mb) as u64;
        if let (Some(ch), Some(lf), Some(rf)) = (&self.change, &files.links, &files.recv) {
            let from = lack
                .map_or(0, |l| l.links_from as usize)
                .min(ch.links.len());
            let mut b = Vec::with_capacity((ch.links.len() - from) * SoftLink::BYTES);
            for l in &ch.links[from..] {
                b.extend_from_slice(&l.to_bytes());
            }
            lf.write_all_at(&b, (from * SoftLink::BYTES) as u64)?;
            rep.bytes += b.len() as u64;
            let data = ch.last_recv_bytes();
            match lack {
                Some(l) => write_pages(rf, 0, data, &l.recv, 0, rep)?,
                None => {
                    rf.write_all_at(data, 0)?;
                    rep.bytes += data.len() as u64;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetParams;
    use cointrail_chain::view::AddrId;

    fn reopened(dir: &Path) -> Clustering {
        let c = Clustering::open(dir, NetParams::any_height()).unwrap();
        assert_eq!(c.open_note, None);
        c
    }

    /// A change alone on its page reaches both copies: a path compressed by `find` (the
    /// only write of its page here), a merge's member lists and aggregates. Each save is
    /// opened again and must equal memory, byte for byte.
    #[test]
    fn a_change_alone_on_its_page_reaches_both_copies() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Clustering::new(d.path(), NetParams::any_height());
        c.grow(300_000);
        let (x, y, z) = (10, 150_000, 290_000);
        c.union(z, 291_000, 0);
        c.union(z, 292_000, 1);
        c.union(x, y, 2); // y -> x
        c.save().unwrap();
        c.save().unwrap();
        assert!(c.last_save().unwrap().whole.is_some(), "no other copy yet");
        c.union(z, x, 3); // x -> z: y is two steps from its root
        assert_eq!(c.parent[y as usize], x);
        c.save().unwrap();
        assert_eq!(c.last_save().unwrap().whole, None);
        assert_eq!(reopened(d.path()).saved_digest(), c.saved_digest());
        assert_eq!(c.find(y), z);
        assert_eq!(c.parent[y as usize], z, "compressed");
        // An aggregate record across two pages (bytes 53,240..53,280: pages 12 and 13).
        let s = 1331;
        assert_eq!((s * AGG) >> 12, 12);
        assert_eq!((s * AGG + AGG - 1) >> 12, 13);
        c.union(s as AddrId, 200_000, 4);
        assert_eq!(c.parent[200_000], s as AddrId);
        for _ in 0..3 {
            c.save().unwrap();
            let rep = c.last_save().unwrap();
            assert_eq!(rep.whole, None);
            assert!(rep.pages <= 12, "{rep:?}");
            assert_eq!(reopened(d.path()).saved_digest(), c.saved_digest());
        }
    }

    #[test]
    fn lag_files_round_trip_and_damage_is_noticed() {
        let mut d = Dirty::clean(7, 9);
        d.parent.set(3);
        d.agg.set_agg(1000);
        d.recv.set_range(5, 70);
        let b = d.to_bytes(42);
        assert_eq!(Dirty::from_bytes(&b, 42), Some(d));
        assert_eq!(Dirty::from_bytes(&b, 43), None, "another pair's");
        let mut bad = b.clone();
        bad[28] ^= 1;
        assert_eq!(Dirty::from_bytes(&bad, 42), None);
        assert_eq!(Dirty::from_bytes(&b[..b.len() - 1], 42), None);
    }
}
