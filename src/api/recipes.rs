//! `GET /api/v1/recipes` and `GET /api/v1/recipes/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};

use super::{AppState, Problem};
use crate::recipe::{Recipe, Trigger};
use crate::store::RunStatus;

pub(super) async fn list(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    let recipes = state.recipes.current();
    let last_runs = state.store.last_runs().await.map_err(Problem::internal)?;
    let mut listed: Vec<Value> = recipes
        .recipes()
        .map(|recipe| {
            json!({
                "id": recipe.id,
                "description": recipe.description,
                "trigger": recipe.trigger.kind(),
                "enabled": recipe.enabled,
                "loaded": true,
                "error": null,
                "last_run": last_runs.get(&recipe.id),
            })
        })
        .collect();
    for (id, problems) in recipes.failed() {
        let error: Vec<String> = problems.iter().map(ToString::to_string).collect();
        listed.push(json!({
            "id": id,
            "description": null,
            "trigger": null,
            "enabled": false,
            "loaded": false,
            "error": error.join("\n"),
            "last_run": last_runs.get(&id),
        }));
    }
    listed.sort_by(|left, right| left["id"].as_str().cmp(&right["id"].as_str()));
    Ok(Json(json!({"recipes": listed})))
}

pub(super) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, Problem> {
    let recipes = state.recipes.current();
    let recipe = recipes
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("there is no loaded recipe `{id}`")))?;
    let counts = state.store.run_counts(&id).await.map_err(Problem::internal)?;
    let mut runs: Map<String, Value> = RunStatus::ALL
        .iter()
        .map(|status| (status.as_str().to_owned(), json!(0)))
        .collect();
    for (status, count) in counts {
        runs.insert(status.as_str().to_owned(), json!(count));
    }
    Ok(Json(json!({
        "id": recipe.id,
        "description": recipe.description,
        "enabled": recipe.enabled,
        "version": recipe.version,
        "file": recipe.file.display().to_string(),
        "trigger": trigger_document(recipe, &state.public_url),
        "steps": recipe.steps.iter().map(|step| step.id.as_str()).collect::<Vec<_>>(),
        "concurrency": recipe.concurrency,
        "runs": runs,
        // As written: `${NAME}` references, not their values.
        "source": recipe.redactor.text(&recipe.source),
    })))
}

fn trigger_document(recipe: &Recipe, public_url: &str) -> Value {
    match &recipe.trigger {
        Trigger::Webhook { path } => json!({
            "kind": "webhook",
            "path": path,
            "url": format!("{public_url}/hooks/{path}"),
        }),
    }
}
