//! Worked examples of the account models on hand-built chains. Every expected figure is
//! computed by hand in the comments (largest remainder: floor each exact share, then one
//! unit to the largest fractional part, ties to the lower index; the tainted share comes
//! before the clean one).

use std::collections::HashMap;

use cointrail_account::ledger::{Leg, MemLedger};
use cointrail_account::tracer::{trace, AccountModel, AccountTrace, NoStops, Params, Source, Stop};
use cointrail_evm::movement::Asset;
use cointrail_evm::{Address, U256};

fn a(n: u8) -> Address {
    Address::repeat_byte(n)
}
fn u(x: u64) -> U256 {
    U256::from(x)
}

// Actors of chain 1.
const VICTIM: u8 = 0x01;
const THIEF: u8 = 0x02;
const ALICE: u8 = 0x03;
const BOB: u8 = 0x04;
const FUNDER: u8 = 0x05;
const DONOR: u8 = 0x06;
const EXCHANGE: u8 = 0x07;

/// Chain 1, all ETH (wei):
/// tx0 b1  FUNDER → THIEF 50                (the thief's clean prior balance)
/// tx1 b2  VICTIM → THIEF 1000              (the theft: the source)
/// tx2 b3  THIEF gas 10; THIEF → ALICE 300
/// tx3 b4  DONOR → ALICE 100                (clean, dilutes ALICE)
/// tx4 b5  ALICE → EXCHANGE 150             (a labelled deposit address: stop)
/// tx5 b6  THIEF gas 20; THIEF → BOB 500
fn chain1() -> (MemLedger, u64) {
    let mut l = MemLedger::new();
    l.push_tx(1, vec![Leg::eth(a(FUNDER), a(THIEF), 50)], vec![]);
    let t1 = l.push_tx(2, vec![Leg::eth(a(VICTIM), a(THIEF), 1000)], vec![]);
    l.push_tx(
        3,
        vec![Leg::gas(a(THIEF), 10), Leg::eth(a(THIEF), a(ALICE), 300)],
        vec![],
    );
    l.push_tx(4, vec![Leg::eth(a(DONOR), a(ALICE), 100)], vec![]);
    l.push_tx(5, vec![Leg::eth(a(ALICE), a(EXCHANGE), 150)], vec![]);
    l.push_tx(
        6,
        vec![Leg::gas(a(THIEF), 20), Leg::eth(a(THIEF), a(BOB), 500)],
        vec![],
    );
    let src = l.tx_range(t1).start;
    (l, src)
}

fn stops() -> HashMap<Address, Stop> {
    HashMap::from([(
        a(EXCHANGE),
        Stop {
            category: "exchange".into(),
            name: "Some Exchange".into(),
        },
    )])
}

fn run1(model: AccountModel) -> AccountTrace {
    let (l, src) = chain1();
    trace(&l, &stops(), &[Source::Movement(src)], Params::new(model)).unwrap()
}

fn check(t: &AccountTrace, fee: u64, stopped: u64, alice: u64, bob: u64, thief: u64) {
    let tot = t.totals_of(0, Asset::Native).unwrap();
    assert_eq!(tot.source, u(1000));
    assert_eq!(tot.fee, u(fee), "fee");
    assert_eq!(tot.stopped, u(stopped), "stopped");
    assert_eq!(t.held_at(&a(ALICE), Asset::Native), u(alice), "alice");
    assert_eq!(t.held_at(&a(BOB), Asset::Native), u(bob), "bob");
    assert_eq!(t.held_at(&a(THIEF), Asset::Native), u(thief), "thief");
    assert_eq!(t.stopped_at(&a(EXCHANGE), Asset::Native), u(stopped));
    assert!(t.conserved(), "{:?}", t.totals);
    assert_eq!(t.shortfalls, 0);
}

#[test]
fn balance_fifo() {
    // THIEF queue [C50, T1000]. tx2: gas 10 from the front = C10 (fee clean); queue
    // [C40, T1000]; 300 to ALICE = C40 + T260; THIEF [T740]. tx3: ALICE [C40, T260, C100].
    // tx4: 150 from the front = C40 + T110 → EXCHANGE 110; ALICE [T150, C100].
    // tx5: gas 20 = T20 (fee 20); 500 to BOB = T500; THIEF [T220].
    // Totals: fee 20 + stopped 110 + held (150 + 500 + 220 = 870) = 1000.
    check(&run1(AccountModel::Fifo), 20, 110, 150, 500, 220);
}

