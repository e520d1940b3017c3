//! The index on real blocks: counts, links, reorganisations, ETL agreement, bad input.

use bitcoin::hashes::Hash;
use cointrail_chain::view::{ChainView, Prevout};
use cointrail_chain::Catalog;
use cointrail_index::{ingest, Index, IngestOptions, Source};
use std::path::{Path, PathBuf};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/btc")
        .join(p)
}

fn eight() -> Vec<PathBuf> {
    (831328..=831335)
        .map(|h| data(&format!("mainnet/0{h}.bin")))
        .collect()
}

fn fresh() -> (tempfile::TempDir, Index) {
    let d = tempfile::tempdir().unwrap();
    let idx = Index::open_writer(&d.path().join("index")).unwrap();
    (d, idx)
}

fn run(idx: &mut Index, s: Source) -> cointrail_index::IngestReport {
    ingest(idx, s, &IngestOptions::default()).unwrap()
}

#[test]
fn eight_consecutive_mainnet_blocks_in_any_order() {
    let (_d, mut idx) = fresh();
    let mut files = eight();
    files.reverse();
    let r = run(&mut idx, Source::Files(files));
    assert_eq!(r.blocks_added, 8);
    let s = idx.stats();
    assert_eq!((s.start_height, s.tip_height), (Some(831328), Some(831335)));
    assert_eq!(s.tx_count, 22_904);
    assert_eq!(s.input_count, 46_261);
    let resolved = (0..s.input_count)
        .filter(|&i| matches!(idx.input_prevout(i), Prevout::Output(_)))
        .count();
    assert_eq!(resolved, 15_849);
    // Txids and block hashes equal those rust-bitcoin computes from the same bytes.
    for (k, f) in eight().iter().enumerate() {
        let block: bitcoin::Block =
            bitcoin::consensus::deserialize(&std::fs::read(f).unwrap()).unwrap();
        assert_eq!(idx.block_hash(k as u64), block.block_hash().to_byte_array());
        let txs = idx.block_txs(k as u64);
        assert_eq!(txs.len(), block.txdata.len());
        for (t, tx) in txs.clone().zip(&block.txdata) {
            assert_eq!(idx.txid(t), tx.compute_txid().to_byte_array());
            // Each transaction knows its block (from the block table).
            assert_eq!(idx.tx_block(t), (831_328 + k as u32, txs.clone()));
        }
    }
    assert!(
        idx.check().problems.is_empty(),
        "{:?}",
        idx.check().problems
    );
}

#[test]
fn incremental_ingest_equals_one_shot() {
    let (_a, mut one) = fresh();
    run(&mut one, Source::Files(eight()));
    let (_b, mut inc) = fresh();
    let files = eight();
    run(&mut inc, Source::Files(files[..3].to_vec()));
    run(&mut inc, Source::Files(files[3..].to_vec()));
    let again = run(&mut inc, Source::Files(files.clone()));
    assert_eq!(again.blocks_added, 0);
    assert_eq!(again.already_indexed, 8);
    assert_eq!(
        serde_json::to_value(one.stats()).unwrap(),
        serde_json::to_value(inc.stats()).unwrap()
    );
    for t in (0..one.tx_count() as u32).step_by(97) {
        assert_eq!(
            serde_json::to_value(one.tx_info(t)).unwrap(),
            serde_json::to_value(inc.tx_info(t)).unwrap()
        );
    }
    assert!(inc.check().problems.is_empty());
}

