//! The worked examples of methods.md §6 as chains in blockchain-etl form
//! (`testdata/worked/*.json`), run through the whole pipeline: `ingest --format etl`, then
//! `trace --from` with each model, fee policy and CoinJoin policy, checking every output's
//! tainted satoshis against the spec.
//!
//! The fixtures are made by `chain()` below (run with `COINTRAIL_WRITE_FIXTURES=1` to write
//! them); a test checks the committed files still equal what it makes. Funding comes from
//! coinbase rows (blockchain-etl gives coinbases no input, and takes their hash as given);
//! every other transaction's hash is checked against its fields on ingest.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, WPubkeyHash, Witness,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn spk(name: &str) -> ScriptBuf {
    let h = sha256::Hash::hash(name.as_bytes());
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h[..20].try_into().unwrap()))
}

fn h256(s: &str) -> String {
    sha256::Hash::hash(s.as_bytes()).to_string()
}

/// A chain under construction: blocks of (coinbase outputs, transactions).
struct Etl {
    name: String,
    rows: Vec<Value>,
    height: u32,
    /// Value and script of every output made so far, by (txid, vout).
    outs: HashMap<(Txid, u32), (u64, ScriptBuf)>,
    /// Outputs by the name the example gives them.
    named: HashMap<String, (Txid, u32)>,
}

impl Etl {
    fn new(name: &str) -> Etl {
        Etl {
            name: name.into(),
            rows: vec![],
            height: 0,
            outs: HashMap::new(),
            named: HashMap::new(),
        }
    }

    fn out_json(i: usize, v: u64, s: &ScriptBuf) -> Value {
        let addr = bitcoin::Address::from_script(s, bitcoin::Network::Regtest)
            .map(|a| a.to_string())
            .ok();
        json!({"index": i, "script_hex": hex::encode(s.as_bytes()), "type": "witness_v0_keyhash",
               "required_signatures": 1, "addresses": addr.into_iter().collect::<Vec<_>>(), "value": v})
    }

    /// A block: a coinbase paying `funds` (name, sats), then `txs`, each a list of input
    /// names and of (name, sats) outputs.
    fn block(&mut self, funds: &[(&str, u64)], txs: &[TxSpec]) {
        self.height += 1;
        let h = self.height;
        let bhash = h256(&format!("{} block {h}", self.name));
        let time = 1_600_000_000 + h * 600;
        let cb_txid: Txid = h256(&format!("{} coinbase {h}", self.name))
            .parse()
            .unwrap();
        let mut outs = vec![("miner", 0u64)];
        outs.extend_from_slice(funds);
        let cb_outs: Vec<Value> = outs
            .iter()
            .enumerate()
            .map(|(i, (n, v))| {
                let s = spk(&format!("{} {n}", self.name));
                self.outs.insert((cb_txid, i as u32), (*v, s.clone()));
                self.named.insert(n.to_string(), (cb_txid, i as u32));
                Self::out_json(i, *v, &s)
            })
            .collect();
        let total: u64 = outs.iter().map(|x| x.1).sum();
        self.rows.push(json!({"type": "transaction", "hash": cb_txid.to_string(), "version": 1, "lock_time": 0,
            "block_number": h, "block_hash": bhash, "block_timestamp": time, "is_coinbase": true, "index": 0,
            "inputs": [], "outputs": cb_outs, "input_count": 0, "output_count": outs.len(),
            "input_value": 0, "output_value": total, "fee": 0}));
        for (k, (ins, outs)) in txs.iter().enumerate() {
            let tx = Transaction {
                version: Version::TWO,
                lock_time: LockTime::ZERO,
                input: ins
                    .iter()
                    .map(|n| {
                        let (t, v) = self.named[*n];
                        TxIn {
                            previous_output: OutPoint::new(t, v),
                            script_sig: ScriptBuf::new(),
                            sequence: Sequence::MAX,
                            witness: Witness::new(),
                        }
                    })
                    .collect(),
                output: outs
                    .iter()
                    .map(|(n, v)| TxOut {
                        value: Amount::from_sat(*v),
                        script_pubkey: spk(&format!("{} {n}", self.name)),
                    })
                    .collect(),
            };
            let txid = tx.compute_txid();
            let in_rows: Vec<Value> = tx
                .input
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let (v, s) = &self.outs[&(x.previous_output.txid, x.previous_output.vout)];
                    json!({"index": i, "spent_transaction_hash": x.previous_output.txid.to_string(),
                           "spent_output_index": x.previous_output.vout, "script_hex": "",
                           "sequence": 0xffff_ffffu32, "required_signatures": 1, "type": "witness_v0_keyhash",
                           "addresses": bitcoin::Address::from_script(s, bitcoin::Network::Regtest).map(|a| vec![a.to_string()]).unwrap_or_default(),
                           "value": v})
                })
                .collect();
            let in_value: u64 = tx
                .input
                .iter()
                .map(|x| self.outs[&(x.previous_output.txid, x.previous_output.vout)].0)
                .sum();
            let out_rows: Vec<Value> = tx
                .output
                .iter()
                .enumerate()
                .map(|(i, o)| Self::out_json(i, o.value.to_sat(), &o.script_pubkey))
                .collect();
            let out_value: u64 = outs.iter().map(|x| x.1).sum();
            for (i, (n, v)) in outs.iter().enumerate() {
                self.outs
                    .insert((txid, i as u32), (*v, tx.output[i].script_pubkey.clone()));
                self.named.insert(n.to_string(), (txid, i as u32));
            }
            self.rows.push(json!({"type": "transaction", "hash": txid.to_string(), "version": 2, "lock_time": 0,
                "block_number": h, "block_hash": bhash, "block_timestamp": time, "is_coinbase": false,
                "index": k + 1, "inputs": in_rows, "outputs": out_rows, "input_count": tx.input.len(),
                "output_count": tx.output.len(), "input_value": in_value, "output_value": out_value,
                "fee": in_value - out_value}));
        }
    }

    fn text(&self) -> String {
        self.rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect()
    }
}

