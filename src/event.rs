//! An event: one occurrence of a trigger, everything a run needs to start. The
//! triggers make them, the engine starts them and the store keeps them; it sits
//! below all three.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// One occurrence of a trigger: everything a run needs to start.
#[derive(Debug, Clone)]
pub struct Event {
    /// The id the run gets (UUIDv7: sortable by time), chosen before it is stored
    /// so that a waiting webhook can subscribe to its end first.
    pub run_id: String,
    pub recipe: String,
    pub recipe_version: String,
    /// The trigger kind: `webhook`, `schedule`, `poll`, `failure` or `manual`.
    pub trigger: &'static str,
    pub payload: Value,
    /// `payload` as the JSON text it was parsed from, when it was (a webhook's
    /// JSON body): stored as it is rather than serialised again.
    pub payload_text: Option<String>,
    /// Request headers, lower-cased names.
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
    pub received_at: DateTime<Utc>,
    /// A delivery's identity: one run per key and recipe.
    pub dedup_key: Option<String>,
    /// The run this one replays (`POST /api/v1/runs/{id}/replay`).
    pub replay_of: Option<String>,
}

/// `trigger` in a run's templates.
pub fn trigger_context(recipe: &str, kind: &str, received_at: &str, run_id: &str) -> Value {
    json!({
        "recipe": recipe,
        "kind": kind,
        "received_at": received_at,
        "run_id": run_id,
    })
}