#[test]
fn balance_lifo() {
    // THIEF [C50, T1000]. tx2: gas 10 from the back = T10; 300 = T300 → ALICE [T300];
    // THIEF [C50, T690]. tx3: ALICE [T300, C100]. tx4: 150 from the back = C100 + T50 →
    // EXCHANGE 50; ALICE [T250]. tx5: gas T20; 500 = T500 → BOB; THIEF [C50, T170].
    // fee 30 + stopped 50 + held (250 + 500 + 170 = 920) = 1000.
    check(&run1(AccountModel::Lifo), 30, 50, 250, 500, 170);
}

#[test]
fn balance_tifo() {
    // As LIFO until tx4 (taint first: gas T10, ALICE T300). tx4: ALICE [T300, C100],
    // taint first: T150 → EXCHANGE 150; ALICE [T150, C100]. tx5: gas T20, BOB T500,
    // THIEF [C50, T170]. fee 30 + stopped 150 + held (150 + 500 + 170 = 820) = 1000.
    check(&run1(AccountModel::Tifo), 30, 150, 150, 500, 170);
}

#[test]
fn balance_haircut() {
    // THIEF pool T1000 C50 (1050).
    // tx2 gas 10: T 10·1000/1050 = 9.524, C 10·50/1050 = 0.476 → floors 9, 0; the one
    //   left goes to the larger fraction (T) → fee T10. Pool T990 C50 (1040).
    //   300 to ALICE: T 300·990/1040 = 285.577, C 14.423 → 285, 14, one to T → T286 C14.
    //   THIEF T704 C36.
    // tx3: ALICE T286 C114 (400).
    // tx4: 150: T 150·286/400 = 107.25, C 42.75 → 107, 42, one to C → EXCHANGE T107.
    //   ALICE T179 C72.
    // tx5 gas 20: T 20·704/740 = 19.027, C 0.973 → 19, 0, one to C → fee T19 (29 in all).
    //   THIEF T685 C35 (720). 500 to BOB: T 475.694, C 24.306 → 475, 24, one to T → T476.
    //   THIEF T209 C11.
    // fee 29 + stopped 107 + held (179 + 476 + 209 = 864) = 1000.
    check(&run1(AccountModel::Haircut), 29, 107, 179, 476, 209);
}

#[test]
fn poison_flags_full_values() {
    // Every debit of a touched balance is flagged at full value: fee 10 + 20, EXCHANGE
    // 150, BOB 500; ALICE was flagged with 300 in, THIEF with 1000. Not conserved.
    let t = run1(AccountModel::Poison);
    let tot = t.totals_of(0, Asset::Native).unwrap();
    assert_eq!(tot.fee, u(30));
    assert_eq!(tot.stopped, u(150));
    assert_eq!(t.held_at(&a(BOB), Asset::Native), u(500));
    assert_eq!(t.held_at(&a(ALICE), Asset::Native), u(300));
    assert!(!t.conserved());
}

#[test]
fn a_balance_source_and_a_late_index() {
    // The source is THIEF's whole balance before tx2 (1050: the clean 50 counts too,
    // because the investigator said so). FIFO: fee 10, ALICE 300 → T300, then 150 to the
    // exchange (T150), BOB 500; THIEF 1050 - 10 - 300 - 20 - 500 = 220.
    let (l, _) = chain1();
    let tx2_first = l.tx_range(2).start;
    let t = trace(
        &l,
        &stops(),
        &[Source::Balance {
            address: a(THIEF),
            asset: Asset::Native,
            before: tx2_first,
        }],
        Params::new(AccountModel::Fifo),
    )
    .unwrap();
    let tot = t.totals_of(0, Asset::Native).unwrap();
    assert_eq!(tot.source, u(1050));
    assert_eq!(tot.fee, u(30));
    assert_eq!(tot.stopped, u(150));
    assert_eq!(t.held_at(&a(ALICE), Asset::Native), u(150));
    assert_eq!(t.held_at(&a(THIEF), Asset::Native), u(220));
    assert!(t.conserved());

    // A debit larger than anything known (an index that starts late) takes the missing
    // part as clean and says so.
    let mut l = MemLedger::new();
    let t0 = l.push_tx(1, vec![Leg::eth(a(VICTIM), a(THIEF), 100)], vec![]);
    l.push_tx(2, vec![Leg::eth(a(THIEF), a(BOB), 150)], vec![]);
    let src = l.tx_range(t0).start;
    let t = trace(
        &l,
        &NoStops,
        &[Source::Movement(src)],
        Params::new(AccountModel::Fifo),
    )
    .unwrap();
    assert_eq!(t.shortfalls, 1);
    assert_eq!(t.held_at(&a(BOB), Asset::Native), u(100));
    assert!(t.conserved());
}

