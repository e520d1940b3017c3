//! `ingest`, `inspect`, `tx`, `address`, `block`, `stats`: building and querying the index.

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_chain::network::parse_network;
use cointrail_chain::{Catalog, ChainView};
use cointrail_index::{ingest, Index, IngestOptions, Source};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail ingest --blocks-dir ~/.bitcoin/blocks          # a Bitcoin Core blocks directory (xor.dat handled)
  cointrail ingest 0831328.bin 0831329.bin                  # raw, framed, hex or .bz2 block files, any order
  cointrail ingest --format etl transactions.json blocks.json   # blockchain-etl / BigQuery rows
  cointrail ingest --chain ethereum blocks.json transactions.json traces.csv.gz   # ethereum-etl rows
  cointrail ingest export_dir/                              # told apart by content: ethereum-etl goes to DATA_DIR/ethereum
Running it again adds only new blocks; a longer competing branch triggers a reorganisation.")]
pub struct IngestArgs {
    /// Bitcoin Core blocks directory (blk*.dat, optional xor.dat).
    #[arg(long, conflicts_with = "files")]
    pub blocks_dir: Option<PathBuf>,
    /// Block files (format told by content) or, with --format etl, JSON-lines exports.
    pub files: Vec<PathBuf>,
    /// `auto` (block files) or `etl` (blockchain-etl JSON lines).
    #[arg(long, default_value = "auto", value_parser = ["auto", "etl"])]
    pub format: String,
    /// Height of the first block when the blocks cannot tell (pre-BIP34 ranges).
    #[arg(long)]
    pub start_height: Option<u32>,
    /// Network for files without framing: mainnet, testnet3, testnet4, signet, regtest.
    #[arg(long, value_parser = parse_network)]
    pub network: Option<bitcoin::Network>,
    /// Commit after this many transactions (smaller: less redone after a crash).
    #[arg(long, default_value_t = 500_000, hide = true)]
    pub commit_every: u64,
    /// Also check every block's witness commitment (about 1.5× slower). The merkle root is
    /// always checked and commits to all the index keeps; witnesses are not indexed.
    /// `cointrail inspect` checks both.
    #[arg(long)]
    pub verify_witness: bool,
    /// The chain: `bitcoin`, `ethereum`, or `auto` (told by the files' content).
    #[arg(long, default_value = "auto", value_parser = ["auto", "bitcoin", "ethereum"])]
    pub chain: String,
}

