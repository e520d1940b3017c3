//! A full consistency check of the index: every invariant the writer maintains, checked
//! from the stored columns. Used by `cointrail verify` and by the crash tests.

use crate::store::Index;
use cointrail_chain::view::{ChainView, Prevout};
use serde::Serialize;

#[derive(Serialize, Debug, Default)]
pub struct CheckReport {
    pub txs: u64,
    pub inputs: u64,
    pub outputs: u64,
    pub addresses: u64,
    pub problems: Vec<String>,
}

impl Index {
    pub fn check(&self) -> CheckReport {
        let mut r = CheckReport {
            txs: self.tx_count(),
            inputs: 0,
            outputs: 0,
            addresses: self.addr_count(),
            problems: vec![],
        };
        let mut bad = |s: String| {
            if r.problems.len() < 50 {
                r.problems.push(s);
            }
        };
        let mut addr_outputs = vec![0u64; self.addr_count() as usize];
        for t in 0..self.tx_count() as u32 {
            if self.lookup_txid(&self.txid(t)).is_none() {
                bad(format!("tx {t} is not found by its txid"));
            }
            for i in self.tx_inputs(t) {
                r.inputs += 1;
                if let Prevout::Output(o) = self.input_prevout(i) {
                    if o >= self.out_value.len() {
                        bad(format!("input {i} spends output {o} past the end"));
                    } else if self.output_spender(o) != Some(t) {
                        bad(format!(
                            "input {i} of tx {t} spends output {o}, whose spend link says {:?}",
                            self.output_spender(o)
                        ));
                    }
                }
            }
            for o in self.tx_outputs(t) {
                r.outputs += 1;
                if let Some(a) = self.output_addr(o) {
                    if a as u64 >= self.addr_count() {
                        bad(format!("output {o} pays address id {a} past the end"));
                        continue;
                    }
                    addr_outputs[a as usize] += 1;
                }
                if let Some(s) = self.output_spender(o) {
                    if !self
                        .tx_inputs(s)
                        .any(|i| self.input_prevout(i) == Prevout::Output(o))
                    {
                        bad(format!(
                            "output {o} says tx {s} spends it, but no input of that tx does"
                        ));
                    }
                }
            }
        }
        if r.inputs != self.in_prev.len() || r.outputs != self.out_value.len() {
            bad(format!(
                "transactions cover {} inputs and {} outputs, the columns hold {} and {}",
                r.inputs,
                r.outputs,
                self.in_prev.len(),
                self.out_value.len()
            ));
        }
        for a in 0..self.addr_count() as u32 {
            if self.lookup_addr(&self.addr_key(a)) != Some(a) {
                bad(format!("address {a} is not found by its key"));
            }
            if (a as u64) < self.addr_type.len()
                && self.addr_type.get(a as u64)[0] != self.addr_key.get(a as u64)[0]
            {
                bad(format!(
                    "address {a}: its script type byte differs from its key"
                ));
            }
            let mut n = 0u64;
            let mut cur = self.addr_last_out(a);
            let mut last = u64::MAX;
            while let Some(o) = cur {
                if o >= last || self.output_addr(o) != Some(a) {
                    bad(format!("address {a}: output list is broken at output {o}"));
                    break;
                }
                last = o;
                n += 1;
                cur = self.out_prev_same_addr(o);
            }
            if n != addr_outputs[a as usize] {
                bad(format!(
                    "address {a}: its list has {n} outputs, the outputs column pays it {}",
                    addr_outputs[a as usize]
                ));
            }
        }
        r
    }
}
