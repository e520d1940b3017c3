use cointrail_tags::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn shared(p: &str) -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/labels")
        .join(p);
    if d.exists() {
        Some(d)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (shared data not present)",
            d.display()
        );
        None
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn store() -> (tempfile::TempDir, TagStore) {
    let d = tempfile::tempdir().unwrap();
    let s = TagStore::open(d.path().join("tags.redb")).unwrap();
    (d, s)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn list(dir: &str, cur: &str) -> BTreeSet<String> {
    let c = normalize_currency(cur);
    read(&data(&format!("{dir}/sanctioned_addresses_{cur}.txt")))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|a| normalize_address(&c, a))
        .collect()
}

#[test]
fn sdn_xml_equals_published_lists_per_currency() {
    let (version, labels) =
        parse_sdn_advanced_file(&data("ofac-2025-11-19/sdn_advanced.xml.bz2")).unwrap();
    assert_eq!(version, "2025-11-19");
    let mut by_cur: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in &labels {
        by_cur
            .entry(l.currency.clone())
            .or_default()
            .insert(l.address().unwrap().to_string());
    }
    let mut checked = 0;
    for e in std::fs::read_dir(data("ofac-2025-11-19")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(cur) = name
            .strip_prefix("sanctioned_addresses_")
            .and_then(|n| n.strip_suffix(".txt"))
        else {
            continue;
        };
        let want = list("ofac-2025-11-19", cur);
        let got = by_cur.remove(&normalize_currency(cur)).unwrap_or_default();
        assert_eq!(got, want, "currency {cur}");
        checked += 1;
    }
    assert!(
        by_cur.is_empty(),
        "currencies in the XML without a published list: {:?}",
        by_cur.keys()
    );
    assert!(checked >= 15);
    assert_eq!(list("ofac-2025-11-19", "XBT").len(), 517);
    assert_eq!(list("ofac-2025-11-19", "ETH").len(), 77);
    // Names and programmes from the parties.
    let dprk = labels
        .iter()
        .filter(|l| l.programs.iter().any(|p| p == "DPRK3"))
        .count();
    let cyber = labels
        .iter()
        .filter(|l| l.programs.iter().any(|p| p.starts_with("CYBER")))
        .count();
    assert!(dprk > 0 && cyber > 0, "DPRK3 {dprk}, CYBER {cyber}");
    let garantex = labels
        .iter()
        .find(|l| {
            l.actor
                .as_deref()
                .is_some_and(|a| a.to_lowercase().contains("garantex"))
        })
        .expect("Garantex");
    assert!(garantex.label.contains("(OFAC "), "{}", garantex.label);
}

#[test]
fn sdn_import_into_store_is_idempotent() {
    let (_d, mut s) = store();
    let (v, labels) =
        parse_sdn_advanced_file(&data("ofac-2025-11-19/sdn_advanced.xml.bz2")).unwrap();
    let n = labels.len() as u64;
    let st = s.import(OFAC_SOURCE, &v, labels.clone()).unwrap();
    assert!(st.added > 700 && st.added <= n, "{st:?}");
    let st2 = s.import(OFAC_SOURCE, &v, labels).unwrap();
    assert_eq!((st2.added, st2.closed, st2.updated), (0, 0, 0));
    assert_eq!(st2.unchanged, st.added);
    let btc: Vec<_> = list("ofac-2025-11-19", "XBT").into_iter().collect();
    let ls = s.labels_for_address("BTC", &btc[0], None).unwrap();
    assert!(!ls.is_empty() && ls[0].category.as_deref() == Some("sanctioned"));
    let info = s.list_sources().unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].versions, vec!["2025-11-19".to_string()]);
}

