//! The alloy node client against a real anvil: blocks with full transactions, receipts and
//! call traces (both trace APIs) describe what the scenario sent; clear errors for a node on
//! another chain and for one that is down.

mod common;

use alloy_primitives::{B256, U256};
use alloy_rpc_types_trace::geth::CallFrame;
use alloy_rpc_types_trace::parity::{Action, TraceOutput};
use cointrail_evm::etl::TraceType;
use cointrail_evmrpc::{EvmNode, FetchedBlock, NodeError, TraceApi, Traces};
use common::anvil::{Anvil, CHAIN_ID};
use common::scenario::{self, ETH};
use std::collections::HashMap;

fn h(s: &str) -> B256 {
    s.parse().unwrap()
}

/// Per transaction: (from, to, value) of every successful value-carrying frame below the
/// root, depth-first (a failed frame fails its children).
fn inner_moves_geth(f: &CallFrame, out: &mut Vec<(String, String, U256)>) {
    for c in &f.calls {
        if c.error.is_some() {
            continue;
        }
        let v = c.value.unwrap_or_default();
        if !v.is_zero() {
            let to = c.to.map(|t| format!("{t:#x}")).unwrap_or_default();
            out.push((format!("{:#x}", c.from), to, v));
        }
        inner_moves_geth(c, out);
    }
}

fn moves_by_tx(b: &FetchedBlock) -> HashMap<B256, Vec<(String, String, U256)>> {
    let mut m: HashMap<B256, Vec<_>> = HashMap::new();
    match &b.traces {
        Traces::Geth(t) => {
            for (tx, root) in t {
                let e = m.entry(*tx).or_default();
                if root.error.is_none() {
                    inner_moves_geth(root, e);
                }
            }
        }
        Traces::Parity(t) => {
            // A frame failed when it or an ancestor has an error.
            let failed: Vec<(Option<B256>, Vec<usize>)> = t
                .iter()
                .filter(|x| x.trace.error.is_some())
                .map(|x| (x.transaction_hash, x.trace.trace_address.clone()))
                .collect();
            for x in t {
                let Some(tx) = x.transaction_hash else {
                    continue;
                };
                let e = m.entry(tx).or_default();
                let addr = &x.trace.trace_address;
                if addr.is_empty()
                    || failed
                        .iter()
                        .any(|(ft, fa)| *ft == Some(tx) && addr.starts_with(fa))
                {
                    continue;
                }
                let (from, to, v) = match (&x.trace.action, &x.trace.result) {
                    (Action::Call(c), _) => (c.from, c.to, c.value),
                    (Action::Create(c), Some(TraceOutput::Create(o))) => {
                        (c.from, o.address, c.value)
                    }
                    (Action::Selfdestruct(s), _) => (s.address, s.refund_address, s.balance),
                    _ => continue,
                };
                if !v.is_zero() {
                    e.push((format!("{from:#x}"), format!("{to:#x}"), v));
                }
            }
        }
    }
    m
}

