//! The Spark jobs (spark/) equal cointrail's own answers on the demo chain: the same
//! cluster of every address, the same exposure rows of every address (category, type,
//! direction, satoshis), the same FIFO and haircut taint of every output of a case.
//! Spark runs in local mode, all jobs in one JVM. Java 17 and pyspark come from
//! scripts/install-spark.sh (scripts/test.sh runs it and passes COINTRAIL_SPARK_PYTHON).

use cointrail_chain::view::ChainView;
use cointrail_engine::{Engine, Subject};
use cointrail_export::table::{read_table, ColSpec, Kind, TableSpec, TableWriter, Val};
use cointrail_risk::exposure::ExposureParams;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{cli, json, try_cli};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python with pyspark: COINTRAIL_SPARK_PYTHON, which scripts/test.sh (the
/// README's test command) sets from scripts/install-spark.sh. Unset, the test fails and
/// says how to set it: a Spark check that skips itself would pass without checking.
fn spark_python() -> PathBuf {
    match std::env::var_os("COINTRAIL_SPARK_PYTHON") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(
                p.exists(),
                "COINTRAIL_SPARK_PYTHON={} does not exist: run scripts/install-spark.sh and set COINTRAIL_SPARK_PYTHON to the python it prints",
                p.display()
            );
            p
        }
        _ => panic!(
            "COINTRAIL_SPARK_PYTHON is not set: this test runs the Spark jobs (spark/) with pyspark and Java 17. \
             Run `COINTRAIL_SPARK_PYTHON=$(scripts/install-spark.sh) cargo test -p cointrail --test spark_equality` \
             (scripts/install-spark.sh installs them and prints the python; scripts/test.sh does this)"
        ),
    }
}

/// Every row of a result directory Spark wrote (its part files).
fn spark_rows(dir: &Path) -> Vec<Vec<Val>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("part-") && name.ends_with(".parquet") {
            v.extend(read_table(&p).unwrap().0);
        }
    }
    v
}

/// The demo, its export and the Spark jobs over it: (data dir, dataset, results).
fn run_spark(work: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let python = spark_python();
    let dir = work.join("data");
    json(&dir, &["demo"]);
    let ds = work.join("ds");
    let out = work.join("spark-out");
    json(
        &dir,
        &[
            "export",
            "--format",
            "parquet",
            ds.to_str().unwrap(),
            "--partition-blocks",
            "300",
            "--case",
            "sim-heist-0",
        ],
    );
    let t0 = std::time::Instant::now();
    let run = Command::new(&python)
        .args(["-m", "cointrail_spark"])
        .arg(&ds)
        .arg(&out)
        .args(["--case", "sim-heist-0", "--master", "local[2]"])
        .args(["--exposure-every", &EVERY.to_string()])
        .env("PYTHONPATH", repo().join("spark"))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the Spark jobs failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!(
        "spark jobs: {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&run.stdout)
    );

    (dir, ds, out)
}

type ExpKey = (u32, String, String, String, bool);

/// Exposure is compared on every EVERY-th address (79 of the demo's 78,150), three hops
/// each way, every row to the satoshi. The walks fan out: these 79 addresses make about
/// 40,000 items at the third hop backward and 43,000 forward, 1.1 million split rows in
/// all (`COINTRAIL_SPARK_DEBUG=1` prints them), which is what a 2-core box does in Spark's
/// local mode in a test's time.
const EVERY: u32 = 1000;

