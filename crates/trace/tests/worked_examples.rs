//! The worked examples of methods.md §6, exactly, and conservation as a property.

use cointrail_trace::model::{
    largest_remainder, tainted, transfer, FeePolicy, Model, Run, Transfer,
};
use proptest::prelude::*;

const T: u32 = 1;

fn t(a: u64) -> Run {
    Run::tainted(T, a, 0)
}
fn c(a: u64) -> Run {
    Run::clean(a)
}
fn m(s: &str) -> Model {
    Model::parse(s).unwrap()
}
fn taints(x: &Transfer) -> Vec<u64> {
    x.outputs.iter().map(|o| tainted(o, None)).collect()
}
fn run(model: &str, fee: FeePolicy, ins: Vec<Vec<Run>>, outs: &[u64]) -> Transfer {
    transfer(m(model), fee, &ins, outs).unwrap()
}

#[test]
fn e1_two_inputs_two_outputs() {
    let ins = || vec![vec![t(300)], vec![c(700)]];
    let outs = [400, 600];
    assert_eq!(
        taints(&run("haircut", FeePolicy::Last, ins(), &outs)),
        [120, 180]
    );
    assert_eq!(
        taints(&run("fifo", FeePolicy::Last, ins(), &outs)),
        [300, 0]
    );
    assert_eq!(
        taints(&run("lifo", FeePolicy::Last, ins(), &outs)),
        [0, 300]
    );
    assert_eq!(
        taints(&run("tiho", FeePolicy::Last, ins(), &outs)),
        [0, 300]
    );
    assert_eq!(
        taints(&run("tifo", FeePolicy::Last, ins(), &outs)),
        [300, 0]
    );
    assert_eq!(
        taints(&run("poison", FeePolicy::Last, ins(), &outs)),
        [400, 600]
    );
}

#[test]
fn e2_redux_three_inputs_rounding() {
    let ins = || vec![vec![c(3000)], vec![t(2000)], vec![c(4000)]];
    let outs = [3000, 2000, 4000];
    assert_eq!(
        taints(&run("haircut", FeePolicy::Last, ins(), &outs)),
        [667, 444, 889]
    );
    assert_eq!(
        taints(&run("fifo", FeePolicy::Last, ins(), &outs)),
        [0, 2000, 0]
    );
    assert_eq!(
        taints(&run("lifo", FeePolicy::Last, ins(), &outs)),
        [0, 1000, 1000]
    );
    assert_eq!(
        taints(&run("tiho", FeePolicy::Last, ins(), &outs)),
        [0, 0, 2000]
    );
    assert_eq!(
        taints(&run("tifo", FeePolicy::Last, ins(), &outs)),
        [2000, 0, 0]
    );
    assert_eq!(
        taints(&run("poison", FeePolicy::Last, ins(), &outs)),
        [3000, 2000, 4000]
    );
}

#[test]
fn e4_two_hops_with_clean_mixing() {
    // tx1: [T1000] → P=300, Q=700: every model gives P 300, Q 700.
    for model in ["haircut", "fifo", "lifo", "tiho", "tifo"] {
        assert_eq!(
            taints(&run(
                model,
                FeePolicy::Last,
                vec![vec![t(1000)]],
                &[300, 700]
            )),
            [300, 700],
            "{model}"
        );
    }
    // tx2: [Q (700 tainted), R = C300] → S=500, U=500.
    let q = |model: &str| {
        run(model, FeePolicy::Last, vec![vec![t(1000)]], &[300, 700]).outputs[1].clone()
    };
    let tx2 = |model: &str| {
        taints(&run(
            model,
            FeePolicy::Last,
            vec![q(model), vec![c(300)]],
            &[500, 500],
        ))
    };
    assert_eq!(tx2("haircut"), [350, 350]);
    assert_eq!(tx2("fifo"), [500, 200]);
    assert_eq!(tx2("lifo"), [200, 500]);
    assert_eq!(tx2("tiho"), [500, 200]);
    assert_eq!(tx2("tifo"), [500, 200]);
}

