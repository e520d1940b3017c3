//! `export --format parquet OUT_DIR`: the whole Bitcoin index as a partitioned Parquet
//! dataset (blocks, transactions, inputs with what they spend, outputs, addresses, by
//! height range), plus snapshots of the clustering, the labels and cases' traces; read by
//! the Spark jobs in `spark/`. Schemas: `cointrail_export::tables` (spark/SCHEMAS.md).
//!
//! Running it again after more blocks were indexed writes only the new height ranges
//! (the dataset's `manifest.json` says what is there); the snapshots are rewritten.

use anyhow::{bail, Context, Result};
use cointrail_chain::address::ScriptType;
use cointrail_chain::view::{display_txid, ChainView, Prevout, TxNum};
use cointrail_engine::Engine;
use cointrail_export::dataset::{partition_file, Manifest, Partition, Snapshot};
use cointrail_export::table::TableWriter;
use cointrail_export::tables;
use cointrail_index::Index;
use cointrail_trace::{Model, TraceParams};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

use crate::cmd::evm_export::ExportArgs;
use crate::Global;

/// BigQuery's names for script types (its `type` column).
pub fn type_name(t: ScriptType) -> &'static str {
    match t {
        ScriptType::P2pk => "pubkey",
        ScriptType::P2pkh => "pubkeyhash",
        ScriptType::P2sh => "scripthash",
        ScriptType::P2wpkh => "witness_v0_keyhash",
        ScriptType::P2wsh => "witness_v0_scripthash",
        ScriptType::P2tr => "witness_v1_taproot",
        ScriptType::Multisig => "multisig",
        ScriptType::OpReturn => "nulldata",
        ScriptType::NonStandard => "nonstandard",
    }
}

#[derive(Serialize, Default)]
struct Report {
    out_dir: String,
    network: String,
    tip_height: Option<u32>,
    /// Partitions written by this run (height ranges).
    new_partitions: Vec<(u32, u32)>,
    /// Partitions dropped because their blocks left the best chain.
    dropped_partitions: Vec<(u32, u32)>,
    partitions: usize,
    /// Rows written by this run, per table.
    rows: BTreeMap<String, u64>,
    /// Snapshot tables rewritten, with their rows.
    snapshots: BTreeMap<String, u64>,
    notes: Vec<String>,
    seconds: f64,
}

const CHAIN_TABLE_NAMES: [&str; 5] = ["blocks", "transactions", "inputs", "outputs", "addresses"];

