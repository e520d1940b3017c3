//! `trace CASE` across chains: the Ethereum leg (account model), each crossing joined to
//! its Bitcoin release (THORChain memo, bridge id, or amount and time), the Bitcoin leg
//! (UTXO model) from the releases' payouts with the converted taint, and one report with
//! per-chain totals and every cross-chain hop.

use anyhow::{bail, Context, Result};
use cointrail_account::report::{human, report, AccountReport};
use cointrail_account::tracer::{AccountModel, AccountTrace};
use cointrail_account::xchain::BridgeRules;
use cointrail_engine::xchain::{
    cross_bridges_to_ethereum, cross_to_bitcoin, cross_to_ethereum, ethereum_leg_from, Crossed,
    CrossedBack, BRIDGE_CATEGORY,
};
use cointrail_index::evm::EvmIndex;
use cointrail_trace::{TraceParams, TraceResult};
use serde_json::json;

use crate::cmd::trace::TraceArgs;
use crate::Global;

pub fn continue_on_bitcoin(
    a: &TraceArgs,
    g: &Global,
    idx: &EvmIndex,
    t: &AccountTrace,
    r: AccountReport,
    labels: &[String],
) -> Result<bool> {
    let crosses = t.stops.iter().any(|s| s.category == BRIDGE_CATEGORY);
    if !crosses {
        if a.report.is_some() {
            bail!("--report (md/html/csv) is written for Ethereum traces that cross to Bitcoin; use --json");
        }
        if g.json {
            crate::print_json(&r)?;
        } else {
            print!("{}", human(&r, 20));
        }
        return Ok(true);
    }
    let rules = load_rules(a, g)?;
    let t0 = std::time::Instant::now();
    let e = crate::cmd::screen::open_engine(g, None)?;
    let t_open = t0.elapsed().as_secs_f64();
    let x = cross_to_bitcoin(idx, &e.index, t, &|c| c == BRIDGE_CATEGORY, &rules, 1);
    let mut stops: Vec<String> = a
        .stop_at
        .iter()
        .map(|s| cointrail_risk::rules::normalize_category(s))
        .collect();
    // The router's Bitcoin vault (attributed `bridge`) ends the Bitcoin leg: a deposit
    // there crosses back to Ethereum.
    stops.push(BRIDGE_CATEGORY.to_string());
    let t_join = t0.elapsed().as_secs_f64();
    let btc = (!x.sources.is_empty()).then(|| {
        let p = TraceParams {
            model: a.model,
            fee_policy: a.fee_policy,
            max_hops: None,
            dust_sats: a.dust_sats,
            min_fraction: a.min_fraction,
            coinjoin: a.coinjoin,
            labels: labels.to_vec(),
            provenance: serde_json::Value::Null,
            max_rows: a.max_rows,
            // The Bitcoin leg honours the same options as a Bitcoin-only trace.
            entity_aware: a.entity_aware,
            demix: a.demix(),
        };
        e.trace(&x.sources, p, &stops)
    });

    let secs = t0.elapsed().as_secs_f64();
    let back = match &btc {
        Some(b) => back_to_ethereum(&e, b, labels, a.model, &stops, &rules)?,
        None => None,
    };
    let t_back = t0.elapsed().as_secs_f64();
    tracing::debug!(t_open, t_join, secs, t_back, "cross-chain trace phases");
    if std::env::var_os("COINTRAIL_XCHAIN_TIMES").is_some() {
        eprintln!(
            "open {t_open:.2}s join {t_join:.2}s bitcoin {secs:.2}s back to ethereum {t_back:.2}s"
        );
    }
    let mut v = combined(&r, &x, btc.as_ref())?;
    if let Some(k) = &back {
        v["to_ethereum"] = k.json()?;
        v["per_chain_totals"]["ethereum_return"] = k.totals_json()?;
    }
    if let Some(path) = &a.report {
        let body = match path.extension().and_then(|x| x.to_str()) {
            Some("html") | Some("htm") => {
                html(&v, labels) + &back.as_ref().map(Back::html).unwrap_or_default()
            }
            Some("csv") => csv(&v) + &back.as_ref().map(Back::csv).unwrap_or_default(),
            Some("md") => bail!("--report: cross-chain reports are .html or .csv"),
            _ => bail!("--report {}: use a .html or .csv file name", path.display()),
        };
        std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    if g.json {
        return crate::print_json(&v).map(|_| true);
    }
    print!("{}", human(&r, 10));
    println!(
        "cross-chain: {} hops to Bitcoin ({} skipped with a reason); tainted ETH into crossings not joined: {} wei",
        x.hops.len(),
        x.skipped.len(),
        x.unjoined_wei
    );
    for h in x.hops.iter().take(10) {
        println!(
            "  {} {} → {} via {} ({}, confidence {:.2}): {} tainted wei → {} tainted sats",
            h.from_chain,
            h.deposit_tx,
            h.release_tx,
            h.via,
            h.matched.as_str(),
            h.confidence_ppm as f64 / 1e6,
            h.tainted_wei,
            h.tainted_sats
        );
    }
    if let Some(b) = &btc {
        crate::cmd::trace::print_summary(b, &labels.join(" + "), secs);
    }
    if let Some(k) = &back {
        print!("{}", k.human());
    }
    if let Some(p) = &a.report {
        println!("report written to {}", p.display());
    }
    Ok(true)
}

/// The one JSON answer: the Ethereum leg as before, the hops, the Bitcoin leg and the
/// per-chain totals (amounts of different chains are never added).
fn combined(
    r: &AccountReport,
    x: &Crossed,
    btc: Option<&TraceResult>,
) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(r)?;
    v["chain"] = json!("ethereum+bitcoin");
    v["crossings"] = serde_json::to_value(x)?;
    let eth_totals = serde_json::to_value(&r.totals)?;
    let mut per_chain = json!({ "ethereum": eth_totals });
    if let Some(b) = btc {
        v["bitcoin"] = serde_json::to_value(b)?;
        per_chain["bitcoin"] = serde_json::to_value(&b.totals)?;
    }
    v["per_chain_totals"] = per_chain;
    Ok(v)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html(v: &serde_json::Value, labels: &[String]) -> String {
    let mut s = format!(
        "<!doctype html><meta charset=utf-8><title>cointrail cross-chain trace: {0}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}</style>\
         <h1>Cross-chain trace of {0}</h1><p>model {1}</p><h2>Per-chain totals</h2>",
        esc(&labels.join(" + ")),
        esc(v["model"].as_str().unwrap_or("?"))
    );
    s.push_str("<h3>Ethereum (base units per asset)</h3><table><tr><th>case</th><th>asset</th><th>source</th><th>converted in</th><th>held</th><th>stopped</th><th>fee</th><th>pooled</th><th>converted out</th></tr>");
    for t in v["totals"].as_array().into_iter().flatten() {
        s.push_str("<tr>");
        for k in [
            "label",
            "asset",
            "source",
            "converted_in",
            "held",
            "stopped",
            "fee",
            "pooled",
            "converted_out",
        ] {
            s.push_str(&format!("<td>{}</td>", esc(&plain(&t[k]))));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    if let Some(b) = v["bitcoin"]["totals"].as_object() {
        s.push_str("<h3>Bitcoin (sats)</h3><table><tr>");
        for k in b.keys() {
            s.push_str(&format!("<th>{}</th>", esc(k)));
        }
        s.push_str("</tr><tr>");
        for x in b.values() {
            s.push_str(&format!("<td>{}</td>", esc(&plain(x))));
        }
        s.push_str("</tr></table>");
    }
    s.push_str("<h2>Cross-chain hops</h2><table><tr><th>from</th><th>deposit tx</th><th>to</th><th>release tx</th><th>via</th><th>matched</th><th>confidence</th><th>tainted in (wei)</th><th>tainted out (sats)</th></tr>");
    for h in v["crossings"]["hops"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>",
            esc(&plain(&h["from_chain"])),
            esc(&plain(&h["deposit_tx"])),
            esc(&plain(&h["to_chain"])),
            esc(&plain(&h["release_tx"])),
            esc(&plain(&h["via"])),
            esc(&plain(&h["matched"])),
            h["confidence_ppm"].as_f64().unwrap_or(0.0) / 1e6,
            esc(&plain(&h["tainted_wei"])),
            esc(&plain(&h["tainted_sats"]))
        ));
    }
    s.push_str("</table><h2>Skipped hops</h2><ul>");
    for k in v["crossings"]["skipped"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "<li>{} {}: {}</li>",
            esc(&plain(&k["chain"])),
            esc(&plain(&k["tx"])),
            esc(&plain(&k["reason"]))
        ));
    }
    s.push_str("</ul><h2>Ethereum stops</h2><table><tr><th>address</th><th>asset</th><th>amount</th><th>category</th><th>name</th></tr>");
    for t in v["stops"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&plain(&t["address"])),
            esc(&plain(&t["asset"])),
            esc(&plain(&t["amount"])),
            esc(&plain(&t["category"])),
            esc(&plain(&t["name"]))
        ));
    }
    s.push_str("</table><h2>Bitcoin destinations</h2><table><tr><th>name</th><th>category</th><th>tainted sats</th><th>outputs</th></tr>");
    for d in v["bitcoin"]["destinations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&plain(&d["name"])),
            esc(&plain(&d["category"])),
            esc(&plain(&d["tainted_sats"])),
            esc(&plain(&d["outputs"]))
        ));
    }
    s.push_str("</table>\n");
    s
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        o => o.to_string(),
    }
}