#[test]
fn spark_jobs_equal_cointrail_on_the_demo_chain() {
    // COINTRAIL_SPARK_RESULTS=DIR compares a run made by hand (DIR/d: the demo data
    // directory, DIR/pq: its export with --case sim-heist-0, DIR/out: the jobs' results with
    // --exposure-every 1000) instead of making one: for working on the jobs.
    let d = tempfile::tempdir().unwrap();
    let (dir, ds, out) = match std::env::var("COINTRAIL_SPARK_RESULTS") {
        Ok(r) => {
            let r = PathBuf::from(r);
            (r.join("d"), r.join("pq"), r.join("out"))
        }
        Err(_) => run_spark(d.path()),
    };
    let mut e = Engine::open(&dir).unwrap();
    cointrail_engine::wiring::attach(&mut e).unwrap();
    let idx = &e.index;

    // Clusters: the same id (the smallest address of the cluster) for every address.
    let spark_cl: BTreeMap<u32, u32> = spark_rows(&out.join("clusters"))
        .iter()
        .map(|r| (r[0].i().unwrap() as u32, r[2].i().unwrap() as u32))
        .collect();
    assert_eq!(spark_cl.len() as u64, idx.addr_count());
    let mut multi = 0;
    for (&a, &c) in &spark_cl {
        assert_eq!(Some(c as u64), e.entity_id(a), "cluster of address {a}");
        multi += (c != a) as u32;
    }
    assert!(
        multi > 1000,
        "the demo has real multi-input clusters ({multi} addresses joined)"
    );

    // Exposure of every address: the same rows, to the satoshi. No step bound on either side.
    let mut spark_exp: BTreeMap<ExpKey, u64> = BTreeMap::new();
    for r in spark_rows(&out.join("exposure")) {
        let k = (
            r[0].i().unwrap() as u32,
            r[2].s().unwrap().to_string(),
            r[3].s().unwrap().to_string(),
            r[4].s().unwrap().to_string(),
            r[5].b().unwrap(),
        );
        *spark_exp.entry(k).or_default() += r[6].i().unwrap() as u64;
    }
    let params = ExposureParams {
        max_hops: 3,
        max_steps: usize::MAX,
        max_edges: usize::MAX,
    };
    let mut ours: BTreeMap<ExpKey, u64> = BTreeMap::new();
    for a in (0..idx.addr_count() as u32).step_by(EVERY as usize) {
        let s = e
            .screen_with(&Subject::Address(idx.render_addr(a)), &params)
            .unwrap();
        for row in s.exposure {
            let t = serde_json::to_value(row.exposure_type).unwrap();
            let k = (
                a,
                row.direction.clone(),
                row.category.clone(),
                t.as_str().unwrap().to_string(),
                row.delisted,
            );
            *ours.entry(k).or_default() += row.sats;
        }
    }
    assert!(
        ours.len() > 100,
        "the demo has exposure to compare ({} rows)",
        ours.len()
    );
    let kinds: std::collections::BTreeSet<_> =
        ours.keys().map(|k| (k.1.clone(), k.3.clone())).collect();
    assert!(
        kinds.len() >= 5,
        "received and sent, direct and indirect (and ownership) rows are compared: {kinds:?}"
    );
    let diff: Vec<_> = ours
        .iter()
        .filter(|(k, v)| spark_exp.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), *v, spark_exp.get(k).copied()))
        .chain(
            spark_exp
                .iter()
                .filter(|(k, _)| !ours.contains_key(*k))
                .map(|(k, v)| (k.clone(), 0, Some(*v))),
        )
        .take(10)
        .collect();
    assert!(
        diff.is_empty(),
        "exposure differs (key, cointrail, spark): {diff:?}"
    );

    let own_exposure = ours;

    // Taint: the case's traced outputs under FIFO and haircut, each with its satoshis,
    // hops and why it stopped.
    type TaintKey = (String, u64);
    let row_of = |r: &[Val], model: usize, o: usize, t: usize, h: usize, why: usize| {
        (
            (r[model].s().unwrap().to_string(), r[o].i().unwrap() as u64),
            (
                r[t].i().unwrap(),
                r[h].i().unwrap(),
                r[why].s().map(str::to_string),
            ),
        )
    };
    let (trace, _) = read_table(&ds.join("trace.parquet")).unwrap();
    let ours: BTreeMap<TaintKey, _> = trace.iter().map(|r| row_of(r, 1, 2, 7, 8, 10)).collect();
    let theirs: BTreeMap<TaintKey, _> = spark_rows(&out.join("taint"))
        .iter()
        .map(|r| row_of(r, 1, 2, 3, 4, 5))
        .collect();
    assert!(ours.len() > 1000, "{} traced outputs", ours.len());
    let diff: Vec<_> = ours
        .iter()
        .filter(|(k, v)| theirs.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone(), theirs.get(k).cloned()))
        .take(10)
        .collect();
    assert!(
        diff.is_empty(),
        "taint differs (key, cointrail, spark): {diff:?}"
    );
    assert_eq!(ours.len(), theirs.len());

    drop(e);

    // What cointrail reads back: Spark's results imported into the data directory, then
    // answered from there (`spark show`, `spark export`) and compared (`spark compare`).
    read_back(&dir, &ds, &out, d.path(), &spark_cl, &own_exposure);
}

