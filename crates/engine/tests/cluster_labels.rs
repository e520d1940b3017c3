//! A cluster's name comes from its members' labels in the store: asked member by member
//! (small clusters) or matched against the store's labelled addresses (an exchange's
//! millions), the answer is the same and complete.

use cointrail_chain::view::ChainView;
use cointrail_engine::wiring::cluster_store_labels;
use cointrail_tags::{Label, TagStore, Target};

mod common;

#[test]
fn a_clusters_labels_are_the_same_asked_per_member_or_from_the_store() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let (idx, c) = common::real_blocks(&data);
    // The largest cluster of the 8 real blocks.
    let a = (0..idx.addr_count() as u32)
        .max_by_key(|&x| c.size_of(x))
        .unwrap();
    let size = c.size_of(a);
    assert!(size > 20, "{size}");
    let members = c.addresses(a, 0, size as usize);
    let outsider = (0..idx.addr_count() as u32)
        .find(|&x| c.cluster_of(x) != c.cluster_of(a))
        .unwrap();
    let mut st = TagStore::open(data.join("labels.redb")).unwrap();
    let picks = [
        (members[0], "first member"),
        (members[members.len() / 2], "middle member"),
        (members[members.len() - 1], "last member"),
        (outsider, "someone else"),
    ];
    for (x, name) in picks {
        let mut l = Label::new("user", "BTC", Target::Address(idx.render_addr(x)), name);
        l.category = Some("exchange".into());
        st.add_label(l, "2026-11-30").unwrap();
    }
    drop(st);
    let names = |per_member_up_to| {
        let mut v: Vec<String> = cluster_store_labels(&data, &idx, &c, a, per_member_up_to)
            .unwrap()
            .into_iter()
            .map(|l| l.label)
            .collect();
        v.sort();
        v
    };
    let want = ["first member", "last member", "middle member"];
    assert_eq!(names(u32::MAX), want);
    assert_eq!(names(0), want);
}
