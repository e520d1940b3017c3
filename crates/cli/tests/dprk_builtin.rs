//! The built-in DPRK incident packs from the command line: one command imports them as
//! sourced labels, and a case starts from an incident's perpetrator addresses.

mod support;

use support::{json, try_cli};

#[test]
fn builtin_packs_import_and_a_case_starts_from_an_incident() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = json(d, &["labels", "import", "--builtin", "dprk-incidents"]);
    let packs = r.as_array().unwrap();
    assert!(packs.len() >= 30, "{r}");
    let added: u64 = packs
        .iter()
        .map(|p| p["stats"]["added"].as_u64().unwrap())
        .sum();
    assert!(added > 2000, "{added}");
    // Again: nothing new.
    let r = json(d, &["labels", "import", "--builtin", "dprk-incidents"]);
    assert!(r
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["stats"]["added"] == 0 && p["stats"]["closed"] == 0));
    let show = json(
        d,
        &[
            "labels",
            "show",
            "0x0fa09c3a328792253f8dee7116848723b72a6d2e",
        ],
    );
    assert!(
        show.to_string().contains("dprk-incidents:bybit-2025"),
        "{show}"
    );

    // A case from the Bybit pack: its perpetrator addresses (ETH), none of its victims'.
    let c = json(
        d,
        &["case", "create", "bybit", "--from-incident", "bybit-2025"],
    );
    assert_eq!(c["origin"], "builtin:dprk-incidents/bybit-2025");
    let srcs = c["sources"].as_array().unwrap();
    assert!(srcs.len() > 50, "{c}");
    assert!(srcs
        .iter()
        .any(|s| s["address"] == "0x0fa09c3a328792253f8dee7116848723b72a6d2e"));
    assert!(c["description"].as_str().unwrap().contains("Bybit"));
    let shown = json(d, &["case", "show", "bybit"]);
    assert_eq!(
        shown["case"]["sources"].as_array().unwrap().len(),
        srcs.len()
    );
    // KuCoin's pack holds other chains too: they are named, not silently dropped.
    let k = json(
        d,
        &["case", "create", "kucoin", "--from-incident", "kucoin-2020"],
    );
    assert!(!k["left_out"].as_array().unwrap().is_empty(), "{k}");

    let (ok, _, err) = try_cli(d, &["case", "create", "x", "--from-incident", "no-such"]);
    assert!(!ok && err.contains("bybit-2025"), "{err}");
    let (ok, _, err) = try_cli(d, &["labels", "import", "--builtin", "nope"]);
    assert!(!ok && err.contains("dprk-incidents"), "{err}");
}
