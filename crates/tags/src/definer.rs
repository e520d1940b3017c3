//! Naming a cluster from the labels of its addresses.

use crate::label::Label;

/// Rank of a GraphSense confidence class (higher is stronger). Unknown classes rank lowest;
/// numeric confidences (0-100) are taken as they are.
pub fn confidence_score(c: Option<&str>) -> u32 {
    match c.unwrap_or("") {
        "ownership" => 100,
        "authority_data" => 95,
        "ledger_immanent" => 90,
        "forensic" => 80,
        "service_data" => 70,
        "manual_transaction" | "untrusted_transaction" => 50,
        "web_crawl" => 40,
        "heuristic" => 30,
        s => s.parse().unwrap_or(10).min(100),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub name: String,
    pub score: u32,
    pub source: String,
}

fn name_of(l: &Label) -> String {
    l.actor.clone().unwrap_or_else(|| l.label.clone())
}

/// The cluster name: the actor (else label) of the highest-confidence definer label. Every
/// other definer naming something else is returned as a conflict, strongest first; ties at
/// the top are broken by name so the result is deterministic, and the loser is a conflict.
pub fn best_definer(labels: &[Label]) -> (Option<String>, Vec<Conflict>) {
    let mut defs: Vec<(u32, String, String)> = labels
        .iter()
        .filter(|l| l.is_cluster_definer)
        .map(|l| {
            (
                confidence_score(l.confidence.as_deref()),
                name_of(l),
                l.source.clone(),
            )
        })
        .collect();
    defs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let Some(best) = defs.first().map(|d| d.1.clone()) else {
        return (None, vec![]);
    };
    let mut conflicts: Vec<Conflict> = Vec::new();
    for (score, name, source) in defs {
        if name != best && !conflicts.iter().any(|c| c.name == name) {
            conflicts.push(Conflict {
                name,
                score,
                source,
            });
        }
    }
    (Some(best), conflicts)
}