#[test]
fn delisting_closes_tornado_cash_addresses() {
    let (_d, mut s) = store();
    let old = parse_address_list(
        &read(&data("ofac-2024-09-27/sanctioned_addresses_ETH.txt")),
        "ETH",
        "2024 ETH",
    )
    .unwrap();
    let new = parse_address_list(
        &read(&data("ofac-2025-11-19/sanctioned_addresses_ETH.txt")),
        "ETH",
        "2025 ETH",
    )
    .unwrap();
    let old_set: BTreeSet<_> = old
        .iter()
        .map(|l| l.address().unwrap().to_string())
        .collect();
    let new_set: BTreeSet<_> = new
        .iter()
        .map(|l| l.address().unwrap().to_string())
        .collect();
    let gone: Vec<_> = old_set.difference(&new_set).cloned().collect();
    assert!(
        gone.len() >= 50,
        "Tornado Cash delisting removed {} addresses",
        gone.len()
    );
    s.import("ofac-eth", "2024-09-27", old).unwrap();
    let st = s.import("ofac-eth", "2025-11-19", new).unwrap();
    assert_eq!(st.closed as usize, gone.len());
    // Tornado Cash router (delisted March 2025).
    let tc = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b";
    assert!(gone.iter().any(|g| g == tc));
    assert!(s.labels_for_address("ETH", tc, None).unwrap().is_empty());
    let then = s
        .labels_for_address(
            "ETH",
            &tc.to_uppercase().replace("0X", "0x"),
            Some("2024-10-01"),
        )
        .unwrap();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].valid_to.as_deref(), Some("2025-11-19"));
    assert!(
        s.labels_for_address("ETH", tc, Some("2024-01-01"))
            .unwrap()
            .is_empty(),
        "not known before the first import"
    );
    // An older version is refused and changes nothing.
    assert!(s.import("ofac-eth", "2024-01-01", vec![]).is_err());
    assert_eq!(
        s.source_info("ofac-eth").unwrap().unwrap().closed_labels as usize,
        gone.len()
    );
}

