//! Ethereum screening through the running totals and per-asset lists answers exactly what
//! the walk answered when it read every list entry by entry (`address_by_scanning`), on a
//! simulated chain with exchanges (labelled), a DEX pool and a token (unlabelled hubs),
//! for every address and step bounds small enough to cut walks in many places. The
//! hand-worked figures are in `eth_screen.rs`, which runs the same fast path.

mod support;
use cointrail_risk::account::WalkOptions;
use support::*;

#[test]
fn the_fast_walk_answers_what_reading_every_entry_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let data = tmp.path().join("data");
    let s = sim.display().to_string();
    cli(
        &data,
        &[
            "simulate",
            "--chain",
            "ethereum",
            "--out",
            &s,
            "--txs",
            "3000",
            "--users",
            "120",
            "--exchanges",
            "3",
            "--heist-fanout",
            "10",
            "--seed",
            "5",
        ],
    );
    cli(&data, &["ingest", &sim.join("etl").display().to_string()]);
    // Exchanges and the thief labelled, as scripts/bench-serve-eth.sh does.
    let truth = std::fs::read_to_string(sim.join("truth/addresses.tsv")).unwrap();
    let mut tsv = String::new();
    let mut addrs = Vec::new();
    for l in truth.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        addrs.push(f[0].to_string());
        if f[1].starts_with("exchange-") {
            tsv.push_str(&format!("{}\texchange\t{}\n", f[0], f[1]));
        } else if f[1] == "thief" {
            tsv.push_str(&format!("{}\tstolen_funds\tsim-heist\n", f[0]));
        }
    }
    std::fs::write(data.join("attribution.tsv"), tsv).unwrap();
    let engine = cointrail_engine::Engine::open_full(&data, None).unwrap();
    let side = engine.evm("ethereum").unwrap();
    assert!(side.index.has_totals());
    let mut compared = 0;
    let mut cut = 0;
    let mut lumped = 0;
    for max_steps in [40, 400, 20_000] {
        let params = cointrail_risk::ExposureParams {
            max_hops: 3,
            max_steps,
            ..Default::default()
        };
        let screener = cointrail_risk::account::AccountScreener {
            view: side,
            attr: side,
            rules: &engine.rules,
            params: &params,
            prices: &*engine.prices,
        };
        // The branch read cap: none, small (lumps everywhere: the lump's amount comes from
        // the running totals in the fast walk, from reading the list in the reference),
        // the default.
        for cap in [0, 4, cointrail_risk::account::MAX_BRANCH_READS] {
            let opts = WalkOptions {
                max_branch_reads: cap,
                ..WalkOptions::default()
            };
            for a in &addrs {
                let Ok((_, id)) = side.address(a) else {
                    continue;
                };
                let fast =
                    serde_json::to_value(screener.address_with("ethereum", id, opts)).unwrap();
                let slow = serde_json::to_value(screener.address_with(
                    "ethereum",
                    id,
                    WalkOptions { scan: true, ..opts },
                ))
                .unwrap();
                assert_eq!(fast, slow, "{a} with max_steps {max_steps}, cap {cap}");
                compared += 1;
                let flows = || {
                    fast["received"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .chain(fast["sent"].as_array().unwrap())
                };
                cut += flows().any(|f| f["beyond_limit"] != "0") as usize;
                if cap == 4 {
                    lumped += flows().any(|f| f["beyond_branch_reads"] != "0") as usize;
                } else if cap == 0 {
                    assert!(flows().all(|f| f["beyond_branch_reads"] == "0"));
                }
            }
        }
    }
    assert!(compared > 900, "{compared}");
    // The bound did cut walks (the comparison covers where it stops), and not all of them;
    // the cap of 4 did lump.
    assert!(cut > 20 && cut < compared, "{cut} of {compared}");
    assert!(lumped > 100, "{lumped}");
}