#[test]
fn until_block_leaves_the_rest_held() {
    let (l, src) = chain1();
    let mut p = Params::new(AccountModel::Fifo);
    p.until_block = Some(4);
    let t = trace(&l, &stops(), &[Source::Movement(src)], p).unwrap();
    // Only tx1..tx3: ALICE T260 (from FIFO above), THIEF T740.
    assert_eq!(t.held_at(&a(ALICE), Asset::Native), u(260));
    assert_eq!(t.held_at(&a(THIEF), Asset::Native), u(740));
    assert!(t.conserved());
}

#[test]
fn two_sources_keep_their_labels() {
    // A second theft of 400 to BOB before tx5; FIFO keeps the labels apart:
    // BOB [L1 400, L0 500] and nothing mixes.
    let (mut l, src) = chain1();
    let t2 = l.push_tx(7, vec![Leg::eth(a(VICTIM), a(BOB), 400)], vec![]);
    l.push_tx(8, vec![Leg::eth(a(BOB), a(ALICE), 450)], vec![]);
    let src2 = l.tx_range(t2).start;
    let t = trace(
        &l,
        &stops(),
        &[Source::Movement(src), Source::Movement(src2)],
        Params::new(AccountModel::Fifo),
    )
    .unwrap();
    // BOB [L0 500, L1 400] (tx5 came first); 450 FIFO = L0 450 → ALICE.
    // ALICE [T150 L0, C100, L0 450]: label 0 at ALICE = 600.
    assert_eq!(t.totals_of(1, Asset::Native).unwrap().source, u(400));
    let held_l1: U256 = t
        .held
        .iter()
        .filter(|h| h.label == 1)
        .fold(U256::ZERO, |s, h| s + h.amount);
    assert_eq!(held_l1, u(400));
    assert_eq!(t.held_at(&a(ALICE), Asset::Native), u(600));
    assert!(t.conserved());
}

#[test]
fn a_partly_tainted_release_is_its_tainted_part_first() {
    // A cross-chain outbound: VAULT → THIEF 1000 of which 700 is the converted taint
    // (Source::Part); THIEF then pays gas 10 and 750 to the exchange. THIEF's queue is
    // [L0 700, clean 300]: gas 10 of L0, then 690 L0 + 60 clean stop at the exchange, and
    // 240 clean stays. Totals: source 700 = fee 10 + stopped 690.
    let mut l = MemLedger::new();
    let t = l.push_tx(1, vec![Leg::eth(a(0x0a), a(THIEF), 1000)], vec![]);
    l.push_tx(
        2,
        vec![Leg::gas(a(THIEF), 10), Leg::eth(a(THIEF), a(EXCHANGE), 750)],
        vec![],
    );
    let m = l.tx_range(t).start;
    let r = trace(
        &l,
        &stops(),
        &[Source::Part {
            movement: m,
            amount: u(700),
        }],
        Params::new(AccountModel::Fifo),
    )
    .unwrap();
    let tot = r.totals_of(0, Asset::Native).unwrap();
    assert_eq!(
        (tot.source, tot.fee, tot.stopped, tot.held),
        (u(700), u(10), u(690), u(0))
    );
    assert!(r.conserved());
    // Parts are capped at what the movement paid: a second label can claim only the rest.
    let r = trace(
        &l,
        &stops(),
        &[
            Source::Part {
                movement: m,
                amount: u(700),
            },
            Source::Part {
                movement: m,
                amount: u(500),
            },
        ],
        Params::new(AccountModel::Fifo),
    )
    .unwrap();
    assert_eq!(r.totals_of(1, Asset::Native).unwrap().source, u(300));
    assert!(r.conserved());
}
