//! `spark`: what the single-box cointrail reads back from the Spark jobs (spark/): their
//! clusters and exposure rows imported into the data directory (`DATA/spark/`), answers
//! from them, and a comparison with cointrail's own clustering and screening.
//!
//! Store (`DATA/spark/`, replaced whole by each import):
//! - `clusters.u32`: the cluster id of every address id the Spark run covered, u32 LE,
//!   indexed by address id (a prefix of the index's ids: a later `ingest` adds addresses
//!   the run has not seen);
//! - `exposure.bin`: the exposure rows, fixed 24-byte records sorted by address id
//!   (`Rec`), found by binary search;
//! - `import.json`: where they came from, counts, the category names the records refer
//!   to, and the run's parameters (`summary.json`'s `params`: hops, which addresses).

use crate::Global;
use anyhow::{anyhow, bail, Context, Result};
use cointrail_chain::view::ChainView;
use cointrail_export::table::{read_columns, Val};
use cointrail_index::Index;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  PYTHONPATH=spark $(scripts/install-spark.sh) -m cointrail_spark ds/ out/ --master 'local[2]'
  cointrail spark import out/                  # Spark's clusters and exposure into DATA/spark/
  cointrail spark show ADDR                    # the address's cluster and exposure, as Spark computed them
  cointrail spark export --out clusters.csv    # address,cluster_id of every imported address
  cointrail spark compare                      # the same partition and exposure as cointrail's own?
Cluster ids are the cluster's smallest address id: the entity id of `cluster show`,
`trace --json` and /v1/entities. Exposure rows are `screen ADDR`'s (direction, category,
type, delisted, satoshis, fewest hops) without paths, names and USD.")]
pub enum SparkCmd {
    /// Import a Spark run's results (the OUT directory of `python -m cointrail_spark`:
    /// `clusters/`, and `exposure/` when the exposure job ran), checked against the index:
    /// every address id with its address, each once, cluster ids that name a member.
    Import {
        /// The run's output directory (local).
        results: PathBuf,
    },
    /// An address's imported cluster (id, size, members) and exposure rows.
    Show {
        address: String,
        /// Member addresses listed (page size).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Write every imported address with its cluster id: CSV `address,cluster_id`
    /// (`cluster export`'s columns), to stdout or --out.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare the import with cointrail's own answers on this data directory: the cluster
    /// of every imported address (the same partition, the same ids), and the exposure of
    /// every address Spark screened, row by row to the satoshi (`screen` without step
    /// bounds, the run's hop limit). Exits with an error when anything differs.
    Compare {
        /// Screen only every N-th of the addresses Spark screened (all by default).
        #[arg(long, default_value_t = 1)]
        sample: usize,
        /// Differences listed.
        #[arg(long, default_value_t = 10)]
        show: usize,
        /// Also compare the run's taint (its `taint/`, beside the imported results) with
        /// cointrail's trace of the same case(s): the `trace.parquet` that `export --format
        /// parquet --case NAME` wrote; every traced output's satoshis, hops and stop reason.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
}

const DIRS: [&str; 2] = ["received", "sent"];
const TYPES: [&str; 3] = ["ownership", "direct", "indirect"];
const REC: usize = 24;

/// One exposure row as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    addr: u32,
    dir: u8,
    cat: u32,
    typ: u8,
    delisted: bool,
    min_hops: u32,
    sats: u64,
}

impl Rec {
    fn bytes(&self) -> [u8; REC] {
        let mut b = [0u8; REC];
        b[0..4].copy_from_slice(&self.addr.to_le_bytes());
        b[4..8].copy_from_slice(&self.cat.to_le_bytes());
        b[8] = self.dir;
        b[9] = self.typ;
        b[10] = self.delisted as u8;
        b[12..16].copy_from_slice(&self.min_hops.to_le_bytes());
        b[16..24].copy_from_slice(&self.sats.to_le_bytes());
        b
    }
    fn from(b: &[u8]) -> Rec {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        Rec {
            addr: u32_at(0),
            cat: u32_at(4),
            dir: b[8],
            typ: b[9],
            delisted: b[10] != 0,
            min_hops: u32_at(12),
            sats: u64::from_le_bytes(b[16..24].try_into().unwrap()),
        }
    }
}

fn store_dir(g: &Global) -> PathBuf {
    g.data_dir.join("spark")
}

/// The part files of a Spark result directory (`part-*.parquet`), sorted.
fn parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).with_context(|| {
        format!(
            "{}: cannot read it (expected a result directory of `python -m cointrail_spark`)",
            dir.display()
        )
    })?;
    let mut v = Vec::new();
    for e in rd {
        let p = e
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("part-") && name.ends_with(".parquet") {
            v.push(p);
        }
    }
    if v.is_empty() {
        bail!(
            "{}: no part-*.parquet files (expected a result directory of `python -m cointrail_spark`)",
            dir.display()
        );
    }
    v.sort();
    Ok(v)
}

