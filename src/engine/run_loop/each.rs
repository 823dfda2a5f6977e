//! A `for_each` step: its list, its elements up to `parallel` at once, and a
//! group's steps run per element.

use std::collections::HashMap;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::attempt::run_step;
use super::error::RunError;
use super::{Gathered, Host, Kept, StepAt, StepEnd, branch_taken, counted, ended, go_on_after, is_last, skip};
use crate::recipe::{ForEach, Recipe, Step};
use crate::step::{Kind, Turn};
use crate::store::{StepKey, StepState, StepStatus};
use crate::template::Templates;

/// A `for_each` step's loop, and what the store kept of its elements.
pub(super) struct Elements<'a> {
    pub each: &'a ForEach,
    pub stored: &'a HashMap<StepKey, &'a StepState>,
    /// What the run keeps for its templates: each element's result counts.
    pub kept: &'a Kept,
}

/// Runs a `for_each` step: its list, then each element not ended before, up
/// to `parallel` at once. When an element fails or waits for a retry, no new
/// element starts; those in flight finish and are recorded. The step's result
/// is `{"items": [...]}`, one entry per element, in the list's order.
pub(super) async fn run_each<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    elements: Elements<'_>,
    context: &Value,
    gathered: &Gathered,
) -> Result<StepEnd, RunError> {
    let Elements { each, stored, kept } = elements;
    let step = at.step;
    let fail = |message: String| {
        host.turn(step, None, Turn::NotRendered(&message));
        gathered.step(at.write(StepStatus::Failed, None, None));
        RunError::List {
            step: at.name(),
            message,
        }
    };
    let list = match counted(host, recipe, templates.render_value(&each.over, context)) {
        Ok(list) => list,
        Err(error) => return Err(fail(recipe.redactor.text(&error.to_string()).into_owned())),
    };
    let items = match list {
        Value::Array(items) => items,
        // A list that is absent has no elements.
        Value::Null => Vec::new(),
        other => {
            let message = format!(
                "`{}` gave {}, not a list",
                each.over.source(),
                crate::json::kind_of(&other)
            );
            return Err(fail(message));
        }
    };
    if items.len() > each.max_items as usize {
        let message = format!(
            "the list has {} items, more than `max_items` ({}); nothing was sent",
            items.len(),
            each.max_items
        );
        return Err(fail(message));
    }
    // The loop's own row, and its group's steps' own rows, say how it stands;
    // the elements' rows say how each went.
    let members = group_members(recipe, at);
    let mark = |status: StepStatus, result: Option<Value>| {
        gathered.step(at.write(status, None, result));
        for (position, member) in &members {
            let member_at = StepAt {
                key: StepKey::step(*position),
                step: member,
                ..at
            };
            gathered.step(member_at.write(status, None, None));
        }
    };
    if at.state.is_none() {
        // Its rows come before its elements' in the run's record.
        mark(StepStatus::Running, None);
    }

    let mut results: Vec<Option<Value>> = Vec::with_capacity(items.len());
    let mut to_run = Vec::new();
    for index in 0..items.len() as u32 {
        let key = StepKey {
            position: at.key.position,
            element: Some(index),
        };
        let state = stored.get(&key).copied();
        match state {
            Some(state) if ended(step, state) => {
                let result = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
                let result = result.unwrap_or(Value::Null);
                let _ = kept.keep(&result);
                results.push(Some(result));
            }
            _ => {
                results.push(None);
                to_run.push(StepAt { key, state, ..at });
            }
        }
    }

    // Each element renders over a context of its own, with its `item` and
    // `index`: elements in flight together cannot share one.
    let element_context = |index: u32| {
        let mut element_context = context.clone();
        element_context[each.name.as_str()] = items[index as usize].clone();
        element_context["index"] = Value::from(index);
        element_context
    };
    let mut waiting = to_run.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut retry_at: Option<chrono::DateTime<Utc>> = None;
    let mut wait_until: Option<chrono::DateTime<Utc>> = None;
    let mut failed: Option<(u32, RunError)> = None;
    loop {
        while failed.is_none() && retry_at.is_none() && wait_until.is_none() && in_flight.len() < each.parallel as usize
        {
            let Some(next) = waiting.next() else { break };
            let element_context = element_context(next.key.element.unwrap_or_default());
            in_flight.push(run_element(
                host,
                templates,
                recipe,
                next,
                element_context,
                gathered,
                stored,
            ));
        }
        let Some((index, ended)) = in_flight.next().await else {
            break;
        };
        let ended = match ended {
            Ok(StepEnd::Done(result)) => match kept.keep(&result) {
                Ok(()) => Ok(StepEnd::Done(result)),
                Err(total) => {
                    let element_at = StepAt {
                        key: StepKey {
                            position: at.key.position,
                            element: Some(index),
                        },
                        ..at
                    };
                    gathered.step(element_at.write(StepStatus::Failed, None, None));
                    Err(RunError::TooMuchKept {
                        step: element_at.name(),
                        total,
                        limit: kept.limit,
                    })
                }
            },
            other => other,
        };
        match ended {
            Ok(StepEnd::Done(result)) => results[index as usize] = Some(result),
            // Each waits at least its own backoff: the run resumes at the latest.
            Ok(StepEnd::Retry(due)) => retry_at = retry_at.max(Some(due)),
            Ok(StepEnd::Wait(due)) => wait_until = wait_until.max(Some(due)),
            Err(error) => {
                // The first in the list's order is the run's error.
                if failed.as_ref().is_none_or(|(first, _)| index < *first) {
                    failed = Some((index, error));
                }
            }
        }
    }
    if let Some((_, error)) = failed {
        mark(StepStatus::Failed, None);
        return Err(error);
    }
    match (retry_at, wait_until) {
        (Some(retry), wait) => {
            mark(StepStatus::Retrying, None);
            return Ok(StepEnd::Retry(retry.max(wait.unwrap_or(retry))));
        }
        (None, Some(wait)) => {
            mark(StepStatus::Waiting, None);
            return Ok(StepEnd::Wait(wait));
        }
        (None, None) => {}
    }
    let result = json!({ "items": results.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>() });
    let last = is_last(recipe, at.key.position);
    let sealed = (!last).then(|| recipe.redactor.seal(&result));
    mark(StepStatus::Succeeded, sealed);
    host.turn(step, None, Turn::Looped(items.len()));
    Ok(StepEnd::Done(result))
}

