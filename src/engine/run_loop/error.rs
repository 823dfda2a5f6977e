//! Why a run failed: the run's stored `error`, and what `on_failure` reads of it.

use serde_json::{Value, json};

use crate::recipe::Step;
use crate::template::TemplateError;

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
pub(super) fn step_name(step: &Step, element: Option<u32>) -> String {
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
