//! Derived state persisted beside the data directory's sources (`DATA_DIR/state/`), so
//! that a command opens it instead of rebuilding it from the sources at every start.
//!
//! One container format for every such file: a header naming the kind (magic), the total
//! length, the checksum of the whole file and the checksum of its head (the header, the
//! section table and the meta record), a JSON meta record (what the state was built from,
//! so a stale file is told apart from a current one), sections of little-endian integers
//! read in place through a memory map, and a trailer repeating the whole file's checksum.
//!
//! What is checked when (issue 18: opening must not grow with the chain; the attribution
//! file is ~1.4 GB on a 100M-transaction chain):
//! - when a file is written: every byte, read back, against its checksum (`persist`);
//! - at every open (`open`): its length against the header, the head's checksum, the
//!   section table (each section 8-aligned, in order, inside the file, laid out exactly as
//!   written) and the trailer. Reads the first few KB and the last 8 bytes, whatever the
//!   file's size. What each kind then reads is bounds-checked (no damaged offset panics);
//! - on demand (`verify`, `cointrail state verify`): every byte against the checksum.
//!
//! Crash safety: a file is written under a temporary name, synced and renamed over the
//! old one, so a reader sees the old file or the new one, never a part. A writer killed
//! midway leaves only its temporary file, which the next writer removes. A file cut or
//! overwritten (a copy gone wrong, a disk that lost its tail) fails the length, the head
//! or the trailer at open and is rebuilt; a flipped bit inside a section is found by
//! `verify`, not at open (that would read the whole file at every command).

use anyhow::Result;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bumped when the layout of any state file changes: older files are then rebuilt.
/// 2: the head's own checksum and the trailer (open no longer reads the whole file).
pub const FORMAT: u32 = 2;

/// The folder of derived state in a data directory.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("state")
}

