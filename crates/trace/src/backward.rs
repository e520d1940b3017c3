//! Backward FIFO: where an output's satoshis came from, to the satoshi, without a case.
//!
//! Under FIFO with the fee taken last (the tracer's default), a transaction lays its
//! inputs end to end on a tape and its outputs take consecutive pieces of it: output `k`
//! holds tape `[Σ out<k, Σ out≤k)`. Read backwards, a slice of an output is a slice of the
//! tape, which falls on one or more inputs, each a slice of an earlier output. Following
//! that breadth-first gives every origin of every satoshi, nearest first, until a slice
//! reaches a labelled party (a stop), a coinbase (new coins), an output from before the
//! indexed range (value unknown), a CoinJoin (FIFO through a mix only reflects the
//! coordinator's ordering, methods.md §3.2), or the hop limit. The slices always add up
//! to the output's value.

use crate::engine::{Oracle, Stop};
use cointrail_chain::view::{display_txid, ChainView, OutNum, Prevout};
use serde::Serialize;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct BackParams {
    pub max_hops: u32,
    /// Origins listed at most; what lies beyond is counted in `truncated_sats`.
    pub max_rows: usize,
}

impl Default for BackParams {
    fn default() -> BackParams {
        BackParams {
            max_hops: 6,
            max_rows: 10_000,
        }
    }
}

/// Why a slice's walk ended there.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum OriginKind {
    /// An output paying a labelled party (as the tracer's stop categories say).
    Labelled { stop: Stop },
    /// Newly mined coins.
    Coinbase,
    /// An output from before the indexed range; its value is unknown.
    External,
    /// A CoinJoin: which participant paid in is not told by FIFO.
    Coinjoin { protocol: String },
    /// The hop limit.
    HopLimit,
}

#[derive(Clone, Debug, Serialize)]
pub struct Origin {
    /// The output the slice sits in (for `external`: the outpoint before the range).
    pub txid: String,
    pub vout: u32,
    pub address: Option<String>,
    /// Satoshis `offset..offset + amount` of that output.
    pub offset: u64,
    pub amount: u64,
    pub hops: u32,
    pub height: Option<u32>,
    #[serde(flatten)]
    pub kind: OriginKind,
}

#[derive(Clone, Debug, Serialize)]
pub struct Origins {
    pub value: u64,
    pub origins: Vec<Origin>,
    /// Satoshis whose origins were not listed (over `max_rows`).
    pub truncated_sats: u64,
    pub max_hops: u32,
    pub model: &'static str,
}

/// The origins of output `out`'s satoshis under FIFO (fee last).
pub fn fifo_origins(
    view: &dyn ChainView,
    oracle: &dyn Oracle,
    out: OutNum,
    p: &BackParams,
) -> Origins {
    let value = view.output_value(out);
    let mut res = Origins {
        value,
        origins: Vec::new(),
        truncated_sats: 0,
        max_hops: p.max_hops,
        model: "fifo (fee last)",
    };
    let mut q = VecDeque::from([(out, 0u64, value, 0u32)]);
    while let Some((o, offset, amount, hops)) = q.pop_front() {
        if amount == 0 {
            continue;
        }
        let t = view.output_tx(o);
        let row = |kind: OriginKind| Origin {
            txid: display_txid(view.txid(t)),
            vout: view.output_vout(o),
            address: oracle.address(o),
            offset,
            amount,
            hops,
            height: Some(view.tx_height(t)),
            kind,
        };
        let end = if hops > 0 {
            oracle.stop_at(o).map(|stop| OriginKind::Labelled { stop })
        } else {
            None
        }
        .or_else(|| view.is_coinbase(t).then_some(OriginKind::Coinbase))
        .or_else(|| {
            oracle.coinjoin(t).map(|c| OriginKind::Coinjoin {
                protocol: c.protocol,
            })
        })
        .or_else(|| (hops >= p.max_hops).then_some(OriginKind::HopLimit));
        if let Some(kind) = end {
            if res.origins.len() < p.max_rows {
                res.origins.push(row(kind));
            } else {
                res.truncated_sats += amount;
            }
            continue;
        }
        // The slice's place on the transaction's tape.
        let outs = view.tx_outputs(t);
        let start: u64 = (outs.start..o).map(|x| view.output_value(x)).sum();
        let (lo, hi) = (start + offset, start + offset + amount);
        let mut cum = 0u64;
        for i in view.tx_inputs(t) {
            if cum >= hi {
                break;
            }
            match view.input_prevout(i) {
                Prevout::Output(src) => {
                    let v = view.output_value(src);
                    let (a, b) = (lo.max(cum), hi.min(cum + v));
                    if a < b {
                        q.push_back((src, a - cum, b - a, hops + 1));
                    }
                    cum += v;
                }
                Prevout::External { txid, vout } => {
                    // Unknown value: everything of the slice from here on comes from it or
                    // later inputs, which cannot be placed; report it against this one.
                    let rest = hi - lo.max(cum);
                    if res.origins.len() < p.max_rows {
                        res.origins.push(Origin {
                            txid: display_txid(txid),
                            vout,
                            address: None,
                            offset: lo.saturating_sub(cum),
                            amount: rest,
                            hops: hops + 1,
                            height: None,
                            kind: OriginKind::External,
                        });
                    } else {
                        res.truncated_sats += rest;
                    }
                    break;
                }
                Prevout::Coinbase => unreachable!("coinbases end the walk above"),
            }
        }
    }
    res
}
