//! The simulated EVM chain itself: accounts (native and token balances, nonces), the block
//! being built, and the one way a transaction enters it (`Chain::send`), which charges gas
//! exactly as the movement model reads it back (base fee burnt, priority fee to the block's
//! fee recipient), applies value, internal calls and token transfers, and writes the
//! ethereum-etl rows. A transaction whose calls or transfers cannot be paid reverts:
//! gas only, as on the real chain.

use std::collections::HashMap;
use std::fmt::Write as _;

use cointrail_evm::{Address, B256};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::writer::EtlOut;
use crate::config::SimError;

pub(crate) const GWEI: u128 = 1_000_000_000;
pub(crate) const ETH: u128 = 1_000_000_000_000_000_000;
/// keccak256("Transfer(address,address,uint256)")
pub(crate) const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// keccak256("TokenExchange(address,int128,uint256,int128,uint256)") (Curve pools: an ETH
/// pool such as stETH/ETH pays the native coin itself, as the simulated pools do; a Uniswap
/// pair only ever holds WETH).
pub(crate) const SWAP_TOPIC: &str =
    "0x8b3e96f2b889fa771c53c981b40daf005f63f637f1869f707052d15a3dd97140";
const BLOCK_GAS_LIMIT: u64 = 30_000_000;
const START_TIME: u64 = 1_740_000_000;

/// One transaction as an actor means it. `internal` frames are children of the top call
/// (trace addresses [0], [1], …), paid from the contract's balance after the top value
/// arrived; `tokens` are ERC-20 `Transfer`s, each with its log.
#[derive(Default)]
pub(crate) struct Tx {
    pub from: Address,
    /// None: a contract creation of `create`.
    pub to: Option<Address>,
    pub create: Option<Address>,
    pub value: u128,
    pub gas: u64,
    /// Revert on purpose (slippage, a failed check): gas only.
    pub fail: bool,
    pub internal: Vec<Frame>,
    pub tokens: Vec<TokenMove>,
    /// Other logs (a DEX `Swap`): emitter, topics, data.
    pub logs: Vec<(Address, Vec<String>, String)>,
    pub input: &'static str,
}

pub(crate) struct Frame {
    pub from: Address,
    pub to: Address,
    pub value: u128,
}

#[derive(Clone, Copy)]
pub(crate) struct TokenMove {
    pub token: Address,
    pub from: Address,
    pub to: Address,
    pub amount: u128,
}

pub(crate) struct Sent {
    pub hash: B256,
    pub ok: bool,
}

pub(crate) struct Chain {
    pub rng: ChaCha8Rng,
    /// Addresses and hashes come from their own stream: the economy's choices do not
    /// shift when an id is drawn.
    ids: ChaCha8Rng,
    pub eth: HashMap<Address, u128>,
    pub tok: HashMap<(Address, Address), u128>,
    nonce: HashMap<Address, u64>,
    pub number: u64,
    pub timestamp: u64,
    parent: B256,
    cur_hash: B256,
    pub base_fee: u128,
    pub miner: Address,
    pub builders: Vec<Address>,
    // The block being built.
    txs: String,
    traces: String,
    tts: String,
    logs: String,
    tx_index: u64,
    log_index: u64,
    gas_used: u64,
    withdrawals: Vec<(Address, u64)>,
    withdrawal_index: u64,
    out: EtlOut,
    pub total_txs: u64,
    pub failed_txs: u64,
    pub issued_wei: u128,
    pub burnt_wei: u128,
    pub minted: u128,
}

pub(crate) fn hex_addr(a: &Address) -> String {
    format!("0x{}", hex::encode(a.as_slice()))
}
fn hex_b(b: &B256) -> String {
    format!("0x{}", hex::encode(b.as_slice()))
}
fn word_addr(a: &Address) -> String {
    format!("0x000000000000000000000000{}", hex::encode(a.as_slice()))
}
pub(crate) fn word(v: u128) -> String {
    format!("{v:064x}")
}

impl Chain {
    pub fn new(seed: u64, out: EtlOut) -> Result<Chain, SimError> {
        let mut c = Chain {
            rng: ChaCha8Rng::seed_from_u64(seed),
            ids: ChaCha8Rng::seed_from_u64(seed ^ 0x6576_6d2d_6964_73),
            eth: HashMap::new(),
            tok: HashMap::new(),
            nonce: HashMap::new(),
            number: 0,
            timestamp: START_TIME,
            parent: B256::ZERO,
            cur_hash: B256::ZERO,
            base_fee: 20 * GWEI,
            miner: Address::ZERO,
            builders: Vec::new(),
            txs: String::new(),
            traces: String::new(),
            tts: String::new(),
            logs: String::new(),
            tx_index: 0,
            log_index: 0,
            gas_used: 0,
            withdrawals: Vec::new(),
            withdrawal_index: 0,
            out,
            total_txs: 0,
            failed_txs: 0,
            issued_wei: 0,
            burnt_wei: 0,
            minted: 0,
        };
        c.builders = (0..8).map(|_| c.new_address()).collect();
        c.miner = c.builders[0];
        c.cur_hash = c.new_hash();
        Ok(c)
    }

