//! The trigger of a recipe: a webhook's path and answer, a schedule's times, a
//! poll's source and items.

use std::time::Duration;

use chrono_tz::Tz;
use serde_saphyr::{Location, Spanned};

use crate::checks::Checker;
use crate::recipe::config::{
    FailureConfig, PaginateConfig, PollConfig, ScheduleConfig, TriggerConfig, VerifyConfig, WebhookConfig,
};
use crate::recipe::{
    DEFAULT_MAX_PAGES, FirstPoll, ItemsPath, Missed, Pagination, PollTrigger, Position, Rate, RecipeRate, Respond,
    Schedule, Trigger, Watched, WatchedId, parse_duration, parse_timezone,
};
use crate::step::http::check::validate_http;
use crate::verify::{Algorithm, DEFAULT_TOLERANCE, Encoding, Verifier};

const DEFAULT_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a poll's request templates may use: no payload exists before the poll.
const POLL_ROOTS: &[&str] = &["trigger", "ferry"];
/// What a poll's `key` template may use: the one item.
const KEY_ROOTS: &[&str] = &["item"];

/// Validates the trigger; `trigger_at` moves to the most telling place in it.
pub(super) fn validate(
    checker: &mut Checker<'_>,
    id: &str,
    config: Spanned<TriggerConfig>,
    trigger_at: &mut Position,
) -> Option<Trigger> {
    let at = config.referenced;
    match config.value {
        TriggerConfig::Webhook(webhook) => Some(validate_webhook(checker, id, *webhook, trigger_at)),
        TriggerConfig::Schedule(config) => {
            let schedule = validate_schedule(
                checker,
                "schedule",
                config.cron.as_deref(),
                config.timezone.as_deref(),
                config.every.as_deref(),
                at,
            );
            let missed = validate_missed(checker, &config);
            Some(Trigger::Schedule {
                schedule: schedule?,
                missed,
            })
        }
        TriggerConfig::Poll(config) => validate_poll(checker, *config, at).map(|poll| Trigger::Poll(Box::new(poll))),
        TriggerConfig::Failure(config) => validate_failure(checker, id, *config).map(Trigger::Failure),
    }
}

/// `failure: {recipes: […]}`: `["*"]`, or recipe ids other than its own. An
/// id no recipe has yet is allowed: the recipe may be added later.
fn validate_failure(checker: &mut Checker<'_>, id: &str, config: FailureConfig) -> Option<Watched> {
    let listed = config.recipes;
    if listed.value.is_empty() {
        checker.report(
            listed.referenced,
            "failure `recipes` is empty; list recipe ids, or `[\"*\"]` for all",
        );
        return None;
    }
    let all = listed.value.iter().any(|name| name.value == "*");
    if all {
        if listed.value.len() > 1 {
            checker.report(
                listed.referenced,
                "failure `recipes`: `*` already names every recipe; list it alone",
            );
            return None;
        }
        return Some(Watched::All);
    }
    let mut ids: Vec<WatchedId> = Vec::with_capacity(listed.value.len());
    let mut wrong = false;
    for name in &listed.value {
        wrong |= name.value == id || !super::is_recipe_id(&name.value);
        if name.value == id {
            checker.report(
                name.referenced,
                format!("failure `recipes` lists `{id}`, this recipe: a failure trigger never runs for its own runs"),
            );
        } else if !super::is_recipe_id(&name.value) {
            checker.report(
                name.referenced,
                format!("failure `recipes`: `{}` is not a recipe id", name.value),
            );
        } else if !ids.iter().any(|watched| watched.id == name.value) {
            ids.push(WatchedId {
                id: name.value.clone(),
                at: name.referenced.into(),
            });
        }
    }
    (!wrong).then_some(Watched::Only(ids))
}

