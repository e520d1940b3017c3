//! Derived state persisted beside the data directory's sources (`DATA_DIR/state/`), so
//! that a command opens it instead of rebuilding it from the sources at every start.
//!
//! One container format for every such file: a header naming the kind (magic), the total
//! length and a checksum, a JSON meta record (what the state was built from, so a stale
//! file is told apart from a current one) and sections of little-endian integers read in
//! place through a memory map.
//!
//! Crash safety: a file is written under a temporary name, synced and renamed over the
//! old one, so a reader sees the old file or the new one, never a part. A writer killed
//! midway leaves only its temporary file, which the next writer removes. A file cut or
//! damaged otherwise (a copy gone wrong, a disk error) fails the length or the checksum,
//! and is rebuilt.

use anyhow::Result;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Bumped when the layout of any state file changes: older files are then rebuilt.
pub const FORMAT: u32 = 1;

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
    pub checksum: u64,
}

impl StateFile {
    pub fn section(&self, i: usize) -> &[u8] {
        &self.bytes[self.sections[i].clone()]
    }
}

const HEADER: usize = 40;

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

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

/// Lay out a state file: header, meta, sections (each 8-aligned).
pub fn encode(magic: &[u8; 8], meta: &serde_json::Value, sections: &[&[u8]]) -> Vec<u8> {
    let meta = serde_json::to_vec(meta).expect("meta is JSON");
    let table = 16 * sections.len();
    let mut v = Vec::with_capacity(
        HEADER + table + meta.len() + sections.iter().map(|s| s.len() + 8).sum::<usize>(),
    );
    v.extend_from_slice(magic);
    v.extend_from_slice(&FORMAT.to_le_bytes());
    v.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    v.extend_from_slice(&[0u8; 16]); // total length, checksum: filled below
    v.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    let table_at = v.len();
    v.resize(table_at + table, 0);
    v.extend_from_slice(&meta);
    pad8(&mut v);
    for (i, s) in sections.iter().enumerate() {
        let off = v.len() as u64;
        v.extend_from_slice(s);
        let at = table_at + 16 * i;
        v[at..at + 8].copy_from_slice(&off.to_le_bytes());
        v[at + 8..at + 16].copy_from_slice(&(s.len() as u64).to_le_bytes());
        pad8(&mut v);
    }
    let total = v.len() as u64;
    v[16..24].copy_from_slice(&total.to_le_bytes());
    let mut sum = Sum::new();
    sum.add(&v[32..]);
    v[24..32].copy_from_slice(&sum.0.to_le_bytes());
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

/// Open a state file of kind `magic`: its length and checksum are checked (read in
/// chunks, not through the map) before it is mapped.
pub fn open(path: &Path, magic: &[u8; 8]) -> std::result::Result<StateFile, Unusable> {
    let corrupt = |m: String| Unusable::Corrupt(m);
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => return Err(corrupt(format!("cannot be read: {e}"))),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let mut head = [0u8; HEADER];
    if len < HEADER || f.read_exact(&mut head).is_err() {
        return Err(corrupt(format!("{len} bytes, shorter than its header")));
    }
    if &head[..8] != magic {
        return Err(corrupt(
            "not a state file of this kind (wrong magic)".into(),
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap());
    if u32_at(8) != FORMAT {
        return Err(corrupt(format!(
            "format {} where this build reads {FORMAT}",
            u32_at(8)
        )));
    }
    let (nsec, total, want) = (u32_at(12) as usize, u64_at(16) as usize, u64_at(24));
    if total != len {
        return Err(corrupt(format!(
            "{len} bytes where its header says {total} (cut short or overwritten)"
        )));
    }
    let mut sum = Sum::new();
    sum.add(&head[32..]);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // Full chunks are multiples of 8; only the last may be shorter.
        let mut got = 0;
        while got < buf.len() {
            match f.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(corrupt(format!("read error: {e}"))),
            }
        }
        sum.add(&buf[..got]);
        if got < buf.len() {
            break;
        }
    }
    if sum.0 != want {
        return Err(corrupt("checksum mismatch (damaged)".into()));
    }
    // SAFETY: state files are only ever replaced by rename, never written in place, so
    // the mapped file does not change under the map.
    let map =
        unsafe { memmap2::Mmap::map(&f) }.map_err(|e| corrupt(format!("cannot be mapped: {e}")))?;
    parse(Bytes::Map(map), nsec, want).map_err(corrupt)
}

/// The sections and meta of bytes whose checksum was verified.
fn parse(bytes: Bytes, nsec: usize, checksum: u64) -> std::result::Result<StateFile, String> {
    let b: &[u8] = &bytes;
    let u64_at = |i: usize| -> std::result::Result<u64, String> {
        b.get(i..i + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
            .ok_or_else(|| "header past the end".to_string())
    };
    let meta_len = u64_at(32)? as usize;
    let table_at = HEADER;
    let meta_at = table_at + 16 * nsec;
    let meta_bytes = b
        .get(meta_at..meta_at.saturating_add(meta_len))
        .ok_or("meta record past the end")?;
    let meta: serde_json::Value =
        serde_json::from_slice(meta_bytes).map_err(|e| format!("meta record: {e}"))?;
    let mut sections = Vec::with_capacity(nsec);
    for i in 0..nsec {
        let off = u64_at(table_at + 16 * i)? as usize;
        let n = u64_at(table_at + 16 * i + 8)? as usize;
        if off.checked_add(n).is_none_or(|end| end > b.len()) {
            return Err(format!("section {i} past the end"));
        }
        sections.push(off..off + n);
    }
    Ok(StateFile {
        bytes,
        meta,
        sections,
        checksum,
    })
}

/// Keep `bytes` (just encoded) as a state file: written to `path` and mapped back, or held
/// in memory when the data directory cannot be written (with a warning).
pub fn persist(path: &Path, magic: &[u8; 8], bytes: Vec<u8>) -> Result<StateFile> {
    let nsec = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let sum = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    match write_atomic(path, &bytes) {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(
                "{} could not be written ({e}): kept in memory for this run only",
                path.display()
            );
            return parse(Bytes::Owned(bytes), nsec, sum).map_err(anyhow::Error::msg);
        }
    }
    drop(bytes);
    match open(path, magic) {
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

    #[test]
    fn round_trip_and_damage_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state").join("x.bin");
        let meta = serde_json::json!({"a": 1});
        let bytes = encode(b"CTTEST01", &meta, &[&[1, 2, 3], &[9; 20]]);
        let f = persist(&p, b"CTTEST01", bytes.clone()).unwrap();
        assert_eq!(f.meta, meta);
        assert_eq!(f.section(0), &[1, 2, 3]);
        assert_eq!(f.section(1), &[9; 20]);
        assert!(matches!(open(&p, b"CTOTHER1"), Err(Unusable::Corrupt(_))));
        // One byte flipped in a section.
        let mut bad = bytes.clone();
        let at = f.sections[1].start + 3;
        bad[at] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        match open(&p, b"CTTEST01") {
            Err(Unusable::Corrupt(m)) => assert!(m.contains("checksum"), "{m}"),
            _ => panic!("a flipped byte must be seen"),
        }
        // Cut short.
        std::fs::write(&p, &bytes[..bytes.len() - 8]).unwrap();
        match open(&p, b"CTTEST01") {
            Err(Unusable::Corrupt(m)) => assert!(m.contains("cut short"), "{m}"),
            _ => panic!("a cut file must be seen"),
        }
        assert!(matches!(
            open(&d.path().join("none"), b"CTTEST01"),
            Err(Unusable::Missing)
        ));
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