#[test]
fn blocks_receipts_and_traces_from_anvil() {
    let a = Anvil::start();
    let s = scenario::run(&a);
    let node = EvmNode::connect(&a.url).unwrap();
    assert_eq!(node.check_chain(CHAIN_ID).unwrap(), CHAIN_ID);
    assert_eq!(node.block_number().unwrap(), s.tip);

    let mut geth = HashMap::new();
    let mut statuses = HashMap::new();
    let mut ntx = 0;
    for n in 0..=s.tip {
        let b = node.fetch_block(n).unwrap().expect("block up to the tip");
        assert_eq!(b.block.header.number, n);
        assert!(matches!(b.traces, Traces::Geth(_)), "anvil has callTracer");
        let txs = b.block.transactions.as_transactions().unwrap();
        assert_eq!(txs.len(), b.receipts.len());
        ntx += txs.len();
        for r in &b.receipts {
            statuses.insert(r.transaction_hash, r.status());
        }
        if n == s.batch_block {
            assert_eq!(txs.len(), 3, "spawn, token transfer, approve in one block");
        }
        geth.extend(moves_by_tx(&b));
    }
    assert_eq!(ntx, 4 + 10, "4 deployments and 10 transactions");
    assert!(node.fetch_block(s.tip + 1).unwrap().is_none());
    assert!(!statuses[&h(&s.failed)]);
    assert!(statuses[&h(&s.try_pay)]);

    let acc = &s.accounts;
    let fwd = s.forwarder.to_lowercase();
    let (bob, carol, dave) = (&acc[1], &acc[2], &acc[3]);
    let e = U256::from(ETH);
    assert_eq!(
        geth[&h(&s.forward)],
        vec![
            (fwd.clone(), bob.clone(), e),
            (fwd.clone(), carol.clone(), e),
            (fwd.clone(), dave.clone(), e),
        ]
    );
    let fwd2 = s.forwarder2.to_lowercase();
    assert_eq!(
        geth[&h(&s.relay)],
        vec![
            (fwd.clone(), fwd2.clone(), U256::from(1)),
            (fwd2.clone(), dave.clone(), U256::from(1)),
        ],
        "two frames deep"
    );
    assert!(
        geth[&h(&s.try_pay)].is_empty(),
        "the failed inner call moved nothing"
    );
    assert!(geth[&h(&s.failed)].is_empty());
    let child = format!(
        "{:#x}",
        s.forwarder
            .parse::<alloy_primitives::Address>()
            .unwrap()
            .create(1)
    );
    assert_eq!(
        geth[&h(&s.spawn)],
        vec![(fwd.clone(), child.clone(), e / U256::from(2))]
    );
    assert_eq!(
        geth[&h(&s.destroy)],
        vec![(child.clone(), carol.clone(), e / U256::from(2))]
    );
    assert!(geth[&h(&s.plain)].is_empty() && geth[&h(&s.token_transfer)].is_empty());

    // trace_block says the same.
    let parity = EvmNode::connect(&a.url).unwrap();
    parity.set_trace_api(TraceApi::Parity);
    for n in 0..=s.tip {
        let b = parity.fetch_block(n).unwrap().unwrap();
        assert!(matches!(b.traces, Traces::Parity(_)));
        for (tx, moves) in moves_by_tx(&b) {
            assert_eq!(
                moves, geth[&tx],
                "block {n} tx {tx}: trace_block vs callTracer"
            );
        }
    }
}

