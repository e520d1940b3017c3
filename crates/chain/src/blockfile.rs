//! Finding blocks in files: Bitcoin Core block directories (`blk*.dat` + `xor.dat`), framed
//! block files, raw serialized blocks, hex text with one block per line, each possibly
//! bzip2-compressed. Formats are told apart by content, never by file name.
//!
//! Scanning reads only headers, so a directory of any size can be catalogued in one pass;
//! bodies are read later, one block at a time, in whatever order the best chain needs.

use crate::block::{decode_block_txids, decode_header, ChainBlock};
use crate::error::{ChainError, Origin, OriginKind, Result};
use crate::network::{magic_of, network_name, network_of_magic};
use bitcoin::block::Header;
use bitcoin::{BlockHash, Network};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a file turned out to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Core framing: magic + length + block, repeated.
    Framed,
    /// Serialized blocks back to back, no framing.
    Raw,
    /// One hex-encoded block per line.
    Hex,
    /// blockchain-etl JSON lines.
    Etl,
}

#[derive(Clone, Debug)]
enum Loc {
    /// In a file on disk, possibly XOR-obfuscated.
    File { file: u32, offset: u64, len: u32 },
    /// In a buffer held in memory (decompressed or decoded from hex).
    Mem { buf: u32, offset: usize, len: usize },
}

/// A block whose header is known and whose body can be read on demand.
#[derive(Clone, Debug)]
pub struct BlockEntry {
    pub hash: BlockHash,
    pub header: Header,
    loc: Loc,
    pub origin: Origin,
}

struct MemBuf {
    data: Arc<Vec<u8>>,
}

/// Every block found in a set of sources.
#[derive(Default)]
pub struct Catalog {
    files: Vec<(PathBuf, Option<[u8; 8]>)>,
    bufs: Vec<MemBuf>,
    pub entries: Vec<BlockEntry>,
    /// The network the framing magic named, if any source had framing.
    pub network: Option<Network>,
    /// Problems that did not stop the scan (a partly written last block in a Core directory).
    pub warnings: Vec<String>,
    /// Each source file with the format it was read as.
    pub sources: Vec<(PathBuf, FileFormat, bool /* bzip2 */)>,
}

const BZ_MAGIC: &[u8] = b"BZh";

/// The largest serialized block consensus allows (weight 4,000,000, at least one weight
/// unit per byte). A length or a line over it is not a block.
pub const MAX_BLOCK_BYTES: usize = 4_000_000;

/// A bzip2 file may decompress to at most this many times its own size (real block files
/// compress about 2:1, JSON rows about 10:1), and never less than [`MIN_DECOMPRESSED_CAP`]:
/// a 1.5 kB file of 2 GB of zeros is refused instead of filling memory.
pub const MAX_EXPANSION: u64 = 100;
/// The decompressed size always allowed, whatever the ratio.
pub const MIN_DECOMPRESSED_CAP: u64 = 64 << 20;
/// How much decompressed data is looked at before deciding it is not what it should be.
const SNIFF_BYTES: usize = 256 << 10;

/// What decompressed content must start with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Blocks,
    JsonLines,
}

/// Decompress a bzip2 stream of `compressed_len` bytes, refusing it as soon as it is clearly
/// not the expected content or decompresses past the cap.
fn decompress_bounded(
    src: impl Read,
    compressed_len: u64,
    name: &Path,
    expect: Expect,
) -> Result<Vec<u8>> {
    let cap = compressed_len
        .saturating_mul(MAX_EXPANSION)
        .max(MIN_DECOMPRESSED_CAP);
    let mut dec = bzip2::read::MultiBzDecoder::new(src);
    let mut out: Vec<u8> = Vec::new();
    let mut sniffed = false;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match dec.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ChainError::format(
                    origin(name, out.len() as u64),
                    format!("bzip2 stream is corrupt or truncated: {e}"),
                ))
            }
        };
        if n == 0 {
            break;
        }
        if out.len() as u64 + n as u64 > cap {
            return Err(ChainError::format(
                origin(name, out.len() as u64),
                format!(
                    "bzip2 data decompresses to more than {} MB, over {MAX_EXPANSION} times the file's {compressed_len} bytes: refused as a decompression bomb (a real file of this size: decompress it with bunzip2 and give the plain file)",
                    cap / 1_000_000
                ),
            ));
        }
        out.extend_from_slice(&chunk[..n]);
        if !sniffed && out.len() >= SNIFF_BYTES {
            sniff(&out, name, expect)?;
            sniffed = true;
        }
    }
    if !sniffed && !out.is_empty() {
        sniff(&out, name, expect)?;
    }
    Ok(out)
}