/// One row per fact: `section,chain,tx,address,asset,amount,tainted,detail`.
fn csv(v: &serde_json::Value) -> String {
    let mut s = String::from("section,chain,tx,address,asset,amount,tainted,detail\n");
    let q = |x: &str| format!("\"{}\"", x.replace('"', "\"\""));
    for t in v["totals"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "total,ethereum,,,{},{},{},{}\n",
            q(&plain(&t["asset"])),
            plain(&t["source"]),
            plain(&t["stopped"]),
            q(&format!(
                "held {} fee {} pooled {}",
                plain(&t["held"]),
                plain(&t["fee"]),
                plain(&t["pooled"])
            ))
        ));
    }
    if let Some(b) = v["bitcoin"]["totals"].as_object() {
        s.push_str(&format!(
            "total,bitcoin,,,BTC,{},{},{}\n",
            plain(&b["source_sats"]),
            plain(&b["stopped_sats"]),
            q(&format!(
                "unspent {} fee {} mixer {} limit {}",
                plain(&b["unspent_sats"]),
                plain(&b["fee_sats"]),
                plain(&b["mixer_sats"]),
                plain(&b["limit_sats"])
            ))
        ));
    }
    for h in v["crossings"]["hops"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "hop,ethereum>bitcoin,{},{},ETH>BTC,{},{},{}\n",
            plain(&h["deposit_tx"]),
            q(&plain(&h["release_tx"])),
            plain(&h["deposit_wei"]),
            plain(&h["tainted_sats"]),
            q(&format!(
                "{} {} confidence_ppm {}",
                plain(&h["via"]),
                plain(&h["matched"]),
                plain(&h["confidence_ppm"])
            ))
        ));
    }
    for t in v["stops"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "stop,ethereum,{},{},{},{},{},{}\n",
            plain(&t["tx"]),
            plain(&t["address"]),
            q(&plain(&t["asset"])),
            plain(&t["amount"]),
            plain(&t["amount"]),
            q(&format!("{} {}", plain(&t["category"]), plain(&t["name"])))
        ));
    }
    for d in v["bitcoin"]["destinations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        s.push_str(&format!(
            "destination,bitcoin,,{},BTC,,{},{}\n",
            q(&plain(&d["name"])),
            plain(&d["tainted_sats"]),
            q(&plain(&d["category"]))
        ));
    }
    s
}

