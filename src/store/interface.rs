//! The store's interface types: what callers hand the store (a run's changes, a
//! filter) and what it gives back (claimed runs, listings, the run document).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::status::{FinalStatus, RunStatus, StepStatus};

/// A run the engine has claimed: its trigger input, and the steps it recorded
/// if it ran before (after a retry wait or a restart).
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: String,
    pub recipe: String,
    /// The version of the recipe it was queued (or last ran) under.
    pub recipe_version: String,
    pub trigger: String,
    pub received_at: String,
    /// When it first started (a resumed run keeps it); `None`: now.
    pub started_at: Option<String>,
    pub payload: Value,
    pub headers: Value,
    pub query: Value,
    pub steps: Vec<StepState>,
}

impl ClaimedRun {
    /// A run that starts as it is stored, from the event itself: nothing is read
    /// back or parsed again, and no step has run.
    pub fn fresh(event: crate::event::Event) -> Self {
        Self {
            received_at: super::timestamp(event.received_at),
            id: event.run_id,
            recipe: event.recipe,
            recipe_version: event.recipe_version,
            trigger: event.trigger.to_owned(),
            started_at: None,
            payload: event.payload,
            headers: Value::Object(event.headers),
            query: Value::Object(event.query),
            steps: Vec::new(),
        }
    }
}

/// How a new run enters the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `queued`: the dispatcher claims it when there is room.
    Queued,
    /// `running`, claimed by the caller, who runs it once it is committed (a crash
    /// before it ends queues it again at the next start, like any running run).
    Running,
}

/// Changes to one run that are stored together, in one commit.
#[derive(Debug, Clone)]
pub struct RunWrite {
    pub run_id: String,
    pub steps: Vec<StepWrite>,
    /// Attempts with the step (or loop element) they belong to.
    pub attempts: Vec<(StepKey, AttemptWrite)>,
    pub change: Option<RunChange>,
    /// Set when the run runs with another version of its recipe than the one
    /// recorded: the record names the version that ran.
    pub recipe_version: Option<String>,
    /// Runs its end starts (a `failure` trigger's), queued in the same
    /// commit: an end recorded is never one whose runs were lost.
    pub new_runs: Vec<crate::event::Event>,
}

impl RunWrite {
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            steps: Vec::new(),
            attempts: Vec::new(),
            change: None,
            recipe_version: None,
            new_runs: Vec::new(),
        }
    }
}

/// One attempt to record: an [`AttemptRecord`] whose request and response are
/// already JSON text (written by the runner straight from what it sent and got).
#[derive(Debug, Clone)]
pub struct AttemptWrite {
    pub n: u32,
    pub started_at: String,
    pub duration_ms: u64,
    pub request: String,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// Which record of a run a step's progress goes to: the step itself, or one
/// element of its `for_each`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey {
    /// The step's place in the recipe (branch steps after their switch).
    pub position: usize,
    /// The element's index from 0; `None` for the step itself.
    pub element: Option<u32>,
}

impl StepKey {
    /// The step itself.
    pub fn step(position: usize) -> Self {
        Self {
            position,
            element: None,
        }
    }
}

/// A step's new status; a stored `request` or `result` stays when this has none.
#[derive(Debug, Clone)]
pub struct StepWrite {
    pub key: StepKey,
    pub step_id: String,
    pub kind: crate::step::KindName,
    pub status: StepStatus,
    /// The request rendered at the first attempt (sealed).
    pub request: Option<Value>,
    /// `steps.<id>` for the steps after it (sealed).
    pub result: Option<Value>,
    /// A step of the recipe's `on_failure`.
    pub on_failure: bool,
}

/// Where a run goes when the runner lets go of it.
#[derive(Debug, Clone)]
pub enum RunChange {
    /// Waits as `retrying` until its next attempt is due.
    RetryAt(chrono::DateTime<chrono::Utc>),
    /// Waits as `waiting` until a `delay` step's time.
    WaitUntil(chrono::DateTime<chrono::Utc>),
    /// Ends: succeeded, failed or skipped.
    End(FinalStatus, Option<String>),
}

