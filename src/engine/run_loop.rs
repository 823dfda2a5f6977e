//! The one run loop: the recipe's `when`, then its steps in order, each attempt
//! recorded. The daemon, `ferry run`, `ferry run --dry-run` and `ferry test` all
//! run it; what differs between them is the [`Host`] — where a request goes
//! (sent, answered from a test case, or not sent), whether a failed attempt may
//! wait for its retry, and where what happened is kept (the store, or a report).
//!
//! A run can stop and resume in the daemon: between the attempts of a retried
//! step (the run waits as `retrying` in the store, holding no worker) and after a
//! crash (the run is queued again at start). Resuming reads what the store kept
//! — the results of the steps that finished and the request the unfinished step
//! rendered at its first attempt — so no finished step is sent again and a
//! retried step sends the same request with the same `Idempotency-Key`.
//!
//! The loop gathers what a run records in a [`RunWrite`]; the host stores it
//! when it must: just before a request goes out (with that request), and when
//! the run lets go (with its end or its retry time). The write before a request
//! is left out when nothing gathered is unstored and the request renders alike
//! from what is stored (no `now` or `uuid`): a crash then renders and sends the
//! same request again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value, json};
use tracing::Instrument as _;

use super::backoff;
use crate::action::{AttemptError, HttpRequest, Outcome};
use crate::recipe::{Recipe, Step};
use crate::step::http::record::ResponseRecord;
use crate::step::{AttemptFailure, AttemptInput, Attempted, Attempts, Turn};
use crate::store::{self, AttemptWrite, FinalStatus, RunWrite, StepState, StepStatus, StepWrite};
use crate::template::{TemplateError, Templates};

/// Why a run failed; its text is the run's stored `error`. What it quotes of
/// templates and answers is redacted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("recipe `{0}` is not loaded")]
    NotLoaded(String),
    /// The recipe's `when` could not be evaluated.
    #[error("`when`: {0}")]
    When(TemplateError),
    /// A step's `when` could not be evaluated.
    #[error("step `{step}` `when`: {error}")]
    StepWhen { step: String, error: TemplateError },
    /// A step's templates did not render.
    #[error("step `{step}`: {message}")]
    NotRendered { step: String, message: String },
    /// What the store kept of a step's request no longer reads as one.
    #[error("step `{0}`: the stored request is damaged")]
    DamagedRequest(String),
    /// The request could not be stored before it was sent.
    #[error("step `{step}`: cannot record the step: {error}")]
    Unrecorded { step: String, error: String },
    /// The step's last attempt failed.
    #[error("step `{step}`{}: {message}", after_attempts(*.attempts))]
    StepFailed {
        step: String,
        attempts: u32,
        message: String,
    },
}

