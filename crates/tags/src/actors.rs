//! GraphSense ActorPack: the actors that tags refer to by `actor` id.

use crate::error::TagError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub label: String,
    pub categories: Vec<String>,
    pub jurisdictions: Vec<String>,
    pub aliases: Vec<String>,
    pub uri: Option<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

pub fn parse_actorpack(text: &str, file: &str) -> Result<Vec<Actor>, TagError> {
    let doc = crate::tagpack::yaml_value(text, file)?;
    let Some(Value::Array(actors)) = doc.get("actors") else {
        return Err(TagError::field(file, 1, "actors", "required list missing"));
    };
    let mut out = Vec::with_capacity(actors.len());
    for (i, a) in actors.iter().enumerate() {
        let s = |f: &str| match a.get(f) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let where_ = format!("actors[{i}].id");
        let id = s("id").ok_or_else(|| TagError::field(file, 0, &where_, "required"))?;
        let label = s("label").ok_or_else(|| {
            TagError::field(file, 0, &format!("actors[{i}] ({id}).label"), "required")
        })?;
        let mut aliases = strings(a.get("aliases"));
        if let Some(c) = a.get("context") {
            aliases.extend(strings(c.get("aliases")));
        }
        // Packs repeat aliases between the actor and its context; show each once.
        let mut seen = std::collections::HashSet::new();
        aliases.retain(|x| seen.insert(x.to_lowercase()));
        let max = crate::label::MAX_LABEL_CHARS;
        let long = std::iter::once(("id", &id))
            .chain(std::iter::once(("label", &label)))
            .chain(aliases.iter().map(|a| ("aliases", a)))
            .find(|(_, v)| v.chars().count() > max);
        if let Some((f, v)) = long {
            return Err(TagError::field(
                file,
                0,
                &format!("actors[{i}].{f}"),
                format!(
                    "{} characters; at most {max} are accepted (shorten it)",
                    v.chars().count()
                ),
            ));
        }
        out.push(Actor {
            id,
            label,
            categories: strings(a.get("categories")),
            jurisdictions: strings(a.get("jurisdictions")),
            aliases,
            uri: s("uri"),
        });
    }
    Ok(out)
}
