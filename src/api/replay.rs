//! Replays: `POST /api/v1/runs/{id}/replay` runs a run's trigger input again,
//! against the recipe as it is now; `POST /api/v1/recipes/{id}/replay` does so
//! for a recipe's failed runs in a time range.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::event::Event;
use crate::recipe::Recipe;
use crate::store::{RunDocument, RunStatus};

/// Most runs one bulk replay starts; narrow the time range for more.
const MAX_BULK: usize = 1000;

/// The answer to a replay.
#[derive(Serialize, ToSchema)]
pub(super) struct Replayed {
    run_id: String,
}

/// The answer to a bulk replay.
#[derive(Serialize, ToSchema)]
pub(super) struct BulkReplayed {
    /// The new runs, oldest original first.
    run_ids: Vec<String>,
    /// `true` when more runs matched than one request replays (1000).
    truncated: bool,
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/replay", tag = "runs",
    params(("id" = String, Path, description = "The run to replay")),
    responses(
        (status = 202, description = "A new run with the same trigger input is queued; its `replay_of` is this run", body = Replayed),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "A read-only token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such run, or its recipe is not loaded", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down: try again after Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn replay_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Replayed>), Problem> {
    let run_id = replay_one(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { run_id })))
}

/// Queues a replay of run `id`; gives the new run's id.
pub(super) async fn replay_one(state: &AppState, id: &str) -> Result<String, Problem> {
    state.refuse_when_stopping()?;
    let original = state
        .store
        .run(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("there is no run `{id}`")))?;
    let recipes = state.recipes.current();
    let recipe = recipes.get(&original.summary.recipe).ok_or_else(|| {
        Problem::not_found(format!(
            "the recipe `{}` of run `{id}` is not loaded; it cannot be replayed",
            original.summary.recipe
        ))
    })?;
    state.start_run(replay_of(&original, recipe)).await
}

#[utoipa::path(post, path = "/api/v1/recipes/{id}/replay", tag = "recipes",
    params(
        ("id" = String, Path, description = "Recipe id"),
        ("status" = Option<RunStatus>, Query, description = "Which runs to replay (default `failed`)"),
        ("since" = Option<String>, Query, format = DateTime, description = "Received at or after (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "Received before (RFC 3339)"),
    ),
    responses(
        (status = 202, description = "One new run per matching run (at most 1000), each with `replay_of`", body = BulkReplayed),
        (status = 400, description = "A bad filter", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "A read-only token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No loaded recipe with this id", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down: try again after Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn replay_recipe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<BulkReplayed>), Problem> {
    state.refuse_when_stopping()?;
    let recipes = state.recipes.current();
    let recipe = recipes
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("there is no loaded recipe `{id}`")))?;
    let mut filter = super::runs::parse_filter(query.as_deref())?;
    if filter.recipe.as_ref().is_some_and(|recipe| *recipe != id) {
        return Err(Problem::bad_request("`recipe` is given by the path"));
    }
    filter.recipe = Some(id.clone());
    filter.status = Some(filter.status.unwrap_or(RunStatus::Failed));
    filter.limit = 500;

    // Newest first from the store; replayed oldest first, as they happened.
    let mut originals = Vec::new();
    let mut truncated = false;
    loop {
        let page = state.store.runs_page(&filter).await?;
        let full = page.len() == filter.limit as usize;
        filter.before = page.last().map(|run| run.id.clone());
        originals.extend(page.into_iter().map(|run| run.id));
        if originals.len() > MAX_BULK {
            originals.truncate(MAX_BULK);
            truncated = true;
            break;
        }
        if !full {
            break;
        }
    }
    originals.reverse();
    let mut run_ids = Vec::with_capacity(originals.len());
    for original in originals {
        if let Some(run) = state.store.run(&original).await? {
            run_ids.push(state.start_run(replay_of(&run, recipe)).await?);
        }
    }
    Ok((StatusCode::ACCEPTED, Json(BulkReplayed { run_ids, truncated })))
}

/// A new run with the original's trigger kind and input.
fn replay_of(original: &RunDocument, recipe: &Recipe) -> Event {
    let object = |value: &Value| value.as_object().cloned().unwrap_or_else(Map::new);
    Event {
        run_id: uuid::Uuid::now_v7().to_string(),
        recipe: recipe.id.clone(),
        recipe_version: recipe.version.clone(),
        trigger: trigger_kind(&original.summary.trigger),
        payload: original.payload.clone(),
        payload_text: None,
        headers: object(&original.headers),
        query: object(&original.query),
        received_at: Utc::now(),
        // A replay is meant to run again: it is never a duplicate.
        dedup_key: None,
        replay_of: Some(original.summary.id.clone()),
    }
}

fn trigger_kind(stored: &str) -> &'static str {
    ["webhook", "schedule", "poll", "failure", "manual"]
        .into_iter()
        .find(|kind| *kind == stored)
        .unwrap_or("manual")
}
