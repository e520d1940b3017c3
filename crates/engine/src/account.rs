//! Account-model tracing over the EVM index (issue 16): `cointrail_account::Ledger` for
//! `EvmIndex`, and a case's Ethereum sources (`0x` transactions and addresses) resolved to
//! the movements they name. Swaps are decoded from the logs the index keeps (`index::evm`
//! `tx_logs`); blocks ingested without logs decode none.

use cointrail_account::ledger::{Ledger, Move};
use cointrail_account::tracer::{AccountOracle, AccountTrace, AccountTracer, Params, Source};
use cointrail_cases::{is_evm_source, Case, CaseSource};
use cointrail_evm::etl::Log;
use cointrail_evm::movement::Asset;
use cointrail_evm::{Address, B256, U256};
use cointrail_index::evm::EvmIndex;

/// The EVM index as a ledger of movements in chain order.
pub struct EvmLedger<'a>(pub &'a EvmIndex);

impl Ledger for EvmLedger<'_> {
    fn movement(&self, id: u64) -> Option<Move> {
        self.0.ledger_move(id).map(|m| Move {
            id: m.id,
            block: m.block,
            tx: m.tx,
            kind: m.kind,
            asset: m.asset,
            from: m.from,
            to: m.to,
            amount: m.amount,
        })
    }
    fn touching(&self, addr: &Address, from: u64) -> Vec<u64> {
        self.0.touching(addr, from)
    }
    fn tx_movements(&self, tx: u64) -> Vec<Move> {
        self.0
            .tx_move_ids(tx)
            .filter_map(|i| self.movement(i))
            .collect()
    }
    /// Logs of blocks ingested without them (or before the index kept logs) are empty:
    /// swaps there are not decoded, and a pool holds what is paid in like any address.
    fn tx_logs(&self, tx: u64) -> Vec<Log> {
        self.0.tx_logs(tx).unwrap_or_default()
    }
    fn tx_hash(&self, tx: u64) -> Option<B256> {
        (tx < self.0.stats().transactions).then(|| self.0.tx_hash(tx))
    }
    fn tx_by_hash(&self, hash: &B256) -> Option<u64> {
        self.0.tx_number(hash)
    }
    fn balance_before(&self, addr: &Address, asset: Asset, id: u64) -> U256 {
        let mut bal = U256::ZERO;
        for m in self.0.touching(addr, 0) {
            if m >= id {
                break;
            }
            let Some(mv) = self.0.ledger_move(m) else {
                continue;
            };
            if mv.asset != asset || mv.from == mv.to {
                continue;
            }
            if mv.to == *addr {
                bal += mv.amount;
            } else {
                bal = bal.saturating_sub(mv.amount);
            }
        }
        bal
    }
}

/// The movements a case's Ethereum sources name: every value movement of a `0x`
/// transaction (gas is not stolen value), every movement an `0x` address received (from
/// `from_height` on). What the index lacks is reported, not guessed.
pub fn resolve_evm(idx: &EvmIndex, sources: &[CaseSource]) -> (Vec<u64>, Vec<String>) {
    let mut ids = Vec::new();
    let mut missing = Vec::new();
    for s in sources.iter().filter(|s| is_evm_source(s)) {
        match s {
            CaseSource::Tx { txid } => {
                let Ok(h) = txid.parse::<B256>() else {
                    missing.push(format!("{txid}: not a transaction hash"));
                    continue;
                };
                match idx.tx_number(&h) {
                    None => missing.push(format!("{txid}: transaction not in the Ethereum index")),
                    Some(t) => {
                        let before = ids.len();
                        for i in idx.tx_move_ids(t) {
                            if idx.ledger_move(i).is_some_and(|m| {
                                !matches!(
                                    m.kind,
                                    cointrail_evm::movement::MovementKind::Fee
                                        | cointrail_evm::movement::MovementKind::Burn
                                ) && !m.amount.is_zero()
                            }) {
                                ids.push(i);
                            }
                        }
                        if ids.len() == before {
                            missing.push(format!("{txid}: the transaction moved nothing but gas"));
                        }
                    }
                }
            }
            CaseSource::Address {
                address,
                from_height,
            } => {
                let Ok(a) = cointrail_evm::parse_address(address) else {
                    missing.push(format!("{address}: not an address"));
                    continue;
                };
                let before = ids.len();
                for i in idx.received_ids(&a) {
                    if let Some(m) = idx.ledger_move(i) {
                        if from_height.is_none_or(|h| m.block >= h as u64)
                            && !matches!(
                                m.kind,
                                cointrail_evm::movement::MovementKind::Fee
                                    | cointrail_evm::movement::MovementKind::Burn
                            )
                            && !m.amount.is_zero()
                            && m.from != a
                        {
                            ids.push(i);
                        }
                    }
                }
                if ids.len() == before {
                    missing.push(format!("{address}: received nothing in the Ethereum index"));
                }
            }
            CaseSource::Outpoint { .. } => {}
        }
    }
    ids.sort_unstable();
    ids.dedup();
    (ids, missing)
}

/// Trace cases whose sources are on Ethereum, each case its own label (its position).
pub fn trace_evm_cases<O: AccountOracle>(
    idx: &EvmIndex,
    cases: &[Case],
    oracle: &O,
    params: Params,
) -> anyhow::Result<(AccountTrace, Vec<String>)> {
    let ledger = EvmLedger(idx);
    let mut t = AccountTracer::new(&ledger, oracle, params);
    let mut missing = Vec::new();
    for (label, c) in cases.iter().enumerate() {
        let (ids, miss) = resolve_evm(idx, &c.sources);
        missing.extend(miss.into_iter().map(|m| format!("case {}: {m}", c.name)));
        if ids.is_empty() {
            anyhow::bail!(
                "case '{}' names nothing in the Ethereum index ({}): ingest the blocks of its sources first",
                c.name,
                missing.join("; ")
            );
        }
        for id in ids {
            t.add_source(label as u32, Source::Movement(id))
                .map_err(anyhow::Error::msg)?;
        }
    }
    Ok((t.run(), missing))
}