#[test]
fn e7_whirlpool_pool() {
    let ins = || {
        vec![
            vec![t(1_005_000)],
            vec![c(1_005_000)],
            vec![c(1_000_000)],
            vec![c(1_000_000)],
            vec![c(1_000_000)],
        ]
    };
    let outs = [1_000_000u64; 5];
    let h = run("haircut", FeePolicy::Last, ins(), &outs);
    assert_eq!(taints(&h), [200_599, 200_599, 200_599, 200_599, 200_598]);
    assert_eq!(tainted(&h.fee, None), 2_006);
    let f = run("fifo", FeePolicy::Last, ins(), &outs);
    assert_eq!(taints(&f), [1_000_000, 5_000, 0, 0, 0]);
    assert_eq!(tainted(&f.fee, None), 0);
    let fp = run("fifo", FeePolicy::Proportional, ins(), &outs);
    assert_eq!(taints(&fp), [1_000_000, 2_994, 0, 0, 0]);
    assert_eq!(tainted(&fp.fee, None), 2_006);
    let l = run("lifo", FeePolicy::Last, ins(), &outs);
    assert_eq!(taints(&l), [0, 0, 0, 0, 995_000]);
    assert_eq!(tainted(&l.fee, None), 10_000);
    assert_eq!(
        taints(&run("tiho", FeePolicy::Last, ins(), &outs)),
        [1_000_000, 5_000, 0, 0, 0]
    );
    assert_eq!(
        taints(&run("poison", FeePolicy::Last, ins(), &outs)),
        [1_000_000; 5]
    );
}

#[test]
fn fifo_keeps_source_offsets_and_bad_transactions_are_refused() {
    let x = run(
        "fifo",
        FeePolicy::Last,
        vec![vec![Run::tainted(1, 1000, 0)]],
        &[300, 700],
    );
    assert_eq!(x.outputs[1], vec![Run::tainted(1, 700, 300)]);
    assert!(transfer(m("fifo"), FeePolicy::Last, &[vec![c(10)]], &[11]).is_err());
    assert!(Model::parse("nonsense").is_err());
    assert_eq!(Model::parse("LIHO").unwrap().name(), "last-in high-out");
    assert_eq!(largest_remainder(10, &[0, 0]), vec![0, 0]);
}

fn arb_tx() -> impl Strategy<Value = (Vec<Vec<Run>>, Vec<u64>)> {
    let run = (0u32..4, 1u64..1_000_000).prop_map(|(l, a)| Run {
        label: l,
        amount: a,
        offset: 0,
    });
    (
        prop::collection::vec(prop::collection::vec(run, 1..4), 1..6),
        prop::collection::vec(1u64..10_000, 1..7),
        0u64..1000,
    )
        .prop_map(|(ins, outw, feew)| {
            let v: u64 = ins.iter().flatten().map(|r| r.amount).sum();
            // Scale output weights so the outputs take V - fee exactly.
            let fee = v.min(feew);
            let outs = largest_remainder(v - fee, &outw);
            (ins, outs)
        })
}

proptest! {
    #[test]
    fn every_conserving_model_conserves_per_label((ins, outs) in arb_tx(), model in prop::sample::select(vec!["fifo", "lifo", "tiho", "tifo", "ciso", "haircut", "siho", "hilo", "ciso"]), prop_fee in any::<bool>()) {
        let fee = if prop_fee { FeePolicy::Proportional } else { FeePolicy::Last };
        let x = transfer(Model::parse(model).unwrap(), fee, &ins, &outs).unwrap();
        for label in 0..4u32 {
            let before: u64 = ins.iter().flatten().filter(|r| r.label == label).map(|r| r.amount).sum();
            let after: u64 = x.outputs.iter().flatten().chain(x.fee.iter()).filter(|r| r.label == label).map(|r| r.amount).sum();
            prop_assert_eq!(before, after, "label {}", label);
        }
        for (o, &w) in x.outputs.iter().zip(&outs) {
            prop_assert_eq!(o.iter().map(|r| r.amount).sum::<u64>(), w);
        }
    }
}
