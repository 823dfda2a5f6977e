//! HTTP headers as templates and run records see them: one JSON object with
//! lower-case names, shared by incoming webhooks and destination answers.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// Headers as a JSON object of strings; repeated headers are joined with `, `,
/// as HTTP allows.
pub fn to_object(headers: &HeaderMap) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match object.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                object.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    object
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type is JSON (`application/json` or `…+json`).
pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}
