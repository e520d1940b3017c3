//! GraphSense TagPacks (YAML): header fields are inherited by every tag unless the tag sets
//! them; `title`, `creator` and `tags` are required in the header, and every tag must end
//! up with `label`, `source`, `currency` and an `address` or `tx_hash`.

use crate::{normalize_address, normalize_currency, Label, LabelError};
use serde_json::{Map, Value};

fn s(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(x) => Some(x.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Approximate line of the k-th tag, for error messages (YAML values carry no positions
/// once parsed): the line of its address or tx_hash in the text.
fn line_of(text: &str, needle: Option<&str>) -> usize {
    needle
        .and_then(|n| text.lines().position(|l| l.contains(n)))
        .map_or(0, |i| i + 1)
}

/// Parse one TagPack. Returns (title, version date, labels).
pub fn parse_tagpack(text: &str, file: &str) -> Result<(String, String, Vec<Label>), LabelError> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| LabelError::Parse {
        file: file.into(),
        msg: format!("not valid YAML: {e}"),
    })?;
    let Value::Object(header) = doc else {
        return Err(LabelError::Parse {
            file: file.into(),
            msg: "a TagPack is a YAML mapping with title, creator and tags".into(),
        });
    };
    for f in ["title", "creator", "tags"] {
        if !header.contains_key(f) {
            return Err(LabelError::Field {
                file: file.into(),
                line: 1,
                field: f.into(),
                msg: "required in the TagPack header".into(),
            });
        }
    }
    let title = s(header.get("title")).unwrap_or_default();
    let version = s(header.get("lastmod")).unwrap_or_else(|| "1970-01-01".into());
    let Some(Value::Array(tags)) = header.get("tags") else {
        return Err(LabelError::Field {
            file: file.into(),
            line: 1,
            field: "tags".into(),
            msg: "must be a list".into(),
        });
    };
    let inherited: Map<String, Value> = header
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "title" | "creator" | "description" | "tags" | "is_public" | "owner"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = Vec::with_capacity(tags.len());
    for (k, t) in tags.iter().enumerate() {
        let Value::Object(tag) = t else {
            return Err(LabelError::Field {
                file: file.into(),
                line: 0,
                field: format!("tags[{k}]"),
                msg: "a tag must be a mapping".into(),
            });
        };
        let get = |f: &str| tag.get(f).or_else(|| inherited.get(f));
        let address = s(tag.get("address"));
        let tx_hash = s(tag.get("tx_hash"));
        let line = line_of(text, address.as_deref().or(tx_hash.as_deref()));
        let need = |f: &str| -> Result<String, LabelError> {
            s(get(f))
                .filter(|x| !x.trim().is_empty())
                .ok_or_else(|| LabelError::Field {
                    file: file.into(),
                    line,
                    field: format!("tags[{k}].{f}"),
                    msg: "required (in the tag or the header)".into(),
                })
        };
        if address.is_none() && tx_hash.is_none() {
            return Err(LabelError::Field {
                file: file.into(),
                line,
                field: format!("tags[{k}]"),
                msg: "a tag needs an address or a tx_hash".into(),
            });
        }
        let currency = normalize_currency(&need("currency")?);
        let label = need("label")?;
        let _source_url = need("source")?;
        let concepts: Vec<String> = match get("concepts") {
            Some(Value::Array(a)) => a.iter().filter_map(|x| s(Some(x))).collect(),
            _ => vec![],
        };
        let category = s(get("category"))
            .or_else(|| concepts.first().cloned())
            .unwrap_or_else(|| "unknown".into());
        out.push(Label {
            source: title.clone(),
            version: version.clone(),
            address: address.map(|a| normalize_address(&currency, &a)),
            tx_hash: tx_hash.map(|h| h.to_ascii_lowercase()),
            currency,
            label,
            category,
            abuse: s(get("abuse")),
            confidence: s(get("confidence")),
            actor: s(get("actor")),
            is_cluster_definer: matches!(get("is_cluster_definer"), Some(Value::Bool(true))),
            programs: vec![],
            valid_from: version.clone(),
            valid_to: None,
        });
    }
    Ok((title, version, out))
}
