//! One struct per ethereum-etl table. `Option` marks columns the schema allows to be null
//! (before Byzantium there is no receipt status; before London no base fee).

use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

/// A beacon-chain withdrawal credited in an execution block; `amount` is in gwei as in
/// the etl export (and the node), not wei.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub index: u64,
    pub validator_index: u64,
    pub address: Address,
    pub amount: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
    /// The fee recipient: the fee sink of every transaction's priority fee.
    pub miner: Address,
    pub timestamp: u64,
    pub transaction_count: u64,
    pub gas_used: u64,
    pub gas_limit: u64,
    pub base_fee_per_gas: Option<U256>,
    #[serde(default)]
    pub withdrawals: Vec<Withdrawal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub hash: B256,
    pub nonce: u64,
    pub block_hash: Option<B256>,
    pub block_number: u64,
    pub transaction_index: u64,
    pub from_address: Address,
    /// None for a contract creation.
    pub to_address: Option<Address>,
    pub value: U256,
    pub gas: u64,
    pub gas_price: Option<U256>,
    pub block_timestamp: Option<u64>,
    pub max_fee_per_gas: Option<U256>,
    pub max_priority_fee_per_gas: Option<U256>,
    pub transaction_type: Option<u64>,
    pub receipt_gas_used: Option<u64>,
    pub receipt_cumulative_gas_used: Option<u64>,
    pub receipt_contract_address: Option<Address>,
    /// 1 ok, 0 failed, None before Byzantium (then success is only known from traces).
    pub receipt_status: Option<u64>,
    pub receipt_effective_gas_price: Option<U256>,
}

impl Transaction {
    /// A failed transaction moves gas only.
    pub fn failed(&self) -> bool {
        self.receipt_status == Some(0)
    }
    /// The price actually paid per gas (receipt first: for EIP-1559 transactions the
    /// `gas_price` column is the cap, not the price).
    pub fn paid_gas_price(&self) -> U256 {
        self.receipt_effective_gas_price
            .or(self.gas_price)
            .unwrap_or(U256::ZERO)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceType {
    Call,
    Create,
    Suicide,
    Reward,
    /// Genesis allocations and DAO-fork style state changes (`genesis`, `daofork`).
    Other,
}

impl TraceType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "call" => Self::Call,
            "create" | "create2" => Self::Create,
            "suicide" | "selfdestruct" => Self::Suicide,
            "reward" => Self::Reward,
            "genesis" | "daofork" => Self::Other,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Create => "create",
            Self::Suicide => "suicide",
            Self::Reward => "reward",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub block_number: u64,
    /// None for block rewards.
    pub transaction_hash: Option<B256>,
    pub transaction_index: Option<u64>,
    pub from_address: Option<Address>,
    pub to_address: Option<Address>,
    pub value: Option<U256>,
    pub trace_type: TraceType,
    /// call, delegatecall, staticcall, callcode: only `call` (and `callcode`, to itself)
    /// carries value between accounts.
    pub call_type: Option<String>,
    pub reward_type: Option<String>,
    pub gas: Option<u64>,
    pub gas_used: Option<u64>,
    pub subtraces: u64,
    /// Path of the frame in the call tree; empty for the transaction's top frame.
    pub trace_address: Vec<u32>,
    pub error: Option<String>,
    /// 1 ok, 0 failed (this frame or an ancestor).
    pub status: Option<u64>,
    pub trace_id: Option<String>,
}

impl Trace {
    /// Failed in itself; a failed ancestor is checked by the movement model.
    pub fn failed_here(&self) -> bool {
        self.error.is_some() || self.status == Some(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenTransfer {
    pub token_address: Address,
    pub from_address: Address,
    pub to_address: Address,
    /// ERC-20 amount in base units, or the ERC-721 token id.
    pub value: U256,
    pub transaction_hash: B256,
    pub log_index: u64,
    pub block_number: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    pub log_index: u64,
    pub transaction_hash: B256,
    pub transaction_index: u64,
    pub address: Address,
    pub data: String,
    pub topics: Vec<B256>,
    pub block_number: u64,
}

/// A row of any table, as a mixed stream (ethereum-etl `stream` output) delivers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Block(Block),
    Transaction(Transaction),
    Trace(Trace),
    TokenTransfer(TokenTransfer),
    Log(Log),
}

/// A row of the etl `tokens` table: what a token contract says of itself (`symbol()`,
/// `name()`, `decimals()`, `totalSupply()`), read once, not per block. Every field but the
/// address may be missing: contracts that are not ERC-20s, or answer in another shape.
/// Symbol and name are cleaned (no control characters, bounded length) before they are
/// kept, since any contract can say anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub address: Address,
    pub symbol: Option<String>,
    pub name: Option<String>,
    pub decimals: Option<u8>,
    pub total_supply: Option<U256>,
    pub block_number: Option<u64>,
}

impl Row {
    pub fn block_number(&self) -> u64 {
        match self {
            Row::Block(b) => b.number,
            Row::Transaction(t) => t.block_number,
            Row::Trace(t) => t.block_number,
            Row::TokenTransfer(t) => t.block_number,
            Row::Log(l) => l.block_number,
        }
    }
}
