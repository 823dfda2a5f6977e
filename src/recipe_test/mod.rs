//! `ferry test`: recipe tests run offline. Each `NAME.test.yaml` beside
//! `NAME.yaml` is a list of cases; a case's run is rehearsed with canned answers
//! (nothing is sent) and compared with what the case expects.

pub mod case;
mod compare;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;

use crate::action::{HttpResponse, RequestBody};
use crate::engine::rehearse::{Exchange, Rehearsal, TriggerInput, Turn, rehearse};
use crate::recipe::{Diagnostic, Environment, Position, Recipe, Trigger, load_source};
use crate::template::{Templates, did_you_mean};
use case::{Case, Expectation, ExpectedStatus, ExpectedStep};
pub use compare::Difference;

/// The test files under `paths` (files or folders), and the recipes found there
/// without one. A path that does not exist is an error.
pub fn find_test_files(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let mut tests = BTreeSet::new();
    let mut untested = BTreeSet::new();
    let mut consider = |file: PathBuf, tests: &mut BTreeSet<PathBuf>| {
        if is_test_file(&file) {
            tests.insert(file);
        } else if is_yaml(&file) {
            match test_file_of(&file) {
                Some(test) => {
                    tests.insert(test);
                }
                None => {
                    untested.insert(file);
                }
            }
        }
    };
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|error| format!("cannot read the folder {}: {error}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.is_file())
                .collect();
            files.sort();
            for file in files {
                consider(file, &mut tests);
            }
        } else if path.is_file() {
            consider(path.clone(), &mut tests);
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok((tests.into_iter().collect(), untested.into_iter().collect()))
}

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

fn is_yaml(path: &Path) -> bool {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.starts_with('.')
}

/// `NAME.test.yaml` of the recipe `NAME.yaml`, if there is one.
fn test_file_of(recipe: &Path) -> Option<PathBuf> {
    let stem = recipe.file_stem()?.to_str()?;
    ["test.yaml", "test.yml"]
        .iter()
        .map(|extension| recipe.with_file_name(format!("{stem}.{extension}")))
        .find(|test| test.is_file())
}

/// The recipe a test file tests: `NAME.yaml` (or `.yml`) beside `NAME.test.yaml`.
fn recipe_file_of(test: &Path) -> Option<PathBuf> {
    let name = test.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".test.yaml")
        .or_else(|| name.strip_suffix(".test.yml"))?;
    ["yaml", "yml"]
        .iter()
        .map(|extension| test.with_file_name(format!("{stem}.{extension}")))
        .find(|recipe| recipe.is_file())
}

/// The outcome of one test file.
#[derive(Debug)]
pub struct FileReport {
    pub file: PathBuf,
    /// The file could not be used: unreadable, not YAML, no recipe beside it.
    pub problems: Vec<Diagnostic>,
    pub cases: Vec<CaseReport>,
}

impl FileReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.cases.iter().all(CaseReport::passed)
    }
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseReport {
    pub name: String,
    pub at: Position,
    pub failures: Vec<Failure>,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One way a case's run differed from what it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What differs: `status`, `step `post` json.text`, `run 2 step `post` url`.
    pub place: String,
    pub expected: String,
    pub actual: String,
}

/// What every case of a run of `ferry test` shares.
pub struct TestContext<'a> {
    pub templates: &'a Templates,
    /// The environment under each case's `env`.
    pub environment: &'a Environment,
    /// `ferry.url` in templates.
    pub public_url: &'a str,
}

