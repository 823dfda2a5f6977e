//! From what the user wrote ([`RecipeFile`]) to what can run ([`Recipe`]):
//! every check that types cannot express, each with its place in the file.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::config::{RecipeFile, RetryConfig, StepConfig};
use super::{
    DEFAULT_ITEM_NAME, DEFAULT_MAX_ITEMS, Diagnostic, ForEach, Guard, ON_FAILURE_ROOT, Position, Recipe, RetryPolicy,
    RunTimeout, Step, parse_duration,
};
use crate::checks::Checker;
use crate::redact::{Redactor, Secret};
use crate::step::group::GroupStep;
use crate::step::switch::DEFAULT_CASE;
use crate::step::{Kind, KindConfig, KindName};
use crate::template::ROOTS;

mod trigger;

const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Validates a parsed file. `default_id` is the file stem; `version` its content hash.
pub(super) fn validate(
    file: &Path,
    default_id: &str,
    version: String,
    parsed: RecipeFile,
    secrets: Vec<Secret>,
) -> Result<Recipe, Vec<Diagnostic>> {
    let mut checker = Checker::new(file, ROOTS);
    checker.secrets = secrets;

    let id = match &parsed.id {
        Some(id) => {
            if !is_recipe_id(&id.value) {
                checker.report(
                    id.referenced,
                    format!("recipe id `{}` is not valid; expected `[a-z0-9][a-z0-9_-]*`", id.value),
                );
            }
            id.value.clone()
        }
        None => {
            if !is_recipe_id(default_id) {
                checker.problems.push(Diagnostic::new(
                    file,
                    None,
                    format!("the file name gives the recipe id `{default_id}`, which is not valid; rename the file or set `id:` to match `[a-z0-9][a-z0-9_-]*`"),
                ));
            }
            default_id.to_owned()
        }
    };

    if parsed.concurrency == 0 {
        checker
            .problems
            .push(Diagnostic::new(file, None, "`concurrency` must be at least 1"));
    }

    let id_at = parsed.id.as_ref().map_or(Position::START, |id| id.referenced.into());
    let mut trigger_at = Position::from(parsed.trigger.referenced);
    let trigger = trigger::validate(&mut checker, &id, parsed.trigger, &mut trigger_at);

    let when = parsed.when.as_ref().and_then(|when| checker.template(when, "`when`"));
    let timeout = parsed.timeout.as_deref().map(|written| RunTimeout {
        limit: checker.positive_duration(Some(written), "`timeout`", Duration::MAX),
        written: written.value.clone(),
    });

    if parsed.steps.value.is_empty() {
        checker.report(
            parsed.steps.referenced,
            "`steps` is empty; a recipe needs at least one step",
        );
    }
    let mut steps = Steps {
        seen_ids: HashSet::new(),
        steps: Vec::with_capacity(parsed.steps.value.len()),
        count: 0,
    };
    steps.validate(&mut checker, &parsed.steps.value, None, None);
    if let Some(on_failure) = &parsed.on_failure {
        // After the run's steps; their templates also read `error`.
        let first = steps.steps.len();
        checker.loop_names = vec![ON_FAILURE_ROOT.to_owned()];
        steps.validate(&mut checker, &on_failure.value, None, None);
        checker.loop_names.clear();
        for step in &mut steps.steps[first..] {
            step.on_failure = true;
        }
    }
    let steps = steps.steps;

    let redactor = Redactor::with_basic_pairs(&checker.secrets, &checker.basic_pairs);
    if !checker.problems.is_empty() {
        // A message may quote a value that came from the environment.
        for problem in &mut checker.problems {
            problem.message = redactor.text(&problem.message).into_owned();
        }
        return Err(checker.problems);
    }
    let Some(trigger) = trigger else {
        return Err(vec![Diagnostic::new(file, None, "the trigger is not valid")]);
    };
    let warnings = std::mem::take(&mut checker.warnings);
    Ok(Recipe {
        warnings,
        metrics: crate::observe::RecipeMetrics::new(&id),
        id,
        description: parsed.description.map(|description| description.0.value),
        redactor,
        id_at,
        trigger_at,
        enabled: parsed.enabled,
        version,
        source: String::new(),
        file: file.to_owned(),
        trigger,
        when,
        steps,
        concurrency: parsed.concurrency,
        timeout,
        payload_reads: checker.payload,
    })
}

