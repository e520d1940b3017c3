//! Issue 20: a full disk, a read-only mount, garbage input and world-readable secrets, met
//! by the real binary. A full disk and a read-only mount need a mount: a small tmpfs and a
//! read-only bind mount in a user namespace (`unshare -rm`). Where the kernel allows no such
//! namespace (CI often does not), the same behaviour is met another way: a file-size limit
//! (`ulimit -f`, RLIMIT_FSIZE: each file stops growing as on a full disk) and a data dir
//! without write permission (for root, which ignores permissions, with the capabilities that
//! override them dropped by `setpriv`). `COINTRAIL_TEST_NO_NAMESPACE=1` takes that way here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cointrail")
}

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/btc")
        .join(p)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run a shell script in a new user and mount namespace (root inside, mounts private).
/// None when this machine allows no such namespace or mount.
fn in_namespace(script: &str) -> Option<Output> {
    if std::env::var_os("COINTRAIL_TEST_NO_NAMESPACE").is_some() {
        eprintln!("no user namespace (COINTRAIL_TEST_NO_NAMESPACE): the fallback runs");
        return None;
    }
    let probe = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m none /mnt 2>/dev/null || mount -t tmpfs -o size=1m none \"$TMPDIR\""])
        .env("TMPDIR", std::env::temp_dir())
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!("no user namespace with mounts here (unshare -rm): the fallback runs");
            return None;
        }
    }
    Some(
        Command::new("unshare")
            .args(["-rm", "sh", "-c", script])
            .output()
            .unwrap(),
    )
}

#[test]
fn a_full_disk_is_a_clear_error_and_the_index_stays_readable() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let blocks: Vec<String> = (831328..=831335)
        .map(|h| data(&format!("mainnet/0{h}.bin")).display().to_string())
        .collect();
    let first = &blocks[0];
    let rest = blocks[1..].join(" ");
    // 1.5 MB: the first block's index fits, the eight blocks' do not.
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=1500k none {mnt} || exit 99
B={bin}; D={mnt}/data
$B --data-dir $D --quiet ingest {first} >/dev/null 2>&1; echo "first=$?"
$B --data-dir $D --quiet ingest {rest} >/dev/null 2>{out}/ingest.err; echo "full=$?"
$B --data-dir $D --quiet stats --json >{out}/stats.json 2>{out}/stats.err; echo "stats=$?"
$B --data-dir $D --quiet verify --json >/dev/null 2>{out}/verify.err; echo "verify=$?"
"#,
        mnt = mnt.display(),
        bin = bin(),
        out = d.path().display(),
    );
    let Some(o) = in_namespace(&script) else {
        return full_disk_by_file_size_limit(d.path(), first, &blocks[1..]);
    };
    let so = text(&o.stdout);
    if so.is_empty() || o.status.code() == Some(99) {
        eprintln!(
            "tmpfs mount refused ({}): the fallback runs",
            text(&o.stderr)
        );
        return full_disk_by_file_size_limit(d.path(), first, &blocks[1..]);
    }
    assert!(so.contains("first=0"), "{so}");
    let err = std::fs::read_to_string(d.path().join("ingest.err")).unwrap();
    // A clear error and exit status 1, not a SIGBUS (sh reports 135).
    assert!(so.contains("full=1"), "{so}\n{err}");
    assert!(err.to_lowercase().contains("no space left"), "{err}");
    // Reading needs no free space: the disk is still full.
    assert!(
        so.contains("stats=0"),
        "{so}\n{}",
        std::fs::read_to_string(d.path().join("stats.err")).unwrap()
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("stats.json")).unwrap())
            .unwrap();
    assert!(stats["tx_count"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        so.contains("verify=0"),
        "{so}\n{}",
        std::fs::read_to_string(d.path().join("verify.err")).unwrap()
    );
}