/// Runs every case of one test file.
pub async fn run_file(context: &TestContext<'_>, file: &Path) -> FileReport {
    let mut report = FileReport {
        file: file.to_owned(),
        problems: Vec::new(),
        cases: Vec::new(),
    };
    let problem = |message: String| vec![Diagnostic::new(file, None, message)];
    let Some(recipe_file) = recipe_file_of(file) else {
        report.problems = problem(format!(
            "no recipe beside this test file; expected {}",
            file.display().to_string().replace(".test.", ".")
        ));
        return report;
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            report.problems = problem(format!("cannot read the file: {error}"));
            return report;
        }
    };
    let recipe_text = match std::fs::read_to_string(&recipe_file) {
        Ok(text) => text,
        Err(error) => {
            report.problems = vec![Diagnostic::new(
                &recipe_file,
                None,
                format!("cannot read the file: {error}"),
            )];
            return report;
        }
    };
    let cases: Vec<Spanned<Case>> = match serde_saphyr::from_str(&text) {
        Ok(cases) => cases,
        Err(error) => {
            use serde_saphyr::MessageFormatter;
            let message = serde_saphyr::DefaultMessageFormatter.format_message(&error);
            let mut problem = Diagnostic::new(file, error.location(), with_hint(&message));
            problem.pinpoint(&text);
            report.problems = vec![problem];
            return report;
        }
    };
    if cases.is_empty() {
        report.problems = problem("the file has no cases; expected a list of cases with `name` and `expect`".into());
    }
    for case in cases {
        let at = Position::from(case.referenced);
        let case = case.value;
        let environment = context.environment.clone().with_test_values(&case.env);
        let failures = match load_source(&recipe_file, &recipe_text, &environment) {
            Ok(recipe) => run_case(context, &recipe, &case).await,
            Err(problems) => {
                let summary = format!("{} problem(s): {}", problems.len(), problems[0]);
                for problem in problems {
                    if !report.problems.contains(&problem) {
                        report.problems.push(problem);
                    }
                }
                vec![Failure {
                    place: "the recipe".to_owned(),
                    expected: "to load".to_owned(),
                    actual: summary,
                }]
            }
        };
        report.cases.push(CaseReport {
            name: case.name,
            at,
            failures,
        });
    }
    report
}

async fn run_case(context: &TestContext<'_>, recipe: &Recipe, case: &Case) -> Vec<Failure> {
    let mut failures = unknown_steps(recipe, case);
    let answers: BTreeMap<String, HttpResponse> = case
        .responses
        .iter()
        .map(|(step, answer)| (step.clone(), answer.to_response()))
        .collect();
    let exchange = Exchange::Canned(&answers);
    let exchange = &exchange;
    let rehearse_with = |kind: &'static str, payload: Value| {
        let input = TriggerInput {
            kind,
            payload,
            headers: lower_case(&case.headers),
            query: case
                .query
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect(),
        };
        async move {
            rehearse(
                recipe,
                context.templates,
                context.public_url,
                input,
                exchange,
                &mut |_| {},
            )
            .await
        }
    };

    let Trigger::Poll(poll) = &recipe.trigger else {
        if case.poll.is_some() || case.expect.runs.is_some() {
            failures.push(misuse("`poll` and `expect.runs`", "are for poll recipes"));
            return failures;
        }
        let (kind, payload) = match &recipe.trigger {
            Trigger::Schedule { .. } => {
                let now = crate::store::timestamp(chrono::Utc::now());
                ("schedule", json!({"scheduled_at": now, "fired_at": now}))
            }
            Trigger::Failure(_) => ("failure", crate::engine::failure_trigger::example(context.public_url)),
            _ => ("webhook", json!({})),
        };
        let rehearsal = rehearse_with(kind, case.payload.clone().unwrap_or(payload)).await;
        check_run(recipe, &case.expect, &rehearsal, "", &mut failures);
        return failures;
    };

    let Some(polled) = &case.poll else {
        failures.push(misuse(
            "the case",
            "of a poll recipe gives `poll: {response, seen}`: what the source answers",
        ));
        return failures;
    };
    let Some(runs) = &case.expect.runs else {
        failures.push(misuse(
            "`expect`",
            "of a poll case lists `runs`, one per new item (`runs: []` for none)",
        ));
        return failures;
    };
    let answer = polled.response.to_response();
    let items = if (200..300).contains(&answer.status) {
        let body = match answer.body {
            Value::String(text) => {
                serde_json::from_str(&text).map_err(|error| format!("the answer is not JSON: {error}"))
            }
            body => Ok(body),
        };
        body.and_then(|body| {
            crate::trigger::poll::keyed_items(context.templates, poll, body).map_err(|error| error.to_string())
        })
    } else {
        Err(format!("the source answered HTTP {}", answer.status))
    };
    let items = match items {
        Ok(items) => items,
        Err(error) => {
            // A failed poll starts nothing; the case may expect that.
            match &case.expect.error {
                Some(wanted) if error.contains(wanted.as_str()) => {}
                wanted => failures.push(Failure {
                    place: "the poll".to_owned(),
                    expected: wanted
                        .as_ref()
                        .map_or("to succeed".to_owned(), |text| format!("an error with {text:?}")),
                    actual: error,
                }),
            }
            return failures;
        }
    };
    let mut seen: BTreeSet<String> = polled.seen.iter().cloned().collect();
    // An item listed twice in one answer starts one run, as in the daemon.
    let new_items: Vec<(String, Value)> = items.into_iter().filter(|(key, _)| seen.insert(key.clone())).collect();
    if new_items.len() != runs.len() {
        let keys: Vec<&str> = new_items.iter().map(|(key, _)| key.as_str()).collect();
        failures.push(Failure {
            place: "runs".to_owned(),
            expected: format!("{} new item(s)", runs.len()),
            actual: format!("{} new item(s): {keys:?}", new_items.len()),
        });
        return failures;
    }
    for (index, ((_, item), expect)) in new_items.into_iter().zip(runs).enumerate() {
        let rehearsal = rehearse_with("poll", item).await;
        check_run(
            recipe,
            expect,
            &rehearsal,
            &format!("run {} ", index + 1),
            &mut failures,
        );
    }
    failures
}