/// The examples' chains. Each returns the chain and the names of the tainted sources.
fn chain(name: &str) -> (Etl, Vec<&'static str>) {
    let mut e = Etl::new(name);
    match name {
        "e1" => {
            e.block(&[("T", 300), ("C", 700)], &[]);
            e.block(&[], &[(&["T", "C"], &[("o1", 400), ("o2", 600)])]);
            (e, vec!["T"])
        }
        "e2" => {
            e.block(&[("C1", 3000), ("T", 2000), ("C2", 4000)], &[]);
            e.block(
                &[],
                &[(&["C1", "T", "C2"], &[("D", 3000), ("E", 2000), ("F", 4000)])],
            );
            (e, vec!["T"])
        }
        "e4" => {
            e.block(&[("T", 1000), ("R", 300)], &[]);
            e.block(&[], &[(&["T"], &[("P", 300), ("Q", 700)])]);
            e.block(&[], &[(&["Q", "R"], &[("S", 500), ("U", 500)])]);
            (e, vec!["T"])
        }
        "e7" => {
            e.block(
                &[
                    ("i1", 1_005_000),
                    ("i2", 1_005_000),
                    ("i3", 1_000_000),
                    ("i4", 1_000_000),
                    ("i5", 1_000_000),
                ],
                &[],
            );
            e.block(
                &[],
                &[(
                    &["i1", "i2", "i3", "i4", "i5"],
                    &[
                        ("o1", 1_000_000),
                        ("o2", 1_000_000),
                        ("o3", 1_000_000),
                        ("o4", 1_000_000),
                        ("o5", 1_000_000),
                    ],
                )],
            );
            (e, vec!["i1"])
        }
        _ => unreachable!(),
    }
}

const EXAMPLES: [&str; 4] = ["e1", "e2", "e4", "e7"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/worked/{name}.json"))
}

#[test]
fn fixtures_are_what_the_generator_makes() {
    for n in EXAMPLES {
        let text = chain(n).0.text();
        let p = fixture(n);
        if std::env::var_os("COINTRAIL_WRITE_FIXTURES").is_some() {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &text).unwrap();
        }
        let have = std::fs::read_to_string(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (COINTRAIL_WRITE_FIXTURES=1 writes it)",
                p.display()
            )
        });
        assert_eq!(have, text, "{} differs from the generator", p.display());
    }
}

struct Case {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    etl: Etl,
    sources: Vec<&'static str>,
}

mod support;
use support::json as cli;

