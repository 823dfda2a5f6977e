//! The `log` step: a rendered line recorded in the run (and the daemon's log).
//! No network.

/// Writes the line to the daemon's log under the run's id.
pub fn execute(run_id: &str, step_id: &str, line: &str) {
    tracing::info!(run = run_id, step = step_id, "{line}");
}
