//! The OFAC SDN list in its advanced XML format: every "Digital Currency Address - XXX"
//! feature of every sanctioned party, with the party's primary name, its programs and the
//! list's date of issue. Streamed with quick-xml: the 121 MB file is never held as a tree.

use crate::{normalize_address, normalize_currency, Label, LabelError};
use quick_xml::events::Event;
use std::collections::HashMap;

pub const SOURCE: &str = "ofac-sdn";

fn attr(e: &quick_xml::events::BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.to_string())
}

/// Parse SDN advanced XML into labels (one per currency and address and party).
pub fn parse_sdn_advanced(xml: &[u8], file: &str) -> Result<(String, Vec<Label>), LabelError> {
    let err = |pos: u64, msg: String| LabelError::Parse {
        file: file.to_string(),
        msg: format!("at byte {pos}: {msg}"),
    };
    let mut r = quick_xml::Reader::from_reader(xml);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut feature_currency: HashMap<String, String> = HashMap::new();
    let mut cur_feature_type: Option<String> = None;
    let (mut y, mut m, mut d) = (String::new(), String::new(), String::new());
    // Per profile: name, addresses; per sanctions entry: programs.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut addrs: Vec<(String, String, String)> = Vec::new(); // (profile, currency, address)
    let mut programs: HashMap<String, Vec<String>> = HashMap::new();
    let mut profile = String::new();
    let mut in_primary_alias = false;
    let mut name_parts: Vec<String> = Vec::new();
    let mut feature_cur: Option<String> = None;
    let mut entry_profile = String::new();
    let mut seen_root = false;
    loop {
        let pos = r.buffer_position();
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| err(pos, e.to_string()))?;
        match ev {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                match name.as_str() {
                    "Sanctions" => seen_root = true,
                    "FeatureType" => cur_feature_type = attr(&e, "ID"),
                    "Profile" => {
                        profile = attr(&e, "ID").unwrap_or_default();
                    }
                    "Alias" => {
                        in_primary_alias = attr(&e, "Primary").as_deref() == Some("true")
                            && !names.contains_key(&profile);
                        name_parts.clear();
                    }
                    "Feature" => {
                        feature_cur = attr(&e, "FeatureTypeID")
                            .and_then(|t| feature_currency.get(&t).cloned());
                    }
                    "SanctionsEntry" => entry_profile = attr(&e, "ProfileID").unwrap_or_default(),
                    _ => {}
                }
                path.push(name);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match name.as_str() {
                    "Alias" if in_primary_alias => {
                        if !name_parts.is_empty() {
                            names.insert(profile.clone(), name_parts.join(" "));
                        }
                        in_primary_alias = false;
                    }
                    "Feature" => feature_cur = None,
                    _ => {}
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content().trim().to_string();
                let Some(last) = path.last() else { continue };
                let parent = path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| path.get(i))
                    .map(|v| v.as_str());
                match last.as_str() {
                    "FeatureType" => {
                        if let (Some(id), Some(cur)) = (
                            &cur_feature_type,
                            text.strip_prefix("Digital Currency Address - "),
                        ) {
                            feature_currency.insert(id.clone(), normalize_currency(cur));
                        }
                    }
                    "Year" if path.len() == 3 && parent == Some("DateOfIssue") => y = text,
                    "Month" if path.len() == 3 && parent == Some("DateOfIssue") => m = text,
                    "Day" if path.len() == 3 && parent == Some("DateOfIssue") => d = text,
                    "NamePartValue" if in_primary_alias => name_parts.push(text),
                    "VersionDetail" => {
                        if let Some(c) = &feature_cur {
                            addrs.push((profile.clone(), c.clone(), text));
                        }
                    }
                    "Comment" if parent == Some("SanctionsMeasure") && !text.is_empty() => {
                        programs
                            .entry(entry_profile.clone())
                            .or_default()
                            .push(text);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root || y.is_empty() {
        return Err(LabelError::Parse {
            file: file.into(),
            msg: "not an SDN advanced XML file (no <Sanctions> root with a DateOfIssue)".into(),
        });
    }
    let version = format!("{y}-{:0>2}-{:0>2}", m, d);
    let mut labels = Vec::with_capacity(addrs.len());
    for (p, cur, a) in addrs {
        let name = names
            .get(&p)
            .cloned()
            .unwrap_or_else(|| format!("SDN profile {p}"));
        let mut progs = programs.get(&p).cloned().unwrap_or_default();
        progs.sort();
        progs.dedup();
        labels.push(Label {
            source: SOURCE.into(),
            version: version.clone(),
            currency: cur.clone(),
            address: Some(normalize_address(&cur, &a)),
            tx_hash: None,
            label: if progs.is_empty() {
                name.clone()
            } else {
                format!("{name} (OFAC {})", progs.join(", "))
            },
            category: "sanctions".into(),
            abuse: None,
            confidence: Some("authority_data".into()),
            actor: Some(name),
            is_cluster_definer: true,
            programs: progs,
            valid_from: version.clone(),
            valid_to: None,
        });
    }
    Ok((version, labels))
}

/// The publisher's per-currency list (`sanctioned_addresses_XBT.txt`, one address a line).
pub fn parse_address_list(
    text: &str,
    currency: &str,
    version: &str,
    file: &str,
) -> Result<Vec<Label>, LabelError> {
    let cur = normalize_currency(currency);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let a = line.trim();
        if a.is_empty() || a.starts_with('#') {
            continue;
        }
        if a.contains(char::is_whitespace) || a.len() > 128 {
            return Err(LabelError::Field {
                file: file.into(),
                line: i + 1,
                field: "address".into(),
                msg: format!("'{a}' is not an address"),
            });
        }
        out.push(Label {
            source: SOURCE.into(),
            version: version.into(),
            currency: cur.clone(),
            address: Some(normalize_address(&cur, a)),
            tx_hash: None,
            label: "OFAC SDN listed address".into(),
            category: "sanctions".into(),
            abuse: None,
            confidence: Some("authority_data".into()),
            actor: None,
            is_cluster_definer: true,
            programs: vec![],
            valid_from: version.into(),
            valid_to: None,
        });
    }
    Ok(out)
}
