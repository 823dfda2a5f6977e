//! `POST /hooks/{path}`: the webhook trigger's door.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::redact::{CREDENTIAL_HEADERS, REDACTED};
use crate::store::Enqueued;
use crate::trigger::{Event, webhook};

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
    request_body(content = Object, description = "JSON, form-urlencoded or text", content_type = "application/json"),
    responses(
        (status = 202, description = "Stored durably; the run is queued", body = Accepted),
        (status = 200, description = "A repeated delivery (same dedup key): no new run", body = Duplicate),
        (status = 400, description = "The body claims JSON and is not", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No recipe listens at this path", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down: try again after Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(super) async fn receive(
    State(state): State<AppState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::response::Response, Problem> {
    let received_at = Utc::now();
    if !state.accepting.load(std::sync::atomic::Ordering::SeqCst) {
        // The sender retries later, against this daemon restarted or another one.
        return Err(Problem::unavailable("the daemon is shutting down", RETRY_AFTER_SECONDS));
    }
    let recipes = state.recipes.current();
    let path = path.trim_matches('/');
    let recipe = recipes
        .by_hook_path(path)
        .ok_or_else(|| Problem::not_found(format!("no recipe listens at /hooks/{path}")))?;

    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let payload = webhook::parse_body(content_type, &body).map_err(|error| Problem::bad_request(error.to_string()))?;
    let mut event = Event {
        recipe: recipe.id.clone(),
        recipe_version: recipe.version.clone(),
        trigger: recipe.trigger.kind(),
        payload,
        headers: stored_headers(&headers),
        query: webhook::query_object(query.as_deref()),
        received_at,
        dedup_key: None,
    };
    event.dedup_key = webhook::dedup_key(&state.templates, recipe, &event);
    // Committed before the answer: once the sender sees 202, a crash loses nothing.
    match state.store.enqueue(&event).await.map_err(Problem::internal)? {
        Enqueued::New(run_id) => {
            state.waker.wake();
            Ok((
                StatusCode::ACCEPTED,
                Json(Accepted {
                    run_id,
                    status: "queued",
                }),
            )
                .into_response())
        }
        Enqueued::Duplicate(run_id) => Ok((
            StatusCode::OK,
            Json(Duplicate {
                run_id,
                duplicate: true,
            }),
        )
            .into_response()),
    }
}

/// The answer to a delivery whose dedup key was seen before.
#[derive(Serialize, ToSchema)]
pub(super) struct Duplicate {
    /// The first run with this key.
    run_id: String,
    /// Always `true`.
    duplicate: bool,
}

/// The request's headers as stored: the sender's credentials replaced, because
/// the run keeps its trigger input for replay and shows it through the API.
fn stored_headers(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    let mut object = crate::headers::to_object(headers);
    for name in CREDENTIAL_HEADERS {
        if let Some(value) = object.get_mut(*name) {
            *value = serde_json::Value::String(REDACTED.to_owned());
        }
    }
    object
}
