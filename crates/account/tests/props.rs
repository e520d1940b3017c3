//! Conservation on random chains: for every model but poison, per (label, asset),
//! source + converted in = held + stopped + fee + pooled + converted out, to the unit.

use std::collections::HashMap;

use cointrail_account::ledger::{Leg, MemLedger};
use cointrail_account::tracer::{trace, AccountModel, Params, Source, Stop};
use cointrail_evm::Address;
use proptest::prelude::*;

fn a(n: u8) -> Address {
    Address::repeat_byte(n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn every_model_but_poison_conserves(
        txs in prop::collection::vec((1u8..8, 1u8..8, 0u128..2_000, 0u128..30, any::<bool>()), 1..40),
        model in prop::sample::select(vec![AccountModel::Fifo, AccountModel::Lifo, AccountModel::Tifo, AccountModel::Haircut]),
        second in any::<bool>(),
    ) {
        let mut l = MemLedger::new();
        let s0 = l.push_tx(0, vec![Leg::eth(a(0xee), a(1), 1_000)], vec![]);
        let mut sources = vec![Source::Movement(l.tx_range(s0).start)];
        for (i, (from, to, amount, gas, token)) in txs.into_iter().enumerate() {
            let mut legs = Vec::new();
            if gas > 0 {
                legs.push(Leg::gas(a(from), gas));
            }
            legs.push(if token {
                Leg::token(a(0x99), a(from), a(to), amount)
            } else {
                Leg::eth(a(from), a(to), amount)
            });
            let t = l.push_tx(1 + i as u64, legs, vec![]);
            if second && i == 0 {
                sources.push(Source::Movement(l.tx_range(t).end - 1));
            }
        }
        // Address 7 is an exchange: taint reaching it stops.
        let stops = HashMap::from([(a(7), Stop { category: "exchange".into(), name: "X".into() })]);
        let t = trace(&l, &stops, &sources, Params::new(model)).unwrap();
        prop_assert!(t.conserved(), "{:?}", t.totals);
    }
}
