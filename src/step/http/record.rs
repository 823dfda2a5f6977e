//! What a run's record keeps of a request it sent and of the answer: secrets
//! redacted, credentials hidden, long bodies cut.
//!
//! Written straight to JSON text for the store (every attempt writes both), and
//! given as values to `ferry run`, from the one description here.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap as _, SerializeStruct as _, Serializer};
use serde_json::Value;

use crate::action::{HttpRequest, HttpResponse, RequestBody};
use crate::redact::{REDACTED, Redactor};

/// The record keeps at most this much of a response body; later steps see all of it.
const RECORDED_BODY_LIMIT: usize = 64 * 1024;

/// A request as the record keeps it: `method`, `url` (without userinfo),
/// `headers` (credentials as `[redacted]`), `body`.
pub(crate) struct RequestRecord<'a> {
    pub redactor: &'a Redactor,
    pub request: &'a HttpRequest,
}

/// An answer as the record keeps it: `status`, `headers`, `body` (secrets
/// redacted first, then cut at 64 KiB, so a secret is never cut in half and
/// missed), `truncated`.
pub(crate) struct ResponseRecord<'a> {
    pub redactor: &'a Redactor,
    pub response: &'a HttpResponse,
}

/// [`RequestRecord`] as a value.
pub fn request_record(redactor: &Redactor, request: &HttpRequest) -> Value {
    // Serialising strings and maps with string keys cannot fail.
    serde_json::to_value(RequestRecord { redactor, request }).unwrap_or_default()
}

/// [`ResponseRecord`] as a value.
pub fn response_record(redactor: &Redactor, response: &HttpResponse) -> Value {
    serde_json::to_value(ResponseRecord { redactor, response }).unwrap_or_default()
}

impl RequestRecord<'_> {
    /// The record as JSON text. A JSON body with nothing to redact goes in as
    /// the text that was sent rather than serialised again (for a large body
    /// that was half the cost of the record); one with a secret, redacted.
    pub fn to_text(&self) -> String {
        let Some(RequestBody::Json(body)) = &self.request.body else {
            return crate::json::text(self);
        };
        let redacted = self.redactor.value_cow(body.value());
        let mut record = crate::json::text(&WithoutBody(self));
        // `{"method":…}` becomes `{"method":…,"body":<text>}`.
        record.pop();
        record.push_str(",\"body\":");
        match redacted {
            Cow::Borrowed(_) => record.push_str(body.text()),
            Cow::Owned(redacted) => record.push_str(&crate::json::text(&redacted)),
        }
        record.push('}');
        record
    }

    fn serialize_fields<S: Serializer>(&self, serializer: S, with_body: bool) -> Result<S::Ok, S::Error> {
        let (redactor, request) = (self.redactor, self.request);
        let url = crate::redact::without_userinfo(&redactor.text(&request.url)).into_owned();
        let mut record = serializer.serialize_struct("RequestRecord", 4)?;
        record.serialize_field("method", request.method.as_str())?;
        record.serialize_field("url", &url)?;
        record.serialize_field(
            "headers",
            &Headers(request.headers.iter().map(|(name, value)| {
                let stored = if request.credential_headers.contains(name) {
                    REDACTED.to_owned()
                } else {
                    redactor.recorded_header(name, value)
                };
                (name.as_str(), stored)
            })),
        )?;
        if with_body {
            match &request.body {
                Some(RequestBody::Json(json)) => record.serialize_field("body", &redactor.value_cow(json.value()))?,
                Some(RequestBody::Text(text)) => record.serialize_field("body", &redactor.text(text))?,
                None => record.serialize_field("body", &Value::Null)?,
            }
        }
        record.end()
    }
}

impl Serialize for RequestRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_fields(serializer, true)
    }
}

/// A request record's fields but its body, which [`RequestRecord::to_text`] adds.
struct WithoutBody<'r, 'a>(&'r RequestRecord<'a>);

impl Serialize for WithoutBody<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_fields(serializer, false)
    }
}

