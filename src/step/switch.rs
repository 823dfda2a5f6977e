//! The `switch` step: a template whose value chooses which of the step's
//! branches runs (`cases:` by value, else `default:`). The branches' steps are
//! steps of the recipe like any other, each guarded by this step's choice: the
//! run loop records those of the branches not taken `skipped`. The step's
//! result, `steps.ID`, is `{value, case}`: `case` is the case that ran,
//! `"default"`, or `null` when nothing did.

use serde_json::json;

use super::{AttemptInput, Attempted, Attempts, Turn, counted};
use crate::action::Outcome;
use crate::template::Template;

/// What `steps.ID.case` says when the `default` branch ran: a case may not have
/// this name.
pub const DEFAULT_CASE: &str = "default";

/// A `switch` step once loaded.
#[derive(Debug)]
pub struct SwitchStep {
    pub value: Template,
    /// The names of its cases, in the order written.
    pub cases: Vec<String>,
    pub has_default: bool,
}

impl SwitchStep {
    /// The case a rendered value chooses: the case whose name is its text,
    /// else `default` if there is one.
    pub fn choose(&self, value: &str) -> Option<&str> {
        self.cases
            .iter()
            .map(String::as_str)
            .find(|case| *case == value)
            .or(self.has_default.then_some(DEFAULT_CASE))
    }

    /// One attempt: the value rendered and the case chosen.
    pub(super) async fn attempt(&self, input: AttemptInput<'_>, host: &mut impl Attempts) -> Attempted {
        let rendered = input.templates.render_text(&self.value, input.context);
        match counted(host, rendered) {
            Ok(value) => {
                let case = self.choose(&value);
                host.turn(Turn::Switched { value: &value, case });
                let result = json!({"value": value, "case": case});
                Attempted {
                    record: crate::json::text(&json!({"switch": input.redactor.text(&value), "case": case})),
                    outcome: Outcome::Succeeded { response: None },
                    result,
                    unstored: None,
                }
            }
            Err(error) => Attempted::not_rendered(host, input.redactor, &error),
        }
    }
}
