//! End-to-end checks of small simulated chains: they read back as a valid chain, every
//! spend is of an existing unspent output, the ground truth matches the blocks, and the
//! CoinJoins have the shapes the detectors of methods.md §3.1 look for.

use bitcoin::consensus::deserialize;
use bitcoin::{Address, Block, BlockHash, Network, OutPoint, Transaction, TxOut, Txid};
use cointrail_sim::{simulate, HeistParams, SimConfig, COIN};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn small(seed: u64) -> SimConfig {
    let mut c = SimConfig {
        seed,
        txs: 6_000,
        users: 300,
        exchanges: 3,
        thefts: 1,
        xor: true,
        etl: false,
        txs_per_block: 40,
        merchants: 20,
        exchange_reserve_sats: 400 * COIN,
        reorder_window: 6,
        ..SimConfig::default()
    };
    let start = c.economy_start_height() + 5;
    let mut h = HeistParams::new(1, 150 * COIN, start);
    h.dormant_blocks = 100;
    h.fanout = 40;
    h.dormant_share_pct = 40;
    c.heists = vec![h];
    c
}

fn run(cfg: &SimConfig) -> (tempfile::TempDir, cointrail_sim::SimSummary) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = simulate(cfg, &out, &mut |_, _| {}).unwrap();
    (dir, s)
}

fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                m.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    m
}

/// Blocks in file order, read with our own framing/XOR parser.
fn read_blocks(blocks_dir: &Path) -> Vec<Block> {
    let key: Option<[u8; 8]> = std::fs::read(blocks_dir.join("xor.dat"))
        .ok()
        .map(|k| k.try_into().unwrap());
    let mut names: Vec<PathBuf> = std::fs::read_dir(blocks_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("blk"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let mut data = std::fs::read(&p).unwrap();
        if let Some(k) = key {
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= k[i % 8];
            }
        }
        let mut off = 0;
        while off < data.len() {
            assert_eq!(
                &data[off..off + 4],
                &[0xfa, 0xbf, 0xb5, 0xda],
                "{p:?} @{off}: regtest magic"
            );
            let len = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap()) as usize;
            let b: Block = deserialize(&data[off + 8..off + 8 + len]).unwrap();
            out.push(b);
            off += 8 + len;
        }
    }
    out
}

/// The blocks ordered by height along prev links; panics unless they form one chain from
/// regtest genesis.
fn chain_order(blocks: Vec<Block>) -> Vec<Block> {
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).block_hash();
    let mut by_prev: HashMap<BlockHash, Block> = HashMap::new();
    let mut first = None;
    for b in blocks {
        if b.block_hash() == genesis {
            first = Some(b);
            continue;
        }
        assert!(by_prev.insert(b.header.prev_blockhash, b).is_none(), "fork");
    }
    let mut out = vec![first.expect("genesis present")];
    while let Some(b) = by_prev.remove(&out.last().unwrap().block_hash()) {
        out.push(b);
    }
    assert!(
        by_prev.is_empty(),
        "{} blocks not linked to the chain",
        by_prev.len()
    );
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let mut cfg = small(5);
    cfg.etl = true;
    let (a, _) = run(&cfg);
    let (b, _) = run(&cfg);
    let fa = files_under(&a.path().join("out"));
    let fb = files_under(&b.path().join("out"));
    assert!(
        fa.len() >= 12,
        "blocks, etl and truth files: {:?}",
        fa.keys()
    );
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(
            v == &fb[k],
            "{k:?} differs between two runs with the same seed"
        );
    }
    let (c, _) = run(&small(6));
    let fc = files_under(&c.path().join("out"));
    let blk = PathBuf::from("blocks/blk00000.dat");
    assert_ne!(fa[&blk], fc[&blk]);
}

