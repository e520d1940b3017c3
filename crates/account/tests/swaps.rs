//! Swaps as conversion edges, on hand-built transactions whose movements come in the EVM
//! index's order (gas, native frames, then token transfers) with real event layouts.

use std::collections::HashMap;

use cointrail_account::ledger::{Ledger, Leg, MemLedger};
use cointrail_account::swaps::{self, addr_topic, encode_words, int_word, Protocol};
use cointrail_account::tracer::{trace, AccountModel, AccountTrace, NoStops, Params, Source, Stop};
use cointrail_evm::etl::Log;
use cointrail_evm::movement::Asset;
use cointrail_evm::{Address, B256, U256};

fn a(n: u8) -> Address {
    Address::repeat_byte(n)
}
fn u(x: u64) -> U256 {
    U256::from(x)
}

// Tokens: pools sort token0 < token1, so USDT-like (0x11…) is token0 against WETH (0x22…).
const TOK: u8 = 0x11;
const WETH: u8 = 0x22;
const VICTIM: u8 = 0x01;
const THIEF: u8 = 0x02;
const Q: u8 = 0x03;
const ROUTER: u8 = 0x04;
const PAIR: u8 = 0x50;
const PAIR2: u8 = 0x51;
const V3POOL: u8 = 0x52;
const CURVE: u8 = 0x53;
const TORNADO: u8 = 0x60;
const EXCHANGE: u8 = 0x70;

fn log(i: u64, emitter: u8, topics: Vec<B256>, words: &[U256]) -> Log {
    Log {
        log_index: i,
        transaction_hash: B256::ZERO,
        transaction_index: 0,
        address: a(emitter),
        data: encode_words(words),
        topics,
        block_number: 0,
    }
}

fn v2_swap(i: u64, pair: u8, to: u8, ins: [u64; 2], outs: [u64; 2]) -> Log {
    log(
        i,
        pair,
        vec![
            swaps::UNISWAP_V2_SWAP,
            addr_topic(a(ROUTER)),
            addr_topic(a(to)),
        ],
        &[u(ins[0]), u(ins[1]), u(outs[0]), u(outs[1])],
    )
}

fn tok() -> Asset {
    Asset::Token(a(TOK))
}
fn weth() -> Asset {
    Asset::Token(a(WETH))
}

fn run(l: &MemLedger, src: u64, model: AccountModel) -> AccountTrace {
    let stops = HashMap::from([(
        a(EXCHANGE),
        Stop {
            category: "exchange".into(),
            name: "X".into(),
        },
    )]);
    trace(l, &stops, &[Source::Movement(src)], Params::new(model)).unwrap()
}

/// tx0: VICTIM → THIEF 1000 TOK (source).
/// tx1: THIEF → PAIR 600 TOK; PAIR → Q 300 WETH; Swap(in0 600, out1 300, to Q).
/// tx2: Q unwraps 300 WETH: internal WETH → Q 300 ETH; Withdrawal(Q, 300).
/// tx3: Q → EXCHANGE 200 ETH.
fn swap_chain() -> (MemLedger, u64) {
    let mut l = MemLedger::new();
    let t0 = l.push_tx(
        1,
        vec![Leg::token(a(TOK), a(VICTIM), a(THIEF), 1000)],
        vec![],
    );
    l.push_tx(
        2,
        vec![
            Leg::token(a(TOK), a(THIEF), a(PAIR), 600),
            Leg::token(a(WETH), a(PAIR), a(Q), 300),
        ],
        vec![v2_swap(7, PAIR, Q, [600, 0], [0, 300])],
    );
    l.push_tx(
        3,
        vec![Leg::internal(a(WETH), a(Q), 300)],
        vec![log(
            0,
            WETH,
            vec![swaps::WETH_WITHDRAWAL, addr_topic(a(Q))],
            &[u(300)],
        )],
    );
    l.push_tx(4, vec![Leg::eth(a(Q), a(EXCHANGE), 200)], vec![]);
    let src = l.tx_range(t0).start;
    (l, src)
}