#[test]
fn tagpack_inherits_header_and_checks_fields() {
    let text = read(&data("tagpacks/BITB_etf.yaml"));
    let ls = parse_tagpack(&text, "BITB_etf.yaml", "gs:bitb").unwrap();
    assert!(!ls.is_empty());
    for l in &ls {
        assert_eq!(l.category.as_deref(), Some("exchange"));
        assert_eq!(l.actor.as_deref(), Some("bitwise"));
        assert_eq!(l.confidence.as_deref(), Some("service_data"));
        assert!(l.is_cluster_definer);
        assert_eq!(l.currency, "BTC");
        assert!(l.lastmod.is_some());
    }
    let pack = "title: t\ncreator: c\nlabel: L\nsource: s\ncurrency: BTC\nabuse: scam\ntags:\n- address: BC1QWMS3SLUVYLC7V4YAV3E3TN8SMRW0AAPUDSERUW\n  label: override\n  is_cluster_definer: true\n- address: 1abc\n  currency: ETH\n";
    let ls = parse_tagpack(pack, "p.yaml", "x").unwrap();
    assert_eq!(ls[0].label, "override");
    assert_eq!(
        ls[0].address(),
        Some("bc1qwms3sluvylc7v4yav3e3tn8smrw0aapudseruw")
    );
    assert_eq!(ls[1].label, "L");
    assert_eq!(ls[1].currency, "ETH");
    assert_eq!(ls[1].abuse.as_deref(), Some("scam"));
    // Missing currency on the second tag (line 10): named with file, line and field.
    let bad = "title: t\ncreator: c\nlabel: L\nsource: s\ntags:\n- address: a1\n  currency: BTC\n- address: a2\n  label: x\n";
    match parse_tagpack(bad, "bad.yaml", "x") {
        Err(TagError::Field {
            file, line, field, ..
        }) => assert_eq!(
            (file.as_str(), line, field.as_str()),
            ("bad.yaml", 8, "currency")
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(parse_tagpack("creator: c\ntags: []\n", "f", "x"), Err(TagError::Field { ref field, .. }) if field == "title")
    );
    let tx = parse_tagpack(
        "title: t\ncreator: c\nlabel: L\nsource: s\ncurrency: BTC\ntags:\n- tx_hash: ABCD\n",
        "f",
        "x",
    )
    .unwrap();
    assert_eq!(tx[0].target, Target::Tx("abcd".into()));
}

#[test]
fn failed_import_changes_nothing() {
    let (_d, mut s) = store();
    let good = parse_tagpack(&read(&data("tagpacks/protonmail.yaml")), "p", "gs").unwrap();
    s.import("gs", "2024-01-01", good.clone()).unwrap();
    let before = s.all_labels(None).unwrap();
    assert!(s.import("gs", "not-a-date", vec![]).is_err());
    assert!(s.import("gs", "2023-01-01", vec![]).is_err());
    assert_eq!(s.all_labels(None).unwrap(), before);
}

#[test]
fn every_shared_tagpack_parses() {
    let Some(dir) = shared("graphsense-tagpacks/packs") else {
        return;
    };
    let mut n = 0;
    let mut files = 0;
    for p in yaml_files(&dir) {
        let t = read(&p);
        let ls =
            parse_tagpack(&t, &p.display().to_string(), "gs").unwrap_or_else(|e| panic!("{e}"));
        n += ls.len();
        files += 1;
    }
    assert_eq!(files, 86);
    assert!(n > 500_000, "{n} tags");
    let Some(a) = shared("graphsense-tagpacks/actors/graphsense.actorpack.yaml") else {
        return;
    };
    let actors = parse_actorpack(&read(&a), "actorpack").unwrap();
    assert!(actors.len() > 1000);
    assert!(
        actors
            .iter()
            .any(|a| a.id == "binance" && a.categories.iter().any(|c| c == "exchange")),
        "binance actor"
    );
}

#[test]
fn csv_add_search_export_roundtrip() {
    let (_d, mut s) = store();
    let csv = "address,currency,label,category,confidence,actor\nbc1QXY,BTC,My exchange,exchange,ownership,myex\n1Foo,BTC,Scammer,scam,,\n";
    let ls = parse_user_csv(csv, "u.csv", "user").unwrap();
    s.import("user", "2025-01-01", ls).unwrap();
    assert!(
        matches!(parse_user_csv("address,currency,label\n", "u.csv", "user"), Err(TagError::Field { ref field, .. }) if field == "category")
    );
    assert!(
        matches!(parse_user_csv("address,currency,label,category\nx,BTC,,c\n", "u.csv", "user"), Err(TagError::Field { line: 2, ref field, .. }) if field == "label")
    );
    let mut l = Label::new("user", "BTC", Target::Address("3Bar".into()), "Cold wallet");
    l.category = Some("exchange".into());
    s.add_label(l, "2025-02-01").unwrap();
    assert_eq!(
        s.labels_for_address("btc", "BC1qxy", None).unwrap()[0]
            .actor
            .as_deref(),
        Some("myex")
    );
    assert_eq!(s.search("cold", 10).unwrap().len(), 1);
    assert_eq!(s.search("SCAM", 10).unwrap()[0].label, "Scammer");
    assert_eq!(s.search("", 2).unwrap().len(), 2);
    let tx = parse_tagpack(
        "title: t\ncreator: c\nlabel: L\nsource: s\ncurrency: BTC\ntags:\n- tx_hash: ab\n",
        "f",
        "t",
    )
    .unwrap();
    s.import("t", "2025-01-01", tx).unwrap();
    assert_eq!(s.labels_for_tx("BTC", "AB", None).unwrap().len(), 1);
    assert!(s.labels_for_address("BTC", "ab", None).unwrap().is_empty());
    // Export and re-import: the same labels.
    let mut all = s.all_labels(None).unwrap();
    let y = export_tagpack(&all, "export", "cointrail");
    let back = parse_tagpack(&y, "export.yaml", "re").unwrap();
    let (_d2, mut s2) = store();
    s2.import("re", "2025-03-01", back).unwrap();
    let mut again = s2.all_labels(None).unwrap();
    let norm = |v: &mut Vec<Label>| {
        for l in v.iter_mut() {
            l.source.clear();
            l.valid_from.clear();
            l.origin = None;
        }
        v.sort_by_key(|l| format!("{:?}{}", l.target, l.label));
    };
    norm(&mut all);
    norm(&mut again);
    assert_eq!(all, again);
    assert_eq!(s.list_sources().unwrap().len(), 2);
}

#[test]
fn best_definer_by_confidence_with_conflicts() {
    let mk = |name: &str, conf: &str, def: bool| {
        let mut l = Label::new("s", "BTC", Target::Address("a".into()), name);
        l.confidence = Some(conf.into());
        l.is_cluster_definer = def;
        l
    };
    let ls = vec![
        mk("Binance", "service_data", true),
        mk("Lazarus", "authority_data", true),
        mk("Huge", "ownership", false),
        mk("Binance", "web_crawl", true),
    ];
    let (name, conflicts) = best_definer(&ls);
    assert_eq!(name.as_deref(), Some("Lazarus"));
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].name, "Binance");
    assert_eq!(best_definer(&ls[2..3]), (None, vec![]));
}