/// The steps of a recipe in the order they run: a `switch`'s branches follow
/// it, each of their steps guarded by the case that runs it.
struct Steps {
    seen_ids: HashSet<String>,
    steps: Vec<Step>,
    /// Steps seen so far, for default ids (`step3`).
    count: usize,
}

impl Steps {
    /// Validates `configs` into the steps, in order. `guard` is the branch they
    /// are on; `within` the group whose elements run them.
    fn validate(
        &mut self,
        checker: &mut Checker<'_>,
        configs: &[Spanned<StepConfig>],
        guard: Option<Guard>,
        within: Option<&str>,
    ) {
        for config in configs {
            let index = self.count;
            self.count += 1;
            let at = Placed {
                index,
                guard: guard.clone(),
                within,
            };
            let step = validate_step(checker, at, config, &mut self.seen_ids);
            // Its branches are checked also when it has problems of its own.
            let id = match (&step, &config.value.id) {
                (Some(step), _) => step.id.clone(),
                (None, Some(id)) => id.value.clone(),
                (None, None) => format!("step{}", index + 1),
            };
            let group = step
                .as_ref()
                .filter(|step| matches!(step.kind, Kind::Group(_)))
                .map(|_| self.steps.len());
            self.steps.extend(step);
            if let Some(cases) = &config.value.cases {
                for (case, branch) in &cases.value {
                    let guard = Guard {
                        switch: id.clone(),
                        case: case.clone(),
                    };
                    self.validate(checker, &branch.value, Some(guard), within);
                }
            }
            if let Some(default) = &config.value.default {
                let guard = Guard {
                    switch: id.clone(),
                    case: DEFAULT_CASE.to_owned(),
                };
                self.validate(checker, &default.value, Some(guard), within);
            }
            if let Some(members) = &config.value.steps {
                self.validate_group(checker, config, &members.value, &id, group);
            }
        }
    }

    /// A group's steps: after it, each run by its elements; they see its
    /// element and index, and no step after the group sees them.
    fn validate_group(
        &mut self,
        checker: &mut Checker<'_>,
        config: &Spanned<StepConfig>,
        members: &[Spanned<StepConfig>],
        id: &str,
        group: Option<usize>,
    ) {
        let name = config
            .value
            .item_name
            .as_ref()
            .map_or(DEFAULT_ITEM_NAME, |name| name.value.as_str());
        let outer = checker.loop_names.clone();
        checker.loop_names.extend([name.to_owned(), "index".to_owned()]);
        let earlier = checker.earlier_steps.len();
        let first = self.steps.len();
        self.validate(checker, members, None, Some(id));
        checker.loop_names = outer;
        checker.earlier_steps.truncate(earlier);
        let members = self.steps.len() - first;
        if let Some(group) = group
            && let Kind::Group(group) = &mut self.steps[group].kind
        {
            group.members = members;
        }
    }
}

/// Where a step is written: its index among all the recipe's steps (for a
/// default id), the branch it is on, the group it belongs to.
struct Placed<'a> {
    index: usize,
    guard: Option<Guard>,
    within: Option<&'a str>,
}