/// The bridge rules: `--bridges FILE`, else `DATA_DIR/bridges.yaml` when it exists; a file
/// with errors is an error naming it.
pub fn load_rules(a: &TraceArgs, g: &Global) -> Result<BridgeRules> {
    let rules_path = a
        .bridges
        .clone()
        .or_else(|| Some(g.data_dir.join("bridges.yaml")).filter(|p| p.exists()));
    Ok(match &rules_path {
        Some(p) => BridgeRules::load(p)?,
        None => BridgeRules::default(),
    })
}

/// A Bitcoin leg's crossings back to Ethereum and the Ethereum leg after them.
pub struct Back {
    pub crossed: CrossedBack,
    pub eth: Option<AccountReport>,
}

/// Follow a Bitcoin leg (of a Bitcoin case, or of an Ethereum case after its crossing)
/// back to Ethereum when the data directory has an Ethereum index: the vault deposits
/// with THORChain swap memos joined to their outbound (`OUT:<txid>`), then the account
/// model (`model` when it has an account form, else FIFO) from the converted taint.
/// `None` without an Ethereum index.
pub fn back_to_ethereum(
    e: &cointrail_engine::Engine,
    btc: &TraceResult,
    labels: &[String],
    model: cointrail_trace::Model,
    stops: &[String],
    rules: &BridgeRules,
) -> Result<Option<Back>> {
    let Some(side) = e.ethereum_side()? else {
        return Ok(None);
    };
    let mut crossed = cross_to_ethereum(&e.index, &side.index, btc, labels);
    crossed.extend(cross_bridges_to_ethereum(
        &e.index,
        &side.index,
        btc,
        labels,
        rules,
    ));
    let eth = if crossed.sources.is_empty() {
        None
    } else {
        let m = crate::cmd::evm_trace::account_model(model).unwrap_or(AccountModel::Fifo);
        let t = ethereum_leg_from(&side, &crossed.sources, m, stops, None)?;
        Some(report(&t, "ethereum", labels))
    };
    Ok(Some(Back { crossed, eth }))
}

