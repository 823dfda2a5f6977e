//! A run in the foreground, without the store: what `ferry run` and `ferry test`
//! do. It is the daemon's run loop (`run_loop/`) with another host: where the
//! requests go is the [`Exchange`], and what happened goes to a report. One
//! attempt per step: retries are the daemon's, and a canned or printed answer
//! would not change between attempts.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::run_loop::{self, Host, Progress, RunState};
use crate::action::{self, Destinations, HttpRequest, HttpResponse, Outcome};
use crate::recipe::{Recipe, Step};
use crate::store::{self, FinalStatus, RunWrite};
use crate::template::Templates;

/// Where a rehearsal's requests go.
pub enum Exchange<'a> {
    /// Sent for real (`ferry run`), under the daemon's destination policy.
    Network(&'a Destinations),
    /// Not sent (`ferry run --dry-run`): every request is answered `200 {}`, so that
    /// later steps render (with empty values where they use an answer).
    DryRun,
    /// Answered from a test case by step id; a step without one gets `200 {}`.
    Canned(&'a BTreeMap<String, HttpResponse>),
}

/// What started the run: the trigger kind and its input.
#[derive(Debug, Clone)]
pub struct TriggerInput {
    pub kind: &'static str,
    pub payload: Value,
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
}

/// How a rehearsed run went.
#[derive(Debug)]
pub struct Rehearsal {
    pub status: FinalStatus,
    /// Why the run failed.
    pub error: Option<String>,
    /// The steps that had their turn, in order.
    pub steps: Vec<StepTrace>,
}

/// One step's turn, or one element's of a `for_each` step.
#[derive(Debug)]
pub struct StepTrace {
    pub id: String,
    /// The element's index, for an element of a `for_each`.
    pub element: Option<u32>,
    pub turn: Turn,
}

/// What a step did.
#[derive(Debug)]
pub enum Turn {
    /// Its `when` was false.
    Skipped,
    /// A `log` step's line.
    Logged(String),
    /// A `set` step's values.
    Set(Value),
    /// A `switch` step's value and the case it chose.
    Switched { value: String, case: Option<String> },
    /// An `http` step's request and what came of it.
    Http(Box<HttpTurn>),
    /// Its templates did not render.
    NotRendered(String),
    /// A `for_each` step's elements all ended: how many.
    Looped(usize),
    /// A `delay` step, and when the run would go on (the foreground goes on at once).
    Delayed(String),
}

/// An `http` step's request and what came of it.
#[derive(Debug)]
pub struct HttpTurn {
    pub request: HttpRequest,
    /// `None` when no answer came (connection error, timeout).
    pub response: Option<HttpResponse>,
    /// Whether the request really went out.
    pub sent: bool,
    pub duration: Duration,
    pub error: Option<String>,
}

/// The answer a step gets when nothing else answers: `200 {}`.
pub fn empty_answer() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: Map::new(),
        text: "{}".to_owned(),
        body: json!({}),
    }
}

/// A rehearsal as the run loop's host: requests go where the [`Exchange`] says,
/// one attempt per step, and each step's turn goes to the report.
struct Foreground<'a, 'c> {
    exchange: &'a Exchange<'a>,
    /// The report so far, and who sees each turn as it ends; the elements of a
    /// `for_each` with `parallel` end in any order.
    report: Mutex<Report<'c>>,
}

struct Report<'c> {
    steps: Vec<StepTrace>,
    on_step: &'c mut (dyn FnMut(&StepTrace) + Send),
}

impl Host for Foreground<'_, '_> {
    async fn exchange(&self, step: &Step, request: &HttpRequest) -> (Outcome, bool) {
        match self.exchange {
            Exchange::Network(destinations) => (action::http::execute(destinations, request, step.timeout).await, true),
            Exchange::DryRun => (action::http::classify(request, empty_answer()), false),
            Exchange::Canned(answers) => {
                let answer = answers.get(&step.id).cloned().unwrap_or_else(empty_answer);
                (action::http::classify(request, answer), false)
            }
        }
    }

