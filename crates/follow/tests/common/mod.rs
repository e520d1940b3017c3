//! A real regtest `bitcoind` for tests and the latency bench: started on 127.0.0.1 with its
//! own temporary datadir and free ports, killed on drop. Keys are derived from fixed bytes
//! and transactions are built and signed here (the node has no wallet).
#![allow(dead_code)]

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Address, Amount, Block, CompressedPublicKey, Network, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use cointrail_follow::{Auth, RpcClient};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bitcoind binary, or `None` (with a loud message) when COINTRAIL_SKIP_BITCOIND=1.
pub fn bitcoind_path() -> Option<PathBuf> {
    if std::env::var("COINTRAIL_SKIP_BITCOIND").is_ok_and(|v| v == "1") {
        // Written to the real stderr: the test harness captures eprintln!.
        use std::io::Write;
        let _ = std::io::stderr().write_all(
            b"\n!!!!! COINTRAIL_SKIP_BITCOIND=1: SKIPPING a test that needs a real bitcoind !!!!!\n",
        );
        return None;
    }
    if let Ok(p) = std::env::var("COINTRAIL_BITCOIND") {
        return Some(PathBuf::from(p));
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/build-bitcoind.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-bitcoind.sh");
    assert!(out.status.success(), "scripts/build-bitcoind.sh failed");
    let p = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_string();
    Some(PathBuf::from(p))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Node {
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub rpc_port: u16,
    pub p2p_port: u16,
    child: Option<Child>,
    pub rpc: RpcClient,
}

impl Node {
    pub fn start() -> Option<Node> {
        let bin = bitcoind_path()?;
        let dir = tempfile::tempdir().unwrap();
        let rpc_port = free_port();
        let p2p_port = free_port();
        let rpc = RpcClient::new(
            &format!("http://127.0.0.1:{rpc_port}"),
            Auth::Cookie(dir.path().join("regtest/.cookie")),
        )
        .unwrap();
        let mut n = Node {
            bin,
            dir,
            rpc_port,
            p2p_port,
            child: None,
            rpc,
        };
        n.launch();
        Some(n)
    }

    pub fn cookie(&self) -> PathBuf {
        self.dir.path().join("regtest/.cookie")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// (Re)start the process on the same datadir and ports, and wait for RPC.
    pub fn launch(&mut self) {
        let child = Command::new(&self.bin)
            .arg("-regtest")
            .arg(format!("-datadir={}", self.dir.path().display()))
            .arg(format!("-rpcport={}", self.rpc_port))
            .arg(format!("-port={}", self.p2p_port))
            .args([
                "-server=1",
                "-listen=0",
                "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1",
                "-printtoconsole=0",
                "-txindex=0",
                "-fallbackfee=0.0001",
                "-maxtxfee=1",
                "-rpcthreads=4",
                "-rpcworkqueue=256",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bitcoind");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            match self.rpc.call("getblockchaininfo", json!([])) {
                Ok(_) => return,
                Err(e) => {
                    if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                        panic!("bitcoind exited: {st}");
                    }
                    assert!(
                        t0.elapsed() < Duration::from_secs(60),
                        "bitcoind did not answer RPC: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Stop the node cleanly (RPC `stop`) and wait for the process to end.
    pub fn stop(&mut self) {
        let _ = self.rpc.call("stop", json!([]));
        if let Some(mut c) = self.child.take() {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn call(&self, m: &str, p: Value) -> Value {
        self.rpc.call(m, p).unwrap_or_else(|e| panic!("{m}: {e}"))
    }

    pub fn mine(&self, n: u32, addr: &Address) -> Vec<String> {
        let v = self.call("generatetoaddress", json!([n, addr.to_string()]));
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    }

    /// Mine one block holding exactly `txs` (raw), to `addr`.
    pub fn mine_txs(&self, addr: &Address, txs: &[Transaction]) -> String {
        let raw: Vec<String> = txs
            .iter()
            .map(bitcoin::consensus::encode::serialize_hex)
            .collect();
        let v = self.call("generateblock", json!([addr.to_string(), raw]));
        v["hash"].as_str().unwrap().to_string()
    }

    pub fn block(&self, hash: &str) -> Block {
        let hexs = self.call("getblock", json!([hash, 0]));
        bitcoin::consensus::encode::deserialize_hex(hexs.as_str().unwrap()).unwrap()
    }

    pub fn block_at(&self, h: u32) -> Block {
        let hash = self.call("getblockhash", json!([h]));
        self.block(hash.as_str().unwrap())
    }

    pub fn best(&self) -> String {
        self.call("getbestblockhash", json!([]))
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn send(&self, tx: &Transaction) -> String {
        let v = self.call(
            "sendrawtransaction",
            json!([bitcoin::consensus::encode::serialize_hex(tx)]),
        );
        v.as_str().unwrap().to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A P2WPKH key from fixed secret bytes.
pub struct Key {
    pub sk: SecretKey,
    pub pk: CompressedPublicKey,
    pub addr: Address,
}

impl Key {
    pub fn new(seed: u8) -> Key {
        let secp = Secp256k1::new();
        let mut b = [0u8; 32];
        b[31] = seed;
        b[0] = 0x42;
        let sk = SecretKey::from_slice(&b).unwrap();
        let pk = CompressedPublicKey(sk.public_key(&secp));
        let addr = Address::p2wpkh(&pk, Network::Regtest);
        Key { sk, pk, addr }
    }

    pub fn script(&self) -> ScriptBuf {
        self.addr.script_pubkey()
    }
}

/// A coin this test can spend.
#[derive(Clone, Debug)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub value: u64,
    pub key: u8,
}

/// Spend `coins` (all owned by keys derived from their seeds) to `outs`.
pub fn spend(coins: &[Coin], outs: &[(ScriptBuf, u64)]) -> Transaction {
    let secp = Secp256k1::new();
    let mut tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: coins
            .iter()
            .map(|c| TxIn {
                previous_output: c.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: outs
            .iter()
            .map(|(s, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect(),
    };
    let mut wits = Vec::new();
    {
        let mut cache = SighashCache::new(&tx);
        for (i, c) in coins.iter().enumerate() {
            let k = Key::new(c.key);
            let h = cache
                .p2wpkh_signature_hash(
                    i,
                    &k.script(),
                    Amount::from_sat(c.value),
                    EcdsaSighashType::All,
                )
                .unwrap();
            let sig = secp.sign_ecdsa(&Message::from_digest(h.to_byte_array()), &k.sk);
            let sig = bitcoin::ecdsa::Signature {
                signature: sig,
                sighash_type: EcdsaSighashType::All,
            };
            wits.push(Witness::p2wpkh(&sig, &k.pk.0));
        }
    }
    for (i, w) in wits.into_iter().enumerate() {
        tx.input[i].witness = w;
    }
    tx
}

/// The coinbase output of block `h` (mined to `key`).
pub fn coinbase_coin(node: &Node, h: u32, key: u8) -> Coin {
    let b = node.block_at(h);
    let cb = &b.txdata[0];
    Coin {
        outpoint: OutPoint::new(cb.compute_txid(), 0),
        value: cb.output[0].value.to_sat(),
        key,
    }
}