/// The bytes of a state file: mapped from disk, or held in memory when the data directory
/// could not be written (a read-only mount still gets the answers).
pub enum Bytes {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An opened state file: its meta record and where each section lies.
pub struct StateFile {
    pub bytes: Bytes,
    pub meta: serde_json::Value,
    pub sections: Vec<Range<usize>>,
    /// The whole file's checksum, as its header records it: names this exact content.
    pub checksum: u64,
}

impl StateFile {
    pub fn section(&self, i: usize) -> &[u8] {
        &self.bytes[self.sections[i].clone()]
    }
}

/// magic 8 | format u32 | sections u32 | total length u64 | checksum u64 | meta length u64
/// | head checksum u64.
const HEADER: usize = 48;
/// The trailer: the checksum again, as the last 8 bytes.
const TRAILER: usize = 8;
/// More sections than any kind has: a header saying otherwise is damaged.
const MAX_SECTIONS: usize = 1024;
/// A meta record is a few hundred bytes of JSON.
const MAX_META: usize = 1 << 20;

/// A checksum over 8-byte words (the tail zero-padded); streaming, so a file can be checked
/// with `read` in chunks instead of through the map (pages read through a map would count
/// in the process's resident memory).
#[derive(Clone, Copy)]
struct Sum(u64);

impl Sum {
    fn new() -> Sum {
        Sum(0x2545_F491_4F6C_DD1D)
    }
    /// `chunk.len()` must be a multiple of 8 except for the last chunk.
    fn add(&mut self, chunk: &[u8]) {
        let mut it = chunk.chunks_exact(8);
        for w in &mut it {
            self.word(u64::from_le_bytes(w.try_into().unwrap()));
        }
        let r = it.remainder();
        if !r.is_empty() {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(r);
            self.word(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

/// The head's checksum: the header without its two checksums, then the section table and
/// the meta record (`rest`, the bytes from `HEADER` on).
fn head_sum(header: &[u8], rest: &[u8]) -> u64 {
    let mut sum = Sum::new();
    sum.add(&header[..24]);
    sum.add(&header[32..40]);
    sum.add(rest);
    sum.0
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

fn up8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Lay out a state file: header, section table, meta, sections (each 8-aligned), trailer.
pub fn encode(magic: &[u8; 8], meta: &serde_json::Value, sections: &[&[u8]]) -> Vec<u8> {
    let meta = serde_json::to_vec(meta).expect("meta is JSON");
    let table = 16 * sections.len();
    let mut v = Vec::with_capacity(
        HEADER
            + table
            + meta.len()
            + sections.iter().map(|s| s.len() + 8).sum::<usize>()
            + 8
            + TRAILER,
    );
    v.extend_from_slice(magic);
    v.extend_from_slice(&FORMAT.to_le_bytes());
    v.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    v.extend_from_slice(&[0u8; 16]); // total length, checksum: filled below
    v.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    v.extend_from_slice(&[0u8; 8]); // head checksum: filled below
    let table_at = v.len();
    v.resize(table_at + table, 0);
    v.extend_from_slice(&meta);
    let head_end = v.len();
    pad8(&mut v);
    for (i, s) in sections.iter().enumerate() {
        let off = v.len() as u64;
        v.extend_from_slice(s);
        let at = table_at + 16 * i;
        v[at..at + 8].copy_from_slice(&off.to_le_bytes());
        v[at + 8..at + 16].copy_from_slice(&(s.len() as u64).to_le_bytes());
        pad8(&mut v);
    }
    let total = (v.len() + TRAILER) as u64;
    v[16..24].copy_from_slice(&total.to_le_bytes());
    let hs = head_sum(&v[..HEADER], &v[HEADER..head_end]);
    v[40..48].copy_from_slice(&hs.to_le_bytes());
    let mut sum = Sum::new();
    sum.add(&v[32..]);
    v[24..32].copy_from_slice(&sum.0.to_le_bytes());
    v.extend_from_slice(&sum.0.to_le_bytes());
    v
}

/// Write `bytes` to `path` atomically (temporary file, sync, rename, sync the folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a state file lives in a folder");
    std::fs::create_dir_all(dir)?;
    remove_orphans(path);
    let tmp = tmp_name(path, std::process::id());
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        // Tests stop a writer midway (kill -9) to show a cut write is never read.
        let pause = std::env::var("COINTRAIL_TEST_STATE_WRITE_PAUSE_MS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        match pause {
            Some(ms) => {
                let half = bytes.len() / 2;
                f.write_all(&bytes[..half])?;
                f.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(ms));
                f.write_all(&bytes[half..])?;
            }
            None => f.write_all(bytes)?,
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn tmp_name(path: &Path, pid: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp.{pid}"));
    PathBuf::from(s)
}

/// Temporary files of writers that are gone (killed midway): their process no longer runs.
fn remove_orphans(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp.", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Why a state file cannot be used as it is.
#[derive(Debug)]
pub enum Unusable {
    Missing,
    /// Damaged or of another format: the reason, for the message.
    Corrupt(String),
}

/// What the header says, once its own checks passed.
struct Head {
    magic: [u8; 8],
    nsec: usize,
    total: usize,
    checksum: u64,
    meta: serde_json::Value,
    sections: Vec<Range<usize>>,
}

/// Check everything but the sections' content: the header, the length, the head's
/// checksum, the section table and the trailer. Reads the head and the last 8 bytes only.
/// `magic`: the kind expected (`None`: any, for `verify`).
fn check_head(
    f: &std::fs::File,
    len: usize,
    magic: Option<&[u8; 8]>,
) -> std::result::Result<Head, String> {
    let mut head = [0u8; HEADER];
    if len < HEADER + TRAILER || f.read_exact_at(&mut head, 0).is_err() {
        return Err(format!("{len} bytes, shorter than its header"));
    }
    let file_magic: [u8; 8] = head[..8].try_into().unwrap();
    if magic.is_some_and(|m| *m != file_magic) {
        return Err("not a state file of this kind (wrong magic)".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap());
    if u32_at(8) != FORMAT {
        return Err(format!(
            "format {} where this build reads {FORMAT}",
            u32_at(8)
        ));
    }
    let (nsec, total, checksum) = (u32_at(12) as usize, u64_at(16), u64_at(24));
    if total != len as u64 {
        return Err(format!(
            "{len} bytes where its header says {total} (cut short or overwritten)"
        ));
    }
    let meta_len = u64_at(32);
    if nsec > MAX_SECTIONS || meta_len > MAX_META as u64 || !len.is_multiple_of(8) {
        return Err("damaged header (section count, meta length or alignment)".into());
    }
    let head_end = HEADER + 16 * nsec + meta_len as usize;
    if head_end + TRAILER > len {
        return Err("damaged header (its table and meta run past the end)".into());
    }
    let mut rest = vec![0u8; head_end - HEADER];
    f.read_exact_at(&mut rest, HEADER as u64)
        .map_err(|e| format!("read error: {e}"))?;
    if head_sum(&head, &rest) != u64_at(40) {
        return Err("damaged head (its checksum does not match)".into());
    }
    let mut trailer = [0u8; TRAILER];
    f.read_exact_at(&mut trailer, (len - TRAILER) as u64)
        .map_err(|e| format!("read error: {e}"))?;
    if u64::from_le_bytes(trailer) != checksum {
        return Err("damaged end (its trailer does not match the header)".into());
    }
    // The sections, laid out as `encode` lays them out: each 8-aligned right after the
    // one before, the last ending before the trailer.
    let mut sections = Vec::with_capacity(nsec);
    let mut at = up8(head_end);
    for i in 0..nsec {
        let e = &rest[16 * i..16 * i + 16];
        let off = u64::from_le_bytes(e[..8].try_into().unwrap());
        let n = u64::from_le_bytes(e[8..].try_into().unwrap());
        if off != at as u64 || n > (len - TRAILER - at) as u64 {
            return Err(format!("damaged section table (section {i})"));
        }
        sections.push(at..at + n as usize);
        at = up8(at + n as usize);
    }
    if at != len - TRAILER {
        return Err("damaged section table (the sections do not end at the trailer)".into());
    }
    let meta = serde_json::from_slice(&rest[16 * nsec..])
        .map_err(|e| format!("damaged meta record: {e}"))?;
    Ok(Head {
        magic: file_magic,
        nsec,
        total: len,
        checksum,
        meta,
        sections,
    })
}

/// Every byte after the checksum field against it, read in chunks with `read` (not
/// through a map: pages read through a map count in the process's resident memory).
fn check_sum(f: &std::fs::File, h: &Head) -> std::result::Result<(), String> {
    let mut sum = Sum::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut at, end) = (32usize, h.total - TRAILER);
    while at < end {
        // Full chunks are multiples of 8; only the last may be shorter.
        let n = buf.len().min(end - at);
        f.read_exact_at(&mut buf[..n], at as u64)
            .map_err(|e| format!("read error: {e}"))?;
        sum.add(&buf[..n]);
        at += n;
    }
    if sum.0 != h.checksum {
        return Err("checksum mismatch (damaged)".into());
    }
    Ok(())
}

fn open_file(path: &Path) -> std::result::Result<(std::fs::File, usize), Unusable> {
    match std::fs::File::open(path) {
        Ok(f) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0) as usize;
            Ok((f, len))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Unusable::Missing),
        Err(e) => Err(Unusable::Corrupt(format!("cannot be read: {e}"))),
    }
}

fn mapped(f: &std::fs::File, h: Head) -> std::result::Result<StateFile, Unusable> {
    // SAFETY: state files are only ever replaced by rename, never written in place, so
    // the mapped file does not change under the map.
    let map = unsafe { memmap2::Mmap::map(f) }
        .map_err(|e| Unusable::Corrupt(format!("cannot be mapped: {e}")))?;
    if map.len() != h.total {
        return Err(Unusable::Corrupt("changed while it was opened".into()));
    }
    debug_assert_eq!(h.sections.len(), h.nsec);
    Ok(StateFile {
        bytes: Bytes::Map(map),
        meta: h.meta,
        sections: h.sections,
        checksum: h.checksum,
    })
}

/// Open a state file of kind `magic`: its header, length, head, section table and
/// trailer are checked (a few KB read, whatever the file's size), then it is mapped. The
/// sections' content is checked against the checksum when the file is written and by
/// [`verify`], not here.
pub fn open(path: &Path, magic: &[u8; 8]) -> std::result::Result<StateFile, Unusable> {
    let (f, len) = open_file(path)?;
    let h = check_head(&f, len, Some(magic)).map_err(Unusable::Corrupt)?;
    mapped(&f, h)
}

/// [`open`], and every byte checked against the checksum: for a file about to be read
/// whole anyway (rebuilt from), or just written.
pub fn open_verified(path: &Path, magic: &[u8; 8]) -> std::result::Result<StateFile, Unusable> {
    let (f, len) = open_file(path)?;
    let h = check_head(&f, len, Some(magic)).map_err(Unusable::Corrupt)?;
    check_sum(&f, &h).map_err(Unusable::Corrupt)?;
    mapped(&f, h)
}

/// What [`verify`] found in a sound file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    /// The kind (its magic, as text).
    pub kind: String,
    pub bytes: u64,
    pub sections: usize,
    pub checksum: String,
}

/// Check a state file of any kind in full: what [`open`] checks, and every byte against
/// the checksum (`cointrail state verify`).
pub fn verify(path: &Path) -> std::result::Result<Verified, Unusable> {
    let (f, len) = open_file(path)?;
    let h = check_head(&f, len, None).map_err(Unusable::Corrupt)?;
    check_sum(&f, &h).map_err(Unusable::Corrupt)?;
    Ok(Verified {
        kind: String::from_utf8_lossy(&h.magic).into_owned(),
        bytes: len as u64,
        sections: h.nsec,
        checksum: format!("{:016x}", h.checksum),
    })
}

/// The sections and meta of bytes just encoded (kept in memory).
fn parse_encoded(bytes: Vec<u8>) -> std::result::Result<StateFile, String> {
    let b = &bytes;
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let nsec = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let checksum = u64_at(24);
    let meta_at = HEADER + 16 * nsec;
    let meta: serde_json::Value =
        serde_json::from_slice(&b[meta_at..meta_at + u64_at(32) as usize])
            .map_err(|e| format!("meta record: {e}"))?;
    let sections = (0..nsec)
        .map(|i| {
            let (off, n) = (
                u64_at(HEADER + 16 * i) as usize,
                u64_at(HEADER + 16 * i + 8) as usize,
            );
            off..off + n
        })
        .collect();
    Ok(StateFile {
        bytes: Bytes::Owned(bytes),
        meta,
        sections,
        checksum,
    })
}

/// Keep `bytes` (just encoded) as a state file: written to `path` and mapped back, every
/// byte read back against the checksum (the one full check a file gets without `verify`),
/// or held in memory when the data directory cannot be written (with a warning).
pub fn persist(path: &Path, magic: &[u8; 8], bytes: Vec<u8>) -> Result<StateFile> {
    match write_atomic(path, &bytes) {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(
                "{} could not be written ({e}): kept in memory for this run only",
                path.display()
            );
            return parse_encoded(bytes).map_err(anyhow::Error::msg);
        }
    }
    drop(bytes);
    match open_verified(path, magic) {
        Ok(f) => Ok(f),
        Err(Unusable::Missing) => {
            anyhow::bail!("{} vanished right after it was written", path.display())
        }
        Err(Unusable::Corrupt(m)) => {
            anyhow::bail!(
                "{} is unreadable right after it was written: {m}",
                path.display()
            )
        }
    }
}

/// One state file as `cointrail state verify` found it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    /// `None`: sound.
    pub damage: Option<String>,
    pub verified: Option<Verified>,
}

/// Check every state file of a data directory in full (`cointrail state verify`): the
/// files a command opens with only their head and trailer checked. Temporary files of
/// writers (`*.tmp.PID`) are not state files and are skipped.
pub fn verify_dir(data_dir: &Path) -> std::io::Result<Vec<FileReport>> {
    let dir = state_dir(data_dir);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| match verify(&path) {
            Ok(v) => FileReport {
                path,
                damage: None,
                verified: Some(v),
            },
            Err(e) => FileReport {
                path,
                damage: Some(match e {
                    Unusable::Missing => "removed while it was checked".into(),
                    Unusable::Corrupt(m) => m,
                }),
                verified: None,
            },
        })
        .collect())
}

