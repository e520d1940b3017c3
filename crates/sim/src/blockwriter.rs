//! Writes blocks as Bitcoin Core does: `blk00000.dat`, `blk00001.dat`, … each a sequence of
//! (network magic, u32 LE length, block), a new file when the next block would pass the
//! size limit, blocks held back in a small window and written in the order a node that
//! downloads from several peers might receive them, and the whole file XORed with the key
//! of `xor.dat` (byte at file offset `o` XOR `key[o % 8]`, Core 28+).

use crate::chainparams::REGTEST_MAGIC;
use crate::config::SimError;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct BlockWriter {
    dir: PathBuf,
    max_file_bytes: u64,
    key: Option<[u8; 8]>,
    file: Option<BufWriter<File>>,
    file_no: u32,
    offset: u64,
    window: Vec<Vec<u8>>,
    window_size: usize,
    rng: ChaCha8Rng,
    pub bytes_written: u64,
    scratch: Vec<u8>,
}

impl BlockWriter {
    pub fn new(
        dir: &Path,
        max_file_bytes: u64,
        key: Option<[u8; 8]>,
        window_size: usize,
        rng: ChaCha8Rng,
    ) -> Result<BlockWriter, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        if let Some(k) = key {
            let p = dir.join("xor.dat");
            std::fs::write(&p, k).map_err(|e| io(&p, e))?;
        }
        Ok(BlockWriter {
            dir: dir.to_path_buf(),
            max_file_bytes,
            key,
            file: None,
            file_no: 0,
            offset: 0,
            window: Vec::new(),
            window_size: window_size.max(1),
            rng,
            bytes_written: 0,
            scratch: Vec::new(),
        })
    }

    /// Number of `blk*.dat` files started so far.
    pub fn files(&self) -> u32 {
        if self.file.is_some() {
            self.file_no + 1
        } else {
            self.file_no
        }
    }

    /// Queue a serialized block; it reaches disk now or a few blocks later.
    pub fn push(&mut self, block: Vec<u8>) -> Result<(), SimError> {
        self.window.push(block);
        if self.window.len() >= self.window_size {
            // Mostly the oldest block, sometimes a newer one overtakes it.
            let i = if self.rng.random_bool(0.7) {
                0
            } else {
                self.rng.random_range(0..self.window.len())
            };
            let b = self.window.remove(i);
            self.write(&b)?;
        }
        Ok(())
    }

    /// Write a block immediately, ahead of any held back (used for genesis).
    pub fn write_now(&mut self, block: &[u8]) -> Result<(), SimError> {
        self.write(block)
    }

    pub fn finish(mut self) -> Result<u64, SimError> {
        while !self.window.is_empty() {
            let i = self.rng.random_range(0..self.window.len());
            let b = self.window.remove(i);
            self.write(&b)?;
        }
        if let Some(mut f) = self.file.take() {
            f.flush().map_err(|e| io(&self.path(self.file_no), e))?;
        }
        Ok(self.bytes_written)
    }

    fn path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("blk{n:05}.dat"))
    }

    fn write(&mut self, block: &[u8]) -> Result<(), SimError> {
        let need = 8 + block.len() as u64;
        if self.file.is_some() && self.offset + need > self.max_file_bytes {
            let mut f = self.file.take().unwrap();
            f.flush().map_err(|e| io(&self.path(self.file_no), e))?;
            self.file_no += 1;
            self.offset = 0;
        }
        if self.file.is_none() {
            let p = self.path(self.file_no);
            let f = File::create(&p).map_err(|e| io(&p, e))?;
            self.file = Some(BufWriter::with_capacity(1 << 20, f));
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&REGTEST_MAGIC);
        self.scratch
            .extend_from_slice(&(block.len() as u32).to_le_bytes());
        self.scratch.extend_from_slice(block);
        if let Some(k) = self.key {
            xor_in_place(&mut self.scratch, &k, self.offset);
        }
        let p = self.path(self.file_no);
        self.file
            .as_mut()
            .unwrap()
            .write_all(&self.scratch)
            .map_err(|e| io(&p, e))?;
        self.offset += need;
        self.bytes_written += need;
        Ok(())
    }
}

/// XOR `buf`, which starts at `offset` in its file, with the 8-byte key.
pub fn xor_in_place(buf: &mut [u8], key: &[u8; 8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[((offset + i as u64) % 8) as usize];
    }
}

pub fn io(p: &Path, e: std::io::Error) -> SimError {
    SimError::Io {
        path: p.to_path_buf(),
        source: e,
    }
}
