//! Several etl files (blocks, transactions, traces, … of the same range) read side by
//! side, one block at a time: memory holds one block's rows, not the export. Each file
//! must be in block order, as ethereum-etl writes them.

use std::path::PathBuf;

use super::read::{open_etl_file, EtlFile, Located, RowError};
use super::rows::Row;
use crate::movement::BlockRows;

pub struct BlockStream {
    files: Vec<(EtlFile, Option<Located<Row>>, u64)>,
    saw_log: bool,
}

impl BlockStream {
    pub fn open(paths: &[PathBuf]) -> Result<BlockStream, RowError> {
        let mut files = Vec::new();
        for p in paths {
            let mut f = open_etl_file(p)?;
            let head = f.next_row().transpose()?;
            files.push((f, head, 0));
        }
        Ok(BlockStream {
            files,
            saw_log: false,
        })
    }

    /// Token metadata rows read so far (from a `tokens` file, read whole at open, or the
    /// `token` lines of a stream file, as they come).
    pub fn take_tokens(&mut self) -> Vec<Located<crate::etl::TokenRow>> {
        self.files
            .iter_mut()
            .flat_map(|(f, _, _)| f.take_tokens())
            .collect()
    }

    /// Whether the blocks read so far come with their logs: a logs table is among the
    /// files, or a mixed (etl `stream`) file has given a log row. Without logs, a block's
    /// logs are not known, which is not the same as none.
    pub fn has_logs(&self) -> bool {
        self.saw_log
            || self
                .files
                .iter()
                .any(|(f, _, _)| f.kind() == super::read::Kind::Logs)
    }

    /// The next block's rows, in block-number order across all files.
    pub fn next_block(&mut self) -> Option<Result<BlockRows, RowError>> {
        let n = self
            .files
            .iter()
            .filter_map(|(_, h, _)| h.as_ref().map(|r| r.row.block_number()))
            .min()?;
        let mut b = BlockRows::default();
        let mut first: Option<(std::sync::Arc<str>, u64)> = None;
        for (f, head, last) in &mut self.files {
            while let Some(r) = head.take() {
                let bn = r.row.block_number();
                if bn != n {
                    *head = Some(r);
                    break;
                }
                if bn < *last {
                    return Some(Err(RowError::new(&r.file, r.line, Some("block_number"), format!("block {bn} after block {last}: the file is not in block order; sort it by block number"))));
                }
                *last = bn;
                first.get_or_insert((r.file.clone(), r.line));
                let Located { file, line, row } = r;
                match row {
                    Row::Block(x) => {
                        if let Some(prev) = &b.block {
                            return Some(Err(RowError::new(
                                &file,
                                line,
                                Some("number"),
                                format!(
                                    "block {n} appears twice (first at {}:{})",
                                    prev.file, prev.line
                                ),
                            )));
                        }
                        b.block = Some(Located { file, line, row: x })
                    }
                    Row::Transaction(x) => b.transactions.push(Located { file, line, row: x }),
                    Row::Trace(x) => b.traces.push(Located { file, line, row: x }),
                    Row::TokenTransfer(x) => b.token_transfers.push(Located { file, line, row: x }),
                    Row::Log(x) => {
                        self.saw_log = true;
                        b.logs.push(Located { file, line, row: x })
                    }
                }
                match f.next_row().transpose() {
                    Ok(h) => *head = h,
                    Err(e) => return Some(Err(e)),
                }
                if let Some(h) = head.as_ref() {
                    if h.row.block_number() < n {
                        return Some(Err(RowError::new(&h.file, h.line, Some("block_number"), format!("block {} after block {n}: the file is not in block order; sort it by block number", h.row.block_number()))));
                    }
                }
            }
        }
        if b.block.is_none() {
            let (file, line) = first.expect("a block number came from some row");
            return Some(Err(RowError::new(&file, line, Some("block_number"), format!("block {n} is not among the blocks read; give the blocks file of the same range"))));
        }
        b.transactions.sort_by_key(|t| t.row.transaction_index);
        b.token_transfers.sort_by_key(|t| t.row.log_index);
        b.logs.sort_by_key(|t| t.row.log_index);
        Some(Ok(b))
    }
}

impl Iterator for BlockStream {
    type Item = Result<BlockRows, RowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_block()
    }
}

/// True when the file reads as ethereum-etl rows (used to tell an EVM export from
/// Bitcoin block files or bitcoin-etl rows without being told).
pub fn looks_like_evm_etl(p: &std::path::Path) -> bool {
    let files = match super::read::etl_files(p) {
        Ok(f) => f,
        Err(_) => return false,
    };
    files.first().is_some_and(|f| match open_etl_file(f) {
        Ok(e) if e.kind() == super::read::Kind::Tokens => true,
        Ok(mut e) => matches!(e.next_row(), Some(Ok(_))) || !e.take_tokens().is_empty(),
        Err(_) => false,
    })
}
