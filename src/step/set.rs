//! The `set` step: a tree of templates rendered into values that later steps
//! read as `steps.ID.<key>` (`set: {count: "{{len payload.items}}"}` gives
//! `steps.ID.count`, a number). No network; it is a step so that it has an id,
//! a `when` and a place in the run's record.

use serde_json::Value;
use serde_saphyr::Location;

use super::{AttemptInput, Attempted, Attempts, Turn, counted};
use crate::action::Outcome;
use crate::checks::Checker;
use crate::environment::TemplateTree;
use crate::template::ValueTemplate;

/// A `set` step once loaded.
#[derive(Debug)]
pub struct SetStep {
    pub tree: ValueTemplate,
    has_blocks: bool,
}

/// Its checks: a map whose leaves are templates (each checked).
pub(super) fn check(
    checker: &mut Checker<'_>,
    label: &str,
    location: Location,
    tree: &TemplateTree,
) -> Option<SetStep> {
    if !matches!(tree.value, Value::Object(_)) {
        checker.report(
            tree.referenced,
            format!("{label} `set` must be a map of names to values (`set: {{count: \"{{{{len payload.items}}}}\"}}`)"),
        );
        return None;
    }
    let compiled = match ValueTemplate::compile(&tree.value) {
        Ok(compiled) => compiled,
        Err(error) => {
            checker.report(location, format!("{label} `set`: {error}"));
            return None;
        }
    };
    let mut clean = true;
    for (path, template) in compiled.templates() {
        clean &= checker
            .checked(template.clone(), tree.referenced, &format!("{label} `set` at {path}"))
            .is_some();
    }
    let has_blocks = compiled.templates().iter().any(|(_, template)| template.has_blocks());
    clean.then_some(SetStep {
        tree: compiled,
        has_blocks,
    })
}

impl SetStep {
    /// One attempt: the tree rendered; its values are the step's result.
    pub(super) async fn attempt(&self, input: AttemptInput<'_>, host: &mut impl Attempts) -> Attempted {
        let render = || input.templates.render_tree(&self.tree, input.context);
        let rendered = if self.has_blocks {
            host.render_heavy(render).await
        } else {
            render()
        };
        match counted(host, rendered) {
            Ok(values) => {
                host.turn(Turn::Set(&values));
                let record = serde_json::json!({"set": input.redactor.value(&values)});
                Attempted {
                    record: crate::json::text(&record),
                    outcome: Outcome::Succeeded { response: None },
                    result: values,
                    unstored: None,
                }
            }
            Err(error) => Attempted::not_rendered(host, input.redactor, &error),
        }
    }
}
