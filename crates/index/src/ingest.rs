//! Ingest: find the best chain among the indexed blocks and the new ones, roll back what
//! left it, and append the rest, reading and verifying blocks on one thread while the index
//! appends on another.

use crate::store::Index;
use crate::IndexError;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Network};
use cointrail_chain::block::decode_block_txids;
use cointrail_chain::error::{Origin, OriginKind};
use cointrail_chain::network::network_name;
use cointrail_chain::{Catalog, ChainBlock};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub enum Source {
    /// A Bitcoin Core blocks directory.
    BlocksDir(PathBuf),
    /// Block files of any supported format.
    Files(Vec<PathBuf>),
    /// blockchain-etl JSON lines.
    Etl(Vec<PathBuf>),
    /// Blocks already decoded and verified (from a node's RPC, for example). Each must carry
    /// `prev`; the first may build on any indexed block (a reorganisation) or on the tip.
    Blocks(Vec<ChainBlock>),
}

#[derive(Default)]
pub struct IngestOptions<'a> {
    /// Height of the first block when the blocks cannot tell (pre-BIP34, no genesis link).
    pub start_height: Option<u32>,
    /// Network for sources without framing (raw, hex, ETL); framed files name their own.
    pub network: Option<Network>,
    /// Commit after this many transactions (default 500,000).
    pub commit_every_txs: u64,
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
    /// Also check each block's witness commitment. Off by default: the merkle root, always
    /// checked, commits to every byte the index keeps; witnesses are not indexed, and
    /// hashing them doubles the reading thread's work.
    pub verify_witness: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub blocks_done: u64,
    pub blocks_total: u64,
    pub txs_done: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub network: String,
    pub blocks_added: u64,
    pub txs_added: u64,
    pub blocks_rolled_back: u64,
    /// Height of the last block both branches share, when a reorganisation happened.
    pub reorg_fork_height: Option<u32>,
    pub tip_height: Option<u32>,
    pub tip_hash: Option<String>,
    /// Blocks seen that are not on the best chain (kept aside for a later reorganisation).
    pub stale_blocks: u64,
    /// Blocks that connect to nothing indexed.
    pub orphan_blocks: u64,
    pub already_indexed: u64,
    pub warnings: Vec<String>,
}

enum CandSrc {
    Catalog(usize),
    Ready(usize),
    Side(PathBuf),
}

struct Cand {
    hash: BlockHash,
    prev: Option<BlockHash>,
    height: Option<u32>,
    bits: u32,
    src: CandSrc,
}

/// Work of a block from its compact target (0 bits, e.g. an ETL row without bits: 1).
fn work_of(bits: u32) -> u128 {
    if bits == 0 {
        return 1;
    }
    let target = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(bits));
    let w = target.to_work();
    // Work fits u128 for every real target (2^256 / target, targets ≥ 2^32 below the limit).
    let b = w.to_be_bytes();
    u128::from_be_bytes(b[16..].try_into().expect("16 bytes")).max(1)
}