    pub fn new_address(&mut self) -> Address {
        let mut b = [0u8; 20];
        self.ids.fill_bytes(&mut b);
        Address::from(b)
    }

    fn new_hash(&mut self) -> B256 {
        let mut b = [0u8; 32];
        self.ids.fill_bytes(&mut b);
        B256::from(b)
    }

    pub fn eth_of(&self, a: &Address) -> u128 {
        self.eth.get(a).copied().unwrap_or(0)
    }
    pub fn tok_of(&self, token: &Address, a: &Address) -> u128 {
        self.tok.get(&(*token, *a)).copied().unwrap_or(0)
    }

    /// A beacon-chain withdrawal to `to` in the current block (gwei, as the etl counts it):
    /// the only way new ETH enters this chain. Credited when the block closes, after its
    /// transactions, as the execution layer does.
    pub fn withdraw(&mut self, to: Address, gwei: u64) {
        self.withdrawals.push((to, gwei));
    }

    /// The most gas a sender must hold up front (gas limit × max fee), as a node checks.
    pub fn max_fee(&self) -> u128 {
        self.base_fee * 2 + 3 * GWEI
    }
    pub fn upfront(&self, gas: u64) -> u128 {
        gas_limit(gas) as u128 * self.max_fee()
    }
    pub fn block_full(&self) -> bool {
        self.gas_used + 500_000 > BLOCK_GAS_LIMIT
    }

    /// Put a transaction in the current block. None when the sender cannot even pay the
    /// gas up front (a node would not accept it); otherwise it is mined, reverting if any
    /// of its transfers cannot be paid.
    pub fn send(&mut self, tx: Tx) -> Option<Sent> {
        let limit = gas_limit(tx.gas);
        let max_fee = self.max_fee();
        let prio = GWEI + self.rng.random_range(0..2 * GWEI);
        let price = self.base_fee + prio;
        if self.eth_of(&tx.from) < limit as u128 * max_fee + tx.value {
            return None;
        }
        let to = tx.to.or(tx.create).expect("a call or a creation");
        let ok = !tx.fail && self.payable(&tx, to);
        let gas = if ok || tx.gas == 21_000 {
            tx.gas
        } else {
            tx.gas * 3 / 4
        };
        let fee = gas as u128 * price;
        *self.eth.get_mut(&tx.from).expect("checked above") -= fee;
        *self.eth.entry(self.miner).or_default() += gas as u128 * prio;
        self.burnt_wei += gas as u128 * self.base_fee;
        if ok {
            self.apply(&tx, to);
        }
        let hash = self.new_hash();
        let nonce = {
            let n = self.nonce.entry(tx.from).or_default();
            *n += 1;
            *n - 1
        };
        self.gas_used += gas;
        self.write_rows(&tx, to, hash, nonce, gas, limit, price, prio, max_fee, ok);
        self.tx_index += 1;
        self.total_txs += 1;
        if !ok {
            self.failed_txs += 1;
        }
        Some(Sent { hash, ok })
    }

    /// Whether every value transfer of `tx` is covered, in order, by the payer's balance.
    fn payable(&self, tx: &Tx, to: Address) -> bool {
        let mut eth: HashMap<Address, i128> = HashMap::new();
        let mut tok: HashMap<(Address, Address), i128> = HashMap::new();
        let mut pay_eth = |from: Address, to: Address, v: u128, c: &Chain| -> bool {
            let have = c.eth_of(&from) as i128 + eth.get(&from).copied().unwrap_or(0);
            // The sender's upfront gas stays reserved.
            let reserve = if from == tx.from {
                c.upfront(tx.gas) as i128
            } else {
                0
            };
            if have - reserve < v as i128 {
                return false;
            }
            *eth.entry(from).or_default() -= v as i128;
            *eth.entry(to).or_default() += v as i128;
            true
        };
        if !pay_eth(tx.from, to, tx.value, self) {
            return false;
        }
        for f in &tx.internal {
            if !pay_eth(f.from, f.to, f.value, self) {
                return false;
            }
        }
        for t in &tx.tokens {
            let have = self.tok_of(&t.token, &t.from) as i128
                + tok.get(&(t.token, t.from)).copied().unwrap_or(0);
            if t.from != Address::ZERO && have < t.amount as i128 {
                return false;
            }
            *tok.entry((t.token, t.from)).or_default() -= t.amount as i128;
            *tok.entry((t.token, t.to)).or_default() += t.amount as i128;
        }
        true
    }

