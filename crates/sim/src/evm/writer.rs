//! The output files: one ethereum-etl JSON-lines file per table, written a block at a time
//! (memory holds one block's rows), and the ground-truth files beside them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::blockwriter::io;
use crate::config::SimError;

pub(crate) struct EtlOut {
    files: Vec<(PathBuf, BufWriter<File>)>,
    bytes: u64,
}

pub(crate) const TABLES: [&str; 5] = [
    "blocks",
    "transactions",
    "traces",
    "token_transfers",
    "logs",
];

impl EtlOut {
    pub fn create(dir: &Path) -> Result<EtlOut, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut files = Vec::new();
        for t in TABLES {
            let p = dir.join(format!("{t}.json"));
            let f = File::create(&p).map_err(|e| io(&p, e))?;
            files.push((p, BufWriter::with_capacity(1 << 20, f)));
        }
        Ok(EtlOut { files, bytes: 0 })
    }

    pub fn block(
        &mut self,
        block: &str,
        txs: &str,
        traces: &str,
        tts: &str,
        logs: &str,
    ) -> Result<(), SimError> {
        for ((p, f), s) in self.files.iter_mut().zip([block, txs, traces, tts, logs]) {
            f.write_all(s.as_bytes()).map_err(|e| io(p, e))?;
            self.bytes += s.len() as u64;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<u64, SimError> {
        for (p, mut f) in self.files {
            f.flush().map_err(|e| io(&p, e))?;
            f.into_inner()
                .map_err(|e| io(&p, e.into_error()))?
                .sync_all()
                .map_err(|e| io(&p, e))?;
        }
        Ok(self.bytes)
    }
}

/// A TSV file of the truth, streamed.
pub(crate) struct Tsv {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Tsv {
    pub fn create(path: PathBuf, header: &str) -> Result<Tsv, SimError> {
        let f = File::create(&path).map_err(|e| io(&path, e))?;
        let mut t = Tsv {
            path,
            w: BufWriter::new(f),
        };
        t.line(header)?;
        Ok(t)
    }
    pub fn line(&mut self, s: &str) -> Result<(), SimError> {
        self.w
            .write_all(s.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(|e| io(&self.path, e))
    }
    pub fn finish(mut self) -> Result<(), SimError> {
        self.w.flush().map_err(|e| io(&self.path, e))
    }
}
