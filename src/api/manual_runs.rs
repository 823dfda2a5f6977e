//! `POST /api/v1/recipes/{id}/runs`: a run of any recipe, now, with the request's
//! JSON body as its payload.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::event::Event;

/// The answer to a started run.
#[derive(Serialize, ToSchema)]
pub(super) struct Started {
    run_id: String,
}

#[utoipa::path(post, path = "/api/v1/recipes/{id}/runs", tag = "recipes",
    params(("id" = String, Path, description = "Recipe id")),
    request_body(content = Option<Value>, description = "The run's payload: any JSON value; an empty or absent body is `{}`", content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; the run is queued. Its trigger is `manual`", body = Started),
        (status = 400, description = "The body is not JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No loaded recipe with this id", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down: try again after Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Started>), Problem> {
    state.refuse_when_stopping()?;
    let recipes = state.recipes.current();
    let recipe = recipes
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("there is no loaded recipe `{id}`")))?;
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&body).map_err(|error| Problem::bad_request(format!("the body is not JSON: {error}")))?
    };
    let event = Event {
        run_id: uuid::Uuid::now_v7().to_string(),
        recipe: recipe.id.clone(),
        recipe_version: recipe.version.clone(),
        trigger: "manual",
        payload,
        payload_text: None,
        headers: Map::new(),
        query: Map::new(),
        received_at: Utc::now(),
        dedup_key: None,
        replay_of: None,
    };
    let run_id = state.start_run(event).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { run_id })))
}
