//! A user's own labels: CSV with header `address,currency,label,category[,confidence,actor]`.

use crate::error::TagError;
use crate::label::{Label, Target};

pub fn parse_user_csv(text: &str, file: &str, source: &str) -> Result<Vec<Label>, TagError> {
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let hdr: Vec<String> = rd
        .headers()
        .map_err(|e| TagError::field(file, 1, "header", e.to_string()))?
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let col = |n: &str| hdr.iter().position(|h| h == n);
    let mut need = [0usize; 4];
    for (i, n) in ["address", "currency", "label", "category"]
        .iter()
        .enumerate()
    {
        need[i] = col(n).ok_or_else(|| TagError::field(file, 1, n, "required column missing"))?;
    }
    let (conf, actor) = (col("confidence"), col("actor"));
    let mut out = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| {
            TagError::field(
                file,
                e.position().map(|p| p.line() as usize).unwrap_or(0),
                "(row)",
                e.to_string(),
            )
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |i: usize| rec.get(i).filter(|s| !s.is_empty());
        let mut v = [""; 4];
        for (k, n) in ["address", "currency", "label", "category"]
            .iter()
            .enumerate()
        {
            v[k] = get(need[k]).ok_or_else(|| TagError::field(file, line, n, "empty"))?;
        }
        if v[0].chars().any(char::is_whitespace) {
            return Err(TagError::field(
                file,
                line,
                "address",
                format!("'{}' is not an address", v[0]),
            ));
        }
        let mut l = Label::new(source, v[1], Target::Address(v[0].into()), v[2]);
        l.category = Some(v[3].into());
        l.confidence = conf.and_then(get).map(String::from);
        l.actor = actor.and_then(get).map(String::from);
        l.is_cluster_definer = true;
        if let Some((field, msg)) = l.oversized_field() {
            return Err(TagError::field(file, line, field, msg));
        }
        out.push(l);
    }
    Ok(out)
}
