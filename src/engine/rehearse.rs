//! A run in the foreground, without the store: what `ferry run` and `ferry test`
//! do. The steps are rendered exactly as the daemon renders them; only where the
//! requests go differs ([`Exchange`]). One attempt per step: retries are the
//! daemon's, and a canned or printed answer would not change between attempts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::render;
use super::runner::{run_context, step_result};
use crate::action::{self, Destinations, HttpRequest, HttpResponse, Outcome};
use crate::recipe::{Action, Recipe};
use crate::store::FinalStatus;
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

/// One step's turn.
#[derive(Debug)]
pub struct StepTrace {
    pub id: String,
    pub turn: Turn,
}

/// What a step did.
#[derive(Debug)]
pub enum Turn {
    /// Its `when` was false.
    Skipped,
    /// A `log` step's line.
    Logged(String),
    /// An `http` step's request and what came of it.
    Http(Box<HttpTurn>),
    /// Its templates did not render.
    NotRendered(String),
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

/// Runs `recipe` once on `input`. `on_step` sees each step as its turn ends (so
/// `ferry run` can print while a slow destination answers).
pub async fn rehearse(
    recipe: &Recipe,
    templates: &Templates,
    public_url: &str,
    input: TriggerInput,
    exchange: &Exchange<'_>,
    on_step: &mut dyn FnMut(&StepTrace),
) -> Rehearsal {
    let run_id = uuid::Uuid::now_v7().to_string();
    let trigger = json!({
        "recipe": recipe.id,
        "kind": input.kind,
        "received_at": crate::store::timestamp(chrono::Utc::now()),
        "run_id": run_id,
    });
    let mut context = run_context(
        trigger,
        public_url,
        input.payload,
        Value::Object(input.headers),
        Value::Object(input.query),
    );
    let mut rehearsal = Rehearsal {
        status: FinalStatus::Succeeded,
        error: None,
        steps: Vec::new(),
    };
    if let Some(when) = &recipe.when {
        match templates.is_true(when, &context) {
            Ok(true) => {}
            Ok(false) => {
                rehearsal.status = FinalStatus::Skipped;
                return rehearsal;
            }
            Err(error) => return failed(rehearsal, format!("`when`: {error}")),
        }
    }

    for step in &recipe.steps {
        let (turn, result) = take_turn(templates, step, &run_id, &context, exchange).await;
        let trace = StepTrace {
            id: step.id.clone(),
            turn,
        };
        on_step(&trace);
        let failure = match &trace.turn {
            Turn::NotRendered(error) => Some(format!("step `{}`: {error}", step.id)),
            Turn::Http(http) => http.error.as_ref().map(|error| format!("step `{}`: {error}", step.id)),
            _ => None,
        };
        rehearsal.steps.push(trace);
        if let Some(error) = failure {
            return failed(rehearsal, error);
        }
        context["steps"][step.id.as_str()] = result;
    }
    rehearsal
}

fn failed(mut rehearsal: Rehearsal, error: String) -> Rehearsal {
    rehearsal.status = FinalStatus::Failed;
    rehearsal.error = Some(error);
    rehearsal
}

/// One step: its turn, and its `steps.<id>` for the steps after it.
async fn take_turn(
    templates: &Templates,
    step: &crate::recipe::Step,
    run_id: &str,
    context: &Value,
    exchange: &Exchange<'_>,
) -> (Turn, Value) {
    if let Some(when) = &step.when {
        match templates.is_true(when, context) {
            Ok(true) => {}
            Ok(false) => return (Turn::Skipped, json!({"skipped": true})),
            Err(error) => return (Turn::NotRendered(format!("`when`: {error}")), Value::Null),
        }
    }
    let http = match &step.action {
        Action::Log(template) => {
            return match templates.render_text(template, context) {
                Ok(line) => (Turn::Logged(line.clone()), json!({"log": line})),
                Err(error) => (Turn::NotRendered(error.to_string()), Value::Null),
            };
        }
        Action::Http(http) => http,
    };
    let idempotency_key = format!("{run_id}.{}", step.id);
    let request = match render::http_request(templates, http, context, &idempotency_key) {
        Ok(request) => request,
        Err(error) => return (Turn::NotRendered(error.to_string()), Value::Null),
    };
    let started = Instant::now();
    let (outcome, sent) = match exchange {
        Exchange::Network(destinations) => (action::http::execute(destinations, &request, step.timeout).await, true),
        Exchange::DryRun => (action::http::classify(&request, empty_answer()), false),
        Exchange::Canned(answers) => {
            let answer = answers.get(&step.id).cloned().unwrap_or_else(empty_answer);
            (action::http::classify(&request, answer), false)
        }
    };
    let duration = started.elapsed();
    let (response, error) = match outcome {
        Outcome::Succeeded { response } => (response, None),
        Outcome::Failed { response, error } => (response, Some(error.to_string())),
    };
    let result = match (&response, &error) {
        (Some(response), None) => step_result(response),
        _ => Value::Null,
    };
    let turn = Turn::Http(Box::new(HttpTurn {
        request,
        response,
        sent,
        duration,
        error,
    }));
    (turn, result)
}