    async fn store(&self, _write: RunWrite) -> Result<(), store::Error> {
        // Nothing is stored: the report is the record.
        Ok(())
    }

    fn render_heavy<T: Send>(&self, render: impl FnOnce() -> T + Send) -> impl Future<Output = T> + Send {
        // In place: the foreground runs one run at a time.
        let rendered = render();
        async move { rendered }
    }

    fn retries(&self) -> bool {
        false
    }

    fn over_budget(&self, _recipe: &Recipe, _budget: &'static str) {}

    fn attempted(&self, _recipe: &Recipe, _succeeded: bool, _elapsed: Duration) {}

    fn log(&self, _run_id: &str, _step: &Step, _line: &str) {}

    fn cancelled(&self, _run_id: &str) -> bool {
        false
    }

    fn turn(&self, step: &Step, element: Option<u32>, turn: crate::step::Turn<'_>) {
        let turn = match turn {
            crate::step::Turn::Skipped => Turn::Skipped,
            crate::step::Turn::Logged(line) => Turn::Logged(line.to_owned()),
            crate::step::Turn::Set(values) => Turn::Set(values.clone()),
            crate::step::Turn::Switched { value, case } => Turn::Switched {
                value: value.to_owned(),
                case: case.map(str::to_owned),
            },
            crate::step::Turn::NotRendered(error) => Turn::NotRendered(error.to_owned()),
            crate::step::Turn::Looped(count) => Turn::Looped(count),
            crate::step::Turn::Delayed(until) => Turn::Delayed(until.to_owned()),
            crate::step::Turn::Http {
                request,
                response,
                sent,
                duration,
                error,
            } => Turn::Http(Box::new(HttpTurn {
                request: request.clone(),
                response: response.cloned(),
                sent,
                duration,
                error: error.map(ToString::to_string),
            })),
        };
        let trace = StepTrace {
            id: step.id.clone(),
            element,
            turn,
        };
        let mut report = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        (report.on_step)(&trace);
        report.steps.push(trace);
    }
}

/// Runs `recipe` once on `input`, through the daemon's run loop. `on_step` sees
/// each step as its turn ends (so `ferry run` can print while a slow
/// destination answers).
pub async fn rehearse(
    recipe: &Recipe,
    templates: &Templates,
    public_url: &str,
    input: TriggerInput,
    exchange: &Exchange<'_>,
    on_step: &mut (dyn FnMut(&StepTrace) + Send),
) -> Rehearsal {
    let run_id = uuid::Uuid::now_v7().to_string();
    let received_at = crate::timestamp::timestamp(chrono::Utc::now());
    let trigger = crate::event::trigger_context(&recipe.id, input.kind, &received_at, &run_id);
    let mut context = run_loop::run_context(
        trigger,
        public_url,
        input.payload,
        Value::Object(input.headers),
        Value::Object(input.query),
    );
    let host = Foreground {
        exchange,
        report: Mutex::new(Report {
            steps: Vec::new(),
            on_step,
        }),
    };
    let state = RunState {
        run_id: &run_id,
        context: &mut context,
        stored: &[],
        // One attempt per step, no waits: a rehearsal cannot outlast it.
        deadline: None,
    };
    let mut write = RunWrite::new(&run_id);
    let progress = run_loop::run_recipe(&host, templates, recipe, state, &mut write).await;
    let (status, error) = match progress {
        Ok(Progress::Ended(status, _)) => (status, None),
        // One attempt per step: a rehearsal never waits for a retry.
        Ok(Progress::WaitsForRetry(_)) => (FinalStatus::Failed, Some("a step asked to be retried".to_owned())),
        // The foreground does not wait: a delay goes on at once.
        Ok(Progress::Waits(_)) => (FinalStatus::Failed, Some("a step asked to wait".to_owned())),
        Err(error) => (FinalStatus::Failed, Some(error.to_string())),
    };
    Rehearsal {
        status,
        error,
        steps: host.report.into_inner().unwrap_or_else(PoisonError::into_inner).steps,
    }
}