#[test]
fn snapshot_lookup() {
    let (_d, mut s) = store();
    let ls = parse_tagpack(&read(&data("tagpacks/BITB_etf.yaml")), "b", "gs").unwrap();
    let a = ls[0].address().unwrap().to_string();
    s.import("gs", "2024-01-01", ls).unwrap();
    let snap = TagSnapshot::build(&s, "BTC", None).unwrap();
    assert_eq!(snap.get(&a)[0].category.as_deref(), Some("exchange"));
    assert!(snap.get("1nothere").is_empty());
    assert!(TagSnapshot::build(&s, "ETH", None).unwrap().is_empty());
}

/// Deterministic byte mutations of real YAML and XML: errors are fine, panics are not.
#[test]
fn garbage_input_never_panics() {
    let yaml = read(&data("tagpacks/BITB_etf.yaml")).into_bytes();
    let xml = br#"<?xml version="1.0"?><Sanctions><DateOfIssue><Year>2025</Year><Month>11</Month><Day>19</Day></DateOfIssue><ReferenceValueSets><FeatureTypeValues><FeatureType ID="1">Digital Currency Address - XBT</FeatureType></FeatureTypeValues></ReferenceValueSets><DistinctParties><DistinctParty><Profile ID="7"><Identity><Alias Primary="true"><DocumentedName><DocumentedNamePart><NamePartValue>X</NamePartValue></DocumentedNamePart></DocumentedName></Alias></Identity><Feature FeatureTypeID="1"><FeatureVersion><VersionDetail>1abc</VersionDetail></FeatureVersion></Feature></Profile></DistinctParty></DistinctParties></Sanctions>"#.to_vec();
    let (v, ok) = parse_sdn_advanced(&xml[..], "x").unwrap();
    assert_eq!(
        (v.as_str(), ok.len(), ok[0].label.as_str()),
        ("2025-11-19", 1, "X")
    );
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let junk = [
        b':', b'-', b'\n', b' ', b'<', b'>', b'"', b'\'', b'[', b'{', b'&', 0xff, b'/', b'#',
    ];
    for round in 0..400 {
        for src in [&yaml, &xml] {
            let mut m = src.clone();
            for _ in 0..1 + round % 5 {
                let i = (rnd() as usize) % m.len();
                match rnd() % 3 {
                    0 => m[i] = junk[(rnd() as usize) % junk.len()],
                    1 => {
                        m.remove(i);
                    }
                    _ => m.truncate(i),
                }
                if m.is_empty() {
                    break;
                }
            }
            let s = String::from_utf8_lossy(&m);
            let _ = parse_tagpack(&s, "m", "x");
            let _ = parse_actorpack(&s, "m");
            let _ = parse_user_csv(&s, "m", "x");
            let _ = parse_sdn_advanced(&m[..], "m");
        }
    }
}