fn validate_step(
    checker: &mut Checker<'_>,
    placed: Placed<'_>,
    step: &Spanned<StepConfig>,
    seen_ids: &mut HashSet<String>,
) -> Option<Step> {
    let Placed { index, guard, within } = placed;
    let location = step.referenced;
    let step = &step.value;
    let id = match &step.id {
        Some(id) => {
            if !is_step_id(&id.value) {
                checker.report(
                    id.referenced,
                    format!("step id `{}` is not valid; expected `[a-z][a-z0-9_]*`", id.value),
                );
            }
            id.value.clone()
        }
        None => format!("step{}", index + 1),
    };
    if !seen_ids.insert(id.clone()) {
        let at = step.id.as_ref().map_or(location, |id| id.referenced);
        checker.report(
            at,
            format!("step id `{id}` is used twice; step ids must be unique in a recipe"),
        );
    }
    let label = format!("step `{id}`");

    // The list renders before any element: its template cannot read them.
    let each = for_each(checker, &label, step);
    if let (Some(_), Some(group)) = (&each, within) {
        checker.report(
            location,
            format!("{label}: a step of the group `{group}` cannot have its own `for_each`; loops do not nest"),
        );
    }
    let outer = checker.loop_names.clone();
    if let Some(each) = &each {
        checker.loop_names.extend([each.name.clone(), "index".to_owned()]);
    }
    let when = step
        .when
        .as_ref()
        .and_then(|when| checker.template(when, &format!("{label} `when`")));
    let timeout = checker.positive_duration(
        step.timeout.as_deref(),
        &format!("{label} `timeout`"),
        DEFAULT_STEP_TIMEOUT,
    );

    let action = match (step.kinds.as_slice(), &step.steps) {
        ([(at, kind)], None) => kind.check(checker, &label, *at),
        ([], Some(steps)) if each.is_none() => {
            checker.report(
                steps.referenced,
                format!("{label}: `steps` inside a step belongs with `for_each` (the steps each element runs)"),
            );
            None
        }
        ([], Some(_)) => Some(Kind::Group(GroupStep { members: 0 })),
        ([(_, kind)], Some(steps)) => {
            checker.report(
                steps.referenced,
                format!(
                    "{label} has both `{}` and `steps`; a step has one action, or `for_each` with `steps`",
                    kind.key()
                ),
            );
            None
        }
        ([], None) => {
            let keys: Vec<String> = KindConfig::KEYS.iter().map(|key| format!("`{key}`")).collect();
            checker.report(
                location,
                format!(
                    "{label} has no action; expected one of {}, or `for_each` with `steps`",
                    keys.join(", ")
                ),
            );
            None
        }
        ([(_, first), (at, second), ..], _) => {
            checker.report(
                *at,
                format!(
                    "{label} has both `{}` and `{}`; a step has exactly one action",
                    first.key(),
                    second.key()
                ),
            );
            None
        }
    };
    checker.loop_names = outer;
    let action = action.and_then(|kind| branches(checker, &label, location, step, kind));
    if each.is_some()
        && let Some(kind) = &action
        && kind.name() == KindName::Switch
    {
        checker.report(
            location,
            format!("{label}: a `switch` cannot have `for_each`; loop in the steps of its branches"),
        );
    }
    let retry = match &step.retry {
        Some(retry) => validate_retry(checker, &label, retry),
        None => RetryPolicy::default(),
    };

    // Later steps may name this one even when it has problems of its own: one
    // mistake is reported once, not again at every step that uses its result.
    checker.earlier_steps.push(id.clone());
    if each.is_some() {
        checker.earlier_loops.push(id.clone());
    }
    Some(Step {
        id,
        when,
        guard,
        kind: action?,
        timeout,
        retry,
        each,
        within: within.map(str::to_owned),
        continue_on_error: step.continue_on_error.unwrap_or(false),
        on_failure: false,
    })
}