#[test]
fn rows_say_what_the_scenario_sent() {
    let a = Anvil::start();
    let s = scenario::run(&a);
    let node = EvmNode::connect(&a.url).unwrap();
    let mut all = cointrail_evm::movement::BlockRows::default();
    let mut parity_traces = Vec::new();
    let parity = EvmNode::connect(&a.url).unwrap();
    parity.set_trace_api(TraceApi::Parity);
    for n in 0..=s.tip {
        let r = cointrail_evmrpc::rows::to_rows(&node.fetch_block(n).unwrap().unwrap()).unwrap();
        let b = r.block.clone().unwrap();
        assert_eq!(
            (b.row.number, b.row.transaction_count as usize),
            (n, r.transactions.len())
        );
        assert_eq!(&*b.file, format!("eth_getBlockByNumber block {n}"));
        // The node's rows move exactly what the movement model reads from them.
        cointrail_evm::movement::block_movements(&r).unwrap();
        all.transactions.extend(r.transactions);
        all.traces.extend(r.traces);
        all.logs.extend(r.logs);
        all.token_transfers.extend(r.token_transfers);
        let p = cointrail_evmrpc::rows::to_rows(&parity.fetch_block(n).unwrap().unwrap()).unwrap();
        parity_traces.extend(p.traces.into_iter().map(|t| t.row));
    }
    let tx = |hash: &str| {
        &all.transactions
            .iter()
            .find(|t| t.row.hash == h(hash))
            .unwrap()
            .row
    };
    assert_eq!(tx(&s.failed).receipt_status, Some(0));
    assert_eq!(tx(&s.plain).receipt_status, Some(1));
    assert_eq!(tx(&s.plain).value, U256::from(3 * ETH));
    assert!(tx(&s.plain).paid_gas_price() > U256::ZERO);
    assert!(all
        .transactions
        .iter()
        .filter(|t| t.row.to_address.is_none())
        .all(|t| t.row.receipt_contract_address.is_some()));

    // Every transaction has its root frame; the failed inner payment is status 0 and so is
    // the failed transaction's root.
    for t in &all.transactions {
        assert!(all
            .traces
            .iter()
            .any(|r| r.row.transaction_hash == Some(t.row.hash) && r.row.trace_address.is_empty()));
    }
    let frames = |hash: &str| -> Vec<_> {
        all.traces
            .iter()
            .filter(|r| r.row.transaction_hash == Some(h(hash)))
            .map(|r| r.row.clone())
            .collect()
    };
    let tp = frames(&s.try_pay);
    assert_eq!(tp.len(), 2);
    assert_eq!(
        (tp[1].trace_address.clone(), tp[1].status, tp[1].value),
        (vec![0], Some(0), Some(U256::from(2 * ETH)))
    );
    assert!(tp[1].error.is_some());
    assert_eq!(frames(&s.failed)[0].status, Some(0));
    let relay = frames(&s.relay);
    assert_eq!(
        relay
            .iter()
            .map(|r| r.trace_address.clone())
            .collect::<Vec<_>>(),
        vec![vec![], vec![0], vec![0, 0]]
    );
    assert_eq!(relay[0].subtraces, 1);
    assert_eq!(
        relay[2].trace_id.as_deref(),
        Some(format!("call_{}_0_0", s.relay).as_str())
    );
    let spawn = frames(&s.spawn);
    assert_eq!(
        (spawn[1].trace_type, spawn[1].value),
        (TraceType::Create, Some(U256::from(ETH / 2)))
    );
    let destroy = frames(&s.destroy);
    assert_eq!(
        (destroy[1].trace_type, destroy[1].value),
        (TraceType::Suicide, Some(U256::from(ETH / 2)))
    );

    // Both trace APIs give the same rows, but for what only one of them reports (gas of
    // a frame, selfdestruct details, the output of a failed call).
    assert_eq!(parity_traces.len(), all.traces.len());
    for (g, p) in all.traces.iter().map(|t| &t.row).zip(&parity_traces) {
        assert_eq!(
            (
                &g.transaction_hash,
                &g.trace_address,
                &g.trace_type,
                &g.from_address,
                &g.to_address,
                g.value,
                g.status,
                g.subtraces,
                &g.trace_id
            ),
            (
                &p.transaction_hash,
                &p.trace_address,
                &p.trace_type,
                &p.from_address,
                &p.to_address,
                p.value,
                p.status,
                p.subtraces,
                &p.trace_id
            ),
        );
    }

    // Token transfers: the mint, the direct transfer, the one through the allowance.
    let tok: alloy_primitives::Address = s.token.parse().unwrap();
    let acc: Vec<alloy_primitives::Address> =
        s.accounts.iter().map(|a| a.parse().unwrap()).collect();
    let tt: Vec<_> = all
        .token_transfers
        .iter()
        .map(|t| {
            (
                t.row.token_address,
                t.row.from_address,
                t.row.to_address,
                t.row.value,
            )
        })
        .collect();
    assert_eq!(
        tt,
        vec![
            (
                tok,
                alloy_primitives::Address::ZERO,
                acc[0],
                U256::from(1_000_000_000_000u64)
            ),
            (tok, acc[0], acc[1], U256::from(250_000_000u64)),
            (tok, acc[1], acc[3], U256::from(60_000_000u64)),
        ]
    );
    // The Approval log is a log, not a transfer.
    assert!(all.logs.len() > all.token_transfers.len());
}

#[test]
fn wrong_chain_and_unreachable_node_say_what_to_do() {
    let a = Anvil::start_with(CHAIN_ID + 1, &[]);
    let node = EvmNode::connect(&a.url).unwrap();
    let e = node.check_chain(CHAIN_ID).unwrap_err();
    assert!(
        matches!(
            e,
            NodeError::WrongChain {
                node: 31338,
                index: 31337
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("--rpc"), "{e}");
    drop(a);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = EvmNode::connect(&format!("http://127.0.0.1:{port}")).unwrap();
    let e = down.fetch_block(7).unwrap_err();
    assert!(e.is_transient(), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("eth_getBlockByNumber") && m.contains("block 7") && m.contains("unreachable"),
        "{m}"
    );
    assert!(EvmNode::connect("ftp://x").is_err());
}
