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
//!
//! Here: the run and its phases (its steps, then `on_failure`), and what a step
//! is given. One attempt of a step is `attempt.rs`; a `for_each` and its
//! elements are `each.rs`; why a run failed is `error.rs`.

mod attempt;
mod each;
mod error;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};
use tracing::Instrument as _;

use crate::action::{HttpRequest, HttpResponse, Outcome};
use crate::recipe::{ON_FAILURE_ROOT, Recipe, Step};
use crate::step::Turn;
use crate::store::{self, AttemptWrite, FinalStatus, RunWrite, StepKey, StepState, StepStatus, StepWrite};
use crate::template::{TemplateError, Templates};
use attempt::run_step;
use each::{Elements, run_each};
pub(crate) use error::RunError;
use error::step_name;

/// What the step results a run keeps for its templates take, against their
/// limit: a run of many large answers (or a loop over many) must not hold
/// memory without bound.
struct Kept {
    bytes: AtomicUsize,
    limit: usize,
}

impl Kept {
    /// Counts `result` in, or says what the total would have been.
    fn keep(&self, result: &Value) -> Result<(), usize> {
        let size = crate::json::size_of(result);
        let before = self.bytes.fetch_add(size, Ordering::Relaxed);
        if before + size > self.limit {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(before + size);
        }
        Ok(())
    }
}

/// What differs between the runs of the daemon and those in the foreground.
/// Shared by the elements of a `for_each` in flight together.
pub(crate) trait Host: Sync {
    /// Sends a rendered request, or answers it without sending; says whether
    /// it went out.
    fn exchange(&self, step: &Step, request: &HttpRequest) -> impl Future<Output = (Outcome, bool)> + Send;

    /// Stores what the run gathered, before a request goes out: a crash after
    /// sending then sends that request again rather than another.
    fn store(&self, write: RunWrite) -> impl Future<Output = Result<(), store::Error>> + Send;

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
    fn log(&self, run_id: &str, step: &Step, line: &str);

    /// A step's turn (or one element's, of a `for_each`) ended: what it did.
    fn turn(&self, step: &Step, element: Option<u32>, turn: Turn<'_>);

    /// Whether the run was cancelled while it ran: no attempt starts after.
    fn cancelled(&self, run_id: &str) -> bool;
}

/// Where a run stands when the loop lets go of it.
pub(crate) enum Progress {
    /// With `steps.<id>` of the last step that ran.
    Ended(FinalStatus, Option<Value>),
    /// A step failed and will be tried again at this time: the run waits in the
    /// store.
    WaitsForRetry(chrono::DateTime<Utc>),
    /// A `delay` step holds the run until this time: it waits in the store.
    Waits(chrono::DateTime<Utc>),
}

/// One run of a recipe: its id, the template context, and what the store kept
/// of its steps if it ran before. The context is lent: after the run its
/// caller still has the trigger input (a failure run's envelope carries it).
pub(crate) struct RunState<'a> {
    pub run_id: &'a str,
    pub context: &'a mut Value,
    pub stored: &'a [StepState],
    /// When the recipe's `timeout` ends the run, if it has one.
    pub deadline: Option<chrono::DateTime<Utc>>,
}

/// What a run gathered to record and has not stored yet. The elements of a
/// `for_each` in flight together add to it and store it in turns; the lock is
/// never held across an await.
struct Gathered {
    run_id: String,
    write: Mutex<RunWrite>,
}

impl Gathered {
    fn lock(&self) -> std::sync::MutexGuard<'_, RunWrite> {
        // A panic while holding it cannot leave a half-made row: pushes are whole.
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn step(&self, step: StepWrite) {
        self.lock().steps.push(step);
    }

    fn attempt(&self, key: StepKey, attempt: AttemptWrite) {
        self.lock().attempts.push((key, attempt));
    }

    fn is_empty(&self) -> bool {
        let write = self.lock();
        write.steps.is_empty() && write.attempts.is_empty()
    }

    /// Everything gathered, leaving nothing.
    fn take(&self) -> RunWrite {
        std::mem::replace(&mut *self.lock(), RunWrite::new(&self.run_id))
    }
}

/// Runs the recipe's steps from where the run stands, gathering what to record
/// in `write`.
pub(crate) async fn run_recipe<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    run: RunState<'_>,
    write: &mut RunWrite,
) -> Result<Progress, RunError> {
    let gathered = Gathered {
        run_id: run.run_id.to_owned(),
        write: Mutex::new(std::mem::replace(write, RunWrite::new(run.run_id))),
    };
    let progress = run_steps(host, templates, recipe, run, &gathered).await;
    let rest = gathered.take();
    write.steps.extend(rest.steps);
    write.attempts.extend(rest.attempts);
    write.change = write.change.take().or(rest.change);
    write.recipe_version = write.recipe_version.take().or(rest.recipe_version);
    progress
}

