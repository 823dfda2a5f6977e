//! What Ferry counts, through the `metrics` facade: every name and label in one
//! place. `GET /metrics` renders them (see `api::metrics`).

use std::time::Duration;

/// Runs by recipe and final status.
pub fn run_ended(recipe: &str, status: &'static str) {
    metrics::counter!("ferry_runs_total", "recipe" => recipe.to_owned(), "status" => status).increment(1);
}

/// Step attempts by recipe and outcome (`succeeded` or `failed`), and their
/// duration.
pub fn attempt(recipe: &str, succeeded: bool, duration: Duration) {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    metrics::counter!("ferry_step_attempts_total", "recipe" => recipe.to_owned(), "outcome" => outcome).increment(1);
    metrics::histogram!("ferry_step_duration_seconds", "recipe" => recipe.to_owned()).record(duration.as_secs_f64());
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
