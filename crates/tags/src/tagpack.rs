//! GraphSense TagPack YAML: header fields are inherited by every tag unless the tag overrides
//! them. Values are read as generic YAML so odd types (dates, numbers) never abort a pack.

use crate::error::TagError;
use crate::label::{valid_date, Label, Target};
use serde_json::{Map, Value};

const INHERITABLE: &[&str] = &[
    "label",
    "source",
    "currency",
    "category",
    "abuse",
    "actor",
    "confidence",
    "is_cluster_definer",
    "lastmod",
    "concepts",
    "context",
];

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Line (1-based) of each item of the top-level `tags:` sequence, found by a text scan because
/// the YAML deserializer does not report positions.
fn tag_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_tags = false;
    let mut item_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("tags:") {
            in_tags = true;
            continue;
        }
        if !in_tags {
            continue;
        }
        let ind = line.len() - line.trim_start().len();
        let t = line.trim_start();
        if ind == 0 && !t.is_empty() && !t.starts_with('-') && !t.starts_with('#') {
            in_tags = false;
            continue;
        }
        if t.starts_with("- ") || t == "-" {
            if item_indent.is_none() {
                item_indent = Some(ind);
            }
            if Some(ind) == item_indent {
                out.push(i + 1);
            }
        }
    }
    out
}

/// Parse YAML with a node budget scaled to the input: the default (250k nodes) is below the
/// largest real pack (miners.yaml), yet a budget still bounds alias bombs.
pub(crate) fn yaml_value(text: &str, file: &str) -> Result<Value, TagError> {
    let mut opts = serde_saphyr::Options::default();
    let mut b = serde_saphyr::Budget::default();
    b.max_nodes = b.max_nodes.max(text.len());
    opts.budget = Some(b);
    serde_saphyr::from_str_with_options(text, opts).map_err(|e| TagError::Parse {
        file: file.into(),
        msg: format!("YAML: {e}"),
    })
}

/// Parse a TagPack into labels of store source `source`.
pub fn parse_tagpack(text: &str, file: &str, source: &str) -> Result<Vec<Label>, TagError> {
    let doc = yaml_value(text, file)?;
    let Value::Object(hdr) = doc else {
        return Err(TagError::field(
            file,
            1,
            "(document)",
            "a TagPack is a mapping",
        ));
    };
    for f in ["title", "creator", "tags"] {
        if !hdr.contains_key(f) {
            return Err(TagError::field(file, 1, f, "required header field missing"));
        }
    }
    let Some(Value::Array(tags)) = hdr.get("tags") else {
        return Err(TagError::field(file, 1, "tags", "must be a list"));
    };
    let lines = tag_lines(text);
    let mut out = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let Value::Object(t) = t else {
            return Err(TagError::field(file, line, "tags[]", "a tag is a mapping"));
        };
        let mut m: Map<String, Value> = Map::new();
        for k in INHERITABLE {
            if let Some(v) = t.get(*k).or_else(|| hdr.get(*k)) {
                m.insert((*k).into(), v.clone());
            }
        }
        let get = |f: &str| scalar(m.get(f));
        let need = |f: &str| {
            get(f).ok_or_else(|| {
                TagError::field(
                    file,
                    line,
                    f,
                    "required, neither in the tag nor in the header",
                )
            })
        };
        let label = need("label")?;
        let origin = need("source")?;
        let currency = need("currency")?;
        // Some packs annotate an address after it ("VJL... (AMP ID: ...)"): the first word is the address.
        let first =
            |v: Option<String>| v.and_then(|s| s.split_whitespace().next().map(String::from));
        let target = match (
            first(scalar(t.get("address"))),
            first(scalar(t.get("tx_hash"))),
        ) {
            (Some(a), _) => Target::Address(a),
            (None, Some(h)) => Target::Tx(h),
            (None, None) => {
                return Err(TagError::field(
                    file,
                    line,
                    "address",
                    "a tag needs address or tx_hash",
                ))
            }
        };
        {
            let (Target::Address(a) | Target::Tx(a)) = &target;
            if a.chars().any(char::is_whitespace) || a.len() > 256 {
                return Err(TagError::field(
                    file,
                    line,
                    "address",
                    format!("'{a}' is not an address"),
                ));
            }
        }
        let mut l = Label::new(source, &currency, target, &label);
        l.origin = Some(origin);
        l.category = get("category");
        l.abuse = get("abuse");
        l.actor = get("actor");
        l.confidence = get("confidence");
        l.is_cluster_definer = match m.get("is_cluster_definer") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(v) => {
                return Err(TagError::field(
                    file,
                    line,
                    "is_cluster_definer",
                    format!("{v} is not a boolean"),
                ))
            }
        };
        l.lastmod = match get("lastmod") {
            // Some packs carry a timestamp; the date part is what is compared.
            Some(d) if d.len() >= 10 && valid_date(&d[..10]) => Some(d[..10].to_string()),
            Some(d) => {
                return Err(TagError::field(
                    file,
                    line,
                    "lastmod",
                    format!("'{d}' is not a date"),
                ))
            }
            None => None,
        };
        l.concepts = match m.get("concepts") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| scalar(Some(v))).collect(),
            _ => vec![],
        };
        if let Some((field, msg)) = l.oversized_field() {
            return Err(TagError::field(file, line, field, msg));
        }
        out.push(l);
    }
    Ok(out)
}

fn q(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Labels as one TagPack YAML document that `parse_tagpack` reads back to the same labels
/// (store source, validity dates and programmes excepted: a TagPack has no field for them,
/// so programmes are kept inside the label text where OFAC puts them).
pub fn export_tagpack(labels: &[Label], title: &str, creator: &str) -> String {
    let mut s = format!("title: {}\ncreator: {}\ntags:\n", q(title), q(creator));
    for l in labels {
        match &l.target {
            Target::Address(a) => s += &format!("- address: {}\n", q(a)),
            Target::Tx(t) => s += &format!("- tx_hash: {}\n", q(t)),
        }
        s += &format!("  currency: {}\n  label: {}\n", q(&l.currency), q(&l.label));
        s += &format!(
            "  source: {}\n",
            q(l.origin.as_deref().unwrap_or(&l.source))
        );
        for (k, v) in [
            ("category", &l.category),
            ("abuse", &l.abuse),
            ("actor", &l.actor),
            ("confidence", &l.confidence),
            ("lastmod", &l.lastmod),
        ] {
            if let Some(v) = v {
                s += &format!("  {k}: {}\n", q(v));
            }
        }
        s += &format!("  is_cluster_definer: {}\n", l.is_cluster_definer);
        if !l.concepts.is_empty() {
            s += &format!(
                "  concepts: [{}]\n",
                l.concepts
                    .iter()
                    .map(|c| q(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    s
}
