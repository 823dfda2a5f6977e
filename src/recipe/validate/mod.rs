//! From what the user wrote ([`RecipeFile`]) to what can run ([`Recipe`]):
//! every check that types cannot express, each with its place in the file.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::config::{AuthConfig, HttpConfig, RecipeFile, RetryConfig, StepConfig};
use super::{Diagnostic, Position, Recipe, RetryPolicy, Step, parse_duration};
use crate::redact::Redactor;
use crate::step::Kind;
use crate::step::http::{AuthTemplate, BodyTemplate, HttpTemplate};
use crate::template::{PayloadReads, ROOTS, Template, ValueTemplate, check, payload_reads};

mod trigger;

const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Collects the problems of one file so that all of them are reported at once.
struct Checker<'a> {
    file: &'a Path,
    problems: Vec<Diagnostic>,
    /// The names the templates being checked may start a path with.
    roots: &'static [&'static str],
    warnings: Vec<Diagnostic>,
    /// Ids of the steps that run before the templates being checked.
    earlier_steps: Vec<String>,
    /// What the templates checked so far read of the payload.
    payload: PayloadReads,
}

impl Checker<'_> {
    fn report(&mut self, location: Location, message: impl Into<String>) {
        self.problems.push(Diagnostic::new(self.file, Some(location), message));
    }

    fn template(&mut self, text: &Spanned<String>, what: &str) -> Option<Template> {
        match Template::compile(&text.value) {
            Ok(template) => self.checked(template, text.referenced, what),
            Err(error) => {
                self.report(text.referenced, format!("{what}: {error}"));
                None
            }
        }
    }

    /// A duration that must be more than zero; `default` when absent or wrong.
    fn positive_duration(&mut self, text: &Option<Spanned<String>>, what: &str, default: Duration) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match parse_duration(&text.value) {
            Ok(duration) if !duration.is_zero() => duration,
            Ok(_) => {
                self.report(text.referenced, format!("{what} must be more than zero"));
                default
            }
            Err(message) => {
                self.report(text.referenced, format!("{what}: {message}"));
                default
            }
        }
    }

    /// Reports what can be known statically about a compiled template.
    fn checked(&mut self, template: Template, location: Location, what: &str) -> Option<Template> {
        let earlier: Vec<&str> = self.earlier_steps.iter().map(String::as_str).collect();
        let problems = check(&template, self.roots, &earlier);
        self.payload.merge(&payload_reads(&template));
        let clean = problems.is_empty();
        for problem in problems {
            self.problems.push(
                Diagnostic::new(self.file, Some(location), format!("{what}: {}", problem.message))
                    .about(problem.culprit),
            );
        }
        clean.then_some(template)
    }
}

/// Validates a parsed file. `default_id` is the file stem; `version` its content hash.
pub(super) fn validate(
    file: &Path,
    default_id: &str,
    version: String,
    parsed: RecipeFile,
    redactor: Redactor,
) -> Result<Recipe, Vec<Diagnostic>> {
    let mut checker = Checker {
        file,
        problems: Vec::new(),
        warnings: Vec::new(),
        roots: ROOTS,
        earlier_steps: Vec::new(),
        payload: PayloadReads::default(),
    };

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

    if parsed.steps.value.is_empty() {
        checker.report(
            parsed.steps.referenced,
            "`steps` is empty; a recipe needs at least one step",
        );
    }
    let mut seen_ids = HashSet::new();
    let mut steps = Vec::with_capacity(parsed.steps.value.len());
    for (index, step) in parsed.steps.value.iter().enumerate() {
        if let Some(step) = validate_step(&mut checker, index, step, &mut seen_ids) {
            steps.push(step);
        }
    }

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
        description: parsed.description.map(|description| description.value),
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
        payload_reads: checker.payload,
    })
}

