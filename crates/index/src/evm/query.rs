//! Answers from the EVM index: an address's balances and movements, a transaction's
//! movements, a block. Amounts leave as decimal strings (JSON numbers cannot hold 2^256).

use std::collections::BTreeMap;

use cointrail_evm::movement::MovementKind;
use cointrail_evm::{Address, B256, U256};
use serde::Serialize;

use super::store::{EvmIndex, NONE40};
use crate::column::u40_of;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MovementView {
    pub id: u64,
    pub block: u64,
    pub tx: Option<String>,
    pub kind: &'static str,
    /// None for the native coin, else the token contract (EIP-55).
    pub token: Option<String>,
    pub from: String,
    pub to: String,
    /// In base units (wei, or the token's smallest unit).
    pub amount: String,
    /// ETH for the native coin; a token's symbol when the shipped registry knows it.
    pub symbol: Option<&'static str>,
    pub decimals: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub call_path: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AssetBalance {
    pub token: Option<String>,
    /// "ETH", a registry token's symbol, or what the token contract said of itself
    /// (`tokens.json`); None when not known (amounts are then base units).
    pub symbol: Option<&'static str>,
    pub decimals: Option<u8>,
    pub balance: String,
    pub received: String,
    pub sent: String,
    /// True when more left than arrived in the indexed blocks: the address had a balance
    /// from before the first indexed block.
    pub incomplete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressSummary {
    pub chain: String,
    pub address: String,
    /// A contract when a creation in the indexed blocks made it; None when not known.
    pub kind: &'static str,
    pub balances: Vec<AssetBalance>,
    pub movements_in: u64,
    pub movements_out: u64,
    pub first_seen_block: Option<u64>,
    pub last_seen_block: Option<u64>,
    pub as_of_block: Option<u64>,
    /// One page of movements, newest first (`--limit`, `--before`).
    pub recent: Vec<MovementView>,
    /// The cursor of the next page (pass it as `before`); null on the last page.
    pub next_before: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TxSummary {
    pub chain: String,
    pub hash: String,
    pub block: u64,
    pub status: &'static str,
    pub movements: Vec<MovementView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockSummary {
    pub chain: String,
    pub number: u64,
    pub hash: String,
    pub timestamp: u64,
    pub transactions: u64,
    pub movements: Vec<MovementView>,
}

pub(crate) struct RawMv {
    pub kind: MovementKind,
    pub asset: u32,
    pub from: u32,
    pub to: u32,
    pub amount: U256,
    pub tx: u64,
    pub prev_from: u64,
    pub prev_to: u64,
}

impl EvmIndex {
    pub(crate) fn raw_mv(&self, i: u64) -> RawMv {
        let r = self.mvs.get(i);
        RawMv {
            kind: MovementKind::from_u8(r[0]).unwrap_or(MovementKind::Value),
            asset: u32::from_le_bytes(r[1..5].try_into().unwrap()),
            from: u32::from_le_bytes(r[5..9].try_into().unwrap()),
            to: u32::from_le_bytes(r[9..13].try_into().unwrap()),
            amount: EvmIndex::mv_amount(r),
            tx: u40_of(&r[45..50]),
            prev_from: u40_of(&r[50..55]),
            prev_to: u40_of(&r[55..60]),
        }
    }

    fn block_first(&self, b: u64) -> (u64, u64) {
        let r = self.blocks.get(b);
        (
            u64::from_le_bytes(r[48..56].try_into().unwrap()),
            u64::from_le_bytes(r[56..64].try_into().unwrap()),
        )
    }

    /// Block record index holding movement `i`: read from its transaction's record, which
    /// stores it (screening asks this for every movement it walks); only movements outside
    /// any transaction (rewards, withdrawals) search the blocks.
    pub(crate) fn block_of_mv(&self, i: u64) -> u64 {
        if let Some(b) = self.side_block(i) {
            return b;
        }
        let tx = u40_of(&self.mvs.get(i)[45..50]);
        if tx != NONE40 && tx < self.txs.len() {
            return u32::from_le_bytes(self.txs.get(tx)[32..36].try_into().unwrap()) as u64;
        }
        let (mut lo, mut hi) = (0u64, self.blocks.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.block_first(mid).1 <= i {
                lo = mid
            } else {
                hi = mid
            }
        }
        lo
    }

    pub fn address_of(&self, id: u32) -> Address {
        Address::from_slice(self.addrs.get(id as u64))
    }

    pub fn token_of(&self, asset: u32) -> Option<Address> {
        (asset > 0).then(|| Address::from_slice(self.assets.get(asset as u64 - 1)))
    }

    pub fn tx_hash(&self, t: u64) -> B256 {
        B256::from_slice(&self.txs.get(t)[..32])
    }

    fn call_path(&self, id: u64) -> Vec<u32> {
        let (mut lo, mut hi) = (0u64, self.path_idx.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let m = u64::from_le_bytes(self.path_idx.get(mid)[..8].try_into().unwrap());
            if m < id {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        if lo >= self.path_idx.len()
            || u64::from_le_bytes(self.path_idx.get(lo)[..8].try_into().unwrap()) != id
        {
            return Vec::new();
        }
        let w = u32::from_le_bytes(self.path_idx.get(lo)[8..12].try_into().unwrap()) as u64;
        let n = u32::from_le_bytes(self.path_words.get(w).try_into().unwrap()) as u64;
        (1..=n)
            .map(|k| u32::from_le_bytes(self.path_words.get(w + k).try_into().unwrap()))
            .collect()
    }

    pub fn movement(&self, i: u64) -> MovementView {
        let m = self.raw_mv(i);
        let info = match self.token_of(m.asset) {
            None => Some(cointrail_evm::tokens::TokenInfo {
                symbol: "ETH",
                decimals: 18,
            }),
            Some(t) => cointrail_evm::tokens::token_info(&t),
        };
        MovementView {
            symbol: info.map(|i| i.symbol),
            decimals: info.map(|i| i.decimals),
            id: i,
            block: self.block_number(self.block_of_mv(i)),
            tx: (m.tx != NONE40).then(|| self.tx_hash(m.tx).to_string()),
            kind: m.kind.as_str(),
            token: self.token_of(m.asset).map(|t| t.to_checksum(None)),
            from: self.address_of(m.from).to_checksum(None),
            to: self.address_of(m.to).to_checksum(None),
            amount: m.amount.to_string(),
            call_path: if m.kind == MovementKind::Internal {
                self.call_path(i)
            } else {
                Vec::new()
            },
        }
    }

    /// Movement ids an address sent (newest first).
    pub fn sent_ids(&self, a: &Address) -> impl Iterator<Item = u64> + '_ {
        self.list(a, true)
    }
    /// Movement ids an address received (newest first).
    pub fn received_ids(&self, a: &Address) -> impl Iterator<Item = u64> + '_ {
        self.list(a, false)
    }

    fn list(&self, a: &Address, out: bool) -> impl Iterator<Item = u64> + '_ {
        let head = self.address_id(a).map(|id| {
            let col = if out { &self.out_head } else { &self.in_head };
            u40_of(&col.get(id as u64)[..5])
        });
        let mut cur = head.unwrap_or(0);
        std::iter::from_fn(move || {
            if cur == 0 {
                return None;
            }
            let id = cur - 1;
            let m = self.raw_mv(id);
            let p = if out { m.prev_from } else { m.prev_to };
            cur = if p == NONE40 { 0 } else { p + 1 };
            Some(id)
        })
    }

    pub fn knows_address(&self, a: &Address) -> bool {
        self.address_id(a).is_some()
    }

    /// Movements below this count are those of blocks up to `at` (all when None).
    fn limit_at(&self, at: Option<u64>) -> u64 {
        match at {
            None => self.mvs.len(),
            Some(n) => {
                // Block numbers grow with the record index: the first block above `n`.
                let (mut lo, mut hi) = (0u64, self.blocks.len());
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if self.block_number(mid) <= n {
                        lo = mid + 1
                    } else {
                        hi = mid
                    }
                }
                if lo == self.blocks.len() {
                    self.mvs.len()
                } else {
                    self.block_first(lo).1
                }
            }
        }
    }

    /// Balances per asset after block `at` (all indexed blocks when None): from the running
    /// totals (a few reads, whatever the address's history), or by walking its lists in an
    /// index from before them.
    pub fn balances(&self, a: &Address, at: Option<u64>) -> Vec<AssetBalance> {
        let Some(id) = self.address_id(a) else {
            return Vec::new();
        };
        let limit = self.limit_at(at);
        let limit = (limit < self.mvs.len()).then_some(limit);
        match self.asset_totals(id, limit) {
            Some(t) => t
                .into_iter()
                .map(|t| self.asset_balance(t.asset, t.received, t.sent))
                .collect(),
            None => self.balances_walk(a, at),
        }
    }

    fn asset_balance(&self, asset: u32, r: U256, s: U256) -> AssetBalance {
        let info = match self.token_of(asset) {
            None => Some(cointrail_evm::tokens::TokenInfo {
                symbol: "ETH",
                decimals: 18,
            }),
            Some(t) => cointrail_evm::tokens::token_info(&t),
        };
        AssetBalance {
            symbol: info.map(|i| i.symbol),
            decimals: info.map(|i| i.decimals),
            token: self.token_of(asset).map(|t| t.to_checksum(None)),
            balance: r.saturating_sub(s).to_string(),
            received: r.to_string(),
            sent: s.to_string(),
            incomplete: s > r,
        }
    }

    /// Balances by summing every movement of the address (what the running totals replace;
    /// kept for indexes from before them and as the reference the tests compare with).
    pub fn balances_walk(&self, a: &Address, at: Option<u64>) -> Vec<AssetBalance> {
        let limit = self.limit_at(at);
        let mut sums: BTreeMap<u32, (U256, U256)> = BTreeMap::new();
        for id in self.received_ids(a).filter(|&i| i < limit) {
            let m = self.raw_mv(id);
            let e = sums.entry(m.asset).or_default();
            e.0 = e.0.saturating_add(m.amount);
        }
        for id in self.sent_ids(a).filter(|&i| i < limit) {
            let m = self.raw_mv(id);
            let e = sums.entry(m.asset).or_default();
            e.1 = e.1.saturating_add(m.amount);
        }
        sums.into_iter()
            .map(|(asset, (r, s))| self.asset_balance(asset, r, s))
            .collect()
    }

    /// One page of an address's movements, newest first: at most `limit` with ids below
    /// `before` (from the newest when None), and the cursor of the next page (the last id
    /// listed) when there are more. With the running totals a page costs its own length
    /// wherever it starts; without them the lists are walked down to the cursor.
    pub fn movement_page(
        &self,
        a: &Address,
        before: Option<u64>,
        limit: usize,
    ) -> (Vec<u64>, Option<u64>) {
        let Some(id) = self.address_id(a) else {
            return (Vec::new(), None);
        };
        let start = |sent: bool| -> u64 {
            match before {
                None => self.list_head(id, sent),
                Some(c) => match self.list_before(id, c, sent) {
                    Some(p) => p,
                    None => {
                        let mut it = self.list(a, sent).skip_while(|&i| i >= c);
                        it.next().map_or(0, |i| i + 1)
                    }
                },
            }
        };
        let (mut r, mut s) = (start(false), start(true));
        let mut out = Vec::new();
        while (r != 0 || s != 0) && out.len() <= limit {
            let take = r.max(s);
            out.push(take - 1);
            let m = self.raw_mv(take - 1);
            let back = |p: u64| if p == NONE40 { 0 } else { p + 1 };
            // A payment to itself is in both lists under one id: listed once.
            if r == take {
                r = back(m.prev_to);
            }
            if s == take {
                s = back(m.prev_from);
            }
        }
        let more = out.len() > limit;
        out.truncate(limit);
        let next = if more { out.last().copied() } else { None };
        (out, next)
    }

    /// An address: balances per asset, counts, first/last seen, contract or EOA, and one
    /// page of movements (see [`EvmIndex::movement_page`]).
    pub fn address_summary(
        &self,
        a: &Address,
        at: Option<u64>,
        limit: usize,
        before: Option<u64>,
    ) -> AddressSummary {
        let facts = self.address_id(a).and_then(|id| self.address_facts(id));
        let Some(f) = facts else {
            let mut s = self.address_summary_walk(a, at, limit);
            let (page, next) = self.movement_page(a, before, limit);
            s.recent = page.into_iter().map(|i| self.movement(i)).collect();
            s.next_before = next;
            return s;
        };
        let (page, next) = self.movement_page(a, before, limit);
        AddressSummary {
            chain: self.m.chain.clone(),
            address: a.to_checksum(None),
            kind: if f.created {
                "contract"
            } else if f.paid_gas {
                "eoa"
            } else {
                "unknown"
            },
            balances: self.balances(a, at),
            movements_in: f.movements_in,
            movements_out: f.movements_out,
            first_seen_block: f
                .first_movement
                .map(|i| self.block_number(self.block_of_mv(i))),
            last_seen_block: f
                .last_movement
                .map(|i| self.block_number(self.block_of_mv(i))),
            as_of_block: at.or(self.tip()),
            recent: page.into_iter().map(|i| self.movement(i)).collect(),
            next_before: next,
        }
    }

    /// The answer by walking every movement of the address (indexes from before the running
    /// totals; the reference the tests compare with).
    pub fn address_summary_walk(
        &self,
        a: &Address,
        at: Option<u64>,
        recent: usize,
    ) -> AddressSummary {
        let ins: Vec<u64> = self.received_ids(a).collect();
        let outs: Vec<u64> = self.sent_ids(a).collect();
        let first = ins.last().into_iter().chain(outs.last()).min().copied();
        let last = ins.first().into_iter().chain(outs.first()).max().copied();
        let is_contract = ins
            .iter()
            .any(|&i| self.raw_mv(i).kind == MovementKind::Create);
        let mut merged: Vec<u64> = ins.iter().chain(&outs).copied().collect();
        merged.sort_unstable_by(|x, y| y.cmp(x));
        merged.dedup();
        let more = merged.len() > recent;
        merged.truncate(recent);
        AddressSummary {
            chain: self.m.chain.clone(),
            address: a.to_checksum(None),
            kind: if is_contract {
                "contract"
            } else if outs.iter().any(|&i| {
                self.raw_mv(i).tx != NONE40
                    && matches!(self.raw_mv(i).kind, MovementKind::Fee | MovementKind::Burn)
            }) {
                "eoa"
            } else {
                "unknown"
            },
            balances: self.balances_walk(a, at),
            movements_in: ins.len() as u64,
            movements_out: outs.len() as u64,
            first_seen_block: first.map(|i| self.block_number(self.block_of_mv(i))),
            last_seen_block: last.map(|i| self.block_number(self.block_of_mv(i))),
            as_of_block: at.or(self.tip()),
            next_before: if more { merged.last().copied() } else { None },
            recent: merged.into_iter().map(|i| self.movement(i)).collect(),
        }
    }

    pub fn tx_summary(&self, h: &B256) -> Option<TxSummary> {
        let t = self.tx_id(h)?;
        let r = self.txs.get(t);
        let block_idx = u32::from_le_bytes(r[32..36].try_into().unwrap()) as u64;
        let first = u64::from_le_bytes(r[37..45].try_into().unwrap());
        let end = if t + 1 < self.txs.len() {
            u64::from_le_bytes(self.txs.get(t + 1)[37..45].try_into().unwrap())
        } else {
            self.mvs.len()
        };
        Some(TxSummary {
            chain: self.m.chain.clone(),
            hash: h.to_string(),
            block: self.block_number(block_idx),
            status: match r[36] {
                1 => "success",
                0 => "failed",
                _ => "unknown",
            },
            movements: (first..end)
                .filter(|&i| self.raw_mv(i).tx == t)
                .map(|i| self.movement(i))
                .collect(),
        })
    }

    pub fn block_summary(&self, number: u64) -> Option<BlockSummary> {
        let (mut lo, mut hi) = (0u64, self.blocks.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.block_number(mid) < number {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        if lo >= self.blocks.len() || self.block_number(lo) != number {
            return None;
        }
        let r = self.blocks.get(lo);
        let (ft, fm) = self.block_first(lo);
        let (et, em) = if lo + 1 < self.blocks.len() {
            self.block_first(lo + 1)
        } else {
            (self.txs.len(), self.mvs.len())
        };
        Some(BlockSummary {
            chain: self.m.chain.clone(),
            number,
            hash: B256::from_slice(&r[8..40]).to_string(),
            timestamp: u64::from_le_bytes(r[40..48].try_into().unwrap()),
            transactions: et - ft,
            movements: (fm..em).map(|i| self.movement(i)).collect(),
        })
    }
}
