//! From Bitcoin back to Ethereum, a worked example by hand (issue 16): a Bitcoin chain in
//! blockchain-etl form and an Ethereum chain in ethereum-etl form, ingested into one data
//! directory; a case on the Bitcoin theft; `trace` follows it into the router's Bitcoin vault
//! (a THORChain swap memo `=:ETH.ETH:0x…`), across to the router's outbound on Ethereum
//! (`TransferOut` memo `OUT:<bitcoin txid>`), and on to an exchange deposit, with every figure
//! computed by hand. The same chains hold bad input: a vault deposit whose memo does not
//! parse, one whose only outbound names another inbound hash (one that exists nowhere), and
//! an outbound that pays another asset than its inbound's memo asks for. Each is a skipped
//! hop with its reason in the report; none links to anything.
//!
//! Bitcoin (sats; FIFO: outputs take the inputs' satoshis in order):
//! - block 1 (coinbase): T 1,000,000 (stolen: the case), C 100,000 (the thief's own, clean)
//! - block 2, tx A: [C, T] → vault 600,000, OP_RETURN `=:ETH.ETH:D1`, T2 499,000 (fee 1,000).
//!   The vault output holds C's 100,000 clean then 500,000 of T: 500,000 tainted of 600,000.
//! - block 3, tx B: [T2] → vault 200,000, OP_RETURN `=:ETH.ETH:D2:1e` (a limit that does not
//!   parse), T3 298,000 (fee 1,000).
//! - block 4, tx C: [T3] → vault 150,000, OP_RETURN `=:e:D3` (short form), T4 147,000.
//! - block 5, tx D: [T4] → vault 100,000, OP_RETURN `=:ETH.USDT-1ec7:D5` (a token, by the
//!   last digits of its contract), T5 46,000: its outbound pays 250 USDT to D5, all tainted.
//! - block 6, tx E: [T5] → vault 40,000, OP_RETURN `=:ETH.USDT-1ec7:D6`: its outbound names
//!   it but pays ETH, not the memo's token: refused with the reason.
//! - block 7, txs F and G: [T6] → vault 2,000, `=:ETH.ETH:D7`, T7 2,000; [T7] → vault
//!   1,000, the same memo. Their outbounds are two `TransferOut`s of one Ethereum
//!   transaction that pays D7 0.01 ETH once: F is joined, G is refused (one transfer cannot
//!   carry two inbounds).
//! - block 8, tx H: [T9 50,000 (stolen too: the case's second source)] → a generic bridge's
//!   vault 40,000, OP_RETURN `XB:42`, T10 9,000: a `bridges.yaml` rule (deposit on bitcoin,
//!   release on ethereum, 2·10^11 wei a sat, 1% tolerance) joins it to the bridge's payment
//!   by amount and time (`amount_time`, confidence 0.95, worked out below).
//!
//! Ethereum (wei; gas price 1):
//! - FUNDER → VAULT 10 ETH.
//! - VAULT → ROUTER 1 ETH + 1 wei, ROUTER → D1 (internal), `TransferOut(VAULT, D1, 0, 10^18 + 1,
//!   "OUT:<A>")`: the outbound of A. Taint across = largest remainder of 10^18 + 1 over
//!   (500,000 tainted, 100,000 clean): exact shares 833,333,333,333,333,334.17 and
//!   166,666,666,666,666,666.83; floors leave 1 wei, which goes to the larger remainder
//!   (the clean part): 833,333,333,333,333,334 tainted + 166,666,666,666,666,667 clean.
//! - VAULT → ROUTER 0.5 ETH, ROUTER → D3, memo `OUT:<a hash of nothing>`: pays C's
//!   destination but names an inbound that exists on neither chain.
//! - D1 → EXCHANGE 0.7 ETH, gas 21,000. D1's queue is the tainted part then the clean rest
//!   (balance FIFO, gas first): fee 21,000 tainted, 0.7 ETH tainted stops at the exchange,
//!   833,333,333,333,333,334 − 21,000 − 7·10^17 = 133,333,333,333,312,334 tainted stays held.

mod support;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::script::PushBytesBuf;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, WPubkeyHash, Witness,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use support::{cli, json as cli_json, try_cli};

fn spk(owner: &str) -> ScriptBuf {
    let h = sha256::Hash::hash(format!("xback {owner}").as_bytes());
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h[..20].try_into().unwrap()))
}

fn address(s: &ScriptBuf) -> String {
    bitcoin::Address::from_script(s, bitcoin::Network::Regtest)
        .unwrap()
        .to_string()
}

/// An output: paid to an owner (named for later spending), or an OP_RETURN text.
enum O<'a> {
    Pay(&'a str, &'a str, u64),
    Memo(&'a str),
}