#[test]
fn blocks_form_a_valid_chain_with_valid_transactions() {
    let mut cfg = small(11);
    cfg.max_file_bytes = 1 << 20;
    let (dir, s) = run(&cfg);
    let out = dir.path().join("out");
    let in_file_order = read_blocks(&out.join("blocks"));
    assert_eq!(in_file_order.len() as u64, s.blocks);
    assert!(
        s.files >= 2,
        "1 MiB files should roll over: {} files",
        s.files
    );
    // Written slightly out of order, as Core does.
    let mut seen = HashSet::new();
    let mut early = 0;
    for b in &in_file_order {
        if !seen.contains(&b.header.prev_blockhash)
            && !b.header.prev_blockhash.to_byte_array_is_zero()
        {
            early += 1;
        }
        seen.insert(b.block_hash());
    }
    assert!(early > 0, "no block precedes its parent in the files");
    let chain = chain_order(in_file_order);
    assert_eq!(chain.len() as u64, s.blocks);
    assert_eq!(chain.last().unwrap().block_hash().to_string(), s.tip_hash);

    let mut utxo: HashMap<OutPoint, (TxOut, u32, bool)> = HashMap::new();
    let mut n_tx = 0u64;
    let mut segwit_txs = 0;
    let mut p2wsh_spends = 0;
    for (h, b) in chain.iter().enumerate().skip(1) {
        let h = h as u32;
        assert!(b.check_merkle_root(), "height {h}: merkle root");
        assert!(
            b.check_witness_commitment(),
            "height {h}: witness commitment"
        );
        b.header
            .validate_pow(b.header.target())
            .expect("proof of work");
        assert_eq!(b.header.bits.to_consensus(), 0x207fffff);
        if h > 16 {
            assert_eq!(b.bip34_block_height().unwrap(), h as u64, "BIP34 height");
        }
        let mut fees = 0u64;
        for (i, tx) in b.txdata.iter().enumerate() {
            n_tx += 1;
            assert_eq!(tx.is_coinbase(), i == 0);
            if i == 0 {
                continue;
            }
            if tx.input.iter().any(|x| !x.witness.is_empty()) {
                segwit_txs += 1;
            }
            let mut in_sum = 0;
            for inp in &tx.input {
                let (o, ch, cb) = utxo.remove(&inp.previous_output).unwrap_or_else(|| {
                    panic!(
                        "height {h}: {} spends a missing or spent output",
                        tx.compute_txid()
                    )
                });
                if cb {
                    assert!(h >= ch + 100, "coinbase spent before maturity");
                }
                // The spending data matches the output type.
                let spk = &o.script_pubkey;
                if spk.is_p2wpkh() {
                    assert!(inp.script_sig.is_empty() && inp.witness.len() == 2);
                    assert_eq!(inp.witness.nth(1).unwrap().len(), 33);
                    let sig = inp.witness.nth(0).unwrap();
                    assert!(sig.len() == 71 || sig.len() == 72);
                } else if spk.is_p2wsh() {
                    assert_eq!(inp.witness.len(), 4, "2-of-3 multisig witness");
                    let ws = inp.witness.nth(3).unwrap();
                    let h = bitcoin::hashes::sha256::Hash::hash(ws);
                    assert_eq!(&spk.as_bytes()[2..], h.as_byte_array());
                    p2wsh_spends += 1;
                } else if spk.is_p2tr() {
                    assert_eq!(inp.witness.len(), 1);
                    assert_eq!(inp.witness.nth(0).unwrap().len(), 64);
                } else if spk.is_p2pkh() {
                    assert!(inp.witness.is_empty());
                    let pk = inp.script_sig.instructions().nth(1).unwrap().unwrap();
                    let pk = pk.push_bytes().unwrap().as_bytes();
                    let hash = bitcoin::PubkeyHash::hash(pk);
                    assert_eq!(&spk.as_bytes()[3..23], hash.as_ref() as &[u8]);
                }
                in_sum += o.value.to_sat();
            }
            let out_sum: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
            assert!(in_sum >= out_sum, "height {h}: outputs exceed inputs");
            fees += in_sum - out_sum;
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                utxo.insert(
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    (o.clone(), h, false),
                );
            }
        }
        let cb = &b.txdata[0];
        let cb_out: u64 = cb.output.iter().map(|o| o.value.to_sat()).sum();
        assert!(
            cb_out <= 50 * COIN + fees,
            "height {h}: coinbase pays too much"
        );
        let txid = cb.compute_txid();
        for (v, o) in cb.output.iter().enumerate() {
            utxo.insert(
                OutPoint {
                    txid,
                    vout: v as u32,
                },
                (o.clone(), h, true),
            );
        }
    }
    assert_eq!(n_tx, s.txs);
    assert!(segwit_txs > 100);
    assert!(
        p2wsh_spends > 0,
        "cold wallets (P2WSH multisig) never spent"
    );
    // The project's own reader accepts the directory.
    let mut cat = cointrail_chain::Catalog::new();
    cat.add_blocks_dir(&out.join("blocks")).unwrap();
    assert_eq!(cat.entries.len() as u64, s.blocks);
    assert_eq!(cat.network, Some(Network::Regtest));
}