/// A step's `for_each` with `as`, `parallel` and `max_items`; those three
/// without `for_each`, a list that is not one `{{…}}` expression and a name
/// that hides a root are problems.
fn for_each(checker: &mut Checker<'_>, label: &str, step: &StepConfig) -> Option<ForEach> {
    let Some(over) = &step.for_each else {
        let stray = [
            step.item_name.as_ref().map(|name| ("as", name.referenced)),
            step.parallel.as_ref().map(|parallel| ("parallel", parallel.referenced)),
            step.max_items.as_ref().map(|max| ("max_items", max.referenced)),
        ];
        for (key, at) in stray.into_iter().flatten() {
            checker.report(
                at,
                format!("{label}: `{key}` belongs with `for_each`, which this step does not have"),
            );
        }
        return None;
    };
    let name = match &step.item_name {
        Some(name) if !is_step_id(&name.value) || name.value == "index" || ROOTS.contains(&name.value.as_str()) => {
            checker.report(
                name.referenced,
                format!(
                    "{label} `as`: `{}` cannot name the element; use a name like `line` (`[a-z][a-z0-9_]*`, not `index` or one of {})",
                    name.value,
                    ROOTS.join(", ")
                ),
            );
            return None;
        }
        Some(name) => name.value.clone(),
        None => DEFAULT_ITEM_NAME.to_owned(),
    };
    let what = format!("{label} `for_each`");
    let over_template = checker.template(over, &what)?;
    if !over_template.is_whole_value() {
        let message = if over.value.contains("{{") {
            format!(
                "{what} must be one `{{{{…}}}}` expression giving a list, e.g. `{{{{payload.line_items}}}}`; `{}` renders text",
                over.value
            )
        } else {
            format!(
                "{what} is the text `{}`, not a list; write a template that gives one, e.g. `{{{{payload.line_items}}}}`",
                over.value
            )
        };
        checker.report(over.referenced, message);
        return None;
    }
    Some(ForEach {
        over: over_template,
        name,
        parallel: step.parallel.as_ref().map_or(1, |parallel| parallel.value),
        max_items: step.max_items.as_ref().map_or(DEFAULT_MAX_ITEMS, |max| max.value),
    })
}

/// A `switch` gets its branches' names; `cases` and `default` on any other
/// kind, a switch with neither, and a case named `default` are problems.
fn branches(checker: &mut Checker<'_>, label: &str, location: Location, step: &StepConfig, kind: Kind) -> Option<Kind> {
    let cases: Vec<String> = step
        .cases
        .iter()
        .flat_map(|cases| cases.value.keys().cloned())
        .collect();
    if let Some(cases) = &step.cases
        && cases.value.contains_key(DEFAULT_CASE)
    {
        checker.report(
            cases.referenced,
            format!("{label} has a case named `{DEFAULT_CASE}`; write that branch under `default:`"),
        );
        return None;
    }
    let has_branches = step.cases.is_some() || step.default.is_some();
    if !has_branches {
        if kind.name() == KindName::Switch {
            checker.report(
                location,
                format!("{label} has no branches; a `switch` needs `cases`, `default` or both"),
            );
            return None;
        }
        return Some(kind);
    }
    match kind.with_branches(cases, step.default.is_some()) {
        Ok(kind) => Some(kind),
        Err(name) => {
            checker.report(
                location,
                format!(
                    "{label}: `cases` and `default` belong to a `switch` step, not to a `{}` step",
                    name.as_str()
                ),
            );
            None
        }
    }
}

fn validate_retry(checker: &mut Checker<'_>, label: &str, retry: &Spanned<RetryConfig>) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    let mut duration = |text: Option<&Spanned<String>>, key: &str, default: Duration| match text {
        Some(text) => match parse_duration(&text.value) {
            Ok(duration) => duration,
            Err(message) => {
                checker.report(text.referenced, format!("{label} `retry.{key}`: {message}"));
                default
            }
        },
        None => default,
    };
    let backoff = duration(retry.value.backoff.as_deref(), "backoff", defaults.backoff);
    let max = duration(retry.value.max.as_deref(), "max", defaults.max);
    let attempts = retry.value.attempts.unwrap_or(defaults.attempts);
    if attempts == 0 {
        checker.report(
            retry.referenced,
            format!("{label} `retry.attempts` must be at least 1 (the first attempt counts)"),
        );
    }
    if max < backoff {
        checker.report(
            retry.referenced,
            format!("{label} `retry.max` is shorter than `retry.backoff`"),
        );
    }
    RetryPolicy {
        attempts: attempts.max(1),
        backoff,
        max,
        fail_when: retry.value.fail_when.unwrap_or(false),
    }
}

pub(super) fn is_recipe_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
