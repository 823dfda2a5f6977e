//! What Ferry counts, through the `metrics` facade: every name and label in one
//! place. `GET /metrics` renders them (see `api::metrics`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};

use crate::store::FinalStatus;

/// Runs by recipe and final status (for a run whose recipe is no longer loaded;
/// see [`RecipeMetrics`]).
pub fn run_ended(recipe: &str, status: &'static str) {
    metrics::counter!("ferry_runs_total", "recipe" => recipe.to_owned(), "status" => status).increment(1);
}

fn outcome(succeeded: bool) -> &'static str {
    if succeeded { "succeeded" } else { "failed" }
}

/// A loaded recipe's series, each registered with the recorder at its first use
/// and kept: looking a series up by its labels at every run and attempt cost
/// about 1 % of a webhook's instructions. Registered at first use rather than at
/// load, so that a recorder installed after the recipes loaded still gets them.
pub struct RecipeMetrics {
    recipe: String,
    runs: [OnceLock<Counter>; 3],
    attempts: [OnceLock<Counter>; 2],
    durations: OnceLock<Histogram>,
}

impl RecipeMetrics {
    pub fn new(recipe: &str) -> Self {
        Self {
            recipe: recipe.to_owned(),
            runs: Default::default(),
            attempts: Default::default(),
            durations: OnceLock::new(),
        }
    }

    /// Counts a run that ended, by its final status.
    pub fn run_ended(&self, status: FinalStatus) {
        let (index, status) = match status {
            FinalStatus::Succeeded => (0, "succeeded"),
            FinalStatus::Failed => (1, "failed"),
            FinalStatus::Skipped => (2, "skipped"),
        };
        self.runs[index]
            .get_or_init(|| metrics::counter!("ferry_runs_total", "recipe" => self.recipe.clone(), "status" => status))
            .increment(1);
    }

    /// Counts a step attempt by outcome (`succeeded` or `failed`), and records
    /// its duration.
    pub fn attempt(&self, succeeded: bool, duration: Duration) {
        self.attempts[usize::from(!succeeded)]
            .get_or_init(|| {
                metrics::counter!("ferry_step_attempts_total", "recipe" => self.recipe.clone(), "outcome" => outcome(succeeded))
            })
            .increment(1);
        self.durations
            .get_or_init(|| metrics::histogram!("ferry_step_duration_seconds", "recipe" => self.recipe.clone()))
            .record(duration.as_secs_f64());
    }
}

impl std::fmt::Debug for RecipeMetrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecipeMetrics")
            .field("recipe", &self.recipe)
            .finish_non_exhaustive()
    }
}

/// A poll that failed (the source did not answer, or not with items).
pub fn poll_failed(recipe: &str) {
    metrics::counter!("ferry_poll_failures_total", "recipe" => recipe.to_owned()).increment(1);
}

/// Webhook requests by outcome: `accepted`, `duplicate`, `answered` (`respond:
/// wait`), `unauthorized`, `rate_limited`, `too_large`, `not_found`,
/// `bad_request`, `timeout`, `unavailable`.
pub fn hook(outcome: &'static str) {
    metrics::counter!("ferry_webhook_requests_total", "outcome" => outcome).increment(1);
}

/// The queue as the store sees it at a scrape.
pub fn queue(queued: u64, retrying: u64, oldest_queued_age: Option<Duration>) {
    metrics::gauge!("ferry_queue_depth").set(queued as f64);
    metrics::gauge!("ferry_runs_retrying").set(retrying as f64);
    metrics::gauge!("ferry_oldest_queued_seconds").set(oldest_queued_age.map_or(0.0, |age| age.as_secs_f64()));
}

/// Step duration buckets, in seconds: from a fast local call to a slow API.
pub const STEP_DURATION_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