#[test]
fn every_single_real_block_parses_with_its_merkle_root() {
    let files = [
        "mainnet/0830000.bin",
        "mainnet/block169482.raw",
        "mainnet/block227835.raw",
        "mainnet/block227836.raw",
        "mainnet/block300025.raw",
        "mainnet/block363703.raw",
        "mainnet/block370661.raw",
        "mainnet/block383616.raw",
        "mainnet/block413567.raw",
        "mainnet/block426884.raw",
        "mainnet/block482683.raw",
        "mainnet/277647.dat.bz2",
        "testnet/block928816.raw",
        "testnet/block928828.raw",
        "testnet/block928831.raw",
    ];
    for f in files {
        let mut cat = Catalog::new();
        cat.add_file(&data(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(cat.entries.len(), 1, "{f}");
        let b = cat
            .load(&cat.entries[0], bitcoin::Network::Bitcoin)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!b.txs.is_empty());
    }
    // Block 830,000 knows its own height (BIP34).
    let mut cat = Catalog::new();
    cat.add_file(&data("mainnet/0830000.bin")).unwrap();
    assert_eq!(
        cat.load(&cat.entries[0], bitcoin::Network::Bitcoin)
            .unwrap()
            .height,
        Some(830_000)
    );
    // Multi-block sources.
    for (f, n) in [
        ("mainnet/blocks1-256.bz2", 255),
        ("testnet/testnet_blocks.txt", 4000),
        ("mainnet/first-100k-blocks.dat", 439),
    ] {
        let mut cat = Catalog::new();
        cat.add_file(&data(f)).unwrap();
        assert_eq!(cat.entries.len(), n, "{f}");
        for e in &cat.entries {
            cat.load(e, bitcoin::Network::Testnet)
                .unwrap_or_else(|err| panic!("{f}: {err}"));
        }
    }
}

#[test]
fn truncated_framed_file_names_the_offset() {
    let err = Catalog::new()
        .add_file(&data("testnet/blk-testnet.dat"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blk-testnet.dat at byte offset 95027"),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn core_blocks_dir_and_the_first_payment() {
    let (_d, mut idx) = fresh();
    let r = run(&mut idx, Source::BlocksDir(data("mainnet/blkdir")));
    assert_eq!(r.blocks_added, 600);
    assert_eq!(idx.tip_height(), Some(599));
    let pay: bitcoin::Txid = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        .parse()
        .unwrap();
    let t = idx.lookup_txid(&pay.to_byte_array()).unwrap();
    assert_eq!(idx.tx_height(t), 170);
    let Prevout::Output(o) = idx.input_prevout(idx.tx_inputs(t).start) else {
        panic!("block 170 spends an indexed output")
    };
    let cb = idx.output_tx(o);
    assert!(idx.is_coinbase(cb));
    assert_eq!(idx.tx_height(cb), 9);
    assert_eq!(idx.output_spender(o), Some(t));
    let info = idx.tx_info(t);
    assert_eq!(info.outputs[0].value, 1_000_000_000);
    assert_eq!(info.fee, Some(0));
    assert!(idx.check().problems.is_empty());
}

fn btcd(name: &str) -> PathBuf {
    data(&format!("mainnet/{name}.dat.bz2"))
}

const SIDE_TIP: &str = "00000000195f85184e77c18914bd0febd11278d950f5e4731a38f71ed79f044e";

#[test]
fn btcd_fork_reorganises_in_one_call() {
    let (_d, mut idx) = fresh();
    let r = run(
        &mut idx,
        Source::Files(
            ["blk_5A", "blk_0_to_4", "blk_4A", "blk_3A"]
                .map(btcd)
                .to_vec(),
        ),
    );
    assert_eq!(r.tip_hash.as_deref(), Some(SIDE_TIP));
    assert_eq!(r.tip_height, Some(5));
    assert_eq!(r.stale_blocks, 2);
    assert!(idx.check().problems.is_empty());
}

#[test]
fn btcd_fork_reorganises_block_by_block() {
    let (_d, mut idx) = fresh();
    run(&mut idx, Source::Files(vec![btcd("blk_0_to_4")]));
    assert_eq!(idx.tip_height(), Some(4));
    let main4 = idx.block_txs(4);
    let removed_txid = idx.txid(main4.start);
    // 3A and 4A only tie the main chain: first seen wins, they wait aside.
    assert_eq!(
        run(&mut idx, Source::Files(vec![btcd("blk_3A")])).blocks_added,
        0
    );
    assert_eq!(
        run(&mut idx, Source::Files(vec![btcd("blk_4A")])).blocks_added,
        0
    );
    assert_eq!(idx.tip_height(), Some(4));
    let r = run(&mut idx, Source::Files(vec![btcd("blk_5A")]));
    assert_eq!(r.blocks_rolled_back, 2);
    assert_eq!(r.reorg_fork_height, Some(2));
    assert_eq!(r.tip_hash.as_deref(), Some(SIDE_TIP));
    assert_eq!(idx.tip_height(), Some(5));
    assert_eq!(
        idx.lookup_txid(&removed_txid),
        None,
        "the old block 4's coinbase left the index"
    );
    assert!(
        idx.check().problems.is_empty(),
        "{:?}",
        idx.check().problems
    );
    // Reopening gives the same state.
    let dir = idx.dir().to_path_buf();
    drop(idx);
    let idx = Index::open_reader(&dir).unwrap();
    assert_eq!(idx.tip_height(), Some(5));
}

fn etl_files(dirs: &[&str]) -> Vec<PathBuf> {
    let mut v = vec![];
    for d in dirs {
        v.push(data(&format!("etl/bitcoin/{d}/expected_transactions.json")));
        v.push(data(&format!("etl/bitcoin/{d}/expected_blocks.json")));
    }
    v
}

#[test]
fn etl_rows_agree_with_raw_blocks() {
    let (_a, mut etl) = fresh();
    let r = run(&mut etl, Source::Etl(etl_files(&["block_0", "block_1"])));
    assert_eq!(r.blocks_added, 2);
    let (_b, mut raw) = fresh();
    run(&mut raw, Source::BlocksDir(data("mainnet/blkdir")));
    for t in 0..etl.tx_count() as u32 {
        let mut a = serde_json::to_value(etl.tx_info(t)).unwrap();
        let mut b =
            serde_json::to_value(raw.tx_info(raw.lookup_txid(&etl.txid(t)).unwrap())).unwrap();
        // The raw index knows what spent these outputs later; the two-block ETL range does not.
        for v in [&mut a, &mut b] {
            for o in v["outputs"].as_array_mut().unwrap() {
                o["spent_by"] = serde_json::Value::Null;
            }
        }
        assert_eq!(a, b);
    }
    // A range in the middle of the chain: inputs from before it are external, values unknown.
    let (_c, mut mid) = fresh();
    let r = run(
        &mut mid,
        Source::Etl(etl_files(&["block_with_transactions"])),
    );
    assert!(r.blocks_added >= 1);
    let t = (0..mid.tx_count() as u32)
        .find(|&t| !mid.is_coinbase(t))
        .unwrap();
    let info = mid.tx_info(t);
    assert_eq!(info.fee, None);
    assert_eq!(info.inputs[0].kind, "external");
    assert!(mid.check().problems.is_empty());
}

#[test]
fn a_block_failing_its_merkle_check_is_refused_and_nothing_changes() {
    let (d, mut idx) = fresh();
    let files = eight();
    run(&mut idx, Source::Files(files[..2].to_vec()));
    let before = serde_json::to_value(idx.stats()).unwrap();
    let mut bytes = std::fs::read(&files[2]).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0xff; // the last transaction's lock time: its txid changes
    let bad = d.path().join("bad.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let err = ingest(
        &mut idx,
        Source::Files(vec![bad]),
        &IngestOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bad.bin") && err.contains("merkle"), "{err}");
    assert_eq!(serde_json::to_value(idx.stats()).unwrap(), before);
    assert!(idx.check().problems.is_empty());
}

#[test]
fn garbage_and_wrong_magic_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let garbage = d.path().join("garbage.dat");
    std::fs::write(&garbage, vec![0x07u8; 500]).unwrap();
    let e = Catalog::new().add_file(&garbage).unwrap_err().to_string();
    assert!(e.contains("garbage.dat at byte offset 0"), "{e}");
    // A text file is read as a raw block that runs out of bytes: said so, not "IO error".
    let text = d.path().join("notes.txt");
    std::fs::write(&text, b"just some notes, not a block\n").unwrap();
    let e = Catalog::new().add_file(&text).unwrap_err().to_string();
    assert!(e.contains("ends before a whole block"), "{e}");
    // A Core directory whose second frame has a wrong magic.
    let dir = d.path().join("blocks");
    std::fs::create_dir(&dir).unwrap();
    let mut framed = Vec::new();
    let b0 = std::fs::read(data("mainnet/block169482.raw")).unwrap();
    cointrail_chain::blockfile::frame_block(bitcoin::Network::Bitcoin, &b0, &mut framed);
    let at = framed.len();
    framed.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
    std::fs::write(dir.join("blk00000.dat"), &framed).unwrap();
    let e = Catalog::new().add_blocks_dir(&dir).unwrap_err().to_string();
    assert!(
        e.contains(&format!("byte offset {at}")) && e.contains("magic"),
        "{e}"
    );
    // Empty and JSON files.
    std::fs::write(d.path().join("empty"), b"").unwrap();
    assert!(Catalog::new()
        .add_file(&d.path().join("empty"))
        .unwrap_err()
        .to_string()
        .contains("empty"));
    std::fs::write(d.path().join("x.json"), b"{\"a\":1}").unwrap();
    assert!(Catalog::new()
        .add_file(&d.path().join("x.json"))
        .unwrap_err()
        .to_string()
        .contains("--format etl"));
}

#[test]
fn xor_obfuscated_out_of_order_blocks_dir() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("blocks");
    std::fs::create_dir(&dir).unwrap();
    let key = [0x5a, 0x13, 0xc7, 0x00, 0xfe, 0x81, 0x22, 0x9d];
    std::fs::write(dir.join("xor.dat"), key).unwrap();
    let order = [2usize, 0, 1, 3, 5, 4, 7, 6];
    let files = eight();
    for (fi, chunk) in order.chunks(4).enumerate() {
        let mut buf = Vec::new();
        for &k in chunk {
            cointrail_chain::blockfile::frame_block(
                bitcoin::Network::Bitcoin,
                &std::fs::read(&files[k]).unwrap(),
                &mut buf,
            );
        }
        cointrail_chain::blockfile::xor_in_place(&mut buf, 0, &key);
        std::fs::write(dir.join(format!("blk{fi:05}.dat")), buf).unwrap();
    }
    let (_a, mut idx) = fresh();
    let r = run(&mut idx, Source::BlocksDir(dir));
    assert_eq!(r.blocks_added, 8);
    assert_eq!(idx.stats().tx_count, 22_904);
}

#[test]
fn queries_on_unknown_things_are_clear_errors() {
    let (_d, mut idx) = fresh();
    run(&mut idx, Source::Files(eight()[..1].to_vec()));
    let e = idx
        .parse_txid("00".repeat(32).as_str())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not in the index"), "{e}");
    assert!(idx
        .parse_txid("xyz")
        .unwrap_err()
        .to_string()
        .contains("not a txid"));
    let e = idx
        .parse_address("1BoatSLRHtKNngkdXEeobR76b53LETtpyX")
        .unwrap_err()
        .to_string();
    assert!(e.contains("checksum") || e.contains("not a valid"), "{e}");
    let e = idx
        .parse_address("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx")
        .unwrap_err()
        .to_string();
    assert!(e.contains("another network"), "{e}");
    assert!(idx
        .block_info("999")
        .unwrap_err()
        .to_string()
        .contains("outside the index"));
}

/// The service keeps a reader mapped while `ingest` rolls blocks back (a reorganisation):
/// the reader still reads every record of the state it opened, and the writer's next
/// append overwrites the rolled-back tail.
#[test]
fn reader_survives_a_rollback_under_it() {
    let (d, mut w) = fresh();
    run(&mut w, Source::Files(eight()));
    let reader = Index::open_reader(&d.path().join("index")).unwrap();
    let txs = reader.tx_count();
    let last_txid = reader.txid((txs - 1) as u32);
    w.rollback_to_blocks(4).unwrap();
    assert_eq!(w.block_count(), 4);
    // Every record of the old state is still readable (no SIGBUS), and unchanged.
    let sum: u64 = (0..reader.stats().output_count)
        .map(|o| reader.output_value(o))
        .sum();
    assert!(sum > 0);
    assert_eq!(reader.txid((txs - 1) as u32), last_txid);
    // The writer appends the same blocks again over the old tail; a new reader sees them.
    run(&mut w, Source::Files(eight()));
    let again = Index::open_reader(&d.path().join("index")).unwrap();
    assert_eq!(again.tx_count(), txs);
    assert_eq!(again.txid((txs - 1) as u32), last_txid);
    assert!(again.check().problems.is_empty());
}

#[test]
fn a_changed_witness_is_caught_when_asked_for() {
    // A witness byte changed: txids and the merkle root stay as they were, the witness
    // commitment no longer matches. Nothing the index keeps comes from witnesses, so a
    // plain ingest takes the block; `verify_witness` (and `inspect`, which loads with the
    // full check) refuse it.
    let (d, mut idx) = fresh();
    let files = eight();
    let mut block: bitcoin::Block =
        bitcoin::consensus::deserialize(&std::fs::read(&files[0]).unwrap()).unwrap();
    let tx = block
        .txdata
        .iter_mut()
        .skip(1)
        .find(|t| t.input.iter().any(|i| !i.witness.is_empty()))
        .expect("a segwit spend in a 2024 block");
    let txid = tx.compute_txid();
    let input = tx.input.iter_mut().find(|i| !i.witness.is_empty()).unwrap();
    let mut elems: Vec<Vec<u8>> = input.witness.iter().map(|e| e.to_vec()).collect();
    let e = elems
        .iter_mut()
        .find(|e| e.len() > 5)
        .expect("a signature or key");
    e[5] ^= 0x01;
    input.witness = bitcoin::Witness::from_slice(&elems);
    assert_eq!(tx.compute_txid(), txid);
    let bad = d.path().join("witness.bin");
    std::fs::write(&bad, bitcoin::consensus::serialize(&block)).unwrap();

    let mut cat = Catalog::new();
    cat.add_file(&bad).unwrap();
    let err = cat
        .load(&cat.entries[0], bitcoin::Network::Bitcoin)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("witness.bin") && err.contains("witness commitment"),
        "{err}"
    );

    let strict = IngestOptions {
        verify_witness: true,
        ..Default::default()
    };
    let err = ingest(&mut idx, Source::Files(vec![bad.clone()]), &strict)
        .unwrap_err()
        .to_string();
    assert!(err.contains("witness commitment"), "{err}");
    assert_eq!(idx.tx_count(), 0);
    assert!(idx.check().problems.is_empty());

    let r = run(&mut idx, Source::Files(vec![bad]));
    assert_eq!(r.txs_added as usize, block.txdata.len());
    assert!(idx.lookup_txid(&txid.to_byte_array()).is_some());
}

#[test]
fn an_index_from_before_the_script_type_column_is_filled_on_open() {
    let (d, mut idx) = fresh();
    run(&mut idx, Source::Files(eight()[..2].to_vec()));
    let types: Vec<_> = (0..idx.stats().output_count)
        .map(|o| idx.output_script_type(o))
        .collect();
    drop(idx);
    let col = d.path().join("index/addr_type.bin");
    // Built before the column existed: no file. Then a fill cut short by a crash.
    std::fs::remove_file(&col).unwrap();
    let idx = Index::open_reader(&d.path().join("index")).unwrap();
    assert!(idx.check().problems.is_empty());
    drop(idx);
    let len = std::fs::metadata(&col).unwrap().len();
    assert!(len > 1000);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&col)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let mut idx = Index::open_writer(&d.path().join("index")).unwrap();
    assert!(idx.check().problems.is_empty());
    let again: Vec<_> = (0..idx.stats().output_count)
        .map(|o| idx.output_script_type(o))
        .collect();
    assert_eq!(again, types);
    run(&mut idx, Source::Files(eight()[2..4].to_vec()));
    assert!(idx.check().problems.is_empty());
    drop(idx);

    // The file is long enough but holds zeros (a fill torn by a power loss, or blocks an
    // older binary rolled back and replaced), and the manifest does not vouch for it (the
    // older binary drops the count): the length alone is not trusted.
    let len = std::fs::metadata(&col).unwrap().len();
    std::fs::write(&col, vec![0u8; len as usize]).unwrap();
    let mpath = d.path().join("index/manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    assert_eq!(m["addr_types"].as_u64(), Some(len));
    m.as_object_mut().unwrap().remove("addr_types");
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let idx = Index::open_writer(&d.path().join("index")).unwrap();
    assert!(idx.check().problems.is_empty());
    assert_eq!(
        (0..types.len() as u64)
            .map(|o| idx.output_script_type(o))
            .collect::<Vec<_>>(),
        types
    );
}

#[test]
fn many_reorganisations_do_not_fill_the_maps() {
    // Every rollback leaves the removed transactions' and addresses' map entries behind
    // (lookups skip them). Counted toward the load, they make the map grow (and be rebuilt
    // without them) before it fills: uncounted, the fourth round here filled the txid
    // map and its probes never ended.
    let (_d, mut idx) = fresh();
    let files = eight();
    run(&mut idx, Source::Files(files.clone()));
    let want = serde_json::to_value(idx.stats()).unwrap();
    for _ in 0..8 {
        idx.rollback_to_blocks(4).unwrap();
        assert_eq!(idx.block_count(), 4);
        run(&mut idx, Source::Files(files[4..].to_vec()));
    }
    assert_eq!(serde_json::to_value(idx.stats()).unwrap(), want);
    assert!(idx.check().problems.is_empty());
}
