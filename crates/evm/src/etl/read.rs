//! Streaming readers for ethereum-etl files: JSON lines or CSV, plain, .gz or .bz2,
//! one row at a time (memory is one row, not the file). Every error names
//! `file:line: field`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_primitives::U256;
use serde_json::value::RawValue;

use super::fields::*;
use super::rows::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Blocks,
    Transactions,
    Traces,
    TokenTransfers,
    Logs,
    /// The `tokens` table: token contracts' metadata, not in block order; a reader keeps
    /// its rows aside ([`EtlFile::take_tokens`]) instead of returning them.
    Tokens,
    /// An etl `stream` output: each JSON line says its own `type`.
    Mixed,
}

impl Kind {
    fn from_type_field(t: &str) -> Option<Kind> {
        Some(match t {
            "block" => Kind::Blocks,
            "transaction" => Kind::Transactions,
            "trace" => Kind::Traces,
            "token_transfer" => Kind::TokenTransfers,
            "log" => Kind::Logs,
            "token" => Kind::Tokens,
            _ => return None,
        })
    }
    /// From the columns a row has: each table has one column no other has.
    fn from_columns(mut has: impl FnMut(&str) -> bool) -> Option<Kind> {
        if has("trace_type") {
            Some(Kind::Traces)
        } else if has("token_address") {
            Some(Kind::TokenTransfers)
        } else if has("topics") {
            Some(Kind::Logs)
        } else if has("parent_hash") {
            Some(Kind::Blocks)
        } else if has("from_address") && has("nonce") {
            Some(Kind::Transactions)
        } else if has("address") && has("symbol") && has("decimals") {
            Some(Kind::Tokens)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

/// A row with where it came from, so later checks (a transaction whose block is missing,
/// traces that do not add up) can still name file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub file: Arc<str>,
    pub line: u64,
    pub row: T,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}:{}: field `{}`: {}",
                self.file, self.line, field, self.message
            ),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}
impl std::error::Error for RowError {}

impl RowError {
    pub fn new(file: &str, line: u64, field: Option<&str>, message: impl Into<String>) -> Self {
        RowError {
            file: file.to_string(),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

fn decompress(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 3];
    let n = f.read(&mut magic)?;
    drop(f);
    let f = File::open(path)?;
    // By content, not by name: a renamed .gz still reads.
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
    } else if n == 3 && &magic == b"BZh" {
        Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(f)))
    } else {
        Box::new(f)
    })
}

enum Source {
    Json {
        lines: Box<dyn BufRead + Send>,
        buf: String,
    },
    Csv {
        rdr: csv::Reader<Box<dyn Read + Send>>,
        index: HashMap<String, usize>,
        rec: csv::StringRecord,
        header_lines: u64,
    },
}

/// One open etl file.
pub struct EtlFile {
    name: Arc<str>,
    kind: Kind,
    format: Format,
    line: u64,
    src: Source,
    peeked: Option<String>,
    tokens: Vec<Located<TokenRow>>,
}

