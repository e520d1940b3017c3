//! An in-memory map from normalized address to its labels, for screening many addresses.

use crate::error::TagError;
use crate::store::TagStore;
use std::collections::HashMap;

/// A label reduced to what screening shows; strings are shared between addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactLabel {
    pub label: std::sync::Arc<str>,
    pub category: Option<std::sync::Arc<str>>,
    pub source: std::sync::Arc<str>,
    pub is_cluster_definer: bool,
}

pub struct TagSnapshot {
    map: HashMap<Box<str>, Vec<CompactLabel>>,
}

impl TagSnapshot {
    /// Labels of `currency` visible at `as_of`.
    pub fn build(
        store: &TagStore,
        currency: &str,
        as_of: Option<&str>,
    ) -> Result<TagSnapshot, TagError> {
        let cur = crate::label::normalize_currency(currency);
        let mut interned: HashMap<String, std::sync::Arc<str>> = HashMap::new();
        let mut intern = |s: &str| {
            interned
                .entry(s.to_string())
                .or_insert_with(|| s.into())
                .clone()
        };
        let mut map: HashMap<Box<str>, Vec<CompactLabel>> = HashMap::new();
        store.for_each(as_of, |l| {
            if l.currency == cur {
                if let Some(a) = l.address() {
                    let c = CompactLabel {
                        label: intern(&l.label),
                        category: l.category.as_deref().map(&mut intern),
                        source: intern(&l.source),
                        is_cluster_definer: l.is_cluster_definer,
                    };
                    map.entry(a.into()).or_default().push(c);
                }
            }
            true
        })?;
        Ok(TagSnapshot { map })
    }

    /// `addr` must be normalized (`normalize_address`) already; bech32 is lower-case.
    pub fn get(&self, addr: &str) -> &[CompactLabel] {
        self.map.get(addr).map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
