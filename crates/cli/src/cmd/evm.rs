//! The Ethereum (EVM) side of `ingest`, `tx`, `address`, `block`, `stats`, `verify`.
//! Same commands as Bitcoin; the chain is told by `--chain` or by what was typed (a 0x
//! address or hash, an ethereum-etl file). The index lives in DATA_DIR/<chain>/.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cointrail_evm::etl::read::etl_files;
use cointrail_evm::etl::BlockStream;
use cointrail_evm::{parse_address, B256};
use cointrail_index::evm::EvmIndex;
use serde::Serialize;

use crate::Global;

pub fn evm_dir(g: &Global, chain: &str) -> PathBuf {
    g.data_dir.join(chain)
}

/// A transaction hash or block hash as EVM tools write it: 0x and 64 hex digits.
pub fn looks_like_evm_hash(s: &str) -> bool {
    let s = s.trim();
    s.len() == 66 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A value written with a 0x prefix is meant for an EVM chain (no Bitcoin address or txid has
/// one): route it there even when malformed, so the error says what is wrong with it.
pub fn has_0x_prefix(s: &str) -> bool {
    s.trim()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("0x"))
}

pub fn has_index(g: &Global, chain: &str) -> bool {
    evm_dir(g, chain).join("manifest.json").exists()
}

fn open_reader(g: &Global, chain: &str) -> Result<EvmIndex> {
    let dir = evm_dir(g, chain);
    if !dir.join("manifest.json").exists() {
        bail!(
            "no {chain} index in {}: run `cointrail ingest --chain {chain} FILES` first",
            dir.display()
        );
    }
    Ok(EvmIndex::open_reader(&dir)?)
}

#[derive(Serialize)]
pub struct EvmIngestReport {
    pub chain: String,
    pub files: usize,
    pub blocks_added: u64,
    pub already_indexed: u64,
    pub transactions_added: u64,
    pub movements_added: u64,
    /// Token contracts whose symbol/decimals (etl `tokens` rows) were new or changed.
    pub tokens_learned: usize,
    pub tip: Option<u64>,
}

pub fn run_ingest(files: &[PathBuf], chain: &str, commit_every_txs: u64, g: &Global) -> Result<()> {
    let mut paths = Vec::new();
    for f in files {
        paths.extend(etl_files(f).with_context(|| format!("reading {}", f.display()))?);
    }
    if paths.is_empty() {
        bail!("no ethereum-etl files found in {:?}", files);
    }
    let started = std::time::Instant::now();
    let mut idx = EvmIndex::open_writer(&evm_dir(g, chain), chain)?;
    let mut stream = BlockStream::open(&paths)?;
    let tip = idx.tip();
    let mut r = EvmIngestReport {
        chain: chain.into(),
        files: paths.len(),
        blocks_added: 0,
        already_indexed: 0,
        transactions_added: 0,
        movements_added: 0,
        tokens_learned: 0,
        tip,
    };
    let mut since_commit = 0u64;
    let bar = crate::progress::bar(g, 0, "ingest");
    while let Some(b) = stream.next_block() {
        // A bad row stops the ingest; what was committed before it stays, the rest of the
        // batch is dropped (it was never in the index).
        let b = b?;
        if tip.is_some_and(|t| b.number().unwrap_or(0) <= t) {
            r.already_indexed += 1;
            continue;
        }
        idx.set_logs_given(stream.has_logs());
        let n = idx.ingest_block(&b)?;
        r.blocks_added += 1;
        r.transactions_added += b.transactions.len() as u64;
        r.movements_added += n as u64;
        since_commit += b.transactions.len() as u64 + 1;
        bar.set_position(r.blocks_added);
        if since_commit >= commit_every_txs {
            // The last commit below syncs the lookup maps; these leave them to the kernel.
            idx.commit_batch()?;
            since_commit = 0;
        }
    }
    idx.commit()?;
    let tokens: Vec<_> = stream.take_tokens().into_iter().map(|t| t.row).collect();
    r.tokens_learned = idx.learn_tokens(&tokens)?;
    bar.finish_and_clear();
    r.tip = idx.tip();
    if g.json {
        return crate::print_json(&r);
    }
    println!(
        "{chain}: {} blocks, {} transactions, {} movements added in {:.1}s; tip {}",
        r.blocks_added,
        r.transactions_added,
        r.movements_added,
        started.elapsed().as_secs_f64(),
        r.tip.map_or("-".into(), |t| t.to_string())
    );
    if r.tokens_learned > 0 {
        println!(
            "{} token contracts' symbol and decimals kept",
            r.tokens_learned
        );
    }
    if r.already_indexed > 0 && r.blocks_added == 0 {
        println!(
            "nothing new: {} blocks were already indexed",
            r.already_indexed
        );
    }
    Ok(())
}

pub fn run_address(
    address: &str,
    at: Option<u64>,
    limit: usize,
    before: Option<u64>,
    chain: &str,
    g: &Global,
) -> Result<()> {
    let a = parse_address(address)?;
    let idx = open_reader(g, chain)?;
    if !idx.knows_address(&a) {
        bail!(
            "{} has no movements in the {chain} index (blocks {}..={})",
            a.to_checksum(None),
            idx.stats()
                .first_block
                .map_or("-".into(), |b| b.to_string()),
            idx.tip().map_or("-".into(), |b| b.to_string())
        );
    }
    let s = idx.address_summary(&a, at, limit, before);
    if g.json {
        return crate::print_json(&s);
    }
    println!("{} ({chain}, {})", s.address, s.kind);
    println!(
        "{} movements in, {} out; seen blocks {}..{}",
        s.movements_in,
        s.movements_out,
        s.first_seen_block.map_or("-".into(), |b| b.to_string()),
        s.last_seen_block.map_or("-".into(), |b| b.to_string())
    );
    println!(
        "balances as of block {}:",
        s.as_of_block.map_or("-".into(), |b| b.to_string())
    );
    for b in &s.balances {
        let (asset, amount) = match (
            b.symbol,
            b.decimals,
            b.balance.parse::<cointrail_evm::U256>(),
        ) {
            (Some(sym), Some(d), Ok(v)) => (
                match &b.token {
                    Some(t) => format!("{sym} ({t})"),
                    None => sym.to_string(),
                },
                cointrail_evm::tokens::format_units(&v, d),
            ),
            _ => (
                b.token
                    .as_ref()
                    .map_or("ETH".to_string(), |t| format!("token {t} (base units)")),
                b.balance.clone(),
            ),
        };
        println!(
            "  {asset:<62} {amount}{}",
            if b.incomplete {
                "  (more sent than received: history before the indexed blocks)"
            } else {
                ""
            }
        );
    }
    for m in &s.recent {
        print_movement(m);
    }
    if let Some(c) = s.next_before {
        println!(
            "older movements: cointrail address {} --before {c}",
            s.address
        );
    }
    Ok(())
}

fn print_movement(m: &cointrail_index::evm::MovementView) {
    let amount = match (
        m.symbol,
        m.decimals,
        m.amount.parse::<cointrail_evm::U256>(),
    ) {
        (Some(sym), Some(d), Ok(v)) => {
            format!("{} {sym}", cointrail_evm::tokens::format_units(&v, d))
        }
        _ => format!(
            "{} units of {}",
            m.amount,
            m.token.as_deref().unwrap_or("?")
        ),
    };
    let path = if m.call_path.is_empty() {
        String::new()
    } else {
        format!(" call path {:?}", m.call_path)
    };
    println!(
        "  block {} {:<12} {} -> {} {amount}{path}",
        m.block, m.kind, m.from, m.to
    );
}

fn print_event(e: &cointrail_engine::tx_events::EventView) {
    let o = |x: &Option<String>| x.clone().unwrap_or_default();
    match e.kind {
        "skipped" => println!(
            "  log {} {} at {}: not followed: {}",
            e.log_index,
            e.kind,
            e.contract,
            o(&e.reason)
        ),
        "mixer_deposit" | "mixer_withdrawal" => println!(
            "  log {} {} at {}{}",
            e.log_index,
            e.kind,
            e.contract,
            e.recipient
                .as_ref()
                .map_or(String::new(), |r| format!(" to {r}"))
        ),
        _ => println!(
            "  log {} {} at {}: {} {} -> {} {} to {}",
            e.log_index,
            e.kind,
            e.contract,
            o(&e.amount_in),
            o(&e.asset_in),
            o(&e.amount_out),
            o(&e.asset_out),
            o(&e.recipient)
        ),
    }
}

pub fn run_tx(hash: &str, chain: &str, g: &Global) -> Result<()> {
    if !looks_like_evm_hash(hash) {
        bail!("`{hash}` is not an EVM transaction hash (0x and 64 hex digits)");
    }
    let h: B256 = hash.trim().parse().context("transaction hash")?;
    let idx = open_reader(g, chain)?;
    let Some(te) = cointrail_engine::tx_events::tx_with_events(&idx, &h) else {
        bail!("transaction {hash} is not in the {chain} index")
    };
    if g.json {
        return crate::print_json(&te);
    }
    let t = &te.summary;
    println!("{} ({chain}) block {} {}", t.hash, t.block, t.status);
    for m in &t.movements {
        print_movement(m);
    }
    match te.logs {
        None => println!("logs: not kept (the block was ingested without a logs file)"),
        Some(n) => println!("logs: {n}"),
    }
    for e in &te.events {
        print_event(e);
    }
    Ok(())
}

pub fn run_block(block: &str, chain: &str, g: &Global) -> Result<()> {
    let n: u64 = block
        .trim()
        .parse()
        .with_context(|| format!("`{block}` is not a block number"))?;
    let idx = open_reader(g, chain)?;
    let Some(b) = idx.block_summary(n) else {
        bail!("block {n} is not in the {chain} index")
    };
    if g.json {
        return crate::print_json(&b);
    }
    println!(
        "block {} {} ({chain})\ntime {}  {} txs, {} movements",
        b.number,
        b.hash,
        b.timestamp,
        b.transactions,
        b.movements.len()
    );
    Ok(())
}

pub fn run_stats(chain: &str, g: &Global) -> Result<()> {
    let idx = open_reader(g, chain)?;
    let s = idx.stats();
    if g.json {
        return crate::print_json(&s);
    }
    println!("chain         {}", s.chain);
    println!(
        "blocks        {} ({}..={})",
        s.blocks,
        s.first_block.map_or("-".into(), |b| b.to_string()),
        s.last_block.map_or("-".into(), |b| b.to_string())
    );
    println!("transactions  {}", s.transactions);
    println!("movements     {}", s.movements);
    println!("addresses     {}", s.addresses);
    println!("tokens        {}", s.tokens);
    Ok(())
}

pub fn run_verify(chain: &str, g: &Global) -> Result<()> {
    let idx = open_reader(g, chain)?;
    let problems = idx.verify();
    let s = idx.stats();
    if g.json {
        crate::print_json(
            &serde_json::json!({"chain": chain, "blocks": s.blocks, "movements": s.movements, "problems": problems}),
        )?;
    } else {
        println!(
            "{chain}: checked {} blocks, {} movements, {} addresses",
            s.blocks, s.movements, s.addresses
        );
        for p in &problems {
            println!("problem: {p}");
        }
    }
    if !problems.is_empty() {
        bail!("the {chain} index has {} problems; rebuild it by ingesting again into an empty --data-dir", problems.len());
    }
    Ok(())
}

/// Files given to `ingest` without `--chain`: ethereum-etl when they read as such.
pub fn files_are_evm(files: &[PathBuf]) -> bool {
    !files.is_empty()
        && files
            .iter()
            .all(|f| cointrail_evm::etl::looks_like_evm_etl(Path::new(f)))
}
