//! The built-in `dprk-incidents` set: every pack parses and imports (again: nothing
//! changes), each label keeps its pack's source URL, and an incident's perpetrator
//! addresses are those of its researcher/FBI/OFAC packs, never its victims'.

use cointrail_tags::builtin::{import_builtin, incident, incidents, DPRK_INCIDENTS};
use cointrail_tags::{parse_tagpack, TagStore, Target};

fn addresses(file: &str) -> Vec<String> {
    let (_, text) = DPRK_INCIDENTS.iter().find(|(f, _)| *f == file).unwrap();
    parse_tagpack(text, file, "t")
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.target {
            Target::Address(a) => Some(a),
            Target::Tx(_) => None,
        })
        .collect()
}

#[test]
fn the_set_imports_whole_and_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TagStore::open(dir.path().join("labels.redb")).unwrap();
    let first = import_builtin(&mut s, "dprk-incidents").unwrap();
    assert_eq!(first.len(), DPRK_INCIDENTS.len());
    let total: usize = DPRK_INCIDENTS
        .iter()
        .map(|(f, t)| parse_tagpack(t, f, "t").unwrap().len())
        .sum();
    assert!(total > 2000, "{total}");
    assert_eq!(first.iter().map(|r| r.labels).sum::<usize>(), total);
    let again = import_builtin(&mut s, "dprk-incidents").unwrap();
    assert!(again
        .iter()
        .all(|r| r.stats.added == 0 && r.stats.closed == 0 && r.stats.updated == 0));
    // Sourced: the Bybit exploiter's label names the page it comes from.
    let ls = s
        .labels_for_address("ETH", "0x0fa09c3a328792253f8dee7116848723b72a6d2e", None)
        .unwrap();
    assert!(
        ls.iter().any(|l| l.source == "dprk-incidents:bybit-2025"
            && l.category.as_deref() == Some("perpetrator")
            && l.origin.as_deref().is_some_and(|o| o.contains("bybit"))),
        "{ls:?}"
    );
    assert!(import_builtin(&mut s, "nope").is_err());
}

#[test]
fn an_incident_is_its_perpetrators_not_its_victims() {
    assert!(incidents().contains(&"bybit-2025") && incidents().len() >= 20);
    for name in incidents() {
        incident(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let (title, bybit) = incident("bybit-2025").unwrap();
    assert!(title.contains("Bybit"), "{title}");
    let own = addresses("bybit-2025.yaml");
    assert_eq!(bybit.len(), own.len());
    assert!(bybit.iter().all(|x| x.currency == "ETH"));
    for v in addresses("bybit-2025_victim.yaml") {
        assert!(
            !bybit.iter().any(|x| x.address.eq_ignore_ascii_case(&v)),
            "{v}"
        );
    }
    // The FBI's list joins the researchers' for Harmony; EVM side chains keep their network.
    let (_, harmony) = incident("harmony-horizon-2022").unwrap();
    assert!(harmony.iter().any(|x| x.pack == "harmony-horizon-2022_fbi"));
    assert!(harmony.iter().any(|x| x.currency == "BTC"));
    let (_, coinex) = incident("coinex-2023").unwrap();
    assert!(coinex.iter().any(|x| x.network.is_some()), "{coinex:?}");
    let e = incident("no-such-hack").unwrap_err().to_string();
    assert!(e.contains("bybit-2025"), "{e}");
}