/// A transaction of a worked example: its inputs' names and its (name, sats) outputs.
type TxSpec<'a> = (&'a [&'a str], &'a [(&'a str, u64)]);

fn ingest(name: &str) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let f = fixture(name);
    cli(
        &dir,
        &[
            "ingest",
            "--format",
            "etl",
            "--network",
            "regtest",
            f.to_str().unwrap(),
        ],
    );
    let (etl, sources) = chain(name);
    Case {
        dir,
        _tmp: tmp,
        etl,
        sources,
    }
}

impl Case {
    fn outpoint(&self, n: &str) -> String {
        let (t, v) = self.etl.named[n];
        format!("{t}:{v}")
    }
    /// Trace with extra arguments; tainted sats per named output (0 when not listed).
    fn trace(&self, args: &[&str], names: &[&str]) -> (Vec<u64>, Value) {
        let from: Vec<String> = self.sources.iter().map(|s| self.outpoint(s)).collect();
        let from = from.join(",");
        // The worked examples are tiny: no dust or fraction floor for haircut.
        let mut a = vec![
            "trace",
            "--from",
            &from,
            "--dust-sats",
            "0",
            "--min-fraction",
            "0",
        ];
        a.extend_from_slice(args);
        let r = cli(&self.dir, &a);
        let by: HashMap<String, u64> = r["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]),
                    o["tainted_sats"].as_u64().unwrap(),
                )
            })
            .collect();
        let v = names
            .iter()
            .map(|n| by.get(&self.outpoint(n)).copied().unwrap_or(0))
            .collect();
        (v, r)
    }
}

#[test]
fn e1_two_inputs_two_outputs() {
    let c = ingest("e1");
    let o = ["o1", "o2"];
    for (m, want) in [
        ("fifo", [300, 0]),
        ("haircut", [120, 180]),
        ("lifo", [0, 300]),
        ("tiho", [0, 300]),
        ("tifo", [300, 0]),
    ] {
        let (got, r) = c.trace(&["--model", m], &o);
        assert_eq!(got, want, "{m}");
        assert_eq!(r["totals"]["source_sats"], 300);
        assert_eq!(r["totals"]["unspent_sats"], 300, "{m}: {}", r["totals"]);
    }
    // Poison flags both outputs: 1,000 reported for 300 stolen.
    let (got, _) = c.trace(&["--model", "poison"], &o);
    assert_eq!(got, [400, 600]);
}

#[test]
fn e2_redux_three_inputs_rounding() {
    let c = ingest("e2");
    let o = ["D", "E", "F"];
    for (m, want) in [
        ("haircut", [667, 444, 889]),
        ("fifo", [0, 2000, 0]),
        ("lifo", [0, 1000, 1000]),
        ("tiho", [0, 0, 2000]),
        ("tifo", [2000, 0, 0]),
        ("poison", [3000, 2000, 4000]),
    ] {
        let (got, _) = c.trace(&["--model", m], &o);
        assert_eq!(got, want, "{m}");
    }
}

#[test]
fn e4_two_hops_with_clean_mixing_and_an_exchange() {
    let c = ingest("e4");
    // P is an exchange deposit address: tracing stops there with 300 of exposure.
    let tx = cli(&c.dir, &["tx", &c.outpoint("P")[..64]]);
    let p_addr = tx["outputs"][0]["address"].as_str().unwrap().to_string();
    std::fs::write(
        c.dir.join("attribution.tsv"),
        format!("{p_addr}\texchange\tExchange P\n"),
    )
    .unwrap();
    let o = ["P", "S", "U"];
    for (m, want) in [
        ("haircut", [300, 350, 350]),
        ("fifo", [300, 500, 200]),
        ("lifo", [300, 200, 500]),
        ("tiho", [300, 500, 200]),
        ("tifo", [300, 500, 200]),
    ] {
        let (got, r) = c.trace(&["--model", m], &o);
        assert_eq!(got, want, "{m}");
        let t = &r["totals"];
        assert_eq!(t["stopped_sats"], 300, "{m}: {t}");
        assert_eq!(t["unspent_sats"], 700, "{m}: {t}");
        let dest = r["destinations"].as_array().unwrap();
        assert!(
            dest.iter()
                .any(|d| d.to_string().contains("Exchange P") && d.to_string().contains("300")),
            "{m}: {dest:?}"
        );
    }
    // Poison: the live tainted set {P, S, U} is 1,300 for 1,000 stolen.
    let (got, _) = c.trace(&["--model", "poison"], &o);
    assert_eq!(got.iter().sum::<u64>(), 1300);
}