/// serde's "unknown field `expct`, expected one of `name`, …" with "did you
/// mean `expect`?".
fn with_hint(message: &str) -> String {
    let Some((unknown, rest)) = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
    else {
        return message.to_owned();
    };
    let Some((_, list)) = rest.split_once("expected one of ") else {
        return message.to_owned();
    };
    let known = list.split(", ").map(|name| name.trim_matches('`'));
    match did_you_mean(unknown, known) {
        Some(close) => format!("{message}; did you mean `{close}`?"),
        None => message.to_owned(),
    }
}

/// A case that cannot be run as written.
fn misuse(what: &str, rule: &str) -> Failure {
    Failure {
        place: what.to_owned(),
        expected: rule.to_owned(),
        actual: "(not so)".to_owned(),
    }
}

/// Step ids in `responses` and `expect.steps` that the recipe does not have.
fn unknown_steps(recipe: &Recipe, case: &Case) -> Vec<Failure> {
    let known: Vec<&str> = recipe.steps.iter().map(|step| step.id.as_str()).collect();
    let mut named: Vec<(&str, &str)> = case.responses.keys().map(|id| ("responses", id.as_str())).collect();
    let mut expectations = vec![&case.expect];
    expectations.extend(case.expect.runs.iter().flatten());
    for expect in expectations {
        named.extend(expect.steps.keys().map(|id| ("expect.steps", id.as_str())));
    }
    named
        .into_iter()
        .filter(|(_, id)| !known.contains(id))
        .map(|(section, id)| {
            let hint = did_you_mean(id, known.iter().copied())
                .map(|name| format!("; did you mean `{name}`?"))
                .unwrap_or_default();
            Failure {
                place: format!("{section}.{id}"),
                expected: format!("a step of the recipe ({}){hint}", known.join(", ")),
                actual: format!("no step `{id}`"),
            }
        })
        .collect()
}

fn lower_case(headers: &BTreeMap<String, String>) -> Map<String, Value> {
    headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), Value::String(value.clone())))
        .collect()
}

