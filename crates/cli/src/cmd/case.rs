//! `case create|list|show|delete`: registered incidents to trace.

use crate::Global;
use anyhow::Result;
use cointrail_cases::{parse_outpoints, Case, CaseSource, CaseStore};
use cointrail_index::Index;

#[derive(clap::Subcommand)]
pub enum CaseCmd {
    /// Register an incident: the stolen outputs, a theft transaction, or an address.
    #[command(after_help = "Examples:
  cointrail case create kucoin-2020 --from-address 1ABC... --from-height 650000
  cointrail case create heist --from TXID:0,TXID:1
  cointrail case create heist --from-tx TXID
  cointrail case create eth-heist --from-tx 0xTXHASH          # Ethereum: traced with the account models
  cointrail case create eth-heist --from-address 0xADDRESS --from-height 17173049
  cointrail case create bybit --from-incident bybit-2025     # the built-in pack's perpetrator addresses")]
    Create(CreateArgs),
    /// List cases.
    List,
    /// Show a case and what its sources resolve to in the index.
    Show { name: String },
    /// Delete a case.
    Delete { name: String },
    /// Register the heists of a simulated chain (its truth/ folder) as cases.
    ImportSim { truth_dir: std::path::PathBuf },
    /// Register cases from a TagPack of hack addresses (e.g. GraphSense hacks.yaml or the
    /// DPRK incident packs): one case per label, from its BTC addresses.
    ImportTagpack {
        file: std::path::PathBuf,
        /// Only labels whose name or category contains this text (case-insensitive).
        #[arg(long)]
        only: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    pub name: String,
    /// Stolen outputs: TXID:VOUT[,TXID:VOUT…]
    #[arg(long = "from")]
    pub from: Vec<String>,
    /// Every output of this transaction.
    #[arg(long)]
    pub from_tx: Vec<String>,
    /// Everything this address received.
    #[arg(long)]
    pub from_address: Vec<String>,
    /// With --from-address: only outputs received at or after this height.
    #[arg(long)]
    pub from_height: Option<u32>,
    /// The perpetrator addresses of a built-in DPRK incident pack (`bybit-2025`,
    /// `kucoin-2020`, …; `labels import --builtin dprk-incidents` imports their labels):
    /// its Bitcoin and Ethereum addresses become sources; other chains are listed as left out.
    #[arg(long)]
    pub from_incident: Option<String>,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Register the case even when a source is not in the index (yet): a transaction or
    /// address you expect to ingest later.
    #[arg(long)]
    pub force: bool,
}

/// A case source as a person reads it.
fn describe(src: &CaseSource) -> String {
    match src {
        CaseSource::Outpoint { txid, vout } => format!("output {txid}:{vout}"),
        CaseSource::Tx { txid } => format!("every output of transaction {txid}"),
        CaseSource::Address {
            address,
            from_height: None,
        } => format!("everything address {address} received"),
        CaseSource::Address {
            address,
            from_height: Some(h),
        } => format!("everything address {address} received from height {h} on"),
    }
}

/// Refuse sources the index does not hold (unless `--force`): a typo found now, not at
/// `trace` time.
fn check_sources(g: &Global, sources: &[CaseSource], force: bool) -> Result<()> {
    let (evm, btc): (Vec<CaseSource>, Vec<CaseSource>) = sources
        .iter()
        .cloned()
        .partition(cointrail_cases::is_evm_source);
    if !evm.is_empty() {
        check_evm_sources(g, &evm, force)?;
    }
    if btc.is_empty() {
        return Ok(());
    }
    let sources = &btc[..];
    let idx = match Index::open_reader(&g.index_dir()) {
        Ok(i) => i,
        Err(_) if force => return Ok(()),
        Err(e) => anyhow::bail!(
            "there is no index in {} to check the case's sources against ({}): ingest the chain first, or give --force to register the case anyway",
            g.data_dir.display(),
            cointrail_engine::error_text(&anyhow::Error::from(e))
        ),
    };
    let r = cointrail_cases::resolve(
        &idx,
        idx.render_network(),
        &|a| idx.addr_outputs(a),
        sources,
    );
    if r.missing.is_empty() || force {
        for m in &r.missing {
            eprintln!("warning: {m} (registered anyway: --force)");
        }
        return Ok(());
    }
    anyhow::bail!(
        "{}; check the source, or give --force to register the case anyway (e.g. for blocks not ingested yet)",
        r.missing.join("; ")
    )
}

/// The same for `0x` sources, against the Ethereum index.
fn check_evm_sources(g: &Global, sources: &[CaseSource], force: bool) -> Result<()> {
    let dir = g.data_dir.join("ethereum");
    let idx = match cointrail_index::evm::EvmIndex::open_reader(&dir) {
        Ok(i) => i,
        Err(_) if force => return Ok(()),
        Err(e) => anyhow::bail!(
            "there is no Ethereum index in {} to check the case's 0x sources against ({e}): ingest with `cointrail ingest --chain ethereum FILES` first, or give --force",
            g.data_dir.display()
        ),
    };
    let (_, missing) = cointrail_engine::account::resolve_evm(&idx, sources);
    if missing.is_empty() || force {
        for m in &missing {
            eprintln!("warning: {m} (registered anyway: --force)");
        }
        return Ok(());
    }
    anyhow::bail!(
        "{}; check the source, or give --force to register the case anyway",
        missing.join("; ")
    )
}

pub fn store(g: &Global) -> Result<CaseStore> {
    Ok(CaseStore::open(&g.data_dir.join("cases.redb"))?)
}

pub fn run(cmd: CaseCmd, g: &Global) -> Result<()> {
    let s = store(g)?;
    match cmd {
        CaseCmd::Create(a) => {
            let mut sources = Vec::new();
            for f in &a.from {
                sources.extend(parse_outpoints(f)?);
            }
            sources.extend(a.from_tx.iter().map(|t| CaseSource::Tx { txid: t.clone() }));
            sources.extend(a.from_address.iter().map(|x| CaseSource::Address {
                address: x.clone(),
                from_height: a.from_height,
            }));
            check_sources(g, &sources, a.force)?;
            let mut description = a.description;
            let mut origin = "cli".to_string();
            let mut left_out = Vec::new();
            if let Some(inc) = &a.from_incident {
                let (title, addrs) = cointrail_tags::builtin::incident(inc)?;
                let before = sources.len();
                for x in addrs {
                    // Cases hold Bitcoin and Ethereum (mainnet) sources; EVM side chains and
                    // other coins are named, not dropped silently.
                    let on_eth =
                        x.currency == "ETH" && x.network.as_deref().is_none_or(|n| n == "ETH");
                    if x.currency == "BTC" || on_eth {
                        sources.push(CaseSource::Address {
                            address: x.address,
                            from_height: a.from_height,
                        });
                    } else {
                        left_out.push(format!(
                            "{} ({})",
                            x.address,
                            x.network.unwrap_or(x.currency)
                        ));
                    }
                }
                if sources.len() == before {
                    anyhow::bail!("incident {inc} has no Bitcoin or Ethereum perpetrator address to start a case from ({} on other chains)", left_out.len());
                }
                if description.is_empty() {
                    description = title;
                }
                origin = format!("builtin:dprk-incidents/{inc}");
            }
            let case = Case {
                name: a.name.clone(),
                description,
                sources,
                created: now(),
                origin,
            };
            s.create(&case)?;
            if g.json {
                let mut v = serde_json::to_value(&case)?;
                if a.from_incident.is_some() {
                    v["left_out"] = serde_json::json!(left_out);
                }
                crate::print_json(&v)?;
            } else {
                if !left_out.is_empty() {
                    println!(
                        "left out {} address(es) on chains cases do not trace: {}",
                        left_out.len(),
                        left_out.join(", ")
                    );
                }
                println!(
                    "case '{}' created with {} source(s); trace it with `cointrail trace {}`",
                    case.name,
                    case.sources.len(),
                    case.name
                );
            }
        }
        CaseCmd::List => {
            let cases = s.list()?;
            if g.json {
                return crate::print_json(&cases);
            }
            if cases.is_empty() {
                println!("no cases yet: `cointrail case create NAME --from TXID:VOUT`");
            }
            for c in cases {
                println!(
                    "{:<30} {} source(s)  {}  {}",
                    c.name,
                    c.sources.len(),
                    c.origin,
                    c.description
                );
            }
        }
        CaseCmd::Show { name } => {
            let c = s.get(&name)?;
            let resolved = Index::open_reader(&g.index_dir()).ok().map(|idx| {
                cointrail_cases::resolve(
                    &idx,
                    idx.render_network(),
                    &|a| idx.addr_outputs(a),
                    &c.sources,
                )
            });
            if g.json {
                return crate::print_json(&serde_json::json!({"case": c, "resolved": resolved}));
            }
            println!("case {}", c.name);
            if !c.description.is_empty() {
                println!("description  {}", c.description);
            }
            println!("origin       {}", c.origin);
            if c.created > 0 {
                println!("created      {}", crate::human::utc(c.created));
            }
            println!("sources ({}):", c.sources.len());
            for src in &c.sources {
                println!("  {}", describe(src));
            }
            match resolved {
                Some(r) => {
                    println!(
                        "in the index: {} outputs holding {}",
                        r.outputs.len(),
                        crate::human::btc(r.total_sats)
                    );
                    for m in r.missing {
                        println!("  missing: {m}");
                    }
                }
                None => println!("(no index to resolve against)"),
            }
        }
        CaseCmd::ImportSim { truth_dir } => {
            let names = import_into(&s, &truth_dir)?;
            if g.json {
                crate::print_json(&names)?;
            } else {
                println!("{} case(s) created: {}", names.len(), names.join(", "));
            }
        }
        CaseCmd::ImportTagpack { file, only } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let labels =
                cointrail_tags::parse_tagpack(&text, &file.display().to_string(), "case-import")?;
            let mut by: std::collections::BTreeMap<String, Vec<CaseSource>> = Default::default();
            for l in labels.iter().filter(|l| l.currency == "BTC") {
                let cat = l.category.clone().unwrap_or_default();
                if let Some(o) = &only {
                    let o = o.to_lowercase();
                    if !l.label.to_lowercase().contains(&o) && !cat.to_lowercase().contains(&o) {
                        continue;
                    }
                }
                if let cointrail_tags::Target::Address(a) = &l.target {
                    by.entry(l.label.clone())
                        .or_default()
                        .push(CaseSource::Address {
                            address: a.clone(),
                            from_height: None,
                        });
                }
            }
            let mut names = Vec::new();
            for (label, sources) in by {
                let name = format!("tagpack:{label}");
                let _ = s.delete(&name);
                let n = sources.len();
                match s.create(&Case {
                    name: name.clone(),
                    description: format!("{label}: {n} addresses from {}", file.display()),
                    sources,
                    created: now(),
                    origin: format!("tagpack:{}", file.display()),
                }) {
                    Ok(()) => names.push(name),
                    Err(e) => eprintln!("warning: {label}: {e}"),
                }
            }
            if g.json {
                crate::print_json(&names)?;
            } else {
                println!(
                    "{} case(s) created from {}: {}",
                    names.len(),
                    file.display(),
                    names.join(", ")
                );
            }
        }
        CaseCmd::Delete { name } => {
            s.delete(&name)?;
            if !g.json {
                println!("case '{name}' deleted");
            } else {
                crate::print_json(&serde_json::json!({"deleted": name}))?;
            }
        }
    }
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One case per simulated heist or theft, from `truth/stolen_outpoints.tsv`
/// (`heist, outpoint, value, address, drain_txid, height`).
pub fn import_sim(truth_dir: &std::path::Path, g: &Global) -> Result<Vec<String>> {
    import_into(&store(g)?, truth_dir)
}

fn import_into(s: &CaseStore, truth_dir: &std::path::Path) -> Result<Vec<String>> {
    let path = truth_dir.join("stolen_outpoints.tsv");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (is this a simulator's truth/ folder?)",
            path.display()
        )
    })?;
    let mut by_heist: std::collections::BTreeMap<String, Vec<CaseSource>> = Default::default();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 2 {
            anyhow::bail!(
                "{} line {}: expected tab-separated heist and outpoint",
                path.display(),
                i + 1
            );
        }
        by_heist
            .entry(f[0].to_string())
            .or_default()
            .extend(parse_outpoints(f[1])?);
    }
    let mut names = Vec::new();
    for (h, sources) in by_heist {
        let name = format!("sim-heist-{h}");
        let _ = s.delete(&name);
        s.create(&Case {
            name: name.clone(),
            description: format!("simulated theft {h} ({} stolen outputs)", sources.len()),
            sources,
            created: now(),
            origin: format!("simulator:{}", truth_dir.display()),
        })?;
        names.push(name);
    }
    Ok(names)
}