/// A non-negative integer field of a row, or an error naming the file, row and field.
fn int(v: &Val, file: &Path, row: usize, field: &str, max: u64) -> Result<u64> {
    match v {
        Val::I(x) if *x >= 0 && (*x as u64) <= max => Ok(*x as u64),
        Val::I(x) => bail!(
            "{} row {row}: field `{field}` is {x}, outside 0..={max}",
            file.display()
        ),
        other => bail!(
            "{} row {row}: field `{field}` is {}, expected an integer",
            file.display(),
            shown(other)
        ),
    }
}

fn text<'a>(v: &'a Val, file: &Path, row: usize, field: &str) -> Result<&'a str> {
    match v {
        Val::S(s) => Ok(s),
        other => bail!(
            "{} row {row}: field `{field}` is {}, expected a string",
            file.display(),
            shown(other)
        ),
    }
}

fn shown(v: &Val) -> String {
    match v {
        Val::Null => "null".into(),
        Val::I(x) => format!("the integer {x}"),
        Val::B(b) => format!("the boolean {b}"),
        Val::S(s) => format!("the string {s:?}"),
    }
}

/// The address id of a row, checked against the index: in range and the same address.
fn address_of(
    idx: &Index,
    row: &[Val],
    file: &Path,
    r: usize,
    n: u32,
    within: &str,
) -> Result<u32> {
    let a = int(&row[0], file, r, "address_id", u32::MAX as u64)?;
    if a >= n as u64 {
        bail!(
            "{} row {r}: field `address_id` is {a}, but {within} has {n} addresses: these results are of another chain or a later export than this data directory's index",
            file.display()
        );
    }
    let a = a as u32;
    let addr = text(&row[1], file, r, "address")?;
    let ours = idx.render_addr(a);
    if addr != ours {
        bail!(
            "{} row {r}: field `address` is {addr:?} for address_id {a}, which is {ours:?} in this index: these results are of another chain or another export",
            file.display()
        );
    }
    Ok(a)
}

struct Imported {
    clusters: Vec<u32>,
    recs: Vec<Rec>,
    categories: Vec<String>,
}

