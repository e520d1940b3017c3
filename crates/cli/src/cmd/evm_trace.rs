//! `trace` of cases whose sources are on Ethereum (`0x` transactions or addresses): the
//! account models (balance FIFO/LIFO/TIFO, haircut, poison) over the EVM index, with
//! labelled exchange (and other stop-category) addresses as stops.

use std::collections::HashMap;

use anyhow::{bail, Result};
use cointrail_account::report::{human, report};
use cointrail_account::tracer::{AccountModel, FnOracle, Params, Stop};
use cointrail_cases::{is_evm_source, Case, CaseSource, CaseStore};
use cointrail_evm::Address;
use cointrail_index::evm::EvmIndex;
use cointrail_trace::{InRule, Model, OutRule};

use crate::cmd::trace::TraceArgs;
use crate::Global;

/// The account model that reads the same as a UTXO model name.
pub fn account_model(m: Model) -> Result<AccountModel> {
    Ok(match m {
        Model::Ordered(InRule::First, OutRule::First) => AccountModel::Fifo,
        Model::Ordered(InRule::Last, OutRule::First) => AccountModel::Lifo,
        Model::Ordered(InRule::Taint, OutRule::First) => AccountModel::Tifo,
        Model::Haircut => AccountModel::Haircut,
        Model::Poison => AccountModel::Poison,
        _ => bail!("that model has no account-model form on Ethereum: use fifo, lifo, tifo, haircut or poison"),
    })
}

