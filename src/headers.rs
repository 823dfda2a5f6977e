//! HTTP headers as templates and run records see them: one JSON object with
//! lower-case names, shared by incoming webhooks and destination answers.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// Headers as a JSON object of strings; repeated headers are joined with `, `,
/// as HTTP allows.
pub fn to_object(headers: &HeaderMap) -> Map<String, Value> {
    // `keys` gives each name once, with all its values: no name is looked up in
    // the object twice.
    headers
        .keys()
        .map(|name| {
            let mut values = headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()));
            let mut joined = values.next().map(std::borrow::Cow::into_owned).unwrap_or_default();
            for value in values {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            (name.as_str().to_owned(), Value::String(joined))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn repeated_headers_are_joined_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        headers.append("X-Other", HeaderValue::from_bytes(b"caf\xe9").expect("a header value"));
        let object = to_object(&headers);
        assert_eq!(
            Value::Object(object),
            serde_json::json!({"content-type": "application/json", "x-tag": "a, b", "x-other": "caf\u{fffd}"})
        );
    }
}