/// Read and check a result directory against the index.
fn read_results(idx: &Index, results: &Path, g: &Global) -> Result<(Imported, bool)> {
    let n = idx.addr_count() as u32;
    let cdir = results.join("clusters");
    let mut cl = vec![u32::MAX; n as usize];
    let files = parts(&cdir)?;
    let pb = crate::progress::bar(g, files.len() as u64, "clusters");
    for f in &files {
        let rows = read_columns(f, &["address_id", "address", "cluster_id"])?;
        for (r, row) in rows.iter().enumerate() {
            let a = address_of(idx, row, f, r, n, "this index")?;
            let c = int(&row[2], f, r, "cluster_id", u32::MAX as u64)?;
            if c >= n as u64 {
                bail!(
                    "{} row {r}: field `cluster_id` is {c}, not an address id of this index ({n} addresses)",
                    f.display()
                );
            }
            if cl[a as usize] != u32::MAX {
                bail!(
                    "{} row {r}: address_id {a} appears a second time in {}",
                    f.display(),
                    cdir.display()
                );
            }
            cl[a as usize] = c as u32;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    // The covered ids are a prefix: the addresses of the exported index.
    let m = cl.iter().position(|&c| c == u32::MAX).unwrap_or(cl.len());
    if let Some(k) = cl[m..].iter().position(|&c| c != u32::MAX) {
        bail!(
            "{}: field `address_id`: {m} is missing but {} is there (a run covers every address id of its export, from 0)",
            cdir.display(),
            m + k
        );
    }
    if m == 0 {
        bail!("{}: no rows", cdir.display());
    }
    cl.truncate(m);
    // Cluster ids are the smallest member's address id, whose own cluster id is itself.
    for a in 0..m {
        let c = cl[a] as usize;
        if c >= m || c > a || cl[c] != c as u32 {
            bail!(
                "{}: field `cluster_id` of address_id {a} is {c}, which is not its cluster's smallest address id (an address whose own cluster_id is itself, at most {a})",
                cdir.display()
            );
        }
    }

    let edir = results.join("exposure");
    let mut recs = Vec::new();
    let mut cats: BTreeMap<String, u32> = BTreeMap::new();
    let has_exposure = edir.exists();
    if has_exposure {
        let files = parts(&edir)?;
        let pb = crate::progress::bar(g, files.len() as u64, "exposure");
        let cols = [
            "address_id",
            "address",
            "direction",
            "category",
            "type",
            "delisted",
            "sats",
            "min_hops",
        ];
        for f in &files {
            for (r, row) in read_columns(f, &cols)?.iter().enumerate() {
                let a = address_of(idx, row, f, r, m as u32, "the imported clustering")?;
                let dir = text(&row[2], f, r, "direction")?;
                let Some(dir) = DIRS.iter().position(|d| *d == dir) else {
                    bail!(
                        "{} row {r}: field `direction` is {dir:?}, expected received or sent",
                        f.display()
                    )
                };
                let cat = text(&row[3], f, r, "category")?;
                if cat.is_empty() {
                    bail!("{} row {r}: field `category` is empty", f.display());
                }
                let typ = text(&row[4], f, r, "type")?;
                let Some(typ) = TYPES.iter().position(|t| *t == typ) else {
                    bail!(
                        "{} row {r}: field `type` is {typ:?}, expected ownership, direct or indirect",
                        f.display()
                    )
                };
                let Val::B(delisted) = row[5] else {
                    bail!(
                        "{} row {r}: field `delisted` is {}, expected a boolean",
                        f.display(),
                        shown(&row[5])
                    )
                };
                let sats = int(&row[6], f, r, "sats", i64::MAX as u64)?;
                let min_hops = int(&row[7], f, r, "min_hops", u32::MAX as u64)? as u32;
                let next = cats.len() as u32;
                let cat = *cats.entry(cat.to_string()).or_insert(next);
                recs.push(Rec {
                    addr: a,
                    dir: dir as u8,
                    cat,
                    typ: typ as u8,
                    delisted,
                    min_hops,
                    sats,
                });
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
    }
    // Category ids in name order, then the records in key order.
    let mut names: Vec<String> = vec![String::new(); cats.len()];
    for (name, &i) in &cats {
        names[i as usize] = name.clone();
    }
    let order: Vec<u32> = {
        let mut by: Vec<(String, u32)> = cats.into_iter().collect();
        by.sort();
        let mut rank = vec![0u32; by.len()];
        for (k, (_, i)) in by.iter().enumerate() {
            rank[*i as usize] = k as u32;
        }
        rank
    };
    for r in &mut recs {
        r.cat = order[r.cat as usize];
    }
    names.sort();
    recs.sort_by_key(|r| (r.addr, r.dir, r.cat, r.typ, r.delisted));
    if let Some(w) = recs.windows(2).find(|w| {
        (w[0].addr, w[0].dir, w[0].cat, w[0].typ, w[0].delisted)
            == (w[1].addr, w[1].dir, w[1].cat, w[1].typ, w[1].delisted)
    }) {
        bail!(
            "{}: two rows for address_id {}, direction {}, category {}, type {}, delisted {} (one row per key is expected)",
            edir.display(),
            w[0].addr,
            DIRS[w[0].dir as usize],
            names[w[0].cat as usize],
            TYPES[w[0].typ as usize],
            w[0].delisted
        );
    }
    Ok((
        Imported {
            clusters: cl,
            recs,
            categories: names,
        },
        has_exposure,
    ))
}

/// The run's parameters from its `summary.json` (absent in runs before they were written).
fn run_params(results: &Path) -> Result<serde_json::Value> {
    let p = results.join("summary.json");
    if !p.exists() {
        return Ok(serde_json::Value::Null);
    }
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
    )
    .with_context(|| format!("{}: not JSON", p.display()))?;
    Ok(
        serde_json::json!({"params": s.get("params"), "times": s.get("times"), "rows": s.get("rows")}),
    )
}

fn import(g: &Global, results: &Path) -> Result<serde_json::Value> {
    let t0 = std::time::Instant::now();
    let idx = Index::open_reader(&g.index_dir())?;
    let summary = run_params(results)?;
    let (im, has_exposure) = read_results(&idx, results, g)?;
    let mut size: HashMap<u32, u32> = HashMap::new();
    for &c in &im.clusters {
        *size.entry(c).or_default() += 1;
    }
    let largest = size.values().copied().max().unwrap_or(0);
    let mut exposure_addrs = 0u64;
    for (i, r) in im.recs.iter().enumerate() {
        exposure_addrs += (i == 0 || im.recs[i - 1].addr != r.addr) as u64;
    }
    let meta = serde_json::json!({
        "source": std::fs::canonicalize(results).unwrap_or(results.to_path_buf()),
        "imported_at_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "index_addresses": idx.addr_count(),
        "index_tip_height": idx.tip_height(),
        "addresses": im.clusters.len(),
        "clusters": size.len(),
        "largest_cluster": largest,
        "exposure_imported": has_exposure,
        "exposure_rows": im.recs.len(),
        "exposure_addresses": exposure_addrs,
        "categories": im.categories,
        "run": summary,
    });
    // Written beside the store, then swapped in: readers see the old import or the new.
    let dir = store_dir(g);
    let tmp = g.data_dir.join("spark.importing");
    let old = g.data_dir.join("spark.previous");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.join(name);
        let mut f =
            std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", p.display()))
    };
    let mut cb = Vec::with_capacity(im.clusters.len() * 4);
    for c in &im.clusters {
        cb.extend_from_slice(&c.to_le_bytes());
    }
    write("clusters.u32", &cb)?;
    drop(cb);
    let mut eb = Vec::with_capacity(im.recs.len() * REC);
    for r in &im.recs {
        eb.extend_from_slice(&r.bytes());
    }
    write("exposure.bin", &eb)?;
    write(
        "import.json",
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(&dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(&tmp, &dir).with_context(|| format!("renaming {}", tmp.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    let mut out = meta;
    out["seconds"] = serde_json::json!(t0.elapsed().as_secs_f64());
    out["store"] = serde_json::json!(dir);
    Ok(out)
}

/// The imported store, opened.
struct Store {
    meta: serde_json::Value,
    clusters: Vec<u32>,
    exposure: std::fs::File,
    recs: u64,
    categories: Vec<String>,
}

impl Store {
    fn open(g: &Global) -> Result<Store> {
        let dir = store_dir(g);
        let mp = dir.join("import.json");
        if !mp.exists() {
            bail!(
                "nothing imported from Spark in {}: run `cointrail spark import OUT` (OUT: the output directory of `python -m cointrail_spark`)",
                g.data_dir.display()
            );
        }
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&mp).with_context(|| format!("reading {}", mp.display()))?,
        )
        .with_context(|| format!("{}: not JSON", mp.display()))?;
        let cp = dir.join("clusters.u32");
        let cb = std::fs::read(&cp).with_context(|| format!("reading {}", cp.display()))?;
        let want = meta["addresses"].as_u64().unwrap_or(0) as usize;
        if cb.len() != want * 4 {
            bail!(
                "{}: {} bytes, expected {} ({} addresses): import again",
                cp.display(),
                cb.len(),
                want * 4,
                want
            );
        }
        let clusters = cb
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let ep = dir.join("exposure.bin");
        let exposure =
            std::fs::File::open(&ep).with_context(|| format!("opening {}", ep.display()))?;
        let len = exposure.metadata()?.len();
        if len % REC as u64 != 0 {
            bail!(
                "{}: {len} bytes, not whole records: import again",
                ep.display()
            );
        }
        let categories = meta["categories"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|s| s.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Store {
            meta,
            clusters,
            exposure,
            recs: len / REC as u64,
            categories,
        })
    }

    fn rec(&self, i: u64) -> Result<Rec> {
        let mut b = [0u8; REC];
        self.exposure.read_exact_at(&mut b, i * REC as u64)?;
        Ok(Rec::from(&b))
    }

    /// The exposure rows of address `a` (binary search for its first record).
    fn exposure_of(&self, a: u32) -> Result<Vec<Rec>> {
        let (mut lo, mut hi) = (0u64, self.recs);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.rec(mid)?.addr < a {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut v = Vec::new();
        while lo < self.recs {
            let r = self.rec(lo)?;
            if r.addr != a {
                break;
            }
            v.push(r);
            lo += 1;
        }
        Ok(v)
    }

    /// Every record, in order.
    fn all_exposure(&self) -> Result<Vec<Rec>> {
        let mut b = vec![0u8; (self.recs as usize) * REC];
        self.exposure.read_exact_at(&mut b, 0)?;
        Ok(b.chunks_exact(REC).map(Rec::from).collect())
    }

    /// Which addresses the run screened: every N-th id, when the run said so.
    fn screened_every(&self) -> Option<u64> {
        if self.meta["exposure_imported"] != true {
            return None;
        }
        self.meta["run"]["params"]["exposure_every"].as_u64()
    }

    fn max_hops(&self) -> Option<u32> {
        self.meta["run"]["params"]["max_hops"]
            .as_u64()
            .map(|h| h as u32)
    }

    fn row_json(&self, r: &Rec) -> serde_json::Value {
        serde_json::json!({
            "direction": DIRS[r.dir as usize],
            "category": self.categories.get(r.cat as usize),
            "type": TYPES[r.typ as usize],
            "delisted": r.delisted,
            "sats": r.sats,
            "min_hops": r.min_hops,
        })
    }

    fn key(&self, r: &Rec) -> ExpKey {
        (
            r.addr,
            DIRS[r.dir as usize].to_string(),
            self.categories
                .get(r.cat as usize)
                .cloned()
                .unwrap_or_default(),
            TYPES[r.typ as usize].to_string(),
            r.delisted,
        )
    }
}

type ExpKey = (u32, String, String, String, bool);

fn show(g: &Global, address: &str, limit: usize, offset: usize) -> Result<()> {
    let s = Store::open(g)?;
    let idx = Index::open_reader(&g.index_dir())?;
    let a = idx.parse_address(address)?;
    let m = s.clusters.len();
    if a as usize >= m {
        bail!(
            "{address} is not in the imported Spark results: they cover the first {m} addresses of the index (the export the run read), this one came later; export and run again"
        );
    }
    let c = s.clusters[a as usize];
    let members: Vec<u32> = (0..m as u32)
        .filter(|&x| s.clusters[x as usize] == c)
        .collect();
    let listed: Vec<String> = members
        .iter()
        .skip(offset)
        .take(limit)
        .map(|&x| idx.render_addr(x))
        .collect();
    let rows = s.exposure_of(a)?;
    let every = s.screened_every();
    let screened = every.map(|e| e > 0 && (a as u64).is_multiple_of(e));
    if g.json {
        return crate::print_json(&serde_json::json!({
            "address": address,
            "address_id": a,
            "cluster_id": c,
            "cluster_size": members.len(),
            "addresses": listed,
            "offset": offset,
            "exposure": rows.iter().map(|r| s.row_json(r)).collect::<Vec<_>>(),
            "exposure_screened": screened.or((!rows.is_empty()).then_some(true)),
            "import": {"source": s.meta["source"], "imported_at_unix": s.meta["imported_at_unix"], "addresses": m, "run": s.meta["run"]["params"]},
        }));
    }
    println!(
        "cluster {c} (Spark, imported from {}) · {} addresses",
        s.meta["source"].as_str().unwrap_or("?"),
        members.len()
    );
    for x in &listed {
        println!("  {x}");
    }
    if rows.is_empty() {
        match screened {
            Some(true) => println!("no exposure to labelled categories (Spark screened it)"),
            Some(false) => println!(
                "exposure: not computed for this address (the run screened every {}. address id)",
                every.unwrap_or(0)
            ),
            None => println!("exposure: none imported for this address"),
        }
    }
    for r in &rows {
        println!(
            "  {:8} {:10} {:9} {} BTC, {} hop(s){}",
            DIRS[r.dir as usize],
            s.categories
                .get(r.cat as usize)
                .map(String::as_str)
                .unwrap_or("?"),
            TYPES[r.typ as usize],
            crate::human::btc(r.sats),
            r.min_hops,
            if r.delisted { " (delisted)" } else { "" }
        );
    }
    Ok(())
}

fn export(g: &Global, out: Option<PathBuf>) -> Result<()> {
    let s = Store::open(g)?;
    let idx = Index::open_reader(&g.index_dir())?;
    let write = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
        writeln!(w, "address,cluster_id")?;
        for (a, c) in s.clusters.iter().enumerate() {
            writeln!(w, "{},{c}", idx.render_addr(a as u32))?;
        }
        w.flush()
    };
    match out {
        Some(p) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?,
            );
            write(&mut f).with_context(|| format!("writing {}", p.display()))?;
            if g.json {
                return crate::print_json(
                    &serde_json::json!({"format": "csv", "out": p, "rows": s.clusters.len()}),
                );
            }
            eprintln!("{} addresses written to {}", s.clusters.len(), p.display());
        }
        None => write(&mut std::io::BufWriter::new(std::io::stdout().lock()))?,
    }
    Ok(())
}

fn compare(g: &Global, sample: usize, show: usize, trace: Option<&Path>) -> Result<()> {
    let t0 = std::time::Instant::now();
    let s = Store::open(g)?;
    let e = crate::cmd::screen::open_engine(g, None)?;
    let idx = &e.index;
    let m = s.clusters.len();
    if m > idx.addr_count() as usize {
        bail!(
            "the import covers {m} addresses, the index {}: it is of another index: import again",
            idx.addr_count()
        );
    }
    // The partition: a one-to-one map between Spark's cluster ids and cointrail's, and
    // the ids themselves (both name a cluster by its smallest address id).
    let mut fwd: HashMap<u32, u64> = HashMap::new();
    let mut back: HashMap<u64, u32> = HashMap::new();
    let (mut same_id, mut split_or_joined) = (0u64, 0u64);
    let mut cl_diffs = Vec::new();
    for (a, &c) in s.clusters.iter().enumerate() {
        let ours = e.entity_id(a as u32).ok_or_else(|| {
            anyhow!("this data directory has no clustering: run `cointrail cluster build` first")
        })?;
        same_id += (ours == c as u64) as u64;
        let f = *fwd.entry(c).or_insert(ours);
        let b = *back.entry(ours).or_insert(c);
        if f != ours || b != c {
            split_or_joined += 1;
        }
        if ours != c as u64 && cl_diffs.len() < show {
            cl_diffs.push(serde_json::json!({"address": idx.render_addr(a as u32), "spark_cluster_id": c, "cointrail_cluster_id": ours}));
        }
    }
    let same_partition = split_or_joined == 0;

    // Exposure: every address Spark screened (or, without the run's parameters, every
    // address it has rows for), every row to the satoshi.
    let mut spark: BTreeMap<ExpKey, u64> = BTreeMap::new();
    let all = s.all_exposure()?;
    for r in &all {
        *spark.entry(s.key(r)).or_default() += r.sats;
    }
    let mut subjects: Vec<u32> = match s.screened_every() {
        Some(ev) if ev > 0 => (0..m as u64)
            .step_by(ev as usize)
            .map(|a| a as u32)
            .collect(),
        _ => {
            let mut v: Vec<u32> = all.iter().map(|r| r.addr).collect();
            v.dedup();
            v
        }
    };
    if sample > 1 {
        subjects = subjects.into_iter().step_by(sample).collect();
    }
    let subject_set: std::collections::HashSet<u32> = subjects.iter().copied().collect();
    spark.retain(|k, _| subject_set.contains(&k.0));
    let max_hops = s.max_hops().unwrap_or(3);
    let params = cointrail_risk::exposure::ExposureParams {
        max_hops,
        max_steps: usize::MAX,
        max_edges: usize::MAX,
    };
    let mut ours: BTreeMap<ExpKey, u64> = BTreeMap::new();
    let pb = crate::progress::bar(g, subjects.len() as u64, "screening");
    let t1 = std::time::Instant::now();
    if s.meta["exposure_imported"] == true {
        for &a in &subjects {
            let sc = e.screen_with(
                &cointrail_engine::Subject::Address(idx.render_addr(a)),
                &params,
            )?;
            for row in sc.exposure {
                let t = serde_json::to_value(row.exposure_type)?;
                let k = (
                    a,
                    row.direction.clone(),
                    row.category.clone(),
                    t.as_str().unwrap_or("").to_string(),
                    row.delisted,
                );
                *ours.entry(k).or_default() += row.sats;
            }
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let screen_seconds = t1.elapsed().as_secs_f64();
    let mut exp_diffs = Vec::new();
    let mut differing = 0u64;
    let keys: std::collections::BTreeSet<&ExpKey> = ours.keys().chain(spark.keys()).collect();
    for k in &keys {
        let (o, sp) = (ours.get(*k).copied(), spark.get(*k).copied());
        if o != sp {
            differing += 1;
            if exp_diffs.len() < show {
                exp_diffs.push(serde_json::json!({"address": idx.render_addr(k.0), "direction": k.1, "category": k.2, "type": k.3, "delisted": k.4, "cointrail_sats": o, "spark_sats": sp}));
            }
        }
    }
    let taint = match trace {
        None => serde_json::Value::Null,
        Some(t) => {
            let src = PathBuf::from(s.meta["source"].as_str().unwrap_or(""));
            compare_taint(&src.join("taint"), t, show)?
        }
    };
    let equal = same_partition
        && same_id == m as u64
        && differing == 0
        && (taint.is_null() || taint["equal"] == true);
    let v = serde_json::json!({
        "equal": equal,
        "clusters": {
            "addresses": m,
            "same_partition": same_partition,
            "addresses_in_a_differing_cluster": split_or_joined,
            "same_cluster_id": same_id,
            "differing": cl_diffs,
        },
        "exposure": {
            "imported": s.meta["exposure_imported"],
            "addresses_screened": if s.meta["exposure_imported"] == true { subjects.len() } else { 0 },
            "max_hops": max_hops,
            "rows": keys.len(),
            "rows_cointrail": ours.len(),
            "rows_spark": spark.len(),
            "differing_rows": differing,
            "differing": exp_diffs,
            "cointrail_screen_seconds": screen_seconds,
        },
        "taint": taint,
        "seconds": t0.elapsed().as_secs_f64(),
    });
    if g.json {
        crate::print_json(&v)?;
    } else {
        println!(
            "clusters: {m} addresses, {}same partition ({} with the same cluster id)",
            if same_partition { "" } else { "NOT the " },
            same_id
        );
        for d in &cl_diffs {
            println!("  {d}");
        }
        if s.meta["exposure_imported"] == true {
            println!(
                "exposure: {} addresses screened ({max_hops} hops, cointrail {:.1}s), {} rows, {differing} differ",
                subjects.len(),
                screen_seconds,
                keys.len()
            );
            for d in &exp_diffs {
                println!("  {d}");
            }
        } else {
            println!("exposure: none imported (the run did not compute it)");
        }
        if !v["taint"].is_null() {
            println!(
                "taint: {} traced outputs (cointrail), {} (Spark), {} differ",
                v["taint"]["rows_cointrail"],
                v["taint"]["rows_spark"],
                v["taint"]["differing_rows"]
            );
            for d in v["taint"]["differing"].as_array().into_iter().flatten() {
                println!("  {d}");
            }
        }
    }
    if !equal {
        bail!("Spark's imported results differ from cointrail's own (see above)");
    }
    Ok(())
}

type TaintRow = (i64, i64, Option<String>);

/// (case, model, output_id) -> (tainted, hops, stop_reason) of every row of `files`.
fn taint_rows(
    files: &[PathBuf],
    cols: [&str; 6],
) -> Result<BTreeMap<(String, String, i64), TaintRow>> {
    let mut m = BTreeMap::new();
    for f in files {
        for (r, row) in read_columns(f, &cols)?.iter().enumerate() {
            let case = text(&row[0], f, r, cols[0])?.to_string();
            let model = text(&row[1], f, r, cols[1])?.to_string();
            let o = int(&row[2], f, r, cols[2], i64::MAX as u64)? as i64;
            let t = int(&row[3], f, r, cols[3], i64::MAX as u64)? as i64;
            let h = int(&row[4], f, r, cols[4], i64::MAX as u64)? as i64;
            let why = match &row[5] {
                Val::Null => None,
                v => Some(text(v, f, r, cols[5])?.to_string()),
            };
            if m.insert((case, model, o), (t, h, why)).is_some() {
                bail!(
                    "{} row {r}: output_id {o} appears twice for its case and model",
                    f.display()
                );
            }
        }
    }
    Ok(m)
}

/// Spark's taint rows against cointrail's (the export's `trace.parquet`).
fn compare_taint(spark_dir: &Path, trace: &Path, show: usize) -> Result<serde_json::Value> {
    let cols = [
        "case",
        "model",
        "output_id",
        "tainted",
        "hops",
        "stop_reason",
    ];
    let ours = taint_rows(&[trace.to_path_buf()], cols)?;
    let theirs = taint_rows(&parts(spark_dir)?, cols)?;
    // Only the cases the run traced.
    let cases: std::collections::BTreeSet<&String> = theirs.keys().map(|k| &k.0).collect();
    let ours: BTreeMap<_, _> = ours
        .into_iter()
        .filter(|(k, _)| cases.contains(&k.0))
        .collect();
    let keys: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    let mut differing = 0u64;
    let mut diffs = Vec::new();
    for k in &keys {
        let (o, t) = (ours.get(*k), theirs.get(*k));
        if o != t {
            differing += 1;
            if diffs.len() < show {
                diffs.push(serde_json::json!({"case": k.0, "model": k.1, "output_id": k.2,
                    "cointrail": o.map(|x| serde_json::json!({"tainted": x.0, "hops": x.1, "stop_reason": x.2})),
                    "spark": t.map(|x| serde_json::json!({"tainted": x.0, "hops": x.1, "stop_reason": x.2}))}));
            }
        }
    }
    Ok(serde_json::json!({
        "equal": differing == 0 && !ours.is_empty(),
        "cases": cases,
        "rows_cointrail": ours.len(),
        "rows_spark": theirs.len(),
        "differing_rows": differing,
        "differing": diffs,
    }))
}

pub fn run(cmd: SparkCmd, g: &Global) -> Result<()> {
    match cmd {
        SparkCmd::Import { results } => {
            let v = import(g, &results)?;
            if g.json {
                return crate::print_json(&v);
            }
            println!(
                "imported {} addresses in {} clusters (largest {}) and {} exposure rows of {} addresses from {} in {:.1}s",
                v["addresses"], v["clusters"], v["largest_cluster"], v["exposure_rows"], v["exposure_addresses"],
                results.display(),
                v["seconds"].as_f64().unwrap_or(0.0)
            );
            if v["exposure_imported"] != true {
                println!("(no exposure/ in the results: the run did not compute exposure)");
            }
            if v["addresses"] != v["index_addresses"] {
                println!(
                    "the index has {} addresses, the run covered the first {}: export and run again for the rest",
                    v["index_addresses"], v["addresses"]
                );
            }
            Ok(())
        }
        SparkCmd::Show {
            address,
            limit,
            offset,
        } => show(g, &address, limit, offset),
        SparkCmd::Export { out } => export(g, out),
        SparkCmd::Compare {
            sample,
            show,
            trace,
        } => compare(g, sample, show, trace.as_deref()),
    }
}
