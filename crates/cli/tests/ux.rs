//! What a person reads (issue 21): human output in sentences and aligned tables, BTC and
//! UTC dates instead of raw satoshis and Unix seconds, no JSON unless `--json`, help texts
//! for every option, input refused when it is made rather than when it fails later.

use serde_json::Value;

mod support;
use support::{bin, cli, json, try_cli};

/// "1,507.76543210 BTC": an amount in BTC with eight decimals.
fn has_btc_amount(s: &str) -> bool {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| {
            w[1].starts_with("BTC")
                && w[0].contains('.')
                && w[0].rsplit('.').next().unwrap().len() == 8
                && w[0]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == ',' || c == '-')
        })
}

/// "2024-05-01 13:04:05 UTC".
fn has_utc_time(s: &str) -> bool {
    s.contains(" UTC")
        && s.split_whitespace()
            .any(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
}

/// No JSON object or array printed as such.
fn no_raw_json(what: &str, s: &str) {
    for l in s.lines() {
        let t = l.trim();
        assert!(
            !(t.starts_with('{') || t.contains("{\"") || t.contains("\":")),
            "{what}: raw JSON in human output: {l}"
        );
    }
}

fn help(args: &[&str]) -> String {
    let out = bin().args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every option of these commands has a description (clap prints an option without one
/// as a bare `--name <NAME>` line followed directly by the next option).
#[test]
fn every_option_is_described() {
    for cmd in [
        &["trace"][..],
        &["simulate"],
        &["demo"],
        &["labels", "import"],
        &["case", "create"],
        &["alerts", "rules", "add"],
    ] {
        let h = help(cmd);
        let lines: Vec<&str> = h.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let is_opt = t.starts_with("--") || t.starts_with("-h") || t.starts_with('<');
            if !is_opt || t.starts_with("-h, --help") || t.starts_with("-V") {
                continue;
            }
            // Described on the same line (two spaces after the name) or on the next,
            // more indented line.
            let same_line = t.contains("  ");
            let next = lines.get(i + 1).copied().unwrap_or("");
            let indent = |s: &str| s.len() - s.trim_start().len();
            let below = !next.trim().is_empty() && indent(next) > indent(l);
            assert!(same_line || below, "{cmd:?}: `{t}` has no description\n{h}");
        }
    }
    let s = help(&["simulate"]);
    assert!(
        s.contains("at least 1,000 BTC") && s.contains("1,506.28"),
        "{s}"
    );
}

#[test]
fn investigator_reads_sentences_btc_and_dates() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let (ok, demo, err) = try_cli(&dir, &["demo"]);
    assert!(ok, "{err}");
    // Item 7: both transaction counts say what they count.
    assert!(
        demo.contains("genesis block's coinbase") || demo.contains("genesis coinbase"),
        "{demo}"
    );
    assert!(demo.contains("(the genesis coinbase included)"), "{demo}");
    // Item 5: buckets that do not overlap, the truth beside the trace, ratios explained.
    assert!(
        demo.contains("the FIFO trace beside the simulation's truth"),
        "{demo}"
    );
    assert!(
        demo.contains("CoinJoins entered") && demo.contains("the mixer service"),
        "{demo}"
    );
    assert!(
        !demo.contains("· mixers "),
        "the old overlapping bucket names: {demo}"
    );
    assert!(demo.contains("the mixer paid back to the thief"), "{demo}");
    // Item 6: the models side by side, and why they differ, in words.
    assert!(
        demo.contains("the same heist under each taint model")
            && demo.contains("why they differ")
            && demo.contains("change kept by the thief")
            && demo.contains("FIFO fills the outputs in order"),
        "{demo}"
    );
    assert!(
        demo.contains("recall: of the address pairs one owner holds"),
        "{demo}"
    );
    // Item 16: how to run `cointrail` afterwards, when it is not on the PATH.
    assert!(demo.contains("Explore: "), "{demo}");
    assert!(
        demo.contains("cargo install --path crates/cli") || demo.contains("Explore: cointrail "),
        "{demo}"
    );

    let t = std::fs::read_to_string(dir.join("demo-chain/truth/stolen_outpoints.tsv")).unwrap();
    let f: Vec<String> = t
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .map(String::from)
        .collect();
    let (outpoint, victim, drain) = (&f[1], &f[3], &f[4]);

    // Item 12: tx, address, block and screen in BTC with UTC dates; --json keeps integers.
    let tx = cli(&dir, &["tx", drain]);
    assert!(has_btc_amount(&tx) && has_utc_time(&tx), "{tx}");
    assert!(!tx.contains(" sat  "), "{tx}");
    let txj = json(&dir, &["tx", drain]);
    assert!(txj["outputs"][0]["value"].is_u64());
    let addr = cli(&dir, &["address", victim, "--limit", "3"]);
    assert!(has_btc_amount(&addr) && has_utc_time(&addr), "{addr}");
    // Item 3: each received figure says what it counts.
    assert!(
        addr.contains("change included") || addr.contains("everything ever paid"),
        "{addr}"
    );
    let height = txj["block_height"].as_u64().unwrap().to_string();
    let block = cli(&dir, &["block", &height]);
    assert!(has_utc_time(&block), "{block}");

    // Item 1: the victim's own address is not Severe for its own theft.
    let sj = json(&dir, &["screen", victim]);
    assert_ne!(sj["risk"], "severe", "{sj}");
    let s = cli(&dir, &["screen", victim]);
    assert!(has_btc_amount(&s), "{s}");
    assert!(s.contains("received") && s.contains("from others"), "{s}");
    no_raw_json("screen", &s);
    let loot = format!("{drain}:0");
    let sl = json(&dir, &["screen", &loot]);
    assert_eq!(
        sl["risk"], "severe",
        "the thief's output is stolen funds: {sl}"
    );

    // Item 4: no USD without a rate of the day; with an imported table, the rate's day and
    // source beside the figure. Rules' USD comes from that table too (no fixed rate).
    let sh = cli(&dir, &["screen", &loot]);
    assert!(sh.contains("USD: not shown (no BTC rate for"), "{sh}");
    assert!(!sh.contains('$'), "{sh}");
    let sj = json(&dir, &["screen", &loot]);
    assert!(sj["fired_rules"][0]["usd"].is_null(), "{sj}");
    // The drain's UTC day, as `tx` prints it ("mined 2024-05-01 13:04:05 UTC").
    let date = tx
        .split_whitespace()
        .find(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
        .unwrap()
        .to_string();
    let table = d.path().join("btc-usd.csv");
    std::fs::write(&table, format!("date,asset,usd\n{date},BTC,2000\n")).unwrap();
    let pi = cli(&dir, &["prices", "import", table.to_str().unwrap()]);
    assert!(pi.contains("1 rows imported"), "{pi}");
    let sh = cli(&dir, &["screen", &loot]);
    assert!(
        sh.contains(&format!("2000 USD/BTC (rate of {date}, from btc-usd.csv)")),
        "{sh}"
    );
    let sj = json(&dir, &["screen", &loot]);
    let f0 = &sj["fired_rules"][0];
    let sats = f0["sats"].as_u64().unwrap();
    assert!(
        (f0["usd"].as_f64().unwrap() - sats as f64 / 1e8 * 2000.0).abs() < 1e-6,
        "{f0}"
    );
    assert_eq!(f0["usd_rates"][0]["date"], date.as_str());

    // Item 2: one entity id space: a trace row's entity is the cluster id `cluster show`
    // prints and /v1/entities takes (not the vendor's number from attribution.tsv).
    let tr = json(&dir, &["trace", "sim-heist-0"]);
    let row = tr["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stop_reason"] == "service:exchange")
        .unwrap();
    let cs = json(&dir, &["cluster", "show", row["address"].as_str().unwrap()]);
    assert_eq!(row["entity"], cs["cluster"]["cluster_id"], "{row}");
    let d0 = &tr["destinations"][0];
    assert!(d0["entity"].is_u64() || d0["entity"].is_null());

    // Item 11: case show, alerts rules list and cluster evaluate print no JSON.
    let cs = cli(&dir, &["case", "show", "sim-heist-0"]);
    no_raw_json("case show", &cs);
    assert!(cs.contains("sources (") && has_btc_amount(&cs), "{cs}");

    // Item 8: sources and entities are checked when they are registered.
    let bad_vout = format!("{}:99", outpoint.split(':').next().unwrap());
    let (ok, _, err) = try_cli(&dir, &["case", "create", "typo", "--from", &bad_vout]);
    assert!(!ok, "a case from a missing output is refused");
    assert!(
        err.contains("no such output") && err.contains("--force"),
        "{err}"
    );
    let (ok, _, err) = try_cli(
        &dir,
        &["case", "create", "later", "--from", &bad_vout, "--force"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = try_cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "drain",
            "--entity",
            "NoSuchEx",
            "--share-pct",
            "30",
        ],
    );
    assert!(!ok, "an unknown entity is refused");
    assert!(err.contains("NoSuchEx") && err.contains("--force"), "{err}");
    cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "drain",
            "--id",
            "future",
            "--entity",
            "NoSuchEx",
            "--share-pct",
            "30",
            "--force",
        ],
    );
    cli(
        &dir,
        &[
            "alerts",
            "rules",
            "add",
            "traced-spend",
            "--id",
            "loot",
            "--case",
            "sim-heist-0",
        ],
    );
    let rl = cli(&dir, &["alerts", "rules", "list"]);
    no_raw_json("alerts rules list", &rl);
    assert!(
        rl.contains(
            "fires when entity NoSuchEx sends out at least 30% of what it held within 6 block(s)"
        ),
        "{rl}"
    );
    assert!(
        rl.contains("fires when case sim-heist-0's traced outputs are spent"),
        "{rl}"
    );

    let ev = cli(
        &dir,
        &[
            "cluster",
            "evaluate",
            dir.join("demo-chain/truth").to_str().unwrap(),
            "--change",
            "meiklejohn",
        ],
    );
    no_raw_json("cluster evaluate", &ev);
    assert!(ev.contains("precision:"), "{ev}");
    // The demo's chain is shorter than the default delay: the zeros are explained.
    assert!(
        ev.contains("every change link is still pending") && ev.contains("--change-delay 6"),
        "{ev}"
    );

    // Items 11 + 13: labels import of an ActorPack names its source and version, in a sentence.
    let pack = d.path().join("ex.actorpack.yaml");
    std::fs::write(
        &pack,
        "title: t\ncreator: c\nactors:\n  - id: binanceus\n    label: Binance.US\n    categories: [exchange]\n    aliases: [binanceus, binance_us]\n    context:\n      aliases: [binanceus, binance_us]\n",
    )
    .unwrap();
    let li = cli(
        &dir,
        &[
            "labels",
            "import",
            pack.to_str().unwrap(),
            "--version",
            "2025-01-02",
        ],
    );
    no_raw_json("labels import", &li);
    assert!(
        li.contains("source graphsense-actors:ex.actorpack, version 2025-01-02: 1 actors stored"),
        "{li}"
    );
    let src = cli(&dir, &["labels", "sources"]);
    assert!(
        src.contains("graphsense-actors:ex.actorpack") && src.contains("1 actors"),
        "{src}"
    );
    // The demo's attribution.tsv labels appear in `labels show`: `labels sources` names it.
    assert!(
        src.contains("attribution.tsv") && src.contains("addresses; not imported"),
        "{src}"
    );
    let csv = d.path().join("mine.csv");
    std::fs::write(&csv, format!("address,currency,label,category,confidence,actor\n{victim},BTC,Victim hot wallet,exchange,ownership,binanceus\n")).unwrap();
    let li = cli(&dir, &["labels", "import", csv.to_str().unwrap()]);
    assert!(li.contains("1 labels added"), "{li}");
    let show = cli(&dir, &["labels", "show", victim]);
    assert_eq!(
        show.matches("binance_us").count(),
        1,
        "aliases once: {show}"
    );
    // attribution.tsv's labels appear where labels are shown, not only in `cluster show`.
    let at = std::fs::read_to_string(dir.join("attribution.tsv")).unwrap();
    let first: Vec<&str> = at
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split('\t')
        .collect();
    let show = cli(&dir, &["labels", "show", first[0]]);
    assert!(
        show.contains(&format!("{} [{}] from attribution.tsv", first[2], first[1])),
        "{show}"
    );
    let ad = cli(&dir, &["address", first[0], "--limit", "1"]);
    assert!(ad.contains("from attribution.tsv"), "{ad}");
    let v: Value = json(&dir, &["labels", "sources"]);
    assert!(v.as_array().unwrap().iter().any(|s| s["actors"] == 1));
}

