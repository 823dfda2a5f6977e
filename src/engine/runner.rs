//! Runs one claimed run: `when`, then the steps in order, recording each attempt.
//!
//! A run can stop and resume: between the attempts of a retried step (the run
//! waits as `retrying` in the store, holding no worker) and after a crash (the run
//! is queued again at start). Resuming reads what the store kept — the results of
//! the steps that finished and the request the unfinished step rendered at its
//! first attempt — so no finished step is sent again and a retried step sends the
//! same request with the same `Idempotency-Key`.
//!
//! The runner gathers what a run records in a [`RunWrite`] and stores it only when
//! it must: just before a request goes out (with that request), and when the run
//! lets go (with its end or its retry time). The write before a request is left
//! out when nothing gathered is unstored and the request renders alike from what
//! is stored (no `now` or `uuid`): a crash then renders and sends the same request
//! again. A fresh one-step run thus costs two writes — its insert, its end — each
//! a share of a group commit.

use std::collections::HashMap;
use std::time::Instant;

use chrono::Utc;
use serde_json::{Map, Value, json};
use tracing::Instrument as _;

use super::record::{RequestRecord, ResponseRecord};
use super::{Engine, RunEnd, backoff, render};
use crate::action::{self, AttemptError, HttpRequest, HttpResponse, Outcome};
use crate::recipe::{Action, Recipe, Step};
use crate::store::{
    self, AttemptWrite, ClaimedRun, FinalStatus, RunChange, RunWrite, StepState, StepStatus, StepWrite,
};
use crate::template::TemplateError;

/// Why a run failed: the message stored as the run's `error`.
type RunError = String;

/// Where a run stands when the runner lets go of it.
enum Progress {
    /// With `steps.<id>` of the last step that ran.
    Ended(FinalStatus, Option<Value>),
    /// A step failed and will be tried again at this time: the run waits in the
    /// store.
    WaitsForRetry(chrono::DateTime<Utc>),
}

pub(super) async fn execute(engine: &Engine, mut run: ClaimedRun) {
    let mut write = RunWrite::new(&run.id);
    let context = context_of(engine, &mut run);
    let recipe = engine.recipes.current().get(&run.recipe).cloned();
    let (final_status, error, last_step) = match run_recipe(engine, recipe.as_deref(), &run, context, &mut write).await
    {
        Ok(Progress::WaitsForRetry(due)) => {
            write.change = Some(RunChange::RetryAt(due));
            if let Err(store_error) = record_until_stored(engine, write).await {
                // The run stays `running` in the store and is picked up again at recovery.
                tracing::error!(run = %run.id, error = %store_error, "cannot record a retry");
            }
            return;
        }
        Ok(Progress::Ended(status, last_step)) => (status, None, last_step),
        Err(error) => (FinalStatus::Failed, Some(error), None),
    };
    let status = store::RunStatus::from(final_status);
    match &recipe {
        Some(recipe) => recipe.metrics.run_ended(&engine.metrics, final_status),
        None => engine.metrics.run_ended(&run.recipe, status.as_str()),
    }
    tracing::info!(run = %run.id, recipe = %run.recipe, %status, error = error.as_deref(), "run ended");
    write.change = Some(RunChange::End(final_status, error.clone()));
    if let Err(store_error) = record_until_stored(engine, write).await {
        // The run stays `running` in the store and is picked up again at recovery.
        tracing::error!(run = %run.id, error = %store_error, "cannot record the end of a run");
        return;
    }
    engine.completions.finished(
        &run.id,
        &RunEnd {
            status,
            error,
            last_step,
        },
    );
}

