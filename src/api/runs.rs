//! `GET /api/v1/runs` and `GET /api/v1/runs/{id}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::{AppState, Problem};
use crate::store::{RunDocument, RunFilter, RunStatus};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub(super) async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<Value>, Problem> {
    let filter = parse_filter(query.as_deref())?;
    let runs = state.store.runs_page(&filter).await.map_err(Problem::internal)?;
    // A full page may have a next one; the cursor is the last id shown.
    let next_cursor = (runs.len() == filter.limit as usize)
        .then(|| runs.last().map(|run| run.id.clone()))
        .flatten();
    Ok(Json(json!({"runs": runs, "next_cursor": next_cursor})))
}

pub(super) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<RunDocument>, Problem> {
    let mut run = state
        .store
        .run(&id)
        .await
        .map_err(Problem::internal)?
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

fn parse_filter(query: Option<&str>) -> Result<RunFilter, Problem> {
    let mut parameters: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        parameters.insert(name.into_owned(), value.into_owned());
    }
    let mut filter = RunFilter {
        limit: DEFAULT_LIMIT,
        ..RunFilter::default()
    };
    for (name, value) in parameters {
        match name.as_str() {
            "recipe" => filter.recipe = Some(value),
            "status" => {
                filter.status = Some(
                    value
                        .parse::<RunStatus>()
                        .map_err(|error| Problem::bad_request(format!("`status`: {error}")))?,
                )
            }
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
            "cursor" => filter.before = Some(value),
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter `{other}`; expected `recipe`, `status`, `limit` or `cursor`"
                )));
            }
        }
    }
    Ok(filter)
}
