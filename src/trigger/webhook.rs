//! The webhook trigger: a delivery that passed its recipe's `verify` becomes an
//! [`Event`](super::Event) (see [`event`]); the HTTP door in `api/hooks.rs` does
//! the rest (limits, the body's size and memory, the answer). Also the body's
//! `payload`, `headers` and `query`.

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Event;
use crate::recipe::{Recipe, Trigger};
use crate::redact::{REDACTED, Redactor, is_sensitive_header};
use crate::template::{PayloadReads, Templates};

/// A request that reached a recipe's webhook and passed its `verify`.
pub struct Delivery<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The raw query string.
    pub query: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    /// The provider's id of this delivery, when its signature scheme has one.
    pub delivery_id: Option<String>,
}

/// The event a delivery starts: its body parsed as far as the recipe's
/// templates read it, the sender's credentials and the recipe's secrets
/// redacted, its dedup key. `redact_headers` are the names
/// `FERRY_REDACT_HEADERS` adds.
pub fn event(
    templates: &Templates,
    recipe: &Recipe,
    delivery: Delivery<'_>,
    redact_headers: &[String],
) -> Result<Event, BodyError> {
    let content_type = delivery
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    // The recipe's secrets are looked for in the whole payload before it is
    // stored; otherwise only what its templates read is built.
    let all = PayloadReads::all();
    let reads = if recipe.redactor.is_empty() {
        &recipe.payload_reads
    } else {
        &all
    };
    let parsed = parse_body(content_type, delivery.body, reads)?;
    let (payload, payload_text) = stored_payload(&recipe.redactor, parsed.payload, parsed.json_text);
    let mut query = query_object(delivery.query);
    if !recipe.redactor.is_empty() {
        query
            .values_mut()
            .for_each(|value| *value = recipe.redactor.value(value));
    }
    let mut event = Event {
        run_id: uuid::Uuid::now_v7().to_string(),
        recipe: recipe.id.clone(),
        recipe_version: recipe.version.clone(),
        trigger: recipe.trigger.kind(),
        payload,
        payload_text,
        headers: stored_headers(delivery.headers, recipe, redact_headers),
        query,
        received_at: delivery.received_at,
        dedup_key: None,
        replay_of: None,
    };
    // Without a `dedup` of its own, a verified provider's delivery id is the key:
    // a replayed delivery starts nothing.
    event.dedup_key = dedup_key(templates, recipe, &event).or(delivery.delivery_id);
    Ok(event)
}

/// A body that cannot become a payload.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is declared as JSON (content-type `{content_type}`) but is not valid JSON: {reason}")]
    InvalidJson { content_type: String, reason: String },
}

/// A request body as a payload.
#[derive(Debug)]
pub struct Body {
    pub payload: Value,
    /// The body itself, when it is the payload's JSON text: the store keeps it as
    /// it came, because serialising the payload again costs about as much as
    /// parsing it.
    pub json_text: Option<String>,
}

impl From<Value> for Body {
    fn from(payload: Value) -> Self {
        Self {
            payload,
            json_text: None,
        }
    }
}

/// The payload of a request body, by its content type: JSON stays JSON; a form
/// becomes an object of strings (a form whose only field is `payload` holding JSON,
/// as GitHub and Slack send, becomes that JSON); anything else is text. An empty
/// body is `null`. JSON is built only as far as `reads` says the recipe's
/// templates read it (the text is kept whole for the store).
pub fn parse_body(content_type: Option<&str>, body: &[u8], reads: &PayloadReads) -> Result<Body, BodyError> {
    if body.is_empty() {
        return Ok(Value::Null.into());
    }
    let media_type = content_type.map(crate::headers::media_type).unwrap_or_default();
    if crate::headers::is_json(&media_type) {
        let payload = reads.parse(body).map_err(|error| BodyError::InvalidJson {
            content_type: media_type,
            reason: error.to_string(),
        })?;
        return Ok(Body {
            payload,
            // Parsed JSON is UTF-8 (serde_json checks its strings); kept only if so.
            json_text: std::str::from_utf8(body).ok().map(str::to_owned),
        });
    }
    if media_type == "application/x-www-form-urlencoded" {
        let mut fields = form_fields(body);
        if let [(name, value)] = fields.as_slice()
            && name == "payload"
            && let Ok(payload) = reads.parse(value.as_bytes())
        {
            return Ok(Body {
                payload,
                json_text: fields.pop().map(|(_, text)| text),
            });
        }
        return Ok(Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect::<Map<String, Value>>(),
        )
        .into());
    }
    Ok(Value::String(String::from_utf8_lossy(body).into_owned()).into())
}