async fn run_steps<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    run: RunState<'_>,
    gathered: &Gathered,
) -> Result<Progress, RunError> {
    let RunState {
        run_id,
        context,
        stored,
        deadline,
    } = run;
    let stored: HashMap<StepKey, &StepState> = stored.iter().map(|state| (state.key, state)).collect();
    let kept = Kept {
        bytes: AtomicUsize::new(0),
        limit: templates.results_limit(),
    };

    // A run that already started steps passed its `when` before.
    if stored.is_empty()
        && let Some(when) = &recipe.when
    {
        let go_on = counted(host, recipe, templates.is_true(when, context)).map_err(RunError::When)?;
        if !go_on {
            return Ok(Progress::Ended(FinalStatus::Skipped, None));
        }
    }

    let phase = Phase {
        run_id,
        stored: &stored,
        deadline,
        kept: &kept,
        on_failure: false,
    };
    let failed = match run_phase(host, templates, recipe, &phase, context, gathered).await {
        Err(error) if !matches!(error, RunError::Cancelled) && recipe.steps.iter().any(|step| step.on_failure) => error,
        other => return other,
    };
    // The run failed: `on_failure` runs, reading `error`. The run stays failed
    // whatever it does; its own failure is recorded and triggers nothing. It is
    // not held to the run's `timeout` (a timed-out run still tells someone).
    context[ON_FAILURE_ROOT] = failed.as_context();
    let phase = Phase {
        deadline: None,
        on_failure: true,
        ..phase
    };
    match run_phase(host, templates, recipe, &phase, context, gathered).await {
        Ok(waits @ (Progress::WaitsForRetry(_) | Progress::Waits(_))) => Ok(waits),
        Ok(Progress::Ended(..)) => Err(failed),
        Err(error) => {
            tracing::warn!(run = %run_id, recipe = %recipe.id, %error, "on_failure failed");
            Err(failed)
        }
    }
}

/// Which steps a pass over the recipe runs (the run's, or `on_failure`'s),
/// and what holds for all of them.
struct Phase<'a> {
    run_id: &'a str,
    stored: &'a HashMap<StepKey, &'a StepState>,
    deadline: Option<chrono::DateTime<Utc>>,
    kept: &'a Kept,
    on_failure: bool,
}

