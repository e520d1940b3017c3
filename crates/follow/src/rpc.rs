//! Bitcoin Core JSON-RPC: the few calls the follower needs, with errors that say what to fix.

use crate::http::{self, HttpError, Url};
use base64::Engine as _;
use bitcoin::{BlockHash, Network};
use cointrail_chain::error::{Origin, OriginKind};
use cointrail_chain::ChainBlock;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Auth {
    /// Bitcoin Core's `.cookie` file: re-read on every connection failure because the node
    /// writes a new one each time it starts.
    Cookie(PathBuf),
    UserPass(String, String),
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("node at {url} is unreachable ({source}); is bitcoind running with -server and -rpcbind/-rpcport matching --rpc?")]
    Unreachable { url: String, source: HttpError },
    #[error("node at {0} refused the credentials (HTTP 401): check --rpc-cookie (the node's datadir/.cookie, readable by this user) or --rpc-user/--rpc-password")]
    Auth(String),
    #[error("cannot read the RPC cookie file {0}: {1} (the node writes it at start-up; is it running, and is this its datadir?)")]
    Cookie(PathBuf, std::io::Error),
    #[error("node at {url}: {method} failed: RPC error {code}: {message}")]
    Rpc {
        url: String,
        method: String,
        code: i64,
        message: String,
    },
    #[error("node at {url}: {method}: unexpected reply: {msg}")]
    Reply {
        url: String,
        method: String,
        msg: String,
    },
    #[error("the node is on {node} but the index holds {index}: point --rpc at a {index} node or use another --data-dir")]
    WrongNetwork { node: String, index: String },
    #[error("{0}")]
    Url(HttpError),
}

impl RpcError {
    /// Errors worth retrying: the node may come back.
    pub fn is_transient(&self) -> bool {
        match self {
            RpcError::Unreachable { .. } | RpcError::Cookie(..) => true,
            // -28: warming up (loading blocks, verifying), normal after a restart.
            RpcError::Rpc { code, .. } => *code == -28,
            RpcError::Reply { .. } => true,
            _ => false,
        }
    }
}

pub struct RpcClient {
    url: Url,
    display: String,
    auth: Auth,
    timeout: Duration,
    next_id: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone)]
pub struct ChainInfo {
    pub chain: String,
    pub network: Network,
    pub blocks: u32,
    pub best: BlockHash,
    pub initial_block_download: bool,
}

impl RpcClient {
    pub fn new(url: &str, auth: Auth) -> Result<RpcClient, RpcError> {
        let mut url = http::parse_url(url).map_err(RpcError::Url)?;
        // Credentials in the URL become Basic auth (sent with every request, not only after
        // a 401 challenge) and are kept out of messages.
        let auth = match auth {
            Auth::None if !url.username().is_empty() => Auth::UserPass(
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or("")),
            ),
            a => a,
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(RpcClient {
            display: http::display_url(&url),
            url,
            auth,
            timeout: Duration::from_secs(30),
            next_id: 0.into(),
        })
    }

    pub fn url(&self) -> &str {
        &self.display
    }