#[test]
fn import_path_detects_formats() {
    let (_d, mut s) = store();
    assert!(valid_date(&today()));
    let r = import_path(
        &mut s,
        &data("ofac-2025-11-19/sanctioned_addresses_XBT.txt"),
        None,
        None,
        Some("2025-11-19"),
    )
    .unwrap();
    assert_eq!(
        (r.format, r.source.as_str(), r.stats.added),
        (Format::AddressList, "ofac-list:BTC", 517)
    );
    let r = import_path(&mut s, &data("tagpacks/BITB_etf.yaml"), None, None, None).unwrap();
    assert_eq!(
        (r.format, r.source.as_str(), r.version.as_str()),
        (Format::TagPack, "graphsense:BITB_etf", "2023-01-26")
    );
    let again = import_path(&mut s, &data("tagpacks/BITB_etf.yaml"), None, None, None).unwrap();
    assert_eq!(again.stats.added, 0);
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("mine.csv");
    std::fs::write(&csv, "address,currency,label,category\n1A,BTC,x,exchange\n").unwrap();
    assert_eq!(
        import_path(&mut s, &csv, None, None, None).unwrap().format,
        Format::Csv
    );
    let junk = d.path().join("junk.bin");
    std::fs::write(&junk, [0u8, 1, 2]).unwrap();
    assert!(import_path(&mut s, &junk, None, None, None).is_err());
    assert_eq!(
        detect_format(Path::new("x.bz2"), b"BZh91AY"),
        Some(Format::SdnXml)
    );
    assert_eq!(
        detect_format(Path::new("a.yaml"), b"title: x\nactors:\n"),
        Some(Format::ActorPack)
    );
}

#[test]
fn dprk_incident_packs_import() {
    let Some(dir) = shared("dprk-incidents") else {
        return;
    };
    let (_d, mut s) = store();
    let mut n = 0;
    for p in yaml_files(&dir) {
        let r = import_path(&mut s, &p, Some(Format::TagPack), None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        n += r.stats.added;
    }
    assert!(n > 2000, "{n}");
}

#[test]
fn relisted_label_keeps_its_earlier_interval() {
    let (_d, mut s) = store();
    let one = |a: &str| parse_address_list(a, "BTC", "l").unwrap();
    s.import("l", "2020-01-01", one("1AAA\n1BBB\n")).unwrap();
    s.import("l", "2021-01-01", one("1BBB\n")).unwrap();
    let st = s.import("l", "2022-01-01", one("1AAA\n1BBB\n")).unwrap();
    assert_eq!(st.reopened, 1);
    let at = |d: Option<&str>| s.labels_for_address("BTC", "1AAA", d).unwrap().len();
    assert_eq!(
        (
            at(Some("2020-06-01")),
            at(Some("2021-06-01")),
            at(Some("2022-06-01")),
            at(None)
        ),
        (1, 0, 1, 1)
    );
    assert_eq!(
        s.labels_for_address("BTC", "1AAA", None).unwrap()[0].valid_from,
        "2022-01-01"
    );
    // Idempotent after a relisting too.
    let st = s.import("l", "2022-01-01", one("1AAA\n1BBB\n")).unwrap();
    assert_eq!(
        (st.added, st.reopened, st.closed, st.unchanged),
        (0, 0, 0, 2)
    );
}

#[test]
fn actorpack_import_names_its_source_and_version_and_aliases_once() {
    let (d, mut s) = store();
    let p = d.path().join("exchanges.actorpack.yaml");
    std::fs::write(
        &p,
        "title: t\ncreator: c\nactors:\n  - id: binanceus\n    label: Binance.US\n    categories: [exchange]\n    aliases: [binanceus, binance_us]\n    context:\n      aliases: [binanceus, Binance_US, bus]\n",
    )
    .unwrap();
    let r = import_path(&mut s, &p, None, None, Some("2025-01-02")).unwrap();
    assert_eq!(r.source, "graphsense-actors:exchanges.actorpack");
    assert_eq!(r.version, "2025-01-02");
    let a = s.actor("binanceus").unwrap().unwrap();
    assert_eq!(a.aliases, vec!["binanceus", "binance_us", "bus"]);
    let src = s.list_sources().unwrap();
    let info = src
        .iter()
        .find(|x| x.name == "graphsense-actors:exchanges.actorpack")
        .expect("the ActorPack is listed among the sources");
    assert_eq!(info.versions, vec!["2025-01-02"]);
    assert_eq!(info.actors, 1);
}