/// A Spark-like part file with these columns (all required but `nullable`).
fn part(path: &Path, cols: &'static [ColSpec], rows: Vec<Vec<Val>>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = TableSpec { name: "test", cols };
    let mut w = TableWriter::create(path, spec, &[]).unwrap();
    for r in rows {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
}

const fn col(name: &'static str, kind: Kind) -> ColSpec {
    ColSpec {
        name,
        kind,
        optional: false,
        doc: "",
    }
}

static CLUSTER_COLS: [ColSpec; 3] = [
    col("address_id", Kind::Int64),
    col("address", Kind::Str),
    col("cluster_id", Kind::Int64),
];
static NO_CLUSTER_ID: [ColSpec; 2] = [col("address_id", Kind::Int64), col("address", Kind::Str)];

fn read_back(
    dir: &Path,
    ds: &Path,
    out: &Path,
    work: &Path,
    spark_cl: &BTreeMap<u32, u32>,
    own_exposure: &BTreeMap<ExpKey, u64>,
) {
    let n = spark_cl.len() as u64;
    let spark_exposure_rows = spark_rows(&out.join("exposure")).len() as u64;
    let im = json(dir, &["spark", "import", out.to_str().unwrap()]);
    assert_eq!(im["addresses"], n, "{im}");
    assert_eq!(im["exposure_rows"], spark_exposure_rows, "{im}");
    assert_eq!(im["run"]["params"]["exposure_every"], EVERY, "{im}");

    // The whole partition through the command line: `spark export` is `cluster export`.
    assert_eq!(
        cli(dir, &["spark", "export"]),
        cli(dir, &["cluster", "export"]),
        "spark export and cluster export differ"
    );
    // One multi-address cluster and one screened address, as `cluster show` and `screen`.
    let (&a, &c) = spark_cl.iter().find(|(a, c)| **a != **c).unwrap();
    let idx = cointrail_index::Index::open_reader(&dir.join("index")).unwrap();
    let addr = idx.render_addr(a);
    let ours = json(dir, &["cluster", "show", &addr]);
    let theirs = json(dir, &["spark", "show", &addr]);
    assert_eq!(theirs["cluster_id"], c);
    assert_eq!(theirs["cluster_id"], ours["cluster"]["cluster_id"]);
    assert_eq!(theirs["cluster_size"], ours["cluster"]["size"]);
    let screened = (0..n as u32)
        .step_by(EVERY as usize)
        .map(|a| idx.render_addr(a))
        .find(|x| {
            json(dir, &["spark", "show", x])["exposure"]
                .as_array()
                .is_some_and(|v| v.len() >= 2)
        })
        .expect("a screened address with exposure rows");
    // Its rows as `spark show` gives them are the rows cointrail's own screening gave.
    let theirs = json(dir, &["spark", "show", &screened]);
    let sa = idx.parse_address(&screened).unwrap();
    let mut shown: BTreeMap<ExpKey, u64> = BTreeMap::new();
    for r in theirs["exposure"].as_array().unwrap() {
        let k = (
            sa,
            r["direction"].as_str().unwrap().to_string(),
            r["category"].as_str().unwrap().to_string(),
            r["type"].as_str().unwrap().to_string(),
            r["delisted"].as_bool().unwrap(),
        );
        *shown.entry(k).or_default() += r["sats"].as_u64().unwrap();
    }
    let own: BTreeMap<ExpKey, u64> = own_exposure
        .iter()
        .filter(|(k, _)| k.0 == sa)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(shown, own, "spark show {screened}");

    // Everything at once: every address's cluster, every screened address's rows, the taint.
    let cmp = json(
        dir,
        &[
            "spark",
            "compare",
            "--trace",
            ds.join("trace.parquet").to_str().unwrap(),
        ],
    );
    assert_eq!(cmp["equal"], true, "{cmp}");
    assert_eq!(cmp["clusters"]["same_cluster_id"], n, "{cmp}");
    assert!(cmp["exposure"]["rows"].as_u64().unwrap() > 100, "{cmp}");
    assert_eq!(
        cmp["exposure"]["addresses_screened"],
        n.div_ceil(EVERY as u64),
        "{cmp}"
    );
    assert!(
        cmp["taint"]["rows_cointrail"].as_u64().unwrap() > 1000,
        "{cmp}"
    );

    // A clustering that differs (one joined address split off): imported, and compare says so.
    let rows: Vec<Vec<Val>> = spark_cl
        .iter()
        .map(|(&x, &cx)| {
            let cx = if x == a { a } else { cx };
            vec![x.into(), idx.render_addr(x).into(), cx.into()]
        })
        .collect();
    let cluster_rows = |f: &dyn Fn(u32, Vec<Val>) -> Vec<Val>| -> Vec<Vec<Val>> {
        rows.iter()
            .map(|r| f(r[0].i().unwrap() as u32, r.clone()))
            .collect()
    };
    let split = work.join("split");
    part(
        &split.join("clusters/part-00000.parquet"),
        &CLUSTER_COLS,
        cluster_rows(&|_, r| r),
    );
    json(dir, &["spark", "import", split.to_str().unwrap()]);
    let (ok, o, _) = try_cli(dir, &["--json", "spark", "compare"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert!(!ok, "compare must fail on a different clustering: {v}");
    assert_eq!(v["clusters"]["same_partition"], false, "{v}");
    assert_eq!(v["clusters"]["same_cluster_id"], n - 1, "{v}");

    // Bad files: a clear error naming the file and the field, and the last import kept.
    let bad =
        |name: &str, sub: &str, cols: &'static [ColSpec], rows: Vec<Vec<Val>>, want: &[&str]| {
            let r = work.join(name);
            let f = r.join(sub).join("part-00000.parquet");
            part(&f, cols, rows);
            if sub == "exposure" {
                part(
                    &r.join("clusters/part-00000.parquet"),
                    &CLUSTER_COLS,
                    cluster_rows(&|_, r| r),
                );
            }
            let (ok, _, err) = try_cli(dir, &["spark", "import", r.to_str().unwrap()]);
            assert!(!ok, "{name}: imported");
            assert!(
                err.contains(f.to_str().unwrap()) || err.contains(r.join(sub).to_str().unwrap()),
                "{name}: the file is named: {err}"
            );
            for w in want {
                assert!(err.contains(w), "{name}: {w:?} in: {err}");
            }
            assert!(!err.contains("panicked"), "{err}");
        };
    bad(
        "wrong-address",
        "clusters",
        &CLUSTER_COLS,
        cluster_rows(&|x, mut r| {
            if x == 5 {
                r[1] = idx.render_addr(6).into();
            }
            r
        }),
        &["row 5", "field `address`", "another chain"],
    );
    bad(
        "no-cluster-id",
        "clusters",
        &NO_CLUSTER_ID,
        cluster_rows(&|_, r| r[..2].to_vec()),
        &["no column `cluster_id`"],
    );
    bad(
        "not-smallest",
        "clusters",
        &CLUSTER_COLS,
        cluster_rows(&|x, mut r| {
            if x == c {
                r[2] = a.into();
            }
            r
        }),
        &["field `cluster_id`", "smallest"],
    );
    bad(
        "beyond-index",
        "clusters",
        &CLUSTER_COLS,
        cluster_rows(&|x, mut r| {
            if x == 0 {
                r[0] = (n + 7).into();
            }
            r
        }),
        &["field `address_id`", "another chain or a later export"],
    );
    static EXPOSURE_COLS: [ColSpec; 8] = [
        col("address_id", Kind::Int64),
        col("address", Kind::Str),
        col("direction", Kind::Str),
        col("category", Kind::Str),
        col("type", Kind::Str),
        col("delisted", Kind::Bool),
        col("sats", Kind::Int64),
        col("min_hops", Kind::Int64),
    ];
    bad(
        "bad-direction",
        "exposure",
        &EXPOSURE_COLS,
        vec![vec![
            0u32.into(),
            idx.render_addr(0).into(),
            "sideways".into(),
            "exchange".into(),
            "direct".into(),
            false.into(),
            5u64.into(),
            1u64.into(),
        ]],
        &["row 0", "field `direction`", "sideways"],
    );
    bad(
        "negative-sats",
        "exposure",
        &EXPOSURE_COLS,
        vec![vec![
            0u32.into(),
            idx.render_addr(0).into(),
            "received".into(),
            "exchange".into(),
            "direct".into(),
            false.into(),
            (-5i64).into(),
            1u64.into(),
        ]],
        &["row 0", "field `sats`", "-5"],
    );
    // Nothing of those replaced the import before them.
    let v = json(dir, &["spark", "show", &addr]);
    assert_eq!(v["cluster_id"], a, "the split import stands: {v}");
}