impl Serialize for ResponseRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (redactor, response) = (self.redactor, self.response);
        let text = redactor.text(&response.text);
        let truncated = text.len() > RECORDED_BODY_LIMIT;
        let mut record = serializer.serialize_struct("ResponseRecord", 4)?;
        record.serialize_field("status", &response.status)?;
        record.serialize_field(
            "headers",
            &Headers(response.headers.iter().map(|(name, value)| {
                (
                    name.as_str(),
                    redactor.recorded_header(name, value.as_str().unwrap_or_default()),
                )
            })),
        )?;
        if truncated {
            record.serialize_field("body", &text[..text.floor_char_boundary(RECORDED_BODY_LIMIT)])?;
        } else {
            let body: Cow<'_, Value> = redactor.value_cow(&response.body);
            record.serialize_field("body", &body)?;
        }
        record.serialize_field("truncated", &truncated)?;
        record.end()
    }
}

/// Header names and recorded values, written as a JSON object as they come.
struct Headers<I>(I);

impl<'n, I> Serialize for Headers<I>
where
    I: Iterator<Item = (&'n str, String)> + Clone,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.0.clone() {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::JsonBody;
    use crate::redact::Secret;
    use serde_json::json;

    fn request() -> HttpRequest {
        HttpRequest {
            method: reqwest::Method::POST,
            url: "https://ada:pw@api.example.com/v1?key=s3cret-token".to_owned(),
            parsed_url: None,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-api-key".to_owned(), "plain".to_owned()),
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-note".to_owned(), "carries s3cret-token".to_owned()),
            ],
            body: Some(RequestBody::Json(JsonBody::new(
                json!({"token": "s3cret-token", "n": 1}),
            ))),
            accept: Vec::new(),
            credential_headers: vec!["authorization".to_owned()],
        }
    }

    #[test]
    fn a_request_is_recorded_redacted_in_order() {
        let redactor = Redactor::new(&[Secret {
            name: "API_TOKEN".to_owned(),
            value: "s3cret-token".to_owned(),
        }]);
        let text = RequestRecord {
            redactor: &redactor,
            request: &request(),
        }
        .to_text();
        assert_eq!(
            text,
            json!({
                "method": "POST",
                "url": "https://[redacted]@api.example.com/v1?key=[redacted:API_TOKEN]",
                "headers": {
                    "content-type": "application/json",
                    "x-api-key": "[redacted]",
                    "authorization": "[redacted]",
                    "x-note": "[redacted:API_TOKEN]"
                },
                "body": {"token": "[redacted:API_TOKEN]", "n": 1}
            })
            .to_string()
        );
        assert_eq!(request_record(&redactor, &request()).to_string(), text);
    }

    #[test]
    fn a_body_without_secrets_is_recorded_as_the_text_sent() {
        let redactor = Redactor::new(&[]);
        let mut request = request();
        request.body = Some(RequestBody::Json(JsonBody::new(
            json!({"nested": {"b": [1, "two"]}, "a": null}),
        )));
        let record = RequestRecord {
            redactor: &redactor,
            request: &request,
        };
        let text = record.to_text();
        assert!(
            text.ends_with(r#""x-note":"carries s3cret-token"},"body":{"nested":{"b":[1,"two"]},"a":null}}"#),
            "{text}"
        );
        assert_eq!(text, crate::json::text(&record));
        for body in [None, Some(RequestBody::Text("plain".to_owned()))] {
            request.body = body;
            let record = RequestRecord {
                redactor: &redactor,
                request: &request,
            };
            assert_eq!(record.to_text(), crate::json::text(&record));
        }
    }

    #[test]
    fn a_long_answer_is_cut_after_redaction() {
        let redactor = Redactor::new(&[]);
        let response = HttpResponse {
            status: 200,
            headers: serde_json::Map::from_iter([("set-cookie".to_owned(), json!("id=1"))]),
            text: "é".repeat(RECORDED_BODY_LIMIT),
            body: Value::Null,
        };
        let record = response_record(&redactor, &response);
        assert_eq!(record["status"], 200);
        assert_eq!(record["headers"], json!({"set-cookie": "[redacted]"}));
        assert_eq!(record["truncated"], true);
        let body = record["body"].as_str().expect("text");
        assert_eq!(body.len(), RECORDED_BODY_LIMIT);
        assert!(body.chars().all(|c| c == 'é'));

        let short = HttpResponse {
            text: "{\"ok\":true}".to_owned(),
            body: json!({"ok": true}),
            ..response
        };
        let text = crate::json::text(&ResponseRecord {
            redactor: &redactor,
            response: &short,
        });
        assert_eq!(
            text,
            r#"{"status":200,"headers":{"set-cookie":"[redacted]"},"body":{"ok":true},"truncated":false}"#
        );
    }
}