/// Runs the recipe's steps from where the run stands, gathering what to record
/// in `write` (storing it early only before a request goes out).
async fn run_recipe(
    engine: &Engine,
    recipe: Option<&Recipe>,
    run: &ClaimedRun,
    mut context: Value,
    write: &mut RunWrite,
) -> Result<Progress, RunError> {
    let recipe = recipe.ok_or_else(|| format!("recipe `{}` is not loaded", run.recipe))?;
    if recipe.version != run.recipe_version {
        // Reloaded since the run was queued: the record names the version that runs.
        write.recipe_version = Some(recipe.version.clone());
    }
    let stored: HashMap<usize, &StepState> = run.steps.iter().map(|state| (state.position, state)).collect();

    // A run that already started steps passed its `when` before.
    if stored.is_empty()
        && let Some(when) = &recipe.when
    {
        let go_on = counted(engine, recipe, engine.templates.is_true(when, &context))
            .map_err(|error| format!("`when`: {error}"))?;
        if !go_on {
            return Ok(Progress::Ended(FinalStatus::Skipped, None));
        }
    }

    let mut last_step = None;
    for (position, step) in recipe.steps.iter().enumerate() {
        let state = stored.get(&position).copied();
        if let Some(state) = state
            && matches!(state.status, StepStatus::Succeeded | StepStatus::Skipped)
        {
            let result = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
            if state.status == StepStatus::Succeeded {
                last_step.clone_from(&result);
            }
            context["steps"][step.id.as_str()] = result.unwrap_or(Value::Null);
            continue;
        }
        let span = tracing::info_span!("step", step = %step.id);
        let turn = run_step(engine, recipe, run, position, step, state, &context, write)
            .instrument(span)
            .await?;
        match turn {
            StepEnd::Done(result) => {
                let ran = result.get("skipped").is_none();
                if position + 1 == recipe.steps.len() {
                    // No template renders after the last step: its result goes
                    // to the run's end uncopied.
                    if ran {
                        last_step = Some(result);
                    }
                } else {
                    if ran {
                        last_step = Some(result.clone());
                    }
                    context["steps"][step.id.as_str()] = result;
                }
            }
            StepEnd::Retry(due) => return Ok(Progress::WaitsForRetry(due)),
        }
    }
    Ok(Progress::Ended(FinalStatus::Succeeded, last_step))
}

/// What the run's templates see. The trigger input moves into it rather than
/// being copied: a payload can be large.
fn context_of(engine: &Engine, run: &mut ClaimedRun) -> Value {
    let trigger = json!({
        "recipe": run.recipe,
        "kind": run.trigger,
        "received_at": run.received_at,
        "run_id": run.id,
    });
    run_context(
        trigger,
        &engine.public_url,
        std::mem::take(&mut run.payload),
        std::mem::take(&mut run.headers),
        std::mem::take(&mut run.query),
    )
}

/// The template context of a run: `trigger`, `payload`, `headers`, `query`,
/// `steps` (filled as steps end) and `ferry.url`.
pub(crate) fn run_context(trigger: Value, public_url: &str, payload: Value, headers: Value, query: Value) -> Value {
    object([
        ("trigger", trigger),
        ("steps", Value::Object(Map::new())),
        ("ferry", json!({ "url": public_url })),
        ("payload", payload),
        ("headers", headers),
        ("query", query),
    ])
}

/// A JSON object of these fields, moved in: `json!` would serialise each value
/// into a copy of itself, and payloads and answers can be large.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

/// How a step's turn ended.
enum StepEnd {
    /// Finished (succeeded or skipped), with its `steps.<id>`.
    Done(Value),
    /// Failed, to be tried again at this time.
    Retry(chrono::DateTime<Utc>),
}