impl Back {
    /// `to_ethereum` of the JSON answer: the hops back, the skipped ones and the leg.
    pub fn json(&self) -> Result<serde_json::Value> {
        let mut v = serde_json::to_value(&self.crossed)?;
        v["trace"] = serde_json::to_value(&self.eth)?;
        Ok(v)
    }

    pub fn totals_json(&self) -> Result<serde_json::Value> {
        Ok(match &self.eth {
            Some(r) => serde_json::to_value(&r.totals)?,
            None => json!([]),
        })
    }

    pub fn human(&self) -> String {
        let x = &self.crossed;
        let mut s = format!(
            "back to Ethereum: {} hop(s) ({} skipped with a reason); tainted sats into crossings not joined: {}\n",
            x.hops.len(),
            x.skipped.len(),
            x.unjoined_sats
        );
        for h in x.hops.iter().take(10) {
            s.push_str(&format!(
                "  bitcoin {} → {} via {} ({}): {} tainted sats → {} tainted {} (memo {})\n",
                h.deposit_tx,
                h.release_tx,
                h.via,
                h.matched.as_str(),
                h.tainted_sats,
                h.tainted,
                h.asset,
                h.memo
            ));
        }
        for k in x.skipped.iter().take(10) {
            s.push_str(&format!("  skipped {} {}: {}\n", k.chain, k.tx, k.reason));
        }
        if let Some(r) = &self.eth {
            s.push_str(&human(r, 10));
        }
        s
    }

