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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use chrono::Utc;
use serde_json::{Map, Value, json};
use tracing::Instrument as _;

use super::backoff;
use crate::action::{AttemptError, HttpRequest, HttpResponse, Outcome};
use crate::recipe::{ForEach, ON_FAILURE_ROOT, Recipe, Step};
use crate::step::delay::DelayStep;
use crate::step::http::record::ResponseRecord;
use crate::step::{AttemptFailure, AttemptInput, Attempted, Attempts, Kind, Turn};
use crate::store::{self, AttemptWrite, FinalStatus, RunWrite, StepKey, StepState, StepStatus, StepWrite};
use crate::template::{TemplateError, Templates};

/// Why a run failed; its text is the run's stored `error`. What it quotes of
/// templates and answers is redacted. `step` names the step, and the element
/// of a `for_each` when it is one: "`lines` item 2".
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("recipe `{0}` is not loaded")]
    NotLoaded(String),
    /// The recipe's `when` could not be evaluated.
    #[error("`when`: {0}")]
    When(TemplateError),
    /// A step's `when` could not be evaluated.
    #[error("step {step} `when`: {error}")]
    StepWhen { step: String, error: TemplateError },
    /// A step's templates did not render.
    #[error("step {step}: {message}")]
    NotRendered { step: String, message: String },
    /// What the store kept of a step's request no longer reads as one.
    #[error("step {0}: the stored request is damaged")]
    DamagedRequest(String),
    /// The request could not be stored before it was sent.
    #[error("step {step}: cannot record the step: {error}")]
    Unrecorded { step: String, error: String },
    /// The step's last attempt failed.
    #[error("step {step}{}: {message}", after_attempts(*.attempts))]
    StepFailed {
        step: String,
        attempts: u32,
        message: String,
        /// The answer's status, when one came.
        status: Option<u16>,
    },
    /// A user cancelled the run: no further attempt starts.
    #[error("cancelled")]
    Cancelled,
    /// The recipe's `timeout` passed: no further attempt starts.
    #[error("timed out after {0}")]
    TimedOut(String),
    /// A `for_each` list could not be run: not a list, or too long.
    #[error("step {step} `for_each`: {message}")]
    List { step: String, message: String },
    /// The step's result would take the results the run keeps past their limit.
    #[error(
        "step {step}: the step results this run keeps for its templates would take {}, over FERRY_RUN_MAX_RESULTS ({})",
        mib(*.total),
        mib(*.limit)
    )]
    TooMuchKept { step: String, total: usize, limit: usize },
}