/// What storing a run's changes found of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored; the run goes on.
    Stored,
    /// Stored, and the run is `cancelled` in the store: cancelled by another
    /// process on the database (`ferry runs cancel`) while it ran. Asked only
    /// by writes in the middle of a run (those with no change of status).
    Cancelled,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The run was in this status, and is `cancelled` now.
    Was(RunStatus),
    /// The run had ended with this status: nothing changed.
    Ended(RunStatus),
}

/// What a resume did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopened {
    /// The run was in this status (`failed` or `cancelled`), and is queued now.
    Was(RunStatus),
    /// The run is in this status, which does not resume: nothing changed.
    Not(RunStatus),
}

/// What storing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new run, queued.
    New(String),
    /// The event's dedup key was seen before: the first run with it.
    Duplicate(String),
}

/// What the store holds of one step of a run that is being resumed.
#[derive(Debug, Clone)]
pub struct StepState {
    pub key: StepKey,
    pub status: StepStatus,
    /// The request as rendered at the first attempt (sealed).
    pub request: Option<Value>,
    /// `steps.<id>` once the step has finished (sealed).
    pub result: Option<Value>,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// Those it had when it was last resumed in place: its retries count from
    /// there.
    pub attempts_before: u32,
}

/// One attempt of one step, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptRecord {
    pub n: u32,
    pub started_at: String,
    pub duration_ms: u64,
    /// The request as sent: `method`, `url`, `headers`, `body`; `null` when no
    /// request could be built (the step's templates failed).
    #[schema(value_type = Option<Object>)]
    pub request: Value,
    /// `status`, `headers`, `body`, `truncated`; `null` when no answer came.
    #[schema(value_type = Option<Object>)]
    pub response: Option<Value>,
    pub error: Option<String>,
}

/// A run in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: String,
    pub recipe: String,
    pub recipe_version: String,
    pub trigger: String,
    pub status: RunStatus,
    pub replay_of: Option<String>,
    pub received_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub error: Option<String>,
}

/// One step in the run document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepDocument {
    pub id: String,
    /// How to read its attempts: an `http` step's request is `method`, `url`,
    /// `headers`, `body`; a `log` step's is `{"log": line}`.
    pub kind: crate::step::KindName,
    pub status: StepStatus,
    pub attempts: Vec<AttemptRecord>,
    /// A `for_each` step's elements that began, in order, each with its own
    /// attempts; absent for other steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ElementDocument>>,
}

/// One element of a `for_each` step in the run document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ElementDocument {
    /// From 0, in the list's order.
    pub index: u32,
    pub status: StepStatus,
    pub attempts: Vec<AttemptRecord>,
}

/// `GET /api/v1/runs/{id}`: the summary, the trigger input and every attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDocument {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// The trigger input: any JSON value a webhook sent, `{}` for none.
    #[schema(value_type = Value)]
    pub payload: Value,
    #[schema(value_type = Object)]
    pub headers: Value,
    #[schema(value_type = Object)]
    pub query: Value,
    pub steps: Vec<StepDocument>,
    /// The steps the recipe's `on_failure` ran after the run failed; absent
    /// when none ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<StepDocument>,
}

/// Which runs a listing shows: newest first, older than `before` when paging.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub recipe: Option<String>,
    pub status: Option<RunStatus>,
    /// Received at or after this time (a stored timestamp).
    pub since: Option<String>,
    /// Received before this time (a stored timestamp).
    pub until: Option<String>,
    /// Only runs with an id below this one (the cursor of the previous page).
    pub before: Option<String>,
    pub limit: u32,
}

/// The queue at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    pub queued: u64,
    pub retrying: u64,
    /// Runs a `delay` step holds.
    pub waiting: u64,
    /// How long the oldest queued run has waited; `None` with none queued.
    pub oldest_queued_age: Option<std::time::Duration>,
}
