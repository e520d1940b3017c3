//! An EVM node over JSON-RPC through alloy's provider: one block's header and full
//! transactions, its receipts and its call traces, fetched by hash once the number is
//! resolved, so the three always describe the same block even while the node reorganises.
//!
//! The provider is async; the follower and the CLI are not. An [`EvmNode`] owns a small
//! current-thread runtime and blocks on each call (it must not be used from inside another
//! runtime's worker).

use alloy_network::Ethereum;
use alloy_primitives::{B256, U64};
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_types_eth::{Block, BlockId, BlockNumberOrTag, TransactionReceipt};
use alloy_rpc_types_trace::common::TraceResult;
use alloy_rpc_types_trace::geth::{CallConfig, CallFrame, GethDebugTracingOptions};
use alloy_rpc_types_trace::parity::LocalizedTransactionTrace;
use std::borrow::Cow;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("EVM node at {url} is unreachable ({method}{}): {msg}; is the node running and does --rpc point at its HTTP JSON-RPC port?", at(*.block))]
    Unreachable {
        url: String,
        method: String,
        block: Option<u64>,
        msg: String,
    },
    #[error("EVM node at {url}: {method}{} failed: RPC error {code}: {message}", at(*.block))]
    Rpc {
        url: String,
        method: String,
        block: Option<u64>,
        code: i64,
        message: String,
    },
    #[error("EVM node at {url}: {method}{}: unexpected reply: {msg}", at(*.block))]
    Reply {
        url: String,
        method: String,
        block: Option<u64>,
        msg: String,
    },
    #[error("EVM node at {url} has neither debug_traceBlockByHash (callTracer) nor trace_block ({detail}): internal calls cannot be read; enable the debug or trace API on the node (geth --http.api eth,debug; erigon/reth --http.api eth,debug,trace)")]
    NoTraces { url: String, detail: String },
    #[error("the node is on chain id {node} but the index holds chain id {index}: point --rpc at a chain-{index} node or use another --data-dir")]
    WrongChain { node: u64, index: u64 },
    #[error("{0}")]
    Setup(String),
}

fn at(block: Option<u64>) -> String {
    block.map(|b| format!(" for block {b}")).unwrap_or_default()
}

impl NodeError {
    /// Errors worth retrying: the node may come back, or catch up.
    pub fn is_transient(&self) -> bool {
        matches!(self, NodeError::Unreachable { .. })
    }
}

/// Which trace API the node answered (learnt on the first block).
const TRACE_UNKNOWN: u8 = 0;
const TRACE_GETH: u8 = 1;
const TRACE_PARITY: u8 = 2;

/// Which call-trace API to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceApi {
    /// `debug_traceBlockByHash` with the call tracer, else `trace_block`.
    Auto,
    Geth,
    Parity,
}

/// One block as the node gives it: everything the ethereum-etl rows are made of.
#[derive(Debug, Clone)]
pub struct FetchedBlock {
    pub block: Block,
    /// In transaction order, one per transaction.
    pub receipts: Vec<TransactionReceipt>,
    pub traces: Traces,
}

#[derive(Debug, Clone)]
pub enum Traces {
    /// geth-style `callTracer` frames, one root per transaction, in transaction order.
    Geth(Vec<(B256, CallFrame)>),
    /// parity-style flat traces (`trace_block`), rewards included where the node has them.
    Parity(Vec<LocalizedTransactionTrace>),
}

pub struct EvmNode {
    rt: tokio::runtime::Runtime,
    provider: RootProvider<Ethereum>,
    display: String,
    trace_api: AtomicU8,
}

