//! Issue 20, item 8: one label-size limit for every way in (CSV, TagPack, ActorPack, the
//! store itself, hence `labels add` and the API), with an error naming the row.

use cointrail_tags::*;

fn store() -> (tempfile::TempDir, TagStore) {
    let d = tempfile::tempdir().unwrap();
    let s = TagStore::open(d.path().join("labels.redb")).unwrap();
    (d, s)
}

const ADDR: &str = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT";

#[test]
fn a_csv_label_over_the_limit_is_refused_naming_its_line() {
    let long = "x".repeat(MAX_LABEL_CHARS + 1);
    let csv = format!(
        "address,currency,label,category\n{ADDR},BTC,fine,exchange\n{ADDR},BTC,{long},exchange\n"
    );
    let e = parse_user_csv(&csv, "mine.csv", "user:mine")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mine.csv:3: field 'label'"), "{e}");
    assert!(e.contains(&format!("at most {MAX_LABEL_CHARS}")), "{e}");
    // Exactly at the limit (in characters, not bytes) is fine.
    let at = "é".repeat(MAX_LABEL_CHARS);
    let csv = format!("address,currency,label,category\n{ADDR},BTC,{at},exchange\n");
    assert_eq!(
        parse_user_csv(&csv, "mine.csv", "user:mine").unwrap().len(),
        1
    );
}

#[test]
fn a_huge_tagpack_label_is_refused_naming_its_line() {
    // 2 MB: the 20 million characters, scaled down to stay fast.
    let long = "A".repeat(2_000_000);
    let pack = format!(
        "title: t\ncreator: c\nsource: https://example.org\ncurrency: BTC\ntags:\n- address: {ADDR}\n  label: ok\n- address: {ADDR}\n  label: {long}\n"
    );
    let e = parse_tagpack(&pack, "p.yaml", "graphsense:p")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("p.yaml:8: field 'label'"), "{e}");
    // An inherited header field is checked on each tag too.
    let pack = format!(
        "title: t\ncreator: c\nsource: https://example.org\ncurrency: BTC\ncategory: {}\ntags:\n- address: {ADDR}\n  label: ok\n",
        "c".repeat(MAX_LABEL_CHARS + 1)
    );
    let e = parse_tagpack(&pack, "p.yaml", "graphsense:p")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("p.yaml:7: field 'category'"), "{e}");
}

#[test]
fn an_actorpack_label_over_the_limit_is_refused() {
    let pack = format!(
        "actors:\n- id: a\n  label: {}\n",
        "n".repeat(MAX_LABEL_CHARS + 1)
    );
    let e = parse_actorpack(&pack, "a.yaml").unwrap_err().to_string();
    assert!(e.contains("actors[0].label"), "{e}");
}

#[test]
fn the_store_refuses_oversized_labels_from_any_caller() {
    let (_d, mut s) = store();
    let mut l = Label::new(
        "user",
        "BTC",
        Target::Address(ADDR.into()),
        &"z".repeat(10_000),
    );
    l.category = Some("user".into());
    let e = s.add_label(l, "2024-01-01").unwrap_err().to_string();
    assert!(e.contains("field 'label'") && e.contains(ADDR), "{e}");
    assert!(s.labels_for_address("BTC", ADDR, None).unwrap().is_empty());
    let l = Label::new(
        "user",
        "BTC",
        Target::Address(ADDR.into()),
        &"z".repeat(MAX_LABEL_CHARS),
    );
    s.add_label(l, "2024-01-01").unwrap();
    assert_eq!(s.labels_for_address("BTC", ADDR, None).unwrap().len(), 1);
}