trait ZeroHash {
    fn to_byte_array_is_zero(&self) -> bool;
}
impl ZeroHash for BlockHash {
    fn to_byte_array_is_zero(&self) -> bool {
        use bitcoin::hashes::Hash;
        self.to_byte_array() == [0; 32]
    }
}

use bitcoin::hashes::Hash as _;

#[test]
fn xor_only_obfuscates() {
    let mut a = small(21);
    a.xor = true;
    let mut b = small(21);
    b.xor = false;
    let (da, _) = run(&a);
    let (db, _) = run(&b);
    let key = std::fs::read(da.path().join("out/blocks/xor.dat")).unwrap();
    assert_eq!(key.len(), 8);
    assert_ne!(key, vec![0; 8]);
    assert!(!db.path().join("out/blocks/xor.dat").exists());
    let mut x = std::fs::read(da.path().join("out/blocks/blk00000.dat")).unwrap();
    let plain = std::fs::read(db.path().join("out/blocks/blk00000.dat")).unwrap();
    assert_ne!(x, plain);
    for (i, byte) in x.iter_mut().enumerate() {
        *byte ^= key[i % 8];
    }
    assert_eq!(x, plain);
}

fn tsv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn outpoint(s: &str) -> OutPoint {
    OutPoint::from_str(s).unwrap()
}