fn validate_step(
    checker: &mut Checker<'_>,
    index: usize,
    step: &Spanned<StepConfig>,
    seen_ids: &mut HashSet<String>,
) -> Option<Step> {
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

    let when = step
        .when
        .as_ref()
        .and_then(|when| checker.template(when, &format!("{label} `when`")));
    let timeout = checker.positive_duration(&step.timeout, &format!("{label} `timeout`"), DEFAULT_STEP_TIMEOUT);

    let action = match (&step.http, &step.log) {
        (Some(http), None) => validate_http(checker, &label, location, http).map(|http| Kind::Http(Box::new(http))),
        (None, Some(log)) => checker.template(log, &format!("{label} `log`")).map(Kind::Log),
        (None, None) => {
            checker.report(
                location,
                format!("{label} has no action; expected one of `http`, `log`"),
            );
            None
        }
        (Some(_), Some(_)) => {
            checker.report(
                location,
                format!("{label} has both `http` and `log`; a step has exactly one action"),
            );
            None
        }
    };
    let retry = match &step.retry {
        Some(retry) => validate_retry(checker, &label, retry),
        None => RetryPolicy::default(),
    };

    // Later steps may name this one even when it has problems of its own: one
    // mistake is reported once, not again at every step that uses its result.
    checker.earlier_steps.push(id.clone());
    Some(Step {
        id,
        when,
        kind: action?,
        timeout,
        retry,
    })
}

fn validate_retry(checker: &mut Checker<'_>, label: &str, retry: &Spanned<RetryConfig>) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    let mut duration = |text: &Option<Spanned<String>>, key: &str, default: Duration| match text {
        Some(text) => match parse_duration(&text.value) {
            Ok(duration) => duration,
            Err(message) => {
                checker.report(text.referenced, format!("{label} `retry.{key}`: {message}"));
                default
            }
        },
        None => default,
    };
    let backoff = duration(&retry.value.backoff, "backoff", defaults.backoff);
    let max = duration(&retry.value.max, "max", defaults.max);
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
    }
}

fn validate_http(
    checker: &mut Checker<'_>,
    label: &str,
    location: Location,
    http: &HttpConfig,
) -> Option<HttpTemplate> {
    let url = checker.template(&http.url, &format!("{label} `url`"));
    if let Some(source) = host_from_trigger_data(&http.url.value) {
        checker.warnings.push(Diagnostic::new(
            checker.file,
            Some(http.url.referenced),
            format!(
                "{label} `url` takes its host from `{source}`: whoever sends the trigger chooses where this request goes (and its credentials with it); set FERRY_DENY_PRIVATE_DESTINATIONS=true, or write the host in the recipe"
            ),
        ));
    }
    let query: Vec<_> = http
        .query
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.clone(),
                checker.template(value, &format!("{label} query `{name}`"))?,
            ))
        })
        .collect();
    let headers: Vec<_> = http
        .headers
        .iter()
        .filter_map(|(name, value)| {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                checker.report(
                    value.referenced,
                    format!("{label}: `{name}` is not a valid header name"),
                );
                return None;
            }
            Some((
                name.clone(),
                checker.template(value, &format!("{label} header `{name}`"))?,
            ))
        })
        .collect();

    let given: Vec<&str> = [
        http.json.as_ref().map(|_| "json"),
        http.form.as_ref().map(|_| "form"),
        http.body.as_ref().map(|_| "body"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let body = if given.len() > 1 {
        checker.report(
            location,
            format!("{label} has {}; give at most one body", given.join(" and ")),
        );
        None
    } else if let Some(json) = &http.json {
        match ValueTemplate::compile(&json.value) {
            Ok(tree) => {
                let mut clean = true;
                for (path, template) in tree.templates() {
                    clean &= checker
                        .checked(template.clone(), json.referenced, &format!("{label} `json` at {path}"))
                        .is_some();
                }
                clean.then_some(BodyTemplate::Json(tree))
            }
            Err(error) => {
                checker.report(json.referenced, format!("{label} `json`: {error}"));
                None
            }
        }
    } else if let Some(form) = &http.form {
        let fields: Vec<_> = form
            .value
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    name.clone(),
                    checker.template(value, &format!("{label} form `{name}`"))?,
                ))
            })
            .collect();
        (fields.len() == form.value.len()).then_some(BodyTemplate::Form(fields))
    } else {
        http.body
            .as_ref()
            .and_then(|body| checker.template(body, &format!("{label} `body`")))
            .map(BodyTemplate::Text)
    };
    let auth = match http.auth.as_ref().map(|auth| &auth.value) {
        Some(AuthConfig::Bearer(token)) => checker
            .template(token, &format!("{label} `auth.bearer`"))
            .map(AuthTemplate::Bearer),
        Some(AuthConfig::Basic(basic)) => {
            let username = checker.template(&basic.username, &format!("{label} `auth.basic.username`"));
            let password = checker.template(&basic.password, &format!("{label} `auth.basic.password`"));
            username
                .zip(password)
                .map(|(username, password)| AuthTemplate::Basic { username, password })
        }
        None => None,
    };
    let auth_failed = http.auth.is_some() && auth.is_none();
    let body_failed = !given.is_empty() && body.is_none();

    let method = match &http.method {
        Some(method) => match reqwest::Method::from_bytes(method.value.to_ascii_uppercase().as_bytes()) {
            Ok(parsed) => parsed,
            Err(_) => {
                checker.report(
                    method.referenced,
                    format!("{label}: `{}` is not an HTTP method", method.value),
                );
                reqwest::Method::GET
            }
        },
        None if body.is_some() => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    if let Some(status) = http.accept.iter().find(|status| !(100..=999).contains(*status)) {
        checker.report(location, format!("{label} `accept`: {status} is not an HTTP status"));
    }

    if auth_failed || body_failed {
        return None;
    }
    let mut template = HttpTemplate {
        method,
        url: url?,
        query,
        headers,
        body,
        auth,
        accept: http.accept.clone(),
        renders_alike: false,
        has_blocks: false,
        fixed_url: None,
    };
    template.renders_alike = template.volatile_free();
    template.has_blocks = template.any_blocks();
    template.fixed_url = template.parse_plain_url();
    Some(template)
}