#[test]
fn e7_whirlpool_policies_and_fee_policies() {
    let c = ingest("e7");
    let o = ["o1", "o2", "o3", "o4", "o5"];
    // Default: stop and flag; the whole tainted input is reported as entering the mix.
    let (got, r) = c.trace(&[], &o);
    assert_eq!(got, [0, 0, 0, 0, 0]);
    assert_eq!(r["totals"]["mixer_sats"], 1_005_000, "{}", r["totals"]);
    let mixers = r["mixers"].to_string();
    assert!(
        mixers.contains("hirlpool") && mixers.contains('5'),
        "{mixers}"
    );
    // Through the mix under each model (tainted premix i1 first).
    let (got, r) = c.trace(&["--model", "haircut", "--coinjoin", "haircut-through"], &o);
    assert_eq!(got, [200_599, 200_599, 200_599, 200_599, 200_598]);
    assert_eq!(r["totals"]["fee_sats"], 2_006);
    let (got, r) = c.trace(&["--coinjoin", "fifo-through"], &o);
    assert_eq!(got, [1_000_000, 5_000, 0, 0, 0]);
    assert_eq!(r["totals"]["fee_sats"], 0);
    let (got, r) = c.trace(
        &["--coinjoin", "fifo-through", "--fee-policy", "proportional"],
        &o,
    );
    assert_eq!(got, [1_000_000, 2_994, 0, 0, 0]);
    assert_eq!(r["totals"]["fee_sats"], 2_006);
}

impl Case {
    fn origins(&self, n: &str) -> Value {
        let r = cli(&self.dir, &["trace", "origin", &self.outpoint(n)]);
        r["fifo_backward"].clone()
    }
}

/// (txid of named output, offset, amount, hops, kind) rows, sorted.
fn rows(c: &Case, v: &Value) -> Vec<(String, u64, u64, u64, String)> {
    let names: HashMap<String, String> = c
        .etl
        .named
        .keys()
        .map(|n| (c.outpoint(n), n.clone()))
        .collect();
    let mut r: Vec<_> = v["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let op = format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]);
            (
                names.get(&op).cloned().unwrap_or(op),
                o["offset"].as_u64().unwrap(),
                o["amount"].as_u64().unwrap(),
                o["hops"].as_u64().unwrap(),
                o["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    r.sort();
    r
}

fn s(x: &str) -> String {
    x.to_string()
}

/// Backward FIFO without a case: every satoshi of an output placed in the outputs it came
/// from, nearest first, and the slices add up to the output's value.
#[test]
fn backward_fifo_origins_on_the_worked_chains() {
    let c = ingest("e1");
    // o1 = [T300, C100], o2 = [C600 from offset 100].
    assert_eq!(
        rows(&c, &c.origins("o1")),
        [
            (s("C"), 0, 100, 1, s("coinbase")),
            (s("T"), 0, 300, 1, s("coinbase"))
        ]
    );
    assert_eq!(
        rows(&c, &c.origins("o2")),
        [(s("C"), 100, 600, 1, s("coinbase"))]
    );

    let c = ingest("e4");
    // A label on T's address: the origin walk stops at the labelled party.
    let tx = cli(&c.dir, &["tx", &c.outpoint("T")[..64]]);
    let vout = c.etl.named["T"].1 as usize;
    let t_addr = tx["outputs"][vout]["address"].as_str().unwrap().to_string();
    std::fs::write(
        c.dir.join("attribution.tsv"),
        format!("{t_addr}\texchange\tVictimEx\n"),
    )
    .unwrap();
    // U = Q[500..700] + R[0..300]; Q[500..700] = T[800..1000].
    assert_eq!(
        rows(&c, &c.origins("U")),
        [
            (s("R"), 0, 300, 1, s("coinbase")),
            (s("T"), 800, 200, 2, s("labelled"))
        ]
    );
    let o = c.origins("S");
    assert_eq!(rows(&c, &o), [(s("T"), 300, 500, 2, s("labelled"))]);
    assert_eq!(o["origins"][0]["stop"]["name"], "VictimEx");
    // A hop limit of 1 stops at Q.
    let r = cli(
        &c.dir,
        &["trace", "origin", &c.outpoint("S"), "--max-hops", "1"],
    );
    assert_eq!(
        rows(&c, &r["fifo_backward"]),
        [(s("Q"), 0, 500, 1, s("hop_limit"))]
    );

    // Through a CoinJoin FIFO says nothing: the walk stops at the mix.
    let c = ingest("e7");
    assert_eq!(
        rows(&c, &c.origins("o2")),
        [(s("o2"), 0, 1_000_000, 0, s("coinjoin"))]
    );

    // Conservation on every output of every example.
    for n in EXAMPLES {
        let c = ingest(n);
        for name in c.etl.named.keys() {
            let o = c.origins(name);
            let sum: u64 = o["origins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["amount"].as_u64().unwrap())
                .sum::<u64>()
                + o["truncated_sats"].as_u64().unwrap();
            assert_eq!(sum, o["value"].as_u64().unwrap(), "{n} {name}");
        }
    }
}
