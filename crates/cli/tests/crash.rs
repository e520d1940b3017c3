//! Crash safety: a `kill -9` at any moment of an ingest leaves an index that reopens
//! consistent and resumes to the same result as an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cointrail"))
}

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/btc")
        .join(p)
}

fn stats(dir: &Path) -> serde_json::Value {
    let out = bin()
        .args(["--data-dir"])
        .arg(dir)
        .args(["stats", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn verify(dir: &Path) {
    let out = bin()
        .args(["--data-dir"])
        .arg(dir)
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ingest_cmd(dir: &Path, files: &[PathBuf], commit_every: u64) -> Command {
    let mut c = bin();
    c.arg("--data-dir")
        .arg(dir)
        .args([
            "--quiet",
            "ingest",
            "--commit-every",
            &commit_every.to_string(),
        ])
        .args(files);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// The 8 consecutive real mainnet blocks 831,328–831,335.
fn eight_blocks() -> Vec<PathBuf> {
    (831328..=831335)
        .map(|h| data(&format!("mainnet/0{h}.bin")))
        .collect()
}

/// Ingest, which must succeed.
fn ingest_ok(dir: &Path, files: &[PathBuf], commit_every: u64) {
    let st = ingest_cmd(dir, files, commit_every).status().unwrap();
    assert!(st.success(), "ingest of {files:?} failed");
}

/// Ingest with a failpoint set, which must abort the process.
fn ingest_until(failpoint: &str, dir: &Path, files: &[PathBuf], commit_every: u64) {
    let st = ingest_cmd(dir, files, commit_every)
        .env("COINTRAIL_FAILPOINT", failpoint)
        .status()
        .unwrap();
    assert!(
        !st.success(),
        "the failpoint {failpoint} aborts the process"
    );
}

/// Ingest to the end, then the whole index checks out and holds all 8 blocks.
fn finish_all_eight(dir: &Path, files: &[PathBuf], commit_every: u64) {
    ingest_ok(dir, files, commit_every);
    verify(dir);
    assert_eq!(stats(dir)["tx_count"], 22_904);
}

#[test]
fn kill_9_at_random_moments_then_resume() {
    let files: Vec<PathBuf> = vec![data("testnet/testnet_blocks.txt")];
    let clean = tempfile::tempdir().unwrap();
    ingest_ok(clean.path(), &files, 40);
    let want = stats(clean.path());

    let d = tempfile::tempdir().unwrap();
    // A cheap deterministic spread of kill times over the run (tens to hundreds of ms).
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut killed_mid_run = 0;
    for round in 0..12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(5 + seed % 400);
        let mut child = ingest_cmd(d.path(), &files, 40).spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        }
        child.wait().unwrap();
        if d.path().join("index/manifest.json").exists() {
            verify(d.path());
        }
        let _ = round;
    }
    assert!(
        killed_mid_run > 0,
        "no run was interrupted: raise the delays' spread"
    );
    ingest_ok(d.path(), &files, 40);
    verify(d.path());
    assert_eq!(stats(d.path()), want);
}

#[test]
fn death_between_data_and_manifest_keeps_the_old_state() {
    let d = tempfile::tempdir().unwrap();
    let eight = eight_blocks();
    ingest_ok(d.path(), &eight[..2], 1_000_000);
    let before = stats(d.path());
    ingest_until("before-manifest", d.path(), &eight[2..], 1_000_000);
    assert_eq!(
        stats(d.path()),
        before,
        "a commit that did not reach its manifest is not visible"
    );
    // Opening for writing undoes the half-written batch; resuming completes it.
    finish_all_eight(d.path(), &eight[2..], 1_000_000);
}

#[test]
fn death_in_the_middle_of_a_reorganisation() {
    let d = tempfile::tempdir().unwrap();
    let f = |n: &str| data(&format!("mainnet/{n}.dat.bz2"));
    assert!(
        ingest_cmd(d.path(), &[f("blk_0_to_4"), f("blk_3A"), f("blk_4A")], 1000)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(stats(d.path())["tip_height"], 4);
    let st = ingest_cmd(d.path(), &[f("blk_5A")], 1000)
        .env("COINTRAIL_FAILPOINT", "rollback-after-manifest")
        .status()
        .unwrap();
    assert!(!st.success());
    // The rollback's manifest landed: the index reopens at the fork point, consistent.
    verify(d.path());
    assert_eq!(stats(d.path())["tip_height"], 2);
    ingest_ok(d.path(), &[f("blk_5A")], 1000);
    verify(d.path());
    let s = stats(d.path());
    assert_eq!(s["tip_height"], 5);
    assert_eq!(
        s["tip_hash"],
        "00000000195f85184e77c18914bd0febd11278d950f5e4731a38f71ed79f044e"
    );
}

/// Batch commits leave the txid and address maps unsynced (the manifest says how far they
/// are synced). A power loss can then lose any map page written since: here every entry
/// past the synced counts is wiped, and opening the index puts them back from the columns.
#[test]
fn map_entries_lost_after_an_unsynced_commit_are_put_back() {
    let d = tempfile::tempdir().unwrap();
    let eight = eight_blocks();
    ingest_until("after-unsynced-maps-commit", d.path(), &eight, 1000);
    let dir = d.path().join("index");
    let manifest = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let m = manifest();
    let synced = [
        m["maps_synced"][0].as_u64().unwrap(),
        m["maps_synced"][1].as_u64().unwrap(),
    ];
    let (txs, addrs) = (m["txs"].as_u64().unwrap(), m["addrs"].as_u64().unwrap());
    assert!(synced[0] < txs && synced[1] < addrs, "{m}");
    // Binaries from before `maps_synced` would not repair the maps: they must refuse this.
    assert_eq!(m["format"], 2);
    for (name, keep) in [("txid", synced[0]), ("addr", synced[1])] {
        let gen = m[format!("{name}_table")]["gen"].as_u64().unwrap();
        let path = dir.join(format!("{name}_map.{gen}.bin"));
        let mut b = std::fs::read(&path).unwrap();
        let mut lost = 0;
        for slot in b.chunks_mut(4) {
            let v = u32::from_le_bytes(slot.try_into().unwrap());
            if v != 0 && (v - 1) as u64 >= keep {
                slot.fill(0);
                lost += 1;
            }
        }
        assert!(lost > 1000, "{name}: {lost}");
        std::fs::write(&path, b).unwrap();
    }
    // `verify` looks up every txid and address by its key.
    verify(d.path());
    let m = manifest();
    assert_eq!(m["maps_synced"], serde_json::json!([txs, addrs]));
    assert_eq!(m["format"], 1);
    finish_all_eight(d.path(), &eight, 1000);
}

/// A batch that dies before its manifest leaves its entries in the maps. Redone with the
/// same blocks, again and again, it must not add them again each time: uncounted copies
/// would fill the maps (and their probes would never end).
#[test]
fn a_batch_redone_after_crashes_does_not_fill_the_maps() {
    let d = tempfile::tempdir().unwrap();
    let eight = eight_blocks();
    ingest_ok(d.path(), &eight[..7], 1_000_000);
    for _ in 0..5 {
        ingest_until("before-manifest", d.path(), &eight[7..], 1_000_000);
    }
    let dir = d.path().join("index");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let gen = m["txid_table"]["gen"].as_u64().unwrap();
    let map = std::fs::read(dir.join(format!("txid_map.{gen}.bin"))).unwrap();
    let used = map
        .chunks(4)
        .filter(|s| u32::from_le_bytes((*s).try_into().unwrap()) != 0)
        .count();
    // 20,118 committed transactions plus one copy of the last block's 2,786.
    assert!(used <= 22_904, "{used} slots used");
    finish_all_eight(d.path(), &eight[7..], 1_000_000);
}