/// Compares one run with its expectation; `run` prefixes places (`run 2 `).
fn check_run(recipe: &Recipe, expect: &Expectation, rehearsal: &Rehearsal, run: &str, failures: &mut Vec<Failure>) {
    let redact = |text: String| recipe.redactor.text(&text).into_owned();
    let wanted = expect.status.unwrap_or(ExpectedStatus::Succeeded);
    let actual = ExpectedStatus::of(rehearsal.status);
    if wanted != actual {
        let why = rehearsal
            .error
            .as_ref()
            .map(|error| format!(" ({error})"))
            .unwrap_or_default();
        failures.push(Failure {
            place: format!("{run}status"),
            expected: wanted.name().to_owned(),
            actual: redact(format!("{}{why}", actual.name())),
        });
    }
    if let Some(text) = &expect.error {
        let error = rehearsal.error.clone().unwrap_or_default();
        if !error.contains(text.as_str()) {
            failures.push(Failure {
                place: format!("{run}error"),
                expected: format!("to contain {text:?}"),
                actual: redact(if error.is_empty() {
                    "(no error)".to_owned()
                } else {
                    error
                }),
            });
        }
    }
    for (id, step) in &expect.steps {
        if !recipe.steps.iter().any(|known| known.id == *id) {
            continue; // reported once by `unknown_steps`
        }
        let place = format!("{run}step `{id}`");
        if let Some(items) = &step.items {
            check_items(recipe, id, items, rehearsal, &place, failures);
        }
        // A `for_each` step's own turn is its end; its elements' are `items`.
        let own = rehearsal
            .steps
            .iter()
            .find(|trace| trace.id == *id && trace.element.is_none())
            .or_else(|| rehearsal.steps.iter().find(|trace| trace.id == *id));
        let Some(trace) = own else {
            failures.push(Failure {
                place,
                expected: "to have its turn".to_owned(),
                actual: "the run ended before it".to_owned(),
            });
            continue;
        };
        for mut failure in check_step(step, &trace.turn) {
            failure.place = format!("{place} {}", failure.place).trim_end().to_owned();
            failure.actual = redact(failure.actual);
            failures.push(failure);
        }
    }
}

/// A `for_each` step's elements against `items`: as many, each as expected.
fn check_items(
    recipe: &Recipe,
    id: &str,
    items: &[ExpectedStep],
    rehearsal: &Rehearsal,
    place: &str,
    failures: &mut Vec<Failure>,
) {
    let redact = |text: String| recipe.redactor.text(&text).into_owned();
    let Some(step) = recipe.steps.iter().find(|step| step.id == id) else {
        return; // reported once by `unknown_steps`
    };
    let problem = match (&step.kind, &step.each, &step.within) {
        (crate::step::Kind::Group(_), _, _) => Some((
            "the elements of each of the group's steps, under that step's id",
            "a group (`for_each` with `steps`)",
        )),
        (_, None, None) => Some(("a step with `for_each`, or of a group", "a step without one")),
        _ => None,
    };
    if let Some((expected, actual)) = problem {
        failures.push(Failure {
            place: format!("{place} items"),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        });
        return;
    }
    let mut elements: Vec<_> = rehearsal
        .steps
        .iter()
        .filter_map(|trace| Some((trace.element?, trace)).filter(|_| trace.id == id))
        .collect();
    elements.sort_by_key(|(index, _)| *index);
    if elements.len() != items.len() {
        failures.push(Failure {
            place: format!("{place} items"),
            expected: count_of(items.len()),
            actual: count_of(elements.len()),
        });
    }
    for ((index, trace), expect) in elements.iter().zip(items) {
        for mut failure in check_step(expect, &trace.turn) {
            failure.place = format!("{place} item {index} {}", failure.place).trim_end().to_owned();
            failure.actual = redact(failure.actual);
            failures.push(failure);
        }
    }
}

/// "1 element", "3 elements".
fn count_of(elements: usize) -> String {
    match elements {
        1 => "1 element".to_owned(),
        n => format!("{n} elements"),
    }
}