/// ` after N attempts` when there were several.
fn after_attempts(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// What differs between the runs of the daemon and those in the foreground.
pub(crate) trait Host {
    /// Sends a rendered request, or answers it without sending; says whether
    /// it went out.
    fn exchange(&mut self, step: &Step, request: &HttpRequest) -> impl Future<Output = (Outcome, bool)> + Send;

    /// Stores what the run gathered, before a request goes out: a crash after
    /// sending then sends that request again rather than another.
    fn store(&mut self, write: RunWrite) -> impl Future<Output = Result<(), store::Error>> + Send;

    /// Renders a template that may take its whole work budget (the daemon does
    /// it off its async workers).
    fn render_heavy<T: Send>(&self, render: impl FnOnce() -> T + Send) -> impl Future<Output = T> + Send;

    /// Whether a failed attempt that may succeed later waits for its retry (the
    /// daemon), or fails the step at once (one attempt per step in the
    /// foreground: a canned or printed answer would not change).
    fn retries(&self) -> bool;

    /// A render went over its budget (`work` or `bytes`).
    fn over_budget(&self, recipe: &Recipe, budget: &'static str);

    /// An attempt ended after `elapsed`.
    fn attempted(&self, recipe: &Recipe, succeeded: bool, elapsed: Duration);

    /// A `log` step's line, redacted.
    fn log(&mut self, run_id: &str, step: &Step, line: &str);

    /// A step's turn ended: what it did.
    fn turn(&mut self, step: &Step, turn: Turn<'_>);
}

/// Where a run stands when the loop lets go of it.
pub(crate) enum Progress {
    /// With `steps.<id>` of the last step that ran.
    Ended(FinalStatus, Option<Value>),
    /// A step failed and will be tried again at this time: the run waits in the
    /// store.
    WaitsForRetry(chrono::DateTime<Utc>),
}

/// One run of a recipe: its id, the template context, and what the store kept
/// of its steps if it ran before.
pub(crate) struct RunState<'a> {
    pub run_id: &'a str,
    pub context: Value,
    pub stored: &'a [StepState],
}

/// Runs the recipe's steps from where the run stands, gathering what to record
/// in `write`.
pub(crate) async fn run_recipe<H: Host + Send>(
    host: &mut H,
    templates: &Templates,
    recipe: &Recipe,
    run: RunState<'_>,
    write: &mut RunWrite,
) -> Result<Progress, RunError> {
    let RunState {
        run_id,
        mut context,
        stored,
    } = run;
    let stored: HashMap<usize, &StepState> = stored.iter().map(|state| (state.position, state)).collect();

    // A run that already started steps passed its `when` before.
    if stored.is_empty()
        && let Some(when) = &recipe.when
    {
        let go_on = counted(host, recipe, templates.is_true(when, &context)).map_err(RunError::When)?;
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
        let at = StepAt {
            run_id,
            position,
            step,
            state,
        };
        let turn = run_step(host, templates, recipe, at, &context, write)
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

/// Which step of which run, and what the store kept of it.
struct StepAt<'a> {
    run_id: &'a str,
    position: usize,
    step: &'a Step,
    state: Option<&'a StepState>,
}

/// Runs one attempt of a step (the first, or the next after those recorded).
async fn run_step<H: Host + Send>(
    host: &mut H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    context: &Value,
    write: &mut RunWrite,
) -> Result<StepEnd, RunError> {
    let StepAt {
        run_id,
        position,
        step,
        state,
    } = at;
    let step_write = |status: StepStatus, request: Option<Value>, result: Option<Value>| StepWrite {
        position,
        step_id: step.id.clone(),
        kind: step.kind.name(),
        status,
        request,
        result,
    };
    if state.is_none() {
        // A step of a branch the switch did not take (or of a skipped switch)
        // is skipped as a step whose `when` is false.
        let branch_taken = step
            .guard
            .as_ref()
            .is_none_or(|guard| context["steps"][guard.switch.as_str()]["case"] == guard.case.as_str());
        let go_on = match (&step.when, branch_taken) {
            (Some(when), true) => match counted(host, recipe, templates.is_true(when, context)) {
                Ok(go_on) => go_on,
                Err(error) => {
                    host.turn(step, Turn::NotRendered(&format!("`when`: {error}")));
                    return Err(RunError::StepWhen {
                        step: step.id.clone(),
                        error,
                    });
                }
            },
            (None, taken) | (Some(_), taken @ false) => taken,
        };
        if !go_on {
            let result = json!({"skipped": true});
            write
                .steps
                .push(step_write(StepStatus::Skipped, None, Some(result.clone())));
            host.turn(step, Turn::Skipped);
            return Ok(StepEnd::Done(result));
        }
    }
    let n = state.map_or(0, |state| state.attempts) + 1;

    let started_at = store::timestamp(Utc::now());
    let started = Instant::now();
    let input = AttemptInput {
        templates,
        context,
        redactor: &recipe.redactor,
        idempotency_key: format!("{run_id}.{}", step.id),
        stored_request: state
            .and_then(|state| state.request.as_ref())
            .map(|sealed| recipe.redactor.unseal(sealed)),
    };
    let mut on_behalf = StepHost {
        host: &mut *host,
        write: &mut *write,
        recipe,
        run_id,
        step,
        position,
    };
    let attempted = step.kind.attempt(input, &mut on_behalf).await;
    let Attempted {
        record: request,
        outcome,
        result,
        unstored,
    } = match attempted {
        Ok(attempted) => attempted,
        Err(failure) => {
            write.steps.push(step_write(StepStatus::Failed, None, None));
            return Err(match failure {
                AttemptFailure::NotRendered(message) => RunError::NotRendered {
                    step: step.id.clone(),
                    message,
                },
                AttemptFailure::DamagedRequest => RunError::DamagedRequest(step.id.clone()),
                AttemptFailure::Unrecorded(error) => RunError::Unrecorded {
                    step: step.id.clone(),
                    error,
                },
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
    if retryable && host.retries() && n < step.retry.attempts {
        let delay = backoff::delay_before(&step.retry, n + 1, retry_after, fastrand::f64());
        let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        tracing::info!(run = %run_id, step = %step.id, attempt = n, %error, delay_ms = delay.as_millis() as u64, "attempt failed; will retry");
        // The next attempt sends the request this one sent.
        let sealed = unstored.map(|request| recipe.redactor.seal(&request.to_sealable()));
        write.steps.push(step_write(StepStatus::Retrying, sealed, None));
        return Ok(StepEnd::Retry(due));
    }
    write.steps.push(step_write(StepStatus::Failed, None, None));
    if host.retries() {
        tracing::warn!(run = %run_id, recipe = %recipe.id, step = %step.id, attempt = n, %error, "step failed");
    }
    Err(RunError::StepFailed {
        step: step.id.clone(),
        attempts: n,
        message: error,
    })
}

/// A render's result, with a render over its budget told to the host.
fn counted<H: Host, T>(host: &H, recipe: &Recipe, rendered: Result<T, TemplateError>) -> Result<T, TemplateError> {
    if let Err(TemplateError::OverBudget(over)) = &rendered {
        host.over_budget(recipe, over.name());
    }
    rendered
}

/// The run loop answering a step's attempt: its host, and the run's gathered
/// record, for one step.
struct StepHost<'a, H> {
    host: &'a mut H,
    write: &'a mut RunWrite,
    recipe: &'a Recipe,
    run_id: &'a str,
    step: &'a Step,
    position: usize,
}

impl<H: Host + Send> Attempts for StepHost<'_, H> {
    async fn exchange(&mut self, request: &HttpRequest) -> (Outcome, bool) {
        self.host.exchange(self.step, request).await
    }

    fn has_unstored(&self) -> bool {
        !(self.write.steps.is_empty() && self.write.attempts.is_empty())
    }

    async fn store_request(&mut self, sealed: Value) -> Result<(), String> {
        self.write.steps.push(StepWrite {
            position: self.position,
            step_id: self.step.id.clone(),
            kind: self.step.kind.name(),
            status: StepStatus::Running,
            request: Some(sealed),
            result: None,
        });
        let gathered = std::mem::replace(self.write, RunWrite::new(self.run_id));
        self.host.store(gathered).await.map_err(|error| error.to_string())
    }

    fn render_heavy<T: Send>(&self, render: impl FnOnce() -> T + Send) -> impl Future<Output = T> + Send {
        self.host.render_heavy(render)
    }

    fn over_budget(&self, budget: &'static str) {
        self.host.over_budget(self.recipe, budget);
    }

    fn turn(&mut self, turn: Turn<'_>) {
        self.host.turn(self.step, turn);
    }

    fn log(&mut self, line: &str) {
        self.host.log(self.run_id, self.step, line);
    }
}
