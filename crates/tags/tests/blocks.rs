//! The proof on real data: outputs of the 8 consecutive mainnet blocks 831,328-831,335
//! pay addresses that the GraphSense packs label as exchange wallets and miners.

use cointrail_chain::AddressKey;
use cointrail_tags::*;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn mainnet_blocks_pay_labelled_exchange_and_miner_addresses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let blocks = root.join("../../../shared/data/btc/mainnet");
    let packs = root.join("../../../shared/data/labels/graphsense-tagpacks/packs");
    if !blocks.exists() || !packs.exists() {
        eprintln!(
            "SKIPPED: {} or {} absent",
            blocks.display(),
            packs.display()
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut store = TagStore::open(d.path().join("t.redb")).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/data/tagpacks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("exchange-wallets-")
        })
        .collect();
    files.push(packs.join("miners.yaml"));
    files.push(packs.join("miners_additional.yaml"));
    for f in files {
        let name = format!("gs:{}", f.file_stem().unwrap().to_string_lossy());
        let ls = parse_tagpack(
            &std::fs::read_to_string(&f).unwrap(),
            &f.display().to_string(),
            &name,
        )
        .unwrap();
        store.import(&name, "2025-01-01", ls).unwrap();
    }
    let snap = TagSnapshot::build(&store, "BTC", None).unwrap();
    let mut hits: BTreeSet<(String, String)> = BTreeSet::new();
    let mut outputs = 0;
    for h in 831_328..=831_335 {
        let raw = std::fs::read(blocks.join(format!("0{h}.bin"))).unwrap();
        let block: bitcoin::Block = bitcoin::consensus::deserialize(&raw).unwrap();
        for tx in &block.txdata {
            for o in &tx.output {
                outputs += 1;
                let Some(k) = AddressKey::from_script(&o.script_pubkey) else {
                    continue;
                };
                let a = normalize_address("BTC", &k.render(bitcoin::Network::Bitcoin));
                for l in snap.get(&a) {
                    hits.insert((
                        l.source.to_string(),
                        l.category.as_deref().unwrap_or("").to_string(),
                    ));
                }
            }
        }
    }
    eprintln!("{outputs} outputs; labelled hits: {hits:?}");
    let sources: BTreeSet<&str> = hits.iter().map(|(s, _)| s.as_str()).collect();
    for want in [
        "gs:exchange-wallets-binance",
        "gs:exchange-wallets-bybit",
        "gs:exchange-wallets-bitfinexcom",
        "gs:miners_additional",
    ] {
        assert!(
            sources.contains(want),
            "no output pays an address of {want}: {sources:?}"
        );
    }
    assert!(hits.iter().any(|(_, c)| c == "exchange"));
    assert!(hits.iter().any(|(_, c)| c == "miner"));
}