/// One element of a `for_each`, with its own context: its index and how it ended.
async fn run_element<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    context: Value,
    gathered: &Gathered,
    stored: &HashMap<StepKey, &StepState>,
) -> (u32, Result<StepEnd, RunError>) {
    let index = at.key.element.unwrap_or_default();
    let ended = match at.step.kind {
        Kind::Group(_) => run_group_element(host, templates, recipe, at, context, gathered, stored).await,
        _ => run_step(host, templates, recipe, at, &context, gathered).await,
    };
    (index, ended)
}

/// One element of a group: its `when`, then the group's steps in order over the
/// element's context, each recorded as that element's. Its result is the
/// steps' results by id; a step that failed or waits for a retry ends it so.
async fn run_group_element<H: Host>(
    host: &H,
    templates: &Templates,
    recipe: &Recipe,
    at: StepAt<'_>,
    mut context: Value,
    gathered: &Gathered,
    stored: &HashMap<StepKey, &StepState>,
) -> Result<StepEnd, RunError> {
    if at.state.is_none() {
        if let Some(when) = &at.step.when {
            match counted(host, recipe, templates.is_true(when, &context)) {
                Ok(true) => {}
                Ok(false) => return Ok(skip(host, gathered, at)),
                Err(error) => {
                    host.turn(at.step, at.key.element, Turn::NotRendered(&format!("`when`: {error}")));
                    return Err(RunError::StepWhen { step: at.name(), error });
                }
            }
        }
        gathered.step(at.write(StepStatus::Running, None, None));
    }
    let mut results = Map::new();
    for (position, member) in group_members(recipe, at) {
        let key = StepKey {
            position,
            element: at.key.element,
        };
        let state = stored.get(&key).copied();
        let member_at = StepAt {
            key,
            step: member,
            state,
            ..at
        };
        let ended = match state {
            Some(state) if ended(member, state) => {
                let result = state.result.as_ref().map(|result| recipe.redactor.unseal(result));
                Ok(StepEnd::Done(result.unwrap_or(Value::Null)))
            }
            None if !branch_taken(member, &context) => Ok(skip(host, gathered, member_at)),
            _ => run_step(host, templates, recipe, member_at, &context, gathered).await,
        };
        match ended {
            Ok(StepEnd::Done(result)) => {
                context["steps"][member.id.as_str()] = result.clone();
                results.insert(member.id.clone(), result);
            }
            Ok(StepEnd::Retry(due)) => {
                gathered.step(at.write(StepStatus::Retrying, None, None));
                return Ok(StepEnd::Retry(due));
            }
            Ok(StepEnd::Wait(due)) => {
                gathered.step(at.write(StepStatus::Waiting, None, None));
                return Ok(StepEnd::Wait(due));
            }
            Err(error) if at.step.continue_on_error => {
                return Ok(go_on_after(recipe, gathered, at, &error.to_string(), None));
            }
            Err(error) => {
                gathered.step(at.write(StepStatus::Failed, None, None));
                return Err(error);
            }
        }
    }
    let result = Value::Object(results);
    gathered.step(at.write(StepStatus::Succeeded, None, Some(recipe.redactor.seal(&result))));
    Ok(StepEnd::Done(result))
}

/// A group's own steps with their positions (none for any other step).
fn group_members<'r>(recipe: &'r Recipe, at: StepAt<'_>) -> Vec<(usize, &'r Step)> {
    let members = match &at.step.kind {
        Kind::Group(group) => group.members,
        _ => 0,
    };
    recipe
        .steps
        .iter()
        .enumerate()
        .skip(at.key.position + 1)
        .take(members)
        .collect()
}