fn is_recipe_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The template expression in a URL's scheme-and-host part that reads trigger
/// data or an answer (`payload`, `headers`, `query`, `steps`, `item`), if any.
/// `{{ferry.url}}` and literal hosts are fine.
fn host_from_trigger_data(url: &str) -> Option<String> {
    // The authority ends at the first `/`, `?` or `#` after `://` (or after the
    // start, for a URL that begins with a template), outside `{{…}}`.
    let start = url.find("://").map_or(0, |at| at + 3);
    let mut depth = 0usize;
    let mut end = url.len();
    let bytes = url.as_bytes();
    let mut index = start;
    while index < bytes.len() {
        if url[index..].starts_with("{{") {
            depth += 1;
            index += 2;
            continue;
        }
        if url[index..].starts_with("}}") {
            depth = depth.saturating_sub(1);
            index += 2;
            continue;
        }
        if depth == 0 && matches!(bytes[index], b'/' | b'?' | b'#') {
            end = index;
            break;
        }
        index += 1;
    }
    let host_part = &url[..end];
    let mut rest = host_part;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").unwrap_or(after.len());
        let expression = after[..close].trim();
        let reads_input = expression
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| matches!(word, "payload" | "headers" | "query" | "steps" | "item"));
        if reads_input {
            return Some(format!("{{{{{expression}}}}}"));
        }
        rest = &after[close.min(after.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::host_from_trigger_data;

    #[test]
    fn hosts_built_from_trigger_data_are_found() {
        assert_eq!(
            host_from_trigger_data("https://{{payload.host}}/x").as_deref(),
            Some("{{payload.host}}")
        );
        assert_eq!(
            host_from_trigger_data("{{payload.callback}}").as_deref(),
            Some("{{payload.callback}}")
        );
        assert_eq!(
            host_from_trigger_data("https://api.{{lower headers.x-region}}.example.com/v1").as_deref(),
            Some("{{lower headers.x-region}}")
        );
        assert_eq!(
            host_from_trigger_data("https://api.example.com/{{payload.id}}?q={{query.q}}"),
            None
        );
        assert_eq!(host_from_trigger_data("{{ferry.url}}/hooks/demo-sink"), None);
        assert_eq!(host_from_trigger_data("https://chat.example.com/hooks/T0/B0"), None);
    }
}
