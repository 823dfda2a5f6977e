//! The trigger of a recipe: a webhook's path and answer, a schedule's times, a
//! poll's source and items.

use std::time::Duration;

use chrono_tz::Tz;
use serde_saphyr::{Location, Spanned};

use super::{Checker, validate_http};
use crate::recipe::config::{PollConfig, ScheduleConfig, TriggerConfig, WebhookConfig};
use crate::recipe::{
    FirstPoll, ItemsPath, Missed, PollTrigger, Position, Respond, Schedule, Trigger, parse_duration, parse_timezone,
};

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
        TriggerConfig::Webhook(webhook) => Some(validate_webhook(checker, id, webhook, trigger_at)),
        TriggerConfig::Schedule(config) => {
            let schedule = validate_schedule(checker, "schedule", &config.cron, &config.timezone, &config.every, at);
            let missed = validate_missed(checker, &config);
            Some(Trigger::Schedule {
                schedule: schedule?,
                missed,
            })
        }
        TriggerConfig::Poll(config) => validate_poll(checker, *config, at).map(|poll| Trigger::Poll(Box::new(poll))),
    }
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
    let timeout = checker.positive_duration(&webhook.timeout, "webhook `timeout`", DEFAULT_WAIT);
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
    Trigger::Webhook { path, dedup, respond }
}

/// Exactly one of `cron` (with an optional `timezone`) and `every`.
fn validate_schedule(
    checker: &mut Checker<'_>,
    kind: &str,
    cron: &Option<Spanned<String>>,
    timezone: &Option<Spanned<String>>,
    every: &Option<Spanned<String>>,
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
    let schedule = validate_schedule(checker, "poll", &config.cron, &config.timezone, &config.every, at);
    let timeout = checker.positive_duration(&config.timeout, "poll `timeout`", DEFAULT_POLL_TIMEOUT);

    let roots = std::mem::replace(&mut checker.roots, POLL_ROOTS);
    let request = validate_http(checker, "poll", config.http.referenced, &config.http.value);
    checker.roots = KEY_ROOTS;
    let key = config.key.as_ref().map(|key| checker.template(key, "poll `key`"));
    checker.roots = roots;

    let items = match &config.items {
        Some(items) => match serde_json_path::JsonPath::parse(items.value.trim()) {
            Ok(path) => Some(ItemsPath {
                source: items.value.trim().to_owned(),
                path,
            }),
            Err(error) => {
                checker.report(
                    items.referenced,
                    format!(
                        "poll `items`: `{}` is not an RFC 9535 JSONPath ({error}); expected something like `$.features[*]`",
                        items.value
                    ),
                );
                return None;
            }
        },
        None => None,
    };
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
    })
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