/// Open a file, telling format and table from its content (first line or CSV header).
pub fn open_etl_file(path: &Path) -> Result<EtlFile, RowError> {
    let name: Arc<str> = path.display().to_string().into();
    let io = |e: std::io::Error| RowError::new(&name, 0, None, format!("cannot read: {e}"));
    let mut lines: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        1 << 16,
        decompress(path).map_err(io)?,
    ));
    let mut first = String::new();
    let mut skipped = 0;
    loop {
        first.clear();
        if lines.read_line(&mut first).map_err(io)? == 0 {
            // An empty file is a valid table with no rows.
            return Ok(EtlFile {
                name,
                kind: Kind::Mixed,
                format: Format::JsonLines,
                line: 0,
                src: Source::Json {
                    lines,
                    buf: String::new(),
                },
                peeked: None,
                tokens: Vec::new(),
            });
        }
        skipped += 1;
        if !first.trim().is_empty() {
            break;
        }
    }
    if first.trim_start().starts_with('{') {
        let kind = sniff_json_kind(&first).map_err(|m| RowError::new(&name, skipped, None, m))?;
        return Ok(EtlFile {
            name,
            kind,
            format: Format::JsonLines,
            line: skipped - 1,
            src: Source::Json {
                lines,
                buf: String::new(),
            },
            peeked: Some(first),
            tokens: Vec::new(),
        });
    }
    // CSV: the first line is the header; the rest of the stream continues after it.
    let header: Vec<String> = first
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let kind = Kind::from_columns(|c| header.iter().any(|h| h == c)).ok_or_else(|| {
        RowError::new(&name, skipped, None, "neither JSON lines nor an ethereum-etl CSV header (blocks, transactions, traces, token_transfers, logs, tokens)")
    })?;
    let index = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(Box::new(lines) as Box<dyn Read + Send>);
    Ok(EtlFile {
        name,
        kind,
        format: Format::Csv,
        line: skipped,
        src: Source::Csv {
            rdr,
            index,
            rec: csv::StringRecord::new(),
            header_lines: skipped,
        },
        peeked: None,
        tokens: Vec::new(),
    })
}

fn sniff_json_kind(line: &str) -> Result<Kind, String> {
    let m: HashMap<&str, &RawValue> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    if let Some(t) = m.get("type") {
        if Kind::from_type_field(t.get().trim_matches('"')).is_some() {
            return Ok(Kind::Mixed);
        }
    }
    Kind::from_columns(|c| m.contains_key(c)).ok_or_else(|| "a JSON object that is no ethereum-etl row (no column of blocks, transactions, traces, token_transfers, logs or tokens)".to_string())
}

struct JsonFields<'a>(HashMap<&'a str, &'a RawValue>);
impl Fields for JsonFields<'_> {
    fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        let raw = self.0.get(name)?.get();
        if raw == "null" {
            return None;
        }
        if raw.starts_with('"') {
            let s: Cow<str> = serde_json::from_str::<Cow<str>>(raw).ok()?;
            return if s.is_empty() {
                None
            } else {
                Some(Cow::Owned(s.into_owned()))
            };
        }
        Some(Cow::Borrowed(raw))
    }
}

struct CsvFields<'a> {
    index: &'a HashMap<String, usize>,
    rec: &'a csv::StringRecord,
}
impl Fields for CsvFields<'_> {
    fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        let s = self.rec.get(*self.index.get(name)?)?;
        if s.is_empty() {
            None
        } else {
            Some(Cow::Borrowed(s))
        }
    }
}

impl EtlFile {
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn format(&self) -> Format {
        self.format
    }
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The `tokens` rows read so far (a tokens file, or `token` lines of a stream file):
    /// they are metadata, not block rows, so `next_row` keeps them here.
    pub fn take_tokens(&mut self) -> Vec<Located<TokenRow>> {
        std::mem::take(&mut self.tokens)
    }

