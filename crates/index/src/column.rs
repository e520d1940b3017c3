//! Fixed-width column files: append-only, memory-mapped for reading.
//!
//! A column's committed length lives in the manifest, not in the file: bytes past it are
//! an interrupted batch and are undone and cut off when the index is opened. Columns that
//! change in place (spend links, the head of each address's output list) take their
//! changes as an overlay during a batch and write them only after every appended record of
//! that batch is on disk, so recovery can always undo them from those records.

use memmap2::{Mmap, MmapMut, MmapOptions};
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub struct Column {
    pub path: PathBuf,
    pub width: usize,
    file: File,
    map: Option<Mmap>,
    /// Bytes the current map spans (at least the committed bytes).
    map_cap: usize,
    /// Records in the mapped, committed part.
    committed: u64,
    pending: Vec<u8>,
    /// In-place changes to committed records, applied at commit.
    overlay: HashMap<u64, [u8; 8]>,
}

impl Column {
    pub fn open(dir: &Path, name: &str, width: usize) -> io::Result<Column> {
        Column::open_mode(dir, name, width, true)
    }

    /// Open for reading only (an index on a read-only mount): nothing is created or written.
    pub fn open_read_only(dir: &Path, name: &str, width: usize) -> io::Result<Column> {
        Column::open_mode(dir, name, width, false)
    }

    fn open_mode(dir: &Path, name: &str, width: usize, write: bool) -> io::Result<Column> {
        let path = dir.join(name);
        let file = if write {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?
        } else {
            match File::open(&path) {
                Ok(f) => f,
                // A column added after this index was written: empty, as a writer would
                // create it. /dev/null reads as an empty file.
                Err(e) if e.kind() == io::ErrorKind::NotFound => File::open("/dev/null")?,
                Err(e) => return Err(e),
            }
        };
        Ok(Column {
            path,
            width,
            file,
            map: None,
            map_cap: 0,
            committed: 0,
            pending: Vec::new(),
            overlay: HashMap::default(),
        })
    }

