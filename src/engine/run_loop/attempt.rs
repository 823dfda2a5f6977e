//! One attempt of a step (or of one element of a `for_each`): its `when`, its
//! request rendered, sent and recorded, and what comes of the answer — the
//! step's end, a retry, a wait; a `delay`'s turn.

use std::time::Instant;

use chrono::Utc;
use serde_json::{Value, json};

use super::error::RunError;
use super::{Gathered, Host, StepAt, StepEnd, counted, go_on_after, is_last, skip};
use crate::action::{AttemptError, HttpRequest, Outcome};
use crate::engine::backoff;
use crate::recipe::Recipe;
use crate::step::delay::DelayStep;
use crate::step::http::record::ResponseRecord;
use crate::step::{AttemptFailure, AttemptInput, Attempted, Attempts, Kind, Turn};
use crate::store::{self, AttemptWrite, StepStatus};
use crate::template::Templates;

/// Runs one attempt of a step (or of one element of a `for_each`): the first,
/// or the next after those recorded.
pub(super) async fn run_step<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    context: &Value,
    gathered: &Gathered,
) -> Result<StepEnd, RunError> {
    let StepAt { step, state, key, .. } = at;
    if host.cancelled(at.run_id) {
        return Err(RunError::Cancelled);
    }
    if at.deadline.is_some_and(|deadline| Utc::now() >= deadline) {
        let written = recipe.timeout.as_ref().map(|timeout| timeout.written.clone());
        return Err(RunError::TimedOut(written.unwrap_or_default()));
    }
    if state.is_none()
        && let Some(when) = &step.when
    {
        match counted(host, recipe, templates.is_true(when, context)) {
            Ok(true) => {}
            Ok(false) => return Ok(skip(host, gathered, at)),
            Err(error) => {
                let message = format!("`when`: {error}");
                host.turn(step, key.element, Turn::NotRendered(&message));
                if step.continue_on_error {
                    return Ok(go_on_after(recipe, gathered, at, &message, None));
                }
                return Err(RunError::StepWhen { step: at.name(), error });
            }
        }
    }
    let n = state.map_or(0, |state| state.attempts) + 1;
    // Which try of its `retry.attempts` this is: a step resumed in place has
    // them afresh, its attempts keeping their numbers.
    let try_n = n - state.map_or(0, |state| state.attempts_before.min(n - 1));
    if let Kind::Delay(delay) = &step.kind {
        return run_delay(host, templates, recipe, at, delay, context, gathered);
    }

    let started_at = store::timestamp(Utc::now());
    let started = Instant::now();
    let input = AttemptInput {
        templates,
        context,
        redactor: &recipe.redactor,
        idempotency_key: at.idempotency_key(),
        stored_request: state
            .and_then(|state| state.request.as_ref())
            .map(|sealed| recipe.redactor.unseal(sealed)),
    };
    let mut on_behalf = StepHost {
        host,
        gathered,
        recipe,
        at,
    };
    let attempted = step.kind.attempt(input, &mut on_behalf).await;
    let Attempted {
        record: request,
        outcome,
        result,
        unstored,
    } = match attempted {
        Ok(attempted) => attempted,
        Err(AttemptFailure::NotRendered(message)) if step.continue_on_error => {
            return Ok(go_on_after(recipe, gathered, at, &message, None));
        }
        // Its request is stored as `running`: a resume sends it.
        Err(AttemptFailure::Cancelled) => return Err(RunError::Cancelled),
        Err(failure) => {
            gathered.step(at.write(StepStatus::Failed, None, None));
            return Err(match failure {
                AttemptFailure::NotRendered(message) => RunError::NotRendered {
                    step: at.name(),
                    message,
                },
                AttemptFailure::DamagedRequest => RunError::DamagedRequest(at.name()),
                AttemptFailure::Unrecorded(error) => RunError::Unrecorded { step: at.name(), error },
                AttemptFailure::Cancelled => RunError::Cancelled,
            });
        }
    };
    let elapsed = started.elapsed();
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    host.attempted(recipe, matches!(outcome, Outcome::Succeeded { .. }), elapsed);

    let (response, failure) = match &outcome {
        Outcome::Succeeded { response } => (response.as_ref(), None),
        Outcome::Failed { response, error } => (
            response.as_ref(),
            Some((
                recipe.redactor.text(&error.to_string()).into_owned(),
                error.retryable() || (step.retry.fail_when && matches!(error, AttemptError::Condition(_))),
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
    gathered.attempt(key, attempt);

    let Some((error, retryable, retry_after)) = failure else {
        // Kept for the steps after it should the run resume; after the last
        // step the run ends in this same write, and an ended run's results are
        // not stored (see `Store::record`). An element's result is kept for
        // its loop's `items` even then.
        let last = key.element.is_none() && is_last(recipe, key.position);
        let sealed = (!last).then(|| recipe.redactor.seal(&result));
        gathered.step(at.write(StepStatus::Succeeded, None, sealed));
        return Ok(StepEnd::Done(result));
    };
    if retryable && host.retries() && try_n < step.retry.attempts {
        let delay = backoff::delay_before(&step.retry, try_n + 1, retry_after, fastrand::f64());
        let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        tracing::info!(run = %at.run_id, step = %at.name(), attempt = n, %error, delay_ms = delay.as_millis() as u64, "attempt failed; will retry");
        // The next attempt sends the request this one sent.
        let sealed = unstored.map(|request| recipe.redactor.seal(&request.to_sealable()));
        gathered.step(at.write(StepStatus::Retrying, sealed, None));
        return Ok(StepEnd::Retry(due));
    }
    if host.retries() {
        tracing::warn!(run = %at.run_id, recipe = %recipe.id, step = %at.name(), attempt = n, %error, "step failed");
    }
    if step.continue_on_error {
        return Ok(go_on_after(recipe, gathered, at, &error, response));
    }
    // Kept with it: a run that restarts while its `on_failure` runs reads
    // the failure from here (and a resume in place knows it to try again).
    let failure = json!({"error": error, "status": response.map(|response| response.status), "failed": true});
    gathered.step(at.write(StepStatus::Failed, None, Some(recipe.redactor.seal(&failure))));
    Err(RunError::StepFailed {
        step: at.name(),
        attempts: n,
        message: error,
        status: response.map(|response| response.status),
    })
}

/// A `delay` step's turn: it computes its time once (kept with its row, so a
/// resumed run waits for the same time), and ends the run's turn until then.
/// When the time has come — at once for a time in the past, and always in the
/// foreground, which does not wait — one attempt records it and the run goes
/// on.
fn run_delay<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    delay: &DelayStep,
    context: &Value,
    gathered: &Gathered,
) -> Result<StepEnd, RunError> {
    let now = Utc::now();
    let stored = at
        .state
        .and_then(|state| state.request.as_ref())
        .map(|sealed| recipe.redactor.unseal(sealed))
        .and_then(|request| request["until"].as_str().map(str::to_owned))
        .and_then(|until| chrono::DateTime::parse_from_rfc3339(&until).ok())
        .map(|until| until.to_utc());
    let until = match stored {
        Some(until) => until,
        None => match delay.until(templates, context, now) {
            Ok(until) => until,
            Err(message) => {
                let message = recipe.redactor.text(&message).into_owned();
                at.step_turn(host, Turn::NotRendered(&message));
                if at.step.continue_on_error {
                    return Ok(go_on_after(recipe, gathered, at, &message, None));
                }
                gathered.step(at.write(StepStatus::Failed, None, None));
                return Err(RunError::NotRendered {
                    step: at.name(),
                    message,
                });
            }
        },
    };
    let until_text = store::timestamp(until);
    at.step_turn(host, Turn::Delayed(&until_text));
    let request = json!({"delay": delay.written, "until": until_text});
    if until > now && host.retries() {
        gathered.step(at.write(StepStatus::Waiting, Some(recipe.redactor.seal(&request)), None));
        return Ok(StepEnd::Wait(until));
    }
    let attempt = AttemptWrite {
        n: at.state.map_or(0, |state| state.attempts) + 1,
        started_at: store::timestamp(now),
        duration_ms: 0,
        request: crate::json::text(&request),
        response: None,
        error: None,
    };
    gathered.attempt(at.key, attempt);
    let result = json!({"until": until_text});
    let last = at.key.element.is_none() && is_last(recipe, at.key.position);
    let sealed = (!last).then(|| recipe.redactor.seal(&result));
    gathered.step(at.write(StepStatus::Succeeded, None, sealed));
    Ok(StepEnd::Done(result))
}

/// The run loop answering a step's attempt: its host, and the run's gathered
/// record, for one step (or one element).
struct StepHost<'a, H> {
    host: &'a H,
    gathered: &'a Gathered,
    recipe: &'a Recipe,
    at: StepAt<'a>,
}

impl<H: Host> Attempts for StepHost<'_, H> {
    async fn exchange(&mut self, request: &HttpRequest) -> (Outcome, bool) {
        self.host.exchange(self.at.step, request).await
    }

    fn has_unstored(&self) -> bool {
        !self.gathered.is_empty()
    }

    async fn store_request(&mut self, sealed: Value) -> Result<(), AttemptFailure> {
        self.gathered
            .step(self.at.write(StepStatus::Running, Some(sealed), None));
        let gathered = self.gathered.take();
        self.host
            .store(gathered)
            .await
            .map_err(|error| AttemptFailure::Unrecorded(error.to_string()))?;
        // Cancelled in the database while the run ran (`ferry runs cancel`, or
        // another daemon's API): the store said so with this write.
        if self.host.cancelled(self.at.run_id) {
            return Err(AttemptFailure::Cancelled);
        }
        Ok(())
    }

    fn render_heavy<T: Send>(&self, render: impl FnOnce() -> T + Send) -> impl Future<Output = T> + Send {
        self.host.render_heavy(render)
    }

    fn over_budget(&self, budget: &'static str) {
        self.host.over_budget(self.recipe, budget);
    }

    fn turn(&mut self, turn: Turn<'_>) {
        self.host.turn(self.at.step, self.at.key.element, turn);
    }

    fn log(&mut self, line: &str) {
        self.host.log(self.at.run_id, self.at.step, line);
    }
}