/// Trace on Ethereum when every source of the named cases (and ad-hoc sources) is a `0x`
/// one; `Ok(false)` when none is (the Bitcoin tracer goes on); an error when they mix.
pub fn maybe_run(a: &TraceArgs, g: &Global) -> Result<bool> {
    let adhoc: Vec<CaseSource> = a
        .from_tx
        .iter()
        .map(|t| CaseSource::Tx { txid: t.clone() })
        .chain(a.from_address.iter().map(|x| CaseSource::Address {
            address: x.clone(),
            from_height: None,
        }))
        .collect();
    let names: Vec<&String> = a.case.iter().chain(a.cases.iter()).collect();
    let mut cases: Vec<Case> = Vec::new();
    if !names.is_empty() {
        let p = g.data_dir.join("cases.redb");
        if !p.exists() {
            return Ok(false);
        }
        let store = CaseStore::open(&p)?;
        for n in names {
            cases.push(store.get(n)?);
        }
    }
    if !adhoc.is_empty() {
        cases.push(Case {
            name: "ad-hoc".into(),
            description: String::new(),
            sources: adhoc,
            created: 0,
            origin: "cli".into(),
        });
    }
    let all: Vec<&CaseSource> = cases.iter().flat_map(|c| c.sources.iter()).collect();
    let evm = all.iter().filter(|s| is_evm_source(s)).count();
    if evm == 0 {
        return Ok(false);
    }
    if evm != all.len() || !a.from.is_empty() {
        bail!("these sources are on both Bitcoin and Ethereum; a trace across chains is not joined yet: trace the Ethereum sources and the Bitcoin ones as separate cases");
    }
    let dir = g.data_dir.join("ethereum");
    if !dir.join("manifest.json").exists() {
        bail!(
            "the case's sources are on Ethereum but there is no Ethereum index in {}: run `cointrail ingest --chain ethereum FILES` first",
            dir.display()
        );
    }
    let idx = EvmIndex::open_reader(&dir)?;
    let mut p = Params::new(account_model(a.model)?);
    if let Some(h) = a.max_hops {
        // On an account chain a hop is a transaction: bound the transactions followed.
        p.max_txs = h as usize;
    }
    let mut stop_at: Vec<String> = a
        .stop_at
        .iter()
        .map(|s| cointrail_risk::rules::normalize_category(s))
        .collect();
    // A crossing (THORChain, a bridge) ends the Ethereum leg; the trace goes on on the other
    // chain from the joined release.
    stop_at.push(cointrail_engine::xchain::BRIDGE_CATEGORY.to_string());
    let store = crate::cmd::labels::open_existing(g)?;
    let attributed = evm_attribution(g)?;
    let cache: std::cell::RefCell<HashMap<Address, Option<Stop>>> = Default::default();
    let labelled = |x: &Address, stop_at: &[String]| -> Option<Stop> {
        let key = x.to_string().to_lowercase();
        let mut found = attributed
            .get(&key)
            .filter(|(cat, _)| stop_at.contains(cat))
            .map(|(cat, name)| Stop {
                category: cat.clone(),
                name: name.clone(),
            });
        if let (None, Some(s)) = (&found, &store) {
            'cur: for cur in cointrail_tags::EVM_CURRENCIES {
                for l in s.labels_for_address(cur, &key, None).unwrap_or_default() {
                    let cat = cointrail_risk::rules::normalize_category(
                        l.risk_category().unwrap_or("unknown"),
                    );
                    if stop_at.contains(&cat) {
                        found = Some(Stop {
                            category: cat,
                            name: l.label.clone(),
                        });
                        break 'cur;
                    }
                }
            }
        }
        found
    };
    // Any label at all (a labelled address is what its labels say, never inferred).
    let any_label = |x: &Address| -> bool {
        let key = x.to_string().to_lowercase();
        attributed.contains_key(&key)
            || store.as_ref().is_some_and(|s| {
                cointrail_tags::EVM_CURRENCIES.iter().any(|cur| {
                    !s.labels_for_address(cur, &key, None)
                        .unwrap_or_default()
                        .is_empty()
                })
            })
    };
    let oracle = FnOracle(|x: &Address| -> Option<Stop> {
        if let Some(s) = cache.borrow().get(x) {
            return s.clone();
        }
        let mut found = labelled(x, &stop_at);
        // An unlabelled exchange deposit address, by its sweep to a labelled hot wallet.
        if found.is_none() && stop_at.iter().any(|c| c == "exchange") && !any_label(x) {
            let exchange = [String::from("exchange")];
            found = cointrail_engine::evm::swept_to_exchange(&idx, x, &|h: &Address| {
                labelled(h, &exchange).map(|s| s.name)
            })
            .map(|(hot, name)| cointrail_engine::evm::sweep_stop(&hot, &name));
        }
        cache.borrow_mut().insert(*x, found.clone());
        found
    });
    let (t, missing) = cointrail_engine::account::trace_evm_cases(&idx, &cases, &oracle, p)?;
    for m in &missing {
        eprintln!("warning: {m}");
    }
    let labels: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let r = report(&t, "ethereum", &labels);
    if g.data_dir.join("index").join("manifest.json").exists() {
        return crate::cmd::xchain_trace::continue_on_bitcoin(a, g, &idx, &t, r, &labels);
    }
    if a.report.is_some() {
        bail!("--report (md/html/csv) is written for Ethereum traces that cross to Bitcoin; without a Bitcoin index use --json");
    }
    if g.json {
        crate::print_json(&r)?;
    } else {
        print!("{}", human(&r, 20));
    }
    Ok(true)
}

/// The `0x…` lines of `DATA_DIR/attribution.tsv`: lowercase address → (category, name).
fn evm_attribution(g: &Global) -> Result<HashMap<String, (String, String)>> {
    let p = g.data_dir.join("attribution.tsv");
    let mut m = HashMap::new();
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(m);
    };
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if !crate::cmd::evm::has_0x_prefix(f[0]) {
            continue;
        }
        if f.len() < 3 {
            bail!(
                "{} line {}: expected address, category, name separated by tabs",
                p.display(),
                i + 1
            );
        }
        m.insert(
            f[0].to_lowercase(),
            (
                cointrail_risk::rules::normalize_category(f[1]),
                f[2].to_string(),
            ),
        );
    }
    Ok(m)
}
