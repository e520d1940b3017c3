//! Reports for people: Markdown, a self-contained HTML page (inline SVG flow diagram, no
//! scripts, no external assets: it opens offline and can be attached to a case file), and
//! CSV of the tainted outputs.

use crate::engine::TraceResult;
use std::fmt::Write;

fn btc(s: u64) -> String {
    format!("{}.{:08}", s / 100_000_000, s % 100_000_000)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How text from the data (names, categories, titles, warnings) is written into a report:
/// attribution names come from label files and the API, so they may hold markup.
struct Escape {
    /// Plain text, in a paragraph or a table cell.
    text: fn(&str) -> String,
    /// Text inside a code span.
    code: fn(&str) -> String,
}

/// Markdown: HTML's special characters as entities (a renderer must not pass `<script>`
/// through), Markdown's own with a backslash, `|` so a cell stays one cell, lines joined.
fn md_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

/// Inside a code span nothing is markup; only a backtick (it would end the span) and line
/// breaks must go.
fn md_code(s: &str) -> String {
    s.replace('`', "'").replace(['\n', '\r'], " ")
}

/// The Markdown the HTML page is built from: already HTML-escaped, with `|` and backticks
/// as entities so the table and code markers of the Markdown stay the only ones.
fn html_text(s: &str) -> String {
    esc(s)
        .replace('|', "&#124;")
        .replace('`', "&#96;")
        .replace(['\n', '\r'], " ")
}

const MARKDOWN: Escape = Escape {
    text: md_text,
    code: md_code,
};
const HTML: Escape = Escape {
    text: html_text,
    code: html_text,
};

/// The flows of the diagram: (label, sats, colour), largest first.
fn flows(r: &TraceResult) -> Vec<(String, u64, &'static str)> {
    let mut v: Vec<(String, u64, &'static str)> = r
        .destinations
        .iter()
        .take(12)
        .map(|d| {
            (
                format!("{} ({})", d.name, d.category),
                d.tainted_sats,
                "#d9534f",
            )
        })
        .collect();
    let shown: u64 = v.iter().map(|x| x.1).sum();
    if r.totals.stopped_sats > shown {
        v.push((
            "other services".into(),
            r.totals.stopped_sats - shown,
            "#e8a0a0",
        ));
    }
    v.push(("CoinJoins entered".into(), r.totals.mixer_sats, "#8e6bbf"));
    v.push(("unspent (dormant)".into(), r.totals.unspent_sats, "#f0ad4e"));
    v.push(("fees".into(), r.totals.fee_sats, "#999999"));
    v.push(("hop / floor limit".into(), r.totals.limit_sats, "#5bc0de"));
    v.retain(|x| x.1 > 0);
    v
}

pub fn markdown(r: &TraceResult, title: &str) -> String {
    render(r, title, &MARKDOWN)
}

fn render(r: &TraceResult, title: &str, e: &Escape) -> String {
    let (x, code) = (e.text, e.code);
    let t = &r.totals;
    let mut s = String::new();
    let _ = writeln!(s, "# Trace report: {}\n", x(title));
    // Parameters and provenance as two-column tables: one setting per row, readable on a
    // printed page (a JSON line runs off it).
    for (name, v) in [("Parameters", &r.parameters), ("Provenance", &r.provenance)] {
        let _ = writeln!(s, "## {name}\n\n| setting | value |\n|---|---|");
        match v.as_object() {
            Some(m) => {
                for (k, val) in m {
                    let text = match val {
                        serde_json::Value::String(t) => t.clone(),
                        serde_json::Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(s, "| {} | {} |", x(k), x(&text.replace('|', "/")));
                }
            }
            None => {
                let _ = writeln!(s, "| - | {} |", x(&v.to_string().replace('|', "/")));
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Totals\n\n| | BTC | share |\n|---|---:|---:|");
    for (k, v) in [
        ("stolen (source)", t.source_sats),
        ("reached services", t.stopped_sats),
        ("entered mixers", t.mixer_sats),
        ("unspent (dormant)", t.unspent_sats),
        ("fees", t.fee_sats),
        ("stopped at limits", t.limit_sats),
    ] {
        let _ = writeln!(
            s,
            "| {k} | {} | {:.2}% |",
            btc(v),
            if t.source_sats == 0 {
                0.0
            } else {
                v as f64 * 100.0 / t.source_sats as f64
            }
        );
    }
    let _ = writeln!(
        s,
        "\n{} transactions visited.{}\n",
        r.txs_visited,
        if r.conserving {
            " The model conserves value: the rows above add up to the source."
        } else {
            " Poison does not conserve value: amounts are reachability, not shares."
        }
    );
    let _ = writeln!(s, "## Where the coins went\n\n| destination | category | BTC | share | min hops | heights | path (theft → destination) |\n|---|---|---:|---:|---:|---|---|");
    for d in &r.destinations {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2}% | {} | {}–{} | {} |",
            x(&d.name),
            x(&d.category),
            btc(d.tainted_sats),
            d.share * 100.0,
            d.min_hops,
            d.first_height,
            d.last_height,
            d.path
                .iter()
                .map(|t| format!("`{}`", code(t.get(..16).unwrap_or(t))))
                .collect::<Vec<_>>()
                .join(" → ")
        );
    }
    if !r.mixers.is_empty() {
        let _ = writeln!(s, "\n## Mixers and CoinJoins\n\n| transaction | protocol | anonymity set | tainted in (BTC) |\n|---|---|---:|---:|");
        for m in &r.mixers {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                code(&m.txid),
                x(&m.protocol),
                m.anonymity_set,
                btc(m.tainted_in)
            );
        }
    }
    if !r.peel_chains.is_empty() {
        let _ = writeln!(s, "\n## Peel chains\n\n| first transaction | length | peeled (BTC) | peels went to |\n|---|---:|---:|---|");
        for c in &r.peel_chains {
            let dests: Vec<String> = c
                .steps
                .iter()
                .filter_map(|st| st.destination.as_deref().map(x))
                .collect();
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                code(&c.first_txid),
                c.length,
                btc(c.peeled_sats),
                dests.join(", ")
            );
        }
    }
    if r.parameters["entity_aware"] == true {
        let _ = writeln!(
            s,
            "\n## The thief's entity (entity-aware tracing)\n\n{} addresses taken as the thief's: {} by the first hop, {} by self-spends, {} in the same clusters, {} through soft hops. Every later spend of the entity drew on what it had received (FIFO), never more.",
            r.thief_entity.len(),
            r.thief_entity.iter().filter(|m| m.rule == "first-hop").count(),
            r.thief_entity.iter().filter(|m| m.rule == "self-spend").count(),
            r.thief_entity.iter().filter(|m| m.rule == "cluster").count(),
            r.thief_entity.iter().filter(|m| m.soft).count(),
        );
    }
    if !r.parameters["soft_hops"].is_null() {
        let st = &r.soft_totals;
        let _ = writeln!(s, "\n## Soft hops (not proven; never added to the totals above)\n\n| soft taint | BTC |\n|---|---:|");
        for (k, v) in [
            ("carried by soft hops", st.source_sats),
            ("reached services", st.stopped_sats),
            ("entered mixers", st.mixer_sats),
            ("unspent", st.unspent_sats),
            ("fees", st.fee_sats),
            ("stopped at limits", st.limit_sats),
        ] {
            let _ = writeln!(s, "| {k} | {} |", btc(v));
        }
        let _ = writeln!(
            s,
            "\n| rule | score | from | to | BTC | facts |\n|---|---:|---|---|---:|---|"
        );
        for h in &r.soft_hops {
            let _ = writeln!(
                s,
                "| {} | {:.2} | `{}` | `{}` | {} | {} |",
                x(&h.rule),
                h.score,
                code(&h.from),
                code(&h.to_txid),
                btc(h.soft_sats),
                x(&h.facts.join("; ").replace('|', "/"))
            );
        }
        if !r.detected_mixers.is_empty() {
            let _ = writeln!(s, "\n| mixer without a label, told by its pattern | deposits | paid back less a fee in the band | mirror band (control) | facts |\n|---|---:|---:|---:|---|");
            for d in &r.detected_mixers {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    x(&d.name),
                    d.deposits,
                    d.matched,
                    d.mirror_matched,
                    x(&d.facts.join("; ").replace('|', "/"))
                );
            }
        }
        let unmatched: Vec<_> = r.demix.iter().filter(|d| d.followed.is_none()).collect();
        if !unmatched.is_empty() {
            let _ = writeln!(s, "\n| mixer deposit not followed | mixer | BTC | best candidate | score |\n|---|---|---:|---|---:|");
            for d in unmatched.iter().take(50) {
                let best = d.candidates.first();
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} | {} |",
                    code(&d.deposit),
                    x(&d.mixer),
                    btc(d.deposit_sats),
                    best.map_or("-".to_string(), |c| format!("`{}`", code(&c.txid))),
                    best.map_or("-".to_string(), |c| format!("{:.2}", c.score)),
                );
            }
        }
    }
    // Entity-aware: the thief's entity's unspent outputs hold what is left of its balance.
    let held = |o: &crate::engine::Row| match o.stop_reason.as_deref() {
        None => o.tainted_sats,
        Some("thief_entity") => o.held_sats,
        _ => 0,
    };
    let dormant: Vec<_> = r
        .outputs
        .iter()
        .filter(|o| !o.spent && held(o) > 0)
        .collect();
    let _ = writeln!(s, "\n## Dormant funds ({} outputs)\n\n| output | address | tainted (BTC) | height | held by |\n|---|---|---:|---:|---|", dormant.len());
    for o in dormant.iter().take(50) {
        let _ = writeln!(
            s,
            "| `{}:{}` | {} | {} | {} | {} |",
            code(&o.txid),
            o.vout,
            x(o.address.as_deref().unwrap_or("-")),
            btc(held(o)),
            o.height,
            if o.stop_reason.is_some() {
                "the thief's entity (balance)"
            } else {
                "the output"
            }
        );
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(s, "\n## Warnings\n");
        for w in r.warnings.iter().take(20) {
            let _ = writeln!(s, "- {}", x(w));
        }
    }
    s
}

