//! Screening: an address, a transaction, one output (a deposit), or a batch of them. The
//! answer is the engine's, as `cointrail screen --json` prints it.

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::{AppState, Snapshot};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cointrail_chain::view::ChainView;
use cointrail_chain::AddressKey;
use cointrail_engine::{SoftExposure, Subject};
use cointrail_risk::{ExposureParams, Screening};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A screening of either chain: Bitcoin's, or an EVM address's (per asset).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AnyScreening {
    Bitcoin(Screening),
    Evm(cointrail_risk::account::AccountScreening),
}

/// What `/v1/screen/address/{address}` answers: a Bitcoin screening (with `soft_exposure`
/// when `soft=true` asks for it), or an EVM address's (per asset).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressScreening {
    Bitcoin(ScreeningAnswer),
    Evm(cointrail_risk::account::AccountScreening),
}

/// A Bitcoin screening; with `soft=true`, also its soft exposure, as
/// `cointrail --json screen SUBJECT --soft` prints it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScreeningAnswer {
    #[serde(flatten)]
    pub screening: Screening,
    /// Only with `soft=true` (issue 19): soft (not proven) exposure to the stored cases, per
    /// case and output of the subject: the satoshis that the soft hops of a case's trace
    /// (mixer demixing, CoinJoin change, post-mix cash-outs) put there. Never part of
    /// `exposure`, `risk` or `fired_rules`, which are the same as without `soft`. Empty when
    /// no soft hop of a stored case reaches the subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<SoftExposureRow>>)]
    pub soft_exposure: Option<Vec<SoftExposure>>,
}

/// One row of `soft_exposure` (the engine's `SoftExposure`, serialized as is).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SoftExposureRow {
    /// The stored case whose trace's soft hops reach the subject.
    pub case: String,
    /// `TXID:VOUT` of the subject's output.
    pub output: String,
    /// Satoshis the case's soft hops put on that output (not proven taint).
    pub soft_sats: u64,
    /// Hops from the case's sources.
    pub hops: u32,
    /// The soft rules the case's trace followed (`GET /v1/cases/{name}/trace` lists each hop).
    pub rules_in_case: Vec<String>,
}

/// The schema above names every field of the engine's row: a field added there fails to
/// compile here until the schema documents it.
#[allow(dead_code)]
fn soft_row_schema_matches(x: SoftExposure) -> SoftExposureRow {
    let SoftExposure {
        case,
        output,
        soft_sats,
        hops,
        rules_in_case,
    } = x;
    SoftExposureRow {
        case,
        output,
        soft_sats,
        hops,
        rules_in_case,
    }
}

/// A value with a 0x prefix is meant for an EVM chain (no Bitcoin address has one).
pub(crate) fn is_evm(s: &str) -> bool {
    s.trim()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("0x"))
}

/// Most hops a request may ask for: each hop multiplies the work.
pub const MAX_HOPS: u32 = 6;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutputQuery {
    /// Hops followed through unattributed addresses (0 to 6; default: the server's, 3).
    #[param(minimum = 0, maximum = 6)]
    pub max_hops: Option<u32>,
    /// `in` (default): where the output's coins came from (a deposit); `out`: whom the
    /// output pays (a withdrawal).
    #[param(pattern = "^(in|out)$")]
    pub direction: Option<String>,
    /// `true`: also report soft (not proven) exposure to the stored cases in a
    /// `soft_exposure` field (with `direction=in` only); `false` or absent: no such field.
    #[param(value_type = Option<bool>)]
    pub soft: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScreenQuery {
    /// Hops followed through unattributed addresses (0 to 6; default: the server's, 3).
    #[param(minimum = 0, maximum = 6)]
    pub max_hops: Option<u32>,
    /// Ethereum addresses only (400 otherwise): how many transfers of a counterparty's list
    /// a branch of the walk reads (the newest; the older rest is `beyond_branch_reads`;
    /// the subject's own lists are read whole); 0: no cap. Default 32.
    pub max_branch_reads: Option<usize>,
    /// `true`: also report soft (not proven) exposure to the stored cases in a
    /// `soft_exposure` field (Bitcoin subjects only); `false` or absent: no such field.
    #[param(value_type = Option<bool>)]
    pub soft: Option<String>,
}

/// `max_branch_reads` bounds the account walk: a Bitcoin subject has no use for it.
fn no_branch_reads(q: &ScreenQuery) -> Result<(), ApiError> {
    match q.max_branch_reads {
        Some(_) => Err(ApiError::invalid(
            "max_branch_reads",
            "max_branch_reads applies to Ethereum (0x) addresses only".to_string(),
        )),
        None => Ok(()),
    }
}

/// `soft=true|false` (absent: false).
fn soft_flag(v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(x) => Err(ApiError::invalid(
            "soft",
            format!("soft '{x}' is neither true nor false"),
        )),
    }
}