#[derive(Default)]
struct Btc {
    rows: Vec<Value>,
    height: u32,
    outs: HashMap<(Txid, u32), (u64, ScriptBuf)>,
    named: HashMap<String, (Txid, u32)>,
}

impl Btc {
    fn out_json(i: usize, v: u64, s: &ScriptBuf) -> Value {
        let addr = bitcoin::Address::from_script(s, bitcoin::Network::Regtest)
            .map(|a| a.to_string())
            .ok();
        let ty = if s.is_op_return() {
            "nulldata"
        } else {
            "witness_v0_keyhash"
        };
        json!({"index": i, "script_hex": hex::encode(s.as_bytes()), "type": ty,
               "required_signatures": 1, "addresses": addr.into_iter().collect::<Vec<_>>(), "value": v})
    }

    /// A block: a coinbase paying `funds` (owner, name, sats), then one transaction per
    /// (input names, outputs).
    fn block(&mut self, funds: &[(&str, &str, u64)], txs: &[(&[&str], Vec<O>)]) -> Vec<Txid> {
        self.height += 1;
        let h = self.height;
        let bhash = sha256::Hash::hash(format!("xback block {h}").as_bytes()).to_string();
        let time = 1_600_000_000 + h * 600;
        let cb: Txid = sha256::Hash::hash(format!("xback coinbase {h}").as_bytes())
            .to_string()
            .parse()
            .unwrap();
        let mut outs = vec![("miner", "miner", 0u64)];
        outs.extend_from_slice(funds);
        let cb_outs: Vec<Value> = outs
            .iter()
            .enumerate()
            .map(|(i, (owner, n, v))| {
                let s = spk(owner);
                self.outs.insert((cb, i as u32), (*v, s.clone()));
                self.named.insert(n.to_string(), (cb, i as u32));
                Self::out_json(i, *v, &s)
            })
            .collect();
        let total: u64 = outs.iter().map(|x| x.2).sum();
        self.rows.push(json!({"type": "transaction", "hash": cb.to_string(), "version": 1, "lock_time": 0,
            "block_number": h, "block_hash": bhash, "block_timestamp": time, "is_coinbase": true, "index": 0,
            "inputs": [], "outputs": cb_outs, "input_count": 0, "output_count": outs.len(),
            "input_value": 0, "output_value": total, "fee": 0}));
        let mut ids = Vec::new();
        for (k, (ins, outs)) in txs.iter().enumerate() {
            let output: Vec<TxOut> = outs
                .iter()
                .map(|o| match o {
                    O::Pay(owner, _, v) => TxOut {
                        value: Amount::from_sat(*v),
                        script_pubkey: spk(owner),
                    },
                    O::Memo(m) => TxOut {
                        value: Amount::ZERO,
                        script_pubkey: ScriptBuf::new_op_return(
                            PushBytesBuf::try_from(m.as_bytes().to_vec()).unwrap(),
                        ),
                    },
                })
                .collect();
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
                output,
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
                           "addresses": vec![address(s)], "value": v})
                })
                .collect();
            let in_value: u64 = tx
                .input
                .iter()
                .map(|x| self.outs[&(x.previous_output.txid, x.previous_output.vout)].0)
                .sum();
            let out_value: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
            let out_rows: Vec<Value> = tx
                .output
                .iter()
                .enumerate()
                .map(|(i, o)| Self::out_json(i, o.value.to_sat(), &o.script_pubkey))
                .collect();
            for (i, o) in outs.iter().enumerate() {
                let txo = &tx.output[i];
                self.outs.insert(
                    (txid, i as u32),
                    (txo.value.to_sat(), txo.script_pubkey.clone()),
                );
                if let O::Pay(_, n, _) = o {
                    self.named.insert(n.to_string(), (txid, i as u32));
                }
            }
            self.rows.push(json!({"type": "transaction", "hash": txid.to_string(), "version": 2, "lock_time": 0,
                "block_number": h, "block_hash": bhash, "block_timestamp": time, "is_coinbase": false,
                "index": k + 1, "inputs": in_rows, "outputs": out_rows, "input_count": tx.input.len(),
                "output_count": tx.output.len(), "input_value": in_value, "output_value": out_value,
                "fee": in_value - out_value}));
            ids.push(txid);
        }
        ids
    }

    fn text(&self) -> String {
        self.rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect()
    }
}

fn eaddr(b: u8) -> String {
    format!("0x{}", format!("{b:02x}").repeat(20))
}
fn ehash(n: u64) -> String {
    format!("0x{n:064x}")
}
fn word(v: u128) -> String {
    format!("{v:064x}")
}
fn topic(a: &str) -> String {
    format!("0x{}{}", "0".repeat(24), a.trim_start_matches("0x"))
}

