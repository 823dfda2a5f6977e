//! JSON as text: what the store keeps and what requests carry.

/// A JSON document as text. Serialised into bytes directly: `Value`'s `Display`
/// goes through the formatting machinery token by token, several times slower,
/// and every run stores a few documents and sends one.
pub(crate) fn text(document: &impl serde::Serialize) -> String {
    // Serialising a `Value`, a map of them or strings cannot fail (keys are strings).
    serde_json::to_string(document).unwrap_or_default()
}

/// What kind of value it is, as messages say it: "a list", "text", …
pub(crate) fn kind_of(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