/// Item 17: the README says what the test command installs (every apt package the bitcoind
/// build asks for, and schemathesis from PyPI), with times.
#[test]
fn readme_says_what_the_test_command_installs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let script = std::fs::read_to_string(root.join("scripts/build-bitcoind.sh")).unwrap();
    let mut pkgs = Vec::new();
    for l in script.lines() {
        if let Some(i) = l.find("need+=(") {
            pkgs.push(l[i + 7..].trim_end_matches(')').to_string());
        }
    }
    assert!(
        !pkgs.is_empty(),
        "the script's package list moved: update this test"
    );
    let intro: String = readme.lines().take(25).collect::<Vec<_>>().join("\n");
    for p in &pkgs {
        assert!(
            intro.contains(p.as_str()),
            "README's first lines do not name {p}"
        );
    }
    assert!(intro.contains("schemathesis") && intro.contains("PyPI"));
    assert!(intro.contains("minutes"));
    assert!(
        !intro.contains("Both need only"),
        "the old claim that the test command needs nothing more"
    );
}

/// Item 10: every example of the README runs, as written, through `sh` with `cointrail` on
/// the PATH. Placeholders (TXID, VOUT, ADDR, a height, an entity name) become values of the
/// demo or of the simulated chain the examples build; the 200,000-transaction simulation
/// runs with 20,000. What needs your own files, a node or a running server is named in
/// `skip` with the test that covers it instead.
#[test]
fn every_readme_example_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut lines: Vec<String> = Vec::new();
    let mut in_sh = false;
    let mut cont = String::new();
    for l in readme.lines() {
        if l.starts_with("```sh") {
            in_sh = true;
            continue;
        }
        if l.starts_with("```") {
            in_sh = false;
            continue;
        }
        if !in_sh || l.trim_start().starts_with('#') {
            continue;
        }
        if let Some(x) = l.strip_suffix('\\') {
            cont.push_str(x);
            continue;
        }
        let full = format!("{cont}{l}");
        cont.clear();
        // Drop the trailing comment (two spaces and '#').
        let cmd = full.split("  #").next().unwrap().trim().to_string();
        if !cmd.is_empty() {
            lines.push(cmd);
        }
    }
    let skip = |c: &str| -> Option<&str> {
        if c.starts_with("cargo ") || c.starts_with("bash scripts/test.sh") {
            Some("the two commands: CI runs them")
        } else if c.contains("~/.bitcoin/blocks")
            || c.contains("0831328.bin")
            || c.contains("--format etl transactions.json")
            || c.contains("block.raw")
        {
            Some("your own files: crates/index tests ingest and inspect these formats")
        } else if c.starts_with("cointrail follow") {
            Some("a running node: crates/cli/tests/live.rs, ethereum_node.rs")
        } else if c.starts_with("cointrail export --format etl") {
            Some("an EVM node: crates/cli/tests/ethereum_node.rs")
        } else if c.contains("cointrail_spark") {
            Some("Spark jobs: crates/cli/tests/spark_equality.rs runs them on the demo chain")
        } else if c.starts_with("cointrail serve") || c.starts_with("curl ") {
            Some("the API: crates/cli/tests/serve.rs sends these requests")
        } else {
            None
        }
    };
    let d = tempfile::tempdir().unwrap();
    let demo = d.path().join("demo");
    cli(&demo, &["demo"]);
    let sim = d.path().join("sim-data");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_cointrail"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Values for the placeholders, from a chain's truth/ folder.
    let values = |data: &std::path::Path, truth: &std::path::Path| {
        let t = std::fs::read_to_string(truth.join("stolen_outpoints.tsv")).unwrap();
        let f: Vec<String> = t
            .lines()
            .nth(1)
            .unwrap()
            .split('\t')
            .map(String::from)
            .collect();
        let tx = json(data, &["tx", &f[4]]);
        let addr = tx["outputs"][0]["address"].as_str().unwrap().to_string();
        (f[4].clone(), addr)
    };
    // The Ethereum examples' files, under the names the README gives them: real mainnet rows
    // (blocks 17,173,049-50) from testdata/eth/etl, the transactions gzipped as an export is.
    let etl = root.join("testdata/eth/etl");
    let export_dir = d.path().join("export_dir");
    std::fs::create_dir_all(&export_dir).unwrap();
    for dir in [d.path(), export_dir.as_path()] {
        for (from, to) in [
            ("mainnet_17173049_blocks.json", "blocks.json"),
            (
                "mainnet_17173049_token_transfers.json",
                "token_transfers.json",
            ),
            ("mainnet_17173049_logs.json", "logs.json"),
        ] {
            std::fs::copy(etl.join(from), dir.join(to)).unwrap();
        }
        let gz = std::process::Command::new("gzip")
            .arg("-c")
            .arg(etl.join("mainnet_17173049_transactions.csv"))
            .output()
            .expect("gzip");
        assert!(gz.status.success());
        std::fs::write(dir.join("transactions.csv.gz"), gz.stdout).unwrap();
    }
    let mut data = demo.clone();
    let mut truth = demo.join("demo-chain/truth");
    let (mut ran, mut skipped) = (0, 0);
    for c in &lines {
        if let Some(why) = skip(c) {
            eprintln!("skipped `{c}`: {why}");
            skipped += 1;
            continue;
        }
        if c.starts_with("cointrail demo") {
            // The workbench section starts from a demo of its own (a fresh data directory).
            data = d.path().join("demo2");
            truth = data.join("demo-chain/truth");
        }
        if c.starts_with("cointrail simulate") && !c.contains("--chain ethereum") {
            data = sim.clone();
            truth = d.path().join("sim1/truth");
        }
        let needs_values = ["TXID", "ADDR"].iter().any(|p| c.contains(p));
        let (txid, addr) = if needs_values {
            values(&data, &truth)
        } else {
            Default::default()
        };
        let c2 = c
            .replace("--txs 200000", "--txs 20000")
            .replace("VictimEx", "exchange-0")
            .replace("block 831330", "block 10")
            .replace("TXID:VOUT", &format!("{txid}:0"))
            .replace("TXID", &txid)
            .replace("ADDRESS", &addr)
            .replace("ADDR", &addr)
            .replace("0x…", "0xb9d7934878b5fb9610b3fe8a5e441e8fad7e293f");
        // `screen ADDRESS | TXID | TXID:VOUT` lists alternatives: each is run.
        let variants: Vec<String> = if c.starts_with("cointrail screen ") && c.contains(" | ") {
            let rest = c2.trim_start_matches("cointrail screen ");
            let (alts, tail) = rest.rsplit_once(' ').unwrap();
            alts.split(" | ")
                .map(|a| format!("cointrail screen {a} {tail}"))
                .collect()
        } else {
            vec![c2]
        };
        for v in variants {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&v)
                .current_dir(d.path())
                .env("PATH", &path)
                .env("COINTRAIL_DATA_DIR", &data)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "README example `{c}` (run as `{v}`) failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(
        ran >= 20,
        "only {ran} README examples ran ({skipped} skipped)"
    );
}
