//! The `NAME.test.yaml` format: a list of cases, each a trigger input, canned
//! answers for steps, and what the run must do.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::action::HttpResponse;
use crate::store::FinalStatus;

/// One case of a recipe test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Values for `${NAME}` in the recipe, over the real environment: a test does
    /// not depend on the machine it runs on. They are test data, not secrets.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The trigger input (default: `{}`, or `scheduled_at`/`fired_at` of now for
    /// schedules).
    #[serde(default)]
    pub payload: Option<Value>,
    /// Webhook request headers (names are matched case-insensitively).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Webhook query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Answers of `http` steps by step id (default `200 {}`).
    #[serde(default)]
    pub responses: BTreeMap<String, CannedAnswer>,
    /// For poll recipes: what the source answers and which keys were seen before.
    #[serde(default)]
    pub poll: Option<PolledInput>,
    pub expect: Expectation,
}

/// An answer written in a test: a string body is text, anything else JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedAnswer {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "empty_object")]
    pub body: Value,
}

fn ok_status() -> u16 {
    200
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl CannedAnswer {
    /// The answer as a destination would give it: JSON bodies carry their content
    /// type, headers have lower-case names.
    pub fn to_response(&self) -> HttpResponse {
        let mut headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), Value::String(value.clone())))
            .collect();
        let text = match &self.body {
            Value::String(text) => text.clone(),
            json => {
                headers
                    .entry("content-type")
                    .or_insert_with(|| Value::String("application/json".to_owned()));
                json.to_string()
            }
        };
        HttpResponse {
            status: self.status,
            headers,
            text,
            body: self.body.clone(),
        }
    }
}

/// A poll case's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolledInput {
    pub response: CannedAnswer,
    /// Keys remembered from earlier polls: their items start no run.
    #[serde(default)]
    pub seen: Vec<String>,
}

/// What a run must do. For poll cases, `runs` lists one expectation per new item.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Default: `succeeded`.
    #[serde(default)]
    pub status: Option<ExpectedStatus>,
    /// Text the run's error must contain.
    #[serde(default)]
    pub error: Option<String>,
    /// By step id, in any order; steps not named are not checked.
    #[serde(default)]
    pub steps: BTreeMap<String, ExpectedStep>,
    /// Poll cases: the runs the new items start, in the source's order.
    #[serde(default)]
    pub runs: Option<Vec<Expectation>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedStatus {
    Succeeded,
    Failed,
    Skipped,
}

impl ExpectedStatus {
    pub fn name(self) -> &'static str {
        match self {
            ExpectedStatus::Succeeded => "succeeded",
            ExpectedStatus::Failed => "failed",
            ExpectedStatus::Skipped => "skipped",
        }
    }

    pub fn of(status: FinalStatus) -> Self {
        match status {
            FinalStatus::Succeeded => ExpectedStatus::Succeeded,
            FinalStatus::Failed => ExpectedStatus::Failed,
            FinalStatus::Skipped => ExpectedStatus::Skipped,
        }
    }
}

/// What one step must have done. Every field given is checked; `headers`,
/// `json` and `form` are subsets (more in the request is fine), `url` and `body`
/// are exact.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedStep {
    /// `true`: the step's `when` was false; `false`: it ran.
    #[serde(default)]
    pub skipped: Option<bool>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub json: Option<Value>,
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub body: Option<String>,
    /// A `log` step's line.
    #[serde(default)]
    pub log: Option<String>,
    /// A `set` step's values (those named; others are not compared).
    #[serde(default)]
    pub set: Option<serde_json::Map<String, Value>>,
    /// A `for_each` step: what each element did, in the list's order; the
    /// number of elements is checked too.
    #[serde(default)]
    pub items: Option<Vec<ExpectedStep>>,
}
