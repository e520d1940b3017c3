//! `export --format etl --chain ethereum OUTDIR`: ethereum-etl JSON-lines files of the
//! indexed blocks.
//!
//! The EVM index keeps value movements and event logs, not every etl row they came from
//! (block headers' gas fields, miner and withdrawals; transactions' nonce and gas fields;
//! call frames that moved nothing), so those rows are fetched again from a node (`--rpc`),
//! converted by the same code `follow` ingests through, and written only when the node's
//! block has the hash the index holds: the export describes exactly the indexed chain, and
//! `ingest` of it rebuilds the same index. Logs come from the index wherever it kept them
//! (from the node otherwise); without `--rpc` only `logs.json` is written, from the index.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cointrail_evm::etl::write::{Written, TABLES};
use cointrail_evm::etl::EtlWriter;
use cointrail_evmrpc::EvmNode;
use cointrail_index::evm::EvmIndex;
use serde::Serialize;

use crate::Global;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail export --format etl --chain ethereum --rpc http://127.0.0.1:8545 export_dir/
  cointrail export --format etl --chain ethereum --rpc $RPC --from-block 100 --to-block 200 part/
  cointrail export --format etl --chain ethereum logs_only/   # no node: logs.json from the index
  cointrail ingest --chain ethereum export_dir/        # into another --data-dir: the same index
  cointrail export --format parquet dataset/           # the Bitcoin index as Parquet (spark/README.md)
  cointrail export --format parquet dataset/ --case sim-heist-0   # with the case's sources and traces
  cointrail export --format parquet dataset/ --json    # again after ingesting more: new height ranges only")]
