//! "How did money get from A to B?": the shortest transaction paths between two addresses
//! within N hops, found by a breadth-first walk over spends (address → the transactions
//! spending its outputs → the addresses those pay).
//!
//! Hubs (addresses with more outputs than `hub_outputs`, typically exchanges) are not walked
//! through, as investigators expect: a path through an exchange's hot wallet joins everyone
//! to everyone and proves nothing. They may still be an end of the path.

use crate::error::{ApiError, ApiQuery};
use crate::routes::screen::check_address;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use cointrail_chain::view::{display_txid, AddrId, ChainView, TxNum};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

pub const MAX_PATH_HOPS: u32 = 8;
/// Work bound of one request, in outputs read.
const MAX_VISITS: usize = 300_000;
const MAX_PATHS: usize = 20;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// The address the money left.
    pub from: String,
    /// The address it reached.
    pub to: String,
    /// Most transactions on a path (1 to 8, default 4).
    #[param(minimum = 1, maximum = 8)]
    pub max_hops: Option<u32>,
    /// Addresses with more outputs than this are not walked through (default 1000).
    #[param(minimum = 1)]
    pub hub_outputs: Option<usize>,
}

#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct PathStep {
    /// The address paying.
    pub from: String,
    /// The transaction.
    pub txid: String,
    pub height: u32,
    /// The address paid.
    pub to: String,
    /// Satoshis the transaction paid to `to`.
    pub value: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PathAnswer {
    /// `forward` (from → to) or `backward` (no forward path; these go to → from).
    pub direction: Option<String>,
    /// Shortest paths first (at most 20), each a list of steps.
    pub paths: Vec<Vec<PathStep>>,
    pub hops: Option<u32>,
    /// Hubs met and not walked through.
    pub hubs_skipped: Vec<String>,
    /// True when the work bound stopped the search before `max_hops`.
    pub truncated: bool,
}

struct Edge {
    prev: AddrId,
    tx: TxNum,
    value: u64,
}

struct Search {
    /// For each address reached, the edges that reached it first (same depth).
    parents: HashMap<AddrId, Vec<Edge>>,
    hubs: Vec<AddrId>,
    truncated: bool,
    found_at: Option<u32>,
}

fn bfs(
    idx: &cointrail_index::Index,
    from: AddrId,
    to: AddrId,
    max_hops: u32,
    hub: usize,
) -> Search {
    let mut s = Search {
        parents: HashMap::new(),
        hubs: vec![],
        truncated: false,
        found_at: None,
    };
    let mut depth_of: HashMap<AddrId, u32> = HashMap::from([(from, 0)]);
    let mut level = vec![from];
    let mut visits = 0usize;
    for depth in 1..=max_hops {
        let mut next = Vec::new();
        for &a in &level {
            let outs = idx.addr_outputs(a);
            if a != from && outs.len() > hub {
                s.hubs.push(a);
                continue;
            }
            for o in outs {
                let Some(t) = idx.output_spender(o) else {
                    continue;
                };
                for o2 in idx.tx_outputs(t) {
                    visits += 1;
                    let Some(b) = idx.output_addr(o2) else {
                        continue;
                    };
                    if b == a {
                        continue;
                    }
                    match depth_of.get(&b) {
                        Some(&d) if d < depth => continue,
                        Some(_) => {}
                        None => {
                            depth_of.insert(b, depth);
                            next.push(b);
                        }
                    }
                    let v = s.parents.entry(b).or_default();
                    if !v.iter().any(|e| e.prev == a && e.tx == t) {
                        v.push(Edge {
                            prev: a,
                            tx: t,
                            value: idx.output_value(o2),
                        });
                    }
                }
            }
            if visits > MAX_VISITS {
                s.truncated = true;
                break;
            }
        }
        if depth_of.get(&to) == Some(&depth) {
            s.found_at = Some(depth);
            return s;
        }
        if s.truncated || next.is_empty() {
            return s;
        }
        next.sort_unstable();
        level = next;
    }
    s
}

/// Every shortest path, walking the parents back from `to` (at most MAX_PATHS).
fn unwind(
    idx: &cointrail_index::Index,
    s: &Search,
    from: AddrId,
    to: AddrId,
) -> Vec<Vec<PathStep>> {
    let mut out = Vec::new();
    let mut stack: Vec<(AddrId, Vec<PathStep>)> = vec![(to, vec![])];
    while let Some((a, tail)) = stack.pop() {
        if out.len() >= MAX_PATHS {
            break;
        }
        if a == from {
            let mut p = tail;
            p.reverse();
            out.push(p);
            continue;
        }
        for e in s.parents.get(&a).into_iter().flatten() {
            let mut t = tail.clone();
            t.push(PathStep {
                from: idx.render_addr(e.prev),
                txid: display_txid(idx.txid(e.tx)),
                height: idx.tx_height(e.tx),
                to: idx.render_addr(a),
                value: e.value,
            });
            stack.push((e.prev, t));
        }
    }
    out
}

/// Shortest transaction paths between two addresses within N hops, in either direction.
#[utoipa::path(get, path = "/v1/paths", tag = "chain", params(PathQuery),
    responses((status = 200, body = PathAnswer),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn paths(
    State(st): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Json<PathAnswer>, ApiError> {
    let max_hops = q.max_hops.unwrap_or(4);
    if !(1..=MAX_PATH_HOPS).contains(&max_hops) {
        return Err(ApiError::invalid(
            "max_hops",
            format!("max_hops is 1 to {MAX_PATH_HOPS}"),
        ));
    }
    let hub = q.hub_outputs.unwrap_or(1000);
    if hub == 0 {
        return Err(ApiError::invalid(
            "hub_outputs",
            "hub_outputs is at least 1",
        ));
    }
    let snap = st.snapshot();
    let from = check_address(&snap, &q.from, "from")?;
    let to = check_address(&snap, &q.to, "to")?;
    if from == to {
        return Err(ApiError::invalid("to", "from and to are the same address"));
    }
    let ans = tokio::task::spawn_blocking(move || {
        let idx = &snap.engine.index;
        let mut hubs = Vec::new();
        let mut truncated = false;
        for (dir, a, b) in [("forward", from, to), ("backward", to, from)] {
            let s = bfs(idx, a, b, max_hops, hub);
            hubs.extend(s.hubs.iter().copied());
            truncated |= s.truncated;
            if let Some(h) = s.found_at {
                return PathAnswer {
                    direction: Some(dir.into()),
                    paths: unwind(idx, &s, a, b),
                    hops: Some(h),
                    hubs_skipped: render(idx, hubs),
                    truncated,
                };
            }
        }
        PathAnswer {
            direction: None,
            paths: vec![],
            hops: None,
            hubs_skipped: render(idx, hubs),
            truncated,
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(ans))
}

fn render(idx: &cointrail_index::Index, mut v: Vec<AddrId>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v.truncate(50);
    v.into_iter().map(|a| idx.render_addr(a)).collect()
}
