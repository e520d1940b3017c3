//! The persisted attribution and case-taint state (`DATA_DIR/state/`): the same answers as
//! building both from the sources at open, rebuilt when a source changed or the file is
//! damaged (saying so), and never read half-written after a kill -9.

use cointrail_chain::view::ChainView;
use cointrail_engine::{wiring, Engine, Subject};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;
use support::*;

fn demo_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    cli(&dir, &["demo", "--json"]);
    (d, dir)
}

/// The way every open worked before the state was persisted.
fn open_rebuilt(dir: &Path) -> Engine {
    let mut e = Engine::open(dir).unwrap();
    wiring::attach_from_sources(&mut e).unwrap();
    e.load_case_taint().unwrap();
    assert_eq!(e.case_taint_note.as_deref(), Some("traced"));
    e
}

fn open_persisted(dir: &Path) -> Engine {
    Engine::open_full(dir, None).unwrap()
}

fn sorted_attributions(e: &Engine, a: u32) -> Vec<String> {
    let mut v: Vec<String> = e.attributions(a).iter().map(|x| format!("{x:?}")).collect();
    v.sort();
    v
}

/// A screening as JSON without its provenance (which names the attribution setting).
fn screened(e: &Engine, s: &Subject) -> serde_json::Value {
    let mut v = serde_json::to_value(e.screen(s).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("provenance");
    v
}

fn assert_same(a: &Engine, b: &Engine) {
    let n = a.index.addr_count() as u32;
    assert_eq!(n, b.index.addr_count() as u32);
    let mut attributed = 0;
    for x in 0..n {
        let (va, vb) = (sorted_attributions(a, x), sorted_attributions(b, x));
        assert_eq!(va, vb, "address id {x}");
        attributed += !va.is_empty() as usize;
    }
    assert!(attributed > 1000, "{attributed} attributed addresses");
    let outs = a.index.tx_outputs(a.index.tx_count() as u32 - 1).end;
    let mut tainted = 0;
    for o in 0..outs {
        let (ta, tb) = (a.case_taint_of(o), b.case_taint_of(o));
        assert_eq!(ta, tb, "output {o}");
        tainted += !ta.is_empty() as usize;
    }
    assert!(tainted > 100, "{tainted} tainted outputs");
    for x in (0..n).step_by((n / 150).max(1) as usize) {
        let s = Subject::Address(a.index.render_addr(x));
        assert_eq!(screened(a, &s), screened(b, &s), "screening address id {x}");
    }
    let txs = a.index.tx_count() as u32;
    for t in (0..txs).step_by((txs / 100).max(1) as usize) {
        let txid = a.index.txid(t);
        let s = Subject::Tx(bitcoin::Txid::from_byte_array(txid).to_string());
        assert_eq!(screened(a, &s), screened(b, &s), "screening tx {t}");
    }
}

use bitcoin::hashes::Hash;

#[test]
fn persisted_state_answers_as_rebuilt_at_open_and_follows_its_sources() {
    let (_d, dir) = demo_dir();
    // A label in the store too, closed (a delisting), beside attribution.tsv's lines.
    let e0 = Engine::open(&dir).unwrap();
    let unlabelled = (0..e0.index.addr_count() as u32)
        .rev()
        .map(|a| e0.index.render_addr(a))
        .find(|a| {
            !std::fs::read_to_string(dir.join("attribution.tsv"))
                .unwrap()
                .contains(a.as_str())
        })
        .unwrap();
    drop(e0);
    cli(
        &dir,
        &[
            "labels",
            "add",
            &unlabelled,
            "test SDN entry",
            "--category",
            "sanctions",
        ],
    );
    let _ = std::fs::remove_dir_all(dir.join("state"));

    let built = open_persisted(&dir);
    assert_eq!(built.attribution_state_note.as_deref(), Some("built"));
    assert_eq!(built.case_taint_note.as_deref(), Some("traced"));
    let rebuilt = open_rebuilt(&dir);
    assert_same(&rebuilt, &built);
    drop(built);
    let opened = open_persisted(&dir);
    assert_eq!(opened.attribution_state_note.as_deref(), Some("opened"));
    assert_eq!(opened.case_taint_note.as_deref(), Some("opened"));
    assert_same(&rebuilt, &opened);
    assert!(
        opened.attribution_note["label_versions"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        opened.attribution_note
    );
    drop((opened, rebuilt));

    // A new attribution.tsv line: rebuilt, and seen.
    let mut tsv = std::fs::read_to_string(dir.join("attribution.tsv")).unwrap();
    let e0 = Engine::open(&dir).unwrap();
    let other = (0..e0.index.addr_count() as u32)
        .map(|a| e0.index.render_addr(a))
        .find(|a| !tsv.contains(a.as_str()) && *a != unlabelled)
        .unwrap();
    drop(e0);
    tsv.push_str(&format!("{other}\tmixer\ttest mixer\n"));
    std::fs::write(dir.join("attribution.tsv"), tsv).unwrap();
    let e = open_persisted(&dir);
    assert!(
        e.attribution_state_note
            .as_deref()
            .unwrap()
            .starts_with("rebuilt: "),
        "{:?}",
        e.attribution_state_note
    );
    // The stops moved, so the cases were traced again.
    assert!(e
        .case_taint_note
        .as_deref()
        .unwrap()
        .starts_with("traced again"));
    let id = e.index.parse_address(&other).unwrap();
    assert!(e.attributions(id).iter().any(|a| a.name == "test mixer"));
    let rebuilt = open_rebuilt(&dir);
    assert_same(&rebuilt, &e);
    drop((e, rebuilt));

    // A new case: traced again.
    let (ok, _, err) = try_cli(&dir, &["case", "create", "extra", "--from-address", &other]);
    assert!(ok, "{err}");
    let e = open_persisted(&dir);
    assert_eq!(e.attribution_state_note.as_deref(), Some("opened"));
    assert!(e
        .case_taint_note
        .as_deref()
        .unwrap()
        .starts_with("traced again"));
}

fn flip_byte(p: &Path, from_end: usize) {
    let mut b = std::fs::read(p).unwrap();
    let at = b.len() - from_end;
    b[at] ^= 0x40;
    std::fs::write(p, b).unwrap();
}

#[test]
fn a_damaged_or_half_written_state_file_is_rebuilt() {
    let (_d, dir) = demo_dir();
    let attr = std::fs::read_to_string(dir.join("attribution.tsv")).unwrap();
    let addr = attr
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    let want = json(&dir, &["screen", &addr]);
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("provenance");
        v
    };
    let want = strip(want);
    let state = dir.join("state");
    let (a, t) = (state.join("attribution.bin"), state.join("case_taint.bin"));
    assert!(a.exists() && t.exists());

    // Damaged inside a section: opening reads only each file's head and trailer (so that
    // it does not grow with the chain), so `state verify` is what reads every byte; it
    // names both files, fails, and `--remove-damaged` makes the next command rebuild them.
    let (a0, t0) = (std::fs::read(&a).unwrap(), std::fs::read(&t).unwrap());
    flip_byte(&a, 100);
    flip_byte(&t, 10);
    let (ok, out, _) = try_cli(&dir, &["state", "verify"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("attribution.bin: DAMAGED: checksum mismatch")
            && out.contains("case_taint.bin: DAMAGED: checksum mismatch"),
        "{out}"
    );
    let (ok, out, _) = try_cli(&dir, &["--json", "state", "verify", "--remove-damaged"]);
    assert!(!ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["damaged"], 2, "{v}");
    assert!(!a.exists() && !t.exists());
    let (ok, out, err) = try_cli(&dir, &["--json", "screen", &addr]);
    assert!(ok && !err.contains("unusable"), "{err}");
    assert_eq!(strip(serde_json::from_str(&out).unwrap()), want);
    let (ok, out, _) = try_cli(&dir, &["state", "verify"]);
    assert!(ok && out.matches(": ok (").count() == 2, "{out}");
    assert_eq!(
        (std::fs::read(&a).unwrap(), std::fs::read(&t).unwrap()),
        (a0, t0),
        "rebuilt the same"
    );

    // Damaged where opening reads (a file's head: header, section table, meta; its
    // trailer): seen at open, the message names the file and what is done.
    flip_byte(&a, std::fs::metadata(&a).unwrap().len() as usize - 60); // the section table
    flip_byte(&t, 1); // the trailer
    let (ok, out, err) = try_cli(&dir, &["--json", "screen", &addr]);
    assert!(ok, "{err}");
    assert!(
        err.contains("attribution.bin is unusable (damaged head") && err.contains("rebuilding it"),
        "{err}"
    );
    assert!(
        err.contains("case_taint.bin is unusable (damaged end")
            && err.contains("tracing the cases again"),
        "{err}"
    );
    assert_eq!(strip(serde_json::from_str(&out).unwrap()), want);
    // Cut short.
    let b = std::fs::read(&a).unwrap();
    std::fs::write(&a, &b[..b.len() / 2]).unwrap();
    let (ok, out, err) = try_cli(&dir, &["--json", "screen", &addr]);
    assert!(ok && err.contains("cut short"), "{err}");
    assert_eq!(strip(serde_json::from_str(&out).unwrap()), want);
    let (_, _, err) = try_cli(&dir, &["--json", "screen", &addr]);
    assert!(!err.contains("unusable"), "{err}");

    // kill -9 while each file is being written: the half-written temporary file is never
    // read, and the next run builds the file whole.
    std::fs::remove_dir_all(&state).unwrap();
    for file in [&a, &t] {
        let mut child = bin()
            .arg("--data-dir")
            .arg(&dir)
            .args(["--quiet", "--json", "screen", &addr])
            .env("COINTRAIL_TEST_STATE_WRITE_PAUSE_MS", "60000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let tmp = PathBuf::from(format!("{}.tmp.{}", file.display(), child.id()));
        let t0 = Instant::now();
        while !tmp.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "no {}",
                tmp.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(!file.exists(), "{} before a whole write", file.display());
        if file == &a {
            // Build the attribution state whole so that the next kill lands in the taint.
            let (ok, _, err) = try_cli(&dir, &["--json", "screen", &addr]);
            assert!(ok, "{err}");
            std::fs::remove_file(&t).unwrap();
        } else {
            let (ok, out, err) = try_cli(&dir, &["--json", "screen", &addr]);
            assert!(ok, "{err}");
            assert_eq!(strip(serde_json::from_str(&out).unwrap()), want);
        }
        assert!(!tmp.exists(), "{} left behind", tmp.display());
        assert!(file.exists());
    }
}