#[test]
fn ground_truth_matches_the_blocks() {
    // Two heists on different exchanges plus a theft, all in one chain.
    let mut cfg = small(31);
    let mut second = HeistParams::new(2, 60 * COIN, cfg.heists[0].start_height + 20);
    second.fanout = 20;
    second.dormant_blocks = 30;
    cfg.heists.push(second);
    let (dir, s) = run(&cfg);
    assert_eq!(s.heists.len(), 3);
    let out = dir.path().join("out");
    let chain = chain_order(read_blocks(&out.join("blocks")));
    let mut outputs: HashMap<OutPoint, TxOut> = HashMap::new();
    let mut spent_by: HashMap<OutPoint, Txid> = HashMap::new();
    let mut txs: Vec<&Transaction> = Vec::new();
    for b in &chain {
        for tx in &b.txdata {
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                outputs.insert(
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    o.clone(),
                );
            }
            if !tx.is_coinbase() {
                for i in &tx.input {
                    spent_by.insert(i.previous_output, txid);
                }
            }
            txs.push(tx);
        }
    }
    let addr_of = |o: &TxOut| {
        Address::from_script(&o.script_pubkey, Network::Regtest)
            .unwrap_or_else(|_| panic!("{:?}", o))
            .to_string()
    };
    let truth = out.join("truth");
    let owners: HashMap<String, u32> = tsv(&truth.join("addresses.tsv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
    let kinds: HashMap<u32, String> = tsv(&truth.join("entities.tsv"))
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone()))
        .collect();
    // Every address in the chain has an owner.
    for o in outputs.values() {
        // Genesis pays a bare public key; everything else has an address.
        if o.script_pubkey.is_op_return() || o.script_pubkey.is_p2pk() {
            continue;
        }
        assert!(
            owners.contains_key(&addr_of(o)),
            "no owner for {}",
            addr_of(o)
        );
    }
    let mut thief_outs: HashMap<OutPoint, (u64, String)> = HashMap::new();
    for r in tsv(&truth.join("thief_outputs.tsv")) {
        let op = outpoint(&r[1]);
        let o = &outputs[&op];
        assert_eq!(o.value.to_sat(), r[2].parse::<u64>().unwrap());
        assert_eq!(addr_of(o), r[3]);
        assert_eq!(
            kinds[&owners[&r[3]]], "thief",
            "thief output {op} owned by a non-thief"
        );
        thief_outs.insert(op, (o.value.to_sat(), r[4].clone()));
    }
    let mut payments: HashMap<OutPoint, u64> = HashMap::new();
    for r in tsv(&truth.join("thief_payments.tsv")) {
        let op = outpoint(&r[1]);
        let o = &outputs[&op];
        assert_eq!(
            o.value.to_sat(),
            r[2].parse::<u64>().unwrap(),
            "payment {op}"
        );
        assert_eq!(addr_of(o), r[3]);
        let place: u32 = r[4].parse().unwrap();
        assert_eq!(
            owners[&r[3]], place,
            "payment {op} goes to its place's address"
        );
        assert_eq!(kinds[&place], r[5]);
        assert!(["exchange", "otc", "mixer", "coinjoin_coordinator"].contains(&r[5].as_str()));
        payments.insert(op, o.value.to_sat());
    }
    let mut stolen: HashSet<OutPoint> = HashSet::new();
    for r in tsv(&truth.join("stolen_outpoints.tsv")) {
        let op = outpoint(&r[1]);
        assert_eq!(outputs[&op].value.to_sat(), r[2].parse::<u64>().unwrap());
        assert_eq!(
            spent_by[&op].to_string(),
            r[4],
            "stolen outpoint spent by the drain"
        );
        stolen.insert(op);
    }
    // What the thieves hold at the end is exactly their unspent outputs.
    let end: HashMap<OutPoint, String> = tsv(&truth.join("thief_end_state.tsv"))
        .into_iter()
        .map(|r| (outpoint(&r[1]), r[4].clone()))
        .collect();
    for op in thief_outs.keys() {
        assert_eq!(
            end.contains_key(op),
            !spent_by.contains_key(op),
            "end state of {op}"
        );
    }
    // Fees recomputed from the blocks: thief (and stolen) inputs minus the thief's own new
    // outputs (mixer payouts come from the mixer) minus payments.
    let mut fees = 0i64;
    for tx in &txs {
        let txid = tx.compute_txid();
        let tin: u64 = tx
            .input
            .iter()
            .filter(|i| {
                thief_outs.contains_key(&i.previous_output) || stolen.contains(&i.previous_output)
            })
            .map(|i| outputs[&i.previous_output].value.to_sat())
            .sum();
        let mut tout = 0u64;
        let mut paid = 0u64;
        for v in 0..tx.output.len() as u32 {
            let op = OutPoint { txid, vout: v };
            if let Some((val, role)) = thief_outs.get(&op) {
                // Mixer payouts and the thief's own clean coins come from outside.
                if role != "mixer_payout" && role != "clean" {
                    tout += val;
                }
            }
            if let Some(p) = payments.get(&op) {
                paid += p;
            }
        }
        if tin > 0 || tout > 0 {
            fees += tin as i64 - tout as i64 - paid as i64;
        }
    }
    let mut sum_fees = 0i64;
    for h in &s.heists {
        let paid =
            h.paid_exchange_sats + h.paid_otc_sats + h.paid_mixer_sats + h.paid_coinjoin_fee_sats;
        assert_eq!(
            h.stolen_sats + h.returned_by_mixer_sats + h.own_clean_sats,
            paid + h.fees_sats + h.held_dormant_sats + h.held_other_sats,
            "conservation for heist {}",
            h.id
        );
        assert!(h.stolen_sats > 0, "heist {} stole nothing", h.id);
        sum_fees += h.fees_sats as i64;
    }
    assert_eq!(fees, sum_fees);
    assert!(s.heists[1].paid_exchange_sats > 0 && s.heists[1].stolen_sats >= 60 * COIN);
    let stolen_by: BTreeMap<String, usize> =
        tsv(&truth.join("stolen_outpoints.tsv"))
            .iter()
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r[0].clone()).or_default() += 1;
                m
            });
    assert_eq!(
        stolen_by.len(),
        3,
        "every heist and the theft have stolen outpoints"
    );
    let lazarus = &s.heists[0];
    assert!(lazarus.stolen_sats >= 150 * COIN && lazarus.stolen_sats < 400 * COIN);
    assert!(
        lazarus.paid_exchange_sats > 0 && lazarus.paid_otc_sats > 0 && lazarus.paid_mixer_sats > 0
    );
    assert!(lazarus.paid_coinjoin_fee_sats > 0);
    assert!(
        lazarus.dormant_outputs_at_end > 0,
        "part should still be dormant"
    );
    // The thief paid two services from stolen coins and its own clean ones together and
    // kept the change: the blocks say so.
    assert!(lazarus.own_clean_sats > 0);
    let m = lazarus
        .mixed_spend
        .as_ref()
        .expect("the mixed spend happened");
    let tx = txs
        .iter()
        .find(|t| t.compute_txid().to_string() == m.txid)
        .unwrap();
    assert_eq!(tx.input.len(), m.inputs.len());
    for (i, (input, (op, v, is_stolen))) in tx.input.iter().zip(&m.inputs).enumerate() {
        let prev = input.previous_output;
        assert_eq!(prev.to_string(), *op, "input {i}");
        assert_eq!(outputs[&prev].value.to_sat(), *v, "input {i}");
        let role = &thief_outs[&prev].1;
        assert_eq!(role == "clean", !is_stolen, "input {i} is {role}");
    }
    assert!(m.stolen_in_sats > 0 && m.clean_in_sats > 0);
    assert_eq!(
        m.stolen_in_sats + m.clean_in_sats,
        m.inputs.iter().map(|x| x.1).sum::<u64>()
    );
    assert_eq!(m.outputs.len(), 3);
    for o in &m.outputs {
        let op = OutPoint {
            txid: tx.compute_txid(),
            vout: o.vout,
        };
        assert_eq!(tx.output[o.vout as usize].value.to_sat(), o.sats);
        if o.kind == "thief" {
            assert_eq!(thief_outs[&op].1, "mixed_change");
            assert!(end.contains_key(&op), "the change is kept");
        } else {
            assert_eq!(payments[&op], o.sats);
        }
    }
}