/// Refuse early what does not start like the expected content.
fn sniff(data: &[u8], name: &Path, expect: Expect) -> Result<()> {
    let bad = |why: String| {
        Err(ChainError::format(
            origin(name, 0),
            format!("the decompressed data is not {why}; refused before decompressing the rest"),
        ))
    };
    match expect {
        Expect::JsonLines => match data.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => Ok(()),
            Some(_) => bad("JSON lines (blockchain-etl rows start with '{')".into()),
        },
        Expect::Blocks => {
            if data.len() >= 8 && network_of_magic([data[0], data[1], data[2], data[3]]).is_some() {
                let len = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
                if !(81..=MAX_BLOCK_BYTES).contains(&len) {
                    return bad(format!("a block file: the first frame says {len} bytes"));
                }
                return Ok(());
            }
            if is_hex_text(data) || data.first() == Some(&b'{') {
                return Ok(()); // judged line by line (or refused as JSON) by the scan
            }
            raw_block_start(data).map_err(|why| {
                ChainError::format(
                    origin(name, 0),
                    format!("the decompressed data is not blocks ({why}); refused before decompressing the rest"),
                )
            })
        }
    }
}

/// Whether `data` can start a serialized block: a header and a plausible transaction count
/// (at least the coinbase, and no more than fit in a block).
fn raw_block_start(data: &[u8]) -> std::result::Result<(), String> {
    use bitcoin::consensus::Decodable;
    if data.len() < 81 {
        return Err(format!(
            "the data ends before a whole block ({} bytes from here)",
            data.len()
        ));
    }
    let mut cur = std::io::Cursor::new(&data[80..]);
    let n = bitcoin::consensus::encode::VarInt::consensus_decode(&mut cur)
        .map_err(|_| "no transaction count after the header".to_string())?
        .0;
    if n == 0 {
        return Err("a block of no transactions: every block holds its coinbase".into());
    }
    // The smallest transaction is 60 bytes.
    if n > (MAX_BLOCK_BYTES / 60) as u64 {
        return Err(format!("{n} transactions cannot fit in a block"));
    }
    Ok(())
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Catalogue a Bitcoin Core blocks directory: every `blk*.dat` in name order, XORed with
    /// the key in `xor.dat` when present. A truncated last block (Core was stopped while
    /// writing) is skipped with a warning, as Core itself does.
    pub fn add_blocks_dir(&mut self, dir: &Path) -> Result<()> {
        let rd = std::fs::read_dir(dir).map_err(|e| ChainError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let mut names: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n.starts_with("blk") && n.ends_with(".dat")
            })
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(ChainError::Other(format!(
                "{}: no blk*.dat files here; point --blocks-dir at Bitcoin Core's blocks directory (e.g. ~/.bitcoin/blocks)",
                dir.display()
            )));
        }
        let key = read_xor_key(dir)?;
        for p in names {
            self.scan_framed_file(&p, key, true)?;
        }
        Ok(())
    }

    /// Catalogue one file of any supported block format (not ETL: see [`crate::etl`]).
    pub fn add_file(&mut self, path: &Path) -> Result<FileFormat> {
        let mut head = [0u8; 4];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(|e| ChainError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        let head = &head[..n];
        if head.starts_with(BZ_MAGIC) {
            let data = read_bz2(path, Expect::Blocks)?;
            let fmt = self.add_buffer(path, Arc::new(data))?;
            self.sources.push((path.to_path_buf(), fmt, true));
            return Ok(fmt);
        }
        if n == 4 && network_of_magic([head[0], head[1], head[2], head[3]]).is_some() {
            self.scan_framed_file(path, None, false)?;
            self.sources
                .push((path.to_path_buf(), FileFormat::Framed, false));
            return Ok(FileFormat::Framed);
        }
        let data = std::fs::read(path).map_err(|e| ChainError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let fmt = self.add_buffer(path, Arc::new(data))?;
        self.sources.push((path.to_path_buf(), fmt, false));
        Ok(fmt)
    }

    /// Catalogue bytes already in memory, named `name` in errors (stdin, fuzzing, tests).
    pub fn add_bytes(&mut self, name: &Path, data: Vec<u8>) -> Result<FileFormat> {
        let data = if data.starts_with(BZ_MAGIC) {
            decompress_bounded(&data[..], data.len() as u64, name, Expect::Blocks)?
        } else {
            data
        };
        self.add_buffer(name, Arc::new(data))
    }

    fn add_buffer(&mut self, path: &Path, data: Arc<Vec<u8>>) -> Result<FileFormat> {
        if data.is_empty() {
            return Err(ChainError::format(origin(path, 0), "file is empty"));
        }
        if data.starts_with(BZ_MAGIC) {
            return Err(ChainError::format(
                origin(path, 0),
                "bzip2 inside bzip2 is not supported",
            ));
        }
        if data.len() >= 4 {
            if let Some(net) = network_of_magic([data[0], data[1], data[2], data[3]]) {
                let buf = self.push_buf(data.clone());
                self.scan_framed_mem(path, buf, &data, net)?;
                return Ok(FileFormat::Framed);
            }
        }
        if is_hex_text(&data) {
            self.scan_hex(path, &data)?;
            return Ok(FileFormat::Hex);
        }
        if data.first() == Some(&b'{') {
            return Err(ChainError::format(
                origin(path, 0),
                "this looks like JSON: blockchain-etl exports are ingested with --format etl",
            ));
        }
        let buf = self.push_buf(data.clone());
        self.scan_raw(path, buf, &data)?;
        Ok(FileFormat::Raw)
    }

    fn push_buf(&mut self, data: Arc<Vec<u8>>) -> u32 {
        self.bufs.push(MemBuf { data });
        (self.bufs.len() - 1) as u32
    }

    fn note_network(&mut self, net: Network, at: &Origin) -> Result<()> {
        match self.network {
            None => self.network = Some(net),
            Some(n) if n != net => {
                return Err(ChainError::format(
                    at.clone(),
                    format!(
                        "block magic is {} but earlier blocks were {}: one index holds one network",
                        network_name(net),
                        network_name(n)
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    fn scan_framed_file(
        &mut self,
        path: &Path,
        key: Option<[u8; 8]>,
        lenient_tail: bool,
    ) -> Result<()> {
        let io = |e| ChainError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let mut f = File::open(path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        self.files.push((path.to_path_buf(), key));
        let file_idx = (self.files.len() - 1) as u32;
        let mut off = 0u64;
        let mut buf = [0u8; 88];
        while off < size {
            let at = origin(path, off);
            if size - off < 8 {
                if read_at(&mut f, off, &mut buf[..(size - off) as usize], key)
                    .map_err(io)?
                    .iter()
                    .all(|b| *b == 0)
                {
                    break;
                }
                return self.truncated(lenient_tail, at, "a block frame header is cut short");
            }
            read_at(&mut f, off, &mut buf[..8], key).map_err(io)?;
            let magic = [buf[0], buf[1], buf[2], buf[3]];
            if magic == [0, 0, 0, 0] {
                break; // Core preallocates files with zeros.
            }
            let net = network_of_magic(magic).ok_or_else(|| {
                ChainError::format(
                    at.clone(),
                    format!("expected a network magic, found {}", hex::encode(magic)),
                )
            })?;
            self.note_network(net, &at)?;
            let len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
            if (len as u64) < 80 + 1 {
                return Err(ChainError::format(
                    at,
                    format!("block length {len} is too small for a block"),
                ));
            }
            if len as usize > MAX_BLOCK_BYTES {
                return Err(ChainError::format(
                    at,
                    format!("block length {len} is over {MAX_BLOCK_BYTES} bytes, the most a block can be"),
                ));
            }
            if off + 8 + len as u64 > size {
                return self.truncated(
                    lenient_tail,
                    at,
                    &format!("block of {len} bytes runs past the end of the file ({size} bytes)"),
                );
            }
            read_at(&mut f, off + 8, &mut buf[8..88], key).map_err(io)?;
            let header = decode_header(&buf[8..88], &origin(path, off + 8))?;
            self.entries.push(BlockEntry {
                hash: header.block_hash(),
                header,
                loc: Loc::File {
                    file: file_idx,
                    offset: off + 8,
                    len,
                },
                origin: origin(path, off),
            });
            off += 8 + len as u64;
        }
        Ok(())
    }

    fn truncated(&mut self, lenient: bool, at: Origin, what: &str) -> Result<()> {
        if lenient {
            self.warnings
                .push(format!("{at}: {what}; the partly written block is skipped"));
            Ok(())
        } else {
            Err(ChainError::format(at, format!("truncated file: {what}")))
        }
    }

    fn scan_framed_mem(&mut self, path: &Path, buf: u32, data: &[u8], _net: Network) -> Result<()> {
        let mut off = 0usize;
        while off < data.len() {
            let at = origin(path, off as u64);
            if data.len() - off < 8 {
                if data[off..].iter().all(|b| *b == 0) {
                    break;
                }
                return Err(ChainError::format(
                    at,
                    "truncated file: a block frame header is cut short",
                ));
            }
            let magic = [data[off], data[off + 1], data[off + 2], data[off + 3]];
            if magic == [0, 0, 0, 0] {
                break;
            }
            let net = network_of_magic(magic).ok_or_else(|| {
                ChainError::format(
                    at.clone(),
                    format!("expected a network magic, found {}", hex::encode(magic)),
                )
            })?;
            self.note_network(net, &at)?;
            let len =
                u32::from_le_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]])
                    as usize;
            if len < 81 {
                return Err(ChainError::format(
                    at,
                    format!("block length {len} is too small for a block"),
                ));
            }
            if len > MAX_BLOCK_BYTES {
                return Err(ChainError::format(
                    at,
                    format!("block length {len} is over {MAX_BLOCK_BYTES} bytes, the most a block can be"),
                ));
            }
            if off + 8 + len > data.len() {
                return Err(ChainError::format(
                    at,
                    format!(
                        "truncated file: block of {len} bytes runs past the end ({} bytes)",
                        data.len()
                    ),
                ));
            }
            let header = decode_header(&data[off + 8..off + 88], &origin(path, off as u64 + 8))?;
            self.entries.push(BlockEntry {
                hash: header.block_hash(),
                header,
                loc: Loc::Mem {
                    buf,
                    offset: off + 8,
                    len,
                },
                origin: at,
            });
            off += 8 + len;
        }
        Ok(())
    }

    fn scan_raw(&mut self, path: &Path, buf: u32, data: &[u8]) -> Result<()> {
        use bitcoin::consensus::Decodable;
        let mut off = 0usize;
        while off < data.len() {
            let at = origin(path, off as u64);
            // Refused before decoding (and before cataloguing it): zeros decode as a header
            // and a block of no transactions, again and again.
            if let Err(why) = raw_block_start(&data[off..]) {
                return Err(ChainError::format(
                    at,
                    format!("not a block (tried framed, hex and raw formats): {why}"),
                ));
            }
            let mut cur = std::io::Cursor::new(&data[off..]);
            let block = bitcoin::Block::consensus_decode(&mut cur).map_err(|e| {
                // The decoder's own word for running out of bytes is just "IO error".
                let why = match &e {
                    bitcoin::consensus::encode::Error::Io(io)
                        if io.kind() == bitcoin::io::ErrorKind::UnexpectedEof =>
                    {
                        format!(
                            "the data ends before a whole block ({} bytes from here)",
                            data.len() - off
                        )
                    }
                    _ => e.to_string(),
                };
                ChainError::format(
                    at.clone(),
                    format!("not a block (tried framed, hex and raw formats): {why}"),
                )
            })?;
            let len = cur.position() as usize;
            if len > MAX_BLOCK_BYTES {
                return Err(ChainError::format(
                    at,
                    format!(
                        "a block of {len} bytes is over {MAX_BLOCK_BYTES}, the most a block can be"
                    ),
                ));
            }
            self.entries.push(BlockEntry {
                hash: block.block_hash(),
                header: block.header,
                loc: Loc::Mem {
                    buf,
                    offset: off,
                    len,
                },
                origin: at,
            });
            off += len;
        }
        Ok(())
    }

    fn scan_hex(&mut self, path: &Path, data: &[u8]) -> Result<()> {
        // Detection looked at the start only: the rest may still be anything.
        let text = std::str::from_utf8(data).map_err(|e| {
            ChainError::format(
                origin(path, e.valid_up_to() as u64),
                "hex text turns into binary here: not a hex block file",
            )
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let at = Origin {
                file: path.to_path_buf(),
                offset: i as u64 + 1,
                kind: OriginKind::Line,
            };
            if line.len() > 2 * MAX_BLOCK_BYTES {
                return Err(ChainError::format(
                    at,
                    format!(
                        "a line of {} hex digits is over a block's {MAX_BLOCK_BYTES} bytes",
                        line.len()
                    ),
                ));
            }
            let bytes = hex::decode(line)
                .map_err(|e| ChainError::format(at.clone(), format!("bad hex: {e}")))?;
            if bytes.len() < 81 {
                return Err(ChainError::format(at, "line is too short to be a block"));
            }
            let header = decode_header(&bytes[..80], &at)?;
            let len = bytes.len();
            let buf = self.push_buf(Arc::new(bytes));
            self.entries.push(BlockEntry {
                hash: header.block_hash(),
                header,
                loc: Loc::Mem {
                    buf,
                    offset: 0,
                    len,
                },
                origin: at,
            });
        }
        Ok(())
    }

    /// The bytes of one block.
    pub fn read_bytes(&self, e: &BlockEntry) -> Result<Vec<u8>> {
        match &e.loc {
            Loc::Mem { buf, offset, len } => {
                Ok(self.bufs[*buf as usize].data[*offset..*offset + *len].to_vec())
            }
            Loc::File { file, offset, len } => {
                let (path, key) = &self.files[*file as usize];
                let io = |err| ChainError::Io {
                    path: path.clone(),
                    source: err,
                };
                let mut f = File::open(path).map_err(io)?;
                let mut v = vec![0u8; *len as usize];
                read_at(&mut f, *offset, &mut v, *key).map_err(io)?;
                Ok(v)
            }
        }
    }

    /// Read, decode and verify one block.
    pub fn load(&self, e: &BlockEntry, network: Network) -> Result<ChainBlock> {
        self.load_checked(e, network, true)
    }

    /// As [`Catalog::load`]; `witness` says whether to check the witness commitment too
    /// (the merkle root always is).
    pub fn load_checked(
        &self,
        e: &BlockEntry,
        network: Network,
        witness: bool,
    ) -> Result<ChainBlock> {
        let bytes = self.read_bytes(e)?;
        let (block, txids) = decode_block_txids(&bytes, &e.origin, witness)?;
        Ok(ChainBlock::from_block_txids(
            block,
            txids,
            network,
            e.origin.clone(),
        ))
    }

    /// A reader that keeps files open, for reading many blocks in a row.
    pub fn reader(&self) -> CatalogReader<'_> {
        CatalogReader {
            cat: self,
            open: None,
        }
    }
}

/// Reads block bodies, keeping the last file open.
pub struct CatalogReader<'a> {
    cat: &'a Catalog,
    open: Option<(u32, File)>,
}

impl CatalogReader<'_> {
    pub fn read_bytes(&mut self, e: &BlockEntry) -> Result<Vec<u8>> {
        match &e.loc {
            Loc::Mem { .. } => self.cat.read_bytes(e),
            Loc::File { file, offset, len } => {
                let (path, key) = &self.cat.files[*file as usize];
                let io = |err| ChainError::Io {
                    path: path.clone(),
                    source: err,
                };
                if self.open.as_ref().map(|(i, _)| *i) != Some(*file) {
                    self.open = Some((*file, File::open(path).map_err(io)?));
                }
                let f = &mut self.open.as_mut().expect("just opened").1;
                let mut v = vec![0u8; *len as usize];
                read_at(f, *offset, &mut v, *key).map_err(io)?;
                Ok(v)
            }
        }
    }
}

fn origin(path: &Path, offset: u64) -> Origin {
    Origin {
        file: path.to_path_buf(),
        offset,
        kind: OriginKind::Byte,
    }
}

fn read_at<'b>(
    f: &mut File,
    off: u64,
    buf: &'b mut [u8],
    key: Option<[u8; 8]>,
) -> std::io::Result<&'b [u8]> {
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(buf)?;
    if let Some(k) = key {
        xor_in_place(buf, off, &k);
    }
    Ok(buf)
}

/// Undo (or apply: XOR is its own inverse) Core's block-file obfuscation for bytes that
/// start at `offset` in their file.
pub fn xor_in_place(buf: &mut [u8], offset: u64, key: &[u8; 8]) {
    if key == &[0u8; 8] {
        return;
    }
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[((offset + i as u64) % 8) as usize];
    }
}

