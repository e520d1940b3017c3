//! `labels`: import, look up, search, add and export labels (the `cointrail-tags` store).

use crate::Global;
use anyhow::{Context, Result};
use cointrail_tags::{export_tagpack, import_path, Format, Label, TagStore, Target};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  cointrail labels import graphsense-tagpacks/packs/          # every TagPack in a folder (and ActorPacks)
  cointrail labels import sdn_advanced.xml.bz2                 # the OFAC SDN list (advanced XML)
  cointrail labels import sanctioned_addresses_XBT.txt --version 2025-11-19
  cointrail labels import my-labels.csv                        # see crates/tags/README.md for the columns
  cointrail labels import --builtin dprk-incidents              # shipped: DPRK-attributed hacks (sourced TagPacks)
  cointrail labels add 1ABC… 'Exchange X hot wallet' --category exchange
  cointrail labels show 1ABC… --as-of 2024-10-01
Formats are told by content; a newer version of a source closes labels that disappeared.")]
pub enum LabelsCmd {
    /// Import TagPacks/ActorPacks (files or folders), SDN advanced XML, per-currency lists or CSV.
    Import {
        /// Files or folders to import (folders: every .yaml/.yml inside, recursively).
        #[arg(required_unless_present = "builtin")]
        paths: Vec<PathBuf>,
        /// A label set shipped with cointrail instead of files: `dprk-incidents` (exchange
        /// hacks publicly attributed to North Korea, one TagPack per incident, each naming
        /// its source; not verified on chain).
        #[arg(long, conflicts_with_all = ["paths", "format", "source", "version"])]
        builtin: Option<String>,
        /// tagpack, actorpack, sdn, list or csv (default: told by content).
        #[arg(long)]
        format: Option<String>,
        /// Source name (default: the file's).
        #[arg(long)]
        source: Option<String>,
        /// Version date YYYY-MM-DD for lists and CSV (default: the file's, or today).
        #[arg(long)]
        version: Option<String>,
    },
    /// Add one label of your own.
    Add {
        address: String,
        label: String,
        #[arg(long, default_value = "user")]
        category: String,
        /// Currency; default: ETH for a 0x address, else BTC.
        #[arg(long)]
        currency: Option<String>,
        #[arg(long, default_value = "user")]
        source: String,
    },
    /// Labels of an address.
    Show {
        address: String,
        /// Currency (BTC, ETH, USDT, …); default: told from the address's format (a 0x
        /// address is looked up on every EVM list: ETH, USDT, USDC, ETC, ARB, BSC).
        #[arg(long)]
        currency: Option<String>,
        /// What was known at this date (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Search labels by name, actor, category or address.
    Search {
        text: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Export open labels as a TagPack.
    Export {
        #[arg(long, default_value = "tagpack", value_parser = ["tagpack"])]
        format: String,
    },
    /// Imported sources and their versions.
    Sources,
}

pub fn store(g: &Global) -> Result<TagStore> {
    Ok(TagStore::open(g.data_dir.join("labels.redb"))?)
}

fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d)
                    .with_context(|| format!("reading {}", d.display()))?
                    .flatten()
                {
                    let x = e.path();
                    if x.is_dir() {
                        stack.push(x);
                    } else if x.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                        out.push(x);
                    }
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Newly opened labels flag addresses for the `flagged_receive` alert rules
/// (`cointrail_engine::live::flag_labels`). The import itself has succeeded whatever
/// happens here, so a failure is a warning. Returns the alerts raised, also printed.
fn flag(g: &Global, opened: &[cointrail_tags::Label]) -> usize {
    match cointrail_engine::live::flag_labels(&g.data_dir, opened) {
        Ok(v) => {
            if !g.json {
                for a in &v {
                    println!("  ALERT {} [{}] {}", &a.id[..12], a.rule_id, a.summary);
                }
            }
            v.len()
        }
        Err(e) => {
            eprintln!("warning: the labels are stored, but the alert rules could not be checked against them: {}", cointrail_engine::error_text(&e));
            0
        }
    }
}

pub fn run(cmd: LabelsCmd, g: &Global) -> Result<()> {
    let mut s = store(g)?;
    match cmd {
        LabelsCmd::Import {
            builtin: Some(name),
            ..
        } => {
            let t0 = std::time::Instant::now();
            let done = cointrail_tags::builtin::import_builtin(&mut s, &name)?;
            let mut reports = Vec::new();
            for r in &done {
                let alerts = flag(g, &r.stats.opened);
                reports.push(serde_json::json!({"file": r.file, "source": r.source, "version": r.version, "stats": {"added": r.stats.added, "unchanged": r.stats.unchanged, "updated": r.stats.updated, "closed": r.stats.closed, "reopened": r.stats.reopened}, "actors": 0, "alerts": alerts}));
            }
            if g.json {
                return crate::print_json(&reports);
            }
            for r in &reports {
                println!("{}", import_line(r));
            }
            println!(
                "built-in set {name}: {} pack(s) imported in {:.1}s (public attributions, not verified on chain; see `cointrail labels sources`)",
                reports.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        LabelsCmd::Import {
            paths,
            format,
            source,
            version,
            ..
        } => {
            let fmt = match format.as_deref() {
                None => None,
                Some(f) => Some(Format::parse(f).with_context(|| {
                    format!("unknown --format '{f}': use tagpack, actorpack, sdn, list or csv")
                })?),
            };
            let t0 = std::time::Instant::now();
            let all = files(&paths)?;
            let bar = crate::progress::bar(g, all.len() as u64, "import");
            let mut reports = Vec::new();
            for f in &all {
                let r = import_path(&mut s, f, fmt, source.as_deref(), version.as_deref())?;
                bar.inc(1);
                let alerts = flag(g, &r.stats.opened);
                reports.push(serde_json::json!({"file": r.file, "source": r.source, "version": r.version, "stats": {"added": r.stats.added, "unchanged": r.stats.unchanged, "updated": r.stats.updated, "closed": r.stats.closed, "reopened": r.stats.reopened}, "actors": r.actors.len(), "alerts": alerts}));
            }
            bar.finish_and_clear();
            if g.json {
                return crate::print_json(&reports);
            }
            for r in &reports {
                println!("{}", import_line(r));
            }
            println!(
                "{} file(s) imported in {:.1}s",
                reports.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        LabelsCmd::Add {
            address,
            label,
            category,
            currency,
            source,
        } => {
            let currency = currency
                .unwrap_or_else(|| cointrail_tags::currencies_for_address(&address)[0].to_string());
            let mut l = Label::new(&source, &currency, Target::Address(address.clone()), &label);
            l.category = Some(category);
            l.is_cluster_definer = true;
            let st = s.add_label(l, &cointrail_tags::today())?;
            let alerts = flag(g, &st.opened);
            if g.json {
                crate::print_json(&serde_json::json!({"address": address, "alerts": alerts}))?;
            } else {
                println!("label added to {address}");
            }
        }
        LabelsCmd::Show {
            address,
            currency,
            as_of,
        } => {
            // A 64-hex argument is a transaction (TagPack `tx_hash` tags); 0x + 64 hex an
            // Ethereum one.
            let evm_tx = crate::cmd::evm::looks_like_evm_hash(&address);
            let is_tx =
                evm_tx || (address.len() == 64 && address.chars().all(|c| c.is_ascii_hexdigit()));
            let currencies: Vec<String> = match &currency {
                Some(c) => vec![c.clone()],
                None if evm_tx => vec!["ETH".into()],
                None => cointrail_tags::currencies_for_address(&address)
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            };
            if !evm_tx && crate::cmd::evm::has_0x_prefix(&address) {
                // A 0x value is an EVM address (no Bitcoin address has the prefix): a
                // malformed one, or mixed case that fails its EIP-55 checksum, is refused
                // saying what is wrong, not answered "no labels".
                cointrail_evm::parse_address(&address)?;
            }
            let mut l = Vec::new();
            for cur in &currencies {
                l.extend(if is_tx {
                    s.labels_for_tx(cur, &address, as_of.as_deref())?
                } else {
                    s.labels_for_address(cur, &address, as_of.as_deref())?
                });
            }
            // The actor behind each label (ActorPacks): name, categories, jurisdictions.
            let actors: Vec<Option<cointrail_tags::Actor>> = l
                .iter()
                .map(|x| x.actor.as_deref().and_then(|id| s.actor(id).ok().flatten()))
                .collect();
            if g.json {
                let rows: Vec<serde_json::Value> = l
                    .iter()
                    .zip(&actors)
                    .map(|(x, a)| {
                        let mut v = serde_json::to_value(x).unwrap_or_default();
                        if let Some(a) = a {
                            v["actor_info"] = serde_json::to_value(a).unwrap_or_default();
                        }
                        v
                    })
                    .collect();
                return crate::print_json(&rows);
            }
            let attributed = if is_tx {
                vec![]
            } else {
                file_attributions(g)
                    .remove(address.trim())
                    .unwrap_or_default()
            };
            for (cat, name) in &attributed {
                println!("{name} [{cat}] from attribution.tsv");
            }
            if l.is_empty() && attributed.is_empty() {
                println!(
                    "no labels for {address}{}",
                    as_of.map(|d| format!(" as of {d}")).unwrap_or_default()
                );
            }
            for (x, a) in l.into_iter().zip(&actors) {
                if let Some(a) = a {
                    println!(
                        "actor {}: {}{}{}",
                        a.id,
                        a.label,
                        if a.jurisdictions.is_empty() {
                            String::new()
                        } else {
                            format!(" · jurisdictions {}", a.jurisdictions.join(", "))
                        },
                        if a.aliases.is_empty() {
                            String::new()
                        } else {
                            format!(" · aka {}", a.aliases.join(", "))
                        }
                    );
                }
                println!(
                    "{} [{}] from {} ({}..{}){}",
                    x.label,
                    x.category.as_deref().unwrap_or("-"),
                    x.source,
                    x.valid_from,
                    x.valid_to.as_deref().unwrap_or(""),
                    if x.programs.is_empty() {
                        String::new()
                    } else {
                        format!(" programs {}", x.programs.join(","))
                    }
                );
            }
        }
        LabelsCmd::Search { text, limit } => {
            let l = s.search(&text, limit)?;
            if g.json {
                return crate::print_json(&l);
            }
            for x in l {
                let t = match &x.target {
                    Target::Address(a) | Target::Tx(a) => a.clone(),
                };
                println!(
                    "{} {} {} [{}] ({})",
                    x.currency,
                    t,
                    x.label,
                    x.category.as_deref().unwrap_or("-"),
                    x.source
                );
            }
        }
        LabelsCmd::Export { format: _ } => print!(
            "{}",
            export_tagpack(&s.all_labels(None)?, "cointrail export", "cointrail")
        ),
        LabelsCmd::Sources => {
            let v = s.list_sources()?;
            if g.json {
                return crate::print_json(&v);
            }
            if v.is_empty() {
                println!("no sources imported yet: `cointrail labels import PATH`");
            }
            let w = v.iter().map(|x| x.name.len()).max().unwrap_or(0);
            for x in v {
                let held = if x.actors > 0 && x.open_labels + x.closed_labels == 0 {
                    format!("{} actors", x.actors)
                } else {
                    format!("{} open labels, {} closed", x.open_labels, x.closed_labels)
                };
                println!(
                    "{:w$}  versions {}  ({held})",
                    x.name,
                    x.versions.join(", "),
                );
            }
            // attribution.tsv is read beside the store (labels show, screen, trace use it):
            // name it here too, so a user who sees its labels can find where they came from.
            let att = g.data_dir.join("attribution.tsv");
            if let Ok(text) = std::fs::read_to_string(&att) {
                let n = text
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                    .count();
                println!(
                    "also read beside the store: {} ({n} addresses; not imported, edit the file to change it)",
                    att.display()
                );
            }
        }
    }
    Ok(())
}

/// One imported file as a sentence: its source and version, then what changed (labels) or
/// what it held (an ActorPack's actors).
fn import_line(r: &serde_json::Value) -> String {
    let n = |k: &str| r["stats"][k].as_u64().unwrap_or(0);
    let head = format!(
        "{}: source {}, version {}:",
        r["file"].as_str().unwrap_or(""),
        r["source"].as_str().unwrap_or("-"),
        r["version"].as_str().unwrap_or("-"),
    );
    let actors = r["actors"].as_u64().unwrap_or(0);
    let labels = ["added", "unchanged", "updated", "closed", "reopened"]
        .iter()
        .map(|k| n(k))
        .sum::<u64>();
    let mut parts = Vec::new();
    if labels > 0 || actors == 0 {
        parts.push(format!(
            "{} labels added, {} unchanged, {} updated, {} closed, {} reopened",
            n("added"),
            n("unchanged"),
            n("updated"),
            n("closed"),
            n("reopened")
        ));
    }
    if actors > 0 {
        parts.push(format!("{actors} actors stored"));
    }
    let alerts = r["alerts"].as_u64().unwrap_or(0);
    if alerts > 0 {
        parts.push(format!("{alerts} alerts raised"));
    }
    format!("{head} {}", parts.join("; "))
}

/// Attributions of `DATA_DIR/attribution.tsv` (`address<TAB>category<TAB>name[<TAB>entity]`,
/// what screening and clustering use besides the label store), by address as written there:
/// `(category, name)`. Empty when there is no such file; unreadable lines are skipped here
/// (screening reports them).
pub fn file_attributions(g: &Global) -> std::collections::HashMap<String, Vec<(String, String)>> {
    let mut m: std::collections::HashMap<String, Vec<(String, String)>> = Default::default();
    let Ok(text) = std::fs::read_to_string(g.data_dir.join("attribution.tsv")) else {
        return m;
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 3 {
            m.entry(f[0].trim().to_string())
                .or_default()
                .push((f[1].to_string(), f[2].to_string()));
        }
    }
    m
}

/// The label store when one exists (commands that only show labels never create it).
pub fn open_existing(g: &Global) -> Result<Option<cointrail_tags::TagStore>> {
    let p = g.data_dir.join("labels.redb");
    if !p.exists() {
        return Ok(None);
    }
    Ok(Some(cointrail_tags::TagStore::open(&p)?))
}