pub struct ExportArgs {
    /// The folder for blocks.json, transactions.json, traces.json, token_transfers.json and
    /// logs.json (created if missing).
    pub out_dir: PathBuf,
    /// `etl`: ethereum-etl JSON lines (Ethereum); `parquet`: the Bitcoin index as a Parquet
    /// dataset partitioned by height, with clusters, labels and case traces (for spark/).
    #[arg(long, value_parser = ["etl", "parquet"])]
    pub format: String,
    /// The indexed chain to export (default: ethereum for etl, bitcoin for parquet).
    #[arg(long, value_parser = ["ethereum", "bitcoin"])]
    pub chain: Option<String>,
    /// Parquet: most blocks per partition file.
    #[arg(long, default_value_t = 10_000)]
    pub partition_blocks: u32,
    /// Parquet: a case whose source outputs and FIFO and haircut traces to write (repeatable).
    #[arg(long)]
    pub case: Vec<String>,
    /// Parquet: risk rule file (YAML) whose category levels the labels table records.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// A node holding the indexed blocks, for the rows the index does not keep (blocks,
    /// transactions, traces, token transfers). Without it only logs.json is written.
    #[arg(long, env = "COINTRAIL_RPC_URL")]
    pub rpc: Option<String>,
    /// First block to export (default: the first indexed).
    #[arg(long)]
    pub from_block: Option<u64>,
    /// Last block to export (default: the index's tip).
    #[arg(long)]
    pub to_block: Option<u64>,
    /// `auto`, `geth` (debug_traceBlockByHash) or `parity` (trace_block).
    #[arg(long, default_value = "auto", value_parser = ["auto", "geth", "parity"])]
    pub trace_api: String,
    /// Replace export files already in OUT_DIR.
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct ExportReport {
    chain: String,
    out_dir: String,
    from_block: Option<u64>,
    to_block: Option<u64>,
    files: Vec<String>,
    rows: Written,
}

pub fn run(a: ExportArgs, g: &Global) -> Result<()> {
    if a.format == "parquet" {
        if a.chain.as_deref().is_some_and(|c| c != "bitcoin") {
            bail!("--format parquet exports the Bitcoin index; for Ethereum use --format etl");
        }
        return crate::cmd::parquet_export::run(a, g);
    }
    let chain = a.chain.as_deref().unwrap_or("ethereum");
    if chain != "ethereum" {
        bail!("--format etl exports an Ethereum index; for the Bitcoin index use --format parquet");
    }
    let dir = crate::cmd::evm::evm_dir(g, chain);
    if !dir.join("manifest.json").exists() {
        bail!(
            "no {chain} index in {}: run `cointrail follow --chain {chain} --rpc URL` or `cointrail ingest --chain {chain} FILES` first",
            dir.display()
        );
    }
    let idx = EvmIndex::open_reader(&dir)?;
    let (Some(first), Some(tip)) = (idx.first_block(), idx.tip()) else {
        bail!("the {chain} index in {} holds no blocks yet", dir.display());
    };
    let from = a.from_block.unwrap_or(first).max(first);
    let to = a.to_block.unwrap_or(tip).min(tip);
    if from > to {
        bail!("no indexed block in {from}..={to} (the index holds {first}..={tip})");
    }
    let tables: &[&str] = if a.rpc.is_some() { &TABLES } else { &["logs"] };
    let existing: Vec<String> = tables
        .iter()
        .map(|t| a.out_dir.join(format!("{t}.json")))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !a.force {
        bail!(
            "{} already exist: choose another folder or give --force to replace them",
            existing.join(", ")
        );
    }
    let Some(rpc) = a.rpc.as_deref() else {
        return export_logs(&idx, chain, from, to, &a.out_dir, g);
    };
    let node = EvmNode::connect(rpc)?;
    node.set_trace_api(crate::cmd::evm_follow::trace_api(&a.trace_api));
    if let Some(id) = idx.chain_id() {
        node.check_chain(id)?;
    }
    // Written beside the target and renamed at the end: a failed export leaves no half files.
    let tmp = a.out_dir.join(".cointrail-export.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    let written = match write_blocks(&idx, &node, chain, from, to, &tmp, g) {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let mut files = Vec::new();
    for t in TABLES {
        let name = format!("{t}.json");
        let dst = a.out_dir.join(&name);
        std::fs::rename(tmp.join(&name), &dst)
            .with_context(|| format!("moving the export into {}", dst.display()))?;
        files.push(dst.display().to_string());
    }
    let _ = std::fs::remove_dir(&tmp);
    files.extend(export_tokens(&idx, &a.out_dir)?);
    let r = ExportReport {
        chain: chain.to_string(),
        out_dir: a.out_dir.display().to_string(),
        from_block: Some(from),
        to_block: Some(to),
        files,
        rows: written,
    };
    if g.json {
        return crate::print_json(&r);
    }
    println!(
        "{chain} blocks {from}..={to} written to {}: {} blocks, {} transactions, {} traces, {} token transfers, {} logs",
        r.out_dir,
        written.blocks,
        written.transactions,
        written.traces,
        written.token_transfers,
        written.logs
    );
    Ok(())
}

/// Fetch blocks `from..=to` that the index holds, check each against the indexed hash, and
/// write their rows into `tmp`.
fn write_blocks(
    idx: &EvmIndex,
    node: &EvmNode,
    chain: &str,
    from: u64,
    to: u64,
    tmp: &std::path::Path,
    g: &Global,
) -> Result<Written> {
    let mut w = EtlWriter::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let bar = crate::progress::bar(g, to - from + 1, "export");
    for n in from..=to {
        bar.set_position(n - from);
        // An index filled from files may skip blocks: export what it holds.
        let Some(want) = idx.block_hash(n) else {
            continue;
        };
        let Some(b) = node.fetch_block(n)? else {
            bail!("the node at {} has no block {n} (its head is below it): point --rpc at a synced node", node.url());
        };
        if b.block.header.hash != want {
            bail!(
                "the node's block {n} is {} but the index holds {want}: the node is on another branch; run `cointrail follow --chain {chain} --rpc URL --once` first, then export again",
                b.block.header.hash
            );
        }
        let mut rows = cointrail_evmrpc::rows::to_rows(&b)
            .map_err(|e| anyhow::anyhow!("the node's block {n} cannot be read: {e}"))?;
        // What the index kept is what was ingested: write that, not the node's copy.
        if let Some(logs) = idx.block_logs(n) {
            let file: std::sync::Arc<str> = format!("index block {n}").into();
            rows.logs = logs
                .into_iter()
                .enumerate()
                .map(|(i, row)| cointrail_evm::etl::Located {
                    file: file.clone(),
                    line: i as u64 + 1,
                    row,
                })
                .collect();
        }
        w.write_block(&rows)
            .with_context(|| format!("writing into {}", tmp.display()))?;
    }
    bar.finish_and_clear();
    w.finish().context("writing the export")
}

/// `tokens.json` (the etl `tokens` table) from what the index keeps of token contracts,
/// when it keeps any: the whole table, not a block range (token metadata has no block).
fn export_tokens(idx: &EvmIndex, out_dir: &std::path::Path) -> Result<Option<String>> {
    let rows = idx.token_rows()?;
    if rows.is_empty() {
        return Ok(None);
    }
    let p = cointrail_evm::etl::write_tokens(out_dir, &rows)
        .with_context(|| format!("writing tokens.json into {}", out_dir.display()))?;
    Ok(Some(p.display().to_string()))
}

/// Without a node: `logs.json` of blocks `from..=to` from the index alone. Every indexed
/// block of the range must have its logs kept (else: which block, and what to do).
fn export_logs(
    idx: &EvmIndex,
    chain: &str,
    from: u64,
    to: u64,
    out_dir: &std::path::Path,
    g: &Global,
) -> Result<()> {
    use std::io::Write;
    let mut all = Vec::new();
    for n in from..=to {
        if idx.block_hash(n).is_none() {
            continue;
        }
        match idx.block_logs(n) {
            Some(l) => all.extend(l),
            None => bail!(
                "the {chain} index does not keep the logs of block {n} (it was ingested without a logs file): give --rpc URL of a node that holds the indexed blocks, or narrow --from-block/--to-block"
            ),
        }
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let dst = out_dir.join("logs.json");
    let tmp = out_dir.join(".cointrail-export-logs.tmp");
    {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
        );
        for l in &all {
            serde_json::to_writer(&mut f, &cointrail_evm::etl::write::log_json(l))?;
            f.write_all(b"\n")?;
        }
        f.into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &dst).with_context(|| format!("moving into {}", dst.display()))?;
    let rows = Written {
        logs: all.len() as u64,
        ..Default::default()
    };
    let mut files = vec![dst.display().to_string()];
    files.extend(export_tokens(idx, out_dir)?);
    let r = ExportReport {
        chain: chain.to_string(),
        out_dir: out_dir.display().to_string(),
        from_block: Some(from),
        to_block: Some(to),
        files,
        rows,
    };
    if g.json {
        return crate::print_json(&r);
    }
    println!(
        "{chain} blocks {from}..={to}: {} logs written to {} from the index (blocks, transactions, traces and token transfers need --rpc: the index does not keep those rows)",
        rows.logs,
        dst.display()
    );
    Ok(())
}
