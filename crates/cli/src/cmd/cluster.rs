//! `cluster`: entities from addresses (multi-input heuristic, CoinJoin-aware), and the
//! change layer's soft links merged through the collapse guards.

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_chain::view::{display_txid, ChainView};
use cointrail_clustering::{
    pairwise_scores, ChangeRules, Clustering, Entities, Guards, MergeStep, NetParams,
};
use cointrail_index::Index;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  cointrail cluster build                      # bring the clustering up to the index tip
  cointrail cluster build --change default     # also change-address soft links (rebuilds)
  cointrail cluster show ADDR                  # the entity (its cluster): size, balance, flows, addresses
  cointrail cluster explain ADDR_A ADDR_B      # the chain of merges that joins them
  cointrail cluster links --outcome service    # change links a guard refused
  cointrail cluster export --out clusters.csv  # address,cluster_id for every address
An entity is a common-input cluster, named by its cluster id (the id `trace --json`,
`cluster show` and /v1/entities use). With `--change`, a change group is the coarser
grouping of clusters joined by change links, named by its smallest cluster id.
  cointrail cluster export --format parquet --out clusters.parquet")]
pub enum ClusterCmd {
    /// Extend the clustering to the index tip (incremental).
    Build {
        /// Also keep change-address soft links from this rule set: a name (default,
        /// meiklejohn, strict, loose, peel) or an expression of rules (h2, fresh, reuse,
        /// type, optimal, round, locktime, fingerprint, peel, consumer) joined by & | - and
        /// parentheses, e.g. "h2 & type & (optimal | round) - consumer". `none` drops the
        /// layer. Changing it rebuilds the clustering; it is recorded with every result.
        #[arg(long)]
        change: Option<String>,
        /// Blocks a change link waits before it may merge (and is dropped if the change
        /// address receives other funds meanwhile). 1,008 ≈ one week.
        #[arg(long, default_value_t = 1008)]
        change_delay: u32,
    },
    /// An address's entity (its cluster), and its change group when there is a change layer.
    Show {
        address: String,
        /// Addresses listed (page size).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// The change layer's soft links: each with its transaction, the spender and change
    /// addresses, its confidence and what the guards made of it. The rules that look at
    /// later spends see those made before the end of the link's delay; until the chain
    /// reaches it, the verdict is provisional (only the link's own block seen).
    Links {
        /// Only links that ended this way (merged, already_joined, pending, reused,
        /// tag_conflict, service, size_cap).
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Why two addresses are in one cluster or one change group (or that they are apart).
    Explain { a: String, b: String },
    /// Write every address with its cluster id (the entity id) and, with a change layer,
    /// its change group id: CSV `address,cluster_id[,change_group_id]`, or Apache Parquet
    /// with the same columns and the settings (rule sets, index tip) as file metadata.
    Export {
        #[arg(long, default_value = "csv", value_parser = ["csv", "parquet"])]
        format: String,
        /// Output file (required for parquet; CSV goes to stdout without it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Score the clustering against a simulated chain's ground truth (truth/ folder):
    /// multi-input alone, then each change rule set through the guards.
    Evaluate {
        truth_dir: PathBuf,
        /// Change rule sets to compare (repeatable; default: every named set).
        #[arg(long)]
        change: Vec<String>,
        #[arg(long, default_value_t = 1008)]
        change_delay: u32,
        /// Size cap of the guards: neither side of a soft merge may be larger.
        #[arg(long, default_value_t = 10_000)]
        max_soft_merge_size: u64,
    },
}

pub fn params(idx: &Index) -> NetParams {
    cointrail_engine::wiring::cluster_params(idx)
}

/// Open the clustering and bring it to the index tip (saving if it moved).
pub fn load(g: &Global, idx: &Index) -> Result<Clustering> {
    cointrail_engine::wiring::load_clustering(&g.data_dir, idx)
}

/// How a result was obtained: the index it was read from and the clustering's setting.
fn provenance(idx: &Index, c: &Clustering) -> serde_json::Value {
    serde_json::json!({
        "index_tip_height": idx.tip_height(),
        "index_tip_hash": idx.stats().tip_hash,
        "clustering": cointrail_engine::wiring::clustering_note(c),
    })
}

/// The change setting of a clustering, as reported.
fn change_note(c: &Clustering, e: &Entities) -> serde_json::Value {
    match &c.change {
        None => serde_json::Value::Null,
        Some(ch) => {
            let counts: serde_json::Map<String, serde_json::Value> = e
                .counts()
                .into_iter()
                .map(|(o, n)| {
                    (
                        serde_json::to_value(o)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        n.into(),
                    )
                })
                .collect();
            serde_json::json!({"rules": ch.rules.name, "expression": ch.rules.text, "delay_blocks": ch.delay_blocks, "max_soft_merge_size": e.guards.max_size, "links": ch.links.len(), "outcomes": counts})
        }
    }
}

fn build_with_change(
    g: &Global,
    idx: &Index,
    spec: Option<&str>,
    delay: u32,
) -> Result<Clustering> {
    let dir = cointrail_engine::wiring::cluster_dir(&g.data_dir);
    let mut c = Clustering::open(&dir, params(idx))?;
    if let Some(note) = &c.open_note {
        tracing::warn!("{note}");
    }
    // Without --change the stored setting stands; another setting starts afresh.
    let want = match spec {
        None => None,
        Some("none") => Some(None),
        Some(s) => Some(Some(ChangeRules::parse(s).map_err(anyhow::Error::msg)?)),
    };
    if let Some(want) = want {
        let same = match (&c.change, &want) {
            (None, None) => true,
            (Some(a), Some(b)) => a.rules.text == b.text && a.delay_blocks == delay,
            _ => false,
        };
        if !same {
            // Built again as asked: what `open` found no longer matters.
            c = Clustering::new(&dir, params(idx));
            if let Some(r) = want {
                c = c.with_change(r, delay);
            }
        }
    }
    let pb = crate::progress::bar(g, 0, "clustering");
    c.progress = Some(tx_bar(&pb));
    cointrail_engine::wiring::sync_saved(&mut c, idx)?;
    c.progress = None;
    pb.finish_and_clear();
    Ok(c)
}

/// Feeds a clustering's progress (transactions applied of those to apply) to a bar.
fn tx_bar(pb: &indicatif::ProgressBar) -> Box<dyn Fn(u64, u64) + Send + Sync> {
    let pb = pb.clone();
    Box::new(move |done, total| {
        pb.set_length(total);
        pb.set_position(done);
        pb.set_message("transactions");
    })
}

/// Steps joining `a` and `b`: multi-input merges inside each cluster, change links between.
fn explain_steps(
    idx: &Index,
    c: &Clustering,
    e: &Entities,
    a: u32,
    b: u32,
) -> Option<Vec<MergeStep>> {
    let render = |x: u32| idx.render_addr(x);
    let path = e.link_path(a, b)?;
    let links = c.change.as_ref().map(|ch| &ch.links);
    let mut steps = Vec::new();
    let mut cur = a;
    for i in path {
        let l = links?[i];
        // The path may cross a link either way: from the spender's cluster to the change's,
        // or back.
        let (near, far) = if c.root_of(cur) == c.root_of(l.input) {
            (l.input, l.change)
        } else {
            (l.change, l.input)
        };
        steps.extend(c.explain(idx, cur, near, &render)?);
        steps.push(MergeStep {
            txid: display_txid(idx.txid(l.tx)),
            height: l.height,
            from: render(near),
            to: render(far),
            rule: format!(
                "change output {} by rules {} (confidence {:.2})",
                l.vout,
                c.change.as_ref()?.rules.name,
                l.confidence()
            ),
        });
        cur = far;
    }
    steps.extend(c.explain(idx, cur, b, &render)?);
    Some(steps)
}

pub fn run(cmd: ClusterCmd, g: &Global) -> Result<()> {
    let idx = Index::open_reader(&g.index_dir())?;
    let t0 = std::time::Instant::now();
    let c = match &cmd {
        ClusterCmd::Build {
            change,
            change_delay,
        } => build_with_change(g, &idx, change.as_deref(), *change_delay)?,
        _ => load(g, &idx)?,
    };
    let tags = cointrail_engine::wiring::cluster_tags(&g.data_dir, &idx, &c)?;
    let ent = Entities::build(&c, &tags, Guards::default());
    match cmd {
        ClusterCmd::Build { .. } => {
            let v = serde_json::json!({"covered_txs": c.covered_txs, "addresses": c.addr_count(), "merges": c.merges.len(), "coinjoins_skipped": c.coinjoins_skipped, "coinjoins_by_protocol": c.coinjoins_by_protocol, "rule_set": cointrail_clustering::clusters::RULE_SET, "change": change_note(&c, &ent), "opened": c.open_note, "seconds": t0.elapsed().as_secs_f64(), "provenance": provenance(&idx, &c)});
            if g.json {
                return crate::print_json(&v);
            }
            println!("clustering covers {} txs: {} addresses, {} merges, {} CoinJoins left unmerged ({:.1}s)", c.covered_txs, c.addr_count(), c.merges.len(), c.coinjoins_skipped, t0.elapsed().as_secs_f64());
            if !c.coinjoins_by_protocol.is_empty() {
                let by: Vec<String> = c
                    .coinjoins_by_protocol
                    .iter()
                    .map(|(p, n)| format!("{n} {p}"))
                    .collect();
                println!("CoinJoins found: {}", by.join(", "));
            }
            if let Some(ch) = &c.change {
                let counts = ent.counts();
                let of = |w: cointrail_clustering::Outcome| {
                    counts.iter().find(|(o, _)| *o == w).map_or(0, |x| x.1)
                };
                let by: Vec<String> = change_note(&c, &ent)["outcomes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
                    .collect();
                println!(
                    "change rules {} ({}): {} soft links: {}",
                    ch.rules.name,
                    ch.rules.text,
                    ch.links.len(),
                    by.join(", ")
                );
                let pending = of(cointrail_clustering::Outcome::Pending);
                let blocks = idx.tip_height().map_or(0, |h| h + 1 - idx.start_height());
                if pending > 0 && ch.delay_blocks >= blocks {
                    println!(
                        "all {pending} link(s) wait for the delay of {} blocks, longer than the {blocks} blocks indexed: give a smaller --change-delay",
                        ch.delay_blocks
                    );
                }
            }
        }
        ClusterCmd::Show {
            address,
            limit,
            offset,
        } => {
            let a = idx.parse_address(&address)?;
            let s = c.summary(a);
            let addrs: Vec<String> = c
                .addresses(a, offset, limit)
                .into_iter()
                .map(|x| idx.render_addr(x))
                .collect();
            let labels = cointrail_engine::wiring::cluster_labels(&g.data_dir, &idx, &c, a)?;
            // The cluster's name: its best definer label by confidence; rivals are shown.
            let store_labels = cointrail_engine::wiring::cluster_store_labels(
                &g.data_dir,
                &idx,
                &c,
                a,
                cointrail_engine::wiring::LABELS_PER_MEMBER_UP_TO,
            )?;
            let (name, conflicts) = cointrail_tags::best_definer(&store_labels);
            let conflicts: Vec<serde_json::Value> = conflicts
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "score": c.score, "source": c.source}))
                .collect();
            // The clusters change links join: a coarser grouping than the entity, with its
            // own name so that nobody takes its id for an entity id.
            let group = c.change.as_ref().map(|ch| {
                serde_json::json!({
                    "change_group_id": ent.entity_of(a),
                    "size": ent.size(a),
                    "clusters": ent.clusters(a).len(),
                    "change_rules": ch.rules.name,
                    "addresses": ent.addresses(a, offset, limit).into_iter().map(|x| idx.render_addr(x)).collect::<Vec<_>>(),
                })
            });
            if g.json {
                return crate::print_json(
                    &serde_json::json!({"cluster": s, "change_group": group, "name": name, "conflicting_definers": conflicts, "labels": labels, "addresses": addrs, "offset": offset, "provenance": provenance(&idx, &c)}),
                );
            }
            if let Some(n) = &name {
                println!("{n}");
            }
            for cf in &conflicts {
                println!(
                    "  conflicting definer: {} (confidence {}, {})",
                    cf["name"], cf["score"], cf["source"]
                );
            }
            let b = crate::human::btc;
            println!("cluster {} (the entity id `trace --json` and /v1/entities use) · {} addresses · balance {} · received {} · sent {} · {} txs · heights {}..{}", s.cluster_id, s.size, b(s.balance), b(s.received), b(s.sent), s.tx_count, s.first_seen_height, s.last_seen_height);
            for l in &labels {
                println!("  label: {} ({})", l.name, l.category);
            }
            if let Some(e) = &group {
                println!(
                    "change group {} · {} addresses in {} cluster(s) joined by change links (rules {}; named by its smallest cluster id)",
                    e["change_group_id"],
                    e["size"],
                    e["clusters"],
                    e["change_rules"].as_str().unwrap_or("")
                );
            }
            for x in addrs {
                println!("  {x}");
            }
        }
        ClusterCmd::Links {
            outcome,
            limit,
            offset,
        } => {
            let Some(ch) = &c.change else {
                bail!("this clustering has no change layer: run `cointrail cluster build --change default`")
            };
            let names = [
                "merged",
                "already_joined",
                "pending",
                "reused",
                "tag_conflict",
                "service",
                "size_cap",
            ];
            if let Some(o) = &outcome {
                if !names.contains(&o.as_str()) {
                    bail!("--outcome {o:?}: use one of {}", names.join(", "));
                }
            }
            let rows: Vec<serde_json::Value> = ch
                .links
                .iter()
                .zip(&ent.outcomes)
                .filter_map(|(l, o)| {
                    let o = serde_json::to_value(o).ok()?;
                    if outcome.as_deref().is_some_and(|w| o != w) {
                        return None;
                    }
                    Some(serde_json::json!({
                        "txid": display_txid(idx.txid(l.tx)),
                        "height": l.height,
                        "vout": l.vout,
                        "spender": idx.render_addr(l.input),
                        "change": idx.render_addr(l.change),
                        "confidence": l.confidence(),
                        "outcome": o,
                        // Provisional until the chain reaches the end of the link's delay:
                        // the rules have seen only the spends of its own block so far.
                        "verdict": if ch.verdict_is_final(l.tx) { "final" } else { "provisional" },
                    }))
                })
                .skip(offset)
                .take(limit)
                .collect();
            if g.json {
                return crate::print_json(
                    &serde_json::json!({"rules": ch.rules.name, "expression": ch.rules.text, "links": rows, "provenance": provenance(&idx, &c)}),
                );
            }
            println!("change rules {} ({})", ch.rules.name, ch.rules.text);
            for r in &rows {
                println!(
                    "  {} → {}  tx {}:{} height {} confidence {:.2}  {}{}",
                    r["spender"].as_str().unwrap_or(""),
                    r["change"].as_str().unwrap_or(""),
                    r["txid"].as_str().unwrap_or(""),
                    r["vout"],
                    r["height"],
                    r["confidence"].as_f64().unwrap_or(0.0),
                    r["outcome"].as_str().unwrap_or(""),
                    if r["verdict"] == "provisional" {
                        " (provisional verdict)"
                    } else {
                        ""
                    }
                );
            }
        }
        ClusterCmd::Explain { a, b } => {
            let (ia, ib) = (idx.parse_address(&a)?, idx.parse_address(&b)?);
            let r = c
                .explain(&idx, ia, ib, &|x| idx.render_addr(x))
                .or_else(|| explain_steps(&idx, &c, &ent, ia, ib));
            if g.json {
                return crate::print_json(
                    &serde_json::json!({"same_cluster": c.cluster_of(ia) == c.cluster_of(ib), "same_change_group": c.change.is_some().then(|| ent.entity_of(ia) == ent.entity_of(ib)), "merges": r, "provenance": provenance(&idx, &c)}),
                );
            }
            match r {
                None if c.change.is_some() => println!(
                    "{a} and {b} are apart: clusters {} and {}, change groups {} and {}",
                    c.cluster_of(ia),
                    c.cluster_of(ib),
                    ent.entity_of(ia),
                    ent.entity_of(ib)
                ),
                None => println!(
                    "{a} and {b} are apart: clusters {} and {}",
                    c.cluster_of(ia),
                    c.cluster_of(ib)
                ),
                Some(steps) => {
                    println!(
                        "{a} and {b} are {} through {} merge(s):",
                        if c.cluster_of(ia) == c.cluster_of(ib) {
                            format!("one cluster ({})", c.cluster_of(ia))
                        } else {
                            format!(
                                "one change group ({}), in clusters {} and {}",
                                ent.entity_of(ia),
                                c.cluster_of(ia),
                                c.cluster_of(ib)
                            )
                        },
                        steps.len()
                    );
                    for s in steps {
                        println!(
                            "  {} → {}  by tx {} (height {}, {})",
                            s.from, s.to, s.txid, s.height, s.rule
                        );
                    }
                }
            }
        }
        ClusterCmd::Export { format, out } => {
            let n = c.addr_count() as u32;
            let with_group = c.change.is_some();
            let group = |a: u32| with_group.then(|| ent.entity_of(a));
            if format == "parquet" {
                let Some(p) = out else {
                    bail!(
                        "--format parquet needs --out FILE (Parquet is not written to a terminal)"
                    )
                };
                let mut meta = vec![
                    (
                        "cointrail.rule_set",
                        cointrail_clustering::clusters::RULE_SET.to_string(),
                    ),
                    ("cointrail.covered_txs", c.covered_txs.to_string()),
                    (
                        "cointrail.tip_height",
                        idx.tip_height().map(|h| h.to_string()).unwrap_or_default(),
                    ),
                ];
                if let Some(ch) = &c.change {
                    meta.push((
                        "cointrail.change_rules",
                        format!(
                            "{} ({}), delay {} blocks, max soft merge size {}",
                            ch.rules.name, ch.rules.text, ch.delay_blocks, ent.guards.max_size
                        ),
                    ));
                }
                let pb = crate::progress::bar(g, n as u64, "export");
                let rows = (0..n).map(|a| {
                    if a % 65_536 == 0 {
                        pb.set_position(a as u64);
                    }
                    cointrail_export::ClusterRow {
                        address: idx.render_addr(a),
                        cluster_id: c.cluster_of(a),
                        change_group_id: group(a),
                    }
                });
                let written = cointrail_export::write_clusters(&p, rows, &meta)?;
                pb.finish_and_clear();
                if g.json {
                    return crate::print_json(
                        &serde_json::json!({"format": "parquet", "out": p, "rows": written, "provenance": provenance(&idx, &c)}),
                    );
                }
                eprintln!("{written} addresses written to {}", p.display());
                return Ok(());
            }
            let write = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
                if with_group {
                    writeln!(w, "address,cluster_id,change_group_id")?;
                } else {
                    writeln!(w, "address,cluster_id")?;
                }
                for a in 0..n {
                    match group(a) {
                        Some(e) => writeln!(w, "{},{},{e}", idx.render_addr(a), c.cluster_of(a))?,
                        None => writeln!(w, "{},{}", idx.render_addr(a), c.cluster_of(a))?,
                    }
                }
                w.flush()
            };
            match out {
                Some(p) => {
                    let mut f = std::io::BufWriter::new(
                        std::fs::File::create(&p)
                            .with_context(|| format!("creating {}", p.display()))?,
                    );
                    write(&mut f).with_context(|| format!("writing {}", p.display()))?;
                    if g.json {
                        return crate::print_json(
                            &serde_json::json!({"format": "csv", "out": p, "rows": n, "provenance": provenance(&idx, &c)}),
                        );
                    }
                    eprintln!("{n} addresses written to {}", p.display());
                }
                None => write(&mut std::io::BufWriter::new(std::io::stdout().lock()))?,
            }
        }
        ClusterCmd::Evaluate {
            truth_dir,
            change,
            change_delay,
            max_soft_merge_size,
        } => {
            let p = truth_dir.join("addresses.tsv");
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("reading {} (a simulator truth/ folder)", p.display()))?;
            let mut owner = vec![None; idx.addr_count() as usize];
            for line in text.lines().skip(1) {
                let mut f = line.split('\t');
                let (Some(a), Some(e)) = (f.next(), f.next()) else {
                    bail!("{}: expected address<TAB>entity", p.display())
                };
                if let Ok(id) = idx.parse_address(a) {
                    owner[id as usize] = e.parse().ok();
                }
            }
            let s = pairwise_scores(&c, &owner);
            let sets: Vec<String> = if change.is_empty() {
                cointrail_clustering::change::NAMED
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect()
            } else {
                change
            };
            let guards = Guards {
                max_size: max_soft_merge_size,
            };
            let mut rows = Vec::new();
            for spec in &sets {
                let rules = ChangeRules::parse(spec).map_err(anyhow::Error::msg)?;
                // Evaluated in memory: never saved.
                let mut cc = Clustering::new(&g.data_dir.join("clusters-evaluation"), params(&idx))
                    .with_change(rules, change_delay);
                let pb = crate::progress::bar(g, 0, &format!("change rules {spec}"));
                cc.progress = Some(tx_bar(&pb));
                cc.update(&idx);
                pb.finish_and_clear();
                let tags = cointrail_engine::wiring::cluster_tags(&g.data_dir, &idx, &cc)?;
                let e = Entities::build(&cc, &tags, guards);
                let sc = e.scores(&owner);
                rows.push(serde_json::json!({
                    "change": change_note(&cc, &e),
                    "scores": sc,
                    "recall_gain": sc.recall - s.recall,
                }));
            }
            let v = serde_json::json!({"multi_input": s, "change_rule_sets": rows, "truth": truth_dir, "covered_txs": c.covered_txs, "provenance": provenance(&idx, &c)});
            if g.json {
                return crate::print_json(&v);
            }
            println!("multi-input clustering against the ground truth: precision {:.5}, recall {:.5}; {} of {} entities share a cluster with another; largest cluster {} addresses; {} clusters", s.precision, s.recall, s.entities_falsely_merged, s.entities, s.largest_cluster, s.clusters);
            println!("precision: of address pairs put in one cluster, the share one owner really holds; recall: of address pairs one owner holds, the share put in one cluster.");
            println!("adding change-address rules (each row: multi-input plus these rules):");
            let name =
                |r: &serde_json::Value| r["change"]["rules"].as_str().unwrap_or("").to_string();
            let nw = rows
                .iter()
                .map(|r| name(r).len())
                .max()
                .unwrap_or(0)
                .max("rules".len());
            println!(
                "  {:nw$}  {:>9}  {:>9}  {:>10}  {:>14}  {:>8}  {:>8}  outcomes",
                "rules", "precision", "recall", "recall +/-", "falsely merged", "largest", "links"
            );
            for r in &rows {
                let sc = &r["scores"];
                let outcomes = r["change"]["outcomes"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k} {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                println!(
                    "  {:nw$}  {:>9.5}  {:>9.5}  {:>+10.5}  {:>14}  {:>8}  {:>8}  {}",
                    name(r),
                    sc["precision"].as_f64().unwrap_or(0.0),
                    sc["recall"].as_f64().unwrap_or(0.0),
                    r["recall_gain"].as_f64().unwrap_or(0.0),
                    sc["entities_falsely_merged"].as_u64().unwrap_or(0),
                    sc["largest_cluster"].as_u64().unwrap_or(0),
                    r["change"]["links"].as_u64().unwrap_or(0),
                    outcomes
                );
            }
            // Every link still waiting for its delay adds nothing: say why rather than
            // leave a column of zeros (the demo's chain is shorter than the default week).
            let all_pending = !rows.is_empty()
                && rows.iter().all(|r| {
                    let o = &r["change"]["outcomes"];
                    o.as_object().is_some_and(|m| m.len() == 1) && o["pending"].as_u64().is_some()
                });
            if all_pending {
                println!(
                    "every change link is still pending: a link waits --change-delay {change_delay} blocks, and the index ends at height {}; try a shorter delay, e.g. `cointrail cluster evaluate {} --change-delay 6`",
                    idx.tip_height().map_or("?".into(), |h| h.to_string()),
                    truth_dir.display()
                );
            }
        }
    }
    Ok(())
}
