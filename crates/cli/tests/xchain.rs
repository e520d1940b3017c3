//! One heist across two chains, end to end: `simulate --chains bitcoin,ethereum` →
//! ingest both → attribution and bridge rules → `case create` on the Ethereum drain →
//! `trace`, checked against the simulator's crossings.

mod support;

use std::collections::HashMap;
use support::{cli, json};

#[test]
fn a_heist_is_followed_from_ethereum_into_bitcoin() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("x");
    let d = dir.path().join("data");
    let s = json(
        &d,
        &[
            "simulate",
            "--chains",
            "bitcoin,ethereum",
            "--out",
            sim.to_str().unwrap(),
            "--txs",
            "8000",
            "--eth-txs",
            "3000",
            "--heist-eth",
            "2000",
            "--heist-fanout",
            "60",
        ],
    );
    let p = |x: &str| sim.join(x).display().to_string();
    cli(&d, &["ingest", "--blocks-dir", &p("bitcoin/blocks")]);
    cli(&d, &["ingest", "--chain", "ethereum", &p("ethereum/etl")]);
    for f in ["attribution.tsv", "bridges.yaml"] {
        std::fs::copy(sim.join("truth").join(f), d.join(f)).unwrap();
    }
    let drain = s["ethereum"]["heist"]["drain_tx"].as_str().unwrap();
    cli(&d, &["case", "create", "bybit", "--from-tx", drain]);
    let html = dir.path().join("r.html");
    let csv = dir.path().join("r.csv");
    let v = json(&d, &["trace", "bybit", "--report", html.to_str().unwrap()]);
    cli(&d, &["trace", "bybit", "--report", csv.to_str().unwrap()]);

    // The truth: inbound hash → (kind, destination, sats).
    let truth = std::fs::read_to_string(sim.join("truth/crossings.tsv")).unwrap();
    let crossings: HashMap<String, (String, String, u64)> = truth
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[1].to_string(),
                (f[0].to_string(), f[6].to_string(), f[7].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(v["chain"], "ethereum+bitcoin");
    assert_eq!(v["conserved"], true);
    // The stolen tokens (LST, stablecoin) sold on the DEX decode as conversions: all of
    // each converts to ETH, none stays behind at the pool or is taken as clean ETH.
    assert!(!v["conversions"].as_array().unwrap().is_empty());
    for t in v["totals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["token"].is_null())
    {
        assert_eq!(t["converted_out"], t["source"], "{t}");
    }
    let hops = v["crossings"]["hops"].as_array().unwrap();
    assert!(hops.len() >= 10, "{} hops", hops.len());
    let mut tainted = 0u64;
    let mut by = HashMap::new();
    for h in hops {
        let (kind, dest, sats) = &crossings[h["deposit_tx"].as_str().unwrap()];
        // Every hop joins a real crossing to its own release.
        assert_eq!(h["payouts"][0]["address"].as_str().unwrap(), dest, "{h}");
        assert_eq!(h["released_sats"].as_u64().unwrap(), *sats);
        match (kind.as_str(), h["matched"].as_str().unwrap()) {
            ("router", "thorchain_out") => assert_eq!(h["confidence_ppm"], 1_000_000),
            ("bridge", "amount_time" | "bridge_id") => {}
            o => panic!("{o:?} joined wrongly: {h}"),
        }
        let t = h["tainted_sats"].as_u64().unwrap();
        assert!(t <= *sats);
        tainted += t;
        *by.entry(h["via"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(by["thorchain"] >= 10, "{by:?}");
    // The Bitcoin leg starts from exactly the converted taint and adds up.
    let b = &v["per_chain_totals"]["bitcoin"];
    assert_eq!(b["source_sats"].as_u64().unwrap(), tainted);
    let sum: u64 = [
        "unspent_sats",
        "fee_sats",
        "stopped_sats",
        "mixer_sats",
        "limit_sats",
    ]
    .iter()
    .map(|k| b[*k].as_u64().unwrap())
    .sum();
    assert_eq!(sum, tainted);
    assert!(b["stopped_sats"].as_u64().unwrap() > tainted / 4);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Cross-chain hops") && page.contains("thorchain_out"));
    // Each chain hop is a row of the HTML report: its deposit and release, how it was
    // matched, the taint in and out.
    for h in hops {
        let row = format!(
            "<tr><td>ethereum</td><td>{}</td><td>bitcoin</td><td>{}</td><td>{}</td><td>{}</td>",
            h["deposit_tx"].as_str().unwrap(),
            h["release_tx"].as_str().unwrap(),
            h["via"].as_str().unwrap(),
            h["matched"].as_str().unwrap()
        );
        let at = page
            .find(&row)
            .unwrap_or_else(|| panic!("no HTML row for {h}"));
        let tail = &page[at..at + page[at..].find("</tr>").unwrap()];
        assert!(
            tail.ends_with(&format!("<td>{}</td>", h["tainted_sats"])),
            "{tail}"
        );
    }
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        rows.lines()
            .filter(|l| l.starts_with("hop,ethereum>bitcoin,"))
            .count(),
        hops.len()
    );
    assert!(rows.lines().any(|l| l.starts_with("total,bitcoin,")));

    // The Tornado-like pool: each of the thief's 100 ETH notes stops the trace at the pool
    // with its whole value; the withdrawals to the thief's fresh addresses are ranked
    // candidates of that deposit, and never hold taint.
    let hops_truth = std::fs::read_to_string(sim.join("ethereum/truth/heist_hops.tsv")).unwrap();
    let notes: Vec<Vec<&str>> = hops_truth
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[3] == "mixer-deposit")
        .collect();
    assert!(!notes.is_empty(), "the thief used no Tornado note");
    let eth_roles = std::fs::read_to_string(sim.join("ethereum/truth/addresses.tsv")).unwrap();
    let mixer_out: std::collections::HashSet<String> = eth_roles
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() > 2 && f[1] == "thief" && f[2] == "mixer-out")
        .map(|f| f[0].to_lowercase())
        .collect();
    assert_eq!(mixer_out.len(), notes.len());
    let cands = v["mixer_candidates"].as_array().unwrap();
    for f in &notes {
        let at: u128 = v["stops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["tx"].as_str().unwrap_or("").eq_ignore_ascii_case(f[2])
                    && s["address"].as_str().unwrap().eq_ignore_ascii_case(f[5])
            })
            .map(|s| {
                assert_eq!(s["category"], "mixer", "{s}");
                s["amount"].as_str().unwrap().parse::<u128>().unwrap()
            })
            .sum();
        assert_eq!(at.to_string(), f[7], "note {}", f[2]);
        assert!(
            cands.iter().any(
                |c| c["depositor"].as_str().unwrap().eq_ignore_ascii_case(f[4])
                    && mixer_out.contains(&c["to"].as_str().unwrap().to_lowercase())
            ),
            "no withdrawal of the thief among the candidates of {}",
            f[2]
        );
    }
    for h in v["held"].as_array().unwrap() {
        let a = h["address"].as_str().unwrap().to_lowercase();
        assert!(!mixer_out.contains(&a), "a withdrawal holds taint: {h}");
    }

    // The CoinJoin coordinator's fee addresses are attributed (public tags on the real
    // chain): the thief's Whirlpool Tx0 fees are taint reaching a service, each one in full
    // under FIFO (the fee is the Tx0's first paid output).
    let attr = std::fs::read_to_string(sim.join("truth/attribution.tsv")).unwrap();
    let fees: Vec<(String, u64, String)> =
        std::fs::read_to_string(sim.join("bitcoin/truth/thief_payments.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| f[5] == "coinjoin_coordinator")
            .map(|f| (f[1].to_string(), f[2].parse().unwrap(), f[3].to_string()))
            .collect();
    assert!(!fees.is_empty(), "the thief paid no coordinator fee");
    let outs: HashMap<String, &serde_json::Value> = v["bitcoin"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]), o))
        .collect();
    for (op, value, addr) in &fees {
        assert!(
            attr.lines()
                .any(|l| l.starts_with(&format!("{addr}\tmixer\twhirlpool\t"))),
            "{addr} not attributed"
        );
        let o = outs
            .get(op)
            .unwrap_or_else(|| panic!("coordinator fee {op} not reached"));
        assert_eq!(o["stop_reason"], "service:mixer", "{o}");
        assert_eq!(o["tainted_sats"].as_u64().unwrap(), *value, "{o}");
    }
    assert!(v["bitcoin"]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "whirlpool" && d["category"] == "mixer"));

    // Screening a Bitcoin deposit counts the Ethereum case's taint: the address a router
    // release paid with the case's converted taint, and that release output, are exposed
    // to the case; a user the Bitcoin leg never reached is not.
    let exposed = |s: &serde_json::Value| {
        s["exposure"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["category"] == "stolen_funds:bybit")
    };
    let h0 = hops
        .iter()
        .find(|h| h["via"] == "thorchain" && h["payouts"][0]["tainted_sats"].as_u64().unwrap() > 0)
        .unwrap();
    let reached = h0["payouts"][0]["address"].as_str().unwrap();
    let s = json(&d, &["screen", reached]);
    assert!(exposed(&s), "{s}");
    let release_out = format!(
        "{}:{}",
        h0["release_tx"].as_str().unwrap(),
        h0["payouts"][0]["vout"]
    );
    let s = json(&d, &["screen", &release_out]);
    assert!(exposed(&s), "{s}");
    let touched: std::collections::HashSet<&str> = v["bitcoin"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["address"].as_str())
        .collect();
    let btc_truth = sim.join("bitcoin/truth");
    let users: std::collections::HashSet<String> =
        std::fs::read_to_string(btc_truth.join("entities.tsv"))
            .unwrap()
            .lines()
            .filter(|l| l.split('\t').nth(1) == Some("user"))
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect();
    let clean = std::fs::read_to_string(btc_truth.join("addresses.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| users.contains(f[1]) && !touched.contains(f[0]))
        .map(|f| f[0].to_string())
        .expect("a user address the trace did not reach");
    let s = json(&d, &["screen", &clean]);
    assert!(!exposed(&s), "{s}");

    // The persisted case taint is opened again as long as nothing it depends on changed;
    // the Ethereum side counts: without the crossings' labels the Ethereum leg no longer
    // stops at the router, so nothing crosses and the Bitcoin output carries no taint.
    use cointrail_engine::Engine;
    let out_num = |e: &Engine| {
        e.outpoint(
            h0["release_tx"].as_str().unwrap(),
            h0["payouts"][0]["vout"].as_u64().unwrap() as u32,
        )
        .unwrap()
    };
    let e = Engine::open_full(&d, None).unwrap();
    assert_eq!(e.case_taint_note.as_deref(), Some("opened"));
    let taint = e.case_taint_of(out_num(&e));
    assert_eq!(taint.len(), 1, "{taint:?}");
    assert_eq!(taint[0].0, "bybit");
    assert_eq!(
        taint[0].1,
        h0["payouts"][0]["tainted_sats"].as_u64().unwrap()
    );
    drop(e);
    let tsv = std::fs::read_to_string(d.join("attribution.tsv")).unwrap();
    let without: String = tsv
        .lines()
        .filter(|l| !(l.starts_with("0x") && l.split('\t').nth(1) == Some("bridge")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without.len(), tsv.len());
    std::fs::write(d.join("attribution.tsv"), &without).unwrap();
    let e = Engine::open_full(&d, None).unwrap();
    assert!(
        e.case_taint_note
            .as_deref()
            .unwrap()
            .starts_with("traced again"),
        "{:?}",
        e.case_taint_note
    );
    assert!(e.case_taint_of(out_num(&e)).is_empty());
    drop(e);
    std::fs::write(d.join("attribution.tsv"), &tsv).unwrap();
    let e = Engine::open_full(&d, None).unwrap();
    assert_eq!(e.case_taint_of(out_num(&e)).len(), 1);
    drop(e);

    // A bridge rule file with an error: `trace` and screening (which traces the case
    // again, the rules having changed) both refuse with the file and the field named,
    // instead of tracing without the bridge.
    let rules = std::fs::read_to_string(d.join("bridges.yaml")).unwrap();
    let bad = rules.replace("tolerance_bps: 100", "tolerance_bps: 20000");
    assert_ne!(bad, rules);
    std::fs::write(d.join("bridges.yaml"), &bad).unwrap();
    for args in [&["trace", "bybit"][..], &["screen", reached][..]] {
        let (ok, _, err) = support::try_cli(&d, args);
        assert!(!ok, "{args:?} accepted a bad bridge rule file");
        assert!(
            err.contains("bridges.yaml") && err.contains("tolerance_bps"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::write(d.join("bridges.yaml"), &rules).unwrap();
    assert!(exposed(&json(&d, &["screen", reached])));

    // `traced-spend` on the Bitcoin side of an Ethereum case: the alert hooks watch the
    // Bitcoin leg's dormant frontier (tainted, unspent, not at a service), exactly the
    // trace's unspent Bitcoin taint, output by output.
    let hooks = cointrail_engine::live::hooks(&d, None);
    let watched = hooks
        .taint
        .as_ref()
        .unwrap()
        .watched_outputs("bybit")
        .expect("the case is watched");
    assert_eq!(v["bitcoin"]["outputs_truncated"], false);
    let frontier: HashMap<String, u64> = v["bitcoin"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["spent"] == false
                && o["stop_reason"].is_null()
                && o["tainted_sats"].as_u64().unwrap() > 0
        })
        .map(|o| {
            (
                format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]),
                o["tainted_sats"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!frontier.is_empty(), "the thief holds Bitcoin");
    let got: HashMap<String, u64> = watched
        .iter()
        .map(|w| (format!("{}:{}", w.txid, w.vout), w.sats))
        .collect();
    assert_eq!(got, frontier);
    assert_eq!(
        got.values().sum::<u64>(),
        v["per_chain_totals"]["bitcoin"]["unspent_sats"]
            .as_u64()
            .unwrap()
    );
    drop(hooks);

    // With only the exchanges' hot wallets labelled, the thief's exchange deposit addresses
    // are found by their sweeps: the trace stops at each with the same taint as when it was
    // labelled.
    let tsv = std::fs::read_to_string(d.join("attribution.tsv")).unwrap();
    let hot: std::collections::HashSet<String> = eth_roles
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() > 2 && f[1].starts_with("exchange-") && f[2] == "hot")
        .map(|f| f[0].to_lowercase())
        .collect();
    let hot_only: String = tsv
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            !(l.starts_with("0x") && f[1] == "exchange" && !hot.contains(&f[0].to_lowercase()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(hot_only.len() < tsv.len());
    std::fs::write(d.join("attribution.tsv"), &hot_only).unwrap();
    let swept = json(&d, &["trace", "bybit"]);
    std::fs::write(d.join("attribution.tsv"), &tsv).unwrap();
    let stop_at = |r: &serde_json::Value, tx: &str, to: &str| -> Option<serde_json::Value> {
        r["stops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["tx"].as_str().unwrap_or("").eq_ignore_ascii_case(tx)
                    && s["address"].as_str().unwrap().eq_ignore_ascii_case(to)
            })
            .cloned()
    };
    let deposits: Vec<Vec<&str>> = hops_truth
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[3] == "deposit" && f[6] == "ETH")
        .collect();
    assert!(!deposits.is_empty());
    for f in &deposits {
        let labelled = stop_at(&v, f[2], f[5]).unwrap();
        let found = stop_at(&swept, f[2], f[5])
            .unwrap_or_else(|| panic!("deposit {} not found by its sweep", f[2]));
        assert_eq!(found["category"], "exchange");
        assert!(
            found["name"]
                .as_str()
                .unwrap()
                .contains("(deposit address: sweeps to 0x"),
            "{found}"
        );
        assert_eq!(found["amount"], labelled["amount"]);
    }
    assert_eq!(swept["conserved"], true);

    way_back(&d, &sim, &v, &html, &csv);
}

/// The way back (`truth/way_back.tsv`): a few of the thief's router payouts on Bitcoin go
/// into the vault again with a THORChain swap memo to a fresh Ethereum address; the router
/// pays each out on Ethereum (`TransferOut` memo `OUT:<txid>`), and the thief deposits it at
/// an exchange. The Ethereum case's trace follows each one back and stops at that deposit
/// with the truth's amount to the wei; a case made from the Bitcoin payout alone ends there
/// too.
fn way_back(
    d: &std::path::Path,
    sim: &std::path::Path,
    v: &serde_json::Value,
    html: &std::path::Path,
    csv: &std::path::Path,
) {
    let wb: Vec<Vec<String>> = std::fs::read_to_string(sim.join("truth/way_back.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    assert!(!wb.is_empty());
    let back = &v["to_ethereum"];
    let hops = back["hops"].as_array().unwrap();
    assert_eq!(hops.len(), wb.len(), "{back}");
    assert!(back["skipped"].as_array().unwrap().is_empty(), "{back}");
    assert_eq!(back["unjoined_sats"], 0);
    let leg = &back["trace"];
    assert_eq!(leg["conserved"], true);
    let stops = leg["stops"].as_array().unwrap();
    let mut carried = 0u128;
    for f in &wb {
        let h = hops
            .iter()
            .find(|h| h["deposit_tx"] == f[0].as_str())
            .unwrap_or_else(|| panic!("no hop back for {f:?}"));
        assert_eq!(h["from_chain"], "bitcoin");
        assert_eq!(h["to_chain"], "ethereum");
        assert_eq!(h["via"], "thorchain");
        assert_eq!(h["matched"], "thorchain_out");
        assert_eq!(h["confidence_ppm"], 1_000_000);
        assert_eq!(h["memo"], f[2].as_str());
        assert_eq!(h["release_tx"], f[4].as_str());
        assert_eq!(h["deposit_sats"].as_u64().unwrap().to_string(), f[1]);
        assert_eq!(h["released"], f[6].as_str());
        assert_eq!(h["payouts"][0]["address"], f[3].as_str());
        // The payout was stolen coin only, so the deposit is all tainted and so is the
        // outbound (the conversion rounds nothing away).
        assert_eq!(h["tainted_sats"], h["deposit_sats"]);
        assert_eq!(h["tainted"], f[6].as_str());
        carried += f[6].parse::<u128>().unwrap();
        // The Ethereum leg stops at the thief's exchange deposit with exactly its value.
        let at: u128 = stops
            .iter()
            .filter(|s| {
                s["tx"].as_str().unwrap_or("").eq_ignore_ascii_case(&f[7])
                    && s["address"].as_str().unwrap().eq_ignore_ascii_case(&f[8])
            })
            .map(|s| s["amount"].as_str().unwrap().parse::<u128>().unwrap())
            .sum();
        assert_eq!(at.to_string(), f[9], "{f:?}");
        assert!(stops.iter().any(|s| s["category"] == "exchange"));
    }
    // Per-chain totals: the Ethereum leg after Bitcoin starts from exactly the taint carried
    // back and adds up (held + stopped + fee).
    let t = &v["per_chain_totals"]["ethereum_return"][0];
    assert_eq!(t["source"].as_str().unwrap(), carried.to_string());
    let sum: u128 = ["held", "stopped", "fee", "pooled", "converted_out"]
        .iter()
        .map(|k| t[*k].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(sum, carried);
    let page = std::fs::read_to_string(html).unwrap();
    assert!(page.contains("Back to Ethereum"), "html");
    assert!(page.contains(&wb[0][4]), "html names the outbound");
    let rows = std::fs::read_to_string(csv).unwrap();
    assert_eq!(
        rows.lines()
            .filter(|l| l.starts_with("hop,bitcoin>ethereum,"))
            .count(),
        wb.len()
    );

    // Alerts watch the way back too: the Ethereum accounts holding the case's taint after
    // the crossing back are among the case's holders at the tip, and not before the first
    // outbound's block.
    let case = cointrail_cases::CaseStore::open(&d.join("cases.redb"))
        .unwrap()
        .get("bybit")
        .unwrap();
    let e = cointrail_engine::Engine::open_full(d, None).unwrap();
    let holders = e.case_holders(&case, None).unwrap().unwrap();
    let back_held: Vec<(String, u128)> = leg["held"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["token"].is_null())
        .map(|h| {
            (
                h["address"].as_str().unwrap().to_lowercase(),
                h["amount"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(!back_held.is_empty(), "{leg}");
    let held_at = |hs: &[(
        cointrail_evm::Address,
        cointrail_evm::movement::Asset,
        cointrail_evm::U256,
    )],
                   a: &str| {
        hs.iter()
            .filter(|(x, s, _)| {
                format!("{x:#x}") == a && *s == cointrail_evm::movement::Asset::Native
            })
            .map(|h| h.2.to::<u128>())
            .sum::<u128>()
    };
    for (a, amount) in &back_held {
        assert!(held_at(&holders, a) >= *amount, "{a} {amount}");
    }
    let first = wb
        .iter()
        .map(|f| f[5].parse::<u64>().unwrap())
        .min()
        .unwrap();
    let before = e.case_holders(&case, Some(first - 1)).unwrap().unwrap();
    for (a, _) in &back_held {
        assert_eq!(held_at(&before, a), 0, "{a} held before its outbound");
    }
    drop(e);

    // A case made from the Bitcoin side only (the router payout the thief sent back) ends
    // on Ethereum at the same exchange deposit.
    let f = &wb[0];
    cli(d, &["case", "create", "way-back", "--from", &f[11]]);
    let w = json(d, &["trace", "way-back"]);
    assert_eq!(w["chain"], "bitcoin+ethereum");
    let h = &w["to_ethereum"]["hops"];
    assert_eq!(h.as_array().unwrap().len(), 1, "{w}");
    assert_eq!(h[0]["deposit_tx"], f[0].as_str());
    assert_eq!(h[0]["matched"], "thorchain_out");
    assert_eq!(h[0]["tainted"], f[6].as_str());
    let e = &w["per_chain_totals"]["ethereum"][0];
    assert_eq!(e["source"], f[6].as_str());
    assert_eq!(e["stopped"], f[9].as_str());
    assert_eq!(w["to_ethereum"]["trace"]["conserved"], true);
}
