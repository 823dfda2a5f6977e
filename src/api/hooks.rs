//! `POST /hooks/{path}`: the webhook trigger's door.

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use http_body_util::{BodyExt as _, LengthLimitError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use std::net::SocketAddr;
use std::time::Duration;

use super::body_memory::{BodyMemory, HeldBytes};
use super::connections::ConnectionProgress;
use super::{AppState, Problem, ProblemDocument, Scope, Throttled, metrics};
use crate::engine::RunEnd;
use crate::recipe::{Respond, Trigger};
use crate::redact::Redactor;
use crate::store::{Enqueued, RunStatus};
use crate::trigger::webhook;

/// What `Retry-After` says when webhooks are refused for a while.
const RETRY_AFTER_SECONDS: u32 = 5;

/// The answer to an accepted webhook.
#[derive(Serialize, ToSchema)]
pub(super) struct Accepted {
    run_id: String,
    /// `queued`.
    status: &'static str,
}

#[utoipa::path(post, path = "/hooks/{path}", tag = "webhooks",
    params(("path" = String, Path, description = "The recipe's webhook path")),
    request_body(content = Option<Value>, description = "Any JSON value (an object, an array, `true`, a number…), form-urlencoded or text; an empty body is the payload `null`", content_type = "application/json"),
    responses(
        (status = 202, description = "Stored durably; the run is queued", body = Accepted),
        (status = 200, description = "A repeated delivery (same dedup key): no new run; or, with `respond: wait`, the last step's status and body", body = Duplicate),
        (status = 502, description = "`respond: wait`: the run failed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 504, description = "`respond: wait`: the run did not end in time; it goes on", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 400, description = "The body claims JSON and is not", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "The recipe's `verify` refused the request (the answer does not say why)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No recipe listens at this path", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "The body is over FERRY_MAX_BODY", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited: Retry-After, RateLimit and RateLimit-Policy say for how long", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down, too many webhooks waiting to be stored or held in memory, or the storage refuses writes (a full disk): try again after Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(super) async fn receive(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    path: Path<String>,
    query: RawQuery,
    progress: Option<Extension<ConnectionProgress>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let counted = state.metrics.clone();
    let progress = progress.map(|Extension(progress)| progress);
    let response = match handle(state, peer, path, query, progress, headers, body).await {
        Ok(response) | Err(response) => response,
    };
    counted.hook(metrics::hook_outcome(&response).0);
    response
}

async fn handle(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    progress: Option<ConnectionProgress>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let received_at = Utc::now();
    if !state.accepting.load(std::sync::atomic::Ordering::SeqCst) {
        // The sender retries later, against this daemon restarted or another one.
        return Err(Problem::unavailable("the daemon is shutting down", RETRY_AFTER_SECONDS).into());
    }
    let client = state.limits.client(peer, &headers);
    state.limits.admit(client).map_err(IntoResponse::into_response)?;
    let recipes = state.recipes.current();
    let path = path.trim_matches('/');
    let Some(recipe) = recipes.by_hook_path(path) else {
        // Scanning for hooks spends the failure budget of unknown paths only.
        state
            .limits
            .failed(client, &Scope::UnknownPaths)
            .map_err(IntoResponse::into_response)?;
        return Err(Problem::not_found(format!("no recipe listens at /hooks/{path}")).into());
    };
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    // While the body arrives, the client owes bytes: one that drips it gives its
    // connection slot up (see `connections.rs`).
    let reading = progress.as_ref().map(|ConnectionProgress(progress)| progress.as_ref());
    reading.inspect(|progress| progress.reading_body());
    let read = read_body(body, length, state.max_body, &state.body_memory).await;
    reading.inspect(|progress| progress.working());
    let (body, held) = read?;
    // Back-pressure: a bounded number of webhooks wait for the store at once.
    // Taken once the body is here: a client still sending holds no place.
    let Ok(_pending) = state.pending.try_acquire() else {
        return Err(Problem::unavailable(
            "too many webhooks are waiting to be stored; try again shortly",
            RETRY_AFTER_SECONDS,
        )
        .into());
    };

    // Over the raw bytes, before anything is parsed.
    let delivery_id = match &recipe.trigger {
        Trigger::Webhook {
            verify: Some(verifier), ..
        } => {
            // Made only where it is asked: a verified delivery needs none.
            let scope = || Scope::Recipe(recipe.id.as_str().into());
            // A guessable credential is not even compared while its guesser is
            // locked out; a signature is: it cannot be guessed, and the real
            // provider may share the attacker's address (a proxy).
            if verifier.is_guessable() {
                state
                    .limits
                    .locked(client, &scope())
                    .map_err(IntoResponse::into_response)?;
            }
            match verifier.check(&headers, &body, received_at.timestamp()) {
                Ok(verified) => verified.delivery_id,
                Err(rejected) => {
                    tracing::warn!(recipe = %recipe.id, scheme = verifier.scheme(), reason = %rejected, %client, "webhook refused: verification failed");
                    // Guessing secrets spends this recipe's failure budget.
                    state
                        .limits
                        .failed(client, &scope())
                        .map_err(IntoResponse::into_response)?;
                    return Err(Problem::new(StatusCode::UNAUTHORIZED, "the request could not be verified").into());
                }
            }
        }
        _ => None,
    };
    if let Trigger::Webhook { rate: Some(rate), .. } = &recipe.trigger
        && let Err(wait) = rate.check()
    {
        return Err(Throttled::recipe(rate.rate, wait).into_response());
    }

    let delivery = webhook::Delivery {
        headers: &headers,
        body: &body,
        query: query.as_deref(),
        received_at,
        delivery_id,
    };
    let event = webhook::event(&state.templates, recipe, delivery, &state.redact_headers)
        .map_err(|error| Problem::bad_request(error.to_string()))?;
    // The event holds what is kept: the raw bytes go now.
    drop(body);
    let respond = match recipe.trigger {
        Trigger::Webhook { respond, .. } => respond,
        // Only webhook recipes have a hook path.
        Trigger::Schedule { .. } | Trigger::Poll(_) | Trigger::Failure(_) => Respond::Accepted,
    };
    // Subscribed before the run is stored, so its end cannot slip past.
    let waiting = match respond {
        Respond::Wait { timeout } => Some((state.completions.subscribe(&event.run_id), timeout)),
        Respond::Accepted => None,
    };
    // Committed before the answer: once the sender sees 202, a crash loses nothing.
    let new_run_id = event.run_id.clone();
    let stored = state.engine.accept(event).await;
    // Stored (or refused): the body no longer counts against the memory budget.
    drop(held);
    let run_id = match stored {
        Ok(Enqueued::New(run_id)) => run_id,
        Ok(Enqueued::Duplicate(first)) => {
            state.completions.forget(&new_run_id);
            let duplicate = Duplicate {
                run_id: first,
                duplicate: true,
            };
            let mut response = (StatusCode::OK, Json(duplicate)).into_response();
            response.extensions_mut().insert(metrics::HookOutcome("duplicate"));
            return Ok(response);
        }
        Err(error) => {
            state.completions.forget(&new_run_id);
            return Err(Problem::store_error(&error).into());
        }
    };
    let Some((ended, timeout)) = waiting else {
        let accepted = Accepted {
            run_id,
            status: "queued",
        };
        return Ok((StatusCode::ACCEPTED, Json(accepted)).into_response());
    };
    match tokio::time::timeout(timeout, ended).await {
        Ok(Ok(end)) => Ok(respond_with(&run_id, &end, &recipe.redactor)),
        Ok(Err(_)) | Err(_) => {
            state.completions.forget(&run_id);
            Err(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "run {run_id} did not end within {} ms; it goes on: see /api/v1/runs/{run_id}",
                    timeout.as_millis()
                ),
            )
            .into())
        }
    }
}