/// The delivery's identity from the recipe's `dedup` template, rendered over
/// `payload`, `headers` and `query`. `None` without a template, or when it renders
/// empty (a missing header, say): such a delivery is not deduplicated, because
/// refusing it could lose an event and accepting it at worst runs it twice.
pub fn dedup_key(templates: &Templates, recipe: &Recipe, event: &Event) -> Option<String> {
    let Trigger::Webhook {
        dedup: Some(template), ..
    } = &recipe.trigger
    else {
        return None;
    };
    let context = serde_json::json!({
        "payload": event.payload,
        "headers": event.headers,
        "query": event.query,
        "trigger": crate::event::trigger_context(
            &recipe.id,
            recipe.trigger.kind(),
            &crate::timestamp::timestamp(event.received_at),
            &event.run_id,
        ),
    });
    match templates.render_text(template, &context) {
        Ok(key) if !key.trim().is_empty() => Some(key),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(recipe = %recipe.id, %error, "the dedup key could not be rendered; the delivery is not deduplicated");
            None
        }
    }
}

/// The query string as an object of strings (the last of repeated names wins).
pub fn query_object(query: Option<&str>) -> Map<String, Value> {
    query
        .map(|query| {
            form_fields(query.as_bytes())
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect()
        })
        .unwrap_or_default()
}

fn form_fields(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The request's headers as stored: the sender's credentials replaced, because
/// the run keeps its trigger input for replay and shows it through the API.
/// Replaced whole: credential and signature headers by name, the recipe's
/// `verify` header whatever its name, and the names `FERRY_REDACT_HEADERS` adds;
/// any other value has the recipe's secrets redacted.
fn stored_headers(headers: &HeaderMap, recipe: &Recipe, extra: &[String]) -> Map<String, Value> {
    let verify_header = match &recipe.trigger {
        Trigger::Webhook {
            verify: Some(verifier), ..
        } => verifier.header_name(),
        _ => None,
    };
    let mut object = crate::headers::to_object(headers);
    for (name, value) in object.iter_mut() {
        if is_sensitive_header(name)
            || verify_header.is_some_and(|header| header.eq_ignore_ascii_case(name))
            || extra.iter().any(|header| header == name)
        {
            *value = Value::String(REDACTED.to_owned());
        } else if !recipe.redactor.is_empty() {
            *value = recipe.redactor.value(value);
        }
    }
    object
}

/// A webhook's payload as stored, with the recipe's secrets redacted: a caller
/// that sends one (or a destination's echo relayed back) leaves it nowhere. The
/// JSON text is kept as it came unless something in it was redacted.
fn stored_payload(redactor: &Redactor, payload: Value, text: Option<String>) -> (Value, Option<String>) {
    if redactor.is_empty() {
        return (payload, text);
    }
    let redacted = redactor.value(&payload);
    if redacted == payload {
        (payload, text)
    } else {
        (redacted, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_form_and_text_bodies() {
        assert_eq!(
            parse_body(
                Some("application/json; charset=utf-8"),
                br#"{"a":1}"#,
                &PayloadReads::all()
            )
            .unwrap()
            .payload,
            json!({"a": 1})
        );
        assert_eq!(
            parse_body(
                Some("application/x-www-form-urlencoded"),
                b"a=1&b=x+y",
                &PayloadReads::all()
            )
            .unwrap()
            .payload,
            json!({"a": "1", "b": "x y"})
        );
        assert_eq!(
            parse_body(
                Some("application/x-www-form-urlencoded"),
                b"payload=%7B%22k%22%3A2%7D",
                &PayloadReads::all()
            )
            .unwrap()
            .payload,
            json!({"k": 2})
        );
        assert_eq!(
            parse_body(Some("text/plain"), b"hello", &PayloadReads::all())
                .unwrap()
                .payload,
            json!("hello")
        );
        assert_eq!(
            parse_body(None, b"", &PayloadReads::all()).unwrap().payload,
            json!(null)
        );
    }

    #[test]
    fn the_json_text_of_a_payload_is_kept_as_it_came() {
        let kept = |content_type, body: &[u8]| {
            parse_body(Some(content_type), body, &PayloadReads::all())
                .unwrap()
                .json_text
        };
        assert_eq!(
            kept("application/json", b"{ \"a\": [1, 2] }\n").as_deref(),
            Some("{ \"a\": [1, 2] }\n")
        );
        assert_eq!(
            kept("application/x-www-form-urlencoded", b"payload=%7B+%22k%22%3A2%7D").as_deref(),
            Some("{ \"k\":2}")
        );
        // Payloads made here are serialised when stored.
        assert_eq!(kept("application/x-www-form-urlencoded", b"a=1"), None);
        assert_eq!(kept("text/plain", b"{}"), None);
    }

    #[test]
    fn json_that_is_not_json_is_an_error() {
        let error = parse_body(Some("application/json"), b"{oops", &PayloadReads::default()).unwrap_err();
        assert!(error.to_string().contains("not valid JSON"), "{error}");
    }
}