    /// The HTML section (appended to the report).
    pub fn html(&self) -> String {
        let mut s = String::from("<h2>Back to Ethereum</h2><table><tr><th>from</th><th>deposit tx</th><th>memo</th><th>to</th><th>release tx</th><th>via</th><th>matched</th><th>confidence</th><th>tainted in (sats)</th><th>tainted out</th><th>asset</th></tr>");
        for h in &self.crossed.hops {
            s.push_str(&format!(
                "<tr><td>bitcoin</td><td>{}</td><td>{}</td><td>ethereum</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&h.deposit_tx),
                esc(&h.memo),
                esc(&h.release_tx),
                esc(&h.via),
                esc(h.matched.as_str()),
                h.confidence_ppm as f64 / 1e6,
                h.tainted_sats,
                esc(&h.tainted),
                esc(&h.asset)
            ));
        }
        s.push_str("</table><h3>Skipped crossings back (not followed, with why)</h3><ul>");
        for k in &self.crossed.skipped {
            s.push_str(&format!(
                "<li>{} {}: {}</li>",
                esc(&k.chain),
                esc(&k.tx),
                esc(&k.reason)
            ));
        }
        s.push_str("</ul>");
        if let Some(r) = &self.eth {
            s.push_str("<h3>Ethereum after Bitcoin (base units per asset)</h3><table><tr><th>case</th><th>asset</th><th>source</th><th>held</th><th>stopped</th><th>fee</th><th>pooled</th><th>converted out</th></tr>");
            let v = serde_json::to_value(&r.totals).unwrap_or_default();
            for t in v.as_array().into_iter().flatten() {
                s.push_str("<tr>");
                for k in [
                    "label",
                    "asset",
                    "source",
                    "held",
                    "stopped",
                    "fee",
                    "pooled",
                    "converted_out",
                ] {
                    s.push_str(&format!("<td>{}</td>", esc(&plain(&t[k]))));
                }
                s.push_str("</tr>");
            }
            s.push_str("</table><h3>Ethereum stops after Bitcoin</h3><table><tr><th>address</th><th>asset</th><th>amount</th><th>category</th><th>name</th></tr>");
            let v = serde_json::to_value(&r.stops).unwrap_or_default();
            for t in v.as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&plain(&t["address"])),
                    esc(&plain(&t["asset"])),
                    esc(&plain(&t["amount"])),
                    esc(&plain(&t["category"])),
                    esc(&plain(&t["name"]))
                ));
            }
            s.push_str("</table>");
        }
        s.push('\n');
        s
    }

    /// CSV rows in the cross-chain layout (`section,chain,tx,address,asset,amount,tainted,detail`).
    pub fn csv(&self) -> String {
        let q = |x: &str| format!("\"{}\"", x.replace('"', "\"\""));
        let mut s = String::new();
        for h in &self.crossed.hops {
            s.push_str(&format!(
                "hop,bitcoin>ethereum,{},{},BTC>{},{},{},{}\n",
                h.deposit_tx,
                q(&h.release_tx),
                q(&h.asset),
                h.deposit_sats,
                h.tainted,
                q(&format!(
                    "{} {} confidence_ppm {} memo {}",
                    h.via,
                    h.matched.as_str(),
                    h.confidence_ppm,
                    h.memo
                ))
            ));
        }
        for k in &self.crossed.skipped {
            s.push_str(&format!(
                "skipped,{},{},,,,,{}\n",
                k.chain,
                k.tx,
                q(&k.reason)
            ));
        }
        if let Some(r) = &self.eth {
            let v = serde_json::to_value(r).unwrap_or_default();
            for t in v["totals"].as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "total,ethereum_after_bitcoin,,,{},{},{},{}\n",
                    q(&plain(&t["asset"])),
                    plain(&t["source"]),
                    plain(&t["stopped"]),
                    q(&format!(
                        "held {} fee {} pooled {}",
                        plain(&t["held"]),
                        plain(&t["fee"]),
                        plain(&t["pooled"])
                    ))
                ));
            }
            for t in v["stops"].as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "stop,ethereum_after_bitcoin,{},{},{},{},{},{}\n",
                    plain(&t["tx"]),
                    plain(&t["address"]),
                    q(&plain(&t["asset"])),
                    plain(&t["amount"]),
                    plain(&t["amount"]),
                    q(&format!("{} {}", plain(&t["category"]), plain(&t["name"])))
                ));
            }
        }
        s
    }
}