    /// Records physically present in the file (complete ones only).
    pub fn file_records(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len() / self.width as u64)
    }

    /// Map the first `n` records as the committed state.
    pub fn set_committed(&mut self, n: u64) -> io::Result<()> {
        self.committed = n;
        self.pending.clear();
        self.overlay.clear();
        self.remap()
    }

    fn remap(&mut self) -> io::Result<()> {
        let bytes = self.committed as usize * self.width;
        if bytes == 0 {
            self.map = None;
            self.map_cap = 0;
            return Ok(());
        }
        if self.map.is_some() && bytes <= self.map_cap {
            // A shared map sees the file grow: keep it, and the pages already faulted in.
            return Ok(());
        }
        // Map twice what is needed, so a growing column is remapped O(log n) times rather
        // than at every commit (each remap faults every hot page in again). Only the
        // committed bytes, which exist in the file, are ever read.
        let cap = (bytes * 2).max(1 << 20);
        // SAFETY: the file is appended to only by the lock holder; bytes past the committed
        // length are never read through this map, and truncation drops the map first.
        self.map = Some(unsafe { MmapOptions::new().len(cap).map(&self.file)? });
        self.map_cap = cap;
        Ok(())
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    pub fn len(&self) -> u64 {
        self.committed + (self.pending.len() / self.width) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start loading record `i` into the cache (see [`prefetch`]).
    #[inline]
    pub fn prefetch(&self, i: u64) {
        let w = self.width;
        if i < self.committed {
            if let Some(m) = &self.map {
                prefetch(m.as_ptr().wrapping_add(i as usize * w));
            }
        } else {
            let j = (i - self.committed) as usize * w;
            if j < self.pending.len() {
                prefetch(self.pending.as_ptr().wrapping_add(j));
            }
        }
    }

    #[inline]
    pub fn get(&self, i: u64) -> &[u8] {
        let w = self.width;
        if i < self.committed {
            let m = self.map.as_ref().expect("committed rows are mapped");
            &m[i as usize * w..(i as usize + 1) * w]
        } else {
            let j = (i - self.committed) as usize;
            &self.pending[j * w..(j + 1) * w]
        }
    }

    /// Ask the CPU to load the cache lines holding bytes `from..to` of row `i` (a reader
    /// about to read a field that may not sit on the row's first line: rows are not aligned
    /// to lines). `to - from` must be at most a line (64 bytes) for one or two prefetches.
    #[inline]
    pub fn prefetch_range(&self, i: u64, from: usize, to: usize) {
        if i < self.committed {
            if let Some(m) = &self.map {
                let base = i as usize * self.width;
                prefetch(m.as_ptr().wrapping_add(base + from));
                prefetch(m.as_ptr().wrapping_add(base + to - 1));
            }
        } else {
            self.prefetch(i);
        }
    }

    /// As [`Column::prefetch`], both ends of the record (a row wider than a few bytes may
    /// straddle two cache lines).
    #[inline]
    pub fn prefetch_whole(&self, i: u64) {
        self.prefetch(i);
        if i < self.committed {
            if let Some(m) = &self.map {
                prefetch(m.as_ptr().wrapping_add((i as usize + 1) * self.width - 1));
            }
        }
    }

    /// Read including uncommitted in-place changes (for the writer).
    #[inline]
    pub fn get_current(&self, i: u64) -> [u8; 8] {
        if i < self.committed {
            if let Some(v) = self.overlay.get(&i) {
                return *v;
            }
        }
        let mut out = [0u8; 8];
        out[..self.width].copy_from_slice(self.get(i));
        out
    }

    pub fn push(&mut self, rec: &[u8]) {
        debug_assert_eq!(rec.len(), self.width);
        self.pending.extend_from_slice(rec);
    }

    /// Change a record in place (`rec.len() == width <= 8`).
    pub fn set(&mut self, i: u64, rec: &[u8]) {
        if i < self.committed {
            let mut v = [0u8; 8];
            v[..rec.len()].copy_from_slice(rec);
            self.overlay.insert(i, v);
        } else {
            let j = (i - self.committed) as usize * self.width;
            self.pending[j..j + self.width].copy_from_slice(rec);
        }
    }

    /// Step 1 of a commit: append pending records and make them durable.
    pub fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file
                .write_all_at(&self.pending, self.committed * self.width as u64)
                .map_err(|e| why_not_written(e, self.pending.len() as u64))?;
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Step 2 of a commit: apply in-place changes to committed records, durably.
    pub fn write_overlay(&mut self) -> io::Result<()> {
        if self.overlay.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<u64> = self.overlay.keys().copied().collect();
        keys.sort_unstable();
        for i in keys {
            let v = self.overlay[&i];
            self.file
                .write_all_at(&v[..self.width], i * self.width as u64)?;
        }
        self.file.sync_data()
    }

    /// Step 3, after the manifest names the new length: the batch becomes the mapped state.
    pub fn finish_commit(&mut self) -> io::Result<()> {
        let n = self.len();
        self.set_committed(n)
    }

    /// Write one committed record directly (recovery and rollback only).
    pub fn write_at(&mut self, i: u64, rec: &[u8]) -> io::Result<()> {
        self.file.write_all_at(rec, i * self.width as u64)
    }

    /// Read raw bytes from the file at a byte offset (filling a derived column).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Read a record from the file, committed or not (recovery only).
    pub fn read_file(&self, i: u64) -> io::Result<[u8; 40]> {
        let mut buf = [0u8; 40];
        self.file
            .read_exact_at(&mut buf[..self.width], i * self.width as u64)?;
        Ok(buf)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.committed * self.width as u64
    }
}

/// An open-addressing table file mapped read-write (the txid and address maps).
pub struct TableFile {
    pub path: PathBuf,
    pub map: MmapMut,
}

impl TableFile {
    pub fn create(path: &Path, slots: u64) -> io::Result<TableFile> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        f.set_len(slots * 4)?;
        // Writes go through the map: every page must have its disk blocks before it is
        // touched, or a full disk kills the process with SIGBUS instead of an error.
        reserve(&f, slots * 4)?;
        // SAFETY: a private file of this index, sized above, mapped for its lifetime.
        let map = unsafe { MmapOptions::new().map_mut(&f)? };
        Ok(TableFile {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn open(path: &Path) -> io::Result<TableFile> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        // A table written before space was reserved may be sparse: reserve it now, while
        // a full disk is still an error rather than a SIGBUS.
        reserve(&f, f.metadata()?.len())?;
        TableFile::map_file(path, f)
    }

    /// As [`TableFile::open`] without reserving space: for a reader on a full disk, which
    /// writes through the map only to put back entries a crash lost.
    pub fn open_unreserved(path: &Path) -> io::Result<TableFile> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        TableFile::map_file(path, f)
    }

    fn map_file(path: &Path, f: File) -> io::Result<TableFile> {
        // SAFETY: as above.
        let map = unsafe { MmapOptions::new().map_mut(&f)? };
        Ok(TableFile {
            path: path.to_path_buf(),
            map,
        })
    }

    /// Map a table for reading only (an index on a read-only mount). The map is private:
    /// entries a crash left out can still be put back in memory (`repair_maps`), and
    /// nothing reaches the file.
    pub fn open_read_only(path: &Path) -> io::Result<TableFile> {
        let f = File::open(path)?;
        // SAFETY: a private copy-on-write map; the file is not written while the index is
        // read-only to us.
        let map = unsafe { MmapOptions::new().map_copy(&f)? };
        Ok(TableFile {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn slots(&self) -> u64 {
        (self.map.len() / 4) as u64
    }

    #[inline]
    pub fn slot(&self, i: u64) -> u32 {
        let i = i as usize * 4;
        u32::from_le_bytes(self.map[i..i + 4].try_into().expect("4 bytes"))
    }

    #[inline]
    pub fn set_slot(&mut self, i: u64, v: u32) {
        let i = i as usize * 4;
        self.map[i..i + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }

    /// Start loading the first slot a key with hash `h` probes.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let i = (h & (self.slots() - 1)) as usize * 4;
        prefetch(self.map.as_ptr().wrapping_add(i));
    }
}

pub use cointrail_chain::mem::prefetch;

/// Allocate the disk blocks of the first `len` bytes of `f` (a full disk: an ENOSPC error
/// here, never a SIGBUS later through a map).
pub fn reserve(f: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return Ok(());
    }
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::other("file too large"))?;
    // SAFETY: a valid open descriptor; posix_fallocate reads nothing from memory.
    let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len) };
    match r {
        0 => Ok(()),
        e => Err(why_not_written(io::Error::from_raw_os_error(e), len as u64)),
    }
}