/// `TransferOut(address indexed vault, address indexed to, address asset, uint256 amount,
/// string memo)`: `asset` empty for the native coin.
fn transfer_out_data(asset: &str, amount: u128, memo: &str) -> String {
    let mut d = format!(
        "0x{:0>64}{}{}{}",
        asset.trim_start_matches("0x"),
        word(amount),
        word(0x60),
        word(memo.len() as u128)
    );
    let mut b = hex::encode(memo.as_bytes());
    while !b.len().is_multiple_of(64) {
        b.push('0');
    }
    d.push_str(&b);
    d
}

const VAULT: u8 = 0x0a;
const ROUTER: u8 = 0x0b;
const FUNDER: u8 = 0x05;
const D1: u8 = 0xd1;
const D2: u8 = 0xd2;
const D3: u8 = 0xd3;
const EXCHANGE: u8 = 0x0e;
const D5: u8 = 0xd5;
const D6: u8 = 0xd6;
const D7: u8 = 0xd7;
const D8: u8 = 0xd8;
const BRIDGE: u8 = 0x0c;
/// Tether on Ethereum (the memo names it by its last digits, `ETH.USDT-1ec7`).
const USDT: &str = "0xdac17f958d2ee523a2206206994597c13d831ec7";

struct Eth {
    s: String,
    n: u64,
}

impl Eth {
    /// One block with one transaction: `from` → `to` (value), gas used at price 1, an
    /// optional internal call (from `to`) and log (emitted by `to`).
    #[allow(clippy::too_many_arguments)]
    fn tx(
        &mut self,
        from: u8,
        to: u8,
        value: u128,
        gas: u64,
        internal: Option<(u8, u128)>,
        log: Option<(Vec<String>, String)>,
        token: Option<(u8, u8, u128)>,
    ) -> String {
        let n = self.n;
        self.n += 1;
        let h = ehash(1000 + n);
        let ts = 1_700_000_000 + n * 12;
        let bh = ehash(n);
        self.s.push_str(&format!(
            r#"{{"type":"block","number":{n},"hash":"{bh}","parent_hash":"{}","miner":"{}","timestamp":{ts},"transaction_count":1,"gas_used":{gas},"gas_limit":30000000}}"#,
            ehash(n - 1),
            eaddr(0xaa)
        ));
        self.s.push('\n');
        self.s.push_str(&format!(
            r#"{{"type":"transaction","hash":"{h}","nonce":{n},"block_number":{n},"block_hash":"{bh}","block_timestamp":{ts},"transaction_index":0,"from_address":"{}","to_address":"{}","value":{value},"gas":200000,"gas_price":1,"input":"0x","receipt_gas_used":{gas},"receipt_status":1,"receipt_effective_gas_price":1}}"#,
            eaddr(from),
            eaddr(to)
        ));
        self.s.push('\n');
        if let Some((dest, v)) = internal {
            for (ta, f, t, val, sub) in [("[]", from, to, value, 1), ("[0]", to, dest, v, 0)] {
                let id = ta.trim_matches(|c| c == '[' || c == ']');
                self.s.push_str(&format!(
                    r#"{{"type":"trace","transaction_index":0,"from_address":"{}","to_address":"{}","value":{val},"trace_type":"call","call_type":"call","gas":200000,"gas_used":0,"subtraces":{sub},"trace_address":{ta},"error":null,"status":1,"transaction_hash":"{h}","block_number":{n},"trace_id":"call_{h}_{id}","block_timestamp":{ts},"block_hash":"{bh}"}}"#,
                    eaddr(f),
                    eaddr(t)
                ));
                self.s.push('\n');
            }
        }
        let mut log_index = 0;
        if let Some((from, to, amount)) = token {
            self.s.push_str(&format!(
                r#"{{"type":"token_transfer","token_address":"{USDT}","from_address":"{}","to_address":"{}","value":{amount},"transaction_hash":"{h}","log_index":0,"block_number":{n},"block_timestamp":{ts},"block_hash":"{bh}"}}"#,
                eaddr(from),
                eaddr(to)
            ));
            self.s.push('\n');
            log_index = 1;
        }
        if let Some((topics, data)) = log {
            self.s.push_str(&format!(
                r#"{{"type":"log","log_index":{log_index},"transaction_hash":"{h}","transaction_index":0,"address":"{}","data":"{data}","topics":{},"block_number":{n},"block_hash":"{bh}","block_timestamp":{ts}}}"#,
                eaddr(to),
                serde_json::to_string(&topics).unwrap()
            ));
            self.s.push('\n');
        }
        h
    }
}