fn validate_webhook(checker: &mut Checker<'_>, id: &str, webhook: WebhookConfig, trigger_at: &mut Position) -> Trigger {
    let path = match webhook.path {
        Some(path) => {
            *trigger_at = path.referenced.into();
            let trimmed = path.value.trim_matches('/');
            if !is_hook_path(trimmed) {
                checker.report(
                    path.referenced,
                    format!(
                        "webhook path `{}` is not valid; expected letters, digits, `-`, `_`, `.` and `/`",
                        path.value
                    ),
                );
            }
            trimmed.to_owned()
        }
        None => id.to_owned(),
    };
    let dedup = webhook
        .dedup
        .as_ref()
        .and_then(|dedup| checker.template(dedup, "webhook `dedup`"));
    let timeout = checker.positive_duration(webhook.timeout.as_deref(), "webhook `timeout`", DEFAULT_WAIT);
    let respond = match webhook
        .respond
        .as_ref()
        .map(|respond| (respond.value.as_str(), respond.referenced))
    {
        None | Some(("accepted", _)) => {
            if let Some(timeout) = &webhook.timeout {
                checker.report(
                    timeout.referenced,
                    "webhook `timeout` only applies with `respond: wait`",
                );
            }
            Respond::Accepted
        }
        Some(("wait", _)) => Respond::Wait { timeout },
        Some((other, location)) => {
            checker.report(
                location,
                format!("webhook `respond: {other}` is not known; expected `accepted` or `wait`"),
            );
            Respond::Accepted
        }
    };
    let verify = webhook
        .verify
        .and_then(|verify| validate_verify(checker, verify))
        .map(Box::new);
    let rate = webhook.rate.as_ref().and_then(|rate| match rate.value.parse::<Rate>() {
        Ok(parsed) => Some(Box::new(RecipeRate::new(parsed))),
        Err(message) => {
            checker.report(rate.referenced, format!("webhook `rate`: {message}"));
            None
        }
    });
    Trigger::Webhook {
        path,
        dedup,
        respond,
        verify,
        rate,
    }
}

/// `verify:`: the scheme's keys, checked. Which keys a scheme takes is its
/// variant's: the schema check reported a missing or extra one already.
fn validate_verify(checker: &mut Checker<'_>, verify: Spanned<VerifyConfig>) -> Option<Verifier> {
    let at = verify.referenced;
    let (secret, password) = match &verify.value {
        VerifyConfig::Basic { password, .. } => (None, Some(password)),
        VerifyConfig::Github { secret }
        | VerifyConfig::Shopify { secret }
        | VerifyConfig::Stripe { secret, .. }
        | VerifyConfig::Slack { secret, .. }
        | VerifyConfig::Standard { secret, .. }
        | VerifyConfig::Hmac { secret, .. }
        | VerifyConfig::Token { secret, .. } => (Some(secret), None),
    };
    // A verify secret is a secret even when written in the recipe.
    for (name, text) in [("verify.secret", secret), ("verify.password", password)] {
        if let Some(text) = text {
            checker.keep_secret(name, &text.value);
        }
    }
    let mut filled = |key: &str, value: &Spanned<String>| -> Option<String> {
        if value.value.is_empty() {
            checker.report(value.referenced, format!("verify `{key}` is empty"));
            return None;
        }
        Some(value.value.clone())
    };
    let secret = secret.and_then(|secret| filled("secret", secret));
    let verifier = match verify.value {
        VerifyConfig::Github { .. } => Verifier::Github {
            key: Verifier::key(&secret?),
        },
        VerifyConfig::Shopify { .. } => Verifier::Shopify {
            key: Verifier::key(&secret?),
        },
        VerifyConfig::Stripe { tolerance, .. } => Verifier::Stripe {
            tolerance: tolerance_of(checker, tolerance.as_deref()),
            key: Verifier::key(&secret?),
        },
        VerifyConfig::Slack { tolerance, .. } => Verifier::Slack {
            tolerance: tolerance_of(checker, tolerance.as_deref()),
            key: Verifier::key(&secret?),
        },
        VerifyConfig::Standard {
            secret: written,
            tolerance,
        } => {
            let tolerance = tolerance_of(checker, tolerance.as_deref());
            match Verifier::standard(&secret?, tolerance) {
                Ok(verifier) => verifier,
                Err(message) => {
                    checker.report(written.referenced, format!("verify `secret`: {message}"));
                    return None;
                }
            }
        }
        VerifyConfig::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            ..
        } => {
            let header = filled("header", &header);
            let algorithm = choice(
                checker,
                algorithm.as_deref(),
                "algorithm",
                &["sha1", "sha256", "sha512"],
            );
            let encoding = choice(checker, encoding.as_deref(), "encoding", &["hex", "base64"]);
            let header = header_name(checker, at, header?)?;
            Verifier::Hmac {
                header,
                algorithm: match algorithm?.as_deref() {
                    Some("sha1") => Algorithm::Sha1,
                    Some("sha512") => Algorithm::Sha512,
                    _ => Algorithm::Sha256,
                },
                encoding: match encoding?.as_deref() {
                    Some("base64") => Encoding::Base64,
                    _ => Encoding::Hex,
                },
                prefix: prefix.map(|prefix| prefix.0.value).unwrap_or_default(),
                key: Verifier::key(&secret?),
            }
        }
        VerifyConfig::Token { header, .. } => {
            let header = filled("header", &header);
            let header = header_name(checker, at, header?)?;
            Verifier::Token {
                header,
                secret: Verifier::key(&secret?),
            }
        }
        VerifyConfig::Basic { username, password } => {
            let username = filled("username", &username);
            let password = filled("password", &password);
            Verifier::basic(&username?, &password?)
        }
    };
    Some(verifier)
}

