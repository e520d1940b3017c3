//! Candidates for where a Tornado-style pool deposit went: later withdrawals from the same
//! pool, ranked, never taint (methods.md §1.7). The signals are the public ones: the same
//! pool (so the same denomination), time since the deposit (sooner ranks higher), a
//! withdrawal to the depositor itself, and a withdrawal whose gas the depositor paid
//! (no relayer). The score orders candidates for a person to check; it is not a probability.

use cointrail_evm::{Address, B256};
use serde::Serialize;

use crate::ledger::Ledger;
use crate::swaps::{decode_tx, TORNADO_WITHDRAWAL};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub pool: Address,
    pub deposit_block: u64,
    pub depositor: Address,
    pub withdrawal_block: u64,
    pub withdrawal_tx: Option<B256>,
    pub to: Address,
    pub relayer: Address,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// Withdrawals from `pool` after movement `after` (the deposit), looking at most at
/// `max_moves` later movements of the pool, best first.
pub fn withdrawal_candidates<L: Ledger>(
    ledger: &L,
    pool: Address,
    depositor: Address,
    deposit_block: u64,
    after: u64,
    max_moves: usize,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut seen_tx = std::collections::HashSet::new();
    for id in ledger
        .touching(&pool, after + 1)
        .into_iter()
        .take(max_moves)
    {
        let Some(m) = ledger.movement(id) else {
            continue;
        };
        let Some(tx) = m.tx else { continue };
        if !seen_tx.insert(tx) {
            continue;
        }
        let logs = ledger.tx_logs(tx);
        if !logs
            .iter()
            .any(|l| l.address == pool && l.topics.first() == Some(&TORNADO_WITHDRAWAL))
        {
            continue;
        }
        let moves = ledger.tx_movements(tx);
        let gas_payer = moves.iter().find(|m| m.is_gas()).map(|m| m.from);
        for w in decode_tx(&logs, &moves)
            .mixer_withdrawals
            .into_iter()
            .filter(|w| w.pool == pool)
        {
            let blocks = m.block.saturating_sub(deposit_block) as f64;
            // About a day of blocks (12 s) halves the timing weight.
            let mut score = 1.0 / (1.0 + blocks / 7_200.0);
            let mut reasons = vec![format!(
                "{} blocks after the deposit",
                m.block.saturating_sub(deposit_block)
            )];
            if w.to == depositor {
                score += 2.0;
                reasons.push("withdrawn to the depositor itself".into());
            }
            if gas_payer == Some(depositor) {
                score += 2.0;
                reasons.push("the depositor paid the withdrawal's gas".into());
            }
            if w.relayer == Address::ZERO {
                reasons.push("no relayer".into());
            }
            out.push(Candidate {
                pool,
                deposit_block,
                depositor,
                withdrawal_block: m.block,
                withdrawal_tx: ledger.tx_hash(tx),
                to: w.to,
                relayer: w.relayer,
                score,
                reasons,
            });
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.withdrawal_block.cmp(&b.withdrawal_block))
    });
    out
}