    fn auth_header(&self) -> Result<Option<String>, RpcError> {
        let cred = match &self.auth {
            Auth::None => return Ok(None),
            Auth::UserPass(u, p) => format!("{u}:{p}"),
            Auth::Cookie(p) => std::fs::read_to_string(p)
                .map_err(|e| RpcError::Cookie(p.clone(), e))?
                .trim()
                .to_string(),
        };
        Ok(Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(cred.as_bytes())
        )))
    }

    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(a) = self.auth_header()? {
            headers.push(("Authorization", a));
        }
        let resp = http::post(
            &self.url,
            &headers,
            body.to_string().as_bytes(),
            self.timeout,
        )
        .map_err(|e| RpcError::Unreachable {
            url: self.display.clone(),
            source: e,
        })?;
        let reply = |msg: String| RpcError::Reply {
            url: self.display.clone(),
            method: method.to_string(),
            msg,
        };
        if resp.status == 401 || resp.status == 403 {
            return Err(RpcError::Auth(self.display.clone()));
        }
        // Core answers RPC errors with 404/500 and a JSON body: read the body either way.
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            reply(format!(
                "HTTP {} with a body that is not JSON ({e}): {:?}",
                resp.status,
                String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
            ))
        })?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError::Rpc {
                url: self.display.clone(),
                method: method.to_string(),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
        v.get("result")
            .cloned()
            .ok_or_else(|| reply("no \"result\" field".into()))
    }

    fn reply_err(&self, method: &str, msg: impl Into<String>) -> RpcError {
        RpcError::Reply {
            url: self.display.clone(),
            method: method.to_string(),
            msg: msg.into(),
        }
    }

    pub fn get_blockchain_info(&self) -> Result<ChainInfo, RpcError> {
        let v = self.call("getblockchaininfo", json!([]))?;
        let chain = v
            .get("chain")
            .and_then(Value::as_str)
            .ok_or_else(|| self.reply_err("getblockchaininfo", "no chain"))?
            .to_string();
        let network = network_of_chain(&chain).ok_or_else(|| {
            self.reply_err("getblockchaininfo", format!("unknown chain {chain:?}"))
        })?;
        let blocks = v
            .get("blocks")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.reply_err("getblockchaininfo", "no blocks"))?
            as u32;
        let best = v
            .get("bestblockhash")
            .and_then(Value::as_str)
            .and_then(|s| BlockHash::from_str(s).ok())
            .ok_or_else(|| self.reply_err("getblockchaininfo", "no bestblockhash"))?;
        Ok(ChainInfo {
            chain,
            network,
            blocks,
            best,
            initial_block_download: v
                .get("initialblockdownload")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    pub fn get_best_block_hash(&self) -> Result<BlockHash, RpcError> {
        let v = self.call("getbestblockhash", json!([]))?;
        self.hash_of(&v, "getbestblockhash")
    }

    /// `None` when the node has no block at that height.
    pub fn get_block_hash(&self, height: u32) -> Result<Option<BlockHash>, RpcError> {
        match self.call("getblockhash", json!([height])) {
            Ok(v) => self.hash_of(&v, "getblockhash").map(Some),
            // -8: "Block height out of range".
            Err(RpcError::Rpc { code: -8, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn hash_of(&self, v: &Value, method: &str) -> Result<BlockHash, RpcError> {
        v.as_str()
            .and_then(|s| BlockHash::from_str(s).ok())
            .ok_or_else(|| self.reply_err(method, format!("not a block hash: {v}")))
    }

    /// The raw block, decoded and checked (merkle root, witness commitment).
    pub fn get_block(&self, hash: &BlockHash, network: Network) -> Result<ChainBlock, RpcError> {
        let v = self.call("getblock", json!([hash.to_string(), 0]))?;
        let hexs = v
            .as_str()
            .ok_or_else(|| self.reply_err("getblock", "verbosity 0 did not return a hex string"))?;
        let bytes = hex::decode(hexs)
            .map_err(|e| self.reply_err("getblock", format!("block {hash}: bad hex: {e}")))?;
        block_from_bytes(&bytes, network, &format!("rpc:getblock {hash}"))
            .map_err(|e| self.reply_err("getblock", e))
    }
}

/// `%xx` escapes in a URL's user or password (a password may hold `@` or `:`).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Decode a serialized block from the node (RPC or ZMQ `rawblock`), with its merkle checks.
pub fn block_from_bytes(
    bytes: &[u8],
    network: Network,
    source: &str,
) -> Result<ChainBlock, String> {
    let origin = Origin {
        file: PathBuf::from(source),
        offset: 0,
        kind: OriginKind::Byte,
    };
    let block = cointrail_chain::block::decode_block(bytes, &origin).map_err(|e| e.to_string())?;
    Ok(ChainBlock::from_block(block, network, origin))
}

/// Core's `chain` names (`getblockchaininfo`).
pub fn network_of_chain(chain: &str) -> Option<Network> {
    Some(match chain {
        "main" => Network::Bitcoin,
        "test" => Network::Testnet,
        "testnet4" => Network::Testnet4,
        "signet" => Network::Signet,
        "regtest" => Network::Regtest,
        _ => return None,
    })
}