/// A timestamped scheme's `tolerance`, or the default.
fn tolerance_of(checker: &mut Checker<'_>, tolerance: Option<&Spanned<String>>) -> Duration {
    checker.positive_duration(tolerance, "verify `tolerance`", DEFAULT_TOLERANCE)
}

/// One of `known`, or `None` (reported); `Some(None)` when not given.
fn choice(
    checker: &mut Checker<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    known: &[&str],
) -> Option<Option<String>> {
    match value {
        None => Some(None),
        Some(value) if known.contains(&value.value.as_str()) => Some(Some(value.value.clone())),
        Some(value) => {
            checker.report(
                value.referenced,
                format!(
                    "verify `{key}: {}` is not known; expected one of {}",
                    value.value,
                    known.join(", ")
                ),
            );
            None
        }
    }
}

/// A verify `header`, lower-cased; reported when it is not a header name.
fn header_name(checker: &mut Checker<'_>, at: Location, header: String) -> Option<String> {
    if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
        checker.report(at, format!("verify `header`: `{header}` is not a valid header name"));
        return None;
    }
    Some(header.to_ascii_lowercase())
}

/// Exactly one of `cron` (with an optional `timezone`) and `every`.
fn validate_schedule(
    checker: &mut Checker<'_>,
    kind: &str,
    cron: Option<&Spanned<String>>,
    timezone: Option<&Spanned<String>>,
    every: Option<&Spanned<String>>,
    at: Location,
) -> Option<Schedule> {
    let zone = match timezone {
        Some(name) => match parse_timezone(name.value.trim()) {
            Ok(zone) => Some(zone),
            Err(error) => {
                checker.report(name.referenced, format!("{kind} `timezone`: {error}"));
                None
            }
        },
        None => Some(Tz::UTC),
    };
    match (cron, every) {
        (Some(cron), None) => match Schedule::cron(cron.value.trim(), zone?) {
            Ok(schedule) => Some(schedule),
            Err(error) => {
                checker.report(cron.referenced, format!("{kind} `cron`: {error}"));
                None
            }
        },
        (None, Some(every)) => {
            if let Some(timezone) = timezone {
                checker.report(
                    timezone.referenced,
                    format!("{kind} `timezone` only applies to `cron`; `every` counts real time"),
                );
            }
            let interval = match parse_duration(&every.value) {
                Ok(interval) => interval,
                Err(message) => {
                    checker.report(every.referenced, format!("{kind} `every`: {message}"));
                    return None;
                }
            };
            match Schedule::every(interval) {
                Ok(schedule) => Some(schedule),
                Err(error) => {
                    checker.report(every.referenced, format!("{kind} `every`: {error}"));
                    None
                }
            }
        }
        (Some(cron), Some(_)) => {
            checker.report(
                cron.referenced,
                format!("{kind} has both `cron` and `every`; give one of them"),
            );
            None
        }
        (None, None) => {
            checker.report(
                at,
                format!("{kind} needs `cron` (like `0 9 * * MON-FRI`) or `every` (like `15m`)"),
            );
            None
        }
    }
}

fn validate_missed(checker: &mut Checker<'_>, config: &ScheduleConfig) -> Missed {
    match config
        .missed
        .as_ref()
        .map(|missed| (missed.value.as_str(), missed.referenced))
    {
        None | Some(("skip", _)) => Missed::Skip,
        Some(("once", _)) => Missed::Once,
        Some((other, location)) => {
            checker.report(
                location,
                format!("schedule `missed: {other}` is not known; expected `skip` or `once`"),
            );
            Missed::Skip
        }
    }
}

