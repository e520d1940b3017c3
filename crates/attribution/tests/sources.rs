//! Real sources: the OFAC SDN advanced XML equals the publisher's lists; versions and
//! delistings; TagPacks; errors and garbage.

use cointrail_attribution::ofac::{parse_address_list, parse_sdn_advanced};
use cointrail_attribution::tagpack::parse_tagpack;
use cointrail_attribution::{read_maybe_bz2, LabelStore};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

#[test]
fn sdn_xml_equals_the_published_per_currency_lists() {
    let xml = read_maybe_bz2(&data("sdn_advanced.xml.bz2")).unwrap();
    let (version, labels) = parse_sdn_advanced(&xml, "sdn_advanced.xml").unwrap();
    assert_eq!(version, "2025-11-19");
    for (cur, file, n) in [
        ("BTC", "sanctioned_addresses_XBT.txt", 517),
        ("ETH", "sanctioned_addresses_ETH.txt", 77),
        ("USDT", "sanctioned_addresses_USDT.txt", 93),
    ] {
        let ours: BTreeSet<String> = labels
            .iter()
            .filter(|l| l.currency == cur)
            .map(|l| l.address.clone().unwrap().to_lowercase())
            .collect();
        let theirs: BTreeSet<String> = std::fs::read_to_string(data(file))
            .unwrap()
            .lines()
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(theirs.len(), n, "{file}");
        assert_eq!(ours, theirs, "{cur}");
    }
    // Parties and programs come along: the Lazarus Group is listed under DPRK programs.
    let laz: Vec<_> = labels
        .iter()
        .filter(|l| {
            l.actor
                .as_deref()
                .is_some_and(|a| a.to_uppercase().contains("LAZARUS"))
        })
        .collect();
    assert!(!laz.is_empty());
    assert!(
        laz.iter()
            .any(|l| l.programs.iter().any(|p| p.starts_with("DPRK"))),
        "{:?}",
        laz[0]
    );
}

#[test]
fn newer_version_closes_delisted_addresses_and_as_of_still_sees_them() {
    let d = tempfile::tempdir().unwrap();
    let s = LabelStore::open(&d.path().join("labels.redb")).unwrap();
    let old = parse_address_list(
        &std::fs::read_to_string(data("ofac-2024-09-27/sanctioned_addresses_ETH.txt")).unwrap(),
        "ETH",
        "2024-09-27",
        "old",
    )
    .unwrap();
    let new = parse_address_list(
        &std::fs::read_to_string(data("sanctioned_addresses_ETH.txt")).unwrap(),
        "ETH",
        "2025-11-19",
        "new",
    )
    .unwrap();
    s.import("ofac-sdn", "2024-09-27", &old).unwrap();
    let r = s.import("ofac-sdn", "2025-11-19", &new).unwrap();
    assert!(
        r.closed > 0,
        "Tornado Cash was delisted between the two lists"
    );
    let new_set: BTreeSet<_> = new.iter().map(|l| l.address.clone().unwrap()).collect();
    let gone = old
        .iter()
        .map(|l| l.address.clone().unwrap())
        .find(|a| !new_set.contains(a))
        .unwrap();
    assert!(s
        .labels_for("ETH", &gone, Some("2025-12-01"))
        .unwrap()
        .is_empty());
    let then = s.labels_for("ETH", &gone, Some("2024-10-01")).unwrap();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].valid_to.as_deref(), Some("2025-11-19"));
    // Idempotent: the same version again changes nothing.
    let again = s.import("ofac-sdn", "2025-11-19", &new).unwrap();
    assert_eq!((again.added, again.closed), (0, 0));
    // Older versions are refused, the store is untouched.
    assert!(s.import("ofac-sdn", "2024-09-27", &old).is_err());
    assert!(s
        .labels_for("ETH", &gone, Some("2025-12-01"))
        .unwrap()
        .is_empty());
}

#[test]
fn tagpacks_inherit_header_fields_and_round_trip() {
    let text = std::fs::read_to_string(data("ofac.yaml")).unwrap();
    let (title, version, labels) = parse_tagpack(&text, "ofac.yaml").unwrap();
    assert_eq!(title, "US Treasury OFAC Sanctions List");
    assert_eq!(version, "2024-02-26");
    assert!(labels.len() > 100);
    assert!(labels.iter().all(
        |l| l.label == "Asset listed under US Treasury OFAC Sanctions List" && l.category == "user"
    ));
    let d = tempfile::tempdir().unwrap();
    let s = LabelStore::open(&d.path().join("l.redb")).unwrap();
    s.import(&title, &version, &labels).unwrap();
    let first = labels[0].address.clone().unwrap();
    assert_eq!(s.labels_for("BTC", &first, None).unwrap().len(), 1);
    assert!(!s.search("treasury", 5).unwrap().is_empty());
    let exported = s.export_tagpack(None).unwrap();
    let (_, _, back) = parse_tagpack(&exported, "export.yaml").unwrap();
    let a: BTreeSet<_> = labels
        .iter()
        .map(|l| (l.address.clone(), l.label.clone()))
        .collect();
    let b: BTreeSet<_> = back
        .iter()
        .map(|l| (l.address.clone(), l.label.clone()))
        .collect();
    assert_eq!(a, b);
}

#[test]
fn bad_tagpacks_name_the_field_and_garbage_never_panics() {
    let e = parse_tagpack(
        "title: t\ncreator: c\ntags:\n- address: 1abc\n  currency: BTC\n  source: x\n",
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("p.yaml line 4") && e.contains("tags[0].label"),
        "{e}"
    );
    let e = parse_tagpack("creator: c\ntags: []\n", "q.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'title'"), "{e}");
    assert!(parse_tagpack(": : :\n\t-", "r.yaml").is_err());
    let xml = read_maybe_bz2(&data("sdn_advanced.xml.bz2")).unwrap();
    for cut in [0usize, 10, 5000, 123_457] {
        let _ = parse_sdn_advanced(&xml[..cut.min(xml.len())], "cut.xml");
    }
    assert!(parse_sdn_advanced(b"<a>not sdn</a>", "x.xml")
        .unwrap_err()
        .to_string()
        .contains("not an SDN"));
    let text = std::fs::read_to_string(data("binance.yaml")).unwrap();
    let mut bytes = text.into_bytes();
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] = b"{}[]:-'\"\n#"[i % 10];
        let _ = parse_tagpack(&String::from_utf8_lossy(&b), "m.yaml");
    }
    bytes.truncate(0);
}