/// Little-endian readers over a section.
#[inline]
pub fn u32_at(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(s[4 * i..4 * i + 4].try_into().unwrap())
}
#[inline]
pub fn u64_at(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[8 * i..8 * i + 8].try_into().unwrap())
}
/// Whether bit `i` is set in a section of u64 words (false past its end).
#[inline]
pub fn bit(s: &[u8], i: u64) -> bool {
    let w = (i / 64) as usize;
    8 * w + 8 <= s.len() && u64_at(s, w) & (1 << (i % 64)) != 0
}
/// A bitset section over `ids`, `n` bits wide.
pub fn bitset(ids: impl Iterator<Item = u32>, n: usize) -> Vec<u8> {
    let mut v = vec![0u64; n.div_ceil(64)];
    for i in ids {
        v[i as usize / 64] |= 1 << (i % 64);
    }
    v.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// (mtime in ns, length) of a file, or null: what a source's change is told by.
pub fn file_fingerprint(p: &Path) -> serde_json::Value {
    match std::fs::metadata(p) {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            serde_json::json!([t, m.len()])
        }
        Err(_) => serde_json::Value::Null,
    }
}

/// A store's change stamp (`<store>.stamp`, written after every commit): its content, or
/// the store's length when there is none (a store written before stamps), or null.
pub fn store_fingerprint(store: &Path) -> serde_json::Value {
    let mut s = store.as_os_str().to_owned();
    s.push(".stamp");
    if let Ok(t) = std::fs::read_to_string(PathBuf::from(s)) {
        return serde_json::json!({ "stamp": t.trim() });
    }
    match std::fs::metadata(store) {
        Ok(m) => serde_json::json!({ "len": m.len() }),
        Err(_) => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corrupt(r: std::result::Result<StateFile, Unusable>) -> String {
        match r {
            Err(Unusable::Corrupt(m)) => m,
            Err(Unusable::Missing) => panic!("reported missing"),
            Ok(_) => panic!("damage not seen"),
        }
    }

    #[test]
    fn round_trip_and_damage_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state").join("x.bin");
        let meta = serde_json::json!({"a": 1});
        let bytes = encode(b"CTTEST01", &meta, &[&[1, 2, 3], &[9; 20], &[]]);
        let f = persist(&p, b"CTTEST01", bytes.clone()).unwrap();
        assert_eq!(f.meta, meta);
        assert_eq!(f.section(0), &[1, 2, 3]);
        assert_eq!(f.section(1), &[9; 20]);
        assert_eq!(f.section(2), &[] as &[u8]);
        let v = verify(&p).unwrap();
        assert_eq!((v.kind.as_str(), v.sections), ("CTTEST01", 3));
        assert_eq!(v.checksum, format!("{:016x}", f.checksum));
        assert!(corrupt(open(&p, b"CTOTHER1")).contains("wrong magic"));

        // One byte flipped inside a section: not read at open (that is what keeps opening
        // flat), found by `verify` and by `open_verified`.
        let mut bad = bytes.clone();
        bad[f.sections[1].start + 3] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        assert!(open(&p, b"CTTEST01").is_ok());
        match verify(&p) {
            Err(Unusable::Corrupt(m)) => assert!(m.contains("checksum mismatch"), "{m}"),
            _ => panic!("a flipped byte must be seen by verify"),
        }
        assert!(corrupt(open_verified(&p, b"CTTEST01")).contains("checksum mismatch"));

        // Every byte of the head (header, table, meta) and of the trailer is checked at
        // open; no damage there panics or opens.
        // (The padding between the meta record and the first section is covered by the
        // whole checksum only, as the sections are.)
        let head_end = HEADER + 16 * 3 + serde_json::to_vec(&meta).unwrap().len();
        for at in (0..head_end).chain(bytes.len() - TRAILER..bytes.len()) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            std::fs::write(&p, &bad).unwrap();
            assert!(
                open(&p, b"CTTEST01").is_err(),
                "a flipped byte at {at} opened"
            );
            assert!(verify(&p).is_err(), "a flipped byte at {at} verified");
        }
        // Cut short, and cut with the header's length patched to match.
        std::fs::write(&p, &bytes[..bytes.len() - 8]).unwrap();
        assert!(corrupt(open(&p, b"CTTEST01")).contains("cut short"));
        let mut cut = bytes[..bytes.len() - 8].to_vec();
        let n = cut.len() as u64;
        cut[16..24].copy_from_slice(&n.to_le_bytes());
        std::fs::write(&p, &cut).unwrap();
        assert!(open(&p, b"CTTEST01").is_err());
        // A tail lost to zeros (a disk that kept the length but not the data).
        let mut zeroed = bytes.clone();
        let n = zeroed.len();
        zeroed[n - 16..].fill(0);
        std::fs::write(&p, &zeroed).unwrap();
        assert!(corrupt(open(&p, b"CTTEST01")).contains("trailer"));
        // Shorter than a header; empty.
        for len in [0, 20, HEADER] {
            std::fs::write(&p, &bytes[..len]).unwrap();
            assert!(open(&p, b"CTTEST01").is_err(), "{len} bytes opened");
        }
        // A file of the format before (its whole-file checksum read at every open).
        let mut old = bytes.clone();
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&p, &old).unwrap();
        assert!(corrupt(open(&p, b"CTTEST01")).contains("format 1"));
        assert!(matches!(
            open(&d.path().join("none"), b"CTTEST01"),
            Err(Unusable::Missing)
        ));
    }

    #[test]
    fn opening_reads_the_head_and_the_trailer_only() {
        // A 64 MB section: opening reads a few KB whatever the size; `verify` reads all.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.bin");
        let big = vec![7u8; 64 << 20];
        let meta = serde_json::json!({"kind": "test"});
        persist(&p, b"CTTEST01", encode(b"CTTEST01", &meta, &[&big])).unwrap();
        let read_bytes = || -> u64 {
            std::fs::read_to_string("/proc/thread-self/io")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("rchar: "))
                .unwrap()
                .parse()
                .unwrap()
        };
        let r0 = read_bytes();
        let f = open(&p, b"CTTEST01").unwrap();
        let r1 = read_bytes();
        assert_eq!(f.section(0).len(), 64 << 20);
        assert!(r1 - r0 < 64 << 10, "open read {} bytes", r1 - r0);
        verify(&p).unwrap();
        assert!(read_bytes() - r1 >= 64 << 20);
    }

    #[test]
    fn orphaned_temporary_files_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.bin");
        // A pid that cannot be running (above the kernel's pid_max default range).
        let orphan = tmp_name(&p, 4_000_000_000);
        std::fs::write(&orphan, b"half").unwrap();
        write_atomic(&p, b"whole").unwrap();
        assert!(!orphan.exists());
        assert_eq!(std::fs::read(&p).unwrap(), b"whole");
    }
}
