//! `labels import PATH` : tell the format by content and import into the store.

use crate::error::TagError;
use crate::store::{ImportStats, TagStore};
use crate::{ofac, parse_actorpack, parse_tagpack, parse_user_csv, Actor};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TagPack,
    ActorPack,
    SdnXml,
    /// `sanctioned_addresses_<CUR>.txt`
    AddressList,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "tagpack" => Format::TagPack,
            "actorpack" => Format::ActorPack,
            "sdn" | "sdn-xml" | "ofac" => Format::SdnXml,
            "list" | "ofac-list" => Format::AddressList,
            "csv" => Format::Csv,
            _ => return None,
        })
    }
}

/// What one file contributed.
#[derive(Debug)]
pub struct Imported {
    pub file: String,
    pub format: Format,
    pub source: String,
    pub version: String,
    pub stats: ImportStats,
    /// Only for ActorPacks (also stored, see `TagStore::actor`).
    pub actors: Vec<Actor>,
}

/// Sniff the format from the first bytes and the name.
pub fn detect_format(path: &Path, head: &[u8]) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_string();
    let text = String::from_utf8_lossy(head);
    if head.starts_with(b"BZh")
        || text.trim_start().starts_with("<?xml")
        || text.contains("<Sanctions")
    {
        Some(Format::SdnXml)
    } else if name.starts_with("sanctioned_addresses_") && name.ends_with(".txt") {
        Some(Format::AddressList)
    } else if text.lines().any(|l| l.starts_with("actors:")) {
        Some(Format::ActorPack)
    } else if text
        .lines()
        .any(|l| l.starts_with("tags:") || l.starts_with("title:"))
    {
        Some(Format::TagPack)
    } else if text
        .lines()
        .next()
        .is_some_and(|l| l.to_ascii_lowercase().contains("address") && l.contains(','))
    {
        Some(Format::Csv)
    } else {
        None
    }
}

/// Import one file. `version` overrides the version date; by default the SDN DateOfIssue,
/// the newest `lastmod` of a TagPack, else today's date (UTC). The source name is
/// `ofac-sdn`, `ofac-list:<CUR>`, `graphsense:<file stem>`, or `user:<file stem>` for CSV,
/// unless `source` is given.
pub fn import_path(
    store: &mut TagStore,
    path: &Path,
    format: Option<Format>,
    source: Option<&str>,
    version: Option<&str>,
) -> Result<Imported, TagError> {
    let file = path.display().to_string();
    let io = |e| TagError::Io {
        path: file.clone(),
        source: e,
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let format = match format {
        Some(f) => f,
        None => {
            use std::io::Read;
            let mut head = vec![0u8; 64 * 1024];
            let n = std::fs::File::open(path)
                .and_then(|mut f| f.read(&mut head))
                .map_err(io)?;
            detect_format(path, &head[..n]).ok_or_else(|| TagError::Parse {
                file: file.clone(),
                msg: "unknown format; give --format tagpack|actorpack|sdn|list|csv".into(),
            })?
        }
    };
    let today = today();
    let (src, ver, labels, actors) = match format {
        Format::SdnXml => {
            let (v, ls) = ofac::parse_sdn_advanced_file(path)?;
            (
                source.map(String::from).unwrap_or(ofac::OFAC_SOURCE.into()),
                v,
                ls,
                vec![],
            )
        }
        Format::AddressList => {
            let cur = stem
                .strip_prefix("sanctioned_addresses_")
                .unwrap_or(&stem)
                .to_string();
            let ls =
                ofac::parse_address_list(&std::fs::read_to_string(path).map_err(io)?, &cur, &file)?;
            (
                source
                    .map(String::from)
                    .unwrap_or(format!("ofac-list:{}", crate::normalize_currency(&cur))),
                today.clone(),
                ls,
                vec![],
            )
        }
        Format::TagPack => {
            let src = source
                .map(String::from)
                .unwrap_or(format!("graphsense:{stem}"));
            let ls = parse_tagpack(&std::fs::read_to_string(path).map_err(io)?, &file, &src)?;
            let v = ls
                .iter()
                .filter_map(|l| l.lastmod.clone())
                .max()
                .unwrap_or(today.clone());
            (src, v, ls, vec![])
        }
        Format::Csv => {
            let src = source.map(String::from).unwrap_or(format!("user:{stem}"));
            let ls = parse_user_csv(&std::fs::read_to_string(path).map_err(io)?, &file, &src)?;
            (src, today.clone(), ls, vec![])
        }
        Format::ActorPack => {
            let a = parse_actorpack(&std::fs::read_to_string(path).map_err(io)?, &file)?;
            let src = source
                .map(String::from)
                .unwrap_or(format!("graphsense-actors:{stem}"));
            let ver = version.map(String::from).unwrap_or(today);
            store.import_actors_from(Some((&src, &ver)), &a)?;
            return Ok(Imported {
                file,
                format,
                source: src,
                version: ver,
                stats: ImportStats::default(),
                actors: a,
            });
        }
    };
    let mut ver = version.map(String::from).unwrap_or(ver);
    // A pack whose lastmod is older than what is stored is still the current content.
    if version.is_none() {
        if let Some(cur) = store
            .source_info(&src)?
            .and_then(|i| i.versions.last().cloned())
        {
            if cur > ver {
                ver = cur;
            }
        }
    }
    let stats = store.import(&src, &ver, labels)?;
    Ok(Imported {
        file,
        format,
        source: src,
        version: ver,
        stats,
        actors,
    })
}

/// Today's UTC date from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::prices::date_of(secs)
}