fn validate_poll(checker: &mut Checker<'_>, config: PollConfig, at: Location) -> Option<PollTrigger> {
    let schedule = validate_schedule(
        checker,
        "poll",
        config.cron.as_deref(),
        config.timezone.as_deref(),
        config.every.as_deref(),
        at,
    );
    let timeout = checker.positive_duration(config.timeout.as_deref(), "poll `timeout`", DEFAULT_POLL_TIMEOUT);

    let roots = std::mem::replace(&mut checker.roots, POLL_ROOTS);
    let request = validate_http(checker, "poll", config.http.referenced, &config.http.value);
    checker.roots = KEY_ROOTS;
    let key = config.key.as_ref().map(|key| checker.template(key, "poll `key`"));
    checker.roots = roots;

    let items = match &config.items {
        Some(items) => Some(json_path(checker, items, "items", "$.features[*]")?),
        None => None,
    };
    let paginate = match &config.paginate {
        Some(paginate) => Some(validate_paginate(checker, paginate)?),
        None => None,
    };
    let max_pages = config.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
    if max_pages == 0 {
        checker.report(at, "poll `max_pages` must be at least 1");
    }
    let first = match config
        .first
        .as_ref()
        .map(|first| (first.value.as_str(), first.referenced))
    {
        None | Some(("skip", _)) => FirstPoll::Skip,
        Some(("emit", _)) => FirstPoll::Emit,
        Some((other, location)) => {
            checker.report(
                location,
                format!("poll `first: {other}` is not known; expected `skip` or `emit`"),
            );
            FirstPoll::Skip
        }
    };
    Some(PollTrigger {
        schedule: schedule?,
        request: request?,
        timeout,
        items,
        key: match key {
            Some(key) => Some(key?),
            None => None,
        },
        first,
        paginate,
        max_pages: max_pages.max(1),
    })
}

/// A JSONPath written in a poll (`items`, a `paginate` path), parsed.
fn json_path(checker: &mut Checker<'_>, text: &Spanned<String>, key: &str, like: &str) -> Option<ItemsPath> {
    let source = text.value.trim();
    match serde_json_path::JsonPath::parse(source) {
        Ok(path) => Some(ItemsPath {
            source: source.to_owned(),
            path,
        }),
        Err(error) => {
            checker.report(
                text.referenced,
                format!(
                    "poll `{key}`: `{source}` is not an RFC 9535 JSONPath ({error}); expected something like `{like}`"
                ),
            );
            None
        }
    }
}

/// `paginate:`: `next: link`, `next: <JSONPath>`, or `cursor: <JSONPath>` with `param`.
fn validate_paginate(checker: &mut Checker<'_>, paginate: &Spanned<PaginateConfig>) -> Option<Pagination> {
    let config = &paginate.value;
    match (&config.next, &config.cursor, &config.param) {
        (Some(next), None, None) if next.value.trim() == "link" => Some(Pagination::Link),
        (Some(next), None, None) => json_path(checker, next, "paginate.next", "$.links.next").map(Pagination::NextUrl),
        (None, Some(cursor), Some(param)) if !param.value.trim().is_empty() => {
            let path = json_path(checker, cursor, "paginate.cursor", "$.meta.next_cursor")?;
            Some(Pagination::Cursor {
                path,
                param: param.value.trim().to_owned(),
            })
        }
        (None, Some(_), _) => {
            checker.report(
                paginate.referenced,
                "poll `paginate` with `cursor` needs `param`: the query parameter that sends the cursor back",
            );
            None
        }
        (Some(_), _, Some(param)) => {
            checker.report(
                param.referenced,
                "poll `paginate`: `param` goes with `cursor`, not with `next`",
            );
            None
        }
        _ => {
            checker.report(
                paginate.referenced,
                "poll `paginate` needs one of `next: link`, `next: \"$.path.to.url\"` or `cursor: \"$.path\"` with `param`",
            );
            None
        }
    }
}

pub(super) fn is_hook_path(path: &str) -> bool {
    !path.is_empty()
        && !path
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}