impl Eth {
    /// Another log of the last block's transaction `h`, emitted by the router.
    fn log(&mut self, h: &str, log_index: u64, topics: Vec<String>, data: String) {
        let n = self.n - 1;
        self.s.push_str(&format!(
            r#"{{"type":"log","log_index":{log_index},"transaction_hash":"{h}","transaction_index":0,"address":"{}","data":"{data}","topics":{},"block_number":{n},"block_hash":"{}","block_timestamp":{}}}"#,
            eaddr(ROUTER),
            serde_json::to_string(&topics).unwrap(),
            ehash(n),
            1_700_000_000 + n * 12
        ));
        self.s.push('\n');
    }
}

fn transfer_out_topics(to: u8) -> Vec<String> {
    vec![
        format!(
            "{:#x}",
            cointrail_account::xchain::topics::thorchain_transfer_out()
        ),
        topic(&eaddr(VAULT)),
        topic(&eaddr(to)),
    ]
}

#[test]
fn a_bitcoin_theft_is_followed_through_the_router_to_an_ethereum_exchange() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");

    let mut b = Btc::default();
    b.block(
        &[
            ("thief", "T", 1_000_000),
            ("thief", "C", 100_000),
            ("thief", "T9", 50_000),
        ],
        &[],
    );
    let memo_a = format!("=:ETH.ETH:{}", eaddr(D1));
    let a = b.block(
        &[],
        &[(
            &["C", "T"],
            vec![
                O::Pay("vault", "VA", 600_000),
                O::Memo(&memo_a),
                O::Pay("thief", "T2", 499_000),
            ],
        )],
    )[0];
    let memo_b = format!("=:ETH.ETH:{}:1e", eaddr(D2));
    let tx_b = b.block(
        &[],
        &[(
            &["T2"],
            vec![
                O::Pay("vault", "VB", 200_000),
                O::Memo(&memo_b),
                O::Pay("thief", "T3", 298_000),
            ],
        )],
    )[0];
    let memo_c = format!("=:e:{}", eaddr(D3));
    let tx_c = b.block(
        &[],
        &[(
            &["T3"],
            vec![
                O::Pay("vault", "VC", 150_000),
                O::Memo(&memo_c),
                O::Pay("thief", "T4", 147_000),
            ],
        )],
    )[0];
    // A token swap (the memo's short token id) and one whose outbound pays the wrong asset.
    let memo_d = format!("=:ETH.USDT-1ec7:{}", eaddr(D5));
    let tx_d = b.block(
        &[],
        &[(
            &["T4"],
            vec![
                O::Pay("vault", "VD", 100_000),
                O::Memo(&memo_d),
                O::Pay("thief", "T5", 46_000),
            ],
        )],
    )[0];
    let memo_e = format!("=:ETH.USDT-1ec7:{}", eaddr(D6));
    let tx_e = b.block(
        &[],
        &[(
            &["T5"],
            vec![
                O::Pay("vault", "VE", 40_000),
                O::Memo(&memo_e),
                O::Pay("thief", "T6", 5_000),
            ],
        )],
    )[0];
    // Two deposits to D7 whose outbounds are two `TransferOut`s of one transaction paying
    // through one and the same transfer: only the first is joined.
    let memo_f = format!("=:ETH.ETH:{}", eaddr(D7));
    let ids = b.block(
        &[],
        &[
            (
                &["T6"],
                vec![
                    O::Pay("vault", "VF", 2_000),
                    O::Memo(&memo_f),
                    O::Pay("thief", "T7", 2_000),
                ],
            ),
            (
                &["T7"],
                vec![O::Pay("vault", "VG", 1_000), O::Memo(&memo_f)],
            ),
        ],
    );
    let (tx_f, tx_g) = (ids[0], ids[1]);
    // A generic bridge (bridges.yaml, deposit on Bitcoin, release on Ethereum): no memo to
    // join by, so amount at the rule's rate and time.
    let tx_h = b.block(
        &[],
        &[(
            &["T9"],
            vec![
                O::Pay("bvault", "VH", 40_000),
                O::Memo("XB:42"),
                O::Pay("thief", "T10", 9_000),
            ],
        )],
    )[0];
    let btc_file = tmp.path().join("btc.json");
    std::fs::write(&btc_file, b.text()).unwrap();

    let e18: u128 = 1_000_000_000_000_000_000;
    let bogus = sha256::Hash::hash(b"an inbound that never was").to_string();
    let mut e = Eth {
        s: String::new(),
        n: 100,
    };
    e.tx(FUNDER, VAULT, 10 * e18, 21_000, None, None, None);
    let rel_a = e.tx(
        VAULT,
        ROUTER,
        e18 + 1,
        60_000,
        Some((D1, e18 + 1)),
        Some((
            transfer_out_topics(D1),
            transfer_out_data(
                "",
                e18 + 1,
                &format!("OUT:{}", a.to_string().to_uppercase()),
            ),
        )),
        None,
    );
    let rel_c = e.tx(
        VAULT,
        ROUTER,
        e18 / 2,
        60_000,
        Some((D3, e18 / 2)),
        Some((
            transfer_out_topics(D3),
            transfer_out_data("", e18 / 2, &format!("OUT:{bogus}")),
        )),
        None,
    );
    let dep = e.tx(D1, EXCHANGE, 7 * e18 / 10, 21_000, None, None, None);
    // D's outbound: 250 USDT (6 decimals) from the router to D5, a token TransferOut.
    let rel_d = e.tx(
        VAULT,
        ROUTER,
        0,
        60_000,
        None,
        Some((
            transfer_out_topics(D5),
            transfer_out_data(
                USDT,
                250_000_000,
                &format!("OUT:{}", tx_d.to_string().to_uppercase()),
            ),
        )),
        Some((ROUTER, D5, 250_000_000)),
    );
    // E's "outbound" names E but pays ETH where E's memo asks for USDT: refused.
    let rel_e = e.tx(
        VAULT,
        ROUTER,
        e18 / 10,
        60_000,
        Some((D6, e18 / 10)),
        Some((
            transfer_out_topics(D6),
            transfer_out_data(
                "",
                e18 / 10,
                &format!("OUT:{}", tx_e.to_string().to_uppercase()),
            ),
        )),
        None,
    );
    // The bridge's release for H: 40,000 sats at 2·10^11 wei a sat is 8·10^15 wei; it pays
    // 0.1% less (7.992·10^15): error 8·10^12 of a tolerance of 1% (8·10^13), one candidate:
    // confidence 1 − 8·10^12 / 1.6·10^14 = 0.95.
    e.tx(FUNDER, BRIDGE, e18, 21_000, None, None, None);
    let rel_h = e.tx(BRIDGE, D8, 7_992_000_000_000_000, 21_000, None, None, None);
    let rel_fg = e.tx(
        VAULT,
        ROUTER,
        e18 / 100,
        60_000,
        Some((D7, e18 / 100)),
        Some((
            transfer_out_topics(D7),
            transfer_out_data(
                "",
                e18 / 100,
                &format!("OUT:{}", tx_f.to_string().to_uppercase()),
            ),
        )),
        None,
    );
    e.log(
        &rel_fg,
        1,
        transfer_out_topics(D7),
        transfer_out_data(
            "",
            e18 / 100,
            &format!("OUT:{}", tx_g.to_string().to_uppercase()),
        ),
    );
    let eth_file = tmp.path().join("eth.json");
    std::fs::write(&eth_file, &e.s).unwrap();

    cli(
        &d,
        &[
            "ingest",
            "--format",
            "etl",
            "--network",
            "regtest",
            btc_file.to_str().unwrap(),
        ],
    );
    cli(
        &d,
        &["ingest", "--chain", "ethereum", eth_file.to_str().unwrap()],
    );
    std::fs::write(
        d.join("attribution.tsv"),
        format!(
            "{}\tbridge\tTHORChain vault\n{}\tbridge\tXBridge vault\n{}\tbridge\tTHORChain router\n{}\texchange\tSome Exchange\n",
            address(&spk("vault")),
            address(&spk("bvault")),
            eaddr(ROUTER),
            eaddr(EXCHANGE)
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("bridges.yaml"),
        format!(
            "bridges:\n  - name: xbridge\n    deposit:\n      chain: bitcoin\n      addresses: [\"{}\"]\n      id: \"op_return:XB:\"\n    release:\n      chain: ethereum\n      addresses: [\"{}\"]\n    rate_out: \"200000000000\"\n    rate_in: \"1\"\n    tolerance_bps: 100\n    window_secs: 200000000\n",
            address(&spk("bvault")),
            eaddr(BRIDGE)
        ),
    )
    .unwrap();
    let (t_txid, t_vout) = b.named["T"];
    let (t9_txid, t9_vout) = b.named["T9"];
    cli(
        &d,
        &[
            "case",
            "create",
            "theft",
            "--from",
            &format!("{t_txid}:{t_vout}"),
            "--from",
            &format!("{t9_txid}:{t9_vout}"),
        ],
    );
    let html = tmp.path().join("r.html");
    let csv = tmp.path().join("r.csv");
    let v = cli_json(&d, &["trace", "theft", "--report", html.to_str().unwrap()]);
    cli(&d, &["trace", "theft", "--report", csv.to_str().unwrap()]);

    assert_eq!(v["chain"], "bitcoin+ethereum");
    let x = &v["to_ethereum"];
    // The one crossing: how it was matched, and the taint carried at the outbound's rate.
    let hops = x["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 4, "{x}");
    let hb = hops
        .iter()
        .find(|h| h["deposit_tx"] == tx_h.to_string())
        .unwrap();
    assert_eq!(hb["via"], "xbridge");
    assert_eq!(hb["matched"], "amount_time");
    assert_eq!(hb["confidence_ppm"], 950_000);
    assert_eq!(hb["release_tx"], rel_h.as_str());
    assert_eq!(hb["memo"], "XB:42");
    assert_eq!(hb["deposit_sats"], 40_000);
    assert_eq!(hb["tainted_sats"], 40_000);
    assert_eq!(hb["tainted"], "7992000000000000");
    let h = hops
        .iter()
        .find(|h| h["deposit_tx"] == a.to_string())
        .unwrap();
    assert_eq!(h["deposit_tx"], a.to_string());
    assert_eq!(h["memo"], memo_a.as_str());
    assert_eq!(h["via"], "thorchain");
    assert_eq!(h["matched"], "thorchain_out");
    assert_eq!(h["confidence_ppm"], 1_000_000);
    assert_eq!(h["deposit_sats"], 600_000);
    assert_eq!(h["tainted_sats"], 500_000);
    assert_eq!(h["release_tx"], rel_a.as_str());
    assert_eq!(h["asset"], "ETH");
    assert_eq!(h["released"], "1000000000000000001");
    assert_eq!(h["tainted"], "833333333333333334");
    assert_eq!(h["payouts"][0]["address"], eaddr(D1).as_str());

    // The bad input: a skipped hop each, with its reason; their taint stays at the vault.
    let skipped = x["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 4, "{x}");
    let why = |tx: &str| -> String {
        skipped
            .iter()
            .find(|s| s["tx"] == tx)
            .unwrap_or_else(|| panic!("{tx} not skipped: {x}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let rb = why(&tx_b.to_string());
    assert!(
        rb.contains("does not parse") && rb.contains("limit"),
        "{rb}"
    );
    let rc = why(&tx_c.to_string());
    assert!(
        rc.contains("no outbound on ethereum names it") && rc.contains(&bogus),
        "{rc}"
    );
    let re = why(&rel_e);
    assert!(
        re.contains("pays ETH") && re.contains("ETH.USDT-1ec7") && re.contains(&tx_e.to_string()),
        "{re}"
    );
    assert_eq!(x["unjoined_sats"], 200_000 + 150_000 + 40_000 + 1_000);
    // F's outbound is joined (all tainted: 0.01 ETH); G's, paid through the same transfer,
    // is refused, naming F.
    let hf = hops
        .iter()
        .find(|h| h["deposit_tx"] == tx_f.to_string())
        .unwrap();
    assert_eq!(hf["tainted"], "10000000000000000");
    assert!(!hops.iter().any(|h| h["deposit_tx"] == tx_g.to_string()));
    let dup = skipped
        .iter()
        .find(|k| k["reason"].as_str().unwrap().contains(&tx_g.to_string()))
        .unwrap_or_else(|| panic!("G not skipped: {x}"));
    assert!(
        dup["reason"].as_str().unwrap().contains("same transfer")
            && dup["reason"].as_str().unwrap().contains(&tx_f.to_string()),
        "{dup}"
    );
    // The token swap: the whole 100,000-sat deposit was tainted, so are the 250 USDT.
    let ht = hops
        .iter()
        .find(|h| h["deposit_tx"] == tx_d.to_string())
        .unwrap();
    assert_eq!(ht["matched"], "thorchain_out");
    assert_eq!(ht["release_tx"], rel_d.as_str());
    assert_eq!(ht["asset"], USDT);
    assert_eq!(ht["tainted_sats"], 100_000);
    assert_eq!(ht["released"], "250000000");
    assert_eq!(ht["tainted"], "250000000");
    // Never a wrong link: the outbound naming the missing inbound carried nothing, D3 holds
    // no taint, and nothing reached D2.
    let leg = &x["trace"];
    assert_eq!(leg["conserved"], true);
    for s in leg["held"].as_array().unwrap() {
        let a = s["address"].as_str().unwrap().to_lowercase();
        assert!([D1, D5, D7, D8].iter().any(|&x| a == eaddr(x)), "{s}");
    }
    assert!(
        !v.to_string().contains(&rel_c[2..]),
        "the bogus outbound is linked"
    );

    // The Ethereum leg, balance FIFO, by hand.
    let totals = v["per_chain_totals"]["ethereum"].as_array().unwrap();
    assert_eq!(totals.len(), 2);
    let t = totals.iter().find(|t| t["token"].is_null()).unwrap();
    let tu = totals.iter().find(|t| !t["token"].is_null()).unwrap();
    assert_eq!(tu["source"], "250000000");
    assert_eq!(tu["held"], "250000000");
    // D1's 833,333,333,333,333,334 and D7's 10^16.
    // ... and D8's 7,992·10^12 from the bridge.
    assert_eq!(t["source"], "851325333333333334");
    assert_eq!(t["fee"], "21000");
    assert_eq!(t["stopped"], "700000000000000000");
    assert_eq!(t["held"], "151325333333312334");
    let stop = &leg["stops"][0];
    assert_eq!(stop["category"], "exchange");
    assert_eq!(stop["name"], "Some Exchange");
    assert_eq!(stop["tx"].as_str().unwrap(), dep);
    // The Bitcoin leg: the vault outputs are where it stopped.
    let bt = &v["per_chain_totals"]["bitcoin"];
    assert_eq!(bt["source_sats"], 1_050_000);
    assert_eq!(
        bt["stopped_sats"],
        500_000 + 200_000 + 150_000 + 100_000 + 40_000 + 2_000 + 1_000 + 40_000
    );

    // The reports show the hop back and the skipped ones.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Back to Ethereum") && page.contains("thorchain_out"));
    assert!(page.contains("does not parse"));
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        rows.lines()
            .filter(|l| l.starts_with("hop,bitcoin>ethereum,"))
            .count(),
        4
    );
    assert_eq!(
        rows.lines().filter(|l| l.starts_with("skipped,")).count(),
        4
    );

    // Human output says the same, and nothing panics.
    let (ok, out, err) = try_cli(&d, &["trace", "theft"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("back to Ethereum: 4 hop(s) (4 skipped"),
        "{out}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `Deposit(address indexed to, address indexed asset, uint256 amount, string memo)` data.
fn deposit_data(amount: u128, memo: &str) -> String {
    let mut d = format!(
        "0x{}{}{}",
        word(amount),
        word(0x40),
        word(memo.len() as u128)
    );
    let mut b = hex::encode(memo.as_bytes());
    while !b.len().is_multiple_of(64) {
        b.push('0');
    }
    d.push_str(&b);
    d
}

/// Bad input on the way out, Ethereum → Bitcoin, end to end (ingested chains, a case on an
/// Ethereum theft, `trace`): a router deposit whose memo does not parse (`…:1e`) and a
/// Bitcoin outbound naming it (`OUT:<its hash>`) is a skipped hop with the reason, never a
/// link, while a good deposit beside it is joined; a Curve `TokenExchange` whose bought
/// amount matches no transfer out of the pool is a skipped hop, never a conversion.
///
/// Ethereum (wei, gas price 1): VICTIM → THIEF 10 ETH (the case); THIEF → ROUTER 3 ETH
/// (gas 60,000) memo `=:BTC.BTC:<P1>`; THIEF → ROUTER 2 ETH memo `=:BTC.BTC:<P2>:1e`;
/// THIEF → POOL 1 ETH, the pool pays THIEF 100 USDT units, its event claims 200.
/// Bitcoin: the vault pays P1 150,000 sats (`OUT:<first deposit>`) and P2 100,000 sats
/// (`OUT:<second deposit>`). Balance FIFO: everything THIEF sends is tainted, so the first
/// crossing carries 3 ETH of taint → all 150,000 sats.
#[test]
fn bad_memo_and_lying_swap_on_the_way_out_are_skipped_hops() {
    const VICTIM: u8 = 0x01;
    const THIEF: u8 = 0x02;
    const POOL: u8 = 0x53;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let e18: u128 = 1_000_000_000_000_000_000;
    let (p1, p2) = (address(&spk("p1")), address(&spk("p2")));
    let mut e = Eth {
        s: String::new(),
        n: 100,
    };
    let theft = e.tx(VICTIM, THIEF, 10 * e18, 21_000, None, None, None);
    let deposit_topics = vec![
        format!(
            "{:#x}",
            cointrail_account::xchain::topics::thorchain_deposit()
        ),
        topic(&eaddr(VAULT)),
        topic(&format!("0x{}", "00".repeat(20))),
    ];
    let good = e.tx(
        THIEF,
        ROUTER,
        3 * e18,
        60_000,
        Some((VAULT, 3 * e18)),
        Some((
            deposit_topics.clone(),
            deposit_data(3 * e18, &format!("=:BTC.BTC:{p1}")),
        )),
        None,
    );
    let bad = e.tx(
        THIEF,
        ROUTER,
        2 * e18,
        60_000,
        Some((VAULT, 2 * e18)),
        Some((
            deposit_topics,
            deposit_data(2 * e18, &format!("=:BTC.BTC:{p2}:1e")),
        )),
        None,
    );
    // TokenExchange(buyer, sold_id 0, tokens_sold 1 ETH, bought_id 1, tokens_bought 200):
    // the pool paid 100.
    let swap = e.tx(
        THIEF,
        POOL,
        e18,
        120_000,
        None,
        Some((
            vec![
                format!("{:#x}", cointrail_account::swaps::CURVE_TOKEN_EXCHANGE),
                topic(&eaddr(THIEF)),
            ],
            format!("0x{}{}{}{}", word(0), word(e18), word(1), word(200)),
        )),
        Some((POOL, THIEF, 100)),
    );
    let eth_file = tmp.path().join("eth.json");
    std::fs::write(&eth_file, &e.s).unwrap();

    let mut b = Btc::default();
    b.block(&[("vault", "V0", 10_000_000)], &[]);
    let out_memo = |h: &str| format!("OUT:{}", h.trim_start_matches("0x").to_uppercase());
    let (m1, m2) = (out_memo(&good), out_memo(&bad));
    let rel = b.block(
        &[],
        &[
            (
                &["V0"],
                vec![
                    O::Pay("p1", "P1", 150_000),
                    O::Memo(&m1),
                    O::Pay("vault", "V1", 9_840_000),
                ],
            ),
            (
                &["V1"],
                vec![
                    O::Pay("p2", "P2", 100_000),
                    O::Memo(&m2),
                    O::Pay("vault", "V2", 9_730_000),
                ],
            ),
        ],
    );
    let btc_file = tmp.path().join("btc.json");
    std::fs::write(&btc_file, b.text()).unwrap();
    cli(
        &d,
        &[
            "ingest",
            "--format",
            "etl",
            "--network",
            "regtest",
            btc_file.to_str().unwrap(),
        ],
    );
    cli(
        &d,
        &["ingest", "--chain", "ethereum", eth_file.to_str().unwrap()],
    );
    std::fs::write(
        d.join("attribution.tsv"),
        format!(
            "{}\tbridge\tTHORChain vault\n{}\tbridge\tTHORChain router\n",
            address(&spk("vault")),
            eaddr(ROUTER),
        ),
    )
    .unwrap();
    cli(&d, &["case", "create", "eth-theft", "--from-tx", &theft]);
    let html = tmp.path().join("r.html");
    let v = cli_json(
        &d,
        &["trace", "eth-theft", "--report", html.to_str().unwrap()],
    );
    assert_eq!(v["chain"], "ethereum+bitcoin", "{v}");

    // The good deposit crosses, exactly; the bad one is skipped with why, and its 2 ETH of
    // taint are reported as not joined.
    let x = &v["crossings"];
    let hops = x["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{x}");
    let h = &hops[0];
    assert_eq!(h["deposit_tx"], good.as_str());
    assert_eq!(h["release_tx"], rel[0].to_string());
    assert_eq!(h["matched"], "thorchain_out");
    assert_eq!(h["released_sats"], 150_000);
    assert_eq!(h["tainted_wei"], (3 * e18).to_string());
    assert_eq!(h["tainted_sats"], 150_000);
    assert_eq!(h["payouts"][0]["address"], p1.as_str());
    let skipped = x["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{x}");
    assert_eq!(skipped[0]["tx"], rel[1].to_string());
    let why = skipped[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("does not parse") && why.contains(bad.trim_start_matches("0x")),
        "{why}"
    );
    assert_eq!(x["unjoined_wei"], (2 * e18).to_string());
    // P2 never receives taint: only P1's output is a source of the Bitcoin leg.
    let b_out = v["bitcoin"]["outputs"].as_array().unwrap();
    assert!(b_out
        .iter()
        .all(|o| o["address"] != p2.as_str() || o["tainted_sats"] == 0));
    assert_eq!(v["per_chain_totals"]["bitcoin"]["source_sats"], 150_000);

    // The lying swap: skipped with the reason, no conversion, no tainted USDT at THIEF.
    let sk: Vec<&Value> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["tx"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(&swap))
        })
        .collect();
    assert_eq!(sk.len(), 1, "{}", v["skipped"]);
    assert!(
        sk[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no transfer of 200 out of the pool"),
        "{}",
        sk[0]
    );
    assert!(v["conversions"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["held"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["token"].is_null()));
    assert_eq!(v["conserved"], true);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("does not parse"));
    let (ok, _, err) = try_cli(&d, &["trace", "eth-theft"]);
    assert!(ok && !err.contains("panicked"), "{err}");
}
