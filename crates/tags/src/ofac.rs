//! OFAC SDN advanced XML, streamed (the 121 MB file is never held as a tree), and the
//! publisher-derived per-currency lists (`sanctioned_addresses_XBT.txt`).
//!
//! In the XML, `FeatureType` reference values name the currency ("Digital Currency Address -
//! XBT"); each `Profile` has a primary `Alias` (the party's name) and `Feature`s whose
//! `VersionDetail` text is the address; `SanctionsEntry` (by `ProfileID`) lists the
//! programmes in `SanctionsMeasure/Comment`.

use crate::error::TagError;
use crate::label::{normalize_currency, Label, Target};
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

pub const OFAC_SOURCE: &str = "ofac-sdn";

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.to_string())
}

/// Parse SDN advanced XML from any reader. Returns (DateOfIssue as YYYY-MM-DD, labels).
pub fn parse_sdn_advanced<R: BufRead>(
    reader: R,
    file: &str,
) -> Result<(String, Vec<Label>), TagError> {
    let mut r = quick_xml::Reader::from_reader(reader);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut feature_currency: HashMap<String, String> = HashMap::new();
    let mut cur_feature_type: Option<String> = None;
    let (mut y, mut m, mut d) = (String::new(), String::new(), String::new());
    let mut names: HashMap<String, String> = HashMap::new();
    let mut addrs: Vec<(String, String, String)> = Vec::new();
    let mut programs: HashMap<String, Vec<String>> = HashMap::new();
    let mut profile = String::new();
    let mut in_primary_alias = false;
    let mut name_parts: Vec<String> = Vec::new();
    let mut feature_cur: Option<String> = None;
    let mut entry_profile = String::new();
    let mut seen_root = false;
    loop {
        let pos = r.buffer_position();
        let ev = r.read_event_into(&mut buf).map_err(|e| TagError::Parse {
            file: file.into(),
            msg: format!("XML at byte {pos}: {e}"),
        })?;
        match ev {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                match name.as_str() {
                    "Sanctions" => seen_root = true,
                    "FeatureType" => cur_feature_type = attr(&e, "ID"),
                    "Profile" => profile = attr(&e, "ID").unwrap_or_default(),
                    "Alias" => {
                        in_primary_alias = attr(&e, "Primary").as_deref() == Some("true")
                            && !names.contains_key(&profile);
                        name_parts.clear();
                    }
                    "Feature" => {
                        feature_cur = attr(&e, "FeatureTypeID")
                            .and_then(|t| feature_currency.get(&t).cloned())
                    }
                    "SanctionsEntry" => entry_profile = attr(&e, "ProfileID").unwrap_or_default(),
                    _ => {}
                }
                path.push(name);
            }
            Event::End(_) => match path.pop().as_deref() {
                Some("Alias") if in_primary_alias => {
                    if !name_parts.is_empty() {
                        names.insert(profile.clone(), name_parts.join(" "));
                    }
                    in_primary_alias = false;
                }
                Some("Feature") => feature_cur = None,
                _ => {}
            },
            Event::Text(t) => {
                let text = t.xml10_content().trim().to_string();
                let Some(last) = path.last() else { continue };
                let parent = path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| path.get(i))
                    .map(|s| s.as_str());
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
                    "Comment" if parent == Some("SanctionsMeasure") && !text.is_empty() => programs
                        .entry(entry_profile.clone())
                        .or_default()
                        .push(text),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let version = format!("{y}-{m:0>2}-{d:0>2}");
    if !seen_root || !crate::label::valid_date(&version) {
        return Err(TagError::Parse {
            file: file.into(),
            msg: "not an SDN advanced XML file (no <Sanctions> root with a valid DateOfIssue)"
                .into(),
        });
    }
    let mut labels = Vec::with_capacity(addrs.len());
    for (p, cur, a) in addrs {
        let name = names
            .get(&p)
            .cloned()
            .unwrap_or_else(|| format!("SDN profile {p}"));
        let mut progs = programs.get(&p).cloned().unwrap_or_default();
        progs.sort();
        progs.dedup();
        let text = if progs.is_empty() {
            name.clone()
        } else {
            format!("{name} (OFAC {})", progs.join(", "))
        };
        let mut l = Label::new(OFAC_SOURCE, &cur, Target::Address(a), &text);
        l.category = Some("sanctioned".into());
        l.confidence = Some("authority_data".into());
        l.actor = Some(name);
        l.is_cluster_definer = true;
        l.origin = Some("https://sanctionslist.ofac.treas.gov/".into());
        l.lastmod = Some(version.clone());
        l.programs = progs;
        labels.push(l);
    }
    Ok((version, labels))
}

/// Open `sdn_advanced.xml` or `sdn_advanced.xml.bz2` (told by the bzip2 magic, not the name).
pub fn parse_sdn_advanced_file(path: &Path) -> Result<(String, Vec<Label>), TagError> {
    let name = path.display().to_string();
    let io = |e| TagError::Io {
        path: name.clone(),
        source: e,
    };
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io)?);
    let bz = f.fill_buf().map_err(io)?.starts_with(b"BZh");
    if bz {
        let dec = bzip2::bufread::MultiBzDecoder::new(f);
        parse_sdn_advanced(std::io::BufReader::with_capacity(1 << 20, dec), &name)
    } else {
        parse_sdn_advanced(f, &name)
    }
}

/// One address a line (`sanctioned_addresses_XBT.txt`); the currency comes from the caller
/// (usually the file name).
pub fn parse_address_list(text: &str, currency: &str, file: &str) -> Result<Vec<Label>, TagError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let a = line.trim();
        if a.is_empty() || a.starts_with('#') {
            continue;
        }
        if a.chars().any(|c| !c.is_ascii_alphanumeric()) || a.len() > 128 {
            return Err(TagError::field(
                file,
                i + 1,
                "address",
                format!("'{a}' is not an address"),
            ));
        }
        let mut l = Label::new(
            OFAC_SOURCE,
            currency,
            Target::Address(a.into()),
            "OFAC SDN listed address",
        );
        l.category = Some("sanctioned".into());
        l.confidence = Some("authority_data".into());
        l.is_cluster_definer = true;
        out.push(l);
    }
    Ok(out)
}