#[test]
fn a_v2_swap_and_an_unwrap_carry_the_taint_to_the_recipient() {
    // FIFO: THIEF [T1000 TOK] pays 600 into PAIR (in flight, never PAIR's balance); the
    // swap turns T600 TOK into T300 WETH at Q; the unwrap burns Q's T300 WETH into T300
    // ETH; 200 ETH reach the exchange. Per asset:
    //   TOK:  source 1000 = converted_out 600 + held 400 (THIEF)
    //   WETH: converted_in 300 = converted_out 300
    //   ETH:  converted_in 300 = stopped 200 + held 100 (Q)
    for model in [
        AccountModel::Fifo,
        AccountModel::Haircut,
        AccountModel::Lifo,
        AccountModel::Tifo,
    ] {
        let (l, src) = swap_chain();
        let t = run(&l, src, model);
        assert!(t.skipped.is_empty(), "{:?}", t.skipped);
        let tk = t.totals_of(0, tok()).unwrap();
        assert_eq!((tk.source, tk.converted_out), (u(1000), u(600)));
        assert_eq!(t.held_at(&a(THIEF), tok()), u(400));
        assert_eq!(t.held_at(&a(PAIR), tok()), U256::ZERO);
        let w = t.totals_of(0, weth()).unwrap();
        assert_eq!(
            (w.converted_in, w.converted_out, w.held),
            (u(300), u(300), U256::ZERO)
        );
        let e = t.totals_of(0, Asset::Native).unwrap();
        assert_eq!(
            (e.converted_in, e.stopped, e.held),
            (u(300), u(200), u(100))
        );
        assert!(t.conserved(), "{model:?}: {:?}", t.totals);
        assert_eq!(t.conversions.len(), 2);
        assert_eq!(t.conversions[0].protocol, Protocol::UniswapV2);
        assert_eq!(t.conversions[0].recipient, a(Q));
        assert_eq!(t.conversions[1].protocol, Protocol::WethWithdrawal);
    }
}

#[test]
fn a_swap_that_disagrees_with_its_transfers_is_logged_and_not_followed() {
    // The event claims 60 WETH out but the pool paid 50: no link. The 100 TOK paid in
    // stop at the pool (pooled); the 50 WETH to THIEF are clean.
    let mut l = MemLedger::new();
    let t0 = l.push_tx(
        1,
        vec![Leg::token(a(TOK), a(VICTIM), a(THIEF), 1000)],
        vec![],
    );
    l.push_tx(
        2,
        vec![
            Leg::token(a(TOK), a(THIEF), a(PAIR2), 100),
            Leg::token(a(WETH), a(PAIR2), a(THIEF), 50),
        ],
        vec![v2_swap(3, PAIR2, THIEF, [100, 0], [0, 60])],
    );
    let t = run(&l, l.tx_range(t0).start, AccountModel::Fifo);
    assert_eq!(t.skipped.len(), 1);
    assert!(
        t.skipped[0].reason.contains("no token transfer of 60"),
        "{}",
        t.skipped[0].reason
    );
    assert!(t.conversions.is_empty());
    let tk = t.totals_of(0, tok()).unwrap();
    assert_eq!((tk.pooled, tk.held), (u(100), u(900)));
    assert_eq!(t.held_at(&a(THIEF), weth()), U256::ZERO);
    assert!(t.conserved());

    // Token order contradicting amount0/amount1 (WETH claimed as token0) is refused too.
    let mut l = MemLedger::new();
    let t0 = l.push_tx(
        1,
        vec![Leg::token(a(TOK), a(VICTIM), a(THIEF), 1000)],
        vec![],
    );
    l.push_tx(
        2,
        vec![
            Leg::token(a(TOK), a(THIEF), a(PAIR2), 100),
            Leg::token(a(WETH), a(PAIR2), a(THIEF), 50),
        ],
        vec![v2_swap(3, PAIR2, THIEF, [0, 100], [50, 0])],
    );
    let t = run(&l, l.tx_range(t0).start, AccountModel::Fifo);
    assert!(
        t.skipped[0].reason.contains("token order"),
        "{}",
        t.skipped[0].reason
    );
}

