//! `export --format parquet`: the files read back equal the index, and a second export
//! writes only the height ranges the manifest does not hold (new blocks, or blocks of a
//! branch that was reorganised away).

use cointrail_chain::view::{display_txid, ChainView, Prevout};
use cointrail_export::table::{read_table, Val};
use std::collections::BTreeMap;
use std::path::Path;

mod support;
use support::json;

/// Every row of a chain table, over the partitions in order.
fn rows(ds: &Path, table: &str) -> Vec<Vec<Val>> {
    let mut files: Vec<_> = std::fs::read_dir(ds.join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| read_table(f).unwrap().0)
        .collect()
}

#[test]
fn the_files_equal_the_index_and_a_second_export_adds_only_missing_ranges() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    json(&dir, &["demo"]);
    let ds = d.path().join("ds");
    let ds_s = ds.to_str().unwrap();
    let r = json(
        &dir,
        &[
            "export",
            "--format",
            "parquet",
            ds_s,
            "--partition-blocks",
            "300",
            "--case",
            "sim-heist-0",
        ],
    );
    assert_eq!(r["new_partitions"].as_array().unwrap().len(), 3, "{r}");

    let idx = cointrail_index::Index::open_reader(&dir.join("index")).unwrap();
    let txs = rows(&ds, "transactions");
    let ins = rows(&ds, "inputs");
    let outs = rows(&ds, "outputs");
    let addrs = rows(&ds, "addresses");
    let blocks = rows(&ds, "blocks");
    assert_eq!(txs.len() as u64, idx.tx_count());
    assert_eq!(blocks.len() as u64, idx.block_count());
    assert_eq!(addrs.len() as u64, idx.addr_count());
    assert_eq!(
        ins.len() as u64,
        idx.tx_inputs(idx.tx_count() as u32 - 1).end
    );
    assert_eq!(
        outs.len() as u64,
        idx.tx_outputs(idx.tx_count() as u32 - 1).end
    );
    for (t, row) in txs.iter().enumerate() {
        let t = t as u32;
        assert_eq!(row[0].i(), Some(t as i64));
        assert_eq!(row[1].s(), Some(display_txid(idx.txid(t)).as_str()));
        assert_eq!(row[2].i(), Some(idx.tx_height(t) as i64));
        assert_eq!(row[13].b(), Some(idx.is_coinbase(t)));
        let out_sum: u64 = idx.tx_outputs(t).map(|o| idx.output_value(o)).sum();
        assert_eq!(row[11].i(), Some(out_sum as i64));
        if !idx.is_coinbase(t) {
            let in_sum: u64 = idx.tx_inputs(t).map(|i| idx.input_value(i).unwrap()).sum();
            assert_eq!(
                row[12].i(),
                Some((in_sum - out_sum) as i64),
                "fee of tx {t}"
            );
        }
    }
    for (i, row) in ins.iter().enumerate() {
        assert_eq!(row[0].i(), Some(i as i64));
        match idx.input_prevout(i as u64) {
            Prevout::Output(o) => {
                assert_eq!(row[7].i(), Some(o as i64));
                assert_eq!(row[12].i(), Some(idx.output_value(o) as i64));
                assert_eq!(row[11].i(), idx.output_addr(o).map(|a| a as i64));
                assert_eq!(row[6].i(), Some(idx.output_vout(o) as i64));
            }
            Prevout::Coinbase => assert_eq!(row[5], Val::Null),
            Prevout::External { .. } => panic!("the demo starts at genesis"),
        }
    }
    for (o, row) in outs.iter().enumerate() {
        let o = o as u64;
        assert_eq!(row[0].i(), Some(o as i64));
        assert_eq!(row[1].i(), Some(idx.output_tx(o) as i64));
        assert_eq!(row[8].i(), Some(idx.output_value(o) as i64));
        assert_eq!(row[7].i(), idx.output_addr(o).map(|a| a as i64));
        assert_eq!(
            row[6].s().map(str::to_string),
            idx.output_addr(o).map(|a| idx.render_addr(a))
        );
    }
    for (a, row) in addrs.iter().enumerate() {
        assert_eq!(row[1].s(), Some(idx.render_addr(a as u32).as_str()));
    }
    // Snapshots: labels and the case's traces are there; every address has a cluster.
    let (clusters, _) = read_table(&ds.join("clusters.parquet")).unwrap();
    assert_eq!(clusters.len(), addrs.len());
    assert!(!read_table(&ds.join("labels.parquet")).unwrap().0.is_empty());
    let (trace, _) = read_table(&ds.join("trace.parquet")).unwrap();
    let models: std::collections::BTreeSet<_> = trace
        .iter()
        .map(|r| r[1].s().unwrap().to_string())
        .collect();
    assert_eq!(
        models.into_iter().collect::<Vec<_>>(),
        vec!["fifo", "haircut"]
    );

    // Nothing new: nothing written.
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let first = ds.join("outputs/h000000000-000000299.parquet");
    let before = mtime(&first);
    let r = json(&dir, &["export", "--format", "parquet", ds_s]);
    assert!(r["new_partitions"].as_array().unwrap().is_empty(), "{r}");
    // As if the last export had been made when the chain ended at height 599: the next
    // one writes 600.. only and leaves the earlier files alone.
    let mpath = ds.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    let last = m["partitions"].as_array_mut().unwrap().pop().unwrap();
    assert_eq!(last["from_height"], 600);
    std::fs::write(&mpath, m.to_string()).unwrap();
    let r = json(&dir, &["export", "--format", "parquet", ds_s]);
    assert_eq!(r["new_partitions"], serde_json::json!([[600, 810]]), "{r}");
    assert_eq!(mtime(&first), before, "an earlier partition was rewritten");
    // A partition whose last block is no longer on the chain (a reorganisation) is written again.
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["partitions"][1]["last_block_hash"] = serde_json::json!("00".repeat(32));
    std::fs::write(&mpath, m.to_string()).unwrap();
    let r = json(&dir, &["export", "--format", "parquet", ds_s]);
    assert_eq!(
        r["dropped_partitions"],
        serde_json::json!([[300, 599], [600, 810]]),
        "{r}"
    );
    assert_eq!(
        r["new_partitions"],
        serde_json::json!([[300, 599], [600, 810]]),
        "{r}"
    );
    assert_eq!(mtime(&first), before);
    let again: BTreeMap<String, u64> = serde_json::from_value(r["rows"].clone()).unwrap();
    assert_eq!(again["blocks"], 511);
}