fn check_step(expect: &ExpectedStep, turn: &Turn) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut differ = |place: &str, expected: String, actual: String| {
        failures.push(Failure {
            place: place.to_owned(),
            expected,
            actual,
        })
    };
    let skipped = matches!(turn, Turn::Skipped);
    if let Some(wanted) = expect.skipped
        && wanted != skipped
    {
        let describe = |skipped: bool| if skipped { "skipped" } else { "to run" }.to_owned();
        differ("", describe(wanted), describe(skipped).replace("to run", "ran"));
        return failures;
    }
    let asks_request = expect.method.is_some()
        || expect.url.is_some()
        || expect.headers.is_some()
        || expect.json.is_some()
        || expect.form.is_some()
        || expect.body.is_some();
    match turn {
        Turn::Skipped if asks_request || expect.log.is_some() || expect.set.is_some() => {
            differ("", "to run".to_owned(), "skipped (its `when` was false)".to_owned());
        }
        Turn::Skipped => {}
        Turn::NotRendered(error) => differ("", "to render".to_owned(), error.clone()),
        Turn::Delayed(_) => {
            if asks_request || expect.log.is_some() || expect.set.is_some() {
                differ(
                    "",
                    "an http request, a log line or values".to_owned(),
                    "a delay step".to_owned(),
                );
            }
        }
        Turn::Looped(_) => {
            if asks_request || expect.log.is_some() || expect.set.is_some() {
                differ(
                    "",
                    "one request, line or set of values (a step's elements are under `items`)".to_owned(),
                    "a `for_each` step".to_owned(),
                );
            }
        }
        Turn::Switched { .. } => {
            if asks_request || expect.log.is_some() || expect.set.is_some() {
                differ(
                    "",
                    "an http request, a log line or values".to_owned(),
                    "a switch step".to_owned(),
                );
            }
        }
        Turn::Set(values) => {
            if asks_request || expect.log.is_some() {
                differ("", "an http request or a log line".to_owned(), "a set step".to_owned());
            }
            for (name, wanted) in expect.set.iter().flatten() {
                let actual = values.get(name).unwrap_or(&Value::Null);
                if actual != wanted {
                    differ(&format!("set.{name}"), wanted.to_string(), actual.to_string());
                }
            }
        }
        Turn::Logged(line) => {
            if asks_request {
                differ(
                    "",
                    "an http request".to_owned(),
                    "a log step (it sends nothing)".to_owned(),
                );
            }
            if let Some(wanted) = &expect.log
                && wanted != line
            {
                differ("log", json!(wanted).to_string(), json!(line).to_string());
            }
        }
        Turn::Http(http) => {
            let request = &http.request;
            if expect.log.is_some() {
                differ("log", "a log step".to_owned(), "an http step".to_owned());
            }
            if let Some(method) = &expect.method
                && !method.eq_ignore_ascii_case(request.method.as_str())
            {
                differ("method", method.to_ascii_uppercase(), request.method.to_string());
            }
            if let Some(url) = &expect.url
                && *url != request.url
            {
                differ("url", url.clone(), request.url.clone());
            }
            for (name, value) in expect.headers.iter().flatten() {
                let name = name.to_ascii_lowercase();
                let actual = request.headers.iter().find(|(header, _)| *header == name);
                match actual {
                    Some((_, actual)) if actual == value => {}
                    Some((_, actual)) => differ(
                        &format!("headers.{name}"),
                        json!(value).to_string(),
                        json!(actual).to_string(),
                    ),
                    None => differ(
                        &format!("headers.{name}"),
                        json!(value).to_string(),
                        "(missing)".to_owned(),
                    ),
                }
            }
            let text = match &request.body {
                Some(RequestBody::Json(json)) => Some(json.text().to_owned()),
                Some(RequestBody::Text(text)) => Some(text.clone()),
                None => None,
            };
            if let Some(wanted) = &expect.json {
                match &request.body {
                    Some(RequestBody::Json(json)) => {
                        let mut differences = Vec::new();
                        compare::subset(wanted, json.value(), "json", &mut differences);
                        for difference in differences {
                            differ(&difference.path, difference.expected, difference.actual);
                        }
                    }
                    _ => differ(
                        "json",
                        "a JSON body".to_owned(),
                        text.clone().unwrap_or_else(|| "(no body)".into()),
                    ),
                }
            }
            if let Some(wanted) = &expect.form {
                let fields: Map<String, Value> = text
                    .as_deref()
                    .map(|text| {
                        form_urlencoded::parse(text.as_bytes())
                            .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                let wanted: Map<String, Value> = wanted
                    .iter()
                    .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                    .collect();
                let mut differences = Vec::new();
                compare::subset(&Value::Object(wanted), &Value::Object(fields), "form", &mut differences);
                for difference in differences {
                    differ(&difference.path, difference.expected, difference.actual);
                }
            }
            if let Some(wanted) = &expect.body
                && Some(wanted) != text.as_ref()
            {
                differ("body", wanted.clone(), text.unwrap_or_else(|| "(no body)".into()));
            }
        }
    }
    failures
}
