//! The webhook trigger: turning an HTTP request into an [`Event`](super::Event)'s
//! `payload`, `headers` and `query`.

use serde_json::{Map, Value};

use super::Event;
use crate::recipe::{Recipe, Trigger};
use crate::template::{PayloadReads, Templates};

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