    fn apply(&mut self, tx: &Tx, to: Address) {
        let move_eth = |c: &mut Chain, from: Address, to: Address, v: u128| {
            if v > 0 {
                *c.eth.get_mut(&from).expect("payable checked") -= v;
                *c.eth.entry(to).or_default() += v;
            }
        };
        move_eth(self, tx.from, to, tx.value);
        for f in &tx.internal {
            move_eth(self, f.from, f.to, f.value);
        }
        for t in &tx.tokens {
            if t.from == Address::ZERO {
                self.minted += t.amount;
            } else {
                *self
                    .tok
                    .get_mut(&(t.token, t.from))
                    .expect("payable checked") -= t.amount;
            }
            *self.tok.entry((t.token, t.to)).or_default() += t.amount;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_rows(
        &mut self,
        tx: &Tx,
        to: Address,
        hash: B256,
        nonce: u64,
        gas: u64,
        limit: u64,
        price: u128,
        prio: u128,
        max_fee: u128,
        ok: bool,
    ) {
        let (h, n, ts, i) = (hex_b(&hash), self.number, self.timestamp, self.tx_index);
        let bh = hex_b(&self.block_hash());
        let from = hex_addr(&tx.from);
        let to_s = match tx.to {
            Some(a) => format!("\"{}\"", hex_addr(&a)),
            None => "null".into(),
        };
        let created = match tx.create {
            Some(a) if ok => format!("\"{}\"", hex_addr(&a)),
            _ => "null".into(),
        };
        let cumulative = self.gas_used;
        let _ = writeln!(
            self.txs,
            "{{\"type\": \"transaction\", \"hash\": \"{h}\", \"nonce\": {nonce}, \"transaction_index\": {i}, \"from_address\": \"{from}\", \"to_address\": {to_s}, \"value\": {}, \"gas\": {limit}, \"gas_price\": {price}, \"input\": \"{}\", \"block_timestamp\": {ts}, \"block_number\": {n}, \"block_hash\": \"{bh}\", \"max_fee_per_gas\": {max_fee}, \"max_priority_fee_per_gas\": {prio}, \"transaction_type\": 2, \"receipt_cumulative_gas_used\": {cumulative}, \"receipt_gas_used\": {gas}, \"receipt_contract_address\": {created}, \"receipt_root\": null, \"receipt_status\": {}, \"receipt_effective_gas_price\": {price}}}",
            tx.value,
            if tx.input.is_empty() { "0x" } else { tx.input },
            u8::from(ok)
        );
        let (ttype, ctype) = if tx.create.is_some() {
            ("create", "null")
        } else {
            ("call", "\"call\"")
        };
        let (err, status) = if ok { ("null", 1) } else { ("\"Reverted\"", 0) };
        let subs = if ok { tx.internal.len() } else { 0 };
        let _ = writeln!(
            self.traces,
            "{{\"type\": \"trace\", \"transaction_index\": {i}, \"from_address\": \"{from}\", \"to_address\": \"{}\", \"value\": {}, \"trace_type\": \"{ttype}\", \"call_type\": {ctype}, \"reward_type\": null, \"gas\": {limit}, \"gas_used\": {gas}, \"subtraces\": {subs}, \"trace_address\": [], \"error\": {err}, \"status\": {status}, \"transaction_hash\": \"{h}\", \"block_number\": {n}, \"trace_id\": \"{ttype}_{h}_\", \"block_timestamp\": {ts}, \"block_hash\": \"{bh}\"}}",
            hex_addr(&to),
            tx.value
        );
        if !ok {
            // A reverted transaction leaves no logs and no effective inner frames.
            return;
        }
        for (k, f) in tx.internal.iter().enumerate() {
            let _ = writeln!(
                self.traces,
                "{{\"type\": \"trace\", \"transaction_index\": {i}, \"from_address\": \"{}\", \"to_address\": \"{}\", \"value\": {}, \"trace_type\": \"call\", \"call_type\": \"call\", \"reward_type\": null, \"gas\": 2300, \"gas_used\": 0, \"subtraces\": 0, \"trace_address\": [{k}], \"error\": null, \"status\": 1, \"transaction_hash\": \"{h}\", \"block_number\": {n}, \"trace_id\": \"call_{h}_{k}\", \"block_timestamp\": {ts}, \"block_hash\": \"{bh}\"}}",
                hex_addr(&f.from),
                hex_addr(&f.to),
                f.value
            );
        }
        for t in &tx.tokens {
            let li = self.log_index;
            self.log_index += 1;
            let _ = writeln!(
                self.tts,
                "{{\"type\": \"token_transfer\", \"token_address\": \"{}\", \"from_address\": \"{}\", \"to_address\": \"{}\", \"value\": {}, \"transaction_hash\": \"{h}\", \"log_index\": {li}, \"block_number\": {n}, \"block_timestamp\": {ts}, \"block_hash\": \"{bh}\"}}",
                hex_addr(&t.token),
                hex_addr(&t.from),
                hex_addr(&t.to),
                t.amount
            );
            let _ = writeln!(
                self.logs,
                "{{\"type\": \"log\", \"log_index\": {li}, \"transaction_hash\": \"{h}\", \"transaction_index\": {i}, \"address\": \"{}\", \"data\": \"0x{}\", \"topics\": [\"{TRANSFER_TOPIC}\", \"{}\", \"{}\"], \"block_number\": {n}, \"block_timestamp\": {ts}, \"block_hash\": \"{bh}\"}}",
                hex_addr(&t.token),
                word(t.amount),
                word_addr(&t.from),
                word_addr(&t.to)
            );
        }
        for (addr, topics, data) in &tx.logs {
            let li = self.log_index;
            self.log_index += 1;
            let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
            let _ = writeln!(
                self.logs,
                "{{\"type\": \"log\", \"log_index\": {li}, \"transaction_hash\": \"{h}\", \"transaction_index\": {i}, \"address\": \"{}\", \"data\": \"0x{data}\", \"topics\": [{}], \"block_number\": {n}, \"block_timestamp\": {ts}, \"block_hash\": \"{bh}\"}}",
                hex_addr(addr),
                topics.join(", ")
            );
        }
    }

    fn block_hash(&self) -> B256 {
        // Drawn when the block opens (see `close_block`): stored in `parent` of the next.
        self.cur_hash
    }

    /// Write the current block (its row last: its gas and transaction count are final
    /// only now) and open the next one 12 seconds later, with a new fee recipient and a
    /// base fee that drifts between 5 and 80 gwei.
    pub fn close_block(&mut self) -> Result<(), SimError> {
        let mut w = String::new();
        for &(a, g) in &self.withdrawals {
            *self.eth.entry(a).or_default() += g as u128 * GWEI;
            self.issued_wei += g as u128 * GWEI;
        }
        for (k, (a, g)) in self.withdrawals.iter().enumerate() {
            if k > 0 {
                w.push_str(", ");
            }
            let _ = write!(
                w,
                "{{\"index\": {}, \"validator_index\": {}, \"address\": \"{}\", \"amount\": {g}}}",
                self.withdrawal_index,
                100_000 + self.withdrawal_index % 50_000,
                hex_addr(a)
            );
            self.withdrawal_index += 1;
        }
        let block = format!(
            "{{\"type\": \"block\", \"number\": {}, \"hash\": \"{}\", \"parent_hash\": \"{}\", \"nonce\": \"0x0000000000000000\", \"miner\": \"{}\", \"difficulty\": 0, \"size\": {}, \"extra_data\": \"0x\", \"gas_limit\": {BLOCK_GAS_LIMIT}, \"gas_used\": {}, \"timestamp\": {}, \"transaction_count\": {}, \"base_fee_per_gas\": {}, \"withdrawals\": [{w}]}}\n",
            self.number,
            hex_b(&self.cur_hash),
            hex_b(&self.parent),
            hex_addr(&self.miner),
            600 + 110 * self.tx_index,
            self.gas_used,
            self.timestamp,
            self.tx_index,
            self.base_fee
        );
        self.out
            .block(&block, &self.txs, &self.traces, &self.tts, &self.logs)?;
        self.txs.clear();
        self.traces.clear();
        self.tts.clear();
        self.logs.clear();
        self.withdrawals.clear();
        self.parent = self.cur_hash;
        self.cur_hash = self.new_hash();
        self.number += 1;
        self.timestamp += 12;
        self.tx_index = 0;
        self.log_index = 0;
        self.gas_used = 0;
        self.miner = self.builders[self.rng.random_range(0..self.builders.len())];
        let drift = self.rng.random_range(900..=1100u128);
        self.base_fee = (self.base_fee * drift / 1000).clamp(5 * GWEI, 80 * GWEI);
        Ok(())
    }

    pub fn finish(self) -> Result<u64, SimError> {
        self.out.finish()
    }
}

fn gas_limit(gas: u64) -> u64 {
    if gas == 21_000 {
        gas
    } else {
        gas + gas / 4
    }
}