#[test]
fn read_commands_work_on_a_read_only_mount_and_say_recovery_is_pending() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("evidence");
    let o = run(
        &dir,
        &["ingest", &data("mainnet/0831328.bin").display().to_string()],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want = run(&dir, &["stats", "--json"]);
    let want: serde_json::Value = serde_json::from_slice(&want.stdout).unwrap();
    let txid = {
        let o = run(&dir, &["block", "831328", "--json"]);
        let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        b["txids"][0].as_str().map(String::from)
    };
    // A batch dies between its data and its manifest: recovery is due at the next open.
    let o = Command::new(bin())
        .arg("--data-dir")
        .arg(&dir)
        .args(["--quiet", "ingest"])
        .arg(data("mainnet/0831329.bin"))
        .env("COINTRAIL_FAILPOINT", "before-manifest")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let mnt = d.path().join("ro");
    std::fs::create_dir(&mnt).unwrap();
    let tx_cmd = match &txid {
        Some(t) => format!(
            "$B --data-dir $D --quiet tx {t} --json >/dev/null 2>>{{out}}/ro.err; echo \"tx=$?\""
        ),
        None => String::new(),
    }
    .replace("{out}", &d.path().display().to_string());
    let script = format!(
        r#"set -u
mount --bind {src} {mnt} && mount -o remount,bind,ro {mnt} || exit 99
touch {mnt}/probe 2>/dev/null && exit 98
B={bin}; D={mnt}
$B --data-dir $D --quiet stats --json >{out}/ro.json 2>{out}/ro.err; echo "stats=$?"
$B --data-dir $D --quiet verify >/dev/null 2>>{out}/ro.err; echo "verify=$?"
{tx_cmd}
"#,
        src = dir.display(),
        mnt = mnt.display(),
        bin = bin(),
        out = d.path().display(),
    );
    let Some(o) = in_namespace(&script) else {
        return read_only_by_permissions(&dir, txid.as_deref(), &want);
    };
    let so = text(&o.stdout);
    if so.is_empty() || matches!(o.status.code(), Some(98 | 99)) {
        eprintln!(
            "read-only bind mount refused ({}): the fallback runs",
            text(&o.stderr)
        );
        return read_only_by_permissions(&dir, txid.as_deref(), &want);
    }
    let err = std::fs::read_to_string(d.path().join("ro.err")).unwrap();
    assert!(
        so.contains("stats=0") && so.contains("verify=0"),
        "{so}\n{err}"
    );
    if txid.is_some() {
        assert!(so.contains("tx=0"), "{so}\n{err}");
    }
    assert!(err.contains("recovery is pending"), "{err}");
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("ro.json")).unwrap()).unwrap();
    assert_eq!(got, want, "the last commit, not the interrupted batch");
    // With write access again, recovery runs and says nothing more.
    let o = run(&dir, &["stats", "--json"]);
    assert!(o.status.success());
    assert!(!text(&o.stderr).contains("recovery is pending"));
    let o = run(&dir, &["verify"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
}

/// The largest file under `dir`, in bytes.
fn largest_file(dir: &Path) -> u64 {
    let mut max = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        max = max.max(if m.is_dir() {
            largest_file(&e.path())
        } else {
            m.len()
        });
    }
    max
}