#[test]
fn eth_in_through_a_router_wrap_and_v2() {
    // The index order is: ETH THIEF → ROUTER 10, ETH ROUTER → WETH 10 (native frames),
    // then WETH ROUTER → PAIR 10, TOK PAIR → THIEF 40 (token transfers). Logs: Deposit
    // (ROUTER, 10), Swap(in1 10 WETH, out0 40 TOK). Settled in dependency order:
    // ROUTER holds T10 ETH, wraps it (in flight at WETH) into T10 WETH, pays PAIR, and
    // the swap hands T40 TOK to THIEF.
    let mut l = MemLedger::new();
    let t0 = l.push_tx(1, vec![Leg::eth(a(VICTIM), a(THIEF), 10)], vec![]);
    l.push_tx(
        2,
        vec![
            Leg::eth(a(THIEF), a(ROUTER), 10),
            Leg::internal(a(ROUTER), a(WETH), 10),
            Leg::token(a(WETH), a(ROUTER), a(PAIR), 10),
            Leg::token(a(TOK), a(PAIR), a(THIEF), 40),
        ],
        vec![
            log(
                0,
                WETH,
                vec![swaps::WETH_DEPOSIT, addr_topic(a(ROUTER))],
                &[u(10)],
            ),
            v2_swap(3, PAIR, THIEF, [0, 10], [40, 0]),
        ],
    );
    let t = run(&l, l.tx_range(t0).start, AccountModel::Fifo);
    assert!(t.skipped.is_empty(), "{:?}", t.skipped);
    assert_eq!(t.held_at(&a(THIEF), tok()), u(40));
    assert_eq!(t.held_at(&a(ROUTER), Asset::Native), U256::ZERO);
    assert_eq!(t.held_at(&a(ROUTER), weth()), U256::ZERO);
    assert_eq!(t.conversions.len(), 2);
    assert!(t.conserved(), "{:?}", t.totals);
}

#[test]
fn tokens_to_eth_through_a_router_unwrap() {
    // Index order: ETH WETH → ROUTER 10, ETH ROUTER → THIEF 10 (native), then TOK THIEF →
    // PAIR 40, WETH PAIR → ROUTER 10 (tokens). The ETH payout waits for the unwrap,
    // which waits for the swap: THIEF ends with T10 ETH.
    let mut l = MemLedger::new();
    let t0 = l.push_tx(1, vec![Leg::token(a(TOK), a(VICTIM), a(THIEF), 40)], vec![]);
    l.push_tx(
        2,
        vec![
            Leg::internal(a(WETH), a(ROUTER), 10),
            Leg::internal(a(ROUTER), a(THIEF), 10),
            Leg::token(a(TOK), a(THIEF), a(PAIR), 40),
            Leg::token(a(WETH), a(PAIR), a(ROUTER), 10),
        ],
        vec![
            v2_swap(2, PAIR, ROUTER, [40, 0], [0, 10]),
            log(
                3,
                WETH,
                vec![swaps::WETH_WITHDRAWAL, addr_topic(a(ROUTER))],
                &[u(10)],
            ),
        ],
    );
    let t = run(&l, l.tx_range(t0).start, AccountModel::Fifo);
    assert!(t.skipped.is_empty(), "{:?}", t.skipped);
    assert_eq!(t.held_at(&a(THIEF), Asset::Native), u(10));
    assert_eq!(t.held_at(&a(ROUTER), Asset::Native), U256::ZERO);
    assert!(t.conserved(), "{:?}", t.totals);
}

#[test]
fn v3_and_curve_swaps_split_a_mixed_input_exactly() {
    // THIEF holds [C5 TOK, T10 TOK] (a clean prior balance of 5). FIFO: 9 TOK into the v3
    // pool = [C5, T4]; the pool pays 30 WETH to Q: runs scaled by 30/9: C 16.67, T 13.33
    // → floors 16, 13, the one left to the larger fraction (C: .67) → C17, T13.
    // Then Q swaps 13 of its WETH on Curve (Q [C17, T13]: FIFO = C13) for 26 ETH: clean,
    // no conversion row; then the other 17 WETH = [C4, T13] → 34 ETH: C8 T26.
    let mut l = MemLedger::new();
    l.push_tx(1, vec![Leg::token(a(TOK), a(0x09), a(THIEF), 5)], vec![]);
    let t0 = l.push_tx(2, vec![Leg::token(a(TOK), a(VICTIM), a(THIEF), 10)], vec![]);
    l.push_tx(
        3,
        vec![
            Leg::token(a(TOK), a(THIEF), a(V3POOL), 9),
            Leg::token(a(WETH), a(V3POOL), a(Q), 30),
        ],
        vec![log(
            5,
            V3POOL,
            vec![
                swaps::UNISWAP_V3_SWAP,
                addr_topic(a(ROUTER)),
                addr_topic(a(Q)),
            ],
            // amount0 +9 (TOK in), amount1 -30 (WETH out), sqrtPrice, liquidity, tick
            &[
                u(9),
                int_word(true, u(30)),
                u(1) << 96,
                u(1_000_000),
                int_word(true, u(7)),
            ],
        )],
    );
    for (n, (sold, bought)) in [(13u64, 26u64), (17, 34)].into_iter().enumerate() {
        l.push_tx(
            4 + n as u64,
            vec![
                Leg::internal(a(CURVE), a(Q), bought as u128),
                Leg::token(a(WETH), a(Q), a(CURVE), sold as u128),
            ],
            vec![log(
                1,
                CURVE,
                vec![swaps::CURVE_TOKEN_EXCHANGE, addr_topic(a(Q))],
                &[u(1), u(sold), u(0), u(bought)],
            )],
        );
    }
    let t = run(&l, l.tx_range(t0).start, AccountModel::Fifo);
    assert!(t.skipped.is_empty(), "{:?}", t.skipped);
    assert_eq!(t.conversions.len(), 2, "{:?}", t.conversions);
    assert_eq!(t.conversions[0].protocol, Protocol::UniswapV3);
    assert_eq!(t.conversions[0].tainted_in, vec![(0, u(4))]);
    assert_eq!(t.conversions[0].tainted_out, vec![(0, u(13))]);
    assert_eq!(t.conversions[1].protocol, Protocol::Curve);
    assert_eq!(t.conversions[1].tainted_out, vec![(0, u(26))]);
    assert_eq!(t.held_at(&a(Q), Asset::Native), u(26));
    assert_eq!(t.held_at(&a(THIEF), tok()), u(6));
    assert!(t.conserved(), "{:?}", t.totals);
}