    /// The next row, or None at the end of the file; token rows are kept aside.
    pub fn next_row(&mut self) -> Option<Result<Located<Row>, RowError>> {
        loop {
            match self.next_any()? {
                Ok(Any::Row(r)) => return Some(Ok(r)),
                Ok(Any::Token(t)) => self.tokens.push(t),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn next_any(&mut self) -> Option<Result<Any, RowError>> {
        let name = self.name.clone();
        match &mut self.src {
            Source::Json { lines, buf } => loop {
                buf.clear();
                if let Some(p) = self.peeked.take() {
                    *buf = p;
                } else {
                    match lines.read_line(buf) {
                        Ok(0) => return None,
                        Ok(_) => {}
                        Err(e) => {
                            return Some(Err(RowError::new(
                                &name,
                                self.line + 1,
                                None,
                                format!("cannot read: {e}"),
                            )))
                        }
                    }
                }
                self.line += 1;
                if buf.trim().is_empty() {
                    continue;
                }
                let line = self.line;
                let m: HashMap<&str, &RawValue> = match serde_json::from_str(buf) {
                    Ok(m) => m,
                    Err(e) => {
                        return Some(Err(RowError::new(
                            &name,
                            line,
                            None,
                            format!("not a JSON object: {e}"),
                        )))
                    }
                };
                let f = JsonFields(m);
                let kind = match self.kind {
                    Kind::Mixed => match f.text("type").as_deref().and_then(Kind::from_type_field) {
                        Some(k) => k,
                        None => match Kind::from_columns(|c| f.0.contains_key(c)) {
                            Some(k) => k,
                            None => return Some(Err(RowError::new(
                                &name,
                                line,
                                Some("type"),
                                "not a block, transaction, trace, token_transfer, log or token row",
                            ))),
                        },
                    },
                    k => k,
                };
                return Some(
                    parse_any(kind, &f, &name, line)
                        .map_err(|e| RowError::new(&name, line, Some(&e.field), e.message)),
                );
            },
            Source::Csv {
                rdr,
                index,
                rec,
                header_lines,
            } => {
                match rdr.read_record(rec) {
                    Ok(false) => return None,
                    Ok(true) => {}
                    Err(e) => {
                        self.line += 1;
                        return Some(Err(RowError::new(
                            &name,
                            self.line,
                            None,
                            format!("bad CSV record: {e}"),
                        )));
                    }
                }
                // Quoted fields can span lines (withdrawals); the CSV reader knows where
                // the record started.
                self.line = rec
                    .position()
                    .map(|p| p.line() + *header_lines)
                    .unwrap_or(self.line + 1);
                let line = self.line;
                if rec.len() != index.len() {
                    return Some(Err(RowError::new(
                        &name,
                        line,
                        None,
                        format!("{} fields where the header has {}", rec.len(), index.len()),
                    )));
                }
                let f = CsvFields { index, rec };
                Some(
                    parse_any(self.kind, &f, &name, line)
                        .map_err(|e| RowError::new(&name, line, Some(&e.field), e.message)),
                )
            }
        }
    }
}

impl Iterator for EtlFile {
    type Item = Result<Located<Row>, RowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}

/// Every file of a directory (or one file) in a stable order: blocks before the rows
/// that refer to them.
pub fn etl_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    let rank = |p: &PathBuf| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let r = [
            "blocks",
            "transactions",
            "traces",
            "token_transfers",
            "logs",
        ]
        .iter()
        .position(|k| n.contains(k))
        .unwrap_or(5);
        (r, n)
    };
    v.sort_by_key(rank);
    Ok(v)
}

enum Any {
    Row(Located<Row>),
    Token(Located<TokenRow>),
}

fn parse_any<F: Fields + ?Sized>(
    kind: Kind,
    f: &F,
    file: &Arc<str>,
    line: u64,
) -> FieldResult<Any> {
    let file = file.clone();
    Ok(if kind == Kind::Tokens {
        Any::Token(Located {
            file,
            line,
            row: parse_token(f)?,
        })
    } else {
        Any::Row(Located {
            file,
            line,
            row: parse_row(kind, f)?,
        })
    })
}

/// Decimals beyond what a 256-bit amount can have digits for say nothing usable (some
/// contracts answer garbage): kept as unknown rather than refused, as the etl itself does.
fn parse_token<F: Fields + ?Sized>(f: &F) -> FieldResult<TokenRow> {
    let decimals = match u256_opt(f, "decimals")? {
        Some(d) if d <= U256::from(crate::tokens::MAX_DECIMALS) => Some(d.to::<u8>()),
        _ => None,
    };
    Ok(TokenRow {
        address: addr_req(f, "address")?,
        symbol: f
            .text("symbol")
            .and_then(|s| crate::tokens::clean_text(&s, crate::tokens::MAX_SYMBOL)),
        name: f
            .text("name")
            .and_then(|s| crate::tokens::clean_text(&s, crate::tokens::MAX_NAME)),
        decimals,
        total_supply: u256_opt(f, "total_supply")?,
        block_number: u64_opt(f, "block_number")?,
    })
}

fn parse_row<F: Fields + ?Sized>(kind: Kind, f: &F) -> FieldResult<Row> {
    Ok(match kind {
        Kind::Blocks => Row::Block(Block {
            number: u64_req(f, "number")?,
            hash: b256_req(f, "hash")?,
            parent_hash: b256_req(f, "parent_hash")?,
            miner: addr_req(f, "miner")?,
            timestamp: u64_req(f, "timestamp")?,
            transaction_count: u64_opt(f, "transaction_count")?.unwrap_or(0),
            gas_used: u64_opt(f, "gas_used")?.unwrap_or(0),
            gas_limit: u64_opt(f, "gas_limit")?.unwrap_or(0),
            base_fee_per_gas: u256_opt(f, "base_fee_per_gas")?,
            withdrawals: withdrawals(f, "withdrawals")?,
        }),
        Kind::Transactions => Row::Transaction(Transaction {
            hash: b256_req(f, "hash")?,
            nonce: u64_req(f, "nonce")?,
            block_hash: b256_opt(f, "block_hash")?,
            block_number: u64_req(f, "block_number")?,
            transaction_index: u64_req(f, "transaction_index")?,
            from_address: addr_req(f, "from_address")?,
            to_address: addr_opt(f, "to_address")?,
            value: u256_req(f, "value")?,
            gas: u64_req(f, "gas")?,
            gas_price: u256_opt(f, "gas_price")?,
            block_timestamp: u64_opt(f, "block_timestamp")?,
            max_fee_per_gas: u256_opt(f, "max_fee_per_gas")?,
            max_priority_fee_per_gas: u256_opt(f, "max_priority_fee_per_gas")?,
            transaction_type: u64_opt(f, "transaction_type")?,
            receipt_gas_used: u64_opt(f, "receipt_gas_used")?,
            receipt_cumulative_gas_used: u64_opt(f, "receipt_cumulative_gas_used")?,
            receipt_contract_address: addr_opt(f, "receipt_contract_address")?,
            receipt_status: u64_opt(f, "receipt_status")?,
            receipt_effective_gas_price: u256_opt(f, "receipt_effective_gas_price")?,
        }),
        Kind::Traces => Row::Trace(Trace {
            block_number: u64_req(f, "block_number")?,
            transaction_hash: b256_opt(f, "transaction_hash")?,
            transaction_index: u64_opt(f, "transaction_index")?,
            from_address: addr_opt(f, "from_address")?,
            to_address: addr_opt(f, "to_address")?,
            value: u256_opt(f, "value")?,
            trace_type: trace_type(f, "trace_type")?,
            call_type: string_opt(f, "call_type"),
            reward_type: string_opt(f, "reward_type"),
            gas: u64_opt(f, "gas")?,
            gas_used: u64_opt(f, "gas_used")?,
            subtraces: u64_opt(f, "subtraces")?.unwrap_or(0),
            trace_address: trace_address(f, "trace_address")?,
            error: string_opt(f, "error"),
            status: u64_opt(f, "status")?,
            trace_id: string_opt(f, "trace_id"),
        }),
        Kind::TokenTransfers => Row::TokenTransfer(TokenTransfer {
            token_address: addr_req(f, "token_address")?,
            from_address: addr_req(f, "from_address")?,
            to_address: addr_req(f, "to_address")?,
            value: u256_req(f, "value")?,
            transaction_hash: b256_req(f, "transaction_hash")?,
            log_index: u64_req(f, "log_index")?,
            block_number: u64_req(f, "block_number")?,
        }),
        Kind::Logs => Row::Log(Log {
            log_index: u64_req(f, "log_index")?,
            transaction_hash: b256_req(f, "transaction_hash")?,
            transaction_index: u64_req(f, "transaction_index")?,
            address: addr_req(f, "address")?,
            data: string_opt(f, "data").unwrap_or_default(),
            topics: topics(f, "topics")?,
            block_number: u64_req(f, "block_number")?,
        }),
        Kind::Mixed | Kind::Tokens => {
            unreachable!("a mixed file resolves each line's kind first; tokens parse apart")
        }
    })
}