/// Run the binary with every file it writes limited to `limit` bytes, SIGXFSZ ignored (so a
/// write past the limit fails with EFBIG, as one past a full disk fails with ENOSPC).
fn run_limited(dir: &Path, limit: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f \"$1\" || exit 97; shift; exec \"$@\"",
            "sh",
        ])
        .arg((limit / 512).to_string())
        .arg(bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

/// The full disk without a mount: a file-size limit half again the largest file the first
/// block made, so the next seven blocks cannot be written; the same promises hold.
fn full_disk_by_file_size_limit(tmp: &Path, first: &str, rest: &[String]) {
    let dir = tmp.join("limited");
    let o = run(&dir, &["ingest", first]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let before = run(&dir, &["stats", "--json"]);
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    let limit = (largest_file(&dir) * 3 / 2).div_ceil(512) * 512;
    let mut args = vec!["ingest"];
    args.extend(rest.iter().map(String::as_str));
    let o = run_limited(&dir, limit, &args);
    let err = text(&o.stderr);
    assert_ne!(o.status.code(), Some(97), "ulimit -f refused: {err}");
    // A clear error and exit status 1, not death by SIGXFSZ or SIGBUS.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("file size limit"), "{err}");
    // Reading needs no file to grow: under the same limit, the last commit answers.
    let o = run_limited(&dir, limit, &["stats", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(after, before, "the last commit, intact");
    let o = run_limited(&dir, limit, &["verify", "--json"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Make `p` and everything under it unwritable (`ro`) or writable again.
fn set_writable(p: &Path, writable: bool) {
    let m = std::fs::metadata(p).unwrap();
    let mode = match (m.is_dir(), writable) {
        (true, true) => 0o755,
        (true, false) => 0o555,
        (false, true) => 0o644,
        (false, false) => 0o444,
    };
    if m.is_dir() && writable {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    if m.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            set_writable(&e.path(), writable);
        }
    }
    if !(m.is_dir() && writable) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// The read-only mount without a mount: the data dir without write permission. Root
/// ignores permissions, so for root the binary runs with the capabilities that let it
/// (DAC override, DAC read search, fowner) dropped from its bounding set by `setpriv`.
fn read_only_by_permissions(dir: &Path, txid: Option<&str>, want: &serde_json::Value) {
    use std::os::unix::fs::MetadataExt;
    let probe_dir = dir.with_extension("probe");
    std::fs::create_dir(&probe_dir).unwrap();
    let root = std::fs::metadata(&probe_dir).unwrap().uid() == 0;
    let cmd = |args: &[&str]| -> Output {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args([
                "--bounding-set=-dac_override,-dac_read_search,-fowner",
                "--",
            ]);
            c.arg(bin());
            c
        } else {
            Command::new(bin())
        };
        c.arg("--data-dir").arg(dir).arg("--quiet").args(args);
        c.output().unwrap()
    };
    // The way works only if a write there is really refused.
    set_writable(&probe_dir, false);
    let probe = if root {
        Command::new("setpriv")
            .args([
                "--bounding-set=-dac_override,-dac_read_search,-fowner",
                "--",
                "touch",
            ])
            .arg(probe_dir.join("x"))
            .output()
    } else {
        Command::new("touch").arg(probe_dir.join("x")).output()
    };
    set_writable(&probe_dir, true);
    match probe {
        Ok(o) if !o.status.success() => {}
        _ => {
            eprintln!(
                "SKIPPED: neither a read-only mount nor an unwritable directory can be made here"
            );
            return;
        }
    }
    set_writable(dir, false);
    let stats = cmd(&["stats", "--json"]);
    let verify = cmd(&["verify"]);
    let tx = txid.map(|t| cmd(&["tx", t, "--json"]));
    set_writable(dir, true);
    let err = text(&stats.stderr);
    assert!(stats.status.success(), "{err}");
    assert!(
        verify.status.success(),
        "{}\n{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    if let Some(tx) = tx {
        assert!(tx.status.success(), "{}", text(&tx.stderr));
    }
    assert!(err.contains("recovery is pending"), "{err}");
    let got: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(&got, want, "the last commit, not the interrupted batch");
    // With write access again, recovery runs and says nothing more.
    let o = run(dir, &["stats", "--json"]);
    assert!(o.status.success());
    assert!(!text(&o.stderr).contains("recovery is pending"));
    let o = run(dir, &["verify"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
}

#[test]
fn garbage_into_a_non_empty_index_exits_non_zero() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let o = run(
        &dir,
        &["ingest", &data("mainnet/0831328.bin").display().to_string()],
    );
    assert!(o.status.success());
    let mut junk = std::fs::read(data("mainnet/block169482.raw")).unwrap();
    for x in &mut junk[4..68] {
        *x ^= 0x5a;
    }
    let p = d.path().join("junk.raw");
    std::fs::write(&p, junk).unwrap();
    let o = run(&dir, &["ingest", &p.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("nothing usable"),
        "{}",
        text(&o.stderr)
    );
    let o = run(
        &d.path().join("empty"),
        &["ingest", &p.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
}

#[test]
fn secrets_are_created_owner_only() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let o = run(&dir, &["keys", "create", "exchange-a"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(
        &dir,
        &[
            "labels",
            "add",
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
            "somebody",
            "--category",
            "exchange",
        ],
    );
    let labels_ok = o.status.success();
    for (f, must) in [("keys.redb", true), ("labels.redb", labels_ok)] {
        let p = dir.join(f);
        if !must && !p.exists() {
            continue;
        }
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}: {mode:o}");
    }
    // The stores of every crate use the same creation.
    let p = d.path().join("x.redb");
    cointrail_chain::private_file::create_private(&p).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