pub fn html(r: &TraceResult, title: &str) -> String {
    let f = flows(r);
    let total: u64 = f.iter().map(|x| x.1).sum::<u64>().max(1);
    let (h, gap) = (420.0f64, 6.0f64);
    let x1 = 570.0f64;
    // Wide enough for the longest label (about 7 px a character at 12 px), so none is clipped
    // at any page width: the SVG scales as a whole.
    let label = |l: &str, sats: u64| {
        format!(
            "{} — {} BTC ({:.1}%)",
            l,
            btc(sats),
            sats as f64 * 100.0 / total as f64
        )
    };
    let longest = f
        .iter()
        .map(|(l, v, _)| label(l, *v).chars().count())
        .max()
        .unwrap_or(0);
    let w = (x1 + 16.0 + longest as f64 * 7.2 + 10.0).max(900.0);
    let avail = h - gap * (f.len().saturating_sub(1)) as f64;
    // Label positions: at their bar, pushed down so thin neighbouring bars (fees, limits)
    // never print on top of each other.
    let mut label_y = Vec::with_capacity(f.len());
    {
        let (mut ry, mut last) = (10.0f64, f64::MIN);
        for (_, sats, _) in &f {
            let rh = (avail * (*sats as f64) / total as f64).max(1.0);
            let y = (ry + rh / 2.0 + 4.0).max(last + 15.0);
            label_y.push(y);
            last = y;
            ry += rh + gap;
        }
    }
    let height = (h + 20.0).max(label_y.last().copied().unwrap_or(0.0) + 10.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {height}" width="100%" role="img" aria-label="flow of the stolen coins">"#,
    );
    let _ = write!(
        svg,
        r##"<rect x="10" y="10" width="24" height="{h}" fill="#333"/><text x="40" y="{}" font-size="13">{} BTC stolen</text>"##,
        10.0 + h / 2.0,
        btc(r.totals.source_sats)
    );
    let (mut ly, mut ry) = (10.0f64, 10.0f64);
    for (i, (name, sats, colour)) in f.iter().enumerate() {
        let bh = h * (*sats as f64) / total as f64;
        let rh = avail * (*sats as f64) / total as f64;
        let x0 = 34.0;
        let _ = write!(
            svg,
            r#"<path d="M{x0},{ly} C{c},{ly} {c},{ry} {x1},{ry} L{x1},{ry2} C{c},{ry2} {c},{ly2} {x0},{ly2} Z" fill="{colour}" fill-opacity="0.55"><title>{t}: {b} BTC</title></path>"#,
            c = (x0 + x1) / 2.0,
            ry2 = ry + rh.max(1.0),
            ly2 = ly + bh,
            t = esc(name),
            b = btc(*sats)
        );
        let _ = write!(
            svg,
            r#"<rect x="{x1}" y="{ry}" width="10" height="{}" fill="{colour}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            rh.max(1.0),
            x1 + 16.0,
            label_y[i],
            esc(&label(name, *sats)),
        );
        ly += bh;
        ry += rh.max(1.0) + gap;
    }
    svg.push_str("</svg>");
    // The Markdown with its text escaped for HTML, turned into HTML rows: one source for
    // both reports, and no text escaped twice.
    let md = render(r, title, &HTML);
    let full = referenced_txids(r);
    let mut body = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with("|---") {
            continue;
        }
        if let Some(rest) = line.strip_prefix('|') {
            if !in_table {
                body.push_str("<table>");
                in_table = true;
            }
            body.push_str("<tr>");
            for cell in rest.trim_end_matches('|').split('|') {
                let _ = write!(body, "<td>{}</td>", linked(cell.trim(), &full));
            }
            body.push_str("</tr>\n");
            continue;
        }
        if in_table {
            body.push_str("</table>\n");
            in_table = false;
        }
        if let Some(hd) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{hd}</h2>");
        } else if line.starts_with("# ") {
            continue;
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", line.replace('`', ""));
        }
    }
    if in_table {
        body.push_str("</table>\n");
    }
    // Every transaction the tables name, in full, with the anchor their links point to.
    if !full.is_empty() {
        body.push_str("<h2>Transactions referenced</h2><p>Each shortened or linked txid above points here; <code>cointrail tx TXID</code> shows one in full.</p><table><tr><td>txid</td></tr>\n");
        for t in full.values() {
            let _ = writeln!(body, "<tr id=\"tx-{t}\"><td><code>{t}</code></td></tr>");
        }
        body.push_str("</table>\n");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}td{{border:1px solid #ccc;padding:3px 8px;font-size:13px;overflow-wrap:anywhere}}a{{color:#0645ad}}code{{font-size:12px}}@media print{{body{{margin:0;max-width:none}}}}tr:first-child td{{font-weight:bold;background:#f4f4f4}}</style></head><body><h1>Trace report: {t}</h1>{svg}{body}<p><small>Generated by cointrail. Every amount is exact in satoshis; the paths are the transactions that prove each finding.</small></p></body></html>",
        t = esc(title)
    )
}