/// The answer of a `respond: wait` webhook: the last step's status and body (a
/// `log` step's line as JSON); a skipped run answers what it was; a failed run is
/// `502` with the run's error. The caller is not authenticated: the answer is
/// redacted like everything else a run shows, so a destination that echoes the
/// credentials it was sent hands them to no one.
fn respond_with(run_id: &str, end: &RunEnd, redactor: &Redactor) -> Response {
    let last_step = end.last_step.as_ref().map(|last| redactor.value_cow(last));
    let mut response = match (end.status, last_step.as_deref()) {
        (RunStatus::Succeeded, Some(last)) if last.get("status").is_some() => {
            let status = last["status"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .and_then(|status| StatusCode::from_u16(status).ok())
                .unwrap_or(StatusCode::OK);
            match &last["body"] {
                Value::String(text) => (status, text.clone()).into_response(),
                Value::Null => status.into_response(),
                body => (status, Json(body.clone())).into_response(),
            }
        }
        (RunStatus::Succeeded, Some(last)) => Json(last.clone()).into_response(),
        (RunStatus::Failed, _) => Problem::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "run {run_id} failed: {}",
                end.error.as_deref().unwrap_or("no error recorded")
            ),
        )
        .into_response(),
        (status, _) => Json(serde_json::json!({"run_id": run_id, "status": status})).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(run_id) {
        response.headers_mut().insert(RUN_ID_HEADER, value);
    }
    response
}