fn equal_group(tx: &Transaction) -> (u64, usize) {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for o in &tx.output {
        *counts.entry(o.value.to_sat()).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(v, c)| (*c, *v)).unwrap()
}

/// methods.md §3.1 Whirlpool.
fn is_whirlpool(tx: &Transaction, prev: &HashMap<OutPoint, TxOut>) -> bool {
    let n = tx.input.len();
    if n != tx.output.len() || !(5..=10).contains(&n) {
        return false;
    }
    let p = tx.output[0].value.to_sat();
    if ![100_000, 1_000_000, 5_000_000, 50_000_000].contains(&p) {
        return false;
    }
    let ins: Vec<&TxOut> = tx.input.iter().map(|i| &prev[&i.previous_output]).collect();
    tx.output
        .iter()
        .all(|o| o.value.to_sat() == p && o.script_pubkey.is_p2wpkh())
        && ins.iter().all(|o| o.script_pubkey.is_p2wpkh())
        && ins.iter().any(|o| o.value.to_sat() == p)
        && ins
            .iter()
            .all(|o| o.value.to_sat() >= p && o.value.to_sat() <= p + 110_000)
}

/// methods.md §3.1 JoinMarket, design rule c ∈ {e, e-1}.
fn is_joinmarket(tx: &Transaction) -> Option<(usize, usize)> {
    let (v, e) = equal_group(tx);
    let c = tx.output.len() - e;
    let types: HashSet<bool> = tx
        .output
        .iter()
        .map(|o| o.script_pubkey.is_p2wpkh())
        .collect();
    let ok = (2..=30).contains(&e)
        && v >= 100_000
        && (c == e || c + 1 == e)
        && tx.input.len() >= tx.output.len()
        && types.len() == 1;
    ok.then_some((e, c))
}

