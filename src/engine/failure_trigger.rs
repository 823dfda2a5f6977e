//! The `failure` trigger: a failed run becomes one event for each recipe that
//! watches its recipe. The event's payload is an envelope, the shape every
//! operator event shares: `{event, run, input}`. It lives with the engine, not
//! with the other triggers: what fires it is a run's end, which the runner
//! records.
//!
//! The events are stored in the same transaction as the failed run's end (the
//! runner hands them to the store with it), so a failure recorded is a failure
//! run queued, whatever happens to the daemon after the commit.

use serde_json::{Map, Value, json};

use crate::event::Event;
use crate::recipe::RecipeSet;

/// The envelope's `event` for a run that failed.
pub const RUN_FAILED: &str = "run.failed";

/// The trigger kind the runs it starts are recorded with.
pub const KIND: &str = "failure";

/// A run that ended `failed`, as its envelope tells it.
#[derive(Debug)]
pub struct FailedRun<'a> {
    pub id: &'a str,
    pub recipe: &'a str,
    /// The run's error, as recorded.
    pub error: &'a str,
    /// The step that failed; `None` when the run failed outside a step (its
    /// `when`, its `timeout`, a recipe no longer loaded).
    pub failed_step: Option<String>,
    /// The HTTP status of that step's last answer; `None` when none came.
    pub status: Option<u16>,
    /// The failed run's trigger input (its payload).
    pub input: Value,
}

/// The payload of a failure run.
pub fn envelope(failed: &FailedRun<'_>, public_url: &str) -> Value {
    json!({
        "event": RUN_FAILED,
        "run": {
            "id": failed.id,
            "recipe": failed.recipe,
            "error": failed.error,
            "failed_step": failed.failed_step,
            "status": failed.status,
            "url": format!("{public_url}/runs/{}", failed.id),
        },
        "input": failed.input,
    })
}

/// The runs a failed run starts: one per enabled recipe watching its recipe,
/// none for a run a failure trigger started (alerts do not chain).
pub fn events(recipes: &RecipeSet, failed: &FailedRun<'_>, trigger: &str, public_url: &str) -> Vec<Event> {
    if trigger == KIND {
        return Vec::new();
    }
    let mut watchers = recipes.failure_watchers(failed.recipe).peekable();
    if watchers.peek().is_none() {
        return Vec::new();
    }
    let payload = envelope(failed, public_url);
    let received_at = chrono::Utc::now();
    watchers
        .map(|recipe| Event {
            run_id: uuid::Uuid::now_v7().to_string(),
            recipe: recipe.id.clone(),
            recipe_version: recipe.version.clone(),
            trigger: KIND,
            payload: payload.clone(),
            payload_text: None,
            headers: Map::new(),
            query: Map::new(),
            received_at,
            dedup_key: None,
            replay_of: None,
        })
        .collect()
}

/// The payload `ferry run` and `ferry test` give a failure recipe when they
/// are given none: the envelope of a made-up failed run.
pub fn example(public_url: &str) -> Value {
    let failed = FailedRun {
        id: "00000000-0000-7000-8000-000000000000",
        recipe: "example",
        error: "step `send` after 3 attempts: HTTP 503",
        failed_step: Some("send".to_owned()),
        status: Some(503),
        input: json!({}),
    };
    envelope(&failed, public_url)
}