/// The obfuscation key of a Core 28+ blocks directory (absent or all zeros: none).
pub fn read_xor_key(dir: &Path) -> Result<Option<[u8; 8]>> {
    let p = dir.join("xor.dat");
    match std::fs::read(&p) {
        Ok(v) => {
            let k: [u8; 8] = v.as_slice().try_into().map_err(|_| {
                ChainError::format(
                    origin(&p, 0),
                    format!("xor.dat must hold exactly 8 bytes, it holds {}", v.len()),
                )
            })?;
            Ok(if k == [0; 8] { None } else { Some(k) })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ChainError::Io { path: p, source: e }),
    }
}

fn read_bz2(path: &Path, expect: Expect) -> Result<Vec<u8>> {
    let io = |e| ChainError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    decompress_bounded(std::io::BufReader::new(f), len, path, expect)
}

/// JSON lines from bytes in memory, decompressed within the same bounds when they are
/// bzip2 (stdin, fuzzing).
pub fn decompress_json_lines(name: &Path, data: &[u8]) -> Result<Vec<u8>> {
    if data.starts_with(BZ_MAGIC) {
        decompress_bounded(data, data.len() as u64, name, Expect::JsonLines)
    } else {
        Ok(data.to_vec())
    }
}

/// Read a whole file of JSON lines, bzip2-decompressed (within the bomb bounds of
/// [`MAX_EXPANSION`]) if it is bzip2.
pub fn read_maybe_bz2(path: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| ChainError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if data.starts_with(BZ_MAGIC) {
        decompress_bounded(&data[..], data.len() as u64, path, Expect::JsonLines)
    } else {
        Ok(data)
    }
}

fn is_hex_text(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(4096)];
    sample
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
        && sample.iter().filter(|b| b.is_ascii_hexdigit()).count() >= 162
}

/// Write blocks in Core's framing, for tests and the simulator.
pub fn frame_block(network: Network, block_bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&magic_of(network));
    out.extend_from_slice(&(block_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(block_bytes);
}
