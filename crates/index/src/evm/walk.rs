//! What exposure walks read from the EVM index: movements as dense ids and integers (no
//! address strings), each address's lists by id, and block times.

use cointrail_evm::movement::MovementKind;
use cointrail_evm::U256;

use super::store::{EvmIndex, NONE40};
use crate::column::u40_of;

/// One movement as stored: ids, not strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMovement {
    pub kind: MovementKind,
    /// 0 is the native coin; `n > 0` is [`EvmIndex::token_of`]`(n)`.
    pub asset: u32,
    pub from: u32,
    pub to: u32,
    pub amount: U256,
    /// The transaction's index in `txs.bin` (none for rewards and withdrawals).
    pub tx: Option<u64>,
}

impl EvmIndex {
    // `address_id` (the dense id of an address) is in store.rs, through the address map.

    pub fn raw_movement(&self, i: u64) -> RawMovement {
        let m = self.raw_mv(i);
        RawMovement {
            kind: m.kind,
            asset: m.asset,
            from: m.from,
            to: m.to,
            amount: m.amount,
            tx: (m.tx != NONE40).then_some(m.tx),
        }
    }

    /// A movement and the Unix time of its block, its record read once (the block comes
    /// from the running totals' side record, or the transaction's record).
    pub fn movement_timed(&self, i: u64) -> (RawMovement, u64) {
        let m = self.raw_mv(i);
        let b = match self.side_block(i) {
            Some(b) => b,
            None if m.tx != NONE40 && m.tx < self.txs.len() => {
                u32::from_le_bytes(self.txs.get(m.tx)[32..36].try_into().unwrap()) as u64
            }
            None => self.block_of_mv(i),
        };
        let time = u64::from_le_bytes(self.blocks.get(b)[40..48].try_into().unwrap());
        (
            RawMovement {
                kind: m.kind,
                asset: m.asset,
                from: m.from,
                to: m.to,
                amount: m.amount,
                tx: (m.tx != NONE40).then_some(m.tx),
            },
            time,
        )
    }

    /// Unix time of the block holding movement `i`.
    pub fn movement_time(&self, i: u64) -> u64 {
        let b = self.block_of_mv(i);
        u64::from_le_bytes(self.blocks.get(b)[40..48].try_into().unwrap())
    }

    /// Block number of the block holding movement `i`.
    pub fn movement_block(&self, i: u64) -> u64 {
        self.block_number(self.block_of_mv(i))
    }

    /// Visit the movements address `id` sent (`sent`) or received, newest first, while `f`
    /// says go on.
    pub fn each_movement_of(&self, id: u32, sent: bool, f: &mut dyn FnMut(u64) -> bool) {
        if id as u64 >= self.addrs.len() {
            return;
        }
        let col = if sent { &self.out_head } else { &self.in_head };
        let mut cur = u40_of(&col.get(id as u64)[..5]);
        while cur != 0 {
            let i = cur - 1;
            if !f(i) {
                return;
            }
            let r = self.mvs.get(i);
            let p = if sent {
                u40_of(&r[50..55])
            } else {
                u40_of(&r[55..60])
            };
            cur = if p == NONE40 { 0 } else { p + 1 };
        }
    }
}