pub fn run(a: ExportArgs, g: &Global) -> Result<()> {
    let t0 = std::time::Instant::now();
    if !g.index_dir().join("manifest.json").exists() {
        bail!(
            "no Bitcoin index in {}: run `cointrail ingest` first",
            g.data_dir.display()
        );
    }
    let e = crate::cmd::screen::open_engine(g, a.rules.as_ref())?;
    let idx = &e.index;
    let out = &a.out_dir;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for t in CHAIN_TABLE_NAMES {
        std::fs::create_dir_all(out.join(t))
            .with_context(|| format!("creating {}", out.join(t).display()))?;
    }
    let network = idx.network_name().to_string();
    let mut m = match Manifest::load(out)? {
        Some(m) if m.network != network => bail!(
            "{} holds a {} export; this index is {network}: export into another folder",
            out.display(),
            m.network
        ),
        Some(m) => m,
        None => Manifest::new(&network, a.partition_blocks),
    };
    let mut report = Report {
        out_dir: out.display().to_string(),
        network,
        tip_height: idx.tip_height(),
        ..Report::default()
    };
    // A partition whose last block is no longer the indexed block at that height was on a
    // branch a reorganisation removed: it and everything after it are written again.
    let start = idx.start_height();
    let hash_at = |h: u32| -> Option<String> {
        let i = h.checked_sub(start)? as u64;
        (i < idx.block_count()).then(|| display_txid(idx.block_hash(i)))
    };
    if let Some(k) = m
        .partitions
        .iter()
        .position(|p| hash_at(p.to_height).as_deref() != Some(p.last_block_hash.as_str()))
    {
        report.dropped_partitions = m.partitions[k..]
            .iter()
            .map(|p| (p.from_height, p.to_height))
            .collect();
        m.drop_from(out, k, &CHAIN_TABLE_NAMES)?;
        m.save(out)?;
    }
    if let Some(tip) = idx.tip_height() {
        let from = m.next_height().unwrap_or(start).max(start);
        let blocks = (tip + 1).saturating_sub(from) as u64;
        let bar = crate::progress::bar(g, blocks, "export");
        let per = m.partition_blocks.max(1);
        let mut h = from;
        while h <= tip {
            let to = (h + per - 1).min(tip);
            let p = write_partition(idx, out, &e, h, to, &bar)?;
            for (t, n) in &p.rows {
                *report.rows.entry(t.clone()).or_default() += n;
            }
            report.new_partitions.push((h, to));
            m.partitions.push(p);
            // Committed partition by partition: an interrupted export keeps what it wrote.
            m.save(out)?;
            h = to + 1;
        }
        bar.finish_and_clear();
    }
    write_snapshots(&e, g, &a, out, &mut m, &mut report)?;
    m.save(out)?;
    report.partitions = m.partitions.len();
    report.seconds = t0.elapsed().as_secs_f64();
    if g.json {
        return crate::print_json(&report);
    }
    let rows: Vec<String> = report
        .rows
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    match (report.new_partitions.first(), report.new_partitions.last()) {
        (Some(f), Some(l)) => println!(
            "heights {}..={} written to {} in {} partition(s): {}",
            f.0,
            l.1,
            report.out_dir,
            report.new_partitions.len(),
            rows.join(", ")
        ),
        _ => println!(
            "no new blocks since the last export to {} ({} partitions)",
            report.out_dir, report.partitions
        ),
    }
    if !report.dropped_partitions.is_empty() {
        println!(
            "rewrote {} partition(s) from height {}: the chain was reorganised",
            report.dropped_partitions.len(),
            report.dropped_partitions[0].0
        );
    }
    for (t, n) in &report.snapshots {
        println!("{t}: {n} rows");
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    println!("({:.1} s)", report.seconds);
    Ok(())
}

fn meta(idx: &Index) -> Vec<(&'static str, String)> {
    vec![
        ("cointrail.network", idx.network_name().to_string()),
        (
            "cointrail.tip_height",
            idx.tip_height().map(|h| h.to_string()).unwrap_or_default(),
        ),
    ]
}

/// Write heights `from..=to` of every chain table.
fn write_partition(
    idx: &Index,
    out: &Path,
    e: &Engine,
    from: u32,
    to: u32,
    bar: &indicatif::ProgressBar,
) -> Result<Partition> {
    let md = meta(idx);
    let path = |t: &str| out.join(partition_file(t, from, to));
    let mut wb = TableWriter::create(&path("blocks"), tables::BLOCKS, &md)?;
    let mut wt = TableWriter::create(&path("transactions"), tables::TRANSACTIONS, &md)?;
    let mut wi = TableWriter::create(&path("inputs"), tables::INPUTS, &md)?;
    let mut wo = TableWriter::create(&path("outputs"), tables::OUTPUTS, &md)?;
    let mut wa = TableWriter::create(&path("addresses"), tables::ADDRESSES, &md)?;
    let start = idx.start_height();
    let params = cointrail_engine::wiring::cluster_params(idx);
    let (b0, b1) = ((from - start) as u64, (to - start) as u64);
    let first_tx = idx.block_txs(b0).start as u64;
    let end_tx = idx.block_txs(b1).end as u64;
    let first_addr = idx.block(b0).first_addr as u64;
    let mut next_addr = first_addr;
    let txid = |t: TxNum| display_txid(idx.txid(t));
    for b in b0..=b1 {
        let rec = idx.block(b);
        let height = start + b as u32;
        let hash = display_txid(rec.hash);
        let txs = idx.block_txs(b);
        let prev = (b > 0).then(|| display_txid(idx.block_hash(b - 1)));
        wb.push(vec![
            hash.clone().into(),
            height.into(),
            rec.time.into(),
            rec.bits.into(),
            prev.into(),
            ((txs.end - txs.start) as u64).into(),
            txs.start.into(),
        ])?;
        let addr_end = if b + 1 < idx.block_count() {
            idx.block(b + 1).first_addr as u64
        } else {
            idx.addr_count()
        };
        for a in next_addr..addr_end {
            let a32 = a as u32;
            wa.push(vec![
                a.into(),
                idx.render_addr(a32).into(),
                type_name(idx.addr_key(a32).kind).into(),
                height.into(),
            ])?;
        }
        next_addr = next_addr.max(addr_end);
        for (pos, t) in txs.clone().enumerate() {
            let h = txid(t);
            let ins = idx.tx_inputs(t);
            let outs = idx.tx_outputs(t);
            let coinbase = idx.is_coinbase(t);
            let mut in_value: Option<u64> = Some(0);
            for (k, i) in ins.clone().enumerate() {
                let prev = idx.input_prevout(i);
                let (sh, sv, so, st, ty, ad, adid, val) = match prev {
                    Prevout::Coinbase => (None, None, None, None, None, None, None, None),
                    Prevout::External { txid: x, vout } => (
                        Some(display_txid(x)),
                        Some(vout),
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                    ),
                    Prevout::Output(o) => {
                        let st = idx.output_tx(o);
                        let a = idx.output_addr(o);
                        (
                            Some(txid(st)),
                            Some(idx.output_vout(o)),
                            Some(o),
                            Some(st),
                            Some(type_name(idx.output_script_type(o))),
                            a.map(|a| idx.render_addr(a)),
                            a,
                            Some(idx.output_value(o)),
                        )
                    }
                };
                in_value = match (in_value, val, prev) {
                    (Some(s), Some(v), _) => Some(s + v),
                    (s, _, Prevout::Coinbase) => s,
                    _ => None,
                };
                wi.push(vec![
                    i.into(),
                    t.into(),
                    h.clone().into(),
                    height.into(),
                    (k as u64).into(),
                    sh.into(),
                    sv.into(),
                    so.into(),
                    st.into(),
                    ty.into(),
                    ad.into(),
                    adid.into(),
                    val.into(),
                ])?;
            }
            let mut out_value = 0u64;
            for (k, o) in outs.clone().enumerate() {
                let v = idx.output_value(o);
                out_value += v;
                let a = idx.output_addr(o);
                wo.push(vec![
                    o.into(),
                    t.into(),
                    h.clone().into(),
                    height.into(),
                    (k as u64).into(),
                    type_name(idx.output_script_type(o)).into(),
                    a.map(|a| idx.render_addr(a)).into(),
                    a.into(),
                    v.into(),
                ])?;
            }
            let in_value = if coinbase { Some(0) } else { in_value };
            let fee = if coinbase {
                None
            } else {
                in_value.map(|v| v.saturating_sub(out_value))
            };
            let cj = if coinbase {
                None
            } else {
                cointrail_clustering::detect_coinjoin(idx, t, &params).map(|c| c.protocol)
            };
            wt.push(vec![
                t.into(),
                h.into(),
                height.into(),
                rec.time.into(),
                hash.clone().into(),
                (pos as u64).into(),
                (idx.tx_version(t) as i64).into(),
                idx.tx_locktime(t).into(),
                ((ins.end - ins.start) as u64).into(),
                ((outs.end - outs.start) as u64).into(),
                (if coinbase { None } else { in_value }).into(),
                out_value.into(),
                fee.into(),
                coinbase.into(),
                cj.into(),
            ])?;
        }
        bar.inc(1);
    }
    let _ = e;
    let mut rows = BTreeMap::new();
    rows.insert("blocks".into(), wb.finish()?);
    rows.insert("transactions".into(), wt.finish()?);
    rows.insert("inputs".into(), wi.finish()?);
    rows.insert("outputs".into(), wo.finish()?);
    rows.insert("addresses".into(), wa.finish()?);
    Ok(Partition {
        from_height: from,
        to_height: to,
        last_block_hash: display_txid(idx.block_hash(b1)),
        tx_ids: (first_tx, end_tx),
        address_ids: (first_addr, next_addr),
        rows,
    })
}

/// The clustering, labels, case sources and traces: rewritten whole.
fn write_snapshots(
    e: &Engine,
    g: &Global,
    a: &ExportArgs,
    out: &Path,
    m: &mut Manifest,
    report: &mut Report,
) -> Result<()> {
    let idx = &e.index;
    let md = meta(idx);
    let tip = idx.tip_height().unwrap_or(0);
    let mut put = |m: &mut Manifest, name: &str, file: &str, rows: u64, note: serde_json::Value| {
        report.snapshots.insert(name.to_string(), rows);
        m.snapshots.insert(
            name.to_string(),
            Snapshot {
                file: file.to_string(),
                rows,
                tip_height: tip,
                note,
            },
        );
    };
    // Clusters: one row per address, when a clustering is built.
    match &e.clustering {
        Some(c) => {
            let mut w = TableWriter::create(&out.join("clusters.parquet"), tables::CLUSTERS, &md)?;
            for ad in 0..c.addr_count().min(idx.addr_count() as usize) as u32 {
                w.push(vec![
                    ad.into(),
                    idx.render_addr(ad).into(),
                    c.cluster_of(ad).into(),
                ])?;
            }
            let n = w.finish()?;
            put(
                m,
                "clusters",
                "clusters.parquet",
                n,
                cointrail_engine::wiring::clustering_note(c),
            );
        }
        None => report.notes.push(
            "no clustering is built: clusters.parquet not written (run `cointrail cluster build`)"
                .into(),
        ),
    }
    // Labels: each attributed address's own labels, in the order screening reads them.
    let stops: Vec<String> = STOP_AT.iter().map(|s| s.to_string()).collect();
    let mut w = TableWriter::create(&out.join("labels.parquet"), tables::LABELS, &md)?;
    let mut seq = 0u64;
    for (ad, ls) in cointrail_engine::wiring::address_attributions(&g.data_dir, idx)? {
        for l in ls {
            let cat = cointrail_risk::rules::normalize_category(&l.category);
            w.push(vec![
                seq.into(),
                ad.into(),
                idx.render_addr(ad).into(),
                cat.clone().into(),
                l.name.into(),
                l.source.into(),
                (e.rules.level_of(&cat) as u64).into(),
                stops.contains(&cat).into(),
                l.valid_to.map(|v| v as i64).into(),
            ])?;
            seq += 1;
        }
    }
    let n = w.finish()?;
    put(
        m,
        "labels",
        "labels.parquet",
        n,
        serde_json::json!({"rule_set": e.rules.name}),
    );
    // Cases: their source outputs, and their traces under each model.
    if !a.case.is_empty() {
        let store = cointrail_cases::CaseStore::open(&g.data_dir.join("cases.redb"))?;
        let mut ws =
            TableWriter::create(&out.join("case_sources.parquet"), tables::CASE_SOURCES, &md)?;
        let mut wt = TableWriter::create(&out.join("trace.parquet"), tables::TRACE, &md)?;
        for name in &a.case {
            let case = store.get(name)?;
            let (sources, _) = e.case_sources(&case, 1)?;
            for s in &sources {
                ws.push(vec![
                    name.clone().into(),
                    s.out.into(),
                    s.amount.unwrap_or(idx.output_value(s.out)).into(),
                ])?;
            }
            for (mname, model) in [
                ("fifo", Model::parse("fifo").map_err(anyhow::Error::msg)?),
                ("haircut", Model::Haircut),
            ] {
                let p = trace_params(model, name);
                let r = e.trace(&sources, p, &stops);
                for row in r.outputs {
                    wt.push(vec![
                        name.clone().into(),
                        mname.into(),
                        row.out.into(),
                        row.txid.into(),
                        row.vout.into(),
                        row.address.into(),
                        row.value.into(),
                        row.tainted_sats.into(),
                        row.hops.into(),
                        row.height.into(),
                        row.stop_reason.into(),
                    ])?;
                }
            }
        }
        let n = ws.finish()?;
        put(
            m,
            "case_sources",
            "case_sources.parquet",
            n,
            serde_json::json!({"cases": a.case}),
        );
        let n = wt.finish()?;
        put(
            m,
            "trace",
            "trace.parquet",
            n,
            serde_json::json!({"cases": a.case, "models": ["fifo", "haircut"], "stop_at": STOP_AT,
                "fee_policy": "last", "dust_sats": DUST, "min_fraction": MIN_FRACTION, "coinjoin": "stop"}),
        );
    }
    Ok(())
}

/// `cointrail trace`'s defaults: the traces exported are the ones it shows.
pub const STOP_AT: &[&str] = &[
    "exchange",
    "otc",
    "payment_processor",
    "gambling",
    "mining",
    "darknet",
    "mixer",
];
pub const DUST: u64 = 546;
pub const MIN_FRACTION: f64 = 0.0001;

fn trace_params(model: Model, case: &str) -> TraceParams {
    TraceParams {
        model,
        fee_policy: cointrail_trace::FeePolicy::Last,
        max_hops: None,
        dust_sats: DUST,
        min_fraction: MIN_FRACTION,
        coinjoin: cointrail_trace::CoinJoinPolicy::Stop,
        labels: vec![case.to_string()],
        provenance: serde_json::Value::Null,
        max_rows: usize::MAX,
        entity_aware: false,
        demix: None,
    }
}