/// Runs one attempt of a step (the first, or the next after those recorded).
#[allow(clippy::too_many_arguments)]
async fn run_step(
    engine: &Engine,
    recipe: &Recipe,
    run: &ClaimedRun,
    position: usize,
    step: &Step,
    state: Option<&StepState>,
    context: &Value,
    write: &mut RunWrite,
) -> Result<StepEnd, RunError> {
    let store_error = |error: store::Error| format!("step `{}`: cannot record the step: {error}", step.id);
    let step_write = |status: StepStatus, request: Option<Value>, result: Option<Value>| StepWrite {
        position,
        step_id: step.id.clone(),
        status,
        request,
        result,
    };
    if state.is_none()
        && let Some(when) = &step.when
    {
        let go_on = counted(engine, recipe, engine.templates.is_true(when, context))
            .map_err(|error| format!("step `{}` `when`: {error}", step.id))?;
        if !go_on {
            let result = json!({"skipped": true});
            write
                .steps
                .push(step_write(StepStatus::Skipped, None, Some(result.clone())));
            return Ok(StepEnd::Done(result));
        }
    }
    let n = state.map_or(0, |state| state.attempts) + 1;

    let started_at = store::timestamp(Utc::now());
    let started = Instant::now();
    // `unstored`: a request sent without being stored first, stored only if it
    // is to be tried again.
    let (request, outcome, result, unstored) = match &step.action {
        Action::Http(http) => {
            let (request, stored) = match state.and_then(|state| state.request.as_ref()) {
                // Rendered once, at the first attempt: the same request every time.
                Some(sealed) => {
                    let mut request = HttpRequest::from_sealed(&recipe.redactor.unseal(sealed))
                        .ok_or_else(|| format!("step `{}`: the stored request is damaged", step.id))?;
                    // Credentials are never stored: they are rendered again.
                    render::add_auth(&engine.templates, http, context, &mut request)
                        .map_err(|error| format!("step `{}`: {error}", step.id))?;
                    (request, true)
                }
                None => {
                    let idempotency_key = format!("{}.{}", run.id, step.id);
                    let render = || render::http_request(&engine.templates, http, context, &idempotency_key);
                    let rendered = if http.has_blocks {
                        engine.render_apart(render).await
                    } else {
                        render()
                    };
                    let request = match counted(engine, recipe, rendered) {
                        Ok(request) => request,
                        Err(error) => {
                            write.steps.push(step_write(StepStatus::Failed, None, None));
                            return Err(recipe
                                .redactor
                                .text(&format!("step `{}`: {error}", step.id))
                                .into_owned());
                        }
                    };
                    if write.steps.is_empty() && write.attempts.is_empty() && http.renders_alike {
                        // Nothing the run gathered is unstored, and what is stored
                        // renders this same request again: after a crash it is
                        // rendered and sent again as it was, without a write first.
                        (request, false)
                    } else {
                        // Stored before it is sent (with what the run gathered
                        // before it): a crash after sending re-sends this request.
                        let sealed = recipe.redactor.seal(&request.to_sealable());
                        write.steps.push(step_write(StepStatus::Running, Some(sealed), None));
                        let gathered = std::mem::replace(write, RunWrite::new(&run.id));
                        record_until_stored(engine, gathered).await.map_err(store_error)?;
                        (request, true)
                    }
                }
            };
            let outcome = action::http::execute(&engine.destinations, &request, step.timeout).await;
            let result = match &outcome {
                Outcome::Succeeded {
                    response: Some(response),
                } => step_result(response),
                _ => Value::Null,
            };
            let record = RequestRecord {
                redactor: &recipe.redactor,
                request: &request,
            }
            .to_text();
            (record, outcome, result, (!stored).then_some(request))
        }
        Action::Log(template) => match counted(engine, recipe, {
            let render = || engine.templates.render_text(template, context);
            if template.has_blocks() {
                engine.render_apart(render).await
            } else {
                render()
            }
        }) {
            Ok(line) => {
                let line = recipe.redactor.text(&line).into_owned();
                action::log::execute(&run.id, &step.id, &line);
                let record = json!({"log": line});
                (
                    crate::json::text(&record),
                    Outcome::Succeeded { response: None },
                    record,
                    None,
                )
            }
            Err(error) => (
                crate::json::text(&Value::Null),
                Outcome::failed(AttemptError::Step(error.to_string())),
                Value::Null,
                None,
            ),
        },
    };
    let elapsed = started.elapsed();
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    recipe
        .metrics
        .attempt(&engine.metrics, matches!(outcome, Outcome::Succeeded { .. }), elapsed);

    let (response, failure) = match &outcome {
        Outcome::Succeeded { response } => (response.as_ref(), None),
        Outcome::Failed { response, error } => (
            response.as_ref(),
            Some((
                recipe.redactor.text(&error.to_string()).into_owned(),
                error.retryable(),
                error.retry_after(),
            )),
        ),
    };
    let attempt = AttemptWrite {
        n,
        started_at,
        duration_ms,
        request,
        response: response.map(|response| {
            crate::json::text(&ResponseRecord {
                redactor: &recipe.redactor,
                response,
            })
        }),
        error: failure.as_ref().map(|(error, _, _)| error.clone()),
    };
    write.attempts.push((position, attempt));

    let Some((error, retryable, retry_after)) = failure else {
        // Kept for the steps after it should the run resume; after the last
        // step the run ends in this same write, and an ended run's results are
        // not stored (see `Store::record`).
        let last = position + 1 == recipe.steps.len();
        let sealed = (!last).then(|| recipe.redactor.seal(&result));
        write.steps.push(step_write(StepStatus::Succeeded, None, sealed));
        return Ok(StepEnd::Done(result));
    };
    if retryable && n < step.retry.attempts {
        let delay = backoff::delay_before(&step.retry, n + 1, retry_after, fastrand::f64());
        let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        tracing::info!(run = %run.id, step = %step.id, attempt = n, %error, delay_ms = delay.as_millis() as u64, "attempt failed; will retry");
        // The next attempt sends the request this one sent.
        let sealed = unstored.map(|request| recipe.redactor.seal(&request.to_sealable()));
        write.steps.push(step_write(StepStatus::Retrying, sealed, None));
        return Ok(StepEnd::Retry(due));
    }
    write.steps.push(step_write(StepStatus::Failed, None, None));
    tracing::warn!(run = %run.id, recipe = %recipe.id, step = %step.id, attempt = n, %error, "step failed");
    let attempts = if n > 1 {
        format!(" after {n} attempts")
    } else {
        String::new()
    };
    Err(format!("step `{}`{attempts}: {error}", step.id))
}