/// methods.md §3.1 Wasabi 1 (after height 610,000 rules).
fn is_wasabi1(tx: &Transaction, prev: &HashMap<OutPoint, TxOut>) -> bool {
    let (v, e) = equal_group(tx);
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for o in &tx.output {
        *counts.entry(o.value.to_sat()).or_default() += 1;
    }
    let unique = counts.values().filter(|c| **c == 1).count();
    e >= 10
        && (8_000_000..=12_000_000).contains(&v)
        && tx.input.len() >= e
        && unique >= 2
        && tx.output.iter().all(|o| o.script_pubkey.is_p2wpkh())
        && tx
            .input
            .iter()
            .all(|i| prev[&i.previous_output].script_pubkey.is_p2wpkh())
}

/// methods.md §3.1 Wasabi 2.
fn is_wasabi2(tx: &Transaction, prev: &HashMap<OutPoint, TxOut>) -> bool {
    let denoms: HashSet<u64> = cointrail_sim::ww2_denominations().into_iter().collect();
    let ins: Vec<&TxOut> = tx.input.iter().map(|i| &prev[&i.previous_output]).collect();
    let std_outs = tx
        .output
        .iter()
        .filter(|o| denoms.contains(&o.value.to_sat()))
        .count();
    ins.len() >= 50
        && ins
            .iter()
            .all(|o| o.script_pubkey.is_p2wpkh() || o.script_pubkey.is_p2tr())
        && ins.windows(2).all(|w| w[0].value >= w[1].value)
        && tx.output.windows(2).all(|w| w[0].value >= w[1].value)
        && std_outs * 10 > tx.output.len() * 8
}

#[test]
fn wasabi2_denominations_are_the_78_standard_values() {
    let d = cointrail_sim::ww2_denominations();
    assert_eq!(d.len(), 78);
    for v in [8_388_608u64, 4_782_969, 3_188_646, 5_000_000, 1_000_000] {
        assert!(d.contains(&v), "{v}");
    }
    assert!(!d.contains(&1_234_567) && !d.contains(&4_096));
    assert_eq!((*d.last().unwrap(), d[0]), (5_000, 100_000_000_000));
}

