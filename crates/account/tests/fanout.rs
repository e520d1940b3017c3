//! A Bybit-shaped fan-out on a ledger in memory: one theft split into 100 wallets, each
//! into 100 more (10,000 addresses), each paying gas and sending to an exchange deposit
//! address: 30,201 movements. Everything ends at the exchange or in fees, to the wei, and
//! the trace takes well under the 5 s (printed; the bound here is loose for CI).

use std::collections::HashMap;

use cointrail_account::ledger::{Leg, MemLedger};
use cointrail_account::tracer::{trace, AccountModel, Params, Source, Stop};
use cointrail_evm::movement::Asset;
use cointrail_evm::{Address, U256};

fn addr(n: u32) -> Address {
    let mut b = [0u8; 20];
    b[16..].copy_from_slice(&n.to_be_bytes());
    b[0] = 0x10;
    Address::from(b)
}

#[test]
fn ten_thousand_addresses_thirty_thousand_movements() {
    let (victim, thief, exchange) = (addr(1), addr(2), addr(3));
    let mut l = MemLedger::new();
    let unit: u128 = 1_000_000;
    let t0 = l.push_tx(
        1,
        vec![Leg::eth(victim, thief, 100 * 100 * unit + 100 * 10)],
        vec![],
    );
    let mut block = 2;
    for i in 0..100u32 {
        let w = addr(1_000 + i);
        l.push_tx(
            block,
            vec![Leg::gas(thief, 10), Leg::eth(thief, w, 100 * unit)],
            vec![],
        );
        block += 1;
    }
    let mut n = 0;
    for i in 0..100u32 {
        let w = addr(1_000 + i);
        for j in 0..100u32 {
            let leaf = addr(100_000 + i * 100 + j);
            // Each leaf gets unit and pays 1 wei of gas on the way out.
            l.push_tx(block, vec![Leg::eth(w, leaf, unit)], vec![]);
            l.push_tx(
                block + 1,
                vec![Leg::gas(leaf, 1), Leg::eth(leaf, exchange, unit - 1)],
                vec![],
            );
            n += 3;
        }
        block += 2;
    }
    assert!(n + 201 >= 30_000);
    let stops = HashMap::from([(
        exchange,
        Stop {
            category: "exchange".into(),
            name: "X".into(),
        },
    )]);
    let src = l.tx_range(t0).start;
    for model in [AccountModel::Fifo, AccountModel::Haircut] {
        let t = std::time::Instant::now();
        let r = trace(&l, &stops, &[Source::Movement(src)], Params::new(model)).unwrap();
        let took = t.elapsed();
        eprintln!(
            "{model:?}: {} transactions, {} movements in the ledger, {took:?}",
            r.transactions,
            l.len()
        );
        let tot = r.totals_of(0, Asset::Native).unwrap();
        assert!(r.conserved());
        // The theft's surplus of 1,000 wei paid the thief's 100 gas debits of 10.
        assert_eq!(tot.fee, U256::from(100 * 10 + 10_000));
        assert_eq!(tot.stopped, U256::from(10_000 * (unit - 1)));
        assert_eq!(tot.held, U256::ZERO);
        assert!(took.as_secs() < 60);
    }
}