/// `steps.<id>` after an http step: the whole answer.
pub(crate) fn step_result(response: &HttpResponse) -> Value {
    object([
        ("status", Value::from(response.status)),
        ("headers", Value::Object(response.headers.clone())),
        ("body", response.body.clone()),
    ])
}

/// A render's result, with a render over its budget counted.
fn counted<T>(engine: &Engine, recipe: &Recipe, rendered: Result<T, TemplateError>) -> Result<T, TemplateError> {
    if let Err(TemplateError::OverBudget(over)) = &rendered {
        engine.metrics.render_over_budget(&recipe.id, over.name());
    }
    rendered
}

/// The first wait before a record the storage refused is tried again; it
/// doubles up to [`STORE_RETRY_MAX`].
const STORE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(200);
const STORE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Stores a run's changes, waiting out a storage that refuses writes (a full
/// disk, an I/O error): the run keeps its slot meanwhile and is recorded as soon
/// as writes work again, without a restart. A shutdown ends the wait (the run is
/// then resumed at the next start).
async fn record_until_stored(engine: &Engine, write: RunWrite) -> Result<(), store::Error> {
    let mut outcome = engine.store.record(write).await;
    let mut pause = STORE_RETRY_FIRST;
    loop {
        match outcome {
            Ok(()) => return Ok(()),
            Err(unrecorded) if unrecorded.may_succeed_later() => {
                if pause == STORE_RETRY_FIRST {
                    tracing::warn!(error = %unrecorded, "cannot record a run; trying again until the storage takes it");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(STORE_RETRY_MAX);
                outcome = engine.store.record_again(unrecorded).await;
            }
            Err(unrecorded) => return Err(unrecorded.error),
        }
    }
}
