//! `GET /api/v1/runs` and `GET /api/v1/runs/{id}`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Problem, ProblemDocument};
use crate::store::{RunDocument, RunFilter, RunStatus, RunSummary};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// A page of runs, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct RunsPage {
    runs: Vec<RunSummary>,
    /// The id of this page's last run, to pass as `cursor` (with the same
    /// filters) for the next page; `null` on the last.
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/runs", tag = "runs",
    params(
        ("recipe" = Option<String>, Query, description = "Only this recipe's runs"),
        ("status" = Option<RunStatus>, Query, description = "Only runs in this status"),
        ("since" = Option<String>, Query, format = DateTime, description = "Received at or after (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "Received before (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size, 1 to 500 (default 50)"),
        ("cursor" = Option<uuid::Uuid>, Query, description = "`next_cursor` of the previous page: runs older than this run id"),
    ),
    responses(
        (status = 200, description = "Newest first", body = RunsPage),
        (status = 400, description = "A bad filter", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<RunsPage>, Problem> {
    let filter = parse_filter(query.as_deref())?;
    let runs = state.store.runs_page(&filter).await?;
    // A full page may have a next one.
    let next_cursor = (runs.len() == filter.limit as usize)
        .then(|| runs.last().map(|run| run.id.clone()))
        .flatten();
    Ok(Json(RunsPage { runs, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run with every attempt of every step", body = RunDocument),
        (status = 401, description = "Missing or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(super) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<RunDocument>, Problem> {
    let mut run = state
        .store
        .run(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("there is no run `{id}`")))?;
    // The trigger input is stored as received (replay needs it); what is shown is
    // redacted with the secrets of the recipe as it is now.
    if let Some(recipe) = state.recipes.current().get(&run.summary.recipe) {
        let redactor = &recipe.redactor;
        run.payload = redactor.value(&run.payload);
        run.headers = redactor.value(&run.headers);
        run.query = redactor.value(&run.query);
    }
    Ok(Json(run))
}

pub(super) fn parse_filter(query: Option<&str>) -> Result<RunFilter, Problem> {
    let mut filter = RunFilter {
        limit: DEFAULT_LIMIT,
        ..RunFilter::default()
    };
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "recipe" => filter.recipe = Some(value),
            "status" => {
                let status = value
                    .parse::<RunStatus>()
                    .map_err(|error| Problem::bad_request(format!("`status`: {error}")))?;
                filter.status = Some(status);
            }
            "since" => filter.since = Some(parse_time("since", &value)?),
            "until" => filter.until = Some(parse_time("until", &value)?),
            "limit" => {
                filter.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{value}`"
                        ))
                    })?;
            }
            "cursor" => filter.before = Some(parse_cursor(&value)?),
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter `{other}`; expected `recipe`, `status`, `since`, `until`, `limit` or `cursor`"
                )));
            }
        }
    }
    Ok(filter)
}

/// `since` / `until`: RFC 3339 with any offset, compared in UTC.
fn parse_time(name: &str, value: &str) -> Result<String, Problem> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|time| crate::store::timestamp(time.to_utc()))
        .map_err(|error| {
            Problem::bad_request(format!(
                "`{name}` must be an RFC 3339 time such as 2026-01-31T09:00:00+01:00, not `{value}`: {error}"
            ))
        })
}

/// `cursor`: the id of the last run of the previous page; the page holds the
/// runs before it. A position, not a token: any run id is one, under any filters,
/// as Stripe's `starting_after` is.
fn parse_cursor(value: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| Problem::bad_request(format!("`cursor` must be a run id (a UUID), not `{value}`")))
}