/// The transactions a report names, by their 16-character prefix (how paths show them) and
/// by full txid.
fn referenced_txids(r: &TraceResult) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    let mut add = |t: &str| {
        if t.len() == 64 {
            m.insert(t[..16].to_string(), t.to_string());
        }
    };
    for d in &r.destinations {
        d.path.iter().for_each(|t| add(t));
    }
    r.mixers.iter().for_each(|x| add(&x.txid));
    r.peel_chains.iter().for_each(|c| add(&c.first_txid));
    r.outputs
        .iter()
        .filter(|o| !o.spent && o.stop_reason.is_none() && o.tainted_sats > 0)
        .take(50)
        .for_each(|o| add(&o.txid));
    m
}

/// A table cell with its `code` spans (txids, outpoints, txid prefixes) as links to the
/// report's list of transactions.
fn linked(cell: &str, full: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (i, part) in cell.split('`').enumerate() {
        // The cell was escaped for HTML when the Markdown was rendered: not again here.
        if i % 2 == 0 {
            out.push_str(part);
            continue;
        }
        let txid_part = part.split(':').next().unwrap_or(part);
        let key = txid_part.get(..16).unwrap_or(txid_part);
        match full.get(key) {
            Some(t) if t.starts_with(txid_part) => {
                let _ = write!(
                    out,
                    "<a href=\"#tx-{t}\" title=\"{t}\"><code>{}</code></a>",
                    part
                );
            }
            _ => {
                let _ = write!(out, "<code>{}</code>", part);
            }
        }
    }
    out
}

pub fn csv(r: &TraceResult) -> String {
    let mut s = String::from("txid,vout,address,value,tainted_sats,hops,height,spent,entity,labels,stop_reason,inferred\n");
    for o in &r.outputs {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},\"{}\",{},{}",
            csv_cell(&o.txid),
            o.vout,
            csv_cell(o.address.as_deref().unwrap_or("")),
            o.value,
            o.tainted_sats,
            o.hops,
            o.height,
            o.spent,
            o.entity.map(|e| e.to_string()).unwrap_or_default(),
            csv_text(&o.labels.join(";").replace('"', "'")),
            csv_cell(o.stop_reason.as_deref().unwrap_or("")),
            o.inferred
        );
    }
    s
}

/// A cell's text: one line, and no leading `=`, `+`, `-`, `@` that a spreadsheet would run
/// as a formula (a label named `=HYPERLINK(…)`).
fn csv_text(s: &str) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    if one_line.starts_with(['=', '+', '-', '@']) {
        format!("'{one_line}")
    } else {
        one_line
    }
}

/// An unquoted cell: quoted (and its quotes doubled) when it holds a comma or a quote.
fn csv_cell(s: &str) -> String {
    let t = csv_text(s);
    if t.contains([',', '"']) {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t
    }
}
