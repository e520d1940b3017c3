//! `cluster`: entities from addresses (multi-input heuristic, CoinJoin-aware).

use crate::Global;
use anyhow::{bail, Context, Result};
use cointrail_chain::view::ChainView;
use cointrail_clustering::{pairwise_scores, Clustering, NetParams};
use cointrail_index::Index;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  cointrail cluster build                      # bring the clustering up to the index tip
  cointrail cluster show ADDR                  # the entity: size, balance, flows, addresses
  cointrail cluster explain ADDR_A ADDR_B      # the chain of merges that joins them
  cointrail cluster export --out clusters.csv  # address,cluster_id for every address")]
pub enum ClusterCmd {
    /// Extend the clustering to the index tip (incremental).
    Build,
    /// An address's entity.
    Show {
        address: String,
        /// Addresses listed (page size).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Why two addresses are one entity (or that they are apart).
    Explain { a: String, b: String },
    /// Write `address,cluster_id` for every address.
    Export {
        #[arg(long, default_value = "csv", value_parser = ["csv"])]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Score the clustering against a simulated chain's ground truth (truth/ folder).
    Evaluate { truth_dir: PathBuf },
}

pub fn params(idx: &Index) -> NetParams {
    cointrail_engine::wiring::cluster_params(idx)
}

/// Open the clustering and bring it to the index tip (saving if it moved).
pub fn load(g: &Global, idx: &Index) -> Result<Clustering> {
    cointrail_engine::wiring::load_clustering(&g.data_dir, idx)
}

pub fn run(cmd: ClusterCmd, g: &Global) -> Result<()> {
    let idx = Index::open_reader(&g.index_dir())?;
    let t0 = std::time::Instant::now();
    let c = load(g, &idx)?;
    match cmd {
        ClusterCmd::Build => {
            let v = serde_json::json!({"covered_txs": c.covered_txs, "addresses": c.addr_count(), "merges": c.merges.len(), "coinjoins_skipped": c.coinjoins_skipped, "rule_set": cointrail_clustering::clusters::RULE_SET, "seconds": t0.elapsed().as_secs_f64()});
            if g.json {
                return crate::print_json(&v);
            }
            println!("clustering covers {} txs: {} addresses, {} merges, {} CoinJoins left unmerged ({:.1}s)", c.covered_txs, c.addr_count(), c.merges.len(), c.coinjoins_skipped, t0.elapsed().as_secs_f64());
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
            let mut store_labels: Vec<cointrail_tags::Label> = Vec::new();
            if g.data_dir.join("labels.redb").exists() {
                let st = cointrail_tags::TagStore::open(g.data_dir.join("labels.redb"))?;
                for x in c.addresses(a, 0, 100_000) {
                    store_labels.extend(st.labels_for_address("BTC", &idx.render_addr(x), None)?);
                }
            }
            let (name, conflicts) = cointrail_tags::best_definer(&store_labels);
            let conflicts: Vec<serde_json::Value> = conflicts
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "score": c.score, "source": c.source}))
                .collect();
            if g.json {
                return crate::print_json(
                    &serde_json::json!({"cluster": s, "name": name, "conflicting_definers": conflicts, "labels": labels, "addresses": addrs, "offset": offset}),
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
            println!("cluster {} · {} addresses · balance {} sat · received {} · sent {} · {} txs · heights {}..{}", s.cluster_id, s.size, s.balance, s.received, s.sent, s.tx_count, s.first_seen_height, s.last_seen_height);
            for l in &labels {
                println!("  label: {} ({})", l.name, l.category);
            }
            for x in addrs {
                println!("  {x}");
            }
        }
        ClusterCmd::Explain { a, b } => {
            let (ia, ib) = (idx.parse_address(&a)?, idx.parse_address(&b)?);
            let r = c.explain(&idx, ia, ib, &|x| idx.render_addr(x));
            if g.json {
                return crate::print_json(
                    &serde_json::json!({"same_entity": r.is_some(), "merges": r}),
                );
            }
            match r {
                None => println!(
                    "{a} and {b} are in different clusters ({} and {})",
                    c.cluster_of(ia),
                    c.cluster_of(ib)
                ),
                Some(steps) => {
                    println!(
                        "{a} and {b} are one entity through {} merge(s):",
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
        ClusterCmd::Export { format: _, out } => {
            let render = |x: u32| idx.render_addr(x);
            match out {
                Some(p) => {
                    let mut f = std::io::BufWriter::new(
                        std::fs::File::create(&p)
                            .with_context(|| format!("creating {}", p.display()))?,
                    );
                    c.export_csv(&mut f, &render)?;
                    if !g.json {
                        eprintln!("{} addresses written to {}", c.addr_count(), p.display());
                    }
                }
                None => c.export_csv(
                    &mut std::io::BufWriter::new(std::io::stdout().lock()),
                    &render,
                )?,
            }
        }
        ClusterCmd::Evaluate { truth_dir } => {
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
            if g.json {
                return crate::print_json(&s);
            }
            println!("multi-input clustering vs ground truth: precision {:.5}, recall {:.5}; {} of {} entities share a cluster with another; largest cluster {} addresses; {} clusters", s.precision, s.recall, s.entities_falsely_merged, s.entities, s.largest_cluster, s.clusters);
        }
    }
    Ok(())
}