fn params(snap: &Snapshot, max_hops: Option<u32>) -> Result<ExposureParams, ApiError> {
    let mut p = snap.engine.params.clone();
    if let Some(h) = max_hops {
        if h > MAX_HOPS {
            return Err(ApiError::invalid(
                "max_hops",
                format!("max_hops is at most {MAX_HOPS}"),
            ));
        }
        p.max_hops = h;
    }
    Ok(p)
}

pub(crate) fn check_address(snap: &Snapshot, a: &str, field: &str) -> Result<u32, ApiError> {
    let idx = &snap.engine.index;
    let key = AddressKey::parse(a.trim(), idx.render_network())
        .map_err(|m| ApiError::invalid(field, m))?;
    idx.lookup_addr(&key).ok_or_else(|| {
        ApiError::not_found(format!(
            "address {a} never appears in the indexed chain (up to height {}): it has no on-chain history to screen yet",
            idx.tip_height().map_or("-".into(), |h| h.to_string())
        ))
        .with_field(field)
    })
}

pub(crate) fn check_txid(snap: &Snapshot, t: &str, field: &str) -> Result<u32, ApiError> {
    let raw = cointrail_engine::Engine::parse_txid(t)
        .map_err(|_| ApiError::invalid(field, format!("'{t}' is not a txid (64 hex digits)")))?;
    let idx = &snap.engine.index;
    idx.lookup_txid(&raw).ok_or_else(|| {
        ApiError::not_found(format!(
            "transaction {t} is not in the index (heights {}..={})",
            idx.start_height(),
            idx.tip_height().map_or("-".into(), |h| h.to_string())
        ))
        .with_field(field)
    })
}

/// Validate a subject against the snapshot, then screen it. `field` names the txid or address
/// in an error, `vout_field` the output index (in a batch both are the one subject string).
fn screen_subject(
    snap: &Snapshot,
    subject: &Subject,
    p: &ExposureParams,
    field: &str,
    vout_field: &str,
) -> Result<Screening, ApiError> {
    check_subject(snap, subject, field, vout_field)?;
    let mut s = snap
        .engine
        .screen_with(subject, p)
        .map_err(|e| ApiError::internal(cointrail_engine::error_text(&e)))?;
    s.provenance["snapshot"] = serde_json::json!(snap.number);
    Ok(s)
}

/// A subject's address, txid and output index must be in the index (400 or 404 naming the
/// field otherwise).
fn check_subject(
    snap: &Snapshot,
    subject: &Subject,
    field: &str,
    vout_field: &str,
) -> Result<(), ApiError> {
    match subject {
        Subject::Address(a) => {
            check_address(snap, a, field)?;
        }
        Subject::Tx(t) => {
            check_txid(snap, t, field)?;
        }
        Subject::Output(t, vout) => {
            let tx = check_txid(snap, t, field)?;
            let n = snap.engine.index.tx_outputs(tx);
            if *vout as u64 >= n.end - n.start {
                return Err(ApiError::not_found(format!(
                    "transaction {t} has {} outputs; there is no output {vout}",
                    n.end - n.start
                ))
                .with_field(vout_field));
            }
        }
    }
    Ok(())
}

/// What one screening cost the server, measured on the thread that ran it (the screening
/// runs on one thread without yielding): wall time, CPU time and page faults, from
/// the thread's CPU clock and `getrusage(RUSAGE_THREAD)` before and after (four system
/// calls, about a microsecond).
/// Sent as a `server-timing` header, so a client can tell a request that did much work
/// (CPU) from one that waited: for the disk (major faults), or for a core (wall above CPU).
/// `scripts/bench-screen-rank.sh` ranks subjects by it.
pub(crate) struct Work {
    wall: std::time::Instant,
    cpu: Option<i64>,
    usage: Option<libc::rusage>,
}

/// This thread's CPU time in nanoseconds (exact: getrusage's thread times are only brought
/// up to date at scheduler ticks, too coarse for a request of a tenth of a millisecond).
fn thread_cpu_ns() -> Option<i64> {
    // SAFETY: clock_gettime only writes the struct it is given.
    unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        (libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) == 0)
            .then(|| t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64)
    }
}

fn thread_usage() -> Option<libc::rusage> {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_THREAD, &mut u) == 0).then_some(u)
    }
}

impl Work {
    pub(crate) fn start() -> Work {
        Work {
            wall: std::time::Instant::now(),
            cpu: thread_cpu_ns(),
            usage: thread_usage(),
        }
    }

