//! Import speed of the real label sources and snapshot lookup latency.
//! `cargo bench -p cointrail-tags` (needs /work/shared/data; the SDN part uses tests/data).

use cointrail_tags::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let mut store = TagStore::open(tmp.path().join("bench.redb")).unwrap();

    let t = Instant::now();
    let (v, sdn) =
        parse_sdn_advanced_file(&root.join("tests/data/ofac-2025-11-19/sdn_advanced.xml.bz2"))
            .unwrap();
    let parse = t.elapsed();
    let n = sdn.len();
    store.import(OFAC_SOURCE, &v, sdn).unwrap();
    println!(
        "sdn_advanced.xml.bz2: {n} labels, parse {:.2?}, parse+import {:.2?}",
        parse,
        t.elapsed()
    );

    let packs = root.join("../../../shared/data/labels/graphsense-tagpacks/packs");
    if packs.exists() {
        let mut files = Vec::new();
        yaml_files(&packs, &mut files);
        files.sort();
        let t = Instant::now();
        let mut tags = 0;
        let mut parse_t = std::time::Duration::ZERO;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let p = Instant::now();
            let name = format!("graphsense:{}", f.file_stem().unwrap().to_string_lossy());
            let ls = parse_tagpack(&text, &f.display().to_string(), &name).unwrap();
            parse_t += p.elapsed();
            tags += ls.len();
            store.import(&name, "2025-01-01", ls).unwrap();
        }
        println!(
            "graphsense packs: {} files, {tags} tags, parse {:.2?}, parse+import {:.2?}",
            files.len(),
            parse_t,
            t.elapsed()
        );
    } else {
        println!("SKIPPED graphsense packs: {} absent", packs.display());
    }

    let t = Instant::now();
    let snap = TagSnapshot::build(&store, "BTC", None).unwrap();
    println!(
        "snapshot BTC: {} addresses, built in {:.2?}",
        snap.len(),
        t.elapsed()
    );
    let mut addrs: Vec<String> = Vec::new();
    store
        .for_each(None, |l| {
            if l.currency == "BTC" {
                if let Some(a) = l.address() {
                    addrs.push(a.to_string());
                }
            }
            addrs.len() < 100_000
        })
        .unwrap();
    let misses: Vec<String> = addrs.iter().map(|a| format!("{a}x")).collect();
    for (what, keys) in [("hit", &addrs), ("miss", &misses)] {
        let mut per = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let mut found = 0usize;
            for a in keys.iter() {
                found += snap.get(std::hint::black_box(a)).len();
            }
            std::hint::black_box(found);
            per.push(t.elapsed().as_nanos() as f64 / keys.len() as f64);
        }
        per.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "snapshot lookup ({what}): median {:.0} ns over {} keys x5",
            per[2],
            keys.len()
        );
    }
    let t = Instant::now();
    let k = 2000.min(addrs.len());
    for a in &addrs[..k] {
        std::hint::black_box(store.labels_for_address("BTC", a, None).unwrap());
    }
    println!(
        "store labels_for_address: {:.1} µs each over {k}",
        t.elapsed().as_secs_f64() * 1e6 / k as f64
    );
}