/// How long a client may take to send a webhook's body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole body, within the size limit and the time limit, with the share of
/// the webhook memory budget it holds until it is stored.
async fn read_body(
    body: Body,
    length: Option<usize>,
    limit: usize,
    memory: &BodyMemory,
) -> Result<(Bytes, HeldBytes), Problem> {
    let limited = http_body_util::Limited::new(body, limit);
    // Sized once when the sender says how large it is: growing by doubling held
    // up to twice the body while it arrived.
    let capacity = length.unwrap_or(0).min(limit);
    match tokio::time::timeout(BODY_READ_TIMEOUT, collect(limited, capacity, memory)).await {
        Ok(Ok(collected)) => Ok(collected),
        Ok(Err(Collect::Held)) => Err(Problem::unavailable(
            format!(
                "webhook bodies already hold {} in memory (FERRY_MAX_BODY_MEMORY); try again shortly",
                memory.describe()
            ),
            RETRY_AFTER_SECONDS,
        )),
        Ok(Err(Collect::Body(error))) if error.downcast_ref::<LengthLimitError>().is_some() => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes (FERRY_MAX_BODY)"),
        )),
        Ok(Err(Collect::Body(error))) => Err(Problem::bad_request(format!("the body could not be read: {error}"))),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()),
        )),
    }
}

/// Why a body was not collected.
enum Collect {
    /// The webhook memory budget is spent.
    Held,
    Body(Box<dyn std::error::Error + Send + Sync>),
}

/// Reads the body frame by frame, taking each frame's bytes from the memory
/// budget before keeping it.
async fn collect(
    mut body: http_body_util::Limited<Body>,
    capacity: usize,
    memory: &BodyMemory,
) -> Result<(Bytes, HeldBytes), Collect> {
    let mut held = memory.none();
    if !memory.take(&mut held, capacity) {
        // Nothing is kept: the body is read and dropped below.
        held = memory.none();
    }
    let mut collected = Vec::with_capacity(if held.is_empty() { 0 } else { capacity });
    let mut refused = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Collect::Body)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // Refused, the rest is read and dropped: the sender gets its 503 rather
        // than a connection reset in the middle of its upload.
        let needed = (collected.len() + data.len()).saturating_sub(held.bytes());
        if refused || (needed > 0 && !memory.take(&mut held, needed)) {
            refused = true;
            collected = Vec::new();
            held = memory.none();
            continue;
        }
        collected.extend_from_slice(&data);
    }
    if refused {
        return Err(Collect::Held);
    }
    Ok((Bytes::from(collected), held))
}

/// Names the run behind a `respond: wait` answer.
const RUN_ID_HEADER: &str = "ferry-run-id";

/// The answer to a delivery whose dedup key was seen before.
#[derive(Serialize, ToSchema)]
pub(super) struct Duplicate {
    /// The first run with this key.
    run_id: String,
    /// Always `true`.
    duplicate: bool,
}
