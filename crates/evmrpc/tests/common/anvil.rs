//! A real anvil (Foundry's EVM node) for tests: started on 127.0.0.1 on a free port with a
//! fixed chain id, killed on drop. The binary comes from COINTRAIL_ANVIL (scripts/test.sh
//! sets it) or from scripts/install-anvil.sh (npm, cached under target/tools).
//! Transactions are sent from anvil's unlocked dev accounts (eth_sendTransaction).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHAIN_ID: u64 = 31337;

pub fn anvil_path() -> PathBuf {
    if let Ok(p) = std::env::var("COINTRAIL_ANVIL") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/install-anvil.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/install-anvil.sh");
    assert!(out.status.success(), "scripts/install-anvil.sh failed");
    PathBuf::from(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .lines()
            .last()
            .expect("install-anvil.sh printed no path"),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Anvil {
    child: Child,
    pub port: u16,
    pub url: String,
    http: reqwest::blocking::Client,
}

#[derive(Debug)]
pub struct RpcErr(pub Value);

impl Anvil {
    pub fn start() -> Anvil {
        Self::start_with(CHAIN_ID, &[])
    }

    /// `extra`: more anvil flags (e.g. `--block-time`).
    pub fn start_with(chain_id: u64, extra: &[&str]) -> Anvil {
        let bin = anvil_path();
        // reqwest is built without a default crypto provider (the product installs ring).
        cointrail_follow::http::install_crypto_provider();
        let http = reqwest::blocking::Client::new();
        // A port picked free can be taken before anvil binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--chain-id", &chain_id.to_string(), "--silent"])
                // Fixed genesis time: runs are comparable.
                .args(["--timestamp", "1767225600"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
            let mut a = Anvil {
                child,
                port,
                url: format!("http://127.0.0.1:{port}"),
                http: http.clone(),
            };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = a.child.try_wait() {
                    break;
                }
                if a.try_rpc("eth_chainId", json!([])).is_ok() {
                    return a;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
        panic!("anvil did not start on 127.0.0.1 (see its stderr above)");
    }

    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, RpcErr> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .map_err(|e| RpcErr(json!(e.to_string())))?;
        let v: Value =
            serde_json::from_slice(&r.bytes().map_err(|e| RpcErr(json!(e.to_string())))?)
                .map_err(|e| RpcErr(json!(e.to_string())))?;
        match v.get("error") {
            Some(e) if !e.is_null() => Err(RpcErr(e.clone())),
            _ => Ok(v["result"].clone()),
        }
    }

    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {:?}", e.0))
    }

    pub fn accounts(&self) -> Vec<String> {
        self.rpc("eth_accounts", json!([]))
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    pub fn block_number(&self) -> u64 {
        hex_u64(&self.rpc("eth_blockNumber", json!([])))
    }

    /// Send a transaction from an unlocked account; returns its hash. With an explicit
    /// `gas`, a reverting call is mined (failed) instead of refused at estimation.
    pub fn send(&self, tx: Value) -> String {
        self.rpc("eth_sendTransaction", json!([tx]))
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The receipt, waiting for the block: anvil answers eth_sendTransaction before its
    /// auto-mined block is in, on a loaded machine.
    pub fn receipt(&self, hash: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let r = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !r.is_null() || t0.elapsed() > Duration::from_secs(20) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Deploy creation code (hex, no 0x) with ABI-encoded constructor arguments; returns
    /// the contract address. Auto-mining must be on.
    pub fn deploy(&self, from: &str, code_hex: &str, args: &[u8]) -> String {
        let data = format!("0x{}{}", code_hex.trim(), hex(args));
        let h = self.send(json!({"from": from, "data": data, "gas": "0x1000000"}));
        let r = self.receipt(&h);
        assert_eq!(r["status"], "0x1", "deploy failed: {r}");
        r["contractAddress"].as_str().unwrap().to_string()
    }

    pub fn set_automine(&self, on: bool) {
        self.rpc("evm_setAutomine", json!([on]));
    }

    pub fn mine(&self) {
        self.rpc("evm_mine", json!([]));
    }

    pub fn snapshot(&self) -> Value {
        self.rpc("evm_snapshot", json!([]))
    }

    pub fn revert(&self, id: Value) {
        assert_eq!(self.rpc("evm_revert", json!([id])), json!(true));
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The checked-in creation code of a test contract (tests/contracts/NAME.bin; the source
/// NAME.sol is beside it, scripts/compile-test-contracts.sh rebuilds it).
pub fn contract_code(name: &str) -> String {
    // By way of crates/: the CLI's tests include this module by path too.
    let p = format!(
        "{}/../evmrpc/tests/contracts/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}