pub fn ingest(
    index: &mut Index,
    source: Source,
    opts: &IngestOptions,
) -> Result<IngestReport, IndexError> {
    let mut report = IngestReport::default();
    let mut catalog = Catalog::new();
    let mut ready: Vec<ChainBlock> = Vec::new();
    let mut keep_side = false;
    match &source {
        Source::BlocksDir(d) => catalog.add_blocks_dir(d)?,
        Source::Files(fs) => {
            keep_side = true;
            for f in fs {
                catalog.add_file(f)?;
            }
        }
        Source::Etl(fs) => ready = cointrail_chain::etl::read_etl(fs)?,
        Source::Blocks(bs) => ready = bs.clone(),
    }
    report.warnings.append(&mut catalog.warnings);
    let network = match (catalog.network, opts.network, index.network()) {
        (Some(c), Some(o), _) if c != o => {
            return Err(IndexError::Format(format!(
                "the files are {} blocks but --network says {}",
                network_name(c),
                network_name(o)
            )))
        }
        (Some(c), _, Some(i)) | (None, Some(c), Some(i)) if c != i => {
            return Err(IndexError::Format(format!(
                "the files are {} blocks but this index holds {}: use another --data-dir",
                network_name(c),
                network_name(i)
            )))
        }
        (Some(c), _, _) => c,
        (None, Some(o), _) => o,
        (None, None, Some(i)) => i,
        (None, None, None) => guess_network(&catalog, &ready).unwrap_or(Network::Bitcoin),
    };
    report.network = network_name(network).to_string();

    let mut cands: Vec<Cand> = Vec::new();
    for (i, e) in catalog.entries.iter().enumerate() {
        cands.push(Cand {
            hash: e.hash,
            prev: Some(e.header.prev_blockhash),
            height: None,
            bits: e.header.bits.to_consensus(),
            src: CandSrc::Catalog(i),
        });
    }
    for (i, b) in ready.iter().enumerate() {
        cands.push(Cand {
            hash: b.hash,
            prev: b.prev,
            height: b.height,
            bits: b.bits,
            src: CandSrc::Ready(i),
        });
    }
    let side_dir = index.dir().join("side");
    for (hash, prev, bits, path) in read_side(&side_dir) {
        cands.push(Cand {
            hash,
            prev: Some(prev),
            height: None,
            bits,
            src: CandSrc::Side(path),
        });
    }

    // The indexed chain: hash → position, and cumulative work.
    let n = index.block_count();
    let mut indexed: HashMap<BlockHash, u64> = HashMap::with_capacity(n as usize);
    let mut work_prefix: Vec<u128> = Vec::with_capacity(n as usize);
    let mut acc = 0u128;
    for i in 0..n {
        let r = index.block(i);
        indexed.insert(BlockHash::from_byte_array(r.hash), i);
        acc += work_of(r.bits);
        work_prefix.push(acc);
    }
    let mut by_hash: HashMap<BlockHash, usize> = HashMap::new();
    let mut uniq: Vec<Cand> = Vec::new();
    for c in cands {
        if indexed.contains_key(&c.hash) {
            report.already_indexed += 1;
            continue;
        }
        if by_hash.contains_key(&c.hash) {
            continue;
        }
        by_hash.insert(c.hash, uniq.len());
        uniq.push(c);
    }
    let cands = uniq;

    // Anchor every candidate: the indexed block it builds on (or a root), and its total work.
    #[derive(Clone, Copy)]
    enum Anchor {
        Unknown,
        Indexed(u64),
        Root,
        Orphan,
    }
    let mut anchor = vec![Anchor::Unknown; cands.len()];
    let mut total = vec![0u128; cands.len()];
    let mut parent: Vec<Option<usize>> = vec![None; cands.len()];
    for start in 0..cands.len() {
        let mut stack = vec![start];
        while let Some(&c) = stack.last() {
            if !matches!(anchor[c], Anchor::Unknown) {
                stack.pop();
                continue;
            }
            let w = work_of(cands[c].bits);
            let prev = cands[c].prev;
            let resolved = match prev {
                Some(p) if indexed.contains_key(&p) => {
                    let pos = indexed[&p];
                    Some((Anchor::Indexed(pos), work_prefix[pos as usize] + w, None))
                }
                Some(p) if by_hash.contains_key(&p) => {
                    let pi = by_hash[&p];
                    if matches!(anchor[pi], Anchor::Unknown) {
                        stack.push(pi);
                        continue;
                    }
                    Some((anchor[pi], total[pi] + w, Some(pi)))
                }
                None if n > 0 => {
                    // An ETL range without the previous hash: place it by height.
                    match cands[c].height {
                        Some(h)
                            if h > index.start_height()
                                && ((h - index.start_height() - 1) as u64) < n =>
                        {
                            let pos = (h - index.start_height() - 1) as u64;
                            Some((Anchor::Indexed(pos), work_prefix[pos as usize] + w, None))
                        }
                        _ => Some((Anchor::Orphan, 0, None)),
                    }
                }
                _ if n == 0 => Some((Anchor::Root, w, None)),
                _ => Some((Anchor::Orphan, 0, None)),
            };
            let (a, t, par) = resolved.expect("resolved");
            anchor[c] = a;
            total[c] = t;
            parent[c] = par;
            stack.pop();
        }
    }
    let current = work_prefix.last().copied().unwrap_or(0);
    let mut best: Option<usize> = None;
    for c in 0..cands.len() {
        if matches!(anchor[c], Anchor::Orphan) {
            report.orphan_blocks += 1;
            continue;
        }
        if total[c] > current && best.is_none_or(|b| total[c] > total[b]) {
            best = Some(c);
        }
    }
    if report.orphan_blocks > 0 {
        report.warnings.push(format!(
            "{} blocks connect to nothing indexed and were left out",
            report.orphan_blocks
        ));
    }
    let mut chain: Vec<usize> = Vec::new();
    if let Some(tip) = best {
        let mut c = Some(tip);
        while let Some(i) = c {
            chain.push(i);
            c = parent[i];
        }
        chain.reverse();
    }
    let on_chain: std::collections::HashSet<usize> = chain.iter().copied().collect();
    report.stale_blocks = (0..cands.len())
        .filter(|c| !on_chain.contains(c) && !matches!(anchor[*c], Anchor::Orphan))
        .count() as u64;
    // Side branches from loose files are kept, so a branch completed by a later ingest can win.
    if keep_side {
        for (c, cand) in cands.iter().enumerate() {
            if let CandSrc::Catalog(i) = cand.src {
                if !on_chain.contains(&c) && !matches!(anchor[c], Anchor::Orphan) {
                    let bytes = catalog.read_bytes(&catalog.entries[i])?;
                    save_side(&side_dir, &cand.hash, &bytes)
                        .map_err(|e| IndexError::Io(side_dir.clone(), e))?;
                }
            }
        }
    }
    // Same input, same verdict: into an empty index blocks that do not verify are an error,
    // so into a non-empty one files that held nothing usable (every block connects to
    // nothing, none was indexed before) are one too, not a warning with exit 0.
    let from_files = matches!(
        source,
        Source::Files(_) | Source::BlocksDir(_) | Source::Etl(_)
    );
    if chain.is_empty()
        && from_files
        && report.orphan_blocks > 0
        && report.already_indexed == 0
        && report.stale_blocks == 0
    {
        return Err(IndexError::Block(format!(
            "nothing usable in the files: none of their {} blocks connects to the indexed chain (tip {}), so nothing was added; give the blocks in between, or check that the files are the right chain",
            report.orphan_blocks,
            index.tip_height().map_or("none".into(), |h| h.to_string()),
        )));
    }
    if chain.is_empty() {
        report.tip_height = index.tip_height();
        report.tip_hash = tip_hash(index);
        return Ok(report);
    }

    let load = |c: usize| -> Result<ChainBlock, IndexError> {
        Ok(match &cands[c].src {
            CandSrc::Catalog(i) => {
                catalog.load_checked(&catalog.entries[*i], network, opts.verify_witness)?
            }
            CandSrc::Ready(i) => ready[*i].clone(),
            CandSrc::Side(p) => {
                let bytes = std::fs::read(p).map_err(|e| IndexError::Io(p.clone(), e))?;
                let origin = Origin {
                    file: p.clone(),
                    offset: 0,
                    kind: OriginKind::Byte,
                };
                let (block, txids) = decode_block_txids(&bytes, &origin, opts.verify_witness)?;
                ChainBlock::from_block_txids(block, txids, network, origin)
            }
        })
    };

    let first = chain[0];
    let mut preloaded: Vec<ChainBlock> = Vec::new();
    match anchor[first] {
        Anchor::Root => {
            let b = load(first)?;
            let h = match (opts.start_height, b.height) {
                (Some(s), Some(h)) if s != h => {
                    return Err(IndexError::Block(format!("{}: block {} is at height {h} (its coinbase says so), not --start-height {s}", b.origin, b.hash)))
                }
                (Some(s), _) => s,
                (None, Some(h)) => h,
                (None, None) => {
                    return Err(IndexError::Block(format!(
                        "{}: cannot tell the height of the first block {} (no BIP34 height, not next to genesis): pass --start-height H",
                        b.origin, b.hash
                    )))
                }
            };
            index.init_chain(network, h)?;
            preloaded.push(b);
        }
        Anchor::Indexed(pos) => {
            if pos + 1 < n {
                // A reorganisation: verify the whole new branch before removing anything.
                for &c in &chain {
                    preloaded.push(load(c)?);
                }
                report.blocks_rolled_back = n - pos - 1;
                report.reorg_fork_height = Some(index.start_height() + pos as u32);
                index.rollback_to_blocks(pos + 1)?;
            }
        }
        _ => unreachable!("orphans are never best"),
    }

    let commit_every = if opts.commit_every_txs == 0 {
        500_000
    } else {
        opts.commit_every_txs
    };
    let total_blocks = chain.len() as u64;
    let skip = preloaded.len();
    let (tx_send, rx) = std::sync::mpsc::sync_channel::<Result<ChainBlock, IndexError>>(64);
    // Appended blocks go back to the reading thread to be freed: freeing a block's
    // thousands of allocations is a few percent of the appending thread's time, and that
    // thread is the one ingest waits on.
    let (done_send, done_rx) = std::sync::mpsc::channel::<ChainBlock>();
    let result = std::thread::scope(|s| -> Result<(), IndexError> {
        let chain_ref = &chain;
        let load_ref = &load;
        s.spawn(move || {
            for &c in &chain_ref[skip..] {
                while let Ok(b) = done_rx.try_recv() {
                    drop(b);
                }
                let r = load_ref(c);
                let stop = r.is_err();
                if tx_send.send(r).is_err() || stop {
                    break;
                }
            }
            drop(tx_send);
            for b in done_rx {
                drop(b);
            }
        });
        // Owned by this closure, so that leaving it early (an error) closes both channels
        // and the reading thread stops instead of waiting on a full channel.
        let (rx, done_send) = (rx, done_send);
        let mut since_commit = 0u64;
        let mut feed = preloaded.into_iter().map(Ok).chain(rx.iter());
        for r in feed.by_ref() {
            let b = match r {
                Ok(b) => b,
                Err(e) => {
                    index.commit()?;
                    return Err(e);
                }
            };
            if let Err(e) = index.append_block(&b) {
                index.commit()?;
                return Err(e);
            }
            let n_txs = b.txs.len() as u64;
            let _ = done_send.send(b);
            report.blocks_added += 1;
            report.txs_added += n_txs;
            since_commit += n_txs;
            if since_commit >= commit_every {
                index.commit_batch()?;
                since_commit = 0;
            }
            if let Some(p) = opts.progress {
                p(Progress {
                    blocks_done: report.blocks_added,
                    blocks_total: total_blocks,
                    txs_done: report.txs_added,
                });
            }
        }
        index.commit()
    });
    result?;
    report.tip_height = index.tip_height();
    report.tip_hash = tip_hash(index);
    Ok(report)
}