/// Bytes as messages say them: `16.0 MiB`, `120 KiB`.
fn mib(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes < MIB {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

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

impl RunError {
    /// What `on_failure`'s templates read as `error`: `step` (its id, when a
    /// step failed), `message`, `status` (when an answer came).
    pub(crate) fn as_context(&self) -> Value {
        let (step, message, status) = match self {
            RunError::StepFailed {
                step, message, status, ..
            } => (Some(step), message.clone(), *status),
            RunError::NotRendered { step, message }
            | RunError::List { step, message }
            | RunError::Unrecorded { step, error: message } => (Some(step), message.clone(), None),
            RunError::StepWhen { step, error } => (Some(step), format!("`when`: {error}"), None),
            RunError::DamagedRequest(step) => (Some(step), self.to_string(), None),
            RunError::TooMuchKept { step, .. } => (Some(step), self.to_string(), None),
            RunError::NotLoaded(_) | RunError::When(_) | RunError::Cancelled | RunError::TimedOut(_) => {
                (None, self.to_string(), None)
            }
        };
        // Messages name a step as "`id`" or "`id` item 2"; templates want the id.
        let step = step.and_then(|name| name.split('`').nth(1)).map(str::to_owned);
        json!({"step": step, "message": message, "status": status})
    }
}

/// How messages name a step, or one element of its `for_each`.
fn step_name(step: &Step, element: Option<u32>) -> String {
    match element {
        Some(index) => format!("`{}` item {index}", step.id),
        None => format!("`{}`", step.id),
    }
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

/// A `for_each` step's loop, and what the store kept of its elements.
struct Elements<'a> {
    each: &'a ForEach,
    stored: &'a HashMap<StepKey, &'a StepState>,
    /// What the run keeps for its templates: each element's result counts.
    kept: &'a Kept,
}

/// Runs a `for_each` step: its list, then each element not ended before, up
/// to `parallel` at once. When an element fails or waits for a retry, no new
/// element starts; those in flight finish and are recorded. The step's result
/// is `{"items": [...]}`, one entry per element, in the list's order.
async fn run_each<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    elements: Elements<'_>,
    context: &Value,
    gathered: &Gathered,
) -> Result<StepEnd, RunError> {
    let Elements { each, stored, kept } = elements;
    let step = at.step;
    let fail = |message: String| {
        host.turn(step, None, Turn::NotRendered(&message));
        gathered.step(at.write(StepStatus::Failed, None, None));
        RunError::List {
            step: at.name(),
            message,
        }
    };
    let list = match counted(host, recipe, templates.render_value(&each.over, context)) {
        Ok(list) => list,
        Err(error) => return Err(fail(recipe.redactor.text(&error.to_string()).into_owned())),
    };
    let items = match list {
        Value::Array(items) => items,
        // A list that is absent has no elements.
        Value::Null => Vec::new(),
        other => {
            let message = format!(
                "`{}` gave {}, not a list",
                each.over.source(),
                crate::json::kind_of(&other)
            );
            return Err(fail(message));
        }
    };
    if items.len() > each.max_items as usize {
        let message = format!(
            "the list has {} items, more than `max_items` ({}); nothing was sent",
            items.len(),
            each.max_items
        );
        return Err(fail(message));
    }
    // The loop's own row, and its group's steps' own rows, say how it stands;
    // the elements' rows say how each went.
    let members = group_members(recipe, at);
    let mark = |status: StepStatus, result: Option<Value>| {
        gathered.step(at.write(status, None, result));
        for (position, member) in &members {
            let member_at = StepAt {
                key: StepKey::step(*position),
                step: member,
                ..at
            };
            gathered.step(member_at.write(status, None, None));
        }
    };
    if at.state.is_none() {
        // Its rows come before its elements' in the run's record.
        mark(StepStatus::Running, None);
    }

    let mut results: Vec<Option<Value>> = Vec::with_capacity(items.len());
    let mut to_run = Vec::new();
    for index in 0..items.len() as u32 {
        let key = StepKey {
            position: at.key.position,
            element: Some(index),
        };
        let state = stored.get(&key).copied();
        match state {
            Some(state) if ended(step, state) => {
                let result = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
                let result = result.unwrap_or(Value::Null);
                let _ = kept.keep(&result);
                results.push(Some(result));
            }
            _ => {
                results.push(None);
                to_run.push(StepAt { key, state, ..at });
            }
        }
    }

    // Each element renders over a context of its own, with its `item` and
    // `index`: elements in flight together cannot share one.
    let element_context = |index: u32| {
        let mut element_context = context.clone();
        element_context[each.name.as_str()] = items[index as usize].clone();
        element_context["index"] = Value::from(index);
        element_context
    };
    let mut waiting = to_run.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut retry_at: Option<chrono::DateTime<Utc>> = None;
    let mut wait_until: Option<chrono::DateTime<Utc>> = None;
    let mut failed: Option<(u32, RunError)> = None;
    loop {
        while failed.is_none() && retry_at.is_none() && wait_until.is_none() && in_flight.len() < each.parallel as usize
        {
            let Some(next) = waiting.next() else { break };
            let element_context = element_context(next.key.element.unwrap_or_default());
            in_flight.push(run_element(
                host,
                templates,
                recipe,
                next,
                element_context,
                gathered,
                stored,
            ));
        }
        let Some((index, ended)) = in_flight.next().await else {
            break;
        };
        let ended = match ended {
            Ok(StepEnd::Done(result)) => match kept.keep(&result) {
                Ok(()) => Ok(StepEnd::Done(result)),
                Err(total) => {
                    let element_at = StepAt {
                        key: StepKey {
                            position: at.key.position,
                            element: Some(index),
                        },
                        ..at
                    };
                    gathered.step(element_at.write(StepStatus::Failed, None, None));
                    Err(RunError::TooMuchKept {
                        step: element_at.name(),
                        total,
                        limit: kept.limit,
                    })
                }
            },
            other => other,
        };
        match ended {
            Ok(StepEnd::Done(result)) => results[index as usize] = Some(result),
            // Each waits at least its own backoff: the run resumes at the latest.
            Ok(StepEnd::Retry(due)) => retry_at = retry_at.max(Some(due)),
            Ok(StepEnd::Wait(due)) => wait_until = wait_until.max(Some(due)),
            Err(error) => {
                // The first in the list's order is the run's error.
                if failed.as_ref().is_none_or(|(first, _)| index < *first) {
                    failed = Some((index, error));
                }
            }
        }
    }
    if let Some((_, error)) = failed {
        mark(StepStatus::Failed, None);
        return Err(error);
    }
    match (retry_at, wait_until) {
        (Some(retry), wait) => {
            mark(StepStatus::Retrying, None);
            return Ok(StepEnd::Retry(retry.max(wait.unwrap_or(retry))));
        }
        (None, Some(wait)) => {
            mark(StepStatus::Waiting, None);
            return Ok(StepEnd::Wait(wait));
        }
        (None, None) => {}
    }
    let result = json!({ "items": results.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>() });
    let last = is_last(recipe, at.key.position);
    let sealed = (!last).then(|| recipe.redactor.seal(&result));
    mark(StepStatus::Succeeded, sealed);
    host.turn(step, None, Turn::Looped(items.len()));
    Ok(StepEnd::Done(result))
}

/// One element of a `for_each`, with its own context: its index and how it ended.
async fn run_element<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    context: Value,
    gathered: &Gathered,
    stored: &HashMap<StepKey, &StepState>,
) -> (u32, Result<StepEnd, RunError>) {
    let index = at.key.element.unwrap_or_default();
    let ended = match at.step.kind {
        Kind::Group(_) => run_group_element(host, templates, recipe, at, context, gathered, stored).await,
        _ => run_step(host, templates, recipe, at, &context, gathered).await,
    };
    (index, ended)
}

