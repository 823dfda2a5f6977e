//! The `delay` step: the run waits — `delay: 10m`, or `delay: {until: "{{…}}"}`
//! (an RFC 3339 time; one in the past goes on at once). A waiting run is a row
//! in the store with its time, like a run waiting for a retry: it holds no task
//! and no concurrency slot, and a restart finds it and resumes it on time. The
//! run loop runs it (it ends the run's turn); this module reads and checks it.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_saphyr::Location;

use crate::checks::Checker;
use crate::environment::TemplateText;
use crate::template::{Template, TemplateError, Templates};

/// What a user writes under `delay:`.
#[derive(Debug)]
pub enum DelayConfig {
    /// `delay: 10m`.
    For(String),
    /// `delay: {until: "{{payload.remind_at}}"}`.
    Until(TemplateText),
}

impl<'de> Deserialize<'de> for DelayConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DelayVisitor)
    }
}

struct DelayVisitor;

impl<'de> Visitor<'de> for DelayVisitor {
    type Value = DelayConfig;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a duration like `10m`, or `{until: \"{{payload.remind_at}}\"}`")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<DelayConfig, E> {
        Ok(DelayConfig::For(text.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DelayConfig, A::Error> {
        let mut until = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "until" if until.is_none() => until = Some(map.next_value::<TemplateText>()?),
                "until" => return Err(de::Error::duplicate_field("until")),
                other => return Err(de::Error::unknown_field(other, &["until"])),
            }
        }
        until
            .map(DelayConfig::Until)
            .ok_or_else(|| de::Error::missing_field("until"))
    }
}

impl JsonSchema for DelayConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DelayConfig".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "How long the run waits (`10m`), or until when (`{until: \"{{payload.remind_at}}\"}`, RFC 3339).",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"until": {"type": "string", "description": "Template giving an RFC 3339 time."}},
                    "required": ["until"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

/// A `delay` step once loaded: how long or until when, and how it was written
/// (for its record).
#[derive(Debug)]
pub struct DelayStep {
    pub wait: Wait,
    pub written: String,
}

/// How long, or until when.
#[derive(Debug)]
pub enum Wait {
    For(Duration),
    Until(Template),
}

/// Its checks: a duration more than zero, or a template.
pub(super) fn check(
    checker: &mut Checker<'_>,
    label: &str,
    location: Location,
    config: &DelayConfig,
) -> Option<DelayStep> {
    match config {
        DelayConfig::For(text) => match crate::duration::parse_duration(text) {
            Ok(duration) if !duration.is_zero() => Some(DelayStep {
                wait: Wait::For(duration),
                written: text.clone(),
            }),
            Ok(_) => {
                checker.report(location, format!("{label} `delay` must be more than zero"));
                None
            }
            Err(message) => {
                checker.report(location, format!("{label} `delay`: {message}"));
                None
            }
        },
        DelayConfig::Until(until) => checker
            .template(until, &format!("{label} `delay.until`"))
            .map(|template| DelayStep {
                written: until.value.clone(),
                wait: Wait::Until(template),
            }),
    }
}

impl DelayStep {
    /// When the run may go on, from `now`; an error names what did not render
    /// or read as a time.
    pub fn until(
        &self,
        templates: &Templates,
        context: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, String> {
        match &self.wait {
            Wait::For(duration) => Ok(now + chrono::Duration::from_std(*duration).unwrap_or(chrono::Duration::MAX)),
            Wait::Until(template) => {
                let text = templates
                    .render_text(template, context)
                    .map_err(|error: TemplateError| format!("`delay.until`: {error}"))?;
                DateTime::parse_from_rfc3339(text.trim())
                    .map(|time| time.to_utc())
                    .map_err(|error| {
                        format!(
                            "`delay.until` gave `{text}`, not an RFC 3339 time like `2026-12-24T09:00:00Z` ({error})"
                        )
                    })
            }
        }
    }
}
