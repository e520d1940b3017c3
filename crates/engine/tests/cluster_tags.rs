//! `cluster build`'s entity tags, `cluster show`'s labels and the entity lookup by name
//! stream the attribution sources instead of holding every attribution in memory: their
//! answers are those of the whole in-memory list (`read_sources`), for every address of the
//! index, and the persisted state's cluster layer names the same label first.

use cointrail_chain::view::{AddrId, ChainView};
use cointrail_chain::AddressKey;
use cointrail_clustering::EntityTags;
use cointrail_engine::attr_state::AttrState;
use cointrail_engine::wiring::{addresses_named, cluster_labels, cluster_tags, read_sources};
use cointrail_engine::STOP_CATEGORIES;
use std::collections::BTreeMap;

mod common;

#[test]
fn streamed_tags_and_labels_equal_the_in_memory_sources() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let (idx, c) = common::real_blocks(&data);
    let n = idx.addr_count() as u32;
    // The three largest clusters, labelled on several members with several names and
    // categories (a service on one member only), written in an order that is not the
    // members' id order; some singletons; an address with two lines.
    let mut roots: Vec<AddrId> = (0..n).filter(|&x| c.cluster_of(x) == x).collect();
    roots.sort_by_key(|&r| std::cmp::Reverse(c.size_of(r)));
    let mut lines = vec!["# address\tcategory\tname".to_string()];
    for (k, &r) in roots[..3].iter().enumerate() {
        let members = c.addresses(r, 0, c.size_of(r) as usize);
        assert!(members.len() >= 3, "{}", members.len());
        let m = members.len();
        let picks = [members[m - 1], members[m / 2], members[0], members[m / 3]];
        for (j, &x) in picks.iter().enumerate() {
            let cat = if k == 1 && j == 2 { "exchange" } else { "scam" };
            lines.push(format!("{}\t{cat}\tname-{k}-{j}\t{j}", idx.render_addr(x)));
        }
    }
    let singles: Vec<AddrId> = (0..n).filter(|&x| c.size_of(x) == 1).take(5).collect();
    for (j, &x) in singles.iter().enumerate() {
        lines.push(format!("{}\tmixer\tsingle-{j}", idx.render_addr(x)));
    }
    lines.push(format!(
        "{}\tgambling\tsingle-0-again",
        idx.render_addr(singles[0])
    ));
    // Not in the index (a made-up P2WPKH: the genesis address is not usable here, real
    // blocks keep paying it), an EVM account, a blank line.
    let absent = bitcoin::Address::from_script(
        &bitcoin::ScriptBuf::new_p2wpkh(
            &<bitcoin::WPubkeyHash as bitcoin::hashes::Hash>::from_byte_array([0x5a; 20]),
        ),
        bitcoin::Network::Bitcoin,
    )
    .unwrap()
    .to_string();
    let absent_key = AddressKey::parse(&absent, bitcoin::Network::Bitcoin).unwrap();
    assert!(
        idx.lookup_addr(&absent_key).is_none(),
        "{absent} is in the index"
    );
    lines.push(format!("{absent}\texchange\tabsent"));
    lines.push("0x00000000219ab540356cBB839Cbe05303d7705Fa\texchange\tevm".into());
    lines.push(String::new());
    // Windows line endings on every other line.
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{l}{}", if i % 2 == 0 { "\r\n" } else { "\n" }))
        .collect();
    std::fs::write(data.join("attribution.tsv"), text).unwrap();

    // The reference: every attribution in memory, in source order.
    let (list, _) = read_sources(&data, idx.render_network()).unwrap();
    assert_eq!(
        list.len(),
        3 * 4 + 5 + 1 + 1,
        "every Bitcoin line, EVM and comments left out"
    );
    assert_eq!(list[0].1.name, "name-0-0", "no line ending in the name");
    assert_eq!(list[1].1.name, "name-0-1");
    // Per cluster: its attributions ordered by member id, then source order.
    let mut by_cluster: BTreeMap<AddrId, Vec<(AddrId, usize, String, String)>> = BTreeMap::new();
    for (i, (k, a)) in list.iter().enumerate() {
        let Some(id) = AddressKey::from_bytes(k).and_then(|key| idx.lookup_addr(&key)) else {
            continue;
        };
        by_cluster.entry(c.cluster_of(id)).or_default().push((
            id,
            i,
            a.name.clone(),
            a.category.clone(),
        ));
    }
    for v in by_cluster.values_mut() {
        v.sort();
    }
    assert_eq!(by_cluster.len(), 3 + 5);

    let tags = cluster_tags(&data, &idx, &c).unwrap();
    let state = AttrState::load(&data, &idx, Some(&c)).unwrap();
    let mut tagged = 0;
    for x in 0..n {
        let want = by_cluster.get(&c.cluster_of(x)).map(|v| {
            (
                v[0].2.clone(),
                v.iter().any(|l| STOP_CATEGORIES.contains(&l.3.as_str())),
            )
        });
        let got = tags.tag(x).map(|t| (t.name, t.service));
        assert_eq!(got, want, "address id {x}");
        tagged += got.is_some() as usize;
    }
    assert!(tagged > 3 * 3 + 5, "{tagged}");
    // The service flag comes from any member: the exchange on the second cluster's third pick.
    assert!(tags.tag(roots[1]).unwrap().service);
    assert!(!tags.tag(roots[0]).unwrap().service);

    // `cluster show`'s labels: each (name, category) once, by member id then source order,
    // the same as the persisted state's cluster layer.
    for (&r, v) in &by_cluster {
        let mut want: Vec<(String, String)> = Vec::new();
        for l in v {
            if !want.iter().any(|w| w.0 == l.2 && w.1 == l.3) {
                want.push((l.2.clone(), l.3.clone()));
            }
        }
        let got: Vec<(String, String)> = cluster_labels(&data, &idx, &c, r)
            .unwrap()
            .into_iter()
            .map(|a| {
                assert_eq!(a.entity, Some(r as u64));
                (a.name, a.category)
            })
            .collect();
        assert_eq!(got, want, "cluster {r}");
        let st: Vec<(String, String)> = state
            .of_cluster(r)
            .into_iter()
            .map(|a| (a.name, a.category))
            .collect();
        assert_eq!(st, want, "state's cluster {r}");
    }
    assert!(cluster_labels(&data, &idx, &c, roots[5])
        .unwrap()
        .is_empty());

    // The entity lookup by name: case-insensitive, each address once.
    assert_eq!(
        addresses_named(&data, &idx, "SINGLE-2").unwrap(),
        vec![singles[2]]
    );
    assert!(addresses_named(&data, &idx, "genesis").unwrap().is_empty());

    // A line without a name is an error naming the file's line, not a panic.
    std::fs::write(
        data.join("attribution.tsv"),
        format!("# x\n{}\texchange\n", idx.render_addr(0)),
    )
    .unwrap();
    let e = cluster_tags(&data, &idx, &c).err().unwrap().to_string();
    assert!(
        e.contains("line 2") && e.contains("expected address, category, name"),
        "{e}"
    );
}
