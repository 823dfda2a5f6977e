//! `GET /api/v1/recipes` and `GET /api/v1/recipes/{id}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::recipe::{Recipe, Trigger};
use crate::store::{PollOutcome, RunStatus, RunSummary, TriggerState};

/// How many coming fire times a recipe document lists.
const NEXT_FIRES: usize = 5;

/// Every recipe of the folder, loaded or not.
#[derive(Serialize, ToSchema)]
pub(super) struct RecipeList {
    recipes: Vec<RecipeListItem>,
    /// With `limit`: pass as `cursor` for the next page; `null` on the last (and
    /// always without `limit`).
    next_cursor: Option<String>,
}

/// The most recipes one page holds.
const MAX_LIMIT: usize = 1000;

/// One recipe in the list.
#[derive(Serialize, ToSchema)]
pub(super) struct RecipeListItem {
    id: String,
    description: Option<String>,
    /// The trigger kind (`webhook`, …); `null` when the recipe did not load.
    trigger: Option<&'static str>,
    enabled: bool,
    /// Whether a version of the recipe is in force.
    loaded: bool,
    /// Why the file does not load: one `file:line:col: message` per line. With
    /// `loaded: true`, the file's new version does not load and its previous
    /// version keeps running.
    error: Option<String>,
    last_run: Option<RunSummary>,
}

/// One loaded recipe.
#[derive(Serialize, ToSchema)]
pub(super) struct RecipeDocument {
    id: String,
    description: Option<String>,
    enabled: bool,
    /// Content hash of the file; every run records the version it ran with.
    version: String,
    file: String,
    trigger: TriggerDocument,
    /// Step ids in order.
    steps: Vec<String>,
    concurrency: u32,
    /// Runs of this recipe by status.
    runs: BTreeMap<&'static str, u64>,
    /// The file as written: `${NAME}` references, not their values.
    source: String,
    /// Schedule and poll triggers: the next 5 fire times, RFC 3339 with the time
    /// zone's offset; `null` for webhooks.
    next_fires: Option<Vec<String>>,
    /// Schedule and poll triggers: when the last tick happened.
    last_fired_at: Option<String>,
    /// Poll triggers: how the last poll went.
    last_poll: Option<PollOutcome>,
}

/// How a recipe is triggered.
#[derive(Serialize, ToSchema)]
pub(super) struct TriggerDocument {
    /// `webhook`, `schedule`, `poll` or `failure`.
    kind: &'static str,
    /// For webhooks: the path under `/hooks/`.
    path: Option<String>,
    /// For webhooks: where to send them.
    url: Option<String>,
    /// For schedules and polls: `cron EXPR (ZONE)` or `every DURATION`.
    schedule: Option<String>,
    /// For failure triggers: the ids of the recipes whose failed runs start a
    /// run, `["*"]` for all.
    recipes: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/api/v1/recipes", tag = "recipes",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000; without it, every recipe"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page: the recipes whose ids sort after this one"),
    ),
    responses(
        (status = 200, description = "Every recipe (or a page of them), by id", body = RecipeList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<RecipeList>, Problem> {
    let page = Page::parse(query.as_deref())?;
    let recipes = state.recipes.current();
    let mut listing = recipes.listing();
    if let Some(after) = &page.after {
        listing.retain(|entry| entry.id > *after);
    }
    let more = page.limit.is_some_and(|limit| listing.len() > limit);
    if let Some(limit) = page.limit {
        listing.truncate(limit);
    }
    let next_cursor = more.then(|| listing.last().map(|entry| entry.id.clone())).flatten();
    // The newest run of the listed recipes only: a page costs a page.
    let ids: Vec<&str> = listing.iter().map(|entry| entry.id.as_str()).collect();
    let mut last_runs = state.store.last_runs(&ids).await?;
    let listed = listing
        .into_iter()
        .map(|entry| RecipeListItem {
            error: entry.error(),
            last_run: last_runs.remove(&entry.id),
            description: entry.recipe.and_then(|recipe| recipe.description.clone()),
            trigger: entry.recipe.map(|recipe| recipe.trigger.kind()),
            enabled: entry.recipe.is_some_and(|recipe| recipe.enabled),
            loaded: entry.recipe.is_some(),
            id: entry.id,
        })
        .collect();
    Ok(Json(RecipeList {
        recipes: listed,
        next_cursor,
    }))
}

/// Which recipes a listing holds: those after the cursor's id, at most `limit`.
struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

impl Page {
    fn parse(query: Option<&str>) -> Result<Self, Problem> {
        let mut page = Page {
            limit: None,
            after: None,
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "limit" => {
                    let limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or_else(|| {
                            Problem::bad_request(format!(
                                "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{value}`"
                            ))
                        })?;
                    page.limit = Some(limit);
                }
                // The last id of the previous page: a position, any text is one.
                "cursor" => page.after = Some(value.into_owned()),
                other => {
                    return Err(Problem::bad_request(format!(
                        "unknown query parameter `{other}`; expected `limit` or `cursor`"
                    )));
                }
            }
        }
        Ok(page)
    }
}

#[utoipa::path(get, path = "/api/v1/recipes/{id}", tag = "recipes",
    params(("id" = String, Path, description = "Recipe id")),
    responses(
        (status = 200, description = "The recipe", body = RecipeDocument),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No loaded recipe with this id", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn show(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<RecipeDocument>, Problem> {
    let store = &app.store;
    let recipes = app.recipes.current();
    let recipe = recipes
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("there is no loaded recipe `{id}`")))?;
    let schedule = recipe.trigger.schedule();
    let state = match schedule {
        Some(_) => store.trigger_state(&id).await?,
        None => TriggerState::default(),
    };
    let mut runs: BTreeMap<&'static str, u64> = RunStatus::ALL.iter().map(|status| (status.as_str(), 0)).collect();
    for (status, count) in store.run_counts(&id).await? {
        runs.insert(status.as_str(), count);
    }
    Ok(Json(RecipeDocument {
        id: recipe.id.clone(),
        description: recipe.description.clone(),
        enabled: recipe.enabled,
        version: recipe.version.clone(),
        file: recipe.file.display().to_string(),
        trigger: trigger_document(recipe, &app.public_url),
        steps: recipe.steps.iter().map(|step| step.id.clone()).collect(),
        concurrency: recipe.concurrency,
        runs,
        source: recipe.redactor.text(&recipe.source).into_owned(),
        next_fires: schedule.map(|schedule| {
            schedule
                .next_fires(Utc::now(), NEXT_FIRES)
                .iter()
                .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, false))
                .collect()
        }),
        last_fired_at: state.last_fired_at,
        last_poll: state.last_poll,
    }))
}

fn trigger_document(recipe: &Recipe, public_url: &str) -> TriggerDocument {
    match &recipe.trigger {
        Trigger::Webhook { path, .. } => TriggerDocument {
            kind: recipe.trigger.kind(),
            url: Some(format!("{public_url}/hooks/{path}")),
            path: Some(path.clone()),
            schedule: None,
            recipes: None,
        },
        Trigger::Schedule { schedule, .. } => TriggerDocument {
            kind: recipe.trigger.kind(),
            url: None,
            path: None,
            schedule: Some(schedule.to_string()),
            recipes: None,
        },
        Trigger::Poll(poll) => TriggerDocument {
            kind: recipe.trigger.kind(),
            url: None,
            path: None,
            schedule: Some(poll.schedule.to_string()),
            recipes: None,
        },
        Trigger::Failure(watched) => TriggerDocument {
            kind: recipe.trigger.kind(),
            url: None,
            path: None,
            schedule: None,
            recipes: Some(watched.names()),
        },
    }
}