pub fn run_ingest(a: IngestArgs, g: &Global) -> Result<()> {
    if a.chain == "ethereum"
        || (a.chain == "auto" && a.blocks_dir.is_none() && crate::cmd::evm::files_are_evm(&a.files))
    {
        return crate::cmd::evm::run_ingest(&a.files, "ethereum", a.commit_every, g);
    }
    let source = match (&a.blocks_dir, a.files.is_empty(), a.format.as_str()) {
        (Some(d), _, _) => Source::BlocksDir(d.clone()),
        (None, false, "etl") => Source::Etl(a.files.clone()),
        (None, false, _) => Source::Files(a.files.clone()),
        (None, true, _) => bail!("nothing to ingest: give --blocks-dir DIR or block files (see `cointrail ingest --help`)"),
    };
    let mut index = Index::open_writer(&g.index_dir())?;
    let bar = crate::progress::bar(g, 0, "ingest");
    let progress = |p: cointrail_index::Progress| {
        bar.set_length(p.blocks_total);
        bar.set_position(p.blocks_done);
        bar.set_message(format!("{} txs", p.txs_done));
    };
    let opts = IngestOptions {
        start_height: a.start_height,
        network: a.network,
        commit_every_txs: a.commit_every,
        progress: Some(&progress),
        verify_witness: a.verify_witness,
    };
    let started = std::time::Instant::now();
    let report = ingest(&mut index, source, &opts);
    bar.finish_and_clear();
    let report = report?;
    if g.json {
        crate::print_json(&report)?;
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        println!(
            "{} blocks, {} transactions added in {:.1}s; tip {} ({})",
            report.blocks_added,
            report.txs_added,
            started.elapsed().as_secs_f64(),
            report.tip_height.map_or("-".into(), |h| h.to_string()),
            report.tip_hash.as_deref().unwrap_or("-")
        );
        if let Some(f) = report.reorg_fork_height {
            println!(
                "reorganisation: {} blocks rolled back to height {f}",
                report.blocks_rolled_back
            );
        }
        if report.stale_blocks > 0 {
            println!(
                "{} stale blocks left out of the best chain",
                report.stale_blocks
            );
        }
        if report.already_indexed > 0 && report.blocks_added == 0 {
            println!(
                "nothing new: {} blocks were already indexed",
                report.already_indexed
            );
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Block files of any supported format (raw, framed, hex, bzip2).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Network for files without framing (heights are read from BIP34 coinbases).
    #[arg(long, value_parser = parse_network)]
    pub network: Option<bitcoin::Network>,
}

#[derive(Serialize)]
struct InspectedBlock {
    file: String,
    offset: u64,
    hash: String,
    prev_hash: String,
    height: Option<u32>,
    time: u32,
    tx_count: usize,
    input_count: usize,
    output_count: usize,
    merkle_ok: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct InspectReport {
    files: Vec<serde_json::Value>,
    blocks: Vec<InspectedBlock>,
    errors: Vec<String>,
}

/// Parse and verify block files without indexing them.
pub fn run_inspect(a: InspectArgs, g: &Global) -> Result<()> {
    let mut out = InspectReport {
        files: vec![],
        blocks: vec![],
        errors: vec![],
    };
    for f in &a.files {
        let mut cat = Catalog::new();
        match cat.add_file(f) {
            Ok(fmt) => out.files.push(serde_json::json!({"file": f.display().to_string(), "format": fmt, "network": cat.network.map(cointrail_chain::network::network_name)})),
            Err(e) => {
                out.errors.push(e.to_string());
                out.files.push(serde_json::json!({"file": f.display().to_string(), "error": e.to_string()}));
            }
        }
        let net = cat
            .network
            .or(a.network)
            .unwrap_or(bitcoin::Network::Bitcoin);
        for e in &cat.entries {
            let base = InspectedBlock {
                file: e.origin.file.display().to_string(),
                offset: e.origin.offset,
                hash: e.hash.to_string(),
                prev_hash: e.header.prev_blockhash.to_string(),
                height: None,
                time: e.header.time,
                tx_count: 0,
                input_count: 0,
                output_count: 0,
                merkle_ok: false,
                error: None,
            };
            match cat.load(e, net) {
                Ok(b) => out.blocks.push(InspectedBlock {
                    height: b.height,
                    tx_count: b.txs.len(),
                    input_count: b.txs.iter().map(|t| t.input.len()).sum(),
                    output_count: b.txs.iter().map(|t| t.output.len()).sum(),
                    merkle_ok: true,
                    ..base
                }),
                Err(err) => {
                    out.errors.push(err.to_string());
                    out.blocks.push(InspectedBlock {
                        error: Some(err.to_string()),
                        ..base
                    });
                }
            }
        }
    }
    if g.json {
        crate::print_json(&out)?;
    } else {
        for b in &out.blocks {
            match &b.error {
                None => println!(
                    "{}  height {:>8}  {:>5} txs {:>6} in {:>6} out  merkle ok  ({} @{})",
                    b.hash,
                    b.height.map_or("?".into(), |h| h.to_string()),
                    b.tx_count,
                    b.input_count,
                    b.output_count,
                    b.file,
                    b.offset
                ),
                Some(e) => println!("{}  FAILED: {e}", b.hash),
            }
        }
        for e in &out.errors {
            eprintln!("error: {e}");
        }
    }
    if !out.errors.is_empty() {
        bail!("{} problem(s) found", out.errors.len());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TxArgs {
    /// Transaction id (64 hex digits, as explorers show it); 0x… is an Ethereum hash.
    pub txid: String,
    /// `bitcoin` or `ethereum`; told from the id when not given (0x… is Ethereum).
    #[arg(long, value_parser = ["bitcoin", "ethereum"])]
    pub chain: Option<String>,
}

pub fn run_tx(a: TxArgs, g: &Global) -> Result<()> {
    if a.chain.as_deref() == Some("ethereum")
        || (a.chain.is_none() && crate::cmd::evm::has_0x_prefix(&a.txid))
    {
        return crate::cmd::evm::run_tx(&a.txid, "ethereum", g);
    }
    let index = Index::open_reader(&g.index_dir())?;
    let t = index.parse_txid(&a.txid)?;
    let info = index.tx_info(t);
    let flags = cointrail_clustering::classify_tx(&index, t, &crate::cmd::cluster::params(&index));
    // Labels from the store: on the transaction itself (a TagPack `tx_hash` tag, e.g. a
    // hack's theft transaction) and on each address it touches.
    let store = crate::cmd::labels::open_existing(g)?;
    let tx_labels = match &store {
        Some(s) => s.labels_for_tx("BTC", &info.txid, None)?,
        None => vec![],
    };
    let attributed = crate::cmd::labels::file_attributions(g);
    let names_of = |a: Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = match (&store, a) {
            (Some(s), Some(a)) => s
                .labels_for_address("BTC", a, None)
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.label)
                .collect(),
            _ => vec![],
        };
        if let Some(x) = a.and_then(|a| attributed.get(a)) {
            v.extend(x.iter().map(|(_, name)| name.clone()));
        }
        v
    };
    let in_labels: Vec<Vec<String>> = info
        .inputs
        .iter()
        .map(|i| names_of(i.address.as_deref()))
        .collect();
    let out_labels: Vec<Vec<String>> = info
        .outputs
        .iter()
        .map(|o| names_of(o.address.as_deref()))
        .collect();
    if g.json {
        let mut v = serde_json::to_value(&info)?;
        v["flags"] = serde_json::to_value(&flags)?;
        v["labels"] = serde_json::to_value(&tx_labels)?;
        for (k, l) in in_labels.iter().enumerate() {
            if !l.is_empty() {
                v["inputs"][k]["labels"] = serde_json::json!(l);
            }
        }
        for (k, l) in out_labels.iter().enumerate() {
            if !l.is_empty() {
                v["outputs"][k]["labels"] = serde_json::json!(l);
            }
        }
        crate::print_json(&v)?;
        return Ok(());
    }
    use crate::human::{btc, thousands, utc};
    println!("tx {}", info.txid);
    println!(
        "in block {} ({}), mined {}, position {}",
        info.block_height,
        info.block_hash,
        utc(info.block_time as u64),
        info.position
    );
    println!(
        "fee: {}",
        info.fee.map_or(
            "unknown (spends outputs from before the indexed range)".into(),
            |f| format!("{} ({} sat)", btc(f), thousands(f))
        )
    );
    println!("total out: {}", btc(info.output_value));
    if !flags.is_empty() {
        println!("flags: {}", flags.join(", "));
    }
    for l in &tx_labels {
        println!(
            "label: {} [{}] from {}",
            l.label,
            l.category.as_deref().unwrap_or("-"),
            l.source
        );
    }
    let tag = |l: &Vec<String>| {
        if l.is_empty() {
            String::new()
        } else {
            format!("  [{}]", l.join(", "))
        }
    };
    // Aligned columns: address, amount, then what spent it.
    let in_addr: Vec<&str> = info
        .inputs
        .iter()
        .map(|i| i.address.as_deref().unwrap_or("(outside index)"))
        .collect();
    let out_addr: Vec<&str> = info
        .outputs
        .iter()
        .map(|o| o.address.as_deref().unwrap_or("OP_RETURN"))
        .collect();
    let aw = in_addr
        .iter()
        .chain(&out_addr)
        .map(|a| a.len())
        .max()
        .unwrap_or(0);
    let amt = |v: Option<u64>| v.map_or("value unknown".into(), btc);
    let vw = info
        .inputs
        .iter()
        .map(|i| amt(i.value).len())
        .chain(info.outputs.iter().map(|o| btc(o.value).len()))
        .max()
        .unwrap_or(0);
    println!("inputs:");
    for (k, i) in info.inputs.iter().enumerate() {
        match i.kind {
            "coinbase" => println!("  #{} coinbase", i.index),
            _ => println!(
                "  #{:<3} {:aw$}  {:>vw$}  from {}:{}{}",
                i.index,
                in_addr[k],
                amt(i.value),
                i.prev_txid.as_deref().unwrap_or("?"),
                i.prev_vout.unwrap_or(0),
                tag(&in_labels[k])
            ),
        }
    }
    println!("outputs:");
    for (k, o) in info.outputs.iter().enumerate() {
        println!(
            "  #{:<3} {:aw$}  {:>vw$}  {}{}",
            o.vout,
            out_addr[k],
            btc(o.value),
            o.spent_by.as_ref().map_or("unspent".into(), |s| format!(
                "spent by {}:{}",
                s.txid, s.input
            )),
            tag(&out_labels[k])
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct AddressArgs {
    /// Address (base58, bech32/bech32m) or `multisig:<sha256>` / `nonstandard:<sha256>`.
    pub address: String,
    /// Show at most this many outputs (the totals always count all of them); Ethereum:
    /// movements in one page, newest first (default 20, at most 1000).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Balances as of this block (Ethereum); default: the index tip.
    #[arg(long)]
    pub at_block: Option<u64>,
    /// Ethereum: the page of movements older than this movement id (the `next_before`
    /// the previous page printed).
    #[arg(long)]
    pub before: Option<u64>,
}

pub fn run_address(a: AddressArgs, g: &Global) -> Result<()> {
    // An EVM address in any case (EIP-55 checked if mixed case); a malformed 0x value is
    // refused there with what is wrong.
    if crate::cmd::evm::has_0x_prefix(&a.address) {
        return crate::cmd::evm::run_address(
            &a.address,
            a.at_block,
            a.limit.unwrap_or(20).min(1000),
            a.before,
            "ethereum",
            g,
        );
    }
    let index = Index::open_reader(&g.index_dir())?;
    let id = index.parse_address(&a.address)?;
    let info = index.address_info(id, a.limit.unwrap_or(1000));
    if g.json {
        return crate::print_json(&info);
    }
    use crate::human::{btc, utc, utc_date};
    let time = |h: u32| index.block_info(&h.to_string()).map(|b| b.time as u64).ok();
    let seen = |h: Option<u32>| match h {
        Some(h) => format!(
            "height {h}{}",
            time(h).map_or(String::new(), |t| format!(" ({})", utc(t)))
        ),
        None => "-".into(),
    };
    println!("{} ({})", info.address, info.script_type);
    let store = crate::cmd::labels::open_existing(g)?;
    if let Some(s) = &store {
        for l in s.labels_for_address("BTC", &info.address, None)? {
            println!(
                "label     {} [{}] from {}",
                l.label,
                l.category.as_deref().unwrap_or("-"),
                l.source
            );
        }
    }
    for (cat, name) in crate::cmd::labels::file_attributions(g)
        .remove(&info.address)
        .unwrap_or_default()
    {
        println!("label     {name} [{cat}] from attribution.tsv");
    }
    println!("balance   {}", btc(info.balance));
    println!(
        "received  {} in {} outputs (everything ever paid to this one address, in the whole index)",
        btc(info.received),
        info.output_count
    );
    println!("sent      {}", btc(info.sent));
    println!("txs       {}", info.tx_count);
    println!("first seen {}", seen(info.first_seen_height));
    println!("last seen  {}", seen(info.last_seen_height));
    let vw = info
        .outputs
        .iter()
        .map(|o| btc(o.value).len())
        .max()
        .unwrap_or(0);
    for o in &info.outputs {
        println!(
            "  {}:{:<3}  height {:>7} {}  {:>vw$}  {}",
            o.txid,
            o.vout,
            o.height,
            time(o.height).map_or("          ".into(), utc_date),
            btc(o.value),
            o.spent_by.as_ref().map_or("unspent".into(), |s| format!(
                "spent by {}:{}",
                s.txid, s.input
            ))
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BlockArgs {
    /// Height or block hash (Ethereum: block number).
    pub block: String,
    /// `bitcoin` (default) or `ethereum`.
    #[arg(long, value_parser = ["bitcoin", "ethereum"])]
    pub chain: Option<String>,
}

pub fn run_block(a: BlockArgs, g: &Global) -> Result<()> {
    if a.chain.as_deref() == Some("ethereum") {
        return crate::cmd::evm::run_block(&a.block, "ethereum", g);
    }
    let index = Index::open_reader(&g.index_dir())?;
    let b = index.block_info(&a.block)?;
    if g.json {
        return crate::print_json(&b);
    }
    println!("block {} {}", b.height, b.hash);
    println!("prev  {}", b.prev_hash.as_deref().unwrap_or("-"));
    println!("time  {} ({})", crate::human::utc(b.time as u64), b.time);
    println!("bits  {}", b.bits);
    println!("transactions {}", b.tx_count);
    for t in b.txids.iter().take(20) {
        println!("  {t}");
    }
    if b.txids.len() > 20 {
        println!("  … {} more (use --json for all)", b.txids.len() - 20);
    }
    Ok(())
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cointrail stats                       # the Bitcoin index
  cointrail stats --chain ethereum --json")]
pub struct ChainArg {
    /// `bitcoin` (default, or the only chain indexed) or `ethereum`.
    #[arg(long, value_parser = ["bitcoin", "ethereum"])]
    pub chain: Option<String>,
}

impl ChainArg {
    /// Ethereum when asked, or when it is the only index in the data directory.
    pub fn is_ethereum(&self, g: &Global) -> bool {
        match self.chain.as_deref() {
            Some(c) => c == "ethereum",
            None => {
                !g.index_dir().join("manifest.json").exists()
                    && crate::cmd::evm::has_index(g, "ethereum")
            }
        }
    }
}

pub fn run_stats_for(a: ChainArg, g: &Global) -> Result<()> {
    if a.is_ethereum(g) {
        return crate::cmd::evm::run_stats("ethereum", g);
    }
    run_stats(g)
}

pub fn run_verify_for(a: ChainArg, g: &Global) -> Result<()> {
    if a.is_ethereum(g) {
        return crate::cmd::evm::run_verify("ethereum", g);
    }
    run_verify(g)
}

pub fn run_stats(g: &Global) -> Result<()> {
    let index = Index::open_reader(&g.index_dir()).context("opening the index")?;
    let s = index.stats();
    if g.json {
        return crate::print_json(&s);
    }
    println!("network       {}", s.network);
    println!(
        "heights       {}..={}",
        s.start_height.map_or("-".into(), |h| h.to_string()),
        s.tip_height.map_or("-".into(), |h| h.to_string())
    );
    println!("tip           {}", s.tip_hash.as_deref().unwrap_or("-"));
    println!("transactions  {}", s.tx_count);
    println!(
        "inputs        {} ({} spend outputs from before the start)",
        s.input_count, s.external_input_count
    );
    println!("outputs       {}", s.output_count);
    println!("addresses     {}", s.address_count);
    let _ = index.tx_count();
    Ok(())
}

/// Check every invariant of the index (spend links both ways, address lists, maps).
pub fn run_verify(g: &Global) -> Result<()> {
    let index = Index::open_reader(&g.index_dir())?;
    let r = index.check();
    if g.json {
        crate::print_json(&r)?;
    } else {
        println!(
            "checked {} txs, {} inputs, {} outputs, {} addresses",
            r.txs, r.inputs, r.outputs, r.addresses
        );
        for p in &r.problems {
            println!("problem: {p}");
        }
    }
    if !r.problems.is_empty() {
        bail!("the index is inconsistent ({} problems); rebuild it by ingesting into an empty --data-dir", r.problems.len());
    }
    if !g.json {
        println!("index is consistent");
    }
    Ok(())
}