/// Runs the steps of one phase in order, from where the run stands.
async fn run_phase<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    phase: &Phase<'_>,
    context: &mut Value,
    gathered: &Gathered,
) -> Result<Progress, RunError> {
    let Phase {
        run_id,
        stored,
        deadline,
        kept,
        on_failure,
    } = *phase;
    // A wait past the deadline ends there: the run then times out.
    let capped = |due: chrono::DateTime<Utc>| deadline.map_or(due, |deadline| due.min(deadline));
    let mut last_step = None;
    for (position, step) in recipe.steps.iter().enumerate() {
        if step.within.is_some() || step.on_failure != on_failure {
            // Its group's elements run it, or it is of the other phase.
            continue;
        }
        let key = StepKey::step(position);
        let state = stored.get(&key).copied();
        if let Some(state) = state
            && state.status == StepStatus::Failed
            && !on_failure
            && !step.continue_on_error
        {
            // The run failed here before a restart (while `on_failure` ran).
            let failure = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
            let failure = failure.unwrap_or(Value::Null);
            return Err(RunError::StepFailed {
                step: step_name(step, None),
                attempts: state.attempts,
                message: failure["error"].as_str().unwrap_or("failed").to_owned(),
                status: failure["status"].as_u64().and_then(|status| u16::try_from(status).ok()),
            });
        }
        if let Some(state) = state
            && ended(step, state)
        {
            let result = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
            if state.status == StepStatus::Succeeded {
                last_step.clone_from(&result);
            }
            let result = result.unwrap_or(Value::Null);
            // Kept before under the limit; counted, not refused (the limit may
            // have been lowered since).
            let _ = kept.keep(&result);
            context["steps"][step.id.as_str()] = result;
            continue;
        }
        let at = StepAt {
            run_id,
            key,
            step,
            state,
            deadline,
        };
        let span = tracing::info_span!("step", step = %step.id);
        let turn = if state.is_none() && !branch_taken(step, context) {
            // A step of a branch the switch did not take (or of a skipped
            // switch) is skipped as a step whose `when` is false.
            Ok(skip(host, gathered, at))
        } else if let Some(each) = &step.each {
            let elements = Elements { each, stored, kept };
            // Boxed: a loop's state (its elements in flight) would otherwise
            // make every run's future that much larger, loops or not.
            Box::pin(run_each(host, templates, recipe, at, elements, context, gathered).instrument(span)).await
        } else {
            run_step(host, templates, recipe, at, context, gathered)
                .instrument(span)
                .await
        };
        match turn? {
            StepEnd::Done(result) => {
                let ran = result.get("skipped").is_none();
                let last = is_last(recipe, position);
                // A loop counted its elements' results as they came.
                if !last
                    && step.each.is_none()
                    && let Err(total) = kept.keep(&result)
                {
                    gathered.step(at.write(StepStatus::Failed, None, None));
                    return Err(RunError::TooMuchKept {
                        step: at.name(),
                        total,
                        limit: kept.limit,
                    });
                }
                if last {
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
            StepEnd::Retry(due) => return Ok(Progress::WaitsForRetry(capped(due))),
            StepEnd::Wait(due) => return Ok(Progress::Waits(capped(due))),
        }
    }
    Ok(Progress::Ended(FinalStatus::Succeeded, last_step))
}

/// Whether a step of a `switch`'s branch is on the branch the switch chose
/// (steps outside branches always are).
fn branch_taken(step: &Step, context: &Value) -> bool {
    step.guard
        .as_ref()
        .is_none_or(|guard| context["steps"][guard.switch.as_str()]["case"] == guard.case.as_str())
}

/// Whether what the store kept of a step (or an element) is its end: it
/// succeeded, was skipped, or failed and the run went on (`continue_on_error`).
fn ended(step: &Step, state: &StepState) -> bool {
    match state.status {
        StepStatus::Succeeded | StepStatus::Skipped => true,
        StepStatus::Failed => step.continue_on_error,
        StepStatus::Running | StepStatus::Retrying | StepStatus::Waiting => false,
    }
}

/// A step (or an element) that failed with `continue_on_error`: recorded
/// failed, with `steps.ID` saying why (and the answer, when one came), and the
/// run goes on.
fn go_on_after(
    recipe: &Recipe,
    gathered: &Gathered,
    at: StepAt<'_>,
    error: &str,
    response: Option<&HttpResponse>,
) -> StepEnd {
    let mut result = Map::new();
    result.insert("error".to_owned(), Value::from(error));
    if let Some(response) = response {
        result.insert("status".to_owned(), Value::from(response.status));
        result.insert("body".to_owned(), response.body.clone());
    }
    let result = Value::Object(result);
    gathered.step(at.write(StepStatus::Failed, None, Some(recipe.redactor.seal(&result))));
    StepEnd::Done(result)
}

/// Records a step (or an element) as skipped: `{"skipped": true}`.
fn skip<H: Host>(host: &H, gathered: &Gathered, at: StepAt<'_>) -> StepEnd {
    let result = json!({"skipped": true});
    gathered.step(at.write(StepStatus::Skipped, None, Some(result.clone())));
    host.turn(at.step, at.key.element, Turn::Skipped);
    StepEnd::Done(result)
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
    /// A `delay`: the run goes on at this time.
    Wait(chrono::DateTime<Utc>),
}

/// Which step (or element of a `for_each`) of which run, and what the store
/// kept of it.
#[derive(Clone, Copy)]
struct StepAt<'a> {
    run_id: &'a str,
    key: StepKey,
    step: &'a Step,
    state: Option<&'a StepState>,
    /// When the run's `timeout` ends it.
    deadline: Option<chrono::DateTime<Utc>>,
}

impl StepAt<'_> {
    /// A new status of this step (or element) to record.
    fn write(&self, status: StepStatus, request: Option<Value>, result: Option<Value>) -> StepWrite {
        StepWrite {
            key: self.key,
            step_id: self.step.id.clone(),
            kind: self.step.kind.name(),
            status,
            request,
            result,
            on_failure: self.step.on_failure,
        }
    }

    /// Tells the host what it did.
    fn step_turn<H: Host>(&self, host: &H, turn: Turn<'_>) {
        host.turn(self.step, self.key.element, turn);
    }

    /// How messages name it.
    fn name(&self) -> String {
        step_name(self.step, self.key.element)
    }

    /// `RUN.STEP`, and `RUN.STEP.INDEX` for an element: the same for every
    /// attempt, and after a restart.
    fn idempotency_key(&self) -> String {
        match self.key.element {
            Some(index) => format!("{}.{}.{index}", self.run_id, self.step.id),
            None => format!("{}.{}", self.run_id, self.step.id),
        }
    }
}

/// Whether no step runs after the one at `position` in the run's own order (a
/// group's steps run within it).
fn is_last(recipe: &Recipe, position: usize) -> bool {
    let phase = recipe.steps[position].on_failure;
    recipe.steps[position + 1..]
        .iter()
        .all(|step| step.within.is_some() || step.on_failure != phase)
}

/// A render's result, with a render over its budget told to the host.
fn counted<H: Host, T>(host: &H, recipe: &Recipe, rendered: Result<T, TemplateError>) -> Result<T, TemplateError> {
    if let Err(TemplateError::OverBudget(over)) = &rendered {
        host.over_budget(recipe, over.name());
    }
    rendered
}