#[test]
fn a_tornado_deposit_stops_and_its_withdrawal_is_not_taint() {
    let mut l = MemLedger::new();
    let t0 = l.push_tx(1, vec![Leg::eth(a(VICTIM), a(THIEF), 100)], vec![]);
    l.push_tx(
        2,
        vec![Leg::eth(a(THIEF), a(TORNADO), 100)],
        vec![log(
            0,
            TORNADO,
            vec![swaps::TORNADO_DEPOSIT, B256::repeat_byte(0xcc)],
            &[u(42), u(1_700_000_000)],
        )],
    );
    // A withdrawal to Q later, its gas paid by THIEF: a candidate, never taint.
    l.push_tx(
        3,
        vec![Leg::gas(a(THIEF), 1), Leg::internal(a(TORNADO), a(Q), 99)],
        vec![log(
            0,
            TORNADO,
            vec![swaps::TORNADO_WITHDRAWAL, addr_topic(a(0x77))],
            &[
                U256::from_be_bytes(addr_topic(a(Q)).0),
                U256::from(5u8),
                u(1),
            ],
        )],
    );
    let t = run(&l, l.tx_range(t0).start, AccountModel::Fifo);
    assert_eq!(t.stopped_at(&a(TORNADO), Asset::Native), u(100));
    assert_eq!(t.stops[0].category, "mixer");
    assert_eq!(t.held_at(&a(Q), Asset::Native), U256::ZERO);
    assert!(t.conserved());
    assert_eq!(t.mixer_candidates.len(), 1);
    let c = &t.mixer_candidates[0];
    assert_eq!((c.to, c.depositor, c.withdrawal_block), (a(Q), a(THIEF), 3));
    assert!(
        c.reasons
            .iter()
            .any(|r| r.contains("paid the withdrawal's gas")),
        "{:?}",
        c.reasons
    );
    assert!(c.score > 2.0);
    let d = swaps::decode_tx(&l.tx_logs(2), &[]);
    assert_eq!(d.mixer_withdrawals[0].to, a(Q));
    assert_eq!(d.mixer_withdrawals[0].relayer, a(0x77));
}

#[test]
fn no_stops_and_no_logs_means_plain_transfers() {
    let (l, src) = {
        let mut l = MemLedger::new();
        let t0 = l.push_tx(1, vec![Leg::eth(a(VICTIM), a(THIEF), 100)], vec![]);
        l.push_tx(2, vec![Leg::eth(a(THIEF), a(PAIR), 100)], vec![]);
        let s = l.tx_range(t0).start;
        (l, s)
    };
    // Without a decoded swap the pair is just an address: it holds the taint.
    let t = trace(
        &l,
        &NoStops,
        &[Source::Movement(src)],
        Params::new(AccountModel::Fifo),
    )
    .unwrap();
    assert_eq!(t.held_at(&a(PAIR), Asset::Native), u(100));
}
