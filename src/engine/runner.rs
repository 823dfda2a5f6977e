//! Runs one claimed run: `when`, then the steps in order, recording each attempt.

use std::time::Instant;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Engine, render};
use crate::action::{self, HttpRequest, HttpResponse, Outcome, RequestBody};
use crate::recipe::{Action, Recipe, Step};
use crate::redact::Redactor;
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
                    return Err(recipe
                        .redactor
                        .text(&format!("step `{}`: {error}", step.id))
                        .into_owned());
                }
            };
            let outcome = action::http::execute(&engine.client, &request, step.timeout).await;
            let result = match &outcome {
                Outcome::Succeeded {
                    response: Some(response),
                } => step_result(response),
                _ => Value::Null,
            };
            (request_record(&recipe.redactor, &request), outcome, result)
        }
        Action::Log(template) => match engine.templates.render_text(template, context) {
            Ok(line) => {
                let line = recipe.redactor.text(&line).into_owned();
                action::log::execute(&run.id, &step.id, &line);
                let record = json!({"log": line});
                (record.clone(), Outcome::Succeeded { response: None }, record)
            }
            Err(error) => (
                Value::Null,
                Outcome::Failed {
                    response: None,
                    error: recipe.redactor.text(&error.to_string()).into_owned(),
                },
                Value::Null,
            ),
        },
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let (response, error) = match &outcome {
        Outcome::Succeeded { response } => (response.as_ref(), None),
        Outcome::Failed { response, error } => (response.as_ref(), Some(recipe.redactor.text(error).into_owned())),
    };
    let attempt = AttemptRecord {
        n: 1,
        started_at,
        duration_ms,
        request,
        response: response.map(|response| response_record(&recipe.redactor, response)),
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

/// The request as the run record keeps it: secrets redacted.
fn request_record(redactor: &Redactor, request: &HttpRequest) -> Value {
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let stored = if request.credential_headers.contains(name) {
                crate::redact::REDACTED.to_owned()
            } else {
                redactor.header(value)
            };
            (name.clone(), Value::String(stored))
        })
        .collect();
    let body = match &request.body {
        Some(RequestBody::Json(json)) => redactor.value(json),
        Some(RequestBody::Text(text)) => Value::String(redactor.text(text).into_owned()),
        None => Value::Null,
    };
    json!({
        "method": request.method.as_str(),
        "url": redactor.text(&request.url),
        "headers": headers,
        "body": body,
    })
}

/// The answer as the run record keeps it: secrets redacted first, then the body
/// cut at 64 KiB (so a secret is never cut in half and missed).
fn response_record(redactor: &Redactor, response: &HttpResponse) -> Value {
    let headers: Map<String, Value> = response
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                Value::String(redactor.header(value.as_str().unwrap_or_default())),
            )
        })
        .collect();
    let text = redactor.text(&response.text);
    let truncated = text.len() > RECORDED_BODY_LIMIT;
    let body = if truncated {
        Value::String(text[..text.floor_char_boundary(RECORDED_BODY_LIMIT)].to_owned())
    } else {
        redactor.value(&response.body)
    };
    json!({
        "status": response.status,
        "headers": headers,
        "body": body,
        "truncated": truncated,
    })
}