impl EvmNode {
    /// Connect (lazily: the first call opens the connection) to an http(s) JSON-RPC URL.
    pub fn connect(url: &str) -> Result<EvmNode, NodeError> {
        let u =
            cointrail_follow::http::parse_url(url).map_err(|e| NodeError::Setup(e.to_string()))?;
        let display = cointrail_follow::http::display_url(&u);
        // Block traces of busy mainnet blocks take the node seconds to compute.
        let client = cointrail_follow::http::async_client(Duration::from_secs(120))
            .map_err(|e| NodeError::Setup(e.to_string()))?;
        let rpc = alloy_rpc_client::ClientBuilder::default().http_with_client(client, u);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NodeError::Setup(format!("cannot start the I/O runtime: {e}")))?;
        let provider = {
            // The transport spawns nothing, but constructing it inside the runtime keeps any
            // future version that does on the right one.
            let _g = rt.enter();
            RootProvider::<Ethereum>::new(rpc)
        };
        Ok(EvmNode {
            rt,
            provider,
            display,
            trace_api: AtomicU8::new(TRACE_UNKNOWN),
        })
    }

    /// Use one trace API only (default: learnt from the node, callTracer first).
    pub fn set_trace_api(&self, api: TraceApi) {
        self.trace_api.store(
            match api {
                TraceApi::Auto => TRACE_UNKNOWN,
                TraceApi::Geth => TRACE_GETH,
                TraceApi::Parity => TRACE_PARITY,
            },
            Ordering::Relaxed,
        );
    }

    pub fn url(&self) -> &str {
        &self.display
    }

    pub fn provider(&self) -> &RootProvider<Ethereum> {
        &self.provider
    }

    /// Run a future of the provider on this node's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn err(
        &self,
        method: &str,
        block: Option<u64>,
        e: alloy_transport::TransportError,
    ) -> NodeError {
        use alloy_json_rpc::RpcError as E;
        let url = self.display.clone();
        let method = method.to_string();
        match e {
            E::ErrorResp(p) => NodeError::Rpc {
                url,
                method,
                block,
                code: p.code,
                message: p.message.to_string(),
            },
            E::Transport(k) => NodeError::Unreachable {
                url,
                method,
                block,
                msg: cointrail_follow::http::chain(&k),
            },
            E::DeserError { err, text } => NodeError::Reply {
                url,
                method,
                block,
                msg: format!("{err} in {:?}", &text[..text.len().min(300)]),
            },
            other => NodeError::Reply {
                url,
                method,
                block,
                msg: other.to_string(),
            },
        }
    }

    fn reply(&self, method: &str, block: Option<u64>, msg: impl Into<String>) -> NodeError {
        NodeError::Reply {
            url: self.display.clone(),
            method: method.to_string(),
            block,
            msg: msg.into(),
        }
    }

    pub fn chain_id(&self) -> Result<u64, NodeError> {
        self.rt
            .block_on(self.provider.get_chain_id().into_future())
            .map_err(|e| self.err("eth_chainId", None, e))
    }

    /// Refuse a node on another chain than the index's.
    pub fn check_chain(&self, index_chain_id: u64) -> Result<u64, NodeError> {
        let node = self.chain_id()?;
        if node != index_chain_id {
            return Err(NodeError::WrongChain {
                node,
                index: index_chain_id,
            });
        }
        Ok(node)
    }

    pub fn block_number(&self) -> Result<u64, NodeError> {
        self.rt
            .block_on(self.provider.get_block_number().into_future())
            .map_err(|e| self.err("eth_blockNumber", None, e))
    }

    /// The hash of block `n` on the node's current chain, `None` past its tip.
    pub fn block_hash(&self, n: u64) -> Result<Option<B256>, NodeError> {
        let b = self
            .rt
            .block_on(
                self.provider
                    .get_block_by_number(BlockNumberOrTag::Number(n))
                    .into_future(),
            )
            .map_err(|e| self.err("eth_getBlockByNumber", Some(n), e))?;
        Ok(b.map(|b| b.header.hash))
    }

    /// What a token contract says of itself at block `n`: `symbol()`, `name()`,
    /// `decimals()`, `totalSupply()` by `eth_call`. A call that reverts or answers in no
    /// known shape leaves its field empty (NFTs and contracts that are no token answer
    /// that way); only an unreachable node is an error.
    pub fn token_meta(
        &self,
        token: alloy_primitives::Address,
        n: u64,
    ) -> Result<cointrail_evm::etl::TokenRow, NodeError> {
        use alloy_rpc_types_eth::{TransactionInput, TransactionRequest};
        let call = |selector: [u8; 4]| -> Result<Option<Vec<u8>>, NodeError> {
            let req = TransactionRequest::default()
                .to(token)
                .input(TransactionInput::new(alloy_primitives::Bytes::from(
                    selector.to_vec(),
                )));
            match self.rt.block_on(
                self.provider
                    .call(req)
                    .block(BlockId::number(n))
                    .into_future(),
            ) {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(alloy_json_rpc::RpcError::ErrorResp(_)) => Ok(None),
                Err(e) => Err(self.err("eth_call", Some(n), e)),
            }
        };
        use cointrail_evm::tokens as t;
        let text = |sel, max| -> Result<Option<String>, NodeError> {
            Ok(call(sel)?
                .and_then(|d| t::decode_text_return(&d))
                .and_then(|s| t::clean_text(&s, max)))
        };
        let supply = call([0x18, 0x16, 0x0d, 0xdd])?
            .and_then(|d| (d.len() == 32).then(|| alloy_primitives::U256::from_be_slice(&d)));
        Ok(cointrail_evm::etl::TokenRow {
            address: token,
            symbol: text([0x95, 0xd8, 0x9b, 0x41], t::MAX_SYMBOL)?,
            name: text([0x06, 0xfd, 0xde, 0x03], t::MAX_NAME)?,
            decimals: call([0x31, 0x3c, 0xe5, 0x67])?.and_then(|d| t::decode_decimals_return(&d)),
            total_supply: supply,
            block_number: Some(n),
        })
    }

    /// Block `n` with full transactions, receipts and call traces; `None` past the tip.
    pub fn fetch_block(&self, n: u64) -> Result<Option<FetchedBlock>, NodeError> {
        let m = "eth_getBlockByNumber";
        let Some(block) = self
            .rt
            .block_on(
                self.provider
                    .get_block_by_number(BlockNumberOrTag::Number(n))
                    .full()
                    .into_future(),
            )
            .map_err(|e| self.err(m, Some(n), e))?
        else {
            return Ok(None);
        };
        if block.header.number != n {
            return Err(self.reply(
                m,
                Some(n),
                format!("answered block {}", block.header.number),
            ));
        }
        let hash = block.header.hash;
        let txs: Vec<B256> = block.transactions.hashes().collect();
        if block.transactions.as_transactions().is_none() && !txs.is_empty() {
            return Err(self.reply(m, Some(n), "transactions came as hashes, not objects"));
        }
        let receipts = self.receipts(n, hash, &txs)?;
        let traces = self.traces(n, hash, &txs)?;
        Ok(Some(FetchedBlock {
            block,
            receipts,
            traces,
        }))
    }

    fn receipts(
        &self,
        n: u64,
        hash: B256,
        txs: &[B256],
    ) -> Result<Vec<TransactionReceipt>, NodeError> {
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        let m = "eth_getBlockReceipts";
        let got = self.rt.block_on(
            self.provider
                .get_block_receipts(BlockId::hash(hash))
                .into_future(),
        );
        let receipts = match got {
            Ok(Some(r)) => r,
            // The block left the chain between the two calls: the caller re-resolves.
            Ok(None) => {
                return Err(self.reply(
                    m,
                    Some(n),
                    format!("block {hash} is no longer known (reorganised?)"),
                ))
            }
            // Older nodes lack the batch call: one receipt per transaction.
            Err(alloy_json_rpc::RpcError::ErrorResp(p)) if p.code == -32601 => {
                let mut out = Vec::with_capacity(txs.len());
                for h in txs {
                    let r = self
                        .rt
                        .block_on(self.provider.get_transaction_receipt(*h).into_future())
                        .map_err(|e| self.err("eth_getTransactionReceipt", Some(n), e))?
                        .ok_or_else(|| {
                            self.reply(
                                "eth_getTransactionReceipt",
                                Some(n),
                                format!("no receipt for {h}"),
                            )
                        })?;
                    out.push(r);
                }
                out
            }
            Err(e) => return Err(self.err(m, Some(n), e)),
        };
        if receipts.len() != txs.len() {
            return Err(self.reply(
                m,
                Some(n),
                format!("{} receipts for {} transactions", receipts.len(), txs.len()),
            ));
        }
        for (i, (r, h)) in receipts.iter().zip(txs).enumerate() {
            if r.transaction_hash != *h || r.block_hash != Some(hash) {
                return Err(self.reply(
                    m,
                    Some(n),
                    format!(
                        "receipt {i} is for {} in block {:?}, expected {h} in {hash}",
                        r.transaction_hash, r.block_hash
                    ),
                ));
            }
        }
        Ok(receipts)
    }

    fn traces(&self, n: u64, hash: B256, txs: &[B256]) -> Result<Traces, NodeError> {
        let api = self.trace_api.load(Ordering::Relaxed);
        if api != TRACE_PARITY {
            match self.geth_traces(n, hash, txs) {
                Ok(t) => {
                    self.trace_api.store(TRACE_GETH, Ordering::Relaxed);
                    return Ok(Traces::Geth(t));
                }
                Err(NodeError::Rpc { code, message, .. })
                    if api == TRACE_UNKNOWN && unsupported(code, &message) =>
                {
                    match self.parity_traces(n, hash) {
                        Ok(t) => {
                            self.trace_api.store(TRACE_PARITY, Ordering::Relaxed);
                            return Ok(Traces::Parity(t));
                        }
                        Err(NodeError::Rpc {
                            code: c2,
                            message: m2,
                            ..
                        }) if unsupported(c2, &m2) => {
                            return Err(NodeError::NoTraces {
                                url: self.display.clone(),
                                detail: format!("{code}: {message}; {c2}: {m2}"),
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.parity_traces(n, hash).map(Traces::Parity)
    }

    fn geth_traces(
        &self,
        n: u64,
        hash: B256,
        txs: &[B256],
    ) -> Result<Vec<(B256, CallFrame)>, NodeError> {
        let m = "debug_traceBlockByHash";
        let opts = GethDebugTracingOptions::call_tracer(CallConfig::default().with_log());
        let res: Vec<TraceResult<CallFrame, String>> = self
            .rt
            .block_on(self.provider.raw_request(Cow::Borrowed(m), (hash, opts)))
            .map_err(|e| self.err(m, Some(n), e))?;
        if res.len() != txs.len() {
            return Err(self.reply(
                m,
                Some(n),
                format!("{} traces for {} transactions", res.len(), txs.len()),
            ));
        }
        let mut out = Vec::with_capacity(res.len());
        for (i, (r, h)) in res.into_iter().zip(txs).enumerate() {
            match r {
                TraceResult::Success { result, tx_hash } => {
                    if tx_hash.is_some_and(|t| t != *h) {
                        return Err(self.reply(
                            m,
                            Some(n),
                            format!("trace {i} is for {tx_hash:?}, expected {h}"),
                        ));
                    }
                    out.push((*h, result));
                }
                TraceResult::Error { error, .. } => {
                    return Err(self.reply(
                        m,
                        Some(n),
                        format!("the node could not trace transaction {h}: {error}"),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn parity_traces(
        &self,
        n: u64,
        hash: B256,
    ) -> Result<Vec<LocalizedTransactionTrace>, NodeError> {
        let m = "trace_block";
        let res: Option<Vec<LocalizedTransactionTrace>> = self
            .rt
            .block_on(self.provider.raw_request(Cow::Borrowed(m), (U64::from(n),)))
            .map_err(|e| self.err(m, Some(n), e))?;
        let res = res.unwrap_or_default();
        if let Some(t) = res.iter().find(|t| t.block_hash.is_some_and(|b| b != hash)) {
            return Err(self.reply(
                m,
                Some(n),
                format!(
                    "traces of block {:?}, expected {hash} (reorganised?)",
                    t.block_hash
                ),
            ));
        }
        Ok(res)
    }
}

/// "method not found" and the ways nodes say a tracer or namespace is off.
fn unsupported(code: i64, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    code == -32601
        || m.contains("not found")
        || m.contains("not supported")
        || m.contains("not available")
        || m.contains("does not exist")
}