#[test]
fn coinjoins_have_detectable_shapes() {
    let mut cfg = small(41);
    cfg.txs = 12_000;
    cfg.users = 1_500;
    cfg.heists[0].start_height = cfg.economy_start_height() + 5;
    let (dir, _) = run(&cfg);
    let out = dir.path().join("out");
    let chain = chain_order(read_blocks(&out.join("blocks")));
    let mut prev: HashMap<OutPoint, TxOut> = HashMap::new();
    let mut by_txid: HashMap<Txid, Transaction> = HashMap::new();
    for b in &chain {
        for tx in &b.txdata {
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                prev.insert(
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    o.clone(),
                );
            }
            by_txid.insert(txid, tx.clone());
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut sweep_shape = 0;
    for r in tsv(&out.join("truth/tx_kinds.tsv")) {
        let tx = &by_txid[&Txid::from_str(&r[0]).unwrap()];
        *counts.entry(r[1].clone()).or_default() += 1;
        match r[1].as_str() {
            "whirlpool_mix" => assert!(is_whirlpool(tx, &prev), "{} is not Whirlpool-shaped", r[0]),
            "wasabi" => assert!(is_wasabi1(tx, &prev), "{} is not Wasabi-shaped", r[0]),
            "wasabi2" => assert!(is_wasabi2(tx, &prev), "{} is not Wasabi 2-shaped", r[0]),
            "joinmarket" => {
                let (e, c) =
                    is_joinmarket(tx).unwrap_or_else(|| panic!("{} not JoinMarket-shaped", r[0]));
                assert_eq!(c, e);
            }
            "joinmarket_sweep" => {
                let (e, c) =
                    is_joinmarket(tx).unwrap_or_else(|| panic!("{} not JoinMarket-shaped", r[0]));
                assert_eq!(c + 1, e);
                sweep_shape += 1;
            }
            "whirlpool_tx0" => {
                assert!(tx.output.iter().any(|o| o.script_pubkey.is_op_return()));
            }
            "exchange_sweep" => {
                assert_eq!(tx.output.len(), 1);
                assert!(tx.input.len() >= 3);
            }
            "peel" => {
                assert_eq!((tx.input.len(), tx.output.len()), (1, 2));
                let small = tx.output.iter().map(|o| o.value.to_sat()).min().unwrap();
                let input = prev[&tx.input[0].previous_output].value.to_sat();
                assert!(small * 5 <= input, "peel larger than a fifth");
            }
            _ => {}
        }
    }
    for k in [
        "whirlpool_mix",
        "whirlpool_tx0",
        "wasabi",
        "joinmarket",
        "joinmarket_sweep",
        "exchange_batch",
        "peel",
        "structured_mixer_deposit",
        "mixer_payout",
    ] {
        assert!(
            counts.get(k).copied().unwrap_or(0) > 0,
            "no {k} transactions: {counts:?}"
        );
    }
    assert!(sweep_shape > 0);
    // No unlabelled transaction is mistaken for a Whirlpool mix.
    let labelled: HashSet<String> = tsv(&out.join("truth/tx_kinds.tsv"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    for (txid, tx) in &by_txid {
        if !tx.is_coinbase() && !labelled.contains(&txid.to_string()) {
            assert!(!is_whirlpool(tx, &prev));
        }
    }
}

#[test]
fn script_types_shift_over_time() {
    let mut cfg = small(51);
    cfg.txs = 12_000;
    let (dir, s) = run(&cfg);
    let chain = chain_order(read_blocks(&dir.path().join("out/blocks")));
    let econ: Vec<&Block> = chain.iter().skip(s.economy_start_height as usize).collect();
    let share = |blocks: &[&Block], f: fn(&bitcoin::Script) -> bool| {
        let (mut n, mut k) = (0, 0);
        for b in blocks {
            for tx in b.txdata.iter().skip(1) {
                for o in &tx.output {
                    n += 1;
                    k += f(&o.script_pubkey) as usize;
                }
            }
        }
        k as f64 / n as f64
    };
    let half = econ.len() / 2;
    let (early, late) = econ.split_at(half);
    let (tr0, tr1) = (share(early, |s| s.is_p2tr()), share(late, |s| s.is_p2tr()));
    let (pkh0, pkh1) = (
        share(early, |s| s.is_p2pkh()),
        share(late, |s| s.is_p2pkh()),
    );
    assert!(
        tr1 > 2.0 * tr0 && tr1 > 0.02,
        "taproot share {tr0} -> {tr1}"
    );
    assert!(pkh0 > pkh1 && pkh1 > 0.02, "P2PKH share {pkh0} -> {pkh1}");
}

#[test]
fn etl_rows_rebuild_the_same_transactions() {
    let mut cfg = small(61);
    cfg.etl = true;
    cfg.txs = 3_000;
    let (dir, s) = run(&cfg);
    let etl = dir.path().join("out/etl");
    let blocks =
        cointrail_chain::etl::read_etl(&[etl.join("transactions.json"), etl.join("blocks.json")])
            .unwrap();
    assert_eq!(blocks.len() as u64, s.blocks - 1, "every block but genesis");
    let n: usize = blocks.iter().map(|b| b.txids.len()).sum();
    assert_eq!(n as u64, s.txs);
    let first = std::fs::read_to_string(etl.join("transactions.json")).unwrap();
    let row: serde_json::Value = serde_json::from_str(first.lines().nth(1).unwrap()).unwrap();
    for f in [
        "hash",
        "size",
        "virtual_size",
        "version",
        "lock_time",
        "block_number",
        "block_hash",
        "block_timestamp",
        "is_coinbase",
        "index",
        "inputs",
        "outputs",
        "input_count",
        "output_count",
        "input_value",
        "output_value",
        "fee",
    ] {
        assert!(row.get(f).is_some(), "missing field {f}");
    }
}

#[test]
fn bad_parameters_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("busy");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let e = simulate(&small(1), &out, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("not empty") && e.contains("notes.txt"), "{e}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);

    let fresh = dir.path().join("fresh");
    let mut c = small(1);
    c.users = 0;
    let e = simulate(&c, &fresh, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("users is 0"), "{e}");
    let mut c = small(1);
    c.heists[0].amount_sats = 10_000 * COIN;
    let e = simulate(&c, &fresh, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("can lose at most half"), "{e}");
    assert!(!fresh.exists());
}

#[test]
fn varied_small_configs_run_and_balance() {
    for seed in 100..108u64 {
        let mut c = SimConfig {
            seed,
            txs: 2_000 + seed * 150,
            users: 50 + (seed as u32 % 4) * 60,
            exchanges: 2 + (seed as u32 % 3),
            thefts: (seed % 3) as u32,
            xor: seed % 2 == 0,
            txs_per_block: 20 + (seed as u32 % 5) * 10,
            merchants: 1 + (seed as u32 % 7),
            exchange_reserve_sats: (50 + seed * 10) * COIN,
            reorder_window: 1 + (seed as u32 % 4),
            address_truth: seed % 3 != 0,
            ..SimConfig::default()
        };
        if seed % 4 != 3 {
            let start = c.economy_start_height() + (seed as u32 % 7);
            let mut h = HeistParams::new((seed % 2) as u32, 20 * COIN, start);
            h.fanout = 10 + seed as u32 % 30;
            h.dormant_blocks = 5 + seed as u32 % 40;
            h.dormant_share_pct = (seed * 11 % 90) as u8;
            c.heists.push(h);
        }
        let (dir, s) = run(&c);
        let chain = chain_order(read_blocks(&dir.path().join("out/blocks")));
        assert_eq!(chain.len() as u64, s.blocks, "seed {seed}");
        for h in &s.heists {
            let paid = h.paid_exchange_sats
                + h.paid_otc_sats
                + h.paid_mixer_sats
                + h.paid_coinjoin_fee_sats;
            assert_eq!(
                h.stolen_sats + h.returned_by_mixer_sats + h.own_clean_sats,
                paid + h.fees_sats + h.held_dormant_sats + h.held_other_sats,
                "seed {seed} heist {}",
                h.id
            );
        }
    }
}

/// The default scenario is the simulator as it was before scenarios: the demo's chain has
/// the tip it had then (recorded from the code of commit 74da94f), and config.json does
/// not mention a scenario.
#[test]
fn default_scenario_writes_the_chain_it_wrote_before_scenarios() {
    let (dir, s) = run(&SimConfig::demo());
    assert_eq!(
        s.tip_hash,
        "354a1a5e7ff0a4c1b2bf84f92b7224c6cd4cb6f3ba16dca4080bb0cd107b96aa"
    );
    let cfg = std::fs::read_to_string(dir.path().join("out/truth/config.json")).unwrap();
    assert!(!cfg.contains("scenario"));
    // The shipped default.yaml is that same scenario.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/default.yaml");
    let sc =
        cointrail_sim::Scenario::from_yaml(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    assert!(sc.is_default());
}

/// A scenario changes the playbook: the thief sweeps its post-mix coins together, the
/// truth records each sweep, and the books still balance.
#[test]
fn consolidating_scenario_sweeps_postmix_coins() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/coinjoin-consolidate.yaml"
    );
    let mut c = small(11);
    c.scenario =
        cointrail_sim::Scenario::from_yaml(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    let (dir, s) = run(&c);
    let kinds = std::fs::read_to_string(dir.path().join("out/truth/tx_kinds.tsv")).unwrap();
    let sweeps = kinds
        .lines()
        .filter(|l| l.contains("\tpostmix_consolidation\t"))
        .count();
    assert!(sweeps > 0, "{:?}", s.tx_kinds);
    let outs = std::fs::read_to_string(dir.path().join("out/truth/thief_outputs.tsv")).unwrap();
    assert!(outs.lines().any(|l| l.contains("\tconsolidated\t")));
    let cfg = std::fs::read_to_string(dir.path().join("out/truth/config.json")).unwrap();
    assert!(cfg.contains("coinjoin-consolidate"));
}