/// A write refused for want of room says what to do: a full disk (ENOSPC) and a file-size
/// limit (EFBIG: `ulimit -f`, RLIMIT_FSIZE) stop a batch the same way, before its manifest.
fn why_not_written(e: io::Error, len: u64) -> io::Error {
    let mb = len / 1_000_000 + 1;
    match e.raw_os_error() {
        Some(libc::ENOSPC) => io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "no space left on the device for {mb} MB more; free space (or use a --data-dir on a larger disk) and run the command again: nothing committed is lost"
            ),
        ),
        Some(libc::EFBIG) => io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "a file would pass the process's file size limit (ulimit -f) with {mb} MB more; raise the limit and run the command again: nothing committed is lost"
            ),
        ),
        _ => e,
    }
}

// 40-bit little-endian ids: enough for 10^12 inputs or outputs in 5 bytes instead of 8.
pub const U40_MAX: u64 = (1 << 40) - 1;

#[inline]
pub fn u40_bytes(v: u64) -> [u8; 5] {
    debug_assert!(v <= U40_MAX);
    let b = v.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4]]
}

#[inline]
pub fn u40_of(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], 0, 0, 0])
}

#[inline]
pub fn u32_of(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
pub fn u64_of(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

pub fn open_file_opts() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true);
    o
}
