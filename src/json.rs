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

/// About how many bytes `value` takes as JSON text, without writing it: string
/// escapes and number digits are not counted exactly.
pub(crate) fn size_of(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|item| size_of(item) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(key, value)| key.len() + 4 + size_of(value))
                .sum::<usize>()
        }
    }
}