    /// `screen;dur=WALL_MS, cpu;dur=CPU_MS, faults;desc="minor N major M"`.
    pub(crate) fn value(&self) -> String {
        let wall = self.wall.elapsed().as_secs_f64() * 1e3;
        let cpu = self
            .cpu
            .zip(thread_cpu_ns())
            .map(|(a, b)| (b - a) as f64 / 1e6);
        match (cpu, &self.usage, thread_usage()) {
            (Some(cpu), Some(a), Some(b)) => {
                format!(
                    "screen;dur={wall:.3}, cpu;dur={cpu:.3}, faults;desc=\"minor {} major {}\"",
                    b.ru_minflt - a.ru_minflt,
                    b.ru_majflt - a.ru_majflt
                )
            }
            _ => format!("screen;dur={wall:.3}"),
        }
    }

    pub(crate) fn header(&self, r: &mut Response) {
        if let Ok(v) = axum::http::HeaderValue::from_str(&self.value()) {
            r.headers_mut().insert("server-timing", v);
        }
    }
}

/// Screen a subject; with `soft`, also its soft exposure (the stored cases traced with soft
/// hops, off the async threads). Without it the answer is the screening alone, as before.
async fn answer(
    st: &Arc<AppState>,
    subject: Subject,
    max_hops: Option<u32>,
    soft: bool,
    field: &str,
) -> Result<Response, ApiError> {
    let snap = st.snapshot();
    let p = params(&snap, max_hops)?;
    let work = Work::start();
    let s = screen_subject(&snap, &subject, &p, field, "vout")?;
    st.metrics.screened_subjects.fetch_add(1, Ordering::Relaxed);
    if !soft {
        let mut r = Json(s).into_response();
        work.header(&mut r);
        return Ok(r);
    }
    let st2 = st.clone();
    let x = tokio::task::spawn_blocking(move || {
        crate::state::with_stores(&st2, || snap.engine.soft_exposure(&subject))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(ScreeningAnswer {
        screening: s,
        soft_exposure: Some(x),
    })
    .into_response())
}

/// Screen an address: where its funds came from and where they went. A 0x address is
/// screened on Ethereum (as `/v1/ethereum/screen/address/{address}`).
#[utoipa::path(get, path = "/v1/screen/address/{address}", tag = "screening",
    params(("address" = String, Path, description = "A Bitcoin address of the index's network, or an Ethereum 0x address"), ScreenQuery),
    responses(
        (status = 200, description = "Exposure and risk (and, with `soft=true`, soft exposure apart)", body = AddressScreening),
        (status = 400, description = "Not a valid address for this network, or a bad parameter (`soft` is for Bitcoin addresses)", body = crate::error::ErrorBody),
        (status = 404, description = "The address never appears in the indexed chain", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn address(
    State(st): State<Arc<AppState>>,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<ScreenQuery>,
) -> Result<Response, ApiError> {
    let soft = soft_flag(q.soft.as_deref())?;
    if is_evm(&address) {
        if soft {
            return Err(ApiError::invalid(
                "soft",
                "soft exposure is reported for Bitcoin subjects: an Ethereum address's screening has no soft hops; drop soft",
            ));
        }
        let snap = st.snapshot();
        let s =
            crate::routes::evm::screen(&snap, &address, q.max_hops, q.max_branch_reads, "address")?;
        st.metrics.screened_subjects.fetch_add(1, Ordering::Relaxed);
        return Ok(crate::routes::evm::json_response(&AnyScreening::Evm(s)));
    }
    no_branch_reads(&q)?;
    answer(&st, Subject::Address(address), q.max_hops, soft, "address").await
}

/// Screen a transaction: the origins of its inputs and the destinations of its outputs.
#[utoipa::path(get, path = "/v1/screen/transaction/{txid}", tag = "screening",
    params(("txid" = String, Path, description = "Transaction id, 64 hex digits", pattern = "^[0-9a-fA-F]{64}$"), ScreenQuery),
    responses(
        (status = 200, description = "Exposure and risk (and, with `soft=true`, soft exposure apart)", body = ScreeningAnswer),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn transaction(
    State(st): State<Arc<AppState>>,
    ApiPath(txid): ApiPath<String>,
    ApiQuery(q): ApiQuery<ScreenQuery>,
) -> Result<Response, ApiError> {
    no_branch_reads(&q)?;
    let soft = soft_flag(q.soft.as_deref())?;
    answer(&st, Subject::Tx(txid), q.max_hops, soft, "txid").await
}

/// Screen one output: a deposit before it is credited (`direction=in`, the default), or a
/// withdrawal before it is sent on (`direction=out`: whom the output pays).
#[utoipa::path(get, path = "/v1/screen/output/{txid}/{vout}", tag = "screening",
    params(("txid" = String, Path, description = "Transaction id, 64 hex digits", pattern = "^[0-9a-fA-F]{64}$"),
           ("vout" = u32, Path, description = "Output index", minimum = 0, maximum = 4294967295_u64), OutputQuery),
    responses(
        (status = 200, description = "Exposure and risk of the coins in this output (and, with `soft=true`, soft exposure apart)", body = ScreeningAnswer),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn output(
    State(st): State<Arc<AppState>>,
    ApiPath((txid, vout)): ApiPath<(String, u32)>,
    ApiQuery(q): ApiQuery<OutputQuery>,
) -> Result<Response, ApiError> {
    let soft = soft_flag(q.soft.as_deref())?;
    match q.direction.as_deref() {
        None | Some("in") => {
            answer(&st, Subject::Output(txid, vout), q.max_hops, soft, "txid").await
        }
        Some("out") if soft => Err(ApiError::invalid(
            "soft",
            "soft exposure reports where an output's coins came from: drop soft or direction=out",
        )),
        Some("out") => {
            let snap = st.snapshot();
            let p = params(&snap, q.max_hops)?;
            let subject = Subject::Output(txid.clone(), vout);
            let work = Work::start();
            check_subject(&snap, &subject, "txid", "vout")?;
            let mut s = snap
                .engine
                .screen_output_forward(&txid, vout, &p)
                .map_err(|e| ApiError::internal(cointrail_engine::error_text(&e)))?;
            s.provenance["snapshot"] = serde_json::json!(snap.number);
            st.metrics.screened_subjects.fetch_add(1, Ordering::Relaxed);
            let mut r = Json(s).into_response();
            work.header(&mut r);
            Ok(r)
        }
        Some(d) => Err(ApiError::invalid(
            "direction",
            format!("direction '{d}' is neither in nor out"),
        )),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Addresses (Bitcoin, or Ethereum 0x), `TXID`s or `TXID:VOUT` outputs, in any mix (at most the server's
    /// `--max-batch`, 1000 by default).
    #[schema(min_items = 1, max_items = 1000)]
    pub subjects: Vec<String>,
    /// Hops followed through unattributed addresses (0 to 6).
    #[schema(minimum = 0, maximum = 6)]
    #[serde(default, deserialize_with = "crate::error::de_opt_u32")]
    pub max_hops: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screening: Option<AnyScreening>,
    /// Why this subject could not be screened (the others still are).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// One per subject, in the request's order.
    pub results: Vec<BatchItem>,
    /// The snapshot every result was computed on.
    pub snapshot: u64,
}

/// Screen many subjects on one snapshot. Each subject counts against the key's rate limit.
#[utoipa::path(post, path = "/v1/screen/batch", tag = "screening",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per subject", body = BatchResponse),
        (status = 400, description = "Broken JSON, no subjects, or more subjects than the server or the key's burst allows", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = crate::error::ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn batch(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if req.subjects.is_empty() {
        return Err(ApiError::invalid("subjects", "subjects is empty"));
    }
    if req.subjects.len() > st.cfg.max_batch {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "too_large",
            format!(
                "{} subjects; a batch holds at most {}: split it",
                req.subjects.len(),
                st.cfg.max_batch
            ),
        )
        .with_field("subjects"));
    }
    // The request itself took one token.
    if let Some(k) = &caller.key {
        // A bucket never holds more than the burst: a larger batch could never be admitted,
        // and a 429 would have the client retry forever.
        let burst = k.burst.max(1) as usize;
        if req.subjects.len() > burst {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "too_large",
                format!(
                    "{} subjects; key '{}' allows a burst of {burst} (a batch costs one per subject), so this batch can never be admitted: split it into batches of at most {burst}, or create a key with a larger --burst",
                    req.subjects.len(),
                    k.name
                ),
            )
            .with_field("subjects"));
        }
        let extra = (req.subjects.len() - 1) as u32;
        if extra > 0 {
            st.take_tokens(k, extra).map_err(ApiError::rate_limited)?;
        }
    }
    let snap = st.snapshot();
    let p = params(&snap, req.max_hops)?;
    let number = snap.number;
    let st2 = st.clone();
    let results = tokio::task::spawn_blocking(move || {
        req.subjects
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let field = format!("subjects[{i}]");
                let r = if is_evm(s) {
                    crate::routes::evm::screen(&snap, s, Some(p.max_hops), None, &field)
                        .map(AnyScreening::Evm)
                } else {
                    match Subject::parse(s) {
                        Ok(sub) => screen_subject(&snap, &sub, &p, &field, &field)
                            .map(AnyScreening::Bitcoin),
                        Err(e) => Err(ApiError::invalid(&field, cointrail_engine::error_text(&e))),
                    }
                };
                st2.metrics
                    .screened_subjects
                    .fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(s2) => BatchItem {
                        subject: s.clone(),
                        screening: Some(s2),
                        error: None,
                    },
                    Err(e) => BatchItem {
                        subject: s.clone(),
                        screening: None,
                        error: Some(e.body),
                    },
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(BatchResponse {
        results,
        snapshot: number,
    }))
}
