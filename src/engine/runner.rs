//! Runs one claimed run: `when`, then the steps in order, recording each attempt.

use std::time::Instant;

use chrono::Utc;
use serde_json::{Value, json};

use super::{Engine, render};
use crate::action::{self, HttpResponse, Outcome};
use crate::recipe::{Action, Recipe, Step};
use crate::store::{self, AttemptRecord, ClaimedRun, RunStatus, StepStatus};

/// The record keeps at most this much of a response body; later steps see all of it.
const RECORDED_BODY_LIMIT: usize = 64 * 1024;

/// Why a run failed: the message stored as the run's `error`.
type RunError = String;

pub(super) async fn execute(engine: &Engine, run: ClaimedRun) {
    let (status, error) = match run_recipe(engine, &run).await {
        Ok(status) => (status, None),
        Err(error) => (RunStatus::Failed, Some(error)),
    };
    tracing::info!(run = %run.id, recipe = %run.recipe, %status, error = error.as_deref(), "run ended");
    if let Err(store_error) = engine.store.finish_run(&run.id, status, error.as_deref()).await {
        // The run stays `running` in the store and is picked up again at recovery.
        tracing::error!(run = %run.id, error = %store_error, "cannot record the end of a run");
    }
}

async fn run_recipe(engine: &Engine, run: &ClaimedRun) -> Result<RunStatus, RunError> {
    let recipes = engine.recipes.current();
    let recipe = recipes
        .get(&run.recipe)
        .ok_or_else(|| format!("recipe `{}` is not loaded", run.recipe))?;
    let mut context = json!({
        "payload": run.payload,
        "headers": run.headers,
        "query": run.query,
        "trigger": {
            "recipe": run.recipe,
            "kind": run.trigger,
            "received_at": run.received_at,
            "run_id": run.id,
        },
        "steps": {},
        "ferry": { "url": engine.public_url },
    });

    if let Some(when) = &recipe.when {
        let go_on = engine
            .templates
            .is_true(when, &context)
            .map_err(|error| format!("`when`: {error}"))?;
        if !go_on {
            return Ok(RunStatus::Skipped);
        }
    }

    for (position, step) in recipe.steps.iter().enumerate() {
        let result = run_step(engine, recipe, run, position, step, &context).await?;
        context["steps"][step.id.as_str()] = result;
    }
    Ok(RunStatus::Succeeded)
}

/// Runs one step and gives its result for `steps.<id>`.
async fn run_step(
    engine: &Engine,
    recipe: &Recipe,
    run: &ClaimedRun,
    position: usize,
    step: &Step,
    context: &Value,
) -> Result<Value, RunError> {
    let store_error = |error: store::Error| format!("step `{}`: cannot record the step: {error}", step.id);
    if let Some(when) = &step.when {
        let go_on = engine
            .templates
            .is_true(when, context)
            .map_err(|error| format!("step `{}` `when`: {error}", step.id))?;
        if !go_on {
            engine
                .store
                .set_step(&run.id, position, &step.id, StepStatus::Skipped)
                .await
                .map_err(store_error)?;
            return Ok(json!({"skipped": true}));
        }
    }
    engine
        .store
        .set_step(&run.id, position, &step.id, StepStatus::Running)
        .await
        .map_err(store_error)?;

    let started_at = store::timestamp(Utc::now());
    let started = Instant::now();
    let (request, outcome, result) = match &step.action {
        Action::Http(http) => {
            let idempotency_key = format!("{}.{}", run.id, step.id);
            let request = match render::http_request(&engine.templates, http, context, &idempotency_key) {
                Ok(request) => request,
                Err(error) => {
                    engine
                        .store
                        .set_step(&run.id, position, &step.id, StepStatus::Failed)
                        .await
                        .map_err(store_error)?;
                    return Err(format!("step `{}`: {error}", step.id));
                }
            };
            let outcome = action::http::execute(&engine.client, &request, step.timeout).await;
            let result = match &outcome {
                Outcome::Succeeded {
                    response: Some(response),
                } => step_result(response),
                _ => Value::Null,
            };
            (request.to_record(), outcome, result)
        }
        Action::Log(template) => match engine.templates.render_text(template, context) {
            Ok(line) => {
                action::log::execute(&run.id, &step.id, &line);
                let record = json!({"log": line});
                (record.clone(), Outcome::Succeeded { response: None }, record)
            }
            Err(error) => (
                Value::Null,
                Outcome::Failed {
                    response: None,
                    error: error.to_string(),
                },
                Value::Null,
            ),
        },
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let (response, error) = match &outcome {
        Outcome::Succeeded { response } => (response.as_ref(), None),
        Outcome::Failed { response, error } => (response.as_ref(), Some(error.clone())),
    };
    let attempt = AttemptRecord {
        n: 1,
        started_at,
        duration_ms,
        request,
        response: response.map(response_record),
        error: error.clone(),
    };
    engine
        .store
        .record_attempt(&run.id, position, &attempt)
        .await
        .map_err(store_error)?;
    let status = if error.is_some() {
        StepStatus::Failed
    } else {
        StepStatus::Succeeded
    };
    engine
        .store
        .set_step(&run.id, position, &step.id, status)
        .await
        .map_err(store_error)?;
    match error {
        Some(error) => {
            tracing::warn!(run = %run.id, recipe = %recipe.id, step = %step.id, %error, "step failed");
            Err(format!("step `{}`: {error}", step.id))
        }
        None => Ok(result),
    }
}

/// `steps.<id>` after an http step: the whole answer.
fn step_result(response: &HttpResponse) -> Value {
    json!({
        "status": response.status,
        "headers": response.headers,
        "body": response.body,
    })
}

/// The answer as the run record keeps it: the body cut at 64 KiB.
fn response_record(response: &HttpResponse) -> Value {
    let truncated = response.text.len() > RECORDED_BODY_LIMIT;
    let body = if truncated {
        Value::String(response.text[..response.text.floor_char_boundary(RECORDED_BODY_LIMIT)].to_owned())
    } else {
        response.body.clone()
    };
    json!({
        "status": response.status,
        "headers": response.headers,
        "body": body,
        "truncated": truncated,
    })
}