fn tip_hash(index: &Index) -> Option<String> {
    let n = index.block_count();
    (n > 0).then(|| BlockHash::from_byte_array(index.block_hash(n - 1)).to_string())
}

/// Without framing, a chain that starts at (or next to) a known genesis names its network.
fn guess_network(catalog: &Catalog, ready: &[ChainBlock]) -> Option<Network> {
    let pairs = catalog
        .entries
        .iter()
        .map(|e| (e.hash, e.header.prev_blockhash))
        .chain(ready.iter().filter_map(|b| b.prev.map(|p| (b.hash, p))));
    for (h, p) in pairs {
        if let Some((n, _)) = cointrail_chain::network::network_of_genesis(&h, &p) {
            return Some(n);
        }
    }
    None
}

fn save_side(dir: &Path, hash: &BlockHash, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join(format!("{hash}.blk"));
    if p.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!("{hash}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(tmp, p)
}

fn read_side(dir: &Path) -> Vec<(BlockHash, BlockHash, u32, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("blk") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        if bytes.len() < 80 {
            continue;
        }
        if let Ok(h) = bitcoin::consensus::deserialize::<bitcoin::block::Header>(&bytes[..80]) {
            out.push((h.block_hash(), h.prev_blockhash, h.bits.to_consensus(), p));
        }
    }
    out.sort_by_key(|x| x.3.clone());
    out
}