/// One element of a group: its `when`, then the group's steps in order over the
/// element's context, each recorded as that element's. Its result is the
/// steps' results by id; a step that failed or waits for a retry ends it so.
async fn run_group_element<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    mut context: Value,
    gathered: &Gathered,
    stored: &HashMap<StepKey, &StepState>,
) -> Result<StepEnd, RunError> {
    if at.state.is_none() {
        if let Some(when) = &at.step.when {
            match counted(host, recipe, templates.is_true(when, &context)) {
                Ok(true) => {}
                Ok(false) => return Ok(skip(host, gathered, at)),
                Err(error) => {
                    host.turn(at.step, at.key.element, Turn::NotRendered(&format!("`when`: {error}")));
                    return Err(RunError::StepWhen { step: at.name(), error });
                }
            }
        }
        gathered.step(at.write(StepStatus::Running, None, None));
    }
    let mut results = Map::new();
    for (position, member) in group_members(recipe, at) {
        let key = StepKey {
            position,
            element: at.key.element,
        };
        let state = stored.get(&key).copied();
        let member_at = StepAt {
            key,
            step: member,
            state,
            ..at
        };
        let ended = match state {
            Some(state) if ended(member, state) => {
                let result = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
                Ok(StepEnd::Done(result.unwrap_or(Value::Null)))
            }
            None if !branch_taken(member, &context) => Ok(skip(host, gathered, member_at)),
            _ => run_step(host, templates, recipe, member_at, &context, gathered).await,
        };
        match ended {
            Ok(StepEnd::Done(result)) => {
                context["steps"][member.id.as_str()] = result.clone();
                results.insert(member.id.clone(), result);
            }
            Ok(StepEnd::Retry(due)) => {
                gathered.step(at.write(StepStatus::Retrying, None, None));
                return Ok(StepEnd::Retry(due));
            }
            Ok(StepEnd::Wait(due)) => {
                gathered.step(at.write(StepStatus::Waiting, None, None));
                return Ok(StepEnd::Wait(due));
            }
            Err(error) if at.step.continue_on_error => {
                return Ok(go_on_after(recipe, gathered, at, &error.to_string(), None));
            }
            Err(error) => {
                gathered.step(at.write(StepStatus::Failed, None, None));
                return Err(error);
            }
        }
    }
    let result = Value::Object(results);
    gathered.step(at.write(StepStatus::Succeeded, None, Some(recipe.redactor.seal(&result))));
    Ok(StepEnd::Done(result))
}

/// A group's own steps with their positions (none for any other step).
fn group_members<'r>(recipe: &'r Recipe, at: StepAt<'_>) -> Vec<(usize, &'r Step)> {
    let members = match &at.step.kind {
        Kind::Group(group) => group.members,
        _ => 0,
    };
    recipe
        .steps
        .iter()
        .enumerate()
        .skip(at.key.position + 1)
        .take(members)
        .collect()
}

/// Whether no step runs after the one at `position` in the run's own order (a
/// group's steps run within it).
fn is_last(recipe: &Recipe, position: usize) -> bool {
    let phase = recipe.steps[position].on_failure;
    recipe.steps[position + 1..]
        .iter()
        .all(|step| step.within.is_some() || step.on_failure != phase)
}

/// Runs one attempt of a step (or of one element of a `for_each`): the first,
/// or the next after those recorded.
async fn run_step<H: Host>(
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
        Err(failure) => {
            gathered.step(at.write(StepStatus::Failed, None, None));
            return Err(match failure {
                AttemptFailure::NotRendered(message) => RunError::NotRendered {
                    step: at.name(),
                    message,
                },
                AttemptFailure::DamagedRequest => RunError::DamagedRequest(at.name()),
                AttemptFailure::Unrecorded(error) => RunError::Unrecorded { step: at.name(), error },
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

/// A render's result, with a render over its budget told to the host.
fn counted<H: Host, T>(host: &H, recipe: &Recipe, rendered: Result<T, TemplateError>) -> Result<T, TemplateError> {
    if let Err(TemplateError::OverBudget(over)) = &rendered {
        host.over_budget(recipe, over.name());
    }
    rendered
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

    async fn store_request(&mut self, sealed: Value) -> Result<(), String> {
        self.gathered
            .step(self.at.write(StepStatus::Running, Some(sealed), None));
        let gathered = self.gathered.take();
        self.host.store(gathered).await.map_err(|error| error.to_string())
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
