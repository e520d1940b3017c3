//! `cluster` with the change layer, as an investigator uses it on a simulated economy:
//! build with a named rule set, list the soft links and what the guards made of them,
//! show an entity and its change group, explain a change link, evaluate rule sets against the truth.

mod support;
use support::{json, try_cli as run};

#[test]
fn change_links_entities_explain_and_evaluation() {
    let d = tempfile::tempdir().unwrap();
    let sim = d.path().join("sim");
    let dir = d.path().join("data");
    let simdir = sim.to_str().unwrap();
    let (ok, _, err) = run(
        &dir,
        &[
            "simulate", "--out", simdir, "--txs", "20000", "--seed", "515",
        ],
    );
    assert!(ok, "{err}");
    let blocks = sim.join("blocks");
    let truth = sim.join("truth");
    assert!(run(&dir, &["ingest", "--blocks-dir", blocks.to_str().unwrap()]).0);
    assert!(run(&dir, &["sim-attribution", truth.to_str().unwrap()]).0);

    // A bad rule set is refused with the list of rules.
    let (ok, _, err) = run(&dir, &["cluster", "build", "--change", "h2 & nonsense"]);
    assert!(!ok && err.contains("unknown rule \"nonsense\""), "{err}");

    let b = json(
        &dir,
        &[
            "cluster",
            "build",
            "--change",
            "default",
            "--change-delay",
            "6",
        ],
    );
    let ch = &b["change"];
    assert_eq!(ch["rules"], "default");
    assert_eq!(ch["expression"], "h2 & type & (optimal | round) - consumer");
    assert_eq!(ch["delay_blocks"], 6);
    let merged = ch["outcomes"]["merged"].as_u64().unwrap();
    assert!(merged > 50, "{b}");
    // Exchange withdrawals to fresh customer addresses look like change: the service
    // guard refuses them (the simulated exchanges are attributed).
    assert!(ch["outcomes"]["service"].as_u64().unwrap() > 0, "{b}");

    let l = json(
        &dir,
        &["cluster", "links", "--outcome", "merged", "--limit", "5"],
    );
    let links = l["links"].as_array().unwrap();
    assert_eq!(links.len(), 5);
    // Merged links passed their delay: their verdicts are final.
    assert!(links.iter().all(|x| x["verdict"] == "final"), "{l}");
    let pending = json(
        &dir,
        &[
            "cluster",
            "links",
            "--outcome",
            "pending",
            "--limit",
            "1000",
        ],
    );
    let pending = pending["links"].as_array().unwrap();
    // The last blocks' links wait; those whose delay ends beyond the tip are provisional.
    assert!(
        pending.iter().any(|x| x["verdict"] == "provisional"),
        "{pending:?}"
    );
    let (spender, change) = (
        links[0]["spender"].as_str().unwrap(),
        links[0]["change"].as_str().unwrap(),
    );
    // The two are apart as common-input clusters, one change group through the link.
    let s = json(&dir, &["cluster", "show", spender]);
    // It says how it was obtained: the index and the clustering's setting.
    let prov = &s["provenance"];
    assert!(prov["index_tip_height"].as_u64().is_some(), "{s}");
    assert_eq!(prov["clustering"]["covered_txs"], b["covered_txs"]);
    assert_eq!(prov["clustering"]["change_rules"]["name"], "default");
    assert_eq!(prov["clustering"]["change_rules"]["delay_blocks"], 6);
    // The change-linked clusters are a change group, never called an entity (the entity id
    // is the cluster id that `trace --json` and /v1/entities use).
    assert!(s.get("entity").is_none(), "{s}");
    let e = &s["change_group"];
    assert!(e["change_group_id"].as_u64().is_some(), "{s}");
    assert_eq!(e["change_rules"], "default");
    assert!(e["size"].as_u64().unwrap() > s["cluster"]["size"].as_u64().unwrap());
    assert!(e["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == change));
    let x = json(&dir, &["cluster", "explain", spender, change]);
    assert_eq!(x["same_change_group"], true);
    assert_eq!(x["same_cluster"], false);
    let (ok, human, _) = run(&dir, &["cluster", "explain", spender, change]);
    assert!(ok && human.contains("one change group"), "{human}");
    let (ok, human, _) = run(&dir, &["cluster", "show", spender]);
    assert!(
        ok && human.contains("change group") && !human.contains("\nentity "),
        "{human}"
    );
    let steps = x["merges"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["txid"], links[0]["txid"]);
    assert!(steps[0]["rule"].as_str().unwrap().contains("change output"));
    // Asked the other way round, the same link explains it.
    let back = json(&dir, &["cluster", "explain", change, spender]);
    assert_eq!(back["same_change_group"], true);
    assert_eq!(back["merges"][0]["txid"], links[0]["txid"]);
    assert_eq!(back["merges"][0]["from"], change);
    let refused = json(&dir, &["cluster", "links", "--outcome", "service"]);
    let r = &refused["links"][0];
    let x = json(
        &dir,
        &[
            "cluster",
            "explain",
            r["spender"].as_str().unwrap(),
            r["change"].as_str().unwrap(),
        ],
    );
    assert_eq!(
        x["same_change_group"], false,
        "a refused link joins nothing"
    );

    // Against the truth: the default set keeps precision and adds recall; `loose` (no
    // type rule, no consumer rule) shows why the guards and the rules matter.
    let ev = json(
        &dir,
        &[
            "cluster",
            "evaluate",
            truth.to_str().unwrap(),
            "--change",
            "default",
            "--change",
            "loose",
            "--change-delay",
            "6",
        ],
    );
    let mi = &ev["multi_input"];
    assert_eq!(mi["precision"], 1.0);
    let def = &ev["change_rule_sets"][0];
    assert_eq!(def["change"]["rules"], "default");
    assert!(def["scores"]["precision"].as_f64().unwrap() > 0.99, "{def}");
    assert!(def["recall_gain"].as_f64().unwrap() > 0.0, "{def}");
    assert!(
        def["scores"]["clusters"].as_u64().unwrap() < mi["clusters"].as_u64().unwrap(),
        "{def}"
    );
    let loose = &ev["change_rule_sets"][1];
    assert!(
        loose["scores"]["precision"].as_f64().unwrap()
            < def["scores"]["precision"].as_f64().unwrap(),
        "{loose}"
    );

    // Exports: CSV and Parquet carry the same rows; Parquet records the settings.
    let csv = d.path().join("c.csv");
    let pq = d.path().join("c.parquet");
    let v = json(&dir, &["cluster", "export", "--out", csv.to_str().unwrap()]);
    let rows = v["rows"].as_u64().unwrap();
    let v = json(
        &dir,
        &[
            "cluster",
            "export",
            "--format",
            "parquet",
            "--out",
            pq.to_str().unwrap(),
        ],
    );
    assert_eq!(v["rows"].as_u64().unwrap(), rows);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("address,cluster_id,change_group_id"));
    let (back, meta) = cointrail_export::read_clusters(&pq).unwrap();
    assert_eq!(back.len() as u64, rows);
    let mut joined = 0;
    for (line, r) in lines.zip(&back) {
        let want = format!(
            "{},{},{}",
            r.address,
            r.cluster_id,
            r.change_group_id.unwrap()
        );
        assert_eq!(line, want);
        joined += usize::from(Some(r.cluster_id) != r.change_group_id);
    }
    assert!(
        joined > 0,
        "some addresses' change group is larger than their cluster"
    );
    assert!(meta
        .iter()
        .any(|(k, v)| k == "cointrail.change_rules" && v.starts_with("default")));
    let (ok, _, err) = run(&dir, &["cluster", "export", "--format", "parquet"]);
    assert!(!ok && err.contains("needs --out"), "{err}");

    // Dropping the layer rebuilds without it.
    let b = json(&dir, &["cluster", "build", "--change", "none"]);
    assert!(b["change"].is_null());
    let (ok, _, err) = run(&dir, &["cluster", "links"]);
    assert!(!ok && err.contains("--change default"), "{err}");

    // A saved file that is not what the state says: rebuilt, and the user told why, in
    // plain text (stderr is a pipe here: no colour codes, no timestamps).
    // (The manifest names the current copy; the other copy, the save before, goes too,
    // or it would be used.)
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("clusters/state.json")).unwrap()).unwrap();
    let copy = dir.join("clusters").join(m["current"].as_str().unwrap());
    std::fs::write(copy.join("arrays.bin"), b"not the arrays").unwrap();
    if let Some(other) = m["other"].as_str() {
        std::fs::remove_dir_all(dir.join("clusters").join(other)).unwrap();
    }
    let (ok, out, err) = run(&dir, &["cluster", "build"]);
    assert!(ok, "{err}");
    assert!(out.contains("clustering covers"), "{out}");
    let warning = err
        .lines()
        .find(|l| l.contains("built again"))
        .expect("a warning");
    assert_eq!(
        warning.trim(),
        "WARN the saved clustering has data files that do not match its state file: it is built again from the index"
    );
}
